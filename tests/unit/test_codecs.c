/*
 * test_codecs.c — src/io/codecs: the chunk decoders against independent
 * encoders (zlib, liblz4 and libzstd compress; the bit transpose is built
 * bit by bit from its definition), every vector kernel of the bitshuffle
 * decoder against the scalar one on every element size and awkward
 * lengths, and the bounds checks: streams that claim or produce more than
 * the chunk holds, cut-off streams, lying block sizes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "io/codecs/codecs.h"

static uint64_t rng = 88172645463325252ull;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

/* Detector-like data: small counts, mostly zeros. */
static void fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(next_u32() % 7 == 0 ? next_u32() : next_u32() % 3);
}

/* Bit k of byte j of element i: the definition, one bit at a time. */
static void bitshuffle_bits(const uint8_t *in, uint8_t *out, size_t n, size_t es)
{
    memset(out, 0, n * es);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < es; j++)
            for (size_t k = 0; k < 8; k++) {
                size_t row = j * 8 + k, bit = (in[i * es + j] >> k) & 1u;
                out[row * (n / 8) + i / 8] |= (uint8_t)(bit << (i % 8));
            }
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* ---- the bit transpose ------------------------------------------------- */

static void test_kernels_match(void **state)
{
    (void)state;
    static const size_t ns[] = {8, 16, 64, 120, 128, 136, 248, 256, 264, 1000, 4096, 8200};
    static const size_t ess[] = {1, 2, 3, 4, 8, 16};
    for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
        for (size_t b = 0; b < sizeof ess / sizeof *ess; b++) {
            size_t n = ns[a], es = ess[b], bytes = n * es;
            uint8_t *orig = malloc(bytes), *sh = malloc(bytes), *ref = malloc(bytes);
            uint8_t *got = malloc(bytes);
            fill(orig, bytes);
            bitshuffle_bits(orig, sh, n, es);
            tsr__bitshuffle_ref(orig, ref, n, es);
            if (memcmp(sh, ref, bytes) != 0)
                fail_msg("tsr__bitshuffle_ref differs from the definition (n %zu, es %zu)", n, es);
            for (int k = TSR_SIMD_SCALAR; k <= TSR_SIMD_BEST; k++) {
                if (!tsr__simd_available((tsr__simd_t)k))
                    continue;
                memset(got, 0xA5, bytes);
                tsr__bitunshuffle_with((tsr__simd_t)k, sh, got, n, es);
                for (size_t i = 0; i < bytes; i++)
                    if (got[i] != orig[i])
                        fail_msg("kernel %d, n %zu, es %zu: byte %zu is 0x%02x, expected 0x%02x", k,
                                 n, es, i, got[i], orig[i]);
            }
            memset(got, 0, bytes);
            tsr__bitunshuffle(sh, got, n, es);
            assert_memory_equal(got, orig, bytes);
            free(orig);
            free(sh);
            free(ref);
            free(got);
        }
}

static void test_kernels_present(void **state)
{
    (void)state;
    assert_true(tsr__simd_available(TSR_SIMD_SCALAR));
#if defined(__x86_64__)
    assert_true(tsr__simd_available(TSR_SIMD_SSE2));
    print_message("AVX2 kernel %s on this CPU\n",
                  tsr__simd_available(TSR_SIMD_AVX2) ? "tested" : "not available");
#endif
}

/* ---- bitshuffle-LZ4 / -zstd streams ------------------------------------ */

/* Encode like the bitshuffle library: header, blocks, raw leftover. */
static size_t bshuf_encode(const uint8_t *in, size_t n, size_t es, size_t block, int codec,
                           uint8_t *out, size_t outcap)
{
    size_t at = 12, done = 0, size = n;
    uint8_t *tmp = malloc(block * es + 1);
    put_be64(out, (uint64_t)(n * es));
    put_be32(out + 8, (uint32_t)(block * es));
    while (size - done >= 8) {
        size_t m = size - done >= block ? block : (size - done) / 8 * 8;
        tsr__bitshuffle_ref(in + done * es, tmp, m, es);
        int c;
        if (codec == TSR_BSHUF_LZ4)
            c = LZ4_compress_default((const char *)tmp, (char *)out + at + 4, (int)(m * es),
                                     (int)(outcap - at - 4));
        else
            c = (int)ZSTD_compress(out + at + 4, outcap - at - 4, tmp, m * es, 3);
        assert_true(c > 0);
        put_be32(out + at, (uint32_t)c);
        at += 4 + (size_t)c;
        done += m;
    }
    memcpy(out + at, in + done * es, (size - done) * es);
    at += (size - done) * es;
    free(tmp);
    return at;
}

static void check_bshuf(size_t n, size_t es, size_t block, int codec)
{
    size_t bytes = n * es, cap = 2 * bytes + 4096, got_n;
    uint8_t *orig = malloc(bytes), *enc = malloc(cap), *got = malloc(bytes), *tmp = malloc(bytes);
    char err[256];
    fill(orig, bytes);
    size_t len = bshuf_encode(orig, n, es, block, codec, enc, cap);
    int rc = tsr__bshuf_decode(enc, len, got, bytes, es, (tsr__bshuf_codec_t)codec, 0, tmp, &got_n,
                               err, sizeof err);
    if (rc)
        fail_msg("n %zu es %zu block %zu codec %d: %s", n, es, block, codec, err);
    assert_int_equal(got_n, bytes);
    assert_memory_equal(got, orig, bytes);
    free(orig);
    free(enc);
    free(got);
    free(tmp);
}

static void test_bshuf_streams(void **state)
{
    (void)state;
    for (int codec = TSR_BSHUF_LZ4; codec <= TSR_BSHUF_ZSTD; codec++) {
        check_bshuf(192 * 192, 4, 2048, codec); /* DECTRIS: 8 KiB blocks of u32 */
        check_bshuf(256 * 256, 2, 4096, codec);
        check_bshuf(1000, 2, 256, codec); /* last block 232 elements */
        check_bshuf(1003, 4, 256, codec); /* + 3 raw elements */
        check_bshuf(5, 1, 4096, codec);   /* no block at all */
        check_bshuf(4099, 8, 1024, codec);
    }
}

static void test_bshuf_plain(void **state)
{
    (void)state;
    size_t n = 3000, es = 2, bytes = n * es, block = 1024, got_n;
    uint8_t *orig = malloc(bytes), *enc = malloc(bytes), *got = malloc(bytes);
    char err[256];
    fill(orig, bytes);
    size_t done = 0;
    while (n - done >= 8) {
        size_t m = n - done >= block ? block : (n - done) / 8 * 8;
        tsr__bitshuffle_ref(orig + done * es, enc + done * es, m, es);
        done += m;
    }
    memcpy(enc + done * es, orig + done * es, (n - done) * es);
    assert_int_equal(tsr__bshuf_decode(enc, bytes, got, bytes, es, TSR_BSHUF_NONE, block, NULL,
                                       &got_n, err, sizeof err),
                     0);
    assert_memory_equal(got, orig, bytes);
    free(orig);
    free(enc);
    free(got);
}

static void expect_corrupt(int rc, const char *err, const char *needle)
{
    if (rc != TSR_ECORRUPT)
        fail_msg("expected TSR_ECORRUPT, got %d (%s)", rc, err);
    if (!strstr(err, needle))
        fail_msg("message '%s' lacks '%s'", err, needle);
}

static void test_bshuf_bad(void **state)
{
    (void)state;
    size_t n = 4096, es = 2, bytes = n * es, cap = 2 * bytes + 4096, got_n;
    uint8_t *orig = malloc(bytes), *enc = malloc(cap), *got = malloc(bytes), *tmp = malloc(bytes);
    uint8_t *bad = malloc(cap);
    char err[256];
    fill(orig, bytes);
    size_t len = bshuf_encode(orig, n, es, 1024, TSR_BSHUF_LZ4, enc, cap);

    /* a header that claims more than the chunk: a bomb */
    memcpy(bad, enc, len);
    put_be64(bad, (uint64_t)bytes * 1000);
    expect_corrupt(
        tsr__bshuf_decode(bad, len, got, bytes, es, TSR_BSHUF_LZ4, 0, tmp, &got_n, err, sizeof err),
        err, "header says");
    /* a block size that is not whole elements */
    memcpy(bad, enc, len);
    put_be32(bad + 8, 1001);
    expect_corrupt(
        tsr__bshuf_decode(bad, len, got, bytes, es, TSR_BSHUF_LZ4, 0, tmp, &got_n, err, sizeof err),
        err, "block size");
    /* a block's compressed size beyond the data */
    memcpy(bad, enc, len);
    put_be32(bad + 12, 0x7fffffff);
    expect_corrupt(
        tsr__bshuf_decode(bad, len, got, bytes, es, TSR_BSHUF_LZ4, 0, tmp, &got_n, err, sizeof err),
        err, "runs past");
    /* cut off */
    expect_corrupt(tsr__bshuf_decode(enc, len / 2, got, bytes, es, TSR_BSHUF_LZ4, 0, tmp, &got_n,
                                     err, sizeof err),
                   err, "bitshuffle");
    /* garbage inside a block */
    memcpy(bad, enc, len);
    memset(bad + 16, 0xff, 64);
    int rc =
        tsr__bshuf_decode(bad, len, got, bytes, es, TSR_BSHUF_LZ4, 0, tmp, &got_n, err, sizeof err);
    assert_int_equal(rc, TSR_ECORRUPT);
    /* too short for the header */
    expect_corrupt(
        tsr__bshuf_decode(enc, 5, got, bytes, es, TSR_BSHUF_LZ4, 0, tmp, &got_n, err, sizeof err),
        err, "too few");
    free(orig);
    free(enc);
    free(got);
    free(tmp);
    free(bad);
}

/* ---- HDF5 LZ4 framing --------------------------------------------------- */

static size_t lz4_h5_encode(const uint8_t *in, size_t n, size_t block, uint8_t *out, size_t outcap,
                            int raw_every)
{
    size_t at = 12;
    put_be64(out, n);
    put_be32(out + 8, (uint32_t)block);
    for (size_t done = 0, b = 0; done < n; b++) {
        size_t m = n - done < block ? n - done : block;
        int c = raw_every && b % 2
                    ? 0
                    : LZ4_compress_default((const char *)in + done, (char *)out + at + 4, (int)m,
                                           (int)(outcap - at - 4));
        if (c <= 0 || (size_t)c >= m) { /* stored raw */
            memcpy(out + at + 4, in + done, m);
            c = (int)m;
        }
        put_be32(out + at, (uint32_t)c);
        at += 4 + (size_t)c;
        done += m;
    }
    return at;
}

static void test_lz4_h5(void **state)
{
    (void)state;
    size_t n = 100000, cap = 2 * n + 4096, got_n;
    uint8_t *orig = malloc(n), *enc = malloc(cap), *got = malloc(n);
    char err[256];
    fill(orig, n);
    for (int raw = 0; raw <= 1; raw++) {
        size_t len = lz4_h5_encode(orig, n, 30000, enc, cap, raw);
        memset(got, 0, n);
        assert_int_equal(tsr__lz4_h5_decode(enc, len, got, n, &got_n, err, sizeof err), 0);
        assert_memory_equal(got, orig, n);
        /* the chunk is smaller than the header says: a bomb */
        expect_corrupt(tsr__lz4_h5_decode(enc, len, got, n / 2, &got_n, err, sizeof err), err,
                       "header says");
        expect_corrupt(tsr__lz4_h5_decode(enc, len - 10, got, n, &got_n, err, sizeof err), err,
                       "lz4");
    }
    free(orig);
    free(enc);
    free(got);
}

/* ---- zlib, zstd --------------------------------------------------------- */

static void test_inflate(void **state)
{
    (void)state;
    size_t n = 200000, got_n;
    uLongf clen = compressBound(n);
    uint8_t *orig = malloc(n), *enc = malloc(clen), *got = malloc(n);
    char err[256];
    fill(orig, n);
    assert_int_equal(compress2(enc, &clen, orig, n, 6), Z_OK);
    assert_int_equal(tsr__inflate(enc, clen, got, n, &got_n, err, sizeof err), 0);
    assert_int_equal(got_n, n);
    assert_memory_equal(got, orig, n);
    /* more output than the chunk holds: a bomb */
    expect_corrupt(tsr__inflate(enc, clen, got, n - 1, &got_n, err, sizeof err), err, "more than");
    /* less output than the chunk holds */
    uint8_t *big = malloc(n + 100);
    int rc = tsr__inflate(enc, clen, big, n + 100, &got_n, err, sizeof err);
    expect_corrupt(rc, err, "inflates to 200000 bytes");
    /* cut off, and garbage */
    expect_corrupt(tsr__inflate(enc, clen / 2, got, n, &got_n, err, sizeof err), err, "cut off");
    memset(enc + 10, 0x55, 40);
    assert_int_equal(tsr__inflate(enc, clen, got, n, &got_n, err, sizeof err), TSR_ECORRUPT);
    free(big);
    free(orig);
    free(enc);
    free(got);
}

static void test_zstd(void **state)
{
    (void)state;
    size_t n = 200000, clen = ZSTD_compressBound(n), got_n;
    uint8_t *orig = malloc(n), *enc = malloc(clen), *got = malloc(n + 10);
    char err[256];
    fill(orig, n);
    clen = ZSTD_compress(enc, clen, orig, n, 3);
    assert_false(ZSTD_isError(clen));
    assert_int_equal(tsr__zstd_decode(enc, clen, got, n, &got_n, err, sizeof err), 0);
    assert_memory_equal(got, orig, n);
    expect_corrupt(tsr__zstd_decode(enc, clen, got, n - 10, &got_n, err, sizeof err), err,
                   "declares");
    expect_corrupt(tsr__zstd_decode(enc, clen, got, n + 10, &got_n, err, sizeof err), err,
                   "decompress to 200000");
    assert_int_equal(tsr__zstd_decode(enc, clen / 2, got, n, &got_n, err, sizeof err),
                     TSR_ECORRUPT);
    free(orig);
    free(enc);
    free(got);
}

/* ---- shuffle, fletcher32 ------------------------------------------------ */

static void test_unshuffle(void **state)
{
    (void)state;
    static const size_t ess[] = {1, 2, 3, 4, 8, 12};
    static const size_t ns[] = {0, 1, 7, 64, 1000, 4099};
    for (size_t a = 0; a < sizeof ess / sizeof *ess; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
            size_t es = ess[a], n = ns[b], m = n / es;
            uint8_t *orig = malloc(n + 1), *sh = malloc(n + 1), *got = malloc(n + 1);
            fill(orig, n);
            /* HDF5's shuffle: byte j of element i to j*m + i; the tail as is */
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < es; j++)
                    sh[j * m + i] = orig[i * es + j];
            memcpy(sh + m * es, orig + m * es, n - m * es);
            tsr__unshuffle(sh, got, n, es);
            if (n)
                assert_memory_equal(got, orig, n);
            free(orig);
            free(sh);
            free(got);
        }
}

static void test_fletcher32(void **state)
{
    (void)state;
    /* By hand: words 0x0102, 0x0304 and a last byte 0x05 -> 0x0500.
     * a = 0x0102 + 0x0304 + 0x0500 = 0x0906; b = 0x0102 + 0x0406 + 0x0906 */
    const uint8_t d[] = {1, 2, 3, 4, 5};
    assert_int_equal(tsr__fletcher32(d, 5), (0x0102u + 0x0406u + 0x0906u) << 16 | 0x0906u);
    uint8_t buf[9];
    memcpy(buf, d, 5);
    uint32_t s = tsr__fletcher32(d, 5);
    for (int i = 0; i < 4; i++)
        buf[5 + i] = (uint8_t)(s >> (8 * i));
    size_t payload = 0;
    char err[256];
    assert_int_equal(tsr__fletcher32_check(buf, 9, &payload, err, sizeof err), 0);
    assert_int_equal(payload, 5);
    buf[0] ^= 1;
    expect_corrupt(tsr__fletcher32_check(buf, 9, &payload, err, sizeof err), err, "mismatch");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernels_present), cmocka_unit_test(test_kernels_match),
        cmocka_unit_test(test_bshuf_streams),   cmocka_unit_test(test_bshuf_plain),
        cmocka_unit_test(test_bshuf_bad),       cmocka_unit_test(test_lz4_h5),
        cmocka_unit_test(test_inflate),         cmocka_unit_test(test_zstd),
        cmocka_unit_test(test_unshuffle),       cmocka_unit_test(test_fletcher32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
