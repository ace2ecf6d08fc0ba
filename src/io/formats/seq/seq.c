/*
 * seq.c — Norpix StreamPix sequences (.seq): uncompressed 8- and 16-bit
 * monochrome frames, each followed by a footer (its timestamp), after a
 * header of 1024 bytes (file versions < 5) or 8192 bytes (version 5 and
 * later, StreamPix 6+).
 *
 * Header (little-endian): magic 0xFEED at byte 0, the name "Norpix seq"
 * (UTF-16) at 4, version at 28, header size at 32, a UTF-16 description at
 * 36, then at 548: width, height, bit depth, real bit depth, image size in
 * bytes, image format (100 = monochrome), allocated frames, origin, true
 * image size (the frame stride, footer included), suggested frame rate
 * (f64), ..., compression format at 620 (0 = none).  The frames go through
 * the shared strided reader.  A SEQ file does not know its scan: nav is 1-D
 * (all frames) unless nav_shape is given.
 *
 * Corrections: a DE camera writing through StreamPix leaves
 * "<file>.seq.dark.mrc" and "<file>.seq.gain.mrc" (MRC images, read with
 * the MRC reader) and a bad-pixel list "<file>.seq.Config.Metadata.xml"
 * (with "<file>.seq.metadata" telling the frame's offset and binning on
 * the sensor) beside the data.  They become the dataset's corrections
 * (tsr_dataset_corrections), which runs apply unless told otherwise.
 */
#include "io/dataset.h"
#include "io/formats/mrc/mrc.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

#define SEQ_MAGIC 0xFEEDu
#define SEQ_MIN_HEADER 1024
#define XML_MAX_BYTES (16 << 20)
#define MAX_MAPS 64

enum {
    H_VERSION = 28,
    H_HEADER_SIZE = 32,
    H_DESCRIPTION = 36, /* 512 bytes of UTF-16 */
    H_WIDTH = 548,
    H_HEIGHT = 552,
    H_BIT_DEPTH = 556,
    H_BIT_DEPTH_REAL = 560,
    H_IMAGE_SIZE = 564,
    H_IMAGE_FORMAT = 568,
    H_ALLOCATED = 572,
    H_ORIGIN = 576,
    H_TRUE_IMAGE_SIZE = 580,
    H_FRAME_RATE = 584,
    H_COMPRESSION = 620,
};

static uint32_t u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static int32_t i32(const uint8_t *p)
{
    return (int32_t)u32(p);
}
static uint16_t u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static double f64(const uint8_t *p)
{
    uint64_t u = (uint64_t)u32(p) | (uint64_t)u32(p + 4) << 32;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcasecmp(s + n - k, suf) == 0;
}

static bool file_exists(const char *path)
{
    uint8_t c;
    return tsr__file_head(path, &c, 1) >= 0;
}

static char *concat(tsr_ctx_t *ctx, const char *a, size_t alen, const char *b)
{
    size_t bl = strlen(b);
    char *s = tsr__malloc(ctx, alen + bl + 1);
    if (s) {
        memcpy(s, a, alen);
        memcpy(s + alen, b, bl + 1);
    }
    return s;
}

/* Companion files whose opening opens the sequence "<x>.seq" beside them. */
static const char *const companions[] = {".seq.Config.Metadata.xml", ".seq.metadata"};

static const char *companion(const char *path)
{
    for (size_t i = 0; i < sizeof companions / sizeof *companions; i++)
        if (has_suffix(path, companions[i]))
            return companions[i];
    return NULL;
}

/* The prefix of the companion files: "<x>.seq" for "<x>.seq" and for
 * "<x>.seq.seq" (both exist in the wild, as LiberTEM notes). */
static char *companion_prefix(tsr_ctx_t *ctx, const char *seq)
{
    size_t n = strlen(seq);
    if (has_suffix(seq, ".seq.seq"))
        return concat(ctx, seq, n - 4, "");
    if (has_suffix(seq, ".seq"))
        return concat(ctx, seq, n, "");
    return concat(ctx, seq, n, ".seq");
}

/* ---- the bad-pixel XML ------------------------------------------------- */

/* The XML the DE software writes:
 *   <BadPixels>
 *     <BadPixelMap Rows="4096" Columns="4096" [Binning="2"]>
 *       <Defect Rows="a-b"/> <Defect Row="r"/> <Defect Columns="a-b"/>
 *       <Defect Column="c"/> <Defect Row="r" Column="c"/>
 *     </BadPixelMap> ...
 * We read exactly these elements and attributes with a small scanner (no
 * DTDs, entities or namespaces), and reject anything malformed inside them. */

typedef struct attrs {
    int n;
    char name[8][16];
    char value[8][32];
} attrs_t;

typedef struct xml {
    const char *path;
    const char *t; /* the text, NUL-terminated */
    char *err;
    size_t errlen;
} xml_t;

static int xml_err(const xml_t *x, const char *at, const char *what)
{
    return tsr__seterr(x->err, x->errlen, TSR_ECORRUPT,
                       "%s: %s at byte %lld (set corrections=false to open the data without the "
                       "companion files)",
                       x->path, what, (long long)(at - x->t));
}

/* Parse the attributes of a tag from p (after its name) to its '>'; *p is
 * left after the '>', *empty tells "/>". */
static int parse_attrs(const xml_t *x, const char **pp, attrs_t *a, bool *empty)
{
    const char *p = *pp;
    a->n = 0;
    *empty = false;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '/' && p[1] == '>') {
            *empty = true;
            *pp = p + 2;
            return 0;
        }
        if (*p == '>') {
            *pp = p + 1;
            return 0;
        }
        const char *n0 = p;
        while (isalnum((unsigned char)*p) || *p == '_' || *p == '-' || *p == ':' || *p == '.')
            p++;
        size_t nl = (size_t)(p - n0);
        while (isspace((unsigned char)*p))
            p++;
        if (nl == 0 || *p != '=')
            return xml_err(x, p, "malformed attribute in a BadPixelMap element");
        p++;
        while (isspace((unsigned char)*p))
            p++;
        char q = *p;
        if (q != '"' && q != '\'')
            return xml_err(x, p, "unquoted attribute value");
        const char *v0 = ++p;
        while (*p && *p != q)
            p++;
        if (!*p)
            return xml_err(x, v0, "unterminated attribute value");
        size_t vl = (size_t)(p - v0);
        p++;
        if (a->n < 8 && nl < sizeof a->name[0] && vl < sizeof a->value[0]) {
            memcpy(a->name[a->n], n0, nl);
            a->name[a->n][nl] = 0;
            memcpy(a->value[a->n], v0, vl);
            a->value[a->n][vl] = 0;
            a->n++;
        } else if (a->n >= 8) {
            return xml_err(x, n0, "too many attributes");
        }
    }
}

static const char *attr(const attrs_t *a, const char *name)
{
    for (int i = 0; i < a->n; i++)
        if (!strcmp(a->name[i], name))
            return a->value[i];
    return NULL;
}

/* "a" or "a-b" with 0 <= a <= b < limit. */
static int parse_range(const xml_t *x, const char *at, const char *s, int64_t limit, int64_t *lo,
                       int64_t *hi, const char *what)
{
    char *end;
    long long a = strtoll(s, &end, 10), b = a;
    if (end == s)
        goto bad;
    if (*end == '-') {
        const char *s2 = end + 1;
        b = strtoll(s2, &end, 10);
        if (end == s2)
            goto bad;
    }
    if (*end || a < 0 || b < a)
        goto bad;
    if (b >= limit) {
        char msg[160];
        snprintf(msg, sizeof msg, "Defect %s=\"%s\" lies outside the map (%lld %s)", what, s,
                 (long long)limit, what[0] == 'R' ? "rows" : "columns");
        return xml_err(x, at, msg);
    }
    *lo = a;
    *hi = b;
    return 0;
bad : {
    char msg[160];
    snprintf(msg, sizeof msg, "Defect %s=\"%s\" is not N or N-M", what, s);
    return xml_err(x, at, msg);
}
}

typedef struct bpmap {
    int64_t rows, cols, binning;
    const char *body; /* after the opening tag; NULL for an empty element */
    const char *at;
} bpmap_t;

/* Find the next tag named `name` (followed by a space, '/' or '>') from p. */
static const char *find_tag(const char *p, const char *name)
{
    size_t n = strlen(name);
    while ((p = strchr(p, '<')) != NULL) {
        if (!strncmp(p + 1, name, n) &&
            (isspace((unsigned char)p[1 + n]) || p[1 + n] == '/' || p[1 + n] == '>'))
            return p;
        p++;
    }
    return NULL;
}

static int attr_i64(const xml_t *x, const char *at, const attrs_t *a, const char *name, int64_t def,
                    int64_t *out)
{
    const char *v = attr(a, name);
    if (!v) {
        if (def < 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "BadPixelMap without a %s attribute", name);
            return xml_err(x, at, msg);
        }
        *out = def;
        return 0;
    }
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end || n < 1 || n > (1 << 24)) {
        char msg[128];
        snprintf(msg, sizeof msg, "BadPixelMap %s=\"%s\" is not a size from 1 to 16777216", name,
                 v);
        return xml_err(x, at, msg);
    }
    *out = n;
    return 0;
}

/* Mark the defects of map m that fall in the window [oy, oy+h) × [ox,
 * ox+w) of the map into ex (h × w).  Row and column ranges go into
 * difference arrays (rows: h + 1, cols: w + 1, zeroed), so that the cost is
 * linear in the defects plus the frame, whatever the ranges. */
static int mark_defects(const xml_t *x, const bpmap_t *m, int64_t oy, int64_t ox, int64_t h,
                        int64_t w, int64_t *rows, int64_t *cols, uint8_t *ex)
{
    if (!m->body)
        return 0;
    const char *end = strstr(m->body, "</BadPixelMap");
    if (!end)
        return xml_err(x, m->at, "BadPixelMap element is not closed");
    const char *p = m->body;
    while ((p = find_tag(p, "Defect")) != NULL && p < end) {
        const char *at = p;
        p += 1 + strlen("Defect");
        attrs_t a;
        bool empty;
        int rc = parse_attrs(x, &p, &a, &empty);
        if (rc)
            return rc;
        const char *r = attr(&a, "Row") ? attr(&a, "Row") : attr(&a, "Rows");
        const char *c = attr(&a, "Column") ? attr(&a, "Column") : attr(&a, "Columns");
        int64_t r0 = 0, r1 = -1, c0 = 0, c1 = -1;
        if (r && (rc = parse_range(x, at, r, m->rows, &r0, &r1, "Row")))
            return rc;
        if (c && (rc = parse_range(x, at, c, m->cols, &c0, &c1, "Column")))
            return rc;
        if (!r && !c)
            return xml_err(x, at, "Defect without Row(s) or Column(s)");
        if (r && c && (r0 != r1 || c0 != c1))
            return xml_err(x, at, "Defect with both a row and a column range");
        /* window coordinates, clipped */
        r0 -= oy, r1 -= oy, c0 -= ox, c1 -= ox;
        if (r && c) { /* one pixel */
            if (r0 >= 0 && r0 < h && c0 >= 0 && c0 < w)
                ex[r0 * w + c0] = 1;
            continue;
        }
        int64_t *d = r ? rows : cols, n = r ? h : w, lo = r ? r0 : c0, hi = r ? r1 : c1;
        if (lo < 0)
            lo = 0;
        if (hi > n - 1)
            hi = n - 1;
        if (lo <= hi) {
            d[lo]++;
            d[hi + 1]--;
        }
    }
    return 0;
}

/* The .metadata beside the sequence: 11 int32 from byte 282 (DE's
 * layout, as LiberTEM reads it): metadata size, version, unbinned frame
 * size x, y, offset x, y, hardware binning, ... */
typedef struct demeta {
    bool present;
    int32_t unbinned_x, unbinned_y, offset_x, offset_y, binning;
} demeta_t;

static int read_demeta(tsr__open_args_t *a, const char *path, demeta_t *d)
{
    memset(d, 0, sizeof *d);
    if (!file_exists(path))
        return 0;
    tsr__file_t f;
    int rc = tsr__file_open(&f, path, a->err, a->errlen);
    if (rc)
        return rc;
    uint8_t b[282 + 44];
    if (f.size < (int64_t)sizeof b) {
        tsr__file_close(&f);
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: %lld bytes, too short for the DE metadata block (%zu bytes; set "
                           "corrections=false to open the data without the companion files)",
                           path, (long long)f.size, sizeof b);
    }
    rc = tsr__file_pread(&f, b, sizeof b, 0);
    tsr__file_close(&f);
    if (rc)
        return tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read", path);
    const uint8_t *p = b + 282;
    d->unbinned_x = i32(p + 8);
    d->unbinned_y = i32(p + 12);
    d->offset_x = i32(p + 16);
    d->offset_y = i32(p + 20);
    d->binning = i32(p + 24);
    if (d->binning < 1)
        d->binning = 1;
    if (d->offset_x < 0 || d->offset_y < 0 || d->binning > 64)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: OffsetX %d, OffsetY %d, HardwareBinning %d out of range "
                           "(expected offsets >= 0, binning 1..64)",
                           path, d->offset_x, d->offset_y, d->binning);
    d->present = true;
    return 0;
}

/* Build the h × w excluded-pixel mask from the XML; *ex stays NULL if the
 * XML cannot be placed on the frames (note says why). */
static int load_bad_pixels(tsr__open_args_t *a, const char *xml_path, const demeta_t *dm, int64_t h,
                           int64_t w, uint8_t **ex, int64_t *count, const char **note)
{
    tsr_ctx_t *ctx = a->ctx;
    char *t;
    uint8_t *mask = NULL;
    int64_t *rows = NULL, *cols = NULL;
    int rc = tsr__read_text(ctx, xml_path, XML_MAX_BYTES, TSR__TEXT_TRUNCATE | TSR__TEXT_NUL_SPACE,
                            "a metadata XML file", &t, NULL, a->err, a->errlen);
    if (rc)
        return rc;
    xml_t x = {xml_path, t, a->err, a->errlen};

    bpmap_t maps[MAX_MAPS];
    int nm = 0;
    for (const char *p = t; (p = find_tag(p, "BadPixelMap")) != NULL;) {
        if (nm == MAX_MAPS) {
            rc = xml_err(&x, p, "more than 64 BadPixelMap elements");
            goto done;
        }
        bpmap_t *m = &maps[nm];
        m->at = p;
        p += 1 + strlen("BadPixelMap");
        attrs_t at;
        bool empty;
        if ((rc = parse_attrs(&x, &p, &at, &empty)) ||
            (rc = attr_i64(&x, m->at, &at, "Rows", -1, &m->rows)) ||
            (rc = attr_i64(&x, m->at, &at, "Columns", -1, &m->cols)) ||
            (rc = attr_i64(&x, m->at, &at, "Binning", 1, &m->binning)))
            goto done;
        m->body = empty ? NULL : p;
        nm++;
    }
    if (nm == 0) {
        *note = "the bad-pixel file has no BadPixelMap element";
        goto done;
    }
    /* the map of the frames' binning with the most columns (as LiberTEM
     * chooses), placed at the sensor offset of the .metadata */
    int64_t b = dm->present ? dm->binning : 1, oy = 0, ox = 0;
    const bpmap_t *m = NULL;
    for (int i = 0; i < nm; i++)
        if (maps[i].binning == b && (!m || maps[i].cols > m->cols))
            m = &maps[i];
    if (dm->present) {
        if (!m) {
            char msg[96];
            snprintf(msg, sizeof msg, "no BadPixelMap with Binning=\"%lld\" (the .metadata's)",
                     (long long)b);
            rc = xml_err(&x, t, msg);
            goto done;
        }
        oy = dm->offset_y / b;
        ox = dm->offset_x / b;
        if (oy + h > m->rows || ox + w > m->cols) {
            char msg[200];
            snprintf(msg, sizeof msg,
                     "the frames (%lld x %lld at offset %lld, %lld) do not fit the %lld x %lld "
                     "BadPixelMap",
                     (long long)h, (long long)w, (long long)oy, (long long)ox, (long long)m->rows,
                     (long long)m->cols);
            rc = xml_err(&x, m->at, msg);
            goto done;
        }
    } else {
        /* without the sensor offset only a map of exactly the frame size
         * can be placed */
        m = NULL;
        for (int i = 0; i < nm; i++)
            if (maps[i].rows == h && maps[i].cols == w)
                m = &maps[i];
        if (!m) {
            *note = "bad pixels not applied: no .metadata file gives the frames' place on the "
                    "sensor, and no BadPixelMap has the frame size";
            goto done;
        }
    }
    mask = tsr__calloc(ctx, (size_t)(h * w), 1);
    rows = tsr__calloc(ctx, (size_t)(h + 1), sizeof *rows);
    cols = tsr__calloc(ctx, (size_t)(w + 1), sizeof *cols);
    if (!mask || !rows || !cols) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = mark_defects(&x, m, oy, ox, h, w, rows, cols, mask)))
        goto done;
    for (int64_t i = 1; i <= h; i++)
        rows[i] += rows[i - 1];
    for (int64_t i = 1; i <= w; i++)
        cols[i] += cols[i - 1];
    for (int64_t yy = 0; yy < h; yy++)
        for (int64_t xx = 0; xx < w; xx++)
            mask[yy * w + xx] |= rows[yy] > 0 || cols[xx] > 0;
    int64_t k = 0;
    for (int64_t i = 0; i < h * w; i++)
        k += mask[i];
    *count = k;
    if (k > 0) {
        *ex = mask;
        mask = NULL;
    }
done:
    tsr__free(ctx, rows);
    tsr__free(ctx, cols);
    tsr__free(ctx, mask);
    tsr__free(ctx, t);
    return rc;
}

/* Load what lies beside the sequence into ds->corr; record it in meta. */
static int load_corrections(tsr__open_args_t *a, const char *seq, int64_t h, int64_t w,
                            json_t *meta)
{
    tsr_ctx_t *ctx = a->ctx;
    tsr_dataset_t *ds = a->ds;
    char *prefix = companion_prefix(ctx, seq), *p = NULL;
    json_t *c = json_object();
    json_t *files = json_object_get(meta, "files");
    int rc = 0;
    if (!prefix || !c) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    static const char *const which[2] = {"dark", "gain"};
    for (int i = 0; i < 2; i++) {
        tsr__free(ctx, p);
        p = concat(ctx, prefix, strlen(prefix), i ? ".gain.mrc" : ".dark.mrc");
        if (!p) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
            goto done;
        }
        if (!file_exists(p))
            continue;
        int64_t ny, nx;
        float *img = NULL;
        char msg[TSR__ERRMSG_MAX - 96];
        if ((rc = tsr__mrc_load_f32(ctx, p, &ny, &nx, &img, msg, sizeof msg))) {
            rc = tsr__seterr(a->err, a->errlen, rc,
                             "%s reference: %s (set corrections=false to open the data without "
                             "it)",
                             which[i], msg);
            goto done;
        }
        if (ny != h || nx != w) {
            tsr__free(ctx, img);
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: the %s reference is %lld x %lld, the frames of %s are %lld x "
                             "%lld (set corrections=false to open the data without it)",
                             p, which[i], (long long)ny, (long long)nx, seq, (long long)h,
                             (long long)w);
            goto done;
        }
        if (i)
            ds->corr.gain = img;
        else
            ds->corr.dark = img;
        json_object_set_new(c, which[i], json_string(p));
        json_array_append_new(files, json_string(p));
    }
    tsr__free(ctx, p);
    p = concat(ctx, prefix, strlen(prefix), ".Config.Metadata.xml");
    if (!p) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    if (file_exists(p)) {
        char *mp = concat(ctx, prefix, strlen(prefix), ".metadata");
        demeta_t dm;
        if (!mp) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
            goto done;
        }
        rc = read_demeta(a, mp, &dm);
        if (!rc && dm.present) {
            json_object_set_new(c, "metadata", json_string(mp));
            json_object_set_new(c, "sensor_offset",
                                json_pack("[i,i]", (int)dm.offset_y, (int)dm.offset_x));
            json_object_set_new(c, "hardware_binning", json_integer(dm.binning));
            json_array_append_new(files, json_string(mp));
        }
        tsr__free(ctx, mp);
        if (rc)
            goto done;
        uint8_t *ex = NULL;
        int64_t count = 0;
        const char *note = NULL;
        if ((rc = load_bad_pixels(a, p, &dm, h, w, &ex, &count, &note)))
            goto done;
        ds->corr.excluded = ex;
        json_object_set_new(c, "bad_pixels", json_string(p));
        json_object_set_new(c, "excluded_pixels", json_integer(count));
        if (note)
            json_object_set_new(c, "note", json_string(note));
        json_array_append_new(files, json_string(p));
    }
    if (json_object_size(c))
        json_object_set_new(meta, "corrections", c);
    else
        json_decref(c);
    c = NULL;
done:
    json_decref(c);
    tsr__free(ctx, prefix);
    tsr__free(ctx, p);
    return rc;
}

/* ---- the reader -------------------------------------------------------- */

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "",
     "scan shape, e.g. 128,128 (a SEQ file does not store it; default: all frames, 1-D)", false},
    {"sig_shape", "shape", "", "reshape the frames (default: height, width)", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
    {"corrections", "bool", "true",
     "load the dark/gain references (<file>.seq.dark.mrc, .gain.mrc) and bad pixels "
     "(<file>.seq.Config.Metadata.xml) beside the file as the dataset's corrections",
     false},
};

static const char *const exts[] = {"seq", NULL};

static int probe(const char *path, const uint8_t *head, size_t n)
{
    static const uint8_t name[] = {'N', 0, 'o', 0, 'r', 0, 'p', 0, 'i', 0, 'x', 0};
    if (n >= 4 && u32(head) == SEQ_MAGIC)
        return n >= 4 + sizeof name && !memcmp(head + 4, name, sizeof name) ? 100 : 70;
    const char *comp = companion(path);
    if (comp) {
        /* only if the sequence is beside it */
        char seq[4096];
        size_t k = strlen(path) - strlen(comp) + 4;
        if (k < sizeof seq) {
            memcpy(seq, path, k);
            seq[k] = 0;
            uint8_t m[4];
            if (tsr__file_head(seq, m, 4) == 4 && u32(m) == SEQ_MAGIC)
                return 60;
        }
        return 10; /* open says that the sequence is missing or not a SEQ */
    }
    return has_suffix(path, ".seq") ? 10 : 0; /* open explains what is wrong */
}

/* UTF-16LE text → ASCII ('?' for other characters), up to a NUL. */
static void utf16_ascii(char *dst, size_t cap, const uint8_t *src, size_t bytes)
{
    size_t k = 0;
    for (size_t i = 0; i + 1 < bytes && k + 1 < cap; i += 2) {
        uint16_t c = u16(src + i);
        if (!c)
            break;
        dst[k++] = c < 128 && isprint(c) ? (char)c : (c == '\n' || c == '\t' ? ' ' : '?');
    }
    while (k > 0 && dst[k - 1] == ' ')
        k--;
    dst[k] = 0;
}

static int open_seq(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    tsr_ctx_t *ctx = a->ctx;
    char *seq_alloc = NULL;
    const char *seq = a->path;
    json_t *meta = NULL;
    int rc = 0;
    const char *comp = companion(a->path);
    if (comp) {
        seq_alloc = concat(ctx, a->path, strlen(a->path) - strlen(comp) + 4, "");
        if (!seq_alloc)
            return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        seq = seq_alloc;
        if (!file_exists(seq)) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND,
                             "%s: a StreamPix companion file, but the sequence %s beside it is "
                             "missing",
                             a->path, seq);
            goto done;
        }
    }
    int file = tsr__dataset_add_file(a, seq);
    if (file < 0) {
        rc = file;
        goto done;
    }
    const tsr__file_t *f = &ds->files[file];
    uint8_t b[SEQ_MIN_HEADER];
    if (f->size < SEQ_MIN_HEADER) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: truncated SEQ header: the file has %lld bytes, the header needs %d",
                         seq, (long long)f->size, SEQ_MIN_HEADER);
        goto done;
    }
    if (tsr__file_pread(f, b, sizeof b, 0)) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the header", seq);
        goto done;
    }
    if (u32(b) != SEQ_MAGIC) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: not a Norpix SEQ file: magic at byte 0 is 0x%08x, expected "
                         "0x0000feed",
                         seq, u32(b));
        goto done;
    }
    int32_t version = i32(b + H_VERSION);
    uint32_t width = u32(b + H_WIDTH), height = u32(b + H_HEIGHT);
    uint32_t depth = u32(b + H_BIT_DEPTH), fmt = u32(b + H_IMAGE_FORMAT);
    uint32_t image_size = u32(b + H_IMAGE_SIZE), stride = u32(b + H_TRUE_IMAGE_SIZE);
    uint32_t compression = u32(b + H_COMPRESSION);
    int64_t offset = version >= 5 ? 8192 : 1024;
    if (width == 0 || height == 0 || width > (1u << 20) || height > (1u << 20)) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: SEQ header width (byte 548) %u and height (byte 552) %u must be "
                         "1 to 1048576",
                         seq, width, height);
        goto done;
    }
    if (depth != 8 && depth != 16) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: SEQ bit depth (byte 556) %u is not supported (8 or 16)", seq, depth);
        goto done;
    }
    if (fmt != 100) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: SEQ image format (byte 568) %u is not supported: only 100 "
                         "(uncompressed monochrome)",
                         seq, fmt);
        goto done;
    }
    if (compression != 0) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: compressed SEQ files are not supported (compression format %u at "
                         "byte 620; expected 0)",
                         seq, compression);
        goto done;
    }
    int64_t frame_bytes = (int64_t)width * height * (depth / 8);
    if (image_size != frame_bytes) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: SEQ image size (byte 564) is %u bytes, but width x height x bit "
                         "depth give %lld",
                         seq, image_size, (long long)frame_bytes);
        goto done;
    }
    if (stride < frame_bytes) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: SEQ true image size (byte 580, the frame stride) is %u bytes, less "
                         "than the image's %lld",
                         seq, stride, (long long)frame_bytes);
        goto done;
    }
    if (f->size < offset + frame_bytes) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: no complete frame: the data start at byte %lld (header version "
                         "%d), a frame has %lld bytes, the file %lld",
                         seq, (long long)offset, version, (long long)frame_bytes,
                         (long long)f->size);
        goto done;
    }
    ds->dtype = depth == 8 ? TSR_U8 : TSR_U16;
    ds->big_endian = false;
    /* every frame whose pixels are in the file (the last footer may be cut) */
    ds->image_count = (f->size - offset - frame_bytes) / stride + 1;
    tsr_shape_t sig = {.ndim = 2, .dims = {height, width}};
    tsr_shape_t nav = {.ndim = 1, .dims = {ds->image_count}};
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        goto done;
    if ((rc = tsr__dataset_add_segment(a, file, 0, ds->image_count, offset, stride)))
        goto done;

    /* metadata */
    char desc[260];
    utf16_ascii(desc, sizeof desc, b + H_DESCRIPTION, 512);
    int64_t footer = stride - frame_bytes;
    double rate = f64(b + H_FRAME_RATE);
    meta = json_pack(
        "{s:s, s:{s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:[s]}",
        "path", seq, "header", "version", version, "header_size", i32(b + H_HEADER_SIZE),
        "description", desc, "width", (json_int_t)width, "height", (json_int_t)height, "bit_depth",
        (json_int_t)depth, "bit_depth_real", (json_int_t)u32(b + H_BIT_DEPTH_REAL),
        "image_size_bytes", (json_int_t)image_size, "image_format", (json_int_t)fmt,
        "allocated_frames", (json_int_t)u32(b + H_ALLOCATED), "origin",
        (json_int_t)u32(b + H_ORIGIN), "true_image_size", (json_int_t)stride, "footer_bytes",
        (json_int_t)footer, "data_offset", (json_int_t)offset, "files", seq);
    if (!meta) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    if (isfinite(rate) && rate > 0)
        json_object_set_new(meta, "frame_rate", json_real(rate));
    /* the footer starts with the frame's timestamp: u32 seconds, u16
     * milliseconds and (version 5+) u16 microseconds */
    size_t ts_bytes = version >= 5 ? 8 : 6;
    if (footer >= (int64_t)ts_bytes) {
        static const char *const key[2] = {"first_frame_time", "last_frame_time"};
        for (int i = 0; i < 2; i++) {
            int64_t img = i ? ds->image_count - 1 : 0, at = offset + img * stride + frame_bytes;
            uint8_t t[8];
            if (at + (int64_t)ts_bytes > f->size || tsr__file_pread(f, t, ts_bytes, at))
                continue;
            double s = u32(t) + u16(t + 4) / 1e3 + (ts_bytes == 8 ? u16(t + 6) / 1e6 : 0);
            json_object_set_new(meta, key[i], json_real(s));
        }
    }
    bool corr = true;
    if ((rc = tsr__parse_bool(tsr__params_value(a->params, params, 4, "corrections"), &corr, a->err,
                              a->errlen, "seq: corrections")))
        goto done;
    if (corr && (rc = load_corrections(a, seq, height, width, meta)))
        goto done;
    rc = tsr__dataset_set_meta(a, meta);
    meta = NULL;
done:
    json_decref(meta);
    tsr__free(ctx, seq_alloc);
    return rc;
}

const tsr__reader_def_t tsr__format_seq = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "seq",
    .description = "Norpix StreamPix sequence (.seq), 8/16-bit uncompressed; dark/gain/bad "
                   "pixels from the files beside it",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_seq,
};
