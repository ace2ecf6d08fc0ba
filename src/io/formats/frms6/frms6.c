/*
 * frms6.c — PNDetector pnCCD data (.frms6 files and their .hdr), as
 * LiberTEM reads them.
 *
 * A data set "<base>" is a text file "<base>.hdr" (INI; section
 * [measurementInfo] with darkFrames, signalFrames, stemImageSize "AxB",
 * readoutMode "bin: N, windowing: A x B", gain, dwell time...) and files
 * "<base>_000.frms6", "<base>_001.frms6", ...: the first holds dark frames,
 * the others the signal frames in order.  Each file: a 1024-byte header
 * (little-endian: header size 1024 at 0, frame header size 64 at 2, version
 * 6 at byte 7, width at 88, height at 90, frame count at 1020 — 0 in older
 * files, then the file size tells), then frames of a 64-byte header
 * (timestamp s, µs at 4 and 8, frame number at 12) and height × width
 * uint16 pixels.
 *
 * The raw frame is folded: the detector is two chips head to head, and each
 * raw row holds a row of the top chip (left half) and one of the bottom chip
 * (right half).  Unfolded, frame row y < height is the left half of raw row
 * y; row 2 height - 1 - y' (y' < height) is the right half of raw row y',
 * mirrored.  With binning N (readoutMode) every row stands for N detector
 * rows and is repeated N times, so frames are (2 height N) × (width / 2),
 * e.g. 264 × 264 for every binning.
 *
 * Corrections: the mean of the dark frames (file _000) and an optional gain
 * map (gain_map_path: the variable GainMap of a .mat file, or a .npy)
 * become the dataset's corrections (tsr_dataset_corrections).
 */
#include "io/dataset.h"
#include "io/formats/frms6/mat.h"
#include "io/formats/npy/npy.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <strings.h>

#define F6_HEADER 1024
#define F6_FRAME_HEADER 64
#define F6_VERSION 6
#define F6_MAX_FILES 100000
#define F6_MAX_DIM 8192
#define F6_MAX_BIN 64
#define F6_BATCH ((size_t)1 << 20) /* most bytes one read spans */
#define HDR_MAX_BYTES (1 << 20)
#define DARK_CHUNK ((size_t)8 << 20)

typedef struct f6_file {
    int file;      /* index into ds->files */
    int64_t first; /* first image */
    int64_t count;
} f6_file_t;

typedef struct f6_state {
    int64_t width, height; /* raw */
    int64_t rep;           /* rows repeated (binning) */
    int64_t stride;        /* frame header + frame */
    f6_file_t *files;      /* signal files */
    int n_files;
} f6_state_t;

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}
static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcasecmp(s + n - k, suf) == 0;
}

static char *join(tsr_ctx_t *ctx, const char *a, size_t alen, const char *b)
{
    size_t bl = strlen(b);
    char *s = tsr__malloc(ctx, alen + bl + 1);
    if (s) {
        memcpy(s, a, alen);
        memcpy(s + alen, b, bl + 1);
    }
    return s;
}

/* "<base>" of "<base>.hdr" or "<base>_<digits>.frms6"; NULL if neither. */
static char *base_of(tsr_ctx_t *ctx, const char *path, bool *bad_name)
{
    size_t n = strlen(path);
    *bad_name = false;
    if (has_suffix(path, ".hdr"))
        return join(ctx, path, n - 4, "");
    if (has_suffix(path, ".frms6")) {
        size_t k = n - 6;
        while (k > 0 && isdigit((unsigned char)path[k - 1]))
            k--;
        if (k == n - 6 || k == 0 || path[k - 1] != '_') {
            *bad_name = true;
            return join(ctx, path, n - 6, "");
        }
        return join(ctx, path, k - 1, "");
    }
    *bad_name = true;
    return join(ctx, path, n, "");
}

/* ---- the file list ------------------------------------------------------ */

typedef struct listing {
    tsr_ctx_t *ctx;
    const char *stem; /* file name of the base */
    int64_t *nums;
    char **names;
    int n, cap;
    bool oom;
} listing_t;

static int list_one(void *arg, const char *name)
{
    listing_t *l = arg;
    size_t sl = strlen(l->stem), n = strlen(name);
    if (strncmp(name, l->stem, sl) || name[sl] != '_' || !has_suffix(name, ".frms6"))
        return 0;
    const char *d = name + sl + 1, *e = name + n - 6;
    if (d >= e || e - d > 9)
        return 0;
    int64_t v = 0;
    for (const char *c = d; c < e; c++) {
        if (!isdigit((unsigned char)*c))
            return 0;
        v = v * 10 + (*c - '0');
    }
    if (l->n == l->cap) {
        if (l->cap >= F6_MAX_FILES)
            return 0;
        int nc = l->cap ? 2 * l->cap : 16;
        int64_t *nn = tsr__realloc(l->ctx, l->nums, (size_t)nc * sizeof *nn);
        if (nn)
            l->nums = nn;
        char **nm = nn ? tsr__realloc(l->ctx, l->names, (size_t)nc * sizeof *nm) : NULL;
        if (!nm) {
            l->oom = true;
            return 1;
        }
        l->names = nm;
        l->cap = nc;
    }
    if (!(l->names[l->n] = tsr__strdup(l->ctx, name))) {
        l->oom = true;
        return 1;
    }
    l->nums[l->n++] = v;
    return 0;
}

/* Sort the listing by file number (insertion sort on both arrays: the
 * files are few and usually listed almost in order). */
static void sort_listing(listing_t *l)
{
    for (int i = 1; i < l->n; i++) {
        int64_t v = l->nums[i];
        char *nm = l->names[i];
        int j = i;
        for (; j > 0 && l->nums[j - 1] > v; j--) {
            l->nums[j] = l->nums[j - 1];
            l->names[j] = l->names[j - 1];
        }
        l->nums[j] = v;
        l->names[j] = nm;
    }
}

/* ---- the .hdr ----------------------------------------------------------- */

typedef struct hdr_info {
    bool present;
    int64_t dark_frames, signal_frames; /* -1 if absent */
    int64_t scan[2];                    /* 0 if absent */
    int64_t bin;                        /* 0 if absent */
    int64_t window[2];
    json_t *all; /* every key of [measurementInfo] */
} hdr_info_t;

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

static int hdr_err(tsr__open_args_t *a, const char *path, const char *key, const char *value,
                   const char *want)
{
    return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                       "%s: [measurementInfo] %s = %s: expected %s", path, key, value, want);
}

static bool parse_int(const char *s, int64_t *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (end == s || errno || x < 0)
        return false;
    while (isspace((unsigned char)*end))
        end++;
    *v = x;
    return *end == 0;
}

/* "A x B" (spaces optional) at s; *after past it. */
static bool parse_pair(const char *s, int64_t *a, int64_t *b)
{
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (end == s || errno)
        return false;
    while (isspace((unsigned char)*end))
        end++;
    if (*end != 'x' && *end != 'X')
        return false;
    const char *t = end + 1;
    long long y = strtoll(t, &end, 10);
    if (end == t || errno || x < 1 || y < 1 || x > (1 << 24) || y > (1 << 24))
        return false;
    *a = x;
    *b = y;
    return true;
}

static int read_hdr(tsr__open_args_t *a, const char *path, hdr_info_t *h)
{
    memset(h, 0, sizeof *h);
    h->dark_frames = h->signal_frames = -1;
    uint8_t probe;
    if (tsr__file_head(path, &probe, 1) < 0)
        return 0; /* absent */
    char *t;
    int rc = tsr__read_text(a->ctx, path, HDR_MAX_BYTES, TSR__TEXT_TRUNCATE | TSR__TEXT_NUL_SPACE,
                            "an FRMS6 header", &t, NULL, a->err, a->errlen);
    if (rc)
        return rc;
    h->present = true;
    h->all = json_object();
    bool in = false, seen = false;
    char *save = NULL;
    for (char *line = strtok_r(t, "\r\n", &save); line && !rc;
         line = strtok_r(NULL, "\r\n", &save)) {
        char *s = trim(line);
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (e)
                *e = 0;
            in = !strcasecmp(trim(s + 1), "measurementInfo");
            seen |= in;
            continue;
        }
        if (!in || *s == ';' || *s == '#' || !*s)
            continue;
        char *eq = strpbrk(s, "=:");
        if (!eq)
            continue;
        *eq = 0;
        char *key = trim(s), *val = trim(eq + 1);
        if (json_object_size(h->all) < 256 && strlen(key) < 64)
            json_object_set_new(h->all, key, json_string(val));
        int64_t v;
        if (!strcasecmp(key, "darkFrames") || !strcasecmp(key, "signalFrames")) {
            if (!parse_int(val, &v))
                rc = hdr_err(a, path, key, val, "a frame count");
            else if (!strcasecmp(key, "darkFrames"))
                h->dark_frames = v;
            else
                h->signal_frames = v;
        } else if (!strcasecmp(key, "stemImageSize")) {
            if (!parse_pair(val, &h->scan[0], &h->scan[1]))
                rc = hdr_err(a, path, key, val, "a scan size AxB");
        } else if (!strcasecmp(key, "readoutMode")) {
            /* "bin: 1, windowing: 264 x 264 " (quoted) */
            const char *b = strstr(val, "bin:"), *w = strstr(val, "windowing:");
            char *end = NULL;
            long long bin = b ? strtoll(b + 4, &end, 10) : 0;
            if (!b || end == b + 4 || bin < 1 || bin > F6_MAX_BIN)
                rc = hdr_err(a, path, key, val, "\"bin: N, windowing: A x B\" with N from 1 to 64");
            else
                h->bin = bin;
            if (w && !parse_pair(w + 10, &h->window[0], &h->window[1]))
                h->window[0] = h->window[1] = 0;
        }
    }
    tsr__free(a->ctx, t);
    if (!rc && !seen)
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: no [measurementInfo] section (is it the pnCCD .hdr?)", path);
    return rc;
}

/* ---- unfolding ---------------------------------------------------------- */

/* The raw pixel (row, column) of unfolded pixel (y, x). */
static void raw_pos(const f6_state_t *st, int64_t y, int64_t x, int64_t *ry, int64_t *rx)
{
    int64_t yb = y / st->rep;
    if (yb < st->height) {
        *ry = yb;
        *rx = x;
    } else {
        *ry = 2 * st->height - 1 - yb;
        *rx = st->width - 1 - x;
    }
}

/* ---- corrections -------------------------------------------------------- */

/* The mean of the n frames of file 0 (the dark frames), unfolded. */
static int load_dark(tsr__open_args_t *a, const f6_state_t *st, int64_t n, float **out)
{
    tsr_ctx_t *ctx = a->ctx;
    const tsr__file_t *f = &a->ds->files[0];
    int64_t px = st->width * st->height, rows = 2 * st->height * st->rep, cols = st->width / 2;
    int64_t per = (int64_t)(DARK_CHUNK / (size_t)st->stride);
    if (per < 1)
        per = 1;
    uint64_t *sum = tsr__calloc(ctx, (size_t)px, sizeof *sum);
    uint8_t *buf = tsr__malloc(ctx, (size_t)(per * st->stride));
    float *dark = tsr__malloc(ctx, (size_t)(rows * cols) * sizeof *dark);
    int rc = 0;
    if (!sum || !buf || !dark) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t i = 0; i < n; i += per) {
        int64_t k = n - i < per ? n - i : per;
        if (tsr__file_pread(f, buf, (size_t)(k * st->stride), F6_HEADER + i * st->stride)) {
            rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the dark frames",
                             a->ds->file_paths[0]);
            goto done;
        }
        for (int64_t j = 0; j < k; j++) {
            const uint8_t *p = buf + j * st->stride + F6_FRAME_HEADER;
            for (int64_t q = 0; q < px; q++)
                sum[q] += le16(p + 2 * q);
        }
    }
    for (int64_t y = 0; y < rows; y++)
        for (int64_t x = 0; x < cols; x++) {
            int64_t ry, rx;
            raw_pos(st, y, x, &ry, &rx);
            dark[y * cols + x] = (float)((double)sum[ry * st->width + rx] / (double)n);
        }
    *out = dark;
    dark = NULL;
done:
    tsr__free(ctx, sum);
    tsr__free(ctx, buf);
    tsr__free(ctx, dark);
    return rc;
}

static int load_gain(tsr__open_args_t *a, const char *path, int64_t rows, int64_t cols, float **out)
{
    int64_t gr, gc;
    float *g = NULL;
    int rc;
    if (has_suffix(path, ".npy")) {
        tsr_shape_t shape;
        void *data = NULL;
        if ((rc = tsr__npy_load(a->ctx, path, TSR_F32, &shape, &data)))
            return rc; /* the message is on the context (a->err) */
        g = data;
        if (shape.ndim != 2) {
            tsr__free(a->ctx, g);
            return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                               "gain_map_path %s: a %d-D array; the gain map is 2-D", path,
                               shape.ndim);
        }
        gr = shape.dims[0];
        gc = shape.dims[1];
    } else if (has_suffix(path, ".mat")) {
        if ((rc = tsr__mat_load_f32(a->ctx, path, "GainMap", &gr, &gc, &g, a->err, a->errlen)))
            return rc;
    } else {
        return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                           "gain_map_path %s: expected a .mat (variable GainMap) or .npy file",
                           path);
    }
    if (gr != rows || gc != cols) {
        tsr__free(a->ctx, g);
        return tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                           "gain_map_path %s: the gain map is %lld x %lld, the frames are %lld x "
                           "%lld",
                           path, (long long)gr, (long long)gc, (long long)rows, (long long)cols);
    }
    *out = g;
    return 0;
}

/* ---- open --------------------------------------------------------------- */

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "", "scan shape (default: the .hdr's stemImageSize)", false},
    {"sig_shape", "shape", "", "reshape the frames (default: 2 height x binning, width / 2)",
     false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
    {"enable_offset_correction", "bool", "true",
     "subtract the mean of the dark frames (the _000 file) as the dataset's dark correction",
     false},
    {"gain_map_path", "path", "",
     "gain map to multiply by: a .mat file (variable GainMap) or a .npy, of the frame shape",
     false},
};

static const char *const exts[] = {"frms6", "hdr", NULL};

static int probe(const char *path, const uint8_t *head, size_t n)
{
    bool magic = n >= 8 && le16(head) == F6_HEADER && le16(head + 2) == F6_FRAME_HEADER &&
                 head[7] == F6_VERSION;
    if (magic)
        return has_suffix(path, ".frms6") ? 95 : 70;
    if (has_suffix(path, ".hdr")) {
        /* the pnCCD .hdr: an INI file with a [measurementInfo] section */
        for (size_t i = 0; i + 17 <= n; i++)
            if (head[i] == '[' && !strncasecmp((const char *)head + i + 1, "measurementInfo]", 16))
                return 80;
        return 0;
    }
    return has_suffix(path, ".frms6") ? 10 : 0;
}

static int open_frms6(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    tsr_ctx_t *ctx = a->ctx;
    bool bad_name;
    char *base = base_of(ctx, a->path, &bad_name), *dir = NULL, *hdr_path = NULL;
    listing_t l = {ctx, NULL, NULL, NULL, 0, 0, false};
    hdr_info_t h = {0};
    f6_state_t *st = NULL;
    json_t *meta = NULL;
    int rc = 0;
    if (!base || !(hdr_path = join(ctx, base, strlen(base), ".hdr"))) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    if (bad_name) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                         "%s: an FRMS6 data set is opened by its <name>.hdr or one of its "
                         "<name>_NNN.frms6 files",
                         a->path);
        goto done;
    }
    const char *slash = strrchr(base, '/');
    size_t dl = slash ? (size_t)(slash - base) + 1 : 0;
    if (!(dir = join(ctx, base, dl, ""))) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    l.stem = base + dl;
    tsr__dir_each(dl ? dir : ".", list_one, &l);
    if (l.oom) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    sort_listing(&l);
    if (l.n == 0) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND, "%s: no files %s_NNN.frms6", a->path,
                         base);
        goto done;
    }
    for (int i = 0; i < l.n; i++)
        if (l.nums[i] != i) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: FRMS6 file number %d is missing: the files must be numbered "
                             "from 0 (the dark frames) without gaps, found %s%s",
                             a->path, i, dir, l.names[i]);
            goto done;
        }
    if ((rc = read_hdr(a, hdr_path, &h)))
        goto done;
    if (!h.present) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND,
                         "%s: the data set's %s is missing (it gives the binning and the scan "
                         "shape)",
                         a->path, hdr_path);
        goto done;
    }
    if (!h.bin) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: [measurementInfo] has no readoutMode (\"bin: N, windowing: A x B\")",
                         hdr_path);
        goto done;
    }

    /* the files */
    st = tsr__calloc(ctx, 1, sizeof *st);
    if (!st || !(st->files = tsr__calloc(ctx, (size_t)l.n, sizeof *st->files))) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    int64_t total = 0, dark_count = 0;
    uint8_t b0[F6_HEADER];
    for (int i = 0; i < l.n; i++) {
        char *p = join(ctx, dir, dl, l.names[i]);
        if (!p) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
            goto done;
        }
        int fi = tsr__dataset_add_file(a, p);
        tsr__free(ctx, p);
        if (fi < 0) {
            rc = fi;
            goto done;
        }
        const tsr__file_t *f = &ds->files[fi];
        const char *fp = ds->file_paths[fi];
        uint8_t b[F6_HEADER];
        if (f->size < F6_HEADER) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: truncated FRMS6 header: the file has %lld bytes, the header "
                             "needs %d",
                             fp, (long long)f->size, F6_HEADER);
            goto done;
        }
        if (tsr__file_pread(f, b, sizeof b, 0)) {
            rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the header", fp);
            goto done;
        }
        if (le16(b) != F6_HEADER || le16(b + 2) != F6_FRAME_HEADER || b[7] != F6_VERSION) {
            rc =
                tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                            "%s: not an FRMS6 file: header size (byte 0) %u, frame header size "
                            "(byte 2) %u, version (byte 7) %u; expected %d, %d, %d",
                            fp, le16(b), le16(b + 2), b[7], F6_HEADER, F6_FRAME_HEADER, F6_VERSION);
            goto done;
        }
        int64_t w = le16(b + 88), ht = le16(b + 90);
        if (i == 0) {
            if (w < 2 || w % 2 || w > F6_MAX_DIM || ht < 1 || ht > F6_MAX_DIM) {
                rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                                 "%s: FRMS6 width (byte 88) %lld and height (byte 90) %lld: "
                                 "expected an even width from 2 and a height from 1, up to %d",
                                 fp, (long long)w, (long long)ht, F6_MAX_DIM);
                goto done;
            }
            st->width = w;
            st->height = ht;
            st->stride = F6_FRAME_HEADER + w * ht * 2;
            memcpy(b0, b, sizeof b);
        } else if (w != st->width || ht != st->height) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: frames of %lld x %lld (width x height at bytes 88, 90), but "
                             "%s has %lld x %lld",
                             fp, (long long)w, (long long)ht, ds->file_paths[0],
                             (long long)st->width, (long long)st->height);
            goto done;
        }
        int64_t declared = le32(b + 1020), room = (f->size - F6_HEADER) / st->stride;
        if (declared > room) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: truncated: the header declares %lld frames (byte 1020) of "
                             "%lld bytes with their headers, the file (%lld bytes) holds %lld",
                             fp, (long long)declared, (long long)st->stride, (long long)f->size,
                             (long long)room);
            goto done;
        }
        int64_t count = declared ? declared : room;
        if (i == 0) {
            dark_count = count;
            continue;
        }
        st->files[st->n_files++] = (f6_file_t){fi, total, count};
        total += count;
    }
    if (total == 0) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: no signal frames: %d file(s), the first (%s) holds the dark frames",
                         a->path, l.n, ds->file_paths[0]);
        goto done;
    }
    st->rep = h.bin;
    ds->dtype = TSR_U16;
    ds->image_count = h.signal_frames >= 0 && h.signal_frames < total ? h.signal_frames : total;
    int64_t rows = 2 * st->height * st->rep, cols = st->width / 2;
    tsr_shape_t sig = {.ndim = 2, .dims = {rows, cols}};
    tsr_shape_t nav = {.ndim = 1, .dims = {ds->image_count}};
    if (h.scan[0])
        nav = (tsr_shape_t){.ndim = 2, .dims = {h.scan[0], h.scan[1]}};
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        goto done;
    ds->state = st;
    st = NULL;
    const f6_state_t *s = ds->state;

    /* corrections */
    bool offset = true;
    if ((rc = tsr__parse_bool(tsr__params_value(a->params, params, 5, "enable_offset_correction"),
                              &offset, a->err, a->errlen, "frms6: enable_offset_correction")))
        goto done;
    float *dark = NULL, *gain = NULL;
    if (offset && dark_count > 0) {
        if ((rc = load_dark(a, s, dark_count, &dark)))
            goto done;
        ds->corr.dark = dark;
    }
    const char *gpath = tsr_params_get(a->params, "gain_map_path");
    if (gpath && *gpath) {
        if ((rc = load_gain(a, gpath, rows, cols, &gain)))
            goto done;
        ds->corr.gain = gain;
    }

    /* metadata */
    json_t *files = json_array(), *corr = json_object();
    meta = json_object();
    if (!files || !corr || !meta) {
        json_decref(files);
        json_decref(corr);
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    json_array_append_new(files, json_string(hdr_path));
    for (int i = 0; i < ds->n_files; i++)
        json_array_append_new(files, json_string(ds->file_paths[i]));
    json_object_set_new(meta, "files", files);
    json_object_set_new(meta, "detector", json_string("PNDetector pnCCD"));
    char id[81];
    memcpy(id, b0 + 8, 80);
    id[80] = 0;
    for (char *c = id; *c; c++)
        if (!isprint((unsigned char)*c))
            *c = '?';
    json_object_set_new(meta, "header",
                        json_pack("{s:i, s:i, s:i, s:s, s:I, s:I, s:I, s:I, s:I, s:I}",
                                  "header_size", F6_HEADER, "frame_header_size", F6_FRAME_HEADER,
                                  "version", F6_VERSION, "dataset_id", trim(id), "width",
                                  (json_int_t)s->width, "height", (json_int_t)s->height, "binning",
                                  (json_int_t)s->rep, "dark_frames", (json_int_t)dark_count,
                                  "signal_frames", (json_int_t)total, "files", (json_int_t)l.n));
    if (h.window[0])
        json_object_set_new(meta, "windowing",
                            json_pack("[I,I]", (json_int_t)h.window[0], (json_int_t)h.window[1]));
    json_object_set_new(meta, "hdr", h.all);
    h.all = NULL;
    uint8_t fh[16];
    if (tsr__file_pread(&ds->files[s->files[0].file], fh, sizeof fh, F6_HEADER) == 0)
        json_object_set_new(meta, "first_frame_time", json_real(le32(fh + 4) + le32(fh + 8) / 1e6));
    if (dark)
        json_object_set_new(
            corr, "dark",
            json_pack("{s:s, s:I}", "file", ds->file_paths[0], "frames", (json_int_t)dark_count));
    if (gain)
        json_object_set_new(corr, "gain", json_string(gpath));
    if (json_object_size(corr))
        json_object_set_new(meta, "corrections", corr);
    else
        json_decref(corr);
    rc = tsr__dataset_set_meta(a, meta);
    meta = NULL;
done:
    json_decref(meta);
    json_decref(h.all);
    for (int i = 0; i < l.n; i++)
        tsr__free(ctx, l.names[i]);
    tsr__free(ctx, l.names);
    tsr__free(ctx, l.nums);
    if (st) {
        tsr__free(ctx, st->files);
        tsr__free(ctx, st);
    }
    tsr__free(ctx, base);
    tsr__free(ctx, dir);
    tsr__free(ctx, hdr_path);
    return rc;
}

/* ---- reading ------------------------------------------------------------ */

static const f6_file_t *file_of(const f6_state_t *st, int64_t img)
{
    int lo = 0, hi = st->n_files - 1;
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (st->files[mid].first <= img)
            lo = mid;
        else
            hi = mid - 1;
    }
    return &st->files[lo];
}

static int read_frms6(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                      int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen)
{
    const f6_state_t *st = ds->state;
    int64_t W = st->width, Hh = st->height, cols = W / 2;
    int64_t fr = sig0 / cols, lr = (sig0 + siglen - 1) / cols; /* output rows [fr, lr] */
    /* the raw rows that hold them */
    int64_t yb0 = fr / st->rep, yb1 = lr / st->rep, lo = Hh, hi = -1;
    if (yb0 < Hh) {
        lo = yb0;
        hi = yb1 < Hh - 1 ? yb1 : Hh - 1;
    }
    if (yb1 >= Hh) {
        int64_t a = 2 * Hh - 1 - yb1, b = 2 * Hh - 1 - (yb0 > Hh ? yb0 : Hh);
        lo = a < lo ? a : lo;
        hi = b > hi ? b : hi;
    }
    size_t span = (size_t)((hi - lo + 1) * W) * 2, des = tsr_dtype_size(dt);
    size_t row_tmp = (size_t)cols * sizeof(uint16_t);
    int rc;
    for (int64_t i = 0; i < n;) {
        const f6_file_t *f = file_of(st, img0 + i);
        int64_t in_file = f->first + f->count - (img0 + i), k = 1;
        while (k < n - i && k < in_file && (size_t)(k * st->stride) + span <= F6_BATCH)
            k++;
        size_t bytes = (size_t)((k - 1) * st->stride) + span;
        if ((rc = tsr__io_reserve(io, bytes + row_tmp + 64)))
            return tsr__seterr(err, errlen, rc, "out of memory");
        int64_t off = F6_HEADER + (img0 + i - f->first) * st->stride + F6_FRAME_HEADER + lo * W * 2;
        if ((rc = tsr__io_fetch(ds, io, f->file, off, bytes, io->scratch, err, errlen)))
            return rc;
        uint16_t *tmp = (uint16_t *)((uint8_t *)io->scratch + ((bytes + 63) & ~(size_t)63));
        for (int64_t j = 0; j < k; j++) {
            const uint16_t *raw =
                (const uint16_t *)((const uint8_t *)io->scratch + (size_t)(j * st->stride));
            uint8_t *o = (uint8_t *)out + (size_t)((i + j) * siglen) * des;
            for (int64_t y = fr; y <= lr; y++) {
                int64_t c0 = y == fr ? sig0 % cols : 0;
                int64_t c1 = y == lr ? (sig0 + siglen - 1) % cols + 1 : cols;
                int64_t yb = y / st->rep;
                uint8_t *dst = o + (size_t)(y * cols + c0 - sig0) * des;
                if (yb < Hh) {
                    tsr__convert(dst, dt, raw + (yb - lo) * W + c0, TSR_U16, false,
                                 (size_t)(c1 - c0));
                } else { /* the bottom chip: mirrored */
                    const uint16_t *r = raw + (2 * Hh - 1 - yb - lo) * W + W - 1;
                    if (dt == TSR_U16) {
                        uint16_t *d = (uint16_t *)dst;
                        for (int64_t x = c0; x < c1; x++)
                            d[x - c0] = r[-x];
                    } else if (dt == TSR_F32) {
                        float *d = (float *)dst;
                        for (int64_t x = c0; x < c1; x++)
                            d[x - c0] = r[-x];
                    } else {
                        for (int64_t x = c0; x < c1; x++)
                            tmp[x - c0] = r[-x];
                        tsr__convert(dst, dt, tmp, TSR_U16, false, (size_t)(c1 - c0));
                    }
                }
            }
        }
        i += k;
    }
    return 0;
}

static void close_frms6(tsr_dataset_t *ds)
{
    f6_state_t *st = ds->state;
    if (st) {
        tsr__free(ds->ctx, st->files);
        tsr__free(ds->ctx, st);
        ds->state = NULL;
    }
}

const tsr__reader_def_t tsr__format_frms6 = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "frms6",
    .description = "PNDetector pnCCD (.frms6 files with their .hdr): folded frames, binning, "
                   "dark frames and gain map as corrections",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_frms6,
    .read = read_frms6,
    .close = close_frms6,
};
