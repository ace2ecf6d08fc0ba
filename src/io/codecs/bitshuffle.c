/*
 * bitshuffle.c — bitshuffle streams (HDF5 filter 32008, as DECTRIS
 * detectors write them: "bslz4"), decoded without the bitshuffle library.
 *
 * The transform.  A block of n elements (n a multiple of 8) of es bytes is
 * stored as 8*es rows of n/8 bytes: row j*8 + k holds bit k of byte j of
 * every element, element i at bit i%8 of byte i/8.  Undoing it, for each
 * byte j and each group of 8 elements, gathers one byte from each of the 8
 * rows of byte j into a 64-bit word and transposes that 8x8 bit matrix:
 * its byte m is then byte j of element 8g + m.
 *
 * The kernels.  The scalar one does exactly that per group.  The SSE2 one
 * takes 16 groups at a time: 16 bytes of each of the 8 rows, an 8x16 byte
 * transpose by three rounds of unpacks (which leaves the 16 words side by
 * side, in element order), and the bit transpose on both 64-bit lanes of a
 * register at once (three mask-shift-xor steps, as in Hacker's Delight).
 * AVX2 does 32 groups (two 128-bit lanes).  For es > 1 the planes of a
 * block of 128 or 256 elements go to a small buffer first and are then
 * interleaved into elements by byte unpacks.  The kernel is chosen once,
 * from what the CPU reports (AVX2, else SSE2 on x86-64, else scalar).
 *
 * The stream (compressed codecs).  An 8-byte big-endian total size, a
 * 4-byte big-endian block size in bytes, then each block (the last one
 * takes what remains, rounded down to a multiple of 8 elements) as a
 * 4-byte big-endian compressed size and an LZ4 block (or a zstd frame) of
 * the bit-transposed bytes; the elements beyond the last multiple of 8 are
 * stored as they are.  All sizes from the stream are checked against the
 * chunk size and the bytes left before use.
 */
#include "io/codecs/codecs.h"
#include "platform/os.h"

#include <zstd.h>

#if defined(__x86_64__) || defined(_M_X64)
#define TSR_X86 1
#include <immintrin.h>
#endif

/* ---- the 8x8 bit transpose --------------------------------------------- */

static inline uint64_t transpose8(uint64_t x)
{
    uint64_t t;
    t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAull;
    x ^= t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCull;
    x ^= t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ull;
    x ^= t ^ (t << 28);
    return x;
}

/* Groups [g0, g1) of all planes, one at a time. */
static void untrans_scalar(const uint8_t *in, uint8_t *out, size_t n, size_t es, size_t g0,
                           size_t g1)
{
    size_t rows = n / 8;

    for (size_t j = 0; j < es; j++) {
        const uint8_t *plane = in + j * 8 * rows;
        for (size_t g = g0; g < g1; g++) {
            uint64_t x = 0, y;
            for (int k = 0; k < 8; k++)
                x |= (uint64_t)plane[(size_t)k * rows + g] << (8 * k);
            y = transpose8(x);
            if (es == 1) {
                for (int m = 0; m < 8; m++)
                    out[8 * g + (size_t)m] = (uint8_t)(y >> (8 * m));
            } else {
                for (int m = 0; m < 8; m++)
                    out[(8 * g + (size_t)m) * es + j] = (uint8_t)(y >> (8 * m));
            }
        }
    }
}

/* Interleave es planes of m elements (plane j at planes + j*m) into m
 * elements; the generic form. */
static void interleave_scalar(const uint8_t *planes, uint8_t *out, size_t m, size_t es)
{
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < es; j++)
            out[i * es + j] = planes[j * m + i];
}

/* ---- SSE2 -------------------------------------------------------------- */

#ifdef TSR_X86

static inline __m128i bt8_sse2(__m128i x)
{
    const __m128i m1 = _mm_set1_epi64x(0x00AA00AA00AA00AAll);
    const __m128i m2 = _mm_set1_epi64x(0x0000CCCC0000CCCCll);
    const __m128i m3 = _mm_set1_epi64x(0x00000000F0F0F0F0ll);
    __m128i t;
    t = _mm_and_si128(_mm_xor_si128(x, _mm_srli_epi64(x, 7)), m1);
    x = _mm_xor_si128(x, _mm_xor_si128(t, _mm_slli_epi64(t, 7)));
    t = _mm_and_si128(_mm_xor_si128(x, _mm_srli_epi64(x, 14)), m2);
    x = _mm_xor_si128(x, _mm_xor_si128(t, _mm_slli_epi64(t, 14)));
    t = _mm_and_si128(_mm_xor_si128(x, _mm_srli_epi64(x, 28)), m3);
    x = _mm_xor_si128(x, _mm_xor_si128(t, _mm_slli_epi64(t, 28)));
    return x;
}

/* 16 groups of one plane: 8 rows of 16 bytes (row k at p + k*rows) into
 * 128 bytes of that plane, in element order. */
static inline void plane16_sse2(const uint8_t *p, size_t rows, uint8_t *dst)
{
    __m128i v0 = _mm_loadu_si128((const __m128i *)(p + 0 * rows));
    __m128i v1 = _mm_loadu_si128((const __m128i *)(p + 1 * rows));
    __m128i v2 = _mm_loadu_si128((const __m128i *)(p + 2 * rows));
    __m128i v3 = _mm_loadu_si128((const __m128i *)(p + 3 * rows));
    __m128i v4 = _mm_loadu_si128((const __m128i *)(p + 4 * rows));
    __m128i v5 = _mm_loadu_si128((const __m128i *)(p + 5 * rows));
    __m128i v6 = _mm_loadu_si128((const __m128i *)(p + 6 * rows));
    __m128i v7 = _mm_loadu_si128((const __m128i *)(p + 7 * rows));
    __m128i a0 = _mm_unpacklo_epi8(v0, v1), a1 = _mm_unpackhi_epi8(v0, v1);
    __m128i a2 = _mm_unpacklo_epi8(v2, v3), a3 = _mm_unpackhi_epi8(v2, v3);
    __m128i a4 = _mm_unpacklo_epi8(v4, v5), a5 = _mm_unpackhi_epi8(v4, v5);
    __m128i a6 = _mm_unpacklo_epi8(v6, v7), a7 = _mm_unpackhi_epi8(v6, v7);
    __m128i b0 = _mm_unpacklo_epi16(a0, a2), b1 = _mm_unpackhi_epi16(a0, a2);
    __m128i b2 = _mm_unpacklo_epi16(a1, a3), b3 = _mm_unpackhi_epi16(a1, a3);
    __m128i b4 = _mm_unpacklo_epi16(a4, a6), b5 = _mm_unpackhi_epi16(a4, a6);
    __m128i b6 = _mm_unpacklo_epi16(a5, a7), b7 = _mm_unpackhi_epi16(a5, a7);
    __m128i *d = (__m128i *)dst;
    _mm_storeu_si128(d + 0, bt8_sse2(_mm_unpacklo_epi32(b0, b4)));
    _mm_storeu_si128(d + 1, bt8_sse2(_mm_unpackhi_epi32(b0, b4)));
    _mm_storeu_si128(d + 2, bt8_sse2(_mm_unpacklo_epi32(b1, b5)));
    _mm_storeu_si128(d + 3, bt8_sse2(_mm_unpackhi_epi32(b1, b5)));
    _mm_storeu_si128(d + 4, bt8_sse2(_mm_unpacklo_epi32(b2, b6)));
    _mm_storeu_si128(d + 5, bt8_sse2(_mm_unpackhi_epi32(b2, b6)));
    _mm_storeu_si128(d + 6, bt8_sse2(_mm_unpacklo_epi32(b3, b7)));
    _mm_storeu_si128(d + 7, bt8_sse2(_mm_unpackhi_epi32(b3, b7)));
}

/* Interleave es planes of m elements (m a multiple of 16). */
static void interleave_sse2(const uint8_t *planes, uint8_t *out, size_t m, size_t es)
{
    if (es == 2) {
        for (size_t i = 0; i < m; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(planes + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(planes + m + i));
            _mm_storeu_si128((__m128i *)(out + 2 * i), _mm_unpacklo_epi8(a, b));
            _mm_storeu_si128((__m128i *)(out + 2 * i + 16), _mm_unpackhi_epi8(a, b));
        }
    } else if (es == 4) {
        for (size_t i = 0; i < m; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(planes + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(planes + m + i));
            __m128i c = _mm_loadu_si128((const __m128i *)(planes + 2 * m + i));
            __m128i d = _mm_loadu_si128((const __m128i *)(planes + 3 * m + i));
            __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
            __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
            __m128i *o = (__m128i *)(out + 4 * i);
            _mm_storeu_si128(o + 0, _mm_unpacklo_epi16(ab0, cd0));
            _mm_storeu_si128(o + 1, _mm_unpackhi_epi16(ab0, cd0));
            _mm_storeu_si128(o + 2, _mm_unpacklo_epi16(ab1, cd1));
            _mm_storeu_si128(o + 3, _mm_unpackhi_epi16(ab1, cd1));
        }
    } else {
        interleave_scalar(planes, out, m, es);
    }
}

/* Elements per step of the vector kernels, and room for their planes. */
#define STEP_SSE2 128
#define STEP_AVX2 256
#define PLANES_MAX (8 * STEP_AVX2)

static void untrans_sse2(const uint8_t *in, uint8_t *out, size_t n, size_t es)
{
    size_t rows = n / 8, g = 0;
    uint8_t planes[PLANES_MAX]; /* es <= 8 here */

    for (; g + 16 <= rows; g += 16) {
        if (es == 1) {
            plane16_sse2(in + g, rows, out + 8 * g);
            continue;
        }
        for (size_t j = 0; j < es; j++)
            plane16_sse2(in + j * 8 * rows + g, rows, planes + j * STEP_SSE2);
        interleave_sse2(planes, out + 8 * g * es, STEP_SSE2, es);
    }
    untrans_scalar(in, out, n, es, g, rows);
}

/* ---- AVX2 -------------------------------------------------------------- */

__attribute__((target("avx2"))) static inline __m256i bt8_avx2(__m256i x)
{
    const __m256i m1 = _mm256_set1_epi64x(0x00AA00AA00AA00AAll);
    const __m256i m2 = _mm256_set1_epi64x(0x0000CCCC0000CCCCll);
    const __m256i m3 = _mm256_set1_epi64x(0x00000000F0F0F0F0ll);
    __m256i t;
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 7)), m1);
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 7)));
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 14)), m2);
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 14)));
    t = _mm256_and_si256(_mm256_xor_si256(x, _mm256_srli_epi64(x, 28)), m3);
    x = _mm256_xor_si256(x, _mm256_xor_si256(t, _mm256_slli_epi64(t, 28)));
    return x;
}

/* 32 groups of one plane into 256 bytes in element order.  The unpacks
 * work within 128-bit lanes, so lane 0 of each result holds the first 16
 * groups' elements and lane 1 the next 16's: the stores put them apart. */
__attribute__((target("avx2"))) static inline void plane32_avx2(const uint8_t *p, size_t rows,
                                                                uint8_t *dst)
{
    __m256i v0 = _mm256_loadu_si256((const __m256i *)(p + 0 * rows));
    __m256i v1 = _mm256_loadu_si256((const __m256i *)(p + 1 * rows));
    __m256i v2 = _mm256_loadu_si256((const __m256i *)(p + 2 * rows));
    __m256i v3 = _mm256_loadu_si256((const __m256i *)(p + 3 * rows));
    __m256i v4 = _mm256_loadu_si256((const __m256i *)(p + 4 * rows));
    __m256i v5 = _mm256_loadu_si256((const __m256i *)(p + 5 * rows));
    __m256i v6 = _mm256_loadu_si256((const __m256i *)(p + 6 * rows));
    __m256i v7 = _mm256_loadu_si256((const __m256i *)(p + 7 * rows));
    __m256i a0 = _mm256_unpacklo_epi8(v0, v1), a1 = _mm256_unpackhi_epi8(v0, v1);
    __m256i a2 = _mm256_unpacklo_epi8(v2, v3), a3 = _mm256_unpackhi_epi8(v2, v3);
    __m256i a4 = _mm256_unpacklo_epi8(v4, v5), a5 = _mm256_unpackhi_epi8(v4, v5);
    __m256i a6 = _mm256_unpacklo_epi8(v6, v7), a7 = _mm256_unpackhi_epi8(v6, v7);
    __m256i b0 = _mm256_unpacklo_epi16(a0, a2), b1 = _mm256_unpackhi_epi16(a0, a2);
    __m256i b2 = _mm256_unpacklo_epi16(a1, a3), b3 = _mm256_unpackhi_epi16(a1, a3);
    __m256i b4 = _mm256_unpacklo_epi16(a4, a6), b5 = _mm256_unpackhi_epi16(a4, a6);
    __m256i b6 = _mm256_unpacklo_epi16(a5, a7), b7 = _mm256_unpackhi_epi16(a5, a7);
    __m256i c0 = bt8_avx2(_mm256_unpacklo_epi32(b0, b4));
    __m256i c1 = bt8_avx2(_mm256_unpackhi_epi32(b0, b4));
    __m256i c2 = bt8_avx2(_mm256_unpacklo_epi32(b1, b5));
    __m256i c3 = bt8_avx2(_mm256_unpackhi_epi32(b1, b5));
    __m256i c4 = bt8_avx2(_mm256_unpacklo_epi32(b2, b6));
    __m256i c5 = bt8_avx2(_mm256_unpackhi_epi32(b2, b6));
    __m256i c6 = bt8_avx2(_mm256_unpacklo_epi32(b3, b7));
    __m256i c7 = bt8_avx2(_mm256_unpackhi_epi32(b3, b7));
    __m256i *d = (__m256i *)dst;
    _mm256_storeu_si256(d + 0, _mm256_permute2x128_si256(c0, c1, 0x20));
    _mm256_storeu_si256(d + 1, _mm256_permute2x128_si256(c2, c3, 0x20));
    _mm256_storeu_si256(d + 2, _mm256_permute2x128_si256(c4, c5, 0x20));
    _mm256_storeu_si256(d + 3, _mm256_permute2x128_si256(c6, c7, 0x20));
    _mm256_storeu_si256(d + 4, _mm256_permute2x128_si256(c0, c1, 0x31));
    _mm256_storeu_si256(d + 5, _mm256_permute2x128_si256(c2, c3, 0x31));
    _mm256_storeu_si256(d + 6, _mm256_permute2x128_si256(c4, c5, 0x31));
    _mm256_storeu_si256(d + 7, _mm256_permute2x128_si256(c6, c7, 0x31));
}

__attribute__((target("avx2"))) static void untrans_avx2(const uint8_t *in, uint8_t *out, size_t n,
                                                         size_t es)
{
    size_t rows = n / 8, g = 0;
    uint8_t planes[PLANES_MAX];

    for (; g + 32 <= rows; g += 32) {
        if (es == 1) {
            plane32_avx2(in + g, rows, out + 8 * g);
            continue;
        }
        for (size_t j = 0; j < es; j++)
            plane32_avx2(in + j * 8 * rows + g, rows, planes + j * STEP_AVX2);
        interleave_sse2(planes, out + 8 * g * es, STEP_AVX2, es);
    }
    for (; g + 16 <= rows; g += 16) {
        if (es == 1) {
            plane16_sse2(in + g, rows, out + 8 * g);
            continue;
        }
        for (size_t j = 0; j < es; j++)
            plane16_sse2(in + j * 8 * rows + g, rows, planes + j * STEP_SSE2);
        interleave_sse2(planes, out + 8 * g * es, STEP_SSE2, es);
    }
    untrans_scalar(in, out, n, es, g, rows);
}

#endif /* TSR_X86 */

/* ---- dispatch ---------------------------------------------------------- */

bool tsr__simd_available(tsr__simd_t k)
{
    switch (k) {
    case TSR_SIMD_SCALAR:
    case TSR_SIMD_BEST: return true;
#ifdef TSR_X86
    case TSR_SIMD_SSE2: return true;
    case TSR_SIMD_AVX2: return __builtin_cpu_supports("avx2");
#endif
    default: return false;
    }
}

void tsr__bitunshuffle_with(tsr__simd_t k, const void *in, void *out, size_t n, size_t es)
{
    if (k == TSR_SIMD_BEST)
        k = tsr__simd_available(TSR_SIMD_AVX2)   ? TSR_SIMD_AVX2
            : tsr__simd_available(TSR_SIMD_SSE2) ? TSR_SIMD_SSE2
                                                 : TSR_SIMD_SCALAR;
#ifdef TSR_X86
    /* the vector kernels keep up to 8 planes of a step on the stack */
    if (es <= 8 && k == TSR_SIMD_AVX2 && tsr__simd_available(k)) {
        untrans_avx2(in, out, n, es);
        return;
    }
    if (es <= 8 && k != TSR_SIMD_SCALAR) {
        untrans_sse2(in, out, n, es);
        return;
    }
#endif
    untrans_scalar(in, out, n, es, 0, n / 8);
}

static tsr__simd_t best_kernel = TSR_SIMD_BEST; /* resolved once, then read-only */
static tsr__once_t best_once = TSR__ONCE_INIT;

static void resolve_best(void)
{
    best_kernel = tsr__simd_available(TSR_SIMD_AVX2)   ? TSR_SIMD_AVX2
                  : tsr__simd_available(TSR_SIMD_SSE2) ? TSR_SIMD_SSE2
                                                       : TSR_SIMD_SCALAR;
}

void tsr__bitunshuffle(const void *in, void *out, size_t n, size_t es)
{
    tsr__once(&best_once, resolve_best);
    tsr__bitunshuffle_with(best_kernel, in, out, n, es);
}

void tsr__bitshuffle_ref(const void *in, void *out, size_t n, size_t es)
{
    const uint8_t *s = in;
    uint8_t *d = out;
    size_t rows = n / 8;

    memset(d, 0, n * es);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < es; j++)
            for (size_t k = 0; k < 8; k++)
                d[(j * 8 + k) * rows + i / 8] |= (uint8_t)(((s[i * es + j] >> k) & 1u) << (i % 8));
}

/* ---- the stream -------------------------------------------------------- */

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The bitshuffle library's default block: 8 KiB of elements, a multiple
 * of 8 elements, at least 128. */
static size_t default_block(size_t es)
{
    size_t b = 8192 / es / 8 * 8;
    return b < 128 ? 128 : b;
}

/* One compressed block of m elements: size word, payload, untranspose. */
static int block_compressed(const uint8_t **pp, const uint8_t *end, uint8_t *dst, size_t m,
                            size_t es, tsr__bshuf_codec_t codec, uint8_t *tmp, size_t at, char *err,
                            size_t errlen)
{
    const uint8_t *p = *pp;
    size_t bytes = m * es, stored;
    int rc;

    if (end - p < 4)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "bitshuffle: the data end before the block at output byte %zu", at);
    stored = be32(p);
    p += 4;
    if (stored > (size_t)(end - p))
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "bitshuffle: a block of %zu compressed bytes at output byte %zu runs "
                           "past the data (%zu bytes left)",
                           stored, at, (size_t)(end - p));
    if (codec == TSR_BSHUF_LZ4) {
        if ((rc = tsr__lz4_block_decode(p, stored, tmp, bytes, err, errlen)))
            return rc;
    } else {
        size_t got = ZSTD_decompress(tmp, bytes, p, stored);
        if (ZSTD_isError(got) || got != bytes)
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "bitshuffle: a zstd block at output byte %zu %s (expected %zu "
                               "bytes)",
                               at, ZSTD_isError(got) ? ZSTD_getErrorName(got) : "has another size",
                               bytes);
    }
    tsr__bitunshuffle(tmp, dst, m, es);
    *pp = p + stored;
    return 0;
}

int tsr__bshuf_decode(const void *src, size_t n, void *dst, size_t cap, size_t es,
                      tsr__bshuf_codec_t codec, size_t block_elems, void *tmp, size_t *out,
                      char *err, size_t errlen)
{
    const uint8_t *p = src, *end = p + n;
    uint8_t *o = dst;
    size_t size, full, last, left, at = 0;
    int rc;

    *out = 0;
    if (es == 0 || cap % es != 0)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "bitshuffle: %zu bytes are not a whole number of %zu-byte elements", cap,
                           es);
    size = cap / es;
    if (codec == TSR_BSHUF_NONE) {
        if (n != cap)
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "bitshuffle: %zu stored bytes for a chunk of %zu", n, cap);
        if (block_elems == 0)
            block_elems = default_block(es);
        if (block_elems % 8)
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "bitshuffle: block size %zu is not a multiple of 8 elements",
                               block_elems);
        for (; at + block_elems * es <= cap; at += block_elems * es)
            tsr__bitunshuffle(p + at, o + at, block_elems, es);
        last = (cap - at) / es / 8 * 8;
        if (last)
            tsr__bitunshuffle(p + at, o + at, last, es);
        at += last * es;
        memcpy(o + at, p + at, cap - at);
        *out = cap;
        return 0;
    }
    if (codec != TSR_BSHUF_LZ4 && codec != TSR_BSHUF_ZSTD)
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED,
                           "bitshuffle: unknown compression %d (2 = lz4 and 3 = zstd are known)",
                           (int)codec);
    if (n < 12)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "bitshuffle: %zu bytes are too few for the 12-byte header", n);
    uint64_t total = be64(p), bbytes = be32(p + 8);
    p += 12;
    if (total != cap)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "bitshuffle: the header says %llu bytes, the chunk holds %zu",
                           (unsigned long long)total, cap);
    if (bbytes == 0 || bbytes % es != 0 || (bbytes / es) % 8 != 0)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "bitshuffle: the header's block size %llu bytes is not a positive "
                           "multiple of 8 elements of %zu bytes",
                           (unsigned long long)bbytes, es);
    block_elems = (size_t)(bbytes / es);
    full = size / block_elems;
    for (size_t b = 0; b < full; b++, at += block_elems * es)
        if ((rc = block_compressed(&p, end, o + at, block_elems, es, codec, tmp, at, err, errlen)))
            return rc;
    last = size % block_elems / 8 * 8;
    if (last) {
        if ((rc = block_compressed(&p, end, o + at, last, es, codec, tmp, at, err, errlen)))
            return rc;
        at += last * es;
    }
    left = cap - at;
    if ((size_t)(end - p) < left)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "bitshuffle: the last %zu bytes of the chunk are missing", left);
    memcpy(o + at, p, left);
    *out = cap;
    return 0;
}
