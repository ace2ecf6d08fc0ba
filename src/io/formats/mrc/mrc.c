/*
 * mrc.c — MRC files (MRC2000/MRC2014: cryo-EM maps, image stacks, and the
 * movies of Direct Electron's DE-Server and Thermo Fisher's Velox).
 *
 * Layout: a 1024-byte header (nx, ny, nz, mode, ..., nsymbt = bytes of
 * extended header at word 24, exttyp at byte 104, "MAP " at byte 208, the
 * machine stamp at 212), nsymbt bytes of extended header, then nz sections
 * of ny × nx pixels, C order.  Each section is a frame: a stack is nav (nz,)
 * × sig (ny, nx); nav_shape reshapes it.  Pixels go through the shared
 * strided reader (modes 0, 1, 2, 4, 6; mode 0 is uint8 in files that carry
 * the IMOD stamp without its "signed bytes" flag).  Modes 3, 12 (float16),
 * 16 and 101 are refused with a clear message.
 *
 * Extended headers: FEI1/FEI2 (Velox, EPU) blocks give microscope facts and
 * the pixel size of the first section; others are skipped.  DE-Server
 * writes "<stem>_info.txt" beside "<stem>_movie.mrc": for a raster scan its
 * scan size gives the default nav shape.  Opening the _info.txt (or the
 * _scan_coordinates.csv) opens the movie beside it.
 */
#include "io/formats/mrc/mrc.h"
#include "io/dataset.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

#define IMOD_STAMP 1146047817
#define INFO_MAX_BYTES (8 << 20)

/* ---- little helpers ---------------------------------------------------- */

static uint32_t rd_u32(const uint8_t *p, bool be)
{
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}
static int32_t rd_i32(const uint8_t *p, bool be)
{
    return (int32_t)rd_u32(p, be);
}
static float rd_f32(const uint8_t *p, bool be)
{
    uint32_t u = rd_u32(p, be);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static double rd_f64(const uint8_t *p, bool be)
{
    uint64_t hi = rd_u32(p + (be ? 0 : 4), be), lo = rd_u32(p + (be ? 4 : 0), be);
    uint64_t u = hi << 32 | lo;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* Copy a fixed-width text field, keeping printable ASCII up to the first
 * NUL and trimming trailing blanks. */
static void text_field(char *dst, size_t cap, const uint8_t *src, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && src[i] && k + 1 < cap; i++)
        dst[k++] = isprint(src[i]) ? (char)src[i] : '?';
    while (k > 0 && dst[k - 1] == ' ')
        k--;
    dst[k] = 0;
}

static bool mode_known(int32_t m)
{
    return m == 0 || m == 1 || m == 2 || m == 3 || m == 4 || m == 6 || m == 12 || m == 16 ||
           m == 101;
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

/* ---- the header -------------------------------------------------------- */

int tsr__mrc_parse_header(const uint8_t *b, size_t n, int64_t file_size, tsr__mrc_header_t *h,
                          char *err, size_t errlen)
{
    memset(h, 0, sizeof *h);
    if (n < TSR__MRC_HEADER_BYTES)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "truncated MRC header: the file has %lld bytes, the header needs %d",
                           (long long)file_size, TSR__MRC_HEADER_BYTES);
    if (memcmp(b + 208, "MAP", 3) != 0) {
        char found[8];
        text_field(found, sizeof found, b + 208, 4);
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "not an MRC file: expected the identifier 'MAP ' at byte 208, found "
                           "'%s' (%02x %02x %02x %02x)",
                           found, b[208], b[209], b[210], b[211]);
    }
    /* Byte order from the machine stamp (0x44 0x44/0x41: little, 0x11
     * 0x11: big); files whose stamp contradicts the mode word are read in
     * the order that makes the mode valid, as mrcfile does. */
    const uint8_t *st = b + 212;
    bool be = st[0] == 0x11;
    if (st[0] != 0x44 && st[0] != 0x11)
        be = !mode_known(rd_i32(b + 12, false)) && mode_known(rd_i32(b + 12, true));
    if (!mode_known(rd_i32(b + 12, be)) && mode_known(rd_i32(b + 12, !be)))
        be = !be;
    h->big_endian = be;

    int32_t nx = rd_i32(b + 0, be), ny = rd_i32(b + 4, be), nz = rd_i32(b + 8, be);
    static const char *const dim_names[3] = {"nx (word 1, columns)", "ny (word 2, rows)",
                                             "nz (word 3, sections)"};
    int32_t dims[3] = {nx, ny, nz};
    for (int i = 0; i < 3; i++)
        if (dims[i] <= 0)
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "MRC header field %s must be > 0, found %d", dim_names[i], dims[i]);
    h->nx = nx;
    h->ny = ny;
    h->nz = nz;
    h->mode = rd_i32(b + 12, be);
    h->mx = rd_i32(b + 28, be);
    h->my = rd_i32(b + 32, be);
    h->mz = rd_i32(b + 36, be);
    for (int i = 0; i < 3; i++) {
        h->cella[i] = rd_f32(b + 40 + 4 * i, be);
        h->origin[i] = rd_f32(b + 196 + 4 * i, be);
    }
    h->dmin = rd_f32(b + 76, be);
    h->dmax = rd_f32(b + 80, be);
    h->dmean = rd_f32(b + 84, be);
    h->ispg = rd_i32(b + 88, be);
    h->nsymbt = rd_i32(b + 92, be);
    text_field(h->exttyp, sizeof h->exttyp, b + 104, 4);
    h->nversion = rd_i32(b + 108, be);
    h->imod = rd_i32(b + 152, be) == IMOD_STAMP;
    h->imod_flags = h->imod ? rd_u32(b + 156, be) : 0;
    h->nlabl = rd_i32(b + 220, be);
    if (h->nlabl < 0 || h->nlabl > 10)
        h->nlabl = h->nlabl < 0 ? 0 : 10;

    switch (h->mode) {
    case 0: h->dtype = h->imod && !(h->imod_flags & 1u) ? TSR_U8 : TSR_I8; break;
    case 1: h->dtype = TSR_I16; break;
    case 2: h->dtype = TSR_F32; break;
    case 4: h->dtype = TSR_C64; break;
    case 6: h->dtype = TSR_U16; break;
    case 3:
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED,
                           "MRC mode 3 (complex int16) is not supported");
    case 12:
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED,
                           "MRC mode 12 (float16) is not supported: Tessera has no float16 "
                           "type; convert the file to mode 2 (float32)");
    case 16:
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, "MRC mode 16 (RGB) is not supported");
    case 101:
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED,
                           "MRC mode 101 (4-bit packed) is not supported");
    default:
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "MRC header field mode (word 4) is %d, expected one of 0, 1, 2, 3, 4, "
                           "6, 12, 16, 101",
                           h->mode);
    }
    if (h->nsymbt < 0)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "MRC header field nsymbt (word 24, extended header bytes) must be >= "
                           "0, found %d",
                           h->nsymbt);
    h->data_offset = TSR__MRC_HEADER_BYTES + (int64_t)h->nsymbt;
    int64_t total;
    if (!tsr__mul_i64(h->nx * h->ny, (int64_t)tsr_dtype_size(h->dtype), &h->frame_bytes) ||
        !tsr__mul_i64(h->frame_bytes, h->nz, &total))
        return tsr__seterr(err, errlen, TSR_EOVERFLOW, "MRC data size overflows");
    if (h->data_offset > file_size)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "the extended header (nsymbt = %d bytes, word 24) ends at byte %lld, "
                           "past the end of the file (%lld bytes)",
                           h->nsymbt, (long long)h->data_offset, (long long)file_size);
    if (file_size - h->data_offset < total)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "truncated MRC file: the header promises nz = %lld sections of %lld x "
                           "%lld %s (%lld bytes from byte %lld), the file holds %lld",
                           (long long)h->nz, (long long)h->ny, (long long)h->nx,
                           tsr_dtype_name(h->dtype), (long long)total, (long long)h->data_offset,
                           (long long)(file_size - h->data_offset));
    return 0;
}

int tsr__mrc_load_f32(tsr_ctx_t *ctx, const char *path, int64_t *ny, int64_t *nx, float **out,
                      char *err, size_t errlen)
{
    tsr__file_t f;
    int rc = tsr__file_open(&f, path, err, errlen);
    if (rc)
        return rc;
    uint8_t hb[TSR__MRC_HEADER_BYTES];
    void *raw = NULL;
    float *data = NULL;
    size_t n = f.size < (int64_t)sizeof hb ? (size_t)f.size : sizeof hb;
    tsr__mrc_header_t h;
    char msg[384];
    if (tsr__file_pread(&f, hb, n, 0)) {
        rc = tsr__seterr(err, errlen, TSR_EIO, "%s: cannot read the MRC header", path);
        goto done;
    }
    if ((rc = tsr__mrc_parse_header(hb, n, f.size, &h, msg, sizeof msg))) {
        rc = tsr__seterr(err, errlen, rc, "%s: %s", path, msg);
        goto done;
    }
    if (h.nz != 1) {
        rc = tsr__seterr(err, errlen, TSR_ECORRUPT,
                         "%s: expected a single image (nz = 1), found nz = %lld sections", path,
                         (long long)h.nz);
        goto done;
    }
    if (tsr__dtype_is_complex(h.dtype)) {
        rc = tsr__seterr(err, errlen, TSR_EUNSUPPORTED,
                         "%s: a complex (mode 4) image cannot be a correction", path);
        goto done;
    }
    size_t count = (size_t)(h.nx * h.ny);
    raw = tsr__malloc(ctx, (size_t)h.frame_bytes);
    data = tsr__malloc(ctx, count * sizeof(float));
    if (!raw || !data) {
        rc = tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory loading %s", path);
        goto done;
    }
    if (tsr__file_pread(&f, raw, (size_t)h.frame_bytes, h.data_offset)) {
        rc = tsr__seterr(err, errlen, TSR_EIO, "%s: cannot read the image", path);
        goto done;
    }
    tsr__convert(data, TSR_F32, raw, h.dtype, h.big_endian && tsr_dtype_size(h.dtype) > 1, count);
    *ny = h.ny;
    *nx = h.nx;
    *out = data;
    data = NULL;
done:
    tsr__free(ctx, raw);
    tsr__free(ctx, data);
    tsr__file_close(&f);
    return rc;
}

/* ---- FEI extended header ----------------------------------------------- */

/* Offsets in the FEI1/FEI2 per-section metadata block (the "MRC2014 FEI
 * extended header" specification; the same layout for both versions up to
 * byte 768). */
enum {
    FEI_SIZE = 0,
    FEI_VERSION = 4,
    FEI_MICROSCOPE = 20,
    FEI_APPLICATION = 52,
    FEI_APP_VERSION = 68,
    FEI_HT = 84,
    FEI_PIXEL_X = 156,
    FEI_PIXEL_Y = 164,
    FEI_INSTRUMENT_MODE = 244,
    FEI_MAGNIFICATION = 289,
    FEI_CAMERA_LENGTH = 301,
    FEI_INTEGRATION_TIME = 419,
    FEI_CAMERA_NAME = 435,
    FEI_STEM_DETECTOR = 519,
    FEI_DWELL_TIME = 571,
    FEI_FRAME_TIME = 579,
};

typedef struct fei {
    json_t *meta; /* NULL if the block is absent or malformed */
    bool present;
    double pixel_x, pixel_y;
    char detector[24];
} fei_t;

static void fei_parse(const uint8_t *e, size_t n, bool be, fei_t *out)
{
    memset(out, 0, sizeof *out);
    if (n < 8)
        return;
    int32_t size = rd_i32(e + FEI_SIZE, be);
    if (size < 8)
        return;
    if ((size_t)size < n)
        n = (size_t)size;
    json_t *m = json_object();
    if (!m)
        return;
    json_object_set_new(m, "metadata_size", json_integer(size));
    json_object_set_new(m, "metadata_version", json_integer(rd_i32(e + FEI_VERSION, be)));
    static const struct {
        const char *key;
        int off;
    } texts[] = {{"microscope", FEI_MICROSCOPE},
                 {"application", FEI_APPLICATION},
                 {"application_version", FEI_APP_VERSION},
                 {"camera_name", FEI_CAMERA_NAME},
                 {"stem_detector", FEI_STEM_DETECTOR}};
    static const struct {
        const char *key;
        int off;
    } reals[] = {{"ht_volts", FEI_HT},
                 {"pixel_size_x_m", FEI_PIXEL_X},
                 {"pixel_size_y_m", FEI_PIXEL_Y},
                 {"magnification", FEI_MAGNIFICATION},
                 {"camera_length_m", FEI_CAMERA_LENGTH},
                 {"integration_time_s", FEI_INTEGRATION_TIME},
                 {"dwell_time_s", FEI_DWELL_TIME},
                 {"frame_time_s", FEI_FRAME_TIME}};
    char t[20];
    for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
        if ((size_t)texts[i].off + 16 > n)
            continue;
        text_field(t, sizeof t, e + texts[i].off, 16);
        if (t[0])
            json_object_set_new(m, texts[i].key, json_string(t));
    }
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
        if ((size_t)reals[i].off + 8 > n)
            continue;
        double v = rd_f64(e + reals[i].off, be);
        if (isfinite(v) && v != 0)
            json_object_set_new(m, reals[i].key, json_real(v));
    }
    int32_t mode = 0;
    if (FEI_INSTRUMENT_MODE + 4 <= n) {
        mode = rd_i32(e + FEI_INSTRUMENT_MODE, be);
        if (mode == 1 || mode == 2)
            json_object_set_new(m, "instrument_mode", json_string(mode == 2 ? "STEM" : "TEM"));
    }
    if (FEI_PIXEL_Y + 8 <= n) {
        out->pixel_x = rd_f64(e + FEI_PIXEL_X, be);
        out->pixel_y = rd_f64(e + FEI_PIXEL_Y, be);
    }
    /* the detector that made the image: in STEM the scan detector */
    const char *det =
        json_string_value(json_object_get(m, mode == 2 ? "stem_detector" : "camera_name"));
    if (det)
        snprintf(out->detector, sizeof out->detector, "%s", det);
    out->meta = m;
    out->present = true;
}

/* ---- DE-Server sidecar ------------------------------------------------- */

/* The value of `key` in "key = value" lines, trimmed, into val. */
static bool info_get(const char *text, const char *key, char *val, size_t cap)
{
    size_t klen = strlen(key);
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        const char *eq = memchr(line, '=', end ? (size_t)(end - line) : strlen(line));
        if (eq) {
            const char *ke = eq;
            while (ke > line && isspace((unsigned char)ke[-1]))
                ke--;
            if ((size_t)(ke - line) == klen && memcmp(line, key, klen) == 0) {
                const char *v = eq + 1, *ve = end ? end : v + strlen(v);
                while (v < ve && isspace((unsigned char)*v))
                    v++;
                while (ve > v && isspace((unsigned char)ve[-1]))
                    ve--;
                size_t k = (size_t)(ve - v) < cap - 1 ? (size_t)(ve - v) : cap - 1;
                memcpy(val, v, k);
                val[k] = 0;
                return true;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return false;
}

static bool info_i64(const char *text, const char *key, int64_t *out)
{
    char v[64], *end;
    if (!info_get(text, key, v, sizeof v))
        return false;
    long long x = strtoll(v, &end, 10);
    if (end == v || *end)
        return false;
    *out = x;
    return true;
}

static bool info_f64(const char *text, const char *key, double *out)
{
    char v[64], *end;
    if (!info_get(text, key, v, sizeof v))
        return false;
    double x = strtod(v, &end);
    if (end == v || !isfinite(x))
        return false;
    *out = x;
    return true;
}

/* Companion files of a DE-Server movie whose opening opens the movie. */
static const char *const de_companions[] = {"_info.txt", "_scan_coordinates.csv"};

static const char *de_companion(const char *path)
{
    for (size_t i = 0; i < sizeof de_companions / sizeof *de_companions; i++)
        if (has_suffix(path, de_companions[i]))
            return de_companions[i];
    return NULL;
}

/* DE-Server names its files "<stem>_<role>.<ext>" (_movie.mrc, _Sum.mrc,
 * _info.txt, ...): the sibling "<stem><suffix>" of path, or NULL if the
 * name has no '_'. */
static char *de_sibling(tsr_ctx_t *ctx, const char *path, const char *suffix)
{
    const char *comp = de_companion(path);
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    size_t stem;
    if (comp) {
        stem = strlen(path) - strlen(comp);
    } else {
        const char *us = strrchr(name, '_');
        if (!us || us == name)
            return NULL;
        stem = (size_t)(us - path);
    }
    size_t sl = strlen(suffix);
    char *s = tsr__malloc(ctx, stem + sl + 1);
    if (s) {
        memcpy(s, path, stem);
        memcpy(s + stem, suffix, sl + 1);
    }
    return s;
}

static int read_text(tsr__open_args_t *a, const char *path, char **out)
{
    return tsr__read_text(a->ctx, path, INFO_MAX_BYTES, TSR__TEXT_TRUNCATE | TSR__TEXT_NUL_SPACE,
                          "a DE-Server info file", out, NULL, a->err, a->errlen);
}

typedef struct de {
    json_t *meta;
    bool nav_ok; /* nav holds the scan shape from the sidecar */
    tsr_shape_t nav;
    char detector[80];
    double diff_px[2];     /* y, x; 0 if not given */
    double specimen_px[2]; /* y, x in nm; 0 if not given */
} de_t;

/* Read the sidecar and derive the scan shape for a movie of nz frames. */
static int de_parse(tsr__open_args_t *a, const char *info_path, int64_t nz, de_t *de)
{
    char *t = NULL;
    int rc = read_text(a, info_path, &t);
    if (rc)
        return rc;
    json_t *m = json_object();
    char v[256], scan_type[64] = "Raster";
    if (!m) {
        tsr__free(a->ctx, t);
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    }
    json_object_set_new(m, "path", json_string(info_path));
    if (info_get(t, "Camera Model", v, sizeof v) && v[0]) {
        snprintf(de->detector, sizeof de->detector, "Direct Electron %.48s", v);
        json_object_set_new(m, "camera_model", json_string(v));
    }
    if (info_get(t, "Server Software Version", v, sizeof v))
        json_object_set_new(m, "software_version", json_string(v));
    double x;
    if (info_f64(t, "Timestamp (seconds since Epoch)", &x))
        json_object_set_new(m, "timestamp", json_real(x));
    if (info_f64(t, "Frames Per Second", &x))
        json_object_set_new(m, "frames_per_second", json_real(x));
    if (info_f64(t, "Diffraction Pixel Size Y", &x) && x > 0)
        de->diff_px[0] = x;
    if (info_f64(t, "Diffraction Pixel Size X", &x) && x > 0)
        de->diff_px[1] = x;
    if (info_f64(t, "Specimen Pixel Size Y (nanometers)", &x) && x > 0)
        de->specimen_px[0] = x;
    if (info_f64(t, "Specimen Pixel Size X (nanometers)", &x) && x > 0)
        de->specimen_px[1] = x;

    /* The scan: a raster scan of Size Y × Size X positions (or its ROI),
     * repeated `Repeats` times, one frame per position. */
    bool scanning = info_get(t, "Scan - Enable", v, sizeof v) && strcmp(v, "Enable") == 0;
    info_get(t, "Scan - Type", scan_type, sizeof scan_type);
    int64_t sx = 0, sy = 0, rx = 0, ry = 0, rep = 1;
    info_i64(t, "Scan - Size X", &sx);
    info_i64(t, "Scan - Size Y", &sy);
    bool roi = info_get(t, "Scan - ROI Enable", v, sizeof v) && strcmp(v, "Enable") == 0;
    if (roi) {
        info_i64(t, "Scan - ROI Size X", &rx);
        info_i64(t, "Scan - ROI Size Y", &ry);
    }
    info_i64(t, "Scan - Repeats", &rep);
    json_object_set_new(m, "scan_enabled", json_boolean(scanning));
    json_object_set_new(m, "scan_type", json_string(scan_type));
    if (sx > 0 && sy > 0)
        json_object_set_new(m, "scan_size", json_pack("[I,I]", (json_int_t)sy, (json_int_t)sx));
    if (roi && rx > 0 && ry > 0)
        json_object_set_new(m, "scan_roi_size", json_pack("[I,I]", (json_int_t)ry, (json_int_t)rx));
    const char *note = NULL;
    if (!scanning) {
        note = "no scan (Scan - Enable is not Enable): frames in acquisition order";
    } else if (strcmp(scan_type, "Raster") != 0) {
        note = "not a raster scan: frames in acquisition order; the scan positions are in the "
               "_scan_coordinates.csv beside the movie";
    } else {
        int64_t gy = roi && rx > 0 && ry > 0 ? ry : sy, gx = roi && rx > 0 && ry > 0 ? rx : sx;
        int64_t per = 0;
        if (gy > 0 && gx > 0 && gy <= INT32_MAX && gx <= INT32_MAX)
            per = gy * gx;
        if (per > 0 && per == nz) {
            de->nav = (tsr_shape_t){.ndim = 2, .dims = {gy, gx}};
            de->nav_ok = true;
        } else if (per > 0 && rep > 1 && rep <= INT32_MAX && per * rep == nz) {
            de->nav = (tsr_shape_t){.ndim = 3, .dims = {rep, gy, gx}};
            de->nav_ok = true;
        } else {
            note = "the scan size does not match the number of frames: frames in acquisition "
                   "order";
        }
    }
    if (note)
        json_object_set_new(m, "note", json_string(note));
    char *csv = de_sibling(a->ctx, info_path, "_scan_coordinates.csv");
    if (csv && file_exists(csv))
        json_object_set_new(m, "scan_coordinates", json_string(csv));
    tsr__free(a->ctx, csv);
    tsr__free(a->ctx, t);
    de->meta = m;
    return 0;
}

/* ---- the reader -------------------------------------------------------- */

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "",
     "reshape the scan (default: the sections; for DE-Server movies the raster scan of the "
     "_info.txt beside the file)",
     false},
    {"sig_shape", "shape", "", "reshape the frames (default: ny, nx)", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
    {"de_info", "string", "auto",
     "DE-Server metadata file: auto (<stem>_info.txt beside the file, if present), none, or a "
     "path",
     false},
};

static const char *const exts[] = {"mrc", "mrcs", "map", "st", "ali", "rec", NULL};

static int probe(const char *path, const uint8_t *head, size_t n)
{
    if (n >= TSR__MRC_HEADER_BYTES && memcmp(head + 208, "MAP", 3) == 0) {
        int32_t m = rd_i32(head + 12, false), mb = rd_i32(head + 12, true);
        return mode_known(m) || mode_known(mb) ? 90 : 60;
    }
    if (de_companion(path)) {
        bool text = has_suffix(path, ".csv");
        for (size_t i = 0; !text && i + 12 <= n; i++)
            text = !memcmp(head + i, "Camera Model", 12) ||
                   (i + 23 <= n && !memcmp(head + i, "Server Software Version", 23));
        return text ? 60 : 0;
    }
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && (!slash || dot > slash))
        for (const char *const *e = exts; *e; e++)
            if (strcasecmp(dot + 1, *e) == 0)
                return 10; /* open explains what is wrong */
    return 0;
}

static json_t *axis(const char *name, double scale, double offset, const char *units)
{
    return json_pack("{s:s, s:f, s:f, s:s}", "name", name, "scale", scale, "offset", offset,
                     "units", units);
}

/* Calibrations: sig from the FEI pixel size, else the DE diffraction pixel
 * size, else cella / mx (Å, reported in nm); nav from the DE specimen
 * pixel size for a scan, or cella.z / mz for a plain stack.  Only axes
 * whose shape is the stored one are calibrated. */
static json_t *calibration(const tsr_dataset_t *ds, const tsr__mrc_header_t *h, const fei_t *fei,
                           const de_t *de, bool nav_is_stack, bool nav_is_scan)
{
    bool any = false;
    json_t *nav = json_array(), *sig = json_array();
    bool sig_stored = ds->sig.ndim == 2 && ds->sig.dims[0] == h->ny && ds->sig.dims[1] == h->nx;
    static const char *const yx[2] = {"y", "x"}, *const kyx[2] = {"ky", "kx"};
    for (int i = 0; i < ds->sig.ndim; i++) {
        double scale = 1, offset = 0;
        const char *units = "", *name = ds->sig.ndim == 2 ? yx[i] : "sig";
        if (sig_stored) {
            double fp = i == 0 ? fei->pixel_y : fei->pixel_x;
            double cell = h->cella[1 - i], m = i == 0 ? h->my : h->mx;
            if (fei->present && isfinite(fp) && fp > 0) {
                scale = fp * 1e9;
                units = "nm";
            } else if (de->diff_px[i] > 0) {
                scale = de->diff_px[i];
                units = "nm^-1";
                name = kyx[i];
            } else if (isfinite(cell) && cell > 0 && m > 0) {
                scale = cell / m / 10.0;
                offset = isfinite(h->origin[1 - i]) ? h->origin[1 - i] / 10.0 : 0;
                units = "nm";
            }
        }
        any |= units[0] != 0;
        json_array_append_new(sig, axis(name, scale, offset, units));
    }
    for (int i = 0; i < ds->nav.ndim; i++) {
        double scale = 1, offset = 0;
        const char *units = "", *name = "nav";
        if (nav_is_stack) {
            name = "z";
            if (isfinite(h->cella[2]) && h->cella[2] > 0 && h->mz > 0) {
                scale = h->cella[2] / h->mz / 10.0;
                offset = isfinite(h->origin[2]) ? h->origin[2] / 10.0 : 0;
                units = "nm";
            }
        } else if (nav_is_scan) {
            int k = i - (ds->nav.ndim - 2); /* y, x are the last two */
            name = k == 0 ? "y" : k == 1 ? "x" : "repeat";
            if (k >= 0 && de->specimen_px[k] > 0) {
                scale = de->specimen_px[k];
                units = "nm";
            }
        }
        any |= units[0] != 0;
        json_array_append_new(nav, axis(name, scale, offset, units));
    }
    if (!any) {
        json_decref(nav);
        json_decref(sig);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "nav", nav, "sig", sig);
}

static json_t *header_meta(const tsr__mrc_header_t *h, const uint8_t *b)
{
    json_t *labels = json_array();
    for (int i = 0; i < h->nlabl; i++) {
        char l[81];
        text_field(l, sizeof l, b + 224 + 80 * i, 80);
        json_array_append_new(labels, json_string(l));
    }
    json_t *m = json_pack(
        "{s:I, s:I, s:I, s:i, s:s, s:[i,i,i], s:[f,f,f], s:[f,f,f], s:f, s:f, s:f, s:i, s:i, "
        "s:s, s:i, s:s, s:o}",
        "nx", (json_int_t)h->nx, "ny", (json_int_t)h->ny, "nz", (json_int_t)h->nz, "mode", h->mode,
        "mode_dtype", tsr_dtype_name(h->dtype), "mxyz", h->mx, h->my, h->mz, "cella",
        (double)h->cella[0], (double)h->cella[1], (double)h->cella[2], "origin",
        (double)h->origin[0], (double)h->origin[1], (double)h->origin[2], "dmin", (double)h->dmin,
        "dmax", (double)h->dmax, "dmean", (double)h->dmean, "ispg", h->ispg, "nsymbt", h->nsymbt,
        "exttyp", h->exttyp, "nversion", h->nversion, "byte_order",
        h->big_endian ? "big" : "little", "labels", labels);
    if (m && h->imod)
        json_object_set_new(m, "imod_flags", json_integer(h->imod_flags));
    return m;
}

/* json_pack's "f" refuses NaN and infinities: replace them by 0 in a copy
 * of the header used only for the metadata. */
static void sanitize(tsr__mrc_header_t *h)
{
    float *f[] = {&h->cella[0],  &h->cella[1], &h->cella[2], &h->origin[0], &h->origin[1],
                  &h->origin[2], &h->dmin,     &h->dmax,     &h->dmean};
    for (size_t i = 0; i < sizeof f / sizeof *f; i++)
        if (!isfinite(*f[i]))
            *f[i] = 0;
}

static int open_mrc(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    tsr_ctx_t *ctx = a->ctx;
    char *movie = NULL, *info = NULL;
    de_t de = {0};
    fei_t fei = {0};
    json_t *meta = NULL;
    uint8_t *buf = NULL;
    int rc = 0;
    const char *data_path = a->path;

    /* a DE-Server sidecar opens the movie beside it */
    if (de_companion(a->path)) {
        movie = de_sibling(ctx, a->path, "_movie.mrc");
        if (!movie)
            return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        if (!file_exists(movie)) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND,
                             "%s: a DE-Server companion file, but the movie %s beside it is "
                             "missing",
                             a->path, movie);
            goto done;
        }
        data_path = movie;
    }
    int file = tsr__dataset_add_file(a, data_path);
    if (file < 0) {
        rc = file;
        goto done;
    }
    int64_t size = ds->files[file].size;
    size_t n = size < 2 * TSR__MRC_HEADER_BYTES ? (size_t)size : 2 * TSR__MRC_HEADER_BYTES;
    buf = tsr__malloc(ctx, n ? n : 1);
    if (!buf) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    if (tsr__file_pread(&ds->files[file], buf, n, 0)) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the header", data_path);
        goto done;
    }
    tsr__mrc_header_t h;
    char msg[384];
    if ((rc = tsr__mrc_parse_header(buf, n, size, &h, msg, sizeof msg))) {
        rc = tsr__seterr(a->err, a->errlen, rc, "%s: %s", data_path, msg);
        goto done;
    }
    ds->dtype = h.dtype;
    ds->big_endian = h.big_endian && tsr_dtype_size(h.dtype) > 1;
    ds->image_count = h.nz;

    /* FEI1/FEI2: the first section's metadata block */
    if (!strcmp(h.exttyp, "FEI1") || !strcmp(h.exttyp, "FEI2")) {
        size_t avail = n - TSR__MRC_HEADER_BYTES;
        fei_parse(buf + TSR__MRC_HEADER_BYTES, avail < (size_t)h.nsymbt ? avail : (size_t)h.nsymbt,
                  h.big_endian, &fei);
    }

    /* DE-Server sidecar */
    const char *de_s = tsr__params_value(a->params, params, 4, "de_info");
    if (de_s && !strcmp(de_s, "auto")) {
        info = de_sibling(ctx, a->path, "_info.txt");
        if (info && !file_exists(info)) {
            tsr__free(ctx, info);
            info = NULL;
        }
    } else if (de_s && strcmp(de_s, "none") != 0 && de_s[0]) {
        info = tsr__strdup(ctx, de_s);
        if (info && !file_exists(info)) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND, "%s: de_info file %s does not exist",
                             data_path, info);
            goto done;
        }
    }
    if (info && (rc = de_parse(a, info, h.nz, &de)))
        goto done;

    tsr_shape_t sig = {.ndim = 2, .dims = {h.ny, h.nx}};
    tsr_shape_t nav = de.nav_ok ? de.nav : (tsr_shape_t){.ndim = 1, .dims = {h.nz}};
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        goto done;
    if ((rc = tsr__dataset_add_segment(a, file, 0, h.nz, h.data_offset, h.frame_bytes)))
        goto done;

    /* metadata */
    bool user_nav = tsr_params_get(a->params, "nav_shape") != NULL;
    tsr__mrc_header_t hs = h;
    sanitize(&hs);
    meta = json_pack("{s:s, s:o}", "path", data_path, "header", header_meta(&hs, buf));
    if (!meta) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    if (info)
        json_object_set_new(meta, "files", json_pack("[s,s]", data_path, info));
    if (fei.meta) {
        json_object_set_new(meta, "extended_header", fei.meta);
        fei.meta = NULL;
    }
    if (de.meta) {
        json_object_set_new(meta, "de_info", de.meta);
        if (de.nav_ok && !user_nav)
            json_object_set_new(meta, "nav_from", json_string("de_info scan size"));
        de.meta = NULL;
    }
    const char *detector = fei.detector[0] ? fei.detector : de.detector[0] ? de.detector : NULL;
    if (detector)
        json_object_set_new(meta, "detector", json_string(detector));
    json_t *cal = calibration(ds, &hs, &fei, &de, !user_nav && !de.nav_ok, !user_nav && de.nav_ok);
    if (cal)
        json_object_set_new(meta, "calibration", cal);
    rc = tsr__dataset_set_meta(a, meta);
    meta = NULL;
done:
    json_decref(meta);
    json_decref(de.meta);
    json_decref(fei.meta);
    tsr__free(ctx, buf);
    tsr__free(ctx, movie);
    tsr__free(ctx, info);
    return rc;
}

const tsr__reader_def_t tsr__format_mrc = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "mrc",
    .description = "MRC2014 maps and image stacks (modes 0, 1, 2, 4, 6), incl. FEI/Velox "
                   "extended headers and DE-Server movies with their _info.txt",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_mrc,
};
