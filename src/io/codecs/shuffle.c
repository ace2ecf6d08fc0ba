/*
 * shuffle.c — undo the byte shuffle of HDF5's shuffle filter (2): the
 * first bytes of every element, then the second bytes, and so on; bytes
 * beyond a whole number of elements are stored as they are.
 *
 * Element sizes 2, 4 and 8 have unrolled loops over 16 elements at a time
 * (the compiler vectorises them); others a plain double loop.
 */
#include "io/codecs/codecs.h"

static void unshuffle_n(const unsigned char *in, unsigned char *out, size_t m, size_t es)
{
    /* out[i*es + j] = in[j*m + i], walking the output in order */
    size_t i = 0;
    for (; i + 16 <= m; i += 16)
        for (size_t j = 0; j < es; j++) {
            const unsigned char *s = in + j * m + i;
            for (size_t k = 0; k < 16; k++)
                out[(i + k) * es + j] = s[k];
        }
    for (; i < m; i++)
        for (size_t j = 0; j < es; j++)
            out[i * es + j] = in[j * m + i];
}

#define UNSHUFFLE_FIXED(ES)                                                           \
    static void unshuffle_##ES(const unsigned char *in, unsigned char *out, size_t m) \
    {                                                                                 \
        size_t i = 0;                                                                 \
        for (; i + 16 <= m; i += 16) {                                                \
            unsigned char blk[16 * ES];                                               \
            for (size_t j = 0; j < ES; j++)                                           \
                for (size_t k = 0; k < 16; k++)                                       \
                    blk[k * ES + j] = in[j * m + i + k];                              \
            memcpy(out + i * ES, blk, sizeof blk);                                    \
        }                                                                             \
        for (; i < m; i++)                                                            \
            for (size_t j = 0; j < ES; j++)                                           \
                out[i * ES + j] = in[j * m + i];                                      \
    }
UNSHUFFLE_FIXED(2)
UNSHUFFLE_FIXED(4)
UNSHUFFLE_FIXED(8)

void tsr__unshuffle(const void *in, void *out, size_t n, size_t es)
{
    const unsigned char *s = in;
    unsigned char *d = out;
    size_t m = es > 1 ? n / es : 0;

    if (es <= 1 || m == 0) {
        memcpy(d, s, n);
        return;
    }
    switch (es) {
    case 2: unshuffle_2(s, d, m); break;
    case 4: unshuffle_4(s, d, m); break;
    case 8: unshuffle_8(s, d, m); break;
    default: unshuffle_n(s, d, m, es); break;
    }
    memcpy(d + m * es, s + m * es, n - m * es);
}
