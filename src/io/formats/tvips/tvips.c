/*
 * tvips.c — TVIPS camera recordings (.tvips), single files and series split
 * into parts NAME_000.tvips, NAME_001.tvips, ...
 *
 * Layout (little-endian), as documented by HyperSpy's and LiberTEM's readers:
 * part _000 starts with a 256-byte series header (i32: size = 256, version
 * 1 or 2, dimx, dimy, bits per pixel 8 or 16, offsetx, offsety, binx, biny,
 * pixel size [nm], high tension [kV], total magnification, image header bytes
 * (version 2); 204 unused bytes).  Then, in every part, image records follow
 * back to back: an image header (12 bytes in version 1: counter, unix time,
 * milliseconds; the series header's size in version 2) and dimy x dimx
 * pixels.  Later parts hold no series header; records never straddle parts.
 * So each part is one segment of the shared strided reader.
 *
 * The scan start.  A camera records continuously and the scan starts some
 * frames into the recording.  Version 2 image headers say where the scan
 * was: the rotator index (u32 at byte 48, 1-based scan position, 0 before the
 * scan) and, in headers of at least 76 bytes, the scan position (f32 x at
 * byte 68, y at byte 72).  When sync_offset or nav_shape is not given, open
 * finds the scan from them (see detect_scan); the result is in meta "scan".
 */
#include "io/dataset.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#define TVIPS_HEADER 256
#define TVIPS_V1_IMG_HEADER 12
#define TVIPS_MAX_IMG_HEADER (1 << 20)
#define TVIPS_MAX_PARTS 100000
/* LiberTEM's bound for the search of the scan start by scan position. */
#define TVIPS_SCAN_SEARCH 4096
#define TVIPS_ROW_SEARCH 65536

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "",
     "scan shape (default: detected from the image headers, else all frames as a stack)", false},
    {"sig_shape", "shape", "", "frame shape (default: dimy,dimx from the header)", false},
    {"sync_offset", "int", "",
     "frames to skip at the start (positive) or blank frames to insert (negative); default: "
     "the first frame of the scan, detected from the image headers (0 if none is found)",
     false},
};

static const char *const exts[] = {"tvips", NULL};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static float rdf32(const uint8_t *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static bool header_plausible(const uint8_t *h, size_t n)
{
    if (n < TVIPS_HEADER || rd32(h) != TVIPS_HEADER)
        return false;
    uint32_t v = rd32(h + 4), bpp = rd32(h + 16), dx = rd32(h + 8), dy = rd32(h + 12);
    return (v == 1 || v == 2) && (bpp == 8 || bpp == 16) && dx > 0 && dy > 0 && dx <= 65536 &&
           dy <= 65536;
}

static bool has_tvips_ext(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    return dot && (!slash || dot > slash) && strcasecmp(dot, ".tvips") == 0;
}

static int probe(const char *path, const uint8_t *head, size_t n)
{
    if (header_plausible(head, n))
        return has_tvips_ext(path) ? 95 : 70;
    /* A later part of a series has no header of its own. */
    return has_tvips_ext(path) ? 30 : 0;
}

/* ---- series parts ------------------------------------------------------ */

/* If path is NAME_DDD.ext (digits), the position of DDD and its width. */
static bool part_suffix(const char *path, size_t *pos, int *width)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return false;
    const char *d = dot;
    while (d > path && d[-1] >= '0' && d[-1] <= '9')
        d--;
    if (d == dot || d == path || d[-1] != '_' || dot - d > 9)
        return false;
    *pos = (size_t)(d - path);
    *width = (int)(dot - d);
    return true;
}

/* The path of part k of the series that path belongs to (malloc'd). */
static char *part_path(tsr_ctx_t *ctx, const char *path, size_t pos, int width, long k)
{
    const char *ext = strrchr(path, '.');
    size_t n = pos + 24 + strlen(ext);
    char *p = tsr__malloc(ctx, n);
    if (p)
        snprintf(p, n, "%.*s%0*ld%s", (int)pos, path, width, k, ext);
    return p;
}

static bool file_exists(const char *path)
{
    uint8_t b;
    return tsr__file_head(path, &b, 0) >= 0;
}

/* ---- the scan ---------------------------------------------------------- */

typedef struct scan {
    const char *method; /* "scan_position", "rotator_index", "none" or "not_run" */
    int64_t first;      /* first frame of the scan */
    tsr_shape_t nav;    /* detected scan shape (ndim 0: none) */
    int64_t last;       /* rotator: last frame of the scan */
    int64_t positions;  /* rotator: its rotator index (the number of scan positions) */
    bool regular;       /* rotator: one frame per position, in order, from position 1 */
} scan_t;

/* Read n bytes at byte `at` of image i's header. */
static int image_header(const tsr_dataset_t *ds, int64_t hb, int64_t i, int64_t at, uint8_t *buf,
                        size_t n)
{
    for (int s = 0; s < ds->n_segs; s++) {
        const tsr__segment_t *g = &ds->segs[s];
        if (i >= g->first && i < g->first + g->count)
            return tsr__file_pread(&ds->files[g->file], buf, n,
                                   g->offset - hb + (i - g->first) * g->stride + at)
                       ? TSR_EIO
                       : 0;
    }
    return TSR_ERANGE;
}

/* Scan position (y, x) of image i, truncated to integers like LiberTEM;
 * values that are not finite or absurd become -1. */
static int scan_pos(const tsr_dataset_t *ds, int64_t hb, int64_t i, long *y, long *x)
{
    uint8_t b[8];
    int rc = image_header(ds, hb, i, 68, b, sizeof b);
    if (rc)
        return rc;
    float fx = rdf32(b), fy = rdf32(b + 4);
    *x = isfinite(fx) && fx > -1e9f && fx < 1e9f ? (long)fx : -1;
    *y = isfinite(fy) && fy > -1e9f && fy < 1e9f ? (long)fy : -1;
    return 0;
}

/* The scan position method (LiberTEM's): the scan starts at the frame at
 * (y, x) = (0, 0) followed by one at (0, 1), searched in the first 4096
 * frames; the scan is 1 + the largest x before x first decreases wide, and
 * as many whole rows high as the frames from the start make. */
static int detect_by_position(const tsr_dataset_t *ds, int64_t hb, scan_t *sc)
{
    int64_t n = ds->image_count, lim = n < TVIPS_SCAN_SEARCH ? n : TVIPS_SCAN_SEARCH;
    long y0, x0, y, x;
    int64_t start = -1;
    int rc;
    if (lim < 2)
        return 0;
    if ((rc = scan_pos(ds, hb, 0, &y0, &x0)))
        return rc;
    for (int64_t i = 1; i < lim && start < 0; i++) {
        if ((rc = scan_pos(ds, hb, i, &y, &x)))
            return rc;
        if (y0 == 0 && x0 == 0 && y == 0 && x == 1)
            start = i - 1;
        y0 = y;
        x0 = x;
    }
    if (start < 0)
        return 0;
    sc->method = "scan_position";
    sc->first = start;
    long maxx = 1;
    for (int64_t i = start + 2; i < n && i < start + TVIPS_ROW_SEARCH; i++) {
        if ((rc = scan_pos(ds, hb, i, &y, &x)))
            return rc;
        if (x < maxx) {
            int64_t w = (int64_t)maxx + 1, rows = (n - start) / w;
            if (rows >= 1)
                sc->nav = (tsr_shape_t){.ndim = 2, .dims = {rows, w}};
            break;
        }
        maxx = x;
    }
    return 0;
}

/* The rotator index method (HyperSpy's scan_shape="auto"): the scan runs
 * from the frame before the first increase of the rotator index (the frame
 * after it if that one's index is 0) to the frame of its last increase; its
 * index there is the number of scan positions, a square scan if that is a
 * square number.  A shape is only given when the frames map one to one onto
 * positions 1, 2, ...; where the camera repeated or skipped positions the
 * frames are left as a stack from the scan start.  Reads every header once. */
static int detect_by_rotator(const tsr_dataset_t *ds, int64_t hb, scan_t *sc)
{
    int64_t start = -1, last = -1, brk = -1;
    uint32_t prev = 0, r_start = 0, r_last = 0;
    for (int s = 0; s < ds->n_segs; s++) {
        const tsr__segment_t *g = &ds->segs[s];
        for (int64_t k = 0; k < g->count; k++) {
            int64_t i = g->first + k;
            uint8_t b[4];
            if (tsr__file_pread(&ds->files[g->file], b, 4, g->offset - hb + k * g->stride + 48))
                return TSR_EIO;
            uint32_t r = rd32(b);
            if (i > 0 && r > prev) {
                if (start < 0) {
                    start = prev == 0 ? i : i - 1;
                    r_start = prev == 0 ? r : prev;
                }
                last = i;
                r_last = r;
            }
            if (start >= 0 && i > start && brk < 0 && (int64_t)r != (int64_t)r_start + (i - start))
                brk = i;
            prev = r;
        }
    }
    if (start < 0)
        return 0;
    sc->method = "rotator_index";
    sc->first = start;
    sc->last = last;
    sc->positions = r_last;
    sc->regular = r_start == 1 && (brk < 0 || brk > last);
    if (sc->regular) {
        int64_t side = (int64_t)llround(sqrt((double)r_last));
        sc->nav = side * side == (int64_t)r_last
                      ? (tsr_shape_t){.ndim = 2, .dims = {side, side}}
                      : (tsr_shape_t){.ndim = 1, .dims = {(int64_t)r_last}};
    }
    return 0;
}

/* ---- open -------------------------------------------------------------- */

static int open_tvips(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    tsr_ctx_t *ctx = a->ctx;
    size_t pos = 0;
    int width = 0, rc = 0;
    bool series = part_suffix(a->path, &pos, &width);
    char *p0 = series ? part_path(ctx, a->path, pos, width, 0) : tsr__strdup(ctx, a->path);
    char *pk = NULL;
    json_t *files = NULL;
    if (!p0)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    if (series && strcmp(p0, a->path) != 0 && !file_exists(p0)) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND,
                         "%s: the first part of this TVIPS series, %s, which holds the series "
                         "header, is missing",
                         a->path, p0);
        goto done;
    }
    int file = tsr__dataset_add_file(a, p0);
    if (file < 0) {
        rc = file;
        goto done;
    }
    uint8_t h[TVIPS_HEADER];
    const tsr__file_t *f0 = &ds->files[file];
    if (f0->size < TVIPS_HEADER) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: truncated TVIPS file: the series header needs %d bytes, the file "
                         "has %lld",
                         p0, TVIPS_HEADER, (long long)f0->size);
        goto done;
    }
    if (tsr__file_pread(f0, h, sizeof h, 0)) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the series header", p0);
        goto done;
    }
    uint32_t hsize = rd32(h), version = rd32(h + 4), dimx = rd32(h + 8), dimy = rd32(h + 12),
             bpp = rd32(h + 16);
    if (hsize != TVIPS_HEADER) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: TVIPS series header size is %u, expected %d (not a TVIPS file, or "
                         "not the first part of a series)",
                         p0, hsize, TVIPS_HEADER);
        goto done;
    }
    if (version != 1 && version != 2) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: TVIPS header version is %u, expected 1 or 2", p0, version);
        goto done;
    }
    if (bpp != 8 && bpp != 16) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s: TVIPS bits per pixel is %u, expected 8 or 16", p0, bpp);
        goto done;
    }
    if (dimx == 0 || dimy == 0 || dimx > 65536 || dimy > 65536) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: TVIPS image size dimx = %u, dimy = %u; expected 1 to 65536", p0, dimx,
                         dimy);
        goto done;
    }
    int64_t hb = TVIPS_V1_IMG_HEADER;
    if (version == 2) {
        hb = rd32(h + 48);
        if (hb < TVIPS_V1_IMG_HEADER || hb > TVIPS_MAX_IMG_HEADER) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: TVIPS image header bytes is %lld, expected %d to %d", p0,
                             (long long)hb, TVIPS_V1_IMG_HEADER, TVIPS_MAX_IMG_HEADER);
            goto done;
        }
    }
    int64_t rec = hb + (int64_t)dimx * dimy * (bpp / 8);

    /* The parts: _000, _001, ... while they exist. */
    files = json_array();
    if (!files) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    json_array_append_new(files, json_string(p0));
    for (long k = 1; series && k < TVIPS_MAX_PARTS; k++) {
        pk = part_path(ctx, a->path, pos, width, k);
        if (!pk) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
            goto done;
        }
        if (!file_exists(pk))
            break;
        int fk = tsr__dataset_add_file(a, pk);
        if (fk < 0) {
            rc = fk;
            goto done;
        }
        json_array_append_new(files, json_string(pk));
        tsr__free(ctx, pk);
        pk = NULL;
    }
    int64_t total = 0, trailing = 0, bytes = 0;
    for (int k = 0; k < ds->n_files; k++) {
        int64_t start = k == 0 ? TVIPS_HEADER : 0, size = ds->files[k].size - start;
        int64_t n = size / rec, r = size % rec;
        bytes += size;
        if (r && k + 1 < ds->n_files) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: TVIPS series part %d holds %lld bytes of image records, not a "
                             "multiple of the record size %lld (image header %lld + %u x %u "
                             "pixels at %u bits); only the last part may end early",
                             ds->file_paths[k], k, (long long)size, (long long)rec, (long long)hb,
                             dimy, dimx, bpp);
            goto done;
        }
        trailing = r;
        if (n > 0 && (rc = tsr__dataset_add_segment(a, k, total, n, start + hb, rec)))
            goto done;
        total += n;
    }
    if (total == 0) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: truncated TVIPS file: no whole image record (%lld bytes: image "
                         "header %lld + %u x %u pixels at %u bits); the file%s hold%s %lld "
                         "bytes after the series header",
                         p0, (long long)rec, (long long)hb, dimy, dimx, bpp,
                         ds->n_files > 1 ? "s" : "", ds->n_files > 1 ? "" : "s", (long long)bytes);
        goto done;
    }
    ds->image_count = total;
    ds->dtype = bpp == 16 ? TSR_U16 : TSR_U8;
    ds->big_endian = false;

    /* The scan, when the user left sync_offset or nav_shape to us. */
    bool so_given = tsr_params_get(a->params, "sync_offset") != NULL;
    bool nav_given = tsr_params_get(a->params, "nav_shape") != NULL;
    scan_t sc = {.method = "none"};
    if (so_given && nav_given) {
        sc.method = "not_run";
    } else if (version == 2) {
        if (hb >= 76 && (rc = detect_by_position(ds, hb, &sc)))
            goto ioerr;
        if (!strcmp(sc.method, "none") && hb >= 52 && (rc = detect_by_rotator(ds, hb, &sc)))
            goto ioerr;
    }
    tsr_shape_t sig = {.ndim = 2, .dims = {dimy, dimx}}, nav = sc.nav;
    if (nav.ndim == 0)
        nav = (tsr_shape_t){.ndim = 1, .dims = {total - (so_given ? 0 : sc.first)}};
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        goto done;
    if (!so_given)
        ds->sync_offset = sc.first;

    /* Metadata. */
    uint8_t ih[28] = {0};
    size_t ihn = hb < (int64_t)sizeof ih ? (size_t)hb : sizeof ih;
    if ((rc = image_header(ds, hb, 0, 0, ih, ihn)))
        goto ioerr;
    unsigned mode = ihn >= 28 ? rd32(ih + 24) : 0;
    json_t *hdr =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "size",
                  (json_int_t)hsize, "version", (json_int_t)version, "dimx", (json_int_t)dimx,
                  "dimy", (json_int_t)dimy, "bitsperpixel", (json_int_t)bpp, "offsetx",
                  (json_int_t)(int32_t)rd32(h + 20), "offsety", (json_int_t)(int32_t)rd32(h + 24),
                  "binx", (json_int_t)rd32(h + 28), "biny", (json_int_t)rd32(h + 32), "pixelsize",
                  (json_int_t)rd32(h + 36), "ht", (json_int_t)rd32(h + 40), "magtotal",
                  (json_int_t)rd32(h + 44), "frameheaderbytes", (json_int_t)hb);
    json_t *scj = json_pack("{s:s, s:I}", "method", sc.method, "first_frame", (json_int_t)sc.first);
    if (scj && !strcmp(sc.method, "rotator_index")) {
        json_object_set_new(scj, "last_frame", json_integer(sc.last));
        json_object_set_new(scj, "positions", json_integer(sc.positions));
        json_object_set_new(scj, "regular", json_boolean(sc.regular));
    }
    const char *units = mode == 2 ? "1/nm" : "nm";
    double ps = (double)rd32(h + 36);
    json_t *sigc =
        json_pack("[{s:s, s:f, s:f, s:s}, {s:s, s:f, s:f, s:s}]", "name", "dy", "scale", ps,
                  "offset", (double)(int32_t)rd32(h + 24), "units", units, "name", "dx", "scale",
                  ps, "offset", (double)(int32_t)rd32(h + 20), "units", units);
    json_t *m = json_pack("{s:o, s:s, s:o, s:{s:o}, s:I}", "header", hdr, "detector",
                          "TVIPS camera", "scan", scj, "calibration", "sig", sigc, "sync_offset",
                          (json_int_t)ds->sync_offset);
    if (m && mode)
        json_object_set_new(m, "mode",
                            json_string(mode == 2   ? "diffraction"
                                        : mode == 1 ? "imaging"
                                                    : "unknown"));
    if (m && ihn >= 12 && rd32(ih + 4)) {
        time_t t = (time_t)rd32(ih + 4);
        struct tm tm;
        char buf[40], iso[64];
        if (gmtime_r(&t, &tm)) {
            strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
            snprintf(iso, sizeof iso, "%s.%03uZ", buf, rd32(ih + 8) % 1000);
            json_object_set_new(m, "acquisition_time", json_string(iso));
        }
    }
    if (m && trailing)
        json_object_set_new(m, "trailing_bytes", json_integer(trailing));
    if (m && ds->n_files > 1) {
        json_object_set_new(m, "files", files);
        files = NULL;
    }
    rc = tsr__dataset_set_meta(a, m);
    goto done;
ioerr:
    rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the image headers", p0);
done:
    json_decref(files);
    tsr__free(ctx, pk);
    tsr__free(ctx, p0);
    return rc;
}

const tsr__reader_def_t tsr__format_tvips = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "tvips",
    .description = "TVIPS camera recording (.tvips), single files and series _000, _001, ...; "
                   "8/16-bit; the scan start is found from the image headers",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_tvips,
};
