/*
 * logsum.c — the `logsum` UDF: the sum of log-scaled frames (LiberTEM's
 * logsum): logsum[p] = Σ_frames log(x[p] - min(frame) + 1), a SIG float64
 * buffer.  Compared with the log of the sum, it brings out weak features
 * that many frames share next to strong ones that few frames have.
 *
 * Each frame is shifted by its own minimum, so the UDF needs whole frames
 * (TSR_METHOD_FRAME).  The arithmetic is float64 throughout: LiberTEM
 * computes x - min + 1 in the data's own type, where 65535 - 0 + 1 wraps
 * to 0 for uint16 and gives -inf; Tessera does not wrap.  A NaN anywhere in
 * a float frame makes its minimum NaN, and so every pixel of its log (as
 * numpy's np.min would).
 *
 * For integers of at most 16 bits, x - min is an integer k in [0, 2^16),
 * and log(k + 1) comes from a table made in init (at most 512 KiB), which
 * is several times faster than calling log() per pixel.
 */
#include "udf/builtin/builtin.h"

#include <math.h>

typedef struct logsum_state {
    tsr_ctx_t *ctx;
    double *table; /* log(k + 1) for the k an integer type of <= 16 bits allows */
} logsum_state_t;

/* ---- kernels ----------------------------------------------------------- */

/* Integers of at most 16 bits: through the table. */
#define LOGSUM_TABLE(NAME, T)                                                              \
    static void NAME(double *restrict out, const void *xv, int64_t n, const double *table) \
    {                                                                                      \
        const T *restrict x = (const T *)xv;                                               \
        T m = x[0];                                                                        \
        for (int64_t p = 1; p < n; p++)                                                    \
            m = x[p] < m ? x[p] : m;                                                       \
        for (int64_t p = 0; p < n; p++)                                                    \
            out[p] += table[(int32_t)x[p] - (int32_t)m];                                   \
    }
LOGSUM_TABLE(logsum_u8, uint8_t)
LOGSUM_TABLE(logsum_u16, uint16_t)
LOGSUM_TABLE(logsum_i8, int8_t)
LOGSUM_TABLE(logsum_i16, int16_t)

/* Other types: log() per pixel, in float64. */
#define LOGSUM_DIRECT(NAME, T, ISNAN)                                                      \
    static void NAME(double *restrict out, const void *xv, int64_t n, const double *table) \
    {                                                                                      \
        (void)table;                                                                       \
        const T *restrict x = (const T *)xv;                                               \
        double m = (double)x[0];                                                           \
        for (int64_t p = 1; p < n && !ISNAN(m); p++) {                                     \
            double v = (double)x[p];                                                       \
            m = (v < m || ISNAN(v)) ? v : m;                                               \
        }                                                                                  \
        for (int64_t p = 0; p < n; p++)                                                    \
            out[p] += log((double)x[p] - m + 1.0);                                         \
    }
#define LOGSUM_NEVER_NAN(v) ((void)(v), 0)
LOGSUM_DIRECT(logsum_u32, uint32_t, LOGSUM_NEVER_NAN)
LOGSUM_DIRECT(logsum_u64, uint64_t, LOGSUM_NEVER_NAN)
LOGSUM_DIRECT(logsum_i32, int32_t, LOGSUM_NEVER_NAN)
LOGSUM_DIRECT(logsum_i64, int64_t, LOGSUM_NEVER_NAN)
LOGSUM_DIRECT(logsum_f32, float, isnan)
LOGSUM_DIRECT(logsum_f64, double, isnan)

typedef void (*logsum_kernel_t)(double *, const void *, int64_t, const double *);

static logsum_kernel_t logsum_kernel(tsr_dtype_t dt, int *table_bits)
{
    int bits = 0;
    logsum_kernel_t k = NULL;
    switch (dt) {
    case TSR_U8:
    case TSR_BOOL: k = logsum_u8, bits = 8; break;
    case TSR_I8: k = logsum_i8, bits = 8; break;
    case TSR_U16: k = logsum_u16, bits = 16; break;
    case TSR_I16: k = logsum_i16, bits = 16; break;
    case TSR_U32: k = logsum_u32; break;
    case TSR_U64: k = logsum_u64; break;
    case TSR_I32: k = logsum_i32; break;
    case TSR_I64: k = logsum_i64; break;
    case TSR_F32: k = logsum_f32; break;
    case TSR_F64: k = logsum_f64; break;
    default: break;
    }
    if (table_bits)
        *table_bits = bits;
    return k;
}

/* ---- callbacks --------------------------------------------------------- */

static void logsum_destroy(void *user_data, void *state)
{
    (void)user_data;
    logsum_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->table);
    tsr_free(st->ctx, st);
}

static int logsum_init(tsr_udf_init_t *init)
{
    int bits;
    if (!logsum_kernel(init->meta->input_dtype, &bits))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "logsum: %s data are not supported",
                                      tsr_dtype_name(init->meta->input_dtype));
    logsum_state_t *st = tsr_alloc(init->ctx, sizeof *st);
    if (!st)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "logsum: out of memory");
    st->ctx = init->ctx;
    st->table = NULL;
    if (bits) {
        const int64_t n = (int64_t)1 << bits;
        st->table = tsr_alloc(init->ctx, (size_t)n * sizeof *st->table);
        if (!st->table) {
            logsum_destroy(NULL, st);
            return tsr__builtin_init_fail(init, TSR_ENOMEM, "logsum: out of memory");
        }
        for (int64_t k = 0; k < n; k++)
            st->table[k] = log((double)k + 1.0);
    }
    tsr__builtin_declare(init, "logsum", TSR_KIND_SIG, TSR_F64, 0, 0, NULL);
    init->input_dtype = TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_FRAME;
    init->state = st;
    return 0;
}

static int logsum_process_frame(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const logsum_state_t *st = c->state;
    int bits;
    logsum_kernel_t k = logsum_kernel(t->dtype, &bits);
    if (!k || (bits && !st->table))
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "logsum: unexpected %s frames",
                             tsr_dtype_name(t->dtype));
    if (t->sig_len > 0)
        k(c->bufs[0].data, t->data, t->sig_len, st->table);
    return 0;
}

static int logsum_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    tsr__builtin_add_f64(&c->bufs[0], &src[0]);
    return 0;
}

const tsr_udf_def_t tsr__udf_logsum = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "logsum",
    .description = "Sum of log-scaled frames, log(x - min(frame) + 1) in float64 (LiberTEM's "
                   "logsum). Result `logsum` (sig shape), float64.",
    .params = NULL,
    .n_params = 0,
    .init = logsum_init,
    .destroy = logsum_destroy,
    .process_frame = logsum_process_frame,
    .merge = logsum_merge,
};
