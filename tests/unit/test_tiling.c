/*
 * test_tiling.c — src/core/tiling: tile negotiation (depth × row band sized
 * to the cache budget, honouring the format's base shape and the UDFs'
 * preferred depth) and size-based partitioning of the selected frames.
 *
 * Expected values are computed by hand from the budget arithmetic; the
 * partition checks are invariants checked against the selection itself
 * (coverage, order, balance) over a deterministic sweep of shapes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tiling.h"

static tsr__tiling_in_t tin(int ndim, int64_t d0, int64_t d1, int64_t d2, size_t elem,
                            int64_t budget)
{
    tsr__tiling_in_t in;
    memset(&in, 0, sizeof in);
    in.sig.ndim = ndim;
    in.sig.dims[0] = d0;
    in.sig.dims[1] = d1;
    in.sig.dims[2] = d2;
    in.elem_bytes = elem;
    in.budget = budget;
    return in;
}

static void negotiate(const tsr__tiling_in_t *in, int64_t want_depth, int64_t want_rows)
{
    tsr__tiling_t out = {-1, -1};
    tsr__tiling_negotiate(in, &out);
    if (out.depth != want_depth || out.rows != want_rows)
        fail_msg("negotiate(sig %lldx%lld elem %zu budget %lld pref %lld base %lld/%lld full %d): "
                 "depth %lld rows %lld, expected depth %lld rows %lld",
                 (long long)in->sig.dims[0], (long long)in->sig.dims[1], in->elem_bytes,
                 (long long)in->budget, (long long)in->pref_depth, (long long)in->base_depth,
                 (long long)in->base_rows, in->full_frames, (long long)out.depth,
                 (long long)out.rows, (long long)want_depth, (long long)want_rows);
}

/* ---- small frames: whole frames, as many as fit ------------------------ */

static void test_small_frames(void **state)
{
    (void)state;
    /* 8×8 u16 = 128 bytes; 1024 / 128 = 8 frames */
    tsr__tiling_in_t in = tin(2, 8, 8, 0, 2, 1024);
    negotiate(&in, 8, 8);
    /* 1000 / 128 = 7.8 → 7 whole frames (never over the budget) */
    in.budget = 1000;
    negotiate(&in, 7, 8);
    /* exactly one frame */
    in.budget = 128;
    negotiate(&in, 1, 8);
    /* 256×256 u16 = 128 KiB; 1 MiB → 8 frames */
    in = tin(2, 256, 256, 0, 2, 1 << 20);
    negotiate(&in, 8, 256);
    /* float64 tiles of the same: 512 KiB → 2 */
    in.elem_bytes = 8;
    negotiate(&in, 2, 256);
    /* budget 0 = the default 1 MiB */
    in.budget = 0;
    negotiate(&in, 2, 256);
    /* 1-D and 3-D sig: rows count the first dimension */
    in = tin(1, 100, 0, 0, 4, 4000); /* 400 bytes → 10 */
    negotiate(&in, 10, 100);
    in = tin(3, 2, 3, 4, 4, 960); /* 96 bytes → 10 */
    negotiate(&in, 10, 2);
}

/* ---- huge frames: depth 1 and a band of rows that fits ----------------- */

static void test_huge_frames(void **state)
{
    (void)state;
    /* 1024×1024 f32 = 4 MiB; rows of 4 KiB; 1 MiB → 256 rows */
    tsr__tiling_in_t in = tin(2, 1024, 1024, 0, 4, 1 << 20);
    negotiate(&in, 1, 256);
    /* 1000 × 1000 u16: rows of 2000 bytes; 1 MiB / 2000 = 524 rows */
    in = tin(2, 1000, 1000, 0, 2, 1 << 20);
    negotiate(&in, 1, 524);
    /* the brief's case: 8×8 u16 frames with a 64-byte budget = 4 rows;
     * with float64 tiles (8 bytes) one row of 64 bytes */
    in = tin(2, 8, 8, 0, 2, 64);
    negotiate(&in, 1, 4);
    in.elem_bytes = 8;
    negotiate(&in, 1, 1);
    /* a single row larger than the budget: still one row (never zero) */
    in = tin(2, 4, 100000, 0, 8, 1024);
    negotiate(&in, 1, 1);
    /* 3-D sig: a "row" is one slab of the first dimension */
    in = tin(3, 4, 300, 300, 8, 1 << 20); /* slabs of 720000 bytes → 1 */
    negotiate(&in, 1, 1);
    in = tin(3, 10, 10, 10, 4, 1200); /* slabs of 400 → 3 */
    negotiate(&in, 1, 3);

    /* generic property over a sweep: the band fits, and one more row
     * would not */
    for (int64_t h = 2; h <= 64; h += 7)
        for (int64_t w = 1; w <= 50; w += 9)
            for (int64_t budget = 16; budget < h * w * 4; budget = budget * 3 + 5) {
                in = tin(2, h, w, 0, 4, budget);
                tsr__tiling_t out;
                tsr__tiling_negotiate(&in, &out);
                int64_t row = w * 4;
                assert_int_equal(out.depth, 1);
                assert_true(out.rows >= 1 && out.rows <= h);
                if (row <= budget) {
                    if (!(out.rows * row <= budget &&
                          (out.rows == h || (out.rows + 1) * row > budget)))
                        fail_msg("h %lld w %lld budget %lld: rows %lld", (long long)h, (long long)w,
                                 (long long)budget, (long long)out.rows);
                } else {
                    assert_int_equal(out.rows, 1);
                }
            }
}

/* ---- full frames forced ------------------------------------------------ */

static void test_full_frames(void **state)
{
    (void)state;
    tsr__tiling_in_t in = tin(2, 1024, 1024, 0, 4, 1 << 20);
    in.full_frames = true;
    negotiate(&in, 1, 1024);
    in = tin(2, 8, 8, 0, 8, 64);
    in.full_frames = true;
    negotiate(&in, 1, 8);
    /* small frames with full_frames: as without */
    in = tin(2, 8, 8, 0, 2, 1024);
    in.full_frames = true;
    negotiate(&in, 8, 8);
}

/* ---- UDF preference ---------------------------------------------------- */

static void test_pref_depth(void **state)
{
    (void)state;
    tsr__tiling_in_t in = tin(2, 8, 8, 0, 2, 1024);
    in.pref_depth = 3;
    negotiate(&in, 3, 8);
    in.pref_depth = 1;
    negotiate(&in, 1, 8);
    /* huge frames with a preferred depth: the band shrinks to fit
     * 2 frames: 1 MiB / (4 KiB · 2) = 128 rows */
    in = tin(2, 1024, 1024, 0, 4, 1 << 20);
    in.pref_depth = 2;
    negotiate(&in, 2, 128);
    /* full frames with a preference: the preference */
    in.full_frames = true;
    in.pref_depth = 4;
    negotiate(&in, 4, 1024);
}

/* ---- format base shape ------------------------------------------------ */

static void test_base_depth(void **state)
{
    (void)state;
    /* base_depth 4: the depth is a multiple of 4 */
    tsr__tiling_in_t in = tin(2, 8, 8, 0, 2, 1024); /* 8 frames fit */
    in.base_depth = 4;
    negotiate(&in, 8, 8);
    /* fewer frames fit than the base: the base itself */
    in.budget = 300; /* 2 frames fit */
    negotiate(&in, 4, 8);
    in.budget = 100; /* not even one frame: 4 frames × a band of 1 row (64 bytes) */
    negotiate(&in, 4, 1);
    /* preference rounded up to the base */
    in.budget = 1 << 20;
    in.pref_depth = 3;
    negotiate(&in, 4, 8);
    in.pref_depth = 5;
    negotiate(&in, 8, 8);
    /* base 0 and 1 mean "any" */
    in = tin(2, 8, 8, 0, 2, 1000);
    in.base_depth = 1;
    negotiate(&in, 7, 8);
    in.base_depth = 0;
    negotiate(&in, 7, 8);
}

/* The budget is "bytes one tile may take" (tiling.h): when a multiple of
 * the base fits, the depth must be one that fits, not the next multiple
 * above what fits. */
static void test_base_depth_fits_budget(void **state)
{
    (void)state;
    tsr__tiling_in_t in = tin(2, 8, 8, 0, 2, 1000); /* 128-byte frames: 7 fit */
    in.base_depth = 4;
    tsr__tiling_t out;
    tsr__tiling_negotiate(&in, &out);
    assert_int_equal(out.depth % 4, 0);
    assert_int_equal(out.rows, 8);
    if (out.depth * 128 > in.budget)
        fail_msg("base_depth 4 with 7 frames fitting the %lld-byte budget: depth %lld takes "
                 "%lld bytes (expected depth 4 = 512 bytes)",
                 (long long)in.budget, (long long)out.depth, (long long)(out.depth * 128));
    assert_int_equal(out.depth, 4);
}

static void test_base_rows(void **state)
{
    (void)state;
    /* base_rows: bands are multiples of base_rows (or the whole frame) */
    tsr__tiling_in_t in = tin(2, 1024, 1024, 0, 4, 1 << 20); /* 256 rows fit */
    in.base_rows = 64;
    negotiate(&in, 1, 256);
    /* a base larger than what fits: one base */
    in.base_rows = 512;
    negotiate(&in, 1, 512);
    /* base_rows larger than the frame: the whole frame */
    in = tin(2, 100, 1000, 0, 4, 8000); /* 2 rows fit */
    in.base_rows = 256;
    negotiate(&in, 1, 100);
    /* base 0 and 1 mean "any" */
    in = tin(2, 1000, 1000, 0, 2, 1 << 20);
    in.base_rows = 1;
    in.base_depth = 1;
    negotiate(&in, 1, 524);
    in.base_rows = 0;
    in.base_depth = 0;
    negotiate(&in, 1, 524);
}

static void test_base_rows_fits_budget(void **state)
{
    (void)state;
    tsr__tiling_in_t in = tin(2, 1024, 1024, 0, 4, 1 << 20); /* 4 KiB rows: 256 fit */
    in.base_rows = 100;                                      /* multiples of 100 that fit: 200 */
    tsr__tiling_t out;
    tsr__tiling_negotiate(&in, &out);
    assert_int_equal(out.depth, 1);
    assert_int_equal(out.rows % 100, 0);
    if (out.rows * 4096 > in.budget)
        fail_msg("base_rows 100 with 256 rows fitting the budget: %lld rows take %lld bytes "
                 "of a %lld-byte budget (expected 200 rows)",
                 (long long)out.rows, (long long)(out.rows * 4096), (long long)in.budget);
    assert_int_equal(out.rows, 200);
}

/* ---- partitions -------------------------------------------------------- */

/* Check the invariants of a partitioning of nav_size positions of which
 * sel (n_sel, or all if NULL) are selected. */
static void check_parts(const tsr__part_t *p, int64_t n, int64_t nav_size, const int64_t *sel,
                        int64_t n_sel)
{
    assert_true(n >= 1);
    assert_int_equal(p[0].nav_start, 0);
    assert_int_equal(p[n - 1].nav_end, nav_size);
    int64_t rows = 0, rmin = INT64_MAX, rmax = 0;
    for (int64_t k = 0; k < n; k++) {
        if (k > 0 && p[k].nav_start != p[k - 1].nav_end)
            fail_msg("partition %lld starts at %lld, the previous ended at %lld", (long long)k,
                     (long long)p[k].nav_start, (long long)p[k - 1].nav_end);
        if (p[k].nav_end < p[k].nav_start)
            fail_msg("partition %lld: end %lld < start %lld", (long long)k, (long long)p[k].nav_end,
                     (long long)p[k].nav_start);
        if (p[k].row_start != rows)
            fail_msg("partition %lld: row_start %lld, expected %lld", (long long)k,
                     (long long)p[k].row_start, (long long)rows);
        /* the selected positions inside [nav_start, nav_end) are exactly
         * rows [row_start, row_start + rows) */
        int64_t inside = 0;
        for (int64_t r = 0; r < n_sel; r++) {
            int64_t f = sel ? sel[r] : r;
            bool in = f >= p[k].nav_start && f < p[k].nav_end;
            bool in_rows = r >= p[k].row_start && r < p[k].row_start + p[k].rows;
            if (in != in_rows)
                fail_msg("partition %lld [%lld, %lld) rows [%lld, +%lld): selected row %lld "
                         "(nav %lld) misplaced",
                         (long long)k, (long long)p[k].nav_start, (long long)p[k].nav_end,
                         (long long)p[k].row_start, (long long)p[k].rows, (long long)r,
                         (long long)f);
            inside += in;
        }
        assert_int_equal(inside, p[k].rows);
        rows += p[k].rows;
        rmin = p[k].rows < rmin ? p[k].rows : rmin;
        rmax = p[k].rows > rmax ? p[k].rows : rmax;
    }
    assert_int_equal(rows, n_sel);
    if (rmax - rmin > 1)
        fail_msg("unbalanced: partitions hold %lld to %lld rows", (long long)rmin, (long long)rmax);
}

static void test_partition_forced(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr__part_t *p = NULL;
    int64_t n = 0;
    /* 100 frames in 7 partitions: 14 or 15 rows each */
    assert_int_equal(tsr__partition(ctx, 100, NULL, 100, 1000, 1 << 26, 7, 1, &p, &n), 0);
    assert_int_equal(n, 7);
    check_parts(p, n, 100, NULL, 100);
    tsr__free(ctx, p);
    /* forced more than the frames: clamped */
    assert_int_equal(tsr__partition(ctx, 50, NULL, 50, 1000, 1 << 26, 200, 1, &p, &n), 0);
    assert_int_equal(n, 50);
    check_parts(p, n, 50, NULL, 50);
    for (int64_t k = 0; k < n; k++)
        assert_int_equal(p[k].rows, 1);
    tsr__free(ctx, p);
    /* one partition */
    assert_int_equal(tsr__partition(ctx, 35, NULL, 35, 128, 1 << 26, 1, 8, &p, &n), 0);
    assert_int_equal(n, 1);
    check_parts(p, n, 35, NULL, 35);
    assert_int_equal(p[0].rows, 35);
    tsr__free(ctx, p);
    /* a sparse selection: 8 selected of 50, in 3 partitions */
    const int64_t sel[] = {3, 4, 10, 11, 12, 30, 45, 49};
    assert_int_equal(tsr__partition(ctx, 50, sel, 8, 1000, 1 << 26, 3, 1, &p, &n), 0);
    assert_int_equal(n, 3);
    check_parts(p, n, 50, sel, 8);
    tsr__free(ctx, p);
    /* forced count clamped to the selected frames */
    assert_int_equal(tsr__partition(ctx, 50, sel, 8, 1000, 1 << 26, 20, 1, &p, &n), 0);
    assert_int_equal(n, 8);
    check_parts(p, n, 50, sel, 8);
    tsr__free(ctx, p);
    /* nothing selected: one empty partition spanning the nav */
    assert_int_equal(tsr__partition(ctx, 10, sel, 0, 1000, 1 << 26, 4, 1, &p, &n), 0);
    assert_int_equal(n, 1);
    check_parts(p, n, 10, sel, 0);
    tsr__free(ctx, p);
    size_t cur;
    tsr_ctx_memory(ctx, &cur, NULL);
    assert_int_equal(cur, 0);
    tsr_ctx_free(ctx);
}

static void test_partition_by_size(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr__part_t *p = NULL;
    int64_t n = 0;
    /* 100 frames of 1000 bytes, 10000 bytes per partition: at least 10
     * partitions, none larger than the target by more than a frame */
    assert_int_equal(tsr__partition(ctx, 100, NULL, 100, 1000, 10000, 0, 1, &p, &n), 0);
    check_parts(p, n, 100, NULL, 100);
    assert_true(n >= 10 && n <= 12);
    for (int64_t k = 0; k < n; k++)
        assert_true(p[k].rows * 1000 <= 10000);
    tsr__free(ctx, p);
    /* everything fits one partition, no minimum: one */
    assert_int_equal(tsr__partition(ctx, 100, NULL, 100, 1000, 1 << 26, 0, 1, &p, &n), 0);
    assert_int_equal(n, 1);
    check_parts(p, n, 100, NULL, 100);
    tsr__free(ctx, p);
    /* a minimum (workers) with enough frames is honoured */
    assert_int_equal(tsr__partition(ctx, 100, NULL, 100, 1000, 1 << 26, 0, 4, &p, &n), 0);
    assert_true(n >= 4);
    check_parts(p, n, 100, NULL, 100);
    tsr__free(ctx, p);
    /* never more partitions than selected frames */
    const int64_t sel[] = {0, 99};
    assert_int_equal(tsr__partition(ctx, 100, sel, 2, 1 << 20, 1, 0, 16, &p, &n), 0);
    assert_true(n >= 1 && n <= 2);
    check_parts(p, n, 100, sel, 2);
    tsr__free(ctx, p);
    tsr_ctx_free(ctx);
}

/* A deterministic sweep: nav sizes, selections of varying density, forced
 * counts and sizes; every partitioning must satisfy the invariants. */
static void test_partition_sweep(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    uint32_t seed = 12345;
    int64_t sel[200];
    for (int64_t nav = 1; nav <= 120; nav += (nav < 20 ? 1 : 13)) {
        for (int density = 0; density <= 4; density++) {
            int64_t ns = 0;
            for (int64_t i = 0; i < nav; i++) {
                seed = seed * 1103515245u + 12345u;
                bool take = density == 4 || (int)((seed >> 16) % 4) < density;
                if (take)
                    sel[ns++] = i;
            }
            for (int64_t forced = 0; forced <= 9; forced++) {
                tsr__part_t *p = NULL;
                int64_t n = 0;
                int64_t pb = forced ? 1 << 20 : 1000 * (1 + (nav % 5));
                assert_int_equal(tsr__partition(ctx, nav, density == 4 ? NULL : sel, ns, 300, pb,
                                                forced, (int64_t)(1 + forced % 3), &p, &n),
                                 0);
                check_parts(p, n, nav, density == 4 ? NULL : sel, ns);
                if (forced)
                    assert_int_equal(n, ns == 0 ? 1 : (forced < ns ? forced : ns));
                assert_true(n <= (ns > 0 ? ns : 1));
                tsr__free(ctx, p);
            }
        }
    }
    tsr_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_frames),     cmocka_unit_test(test_huge_frames),
        cmocka_unit_test(test_full_frames),      cmocka_unit_test(test_pref_depth),
        cmocka_unit_test(test_base_depth),       cmocka_unit_test(test_base_depth_fits_budget),
        cmocka_unit_test(test_base_rows),        cmocka_unit_test(test_base_rows_fits_budget),
        cmocka_unit_test(test_partition_forced), cmocka_unit_test(test_partition_by_size),
        cmocka_unit_test(test_partition_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
