/*
 * raw.c — headerless binary files: frames of one dtype (either byte order)
 * stored back to back after an optional header of `offset` bytes.
 *
 * The number of images is the whole frames that fit in the file after the
 * offset; a partial last frame is ignored, and a nav shape that needs more
 * frames than that is an error (the file is truncated or the shape wrong).
 */
#include "io/dataset.h"

#include <jansson.h>

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", NULL, "scan shape, e.g. 128,128 (C order, slowest first)", false},
    {"sig_shape", "shape", NULL, "frame shape, e.g. 256,256", false},
    {"dtype", "dtype", NULL, "pixel type as a numpy typestring, e.g. <u2, >f4, uint16", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
    {"offset", "int", "0", "bytes of file header before the first frame", false},
};

static const char *const exts[] = {"raw", "bin", "dat", NULL};

static int probe(const char *path, const uint8_t *head, size_t n)
{
    /* Raw data have no signature; a known extension is a weak hint. */
    (void)head;
    (void)n;
    const char *dot = strrchr(path, '.');
    if (dot && (!strcmp(dot, ".raw") || !strcmp(dot, ".bin")))
        return 5;
    return 0;
}

static int open_raw(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    const char *dt_s = tsr_params_get(a->params, "dtype");
    int rc;
    if (!dt_s)
        return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                           "format raw: missing required parameter 'dtype' (e.g. dtype=<u2)");
    if (tsr_dtype_parse(dt_s, &ds->dtype, &ds->big_endian))
        return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                           "format raw: unknown dtype '%s' (use a numpy typestring such as "
                           "<u2, >f4, |u1, uint16, float32)",
                           dt_s);
    int64_t offset = 0;
    if ((rc = tsr__parse_i64(tsr__params_value(a->params, params, 5, "offset"), &offset, a->err,
                             a->errlen, "raw: offset")))
        return rc;
    if (offset < 0)
        return tsr__seterr(a->err, a->errlen, TSR_EINVAL, "raw: offset must be >= 0");
    tsr_shape_t sig;
    if ((rc = tsr__parse_shape(tsr_params_get(a->params, "sig_shape"), &sig, a->err, a->errlen,
                               "raw: sig_shape")))
        return rc;
    int file = tsr__dataset_add_file(a, a->path);
    if (file < 0)
        return file;
    int64_t frame_bytes;
    if (!tsr__mul_i64(tsr_shape_size(&sig), (int64_t)tsr_dtype_size(ds->dtype), &frame_bytes))
        return tsr__seterr(a->err, a->errlen, TSR_EOVERFLOW, "raw: frame size overflows");
    int64_t size = ds->files[file].size;
    ds->image_count = size > offset ? (size - offset) / frame_bytes : 0;
    if ((rc = tsr__dataset_shape_params(a, NULL, &sig)))
        return rc;
    if ((rc = tsr__dataset_add_segment(a, file, 0, ds->image_count, offset, frame_bytes)))
        return rc;
    return tsr__dataset_set_meta(a, json_pack("{s:s, s:I, s:I, s:I}", "path", a->path, "file_size",
                                              (json_int_t)size, "offset", (json_int_t)offset,
                                              "frame_bytes", (json_int_t)frame_bytes));
}

const tsr__reader_def_t tsr__format_raw = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "raw",
    .description = "headerless binary frames of one dtype (either byte order)",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_raw,
};
