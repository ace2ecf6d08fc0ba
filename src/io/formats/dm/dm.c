/*
 * dm.c — Gatan DigitalMicrograph DM3 and DM4 files.
 *
 * The tag tree (dm_tags.c) lists the images of the file under ImageList;
 * each has ImageData with Data (the pixels, one contiguous array),
 * DataType, Dimensions (x first, i.e. fastest first) and Calibrations.
 * The thumbnail (listed under Thumbnails, usually image 0) is skipped: by
 * default the largest other image of a supported type is opened;
 * `dataset_index` names one.
 *
 * Stored array: the numpy shape is the Dimensions reversed.  How it splits
 * into nav and sig depends on what the file holds:
 *   - 1-D: one spectrum (nav (1,)); 2-D: one image (nav (1,)), or with the
 *     "Spectrum"/"Spectrum image" format, a line of spectra (nav (Y,));
 *   - 3-D: an image stack (nav (Z,)), or a spectrum image (nav (Y, X),
 *     sig (E,));
 *   - 4-D: 4D-STEM, nav (Y, X) and sig (KY, KX).
 * and on the layout:
 *   - "c": nav dimensions slowest; each frame is contiguous (images,
 *     stacks, and 4-D files tagged Meta Data/Data Order Swapped = 1): one
 *     segment of the shared strided reader;
 *   - "sig_first": the signal dimensions slowest and the scan fastest
 *     (Gatan's spectrum images and 4-D STEM files without that tag): pixel
 *     p of frame f is element p * frames + f, so frames are gathered by
 *     read_sig_first from the file's mapping.
 * Calibrations (Scale, Origin, Units per dimension) and a few microscope
 * tags go into the metadata.
 */
#include "io/dataset.h"
#include "io/formats/dm/dm_tags.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

enum { LAYOUT_C, LAYOUT_SIG_FIRST };

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "", "reshape the scan (default: from the file's dimensions)", false},
    {"sig_shape", "shape", "", "reshape the frames (same number of pixels)", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
    {"dataset_index", "int", "",
     "which image of the file's ImageList to open, from 0 (default: the largest that is not a "
     "thumbnail)",
     false},
    {"sig_dims", "int", "", "number of signal dimensions, 1-3 (default: 1 for spectra, else 2)",
     false},
    {"layout", "string", "auto",
     "auto, c (frames contiguous) or sig_first (signal dimensions slowest, as Gatan writes "
     "4D-STEM and spectrum images)",
     false},
    {"force_c_order", "bool", "false", "read as C order whatever the tags say (= layout=c)", false},
};
#define N_PARAMS (sizeof params / sizeof params[0])

static const char *const exts[] = {"dm3", "dm4", NULL};

/* ---- probe ------------------------------------------------------------- */

static uint64_t be_n(const uint8_t *b, int w)
{
    uint64_t v = 0;
    for (int i = 0; i < w; i++)
        v = v << 8 | b[i];
    return v;
}

static int probe(const char *path, const uint8_t *head, size_t n)
{
    const char *dot = strrchr(path, '.');
    bool ext = dot && (!strcasecmp(dot, ".dm3") || !strcasecmp(dot, ".dm4"));
    if (dot && !strcasecmp(dot, ".gtg"))
        return 0; /* a DM tag file without images: the K2 IS sidecar (k2is) */
    if (n >= 27) {
        uint64_t v = be_n(head, 4);
        int w = v == 4 ? 8 : 4, root = 4 + w + 4;
        if ((v == 3 || v == 4) && be_n(head + 4 + w, 4) <= 1 && head[root] <= 1 &&
            head[root + 1] <= 1 && be_n(head + root + 2, w) > 0 &&
            (head[root + 2 + w] == 20 || head[root + 2 + w] == 21))
            return 95;
    }
    return ext ? 10 : 0; /* a damaged .dm3/.dm4: let open say what is wrong */
}

/* ---- images ------------------------------------------------------------ */

typedef struct image {
    int32_t node;               /* the ImageList entry */
    int32_t data;               /* ImageData/Data */
    int dm_type;                /* ImageData/DataType */
    int ndims;                  /* of Dimensions */
    int64_t dims[TSR_MAX_DIMS]; /* DM order: x first */
    int64_t pixels;
    bool thumbnail;
    const char *problem; /* why it cannot be read, or NULL */
    tsr_dtype_t dtype;
} image_t;

/* DM image data types and ours. */
static const char *dm_type_name(int t)
{
    switch (t) {
    case 1: return "int16";
    case 2: return "float32";
    case 3: return "complex64";
    case 4: return "obsolete";
    case 5: return "packed complex (FFT)";
    case 6: return "uint8";
    case 7: return "int32";
    case 8: return "RGB";
    case 9: return "int8";
    case 10: return "uint16";
    case 11: return "uint32";
    case 12: return "float64";
    case 13: return "complex128";
    case 14: return "binary";
    case 23: return "RGBA";
    case 27: return "packed complex64 (FFT)";
    case 28: return "packed complex128 (FFT)";
    default: return "unknown";
    }
}

static bool dm_dtype(int t, tsr_dtype_t *dt)
{
    switch (t) {
    case 1: *dt = TSR_I16; return true;
    case 2: *dt = TSR_F32; return true;
    case 3: *dt = TSR_C64; return true;
    case 6: *dt = TSR_U8; return true;
    case 7: *dt = TSR_I32; return true;
    case 9: *dt = TSR_I8; return true;
    case 10: *dt = TSR_U16; return true;
    case 11: *dt = TSR_U32; return true;
    case 12: *dt = TSR_F64; return true;
    case 14: *dt = TSR_U8; return true; /* binary: one byte, 0 or 1 */
    default: return false;
    }
}

/* An integer-valued number of a VALUE node within [lo, hi]. */
static bool int_value(const tsr__dm_tree_t *t, int32_t node, double lo, double hi, int64_t *out)
{
    double v;
    if (!tsr__dm_num(t, node, &v) || !(v >= lo && v <= hi) || v != floor(v))
        return false;
    *out = (int64_t)v;
    return true;
}

static void describe(const tsr__dm_tree_t *t, int32_t node, image_t *im)
{
    memset(im, 0, sizeof *im);
    im->node = node;
    im->dm_type = -1;
    int32_t id = tsr__dm_child(t, node, "ImageData");
    if (id < 0) {
        im->problem = "it has no ImageData group";
        return;
    }
    im->data = tsr__dm_child(t, id, "Data");
    if (im->data < 0 || t->nodes[im->data].kind != TSR__DM_NODE_ARRAY) {
        im->problem = "its ImageData/Data is missing or not an array";
        return;
    }
    int64_t dtv;
    if (!int_value(t, tsr__dm_child(t, id, "DataType"), 0, 1 << 20, &dtv)) {
        im->problem = "its ImageData/DataType is missing or not a small integer";
        return;
    }
    im->dm_type = (int)dtv;
    int32_t dims = tsr__dm_child(t, id, "Dimensions");
    if (dims < 0 || t->nodes[dims].kind != TSR__DM_NODE_GROUP) {
        im->problem = "its ImageData/Dimensions group is missing";
        return;
    }
    if (t->nodes[dims].n_children < 1 || t->nodes[dims].n_children > 4) {
        im->problem = "it has no dimensions or more than 4 (ImageData/Dimensions)";
        return;
    }
    im->ndims = t->nodes[dims].n_children;
    im->pixels = 1;
    for (int i = 0; i < im->ndims; i++) {
        if (!int_value(t, tsr__dm_child_at(t, dims, i), 1, 9007199254740992.0, &im->dims[i])) {
            im->problem = "a dimension in ImageData/Dimensions is not a positive integer";
            return;
        }
        if (!tsr__mul_i64(im->pixels, im->dims[i], &im->pixels)) {
            im->problem = "its dimensions overflow";
            return;
        }
    }
    if (!dm_dtype(im->dm_type, &im->dtype)) {
        im->problem = "its data type is not supported";
        return;
    }
}

/* ---- reading the sig-first layout -------------------------------------- */

typedef struct dm_state {
    int file;
    int64_t offset; /* of the first pixel */
    int64_t frames; /* stored frames (the scan): the fastest dimensions */
    int64_t pixels; /* pixels per frame */
} dm_state_t;

/* dst[i * dstride + k] = the element at src + k * pstride + i * es, for
 * frames i < n and pixels k < npix; elements of es bytes, maybe unaligned. */
static void gather(unsigned char *dst, size_t dstride, const unsigned char *src, size_t pstride,
                   size_t es, int64_t n, int64_t npix)
{
    enum { BLOCK = 16 }; /* pixels read side by side: 16 sequential streams */
    for (int64_t k0 = 0; k0 < npix; k0 += BLOCK) {
        int64_t kb = npix - k0 < BLOCK ? npix - k0 : BLOCK;
        const unsigned char *s0 = src + (size_t)k0 * pstride;
        for (int64_t i = 0; i < n; i++) {
            unsigned char *d = dst + ((size_t)i * dstride + (size_t)k0) * es;
            const unsigned char *s = s0 + (size_t)i * es;
            switch (es) {
            case 1:
                for (int64_t k = 0; k < kb; k++)
                    d[k] = s[(size_t)k * pstride];
                break;
            case 2:
                for (int64_t k = 0; k < kb; k++)
                    memcpy(d + 2 * k, s + (size_t)k * pstride, 2);
                break;
            case 4:
                for (int64_t k = 0; k < kb; k++)
                    memcpy(d + 4 * k, s + (size_t)k * pstride, 4);
                break;
            case 8:
                for (int64_t k = 0; k < kb; k++)
                    memcpy(d + 8 * k, s + (size_t)k * pstride, 8);
                break;
            default:
                for (int64_t k = 0; k < kb; k++)
                    memcpy(d + es * (size_t)k, s + (size_t)k * pstride, es);
            }
        }
    }
}

/* Images [img0, img0+n) × pixels [sig0, sig0+siglen) of the sig-first
 * layout: pixel p of image f is element p * frames + f.  They are gathered
 * from the file's mapping (the page cache keeps the pages of the pixels'
 * runs between tiles); with --io-backend direct (no page cache wanted), or
 * if the file cannot be mapped, from reads of spans covering the runs of
 * several consecutive pixels. */
static int read_sig_first(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n,
                          int64_t sig0, int64_t siglen, tsr_dtype_t dt, void *out, char *err,
                          size_t errlen)
{
    const dm_state_t *st = ds->state;
    size_t es = tsr_dtype_size(ds->dtype);
    bool swap = ds->big_endian && es > 1;
    bool same = dt == ds->dtype && !swap;
    size_t count = (size_t)n * (size_t)siglen, bytes = count * es;
    size_t total = (size_t)st->frames * (size_t)st->pixels * es;
    size_t pstride = (size_t)st->frames * es;
    const unsigned char *m = NULL;
    int rc;
    if (io->backend != TSR_IO_DIRECT &&
        (rc = tsr__io_map(ds, st->file, st->offset, total, &m, err, errlen)))
        return rc;
    /* spans: the tile budget, and at least one pixel's run */
    size_t span_cap = 0;
    if (!m) {
        span_cap = io->ctx->tile_bytes > 0 ? (size_t)io->ctx->tile_bytes : 1u << 20;
        if (span_cap < (size_t)n * es)
            span_cap = (size_t)n * es;
    }
    /* stage in the stored type: in out itself, or in scratch to convert */
    if ((!same || span_cap) && tsr__io_reserve(io, (same ? 0 : bytes) + span_cap))
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    unsigned char *stage = same ? out : io->scratch;
    int64_t first = (sig0 * st->frames + img0) * (int64_t)es; /* from st->offset */
    if (m) {
        gather(stage, (size_t)siglen, m + first, pstride, es, n, siglen);
    } else {
        unsigned char *span = (unsigned char *)io->scratch + (same ? 0 : bytes);
        int64_t per = 1 + (int64_t)((span_cap - (size_t)n * es) / pstride);
        for (int64_t k0 = 0; k0 < siglen; k0 += per) {
            int64_t g = siglen - k0 < per ? siglen - k0 : per;
            size_t len = (size_t)(g - 1) * pstride + (size_t)n * es;
            int64_t off = st->offset + first + k0 * (int64_t)pstride;
            if ((rc = tsr__io_fetch(ds, io, st->file, off, len, span, err, errlen)))
                return rc;
            gather(stage + (size_t)k0 * es, (size_t)siglen, span, pstride, es, n, g);
        }
    }
    if (!same)
        tsr__convert(out, dt, stage, ds->dtype, swap, count);
    return 0;
}

static void close_dm(tsr_dataset_t *ds)
{
    tsr__free(ds->ctx, ds->state);
    ds->state = NULL;
}

/* ---- metadata ---------------------------------------------------------- */

/* A non-empty string tag under node, or NULL. */
static const char *tag_str_v(const tsr__dm_tree_t *t, int32_t node, const char *const *path)
{
    const char *s = tsr__dm_str(t, tsr__dm_find_v(t, node, path));
    return s && *s ? s : NULL;
}
#define tag_str(t, node, ...) tag_str_v((t), (node), (const char *const[]){__VA_ARGS__, NULL})

static bool tag_num_v(const tsr__dm_tree_t *t, int32_t node, double *v, const char *const *path)
{
    return tsr__dm_num(t, tsr__dm_find_v(t, node, path), v) && isfinite(*v);
}
#define tag_num(t, node, v, ...) \
    tag_num_v((t), (node), (v), (const char *const[]){__VA_ARGS__, NULL})

static void set_str(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, json_string(s));
}

/* Calibration of DM dimension i (scale 1, origin 0, no units if absent). */
static json_t *axis_json(const tsr__dm_tree_t *t, int32_t cal, int i, const char *name)
{
    double scale = 1, origin = 0;
    int32_t d = tsr__dm_child_at(t, cal, i);
    tag_num(t, d, &scale, "Scale");
    tag_num(t, d, &origin, "Origin");
    const char *units = tag_str(t, d, "Units");
    /* DM: calibrated = (index - origin) * scale; offset = value of index 0 */
    return json_pack("{s:s, s:f, s:f, s:s}", "name", name, "scale", scale, "offset",
                     origin == 0 ? 0.0 : -origin * scale, "units", units ? units : "");
}

static json_t *image_list_json(const tsr__dm_tree_t *t, const image_t *ims, int64_t n)
{
    json_t *a = json_array();
    for (int64_t i = 0; i < n; i++) {
        const image_t *im = &ims[i];
        json_t *shape = json_array();
        for (int d = im->ndims - 1; d >= 0; d--)
            json_array_append_new(shape, json_integer(im->dims[d]));
        json_t *o = json_pack("{s:I, s:o, s:b}", "index", (json_int_t)i, "shape", shape,
                              "thumbnail", im->thumbnail);
        set_str(o, "name", tag_str(t, im->node, "Name"));
        if (im->dm_type >= 0) {
            json_object_set_new(o, "data_type", json_integer(im->dm_type));
            json_object_set_new(o, "data_type_name", json_string(dm_type_name(im->dm_type)));
        }
        if (im->problem)
            json_object_set_new(o, "unreadable", json_string(im->problem));
        json_array_append_new(a, o);
    }
    return a;
}

/* Useful acquisition tags of the image (ImageTags), as flat keys. */
static void acquisition_json(const tsr__dm_tree_t *t, int32_t it, json_t *m)
{
    double v;
    const char *s;
    if (tag_num(t, it, &v, "Microscope Info", "Voltage") && v > 0)
        json_object_set_new(m, "voltage_kV", json_real(v / 1000));
    if (tag_num(t, it, &v, "Microscope Info", "STEM Camera Length") && v > 0)
        json_object_set_new(m, "camera_length_mm", json_real(v));
    if (tag_num(t, it, &v, "Microscope Info", "Indicated Magnification") && v > 0)
        json_object_set_new(m, "magnification", json_real(v));
    set_str(m, "illumination_mode", tag_str(t, it, "Microscope Info", "Illumination Mode"));
    set_str(m, "imaging_mode", tag_str(t, it, "Microscope Info", "Imaging Mode"));
    set_str(m, "operation_mode", tag_str(t, it, "Microscope Info", "Operation Mode"));
    if ((s = tag_str(t, it, "Session Info", "Microscope")) ||
        (s = tag_str(t, it, "Microscope Info", "Name")) ||
        (s = tag_str(t, it, "Microscope Info", "Microscope")))
        set_str(m, "microscope", s);
    if (tag_num(t, it, &v, "DataBar", "Exposure Time (s)") ||
        tag_num(t, it, &v, "Acquisition", "Parameters", "High Level", "Exposure (s)") ||
        tag_num(t, it, &v, "Acquisition", "Parameters", "Detector", "exposure_s"))
        json_object_set_new(m, "exposure_s", json_real(v));
    if (tag_num(t, it, &v, "DigiScan", "Sample Time"))
        json_object_set_new(m, "dwell_time_us", json_real(v));
    if ((s = tag_str(t, it, "Acquisition", "Device", "Name")) ||
        (s = tag_str(t, it, "DataBar", "Device Name")))
        set_str(m, "detector", s);
    int32_t px = tsr__dm_find(t, it, "Acquisition", "Device", "CCD", "Pixel Size (um)");
    if (px >= 0 && t->nodes[px].kind == TSR__DM_NODE_STRUCT && t->nodes[px].count == 2 &&
        isfinite(t->nodes[px].fields[0]) && isfinite(t->nodes[px].fields[1]))
        json_object_set_new(m, "detector_pixel_size_um",
                            json_pack("[f, f]", t->nodes[px].fields[0], t->nodes[px].fields[1]));
    set_str(m, "acquisition_date", tag_str(t, it, "DataBar", "Acquisition Date"));
    set_str(m, "acquisition_time", tag_str(t, it, "DataBar", "Acquisition Time"));
    set_str(m, "signal_type", tag_str(t, it, "Meta Data", "Signal"));
}

/* ---- open -------------------------------------------------------------- */

typedef struct layout_info {
    int sig_dims;
    int layout;
    const char *why; /* what decided the layout */
} layout_info_t;

static int choose_layout(tsr__open_args_t *a, const tsr__dm_tree_t *t, const image_t *im,
                         layout_info_t *li)
{
    int32_t it = tsr__dm_child(t, im->node, "ImageTags");
    const char *format = tag_str(t, it, "Meta Data", "Format");
    bool spectrum =
        (format && (!strcasecmp(format, "Spectrum image") || !strcasecmp(format, "Spectrum"))) ||
        tsr__dm_child(t, it, "spim") >= 0;
    int nd = im->ndims;
    li->sig_dims = nd == 1 ? 1 : spectrum ? 1 : 2;
    /* Gatan stores images, stacks and 2-D spectra C-ordered, spectrum
     * images and 4D-STEM signal-first unless tagged otherwise */
    li->layout = nd >= 3 && (spectrum || nd == 4) ? LAYOUT_SIG_FIRST : LAYOUT_C;
    li->why = "the default for this kind of data";
    double swapped;
    if (tag_num(t, it, &swapped, "Meta Data", "Data Order Swapped")) {
        li->layout = swapped != 0 ? LAYOUT_C : LAYOUT_SIG_FIRST;
        li->why = "tag Meta Data/Data Order Swapped";
    }
    int rc;
    const char *s = tsr__params_value(a->params, params, N_PARAMS, "sig_dims");
    if (s && *s) {
        int64_t sd;
        if ((rc = tsr__parse_i64(s, &sd, a->err, a->errlen, "dm: sig_dims")))
            return rc;
        if (sd < 1 || sd > 3)
            return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                               "dm: sig_dims must be 1, 2 or 3 (got %lld)", (long long)sd);
        li->sig_dims = (int)sd;
    }
    if (li->sig_dims > nd)
        li->sig_dims = nd;
    bool force = false;
    if ((rc = tsr__parse_bool(tsr__params_value(a->params, params, N_PARAMS, "force_c_order"),
                              &force, a->err, a->errlen, "dm: force_c_order")))
        return rc;
    const char *lay = tsr__params_value(a->params, params, N_PARAMS, "layout");
    if (strcmp(lay, "auto") && strcmp(lay, "c") && strcmp(lay, "sig_first"))
        return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                           "dm: layout must be auto, c or sig_first (got '%s')", lay);
    if (force && !strcmp(lay, "sig_first"))
        return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                           "dm: force_c_order=true contradicts layout=sig_first");
    if (force || !strcmp(lay, "c")) {
        li->layout = LAYOUT_C;
        li->why = "parameter";
    } else if (!strcmp(lay, "sig_first")) {
        li->layout = LAYOUT_SIG_FIRST;
        li->why = "parameter";
    }
    return 0;
}

static int select_image(tsr__open_args_t *a, const image_t *ims, int64_t n, int64_t *chosen)
{
    const char *s = tsr__params_value(a->params, params, N_PARAMS, "dataset_index");
    int rc;
    if (s && *s) {
        int64_t idx;
        if ((rc = tsr__parse_i64(s, &idx, a->err, a->errlen, "dm: dataset_index")))
            return rc;
        if (idx < 0 || idx >= n)
            return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                               "%s: dataset_index %lld out of range: the file holds %lld "
                               "image(s), 0 to %lld",
                               a->path, (long long)idx, (long long)n, (long long)n - 1);
        *chosen = idx;
        return 0;
    }
    /* the largest readable image that is not a thumbnail; else the
     * largest readable one; else report why the largest cannot be read */
    int64_t best = -1;
    for (int pass = 0; pass < 2 && best < 0; pass++)
        for (int64_t i = 0; i < n; i++)
            if (!ims[i].problem && (pass || !ims[i].thumbnail) &&
                (best < 0 || ims[i].pixels > ims[best].pixels))
                best = i;
    if (best < 0) {
        for (int64_t i = 0; i < n; i++)
            if (!ims[i].thumbnail && (best < 0 || ims[i].pixels > ims[best].pixels))
                best = i;
        if (best < 0)
            best = 0;
    }
    *chosen = best;
    return 0;
}

static int open_dm(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    tsr_ctx_t *ctx = a->ctx;
    int file = tsr__dataset_add_file(a, a->path);
    if (file < 0)
        return file;
    tsr__dm_tree_t t;
    image_t *ims = NULL;
    json_t *meta = NULL;
    int rc = tsr__dm_parse(ctx, &ds->files[file], a->path, &t, a->err, a->errlen);
    if (rc)
        goto done;
    int32_t list = tsr__dm_child(&t, 0, "ImageList");
    int64_t n =
        list >= 0 && t.nodes[list].kind == TSR__DM_NODE_GROUP ? t.nodes[list].n_children : 0;
    if (n == 0) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: DM file without images (tag ImageList is %s)", a->path,
                         list < 0 ? "missing" : "empty");
        goto done;
    }
    ims = tsr__calloc(ctx, (size_t)n, sizeof *ims);
    if (!ims) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i++)
        describe(&t, tsr__dm_child_at(&t, list, i), &ims[i]);
    int32_t thumbs = tsr__dm_child(&t, 0, "Thumbnails");
    for (int32_t c = thumbs >= 0 ? t.nodes[thumbs].first : -1; c >= 0; c = t.nodes[c].next) {
        int64_t ix;
        if (int_value(&t, tsr__dm_child(&t, c, "ImageIndex"), 0, (double)n - 1, &ix))
            ims[ix].thumbnail = true;
    }
    int64_t sel = 0;
    if ((rc = select_image(a, ims, n, &sel)))
        goto done;
    const image_t *im = &ims[sel];
    if (im->problem) {
        bool type = im->dm_type >= 0 && !dm_dtype(im->dm_type, &(tsr_dtype_t){0}) &&
                    !strcmp(im->problem, "its data type is not supported");
        if (type)
            rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                             "%s: image %lld has DM data type %d (%s), which is not supported "
                             "(supported: int8/16/32, uint8/16/32, float32/64, complex64, "
                             "binary)",
                             a->path, (long long)sel, im->dm_type, dm_type_name(im->dm_type));
        else
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT, "%s: image %lld: %s", a->path,
                             (long long)sel, im->problem);
        goto done;
    }
    const tsr__dm_node_t *data = &t.nodes[im->data];
    size_t es = tsr_dtype_size(im->dtype);
    int64_t need = -1; /* -1: more than fits in 63 bits */
    if (!tsr__mul_i64(im->pixels, (int64_t)es, &need) || need != data->bytes) {
        if (need != -1 && need != data->bytes && im->pixels > INT64_MAX / (int64_t)es)
            need = -1;
        json_t *dj = json_array();
        for (int i = 0; i < im->ndims; i++)
            json_array_append_new(dj, json_integer(im->dims[i]));
        char *dtxt = json_dumps(dj, JSON_COMPACT);
        json_decref(dj);
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: image %lld: ImageData/Data holds %lld bytes but Dimensions %s "
                         "of DataType %d (%s, %zu bytes per pixel) need %lld",
                         a->path, (long long)sel, (long long)data->bytes, dtxt ? dtxt : "?",
                         im->dm_type, dm_type_name(im->dm_type), es, (long long)need);
        free(dtxt);
        goto done;
    }
    layout_info_t li;
    if ((rc = choose_layout(a, &t, im, &li)))
        goto done;
    /* the stored (numpy-order) shape, and which part is nav / sig */
    int nd = im->ndims, sd = li.sig_dims, navd = nd - sd;
    int64_t shp[TSR_MAX_DIMS];
    for (int i = 0; i < nd; i++)
        shp[i] = im->dims[nd - 1 - i];
    int nav0 = li.layout == LAYOUT_C ? 0 : sd, sig0 = li.layout == LAYOUT_C ? navd : 0;
    tsr_shape_t nav = {.ndim = navd ? navd : 1, .dims = {1}}, sig = {.ndim = sd};
    for (int i = 0; i < navd; i++)
        nav.dims[i] = shp[nav0 + i];
    for (int i = 0; i < sd; i++)
        sig.dims[i] = shp[sig0 + i];
    if (navd == 0)
        li.layout = LAYOUT_C; /* one frame: both layouts are the same */
    ds->dtype = im->dtype;
    ds->big_endian = !t.little_endian;
    ds->image_count = tsr_shape_size(&nav);
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        goto done;
    int64_t frame_bytes = tsr_shape_size(&sig) * (int64_t)es;
    if (li.layout == LAYOUT_C) {
        if ((rc = tsr__dataset_add_segment(a, file, 0, ds->image_count, data->offset, frame_bytes)))
            goto done;
    } else {
        dm_state_t *st = tsr__calloc(ctx, 1, sizeof *st);
        if (!st) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
            goto done;
        }
        *st = (dm_state_t){file, data->offset, ds->image_count, tsr_shape_size(&sig)};
        ds->state = st;
        ds->read = read_sig_first;
        /* a tile gathers one run of `depth` consecutive elements per pixel,
         * each run in another page: deep tiles (in row bands when frames
         * are large) cut the cost per byte (sum of 64x64x256x256 u2, CPU
         * s: depth 16: 1.05, 32: 0.90, 64: 0.80, 128: 0.71); 64 keeps
         * whole-frame tiles (process_frame UDFs) moderate */
        ds->base_depth = ds->image_count < 64 ? ds->image_count : 64;
    }

    /* metadata */
    meta = json_object();
    int32_t it = tsr__dm_child(&t, im->node, "ImageTags");
    json_t *dimj = json_array();
    for (int i = 0; i < nd; i++)
        json_array_append_new(dimj, json_integer(im->dims[i]));
    json_t *hdr =
        json_pack("{s:i, s:s, s:I, s:I, s:i, s:s, s:o, s:s, s:s, s:I}", "dm_version", t.version,
                  "byte_order", t.little_endian ? "little" : "big", "file_size_field",
                  (json_int_t)t.size_field, "image_index", (json_int_t)sel, "data_type",
                  im->dm_type, "data_type_name", dm_type_name(im->dm_type), "dimensions", dimj,
                  "layout", li.layout == LAYOUT_C ? "c" : "sig_first", "layout_from", li.why,
                  "data_offset", (json_int_t)data->offset);
    set_str(hdr, "format", tag_str(&t, it, "Meta Data", "Format"));
    json_object_set_new(meta, "header", hdr);
    json_object_set_new(meta, "path", json_string(a->path));
    json_object_set_new(meta, "images", image_list_json(&t, ims, n));
    set_str(meta, "title", tag_str(&t, im->node, "Name"));
    acquisition_json(&t, it, meta);

    /* calibrations, in numpy order, for the parts not reshaped */
    int32_t id = tsr__dm_child(&t, im->node, "ImageData");
    int32_t cal = tsr__dm_find(&t, id, "Calibrations", "Dimension");
    const char *sig_t = tag_str(&t, it, "Meta Data", "Signal");
    json_t *calj = json_object();
    const char *names[TSR_MAX_DIMS] = {0};
    {
        /* name each DM dimension i: energy axes of spectra, then x, y, z
         * from the fastest (as HyperSpy); 4-D: scan y, x and detector ky, kx */
        static const char *const xyz[] = {"x", "y", "z"};
        int next = 0;
        for (int i = 0; i < nd; i++) {
            int32_t d = tsr__dm_child_at(&t, cal, i);
            const char *u = tag_str(&t, d, "Units");
            if (sd == 1 && nd > 1 && u && sig_t && i == nd - 1 - sig0 &&
                ((!strcmp(sig_t, "EELS") && !strcmp(u, "eV")) ||
                 (!strcmp(sig_t, "X-ray") && !strcmp(u, "keV"))))
                names[i] = !strcmp(u, "eV") ? "Energy loss" : "Energy";
        }
        for (int i = 0; i < nd; i++)
            if (!names[i])
                names[i] = next < 3 ? xyz[next++] : "";
        if (nd == 4) {
            /* numpy position p holds DM dimension nd-1-p */
            static const char *const scan[] = {"y", "x"}, *const det[] = {"ky", "kx"};
            for (int p = 0; p < navd && p < 2; p++)
                names[nd - 1 - (nav0 + p)] = scan[p + 2 - navd];
            for (int p = 0; p < sd && p < 2; p++)
                names[nd - 1 - (sig0 + p)] = det[p + 2 - sd];
        }
    }
    if (tsr__shape_eq(&ds->nav, &nav)) {
        json_t *na = json_array();
        if (navd == 0)
            json_array_append_new(na, json_pack("{s:s, s:f, s:f, s:s}", "name", "", "scale", 1.0,
                                                "offset", 0.0, "units", ""));
        for (int p = 0; p < navd; p++) {
            int i = nd - 1 - (nav0 + p);
            json_array_append_new(na, axis_json(&t, cal, i, names[i]));
        }
        json_object_set_new(calj, "nav", na);
    }
    if (tsr__shape_eq(&ds->sig, &sig)) {
        json_t *sa = json_array();
        for (int p = 0; p < sd; p++) {
            int i = nd - 1 - (sig0 + p);
            json_array_append_new(sa, axis_json(&t, cal, i, names[i]));
        }
        json_object_set_new(calj, "sig", sa);
    }
    if (json_object_size(calj))
        json_object_set_new(meta, "calibration", calj);
    else
        json_decref(calj);
    int32_t br = tsr__dm_find(&t, id, "Calibrations", "Brightness");
    double bs = 1, bo = 0;
    bool has_bs = tag_num(&t, br, &bs, "Scale"), has_bo = tag_num(&t, br, &bo, "Origin");
    if (has_bs || has_bo) {
        const char *u = tag_str(&t, br, "Units");
        json_object_set_new(meta, "intensity",
                            json_pack("{s:f, s:f, s:s}", "scale", bs, "offset",
                                      bo == 0 ? 0.0 : -bo * bs, "units", u ? u : ""));
    }
    rc = tsr__dataset_set_meta(a, meta);
    meta = NULL;
done:
    json_decref(meta);
    tsr__free(ctx, ims);
    tsr__dm_tree_free(&t);
    return rc;
}

const tsr__reader_def_t tsr__format_dm = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "dm",
    .description = "Gatan DigitalMicrograph DM3/DM4: images, stacks, spectrum images, 4D-STEM",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = N_PARAMS,
    .probe = probe,
    .open = open_dm,
    .close = close_dm,
};
