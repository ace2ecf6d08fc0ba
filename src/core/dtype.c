/*
 * dtype.c — element types: names, numpy typestring parsing, promotion
 * (numpy's result_type restricted to our twelve types) and conversion.
 *
 * Conversion is generated for every (source, destination) pair by a macro,
 * so each pair is a plain loop the compiler vectorises.  Byte-swapped input
 * goes through a small stack buffer in chunks, so there is no extra pass
 * over memory larger than the L1 cache.
 */
#include "core/core.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>

typedef struct {
    float re, im;
} c64_t;

static const struct {
    const char *name;
    char kind; /* numpy kind: u i f c b */
    unsigned size;
} dtinfo[TSR_DTYPE_COUNT] = {
    [TSR_U8] = {"uint8", 'u', 1},      [TSR_U16] = {"uint16", 'u', 2},
    [TSR_U32] = {"uint32", 'u', 4},    [TSR_U64] = {"uint64", 'u', 8},
    [TSR_I8] = {"int8", 'i', 1},       [TSR_I16] = {"int16", 'i', 2},
    [TSR_I32] = {"int32", 'i', 4},     [TSR_I64] = {"int64", 'i', 8},
    [TSR_F32] = {"float32", 'f', 4},   [TSR_F64] = {"float64", 'f', 8},
    [TSR_C64] = {"complex64", 'c', 8}, [TSR_BOOL] = {"bool", 'b', 1},
};

size_t tsr_dtype_size(tsr_dtype_t dt)
{
    return tsr__dtype_valid(dt) ? dtinfo[dt].size : 0;
}

const char *tsr_dtype_name(tsr_dtype_t dt)
{
    return tsr__dtype_valid(dt) ? dtinfo[dt].name : "invalid";
}

bool tsr__dtype_is_float(tsr_dtype_t dt)
{
    return dt == TSR_F32 || dt == TSR_F64 || dt == TSR_C64;
}
bool tsr__dtype_is_complex(tsr_dtype_t dt)
{
    return dt == TSR_C64;
}
bool tsr__dtype_is_signed(tsr_dtype_t dt)
{
    return tsr__dtype_valid(dt) &&
           (dtinfo[dt].kind == 'i' || dtinfo[dt].kind == 'f' || dtinfo[dt].kind == 'c');
}

int tsr_dtype_parse(const char *s, tsr_dtype_t *dt, bool *big_endian)
{
    static const struct {
        const char *name;
        tsr_dtype_t dt;
    } names[] = {
        {"uint8", TSR_U8},    {"uint16", TSR_U16},  {"uint32", TSR_U32},    {"uint64", TSR_U64},
        {"int8", TSR_I8},     {"int16", TSR_I16},   {"int32", TSR_I32},     {"int64", TSR_I64},
        {"float32", TSR_F32}, {"float64", TSR_F64}, {"complex64", TSR_C64}, {"bool", TSR_BOOL},
        {"u1", TSR_U8},       {"u2", TSR_U16},      {"u4", TSR_U32},        {"u8", TSR_U64},
        {"i1", TSR_I8},       {"i2", TSR_I16},      {"i4", TSR_I32},        {"i8", TSR_I64},
        {"f4", TSR_F32},      {"f8", TSR_F64},      {"c8", TSR_C64},        {"b1", TSR_BOOL},
        {"?", TSR_BOOL},      {"B", TSR_U8},        {"b", TSR_I8},          {"H", TSR_U16},
        {"h", TSR_I16},       {"single", TSR_F32},  {"double", TSR_F64},    {"float", TSR_F64},
        {"bool_", TSR_BOOL},
    };
    if (!s || !dt)
        return TSR_EINVAL;
    bool be = false;
    if (*s == '<' || *s == '|' || *s == '=') {
        s++;
    } else if (*s == '>') {
        be = true;
        s++;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(s, names[i].name) == 0) {
            *dt = names[i].dt;
            if (big_endian)
                *big_endian = be && dtinfo[names[i].dt].size > 1;
            return 0;
        }
    }
    return TSR_EINVAL;
}

/* numpy's promotion for our types: bool < ints < floats < complex; mixed
 * signedness widens; 64-bit ints with floats give float64. */
tsr_dtype_t tsr__dtype_promote(tsr_dtype_t a, tsr_dtype_t b)
{
    if (a == b)
        return a;
    char ka = dtinfo[a].kind, kb = dtinfo[b].kind;
    unsigned sa = dtinfo[a].size, sb = dtinfo[b].size;
    if (ka == 'b')
        return b;
    if (kb == 'b')
        return a;
    if (ka == 'c' || kb == 'c') {
        /* complex64 with anything wider than float32 precision → complex128,
         * which we lack: stay complex64 (documented loss). */
        return TSR_C64;
    }
    if (ka == 'f' || kb == 'f') {
        tsr_dtype_t f = ka == 'f' ? a : b, o = ka == 'f' ? b : a;
        if (f == TSR_F64)
            return TSR_F64;
        /* float32 with an integer: ints of <= 16 bit fit float32. */
        if (dtinfo[o].kind == 'f')
            return dtinfo[o].size == 8 ? TSR_F64 : TSR_F32;
        return dtinfo[o].size <= 2 ? TSR_F32 : TSR_F64;
    }
    /* both integers */
    if (ka == kb)
        return sa >= sb ? a : b;
    tsr_dtype_t u = ka == 'u' ? a : b, i = ka == 'u' ? b : a;
    unsigned su = dtinfo[u].size, si = dtinfo[i].size;
    if (si > su)
        return i;
    switch (su) {
    case 1: return TSR_I16;
    case 2: return TSR_I32;
    case 4: return TSR_I64;
    default: return TSR_F64;
    }
}

void tsr__byteswap(void *p, size_t es, size_t n)
{
    unsigned char *b = p;
    switch (es) {
    case 2:
        for (size_t i = 0; i < n; i++) {
            uint16_t v;
            memcpy(&v, b + 2 * i, 2);
            v = __builtin_bswap16(v);
            memcpy(b + 2 * i, &v, 2);
        }
        break;
    case 4:
        for (size_t i = 0; i < n; i++) {
            uint32_t v;
            memcpy(&v, b + 4 * i, 4);
            v = __builtin_bswap32(v);
            memcpy(b + 4 * i, &v, 4);
        }
        break;
    case 8:
        for (size_t i = 0; i < n; i++) {
            uint64_t v;
            memcpy(&v, b + 8 * i, 8);
            v = __builtin_bswap64(v);
            memcpy(b + 8 * i, &v, 8);
        }
        break;
    default: break;
    }
}

/* ---- conversion table -------------------------------------------------- */

typedef void (*conv_fn)(void *restrict, const void *restrict, size_t);

/* TSR__REAL_TYPES (core.h) lists the real types with their C types. */

/* real → real, real → bool, bool → real */
#define CONV_RR(DN, DT, SN, ST)                                                      \
    static void conv_##DN##_##SN(void *restrict d, const void *restrict s, size_t n) \
    {                                                                                \
        DT *restrict dp = d;                                                         \
        const ST *restrict sp = s;                                                   \
        for (size_t i = 0; i < n; i++)                                               \
            dp[i] = (DT)sp[i];                                                       \
    }

#define CONV_FROM(SN, ST)                                                              \
    CONV_RR(TSR_U8, uint8_t, SN, ST)                                                   \
    CONV_RR(TSR_U16, uint16_t, SN, ST)                                                 \
    CONV_RR(TSR_U32, uint32_t, SN, ST)                                                 \
    CONV_RR(TSR_U64, uint64_t, SN, ST)                                                 \
    CONV_RR(TSR_I8, int8_t, SN, ST)                                                    \
    CONV_RR(TSR_I16, int16_t, SN, ST)                                                  \
    CONV_RR(TSR_I32, int32_t, SN, ST)                                                  \
    CONV_RR(TSR_I64, int64_t, SN, ST)                                                  \
    CONV_RR(TSR_F32, float, SN, ST)                                                    \
    CONV_RR(TSR_F64, double, SN, ST)                                                   \
    static void conv_TSR_C64_##SN(void *restrict d, const void *restrict s, size_t n)  \
    {                                                                                  \
        c64_t *restrict dp = d;                                                        \
        const ST *restrict sp = s;                                                     \
        for (size_t i = 0; i < n; i++) {                                               \
            dp[i].re = (float)sp[i];                                                   \
            dp[i].im = 0.0f;                                                           \
        }                                                                              \
    }                                                                                  \
    static void conv_TSR_BOOL_##SN(void *restrict d, const void *restrict s, size_t n) \
    {                                                                                  \
        uint8_t *restrict dp = d;                                                      \
        const ST *restrict sp = s;                                                     \
        for (size_t i = 0; i < n; i++)                                                 \
            dp[i] = sp[i] != 0;                                                        \
    }

#define X(SN, ST) CONV_FROM(SN, ST)
TSR__REAL_TYPES(X)
#undef X

/* complex64 source: real part to reals; modulus != 0 to bool. */
#define CONV_C(DN, DT)                                                                  \
    static void conv_##DN##_TSR_C64(void *restrict d, const void *restrict s, size_t n) \
    {                                                                                   \
        DT *restrict dp = d;                                                            \
        const c64_t *restrict sp = s;                                                   \
        for (size_t i = 0; i < n; i++)                                                  \
            dp[i] = (DT)sp[i].re;                                                       \
    }
#define X(DN, DT) CONV_C(DN, DT)
TSR__REAL_TYPES(X)
#undef X
static void conv_TSR_C64_TSR_C64(void *restrict d, const void *restrict s, size_t n)
{
    memcpy(d, s, n * sizeof(c64_t));
}
static void conv_TSR_BOOL_TSR_C64(void *restrict d, const void *restrict s, size_t n)
{
    uint8_t *restrict dp = d;
    const c64_t *restrict sp = s;
    for (size_t i = 0; i < n; i++)
        dp[i] = sp[i].re != 0.0f || sp[i].im != 0.0f;
}
/* bool source behaves as uint8 (values 0/1). */

#define ROW(SN)                                                           \
    [SN] = {[TSR_U8] = conv_TSR_U8_##SN,   [TSR_U16] = conv_TSR_U16_##SN, \
            [TSR_U32] = conv_TSR_U32_##SN, [TSR_U64] = conv_TSR_U64_##SN, \
            [TSR_I8] = conv_TSR_I8_##SN,   [TSR_I16] = conv_TSR_I16_##SN, \
            [TSR_I32] = conv_TSR_I32_##SN, [TSR_I64] = conv_TSR_I64_##SN, \
            [TSR_F32] = conv_TSR_F32_##SN, [TSR_F64] = conv_TSR_F64_##SN, \
            [TSR_C64] = conv_TSR_C64_##SN, [TSR_BOOL] = conv_TSR_BOOL_##SN}

/* table[src][dst] */
static const conv_fn table[TSR_DTYPE_COUNT][TSR_DTYPE_COUNT] = {
    ROW(TSR_U8),
    ROW(TSR_U16),
    ROW(TSR_U32),
    ROW(TSR_U64),
    ROW(TSR_I8),
    ROW(TSR_I16),
    ROW(TSR_I32),
    ROW(TSR_I64),
    ROW(TSR_F32),
    ROW(TSR_F64),
    ROW(TSR_C64),
    [TSR_BOOL] = {[TSR_U8] = conv_TSR_U8_TSR_U8,
                  [TSR_U16] = conv_TSR_U16_TSR_U8,
                  [TSR_U32] = conv_TSR_U32_TSR_U8,
                  [TSR_U64] = conv_TSR_U64_TSR_U8,
                  [TSR_I8] = conv_TSR_I8_TSR_U8,
                  [TSR_I16] = conv_TSR_I16_TSR_U8,
                  [TSR_I32] = conv_TSR_I32_TSR_U8,
                  [TSR_I64] = conv_TSR_I64_TSR_U8,
                  [TSR_F32] = conv_TSR_F32_TSR_U8,
                  [TSR_F64] = conv_TSR_F64_TSR_U8,
                  [TSR_C64] = conv_TSR_C64_TSR_U8,
                  [TSR_BOOL] = conv_TSR_BOOL_TSR_U8},
};

void tsr__convert(void *dst, tsr_dtype_t d, const void *src, tsr_dtype_t s, bool swap, size_t n)
{
    size_t ss = dtinfo[s].size, ds = dtinfo[d].size;
    swap = swap && ss > 1;
    if (!swap) {
        if (s == d)
            memcpy(dst, src, n * ss);
        else
            table[s][d](dst, src, n);
        return;
    }
    /* swap in L1-sized chunks, then convert (complex swaps each float) */
    _Alignas(64) unsigned char tmp[4096];
    size_t chunk = sizeof tmp / ss;
    size_t es = s == TSR_C64 ? 4 : ss, ef = ss / es;
    const unsigned char *sp = src;
    unsigned char *dp = dst;
    while (n > 0) {
        size_t k = n < chunk ? n : chunk;
        memcpy(tmp, sp, k * ss);
        tsr__byteswap(tmp, es, k * ef);
        if (s == d)
            memcpy(dp, tmp, k * ss);
        else
            table[s][d](dp, tmp, k);
        sp += k * ss;
        dp += k * ds;
        n -= k;
    }
}

void tsr__store_f64(void *buf, tsr_dtype_t dt, size_t i, double v)
{
    switch (dt) {
    case TSR_U8: ((uint8_t *)buf)[i] = (uint8_t)v; break;
    case TSR_U16: ((uint16_t *)buf)[i] = (uint16_t)v; break;
    case TSR_U32: ((uint32_t *)buf)[i] = (uint32_t)v; break;
    case TSR_U64: ((uint64_t *)buf)[i] = (uint64_t)v; break;
    case TSR_I8: ((int8_t *)buf)[i] = (int8_t)v; break;
    case TSR_I16: ((int16_t *)buf)[i] = (int16_t)v; break;
    case TSR_I32: ((int32_t *)buf)[i] = (int32_t)v; break;
    case TSR_I64: ((int64_t *)buf)[i] = (int64_t)v; break;
    case TSR_F32: ((float *)buf)[i] = (float)v; break;
    case TSR_F64: ((double *)buf)[i] = v; break;
    case TSR_C64:
        ((c64_t *)buf)[i].re = (float)v;
        ((c64_t *)buf)[i].im = 0.0f;
        break;
    case TSR_BOOL: ((uint8_t *)buf)[i] = v != 0.0; break;
    default: break;
    }
}

double tsr__load_f64(const void *buf, tsr_dtype_t dt, size_t i)
{
    switch (dt) {
    case TSR_U8: return ((const uint8_t *)buf)[i];
    case TSR_U16: return ((const uint16_t *)buf)[i];
    case TSR_U32: return ((const uint32_t *)buf)[i];
    case TSR_U64: return (double)((const uint64_t *)buf)[i];
    case TSR_I8: return ((const int8_t *)buf)[i];
    case TSR_I16: return ((const int16_t *)buf)[i];
    case TSR_I32: return ((const int32_t *)buf)[i];
    case TSR_I64: return (double)((const int64_t *)buf)[i];
    case TSR_F32: return ((const float *)buf)[i];
    case TSR_F64: return ((const double *)buf)[i];
    case TSR_C64: {
        const c64_t *c = &((const c64_t *)buf)[i];
        return hypot(c->re, c->im);
    }
    case TSR_BOOL: return ((const uint8_t *)buf)[i];
    default: return 0.0;
    }
}

void tsr__fill_invalid(void *buf, tsr_dtype_t dt, size_t n)
{
    if (dt == TSR_F32) {
        float *p = buf;
        for (size_t i = 0; i < n; i++)
            p[i] = NAN;
    } else if (dt == TSR_F64) {
        double *p = buf;
        for (size_t i = 0; i < n; i++)
            p[i] = NAN;
    } else if (dt == TSR_C64) {
        float *p = buf;
        for (size_t i = 0; i < 2 * n; i++)
            p[i] = NAN;
    } else {
        memset(buf, 0, n * tsr_dtype_size(dt));
    }
}
