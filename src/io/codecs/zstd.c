/*
 * zstd.c — Zstandard frames (HDF5 filter 32015, Zarr's zstd) through
 * libzstd, into a buffer of exactly the chunk's size.
 *
 * A frame that declares more content than the chunk holds is refused
 * before decoding; libzstd itself never writes past dst, and reports a
 * frame that would as an error.
 */
#include "io/codecs/codecs.h"

#include <zstd.h>
#include <zstd_errors.h>

int tsr__zstd_decode(const void *src, size_t n, void *dst, size_t cap, size_t *out, char *err,
                     size_t errlen)
{
    unsigned long long declared = ZSTD_getFrameContentSize(src, n);
    size_t got;

    *out = 0;
    if (declared == ZSTD_CONTENTSIZE_ERROR)
        return tsr__seterr(err, errlen, TSR_ECORRUPT, "zstd: not a zstd frame (%zu bytes)", n);
    if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared > cap)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "zstd: the frame declares %llu bytes, the chunk holds %zu", declared,
                           cap);
    got = ZSTD_decompress(dst, cap, src, n);
    if (ZSTD_isError(got)) {
        if (ZSTD_getErrorCode(got) == ZSTD_error_dstSize_tooSmall)
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "zstd: the frames decompress to more than the %zu bytes of the "
                               "chunk",
                               cap);
        return tsr__seterr(err, errlen, TSR_ECORRUPT, "zstd: corrupt data (%s)",
                           ZSTD_getErrorName(got));
    }
    *out = got;
    if (got != cap)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "zstd: the frames decompress to %zu bytes, the chunk holds %zu", got,
                           cap);
    return 0;
}
