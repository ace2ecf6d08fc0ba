/*
 * test_core.c — src/core: the error table, dtypes (parsing, sizes, numpy
 * promotion, conversion with and without byte swapping), the value parsers,
 * parameter lists (key/value, JSON, schema checks), the context's options
 * and its allocator hooks with their byte accounting.
 *
 * Every expected value here is written by hand from the documentation
 * (tessera.h, numpy's rules), never taken from an earlier run of the code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* ---- helpers ----------------------------------------------------------- */

#define ASSERT_DBL_EQ(a, b)                                       \
    do {                                                          \
        double a_ = (a), b_ = (b);                                \
        if (!(a_ == b_))                                          \
            fail_msg("%s == %s: %.17g != %.17g", #a, #b, a_, b_); \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                        \
    do {                                                                    \
        const char *h_ = (hay), *n_ = (needle);                             \
        if (!h_ || !strstr(h_, n_))                                         \
            fail_msg("'%s' does not contain '%s'", h_ ? h_ : "(null)", n_); \
    } while (0)

/* ---- errors ------------------------------------------------------------ */

static void test_error_table(void **state)
{
    (void)state;
    /* Written out by hand: the pinned values and texts of tessera.h. */
    static const struct {
        int code;
        const char *name;
        const char *msg;
    } want[] = {
        {-1, "TSR_EINVAL", "invalid argument"},
        {-2, "TSR_ENOMEM", "out of memory"},
        {-3, "TSR_EIO", "input/output error"},
        {-4, "TSR_ECORRUPT", "malformed or truncated input"},
        {-5, "TSR_ENOTFOUND", "not found"},
        {-6, "TSR_EUNSUPPORTED", "not supported"},
        {-7, "TSR_ECANCELED", "canceled"},
        {-8, "TSR_ERANGE", "value out of range"},
        {-9, "TSR_ESTATE", "operation not valid in this state"},
        {-10, "TSR_EOVERFLOW", "size overflow"},
        {-11, "TSR_EUDF", "a user-defined function failed"},
        {-12, "TSR_EAGAIN", "not ready yet"},
    };
    /* The enum values are pinned. */
    assert_int_equal(TSR_EINVAL, -1);
    assert_int_equal(TSR_ENOMEM, -2);
    assert_int_equal(TSR_EIO, -3);
    assert_int_equal(TSR_ECORRUPT, -4);
    assert_int_equal(TSR_ENOTFOUND, -5);
    assert_int_equal(TSR_EUNSUPPORTED, -6);
    assert_int_equal(TSR_ECANCELED, -7);
    assert_int_equal(TSR_ERANGE, -8);
    assert_int_equal(TSR_ESTATE, -9);
    assert_int_equal(TSR_EOVERFLOW, -10);
    assert_int_equal(TSR_EUDF, -11);
    assert_int_equal(TSR_EAGAIN, -12);
    assert_int_equal(TSR_ERRNO_MIN, -12);

    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(tsr_err_name(want[i].code), want[i].name);
        assert_string_equal(tsr_strerror(want[i].code), want[i].msg);
    }
    /* Every code of the map is in the hand-written table above. */
    int seen = 0;
#define XX(nm, val, msg)                                          \
    do {                                                          \
        int found_ = 0;                                           \
        for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) \
            if (want[i].code == (val)) {                          \
                assert_string_equal(want[i].name, "TSR_" #nm);    \
                found_ = 1;                                       \
            }                                                     \
        assert_int_equal(found_, 1);                              \
        seen++;                                                   \
    } while (0);
    TSR_ERRNO_MAP(XX)
#undef XX
    assert_int_equal(seen, 12);

    assert_string_equal(tsr_err_name(0), "TSR_OK");
    assert_string_equal(tsr_strerror(0), "success");
    const int unknown[] = {1, 5, -13, -100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_string_equal(tsr_err_name(unknown[i]), "TSR_E?");
        assert_string_equal(tsr_strerror(unknown[i]), "unknown error");
    }
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(tsr_version_number(), 100); /* 0.1.0 */
    assert_string_equal(tsr_version_string(), "0.1.0");
}

/* ---- dtypes ------------------------------------------------------------ */

static void check_parse(const char *s, tsr_dtype_t want, bool want_be)
{
    tsr_dtype_t dt = (tsr_dtype_t)99;
    bool be = !want_be;
    int rc = tsr_dtype_parse(s, &dt, &be);
    if (rc != 0)
        fail_msg("tsr_dtype_parse('%s') = %d, expected 0", s, rc);
    if (dt != want || be != want_be)
        fail_msg("tsr_dtype_parse('%s'): got dtype %d be %d, expected %d be %d", s, (int)dt, be,
                 (int)want, want_be);
    /* big_endian may be NULL */
    dt = (tsr_dtype_t)99;
    assert_int_equal(tsr_dtype_parse(s, &dt, NULL), 0);
    assert_int_equal(dt, want);
}

static void test_dtype_parse(void **state)
{
    (void)state;
    /* numpy names */
    check_parse("uint8", TSR_U8, false);
    check_parse("uint16", TSR_U16, false);
    check_parse("uint32", TSR_U32, false);
    check_parse("uint64", TSR_U64, false);
    check_parse("int8", TSR_I8, false);
    check_parse("int16", TSR_I16, false);
    check_parse("int32", TSR_I32, false);
    check_parse("int64", TSR_I64, false);
    check_parse("float32", TSR_F32, false);
    check_parse("float64", TSR_F64, false);
    check_parse("complex64", TSR_C64, false);
    check_parse("bool", TSR_BOOL, false);
    /* short codes */
    check_parse("u1", TSR_U8, false);
    check_parse("u2", TSR_U16, false);
    check_parse("u4", TSR_U32, false);
    check_parse("u8", TSR_U64, false);
    check_parse("i1", TSR_I8, false);
    check_parse("i2", TSR_I16, false);
    check_parse("i4", TSR_I32, false);
    check_parse("i8", TSR_I64, false);
    check_parse("f4", TSR_F32, false);
    check_parse("f8", TSR_F64, false);
    check_parse("c8", TSR_C64, false);
    check_parse("b1", TSR_BOOL, false);
    check_parse("?", TSR_BOOL, false);
    check_parse("float", TSR_F64, false); /* numpy: np.dtype('float') is float64 */
    check_parse("double", TSR_F64, false);
    check_parse("single", TSR_F32, false);
    /* typestrings with byte order */
    check_parse("<u2", TSR_U16, false);
    check_parse(">u2", TSR_U16, true);
    check_parse("=u2", TSR_U16, false);
    check_parse("|u1", TSR_U8, false);
    check_parse("<f4", TSR_F32, false);
    check_parse(">f4", TSR_F32, true);
    check_parse(">f8", TSR_F64, true);
    check_parse(">c8", TSR_C64, true);
    check_parse(">i8", TSR_I64, true);
    check_parse("<i4", TSR_I32, false);
    check_parse("|b1", TSR_BOOL, false);
    check_parse(">uint16", TSR_U16, true);
    /* one-byte types have no byte order (numpy: np.dtype('>u1').byteorder
     * is '|'), so '>' on them is not big-endian data */
    check_parse(">u1", TSR_U8, false);
    check_parse(">i1", TSR_I8, false);

    /* rejects */
    const char *bad[] = {"u3",   "",       "float16", "f2",   "c16",   "complex128",
                         "<",    ">",      "<>u2",    "u2 ",  " u2",   "U2",
                         "uint", "int128", "f4x",     "<<f4", "object"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tsr_dtype_t dt = TSR_F64;
        bool be = true;
        int rc = tsr_dtype_parse(bad[i], &dt, &be);
        if (rc != TSR_EINVAL)
            fail_msg("tsr_dtype_parse('%s') = %d, expected TSR_EINVAL (%d)", bad[i], rc,
                     TSR_EINVAL);
        /* out-parameters untouched on failure */
        assert_int_equal(dt, TSR_F64);
        assert_true(be);
    }
    tsr_dtype_t dt;
    assert_int_equal(tsr_dtype_parse(NULL, &dt, NULL), TSR_EINVAL);
    assert_int_equal(tsr_dtype_parse("u2", NULL, NULL), TSR_EINVAL);
}

static void test_dtype_size_name(void **state)
{
    (void)state;
    static const struct {
        tsr_dtype_t dt;
        size_t size;
        const char *name;
    } want[] = {
        {TSR_U8, 1, "uint8"},    {TSR_U16, 2, "uint16"},    {TSR_U32, 4, "uint32"},
        {TSR_U64, 8, "uint64"},  {TSR_I8, 1, "int8"},       {TSR_I16, 2, "int16"},
        {TSR_I32, 4, "int32"},   {TSR_I64, 8, "int64"},     {TSR_F32, 4, "float32"},
        {TSR_F64, 8, "float64"}, {TSR_C64, 8, "complex64"}, {TSR_BOOL, 1, "bool"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(tsr_dtype_size(want[i].dt), want[i].size);
        assert_string_equal(tsr_dtype_name(want[i].dt), want[i].name);
    }
    /* stable values */
    assert_int_equal(TSR_U8, 0);
    assert_int_equal(TSR_C64, 10);
    assert_int_equal(TSR_BOOL, 11);
    assert_int_equal(tsr_dtype_size(TSR_DTYPE_NATIVE), 0);
    assert_int_equal(tsr_dtype_size(TSR_DTYPE_COUNT), 0);
    assert_int_equal(tsr_dtype_size((tsr_dtype_t)100), 0);
    assert_string_equal(tsr_dtype_name(TSR_DTYPE_NATIVE), "invalid");
    assert_string_equal(tsr_dtype_name((tsr_dtype_t)12), "invalid");
}

static void check_promote(tsr_dtype_t a, tsr_dtype_t b, tsr_dtype_t want)
{
    tsr_dtype_t r1 = tsr__dtype_promote(a, b), r2 = tsr__dtype_promote(b, a);
    if (r1 != want || r2 != want)
        fail_msg("promote(%s, %s) = %s / promote(%s, %s) = %s, expected %s (numpy "
                 "result_type)",
                 tsr_dtype_name(a), tsr_dtype_name(b), tsr_dtype_name(r1), tsr_dtype_name(b),
                 tsr_dtype_name(a), tsr_dtype_name(r2), tsr_dtype_name(want));
}

static void test_dtype_promote(void **state)
{
    (void)state;
    /* numpy.result_type, written out by hand */
    check_promote(TSR_U8, TSR_I8, TSR_I16);
    check_promote(TSR_U16, TSR_I16, TSR_I32);
    check_promote(TSR_U32, TSR_I32, TSR_I64);
    check_promote(TSR_U64, TSR_I64, TSR_F64);
    check_promote(TSR_U8, TSR_I16, TSR_I16);
    check_promote(TSR_U16, TSR_I8, TSR_I32);
    check_promote(TSR_U32, TSR_I8, TSR_I64);
    check_promote(TSR_U64, TSR_I8, TSR_F64);
    check_promote(TSR_U8, TSR_I64, TSR_I64);
    check_promote(TSR_U8, TSR_U16, TSR_U16);
    check_promote(TSR_U32, TSR_U64, TSR_U64);
    check_promote(TSR_I8, TSR_I32, TSR_I32);
    check_promote(TSR_I16, TSR_I64, TSR_I64);
    check_promote(TSR_U8, TSR_F32, TSR_F32);
    check_promote(TSR_I8, TSR_F32, TSR_F32);
    check_promote(TSR_U16, TSR_F32, TSR_F32);
    check_promote(TSR_I16, TSR_F32, TSR_F32);
    check_promote(TSR_I32, TSR_F32, TSR_F64);
    check_promote(TSR_U32, TSR_F32, TSR_F64);
    check_promote(TSR_I64, TSR_F32, TSR_F64);
    check_promote(TSR_U64, TSR_F32, TSR_F64);
    check_promote(TSR_F32, TSR_F64, TSR_F64);
    check_promote(TSR_U8, TSR_F64, TSR_F64);
    check_promote(TSR_I64, TSR_F64, TSR_F64);
    check_promote(TSR_U64, TSR_F64, TSR_F64);
    /* complex64: numpy gives complex128 with float64 and with integers
     * wider than 16 bit; we have no complex128 and stay complex64
     * (documented in dtype.c). */
    check_promote(TSR_C64, TSR_F64, TSR_C64);
    check_promote(TSR_C64, TSR_F32, TSR_C64);
    check_promote(TSR_C64, TSR_U8, TSR_C64);
    check_promote(TSR_C64, TSR_I16, TSR_C64);
    check_promote(TSR_C64, TSR_I32, TSR_C64);
    /* bool + x = x, x + x = x */
    for (int t = 0; t < TSR_DTYPE_COUNT; t++) {
        check_promote(TSR_BOOL, (tsr_dtype_t)t, (tsr_dtype_t)t);
        check_promote((tsr_dtype_t)t, (tsr_dtype_t)t, (tsr_dtype_t)t);
    }
}

/* ---- conversion -------------------------------------------------------- */

static void test_convert_plain(void **state)
{
    (void)state;
    {
        const uint8_t s[4] = {0, 1, 128, 255};
        float d[4];
        tsr__convert(d, TSR_F32, s, TSR_U8, false, 4);
        ASSERT_DBL_EQ(d[0], 0.0);
        ASSERT_DBL_EQ(d[1], 1.0);
        ASSERT_DBL_EQ(d[2], 128.0);
        ASSERT_DBL_EQ(d[3], 255.0);
    }
    {
        const int16_t s[4] = {-32768, -1, 0, 32767};
        double d[4];
        tsr__convert(d, TSR_F64, s, TSR_I16, false, 4);
        ASSERT_DBL_EQ(d[0], -32768.0);
        ASSERT_DBL_EQ(d[1], -1.0);
        ASSERT_DBL_EQ(d[2], 0.0);
        ASSERT_DBL_EQ(d[3], 32767.0);
    }
    {
        /* float → integer truncates toward zero (C cast) */
        const float s[4] = {1.9f, -1.9f, 100.5f, 0.25f};
        int32_t d[4];
        tsr__convert(d, TSR_I32, s, TSR_F32, false, 4);
        assert_int_equal(d[0], 1);
        assert_int_equal(d[1], -1);
        assert_int_equal(d[2], 100);
        assert_int_equal(d[3], 0);
    }
    {
        const double s[2] = {3.7, 254.99};
        uint8_t d[2];
        tsr__convert(d, TSR_U8, s, TSR_F64, false, 2);
        assert_int_equal(d[0], 3);
        assert_int_equal(d[1], 254);
    }
    {
        const int8_t s[3] = {-128, -5, 127};
        int64_t d[3];
        tsr__convert(d, TSR_I64, s, TSR_I8, false, 3);
        assert_int_equal(d[0], -128);
        assert_int_equal(d[1], -5);
        assert_int_equal(d[2], 127);
    }
    {
        const uint32_t s[2] = {4294967295u, 7};
        double d[2];
        tsr__convert(d, TSR_F64, s, TSR_U32, false, 2);
        ASSERT_DBL_EQ(d[0], 4294967295.0);
        ASSERT_DBL_EQ(d[1], 7.0);
    }
    {
        /* complex → real: the real part */
        const float s[6] = {3.5f, 4.0f, -1.0f, 2.0f, 0.0f, -9.0f};
        double d[3];
        tsr__convert(d, TSR_F64, s, TSR_C64, false, 3);
        ASSERT_DBL_EQ(d[0], 3.5);
        ASSERT_DBL_EQ(d[1], -1.0);
        ASSERT_DBL_EQ(d[2], 0.0);
        float f[3];
        tsr__convert(f, TSR_F32, s, TSR_C64, false, 3);
        ASSERT_DBL_EQ(f[0], 3.5);
        ASSERT_DBL_EQ(f[1], -1.0);
        ASSERT_DBL_EQ(f[2], 0.0);
        int32_t i[3];
        tsr__convert(i, TSR_I32, s, TSR_C64, false, 3);
        assert_int_equal(i[0], 3);
        assert_int_equal(i[1], -1);
        assert_int_equal(i[2], 0);
        /* complex → bool: nonzero modulus */
        uint8_t b[3];
        tsr__convert(b, TSR_BOOL, s, TSR_C64, false, 3);
        assert_int_equal(b[0], 1);
        assert_int_equal(b[1], 1);
        assert_int_equal(b[2], 1); /* (0, -9) is nonzero */
    }
    {
        /* real → complex: imaginary 0 */
        const float s[2] = {2.5f, -7.0f};
        float d[4] = {9, 9, 9, 9};
        tsr__convert(d, TSR_C64, s, TSR_F32, false, 2);
        ASSERT_DBL_EQ(d[0], 2.5);
        ASSERT_DBL_EQ(d[1], 0.0);
        ASSERT_DBL_EQ(d[2], -7.0);
        ASSERT_DBL_EQ(d[3], 0.0);
    }
    {
        /* to bool: != 0 */
        const float s[4] = {0.0f, 0.5f, -3.0f, 0.0f};
        uint8_t d[4];
        tsr__convert(d, TSR_BOOL, s, TSR_F32, false, 4);
        assert_int_equal(d[0], 0);
        assert_int_equal(d[1], 1);
        assert_int_equal(d[2], 1);
        assert_int_equal(d[3], 0);
        const uint16_t u[3] = {0, 256, 2};
        tsr__convert(d, TSR_BOOL, u, TSR_U16, false, 3);
        assert_int_equal(d[0], 0);
        assert_int_equal(d[1], 1); /* not truncated to the low byte */
        assert_int_equal(d[2], 1);
    }
    {
        /* bool → real */
        const uint8_t s[2] = {0, 1};
        double d[2];
        tsr__convert(d, TSR_F64, s, TSR_BOOL, false, 2);
        ASSERT_DBL_EQ(d[0], 0.0);
        ASSERT_DBL_EQ(d[1], 1.0);
    }
    {
        /* same type: a copy; swap on one-byte types changes nothing */
        const uint8_t s[3] = {1, 2, 3};
        uint8_t d[3];
        tsr__convert(d, TSR_U8, s, TSR_U8, true, 3);
        assert_memory_equal(d, s, 3);
        int8_t e[3];
        tsr__convert(e, TSR_I8, s, TSR_U8, true, 3);
        assert_int_equal(e[0], 1);
        assert_int_equal(e[2], 3);
    }
}

static void test_convert_swap(void **state)
{
    (void)state;
    {
        /* big-endian u16 0x0102 and 0xff00 */
        const uint8_t s[4] = {0x01, 0x02, 0xff, 0x00};
        uint16_t d[2];
        tsr__convert(d, TSR_U16, s, TSR_U16, true, 2);
        assert_int_equal(d[0], 0x0102);
        assert_int_equal(d[1], 0xff00);
        float f[2];
        tsr__convert(f, TSR_F32, s, TSR_U16, true, 2);
        ASSERT_DBL_EQ(f[0], 258.0);
        ASSERT_DBL_EQ(f[1], 65280.0);
        int32_t i[2];
        tsr__convert(i, TSR_I32, s, TSR_U16, true, 2);
        assert_int_equal(i[0], 258);
        assert_int_equal(i[1], 65280);
    }
    {
        /* big-endian i16 -2 = 0xfffe */
        const uint8_t s[2] = {0xff, 0xfe};
        double d;
        tsr__convert(&d, TSR_F64, s, TSR_I16, true, 1);
        ASSERT_DBL_EQ(d, -2.0);
    }
    {
        /* big-endian f32: 1.5 = 0x3fc00000, -2.0 = 0xc0000000 */
        const uint8_t s[8] = {0x3f, 0xc0, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00};
        float f[2];
        tsr__convert(f, TSR_F32, s, TSR_F32, true, 2);
        ASSERT_DBL_EQ(f[0], 1.5);
        ASSERT_DBL_EQ(f[1], -2.0);
        double d[2];
        tsr__convert(d, TSR_F64, s, TSR_F32, true, 2);
        ASSERT_DBL_EQ(d[0], 1.5);
        ASSERT_DBL_EQ(d[1], -2.0);
    }
    {
        /* big-endian f64: 1.5 = 0x3ff8000000000000, -0.25 = 0xbfd0000000000000 */
        const uint8_t s[16] = {0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0xbf, 0xd0, 0, 0, 0, 0, 0, 0};
        double d[2];
        tsr__convert(d, TSR_F64, s, TSR_F64, true, 2);
        ASSERT_DBL_EQ(d[0], 1.5);
        ASSERT_DBL_EQ(d[1], -0.25);
        float f[2];
        tsr__convert(f, TSR_F32, s, TSR_F64, true, 2);
        ASSERT_DBL_EQ(f[0], 1.5);
        ASSERT_DBL_EQ(f[1], -0.25);
    }
    {
        /* big-endian complex64 (1.5, -2.0): each float swapped on its own */
        const uint8_t s[8] = {0x3f, 0xc0, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x00};
        float c[2];
        tsr__convert(c, TSR_C64, s, TSR_C64, true, 1);
        ASSERT_DBL_EQ(c[0], 1.5);
        ASSERT_DBL_EQ(c[1], -2.0);
        float re;
        tsr__convert(&re, TSR_F32, s, TSR_C64, true, 1);
        ASSERT_DBL_EQ(re, 1.5);
        double red;
        tsr__convert(&red, TSR_F64, s, TSR_C64, true, 1);
        ASSERT_DBL_EQ(red, 1.5);
    }
    {
        /* big-endian u32 and u64 */
        const uint8_t s4[4] = {0x12, 0x34, 0x56, 0x78};
        uint32_t u4;
        tsr__convert(&u4, TSR_U32, s4, TSR_U32, true, 1);
        assert_int_equal(u4, 0x12345678u);
        const uint8_t s8[8] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08};
        uint64_t u8;
        tsr__convert(&u8, TSR_U64, s8, TSR_U64, true, 1);
        assert_true(u8 == 0x0102030405060708ull);
    }
}

/* Longer than the converter's internal chunk, so that chunk boundaries are
 * crossed: every element is checked against its own value. */
static void test_convert_swap_long(void **state)
{
    (void)state;
    enum { N = 5000 };
    uint8_t *s16 = malloc(2 * N), *s64 = malloc(8 * N);
    float *f = malloc(sizeof(float) * N);
    double *d = malloc(sizeof(double) * N);
    assert_non_null(s16);
    assert_non_null(s64);
    assert_non_null(f);
    assert_non_null(d);
    for (int i = 0; i < N; i++) {
        uint16_t v = (uint16_t)(i * 13 + 7);
        s16[2 * i] = (uint8_t)(v >> 8); /* big-endian by hand */
        s16[2 * i + 1] = (uint8_t)(v & 0xff);
        double x = i * 0.5 - 1000.0;
        uint64_t bits;
        memcpy(&bits, &x, 8);
        for (int b = 0; b < 8; b++)
            s64[8 * i + b] = (uint8_t)(bits >> (56 - 8 * b));
    }
    tsr__convert(f, TSR_F32, s16, TSR_U16, true, N);
    for (int i = 0; i < N; i++)
        if (f[i] != (float)(uint16_t)(i * 13 + 7))
            fail_msg("u16 BE element %d: %g != %u", i, f[i], (unsigned)(uint16_t)(i * 13 + 7));
    tsr__convert(d, TSR_F64, s64, TSR_F64, true, N);
    for (int i = 0; i < N; i++)
        if (d[i] != i * 0.5 - 1000.0)
            fail_msg("f64 BE element %d: %.17g != %.17g", i, d[i], i * 0.5 - 1000.0);
    tsr__convert(f, TSR_F32, s64, TSR_F64, true, N);
    for (int i = 0; i < N; i++)
        if (f[i] != (float)(i * 0.5 - 1000.0))
            fail_msg("f64 BE → f32 element %d: %g", i, f[i]);
    free(s16);
    free(s64);
    free(f);
    free(d);
}

static void test_byteswap_and_helpers(void **state)
{
    (void)state;
    uint16_t a[2] = {0x1234, 0xabcd};
    tsr__byteswap(a, 2, 2);
    assert_int_equal(a[0], 0x3412);
    assert_int_equal(a[1], 0xcdab);
    uint32_t b = 0x11223344u;
    tsr__byteswap(&b, 4, 1);
    assert_int_equal(b, 0x44332211u);
    uint64_t c = 0x0102030405060708ull;
    tsr__byteswap(&c, 8, 1);
    assert_true(c == 0x0807060504030201ull);

    float fb[3] = {1, 2, 3};
    tsr__fill_invalid(fb, TSR_F32, 2);
    assert_true(isnan(fb[0]) && isnan(fb[1]));
    ASSERT_DBL_EQ(fb[2], 3.0);
    int32_t ib[2] = {5, 6};
    tsr__fill_invalid(ib, TSR_I32, 1);
    assert_int_equal(ib[0], 0);
    assert_int_equal(ib[1], 6);
    float cb[4] = {1, 1, 1, 1};
    tsr__fill_invalid(cb, TSR_C64, 1);
    assert_true(isnan(cb[0]) && isnan(cb[1]));
    ASSERT_DBL_EQ(cb[2], 1.0);

    int16_t s[2];
    tsr__store_f64(s, TSR_I16, 1, -12.0);
    ASSERT_DBL_EQ(tsr__load_f64(s, TSR_I16, 1), -12.0);
    float cc[2] = {3.0f, 4.0f};
    ASSERT_DBL_EQ(tsr__load_f64(cc, TSR_C64, 0), 5.0); /* modulus */
}

/* ---- value parsers ----------------------------------------------------- */

static void test_parse_shape(void **state)
{
    (void)state;
    char err[256];
    tsr_shape_t s;
    static const struct {
        const char *text;
        int ndim;
        int64_t dims[8];
    } ok[] = {
        {"4,5", 2, {4, 5}},
        {"(4, 5)", 2, {4, 5}},
        {"[3]", 1, {3}},
        {"7", 1, {7}},
        {" 2 , 3 , 4 ", 3, {2, 3, 4}},
        {"(4,)", 1, {4}},
        {"1,2,3,4,5,6,7,8", 8, {1, 2, 3, 4, 5, 6, 7, 8}},
        {"1000000,1000", 2, {1000000, 1000}},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        memset(&s, 0xff, sizeof s);
        int rc = tsr__parse_shape(ok[i].text, &s, err, sizeof err, "nav_shape");
        if (rc)
            fail_msg("parse_shape('%s') = %d: %s", ok[i].text, rc, err);
        assert_int_equal(s.ndim, ok[i].ndim);
        for (int d = 0; d < ok[i].ndim; d++)
            assert_int_equal(s.dims[d], ok[i].dims[d]);
    }
    const char *bad[] = {"",    "()",   "0,5",  "-1",  "4.5",
                         "a,b", "4,,5", "4 5",  "4;5", "1,2,3,4,5,6,7,8,9",
                         "nan", "inf",  "1e300"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        tsr_shape_t keep = {.ndim = 1, .dims = {42}};
        s = keep;
        int rc = tsr__parse_shape(bad[i], &s, err, sizeof err, "sig_shape");
        if (rc >= 0)
            fail_msg("parse_shape('%s') accepted it", bad[i]);
        ASSERT_CONTAINS(err, "sig_shape");
        assert_int_equal(s.ndim, 1); /* untouched */
        assert_int_equal(s.dims[0], 42);
    }
    assert_true(tsr__parse_shape(NULL, &s, err, sizeof err, "x") < 0);
    /* product overflows int64: 2^32 · 2^32 */
    int rc = tsr__parse_shape("4294967296,4294967296", &s, err, sizeof err, "nav_shape");
    assert_int_equal(rc, TSR_EOVERFLOW);
    ASSERT_CONTAINS(err, "nav_shape");
}

static void test_parse_scalars(void **state)
{
    (void)state;
    char err[256];
    int64_t i = 0;
    assert_int_equal(tsr__parse_i64("42", &i, err, sizeof err, "n"), 0);
    assert_int_equal(i, 42);
    assert_int_equal(tsr__parse_i64(" -7 ", &i, err, sizeof err, "n"), 0);
    assert_int_equal(i, -7);
    assert_int_equal(tsr__parse_i64("9223372036854775807", &i, err, sizeof err, "n"), 0);
    assert_true(i == INT64_MAX);
    assert_int_equal(tsr__parse_i64("-9223372036854775808", &i, err, sizeof err, "n"), 0);
    assert_true(i == INT64_MIN);
    const char *bad_i[] = {"",    "  ",  "1.5", "12abc", "0x10", "9223372036854775808",
                           "abc", "1e3", "--1"};
    for (size_t k = 0; k < sizeof bad_i / sizeof bad_i[0]; k++) {
        err[0] = 0;
        i = 99;
        int rc = tsr__parse_i64(bad_i[k], &i, err, sizeof err, "sync_offset");
        if (rc != TSR_EINVAL)
            fail_msg("parse_i64('%s') = %d, expected TSR_EINVAL", bad_i[k], rc);
        assert_int_equal(i, 99);
        ASSERT_CONTAINS(err, "sync_offset");
    }
    assert_int_equal(tsr__parse_i64(NULL, &i, err, sizeof err, "offset"), TSR_EINVAL);
    ASSERT_CONTAINS(err, "offset");

    double d = 0;
    assert_int_equal(tsr__parse_f64("1.5", &d, err, sizeof err, "r"), 0);
    ASSERT_DBL_EQ(d, 1.5);
    assert_int_equal(tsr__parse_f64(" -2e3 ", &d, err, sizeof err, "r"), 0);
    ASSERT_DBL_EQ(d, -2000.0);
    assert_int_equal(tsr__parse_f64("7", &d, err, sizeof err, "r"), 0);
    ASSERT_DBL_EQ(d, 7.0);
    const char *bad_f[] = {"", "abc", "nan", "inf", "-inf", "1e400", "1.5x", "1,5"};
    for (size_t k = 0; k < sizeof bad_f / sizeof bad_f[0]; k++) {
        err[0] = 0;
        d = 99;
        int rc = tsr__parse_f64(bad_f[k], &d, err, sizeof err, "radius");
        if (rc != TSR_EINVAL)
            fail_msg("parse_f64('%s') = %d, expected TSR_EINVAL", bad_f[k], rc);
        ASSERT_DBL_EQ(d, 99.0);
        ASSERT_CONTAINS(err, "radius");
    }

    bool b;
    const char *yes[] = {"1", "true", "TRUE", "True", "yes", "on"};
    const char *no[] = {"0", "false", "False", "no", "No", "off"};
    for (size_t k = 0; k < sizeof yes / sizeof yes[0]; k++) {
        b = false;
        assert_int_equal(tsr__parse_bool(yes[k], &b, err, sizeof err, "log"), 0);
        assert_true(b);
    }
    for (size_t k = 0; k < sizeof no / sizeof no[0]; k++) {
        b = true;
        assert_int_equal(tsr__parse_bool(no[k], &b, err, sizeof err, "log"), 0);
        assert_false(b);
    }
    const char *bad_b[] = {"2", "", "maybe", "tru", "yess"};
    for (size_t k = 0; k < sizeof bad_b / sizeof bad_b[0]; k++) {
        err[0] = 0;
        int rc = tsr__parse_bool(bad_b[k], &b, err, sizeof err, "flip_y");
        if (rc != TSR_EINVAL)
            fail_msg("parse_bool('%s') = %d, expected TSR_EINVAL", bad_b[k], rc);
        ASSERT_CONTAINS(err, "flip_y");
    }
    assert_int_equal(tsr__parse_bool(NULL, &b, err, sizeof err, "flip_y"), TSR_EINVAL);

    double v[4];
    int n = 0;
    assert_int_equal(tsr__parse_f64_list("1, 2.5,-3", v, 4, &n, err, sizeof err, "c"), 0);
    assert_int_equal(n, 3);
    ASSERT_DBL_EQ(v[0], 1.0);
    ASSERT_DBL_EQ(v[1], 2.5);
    ASSERT_DBL_EQ(v[2], -3.0);
    assert_int_equal(tsr__parse_f64_list("1,2,3,4,5", v, 4, &n, err, sizeof err, "c"), TSR_EINVAL);
}

/* ---- parameters -------------------------------------------------------- */

static void test_params_kv(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr_params_t *p;
    assert_int_equal(tsr_params_new(ctx, &p), 0);
    assert_int_equal(tsr_params_count(p), 0);
    assert_int_equal(tsr_params_add(p, "nav_shape", "4,5"), 0);
    assert_int_equal(tsr_params_add_kv(p, "dtype=>u2"), 0);
    assert_int_equal(tsr_params_add_kv(p, "expr=a=b"), 0); /* split at the first '=' */
    assert_int_equal(tsr_params_add_kv(p, "empty="), 0);
    assert_int_equal(tsr_params_add(p, "nav_shape", "6,7"), 0); /* last one wins */
    assert_int_equal(tsr_params_count(p), 5);
    assert_string_equal(tsr_params_get(p, "nav_shape"), "6,7");
    assert_string_equal(tsr_params_get(p, "dtype"), ">u2");
    assert_string_equal(tsr_params_get(p, "expr"), "a=b");
    assert_string_equal(tsr_params_get(p, "empty"), "");
    assert_null(tsr_params_get(p, "nope"));
    const char *k, *v;
    assert_int_equal(tsr_params_at(p, 0, &k, &v), 0);
    assert_string_equal(k, "nav_shape");
    assert_string_equal(v, "4,5");
    assert_int_equal(tsr_params_at(p, 2, &k, &v), 0);
    assert_string_equal(k, "expr");
    assert_string_equal(v, "a=b");
    assert_true(tsr_params_at(p, 5, &k, &v) < 0);

    /* rejects, with a message */
    assert_int_equal(tsr_params_add(p, "", "x"), TSR_EINVAL);
    assert_int_equal(tsr_params_add_kv(p, "=x"), TSR_EINVAL);
    assert_int_equal(tsr_params_add_kv(p, "novalue"), TSR_EINVAL);
    ASSERT_CONTAINS(tsr_ctx_errmsg(ctx), "novalue");
    assert_int_equal(tsr_params_count(p), 5);

    /* many entries (growth) keep their order */
    for (int i = 0; i < 40; i++) {
        char key[16], val[16];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(val, sizeof val, "%d", i * i);
        assert_int_equal(tsr_params_add(p, key, val), 0);
    }
    assert_int_equal(tsr_params_count(p), 45);
    assert_int_equal(tsr_params_at(p, 5 + 39, &k, &v), 0);
    assert_string_equal(k, "k39");
    assert_string_equal(v, "1521");
    assert_string_equal(tsr_params_get(p, "k17"), "289");
    tsr_params_free(p);
    tsr_params_free(NULL);
    size_t cur;
    tsr_ctx_memory(ctx, &cur, NULL);
    assert_int_equal(cur, 0);
    tsr_ctx_free(ctx);
}

/* Count the entries with key, and the i-th such value. */
static int count_key(const tsr_params_t *p, const char *key, int which, const char **val)
{
    int n = 0;
    for (size_t i = 0; i < tsr_params_count(p); i++) {
        const char *k, *v;
        assert_int_equal(tsr_params_at(p, i, &k, &v), 0);
        if (strcmp(k, key) == 0) {
            if (n == which && val)
                *val = v;
            n++;
        }
    }
    return n;
}

static void test_params_json(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr_params_t *p;
    assert_int_equal(tsr_params_new(ctx, &p), 0);
    int rc = tsr_params_add_json(
        p, "{\"nav_shape\": [4, 5], \"mask\": [\"disk:1,2,3\", \"ring:4,5,1,2\"], "
           "\"r\": 2.5, \"n\": 3, \"flip_y\": true, \"other\": false, \"name\": \"x y\", "
           "\"c\": [1.5, -2, 0.25]}");
    assert_int_equal(rc, 0);
    assert_string_equal(tsr_params_get(p, "nav_shape"), "4,5");
    const char *v = NULL;
    assert_int_equal(count_key(p, "mask", 0, &v), 2);
    assert_string_equal(v, "disk:1,2,3");
    assert_int_equal(count_key(p, "mask", 1, &v), 2);
    assert_string_equal(v, "ring:4,5,1,2");
    /* numbers as their text: check by value, the text form is free */
    double r;
    char err[128];
    assert_int_equal(tsr__parse_f64(tsr_params_get(p, "r"), &r, err, sizeof err, "r"), 0);
    ASSERT_DBL_EQ(r, 2.5);
    assert_string_equal(tsr_params_get(p, "n"), "3");
    assert_string_equal(tsr_params_get(p, "flip_y"), "true");
    assert_string_equal(tsr_params_get(p, "other"), "false");
    assert_string_equal(tsr_params_get(p, "name"), "x y");
    double cv[4];
    int nc = 0;
    assert_int_equal(tsr__parse_f64_list(tsr_params_get(p, "c"), cv, 4, &nc, err, sizeof err, "c"),
                     0);
    assert_int_equal(nc, 3);
    ASSERT_DBL_EQ(cv[0], 1.5);
    ASSERT_DBL_EQ(cv[1], -2.0);
    ASSERT_DBL_EQ(cv[2], 0.25);
    assert_int_equal(count_key(p, "nav_shape", 0, NULL), 1);
    assert_int_equal(tsr_params_count(p),
                     9); /* nav_shape, 2 × mask, r, n, flip_y, other, name, c */

    /* malformed: EINVAL and a message on the context */
    static const struct {
        const char *json;
        const char *in_msg;
    } bad[] = {
        {"{bad", "JSON"},
        {"", "JSON"},
        {"[1, 2]", "object"},
        {"{\"a\": {\"b\": 1}}", "'a'"},
        {"{\"a\": null}", "'a'"},
        {"{\"a\": [1, \"x\"]}", "'a'"},
        {"{\"a\": [[1, 2]]}", "'a'"},
        {"{\"a\": 1,}", "JSON"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        tsr_params_t *q;
        assert_int_equal(tsr_params_new(ctx, &q), 0);
        tsr__ctx_seterr(ctx, 0, "%s", "");
        rc = tsr_params_add_json(q, bad[i].json);
        if (rc != TSR_EINVAL)
            fail_msg("add_json('%s') = %d, expected TSR_EINVAL", bad[i].json, rc);
        if (!tsr_ctx_errmsg(ctx)[0])
            fail_msg("add_json('%s'): no message on the context", bad[i].json);
        ASSERT_CONTAINS(tsr_ctx_errmsg(ctx), bad[i].in_msg);
        tsr_params_free(q);
    }
    tsr_params_free(p);
    size_t cur;
    tsr_ctx_memory(ctx, &cur, NULL);
    assert_int_equal(cur, 0);
    tsr_ctx_free(ctx);
}

static void test_params_check(void **state)
{
    (void)state;
    static const tsr_param_def_t defs[] = {
        {"cx", "float", NULL, "centre x", false},
        {"r", "float", "3", "radius", false},
        {"mask", "string", "", "masks", true},
    };
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr_params_t *p;
    char err[512];
    assert_int_equal(tsr_params_new(ctx, &p), 0);

    /* missing required */
    err[0] = 0;
    assert_int_equal(tsr__params_check(p, defs, 3, "UDF disk", err, sizeof err), TSR_EINVAL);
    ASSERT_CONTAINS(err, "UDF disk");
    ASSERT_CONTAINS(err, "missing required parameter 'cx'");
    /* NULL params: same */
    assert_int_equal(tsr__params_check(NULL, defs, 3, "UDF disk", err, sizeof err), TSR_EINVAL);
    ASSERT_CONTAINS(err, "'cx'");

    assert_int_equal(tsr_params_add(p, "cx", "1"), 0);
    assert_int_equal(tsr_params_add(p, "mask", "a"), 0);
    assert_int_equal(tsr_params_add(p, "mask", "b"), 0);
    assert_int_equal(tsr__params_check(p, defs, 3, "UDF disk", err, sizeof err), 0);
    /* defaults */
    assert_string_equal(tsr__params_value(p, defs, 3, "r"), "3");
    assert_string_equal(tsr__params_value(p, defs, 3, "cx"), "1");
    assert_null(tsr__params_value(p, defs, 3, "nope"));

    /* unknown key: the message names the owner, the key and the known ones */
    assert_int_equal(tsr_params_add(p, "radius", "4"), 0);
    err[0] = 0;
    assert_int_equal(tsr__params_check(p, defs, 3, "UDF disk", err, sizeof err), TSR_EINVAL);
    ASSERT_CONTAINS(err, "UDF disk");
    ASSERT_CONTAINS(err, "unknown parameter 'radius'");
    ASSERT_CONTAINS(err, "cx");
    ASSERT_CONTAINS(err, "mask");
    /* a schema with no parameters */
    assert_int_equal(tsr__params_check(p, NULL, 0, "UDF sum", err, sizeof err), TSR_EINVAL);
    ASSERT_CONTAINS(err, "UDF sum");
    ASSERT_CONTAINS(err, "'cx'");
    tsr_params_free(p);
    tsr_ctx_free(ctx);
}

/* ---- context and allocator --------------------------------------------- */

typedef struct counting {
    atomic_long live;  /* blocks held */
    atomic_long calls; /* malloc + realloc calls */
    long fail_at;      /* fail this call (1-based); 0 = never */
    int magic;
} counting_t;

static void *c_malloc(void *o, size_t n)
{
    counting_t *c = o;
    assert_int_equal(c->magic, 0x5eed);
    long k = atomic_fetch_add(&c->calls, 1) + 1;
    if (c->fail_at && k == c->fail_at)
        return NULL;
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&c->live, 1);
    return p;
}
static void *c_realloc(void *o, void *ptr, size_t n)
{
    counting_t *c = o;
    long k = atomic_fetch_add(&c->calls, 1) + 1;
    if (c->fail_at && k == c->fail_at)
        return NULL;
    void *p = realloc(ptr, n);
    if (p && !ptr)
        atomic_fetch_add(&c->live, 1);
    return p;
}
static void c_free(void *o, void *p)
{
    counting_t *c = o;
    if (p)
        atomic_fetch_sub(&c->live, 1);
    free(p);
}

static void test_ctx_allocator(void **state)
{
    (void)state;
    counting_t cnt = {.magic = 0x5eed};
    atomic_init(&cnt.live, 0);
    atomic_init(&cnt.calls, 0);
    tsr_allocator_t a = {c_malloc, c_realloc, c_free, &cnt};
    tsr_ctx_t *ctx = NULL;
    assert_int_equal(tsr_ctx_new_with_allocator(&a, &ctx), 0);
    assert_non_null(ctx);
    assert_int_equal(atomic_load(&cnt.live), 1); /* the context itself */

    size_t cur = 1, peak = 1;
    tsr_ctx_memory(ctx, &cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(peak, 0);

    void *p1 = tsr_alloc(ctx, 100);
    assert_non_null(p1);
    memset(p1, 1, 100);
    tsr_ctx_memory(ctx, &cur, &peak);
    assert_int_equal(cur, 100);
    assert_int_equal(peak, 100);
    void *p2 = tsr_alloc(ctx, 50);
    assert_non_null(p2);
    tsr_ctx_memory(ctx, &cur, &peak);
    assert_int_equal(cur, 150);
    assert_int_equal(peak, 150);
    assert_int_equal(atomic_load(&cnt.live), 3);
    tsr_free(ctx, p1);
    tsr_ctx_memory(ctx, &cur, &peak);
    assert_int_equal(cur, 50);
    assert_int_equal(peak, 150);
    void *p3 = tsr_alloc(ctx, 30);
    tsr_ctx_memory(ctx, &cur, &peak);
    assert_int_equal(cur, 80);
    assert_int_equal(peak, 150);
    tsr_free(ctx, p2);
    tsr_free(ctx, p3);
    tsr_free(ctx, NULL);
    tsr_ctx_memory(ctx, &cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(peak, 150);
    assert_int_equal(atomic_load(&cnt.live), 1);

    /* internal allocations (params) go through the hooks as well, and
     * realloc keeps the accounting exact */
    long calls0 = atomic_load(&cnt.calls);
    tsr_params_t *p;
    assert_int_equal(tsr_params_new(ctx, &p), 0);
    for (int i = 0; i < 20; i++)
        assert_int_equal(tsr_params_add(p, "key", "value"), 0);
    assert_true(atomic_load(&cnt.calls) > calls0);
    assert_true(atomic_load(&cnt.live) > 1);
    tsr_ctx_memory(ctx, &cur, &peak);
    assert_true(cur > 0);
    tsr_params_free(p);
    tsr_ctx_memory(ctx, &cur, NULL);
    assert_int_equal(cur, 0);
    assert_int_equal(atomic_load(&cnt.live), 1);

    /* aligned internal blocks are 64-byte aligned and accounted */
    void *al = tsr__malloc_aligned(ctx, 1000);
    assert_non_null(al);
    assert_int_equal((uintptr_t)al % 64, 0);
    tsr_ctx_memory(ctx, &cur, NULL);
    assert_true(cur >= 1000);
    tsr__free_aligned(ctx, al);
    tsr_ctx_memory(ctx, &cur, NULL);
    assert_int_equal(cur, 0);

    tsr_ctx_free(ctx);
    assert_int_equal(atomic_load(&cnt.live), 0);

    /* a failing hook: the context cannot be made */
    cnt.fail_at = atomic_load(&cnt.calls) + 1;
    ctx = (tsr_ctx_t *)&cnt; /* must stay untouched */
    assert_int_equal(tsr_ctx_new_with_allocator(&a, &ctx), TSR_ENOMEM);
    assert_ptr_equal(ctx, (tsr_ctx_t *)&cnt);
    assert_int_equal(atomic_load(&cnt.live), 0);

    /* incomplete hooks are rejected */
    tsr_allocator_t bad = {c_malloc, NULL, c_free, &cnt};
    assert_int_equal(tsr_ctx_new_with_allocator(&bad, &ctx), TSR_EINVAL);
    assert_int_equal(tsr_ctx_new_with_allocator(&a, NULL), TSR_EINVAL);
    /* NULL hooks = the C library */
    assert_int_equal(tsr_ctx_new_with_allocator(NULL, &ctx), 0);
    void *one = tsr_alloc(ctx, 1);
    assert_non_null(one);
    tsr_ctx_memory(ctx, &cur, NULL);
    assert_int_equal(cur, 1);
    tsr_free(ctx, one);
    tsr_ctx_free(ctx);
}

static void test_ctx_memory_free_first(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    void *p = tsr_alloc(ctx, 1);
    assert_non_null(p);
    tsr_free(ctx, p);
    size_t cur, peak;
    tsr_ctx_memory(ctx, &cur, &peak);
    assert_int_equal(cur, 0);
    assert_int_equal(peak, 1);
    tsr_ctx_memory(NULL, &cur, &peak);
    assert_int_equal(cur, 0);
    tsr_ctx_free(ctx);
    tsr_ctx_free(NULL);
}

static void test_ctx_options(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    int64_t v = -1;
    /* defaults */
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_THREADS, &v), 0);
    assert_true(v >= 1);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_EXECUTOR, &v), 0);
    assert_int_equal(v, TSR_EXEC_THREADS);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_TILE_BYTES, &v), 0);
    assert_int_equal(v, 1 << 20);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_PARTITION_BYTES, &v), 0);
    assert_int_equal(v, 64 << 20);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_PARTITIONS, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_IO_BACKEND, &v), 0);
    assert_int_equal(v, TSR_IO_AUTO);

    /* valid settings */
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_THREADS, 3), 0);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_THREADS, &v), 0);
    assert_int_equal(v, 3);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_THREADS, 1024), 0);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_THREADS, 0), 0); /* one per core */
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_THREADS, &v), 0);
    assert_true(v >= 1 && v <= 1024);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_EXECUTOR, TSR_EXEC_INLINE), 0);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_EXECUTOR, &v), 0);
    assert_int_equal(v, TSR_EXEC_INLINE);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_TILE_BYTES, 4096), 0);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_TILE_BYTES, &v), 0);
    assert_int_equal(v, 4096);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_TILE_BYTES, 0), 0);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_TILE_BYTES, &v), 0);
    assert_int_equal(v, 1 << 20);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_PARTITION_BYTES, 0), 0);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_PARTITION_BYTES, &v), 0);
    assert_int_equal(v, 64 << 20);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_PARTITIONS, 7), 0);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_PARTITIONS, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_IO_BACKEND, TSR_IO_MMAP), 0);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_IO_BACKEND, &v), 0);
    assert_int_equal(v, TSR_IO_MMAP);

    /* out of range: TSR_ERANGE, a message, the old value kept */
    static const struct {
        tsr_option_t opt;
        int64_t value;
    } bad[] = {
        {TSR_OPT_THREADS, -1},         {TSR_OPT_THREADS, 1025},
        {TSR_OPT_EXECUTOR, 2},         {TSR_OPT_EXECUTOR, -1},
        {TSR_OPT_TILE_BYTES, -1},      {TSR_OPT_TILE_BYTES, ((int64_t)1 << 34) + 1},
        {TSR_OPT_PARTITION_BYTES, -5}, {TSR_OPT_PARTITIONS, -1},
        {TSR_OPT_IO_BACKEND, 5},       {TSR_OPT_IO_BACKEND, -1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t before, after;
        assert_int_equal(tsr_ctx_get(ctx, bad[i].opt, &before), 0);
        tsr__ctx_seterr(ctx, 0, "%s", "");
        int rc = tsr_ctx_set(ctx, bad[i].opt, bad[i].value);
        if (rc != TSR_ERANGE)
            fail_msg("tsr_ctx_set(%d, %lld) = %d, expected TSR_ERANGE", (int)bad[i].opt,
                     (long long)bad[i].value, rc);
        assert_true(tsr_ctx_errmsg(ctx)[0] != 0);
        assert_int_equal(tsr_ctx_get(ctx, bad[i].opt, &after), 0);
        assert_int_equal(before, after);
    }
    /* unknown option */
    assert_int_equal(tsr_ctx_set(ctx, (tsr_option_t)99, 1), TSR_EINVAL);
    assert_true(tsr_ctx_errmsg(ctx)[0] != 0);
    assert_int_equal(tsr_ctx_get(ctx, (tsr_option_t)99, &v), TSR_EINVAL);
    assert_int_equal(tsr_ctx_get(ctx, TSR_OPT_THREADS, NULL), TSR_EINVAL);
    assert_int_equal(tsr_ctx_set(NULL, TSR_OPT_THREADS, 1), TSR_EINVAL);
    tsr_ctx_free(ctx);
}

static void test_shape_helpers(void **state)
{
    (void)state;
    tsr_shape_t s = {.ndim = 3, .dims = {2, 3, 4}};
    assert_int_equal(tsr_shape_size(&s), 24);
    tsr_shape_t z = {.ndim = 0};
    assert_int_equal(tsr_shape_size(&z), 1);
    char buf[64];
    assert_string_equal(tsr__shape_str(&s, buf, sizeof buf), "(2, 3, 4)");
    tsr_shape_t one = {.ndim = 1, .dims = {5}};
    assert_string_equal(tsr__shape_str(&one, buf, sizeof buf), "(5,)");
    assert_true(tsr__shape_eq(&s, &s));
    assert_false(tsr__shape_eq(&s, &one));
    tsr_shape_t s2 = s;
    s2.dims[2] = 5;
    assert_false(tsr__shape_eq(&s, &s2));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_error_table),          cmocka_unit_test(test_version),
        cmocka_unit_test(test_dtype_parse),          cmocka_unit_test(test_dtype_size_name),
        cmocka_unit_test(test_dtype_promote),        cmocka_unit_test(test_convert_plain),
        cmocka_unit_test(test_convert_swap),         cmocka_unit_test(test_convert_swap_long),
        cmocka_unit_test(test_byteswap_and_helpers), cmocka_unit_test(test_parse_shape),
        cmocka_unit_test(test_parse_scalars),        cmocka_unit_test(test_params_kv),
        cmocka_unit_test(test_params_json),          cmocka_unit_test(test_params_check),
        cmocka_unit_test(test_ctx_allocator),        cmocka_unit_test(test_ctx_memory_free_first),
        cmocka_unit_test(test_ctx_options),          cmocka_unit_test(test_shape_helpers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
