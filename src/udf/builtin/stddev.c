/*
 * stddev.c — the `stddev` UDF: per-pixel mean, variance and standard
 * deviation over all selected frames, in one pass and mergeable (LiberTEM's
 * StdDevUDF).
 *
 * Results: SIG float64 `mean`, `var` (population variance, numpy's np.var
 * default), `std` = sqrt(var), all written in finalize and NaN everywhere
 * when no frame was selected; SINGLE int64 `num_frames` (shape ()), counted
 * from the tiles with sig_start == 0 (each frame has exactly one).
 *
 * Tiles arrive in the dataset's own type (TSR_DTYPE_NATIVE): no float copy
 * of the data is made, and the kernels convert in registers.  Two
 * accumulation schemes, chosen in init from the type the tiles will have:
 *
 * Exact (integers of at most 16 bits and bool): private SIG int64 `sum` =
 * Σ(x - c) and uint64 `sumsq` = Σ(x - c)², with c = 32768 for uint16 (so
 * that x - c fits an int16) and 0 otherwise.  Both are exact integers, so
 * merge is plain addition and the results do not depend on tiling,
 * partitioning, merge order or thread count.  Limits: |x - c| <= 2^15, so
 * sumsq stays below 2^30 · N — exact for N < 2^34 frames (init falls back
 * to the float scheme beyond 2^32).  Finalize forms
 *     var = (N·Q - S²) / N²
 * exactly in 128-bit integers (N·Q - S² >= 0 by Cauchy-Schwarz) and
 * divides in long double, so var is within an ulp of the exact value.
 * Kernel: eight frames per pass over the tile, the per-pixel sum in int32
 * and the squares in uint32 in groups of at most three (3 · 2^30 < 2^32)
 * before they are widened — an eighth of the accumulator traffic and three
 * widenings per eight frames; the rest of the depth in passes of 4, 2, 1.
 *
 * Float (32/64-bit integers, floats, and integer data delivered as float32
 * because of corrections): private SIG float64 `sum` (Σx) and `varsum`
 * (Σ(x - mean)², the "M2" of Welford).  Per tile and per cache-sized chunk
 * of pixels, a first pass computes the chunk's own per-pixel sum, a second
 * its M2 around the tile mean (both in float64, vectorised over pixels);
 * Chan et al.'s parallel formula then folds them into the task's
 * accumulators:
 *     M2 = M2a + M2b + (mean_b - mean_a)² · na·nb / (na + nb)
 * and merge folds a task's partials into the run's with the same formula.
 * No Σx² is formed, so a large mean with a small spread keeps its
 * precision (relative error of var about ε·|mean|/σ).  A frame may be split
 * across tiles along sig and tiles may come in any order, so the number of
 * frames folded in so far (na) is kept per row of the first sig dimension
 * in the task state (tiles are whole rows); when it is the same over the
 * tile (always, with the runtime's fixed row bands) the fold uses scalar
 * factors and no division, else each row is folded with its own na.
 *
 * The hot kernels exist in a portable and an AVX2 version (builtin.h,
 * tsr__builtin_isa); both do the same integer or IEEE operations in the
 * same order (no FMA), so their results are identical.
 *
 * Complex data are rejected with TSR_EUNSUPPORTED for now.
 */
#include "udf/builtin/builtin.h"

#include <math.h>

/* BUF_SQ is `sumsq` (exact scheme) or `varsum` (float scheme). */
enum { BUF_SUM = 0, BUF_SQ = 1, BUF_VARSUM = 1, BUF_NUM_FRAMES = 2, BUF_VAR, BUF_STD, BUF_MEAN };

/* Above this many frames the exact scheme could overflow sumsq. */
#define STDDEV_EXACT_MAX_FRAMES ((int64_t)1 << 32)

typedef struct stddev_state {
    tsr_ctx_t *ctx;
    int64_t npix;
    int64_t nrows, row_len; /* rows of the first sig dimension */
    bool exact;             /* the integer scheme */
    tsr_dtype_t in;         /* the tiles' dtype */
    int64_t shift;          /* c, exact scheme */
} stddev_state_t;

/* Per-task state of the float scheme: the frames folded in so far, per row
 * of the first sig dimension (tiles are whole rows, so every pixel of a
 * row has seen the same frames). */
typedef struct stddev_task {
    int64_t *rows_done; /* nrows */
} stddev_task_t;

/* ---- exact kernels (integers of <= 16 bits) ----------------------------
 * S[p] += Σ_f d, Q[p] += Σ_f d² over depth frames of len pixels, d = D(x)
 * as int32 with |d| <= 2^15, so d² <= 2^30 and three squares fit a uint32.
 * Passes of 8 frames (the sum in int32, the squares in three uint32
 * partials, one accumulator update per pass), then one pass each of 4, 2
 * and 1 frames as the rest of the depth needs: shallow tiles (large frames)
 * also update the accumulators once per tile, or nearly. */
#define STDDEV_EXACT_KERNEL(NAME, T, D, ATTR)                                                  \
    ATTR static void NAME(int64_t *restrict S, uint64_t *restrict Q, const void *restrict xv,  \
                          int64_t depth, int64_t len)                                          \
    {                                                                                          \
        const T *restrict x = (const T *)xv;                                                   \
        int64_t f = 0;                                                                         \
        for (; f + 8 <= depth; f += 8) {                                                       \
            const T *restrict s = x + f * len;                                                 \
            for (int64_t p = 0; p < len; p++) {                                                \
                int32_t d0 = D(s[p]), d1 = D(s[p + len]), d2 = D(s[p + 2 * len]);              \
                int32_t d3 = D(s[p + 3 * len]), d4 = D(s[p + 4 * len]);                        \
                int32_t d5 = D(s[p + 5 * len]), d6 = D(s[p + 6 * len]);                        \
                int32_t d7 = D(s[p + 7 * len]);                                                \
                int32_t a = ((d0 + d1) + (d2 + d3)) + ((d4 + d5) + (d6 + d7));                 \
                uint32_t q0 = (uint32_t)(d0 * d0) + (uint32_t)(d1 * d1) + (uint32_t)(d2 * d2); \
                uint32_t q1 = (uint32_t)(d3 * d3) + (uint32_t)(d4 * d4) + (uint32_t)(d5 * d5); \
                uint32_t q2 = (uint32_t)(d6 * d6) + (uint32_t)(d7 * d7);                       \
                S[p] += a;                                                                     \
                Q[p] += ((uint64_t)q0 + q1) + q2;                                              \
            }                                                                                  \
        }                                                                                      \
        if (f + 4 <= depth) {                                                                  \
            const T *restrict s = x + f * len;                                                 \
            for (int64_t p = 0; p < len; p++) {                                                \
                int32_t d0 = D(s[p]), d1 = D(s[p + len]), d2 = D(s[p + 2 * len]);              \
                int32_t d3 = D(s[p + 3 * len]);                                                \
                uint32_t q0 = (uint32_t)(d0 * d0) + (uint32_t)(d1 * d1) + (uint32_t)(d2 * d2); \
                S[p] += (d0 + d1) + (d2 + d3);                                                 \
                Q[p] += (uint64_t)q0 + (uint32_t)(d3 * d3);                                    \
            }                                                                                  \
            f += 4;                                                                            \
        }                                                                                      \
        if (f + 2 <= depth) {                                                                  \
            const T *restrict s = x + f * len;                                                 \
            for (int64_t p = 0; p < len; p++) {                                                \
                int32_t d0 = D(s[p]), d1 = D(s[p + len]);                                      \
                S[p] += d0 + d1;                                                               \
                Q[p] += (uint32_t)(d0 * d0) + (uint32_t)(d1 * d1);                             \
            }                                                                                  \
            f += 2;                                                                            \
        }                                                                                      \
        if (f < depth) {                                                                       \
            const T *restrict s = x + f * len;                                                 \
            for (int64_t p = 0; p < len; p++) {                                                \
                int32_t d = D(s[p]);                                                           \
                S[p] += d;                                                                     \
                Q[p] += (uint32_t)(d * d);                                                     \
            }                                                                                  \
        }                                                                                      \
    }

/* uint16 shifted by c = 32768, into [-2^15, 2^15). */
#define STDDEV_D_U16(v) ((int32_t)(v)-32768)
#define STDDEV_D_PLAIN(v) ((int32_t)(v))

/* 8-bit integers and bool: narrower lanes go further.  Up to 16 frames per
 * pass, the sum in 16 bits (16 · 255 < 2^16; 16 · 128 < 2^15) and each
 * square in 16 bits (255² < 2^16), the squares summed in uint32 — twice
 * the pixels per vector of the 16-bit kernel.  A is uint16_t or int16_t. */
#define STDDEV_EXACT8_PASS(G, T, A)         \
    for (; f + (G) <= depth; f += (G)) {    \
        const T *restrict s = x + f * len;  \
        for (int64_t p = 0; p < len; p++) { \
            A a = 0;                        \
            uint32_t q = 0;                 \
            for (int k = 0; k < (G); k++) { \
                A d = (A)s[p + k * len];    \
                a = (A)(a + d);             \
                q += (uint16_t)(d * d);     \
            }                               \
            S[p] += a;                      \
            Q[p] += q;                      \
        }                                   \
    }
#define STDDEV_EXACT8_KERNEL(NAME, T, A, ATTR)                                                \
    ATTR static void NAME(int64_t *restrict S, uint64_t *restrict Q, const void *restrict xv, \
                          int64_t depth, int64_t len)                                         \
    {                                                                                         \
        const T *restrict x = (const T *)xv;                                                  \
        int64_t f = 0;                                                                        \
        STDDEV_EXACT8_PASS(16, T, A)                                                          \
        STDDEV_EXACT8_PASS(8, T, A)                                                           \
        STDDEV_EXACT8_PASS(4, T, A)                                                           \
        STDDEV_EXACT8_PASS(2, T, A)                                                           \
        STDDEV_EXACT8_PASS(1, T, A)                                                           \
    }

#define STDDEV_EXACT_KERNELS(SUFFIX, ATTR)                                      \
    STDDEV_EXACT8_KERNEL(stddev_exact_u8##SUFFIX, uint8_t, uint16_t, ATTR)      \
    STDDEV_EXACT8_KERNEL(stddev_exact_i8##SUFFIX, int8_t, int16_t, ATTR)        \
    STDDEV_EXACT_KERNEL(stddev_exact_u16##SUFFIX, uint16_t, STDDEV_D_U16, ATTR) \
    STDDEV_EXACT_KERNEL(stddev_exact_i16##SUFFIX, int16_t, STDDEV_D_PLAIN, ATTR)
STDDEV_EXACT_KERNELS(, )
#if TSR__BUILTIN_HAVE_AVX2
STDDEV_EXACT_KERNELS(_avx2, TSR__BUILTIN_AVX2)
#endif

/* ---- float kernels -----------------------------------------------------
 * Fold depth frames of n pixels (frame stride `stride` elements) into
 * sum[p] and varsum[p], which hold na frames already.  The tile is taken
 * in chunks of STDDEV_CHUNK pixels so that the chunk's own sums s[p] = Σx,
 * m2[p] = Σ(x - s[p]/depth)² (on the stack) and its frames stay in cache
 * between the two passes and the fold; all in float64, four frames per pass
 * with the partial kept in a register. */
#define STDDEV_CHUNK 1024
#define STDDEV_X(f) ((double)x0[p + (f)*stride])
#define STDDEV_E(f) (STDDEV_X(f) - s[p] * inv)
#define STDDEV_FLOAT_KERNEL(NAME, T, ATTR)                                                        \
    ATTR static void NAME(double *restrict sum, double *restrict varsum, const void *restrict xv, \
                          int64_t depth, int64_t stride, int64_t n, double na)                    \
    {                                                                                             \
        double s[STDDEV_CHUNK], m2[STDDEV_CHUNK];                                                 \
        const double nb = (double)depth, inv = 1.0 / nb;                                          \
        const double ra = na > 0 ? 1.0 / na : 0.0, k = na * nb / (na + nb);                       \
        const int64_t first = depth >= 4 ? 4 : 1;                                                 \
        for (int64_t c0 = 0; c0 < n; c0 += STDDEV_CHUNK) {                                        \
            const int64_t cn = n - c0 < STDDEV_CHUNK ? n - c0 : STDDEV_CHUNK;                     \
            const T *restrict x0 = (const T *)xv + c0;                                            \
            if (first == 4)                                                                       \
                for (int64_t p = 0; p < cn; p++)                                                  \
                    s[p] = ((STDDEV_X(0) + STDDEV_X(1)) + STDDEV_X(2)) + STDDEV_X(3);             \
            else                                                                                  \
                for (int64_t p = 0; p < cn; p++)                                                  \
                    s[p] = STDDEV_X(0);                                                           \
            int64_t f = first;                                                                    \
            for (; f + 4 <= depth; f += 4)                                                        \
                for (int64_t p = 0; p < cn; p++)                                                  \
                    s[p] = (((s[p] + STDDEV_X(f)) + STDDEV_X(f + 1)) + STDDEV_X(f + 2)) +         \
                           STDDEV_X(f + 3);                                                       \
            for (; f < depth; f++)                                                                \
                for (int64_t p = 0; p < cn; p++)                                                  \
                    s[p] += STDDEV_X(f);                                                          \
            if (first == 4)                                                                       \
                for (int64_t p = 0; p < cn; p++) {                                                \
                    double e0 = STDDEV_E(0), e1 = STDDEV_E(1);                                    \
                    double e2 = STDDEV_E(2), e3 = STDDEV_E(3);                                    \
                    m2[p] = ((e0 * e0 + e1 * e1) + e2 * e2) + e3 * e3;                            \
                }                                                                                 \
            else                                                                                  \
                for (int64_t p = 0; p < cn; p++) {                                                \
                    double e0 = STDDEV_E(0);                                                      \
                    m2[p] = e0 * e0;                                                              \
                }                                                                                 \
            for (f = first; f + 4 <= depth; f += 4)                                               \
                for (int64_t p = 0; p < cn; p++) {                                                \
                    double e0 = STDDEV_E(f), e1 = STDDEV_E(f + 1);                                \
                    double e2 = STDDEV_E(f + 2), e3 = STDDEV_E(f + 3);                            \
                    m2[p] = (((m2[p] + e0 * e0) + e1 * e1) + e2 * e2) + e3 * e3;                  \
                }                                                                                 \
            for (; f < depth; f++)                                                                \
                for (int64_t p = 0; p < cn; p++) {                                                \
                    double e0 = STDDEV_E(f);                                                      \
                    m2[p] += e0 * e0;                                                             \
                }                                                                                 \
            double *restrict sa = sum + c0, *restrict m2a = varsum + c0;                          \
            if (na == 0) {                                                                        \
                for (int64_t p = 0; p < cn; p++) {                                                \
                    sa[p] = s[p];                                                                 \
                    m2a[p] = m2[p];                                                               \
                }                                                                                 \
                continue;                                                                         \
            }                                                                                     \
            for (int64_t p = 0; p < cn; p++) {                                                    \
                double delta = s[p] * inv - sa[p] * ra;                                           \
                m2a[p] += m2[p] + delta * delta * k;                                              \
                sa[p] += s[p];                                                                    \
            }                                                                                     \
        }                                                                                         \
    }

#define STDDEV_FLOAT_KERNELS(SUFFIX, ATTR)                        \
    STDDEV_FLOAT_KERNEL(stddev_float_f32##SUFFIX, float, ATTR)    \
    STDDEV_FLOAT_KERNEL(stddev_float_f64##SUFFIX, double, ATTR)   \
    STDDEV_FLOAT_KERNEL(stddev_float_u32##SUFFIX, uint32_t, ATTR) \
    STDDEV_FLOAT_KERNEL(stddev_float_i32##SUFFIX, int32_t, ATTR)  \
    STDDEV_FLOAT_KERNEL(stddev_float_u64##SUFFIX, uint64_t, ATTR) \
    STDDEV_FLOAT_KERNEL(stddev_float_i64##SUFFIX, int64_t, ATTR)
STDDEV_FLOAT_KERNELS(, )
#if TSR__BUILTIN_HAVE_AVX2
STDDEV_FLOAT_KERNELS(_avx2, TSR__BUILTIN_AVX2)
#endif
#undef STDDEV_X
#undef STDDEV_E

/* Merge of two float partials: fold (nb, sb[p], m2b[p]) into (na, sa[p],
 * m2a[p]) by Chan's formula (once per task, not a hot path). */
static void stddev_fold(double *restrict sa, double *restrict m2a, const double *restrict sb,
                        const double *restrict m2b, int64_t n, double na, double nb)
{
    if (na == 0) {
        memcpy(sa, sb, (size_t)n * sizeof *sa);
        memcpy(m2a, m2b, (size_t)n * sizeof *m2a);
        return;
    }
    const double ra = 1.0 / na, rb = 1.0 / nb, k = na * nb / (na + nb);
    for (int64_t p = 0; p < n; p++) {
        double delta = sb[p] * rb - sa[p] * ra;
        m2a[p] += m2b[p] + delta * delta * k;
        sa[p] += sb[p];
    }
}

/* ---- kernel choice ------------------------------------------------------ */

#if TSR__BUILTIN_HAVE_AVX2
#define STDDEV_PICK(NAME) (tsr__builtin_isa() >= TSR__BUILTIN_ISA_AVX2 ? NAME##_avx2 : NAME)
#else
#define STDDEV_PICK(NAME) NAME
#endif

typedef void (*stddev_exact_fn)(int64_t *, uint64_t *, const void *, int64_t, int64_t);
typedef void (*stddev_float_fn)(double *, double *, const void *, int64_t, int64_t, int64_t,
                                double);

/* The exact kernel for tiles of type dt, or NULL if dt is not an integer
 * of at most 16 bits (or bool). */
static stddev_exact_fn stddev_exact_kernel(tsr_dtype_t dt)
{
    switch (dt) {
    case TSR_U8:
    case TSR_BOOL: return STDDEV_PICK(stddev_exact_u8);
    case TSR_I8: return STDDEV_PICK(stddev_exact_i8);
    case TSR_U16: return STDDEV_PICK(stddev_exact_u16);
    case TSR_I16: return STDDEV_PICK(stddev_exact_i16);
    default: return NULL;
    }
}

/* The float kernel for tiles of type dt (32/64-bit integers and floats),
 * or NULL. */
static stddev_float_fn stddev_float_kernel(tsr_dtype_t dt)
{
    switch (dt) {
    case TSR_F32: return STDDEV_PICK(stddev_float_f32);
    case TSR_F64: return STDDEV_PICK(stddev_float_f64);
    case TSR_U32: return STDDEV_PICK(stddev_float_u32);
    case TSR_I32: return STDDEV_PICK(stddev_float_i32);
    case TSR_U64: return STDDEV_PICK(stddev_float_u64);
    case TSR_I64: return STDDEV_PICK(stddev_float_i64);
    default: return NULL;
    }
}

/* ---- callbacks ---------------------------------------------------------- */

static int stddev_init(tsr_udf_init_t *init)
{
    const tsr_udf_meta_t *m = init->meta;
    if (!tsr__dtype_valid(m->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "stddev: invalid dataset dtype %d",
                                      (int)m->dataset_dtype);
    if (tsr__dtype_is_complex(m->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "stddev: complex data (%s) are not supported yet",
                                      tsr_dtype_name(m->dataset_dtype));
    /* The tiles come as NATIVE gives them: the dataset's type, or float32
     * for integer data with corrections. */
    tsr_dtype_t in = m->input_dtype;
    bool exact = stddev_exact_kernel(in) != NULL && m->roi_count <= STDDEV_EXACT_MAX_FRAMES;
    if (!exact && !stddev_float_kernel(in)) {
        /* Large 8/16-bit data or an unexpected type: ask for float64. */
        in = TSR_F64;
    }
    stddev_state_t *st = tsr_alloc(init->ctx, sizeof *st);
    if (!st)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "stddev: out of memory");
    st->ctx = init->ctx;
    st->npix = tsr_shape_size(&m->sig_shape);
    st->exact = exact;
    st->in = in;
    st->shift = in == TSR_U16 ? 32768 : 0;
    st->nrows = m->sig_shape.ndim > 0 ? m->sig_shape.dims[0] : 1;
    if (st->nrows < 1)
        st->nrows = 1;
    st->row_len = st->npix / st->nrows > 0 ? st->npix / st->nrows : 1;

    if (exact) {
        tsr__builtin_declare(init, "sum", TSR_KIND_SIG, TSR_I64, TSR_BUF_PRIVATE, 0, NULL);
        tsr__builtin_declare(init, "sumsq", TSR_KIND_SIG, TSR_U64, TSR_BUF_PRIVATE, 0, NULL);
    } else {
        tsr__builtin_declare(init, "sum", TSR_KIND_SIG, TSR_F64, TSR_BUF_PRIVATE, 0, NULL);
        tsr__builtin_declare(init, "varsum", TSR_KIND_SIG, TSR_F64, TSR_BUF_PRIVATE, 0, NULL);
    }
    tsr__builtin_declare(init, "num_frames", TSR_KIND_SINGLE, TSR_I64, 0, 0, NULL);
    tsr__builtin_declare(init, "var", TSR_KIND_SIG, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    tsr__builtin_declare(init, "std", TSR_KIND_SIG, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    tsr__builtin_declare(init, "mean", TSR_KIND_SIG, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    init->input_dtype = in == m->input_dtype ? TSR_DTYPE_NATIVE : in;
    init->method = TSR_METHOD_TILE;
    init->state = st;
    return 0;
}

static void stddev_destroy(void *user_data, void *state)
{
    stddev_state_t *st = state;
    if (st)
        tsr_free(st->ctx, st);
}

static void stddev_task_stop(const tsr_udf_call_t *c, void *task_state)
{
    const stddev_state_t *st = c->state;
    stddev_task_t *t = task_state;
    if (!t)
        return;
    tsr_free(st->ctx, t->rows_done);
    tsr_free(st->ctx, t);
}

static int stddev_task_start(const tsr_udf_call_t *c, void **task_state)
{
    const stddev_state_t *st = c->state;
    *task_state = NULL;
    if (st->exact)
        return 0; /* the partial buffers are all the exact scheme needs */
    size_t bytes;
    if (!tsr__mul_size((size_t)st->nrows, sizeof(int64_t), &bytes))
        return tsr_udf_error(c, TSR_EOVERFLOW, "stddev: signal too large");
    stddev_task_t *t = tsr_alloc(st->ctx, sizeof *t);
    if (!t)
        return tsr_udf_error(c, TSR_ENOMEM, "stddev: out of memory");
    t->rows_done = tsr_alloc(st->ctx, bytes);
    if (!t->rows_done) {
        stddev_task_stop(c, t);
        return tsr_udf_error(c, TSR_ENOMEM, "stddev: out of memory");
    }
    memset(t->rows_done, 0, bytes);
    *task_state = t;
    return 0;
}

static int stddev_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const stddev_state_t *st = c->state;
    const int64_t len = t->sig_len, depth = t->depth;
    if (t->dtype != st->in)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "stddev: expected %s tiles, got %s",
                             tsr_dtype_name(st->in), tsr_dtype_name(t->dtype));
    if (depth <= 0)
        return 0;
    if (st->exact) {
        stddev_exact_kernel(t->dtype)(c->bufs[BUF_SUM].data, c->bufs[BUF_SQ].data, t->data, depth,
                                      len);
    } else {
        const int64_t rl = st->row_len;
        if (t->sig_start % rl != 0 || len % rl != 0)
            return tsr_udf_error(
                c, TSR_EINVAL, "stddev: tile pixels [%lld, %lld) are not whole rows of %lld",
                (long long)t->sig_start, (long long)(t->sig_start + len), (long long)rl);
        stddev_task_t *ts = c->task_state;
        int64_t *done = ts->rows_done + t->sig_start / rl;
        const int64_t nr = len / rl;
        stddev_float_fn kern = stddev_float_kernel(t->dtype);
        double *sum = c->bufs[BUF_SUM].data;
        double *varsum = c->bufs[BUF_VARSUM].data;
        /* One call when every row has seen the same frames (always, with
         * the runtime's fixed bands), else one per row. */
        int64_t differ = 0;
        for (int64_t r = 0; r < nr; r++)
            differ |= done[r] ^ done[0];
        if (differ == 0) {
            kern(sum, varsum, t->data, depth, len, len, (double)done[0]);
        } else {
            const size_t es = tsr_dtype_size(t->dtype);
            for (int64_t r = 0; r < nr; r++)
                kern(sum + r * rl, varsum + r * rl, (const char *)t->data + (size_t)(r * rl) * es,
                     depth, len, rl, (double)done[r]);
        }
        for (int64_t r = 0; r < nr; r++)
            done[r] += depth;
    }
    if (t->sig_start == 0)
        *(int64_t *)c->bufs[BUF_NUM_FRAMES].data += depth;
    return 0;
}

static int stddev_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    const stddev_state_t *st = c->state;
    int64_t *nd = c->bufs[BUF_NUM_FRAMES].data;
    const int64_t ns = *(const int64_t *)src[BUF_NUM_FRAMES].data;
    if (ns == 0)
        return 0;
    const int64_t n = c->bufs[BUF_SUM].rows;
    if (st->exact) {
        int64_t *sum = c->bufs[BUF_SUM].data;
        uint64_t *sq = c->bufs[BUF_SQ].data;
        const int64_t *ssum = src[BUF_SUM].data;
        const uint64_t *ssq = src[BUF_SQ].data;
        for (int64_t p = 0; p < n; p++) {
            sum[p] += ssum[p];
            sq[p] += ssq[p];
        }
    } else {
        stddev_fold(c->bufs[BUF_SUM].data, c->bufs[BUF_VARSUM].data, src[BUF_SUM].data,
                    src[BUF_VARSUM].data, n, (double)*nd, (double)ns);
    }
    *nd += ns;
    return 0;
}

/* var = (n·Q - S²) / n², from exact integers. */
static double stddev_exact_var(int64_t n, int64_t S, uint64_t Q)
{
#ifdef __SIZEOF_INT128__
    unsigned __int128 as = (unsigned __int128)(S < 0 ? -(uint64_t)S : (uint64_t)S);
    unsigned __int128 num = (unsigned __int128)(uint64_t)n * Q - as * as;
    return (double)((long double)num / ((long double)n * (long double)n));
#else
    long double dn = (long double)n, ds = (long double)S;
    long double num = dn * (long double)Q - ds * ds;
    return (double)(num > 0 ? num / (dn * dn) : 0);
#endif
}

static int stddev_finalize(const tsr_udf_call_t *c)
{
    const stddev_state_t *st = c->state;
    const int64_t nf = *(const int64_t *)c->bufs[BUF_NUM_FRAMES].data;
    double *var = c->bufs[BUF_VAR].data;
    double *sd = c->bufs[BUF_STD].data;
    double *mean = c->bufs[BUF_MEAN].data;
    const int64_t n = c->bufs[BUF_SUM].rows;
    if (nf <= 0) {
        for (int64_t p = 0; p < n; p++)
            var[p] = sd[p] = mean[p] = NAN;
        return 0;
    }
    const double dn = (double)nf;
    if (st->exact) {
        const int64_t *sum = c->bufs[BUF_SUM].data;
        const uint64_t *sq = c->bufs[BUF_SQ].data;
        const int64_t cn = st->shift * nf; /* Σc, to undo the shift */
        for (int64_t p = 0; p < n; p++) {
            double v = stddev_exact_var(nf, sum[p], sq[p]);
            var[p] = v;
            sd[p] = sqrt(v);
            mean[p] = (double)(sum[p] + cn) / dn;
        }
        return 0;
    }
    const double *sum = c->bufs[BUF_SUM].data;
    const double *varsum = c->bufs[BUF_VARSUM].data;
    for (int64_t p = 0; p < n; p++) {
        double v = varsum[p] / dn;
        var[p] = v;
        sd[p] = sqrt(v);
        mean[p] = sum[p] / dn;
    }
    return 0;
}

const tsr_udf_def_t tsr__udf_stddev = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "stddev",
    .description = "Per-pixel statistics over all selected frames, one pass and mergeable: "
                   "`mean`, `var` (population variance), `std` (sig shape, float64) and "
                   "`num_frames`.",
    .params = NULL,
    .n_params = 0,
    .init = stddev_init,
    .destroy = stddev_destroy,
    .task_start = stddev_task_start,
    .task_stop = stddev_task_stop,
    .process_tile = stddev_process_tile,
    .merge = stddev_merge,
    .finalize = stddev_finalize,
};
