/* fuzz_task.c — task-description decoding on arbitrary bytes: every input
 * is either a valid description (which must re-encode to the same bytes) or
 * a clean error, and nothing leaks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/task.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx))
        return 0;
    tsr__task_t *t;
    if (tsr__task_decode(ctx, data, size, &t) == 0) {
        uint8_t *buf;
        size_t len;
        if (tsr__task_encode(ctx, t, &buf, &len) == 0) {
            if (len != size || memcmp(buf, data, len) != 0) {
                fprintf(stderr, "fuzz_task: re-encoding differs (%zu vs %zu bytes)\n", len, size);
                abort();
            }
            tsr__free(ctx, buf);
        }
        tsr__task_free(ctx, t);
    }
    size_t cur;
    tsr_ctx_memory(ctx, &cur, NULL);
    if (cur != 0) {
        fprintf(stderr, "fuzz_task: %zu bytes leaked\n", cur);
        abort();
    }
    tsr_ctx_free(ctx);
    return 0;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    if (max < 1)
        return 0;
    tsr_ctx_t *ctx;
    tsr_ctx_new(&ctx);
    tsr__task_t t;
    memset(&t, 0, sizeof t);
    char *names[2] = {"sum", "masks"};
    tsr_params_t *ps[2], *dsp;
    tsr_params_new(ctx, &dsp);
    tsr_params_add(dsp, "nav_shape", "2,3");
    tsr_params_new(ctx, &ps[0]);
    tsr_params_new(ctx, &ps[1]);
    tsr_params_add(ps[1], "mask", "disk:2,2,1");
    uint8_t roi[3] = {1, 0, 1}, ex[4] = {0, 1, 0, 0};
    float dark[4] = {1, 2, 3, 4};
    t.format = "raw";
    t.path = "/nonexistent.raw";
    t.ds_params = dsp;
    t.nav_size = 6;
    t.sig_size = 4;
    t.part_start = 3;
    t.part_end = 6;
    t.n_udfs = 2;
    t.udf_names = names;
    t.udf_params = ps;
    t.roi = roi;
    t.dark = dark;
    t.excluded = ex;
    uint8_t *buf;
    size_t len;
    size_t n = 0;
    if (tsr__task_encode(ctx, &t, &buf, &len) == 0) {
        seeds[0] = malloc(len);
        memcpy(seeds[0], buf, len);
        lens[0] = len;
        n = 1;
        tsr__free(ctx, buf);
    }
    tsr_params_free(dsp);
    tsr_params_free(ps[0]);
    tsr_params_free(ps[1]);
    tsr_ctx_free(ctx);
    return n;
}
