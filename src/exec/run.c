/*
 * run.c — runs: one pass of several UDFs over a dataset.
 *
 * tsr_run_start prepares everything serially on the caller's thread (UDF
 * init, ROI, corrections, tiling, partitions, merged buffers) and hands the
 * partitions to the executor.  Each worker then, per partition: zeroes its
 * partial buffers, reads tiles (depth frames × a sig band, skipping frames
 * outside the ROI), converts them to each UDF's input dtype, applies the
 * corrections, calls the UDFs, and finally merges its partials into the run's
 * buffers under the run lock (merges are serialized; UDFs need no lock) and
 * marks the partition's frames in the damage mask.
 *
 * Sparse runs: when the dataset stores sparse frames, no corrections apply
 * and every UDF accepts sparse tiles, tiles are read with
 * tsr__dataset_read_sparse and lent as compressed sparse rows (one value
 * array per input dtype, sharing indptr and indices); their depth follows
 * the stored values per frame, not the dense frame size.  Otherwise the
 * format densifies, and nothing else differs.
 *
 * Lock order: run->lock only (the executor's own lock is never held while
 * taking it).  Workers touch run->global and run->damage only under it.
 */
#include "exec/run.h"

#include <stdlib.h>

/* ---- errors ------------------------------------------------------------ */

static void run_fail(tsr_run_t *run, int code, const char *msg)
{
    tsr__mutex_lock(&run->lock);
    if (run->status == 0) {
        run->status = code;
        snprintf(run->errmsg, sizeof run->errmsg, "%.*s", (int)sizeof run->errmsg - 1, msg);
    }
    tsr__mutex_unlock(&run->lock);
    atomic_store(&run->cancel, true);
}

static void report(void *target, int code, const char *msg)
{
    run_fail(target, code, msg);
}

/* ---- worker state ------------------------------------------------------ */

typedef struct worker {
    tsr__io_t io;
    void *bufs[TSR_DTYPE_COUNT]; /* tile buffer per distinct dtype (dense runs) */
    /* sparse runs: rows in the dataset's dtype, and the values converted
     * to each other distinct dtype */
    tsr__sparse_t sp;
    void *svals[TSR_DTYPE_COUNT];
    size_t svals_cap[TSR_DTYPE_COUNT];
    void *native;            /* native read buffer when several dtypes */
    tsr__bufset_t *partials; /* per UDF */
    void **task_state;       /* per UDF */
    tsr_udf_meta_t *meta;    /* per UDF, with task fields */
    tsr__call_priv_t priv;
    char err[TSR__ERRMSG_MAX];
} worker_t;

/* The deepest sparse tile: frames whose rows are read and lent at once. */
#define SPARSE_MAX_DEPTH 4096

static int64_t block_frames(const tsr_run_t *run)
{
    return run->partition_mode ? run->max_part_rows : run->tiling.depth;
}

static int64_t band_pixels(const tsr_run_t *run)
{
    return run->tiling.rows * (run->sig_size / run->ds->sig.dims[0]);
}

static void worker_free(tsr_run_t *run, worker_t *w)
{
    if (!w)
        return;
    tsr_ctx_t *ctx = run->ctx;
    tsr__io_destroy(&w->io);
    for (int k = 0; k < run->n_dts; k++) {
        tsr__free_aligned(ctx, w->bufs[k]);
        tsr__free(ctx, w->svals[k]);
    }
    tsr__free_aligned(ctx, w->native);
    tsr__sparse_free(ctx, &w->sp);
    if (w->partials)
        for (int u = 0; u < run->n_udfs; u++)
            tsr__bufset_free(ctx, &w->partials[u]);
    tsr__free(ctx, w->partials);
    tsr__free(ctx, w->task_state);
    tsr__free(ctx, w->meta);
    tsr__free(ctx, w);
}

static int worker_init(void *ud, int index, void **out)
{
    (void)index;
    tsr_run_t *run = ud;
    tsr_ctx_t *ctx = run->ctx;
    worker_t *w = tsr__calloc(ctx, 1, sizeof *w);
    if (!w)
        goto oom;
    /* AUTO maps the file for runs over most of the data; a few frames
     * (pick) are cheaper to pread than to map */
    tsr__io_init_for(&w->io, ctx, run->ds, run->n_sel >= run->nav_size / 8);
    w->priv.report = report;
    w->priv.target = run;
    int64_t frames = block_frames(run), band = band_pixels(run);
    if (run->sparse) /* sparse tiles: buffers grow with the values read */
        frames = 0;
    for (int k = 0; k < run->n_dts; k++) {
        size_t n = (size_t)frames * (size_t)band * tsr_dtype_size(run->dts[k]);
        if (!(w->bufs[k] = tsr__malloc_aligned(ctx, n ? n : 1)))
            goto oom;
    }
    if (run->n_dts > 1 && !run->sparse) {
        size_t n = (size_t)frames * (size_t)band * tsr_dtype_size(run->ds->dtype);
        if (!(w->native = tsr__malloc_aligned(ctx, n ? n : 1)))
            goto oom;
    }
    w->partials = tsr__calloc(ctx, (size_t)run->n_udfs, sizeof *w->partials);
    w->task_state = tsr__calloc(ctx, (size_t)run->n_udfs, sizeof *w->task_state);
    w->meta = tsr__calloc(ctx, (size_t)run->n_udfs, sizeof *w->meta);
    if (!w->partials || !w->task_state || !w->meta)
        goto oom;
    for (int u = 0; u < run->n_udfs; u++)
        if (tsr__bufset_alloc(ctx, &run->insts[u], run->max_part_rows, false, &w->partials[u]))
            goto oom;
    *out = w;
    return 0;
oom:
    worker_free(run, w);
    run_fail(run, TSR_ENOMEM, "out of memory allocating worker buffers");
    return TSR_ENOMEM;
}

static void worker_done(void *ud, void *ws)
{
    worker_free(ud, ws);
}

/* ---- one partition ----------------------------------------------------- */

static int dtype_slot(const tsr_run_t *run, tsr_dtype_t dt)
{
    for (int k = 0; k < run->n_dts; k++)
        if (run->dts[k] == dt)
            return k;
    return 0;
}

/* Read frames [f0, f0+n) × pixels [s0, s0+len) into the worker's buffers
 * at frame offset `at`; ptrs[k] receive where dtype k's data are. */
static int read_block(tsr_run_t *run, worker_t *w, int64_t f0, int64_t n, int64_t at, int64_t s0,
                      int64_t len, bool allow_direct, const void **ptrs)
{
    bool corr = tsr__corr_active(&run->corr);
    bool can_direct = allow_direct && at == 0 && !corr;
    int rc;
    if (run->n_dts == 1) {
        tsr_dtype_t dt = run->dts[0];
        unsigned char *dst = (unsigned char *)w->bufs[0] + (size_t)(at * len) * tsr_dtype_size(dt);
        const void *p = dst;
        rc = tsr__dataset_read(run->ds, &w->io, f0, n, s0, len, dt, dst, can_direct ? &p : NULL,
                               w->err, sizeof w->err);
        if (rc)
            return rc;
        if (corr)
            tsr__corr_apply(&run->corr, dst, dt, n, s0, len);
        ptrs[0] = at == 0 ? p : w->bufs[0];
        return 0;
    }
    tsr_dtype_t nd = run->ds->dtype;
    unsigned char *nat = (unsigned char *)w->native + (size_t)(at * len) * tsr_dtype_size(nd);
    const void *np = nat;
    rc = tsr__dataset_read(run->ds, &w->io, f0, n, s0, len, nd, nat, can_direct ? &np : NULL,
                           w->err, sizeof w->err);
    if (rc)
        return rc;
    for (int k = 0; k < run->n_dts; k++) {
        tsr_dtype_t dt = run->dts[k];
        if (dt == nd && !corr) {
            ptrs[k] = at == 0 ? np : w->native;
            continue;
        }
        unsigned char *dst = (unsigned char *)w->bufs[k] + (size_t)(at * len) * tsr_dtype_size(dt);
        tsr__convert(dst, dt, np, nd, false, (size_t)(n * len));
        if (corr)
            tsr__corr_apply(&run->corr, dst, dt, n, s0, len);
        ptrs[k] = w->bufs[k];
    }
    return 0;
}

static void make_call(tsr_run_t *run, worker_t *w, int u, tsr_view_t *views, tsr_udf_call_t *c)
{
    const tsr__udf_inst_t *inst = &run->insts[u];
    *c = (tsr_udf_call_t){inst->udf->user_data, inst->state, w->task_state[u], &w->meta[u], views,
                          inst->n_decls,        &w->priv};
}

static int call_failed(tsr_run_t *run, int u, int rc, const char *what)
{
    char msg[TSR__ERRMSG_MAX];
    snprintf(msg, sizeof msg, "UDF %s: %s failed (%s)", run->insts[u].def->name, what,
             tsr_strerror(rc));
    run_fail(run, rc, msg); /* keeps the UDF's own message if it gave one */
    return rc;
}

/* Give a block of consecutive frames to the TILE and FRAME UDFs.
 * prow: partition-relative row of the block's first frame. */
static int dispatch(tsr_run_t *run, worker_t *w, const tsr__part_t *part, int64_t f0, int64_t n,
                    int64_t prow, int64_t s0, int64_t len, const void *const *ptrs, int64_t at)
{
    tsr_view_t views[TSR_UDF_MAX_BUFFERS];
    for (int u = 0; u < run->n_udfs; u++) {
        const tsr__udf_inst_t *inst = &run->insts[u];
        if (inst->method == TSR_METHOD_PARTITION)
            continue;
        int k = dtype_slot(run, inst->input_dtype);
        size_t fb = (size_t)len * tsr_dtype_size(inst->input_dtype);
        const unsigned char *data = (const unsigned char *)ptrs[k] + (size_t)at * fb;
        tsr_udf_call_t c;
        int64_t per = inst->method == TSR_METHOD_FRAME ? 1 : n;
        for (int64_t i = 0; i < n; i += per) {
            tsr_tile_t t = {data + (size_t)i * fb,
                            inst->input_dtype,
                            per,
                            f0 + i,
                            part->row_start + prow + i,
                            s0,
                            len,
                            NULL};
            tsr__bufset_views(inst, &w->partials[u], prow + i, per, s0, len, views);
            make_call(run, w, u, views, &c);
            int rc = inst->method == TSR_METHOD_FRAME ? inst->def->process_frame(&c, &t)
                                                      : inst->def->process_tile(&c, &t);
            if (rc < 0)
                return call_failed(run, u, rc, "processing");
        }
    }
    return 0;
}

/* Sparse runs: read frames [f0, f0+n) × pixels [s0, s0+len) as rows, and
 * their values in every dtype of the run; rows[k] describe dtype k's. */
static int read_sparse_block(tsr_run_t *run, worker_t *w, int64_t f0, int64_t n, int64_t s0,
                             int64_t len, tsr_sparse_rows_t *rows)
{
    tsr_dtype_t nd = run->ds->dtype;
    int rc = tsr__dataset_read_sparse(run->ds, &w->io, f0, n, s0, len, nd, &w->sp, w->err,
                                      sizeof w->err);
    if (rc)
        return rc;
    for (int k = 0; k < run->n_dts; k++) {
        tsr_dtype_t dt = run->dts[k];
        rows[k] = (tsr_sparse_rows_t){w->sp.indptr, w->sp.indices, w->sp.values};
        if (dt == nd)
            continue;
        size_t bytes = (size_t)w->sp.nnz * tsr_dtype_size(dt);
        if (bytes > w->svals_cap[k]) {
            void *p = tsr__realloc(run->ctx, w->svals[k], bytes);
            if (!p)
                return tsr__seterr(w->err, sizeof w->err, TSR_ENOMEM,
                                   "out of memory for %lld sparse values", (long long)w->sp.nnz);
            w->svals[k] = p;
            w->svals_cap[k] = bytes;
        }
        tsr__convert(w->svals[k], dt, w->sp.values, nd, false, (size_t)w->sp.nnz);
        rows[k].values = w->svals[k];
    }
    return 0;
}

/* Give a sparse tile to every UDF (all TILE UDFs that accept them). */
static int dispatch_sparse(tsr_run_t *run, worker_t *w, const tsr__part_t *part, int64_t f0,
                           int64_t n, int64_t prow, int64_t s0, int64_t len,
                           const tsr_sparse_rows_t *rows)
{
    tsr_view_t views[TSR_UDF_MAX_BUFFERS];
    for (int u = 0; u < run->n_udfs; u++) {
        const tsr__udf_inst_t *inst = &run->insts[u];
        int k = dtype_slot(run, inst->input_dtype);
        tsr_tile_t t = {NULL, inst->input_dtype, n, f0, part->row_start + prow, s0, len, &rows[k]};
        tsr__bufset_views(inst, &w->partials[u], prow, n, s0, len, views);
        tsr_udf_call_t c;
        make_call(run, w, u, views, &c);
        int rc = inst->def->process_tile(&c, &t);
        if (rc < 0)
            return call_failed(run, u, rc, "processing");
    }
    return 0;
}

/* Next run of consecutive selected frames at or after *f within [f, end). */
static bool next_span(const tsr_run_t *run, int64_t *f, int64_t end, int64_t *n)
{
    int64_t a = *f;
    if (run->roi)
        while (a < end && !run->roi[a])
            a++;
    if (a >= end)
        return false;
    int64_t b = a + 1;
    if (run->roi)
        while (b < end && run->roi[b])
            b++;
    else
        b = end;
    *f = a;
    *n = b - a;
    return true;
}

/* The tiles of a partition in order: spans of selected frames, cut into
 * depth frames × sig bands. */
typedef struct tile_it {
    int64_t f, span, i, s0, prow;
    bool started;
} tile_it_t;

typedef struct tile_pos {
    int64_t f0, n, s0, len, prow;
    bool last_band; /* the frames are complete after this tile */
} tile_pos_t;

static bool tile_next(const tsr_run_t *run, const tsr__part_t *part, tile_it_t *it, tile_pos_t *t)
{
    int64_t depth = run->tiling.depth, band = band_pixels(run);
    if (!it->started) {
        it->started = true;
        it->s0 = run->sig_lo;
        it->f = part->nav_start;
        if (!next_span(run, &it->f, part->nav_end, &it->span))
            return false;
    } else {
        it->s0 += band;
        if (it->s0 >= run->sig_hi) {
            it->s0 = run->sig_lo;
            it->i += depth;
            if (it->i >= it->span) {
                it->prow += it->span;
                it->f += it->span;
                it->i = 0;
                if (!next_span(run, &it->f, part->nav_end, &it->span))
                    return false;
            }
        }
    }
    t->f0 = it->f + it->i;
    t->n = it->span - it->i < depth ? it->span - it->i : depth;
    t->s0 = it->s0;
    t->len = run->sig_hi - it->s0 < band ? run->sig_hi - it->s0 : band;
    t->prow = it->prow + it->i;
    t->last_band = it->s0 + band >= run->sig_hi;
    return true;
}

static int process_part_tiles(tsr_run_t *run, worker_t *w, const tsr__part_t *part)
{
    const void *ptrs[TSR_DTYPE_COUNT];
    tile_it_t it = {0};
    tile_pos_t cur, next;
    bool have = tile_next(run, part, &it, &cur);
    tsr_sparse_rows_t rows[TSR_DTYPE_COUNT];
    while (have) {
        if (atomic_load(&run->cancel))
            return TSR_ECANCELED;
        int rc;
        if (run->sparse) {
            if ((rc = read_sparse_block(run, w, cur.f0, cur.n, cur.s0, cur.len, rows)) ||
                (rc =
                     dispatch_sparse(run, w, part, cur.f0, cur.n, cur.prow, cur.s0, cur.len, rows)))
                return rc;
            have = tile_next(run, part, &it, &next);
            if (cur.last_band)
                atomic_fetch_add(&run->frames_done, cur.n);
            cur = next;
            continue;
        }
        rc = read_block(run, w, cur.f0, cur.n, 0, cur.s0, cur.len, true, ptrs);
        if (rc)
            return rc;
        /* start reading the next tile (io_uring) while this one is processed */
        have = tile_next(run, part, &it, &next);
        if (have)
            tsr__dataset_read_ahead(run->ds, &w->io, next.f0, next.n, next.s0, next.len);
        if ((rc = dispatch(run, w, part, cur.f0, cur.n, cur.prow, cur.s0, cur.len, ptrs, 0)))
            return rc;
        if (cur.last_band)
            atomic_fetch_add(&run->frames_done, cur.n);
        cur = next;
    }
    return 0;
}

/* Partition mode: read every selected frame of the partition into one
 * block, then give spans to TILE/FRAME UDFs and the block to PARTITION ones. */
static int process_part_whole(tsr_run_t *run, worker_t *w, const tsr__part_t *part)
{
    const void *ptrs[TSR_DTYPE_COUNT];
    int64_t f = part->nav_start, prow = 0, span, len = run->sig_size;
    int rc;
    while (next_span(run, &f, part->nav_end, &span)) {
        if (atomic_load(&run->cancel))
            return TSR_ECANCELED;
        /* every span lands in the worker's buffers: no direct pointers */
        if ((rc = read_block(run, w, f, span, prow, 0, len, false, ptrs)))
            return rc;
        prow += span;
        f += span;
    }
    if (prow == 0)
        return 0;
    f = part->nav_start;
    int64_t r = 0;
    while (next_span(run, &f, part->nav_end, &span)) {
        if ((rc = dispatch(run, w, part, f, span, r, 0, len, ptrs, r)))
            return rc;
        r += span;
        f += span;
    }
    tsr_view_t views[TSR_UDF_MAX_BUFFERS];
    for (int u = 0; u < run->n_udfs; u++) {
        const tsr__udf_inst_t *inst = &run->insts[u];
        if (inst->method != TSR_METHOD_PARTITION)
            continue;
        int k = dtype_slot(run, inst->input_dtype);
        int64_t first = part->nav_start;
        next_span(run, &first, part->nav_end, &span);
        tsr_tile_t t = {ptrs[k], inst->input_dtype, prow, first, part->row_start, 0, len, NULL};
        tsr__bufset_views(inst, &w->partials[u], 0, prow, 0, len, views);
        tsr_udf_call_t c;
        make_call(run, w, u, views, &c);
        if ((rc = inst->def->process_partition(&c, &t)) < 0)
            return call_failed(run, u, rc, "processing");
    }
    atomic_fetch_add(&run->frames_done, prow);
    return 0;
}

static void record(void *target, int code, const char *msg)
{
    (void)code;
    snprintf(target, TSR__ERRMSG_MAX, "%s", msg);
}

static int merge_part(tsr_run_t *run, worker_t *w, const tsr__part_t *part)
{
    tsr_view_t dst[TSR_UDF_MAX_BUFFERS], src[TSR_UDF_MAX_BUFFERS];
    int rc = 0, failed = -1;
    /* a merge runs under run->lock, so tsr_udf_error must not take it */
    char msg[TSR__ERRMSG_MAX] = "";
    tsr__call_priv_t priv = {record, msg};
    tsr__mutex_lock(&run->lock);
    for (int u = 0; u < run->n_udfs && rc == 0; u++) {
        const tsr__udf_inst_t *inst = &run->insts[u];
        tsr__bufset_views(inst, &run->global[u], part->row_start, part->rows, 0, run->sig_size,
                          dst);
        tsr__bufset_views(inst, &w->partials[u], 0, part->rows, 0, run->sig_size, src);
        if (inst->def->merge) {
            tsr_udf_call_t c;
            make_call(run, w, u, dst, &c);
            c.task_state = NULL;
            c.priv = &priv;
            rc = inst->def->merge(&c, src);
            if (rc < 0) {
                failed = u;
                break;
            }
        } else {
            for (int i = 0; i < inst->n_decls; i++) {
                if (inst->decls[i].kind != TSR_KIND_NAV || !dst[i].data)
                    continue;
                memcpy(dst[i].data, src[i].data,
                       (size_t)(part->rows * src[i].row_elems) * tsr_dtype_size(src[i].dtype));
            }
        }
    }
    if (rc == 0) {
        for (int64_t f = part->nav_start; f < part->nav_end; f++)
            if (!run->roi || run->roi[f])
                run->damage[f] = 1;
    }
    tsr__mutex_unlock(&run->lock);
    if (rc < 0) {
        char full[TSR__ERRMSG_MAX + 64];
        snprintf(full, sizeof full, "UDF %s: merge failed: %s", run->insts[failed].def->name,
                 msg[0] ? msg : tsr_strerror(rc));
        run_fail(run, rc, full);
    }
    return rc;
}

static int run_task(void *ud, void *ws, int64_t t)
{
    tsr_run_t *run = ud;
    worker_t *w = ws;
    const tsr__part_t *part = &run->parts[t];
    if (part->rows == 0)
        return 0;
    int rc = 0, started = 0;
    for (int u = 0; u < run->n_udfs; u++) {
        tsr__udf_inst_t *inst = &run->insts[u];
        tsr__bufset_zero(inst, &w->partials[u]);
        w->meta[u] = inst->meta;
        w->meta[u].part_start = part->nav_start;
        w->meta[u].part_end = part->nav_end;
        w->meta[u].row_start = part->row_start;
        w->meta[u].rows = part->rows;
        w->task_state[u] = NULL;
        if (inst->def->task_start) {
            tsr_view_t views[TSR_UDF_MAX_BUFFERS];
            tsr__bufset_views(inst, &w->partials[u], 0, part->rows, 0, run->sig_size, views);
            tsr_udf_call_t c;
            make_call(run, w, u, views, &c);
            void *st = NULL;
            rc = inst->def->task_start(&c, &st);
            if (rc < 0) {
                call_failed(run, u, rc, "task start");
                break;
            }
            w->task_state[u] = st;
        }
        started++;
    }
    if (rc == 0) {
        w->err[0] = 0;
        rc = run->partition_mode ? process_part_whole(run, w, part)
                                 : process_part_tiles(run, w, part);
        if (rc < 0 && w->err[0])
            run_fail(run, rc, w->err);
    }
    for (int u = 0; u < started; u++) {
        const tsr__udf_inst_t *inst = &run->insts[u];
        if (inst->def->task_stop) {
            tsr_view_t views[TSR_UDF_MAX_BUFFERS];
            tsr__bufset_views(inst, &w->partials[u], 0, part->rows, 0, run->sig_size, views);
            tsr_udf_call_t c;
            make_call(run, w, u, views, &c);
            inst->def->task_stop(&c, w->task_state[u]);
        }
        w->task_state[u] = NULL;
    }
    if (rc == 0)
        rc = merge_part(run, w, part);
    if (rc == TSR_ECANCELED)
        run_fail(run, rc, "the run was canceled");
    return rc;
}

/* ---- start ------------------------------------------------------------- */

static int setup_selection(tsr_run_t *run, const uint8_t *user_roi)
{
    tsr_ctx_t *ctx = run->ctx;
    int64_t nav = run->nav_size;
    bool all_need = run->n_udfs > 0;
    for (int u = 0; u < run->n_udfs; u++)
        all_need = all_need && run->insts[u].frames_needed;
    if (!user_roi && !all_need)
        return 0;
    run->roi = tsr__malloc(ctx, (size_t)nav);
    if (!run->roi)
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory");
    for (int64_t i = 0; i < nav; i++)
        run->roi[i] = user_roi ? user_roi[i] != 0 : 1;
    if (all_need) {
        uint8_t *want = tsr__calloc(ctx, (size_t)nav, 1);
        if (!want)
            return tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory");
        for (int u = 0; u < run->n_udfs; u++)
            for (int64_t j = 0; j < run->insts[u].n_frames_needed; j++) {
                int64_t f = run->insts[u].frames_needed[j];
                if (f >= 0 && f < nav)
                    want[f] = 1;
            }
        for (int64_t i = 0; i < nav; i++)
            run->roi[i] &= want[i];
        tsr__free(ctx, want);
    }
    int64_t n = 0;
    for (int64_t i = 0; i < nav; i++)
        n += run->roi[i];
    run->sel = tsr__malloc(ctx, (size_t)(n ? n : 1) * sizeof(int64_t));
    if (!run->sel)
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory");
    n = 0;
    for (int64_t i = 0; i < nav; i++)
        if (run->roi[i])
            run->sel[n++] = i;
    run->n_sel = n;
    return 0;
}

static void add_dtype(tsr_run_t *run, tsr_dtype_t dt)
{
    for (int k = 0; k < run->n_dts; k++)
        if (run->dts[k] == dt)
            return;
    run->dts[run->n_dts++] = dt;
}

static void run_destroy(tsr_run_t *run)
{
    tsr_ctx_t *ctx = run->ctx;
    if (run->exec)
        run->exec->vt->free(run->exec);
    for (int u = 0; u < run->n_udfs; u++) {
        if (run->global)
            tsr__bufset_free(ctx, &run->global[u]);
        if (run->insts)
            tsr__udf_inst_destroy(ctx, &run->insts[u]);
    }
    tsr_results_free(run->results);
    tsr__free(ctx, run->global);
    tsr__free(ctx, run->insts);
    tsr__free(ctx, run->roi);
    tsr__free(ctx, run->sel);
    tsr__free(ctx, run->parts);
    tsr__free(ctx, run->damage);
    tsr__corr_destroy(ctx, &run->corr);
    tsr__mutex_destroy(&run->lock);
    tsr__free(ctx, run);
}

int tsr_run_start(tsr_ctx_t *ctx, tsr_dataset_t *ds, tsr_udf_t *const *udfs, size_t n,
                  const tsr_run_opts_t *opts, tsr_run_t **out)
{
    if (!ctx || !out)
        return TSR_EINVAL;
    if (!ds || !udfs || n == 0 || n > 64)
        return tsr__ctx_seterr(ctx, TSR_EINVAL, "a run needs a dataset and 1 to 64 UDFs");
    tsr_run_t *run = tsr__calloc(ctx, 1, sizeof *run);
    if (!run)
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory");
    if (tsr__mutex_init(&run->lock)) {
        tsr__free(ctx, run);
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "cannot create a lock");
    }
    int rc = 0;
    run->ctx = ctx;
    run->ds = ds;
    run->nav_size = tsr_shape_size(&ds->nav);
    run->sig_size = tsr_shape_size(&ds->sig);
    run->n_sel = run->nav_size;
    atomic_init(&run->frames_done, 0);
    atomic_init(&run->cancel, false);

    /* the caller's corrections, else the dataset's own (unless refused) */
    const tsr_corrections_t *corr = opts ? &opts->corrections : NULL;
    if ((!corr || (!corr->dark && !corr->gain && !corr->excluded)) &&
        !(opts && opts->no_dataset_corrections))
        corr = tsr_dataset_corrections(ds);
    TSR_TRY(tsr__corr_init(ctx, &run->corr, corr, &ds->sig));
    bool corr_on = tsr__corr_active(&run->corr);
    TSR_CHECK(ctx, !corr_on || !tsr__dtype_is_complex(ds->dtype), TSR_EUNSUPPORTED,
              "corrections are not supported for complex data");

    /* UDF init, serially, with the run's view of the data */
    run->insts = tsr__calloc(ctx, n, sizeof *run->insts);
    run->global = tsr__calloc(ctx, n, sizeof *run->global);
    TSR_CHECK(ctx, run->insts && run->global, TSR_ENOMEM, "out of memory");
    tsr_udf_meta_t meta = {0};
    meta.nav_shape = ds->nav;
    meta.sig_shape = ds->sig;
    meta.dataset_dtype = ds->dtype;
    meta.sparse = ds->fmt->read_sparse != NULL;
    meta.roi = opts ? opts->roi : NULL;
    meta.roi_count = run->nav_size;
    if (meta.roi) {
        meta.roi_count = 0;
        for (int64_t i = 0; i < run->nav_size; i++)
            meta.roi_count += meta.roi[i] != 0;
    }
    for (size_t u = 0; u < n; u++) {
        TSR_CHECK(ctx, udfs[u] != NULL, TSR_EINVAL, "UDF %zu is NULL", u);
        run->n_udfs = (int)u + 1;
        TSR_TRY(tsr__udf_inst_init(ctx, &run->insts[u], udfs[u], &meta, corr_on, ctx->errmsg,
                                   sizeof ctx->errmsg));
    }
    TSR_TRY(setup_selection(run, opts ? opts->roi : NULL));
    for (int u = 0; u < run->n_udfs; u++) {
        run->insts[u].meta.roi = run->roi;
        run->insts[u].meta.roi_count = run->n_sel;
    }

    /* tiling */
    tsr__tiling_in_t ti = {.sig = ds->sig,
                           .budget = ctx->tile_bytes,
                           .base_depth = ds->base_depth,
                           .base_rows = ds->base_rows};
    size_t widest = tsr_dtype_size(ds->dtype);
    for (int u = 0; u < run->n_udfs; u++) {
        const tsr__udf_inst_t *inst = &run->insts[u];
        add_dtype(run, inst->input_dtype);
        widest =
            tsr_dtype_size(inst->input_dtype) > widest ? tsr_dtype_size(inst->input_dtype) : widest;
        if (inst->method != TSR_METHOD_TILE)
            ti.full_frames = true;
        if (inst->method == TSR_METHOD_PARTITION)
            run->partition_mode = true;
        if (inst->tile_depth && (!ti.pref_depth || inst->tile_depth < ti.pref_depth))
            ti.pref_depth = inst->tile_depth;
    }
    if (run->corr.n_excluded)
        ti.full_frames = true;
    /* sparse tiles: only if every UDF takes them and nothing densifies */
    run->sparse = meta.sparse && !corr_on && !run->partition_mode;
    for (int u = 0; u < run->n_udfs; u++)
        run->sparse = run->sparse && run->insts[u].accepts_sparse;
    /* the band of sig rows every UDF reads (all rows if one reads all) */
    int64_t rows = ds->sig.dims[0], row_px = run->sig_size / rows, r0 = rows, r1 = 0;
    for (int u = 0; u < run->n_udfs; u++) {
        const tsr__udf_inst_t *inst = &run->insts[u];
        if (inst->rows_end == 0 || ti.full_frames) {
            r0 = 0;
            r1 = rows;
            break;
        }
        r0 = inst->rows_start < r0 ? inst->rows_start : r0;
        r1 = inst->rows_end > r1 ? inst->rows_end : r1;
    }
    if (ds->base_rows > 1) { /* the format delivers whole blocks of rows */
        r0 = r0 / ds->base_rows * ds->base_rows;
        r1 = (r1 + ds->base_rows - 1) / ds->base_rows * ds->base_rows;
        r1 = r1 > rows ? rows : r1;
    }
    run->sig_lo = r0 * row_px;
    run->sig_hi = r1 * row_px;
    ti.sig.dims[0] = r1 - r0;
    ti.elem_bytes = widest;
    if (run->sparse) {
        /* whole frames of the band, as deep as the stored values of a frame
         * (an index and a value each, on average) fit the budget */
        int64_t per_frame = ds->image_count > 0 ? ds->nnz / ds->image_count + 1 : 1;
        ti.sig = (tsr_shape_t){.ndim = 1, .dims = {per_frame}};
        ti.elem_bytes = widest + sizeof(int64_t);
        ti.full_frames = true;
        ti.base_depth = 0;
        tsr__tiling_negotiate(&ti, &run->tiling);
        run->tiling.rows = r1 - r0;
        if (run->tiling.depth > SPARSE_MAX_DEPTH)
            run->tiling.depth = SPARSE_MAX_DEPTH;
    } else {
        tsr__tiling_negotiate(&ti, &run->tiling);
    }

    /* partitions */
    int64_t frame_bytes = run->sig_size * (int64_t)tsr_dtype_size(ds->dtype);
    TSR_CHECK(ctx,
              tsr__partition(ctx, run->nav_size, run->sel, run->n_sel, frame_bytes,
                             ctx->partition_bytes, ctx->partitions,
                             ctx->executor == TSR_EXEC_INLINE ? 1 : ctx->threads, &run->parts,
                             &run->n_parts) == 0,
              TSR_ENOMEM, "out of memory");
    for (int64_t p = 0; p < run->n_parts; p++)
        if (run->parts[p].rows > run->max_part_rows)
            run->max_part_rows = run->parts[p].rows;
    if (run->max_part_rows == 0)
        run->max_part_rows = 1;

    /* merged buffers and damage */
    for (int u = 0; u < run->n_udfs; u++)
        TSR_CHECK(ctx,
                  tsr__bufset_alloc(ctx, &run->insts[u], run->n_sel, false, &run->global[u]) == 0,
                  TSR_ENOMEM, "out of memory allocating result buffers");
    run->damage = tsr__calloc(ctx, (size_t)run->nav_size, 1);
    TSR_CHECK(ctx, run->damage, TSR_ENOMEM, "out of memory");

    /* go */
    if (ctx->executor == TSR_EXEC_INLINE)
        rc = tsr__exec_inline_new(ctx, &run->exec);
    else
        rc = tsr__exec_threads_new(ctx, (int)ctx->threads, &run->exec);
    TSR_CHECK(ctx, rc == 0, rc, "cannot create the executor");
    tsr__job_t job = {run->n_parts, run, worker_init, run_task, worker_done};
    TSR_CHECK(ctx, (rc = run->exec->vt->submit(run->exec, &job)) == 0, rc,
              "cannot start worker threads");
    *out = run;
    return 0;
fail:
    run_destroy(run);
    return rc;
}

/* ---- observe ----------------------------------------------------------- */

void tsr_run_progress(const tsr_run_t *run, int64_t *done, int64_t *total)
{
    if (done)
        *done = run ? atomic_load(&((tsr_run_t *)run)->frames_done) : 0;
    if (total)
        *total = run ? run->n_sel : 0;
}

void tsr_run_cancel(tsr_run_t *run)
{
    if (!run)
        return;
    atomic_store(&run->cancel, true);
    run->exec->vt->cancel(run->exec);
}

static void valid_mask(const tsr_run_t *run, const uint8_t *damage, uint8_t *valid)
{
    for (int64_t i = 0; i < run->nav_size; i++)
        valid[i] = (run->roi ? run->roi[i] : 1) && (!damage || damage[i]);
}

static int finish(tsr_run_t *run)
{
    tsr_ctx_t *ctx = run->ctx;
    uint8_t *valid = tsr__malloc(ctx, (size_t)run->nav_size);
    if (!valid) {
        snprintf(run->errmsg, sizeof run->errmsg, "out of memory building results");
        return TSR_ENOMEM;
    }
    valid_mask(run, NULL, valid);
    /* build from copies, so that snapshots stay possible after the end */
    tsr__bufset_t *sets = tsr__calloc(ctx, (size_t)run->n_udfs, sizeof *sets);
    int rc = sets ? 0 : TSR_ENOMEM, copied = 0;
    for (; rc == 0 && copied < run->n_udfs; copied++)
        rc = tsr__bufset_copy(ctx, &run->insts[copied], &run->global[copied], &sets[copied]);
    if (rc == 0)
        rc = tsr__results_build(ctx, run->insts, run->n_udfs, sets, &run->ds->nav, &run->ds->sig,
                                run->sel, run->n_sel, valid, valid, &run->results, run->errmsg,
                                sizeof run->errmsg);
    else
        for (int u = 0; u < copied; u++)
            tsr__bufset_free(ctx, &sets[u]);
    if (rc == TSR_ENOMEM)
        snprintf(run->errmsg, sizeof run->errmsg, "out of memory building results");
    tsr__free(ctx, sets);
    tsr__free(ctx, valid);
    return rc;
}

int tsr_run_wait_for(tsr_run_t *run, int timeout_ms)
{
    if (!run)
        return TSR_EINVAL;
    if (run->ended)
        return run->status;
    int rc = run->exec->vt->wait(run->exec, timeout_ms);
    if (rc == TSR_EAGAIN)
        return rc;
    tsr__mutex_lock(&run->lock);
    if (run->status == 0 && rc < 0) {
        run->status = rc;
        snprintf(run->errmsg, sizeof run->errmsg, "%s",
                 rc == TSR_ECANCELED ? "the run was canceled" : tsr_strerror(rc));
    }
    if (run->status == 0 && atomic_load(&run->cancel)) {
        run->status = TSR_ECANCELED;
        snprintf(run->errmsg, sizeof run->errmsg, "the run was canceled");
    }
    tsr__mutex_unlock(&run->lock);
    if (run->status == 0)
        run->status = finish(run);
    run->ended = true;
    return run->status;
}

int tsr_run_wait(tsr_run_t *run)
{
    return tsr_run_wait_for(run, -1);
}

const char *tsr_run_errmsg(const tsr_run_t *run)
{
    return run ? run->errmsg : "";
}

void tsr_run_free(tsr_run_t *run)
{
    if (!run)
        return;
    if (!run->ended) {
        tsr_run_cancel(run);
        tsr_run_wait(run);
    }
    run_destroy(run);
}

int tsr_run_results(tsr_run_t *run, const tsr_results_t **out)
{
    if (!run || !out)
        return TSR_EINVAL;
    if (!run->ended)
        return TSR_ESTATE;
    if (run->status)
        return run->status;
    *out = run->results;
    return 0;
}

int tsr_run_snapshot(tsr_run_t *run, tsr_results_t **out)
{
    if (!run || !out)
        return TSR_EINVAL;
    tsr_ctx_t *ctx = run->ctx;
    int n = run->n_udfs, rc = 0;
    tsr__bufset_t *sets = tsr__calloc(ctx, (size_t)n, sizeof *sets);
    uint8_t *damage = tsr__malloc(ctx, (size_t)run->nav_size);
    uint8_t *valid = tsr__malloc(ctx, (size_t)run->nav_size);
    int copied = 0;
    if (!sets || !damage || !valid) {
        rc = TSR_ENOMEM;
        goto done;
    }
    tsr__mutex_lock(&run->lock);
    for (; copied < n && rc == 0; copied++)
        rc = tsr__bufset_copy(ctx, &run->insts[copied], &run->global[copied], &sets[copied]);
    memcpy(damage, run->damage, (size_t)run->nav_size);
    tsr__mutex_unlock(&run->lock);
    if (rc)
        goto done;
    valid_mask(run, damage, valid);
    char err[TSR__ERRMSG_MAX];
    rc = tsr__results_build(ctx, run->insts, n, sets, &run->ds->nav, &run->ds->sig, run->sel,
                            run->n_sel, valid, damage, out, err, sizeof err);
    copied = 0; /* taken over */
done:
    for (int u = 0; u < copied; u++)
        tsr__bufset_free(ctx, &sets[u]);
    tsr__free(ctx, sets);
    tsr__free(ctx, damage);
    tsr__free(ctx, valid);
    return rc;
}
