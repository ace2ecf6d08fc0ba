/*
 * fletcher32.c — the checksum of HDF5's Fletcher-32 filter (3): a
 * Fletcher checksum over big-endian 16-bit words (an odd last byte is the
 * high byte of a last word), folded every 360 words; the filter appends it
 * to the chunk as 4 little-endian bytes.  Files written by HDF5 before
 * 1.6.3 stored it with its two halves' bytes swapped; both are accepted, as
 * HDF5 does.
 */
#include "io/codecs/codecs.h"

uint32_t tsr__fletcher32(const void *p, size_t n)
{
    const unsigned char *d = p;
    size_t words = n / 2;
    uint32_t a = 0, b = 0;

    while (words) {
        size_t k = words > 360 ? 360 : words;
        words -= k;
        do {
            a += (uint32_t)d[0] << 8 | d[1];
            d += 2;
            b += a;
        } while (--k);
        a = (a & 0xffff) + (a >> 16);
        b = (b & 0xffff) + (b >> 16);
    }
    if (n % 2) {
        a += (uint32_t)d[0] << 8;
        b += a;
        a = (a & 0xffff) + (a >> 16);
        b = (b & 0xffff) + (b >> 16);
    }
    a = (a & 0xffff) + (a >> 16);
    b = (b & 0xffff) + (b >> 16);
    return b << 16 | a;
}

int tsr__fletcher32_check(const void *p, size_t n, size_t *payload, char *err, size_t errlen)
{
    const unsigned char *d = p;
    uint32_t stored, sum, swapped;

    if (n < 4)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "fletcher32: %zu bytes cannot hold the 4-byte checksum", n);
    stored = (uint32_t)d[n - 4] | (uint32_t)d[n - 3] << 8 | (uint32_t)d[n - 2] << 16 |
             (uint32_t)d[n - 1] << 24;
    sum = tsr__fletcher32(d, n - 4);
    /* the old byte order: each 16-bit half's bytes swapped */
    swapped = (sum & 0x00ff00ffu) << 8 | (sum & 0xff00ff00u) >> 8;
    if (stored != sum && stored != swapped)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "fletcher32: checksum mismatch (stored 0x%08x, computed 0x%08x)", stored,
                           sum);
    *payload = n - 4;
    return 0;
}
