/*
 * deflate.c — zlib streams (HDF5's deflate filter, Zarr's zlib and gzip)
 * through zlib, inflating into a buffer of exactly the chunk's size.
 *
 * The output buffer is the limit: a stream that still has output once
 * dst is full is an error (a decompression bomb or a lying chunk), as is a
 * stream that ends early or is cut off.
 */
#include "io/codecs/codecs.h"

#include <zlib.h>

int tsr__inflate(const void *src, size_t n, void *dst, size_t cap, size_t *out, char *err,
                 size_t errlen)
{
    z_stream z;
    int zrc;

    *out = 0;
    memset(&z, 0, sizeof z);
    /* 15 + 32: a zlib or a gzip header, detected */
    if (inflateInit2(&z, 15 + 32) != Z_OK)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "deflate: cannot start zlib");
    /* zlib counts in uInt: feed and drain in pieces of at most 1 GiB */
    const unsigned char *in = src;
    unsigned char *o = dst;
    size_t in_left = n, out_left = cap;
    do {
        if (z.avail_in == 0 && in_left > 0) {
            z.avail_in = (uInt)(in_left < (1u << 30) ? in_left : (1u << 30));
            z.next_in = (Bytef *)in;
            in += z.avail_in;
            in_left -= z.avail_in;
        }
        if (z.avail_out == 0 && out_left > 0) {
            z.avail_out = (uInt)(out_left < (1u << 30) ? out_left : (1u << 30));
            z.next_out = o;
            o += z.avail_out;
            out_left -= z.avail_out;
        }
        if (z.avail_out == 0) {
            /* dst is full: the stream must end here, with no more output */
            unsigned char probe;
            z.next_out = &probe;
            z.avail_out = 1;
            zrc = inflate(&z, Z_NO_FLUSH);
            if (zrc == Z_STREAM_END && z.avail_out == 1)
                break;
            inflateEnd(&z);
            if (z.avail_out == 0)
                return tsr__seterr(err, errlen, TSR_ECORRUPT,
                                   "deflate: the stream inflates to more than the %zu bytes of "
                                   "the chunk",
                                   cap);
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "deflate: corrupt stream after %zu bytes of output (%s)", cap,
                               z.msg ? z.msg : "no end of stream");
        }
        zrc = inflate(&z, Z_NO_FLUSH);
        if (zrc == Z_STREAM_END)
            break;
        if (zrc == Z_BUF_ERROR && z.avail_in == 0 && in_left == 0) {
            size_t got = cap - out_left - z.avail_out;
            inflateEnd(&z);
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "deflate: the stream is cut off after %zu of %zu bytes of output",
                               got, cap);
        }
        if (zrc != Z_OK && zrc != Z_BUF_ERROR) {
            size_t got = cap - out_left - z.avail_out;
            char why[128];
            snprintf(why, sizeof why, "%s", z.msg ? z.msg : zError(zrc));
            inflateEnd(&z);
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "deflate: corrupt stream after %zu bytes of output (%s)", got, why);
        }
    } while (1);
    *out = (size_t)z.total_out;
    inflateEnd(&z);
    if (*out != cap)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "deflate: the stream inflates to %zu bytes, the chunk holds %zu", *out,
                           cap);
    return 0;
}
