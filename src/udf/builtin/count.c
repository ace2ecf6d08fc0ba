/*
 * count.c — the `count` UDF: electron counting.  Each frame is turned into
 * a list of electron events, written as a sparse dataset in LiberTEM's
 * raw_csr layout, and the number of events per frame is the NAV result
 * `events` (int32).
 *
 * Events.  With x a pixel's value (after corrections, e.g. the dark frame),
 * let y = x where threshold < x <= xray, else 0 (below the threshold: noise;
 * above xray: an X-ray hit, discarded).  Pixel p holds an event iff y[p] > 0
 * and y[p] is a local maximum of its 8-neighbourhood within the frame:
 * y[p] > y[q] for the neighbours q before p in raster order (up-left, up,
 * up-right, left) and y[p] >= y[q] for those after it (right, down-left,
 * down, down-right), so that an electron spreading over a few pixels counts
 * once and a plateau of equal values counts once.  Thresholds come from the
 * user, typically from the `count_threshold` UDF run on the same data.
 *
 * Output (parameter `output`, a path ending in .toml): LiberTEM's raw_csr
 * descriptor
 *
 *     [params]
 *     filetype = "raw_csr"
 *     nav_shape = [...]            the dataset's nav shape
 *     sig_shape = [h, w]
 *     [raw_csr]
 *     indptr_file = "<stem>.indptr.raw"    indptr_dtype = "<i8"
 *     indices_file = "<stem>.indices.raw"  indices_dtype = "<i4"
 *     data_file = "<stem>.data.raw"        data_dtype = "|u1"
 *
 * with the file names relative to the descriptor: a CSR matrix of
 * nav_size rows (frames, C order) × h·w columns (pixels, C order), one
 * entry of value 1 per event, column indices ascending within a row.
 * Frames outside the ROI are empty rows.
 *
 * Writing.  Frames are processed out of order by several workers, but the
 * CSR rows must be written in order.  Each task gathers the events of its
 * partition in memory; after its last frame it hands them to the run's
 * writer (in init's state, guarded by its own mutex: the only mutable part
 * of the state), which appends every segment that continues the rows
 * written so far and keeps the others until their turn.  Memory: the events
 * of the partitions that finished ahead of an earlier one.  When the last
 * row is written the descriptor is written, so a complete .toml means a
 * complete dataset: init removes an old descriptor of the same name first,
 * and a failed or cancelled run leaves none.  A write error fails the run
 * (from the process callback of the task that hit it).
 */
#include "udf/builtin/builtin.h"

#include "platform/os.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>

enum { BUF_EVENTS = 0 };

/* A finished partition: events of frames [first, first + n_frames). */
typedef struct count_seg {
    struct count_seg *next;
    int64_t first, n_frames;
    int64_t *counts; /* n_frames */
    int32_t *idx;    /* Σ counts column indices */
    int64_t n_idx;
} count_seg_t;

/* The writer shared by the run's tasks. */
typedef struct count_sink {
    tsr__mutex_t lock;
    /* guarded by: lock */
    FILE *f_indptr, *f_indices, *f_data;
    int64_t next;         /* rows written */
    int64_t total;        /* entries written */
    count_seg_t *pending; /* sorted by first */
    bool failed, done;
    char err[TSR__ERRMSG_MAX];
} count_sink_t;

typedef struct count_state {
    tsr_ctx_t *ctx;
    double threshold, xray;
    int64_t h, w, nav;
    char *toml, *stem_name;
    char *paths[3];
    count_sink_t sink;
    bool have_lock;
} count_state_t;

typedef struct count_task {
    int64_t first, span; /* frames [first, first + span) of the partition */
    int64_t *counts;     /* span */
    int32_t *idx;
    int64_t n_idx, cap;
    int64_t done, rows; /* frames processed, frames to process */
    bool pushed;
} count_task_t;

static const tsr_param_def_t count_params[] = {
    {"threshold", "float", NULL,
     "Pixels above it may hold an electron (count_threshold's `threshold`).", false},
    {"xray", "float", "",
     "Pixels above it are X-ray hits and discarded (count_threshold's `xray`); default: none.",
     false},
    {"output", "path", NULL,
     "Where to write the counted frames: a raw_csr descriptor path ending in .toml; the "
     "indptr, indices and data files go next to it.",
     false},
};

static const char *const file_kind[3] = {"indptr", "indices", "data"};

/* ---- the writer -------------------------------------------------------- */

static bool host_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t b;
    memcpy(&b, &one, 1);
    return b == 1;
}

static void sink_fail(count_sink_t *s, const char *fmt, const char *path)
{
    if (!s->failed)
        snprintf(s->err, sizeof s->err, fmt, path, strerror(errno));
    s->failed = true;
}

/* Write the rows of frames that are not selected, up to `until`. */
static void sink_skip(count_state_t *st, int64_t until)
{
    count_sink_t *s = &st->sink;
    while (s->next < until && !s->failed) {
        if (fwrite(&s->total, sizeof s->total, 1, s->f_indptr) != 1)
            sink_fail(s, "count: cannot write '%s': %s", st->paths[0]);
        s->next++;
    }
}

static void sink_write_seg(count_state_t *st, const count_seg_t *g)
{
    count_sink_t *s = &st->sink;
    for (int64_t i = 0; i < g->n_frames && !s->failed; i++) {
        s->total += g->counts[i];
        if (fwrite(&s->total, sizeof s->total, 1, s->f_indptr) != 1)
            sink_fail(s, "count: cannot write '%s': %s", st->paths[0]);
    }
    uint8_t ones[4096];
    memset(ones, 1, sizeof ones);
    if (!s->failed && g->n_idx &&
        fwrite(g->idx, sizeof *g->idx, (size_t)g->n_idx, s->f_indices) != (size_t)g->n_idx)
        sink_fail(s, "count: cannot write '%s': %s", st->paths[1]);
    for (int64_t k = 0; k < g->n_idx && !s->failed; k += (int64_t)sizeof ones) {
        size_t n =
            (size_t)(g->n_idx - k < (int64_t)sizeof ones ? g->n_idx - k : (int64_t)sizeof ones);
        if (fwrite(ones, 1, n, s->f_data) != n)
            sink_fail(s, "count: cannot write '%s': %s", st->paths[2]);
    }
    s->next = g->first + g->n_frames;
}

static void seg_free(tsr_ctx_t *ctx, count_seg_t *g)
{
    if (!g)
        return;
    tsr_free(ctx, g->counts);
    tsr_free(ctx, g->idx);
    tsr_free(ctx, g);
}

static void sink_close_files(count_sink_t *s, const count_state_t *st)
{
    FILE **f[3] = {&s->f_indptr, &s->f_indices, &s->f_data};
    for (int i = 0; i < 3; i++)
        if (*f[i]) {
            if (fclose(*f[i]) != 0)
                sink_fail(s, "count: cannot write '%s': %s", st->paths[i]);
            *f[i] = NULL;
        }
}

/* A TOML basic string "name<suffix>": quotes, backslashes and control
 * characters of the file name escaped, so any name gives a valid TOML. */
static void toml_file_name(FILE *f, const char *name, const char *suffix)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)name; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\u%04x", *c);
        else
            fputc(*c, f);
    }
    fprintf(f, "%s\"", suffix);
}

static void sink_write_toml(count_state_t *st, const tsr_udf_meta_t *m)
{
    count_sink_t *s = &st->sink;
    FILE *f = fopen(st->toml, "w");
    if (!f) {
        sink_fail(s, "count: cannot create '%s': %s", st->toml);
        return;
    }
    const char e = host_little_endian() ? '<' : '>';
    fprintf(f, "# electron events counted by tessera's `count` UDF (threshold %.17g, xray %.17g)\n",
            st->threshold, st->xray);
    fprintf(f, "[params]\nfiletype = \"raw_csr\"\nnav_shape = [");
    for (int i = 0; i < m->nav_shape.ndim; i++)
        fprintf(f, "%s%lld", i ? ", " : "", (long long)m->nav_shape.dims[i]);
    fprintf(f, "]\nsig_shape = [%lld, %lld]\n\n[raw_csr]\n", (long long)st->h, (long long)st->w);
    fputs("indptr_file = ", f);
    toml_file_name(f, st->stem_name, ".indptr.raw");
    fprintf(f, "\nindptr_dtype = \"%ci8\"\nindices_file = ", e);
    toml_file_name(f, st->stem_name, ".indices.raw");
    fprintf(f, "\nindices_dtype = \"%ci4\"\ndata_file = ", e);
    toml_file_name(f, st->stem_name, ".data.raw");
    fputs("\ndata_dtype = \"|u1\"\n", f);
    if (ferror(f) | (fclose(f) != 0))
        sink_fail(s, "count: cannot write '%s': %s", st->toml);
}

/* Take a finished segment (ownership passes), write what continues the
 * rows written.  Returns 0 or a negative code with the message in err. */
static int sink_push(count_state_t *st, const tsr_udf_meta_t *m, count_seg_t *g, char *err,
                     size_t errlen)
{
    count_sink_t *s = &st->sink;
    const uint8_t *roi = m->roi; /* set for the tasks, not yet in init */
    tsr__mutex_lock(&s->lock);
    count_seg_t **pp = &s->pending;
    while (*pp && (*pp)->first < g->first)
        pp = &(*pp)->next;
    g->next = *pp;
    *pp = g;
    while (!s->failed && s->pending) {
        count_seg_t *h = s->pending;
        /* rows before it that no partition reports: frames outside the ROI */
        int64_t gap = s->next;
        while (gap < h->first && roi && !roi[gap])
            gap++;
        if (gap < h->first)
            break; /* a selected frame before it is still being processed */
        sink_skip(st, h->first);
        sink_write_seg(st, h);
        s->pending = h->next;
        seg_free(st->ctx, h);
    }
    if (!s->failed && !s->done) {
        /* the rest, if no selected frame follows */
        int64_t f = s->next;
        while (f < st->nav && roi && !roi[f])
            f++;
        if (f == st->nav) {
            sink_skip(st, st->nav);
            sink_close_files(s, st);
            if (!s->failed)
                sink_write_toml(st, m);
            s->done = true;
        }
    }
    int rc = s->failed ? TSR_EIO : 0;
    if (rc)
        snprintf(err, errlen, "%s", s->err);
    tsr__mutex_unlock(&s->lock);
    return rc;
}

/* ---- init / destroy ---------------------------------------------------- */

static void count_destroy(void *user_data, void *state)
{
    (void)user_data;
    count_state_t *st = state;
    if (!st)
        return;
    sink_close_files(&st->sink, st);
    while (st->sink.pending) {
        count_seg_t *g = st->sink.pending;
        st->sink.pending = g->next;
        seg_free(st->ctx, g);
    }
    if (st->have_lock)
        tsr__mutex_destroy(&st->sink.lock);
    for (int i = 0; i < 3; i++)
        tsr_free(st->ctx, st->paths[i]);
    tsr_free(st->ctx, st->toml);
    tsr_free(st->ctx, st->stem_name);
    tsr_free(st->ctx, st);
}

static char *dup_n(tsr_ctx_t *ctx, const char *s, size_t n)
{
    char *d = tsr_alloc(ctx, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int count_param(tsr_udf_init_t *init, const char *key, double dflt, double *out)
{
    const char *v = tsr_params_get(init->params, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    char what[96], err[200];
    snprintf(what, sizeof what, "count: parameter '%s'", key);
    int rc = tsr__parse_f64(v, out, err, sizeof err, what);
    return rc < 0 ? tsr__builtin_init_fail(init, rc, "%s", err) : 0;
}

static int count_init(tsr_udf_init_t *init)
{
    const tsr_udf_meta_t *m = init->meta;
    if (m->sig_shape.ndim != 2)
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "count: needs a 2-D signal");
    if (tsr_shape_size(&m->sig_shape) >= INT32_MAX)
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "count: frames are too large");
    if (tsr__dtype_is_complex(m->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "count: complex data are not supported");
    double thr, xray;
    int rc;
    if ((rc = count_param(init, "threshold", 0, &thr)) < 0 ||
        (rc = count_param(init, "xray", INFINITY, &xray)) < 0)
        return rc;
    if (!(xray > thr))
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "count: xray (%g) must be above threshold (%g)", xray, thr);
    const char *out = tsr_params_get(init->params, "output");
    size_t len = out ? strlen(out) : 0;
    if (len < 6 || strcmp(out + len - 5, ".toml") != 0)
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "count: output '%s' must be a path ending in .toml (the "
                                      "raw_csr descriptor)",
                                      out ? out : "");
    count_state_t *st = tsr_alloc(init->ctx, sizeof *st);
    if (!st)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "count: out of memory");
    memset(st, 0, sizeof *st);
    st->ctx = init->ctx;
    st->threshold = thr;
    st->xray = xray;
    st->h = m->sig_shape.dims[0];
    st->w = m->sig_shape.dims[1];
    st->nav = tsr_shape_size(&m->nav_shape);
    st->toml = dup_n(init->ctx, out, len);
    const char *slash = strrchr(out, '/');
    const char *base = slash ? slash + 1 : out;
    st->stem_name = dup_n(init->ctx, base, (size_t)(out + len - 5 - base));
    for (int i = 0; i < 3; i++) {
        st->paths[i] = tsr_alloc(init->ctx, len + 16);
        if (st->paths[i])
            snprintf(st->paths[i], len + 16, "%.*s.%s.raw", (int)(len - 5), out, file_kind[i]);
    }
    if (!st->toml || !st->stem_name || !st->paths[0] || !st->paths[1] || !st->paths[2]) {
        count_destroy(NULL, st);
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "count: out of memory");
    }
    if (tsr__mutex_init(&st->sink.lock) != 0) {
        count_destroy(NULL, st);
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "count: cannot create a mutex");
    }
    st->have_lock = true;
    /* an old descriptor must not describe the files being rewritten */
    if (remove(st->toml) != 0 && errno != ENOENT) {
        rc = tsr__builtin_init_fail(init, TSR_EIO, "count: cannot remove the old '%s': %s",
                                    st->toml, strerror(errno));
        count_destroy(NULL, st);
        return rc;
    }
    FILE **f[3] = {&st->sink.f_indptr, &st->sink.f_indices, &st->sink.f_data};
    for (int i = 0; i < 3; i++) {
        *f[i] = fopen(st->paths[i], "wb");
        if (!*f[i]) {
            rc = tsr__builtin_init_fail(init, TSR_EIO, "count: cannot create '%s': %s",
                                        st->paths[i], strerror(errno));
            count_destroy(NULL, st);
            return rc;
        }
    }
    const int64_t zero = 0;
    if (fwrite(&zero, sizeof zero, 1, st->sink.f_indptr) != 1) {
        rc = tsr__builtin_init_fail(init, TSR_EIO, "count: cannot write '%s'", st->paths[0]);
        count_destroy(NULL, st);
        return rc;
    }
    tsr__builtin_declare(init, "events", TSR_KIND_NAV, TSR_I32, 0, 0, NULL);
    init->input_dtype = TSR_F32;
    init->method = TSR_METHOD_FRAME;
    init->state = st;
    return 0;
}

/* ---- tasks ------------------------------------------------------------- */

static void count_task_stop(const tsr_udf_call_t *c, void *task_state)
{
    count_state_t *st = c->state;
    count_task_t *ts = task_state;
    if (!ts)
        return;
    if (!ts->pushed) {
        /* the task did not finish: the dataset will be incomplete */
        tsr__mutex_lock(&st->sink.lock);
        if (!st->sink.failed)
            snprintf(st->sink.err, sizeof st->sink.err, "count: a task did not finish");
        st->sink.failed = true;
        tsr__mutex_unlock(&st->sink.lock);
    }
    tsr_free(st->ctx, ts->counts);
    tsr_free(st->ctx, ts->idx);
    tsr_free(st->ctx, ts);
}

static int count_task_start(const tsr_udf_call_t *c, void **task_state)
{
    count_state_t *st = c->state;
    const tsr_udf_meta_t *m = c->meta;
    count_task_t *ts = tsr_alloc(st->ctx, sizeof *ts);
    if (!ts)
        return tsr_udf_error(c, TSR_ENOMEM, "count: out of memory");
    memset(ts, 0, sizeof *ts);
    /* the selected frames of the partition lie in [first, last] */
    int64_t first = m->part_start, last = m->part_end - 1;
    while (m->roi && first < last && !m->roi[first])
        first++;
    while (m->roi && last > first && !m->roi[last])
        last--;
    ts->first = first;
    ts->span = last - first + 1;
    ts->rows = m->rows;
    ts->counts = tsr_alloc(st->ctx, (size_t)ts->span * sizeof *ts->counts);
    if (!ts->counts) {
        tsr_free(st->ctx, ts);
        return tsr_udf_error(c, TSR_ENOMEM, "count: out of memory");
    }
    memset(ts->counts, 0, (size_t)ts->span * sizeof *ts->counts);
    *task_state = ts;
    return 0;
}

/* ---- events ------------------------------------------------------------ */

static int count_add(const count_state_t *st, count_task_t *ts, int32_t p)
{
    if (ts->n_idx == ts->cap) {
        int64_t cap = ts->cap ? 2 * ts->cap : 4096;
        int32_t *n = tsr_alloc(st->ctx, (size_t)cap * sizeof *n);
        if (!n)
            return TSR_ENOMEM;
        if (ts->n_idx)
            memcpy(n, ts->idx, (size_t)ts->n_idx * sizeof *n);
        tsr_free(st->ctx, ts->idx);
        ts->idx = n;
        ts->cap = cap;
    }
    ts->idx[ts->n_idx++] = p;
    return 0;
}

/* Events of one frame of type T, appended to ts; returns how many, or a
 * negative code. */
#define COUNT_FRAME(NAME, T)                                                                \
    static int64_t NAME(const count_state_t *st, count_task_t *ts, const void *xv)          \
    {                                                                                       \
        const T *x = (const T *)xv;                                                         \
        const double thr = st->threshold, xr = st->xray;                                    \
        const int64_t h = st->h, w = st->w;                                                 \
        int64_t n = 0;                                                                      \
        for (int64_t yy = 0; yy < h; yy++)                                                  \
            for (int64_t xx = 0; xx < w; xx++) {                                            \
                const double v = (double)x[yy * w + xx];                                    \
                if (!(v > thr && v <= xr))                                                  \
                    continue;                                                               \
                bool peak = true;                                                           \
                for (int dy = -1; dy <= 1 && peak; dy++)                                    \
                    for (int dx = -1; dx <= 1 && peak; dx++) {                              \
                        const int64_t qy = yy + dy, qx = xx + dx;                           \
                        if ((dy == 0 && dx == 0) || qy < 0 || qy >= h || qx < 0 || qx >= w) \
                            continue;                                                       \
                        double q = (double)x[qy * w + qx];                                  \
                        if (!(q > thr && q <= xr))                                          \
                            q = 0;                                                          \
                        /* earlier in raster order: strictly greater */                     \
                        peak = (dy < 0 || (dy == 0 && dx < 0)) ? v > q : v >= q;            \
                    }                                                                       \
                if (!peak)                                                                  \
                    continue;                                                               \
                if (count_add(st, ts, (int32_t)(yy * w + xx)) < 0)                          \
                    return TSR_ENOMEM;                                                      \
                n++;                                                                        \
            }                                                                               \
        return n;                                                                           \
    }
COUNT_FRAME(count_f32, float)
COUNT_FRAME(count_f64, double)

static int count_process_frame(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    count_state_t *st = c->state;
    count_task_t *ts = c->task_state;
    int64_t n;
    if (t->dtype == TSR_F32)
        n = count_f32(st, ts, t->data);
    else if (t->dtype == TSR_F64)
        n = count_f64(st, ts, t->data);
    else
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "count: unexpected %s frames",
                             tsr_dtype_name(t->dtype));
    if (n < 0)
        return tsr_udf_error(c, (int)n, "count: out of memory");
    const int64_t i = t->nav_index - ts->first;
    if (i < 0 || i >= ts->span)
        return tsr_udf_error(c, TSR_EINVAL, "count: frame %lld outside its partition",
                             (long long)t->nav_index);
    ts->counts[i] = n;
    ((int32_t *)c->bufs[BUF_EVENTS].data)[0] = (int32_t)n;
    if (++ts->done < ts->rows)
        return 0;
    /* the partition's last frame: hand its events to the writer */
    count_seg_t *g = tsr_alloc(st->ctx, sizeof *g);
    if (!g)
        return tsr_udf_error(c, TSR_ENOMEM, "count: out of memory");
    *g = (count_seg_t){NULL, ts->first, ts->span, ts->counts, ts->idx, ts->n_idx};
    ts->counts = NULL;
    ts->idx = NULL;
    ts->n_idx = ts->cap = 0;
    ts->pushed = true;
    char err[TSR__ERRMSG_MAX];
    int rc = sink_push(st, c->meta, g, err, sizeof err);
    return rc < 0 ? tsr_udf_error(c, rc, "%s", err) : 0;
}

/* A ROI that selects no frame starts no task: the dataset of empty rows is
 * written here (finalize also runs for snapshots; this only acts once). */
static int count_finalize(const tsr_udf_call_t *c)
{
    count_state_t *st = c->state;
    if (c->meta->roi_count != 0)
        return 0;
    count_sink_t *s = &st->sink;
    tsr__mutex_lock(&s->lock);
    if (!s->done && !s->failed) {
        sink_skip(st, st->nav);
        sink_close_files(s, st);
        if (!s->failed)
            sink_write_toml(st, c->meta);
        s->done = true;
    }
    int rc = s->failed ? TSR_EIO : 0;
    char err[TSR__ERRMSG_MAX];
    snprintf(err, sizeof err, "%s", s->err);
    tsr__mutex_unlock(&s->lock);
    return rc < 0 ? tsr_udf_error(c, rc, "%s", err) : 0;
}

const tsr_udf_def_t tsr__udf_count = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "count",
    .description = "Electron counting: local maxima above threshold (and not above xray) become "
                   "events, written as a LiberTEM raw_csr dataset (output=PATH.toml). Result "
                   "`events` (nav shape), int32.",
    .params = count_params,
    .n_params = sizeof count_params / sizeof count_params[0],
    .init = count_init,
    .destroy = count_destroy,
    .task_start = count_task_start,
    .task_stop = count_task_stop,
    .process_frame = count_process_frame,
    .finalize = count_finalize,
};
