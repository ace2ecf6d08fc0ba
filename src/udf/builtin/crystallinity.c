/*
 * crystallinity.c — the `crystallinity` UDF (LiberTEM's CrystallinityUDF):
 * how much of each frame's Fourier spectrum lies in a ring of spatial
 * frequencies, a measure of the crystalline order a diffraction pattern
 * shows (periodic features in the frame give peaks in its FFT):
 *
 *     intensity = Σ_{rad_in² < kx² + ky² <= rad_out²} |FFT2(x · m)|(ky, kx)
 *
 * m is 0 inside the disk (x - real_cx)² + (y - real_cy)² <= real_rad² (the
 * central beam, masked out in real space before the transform) and 1
 * elsewhere; without real_rad nothing is masked.  kx, ky are the signed
 * frequency indices of numpy's fftfreq(n) · n (0 .. n/2 - 1, then -n/2 ..
 * -1 for even n).  For even frame sizes this is exactly LiberTEM's mask,
 * centred at (w/2, h/2) of the fftshift-ed spectrum; for odd sizes
 * LiberTEM's centre lies half a pixel off the zero frequency and Tessera's
 * does not.  `squared=true` sums |FFT|² (the power) instead of |FFT|.
 *
 * Work: whole frames (TSR_METHOD_FRAME), converted to float32, masked and
 * transformed with a real-to-complex 2-D FFT (src/core/fft.h, kissfft,
 * single precision) into the half spectrum of w/2 + 1 columns.  Init maps
 * every frequency of the ring to its place in the half spectrum (a
 * frequency with kx < 0 is the conjugate of (-ky, -kx), which has the same
 * modulus) with a multiplicity of 1 or 2, so a frame costs one FFT and one
 * pass over the ring.  Each task has its own plan and scratch.
 */
#include "udf/builtin/radial.h"

#include "core/fft.h"

typedef struct cr_state {
    tsr_ctx_t *ctx;
    int64_t h, w, npix, half;
    float *mask;   /* npix: 0 in the real-space disk, 1 elsewhere */
    int32_t *idx;  /* ring frequencies: index into the half spectrum */
    uint8_t *mult; /* how often that index counts (1 or 2) */
    int64_t n;
    bool squared;
} cr_state_t;

typedef struct cr_task {
    tsr__fft_t *plan;
    float *in;
    tsr__cf32_t *out;
} cr_task_t;

static const tsr_param_def_t cr_params[] = {
    {"rad_in", "float", NULL,
     "Inner radius of the frequency ring (in frequency pixels): frequencies with "
     "kx^2 + ky^2 > rad_in^2.",
     false},
    {"rad_out", "float", NULL, "Outer radius of the frequency ring: kx^2 + ky^2 <= rad_out^2.",
     false},
    {"real_rad", "float", "",
     "Radius of the disk masked out in real space before the FFT (the central beam); default: "
     "no mask.",
     false},
    {"real_cx", "float", "", "Centre x of that disk; default: width / 2.", false},
    {"real_cy", "float", "", "Centre y of that disk; default: height / 2.", false},
    {"squared", "bool", "false", "Sum |FFT|^2 (power) instead of |FFT| (LiberTEM).", false},
};

/* ---- init -------------------------------------------------------------- */

static void cr_destroy(void *user_data, void *state)
{
    (void)user_data;
    cr_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->mask);
    tsr_free(st->ctx, st->idx);
    tsr_free(st->ctx, st->mult);
    tsr_free(st->ctx, st);
}

/* numpy's fftfreq(n)[i] · n. */
static int64_t signed_freq(int64_t i, int64_t n)
{
    return i < (n + 1) / 2 ? i : i - n;
}

static int cr_init(tsr_udf_init_t *init)
{
    const char *U = "crystallinity";
    int64_t h, w;
    double rin, rout, rr, rcx, rcy;
    bool have_rr, squared;
    int rc;
    if ((rc = tsr__radial_sig2d(init, U, &h, &w)) < 0)
        return rc;
    if (tsr__dtype_is_complex(init->meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "%s: complex data are not supported",
                                      U);
    if ((rc = tsr__radial_f64(init, U, "rad_in", 0, &rin, NULL)) < 0 ||
        (rc = tsr__radial_f64(init, U, "rad_out", 0, &rout, NULL)) < 0 ||
        (rc = tsr__radial_f64(init, U, "real_rad", 0, &rr, &have_rr)) < 0 ||
        (rc = tsr__radial_f64(init, U, "real_cx", (double)w / 2, &rcx, NULL)) < 0 ||
        (rc = tsr__radial_f64(init, U, "real_cy", (double)h / 2, &rcy, NULL)) < 0 ||
        (rc = tsr__radial_bool(init, U, "squared", false, &squared)) < 0)
        return rc;
    if (!(rin >= 0) || !(rout >= rin))
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "%s: need 0 <= rad_in <= rad_out, got rad_in=%g, "
                                      "rad_out=%g",
                                      U, rin, rout);
    if (have_rr && !(rr >= 0))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "%s: real_rad must be >= 0, got %g", U, rr);
    cr_state_t *st = tsr_alloc(init->ctx, sizeof *st);
    if (!st)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "%s: out of memory", U);
    memset(st, 0, sizeof *st);
    st->ctx = init->ctx;
    st->h = h;
    st->w = w;
    st->npix = h * w;
    st->half = h * tsr__fft_rlen(w);
    st->squared = squared;
    st->mask = tsr_alloc(init->ctx, (size_t)st->npix * sizeof *st->mask);
    uint8_t *count = tsr_alloc(init->ctx, (size_t)st->half);
    if (!st->mask || !count)
        goto oom;
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            double dy = (double)y - rcy, dx = (double)x - rcx;
            st->mask[y * w + x] = have_rr && dx * dx + dy * dy <= rr * rr ? 0.0f : 1.0f;
        }
    /* the ring over the full spectrum, folded into the half spectrum */
    memset(count, 0, (size_t)st->half);
    const int64_t hw = tsr__fft_rlen(w);
    for (int64_t iy = 0; iy < h; iy++)
        for (int64_t ix = 0; ix < w; ix++) {
            const double ky = (double)signed_freq(iy, h), kx = (double)signed_freq(ix, w);
            const double d2 = kx * kx + ky * ky;
            if (!(d2 > rin * rin && d2 <= rout * rout))
                continue;
            int64_t j = ix < hw ? iy * hw + ix : ((h - iy) % h) * hw + (w - ix);
            if (count[j]++ == 0)
                st->n++;
        }
    st->idx = tsr_alloc(init->ctx, (size_t)(st->n ? st->n : 1) * sizeof *st->idx);
    st->mult = tsr_alloc(init->ctx, (size_t)(st->n ? st->n : 1));
    if (!st->idx || !st->mult)
        goto oom;
    int64_t k = 0;
    for (int64_t j = 0; j < st->half; j++)
        if (count[j]) {
            st->idx[k] = (int32_t)j;
            st->mult[k++] = count[j];
        }
    tsr_free(init->ctx, count);
    tsr__builtin_declare(init, "intensity", TSR_KIND_NAV, TSR_F32, 0, 0, NULL);
    init->input_dtype = TSR_F32;
    init->method = TSR_METHOD_FRAME;
    init->state = st;
    return 0;
oom:
    tsr_free(init->ctx, count);
    cr_destroy(NULL, st);
    return tsr__builtin_init_fail(init, TSR_ENOMEM, "%s: out of memory", U);
}

/* ---- processing -------------------------------------------------------- */

static void cr_task_stop(const tsr_udf_call_t *c, void *task_state)
{
    const cr_state_t *st = c->state;
    cr_task_t *ts = task_state;
    if (!ts)
        return;
    tsr__fft_free(ts->plan);
    tsr_free(st->ctx, ts->in);
    tsr_free(st->ctx, ts->out);
    tsr_free(st->ctx, ts);
}

static int cr_task_start(const tsr_udf_call_t *c, void **task_state)
{
    const cr_state_t *st = c->state;
    cr_task_t *ts = tsr_alloc(st->ctx, sizeof *ts);
    if (!ts)
        return tsr_udf_error(c, TSR_ENOMEM, "crystallinity: out of memory");
    memset(ts, 0, sizeof *ts);
    ts->in = tsr_alloc(st->ctx, (size_t)st->npix * sizeof *ts->in);
    ts->out = tsr_alloc(st->ctx, (size_t)st->half * sizeof *ts->out);
    int rc =
        ts->in && ts->out ? tsr__fft_plan_r2c_2d(st->ctx, st->h, st->w, &ts->plan) : TSR_ENOMEM;
    if (rc < 0) {
        cr_task_stop(c, ts);
        return tsr_udf_error(c, rc, "crystallinity: cannot plan a %lld x %lld FFT: %s",
                             (long long)st->h, (long long)st->w, tsr_ctx_errmsg(st->ctx));
    }
    *task_state = ts;
    return 0;
}

static int cr_process_frame(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const cr_state_t *st = c->state;
    cr_task_t *ts = c->task_state;
    if (t->dtype == TSR_F32) {
        const float *x = t->data;
        for (int64_t p = 0; p < st->npix; p++)
            ts->in[p] = x[p] * st->mask[p];
    } else if (t->dtype == TSR_F64) {
        const double *x = t->data;
        for (int64_t p = 0; p < st->npix; p++)
            ts->in[p] = (float)x[p] * st->mask[p];
    } else {
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "crystallinity: unexpected %s frames",
                             tsr_dtype_name(t->dtype));
    }
    tsr__fft_r2c_2d(ts->plan, ts->in, ts->out);
    double s = 0;
    for (int64_t k = 0; k < st->n; k++) {
        const tsr__cf32_t z = ts->out[st->idx[k]];
        const double p = (double)z.re * z.re + (double)z.im * z.im;
        s += (double)st->mult[k] * (st->squared ? p : sqrt(p));
    }
    ((float *)c->bufs[0].data)[0] = (float)s;
    return 0;
}

const tsr_udf_def_t tsr__udf_crystallinity = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "crystallinity",
    .description = "Sum of |FFT| of each frame (its central disk real_rad masked out) over the "
                   "frequency ring rad_in^2 < k^2 <= rad_out^2 (LiberTEM's CrystallinityUDF). "
                   "Result `intensity` (nav shape), float32.",
    .params = cr_params,
    .n_params = sizeof cr_params / sizeof cr_params[0],
    .init = cr_init,
    .destroy = cr_destroy,
    .task_start = cr_task_start,
    .task_stop = cr_task_stop,
    .process_frame = cr_process_frame,
};
