/*
 * tiff.c — the TIFF writer (libtiff): float32 samples.
 *
 * Every array becomes one or more grey float32 images (SampleFormat
 * IEEEFP, 32 bits, one sample per pixel, uncompressed, in strips of about
 * 8 KiB).  Which dimensions become rows, columns and pages is the rule of
 * tsr__export_pages() (export.h): after dropping dimensions of size 1, one
 * page for up to two dimensions; for three, the pages run along the extra
 * (trailing) dimension of a NAV or SIG buffer — page k is arr[..., k] — and
 * along the first dimension of a SINGLE buffer, an image stack; more
 * dimensions are refused.  Pages after the first are marked as pages of one
 * document (SubfileType page, PageNumber k of n) as ImageJ and tifffile
 * expect.
 *
 * Values are converted to float32 (complex ones to their modulus); NAV
 * positions whose valid flag is 0 are written as NaN.  Images of more than
 * about 4 GiB are written as BigTIFF.  libtiff's messages go to a handler
 * local to this call (TIFFOpenExt), never to stderr or a global handler.
 *
 * libtiff is not linked: it is opened on the first TIFF export (once per
 * process, whichever thread gets there first) and called through the table
 * tif_api, because loading it with the codecs it depends on (libjpeg,
 * libwebp, libzstd, liblzma, libjbig, libdeflate, ...) would slow every
 * process start.  <tiffio.h> still gives the types and constants.  Where
 * libtiff cannot be loaded, or is older than 4.5 (no TIFFOpenExt), writing
 * TIFF fails with TSR_EUNSUPPORTED and the reason.
 */
#include "export/export.h"
#include "platform/os.h"

#include <tiffio.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

/* ---- libtiff, loaded on first use ------------------------------------ */

/* The build passes the SONAME and the file of the libtiff it found; then
 * the usual names of libtiff 4.5 and later (SONAME 6). */
#ifndef TSR_TIFF_SONAME
#define TSR_TIFF_SONAME ""
#endif
#ifndef TSR_TIFF_PATH
#define TSR_TIFF_PATH ""
#endif

/* Every libtiff function this file calls; the table's fields have their
 * names and, through __typeof__, exactly the header's types (TIFFSetField
 * is the variadic int (*)(TIFF *, uint32_t, ...), called as such). */
#define TIF_FUNCS(X)                        \
    X(TIFFOpenOptionsAlloc)                 \
    X(TIFFOpenOptionsFree)                  \
    X(TIFFOpenOptionsSetErrorHandlerExtR)   \
    X(TIFFOpenOptionsSetWarningHandlerExtR) \
    X(TIFFOpenExt)                          \
    X(TIFFSetField)                         \
    X(TIFFDefaultStripSize)                 \
    X(TIFFWriteScanline)                    \
    X(TIFFWriteDirectory)                   \
    X(TIFFFlush)                            \
    X(TIFFClose)

typedef struct tif_api {
#define TIF_FIELD(fn) __typeof__(&fn) fn;
    TIF_FUNCS(TIF_FIELD)
#undef TIF_FIELD
} tif_api_t;

/* Written once by tif_load (under tif_once), read-only afterwards: either
 * tif_ok is set and tif_api is complete, or tif_err says why not. */
static tif_api_t tif_api;
static bool tif_ok;
static char tif_err[400];
static tsr__once_t tif_once = TSR__ONCE_INIT;

static void tif_load(void)
{
    static const char *const names[] = {TSR_TIFF_SONAME, TSR_TIFF_PATH, "libtiff.so.6",
                                        "libtiff.so", NULL};
    tif_api_t api = {0};
    const char *name = NULL;
    char why[300];
    void *lib, *sym;

    lib = tsr__dl_open(names, why, sizeof why);
    if (lib == NULL) {
        snprintf(tif_err, sizeof tif_err, "libtiff could not be loaded: %s", why);
        return;
    }
#define TIF_RESOLVE(fn)                               \
    if ((sym = tsr__dl_sym(lib, name = #fn)) == NULL) \
        goto missing;                                 \
    api.fn = (__typeof__(api.fn))sym;
    TIF_FUNCS(TIF_RESOLVE)
#undef TIF_RESOLVE
    tif_api = api;
    tif_ok = true;
    return;

missing:
    snprintf(tif_err, sizeof tif_err,
             "the libtiff loaded has no symbol %s (libtiff 4.5 or later is needed)", name);
}

/* Load libtiff if not yet done (thread-safe); TSR_EUNSUPPORTED if it
 * cannot be. */
static int tif_ready(tsr_ctx_t *ctx, const char *path)
{
    tsr__once(&tif_once, tif_load);
    if (!tif_ok)
        return tsr__ctx_seterr(ctx, TSR_EUNSUPPORTED, "cannot write TIFF file '%s': %s", path,
                               tif_err);
    return 0;
}

/* ---- writing --------------------------------------------------------- */

typedef struct tiff_err {
    char msg[200];
} tiff_err_t;

/* libtiff error handler: keep the first message, report it as handled so
 * that no global handler prints it. */
static int on_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    tiff_err_t *e = user;

    if (e->msg[0] == '\0')
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    return 1;
}

static int on_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    return 1;
}

static int tiff_fail(tsr_ctx_t *ctx, const char *path, const tiff_err_t *e, int err)
{
    if (err != 0)
        return tsr__export_ioerr(ctx, path, err);
    return tsr__ctx_seterr(ctx, TSR_EIO, "cannot write TIFF file '%s': %s", path,
                           e->msg[0] ? e->msg : "libtiff failed");
}

static bool set_tags(TIFF *tif, const tsr__export_pages_t *pg, int64_t page)
{
    bool ok = tif_api.TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)pg->width) &&
              tif_api.TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)pg->height) &&
              tif_api.TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 32) &&
              tif_api.TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1) &&
              tif_api.TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP) &&
              tif_api.TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK) &&
              tif_api.TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
              tif_api.TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_NONE) &&
              tif_api.TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, tif_api.TIFFDefaultStripSize(tif, 0));
    if (ok && pg->pages > 1) {
        ok = tif_api.TIFFSetField(tif, TIFFTAG_SUBFILETYPE, (uint32_t)FILETYPE_PAGE);
        /* PageNumber is two uint16; beyond that, pages stay unnumbered. */
        if (ok && pg->pages <= UINT16_MAX)
            ok = tif_api.TIFFSetField(tif, TIFFTAG_PAGENUMBER, (int)page, (int)pg->pages);
    }
    return ok;
}

int tsr__tiff_write(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path)
{
    tsr__export_pages_t pg;
    TIFFOpenOptions *topts = NULL;
    TIFF *tif = NULL;
    tiff_err_t err = {""};
    float *row = NULL;
    char *tmp = NULL;
    size_t n_elems, row_bytes, file_bytes, stride;
    int rc = 0;

    TSR_TRY(tsr__export_check(ctx, arr, path, &n_elems, NULL));
    TSR_TRY(tsr__export_pages(ctx, arr, path, 3, &pg));
    TSR_CHECK(ctx, pg.width <= (int64_t)UINT32_MAX && pg.height <= (int64_t)UINT32_MAX, TSR_EINVAL,
              "cannot write '%s': a %lld x %lld image exceeds TIFF's limits", path,
              (long long)pg.height, (long long)pg.width);
    TSR_CHECK(ctx,
              tsr__mul_size((size_t)pg.width, sizeof(float), &row_bytes) &&
                  tsr__mul_size(n_elems, sizeof(float), &file_bytes),
              TSR_EOVERFLOW, "cannot write '%s': the image's size overflows", path);
    row = tsr__malloc(ctx, row_bytes);
    TSR_CHECK(ctx, row != NULL, TSR_ENOMEM, "cannot write '%s': out of memory", path);
    stride = tsr__export_valid_stride(arr);

    TSR_TRY(tif_ready(ctx, path));
    TSR_TRY(tsr__export_tmp_path(ctx, path, &tmp));
    topts = tif_api.TIFFOpenOptionsAlloc();
    TSR_CHECK(ctx, topts != NULL, TSR_ENOMEM, "cannot write '%s': out of memory", path);
    tif_api.TIFFOpenOptionsSetErrorHandlerExtR(topts, on_error, &err);
    tif_api.TIFFOpenOptionsSetWarningHandlerExtR(topts, on_warning, NULL);

    /* Classic TIFF addresses 4 GiB; keep a margin for tags and offsets. */
    errno = 0;
    tif = tif_api.TIFFOpenExt(tmp, file_bytes > UINT32_MAX - (64u << 20) ? "w8" : "w", topts);
    if (tif == NULL) {
        rc = tiff_fail(ctx, path, &err, errno);
        goto fail;
    }

    for (int64_t k = 0; k < pg.pages; k++) {
        if (!set_tags(tif, &pg, k)) {
            rc = tiff_fail(ctx, path, &err, 0);
            goto fail;
        }
        for (int64_t r = 0; r < pg.height; r++) {
            size_t base = (size_t)k * pg.page_step + (size_t)r * pg.row_step;
            for (int64_t c = 0; c < pg.width; c++) {
                size_t i = base + (size_t)c * pg.col_step;
                double v = tsr__export_real(arr, i);
                if (stride != 0 && !arr->valid[i / stride])
                    v = NAN;
                row[c] = (float)v;
            }
            errno = 0;
            if (tif_api.TIFFWriteScanline(tif, row, (uint32_t)r, 0) < 0) {
                rc = tiff_fail(ctx, path, &err, errno);
                goto fail;
            }
        }
        errno = 0;
        if (!tif_api.TIFFWriteDirectory(tif)) {
            rc = tiff_fail(ctx, path, &err, errno);
            goto fail;
        }
    }
    errno = 0;
    if (!tif_api.TIFFFlush(tif)) {
        rc = tiff_fail(ctx, path, &err, errno);
        goto fail;
    }

fail:
    if (tif != NULL)
        tif_api.TIFFClose(tif);
    if (topts != NULL)
        tif_api.TIFFOpenOptionsFree(topts);
    tsr__free(ctx, row);
    return tsr__export_finish(ctx, tmp, path, rc);
}
