/*
 * zarr_codec.c — the chunk decoders of the Zarr reader: Blosc (libblosc,
 * through its thread-safe context call), Zstandard, numcodecs' LZ4 framing
 * (a 4-byte little-endian size, then one LZ4 block), gzip and zlib (zlib),
 * or raw bytes.
 *
 * Every decoder writes into a buffer of exactly one chunk and must fill it
 * exactly: the sizes that the compressed data announce (Blosc and LZ4
 * headers, the Zstandard frame header) are checked against the chunk size
 * before anything is decompressed, and the decompressors are bounded by the
 * buffer, so a decompression bomb stops at the chunk's end with an error
 * instead of allocating or writing more.
 */
#include "io/formats/zarr/zarr.h"

#include <blosc.h>
#include <lz4.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

static int wrong_size(char *err, size_t errlen, const char *codec, unsigned long long got,
                      size_t want)
{
    return tsr__seterr(err, errlen, TSR_ECORRUPT,
                       "%s data decompress to %llu bytes, but a chunk holds %zu (corrupt chunk or "
                       "wrong 'chunks'/'dtype' in .zarray)",
                       codec, got, want);
}

static int decode_blosc(const void *src, size_t n, void *dst, size_t want, char *err, size_t errlen)
{
    size_t nbytes = 0;
    if (n < BLOSC_MIN_HEADER_LENGTH || blosc_cbuffer_validate(src, n, &nbytes) != 0)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "not valid Blosc data (%zu bytes; bad header or sizes)", n);
    if (nbytes != want)
        return wrong_size(err, errlen, "Blosc", nbytes, want);
    int r = blosc_decompress_ctx(src, dst, want, 1);
    if (r < 0 || (size_t)r != want)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "corrupt Blosc data (decompression returned %d, expected %zu bytes)", r,
                           want);
    return 0;
}

static int decode_zstd(const void *src, size_t n, void *dst, size_t want, char *err, size_t errlen)
{
    unsigned long long fcs = ZSTD_getFrameContentSize(src, n);
    if (fcs == ZSTD_CONTENTSIZE_ERROR)
        return tsr__seterr(err, errlen, TSR_ECORRUPT, "not valid Zstandard data (%zu bytes)", n);
    if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != want)
        return wrong_size(err, errlen, "Zstandard", fcs, want);
    size_t r = ZSTD_decompress(dst, want, src, n);
    if (ZSTD_isError(r)) {
        if (ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall)
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "Zstandard data decompress to more than the %zu bytes of a chunk",
                               want);
        return tsr__seterr(err, errlen, TSR_ECORRUPT, "corrupt Zstandard data: %s",
                           ZSTD_getErrorName(r));
    }
    if (r != want)
        return wrong_size(err, errlen, "Zstandard", r, want);
    return 0;
}

static int decode_lz4(const void *src, size_t n, void *dst, size_t want, char *err, size_t errlen)
{
    const unsigned char *s = src;
    if (n < 4)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "LZ4 chunk of %zu bytes: too short for its 4-byte size header", n);
    uint32_t size =
        (uint32_t)s[0] | (uint32_t)s[1] << 8 | (uint32_t)s[2] << 16 | (uint32_t)s[3] << 24;
    if (size != want)
        return wrong_size(err, errlen, "LZ4 (by its size header)", size, want);
    if (n - 4 > (size_t)LZ4_MAX_INPUT_SIZE)
        return tsr__seterr(err, errlen, TSR_ECORRUPT, "LZ4 chunk of %zu bytes is too large", n);
    int r = LZ4_decompress_safe((const char *)s + 4, dst, (int)(n - 4), (int)want);
    if (r < 0)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "corrupt LZ4 data (or it decompresses to more than %zu bytes)", want);
    if ((size_t)r != want)
        return wrong_size(err, errlen, "LZ4", (unsigned long long)r, want);
    return 0;
}

static int decode_zlib(const void *src, size_t n, void *dst, size_t want, bool gzip, char *err,
                       size_t errlen)
{
    const char *name = gzip ? "gzip" : "zlib";
    if (n > UINT32_MAX || want > UINT32_MAX)
        return tsr__seterr(err, errlen, TSR_ECORRUPT, "%s chunk of %zu bytes is too large", name,
                           n);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, gzip ? 16 + MAX_WBITS : MAX_WBITS) != Z_OK)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "cannot start %s decompression", name);
    z.next_in = (Bytef *)(uintptr_t)src;
    z.avail_in = (uInt)n;
    z.next_out = dst;
    z.avail_out = (uInt)want;
    int r = inflate(&z, Z_FINISH);
    unsigned long long got = z.total_out;
    const char *msg = z.msg;
    char reason[96];
    snprintf(reason, sizeof reason, "%s", msg ? msg : "truncated or malformed stream");
    inflateEnd(&z);
    if (r == Z_STREAM_END)
        return got == want ? 0 : wrong_size(err, errlen, name, got, want);
    if (r == Z_BUF_ERROR && got == want)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s data decompress to more than the %zu bytes of a chunk", name, want);
    return tsr__seterr(err, errlen, TSR_ECORRUPT, "corrupt %s data: %s", name, reason);
}

int tsr__zarr_decode(const tsr__zarr_meta_t *m, const void *src, size_t n, void *dst, char *err,
                     size_t errlen)
{
    size_t want = m->chunk_bytes;
    switch (m->codec) {
    case TSR__ZARR_RAW:
        if (n != want)
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "uncompressed chunk of %zu bytes, expected %zu (chunks × itemsize)",
                               n, want);
        memcpy(dst, src, n);
        return 0;
    case TSR__ZARR_BLOSC: return decode_blosc(src, n, dst, want, err, errlen);
    case TSR__ZARR_ZSTD: return decode_zstd(src, n, dst, want, err, errlen);
    case TSR__ZARR_LZ4: return decode_lz4(src, n, dst, want, err, errlen);
    case TSR__ZARR_GZIP: return decode_zlib(src, n, dst, want, true, err, errlen);
    case TSR__ZARR_ZLIB: return decode_zlib(src, n, dst, want, false, err, errlen);
    }
    return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, "unknown compressor");
}
