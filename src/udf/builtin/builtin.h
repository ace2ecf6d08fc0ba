/*
 * builtin.h — small helpers shared by the built-in UDFs in src/udf/builtin/
 * and the declarations of their definition tables.
 *
 * Everything here is static inline so that each UDF stays one file: the
 * dtype X-macro used to write type-specialised kernels, error helpers for
 * init, the element-wise float64 merge used by every SIG/SINGLE
 * accumulator, and the run-time choice between baseline and AVX2 kernels.
 * Nothing here allocates.
 */
#ifndef TSR_UDF_BUILTIN_H
#define TSR_UDF_BUILTIN_H

#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>

/* The definition tables, one per line of src/udf/builtin.def. */
#define TSR_UDF(name) extern const tsr_udf_def_t tsr__udf_##name;
#include "udf/builtin.def"
#undef TSR_UDF

/* The real element types plus bool (one byte holding 0 or 1, read as
 * uint8_t), for type-specialised loops; complex64 needs pairs. */
#define TSR__BUILTIN_REAL_TYPES(X) TSR__REAL_TYPES(X) X(TSR_BOOL, uint8_t)

/* Format a message into init->errmsg and return code. */
static inline int tsr__builtin_init_fail(tsr_udf_init_t *init, int code, const char *fmt, ...)
    TSR__PRINTF(3, 4);
static inline int tsr__builtin_init_fail(tsr_udf_init_t *init, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(init->errmsg, sizeof init->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* Declare buffer i of init: name, kind, dtype, flags, and extra_ndim
 * dimensions from extra (may be NULL when extra_ndim is 0).  Returns the
 * declaration so callers can adjust it. */
static inline tsr_buffer_decl_t *tsr__builtin_declare(tsr_udf_init_t *init, const char *name,
                                                      tsr_buf_kind_t kind, tsr_dtype_t dtype,
                                                      unsigned flags, int extra_ndim,
                                                      const int64_t *extra)
{
    tsr_buffer_decl_t *b = &init->buffers[init->n_buffers++];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->kind = kind;
    b->dtype = dtype;
    b->flags = flags;
    b->extra_ndim = extra_ndim;
    for (int i = 0; i < extra_ndim; i++)
        b->extra_shape[i] = extra[i];
    return b;
}

/* Number of elements a view holds. */
static inline size_t tsr__builtin_view_elems(const tsr_view_t *v)
{
    return (size_t)v->rows * (size_t)v->row_elems;
}

/* dst += src element-wise over two float64 views of the same size: the
 * merge of plain sums.  Addition order is fixed (dest then src), so the
 * result depends only on the order of merges. */
static inline void tsr__builtin_add_f64(const tsr_view_t *dst, const tsr_view_t *src)
{
    double *restrict d = (double *)dst->data;
    const double *restrict s = (const double *)src->data;
    size_t n = tsr__builtin_view_elems(dst);
    for (size_t i = 0; i < n; i++)
        d[i] += s[i];
}

/* Skip blanks. */
static inline const char *tsr__builtin_skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* ---- instruction sets --------------------------------------------------
 * The library is compiled for the baseline of its target (SSE2 on x86-64).
 * A hot kernel may be compiled a second time for AVX2 by writing its body
 * in a macro and instantiating it with and without TSR__BUILTIN_AVX2 (a
 * function target attribute, never with FMA, so that float results do not
 * depend on the CPU), then choosing per call with tsr__builtin_isa().
 * target_clones would be shorter, but clang 14 emits the resolver of a
 * static clone set as a global, exported symbol (two files with the same
 * function name no longer link), and ifuncs tie us to glibc.
 * The environment variable TSR_ISA=portable caps the choice at the
 * portable kernels (tests use it to cover both versions on one machine). */
typedef enum { TSR__BUILTIN_ISA_PORTABLE = 0, TSR__BUILTIN_ISA_AVX2 = 1 } tsr__builtin_isa_t;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TSR__BUILTIN_HAVE_AVX2 1
#define TSR__BUILTIN_AVX2 __attribute__((target("avx2")))
#else
#define TSR__BUILTIN_HAVE_AVX2 0
#define TSR__BUILTIN_AVX2
#endif

/* The best instruction set for the kernels, probed once per file that
 * asks (a relaxed atomic: every thread computes the same value).
 * Thread-safe. */
static inline tsr__builtin_isa_t tsr__builtin_isa(void)
{
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = TSR__BUILTIN_ISA_PORTABLE;
#if TSR__BUILTIN_HAVE_AVX2
        const char *cap = getenv("TSR_ISA");
        if (__builtin_cpu_supports("avx2") && !(cap && strcmp(cap, "portable") == 0))
            v = TSR__BUILTIN_ISA_AVX2;
#endif
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return (tsr__builtin_isa_t)v;
}

#endif /* TSR_UDF_BUILTIN_H */
