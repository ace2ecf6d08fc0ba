/*
 * zarr.c — Zarr v2 directory stores (and HyperSpy's .zspy, which is one).
 *
 * A path may name an array directory (it holds .zarray), a group directory
 * (.zgroup; its arrays of three or more dimensions are listed and the
 * largest is opened, unless `ds_path` names one), or the .zarray / .zgroup
 * file itself.  The stored array's last two dimensions are the signal and
 * the others the scan (HyperSpy's axis groups may say that only the last
 * one is signal); nav_shape / sig_shape reshape as for every format.
 *
 * Reading follows the chunks: ds->base_depth and ds->base_rows ask the
 * engine for tiles that are whole chunk extents along the last scan
 * dimension and the first signal dimension, and each worker keeps the
 * chunks it decompressed in a small LRU cache (its io->fmt_scratch,
 * chunk_cache_mib), so that a chunk that spans several tiles, or several
 * scan rows, is read and decompressed once per worker rather than once per
 * tile.  A missing chunk file reads as fill_value (zero when it is null).
 *
 * Invariants: chunk files are named from the grid coordinates only (never
 * from file contents); every chunk is decoded into a buffer of exactly one
 * chunk (zarr_codec.c), and a tile copies only the in-bounds part of it.
 */
#include "io/formats/zarr/zarr.h"
#include "io/dataset.h"

#include <jansson.h>
#include <stdlib.h>
#include <strings.h>

#define ZARR_META_MAX ((int64_t)1 << 20) /* bytes of a .zarray / .zattrs */
#define ZARR_WALK_DEPTH 16
#define ZARR_WALK_ENTRIES 100000
#define ZARR_CACHE_SLOTS 256
#define ZARR_TILE_BUDGET ((int64_t)1 << 20) /* the engine's default tile budget */

static const tsr_param_def_t params[] = {
    {"ds_path", "string", "",
     "path of the array inside a group, e.g. Experiments/__unnamed__/data (default: the "
     "largest array of 3 or more dimensions)",
     false},
    {"nav_shape", "shape", "", "scan shape (default: the array's leading dimensions)", false},
    {"sig_shape", "shape", "", "frame shape (default: the array's last two dimensions)", false},
    {"sync_offset", "int", "0",
     "frames to skip at the start (positive) or blank frames to insert (negative)", false},
    {"chunk_cache_mib", "int", "64",
     "per-worker cache of decompressed chunks, in MiB (at least one chunk is kept)", false},
};

static const char *const exts[] = {"zspy", "zarr", NULL};

typedef struct zarr_state {
    tsr__zarr_meta_t m;
    char *dir;                  /* the array's directory */
    int k, s;                   /* stored nav and sig dimensions (k + s = ndim) */
    int64_t H, W;               /* stored frame: H rows of W pixels (H = 1 for 1-D signals) */
    int64_t cH, cW;             /* chunk extent along them */
    int64_t grid[TSR_MAX_DIMS]; /* chunks along each dimension */
    size_t cache_bytes;
} zarr_state_t;

/* ---- paths and small files --------------------------------------------- */

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static bool is_meta_name(const char *name)
{
    return strcmp(name, ".zarray") == 0 || strcmp(name, ".zgroup") == 0 ||
           strcmp(name, ".zattrs") == 0;
}

static bool has_file(const char *dir, const char *name)
{
    char p[4096];
    int n = snprintf(p, sizeof p, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof p)
        return false;
    tsr__file_t f;
    char err[64];
    if (tsr__file_open(&f, p, err, sizeof err))
        return false;
    tsr__file_close(&f);
    return true;
}

/* dir + "/" + name, allocated. */
static char *join(tsr_ctx_t *ctx, const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = tsr__malloc(ctx, a + b + 2);
    if (p) {
        memcpy(p, dir, a);
        p[a] = '/';
        memcpy(p + a + 1, name, b + 1);
    }
    return p;
}

/* Read a whole metadata file (at most ZARR_META_MAX bytes). */
static int read_small(tsr_ctx_t *ctx, const char *path, char **out, size_t *len, char *err,
                      size_t errlen)
{
    return tsr__read_text(ctx, path, ZARR_META_MAX, 0, "a Zarr metadata file", out, len, err,
                          errlen);
}

static int load_meta(tsr_ctx_t *ctx, const char *dir, tsr__zarr_meta_t *m, char *err, size_t errlen)
{
    char *p = join(ctx, dir, ".zarray"), *text = NULL;
    size_t n = 0;
    if (!p)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    int rc = read_small(ctx, p, &text, &n, err, errlen);
    if (rc == 0) {
        char why[TSR__ERRMSG_MAX - 128];
        rc = tsr__zarr_parse_meta(text, n, m, why, sizeof why);
        if (rc)
            tsr__seterr(err, errlen, rc, "%s: %s", p, why);
    }
    tsr__free(ctx, text);
    tsr__free(ctx, p);
    return rc;
}

/* ---- probe ------------------------------------------------------------- */

static int probe(const char *path, const uint8_t *head, size_t n)
{
    if (is_meta_name(base_name(path))) {
        size_t i = 0;
        while (i < n && (head[i] == ' ' || head[i] == '\n' || head[i] == '\r' || head[i] == '\t'))
            i++;
        return i < n && head[i] == '{' ? 90 : 0;
    }
    if (tsr__is_dir(path))
        return has_file(path, ".zarray") || has_file(path, ".zgroup") ? 100 : 0;
    return 0;
}

/* ---- groups ------------------------------------------------------------ */

typedef struct candidate {
    char *rel; /* path inside the group */
    int ndim;
    int64_t shape[TSR_MAX_DIMS];
    int64_t size;
} candidate_t;

typedef struct walk {
    tsr_ctx_t *ctx;
    candidate_t *c;
    int n, cap;
    int entries;
    int depth;
    char *dir; /* current directory */
    char *rel; /* its path inside the group ("" at the top) */
    int rc;
} walk_t;

static int walk_dir(walk_t *w);

static int walk_entry(void *ud, const char *name)
{
    walk_t *w = ud;
    if (++w->entries > ZARR_WALK_ENTRIES)
        return 1; /* enough: list what was found */
    if (name[0] == '.')
        return 0;
    char *dir = join(w->ctx, w->dir, name);
    if (dir && !tsr__is_dir(dir)) {
        tsr__free(w->ctx, dir);
        return 0;
    }
    char *rel = w->rel[0] ? join(w->ctx, w->rel, name) : tsr__strdup(w->ctx, name);
    if (!dir || !rel) {
        tsr__free(w->ctx, dir);
        tsr__free(w->ctx, rel);
        w->rc = TSR_ENOMEM;
        return 1;
    }
    if (has_file(dir, ".zarray")) {
        tsr__zarr_meta_t m;
        char err[64];
        if (load_meta(w->ctx, dir, &m, err, sizeof err) == 0) {
            if (w->n == w->cap) {
                int cap = w->cap ? 2 * w->cap : 8;
                candidate_t *c = tsr__realloc(w->ctx, w->c, (size_t)cap * sizeof *c);
                if (!c) {
                    w->rc = TSR_ENOMEM;
                    tsr__free(w->ctx, dir);
                    tsr__free(w->ctx, rel);
                    return 1;
                }
                w->c = c;
                w->cap = cap;
            }
            candidate_t *c = &w->c[w->n++];
            c->rel = rel;
            rel = NULL;
            c->ndim = m.ndim;
            c->size = 1;
            for (int i = 0; i < m.ndim; i++) {
                c->shape[i] = m.shape[i];
                c->size *= m.shape[i];
            }
        }
    } else if (w->depth < ZARR_WALK_DEPTH && has_file(dir, ".zgroup")) {
        char *pd = w->dir, *pr = w->rel;
        w->dir = dir;
        w->rel = rel;
        w->depth++;
        int r = walk_dir(w);
        w->depth--;
        w->dir = pd;
        w->rel = pr;
        if (r) {
            tsr__free(w->ctx, dir);
            tsr__free(w->ctx, rel);
            return r;
        }
    }
    tsr__free(w->ctx, dir);
    tsr__free(w->ctx, rel);
    return 0;
}

static int walk_dir(walk_t *w)
{
    int r = tsr__dir_each(w->dir, walk_entry, w);
    return r < 0 ? 0 : r; /* an unreadable subgroup holds nothing we can open */
}

static void free_candidates(walk_t *w)
{
    for (int i = 0; i < w->n; i++)
        tsr__free(w->ctx, w->c[i].rel);
    tsr__free(w->ctx, w->c);
}

/* ---- open -------------------------------------------------------------- */

/* The directory a path names: itself, or the directory of a .zarray,
 * .zgroup or .zattrs file; without trailing '/'. */
static char *store_dir(tsr_ctx_t *ctx, const char *path)
{
    char *d = tsr__strdup(ctx, path);
    if (!d)
        return NULL;
    size_t n = strlen(d);
    while (n > 1 && d[n - 1] == '/')
        d[--n] = 0;
    if (is_meta_name(base_name(d))) {
        char *s = strrchr(d, '/');
        if (s == d)
            s[1] = 0;
        else if (s)
            *s = 0;
        else
            strcpy(d, ".");
    }
    return d;
}

static json_t *shape_json(const int64_t *v, int n)
{
    json_t *a = json_array();
    for (int i = 0; i < n && a; i++)
        json_array_append_new(a, json_integer((json_int_t)v[i]));
    return a;
}

/* HyperSpy's axes: <array's parent>/axis-<i>/.zattrs with size, scale,
 * offset, units, name, navigate.  Returns a JSON array of ndim axis objects
 * (or NULL if they are absent or do not match the array) and the number of
 * trailing non-navigation axes. */
static json_t *hyperspy_axes(tsr_ctx_t *ctx, const char *dir, const tsr__zarr_meta_t *m,
                             int *sig_dims)
{
    char *parent = tsr__strdup(ctx, dir);
    if (!parent)
        return NULL;
    char *s = strrchr(parent, '/');
    if (s)
        *s = 0;
    else
        strcpy(parent, ".");
    json_t *axes = json_array();
    bool navigate[TSR_MAX_DIMS];
    for (int i = 0; i < m->ndim && axes; i++) {
        char name[64], *p, *text = NULL;
        size_t n = 0;
        char err[64];
        snprintf(name, sizeof name, "axis-%d/.zattrs", i);
        if (!(p = join(ctx, parent, name)) || read_small(ctx, p, &text, &n, err, sizeof err)) {
            tsr__free(ctx, p);
            json_decref(axes);
            axes = NULL;
            break;
        }
        tsr__free(ctx, p);
        json_t *o = json_loadb(text, n, 0, NULL);
        tsr__free(ctx, text);
        json_t *size = json_object_get(o, "size");
        if (!json_is_object(o) || !json_is_integer(size) ||
            json_integer_value(size) != m->shape[i]) {
            json_decref(o);
            json_decref(axes);
            axes = NULL;
            break;
        }
        json_t *sc = json_object_get(o, "scale"), *of = json_object_get(o, "offset");
        json_t *un = json_object_get(o, "units"), *nm = json_object_get(o, "name");
        json_t *ax = json_pack("{s:s, s:f, s:f, s:s}", "name",
                               json_is_string(nm) ? json_string_value(nm) : "", "scale",
                               json_is_number(sc) ? json_number_value(sc) : 1.0, "offset",
                               json_is_number(of) ? json_number_value(of) : 0.0, "units",
                               json_is_string(un) ? json_string_value(un) : "");
        json_array_append_new(axes, ax);
        navigate[i] = !json_is_false(json_object_get(o, "navigate"));
        json_decref(o);
    }
    /* the signal: the trailing axes that do not navigate, if no navigation
     * axis follows a signal axis */
    int trailing = 0;
    for (int i = 0; axes && i < m->ndim; i++) {
        if (!navigate[i])
            trailing++;
        else if (trailing)
            trailing = -TSR_MAX_DIMS;
    }
    tsr__free(ctx, parent);
    *sig_dims = trailing > 0 ? trailing : 0;
    return axes;
}

static int open_zarr(tsr__open_args_t *a)
{
    tsr_ctx_t *ctx = a->ctx;
    tsr_dataset_t *ds = a->ds;
    walk_t w = {.ctx = ctx};
    char *top = store_dir(ctx, a->path), *dir = NULL, *rel = NULL;
    zarr_state_t *st = NULL;
    int rc = 0;
    if (!top)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    const char *dsp = tsr_params_get(a->params, "ds_path");
    if (dsp && *dsp) {
        while (*dsp == '/')
            dsp++;
        if (strcmp(dsp, "..") == 0 || strncmp(dsp, "../", 3) == 0 || strstr(dsp, "/../") ||
            (strlen(dsp) >= 3 && strcmp(dsp + strlen(dsp) - 3, "/..") == 0)) {
            rc = tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                             "%s: ds_path '%s' must stay inside the group (no '..')", a->path, dsp);
            goto done;
        }
        rel = tsr__strdup(ctx, dsp);
        dir = join(ctx, top, dsp);
        if (!rel || !dir) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
            goto done;
        }
        if (!has_file(dir, ".zarray")) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND,
                             "%s: ds_path '%s' is not a Zarr array (no %s/.zarray)", a->path, dsp,
                             dir);
            goto done;
        }
    } else if (has_file(top, ".zarray")) {
        dir = tsr__strdup(ctx, top);
        rel = tsr__strdup(ctx, "");
    } else if (has_file(top, ".zgroup")) {
        w.dir = top;
        w.rel = "";
        walk_dir(&w);
        if (w.rc) {
            rc = tsr__seterr(a->err, a->errlen, w.rc, "out of memory listing the group");
            goto done;
        }
        int best = -1;
        for (int i = 0; i < w.n; i++) {
            const candidate_t *c = &w.c[i];
            if (c->ndim < 3)
                continue;
            if (best < 0 || c->size > w.c[best].size ||
                (c->size == w.c[best].size && strcmp(c->rel, w.c[best].rel) < 0))
                best = i;
        }
        if (best < 0) {
            char list[512] = "";
            size_t off = 0;
            for (int i = 0; i < w.n && off + 64 < sizeof list; i++)
                off += (size_t)snprintf(list + off, sizeof list - off, "%s%.40s (%d-D)",
                                        i ? ", " : "", w.c[i].rel, w.c[i].ndim);
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND,
                             "%s: the Zarr group holds no array of 3 or more dimensions (found: "
                             "%s); name one with ds_path",
                             a->path, w.n ? list : "none");
            goto done;
        }
        rel = tsr__strdup(ctx, w.c[best].rel);
        dir = join(ctx, top, w.c[best].rel);
    } else {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOTFOUND,
                         "%s: not a Zarr store: neither .zarray nor .zgroup found in %s", a->path,
                         top);
        goto done;
    }
    if (!dir || !rel) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }

    st = tsr__calloc(ctx, 1, sizeof *st);
    if (!st) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    ds->state = st;
    st->dir = dir;
    dir = NULL;
    tsr__zarr_meta_t *m = &st->m;
    if ((rc = load_meta(ctx, st->dir, m, a->err, a->errlen)))
        goto done;
    if (m->ndim < 2) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                         "%s/.zarray: the array has %d dimension; frames need at least 2", st->dir,
                         m->ndim);
        goto done;
    }
    int hs_sig = 0;
    json_t *axes = hyperspy_axes(ctx, st->dir, m, &hs_sig);
    st->s = hs_sig == 1 ? 1 : 2;
    st->k = m->ndim - st->s;
    st->W = m->shape[m->ndim - 1];
    st->cW = m->chunks[m->ndim - 1];
    st->H = st->s == 2 ? m->shape[m->ndim - 2] : 1;
    st->cH = st->s == 2 ? m->chunks[m->ndim - 2] : 1;
    for (int i = 0; i < m->ndim; i++)
        st->grid[i] = (m->shape[i] + m->chunks[i] - 1) / m->chunks[i];
    const char *cm = tsr_params_get(a->params, "chunk_cache_mib");
    int64_t mib = 64;
    if (cm && (rc = tsr__parse_i64(cm, &mib, a->err, a->errlen, "chunk_cache_mib")))
        goto done_axes;
    if (mib < 0 || mib > ((int64_t)1 << 20)) {
        rc = tsr__seterr(a->err, a->errlen, TSR_EINVAL,
                         "chunk_cache_mib must be 0 to 1048576, got %lld", (long long)mib);
        goto done_axes;
    }
    st->cache_bytes = (size_t)mib << 20;

    ds->dtype = m->dtype;
    ds->big_endian = m->big_endian;
    tsr_shape_t nav = {.ndim = st->k > 0 ? st->k : 1, .dims = {1}};
    tsr_shape_t sig = {.ndim = st->s};
    int64_t images = 1;
    for (int i = 0; i < st->k; i++) {
        nav.dims[i] = m->shape[i];
        images *= m->shape[i];
    }
    for (int i = 0; i < st->s; i++)
        sig.dims[i] = m->shape[st->k + i];
    ds->image_count = images;
    if ((rc = tsr__dataset_shape_params(a, &nav, &sig)))
        goto done_axes;
    /* Tiles follow the chunks: their depth is a multiple of a divisor of
     * the chunk's extent along the last scan dimension — the largest whose
     * frames fit the default tile budget — so that tiles split chunks
     * evenly; their rows are whole chunk rows. */
    int64_t frame_bytes = st->H * st->W * (int64_t)tsr_dtype_size(m->dtype);
    if (st->k > 0) {
        int64_t c =
            m->chunks[st->k - 1] < m->shape[st->k - 1] ? m->chunks[st->k - 1] : m->shape[st->k - 1];
        for (int64_t d = c; d > 1; d--)
            if (c % d == 0 && d * frame_bytes <= ZARR_TILE_BUDGET) {
                ds->base_depth = d;
                break;
            }
    }
    if (st->s == 2 && tsr__shape_eq(&ds->sig, &sig) && st->cH < st->H)
        ds->base_rows = st->cH;

    /* metadata */
    json_t *hdr =
        json_pack("{s:s, s:o, s:o, s:s, s:s, s:s, s:b}", "array", rel, "shape",
                  shape_json(m->shape, m->ndim), "chunks", shape_json(m->chunks, m->ndim), "dtype",
                  m->dtype_str, "compressor", m->codec_desc, "dimension_separator",
                  m->sep == '/' ? "/" : ".", "fill_value_null", m->fill_null);
    json_t *meta = json_pack("{s:o}", "header", hdr);
    if (meta && w.n > 1) {
        json_t *arr = json_array();
        for (int i = 0; i < w.n && arr; i++)
            json_array_append_new(arr, json_pack("{s:s, s:o}", "path", w.c[i].rel, "shape",
                                                 shape_json(w.c[i].shape, w.c[i].ndim)));
        json_object_set_new(meta, "arrays", arr);
    }
    if (meta && axes && tsr__shape_eq(&ds->nav, &nav) && tsr__shape_eq(&ds->sig, &sig) &&
        st->k > 0) {
        json_t *navc = json_array(), *sigc = json_array();
        for (int i = 0; i < m->ndim; i++)
            json_array_append(i < st->k ? navc : sigc, json_array_get(axes, (size_t)i));
        json_object_set_new(meta, "calibration", json_pack("{s:o, s:o}", "nav", navc, "sig", sigc));
    }
    rc = tsr__dataset_set_meta(a, meta);
done_axes:
    json_decref(axes);
done:
    free_candidates(&w);
    tsr__free(ctx, top);
    tsr__free(ctx, dir);
    tsr__free(ctx, rel);
    return rc;
}

static void close_zarr(tsr_dataset_t *ds)
{
    zarr_state_t *st = ds->state;
    if (st) {
        tsr__free(ds->ctx, st->dir);
        tsr__free(ds->ctx, st);
    }
}

/* ---- the chunk cache --------------------------------------------------- */

/* One per worker, in io->fmt_scratch (one block: this header, then the
 * slots), each slot one decoded chunk, evicted least recently used first.
 * The cache starts with two slots and doubles (up to chunk_cache_mib) when
 * a chunk it evicted is asked for again: chunks used once (a scan row of
 * frames per chunk) then cycle through two slots whose pages stay mapped,
 * while chunks that span several scan rows get the room they need. */
typedef struct zcache {
    const tsr_dataset_t *ds; /* the dataset the slots belong to */
    size_t slot_bytes, head_bytes;
    int max, active; /* slots allowed, slots in the block */
    uint64_t clock;
    int64_t key[ZARR_CACHE_SLOTS]; /* chunk's linear grid index, -1 = empty */
    uint64_t used[ZARR_CACHE_SLOTS];
    int64_t ghost[ZARR_CACHE_SLOTS]; /* recently evicted keys (a ring) */
    int ghost_pos;
} zcache_t;

static unsigned char *slot_at(zcache_t *c, int i)
{
    return (unsigned char *)c + c->head_bytes + (size_t)i * c->slot_bytes;
}

static void cache_free(tsr__io_t *io)
{
    tsr__free_aligned(io->ctx, io->fmt_scratch);
    io->fmt_scratch = NULL;
    io->fmt_scratch_size = 0;
}

/* (Re)allocate the block for `active` slots, keeping the slots in use. */
static zcache_t *cache_resize(tsr__io_t *io, zcache_t *old, const tsr_dataset_t *ds, int active)
{
    const zarr_state_t *st = ds->state;
    size_t slot = (st->m.chunk_bytes + 63) & ~(size_t)63;
    size_t head = (sizeof(zcache_t) + 63) & ~(size_t)63;
    zcache_t *c = tsr__malloc_aligned(io->ctx, head + (size_t)active * slot);
    if (!c)
        return NULL;
    if (old) {
        memcpy(c, old, head + (size_t)old->active * slot);
    } else {
        memset(c, 0, sizeof *c);
        c->ds = ds;
        c->slot_bytes = slot;
        c->head_bytes = head;
        size_t n = st->cache_bytes / slot;
        c->max = n < 2 ? 2 : n > ZARR_CACHE_SLOTS ? ZARR_CACHE_SLOTS : (int)n;
        for (int i = 0; i < ZARR_CACHE_SLOTS; i++)
            c->key[i] = c->ghost[i] = -1;
    }
    for (int i = old ? old->active : 0; i < active; i++) {
        c->key[i] = -1;
        c->used[i] = 0;
    }
    c->active = active;
    if (old)
        tsr__free_aligned(io->ctx, old);
    io->fmt_scratch = c;
    io->fmt_scratch_free = cache_free;
    io->fmt_scratch_size = head + (size_t)active * slot;
    return c;
}

static zcache_t *cache_get(const tsr_dataset_t *ds, tsr__io_t *io)
{
    zcache_t *c = io->fmt_scratch;
    if (c && io->fmt_scratch_free == cache_free && c->ds == ds)
        return c;
    if (io->fmt_scratch && io->fmt_scratch_free)
        io->fmt_scratch_free(io);
    return cache_resize(io, NULL, ds, 2);
}

/* Fill a slot with fill_value. */
static void fill_chunk(const tsr__zarr_meta_t *m, unsigned char *p)
{
    size_t es = tsr_dtype_size(m->dtype);
    bool zero = true;
    for (size_t i = 0; i < es; i++)
        zero = zero && m->fill[i] == 0;
    if (zero) {
        memset(p, 0, m->chunk_bytes);
        return;
    }
    for (size_t i = 0; i < m->chunk_elems; i++)
        memcpy(p + i * es, m->fill, es);
}

/* The file name of chunk `coords`. */
static int chunk_path(const zarr_state_t *st, const int64_t *coords, char *path, size_t size,
                      char *err, size_t errlen)
{
    const tsr__zarr_meta_t *m = &st->m;
    size_t off = (size_t)snprintf(path, size, "%s/", st->dir);
    for (int i = 0; i < m->ndim && off < size; i++) {
        if (i)
            path[off++] = m->sep;
        if (off < size)
            off += (size_t)snprintf(path + off, size - off, "%lld", (long long)coords[i]);
    }
    if (off >= size)
        return tsr__seterr(err, errlen, TSR_EINVAL, "%s: chunk path too long", st->dir);
    return 0;
}

/* Uncompressed chunks of whole rows: read the `run` frames' pixels [a, b)
 * of the chunk frame at nav_off straight from the chunk file into the tile
 * at dst (frame stride siglen), converting through the scratch if needed;
 * the same bytes as the strided reader would read. */
static int read_raw_direct(const tsr_dataset_t *ds, tsr__io_t *io, const int64_t *coords,
                           int64_t nav_off, int64_t run, int64_t a, int64_t b, int64_t siglen,
                           tsr_dtype_t dt, unsigned char *dst, char *err, size_t errlen)
{
    const zarr_state_t *st = ds->state;
    const tsr__zarr_meta_t *m = &st->m;
    const size_t es = tsr_dtype_size(m->dtype), des = tsr_dtype_size(dt);
    const bool swap = m->big_endian && es > 1, same = dt == m->dtype && !swap;
    const int64_t fe = st->cH * st->cW; /* elements of a chunk frame */
    char path[4096], why[256];
    int rc = chunk_path(st, coords, path, sizeof path, err, errlen);
    if (rc)
        return rc;
    tsr__file_t f;
    rc = tsr__file_open(&f, path, why, sizeof why);
    if (rc == TSR_ENOTFOUND) { /* fill value */
        for (int64_t j = 0; j < run; j++)
            for (int64_t q = 0; q < b - a; q++)
                tsr__convert(dst + (size_t)(j * siglen + q) * des, dt, m->fill, m->dtype, swap, 1);
        return 0;
    }
    if (rc)
        return tsr__seterr(err, errlen, rc, "Zarr chunk %s: %s", path, why);
    if (f.size != (int64_t)m->chunk_bytes) {
        tsr__file_close(&f);
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "Zarr chunk %s: %lld bytes, expected %zu (an uncompressed chunk of %s)",
                           path, (long long)f.size, m->chunk_bytes, m->dtype_str);
    }
    /* one read when the frames are contiguous in both, else one per frame */
    bool whole = b - a == siglen && siglen == fe;
    int64_t reads = whole ? 1 : run, len = whole ? run * siglen : b - a;
    size_t bytes = (size_t)len * es;
    if (!same && (rc = tsr__io_reserve(io, bytes))) {
        tsr__file_close(&f);
        return tsr__seterr(err, errlen, rc, "out of memory");
    }
    for (int64_t j = 0; j < reads && rc == 0; j++) {
        int64_t off = ((nav_off + j) * fe + a) * (int64_t)es;
        unsigned char *o = dst + (size_t)(j * siglen) * des;
        rc = tsr__file_pread(&f, same ? o : io->scratch, bytes, off);
        if (rc == 0 && !same)
            tsr__convert(o, dt, io->scratch, m->dtype, swap, (size_t)len);
    }
    tsr__file_close(&f);
    if (rc)
        return tsr__seterr(err, errlen, rc, "Zarr chunk %s: cannot read the file", path);
    return 0;
}

/* Load chunk `coords` into p: read its file and decode it. */
static int load_chunk(const tsr_dataset_t *ds, tsr__io_t *io, const int64_t *coords,
                      unsigned char *p, char *err, size_t errlen)
{
    const zarr_state_t *st = ds->state;
    const tsr__zarr_meta_t *m = &st->m;
    char path[4096];
    int rc = chunk_path(st, coords, path, sizeof path, err, errlen);
    if (rc)
        return rc;
    tsr__file_t f;
    char why[256];
    rc = tsr__file_open(&f, path, why, sizeof why);
    if (rc == TSR_ENOTFOUND) {
        fill_chunk(m, p);
        return 0;
    }
    if (rc)
        return tsr__seterr(err, errlen, rc, "Zarr chunk %s: %s", path, why);
    /* Compressed data larger than twice the chunk (plus headers) are not
     * a chunk of this array. */
    int64_t max = (int64_t)(2 * m->chunk_bytes + 4096);
    if (f.size > max) {
        tsr__file_close(&f);
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "Zarr chunk %s: %lld bytes, more than any encoding of a %zu-byte "
                           "chunk",
                           path, (long long)f.size, m->chunk_bytes);
    }
    size_t n = (size_t)f.size;
    if (m->codec == TSR__ZARR_RAW) {
        if (n != m->chunk_bytes) {
            tsr__file_close(&f);
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "Zarr chunk %s: %zu bytes, expected %zu (an uncompressed chunk "
                               "of %s)",
                               path, n, m->chunk_bytes, m->dtype_str);
        }
        rc = tsr__file_pread(&f, p, n, 0);
    } else if ((rc = tsr__io_reserve(io, n ? n : 1)) == 0) {
        rc = n ? tsr__file_pread(&f, io->scratch, n, 0) : 0;
        if (rc == 0) {
            rc = tsr__zarr_decode(m, io->scratch, n, p, why, sizeof why);
            if (rc) {
                tsr__file_close(&f);
                return tsr__seterr(err, errlen, rc, "Zarr chunk %s: %s", path, why);
            }
        }
    }
    tsr__file_close(&f);
    if (rc)
        return tsr__seterr(err, errlen, rc, "Zarr chunk %s: %s", path,
                           rc == TSR_ENOMEM ? "out of memory" : "cannot read the file");
    return 0;
}

/* The decoded chunk at grid coordinates coords, from the cache or loaded.
 * The cache may move (*cp is updated); *out is valid until the next call. */
static int chunk_at(const tsr_dataset_t *ds, tsr__io_t *io, zcache_t **cp, const int64_t *coords,
                    const unsigned char **out, char *err, size_t errlen)
{
    const zarr_state_t *st = ds->state;
    zcache_t *c = *cp;
    int64_t key = 0;
    for (int i = 0; i < st->m.ndim; i++)
        key = key * st->grid[i] + coords[i];
    int victim = 0;
    for (int i = 0; i < c->active; i++) {
        if (c->key[i] == key) {
            c->used[i] = ++c->clock;
            *out = slot_at(c, i);
            return 0;
        }
        /* an empty slot (used 0), else the least recently used */
        if (c->used[i] < c->used[victim])
            victim = i;
    }
    /* evicted lately and asked for again: the working set is larger */
    bool again = false;
    for (int i = 0; i < c->max && !again; i++)
        again = c->ghost[i] == key;
    if (again && c->active < c->max && c->used[victim] != 0) {
        int grow = 2 * c->active < c->max ? 2 * c->active : c->max;
        zcache_t *g = cache_resize(io, c, ds, grow);
        if (g) { /* else keep evicting within the slots there are */
            *cp = c = g;
            victim = c->active - 1;
        }
    }
    if (c->key[victim] >= 0) {
        c->ghost[c->ghost_pos] = c->key[victim];
        c->ghost_pos = (c->ghost_pos + 1) % c->max;
    }
    unsigned char *p = slot_at(c, victim);
    c->key[victim] = -1;
    c->used[victim] = 0;
    int rc = load_chunk(ds, io, coords, p, err, errlen);
    if (rc)
        return rc;
    c->key[victim] = key;
    c->used[victim] = ++c->clock;
    *out = p;
    return 0;
}

/* ---- read -------------------------------------------------------------- */

static int read_zarr(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                     int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen)
{
    const zarr_state_t *st = ds->state;
    const tsr__zarr_meta_t *m = &st->m;
    zcache_t *c = cache_get(ds, io);
    if (!c)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory for a %zu-byte Zarr chunk",
                           m->chunk_bytes);
    const int k = st->k, last = m->ndim - 1;
    const size_t es = tsr_dtype_size(m->dtype), des = tsr_dtype_size(dt);
    const bool swap = m->big_endian && es > 1;
    const int64_t W = st->W, cH = st->cH, cW = st->cW;
    const int64_t r0 = sig0 / W, r1 = (sig0 + siglen - 1) / W; /* rows, inclusive */
    const int64_t frame_elems = cH * cW;                       /* per chunk frame */
    unsigned char *o = out;
    int64_t idx[TSR_MAX_DIMS] = {0}, coords[TSR_MAX_DIMS] = {0};
    for (int64_t i = 0; i < n;) {
        /* the scan position of image img0 + i, and the run of images that
         * share its chunk along the scan */
        int64_t img = img0 + i, run = n - i;
        for (int d = k - 1; d >= 0; d--) {
            idx[d] = img % m->shape[d];
            img /= m->shape[d];
        }
        if (k > 0) {
            int64_t a = m->chunks[k - 1] - idx[k - 1] % m->chunks[k - 1];
            int64_t b = m->shape[k - 1] - idx[k - 1];
            run = run < a ? run : a;
            run = run < b ? run : b;
        }
        /* element offset of the first image inside its chunk */
        int64_t nav_off = 0;
        for (int d = 0; d < k; d++) {
            coords[d] = idx[d] / m->chunks[d];
            nav_off = nav_off * m->chunks[d] + idx[d] % m->chunks[d];
        }
        for (int64_t cr = r0 / cH; cr <= r1 / cH; cr++) {
            for (int64_t cc = 0; cc * cW < W; cc++) {
                if (st->s == 2)
                    coords[last - 1] = cr;
                coords[last] = cc;
                int64_t ra = r0 > cr * cH ? r0 : cr * cH;
                int64_t rb = r1 < (cr + 1) * cH - 1 ? r1 : (cr + 1) * cH - 1;
                /* chunks of whole rows: the wanted pixels of a frame are one
                 * range [a, b) in the chunk frame and in the tile */
                int64_t a = ra * W + (ra == r0 ? sig0 % W : 0);
                int64_t b = rb * W + (rb == r1 ? (sig0 + siglen - 1) % W + 1 : W);
                unsigned char *dst = o + (size_t)(i * siglen + a - sig0) * des;
                int rc;
                if (cW == W && m->codec == TSR__ZARR_RAW) { /* no cache: read in place */
                    rc = read_raw_direct(ds, io, coords, nav_off, run, a - cr * cH * W,
                                         b - cr * cH * W, siglen, dt, dst, err, errlen);
                    if (rc)
                        return rc;
                    continue;
                }
                const unsigned char *p;
                if ((rc = chunk_at(ds, io, &c, coords, &p, err, errlen)))
                    return rc;
                if (cW == W) {
                    /* with the whole chunk frame wanted, the run's frames
                     * are one range too */
                    const unsigned char *src =
                        p + (size_t)(nav_off * frame_elems + a - cr * cH * W) * es;
                    if (b - a == siglen && siglen == frame_elems) {
                        tsr__convert(dst, dt, src, m->dtype, swap, (size_t)(run * siglen));
                    } else {
                        for (int64_t j = 0; j < run; j++)
                            tsr__convert(dst + (size_t)(j * siglen) * des, dt,
                                         src + (size_t)(j * frame_elems) * es, m->dtype, swap,
                                         (size_t)(b - a));
                    }
                    continue;
                }
                for (int64_t j = 0; j < run; j++) {
                    const unsigned char *cf = p + (size_t)((nav_off + j) * frame_elems) * es;
                    unsigned char *of = o + (size_t)((i + j) * siglen) * des;
                    for (int64_t r = ra; r <= rb; r++) {
                        int64_t lo = r == r0 ? sig0 % W : 0;
                        int64_t hi = r == r1 ? (sig0 + siglen - 1) % W + 1 : W;
                        lo = lo > cc * cW ? lo : cc * cW;
                        hi = hi < (cc + 1) * cW ? hi : (cc + 1) * cW;
                        if (lo >= hi)
                            continue;
                        const unsigned char *src =
                            cf + (size_t)((r - cr * cH) * cW + (lo - cc * cW)) * es;
                        tsr__convert(of + (size_t)(r * W + lo - sig0) * des, dt, src, m->dtype,
                                     swap, (size_t)(hi - lo));
                    }
                }
            }
        }
        i += run;
    }
    return 0;
}

const tsr__reader_def_t tsr__format_zarr = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "zarr",
    .description = "Zarr v2 directory store or HyperSpy .zspy (chunked; blosc, zstd, lz4, gzip, "
                   "zlib or uncompressed)",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_zarr,
    .read = read_zarr,
    .close = close_zarr,
};
