/*
 * k2is.c — Gatan K2 IS raw data: eight sector files "<stem><k>.bin" and a
 * tag file "<stem>.gtg" (a DigitalMicrograph tag tree) beside them.
 *
 * Layout (as LiberTEM reads it): each sector file is a sequence of blocks
 * of 22360 bytes — a 40-byte big-endian header (sync word 0xFFFF0055 at 0,
 * version at 8, flags at 9 with bit 0 "shutter active", a block counter at
 * 16, the sector's width 256 and height 1860 at 20 and 22, the frame id at
 * 24, the block's first and last pixel x, y within the sector at 28..35,
 * the block size at 36) and 930 × 16 pixels of 12 bits, packed
 * little-endian, two pixels in three bytes.  A frame is 32 consecutive
 * blocks in each sector: block b covers rows 930 * (b / 16) .. +930 and
 * columns 240 - 16 * (b % 16) .. +16 of the sector, and sector s covers
 * columns 256 s .. 256 s + 256 of the 1860 × 2048 frame.
 *
 * Synchronisation at open: in each sector the first block that starts a
 * frame (its position says block 0) is found, the sectors are advanced to
 * the same frame id, the first frame is checked to be whole in all
 * sectors, and the frames every sector holds completely are counted.  Image
 * 0 is the first frame whose shutter flag is set in all sectors; the
 * frames before it remain reachable with a negative sync_offset.  The scan
 * shape comes from the .gtg ("SI Dimensions" Size Y, Size X) through a
 * small bounded tag parser; a .gtg without them means a time series (1-D).
 *
 * Reading decodes blocks straight into the tile: tiles are whole block
 * rows (base_rows 930), and each block's header is checked on the way
 * (sync word, position, and one frame id across all blocks of a frame), so
 * that sectors that slipped out of step give an error, not a mixed frame.
 */
#include "io/dataset.h"

#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <strings.h>

#define K2_SECTORS 8
#define K2_BLOCK 22360 /* 0x5758 */
#define K2_HDR 40
#define K2_BW 16  /* block width */
#define K2_BH 930 /* block height */
#define K2_BPF 32 /* blocks per sector per frame */
#define K2_SW 256 /* sector width */
#define K2_H 1860
#define K2_W 2048
#define K2_ROW_BYTES 24 /* 16 pixels of 12 bits */
#define K2_SECTOR_FRAME ((int64_t)K2_BPF * K2_BLOCK)
#define K2_SYNC 0xFFFF0055u
#define K2_SHUTTER 0x01u
#define K2_MAX_ALIGN 100000 /* frames scanned to align the sectors */
#define GTG_MAX_BYTES (64 << 20)

/* ---- block headers ------------------------------------------------------ */

typedef struct k2_hdr {
    uint32_t sync;
    uint8_t version, flags;
    uint32_t block_count;
    uint16_t width, height;
    uint32_t frame_id;
    uint16_t x0, y0, x1, y1;
    uint32_t block_size;
} k2_hdr_t;

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}
static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void parse_hdr(const uint8_t *b, k2_hdr_t *h)
{
    h->sync = be32(b);
    h->version = b[8];
    h->flags = b[9];
    h->block_count = be32(b + 16);
    h->width = be16(b + 20);
    h->height = be16(b + 22);
    h->frame_id = be32(b + 24);
    h->x0 = be16(b + 28);
    h->y0 = be16(b + 30);
    h->x1 = be16(b + 32);
    h->y1 = be16(b + 34);
    h->block_size = be32(b + 36);
}

/* The position of a block in its frame (0..31) from its pixel range, or -1. */
static int block_index(const k2_hdr_t *h)
{
    if (h->x0 > K2_SW - K2_BW || h->x0 % K2_BW || h->x1 != h->x0 + K2_BW - 1 ||
        (h->y0 != 0 && h->y0 != K2_BH) || h->y1 != h->y0 + K2_BH - 1)
        return -1;
    return (K2_SW - K2_BW - h->x0) / K2_BW + K2_BW * (h->y0 / K2_BH);
}

typedef struct k2_state {
    int64_t start[K2_SECTORS]; /* byte offset of image 0's first block per sector */
} k2_state_t;

/* Read and check the header of the block at off of sector s: a sync word,
 * the sector's geometry and a pixel range of the layout. */
static int read_hdr(tsr__open_args_t *a, int s, int64_t off, k2_hdr_t *h)
{
    const tsr_dataset_t *ds = a->ds;
    uint8_t b[K2_HDR];
    memset(h, 0, sizeof *h);
    if (off + K2_BLOCK > ds->files[s].size)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: truncated K2IS sector: the block at byte %lld needs %d bytes, the "
                           "file has %lld",
                           ds->file_paths[s], (long long)off, K2_BLOCK,
                           (long long)ds->files[s].size);
    if (tsr__file_pread(&ds->files[s], b, sizeof b, off))
        return tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read the block at byte %lld",
                           ds->file_paths[s], (long long)off);
    parse_hdr(b, h);
    const char *p = ds->file_paths[s];
    if (h->sync != K2_SYNC)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: block at byte %lld: sync word 0x%08x, expected 0x%08x (not a K2IS "
                           "sector file, or blocks are not %d bytes apart)",
                           p, (long long)off, h->sync, K2_SYNC, K2_BLOCK);
    if (h->width != K2_SW || h->height != K2_H)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: block at byte %lld: sector width x height %u x %u, expected %d x "
                           "%d",
                           p, (long long)off, h->width, h->height, K2_SW, K2_H);
    if (block_index(h) < 0)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: block at byte %lld: pixel range x %u..%u, y %u..%u is not a %d x "
                           "%d block of the sector layout",
                           p, (long long)off, h->x0, h->x1, h->y0, h->y1, K2_BH, K2_BW);
    return 0;
}

/* ---- the .gtg tag file ----------------------------------------------------
 *
 * A DigitalMicrograph tag tree (DM3 or DM4): a header (version, root
 * length, byte order of the data: 1 = little-endian), then the root group:
 * sorted, open, number of tags; each tag is a type (20 group, 21 data), a
 * name, in DM4 its length, then a group or "%%%%", the number of type
 * words, the type words and the data.  Only scalar numbers are decoded; the
 * rest is skipped.  Every size is checked against the buffer. */

typedef struct gtg {
    const uint8_t *b;
    size_t n, pos;
    int version;
    bool le;
    int tags;
    char path[1024];
    /* results */
    double size_y, size_x, samp_h, samp_w;
} gtg_t;

static bool g_take(gtg_t *g, size_t k, const uint8_t **p)
{
    if (k > g->n - g->pos)
        return false;
    *p = g->b + g->pos;
    g->pos += k;
    return true;
}

static bool g_uint(gtg_t *g, size_t k, uint64_t *v) /* big-endian, 1..8 bytes */
{
    const uint8_t *p;
    if (!g_take(g, k, &p))
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < k; i++)
        x = x << 8 | p[i];
    *v = x;
    return true;
}

static bool g_word(gtg_t *g, uint64_t *v) /* a length or type word */
{
    return g_uint(g, g->version == 4 ? 8 : 4, v);
}

static int simple_size(uint64_t t)
{
    switch (t) {
    case 2:
    case 4: return 2;
    case 3:
    case 5:
    case 6: return 4;
    case 7:
    case 11:
    case 12: return 8;
    case 8:
    case 9:
    case 10: return 1;
    default: return 0;
    }
}

static double simple_value(const gtg_t *g, uint64_t t, const uint8_t *p)
{
    uint8_t q[8];
    int k = simple_size(t);
    for (int i = 0; i < k; i++)
        q[i] = g->le ? p[i] : p[k - 1 - i];
    uint64_t u = 0;
    for (int i = k - 1; i >= 0; i--)
        u = u << 8 | q[i];
    switch (t) {
    case 2: return (int16_t)u;
    case 3: return (int32_t)u;
    case 4:
    case 5:
    case 8:
    case 9:
    case 12: return (double)u;
    case 10: return (int8_t)u;
    case 11: return (double)(int64_t)u;
    case 6: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    case 7: {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    default: return NAN;
    }
}

static void g_found(gtg_t *g, double v)
{
    static const char *const names[4] = {
        "SI Dimensions.Size Y", "SI Dimensions.Size X",
        "SI Image Tags.SI.Acquisition.Spatial Sampling.Height (pixels)",
        "SI Image Tags.SI.Acquisition.Spatial Sampling.Width (pixels)"};
    double *dst[4] = {&g->size_y, &g->size_x, &g->samp_h, &g->samp_w};
    for (int i = 0; i < 4; i++)
        if (!strcmp(g->path, names[i]))
            *dst[i] = v;
}

/* The data of a tag: type words, then the data (skipped unless a scalar).
 * tag_end: where the tag ends (DM4), or 0. */
static bool g_data(gtg_t *g, size_t tag_end)
{
    const uint8_t *p;
    uint64_t ninfo, info[64];
    if (!g_take(g, 4, &p) || memcmp(p, "%%%%", 4) || !g_word(g, &ninfo) || ninfo > 64)
        return false;
    for (uint64_t i = 0; i < ninfo; i++)
        if (!g_word(g, &info[i]))
            return false;
    if (ninfo == 1 && simple_size(info[0])) {
        if (!g_take(g, (size_t)simple_size(info[0]), &p))
            return false;
        g_found(g, simple_value(g, info[0], p));
        if (tag_end) {
            if (tag_end < g->pos || tag_end > g->n)
                return false;
            g->pos = tag_end;
        }
        return true;
    }
    if (tag_end) { /* DM4: the tag says its length */
        if (tag_end < g->pos || tag_end > g->n)
            return false;
        g->pos = tag_end;
        return true;
    }
    /* DM3: the size from the types */
    uint64_t bytes = 0;
    if (ninfo == 2 && info[0] == 18) { /* string: UTF-16 characters */
        bytes = info[1] * 2;
    } else if (ninfo == 3 && info[0] == 20 && simple_size(info[1])) {
        bytes = info[2] * (uint64_t)simple_size(info[1]);
        if (info[2] > g->n)
            return false;
    } else if (ninfo >= 3 && (info[0] == 15 || (info[0] == 20 && info[1] == 15))) {
        size_t k = info[0] == 15 ? 1 : 2; /* at struct name length */
        uint64_t nf = info[k + 1], one = 0;
        if (nf > 30 || k + 2 + 2 * nf + (info[0] == 20) != ninfo)
            return false;
        for (uint64_t f = 0; f < nf; f++) {
            int sz = simple_size(info[k + 3 + 2 * f]);
            if (!sz)
                return false;
            one += (uint64_t)sz;
        }
        uint64_t count = info[0] == 20 ? info[ninfo - 1] : 1;
        if (count > g->n)
            return false;
        bytes = one * count;
    } else {
        return false;
    }
    return bytes <= g->n - g->pos && g_take(g, (size_t)bytes, &p);
}

static bool g_group(gtg_t *g, int depth)
{
    const uint8_t *p;
    uint64_t ntags;
    if (depth > 32 || !g_take(g, 2, &p) || !g_word(g, &ntags))
        return false;
    for (uint64_t t = 0; t < ntags; t++) {
        uint64_t type, nl, len = 0;
        if (++g->tags > (1 << 20) || !g_uint(g, 1, &type) || !g_uint(g, 2, &nl) ||
            !g_take(g, (size_t)nl, &p))
            return false;
        size_t plen = strlen(g->path);
        if (plen + nl + 2 < sizeof g->path) {
            if (depth > 0)
                g->path[plen] = '.', g->path[plen + 1] = 0;
            strncat(g->path, (const char *)p, (size_t)nl);
        }
        if (g->version == 4 && !g_uint(g, 8, &len))
            return false;
        size_t tag_end = 0;
        if (g->version == 4) {
            if (len > g->n - g->pos)
                return false;
            tag_end = g->pos + (size_t)len;
        }
        bool ok = type == 20 ? g_group(g, depth + 1) : type == 21 ? g_data(g, tag_end) : false;
        g->path[plen] = 0;
        if (!ok)
            return false;
    }
    return true;
}

/* Parse the .gtg at path; *ok false (with why) if it cannot be read. */
static void read_gtg(tsr_ctx_t *ctx, const char *path, gtg_t *g, bool *ok, const char **why)
{
    memset(g, 0, sizeof *g);
    g->size_y = g->size_x = g->samp_h = g->samp_w = NAN;
    *ok = false;
    tsr__file_t f;
    char err[256];
    if (tsr__file_open(&f, path, err, sizeof err)) {
        *why = "it cannot be opened";
        return;
    }
    size_t n = f.size < GTG_MAX_BYTES ? (size_t)f.size : GTG_MAX_BYTES;
    uint8_t *b = tsr__malloc(ctx, n ? n : 1);
    if (!b || tsr__file_pread(&f, b, n, 0)) {
        tsr__file_close(&f);
        tsr__free(ctx, b);
        *why = "it cannot be read";
        return;
    }
    tsr__file_close(&f);
    g->b = b;
    g->n = n;
    uint64_t version, root, order;
    if (!g_uint(g, 4, &version) || (version != 3 && version != 4)) {
        *why = "it is not a DigitalMicrograph tag file (version 3 or 4 at byte 0)";
    } else {
        g->version = (int)version;
        if (!g_word(g, &root) || !g_uint(g, 4, &order) || order > 1)
            *why = "its header is malformed";
        else if ((g->le = order == 1, !g_group(g, 0)))
            *why = "its tag tree is malformed or truncated";
        else
            *ok = true;
    }
    tsr__free(ctx, b);
    g->b = NULL;
}

/* ---- finding the files ------------------------------------------------- */

static bool has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcasecmp(s + n - k, suf) == 0;
}

typedef struct listing {
    tsr_ctx_t *ctx;
    const char *base; /* file name prefix */
    char *names[K2_SECTORS + 1];
    int n;
} listing_t;

static int list_one(void *arg, const char *name)
{
    listing_t *l = arg;
    size_t bl = strlen(l->base);
    if (strncmp(name, l->base, bl) || !has_suffix(name, ".bin") || strlen(name) < bl + 4)
        return 0;
    if (l->n == K2_SECTORS + 1)
        return 0; /* too many: counted as one more */
    l->names[l->n] = tsr__strdup(l->ctx, name);
    if (!l->names[l->n])
        return TSR_ENOMEM;
    l->n++;
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The prefix "<dir>/<stem>" of the data set of path: "<prefix>.gtg" and
 * "<prefix>*.bin".  For "x_.gtg" it is "x_"; for "x_3.bin" "x_". */
static char *dataset_prefix(tsr_ctx_t *ctx, const char *path)
{
    size_t n = strlen(path);
    if (has_suffix(path, ".gtg") || has_suffix(path, ".bin"))
        n -= 4;
    if (has_suffix(path, ".bin"))
        while (n > 0 && isdigit((unsigned char)path[n - 1]) && path[n - 1] != '/')
            n--;
    char *s = tsr__malloc(ctx, n + 1);
    if (s) {
        memcpy(s, path, n);
        s[n] = 0;
    }
    return s;
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

/* ---- open -------------------------------------------------------------- */

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "",
     "scan shape (default: the .gtg's SI Dimensions, else all frames from the shutter on, 1-D)",
     false},
    {"sig_shape", "shape", "", "reshape the frames (default 1860,2048)", false},
    {"sync_offset", "int", "0",
     "frames to skip (positive) or to go back (negative) from the first frame with the shutter "
     "flag; blank frames before the first recorded one",
     false},
};

static const char *const exts[] = {"bin", "gtg", NULL};

static int probe(const char *path, const uint8_t *head, size_t n)
{
    if (n >= K2_HDR && be32(head) == K2_SYNC && be16(head + 20) == K2_SW && be16(head + 22) == K2_H)
        return 90;
    if (has_suffix(path, ".gtg")) {
        /* a DM tag file named .gtg: the K2 IS sidecar */
        if (n >= 4 && (be32(head) == 3 || be32(head) == 4))
            return 80;
        return 20;
    }
    if (n >= 4 && be32(head) == K2_SYNC && has_suffix(path, ".bin"))
        return 40; /* open explains what is wrong */
    return 0;
}

/* Find, in sector s from byte *off, the first block that starts a frame
 * (block 0 of the layout) within the first 32 blocks. */
static int find_frame_start(tsr__open_args_t *a, int s, int64_t *off, k2_hdr_t *h)
{
    for (int k = 0; k < K2_BPF; k++) {
        int64_t o = *off + (int64_t)k * K2_BLOCK;
        int rc = read_hdr(a, s, o, h);
        if (rc)
            return rc;
        if (block_index(h) == 0) {
            *off = o;
            return 0;
        }
    }
    return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                       "%s: no block starting a frame (pixel x 240, y 0) among the first %d "
                       "blocks",
                       a->ds->file_paths[s], K2_BPF);
}

/* Advance sector s from *off (a frame start with id *id) to the frame with
 * id want: first where consecutive ids put it, else frame by frame. */
static int seek_frame(tsr__open_args_t *a, int s, int64_t *off, uint32_t id, uint32_t want)
{
    k2_hdr_t h = {0};
    int64_t guess = *off + (int64_t)(want - id) * K2_SECTOR_FRAME;
    if (guess + K2_SECTOR_FRAME <= a->ds->files[s].size && read_hdr(a, s, guess, &h) == 0 &&
        h.frame_id == want && block_index(&h) == 0) {
        *off = guess;
        return 0;
    }
    for (int64_t k = 1; k <= K2_MAX_ALIGN; k++) {
        int64_t o = *off + k * K2_SECTOR_FRAME;
        if (o + K2_SECTOR_FRAME > a->ds->files[s].size)
            break;
        int rc = read_hdr(a, s, o, &h);
        if (rc)
            return rc;
        if (h.frame_id == want) {
            *off = o;
            return 0;
        }
    }
    return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                       "%s: no frame with id %u (where another sector starts) at a whole-frame "
                       "step (%lld bytes) from byte %lld: the sectors cannot be aligned",
                       a->ds->file_paths[s], want, (long long)K2_SECTOR_FRAME, (long long)*off);
}

/* Check that the frame at off of every sector is whole: 32 blocks in
 * layout order with one frame id. */
static int check_frame(tsr__open_args_t *a, const int64_t *off, int64_t frame, uint32_t *id)
{
    for (int s = 0; s < K2_SECTORS; s++) {
        for (int b = 0; b < K2_BPF; b++) {
            k2_hdr_t h = {0};
            int64_t o = off[s] + frame * K2_SECTOR_FRAME + (int64_t)b * K2_BLOCK;
            int rc = read_hdr(a, s, o, &h);
            if (rc)
                return rc;
            if (s == 0 && b == 0)
                *id = h.frame_id;
            if (block_index(&h) != b || h.frame_id != *id)
                return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                                   "%s: frame %lld after synchronisation is not whole: its block "
                                   "%d (byte %lld) has frame id %u at position %d, expected frame "
                                   "id %u (as in %s) at position %d",
                                   a->ds->file_paths[s], (long long)frame, b, (long long)o,
                                   h.frame_id, block_index(&h), *id, a->ds->file_paths[0], b);
        }
    }
    return 0;
}

static int open_k2is(tsr__open_args_t *a)
{
    tsr_dataset_t *ds = a->ds;
    tsr_ctx_t *ctx = a->ctx;
    listing_t l = {ctx, NULL, {0}, 0};
    char *prefix = dataset_prefix(ctx, a->path), *dir = NULL, *gtg_path = NULL;
    k2_state_t *st = NULL;
    json_t *meta = NULL;
    int rc = 0;
    if (!prefix || !(gtg_path = join(ctx, prefix, strlen(prefix), ".gtg"))) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    /* the sector files: "<prefix>*.bin", sorted by name */
    const char *slash = strrchr(prefix, '/');
    size_t dl = slash ? (size_t)(slash - prefix) + 1 : 0;
    if (!(dir = join(ctx, prefix, dl, ""))) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    l.base = prefix + dl;
    int lr = tsr__dir_each(dl ? dir : ".", list_one, &l);
    if (lr == TSR_ENOMEM) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    if (l.n != K2_SECTORS) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: a K2IS data set has %d sector files %s*.bin, found %s%d", a->path,
                         K2_SECTORS, prefix, l.n > K2_SECTORS ? "more than " : "",
                         l.n > K2_SECTORS ? K2_SECTORS : l.n);
        goto done;
    }
    qsort(l.names, K2_SECTORS, sizeof l.names[0], cmp_names);
    for (int s = 0; s < K2_SECTORS; s++) {
        char *p = join(ctx, dir, dl, l.names[s]);
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
    }

    /* synchronise the sectors */
    int64_t off[K2_SECTORS];
    uint32_t id[K2_SECTORS], want = 0;
    k2_hdr_t h0 = {0};
    for (int s = 0; s < K2_SECTORS; s++) {
        k2_hdr_t h = {0};
        off[s] = 0;
        if ((rc = read_hdr(a, s, 0, &h)))
            goto done;
        if (s == 0)
            h0 = h;
        if ((rc = find_frame_start(a, s, &off[s], &h)))
            goto done;
        id[s] = h.frame_id;
        if (s == 0 || (int32_t)(h.frame_id - want) > 0)
            want = h.frame_id;
    }
    for (int s = 0; s < K2_SECTORS; s++)
        if (id[s] != want && (rc = seek_frame(a, s, &off[s], id[s], want)))
            goto done;
    uint32_t first_id, last_id;
    if ((rc = check_frame(a, off, 0, &first_id)))
        goto done;
    int64_t frames = INT64_MAX;
    for (int s = 0; s < K2_SECTORS; s++) {
        int64_t k = (ds->files[s].size - off[s]) / K2_SECTOR_FRAME;
        frames = k < frames ? k : frames;
    }
    /* the last frame common to all sectors must be whole too; a sector may
     * end with blocks of a frame the others lack: step back a few frames */
    for (int back = 0;; back++) {
        if ((rc = check_frame(a, off, frames - 1, &last_id)) == 0)
            break;
        if (rc != TSR_ECORRUPT || back == 3 || frames == 1)
            goto done;
        frames--;
    }
    /* the first frame with the shutter flag in all sectors */
    int64_t shutter = -1;
    for (int64_t f = 0; f < frames && shutter < 0; f++) {
        int s = 0;
        for (; s < K2_SECTORS; s++) {
            uint8_t flags;
            if (tsr__file_pread(&ds->files[s], &flags, 1, off[s] + f * K2_SECTOR_FRAME + 9)) {
                rc = tsr__seterr(a->err, a->errlen, TSR_EIO, "%s: cannot read", ds->file_paths[s]);
                goto done;
            }
            if (!(flags & K2_SHUTTER))
                break;
        }
        if (s == K2_SECTORS)
            shutter = f;
    }

    /* the scan shape from the .gtg */
    gtg_t g;
    bool gtg_ok;
    const char *why = NULL;
    read_gtg(ctx, gtg_path, &g, &gtg_ok, &why);
    tsr_shape_t nav = {.ndim = 1, .dims = {frames - (shutter > 0 ? shutter : 0)}};
    bool scan = gtg_ok && g.size_y >= 1 && g.size_x >= 1 && g.size_y < 1e9 && g.size_x < 1e9;
    if (scan)
        nav = (tsr_shape_t){.ndim = 2, .dims = {(int64_t)g.size_y, (int64_t)g.size_x}};
    if (!gtg_ok && !tsr_params_get(a->params, "nav_shape")) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: the scan shape is read from %s, but %s; give nav_shape", a->path,
                         gtg_path, why);
        goto done;
    }
    ds->dtype = TSR_U16;
    ds->image_count = frames;
    tsr_shape_t sig = {.ndim = 2, .dims = {K2_H, K2_W}};
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        goto done;
    ds->sync_offset += shutter > 0 ? shutter : 0;
    /* tiles of whole block rows, when the frames keep their shape */
    if (ds->sig.ndim == 2 && ds->sig.dims[0] == K2_H && ds->sig.dims[1] == K2_W)
        ds->base_rows = K2_BH;
    st = tsr__calloc(ctx, 1, sizeof *st);
    if (!st) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(st->start, off, sizeof off);
    ds->state = st;
    st = NULL;

    /* metadata */
    json_t *files = json_array(), *offs = json_array();
    meta = json_object();
    if (!files || !offs || !meta) {
        json_decref(files);
        json_decref(offs);
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    for (int s = 0; s < K2_SECTORS; s++) {
        json_array_append_new(files, json_string(ds->file_paths[s]));
        json_array_append_new(offs, json_integer(off[s]));
    }
    if (gtg_ok)
        json_array_append_new(files, json_string(gtg_path));
    json_object_set_new(meta, "files", files);
    json_object_set_new(meta, "detector", json_string("Gatan K2 IS"));
    json_object_set_new(meta, "header",
                        json_pack("{s:i, s:I, s:o, s:I, s:I, s:b, s:I, s:I}", "version", h0.version,
                                  "block_size", (json_int_t)h0.block_size, "first_block_offsets",
                                  offs, "first_frame_id", (json_int_t)first_id, "last_frame_id",
                                  (json_int_t)last_id, "frame_ids_consecutive",
                                  (int64_t)(last_id - first_id) == frames - 1, "complete_frames",
                                  (json_int_t)frames, "shutter_frame",
                                  (json_int_t)(shutter >= 0 ? shutter : -1)));
    if (shutter < 0)
        json_object_set_new(meta, "note",
                            json_string("no frame has the shutter flag in all sectors: frames "
                                        "count from the first complete one"));
    if (gtg_ok) {
        json_t *gt = json_object();
        if (scan)
            json_object_set_new(gt, "scan_shape",
                                json_pack("[I,I]", (json_int_t)g.size_y, (json_int_t)g.size_x));
        if (g.samp_h >= 1 && g.samp_w >= 1 && g.samp_h < 1e9 && g.samp_w < 1e9)
            json_object_set_new(gt, "scan_shape_without_flyback",
                                json_pack("[I,I]", (json_int_t)g.samp_h, (json_int_t)g.samp_w));
        json_object_set_new(meta, "gtg", gt);
    } else {
        json_object_set_new(meta, "gtg_note", json_pack("s+", "not read: ", why));
    }
    rc = tsr__dataset_set_meta(a, meta);
    meta = NULL;
done:
    json_decref(meta);
    for (int i = 0; i < l.n; i++)
        tsr__free(ctx, l.names[i]);
    tsr__free(ctx, st);
    tsr__free(ctx, prefix);
    tsr__free(ctx, dir);
    tsr__free(ctx, gtg_path);
    return rc;
}

/* ---- reading ----------------------------------------------------------- */

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8); /* hosts we support are little-endian */
    return v;
}

/* 16 pixels of 12 bits (24 bytes, least significant bits first) into T. */
#define UNPACK16(T, out, in)                                               \
    do {                                                                   \
        uint64_t w0 = le64(in), w1 = le64((in) + 8), w2 = le64((in) + 16); \
        (out)[0] = (T)(w0 & 0xFFF);                                        \
        (out)[1] = (T)((w0 >> 12) & 0xFFF);                                \
        (out)[2] = (T)((w0 >> 24) & 0xFFF);                                \
        (out)[3] = (T)((w0 >> 36) & 0xFFF);                                \
        (out)[4] = (T)((w0 >> 48) & 0xFFF);                                \
        (out)[5] = (T)(((w0 >> 60) | (w1 << 4)) & 0xFFF);                  \
        (out)[6] = (T)((w1 >> 8) & 0xFFF);                                 \
        (out)[7] = (T)((w1 >> 20) & 0xFFF);                                \
        (out)[8] = (T)((w1 >> 32) & 0xFFF);                                \
        (out)[9] = (T)((w1 >> 44) & 0xFFF);                                \
        (out)[10] = (T)(((w1 >> 56) | (w2 << 8)) & 0xFFF);                 \
        (out)[11] = (T)((w2 >> 4) & 0xFFF);                                \
        (out)[12] = (T)((w2 >> 16) & 0xFFF);                               \
        (out)[13] = (T)((w2 >> 28) & 0xFFF);                               \
        (out)[14] = (T)((w2 >> 40) & 0xFFF);                               \
        (out)[15] = (T)(w2 >> 52);                                         \
    } while (0)

/* Decode rows [r0, r1) of the 16 blocks at `blocks` (one block row of a
 * sector, block 0 first) into out (rows of K2_W pixels, first row r0),
 * at the sector's columns. */
#define DECODE_FN(name, T)                                                              \
    static void name(const uint8_t *blocks, int sector, int64_t r0, int64_t r1, T *out) \
    {                                                                                   \
        for (int64_t r = r0; r < r1; r++) {                                             \
            T *o = out + (r - r0) * K2_W + sector * K2_SW;                              \
            const uint8_t *row = blocks + K2_HDR + r * K2_ROW_BYTES;                    \
            for (int j = 0; j < K2_BW; j++, o += K2_BW) {                               \
                const uint8_t *in = row + (size_t)(K2_BW - 1 - j) * K2_BLOCK;           \
                UNPACK16(T, o, in);                                                     \
            }                                                                           \
        }                                                                               \
    }
DECODE_FN(decode_u16, uint16_t)
DECODE_FN(decode_f32, float)
DECODE_FN(decode_f64, double)

/* Check the headers of the 16 blocks of block row br of a frame. */
static int check_blocks(const tsr_dataset_t *ds, int s, int64_t off, const uint8_t *blocks, int br,
                        int64_t img, bool *have_id, uint32_t *id, char *err, size_t errlen)
{
    for (int j = 0; j < K2_BW; j++) {
        k2_hdr_t h = {0};
        parse_hdr(blocks + (size_t)j * K2_BLOCK, &h);
        int want = br * K2_BW + j;
        if (!*have_id) {
            *id = h.frame_id;
            *have_id = true;
        }
        if (h.sync != K2_SYNC || block_index(&h) != want || h.frame_id != *id)
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "%s: block at byte %lld (image %lld, block %d): sync 0x%08x, "
                               "position %d, frame id %u; expected sync 0x%08x, position %d, "
                               "frame id %u (the sectors are out of step, or the file is "
                               "damaged)",
                               ds->file_paths[s], (long long)(off + (int64_t)j * K2_BLOCK),
                               (long long)img, want, h.sync, block_index(&h), h.frame_id, K2_SYNC,
                               want, *id);
    }
    return 0;
}

static int read_k2is(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                     int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen)
{
    const k2_state_t *st = ds->state;
    int64_t fr = sig0 / K2_W, lr = (sig0 + siglen - 1) / K2_W; /* rows [fr, lr] */
    bool rows_whole = sig0 % K2_W == 0 && siglen % K2_W == 0;
    bool direct = rows_whole && (dt == TSR_U16 || dt == TSR_F32 || dt == TSR_F64);
    int br0 = (int)(fr / K2_BH), br1 = (int)(lr / K2_BH); /* block rows */
    size_t blocks_bytes = (size_t)(br1 - br0 + 1) * K2_BW * K2_BLOCK;
    size_t band = direct ? 0 : (size_t)(lr - fr + 1) * K2_W * sizeof(uint16_t);
    int rc;
    if ((rc = tsr__io_reserve(io, blocks_bytes + band)))
        return tsr__seterr(err, errlen, rc, "out of memory");
    uint16_t *tmp = (uint16_t *)((uint8_t *)io->scratch + blocks_bytes);
    size_t des = tsr_dtype_size(dt);
    for (int64_t i = 0; i < n; i++) {
        int64_t img = img0 + i;
        uint8_t *o = (uint8_t *)out + (size_t)(i * siglen) * des;
        bool have_id = false;
        uint32_t id = 0;
        for (int s = 0; s < K2_SECTORS; s++) {
            int64_t off = st->start[s] + img * K2_SECTOR_FRAME + (int64_t)br0 * K2_BW * K2_BLOCK;
            /* one read per sector (pread, or a copy from the mapping: decoding
             * straight from a mapping is slower, its page faults cost more
             * than the copy) */
            if ((rc = tsr__io_fetch(ds, io, s, off, blocks_bytes, io->scratch, err, errlen)))
                return rc;
            const uint8_t *blocks = io->scratch;
            for (int br = br0; br <= br1; br++) {
                const uint8_t *b = blocks + (size_t)(br - br0) * K2_BW * K2_BLOCK;
                if ((rc = check_blocks(ds, s, off + (int64_t)(br - br0) * K2_BW * K2_BLOCK, b, br,
                                       img, &have_id, &id, err, errlen)))
                    return rc;
                /* rows of this block row inside [fr, lr] */
                int64_t a0 = br * K2_BH > fr ? br * K2_BH : fr;
                int64_t a1 = (br + 1) * K2_BH - 1 < lr ? (br + 1) * K2_BH - 1 : lr;
                int64_t r0 = a0 - br * K2_BH, r1 = a1 - br * K2_BH + 1;
                size_t at = (size_t)(a0 - fr) * K2_W; /* pixel index in the band */
                if (!direct)
                    decode_u16(b, s, r0, r1, tmp + at);
                else if (dt == TSR_U16)
                    decode_u16(b, s, r0, r1, (uint16_t *)o + at);
                else if (dt == TSR_F32)
                    decode_f32(b, s, r0, r1, (float *)o + at);
                else
                    decode_f64(b, s, r0, r1, (double *)o + at);
            }
        }
        if (!direct)
            tsr__convert(o, dt, tmp + (sig0 - fr * K2_W), TSR_U16, false, (size_t)siglen);
    }
    return 0;
}

static void close_k2is(tsr_dataset_t *ds)
{
    tsr__free(ds->ctx, ds->state);
    ds->state = NULL;
}

const tsr__reader_def_t tsr__format_k2is = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "k2is",
    .description = "Gatan K2 IS raw sectors (8 x .bin, 12-bit packed blocks) with the .gtg scan "
                   "shape",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS | TSR_CAP_MMAP,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_k2is,
    .read = read_k2is,
    .close = close_k2is,
};
