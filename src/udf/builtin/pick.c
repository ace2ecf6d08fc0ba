/*
 * pick.c — the `pick` UDF: the frames at given nav positions (LiberTEM's
 * PickUDF), as one SINGLE buffer `intensity` of shape (n_picks, *sig_shape)
 * in the dataset's own dtype (bool stays bool).
 *
 * Parameter `nav` repeats, one position each: "y,x" (as many coordinates as
 * nav dimensions) or one flat C-order index "i".  Slots follow the order of
 * the parameters; a position may be given twice (two slots).  init hands the
 * runtime the sorted unique flat indices (frames_needed), so only those
 * frames are read when every UDF of the run agrees.
 *
 * Tiles arrive in the dataset's type (TSR_DTYPE_NATIVE).  When corrections
 * make the runtime deliver float32 instead, the rows are converted back to
 * the dataset's type (C cast, truncating for integers).
 *
 * Option `fft=true` (2-D signals; LiberTEM's PickFFTFrameAnalysis) adds the
 * result-only SINGLE float32 buffer `fft` (n_picks, h, w): for each slot
 * fftshift(|FFT2(frame · m)|), with m = 0 inside the disk
 * (x - real_cx)² + (y - real_cy)² <= real_rad² when real_rad is given (the
 * central beam masked out in real space) and 1 elsewhere.  finalize
 * computes it from `intensity` with a single-precision FFT (core/fft.h).
 *
 * Merge: a private SINGLE uint8 buffer `picked` (n_picks,) records which
 * slots a task filled; merge copies exactly those slots, so the result does
 * not depend on which task read which frame and needs no nav ranges.  A
 * position outside the ROI is never read and its slot stays zero.
 */
#include "udf/builtin/builtin.h"

#include "core/fft.h"
#include "udf/builtin/radial.h"

#include <errno.h>
#include <stdlib.h>

enum { BUF_INTENSITY = 0, BUF_PICKED = 1, BUF_FFT = 2 };

typedef struct pick_slot {
    int64_t frame; /* flat nav index */
    int64_t slot;  /* index into the result's first dimension */
} pick_slot_t;

typedef struct pick_state {
    tsr_ctx_t *ctx;
    int64_t n;           /* picks (slots) */
    int64_t npix;        /* elements of one frame */
    size_t es;           /* element size of the result */
    tsr_dtype_t dtype;   /* result dtype */
    pick_slot_t *sorted; /* n: (frame, slot) sorted by frame, then slot */
    float *fft_mask;     /* npix, when fft=true: the real-space mask m */
} pick_state_t;

static const tsr_param_def_t pick_params[] = {
    {"nav", "ints", NULL,
     "Nav position of a frame to pick: 'y,x' with one coordinate per nav dimension (C "
     "order, 0-based), or one flat index 'i'. Repeat for several frames; result slots follow "
     "the order given.",
     true},
    {"fft", "bool", "false",
     "Also give `fft`: fftshift(|FFT2|) of each picked frame (2-D signals), float32.", false},
    {"real_rad", "float", "",
     "With fft: radius of a disk masked out in real space before the FFT (the central "
     "beam); default: no mask.",
     false},
    {"real_cx", "float", "", "With fft: centre x of that disk; default: width / 2.", false},
    {"real_cy", "float", "", "With fft: centre y of that disk; default: height / 2.", false},
};

/* ---- parameters -------------------------------------------------------- */

/* Parse "a,b,c" (blanks, and one pair of () or [] around it, allowed) into
 * up to max integers.  *count: how many were found (max + 1: too many).
 * Returns 0, or -1 for a malformed list. */
static int parse_ints(const char *s, int64_t *v, int max, int *count)
{
    const char *p = tsr__builtin_skip_ws(s);
    char close = 0;
    if (*p == '(' || *p == '[') {
        close = *p == '(' ? ')' : ']';
        p++;
    }
    int n = 0;
    for (;;) {
        p = tsr__builtin_skip_ws(p);
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (end == p || errno == ERANGE)
            return -1;
        if (n < max)
            v[n] = (int64_t)x;
        n++;
        p = tsr__builtin_skip_ws(end);
        if (*p == ',') {
            p++;
            /* A trailing comma before the closing bracket: "(3,)". */
            const char *q = tsr__builtin_skip_ws(p);
            if (close && *q == close) {
                p = q;
                break;
            }
            continue;
        }
        break;
    }
    if (close) {
        if (*p != close)
            return -1;
        p = tsr__builtin_skip_ws(p + 1);
    }
    if (*p != '\0')
        return -1;
    *count = n > max ? max + 1 : n;
    return 0;
}

/* The flat nav index of one `nav` value, or an error in init->errmsg. */
static int parse_position(tsr_udf_init_t *init, const char *val, int64_t *flat)
{
    const tsr_shape_t *nav = &init->meta->nav_shape;
    char sh[128];
    int64_t v[TSR_MAX_DIMS];
    int count = 0;
    int64_t size = tsr_shape_size(nav);
    if (parse_ints(val, v, TSR_MAX_DIMS, &count) < 0)
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "pick: nav '%s' is not a list of integers ('y,x' or a "
                                      "flat index)",
                                      val);
    if (count == 1 && nav->ndim != 1) {
        if (v[0] < 0 || v[0] >= size)
            return tsr__builtin_init_fail(init, TSR_ERANGE,
                                          "pick: nav '%s': flat index %lld is out of range "
                                          "[0, %lld) for nav shape %s",
                                          val, (long long)v[0], (long long)size,
                                          tsr__shape_str(nav, sh, sizeof sh));
        *flat = v[0];
        return 0;
    }
    if (count != nav->ndim)
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "pick: nav '%s' has %d coordinates, nav shape %s needs "
                                      "%d (or one flat index)",
                                      val, count, tsr__shape_str(nav, sh, sizeof sh), nav->ndim);
    int64_t f = 0;
    for (int i = 0; i < nav->ndim; i++) {
        if (v[i] < 0 || v[i] >= nav->dims[i])
            return tsr__builtin_init_fail(init, TSR_ERANGE,
                                          "pick: nav '%s' is out of range for nav shape %s "
                                          "(coordinate %d is %lld, must be in [0, %lld))",
                                          val, tsr__shape_str(nav, sh, sizeof sh), i,
                                          (long long)v[i], (long long)nav->dims[i]);
        f = f * nav->dims[i] + v[i];
    }
    *flat = f;
    return 0;
}

/* ---- init / destroy ---------------------------------------------------- */

/* Parameters of fft=true: the real-space mask in st->fft_mask (NULL when
 * fft is false). */
static int pick_fft_init(tsr_udf_init_t *init, pick_state_t *st)
{
    bool fft, have_rr;
    double rr, rcx, rcy;
    int64_t h, w;
    int rc;
    if ((rc = tsr__radial_bool(init, "pick", "fft", false, &fft)) < 0)
        return rc;
    if (!fft) {
        static const char *const only[] = {"real_rad", "real_cx", "real_cy"};
        for (size_t i = 0; i < sizeof only / sizeof only[0]; i++)
            if (tsr_params_get(init->params, only[i]))
                return tsr__builtin_init_fail(init, TSR_EINVAL,
                                              "pick: parameter '%s' needs fft=true", only[i]);
        return 0;
    }
    if (tsr__dtype_is_complex(st->dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "pick: fft=true does not support complex data");
    if ((rc = tsr__radial_sig2d(init, "pick", &h, &w)) < 0 ||
        (rc = tsr__radial_f64(init, "pick", "real_rad", 0, &rr, &have_rr)) < 0 ||
        (rc = tsr__radial_f64(init, "pick", "real_cx", (double)w / 2, &rcx, NULL)) < 0 ||
        (rc = tsr__radial_f64(init, "pick", "real_cy", (double)h / 2, &rcy, NULL)) < 0)
        return rc;
    st->fft_mask = tsr_alloc(init->ctx, (size_t)(h * w) * sizeof *st->fft_mask);
    if (!st->fft_mask)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "pick: out of memory");
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            double dy = (double)y - rcy, dx = (double)x - rcx;
            st->fft_mask[y * w + x] = have_rr && dx * dx + dy * dy <= rr * rr ? 0.0f : 1.0f;
        }
    return 0;
}

static void pick_destroy(void *user_data, void *state)
{
    pick_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->sorted);
    tsr_free(st->ctx, st->fft_mask);
    tsr_free(st->ctx, st);
}

/* Order of (frame, slot) pairs: by frame, then slot, so equal frames keep
 * the order of the parameters. */
static int cmp_pick(const void *a, const void *b)
{
    const pick_slot_t *x = a, *y = b;
    if (x->frame != y->frame)
        return x->frame < y->frame ? -1 : 1;
    return (x->slot > y->slot) - (x->slot < y->slot);
}

static int pick_init(tsr_udf_init_t *init)
{
    const tsr_udf_meta_t *m = init->meta;
    const tsr_params_t *p = init->params;
    pick_state_t *st = NULL;
    int64_t *needed = NULL;
    int rc = 0;

    if (!tsr__dtype_valid(m->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "pick: invalid dataset dtype %d",
                                      (int)m->dataset_dtype);
    if (m->sig_shape.ndim + 1 > TSR_MAX_DIMS)
        return tsr__builtin_init_fail(
            init, TSR_EUNSUPPORTED, "pick: signal has too many dimensions (%d)", m->sig_shape.ndim);
    int64_t n = 0;
    for (size_t i = 0; i < tsr_params_count(p); i++) {
        const char *k, *v;
        if (tsr_params_at(p, i, &k, &v) == 0 && strcmp(k, "nav") == 0)
            n++;
    }
    if (n == 0)
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "pick: parameter 'nav' is required (a position 'y,x' or "
                                      "a flat index; repeat it for several frames)");

    st = tsr_alloc(init->ctx, sizeof *st);
    if (!st)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "pick: out of memory");
    memset(st, 0, sizeof *st);
    st->ctx = init->ctx;
    st->n = n;
    st->npix = tsr_shape_size(&m->sig_shape);
    st->dtype = m->input_dtype; /* what NATIVE gives: float32 with corrections */
    st->es = tsr_dtype_size(st->dtype);
    size_t bytes, total;
    if (!tsr__mul_size((size_t)n, sizeof(pick_slot_t), &bytes) ||
        !tsr__mul_size((size_t)n, (size_t)st->npix, &total) ||
        !tsr__mul_size(total, st->es, &total)) {
        rc = tsr__builtin_init_fail(init, TSR_EOVERFLOW, "pick: %lld picks are too many",
                                    (long long)n);
        goto fail;
    }
    st->sorted = tsr_alloc(init->ctx, bytes);
    needed = tsr_alloc(init->ctx, (size_t)n * sizeof *needed);
    if (!st->sorted || !needed) {
        rc = tsr__builtin_init_fail(init, TSR_ENOMEM, "pick: out of memory");
        goto fail;
    }

    int64_t s = 0;
    for (size_t i = 0; i < tsr_params_count(p); i++) {
        const char *k, *v;
        if (tsr_params_at(p, i, &k, &v) != 0 || strcmp(k, "nav") != 0)
            continue;
        if ((rc = parse_position(init, v, &st->sorted[s].frame)) < 0)
            goto fail;
        st->sorted[s].slot = s;
        s++;
    }
    qsort(st->sorted, (size_t)n, sizeof *st->sorted, cmp_pick);
    int64_t nu = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t f = st->sorted[i].frame;
        if (nu == 0 || needed[nu - 1] != f)
            needed[nu++] = f;
    }

    int64_t extra[TSR_MAX_DIMS];
    extra[0] = n;
    for (int i = 0; i < m->sig_shape.ndim; i++)
        extra[i + 1] = m->sig_shape.dims[i];
    tsr__builtin_declare(init, "intensity", TSR_KIND_SINGLE, st->dtype, 0, 1 + m->sig_shape.ndim,
                         extra);
    tsr__builtin_declare(init, "picked", TSR_KIND_SINGLE, TSR_U8, TSR_BUF_PRIVATE, 1, &n);
    if ((rc = pick_fft_init(init, st)) < 0)
        goto fail;
    if (st->fft_mask)
        tsr__builtin_declare(init, "fft", TSR_KIND_SINGLE, TSR_F32, TSR_BUF_RESULT_ONLY,
                             1 + m->sig_shape.ndim, extra);
    init->input_dtype = TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_TILE;
    init->frames_needed = needed;
    init->n_frames_needed = nu;
    init->state = st;
    return 0;

fail:
    tsr_free(init->ctx, needed);
    pick_destroy(NULL, st);
    return rc;
}

/* ---- processing -------------------------------------------------------- */

static int pick_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const pick_state_t *st = c->state;
    const int64_t lo = t->nav_index, hi = t->nav_index + t->depth;
    size_t tes = tsr_dtype_size(t->dtype);
    if (tes == 0)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "pick: invalid tile dtype %d", (int)t->dtype);

    /* First slot (in frame order) with frame >= lo. */
    int64_t a = 0, b = st->n;
    while (a < b) {
        int64_t mid = a + (b - a) / 2;
        if (st->sorted[mid].frame < lo)
            a = mid + 1;
        else
            b = mid;
    }
    char *out = c->bufs[BUF_INTENSITY].data;
    uint8_t *picked = c->bufs[BUF_PICKED].data;
    const size_t len = (size_t)t->sig_len;
    for (int64_t k = a; k < st->n && st->sorted[k].frame < hi; k++) {
        const int64_t slot = st->sorted[k].slot;
        const int64_t r = st->sorted[k].frame - lo;
        char *dst = out + ((size_t)slot * (size_t)st->npix + (size_t)t->sig_start) * st->es;
        const char *src = (const char *)t->data + (size_t)r * len * tes;
        if (t->dtype == st->dtype)
            memcpy(dst, src, len * st->es);
        else
            tsr__convert(dst, st->dtype, src, t->dtype, false, len);
        picked[slot] = 1;
    }
    return 0;
}

static int pick_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    const pick_state_t *st = c->state;
    char *dst = c->bufs[BUF_INTENSITY].data;
    const char *sdata = src[BUF_INTENSITY].data;
    uint8_t *dp = c->bufs[BUF_PICKED].data;
    const uint8_t *sp = src[BUF_PICKED].data;
    const size_t slot_bytes = (size_t)st->npix * st->es;
    for (int64_t i = 0; i < st->n; i++) {
        if (!sp[i])
            continue;
        memcpy(dst + (size_t)i * slot_bytes, sdata + (size_t)i * slot_bytes, slot_bytes);
        dp[i] = 1;
    }
    return 0;
}

/* fft=true: fftshift(|FFT2(frame · m)|) of every slot. */
static int pick_finalize(const tsr_udf_call_t *c)
{
    const pick_state_t *st = c->state;
    if (!st->fft_mask)
        return 0;
    const int64_t h = c->meta->sig_shape.dims[0], w = c->meta->sig_shape.dims[1];
    const int64_t hw = tsr__fft_rlen(w), npix = h * w;
    float *in = tsr_alloc(st->ctx, (size_t)npix * sizeof *in);
    tsr__cf32_t *out = tsr_alloc(st->ctx, (size_t)(h * hw) * sizeof *out);
    tsr__fft_t *plan = NULL;
    int rc = in && out ? tsr__fft_plan_r2c_2d(st->ctx, h, w, &plan) : TSR_ENOMEM;
    if (rc < 0) {
        tsr_free(st->ctx, in);
        tsr_free(st->ctx, out);
        return tsr_udf_error(c, rc, "pick: cannot plan a %lld x %lld FFT", (long long)h,
                             (long long)w);
    }
    const char *frames = c->bufs[BUF_INTENSITY].data;
    float *res = c->bufs[BUF_FFT].data;
    for (int64_t k = 0; k < st->n; k++) {
        tsr__convert(in, TSR_F32, frames + (size_t)(k * npix) * st->es, st->dtype, false,
                     (size_t)npix);
        for (int64_t p = 0; p < npix; p++)
            in[p] *= st->fft_mask[p];
        tsr__fft_r2c_2d(plan, in, out);
        float *dst = res + k * npix;
        /* numpy's fftshift: frequency index i goes to (i + n/2) mod n; the
         * columns past w/2 are conjugates of the half spectrum */
        for (int64_t iy = 0; iy < h; iy++)
            for (int64_t ix = 0; ix < w; ix++) {
                tsr__cf32_t z = ix < hw ? out[iy * hw + ix] : out[((h - iy) % h) * hw + (w - ix)];
                dst[((iy + h / 2) % h) * w + (ix + w / 2) % w] =
                    (float)sqrt((double)z.re * z.re + (double)z.im * z.im);
            }
    }
    tsr__fft_free(plan);
    tsr_free(st->ctx, in);
    tsr_free(st->ctx, out);
    return 0;
}

const tsr_udf_def_t tsr__udf_pick = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "pick",
    .description = "Frames at given nav positions. Result `intensity`: (n_picks, *sig_shape) in "
                   "the dataset's dtype; only the picked frames are read. fft=true adds `fft`, "
                   "fftshift(|FFT2|) of each, float32.",
    .params = pick_params,
    .n_params = sizeof pick_params / sizeof pick_params[0],
    .init = pick_init,
    .destroy = pick_destroy,
    .process_tile = pick_process_tile,
    .merge = pick_merge,
    .finalize = pick_finalize,
};
