/*
 * minmax.c — the `max` and `min` UDFs: the largest and the smallest value
 * of each pixel over all selected frames (numpy's max / min over the nav
 * axes), a SIG buffer `intensity` in the data's own type (float32 when
 * corrections apply to integer data), so the values are exact.  Both definitions live here because
 * they differ only in the comparison.
 *
 * NaN propagates, as in numpy: once a pixel has seen a NaN it stays NaN.
 *
 * Buffers start zeroed, which is no identity for max or min.  task_start
 * therefore fills the task's partial buffer with the identity (the type's
 * lowest value for max, its highest for min; ∓inf for floats) before the
 * first tile, and a private SINGLE uint8 `seen` marks a buffer that holds
 * data: merge copies a task's partial into a run buffer not yet seen, and
 * combines element-wise afterwards.  With no frame selected the result stays
 * zero.
 *
 * Tiles arrive in the dataset's type (TSR_DTYPE_NATIVE); the kernels are
 * branch-free and vectorise.  Complex data have no order and are rejected.
 */
#include "udf/builtin/builtin.h"

#include <float.h>
#include <math.h>

enum { BUF_INTENSITY = 0, BUF_SEEN = 1 };

/* ---- kernels ----------------------------------------------------------- */

/* dst[p] = op(dst[p], src[f][p]) over depth frames of n pixels. */
#define MM_INT(NAME, T, CMP)                                             \
    static void NAME(void *dv, const void *sv, int64_t depth, int64_t n) \
    {                                                                    \
        T *restrict d = (T *)dv;                                         \
        for (int64_t f = 0; f < depth; f++) {                            \
            const T *restrict s = (const T *)sv + f * n;                 \
            for (int64_t p = 0; p < n; p++)                              \
                d[p] = s[p] CMP d[p] ? s[p] : d[p];                      \
        }                                                                \
    }
/* Floats: a NaN in the data wins, and a NaN in dst stays (x CMP NaN is
 * false). */
#define MM_FLOAT(NAME, T, CMP)                                           \
    static void NAME(void *dv, const void *sv, int64_t depth, int64_t n) \
    {                                                                    \
        T *restrict d = (T *)dv;                                         \
        for (int64_t f = 0; f < depth; f++) {                            \
            const T *restrict s = (const T *)sv + f * n;                 \
            for (int64_t p = 0; p < n; p++)                              \
                d[p] = (s[p] CMP d[p] || s[p] != s[p]) ? s[p] : d[p];    \
        }                                                                \
    }
#define MM_KERNELS(OP, CMP)         \
    MM_INT(OP##_u8, uint8_t, CMP)   \
    MM_INT(OP##_u16, uint16_t, CMP) \
    MM_INT(OP##_u32, uint32_t, CMP) \
    MM_INT(OP##_u64, uint64_t, CMP) \
    MM_INT(OP##_i8, int8_t, CMP)    \
    MM_INT(OP##_i16, int16_t, CMP)  \
    MM_INT(OP##_i32, int32_t, CMP)  \
    MM_INT(OP##_i64, int64_t, CMP)  \
    MM_FLOAT(OP##_f32, float, CMP)  \
    MM_FLOAT(OP##_f64, double, CMP)
MM_KERNELS(mmax, >)
MM_KERNELS(mmin, <)

typedef void (*mm_kernel_t)(void *, const void *, int64_t, int64_t);

/* The kernel of max (is_max) or min for dt, and the identity it starts
 * from, written into one element at *identity (may be NULL). */
static mm_kernel_t mm_kernel(bool is_max, tsr_dtype_t dt, void *identity)
{
#define MM_CASE(DT, T, SUF, LO, HI)                \
    case DT:                                       \
        if (identity)                              \
            *(T *)identity = is_max ? (LO) : (HI); \
        return is_max ? mmax_##SUF : mmin_##SUF;
    switch (dt) {
        MM_CASE(TSR_U8, uint8_t, u8, 0, UINT8_MAX)
        MM_CASE(TSR_BOOL, uint8_t, u8, 0, 1)
        MM_CASE(TSR_U16, uint16_t, u16, 0, UINT16_MAX)
        MM_CASE(TSR_U32, uint32_t, u32, 0, UINT32_MAX)
        MM_CASE(TSR_U64, uint64_t, u64, 0, UINT64_MAX)
        MM_CASE(TSR_I8, int8_t, i8, INT8_MIN, INT8_MAX)
        MM_CASE(TSR_I16, int16_t, i16, INT16_MIN, INT16_MAX)
        MM_CASE(TSR_I32, int32_t, i32, INT32_MIN, INT32_MAX)
        MM_CASE(TSR_I64, int64_t, i64, INT64_MIN, INT64_MAX)
        MM_CASE(TSR_F32, float, f32, -INFINITY, INFINITY)
        MM_CASE(TSR_F64, double, f64, -INFINITY, INFINITY)
    default: return NULL;
    }
#undef MM_CASE
}

/* ---- callbacks --------------------------------------------------------- */

static int mm_init_common(tsr_udf_init_t *init, const char *name, bool mx)
{
    tsr_dtype_t dt = init->meta->input_dtype; /* what NATIVE delivers */
    if (!mm_kernel(mx, dt, NULL))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "%s: %s data are not supported", name,
                                      tsr_dtype_name(dt));
    const int64_t one = 1;
    tsr__builtin_declare(init, "intensity", TSR_KIND_SIG, dt, 0, 0, NULL);
    tsr__builtin_declare(init, "seen", TSR_KIND_SINGLE, TSR_U8, TSR_BUF_PRIVATE, 1, &one);
    init->input_dtype = TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_TILE;
    init->state = NULL;
    return 0;
}

static int max_init(tsr_udf_init_t *init)
{
    return mm_init_common(init, "max", true);
}

static int min_init(tsr_udf_init_t *init)
{
    return mm_init_common(init, "min", false);
}

/* Fill the task's partial buffer with the identity. */
static int mm_task_start_common(const tsr_udf_call_t *c, bool mx)
{
    const tsr_view_t *v = &c->bufs[BUF_INTENSITY];
    unsigned char id[8];
    if (!mm_kernel(mx, v->dtype, id))
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "unsupported dtype %s", tsr_dtype_name(v->dtype));
    size_t es = tsr_dtype_size(v->dtype), n = tsr__builtin_view_elems(v);
    unsigned char *d = v->data;
    for (size_t i = 0; i < n; i++)
        memcpy(d + i * es, id, es);
    ((uint8_t *)c->bufs[BUF_SEEN].data)[0] = 1;
    return 0;
}

static int max_task_start(const tsr_udf_call_t *c, void **task_state)
{
    *task_state = NULL;
    return mm_task_start_common(c, true);
}

static int min_task_start(const tsr_udf_call_t *c, void **task_state)
{
    *task_state = NULL;
    return mm_task_start_common(c, false);
}

static int mm_process_common(const tsr_udf_call_t *c, const tsr_tile_t *t, bool mx)
{
    const tsr_view_t *v = &c->bufs[BUF_INTENSITY];
    mm_kernel_t k = mm_kernel(mx, t->dtype, NULL);
    if (!k || t->dtype != v->dtype)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "%s: unexpected %s tiles", mx ? "max" : "min",
                             tsr_dtype_name(t->dtype));
    k(v->data, t->data, t->depth, t->sig_len);
    return 0;
}

static int max_process(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    return mm_process_common(c, t, true);
}

static int min_process(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    return mm_process_common(c, t, false);
}

static int mm_merge_common(const tsr_udf_call_t *c, const tsr_view_t *src, bool mx)
{
    const tsr_view_t *d = &c->bufs[BUF_INTENSITY];
    uint8_t *seen = c->bufs[BUF_SEEN].data;
    if (!((const uint8_t *)src[BUF_SEEN].data)[0])
        return 0;
    if (!seen[0]) {
        memcpy(d->data, src[BUF_INTENSITY].data,
               tsr__builtin_view_elems(d) * tsr_dtype_size(d->dtype));
        seen[0] = 1;
        return 0;
    }
    /* the partial is one "frame" of the whole signal */
    mm_kernel(mx, d->dtype, NULL)(d->data, src[BUF_INTENSITY].data, 1,
                                  (int64_t)tsr__builtin_view_elems(d));
    return 0;
}

static int max_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    return mm_merge_common(c, src, true);
}

static int min_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    return mm_merge_common(c, src, false);
}

const tsr_udf_def_t tsr__udf_max = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "max",
    .description =
        "Largest value of each pixel over all selected frames (NaN propagates). "
        "Result `intensity` (sig shape) in the dataset's dtype (float32 with corrections).",
    .init = max_init,
    .task_start = max_task_start,
    .process_tile = max_process,
    .merge = max_merge,
};

const tsr_udf_def_t tsr__udf_min = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "min",
    .description =
        "Smallest value of each pixel over all selected frames (NaN propagates). "
        "Result `intensity` (sig shape) in the dataset's dtype (float32 with corrections).",
    .init = min_init,
    .task_start = min_task_start,
    .process_tile = min_process,
    .merge = min_merge,
};
