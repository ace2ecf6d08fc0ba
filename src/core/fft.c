/*
 * fft.c — plans over kissfft (see fft.h for the conventions).
 *
 * kissfft gives a complex transform of any length (mixed radix 2, 3, 4, 5
 * and generic) and a real transform of even length (kiss_fftr: a complex
 * transform of n/2 points plus a twiddle pass).  Real transforms of odd
 * length go through the complex one with zero imaginary parts.  The 2-D
 * transforms are rows then columns (columns gathered into a contiguous
 * scratch vector by kiss_fft_stride), so only 1-D kissfft plans are used and
 * every byte comes from the context's allocator: kissfft's *_alloc take
 * caller memory when given its size (first call asks for the size).
 *
 * Invariants: a plan's scratch vectors hold max(nx, ny) complex values each;
 * c2r_2d copies its input into `work` (ny × (nx/2+1)) so the input is kept.
 */
#include "core/fft.h"

#include <assert.h>
#include <kiss_fft.h>
#include <kiss_fftr.h>

_Static_assert(sizeof(tsr__cf32_t) == sizeof(kiss_fft_cpx), "complex layouts differ");
_Static_assert(sizeof(kiss_fft_scalar) == sizeof(float), "kissfft must be the float build");

enum { K_C2C, K_R2C, K_C2R, K_R2C_2D, K_C2R_2D };

struct tsr__fft {
    tsr_ctx_t *ctx;
    int kind;
    int64_t ny, nx;     /* 1-D plans: ny = 1 */
    float scale;        /* applied to inverse outputs */
    kiss_fft_cfg row;   /* complex, length nx (c2c; odd real rows) */
    kiss_fftr_cfg rowr; /* real, length nx (even real rows) */
    kiss_fft_cfg col;   /* complex, length ny (2-D) */
    tsr__cf32_t *a, *b; /* scratch, max(nx, ny) each */
    tsr__cf32_t *work;  /* c2r_2d: a copy of the input */
};

#define KC(p) ((kiss_fft_cpx *)(p))
#define KCC(p) ((const kiss_fft_cpx *)(p))

static kiss_fft_cfg alloc_c(tsr_ctx_t *ctx, int n, bool inverse)
{
    size_t len = 0;
    kiss_fft_alloc(n, inverse, NULL, &len);
    void *m = tsr__malloc(ctx, len ? len : 1);
    if (!m)
        return NULL;
    size_t have = len;
    kiss_fft_cfg c = kiss_fft_alloc(n, inverse, m, &have);
    if (!c)
        tsr__free(ctx, m);
    return c;
}

static kiss_fftr_cfg alloc_r(tsr_ctx_t *ctx, int n, bool inverse)
{
    size_t len = 0;
    kiss_fftr_alloc(n, inverse, NULL, &len);
    void *m = tsr__malloc(ctx, len ? len : 1);
    if (!m)
        return NULL;
    size_t have = len;
    kiss_fftr_cfg c = kiss_fftr_alloc(n, inverse, m, &have);
    if (!c)
        tsr__free(ctx, m);
    return c;
}

void tsr__fft_free(tsr__fft_t *p)
{
    if (!p)
        return;
    tsr_ctx_t *ctx = p->ctx;
    tsr__free(ctx, p->row);
    tsr__free(ctx, p->rowr);
    tsr__free(ctx, p->col);
    tsr__free(ctx, p->a);
    tsr__free(ctx, p->b);
    tsr__free(ctx, p->work);
    tsr__free(ctx, p);
}

#define MAXN ((int64_t)1 << 30)

static int plan(tsr_ctx_t *ctx, int kind, int64_t ny, int64_t nx, bool c2c_inverse,
                tsr__fft_t **out)
{
    int rc = 0;
    tsr__fft_t *p = NULL;
    *out = NULL;
    bool two_d = kind == K_R2C_2D || kind == K_C2R_2D;
    bool inverse_rows = kind == K_C2R || kind == K_C2R_2D || (kind == K_C2C && c2c_inverse);
    TSR_CHECK(ctx, nx >= 1 && nx <= MAXN && ny >= 1 && ny <= MAXN, TSR_EINVAL,
              "FFT size %lld x %lld: each dimension must be in [1, 2^30]", (long long)ny,
              (long long)nx);
    if (two_d) {
        int64_t tot;
        TSR_CHECK(ctx, tsr__mul_i64(ny, tsr__fft_rlen(nx), &tot) && tot <= ((int64_t)1 << 40),
                  TSR_EINVAL, "FFT size %lld x %lld is too large", (long long)ny, (long long)nx);
    }
    TSR_CHECK(ctx, (p = tsr__calloc(ctx, 1, sizeof *p)), TSR_ENOMEM, "out of memory");
    p->ctx = ctx;
    p->kind = kind;
    p->ny = ny;
    p->nx = nx;
    p->scale = inverse_rows ? (float)(1.0 / ((double)nx * (double)ny)) : 1.0f;
    int64_t m = nx > ny ? nx : ny;
    TSR_CHECK(ctx, (p->a = tsr__malloc(ctx, (size_t)m * sizeof *p->a)), TSR_ENOMEM,
              "out of memory");
    TSR_CHECK(ctx, (p->b = tsr__malloc(ctx, (size_t)m * sizeof *p->b)), TSR_ENOMEM,
              "out of memory");
    if (kind == K_C2C || nx % 2) {
        TSR_CHECK(ctx, (p->row = alloc_c(ctx, (int)nx, inverse_rows)), TSR_ENOMEM, "out of memory");
    } else {
        TSR_CHECK(ctx, (p->rowr = alloc_r(ctx, (int)nx, inverse_rows)), TSR_ENOMEM,
                  "out of memory");
    }
    if (two_d) {
        TSR_CHECK(ctx, (p->col = alloc_c(ctx, (int)ny, inverse_rows)), TSR_ENOMEM, "out of memory");
        if (kind == K_C2R_2D) {
            size_t n = (size_t)ny * (size_t)tsr__fft_rlen(nx);
            TSR_CHECK(ctx, (p->work = tsr__malloc(ctx, n * sizeof *p->work)), TSR_ENOMEM,
                      "out of memory");
        }
    }
    *out = p;
    return 0;
fail:
    tsr__fft_free(p);
    return rc;
}

int tsr__fft_plan_c2c(tsr_ctx_t *ctx, int64_t n, bool inverse, tsr__fft_t **out)
{
    return plan(ctx, K_C2C, 1, n, inverse, out);
}
int tsr__fft_plan_r2c(tsr_ctx_t *ctx, int64_t n, tsr__fft_t **out)
{
    return plan(ctx, K_R2C, 1, n, false, out);
}
int tsr__fft_plan_c2r(tsr_ctx_t *ctx, int64_t n, tsr__fft_t **out)
{
    return plan(ctx, K_C2R, 1, n, false, out);
}
int tsr__fft_plan_r2c_2d(tsr_ctx_t *ctx, int64_t ny, int64_t nx, tsr__fft_t **out)
{
    return plan(ctx, K_R2C_2D, ny, nx, false, out);
}
int tsr__fft_plan_c2r_2d(tsr_ctx_t *ctx, int64_t ny, int64_t nx, tsr__fft_t **out)
{
    return plan(ctx, K_C2R_2D, ny, nx, false, out);
}

/* ---- execution --------------------------------------------------------- */

void tsr__fft_c2c(tsr__fft_t *p, const tsr__cf32_t *in, tsr__cf32_t *out)
{
    assert(p->kind == K_C2C);
    int64_t n = p->nx;
    /* kissfft allocates a temporary for in-place calls: copy instead */
    memcpy(p->a, in, (size_t)n * sizeof *in);
    kiss_fft(p->row, KCC(p->a), KC(out));
    if (p->scale != 1.0f)
        for (int64_t i = 0; i < n; i++) {
            out[i].re *= p->scale;
            out[i].im *= p->scale;
        }
}

/* One real row forward: n reals → n/2+1 complex. */
static void row_r2c(tsr__fft_t *p, const float *in, tsr__cf32_t *out)
{
    int64_t n = p->nx;
    if (p->rowr) {
        kiss_fftr(p->rowr, in, KC(out));
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        p->a[i].re = in[i];
        p->a[i].im = 0.0f;
    }
    kiss_fft(p->row, KCC(p->a), KC(p->b));
    memcpy(out, p->b, (size_t)tsr__fft_rlen(n) * sizeof *out);
}

/* One real row inverse (unscaled): n/2+1 complex → n reals. */
static void row_c2r(tsr__fft_t *p, const tsr__cf32_t *in, float *out)
{
    int64_t n = p->nx;
    if (p->rowr) {
        kiss_fftri(p->rowr, KCC(in), out);
        return;
    }
    /* odd n: rebuild the Hermitian spectrum; the DC term is real */
    int64_t h = tsr__fft_rlen(n);
    p->a[0].re = in[0].re;
    p->a[0].im = 0.0f;
    for (int64_t k = 1; k < h; k++) {
        p->a[k] = in[k];
        p->a[n - k].re = in[k].re;
        p->a[n - k].im = -in[k].im;
    }
    kiss_fft(p->row, KCC(p->a), KC(p->b));
    for (int64_t i = 0; i < n; i++)
        out[i] = p->b[i].re;
}

void tsr__fft_r2c(tsr__fft_t *p, const float *in, tsr__cf32_t *out)
{
    assert(p->kind == K_R2C);
    row_r2c(p, in, out);
}

void tsr__fft_c2r(tsr__fft_t *p, const tsr__cf32_t *in, float *out)
{
    assert(p->kind == K_C2R);
    row_c2r(p, in, out);
    for (int64_t i = 0; i < p->nx; i++)
        out[i] *= p->scale;
}

/* Transform every column of the ny × h complex array x in place. */
static void columns(tsr__fft_t *p, tsr__cf32_t *x, int64_t h)
{
    int64_t ny = p->ny;
    if (ny == 1)
        return;
    for (int64_t k = 0; k < h; k++) {
        kiss_fft_stride(p->col, KCC(x + k), KC(p->a), (int)h);
        for (int64_t y = 0; y < ny; y++)
            x[y * h + k] = p->a[y];
    }
}

void tsr__fft_r2c_2d(tsr__fft_t *p, const float *in, tsr__cf32_t *out)
{
    assert(p->kind == K_R2C_2D);
    int64_t nx = p->nx, h = tsr__fft_rlen(nx);
    for (int64_t y = 0; y < p->ny; y++)
        row_r2c(p, in + y * nx, out + y * h);
    columns(p, out, h);
}

void tsr__fft_c2r_2d(tsr__fft_t *p, const tsr__cf32_t *in, float *out)
{
    assert(p->kind == K_C2R_2D);
    int64_t nx = p->nx, ny = p->ny, h = tsr__fft_rlen(nx);
    memcpy(p->work, in, (size_t)(ny * h) * sizeof *in);
    columns(p, p->work, h);
    for (int64_t y = 0; y < ny; y++)
        row_c2r(p, p->work + y * h, out + y * nx);
    for (int64_t i = 0; i < ny * nx; i++)
        out[i] *= p->scale;
}
