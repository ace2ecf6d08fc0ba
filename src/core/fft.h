/*
 * fft.h — fast Fourier transforms for the UDFs, over Debian's kissfft
 * (libkissfft-dev, BSD-3-Clause).
 *
 * A plan is made once (per task, per worker) for one transform shape and
 * then executed any number of times.  Kinds:
 *
 *   c2c     1-D complex, forward or inverse, any n >= 1
 *   r2c     1-D real → complex: n reals → n/2+1 complex (the non-negative
 *           frequencies; the rest is their conjugate), any n >= 1
 *   c2r     1-D complex → real, the inverse of r2c: n/2+1 complex → n reals
 *   r2c_2d  2-D real → complex: ny × nx reals → ny × (nx/2+1) complex,
 *           row-major (numpy's rfft2 layout)
 *   c2r_2d  its inverse: ny × (nx/2+1) complex → ny × nx reals (irfft2)
 *
 * Conventions are numpy's (norm="backward"): forward transforms are not
 * scaled, X[k] = Σ_j x[j]·e^{-2πi jk/n}; inverse transforms divide by the
 * number of points, x[j] = (1/n) Σ_k X[k]·e^{+2πi jk/n}.  c2r and c2r_2d
 * ignore the imaginary parts that a Hermitian spectrum of real data has no
 * room for (the DC term, and the Nyquist term of an even n), as numpy does.
 *
 * Precision: single (float).  Debian ships kissfft for float only; float32
 * transforms have a relative rms error of about 1e-7·log2(n).
 *
 * Every buffer belongs to the caller; inputs are never modified, and input
 * and output may be the same array for c2c (the plan holds the scratch).
 * Plans are allocated through the context's allocator.  A plan is NOT
 * thread-safe: it owns scratch memory that each execution writes, so give
 * each worker its own plan (tsr__fft_* plans are cheap: O(n) memory).
 * Different plans may run concurrently.
 */
#ifndef TSR_FFT_H
#define TSR_FFT_H

#include "core/core.h"

/* A single-precision complex number, layout-compatible with float[2] and
 * C99's float _Complex. */
typedef struct {
    float re, im;
} tsr__cf32_t;

typedef struct tsr__fft tsr__fft_t;

/* Make a plan.  Sizes must be in [1, 2^30]; on error (TSR_EINVAL for a bad
 * size, TSR_ENOMEM) *out is NULL and ctx carries the message. */
int tsr__fft_plan_c2c(tsr_ctx_t *ctx, int64_t n, bool inverse, tsr__fft_t **out);
int tsr__fft_plan_r2c(tsr_ctx_t *ctx, int64_t n, tsr__fft_t **out);
int tsr__fft_plan_c2r(tsr_ctx_t *ctx, int64_t n, tsr__fft_t **out);
int tsr__fft_plan_r2c_2d(tsr_ctx_t *ctx, int64_t ny, int64_t nx, tsr__fft_t **out);
int tsr__fft_plan_c2r_2d(tsr_ctx_t *ctx, int64_t ny, int64_t nx, tsr__fft_t **out);
/* Accepts NULL. */
void tsr__fft_free(tsr__fft_t *p);

/* Execute; each function must be given a plan of its kind (assert). */
void tsr__fft_c2c(tsr__fft_t *p, const tsr__cf32_t *in, tsr__cf32_t *out);
void tsr__fft_r2c(tsr__fft_t *p, const float *in, tsr__cf32_t *out);
void tsr__fft_c2r(tsr__fft_t *p, const tsr__cf32_t *in, float *out);
void tsr__fft_r2c_2d(tsr__fft_t *p, const float *in, tsr__cf32_t *out);
void tsr__fft_c2r_2d(tsr__fft_t *p, const tsr__cf32_t *in, float *out);

/* The size of the complex side of a real transform of n points: n/2+1. */
static inline int64_t tsr__fft_rlen(int64_t n)
{
    return n / 2 + 1;
}

#endif
