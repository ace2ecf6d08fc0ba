/*
 * embed.c — Tessera embedded in another program through the public C API.
 *
 * It builds a small 4D dataset in memory (a 6×8 scan of 16×16 frames with a
 * bright disk that moves with the scan), runs two analyses in one pass (the
 * sum of all frames and a virtual bright-field detector), follows the
 * progress, takes an intermediate snapshot, and checks the results against
 * a direct computation.  Exit status 0 means every check passed.
 *
 *     cc embed.c -ltessera -o embed && ./embed
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "tessera.h"

enum { NY = 6, NX = 8, SY = 16, SX = 16 };

static int fail(const char *what, const char *msg)
{
    fprintf(stderr, "embed: %s: %s\n", what, msg);
    return 1;
}

int main(void)
{
    static uint16_t data[NY][NX][SY][SX];
    for (int y = 0; y < NY; y++)
        for (int x = 0; x < NX; x++)
            for (int i = 0; i < SY; i++)
                for (int j = 0; j < SX; j++) {
                    int cy = 8 + (y - NY / 2) / 2, cx = 8 + (x - NX / 2) / 2;
                    int d2 = (i - cy) * (i - cy) + (j - cx) * (j - cx);
                    data[y][x][i][j] = (uint16_t)(d2 <= 9 ? 100 + y * NX + x : 1);
                }

    tsr_ctx_t *ctx = NULL;
    if (tsr_ctx_new(&ctx))
        return fail("context", "out of memory");
    tsr_ctx_set(ctx, TSR_OPT_THREADS, 2);
    tsr_ctx_set(ctx, TSR_OPT_PARTITIONS, 4);

    tsr_shape_t nav = {2, {NY, NX}}, sig = {2, {SY, SX}};
    tsr_dataset_t *ds = NULL;
    tsr_udf_t *udfs[2] = {NULL, NULL};
    tsr_params_t *mp = NULL;
    tsr_run_t *run = NULL;
    int status = 1;

    if (tsr_dataset_from_memory(ctx, data, TSR_U16, &nav, &sig, false, &ds))
        return fail("dataset", tsr_ctx_errmsg(ctx));
    if (tsr_udf_new(ctx, "sum", NULL, &udfs[0])) {
        fail("sum", tsr_ctx_errmsg(ctx));
        goto done;
    }
    /* parameters as key/value strings, or JSON */
    tsr_params_new(ctx, &mp);
    if (tsr_params_add_json(mp, "{\"mask\": [\"disk:8,8,4\"]}") ||
        tsr_udf_new(ctx, "masks", mp, &udfs[1])) {
        fail("masks", tsr_ctx_errmsg(ctx));
        goto done;
    }
    if (tsr_run_start(ctx, ds, udfs, 2, NULL, &run)) {
        fail("run", tsr_ctx_errmsg(ctx));
        goto done;
    }
    while (tsr_run_wait_for(run, 5) == TSR_EAGAIN) {
        tsr_results_t *snap = NULL;
        if (tsr_run_snapshot(run, &snap) == 0) {
            int64_t n_done;
            tsr_results_damage(snap, &n_done);
            tsr_results_free(snap);
        }
    }
    if (tsr_run_wait(run)) {
        fail("run", tsr_run_errmsg(run));
        goto done;
    }
    const tsr_results_t *res;
    tsr_array_t sum, bf;
    if (tsr_run_results(run, &res) || tsr_results_find(res, 0, "intensity", &sum) ||
        tsr_results_find(res, 1, "intensity", &bf)) {
        fail("results", "missing buffer");
        goto done;
    }
    /* check against a direct computation */
    const double *s = sum.data;
    for (int i = 0; i < SY * SX; i++) {
        double want = 0;
        for (int f = 0; f < NY * NX; f++)
            want += ((const uint16_t *)data)[f * SY * SX + i];
        if (s[i] != want) {
            fprintf(stderr, "embed: sum[%d] = %g, expected %g\n", i, s[i], want);
            goto done;
        }
    }
    const float *v = bf.data;
    for (int f = 0; f < NY * NX; f++) {
        double want = 0;
        for (int i = 0; i < SY; i++)
            for (int j = 0; j < SX; j++)
                if ((i - 8) * (i - 8) + (j - 8) * (j - 8) <= 16)
                    want += ((const uint16_t *)data)[f * SY * SX + i * SX + j];
        if (fabs(v[f] - want) > 1e-5 * want) {
            fprintf(stderr, "embed: bright field[%d] = %g, expected %g\n", f, v[f], want);
            goto done;
        }
    }
    printf("embed: sum and virtual bright field of %d frames match (%s, tessera %s)\n", NY * NX,
           tsr_dtype_name(sum.dtype), tsr_version_string());
    status = 0;
done:
    tsr_run_free(run);
    tsr_udf_free(udfs[0]);
    tsr_udf_free(udfs[1]);
    tsr_params_free(mp);
    tsr_dataset_close(ds);
    tsr_ctx_free(ctx);
    return status;
}
