/* fuzz_npy_open.c — whole .npy files through auto-detection, open and a
 * read of every frame: malformed files must give a clean error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/tsr-fuzz-npy-%d.npy", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, NULL, path, NULL, &ds) == 0) {
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

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    if (max < 1)
        return 0;
    const char *dict = "{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3, 4, 4), }\n";
    size_t hl = strlen(dict), data = 2 * 3 * 4 * 4 * 2;
    uint8_t *b = malloc(10 + hl + data);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)hl;
    b[9] = 0;
    memcpy(b + 10, dict, hl);
    for (size_t i = 0; i < data; i++)
        b[10 + hl + i] = (uint8_t)i;
    seeds[0] = b;
    lens[0] = 10 + hl + data;
    return 1;
}
