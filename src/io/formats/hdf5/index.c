/*
 * index.c — where every chunk of a chunked HDF5 dataset lies: its file
 * offset, stored size and filter mask, in a table over the chunk grid.
 *
 * libhdf5 1.10 answers this with H5Dget_chunk_info, which walks the whole
 * chunk index up to the chunk asked for: reading a table of n chunks that
 * way costs n²/2 steps (about a minute for 65 536 chunks).  So the table
 * is built in one pass instead, by reading the dataset's chunk index
 * structures from the file as the HDF5 file format specification lays
 * them out (index_parse.c); libhdf5 is asked for every chunk only when
 * that parser does not know the index (v2 B-trees: datasets with more than
 * one unlimited axis) and for the first chunk always, to check the
 * parser's answer.
 */
#include "io/formats/hdf5/h5fmt.h"
#include "io/h5lib.h"

#include <stdlib.h>

/* ---- reading the file's structures -------------------------------------- */

/* A view of one HDF5 file: addresses are relative to base; O and S are
 * the sizes of offsets and lengths of its superblock. */
typedef struct rd {
    const tsr__file_t *f;
    int64_t base;
    int O, S;
    const h5r_part_t *p;
    int nd1; /* rank + 1 (the chunk offsets have a last 0 for the element) */
    uint64_t maxdims[H5R_MAXD];
    int64_t visits;
} rd_t;

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static bool undef(uint64_t a, int n)
{
    return n >= 8 ? a == UINT64_MAX : a == (((uint64_t)1 << (8 * n)) - 1);
}

/* n bytes at relative address a, inside the file. */
static bool rd_read(const rd_t *r, uint64_t a, void *buf, size_t n)
{
    if (a > (uint64_t)INT64_MAX - (uint64_t)r->base)
        return false;
    int64_t at = (int64_t)a + r->base;
    if (at < 0 || at > r->f->size || (int64_t)n > r->f->size - at)
        return false;
    return tsr__file_pread(r->f, buf, n, at) == 0;
}

/* Record chunk (grid index from element offsets) at a relative address. */
static bool put_chunk(rd_t *r, h5r_part_t *p, const uint64_t *off, uint64_t addr, uint64_t size,
                      uint32_t mask)
{
    int64_t idx = 0;
    int nd = r->nd1 - 1;
    for (int d = 0; d < nd; d++) {
        if (off[d] % (uint64_t)p->cdims[d] != 0 || off[d] >= (uint64_t)p->dims[d])
            return false;
        idx = idx * p->grid[d] + (int64_t)(off[d] / (uint64_t)p->cdims[d]);
    }
    if (addr > (uint64_t)INT64_MAX - (uint64_t)r->base)
        return false;
    p->chunks[idx] = (h5r_chunk_t){(int64_t)addr + r->base, size, mask};
    return true;
}

/* The same by linear index. */
static bool put_linear(rd_t *r, h5r_part_t *p, int64_t idx, uint64_t addr, uint64_t size,
                       uint32_t mask)
{
    if (idx < 0 || idx >= p->n_chunks || addr > (uint64_t)INT64_MAX - (uint64_t)r->base)
        return false;
    p->chunks[idx] = (h5r_chunk_t){(int64_t)addr + r->base, size, mask};
    return true;
}

/* ---- the object header: the data layout message ------------------------ */

typedef struct layout {
    int version, cls, nd1, itype;
    uint64_t dims[H5R_MAXD + 1];
    uint64_t addr;
    unsigned flags;
    uint64_t single_size;
    uint32_t single_mask;
    uint8_t ea[5]; /* extensible array parameters */
    uint8_t fa_page_bits;
} layout_t;

static bool parse_layout(const rd_t *r, const uint8_t *d, size_t n, layout_t *L)
{
    memset(L, 0, sizeof *L);
    if (n < 3)
        return false;
    L->version = d[0];
    L->cls = d[1];
    if (L->cls != 2)
        return false;
    if (L->version == 3) {
        L->nd1 = d[2];
        if (L->nd1 < 2 || L->nd1 > H5R_MAXD + 1 || n < 3 + (size_t)r->O + 4u * (size_t)L->nd1)
            return false;
        L->addr = le(d + 3, r->O);
        for (int i = 0; i < L->nd1; i++)
            L->dims[i] = le(d + 3 + r->O + 4 * i, 4);
        L->itype = 0; /* v1 B-tree */
        return true;
    }
    if (L->version != 4 || n < 5)
        return false;
    L->flags = d[2];
    L->nd1 = d[3];
    int enc = d[4];
    if (L->nd1 < 2 || L->nd1 > H5R_MAXD + 1 || enc < 1 || enc > 8)
        return false;
    size_t pos = 5 + (size_t)enc * (size_t)L->nd1;
    if (n < pos + 1)
        return false;
    for (int i = 0; i < L->nd1; i++)
        L->dims[i] = le(d + 5 + enc * i, enc);
    L->itype = d[pos++];
    switch (L->itype) {
    case 1:
        if (L->flags & 2) {
            if (n < pos + (size_t)r->S + 4)
                return false;
            L->single_size = le(d + pos, r->S);
            L->single_mask = (uint32_t)le(d + pos + r->S, 4);
            pos += (size_t)r->S + 4;
        }
        break;
    case 2: break;
    case 3:
        if (n < pos + 1)
            return false;
        L->fa_page_bits = d[pos++];
        break;
    case 4:
        if (n < pos + 5)
            return false;
        memcpy(L->ea, d + pos, 5);
        pos += 5;
        break;
    default: return false; /* v2 B-tree and others: libhdf5 */
    }
    if (n < pos + (size_t)r->O)
        return false;
    L->addr = le(d + pos, r->O);
    return true;
}

/* Scan a block of header messages for the layout message; note
 * continuation blocks. */
static int scan_messages(const rd_t *r, const uint8_t *b, size_t n, bool v2, bool crt_order,
                         layout_t *L, uint64_t (*cont)[2], int *n_cont)
{
    size_t pos = 0, hdr = v2 ? 4u + (crt_order ? 2u : 0u) : 8u;
    while (pos + hdr <= n) {
        unsigned type = v2 ? b[pos] : (unsigned)le(b + pos, 2);
        size_t len = (size_t)le(b + pos + (v2 ? 1 : 2), 2);
        const uint8_t *data = b + pos + hdr;
        if (pos + hdr + len > n)
            return -1;
        if (type == 8)
            return parse_layout(r, data, len, L) ? 1 : -1;
        if (type == 0x10 && len >= (size_t)(r->O + r->S) && *n_cont < 64) {
            cont[*n_cont][0] = le(data, r->O);
            cont[*n_cont][1] = le(data + r->O, r->S);
            (*n_cont)++;
        }
        pos += hdr + len;
    }
    return 0;
}

static bool find_layout(const rd_t *r, uint64_t oh, layout_t *L)
{
    uint8_t h[64];
    uint64_t cont[64][2];
    int n_cont = 0, rc;
    bool v2, crt = false;
    uint64_t start, size;
    if (!rd_read(r, oh, h, 16))
        return false;
    if (memcmp(h, "OHDR", 4) == 0) {
        if (!rd_read(r, oh, h, 48))
            return false;
        unsigned flags = h[5];
        size_t pos = 6;
        if (flags & 0x20)
            pos += 16;
        if (flags & 0x10)
            pos += 4;
        int szlen = 1 << (flags & 3);
        size = le(h + pos, szlen);
        start = oh + pos + (size_t)szlen;
        v2 = true;
        crt = flags & 0x04;
    } else if (h[0] == 1) {
        size = le(h + 8, 4);
        start = oh + 16;
        v2 = false;
    } else {
        return false;
    }
    for (int blk = -1; blk < n_cont; blk++) {
        if (blk >= 0) {
            start = cont[blk][0];
            size = cont[blk][1];
            if (v2) { /* "OCHK" ... checksum */
                if (size < 8)
                    return false;
                start += 4;
                size -= 8;
            }
        }
        if (size == 0 || size > (1u << 24))
            return false;
        uint8_t *b = malloc((size_t)size);
        if (!b || !rd_read(r, start, b, (size_t)size)) {
            free(b);
            return false;
        }
        rc = scan_messages(r, b, (size_t)size, v2, crt, L, cont, &n_cont);
        free(b);
        if (rc)
            return rc > 0;
    }
    return false;
}

/* ---- v1 B-tree ---------------------------------------------------------- */

static bool btree1(rd_t *r, h5r_part_t *p, uint64_t addr, int depth)
{
    uint8_t h[8 + 16];
    if (depth > 64 || ++r->visits > p->n_chunks + 100000 || !rd_read(r, addr, h, 8))
        return false;
    if (memcmp(h, "TREE", 4) != 0 || h[4] != 1)
        return false;
    int level = h[5];
    size_t entries = (size_t)le(h + 6, 2);
    size_t key = 8 + 8 * (size_t)r->nd1, n = entries * (key + (size_t)r->O) + key;
    size_t skip = 8 + 2 * (size_t)r->O;
    uint8_t *b = malloc(n);
    if (!b || !rd_read(r, addr + skip, b, n)) {
        free(b);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; ok && i < entries; i++) {
        const uint8_t *k = b + i * (key + (size_t)r->O);
        uint64_t child = le(k + key, r->O);
        if (level > 0) {
            ok = btree1(r, p, child, depth + 1);
            continue;
        }
        uint64_t off[H5R_MAXD + 1];
        for (int d = 0; d < r->nd1; d++)
            off[d] = le(k + 8 + 8 * d, 8);
        ok = put_chunk(r, p, off, child, le(k, 4), (uint32_t)le(k + 4, 4));
    }
    free(b);
    return ok;
}

/* ---- fixed and extensible arrays ----------------------------------------- */

/* One array element of the chunk index: address, and for filtered chunks
 * (client 1) size and filter mask. */
static bool put_elem(rd_t *r, h5r_part_t *p, int64_t idx, const uint8_t *e, int esz, int client,
                     uint64_t chunk_bytes)
{
    uint64_t addr = le(e, r->O);
    if (undef(addr, r->O))
        return true;
    if (client == 0)
        return put_linear(r, p, idx, addr, chunk_bytes, 0);
    int szlen = esz - r->O - 4;
    if (szlen < 1 || szlen > 8)
        return false;
    return put_linear(r, p, idx, addr, le(e + r->O, szlen), (uint32_t)le(e + esz - 4, 4));
}

/* n elements of esz bytes at relative address a, starting at index idx. */
static bool put_elems(rd_t *r, h5r_part_t *p, uint64_t a, int64_t idx, int64_t n, int esz,
                      int client, uint64_t chunk_bytes)
{
    if (n <= 0 || idx >= p->n_chunks)
        return true;
    if (n > p->n_chunks - idx)
        n = p->n_chunks - idx; /* entries past the grid: not read */
    size_t bytes = (size_t)n * (size_t)esz;
    uint8_t *b = malloc(bytes);
    bool ok = b && rd_read(r, a, b, bytes);
    for (int64_t i = 0; ok && i < n && idx + i < p->n_chunks; i++)
        ok = put_elem(r, p, idx + i, b + i * esz, esz, client, chunk_bytes);
    free(b);
    return ok;
}

static bool farray(rd_t *r, h5r_part_t *p, uint64_t addr, uint64_t chunk_bytes)
{
    uint8_t h[64];
    size_t hl = 4 + 4 + (size_t)r->S + (size_t)r->O + 4;
    if (!rd_read(r, addr, h, hl) || memcmp(h, "FAHD", 4) != 0)
        return false;
    int client = h[5], esz = h[6], bits = h[7];
    uint64_t max = le(h + 8, r->S), dblk = le(h + 8 + r->S, r->O);
    if (undef(dblk, r->O))
        return true; /* no data block: nothing written */
    /* one entry per chunk of the grid (the maximum extent is the grid) */
    if (esz < r->O || esz > 32 || bits > 32 || max != (uint64_t)p->n_chunks)
        return false;
    uint8_t d[16];
    if (!rd_read(r, dblk, d, 6) || memcmp(d, "FADB", 4) != 0)
        return false;
    uint64_t pre = 6 + (uint64_t)r->O, page_n = (uint64_t)1 << bits;
    if (max <= page_n)
        return put_elems(r, p, dblk + pre, 0, (int64_t)max, esz, client, chunk_bytes);
    uint64_t npages = (max + page_n - 1) / page_n, bm = (npages + 7) / 8;
    uint8_t *bitmap = malloc((size_t)bm);
    bool ok = bitmap && rd_read(r, dblk + pre, bitmap, (size_t)bm);
    uint64_t page_at = dblk + pre + bm + 4, page_size = page_n * (uint64_t)esz + 4;
    for (uint64_t i = 0; ok && i < npages; i++) {
        uint64_t n = i + 1 < npages ? page_n : max - i * page_n;
        if (bitmap[i / 8] & (0x80u >> (i % 8)))
            ok = put_elems(r, p, page_at + i * page_size, (int64_t)(i * page_n), (int64_t)n, esz,
                           client, chunk_bytes);
    }
    free(bitmap);
    return ok;
}

static int log2_floor(uint64_t v)
{
    int k = 0;
    while (v >>= 1)
        k++;
    return k;
}

/* One data block of an extensible array: n elements from index idx. */
static bool ea_dblock(rd_t *r, h5r_part_t *p, uint64_t a, int64_t idx, uint64_t n, int esz,
                      int client, uint64_t chunk_bytes, int off_size, uint64_t page_n,
                      const uint8_t *page_init)
{
    uint8_t h[8];
    if (undef(a, r->O))
        return true;
    if (!rd_read(r, a, h, 4) || memcmp(h, "EADB", 4) != 0)
        return false;
    uint64_t pre = 6 + (uint64_t)r->O + (uint64_t)off_size;
    if (n <= page_n)
        return put_elems(r, p, a + pre, idx, (int64_t)n, esz, client, chunk_bytes);
    uint64_t npages = n / page_n, page_size = page_n * (uint64_t)esz + 4;
    bool ok = true;
    for (uint64_t i = 0; ok && i < npages && idx + (int64_t)(i * page_n) < p->n_chunks; i++)
        if (!page_init || (page_init[i / 8] & (0x80u >> (i % 8))))
            ok = put_elems(r, p, a + pre + 4 + i * page_size, idx + (int64_t)(i * page_n),
                           (int64_t)page_n, esz, client, chunk_bytes);
    return ok;
}

static bool earray(rd_t *r, h5r_part_t *p, uint64_t addr, uint64_t chunk_bytes)
{
    uint8_t h[128];
    size_t hl = 4 + 1 + 1 + 6 + 6 * (size_t)r->S + (size_t)r->O + 4;
    if (hl > sizeof h || !rd_read(r, addr, h, hl) || memcmp(h, "EAHD", 4) != 0)
        return false;
    int client = h[5], esz = h[6], max_bits = h[7], ib_n = h[8], dmin = h[9], smin = h[10];
    int pbits = h[11];
    uint64_t iblk = le(h + 12 + 6 * r->S, r->O);
    if (undef(iblk, r->O))
        return true;
    if (esz < r->O || esz > 32 || max_bits > 64 || max_bits < 1 || dmin < 1 || smin < 1 ||
        pbits > 32 || (dmin & (dmin - 1)) || (smin & (smin - 1)))
        return false;
    int off_size = (max_bits + 7) / 8;
    uint64_t page_n = (uint64_t)1 << pbits;
    /* the super blocks' geometry */
    int nsblks = 1 + (max_bits - log2_floor((uint64_t)dmin));
    if (nsblks < 1 || nsblks > 64)
        return false;
    uint64_t s_ndblks[64], s_nelmts[64], s_start[64], start = 0;
    for (int u = 0; u < nsblks; u++) {
        s_ndblks[u] = (uint64_t)1 << (u / 2);
        s_nelmts[u] = ((uint64_t)1 << ((u + 1) / 2)) * (uint64_t)dmin;
        s_start[u] = start;
        start += s_ndblks[u] * s_nelmts[u];
    }
    int ib_sblks = 2 * log2_floor((uint64_t)smin);
    size_t nd_addrs = 2 * ((size_t)smin - 1), ns_addrs = (size_t)(nsblks - ib_sblks);
    if (ib_sblks > nsblks)
        return false;
    size_t ibl =
        6 + (size_t)r->O + (size_t)ib_n * (size_t)esz + (nd_addrs + ns_addrs) * (size_t)r->O;
    uint8_t *ib = malloc(ibl);
    bool ok = ib && rd_read(r, iblk, ib, ibl) && memcmp(ib, "EAIB", 4) == 0;
    const uint8_t *e = ib + 6 + r->O;
    for (int i = 0; ok && i < ib_n && i < p->n_chunks; i++)
        ok = put_elem(r, p, i, e + i * esz, esz, client, chunk_bytes);
    const uint8_t *dptr = e + (size_t)ib_n * (size_t)esz, *sptr = dptr + nd_addrs * (size_t)r->O;
    /* data blocks of the first super blocks hang off the index block */
    size_t di = 0;
    for (int u = 0; ok && u < ib_sblks; u++)
        for (uint64_t k = 0; ok && k < s_ndblks[u] && di < nd_addrs; k++, di++) {
            int64_t idx = ib_n + (int64_t)(s_start[u] + k * s_nelmts[u]);
            if (idx >= p->n_chunks)
                break;
            ok = ea_dblock(r, p, le(dptr + di * r->O, r->O), idx, s_nelmts[u], esz, client,
                           chunk_bytes, off_size, page_n, NULL);
        }
    /* the others through super blocks */
    for (int u = ib_sblks; ok && u < nsblks; u++) {
        uint64_t sa = le(sptr + (size_t)(u - ib_sblks) * (size_t)r->O, r->O);
        int64_t idx0 = ib_n + (int64_t)s_start[u];
        if (undef(sa, r->O) || idx0 >= p->n_chunks)
            continue;
        uint64_t npages = s_nelmts[u] > page_n ? s_nelmts[u] / page_n : 0;
        size_t pinit = npages ? (size_t)((npages + 7) / 8) : 0;
        size_t sl = 6 + (size_t)r->O + (size_t)off_size + (size_t)s_ndblks[u] * pinit +
                    (size_t)s_ndblks[u] * (size_t)r->O;
        uint8_t *sb = malloc(sl);
        ok = sb && rd_read(r, sa, sb, sl) && memcmp(sb, "EASB", 4) == 0;
        const uint8_t *bm = sb ? sb + 6 + r->O + off_size : NULL;
        const uint8_t *da = bm ? bm + (size_t)s_ndblks[u] * pinit : NULL;
        for (uint64_t k = 0; ok && k < s_ndblks[u]; k++) {
            int64_t idx = idx0 + (int64_t)(k * s_nelmts[u]);
            if (idx >= p->n_chunks)
                break;
            ok = ea_dblock(r, p, le(da + k * (size_t)r->O, r->O), idx, s_nelmts[u], esz, client,
                           chunk_bytes, off_size, page_n, npages ? bm + k * pinit : NULL);
        }
        free(sb);
    }
    free(ib);
    return ok;
}

static const char *const index_names[] = {"v1 B-tree", "single chunk", "implicit", "fixed array",
                                          "extensible array"};

/* Read the chunk table from the file; false if the index is not one we
 * know or does not read right (the caller then asks libhdf5). */
static bool parse_index(rd_t *r, h5r_part_t *p, uint64_t oh, uint64_t chunk_bytes)
{
    layout_t L;
    int nd = r->nd1 - 1;
    if (!find_layout(r, oh, &L) || L.nd1 != r->nd1)
        return false;
    for (int i = 0; i < nd; i++)
        if (L.dims[i] != (uint64_t)p->cdims[i])
            return false;
    /* fixed and extensible arrays number chunks over the maximum extent:
     * that is the grid only when the extent is the maximum (but for the
     * growing first axis of an extensible array) */
    for (int i = 0; i < nd && (L.itype == 3 || L.itype == 4); i++)
        if (r->maxdims[i] != (uint64_t)p->dims[i] && !(L.itype == 4 && i == 0))
            return false;
    p->index = L.itype >= 0 && L.itype <= 4 ? index_names[L.itype] : "?";
    switch (L.itype) {
    case 0: return undef(L.addr, r->O) || btree1(r, p, L.addr, 0);
    case 1: /* single chunk */
        if (undef(L.addr, r->O))
            return true;
        return put_linear(r, p, 0, L.addr, (L.flags & 2) ? L.single_size : chunk_bytes,
                          (L.flags & 2) ? L.single_mask : 0);
    case 2: /* implicit: every chunk, in order */
        for (int64_t i = 0; !undef(L.addr, r->O) && i < p->n_chunks; i++)
            if (!put_linear(r, p, i, L.addr + (uint64_t)i * chunk_bytes, chunk_bytes, 0))
                return false;
        return true;
    case 3: return undef(L.addr, r->O) || farray(r, p, L.addr, chunk_bytes);
    case 4: return undef(L.addr, r->O) || earray(r, p, L.addr, chunk_bytes);
    default: return false;
    }
}

bool tsr__h5r_parse_index(const tsr__file_t *f, int64_t base, int O, int S, const uint64_t *maxdims,
                          h5r_part_t *p, uint64_t oh, uint64_t chunk_bytes)
{
    int nd = 0;
    while (nd < H5R_MAXD && p->dims[nd] > 0)
        nd++;
    rd_t r = {.f = f, .base = base, .O = O, .S = S, .p = p, .nd1 = nd + 1};
    for (int i = 0; i < nd; i++)
        r.maxdims[i] = maxdims[i];
    return parse_index(&r, p, oh, chunk_bytes);
}

/* The table from the file's own index structures, checked against
 * libhdf5's answer for the first chunk it lists. */
static bool own_index(tsr__open_args_t *a, h5r_part_t *p, hid_t dset, hid_t space, int64_t base,
                      const tsr__file_t *f, size_t chunk_bytes, int nd)
{
    H5O_info_t oi;
    hsize_t dims[H5R_MAXD], maxd[H5R_MAXD];
    size_t O = 0, S = 0;
    hid_t fid = -1, fcpl = -1;
    bool ok = false;
    (void)a;
    if (tsr__h5.H5Oget_info2(dset, &oi, H5O_INFO_BASIC) < 0 ||
        tsr__h5.H5Sget_simple_extent_dims(space, dims, maxd) != nd)
        goto out;
    fid = tsr__h5.H5Iget_file_id(dset);
    fcpl = fid >= 0 ? tsr__h5.H5Fget_create_plist(fid) : -1;
    if (fcpl < 0 || tsr__h5.H5Pget_sizes(fcpl, &O, &S) < 0 || O < 2 || O > 8 || S < 2 || S > 8)
        goto out;
    uint64_t maxdims[H5R_MAXD];
    for (int i = 0; i < nd; i++)
        maxdims[i] = maxd[i];
    if (!tsr__h5r_parse_index(f, base, (int)O, (int)S, maxdims, p, oi.addr, chunk_bytes))
        goto out;
    /* check: the first chunk libhdf5 lists must be in the table as it says */
    hsize_t nst = 0, off[H5R_MAXD + 1];
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    int64_t listed = 0;
    for (int64_t i = 0; i < p->n_chunks; i++)
        listed += p->chunks[i].addr != H5R_ADDR_NONE;
    if (tsr__h5.H5Dget_num_chunks(dset, space, &nst) < 0 || (int64_t)nst != listed)
        goto out;
    if (nst > 0) {
        if (tsr__h5.H5Dget_chunk_info(dset, space, 0, off, &mask, &addr, &size) < 0)
            goto out;
        int64_t idx = 0;
        for (int d = 0; d < nd; d++)
            idx = idx * p->grid[d] + (int64_t)(off[d] / (hsize_t)p->cdims[d]);
        const h5r_chunk_t *c = &p->chunks[idx];
        if (c->addr != (int64_t)addr + base || c->size != size || c->mask != mask)
            goto out;
    }
    ok = true;
out:
    tsr__h5_error(NULL, 0);
    if (fcpl >= 0)
        tsr__h5.H5Pclose(fcpl);
    if (fid >= 0)
        tsr__h5.H5Fclose(fid);
    return ok;
}

_Static_assert(sizeof(hid_t) == sizeof(int64_t), "hid_t is int64_t in HDF5 1.10");

int tsr__h5r_index(tsr__open_args_t *a, h5r_part_t *p, int64_t dset, int64_t base,
                   const tsr__file_t *f, size_t chunk_bytes)
{
    int nd = 0;
    int64_t n = 1;
    hsize_t nst = 0;
    char why[300];

    for (int i = 0; i < H5R_MAXD && p->dims[i] > 0; i++)
        nd = i + 1;
    /* The table has an entry per chunk of the grid, written or not: bound
     * it by the file (a tiny file may declare a huge, empty dataset). */
    int64_t max = ((int64_t)256 << 20) > 2 * f->size ? ((int64_t)256 << 20) : 2 * f->size;
    max /= (int64_t)sizeof(h5r_chunk_t);
    for (int i = 0; i < nd; i++)
        if (!tsr__mul_i64(n, p->grid[i], &n) || n > max)
            return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                               "%s: a grid of more than %lld chunks (for a file of %lld bytes) is "
                               "not supported",
                               p->name, (long long)max, (long long)f->size);
    p->n_chunks = n;
    p->chunks = tsr__malloc(a->ctx, (size_t)n * sizeof *p->chunks);
    if (!p->chunks)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory for %lld chunks",
                           (long long)n);
    for (int64_t i = 0; i < n; i++)
        p->chunks[i] = (h5r_chunk_t){H5R_ADDR_NONE, 0, 0};

    hid_t space = tsr__h5.H5Dget_space(dset);
    int rc = 0;
    if (space >= 0 && own_index(a, p, dset, space, base, f, chunk_bytes, nd))
        goto done;
    for (int64_t i = 0; i < n; i++)
        p->chunks[i] = (h5r_chunk_t){H5R_ADDR_NONE, 0, 0};
    p->index = "libhdf5";
    if (space < 0 || tsr__h5.H5Dget_num_chunks(dset, space, &nst) < 0) {
        tsr__h5_error(why, sizeof why);
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT, "%s: cannot read the chunk index: %s",
                         p->name, why);
        goto done;
    }
    for (hsize_t c = 0; c < nst; c++) {
        hsize_t off[H5R_MAXD + 1];
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        int64_t idx = 0;
        if (tsr__h5.H5Dget_chunk_info(dset, space, c, off, &mask, &addr, &size) < 0) {
            tsr__h5_error(why, sizeof why);
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: cannot read entry %llu of the chunk index: %s", p->name,
                             (unsigned long long)c, why);
            goto done;
        }
        for (int d = 0; d < nd; d++) {
            if (off[d] % (hsize_t)p->cdims[d] != 0 || off[d] >= (hsize_t)p->dims[d]) {
                rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                                 "%s: chunk index entry %llu has offset %llu on axis %d, not a "
                                 "chunk origin inside %lld",
                                 p->name, (unsigned long long)c, (unsigned long long)off[d], d,
                                 (long long)p->dims[d]);
                goto done;
            }
            idx = idx * p->grid[d] + (int64_t)(off[d] / (hsize_t)p->cdims[d]);
        }
        if (addr != HADDR_UNDEF)
            p->chunks[idx] = (h5r_chunk_t){(int64_t)addr + base, size, mask};
    }
done:
    if (space >= 0)
        tsr__h5.H5Sclose(space);
    return rc;
}
