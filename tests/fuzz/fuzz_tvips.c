/* fuzz_tvips.c — TVIPS recordings through the tvips reader: open (with the
 * scan detection) and a read of every frame (up to 64); malformed files must
 * give a clean error.  The first input byte chooses the layout: even, one
 * file; odd, a series of two parts NAME_000 / NAME_001 split after the series
 * header plus 16 * (byte >> 1) bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"

static void write_file(const char *path, const uint8_t *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return;
    fwrite(data, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char p0[80], p1[80];
    snprintf(p0, sizeof p0, "/tmp/tsr-fuzz-tvips-%d_000.tvips", (int)getpid());
    snprintf(p1, sizeof p1, "/tmp/tsr-fuzz-tvips-%d_001.tvips", (int)getpid());
    size_t n = size - 1, k = n;
    if (data[0] & 1) {
        k = 256 + 16 * (size_t)(data[0] >> 1);
        if (k > n)
            k = n;
        write_file(p1, data + 1 + k, n - k);
    }
    write_file(p0, data + 1, k);
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, "tvips", p0, NULL, &ds) == 0) {
            tsr__io_t io;
            tsr__io_init(&io, ctx, ds);
            int64_t nf = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
            if (nf > 64)
                nf = 64;
            if (px <= (1 << 16)) {
                double *buf = malloc((size_t)px * sizeof(double));
                char err[256];
                for (int64_t i = 0; i < nf && buf; i++)
                    tsr__dataset_read(ds, &io, i, 1, 0, px, TSR_F64, buf, NULL, err, sizeof err);
                free(buf);
            }
            tsr__io_destroy(&io);
            tsr_dataset_close(ds);
        } else if (!tsr_ctx_errmsg(ctx)[0]) {
            abort();
        }
        tsr_ctx_free(ctx);
    }
    unlink(p0);
    unlink(p1);
    return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void putf32(uint8_t *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    put32(p, u);
}

/* layout byte, then a recording of n frames of 3x4 pixels: 2 frames before
 * a 2x3 scan, the rest after it. */
static uint8_t *make(uint8_t layout, uint32_t version, uint32_t bytes, uint32_t hb, size_t *len)
{
    const uint32_t n = 10, dx = 4, dy = 3;
    uint32_t ih = version == 1 ? 12 : hb;
    size_t rec = ih + dx * dy * bytes, total = 1 + 256 + n * rec;
    uint8_t *b = calloc(1, total);
    b[0] = layout;
    uint8_t *h = b + 1;
    uint32_t fields[13] = {256, version, dx, dy, 8 * bytes, 0, 0, 1, 1, 5, 300, 800, hb};
    for (int i = 0; i < 13; i++)
        put32(h + 4 * i, fields[i]);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t *r = h + 256 + i * rec;
        put32(r, i);
        put32(r + 4, 1700000000u + i);
        if (ih >= 28)
            put32(r + 24, 2);
        uint32_t pos = i >= 2 && i < 8 ? i - 2 : (i < 2 ? 0 : 5);
        if (ih >= 52)
            put32(r + 48, i >= 2 ? pos + 1 : 0);
        if (ih >= 76) {
            putf32(r + 68, (float)(pos % 3));
            putf32(r + 72, (float)(pos / 3));
        }
        for (size_t k = ih; k < rec; k++)
            r[k] = (uint8_t)(i * 5 + k);
    }
    *len = total;
    return b;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    if (max < 4)
        return 0;
    seeds[0] = make(0, 2, 2, 76, &lens[0]);
    seeds[1] = make(1 | 6 << 1, 2, 2, 76, &lens[1]); /* series, split after 96 more bytes */
    seeds[2] = make(0, 2, 1, 60, &lens[2]);
    seeds[3] = make(3, 1, 1, 0, &lens[3]);
    return 4;
}
