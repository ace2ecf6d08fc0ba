/*
 * radial_fourier.c — the `radial_fourier` UDF: the Fourier series of each
 * frame's intensity along rings around (cx, cy) (LiberTEM's
 * RadialFourierAnalysis).  For ring b and order n = 0 .. max_order:
 *
 *     c[b, n] = Σ_p x[p] · w_b(p) · e^{i·n·phi(p)},   phi = atan2(y - cy, x - cx)
 *
 * with LiberTEM's antialiased rings (masks.radial_bins): n_bins rings of
 * width dr = (ro - ri) / n_bins, ring b centred at r_b (numpy's
 * linspace(ri, ro - dr, n_bins) + dr/2), weight
 * w_b(p) = clip(dr/2 + 0.5 - |r(p) - r_b|, 0, 1), so that neighbouring
 * rings overlap by one pixel and the weights of a pixel add up to 1; if
 * ri < 0.5 the pixel nearest the centre (numpy's round, half to even) gets
 * weight 1 - ri in ring 0.  |c[b, n]| measures the n-fold symmetry of ring
 * b: a ring with six peaks has its largest |c| (past order 0) at n = 6.
 *
 * Results, NAV buffers of extra shape (n_bins, max_order + 1) (one map per
 * ring and order, as LiberTEM's absolute_<bin>_<order> results are):
 * `complex` (complex64), `absolute` = |c| and `phase` = arg c (float32);
 * and `dominant`, NAV (n_bins,) int32: the order n >= 1 with the largest
 * |c[b, n]| (the lowest of equal ones; 0 when max_order is 0 and where
 * the frame was not processed, as the runtime marks invalid integer
 * results).
 *
 * Work: init lists every (pixel, ring) pair with a nonzero weight, by
 * ring and then pixel, with cos phi and sin phi.  The tiles arrive as
 * float32 (float64 for 32/64-bit integer and float64 data), eight frames
 * per tile; per pair and per group of eight frames the modulator e^{i·n·phi}
 * is carried from order to order by one complex multiplication (float64,
 * error about n·ε) and multiplied into the eight frames' weighted values
 * (see the kernel below).  A tile that holds only some rows of its frames
 * visits the pairs of those rows (binary search within each ring), and the
 * sums live in a private float64 NAV buffer `acc` that the tiles of a frame
 * add to; finalize derives the results.
 */
#include "udf/builtin/radial.h"

#include <stdlib.h>

enum { BUF_COMPLEX = 0, BUF_ABSOLUTE, BUF_PHASE, BUF_DOMINANT, BUF_ACC };

#define RF_GROUP 8
#define RF_MAX_ORDER 1000
#define RF_MAX_BINS 10000
#define RF_MAX_COEFFS 65536 /* per frame: the task scratch is 128 bytes each */

typedef struct rf_entry {
    int32_t pix, bin;
    double w, c, s; /* weight, cos phi, sin phi */
} rf_entry_t;

typedef struct rf_state {
    tsr_ctx_t *ctx;
    int64_t n_bins, orders;
    rf_entry_t *e; /* init only: (pixel, ring) pairs by pixel */
    int64_t n;
    /* the pairs by ring, then pixel: ring b is [boff[b], boff[b + 1]) */
    int64_t *boff;
    int32_t *pix;
    double *w, *c, *s;
} rf_state_t;

static const tsr_param_def_t rf_params[] = {
    {"cx", "float", "", "Centre x (column) in pixels; default: width / 2.", false},
    {"cy", "float", "", "Centre y (row) in pixels; default: height / 2.", false},
    {"ri", "float", "0", "Inner radius of the first ring.", false},
    {"ro", "float", "",
     "Outer radius of the last ring; default: LiberTEM's bounding radius, which covers the "
     "frame.",
     false},
    {"n_bins", "int", "1", "Number of rings of equal width between ri and ro.", false},
    {"max_order", "int", "24", "Highest order n of the series (orders 0 .. max_order).", false},
};

/* ---- init -------------------------------------------------------------- */

static void rf_destroy(void *user_data, void *state)
{
    (void)user_data;
    rf_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->e);
    tsr_free(st->ctx, st->boff);
    tsr_free(st->ctx, st->pix);
    tsr_free(st->ctx, st->w);
    tsr_free(st->ctx, st->c);
    tsr_free(st->ctx, st->s);
    tsr_free(st->ctx, st);
}

/* The weight of radius r in the ring centred at r0 of width dr. */
static double rf_weight(double r, double r0, double dr)
{
    double v = dr / 2 + 0.5 - fabs(r - r0);
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

static int rf_init(tsr_udf_init_t *init)
{
    const char *U = "radial_fourier";
    int64_t h, w, n_bins, max_order;
    double cx, cy, ri, ro;
    int rc;
    if ((rc = tsr__radial_sig2d(init, U, &h, &w)) < 0)
        return rc;
    if (tsr__dtype_is_complex(init->meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "%s: complex data are not supported",
                                      U);
    if ((rc = tsr__radial_center(init, U, h, w, &cx, &cy)) < 0 ||
        (rc = tsr__radial_f64(init, U, "ri", 0, &ri, NULL)) < 0 ||
        (rc = tsr__radial_f64(init, U, "ro", tsr__radial_bounding(cx, cy, h, w), &ro, NULL)) < 0 ||
        (rc = tsr__radial_i64(init, U, "n_bins", 1, &n_bins, NULL)) < 0 ||
        (rc = tsr__radial_i64(init, U, "max_order", 24, &max_order, NULL)) < 0)
        return rc;
    if (!(ri >= 0) || !(ro > ri))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "%s: need 0 <= ri < ro, got ri=%g, ro=%g",
                                      U, ri, ro);
    if (n_bins < 1 || n_bins > RF_MAX_BINS)
        return tsr__builtin_init_fail(init, TSR_EINVAL, "%s: n_bins must be in [1, %d], got %lld",
                                      U, RF_MAX_BINS, (long long)n_bins);
    if (max_order < 0 || max_order > RF_MAX_ORDER)
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "%s: max_order must be in [0, %d], got %lld", U, RF_MAX_ORDER,
                                      (long long)max_order);
    if (n_bins * (max_order + 1) > RF_MAX_COEFFS)
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "%s: n_bins x (max_order + 1) = %lld coefficients per frame "
                                      "is too many (at most %d)",
                                      U, (long long)(n_bins * (max_order + 1)), RF_MAX_COEFFS);
    const double dr = (ro - ri) / (double)n_bins;
    /* numpy's linspace(ri, ro - dr, n_bins) + dr/2 */
    double *r0 = tsr_alloc(init->ctx, (size_t)n_bins * sizeof *r0);
    rf_state_t *st = tsr_alloc(init->ctx, sizeof *st);
    if (!r0 || !st) {
        tsr_free(init->ctx, r0);
        tsr_free(init->ctx, st);
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "%s: out of memory", U);
    }
    const double step = n_bins > 1 ? (ro - dr - ri) / (double)(n_bins - 1) : 0;
    for (int64_t b = 0; b < n_bins; b++)
        r0[b] = (n_bins > 1 && b == n_bins - 1 ? ro - dr : ri + (double)b * step) + dr / 2;
    memset(st, 0, sizeof *st);
    st->ctx = init->ctx;
    st->n_bins = n_bins;
    st->orders = max_order + 1;

    /* the centre pixel of ring 0 (LiberTEM patches its singularity) */
    const int64_t py = (int64_t)nearbyint(cy), px = (int64_t)nearbyint(cx);
    const bool patch = ri < 0.5 && py >= 0 && py < h && px >= 0 && px < w;
    /* two passes: count, then fill (pixels in order, so sorted) */
    for (int pass = 0; pass < 2; pass++) {
        int64_t n = 0;
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++) {
                const double r = tsr__radial_r(cx, cy, y, x);
                const double phi = atan2((double)y - cy, (double)x - cx);
                /* the rings this radius can reach */
                int64_t blo = (int64_t)floor((r - ri - 0.5) / dr) - 1;
                int64_t bhi = (int64_t)floor((r - ri + 0.5) / dr) + 1;
                blo = blo < 0 ? 0 : blo;
                bhi = bhi >= n_bins ? n_bins - 1 : bhi;
                for (int64_t b = blo; b <= bhi; b++) {
                    double wt = rf_weight(r, r0[b], dr);
                    if (b == 0 && patch && y == py && x == px)
                        wt = 1 - ri;
                    if (wt == 0)
                        continue;
                    if (pass == 1)
                        st->e[n] =
                            (rf_entry_t){(int32_t)(y * w + x), (int32_t)b, wt, cos(phi), sin(phi)};
                    n++;
                }
            }
        if (pass == 0) {
            st->e = tsr_alloc(init->ctx, (size_t)(n ? n : 1) * sizeof *st->e);
            if (!st->e) {
                tsr_free(init->ctx, r0);
                rf_destroy(NULL, st);
                return tsr__builtin_init_fail(init, TSR_ENOMEM, "%s: out of memory", U);
            }
        }
        st->n = n;
    }
    tsr_free(init->ctx, r0);
    /* by ring (a stable counting sort keeps the pixel order) */
    const size_t ne = (size_t)(st->n ? st->n : 1);
    st->boff = tsr_alloc(init->ctx, (size_t)(n_bins + 1) * sizeof *st->boff);
    st->pix = tsr_alloc(init->ctx, ne * sizeof *st->pix);
    st->w = tsr_alloc(init->ctx, ne * sizeof *st->w);
    st->c = tsr_alloc(init->ctx, ne * sizeof *st->c);
    st->s = tsr_alloc(init->ctx, ne * sizeof *st->s);
    if (!st->boff || !st->pix || !st->w || !st->c || !st->s) {
        rf_destroy(NULL, st);
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "%s: out of memory", U);
    }
    memset(st->boff, 0, (size_t)(n_bins + 1) * sizeof *st->boff);
    for (int64_t k = 0; k < st->n; k++)
        st->boff[st->e[k].bin + 1]++;
    for (int64_t b = 0; b < n_bins; b++)
        st->boff[b + 1] += st->boff[b];
    for (int64_t k = 0; k < st->n; k++) {
        int64_t j = st->boff[st->e[k].bin]++;
        st->pix[j] = st->e[k].pix;
        st->w[j] = st->e[k].w;
        st->c[j] = st->e[k].c;
        st->s[j] = st->e[k].s;
    }
    for (int64_t b = n_bins; b > 0; b--)
        st->boff[b] = st->boff[b - 1];
    st->boff[0] = 0;
    tsr_free(init->ctx, st->e);
    st->e = NULL;

    const int64_t shape[2] = {n_bins, st->orders};
    const int64_t acc_shape[3] = {n_bins, st->orders, 2};
    tsr__builtin_declare(init, "complex", TSR_KIND_NAV, TSR_C64, TSR_BUF_RESULT_ONLY, 2, shape);
    tsr__builtin_declare(init, "absolute", TSR_KIND_NAV, TSR_F32, TSR_BUF_RESULT_ONLY, 2, shape);
    tsr__builtin_declare(init, "phase", TSR_KIND_NAV, TSR_F32, TSR_BUF_RESULT_ONLY, 2, shape);
    tsr__builtin_declare(init, "dominant", TSR_KIND_NAV, TSR_I32, TSR_BUF_RESULT_ONLY, 1, shape);
    tsr__builtin_declare(init, "acc", TSR_KIND_NAV, TSR_F64, TSR_BUF_PRIVATE, 3, acc_shape);
    /* float32 tiles (exact for integers up to 2^24; float64 where the data
     * need it), eight frames each, so that the kernel's groups are full */
    init->input_dtype = TSR_F32;
    init->method = TSR_METHOD_TILE;
    init->tile_depth = RF_GROUP;
    init->state = st;
    return 0;
}

/* ---- processing --------------------------------------------------------
 * Per tile, group of RF_GROUP frames and ring: the ring's pixels are taken
 * four at a time (one vector lane each, so that four independent
 * recursions of the modulator overlap instead of one long dependency
 * chain), and for every order n the eight frames' values times the four
 * modulators are added into per-lane sums C[n][re/im][frame], reduced over
 * the lanes at the end of the ring.  The kernel is written with the
 * GCC/Clang vector extension and compiled twice, for the baseline (SSE2)
 * and for AVX2 (no FMA, so both give the same bits); tsr__builtin_isa()
 * chooses. */

typedef double rf_v4 __attribute__((vector_size(32)));

#define RF_KERNEL(NAME, T, ATTR)                                                                   \
    ATTR static void NAME(const rf_state_t *st, rf_v4 *restrict C, const T *x, int64_t fs,         \
                          int64_t nf, int64_t s0, int64_t lo, int64_t hi, double *out,             \
                          int64_t ostride, int64_t bin)                                            \
    {                                                                                              \
        const int64_t O = st->orders;                                                              \
        memset(C, 0, (size_t)(O * 2 * RF_GROUP) * sizeof *C);                                      \
        for (int64_t e0 = lo; e0 < hi; e0 += 4) {                                                  \
            rf_v4 V[RF_GROUP], zr = {1, 1, 1, 1}, zi = {0, 0, 0, 0}, cs, sn;                       \
            for (int f = 0; f < RF_GROUP; f++)                                                     \
                V[f] = (rf_v4){0, 0, 0, 0};                                                        \
            cs = sn = (rf_v4){0, 0, 0, 0};                                                         \
            for (int l = 0; l < 4 && e0 + l < hi; l++) {                                           \
                const int64_t e = e0 + l;                                                          \
                const T *xp = x + (st->pix[e] - s0);                                               \
                for (int f = 0; f < nf; f++)                                                       \
                    V[f][l] = (double)xp[f * fs] * st->w[e];                                       \
                cs[l] = st->c[e];                                                                  \
                sn[l] = st->s[e];                                                                  \
            }                                                                                      \
            rf_v4 *restrict a = C;                                                                 \
            for (int64_t o = 0; o < O; o++, a += 2 * RF_GROUP) {                                   \
                for (int f = 0; f < RF_GROUP; f++) {                                               \
                    a[f] += V[f] * zr;                                                             \
                    a[RF_GROUP + f] += V[f] * zi;                                                  \
                }                                                                                  \
                const rf_v4 nr = zr * cs - zi * sn;                                                \
                zi = zr * sn + zi * cs;                                                            \
                zr = nr;                                                                           \
            }                                                                                      \
        }                                                                                          \
        for (int64_t o = 0; o < O; o++)                                                            \
            for (int f = 0; f < nf; f++) {                                                         \
                const rf_v4 re = C[o * 2 * RF_GROUP + f], im = C[o * 2 * RF_GROUP + RF_GROUP + f]; \
                double *d = out + f * ostride + (bin * O + o) * 2;                                 \
                d[0] += (re[0] + re[1]) + (re[2] + re[3]);                                         \
                d[1] += (im[0] + im[1]) + (im[2] + im[3]);                                         \
            }                                                                                      \
    }
RF_KERNEL(rf_ring_f32, float, )
RF_KERNEL(rf_ring_f64, double, )
#if TSR__BUILTIN_HAVE_AVX2
RF_KERNEL(rf_ring_f32_avx2, float, TSR__BUILTIN_AVX2)
RF_KERNEL(rf_ring_f64_avx2, double, TSR__BUILTIN_AVX2)
#endif

/* Task scratch: the sums C, orders × (re, im) × RF_GROUP vectors. */
static int rf_task_start(const tsr_udf_call_t *c, void **task_state)
{
    const rf_state_t *st = c->state;
    size_t n = (size_t)(st->orders * 2 * RF_GROUP) * sizeof(rf_v4);
    rf_v4 *s = tsr__malloc_aligned(st->ctx, n);
    if (!s)
        return tsr_udf_error(c, TSR_ENOMEM, "radial_fourier: out of memory");
    *task_state = s;
    return 0;
}

static void rf_task_stop(const tsr_udf_call_t *c, void *task_state)
{
    const rf_state_t *st = c->state;
    tsr__free_aligned(st->ctx, task_state);
}

/* First j in [lo, hi) with pix[j] >= v. */
static int64_t rf_lower_bound(const int32_t *pix, int64_t lo, int64_t hi, int64_t v)
{
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (pix[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int rf_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const rf_state_t *st = c->state;
    if (t->dtype != TSR_F32 && t->dtype != TSR_F64)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "radial_fourier: unexpected %s tiles",
                             tsr_dtype_name(t->dtype));
    const bool f32 = t->dtype == TSR_F32;
    const int64_t len = t->sig_len, s0 = t->sig_start;
    const int64_t npix = c->meta->sig_shape.dims[0] * c->meta->sig_shape.dims[1];
    const int64_t row = st->n_bins * st->orders * 2;
    const bool whole = s0 == 0 && len == npix;
    double *acc = c->bufs[BUF_ACC].data;
    int isa = 0;
#if TSR__BUILTIN_HAVE_AVX2
    isa = tsr__builtin_isa() >= TSR__BUILTIN_ISA_AVX2;
#endif
    for (int64_t f0 = 0; f0 < t->depth; f0 += RF_GROUP) {
        const int64_t nf = t->depth - f0 < RF_GROUP ? t->depth - f0 : RF_GROUP;
        const float *xf = f32 ? (const float *)t->data + f0 * len : NULL;
        const double *xd = f32 ? NULL : (const double *)t->data + f0 * len;
        for (int64_t b = 0; b < st->n_bins; b++) {
            int64_t lo = st->boff[b], hi = st->boff[b + 1];
            if (!whole) {
                lo = rf_lower_bound(st->pix, lo, hi, s0);
                hi = rf_lower_bound(st->pix, lo, hi, s0 + len);
            }
            if (lo == hi)
                continue;
            double *out = acc + f0 * row;
#if TSR__BUILTIN_HAVE_AVX2
            if (isa) {
                if (f32)
                    rf_ring_f32_avx2(st, c->task_state, xf, len, nf, s0, lo, hi, out, row, b);
                else
                    rf_ring_f64_avx2(st, c->task_state, xd, len, nf, s0, lo, hi, out, row, b);
                continue;
            }
#endif
            (void)isa;
            if (f32)
                rf_ring_f32(st, c->task_state, xf, len, nf, s0, lo, hi, out, row, b);
            else
                rf_ring_f64(st, c->task_state, xd, len, nf, s0, lo, hi, out, row, b);
        }
    }
    return 0;
}

static int rf_finalize(const tsr_udf_call_t *c)
{
    const rf_state_t *st = c->state;
    const int64_t O = st->orders, nb = st->n_bins, rows = c->bufs[BUF_ACC].rows;
    const double *acc = c->bufs[BUF_ACC].data;
    float *cplx = c->bufs[BUF_COMPLEX].data;
    float *ab = c->bufs[BUF_ABSOLUTE].data;
    float *ph = c->bufs[BUF_PHASE].data;
    int32_t *dom = c->bufs[BUF_DOMINANT].data;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t b = 0; b < nb; b++) {
            const int64_t base = (i * nb + b) * O;
            double best = -1;
            int32_t arg = 0;
            for (int64_t o = 0; o < O; o++) {
                const double re = acc[2 * (base + o)], im = acc[2 * (base + o) + 1];
                const double m = hypot(re, im);
                cplx[2 * (base + o)] = (float)re;
                cplx[2 * (base + o) + 1] = (float)im;
                ab[base + o] = (float)m;
                ph[base + o] = (float)atan2(im, re);
                if (o >= 1 && m > best) {
                    best = m;
                    arg = (int32_t)o;
                }
            }
            dom[i * nb + b] = arg;
        }
    return 0;
}

const tsr_udf_def_t tsr__udf_radial_fourier = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "radial_fourier",
    .description = "Fourier series of the intensity along rings around (cx, cy) (LiberTEM's "
                   "RadialFourierAnalysis): `complex`, `absolute`, `phase` nav x (n_bins, "
                   "max_order+1); `dominant` nav x (n_bins,) int32, the order >= 1 of largest "
                   "absolute value.",
    .params = rf_params,
    .n_params = sizeof rf_params / sizeof rf_params[0],
    .init = rf_init,
    .destroy = rf_destroy,
    .task_start = rf_task_start,
    .task_stop = rf_task_stop,
    .process_tile = rf_process_tile,
    .finalize = rf_finalize,
};
