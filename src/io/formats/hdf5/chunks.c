/*
 * chunks.c — the HDF5 reader's read path: tiles assembled from chunks that
 * the worker itself fetches (through the engine's I/O backend: pread,
 * mmap, O_DIRECT or io_uring) and decodes, so that workers never queue on
 * libhdf5's global lock and decompression runs on every core.
 *
 * A tile (images [f0, f0+n) × flat signal pixels [s0, s0+len)) is cut
 * into boxes of the dataset's logical axes: a flat range of a C-order
 * array is at most 2k-1 boxes over k axes, for the images and for the
 * pixels, and the tile is their products.  Both the tile and a chunk then
 * address elements affinely, so each chunk overlapping a box is copied by
 * rows of its last axis (with the dtype conversion on the way).
 *
 * Fast paths avoid the intermediate copy: when the part of a chunk that a
 * tile needs is one contiguous run both in the chunk and in the tile, an
 * unfiltered chunk is read straight into the tile (or into the worker's
 * scratch and converted) and a filtered chunk, when the tile needs all of
 * it, is decoded straight into the tile.  Otherwise the decoded chunk goes
 * into the worker's cache of decoded chunks (least recently used first
 * out, sized at open to hold what a sweep over the scan reuses, within a
 * bound), so that a chunk shared by several tiles is decoded once.
 *
 * Every worker owns its state (io->fmt_scratch): pipeline buffers and the
 * cache.  Nothing here takes a lock.
 */
#include "io/codecs/codecs.h"
#include "io/formats/hdf5/h5fmt.h"

typedef struct cache_ent {
    int part; /* -1: free */
    int64_t idx;
    uint64_t used;
    unsigned char *buf; /* chunk_bytes */
} cache_ent_t;

typedef struct worker {
    tsr_ctx_t *ctx;
    unsigned char *raw; /* stored bytes of a chunk */
    size_t raw_cap;
    unsigned char *a, *b; /* pipeline stages, chunk_bytes each */
    cache_ent_t *ents;
    int n_ents, max_ents;
    uint64_t clock;
} worker_t;

static void worker_free(tsr__io_t *io)
{
    worker_t *w = io->fmt_scratch;
    if (!w)
        return;
    for (int i = 0; i < w->n_ents; i++)
        tsr__free_aligned(w->ctx, w->ents[i].buf);
    tsr__free(w->ctx, w->ents);
    tsr__free_aligned(w->ctx, w->raw);
    tsr__free_aligned(w->ctx, w->a);
    tsr__free_aligned(w->ctx, w->b);
    tsr__free(w->ctx, w);
    io->fmt_scratch = NULL;
    io->fmt_scratch_size = 0;
}

static int worker_get(const h5r_state_t *st, tsr__io_t *io, worker_t **out, char *err,
                      size_t errlen)
{
    worker_t *w = io->fmt_scratch;
    if (w) {
        *out = w;
        return 0;
    }
    tsr_ctx_t *ctx = io->ctx;
    w = tsr__calloc(ctx, 1, sizeof *w);
    if (!w)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    w->ctx = ctx;
    io->fmt_scratch = w;
    io->fmt_scratch_free = worker_free;
    size_t cb = st->chunk_bytes;
    w->max_ents = (int)(st->cache_bytes / cb);
    if (w->max_ents < 2)
        w->max_ents = 2;
    if (w->max_ents > 4096)
        w->max_ents = 4096;
    w->raw_cap = (size_t)st->max_stored;
    w->raw = tsr__malloc_aligned(ctx, w->raw_cap ? w->raw_cap : 1);
    w->a = tsr__malloc_aligned(ctx, cb);
    w->b = tsr__malloc_aligned(ctx, cb);
    w->ents = tsr__calloc(ctx, (size_t)w->max_ents, sizeof *w->ents);
    if (!w->raw || !w->a || !w->b || !w->ents) {
        worker_free(io);
        return tsr__seterr(err, errlen, TSR_ENOMEM,
                           "out of memory for HDF5 chunk buffers (chunks of %zu bytes)", cb);
    }
    io->fmt_scratch_size = w->raw_cap + 2 * cb;
    *out = w;
    return 0;
}

/* ---- decoding ---------------------------------------------------------- */

int tsr__h5r_decode(const h5r_state_t *st, const h5r_part_t *part, uint32_t mask, void *src,
                    size_t n, void *dst, void *a, void *b, char *err, size_t errlen)
{
    size_t cb = st->chunk_bytes, cur_n = n, got = 0;
    unsigned char *cur = src;
    int last = -1, rc = 0;

    /* the last filter that runs (filters are undone in reverse order) */
    for (int i = 0; i < part->n_filt; i++)
        if (!(mask & (1u << i)) && part->filt[i].id != H5R_F_FLETCHER32)
            last = i;
    for (int i = part->n_filt - 1; i >= 0; i--) {
        const h5r_filter_t *f = &part->filt[i];
        unsigned char *o;
        if (mask & (1u << i))
            continue;
        if (f->id == H5R_F_FLETCHER32) {
            if ((rc = tsr__fletcher32_check(cur, cur_n, &cur_n, err, errlen)))
                return rc;
            continue;
        }
        o = i == last ? dst : (cur == a ? b : a);
        switch (f->id) {
        case H5R_F_DEFLATE: rc = tsr__inflate(cur, cur_n, o, cb, &got, err, errlen); break;
        case H5R_F_ZSTD: rc = tsr__zstd_decode(cur, cur_n, o, cb, &got, err, errlen); break;
        case H5R_F_LZ4: rc = tsr__lz4_h5_decode(cur, cur_n, o, cb, &got, err, errlen); break;
        case H5R_F_SHUFFLE: {
            size_t es = f->n_cd > 0 && f->cd[0] > 0 ? f->cd[0] : st->es;
            if (cur_n != cb)
                return tsr__seterr(err, errlen, TSR_ECORRUPT,
                                   "shuffle: %zu bytes for a chunk of %zu", cur_n, cb);
            tsr__unshuffle(cur, o, cb, es);
            got = cb;
            break;
        }
        case H5R_F_BSHUF: {
            /* cd_values: major, minor, element size, block size, compression */
            size_t es = f->n_cd > 2 && f->cd[2] > 0 ? f->cd[2] : st->es;
            size_t block = f->n_cd > 3 ? f->cd[3] : 0;
            int codec = f->n_cd > 4 ? (int)f->cd[4] : 0;
            /* the scratch stage not used for input or output */
            void *tmp = (cur != a && o != a) ? a : b;
            rc = tsr__bshuf_decode(cur, cur_n, o, cb, es, (tsr__bshuf_codec_t)codec, block, tmp,
                                   &got, err, errlen);
            break;
        }
        default:
            return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, "HDF5 filter %d is not supported",
                               f->id);
        }
        if (rc)
            return rc;
        cur = o;
        cur_n = got;
    }
    if (cur_n != cb)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "the chunk holds %zu bytes after its filters, expected %zu", cur_n, cb);
    if (cur != dst)
        memcpy(dst, cur, cb);
    return 0;
}

/* "<part name>: chunk <i> at byte <addr>: " before a codec's message. */
static int chunk_error(const h5r_part_t *p, int64_t idx, int rc, const char *what, char *err,
                       size_t errlen)
{
    char msg[TSR__ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", what);
    return tsr__seterr(err, errlen, rc, "%s: chunk %lld (at byte %lld, %llu bytes stored): %s",
                       p->name, (long long)idx, (long long)p->chunks[idx].addr,
                       (unsigned long long)p->chunks[idx].size, msg);
}

/* Decode chunk idx of part p into dst (chunk_bytes). */
static int load_chunk(const tsr_dataset_t *ds, const h5r_state_t *st, const h5r_part_t *p,
                      worker_t *w, tsr__io_t *io, int64_t idx, unsigned char *dst, char *err,
                      size_t errlen)
{
    const h5r_chunk_t *ch = &p->chunks[idx];
    size_t cb = st->chunk_bytes;
    int rc;

    if (ch->addr == H5R_ADDR_MEM) {
        memcpy(dst, p->mem, cb);
        return 0;
    }
    if (ch->addr == H5R_ADDR_NONE) {
        for (size_t i = 0; i < cb; i += st->es)
            memcpy(dst + i, st->fill, st->es);
        return 0;
    }
    bool filtered = false;
    for (int i = 0; i < p->n_filt; i++)
        filtered |= !(ch->mask & (1u << i));
    if (!filtered)
        return tsr__io_fetch(ds, io, p->file, ch->addr, cb, dst, err, errlen);
    if ((rc = tsr__io_fetch(ds, io, p->file, ch->addr, (size_t)ch->size, w->raw, err, errlen)))
        return rc;
    char why[TSR__ERRMSG_MAX];
    if ((rc = tsr__h5r_decode(st, p, ch->mask, w->raw, (size_t)ch->size, dst, w->a, w->b, why,
                              sizeof why)))
        return chunk_error(p, idx, rc, why, err, errlen);
    return 0;
}

/* The decoded chunk idx of part, from the cache or decoded into it. */
static int cached_chunk(const tsr_dataset_t *ds, const h5r_state_t *st, int part,
                        const h5r_part_t *p, worker_t *w, tsr__io_t *io, int64_t idx,
                        const unsigned char **out, char *err, size_t errlen)
{
    cache_ent_t *e = NULL;
    int rc;

    if (p->chunks[idx].addr == H5R_ADDR_MEM) {
        *out = p->mem;
        return 0;
    }
    w->clock++;
    for (int i = 0; i < w->n_ents; i++)
        if (w->ents[i].part == part && w->ents[i].idx == idx) {
            w->ents[i].used = w->clock;
            *out = w->ents[i].buf;
            return 0;
        }
    if (w->n_ents < w->max_ents) {
        e = &w->ents[w->n_ents];
        e->buf = tsr__malloc_aligned(w->ctx, st->chunk_bytes);
        if (!e->buf)
            return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory for decoded chunks");
        w->n_ents++;
        io->fmt_scratch_size += st->chunk_bytes;
    } else {
        e = &w->ents[0];
        for (int i = 1; i < w->n_ents; i++)
            if (w->ents[i].used < e->used)
                e = &w->ents[i];
    }
    e->part = -1;
    if ((rc = load_chunk(ds, st, p, w, io, idx, e->buf, err, errlen)))
        return rc;
    e->part = part;
    e->idx = idx;
    e->used = w->clock;
    *out = e->buf;
    return 0;
}

/* ---- geometry ---------------------------------------------------------- */

typedef struct box {
    int64_t lo[H5R_MAXD], hi[H5R_MAXD];
} box_t;

#define MAX_BOXES (2 * H5R_MAXD + 1)

/* Cut the flat C-order range [start, start+count) over axes [d, k) of dims
 * into boxes (axes before d fixed in cur). */
static void flat_boxes(const int64_t *dims, int k, int d, int64_t start, int64_t count, box_t *cur,
                       box_t *out, int *nb)
{
    if (count <= 0)
        return;
    if (d == k - 1) {
        cur->lo[d] = start;
        cur->hi[d] = start + count;
        out[(*nb)++] = *cur;
        return;
    }
    int64_t inner = 1;
    for (int j = d + 1; j < k; j++)
        inner *= dims[j];
    int64_t a = start / inner, r = start % inner;
    if (r) {
        int64_t take = count < inner - r ? count : inner - r;
        cur->lo[d] = a;
        cur->hi[d] = a + 1;
        flat_boxes(dims, k, d + 1, r, take, cur, out, nb);
        count -= take;
        a++;
    }
    int64_t full = count / inner;
    if (full) {
        cur->lo[d] = a;
        cur->hi[d] = a + full;
        for (int j = d + 1; j < k; j++) {
            cur->lo[j] = 0;
            cur->hi[j] = dims[j];
        }
        out[(*nb)++] = *cur;
        a += full;
        count -= full * inner;
    }
    if (count) {
        cur->lo[d] = a;
        cur->hi[d] = a + 1;
        flat_boxes(dims, k, d + 1, 0, count, cur, out, nb);
    }
}

/* Whether strides str over the extents ext (nd axes) walk one contiguous
 * run (C order, axes of extent 1 ignored). */
static bool contiguous(const int64_t *str, const int64_t *ext, int nd)
{
    int64_t want = 1;
    for (int j = nd - 1; j >= 0; j--) {
        if (ext[j] == 1)
            continue;
        if (str[j] != want)
            return false;
        want *= ext[j];
    }
    return true;
}

/* What a part's read needs to know about the tile. */
typedef struct tile {
    const tsr_dataset_t *ds;
    const h5r_state_t *st;
    int part;
    const h5r_part_t *p;
    worker_t *w;
    tsr__io_t *io;
    int nd;
    int64_t L[H5R_MAXD], C[H5R_MAXD]; /* logical dims and chunk dims */
    int64_t cstr[H5R_MAXD];           /* element strides in a chunk, logical axes */
    int64_t gstr[H5R_MAXD];           /* chunk index strides, logical axes */
    int64_t ostr[H5R_MAXD];           /* element strides in out */
    int64_t obase;                    /* out index of logical (0, ..., 0) */
    tsr_dtype_t dt;
    size_t des;
    unsigned char *out;
    char *err;
    size_t errlen;
    /* a read not made yet: chunks stored one after the other that go one
     * after the other into the tile become one read */
    struct {
        int file;
        int64_t at;
        size_t n;
        unsigned char *dst;
    } pend;
} tile_t;

static int flush(tile_t *t)
{
    int rc = 0;
    if (t->pend.n)
        rc = tsr__io_fetch(t->ds, t->io, t->pend.file, t->pend.at, t->pend.n, t->pend.dst, t->err,
                           t->errlen);
    t->pend.n = 0;
    return rc;
}

/* Read n bytes at file offset at into dst, joined with the pending read
 * when both continue it. */
static int fetch(tile_t *t, int64_t at, size_t n, unsigned char *dst)
{
    int file = t->p->file, rc;
    if (t->pend.n && t->pend.file == file && t->pend.at + (int64_t)t->pend.n == at &&
        t->pend.dst + t->pend.n == dst && t->pend.n < ((size_t)64 << 20)) {
        t->pend.n += n;
        return 0;
    }
    if ((rc = flush(t)))
        return rc;
    t->pend.file = file;
    t->pend.at = at;
    t->pend.n = n;
    t->pend.dst = dst;
    return 0;
}

/* Copy the elements of box [lo, hi) (inside chunk q at origin clo) from the
 * decoded chunk buf into the tile. */
static void copy_box(const tile_t *t, const unsigned char *buf, const int64_t *clo,
                     const int64_t *lo, const int64_t *hi)
{
    const h5r_state_t *st = t->st;
    int nd = t->nd, last = nd - 1;
    int64_t x[H5R_MAXD], run = hi[last] - lo[last];
    for (int i = 0; i < nd; i++)
        x[i] = lo[i];
    for (;;) {
        int64_t s = 0, d = t->obase;
        for (int i = 0; i < nd; i++) {
            s += (x[i] - clo[i]) * t->cstr[i];
            d += x[i] * t->ostr[i];
        }
        unsigned char *o = t->out + (size_t)d * t->des;
        if (t->cstr[last] == 1) {
            tsr__convert(o, t->dt, buf + (size_t)s * st->es, st->dtype, st->swap, (size_t)run);
        } else {
            /* a strided row (frames stored last): gather, then convert */
            unsigned char tmp[256 * 8];
            size_t per = sizeof tmp / st->es;
            for (int64_t k = 0; k < run;) {
                size_t m = (size_t)(run - k) < per ? (size_t)(run - k) : per;
                for (size_t e = 0; e < m; e++)
                    memcpy(tmp + e * st->es,
                           buf + (size_t)(s + (k + (int64_t)e) * t->cstr[last]) * st->es, st->es);
                tsr__convert(o + (size_t)k * t->des, t->dt, tmp, st->dtype, st->swap, m);
                k += (int64_t)m;
            }
        }
        int i = last - 1;
        for (; i >= 0; i--) {
            if (++x[i] < hi[i])
                break;
            x[i] = lo[i];
        }
        if (i < 0)
            break;
    }
}

/* The part of chunk (logical grid coordinates q) inside box b. */
static int do_chunk(tile_t *t, const int64_t *q, const box_t *b)
{
    const h5r_state_t *st = t->st;
    const h5r_part_t *p = t->p;
    int nd = t->nd, rc;
    int64_t clo[H5R_MAXD], lo[H5R_MAXD], hi[H5R_MAXD], ext[H5R_MAXD], idx = 0, vol = 1;
    bool whole = true;
    for (int i = 0; i < nd; i++) {
        clo[i] = q[i] * t->C[i];
        int64_t chi = clo[i] + t->C[i] < t->L[i] ? clo[i] + t->C[i] : t->L[i];
        lo[i] = b->lo[i] > clo[i] ? b->lo[i] : clo[i];
        hi[i] = b->hi[i] < chi ? b->hi[i] : chi;
        ext[i] = hi[i] - lo[i];
        vol *= ext[i];
        whole &= lo[i] == clo[i] && ext[i] == t->C[i];
        idx += q[i] * t->gstr[i];
    }
    const h5r_chunk_t *ch = &p->chunks[idx];
    bool same = t->dt == st->dtype && !st->swap;
    if (st->identity && ch->addr >= 0 && contiguous(t->ostr, ext, nd) &&
        contiguous(t->cstr, ext, nd)) {
        int64_t s = 0, d = t->obase;
        for (int i = 0; i < nd; i++) {
            s += (lo[i] - clo[i]) * t->cstr[i];
            d += lo[i] * t->ostr[i];
        }
        unsigned char *o = t->out + (size_t)d * t->des;
        size_t bytes = (size_t)vol * st->es;
        bool filtered = false;
        for (int i = 0; i < p->n_filt; i++)
            filtered |= !(ch->mask & (1u << i));
        if (!filtered) {
            /* straight from the file */
            int64_t at = ch->addr + s * (int64_t)st->es;
            if (same)
                return fetch(t, at, bytes, o);
            if ((rc = tsr__io_reserve(t->io, bytes)))
                return tsr__seterr(t->err, t->errlen, rc, "out of memory");
            if ((rc = tsr__io_fetch(t->ds, t->io, p->file, at, bytes, t->io->scratch, t->err,
                                    t->errlen)))
                return rc;
            tsr__convert(o, t->dt, t->io->scratch, st->dtype, st->swap, (size_t)vol);
            return 0;
        }
        if (whole && same) /* all of it, in place: decode into the tile */
            return load_chunk(t->ds, st, p, t->w, t->io, idx, o, t->err, t->errlen);
    }
    bool unfiltered = ch->addr >= 0;
    for (int i = 0; i < p->n_filt && unfiltered; i++)
        unfiltered = (ch->mask & (1u << i)) != 0;
    if (unfiltered && st->identity) {
        /* Stored as is and mapped: copy the rows from the mapping (no
         * decoded copy).  (A scatter read, preadv, of the rows straight into
         * the tile measured slower than one pread and the copies: the
         * kernel's cost per piece outweighs the copy it saves.) */
        if (t->io->backend == TSR_IO_MMAP) {
            const unsigned char *m = NULL;
            if ((rc =
                     tsr__io_map(t->ds, p->file, ch->addr, st->chunk_bytes, &m, t->err, t->errlen)))
                return rc;
            if (m) {
                tsr__io_note_mapped(t->io, p->file, m, st->chunk_bytes);
                copy_box(t, m, clo, lo, hi);
                return 0;
            }
        }
    }
    const unsigned char *buf = NULL;
    if ((rc = cached_chunk(t->ds, st, t->part, p, t->w, t->io, idx, &buf, t->err, t->errlen)))
        return rc;
    copy_box(t, buf, clo, lo, hi);
    return 0;
}

/* Every chunk overlapping box b. */
static int do_box(tile_t *t, const box_t *b)
{
    int nd = t->nd, rc;
    int64_t q[H5R_MAXD], qlo[H5R_MAXD], qhi[H5R_MAXD];
    for (int i = 0; i < nd; i++) {
        if (b->hi[i] <= b->lo[i])
            return 0;
        qlo[i] = q[i] = b->lo[i] / t->C[i];
        qhi[i] = (b->hi[i] - 1) / t->C[i];
    }
    for (;;) {
        if ((rc = do_chunk(t, q, b)))
            return rc;
        int i = nd - 1;
        for (; i >= 0; i--) {
            if (++q[i] <= qhi[i])
                break;
            q[i] = qlo[i];
        }
        if (i < 0)
            return 0;
    }
}

/* Images [f0, f0+n) of part pi (part numbering), pixels [s0, s0+len). */
static int read_part(tile_t *t, int64_t f0, int64_t n, int64_t s0, int64_t len)
{
    const h5r_state_t *st = t->st;
    const h5r_part_t *p = t->p;
    int nd = st->ndim, nn = st->nnav;
    int64_t cstride[H5R_MAXD], gstride[H5R_MAXD];
    t->nd = nd;
    /* C-order strides over the stored axes, of a chunk and of the grid */
    cstride[nd - 1] = gstride[nd - 1] = 1;
    for (int i = nd - 2; i >= 0; i--) {
        cstride[i] = cstride[i + 1] * p->cdims[i + 1];
        gstride[i] = gstride[i + 1] * p->grid[i + 1];
    }
    for (int i = 0; i < nd; i++) {
        int s = st->perm[i];
        t->L[i] = p->dims[s];
        t->C[i] = p->cdims[s];
        t->cstr[i] = cstride[s];
        t->gstr[i] = gstride[s];
    }
    /* out: image-major, then the pixels of [s0, s0+len) */
    int64_t st_nav = len, st_sig = 1;
    for (int i = nd - 1; i >= nn; i--) {
        t->ostr[i] = st_sig;
        st_sig *= t->L[i];
    }
    for (int i = nn - 1; i >= 0; i--) {
        t->ostr[i] = st_nav;
        st_nav *= t->L[i];
    }
    t->obase = -(f0 * len + s0);

    box_t nb[MAX_BOXES], sb[MAX_BOXES], cur;
    int n_nb = 0, n_sb = 0, rc;
    memset(&cur, 0, sizeof cur);
    flat_boxes(t->L, nn, 0, f0, n, &cur, nb, &n_nb);
    memset(&cur, 0, sizeof cur);
    flat_boxes(t->L + nn, nd - nn, 0, s0, len, &cur, sb, &n_sb);
    for (int a = 0; a < n_nb; a++)
        for (int b = 0; b < n_sb; b++) {
            box_t bx;
            for (int i = 0; i < nn; i++) {
                bx.lo[i] = nb[a].lo[i];
                bx.hi[i] = nb[a].hi[i];
            }
            for (int i = nn; i < nd; i++) {
                bx.lo[i] = sb[b].lo[i - nn];
                bx.hi[i] = sb[b].hi[i - nn];
            }
            if ((rc = do_box(t, &bx))) {
                t->pend.n = 0;
                return rc;
            }
        }
    return flush(t);
}

int tsr__h5r_read(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                  int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen)
{
    const h5r_state_t *st = ds->state;
    worker_t *w = NULL;
    int rc;

    if ((rc = worker_get(st, io, &w, err, errlen)))
        return rc;
    tile_t t = {.ds = ds,
                .st = st,
                .w = w,
                .io = io,
                .dt = dt,
                .des = tsr_dtype_size(dt),
                .err = err,
                .errlen = errlen};
    unsigned char *o = out;
    int pi = 0;
    while (n > 0) {
        while (pi < st->n_parts && img0 >= st->parts[pi].first + st->parts[pi].count)
            pi++;
        if (pi == st->n_parts)
            return tsr__seterr(err, errlen, TSR_ECORRUPT, "%s: no data for image %lld", ds->path,
                               (long long)img0);
        const h5r_part_t *p = &st->parts[pi];
        int64_t k = p->first + p->count - img0;
        k = k < n ? k : n;
        t.part = pi;
        t.p = p;
        t.out = o;
        if ((rc = read_part(&t, img0 - p->first, k, sig0, siglen)))
            return rc;
        img0 += k;
        n -= k;
        o += (size_t)k * (size_t)siglen * t.des;
    }
    return 0;
}
