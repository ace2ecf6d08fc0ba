/*
 * png.c — the PNG writer (libpng): an 8-bit RGB image through a colormap.
 *
 * The array must have at most two dimensions longer than 1 (a 1-D array
 * becomes a 1 x N image; more dimensions are refused with a hint to use .npy
 * or .h5).  Values are real numbers (complex ones: their modulus).  The
 * colour scale runs from the minimum to the maximum of the finite values
 * that are valid (for NAV buffers with a valid mask, the positions whose flag
 * is set); NaN, infinite and invalid pixels are drawn black.  With
 * opts->log, a value v is placed at log1p(v - min) / log1p(max - min).  A
 * position t in [0, 1] takes colour min(floor(256 t), 255) of a 256-entry
 * table, as matplotlib does; all-equal values take the first colour.
 *
 * The tables: "gray" is the identity; "viridis" (default) and "magma" are
 * interpolated linearly between anchors sampled every 5 entries (52 of
 * them) from the published matplotlib colormaps by van der Walt and Smith,
 * which reproduces the 8-bit colours within one level.
 *
 * The file is written with libpng's simplified API, which reports errors
 * through the png_image instead of longjmp.
 */
#include "export/export.h"

#include <png.h>

#include <errno.h>
#include <math.h>
#include <string.h>

/* PNG allows 2^31 - 1, but libpng refuses more than its user limit. */
#define PNG_MAX_SIDE 1000000

/* ======================================================================
 * Colormaps
 * ====================================================================== */

#define N_ANCHORS 52
#define ANCHOR_STEP 5 /* (N_ANCHORS - 1) * ANCHOR_STEP == 255 */

static const float viridis_anchors[N_ANCHORS][3] = {
    {0.267004f, 0.004874f, 0.329415f}, {0.273809f, 0.031497f, 0.358853f},
    {0.278791f, 0.062145f, 0.386592f}, {0.281924f, 0.089666f, 0.412415f},
    {0.283197f, 0.115680f, 0.436115f}, {0.282623f, 0.140926f, 0.457517f},
    {0.280255f, 0.165693f, 0.476498f}, {0.276194f, 0.190074f, 0.493001f},
    {0.270595f, 0.214069f, 0.507052f}, {0.263663f, 0.237631f, 0.518762f},
    {0.255645f, 0.260703f, 0.528312f}, {0.246811f, 0.283237f, 0.535941f},
    {0.237441f, 0.305202f, 0.541921f}, {0.227802f, 0.326594f, 0.546532f},
    {0.218130f, 0.347432f, 0.550038f}, {0.208623f, 0.367752f, 0.552675f},
    {0.199430f, 0.387607f, 0.554642f}, {0.190631f, 0.407061f, 0.556089f},
    {0.182256f, 0.426184f, 0.557120f}, {0.174274f, 0.445044f, 0.557792f},
    {0.166617f, 0.463708f, 0.558119f}, {0.159194f, 0.482237f, 0.558073f},
    {0.151918f, 0.500685f, 0.557587f}, {0.144759f, 0.519093f, 0.556572f},
    {0.137770f, 0.537492f, 0.554906f}, {0.131172f, 0.555899f, 0.552459f},
    {0.125394f, 0.574318f, 0.549086f}, {0.121148f, 0.592739f, 0.544641f},
    {0.119423f, 0.611141f, 0.538982f}, {0.121380f, 0.629492f, 0.531973f},
    {0.128087f, 0.647749f, 0.523491f}, {0.140210f, 0.665859f, 0.513427f},
    {0.157851f, 0.683765f, 0.501686f}, {0.180653f, 0.701402f, 0.488189f},
    {0.208030f, 0.718701f, 0.472873f}, {0.239374f, 0.735588f, 0.455688f},
    {0.274149f, 0.751988f, 0.436601f}, {0.311925f, 0.767822f, 0.415586f},
    {0.352360f, 0.783011f, 0.392636f}, {0.395174f, 0.797475f, 0.367757f},
    {0.440137f, 0.811138f, 0.340967f}, {0.487026f, 0.823929f, 0.312321f},
    {0.535621f, 0.835785f, 0.281908f}, {0.585678f, 0.846661f, 0.249897f},
    {0.636902f, 0.856542f, 0.216620f}, {0.688944f, 0.865448f, 0.182725f},
    {0.741388f, 0.873449f, 0.149561f}, {0.793760f, 0.880678f, 0.120005f},
    {0.845561f, 0.887322f, 0.099702f}, {0.896320f, 0.893616f, 0.096335f},
    {0.945636f, 0.899815f, 0.112838f}, {0.993248f, 0.906157f, 0.143936f},
};
static const float magma_anchors[N_ANCHORS][3] = {
    {0.001462f, 0.000466f, 0.013866f}, {0.007588f, 0.006356f, 0.044973f},
    {0.018815f, 0.016026f, 0.084584f}, {0.035520f, 0.028397f, 0.125209f},
    {0.056615f, 0.042160f, 0.167446f}, {0.078815f, 0.054184f, 0.211667f},
    {0.102815f, 0.063010f, 0.257854f}, {0.129380f, 0.067935f, 0.305443f},
    {0.159018f, 0.068354f, 0.352688f}, {0.191460f, 0.064818f, 0.396152f},
    {0.225302f, 0.060445f, 0.431742f}, {0.258857f, 0.059706f, 0.457710f},
    {0.291366f, 0.064553f, 0.475462f}, {0.322899f, 0.073782f, 0.487408f},
    {0.353773f, 0.085373f, 0.495501f}, {0.384299f, 0.097855f, 0.501002f},
    {0.414709f, 0.110431f, 0.504662f}, {0.445163f, 0.122724f, 0.506901f},
    {0.475780f, 0.134577f, 0.507921f}, {0.506629f, 0.145958f, 0.507806f},
    {0.537755f, 0.156894f, 0.506551f}, {0.569172f, 0.167454f, 0.504105f},
    {0.600868f, 0.177743f, 0.500394f}, {0.632805f, 0.187893f, 0.495332f},
    {0.664915f, 0.198075f, 0.488836f}, {0.697098f, 0.208501f, 0.480835f},
    {0.729216f, 0.219437f, 0.471279f}, {0.761077f, 0.231214f, 0.460162f},
    {0.792427f, 0.244242f, 0.447543f}, {0.822926f, 0.259016f, 0.433573f},
    {0.852126f, 0.276106f, 0.418573f}, {0.879464f, 0.296125f, 0.403118f},
    {0.904281f, 0.319610f, 0.388137f}, {0.925937f, 0.346844f, 0.374959f},
    {0.944006f, 0.377643f, 0.365136f}, {0.958464f, 0.411324f, 0.360014f},
    {0.969680f, 0.446936f, 0.360311f}, {0.978210f, 0.483612f, 0.366025f},
    {0.984622f, 0.520713f, 0.376698f}, {0.989363f, 0.557873f, 0.391671f},
    {0.992785f, 0.594891f, 0.410283f}, {0.995122f, 0.631696f, 0.431951f},
    {0.996580f, 0.668256f, 0.456192f}, {0.997254f, 0.704611f, 0.482635f},
    {0.997285f, 0.740772f, 0.510983f}, {0.996727f, 0.776795f, 0.541039f},
    {0.995680f, 0.812706f, 0.572645f}, {0.994222f, 0.848540f, 0.605696f},
    {0.992440f, 0.884330f, 0.640099f}, {0.990570f, 0.920049f, 0.675675f},
    {0.988717f, 0.955742f, 0.712242f}, {0.987053f, 0.991438f, 0.749504f},
};

/* Fill lut with the 256 colours of a map; TSR_EINVAL for an unknown name. */
static int colormap(tsr_ctx_t *ctx, const char *name, const char *path, uint8_t lut[256][3])
{
    const float(*anchors)[3];

    if (name == NULL || name[0] == '\0' || strcmp(name, "viridis") == 0) {
        anchors = viridis_anchors;
    } else if (strcmp(name, "magma") == 0) {
        anchors = magma_anchors;
    } else if (strcmp(name, "gray") == 0 || strcmp(name, "grey") == 0) {
        for (int i = 0; i < 256; i++)
            lut[i][0] = lut[i][1] = lut[i][2] = (uint8_t)i;
        return 0;
    } else {
        return tsr__ctx_seterr(ctx, TSR_EINVAL,
                               "cannot write '%s': unknown colormap '%s' (supported: viridis, "
                               "magma, gray)",
                               path, name);
    }
    for (int i = 0; i < 256; i++) {
        int a = i / ANCHOR_STEP;
        float f = (float)(i % ANCHOR_STEP) / ANCHOR_STEP;
        for (int c = 0; c < 3; c++) {
            float v = anchors[a][c];
            if (a + 1 < N_ANCHORS)
                v += f * (anchors[a + 1][c] - v);
            lut[i][c] = (uint8_t)floorf(v * 255.0f + 0.5f);
        }
    }
    return 0;
}

/* ======================================================================
 * Writer
 * ====================================================================== */

/* Whether element i is drawn: valid (if the array has a mask) and finite. */
static bool drawn(const tsr_array_t *arr, size_t stride, size_t i, double *v)
{
    if (stride != 0 && !arr->valid[i / stride])
        return false;
    *v = tsr__export_real(arr, i);
    return isfinite(*v);
}

int tsr__png_write(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path,
                   const tsr_export_opts_t *opts)
{
    tsr__export_pages_t pg;
    uint8_t lut[256][3];
    png_image img;
    uint8_t *rgb = NULL;
    char *tmp = NULL;
    FILE *f = NULL;
    size_t n_pix, n_bytes, stride;
    double lo = INFINITY, hi = -INFINITY, range, v;
    bool use_log = opts != NULL && opts->log, halves;
    int rc = 0;

    TSR_TRY(tsr__export_check(ctx, arr, path, NULL, NULL));
    TSR_TRY(tsr__export_pages(ctx, arr, path, 2, &pg));
    TSR_TRY(colormap(ctx, opts ? opts->colormap : NULL, path, lut));
    TSR_CHECK(ctx, pg.width <= PNG_MAX_SIDE && pg.height <= PNG_MAX_SIDE, TSR_EINVAL,
              "cannot write '%s': a %lld x %lld image exceeds the PNG limit of %d pixels a "
              "side; write .npy, .tif or .h5 instead",
              path, (long long)pg.height, (long long)pg.width, PNG_MAX_SIDE);
    n_pix = (size_t)pg.width * (size_t)pg.height; /* bounded by the checks above */
    TSR_CHECK(ctx, tsr__mul_size(n_pix, 3, &n_bytes), TSR_EOVERFLOW,
              "cannot write '%s': the image's size overflows", path);
    rgb = tsr__malloc(ctx, n_bytes);
    TSR_CHECK(ctx, rgb != NULL, TSR_ENOMEM, "cannot write '%s': out of memory", path);

    /* With one page, pixel (r, c) is element r * row_step + c * col_step;
     * the scale comes from all of them. */
    stride = tsr__export_valid_stride(arr);
    for (int64_t r = 0; r < pg.height; r++)
        for (int64_t c = 0; c < pg.width; c++)
            if (drawn(arr, stride, (size_t)r * pg.row_step + (size_t)c * pg.col_step, &v)) {
                lo = v < lo ? v : lo;
                hi = v > hi ? v : hi;
            }
    range = hi - lo;
    /* A range too wide for a double is scaled in halves. */
    halves = !isfinite(range) && hi >= lo;
    if (halves)
        range = hi / 2 - lo / 2;
    if (use_log)
        range = log1p(range);

    for (int64_t r = 0; r < pg.height; r++) {
        for (int64_t c = 0; c < pg.width; c++) {
            uint8_t *px = rgb + ((size_t)r * (size_t)pg.width + (size_t)c) * 3;
            double t;
            int k;
            if (!drawn(arr, stride, (size_t)r * pg.row_step + (size_t)c * pg.col_step, &v)) {
                px[0] = px[1] = px[2] = 0;
                continue;
            }
            t = halves ? v / 2 - lo / 2 : v - lo;
            if (use_log)
                t = log1p(t);
            t = range > 0 ? t / range : 0;
            k = t >= 1 ? 255 : t <= 0 ? 0 : (int)(t * 256);
            k = k > 255 ? 255 : k;
            memcpy(px, lut[k], 3);
        }
    }

    TSR_TRY(tsr__export_tmp_path(ctx, path, &tmp));
    f = fopen(tmp, "wb");
    if (f == NULL) {
        rc = tsr__export_ioerr(ctx, path, errno);
        goto fail;
    }
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)pg.width;
    img.height = (png_uint_32)pg.height;
    img.format = PNG_FORMAT_RGB;
    errno = 0;
    if (!png_image_write_to_stdio(&img, f, 0, rgb, 0, NULL)) {
        int err = errno;
        rc = err ? tsr__export_ioerr(ctx, path, err)
                 : tsr__ctx_seterr(ctx, TSR_EIO, "cannot write PNG file '%s': %s", path,
                                   img.message);
        goto fail;
    }
    rc = fclose(f);
    f = NULL;
    if (rc != 0)
        rc = tsr__export_ioerr(ctx, path, errno);

fail:
    if (f != NULL)
        fclose(f);
    tsr__free(ctx, rgb);
    return tsr__export_finish(ctx, tmp, path, rc);
}
