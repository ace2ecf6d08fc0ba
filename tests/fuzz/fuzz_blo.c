/* fuzz_blo.c — whole NanoMegas blockfiles through the blo reader: open and a
 * read of every frame (up to 64); malformed files must give a clean error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/tsr-fuzz-blo-%d.blo", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, "blo", path, NULL, &ds) == 0) {
            tsr__io_t io;
            tsr__io_init(&io, ctx, ds);
            int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
            if (n > 64)
                n = 64;
            if (px <= (1 << 16)) {
                double *buf = malloc((size_t)px * sizeof(double));
                char err[256];
                for (int64_t i = 0; i < n && buf; i++)
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
    unlink(path);
    return 0;
}

static void put16(uint8_t *p, unsigned v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A small blockfile: NY=2 x NX=3 frames of 4x4 at `bytes` per pixel. */
static uint8_t *make(unsigned magic, int bytes, const char *note, size_t *len)
{
    const uint32_t off1 = 288, nx = 3, ny = 2, dp = 4;
    uint32_t off2 = off1 + nx * ny;
    off2 += (16 - off2 % 16) % 16;
    size_t rec = 6 + dp * dp * (size_t)bytes, n = off2 + nx * ny * rec;
    uint8_t *b = calloc(1, n);
    memcpy(b, "IMGBLO", 6);
    put16(b + 6, magic);
    put32(b + 8, off1);
    put32(b + 12, off2);
    put16(b + 20, dp);
    put16(b + 24, nx);
    put16(b + 26, ny);
    b[37] = 0x40; /* SX = 2.0 */
    b[45] = 0x40; /* SY = 2.0 */
    put16(b + 50, 2500);
    memcpy(b + 240, note, strlen(note));
    for (uint32_t i = 0; i < nx * ny; i++) {
        uint8_t *r = b + off2 + i * rec;
        r[0] = 0xAA;
        r[1] = 0x55;
        put32(r + 2, i);
        for (size_t k = 6; k < rec; k++)
            r[k] = (uint8_t)(i * 7 + k);
    }
    *len = n;
    return b;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    if (max < 4)
        return 0;
    seeds[0] = make(0x0102, 1, "Camera gamma : on", &lens[0]);
    seeds[1] = make(0x0103, 2, "Blo Bit Depth: 16 bits\r\n", &lens[1]);
    seeds[2] = make(0x0103, 2, "", &lens[2]);
    /* regression: DP_SZ = NX = NY = 65535 overflowed the size in the
     * "truncated" message (signed overflow, found by UBSan) */
    seeds[3] = make(0x0102, 1, "", &lens[3]);
    put16(seeds[3] + 20, 65535);
    put16(seeds[3] + 24, 65535);
    put16(seeds[3] + 26, 65535);
    return 4;
}
