/*
 * test_task.c — task descriptions: a partition of a run described, encoded,
 * decoded and executed on its own gives that partition's share of the
 * results of the whole run; malformed encodings are rejected cleanly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "exec/task.h"
#include "tessera.h"

enum { NY = 6, NX = 7, SY = 5, SX = 9, NAV = NY * NX, SIG = SY * SX };

static char path[64];

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/tsr-task-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    static uint16_t data[NAV * SIG];
    for (int i = 0; i < NAV * SIG; i++)
        data[i] = (uint16_t)((i * 7919u) % 1000u);
    ssize_t w = write(fd, data, sizeof data);
    close(fd);
    return w == (ssize_t)sizeof data ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static tsr_dataset_t *open_raw(tsr_ctx_t *ctx)
{
    tsr_params_t *p;
    assert_int_equal(tsr_params_new(ctx, &p), 0);
    tsr_params_add(p, "nav_shape", "6,7");
    tsr_params_add(p, "sig_shape", "5,9");
    tsr_params_add(p, "dtype", "<u2");
    tsr_dataset_t *ds;
    assert_int_equal(tsr_dataset_open(ctx, "raw", path, p, &ds), 0);
    tsr_params_free(p);
    return ds;
}

static void test_roundtrip_and_execute(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr_ctx_set(ctx, TSR_OPT_PARTITIONS, 3);
    tsr_dataset_t *ds = open_raw(ctx);
    tsr_udf_t *udfs[2];
    assert_int_equal(tsr_udf_new(ctx, "sum", NULL, &udfs[0]), 0);
    assert_int_equal(tsr_udf_new(ctx, "sumsig", NULL, &udfs[1]), 0);
    uint8_t roi[NAV];
    for (int i = 0; i < NAV; i++)
        roi[i] = (uint8_t)(i % 3 != 1);
    float dark[SIG];
    for (int i = 0; i < SIG; i++)
        dark[i] = (float)(i % 4);
    tsr_run_opts_t opts = {.roi = roi, .corrections = {.dark = dark}};
    tsr_run_t *run;
    assert_int_equal(tsr_run_start(ctx, ds, udfs, 2, &opts, &run), 0);
    assert_int_equal(tsr_run_wait(run), 0);
    const tsr_results_t *res;
    assert_int_equal(tsr_run_results(run, &res), 0);
    tsr_array_t sum, sumsig;
    assert_int_equal(tsr_results_find(res, 0, "intensity", &sum), 0);
    assert_int_equal(tsr_results_find(res, 1, "intensity", &sumsig), 0);

    int64_t np = tsr__run_partition_count(run);
    assert_int_equal(np, 3);
    double acc[SIG] = {0};
    uint8_t covered[NAV] = {0};
    for (int64_t p = 0; p < np; p++) {
        tsr__task_t *t, *t2;
        uint8_t *buf, *buf2;
        size_t len, len2;
        assert_int_equal(tsr__task_describe(run, p, &t), 0);
        assert_string_equal(t->format, "raw");
        assert_int_equal(t->n_udfs, 2);
        assert_int_equal(tsr__task_encode(ctx, t, &buf, &len), 0);
        assert_int_equal(tsr__task_decode(ctx, buf, len, &t2), 0);
        /* the decoded description encodes to the same bytes */
        assert_int_equal(tsr__task_encode(ctx, t2, &buf2, &len2), 0);
        assert_int_equal(len, len2);
        assert_memory_equal(buf, buf2, len);
        assert_int_equal(t2->part_start, t->part_start);
        assert_int_equal(t2->part_end, t->part_end);

        tsr_results_t *part;
        assert_int_equal(tsr__task_execute(ctx, t2, &part), 0);
        tsr_array_t psum, psig;
        assert_int_equal(tsr_results_find(part, 0, "intensity", &psum), 0);
        assert_int_equal(tsr_results_find(part, 1, "intensity", &psig), 0);
        for (int i = 0; i < SIG; i++)
            acc[i] += ((const double *)psum.data)[i];
        for (int64_t f = t2->part_start; f < t2->part_end; f++) {
            covered[f]++;
            if (roi[f]) {
                assert_true(psig.valid[f]);
                assert_true(((const double *)psig.data)[f] == ((const double *)sumsig.data)[f]);
            }
        }
        tsr_results_free(part);
        tsr__free(ctx, buf);
        tsr__free(ctx, buf2);
        tsr__task_free(ctx, t);
        tsr__task_free(ctx, t2);
    }
    /* partitions cover the scan once, and their sums add up to the run's */
    for (int f = 0; f < NAV; f++)
        assert_int_equal(covered[f], 1);
    for (int i = 0; i < SIG; i++) {
        double want = ((const double *)sum.data)[i];
        assert_true(acc[i] > want - 1e-9 * want - 1e-9 && acc[i] < want + 1e-9 * want + 1e-9);
    }
    tsr_run_free(run);
    tsr_udf_free(udfs[0]);
    tsr_udf_free(udfs[1]);
    tsr_dataset_close(ds);
    tsr_ctx_free(ctx);
}

static void test_decode_rejects_garbage(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr_dataset_t *ds = open_raw(ctx);
    tsr_params_t *mp;
    tsr_params_new(ctx, &mp);
    tsr_params_add(mp, "mask", "disk:4,2,2");
    tsr_udf_t *u;
    assert_int_equal(tsr_udf_new(ctx, "masks", mp, &u), 0);
    tsr_run_t *run;
    assert_int_equal(tsr_run_start(ctx, ds, &u, 1, NULL, &run), 0);
    assert_int_equal(tsr_run_wait(run), 0);
    tsr__task_t *t, *t2;
    uint8_t *buf;
    size_t len;
    assert_int_equal(tsr__task_describe(run, 0, &t), 0);
    assert_int_equal(tsr__task_encode(ctx, t, &buf, &len), 0);
    /* every truncation is an error, never an over-read */
    for (size_t n = 0; n < len; n++)
        assert_int_equal(tsr__task_decode(ctx, buf, n, &t2), TSR_ECORRUPT);
    /* single-byte corruptions: either a clean error or a valid task */
    for (size_t i = 0; i < len; i++) {
        uint8_t saved = buf[i];
        buf[i] ^= 0xA5;
        int rc = tsr__task_decode(ctx, buf, len, &t2);
        assert_true(rc == 0 || rc == TSR_ECORRUPT || rc == TSR_ENOMEM);
        if (rc == 0)
            tsr__task_free(ctx, t2);
        buf[i] = saved;
    }
    tsr__free(ctx, buf);
    tsr__task_free(ctx, t);
    tsr_run_free(run);
    tsr_udf_free(u);
    tsr_params_free(mp);
    tsr_dataset_close(ds);
    size_t cur;
    tsr_ctx_memory(ctx, &cur, NULL);
    assert_int_equal(cur, 0);
    tsr_ctx_free(ctx);
}

static void test_memory_dataset_not_describable(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    float data[2 * 3 * 4] = {0};
    tsr_shape_t nav = {1, {2}}, sig = {2, {3, 4}};
    tsr_dataset_t *ds;
    assert_int_equal(tsr_dataset_from_memory(ctx, data, TSR_F32, &nav, &sig, false, &ds), 0);
    tsr_udf_t *u;
    assert_int_equal(tsr_udf_new(ctx, "sum", NULL, &u), 0);
    tsr_run_t *run;
    assert_int_equal(tsr_run_start(ctx, ds, &u, 1, NULL, &run), 0);
    assert_int_equal(tsr_run_wait(run), 0);
    tsr__task_t *t;
    assert_int_equal(tsr__task_describe(run, 0, &t), TSR_EUNSUPPORTED);
    assert_non_null(strstr(tsr_ctx_errmsg(ctx), "memory"));
    tsr_run_free(run);
    tsr_udf_free(u);
    tsr_dataset_close(ds);
    tsr_ctx_free(ctx);
}

/* ---- a dataset that brings its own corrections ------------------------- */

static void put32(uint8_t *b, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void write_bytes(const char *p, const void *d, size_t n)
{
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(d, 1, n, f), n);
    fclose(f);
}

/* A SEQ of NAV frames SY x SX (uint16, no footer) with a dark reference
 * beside it: every run, and every task of it, subtracts the dark exactly
 * once. */
static void test_dataset_corrections_once(void **state)
{
    (void)state;
    char seq[64], dark_path[96];
    snprintf(seq, sizeof seq, "/tmp/tsr-task-%d.seq", (int)getpid());
    snprintf(dark_path, sizeof dark_path, "%s.dark.mrc", seq);
    enum { FB = SIG * 2 };
    static uint8_t file[8192 + NAV * FB];
    memset(file, 0, sizeof file);
    put32(file, 0, 0xFEED);
    put32(file, 28, 5);
    put32(file, 548, SX);
    put32(file, 552, SY);
    put32(file, 556, 16);
    put32(file, 564, FB);
    put32(file, 568, 100);
    put32(file, 580, FB);
    uint16_t *px = (uint16_t *)(file + 8192);
    for (int i = 0; i < NAV * SIG; i++)
        px[i] = (uint16_t)(100 + (i * 31u) % 900u);
    write_bytes(seq, file, sizeof file);
    static uint8_t mrc[1024 + SIG * 4];
    memset(mrc, 0, sizeof mrc);
    put32(mrc, 0, SX);
    put32(mrc, 4, SY);
    put32(mrc, 8, 1);
    put32(mrc, 12, 2);
    memcpy(mrc + 208, "MAP ", 4);
    mrc[212] = mrc[213] = 0x44;
    float dark[SIG];
    for (int i = 0; i < SIG; i++)
        dark[i] = (float)(i % 5) + 0.5f;
    memcpy(mrc + 1024, dark, sizeof dark);
    write_bytes(dark_path, mrc, sizeof mrc);

    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr_ctx_set(ctx, TSR_OPT_PARTITIONS, 3);
    tsr_dataset_t *ds;
    assert_int_equal(tsr_dataset_open(ctx, "seq", seq, NULL, &ds), 0);
    const tsr_corrections_t *dc = tsr_dataset_corrections(ds);
    assert_non_null(dc);
    assert_non_null(dc->dark);
    assert_null(dc->gain);
    tsr_udf_t *udf;
    assert_int_equal(tsr_udf_new(ctx, "sum", NULL, &udf), 0);
    tsr_run_t *run;
    assert_int_equal(tsr_run_start(ctx, ds, &udf, 1, NULL, &run), 0);
    assert_int_equal(tsr_run_wait(run), 0);
    const tsr_results_t *res;
    tsr_array_t sum;
    assert_int_equal(tsr_run_results(run, &res), 0);
    assert_int_equal(tsr_results_find(res, 0, "intensity", &sum), 0);
    double acc[SIG] = {0};
    for (int64_t p = 0; p < tsr__run_partition_count(run); p++) {
        tsr__task_t *t;
        tsr_results_t *part;
        tsr_array_t psum;
        assert_int_equal(tsr__task_describe(run, p, &t), 0);
        assert_non_null(t->dark);
        assert_int_equal(tsr__task_execute(ctx, t, &part), 0);
        assert_int_equal(tsr_results_find(part, 0, "intensity", &psum), 0);
        for (int i = 0; i < SIG; i++)
            acc[i] += ((const double *)psum.data)[i];
        tsr_results_free(part);
        tsr__task_free(ctx, t);
    }
    for (int i = 0; i < SIG; i++) {
        double want = 0; /* sum over frames of (pixel - dark), by hand */
        for (int f = 0; f < NAV; f++)
            want += (double)px[f * SIG + i] - (double)dark[i];
        double got = ((const double *)sum.data)[i];
        assert_true(got > want - 1e-3 && got < want + 1e-3);
        assert_true(acc[i] > want - 1e-3 && acc[i] < want + 1e-3);
    }
    tsr_run_free(run);
    /* refused: the raw data */
    tsr_run_opts_t opts = {.no_dataset_corrections = true};
    assert_int_equal(tsr_run_start(ctx, ds, &udf, 1, &opts, &run), 0);
    assert_int_equal(tsr_run_wait(run), 0);
    assert_int_equal(tsr_run_results(run, &res), 0);
    assert_int_equal(tsr_results_find(res, 0, "intensity", &sum), 0);
    for (int i = 0; i < SIG; i++)
        acc[i] = 0;
    for (int64_t p = 0; p < tsr__run_partition_count(run); p++) {
        tsr__task_t *t; /* no corrections in the task: none where it runs */
        tsr_results_t *part;
        tsr_array_t psum;
        assert_int_equal(tsr__task_describe(run, p, &t), 0);
        assert_null(t->dark);
        assert_int_equal(tsr__task_execute(ctx, t, &part), 0);
        assert_int_equal(tsr_results_find(part, 0, "intensity", &psum), 0);
        for (int i = 0; i < SIG; i++)
            acc[i] += ((const double *)psum.data)[i];
        tsr_results_free(part);
        tsr__task_free(ctx, t);
    }
    for (int i = 0; i < SIG; i++) {
        double want = 0;
        for (int f = 0; f < NAV; f++)
            want += px[f * SIG + i];
        assert_true(((const double *)sum.data)[i] == want);
        assert_true(acc[i] == want);
    }
    tsr_run_free(run);
    tsr_udf_free(udf);
    tsr_dataset_close(ds);
    tsr_ctx_free(ctx);
    unlink(seq);
    unlink(dark_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_execute),
        cmocka_unit_test(test_decode_rejects_garbage),
        cmocka_unit_test(test_memory_dataset_not_describable),
        cmocka_unit_test(test_dataset_corrections_once),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
