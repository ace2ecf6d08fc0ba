/*
 * core.h — internal helpers shared by every layer: the context structure,
 * allocation through the context's hooks, error recording, overflow-checked
 * size arithmetic, dtype conversion and parameter parsing.
 *
 * Error convention: a function that fails records a message on the object
 * that failed (tsr__ctx_seterr for the context) and returns a negative TSR_E*
 * code.  TSR_CHECK and TSR_TRY keep the `goto fail` cleanup style short.
 */
#ifndef TSR_CORE_H
#define TSR_CORE_H

#include "tessera.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define TSR__PRINTF(a, b) __attribute__((format(printf, a, b)))
#define TSR__LIKELY(x) __builtin_expect(!!(x), 1)
#define TSR__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define TSR__PRINTF(a, b)
#define TSR__LIKELY(x) (x)
#define TSR__UNLIKELY(x) (x)
#endif

#define TSR__ERRMSG_MAX 512

struct tsr_ctx {
    tsr_allocator_t alloc;
    int64_t threads;           /* resolved: >= 1 */
    int64_t executor;          /* tsr_executor_kind_t */
    int64_t tile_bytes;        /* resolved */
    int64_t partition_bytes;   /* resolved */
    int64_t partitions;        /* 0 = size-based */
    int64_t io_backend;        /* tsr_io_backend_t */
    atomic_size_t mem_current; /* atomic */
    atomic_size_t mem_peak;    /* atomic */
    char errmsg[TSR__ERRMSG_MAX];
};

/* ---- errors ------------------------------------------------------------ */

/* Format a message into ctx->errmsg and return code. */
int tsr__ctx_seterr(tsr_ctx_t *ctx, int code, const char *fmt, ...) TSR__PRINTF(3, 4);
/* Same into a caller's buffer. */
int tsr__seterr(char *buf, size_t n, int code, const char *fmt, ...) TSR__PRINTF(4, 5);
int tsr__vseterr(char *buf, size_t n, int code, const char *fmt, va_list ap);

/* If cond is false, record the message on ctx, set rc and jump to fail. */
#define TSR_CHECK(ctx, cond, code, ...)                       \
    do {                                                      \
        if (TSR__UNLIKELY(!(cond))) {                         \
            rc = tsr__ctx_seterr((ctx), (code), __VA_ARGS__); \
            goto fail;                                        \
        }                                                     \
    } while (0)
/* Evaluate a call returning int; on a negative value keep it in rc and jump
 * to fail (the callee recorded the message). */
#define TSR_TRY(call)              \
    do {                           \
        rc = (call);               \
        if (TSR__UNLIKELY(rc < 0)) \
            goto fail;             \
    } while (0)

/* ---- allocation -------------------------------------------------------- */

void *tsr__malloc(tsr_ctx_t *ctx, size_t n);
void *tsr__calloc(tsr_ctx_t *ctx, size_t count, size_t size);
void *tsr__realloc(tsr_ctx_t *ctx, void *p, size_t n);
void tsr__free(tsr_ctx_t *ctx, void *p);
char *tsr__strdup(tsr_ctx_t *ctx, const char *s);
/* 64-byte aligned, for tiles and large buffers; free with tsr__free_aligned. */
void *tsr__malloc_aligned(tsr_ctx_t *ctx, size_t n);
void tsr__free_aligned(tsr_ctx_t *ctx, void *p);

/* Overflow-checked arithmetic: return false on overflow. */
static inline bool tsr__mul_size(size_t a, size_t b, size_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool tsr__mul_i64(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool tsr__add_i64(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

/* ---- dtypes ------------------------------------------------------------ */

static inline bool tsr__dtype_valid(tsr_dtype_t dt)
{
    return (int)dt >= 0 && (int)dt < TSR_DTYPE_COUNT;
}
/* The ten real element types with their C types, for type-specialised
 * loops (X-macro).  bool and complex64 need their own handling. */
#define TSR__REAL_TYPES(X) \
    X(TSR_U8, uint8_t)     \
    X(TSR_U16, uint16_t)   \
    X(TSR_U32, uint32_t)   \
    X(TSR_U64, uint64_t)   \
    X(TSR_I8, int8_t)      \
    X(TSR_I16, int16_t)    \
    X(TSR_I32, int32_t)    \
    X(TSR_I64, int64_t)    \
    X(TSR_F32, float)      \
    X(TSR_F64, double)

bool tsr__dtype_is_float(tsr_dtype_t dt);   /* f32, f64, c64 */
bool tsr__dtype_is_complex(tsr_dtype_t dt); /* c64 */
bool tsr__dtype_is_signed(tsr_dtype_t dt);
/* numpy's result_type(a, b) restricted to our types. */
tsr_dtype_t tsr__dtype_promote(tsr_dtype_t a, tsr_dtype_t b);
/* Convert n elements from src (type s, byte-swapped first if swap) into dst
 * (type d, host order).  Complex to real takes the real part; real to
 * complex sets imaginary 0; float to integer truncates (C cast). */
void tsr__convert(void *dst, tsr_dtype_t d, const void *src, tsr_dtype_t s, bool swap, size_t n);
/* Byte-swap n elements of size es in place. */
void tsr__byteswap(void *p, size_t es, size_t n);
/* Store a double into element i of a buffer of type dt / load it. */
void tsr__store_f64(void *buf, tsr_dtype_t dt, size_t i, double v);
double tsr__load_f64(const void *buf, tsr_dtype_t dt, size_t i);
/* Fill n elements with NaN (float types) or 0 (others). */
void tsr__fill_invalid(void *buf, tsr_dtype_t dt, size_t n);

/* ---- parameters -------------------------------------------------------- */

/* Value parsers used for params of formats and UDFs.  On error they write
 * a message naming `what` into err and return TSR_EINVAL. */
int tsr__parse_i64(const char *s, int64_t *out, char *err, size_t n, const char *what);
int tsr__parse_f64(const char *s, double *out, char *err, size_t n, const char *what);
int tsr__parse_bool(const char *s, bool *out, char *err, size_t n, const char *what);
/* "4,5" or "(4, 5)" → shape; every dimension >= 1; at most TSR_MAX_DIMS. */
int tsr__parse_shape(const char *s, tsr_shape_t *out, char *err, size_t n, const char *what);
/* Comma-separated numbers: fills up to max values, sets *count. */
int tsr__parse_f64_list(const char *s, double *out, int max, int *count, char *err, size_t n,
                        const char *what);
/* Check that every key of p is in the schema (or "" names nothing); the
 * message names owner ("format raw", "UDF sum") and lists the known keys. */
int tsr__params_check(const tsr_params_t *p, const tsr_param_def_t *defs, size_t n_defs,
                      const char *owner, char *err, size_t n);
/* The value for key, else the schema's default, else NULL. */
const char *tsr__params_value(const tsr_params_t *p, const tsr_param_def_t *defs, size_t n_defs,
                              const char *key);
tsr_ctx_t *tsr__params_ctx(const tsr_params_t *p);
int tsr__params_copy(tsr_ctx_t *ctx, const tsr_params_t *src, tsr_params_t **out);

/* ---- shapes ------------------------------------------------------------ */

/* "(4, 5)" style text of a shape into buf; returns buf. */
const char *tsr__shape_str(const tsr_shape_t *s, char *buf, size_t n);
bool tsr__shape_eq(const tsr_shape_t *a, const tsr_shape_t *b);

#endif /* TSR_CORE_H */
