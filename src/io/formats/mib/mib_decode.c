/*
 * mib_decode.c — the RAW (R64) pixel decoders of MIB frames (layout in
 * mib_decode.h).
 *
 * Every decoder works on one chip row segment at a time: whole 64-bit words
 * in, pixels out, forward or reversed in x.  A word is loaded with memcpy
 * (no alignment needed) and byte-reversed with one bswap; 1-bit words are
 * expanded a byte (8 pixels) at a time through a 256-entry table of 8-byte
 * patterns; reversed segments (the lower chips of a quad) use the
 * byte-reversed pattern, written from the end.  These loops are branch-free
 * and write 8 output bytes per step, so decoding runs far above the rate at
 * which the page cache delivers the input.
 */
#include "io/formats/mib/mib_decode.h"

#include <string.h>

/* ---- tables -------------------------------------------------------------- */

/* Byte k of SPREAD(b) is bit k of b: 8 one-bit pixels of a byte, LSB first. */
#define SPREAD(b)                                                      \
    ((uint64_t)((b) >> 0 & 1) << 0 | (uint64_t)((b) >> 1 & 1) << 8 |   \
     (uint64_t)((b) >> 2 & 1) << 16 | (uint64_t)((b) >> 3 & 1) << 24 | \
     (uint64_t)((b) >> 4 & 1) << 32 | (uint64_t)((b) >> 5 & 1) << 40 | \
     (uint64_t)((b) >> 6 & 1) << 48 | (uint64_t)((b) >> 7 & 1) << 56)
#define S4(b) SPREAD(b), SPREAD((b) + 1), SPREAD((b) + 2), SPREAD((b) + 3)
#define S16(b) S4(b), S4((b) + 4), S4((b) + 8), S4((b) + 12)
#define S64(b) S16(b), S16((b) + 16), S16((b) + 32), S16((b) + 48)
static const uint64_t spread[256] = {S64(0), S64(64), S64(128), S64(192)};

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline void store64(void *p, uint64_t v)
{
    memcpy(p, &v, 8);
}

/* Swap the two bytes of each 16-bit lane. */
static inline uint64_t swap16x4(uint64_t v)
{
    return (v & 0x00FF00FF00FF00FFull) << 8 | (v >> 8 & 0x00FF00FF00FF00FFull);
}

/* ---- one chip row segment: nw words ------------------------------------- */

static void seg1(const uint8_t *s, int64_t nw, uint8_t *d, bool rev)
{
    /* After reversing the word, byte j holds pixels 8j..8j+7: that is byte
     * 7-j of the word as stored. */
    if (!rev) {
        for (int64_t w = 0; w < nw; w++, s += 8, d += 64)
            for (int j = 0; j < 8; j++)
                store64(d + 8 * j, spread[s[7 - j]]);
    } else {
        uint8_t *e = d + 64 * nw;
        for (int64_t w = 0; w < nw; w++, s += 8, e -= 64)
            for (int j = 0; j < 8; j++)
                store64(e - 8 - 8 * j, __builtin_bswap64(spread[s[7 - j]]));
    }
}

static void seg6(const uint8_t *s, int64_t nw, uint8_t *d, bool rev)
{
    if (!rev) {
        for (int64_t w = 0; w < nw; w++)
            store64(d + 8 * w, __builtin_bswap64(load64(s + 8 * w)));
    } else { /* reversed twice: the word as stored */
        uint8_t *e = d + 8 * nw;
        for (int64_t w = 0; w < nw; w++)
            store64(e - 8 - 8 * w, load64(s + 8 * w));
    }
}

static void seg12(const uint8_t *s, int64_t nw, uint16_t *d, bool rev)
{
    if (!rev) {
        for (int64_t w = 0; w < nw; w++)
            store64(d + 4 * w, __builtin_bswap64(load64(s + 8 * w)));
    } else { /* lanes in stored order, each lane big-endian */
        uint16_t *e = d + 4 * nw;
        for (int64_t w = 0; w < nw; w++)
            store64(e - 4 - 4 * w, swap16x4(load64(s + 8 * w)));
    }
}

static void seg24(const uint8_t *hi, const uint8_t *lo, int64_t nw, uint32_t *d, bool rev)
{
    for (int64_t w = 0; w < nw; w++) {
        uint64_t h = __builtin_bswap64(load64(hi + 8 * w));
        uint64_t l = __builtin_bswap64(load64(lo + 8 * w));
        for (int k = 0; k < 4; k++) {
            uint32_t v = (uint32_t)(h >> 16 * k & 0xFFFF) << 12;
            v += (uint32_t)(l >> 16 * k & 0xFFFF);
            if (!rev)
                d[4 * w + k] = v;
            else
                d[4 * nw - 1 - (4 * w + k)] = v;
        }
    }
}

/* Decode px pixels of one segment starting at byte offset off of the raw
 * image into dst. */
static void segment(const tsr__mib_geom_t *g, const uint8_t *data, int64_t off, int64_t px,
                    void *dst, bool rev)
{
    switch (g->depth) {
    case 1: seg1(data + off, px / 64, dst, rev); break;
    case 6: seg6(data + off, px / 8, dst, rev); break;
    case 12: seg12(data + off, px / 4, dst, rev); break;
    default: seg24(data + off, data + g->half_bytes + off, px / 4, dst, rev); break;
    }
}

/* ---- frames -------------------------------------------------------------- */

const char *tsr__mib_geom_init(tsr__mib_geom_t *g, int depth, bool quad, int64_t width,
                               int64_t height)
{
    memset(g, 0, sizeof *g);
    int bits; /* stored bits per pixel */
    switch (depth) {
    case 1: bits = 1; break;
    case 6: bits = 8; break;
    case 12:
    case 24: bits = 16; break;
    default: return "RAW counter depth must be 1, 6, 12 or 24";
    }
    g->depth = depth;
    g->quad = quad;
    g->out_es = depth == 24 ? 4 : depth == 12 ? 2 : 1;
    g->rows = height;
    /* A 24-bit frame holds two 12-bit images side by side in the header's
     * width. */
    if (depth == 24) {
        if (width % 2)
            return "a 24-bit RAW frame must have an even width (two 12-bit images)";
        width /= 2;
    }
    g->row_px = width;
    int64_t seg_px = quad ? width / 4 : width;
    if (quad && width % 4)
        return "a RAW quad frame's width must be a multiple of 4 (one row of each chip)";
    if ((seg_px * bits) % 64)
        return quad ? "a RAW quad frame's chip rows must be whole 64-bit words"
                    : "a RAW frame's rows must be whole 64-bit words";
    g->row_bytes = width * bits / 8;
    g->half_bytes = depth == 24 ? g->row_bytes * height : 0;
    g->out_h = quad ? 2 * height : height;
    g->out_w = quad ? width / 2 : width;
    return NULL;
}

int64_t tsr__mib_geom_bytes(const tsr__mib_geom_t *g)
{
    return g->row_bytes * g->rows * (g->depth == 24 ? 2 : 1);
}

void tsr__mib_decode_rows(const tsr__mib_geom_t *g, const uint8_t *data, int64_t y0, int64_t y1,
                          void *dst)
{
    uint8_t *d = dst;
    size_t out_row = (size_t)g->out_w * g->out_es;
    for (int64_t y = y0; y < y1; y++, d += out_row) {
        if (!g->quad) {
            segment(g, data, y * g->row_bytes, g->row_px, d, false);
            continue;
        }
        int64_t cw = g->row_px / 4, sb = g->row_bytes / 4;
        size_t half = (size_t)cw * g->out_es;
        if (y < g->rows) { /* chips 1 | 2: the last two segments */
            int64_t r = y * g->row_bytes;
            segment(g, data, r + 3 * sb, cw, d, false);
            segment(g, data, r + 2 * sb, cw, d + half, false);
        } else { /* chips 3 | 4: rotated by 180° */
            int64_t r = (2 * g->rows - 1 - y) * g->row_bytes;
            segment(g, data, r + 1 * sb, cw, d, true);
            segment(g, data, r, cw, d + half, true);
        }
    }
}
