/*
 * radial.c — parameters, polar geometry and excluded-pixel masks shared by
 * the ring-shaped analyses (see radial.h).
 */
#include "udf/builtin/radial.h"

#include "io/formats/npy/npy.h"

int tsr__radial_sig2d(tsr_udf_init_t *init, const char *udf, int64_t *h, int64_t *w)
{
    const tsr_shape_t *sig = &init->meta->sig_shape;
    if (sig->ndim != 2) {
        char sh[128];
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "%s: needs a 2-D signal, the dataset's is %s (set "
                                      "sig_shape=h,w)",
                                      udf, tsr__shape_str(sig, sh, sizeof sh));
    }
    if (sig->dims[0] * sig->dims[1] >= INT32_MAX)
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "%s: frames of %lld x %lld pixels are too large (at most "
                                      "2^31 - 1 pixels)",
                                      udf, (long long)sig->dims[0], (long long)sig->dims[1]);
    *h = sig->dims[0];
    *w = sig->dims[1];
    return 0;
}

int tsr__radial_f64(tsr_udf_init_t *init, const char *udf, const char *key, double dflt,
                    double *out, bool *given)
{
    const char *v = tsr_params_get(init->params, key);
    if (given)
        *given = v != NULL;
    if (!v) {
        *out = dflt;
        return 0;
    }
    char what[96], err[200];
    snprintf(what, sizeof what, "%s: parameter '%s'", udf, key);
    int rc = tsr__parse_f64(v, out, err, sizeof err, what);
    if (rc < 0)
        return tsr__builtin_init_fail(init, rc, "%s", err);
    return 0;
}

int tsr__radial_i64(tsr_udf_init_t *init, const char *udf, const char *key, int64_t dflt,
                    int64_t *out, bool *given)
{
    const char *v = tsr_params_get(init->params, key);
    if (given)
        *given = v != NULL;
    if (!v) {
        *out = dflt;
        return 0;
    }
    char what[96], err[200];
    snprintf(what, sizeof what, "%s: parameter '%s'", udf, key);
    int rc = tsr__parse_i64(v, out, err, sizeof err, what);
    if (rc < 0)
        return tsr__builtin_init_fail(init, rc, "%s", err);
    return 0;
}

int tsr__radial_bool(tsr_udf_init_t *init, const char *udf, const char *key, bool dflt, bool *out)
{
    const char *v = tsr_params_get(init->params, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    char what[96], err[200];
    snprintf(what, sizeof what, "%s: parameter '%s'", udf, key);
    int rc = tsr__parse_bool(v, out, err, sizeof err, what);
    if (rc < 0)
        return tsr__builtin_init_fail(init, rc, "%s", err);
    return 0;
}

int tsr__radial_center(tsr_udf_init_t *init, const char *udf, int64_t h, int64_t w, double *cx,
                       double *cy)
{
    int rc = tsr__radial_f64(init, udf, "cx", (double)w / 2, cx, NULL);
    if (rc == 0)
        rc = tsr__radial_f64(init, udf, "cy", (double)h / 2, cy, NULL);
    return rc;
}

double tsr__radial_bounding(double cx, double cy, int64_t h, int64_t w)
{
    double dy = fmax(cy, (double)h - cy), dx = fmax(cx, (double)w - cx);
    return ceil(sqrt(dy * dy + dx * dx)) + 1;
}

int tsr__radial_exclude(tsr_udf_init_t *init, const char *udf, int64_t h, int64_t w, uint8_t **out)
{
    *out = NULL;
    const char *path = tsr_params_get(init->params, "exclude");
    if (!path)
        return 0;
    tsr_shape_t shape;
    void *data = NULL;
    int rc = tsr__npy_load(init->ctx, path, TSR_F64, &shape, &data);
    if (rc < 0)
        return tsr__builtin_init_fail(init, rc, "%s: exclude: %s", udf, tsr_ctx_errmsg(init->ctx));
    if (shape.ndim != 2 || shape.dims[0] != h || shape.dims[1] != w) {
        char sh[128];
        tsr__free(init->ctx, data);
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "%s: exclude file '%s' has shape %s, expected the signal "
                                      "shape (%lld, %lld)",
                                      udf, path, tsr__shape_str(&shape, sh, sizeof sh),
                                      (long long)h, (long long)w);
    }
    uint8_t *m = tsr_alloc(init->ctx, (size_t)(h * w));
    if (!m) {
        tsr__free(init->ctx, data);
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "%s: out of memory", udf);
    }
    const double *d = data;
    for (int64_t i = 0; i < h * w; i++)
        m[i] = d[i] != 0; /* NaN != 0 */
    tsr__free(init->ctx, data);
    *out = m;
    return 0;
}
