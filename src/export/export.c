/*
 * export.c — the public export entry points and the helpers shared by the
 * writers.
 *
 * tsr_export_array() picks a writer by the extension of the path (case does
 * not matter): .npy, .h5/.hdf5, .tif/.tiff, .png.  tsr_export_results()
 * writes every buffer of a results object: to a directory (a path ending in
 * '/', created with its parents if needed) as one <udf>.<buffer>.npy each,
 * or to one HDF5 file as /<udf>/<buffer>; a single-array type (.npy, .tif,
 * .png) is accepted when the results hold exactly one buffer.
 *
 * Invariants kept for every writer (see export.h): the array is validated
 * and its sizes overflow-checked before anything is written; the file is
 * written as "<path>.tmp" and renamed onto path only when complete, so a
 * failed export leaves neither a partial file nor a damaged old one; every
 * error carries a message on the context that names the path.
 */
#include "export/export.h"
#include "platform/os.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ======================================================================
 * File types by extension
 * ====================================================================== */

typedef enum { FMT_NONE = 0, FMT_NPY, FMT_H5, FMT_TIFF, FMT_PNG } fmt_t;

static const struct {
    const char *ext;
    fmt_t fmt;
} exts[] = {
    {".npy", FMT_NPY},  {".h5", FMT_H5},     {".hdf5", FMT_H5},
    {".tif", FMT_TIFF}, {".tiff", FMT_TIFF}, {".png", FMT_PNG},
};

#define SUPPORTED_EXTS ".npy, .h5, .hdf5, .tif, .tiff, .png"

static int lower(int c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static bool ext_eq(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (lower((unsigned char)*a) != lower((unsigned char)*b))
            return false;
    return *a == *b;
}

/* The extension of the last component of path, from its last '.', or "". */
static const char *path_ext(const char *path)
{
    const char *base = strrchr(path, '/');
    const char *dot;

    base = base ? base + 1 : path;
    dot = strrchr(base, '.');
    return dot ? dot : "";
}

static fmt_t fmt_of(const char *ext)
{
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
        if (ext_eq(ext, exts[i].ext))
            return exts[i].fmt;
    return FMT_NONE;
}

static bool ends_with_slash(const char *path)
{
    size_t n = strlen(path);
    return n > 0 && path[n - 1] == '/';
}

static int unknown_ext(tsr_ctx_t *ctx, const char *path, const char *ext, const char *also)
{
    if (ext[0] == '\0')
        return tsr__ctx_seterr(ctx, TSR_EINVAL,
                               "cannot export to '%s': the path has no extension "
                               "(supported: %s%s)",
                               path, also, SUPPORTED_EXTS);
    return tsr__ctx_seterr(ctx, TSR_EINVAL,
                           "cannot export to '%s': unknown extension '%s' (supported: %s%s)", path,
                           ext, also, SUPPORTED_EXTS);
}

/* ======================================================================
 * Public entry points
 * ====================================================================== */

int tsr_export_array(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path,
                     const tsr_export_opts_t *opts)
{
    const char *ext;
    int rc;

    if (ctx == NULL)
        return TSR_EINVAL;
    if (arr == NULL || path == NULL || path[0] == '\0')
        return tsr__ctx_seterr(ctx, TSR_EINVAL, "tsr_export_array: array and path are required");
    if (ends_with_slash(path))
        return tsr__ctx_seterr(ctx, TSR_EINVAL,
                               "cannot export to '%s': the path names a directory; one array "
                               "needs a file name ending in one of %s",
                               path, SUPPORTED_EXTS);
    rc = tsr__export_check(ctx, arr, path, NULL, NULL);
    if (rc < 0)
        return rc;

    ext = path_ext(path);
    switch (fmt_of(ext)) {
    case FMT_NPY: return tsr__npy_write(ctx, arr, path);
    case FMT_H5: return tsr__h5_write_arrays(ctx, arr, 1, path);
    case FMT_TIFF: return tsr__tiff_write(ctx, arr, path);
    case FMT_PNG: return tsr__png_write(ctx, arr, path, opts);
    case FMT_NONE: break;
    }
    return unknown_ext(ctx, path, ext, "");
}

/* A directory export: <dir>/<udf>.<buffer>.npy for each array. */
static int write_dir(tsr_ctx_t *ctx, const tsr_array_t *arrs, size_t n, const char *dir)
{
    char label[128], name[128];
    char *file = NULL;
    size_t dir_len = strlen(dir), cap;
    int rc = 0;

    if (tsr__mkdir_p(dir) != 0) {
        int err = errno;
        return tsr__ctx_seterr(ctx, TSR_EIO, "cannot create directory '%s': %s", dir,
                               strerror(err));
    }
    /* dir + label + '.' + name + ".npy" + NUL; labels and names are bounded
     * by their buffers. */
    TSR_CHECK(ctx, dir_len < SIZE_MAX - 2 * sizeof label, TSR_EOVERFLOW,
              "cannot export to '%s': path too long", dir);
    cap = dir_len + sizeof label + sizeof name + 8;
    file = tsr__malloc(ctx, cap);
    TSR_CHECK(ctx, file != NULL, TSR_ENOMEM, "cannot export to '%s': out of memory", dir);

    for (size_t i = 0; i < n; i++) {
        tsr__export_udf_label(arrs, n, i, label, sizeof label);
        tsr__export_name(arrs[i].name, name, sizeof name);
        snprintf(file, cap, "%s%s.%s.npy", dir, label, name);
        TSR_TRY(tsr__npy_write(ctx, &arrs[i], file));
    }

fail:
    tsr__free(ctx, file);
    return rc;
}

/* The "a.b, c.d, ..." list of buffers for an error message. */
static void list_buffers(const tsr_array_t *arrs, size_t n, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used + 1 < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s.%s", i ? ", " : "",
                         arrs[i].udf ? arrs[i].udf : "?", arrs[i].name ? arrs[i].name : "?");
        if (w < 0 || (size_t)w >= len - used) {
            /* Truncated: end with an ellipsis where it fits. */
            if (len >= 4)
                memcpy(buf + len - 4, "...", 4);
            return;
        }
        used += (size_t)w;
    }
}

int tsr_export_results(tsr_ctx_t *ctx, const tsr_results_t *res, const char *path)
{
    tsr_array_t *arrs = NULL;
    size_t n, bytes;
    const char *ext;
    int rc = 0;

    if (ctx == NULL)
        return TSR_EINVAL;
    TSR_CHECK(ctx, res != NULL && path != NULL && path[0] != '\0', TSR_EINVAL,
              "tsr_export_results: results and path are required");

    n = tsr_results_count(res);
    TSR_CHECK(ctx, tsr__mul_size(n ? n : 1, sizeof *arrs, &bytes), TSR_EOVERFLOW,
              "cannot export to '%s': %zu buffers are too many", path, n);
    arrs = tsr__malloc(ctx, bytes);
    TSR_CHECK(ctx, arrs != NULL, TSR_ENOMEM, "cannot export to '%s': out of memory", path);
    for (size_t i = 0; i < n; i++) {
        int got = tsr_results_get(res, i, &arrs[i]);
        TSR_CHECK(ctx, got == 0, got < 0 ? got : TSR_EINVAL,
                  "cannot export to '%s': result buffer %zu of %zu is unreadable (%s)", path, i, n,
                  tsr_strerror(got));
        TSR_TRY(tsr__export_check(ctx, &arrs[i], path, NULL, NULL));
    }

    if (ends_with_slash(path)) {
        rc = write_dir(ctx, arrs, n, path);
        goto fail;
    }
    ext = path_ext(path);
    switch (fmt_of(ext)) {
    case FMT_H5: rc = tsr__h5_write_arrays(ctx, arrs, n, path); break;
    case FMT_NPY:
    case FMT_TIFF:
    case FMT_PNG:
        if (n == 1) {
            rc = tsr_export_array(ctx, &arrs[0], path, NULL);
        } else {
            char list[256];
            list_buffers(arrs, n, list, sizeof list);
            rc = tsr__ctx_seterr(ctx, TSR_EINVAL,
                                 "cannot export to '%s': a %s file holds one array but the "
                                 "results have %zu buffers (%s); name a directory ending in "
                                 "'/' or an .h5 file, or export one buffer",
                                 path, ext, n, list);
        }
        break;
    case FMT_NONE: rc = unknown_ext(ctx, path, ext, "a directory ending in '/', "); break;
    }

fail:
    tsr__free(ctx, arrs);
    return rc;
}

/* ======================================================================
 * Shared helpers
 * ====================================================================== */

int tsr__export_check(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path, size_t *n_elems,
                      size_t *n_bytes)
{
    size_t n = 1, bytes;

    if (!tsr__dtype_valid(arr->dtype))
        return tsr__ctx_seterr(ctx, TSR_EINVAL, "cannot export to '%s': invalid dtype %d", path,
                               (int)arr->dtype);
    if (arr->shape.ndim < 0 || arr->shape.ndim > TSR_MAX_DIMS)
        return tsr__ctx_seterr(ctx, TSR_EINVAL,
                               "cannot export to '%s': %d dimensions (expected 0 to %d)", path,
                               arr->shape.ndim, TSR_MAX_DIMS);
    for (int d = 0; d < arr->shape.ndim; d++) {
        int64_t v = arr->shape.dims[d];
        if (v < 0)
            return tsr__ctx_seterr(ctx, TSR_EINVAL,
                                   "cannot export to '%s': dimension %d is %lld (expected >= 0)",
                                   path, d, (long long)v);
        if ((uint64_t)v > SIZE_MAX || !tsr__mul_size(n, (size_t)v, &n))
            return tsr__ctx_seterr(ctx, TSR_EOVERFLOW,
                                   "cannot export to '%s': the array's size overflows", path);
    }
    if (!tsr__mul_size(n, tsr_dtype_size(arr->dtype), &bytes))
        return tsr__ctx_seterr(ctx, TSR_EOVERFLOW,
                               "cannot export to '%s': the array's size overflows", path);
    if (bytes > 0 && arr->data == NULL)
        return tsr__ctx_seterr(ctx, TSR_EINVAL, "cannot export to '%s': the array has no data",
                               path);
    if (n_elems)
        *n_elems = n;
    if (n_bytes)
        *n_bytes = bytes;
    return 0;
}

int tsr__export_tmp_path(tsr_ctx_t *ctx, const char *path, char **tmp)
{
    static const char suffix[] = ".tmp";
    size_t n = strlen(path);
    char *s;

    if (n > SIZE_MAX - sizeof suffix)
        return tsr__ctx_seterr(ctx, TSR_EOVERFLOW, "cannot write '%s': path too long", path);
    s = tsr__malloc(ctx, n + sizeof suffix);
    if (s == NULL)
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "cannot write '%s': out of memory", path);
    memcpy(s, path, n);
    memcpy(s + n, suffix, sizeof suffix);
    *tmp = s;
    return 0;
}

int tsr__export_finish(tsr_ctx_t *ctx, char *tmp, const char *path, int rc)
{
    if (tmp == NULL)
        return rc;
    if (rc == 0 && tsr__rename_replace(tmp, path) != 0) {
        int err = errno;
        rc = tsr__ctx_seterr(ctx, TSR_EIO, "cannot write '%s': renaming '%s' onto it failed: %s",
                             path, tmp, strerror(err));
    }
    if (rc != 0)
        (void)remove(tmp); /* may not exist yet: nothing to report */
    tsr__free(ctx, tmp);
    return rc;
}

int tsr__export_ioerr(tsr_ctx_t *ctx, const char *path, int err)
{
    return tsr__ctx_seterr(ctx, TSR_EIO, "cannot write '%s': %s", path,
                           err ? strerror(err) : "input/output error");
}

/* Copy s into buf, mapping characters unsafe in file and HDF5 names to '_'. */
static const char *safe_name(const char *s, const char *fallback, char *buf, size_t len)
{
    size_t i = 0;

    if (len == 0)
        return buf;
    if (s == NULL || s[0] == '\0')
        s = fallback;
    for (; s[i] && i + 1 < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || (c == '.' && i > 0);
        buf[i] = ok ? c : '_';
    }
    buf[i] = '\0';
    return buf;
}

const char *tsr__export_name(const char *name, char *buf, size_t len)
{
    return safe_name(name, "data", buf, len);
}

static bool same_str(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

const char *tsr__export_udf_label(const tsr_array_t *arrs, size_t n, size_t i, char *buf,
                                  size_t len)
{
    const tsr_array_t *a = &arrs[i];
    bool first = true;

    /* The first of several same-named UDFs is the one at the lowest run
     * position; the others are told apart by theirs. */
    for (size_t j = 0; j < n; j++)
        if (same_str(arrs[j].udf, a->udf) && arrs[j].udf_index < a->udf_index)
            first = false;
    safe_name(a->udf, "udf", buf, len);
    if (!first) {
        size_t used = strlen(buf);
        snprintf(buf + used, len - used, "_%d", a->udf_index);
    }
    return buf;
}

int tsr__export_nav_ndim(const tsr_array_t *arr)
{
    if (arr->kind != TSR_KIND_NAV)
        return 0;
    return arr->nav_ndim;
}

size_t tsr__export_valid_stride(const tsr_array_t *arr)
{
    size_t e = 1;

    if (arr->kind != TSR_KIND_NAV || arr->valid == NULL)
        return 0;
    for (int d = tsr__export_nav_ndim(arr); d < arr->shape.ndim; d++)
        if (!tsr__mul_size(e, (size_t)arr->shape.dims[d], &e))
            return 0;
    return e ? e : 1;
}

double tsr__export_real(const tsr_array_t *arr, size_t i)
{
    if (tsr__dtype_is_complex(arr->dtype)) {
        const float *z = (const float *)arr->data + 2 * i;
        return hypot((double)z[0], (double)z[1]);
    }
    return tsr__load_f64(arr->data, arr->dtype, i);
}

int tsr__export_pages(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path, int max_dims,
                      tsr__export_pages_t *out)
{
    int64_t d[TSR_MAX_DIMS];
    int m = 0;
    char shape[160];

    for (int i = 0; i < arr->shape.ndim; i++) {
        if (arr->shape.dims[i] == 0)
            return tsr__ctx_seterr(ctx, TSR_EINVAL,
                                   "cannot write '%s': the array of shape %s is empty", path,
                                   tsr__shape_str(&arr->shape, shape, sizeof shape));
        if (arr->shape.dims[i] != 1)
            d[m++] = arr->shape.dims[i];
    }
    if (m > max_dims)
        return tsr__ctx_seterr(ctx, TSR_EINVAL,
                               "cannot write '%s': shape %s has %d dimensions longer than 1, "
                               "more than the %d this file type holds; write .npy or .h5 "
                               "instead",
                               path, tsr__shape_str(&arr->shape, shape, sizeof shape), m, max_dims);

    /* The sizes below multiply dimensions of an array whose total size
     * tsr__export_check() has bounded, so they cannot overflow. */
    memset(out, 0, sizeof *out);
    out->pages = 1;
    out->height = 1;
    out->width = 1;
    out->col_step = 1;
    if (arr->shape.ndim == 2) {
        /* Already an image: keep it, so that an (N, 1) column stays one. */
        out->height = arr->shape.dims[0];
        out->width = arr->shape.dims[1];
        out->row_step = (size_t)arr->shape.dims[1];
        m = -1;
    }
    switch (m) {
    case -1:
    case 0: break;
    case 1:
        out->width = d[0];
        out->row_step = (size_t)d[0];
        break;
    case 2:
        out->height = d[0];
        out->width = d[1];
        out->row_step = (size_t)d[1];
        break;
    default:
        if (arr->kind == TSR_KIND_SINGLE) {
            /* An image stack: page k is arr[k]. */
            out->pages = d[0];
            out->height = d[1];
            out->width = d[2];
            out->page_step = (size_t)d[1] * (size_t)d[2];
            out->row_step = (size_t)d[2];
        } else {
            /* nav or sig + extra_shape: page k is arr[..., k]. */
            out->height = d[0];
            out->width = d[1];
            out->pages = d[2];
            out->page_step = 1;
            out->col_step = (size_t)d[2];
            out->row_step = (size_t)d[1] * (size_t)d[2];
        }
        break;
    }
    if (out->page_step == 0)
        out->page_step = (size_t)out->height * (size_t)out->width;
    return 0;
}
