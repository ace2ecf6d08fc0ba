/*
 * radial_profile.c — the `radial_profile` UDF: the azimuthal mean of every
 * frame in rings around (cx, cy), a NAV result `intensity` of n_bins values
 * per frame.
 *
 * Bins are hard (each pixel belongs to at most one): bin b holds the pixels
 * with ri <= r < ro and floor((r - ri) / width) == b (b clamped to n_bins - 1
 * against rounding at r just below ro), width = (ro - ri) / n_bins, or given,
 * then n_bins = ceil((ro - ri) / width) and the last bin ends at ro.  Pixels
 * set in the optional `exclude` mask belong to no bin.  The profile is
 * intensity[b] = Σ_{p in b} x[p] / |b|, NaN for an empty bin.
 *
 * Init makes the pixel lists once: the frame is cut into bands of R rows
 * (R chosen so that R rows of eight frames, in the tiles' type, take about
 * 32 KiB: they stay in L1 while the band is worked on), and within a band
 * the pixels are grouped by bin (a *segment*), in raster order inside a
 * segment.  A tile is then processed band by band, segment by segment: the
 * kernel gathers the segment's pixels from eight frames at once into eight
 * register accumulators (exact 64-bit integers for integer data, float64
 * otherwise) and adds them to the frames' per-bin sums once.  The pixel
 * index is loaded once for eight frames and nothing is stored per pixel,
 * which is what makes a histogram-like reduction run near the speed of
 * reading the data (a scatter into per-bin accumulators would store once
 * per pixel and stall on repeated bins).
 *
 * uint16 data (the usual detector data) go faster on x86-64: for each band
 * and group of eight frames, the band is first transposed (SSE2, 8 × 8
 * blocks of 16-bit values) into pixel-major order, eight frames of one
 * pixel in one 16-byte vector; a segment then costs one vector load, a
 * widening to 32 bits and two vector additions per pixel for all eight
 * frames (exact: a segment has at most 32768 pixels, so its sums fit an
 * int32).  The transposition costs less than the scalar loads it saves.
 * Frames larger than a tile are cut into row bands by the runtime; the UDF
 * then asks for eight frames per tile so that this still applies.
 *
 * A tile may hold only some rows of its frames (large frames): bands it
 * covers only in part are clipped by binary search within each segment, and
 * the per-bin sums live in a private float64 NAV buffer `sum` that the tiles
 * of a frame add to; finalize divides by the bin's pixel count.  Integer
 * sums are exact (while below 2^53), so integer results do not depend on
 * tiling or partitioning.
 */
#include "udf/builtin/radial.h"

#include <stdlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define RP_HAVE_SSE2 1
#else
#define RP_HAVE_SSE2 0
#endif

enum { BUF_INTENSITY = 0, BUF_PIXELS, BUF_RADIUS, BUF_SUM };

/* Frames of one tile that the band is sized for, and the band budget. */
#define RP_FRAMES 8
#define RP_BAND_BYTES 32768
#define RP_MAX_BINS 1000000

typedef struct rp_state {
    tsr_ctx_t *ctx;
    int64_t h, w, n_bins;
    int64_t band_rows, n_bands;
    bool simd;         /* uint16 tiles take the transposing path */
    int32_t *pix;      /* entries: pixel indices by (band, bin, pixel) */
    int64_t *seg_off;  /* n_segs + 1: entries of segment s */
    int32_t *seg_bin;  /* n_segs: the bin of segment s */
    int64_t *band_seg; /* n_bands + 1: segments of band k */
    int64_t *count;    /* n_bins: pixels per bin */
    double *radius;    /* n_bins: the middle of each bin's radius range */
} rp_state_t;

static const tsr_param_def_t rp_params[] = {
    {"cx", "float", "", "Centre x (column) in pixels; default: width / 2.", false},
    {"cy", "float", "", "Centre y (row) in pixels; default: height / 2.", false},
    {"ri", "float", "0", "Inner radius: pixels with r >= ri are binned.", false},
    {"ro", "float", "",
     "Outer radius: pixels with r < ro are binned; default: LiberTEM's bounding radius "
     "ceil(sqrt(max(cy, h-cy)^2 + max(cx, w-cx)^2)) + 1, which covers the frame.",
     false},
    {"n_bins", "int", "",
     "Number of rings of equal width between ri and ro; default round(ro - ri) (1-pixel "
     "rings). Exclusive with width.",
     false},
    {"width", "float", "",
     "Ring width in pixels; n_bins = ceil((ro - ri) / width), the last ring ends at ro. "
     "Exclusive with n_bins.",
     false},
    {"exclude", "path", "",
     "An .npy file of the signal's shape: nonzero pixels are left out of every ring.", false},
};

/* ---- kernels ----------------------------------------------------------- */

/* out[f·ostride] += Σ_i x[f][pix[i] - base] for each of depth frames (frame
 * stride fs elements).  A: the accumulator (exact int64 for integers that
 * fit, double otherwise). */
#define RP_KERNEL(NAME, T, A)                                                                     \
    static void NAME(const void *xv, int64_t fs, int64_t depth, const int32_t *restrict pix,      \
                     int64_t n, int64_t base, double *restrict out, int64_t ostride)              \
    {                                                                                             \
        const T *restrict x = (const T *)xv;                                                      \
        int64_t f = 0;                                                                            \
        for (; f + 8 <= depth; f += 8) {                                                          \
            const T *restrict s = x + f * fs;                                                     \
            A a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;                     \
            for (int64_t i = 0; i < n; i++) {                                                     \
                const T *restrict q = s + (pix[i] - base);                                        \
                a0 += (A)q[0];                                                                    \
                a1 += (A)q[fs];                                                                   \
                a2 += (A)q[2 * fs];                                                               \
                a3 += (A)q[3 * fs];                                                               \
                a4 += (A)q[4 * fs];                                                               \
                a5 += (A)q[5 * fs];                                                               \
                a6 += (A)q[6 * fs];                                                               \
                a7 += (A)q[7 * fs];                                                               \
            }                                                                                     \
            double *o = out + f * ostride;                                                        \
            o[0] += (double)a0;                                                                   \
            o[ostride] += (double)a1;                                                             \
            o[2 * ostride] += (double)a2;                                                         \
            o[3 * ostride] += (double)a3;                                                         \
            o[4 * ostride] += (double)a4;                                                         \
            o[5 * ostride] += (double)a5;                                                         \
            o[6 * ostride] += (double)a6;                                                         \
            o[7 * ostride] += (double)a7;                                                         \
        }                                                                                         \
        for (; f + 2 <= depth; f += 2) {                                                          \
            const T *restrict s = x + f * fs;                                                     \
            A a0 = 0, a1 = 0, b0 = 0, b1 = 0;                                                     \
            int64_t i = 0;                                                                        \
            for (; i + 2 <= n; i += 2) {                                                          \
                const T *restrict q = s + (pix[i] - base), *restrict r = s + (pix[i + 1] - base); \
                a0 += (A)q[0];                                                                    \
                a1 += (A)q[fs];                                                                   \
                b0 += (A)r[0];                                                                    \
                b1 += (A)r[fs];                                                                   \
            }                                                                                     \
            if (i < n) {                                                                          \
                const T *restrict q = s + (pix[i] - base);                                        \
                a0 += (A)q[0];                                                                    \
                a1 += (A)q[fs];                                                                   \
            }                                                                                     \
            out[f * ostride] += (double)(a0 + b0);                                                \
            out[(f + 1) * ostride] += (double)(a1 + b1);                                          \
        }                                                                                         \
        if (f < depth) {                                                                          \
            const T *restrict s = x + f * fs;                                                     \
            A a0 = 0, a1 = 0, a2 = 0, a3 = 0;                                                     \
            int64_t i = 0;                                                                        \
            for (; i + 4 <= n; i += 4) {                                                          \
                a0 += (A)s[pix[i] - base];                                                        \
                a1 += (A)s[pix[i + 1] - base];                                                    \
                a2 += (A)s[pix[i + 2] - base];                                                    \
                a3 += (A)s[pix[i + 3] - base];                                                    \
            }                                                                                     \
            for (; i < n; i++)                                                                    \
                a0 += (A)s[pix[i] - base];                                                        \
            out[f * ostride] += (double)((a0 + a1) + (a2 + a3));                                  \
        }                                                                                         \
    }

RP_KERNEL(rp_u8, uint8_t, int64_t)
RP_KERNEL(rp_u16, uint16_t, int64_t)
RP_KERNEL(rp_u32, uint32_t, int64_t)
RP_KERNEL(rp_i8, int8_t, int64_t)
RP_KERNEL(rp_i16, int16_t, int64_t)
RP_KERNEL(rp_i32, int32_t, int64_t)
RP_KERNEL(rp_u64, uint64_t, double)
RP_KERNEL(rp_i64, int64_t, double)
RP_KERNEL(rp_f32, float, double)
RP_KERNEL(rp_f64, double, double)

typedef void (*rp_kernel_t)(const void *, int64_t, int64_t, const int32_t *, int64_t, int64_t,
                            double *, int64_t);

static rp_kernel_t rp_kernel(tsr_dtype_t dt)
{
    switch (dt) {
    case TSR_U8:
    case TSR_BOOL: return rp_u8;
    case TSR_U16: return rp_u16;
    case TSR_U32: return rp_u32;
    case TSR_U64: return rp_u64;
    case TSR_I8: return rp_i8;
    case TSR_I16: return rp_i16;
    case TSR_I32: return rp_i32;
    case TSR_I64: return rp_i64;
    case TSR_F32: return rp_f32;
    case TSR_F64: return rp_f64;
    default: return NULL;
    }
}

/* ---- uint16 on SSE2 ---------------------------------------------------- */

#if RP_HAVE_SSE2
/* T[(p - q0)·8 + f] = x[f·fs + p] for p in [q0, q1) (relative to x),
 * eight frames. */
static void rp_transpose_u16(uint16_t *restrict T, const uint16_t *restrict x, int64_t fs,
                             int64_t q0, int64_t q1)
{
    int64_t p = q0;
    for (; p + 8 <= q1; p += 8) {
        const uint16_t *s = x + p;
        __m128i r0 = _mm_loadu_si128((const __m128i *)s);
        __m128i r1 = _mm_loadu_si128((const __m128i *)(s + fs));
        __m128i r2 = _mm_loadu_si128((const __m128i *)(s + 2 * fs));
        __m128i r3 = _mm_loadu_si128((const __m128i *)(s + 3 * fs));
        __m128i r4 = _mm_loadu_si128((const __m128i *)(s + 4 * fs));
        __m128i r5 = _mm_loadu_si128((const __m128i *)(s + 5 * fs));
        __m128i r6 = _mm_loadu_si128((const __m128i *)(s + 6 * fs));
        __m128i r7 = _mm_loadu_si128((const __m128i *)(s + 7 * fs));
        __m128i a0 = _mm_unpacklo_epi16(r0, r1), a1 = _mm_unpackhi_epi16(r0, r1);
        __m128i a2 = _mm_unpacklo_epi16(r2, r3), a3 = _mm_unpackhi_epi16(r2, r3);
        __m128i a4 = _mm_unpacklo_epi16(r4, r5), a5 = _mm_unpackhi_epi16(r4, r5);
        __m128i a6 = _mm_unpacklo_epi16(r6, r7), a7 = _mm_unpackhi_epi16(r6, r7);
        __m128i b0 = _mm_unpacklo_epi32(a0, a2), b1 = _mm_unpackhi_epi32(a0, a2);
        __m128i b2 = _mm_unpacklo_epi32(a1, a3), b3 = _mm_unpackhi_epi32(a1, a3);
        __m128i b4 = _mm_unpacklo_epi32(a4, a6), b5 = _mm_unpackhi_epi32(a4, a6);
        __m128i b6 = _mm_unpacklo_epi32(a5, a7), b7 = _mm_unpackhi_epi32(a5, a7);
        __m128i *t = (__m128i *)(T + (p - q0) * 8);
        _mm_storeu_si128(t + 0, _mm_unpacklo_epi64(b0, b4));
        _mm_storeu_si128(t + 1, _mm_unpackhi_epi64(b0, b4));
        _mm_storeu_si128(t + 2, _mm_unpacklo_epi64(b1, b5));
        _mm_storeu_si128(t + 3, _mm_unpackhi_epi64(b1, b5));
        _mm_storeu_si128(t + 4, _mm_unpacklo_epi64(b2, b6));
        _mm_storeu_si128(t + 5, _mm_unpackhi_epi64(b2, b6));
        _mm_storeu_si128(t + 6, _mm_unpacklo_epi64(b3, b7));
        _mm_storeu_si128(t + 7, _mm_unpackhi_epi64(b3, b7));
    }
    for (; p < q1; p++)
        for (int f = 0; f < 8; f++)
            T[(p - q0) * 8 + f] = x[f * fs + p];
}

/* out[f·ostride] += Σ_i T[pix[i] - q0][f] for the eight frames. */
static void rp_segment_u16(const uint16_t *restrict T, const int32_t *restrict pix, int64_t n,
                           int64_t q0, double *restrict out, int64_t ostride)
{
    const __m128i zero = _mm_setzero_si128();
    __m128i lo = zero, hi = zero, lo2 = zero, hi2 = zero;
    int64_t i = 0;
    for (; i + 2 <= n; i += 2) {
        __m128i v = _mm_loadu_si128((const __m128i *)(T + (pix[i] - q0) * 8));
        __m128i w = _mm_loadu_si128((const __m128i *)(T + (pix[i + 1] - q0) * 8));
        lo = _mm_add_epi32(lo, _mm_unpacklo_epi16(v, zero));
        hi = _mm_add_epi32(hi, _mm_unpackhi_epi16(v, zero));
        lo2 = _mm_add_epi32(lo2, _mm_unpacklo_epi16(w, zero));
        hi2 = _mm_add_epi32(hi2, _mm_unpackhi_epi16(w, zero));
    }
    if (i < n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(T + (pix[i] - q0) * 8));
        lo = _mm_add_epi32(lo, _mm_unpacklo_epi16(v, zero));
        hi = _mm_add_epi32(hi, _mm_unpackhi_epi16(v, zero));
    }
    int32_t a[8];
    _mm_storeu_si128((__m128i *)a, _mm_add_epi32(lo, lo2));
    _mm_storeu_si128((__m128i *)(a + 4), _mm_add_epi32(hi, hi2));
    for (int f = 0; f < 8; f++)
        out[f * ostride] += (double)a[f];
}
#endif

/* ---- init -------------------------------------------------------------- */

static void rp_destroy(void *user_data, void *state)
{
    (void)user_data;
    rp_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->pix);
    tsr_free(st->ctx, st->seg_off);
    tsr_free(st->ctx, st->seg_bin);
    tsr_free(st->ctx, st->band_seg);
    tsr_free(st->ctx, st->count);
    tsr_free(st->ctx, st->radius);
    tsr_free(st->ctx, st);
}

/* Bins of ri..ro from the parameters (n_bins or width). */
static int rp_bins(tsr_udf_init_t *init, double ri, double ro, int64_t *n_bins, double *width)
{
    int64_t nb;
    double wd;
    bool nb_given, wd_given;
    int rc = tsr__radial_i64(init, "radial_profile", "n_bins", 0, &nb, &nb_given);
    if (rc == 0)
        rc = tsr__radial_f64(init, "radial_profile", "width", 0, &wd, &wd_given);
    if (rc < 0)
        return rc;
    if (nb_given && wd_given)
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "radial_profile: give n_bins or width, not both");
    if (wd_given) {
        if (!(wd > 0))
            return tsr__builtin_init_fail(init, TSR_EINVAL,
                                          "radial_profile: width must be > 0, got %g", wd);
        double n = ceil((ro - ri) / wd);
        if (n > RP_MAX_BINS)
            return tsr__builtin_init_fail(init, TSR_EINVAL,
                                          "radial_profile: width %g makes %.0f rings between "
                                          "ri=%g and ro=%g (at most %d)",
                                          wd, n, ri, ro, RP_MAX_BINS);
        *n_bins = n < 1 ? 1 : (int64_t)n;
        *width = wd;
        return 0;
    }
    if (!nb_given) {
        nb = (int64_t)nearbyint(ro - ri); /* LiberTEM: int(np.round(ro - ri)) */
        if (nb < 1)
            nb = 1;
    }
    if (nb < 1 || nb > RP_MAX_BINS)
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "radial_profile: n_bins must be in [1, %d], got %lld",
                                      RP_MAX_BINS, (long long)nb);
    *n_bins = nb;
    *width = (ro - ri) / (double)nb;
    return 0;
}

static int rp_init(tsr_udf_init_t *init)
{
    const char *U = "radial_profile";
    rp_state_t *st = NULL;
    int32_t *bin = NULL, *cnt = NULL;
    uint8_t *excl = NULL;
    int64_t h, w;
    double cx = 0, cy = 0, ri = 0, ro = 0, width = 0;
    int64_t n_bins = 0;
    int rc;

    if ((rc = tsr__radial_sig2d(init, U, &h, &w)) < 0)
        return rc;
    if (!rp_kernel(init->meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "%s: %s data are not supported", U,
                                      tsr_dtype_name(init->meta->dataset_dtype));
    if ((rc = tsr__radial_center(init, U, h, w, &cx, &cy)) < 0 ||
        (rc = tsr__radial_f64(init, U, "ri", 0, &ri, NULL)) < 0 ||
        (rc = tsr__radial_f64(init, U, "ro", tsr__radial_bounding(cx, cy, h, w), &ro, NULL)) < 0)
        return rc;
    if (!(ri >= 0) || !(ro > ri))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "%s: need 0 <= ri < ro, got ri=%g, ro=%g",
                                      U, ri, ro);
    if ((rc = rp_bins(init, ri, ro, &n_bins, &width)) < 0)
        return rc;
    if ((rc = tsr__radial_exclude(init, U, h, w, &excl)) < 0)
        return rc;

    const int64_t npix = h * w;
    st = tsr_alloc(init->ctx, sizeof *st);
    bin = tsr_alloc(init->ctx, (size_t)npix * sizeof *bin);
    cnt = tsr_alloc(init->ctx, (size_t)n_bins * sizeof *cnt);
    if (!st || !bin || !cnt)
        goto oom;
    memset(st, 0, sizeof *st);
    st->ctx = init->ctx;
    st->h = h;
    st->w = w;
    st->n_bins = n_bins;
    st->count = tsr_alloc(init->ctx, (size_t)n_bins * sizeof *st->count);
    st->radius = tsr_alloc(init->ctx, (size_t)n_bins * sizeof *st->radius);
    if (!st->count || !st->radius)
        goto oom;
    memset(st->count, 0, (size_t)n_bins * sizeof *st->count);

    /* the bin of every pixel (-1: none) */
    int64_t n_entries = 0;
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            int64_t p = y * w + x;
            double r = tsr__radial_r(cx, cy, y, x);
            bin[p] = -1;
            if ((excl && excl[p]) || !(r >= ri) || !(r < ro))
                continue;
            int64_t b = (int64_t)floor((r - ri) / width);
            bin[p] = (int32_t)(b < n_bins ? b : n_bins - 1);
            st->count[bin[p]]++;
            n_entries++;
        }
    for (int64_t b = 0; b < n_bins; b++) {
        double lo = ri + (double)b * width, hi = fmin(ri + (double)(b + 1) * width, ro);
        st->radius[b] = (lo + hi) / 2;
    }

    /* bands of R rows: R rows of RP_FRAMES frames in about RP_BAND_BYTES */
    size_t es = tsr_dtype_size(init->meta->input_dtype);
    int64_t R = RP_BAND_BYTES / (RP_FRAMES * w * (int64_t)(es ? es : 1));
    st->band_rows = R < 1 ? 1 : R;
    st->n_bands = (h + st->band_rows - 1) / st->band_rows;
    /* the SIMD path sums a segment (at most a band) in int32 */
    st->simd = RP_HAVE_SSE2 && init->meta->input_dtype == TSR_U16 && st->band_rows * w <= 32768;

    /* count segments, then fill: per band a counting sort by bin */
    int64_t n_segs = 0;
    for (int64_t k = 0; k < st->n_bands; k++) {
        memset(cnt, 0, (size_t)n_bins * sizeof *cnt);
        int64_t p0 = k * st->band_rows * w, p1 = p0 + st->band_rows * w;
        p1 = p1 < npix ? p1 : npix;
        for (int64_t p = p0; p < p1; p++)
            if (bin[p] >= 0 && cnt[bin[p]]++ == 0)
                n_segs++;
    }
    st->pix = tsr_alloc(init->ctx, (size_t)(n_entries ? n_entries : 1) * sizeof *st->pix);
    st->seg_off = tsr_alloc(init->ctx, (size_t)(n_segs + 1) * sizeof *st->seg_off);
    st->seg_bin = tsr_alloc(init->ctx, (size_t)(n_segs ? n_segs : 1) * sizeof *st->seg_bin);
    st->band_seg = tsr_alloc(init->ctx, (size_t)(st->n_bands + 1) * sizeof *st->band_seg);
    if (!st->pix || !st->seg_off || !st->seg_bin || !st->band_seg)
        goto oom;
    int64_t s = 0, e = 0;
    for (int64_t k = 0; k < st->n_bands; k++) {
        st->band_seg[k] = s;
        memset(cnt, 0, (size_t)n_bins * sizeof *cnt);
        int64_t p0 = k * st->band_rows * w, p1 = p0 + st->band_rows * w;
        p1 = p1 < npix ? p1 : npix;
        for (int64_t p = p0; p < p1; p++)
            if (bin[p] >= 0)
                cnt[bin[p]]++;
        /* cnt[b] becomes the next free entry of bin b's segment */
        for (int64_t b = 0; b < n_bins; b++) {
            if (!cnt[b])
                continue;
            int32_t c = cnt[b];
            st->seg_off[s] = e;
            st->seg_bin[s] = (int32_t)b;
            cnt[b] = (int32_t)e; /* entries < npix < 2^31 */
            e += c;
            s++;
        }
        for (int64_t p = p0; p < p1; p++)
            if (bin[p] >= 0)
                st->pix[cnt[bin[p]]++] = (int32_t)p;
    }
    st->band_seg[st->n_bands] = s;
    st->seg_off[s] = e;

    tsr__builtin_declare(init, "intensity", TSR_KIND_NAV, TSR_F32, TSR_BUF_RESULT_ONLY, 1, &n_bins);
    tsr__builtin_declare(init, "pixels", TSR_KIND_SINGLE, TSR_I64, TSR_BUF_RESULT_ONLY, 1, &n_bins);
    tsr__builtin_declare(init, "radius", TSR_KIND_SINGLE, TSR_F64, TSR_BUF_RESULT_ONLY, 1, &n_bins);
    tsr__builtin_declare(init, "sum", TSR_KIND_NAV, TSR_F64, TSR_BUF_PRIVATE, 1, &n_bins);
    init->input_dtype = TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_TILE;
    /* Frames larger than a tile are cut into row bands; ask for eight
     * frames per band so that the kernels still see eight at once. */
    if (npix * (int64_t)es > init->ctx->tile_bytes)
        init->tile_depth = RP_FRAMES;
    init->state = st;
    tsr_free(init->ctx, bin);
    tsr_free(init->ctx, cnt);
    tsr_free(init->ctx, excl);
    return 0;

oom:
    tsr_free(init->ctx, bin);
    tsr_free(init->ctx, cnt);
    tsr_free(init->ctx, excl);
    rp_destroy(NULL, st);
    return tsr__builtin_init_fail(init, TSR_ENOMEM, "%s: out of memory", U);
}

/* ---- processing -------------------------------------------------------- */

/* First i in [lo, hi) with pix[i] >= v. */
static int64_t lower_bound(const int32_t *pix, int64_t lo, int64_t hi, int64_t v)
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

/* Task scratch of the SIMD path: one band of eight frames, transposed. */
static int rp_task_start(const tsr_udf_call_t *c, void **task_state)
{
    const rp_state_t *st = c->state;
    *task_state = NULL;
    if (!st->simd)
        return 0;
    size_t n = (size_t)(st->band_rows * st->w * RP_FRAMES) * sizeof(uint16_t);
    if (!(*task_state = tsr_alloc(st->ctx, n)))
        return tsr_udf_error(c, TSR_ENOMEM, "radial_profile: out of memory");
    return 0;
}

static void rp_task_stop(const tsr_udf_call_t *c, void *task_state)
{
    const rp_state_t *st = c->state;
    tsr_free(st->ctx, task_state);
}

/* The entries [*lo, *hi) of segment s within the tile's pixels [s0, s1). */
static void rp_clip(const rp_state_t *st, int64_t s, bool whole, int64_t s0, int64_t s1,
                    int64_t *lo, int64_t *hi)
{
    *lo = st->seg_off[s];
    *hi = st->seg_off[s + 1];
    if (!whole) {
        *lo = lower_bound(st->pix, *lo, *hi, s0);
        *hi = lower_bound(st->pix, *lo, *hi, s1);
    }
}

static int rp_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const rp_state_t *st = c->state;
    rp_kernel_t k = rp_kernel(t->dtype);
    if (!k)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "radial_profile: %s tiles are not supported",
                             tsr_dtype_name(t->dtype));
    double *sum = c->bufs[BUF_SUM].data;
    const int64_t nb = st->n_bins, fs = t->sig_len;
    const int64_t s0 = t->sig_start, s1 = t->sig_start + t->sig_len;
    const int64_t y0 = s0 / st->w, y1 = (s1 + st->w - 1) / st->w;
    const int64_t R = st->band_rows;
    int64_t f0 = 0;
#if RP_HAVE_SSE2
    if (st->simd && t->dtype == TSR_U16 && c->task_state) {
        uint16_t *T = c->task_state;
        const uint16_t *x = t->data;
        for (; f0 + RP_FRAMES <= t->depth; f0 += RP_FRAMES) {
            for (int64_t band = y0 / R; band * R < y1; band++) {
                int64_t b0 = band * R, b1 = b0 + R < st->h ? b0 + R : st->h;
                int64_t q0 = b0 * st->w > s0 ? b0 * st->w : s0;
                int64_t q1 = b1 * st->w < s1 ? b1 * st->w : s1;
                bool whole = b0 >= y0 && b1 <= y1;
                if (st->band_seg[band] == st->band_seg[band + 1])
                    continue;
                rp_transpose_u16(T, x + f0 * fs, fs, q0 - s0, q1 - s0);
                for (int64_t s = st->band_seg[band]; s < st->band_seg[band + 1]; s++) {
                    int64_t lo, hi;
                    rp_clip(st, s, whole, s0, s1, &lo, &hi);
                    if (lo < hi)
                        rp_segment_u16(T, st->pix + lo, hi - lo, q0, sum + f0 * nb + st->seg_bin[s],
                                       nb);
                }
            }
        }
    }
#endif
    if (f0 == t->depth)
        return 0;
    const unsigned char *x =
        (const unsigned char *)t->data + (size_t)(f0 * fs) * tsr_dtype_size(t->dtype);
    for (int64_t band = y0 / R; band * R < y1; band++) {
        int64_t b0 = band * R, b1 = b0 + R < st->h ? b0 + R : st->h;
        bool whole = b0 >= y0 && b1 <= y1;
        for (int64_t s = st->band_seg[band]; s < st->band_seg[band + 1]; s++) {
            int64_t lo, hi;
            rp_clip(st, s, whole, s0, s1, &lo, &hi);
            if (lo < hi)
                k(x, fs, t->depth - f0, st->pix + lo, hi - lo, s0, sum + f0 * nb + st->seg_bin[s],
                  nb);
        }
    }
    return 0;
}

static int rp_finalize(const tsr_udf_call_t *c)
{
    const rp_state_t *st = c->state;
    const int64_t nb = st->n_bins;
    float *out = c->bufs[BUF_INTENSITY].data;
    const double *sum = c->bufs[BUF_SUM].data;
    const int64_t rows = c->bufs[BUF_INTENSITY].rows;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t b = 0; b < nb; b++)
            out[i * nb + b] = st->count[b] ? (float)(sum[i * nb + b] / (double)st->count[b]) : NAN;
    memcpy(c->bufs[BUF_PIXELS].data, st->count, (size_t)nb * sizeof(int64_t));
    memcpy(c->bufs[BUF_RADIUS].data, st->radius, (size_t)nb * sizeof(double));
    return 0;
}

const tsr_udf_def_t tsr__udf_radial_profile = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "radial_profile",
    .description = "Azimuthal mean of each frame in rings around (cx, cy) between ri and ro. "
                   "Results: `intensity` nav x (n_bins,) float32 (NaN for an empty ring), "
                   "`pixels` (n_bins,) int64, `radius` (n_bins,) float64 ring middles.",
    .params = rp_params,
    .n_params = sizeof rp_params / sizeof rp_params[0],
    .init = rp_init,
    .destroy = rp_destroy,
    .task_start = rp_task_start,
    .task_stop = rp_task_stop,
    .process_tile = rp_process_tile,
    .finalize = rp_finalize,
};
