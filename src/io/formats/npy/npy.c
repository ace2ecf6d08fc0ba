/*
 * npy.c — NumPy .npy files (format versions 1, 2 and 3): the header parser,
 * the reader, and tsr__npy_load for small arrays (masks, ROIs, corrections).
 *
 * The header is a Python dict literal with 'descr', 'fortran_order' and
 * 'shape'.  We parse exactly that subset and reject anything else with a
 * message; Fortran order is refused, since frames would not be contiguous.
 * By default the last two dimensions are the signal (one for 1-D arrays, and
 * a 2-D array is one frame); nav_shape / sig_shape reshape.
 */
#include "io/formats/npy/npy.h"
#include "io/dataset.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>

static const char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* Find 'key' in the dict text and return a pointer after its ':' */
static const char *dict_value(const char *d, const char *key)
{
    char pat[32];
    for (int q = 0; q < 2; q++) {
        snprintf(pat, sizeof pat, q ? "\"%s\"" : "'%s'", key);
        const char *p = strstr(d, pat);
        if (p) {
            p += strlen(pat);
            while (isspace((unsigned char)*p))
                p++;
            if (*p != ':')
                return NULL;
            p++;
            while (isspace((unsigned char)*p))
                p++;
            return p;
        }
    }
    return NULL;
}

int tsr__npy_parse_header(const uint8_t *buf, size_t n, tsr__npy_header_t *h, char *err,
                          size_t errlen)
{
    if (n < 10 || memcmp(buf, magic, 6) != 0)
        return tsr__seterr(err, errlen, TSR_ECORRUPT, "not an .npy file (no \\x93NUMPY magic)");
    unsigned major = buf[6];
    size_t hlen, start;
    if (major == 1) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        start = 10;
    } else if (major == 2 || major == 3) {
        if (n < 12)
            return tsr__seterr(err, errlen, TSR_ECORRUPT, "truncated .npy header");
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        start = 12;
    } else {
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, "unsupported .npy version %u", major);
    }
    if (hlen > 1u << 20 || start + hlen > n)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "truncated .npy header (header length %zu, file has %zu bytes)", hlen,
                           n);
    char d[4096];
    if (hlen >= sizeof d)
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, ".npy header too long (%zu bytes)", hlen);
    memcpy(d, buf + start, hlen);
    d[hlen] = 0;

    const char *v = dict_value(d, "descr");
    if (!v || (*v != '\'' && *v != '"'))
        return tsr__seterr(err, errlen, TSR_ECORRUPT, ".npy header has no 'descr' string");
    char q = *v++;
    char descr[32];
    size_t k = 0;
    while (*v && *v != q && k < sizeof descr - 1)
        descr[k++] = *v++;
    descr[k] = 0;
    if (tsr_dtype_parse(descr, &h->dtype, &h->big_endian))
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, ".npy dtype '%s' is not supported",
                           descr);

    v = dict_value(d, "fortran_order");
    if (!v)
        return tsr__seterr(err, errlen, TSR_ECORRUPT, ".npy header has no 'fortran_order'");
    h->fortran_order = strncmp(v, "True", 4) == 0;

    v = dict_value(d, "shape");
    if (!v || *v != '(')
        return tsr__seterr(err, errlen, TSR_ECORRUPT, ".npy header has no 'shape' tuple");
    v++;
    h->shape.ndim = 0;
    while (1) {
        while (isspace((unsigned char)*v) || *v == ',')
            v++;
        if (*v == ')')
            break;
        char *end;
        long long x = strtoll(v, &end, 10);
        if (end == v || x < 0)
            return tsr__seterr(err, errlen, TSR_ECORRUPT, ".npy header: bad shape");
        if (h->shape.ndim >= TSR_MAX_DIMS)
            return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, ".npy: more than %d dimensions",
                               TSR_MAX_DIMS);
        h->shape.dims[h->shape.ndim++] = x;
        v = end;
    }
    int64_t total = 1;
    for (int i = 0; i < h->shape.ndim; i++)
        if (!tsr__mul_i64(total, h->shape.dims[i], &total) ||
            !tsr__mul_i64(total, (int64_t)tsr_dtype_size(h->dtype), &(int64_t){0}))
            return tsr__seterr(err, errlen, TSR_ECORRUPT, ".npy header: shape too large");
    h->data_offset = (int64_t)(start + hlen);
    return 0;
}

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "", "reshape the scan (default: all but the signal dimensions)", false},
    {"sig_shape", "shape", "", "reshape the frames (default: the last two dimensions)", false},
    {"sig_dims", "int", "2", "number of trailing dimensions that form the signal", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
};

static const char *const exts[] = {"npy", NULL};

static int probe(const char *path, const uint8_t *head, size_t n)
{
    (void)path;
    return n >= 6 && memcmp(head, magic, 6) == 0 ? 100 : 0;
}

static int read_header(tsr__open_args_t *a, int file, tsr__npy_header_t *h)
{
    uint8_t buf[4096 + 16];
    const tsr__file_t *f = &a->ds->files[file];
    size_t n = f->size < (int64_t)sizeof buf ? (size_t)f->size : sizeof buf;
    if (tsr__file_pread(f, buf, n, 0))
        return tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the header", a->path);
    char msg[256];
    int rc = tsr__npy_parse_header(buf, n, h, msg, sizeof msg);
    if (rc)
        return tsr__seterr(a->err, a->errlen, rc, "%s: %s", a->path, msg);
    if (h->fortran_order)
        return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                           "%s: Fortran-ordered (column-major) .npy files are not supported; "
                           "save with np.ascontiguousarray()",
                           a->path);
    return 0;
}

static int open_npy(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    int file = tsr__dataset_add_file(a, a->path);
    if (file < 0)
        return file;
    tsr__npy_header_t h;
    int rc = read_header(a, file, &h);
    if (rc)
        return rc;
    ds->dtype = h.dtype;
    ds->big_endian = h.big_endian;
    int64_t sig_dims = 2;
    if ((rc = tsr__parse_i64(tsr__params_value(a->params, params, 4, "sig_dims"), &sig_dims, a->err,
                             a->errlen, "npy: sig_dims")))
        return rc;
    if (sig_dims < 1 || sig_dims > 3)
        return tsr__seterr(a->err, a->errlen, TSR_EINVAL, "npy: sig_dims must be 1, 2 or 3");
    if (h.shape.ndim < sig_dims)
        sig_dims = h.shape.ndim > 0 ? h.shape.ndim : 1;
    tsr_shape_t sig = {.ndim = (int)sig_dims}, nav = {0};
    for (int i = 0; i < sig.ndim; i++)
        sig.dims[i] = h.shape.ndim ? h.shape.dims[h.shape.ndim - sig.ndim + i] : 1;
    nav.ndim = h.shape.ndim - sig.ndim;
    for (int i = 0; i < nav.ndim; i++)
        nav.dims[i] = h.shape.dims[i];
    if (nav.ndim == 0)
        nav = (tsr_shape_t){.ndim = 1, .dims = {1}};
    for (int i = 0; i < h.shape.ndim; i++)
        if (h.shape.dims[i] == 0)
            return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                               "%s: the array is empty (dimension %d is 0)", a->path, i);
    int64_t total = 1, bytes;
    for (int i = 0; i < h.shape.ndim; i++)
        if (!tsr__mul_i64(total, h.shape.dims[i], &total))
            return tsr__seterr(a->err, a->errlen, TSR_EOVERFLOW, "%s: array size overflows",
                               a->path);
    if (!tsr__mul_i64(total, (int64_t)tsr_dtype_size(h.dtype), &bytes))
        return tsr__seterr(a->err, a->errlen, TSR_EOVERFLOW, "%s: array size overflows", a->path);
    int64_t have = ds->files[file].size - h.data_offset;
    if (have < bytes)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: truncated .npy file: the header promises %lld bytes of data, the "
                           "file has %lld",
                           a->path, (long long)bytes, (long long)have);
    int64_t sig_size = tsr_shape_size(&sig);
    /* A sig_shape that changes the frame size re-derives the frames. */
    const char *sig_s = tsr_params_get(a->params, "sig_shape");
    if (sig_s) {
        tsr_shape_t s2;
        if ((rc = tsr__parse_shape(sig_s, &s2, a->err, a->errlen, "npy: sig_shape")))
            return rc;
        if (total % tsr_shape_size(&s2))
            return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                               "%s: sig_shape of %lld pixels does not divide the array's %lld "
                               "elements",
                               a->path, (long long)tsr_shape_size(&s2), (long long)total);
        if (tsr_shape_size(&s2) != sig_size)
            nav = (tsr_shape_t){.ndim = 1, .dims = {total / tsr_shape_size(&s2)}};
        sig = s2;
        sig_size = tsr_shape_size(&s2);
    }
    ds->image_count = total / sig_size;
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        return rc;
    int64_t frame_bytes = sig_size * (int64_t)tsr_dtype_size(h.dtype);
    if ((rc = tsr__dataset_add_segment(a, file, 0, ds->image_count, h.data_offset, frame_bytes)))
        return rc;
    json_t *shape = json_array();
    for (int i = 0; i < h.shape.ndim; i++)
        json_array_append_new(shape, json_integer(h.shape.dims[i]));
    return tsr__dataset_set_meta(a, json_pack("{s:s, s:o, s:s, s:I}", "path", a->path, "shape",
                                              shape, "dtype", tsr_dtype_name(h.dtype),
                                              "data_offset", (json_int_t)h.data_offset));
}

const tsr__reader_def_t tsr__format_npy = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "npy",
    .description = "NumPy .npy array (C order); the last dimensions are the frames",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_npy,
};

/* ---- small arrays ------------------------------------------------------ */

int tsr__npy_load(tsr_ctx_t *ctx, const char *path, tsr_dtype_t want, tsr_shape_t *shape,
                  void **data)
{
    tsr__file_t f;
    char msg[256];
    int rc = tsr__file_open(&f, path, msg, sizeof msg);
    if (rc)
        return tsr__ctx_seterr(ctx, rc, "%s", msg);
    uint8_t buf[4096 + 16];
    size_t n = f.size < (int64_t)sizeof buf ? (size_t)f.size : sizeof buf;
    void *raw = NULL, *out = NULL;
    tsr__npy_header_t h;
    if (tsr__file_pread(&f, buf, n, 0)) {
        rc = tsr__ctx_seterr(ctx, TSR_EIO, "%s: cannot read", path);
        goto fail;
    }
    if ((rc = tsr__npy_parse_header(buf, n, &h, msg, sizeof msg))) {
        rc = tsr__ctx_seterr(ctx, rc, "%s: %s", path, msg);
        goto fail;
    }
    TSR_CHECK(ctx, !h.fortran_order, TSR_EUNSUPPORTED,
              "%s: Fortran-ordered .npy files are not supported", path);
    size_t count = (size_t)tsr_shape_size(&h.shape), bytes, obytes;
    TSR_CHECK(ctx,
              tsr__mul_size(count, tsr_dtype_size(h.dtype), &bytes) &&
                  tsr__mul_size(count, tsr_dtype_size(want), &obytes),
              TSR_EOVERFLOW, "%s: array too large", path);
    TSR_CHECK(ctx, f.size - h.data_offset >= (int64_t)bytes, TSR_ECORRUPT,
              "%s: truncated .npy file (%lld data bytes, %zu expected)", path,
              (long long)(f.size - h.data_offset), bytes);
    raw = tsr__malloc(ctx, bytes ? bytes : 1);
    out = tsr__malloc(ctx, obytes ? obytes : 1);
    TSR_CHECK(ctx, raw && out, TSR_ENOMEM, "out of memory loading %s", path);
    TSR_CHECK(ctx, tsr__file_pread(&f, raw, bytes, h.data_offset) == 0, TSR_EIO,
              "%s: cannot read the data", path);
    tsr__convert(out, want, raw, h.dtype, h.big_endian, count);
    tsr__free(ctx, raw);
    tsr__file_close(&f);
    *shape = h.shape;
    *data = out;
    return 0;
fail:
    tsr__free(ctx, raw);
    tsr__free(ctx, out);
    tsr__file_close(&f);
    return rc;
}
