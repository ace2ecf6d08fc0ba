/* fuzz_bslz4.c — the bitshuffle-LZ4 decoder (and the other chunk codecs on
 * the same bytes): byte 0 picks the element size and the codec, bytes 1-2
 * the chunk size (up to 64 KiB), the rest is the stored chunk.  Whatever
 * the input, a decoder returns 0 or a clean error and never writes past the
 * chunk (ASan watches the exact-size buffers). */
#include <lz4.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/codecs/codecs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    static const size_t ess[] = {1, 2, 4, 8};
    size_t es = ess[data[0] & 3], cap = (size_t)data[1] | (size_t)data[2] << 8, got;
    int kind = data[0] >> 2 & 7;
    cap = cap / es * es;
    const uint8_t *src = data + 3;
    size_t n = size - 3;
    uint8_t *dst = malloc(cap ? cap : 1), *tmp = malloc(cap ? cap : 1);
    char err[256];
    if (!dst || !tmp)
        abort();
    switch (kind) {
    case 0:
    case 1:
        tsr__bshuf_decode(src, n, dst, cap, es, TSR_BSHUF_LZ4, 0, tmp, &got, err, sizeof err);
        break;
    case 2:
        tsr__bshuf_decode(src, n, dst, cap, es, TSR_BSHUF_ZSTD, 0, tmp, &got, err, sizeof err);
        break;
    case 3:
        tsr__bshuf_decode(src, n, dst, cap, es, TSR_BSHUF_NONE, (size_t)data[1] * 8, tmp, &got, err,
                          sizeof err);
        break;
    case 4: tsr__lz4_h5_decode(src, n, dst, cap, &got, err, sizeof err); break;
    case 5: tsr__inflate(src, n, dst, cap, &got, err, sizeof err); break;
    case 6: tsr__zstd_decode(src, n, dst, cap, &got, err, sizeof err); break;
    default: {
        size_t payload;
        if (tsr__fletcher32_check(src, n, &payload, err, sizeof err) == 0 && payload > n)
            abort();
        if (n <= cap)
            tsr__unshuffle(src, dst, n, es);
        break;
    }
    }
    free(dst);
    free(tmp);
    return 0;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

/* A valid bitshuffle-LZ4 chunk of n elements of es bytes (blocks of 64). */
static uint8_t *bslz4_seed(size_t n, size_t es, size_t *len)
{
    size_t bytes = n * es, block = 64, at = 15, done = 0;
    uint8_t *in = malloc(bytes), *sh = malloc(block * es), *out = malloc(2 * bytes + 256);
    for (size_t i = 0; i < bytes; i++)
        in[i] = (uint8_t)(i % 7 == 0 ? i * 13 : 0);
    out[0] = (uint8_t)((es == 1 ? 0 : es == 2 ? 1 : es == 4 ? 2 : 3) | 0 << 2);
    out[1] = (uint8_t)bytes;
    out[2] = (uint8_t)(bytes >> 8);
    put_be(out + 3, bytes, 8);
    put_be(out + 11, block * es, 4);
    while (n - done >= 8) {
        size_t m = n - done >= block ? block : (n - done) / 8 * 8;
        tsr__bitshuffle_ref(in + done * es, sh, m, es);
        int c = LZ4_compress_default((const char *)sh, (char *)out + at + 4, (int)(m * es),
                                     (int)bytes + 200);
        put_be(out + at, (uint64_t)c, 4);
        at += 4 + (size_t)c;
        done += m;
    }
    memcpy(out + at, in + done * es, (n - done) * es);
    at += (n - done) * es;
    free(in);
    free(sh);
    *len = at;
    return out;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    size_t k = 0;
    if (max < 4)
        return 0;
    seeds[k] = bslz4_seed(200, 2, &lens[k]);
    k++;
    seeds[k] = bslz4_seed(131, 4, &lens[k]);
    k++;
    seeds[k] = bslz4_seed(64, 1, &lens[k]);
    k++;
    /* the HDF5 LZ4 framing: one raw block */
    uint8_t *l = malloc(3 + 12 + 4 + 32);
    l[0] = 4 << 2;
    l[1] = 32;
    l[2] = 0;
    put_be(l + 3, 32, 8);
    put_be(l + 11, 32, 4);
    put_be(l + 15, 32, 4);
    for (int i = 0; i < 32; i++)
        l[19 + i] = (uint8_t)i;
    seeds[k] = l;
    lens[k++] = 51;
    return k;
}
