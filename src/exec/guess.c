/*
 * guess.c — parameter guesses from the data: tsr_udf_guess (generic, by UDF
 * name) and tsr_com_guess (centre of mass).
 *
 * A guess runs ordinary runs over the dataset (same ROI and corrections as
 * the caller's) and derives parameters from their results.  The table
 * `guessers` lists the UDFs that have one; the CLI's `--guess` and the
 * other front ends only go through tsr_udf_guess, so a new guess is one
 * function and one line here.
 *
 * com: (1) `sum` gives the mean frame; its centre of mass is the centre
 * (with a finite r: the centre of mass within the disk, or annulus, around
 * the previous estimate, iterated until it moves less than 1e-6 pixel,
 * starting from the caller's cy, cx or the whole-frame centre of mass).
 * (2) `com` with that centre gives the raw shifts (with regression=1 the
 * least-squares plane is removed from them first: it carries no curl
 * information but biases the fit); (3) tsr__com_guess_rotation picks the
 * scan rotation and flip that minimise the mean square curl.
 */
#include "core/core.h"
#include "udf/builtin/com.h"

#include <stdio.h>

/* Run one UDF; *run_out holds the run (caller frees) on success. */
static int run_one(tsr_ctx_t *ctx, tsr_dataset_t *ds, const char *name, const tsr_params_t *p,
                   const tsr_run_opts_t *opts, tsr_udf_t **udf, tsr_run_t **run_out)
{
    int rc = tsr_udf_new(ctx, name, p, udf);
    if (rc < 0)
        return rc;
    tsr_run_t *run = NULL;
    if ((rc = tsr_run_start(ctx, ds, udf, 1, opts, &run)) < 0)
        return rc;
    *run_out = run;
    if ((rc = tsr_run_wait(run)) < 0)
        return tsr__ctx_seterr(ctx, rc, "%s", tsr_run_errmsg(run));
    return 0;
}

static int param_f64(tsr_ctx_t *ctx, const tsr_params_t *p, const char *key, double dflt,
                     double *out)
{
    const char *v = p ? tsr_params_get(p, key) : NULL;
    if (!v || !*v) {
        *out = dflt;
        return 0;
    }
    if (!strcmp(key, "r") && !strcasecmp(v, "inf")) {
        *out = INFINITY;
        return 0;
    }
    char what[64];
    snprintf(what, sizeof what, "com guess: %s", key);
    return tsr__parse_f64(v, out, ctx->errmsg, sizeof ctx->errmsg, what);
}

/* Centre of mass of img (h × w) within the disk / annulus (r, ri) around
 * (cy, cx); false if it holds no intensity. */
static bool masked_com(const double *img, int64_t h, int64_t w, double cy, double cx, double r,
                       double ri, double *oy, double *ox)
{
    double s = 0, sy = 0, sx = 0;
    for (int64_t y = 0; y < h; y++)
        for (int64_t x = 0; x < w; x++) {
            const double dy = (double)y - cy, dx = (double)x - cx, d2 = dy * dy + dx * dx;
            if (!isinf(r) && (d2 > r * r || (ri > 0 && d2 <= ri * ri)))
                continue;
            const double v = img[y * w + x];
            s += v;
            sy += v * (double)y;
            sx += v * (double)x;
        }
    if (!(s != 0) || !isfinite(s))
        return false;
    *oy = sy / s;
    *ox = sx / s;
    return true;
}

int tsr_com_guess(tsr_ctx_t *ctx, tsr_dataset_t *ds, const tsr_params_t *params,
                  const tsr_run_opts_t *opts, tsr_com_guess_t *out)
{
    if (!ctx || !ds || !out)
        return TSR_EINVAL;
    int rc = 0;
    tsr_udf_t *udf = NULL;
    tsr_run_t *run = NULL;
    tsr_params_t *cp = NULL;
    double *shy = NULL;
    tsr_shape_t sig, nav;
    tsr_dataset_sig_shape(ds, &sig);
    tsr_dataset_nav_shape(ds, &nav);
    char sh[128];
    TSR_CHECK(ctx, sig.ndim == 2, TSR_EUNSUPPORTED,
              "com guess: needs a 2-D signal, the dataset's signal has shape %s",
              tsr__shape_str(&sig, sh, sizeof sh));
    TSR_CHECK(ctx, nav.ndim == 2, TSR_EUNSUPPORTED,
              "com guess: needs a 2-D scan, the dataset's nav shape is %s",
              tsr__shape_str(&nav, sh, sizeof sh));
    const int64_t h = sig.dims[0], w = sig.dims[1], ny = nav.dims[0], nx = nav.dims[1];
    double r, ri, cy0 = NAN, cx0 = NAN, reg;
    TSR_TRY(param_f64(ctx, params, "r", INFINITY, &r));
    TSR_TRY(param_f64(ctx, params, "ri", 0, &ri));
    TSR_TRY(param_f64(ctx, params, "cy", NAN, &cy0));
    TSR_TRY(param_f64(ctx, params, "cx", NAN, &cx0));
    TSR_TRY(param_f64(ctx, params, "regression", -1, &reg));
    TSR_CHECK(ctx, r > 0 && ri >= 0 && ri < r, TSR_EINVAL,
              "com guess: radii must satisfy 0 <= ri < r (ri = %g, r = %g)", ri, r);

    /* (1) the centre of the mean frame */
    TSR_TRY(run_one(ctx, ds, "sum", NULL, opts, &udf, &run));
    const tsr_results_t *res;
    tsr_array_t a;
    TSR_TRY(tsr_run_results(run, &res));
    TSR_CHECK(ctx, tsr_results_find(res, 0, "intensity", &a) == 0 && a.dtype == TSR_F64,
              TSR_EUNSUPPORTED, "com guess: needs real data");
    const double *img = a.data;
    double cy, cx;
    if (isnan(cy0) || isnan(cx0)) {
        TSR_CHECK(ctx, masked_com(img, h, w, 0, 0, INFINITY, 0, &cy, &cx), TSR_EINVAL,
                  "com guess: the mean frame holds no intensity");
        if (!isnan(cy0))
            cy = cy0;
        if (!isnan(cx0))
            cx = cx0;
    } else {
        cy = cy0;
        cx = cx0;
    }
    if (!isinf(r) || ri > 0)
        for (int it = 0; it < 100; it++) {
            double ny_, nx_;
            TSR_CHECK(ctx, masked_com(img, h, w, cy, cx, r, ri, &ny_, &nx_), TSR_EINVAL,
                      "com guess: the mean frame holds no intensity within r = %g of "
                      "(%g, %g)",
                      r, cy, cx);
            const double moved = fabs(ny_ - cy) + fabs(nx_ - cx);
            cy = ny_;
            cx = nx_;
            if (moved < 1e-6)
                break;
        }
    tsr_run_free(run);
    run = NULL;
    tsr_udf_free(udf);
    udf = NULL;

    /* (2) the raw shifts around it */
    char v[64];
    TSR_TRY(tsr_params_new(ctx, &cp));
    snprintf(v, sizeof v, "%.17g", cy);
    TSR_TRY(tsr_params_add(cp, "cy", v));
    snprintf(v, sizeof v, "%.17g", cx);
    TSR_TRY(tsr_params_add(cp, "cx", v));
    snprintf(v, sizeof v, "%.17g", r);
    if (!isinf(r))
        TSR_TRY(tsr_params_add(cp, "r", v));
    snprintf(v, sizeof v, "%.17g", ri);
    TSR_TRY(tsr_params_add(cp, "ri", v));
    TSR_TRY(run_one(ctx, ds, "com", cp, opts, &udf, &run));
    TSR_TRY(tsr_run_results(run, &res));
    TSR_CHECK(ctx, tsr_results_find(res, 0, "raw_shifts", &a) == 0, TSR_ENOTFOUND,
              "com guess: no raw_shifts");
    const int64_t n = ny * nx;
    TSR_CHECK(ctx, (shy = tsr__malloc(ctx, (size_t)n * 2 * sizeof *shy)), TSR_ENOMEM,
              "out of memory");
    double *shx = shy + n;
    for (int64_t i = 0; i < n; i++) {
        shy[i] = tsr__load_f64(a.data, a.dtype, (size_t)(2 * i));
        shx[i] = tsr__load_f64(a.data, a.dtype, (size_t)(2 * i + 1));
    }
    if (reg >= 1) {
        double pl[3][2];
        tsr__com_regression(shy, shx, a.valid, ny, nx, 1, pl);
        for (int64_t y = 0; y < ny; y++)
            for (int64_t x = 0; x < nx; x++) {
                const int64_t i = y * nx + x;
                shy[i] -= pl[0][0] + pl[1][0] * (double)y + pl[2][0] * (double)x;
                shx[i] -= pl[0][1] + pl[1][1] * (double)y + pl[2][1] * (double)x;
            }
    }
    /* (3) rotation and flip */
    double rot, rms;
    bool flip;
    TSR_TRY(tsr__com_guess_rotation(ctx, shy, shx, a.valid, ny, nx, &rot, &flip, &rms));
    out->cy = cy;
    out->cx = cx;
    out->scan_rotation = rot;
    out->flip_y = flip;
    out->rms_curl = rms;
fail:
    tsr__free(ctx, shy);
    tsr_run_free(run);
    tsr_udf_free(udf);
    tsr_params_free(cp);
    return rc;
}

/* ---- the generic entry point ------------------------------------------- */

static int guess_com(tsr_ctx_t *ctx, tsr_dataset_t *ds, const tsr_params_t *params,
                     const tsr_run_opts_t *opts, tsr_params_t *out)
{
    tsr_com_guess_t g;
    int rc = tsr_com_guess(ctx, ds, params, opts, &g);
    if (rc < 0)
        return rc;
    char v[64];
    snprintf(v, sizeof v, "%.10g", g.cy);
    if ((rc = tsr_params_add(out, "cy", v)) < 0)
        return rc;
    snprintf(v, sizeof v, "%.10g", g.cx);
    if ((rc = tsr_params_add(out, "cx", v)) < 0)
        return rc;
    snprintf(v, sizeof v, "%.10g", g.scan_rotation);
    if ((rc = tsr_params_add(out, "scan_rotation", v)) < 0)
        return rc;
    return tsr_params_add(out, "flip_y", g.flip_y ? "true" : "false");
}

static const struct {
    const char *udf;
    int (*guess)(tsr_ctx_t *, tsr_dataset_t *, const tsr_params_t *, const tsr_run_opts_t *,
                 tsr_params_t *);
} guessers[] = {
    {"com", guess_com},
};

bool tsr_udf_has_guess(const char *name)
{
    for (size_t i = 0; name && i < sizeof guessers / sizeof guessers[0]; i++)
        if (!strcmp(guessers[i].udf, name))
            return true;
    return false;
}

int tsr_udf_guess(tsr_ctx_t *ctx, tsr_dataset_t *ds, const char *name, const tsr_params_t *params,
                  const tsr_run_opts_t *opts, tsr_params_t *out)
{
    if (!ctx || !ds || !name || !out)
        return TSR_EINVAL;
    for (size_t i = 0; i < sizeof guessers / sizeof guessers[0]; i++)
        if (!strcmp(guessers[i].udf, name))
            return guessers[i].guess(ctx, ds, params, opts, out);
    return tsr__ctx_seterr(ctx, TSR_EUNSUPPORTED, "UDF '%s' has no parameter guess", name);
}
