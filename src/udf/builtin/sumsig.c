/*
 * sumsig.c — the `sumsig` UDF: the total of each frame (LiberTEM's
 * SumSigUDF), a NAV buffer `intensity`.
 *
 * Tiles arrive in the dataset's own type (TSR_DTYPE_NATIVE).  A frame may be
 * split over several tiles along sig, so each tile adds its part with +=.
 *
 * Numerics, per element type:
 *  - integers and bool: the tile's part of a frame is summed exactly in a
 *    64-bit integer (uint64 for unsigned, int64 for signed types; these
 *    reductions are associative, so they vectorise), then added to the
 *    float64 result.  Integer totals are exact while they stay below 2^53
 *    (and, for 64-bit input, while the part sum does not wrap), and
 *    bit-identical whatever the tiling or partitioning.  8- and 16-bit
 *    pixels are first summed in 32-bit integers over blocks of 2^15 (which
 *    cannot overflow), half the widening work of a 64-bit reduction.
 *  - float32 / float64: summed in float64 with eight independent partial
 *    sums (lanes p mod 8), combined pairwise at the end.  A strict
 *    left-to-right float sum cannot be vectorised without -ffast-math; the
 *    eight-lane order is fixed by the code, so results are deterministic for
 *    a given tiling, and more accurate than a sequential sum.
 *  - complex64: the result is complex64 (numpy's sum of a complex64 array),
 *    accumulated as (re, im) float64 pairs in the private NAV buffer
 *    `intensity_acc` (extra_shape (2,)) and rounded in finalize.
 *
 * Sparse tiles (tsr_tile_t.sparse, real data only): the stored values of
 * each frame are summed in the same accumulator types (exactly for
 * integers; float64 in order for floats).
 *
 * The kernels are instantiated for the baseline and for AVX2 (builtin.h,
 * tsr__builtin_isa), chosen by CPU; both give the same bits.
 *
 * NAV-only: merge is left to the runtime (rows are copied into place).
 */
#include "udf/builtin/builtin.h"

/* ---- kernels ----------------------------------------------------------- */

/* Sum of n integers of type T, exactly, in the 64-bit type A. */
#define SUMSIG_INT_KERNEL(NAME, T, A, ATTR)                 \
    ATTR static double NAME(const T *restrict s, int64_t n) \
    {                                                       \
        A acc = 0;                                          \
        for (int64_t p = 0; p < n; p++)                     \
            acc += (A)s[p];                                 \
        return (double)acc;                                 \
    }
/* 8- and 16-bit integers: blocks of 2^15 elements are summed in the 32-bit
 * type B (exact: 2^15 · 2^16 = 2^31 for unsigned, 2^15 · 2^15 for signed
 * types), then added in A — half the widening work of a 64-bit reduction. */
#define SUMSIG_SMALL_KERNEL(NAME, T, A, B, ATTR)               \
    ATTR static double NAME(const T *restrict s, int64_t n)    \
    {                                                          \
        A acc = 0;                                             \
        for (int64_t p0 = 0; p0 < n; p0 += 32768) {            \
            const int64_t m = n - p0 < 32768 ? n - p0 : 32768; \
            B part = 0;                                        \
            for (int64_t p = 0; p < m; p++)                    \
                part += (B)s[p0 + p];                          \
            acc += (A)part;                                    \
        }                                                      \
        return (double)acc;                                    \
    }
#define SUMSIG_INT_KERNELS(SUFFIX, ATTR)                                        \
    SUMSIG_SMALL_KERNEL(sumsig_u8##SUFFIX, uint8_t, uint64_t, uint32_t, ATTR)   \
    SUMSIG_SMALL_KERNEL(sumsig_u16##SUFFIX, uint16_t, uint64_t, uint32_t, ATTR) \
    SUMSIG_INT_KERNEL(sumsig_u32##SUFFIX, uint32_t, uint64_t, ATTR)             \
    SUMSIG_INT_KERNEL(sumsig_u64##SUFFIX, uint64_t, uint64_t, ATTR)             \
    SUMSIG_SMALL_KERNEL(sumsig_i8##SUFFIX, int8_t, int64_t, int32_t, ATTR)      \
    SUMSIG_SMALL_KERNEL(sumsig_i16##SUFFIX, int16_t, int64_t, int32_t, ATTR)    \
    SUMSIG_INT_KERNEL(sumsig_i32##SUFFIX, int32_t, int64_t, ATTR)               \
    SUMSIG_INT_KERNEL(sumsig_i64##SUFFIX, int64_t, int64_t, ATTR)
SUMSIG_INT_KERNELS(, )
#if TSR__BUILTIN_HAVE_AVX2
SUMSIG_INT_KERNELS(_avx2, TSR__BUILTIN_AVX2)
#endif

/* Sum of n floats of type T in float64, eight lanes (element p goes to lane
 * p % 8), lanes combined pairwise.  With stride 2 it sums every other
 * element (one component of complex pairs). */
#define SUMSIG_FLT_KERNEL(NAME, T, ATTR)                                          \
    ATTR static double NAME(const T *restrict s, int64_t n)                       \
    {                                                                             \
        double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                   \
        int64_t p = 0;                                                            \
        for (; p + 8 <= n; p += 8)                                                \
            for (int k = 0; k < 8; k++)                                           \
                l[k] += (double)s[p + k];                                         \
        for (int k = 0; p < n; p++, k++)                                          \
            l[k] += (double)s[p];                                                 \
        return ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7])); \
    }
SUMSIG_FLT_KERNEL(sumsig_f32, float, )
SUMSIG_FLT_KERNEL(sumsig_f64, double, )
#if TSR__BUILTIN_HAVE_AVX2
SUMSIG_FLT_KERNEL(sumsig_f32_avx2, float, TSR__BUILTIN_AVX2)
SUMSIG_FLT_KERNEL(sumsig_f64_avx2, double, TSR__BUILTIN_AVX2)
#endif

/* Complex64 pairs: (re, im) sums of n pairs, eight lanes of pairs. */
static void sumsig_c64(const float *restrict s, int64_t n, double *re, double *im)
{
    double l[16] = {0};
    int64_t p = 0;
    for (; p + 8 <= n; p += 8)
        for (int k = 0; k < 16; k++)
            l[k] += (double)s[2 * p + k];
    for (int k = 0; p < n; p++, k += 2) {
        l[k] += (double)s[2 * p];
        l[k + 1] += (double)s[2 * p + 1];
    }
    double r = 0, i = 0;
    for (int k = 0; k < 16; k += 2) {
        r += l[k];
        i += l[k + 1];
    }
    *re = r;
    *im = i;
}

/* The part sum of one frame row of a real tile; false for an unknown type. */
#define SUMSIG_ROW(NAME, SUFFIX)                                                        \
    static bool NAME(const void *row, tsr_dtype_t dt, int64_t n, double *out)           \
    {                                                                                   \
        switch (dt) {                                                                   \
        case TSR_U8:                                                                    \
        case TSR_BOOL: *out = sumsig_u8##SUFFIX((const uint8_t *)row, n); return true;  \
        case TSR_U16: *out = sumsig_u16##SUFFIX((const uint16_t *)row, n); return true; \
        case TSR_U32: *out = sumsig_u32##SUFFIX((const uint32_t *)row, n); return true; \
        case TSR_U64: *out = sumsig_u64##SUFFIX((const uint64_t *)row, n); return true; \
        case TSR_I8: *out = sumsig_i8##SUFFIX((const int8_t *)row, n); return true;     \
        case TSR_I16: *out = sumsig_i16##SUFFIX((const int16_t *)row, n); return true;  \
        case TSR_I32: *out = sumsig_i32##SUFFIX((const int32_t *)row, n); return true;  \
        case TSR_I64: *out = sumsig_i64##SUFFIX((const int64_t *)row, n); return true;  \
        case TSR_F32: *out = sumsig_f32##SUFFIX((const float *)row, n); return true;    \
        case TSR_F64: *out = sumsig_f64##SUFFIX((const double *)row, n); return true;   \
        default: return false;                                                          \
        }                                                                               \
    }
SUMSIG_ROW(sumsig_row_portable, )
#if TSR__BUILTIN_HAVE_AVX2
SUMSIG_ROW(sumsig_row_avx2, _avx2)
#endif

static bool sumsig_row(const void *row, tsr_dtype_t dt, int64_t n, double *out)
{
#if TSR__BUILTIN_HAVE_AVX2
    if (tsr__builtin_isa() >= TSR__BUILTIN_ISA_AVX2)
        return sumsig_row_avx2(row, dt, n, out);
#endif
    return sumsig_row_portable(row, dt, n, out);
}

/* Sparse tile: out[f] += the sum of frame f's stored values. */
#define SUMSIG_SPARSE(DT, T, A)                                         \
    case DT: {                                                          \
        const T *v = (const T *)sp->values;                             \
        for (int64_t f = 0; f < depth; f++) {                           \
            A acc = 0;                                                  \
            for (int64_t e = sp->indptr[f]; e < sp->indptr[f + 1]; e++) \
                acc += (A)v[e];                                         \
            out[f] += (double)acc;                                      \
        }                                                               \
        return true;                                                    \
    }

static bool sumsig_sparse(double *out, const tsr_sparse_rows_t *sp, tsr_dtype_t dt, int64_t depth)
{
    switch (dt) {
        SUMSIG_SPARSE(TSR_U8, uint8_t, uint64_t)
        SUMSIG_SPARSE(TSR_BOOL, uint8_t, uint64_t)
        SUMSIG_SPARSE(TSR_U16, uint16_t, uint64_t)
        SUMSIG_SPARSE(TSR_U32, uint32_t, uint64_t)
        SUMSIG_SPARSE(TSR_U64, uint64_t, uint64_t)
        SUMSIG_SPARSE(TSR_I8, int8_t, int64_t)
        SUMSIG_SPARSE(TSR_I16, int16_t, int64_t)
        SUMSIG_SPARSE(TSR_I32, int32_t, int64_t)
        SUMSIG_SPARSE(TSR_I64, int64_t, int64_t)
        SUMSIG_SPARSE(TSR_F32, float, double)
        SUMSIG_SPARSE(TSR_F64, double, double)
    default: return false;
    }
}
#undef SUMSIG_SPARSE

/* ---- callbacks --------------------------------------------------------- */

enum { BUF_INTENSITY = 0, BUF_ACC = 1 };

static int sumsig_init(tsr_udf_init_t *init)
{
    tsr_dtype_t dt = init->meta->dataset_dtype;
    if (!tsr__dtype_valid(dt))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "sumsig: invalid dataset dtype %d",
                                      (int)dt);
    if (tsr__dtype_is_complex(dt)) {
        const int64_t two = 2;
        tsr__builtin_declare(init, "intensity", TSR_KIND_NAV, TSR_C64, TSR_BUF_RESULT_ONLY, 0,
                             NULL);
        tsr__builtin_declare(init, "intensity_acc", TSR_KIND_NAV, TSR_F64, TSR_BUF_PRIVATE, 1,
                             &two);
    } else {
        tsr__builtin_declare(init, "intensity", TSR_KIND_NAV, TSR_F64, 0, 0, NULL);
    }
    init->input_dtype = TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_TILE;
    init->accepts_sparse = !tsr__dtype_is_complex(dt);
    init->state = NULL;
    return 0;
}

static int sumsig_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    if (t->sparse) {
        if (c->n_bufs == 1 &&
            sumsig_sparse((double *)c->bufs[BUF_INTENSITY].data, t->sparse, t->dtype, t->depth))
            return 0;
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "sumsig: cannot add sparse %s tiles",
                             tsr_dtype_name(t->dtype));
    }
    size_t es = tsr_dtype_size(t->dtype);
    const char *base = (const char *)t->data;
    if (c->n_bufs == 1) {
        double *out = (double *)c->bufs[BUF_INTENSITY].data;
        for (int64_t f = 0; f < t->depth; f++) {
            double s;
            if (!sumsig_row(base + (size_t)(f * t->sig_len) * es, t->dtype, t->sig_len, &s))
                return tsr_udf_error(c, TSR_EUNSUPPORTED,
                                     "sumsig: cannot add %s tiles to a real sum",
                                     tsr_dtype_name(t->dtype));
            out[f] += s;
        }
        return 0;
    }
    double *acc = (double *)c->bufs[BUF_ACC].data; /* (re, im) per frame */
    for (int64_t f = 0; f < t->depth; f++) {
        const char *row = base + (size_t)(f * t->sig_len) * es;
        double re, im = 0;
        if (t->dtype == TSR_C64)
            sumsig_c64((const float *)row, t->sig_len, &re, &im);
        else if (!sumsig_row(row, t->dtype, t->sig_len, &re))
            return tsr_udf_error(c, TSR_EUNSUPPORTED, "sumsig: invalid tile dtype %d",
                                 (int)t->dtype);
        acc[2 * f] += re;
        acc[2 * f + 1] += im;
    }
    return 0;
}

static int sumsig_finalize(const tsr_udf_call_t *c)
{
    if (c->n_bufs == 1)
        return 0;
    /* Invalid positions of the accumulator are NaN, and stay NaN. */
    const double *acc = (const double *)c->bufs[BUF_ACC].data;
    float *out = (float *)c->bufs[BUF_INTENSITY].data;
    size_t n = 2 * (size_t)c->bufs[BUF_INTENSITY].rows;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)acc[i];
    return 0;
}

const tsr_udf_def_t tsr__udf_sumsig = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "sumsig",
    .description = "Total of each frame. Result `intensity` (nav shape): float64 for real data "
                   "(integer totals exact), complex64 for complex data.",
    .params = NULL,
    .n_params = 0,
    .init = sumsig_init,
    .process_tile = sumsig_process_tile,
    .merge = NULL,
    .finalize = sumsig_finalize,
};
