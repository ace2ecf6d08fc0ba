/* fuzz_k2is.c — the K2IS reader: its block headers, sector synchronisation
 * and .gtg tag parser.  Eight sector files of two frames are written
 * sparse (headers only: the pixels are holes, read as zeros) so that a run
 * stays cheap.  The first input byte chooses what the rest becomes:
 *   0  the .gtg (the sectors are valid);
 *   1  headers of sector data[1] % 8: the rest overwrites its first blocks'
 *      40-byte headers one after the other, and data[2] (if > 0) cuts the
 *      file to that many half blocks;
 *   2  the whole first sector file.
 * Malformed data must give a clean error; an opened data set must read. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"

enum { BLOCK = 22360, HDR = 40, FRAMES = 2, BPF = 32 };

static void put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)(v >> 8);
    b[1] = (uint8_t)v;
}
static void put32(uint8_t *b, uint32_t v)
{
    b[0] = (uint8_t)(v >> 24);
    b[1] = (uint8_t)(v >> 16);
    b[2] = (uint8_t)(v >> 8);
    b[3] = (uint8_t)v;
}

/* The header of block b of frame f of sector s. */
static void block_header(uint8_t *h, int s, int f, int b)
{
    (void)s;
    memset(h, 0, HDR);
    put32(h, 0xFFFF0055u);
    h[8] = 2;
    h[9] = 1; /* shutter */
    put32(h + 16, (uint32_t)(1000 + f * BPF + b));
    put16(h + 20, 256);
    put16(h + 22, 1860);
    put32(h + 24, (uint32_t)(100 + f));
    uint16_t x0 = (uint16_t)(240 - 16 * (b % 16)), y0 = (uint16_t)(930 * (b / 16));
    put16(h + 28, x0);
    put16(h + 30, y0);
    put16(h + 32, (uint16_t)(x0 + 15));
    put16(h + 34, (uint16_t)(y0 + 929));
    put32(h + 36, BLOCK);
}

/* Big-endian words appended to a tag file. */
static size_t be(uint8_t *b, size_t n, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        b[n + (size_t)i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    return n + (size_t)bytes;
}

static size_t name(uint8_t *b, size_t n, int type, const char *s)
{
    n = be(b, n, (uint64_t)type, 1);
    n = be(b, n, strlen(s), 2);
    memcpy(b + n, s, strlen(s));
    return n + strlen(s);
}

/* A DM4 tag file with SI Dimensions Size X = 2, Size Y = 1 (int32). */
static size_t gtg(uint8_t *b)
{
    size_t n = be(b, 0, 4, 4); /* version */
    n = be(b, n, 0, 8);        /* root length (unused) */
    n = be(b, n, 1, 4);        /* little-endian data */
    n = be(b, n, 0x0001, 2);   /* sorted, open */
    n = be(b, n, 1, 8);        /* one tag */
    n = name(b, n, 20, "SI Dimensions");
    size_t len_at = n;
    n += 8;
    size_t g0 = n;
    n = be(b, n, 0x0001, 2);
    n = be(b, n, 2, 8);
    for (int i = 0; i < 2; i++) {
        n = name(b, n, 21, i ? "Size Y" : "Size X");
        n = be(b, n, 4 + 8 + 8 + 4, 8); /* "%%%%", ninfo, info, value */
        memcpy(b + n, "%%%%", 4);
        n += 4;
        n = be(b, n, 1, 8);
        n = be(b, n, 3, 8); /* int32 */
        uint8_t v[4] = {(uint8_t)(i ? 1 : 2), 0, 0, 0};
        memcpy(b + n, v, 4);
        n += 4;
    }
    be(b, len_at, n - g0, 8);
    return n;
}

static void write_all(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        if (n)
            fwrite(d, 1, n, f);
        fclose(f);
    }
}

/* Sector s as a sparse file of FRAMES frames, headers only. */
static void write_sector(const char *path, int s)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return;
    if (ftruncate(fd, (off_t)FRAMES * BPF * BLOCK) == 0) {
        uint8_t h[HDR];
        for (int f = 0; f < FRAMES; f++)
            for (int b = 0; b < BPF; b++) {
                block_header(h, s, f, b);
                if (pwrite(fd, h, HDR, (off_t)(f * BPF + b) * BLOCK) != HDR)
                    break;
            }
    }
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 3;
    char dir[64], path[96];
    snprintf(dir, sizeof dir, "/tmp/tsr-fuzz-k2is-%d", (int)getpid());
    mkdir(dir, 0755);
    for (int s = 0; s < 8; s++) {
        snprintf(path, sizeof path, "%s/k_%d.bin", dir, s + 1);
        write_sector(path, s);
    }
    snprintf(path, sizeof path, "%s/k_.gtg", dir);
    if (mode == 0) {
        write_all(path, data + 1, size - 1);
    } else {
        uint8_t g[256];
        write_all(path, g, gtg(g));
    }
    if (mode == 1 && size >= 3) {
        int s = data[1] % 8;
        snprintf(path, sizeof path, "%s/k_%d.bin", dir, s + 1);
        int fd = open(path, O_WRONLY);
        if (fd >= 0) {
            size_t n = size - 3;
            for (size_t k = 0; k * HDR < n && k < FRAMES * BPF; k++) {
                size_t len = n - k * HDR < HDR ? n - k * HDR : HDR;
                if (pwrite(fd, data + 3 + k * HDR, len, (off_t)k * BLOCK) != (ssize_t)len)
                    break;
            }
            if (data[2] && ftruncate(fd, (off_t)data[2] * (BLOCK / 2)) != 0) {
                /* the file stays as it is */
            }
            close(fd);
        }
    } else if (mode == 2) {
        snprintf(path, sizeof path, "%s/k_1.bin", dir);
        write_all(path, data + 1, size - 1);
    }

    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_params_t *p = NULL;
        tsr_params_new(ctx, &p);
        if (mode != 0)
            tsr_params_add(p, "nav_shape", "2");
        tsr_dataset_t *ds;
        snprintf(path, sizeof path, "%s/k_.gtg", dir);
        if (tsr_dataset_open(ctx, "k2is", path, p, &ds) == 0) {
            tsr__io_t io;
            tsr__io_init(&io, ctx, ds);
            int64_t px = tsr_shape_size(&ds->sig), band = 930 * 2048;
            uint16_t *buf = malloc((size_t)band * sizeof(float));
            char err[256];
            if (buf && px == 1860 * 2048) {
                int r1 =
                    tsr__dataset_read(ds, &io, 0, 1, 0, band, TSR_U16, buf, NULL, err, sizeof err);
                int r2 = tsr__dataset_read(ds, &io, 1, 1, band + 7, 1000, TSR_F32, buf, NULL, err,
                                           sizeof err);
                if (getenv("TSR_FUZZ_VERBOSE"))
                    fprintf(stderr, "opened; reads %d %d\n", r1, r2);
            }
            free(buf);
            tsr__io_destroy(&io);
            tsr_dataset_close(ds);
        } else if (!tsr_ctx_errmsg(ctx)[0]) {
            abort();
        } else if (getenv("TSR_FUZZ_VERBOSE")) {
            fprintf(stderr, "%s\n", tsr_ctx_errmsg(ctx));
        }
        tsr_params_free(p);
        tsr_ctx_free(ctx);
    }
    for (int s = 0; s < 8; s++) {
        snprintf(path, sizeof path, "%s/k_%d.bin", dir, s + 1);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/k_.gtg", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

static uint8_t *with_tag(uint8_t tag, const void *d, size_t n, size_t *len)
{
    uint8_t *b = malloc(n + 1);
    b[0] = tag;
    memcpy(b + 1, d, n);
    *len = n + 1;
    return b;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    size_t k = 0;
    if (k < max) {
        uint8_t g[256];
        seeds[k] = with_tag(0, g, gtg(g), &lens[k]);
        k++;
    }
    if (k < max) { /* sector 3's first two headers, unchanged */
        uint8_t h[2 + 2 * HDR] = {3, 0};
        block_header(h + 2, 3, 0, 0);
        block_header(h + 2 + HDR, 3, 0, 1);
        seeds[k] = with_tag(1, h, sizeof h, &lens[k]);
        k++;
    }
    if (k < max) { /* a first sector of a few blocks */
        size_t n = 3 * BLOCK;
        uint8_t *b = calloc(1, n);
        for (int i = 0; i < 3; i++)
            block_header(b + (size_t)i * BLOCK, 0, 0, i);
        seeds[k] = with_tag(2, b, n, &lens[k]);
        free(b);
        k++;
    }
    return k;
}
