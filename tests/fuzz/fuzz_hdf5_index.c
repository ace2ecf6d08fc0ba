/* fuzz_hdf5_index.c — the HDF5 reader's own parser of chunk indexes
 * (src/io/formats/hdf5/index.c) on arbitrary bytes: an object header at
 * byte 0 whose layout message leads to a v1 B-tree, a fixed array or an
 * extensible array, for a dataset of shape (4, 6, 8) in chunks of
 * (1, 3, 8) u16.  libhdf5 is not involved (it is not built to take
 * malformed files); the parser must return true or false, never read or
 * write out of bounds, and leave only chunks of the grid in the table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/formats/hdf5/h5fmt.h"

#define NCH 8 /* the grid: 4 x 2 x 1 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/tsr-fuzz-h5idx-%d.bin", (int)getpid());
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return 0;
    fwrite(data, 1, size, fp);
    fclose(fp);
    tsr__file_t f;
    char err[256];
    if (tsr__file_open(&f, path, err, sizeof err) == 0) {
        h5r_part_t p;
        h5r_chunk_t chunks[NCH];
        memset(&p, 0, sizeof p);
        const int64_t dims[3] = {4, 6, 8}, cd[3] = {1, 3, 8};
        for (int i = 0; i < 3; i++) {
            p.dims[i] = dims[i];
            p.cdims[i] = cd[i];
            p.grid[i] = (dims[i] + cd[i] - 1) / cd[i];
        }
        p.n_chunks = NCH;
        p.chunks = chunks;
        for (int i = 0; i < NCH; i++)
            chunks[i] = (h5r_chunk_t){H5R_ADDR_NONE, 0, 0};
        uint64_t maxd[3] = {4, 6, 8};
        /* the extensible array seed grows along axis 0 */
        if (size > 200 && data[150] == 'E')
            maxd[0] = UINT64_MAX;
        tsr__h5r_parse_index(&f, 0, 8, 8, maxd, &p, 0, 48);
        tsr__file_close(&f);
    }
    unlink(path);
    return 0;
}

/* ---- seeds: the three index kinds, built byte by byte ------------------ */

typedef struct buf {
    uint8_t *b;
    size_t n;
} buf_t;

static void le(buf_t *w, size_t at, uint64_t v, int n)
{
    if (at + (size_t)n > w->n)
        w->n = at + (size_t)n;
    for (int i = 0; i < n; i++)
        w->b[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void bytes(buf_t *w, size_t at, const char *s, size_t n)
{
    memcpy(w->b + at, s, n);
    if (at + n > w->n)
        w->n = at + n;
}

/* Object header v1 at 0 with one layout message (data at 24). */
static void header(buf_t *w, size_t msg_len)
{
    le(w, 0, 1, 1); /* version */
    le(w, 2, 1, 2); /* messages */
    le(w, 4, 1, 4); /* reference count */
    le(w, 8, 8 + msg_len, 4);
    le(w, 16, 8, 2); /* type: data layout */
    le(w, 18, msg_len, 2);
}

/* Layout v4 for index type t with params, index at addr; returns length. */
static size_t layout4(buf_t *w, int t, const uint8_t *par, int npar, uint64_t addr)
{
    size_t at = 24;
    le(w, at++, 4, 1); /* version */
    le(w, at++, 2, 1); /* chunked */
    le(w, at++, 0, 1); /* flags */
    le(w, at++, 4, 1); /* rank + 1 */
    le(w, at++, 4, 1); /* bytes per dimension */
    const uint64_t d[4] = {1, 3, 8, 2};
    for (int i = 0; i < 4; i++, at += 4)
        le(w, at, d[i], 4);
    le(w, at++, (uint64_t)t, 1);
    for (int i = 0; i < npar; i++)
        le(w, at++, par[i], 1);
    le(w, at, addr, 8);
    at += 8;
    return (at - 24 + 7) / 8 * 8;
}

static uint8_t *seed_btree(size_t *len)
{
    buf_t w = {calloc(1, 2048), 0};
    size_t at = 24, tree = 64;
    le(&w, at++, 3, 1);
    le(&w, at++, 2, 1);
    le(&w, at++, 4, 1);
    le(&w, at, tree, 8);
    at += 8;
    const uint64_t d[4] = {1, 3, 8, 2};
    for (int i = 0; i < 4; i++, at += 4)
        le(&w, at, d[i], 4);
    header(&w, 32);
    bytes(&w, tree, "TREE", 4);
    le(&w, tree + 4, 1, 1);
    le(&w, tree + 5, 0, 1);
    le(&w, tree + 6, NCH, 2);
    le(&w, tree + 8, UINT64_MAX, 8);
    le(&w, tree + 16, UINT64_MAX, 8);
    size_t k = tree + 24, key = 8 + 8 * 4, data = 1024;
    for (int c = 0; c < NCH; c++) {
        le(&w, k, 48, 4);
        le(&w, k + 4, 0, 4);
        le(&w, k + 8, (uint64_t)(c / 2), 8);
        le(&w, k + 16, (uint64_t)(c % 2) * 3, 8);
        k += key;
        le(&w, k, data + 48 * (size_t)c, 8);
        k += 8;
    }
    le(&w, k + 8, 4, 8); /* the last key: past the end */
    w.n = data + 48 * NCH;
    *len = w.n;
    return w.b;
}

static uint8_t *seed_farray(size_t *len)
{
    buf_t w = {calloc(1, 2048), 0};
    const uint8_t par[1] = {10};
    size_t fa = 128, db = 192, data = 1024;
    header(&w, layout4(&w, 3, par, 1, fa));
    bytes(&w, fa, "FAHD", 4);
    le(&w, fa + 5, 0, 1);  /* client: unfiltered chunks */
    le(&w, fa + 6, 8, 1);  /* entry size */
    le(&w, fa + 7, 10, 1); /* page bits */
    le(&w, fa + 8, NCH, 8);
    le(&w, fa + 16, db, 8);
    bytes(&w, db, "FADB", 4);
    le(&w, db + 6, fa, 8);
    for (int c = 0; c < NCH; c++)
        le(&w, db + 14 + 8 * (size_t)c, data + 48 * (size_t)c, 8);
    w.n = data + 48 * NCH;
    *len = w.n;
    return w.b;
}

static uint8_t *seed_earray(size_t *len)
{
    buf_t w = {calloc(1, 4096), 0};
    /* max bits 32, 4 elements in the index block, data blocks of 16 and up,
     * 4 data block pointers in the first super block, pages of 1024 */
    const uint8_t par[5] = {32, 4, 4, 16, 10};
    size_t ea = 150, ib = 400, dblk = 900, data = 2048;
    header(&w, layout4(&w, 4, par, 5, ea));
    bytes(&w, ea, "EAHD", 4);
    le(&w, ea + 5, 0, 1);  /* client */
    le(&w, ea + 6, 8, 1);  /* element size */
    le(&w, ea + 7, 32, 1); /* max bits */
    le(&w, ea + 8, 4, 1);  /* index block elements */
    le(&w, ea + 9, 16, 1); /* data block min elements */
    le(&w, ea + 10, 4, 1); /* super block min pointers */
    le(&w, ea + 11, 10, 1);
    le(&w, ea + 12 + 6 * 8, ib, 8);
    bytes(&w, ib, "EAIB", 4);
    le(&w, ib + 6, ea, 8);
    size_t e = ib + 14;
    for (int c = 0; c < 4; c++)
        le(&w, e + 8 * (size_t)c, data + 48 * (size_t)c, 8);
    size_t dp = e + 32; /* 6 data block addresses, then 25 super blocks */
    le(&w, dp, dblk, 8);
    for (int i = 1; i < 6 + 25; i++)
        le(&w, dp + 8 * (size_t)i, UINT64_MAX, 8);
    bytes(&w, dblk, "EADB", 4);
    le(&w, dblk + 6, ea, 8);
    le(&w, dblk + 14, 0, 4); /* block offset */
    for (int c = 0; c < 16; c++)
        le(&w, dblk + 18 + 8 * (size_t)c, c < 4 ? data + 48 * (size_t)(c + 4) : UINT64_MAX, 8);
    w.n = data + 48 * NCH;
    *len = w.n;
    return w.b;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    if (max < 3)
        return 0;
    seeds[0] = seed_btree(&lens[0]);
    seeds[1] = seed_farray(&lens[1]);
    seeds[2] = seed_earray(&lens[2]);
    return 3;
}
