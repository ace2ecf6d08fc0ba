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

typedef enum { GEN_DISK, GEN_RING, GEN_POINT, GEN_RECT } gen_kind_t;

static const struct {
    const char *name;
    gen_kind_t kind;
    int nargs;
    const char *args;
} generators[] = {
    {"disk", GEN_DISK, 3, "cx,cy,r"},
    {"ring", GEN_RING, 4, "cx,cy,ri,ro"},
    {"point", GEN_POINT, 2, "cx,cy"},
    {"rect", GEN_RECT, 4, "x,y,w,h"},
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

int tsr__mask_generate(const char *spec, const tsr_shape_t *sig, float *out, char *err,
                       size_t errlen)
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

    double v[4];
    int count;
    char bad[64];
    const int want = generators[g].nargs;
    if (parse_numbers(spec + strlen(name) + 1, v, want, &count, bad, sizeof bad) < 0)
        return tsr__seterr(err, errlen, TSR_EINVAL, "mask '%s': '%s' is not a finite number", spec,
                           bad);
    if (count != want)
        return tsr__seterr(err, errlen, TSR_EINVAL, "mask '%s' needs %d numbers (%s)", spec, want,
                           generators[g].args);

    const int64_t h = sig->dims[0], w = sig->dims[1];
    memset(out, 0, (size_t)(h * w) * sizeof *out);

    switch (generators[g].kind) {
    case GEN_DISK:
    case GEN_RING: {
        const double cx = v[0], cy = v[1];
        double ri2 = -1.0, ro;
        if (generators[g].kind == GEN_DISK) {
            ro = v[2];
            if (ro < 0)
                return tsr__seterr(err, errlen, TSR_EINVAL, "mask '%s': radius r = %g must be >= 0",
                                   spec, ro);
        } else {
            ro = v[3];
            if (v[2] < 0 || v[2] > ro)
                return tsr__seterr(err, errlen, TSR_EINVAL,
                                   "mask '%s': radii must satisfy 0 <= ri <= ro (ri = %g, "
                                   "ro = %g)",
                                   spec, v[2], ro);
            ri2 = v[2] * v[2];
        }
        const double ro2 = ro * ro;
        for (int64_t y = 0; y < h; y++) {
            const double dy = (double)y - cy;
            float *row = out + y * w;
            for (int64_t x = 0; x < w; x++) {
                const double dx = (double)x - cx;
                const double d2 = dx * dx + dy * dy;
                row[x] = (d2 > ri2 && d2 <= ro2) ? 1.0f : 0.0f;
            }
        }
        return 0;
    }
    case GEN_POINT: {
        /* Far-away values are rejected before llround could overflow. */
        if (fabs(v[0]) > 1e15 || fabs(v[1]) > 1e15)
            goto point_outside;
        const long long x = llround(v[0]), y = llround(v[1]);
        if (x < 0 || y < 0 || x >= w || y >= h)
            goto point_outside;
        out[y * w + x] = 1.0f;
        return 0;
    point_outside:
        return tsr__seterr(err, errlen, TSR_EINVAL,
                           "mask '%s': point (cx=%g, cy=%g) lies outside the %lld x %lld "
                           "frame (height x width)",
                           spec, v[0], v[1], (long long)h, (long long)w);
    }
    case GEN_RECT: {
        for (int i = 0; i < 4; i++)
            if (v[i] != floor(v[i]) || fabs(v[i]) > 1e15)
                return tsr__seterr(err, errlen, TSR_EINVAL,
                                   "mask '%s': x,y,w,h must be integers, got %g", spec, v[i]);
        if (v[2] < 1 || v[3] < 1)
            return tsr__seterr(err, errlen, TSR_EINVAL,
                               "mask '%s': width and height must be >= 1 (w = %g, h = %g)", spec,
                               v[2], v[3]);
        const int64_t x0 = (int64_t)v[0], y0 = (int64_t)v[1];
        const int64_t x1 = x0 + (int64_t)v[2], y1 = y0 + (int64_t)v[3];
        for (int64_t y = y0 < 0 ? 0 : y0; y < y1 && y < h; y++)
            for (int64_t x = x0 < 0 ? 0 : x0; x < x1 && x < w; x++)
                out[y * w + x] = 1.0f;
        return 0;
    }
    }
    return tsr__seterr(err, errlen, TSR_EINVAL, "mask '%s': unknown generator", spec);
}
