/*
 * fem.c — the `fem` UDF: fluctuation electron microscopy, the standard
 * deviation of the pixels of each frame within a ring (LiberTEM's FEMUDF):
 * intensity = np.std(frame[ring]), the population standard deviation
 * (ddof = 0), with the ring ri² < (x - cx)² + (y - cy)² <= ro² (LiberTEM's
 * circular masks: outer minus inner) less the pixels of the optional
 * `exclude` mask.  NaN when the ring holds no pixel.
 *
 * Init turns the ring into runs of consecutive pixels (two per row at
 * most, more where excluded pixels cut them).  The UDF works on whole
 * frames (TSR_METHOD_FRAME), so each result is computed at once and written
 * as float32 into the NAV buffer `intensity`:
 *  - integers of at most 16 bits and bool: S = Σx and Q = Σx² exactly in
 *    64-bit integers (vectorised per run), then var = (N·Q - S²) / N² with
 *    the numerator exact in 128 bits; the result does not depend on
 *    anything but the data.
 *  - other types: numpy's two passes in float64, mean = Σx / N, then
 *    var = Σ(x - mean)² / N.
 */
#include "udf/builtin/radial.h"

typedef struct fem_run {
    int32_t start, len;
} fem_run_t;

typedef struct fem_state {
    tsr_ctx_t *ctx;
    fem_run_t *runs;
    int64_t n_runs;
    int64_t n; /* pixels in the ring */
} fem_state_t;

static const tsr_param_def_t fem_params[] = {
    {"cx", "float", "", "Ring centre x (column) in pixels; default: width / 2.", false},
    {"cy", "float", "", "Ring centre y (row) in pixels; default: height / 2.", false},
    {"ri", "float", NULL, "Inner radius: pixels with d^2 > ri^2 are in the ring.", false},
    {"ro", "float", NULL, "Outer radius: pixels with d^2 <= ro^2 are in the ring.", false},
    {"exclude", "path", "",
     "An .npy file of the signal's shape: nonzero pixels are left out of the ring.", false},
};

/* ---- kernels ----------------------------------------------------------- */

/* Exact S and Q over the runs, for integers of at most 16 bits. */
#define FEM_EXACT(NAME, T)                                                               \
    static double NAME(const void *xv, const fem_run_t *runs, int64_t n_runs, int64_t n) \
    {                                                                                    \
        const T *x = (const T *)xv;                                                      \
        int64_t S = 0;                                                                   \
        uint64_t Q = 0;                                                                  \
        for (int64_t r = 0; r < n_runs; r++) {                                           \
            const T *restrict s = x + runs[r].start;                                     \
            const int64_t len = runs[r].len;                                             \
            int64_t a = 0;                                                               \
            uint64_t q = 0;                                                              \
            for (int64_t p = 0; p < len; p++) {                                          \
                int64_t v = (int64_t)s[p];                                               \
                a += v;                                                                  \
                q += (uint64_t)(v * v);                                                  \
            }                                                                            \
            S += a;                                                                      \
            Q += q;                                                                      \
        }                                                                                \
        /* N·Q - S² >= 0 (Cauchy-Schwarz), exact: N < 2^31, Q < 2^63 */                \
        __int128 num = (__int128)n * (__int128)Q - (__int128)S * (__int128)S;            \
        long double var = (long double)num / ((long double)n * (long double)n);          \
        return (double)sqrtl(var);                                                       \
    }
FEM_EXACT(fem_exact_u8, uint8_t)
FEM_EXACT(fem_exact_u16, uint16_t)
FEM_EXACT(fem_exact_i8, int8_t)
FEM_EXACT(fem_exact_i16, int16_t)

/* numpy's two passes in float64. */
#define FEM_FLOAT(NAME, T)                                                               \
    static double NAME(const void *xv, const fem_run_t *runs, int64_t n_runs, int64_t n) \
    {                                                                                    \
        const T *x = (const T *)xv;                                                      \
        double S = 0;                                                                    \
        for (int64_t r = 0; r < n_runs; r++) {                                           \
            const T *restrict s = x + runs[r].start;                                     \
            double a = 0;                                                                \
            for (int64_t p = 0; p < runs[r].len; p++)                                    \
                a += (double)s[p];                                                       \
            S += a;                                                                      \
        }                                                                                \
        const double mean = S / (double)n;                                               \
        double M2 = 0;                                                                   \
        for (int64_t r = 0; r < n_runs; r++) {                                           \
            const T *restrict s = x + runs[r].start;                                     \
            double a = 0;                                                                \
            for (int64_t p = 0; p < runs[r].len; p++) {                                  \
                double d = (double)s[p] - mean;                                          \
                a += d * d;                                                              \
            }                                                                            \
            M2 += a;                                                                     \
        }                                                                                \
        return sqrt(M2 / (double)n);                                                     \
    }
FEM_FLOAT(fem_float_u32, uint32_t)
FEM_FLOAT(fem_float_u64, uint64_t)
FEM_FLOAT(fem_float_i32, int32_t)
FEM_FLOAT(fem_float_i64, int64_t)
FEM_FLOAT(fem_float_f32, float)
FEM_FLOAT(fem_float_f64, double)

typedef double (*fem_kernel_t)(const void *, const fem_run_t *, int64_t, int64_t);

static fem_kernel_t fem_kernel(tsr_dtype_t dt)
{
    switch (dt) {
    case TSR_U8:
    case TSR_BOOL: return fem_exact_u8;
    case TSR_U16: return fem_exact_u16;
    case TSR_I8: return fem_exact_i8;
    case TSR_I16: return fem_exact_i16;
    case TSR_U32: return fem_float_u32;
    case TSR_U64: return fem_float_u64;
    case TSR_I32: return fem_float_i32;
    case TSR_I64: return fem_float_i64;
    case TSR_F32: return fem_float_f32;
    case TSR_F64: return fem_float_f64;
    default: return NULL;
    }
}

/* ---- callbacks --------------------------------------------------------- */

static void fem_destroy(void *user_data, void *state)
{
    (void)user_data;
    fem_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->runs);
    tsr_free(st->ctx, st);
}

static int fem_init(tsr_udf_init_t *init)
{
    const char *U = "fem";
    int64_t h, w;
    double cx, cy, ri, ro;
    uint8_t *excl = NULL;
    int rc;
    if ((rc = tsr__radial_sig2d(init, U, &h, &w)) < 0)
        return rc;
    if (!fem_kernel(init->meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "%s: %s data are not supported", U,
                                      tsr_dtype_name(init->meta->dataset_dtype));
    if ((rc = tsr__radial_center(init, U, h, w, &cx, &cy)) < 0 ||
        (rc = tsr__radial_f64(init, U, "ri", 0, &ri, NULL)) < 0 ||
        (rc = tsr__radial_f64(init, U, "ro", 0, &ro, NULL)) < 0)
        return rc;
    if (!(ri >= 0) || !(ro >= ri))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "%s: need 0 <= ri <= ro, got ri=%g, ro=%g",
                                      U, ri, ro);
    if ((rc = tsr__radial_exclude(init, U, h, w, &excl)) < 0)
        return rc;

    fem_state_t *st = tsr_alloc(init->ctx, sizeof *st);
    /* at most one run per two pixels of a row, plus one */
    size_t cap = (size_t)(h * (w / 2 + 1));
    fem_run_t *runs = tsr_alloc(init->ctx, cap * sizeof *runs);
    if (!st || !runs) {
        tsr_free(init->ctx, st);
        tsr_free(init->ctx, runs);
        tsr_free(init->ctx, excl);
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "%s: out of memory", U);
    }
    memset(st, 0, sizeof *st);
    st->ctx = init->ctx;
    st->runs = runs;
    for (int64_t y = 0; y < h; y++) {
        double dy = (double)y - cy;
        bool open = false;
        for (int64_t x = 0; x < w; x++) {
            double dx = (double)x - cx, d2 = dx * dx + dy * dy;
            int64_t p = y * w + x;
            bool in = d2 > ri * ri && d2 <= ro * ro && !(excl && excl[p]);
            if (in && open) {
                runs[st->n_runs - 1].len++;
            } else if (in) {
                runs[st->n_runs++] = (fem_run_t){(int32_t)p, 1};
            }
            open = in;
            st->n += in;
        }
    }
    tsr_free(init->ctx, excl);
    tsr__builtin_declare(init, "intensity", TSR_KIND_NAV, TSR_F32, 0, 0, NULL);
    init->input_dtype = TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_FRAME;
    init->state = st;
    return 0;
}

static int fem_process_frame(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const fem_state_t *st = c->state;
    fem_kernel_t k = fem_kernel(t->dtype);
    if (!k)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "fem: %s frames are not supported",
                             tsr_dtype_name(t->dtype));
    float *out = c->bufs[0].data;
    out[0] = st->n ? (float)k(t->data, st->runs, st->n_runs, st->n) : NAN;
    return 0;
}

const tsr_udf_def_t tsr__udf_fem = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "fem",
    .description = "Fluctuation EM: standard deviation (ddof=0) of each frame's pixels in the "
                   "ring ri^2 < d^2 <= ro^2 around (cx, cy). Result `intensity` (nav shape), "
                   "float32.",
    .params = fem_params,
    .n_params = sizeof fem_params / sizeof fem_params[0],
    .init = fem_init,
    .destroy = fem_destroy,
    .process_frame = fem_process_frame,
};
