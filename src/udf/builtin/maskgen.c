/*
 * maskgen.c — the mask generators of maskgen.h: parse a spec
 * ("disk:cx,cy,r", ...) and rasterise it into a float32 frame-sized mask.
 *
 * The parser is deliberately strict: exactly the expected count of finite
 * numbers, separated by commas (blanks allowed), and every error message
 * quotes the whole spec so the user sees which of several masks is wrong.
 */
#include "udf/builtin/maskgen.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

typedef enum { GEN_DISK, GEN_RING, GEN_POINT, GEN_RECT, GEN_POLYGON } gen_kind_t;

static const struct {
    const char *name;
    gen_kind_t kind;
    int nargs; /* -1: a polygon's vertex list */
    const char *args;
} generators[] = {
    {"disk", GEN_DISK, 3, "cx,cy,r"},
    {"ring", GEN_RING, 4, "cx,cy,ri,ro"},
    {"point", GEN_POINT, 2, "cx,cy"},
    {"rect", GEN_RECT, 4, "x,y,w,h"},
    {"polygon", GEN_POLYGON, -1, "x0,y0,x1,y1,x2,y2,..."},
};
#define N_GENERATORS (sizeof generators / sizeof generators[0])

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    return s;
}

/* Index of the generator spec names, or -1. */
static int find_generator(const char *spec)
{
    for (size_t i = 0; i < N_GENERATORS; i++) {
        size_t n = strlen(generators[i].name);
        if (strncmp(spec, generators[i].name, n) == 0 && spec[n] == ':')
            return (int)i;
    }
    return -1;
}

bool tsr__mask_is_generator(const char *spec)
{
    return spec && find_generator(spec) >= 0;
}

bool tsr__mask_is_unknown_generator(const char *spec)
{
    if (!spec || tsr__mask_is_generator(spec))
        return false;
    size_t n = 0;
    while (isalpha((unsigned char)spec[n]))
        n++;
    if (n < 2 || spec[n] != ':')
        return false;
    size_t len = strlen(spec);
    return !(len >= 4 && strcmp(spec + len - 4, ".npy") == 0);
}

/* Parse up to max comma-separated finite numbers from s into v; *count gets
 * how many were found (max + 1 means "more than max").  Returns 0, or -1
 * with the offending token copied into bad. */
static int parse_numbers(const char *s, double *v, int max, int *count, char *bad, size_t nbad)
{
    int n = 0;
    *count = 0;
    s = skip_ws(s);
    if (*s == '\0')
        return 0;
    for (;;) {
        const char *tok = skip_ws(s);
        char *end;
        errno = 0;
        double x = strtod(tok, &end);
        const char *after = skip_ws(end);
        if (end == tok || errno == ERANGE || !isfinite(x) || (*after != ',' && *after != '\0')) {
            size_t k = strcspn(tok, ",");
            if (k >= nbad)
                k = nbad - 1;
            memcpy(bad, tok, k);
            bad[k] = '\0';
            return -1;
        }
        if (n < max)
            v[n] = x;
        n++;
        if (*after == '\0')
            break;
        s = after + 1;
    }
    *count = n > max ? max + 1 : n;
    return 0;
}

/* ---- parsing ----------------------------------------------------------- */

int tsr__mask_parse(const char *spec, const tsr_shape_t *sig, bool antialiased,
                    tsr__mask_shape_t *m, char *err, size_t errlen)
{
    int g = spec ? find_generator(spec) : -1;
    if (g < 0)
        return tsr__seterr(err, errlen, TSR_EINVAL,
                           "mask '%s' is not a generator (expected " TSR__MASK_SPEC_DOC ")",
                           spec ? spec : "(null)");
    const char *name = generators[g].name;
    if (sig->ndim != 2) {
        char sh[128];
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED,
                           "mask '%s': the %s generator needs a 2-D signal, the dataset's "
                           "signal has shape %s",
                           spec, name, tsr__shape_str(sig, sh, sizeof sh));
    }
    memset(m, 0, sizeof *m);
    m->kind = generators[g].kind;
    m->aa = antialiased;
    double *v = m->v;
    int count;
    char bad[64];
    const int want = generators[g].nargs;
    const int max = want < 0 ? 2 * TSR__MASK_MAX_VERTICES : want;
    if (parse_numbers(spec + strlen(name) + 1, v, max, &count, bad, sizeof bad) < 0)
        return tsr__seterr(err, errlen, TSR_EINVAL, "mask '%s': '%s' is not a finite number", spec,
                           bad);
    if (want < 0) {
        if (count < 6 || count > max || count % 2)
            return tsr__seterr(err, errlen, TSR_EINVAL,
                               "mask '%s' needs 3 to %d vertices as x,y pairs (%s), got %s%d "
                               "numbers",
                               spec, TSR__MASK_MAX_VERTICES, generators[g].args,
                               count > max ? "more than " : "", count > max ? max : count);
    } else if (count != want) {
        return tsr__seterr(err, errlen, TSR_EINVAL, "mask '%s' needs %d numbers (%s)", spec, want,
                           generators[g].args);
    }
    m->nv = count;
    const int64_t h = sig->dims[0], w = sig->dims[1];
    switch (m->kind) {
    case GEN_DISK:
        if (v[2] < 0)
            return tsr__seterr(err, errlen, TSR_EINVAL, "mask '%s': radius r = %g must be >= 0",
                               spec, v[2]);
        return 0;
    case GEN_RING:
        if (v[2] < 0 || v[2] > v[3])
            return tsr__seterr(err, errlen, TSR_EINVAL,
                               "mask '%s': radii must satisfy 0 <= ri <= ro (ri = %g, ro = %g)",
                               spec, v[2], v[3]);
        return 0;
    case GEN_POINT:
        /* Far-away values are rejected before llround could overflow. */
        if (fabs(v[0]) > 1e15 || fabs(v[1]) > 1e15 || llround(v[0]) < 0 || llround(v[1]) < 0 ||
            llround(v[0]) >= w || llround(v[1]) >= h)
            return tsr__seterr(err, errlen, TSR_EINVAL,
                               "mask '%s': point (cx=%g, cy=%g) lies outside the %lld x %lld "
                               "frame (height x width)",
                               spec, v[0], v[1], (long long)h, (long long)w);
        return 0;
    case GEN_RECT:
        for (int i = 0; i < 4; i++)
            if (v[i] != floor(v[i]) || fabs(v[i]) > 1e15)
                return tsr__seterr(err, errlen, TSR_EINVAL,
                                   "mask '%s': x,y,w,h must be integers, got %g", spec, v[i]);
        if (v[2] < 1 || v[3] < 1)
            return tsr__seterr(err, errlen, TSR_EINVAL,
                               "mask '%s': width and height must be >= 1 (w = %g, h = %g)", spec,
                               v[2], v[3]);
        return 0;
    default: return 0;
    }
}

/* ---- geometry ---------------------------------------------------------- */

static int64_t clamp_i64(double v, int64_t lo, int64_t hi)
{
    if (!(v > (double)lo))
        return lo;
    if (!(v < (double)hi))
        return hi;
    return (int64_t)v;
}

void tsr__mask_bbox(const tsr__mask_shape_t *m, double dy, double dx, int64_t h, int64_t w,
                    int64_t *y0, int64_t *y1, int64_t *x0, int64_t *x1)
{
    const double *v = m->v;
    double ylo, yhi, xlo, xhi; /* continuous extent of the shape */
    switch (m->kind) {
    case GEN_DISK:
    case GEN_RING: {
        const double r = m->kind == GEN_DISK ? v[2] : v[3];
        xlo = v[0] - r;
        xhi = v[0] + r;
        ylo = v[1] - r;
        yhi = v[1] + r;
        break;
    }
    case GEN_POINT:
        xlo = v[0] - 0.5;
        xhi = v[0] + 0.5;
        ylo = v[1] - 0.5;
        yhi = v[1] + 0.5;
        break;
    case GEN_RECT:
        xlo = v[0] - 0.5;
        xhi = v[0] + v[2] - 0.5;
        ylo = v[1] - 0.5;
        yhi = v[1] + v[3] - 0.5;
        break;
    default:
        xlo = xhi = v[0];
        ylo = yhi = v[1];
        for (int i = 2; i < m->nv; i += 2) {
            xlo = fmin(xlo, v[i]);
            xhi = fmax(xhi, v[i]);
            ylo = fmin(ylo, v[i + 1]);
            yhi = fmax(yhi, v[i + 1]);
        }
        break;
    }
    /* pixels whose square (or centre) can touch the extent, one spare */
    *y0 = clamp_i64(floor(ylo + dy) - 1, 0, h);
    *y1 = clamp_i64(ceil(yhi + dy) + 2, 0, h);
    *x0 = clamp_i64(floor(xlo + dx) - 1, 0, w);
    *x1 = clamp_i64(ceil(xhi + dx) + 2, 0, w);
}

/* ∫_0^u √(r² − t²) dt for |u| <= r. */
static double circ_prim(double u, double r)
{
    u = u < -r ? -r : u > r ? r : u;
    return 0.5 * (u * sqrt(fmax(r * r - u * u, 0)) + r * r * asin(u / r));
}

/* Signed area of the disk (radius r, at the origin) ∩ [0, a] × [0, b]. */
static double quadrant(double a, double b, double r)
{
    const double sa = a < 0 ? -1 : 1, sb = b < 0 ? -1 : 1;
    a = fmin(fabs(a), r);
    b = fmin(fabs(b), r);
    if (a * a + b * b <= r * r)
        return sa * sb * a * b;
    const double us = sqrt(fmax(r * r - b * b, 0)); /* where the circle's height is b */
    return sa * sb * (b * us + circ_prim(a, r) - circ_prim(us, r));
}

/* Area of the disk (cx, cy, r) inside the pixel square around (px, py). */
static double disk_cov(double cx, double cy, double r, double px, double py)
{
    if (r <= 0)
        return 0;
    const double x0 = px - 0.5 - cx, x1 = px + 0.5 - cx, y0 = py - 0.5 - cy, y1 = py + 0.5 - cy;
    /* nearest and farthest points of the square */
    const double nx = x0 > 0 ? x0 : x1 < 0 ? x1 : 0, ny = y0 > 0 ? y0 : y1 < 0 ? y1 : 0;
    if (nx * nx + ny * ny >= r * r)
        return 0;
    const double fx = fmax(fabs(x0), fabs(x1)), fy = fmax(fabs(y0), fabs(y1));
    if (fx * fx + fy * fy <= r * r)
        return 1;
    const double a =
        quadrant(x1, y1, r) - quadrant(x0, y1, r) - quadrant(x1, y0, r) + quadrant(x0, y0, r);
    return a < 0 ? 0 : a > 1 ? 1 : a;
}

/* Overlap of [a0, a1) with [b0, b1). */
static double overlap(double a0, double a1, double b0, double b1)
{
    const double lo = fmax(a0, b0), hi = fmin(a1, b1);
    return hi > lo ? hi - lo : 0;
}

/* pnpoly: is (px, py) inside the polygon of n vertices (x, y pairs, moved
 * by (dx, dy))? */
static bool poly_inside(const double *v, int n, double dy, double dx, double px, double py)
{
    bool in = false;
    for (int i = 0, j = n - 1; i < n; j = i++) {
        const double xi = v[2 * i] + dx, yi = v[2 * i + 1] + dy;
        const double xj = v[2 * j] + dx, yj = v[2 * j + 1] + dy;
        if ((yi > py) != (yj > py) && px < (xj - xi) * (py - yi) / (yj - yi) + xi)
            in = !in;
    }
    return in;
}

/* Keep the part of polygon (n points in in) on the side of the line where
 * sgn·(coord − c) >= 0, coord = x (axis 0) or y (axis 1). */
static int clip_half(const double *in, int n, int axis, double c, double sgn, double *out)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        const double *p = in + 2 * i, *q = in + 2 * ((i + 1) % n);
        const double dp = sgn * (p[axis] - c), dq = sgn * (q[axis] - c);
        if (dp >= 0) {
            out[2 * k] = p[0];
            out[2 * k + 1] = p[1];
            k++;
        }
        if ((dp >= 0) != (dq >= 0)) {
            const double t = dp / (dp - dq);
            out[2 * k] = p[0] + t * (q[0] - p[0]);
            out[2 * k + 1] = p[1] + t * (q[1] - p[1]);
            k++;
        }
    }
    return k;
}

/* Area of the (simple) polygon moved by (dx, dy) inside the pixel square
 * around (px, py), by Sutherland–Hodgman clipping. */
static double poly_cov(const double *v, int n, double dy, double dx, double px, double py)
{
    /* fast path: no edge near the square, so it is wholly in or out */
    bool near = false;
    for (int i = 0, j = n - 1; i < n && !near; j = i++) {
        const double xi = v[2 * i] + dx, yi = v[2 * i + 1] + dy;
        const double xj = v[2 * j] + dx, yj = v[2 * j + 1] + dy;
        near = fmax(xi, xj) >= px - 0.5 && fmin(xi, xj) <= px + 0.5 && fmax(yi, yj) >= py - 0.5 &&
               fmin(yi, yj) <= py + 0.5;
    }
    if (!near)
        return poly_inside(v, n, dy, dx, px, py) ? 1 : 0;
    double a[2 * (TSR__MASK_MAX_VERTICES + 8)], b[2 * (TSR__MASK_MAX_VERTICES + 8)];
    for (int i = 0; i < n; i++) {
        a[2 * i] = v[2 * i] + dx;
        a[2 * i + 1] = v[2 * i + 1] + dy;
    }
    int k = clip_half(a, n, 0, px - 0.5, 1, b);
    k = clip_half(b, k, 0, px + 0.5, -1, a);
    k = clip_half(a, k, 1, py - 0.5, 1, b);
    k = clip_half(b, k, 1, py + 0.5, -1, a);
    double area = 0;
    for (int i = 0; i < k; i++) {
        const double *p = a + 2 * i, *q = a + 2 * ((i + 1) % k);
        area += p[0] * q[1] - q[0] * p[1];
    }
    area = fabs(area) / 2;
    return area > 1 ? 1 : area;
}

void tsr__mask_render(const tsr__mask_shape_t *m, double dy, double dx, int64_t y, int64_t x0,
                      int64_t x1, float *out)
{
    const double *v = m->v;
    const double py = (double)y;
    for (int64_t x = x0; x < x1; x++) {
        const double px = (double)x;
        double val = 0;
        switch (m->kind) {
        case GEN_DISK:
        case GEN_RING: {
            const double cx = v[0] + dx, cy = v[1] + dy;
            const double ro = m->kind == GEN_DISK ? v[2] : v[3];
            const double ri = m->kind == GEN_DISK ? -1 : v[2];
            if (m->aa) {
                val = disk_cov(cx, cy, ro, px, py) - (ri > 0 ? disk_cov(cx, cy, ri, px, py) : 0);
            } else {
                const double ddx = px - cx, ddy = py - cy, d2 = ddx * ddx + ddy * ddy;
                val = d2 <= ro * ro && (ri < 0 ? true : d2 > ri * ri);
            }
            break;
        }
        case GEN_POINT:
            if (m->aa)
                val = overlap(px - 0.5, px + 0.5, v[0] + dx - 0.5, v[0] + dx + 0.5) *
                      overlap(py - 0.5, py + 0.5, v[1] + dy - 0.5, v[1] + dy + 0.5);
            else
                val = fabs(v[0] + dx) < 1e15 && fabs(v[1] + dy) < 1e15 && llround(v[0] + dx) == x &&
                      llround(v[1] + dy) == y;
            break;
        case GEN_RECT: {
            const double rx0 = v[0] + dx - 0.5, rx1 = rx0 + v[2];
            const double ry0 = v[1] + dy - 0.5, ry1 = ry0 + v[3];
            if (m->aa)
                val = overlap(px - 0.5, px + 0.5, rx0, rx1) * overlap(py - 0.5, py + 0.5, ry0, ry1);
            else
                val = px >= rx0 && px < rx1 && py >= ry0 && py < ry1;
            break;
        }
        default:
            if (m->aa)
                val = poly_cov(v, m->nv / 2, dy, dx, px, py);
            else
                val = poly_inside(v, m->nv / 2, dy, dx, px, py);
            break;
        }
        out[x - x0] = (float)val;
    }
}

/* ---- whole masks ------------------------------------------------------- */

int tsr__mask_generate_aa(const char *spec, const tsr_shape_t *sig, bool antialiased, float *out,
                          char *err, size_t errlen)
{
    tsr__mask_shape_t m;
    int rc = tsr__mask_parse(spec, sig, antialiased, &m, err, errlen);
    if (rc < 0)
        return rc;
    const int64_t h = sig->dims[0], w = sig->dims[1];
    memset(out, 0, (size_t)(h * w) * sizeof *out);
    int64_t y0, y1, x0, x1;
    tsr__mask_bbox(&m, 0, 0, h, w, &y0, &y1, &x0, &x1);
    for (int64_t y = y0; y < y1 && x0 < x1; y++)
        tsr__mask_render(&m, 0, 0, y, x0, x1, out + y * w + x0);
    return 0;
}

int tsr__mask_generate(const char *spec, const tsr_shape_t *sig, float *out, char *err,
                       size_t errlen)
{
    return tsr__mask_generate_aa(spec, sig, false, out, err, errlen);
}
