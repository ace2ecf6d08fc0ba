/*
 * export.h — internal interface of the export layer: one writer per file
 * type (npy.c, hdf5.c, tiff.c, png.c) and the helpers they share, which
 * export.c implements along with the public tsr_export_array() and
 * tsr_export_results().
 *
 * Every writer is atomic in the same way: it writes "<path>.tmp" and renames
 * it onto path only once the file is complete and closed, so a failure never
 * leaves a half-written file under the requested name (and never destroys an
 * older file there).  On failure the temporary file is removed, the message
 * on the context names path (not the temporary), and the code is TSR_EINVAL
 * for what the type cannot hold, TSR_ENOMEM, TSR_EIO for the system or
 * the library failing, or TSR_EUNSUPPORTED when the library (libhdf5,
 * libtiff) cannot be loaded.
 *
 * Writers check their array with tsr__export_check() first; arrays are
 * borrowed and never modified.  The only global state is the table of
 * libhdf5 (libtiff) functions, filled once by the first HDF5 (TIFF) write
 * of the process, whichever thread does it, and read-only afterwards;
 * HDF5's error-printing switch is per thread in its thread-safe build, and
 * is restored before returning.
 */
#ifndef TSR_EXPORT_H
#define TSR_EXPORT_H

#include "core/core.h"

/* ---- writers --------------------------------------------------------- */

/* NPY v1.0: the exact dtype (host byte order) and shape, C order. */
int tsr__npy_write(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path);

/* HDF5: a new file (replacing any old one) holding every array as the
 * dataset /<udf>/<buffer> with the native type of its dtype (complex64 as
 * the compound {r, i} of float32, bool as h5py's int8 enum), plus
 * /<udf>/<buffer>_valid (uint8, nav shape) for NAV arrays with a valid mask.
 * Group and dataset names come from tsr__export_udf_label() and
 * tsr__export_name().  n may be 0 (an empty file). */
int tsr__h5_write_arrays(tsr_ctx_t *ctx, const tsr_array_t *arrs, size_t n, const char *path);

/* TIFF: float32 samples, one page per image plane (see tsr__export_pages). */
int tsr__tiff_write(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path);

/* PNG: 8-bit RGB through a colormap; opts may be NULL. */
int tsr__png_write(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path,
                   const tsr_export_opts_t *opts);

/* ---- shared helpers (export.c) --------------------------------------- */

/* Validate arr (dtype, ndim, dims >= 0, data present when not empty) and
 * return its element count and byte size, both overflow-checked.  Either
 * out pointer may be NULL.  TSR_EINVAL / TSR_EOVERFLOW with a message
 * naming path. */
int tsr__export_check(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path, size_t *n_elems,
                      size_t *n_bytes);

/* "<path>.tmp" in memory from tsr__malloc; TSR_ENOMEM with a message. */
int tsr__export_tmp_path(tsr_ctx_t *ctx, const char *path, char **tmp);

/* Finish a write: if rc == 0, rename tmp onto path (TSR_EIO with a message
 * if that fails); otherwise, or if the rename failed, remove tmp.  Frees tmp
 * (may be NULL) and returns the final code. */
int tsr__export_finish(tsr_ctx_t *ctx, char *tmp, const char *path, int rc);

/* Record "cannot write '<path>': <strerror(err)>" and return TSR_EIO. */
int tsr__export_ioerr(tsr_ctx_t *ctx, const char *path, int err);

/* The name of arrs[i]'s UDF as a file or HDF5 group name: characters other
 * than letters, digits, '_', '-' and '.' become '_' (a leading '.' too), and
 * when UDFs at different run positions share a name, every one but the
 * first (lowest udf_index) gets "_<udf_index>" appended, so names never
 * collide.  Writes at most len bytes including the NUL; returns buf. */
const char *tsr__export_udf_label(const tsr_array_t *arrs, size_t n, size_t i, char *buf,
                                  size_t len);
/* A buffer name made safe the same way. */
const char *tsr__export_name(const char *name, char *buf, size_t len);

/* Number of leading dimensions of a NAV array that are nav dimensions: the
 * valid mask has one flag per position of those.  0 for other kinds. */
int tsr__export_nav_ndim(const tsr_array_t *arr);

/* Elements of arr per valid flag (product of the dimensions after the nav
 * ones), or 0 when arr has no valid mask to apply. */
size_t tsr__export_valid_stride(const tsr_array_t *arr);

/* Element i of arr as a real number: the value, or the modulus for complex
 * types. */
double tsr__export_real(const tsr_array_t *arr, size_t i);

/* How an array becomes 2-D images (TIFF pages, a PNG): after dropping the
 * dimensions of size 1, an element of page k, row r, column c sits at the
 * flat C-order index
 *     k * page_step + r * row_step + c * col_step
 * of the original array (dropping size-1 dimensions does not change flat
 * indices).  The rule:
 *   - a 2-D array (H, W) is one H x W image as it is, even if H or W is 1;
 *   - otherwise size-1 dimensions are dropped, and then:
 *   - no dimension left: one 1 x 1 image;
 *   - one left (N): one 1 x N image;
 *   - two left (H, W): one H x W image;
 *   - three left, NAV or SIG array: the extra dimension is the trailing one,
 *     so there are pages = the last dimension, page k being arr[..., k];
 *   - three left, SINGLE array: pages = the first dimension, page k being
 *     arr[k], as in an image stack;
 *   - more than max_dims left: TSR_EINVAL, with a message that names path
 *     and the shape and suggests .npy or .h5.
 * max_dims is 2 for PNG (one image, no pages) and 3 for TIFF. */
typedef struct tsr__export_pages {
    int64_t pages, height, width;
    size_t page_step, row_step, col_step;
} tsr__export_pages_t;

int tsr__export_pages(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path, int max_dims,
                      tsr__export_pages_t *out);

#endif /* TSR_EXPORT_H */
