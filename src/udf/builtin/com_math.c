/*
 * com_math.c — gradients, regression, Fourier integration and the rotation
 * guess of centre-of-mass analysis (see com.h for the definitions).
 */
#include "core/fft.h"
#include "udf/builtin/com.h"

static const double PI = 3.14159265358979323846;

#define VALID(v, i) (!(v) || (v)[i])

void tsr__com_gradient(const double *f, const uint8_t *valid, int64_t ny, int64_t nx, int axis,
                       double *out)
{
    /* along axis 0 neighbours are ±nx apart and the index runs over y */
    const int64_t step = axis == 0 ? nx : 1;
    const int64_t len = axis == 0 ? ny : nx;
    for (int64_t y = 0; y < ny; y++)
        for (int64_t x = 0; x < nx; x++) {
            const int64_t i = y * nx + x, pos = axis == 0 ? y : x;
            if (!VALID(valid, i)) {
                out[i] = NAN;
                continue;
            }
            const bool l = pos > 0 && VALID(valid, i - step);
            const bool r = pos < len - 1 && VALID(valid, i + step);
            if (l && r)
                out[i] = (f[i + step] - f[i - step]) / 2.0;
            else if (r)
                out[i] = f[i + step] - f[i];
            else if (l)
                out[i] = f[i] - f[i - step];
            else
                out[i] = NAN;
        }
}

/* Minimum-norm solution of the symmetric 2×2 system m·s = b, m = [[a, b],
 * [b, c]] (pseudo-inverse: directions with a negligible eigenvalue get no
 * component).  Those directions (unit vectors) go to nullv, their count to
 * *nnull. */
static void solve_sym2(double a, double b, double c, const double rhs[2], double s[2],
                       double nullv[2][2], int *nnull)
{
    s[0] = s[1] = 0;
    *nnull = 0;
    const double d = sqrt((a - c) * (a - c) / 4 + b * b);
    const double lam[2] = {(a + c) / 2 + d, (a + c) / 2 - d};
    const double tol = 1e-12 * (fabs(lam[0]) > 0 ? fabs(lam[0]) : 1);
    for (int k = 0; k < 2; k++) {
        double vy, vx;
        if (d == 0) { /* a multiple of the identity: the axes */
            vy = k == 0;
            vx = k == 1;
        } else {
            /* an eigenvector from either row of (m − λ)·v = 0, the better one */
            vy = b;
            vx = lam[k] - a;
            const double uy = lam[k] - c, ux = b;
            if (uy * uy + ux * ux > vy * vy + vx * vx) {
                vy = uy;
                vx = ux;
            }
            const double nrm = sqrt(vy * vy + vx * vx);
            vy /= nrm;
            vx /= nrm;
        }
        if (!(fabs(lam[k]) > tol)) {
            nullv[*nnull][0] = vy;
            nullv[*nnull][1] = vx;
            (*nnull)++;
            continue;
        }
        const double p = (vy * rhs[0] + vx * rhs[1]) / lam[k];
        s[0] += p * vy;
        s[1] += p * vx;
    }
}

void tsr__com_regression(const double *fy, const double *fx, const uint8_t *valid, int64_t ny,
                         int64_t nx, int order, double reg[3][2])
{
    memset(reg, 0, 6 * sizeof(double));
    double n = 0, my = 0, mx = 0, mfy = 0, mfx = 0;
    for (int64_t y = 0; y < ny; y++)
        for (int64_t x = 0; x < nx; x++) {
            const int64_t i = y * nx + x;
            if (!VALID(valid, i))
                continue;
            n++;
            my += (double)y;
            mx += (double)x;
            mfy += fy[i];
            mfx += fx[i];
        }
    if (n == 0 || order < 0)
        return;
    my /= n;
    mx /= n;
    mfy /= n;
    mfx /= n;
    reg[0][0] = mfy;
    reg[0][1] = mfx;
    if (order < 1)
        return;
    /* centred normal equations: conditioning independent of the offset */
    double syy = 0, sxx = 0, syx = 0, b[2][2] = {{0, 0}, {0, 0}}; /* b[component][y|x] */
    for (int64_t y = 0; y < ny; y++)
        for (int64_t x = 0; x < nx; x++) {
            const int64_t i = y * nx + x;
            if (!VALID(valid, i))
                continue;
            const double dy = (double)y - my, dx = (double)x - mx;
            syy += dy * dy;
            sxx += dx * dx;
            syx += dy * dx;
            b[0][0] += dy * (fy[i] - mfy);
            b[0][1] += dx * (fy[i] - mfy);
            b[1][0] += dy * (fx[i] - mfx);
            b[1][1] += dx * (fx[i] - mfx);
        }
    for (int comp = 0; comp < 2; comp++) {
        double sl[2], nullv[2][2];
        int nnull;
        solve_sym2(syy, syx, sxx, b[comp], sl, nullv, &nnull);
        /* (intercept, slope y, slope x): one least-squares solution */
        double p[3] = {(comp ? mfx : mfy) - sl[0] * my - sl[1] * mx, sl[0], sl[1]};
        /* positions on a line or at one point: the plane is not determined;
         * like numpy's lstsq, take the solution of least norm, i.e. remove
         * its components along the null space of the design matrix
         * [1, y, x], spanned by (−(vy·ȳ + vx·x̄), vy, vx) for the degenerate
         * directions v (orthonormalised) */
        double basis[2][3];
        for (int k = 0; k < nnull; k++) {
            double *q = basis[k];
            q[0] = -(nullv[k][0] * my + nullv[k][1] * mx);
            q[1] = nullv[k][0];
            q[2] = nullv[k][1];
            for (int j = 0; j < k; j++) {
                const double dot = q[0] * basis[j][0] + q[1] * basis[j][1] + q[2] * basis[j][2];
                for (int e = 0; e < 3; e++)
                    q[e] -= dot * basis[j][e];
            }
            const double nrm = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2]);
            for (int e = 0; e < 3; e++)
                q[e] /= nrm;
            const double dot = p[0] * q[0] + p[1] * q[1] + p[2] * q[2];
            for (int e = 0; e < 3; e++)
                p[e] -= dot * q[e];
        }
        reg[0][comp] = p[0];
        reg[1][comp] = p[1];
        reg[2][comp] = p[2];
    }
}

/* numpy's fftfreq(n)[i]: cycles per sample. */
static double fftfreq(int64_t i, int64_t n)
{
    return (double)(i <= (n - 1) / 2 ? i : i - n) / (double)n;
}

int tsr__com_icom(tsr_ctx_t *ctx, const double *fy, const double *fx, const uint8_t *valid,
                  int64_t ny, int64_t nx, double *out)
{
    int rc = 0;
    const int64_t n = ny * nx, h = tsr__fft_rlen(nx);
    tsr__fft_t *fwd = NULL, *inv = NULL;
    float *re = tsr__malloc(ctx, (size_t)n * sizeof *re);
    tsr__cf32_t *Fy = tsr__malloc(ctx, (size_t)(ny * h) * sizeof *Fy);
    tsr__cf32_t *Fx = tsr__malloc(ctx, (size_t)(ny * h) * sizeof *Fx);
    TSR_CHECK(ctx, re && Fy && Fx, TSR_ENOMEM, "com: out of memory for icom");
    TSR_TRY(tsr__fft_plan_r2c_2d(ctx, ny, nx, &fwd));
    TSR_TRY(tsr__fft_plan_c2r_2d(ctx, ny, nx, &inv));
    for (int64_t i = 0; i < n; i++)
        re[i] = VALID(valid, i) && isfinite(fy[i]) ? (float)fy[i] : 0.0f;
    tsr__fft_r2c_2d(fwd, re, Fy);
    for (int64_t i = 0; i < n; i++)
        re[i] = VALID(valid, i) && isfinite(fx[i]) ? (float)fx[i] : 0.0f;
    tsr__fft_r2c_2d(fwd, re, Fx);
    for (int64_t i = 0; i < ny; i++) {
        const double ky = fftfreq(i, ny);
        const bool nyq_y = ny % 2 == 0 && i == ny / 2;
        for (int64_t j = 0; j < h; j++) {
            const double kx = (double)j / (double)nx;
            const bool nyq_x = nx % 2 == 0 && j == nx / 2;
            tsr__cf32_t *o = &Fy[i * h + j];
            const tsr__cf32_t gx = Fx[i * h + j];
            const double q = ky * ky + kx * kx;
            if (nyq_y || nyq_x || q == 0) {
                o->re = o->im = 0.0f;
                continue;
            }
            /* Φ = −i·(ky·Fy + kx·Fx) / (2π·q) */
            const double nr = ky * o->re + kx * gx.re, ni = ky * o->im + kx * gx.im;
            o->re = (float)(ni / (2 * PI * q));
            o->im = (float)(-nr / (2 * PI * q));
        }
    }
    tsr__fft_c2r_2d(inv, Fy, re);
    for (int64_t i = 0; i < n; i++)
        out[i] = re[i];
fail:
    tsr__fft_free(fwd);
    tsr__fft_free(inv);
    tsr__free(ctx, re);
    tsr__free(ctx, Fy);
    tsr__free(ctx, Fx);
    return rc;
}

/* Fold the curl coefficients of one flip into *lam (smallest mean square
 * curl) and *theta (its angle, radians, modulo π). */
static int curl_optimum(tsr_ctx_t *ctx, const double *dy, const double *dx, const uint8_t *valid,
                        int64_t ny, int64_t nx, bool flip, double *work, double *lam, double *theta)
{
    const int64_t n = ny * nx;
    double *a = work, *g1 = work + n, *g2 = work + 2 * n, *g3 = work + 3 * n, *g4 = work + 4 * n;
    for (int64_t i = 0; i < n; i++)
        a[i] = flip ? -dy[i] : dy[i];
    /* curl(θ) = cos θ·P + sin θ·Q, P = ∂a/∂x − ∂dx/∂y, Q = ∂dx/∂x + ∂a/∂y */
    tsr__com_gradient(a, valid, ny, nx, 1, g1);
    tsr__com_gradient(dx, valid, ny, nx, 0, g2);
    tsr__com_gradient(dx, valid, ny, nx, 1, g3);
    tsr__com_gradient(a, valid, ny, nx, 0, g4);
    double A = 0, B = 0, C = 0, cnt = 0;
    for (int64_t i = 0; i < n; i++) {
        const double P = g1[i] - g2[i], Q = g3[i] + g4[i];
        if (!isfinite(P) || !isfinite(Q))
            continue;
        A += P * P;
        B += P * Q;
        C += Q * Q;
        cnt++;
    }
    if (cnt == 0)
        return tsr__ctx_seterr(ctx, TSR_EINVAL,
                               "com guess: the curl is defined nowhere (the scan needs "
                               "valid neighbours along both axes)");
    A /= cnt;
    B /= cnt;
    C /= cnt;
    const double R = sqrt((A - C) * (A - C) / 4 + B * B);
    *lam = (A + C) / 2 - R;
    if (*lam < 0)
        *lam = 0;
    /* mean square curl = (A+C)/2 + R·cos(2θ − 2φ), 2φ = atan2(2B, A−C):
     * smallest at θ = φ + π/2 */
    *theta = (R > 0 ? 0.5 * atan2(2 * B, A - C) : -PI / 2) + PI / 2;
    return 0;
}

int tsr__com_guess_rotation(tsr_ctx_t *ctx, const double *dy, const double *dx,
                            const uint8_t *valid, int64_t ny, int64_t nx, double *rot_deg,
                            bool *flip_y, double *rms_curl)
{
    int rc = 0;
    const int64_t n = ny * nx;
    double *work = tsr__malloc(ctx, (size_t)n * 7 * sizeof *work);
    TSR_CHECK(ctx, work, TSR_ENOMEM, "com guess: out of memory");
    double lam[2], th[2];
    TSR_TRY(curl_optimum(ctx, dy, dx, valid, ny, nx, false, work, &lam[0], &th[0]));
    TSR_TRY(curl_optimum(ctx, dy, dx, valid, ny, nx, true, work, &lam[1], &th[1]));
    const bool flip = lam[1] < lam[0];
    double deg = th[flip] * 180.0 / PI;
    /* of θ and θ + 180° (same curl, opposite divergence): the one whose
     * divergence histogram (5 bins, symmetric range) has at least as many
     * values in the most negative bin as in the most positive one */
    double *fy = work + 5 * n, *fx = work + 6 * n, *gy = work, *gx = work + n;
    for (int64_t i = 0; i < n; i++)
        tsr__com_transform(deg, flip, dy[i], dx[i], &fy[i], &fx[i]);
    tsr__com_gradient(fy, valid, ny, nx, 0, gy);
    tsr__com_gradient(fx, valid, ny, nx, 1, gx);
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        const double d = gy[i] + gx[i];
        if (!isfinite(d))
            continue;
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    const double range = -lo > hi ? -lo : hi;
    if (isfinite(range) && range > 0) {
        int64_t neg = 0, pos = 0;
        const double w = 2 * range / 5;
        for (int64_t i = 0; i < n; i++) {
            const double d = gy[i] + gx[i];
            if (!isfinite(d))
                continue;
            if (d < -range + w)
                neg++;
            if (d >= range - w)
                pos++;
        }
        if (neg < pos)
            deg += 180;
    }
    deg = fmod(deg, 360.0);
    if (deg > 180)
        deg -= 360;
    if (deg <= -180)
        deg += 360;
    *rot_deg = deg;
    *flip_y = flip;
    *rms_curl = sqrt(lam[flip]);
fail:
    tsr__free(ctx, work);
    return rc;
}
