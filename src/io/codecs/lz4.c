/*
 * lz4.c — LZ4 blocks (liblz4), and the framing of the HDF5 LZ4 filter
 * (32004): 8-byte big-endian original size, 4-byte big-endian block size,
 * then per block a 4-byte big-endian stored size and the block, kept raw
 * when the stored size equals the block's size (LZ4 did not help).
 *
 * LZ4_decompress_safe never writes past the capacity it is given nor reads
 * past its input; every size from the stream is checked against what is
 * left of both before use.
 */
#include "io/codecs/codecs.h"

#include <limits.h>
#include <lz4.h>

static uint64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int tsr__lz4_block_decode(const void *src, size_t n, void *dst, size_t cap, char *err,
                          size_t errlen)
{
    int got;

    if (n > INT_MAX || cap > INT_MAX)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "lz4: a block of %zu bytes (%zu stored) is larger than LZ4 allows", cap,
                           n);
    got = LZ4_decompress_safe(src, dst, (int)n, (int)cap);
    if (got < 0)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "lz4: corrupt block of %zu stored bytes (or it decompresses to more "
                           "than %zu bytes)",
                           n, cap);
    if ((size_t)got != cap)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "lz4: a block decompresses to %d bytes, expected %zu", got, cap);
    return 0;
}

int tsr__lz4_h5_decode(const void *src, size_t n, void *dst, size_t cap, size_t *out, char *err,
                       size_t errlen)
{
    const unsigned char *p = src, *end = p + n;
    unsigned char *o = dst;
    uint64_t total, block;
    size_t done = 0;
    int rc;

    *out = 0;
    if (n < 12)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "lz4: %zu bytes are too few for the 12-byte header", n);
    total = be64(p);
    block = be32(p + 8);
    p += 12;
    if (total != cap)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "lz4: the header says %llu bytes, the chunk holds %zu",
                           (unsigned long long)total, cap);
    if (block == 0 && total > 0)
        return tsr__seterr(err, errlen, TSR_ECORRUPT, "lz4: the header's block size is 0");
    if (block > total)
        block = total;
    while (done < cap) {
        size_t want = cap - done < block ? cap - done : (size_t)block, stored;
        if (end - p < 4)
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "lz4: the data end before the block at output byte %zu", done);
        stored = be32(p);
        p += 4;
        if (stored > (size_t)(end - p))
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "lz4: a block of %zu stored bytes at output byte %zu runs past the "
                               "%zu bytes of data",
                               stored, done, n);
        if (stored == want)
            memcpy(o + done, p, want);
        else if ((rc = tsr__lz4_block_decode(p, stored, o + done, want, err, errlen)))
            return rc;
        p += stored;
        done += want;
    }
    *out = done;
    return 0;
}
