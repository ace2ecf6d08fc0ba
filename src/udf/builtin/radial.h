/*
 * radial.h — what the ring-shaped analyses share (radial_profile, fem,
 * radial_fourier, crystallinity, pick's FFT): reading their numeric
 * parameters with LiberTEM's defaults, the polar geometry of a 2-D frame,
 * and the optional mask of excluded pixels.
 *
 * Geometry, as everywhere in Tessera: pixel (y, x) sits at integer
 * coordinates, x is the column and y the row, origin top-left; the centre
 * (cx, cy) is in the same pixel units and may be fractional.  A pixel's
 * radius is r = sqrt((x - cx)² + (y - cy)²) (computed exactly so, in
 * float64, so that a numpy oracle written the same way agrees bit for bit)
 * and its angle phi = atan2(y - cy, x - cx) (LiberTEM's polar_map).
 *
 * Everything here runs in init (on the calling thread); nothing is kept.
 */
#ifndef TSR_UDF_RADIAL_H
#define TSR_UDF_RADIAL_H

#include "udf/builtin/builtin.h"

#include <math.h>

/* A 2-D signal's height and width, or an error naming the UDF. */
int tsr__radial_sig2d(tsr_udf_init_t *init, const char *udf, int64_t *h, int64_t *w);

/* The value of a numeric parameter: the user's (parsed, finite) if given,
 * else dflt.  *given (may be NULL) tells which.  Errors name the UDF, the
 * parameter and the text found. */
int tsr__radial_f64(tsr_udf_init_t *init, const char *udf, const char *key, double dflt,
                    double *out, bool *given);
int tsr__radial_i64(tsr_udf_init_t *init, const char *udf, const char *key, int64_t dflt,
                    int64_t *out, bool *given);
int tsr__radial_bool(tsr_udf_init_t *init, const char *udf, const char *key, bool dflt, bool *out);

/* The centre: parameters cx and cy, by default the middle of the frame
 * (w / 2, h / 2), as LiberTEM's analyses do. */
int tsr__radial_center(tsr_udf_init_t *init, const char *udf, int64_t h, int64_t w, double *cx,
                       double *cy);

/* LiberTEM's masks.bounding_radius: a radius around (cx, cy) that covers
 * the whole frame, ceil(sqrt(dy² + dx²)) + 1 with dy = max(cy, h - cy),
 * dx = max(cx, w - cx). */
double tsr__radial_bounding(double cx, double cy, int64_t h, int64_t w);

/* The radius of pixel (y, x). */
static inline double tsr__radial_r(double cx, double cy, int64_t y, int64_t x)
{
    double dy = (double)y - cy, dx = (double)x - cx;
    return sqrt(dx * dx + dy * dy);
}

/* The mask of excluded pixels from parameter `exclude` (the path of an
 * .npy file of the signal's shape, any real dtype; nonzero, NaN included,
 * excludes a pixel): *out is NULL when the parameter is absent, else h·w
 * bytes of 0/1 allocated with tsr_alloc(init->ctx) for the caller to free.
 * Errors name the UDF, the file and the shapes. */
int tsr__radial_exclude(tsr_udf_init_t *init, const char *udf, int64_t h, int64_t w, uint8_t **out);

#endif /* TSR_UDF_RADIAL_H */
