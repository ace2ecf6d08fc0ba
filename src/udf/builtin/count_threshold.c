/*
 * count_threshold.c — the `count_threshold` UDF: the per-dataset thresholds
 * of electron counting (the `count` UDF), estimated from the background of
 * a sample of frames, as py4DSTEM's electron counting does (there with a
 * Gaussian fit to the histogram, here by sigma clipping):
 *
 *   1. n_samples frames spread evenly over the scan are read (frame
 *      floor(i · N / n_samples) for i < n_samples, N the scan size; with a
 *      ROI only those inside it);
 *   2. their pixel values are sigma-clipped: mean m and standard deviation
 *      s (ddof = 0) of all values, then of the values with |x - m| <= clip·s,
 *      repeated until the kept set no longer changes (at most 100 rounds),
 *      so that the sparse electron hits drop out and m, s describe the
 *      noise of an empty pixel (dark noise after any dark correction);
 *   3. threshold = m + nsigma·s: a pixel above it may hold an electron;
 *      xray = M + xray_nsigma·S with M, S the mean and standard deviation
 *      of all sampled values (before clipping: electrons included), as
 *      py4DSTEM does: a pixel above it was hit by an X-ray (or is hot) and
 *      is discarded.
 *
 * Results, SINGLE float64 of shape (): `threshold`, `xray`, `mean`, `std`;
 * int64 `num_frames` (frames sampled).  NaN when no frame was read.
 *
 * Only the sample is read (frames_needed).  The sampled frames are kept as
 * float32 in a private SINGLE buffer (n_samples × frame), slot by slot as
 * `pick` does (a private `have` marks the slots a task filled, and merge
 * copies those), so the result does not depend on which task read which
 * frame; finalize does the clipping in float64.
 */
#include "udf/builtin/builtin.h"

#include <math.h>

enum { BUF_THRESHOLD = 0, BUF_XRAY, BUF_MEAN, BUF_STD, BUF_NUM, BUF_SAMPLES, BUF_HAVE };

#define CT_MAX_ROUNDS 100

typedef struct ct_state {
    tsr_ctx_t *ctx;
    int64_t n;       /* samples */
    int64_t *frames; /* n: their flat nav indices, ascending */
    int64_t npix;
    double nsigma, xray_nsigma, clip;
} ct_state_t;

static const tsr_param_def_t ct_params[] = {
    {"n_samples", "int", "40", "Number of frames to sample, spread evenly over the scan.", false},
    {"nsigma", "float", "4", "threshold = mean + nsigma * std of the background.", false},
    {"xray_nsigma", "float", "10",
     "xray = mean + xray_nsigma * std of all sampled values (not clipped): pixels above it "
     "are X-ray hits, discarded.",
     false},
    {"clip", "float", "3",
     "Sigma clipping of the background: values with |x - mean| > clip * std are left out, "
     "repeatedly.",
     false},
};

static void ct_destroy(void *user_data, void *state)
{
    (void)user_data;
    ct_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->frames);
    tsr_free(st->ctx, st);
}

static int ct_param(tsr_udf_init_t *init, const char *key, double dflt, double *out)
{
    const char *v = tsr_params_get(init->params, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    char what[96], err[200];
    snprintf(what, sizeof what, "count_threshold: parameter '%s'", key);
    int rc = tsr__parse_f64(v, out, err, sizeof err, what);
    return rc < 0 ? tsr__builtin_init_fail(init, rc, "%s", err) : 0;
}

static int ct_init(tsr_udf_init_t *init)
{
    const tsr_udf_meta_t *m = init->meta;
    if (tsr__dtype_is_complex(m->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "count_threshold: complex data are not supported");
    double ns, nsig, xsig, clip;
    int rc;
    if ((rc = ct_param(init, "n_samples", 40, &ns)) < 0 ||
        (rc = ct_param(init, "nsigma", 4, &nsig)) < 0 ||
        (rc = ct_param(init, "xray_nsigma", 10, &xsig)) < 0 ||
        (rc = ct_param(init, "clip", 3, &clip)) < 0)
        return rc;
    if (!(ns >= 1 && ns <= 100000 && ns == floor(ns)))
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "count_threshold: n_samples must be an integer in [1, "
                                      "100000], got %g",
                                      ns);
    if (!(clip > 0))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "count_threshold: clip must be > 0, got %g",
                                      clip);
    const int64_t nav = tsr_shape_size(&m->nav_shape), npix = tsr_shape_size(&m->sig_shape);
    int64_t n = (int64_t)ns < nav ? (int64_t)ns : nav;
    size_t bytes;
    if (!tsr__mul_size((size_t)n, (size_t)npix, &bytes) ||
        !tsr__mul_size(bytes, sizeof(float), &bytes) || bytes > ((size_t)1 << 31))
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "count_threshold: %lld samples of %lld pixels take more "
                                      "than 2 GiB; use fewer n_samples",
                                      (long long)n, (long long)npix);
    ct_state_t *st = tsr_alloc(init->ctx, sizeof *st);
    int64_t *needed = tsr_alloc(init->ctx, (size_t)(n ? n : 1) * sizeof *needed);
    int64_t *frames = tsr_alloc(init->ctx, (size_t)(n ? n : 1) * sizeof *frames);
    if (!st || !needed || !frames) {
        tsr_free(init->ctx, st);
        tsr_free(init->ctx, needed);
        tsr_free(init->ctx, frames);
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "count_threshold: out of memory");
    }
    /* floor(i · nav / n) is strictly increasing for n <= nav */
    for (int64_t i = 0; i < n; i++)
        frames[i] = needed[i] = (int64_t)((__int128)i * nav / n);
    *st = (ct_state_t){init->ctx, n, frames, npix, nsig, xsig, clip};

    const int64_t sshape[2] = {n ? n : 1, npix};
    const int64_t nn = n ? n : 1;
    tsr__builtin_declare(init, "threshold", TSR_KIND_SINGLE, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    tsr__builtin_declare(init, "xray", TSR_KIND_SINGLE, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    tsr__builtin_declare(init, "mean", TSR_KIND_SINGLE, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    tsr__builtin_declare(init, "std", TSR_KIND_SINGLE, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    tsr__builtin_declare(init, "num_frames", TSR_KIND_SINGLE, TSR_I64, TSR_BUF_RESULT_ONLY, 0,
                         NULL);
    tsr__builtin_declare(init, "samples", TSR_KIND_SINGLE, TSR_F32, TSR_BUF_PRIVATE, 2, sshape);
    tsr__builtin_declare(init, "have", TSR_KIND_SINGLE, TSR_U8, TSR_BUF_PRIVATE, 1, &nn);
    init->input_dtype = TSR_F32;
    init->method = TSR_METHOD_TILE;
    init->frames_needed = needed;
    init->n_frames_needed = n;
    init->state = st;
    return 0;
}

/* Slot of a flat nav index, or -1. */
static int64_t ct_slot(const ct_state_t *st, int64_t f)
{
    int64_t lo = 0, hi = st->n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (st->frames[mid] < f)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < st->n && st->frames[lo] == f ? lo : -1;
}

static int ct_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const ct_state_t *st = c->state;
    if (t->dtype != TSR_F32 && t->dtype != TSR_F64)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "count_threshold: unexpected %s tiles",
                             tsr_dtype_name(t->dtype));
    float *samples = c->bufs[BUF_SAMPLES].data;
    uint8_t *have = c->bufs[BUF_HAVE].data;
    const size_t es = tsr_dtype_size(t->dtype);
    for (int64_t i = 0; i < t->depth; i++) {
        int64_t k = ct_slot(st, t->nav_index + i);
        if (k < 0)
            continue;
        tsr__convert(samples + k * st->npix + t->sig_start, TSR_F32,
                     (const char *)t->data + (size_t)(i * t->sig_len) * es, t->dtype, false,
                     (size_t)t->sig_len);
        have[k] = 1;
    }
    return 0;
}

static int ct_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    const ct_state_t *st = c->state;
    float *d = c->bufs[BUF_SAMPLES].data;
    const float *s = src[BUF_SAMPLES].data;
    uint8_t *dh = c->bufs[BUF_HAVE].data;
    const uint8_t *sh = src[BUF_HAVE].data;
    for (int64_t k = 0; k < st->n; k++)
        if (sh[k]) {
            memcpy(d + k * st->npix, s + k * st->npix, (size_t)st->npix * sizeof *d);
            dh[k] = 1;
        }
    return 0;
}

static int ct_finalize(const tsr_udf_call_t *c)
{
    const ct_state_t *st = c->state;
    const float *s = c->bufs[BUF_SAMPLES].data;
    const uint8_t *have = c->bufs[BUF_HAVE].data;
    int64_t frames = 0;
    for (int64_t k = 0; k < st->n; k++)
        frames += have[k] != 0;
    double m = NAN, sd = NAN, m_all = NAN, sd_all = NAN, lo = -INFINITY, hi = INFINITY;
    int64_t kept = -1;
    for (int round = 0; frames && round < CT_MAX_ROUNDS; round++) {
        /* mean and std of the values in [lo, hi], two passes */
        double sum = 0;
        int64_t n = 0;
        for (int64_t k = 0; k < st->n; k++) {
            if (!have[k])
                continue;
            const float *x = s + k * st->npix;
            for (int64_t p = 0; p < st->npix; p++)
                if (x[p] >= lo && x[p] <= hi) {
                    sum += x[p];
                    n++;
                }
        }
        if (n == 0 || n == kept)
            break;
        const double mean = sum / (double)n;
        double m2 = 0;
        for (int64_t k = 0; k < st->n; k++) {
            if (!have[k])
                continue;
            const float *x = s + k * st->npix;
            for (int64_t p = 0; p < st->npix; p++)
                if (x[p] >= lo && x[p] <= hi)
                    m2 += ((double)x[p] - mean) * ((double)x[p] - mean);
        }
        m = mean;
        sd = sqrt(m2 / (double)n);
        if (round == 0) {
            m_all = m;
            sd_all = sd;
        }
        kept = n;
        lo = m - st->clip * sd;
        hi = m + st->clip * sd;
    }
    *(double *)c->bufs[BUF_MEAN].data = m;
    *(double *)c->bufs[BUF_STD].data = sd;
    *(double *)c->bufs[BUF_THRESHOLD].data = m + st->nsigma * sd;
    *(double *)c->bufs[BUF_XRAY].data = m_all + st->xray_nsigma * sd_all;
    *(int64_t *)c->bufs[BUF_NUM].data = frames;
    return 0;
}

const tsr_udf_def_t tsr__udf_count_threshold = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "count_threshold",
    .description = "Thresholds for electron counting from the sigma-clipped background of "
                   "n_samples frames: `threshold` = mean + nsigma*std, `mean`, `std` (of the "
                   "background), `xray` = mean + xray_nsigma*std of all values (float64), "
                   "`num_frames`.",
    .params = ct_params,
    .n_params = sizeof ct_params / sizeof ct_params[0],
    .init = ct_init,
    .destroy = ct_destroy,
    .process_tile = ct_process_tile,
    .merge = ct_merge,
    .finalize = ct_finalize,
};
