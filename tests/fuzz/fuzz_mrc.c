/* fuzz_mrc.c — whole MRC files through the mrc reader (named, so that a
 * mutated magic still reaches the parser), a read of the first frames, and
 * the single-image loader used for SEQ dark/gain references: malformed
 * files must give a clean error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"
#include "io/formats/mrc/mrc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/tsr-fuzz-mrc-%d.mrc", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, "mrc", path, NULL, &ds) == 0) {
            tsr__io_t io;
            tsr__io_init(&io, ctx, ds);
            int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
            if (n > 16)
                n = 16;
            if (px <= (1 << 16)) {
                double *buf = malloc((size_t)px * 2 * sizeof(double));
                char err[256];
                for (int64_t i = 0; i < n && buf; i++)
                    tsr__dataset_read(ds, &io, i, 1, 0, px,
                                      tsr_dataset_dtype(ds) == TSR_C64 ? TSR_C64 : TSR_F64, buf,
                                      NULL, err, sizeof err);
                free(buf);
            }
            tsr__io_destroy(&io);
            tsr_dataset_close(ds);
        } else if (!tsr_ctx_errmsg(ctx)[0]) {
            abort();
        }
        int64_t ny, nx;
        float *img = NULL;
        char err[512] = "";
        if (tsr__mrc_load_f32(ctx, path, &ny, &nx, &img, err, sizeof err) == 0)
            tsr_free(ctx, img);
        else if (!err[0])
            abort();
        tsr_ctx_free(ctx);
    }
    unlink(path);
    return 0;
}

static void put32(uint8_t *b, size_t off, uint32_t v)
{
    b[off] = (uint8_t)v;
    b[off + 1] = (uint8_t)(v >> 8);
    b[off + 2] = (uint8_t)(v >> 16);
    b[off + 3] = (uint8_t)(v >> 24);
}

/* A little-endian MRC2014 file of nz sections ny × nx in `mode`, with an
 * extended header of ext bytes of type exttyp. */
static uint8_t *make(size_t *len, int nx, int ny, int nz, int mode, size_t es, int ext,
                     const char *exttyp)
{
    size_t n = 1024 + (size_t)ext + (size_t)nx * (size_t)ny * (size_t)nz * es;
    uint8_t *b = calloc(1, n);
    put32(b, 0, (uint32_t)nx);
    put32(b, 4, (uint32_t)ny);
    put32(b, 8, (uint32_t)nz);
    put32(b, 12, (uint32_t)mode);
    put32(b, 28, (uint32_t)nx);
    put32(b, 32, (uint32_t)ny);
    put32(b, 36, (uint32_t)nz);
    float cell = 10.0f * (float)nx;
    memcpy(b + 40, &cell, 4);
    put32(b, 92, (uint32_t)ext);
    memcpy(b + 104, exttyp, 4);
    put32(b, 108, 20140);
    memcpy(b + 208, "MAP ", 4);
    b[212] = 0x44;
    b[213] = 0x44;
    if (ext >= 8) {
        put32(b, 1024, (uint32_t)ext); /* FEI block: metadata size and version */
        put32(b, 1028, 2);
    }
    for (size_t i = 1024 + (size_t)ext; i < n; i++)
        b[i] = (uint8_t)(i * 7);
    *len = n;
    return b;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    size_t k = 0;
    if (k < max) {
        seeds[k] = make(&lens[k], 4, 3, 2, 6, 2, 0, "\0\0\0\0");
        k++;
    }
    if (k < max) {
        seeds[k] = make(&lens[k], 5, 2, 1, 2, 4, 888, "FEI2");
        k++;
    }
    if (k < max) {
        seeds[k] = make(&lens[k], 3, 3, 3, 0, 1, 16, "SERI");
        k++;
    }
    return k;
}
