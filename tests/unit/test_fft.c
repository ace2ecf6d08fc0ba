/*
 * test_fft.c — src/core/fft.c against a direct DFT computed here in double
 * precision from the definition (fft.h: forward unscaled, inverse / n), for
 * even, odd, prime and power-of-two sizes, 1-D and 2-D, plus round trips,
 * bad sizes and allocator accounting (every byte freed).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>

#include "core/fft.h"

static const double PI = 3.14159265358979323846;

/* Deterministic values in [-1, 1). */
static uint64_t rng = 88172645463325252ull;
static double urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

/* Direct DFT of n complex values (sign -1 forward, +1 inverse, unscaled). */
static void dft(const double *re, const double *im, double *ore, double *oim, int64_t n, int sign)
{
    for (int64_t k = 0; k < n; k++) {
        double sr = 0, si = 0;
        for (int64_t j = 0; j < n; j++) {
            double a = sign * 2.0 * PI * (double)((j * k) % n) / (double)n;
            sr += re[j] * cos(a) - im[j] * sin(a);
            si += re[j] * sin(a) + im[j] * cos(a);
        }
        ore[k] = sr;
        oim[k] = si;
    }
}

/* |got - want| <= tol * (max |want| + 1)·sqrt-ish: float32 FFTs have an
 * error about 1e-7·log2(n) relative to the norm of the data. */
static void check_close(const char *what, int64_t i, double got, double want, double scale)
{
    double tol = 2e-6 * scale;
    if (!(fabs(got - want) <= tol))
        fail_msg("%s[%lld]: got %.9g, want %.9g (tol %.3g)", what, (long long)i, got, want, tol);
}

static const int64_t sizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 12, 15, 16, 17, 30, 31, 64, 97, 100, 128};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static size_t mem_now(const tsr_ctx_t *ctx)
{
    size_t cur, peak;
    tsr_ctx_memory(ctx, &cur, &peak);
    return cur;
}

static void test_c2c(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    for (size_t s = 0; s < NSIZES; s++) {
        int64_t n = sizes[s];
        for (int inv = 0; inv < 2; inv++) {
            double *re = malloc(4 * (size_t)n * sizeof(double)), *im = re + n, *wr = im + n,
                   *wi = wr + n;
            tsr__cf32_t *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
            double norm = 0;
            for (int64_t i = 0; i < n; i++) {
                x[i].re = (float)urand();
                x[i].im = (float)urand();
                re[i] = x[i].re;
                im[i] = x[i].im;
                norm += re[i] * re[i] + im[i] * im[i];
            }
            dft(re, im, wr, wi, n, inv ? 1 : -1);
            tsr__fft_t *p;
            assert_int_equal(tsr__fft_plan_c2c(ctx, n, inv, &p), 0);
            tsr__fft_c2c(p, x, y);
            double sc = inv ? 1.0 / (double)n : 1.0;
            double mag = sqrt(norm) * sc + 1e-30;
            for (int64_t i = 0; i < n; i++) {
                check_close("c2c re", i, y[i].re, wr[i] * sc, mag);
                check_close("c2c im", i, y[i].im, wi[i] * sc, mag);
            }
            /* in place gives the same */
            tsr__fft_c2c(p, x, x);
            for (int64_t i = 0; i < n; i++) {
                assert_true(x[i].re == y[i].re);
                assert_true(x[i].im == y[i].im);
            }
            tsr__fft_free(p);
            free(re);
            free(x);
            free(y);
        }
    }
    assert_int_equal(mem_now(ctx), 0);
    tsr_ctx_free(ctx);
}

static void test_r2c_c2r(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    for (size_t s = 0; s < NSIZES; s++) {
        int64_t n = sizes[s], h = tsr__fft_rlen(n);
        double *re = calloc(4 * (size_t)n, sizeof(double)), *im = re + n, *wr = im + n,
               *wi = wr + n;
        float *x = malloc((size_t)n * sizeof *x), *back = malloc((size_t)n * sizeof *back);
        tsr__cf32_t *X = malloc((size_t)h * sizeof *X);
        double norm = 0;
        for (int64_t i = 0; i < n; i++) {
            x[i] = (float)urand();
            re[i] = x[i];
            norm += re[i] * re[i];
        }
        dft(re, im, wr, wi, n, -1);
        tsr__fft_t *f, *b;
        assert_int_equal(tsr__fft_plan_r2c(ctx, n, &f), 0);
        assert_int_equal(tsr__fft_plan_c2r(ctx, n, &b), 0);
        tsr__fft_r2c(f, x, X);
        double mag = sqrt(norm) + 1e-30;
        for (int64_t k = 0; k < h; k++) {
            check_close("r2c re", k, X[k].re, wr[k], mag);
            check_close("r2c im", k, X[k].im, wi[k], mag);
        }
        /* c2r of a spectrum given by hand: the inverse DFT of the full
         * Hermitian extension, real part, / n; imaginary parts of the DC
         * (and even-n Nyquist) terms are ignored, so set them to garbage */
        for (int64_t k = 0; k < h; k++) {
            X[k].re = (float)urand();
            X[k].im = (float)urand();
        }
        for (int64_t k = 0; k < n; k++) {
            int64_t kk = k < h ? k : n - k;
            re[k] = X[kk].re;
            im[k] = k < h ? X[kk].im : -X[kk].im;
        }
        im[0] = 0;
        if (n % 2 == 0)
            im[n / 2] = 0;
        dft(re, im, wr, wi, n, 1);
        tsr__fft_c2r(b, X, back);
        double nrm2 = 0;
        for (int64_t k = 0; k < n; k++)
            nrm2 += re[k] * re[k] + im[k] * im[k];
        for (int64_t i = 0; i < n; i++)
            check_close("c2r", i, back[i], wr[i] / (double)n, sqrt(nrm2) / (double)n + 1e-30);
        /* round trip */
        tsr__fft_r2c(f, x, X);
        tsr__fft_c2r(b, X, back);
        for (int64_t i = 0; i < n; i++)
            check_close("round trip", i, back[i], x[i], 1.0);
        tsr__fft_free(f);
        tsr__fft_free(b);
        free(re);
        free(x);
        free(back);
        free(X);
    }
    assert_int_equal(mem_now(ctx), 0);
    tsr_ctx_free(ctx);
}

static void test_2d(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    static const int64_t shapes[][2] = {{1, 1}, {1, 8},   {8, 1},  {4, 6}, {5, 7},
                                        {6, 5}, {16, 16}, {9, 12}, {3, 31}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t ny = shapes[s][0], nx = shapes[s][1], h = tsr__fft_rlen(nx), n = ny * nx;
        float *x = malloc((size_t)n * sizeof *x), *back = malloc((size_t)n * sizeof *back);
        tsr__cf32_t *X = malloc((size_t)(ny * h) * sizeof *X),
                    *X0 = malloc((size_t)(ny * h) * sizeof *X0);
        double norm = 0;
        for (int64_t i = 0; i < n; i++) {
            x[i] = (float)urand();
            norm += (double)x[i] * x[i];
        }
        tsr__fft_t *f, *b;
        assert_int_equal(tsr__fft_plan_r2c_2d(ctx, ny, nx, &f), 0);
        assert_int_equal(tsr__fft_plan_c2r_2d(ctx, ny, nx, &b), 0);
        tsr__fft_r2c_2d(f, x, X);
        /* direct 2-D DFT from the definition */
        for (int64_t ky = 0; ky < ny; ky++)
            for (int64_t kx = 0; kx < h; kx++) {
                double sr = 0, si = 0;
                for (int64_t y = 0; y < ny; y++)
                    for (int64_t xx = 0; xx < nx; xx++) {
                        double a = -2.0 * PI *
                                   ((double)((y * ky) % ny) / (double)ny +
                                    (double)((xx * kx) % nx) / (double)nx);
                        sr += x[y * nx + xx] * cos(a);
                        si += x[y * nx + xx] * sin(a);
                    }
                check_close("r2c_2d re", ky * h + kx, X[ky * h + kx].re, sr, sqrt(norm));
                check_close("r2c_2d im", ky * h + kx, X[ky * h + kx].im, si, sqrt(norm));
            }
        memcpy(X0, X, (size_t)(ny * h) * sizeof *X);
        tsr__fft_c2r_2d(b, X, back);
        for (int64_t i = 0; i < ny * h; i++) /* input kept */
            assert_true(X[i].re == X0[i].re && X[i].im == X0[i].im);
        for (int64_t i = 0; i < n; i++)
            check_close("c2r_2d round trip", i, back[i], x[i], 1.0);
        tsr__fft_free(f);
        tsr__fft_free(b);
        free(x);
        free(back);
        free(X);
        free(X0);
    }
    assert_int_equal(mem_now(ctx), 0);
    tsr_ctx_free(ctx);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr__fft_t *p = (tsr__fft_t *)1;
    assert_int_equal(tsr__fft_plan_c2c(ctx, 0, false, &p), TSR_EINVAL);
    assert_null(p);
    assert_non_null(strstr(tsr_ctx_errmsg(ctx), "FFT size"));
    assert_int_equal(tsr__fft_plan_r2c_2d(ctx, 4, -1, &p), TSR_EINVAL);
    assert_int_equal(tsr__fft_plan_c2r(ctx, (int64_t)1 << 31, &p), TSR_EINVAL);
    tsr__fft_free(NULL);
    assert_int_equal(mem_now(ctx), 0);
    tsr_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_c2c),
        cmocka_unit_test(test_r2c_c2r),
        cmocka_unit_test(test_2d),
        cmocka_unit_test(test_bad_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
