/*
 * com.c — the `com` UDF: centre of mass (CoM) and differential phase
 * contrast (DPC), LiberTEM's CoMUDF.
 *
 * For each frame I and the pixels p = (y, x) of a disk (or annulus) around
 * (cy, cx), the private NAV buffer raw_mask_result accumulates
 * (Σ I, Σ y·I, Σ x·I).  Everything else is derived in finalize:
 *   raw_com     (Σ y·I / Σ I, Σ x·I / Σ I); (cy, cx) where Σ I = 0
 *   raw_shifts  raw_com − (cy, cx)
 *   field       R(scan_rotation)·F(flip_y)·raw_shifts (com.h), minus the
 *               regression (none, the mean, or the mean and a plane)
 *   field_y, field_x, magnitude |field|, divergence, curl (com.h)
 *   icom        the Fourier integral of the field (com.h)
 *   regression  (3, 2): what was subtracted, LiberTEM's layout
 *
 * The kernel: at init the mask becomes per-row runs of consecutive pixels
 * (any shape: the predicate is evaluated once per pixel).  A tile is whole
 * rows, so for each frame and each run of its rows one pass gives
 * s = Σ I and k = Σ j·I (j the offset in the run), and the row adds
 * (s, y·s, x0·s + k).  8/16-bit integers and bool are summed exactly in
 * 32-bit integers over blocks of 256 pixels (Σ j·I < 2^32), other types in
 * float64 with four lanes.  Integer sums are exact, so the result does not
 * depend on tiling, partitioning or threads.  Baseline and AVX2 kernels
 * (builtin.h).
 */
#include "udf/builtin/builtin.h"
#include "udf/builtin/com.h"

#include <math.h>

enum {
    B_RAW = 0, /* private (Σ I, Σ y·I, Σ x·I), float64 */
    B_COM,
    B_SHIFTS,
    B_FIELD,
    B_FIELD_Y,
    B_FIELD_X,
    B_MAGNITUDE,
    B_DIVERGENCE,
    B_CURL,
    B_ICOM,
    B_REGRESSION,
    B_COUNT
};

typedef void (*com_kernel_t)(const void *p, int64_t n, double *s, double *k);

typedef struct com_state {
    tsr_ctx_t *ctx;
    double cy, cx, r, ri, rot;
    bool flip;
    int regression;
    int64_t h, w;
    int64_t *row_off;       /* h + 1: runs of row y are [row_off[y], row_off[y+1]) */
    int64_t *run_x, *run_n; /* start column and length of each run */
    com_kernel_t kern;
    tsr_dtype_t in;
} com_state_t;

static const tsr_param_def_t com_params[] = {
    {"cy", "float", "",
     "Row of the disk centre and of the reference point of the shifts "
     "(default: sig height // 2).",
     false},
    {"cx", "float", "", "Column of the disk centre and reference point (default: sig width // 2).",
     false},
    {"r", "float", "", "Outer radius of the disk in pixels (default: infinite, the whole frame).",
     false},
    {"ri", "float", "0", "Inner radius: with ri > 0 only the annulus ri < d <= r is used.", false},
    {"scan_rotation", "float", "0",
     "Scan rotation in degrees: the shifts are rotated by this angle (clockwise for a positive "
     "value, LiberTEM's convention) after the flip.",
     false},
    {"flip_y", "bool", "false", "Flip the y component of the shifts before rotating.", false},
    {"regression", "int", "-1",
     "Flatten the field: -1 none, 0 subtract the mean, 1 subtract the mean and a linear plane "
     "over the scan (least squares over the valid positions). The values are LiberTEM's "
     "(RegressionOptions NO_REGRESSION, SUBTRACT_MEAN, SUBTRACT_LINEAR).",
     false},
};
#define N_PARAMS (sizeof com_params / sizeof com_params[0])

/* ---- kernels ----------------------------------------------------------- */

/* 8/16-bit integers: blocks of 256 in the 32-bit type A (Σ I < 2^24,
 * Σ j·I <= 32640·65535 < 2^32 unsigned, 32640·32768 < 2^31 signed). */
#define COM_SMALL_KERNEL(NAME, T, A, ATTR)                                 \
    ATTR static void NAME(const void *pv, int64_t n, double *s, double *k) \
    {                                                                      \
        const T *restrict p = pv;                                          \
        int64_t S = 0, K = 0;                                              \
        for (int64_t b = 0; b < n; b += 256) {                             \
            const int m = n - b < 256 ? (int)(n - b) : 256;                \
            A s32 = 0, k32 = 0;                                            \
            for (int j = 0; j < m; j++) {                                  \
                s32 += (A)p[b + j];                                        \
                k32 += (A)j * (A)p[b + j];                                 \
            }                                                              \
            S += (int64_t)s32;                                             \
            K += (int64_t)k32 + b * (int64_t)s32;                          \
        }                                                                  \
        *s = (double)S;                                                    \
        *k = (double)K;                                                    \
    }
/* Other types: float64, four lanes. */
#define COM_WIDE_KERNEL(NAME, T, ATTR)                                     \
    ATTR static void NAME(const void *pv, int64_t n, double *s, double *k) \
    {                                                                      \
        const T *restrict p = pv;                                          \
        double ls[4] = {0, 0, 0, 0}, lk[4] = {0, 0, 0, 0};                 \
        int64_t j = 0;                                                     \
        for (; j + 4 <= n; j += 4)                                         \
            for (int l = 0; l < 4; l++) {                                  \
                const double v = (double)p[j + l];                         \
                ls[l] += v;                                                \
                lk[l] += (double)(j + l) * v;                              \
            }                                                              \
        for (int l = 0; j < n; j++, l++) {                                 \
            const double v = (double)p[j];                                 \
            ls[l] += v;                                                    \
            lk[l] += (double)j * v;                                        \
        }                                                                  \
        *s = (ls[0] + ls[2]) + (ls[1] + ls[3]);                            \
        *k = (lk[0] + lk[2]) + (lk[1] + lk[3]);                            \
    }
#define COM_KERNELS(SUFFIX, ATTR)                               \
    COM_SMALL_KERNEL(com_u8##SUFFIX, uint8_t, uint32_t, ATTR)   \
    COM_SMALL_KERNEL(com_u16##SUFFIX, uint16_t, uint32_t, ATTR) \
    COM_SMALL_KERNEL(com_i8##SUFFIX, int8_t, int32_t, ATTR)     \
    COM_SMALL_KERNEL(com_i16##SUFFIX, int16_t, int32_t, ATTR)   \
    COM_WIDE_KERNEL(com_u32##SUFFIX, uint32_t, ATTR)            \
    COM_WIDE_KERNEL(com_u64##SUFFIX, uint64_t, ATTR)            \
    COM_WIDE_KERNEL(com_i32##SUFFIX, int32_t, ATTR)             \
    COM_WIDE_KERNEL(com_i64##SUFFIX, int64_t, ATTR)             \
    COM_WIDE_KERNEL(com_f32##SUFFIX, float, ATTR)               \
    COM_WIDE_KERNEL(com_f64##SUFFIX, double, ATTR)              \
    static com_kernel_t com_kernel##SUFFIX(tsr_dtype_t dt)      \
    {                                                           \
        switch (dt) {                                           \
        case TSR_U8:                                            \
        case TSR_BOOL: return com_u8##SUFFIX;                   \
        case TSR_U16: return com_u16##SUFFIX;                   \
        case TSR_I8: return com_i8##SUFFIX;                     \
        case TSR_I16: return com_i16##SUFFIX;                   \
        case TSR_U32: return com_u32##SUFFIX;                   \
        case TSR_U64: return com_u64##SUFFIX;                   \
        case TSR_I32: return com_i32##SUFFIX;                   \
        case TSR_I64: return com_i64##SUFFIX;                   \
        case TSR_F32: return com_f32##SUFFIX;                   \
        case TSR_F64: return com_f64##SUFFIX;                   \
        default: return NULL;                                   \
        }                                                       \
    }
COM_KERNELS(, )
#if TSR__BUILTIN_HAVE_AVX2
COM_KERNELS(_avx2, TSR__BUILTIN_AVX2)
#endif

/* ---- init -------------------------------------------------------------- */

static void com_destroy(void *user_data, void *state)
{
    com_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->row_off);
    tsr_free(st->ctx, st->run_x);
    tsr_free(st->ctx, st->run_n);
    tsr_free(st->ctx, st);
}

static int get_f64(tsr_udf_init_t *init, const char *key, double dflt, double *out)
{
    const char *v = tsr__params_value(init->params, com_params, N_PARAMS, key);
    if (!v || !*v) {
        *out = dflt;
        return 0;
    }
    if (!strcasecmp(v, "inf") && !strcmp(key, "r")) {
        *out = INFINITY;
        return 0;
    }
    char err[200], what[64];
    snprintf(what, sizeof what, "com: %s", key);
    int rc = tsr__parse_f64(v, out, err, sizeof err, what);
    return rc < 0 ? tsr__builtin_init_fail(init, rc, "%s", err) : 0;
}

/* The mask predicate (LiberTEM's disk and ring). */
static bool inside(const com_state_t *st, int64_t y, int64_t x)
{
    if (isinf(st->r))
        return true;
    const double dy = (double)y - st->cy, dx = (double)x - st->cx;
    const double d2 = dx * dx + dy * dy;
    return d2 <= st->r * st->r && (st->ri == 0 || d2 > st->ri * st->ri);
}

static int build_runs(tsr_udf_init_t *init, com_state_t *st)
{
    tsr_ctx_t *ctx = init->ctx;
    int64_t nruns = 0;
    for (int pass = 0; pass < 2; pass++) {
        int64_t k = 0;
        for (int64_t y = 0; y < st->h; y++) {
            if (pass)
                st->row_off[y] = k;
            for (int64_t x = 0; x < st->w;) {
                if (!inside(st, y, x)) {
                    x++;
                    continue;
                }
                int64_t x0 = x;
                while (x < st->w && inside(st, y, x))
                    x++;
                if (pass) {
                    st->run_x[k] = x0;
                    st->run_n[k] = x - x0;
                }
                k++;
            }
        }
        if (!pass) {
            nruns = k;
            if (nruns == 0)
                return tsr__builtin_init_fail(
                    init, TSR_EINVAL,
                    "com: the mask (cy=%g, cx=%g, r=%g, ri=%g) covers no pixel of the %lld x "
                    "%lld frame",
                    st->cy, st->cx, st->r, st->ri, (long long)st->h, (long long)st->w);
            st->row_off = tsr_alloc(ctx, (size_t)(st->h + 1) * sizeof *st->row_off);
            st->run_x = tsr_alloc(ctx, (size_t)nruns * sizeof *st->run_x);
            st->run_n = tsr_alloc(ctx, (size_t)nruns * sizeof *st->run_n);
            if (!st->row_off || !st->run_x || !st->run_n)
                return tsr__builtin_init_fail(init, TSR_ENOMEM, "com: out of memory");
        } else {
            st->row_off[st->h] = k;
        }
    }
    return 0;
}

static int com_init(tsr_udf_init_t *init)
{
    const tsr_udf_meta_t *meta = init->meta;
    char sh[128];
    if (!tsr__dtype_valid(meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "com: invalid dataset dtype %d",
                                      (int)meta->dataset_dtype);
    if (tsr__dtype_is_complex(meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "com: complex data (%s) are not supported",
                                      tsr_dtype_name(meta->dataset_dtype));
    if (meta->sig_shape.ndim != 2)
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "com: needs a 2-D signal, the dataset's signal has shape %s",
                                      tsr__shape_str(&meta->sig_shape, sh, sizeof sh));
    if (meta->nav_shape.ndim != 2)
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "com: needs a 2-D scan, the dataset's nav shape is %s "
                                      "(reshape it with the dataset parameter nav_shape=ny,nx)",
                                      tsr__shape_str(&meta->nav_shape, sh, sizeof sh));
    com_state_t *st = tsr_alloc(init->ctx, sizeof *st);
    if (!st)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "com: out of memory");
    memset(st, 0, sizeof *st);
    st->ctx = init->ctx;
    st->h = meta->sig_shape.dims[0];
    st->w = meta->sig_shape.dims[1];
    int rc;
    double reg = -1;
    if ((rc = get_f64(init, "cy", (double)(st->h / 2), &st->cy)) < 0 ||
        (rc = get_f64(init, "cx", (double)(st->w / 2), &st->cx)) < 0 ||
        (rc = get_f64(init, "r", INFINITY, &st->r)) < 0 ||
        (rc = get_f64(init, "ri", 0, &st->ri)) < 0 ||
        (rc = get_f64(init, "scan_rotation", 0, &st->rot)) < 0 ||
        (rc = get_f64(init, "regression", -1, &reg)) < 0)
        goto fail;
    const char *fv = tsr__params_value(init->params, com_params, N_PARAMS, "flip_y");
    char err[200];
    if ((rc = tsr__parse_bool(fv, &st->flip, err, sizeof err, "com: flip_y")) < 0) {
        rc = tsr__builtin_init_fail(init, rc, "%s", err);
        goto fail;
    }
    if (reg != -1 && reg != 0 && reg != 1) {
        rc = tsr__builtin_init_fail(init, TSR_EINVAL,
                                    "com: regression: expected -1 (none), 0 (mean) or 1 (mean "
                                    "and plane), got %g",
                                    reg);
        goto fail;
    }
    st->regression = (int)reg;
    if (!(st->r > 0) || st->ri < 0 || !(st->ri < st->r)) {
        rc = tsr__builtin_init_fail(init, TSR_EINVAL,
                                    "com: radii must satisfy 0 <= ri < r (ri = %g, r = %g)", st->ri,
                                    st->r);
        goto fail;
    }
    if ((rc = build_runs(init, st)) < 0)
        goto fail;
    st->in = meta->input_dtype;
#if TSR__BUILTIN_HAVE_AVX2
    st->kern =
        tsr__builtin_isa() >= TSR__BUILTIN_ISA_AVX2 ? com_kernel_avx2(st->in) : com_kernel(st->in);
#else
    st->kern = com_kernel(st->in);
#endif
    if (!st->kern) {
        rc = tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "com: no kernel for %s data",
                                    tsr_dtype_name(st->in));
        goto fail;
    }

    const tsr_dtype_t out =
        tsr__dtype_promote(meta->dataset_dtype, TSR_F32) == TSR_F32 ? TSR_F32 : TSR_F64;
    const int64_t three = 3, two = 2, reg_shape[2] = {3, 2};
    const unsigned ro = TSR_BUF_RESULT_ONLY;
    tsr__builtin_declare(init, "raw_mask_result", TSR_KIND_NAV, TSR_F64, TSR_BUF_PRIVATE, 1,
                         &three);
    tsr__builtin_declare(init, "raw_com", TSR_KIND_NAV, out, ro, 1, &two);
    tsr__builtin_declare(init, "raw_shifts", TSR_KIND_NAV, out, ro, 1, &two);
    tsr__builtin_declare(init, "field", TSR_KIND_NAV, out, ro, 1, &two);
    tsr__builtin_declare(init, "field_y", TSR_KIND_NAV, out, ro, 0, NULL);
    tsr__builtin_declare(init, "field_x", TSR_KIND_NAV, out, ro, 0, NULL);
    tsr__builtin_declare(init, "magnitude", TSR_KIND_NAV, out, ro, 0, NULL);
    tsr__builtin_declare(init, "divergence", TSR_KIND_NAV, out, ro, 0, NULL);
    tsr__builtin_declare(init, "curl", TSR_KIND_NAV, out, ro, 0, NULL);
    tsr__builtin_declare(init, "icom", TSR_KIND_NAV, out, ro, 0, NULL);
    tsr__builtin_declare(init, "regression", TSR_KIND_SINGLE, TSR_F64, ro, 2, reg_shape);
    init->input_dtype = TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_TILE;
    init->state = st;
    return 0;
fail:
    com_destroy(NULL, st);
    return rc;
}

/* ---- processing -------------------------------------------------------- */

static int com_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const com_state_t *st = c->state;
    if (t->dtype != st->in)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "com: expected %s tiles, got %s",
                             tsr_dtype_name(st->in), tsr_dtype_name(t->dtype));
    const size_t es = tsr_dtype_size(t->dtype);
    const int64_t y0 = t->sig_start / st->w, y1 = (t->sig_start + t->sig_len) / st->w;
    const int64_t r0 = st->row_off[y0], r1 = st->row_off[y1];
    if (r0 == r1)
        return 0;
    double *acc = c->bufs[B_RAW].data;
    for (int64_t f = 0; f < t->depth; f++) {
        const unsigned char *frame = (const unsigned char *)t->data + (size_t)(f * t->sig_len) * es;
        double S = 0, SY = 0, SX = 0;
        for (int64_t y = y0; y < y1; y++) {
            const unsigned char *row = frame + (size_t)((y - y0) * st->w) * es;
            double rs = 0, rx = 0;
            for (int64_t k = st->row_off[y]; k < st->row_off[y + 1]; k++) {
                double s, sk;
                st->kern(row + (size_t)st->run_x[k] * es, st->run_n[k], &s, &sk);
                rs += s;
                rx += (double)st->run_x[k] * s + sk;
            }
            S += rs;
            SY += (double)y * rs;
            SX += rx;
        }
        acc[3 * f] += S;
        acc[3 * f + 1] += SY;
        acc[3 * f + 2] += SX;
    }
    return 0;
}

/* ---- finalize ---------------------------------------------------------- */

static void put(const tsr_view_t *v, int64_t i, double x)
{
    if (v->dtype == TSR_F32)
        ((float *)v->data)[i] = (float)x;
    else
        ((double *)v->data)[i] = x;
}

static int com_finalize(const tsr_udf_call_t *c)
{
    const com_state_t *st = c->state;
    tsr_ctx_t *ctx = st->ctx;
    const tsr_view_t *b = c->bufs;
    const int64_t ny = c->meta->nav_shape.dims[0], nx = c->meta->nav_shape.dims[1];
    const int64_t n = ny * nx;
    const uint8_t *valid = c->meta->valid;
    const double *raw = b[B_RAW].data;
    double *w = tsr_alloc(ctx, (size_t)n * 6 * sizeof *w);
    if (!w)
        return tsr_udf_error(c, TSR_ENOMEM, "com: out of memory in finalize");
    double *fy = w, *fx = w + n, *g1 = w + 2 * n, *g2 = w + 3 * n, *g3 = w + 4 * n, *g4 = w + 5 * n;
    for (int64_t i = 0; i < n; i++) {
        if (valid && !valid[i]) {
            fy[i] = fx[i] = NAN;
            continue;
        }
        const double S = raw[3 * i];
        double ccy = st->cy, ccx = st->cx;
        if (S != 0) {
            ccy = raw[3 * i + 1] / S;
            ccx = raw[3 * i + 2] / S;
        }
        const double dy = ccy - st->cy, dx = ccx - st->cx;
        put(&b[B_COM], 2 * i, ccy);
        put(&b[B_COM], 2 * i + 1, ccx);
        put(&b[B_SHIFTS], 2 * i, dy);
        put(&b[B_SHIFTS], 2 * i + 1, dx);
        tsr__com_transform(st->rot, st->flip, dy, dx, &fy[i], &fx[i]);
    }
    double reg[3][2];
    tsr__com_regression(fy, fx, valid, ny, nx, st->regression, reg);
    memcpy(b[B_REGRESSION].data, reg, sizeof reg);
    for (int64_t y = 0; y < ny; y++)
        for (int64_t x = 0; x < nx; x++) {
            const int64_t i = y * nx + x;
            if (valid && !valid[i])
                continue;
            fy[i] -= reg[0][0] + reg[1][0] * (double)y + reg[2][0] * (double)x;
            fx[i] -= reg[0][1] + reg[1][1] * (double)y + reg[2][1] * (double)x;
            put(&b[B_FIELD], 2 * i, fy[i]);
            put(&b[B_FIELD], 2 * i + 1, fx[i]);
            put(&b[B_FIELD_Y], i, fy[i]);
            put(&b[B_FIELD_X], i, fx[i]);
            put(&b[B_MAGNITUDE], i, sqrt(fy[i] * fy[i] + fx[i] * fx[i]));
        }
    tsr__com_gradient(fy, valid, ny, nx, 0, g1); /* ∂fy/∂y */
    tsr__com_gradient(fx, valid, ny, nx, 1, g2); /* ∂fx/∂x */
    tsr__com_gradient(fy, valid, ny, nx, 1, g3); /* ∂fy/∂x */
    tsr__com_gradient(fx, valid, ny, nx, 0, g4); /* ∂fx/∂y */
    for (int64_t i = 0; i < n; i++) {
        put(&b[B_DIVERGENCE], i, g1[i] + g2[i]);
        put(&b[B_CURL], i, g3[i] - g4[i]);
    }
    int rc = tsr__com_icom(ctx, fy, fx, valid, ny, nx, g1);
    if (rc < 0) {
        tsr_free(ctx, w);
        return tsr_udf_error(c, rc, "%s", tsr_ctx_errmsg(ctx));
    }
    for (int64_t i = 0; i < n; i++)
        put(&b[B_ICOM], i, valid && !valid[i] ? NAN : g1[i]);
    tsr_free(ctx, w);
    return 0;
}

const tsr_udf_def_t tsr__udf_com = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "com",
    .description =
        "Centre of mass / DPC (LiberTEM's CoMUDF): per frame the centre of mass within a disk "
        "or annulus around (cy, cx); results raw_com, raw_shifts, field (after scan_rotation, "
        "flip_y and regression), field_y, field_x, magnitude, divergence, curl, icom "
        "(integrated CoM) and regression.",
    .params = com_params,
    .n_params = N_PARAMS,
    .init = com_init,
    .destroy = com_destroy,
    .process_tile = com_process_tile,
    .merge = NULL,
    .finalize = com_finalize,
};
