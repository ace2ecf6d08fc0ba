/*
 * maskgen.h — mask generators: the text specs `disk:cx,cy,r`,
 * `ring:cx,cy,ri,ro`, `point:cx,cy` and `rect:x,y,w,h` turned into a float32
 * mask over a 2-D signal.  Used by the `masks` UDF and, through it, by the
 * CLI, the GUI and Python (which only pass the spec strings along).
 *
 * Geometry, in detector pixels with the pixel (y, x) at integer coordinates
 * (row y, column x; origin top-left, y down), following LiberTEM:
 *  - disk:  1 where (x-cx)² + (y-cy)² <= r²
 *  - ring:  1 where ri² < (x-cx)² + (y-cy)² <= ro²   (0 <= ri <= ro)
 *  - point: 1 at the one pixel y = round(cy), x = round(cx) (halves away
 *           from zero); it must lie inside the frame
 *  - rect:  1 on rows y .. y+h-1 and columns x .. x+w-1, clipped to the
 *           frame (x, y, w, h integers, w and h >= 1)
 * Everything else is 0.  Thread-safe; nothing is allocated.
 */
#ifndef TSR_UDF_MASKGEN_H
#define TSR_UDF_MASKGEN_H

#include "core/core.h"

/* One line describing the accepted specs, for parameter docs. */
#define TSR__MASK_SPEC_DOC                                                              \
    "disk:cx,cy,r | ring:cx,cy,ri,ro | point:cx,cy | rect:x,y,w,h (detector pixels, x " \
    "= column, y = row)"

/* True if spec starts with the name of a generator and a colon ("disk:",
 * "ring:", "point:", "rect:"); anything else is taken as a file path. */
bool tsr__mask_is_generator(const char *spec);

/* True if spec looks like "word:..." with a word of two or more letters
 * that is not a generator and the spec does not end in ".npy": a misspelt
 * generator rather than a path.  Lets callers say "unknown generator". */
bool tsr__mask_is_unknown_generator(const char *spec);

/* Fill out (tsr_shape_size(sig) floats, C order) with the mask spec
 * describes.  sig must be 2-D.  Errors: TSR_EINVAL for a malformed spec or
 * bad values, TSR_EUNSUPPORTED for a signal that is not 2-D; err receives a
 * message that quotes the spec (e.g. "mask 'disk:1,2' needs 3 numbers
 * (cx,cy,r)"), without a prefix naming the caller. */
int tsr__mask_generate(const char *spec, const tsr_shape_t *sig, float *out, char *err,
                       size_t errlen);

#endif /* TSR_UDF_MASKGEN_H */
