/*
 * dataset.c — opening datasets (by name or by probing), the accessors of the
 * public API, and the shared strided-frame reader that most formats use.
 *
 * The read path is the hot path of the engine: a tile request is split into
 * the frames that lie before, inside and after the stored images (sync
 * offset), and the frames inside are read per segment.  When consecutive
 * images are contiguous and whole frames are wanted, one pread (or one copy
 * from the mapping) serves the whole tile; otherwise one per frame.  Data
 * already in the wanted type are read straight into the tile; others go
 * through the worker's scratch buffer and one conversion pass.
 */
#include "io/dataset.h"

#include <jansson.h>
#include <stdlib.h>
#include <strings.h>

/* ---- open / close ------------------------------------------------------ */

static const char *path_ext(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot + 1 : "";
}

static bool ext_matches(const tsr__reader_def_t *f, const char *path)
{
    const char *ext = path_ext(path);
    for (const char *const *e = f->extensions; e && *e; e++)
        if (strcasecmp(*e, ext) == 0)
            return true;
    return false;
}

static int detect(tsr_ctx_t *ctx, const char *path, const tsr__reader_def_t **out)
{
    uint8_t head[4096];
    int64_t n = tsr__file_head(path, head, sizeof head);
    if (n < 0) {
        tsr__file_t f;
        char err[TSR__ERRMSG_MAX];
        int rc = tsr__file_open(&f, path, err, sizeof err);
        if (rc == 0)
            tsr__file_close(&f);
        return tsr__ctx_seterr(ctx, rc ? rc : TSR_EIO, "%s", rc ? err : "cannot read file");
    }
    const tsr__reader_def_t *best = NULL;
    int best_score = 0;
    bool best_ext = false;
    for (size_t i = 0; i < tsr__reader_count(); i++) {
        const tsr__reader_def_t *f = tsr__reader_at(i);
        if (!f->probe)
            continue;
        int score = f->probe(path, head, (size_t)n);
        bool ext = ext_matches(f, path);
        if (score > best_score || (score == best_score && score > 0 && ext && !best_ext)) {
            best = f;
            best_score = score;
            best_ext = ext;
        }
    }
    if (!best)
        return tsr__ctx_seterr(ctx, TSR_ENOTFOUND,
                               "no format recognises '%s'; name one with --format (e.g. raw "
                               "with nav_shape, sig_shape and dtype)",
                               path);
    *out = best;
    return 0;
}

static int dataset_alloc(tsr_ctx_t *ctx, const tsr__reader_def_t *fmt, const char *path,
                         const tsr_params_t *params, tsr_dataset_t **out)
{
    tsr_dataset_t *ds = tsr__calloc(ctx, 1, sizeof *ds);
    if (!ds)
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory");
    ds->ctx = ctx;
    ds->fmt = fmt;
    if (tsr__mutex_init(&ds->map_lock)) {
        tsr__free(ctx, ds);
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "cannot create a lock");
    }
    int rc = 0;
    ds->path = tsr__strdup(ctx, path ? path : "");
    if (!ds->path) {
        rc = tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory");
        goto fail;
    }
    TSR_TRY(tsr__params_copy(ctx, params, &ds->params));
    *out = ds;
    return 0;
fail:
    tsr_dataset_close(ds);
    return rc;
}

static int validate(tsr_ctx_t *ctx, tsr_dataset_t *ds)
{
    int64_t nav = tsr_shape_size(&ds->nav), sig = tsr_shape_size(&ds->sig), total;
    if (ds->nav.ndim < 1 || ds->nav.ndim > 4 || ds->sig.ndim < 1 || ds->sig.ndim > 3)
        return tsr__ctx_seterr(ctx, TSR_EUNSUPPORTED,
                               "%s: nav must have 1 to 4 dimensions and sig 1 to 3 (got %d and "
                               "%d)",
                               ds->path, ds->nav.ndim, ds->sig.ndim);
    if (nav < 0 || sig < 0 || !tsr__mul_i64(nav, sig, &total) ||
        !tsr__mul_i64(total, (int64_t)tsr_dtype_size(ds->dtype), &total))
        return tsr__ctx_seterr(ctx, TSR_EOVERFLOW, "%s: dataset size overflows", ds->path);
    return 0;
}

int tsr_dataset_open(tsr_ctx_t *ctx, const char *format, const char *path,
                     const tsr_params_t *params, tsr_dataset_t **out)
{
    if (!ctx || !out)
        return TSR_EINVAL;
    if (!path)
        return tsr__ctx_seterr(ctx, TSR_EINVAL, "no path given");
    const tsr__reader_def_t *fmt = NULL;
    int rc;
    if (!format || !*format || strcmp(format, "auto") == 0) {
        if ((rc = detect(ctx, path, &fmt)))
            return rc;
    } else {
        fmt = tsr__reader_find(format);
        if (!fmt || !fmt->open)
            return tsr__ctx_seterr(ctx, TSR_ENOTFOUND,
                                   "unknown format '%s' (see tessera list formats)", format);
    }
    char owner[64];
    snprintf(owner, sizeof owner, "format %s", fmt->name);
    if ((rc = tsr__params_check(params, fmt->params, fmt->n_params, owner, ctx->errmsg,
                                sizeof ctx->errmsg)))
        return rc;
    tsr_dataset_t *ds = NULL;
    if ((rc = dataset_alloc(ctx, fmt, path, params, &ds)))
        return rc;
    tsr_params_t *empty = NULL;
    if (!params && (rc = tsr_params_new(ctx, &empty)))
        goto fail;
    tsr__open_args_t a = {ctx, path, params ? params : empty, ds, ctx->errmsg, sizeof ctx->errmsg};
    rc = fmt->open(&a);
    tsr_params_free(empty);
    if (rc)
        goto fail;
    if ((rc = validate(ctx, ds)))
        goto fail;
    *out = ds;
    return 0;
fail:
    tsr_dataset_close(ds);
    return rc;
}

void tsr_dataset_close(tsr_dataset_t *ds)
{
    if (!ds)
        return;
    tsr_ctx_t *ctx = ds->ctx;
    if (ds->fmt && ds->fmt->close)
        ds->fmt->close(ds);
    for (int i = 0; i < ds->n_files; i++) {
        if (ds->maps && ds->maps[i])
            tsr__file_unmap(ds->maps[i], ds->files[i].size);
        if (ds->dfds)
            tsr__fd_close(ds->dfds[i]);
        tsr__file_close(&ds->files[i]);
        tsr__free(ctx, ds->file_paths[i]);
    }
    tsr__free(ctx, ds->files);
    tsr__free(ctx, ds->file_paths);
    tsr__free(ctx, ds->maps);
    tsr__free(ctx, ds->dfds);
    tsr__free(ctx, ds->dalign);
    tsr__free(ctx, ds->segs);
    tsr__free(ctx, (void *)ds->corr.dark);
    tsr__free(ctx, (void *)ds->corr.gain);
    tsr__free(ctx, (void *)ds->corr.excluded);
    tsr__free(ctx, ds->meta_json);
    tsr_params_free(ds->params);
    tsr__free(ctx, ds->path);
    tsr__mutex_destroy(&ds->map_lock);
    tsr__free(ctx, ds);
}

/* ---- accessors --------------------------------------------------------- */

void tsr_dataset_nav_shape(const tsr_dataset_t *ds, tsr_shape_t *out)
{
    *out = ds->nav;
}
void tsr_dataset_sig_shape(const tsr_dataset_t *ds, tsr_shape_t *out)
{
    *out = ds->sig;
}
tsr_dtype_t tsr_dataset_dtype(const tsr_dataset_t *ds)
{
    return ds->dtype;
}
bool tsr_dataset_big_endian(const tsr_dataset_t *ds)
{
    return ds->big_endian;
}
const char *tsr_dataset_format(const tsr_dataset_t *ds)
{
    return ds->fmt->name;
}
const char *tsr_dataset_meta_json(const tsr_dataset_t *ds)
{
    return ds->meta_json ? ds->meta_json : "{}";
}
int64_t tsr_dataset_image_count(const tsr_dataset_t *ds)
{
    return ds->image_count;
}
const tsr_corrections_t *tsr_dataset_corrections(const tsr_dataset_t *ds)
{
    const tsr_corrections_t *c = &ds->corr;
    return c->dark || c->gain || c->excluded ? c : NULL;
}

/* ---- helpers for readers ----------------------------------------------- */

int tsr__dataset_shape_params(tsr__open_args_t *a, const tsr_shape_t *nav_default,
                              const tsr_shape_t *sig_default)
{
    tsr_dataset_t *ds = a->ds;
    const char *nav_s = tsr_params_get(a->params, "nav_shape");
    const char *sig_s = tsr_params_get(a->params, "sig_shape");
    const char *so_s = tsr_params_get(a->params, "sync_offset");
    int rc;
    tsr_shape_t nav = nav_default ? *nav_default : (tsr_shape_t){0};
    tsr_shape_t sig = sig_default ? *sig_default : (tsr_shape_t){0};
    char buf[64], buf2[64];
    if (sig_s && (rc = tsr__parse_shape(sig_s, &sig, a->err, a->errlen, "sig_shape")))
        return rc;
    if (nav_s && (rc = tsr__parse_shape(nav_s, &nav, a->err, a->errlen, "nav_shape")))
        return rc;
    if (sig.ndim == 0)
        return tsr__seterr(a->err, a->errlen, TSR_EINVAL, "%s: sig_shape is required", a->path);
    /* A new sig shape must keep the number of pixels per image. */
    if (sig_default && sig_default->ndim && tsr_shape_size(&sig) != tsr_shape_size(sig_default))
        return tsr__seterr(
            a->err, a->errlen, TSR_EINVAL,
            "%s: sig_shape %s has %lld pixels but the stored frames %s have %lld", a->path,
            tsr__shape_str(&sig, buf, sizeof buf), (long long)tsr_shape_size(&sig),
            tsr__shape_str(sig_default, buf2, sizeof buf2), (long long)tsr_shape_size(sig_default));
    if (nav.ndim == 0) {
        if (!nav_default)
            return tsr__seterr(a->err, a->errlen, TSR_EINVAL, "%s: nav_shape is required", a->path);
        nav = (tsr_shape_t){.ndim = 1, .dims = {ds->image_count > 0 ? ds->image_count : 1}};
    }
    int64_t so = 0;
    if (so_s && (rc = tsr__parse_i64(so_s, &so, a->err, a->errlen, "sync_offset")))
        return rc;
    int64_t nav_size = tsr_shape_size(&nav);
    if (nav_size > ds->image_count)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: nav_shape %s needs %lld frames of %s %s but the file holds %lld "
                           "(file too short or shape too large)",
                           a->path, tsr__shape_str(&nav, buf, sizeof buf), (long long)nav_size,
                           tsr__shape_str(&sig, buf2, sizeof buf2), tsr_dtype_name(ds->dtype),
                           (long long)ds->image_count);
    if (so != 0 && !(-ds->image_count < so && so < ds->image_count))
        return tsr__seterr(a->err, a->errlen, TSR_ERANGE,
                           "%s: sync_offset %lld out of range: must be > %lld and < %lld (the "
                           "number of frames in the file)",
                           a->path, (long long)so, (long long)-ds->image_count,
                           (long long)ds->image_count);
    ds->nav = nav;
    ds->sig = sig;
    ds->sync_offset = so;
    return 0;
}

int tsr__dataset_add_file(tsr__open_args_t *a, const char *path)
{
    tsr_dataset_t *ds = a->ds;
    tsr_ctx_t *ctx = a->ctx;
    int n = ds->n_files;
    tsr__file_t *files = tsr__realloc(ctx, ds->files, (size_t)(n + 1) * sizeof *files);
    if (!files)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    ds->files = files;
    char **paths = tsr__realloc(ctx, ds->file_paths, (size_t)(n + 1) * sizeof *paths);
    if (!paths)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    ds->file_paths = paths;
    int *dfds = tsr__realloc(ctx, ds->dfds, (size_t)(n + 1) * sizeof *dfds);
    if (!dfds)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    ds->dfds = dfds;
    dfds[n] = -2; /* O_DIRECT descriptor not tried yet */
    size_t *dalign = tsr__realloc(ctx, ds->dalign, (size_t)(n + 1) * sizeof *dalign);
    if (!dalign)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    ds->dalign = dalign;
    void **maps = tsr__realloc(ctx, ds->maps, (size_t)(n + 1) * sizeof *maps);
    if (!maps)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    ds->maps = maps;
    maps[n] = NULL;
    paths[n] = tsr__strdup(ctx, path);
    if (!paths[n])
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    int rc = tsr__file_open(&files[n], path, a->err, a->errlen);
    if (rc) {
        tsr__free(ctx, paths[n]);
        return rc;
    }
    ds->n_files = n + 1;
    return n;
}

int tsr__dataset_add_segment(tsr__open_args_t *a, int file, int64_t first, int64_t count,
                             int64_t offset, int64_t stride)
{
    tsr_dataset_t *ds = a->ds;
    tsr__segment_t *segs = tsr__realloc(a->ctx, ds->segs, (size_t)(ds->n_segs + 1) * sizeof *segs);
    if (!segs)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    ds->segs = segs;
    segs[ds->n_segs++] = (tsr__segment_t){file, first, count, offset, stride};
    return 0;
}

int tsr__read_text(tsr_ctx_t *ctx, const char *path, size_t max, unsigned flags, const char *what,
                   char **out, size_t *len, char *err, size_t errlen)
{
    tsr__file_t f;
    int rc = tsr__file_open(&f, path, err, errlen);
    if (rc)
        return rc;
    if (f.size > (int64_t)max && !(flags & TSR__TEXT_TRUNCATE)) {
        tsr__file_close(&f);
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED,
                           "%s: %lld bytes is too large for %s (at most %zu)", path,
                           (long long)f.size, what, max);
    }
    size_t n = f.size < (int64_t)max ? (size_t)f.size : max;
    char *t = tsr__malloc(ctx, n + 1);
    if (!t) {
        tsr__file_close(&f);
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    }
    rc = n ? tsr__file_pread(&f, t, n, 0) : 0;
    tsr__file_close(&f);
    if (rc) {
        tsr__free(ctx, t);
        return tsr__seterr(err, errlen, TSR_EIO, "%s: cannot read the file", path);
    }
    if (flags & TSR__TEXT_NUL_SPACE)
        for (size_t i = 0; i < n; i++)
            if (!t[i])
                t[i] = ' ';
    t[n] = 0;
    *out = t;
    if (len)
        *len = n;
    return 0;
}

int tsr__dataset_set_meta(tsr__open_args_t *a, void *obj)
{
    json_t *m = obj;
    char *txt = m ? json_dumps(m, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(m);
    if (!txt)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    tsr__free(a->ctx, a->ds->meta_json);
    a->ds->meta_json = tsr__strdup(a->ctx, txt);
    free(txt);
    return a->ds->meta_json ? 0 : tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
}

/* ---- the read path ----------------------------------------------------- */

static const tsr__segment_t *find_segment(const tsr_dataset_t *ds, int64_t img)
{
    for (int i = 0; i < ds->n_segs; i++)
        if (img >= ds->segs[i].first && img < ds->segs[i].first + ds->segs[i].count)
            return &ds->segs[i];
    return NULL;
}

/* Read images [img0, img0+n) of one segment via the strided layout. */
static int read_strided(const tsr_dataset_t *ds, tsr__io_t *io, const tsr__segment_t *seg,
                        int64_t img0, int64_t n, int64_t sig0, int64_t siglen, tsr_dtype_t dt,
                        void *out, const void **direct, char *err, size_t errlen)
{
    size_t es = tsr_dtype_size(ds->dtype), des = tsr_dtype_size(dt);
    int64_t frame_pixels = tsr_shape_size(&ds->sig);
    size_t band = (size_t)siglen * es;
    bool swap = ds->big_endian && es > 1; /* hosts we support are little-endian */
    bool same = dt == ds->dtype && !swap;
    bool contiguous = siglen == frame_pixels && seg->stride == (int64_t)band;
    int64_t off0 = seg->offset + (img0 - seg->first) * seg->stride + sig0 * (int64_t)es;
    int rc;

    const tsr__file_t *f = &ds->files[seg->file];
    if (direct && same && contiguous && io->backend == TSR_IO_MMAP && off0 >= 0 &&
        off0 + (int64_t)band * n <= f->size) {
        const unsigned char *m;
        if ((rc = tsr__io_map(ds, seg->file, off0, band * (size_t)n, &m, err, errlen)))
            return rc;
        if (m && ((uintptr_t)m % es) == 0) {
            tsr__io_note_mapped(io, seg->file, m, band * (size_t)n);
            *direct = m;
            return 0;
        }
    }
    if (contiguous) {
        size_t bytes = band * (size_t)n;
        if (same)
            return tsr__io_fetch(ds, io, seg->file, off0, bytes, out, err, errlen);
        if ((rc = tsr__io_reserve(io, bytes)))
            return tsr__seterr(err, errlen, rc, "out of memory");
        if ((rc = tsr__io_fetch(ds, io, seg->file, off0, bytes, io->scratch, err, errlen)))
            return rc;
        tsr__convert(out, dt, io->scratch, ds->dtype, swap, (size_t)(siglen * n));
        return 0;
    }
    /* Frames with headers or footers between them that need converting:
     * one read of the whole span, then each frame converted from it (a read
     * per frame costs a system call each, for the same copy). */
    size_t span = (size_t)((n - 1) * seg->stride) + band;
    if (!same && n > 1 && siglen == frame_pixels && (size_t)seg->stride - band <= band / 4 &&
        span <= ((size_t)64 << 20)) {
        if ((rc = tsr__io_reserve(io, span)))
            return tsr__seterr(err, errlen, rc, "out of memory");
        if ((rc = tsr__io_fetch(ds, io, seg->file, off0, span, io->scratch, err, errlen)))
            return rc;
        for (int64_t i = 0; i < n; i++)
            tsr__convert((unsigned char *)out + (size_t)(i * siglen) * des, dt,
                         (const unsigned char *)io->scratch + (size_t)(i * seg->stride), ds->dtype,
                         swap, (size_t)siglen);
        return 0;
    }
    if (!same && (rc = tsr__io_reserve(io, band)))
        return tsr__seterr(err, errlen, rc, "out of memory");
    unsigned char *o = out;
    for (int64_t i = 0; i < n; i++) {
        int64_t off = off0 + i * seg->stride;
        if (same) {
            rc = tsr__io_fetch(ds, io, seg->file, off, band, o, err, errlen);
        } else {
            rc = tsr__io_fetch(ds, io, seg->file, off, band, io->scratch, err, errlen);
            if (!rc)
                tsr__convert(o, dt, io->scratch, ds->dtype, swap, (size_t)siglen);
        }
        if (rc)
            return rc;
        o += (size_t)siglen * des;
    }
    return 0;
}

static int read_images(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n,
                       int64_t sig0, int64_t siglen, tsr_dtype_t dt, void *out, const void **direct,
                       char *err, size_t errlen)
{
    if (ds->read)
        return ds->read(ds, io, img0, n, sig0, siglen, dt, out, err, errlen);
    if (ds->fmt->read)
        return ds->fmt->read(ds, io, img0, n, sig0, siglen, dt, out, err, errlen);
    size_t fb = (size_t)siglen * tsr_dtype_size(dt);
    unsigned char *o = out;
    bool first = true;
    while (n > 0) {
        const tsr__segment_t *seg = find_segment(ds, img0);
        if (!seg)
            return tsr__seterr(err, errlen, TSR_ECORRUPT, "%s: no data for frame %lld", ds->path,
                               (long long)img0);
        int64_t k = seg->first + seg->count - img0;
        if (k > n)
            k = n;
        /* only a request served by one segment can be returned in place */
        const void **d = first && k == n ? direct : NULL;
        int rc = read_strided(ds, io, seg, img0, k, sig0, siglen, dt, o, d, err, errlen);
        if (rc)
            return rc;
        first = false;
        img0 += k;
        n -= k;
        o += (size_t)k * fb;
    }
    return 0;
}

void tsr__dataset_read_ahead(const tsr_dataset_t *ds, tsr__io_t *io, int64_t frame0, int64_t n,
                             int64_t sig0, int64_t siglen)
{
    if (io->backend != TSR_IO_URING || ds->read || ds->fmt->read)
        return;
    int64_t img0 = frame0 + ds->sync_offset;
    if (img0 < 0 || img0 + n > ds->image_count)
        return;
    const tsr__segment_t *seg = find_segment(ds, img0);
    if (!seg || img0 + n > seg->first + seg->count)
        return;
    size_t es = tsr_dtype_size(ds->dtype), band = (size_t)siglen * es;
    bool contiguous = siglen == tsr_shape_size(&ds->sig) && seg->stride == (int64_t)band;
    if (!contiguous && n != 1)
        return; /* read frame by frame: not one range */
    int64_t off0 = seg->offset + (img0 - seg->first) * seg->stride + sig0 * (int64_t)es;
    tsr__io_read_ahead(ds, io, seg->file, off0, band * (size_t)n);
}

int tsr__dataset_read(const tsr_dataset_t *ds, tsr__io_t *io, int64_t frame0, int64_t n,
                      int64_t sig0, int64_t siglen, tsr_dtype_t dt, void *out, const void **direct,
                      char *err, size_t errlen)
{
    size_t fb = (size_t)siglen * tsr_dtype_size(dt);
    unsigned char *o = out;
    if (direct)
        *direct = out;
    int64_t img0 = frame0 + ds->sync_offset;
    /* frames before the first stored image: zeros */
    if (img0 < 0) {
        int64_t k = -img0 < n ? -img0 : n;
        memset(o, 0, (size_t)k * fb);
        o += (size_t)k * fb;
        img0 += k;
        n -= k;
        direct = NULL;
    }
    int64_t avail = ds->image_count - img0;
    int64_t k = n < avail ? n : (avail > 0 ? avail : 0);
    if (k > 0) {
        if (k < n)
            direct = NULL;
        int rc = read_images(ds, io, img0, k, sig0, siglen, dt, o, direct, err, errlen);
        if (rc)
            return rc;
        o += (size_t)k * fb;
        n -= k;
    }
    if (n > 0) /* frames after the last stored image: zeros */
        memset(o, 0, (size_t)n * fb);
    return 0;
}
