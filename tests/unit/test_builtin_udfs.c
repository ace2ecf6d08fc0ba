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
#include "udf/builtin/masks_kernels.h"

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

/* Every real type through the harness, totals compared exactly (the
 * values are integers, so float totals are exact too). */
static void test_sumsig_all_types(void **state)
{
    (void)state;
    static const tsr_dtype_t types[] = {TSR_U8,  TSR_U16, TSR_U32, TSR_U64, TSR_I8,  TSR_I16,
                                        TSR_I32, TSR_I64, TSR_F32, TSR_F64, TSR_BOOL};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        tsr_dtype_t dt = types[k];
        unsigned char *data = calloc(NFRAMES * NPIX, tsr_dtype_size(dt));
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
        h_setup(&h, &tsr__udf_sumsig, dt);
        assert_int_equal(h_init(&h), 0);
        h_run(&h, data);
        const double *r = h_result(&h, "intensity", TSR_KIND_NAV, TSR_F64);
        for (int f = 0; f < NFRAMES; f++) {
            double want = 0;
            for (int p = 0; p < NPIX; p++)
                want += load(data, dt, (size_t)(f * NPIX + p));
            if (r[f] != want)
                fail_msg("%s frame %d: %.17g != %.17g", tsr_dtype_name(dt), f, r[f], want);
        }
        h_teardown(&h);
        free(data);
    }
}

/* Frames longer than the 2^15-element blocks that 8/16-bit totals are
 * first summed in (32-bit partials), at the extremes of each type. */
static void test_sumsig_long_rows(void **state)
{
    (void)state;
    enum { LEN = 3 * 32768 + 77 };
    static const struct {
        tsr_dtype_t dt;
        double v;
    } cases[] = {{TSR_U16, 65535}, {TSR_I16, -32768}, {TSR_I16, 32767},
                 {TSR_U8, 255},    {TSR_I8, -128},    {TSR_BOOL, 1}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tsr_dtype_t dt = cases[k].dt;
        unsigned char *data = malloc(2 * LEN * tsr_dtype_size(dt));
        assert_non_null(data);
        for (size_t i = 0; i < 2 * (size_t)LEN; i++)
            tsr__store_f64(data, dt, i, i < LEN ? cases[k].v : ((i - LEN) % 2 ? cases[k].v : 0));
        double out[2] = {0, 0};
        tsr_view_t v = {.data = out, .dtype = TSR_F64, .rows = 2, .row_elems = 1};
        tsr_udf_call_t c = {.bufs = &v, .n_bufs = 1};
        tsr_tile_t t = {.data = data, .dtype = dt, .depth = 2, .sig_len = LEN};
        assert_int_equal(tsr__udf_sumsig.process_tile(&c, &t), 0);
        ASSERT_DBL_EQ(out[0], cases[k].v * LEN);
        ASSERT_DBL_EQ(out[1], cases[k].v * (LEN / 2));
        free(data);
    }
}

/* ---- stddev ------------------------------------------------------------ */

/* Two-pass mean and variance of pixel p over all frames, in long double
 * (a reference well below the tolerances used). */
static void ref_moments(tsr_dtype_t dt, const void *data, int p, double *mean, double *var)
{
    long double m = 0, v = 0;
    for (int f = 0; f < NFRAMES; f++)
        m += (long double)load(data, dt, (size_t)(f * NPIX + p));
    m /= NFRAMES;
    for (int f = 0; f < NFRAMES; f++) {
        long double d = (long double)load(data, dt, (size_t)(f * NPIX + p)) - m;
        v += d * d;
    }
    *mean = (double)m;
    *var = (double)(v / NFRAMES);
}

static void check_stddev_tol(tsr_dtype_t dt, const void *data, double tol)
{
    harness_t h;
    h_setup(&h, &tsr__udf_stddev, dt);
    assert_int_equal(h_init(&h), 0);
    assert_int_equal(h.init.input_dtype, TSR_DTYPE_NATIVE);
    h_run(&h, data);
    const double *var = h_result(&h, "var", TSR_KIND_SIG, TSR_F64);
    const double *sd = h_result(&h, "std", TSR_KIND_SIG, TSR_F64);
    const double *mean = h_result(&h, "mean", TSR_KIND_SIG, TSR_F64);
    const int64_t *nf = h_result(&h, "num_frames", TSR_KIND_SINGLE, TSR_I64);
    assert_int_equal(*nf, NFRAMES);
    for (int p = 0; p < NPIX; p++) {
        double m, v;
        ref_moments(dt, data, p, &m, &v);
        ASSERT_CLOSE(mean[p], m, 1e-15);
        ASSERT_CLOSE(var[p], v, tol);
        ASSERT_CLOSE(sd[p], sqrt(v), tol);
    }
    h_teardown(&h);
}

static void check_stddev(tsr_dtype_t dt, const void *data)
{
    check_stddev_tol(dt, data, 1e-12);
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

/* The float scheme for every type that takes it, with large offsets and
 * small spreads.  Means are float64 numbers of the offset's magnitude, so
 * the fold's mean differences carry an error of about ε·|offset|, and the
 * variance one of about ε·|offset|/σ relative (σ ≈ 3.7 steps here; ε =
 * 2^-52): the tolerance is eight times that. */
static void test_stddev_float_types(void **state)
{
    (void)state;
    static const struct {
        tsr_dtype_t dt;
        double offset, step;
    } cases[] = {
        {TSR_F32, 1.0e4, 0.125}, {TSR_F64, 1.0e8, 0.25}, {TSR_F64, -3.0, 0.001},
        {TSR_U32, 4.0e9, 1},     {TSR_I32, -2.0e9, 3},   {TSR_U64, 1.0e12, 7},
        {TSR_I64, -1.0e12, 5},   {TSR_F32, 0, 1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tsr_dtype_t dt = cases[k].dt;
        unsigned char *data = calloc(NFRAMES * NPIX, tsr_dtype_size(dt));
        assert_non_null(data);
        for (int i = 0; i < NFRAMES * NPIX; i++)
            tsr__store_f64(data, dt, (size_t)i,
                           cases[k].offset + cases[k].step * (double)((i * 7919) % 13));
        double tol = 8 * 0x1p-52 * (fabs(cases[k].offset) / (3.7 * cases[k].step) + 1);
        check_stddev_tol(dt, data, tol);
        free(data);
    }
}

/* Finalize the run buffers of h (the last step of h_run). */
static void stats_finalize(harness_t *h)
{
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

/* Ways to cut the 12 frames into tasks and tiles: task k is frames
 * [bounds[k], bounds[k+1]) in tiles of depth[k] frames, so that the exact
 * kernel's passes of 8, 4, 2 and 1 frames all occur. */
typedef struct stats_plan {
    int ntasks;
    int64_t bounds[5], depth[4];
} stats_plan_t;

static const stats_plan_t stats_plans[] = {
    {2, {0, 9, 12}, {9, 2}},             /* 8+1, then 2 and 1 */
    {1, {0, 12}, {12}},                  /* 8+4 */
    {3, {0, 5, 7, 12}, {3, 1, 7}},       /* 2+1, 1, then 4+2+1 */
    {4, {0, 3, 6, 9, 12}, {4, 4, 4, 4}}, /* one task per three frames */
};

/* Exact results for integers of <= 16 bits: the private sums are the
 * exact integers Σ(x - c) and Σ(x - c)² (c = 32768 for uint16), mean is
 * Σx / N rounded once, var is (N·Q - S²) / N² from exact integers, and
 * every plan gives the same bits. */
static void check_stddev_exact(tsr_dtype_t dt, const void *data)
{
    const int64_t c = dt == TSR_U16 ? 32768 : 0;
    double first[3][NPIX];
    for (size_t k = 0; k < sizeof stats_plans / sizeof stats_plans[0]; k++) {
        const stats_plan_t *pl = &stats_plans[k];
        harness_t h;
        h_setup(&h, &tsr__udf_stddev, dt);
        assert_int_equal(h_init(&h), 0);
        assert_int_equal(h.init.input_dtype, TSR_DTYPE_NATIVE);
        for (int t = 0; t < pl->ntasks; t++)
            h_task(&h, data, pl->bounds[t], pl->bounds[t + 1], pl->depth[t], t % 2 == 1);
        stats_finalize(&h);
        const int64_t *S = h_result(&h, "sum", TSR_KIND_SIG, TSR_I64);
        const uint64_t *Q = h_result(&h, "sumsq", TSR_KIND_SIG, TSR_U64);
        const double *out[3] = {h_result(&h, "var", TSR_KIND_SIG, TSR_F64),
                                h_result(&h, "std", TSR_KIND_SIG, TSR_F64),
                                h_result(&h, "mean", TSR_KIND_SIG, TSR_F64)};
        assert_int_equal(*(const int64_t *)h_result(&h, "num_frames", TSR_KIND_SINGLE, TSR_I64),
                         NFRAMES);
        for (int p = 0; p < NPIX; p++) {
            int64_t s = 0, sx = 0;
            uint64_t q = 0;
            for (int f = 0; f < NFRAMES; f++) {
                int64_t x = (int64_t)load(data, dt, (size_t)(f * NPIX + p));
                sx += x;
                s += x - c;
                q += (uint64_t)((x - c) * (x - c));
            }
            assert_int_equal(S[p], s);
            assert_int_equal(Q[p], q);
            unsigned __int128 num =
                (unsigned __int128)NFRAMES * q - (unsigned __int128)((__int128)s * s);
            double var = (double)((long double)num / (long double)(NFRAMES * NFRAMES));
            ASSERT_DBL_EQ(out[0][p], var);
            ASSERT_DBL_EQ(out[1][p], sqrt(var));
            ASSERT_DBL_EQ(out[2][p], (double)sx / NFRAMES);
            for (int i = 0; i < 3; i++) {
                if (k == 0)
                    first[i][p] = out[i][p];
                else
                    ASSERT_DBL_EQ(out[i][p], first[i][p]);
            }
        }
        h_teardown(&h);
    }
    /* and within rounding of a two-pass variance */
    check_stddev(dt, data);
}

static void test_stddev_exact_types(void **state)
{
    (void)state;
    uint8_t du8[NFRAMES * NPIX], db[NFRAMES * NPIX];
    int8_t di8[NFRAMES * NPIX];
    uint16_t du16[NFRAMES * NPIX];
    int16_t di16[NFRAMES * NPIX];
    for (int f = 0; f < NFRAMES; f++)
        for (int p = 0; p < NPIX; p++) {
            int i = f * NPIX + p;
            int r = (i * 7919 + 13) % 65536;
            /* pixel 0: the low extreme in every frame, 1: the high one,
             * 2: alternating (the largest variance), 3: constant */
            int lo = p == 0 || (p == 2 && f % 2 == 0), hi = p == 1 || (p == 2 && f % 2 == 1);
            du16[i] = (uint16_t)(lo ? 0 : hi ? 65535 : p == 3 ? 12345 : r);
            di16[i] = (int16_t)(lo ? -32768 : hi ? 32767 : p == 3 ? -7 : r - 32768);
            du8[i] = (uint8_t)(lo ? 0 : hi ? 255 : p == 3 ? 200 : r % 256);
            di8[i] = (int8_t)(lo ? -128 : hi ? 127 : p == 3 ? -100 : r % 256 - 128);
            db[i] = (uint8_t)(hi || (!lo && r % 3 == 0));
        }
    check_stddev_exact(TSR_U16, du16);
    check_stddev_exact(TSR_I16, di16);
    check_stddev_exact(TSR_U8, du8);
    check_stddev_exact(TSR_I8, di8);
    check_stddev_exact(TSR_BOOL, db);
}

/* Tiles whose bands overlap differently (never made by the runtime, but
 * allowed by the contract): frames [0, 4) of rows 0-1, then frames [4, 12)
 * of every row, then frames [0, 4) of rows 2-4 — the float scheme must
 * fold each row with its own count.  A tile that is not whole rows is an
 * error. */
static void test_stddev_uneven_bands(void **state)
{
    (void)state;
    double data[NFRAMES * NPIX];
    for (int i = 0; i < NFRAMES * NPIX; i++)
        data[i] = 100.0 + 0.5 * (double)((i * 31) % 17);
    harness_t h;
    h_setup(&h, &tsr__udf_stddev, TSR_F64);
    assert_int_equal(h_init(&h), 0);
    tsr_view_t views[TSR_UDF_MAX_BUFFERS];
    tsr_udf_call_t c = {
        .state = h.init.state, .meta = &h.meta, .bufs = views, .n_bufs = h.init.n_buffers};
    void *ts = NULL;
    assert_int_equal(h.def->task_start(&c, &ts), 0);
    c.task_state = ts;
    static const int64_t tiles[3][4] = {
        {0, 4, 0, 2 * SIG_W}, {4, 8, 0, NPIX}, {0, 4, 2 * SIG_W, NPIX - 2 * SIG_W}};
    for (int k = 0; k < 3; k++) {
        int64_t f0 = tiles[k][0], dep = tiles[k][1], s0 = tiles[k][2], len = tiles[k][3];
        void *td = make_tile(data, TSR_F64, TSR_F64, f0, dep, s0, len);
        tsr_tile_t t = {.data = td,
                        .dtype = TSR_F64,
                        .depth = dep,
                        .nav_index = f0,
                        .row = f0,
                        .sig_start = s0,
                        .sig_len = len};
        make_views(&h, h.run, f0, dep, s0, len, false, views);
        assert_int_equal(h.def->process_tile(&c, &t), 0);
        free(td);
    }
    void *td = make_tile(data, TSR_F64, TSR_F64, 0, 1, 3, 5);
    tsr_tile_t bad = {.data = td, .dtype = TSR_F64, .depth = 1, .sig_start = 3, .sig_len = 5};
    make_views(&h, h.run, 0, 1, 3, 5, false, views);
    assert_int_equal(h.def->process_tile(&c, &bad), TSR_EINVAL);
    free(td);
    h.def->task_stop(&c, ts);
    stats_finalize(&h);
    const double *var = h_result(&h, "var", TSR_KIND_SIG, TSR_F64);
    const double *mean = h_result(&h, "mean", TSR_KIND_SIG, TSR_F64);
    assert_int_equal(*(const int64_t *)h_result(&h, "num_frames", TSR_KIND_SINGLE, TSR_I64),
                     NFRAMES);
    for (int p = 0; p < NPIX; p++) {
        double m, v;
        ref_moments(TSR_F64, data, p, &m, &v);
        ASSERT_CLOSE(mean[p], m, 1e-14);
        ASSERT_CLOSE(var[p], v, 1e-12);
    }
    h_teardown(&h);
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

/* ---- masks: kernels and paths ------------------------------------------ */

/* Deterministic pseudo-random numbers (PCG-style LCG, high bits). */
static uint64_t rng_state = 1;
static uint32_t rnd(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 32);
}

static double rnd_unit(void)
{
    return rnd() / 4294967296.0;
}

/* n random elements of dt: the whole range for 8/16/32-bit integers,
 * |v| < 2^40 for 64-bit ones (so that float64 sums stay exact), floats in
 * [-30, 70). */
static void fill_random(void *buf, tsr_dtype_t dt, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t r = rnd();
        switch (dt) {
        case TSR_BOOL: ((uint8_t *)buf)[i] = (uint8_t)(r & 1); break;
        case TSR_U8: ((uint8_t *)buf)[i] = (uint8_t)r; break;
        case TSR_I8: ((int8_t *)buf)[i] = (int8_t)(uint8_t)r; break;
        case TSR_U16: ((uint16_t *)buf)[i] = (uint16_t)r; break;
        case TSR_I16: ((int16_t *)buf)[i] = (int16_t)(uint16_t)r; break;
        case TSR_U32: ((uint32_t *)buf)[i] = r; break;
        case TSR_I32: ((int32_t *)buf)[i] = (int32_t)r; break;
        case TSR_U64: ((uint64_t *)buf)[i] = ((uint64_t)r << 8) ^ rnd(); break;
        case TSR_I64: ((int64_t *)buf)[i] = ((int64_t)(int32_t)r) * 256 + (rnd() & 255); break;
        case TSR_F32: ((float *)buf)[i] = (float)(rnd_unit() * 100 - 30); break;
        case TSR_F64: ((double *)buf)[i] = rnd_unit() * 100 - 30; break;
        default: fail_msg("fill_random: dtype %d", (int)dt);
        }
    }
}

/* Weights in [-1, 1), about a fifth of them zero. */
static void fill_weights(float *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        w[i] = rnd() % 5 == 0 ? 0.0f : (float)(rnd_unit() * 2 - 1);
}

static bool is_wide(tsr_dtype_t dt)
{
    return dt == TSR_U32 || dt == TSR_I32 || dt == TSR_U64 || dt == TSR_I64 || dt == TSR_F64;
}

/* got must equal want within the documented accuracy: 1e-5 of Σ|x·w| for
 * float32-class data, 1e-12 for float64-class data. */
static void check_close(const char *what, const char *isa, tsr_dtype_t dt, double got, double want,
                        double scale)
{
    double tol = (is_wide(dt) ? 1e-12 : 1e-5) * scale + 1e-300;
    if (!(fabs(got - want) <= tol))
        fail_msg("%s (%s, %s): got %.17g, want %.17g (scale %.3g)", what, isa, tsr_dtype_name(dt),
                 got, want, scale);
}

static const tsr_dtype_t kernel_types[] = {TSR_U8,  TSR_I8,  TSR_U16, TSR_I16, TSR_U32, TSR_I32,
                                           TSR_U64, TSR_I64, TSR_F32, TSR_F64, TSR_BOOL};

/* dot and dense of one ISA and dtype over depth frames of len pixels. */
static void check_dot_dense(const tsr__masks_kernels_t *k, const char *isa, tsr_dtype_t dt,
                            int64_t depth, int64_t len)
{
    const int64_t xs = len + 3; /* frames are not adjacent */
    const size_t es = tsr_dtype_size(dt);
    unsigned char *x = malloc((size_t)(depth * xs) * es);
    float *w = malloc((size_t)len * sizeof *w);
    assert_non_null(x);
    assert_non_null(w);
    fill_random(x, dt, (size_t)(depth * xs));
    fill_weights(w, (size_t)len);

    double acc[3 * TSR__MASKS_MAX_DEPTH];
    for (int64_t i = 0; i < 3 * depth; i++)
        acc[i] = 1.0; /* the kernels add */
    k->dot(x, xs, depth, w, len, acc, 3);
    for (int64_t f = 0; f < depth; f++) {
        double want = 1.0, scale = 1.0;
        for (int64_t p = 0; p < len; p++) {
            double v = load(x, dt, (size_t)(f * xs + p));
            want += v * w[p];
            scale += fabs(v * w[p]);
        }
        check_close("dot", isa, dt, acc[f * 3], want, scale);
        ASSERT_DBL_EQ(acc[f * 3 + 1], 1.0);
    }

    static const int64_t nds[] = {2, 3, 9, 17, 40, 70};
    for (size_t q = 0; q < sizeof nds / sizeof nds[0]; q++) {
        const int64_t nd = nds[q];
        const int64_t ld =
            (nd + TSR__MASKS_LD_ALIGN - 1) / TSR__MASKS_LD_ALIGN * TSR__MASKS_LD_ALIGN;
        float *m = calloc((size_t)(len * ld), sizeof *m);
        double *a = malloc((size_t)(depth * nd) * sizeof *a);
        assert_non_null(m);
        assert_non_null(a);
        for (int64_t p = 0; p < len; p++)
            fill_weights(m + p * ld, (size_t)nd);
        for (int64_t i = 0; i < depth * nd; i++)
            a[i] = -2.0;
        k->dense(x, xs, depth, len, m, ld, nd, a);
        for (int64_t f = 0; f < depth; f++)
            for (int64_t j = 0; j < nd; j++) {
                double want = -2.0, scale = 2.0;
                for (int64_t p = 0; p < len; p++) {
                    double v = load(x, dt, (size_t)(f * xs + p)) * m[p * ld + j];
                    want += v;
                    scale += fabs(v);
                }
                check_close("dense", isa, dt, a[f * nd + j], want, scale);
            }
        free(m);
        free(a);
    }
    free(x);
    free(w);
}

/* sum_runs and dot_runs over random runs, clipped to the tile's range
 * [s0, s0 + len). */
static void check_runs(const tsr__masks_kernels_t *k, const char *isa, tsr_dtype_t dt,
                       int64_t depth, int64_t len)
{
    const int64_t xs = len + 1, s0 = 37, s1 = s0 + len;
    const size_t es = tsr_dtype_size(dt);
    unsigned char *x = malloc((size_t)(depth * xs) * es);
    assert_non_null(x);
    fill_random(x, dt, (size_t)(depth * xs));

    /* runs over [0, s1 + 50): gaps of 0..40 pixels, lengths of 1..300 */
    enum { MAXR = 4096 };
    static tsr__masks_run_t runs[MAXR];
    static float w[1 << 20];
    int64_t nr = 0, nw = 0;
    for (int64_t p = (int64_t)(rnd() % 40); p < s1 + 50 && nr < MAXR; nr++) {
        int64_t l = rnd() % 4 == 0 ? 1 + (int64_t)(rnd() % 300) : 1 + (int64_t)(rnd() % 40);
        if (nw + l > (int64_t)(sizeof w / sizeof w[0]))
            break;
        runs[nr] = (tsr__masks_run_t){p, l, nw, 1.0};
        fill_weights(w + nw, (size_t)l);
        nw += l;
        p += l + (rnd() % 3 == 0 ? 0 : 1 + (int64_t)(rnd() % 40));
    }

    double out[TSR__MASKS_MAX_DEPTH], acc[2 * TSR__MASKS_MAX_DEPTH];
    for (int64_t i = 0; i < 2 * depth; i++)
        acc[i] = 0.5;
    k->sum_runs(x, xs, depth, runs, nr, s0, s1, out);
    k->dot_runs(x, xs, depth, runs, nr, s0, s1, w, acc, 2);
    for (int64_t f = 0; f < depth; f++) {
        double sum = 0, sscale = 0, dot = 0.5, dscale = 0.5;
        for (int64_t i = 0; i < nr; i++)
            for (int64_t p = runs[i].start; p < runs[i].start + runs[i].len; p++) {
                if (p < s0 || p >= s1)
                    continue;
                double v = load(x, dt, (size_t)(f * xs + p - s0));
                sum += v;
                sscale += fabs(v);
                dot += v * w[runs[i].woff + p - runs[i].start];
                dscale += fabs(v * w[runs[i].woff + p - runs[i].start]);
            }
        if (!tsr__dtype_is_float(dt) && out[f] != sum) /* integer sums are exact */
            fail_msg("sum_runs (%s, %s): got %.17g, want %.17g", isa, tsr_dtype_name(dt), out[f],
                     sum);
        check_close("sum_runs", isa, dt, out[f], sum, sscale);
        check_close("dot_runs", isa, dt, acc[2 * f], dot, dscale);
        ASSERT_DBL_EQ(acc[2 * f + 1], 0.5);
    }
    free(x);
}

/* Every kernel of every ISA this CPU runs, every element type, lengths
 * around the vector widths and chunk sizes, frame counts around the
 * kernels' frame blocks. */
static void test_masks_kernels(void **state)
{
    (void)state;
    static const int64_t lens[] = {1, 5, 16, 31, 64, 100, 1000, 5000};
    static const int64_t depths[] = {1, 3, 4, 5, 8, 9};
    for (int isa = 0; isa < TSR__MASKS_ISA_COUNT; isa++) {
        if (!tsr__masks_isa_available((tsr__masks_isa_t)isa)) {
            print_message("masks kernels: %s not available on this CPU\n",
                          tsr__masks_isa_name((tsr__masks_isa_t)isa));
            continue;
        }
        const char *name = tsr__masks_isa_name((tsr__masks_isa_t)isa);
        for (size_t t = 0; t < sizeof kernel_types / sizeof kernel_types[0]; t++) {
            tsr_dtype_t dt = kernel_types[t];
            const tsr__masks_kernels_t *k = tsr__masks_kernels_get(dt, (tsr__masks_isa_t)isa);
            assert_non_null(k);
            for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
                for (size_t j = 0; j < sizeof depths / sizeof depths[0]; j++) {
                    if (lens[i] >= 1000 && depths[j] != 5)
                        continue; /* long rows: one odd depth is enough */
                    check_dot_dense(k, name, dt, depths[j], lens[i]);
                    check_runs(k, name, dt, depths[j], lens[i]);
                }
        }
        /* 8/16-bit sums folded into 64 bits: runs longer than the int32
         * lanes can hold, at the largest values. */
        static const tsr_dtype_t big[] = {TSR_U8, TSR_U16, TSR_I16};
        for (size_t t = 0; t < sizeof big / sizeof big[0]; t++) {
            const int64_t len = 1200000, depth = 2;
            const tsr__masks_kernels_t *k = tsr__masks_kernels_get(big[t], (tsr__masks_isa_t)isa);
            size_t es = tsr_dtype_size(big[t]);
            unsigned char *x = malloc((size_t)(len * depth) * es);
            assert_non_null(x);
            for (int64_t i = 0; i < len * depth; i++)
                tsr__store_f64(x, big[t], (size_t)i,
                               big[t] == TSR_U8    ? 255
                               : big[t] == TSR_U16 ? 65535
                                                   : -32768);
            tsr__masks_run_t r = {0, len, -1, 1.0};
            double out[2];
            k->sum_runs(x, len, depth, &r, 1, 0, len, out);
            double v = big[t] == TSR_U8 ? 255.0 : big[t] == TSR_U16 ? 65535.0 : -32768.0;
            if (out[0] != v * (double)len || out[1] != v * (double)len)
                fail_msg("long sum_runs (%s, %s): %.17g, %.17g, want %.17g", name,
                         tsr_dtype_name(big[t]), out[0], out[1], v * (double)len);
            free(x);
        }
    }
    assert_true(tsr__masks_isa_available(tsr__masks_isa_best()));
    assert_null(tsr__masks_kernels_get(TSR_C64, TSR__MASKS_ISA_PORTABLE));
}

/* A mask stack exercising both paths: generators, weighted masks with zero
 * gaps, and 70 random masks (more than one 64-mask block); every use_sparse
 * mode must give the same results as a direct computation, for several
 * input types. */
static void test_masks_paths(void **state)
{
    (void)state;
    enum { NRAND = 70, NM = 4 + NRAND };
    char path[64];
    snprintf(path, sizeof path, "/tmp/tsr_test_masks_paths_%d.npy", (int)getpid());
    static float stack[NM][NPIX];
    memset(stack, 0, sizeof stack);
    for (int p = 0; p < NPIX; p++) {
        /* weighted, with holes: every third pixel, weight varying */
        stack[0][p] = p % 3 == 0 ? (float)(p - 12) * 0.25f : 0.0f;
        /* constant 2.5 on two separate runs */
        stack[1][p] = (p >= 3 && p < 8) || (p >= 17 && p < 24) ? 2.5f : 0.0f;
        /* one pixel in each tile half, different weights */
        stack[2][p] = p == 9 ? -1.5f : p == 10 ? 3.0f : 0.0f;
        /* dense signed */
        stack[3][p] = (float)((p * 7) % 11) - 5.0f;
        for (int j = 0; j < NRAND; j++)
            stack[4 + j][p] = (float)(rnd_unit() * 2 - 1);
    }
    write_npy(path, "<f4", "(74, 5, 5)", stack, sizeof stack);

    static const tsr_dtype_t types[] = {TSR_U16, TSR_I16, TSR_U8,  TSR_F32,
                                        TSR_I32, TSR_F64, TSR_BOOL};
    static const char *modes[] = {"auto", "true", "false", NULL};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        tsr_dtype_t dt = types[t];
        size_t es = tsr_dtype_size(dt);
        unsigned char *data = malloc(NFRAMES * NPIX * es);
        assert_non_null(data);
        fill_random(data, dt, NFRAMES * NPIX);
        for (size_t md = 0; md < sizeof modes / sizeof modes[0]; md++) {
            harness_t h;
            h_setup(&h, &tsr__udf_masks, dt);
            h_param(&h, "mask", "disk:2,2,1.5");
            h_param(&h, "mask", path);
            h_param(&h, "mask", "ring:2,2,0.5,2");
            if (modes[md])
                h_param(&h, "use_sparse", modes[md]);
            assert_int_equal(h_init(&h), 0);
            assert_int_equal(h.init.input_dtype, TSR_DTYPE_NATIVE);
            h_run(&h, data);
            tsr_dtype_t out = is_wide(dt) ? TSR_F64 : TSR_F32;
            const void *r = h_result(&h, "intensity", TSR_KIND_NAV, out);
            const int n = NM + 2;
            for (int f = 0; f < NFRAMES; f++)
                for (int m = 0; m < n; m++) {
                    double want = 0, scale = 0;
                    for (int p = 0; p < NPIX; p++) {
                        int y = p / SIG_W, x = p % SIG_W;
                        double d2 = (x - 2) * (x - 2) + (y - 2) * (y - 2);
                        double wt = m == 0       ? (d2 <= 2.25)
                                    : m == n - 1 ? (d2 > 0.25 && d2 <= 4)
                                                 : stack[m - 1][p];
                        double v = load(data, dt, (size_t)(f * NPIX + p)) * wt;
                        want += v;
                        scale += fabs(v);
                    }
                    double got = load(r, out, (size_t)(f * n + m));
                    char what[64];
                    snprintf(what, sizeof what, "use_sparse=%s frame %d mask %d",
                             modes[md] ? modes[md] : "(default)", f, m);
                    check_close(what, "best", dt, got, want, scale + fabs(want) * 1e-2);
                }
            h_teardown(&h);
        }
        free(data);
    }
    unlink(path);
}

/* Allocation failures in masks init and task_start, SQLite style: fail the
 * Nth allocation for N = 1, 2, ... until init and a task complete without
 * reaching it; every failure is TSR_ENOMEM with a message and leaks
 * nothing. */
typedef struct fail_alloc {
    long calls, fail_at, live;
} fail_alloc_t;

static void *fa_malloc(void *o, size_t n)
{
    fail_alloc_t *f = o;
    if (++f->calls == f->fail_at)
        return NULL;
    void *p = malloc(n);
    f->live += p != NULL;
    return p;
}

static void *fa_realloc(void *o, void *p, size_t n)
{
    fail_alloc_t *f = o;
    if (++f->calls == f->fail_at)
        return NULL;
    void *q = realloc(p, n);
    f->live += q && !p;
    return q;
}

static void fa_free(void *o, void *p)
{
    fail_alloc_t *f = o;
    f->live -= p != NULL;
    free(p);
}

static void test_masks_alloc_faults(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/tsr_test_masks_faults_%d.npy", (int)getpid());
    float stack[3][NPIX];
    for (int p = 0; p < NPIX; p++)
        for (int j = 0; j < 3; j++)
            stack[j][p] = (float)((p * (j + 3)) % 7) - 2.0f;
    write_npy(path, "<f4", "(3, 5, 5)", stack, sizeof stack);
    tsr_ctx_t *pctx;
    tsr_params_t *params;
    assert_int_equal(tsr_ctx_new(&pctx), 0);
    assert_int_equal(tsr_params_new(pctx, &params), 0);
    assert_int_equal(tsr_params_add(params, "mask", "disk:2,2,1"), 0);
    assert_int_equal(tsr_params_add(params, "mask", path), 0);
    assert_int_equal(tsr_params_add(params, "mask", "ring:2,2,1,2"), 0);
    tsr_udf_meta_t meta = {.nav_shape = {.ndim = 2, .dims = {NAV_H, NAV_W}},
                           .sig_shape = {.ndim = 2, .dims = {SIG_H, SIG_W}},
                           .dataset_dtype = TSR_U16,
                           .input_dtype = TSR_U16,
                           .roi_count = NFRAMES};
    for (long n = 1;; n++) {
        fail_alloc_t f = {0, 0, 0};
        tsr_allocator_t al = {fa_malloc, fa_realloc, fa_free, &f};
        tsr_ctx_t *ctx;
        assert_int_equal(tsr_ctx_new_with_allocator(&al, &ctx), 0);
        const long base = f.live;
        f.fail_at = f.calls + n;
        tsr_udf_init_t in = {.params = params, .meta = &meta, .ctx = ctx};
        int rc = tsr__udf_masks.init(&in);
        if (rc == 0) {
            tsr_udf_call_t c = {.state = in.state, .meta = &meta};
            void *ts = NULL;
            rc = tsr__udf_masks.task_start(&c, &ts);
            if (rc == 0)
                tsr__udf_masks.task_stop(&c, ts);
            tsr__udf_masks.destroy(NULL, in.state);
        } else if (!strstr(in.errmsg, "out of memory")) {
            fail_msg("allocation %ld: init failed with '%s'", n, in.errmsg);
        }
        if (rc != 0 && rc != TSR_ENOMEM)
            fail_msg("allocation %ld: code %d, expected TSR_ENOMEM", n, rc);
        if (f.live != base)
            fail_msg("allocation %ld failed: %ld blocks leaked", n, f.live - base);
        const bool reached = f.calls >= f.fail_at;
        tsr_ctx_free(ctx);
        if (!reached) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    tsr_params_free(params);
    tsr_ctx_free(pctx);
    unlink(path);
}

static void test_masks_use_sparse_errors(void **state)
{
    (void)state;
    harness_t h;
    h_setup(&h, &tsr__udf_masks, TSR_U16);
    h_param(&h, "mask", "disk:2,2,1");
    h_param(&h, "use_sparse", "maybe");
    assert_int_equal(h_init(&h), TSR_EINVAL);
    if (!strstr(h.init.errmsg, "masks: use_sparse: expected auto, true or false, got 'maybe'"))
        fail_msg("message '%s'", h.init.errmsg);
    h_teardown(&h);
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
        cmocka_unit_test(test_sum_u16_exact),
        cmocka_unit_test(test_sum_types),
        cmocka_unit_test(test_sum_all_types),
        cmocka_unit_test(test_sum_complex),
        cmocka_unit_test(test_sumsig),
        cmocka_unit_test(test_stddev),
        cmocka_unit_test(test_stddev_no_frames),
        cmocka_unit_test(test_sumsig_all_types),
        cmocka_unit_test(test_sumsig_long_rows),
        cmocka_unit_test(test_stddev_float_types),
        cmocka_unit_test(test_stddev_exact_types),
        cmocka_unit_test(test_stddev_uneven_bands),
        cmocka_unit_test(test_masks_generators),
        cmocka_unit_test(test_masks_single_f64),
        cmocka_unit_test(test_masks_errors),
        cmocka_unit_test(test_maskgen_direct),
        cmocka_unit_test(test_masks_kernels),
        cmocka_unit_test(test_masks_paths),
        cmocka_unit_test(test_masks_use_sparse_errors),
        cmocka_unit_test(test_masks_alloc_faults),
        cmocka_unit_test(test_pick),
        cmocka_unit_test(test_pick_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
