/* fuzz_mib.c — MIB acquisitions through auto-detection, open and a read of
 * every frame (native type and float64, whole frames and a row band):
 * malformed files must give a clean error.
 *
 * Input: byte 0 selects the layout of the files written from the rest:
 *   0: one .mib, opened;
 *   1: a .hdr (length in bytes 1-2, little-endian) and one .mib, the .hdr
 *      opened;
 *   2: a .hdr and two numbered .mib files (the split in byte 3), a .mib
 *      opened;
 *   3: one .mib opened with counter_depth=12 and nav_shape=1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"

static void put(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    if (n)
        fwrite(p, 1, n, f);
    fclose(f);
}

static void read_all(tsr_ctx_t *ctx, tsr_dataset_t *ds)
{
    tsr__io_t io;
    tsr__io_init(&io, ctx, ds);
    int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
    if (n > 64)
        n = 64;
    if (px <= (1 << 18)) {
        double *buf = malloc((size_t)px * sizeof(double));
        char err[256];
        for (int64_t i = 0; i < n && buf; i++) {
            tsr__dataset_read(ds, &io, i, 1, 0, px, TSR_F64, buf, NULL, err, sizeof err);
            tsr__dataset_read(ds, &io, i, 1, 0, px, ds->dtype, buf, NULL, err, sizeof err);
            if (px > 3)
                tsr__dataset_read(ds, &io, i, 1, px / 3, px / 3, TSR_F32, buf, NULL, err,
                                  sizeof err);
        }
        free(buf);
    }
    tsr__io_destroy(&io);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char dir[64], open_path[128];
    snprintf(dir, sizeof dir, "/tmp/tsr-fuzz-mib-%d", (int)getpid());
    mkdir(dir, 0700);
    int mode = data[0] & 3;
    const uint8_t *p = data + 1;
    size_t n = size - 1, hl = 0;
    if ((mode == 1 || mode == 2) && n >= 3) {
        hl = (size_t)p[0] | (size_t)p[1] << 8;
        size_t split = p[2];
        p += 3;
        n -= 3;
        if (hl > n)
            hl = n;
        put(dir, "x.hdr", p, hl);
        p += hl;
        n -= hl;
        if (mode == 1) {
            put(dir, "x.mib", p, n);
            snprintf(open_path, sizeof open_path, "%s/x.hdr", dir);
        } else {
            size_t cut = n * split / 256;
            put(dir, "x1.mib", p, cut);
            put(dir, "x2.mib", p + cut, n - cut);
            snprintf(open_path, sizeof open_path, "%s/x2.mib", dir);
        }
    } else {
        put(dir, "y.mib", p, n);
        snprintf(open_path, sizeof open_path, "%s/y.mib", dir);
    }
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_params_t *params = NULL;
        if (mode == 3 && tsr_params_new(ctx, &params) == 0) {
            tsr_params_add(params, "counter_depth", "12");
            tsr_params_add(params, "nav_shape", "1");
        }
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, mode == 3 ? "mib" : NULL, open_path, params, &ds) == 0) {
            read_all(ctx, ds);
            tsr_dataset_close(ds);
        } else if (!tsr_ctx_errmsg(ctx)[0]) {
            abort();
        }
        tsr_params_free(params);
        tsr_ctx_free(ctx);
    }
    const char *names[] = {"x.hdr", "x.mib", "x1.mib", "x2.mib", "y.mib"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

/* ---- seeds: small valid acquisitions ------------------------------------ */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf_t;

static void append(buf_t *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}

/* Frames of a MIB file: 256-byte headers, pixel bytes from a counter. */
static void frames(buf_t *b, int count, int seq0, int chips, int w, int h, const char *type,
                   int depth, size_t data_bytes)
{
    for (int f = 0; f < count; f++) {
        char head[256];
        memset(head, 0, sizeof head);
        snprintf(head, sizeof head,
                 "MQ1,%06d,00256,%02d,%04d,%04d,%s,   %s,%s,2021-04-15 14:44:15.862206,0.001000,"
                 "0,0,0,2.000000E+0,5.110000E+2,0,0,0,0,0,0,3RX,MQ1A,2021-04-15T13:44:15Z,"
                 "1000000ns,%d,",
                 seq0 + f, chips, w, h, type, chips == 4 ? "2x2" : "1x1", chips == 4 ? "0F" : "01",
                 depth);
        append(b, head, sizeof head);
        for (size_t i = 0; i < data_bytes; i++) {
            uint8_t v = (uint8_t)(i * 7 + (size_t)f);
            append(b, &v, 1);
        }
    }
}

static size_t seed(uint8_t **out, int mode, const char *hdr, const buf_t *mib)
{
    buf_t b = {0};
    uint8_t m = (uint8_t)mode;
    append(&b, &m, 1);
    if (mode == 1 || mode == 2) {
        size_t hl = hdr ? strlen(hdr) : 0;
        uint8_t x[3] = {(uint8_t)hl, (uint8_t)(hl >> 8), 128};
        append(&b, x, 3);
        append(&b, hdr, hl);
    }
    append(&b, mib->p, mib->n);
    free(mib->p);
    *out = b.p;
    return b.n;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    const char *hdr = "HDR,\t\r\nCounter Depth (number):\t12\r\nFrames in Acquisition "
                      "(Number):\t4\r\nFrames per Trigger (Number):\t2\r\nScanX:\t2\r\nScanY:\t"
                      "2\r\nEnd\t";
    size_t k = 0;
    buf_t b;
    if (k < max) { /* U16 single chip, 64x4 */
        b = (buf_t){0};
        frames(&b, 3, 1, 1, 64, 4, "U16", 12, 64 * 4 * 2);
        lens[k] = seed(&seeds[k], 0, NULL, &b), k++;
    }
    if (k < max) { /* RAW 1-bit quad: 4 chips of 64 px, 2 raw rows */
        b = (buf_t){0};
        frames(&b, 2, 1, 4, 256, 2, "R64", 1, 256 * 2 / 8);
        lens[k] = seed(&seeds[k], 0, NULL, &b), k++;
    }
    if (k < max) { /* RAW 12-bit single with a .hdr */
        b = (buf_t){0};
        frames(&b, 4, 1, 1, 64, 2, "R64", 12, 64 * 2 * 2);
        lens[k] = seed(&seeds[k], 1, hdr, &b), k++;
    }
    if (k < max) { /* RAW 24-bit quad in two files */
        b = (buf_t){0};
        frames(&b, 2, 1, 4, 64, 2, "R64", 24, 64 * 2 * 2);
        frames(&b, 2, 3, 4, 64, 2, "R64", 24, 64 * 2 * 2);
        lens[k] = seed(&seeds[k], 2, hdr, &b), k++;
    }
    if (k < max) { /* RAW 12-bit, opened with parameters */
        b = (buf_t){0};
        frames(&b, 1, 1, 1, 64, 3, "R64", 12, 64 * 3 * 2);
        lens[k] = seed(&seeds[k], 3, NULL, &b), k++;
    }
    return k;
}
