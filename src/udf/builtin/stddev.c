/*
 * stddev.c — the `stddev` UDF: per-pixel mean, variance and standard
 * deviation over all selected frames, in one pass and mergeable (LiberTEM's
 * StdDevUDF).
 *
 * Buffers: private SIG float64 `sum` (Σx) and `varsum` (Σ(x - mean)², the
 * "M2" of Welford), SINGLE int64 `num_frames` (shape ()), and the
 * result-only SIG float64 `var`, `std` and `mean`, written in finalize:
 * var = varsum / N (population variance, numpy's np.var default), std =
 * sqrt(var), mean = sum / N; NaN everywhere when N == 0.
 *
 * Per tile (float64 input, so integers are exact), a first pass computes the
 * tile's own per-pixel sum and M2 around the tile mean (two vectorised
 * passes over the cached tile), then Chan et al.'s parallel formula folds
 * them into the task's accumulators:
 *     M2 = M2a + M2b + (mean_b - mean_a)² · na·nb / (na + nb)
 * merge folds a task's partials into the run's with the same formula.
 *
 * A frame may be split across tiles along sig, and the runtime does not
 * promise an order of tiles within a task, so the number of frames already
 * folded in (na) is kept per pixel in the task state.  At the end of a task
 * every pixel has seen the same frames; `num_frames` is counted from the
 * tiles with sig_start == 0 (each frame has exactly one).
 *
 * Complex data are rejected with TSR_EUNSUPPORTED for now.
 */
#include "udf/builtin/builtin.h"

#include <math.h>

enum { BUF_SUM = 0, BUF_VARSUM, BUF_NUM_FRAMES, BUF_VAR, BUF_STD, BUF_MEAN, BUF_COUNT };

typedef struct stddev_state {
    tsr_ctx_t *ctx;
    int64_t npix;
} stddev_state_t;

/* Per-task scratch: frames folded in per pixel, and the tile's own sums. */
typedef struct stddev_task {
    int64_t *count; /* npix */
    double *tsum;   /* npix: a tile's Σx per pixel */
    double *tm2;    /* npix: a tile's Σ(x - mean_tile)² per pixel */
} stddev_task_t;

static int stddev_init(tsr_udf_init_t *init)
{
    const tsr_udf_meta_t *m = init->meta;
    if (!tsr__dtype_valid(m->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "stddev: invalid dataset dtype %d",
                                      (int)m->dataset_dtype);
    if (tsr__dtype_is_complex(m->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "stddev: complex data (%s) are not supported yet",
                                      tsr_dtype_name(m->dataset_dtype));
    stddev_state_t *st = tsr_alloc(init->ctx, sizeof *st);
    if (!st)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "stddev: out of memory");
    st->ctx = init->ctx;
    st->npix = tsr_shape_size(&m->sig_shape);

    tsr__builtin_declare(init, "sum", TSR_KIND_SIG, TSR_F64, TSR_BUF_PRIVATE, 0, NULL);
    tsr__builtin_declare(init, "varsum", TSR_KIND_SIG, TSR_F64, TSR_BUF_PRIVATE, 0, NULL);
    tsr__builtin_declare(init, "num_frames", TSR_KIND_SINGLE, TSR_I64, 0, 0, NULL);
    tsr__builtin_declare(init, "var", TSR_KIND_SIG, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    tsr__builtin_declare(init, "std", TSR_KIND_SIG, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    tsr__builtin_declare(init, "mean", TSR_KIND_SIG, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    init->input_dtype = TSR_F64;
    init->method = TSR_METHOD_TILE;
    init->state = st;
    return 0;
}

static void stddev_destroy(void *user_data, void *state)
{
    stddev_state_t *st = state;
    if (st)
        tsr_free(st->ctx, st);
}

static void stddev_task_stop(const tsr_udf_call_t *c, void *task_state)
{
    const stddev_state_t *st = c->state;
    stddev_task_t *t = task_state;
    if (!t)
        return;
    tsr_free(st->ctx, t->count);
    tsr_free(st->ctx, t->tsum);
    tsr_free(st->ctx, t->tm2);
    tsr_free(st->ctx, t);
}

static int stddev_task_start(const tsr_udf_call_t *c, void **task_state)
{
    const stddev_state_t *st = c->state;
    size_t n8;
    if (!tsr__mul_size((size_t)st->npix, 8, &n8))
        return tsr_udf_error(c, TSR_EOVERFLOW, "stddev: signal too large");
    stddev_task_t *t = tsr_alloc(st->ctx, sizeof *t);
    if (!t)
        return tsr_udf_error(c, TSR_ENOMEM, "stddev: out of memory");
    t->count = tsr_alloc(st->ctx, n8);
    t->tsum = tsr_alloc(st->ctx, n8);
    t->tm2 = tsr_alloc(st->ctx, n8);
    if (!t->count || !t->tsum || !t->tm2) {
        stddev_task_stop(c, t);
        return tsr_udf_error(c, TSR_ENOMEM, "stddev: out of memory");
    }
    memset(t->count, 0, n8);
    *task_state = t;
    return 0;
}

/* Fold (nb, sb, m2b) into (na, *sa, *m2a) by Chan's formula. */
static inline void chan_fold(double na, double *sa, double *m2a, double nb, double sb, double m2b)
{
    if (na == 0) {
        *sa = sb;
        *m2a = m2b;
        return;
    }
    double delta = sb / nb - *sa / na;
    *m2a += m2b + delta * delta * (na * nb / (na + nb));
    *sa += sb;
}

static int stddev_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    stddev_task_t *ts = c->task_state;
    if (t->dtype != TSR_F64)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "stddev: expected float64 tiles, got %s",
                             tsr_dtype_name(t->dtype));
    const int64_t len = t->sig_len, depth = t->depth;
    const double *restrict x = t->data;
    double *restrict s = ts->tsum;
    double *restrict m2 = ts->tm2;
    if (depth <= 0)
        return 0;

    /* The tile's own sum and M2, frame by frame (vectorised over pixels). */
    memcpy(s, x, (size_t)len * sizeof *s);
    for (int64_t f = 1; f < depth; f++) {
        const double *restrict xf = x + f * len;
        for (int64_t p = 0; p < len; p++)
            s[p] += xf[p];
    }
    const double inv = 1.0 / (double)depth;
    memset(m2, 0, (size_t)len * sizeof *m2);
    for (int64_t f = 0; f < depth; f++) {
        const double *restrict xf = x + f * len;
        for (int64_t p = 0; p < len; p++) {
            double d = xf[p] - s[p] * inv;
            m2[p] += d * d;
        }
    }

    /* Fold into the task's accumulators. */
    double *sum = c->bufs[BUF_SUM].data;
    double *varsum = c->bufs[BUF_VARSUM].data;
    int64_t *count = ts->count + t->sig_start;
    for (int64_t p = 0; p < len; p++) {
        chan_fold((double)count[p], &sum[p], &varsum[p], (double)depth, s[p], m2[p]);
        count[p] += depth;
    }
    if (t->sig_start == 0)
        *(int64_t *)c->bufs[BUF_NUM_FRAMES].data += depth;
    return 0;
}

static int stddev_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    int64_t *nd = c->bufs[BUF_NUM_FRAMES].data;
    const int64_t ns = *(const int64_t *)src[BUF_NUM_FRAMES].data;
    if (ns == 0)
        return 0;
    double *sum = c->bufs[BUF_SUM].data;
    double *varsum = c->bufs[BUF_VARSUM].data;
    const double *ssum = src[BUF_SUM].data;
    const double *svar = src[BUF_VARSUM].data;
    const int64_t n = c->bufs[BUF_SUM].rows;
    for (int64_t p = 0; p < n; p++)
        chan_fold((double)*nd, &sum[p], &varsum[p], (double)ns, ssum[p], svar[p]);
    *nd += ns;
    return 0;
}

static int stddev_finalize(const tsr_udf_call_t *c)
{
    const int64_t nf = *(const int64_t *)c->bufs[BUF_NUM_FRAMES].data;
    const double *sum = c->bufs[BUF_SUM].data;
    const double *varsum = c->bufs[BUF_VARSUM].data;
    double *var = c->bufs[BUF_VAR].data;
    double *sd = c->bufs[BUF_STD].data;
    double *mean = c->bufs[BUF_MEAN].data;
    const int64_t n = c->bufs[BUF_SUM].rows;
    const double dn = nf > 0 ? (double)nf : NAN;
    for (int64_t p = 0; p < n; p++) {
        double v = varsum[p] / dn;
        var[p] = v;
        sd[p] = sqrt(v);
        mean[p] = sum[p] / dn;
    }
    return 0;
}

const tsr_udf_def_t tsr__udf_stddev = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "stddev",
    .description = "Per-pixel statistics over all selected frames, one pass and mergeable: "
                   "`mean`, `var` (population variance), `std` (sig shape, float64) and "
                   "`num_frames`.",
    .params = NULL,
    .n_params = 0,
    .init = stddev_init,
    .destroy = stddev_destroy,
    .task_start = stddev_task_start,
    .task_stop = stddev_task_stop,
    .process_tile = stddev_process_tile,
    .merge = stddev_merge,
    .finalize = stddev_finalize,
};
