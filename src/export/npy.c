/*
 * npy.c — the NPY v1.0 writer.
 *
 * The file is numpy's format 1.0: the magic "\x93NUMPY", version 1.0, a
 * little-endian uint16 header length, then the header dict
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
 * padded with spaces and ended by '\n' so that the data start at a multiple
 * of 64 bytes (numpy's own alignment), then the elements in C order exactly
 * as they are in memory.  The dtype is kept: the typestring is '|u1', '|i1'
 * or '|b1' for one-byte types and '<' (or '>' on a big-endian host, since the
 * data are written in host order) followed by the kind and size for the
 * others ('<c8' for complex64).  The shape is a Python tuple: '()' for 0-d,
 * '(5,)' for 1-d.
 */
#include "export/export.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NPY_ALIGN 64
#define NPY_PREAMBLE 10 /* magic (6) + version (2) + header length (2) */

static bool host_big_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;

    memcpy(&first, &one, 1);
    return first == 0;
}

/* The kind letter and size of a dtype as numpy spells it. */
static void npy_descr(tsr_dtype_t dt, char out[8])
{
    static const char kinds[TSR_DTYPE_COUNT] = {
        [TSR_U8] = 'u',  [TSR_U16] = 'u', [TSR_U32] = 'u', [TSR_U64] = 'u',
        [TSR_I8] = 'i',  [TSR_I16] = 'i', [TSR_I32] = 'i', [TSR_I64] = 'i',
        [TSR_F32] = 'f', [TSR_F64] = 'f', [TSR_C64] = 'c', [TSR_BOOL] = 'b',
    };
    size_t size = tsr_dtype_size(dt);
    char order = size == 1 ? '|' : host_big_endian() ? '>' : '<';

    snprintf(out, 8, "%c%c%zu", order, kinds[dt], size);
}

/* Write the whole header (preamble, dict, padding, '\n') into buf; returns
 * its length, a multiple of NPY_ALIGN, or 0 if buf is too small. */
static size_t npy_header(const tsr_array_t *arr, uint8_t *buf, size_t cap)
{
    char descr[8], dict[320];
    size_t used = 0, dict_len, total;
    int w;

    npy_descr(arr->dtype, descr);
    w = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    if (w < 0)
        return 0;
    used = (size_t)w;
    for (int d = 0; d < arr->shape.ndim; d++) {
        w = snprintf(dict + used, sizeof dict - used, "%s%lld", d ? ", " : "",
                     (long long)arr->shape.dims[d]);
        if (w < 0 || (size_t)w >= sizeof dict - used)
            return 0;
        used += (size_t)w;
    }
    w = snprintf(dict + used, sizeof dict - used, "%s), }", arr->shape.ndim == 1 ? "," : "");
    if (w < 0 || (size_t)w >= sizeof dict - used)
        return 0;
    dict_len = used + (size_t)w;

    /* Preamble + dict + at least the '\n', rounded up to the alignment. */
    total = (NPY_PREAMBLE + dict_len + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    if (total > cap || total - NPY_PREAMBLE > 0xffff)
        return 0;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (uint8_t)((total - NPY_PREAMBLE) & 0xff);
    buf[9] = (uint8_t)((total - NPY_PREAMBLE) >> 8);
    memcpy(buf + NPY_PREAMBLE, dict, dict_len);
    memset(buf + NPY_PREAMBLE + dict_len, ' ', total - NPY_PREAMBLE - dict_len - 1);
    buf[total - 1] = '\n';
    return total;
}

int tsr__npy_write(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path)
{
    uint8_t header[384];
    size_t header_len, n_bytes;
    char *tmp = NULL;
    FILE *f = NULL;
    int rc;

    TSR_TRY(tsr__export_check(ctx, arr, path, NULL, &n_bytes));
    header_len = npy_header(arr, header, sizeof header);
    /* Cannot happen within TSR_MAX_DIMS dimensions; kept as a guard. */
    TSR_CHECK(ctx, header_len > 0, TSR_EINVAL, "cannot write '%s': NPY header too long", path);

    TSR_TRY(tsr__export_tmp_path(ctx, path, &tmp));
    f = fopen(tmp, "wb");
    if (f == NULL) {
        rc = tsr__export_ioerr(ctx, path, errno);
        goto fail;
    }
    if (fwrite(header, 1, header_len, f) != header_len ||
        (n_bytes > 0 && fwrite(arr->data, 1, n_bytes, f) != n_bytes)) {
        rc = tsr__export_ioerr(ctx, path, errno);
        goto fail;
    }
    rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        rc = tsr__export_ioerr(ctx, path, errno);
        goto fail;
    }

fail:
    if (f != NULL)
        fclose(f);
    return tsr__export_finish(ctx, tmp, path, rc);
}
