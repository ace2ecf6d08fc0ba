/*
 * test_builtin_udfs.c — the built-in UDFs (src/udf/builtin/) driven through
 * their tables without the runtime.
 *
 * A small harness plays the runtime's part as tessera.h documents it: init
 * with hand-made meta and params, buffers allocated as declared and zeroed,
 * task_start / process_tile / task_stop over hand-made tiles (every frame is
 * split into two sig tiles, and the two tasks visit tiles in different
 * orders), merge of the two tasks' partials into the run's buffers (or the
 * default NAV row copy when merge is NULL), finalize over whole buffers.
 * Results are compared with values computed here independently: integer
 * sums in uint64, a two-pass variance, masks from hand-listed pixels.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "udf/builtin/builtin.h"
#include "udf/builtin/maskgen.h"

/* ---- assertions that print both values -------------------------------- */

#define ASSERT_DBL_EQ(a, b)                                       \
    do {                                                          \
        double a_ = (a), b_ = (b);                                \
        if (!(a_ == b_))                                          \
            fail_msg("%s == %s: %.17g != %.17g", #a, #b, a_, b_); \
    } while (0)

#define ASSERT_CLOSE(a, b, rel)                                                          \
    do {                                                                                 \
        double a_ = (a), b_ = (b);                                                       \
        if (!(fabs(a_ - b_) <= (rel)*fmax(fabs(a_), fabs(b_)) + 1e-300))                 \
            fail_msg("%s ~ %s: %.17g vs %.17g (rel %g)", #a, #b, a_, b_, (double)(rel)); \
    } while (0)

/* ---- harness ----------------------------------------------------------- */

enum { NAV_H = 3, NAV_W = 4, NFRAMES = NAV_H * NAV_W, SIG_H = 5, SIG_W = 5, NPIX = 25 };
/* Every frame is cut into sig tiles [0, SPLIT) and [SPLIT, NPIX): whole
 * rows of the first sig dimension, as the runtime cuts them. */
enum { SPLIT = 2 * SIG_W };

typedef struct harness {
    const tsr_udf_def_t *def;
    tsr_ctx_t *ctx;
    tsr_params_t *params;
    tsr_udf_meta_t meta;
    tsr_udf_init_t init;
    tsr_dtype_t in_dtype; /* what the tiles carry */
    void *run[TSR_UDF_MAX_BUFFERS];
    uint8_t valid[NFRAMES];
} harness_t;

static void h_setup(harness_t *h, const tsr_udf_def_t *def, tsr_dtype_t dtype)
{
    memset(h, 0, sizeof *h);
    h->def = def;
    assert_int_equal(tsr_ctx_new(&h->ctx), 0);
    assert_int_equal(tsr_params_new(h->ctx, &h->params), 0);
    h->meta.nav_shape = (tsr_shape_t){.ndim = 2, .dims = {NAV_H, NAV_W}};
    h->meta.sig_shape = (tsr_shape_t){.ndim = 2, .dims = {SIG_H, SIG_W}};
    h->meta.dataset_dtype = dtype;
    h->meta.roi_count = NFRAMES;
    for (int i = 0; i < NFRAMES; i++)
        h->valid[i] = 1;
}

static void h_param(harness_t *h, const char *key, const char *value)
{
    assert_int_equal(tsr_params_add(h->params, key, value), 0);
}

/* The tile dtype a request resolves to (tessera.h, tsr_udf_init_t). */
static tsr_dtype_t resolve_input(tsr_dtype_t req, tsr_dtype_t ds)
{
    if (req == TSR_DTYPE_NATIVE || ds == TSR_C64)
        return ds;
    if (req == TSR_F64)
        return TSR_F64;
    switch (ds) {
    case TSR_U32:
    case TSR_I32:
    case TSR_U64:
    case TSR_I64:
    case TSR_F64: return TSR_F64;
    default: return TSR_F32;
    }
}

static int64_t decl_rows(const tsr_buffer_decl_t *b, int64_t nav_rows)
{
    return b->kind == TSR_KIND_NAV ? nav_rows : b->kind == TSR_KIND_SIG ? NPIX : 1;
}

static int64_t decl_elems(const tsr_buffer_decl_t *b)
{
    int64_t n = 1;
    for (int i = 0; i < b->extra_ndim; i++)
        n *= b->extra_shape[i];
    return n;
}

/* Run init; on success allocate the run's buffers. */
static int h_init(harness_t *h)
{
    h->init.params = h->params;
    h->init.meta = &h->meta;
    h->init.ctx = h->ctx;
    h->init.input_dtype = TSR_F32;
    /* as the runtime does: during init, what NATIVE would deliver */
    h->meta.input_dtype = h->meta.dataset_dtype;
    int rc = h->def->init(&h->init);
    if (rc < 0)
        return rc;
    assert_true(h->init.n_buffers > 0 && h->init.n_buffers <= TSR_UDF_MAX_BUFFERS);
    h->in_dtype = resolve_input(h->init.input_dtype, h->meta.dataset_dtype);
    h->meta.input_dtype = h->in_dtype;
    for (int i = 0; i < h->init.n_buffers; i++) {
        const tsr_buffer_decl_t *b = &h->init.buffers[i];
        h->run[i] =
            calloc((size_t)(decl_rows(b, NFRAMES) * decl_elems(b)), tsr_dtype_size(b->dtype));
        assert_non_null(h->run[i]);
    }
    return 0;
}

/* Element i of data (type dt) as a double; complex: the real part. */
static double load(const void *data, tsr_dtype_t dt, size_t i)
{
    switch (dt) {
    case TSR_U8:
    case TSR_BOOL: return ((const uint8_t *)data)[i];
    case TSR_U16: return ((const uint16_t *)data)[i];
    case TSR_U32: return ((const uint32_t *)data)[i];
    case TSR_U64: return (double)((const uint64_t *)data)[i];
    case TSR_I8: return ((const int8_t *)data)[i];
    case TSR_I16: return ((const int16_t *)data)[i];
    case TSR_I32: return ((const int32_t *)data)[i];
    case TSR_I64: return (double)((const int64_t *)data)[i];
    case TSR_F32: return ((const float *)data)[i];
    case TSR_F64: return ((const double *)data)[i];
    case TSR_C64: return ((const float *)data)[2 * i];
    default: fail_msg("bad dtype %d", (int)dt); return 0;
    }
}

/* Copy frames [f0, f0+depth) × pixels [s0, s0+len) of the dataset (C
 * order, type ds) into a tile buffer of type out. */
static void *make_tile(const void *data, tsr_dtype_t ds, tsr_dtype_t out, int64_t f0, int64_t depth,
                       int64_t s0, int64_t len)
{
    size_t es = tsr_dtype_size(out);
    char *t = malloc((size_t)(depth * len) * es);
    assert_non_null(t);
    for (int64_t f = 0; f < depth; f++)
        for (int64_t p = 0; p < len; p++) {
            size_t src = (size_t)((f0 + f) * NPIX + s0 + p);
            size_t dst = (size_t)(f * len + p);
            if (out == ds)
                memcpy(t + dst * es, (const char *)data + src * es, es);
            else if (out == TSR_F32)
                ((float *)t)[dst] = (float)load(data, ds, src);
            else if (out == TSR_F64)
                ((double *)t)[dst] = load(data, ds, src);
            else
                fail_msg("harness cannot convert %d to %d", (int)ds, (int)out);
        }
    return t;
}

/* Views of buffers bases (rows of NAV buffers counted from nav_row0) for a
 * callback: NAV rows [row, row+nrows), SIG pixels [s0, s0+slen), SINGLE
 * whole; RESULT_ONLY buffers get data NULL unless with_result_only. */
static void make_views(const harness_t *h, void *const *bases, int64_t row, int64_t nrows,
                       int64_t s0, int64_t slen, bool with_result_only, tsr_view_t *v)
{
    for (int i = 0; i < h->init.n_buffers; i++) {
        const tsr_buffer_decl_t *b = &h->init.buffers[i];
        size_t es = tsr_dtype_size(b->dtype);
        int64_t re = decl_elems(b);
        v[i].dtype = b->dtype;
        v[i].row_elems = re;
        if (b->kind == TSR_KIND_NAV) {
            v[i].rows = nrows;
            v[i].data = (char *)bases[i] + (size_t)(row * re) * es;
        } else if (b->kind == TSR_KIND_SIG) {
            v[i].rows = slen;
            v[i].data = (char *)bases[i] + (size_t)(s0 * re) * es;
        } else {
            v[i].rows = 1;
            v[i].data = bases[i];
        }
        if ((b->flags & TSR_BUF_RESULT_ONLY) && !with_result_only)
            v[i].data = NULL;
    }
}

/* One task over frames [a, b): tiles of `depth` frames, each split into two
 * sig tiles; sig_outer visits all frames of the first sig slice before the
 * second.  Then merge into the run's buffers. */
static void h_task(harness_t *h, const void *data, int64_t a, int64_t b, int64_t depth,
                   bool sig_outer)
{
    const int n_bufs = h->init.n_buffers;
    void *part[TSR_UDF_MAX_BUFFERS] = {0};
    for (int i = 0; i < n_bufs; i++) {
        const tsr_buffer_decl_t *d = &h->init.buffers[i];
        part[i] = calloc((size_t)(decl_rows(d, b - a) * decl_elems(d)), tsr_dtype_size(d->dtype));
        assert_non_null(part[i]);
    }
    h->meta.part_start = a;
    h->meta.part_end = b;
    h->meta.row_start = a;
    h->meta.rows = b - a;

    tsr_view_t views[TSR_UDF_MAX_BUFFERS];
    tsr_udf_call_t c = {.user_data = h->init.user_data,
                        .state = h->init.state,
                        .meta = &h->meta,
                        .bufs = views,
                        .n_bufs = n_bufs};
    void *task_state = NULL;
    if (h->def->task_start)
        assert_int_equal(h->def->task_start(&c, &task_state), 0);
    c.task_state = task_state;

    const int64_t s0s[2] = {0, SPLIT}, slens[2] = {SPLIT, NPIX - SPLIT};
    const int64_t nblocks = (b - a + depth - 1) / depth;
    for (int64_t outer = 0; outer < (sig_outer ? 2 : nblocks); outer++)
        for (int64_t inner = 0; inner < (sig_outer ? nblocks : 2); inner++) {
            int64_t blk = sig_outer ? inner : outer, s = sig_outer ? outer : inner;
            int64_t f0 = a + blk * depth;
            int64_t dep = b - f0 < depth ? b - f0 : depth;
            void *tdata =
                make_tile(data, h->meta.dataset_dtype, h->in_dtype, f0, dep, s0s[s], slens[s]);
            tsr_tile_t t = {.data = tdata,
                            .dtype = h->in_dtype,
                            .depth = dep,
                            .nav_index = f0,
                            .row = f0,
                            .sig_start = s0s[s],
                            .sig_len = slens[s]};
            make_views(h, part, f0 - a, dep, s0s[s], slens[s], false, views);
            assert_int_equal(h->def->process_tile(&c, &t), 0);
            free(tdata);
        }
    if (h->def->task_stop)
        h->def->task_stop(&c, task_state);
    c.task_state = NULL;

    /* Merge: dest views cover the task's rows; src are the whole partials. */
    tsr_view_t src[TSR_UDF_MAX_BUFFERS];
    make_views(h, part, 0, b - a, 0, NPIX, false, src);
    make_views(h, h->run, a, b - a, 0, NPIX, false, views);
    if (h->def->merge) {
        assert_int_equal(h->def->merge(&c, src), 0);
    } else {
        for (int i = 0; i < n_bufs; i++) {
            const tsr_buffer_decl_t *d = &h->init.buffers[i];
            assert_int_equal(d->kind, TSR_KIND_NAV);
            if (d->flags & TSR_BUF_RESULT_ONLY)
                continue;
            memcpy(views[i].data, src[i].data,
                   (size_t)(src[i].rows * src[i].row_elems) * tsr_dtype_size(d->dtype));
        }
    }
    for (int i = 0; i < n_bufs; i++)
        free(part[i]);
}

/* Two tasks [0, 9) and [9, 12): tiles of 9 frames (the sum kernels' blocks
 * of eight or four, plus one) and of 2, visited in opposite orders; then
 * finalize. */
static void h_run(harness_t *h, const void *data)
{
    h_task(h, data, 0, 9, 9, false);
    h_task(h, data, 9, NFRAMES, 2, true);
    if (h->def->finalize) {
        tsr_view_t views[TSR_UDF_MAX_BUFFERS];
        tsr_udf_call_t c = {.user_data = h->init.user_data,
                            .state = h->init.state,
                            .meta = &h->meta,
                            .bufs = views,
                            .n_bufs = h->init.n_buffers};
        h->meta.valid = h->valid;
        make_views(h, h->run, 0, NFRAMES, 0, NPIX, true, views);
        assert_int_equal(h->def->finalize(&c), 0);
    }
}

/* The run buffer named name, checking its declaration. */
static void *h_result(harness_t *h, const char *name, tsr_buf_kind_t kind, tsr_dtype_t dtype)
{
    for (int i = 0; i < h->init.n_buffers; i++)
        if (strcmp(h->init.buffers[i].name, name) == 0) {
            assert_int_equal(h->init.buffers[i].kind, kind);
            assert_int_equal(h->init.buffers[i].dtype, dtype);
            return h->run[i];
        }
    fail_msg("no buffer '%s'", name);
    return NULL;
}

static void h_teardown(harness_t *h)
{
    if (h->def->destroy)
        h->def->destroy(h->init.user_data, h->init.state);
    for (int i = 0; i < TSR_UDF_MAX_BUFFERS; i++)
        free(h->run[i]);
    tsr_free(h->ctx, h->init.frames_needed);
    tsr_params_free(h->params);
    tsr_ctx_free(h->ctx);
}

/* ---- sum --------------------------------------------------------------- */

static void test_sum_u16_exact(void **state)
{
    (void)state;
    uint16_t data[NFRAMES * NPIX];
    for (int i = 0; i < NFRAMES * NPIX; i++)
        data[i] = (uint16_t)(65535 - (i * 7919) % 1000);
    harness_t h;
    h_setup(&h, &tsr__udf_sum, TSR_U16);
    assert_int_equal(h_init(&h), 0);
    assert_int_equal(h.init.input_dtype, TSR_DTYPE_NATIVE);
    h_run(&h, data);
    const double *s = h_result(&h, "intensity", TSR_KIND_SIG, TSR_F64);
    for (int p = 0; p < NPIX; p++) {
        uint64_t want = 0;
        for (int f = 0; f < NFRAMES; f++)
            want += data[f * NPIX + p];
        ASSERT_DBL_EQ(s[p], (double)want);
    }
    h_teardown(&h);
}

static void test_sum_types(void **state)
{
    (void)state;
    /* i8 with negatives, and bool, both exact. */
    int8_t d8[NFRAMES * NPIX];
    uint8_t db[NFRAMES * NPIX];
    for (int i = 0; i < NFRAMES * NPIX; i++) {
        d8[i] = (int8_t)((i * 37) % 256 - 128);
        db[i] = (uint8_t)(i % 3 == 0);
    }
    harness_t h;
    h_setup(&h, &tsr__udf_sum, TSR_I8);
    assert_int_equal(h_init(&h), 0);
    h_run(&h, d8);
    const double *s = h_result(&h, "intensity", TSR_KIND_SIG, TSR_F64);
    for (int p = 0; p < NPIX; p++) {
        int64_t want = 0;
        for (int f = 0; f < NFRAMES; f++)
            want += d8[f * NPIX + p];
        ASSERT_DBL_EQ(s[p], (double)want);
    }
    h_teardown(&h);

    h_setup(&h, &tsr__udf_sum, TSR_BOOL);
    assert_int_equal(h_init(&h), 0);
    h_run(&h, db);
    s = h_result(&h, "intensity", TSR_KIND_SIG, TSR_F64);
    for (int p = 0; p < NPIX; p++) {
        int want = 0;
        for (int f = 0; f < NFRAMES; f++)
            want += db[f * NPIX + p];
        ASSERT_DBL_EQ(s[p], (double)want);
    }
    h_teardown(&h);
}

/* Every real type: values that fit each type, sums compared exactly. */
static void test_sum_all_types(void **state)
{
    (void)state;
    static const tsr_dtype_t types[] = {TSR_U8,  TSR_U16, TSR_U32, TSR_U64, TSR_I8,  TSR_I16,
                                        TSR_I32, TSR_I64, TSR_F32, TSR_F64, TSR_BOOL};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        tsr_dtype_t dt = types[k];
        size_t es = tsr_dtype_size(dt);
        unsigned char *data = calloc(NFRAMES * NPIX, es);
        assert_non_null(data);
        for (int i = 0; i < NFRAMES * NPIX; i++) {
            int64_t v = (i * 7919) % 120 - (tsr__dtype_is_signed(dt) ? 60 : 0);
            if (dt == TSR_BOOL)
                v = i % 3 == 0;
            if (dt == TSR_U32 || dt == TSR_U64)
                v += 4000000000LL;
            tsr__store_f64(data, dt, (size_t)i, (double)v);
        }
        harness_t h;
        h_setup(&h, &tsr__udf_sum, dt);
        assert_int_equal(h_init(&h), 0);
        h_run(&h, data);
        const double *r = h_result(&h, "intensity", TSR_KIND_SIG, TSR_F64);
        for (int p = 0; p < NPIX; p++) {
            double want = 0;
            for (int f = 0; f < NFRAMES; f++)
                want += load(data, dt, (size_t)(f * NPIX + p));
            if (r[p] != want)
                fail_msg("%s pixel %d: %.17g != %.17g", tsr_dtype_name(dt), p, r[p], want);
        }
        h_teardown(&h);
        free(data);
    }
}

static void test_sum_complex(void **state)
{
    (void)state;
    float dc[NFRAMES * NPIX * 2];
    for (int i = 0; i < NFRAMES * NPIX; i++) {
        dc[2 * i] = (float)(i % 17) - 3.0f;
        dc[2 * i + 1] = 0.5f * (float)(i % 5);
    }
    harness_t h;
    h_setup(&h, &tsr__udf_sum, TSR_C64);
    assert_int_equal(h_init(&h), 0);
    h_run(&h, dc);
    const float *s = h_result(&h, "intensity", TSR_KIND_SIG, TSR_C64);
    for (int p = 0; p < NPIX; p++) {
        double re = 0, im = 0;
        for (int f = 0; f < NFRAMES; f++) {
            re += dc[2 * (f * NPIX + p)];
            im += dc[2 * (f * NPIX + p) + 1];
        }
        ASSERT_DBL_EQ(s[2 * p], re);
        ASSERT_DBL_EQ(s[2 * p + 1], im);
    }
    h_teardown(&h);
}

/* ---- sumsig ------------------------------------------------------------ */

static void test_sumsig(void **state)
{
    (void)state;
    uint16_t data[NFRAMES * NPIX];
    for (int i = 0; i < NFRAMES * NPIX; i++)
        data[i] = (uint16_t)(60000 + (i * 31) % 5000);
    harness_t h;
    h_setup(&h, &tsr__udf_sumsig, TSR_U16);
    assert_int_equal(h_init(&h), 0);
    h_run(&h, data);
    const double *s = h_result(&h, "intensity", TSR_KIND_NAV, TSR_F64);
    for (int f = 0; f < NFRAMES; f++) {
        uint64_t want = 0;
        for (int p = 0; p < NPIX; p++)
            want += data[f * NPIX + p];
        ASSERT_DBL_EQ(s[f], (double)want);
    }
    h_teardown(&h);

    float df[NFRAMES * NPIX];
    for (int i = 0; i < NFRAMES * NPIX; i++)
        df[i] = 0.1f * (float)((i * 13) % 29) - 1.0f;
    h_setup(&h, &tsr__udf_sumsig, TSR_F32);
    assert_int_equal(h_init(&h), 0);
    h_run(&h, df);
    s = h_result(&h, "intensity", TSR_KIND_NAV, TSR_F64);
    for (int f = 0; f < NFRAMES; f++) {
        double want = 0;
        for (int p = 0; p < NPIX; p++)
            want += df[f * NPIX + p];
        ASSERT_CLOSE(s[f], want, 1e-12);
    }
    h_teardown(&h);
}

/* ---- stddev ------------------------------------------------------------ */

static void check_stddev(tsr_dtype_t dt, const void *data)
{
    harness_t h;
    h_setup(&h, &tsr__udf_stddev, dt);
    assert_int_equal(h_init(&h), 0);
    h_run(&h, data);
    const double *var = h_result(&h, "var", TSR_KIND_SIG, TSR_F64);
    const double *sd = h_result(&h, "std", TSR_KIND_SIG, TSR_F64);
    const double *mean = h_result(&h, "mean", TSR_KIND_SIG, TSR_F64);
    const int64_t *nf = h_result(&h, "num_frames", TSR_KIND_SINGLE, TSR_I64);
    assert_int_equal(*nf, NFRAMES);
    for (int p = 0; p < NPIX; p++) {
        double m = 0, v = 0;
        for (int f = 0; f < NFRAMES; f++)
            m += load(data, dt, (size_t)(f * NPIX + p));
        m /= NFRAMES;
        for (int f = 0; f < NFRAMES; f++) {
            double d = load(data, dt, (size_t)(f * NPIX + p)) - m;
            v += d * d;
        }
        v /= NFRAMES;
        ASSERT_CLOSE(mean[p], m, 1e-13);
        ASSERT_CLOSE(var[p], v, 1e-12);
        ASSERT_CLOSE(sd[p], sqrt(v), 1e-12);
    }
    h_teardown(&h);
}

static void test_stddev(void **state)
{
    (void)state;
    uint16_t d16[NFRAMES * NPIX];
    float df[NFRAMES * NPIX];
    for (int i = 0; i < NFRAMES * NPIX; i++) {
        d16[i] = (uint16_t)(1000 + (i * 7919) % 977);
        /* A large offset with a small spread: naive Σx² would lose it. */
        df[i] = 1.0e4f + 0.25f * (float)((i * 31) % 11);
    }
    check_stddev(TSR_U16, d16);
    check_stddev(TSR_F32, df);
}

static void test_stddev_no_frames(void **state)
{
    (void)state;
    harness_t h;
    h_setup(&h, &tsr__udf_stddev, TSR_F32);
    assert_int_equal(h_init(&h), 0);
    tsr_view_t views[TSR_UDF_MAX_BUFFERS];
    tsr_udf_call_t c = {
        .state = h.init.state, .meta = &h.meta, .bufs = views, .n_bufs = h.init.n_buffers};
    make_views(&h, h.run, 0, NFRAMES, 0, NPIX, true, views);
    assert_int_equal(h.def->finalize(&c), 0);
    const double *var = h_result(&h, "var", TSR_KIND_SIG, TSR_F64);
    const double *mean = h_result(&h, "mean", TSR_KIND_SIG, TSR_F64);
    for (int p = 0; p < NPIX; p++) {
        assert_true(isnan(var[p]));
        assert_true(isnan(mean[p]));
    }
    h_teardown(&h);

    h_setup(&h, &tsr__udf_stddev, TSR_C64);
    assert_int_equal(h_init(&h), TSR_EUNSUPPORTED);
    h_teardown(&h);
}

/* ---- masks ------------------------------------------------------------- */

static float frame_value(int f, int p)
{
    return (float)(f * 100 + p) * 0.5f;
}

/* Expected intensity of frame f over the listed (y, x) pixels. */
static double expect_pixels(int f, const int (*px)[2], int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += frame_value(f, px[i][0] * SIG_W + px[i][1]);
    return s;
}

static void write_npy(const char *path, const char *descr, const char *shape, const void *data,
                      size_t bytes)
{
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint16_t hl = (uint16_t)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++)
        fputc(' ', f);
    fputc('\n', f);
    fwrite(data, 1, bytes, f);
    fclose(f);
}

static void test_masks_generators(void **state)
{
    (void)state;
    float data[NFRAMES * NPIX];
    for (int f = 0; f < NFRAMES; f++)
        for (int p = 0; p < NPIX; p++)
            data[f * NPIX + p] = frame_value(f, p);

    /* A two-mask stack from an .npy file (uint8, converted to float32):
     * column 0, and the main diagonal. */
    char path[64];
    snprintf(path, sizeof path, "/tmp/tsr_test_masks_%d.npy", (int)getpid());
    uint8_t stack[2 * NPIX] = {0};
    for (int y = 0; y < SIG_H; y++) {
        stack[y * SIG_W] = 1;
        stack[NPIX + y * SIG_W + y] = 1;
    }
    write_npy(path, "|u1", "(2, 5, 5)", stack, sizeof stack);

    harness_t h;
    h_setup(&h, &tsr__udf_masks, TSR_F32);
    h_param(&h, "mask", "disk:2,2,1");
    h_param(&h, "mask", "ring:2,2,1,2");
    h_param(&h, "mask", "point:3,1");
    h_param(&h, "mask", "rect:1,1,3,2");
    h_param(&h, "mask", "rect:-1,-1,3,3");
    h_param(&h, "mask", path);
    assert_int_equal(h_init(&h), 0);
    assert_int_equal(h.init.buffers[0].extra_ndim, 1);
    assert_int_equal(h.init.buffers[0].extra_shape[0], 7);
    h_run(&h, data);
    unlink(path);
    const float *r = h_result(&h, "intensity", TSR_KIND_NAV, TSR_F32);

    static const int disk[][2] = {{1, 2}, {2, 1}, {2, 2}, {2, 3}, {3, 2}};
    static const int ring[][2] = {{0, 2}, {2, 0}, {2, 4}, {4, 2}, {1, 1}, {1, 3}, {3, 1}, {3, 3}};
    static const int point[][2] = {{1, 3}};
    static const int rect[][2] = {{1, 1}, {1, 2}, {1, 3}, {2, 1}, {2, 2}, {2, 3}};
    static const int clip[][2] = {{0, 0}, {0, 1}, {1, 0}, {1, 1}};
    static const int col0[][2] = {{0, 0}, {1, 0}, {2, 0}, {3, 0}, {4, 0}};
    static const int diag[][2] = {{0, 0}, {1, 1}, {2, 2}, {3, 3}, {4, 4}};
    for (int f = 0; f < NFRAMES; f++) {
        const float *o = r + f * 7;
        ASSERT_CLOSE(o[0], expect_pixels(f, disk, 5), 1e-6);
        ASSERT_CLOSE(o[1], expect_pixels(f, ring, 8), 1e-6);
        ASSERT_CLOSE(o[2], expect_pixels(f, point, 1), 1e-6);
        ASSERT_CLOSE(o[3], expect_pixels(f, rect, 6), 1e-6);
        ASSERT_CLOSE(o[4], expect_pixels(f, clip, 4), 1e-6);
        ASSERT_CLOSE(o[5], expect_pixels(f, col0, 5), 1e-6);
        ASSERT_CLOSE(o[6], expect_pixels(f, diag, 5), 1e-6);
    }
    h_teardown(&h);
}

static void test_masks_single_f64(void **state)
{
    (void)state;
    /* int32 data arrive as float64 and give a float64 result. */
    int32_t data[NFRAMES * NPIX];
    for (int i = 0; i < NFRAMES * NPIX; i++)
        data[i] = 100000 * (i % 7) - 3;
    harness_t h;
    h_setup(&h, &tsr__udf_masks, TSR_I32);
    h_param(&h, "mask", "disk:2,2,1.5");
    assert_int_equal(h_init(&h), 0);
    h_run(&h, data);
    const double *r = h_result(&h, "intensity", TSR_KIND_NAV, TSR_F64);
    for (int f = 0; f < NFRAMES; f++) {
        double want = 0;
        for (int y = 0; y < SIG_H; y++)
            for (int x = 0; x < SIG_W; x++)
                if ((x - 2) * (x - 2) + (y - 2) * (y - 2) <= 2) /* r² = 2.25 */
                    want += data[f * NPIX + y * SIG_W + x];
        ASSERT_DBL_EQ(r[f], want);
    }
    h_teardown(&h);
}

static void expect_masks_error(const char *spec, int code, const char *msg)
{
    harness_t h;
    h_setup(&h, &tsr__udf_masks, TSR_U16);
    if (spec)
        h_param(&h, "mask", spec);
    assert_int_equal(h_init(&h), code);
    if (msg && !strstr(h.init.errmsg, msg))
        fail_msg("message '%s' lacks '%s'", h.init.errmsg, msg);
    h_teardown(&h);
}

static void test_masks_errors(void **state)
{
    (void)state;
    expect_masks_error("disk:1,2", TSR_EINVAL, "masks: mask 'disk:1,2' needs 3 numbers (cx,cy,r)");
    expect_masks_error("disk:1,2,3,4", TSR_EINVAL, "needs 3 numbers");
    expect_masks_error("ring:2,2,3,1", TSR_EINVAL, "ri <= ro");
    expect_masks_error("disk:1,x,3", TSR_EINVAL, "'x' is not a finite number");
    expect_masks_error("point:9,1", TSR_EINVAL, "outside");
    expect_masks_error("rect:0,0,1.5,2", TSR_EINVAL, "integers");
    expect_masks_error("circle:1,2,3", TSR_EINVAL, "unknown generator 'circle'");
    expect_masks_error(NULL, TSR_EINVAL, "'mask' is required");

    char path[64];
    snprintf(path, sizeof path, "/tmp/tsr_test_badmask_%d.npy", (int)getpid());
    float m[9] = {0};
    write_npy(path, "<f4", "(3, 3)", m, sizeof m);
    expect_masks_error(path, TSR_EINVAL, "has shape (3, 3), expected the signal shape (5, 5)");
    unlink(path);

    harness_t h;
    h_setup(&h, &tsr__udf_masks, TSR_C64);
    h_param(&h, "mask", "disk:1,1,1");
    assert_int_equal(h_init(&h), TSR_EUNSUPPORTED);
    h_teardown(&h);
}

static void test_maskgen_direct(void **state)
{
    (void)state;
    tsr_shape_t sig = {.ndim = 2, .dims = {SIG_H, SIG_W}};
    float m[NPIX];
    char err[200];
    struct {
        const char *spec;
        int count;
    } cases[] = {{"disk:2,2,1", 5},    {"ring:2,2,1,2", 8},    {"point:2,2", 1},
                 {"point:2.4,1.6", 1}, {"rect:0,0,5,5", 25},   {"rect:4,4,10,10", 1},
                 {"disk:2,2,0", 1},    {"disk: 2 , 2 , 2", 13}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_true(tsr__mask_is_generator(cases[i].spec));
        assert_int_equal(tsr__mask_generate(cases[i].spec, &sig, m, err, sizeof err), 0);
        int n = 0;
        for (int p = 0; p < NPIX; p++)
            n += m[p] != 0.0f;
        if (n != cases[i].count)
            fail_msg("%s: %d pixels, expected %d", cases[i].spec, n, cases[i].count);
    }
    /* point rounds: (cx=2.4, cy=1.6) is pixel (y=2, x=2). */
    assert_int_equal(tsr__mask_generate("point:2.4,1.6", &sig, m, err, sizeof err), 0);
    assert_true(m[2 * SIG_W + 2] == 1.0f);

    assert_false(tsr__mask_is_generator("masks.npy"));
    assert_false(tsr__mask_is_generator("disk"));
    tsr_shape_t sig1 = {.ndim = 1, .dims = {25}};
    assert_int_equal(tsr__mask_generate("disk:1,1,1", &sig1, m, err, sizeof err), TSR_EUNSUPPORTED);
    assert_non_null(strstr(err, "2-D"));
}

/* ---- pick -------------------------------------------------------------- */

static void test_pick(void **state)
{
    (void)state;
    uint16_t data[NFRAMES * NPIX];
    for (int i = 0; i < NFRAMES * NPIX; i++)
        data[i] = (uint16_t)(i * 3 + 1);
    harness_t h;
    h_setup(&h, &tsr__udf_pick, TSR_U16);
    h_param(&h, "nav", "2,1"); /* flat 9, in the second task */
    h_param(&h, "nav", "1");   /* flat 1, in the first task */
    assert_int_equal(h_init(&h), 0);
    assert_int_equal(h.init.n_frames_needed, 2);
    assert_int_equal(h.init.frames_needed[0], 1);
    assert_int_equal(h.init.frames_needed[1], 9);
    const tsr_buffer_decl_t *b = &h.init.buffers[0];
    assert_string_equal(b->name, "intensity");
    assert_int_equal(b->extra_ndim, 3);
    assert_int_equal(b->extra_shape[0], 2);
    assert_int_equal(b->extra_shape[1], SIG_H);
    assert_int_equal(b->extra_shape[2], SIG_W);
    h_run(&h, data);
    const uint16_t *r = h_result(&h, "intensity", TSR_KIND_SINGLE, TSR_U16);
    assert_memory_equal(r, data + 9 * NPIX, NPIX * sizeof *r);
    assert_memory_equal(r + NPIX, data + 1 * NPIX, NPIX * sizeof *r);
    h_teardown(&h);
}

static void test_pick_errors(void **state)
{
    (void)state;
    static const struct {
        const char *nav;
        int code;
        const char *msg;
    } cases[] = {
        {"3,0", TSR_ERANGE, "pick: nav '3,0' is out of range for nav shape (3, 4)"},
        {"12", TSR_ERANGE, "flat index 12 is out of range"},
        {"-1,0", TSR_ERANGE, "out of range"},
        {"1,2,3", TSR_EINVAL, "has 3 coordinates"},
        {"a,b", TSR_EINVAL, "not a list of integers"},
        {NULL, TSR_EINVAL, "'nav' is required"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        harness_t h;
        h_setup(&h, &tsr__udf_pick, TSR_U8);
        if (cases[i].nav)
            h_param(&h, "nav", cases[i].nav);
        assert_int_equal(h_init(&h), cases[i].code);
        if (!strstr(h.init.errmsg, cases[i].msg))
            fail_msg("message '%s' lacks '%s'", h.init.errmsg, cases[i].msg);
        h_teardown(&h);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sum_u16_exact),    cmocka_unit_test(test_sum_types),
        cmocka_unit_test(test_sum_all_types),    cmocka_unit_test(test_sum_complex),
        cmocka_unit_test(test_sumsig),           cmocka_unit_test(test_stddev),
        cmocka_unit_test(test_stddev_no_frames), cmocka_unit_test(test_masks_generators),
        cmocka_unit_test(test_masks_single_f64), cmocka_unit_test(test_masks_errors),
        cmocka_unit_test(test_maskgen_direct),   cmocka_unit_test(test_pick),
        cmocka_unit_test(test_pick_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
