/*
 * mib.c — Quantum Detectors Merlin (Medipix3) MIB files: one or more .mib
 * files of frames, each frame preceded by an ASCII header, and an optional
 * .hdr acquisition header (text) that names the scan.
 *
 * A frame header is comma-separated: "MQ1", sequence number, header size in
 * bytes, number of chips, width, height, pixel type (U08, U16, U32: big-endian
 * counters; R64: the raw readout), chip layout ("1x1", "2x2", "Nx1"), chip
 * select, time stamp, shutter time, counter, colour mode, gain mode, eight
 * thresholds, per-chip DACs, and (newer software) "MQ1A", an extended time
 * stamp, the exposure in ns and the counter depth.  Every frame of a file has
 * a header of the same size, so frames sit at a fixed stride: non-RAW files
 * are a segment of the shared strided reader each; RAW files add a decoding
 * read callback (mib_decode.c).
 *
 * Files: opened from X.hdr, the dataset is X.mib and/or X<digits>.mib in the
 * same folder; opened from a .mib with a companion .hdr (same stem, or the
 * stem less trailing digits) the same set; without one, that file alone.
 * Files are ordered by the sequence number of their first frame and must
 * continue each other without gap or overlap.
 *
 * Checked at open: the first, second and last frame header of every file
 * (magic, consecutive sequence numbers, same geometry), so a wrong frame size
 * (e.g. a RAW counter depth) or a file of mixed frames is an error, not
 * garbage.  A partial frame at the end of the last file is ignored when a
 * nav_shape is given and an error otherwise (the acquisition is truncated).
 */
#include "io/dataset.h"
#include "io/formats/mib/mib_decode.h"
#include "platform/os.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

#define HEAD_READ 4096         /* bytes read to parse a frame header */
#define HDR_MAX (64 << 10)     /* .hdr files are ~2 KiB */
#define MAX_FIELDS 1024        /* fields of a frame header that are parsed */
#define BATCH_BYTES (16 << 20) /* raw bytes fetched at once by the RAW reader */

/* ---- small text helpers ------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

/* A printable copy of at most 24 bytes of s, for messages. */
static const char *shown(const void *s, size_t n, char *buf, size_t cap)
{
    const unsigned char *p = s;
    size_t k = 0;
    for (size_t i = 0; i < n && i < 24 && k + 5 < cap; i++) {
        if (p[i] >= 32 && p[i] < 127 && p[i] != '\'') {
            buf[k++] = (char)p[i];
        } else {
            snprintf(buf + k, cap - k, "\\x%02x", p[i]);
            k += 4;
        }
    }
    buf[k] = 0;
    return buf;
}

/* Parse a decimal integer with optional surrounding spaces. */
static bool parse_int(const char *s, int64_t *out)
{
    while (*s == ' ')
        s++;
    if (!isdigit((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    while (*end == ' ' || *end == '\r' || *end == '\n' || *end == '\t')
        end++;
    if (*end || errno)
        return false;
    *out = v;
    return true;
}

static bool ends_with_ci(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

/* A copy of s with bytes outside printable ASCII replaced, for JSON. */
static json_t *jstr(const char *s)
{
    char buf[512];
    size_t k = 0;
    for (; *s && k + 1 < sizeof buf; s++)
        buf[k++] = (unsigned char)*s >= 32 && (unsigned char)*s < 127 ? *s : '?';
    buf[k] = 0;
    return json_string(buf);
}

/* ---- frame headers ------------------------------------------------------ */

typedef struct mib_head {
    int64_t seq, header_bytes, chips, width, height;
    char type[8];    /* U08, U16, U32 or R64 */
    char layout[16]; /* e.g. 1x1, 2x2, 2x2G, Nx1 */
    char chip_select[16];
    char time[64];
    char chip_type[16];
    double shutter_s; /* NAN if absent */
    double thresholds[8];
    int n_thresholds;
    int64_t depth; /* counter depth from the extended header; 0 if absent */
    char exposure[32];
} mib_head_t;

static int field_int(const char *path, int idx, const char *name, const char *s, int64_t lo,
                     int64_t hi, int64_t *out, char *err, size_t errlen)
{
    char b[128];
    if (!parse_int(s, out) || *out < lo || *out > hi)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: MIB frame header field %d (%s) is '%s', expected an integer from "
                           "%lld to %lld",
                           path, idx, name, shown(s, strlen(s), b, sizeof b), (long long)lo,
                           (long long)hi);
    return 0;
}

static void copy_field(char *dst, size_t cap, const char *s)
{
    snprintf(dst, cap, "%s", s);
}

/* Parse the frame header in buf (n bytes read at offset off of path). */
static int parse_head(const uint8_t *buf, size_t n, const char *path, int64_t off, mib_head_t *h,
                      char *err, size_t errlen)
{
    char b[128];
    memset(h, 0, sizeof *h);
    h->shutter_s = NAN;
    if (n < 4 || memcmp(buf, "MQ1,", 4) != 0)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: no MIB frame header at byte %lld: expected 'MQ1,', found '%s'%s",
                           path, (long long)off, shown(buf, n < 4 ? n : 4, b, sizeof b),
                           n < 4 ? " (end of file)" : "");
    char txt[HEAD_READ + 1];
    size_t len = n < HEAD_READ ? n : HEAD_READ;
    memcpy(txt, buf, len);
    txt[len] = 0;
    len = strlen(txt); /* the header is padded with NULs */
    /* the header size (field 2) bounds the fields */
    char *c1 = strchr(txt + 4, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
    if (!c2)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: MIB frame header at byte %lld is truncated (no header size field)",
                           path, (long long)off);
    *c2 = 0;
    int rc = field_int(path, 2, "header size", c1 + 1, 16, 1 << 24, &h->header_bytes, err, errlen);
    *c2 = ',';
    if (rc)
        return rc;
    if ((int64_t)n < h->header_bytes && n < HEAD_READ)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: truncated: the frame header at byte %lld has %lld bytes, its size "
                           "field says %lld",
                           path, (long long)off, (long long)n, (long long)h->header_bytes);
    if ((int64_t)len > h->header_bytes)
        txt[h->header_bytes] = 0;

    char *f[MAX_FIELDS];
    int nf = 0;
    for (char *p = txt; p && nf < MAX_FIELDS;) {
        f[nf++] = p;
        p = strchr(p, ',');
        if (p)
            *p++ = 0;
    }
    if (nf < 9)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: MIB frame header at byte %lld has %d fields within its %lld bytes, "
                           "expected at least 9 (magic, sequence, header size, chips, width, "
                           "height, pixel type, layout, chip select)",
                           path, (long long)off, nf, (long long)h->header_bytes);
    if ((rc = field_int(path, 1, "sequence number", f[1], 0, INT64_C(1) << 48, &h->seq, err,
                        errlen)) ||
        (rc = field_int(path, 3, "number of chips", f[3], 1, 64, &h->chips, err, errlen)) ||
        (rc = field_int(path, 4, "width", f[4], 1, 65536, &h->width, err, errlen)) ||
        (rc = field_int(path, 5, "height", f[5], 1, 65536, &h->height, err, errlen)))
        return rc;
    char *type = trim(f[6]);
    if (strcmp(type, "U08") && strcmp(type, "U16") && strcmp(type, "U32") && strcmp(type, "R64"))
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: MIB frame header field 6 (pixel type) is '%s', expected U08, U16, "
                           "U32 or R64",
                           path, shown(type, strlen(type), b, sizeof b));
    copy_field(h->type, sizeof h->type, type);
    copy_field(h->layout, sizeof h->layout, trim(f[7]));
    copy_field(h->chip_select, sizeof h->chip_select, trim(f[8]));
    if (nf > 9)
        copy_field(h->time, sizeof h->time, trim(f[9]));
    if (nf > 10) {
        char *end;
        double v = strtod(f[10], &end);
        if (end != f[10] && isfinite(v))
            h->shutter_s = v;
    }
    for (int i = 14; i < nf && i < 22; i++) {
        char *end;
        double v = strtod(f[i], &end);
        if (end == f[i] || !isfinite(v))
            break;
        h->thresholds[h->n_thresholds++] = v;
    }
    if (nf > 22)
        copy_field(h->chip_type, sizeof h->chip_type, trim(f[22]));
    for (int i = 9; i < nf; i++) {
        if (strcmp(trim(f[i]), "MQ1A") != 0)
            continue;
        if (i + 3 < nf) {
            copy_field(h->exposure, sizeof h->exposure, trim(f[i + 2]));
            if ((rc = field_int(path, i + 3, "counter depth", trim(f[i + 3]), 1, 64, &h->depth, err,
                                errlen)))
                return rc;
        }
        break;
    }
    return 0;
}

/* ---- the .hdr acquisition header ----------------------------------------- */

/* Read path as a .hdr: "HDR," then "Key:\tValue" lines until "End".  Fills
 * an object of the key/value strings.  Returns 0, or a code with a message
 * if the file is unreadable or not a Merlin .hdr. */
static int read_hdr(const char *path, json_t **out, char *err, size_t errlen)
{
    char *buf = malloc(HDR_MAX + 1);
    if (!buf)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    int64_t n = tsr__file_head(path, buf, HDR_MAX);
    if (n < 0) {
        free(buf);
        return tsr__seterr(err, errlen, TSR_EIO, "%s: cannot read the .hdr file", path);
    }
    buf[n] = 0;
    char b[128];
    if (n < 4 || memcmp(buf, "HDR,", 4) != 0) {
        int rc = tsr__seterr(err, errlen, TSR_ECORRUPT,
                             "%s: not a Merlin .hdr file: expected 'HDR,' at the start, found "
                             "'%s'%s",
                             path, shown(buf, n < 4 ? (size_t)n : 4, b, sizeof b),
                             n == 0 ? " (empty file)" : "");
        free(buf);
        return rc;
    }
    json_t *obj = json_object();
    char *save = NULL;
    for (char *line = strtok_r(buf + 4, "\n", &save); line && obj;
         line = strtok_r(NULL, "\n", &save)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        char *key = trim(line), *val = trim(tab + 1);
        size_t kl = strlen(key);
        if (kl && key[kl - 1] == ':')
            key[--kl] = 0;
        key = trim(key);
        if (!*key || strcmp(key, "End") == 0)
            continue;
        json_t *k = jstr(key);
        if (k)
            json_object_set_new(obj, json_string_value(k), jstr(val));
        json_decref(k);
    }
    free(buf);
    if (!obj)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    *out = obj;
    return 0;
}

/* The value of the first key that starts with prefix (case-insensitive). */
static const char *hdr_get(json_t *hdr, const char *prefix)
{
    const char *key;
    json_t *v;
    json_object_foreach (hdr, key, v) {
        if (strncasecmp(key, prefix, strlen(prefix)) == 0)
            return json_string_value(v);
    }
    return NULL;
}

static bool hdr_int(json_t *hdr, const char *prefix, int64_t *out)
{
    const char *s = hdr ? hdr_get(hdr, prefix) : NULL;
    return s && parse_int(s, out);
}

/* ---- finding the files ---------------------------------------------------- */

typedef struct name_list {
    const char *base; /* file name part of the stem */
    size_t base_len;
    char **names;
    size_t n, cap;
    bool oom;
} name_list_t;

/* Collect "<base><digits>.mib" (any case of the extension). */
static int collect(void *u, const char *name)
{
    name_list_t *l = u;
    if (strncmp(name, l->base, l->base_len) != 0)
        return 0;
    const char *p = name + l->base_len;
    while (isdigit((unsigned char)*p))
        p++;
    if (strcasecmp(p, ".mib") != 0)
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **names = realloc(l->names, cap * sizeof *names);
        if (!names) {
            l->oom = true;
            return 1;
        }
        l->names = names;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name))) {
        l->oom = true;
        return 1;
    }
    l->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(name_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
}

/* dir part (without the slash; "" for none) and file part of path. */
static void split_path(const char *path, char *dir, size_t dcap, const char **base)
{
    const char *slash = strrchr(path, '/');
    if (slash) {
        size_t n = (size_t)(slash - path);
        snprintf(dir, dcap, "%.*s", (int)n, path);
        if (n == 0)
            snprintf(dir, dcap, "/");
        *base = slash + 1;
    } else {
        dir[0] = 0;
        *base = path;
    }
}

static bool copy_str(char *dst, size_t cap, const char *s)
{
    size_t n = strlen(s);
    if (n >= cap)
        return false;
    memcpy(dst, s, n + 1);
    return true;
}

/* dir/name into out; false if it does not fit. */
static bool join(char *out, size_t cap, const char *dir, const char *name)
{
    int n;
    if (!*dir)
        n = snprintf(out, cap, "%s", name);
    else if (strcmp(dir, "/") == 0)
        n = snprintf(out, cap, "/%s", name);
    else
        n = snprintf(out, cap, "%s/%s", dir, name);
    return n >= 0 && (size_t)n < cap;
}

/* ---- dataset state -------------------------------------------------------- */

typedef struct mib_state {
    bool raw;
    tsr__mib_geom_t geom; /* RAW only */
    int64_t data_bytes;   /* pixel bytes per frame */
} mib_state_t;

typedef struct mib_file {
    int index; /* in ds->files */
    mib_head_t head;
    int64_t count, trailing;
} mib_file_t;

static int cmp_file(const void *a, const void *b)
{
    const mib_file_t *x = a, *y = b;
    return x->head.seq < y->head.seq ? -1 : x->head.seq > y->head.seq;
}

/* ---- the RAW read path ----------------------------------------------------- */

static const tsr__segment_t *find_seg(const tsr_dataset_t *ds, int64_t img)
{
    int lo = 0, hi = ds->n_segs - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const tsr__segment_t *s = &ds->segs[mid];
        if (img < s->first)
            hi = mid - 1;
        else if (img >= s->first + s->count)
            lo = mid + 1;
        else
            return s;
    }
    return NULL;
}

static int read_raw(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                    int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen)
{
    const mib_state_t *st = ds->state;
    const tsr__mib_geom_t *g = &st->geom;
    const int64_t w = g->out_w, h = g->out_h;
    const size_t es = g->out_es, des = tsr_dtype_size(dt);
    /* whole frames in the native type are decoded in place */
    const bool direct = sig0 == 0 && siglen == w * h && dt == ds->dtype;
    const int64_t y0 = sig0 / w, y1 = (sig0 + siglen + w - 1) / w;
    const size_t tmp_bytes = direct ? 0 : (size_t)((y1 - y0) * w) * es;
    unsigned char *o = out;
    int rc;
    while (n > 0) {
        const tsr__segment_t *seg = find_seg(ds, img0);
        if (!seg)
            return tsr__seterr(err, errlen, TSR_ECORRUPT, "%s: no data for frame %lld", ds->path,
                               (long long)img0);
        int64_t k = seg->first + seg->count - img0, most = BATCH_BYTES / seg->stride;
        k = k < n ? k : n;
        k = k < most ? k : (most > 0 ? most : 1);
        int64_t off = seg->offset + (img0 - seg->first) * seg->stride;
        size_t span = (size_t)((k - 1) * seg->stride + st->data_bytes);
        const unsigned char *raw = NULL;
        if (io->backend == TSR_IO_MMAP &&
            (rc = tsr__io_map(ds, seg->file, off, span, &raw, err, errlen)))
            return rc;
        size_t in_bytes = raw ? 0 : (span + 63) / 64 * 64;
        if ((rc = tsr__io_reserve(io, in_bytes + tmp_bytes + 64)))
            return tsr__seterr(err, errlen, rc, "out of memory");
        unsigned char *tmp = (unsigned char *)io->scratch + in_bytes;
        if (!raw) {
            if ((rc = tsr__io_fetch(ds, io, seg->file, off, span, io->scratch, err, errlen)))
                return rc;
            raw = io->scratch;
        }
        for (int64_t i = 0; i < k; i++) {
            const uint8_t *src = raw + i * seg->stride;
            if (direct) {
                tsr__mib_decode_rows(g, src, 0, h, o);
            } else {
                tsr__mib_decode_rows(g, src, y0, y1, tmp);
                tsr__convert(o, dt, tmp + (size_t)(sig0 - y0 * w) * es, ds->dtype, false,
                             (size_t)siglen);
            }
            o += (size_t)siglen * des;
        }
        img0 += k;
        n -= k;
    }
    return 0;
}

static void close_mib(tsr_dataset_t *ds)
{
    tsr__free(ds->ctx, ds->state);
    ds->state = NULL;
}

/* ---- open ------------------------------------------------------------------ */

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "",
     "scan shape (default: ScanY,ScanX or frames per trigger from the .hdr, else a square scan "
     "if the frame count is a square, else 1-D)",
     false},
    {"sig_shape", "shape", "", "reshape the frames (same number of pixels)", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
    {"counter_depth", "int", "",
     "RAW (R64) counter depth 1, 6, 12 or 24 (default: from the frame headers, else the .hdr)",
     false},
    {"disable_glob", "bool", "false",
     "read only the named .mib file, not the other numbered files of its acquisition", false},
};
#define N_PARAMS (sizeof params / sizeof params[0])

static const char *const exts[] = {"mib", "hdr", NULL};

static int probe(const char *path, const uint8_t *head, size_t n)
{
    if (n >= 4 && memcmp(head, "MQ1,", 4) == 0)
        return 100;
    if (n >= 4 && memcmp(head, "HDR,", 4) == 0)
        return 90;
    /* a damaged .mib still gets this reader's diagnosis */
    return ends_with_ci(path, ".mib") ? 10 : 0;
}

/* Read the header of the frame at off of file index fi. */
static int read_head_at(tsr__open_args_t *a, int fi, int64_t off, mib_head_t *h)
{
    const tsr__file_t *f = &a->ds->files[fi];
    const char *path = a->ds->file_paths[fi];
    uint8_t buf[HEAD_READ];
    int64_t left = f->size - off;
    size_t n = left < (int64_t)sizeof buf ? (size_t)(left > 0 ? left : 0) : sizeof buf;
    if (n && tsr__file_pread(f, buf, n, off))
        return tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the frame header at %lld",
                           path, (long long)off);
    return parse_head(buf, n, path, off, h, a->err, a->errlen);
}

/* The files of the dataset: fills *names (full paths, malloc'ed) and the
 * .hdr path (hdr_path[0] = 0 if none). */
static int find_files(tsr__open_args_t *a, bool is_hdr, bool no_glob, char ***names, size_t *count,
                      char *hdr_path, size_t hcap)
{
    const char *path = a->path;
    char dir[4096], stem[4096];
    const char *base;
    split_path(path, dir, sizeof dir, &base);
    hdr_path[0] = 0;
    /* the stem: the file name less its extension */
    const char *dot = strrchr(base, '.');
    size_t blen = dot && dot > base ? (size_t)(dot - base) : strlen(base);
    snprintf(stem, sizeof stem, "%.*s", (int)blen, base);
    if (is_hdr) {
        if (!copy_str(hdr_path, hcap, path))
            return tsr__seterr(a->err, a->errlen, TSR_EINVAL, "%s: path too long", path);
    } else if (!no_glob && ends_with_ci(path, ".mib")) {
        /* a companion .hdr (a .mib file only, so that the file itself
         * is one of the acquisition's names) */
        char cand[4096];
        /* the stem itself, then less one trailing digit at a time (the file
         * number may follow a stem that ends in digits) */
        size_t k = strlen(stem);
        while (!hdr_path[0]) {
            char name[4096 + 8];
            snprintf(name, sizeof name, "%.*s.hdr", (int)k, stem);
            uint8_t h4[4];
            if (join(cand, sizeof cand, dir, name) && tsr__path_is_file(cand) &&
                tsr__file_head(cand, h4, 4) == 4 && memcmp(h4, "HDR,", 4) == 0) {
                copy_str(hdr_path, hcap, cand);
                stem[k] = 0;
            }
            if (k <= 1 || !isdigit((unsigned char)stem[k - 1]))
                break;
            k--;
        }
    }
    name_list_t l = {.base = stem, .base_len = strlen(stem)};
    if (!hdr_path[0]) { /* this file alone */
        l.names = malloc(sizeof *l.names);
        if (!l.names || !(l.names[0] = strdup(path))) {
            free(l.names);
            return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        }
        *names = l.names;
        *count = 1;
        return 0;
    }
    if (tsr__dir_each(dir, collect, &l) < 0 && !l.oom) {
        free_names(&l);
        return tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot list the folder '%s'", path,
                           *dir ? dir : ".");
    }
    if (l.oom) {
        free_names(&l);
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    }
    if (l.n == 0) {
        free_names(&l);
        return tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND,
                           "%s: no .mib file belongs to this header: expected %s.mib or "
                           "%s<number>.mib in '%s'",
                           path, stem, stem, *dir ? dir : ".");
    }
    qsort(l.names, l.n, sizeof *l.names, cmp_str);
    for (size_t i = 0; i < l.n; i++) {
        char full[8200];
        char *p = join(full, sizeof full, dir, l.names[i]) ? strdup(full) : NULL;
        if (!p) {
            free_names(&l);
            return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        }
        free(l.names[i]);
        l.names[i] = p;
    }
    *names = l.names;
    *count = l.n;
    return 0;
}

/* The pixel bytes of one frame, or a message. */
static int frame_bytes(tsr__open_args_t *a, const char *path, const mib_head_t *h, int64_t depth,
                       mib_state_t *st)
{
    if (h->type[0] == 'U') {
        int64_t es = h->type[2] == '8' ? 1 : h->type[1] == '1' ? 2 : 4;
        st->data_bytes = h->width * h->height * es;
        return 0;
    }
    if (!depth)
        return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                           "%s: RAW (R64) frames without a counter depth: the frame header has no "
                           "MQ1A extension and no .hdr names it; pass counter_depth=1, 6, 12 or 24",
                           path);
    bool quad = false;
    if (h->chips > 1) {
        if (strncmp(h->layout, "2x2", 3) != 0 || h->chips != 4)
            return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                               "%s: RAW (R64) frames of %lld chips in layout '%s' are not "
                               "supported (only 1 chip or 2x2 with 4 chips)",
                               path, (long long)h->chips, h->layout);
        quad = true;
    }
    const char *why = tsr__mib_geom_init(&st->geom, (int)depth, quad, h->width, h->height);
    if (why)
        return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                           "%s: RAW frame of %lldx%lld pixels at counter depth %lld: %s", path,
                           (long long)h->width, (long long)h->height, (long long)depth, why);
    st->raw = true;
    st->data_bytes = tsr__mib_geom_bytes(&st->geom);
    return 0;
}

/* The first frame header of every file must describe the same frames. */
static int same_geometry(tsr__open_args_t *a, const char *p0, const mib_head_t *h0, const char *p,
                         const mib_head_t *h)
{
    const char *what = NULL;
    char v0[32], v[32];
#define DIFF_INT(field, name)                                  \
    if (!what && h0->field != h->field) {                      \
        what = name;                                           \
        snprintf(v0, sizeof v0, "%lld", (long long)h0->field); \
        snprintf(v, sizeof v, "%lld", (long long)h->field);    \
    }
#define DIFF_STR(field, name)                        \
    if (!what && strcmp(h0->field, h->field) != 0) { \
        what = name;                                 \
        snprintf(v0, sizeof v0, "%s", h0->field);    \
        snprintf(v, sizeof v, "%s", h->field);       \
    }
    DIFF_INT(header_bytes, "header size")
    DIFF_INT(chips, "number of chips")
    DIFF_INT(width, "width")
    DIFF_INT(height, "height")
    DIFF_STR(type, "pixel type")
    DIFF_STR(layout, "layout")
    DIFF_INT(depth, "counter depth")
#undef DIFF_INT
#undef DIFF_STR
    if (!what)
        return 0;
    return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                       "%s: frame %s %s differs from %s in %s: the files are not one acquisition",
                       p, what, v, v0, p0);
}

/* Count the frames of file fi and check its second and last frame headers. */
static int scan_file(tsr__open_args_t *a, mib_file_t *mf, int64_t stride)
{
    const tsr__file_t *f = &a->ds->files[mf->index];
    const char *path = a->ds->file_paths[mf->index];
    const mib_head_t *h0 = &mf->head;
    mf->count = f->size / stride;
    mf->trailing = f->size - mf->count * stride;
    if (mf->count == 0)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: truncated: the file has %lld bytes, less than one frame of %lld "
                           "(header %lld + pixels %lld)",
                           path, (long long)f->size, (long long)stride, (long long)h0->header_bytes,
                           (long long)(stride - h0->header_bytes));
    int64_t check[2] = {1, mf->count - 1};
    for (int i = 0; i < 2; i++) {
        int64_t j = check[i];
        if (j < 1 || j >= mf->count || (i == 1 && j == check[0]))
            continue;
        mib_head_t h;
        char msg[TSR__ERRMSG_MAX];
        if (read_head_at(a, mf->index, j * stride, &h)) {
            snprintf(msg, sizeof msg, "%s", a->err);
            return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                               "%s (frames of %lld bytes: header %lld + %s pixels %lldx%lld; a "
                               "different frame size means a wrong counter depth or a corrupt "
                               "file)",
                               msg, (long long)stride, (long long)h0->header_bytes, h0->type,
                               (long long)h0->width, (long long)h0->height);
        }
        if (h.header_bytes != h0->header_bytes || h.width != h0->width || h.height != h0->height ||
            strcmp(h.type, h0->type) != 0)
            return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                               "%s: frame %lld has a header of %lld bytes for %s %lldx%lld, the "
                               "first frame %lld bytes for %s %lldx%lld: frames of one file must "
                               "match",
                               path, (long long)j, (long long)h.header_bytes, h.type,
                               (long long)h.width, (long long)h.height, (long long)h0->header_bytes,
                               h0->type, (long long)h0->width, (long long)h0->height);
        if (h.seq != h0->seq + j)
            return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                               "%s: frame %lld has sequence number %lld, expected %lld (the first "
                               "is %lld): frames are missing or out of order",
                               path, (long long)j, (long long)h.seq, (long long)(h0->seq + j),
                               (long long)h0->seq);
    }
    return 0;
}

/* The scan shape when no nav_shape is given. */
static int default_nav(tsr__open_args_t *a, json_t *hdr, const char *hdr_path, int64_t n,
                       int64_t trailing, const char *last_path, tsr_shape_t *nav,
                       const char **source)
{
    int64_t sx = 0, sy = 0, fia = 0, fpt = 0;
    *nav = (tsr_shape_t){0};
    if (hdr_int(hdr, "ScanX", &sx) && hdr_int(hdr, "ScanY", &sy) && sx > 0 && sy > 0) {
        *nav = (tsr_shape_t){.ndim = 2, .dims = {sy, sx}};
        *source = "hdr ScanX/ScanY";
    } else if (hdr_int(hdr, "Frames in Acquisition", &fia) &&
               hdr_int(hdr, "Frames per Trigger", &fpt) && fpt > 1 && fpt < fia && fia % fpt == 0) {
        /* one trigger per scan row */
        *nav = (tsr_shape_t){.ndim = 2, .dims = {fia / fpt, fpt}};
        *source = "hdr Frames per Trigger";
    }
    if (nav->ndim) {
        int64_t need = nav->dims[0] * nav->dims[1];
        if (need > n)
            return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                               "%s: truncated acquisition: the .hdr gives a %lldx%lld scan (%s), "
                               "%lld frames, but the .mib files hold %lld; pass nav_shape to read "
                               "the frames there are",
                               hdr_path, (long long)nav->dims[0], (long long)nav->dims[1], *source,
                               (long long)need, (long long)n);
        return 0;
    }
    if (hdr && hdr_int(hdr, "Frames in Acquisition", &fia) && fia > n)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: truncated acquisition: the .hdr gives %lld frames, the .mib files "
                           "hold %lld; pass nav_shape to read the frames there are",
                           hdr_path, (long long)fia, (long long)n);
    if (trailing)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: truncated: the last frame is incomplete (%lld bytes of it); pass "
                           "nav_shape to read the %lld whole frames",
                           last_path, (long long)trailing, (long long)n);
    int64_t s = (int64_t)sqrt((double)n);
    while (s * s > n)
        s--;
    while ((s + 1) * (s + 1) <= n)
        s++;
    if (n > 1 && s * s == n) {
        *nav = (tsr_shape_t){.ndim = 2, .dims = {s, s}};
        *source = "square";
    } else {
        *nav = (tsr_shape_t){.ndim = 1, .dims = {n}};
        *source = "1-D";
    }
    return 0;
}

static json_t *head_json(const mib_head_t *h, int64_t depth)
{
    json_t *th = json_array();
    for (int i = 0; i < h->n_thresholds; i++)
        json_array_append_new(th, json_real(h->thresholds[i]));
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o}", "sequence_first",
                  (json_int_t)h->seq, "header_bytes", (json_int_t)h->header_bytes, "chips",
                  (json_int_t)h->chips, "width", (json_int_t)h->width, "height",
                  (json_int_t)h->height, "pixel_type", jstr(h->type), "layout", jstr(h->layout),
                  "chip_select", jstr(h->chip_select), "time", jstr(h->time), "thresholds_keV", th);
    if (o && depth)
        json_object_set_new(o, "counter_depth", json_integer(depth));
    if (o && h->chip_type[0])
        json_object_set_new(o, "chip_type", jstr(h->chip_type));
    if (o && h->exposure[0])
        json_object_set_new(o, "exposure", jstr(h->exposure));
    if (o && isfinite(h->shutter_s))
        json_object_set_new(o, "shutter_s", json_real(h->shutter_s));
    return o;
}

static int open_mib(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    int rc = 0;
    char **names = NULL;
    size_t n_names = 0;
    json_t *hdr = NULL;
    mib_file_t *mf = NULL;
    char hdr_path[4096];

    bool no_glob = false;
    int64_t depth_param = 0;
    const char *dg = tsr_params_get(a->params, "disable_glob");
    const char *cd = tsr_params_get(a->params, "counter_depth");
    if (dg && (rc = tsr__parse_bool(dg, &no_glob, a->err, a->errlen, "mib: disable_glob")))
        return rc;
    if (cd && *cd) {
        if ((rc = tsr__parse_i64(cd, &depth_param, a->err, a->errlen, "mib: counter_depth")))
            return rc;
        if (depth_param != 1 && depth_param != 6 && depth_param != 12 && depth_param != 24)
            return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                               "mib: counter_depth must be 1, 6, 12 or 24 (got %lld)",
                               (long long)depth_param);
    }

    uint8_t head[4];
    int64_t hn = tsr__file_head(a->path, head, sizeof head);
    if (hn < 0) {
        tsr__file_t f;
        rc = tsr__file_open(&f, a->path, a->err, a->errlen);
        if (rc == 0) {
            tsr__file_close(&f);
            rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read", a->path);
        }
        return rc;
    }
    bool is_hdr = (hn == 4 && memcmp(head, "HDR,", 4) == 0) ||
                  (ends_with_ci(a->path, ".hdr") && !(hn == 4 && !memcmp(head, "MQ1,", 4)));
    if (is_hdr && (rc = read_hdr(a->path, &hdr, a->err, a->errlen)))
        return rc;
    if ((rc = find_files(a, is_hdr, no_glob, &names, &n_names, hdr_path, sizeof hdr_path)))
        goto done;
    if (!hdr && hdr_path[0] && (rc = read_hdr(hdr_path, &hdr, a->err, a->errlen)))
        goto done;

    mf = tsr__calloc(a->ctx, n_names, sizeof *mf);
    mib_state_t *st = tsr__calloc(a->ctx, 1, sizeof *st);
    ds->state = st;
    if (!mf || !st) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n_names; i++) {
        int fi = tsr__dataset_add_file(a, names[i]);
        if (fi < 0) {
            rc = fi;
            goto done;
        }
        mf[i].index = fi;
        if (ds->files[fi].size == 0) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT, "%s: the file is empty", names[i]);
            goto done;
        }
        if ((rc = read_head_at(a, fi, 0, &mf[i].head)))
            goto done;
        if (i > 0 && (rc = same_geometry(a, names[0], &mf[0].head, names[i], &mf[i].head)))
            goto done;
    }
    const mib_head_t *h0 = &mf[0].head;
    int64_t hdr_depth = 0;
    int64_t depth = depth_param                                 ? depth_param
                    : h0->depth                                 ? h0->depth
                    : hdr_int(hdr, "Counter Depth", &hdr_depth) ? hdr_depth
                                                                : 0;
    if ((rc = frame_bytes(a, names[0], h0, depth, st)))
        goto done;
    int64_t stride = h0->header_bytes + st->data_bytes;
    for (size_t i = 0; i < n_names; i++)
        if ((rc = scan_file(a, &mf[i], stride)))
            goto done;
    qsort(mf, n_names, sizeof *mf, cmp_file);
    int64_t total = 0;
    for (size_t i = 0; i < n_names; i++) {
        const char *p = ds->file_paths[mf[i].index];
        if (i > 0) {
            int64_t want = mf[i - 1].head.seq + mf[i - 1].count;
            const char *prev = ds->file_paths[mf[i - 1].index];
            if (mf[i - 1].trailing) {
                rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                                 "%s: truncated: its last frame is incomplete (%lld bytes) but "
                                 "%s continues the acquisition",
                                 prev, (long long)mf[i - 1].trailing, p);
                goto done;
            }
            if (mf[i].head.seq != want) {
                rc = tsr__seterr(
                    a->err, a->errlen, TSR_ECORRUPT,
                    mf[i].head.seq < want
                        ? "%s: starts at sequence number %lld, expected %lld after %s: the files "
                          "overlap"
                        : "%s: starts at sequence number %lld, expected %lld after %s: frames are "
                          "missing (a file of the acquisition is absent?)",
                    p, (long long)mf[i].head.seq, (long long)want, prev);
                goto done;
            }
        }
        if ((rc = tsr__dataset_add_segment(a, mf[i].index, total, mf[i].count, h0->header_bytes,
                                           stride)))
            goto done;
        total += mf[i].count;
    }
    ds->image_count = total;
    int64_t trailing = mf[n_names - 1].trailing;

    tsr_shape_t sig;
    if (st->raw) {
        ds->dtype = st->geom.out_es == 1 ? TSR_U8 : st->geom.out_es == 2 ? TSR_U16 : TSR_U32;
        ds->big_endian = false;
        sig = (tsr_shape_t){.ndim = 2, .dims = {st->geom.out_h, st->geom.out_w}};
        ds->read = read_raw; /* RAW: the decoder; else the shared strided reader */
    } else {
        ds->dtype = h0->type[2] == '8' ? TSR_U8 : h0->type[1] == '1' ? TSR_U16 : TSR_U32;
        ds->big_endian = ds->dtype != TSR_U8;
        sig = (tsr_shape_t){.ndim = 2, .dims = {h0->height, h0->width}};
    }
    tsr_shape_t nav = {0};
    const char *source = "nav_shape parameter";
    const char *nav_s = tsr_params_get(a->params, "nav_shape");
    if ((!nav_s || !*nav_s) &&
        (rc = default_nav(a, hdr, hdr_path, total, trailing, ds->file_paths[mf[n_names - 1].index],
                          &nav, &source)))
        goto done;
    if ((rc = tsr__dataset_shape_params(a, nav.ndim ? &nav : NULL, &sig)))
        goto done;

    /* metadata */
    char det[160];
    const char *chip = hdr ? hdr_get(hdr, "Chip Type") : NULL;
    snprintf(det, sizeof det, "Quantum Detectors Merlin, %s%s, %lld chip%s (%s)",
             chip ? "" : "Medipix",
             chip               ? chip
             : h0->chip_type[0] ? h0->chip_type
                                : "3",
             (long long)h0->chips, h0->chips > 1 ? "s" : "", h0->layout);
    json_t *meta =
        json_pack("{s:o, s:o, s:b, s:I, s:I, s:s}", "detector", jstr(det), "header",
                  head_json(h0, depth), "raw", st->raw, "frame_bytes", (json_int_t)st->data_bytes,
                  "frame_stride", (json_int_t)stride, "scan_shape_from", source);
    if (meta) {
        if (depth)
            json_object_set_new(meta, "counter_depth", json_integer(depth));
        if (h0->time[0])
            json_object_set_new(meta, "acquisition_time", jstr(h0->time));
        if (isfinite(h0->shutter_s))
            json_object_set_new(meta, "exposure_s", json_real(h0->shutter_s));
        if (trailing)
            json_object_set_new(meta, "ignored_trailing_bytes", json_integer(trailing));
        if (hdr) {
            json_object_set(json_object_get(meta, "header"), "hdr", hdr);
            json_object_set_new(meta, "hdr_file", jstr(hdr_path));
        }
        json_t *files = json_array();
        for (size_t i = 0; i < n_names; i++)
            json_array_append_new(files, json_string(ds->file_paths[mf[i].index]));
        json_object_set_new(meta, "files", files);
    }
    rc = tsr__dataset_set_meta(a, meta);
done:
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    json_decref(hdr);
    tsr__free(a->ctx, mf);
    return rc;
}

const tsr__reader_def_t tsr__format_mib = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "mib",
    .description = "Quantum Detectors Merlin MIB (.mib frames, optional .hdr): U08/U16/U32 and "
                   "RAW 1/6/12/24-bit, single chip and 2x2 quad",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = N_PARAMS,
    .probe = probe,
    .open = open_mib,
    .close = close_mib,
};
