/*
 * mib_decode.h — pixel decoders of Merlin RAW (R64) frames.
 *
 * A RAW frame is the detector's readout as 64-bit words whose 8 bytes are in
 * reverse order.  Reversing each word gives a little-endian stream of
 * counters: 1 bit (LSB first), 8 bits (6-bit counters) or 16 bits (12-bit
 * counters) per pixel.  A 24-bit frame is two 12-bit frames one after the
 * other, the high 12 bits first: value = (high << 12) + low.
 *
 * Single chip: raw row y is frame row y.  Quad (2x2): a raw row holds one row
 * of each chip, [chip 4 | chip 3 | chip 2 | chip 1]; frame row y < R (R raw
 * rows) is chips 1 and 2 of raw row y, frame row y >= R is chips 3 and 4 of
 * raw row 2R-1-y, each reversed in x (the lower chips are rotated by 180°).
 *
 * The decoders write the native type (u8 for 1 and 6 bits, u16 for 12, u32
 * for 24) and assume a little-endian host, as the rest of the engine does.
 */
#ifndef TSR_MIB_DECODE_H
#define TSR_MIB_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct tsr__mib_geom {
    int depth;          /* counter depth: 1, 6, 12 or 24 */
    bool quad;          /* 2x2 chips */
    int64_t rows;       /* R: raw rows of one (for 24 bits: of each 12-bit) image */
    int64_t row_px;     /* pixels per raw row */
    int64_t row_bytes;  /* bytes per raw row */
    int64_t half_bytes; /* 24 bits: bytes of the high 12-bit image; else 0 */
    int64_t out_h, out_w;
    size_t out_es; /* bytes per decoded pixel */
} tsr__mib_geom_t;

/* Fill g from the counter depth, the chip arrangement and the raw frame's
 * header size (width x height pixels as the frame header gives them).
 * Returns NULL, or a reason the combination is not decodable. */
const char *tsr__mib_geom_init(tsr__mib_geom_t *g, int depth, bool quad, int64_t width,
                               int64_t height);

/* Bytes of pixel data of one raw frame. */
int64_t tsr__mib_geom_bytes(const tsr__mib_geom_t *g);

/* Decode frame rows [y0, y1) of the raw frame data into dst (rows of out_w
 * pixels of the native type, back to back). */
void tsr__mib_decode_rows(const tsr__mib_geom_t *g, const uint8_t *data, int64_t y0, int64_t y1,
                          void *dst);

#endif
