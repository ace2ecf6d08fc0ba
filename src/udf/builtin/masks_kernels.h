/*
 * masks_kernels.h — the arithmetic of the `masks` UDF (masks.c): dot
 * products of tile frames with float32 mask weights, plain sums over runs of
 * pixels whose weight is constant, and the dense frames × masks product.
 *
 * Every kernel reads the tile in its native element type and converts in
 * registers, so the runtime never makes a float copy of the data.  Two
 * compute classes follow numpy's result_type with float32: 8/16-bit
 * integers, bool and float32 are multiplied in float32, with float32
 * partial sums over at most 128 products per lane folded into float64;
 * 32/64-bit integers and float64 are computed in float64.  Sums of integer
 * runs are exact (integer arithmetic) below 2^53.
 *
 * Each kernel exists in a portable version (plain C that the compiler
 * vectorises for baseline x86-64 or any other target) and, on x86-64, in
 * AVX2+FMA and AVX-512 versions compiled with function target attributes;
 * tsr__masks_isa_best() probes the CPU once, so the library itself stays
 * built for the baseline.  All kernels are thread-safe and allocate
 * nothing.
 */
#ifndef TSR_UDF_MASKS_KERNELS_H
#define TSR_UDF_MASKS_KERNELS_H

#include "core/core.h"

typedef enum {
    TSR__MASKS_ISA_PORTABLE = 0,
    TSR__MASKS_ISA_AVX2 = 1,   /* AVX2 + FMA */
    TSR__MASKS_ISA_AVX512 = 2, /* AVX-512 F, BW, VL, DQ, and BMI2 */
    TSR__MASKS_ISA_COUNT = 3
} tsr__masks_isa_t;

/* Columns of the pixel-major dense mask matrix are padded to a multiple of
 * this (with zero weights), so kernels can use whole vectors. */
#define TSR__MASKS_LD_ALIGN 8
/* The most frames one kernel call may process. */
#define TSR__MASKS_MAX_DEPTH 64

/* A run of pixels [start, start + len) of a sparse mask: its weights are
 * w[woff .. woff + len) of the weight array passed along, or, if woff < 0,
 * all equal to uw. */
typedef struct tsr__masks_run {
    int64_t start;
    int64_t len;
    int64_t woff;
    double uw;
} tsr__masks_run_t;

/* In every kernel, x holds depth <= TSR__MASKS_MAX_DEPTH frames of the
 * kernel's dtype with a stride of xs elements.  The run kernels take the
 * pixel range [s0, s1) that x covers (x[0] is pixel s0) and clip the runs,
 * which are sorted and disjoint, to it. */
typedef struct tsr__masks_kernels {
    /* acc[f * as] += Σ_{p<len} x[f * xs + p] · w[p] for f < depth. */
    void (*dot)(const void *x, int64_t xs, int64_t depth, const float *w, int64_t len, double *acc,
                int64_t as);
    /* acc[f * nd + j] += Σ_{p<len} x[f * xs + p] · m[p * ld + j] for
     * f < depth, j < nd; m has ld >= nd columns, ld a multiple of
     * TSR__MASKS_LD_ALIGN, and the columns nd..ld-1 are zero. */
    void (*dense)(const void *x, int64_t xs, int64_t depth, int64_t len, const float *m, int64_t ld,
                  int64_t nd, double *acc);
    /* out[f] = Σ of x over the pixels of runs[0..nr) (weights ignored),
     * for f < depth; overwritten. */
    void (*sum_runs)(const void *x, int64_t xs, int64_t depth, const tsr__masks_run_t *runs,
                     int64_t nr, int64_t s0, int64_t s1, double *out);
    /* acc[f * as] += Σ of x · weight over the pixels of runs[0..nr), all
     * weighted (woff >= 0, weights in w). */
    void (*dot_runs)(const void *x, int64_t xs, int64_t depth, const tsr__masks_run_t *runs,
                     int64_t nr, int64_t s0, int64_t s1, const float *w, double *acc, int64_t as);
} tsr__masks_kernels_t;

/* Whether this CPU (and this build) can run isa.  Thread-safe. */
bool tsr__masks_isa_available(tsr__masks_isa_t isa);
/* The fastest available isa (probed once), at most the one the environment
 * variable TSR_ISA names (portable, avx2, avx512) if set.
 * Thread-safe. */
tsr__masks_isa_t tsr__masks_isa_best(void);
const char *tsr__masks_isa_name(tsr__masks_isa_t isa);

/* The kernels for tiles of dtype dt (any real type or bool) on isa, or
 * NULL for complex or invalid dtypes and unavailable isas.  Static data. */
const tsr__masks_kernels_t *tsr__masks_kernels_get(tsr_dtype_t dt, tsr__masks_isa_t isa);

#endif /* TSR_UDF_MASKS_KERNELS_H */
