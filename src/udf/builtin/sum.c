/*
 * sum.c — the `sum` UDF: the sum of all selected frames, pixel by pixel
 * (LiberTEM's SumUDF).  This is the engine's hot path: a run of `sum` over
 * data in the page cache must go at memory bandwidth.
 *
 * The tiles arrive in the dataset's own type (TSR_DTYPE_NATIVE) so that no
 * float copy of the data is ever made; one loop per element type converts
 * and accumulates into a float64 SIG buffer.  Integer sums are therefore
 * exact (while they stay below 2^53) and bit-identical whatever the tiling,
 * partitioning and thread count.
 *
 * Kernel: for each frame of a tile, dst[p] += (double)src[p] over the tile's
 * sig slice.  Frames are taken four at a time with the accumulator kept in a
 * register between them — (((d + a) + b) + c) + e is exactly what four
 * single-frame passes compute, so this saves three quarters of the
 * destination loads and stores without changing one bit of the result.
 * 8- and 16-bit integers (the usual detector data) go further: eight frames
 * are added in int32 and converted once, which is also bit-identical because
 * integer sums below 2^53 are exact in float64.  The loops are branch-free
 * and vectorise (checked with -fopt-info-vec) for every type but the 64-bit
 * integers, which x86-64 cannot convert to double in SIMD before AVX-512.
 * Each kernel is instantiated for the baseline and for AVX2 (builtin.h,
 * tsr__builtin_isa) and sum_rows picks by CPU; both give the same bits.
 *
 * Sparse tiles (tsr_tile_t.sparse, real data only): each stored value is
 * added to its pixel, frame by frame in order — the same additions as the
 * dense kernels minus the zeros, so integer sums are again exact and equal
 * to the dense path's.
 *
 * Complex input: the result `intensity` is complex64 (numpy's sum of a
 * complex64 array), accumulated as (re, im) pairs of float64 in the private
 * SIG buffer `intensity_acc` (extra_shape (2,)) and rounded to complex64 in
 * finalize.  Real input: `intensity` is float64 and there is no private
 * buffer.
 */
#include "udf/builtin/builtin.h"

/* ---- kernels ----------------------------------------------------------- */

/* dst[p] += src[f][p] for depth frames of len elements.  One function per
 * element type, generated from the dtype X-macro. */
#define SUM_KERNEL(DT, T, SUFFIX, ATTR)                                                 \
    ATTR static void sum_rows_##DT##SUFFIX(double *restrict dst, const T *restrict src, \
                                           int64_t depth, int64_t len)                  \
    {                                                                                   \
        int64_t f = 0;                                                                  \
        for (; f + 4 <= depth; f += 4) {                                                \
            const T *restrict s0 = src + f * len;                                       \
            const T *restrict s1 = s0 + len;                                            \
            const T *restrict s2 = s1 + len;                                            \
            const T *restrict s3 = s2 + len;                                            \
            for (int64_t p = 0; p < len; p++) {                                         \
                double a = dst[p];                                                      \
                a += (double)s0[p];                                                     \
                a += (double)s1[p];                                                     \
                a += (double)s2[p];                                                     \
                a += (double)s3[p];                                                     \
                dst[p] = a;                                                             \
            }                                                                           \
        }                                                                               \
        for (; f < depth; f++) {                                                        \
            const T *restrict s = src + f * len;                                        \
            for (int64_t p = 0; p < len; p++)                                           \
                dst[p] += (double)s[p];                                                 \
        }                                                                               \
    }
#define SUM_KERNELS(SUFFIX, ATTR)               \
    SUM_KERNEL(TSR_U32, uint32_t, SUFFIX, ATTR) \
    SUM_KERNEL(TSR_U64, uint64_t, SUFFIX, ATTR) \
    SUM_KERNEL(TSR_I32, int32_t, SUFFIX, ATTR)  \
    SUM_KERNEL(TSR_I64, int64_t, SUFFIX, ATTR)  \
    SUM_KERNEL(TSR_F32, float, SUFFIX, ATTR)    \
    SUM_KERNEL(TSR_F64, double, SUFFIX, ATTR)
SUM_KERNELS(, )
#if TSR__BUILTIN_HAVE_AVX2
SUM_KERNELS(_avx2, TSR__BUILTIN_AVX2)
#endif

/* 8- and 16-bit integers: eight frames are first added in int32 (exact:
 * 8 · 65535 < 2^31), then converted once.  Integer additions are exact in
 * float64 too, so the result is bit-identical to eight single-frame passes,
 * with an eighth of the conversions and of the destination traffic. */
#define SUM_KERNEL_SMALL(DT, T, SUFFIX, ATTR)                                           \
    ATTR static void sum_rows_##DT##SUFFIX(double *restrict dst, const T *restrict src, \
                                           int64_t depth, int64_t len)                  \
    {                                                                                   \
        int64_t f = 0;                                                                  \
        for (; f + 8 <= depth; f += 8) {                                                \
            const T *restrict s = src + f * len;                                        \
            for (int64_t p = 0; p < len; p++) {                                         \
                int32_t a = (int32_t)s[p] + (int32_t)s[p + len];                        \
                a += (int32_t)s[p + 2 * len] + (int32_t)s[p + 3 * len];                 \
                a += (int32_t)s[p + 4 * len] + (int32_t)s[p + 5 * len];                 \
                a += (int32_t)s[p + 6 * len] + (int32_t)s[p + 7 * len];                 \
                dst[p] += (double)a;                                                    \
            }                                                                           \
        }                                                                               \
        for (; f < depth; f++) {                                                        \
            const T *restrict s = src + f * len;                                        \
            for (int64_t p = 0; p < len; p++)                                           \
                dst[p] += (double)s[p];                                                 \
        }                                                                               \
    }
#define SUM_KERNELS_SMALL(SUFFIX, ATTR)               \
    SUM_KERNEL_SMALL(TSR_U8, uint8_t, SUFFIX, ATTR)   \
    SUM_KERNEL_SMALL(TSR_U16, uint16_t, SUFFIX, ATTR) \
    SUM_KERNEL_SMALL(TSR_I8, int8_t, SUFFIX, ATTR)    \
    SUM_KERNEL_SMALL(TSR_I16, int16_t, SUFFIX, ATTR)  \
    SUM_KERNEL_SMALL(TSR_BOOL, uint8_t, SUFFIX, ATTR)
SUM_KERNELS_SMALL(, )
#if TSR__BUILTIN_HAVE_AVX2
SUM_KERNELS_SMALL(_avx2, TSR__BUILTIN_AVX2)
#endif

/* Real tile into a complex (re, im) float64 accumulator: only the real
 * parts change.  Reached only when a complex dataset is delivered as real
 * data (corrections); not a hot path. */
static void sum_rows_real_to_pairs(double *dst, const void *src, tsr_dtype_t dt, int64_t depth,
                                   int64_t len)
{
    for (int64_t f = 0; f < depth; f++)
        for (int64_t p = 0; p < len; p++)
            dst[2 * p] += tsr__load_f64(src, dt, (size_t)(f * len + p));
}

/* Accumulate a tile of type dt (depth × len elements) into dst, one double
 * per element.  Returns false for a type without a kernel. */
static bool sum_rows(double *dst, const void *src, tsr_dtype_t dt, int64_t depth, int64_t len)
{
#if TSR__BUILTIN_HAVE_AVX2
    if (tsr__builtin_isa() >= TSR__BUILTIN_ISA_AVX2) {
        switch (dt) {
#define SUM_CASE(DT, T) \
    case DT: sum_rows_##DT##_avx2(dst, (const T *)src, depth, len); return true;
            TSR__BUILTIN_REAL_TYPES(SUM_CASE)
#undef SUM_CASE
        case TSR_C64: sum_rows_TSR_F32_avx2(dst, (const float *)src, depth, 2 * len); return true;
        default: return false;
        }
    }
#endif
    switch (dt) {
#define SUM_CASE(DT, T) \
    case DT: sum_rows_##DT(dst, (const T *)src, depth, len); return true;
        TSR__BUILTIN_REAL_TYPES(SUM_CASE)
#undef SUM_CASE
    case TSR_C64:
        /* (re, im) float32 pairs summed into (re, im) float64 pairs: the
         * float32 kernel over twice as many elements. */
        sum_rows_TSR_F32(dst, (const float *)src, depth, 2 * len);
        return true;
    default: return false;
    }
}

/* Sparse tile: dst[indices[e]] += values[e] over all stored values. */
#define SUM_SPARSE(DT, T)                        \
    case DT: {                                   \
        const T *v = (const T *)sp->values;      \
        for (int64_t e = 0; e < nnz; e++)        \
            dst[sp->indices[e]] += (double)v[e]; \
        return true;                             \
    }

static bool sum_sparse(double *dst, const tsr_sparse_rows_t *sp, tsr_dtype_t dt, int64_t depth)
{
    const int64_t nnz = sp->indptr[depth];
    switch (dt) {
        TSR__BUILTIN_REAL_TYPES(SUM_SPARSE)
    default: return false;
    }
}
#undef SUM_SPARSE

/* ---- callbacks --------------------------------------------------------- */

enum { BUF_INTENSITY = 0, BUF_ACC = 1 };

static int sum_init(tsr_udf_init_t *init)
{
    tsr_dtype_t dt = init->meta->dataset_dtype;
    if (!tsr__dtype_valid(dt))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "sum: invalid dataset dtype %d", (int)dt);
    if (tsr__dtype_is_complex(dt)) {
        const int64_t two = 2;
        tsr__builtin_declare(init, "intensity", TSR_KIND_SIG, TSR_C64, TSR_BUF_RESULT_ONLY, 0,
                             NULL);
        tsr__builtin_declare(init, "intensity_acc", TSR_KIND_SIG, TSR_F64, TSR_BUF_PRIVATE, 1,
                             &two);
    } else {
        tsr__builtin_declare(init, "intensity", TSR_KIND_SIG, TSR_F64, 0, 0, NULL);
    }
    init->input_dtype = TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_TILE;
    init->accepts_sparse = !tsr__dtype_is_complex(dt);
    init->state = NULL;
    return 0;
}

static int sum_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    if (t->sparse) {
        if (c->n_bufs == 1 &&
            sum_sparse((double *)c->bufs[BUF_INTENSITY].data, t->sparse, t->dtype, t->depth))
            return 0;
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "sum: cannot add sparse %s tiles",
                             tsr_dtype_name(t->dtype));
    }
    if (c->n_bufs == 1) {
        /* Real result: one float64 per pixel of the sig slice. */
        if (!tsr__dtype_is_complex(t->dtype) && sum_rows((double *)c->bufs[BUF_INTENSITY].data,
                                                         t->data, t->dtype, t->depth, t->sig_len))
            return 0;
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "sum: cannot add %s tiles to a real sum",
                             tsr_dtype_name(t->dtype));
    }
    double *acc = (double *)c->bufs[BUF_ACC].data;
    if (t->dtype == TSR_C64) {
        sum_rows(acc, t->data, TSR_C64, t->depth, t->sig_len);
        return 0;
    }
    if (!tsr__dtype_valid(t->dtype))
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "sum: invalid tile dtype %d", (int)t->dtype);
    sum_rows_real_to_pairs(acc, t->data, t->dtype, t->depth, t->sig_len);
    return 0;
}

static int sum_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    /* The accumulator is the last buffer in both layouts. */
    int i = c->n_bufs - 1;
    tsr__builtin_add_f64(&c->bufs[i], &src[i]);
    return 0;
}

static int sum_finalize(const tsr_udf_call_t *c)
{
    if (c->n_bufs == 1)
        return 0;
    const double *acc = (const double *)c->bufs[BUF_ACC].data;
    float *out = (float *)c->bufs[BUF_INTENSITY].data;
    size_t n = 2 * (size_t)c->bufs[BUF_INTENSITY].rows;
    for (size_t i = 0; i < n; i++)
        out[i] = (float)acc[i];
    return 0;
}

const tsr_udf_def_t tsr__udf_sum = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "sum",
    .description = "Sum of all selected frames, pixel by pixel. Result `intensity` (sig shape): "
                   "float64 for real data (integer sums exact), complex64 for complex data.",
    .params = NULL,
    .n_params = 0,
    .init = sum_init,
    .process_tile = sum_process_tile,
    .merge = sum_merge,
    .finalize = sum_finalize,
};
