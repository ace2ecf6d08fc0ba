/*
 * roi.c — building the ROI mask of `tessera run --roi` (see roi.h).
 *
 * Geometry is in scan pixels with the numpy convention: y is the first nav
 * axis, x the second.  A rectangle selects rows [y, y+h) and columns
 * [x, x+w), clipped to the scan; a disk selects positions with
 * (y-cy)^2 + (x-cx)^2 <= r^2.  A mask file must have exactly the nav shape
 * and an integer or bool dtype; nonzero selects.
 */
#include "roi.h"

#include "cli.h"
#include "npyload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CLI_ROI_LIMIT ((int64_t)1 << 40) /* bound on rect values, far beyond any scan */

/* Split a comma list into exactly n fields (modifies buf). */
static bool split_fields(char *buf, char **fields, int n)
{
    int k = 0;
    char *p = buf;
    for (;;) {
        if (k == n)
            return false;
        fields[k++] = p;
        char *comma = strchr(p, ',');
        if (!comma)
            break;
        *comma = '\0';
        p = comma + 1;
    }
    return k == n;
}

static int bad_roi(const char *text, const char *why)
{
    return cli_error(CLI_USAGE, "bad --roi '%s': %s", text, why);
}

static int parse_rect(const char *text, const char *args, cli_roi_spec_t *out)
{
    char buf[256];
    char *f[4];
    int64_t v[4];
    if (strlen(args) >= sizeof buf)
        return bad_roi(text, "too long");
    snprintf(buf, sizeof buf, "%s", args);
    if (!split_fields(buf, f, 4) || !cli_parse_i64(f[0], false, &v[0]) ||
        !cli_parse_i64(f[1], false, &v[1]) || !cli_parse_i64(f[2], false, &v[2]) ||
        !cli_parse_i64(f[3], false, &v[3]))
        return bad_roi(text, "expected rect:y,x,h,w with four integers");
    if (v[2] <= 0 || v[3] <= 0)
        return bad_roi(text, "height and width must be positive");
    for (int i = 0; i < 4; i++)
        if (v[i] > CLI_ROI_LIMIT || v[i] < -CLI_ROI_LIMIT)
            return bad_roi(text, "value out of range");
    out->kind = CLI_ROI_RECT;
    out->y = v[0], out->x = v[1], out->h = v[2], out->w = v[3];
    return CLI_OK;
}

static int parse_disk(const char *text, const char *args, cli_roi_spec_t *out)
{
    char buf[256];
    char *f[3];
    double v[3];
    if (strlen(args) >= sizeof buf)
        return bad_roi(text, "too long");
    snprintf(buf, sizeof buf, "%s", args);
    if (!split_fields(buf, f, 3) || !cli_parse_double(f[0], &v[0]) ||
        !cli_parse_double(f[1], &v[1]) || !cli_parse_double(f[2], &v[2]))
        return bad_roi(text, "expected disk:cy,cx,r with three numbers");
    if (v[2] < 0)
        return bad_roi(text, "the radius must not be negative");
    out->kind = CLI_ROI_DISK;
    out->cy = v[0], out->cx = v[1], out->r = v[2];
    return CLI_OK;
}

static bool ends_with_npy(const char *s)
{
    size_t n = strlen(s);
    return n > 4 && !strcasecmp(s + n - 4, ".npy");
}

int cli_roi_parse(const char *text, cli_roi_spec_t *out)
{
    memset(out, 0, sizeof *out);
    out->text = text;
    if (!strncmp(text, "rect:", 5))
        return parse_rect(text, text + 5, out);
    if (!strncmp(text, "disk:", 5))
        return parse_disk(text, text + 5, out);
    if (ends_with_npy(text)) {
        out->kind = CLI_ROI_FILE;
        out->path = text;
        return CLI_OK;
    }
    return bad_roi(text, "expected rect:y,x,h,w, disk:cy,cx,r or FILE.npy");
}

/* ---- building ---------------------------------------------------------- */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void fill_rect(const cli_roi_spec_t *s, int64_t ny, int64_t nx, uint8_t *m)
{
    /* Parsing bounded every value by CLI_ROI_LIMIT, so these sums cannot
     * overflow. */
    int64_t y0 = clamp64(s->y, 0, ny), y1 = clamp64(s->y + s->h, 0, ny);
    int64_t x0 = clamp64(s->x, 0, nx), x1 = clamp64(s->x + s->w, 0, nx);
    for (int64_t y = y0; y < y1; y++)
        for (int64_t x = x0; x < x1; x++)
            m[y * nx + x] = 1;
}

static void fill_disk(const cli_roi_spec_t *s, int64_t ny, int64_t nx, uint8_t *m)
{
    double r2 = s->r * s->r;
    for (int64_t y = 0; y < ny; y++) {
        double dy = (double)y - s->cy;
        for (int64_t x = 0; x < nx; x++) {
            double dx = (double)x - s->cx;
            m[y * nx + x] = dy * dy + dx * dx <= r2;
        }
    }
}

static int build_geometric(const cli_roi_spec_t *s, const tsr_shape_t *nav, uint8_t *m)
{
    char shp[128];
    cli_format_shape(nav->dims, nav->ndim, shp, sizeof shp);
    if (nav->ndim != 2)
        return cli_error(CLI_USAGE, "--roi %s needs a 2-D scan, but the nav shape is %s", s->text,
                         shp);
    if (s->kind == CLI_ROI_RECT)
        fill_rect(s, nav->dims[0], nav->dims[1], m);
    else
        fill_disk(s, nav->dims[0], nav->dims[1], m);
    int64_t n = nav->dims[0] * nav->dims[1];
    for (int64_t i = 0; i < n; i++)
        if (m[i])
            return CLI_OK;
    return cli_error(CLI_USAGE, "--roi %s selects no position of the %s scan", s->text, shp);
}

static bool same_shape(const cli_npy_t *a, const tsr_shape_t *s)
{
    if (a->ndim != s->ndim)
        return false;
    for (int i = 0; i < s->ndim; i++)
        if (a->shape[i] != s->dims[i])
            return false;
    return true;
}

static int build_from_file(const cli_roi_spec_t *s, const tsr_shape_t *nav, uint8_t **mask)
{
    cli_npy_t a;
    char err[512];
    if (cli_npy_load(s->path, &a, err, sizeof err) != 0)
        return cli_error(CLI_FAIL, "--roi %s", err);
    int rc = CLI_OK;
    if (a.kind == 'f') {
        rc = cli_error(CLI_FAIL, "--roi %s: dtype '%s' is not bool or integer", s->path, a.descr);
    } else if (!same_shape(&a, nav)) {
        char want[128], found[128];
        cli_format_shape(nav->dims, nav->ndim, want, sizeof want);
        cli_format_shape(a.shape, a.ndim, found, sizeof found);
        rc = cli_error(CLI_FAIL, "--roi %s: expected the nav shape %s, found %s", s->path, want,
                       found);
    } else if (!(*mask = cli_npy_to_mask(&a))) {
        rc = cli_error(CLI_FAIL, "out of memory");
    }
    cli_npy_free(&a);
    return rc;
}

int cli_roi_build(const cli_roi_spec_t *spec, const tsr_shape_t *nav, uint8_t **mask)
{
    if (spec->kind == CLI_ROI_FILE)
        return build_from_file(spec, nav, mask);
    int64_t n = tsr_shape_size(nav);
    uint8_t *m = calloc(n > 0 ? (size_t)n : 1, 1);
    if (!m)
        return cli_error(CLI_FAIL, "out of memory for a ROI of %" PRId64 " positions", n);
    int rc = build_geometric(spec, nav, m);
    if (rc != CLI_OK) {
        free(m);
        return rc;
    }
    *mask = m;
    return CLI_OK;
}
