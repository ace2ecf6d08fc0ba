/*
 * hdf5.c — HDF5 files (.h5, .hdf5, .nxs, .emd, ...): probing, opening and
 * metadata.  The read path is chunks.c; the chunk table index.c.
 *
 * Which dataset.  The ds_path parameter names it.  Otherwise a DECTRIS
 * master file (links /entry/data/data_000001, data_000002, ... to data
 * files) opens as its data files' images in order, one part per file; and
 * any other file opens its largest dataset (by element count) of three or
 * more dimensions with integer or floating point elements — every such
 * candidate is listed in the metadata, so `tessera info` shows them.  The
 * last sig_dims axes (2 by default) are the frame, the others the scan.
 * Velox EMD image stacks are stored (y, x, frame) and are read as
 * (frame, y, x) (frames_last).
 *
 * libhdf5 (loaded on first use, src/io/h5lib.h) is used only here, while
 * opening, under its lock: for the structure, the types, the layout, the
 * filters and the chunk index.  A contiguous dataset whose frames lie one
 * after the other becomes a segment of the shared strided reader; chunked
 * (and compact) ones are read by chunks.c, which needs no libhdf5.  All
 * HDF5 handles are closed before open returns.
 */
#include "io/formats/hdf5/h5fmt.h"
#include "io/h5lib.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <strings.h>

static const tsr_param_def_t params[] = {
    {"ds_path", "string", "",
     "path of the dataset in the file (default: a DECTRIS master file's data, else the largest "
     "dataset of 3 or more dimensions)",
     false},
    {"sig_dims", "int", "2", "how many of the last axes make a frame", false},
    {"nav_shape", "shape", "", "scan shape (default: the dataset's other axes)", false},
    {"sig_shape", "shape", "", "frame shape (default: the dataset's last sig_dims axes)", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
    {"frames_last", "string", "auto",
     "'true': the last axis counts frames, the others make the frame (Velox stores (y, x, "
     "frame)); 'auto': true for Velox EMD image stacks",
     false},
};

static const char *const exts[] = {"h5",  "hdf5", "hdf",  "he5", "nxs",
                                   "nx5", "emd",  "hspy", "cxi", NULL};

static const unsigned char h5_magic[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

static int probe(const char *path, const uint8_t *head, size_t n)
{
    /* the superblock is at 0 or after a user block of 512 * 2^k bytes */
    for (size_t at = 0; at + 8 <= n; at = at ? 2 * at : 512)
        if (memcmp(head + at, h5_magic, 8) == 0)
            return 100;
    /* an HDF5 extension without the signature: claim it weakly, so that
     * open names the problem instead of "no format recognises" */
    const char *dot = strrchr(path, '.');
    for (const char *const *e = exts; dot && *e; e++)
        if (strcasecmp(dot + 1, *e) == 0)
            return 10;
    return 0;
}

/* ---- small helpers ----------------------------------------------------- */

static int h5err(tsr__open_args_t *a, int code, const char *fmt, ...) TSR__PRINTF(3, 4);
static int h5err(tsr__open_args_t *a, int code, const char *fmt, ...)
{
    char what[TSR__ERRMSG_MAX], why[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    tsr__h5_error(why, sizeof why);
    return tsr__seterr(a->err, a->errlen, code, "%s%s%s", what, why[0] ? ": " : "", why);
}

/* The dtype of an HDF5 type, or false. */
static bool h5_dtype(hid_t t, tsr_dtype_t *dt, bool *big)
{
    H5T_class_t cls = tsr__h5.H5Tget_class(t);
    size_t size = tsr__h5.H5Tget_size(t);
    H5T_order_t order = tsr__h5.H5Tget_order(t);
    *big = order == H5T_ORDER_BE;
    if (order != H5T_ORDER_LE && order != H5T_ORDER_BE && !(size == 1 && order == H5T_ORDER_NONE))
        return false;
    if (size == 1)
        *big = false;
    if (cls == H5T_INTEGER) {
        bool sgn = tsr__h5.H5Tget_sign(t) == H5T_SGN_2;
        switch (size) {
        case 1: *dt = sgn ? TSR_I8 : TSR_U8; return true;
        case 2: *dt = sgn ? TSR_I16 : TSR_U16; return true;
        case 4: *dt = sgn ? TSR_I32 : TSR_U32; return true;
        case 8: *dt = sgn ? TSR_I64 : TSR_U64; return true;
        default: return false;
        }
    }
    if (cls == H5T_FLOAT) {
        if (size == 4)
            *dt = TSR_F32;
        else if (size == 8)
            *dt = TSR_F64;
        else
            return false;
        return true;
    }
    return false;
}

/* numpy's typestr of a dtype in a byte order, e.g. "<u2". */
static void typestr(tsr_dtype_t dt, bool big, char *out, size_t n)
{
    static const char *k[] = {
        [TSR_U8] = "u1",  [TSR_U16] = "u2", [TSR_U32] = "u4", [TSR_U64] = "u8", [TSR_I8] = "i1",
        [TSR_I16] = "i2", [TSR_I32] = "i4", [TSR_I64] = "i8", [TSR_F32] = "f4", [TSR_F64] = "f8"};
    size_t es = tsr_dtype_size(dt);
    snprintf(out, n, "%c%s",
             es == 1 ? '|'
             : big   ? '>'
                     : '<',
             (int)dt < (int)(sizeof k / sizeof *k) && k[dt] ? k[dt] : "?");
}

static json_t *dims_json(const int64_t *d, int nd)
{
    json_t *a = json_array();
    for (int i = 0; i < nd && a; i++)
        json_array_append_new(a, json_integer(d[i]));
    return a;
}

/* Read the value of a scalar or one-element dataset or attribute as JSON
 * (number or string); NULL if it is neither. */
static json_t *h5_value(hid_t obj, bool attr)
{
    hid_t t = attr ? tsr__h5.H5Aget_type(obj) : tsr__h5.H5Dget_type(obj);
    hid_t sp = attr ? tsr__h5.H5Aget_space(obj) : tsr__h5.H5Dget_space(obj);
    json_t *v = NULL;
    if (t < 0 || sp < 0)
        goto done;
    if (tsr__h5.H5Sget_simple_extent_npoints(sp) != 1)
        goto done;
    H5T_class_t cls = tsr__h5.H5Tget_class(t);
    if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
        hid_t mt = cls == H5T_FLOAT                      ? tsr__h5_native(H5T_NATIVE_DOUBLE)
                   : tsr__h5.H5Tget_sign(t) == H5T_SGN_2 ? tsr__h5_native(H5T_NATIVE_INT64)
                                                         : tsr__h5_native(H5T_NATIVE_UINT64);
        union {
            double d;
            int64_t i;
            uint64_t u;
        } u;
        herr_t r = attr ? tsr__h5.H5Aread(obj, mt, &u)
                        : tsr__h5.H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &u);
        if (r >= 0)
            v = cls == H5T_FLOAT                         ? json_real(u.d)
                : mt == tsr__h5_native(H5T_NATIVE_INT64) ? json_integer(u.i)
                : u.u <= (uint64_t)INT64_MAX             ? json_integer((json_int_t)u.u)
                                                         : json_real((double)u.u);
    } else if (cls == H5T_STRING) {
        hid_t mt = tsr__h5.H5Tcopy(tsr__h5_native(H5T_C_S1));
        if (mt < 0)
            goto done;
        if (tsr__h5.H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            tsr__h5.H5Tset_size(mt, H5T_VARIABLE);
            herr_t r = attr ? tsr__h5.H5Aread(obj, mt, &s)
                            : tsr__h5.H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, &s);
            if (r >= 0 && s) {
                v = json_string(s);
                tsr__h5.H5free_memory(s);
            }
        } else {
            size_t n = tsr__h5.H5Tget_size(t);
            char *s = n < (1u << 20) ? calloc(1, n + 2) : NULL;
            if (s) {
                tsr__h5.H5Tset_size(mt, n + 1);
                herr_t r = attr ? tsr__h5.H5Aread(obj, mt, s)
                                : tsr__h5.H5Dread(obj, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, s);
                if (r >= 0) {
                    size_t k = strlen(s);
                    while (k && isspace((unsigned char)s[k - 1]))
                        s[--k] = 0;
                    v = json_string(s);
                }
                free(s);
            }
        }
        tsr__h5.H5Tclose(mt);
    }
done:
    if (t >= 0)
        tsr__h5.H5Tclose(t);
    if (sp >= 0)
        tsr__h5.H5Sclose(sp);
    return v; /* NULL also for strings that are not UTF-8 */
}

/* The value of dataset loc/name if it is a scalar (NULL otherwise). */
static json_t *h5_scalar_at(hid_t loc, const char *name)
{
    if (tsr__h5.H5Lexists(loc, name, H5P_DEFAULT) <= 0)
        return NULL;
    H5O_info_t oi;
    if (tsr__h5.H5Oget_info_by_name2(loc, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0 ||
        oi.type != H5O_TYPE_DATASET)
        return NULL;
    hid_t d = tsr__h5.H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return NULL;
    json_t *v = h5_value(d, false);
    tsr__h5.H5Dclose(d);
    return v;
}

static herr_t attr_cb(hid_t loc, const char *name, const H5A_info_t *info, void *data)
{
    (void)info;
    json_t *o = data;
    if (json_object_size(o) >= 64)
        return 1;
    hid_t at = tsr__h5.H5Aopen(loc, name, H5P_DEFAULT);
    if (at < 0)
        return 0;
    json_t *v = h5_value(at, true);
    tsr__h5.H5Aclose(at);
    if (v)
        json_object_set_new(o, name, v);
    return 0;
}

/* The scalar and string attributes of obj (up to 64). */
static json_t *h5_attrs(hid_t obj)
{
    json_t *o = json_object();
    hsize_t idx = 0;
    if (o)
        tsr__h5.H5Aiterate2(obj, H5_INDEX_NAME, H5_ITER_INC, &idx, attr_cb, o);
    return o;
}

/* The units attribute of dataset loc/name, or "". */
static void units_of(hid_t loc, const char *name, char *out, size_t n)
{
    out[0] = 0;
    hid_t d = tsr__h5.H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0)
        return;
    if (tsr__h5.H5Aexists(d, "units") > 0) {
        hid_t at = tsr__h5.H5Aopen(d, "units", H5P_DEFAULT);
        json_t *v = at >= 0 ? h5_value(at, true) : NULL;
        if (v && json_is_string(v))
            snprintf(out, n, "%s", json_string_value(v));
        json_decref(v);
        if (at >= 0)
            tsr__h5.H5Aclose(at);
    }
    tsr__h5.H5Dclose(d);
}

/* ---- choosing the dataset ---------------------------------------------- */

typedef struct cand {
    char *path;
    int64_t dims[H5R_MAXD];
    int nd;
    int64_t elems;
    char type[8];
} cand_t;

typedef struct cands {
    tsr_ctx_t *ctx;
    cand_t *v;
    int n, cap;
    bool oom;
} cands_t;

static herr_t visit_cb(hid_t root, const char *name, const H5O_info_t *info, void *data)
{
    cands_t *c = data;
    if (info->type != H5O_TYPE_DATASET || c->n >= 10000)
        return 0;
    hid_t d = tsr__h5.H5Dopen2(root, name, H5P_DEFAULT);
    if (d < 0)
        return 0;
    hid_t sp = tsr__h5.H5Dget_space(d), t = tsr__h5.H5Dget_type(d);
    int nd = sp >= 0 ? tsr__h5.H5Sget_simple_extent_ndims(sp) : -1;
    hsize_t dims[32];
    tsr_dtype_t dt;
    bool big;
    if (nd >= 3 && nd <= H5R_MAXD && t >= 0 && h5_dtype(t, &dt, &big) &&
        tsr__h5.H5Sget_simple_extent_dims(sp, dims, NULL) == nd) {
        if (c->n == c->cap) {
            int cap = c->cap ? 2 * c->cap : 8;
            cand_t *v = tsr__realloc(c->ctx, c->v, (size_t)cap * sizeof *v);
            if (!v) {
                c->oom = true;
                goto out;
            }
            c->v = v;
            c->cap = cap;
        }
        cand_t *k = &c->v[c->n];
        memset(k, 0, sizeof *k);
        size_t len = strlen(name);
        k->path = tsr__malloc(c->ctx, len + 2);
        if (!k->path) {
            c->oom = true;
            goto out;
        }
        k->path[0] = '/';
        memcpy(k->path + 1, name, len + 1);
        k->nd = nd;
        k->elems = 1;
        for (int i = 0; i < nd; i++) {
            k->dims[i] = (int64_t)dims[i];
            if (!tsr__mul_i64(k->elems, k->dims[i], &k->elems))
                k->elems = INT64_MAX;
        }
        typestr(dt, big, k->type, sizeof k->type);
        c->n++;
    }
out:
    if (t >= 0)
        tsr__h5.H5Tclose(t);
    if (sp >= 0)
        tsr__h5.H5Sclose(sp);
    tsr__h5.H5Dclose(d);
    return c->oom ? -1 : 0;
}

static void cands_free(cands_t *c)
{
    for (int i = 0; i < c->n; i++)
        tsr__free(c->ctx, c->v[i].path);
    tsr__free(c->ctx, c->v);
}

typedef struct links {
    tsr_ctx_t *ctx;
    char (*names)[32];
    int n, cap;
} links_t;

/* /entry/data members named data_NNNNNN (DECTRIS), in name order. */
static herr_t dectris_cb(hid_t g, const char *name, const H5L_info_t *info, void *data)
{
    (void)g;
    (void)info;
    links_t *l = data;
    if (strncmp(name, "data_", 5) != 0 || strlen(name) > 20 || strlen(name) < 6)
        return 0;
    for (const char *p = name + 5; *p; p++)
        if (!isdigit((unsigned char)*p))
            return 0;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        char(*v)[32] = tsr__realloc(l->ctx, l->names, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        l->names = v;
        l->cap = cap;
    }
    snprintf(l->names[l->n++], 32, "/entry/data/%s", name);
    return 0;
}

/* ---- one part ---------------------------------------------------------- */

/* Where an external link at path points, for messages ("" if not one). */
static void elink_target(hid_t f, const char *path, char *out, size_t n)
{
    H5L_info_t li;
    out[0] = 0;
    if (tsr__h5.H5Lget_info(f, path, &li, H5P_DEFAULT) < 0 || li.type != H5L_TYPE_EXTERNAL ||
        li.u.val_size > 4096)
        return;
    char buf[4097];
    const char *file = NULL, *obj = NULL;
    unsigned flags;
    if (tsr__h5.H5Lget_val(f, path, buf, li.u.val_size, H5P_DEFAULT) < 0 ||
        tsr__h5.H5Lunpack_elink_val(buf, li.u.val_size, &flags, &file, &obj) < 0)
        return;
    snprintf(out, n, "%s:%s", file ? file : "?", obj ? obj : "?");
}

static const char *filter_name(int id)
{
    switch (id) {
    case H5R_F_DEFLATE: return "deflate";
    case H5R_F_SHUFFLE: return "shuffle";
    case H5R_F_FLETCHER32: return "fletcher32";
    case H5R_F_LZ4: return "lz4";
    case H5R_F_BSHUF: return "bitshuffle";
    case H5R_F_ZSTD: return "zstd";
    case 4: return "szip";
    case 5: return "nbit";
    case 6: return "scaleoffset";
    case 307: return "bzip2";
    case 32000: return "lzf";
    case 32001: return "blosc";
    default: return "unknown";
    }
}

/* What open learns of one HDF5 dataset before it becomes a part. */
typedef struct dsinfo {
    int nd;
    tsr_dtype_t dt;
    bool big;
    H5D_layout_t layout;
    int64_t offset; /* contiguous */
} dsinfo_t;

static int add_part(tsr__open_args_t *a, h5r_state_t *st, hid_t f, const char *path, bool dectris,
                    dsinfo_t *info)
{
    tsr_dataset_t *ds = a->ds;
    hid_t d = -1, sp = -1, t = -1, dcpl = -1, df = -1, fcpl = -1;
    hsize_t dims[H5R_MAXD], cd[H5R_MAXD];
    char fname[4096], target[512];
    int rc = 0, nd;

    h5r_part_t *parts = tsr__realloc(a->ctx, st->parts, (size_t)(st->n_parts + 1) * sizeof *parts);
    if (!parts)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    st->parts = parts;
    h5r_part_t *p = &parts[st->n_parts];
    memset(p, 0, sizeof *p);
    st->n_parts++;

    d = tsr__h5.H5Dopen2(f, path, H5P_DEFAULT);
    if (d < 0) {
        elink_target(f, path, target, sizeof target);
        if (target[0])
            return h5err(a, TSR_ENOTFOUND,
                         "%s: %s links to %s, which cannot be opened (a missing data file?)",
                         a->path, path, target);
        return h5err(a, dectris ? TSR_ENOTFOUND : TSR_EINVAL, "%s: cannot open dataset %s", a->path,
                     path);
    }
    ssize_t fl = tsr__h5.H5Fget_name(d, fname, sizeof fname);
    if (fl <= 0 || (size_t)fl >= sizeof fname) {
        rc = h5err(a, TSR_EIO, "%s: cannot tell the file of %s", a->path, path);
        goto done;
    }
    size_t nl = strlen(fname) + strlen(path) + 2;
    p->name = tsr__malloc(a->ctx, nl);
    if (!p->name) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(p->name, nl, "%s:%s", fname, path);

    sp = tsr__h5.H5Dget_space(d);
    t = tsr__h5.H5Dget_type(d);
    dcpl = tsr__h5.H5Dget_create_plist(d);
    if (sp < 0 || t < 0 || dcpl < 0) {
        rc = h5err(a, TSR_ECORRUPT, "%s: cannot read the header", p->name);
        goto done;
    }
    nd = tsr__h5.H5Sget_simple_extent_ndims(sp);
    if (nd < 2 || nd > H5R_MAXD) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: the dataset has %d dimensions; 2 to %d are supported", p->name, nd,
                         H5R_MAXD);
        goto done;
    }
    tsr__h5.H5Sget_simple_extent_dims(sp, dims, NULL);
    info->nd = nd;
    if (!h5_dtype(t, &info->dt, &info->big)) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: elements of HDF5 class %d and %zu bytes are not supported (only "
                         "integers and floating point numbers)",
                         p->name, (int)tsr__h5.H5Tget_class(t), tsr__h5.H5Tget_size(t));
        goto done;
    }
    for (int i = 0; i < nd; i++) {
        p->dims[i] = (int64_t)dims[i];
        if (p->dims[i] == 0) {
            rc = tsr__seterr(a->err, a->errlen, TSR_EINVAL, "%s: axis %d is empty", p->name, i);
            goto done;
        }
    }
    if (tsr__h5.H5Pget_external_count(dcpl) > 0) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: data stored in external raw files are not supported", p->name);
        goto done;
    }
    /* the fill value of chunks never written, in the file's byte order */
    H5D_fill_value_t fv;
    memset(st->fill, 0, sizeof st->fill);
    if (tsr__h5.H5Pfill_value_defined(dcpl, &fv) >= 0 && fv == H5D_FILL_VALUE_USER_DEFINED &&
        tsr_dtype_size(info->dt) <= sizeof st->fill)
        tsr__h5.H5Pget_fill_value(dcpl, t, st->fill);

    /* the file holding the data, and its base address */
    int file = -1;
    for (int i = 0; i < ds->n_files; i++)
        if (strcmp(ds->file_paths[i], fname) == 0)
            file = i;
    if (file < 0 && (file = tsr__dataset_add_file(a, fname)) < 0) {
        rc = file;
        goto done;
    }
    p->file = file;
    int64_t base = 0;
    df = tsr__h5.H5Iget_file_id(d);
    fcpl = df >= 0 ? tsr__h5.H5Fget_create_plist(df) : -1;
    hsize_t ub = 0;
    if (fcpl >= 0 && tsr__h5.H5Pget_userblock(fcpl, &ub) >= 0)
        base = (int64_t)ub;

    info->layout = tsr__h5.H5Pget_layout(dcpl);
    p->contiguous = info->layout == H5D_CONTIGUOUS;
    size_t es = tsr_dtype_size(info->dt);
    switch (info->layout) {
    case H5D_CONTIGUOUS: {
        haddr_t off = tsr__h5.H5Dget_offset(d);
        for (int i = 0; i < nd; i++)
            p->cdims[i] = p->dims[i];
        info->offset = off == HADDR_UNDEF ? H5R_ADDR_NONE : (int64_t)off;
        p->offset = info->offset;
        break;
    }
    case H5D_CHUNKED:
        if (tsr__h5.H5Pget_chunk(dcpl, nd, cd) != nd) {
            rc = h5err(a, TSR_ECORRUPT, "%s: cannot read the chunk shape", p->name);
            goto done;
        }
        for (int i = 0; i < nd; i++) {
            p->cdims[i] = (int64_t)cd[i];
            if (p->cdims[i] < 1) {
                rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT, "%s: chunk shape axis %d is %lld",
                                 p->name, i, (long long)p->cdims[i]);
                goto done;
            }
        }
        break;
    case H5D_COMPACT:
        for (int i = 0; i < nd; i++)
            p->cdims[i] = p->dims[i];
        break;
    case H5D_VIRTUAL:
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: virtual datasets (VDS) are not supported; open their source "
                         "files",
                         p->name);
        goto done;
    default:
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED, "%s: unknown storage layout %d",
                         p->name, (int)info->layout);
        goto done;
    }
    int64_t chunk_elems = 1;
    for (int i = 0; i < nd; i++) {
        p->grid[i] = (p->dims[i] + p->cdims[i] - 1) / p->cdims[i];
        if (!tsr__mul_i64(chunk_elems, p->cdims[i], &chunk_elems))
            chunk_elems = INT64_MAX;
    }
    if (info->layout != H5D_CONTIGUOUS && (chunk_elems > (INT64_C(1) << 32) / (int64_t)es)) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: chunks of %lld elements exceed HDF5's 4 GiB limit", p->name,
                         (long long)chunk_elems);
        goto done;
    }

    /* filters */
    int nf = tsr__h5.H5Pget_nfilters(dcpl);
    if (nf < 0 || nf > H5R_MAXFILT) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: %d filters in the pipeline; at most %d are supported", p->name, nf,
                         H5R_MAXFILT);
        goto done;
    }
    for (int i = 0; i < nf; i++) {
        h5r_filter_t *fi = &p->filt[i];
        unsigned flags, conf;
        size_t ncd = 8;
        char nm[64] = "";
        fi->id = (int)tsr__h5.H5Pget_filter2(dcpl, (unsigned)i, &flags, &ncd, fi->cd, sizeof nm, nm,
                                             &conf);
        fi->n_cd = ncd < 8 ? ncd : 8;
        switch (fi->id) {
        case H5R_F_DEFLATE:
        case H5R_F_SHUFFLE:
        case H5R_F_FLETCHER32:
        case H5R_F_LZ4:
        case H5R_F_ZSTD: break;
        case H5R_F_BSHUF:
            if (fi->n_cd > 4 && fi->cd[4] != 0 && fi->cd[4] != 2 && fi->cd[4] != 3) {
                rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                                 "%s: bitshuffle with compression %u is not supported (0 none, "
                                 "2 lz4, 3 zstd are)",
                                 p->name, fi->cd[4]);
                goto done;
            }
            break;
        default:
            rc =
                tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                            "%s: chunks are compressed with HDF5 filter %d (%s%s%s), which is "
                            "not supported (supported: deflate/gzip, shuffle, fletcher32, lz4 "
                            "32004, bitshuffle 32008, zstd 32015)",
                            p->name, fi->id, nm[0] ? nm : filter_name(fi->id), nm[0] ? "" : "", "");
            goto done;
        }
    }
    p->n_filt = nf;

    if (info->layout == H5D_CHUNKED) {
        if ((rc = tsr__h5r_index(a, p, d, base, &ds->files[file], (size_t)chunk_elems * es)))
            goto done;
    } else if (info->layout == H5D_COMPACT) {
        size_t bytes = (size_t)chunk_elems * es;
        p->mem = tsr__malloc(a->ctx, bytes ? bytes : 1);
        p->chunks = tsr__malloc(a->ctx, sizeof *p->chunks);
        if (!p->mem || !p->chunks) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
            goto done;
        }
        if (tsr__h5.H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, p->mem) < 0) {
            rc = h5err(a, TSR_ECORRUPT, "%s: cannot read the compact data", p->name);
            goto done;
        }
        p->n_chunks = 1;
        p->chunks[0] = (h5r_chunk_t){H5R_ADDR_MEM, bytes, 0};
    }

done:
    if (fcpl >= 0)
        tsr__h5.H5Pclose(fcpl);
    if (df >= 0)
        tsr__h5.H5Fclose(df);
    if (dcpl >= 0)
        tsr__h5.H5Pclose(dcpl);
    if (t >= 0)
        tsr__h5.H5Tclose(t);
    if (sp >= 0)
        tsr__h5.H5Sclose(sp);
    if (d >= 0)
        tsr__h5.H5Dclose(d);
    return rc;
}

/* ---- metadata ---------------------------------------------------------- */

/* An EMD (Berkeley) data group's dimension vectors dim1..dimN, as
 * calibrations of the logical axes (NULL when absent or not numeric). */
static json_t *emd_calibration(hid_t f, const char *path, const h5r_state_t *st,
                               const h5r_part_t *p)
{
    char group[1024], name[1100];
    const char *slash = strrchr(path, '/');
    if (!slash || (size_t)(slash - path) >= sizeof group)
        return NULL;
    snprintf(group, sizeof group, "%.*s", (int)(slash - path), path);
    json_t *axes[H5R_MAXD] = {0};
    bool ok = true;
    for (int s = 0; s < st->ndim && ok; s++) {
        snprintf(name, sizeof name, "%s/dim%d", group[0] ? group : "", s + 1);
        ok = false;
        if (tsr__h5.H5Lexists(f, group[0] ? group : "/", H5P_DEFAULT) <= 0 ||
            tsr__h5.H5Lexists(f, name, H5P_DEFAULT) <= 0)
            break;
        hid_t d = tsr__h5.H5Dopen2(f, name, H5P_DEFAULT);
        if (d < 0)
            break;
        hid_t sp = tsr__h5.H5Dget_space(d), t = tsr__h5.H5Dget_type(d);
        H5T_class_t cls = t >= 0 ? tsr__h5.H5Tget_class(t) : H5T_NO_CLASS;
        hssize_t np = sp >= 0 ? tsr__h5.H5Sget_simple_extent_npoints(sp) : -1;
        if ((cls == H5T_INTEGER || cls == H5T_FLOAT) && np == p->dims[s] && np >= 1 &&
            np <= (1 << 24)) {
            double *v = malloc((size_t)np * sizeof *v);
            if (v && tsr__h5.H5Dread(d, tsr__h5_native(H5T_NATIVE_DOUBLE), H5S_ALL, H5S_ALL,
                                     H5P_DEFAULT, v) >= 0) {
                json_t *at = h5_attrs(d);
                const char *nm = json_string_value(json_object_get(at, "name"));
                const char *un = json_string_value(json_object_get(at, "units"));
                char def[16];
                snprintf(def, sizeof def, "dim%d", s + 1);
                axes[s] =
                    json_pack("{s:s, s:f, s:f, s:s}", "name", nm ? nm : def, "scale",
                              np > 1 ? v[1] - v[0] : 1.0, "offset", v[0], "units", un ? un : "");
                ok = axes[s] != NULL;
                json_decref(at);
            }
            free(v);
        }
        if (t >= 0)
            tsr__h5.H5Tclose(t);
        if (sp >= 0)
            tsr__h5.H5Sclose(sp);
        tsr__h5.H5Dclose(d);
    }
    json_t *cal = NULL;
    if (ok) {
        json_t *nav = json_array(), *sig = json_array();
        for (int i = 0; i < st->ndim; i++) {
            json_array_append(i < st->nnav ? nav : sig, axes[st->perm[i]]);
        }
        cal = json_pack("{s:o, s:o}", "nav", nav, "sig", sig);
    }
    for (int s = 0; s < H5R_MAXD; s++)
        json_decref(axes[s]);
    return cal;
}

/* DECTRIS: /entry/instrument/detector's scalars (with their units). */
static void dectris_meta(hid_t f, json_t *m, json_t *hdr)
{
    static const char *const path = "/entry/instrument/detector";
    if (tsr__h5.H5Lexists(f, "/entry/instrument", H5P_DEFAULT) <= 0 ||
        tsr__h5.H5Lexists(f, path, H5P_DEFAULT) <= 0)
        return;
    static const char *const keys[] = {"description",
                                       "detector_number",
                                       "sensor_material",
                                       "sensor_thickness",
                                       "x_pixel_size",
                                       "y_pixel_size",
                                       "count_time",
                                       "frame_time",
                                       "detector_readout_time",
                                       "beam_center_x",
                                       "beam_center_y",
                                       "detector_distance",
                                       "bit_depth_image",
                                       "bit_depth_readout",
                                       "saturation_value",
                                       "threshold_energy",
                                       "countrate_correction_applied",
                                       "flatfield_correction_applied",
                                       "pixel_mask_applied",
                                       "virtual_pixel_correction_applied",
                                       "type"};
    hid_t g = tsr__h5.H5Gopen2(f, path, H5P_DEFAULT);
    if (g < 0)
        return;
    json_t *det = json_object();
    for (size_t i = 0; det && i < sizeof keys / sizeof *keys; i++) {
        json_t *v = h5_scalar_at(g, keys[i]);
        if (!v)
            continue;
        json_object_set_new(det, keys[i], v);
        char units[64];
        units_of(g, keys[i], units, sizeof units);
        if (units[0]) {
            char k[96];
            snprintf(k, sizeof k, "%s_units", keys[i]);
            json_object_set_new(det, k, json_string(units));
        }
    }
    static const char *const specific[] = {
        "data_collection_date", "eiger_fw_version", "software_version", "nimages", "ntrigger",
        "photon_energy",        "frame_count_time", "frame_period"};
    hid_t sg = tsr__h5.H5Lexists(g, "detectorSpecific", H5P_DEFAULT) > 0
                   ? tsr__h5.H5Gopen2(g, "detectorSpecific", H5P_DEFAULT)
                   : -1;
    for (size_t i = 0; det && sg >= 0 && i < sizeof specific / sizeof *specific; i++) {
        json_t *v = h5_scalar_at(sg, specific[i]);
        if (v)
            json_object_set_new(det, specific[i], v);
    }
    if (sg >= 0)
        tsr__h5.H5Gclose(sg);
    tsr__h5.H5Gclose(g);
    if (!det)
        return;
    json_t *desc = json_object_get(det, "description");
    if (json_is_string(desc) && strncasecmp(json_string_value(desc), "dectris", 7) == 0)
        json_object_set_new(m, "detector", json_copy(desc));
    else if (json_is_string(desc))
        json_object_set_new(m, "detector", json_sprintf("DECTRIS %s", json_string_value(desc)));
    else
        json_object_set_new(m, "detector", json_string("DECTRIS"));
    json_t *ct = json_object_get(det, "count_time"), *ft = json_object_get(det, "frame_time");
    if (json_is_number(ct))
        json_object_set_new(m, "exposure_time_s", json_real(json_number_value(ct)));
    if (json_is_number(ft))
        json_object_set_new(m, "frame_time_s", json_real(json_number_value(ft)));
    json_t *dt = json_object_get(det, "data_collection_date");
    if (json_is_string(dt))
        json_object_set_new(m, "acquisition_time", json_copy(dt));
    json_t *xs = json_object_get(det, "x_pixel_size"), *ys = json_object_get(det, "y_pixel_size");
    if (json_is_number(xs) && json_is_number(ys)) {
        json_t *sig = json_pack("[{s:s, s:f, s:f, s:s}, {s:s, s:f, s:f, s:s}]", "name", "y",
                                "scale", json_number_value(ys), "offset", 0.0, "units", "m", "name",
                                "x", "scale", json_number_value(xs), "offset", 0.0, "units", "m");
        json_object_set_new(m, "calibration", json_pack("{s:o}", "sig", sig));
    }
    json_object_set_new(hdr, "detector", det);
}

/* The scan shape from the sidecar a DECTRIS ARINA recording writes beside
 * its master file (<stem>.h5 for <stem>_master.h5: group "STEM Metadata",
 * attributes NumPixelsY, NumPixelsX), if it has the master's image count. */
static bool arina_scan(const char *master, int64_t images, int64_t *ny, int64_t *nx)
{
    size_t n = strlen(master);
    const char *suffix = "_master.h5";
    size_t k = strlen(suffix);
    if (n <= k || strcmp(master + n - k, suffix) != 0 || n > 4000)
        return false;
    char side[4096];
    snprintf(side, sizeof side, "%.*s.h5", (int)(n - k), master);
    FILE *probe_f = fopen(side, "rb");
    if (!probe_f)
        return false;
    fclose(probe_f);
    hid_t f = tsr__h5.H5Fopen(side, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0)
        return false;
    bool ok = false;
    if (tsr__h5.H5Lexists(f, "STEM Metadata", H5P_DEFAULT) > 0) {
        hid_t o = tsr__h5.H5Oopen(f, "STEM Metadata", H5P_DEFAULT);
        if (o >= 0) {
            json_t *at = h5_attrs(o);
            json_t *x = json_object_get(at, "NumPixelsX"), *y = json_object_get(at, "NumPixelsY");
            if (json_is_integer(x) && json_is_integer(y) && json_integer_value(x) > 0 &&
                json_integer_value(y) > 0 &&
                json_integer_value(x) * json_integer_value(y) == images) {
                *nx = json_integer_value(x);
                *ny = json_integer_value(y);
                ok = true;
            }
            json_decref(at);
            tsr__h5.H5Oclose(o);
        }
    }
    tsr__h5.H5Fclose(f);
    return ok;
}

/* ---- open -------------------------------------------------------------- */

/* The chunk table of a contiguous part read through chunks.c: one chunk,
 * the whole array. */
static int contiguous_chunk(tsr__open_args_t *a, h5r_part_t *p, size_t bytes)
{
    p->n_chunks = 1;
    p->chunks = tsr__malloc(a->ctx, sizeof *p->chunks);
    if (!p->chunks)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    p->chunks[0] = (h5r_chunk_t){p->offset, bytes, 0};
    return 0;
}

/* Check every chunk against its file and find the largest stored one. */
static int check_chunks(tsr__open_args_t *a, h5r_state_t *st)
{
    /* compressed chunks are never much larger than their data: beyond this
     * a stored size is a lie (and would make workers allocate it) */
    uint64_t plausible = 2 * (uint64_t)st->chunk_bytes + 65536;
    for (int i = 0; i < st->n_parts; i++) {
        h5r_part_t *p = &st->parts[i];
        int64_t fsize = a->ds->files[p->file].size;
        for (int64_t k = 0; k < p->n_chunks; k++) {
            h5r_chunk_t *ch = &p->chunks[k];
            if (ch->addr < 0)
                continue;
            bool filtered = false;
            for (int j = 0; j < p->n_filt; j++)
                filtered |= !(ch->mask & (1u << j));
            uint64_t need = filtered ? ch->size : st->chunk_bytes;
            if (filtered && (ch->size == 0 || ch->size > plausible))
                return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                                   "%s: chunk %lld says it stores %llu bytes, implausible for a "
                                   "chunk of %zu bytes",
                                   p->name, (long long)k, (unsigned long long)ch->size,
                                   st->chunk_bytes);
            if (ch->addr > fsize || need > (uint64_t)(fsize - ch->addr))
                return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                                   "%s: chunk %lld (%llu bytes at byte %lld) lies past the end of "
                                   "the file (%lld bytes; truncated?)",
                                   p->name, (long long)k, (unsigned long long)need,
                                   (long long)ch->addr, (long long)fsize);
            if (filtered && ch->size > st->max_stored)
                st->max_stored = ch->size;
        }
    }
    return 0;
}

/* Tiles aligned to chunks where that stays small; the worker's cache of
 * decoded chunks sized to what a pass over the scan reuses. */
static void tiling_hints(tsr__open_args_t *a, h5r_state_t *st)
{
    const h5r_part_t *p = &st->parts[0];
    int nd = st->ndim, nn = st->nnav;
    int64_t L[H5R_MAXD], C[H5R_MAXD], G[H5R_MAXD];
    for (int i = 0; i < nd; i++) {
        L[i] = p->dims[st->perm[i]];
        C[i] = p->cdims[st->perm[i]];
        G[i] = p->grid[st->perm[i]];
    }
    int64_t frame_bytes = (int64_t)st->es, sig_chunks = 1;
    for (int i = nn; i < nd; i++) {
        frame_bytes *= L[i];
        sig_chunks *= G[i];
    }
    int64_t budget = a->ctx->tile_bytes > 0 ? a->ctx->tile_bytes : (1 << 20);
    /* A chunk's images are one run of the flat scan order when, after its
     * first axis longer than 1, it spans whole axes. */
    int k = 0;
    while (k < nn - 1 && C[k] == 1)
        k++;
    bool run = true;
    int64_t span = C[k] < L[k] ? C[k] : L[k];
    for (int i = k + 1; i < nn; i++) {
        run &= C[i] >= L[i];
        span *= L[i];
    }
    if (run && span > 1 && span * frame_bytes <= 2 * budget)
        a->ds->base_depth = span;
    if (C[nn] < L[nn])
        a->ds->base_rows = C[nn];
    /* What a sweep along the innermost scan axis touches before coming
     * back to a chunk: all chunks of one row of the scan's chunk grid. */
    int64_t reuse = (int64_t)st->chunk_bytes * G[nn - 1] * sig_chunks;
    int64_t lo = 4 * (int64_t)st->chunk_bytes, hi = INT64_C(128) << 20;
    reuse = reuse < lo ? lo : reuse;
    st->cache_bytes = (size_t)(reuse > hi ? (hi > lo ? hi : lo) : reuse);
}

static json_t *filters_json(const h5r_part_t *p)
{
    json_t *f = json_array();
    for (int i = 0; f && i < p->n_filt; i++)
        json_array_append_new(f, json_string(filter_name(p->filt[i].id)));
    return f;
}

/* Everything that needs libhdf5 (between enter and leave). */
static int open_locked(tsr__open_args_t *a, h5r_state_t *st, json_t *m, tsr_shape_t *nav,
                       tsr_shape_t *sig)
{
    tsr_dataset_t *ds = a->ds;
    cands_t c = {.ctx = a->ctx};
    links_t l = {.ctx = a->ctx};
    const size_t np = sizeof params / sizeof *params;
    json_t *hdr = json_object();
    int rc = 0;
    hid_t f = tsr__h5.H5Fopen(a->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        json_decref(hdr);
        return h5err(a, TSR_ECORRUPT, "%s: cannot open as an HDF5 file", a->path);
    }
    if (!hdr) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }

    const char *dsp = tsr_params_get(a->params, "ds_path");
    const char *fl = tsr__params_value(a->params, params, np, "frames_last");
    int64_t sig_dims = 2;
    if ((rc = tsr__parse_i64(tsr__params_value(a->params, params, np, "sig_dims"), &sig_dims,
                             a->err, a->errlen, "sig_dims")))
        goto done;
    if (strcmp(fl, "auto") != 0 && strcmp(fl, "true") != 0 && strcmp(fl, "false") != 0) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                         "%s: frames_last is '%s'; expected auto, true or false", a->path, fl);
        goto done;
    }

    /* candidates: every dataset of 3+ dimensions with numbers */
    if (tsr__h5.H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, visit_cb, &c, H5O_INFO_BASIC) < 0 &&
        c.oom) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    tsr__h5_error(NULL, 0);
    bool dectris = false;
    if ((!dsp || !*dsp) && tsr__h5.H5Lexists(f, "/entry", H5P_DEFAULT) > 0 &&
        tsr__h5.H5Lexists(f, "/entry/data", H5P_DEFAULT) > 0) {
        hid_t g = tsr__h5.H5Gopen2(f, "/entry/data", H5P_DEFAULT);
        hsize_t idx = 0;
        if (g >= 0) {
            tsr__h5.H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, dectris_cb, &l);
            tsr__h5.H5Gclose(g);
        }
        dectris = l.n > 0;
    }
    char chosen[1100];
    if (dsp && *dsp) {
        snprintf(chosen, sizeof chosen, "%s%s", dsp[0] == '/' ? "" : "/", dsp);
    } else if (!dectris) {
        int best = -1;
        for (int i = 0; i < c.n; i++)
            if (best < 0 || c.v[i].elems > c.v[best].elems)
                best = i;
        if (best < 0) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND,
                             "%s: no dataset of 3 or more dimensions with integer or floating "
                             "point elements; name one with ds_path",
                             a->path);
            goto done;
        }
        snprintf(chosen, sizeof chosen, "%s", c.v[best].path);
    }

    /* the parts */
    dsinfo_t first = {0};
    int n_paths = dectris ? l.n : 1;
    for (int i = 0; i < n_paths; i++) {
        const char *path = dectris ? l.names[i] : chosen;
        dsinfo_t in = {0};
        if ((rc = add_part(a, st, f, path, dectris, &in)))
            goto done;
        if (i == 0) {
            first = in;
            continue;
        }
        const h5r_part_t *p = &st->parts[i], *p0 = &st->parts[0];
        bool same = in.nd == first.nd && in.dt == first.dt && in.big == first.big &&
                    in.layout == first.layout;
        for (int k = 1; same && k < in.nd; k++)
            same = p->dims[k] == p0->dims[k];
        for (int k = 0; same && k < in.nd && in.layout == H5D_CHUNKED; k++)
            same = p->cdims[k] == p0->cdims[k];
        if (!same) {
            rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                             "%s: %s differs from %s in its shape beyond the first axis, its "
                             "element type, its layout or its chunk shape",
                             a->path, p->name, p0->name);
            goto done;
        }
    }

    /* axes */
    int nd = first.nd;
    st->ndim = nd;
    st->dtype = first.dt;
    st->es = tsr_dtype_size(first.dt);
    st->swap = first.big && st->es > 1;
    bool frames_last = strcmp(fl, "true") == 0;
    if (strcmp(fl, "auto") == 0 && !dectris)
        frames_last = nd == 3 && strncmp(chosen, "/Data/Image/", 12) == 0 &&
                      tsr__h5.H5Lexists(f, "/Version", H5P_DEFAULT) > 0;
    if (frames_last) {
        if (st->n_parts > 1) {
            rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                             "%s: frames_last with several data files is not supported", a->path);
            goto done;
        }
        st->nnav = 1;
        st->perm[0] = nd - 1;
        for (int i = 1; i < nd; i++)
            st->perm[i] = i - 1;
    } else {
        if (sig_dims < 1 || sig_dims >= nd) {
            rc = tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                             "%s: sig_dims is %lld but the dataset has %d dimensions (expected 1 "
                             "to %d)",
                             a->path, (long long)sig_dims, nd, nd - 1);
            goto done;
        }
        st->nnav = nd - (int)sig_dims;
        for (int i = 0; i < nd; i++)
            st->perm[i] = i;
    }
    st->identity = !frames_last;
    if (st->nnav > TSR_MAX_DIMS || nd - st->nnav > TSR_MAX_DIMS) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: %d scan and %d frame dimensions are too many; set sig_dims", a->path,
                         st->nnav, nd - st->nnav);
        goto done;
    }

    /* images per part (parts follow each other along the first axis) */
    h5r_part_t *p0 = &st->parts[0];
    int64_t total = 0, axis0 = 0, chunk_elems = 1;
    for (int i = 0; i < st->n_parts; i++) {
        h5r_part_t *p = &st->parts[i];
        p->first = total;
        p->count = 1;
        for (int k = 0; k < st->nnav; k++)
            p->count *= p->dims[st->perm[k]];
        total += p->count;
        axis0 += p->dims[st->perm[0]];
    }
    ds->image_count = total;
    nav->ndim = st->nnav;
    sig->ndim = nd - st->nnav;
    for (int k = 0; k < nd; k++) {
        int64_t v = k == 0 ? axis0 : p0->dims[st->perm[k]];
        if (k < st->nnav)
            nav->dims[k] = v;
        else
            sig->dims[k - st->nnav] = v;
    }
    for (int k = 0; k < nd; k++)
        chunk_elems *= p0->cdims[k];
    /* whole contiguous arrays as one chunk are bounded: no larger than this */
    if (chunk_elems > (INT64_C(256) << 20) / (int64_t)st->es &&
        !(first.layout == H5D_CONTIGUOUS && st->identity)) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: %s: blocks of %lld elements are too large to decode at once "
                         "(contiguous data stored frames last?)",
                         a->path, p0->name, (long long)chunk_elems);
        goto done;
    }
    st->chunk_bytes = (size_t)chunk_elems * st->es;

    /* contiguous, frames one after the other: segments of the shared
     * strided reader; else chunk tables */
    int64_t frame_bytes = (int64_t)st->es;
    for (int k = 0; k < sig->ndim; k++)
        frame_bytes *= sig->dims[k];
    bool segments = first.layout == H5D_CONTIGUOUS && st->identity;
    for (int i = 0; i < st->n_parts && segments; i++)
        segments = st->parts[i].offset >= 0;
    if (segments) {
        for (int i = 0; i < st->n_parts; i++) {
            h5r_part_t *p = &st->parts[i];
            int64_t fsize = ds->files[p->file].size, bytes = p->count * frame_bytes;
            if (p->offset > fsize || bytes > fsize - p->offset) {
                rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                                 "%s: the data (%lld bytes at byte %lld) run past the end of the "
                                 "file (%lld bytes; truncated?)",
                                 p->name, (long long)bytes, (long long)p->offset, (long long)fsize);
                goto done;
            }
            if ((rc = tsr__dataset_add_segment(a, p->file, p->first, p->count, p->offset,
                                               frame_bytes)))
                goto done;
        }
    } else {
        ds->read = tsr__h5r_read; /* chunk tables: our own reads and decoding */
        for (int i = 0; i < st->n_parts; i++)
            if (st->parts[i].contiguous &&
                (rc = contiguous_chunk(a, &st->parts[i], st->chunk_bytes)))
                goto done;
        if ((rc = check_chunks(a, st)))
            goto done;
        tiling_hints(a, st);
    }

    /* metadata */
    char ts[8];
    typestr(st->dtype, first.big, ts, sizeof ts);
    int64_t whole[H5R_MAXD];
    for (int k = 0; k < nd; k++)
        whole[k] = k == 0 && st->n_parts > 1 ? axis0 : p0->dims[k];
    json_object_set_new(hdr, "shape", dims_json(whole, nd));
    json_object_set_new(hdr, "dtype", json_string(ts));
    json_object_set_new(hdr, "layout",
                        json_string(first.layout == H5D_CHUNKED      ? "chunked"
                                    : first.layout == H5D_CONTIGUOUS ? "contiguous"
                                                                     : "compact"));
    if (first.layout == H5D_CHUNKED) {
        json_object_set_new(hdr, "chunks", dims_json(p0->cdims, nd));
        json_object_set_new(hdr, "chunk_index", json_string(p0->index ? p0->index : "?"));
    }
    json_object_set_new(hdr, "filters", filters_json(p0));
    json_object_set_new(hdr, "frames_last", json_boolean(frames_last));
    if (dectris) {
        json_t *paths = json_array();
        for (int i = 0; i < l.n; i++)
            json_array_append_new(paths, json_string(l.names[i]));
        json_object_set_new(hdr, "dataset", paths);
        int64_t ny, nx;
        if (st->nnav == 1 && arina_scan(a->path, total, &ny, &nx)) {
            nav->ndim = 2;
            nav->dims[0] = ny;
            nav->dims[1] = nx;
            json_object_set_new(m, "scan_from", json_string("STEM Metadata of the sidecar file"));
        }
        dectris_meta(f, m, hdr);
    } else {
        json_object_set_new(hdr, "dataset", json_string(chosen));
        hid_t d = tsr__h5.H5Dopen2(f, chosen, H5P_DEFAULT);
        if (d >= 0) {
            json_t *at = h5_attrs(d);
            if (at && json_object_size(at))
                json_object_set_new(hdr, "attributes", at);
            else
                json_decref(at);
            tsr__h5.H5Dclose(d);
        }
        json_t *cal = emd_calibration(f, chosen, st, p0);
        if (cal)
            json_object_set_new(m, "calibration", cal);
    }
    json_t *cl = json_array();
    for (int i = 0; cl && i < c.n; i++)
        json_array_append_new(cl,
                              json_pack("{s:s, s:o, s:s}", "path", c.v[i].path, "shape",
                                        dims_json(c.v[i].dims, c.v[i].nd), "dtype", c.v[i].type));
    json_object_set_new(m, "candidates", cl);
    if (ds->n_files > 1) {
        json_t *files = json_array();
        for (int i = 0; i < ds->n_files; i++)
            json_array_append_new(files, json_string(ds->file_paths[i]));
        json_object_set_new(m, "files", files);
    }
    json_object_set_new(m, "header", hdr);
    hdr = NULL;
done:
    json_decref(hdr);
    cands_free(&c);
    tsr__free(a->ctx, l.names);
    tsr__h5.H5Fclose(f);
    return rc;
}

static void close_h5(tsr_dataset_t *ds)
{
    h5r_state_t *st = ds->state;
    if (!st)
        return;
    for (int i = 0; i < st->n_parts; i++) {
        tsr__free(ds->ctx, st->parts[i].chunks);
        tsr__free(ds->ctx, st->parts[i].mem);
        tsr__free(ds->ctx, st->parts[i].name);
    }
    tsr__free(ds->ctx, st->parts);
    tsr__free(ds->ctx, st);
    ds->state = NULL;
}

static int open_h5(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    char why[400];
    int rc;
    if (tsr__h5_load(why, sizeof why))
        return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED, "%s: cannot read HDF5: %s", a->path,
                           why);
    h5r_state_t *st = tsr__calloc(a->ctx, 1, sizeof *st);
    json_t *m = json_object();
    if (!st || !m) {
        tsr__free(a->ctx, st);
        json_decref(m);
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    }
    ds->state = st;
    tsr_shape_t nav = {0}, sig = {0};
    tsr__h5_scope_t scope;
    tsr__h5_enter(&scope);
    rc = open_locked(a, st, m, &nav, &sig);
    tsr__h5_leave(&scope);
    if (rc) {
        json_decref(m);
        return rc;
    }
    ds->dtype = st->dtype;
    ds->big_endian = st->swap;
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig))) {
        json_decref(m);
        return rc;
    }
    return tsr__dataset_set_meta(a, m);
}

const tsr__reader_def_t tsr__format_hdf5 = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "hdf5",
    .description = "HDF5 (.h5, .nxs, .emd): chunked (deflate, shuffle, lz4, bitshuffle-lz4, "
                   "zstd) or contiguous; DECTRIS master files with their data files",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_h5,
    .close = close_h5,
};
