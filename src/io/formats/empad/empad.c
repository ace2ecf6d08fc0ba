/*
 * empad.c — EMPAD (Electron Microscope Pixel Array Detector) data: an .xml
 * written by the acquisition software, naming a .raw of little-endian
 * float32 frames of 128 columns × 130 rows, whose last two rows are a
 * footer (not pixels).  The frames are read through the shared strided
 * reader: 128×128 pixels at a stride of 128×130×4 bytes.
 *
 * The scan shape comes from the XML, in this order: a series (<type>series,
 * or <scan_parameters><series_count>) is (count,); <pix_x>/<pix_y> give
 * (pix_y, pix_x); otherwise the <scan_parameters mode="acquire">
 * resolution (y, x), or the "search" one when only that matches the size of
 * the .raw (files where the software recorded the wrong mode; LiberTEM does
 * the same).  Without a nav_shape parameter the .raw must hold exactly the
 * scan; with one, it must hold at least that many frames.
 *
 * The .raw opens on its own too (--format empad, or by auto-detection when
 * its name is the software's scan_x<X>_y<Y>.raw or series_x<N>.raw): the
 * scan shape then comes from that name or from nav_shape.
 */
#include "io/dataset.h"
#include "io/xml.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <strings.h>

#define EMPAD_W 128
#define EMPAD_H 128
#define EMPAD_RAW_H 130
#define EMPAD_FRAME_RAW_BYTES ((int64_t)EMPAD_W * EMPAD_RAW_H * 4)
#define EMPAD_XML_MAX (16 << 20)

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "",
     "scan shape (default: from the .xml; needed for a .raw without a scan_x<X>_y<Y> name)", false},
    {"sig_shape", "shape", "", "reshape the 128x128 frames", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
};

static const char *const exts[] = {"xml", "raw", NULL};

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool has_ext(const char *path, const char *ext)
{
    const char *b = base_name(path), *dot = strrchr(b, '.');
    return dot && strcasecmp(dot + 1, ext) == 0;
}

/* The scan shape in the software's raw file names: scan_x<X>_y<Y>.raw gives
 * (Y, X), series_x<N>.raw gives (N,).  False for any other name. */
static bool nav_from_raw_name(const char *path, tsr_shape_t *nav)
{
    const char *b = base_name(path);
    unsigned long long x, y;
    int used = 0;
    if (sscanf(b, "scan_x%llu_y%llu.raw%n", &x, &y, &used) == 2 && used && !b[used] && x > 0 &&
        y > 0 && x < (1ull << 31) && y < (1ull << 31)) {
        *nav = (tsr_shape_t){.ndim = 2, .dims = {(int64_t)y, (int64_t)x}};
        return true;
    }
    used = 0;
    if (sscanf(b, "series_x%llu.raw%n", &x, &used) == 1 && used && !b[used] && x > 0 &&
        x < (1ull << 40)) {
        *nav = (tsr_shape_t){.ndim = 1, .dims = {(int64_t)x}};
        return true;
    }
    return false;
}

/* The first element of an XML text, past a BOM, the declaration, comments
 * and whitespace; NULL if the text does not start like XML. */
static const char *first_element(const char *p, const char *e)
{
    if (e - p >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3;
    for (;;) {
        while (p < e && isspace((unsigned char)*p))
            p++;
        if (p >= e || *p != '<')
            return NULL;
        if (e - p >= 2 && (p[1] == '?' || p[1] == '!')) {
            const char *q = memchr(p, '>', (size_t)(e - p));
            if (!q)
                return NULL;
            p = q + 1;
            continue;
        }
        return p;
    }
}

static bool contains(const uint8_t *head, size_t n, const char *s)
{
    size_t k = strlen(s);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(head + i, s, k) == 0)
            return true;
    return false;
}

static int probe(const char *path, const uint8_t *head, size_t n)
{
    const char *e = (const char *)head + n;
    const char *p = first_element((const char *)head, e);
    if (p && e - p >= 6 && memcmp(p, "<root", 5) == 0 &&
        (isspace((unsigned char)p[5]) || p[5] == '>')) {
        if (contains(head, n, "<raw_file"))
            return 90;
        if (contains(head, n, "<scan_parameters") || contains(head, n, "<software_version"))
            return 60;
        return 0;
    }
    tsr_shape_t nav;
    if (has_ext(path, "raw") && nav_from_raw_name(path, &nav))
        return 30; /* beats raw's 5: the name is the EMPAD software's */
    return 0;
}

/* ---- the XML ----------------------------------------------------------- */

typedef struct {
    char raw_name[1024]; /* as written in <raw_file filename=...> */
    char type[32];
    tsr_shape_t nav;     /* from the XML */
    tsr_shape_t nav_alt; /* the "search" mode's, if different (ndim 0 if none) */
    const char *source;  /* which fields gave nav */
    char software[128], timestamp[64];
    double exposure;
    bool has_exposure;
    double fov[2]; /* full scan field of view x, y (m) */
    bool has_fov;
    double pixelsize; /* iom_measurements/calibrated_pixelsize */
    bool has_pixelsize;
    double diff_angle;
    bool has_diff_angle;
} empad_xml_t;

static bool text_f64(const tsr__xml_t *x, int node, double *out)
{
    char buf[64], *end;
    if (node < 0 || !tsr__xml_text(x, node, buf, sizeof buf) || !buf[0])
        return false;
    double v = strtod(buf, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return false;
    *out = v;
    return true;
}

/* s with bytes outside printable ASCII replaced by '?', in place: text of
 * the file quoted in a message (which must stay valid UTF-8). */
static char *printable(char *s)
{
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 32 || (unsigned char)*p >= 127)
            *p = '?';
    return s;
}

/* A positive count from the text of node; errors name the field. */
static int text_count(tsr__open_args_t *a, const tsr__xml_t *x, int node, const char *field,
                      int64_t *out)
{
    char buf[64], *end;
    tsr__xml_text(x, node, buf, sizeof buf);
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (!buf[0] || *end || errno || v < 1 || v > (1ll << 40))
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: <%s> must be a positive whole number, found '%s'", a->path, field,
                           printable(buf));
    *out = v;
    return 0;
}

static int scan_resolution(tsr__open_args_t *a, const tsr__xml_t *x, int sp, const char *mode,
                           tsr_shape_t *nav)
{
    int nx = tsr__xml_child(x, sp, "scan_resolution_x");
    int ny = tsr__xml_child(x, sp, "scan_resolution_y");
    if (nx < 0 || ny < 0)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: <scan_parameters mode=\"%s\"> lacks <scan_resolution_%s>", a->path,
                           mode, nx < 0 ? "x" : "y");
    int64_t vx, vy;
    int rc;
    if ((rc = text_count(a, x, nx, "scan_resolution_x", &vx)) ||
        (rc = text_count(a, x, ny, "scan_resolution_y", &vy)))
        return rc;
    *nav = (tsr_shape_t){.ndim = 2, .dims = {vy, vx}};
    return 0;
}

static int parse_xml(tsr__open_args_t *a, const char *text, size_t len, empad_xml_t *h)
{
    tsr__xml_t x;
    char msg[256];
    int rc = tsr__xml_parse(&x, a->ctx, text, len, msg, sizeof msg);
    if (rc) {
        tsr__xml_free(&x);
        return tsr__seterr(a->err, a->errlen, rc, "%s: not a well-formed EMPAD XML file: %s",
                           a->path, msg);
    }
    int root = tsr__xml_child(&x, 0, NULL);
    if (!tsr__xml_is(&x, root, "root")) {
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)x.nodes[root].name_len, x.nodes[root].name);
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: not an EMPAD XML file: the top element is <%s>, expected <root>",
                         a->path, printable(name));
        goto done;
    }
    int rf = tsr__xml_child(&x, root, "raw_file");
    if (!tsr__xml_attr(&x, rf, "filename", h->raw_name, sizeof h->raw_name) || !h->raw_name[0]) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: no <raw_file filename=\"...\"> names the data file", a->path);
        goto done;
    }
    tsr__xml_text(&x, tsr__xml_child(&x, root, "type"), h->type, sizeof h->type);
    int sp_series = tsr__xml_path(&x, root, "scan_parameters/series_count");
    int count = tsr__xml_child(&x, root, "count");
    int px = tsr__xml_child(&x, root, "pix_x"), py = tsr__xml_child(&x, root, "pix_y");
    h->nav_alt.ndim = 0;
    if (!strcmp(h->type, "series") || sp_series >= 0) {
        int node = sp_series >= 0 ? sp_series : count;
        if (node < 0) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: a series (<type>series</type>) without <count> or "
                             "<scan_parameters><series_count>",
                             a->path);
            goto done;
        }
        int64_t c;
        if ((rc = text_count(a, &x, node, sp_series >= 0 ? "series_count" : "count", &c)))
            goto done;
        h->nav = (tsr_shape_t){.ndim = 1, .dims = {c}};
        h->source = sp_series >= 0 ? "scan_parameters/series_count" : "count";
        if (!h->type[0])
            snprintf(h->type, sizeof h->type, "series");
    } else if (h->type[0] && strcmp(h->type, "scan") != 0) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: unknown acquisition <type> '%s' (expected scan or series)", a->path,
                         printable(h->type));
        goto done;
    } else if (px >= 0 && py >= 0) {
        int64_t vx, vy;
        if ((rc = text_count(a, &x, px, "pix_x", &vx)) ||
            (rc = text_count(a, &x, py, "pix_y", &vy)))
            goto done;
        h->nav = (tsr_shape_t){.ndim = 2, .dims = {vy, vx}};
        h->source = "pix_y, pix_x";
    } else {
        int acq = tsr__xml_child_with(&x, root, "scan_parameters", "mode", "acquire");
        int search = tsr__xml_child_with(&x, root, "scan_parameters", "mode", "search");
        if (acq < 0) {
            /* no modes: the first <scan_parameters> with a resolution */
            for (int s = tsr__xml_child(&x, root, "scan_parameters"); s >= 0;
                 s = tsr__xml_next(&x, s))
                if (tsr__xml_child(&x, s, "scan_resolution_x") >= 0) {
                    acq = s;
                    break;
                }
        }
        if (acq < 0) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: the scan shape is not in the file (no <pix_x>/<pix_y>, no "
                             "<scan_parameters> with <scan_resolution_x>/<scan_resolution_y>); "
                             "give nav_shape",
                             a->path);
            goto done;
        }
        if ((rc = scan_resolution(a, &x, acq, "acquire", &h->nav)))
            goto done;
        h->source = "scan_parameters mode=acquire";
        tsr_shape_t alt;
        if (search >= 0 && search != acq && scan_resolution(a, &x, search, "search", &alt) == 0 &&
            !tsr__shape_eq(&alt, &h->nav))
            h->nav_alt = alt;
        a->err[0] = 0;
        if (!h->type[0])
            snprintf(h->type, sizeof h->type, "scan");
    }
    int iom = tsr__xml_child(&x, root, "iom_measurements");
    char buf[512];
    if (tsr__xml_text(&x, tsr__xml_child(&x, iom, "optics.get_full_scan_field_of_view"), buf,
                      sizeof buf) &&
        sscanf(buf, " [ %lf , %lf ]", &h->fov[0], &h->fov[1]) == 2)
        h->has_fov = true;
    else if (text_f64(&x, tsr__xml_path(&x, iom, "full_scan_field_of_view/x"), &h->fov[0]) &&
             text_f64(&x, tsr__xml_path(&x, iom, "full_scan_field_of_view/y"), &h->fov[1]))
        h->has_fov = true;
    h->has_pixelsize = text_f64(&x, tsr__xml_child(&x, iom, "calibrated_pixelsize"), &h->pixelsize);
    h->has_diff_angle =
        text_f64(&x, tsr__xml_child(&x, iom, "calibrated_diffraction_angle"), &h->diff_angle);
    h->has_exposure = text_f64(&x, tsr__xml_child(&x, root, "exposure_time"), &h->exposure);
    tsr__xml_text(&x, tsr__xml_child(&x, root, "software_version"), h->software,
                  sizeof h->software);
    tsr__xml_attr(&x, tsr__xml_child(&x, root, "timestamp"), "isoformat", h->timestamp,
                  sizeof h->timestamp);
    rc = 0;
done:
    tsr__xml_free(&x);
    return rc;
}

/* ---- open -------------------------------------------------------------- */

static json_t *axis(const char *name, double scale, double offset, const char *units)
{
    return json_pack("{s:s, s:f, s:f, s:s}", "name", name, "scale", scale, "offset", offset,
                     "units", units);
}

static int open_empad(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    bool is_xml = !has_ext(a->path, "raw");
    empad_xml_t h = {0};
    char raw_path[4096];
    int rc;
    if (is_xml) {
        char *text = NULL;
        size_t len = 0;
        if ((rc = tsr__read_text(a->ctx, a->path, EMPAD_XML_MAX, 0, "an EMPAD XML file", &text,
                                 &len, a->err, a->errlen)))
            return rc;
        rc = parse_xml(a, text, len, &h);
        tsr__free(a->ctx, text);
        if (rc)
            return rc;
        /* The data file lies beside the XML, whatever folder it was
         * written in (the software may record a path). */
        const char *rn = h.raw_name;
        for (const char *s = rn; *s; s++)
            if (*s == '/' || *s == '\\')
                rn = s + 1;
        const char *slash = strrchr(a->path, '/');
        int dirlen = slash ? (int)(slash - a->path + 1) : 0;
        if (snprintf(raw_path, sizeof raw_path, "%.*s%s", dirlen, a->path, rn) >=
            (int)sizeof raw_path)
            return tsr__seterr(a->err, a->errlen, TSR_EINVAL, "%s: data file path too long",
                               a->path);
    } else {
        snprintf(raw_path, sizeof raw_path, "%s", a->path);
        if (!nav_from_raw_name(a->path, &h.nav))
            h.nav.ndim = 0;
        h.source = h.nav.ndim ? "file name" : NULL;
    }
    char msg[TSR__ERRMSG_MAX];
    int file = tsr__dataset_add_file(a, raw_path);
    if (file < 0) {
        snprintf(msg, sizeof msg, "%s", a->err);
        if (is_xml)
            return tsr__seterr(a->err, a->errlen, file,
                               "%s: the EMPAD data file '%s' named by <raw_file> cannot be "
                               "opened: %s",
                               a->path, raw_path, msg);
        return file;
    }
    ds->dtype = TSR_F32;
    ds->big_endian = false;
    int64_t size = ds->files[file].size;
    ds->image_count = size / EMPAD_FRAME_RAW_BYTES;
    bool nav_given = tsr_params_get(a->params, "nav_shape") != NULL;
    const char *mode = h.source;
    if (!nav_given && h.nav.ndim) {
        int64_t want = tsr_shape_size(&h.nav) * EMPAD_FRAME_RAW_BYTES;
        if (size != want) {
            int64_t alt = h.nav_alt.ndim ? tsr_shape_size(&h.nav_alt) * EMPAD_FRAME_RAW_BYTES : -1;
            char b1[64], b2[64];
            if (size == alt) {
                h.nav = h.nav_alt;
                mode = "scan_parameters mode=search";
            } else {
                return tsr__seterr(
                    a->err, a->errlen, TSR_ECORRUPT,
                    "%s: %s has %lld bytes, but the scan %s (from %s) needs %lld (%lld frames of "
                    "128x130 float32)%s%s; give nav_shape to read part of it",
                    a->path, raw_path, (long long)size, tsr__shape_str(&h.nav, b1, sizeof b1),
                    h.source, (long long)want, (long long)tsr_shape_size(&h.nav),
                    h.nav_alt.ndim ? ", or the search scan " : "",
                    h.nav_alt.ndim ? tsr__shape_str(&h.nav_alt, b2, sizeof b2) : "");
            }
        }
    }
    if (!nav_given && !h.nav.ndim && size % EMPAD_FRAME_RAW_BYTES)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: %lld bytes is not a whole number of EMPAD frames (%lld bytes "
                           "each: 128x130 float32)",
                           raw_path, (long long)size, (long long)EMPAD_FRAME_RAW_BYTES);
    if (ds->image_count < 1)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: %lld bytes holds no EMPAD frame (%lld bytes each: 128x130 "
                           "float32)",
                           raw_path, (long long)size, (long long)EMPAD_FRAME_RAW_BYTES);
    tsr_shape_t sig = {.ndim = 2, .dims = {EMPAD_H, EMPAD_W}};
    /* (a .raw without a telling name: one frame after the other) */
    if ((rc = tsr__dataset_shape_params(a, &h.nav, &sig)))
        return rc;
    if ((rc = tsr__dataset_add_segment(a, file, 0, ds->image_count, 0, EMPAD_FRAME_RAW_BYTES)))
        return rc;

    json_t *m = json_object(), *hdr = json_object();
    if (!m || !hdr) {
        json_decref(m);
        json_decref(hdr);
        return tsr__dataset_set_meta(a, NULL);
    }
    json_object_set_new(m, "detector", json_string("EMPAD"));
    json_object_set_new(m, "header", hdr);
    if (is_xml) {
        json_object_set_new(hdr, "raw_file", json_string(h.raw_name));
        json_object_set_new(hdr, "type", json_string(h.type));
        if (h.software[0])
            json_object_set_new(hdr, "software_version", json_string(h.software));
        if (h.has_exposure)
            json_object_set_new(hdr, "exposure_time", json_real(h.exposure));
        if (h.has_fov)
            json_object_set_new(hdr, "full_scan_field_of_view",
                                json_pack("[f, f]", h.fov[0], h.fov[1]));
        if (h.has_pixelsize)
            json_object_set_new(hdr, "calibrated_pixelsize", json_real(h.pixelsize));
        if (h.has_diff_angle)
            json_object_set_new(hdr, "calibrated_diffraction_angle", json_real(h.diff_angle));
        if (h.timestamp[0])
            json_object_set_new(m, "timestamp", json_string(h.timestamp));
        json_object_set_new(m, "files", json_pack("[s, s]", a->path, raw_path));
    }
    if (mode)
        json_object_set_new(hdr, "scan_shape_from", json_string(mode));
    json_object_set_new(hdr, "frame_bytes", json_integer(EMPAD_FRAME_RAW_BYTES));
    json_object_set_new(hdr, "footer_rows", json_integer(EMPAD_RAW_H - EMPAD_H));

    /* Calibrations as RosettaSciIO reads them: the scan step is the full
     * field of view over the number of positions; the detector pixel is
     * calibrated_pixelsize × 1e9 in 1/nm, with the origin at the centre. */
    json_t *cal = json_object();
    if (h.has_fov && ds->nav.ndim == 2 && tsr__shape_eq(&ds->nav, &h.nav) &&
        tsr__shape_eq(&ds->sig, &sig))
        json_object_set_new(cal, "nav",
                            json_pack("[o, o]", axis("y", h.fov[1] / (double)h.nav.dims[0], 0, "m"),
                                      axis("x", h.fov[0] / (double)h.nav.dims[1], 0, "m")));
    if (h.has_pixelsize && tsr__shape_eq(&ds->sig, &sig)) {
        double s = h.pixelsize * 1e9;
        json_object_set_new(
            cal, "sig",
            json_pack("[o, o]", axis("y", s, -64 * s, "1/nm"), axis("x", s, -64 * s, "1/nm")));
    }
    if (json_object_size(cal))
        json_object_set_new(m, "calibration", cal);
    else
        json_decref(cal);
    return tsr__dataset_set_meta(a, m);
}

const tsr__reader_def_t tsr__format_empad = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "empad",
    .description = "EMPAD: .xml with its .raw of 128x130 float32 frames (2 footer rows dropped)",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_empad,
};
