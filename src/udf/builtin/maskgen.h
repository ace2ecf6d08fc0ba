/*
 * maskgen.h — mask generators: the text specs `disk:cx,cy,r`,
 * `ring:cx,cy,ri,ro`, `point:cx,cy`, `rect:x,y,w,h` and
 * `polygon:x0,y0,x1,y1,...` turned into a float32 mask over a 2-D signal,
 * optionally anti-aliased and moved by a sub-pixel shift.  Used by the
 * `masks` UDF and, through it, by the CLI, the GUI and Python (which only
 * pass the spec strings along).
 *
 * Geometry, in detector pixels with the pixel (y, x) at integer coordinates
 * (row y, column x; origin top-left, y down), following LiberTEM:
 *  - disk:    1 where (x-cx)² + (y-cy)² <= r²
 *  - ring:    1 where ri² < (x-cx)² + (y-cy)² <= ro²   (0 <= ri <= ro)
 *  - point:   1 at the one pixel y = round(cy), x = round(cx) (halves away
 *             from zero); it must lie inside the frame
 *  - rect:    1 on rows y .. y+h-1 and columns x .. x+w-1, clipped to the
 *             frame (x, y, w, h integers, w and h >= 1)
 *  - polygon: 1 where the pixel centre is inside the polygon with vertices
 *             (x0, y0), (x1, y1), ... (3 to 64 vertices, closed
 *             implicitly) by the even-odd crossing rule: a horizontal ray
 *             from the centre towards +x crosses an odd number of edges,
 *             an edge counting when exactly one of its end points lies
 *             strictly below the centre's row (y_i > y) — numpy's and
 *             matplotlib's classic `pnpoly` test.
 * Everything else is 0.
 *
 * Anti-aliased (area coverage): each pixel gets the area of the shape
 * inside its square [x-1/2, x+1/2] × [y-1/2, y+1/2], in [0, 1] — exact for
 * the disk and ring (from the integral of √(r² − u²)) and for simple
 * (non-self-intersecting) polygons (the polygon clipped to the square).
 * A rect covers the squares of its pixels, [x-1/2, x+w-1/2) × [y-1/2,
 * y+h-1/2); a point is the unit square around (cx, cy), so a point
 * between pixels spreads over up to four (bilinear weights).  For the
 * unshifted rect the coverage is the plain mask.
 *
 * Shift (dy, dx): the shape moved by dy rows and dx columns (every
 * coordinate of the spec plus the shift), exact for sub-pixel values;
 * the rect and point move their squares (without anti-aliasing a pixel is
 * set when its centre lies in the moved square, half-open on the far
 * sides, which for whole shifts is the plain mask moved).
 *
 * Thread-safe; nothing is allocated.
 */
#ifndef TSR_UDF_MASKGEN_H
#define TSR_UDF_MASKGEN_H

#include "core/core.h"

/* One line describing the accepted specs, for parameter docs. */
#define TSR__MASK_SPEC_DOC                                                             \
    "disk:cx,cy,r | ring:cx,cy,ri,ro | point:cx,cy | rect:x,y,w,h | polygon:x0,y0,x1," \
    "y1,x2,y2,... (detector pixels, x = column, y = row)"

#define TSR__MASK_MAX_VERTICES 64

/* A parsed generator spec. */
typedef struct tsr__mask_shape {
    int kind; /* internal generator index */
    double v[2 * TSR__MASK_MAX_VERTICES];
    int nv;  /* numbers in v (polygon: 2 × vertices) */
    bool aa; /* anti-aliased: area coverage */
} tsr__mask_shape_t;

/* True if spec starts with the name of a generator and a colon ("disk:",
 * "ring:", "point:", "rect:", "polygon:"); anything else is taken as a
 * file path. */
bool tsr__mask_is_generator(const char *spec);

/* True if spec looks like "word:..." with a word of two or more letters
 * that is not a generator and the spec does not end in ".npy": a misspelt
 * generator rather than a path.  Lets callers say "unknown generator". */
bool tsr__mask_is_unknown_generator(const char *spec);

/* Parse and validate spec for a signal of shape sig (must be 2-D).
 * Errors: TSR_EINVAL for a malformed spec or bad values, TSR_EUNSUPPORTED
 * for a signal that is not 2-D; err receives a message that quotes the
 * spec (e.g. "mask 'disk:1,2' needs 3 numbers (cx,cy,r)"), without a prefix
 * naming the caller.  A point must lie inside the frame (unshifted). */
int tsr__mask_parse(const char *spec, const tsr_shape_t *sig, bool antialiased,
                    tsr__mask_shape_t *out, char *err, size_t errlen);

/* The rows [*y0, *y1) and columns [*x0, *x1) outside which the shape
 * moved by (dy, dx) is zero, clipped to the h × w frame (may be empty:
 * *y0 >= *y1 or *x0 >= *x1). */
void tsr__mask_bbox(const tsr__mask_shape_t *m, double dy, double dx, int64_t h, int64_t w,
                    int64_t *y0, int64_t *y1, int64_t *x0, int64_t *x1);

/* Values of the shape moved by (dy, dx) at row y, columns [x0, x1), into
 * out[0 .. x1-x0). */
void tsr__mask_render(const tsr__mask_shape_t *m, double dy, double dx, int64_t y, int64_t x0,
                      int64_t x1, float *out);

/* Fill out (tsr_shape_size(sig) floats, C order) with the mask spec
 * describes (not anti-aliased, unshifted).  Errors as tsr__mask_parse. */
int tsr__mask_generate(const char *spec, const tsr_shape_t *sig, float *out, char *err,
                       size_t errlen);
/* The same with anti-aliasing on or off. */
int tsr__mask_generate_aa(const char *spec, const tsr_shape_t *sig, bool antialiased, float *out,
                          char *err, size_t errlen);

#endif /* TSR_UDF_MASKGEN_H */
