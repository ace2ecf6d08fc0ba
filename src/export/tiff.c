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
 */
#include "export/export.h"

#include <tiffio.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

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
    bool ok = TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, (uint32_t)pg->width) &&
              TIFFSetField(tif, TIFFTAG_IMAGELENGTH, (uint32_t)pg->height) &&
              TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 32) &&
              TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1) &&
              TIFFSetField(tif, TIFFTAG_SAMPLEFORMAT, SAMPLEFORMAT_IEEEFP) &&
              TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISBLACK) &&
              TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG) &&
              TIFFSetField(tif, TIFFTAG_COMPRESSION, COMPRESSION_NONE) &&
              TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, TIFFDefaultStripSize(tif, 0));
    if (ok && pg->pages > 1) {
        ok = TIFFSetField(tif, TIFFTAG_SUBFILETYPE, (uint32_t)FILETYPE_PAGE);
        /* PageNumber is two uint16; beyond that, pages stay unnumbered. */
        if (ok && pg->pages <= UINT16_MAX)
            ok = TIFFSetField(tif, TIFFTAG_PAGENUMBER, (int)page, (int)pg->pages);
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

    TSR_TRY(tsr__export_tmp_path(ctx, path, &tmp));
    topts = TIFFOpenOptionsAlloc();
    TSR_CHECK(ctx, topts != NULL, TSR_ENOMEM, "cannot write '%s': out of memory", path);
    TIFFOpenOptionsSetErrorHandlerExtR(topts, on_error, &err);
    TIFFOpenOptionsSetWarningHandlerExtR(topts, on_warning, NULL);

    /* Classic TIFF addresses 4 GiB; keep a margin for tags and offsets. */
    errno = 0;
    tif = TIFFOpenExt(tmp, file_bytes > UINT32_MAX - (64u << 20) ? "w8" : "w", topts);
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
            if (TIFFWriteScanline(tif, row, (uint32_t)r, 0) < 0) {
                rc = tiff_fail(ctx, path, &err, errno);
                goto fail;
            }
        }
        errno = 0;
        if (!TIFFWriteDirectory(tif)) {
            rc = tiff_fail(ctx, path, &err, errno);
            goto fail;
        }
    }
    errno = 0;
    if (!TIFFFlush(tif)) {
        rc = tiff_fail(ctx, path, &err, errno);
        goto fail;
    }

fail:
    if (tif != NULL)
        TIFFClose(tif);
    if (topts != NULL)
        TIFFOpenOptionsFree(topts);
    tsr__free(ctx, row);
    return tsr__export_finish(ctx, tmp, path, rc);
}
