/*
 * hdf5.c — the HDF5 writer (libhdf5 C API, serial).
 *
 * One new file (an older one at the path is replaced) with one group per
 * UDF and one dataset per buffer: /<udf>/<buffer>, of the buffer's shape
 * (a scalar dataspace for 0-d) and the native HDF5 type of its dtype, laid
 * out contiguously.  complex64 is the compound {"r": float32, "i": float32}
 * and bool the int8 enum {FALSE = 0, TRUE = 1}: both as h5py writes them,
 * so that h5py reads them back as complex64 and bool.  A NAV buffer with a
 * valid mask also gets /<udf>/<buffer>_valid, uint8 of the nav shape.
 *
 * libhdf5 is opened on the first HDF5 export or read and called through
 * the shared table of src/io/h5lib.h, under its lock; HDF5's printing of
 * its error stack is off meanwhile, and the innermost message of the stack
 * goes into the context's message instead, after the path.  Where libhdf5
 * cannot be loaded, writing HDF5 fails with TSR_EUNSUPPORTED and the
 * reason.
 */
#include "export/export.h"
#include "io/h5lib.h"

#include <errno.h>
#include <string.h>

#define h5 tsr__h5
#define h5_native tsr__h5_native

/* Load libhdf5 if not yet done (thread-safe); TSR_EUNSUPPORTED if it
 * cannot be. */
static int h5_ready(tsr_ctx_t *ctx, const char *path)
{
    char why[400];

    if (tsr__h5_load(why, sizeof why) != 0)
        return tsr__ctx_seterr(ctx, TSR_EUNSUPPORTED, "cannot write HDF5 file '%s': %s", path, why);
    return 0;
}

/* ---- writing --------------------------------------------------------- */

/* Record "cannot write HDF5 file '<path>': <what>: <innermost message>". */
static int h5_fail(tsr_ctx_t *ctx, const char *path, const char *what)
{
    char detail[200] = "";

    tsr__h5_error(detail, sizeof detail);
    return tsr__ctx_seterr(ctx, TSR_EIO, "cannot write HDF5 file '%s': %s%s%s", path, what,
                           detail[0] ? ": " : "", detail);
}

/* The HDF5 type of a dtype: a predefined native type, or a new one for
 * complex64 and bool (*made is set: the caller closes it). */
static hid_t h5_type(tsr_dtype_t dt, bool *made)
{
    hid_t t = H5I_INVALID_HID;
    int8_t v;

    *made = false;
    switch (dt) {
    case TSR_U8: return h5_native(H5T_NATIVE_UINT8);
    case TSR_U16: return h5_native(H5T_NATIVE_UINT16);
    case TSR_U32: return h5_native(H5T_NATIVE_UINT32);
    case TSR_U64: return h5_native(H5T_NATIVE_UINT64);
    case TSR_I8: return h5_native(H5T_NATIVE_INT8);
    case TSR_I16: return h5_native(H5T_NATIVE_INT16);
    case TSR_I32: return h5_native(H5T_NATIVE_INT32);
    case TSR_I64: return h5_native(H5T_NATIVE_INT64);
    case TSR_F32: return h5_native(H5T_NATIVE_FLOAT);
    case TSR_F64: return h5_native(H5T_NATIVE_DOUBLE);
    case TSR_C64:
        t = h5.H5Tcreate(H5T_COMPOUND, 2 * sizeof(float));
        if (t < 0)
            return t;
        *made = true;
        if (h5.H5Tinsert(t, "r", 0, h5_native(H5T_NATIVE_FLOAT)) < 0 ||
            h5.H5Tinsert(t, "i", sizeof(float), h5_native(H5T_NATIVE_FLOAT)) < 0)
            goto fail;
        return t;
    case TSR_BOOL:
        t = h5.H5Tenum_create(h5_native(H5T_NATIVE_INT8));
        if (t < 0)
            return t;
        *made = true;
        v = 0;
        if (h5.H5Tenum_insert(t, "FALSE", &v) < 0)
            goto fail;
        v = 1;
        if (h5.H5Tenum_insert(t, "TRUE", &v) < 0)
            goto fail;
        return t;
    default: break;
    }
    return H5I_INVALID_HID;

fail:
    h5.H5Tclose(t);
    *made = false;
    return H5I_INVALID_HID;
}

/* A dataspace for ndim dims (scalar for 0). */
static hid_t h5_space(int ndim, const int64_t *dims)
{
    hsize_t hd[TSR_MAX_DIMS];

    if (ndim == 0)
        return h5.H5Screate(H5S_SCALAR);
    for (int d = 0; d < ndim; d++)
        hd[d] = (hsize_t)dims[d];
    return h5.H5Screate_simple(ndim, hd, NULL);
}

/* Create dataset name in loc with type and shape, and write data (which
 * may be NULL when the shape is empty). */
static int h5_dataset(tsr_ctx_t *ctx, const char *path, hid_t loc, const char *name, hid_t type,
                      int ndim, const int64_t *dims, const void *data, size_t n_elems)
{
    hid_t space = H5I_INVALID_HID, dset = H5I_INVALID_HID;
    char what[300];
    int rc = 0;

    snprintf(what, sizeof what, "dataset '%s'", name);
    space = h5_space(ndim, dims);
    if (space < 0) {
        rc = h5_fail(ctx, path, what);
        goto fail;
    }
    dset = h5.H5Dcreate2(loc, name, type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (dset < 0) {
        rc = h5_fail(ctx, path, what);
        goto fail;
    }
    if (n_elems > 0 && h5.H5Dwrite(dset, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0) {
        rc = h5_fail(ctx, path, what);
        goto fail;
    }

fail:
    if (dset >= 0 && h5.H5Dclose(dset) < 0 && rc == 0)
        rc = h5_fail(ctx, path, what);
    if (space >= 0)
        h5.H5Sclose(space);
    return rc;
}

/* Write one array (and its valid mask) under its UDF's group. */
static int h5_array(tsr_ctx_t *ctx, const char *path, hid_t file, const tsr_array_t *arrs, size_t n,
                    size_t i)
{
    const tsr_array_t *a = &arrs[i];
    char group[128], name[128], valid_name[140];
    hid_t gid = H5I_INVALID_HID, type = H5I_INVALID_HID;
    bool made = false;
    size_t n_elems;
    htri_t exists;
    int rc = 0;

    TSR_TRY(tsr__export_check(ctx, a, path, &n_elems, NULL));
    tsr__export_udf_label(arrs, n, i, group, sizeof group);
    tsr__export_name(a->name, name, sizeof name);

    exists = h5.H5Lexists(file, group, H5P_DEFAULT);
    gid = exists > 0 ? h5.H5Gopen2(file, group, H5P_DEFAULT)
                     : h5.H5Gcreate2(file, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (gid < 0) {
        char what[160];
        snprintf(what, sizeof what, "group '%s'", group);
        rc = h5_fail(ctx, path, what);
        goto fail;
    }
    type = h5_type(a->dtype, &made);
    if (type < 0) {
        rc = h5_fail(ctx, path, "creating the element type");
        goto fail;
    }
    TSR_TRY(h5_dataset(ctx, path, gid, name, type, a->shape.ndim, a->shape.dims, a->data, n_elems));

    if (a->kind == TSR_KIND_NAV && a->valid != NULL) {
        int nav_ndim = tsr__export_nav_ndim(a);
        size_t n_nav = 1;
        for (int d = 0; d < nav_ndim; d++)
            n_nav *= (size_t)a->shape.dims[d]; /* a prefix of a checked size */
        snprintf(valid_name, sizeof valid_name, "%s_valid", name);
        TSR_TRY(h5_dataset(ctx, path, gid, valid_name, h5_native(H5T_NATIVE_UINT8), nav_ndim,
                           a->shape.dims, a->valid, n_nav));
    }

fail:
    if (made)
        h5.H5Tclose(type);
    if (gid >= 0)
        h5.H5Gclose(gid);
    return rc;
}

int tsr__h5_write_arrays(tsr_ctx_t *ctx, const tsr_array_t *arrs, size_t n, const char *path)
{
    tsr__h5_scope_t scope;
    bool entered = false;
    hid_t file = H5I_INVALID_HID;
    char *tmp = NULL;
    int rc = 0;

    TSR_CHECK(ctx, arrs != NULL || n == 0, TSR_EINVAL, "cannot write '%s': no arrays given", path);
    for (size_t i = 0; i < n; i++)
        TSR_TRY(tsr__export_check(ctx, &arrs[i], path, NULL, NULL));
    TSR_TRY(h5_ready(ctx, path));
    TSR_TRY(tsr__export_tmp_path(ctx, path, &tmp));

    tsr__h5_enter(&scope);
    entered = true;

    errno = 0;
    file = h5.H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (file < 0) {
        /* Most often the system refused: say why in its words. */
        int err = errno;
        rc = h5_fail(ctx, path, "cannot create the file");
        if (err != 0)
            rc = tsr__export_ioerr(ctx, path, err);
        goto fail;
    }
    for (size_t i = 0; i < n; i++)
        TSR_TRY(h5_array(ctx, path, file, arrs, n, i));

fail:
    /* Closing flushes the file; a failure there means it is incomplete. */
    if (file >= 0 && h5.H5Fclose(file) < 0 && rc == 0)
        rc = h5_fail(ctx, path, "closing the file");
    if (entered)
        tsr__h5_leave(&scope);
    return tsr__export_finish(ctx, tmp, path, rc);
}
