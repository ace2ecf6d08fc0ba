/*
 * masks_kernels.c — dot products, run sums and the dense frames × masks
 * product of the `masks` UDF, for every real element type, in portable C
 * and (x86-64) AVX2+FMA and AVX-512 versions.  See masks_kernels.h for the
 * contract.
 *
 * Invariants that keep the results within 1e-5 of a float64 computation:
 *  - float32-class products (8/16-bit integers, bool, float32 data times
 *    float32 weights) are summed in float32 lanes for at most CHUNK (128)
 *    products per lane, then folded into float64, so the rounding error of
 *    a partial sum stays below 128 · 2^-24 ≈ 7.6e-6 of Σ|x·w| in the worst
 *    case (and far less in practice);
 *  - float64-class data (32/64-bit integers, float64) are multiplied and
 *    summed in float64;
 *  - sums of 8/16-bit integers are exact int32 sums over blocks of 32768
 *    elements, added in int64; 32-bit integers are summed in int64.
 *
 * The portable kernels are written with explicit independent lanes so that
 * the compiler vectorises them without reassociating anything.  The same
 * bodies are instantiated again under target("avx2,fma") and the AVX-512
 * target where they serve as they are (sums, float64 class); the hot
 * float32-class dot and dense kernels have intrinsics versions that convert
 * the native elements in registers.
 */
#include "udf/builtin/masks_kernels.h"

#include <stdlib.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MASKS_X86 1
#include <immintrin.h>
#else
#define MASKS_X86 0
#endif

/* Products per float32 lane before the lane is folded into float64. */
#define CHUNK 128
/* Elements per int32 partial sum of 8/16-bit integers (32768 · 65535 <
 * 2^31). */
#define ISUM_BLOCK 32768

static inline int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

/* Pairwise float64 sum of 16 float32 lanes. */
static inline double fold16(const float *l)
{
    double a[8];
    for (int k = 0; k < 8; k++)
        a[k] = (double)l[k] + (double)l[k + 8];
    return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

static inline double fold8d(const double *l)
{
    return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));
}

/* ======================================================================
 * Portable bodies (instantiated per type, and again per target)
 * ====================================================================== */

/* float32 class: 16 lanes of CHUNK products each per block. */
#define DEF_DOT_F32(NAME, T, ATTR)                                                            \
    ATTR static void NAME(const void *xv, int64_t xs, int64_t depth, const float *restrict w, \
                          int64_t len, double *restrict acc, int64_t as)                      \
    {                                                                                         \
        const T *restrict x = (const T *)xv;                                                  \
        for (int64_t f = 0; f < depth; f++) {                                                 \
            const T *restrict xf = x + f * xs;                                                \
            double total = 0;                                                                 \
            int64_t p = 0;                                                                    \
            while (p < len) {                                                                 \
                const int64_t e = min64(len, p + 16 * CHUNK);                                 \
                float l[16] = {0};                                                            \
                for (; p + 16 <= e; p += 16)                                                  \
                    for (int k = 0; k < 16; k++)                                              \
                        l[k] += (float)xf[p + k] * w[p + k];                                  \
                for (int k = 0; p < e; p++, k++)                                              \
                    l[k] += (float)xf[p] * w[p];                                              \
                total += fold16(l);                                                           \
            }                                                                                 \
            acc[f * as] += total;                                                             \
        }                                                                                     \
    }

/* float64 class: 8 float64 lanes. */
#define DEF_DOT_F64(NAME, T, ATTR)                                                            \
    ATTR static void NAME(const void *xv, int64_t xs, int64_t depth, const float *restrict w, \
                          int64_t len, double *restrict acc, int64_t as)                      \
    {                                                                                         \
        const T *restrict x = (const T *)xv;                                                  \
        for (int64_t f = 0; f < depth; f++) {                                                 \
            const T *restrict xf = x + f * xs;                                                \
            double l[8] = {0};                                                                \
            int64_t p = 0;                                                                    \
            for (; p + 8 <= len; p += 8)                                                      \
                for (int k = 0; k < 8; k++)                                                   \
                    l[k] += (double)xf[p + k] * (double)w[p + k];                             \
            for (int k = 0; p < len; p++, k++)                                                \
                l[k] += (double)xf[p] * (double)w[p];                                         \
            acc[f * as] += fold8d(l);                                                         \
        }                                                                                     \
    }

/* 8/16-bit integers: exact int32 block sums. */
#define DEF_SUM_SMALL(NAME, T, ATTR)                                              \
    ATTR static void NAME(const void *xv, int64_t xs, int64_t depth, int64_t len, \
                          double *restrict out)                                   \
    {                                                                             \
        const T *restrict x = (const T *)xv;                                      \
        for (int64_t f = 0; f < depth; f++) {                                     \
            const T *restrict xf = x + f * xs;                                    \
            int64_t t = 0;                                                        \
            for (int64_t p = 0; p < len;) {                                       \
                const int64_t e = min64(len, p + ISUM_BLOCK);                     \
                int32_t s = 0;                                                    \
                for (; p < e; p++)                                                \
                    s += (int32_t)xf[p];                                          \
                t += s;                                                           \
            }                                                                     \
            out[f] = (double)t;                                                   \
        }                                                                         \
    }

/* 32-bit integers: exact int64 sums. */
#define DEF_SUM_I64(NAME, T, ATTR)                                                \
    ATTR static void NAME(const void *xv, int64_t xs, int64_t depth, int64_t len, \
                          double *restrict out)                                   \
    {                                                                             \
        const T *restrict x = (const T *)xv;                                      \
        for (int64_t f = 0; f < depth; f++) {                                     \
            const T *restrict xf = x + f * xs;                                    \
            int64_t s = 0;                                                        \
            for (int64_t p = 0; p < len; p++)                                     \
                s += (int64_t)xf[p];                                              \
            out[f] = (double)s;                                                   \
        }                                                                         \
    }

/* float32: 16 float32 lanes of CHUNK elements, folded into float64. */
#define DEF_SUM_F32(NAME, ATTR)                                                   \
    ATTR static void NAME(const void *xv, int64_t xs, int64_t depth, int64_t len, \
                          double *restrict out)                                   \
    {                                                                             \
        const float *restrict x = (const float *)xv;                              \
        for (int64_t f = 0; f < depth; f++) {                                     \
            const float *restrict xf = x + f * xs;                                \
            double total = 0;                                                     \
            int64_t p = 0;                                                        \
            while (p < len) {                                                     \
                const int64_t e = min64(len, p + 16 * CHUNK);                     \
                float l[16] = {0};                                                \
                for (; p + 16 <= e; p += 16)                                      \
                    for (int k = 0; k < 16; k++)                                  \
                        l[k] += xf[p + k];                                        \
                for (int k = 0; p < e; p++, k++)                                  \
                    l[k] += xf[p];                                                \
                total += fold16(l);                                               \
            }                                                                     \
            out[f] = total;                                                       \
        }                                                                         \
    }

/* 64-bit integers and float64: 8 float64 lanes. */
#define DEF_SUM_F64(NAME, T, ATTR)                                                \
    ATTR static void NAME(const void *xv, int64_t xs, int64_t depth, int64_t len, \
                          double *restrict out)                                   \
    {                                                                             \
        const T *restrict x = (const T *)xv;                                      \
        for (int64_t f = 0; f < depth; f++) {                                     \
            const T *restrict xf = x + f * xs;                                    \
            double l[8] = {0};                                                    \
            int64_t p = 0;                                                        \
            for (; p + 8 <= len; p += 8)                                          \
                for (int k = 0; k < 8; k++)                                       \
                    l[k] += (double)xf[p + k];                                    \
            for (int k = 0; p < len; p++, k++)                                    \
                l[k] += (double)xf[p];                                            \
            out[f] = fold8d(l);                                                   \
        }                                                                         \
    }

/* Four-lane vectors of the GCC/Clang vector extension: plain C that maps to
 * SSE2, NEON or scalar code, for the portable dense kernels (the compilers
 * do not keep a 4 × 8 block of sums in registers from scalar code). */
typedef float v4f __attribute__((vector_size(16)));
typedef double v2d __attribute__((vector_size(16)));

static inline v4f v4f_load(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Dense product, float32 class: for each chunk of CHUNK pixels and block of
 * up to 64 masks (32 KiB of weights, kept in L1 while every frame of the
 * tile goes by), four frames are converted to float32; then for each group
 * of 8 masks (ld is a multiple of 8; padding columns are zero) a 4 × 8
 * block of float32 sums in vector registers runs over the chunk and is
 * added to acc. */
#define DEF_DENSE_F32(NAME, T, ATTR)                                                             \
    ATTR static void NAME(const void *xv, int64_t xs, int64_t depth, int64_t len,                \
                          const float *restrict m, int64_t ld, int64_t nd, double *restrict acc) \
    {                                                                                            \
        const T *restrict x = (const T *)xv;                                                     \
        float xb[4][CHUNK];                                                                      \
        for (int64_t p0 = 0; p0 < len; p0 += CHUNK) {                                            \
            const int64_t pn = min64(CHUNK, len - p0);                                           \
            for (int64_t m0 = 0; m0 < nd; m0 += 64) {                                            \
                const int64_t mend = min64(m0 + 64, nd);                                         \
                for (int64_t f0 = 0; f0 < depth; f0 += 4) {                                      \
                    const int64_t fn = min64(4, depth - f0);                                     \
                    for (int64_t fi = 0; fi < 4; fi++)                                           \
                        for (int64_t p = 0; p < pn; p++)                                         \
                            xb[fi][p] = fi < fn ? (float)x[(f0 + fi) * xs + p0 + p] : 0;         \
                    for (int64_t j = m0; j < mend; j += 8) {                                     \
                        v4f c[4][2] = {{{0}}};                                                   \
                        const float *restrict row = m + p0 * ld + j;                             \
                        for (int64_t p = 0; p < pn; p++, row += ld) {                            \
                            const v4f r0 = v4f_load(row), r1 = v4f_load(row + 4);                \
                            for (int fi = 0; fi < 4; fi++) {                                     \
                                const float s = xb[fi][p];                                       \
                                const v4f v = {s, s, s, s};                                      \
                                c[fi][0] += v * r0;                                              \
                                c[fi][1] += v * r1;                                              \
                            }                                                                    \
                        }                                                                        \
                        const int64_t jn = min64(8, nd - j);                                     \
                        for (int64_t fi = 0; fi < fn; fi++) {                                    \
                            float o[8];                                                          \
                            memcpy(o, c[fi], sizeof o);                                          \
                            for (int64_t k = 0; k < jn; k++)                                     \
                                acc[(f0 + fi) * nd + j + k] += (double)o[k];                     \
                        }                                                                        \
                    }                                                                            \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    }

/* Dense product, float64 class: the same in float64 (no chunking needed),
 * 4 frames × 4 masks per block. */
#define DEF_DENSE_F64(NAME, T, ATTR)                                                             \
    ATTR static void NAME(const void *xv, int64_t xs, int64_t depth, int64_t len,                \
                          const float *restrict m, int64_t ld, int64_t nd, double *restrict acc) \
    {                                                                                            \
        const T *restrict x = (const T *)xv;                                                     \
        double xb[4][CHUNK];                                                                     \
        for (int64_t p0 = 0; p0 < len; p0 += CHUNK) {                                            \
            const int64_t pn = min64(CHUNK, len - p0);                                           \
            for (int64_t m0 = 0; m0 < nd; m0 += 64) {                                            \
                const int64_t mend = min64(m0 + 64, nd);                                         \
                for (int64_t f0 = 0; f0 < depth; f0 += 4) {                                      \
                    const int64_t fn = min64(4, depth - f0);                                     \
                    for (int64_t fi = 0; fi < 4; fi++)                                           \
                        for (int64_t p = 0; p < pn; p++)                                         \
                            xb[fi][p] = fi < fn ? (double)x[(f0 + fi) * xs + p0 + p] : 0;        \
                    for (int64_t j = m0; j < mend; j += 4) {                                     \
                        v2d c[4][2] = {{{0}}};                                                   \
                        const float *restrict row = m + p0 * ld + j;                             \
                        for (int64_t p = 0; p < pn; p++, row += ld) {                            \
                            const v2d r0 = {row[0], row[1]}, r1 = {row[2], row[3]};              \
                            for (int fi = 0; fi < 4; fi++) {                                     \
                                const double s = xb[fi][p];                                      \
                                const v2d v = {s, s};                                            \
                                c[fi][0] += v * r0;                                              \
                                c[fi][1] += v * r1;                                              \
                            }                                                                    \
                        }                                                                        \
                        const int64_t jn = min64(4, nd - j);                                     \
                        for (int64_t fi = 0; fi < fn; fi++) {                                    \
                            double o[4];                                                         \
                            memcpy(o, c[fi], sizeof o);                                          \
                            for (int64_t k = 0; k < jn; k++)                                     \
                                acc[(f0 + fi) * nd + j + k] += o[k];                             \
                        }                                                                        \
                    }                                                                            \
                }                                                                                \
            }                                                                                    \
        }                                                                                        \
    }

/* The part [*a, *b) of run r inside [s0, s1); false if empty. */
static inline bool run_clip(const tsr__masks_run_t *r, int64_t s0, int64_t s1, int64_t *a,
                            int64_t *b)
{
    *a = r->start > s0 ? r->start : s0;
    *b = r->start + r->len < s1 ? r->start + r->len : s1;
    return *a < *b;
}

/* Run kernels from the contiguous ones: one call per run (clipped). */
#define DEF_RUNS_WRAP(SR, DR, SUM, DOT, T, ATTR)                                                  \
    ATTR static void SR(const void *xv, int64_t xs, int64_t depth, const tsr__masks_run_t *runs,  \
                        int64_t nr, int64_t s0, int64_t s1, double *restrict out)                 \
    {                                                                                             \
        const T *x = (const T *)xv;                                                               \
        double part[TSR__MASKS_MAX_DEPTH];                                                        \
        for (int64_t f = 0; f < depth; f++)                                                       \
            out[f] = 0;                                                                           \
        for (int64_t i = 0; i < nr; i++) {                                                        \
            int64_t a, b;                                                                         \
            if (!run_clip(&runs[i], s0, s1, &a, &b))                                              \
                continue;                                                                         \
            SUM(x + (a - s0), xs, depth, b - a, part);                                            \
            for (int64_t f = 0; f < depth; f++)                                                   \
                out[f] += part[f];                                                                \
        }                                                                                         \
    }                                                                                             \
    ATTR static void DR(const void *xv, int64_t xs, int64_t depth, const tsr__masks_run_t *runs,  \
                        int64_t nr, int64_t s0, int64_t s1, const float *w, double *acc,          \
                        int64_t as)                                                               \
    {                                                                                             \
        const T *x = (const T *)xv;                                                               \
        for (int64_t i = 0; i < nr; i++) {                                                        \
            int64_t a, b;                                                                         \
            if (!run_clip(&runs[i], s0, s1, &a, &b))                                              \
                continue;                                                                         \
            DOT(x + (a - s0), xs, depth, w + runs[i].woff + (a - runs[i].start), b - a, acc, as); \
        }                                                                                         \
    }

/* Every kernel of one ISA for every type: NAMEs are <kind>_<suffix>_<type>. */
#define DEF_ALL_GENERIC(SFX, ATTR)                                                              \
    DEF_DOT_F32(dot_##SFX##_u8, uint8_t, ATTR)                                                  \
    DEF_DOT_F32(dot_##SFX##_i8, int8_t, ATTR)                                                   \
    DEF_DOT_F32(dot_##SFX##_u16, uint16_t, ATTR)                                                \
    DEF_DOT_F32(dot_##SFX##_i16, int16_t, ATTR)                                                 \
    DEF_DOT_F32(dot_##SFX##_f32, float, ATTR)                                                   \
    DEF_DOT_F64(dot_##SFX##_u32, uint32_t, ATTR)                                                \
    DEF_DOT_F64(dot_##SFX##_i32, int32_t, ATTR)                                                 \
    DEF_DOT_F64(dot_##SFX##_u64, uint64_t, ATTR)                                                \
    DEF_DOT_F64(dot_##SFX##_i64, int64_t, ATTR)                                                 \
    DEF_DOT_F64(dot_##SFX##_f64, double, ATTR)                                                  \
    DEF_SUM_SMALL(sum_##SFX##_u8, uint8_t, ATTR)                                                \
    DEF_SUM_SMALL(sum_##SFX##_i8, int8_t, ATTR)                                                 \
    DEF_SUM_SMALL(sum_##SFX##_u16, uint16_t, ATTR)                                              \
    DEF_SUM_SMALL(sum_##SFX##_i16, int16_t, ATTR)                                               \
    DEF_SUM_F32(sum_##SFX##_f32, ATTR)                                                          \
    DEF_SUM_I64(sum_##SFX##_u32, uint32_t, ATTR)                                                \
    DEF_SUM_I64(sum_##SFX##_i32, int32_t, ATTR)                                                 \
    DEF_SUM_F64(sum_##SFX##_u64, uint64_t, ATTR)                                                \
    DEF_SUM_F64(sum_##SFX##_i64, int64_t, ATTR)                                                 \
    DEF_SUM_F64(sum_##SFX##_f64, double, ATTR)                                                  \
    DEF_DENSE_F32(dense_##SFX##_u8, uint8_t, ATTR)                                              \
    DEF_DENSE_F32(dense_##SFX##_i8, int8_t, ATTR)                                               \
    DEF_DENSE_F32(dense_##SFX##_u16, uint16_t, ATTR)                                            \
    DEF_DENSE_F32(dense_##SFX##_i16, int16_t, ATTR)                                             \
    DEF_DENSE_F32(dense_##SFX##_f32, float, ATTR)                                               \
    DEF_DENSE_F64(dense_##SFX##_u32, uint32_t, ATTR)                                            \
    DEF_DENSE_F64(dense_##SFX##_i32, int32_t, ATTR)                                             \
    DEF_DENSE_F64(dense_##SFX##_u64, uint64_t, ATTR)                                            \
    DEF_DENSE_F64(dense_##SFX##_i64, int64_t, ATTR)                                             \
    DEF_DENSE_F64(dense_##SFX##_f64, double, ATTR)                                              \
    DEF_RUNS_WRAP(sum_runs_##SFX##_u8, dot_runs_##SFX##_u8, sum_##SFX##_u8, dot_##SFX##_u8,     \
                  uint8_t, ATTR)                                                                \
    DEF_RUNS_WRAP(sum_runs_##SFX##_i8, dot_runs_##SFX##_i8, sum_##SFX##_i8, dot_##SFX##_i8,     \
                  int8_t, ATTR)                                                                 \
    DEF_RUNS_WRAP(sum_runs_##SFX##_u16, dot_runs_##SFX##_u16, sum_##SFX##_u16, dot_##SFX##_u16, \
                  uint16_t, ATTR)                                                               \
    DEF_RUNS_WRAP(sum_runs_##SFX##_i16, dot_runs_##SFX##_i16, sum_##SFX##_i16, dot_##SFX##_i16, \
                  int16_t, ATTR)                                                                \
    DEF_RUNS_WRAP(sum_runs_##SFX##_f32, dot_runs_##SFX##_f32, sum_##SFX##_f32, dot_##SFX##_f32, \
                  float, ATTR)                                                                  \
    DEF_RUNS_WRAP(sum_runs_##SFX##_u32, dot_runs_##SFX##_u32, sum_##SFX##_u32, dot_##SFX##_u32, \
                  uint32_t, ATTR)                                                               \
    DEF_RUNS_WRAP(sum_runs_##SFX##_i32, dot_runs_##SFX##_i32, sum_##SFX##_i32, dot_##SFX##_i32, \
                  int32_t, ATTR)                                                                \
    DEF_RUNS_WRAP(sum_runs_##SFX##_u64, dot_runs_##SFX##_u64, sum_##SFX##_u64, dot_##SFX##_u64, \
                  uint64_t, ATTR)                                                               \
    DEF_RUNS_WRAP(sum_runs_##SFX##_i64, dot_runs_##SFX##_i64, sum_##SFX##_i64, dot_##SFX##_i64, \
                  int64_t, ATTR)                                                                \
    DEF_RUNS_WRAP(sum_runs_##SFX##_f64, dot_runs_##SFX##_f64, sum_##SFX##_f64, dot_##SFX##_f64, \
                  double, ATTR)

/* A table indexed by dtype; bool uses the uint8 kernels. */
#define TABLE_ROW(SFX)                                         \
    {                                                          \
        dot_##SFX, dense_##SFX, sum_runs_##SFX, dot_runs_##SFX \
    }

DEF_ALL_GENERIC(port, )

static const tsr__masks_kernels_t k_portable[TSR_DTYPE_COUNT] = {
    [TSR_U8] = TABLE_ROW(port_u8),   [TSR_U16] = TABLE_ROW(port_u16),
    [TSR_U32] = TABLE_ROW(port_u32), [TSR_U64] = TABLE_ROW(port_u64),
    [TSR_I8] = TABLE_ROW(port_i8),   [TSR_I16] = TABLE_ROW(port_i16),
    [TSR_I32] = TABLE_ROW(port_i32), [TSR_I64] = TABLE_ROW(port_i64),
    [TSR_F32] = TABLE_ROW(port_f32), [TSR_F64] = TABLE_ROW(port_f64),
    [TSR_BOOL] = TABLE_ROW(port_u8),
};

#if MASKS_X86

/* ======================================================================
 * AVX2 + FMA
 * ====================================================================== */

#define AVX2 __attribute__((target("avx2,fma")))

/* (the intrinsics versions below replace some of these) */
DEF_ALL_GENERIC(avx2g, AVX2 __attribute__((unused)))

/* Eight elements converted to float32. */
AVX2 static inline __m256 ld8_u8(const uint8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
AVX2 static inline __m256 ld8_i8(const int8_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}
AVX2 static inline __m256 ld8_u16(const uint16_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)));
}
AVX2 static inline __m256 ld8_i16(const int16_t *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)p)));
}
AVX2 static inline __m256 ld8_f32(const float *p)
{
    return _mm256_loadu_ps(p);
}

/* Sum of the 8 float32 lanes of a and of b, as 4 float64 lanes. */
AVX2 static inline __m256d widen2(__m256 a, __m256 b)
{
    __m256d s = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
    __m256d t = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(b)),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(b, 1)));
    return _mm256_add_pd(s, t);
}

AVX2 static inline __m256d widen1(__m256 a)
{
    return _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                         _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
}

AVX2 static inline double hsum4d(__m256d v)
{
    __m128d lo = _mm256_castpd256_pd128(v), hi = _mm256_extractf128_pd(v, 1);
    lo = _mm_add_pd(lo, hi);
    return _mm_cvtsd_f64(_mm_add_sd(lo, _mm_unpackhi_pd(lo, lo)));
}

/* Dot products of four frames sharing the weight loads (two accumulators
 * of 8 lanes per frame: 8 independent FMA chains), then one frame at a time
 * with four accumulators.  A block of 2048 pixels puts 128 products in each
 * float32 lane. */
#define DEF_DOT_AVX2(NAME, T, LD8)                                                            \
    AVX2 static void NAME(const void *xv, int64_t xs, int64_t depth, const float *restrict w, \
                          int64_t len, double *restrict acc, int64_t as)                      \
    {                                                                                         \
        const T *restrict x = (const T *)xv;                                                  \
        int64_t f = 0;                                                                        \
        for (; f + 4 <= depth; f += 4) {                                                      \
            const T *x0 = x + f * xs, *x1 = x0 + xs, *x2 = x1 + xs, *x3 = x2 + xs;            \
            __m256d t0 = _mm256_setzero_pd(), t1 = t0, t2 = t0, t3 = t0;                      \
            int64_t p = 0;                                                                    \
            while (p + 16 <= len) {                                                           \
                const int64_t e = min64(len, p + 16 * CHUNK);                                 \
                __m256 a0 = _mm256_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0, \
                       a3 = a0, b3 = a0;                                                      \
                for (; p + 16 <= e; p += 16) {                                                \
                    const __m256 wa = _mm256_loadu_ps(w + p);                                 \
                    const __m256 wb = _mm256_loadu_ps(w + p + 8);                             \
                    a0 = _mm256_fmadd_ps(LD8(x0 + p), wa, a0);                                \
                    b0 = _mm256_fmadd_ps(LD8(x0 + p + 8), wb, b0);                            \
                    a1 = _mm256_fmadd_ps(LD8(x1 + p), wa, a1);                                \
                    b1 = _mm256_fmadd_ps(LD8(x1 + p + 8), wb, b1);                            \
                    a2 = _mm256_fmadd_ps(LD8(x2 + p), wa, a2);                                \
                    b2 = _mm256_fmadd_ps(LD8(x2 + p + 8), wb, b2);                            \
                    a3 = _mm256_fmadd_ps(LD8(x3 + p), wa, a3);                                \
                    b3 = _mm256_fmadd_ps(LD8(x3 + p + 8), wb, b3);                            \
                }                                                                             \
                t0 = _mm256_add_pd(t0, widen2(a0, b0));                                       \
                t1 = _mm256_add_pd(t1, widen2(a1, b1));                                       \
                t2 = _mm256_add_pd(t2, widen2(a2, b2));                                       \
                t3 = _mm256_add_pd(t3, widen2(a3, b3));                                       \
            }                                                                                 \
            double r0 = hsum4d(t0), r1 = hsum4d(t1), r2 = hsum4d(t2), r3 = hsum4d(t3);        \
            for (; p < len; p++) {                                                            \
                const double wp = (double)w[p];                                               \
                r0 += (double)x0[p] * wp;                                                     \
                r1 += (double)x1[p] * wp;                                                     \
                r2 += (double)x2[p] * wp;                                                     \
                r3 += (double)x3[p] * wp;                                                     \
            }                                                                                 \
            acc[f * as] += r0;                                                                \
            acc[(f + 1) * as] += r1;                                                          \
            acc[(f + 2) * as] += r2;                                                          \
            acc[(f + 3) * as] += r3;                                                          \
        }                                                                                     \
        for (; f < depth; f++) {                                                              \
            const T *x0 = x + f * xs;                                                         \
            __m256d t0 = _mm256_setzero_pd();                                                 \
            int64_t p = 0;                                                                    \
            while (p + 32 <= len) {                                                           \
                const int64_t e = min64(len, p + 32 * CHUNK);                                 \
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                   \
                for (; p + 32 <= e; p += 32) {                                                \
                    a0 = _mm256_fmadd_ps(LD8(x0 + p), _mm256_loadu_ps(w + p), a0);            \
                    a1 = _mm256_fmadd_ps(LD8(x0 + p + 8), _mm256_loadu_ps(w + p + 8), a1);    \
                    a2 = _mm256_fmadd_ps(LD8(x0 + p + 16), _mm256_loadu_ps(w + p + 16), a2);  \
                    a3 = _mm256_fmadd_ps(LD8(x0 + p + 24), _mm256_loadu_ps(w + p + 24), a3);  \
                }                                                                             \
                t0 = _mm256_add_pd(t0, _mm256_add_pd(widen2(a0, a1), widen2(a2, a3)));        \
            }                                                                                 \
            double r0 = hsum4d(t0);                                                           \
            for (; p < len; p++)                                                              \
                r0 += (double)x0[p] * (double)w[p];                                           \
            acc[f * as] += r0;                                                                \
        }                                                                                     \
    }

DEF_DOT_AVX2(dot_avx2_u8, uint8_t, ld8_u8)
DEF_DOT_AVX2(dot_avx2_i8, int8_t, ld8_i8)
DEF_DOT_AVX2(dot_avx2_u16, uint16_t, ld8_u16)
DEF_DOT_AVX2(dot_avx2_i16, int16_t, ld8_i16)
DEF_DOT_AVX2(dot_avx2_f32, float, ld8_f32)

/* Add the float32 sums c (jn <= 8 lanes used) to o[0..jn). */
AVX2 static inline void add_lanes8(double *o, __m256 c, int64_t jn)
{
    float tmp[8] __attribute__((aligned(32)));
    _mm256_store_ps(tmp, c);
    for (int64_t k = 0; k < jn; k++)
        o[k] += (double)tmp[k];
}

/* o[fi * ldo + k] += Σ_{p<pn} xb[fi][p] · row_p[k] for fi < fn, k < jn
 * (8 < jn <= 16): 4 frames × 16 masks in 8 accumulators; per pixel two
 * weight loads, four broadcasts and eight FMAs. */
AVX2 static void dense_avx2_4x16(const float *xb, const float *row, int64_t ld, int64_t pn,
                                 double *o, int64_t ldo, int64_t fn, int64_t jn)
{
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00;
    for (int64_t p = 0; p < pn; p++, row += ld) {
        const __m256 ma = _mm256_loadu_ps(row);
        const __m256 mb = _mm256_loadu_ps(row + 8);
        __m256 v = _mm256_broadcast_ss(xb + p);
        c00 = _mm256_fmadd_ps(v, ma, c00);
        c01 = _mm256_fmadd_ps(v, mb, c01);
        v = _mm256_broadcast_ss(xb + CHUNK + p);
        c10 = _mm256_fmadd_ps(v, ma, c10);
        c11 = _mm256_fmadd_ps(v, mb, c11);
        v = _mm256_broadcast_ss(xb + 2 * CHUNK + p);
        c20 = _mm256_fmadd_ps(v, ma, c20);
        c21 = _mm256_fmadd_ps(v, mb, c21);
        v = _mm256_broadcast_ss(xb + 3 * CHUNK + p);
        c30 = _mm256_fmadd_ps(v, ma, c30);
        c31 = _mm256_fmadd_ps(v, mb, c31);
    }
    const __m256 cs[4][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int64_t fi = 0; fi < fn; fi++) {
        add_lanes8(o + fi * ldo, cs[fi][0], 8);
        add_lanes8(o + fi * ldo + 8, cs[fi][1], jn - 8);
    }
}

/* The same for the last jn <= 8 masks: 4 frames × 8 masks. */
AVX2 static void dense_avx2_4x8(const float *xb, const float *row, int64_t ld, int64_t pn,
                                double *o, int64_t ldo, int64_t fn, int64_t jn)
{
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
    for (int64_t p = 0; p < pn; p++, row += ld) {
        const __m256 ma = _mm256_loadu_ps(row);
        c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + p), ma, c0);
        c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + CHUNK + p), ma, c1);
        c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + 2 * CHUNK + p), ma, c2);
        c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + 3 * CHUNK + p), ma, c3);
    }
    const __m256 cs[4] = {c0, c1, c2, c3};
    for (int64_t fi = 0; fi < fn; fi++)
        add_lanes8(o + fi * ldo, cs[fi], jn);
}

/* Dense product: per chunk of CHUNK pixels and block of up to 64 masks,
 * four frames are converted into xb (in L1), then the micro-kernels above
 * run over the chunk for each group of 16 (or the last 8) masks. */
#define DEF_DENSE_AVX2(NAME, T, LD8)                                                               \
    AVX2 static void NAME(const void *xv, int64_t xs, int64_t depth, int64_t len,                  \
                          const float *restrict m, int64_t ld, int64_t nd, double *restrict acc)   \
    {                                                                                              \
        const T *restrict x = (const T *)xv;                                                       \
        float xb[4 * CHUNK] __attribute__((aligned(32)));                                          \
        for (int64_t p0 = 0; p0 < len; p0 += CHUNK) {                                              \
            const int64_t pn = min64(CHUNK, len - p0);                                             \
            for (int64_t m0 = 0; m0 < nd; m0 += 64) {                                              \
                const int64_t mend = min64(m0 + 64, nd);                                           \
                for (int64_t f0 = 0; f0 < depth; f0 += 4) {                                        \
                    const int64_t fn = min64(4, depth - f0);                                       \
                    for (int64_t fi = 0; fi < 4; fi++) {                                           \
                        float *d = xb + fi * CHUNK;                                                \
                        if (fi >= fn) {                                                            \
                            memset(d, 0, sizeof(float) * (size_t)pn);                              \
                            continue;                                                              \
                        }                                                                          \
                        const T *s = x + (f0 + fi) * xs + p0;                                      \
                        int64_t p = 0;                                                             \
                        for (; p + 8 <= pn; p += 8)                                                \
                            _mm256_store_ps(d + p, LD8(s + p));                                    \
                        for (; p < pn; p++)                                                        \
                            d[p] = (float)s[p];                                                    \
                    }                                                                              \
                    for (int64_t j = m0; j < mend; j += 16) {                                      \
                        const int64_t jn = min64(16, nd - j);                                      \
                        if (jn > 8)                                                                \
                            dense_avx2_4x16(xb, m + p0 * ld + j, ld, pn, acc + f0 * nd + j, nd,    \
                                            fn, jn);                                               \
                        else                                                                       \
                            dense_avx2_4x8(xb, m + p0 * ld + j, ld, pn, acc + f0 * nd + j, nd, fn, \
                                           jn);                                                    \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEF_DENSE_AVX2(dense_avx2_u8, uint8_t, ld8_u8)
DEF_DENSE_AVX2(dense_avx2_i8, int8_t, ld8_i8)
DEF_DENSE_AVX2(dense_avx2_u16, uint16_t, ld8_u16)
DEF_DENSE_AVX2(dense_avx2_i16, int16_t, ld8_i16)
DEF_DENSE_AVX2(dense_avx2_f32, float, ld8_f32)

/* Run kernels: four frames per pass over the runs, with the vector
 * accumulators carried from run to run and reduced once per pass, so that
 * a mask made of many short runs (a disk: one per row; a ring: two) costs
 * little more than its pixels.  Pixels past the last whole vector of a run
 * are added in scalar code. */

/* The four frame pointers of a pass starting at frame f; missing frames
 * repeat the first (their results are dropped). */
#define FRAMES4(T, x, xs, f, fn, x0, x1, x2, x3) \
    const T *x0 = (x) + (f) * (xs);              \
    const T *x1 = (fn) > 1 ? x0 + (xs) : x0;     \
    const T *x2 = (fn) > 2 ? x0 + 2 * (xs) : x0; \
    const T *x3 = (fn) > 3 ? x0 + 3 * (xs) : x0

AVX2 static inline uint64_t hsum8_u32(__m256i v)
{
    uint32_t l[8];
    _mm256_storeu_si256((__m256i *)l, v);
    uint64_t t = 0;
    for (int k = 0; k < 8; k++)
        t += l[k];
    return t;
}

/* uint16: each 32-bit lane adds its low and high halves (two pixels); a
 * lane gains at most 2 · 65535 per vector, so lanes are folded into 64-bit
 * totals every FOLD_U16 vectors. */
#define FOLD_U16 16384

AVX2 static inline __m256i add_u16_pairs(__m256i a, __m256i v)
{
    const __m256i lo = _mm256_set1_epi32(0xFFFF);
    return _mm256_add_epi32(a, _mm256_add_epi32(_mm256_and_si256(v, lo), _mm256_srli_epi32(v, 16)));
}

AVX2 static void sum_runs_avx2_u16(const void *xv, int64_t xs, int64_t depth,
                                   const tsr__masks_run_t *runs, int64_t nr, int64_t s0, int64_t s1,
                                   double *restrict out)
{
    const uint16_t *x = (const uint16_t *)xv;
    for (int64_t f = 0; f < depth; f += 4) {
        const int64_t fn = min64(4, depth - f);
        FRAMES4(uint16_t, x, xs, f, fn, x0, x1, x2, x3);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        uint64_t t[4] = {0, 0, 0, 0};
        int64_t ops = 0;
        for (int64_t i = 0; i < nr; i++) {
            int64_t p, e;
            if (!run_clip(&runs[i], s0, s1, &p, &e))
                continue;
            p -= s0;
            e -= s0;
            for (; p + 16 <= e; p += 16) {
                a0 = add_u16_pairs(a0, _mm256_loadu_si256((const __m256i *)(x0 + p)));
                a1 = add_u16_pairs(a1, _mm256_loadu_si256((const __m256i *)(x1 + p)));
                a2 = add_u16_pairs(a2, _mm256_loadu_si256((const __m256i *)(x2 + p)));
                a3 = add_u16_pairs(a3, _mm256_loadu_si256((const __m256i *)(x3 + p)));
                if (++ops == FOLD_U16) {
                    t[0] += hsum8_u32(a0);
                    t[1] += hsum8_u32(a1);
                    t[2] += hsum8_u32(a2);
                    t[3] += hsum8_u32(a3);
                    a0 = a1 = a2 = a3 = _mm256_setzero_si256();
                    ops = 0;
                }
            }
            for (; p < e; p++) {
                t[0] += x0[p];
                t[1] += x1[p];
                t[2] += x2[p];
                t[3] += x3[p];
            }
        }
        t[0] += hsum8_u32(a0);
        t[1] += hsum8_u32(a1);
        t[2] += hsum8_u32(a2);
        t[3] += hsum8_u32(a3);
        for (int64_t k = 0; k < fn; k++)
            out[f + k] = (double)t[k];
    }
}

/* uint8 (and bool): SAD against zero sums eight bytes into a 64-bit lane. */
AVX2 static inline __m256i add_u8_sad(__m256i a, const uint8_t *p)
{
    return _mm256_add_epi64(
        a, _mm256_sad_epu8(_mm256_loadu_si256((const __m256i *)p), _mm256_setzero_si256()));
}

AVX2 static void sum_runs_avx2_u8(const void *xv, int64_t xs, int64_t depth,
                                  const tsr__masks_run_t *runs, int64_t nr, int64_t s0, int64_t s1,
                                  double *restrict out)
{
    const uint8_t *x = (const uint8_t *)xv;
    for (int64_t f = 0; f < depth; f += 4) {
        const int64_t fn = min64(4, depth - f);
        FRAMES4(uint8_t, x, xs, f, fn, x0, x1, x2, x3);
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
        uint64_t t[4] = {0, 0, 0, 0};
        for (int64_t i = 0; i < nr; i++) {
            int64_t p, e;
            if (!run_clip(&runs[i], s0, s1, &p, &e))
                continue;
            p -= s0;
            e -= s0;
            for (; p + 32 <= e; p += 32) {
                a0 = add_u8_sad(a0, x0 + p);
                a1 = add_u8_sad(a1, x1 + p);
                a2 = add_u8_sad(a2, x2 + p);
                a3 = add_u8_sad(a3, x3 + p);
            }
            for (; p < e; p++) {
                t[0] += x0[p];
                t[1] += x1[p];
                t[2] += x2[p];
                t[3] += x3[p];
            }
        }
        const __m256i as[4] = {a0, a1, a2, a3};
        for (int64_t k = 0; k < fn; k++) {
            uint64_t l[4];
            _mm256_storeu_si256((__m256i *)l, as[k]);
            out[f + k] = (double)(t[k] + l[0] + l[1] + l[2] + l[3]);
        }
    }
}

/* Weighted runs, float32 class: four frames share each weight load; the
 * float32 lanes are folded into float64 every CHUNK vectors. */
#define DEF_DOT_RUNS_AVX2(NAME, T, LD8)                                                            \
    AVX2 static void NAME(const void *xv, int64_t xs, int64_t depth, const tsr__masks_run_t *runs, \
                          int64_t nr, int64_t s0, int64_t s1, const float *w, double *acc,         \
                          int64_t as)                                                              \
    {                                                                                              \
        const T *x = (const T *)xv;                                                                \
        for (int64_t f = 0; f < depth; f += 4) {                                                   \
            const int64_t fn = min64(4, depth - f);                                                \
            FRAMES4(T, x, xs, f, fn, x0, x1, x2, x3);                                              \
            __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                            \
            __m256d t0 = _mm256_setzero_pd(), t1 = t0, t2 = t0, t3 = t0;                           \
            double r[4] = {0, 0, 0, 0};                                                            \
            int64_t ops = 0;                                                                       \
            for (int64_t i = 0; i < nr; i++) {                                                     \
                int64_t p, e;                                                                      \
                if (!run_clip(&runs[i], s0, s1, &p, &e))                                           \
                    continue;                                                                      \
                /* weight of tile pixel q: w[wo + q] */                                            \
                const int64_t wo = runs[i].woff - runs[i].start + s0;                              \
                p -= s0;                                                                           \
                e -= s0;                                                                           \
                for (; p + 8 <= e; p += 8) {                                                       \
                    const __m256 wv = _mm256_loadu_ps(w + wo + p);                                 \
                    a0 = _mm256_fmadd_ps(LD8(x0 + p), wv, a0);                                     \
                    a1 = _mm256_fmadd_ps(LD8(x1 + p), wv, a1);                                     \
                    a2 = _mm256_fmadd_ps(LD8(x2 + p), wv, a2);                                     \
                    a3 = _mm256_fmadd_ps(LD8(x3 + p), wv, a3);                                     \
                    if (++ops == CHUNK) {                                                          \
                        t0 = _mm256_add_pd(t0, widen1(a0));                                        \
                        t1 = _mm256_add_pd(t1, widen1(a1));                                        \
                        t2 = _mm256_add_pd(t2, widen1(a2));                                        \
                        t3 = _mm256_add_pd(t3, widen1(a3));                                        \
                        a0 = a1 = a2 = a3 = _mm256_setzero_ps();                                   \
                        ops = 0;                                                                   \
                    }                                                                              \
                }                                                                                  \
                for (; p < e; p++) {                                                               \
                    const double wp = (double)w[wo + p];                                           \
                    r[0] += (double)x0[p] * wp;                                                    \
                    r[1] += (double)x1[p] * wp;                                                    \
                    r[2] += (double)x2[p] * wp;                                                    \
                    r[3] += (double)x3[p] * wp;                                                    \
                }                                                                                  \
            }                                                                                      \
            const double v[4] = {                                                                  \
                hsum4d(_mm256_add_pd(t0, widen1(a0))), hsum4d(_mm256_add_pd(t1, widen1(a1))),      \
                hsum4d(_mm256_add_pd(t2, widen1(a2))), hsum4d(_mm256_add_pd(t3, widen1(a3)))};     \
            for (int64_t k = 0; k < fn; k++)                                                       \
                acc[(f + k) * as] += v[k] + r[k];                                                  \
        }                                                                                          \
    }

DEF_DOT_RUNS_AVX2(dot_runs_avx2_u8, uint8_t, ld8_u8)
DEF_DOT_RUNS_AVX2(dot_runs_avx2_i8, int8_t, ld8_i8)
DEF_DOT_RUNS_AVX2(dot_runs_avx2_u16, uint16_t, ld8_u16)
DEF_DOT_RUNS_AVX2(dot_runs_avx2_i16, int16_t, ld8_i16)
DEF_DOT_RUNS_AVX2(dot_runs_avx2_f32, float, ld8_f32)

/* float64 class, and the sums of other types: the generic bodies compiled
 * for AVX2. */
static const tsr__masks_kernels_t k_avx2[TSR_DTYPE_COUNT] = {
    [TSR_U8] = {dot_avx2_u8, dense_avx2_u8, sum_runs_avx2_u8, dot_runs_avx2_u8},
    [TSR_U16] = {dot_avx2_u16, dense_avx2_u16, sum_runs_avx2_u16, dot_runs_avx2_u16},
    [TSR_U32] = TABLE_ROW(avx2g_u32),
    [TSR_U64] = TABLE_ROW(avx2g_u64),
    [TSR_I8] = {dot_avx2_i8, dense_avx2_i8, sum_runs_avx2g_i8, dot_runs_avx2_i8},
    [TSR_I16] = {dot_avx2_i16, dense_avx2_i16, sum_runs_avx2g_i16, dot_runs_avx2_i16},
    [TSR_I32] = TABLE_ROW(avx2g_i32),
    [TSR_I64] = TABLE_ROW(avx2g_i64),
    [TSR_F32] = {dot_avx2_f32, dense_avx2_f32, sum_runs_avx2g_f32, dot_runs_avx2_f32},
    [TSR_F64] = TABLE_ROW(avx2g_f64),
    [TSR_BOOL] = {dot_avx2_u8, dense_avx2_u8, sum_runs_avx2_u8, dot_runs_avx2_u8},
};

/* ======================================================================
 * AVX-512 (F, BW, VL, DQ)
 * ====================================================================== */

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,bmi2")))

/* (the intrinsics versions below replace some of these) */
DEF_ALL_GENERIC(avx512g, AVX512 __attribute__((unused)))

/* Sixteen elements converted to float32. */
AVX512 static inline __m512 ld16_u8(const uint8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
AVX512 static inline __m512 ld16_i8(const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}
AVX512 static inline __m512 ld16_u16(const uint16_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)));
}
AVX512 static inline __m512 ld16_i16(const int16_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)p)));
}
AVX512 static inline __m512 ld16_f32(const float *p)
{
    return _mm512_loadu_ps(p);
}

/* The 16 float32 lanes of a plus those of b, as 8 float64 lanes. */
AVX512 static inline __m512d widen2_512(__m512 a, __m512 b)
{
    __m512d s = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)),
                              _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)));
    __m512d t = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(b)),
                              _mm512_cvtps_pd(_mm512_extractf32x8_ps(b, 1)));
    return _mm512_add_pd(s, t);
}

/* As DEF_DOT_AVX2 with 16 lanes: four frames × two accumulators sharing
 * the weight loads; blocks of 4096 pixels (128 products per lane). */
#define DEF_DOT_AVX512(NAME, T, LD16)                                                           \
    AVX512 static void NAME(const void *xv, int64_t xs, int64_t depth, const float *restrict w, \
                            int64_t len, double *restrict acc, int64_t as)                      \
    {                                                                                           \
        const T *restrict x = (const T *)xv;                                                    \
        int64_t f = 0;                                                                          \
        for (; f + 4 <= depth; f += 4) {                                                        \
            const T *x0 = x + f * xs, *x1 = x0 + xs, *x2 = x1 + xs, *x3 = x2 + xs;              \
            __m512d t0 = _mm512_setzero_pd(), t1 = t0, t2 = t0, t3 = t0;                        \
            int64_t p = 0;                                                                      \
            while (p + 32 <= len) {                                                             \
                const int64_t e = min64(len, p + 32 * CHUNK);                                   \
                __m512 a0 = _mm512_setzero_ps(), b0 = a0, a1 = a0, b1 = a0, a2 = a0, b2 = a0,   \
                       a3 = a0, b3 = a0;                                                        \
                for (; p + 32 <= e; p += 32) {                                                  \
                    const __m512 wa = _mm512_loadu_ps(w + p);                                   \
                    const __m512 wb = _mm512_loadu_ps(w + p + 16);                              \
                    a0 = _mm512_fmadd_ps(LD16(x0 + p), wa, a0);                                 \
                    b0 = _mm512_fmadd_ps(LD16(x0 + p + 16), wb, b0);                            \
                    a1 = _mm512_fmadd_ps(LD16(x1 + p), wa, a1);                                 \
                    b1 = _mm512_fmadd_ps(LD16(x1 + p + 16), wb, b1);                            \
                    a2 = _mm512_fmadd_ps(LD16(x2 + p), wa, a2);                                 \
                    b2 = _mm512_fmadd_ps(LD16(x2 + p + 16), wb, b2);                            \
                    a3 = _mm512_fmadd_ps(LD16(x3 + p), wa, a3);                                 \
                    b3 = _mm512_fmadd_ps(LD16(x3 + p + 16), wb, b3);                            \
                }                                                                               \
                t0 = _mm512_add_pd(t0, widen2_512(a0, b0));                                     \
                t1 = _mm512_add_pd(t1, widen2_512(a1, b1));                                     \
                t2 = _mm512_add_pd(t2, widen2_512(a2, b2));                                     \
                t3 = _mm512_add_pd(t3, widen2_512(a3, b3));                                     \
            }                                                                                   \
            double r0 = _mm512_reduce_add_pd(t0), r1 = _mm512_reduce_add_pd(t1);                \
            double r2 = _mm512_reduce_add_pd(t2), r3 = _mm512_reduce_add_pd(t3);                \
            for (; p < len; p++) {                                                              \
                const double wp = (double)w[p];                                                 \
                r0 += (double)x0[p] * wp;                                                       \
                r1 += (double)x1[p] * wp;                                                       \
                r2 += (double)x2[p] * wp;                                                       \
                r3 += (double)x3[p] * wp;                                                       \
            }                                                                                   \
            acc[f * as] += r0;                                                                  \
            acc[(f + 1) * as] += r1;                                                            \
            acc[(f + 2) * as] += r2;                                                            \
            acc[(f + 3) * as] += r3;                                                            \
        }                                                                                       \
        for (; f < depth; f++) {                                                                \
            const T *x0 = x + f * xs;                                                           \
            __m512d t0 = _mm512_setzero_pd();                                                   \
            int64_t p = 0;                                                                      \
            while (p + 64 <= len) {                                                             \
                const int64_t e = min64(len, p + 64 * CHUNK);                                   \
                __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                     \
                for (; p + 64 <= e; p += 64) {                                                  \
                    a0 = _mm512_fmadd_ps(LD16(x0 + p), _mm512_loadu_ps(w + p), a0);             \
                    a1 = _mm512_fmadd_ps(LD16(x0 + p + 16), _mm512_loadu_ps(w + p + 16), a1);   \
                    a2 = _mm512_fmadd_ps(LD16(x0 + p + 32), _mm512_loadu_ps(w + p + 32), a2);   \
                    a3 = _mm512_fmadd_ps(LD16(x0 + p + 48), _mm512_loadu_ps(w + p + 48), a3);   \
                }                                                                               \
                t0 = _mm512_add_pd(t0, _mm512_add_pd(widen2_512(a0, a1), widen2_512(a2, a3)));  \
            }                                                                                   \
            double r0 = _mm512_reduce_add_pd(t0);                                               \
            for (; p < len; p++)                                                                \
                r0 += (double)x0[p] * (double)w[p];                                             \
            acc[f * as] += r0;                                                                  \
        }                                                                                       \
    }

DEF_DOT_AVX512(dot_avx512_u8, uint8_t, ld16_u8)
DEF_DOT_AVX512(dot_avx512_i8, int8_t, ld16_i8)
DEF_DOT_AVX512(dot_avx512_u16, uint16_t, ld16_u16)
DEF_DOT_AVX512(dot_avx512_i16, int16_t, ld16_i16)
DEF_DOT_AVX512(dot_avx512_f32, float, ld16_f32)

/* o[fi * ldo + k] += Σ_{p<pn} xb[fi][p] · row_p[k] for fi < fn, k < jn
 * (8 < jn <= 16): 8 frames × 16 masks in 8 accumulators; per pixel one
 * weight load, eight broadcasts and eight FMAs. */
AVX512 static void dense_avx512_8x16(const float *xb, const float *row, int64_t ld, int64_t pn,
                                     double *o, int64_t ldo, int64_t fn, int64_t jn)
{
    /* Two sets of accumulators (even and odd pixels): 16 independent FMA
     * chains, enough to cover the FMA latency on both pipes. */
    __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    __m512 d0 = c0, d1 = c0, d2 = c0, d3 = c0, d4 = c0, d5 = c0, d6 = c0, d7 = c0;
    int64_t p = 0;
    for (; p + 2 <= pn; p += 2, row += 2 * ld) {
        const __m512 ma = _mm512_loadu_ps(row);
        const __m512 mb = _mm512_loadu_ps(row + ld);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(xb[p]), ma, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(xb[CHUNK + p]), ma, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(xb[2 * CHUNK + p]), ma, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(xb[3 * CHUNK + p]), ma, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(xb[4 * CHUNK + p]), ma, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(xb[5 * CHUNK + p]), ma, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(xb[6 * CHUNK + p]), ma, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(xb[7 * CHUNK + p]), ma, c7);
        d0 = _mm512_fmadd_ps(_mm512_set1_ps(xb[p + 1]), mb, d0);
        d1 = _mm512_fmadd_ps(_mm512_set1_ps(xb[CHUNK + p + 1]), mb, d1);
        d2 = _mm512_fmadd_ps(_mm512_set1_ps(xb[2 * CHUNK + p + 1]), mb, d2);
        d3 = _mm512_fmadd_ps(_mm512_set1_ps(xb[3 * CHUNK + p + 1]), mb, d3);
        d4 = _mm512_fmadd_ps(_mm512_set1_ps(xb[4 * CHUNK + p + 1]), mb, d4);
        d5 = _mm512_fmadd_ps(_mm512_set1_ps(xb[5 * CHUNK + p + 1]), mb, d5);
        d6 = _mm512_fmadd_ps(_mm512_set1_ps(xb[6 * CHUNK + p + 1]), mb, d6);
        d7 = _mm512_fmadd_ps(_mm512_set1_ps(xb[7 * CHUNK + p + 1]), mb, d7);
    }
    if (p < pn) {
        const __m512 ma = _mm512_loadu_ps(row);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(xb[p]), ma, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(xb[CHUNK + p]), ma, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(xb[2 * CHUNK + p]), ma, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(xb[3 * CHUNK + p]), ma, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(xb[4 * CHUNK + p]), ma, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(xb[5 * CHUNK + p]), ma, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(xb[6 * CHUNK + p]), ma, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(xb[7 * CHUNK + p]), ma, c7);
    }
    const __m512 cs[8] = {_mm512_add_ps(c0, d0), _mm512_add_ps(c1, d1), _mm512_add_ps(c2, d2),
                          _mm512_add_ps(c3, d3), _mm512_add_ps(c4, d4), _mm512_add_ps(c5, d5),
                          _mm512_add_ps(c6, d6), _mm512_add_ps(c7, d7)};
    for (int64_t fi = 0; fi < fn; fi++) {
        double *of = o + fi * ldo;
        if (jn == 16) {
            _mm512_storeu_pd(of, _mm512_add_pd(_mm512_loadu_pd(of),
                                               _mm512_cvtps_pd(_mm512_castps512_ps256(cs[fi]))));
            _mm512_storeu_pd(of + 8,
                             _mm512_add_pd(_mm512_loadu_pd(of + 8),
                                           _mm512_cvtps_pd(_mm512_extractf32x8_ps(cs[fi], 1))));
        } else {
            float tmp[16] __attribute__((aligned(64)));
            _mm512_store_ps(tmp, cs[fi]);
            for (int64_t k = 0; k < jn; k++)
                of[k] += (double)tmp[k];
        }
    }
}

/* The same for the last jn <= 8 masks: 8 frames × 8 masks (256-bit). */
AVX512 static void dense_avx512_8x8(const float *xb, const float *row, int64_t ld, int64_t pn,
                                    double *o, int64_t ldo, int64_t fn, int64_t jn)
{
    __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0;
    for (int64_t p = 0; p < pn; p++, row += ld) {
        const __m256 ma = _mm256_loadu_ps(row);
        c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + p), ma, c0);
        c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + CHUNK + p), ma, c1);
        c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + 2 * CHUNK + p), ma, c2);
        c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + 3 * CHUNK + p), ma, c3);
        c4 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + 4 * CHUNK + p), ma, c4);
        c5 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + 5 * CHUNK + p), ma, c5);
        c6 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + 6 * CHUNK + p), ma, c6);
        c7 = _mm256_fmadd_ps(_mm256_broadcast_ss(xb + 7 * CHUNK + p), ma, c7);
    }
    const __m256 cs[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
    float tmp[8] __attribute__((aligned(32)));
    for (int64_t fi = 0; fi < fn; fi++) {
        _mm256_store_ps(tmp, cs[fi]);
        for (int64_t k = 0; k < jn; k++)
            o[fi * ldo + k] += (double)tmp[k];
    }
}

/* As DEF_DENSE_AVX2 with eight frames per block. */
#define DEF_DENSE_AVX512(NAME, T, LD16)                                                            \
    AVX512 static void NAME(const void *xv, int64_t xs, int64_t depth, int64_t len,                \
                            const float *restrict m, int64_t ld, int64_t nd, double *restrict acc) \
    {                                                                                              \
        const T *restrict x = (const T *)xv;                                                       \
        float xb[8 * CHUNK] __attribute__((aligned(64)));                                          \
        for (int64_t p0 = 0; p0 < len; p0 += CHUNK) {                                              \
            const int64_t pn = min64(CHUNK, len - p0);                                             \
            for (int64_t m0 = 0; m0 < nd; m0 += 64) {                                              \
                const int64_t mend = min64(m0 + 64, nd);                                           \
                for (int64_t f0 = 0; f0 < depth; f0 += 8) {                                        \
                    const int64_t fn = min64(8, depth - f0);                                       \
                    for (int64_t fi = 0; fi < 8; fi++) {                                           \
                        float *d = xb + fi * CHUNK;                                                \
                        if (fi >= fn) {                                                            \
                            memset(d, 0, sizeof(float) * (size_t)pn);                              \
                            continue;                                                              \
                        }                                                                          \
                        const T *s = x + (f0 + fi) * xs + p0;                                      \
                        int64_t p = 0;                                                             \
                        for (; p + 16 <= pn; p += 16)                                              \
                            _mm512_store_ps(d + p, LD16(s + p));                                   \
                        for (; p < pn; p++)                                                        \
                            d[p] = (float)s[p];                                                    \
                    }                                                                              \
                    for (int64_t j = m0; j < mend; j += 16) {                                      \
                        const int64_t jn = min64(16, nd - j);                                      \
                        if (jn > 8)                                                                \
                            dense_avx512_8x16(xb, m + p0 * ld + j, ld, pn, acc + f0 * nd + j, nd,  \
                                              fn, jn);                                             \
                        else                                                                       \
                            dense_avx512_8x8(xb, m + p0 * ld + j, ld, pn, acc + f0 * nd + j, nd,   \
                                             fn, jn);                                              \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
    }

DEF_DENSE_AVX512(dense_avx512_u8, uint8_t, ld16_u8)
DEF_DENSE_AVX512(dense_avx512_i8, int8_t, ld16_i8)
DEF_DENSE_AVX512(dense_avx512_u16, uint16_t, ld16_u16)
DEF_DENSE_AVX512(dense_avx512_i16, int16_t, ld16_i16)
DEF_DENSE_AVX512(dense_avx512_f32, float, ld16_f32)

/* Run kernels as for AVX2, with masked loads for the last partial vector of
 * each run (so short runs stay vectorised), the mask from BZHI. */

AVX512 static inline __m512i add_u16_pairs_512(__m512i a, __m512i v)
{
    const __m512i lo = _mm512_set1_epi32(0xFFFF);
    return _mm512_add_epi32(a, _mm512_add_epi32(_mm512_and_si512(v, lo), _mm512_srli_epi32(v, 16)));
}

/* Sum of the 16 uint32 lanes of v. */
AVX512 static inline uint64_t hsum16_u32(__m512i v)
{
    const __m512i w = _mm512_add_epi64(_mm512_cvtepu32_epi64(_mm512_castsi512_si256(v)),
                                       _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(v, 1)));
    return (uint64_t)_mm512_reduce_add_epi64(w);
}

AVX512 static void sum_runs_avx512_u16(const void *xv, int64_t xs, int64_t depth,
                                       const tsr__masks_run_t *runs, int64_t nr, int64_t s0,
                                       int64_t s1, double *restrict out)
{
    const uint16_t *x = (const uint16_t *)xv;
    for (int64_t f = 0; f < depth; f += 4) {
        const int64_t fn = min64(4, depth - f);
        FRAMES4(uint16_t, x, xs, f, fn, x0, x1, x2, x3);
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        uint64_t t[4] = {0, 0, 0, 0};
        int64_t ops = 0;
        for (int64_t i = 0; i < nr; i++) {
            int64_t p, e;
            if (!run_clip(&runs[i], s0, s1, &p, &e))
                continue;
            p -= s0;
            e -= s0;
            for (; p < e; p += 32) {
                const __mmask32 k = _bzhi_u32(0xFFFFFFFFu, (unsigned)min64(e - p, 32));
                a0 = add_u16_pairs_512(a0, _mm512_maskz_loadu_epi16(k, x0 + p));
                a1 = add_u16_pairs_512(a1, _mm512_maskz_loadu_epi16(k, x1 + p));
                a2 = add_u16_pairs_512(a2, _mm512_maskz_loadu_epi16(k, x2 + p));
                a3 = add_u16_pairs_512(a3, _mm512_maskz_loadu_epi16(k, x3 + p));
                if (++ops == FOLD_U16) {
                    t[0] += hsum16_u32(a0);
                    t[1] += hsum16_u32(a1);
                    t[2] += hsum16_u32(a2);
                    t[3] += hsum16_u32(a3);
                    a0 = a1 = a2 = a3 = _mm512_setzero_si512();
                    ops = 0;
                }
            }
        }
        t[0] += hsum16_u32(a0);
        t[1] += hsum16_u32(a1);
        t[2] += hsum16_u32(a2);
        t[3] += hsum16_u32(a3);
        for (int64_t k = 0; k < fn; k++)
            out[f + k] = (double)t[k];
    }
}

AVX512 static inline __m512i add_u8_sad_512(__m512i a, __m512i v)
{
    return _mm512_add_epi64(a, _mm512_sad_epu8(v, _mm512_setzero_si512()));
}

AVX512 static void sum_runs_avx512_u8(const void *xv, int64_t xs, int64_t depth,
                                      const tsr__masks_run_t *runs, int64_t nr, int64_t s0,
                                      int64_t s1, double *restrict out)
{
    const uint8_t *x = (const uint8_t *)xv;
    for (int64_t f = 0; f < depth; f += 4) {
        const int64_t fn = min64(4, depth - f);
        FRAMES4(uint8_t, x, xs, f, fn, x0, x1, x2, x3);
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        for (int64_t i = 0; i < nr; i++) {
            int64_t p, e;
            if (!run_clip(&runs[i], s0, s1, &p, &e))
                continue;
            p -= s0;
            e -= s0;
            for (; p < e; p += 64) {
                const __mmask64 k = _bzhi_u64(~0ull, (unsigned)min64(e - p, 64));
                a0 = add_u8_sad_512(a0, _mm512_maskz_loadu_epi8(k, x0 + p));
                a1 = add_u8_sad_512(a1, _mm512_maskz_loadu_epi8(k, x1 + p));
                a2 = add_u8_sad_512(a2, _mm512_maskz_loadu_epi8(k, x2 + p));
                a3 = add_u8_sad_512(a3, _mm512_maskz_loadu_epi8(k, x3 + p));
            }
        }
        const __m512i as[4] = {a0, a1, a2, a3};
        for (int64_t k = 0; k < fn; k++)
            out[f + k] = (double)(uint64_t)_mm512_reduce_add_epi64(as[k]);
    }
}

/* Sixteen elements (the first of k) converted to float32, zero elsewhere. */
AVX512 static inline __m512 mld16_u8(__mmask16 k, const uint8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, p)));
}
AVX512 static inline __m512 mld16_i8(__mmask16 k, const int8_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, p)));
}
AVX512 static inline __m512 mld16_u16(__mmask16 k, const uint16_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p)));
}
AVX512 static inline __m512 mld16_i16(__mmask16 k, const int16_t *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(k, p)));
}
AVX512 static inline __m512 mld16_f32(__mmask16 k, const float *p)
{
    return _mm512_maskz_loadu_ps(k, p);
}

AVX512 static inline __m512d widen1_512(__m512 a)
{
    return _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(a)),
                         _mm512_cvtps_pd(_mm512_extractf32x8_ps(a, 1)));
}

#define DEF_DOT_RUNS_AVX512(NAME, T, MLD16)                                                        \
    AVX512 static void NAME(const void *xv, int64_t xs, int64_t depth,                             \
                            const tsr__masks_run_t *runs, int64_t nr, int64_t s0, int64_t s1,      \
                            const float *w, double *acc, int64_t as)                               \
    {                                                                                              \
        const T *x = (const T *)xv;                                                                \
        for (int64_t f = 0; f < depth; f += 4) {                                                   \
            const int64_t fn = min64(4, depth - f);                                                \
            FRAMES4(T, x, xs, f, fn, x0, x1, x2, x3);                                              \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                            \
            __m512d t0 = _mm512_setzero_pd(), t1 = t0, t2 = t0, t3 = t0;                           \
            int64_t ops = 0;                                                                       \
            for (int64_t i = 0; i < nr; i++) {                                                     \
                int64_t p, e;                                                                      \
                if (!run_clip(&runs[i], s0, s1, &p, &e))                                           \
                    continue;                                                                      \
                const int64_t wo = runs[i].woff - runs[i].start + s0;                              \
                p -= s0;                                                                           \
                e -= s0;                                                                           \
                for (; p < e; p += 16) {                                                           \
                    const __mmask16 k = (__mmask16)_bzhi_u32(0xFFFFu, (unsigned)min64(e - p, 16)); \
                    const __m512 wv = _mm512_maskz_loadu_ps(k, w + wo + p);                        \
                    a0 = _mm512_fmadd_ps(MLD16(k, x0 + p), wv, a0);                                \
                    a1 = _mm512_fmadd_ps(MLD16(k, x1 + p), wv, a1);                                \
                    a2 = _mm512_fmadd_ps(MLD16(k, x2 + p), wv, a2);                                \
                    a3 = _mm512_fmadd_ps(MLD16(k, x3 + p), wv, a3);                                \
                    if (++ops == CHUNK) {                                                          \
                        t0 = _mm512_add_pd(t0, widen1_512(a0));                                    \
                        t1 = _mm512_add_pd(t1, widen1_512(a1));                                    \
                        t2 = _mm512_add_pd(t2, widen1_512(a2));                                    \
                        t3 = _mm512_add_pd(t3, widen1_512(a3));                                    \
                        a0 = a1 = a2 = a3 = _mm512_setzero_ps();                                   \
                        ops = 0;                                                                   \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            const double v[4] = {_mm512_reduce_add_pd(_mm512_add_pd(t0, widen1_512(a0))),          \
                                 _mm512_reduce_add_pd(_mm512_add_pd(t1, widen1_512(a1))),          \
                                 _mm512_reduce_add_pd(_mm512_add_pd(t2, widen1_512(a2))),          \
                                 _mm512_reduce_add_pd(_mm512_add_pd(t3, widen1_512(a3)))};         \
            for (int64_t k = 0; k < fn; k++)                                                       \
                acc[(f + k) * as] += v[k];                                                         \
        }                                                                                          \
    }

DEF_DOT_RUNS_AVX512(dot_runs_avx512_u8, uint8_t, mld16_u8)
DEF_DOT_RUNS_AVX512(dot_runs_avx512_i8, int8_t, mld16_i8)
DEF_DOT_RUNS_AVX512(dot_runs_avx512_u16, uint16_t, mld16_u16)
DEF_DOT_RUNS_AVX512(dot_runs_avx512_i16, int16_t, mld16_i16)
DEF_DOT_RUNS_AVX512(dot_runs_avx512_f32, float, mld16_f32)

static const tsr__masks_kernels_t k_avx512[TSR_DTYPE_COUNT] = {
    [TSR_U8] = {dot_avx512_u8, dense_avx512_u8, sum_runs_avx512_u8, dot_runs_avx512_u8},
    [TSR_U16] = {dot_avx512_u16, dense_avx512_u16, sum_runs_avx512_u16, dot_runs_avx512_u16},
    [TSR_U32] = TABLE_ROW(avx512g_u32),
    [TSR_U64] = TABLE_ROW(avx512g_u64),
    [TSR_I8] = {dot_avx512_i8, dense_avx512_i8, sum_runs_avx512g_i8, dot_runs_avx512_i8},
    [TSR_I16] = {dot_avx512_i16, dense_avx512_i16, sum_runs_avx512g_i16, dot_runs_avx512_i16},
    [TSR_I32] = TABLE_ROW(avx512g_i32),
    [TSR_I64] = TABLE_ROW(avx512g_i64),
    [TSR_F32] = {dot_avx512_f32, dense_avx512_f32, sum_runs_avx512g_f32, dot_runs_avx512_f32},
    [TSR_F64] = TABLE_ROW(avx512g_f64),
    [TSR_BOOL] = {dot_avx512_u8, dense_avx512_u8, sum_runs_avx512_u8, dot_runs_avx512_u8},
};

#endif /* MASKS_X86 */

/* ======================================================================
 * Dispatch
 * ====================================================================== */

bool tsr__masks_isa_available(tsr__masks_isa_t isa)
{
    switch (isa) {
    case TSR__MASKS_ISA_PORTABLE: return true;
#if MASKS_X86
    case TSR__MASKS_ISA_AVX2:
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case TSR__MASKS_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("bmi2") && tsr__masks_isa_available(TSR__MASKS_ISA_AVX2);
#endif
    default: return false;
    }
}

/* The best ISA the CPU runs, capped by the environment variable
 * TSR_ISA (portable, avx2 or avx512) when it names one: a switch for
 * benchmarks and for testing the other paths on a machine with AVX-512. */
static tsr__masks_isa_t probe_best(void)
{
    int cap = TSR__MASKS_ISA_COUNT - 1;
    const char *env = getenv("TSR_ISA");
    for (int i = 0; env && i < TSR__MASKS_ISA_COUNT; i++)
        if (strcmp(env, tsr__masks_isa_name((tsr__masks_isa_t)i)) == 0)
            cap = i;
    for (int i = cap; i > 0; i--)
        if (tsr__masks_isa_available((tsr__masks_isa_t)i))
            return (tsr__masks_isa_t)i;
    return TSR__MASKS_ISA_PORTABLE;
}

tsr__masks_isa_t tsr__masks_isa_best(void)
{
    static atomic_int best = -1; /* atomic: probed once, any thread may race to store it */
    int b = atomic_load_explicit(&best, memory_order_relaxed);
    if (b < 0) {
        b = (int)probe_best();
        atomic_store_explicit(&best, b, memory_order_relaxed);
    }
    return (tsr__masks_isa_t)b;
}

const char *tsr__masks_isa_name(tsr__masks_isa_t isa)
{
    switch (isa) {
    case TSR__MASKS_ISA_PORTABLE: return "portable";
    case TSR__MASKS_ISA_AVX2: return "avx2";
    case TSR__MASKS_ISA_AVX512: return "avx512";
    default: return "?";
    }
}

const tsr__masks_kernels_t *tsr__masks_kernels_get(tsr_dtype_t dt, tsr__masks_isa_t isa)
{
    if (!tsr__dtype_valid(dt) || dt == TSR_C64 || !tsr__masks_isa_available(isa))
        return NULL;
    switch (isa) {
    case TSR__MASKS_ISA_PORTABLE: return &k_portable[dt];
#if MASKS_X86
    case TSR__MASKS_ISA_AVX2: return &k_avx2[dt];
    case TSR__MASKS_ISA_AVX512: return &k_avx512[dt];
#endif
    default: return NULL;
    }
}
