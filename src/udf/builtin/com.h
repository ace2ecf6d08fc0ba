/*
 * com.h — the arithmetic of centre-of-mass (CoM / DPC) analysis, shared by
 * the `com` UDF (its finalize) and the parameter guess (src/exec/guess.c).
 *
 * Fields are 2-D scans (ny × nx, C order) of vectors stored as two planes
 * (y component, x component) of doubles; `valid` (may be NULL = all) marks
 * the positions that hold data.  Conventions are LiberTEM's
 * (libertem.udf.com, libertem.corrections.coordinates):
 *  - the field is R(θ)·F·(dy, dx) with R(θ) = [[cos θ, sin θ], [−sin θ,
 *    cos θ]] acting on (y, x) column vectors and F = diag(−1, 1) when flip_y
 *    is set (else the identity): the flip first, then the rotation;
 *  - divergence = ∂fy/∂y + ∂fx/∂x, curl = ∂fy/∂x − ∂fx/∂y, where ∂ is
 *    numpy.gradient's difference (unit spacing: central inside, one-sided
 *    at the edges), extended to invalid positions: a central difference when
 *    both neighbours along the axis are valid, a one-sided one when only one
 *    is, NaN when neither is (or the position itself is invalid).
 * Nothing here allocates except tsr__com_icom (through ctx) and
 * tsr__com_guess_rotation (scratch through ctx).  Thread-safe.
 */
#ifndef TSR_UDF_COM_H
#define TSR_UDF_COM_H

#include "core/core.h"

#include <math.h>

/* (dy, dx) → (fy, fx) = R(rot_deg)·F·(dy, dx). */
static inline void tsr__com_transform(double rot_deg, bool flip_y, double dy, double dx, double *fy,
                                      double *fx)
{
    const double t = rot_deg * (3.14159265358979323846 / 180.0);
    const double c = cos(t), s = sin(t);
    const double a = flip_y ? -dy : dy;
    *fy = c * a + s * dx;
    *fx = -s * a + c * dx;
}

/* The derivative of f (ny × nx) along axis 0 (y) or 1 (x) into out, as
 * described above. */
void tsr__com_gradient(const double *f, const uint8_t *valid, int64_t ny, int64_t nx, int axis,
                       double *out);

/* Least-squares fit of a field over the valid positions, in LiberTEM's
 * regression layout reg[3][2] = {{fy0, fx0}, {dfy/dy, dfx/dy}, {dfy/dx,
 * dfx/dx}}: order 0 fits the mean only (rows 1 and 2 zero), order 1 the
 * mean and a plane (if the valid positions do not span both axes, the
 * slope along a missing axis is 0).  No valid position: all zero. */
void tsr__com_regression(const double *fy, const double *fx, const uint8_t *valid, int64_t ny,
                         int64_t nx, int order, double reg[3][2]);

/* Integrated CoM: the potential whose gradient is closest to the field in
 * the least-squares sense on a periodic grid, by Fourier integration:
 * Φ(k) = (ky·Fy(k) + kx·Fx(k)) / (2πi·(ky² + kx²)) with k in cycles per
 * scan step (numpy's fftfreq), Φ(0) = 0, so the result has mean zero.
 * Invalid positions enter as a zero field.  out: ny × nx doubles.
 * TSR_ENOMEM (message on ctx). */
int tsr__com_icom(tsr_ctx_t *ctx, const double *fy, const double *fx, const uint8_t *valid,
                  int64_t ny, int64_t nx, double *out);

/* The scan rotation (degrees, in (−180, 180]) and flip_y that minimise the
 * mean square curl of the field made from the raw shifts (dy, dx) over the
 * positions where the curl is defined (closed form: the curl is linear in
 * (cos θ, sin θ)); of the two angles 180° apart, the one whose divergence
 * has the heavier negative tail (LiberTEM's guess_corrections heuristic:
 * atomic columns are sinks of the field).  *rms_curl receives the root
 * mean square curl at the optimum.  TSR_EINVAL if no curl is defined
 * (fewer than 2 × 2 valid neighbours), TSR_ENOMEM. */
int tsr__com_guess_rotation(tsr_ctx_t *ctx, const double *dy, const double *dx,
                            const uint8_t *valid, int64_t ny, int64_t nx, double *rot_deg,
                            bool *flip_y, double *rms_curl);

#endif
