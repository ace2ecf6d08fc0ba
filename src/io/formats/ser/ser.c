/*
 * ser.c — FEI / Thermo Fisher TIA series files (.ser), opened directly or
 * through the .emi that TIA writes beside them (<stem>.emi with one
 * <stem>_<N>.ser per signal; the .emi opens _1 by default, `signal`
 * chooses another).
 *
 * Layout (little-endian; Chris Boothroyd's description, as read by ncempy,
 * RosettaSciIO and LiberTEM): a header — byte order 0x4949, series ID
 * 0x0197, version 0x0210 (4-byte offsets) or 0x0220 (8-byte), DataTypeID
 * (0x4120 1-D elements, 0x4122 2-D), TagTypeID, TotalNumberElements,
 * ValidNumberElements, OffsetArrayOffset, NumberDimensions and one
 * dimension record per scan dimension (size, calibration offset, delta and
 * element, description, units) — then, at OffsetArrayOffset, the offsets of
 * the data elements and of their tags.  Each data element has its own
 * header (calibration, data type, length or X/Y size) before its pixels.
 *
 * Frames are the ValidNumberElements elements present (an acquisition that
 * stopped early declares more).  The scan shape is the dimension sizes,
 * Dimension 1 the fastest (C order: the last); a 2-D scan cut short keeps
 * its shape when whole rows are present, else becomes 1-D.  2-D elements
 * are stored bottom row first; they are read top row first, as ncempy and
 * HyperSpy show them.  Elements must all have the type and size of the
 * first: with equally spaced elements (the usual case) the first, middle
 * and last headers are checked and a tile of consecutive frames is one
 * read; otherwise every header is checked and each frame is read alone.
 * Row order and element headers need a `read` of our own rather than
 * segments; it locates the bytes and leaves conversion to tsr__convert.
 */
#include "io/dataset.h"
#include "io/xml.h"

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <strings.h>

#define SER_BYTE_ORDER 0x4949
#define SER_SERIES_ID 0x0197
#define SER_1D 0x4120
#define SER_2D 0x4122
#define SER_HDR_1D 26 /* offset f8, delta f8, element i4, type i2, length i4 */
#define SER_HDR_2D 50 /* 2 × (f8, f8, i4), type i2, size x i4, size y i4 */
#define SER_MAX_DIMS 4
#define SER_BATCH_BYTES (256 << 10) /* most bytes one read spans */
#define SER_EMI_TAIL (32 << 20)     /* the .emi's metadata lie at its end */

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "", "reshape the scan (default: from the dimension records)", false},
    {"sig_shape", "shape", "", "reshape the frames (same number of pixels)", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
    {"signal", "int", "1", "for an .emi: which <stem>_<N>.ser to open (N)", false},
};

static const char *const exts[] = {"ser", "emi", NULL};

typedef struct {
    int64_t *offs;         /* pixel offset of each element, or NULL if equally spaced */
    int64_t first, stride; /* equally spaced: pixels of element i at first + i*stride */
    int64_t rows, cols;    /* stored element geometry (1 row for 1-D elements) */
    bool flip;             /* rows stored bottom first: read them in reverse */
} ser_state_t;

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static int32_t le32s(const uint8_t *p)
{
    return (int32_t)le32(p);
}
static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}
static double lef64(const uint8_t *p)
{
    uint64_t u = le64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static bool has_ext(const char *path, const char *ext)
{
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) && strcasecmp(dot + 1, ext) == 0;
}

static int probe(const char *path, const uint8_t *head, size_t n)
{
    if (n >= 6 && le16(head) == SER_BYTE_ORDER && le16(head + 2) == SER_SERIES_ID)
        return (le16(head + 4) == 0x0210 || le16(head + 4) == 0x0220) ? 100 : 80;
    if (has_ext(path, "emi"))
        return n >= 2 && head[0] == 'J' && head[1] == 'K' ? 90 : 60;
    return 0;
}

/* ---- the .ser header --------------------------------------------------- */

typedef struct {
    int64_t size;
    double offset, delta;
    int32_t element;
    char desc[128], units[64];
} ser_dim_t;

typedef struct {
    unsigned version, data_type_id, tag_type_id;
    int64_t total, valid, offset_array;
    int ndim;
    ser_dim_t dims[SER_MAX_DIMS];
    /* element header of the first element */
    int elem_type;
    tsr_dtype_t dtype;
    int64_t len_x, len_y;            /* 1-D: len_x = length, len_y = 1 */
    double cal_off[2], cal_delta[2]; /* [0] x (or 1-D), [1] y */
    int32_t cal_elem[2];
    bool equal;
    int64_t stride;
} ser_header_t;

static tsr_dtype_t ser_dtype(int t)
{
    static const tsr_dtype_t map[] = {TSR_U8,  TSR_U8,  TSR_U16, TSR_U32, TSR_I8,
                                      TSR_I16, TSR_I32, TSR_F32, TSR_F64, TSR_C64};
    return t >= 1 && t <= 9 ? map[t] : (tsr_dtype_t)-1;
}

static const char *ser_dtype_name(int t)
{
    static const char *const names[] = {"?",       "uint8",     "uint16",    "uint32",
                                        "int8",    "int16",     "int32",     "float32",
                                        "float64", "complex64", "complex128"};
    return t >= 1 && t <= 10 ? names[t] : "unknown";
}

typedef struct {
    tsr__open_args_t *a;
    const tsr__file_t *f;
    const char *path;
} rd_t;

/* Read n bytes at off; an error names what was being read. */
static int rd(rd_t *r, int64_t off, void *buf, size_t n, const char *what)
{
    if (off < 0 || off > r->f->size || (int64_t)n > r->f->size - off)
        return tsr__seterr(r->a->err, r->a->errlen, TSR_ECORRUPT,
                           "%s: truncated: %s (%zu bytes at offset %lld) lies past the end of "
                           "the file (%lld bytes)",
                           r->path, what, n, (long long)off, (long long)r->f->size);
    if (tsr__file_pread(r->f, buf, n, off))
        return tsr__seterr(r->a->err, r->a->errlen, TSR_EIO, "%s: cannot read %s", r->path, what);
    return 0;
}

/* Parse a data element's header at off; check it against the first (h,
 * filled when first is true) and that its pixels lie in the file. */
static int element_header(rd_t *r, ser_header_t *h, int64_t idx, int64_t off, bool first)
{
    tsr__open_args_t *a = r->a;
    uint8_t b[SER_HDR_2D];
    bool two = h->data_type_id == SER_2D;
    size_t hb = two ? SER_HDR_2D : SER_HDR_1D;
    char what[96];
    snprintf(what, sizeof what, "the header of data element %lld", (long long)idx);
    int rc = rd(r, off, b, hb, what);
    if (rc)
        return rc;
    int type = le16(b + (two ? 40 : 20));
    int64_t lx = le32s(b + (two ? 42 : 22)), ly = two ? le32s(b + 46) : 1;
    if (first) {
        if (type == 10 || ser_dtype(type) == (tsr_dtype_t)-1)
            return tsr__seterr(a->err, a->errlen, type == 10 ? TSR_EUNSUPPORTED : TSR_ECORRUPT,
                               "%s: data element 0: DataType %d (%s) is not supported (expected "
                               "1-9: uint8 ... complex64)",
                               r->path, type, ser_dtype_name(type));
        if (lx < 1 || ly < 1)
            return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                               "%s: data element 0: %s %lld is out of range (expected >= 1)",
                               r->path,
                               !two     ? "ArrayLength"
                               : lx < 1 ? "ArraySizeX"
                                        : "ArraySizeY",
                               (long long)(lx < 1 ? lx : ly));
        h->elem_type = type;
        h->dtype = ser_dtype(type);
        h->len_x = lx;
        h->len_y = ly;
        for (int k = 0; k < (two ? 2 : 1); k++) {
            h->cal_off[k] = lef64(b + 20 * k);
            h->cal_delta[k] = lef64(b + 20 * k + 8);
            h->cal_elem[k] = le32s(b + 20 * k + 16);
        }
    } else if (type != h->elem_type || lx != h->len_x || ly != h->len_y) {
        char s1[64], s2[64];
        if (two) {
            snprintf(s1, sizeof s1, "%s %lld x %lld", ser_dtype_name(type), (long long)ly,
                     (long long)lx);
            snprintf(s2, sizeof s2, "%s %lld x %lld", ser_dtype_name(h->elem_type),
                     (long long)h->len_y, (long long)h->len_x);
        } else {
            snprintf(s1, sizeof s1, "%s length %lld", ser_dtype_name(type), (long long)lx);
            snprintf(s2, sizeof s2, "%s length %lld", ser_dtype_name(h->elem_type),
                     (long long)h->len_x);
        }
        return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                           "%s: data element %lld is %s, unlike element 0 (%s): elements of "
                           "different types or sizes are not supported",
                           r->path, (long long)idx, s1, s2);
    }
    int64_t px, bytes, end;
    if (!tsr__mul_i64(h->len_x, h->len_y, &px) ||
        !tsr__mul_i64(px, (int64_t)tsr_dtype_size(h->dtype), &bytes) ||
        !tsr__add_i64(off, (int64_t)hb, &end) || !tsr__add_i64(end, bytes, &end) ||
        end > r->f->size)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: truncated: data element %lld (%lld pixels of %s at offset %lld) "
                           "ends past the end of the file (%lld bytes)",
                           r->path, (long long)idx, (long long)(h->len_x * h->len_y),
                           ser_dtype_name(h->elem_type), (long long)off, (long long)r->f->size);
    return 0;
}

static int parse_header(rd_t *r, ser_header_t *h, int64_t **offs_out)
{
    tsr__open_args_t *a = r->a;
    uint8_t b[34];
    int rc;
    *offs_out = NULL;
    if (r->f->size < 30)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: truncated: %lld bytes is less than a SER header (30)", r->path,
                           (long long)r->f->size);
    if ((rc = rd(r, 0, b, 30, "the header")))
        return rc;
    unsigned order = le16(b), id = le16(b + 2);
    h->version = le16(b + 4);
    if (order != SER_BYTE_ORDER)
        return tsr__seterr(a->err, a->errlen, order == 0x4D4D ? TSR_EUNSUPPORTED : TSR_ECORRUPT,
                           "%s: ByteOrder is 0x%04x, expected 0x4949 (little-endian)%s", r->path,
                           order,
                           order == 0x4D4D ? "; big-endian SER files are not supported" : "");
    if (id != SER_SERIES_ID)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: SeriesID is 0x%04x, expected 0x0197: not a TIA series file",
                           r->path, id);
    if (h->version != 0x0210 && h->version != 0x0220)
        return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                           "%s: SeriesVersion 0x%04x is not supported (expected 0x0210 or 0x0220)",
                           r->path, h->version);
    h->data_type_id = le32(b + 6);
    h->tag_type_id = le32(b + 10);
    if (h->data_type_id != SER_1D && h->data_type_id != SER_2D)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: DataTypeID is 0x%04x, expected 0x4120 (1-D elements) or 0x4122 "
                           "(2-D elements)",
                           r->path, h->data_type_id);
    int64_t total = le32s(b + 14), valid = le32s(b + 18);
    bool wide = h->version == 0x0220;
    size_t osz = wide ? 8 : 4;
    int64_t cur = wide ? 34 : 30;
    if (wide && (rc = rd(r, 0, b, 34, "the header")))
        return rc;
    h->offset_array = wide ? (int64_t)le64(b + 22) : (int64_t)le32(b + 22);
    int32_t ndim = le32s(b + (wide ? 30 : 26));
    if (total < 1 || valid < 0 || valid > total)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: ValidNumberElements %lld / TotalNumberElements %lld out of range "
                           "(expected 0 <= valid <= total, total >= 1)",
                           r->path, (long long)valid, (long long)total);
    if (valid == 0)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: ValidNumberElements is 0: the file holds no data (TIA keeps a "
                           "single spectrum in the .emi, which is not read)",
                           r->path);
    h->total = total;
    h->valid = valid;
    if (ndim < 0 || ndim > SER_MAX_DIMS)
        return tsr__seterr(a->err, a->errlen, ndim < 0 ? TSR_ECORRUPT : TSR_EUNSUPPORTED,
                           "%s: NumberDimensions %d out of range (expected 0 to %d)", r->path, ndim,
                           SER_MAX_DIMS);
    h->ndim = ndim;
    int64_t prod = 1;
    for (int i = 0; i < ndim; i++) {
        ser_dim_t *d = &h->dims[i];
        uint8_t db[28];
        char what[64];
        snprintf(what, sizeof what, "dimension record %d", i + 1);
        if ((rc = rd(r, cur, db, 28, what)))
            return rc;
        d->size = le32s(db);
        d->offset = lef64(db + 4);
        d->delta = lef64(db + 12);
        d->element = le32s(db + 20);
        int32_t len = le32s(db + 24);
        if (d->size < 1)
            return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                               "%s: dimension %d: DimensionSize %lld out of range (expected >= 1)",
                               r->path, i + 1, (long long)d->size);
        cur += 28;
        for (int k = 0; k < 2; k++) { /* the description, then the units */
            if (k) {
                if ((rc = rd(r, cur, db, 4, what)))
                    return rc;
                len = le32s(db);
                cur += 4;
            }
            if (len < 0 || len > 65536)
                return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                                   "%s: dimension %d: %s %d out of range (expected 0 to 65536)",
                                   r->path, i + 1, k ? "UnitsLength" : "DescriptionLength", len);
            char *dst = k ? d->units : d->desc;
            size_t cap = k ? sizeof d->units : sizeof d->desc;
            size_t keep = (size_t)len < cap - 1 ? (size_t)len : cap - 1;
            if ((rc = rd(r, cur, dst, keep, what)))
                return rc;
            dst[keep] = 0;
            for (size_t j = 0; j < keep; j++)
                if (!isprint((unsigned char)dst[j]))
                    dst[j] = '?';
            cur += len;
        }
        if (!tsr__mul_i64(prod, d->size, &prod))
            return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT, "%s: the dimension sizes overflow",
                               r->path);
    }
    if (ndim > 0 && prod != total)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: the dimension sizes multiply to %lld, but TotalNumberElements is "
                           "%lld",
                           r->path, (long long)prod, (long long)total);
    /* the offsets of the valid elements */
    int64_t need;
    if (h->offset_array < 0 || !tsr__mul_i64(valid, (int64_t)osz, &need) ||
        !tsr__add_i64(need, h->offset_array, &need) || need > r->f->size)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: OffsetArrayOffset %lld with %lld valid elements lies past the end "
                           "of the file (%lld bytes)",
                           r->path, (long long)h->offset_array, (long long)valid,
                           (long long)r->f->size);
    size_t nb = (size_t)valid * osz;
    uint8_t *raw = tsr__malloc(a->ctx, nb);
    int64_t *offs = tsr__malloc(a->ctx, (size_t)valid * sizeof *offs);
    if (!raw || !offs) {
        tsr__free(a->ctx, raw);
        tsr__free(a->ctx, offs);
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    }
    rc = rd(r, h->offset_array, raw, nb, "the data offset array");
    for (int64_t i = 0; !rc && i < valid; i++) {
        offs[i] = wide ? (int64_t)le64(raw + 8 * i) : (int64_t)le32(raw + 4 * i);
        if (offs[i] <= 0 || offs[i] >= r->f->size)
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: the offset of data element %lld is %lld, outside the file "
                             "(%lld bytes)",
                             r->path, (long long)i, (long long)offs[i], (long long)r->f->size);
    }
    tsr__free(a->ctx, raw);
    if (rc) {
        tsr__free(a->ctx, offs);
        return rc;
    }
    *offs_out = offs;
    if ((rc = element_header(r, h, 0, offs[0], true)))
        return rc;
    size_t hb = h->data_type_id == SER_2D ? SER_HDR_2D : SER_HDR_1D;
    int64_t elem_bytes = (int64_t)hb + h->len_x * h->len_y * (int64_t)tsr_dtype_size(h->dtype);
    h->stride = valid > 1 ? offs[1] - offs[0] : elem_bytes;
    h->equal = h->stride >= elem_bytes;
    for (int64_t i = 2; h->equal && i < valid; i++)
        h->equal = offs[i] - offs[i - 1] == h->stride;
    if (h->equal) {
        /* the elements tile the file at one stride: the last one fits if
         * its header does; check the middle one's too */
        if (valid > 2 && (rc = element_header(r, h, valid / 2, offs[valid / 2], false)))
            return rc;
        if (valid > 1 && (rc = element_header(r, h, valid - 1, offs[valid - 1], false)))
            return rc;
    } else {
        for (int64_t i = 1; i < valid; i++)
            if ((rc = element_header(r, h, i, offs[i], false)))
                return rc;
    }
    return 0;
}

/* ---- the .emi ---------------------------------------------------------- */

/* The <ObjectInfo> XML of signal `signal` (1-based) from the end of the
 * .emi into *xml (allocated); *xml = NULL if there is none. */
static int emi_object(tsr__open_args_t *a, const char *emi, int64_t signal, char **xml, size_t *len)
{
    *xml = NULL;
    tsr__file_t f;
    char msg[256];
    if (tsr__file_open(&f, emi, msg, sizeof msg))
        return 0; /* no .emi */
    int64_t n = f.size < SER_EMI_TAIL ? f.size : SER_EMI_TAIL;
    char *buf = tsr__malloc(a->ctx, (size_t)n + 1);
    int rc = 0;
    if (!buf)
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    else if (tsr__file_pread(&f, buf, (size_t)n, f.size - n))
        rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the file", emi);
    tsr__file_close(&f);
    if (rc) {
        tsr__free(a->ctx, buf);
        return rc;
    }
    static const char open_tag[] = "<ObjectInfo>", close_tag[] = "</ObjectInfo>";
    const char *p = buf, *e = buf + n;
    for (int64_t k = 1;; k++) {
        const char *s = NULL, *t = NULL;
        for (const char *q = p; q + sizeof open_tag - 1 <= e; q++)
            if (memcmp(q, open_tag, sizeof open_tag - 1) == 0) {
                s = q;
                break;
            }
        if (s)
            for (const char *q = s; q + sizeof close_tag - 1 <= e; q++)
                if (memcmp(q, close_tag, sizeof close_tag - 1) == 0) {
                    t = q + sizeof close_tag - 1;
                    break;
                }
        if (!s || !t)
            break;
        if (k == signal) {
            memmove(buf, s, (size_t)(t - s));
            buf[t - s] = 0;
            *xml = buf;
            *len = (size_t)(t - s);
            return 0;
        }
        p = t;
    }
    tsr__free(a->ctx, buf);
    return 0;
}

typedef struct {
    char mode[256];
    bool camera;
} emi_facts_t;

/* Add what the .emi object says to the metadata m. */
static void emi_meta(tsr__open_args_t *a, const char *emi, const char *xml, size_t len, json_t *m,
                     emi_facts_t *facts)
{
    tsr__xml_t x;
    char msg[256], buf[512];
    if (tsr__xml_parse(&x, a->ctx, xml, len, msg, sizeof msg)) {
        snprintf(buf, sizeof buf, "%s: metadata not read: %s", emi, msg);
        json_object_set_new(m, "emi_warning", json_string(buf));
        tsr__xml_free(&x);
        return;
    }
    int oi = tsr__xml_child(&x, 0, "ObjectInfo");
    if (tsr__xml_text(&x, tsr__xml_child(&x, oi, "AcquireDate"), buf, sizeof buf) && buf[0])
        json_object_set_new(m, "acquire_date", json_string(buf));
    int ai = tsr__xml_child(&x, oi, "AcquireInfo");
    int cam = tsr__xml_child(&x, ai, "CameraNamePath");
    facts->camera = cam >= 0;
    if (tsr__xml_text(&x, cam, buf, sizeof buf) && buf[0])
        json_object_set_new(m, "detector", json_string(buf));
    if (tsr__xml_text(&x, tsr__xml_child(&x, ai, "DwellTimePath"), buf, sizeof buf) && buf[0])
        json_object_set_new(m, "dwell_time_s", json_real(strtod(buf, NULL)));
    if (tsr__xml_text(&x,
                      tsr__xml_path(&x, oi,
                                    "ExperimentalConditions/MicroscopeConditions/"
                                    "AcceleratingVoltage"),
                      buf, sizeof buf) &&
        buf[0])
        json_object_set_new(m, "accelerating_voltage_V", json_real(strtod(buf, NULL)));
    json_t *exp = json_object();
    int root = tsr__xml_path(&x, oi, "ExperimentalDescription/Root");
    for (int d = tsr__xml_child(&x, root, "Data"); d >= 0; d = tsr__xml_next(&x, d)) {
        char label[128], value[256], unit[32], key[192];
        tsr__xml_text(&x, tsr__xml_child(&x, d, "Label"), label, sizeof label);
        tsr__xml_text(&x, tsr__xml_child(&x, d, "Value"), value, sizeof value);
        tsr__xml_text(&x, tsr__xml_child(&x, d, "Unit"), unit, sizeof unit);
        if (!label[0])
            continue;
        if (unit[0])
            snprintf(key, sizeof key, "%s (%s)", label, unit);
        else
            snprintf(key, sizeof key, "%s", label);
        char *end;
        double v = strtod(value, &end);
        bool num = unit[0] && value[0] && end != value && !*end;
        json_object_set_new(exp, key, num ? json_real(v) : json_string(value));
        if (!strcmp(label, "Mode"))
            snprintf(facts->mode, sizeof facts->mode, "%s", value);
        if (!strcmp(label, "Microscope"))
            json_object_set_new(m, "microscope", json_string(value));
    }
    if (facts->mode[0])
        json_object_set_new(m, "mode", json_string(facts->mode));
    if (json_object_size(exp))
        json_object_set_new(m, "experimental_description", exp);
    else
        json_decref(exp);
    tsr__xml_free(&x);
}

/* ---- open -------------------------------------------------------------- */

static json_t *axis(const char *name, double scale, double offset, const char *units)
{
    return json_pack("{s:s, s:f, s:f, s:s}", "name", name, "scale", scale, "offset", offset,
                     "units", units);
}

static const char *unit_name(const char *u)
{
    return !strcmp(u, "meters") ? "m" : !strcmp(u, "1/meters") ? "1/m" : u;
}

static int open_ser(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    char ser_path[4096], emi_path[4096] = "";
    int64_t signal = 1;
    int rc;
    if ((rc = tsr__parse_i64(tsr__params_value(a->params, params, 4, "signal"), &signal, a->err,
                             a->errlen, "ser: signal")))
        return rc;
    size_t plen = strlen(a->path);
    if (plen + 32 > sizeof ser_path)
        return tsr__seterr(a->err, a->errlen, TSR_EINVAL, "%s: path too long", a->path);
    if (has_ext(a->path, "emi")) {
        if (signal < 1 || signal > 999999)
            return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                               "ser: signal must be between 1 and 999999, got %lld",
                               (long long)signal);
        snprintf(emi_path, sizeof emi_path, "%s", a->path);
        snprintf(ser_path, sizeof ser_path, "%.*s_%lld.ser", (int)(plen - 4), a->path,
                 (long long)signal);
        tsr__file_t f;
        char msg[256];
        if ((rc = tsr__file_open(&f, ser_path, msg, sizeof msg)))
            return tsr__seterr(a->err, a->errlen, rc,
                               "%s: its data file for signal %lld, %s, cannot be opened: %s",
                               a->path, (long long)signal, ser_path, msg);
        tsr__file_close(&f);
    } else {
        snprintf(ser_path, sizeof ser_path, "%s", a->path);
        /* <stem>_<N>.ser: the .emi is <stem>.emi, its object N */
        const char *us = strrchr(a->path, '_'), *slash = strrchr(a->path, '/');
        const char *dot = strrchr(a->path, '.');
        if (us && dot && us < dot && (!slash || us > slash) && has_ext(a->path, "ser")) {
            char *end;
            long long k = strtoll(us + 1, &end, 10);
            if (end == dot && end > us + 1 && k >= 1) {
                signal = k;
                snprintf(emi_path, sizeof emi_path, "%.*s.emi", (int)(us - a->path), a->path);
            }
        }
    }
    int file = tsr__dataset_add_file(a, ser_path);
    if (file < 0)
        return file;
    rd_t r = {a, &ds->files[file], ser_path};
    ser_header_t h;
    memset(&h, 0, sizeof h);
    int64_t *offs = NULL;
    ser_state_t *st = tsr__calloc(a->ctx, 1, sizeof *st);
    if (!st)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    ds->state = st;
    rc = parse_header(&r, &h, &offs);
    st->offs = offs; /* freed by close whatever happens */
    if (rc)
        return rc;
    bool two = h.data_type_id == SER_2D;
    int64_t hb = two ? SER_HDR_2D : SER_HDR_1D;
    if (h.equal) {
        st->first = offs[0] + hb;
        st->stride = h.stride;
        tsr__free(a->ctx, offs);
        st->offs = NULL;
    } else {
        for (int64_t i = 0; i < h.valid; i++)
            offs[i] += hb;
    }
    st->rows = h.len_y;
    st->cols = h.len_x;
    st->flip = two;
    ds->dtype = h.dtype;
    ds->big_endian = false;
    ds->image_count = h.valid;

    /* The scan: dimension 1 is the fastest.  Dimensions of size 1 are
     * dropped when there are several. */
    int kept[SER_MAX_DIMS], nk = 0;
    for (int i = h.ndim - 1; i >= 0; i--) /* slowest first */
        if (h.dims[i].size > 1 || h.ndim == 1)
            kept[nk++] = i;
    tsr_shape_t nav = {.ndim = 1, .dims = {h.valid}};
    bool nav_cal = false;
    if (nk > 0) {
        tsr_shape_t full = {.ndim = nk};
        for (int k = 0; k < nk; k++)
            full.dims[k] = h.dims[kept[k]].size;
        if (h.valid == h.total) {
            nav = full;
            nav_cal = true;
        } else if (nk == 1) {
            nav_cal = true; /* the first `valid` positions of the one axis */
        } else {
            int64_t inner = h.total / full.dims[0];
            if (h.valid % inner == 0) {
                nav = full;
                nav.dims[0] = h.valid / inner;
                nav_cal = true;
            }
        }
    }
    tsr_shape_t sig = two ? (tsr_shape_t){.ndim = 2, .dims = {h.len_y, h.len_x}}
                          : (tsr_shape_t){.ndim = 1, .dims = {h.len_x}};
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        return rc;

    /* metadata */
    json_t *m = json_object(), *hdr = json_object(), *dims = json_array();
    if (!m || !hdr || !dims) {
        json_decref(m);
        json_decref(hdr);
        json_decref(dims);
        return tsr__dataset_set_meta(a, NULL);
    }
    json_object_set_new(m, "header", hdr);
    char hex[16];
    snprintf(hex, sizeof hex, "0x%04x", h.version);
    json_object_set_new(hdr, "series_version", json_string(hex));
    snprintf(hex, sizeof hex, "0x%04x", h.data_type_id);
    json_object_set_new(hdr, "data_type_id", json_string(hex));
    snprintf(hex, sizeof hex, "0x%04x", h.tag_type_id);
    json_object_set_new(hdr, "tag_type_id", json_string(hex));
    json_object_set_new(hdr, "total_number_elements", json_integer(h.total));
    json_object_set_new(hdr, "valid_number_elements", json_integer(h.valid));
    json_object_set_new(hdr, "element_dtype", json_string(ser_dtype_name(h.elem_type)));
    json_object_set_new(hdr, "equally_spaced", json_boolean(h.equal));
    for (int i = 0; i < h.ndim; i++) {
        const ser_dim_t *d = &h.dims[i];
        json_array_append_new(dims, json_pack("{s:I, s:f, s:f, s:i, s:s, s:s}", "size",
                                              (json_int_t)d->size, "calibration_offset", d->offset,
                                              "calibration_delta", d->delta, "calibration_element",
                                              (int)d->element, "description", d->desc, "units",
                                              d->units));
    }
    json_object_set_new(hdr, "dimensions", dims);
    if (h.valid < h.total)
        json_object_set_new(m, "note",
                            json_string("the acquisition stopped early: only the elements "
                                        "present (ValidNumberElements) are frames"));

    emi_facts_t facts = {0};
    if (emi_path[0]) {
        char *xml;
        size_t xlen;
        if ((rc = emi_object(a, emi_path, signal, &xml, &xlen))) {
            json_decref(m);
            return rc;
        }
        if (xml) {
            emi_meta(a, emi_path, xml, xlen, m, &facts);
            tsr__free(a->ctx, xml);
            json_object_set_new(m, "files", json_pack("[s, s]", emi_path, ser_path));
        } else if (has_ext(a->path, "emi")) {
            json_object_set_new(m, "files", json_pack("[s, s]", emi_path, ser_path));
        }
    }

    /* Calibrations (TIA's: the value at index `element` is `offset`). */
    json_t *cal = json_object(), *navc = json_array(), *sigc = json_array();
    if (nav_cal && nk > 0 && tsr__shape_eq(&ds->nav, &nav)) {
        for (int k = 0; k < nk; k++) {
            const ser_dim_t *d = &h.dims[kept[k]];
            const char *u = unit_name(d->units);
            const char *name = d->desc;
            if (nk == 2 && !strcmp(u, "m"))
                name = kept[k] == 0 ? "x" : "y";
            json_array_append_new(navc, axis(name, d->delta, d->offset - d->element * d->delta, u));
        }
    }
    if (tsr__shape_eq(&ds->sig, &sig)) {
        if (two) {
            /* TIA does not store the units of image elements: real-space
             * unless the .emi says diffraction (HyperSpy's reading). */
            const char *u = "m";
            bool image_stack = h.ndim >= 1 && !h.dims[0].units[0];
            bool diff_scan = h.ndim >= 1 && h.dims[0].size > 1 && !image_stack;
            if (strstr(facts.mode, "STEM"))
                u = facts.camera || diff_scan ? "1/m" : "m";
            else if (strstr(facts.mode, "Diffraction"))
                u = "1/m";
            json_array_append_new(
                sigc, axis("y", h.cal_delta[1], h.cal_off[1] - h.cal_elem[1] * h.cal_delta[1], u));
            json_array_append_new(
                sigc, axis("x", h.cal_delta[0], h.cal_off[0] - h.cal_elem[0] * h.cal_delta[0], u));
        } else {
            json_array_append_new(sigc, axis("energy", h.cal_delta[0],
                                             h.cal_off[0] - h.cal_elem[0] * h.cal_delta[0], "eV"));
        }
    }
    if (json_array_size(navc))
        json_object_set_new(cal, "nav", navc);
    else
        json_decref(navc);
    json_object_set_new(cal, "sig", sigc);
    json_object_set_new(m, "calibration", cal);
    return tsr__dataset_set_meta(a, m);
}

/* ---- read -------------------------------------------------------------- */

static int read_ser(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                    int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen)
{
    const ser_state_t *st = ds->state;
    size_t es = tsr_dtype_size(ds->dtype), des = tsr_dtype_size(dt);
    int64_t cols = st->cols, rows = st->rows;
    /* the stored pixels [p0, p1) that hold the wanted ones */
    int64_t r0 = sig0 / cols, r1 = (sig0 + siglen - 1) / cols, p0 = sig0, p1 = sig0 + siglen;
    if (st->flip) {
        p0 = (rows - 1 - r1) * cols;
        p1 = (rows - r0) * cols;
    }
    size_t span = (size_t)(p1 - p0) * es;
    unsigned char *o = out;
    int rc;
    for (int64_t i = 0; i < n;) {
        int64_t k = 1;
        size_t bytes = span;
        int64_t off;
        if (st->offs) {
            off = st->offs[img0 + i];
        } else {
            off = st->first + (img0 + i) * st->stride;
            while (i + k < n && (size_t)(k * st->stride) + span <= SER_BATCH_BYTES)
                k++;
            bytes = (size_t)((k - 1) * st->stride) + span;
        }
        if (k == 1 && !st->flip && dt == ds->dtype) { /* straight into the tile */
            if ((rc = tsr__io_fetch(ds, io, 0, off + p0 * (int64_t)es, span, o, err, errlen)))
                return rc;
            o += span;
            i++;
            continue;
        }
        /* a frame that lands misaligned in the batch is first copied to
         * an aligned spot after it before a type conversion (element
         * headers and tags have sizes that are not multiples of 4 or 8;
         * a same-type copy is a memcpy, which does not care) */
        size_t tmp = (bytes + 63) & ~(size_t)63;
        if ((rc = tsr__io_reserve(io, tmp + span)))
            return tsr__seterr(err, errlen, rc, "out of memory");
        if ((rc =
                 tsr__io_fetch(ds, io, 0, off + p0 * (int64_t)es, bytes, io->scratch, err, errlen)))
            return rc;
        for (int64_t j = 0; j < k; j++) {
            const unsigned char *src = (const unsigned char *)io->scratch + j * st->stride;
            if (dt != ds->dtype && (size_t)(j * st->stride) % es) {
                memcpy((unsigned char *)io->scratch + tmp, src, span);
                src = (const unsigned char *)io->scratch + tmp;
            }
            if (!st->flip) {
                tsr__convert(o, dt, src, ds->dtype, false, (size_t)siglen);
            } else {
                for (int64_t r = r0; r <= r1; r++) {
                    int64_t c0 = r == r0 ? sig0 % cols : 0;
                    int64_t c1 = r == r1 ? (sig0 + siglen - 1) % cols + 1 : cols;
                    int64_t s = rows - 1 - r;
                    tsr__convert(o + (size_t)(r * cols + c0 - sig0) * des, dt,
                                 src + (size_t)(s * cols + c0 - p0) * es, ds->dtype, false,
                                 (size_t)(c1 - c0));
                }
            }
            o += (size_t)siglen * des;
        }
        i += k;
    }
    return 0;
}

static void close_ser(tsr_dataset_t *ds)
{
    ser_state_t *st = ds->state;
    if (st) {
        tsr__free(ds->ctx, st->offs);
        tsr__free(ds->ctx, st);
        ds->state = NULL;
    }
}

const tsr__reader_def_t tsr__format_ser = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "ser",
    .description = "FEI/Thermo Fisher TIA series (.ser, or its .emi): 1-D or 2-D elements",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_ser,
    .read = read_ser,
    .close = close_ser,
};
