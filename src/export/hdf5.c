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
 * HDF5 prints its error stack to stderr by default; that is switched off
 * around our calls (H5Eset_auto2, per thread in the thread-safe build) and
 * restored afterwards, and the innermost message of the stack goes into
 * the context's message instead, after the path.
 *
 * libhdf5 is not linked: it is opened on the first HDF5 export (once per
 * process, whichever thread gets there first) and called through the table
 * h5 of the functions this file uses, because loading it — with libcurl,
 * libssl, libsz and the rest it depends on — would cost every process
 * start about 30 ms.  <hdf5.h> still gives the types and constants.  Its
 * H5T_NATIVE_* macros read globals of the library after calling H5open(),
 * so this file reads those globals through the table instead (h5_native;
 * tsr__dl_var finds them where the library itself keeps them).  Its
 * file-access flags call H5check() and H5open(); here they are plain
 * constants: H5open() is called through the table, and instead of
 * H5check(), which aborts on a mismatch, the version is compared once at
 * loading.  Where libhdf5 cannot be loaded, or is not of the release series
 * (major.minor) of the headers, writing HDF5 fails with TSR_EUNSUPPORTED
 * and the reason.
 */
#include "export/export.h"
#include "platform/os.h"

#include <hdf5.h>

#include <errno.h>
#include <string.h>

/* H5F_ACC_TRUNC and its kind expand to (H5check(), H5open(), flag): keep
 * only the flag (see above). */
#undef H5CHECK
#define H5CHECK
#undef H5OPEN
#define H5OPEN

/* ---- libhdf5, loaded on first use ------------------------------------ */

/* The build passes the SONAME and the file of the libhdf5 it found; then
 * the usual names of HDF5 1.10 (SONAME 103), serial build first. */
#ifndef TSR_HDF5_SONAME
#define TSR_HDF5_SONAME ""
#endif
#ifndef TSR_HDF5_PATH
#define TSR_HDF5_PATH ""
#endif

/* Every libhdf5 function this file calls; the table's fields have their
 * names and, through __typeof__, exactly the header's types. */
#define H5_FUNCS(X)     \
    X(H5open)           \
    X(H5get_libversion) \
    X(H5Eget_auto2)     \
    X(H5Eset_auto2)     \
    X(H5Ewalk2)         \
    X(H5Eclear2)        \
    X(H5Fcreate)        \
    X(H5Fclose)         \
    X(H5Lexists)        \
    X(H5Gopen2)         \
    X(H5Gcreate2)       \
    X(H5Gclose)         \
    X(H5Screate)        \
    X(H5Screate_simple) \
    X(H5Sclose)         \
    X(H5Tcreate)        \
    X(H5Tinsert)        \
    X(H5Tenum_create)   \
    X(H5Tenum_insert)   \
    X(H5Tclose)         \
    X(H5Dcreate2)       \
    X(H5Dwrite)         \
    X(H5Dclose)

/* The predefined native types used, as the globals behind H5T_NATIVE_*. */
#define H5_NATIVES(X)    \
    X(H5T_NATIVE_UINT8)  \
    X(H5T_NATIVE_UINT16) \
    X(H5T_NATIVE_UINT32) \
    X(H5T_NATIVE_UINT64) \
    X(H5T_NATIVE_INT8)   \
    X(H5T_NATIVE_INT16)  \
    X(H5T_NATIVE_INT32)  \
    X(H5T_NATIVE_INT64)  \
    X(H5T_NATIVE_FLOAT)  \
    X(H5T_NATIVE_DOUBLE)

typedef struct h5_api {
#define H5_FIELD(fn) __typeof__(&fn) fn;
    H5_FUNCS(H5_FIELD)
#undef H5_FIELD
#define H5_GLOBAL(t) const hid_t *t##_g;
    H5_NATIVES(H5_GLOBAL)
#undef H5_GLOBAL
} h5_api_t;

/* Written once by h5_load (under h5_once), read-only afterwards: either
 * h5_ok is set and h5 is complete, or h5_err says why not. */
static h5_api_t h5;
static bool h5_ok;
static char h5_err[400];
static tsr__once_t h5_once = TSR__ONCE_INIT;

static void h5_load(void)
{
    static const char *const names[] = {TSR_HDF5_SONAME,
                                        TSR_HDF5_PATH,
                                        "libhdf5_serial.so.103",
                                        "libhdf5.so.103",
                                        "libhdf5_serial.so",
                                        "libhdf5.so",
                                        NULL};
    h5_api_t api = {0};
    unsigned major = 0, minor = 0, release = 0;
    const char *name = NULL;
    char why[300];
    void *lib, *sym;

    lib = tsr__dl_open(names, why, sizeof why);
    if (lib == NULL) {
        snprintf(h5_err, sizeof h5_err, "libhdf5 could not be loaded: %s", why);
        return;
    }
#define H5_RESOLVE(fn)                                \
    if ((sym = tsr__dl_sym(lib, name = #fn)) == NULL) \
        goto missing;                                 \
    api.fn = (__typeof__(api.fn))sym;
    H5_FUNCS(H5_RESOLVE)
#undef H5_RESOLVE
#define H5_RESOLVE(t)                                     \
    if ((sym = tsr__dl_var(lib, name = #t "_g")) == NULL) \
        goto missing;                                     \
    api.t##_g = sym;
    H5_NATIVES(H5_RESOLVE)
#undef H5_RESOLVE

    /* What H5check() would do, without its abort(): the same series as the
     * headers (releases of a series share the ABI). */
    if (api.H5open() < 0 || api.H5get_libversion(&major, &minor, &release) < 0) {
        snprintf(h5_err, sizeof h5_err, "libhdf5 failed to initialise");
        return;
    }
    if (major != H5_VERS_MAJOR || minor != H5_VERS_MINOR) {
        snprintf(h5_err, sizeof h5_err,
                 "the libhdf5 found (%u.%u.%u) is not the %d.%d series Tessera was built for",
                 major, minor, release, H5_VERS_MAJOR, H5_VERS_MINOR);
        return;
    }
    h5 = api;
    h5_ok = true;
    return;

missing:
    snprintf(h5_err, sizeof h5_err, "the libhdf5 loaded has no symbol %s", name);
}

/* Load libhdf5 if not yet done (thread-safe); TSR_EUNSUPPORTED if it
 * cannot be. */
static int h5_ready(tsr_ctx_t *ctx, const char *path)
{
    tsr__once(&h5_once, h5_load);
    if (!h5_ok)
        return tsr__ctx_seterr(ctx, TSR_EUNSUPPORTED, "cannot write HDF5 file '%s': %s", path,
                               h5_err);
    return 0;
}

/* The id of a predefined native type, as H5T_NATIVE_<t> gives it (after
 * H5open(), which tsr__h5_write_arrays calls first). */
#define h5_native(t) (*h5.t##_g)

/* ---- writing --------------------------------------------------------- */

/* H5Ewalk2 callback: keep the description of the innermost error. */
static herr_t walk_first(unsigned n, const H5E_error2_t *e, void *data)
{
    char *buf = data;

    if (n == 0 && e->desc != NULL)
        snprintf(buf, 200, "%s", e->desc);
    return 0;
}

/* Record "cannot write HDF5 file '<path>': <what>: <innermost message>". */
static int h5_fail(tsr_ctx_t *ctx, const char *path, const char *what)
{
    char detail[200] = "";

    h5.H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_first, detail);
    h5.H5Eclear2(H5E_DEFAULT);
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
    H5E_auto2_t old_func = NULL;
    void *old_data = NULL;
    bool quiet = false;
    hid_t file = H5I_INVALID_HID;
    char *tmp = NULL;
    int rc = 0;

    TSR_CHECK(ctx, arrs != NULL || n == 0, TSR_EINVAL, "cannot write '%s': no arrays given", path);
    for (size_t i = 0; i < n; i++)
        TSR_TRY(tsr__export_check(ctx, &arrs[i], path, NULL, NULL));
    TSR_TRY(h5_ready(ctx, path));
    TSR_TRY(tsr__export_tmp_path(ctx, path, &tmp));

    /* As the H5T_NATIVE_* macros would before reading their globals. */
    TSR_CHECK(ctx, h5.H5open() >= 0, TSR_EIO,
              "cannot write HDF5 file '%s': libhdf5 failed to start", path);
    if (h5.H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data) >= 0 &&
        h5.H5Eset_auto2(H5E_DEFAULT, NULL, NULL) >= 0)
        quiet = true;

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
    if (quiet)
        h5.H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
    return tsr__export_finish(ctx, tmp, path, rc);
}
