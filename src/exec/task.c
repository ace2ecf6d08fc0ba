/*
 * task.c — task descriptions: build one from a run's partition, encode it to
 * bytes and back, and execute one in this process.
 *
 * Wire format (little-endian, versioned by the magic): "TSRTASK1", then
 * strings as u32 length + bytes, parameter lists as u32 count + key/value
 * strings, integers as i64, optional arrays as a u8 presence flag + raw
 * bytes of a length implied by the sizes before them.  Decoding checks every
 * length against the bytes left, so a malformed message is TSR_ECORRUPT,
 * never an over-read.
 */
#include "exec/task.h"
#include "exec/run.h"

static const char magic[8] = {'T', 'S', 'R', 'T', 'A', 'S', 'K', '1'};

void tsr__task_free(tsr_ctx_t *ctx, tsr__task_t *t)
{
    if (!t)
        return;
    tsr__free(ctx, t->format);
    tsr__free(ctx, t->path);
    tsr_params_free(t->ds_params);
    for (int u = 0; u < t->n_udfs; u++) {
        if (t->udf_names)
            tsr__free(ctx, t->udf_names[u]);
        if (t->udf_params)
            tsr_params_free(t->udf_params[u]);
    }
    tsr__free(ctx, t->udf_names);
    tsr__free(ctx, t->udf_params);
    tsr__free(ctx, t->roi);
    tsr__free(ctx, t->dark);
    tsr__free(ctx, t->gain);
    tsr__free(ctx, t->excluded);
    tsr__free(ctx, t);
}

static void *dup_bytes(tsr_ctx_t *ctx, const void *src, size_t n)
{
    void *p = tsr__malloc(ctx, n ? n : 1);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

static int alloc_udfs(tsr_ctx_t *ctx, tsr__task_t *t, int n)
{
    t->udf_names = tsr__calloc(ctx, (size_t)(n ? n : 1), sizeof *t->udf_names);
    t->udf_params = tsr__calloc(ctx, (size_t)(n ? n : 1), sizeof *t->udf_params);
    t->n_udfs = n;
    return t->udf_names && t->udf_params ? 0 : TSR_ENOMEM;
}

int64_t tsr__run_partition_count(const tsr_run_t *run)
{
    return run->n_parts;
}

int tsr__task_describe(tsr_run_t *run, int64_t p, tsr__task_t **out)
{
    tsr_ctx_t *ctx = run->ctx;
    const tsr_dataset_t *ds = run->ds;
    int rc = 0;
    if (p < 0 || p >= run->n_parts)
        return tsr__ctx_seterr(ctx, TSR_ERANGE, "no partition %lld", (long long)p);
    if (strcmp(ds->fmt->name, "memory") == 0)
        return tsr__ctx_seterr(ctx, TSR_EUNSUPPORTED,
                               "a memory dataset cannot be described for another process");
    for (int u = 0; u < run->n_udfs; u++)
        if (tsr_udf_def_find(run->insts[u].def->name) != run->insts[u].def)
            return tsr__ctx_seterr(ctx, TSR_EUNSUPPORTED,
                                   "UDF %s is defined by the program and cannot be described for "
                                   "another process",
                                   run->insts[u].def->name);
    tsr__task_t *t = tsr__calloc(ctx, 1, sizeof *t);
    TSR_CHECK(ctx, t, TSR_ENOMEM, "out of memory");
    const tsr__part_t *part = &run->parts[p];
    t->nav_size = run->nav_size;
    t->sig_size = run->sig_size;
    t->part_start = part->nav_start;
    t->part_end = part->nav_end;
    t->format = tsr__strdup(ctx, ds->fmt->name);
    t->path = tsr__strdup(ctx, ds->path);
    TSR_CHECK(ctx, t->format && t->path, TSR_ENOMEM, "out of memory");
    TSR_TRY(tsr__params_copy(ctx, ds->params, &t->ds_params));
    TSR_CHECK(ctx, alloc_udfs(ctx, t, run->n_udfs) == 0, TSR_ENOMEM, "out of memory");
    for (int u = 0; u < run->n_udfs; u++) {
        TSR_CHECK(ctx, (t->udf_names[u] = tsr__strdup(ctx, run->insts[u].def->name)), TSR_ENOMEM,
                  "out of memory");
        TSR_TRY(tsr__params_copy(ctx, run->insts[u].udf->params, &t->udf_params[u]));
    }
    size_t np = (size_t)(part->nav_end - part->nav_start), ns = (size_t)run->sig_size;
    if (run->roi)
        TSR_CHECK(ctx, (t->roi = dup_bytes(ctx, run->roi + part->nav_start, np)), TSR_ENOMEM,
                  "out of memory");
    if (run->corr.dark)
        TSR_CHECK(ctx, (t->dark = dup_bytes(ctx, run->corr.dark, ns * sizeof(float))), TSR_ENOMEM,
                  "out of memory");
    if (run->corr.gain)
        TSR_CHECK(ctx, (t->gain = dup_bytes(ctx, run->corr.gain, ns * sizeof(float))), TSR_ENOMEM,
                  "out of memory");
    if (run->corr.excluded)
        TSR_CHECK(ctx, (t->excluded = dup_bytes(ctx, run->corr.excluded, ns)), TSR_ENOMEM,
                  "out of memory");
    *out = t;
    return 0;
fail:
    tsr__task_free(ctx, t);
    return rc;
}

/* ---- encoding ---------------------------------------------------------- */

typedef struct {
    tsr_ctx_t *ctx;
    uint8_t *p;
    size_t n, cap;
    bool oom;
} wbuf_t;

static void put(wbuf_t *w, const void *src, size_t n)
{
    if (w->oom)
        return;
    if (w->n + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->n + n)
            cap *= 2;
        uint8_t *p = tsr__realloc(w->ctx, w->p, cap);
        if (!p) {
            w->oom = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    memcpy(w->p + w->n, src, n);
    w->n += n;
}

static void put_u32(wbuf_t *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}

static void put_i64(wbuf_t *w, int64_t v)
{
    uint64_t u = (uint64_t)v;
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    put(w, b, 8);
}

static void put_str(wbuf_t *w, const char *s)
{
    size_t n = strlen(s);
    put_u32(w, (uint32_t)n);
    put(w, s, n);
}

static void put_params(wbuf_t *w, const tsr_params_t *p)
{
    size_t n = tsr_params_count(p);
    put_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        const char *k, *v;
        tsr_params_at(p, i, &k, &v);
        put_str(w, k);
        put_str(w, v);
    }
}

static void put_opt(wbuf_t *w, const void *a, size_t n)
{
    uint8_t has = a != NULL;
    put(w, &has, 1);
    if (a)
        put(w, a, n);
}

int tsr__task_encode(tsr_ctx_t *ctx, const tsr__task_t *t, uint8_t **buf, size_t *len)
{
    wbuf_t w = {ctx, NULL, 0, 0, false};
    put(&w, magic, sizeof magic);
    put_str(&w, t->format);
    put_str(&w, t->path);
    put_params(&w, t->ds_params);
    put_i64(&w, t->nav_size);
    put_i64(&w, t->sig_size);
    put_i64(&w, t->part_start);
    put_i64(&w, t->part_end);
    put_u32(&w, (uint32_t)t->n_udfs);
    for (int u = 0; u < t->n_udfs; u++) {
        put_str(&w, t->udf_names[u]);
        put_params(&w, t->udf_params[u]);
    }
    size_t ns = (size_t)t->sig_size;
    put_opt(&w, t->roi, (size_t)(t->part_end - t->part_start));
    put_opt(&w, t->dark, ns * sizeof(float));
    put_opt(&w, t->gain, ns * sizeof(float));
    put_opt(&w, t->excluded, ns);
    if (w.oom) {
        tsr__free(ctx, w.p);
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory encoding a task");
    }
    *buf = w.p;
    *len = w.n;
    return 0;
}

/* ---- decoding ---------------------------------------------------------- */

typedef struct {
    const uint8_t *p;
    size_t left;
    bool bad;
} rbuf_t;

static const uint8_t *take(rbuf_t *r, size_t n)
{
    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

static uint32_t get_u32(rbuf_t *r)
{
    const uint8_t *b = take(r, 4);
    return b ? (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24
             : 0;
}

static int64_t get_i64(rbuf_t *r)
{
    const uint8_t *b = take(r, 8);
    uint64_t u = 0;
    for (int i = 0; b && i < 8; i++)
        u |= (uint64_t)b[i] << (8 * i);
    return (int64_t)u;
}

static char *get_str(tsr_ctx_t *ctx, rbuf_t *r)
{
    uint32_t n = get_u32(r);
    const uint8_t *s = take(r, n);
    if (!s)
        return NULL;
    if (memchr(s, 0, n)) { /* C strings cannot hold NUL */
        r->bad = true;
        return NULL;
    }
    char *d = tsr__malloc(ctx, (size_t)n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

static int get_params(tsr_ctx_t *ctx, rbuf_t *r, tsr_params_t **out)
{
    int rc = tsr_params_new(ctx, out);
    uint32_t n = get_u32(r);
    for (uint32_t i = 0; rc == 0 && i < n && !r->bad; i++) {
        char *k = get_str(ctx, r), *v = get_str(ctx, r);
        if (k && v)
            rc = tsr_params_add(*out, k, v);
        else if (!r->bad)
            rc = TSR_ENOMEM;
        tsr__free(ctx, k);
        tsr__free(ctx, v);
    }
    return rc;
}

static int get_opt(tsr_ctx_t *ctx, rbuf_t *r, size_t n, void **out)
{
    const uint8_t *has = take(r, 1);
    if (has && *has > 1)
        r->bad = true; /* a flag is 0 or 1: anything else is not ours */
    if (!has || *has != 1)
        return 0;
    const uint8_t *p = take(r, n);
    if (!p)
        return 0;
    *out = dup_bytes(ctx, p, n);
    return *out ? 0 : TSR_ENOMEM;
}

int tsr__task_decode(tsr_ctx_t *ctx, const uint8_t *buf, size_t len, tsr__task_t **out)
{
    rbuf_t r = {buf, len, false};
    int rc = 0;
    const uint8_t *m = take(&r, sizeof magic);
    if (!m || memcmp(m, magic, sizeof magic) != 0)
        return tsr__ctx_seterr(ctx, TSR_ECORRUPT, "task description: bad magic");
    tsr__task_t *t = tsr__calloc(ctx, 1, sizeof *t);
    TSR_CHECK(ctx, t, TSR_ENOMEM, "out of memory");
    t->format = get_str(ctx, &r);
    t->path = get_str(ctx, &r);
    TSR_TRY(get_params(ctx, &r, &t->ds_params));
    t->nav_size = get_i64(&r);
    t->sig_size = get_i64(&r);
    t->part_start = get_i64(&r);
    t->part_end = get_i64(&r);
    TSR_CHECK(ctx,
              !r.bad && t->format && t->path && t->nav_size > 0 && t->sig_size > 0 &&
                  t->part_start >= 0 && t->part_start <= t->part_end &&
                  t->part_end <= t->nav_size && t->sig_size <= ((int64_t)1 << 40),
              TSR_ECORRUPT, "task description: bad header fields");
    uint32_t n = get_u32(&r);
    TSR_CHECK(ctx, !r.bad && n >= 1 && n <= 64, TSR_ECORRUPT, "task description: bad UDF count %u",
              n);
    TSR_CHECK(ctx, alloc_udfs(ctx, t, (int)n) == 0, TSR_ENOMEM, "out of memory");
    for (uint32_t u = 0; u < n; u++) {
        t->udf_names[u] = get_str(ctx, &r);
        TSR_TRY(get_params(ctx, &r, &t->udf_params[u]));
        TSR_CHECK(ctx, !r.bad && t->udf_names[u], TSR_ECORRUPT, "task description: bad UDF");
    }
    size_t ns = (size_t)t->sig_size;
    TSR_TRY(get_opt(ctx, &r, (size_t)(t->part_end - t->part_start), (void **)&t->roi));
    TSR_TRY(get_opt(ctx, &r, ns * sizeof(float), (void **)&t->dark));
    TSR_TRY(get_opt(ctx, &r, ns * sizeof(float), (void **)&t->gain));
    TSR_TRY(get_opt(ctx, &r, ns, (void **)&t->excluded));
    TSR_CHECK(ctx, !r.bad && r.left == 0, TSR_ECORRUPT,
              "task description: truncated or trailing bytes");
    *out = t;
    return 0;
fail:
    if (rc == TSR_ENOMEM || rc == 0)
        tsr__ctx_seterr(ctx, rc = TSR_ENOMEM, "out of memory decoding a task");
    else if (rc != TSR_ECORRUPT)
        rc = tsr__ctx_seterr(ctx, TSR_ECORRUPT, "task description: bad parameter list");
    tsr__task_free(ctx, t);
    return rc;
}

/* ---- execution --------------------------------------------------------- */

int tsr__task_execute(tsr_ctx_t *ctx, const tsr__task_t *t, tsr_results_t **out)
{
    tsr_dataset_t *ds = NULL;
    tsr_udf_t **udfs = NULL;
    uint8_t *roi = NULL;
    tsr_run_t *run = NULL;
    int rc = 0;
    int64_t saved_exec = ctx->executor, saved_parts = ctx->partitions;
    TSR_TRY(tsr_dataset_open(ctx, t->format, t->path, t->ds_params, &ds));
    tsr_shape_t nav, sig;
    tsr_dataset_nav_shape(ds, &nav);
    tsr_dataset_sig_shape(ds, &sig);
    TSR_CHECK(ctx, tsr_shape_size(&nav) == t->nav_size && tsr_shape_size(&sig) == t->sig_size,
              TSR_ECORRUPT, "task: dataset %s does not have the described shape", t->path);
    udfs = tsr__calloc(ctx, (size_t)t->n_udfs, sizeof *udfs);
    roi = tsr__calloc(ctx, (size_t)t->nav_size, 1);
    TSR_CHECK(ctx, udfs && roi, TSR_ENOMEM, "out of memory");
    for (int u = 0; u < t->n_udfs; u++)
        TSR_TRY(tsr_udf_new(ctx, t->udf_names[u], t->udf_params[u], &udfs[u]));
    for (int64_t i = t->part_start; i < t->part_end; i++)
        roi[i] = t->roi ? t->roi[i - t->part_start] : 1;
    /* the task carries the corrections in effect: never add the dataset's */
    tsr_run_opts_t opts = {
        .roi = roi, .corrections = {t->dark, t->gain, t->excluded}, .no_dataset_corrections = true};
    ctx->executor = TSR_EXEC_INLINE;
    ctx->partitions = 1;
    rc = tsr_run_start(ctx, ds, udfs, (size_t)t->n_udfs, &opts, &run);
    ctx->executor = saved_exec;
    ctx->partitions = saved_parts;
    if (rc)
        goto fail;
    if ((rc = tsr_run_wait(run))) {
        tsr__ctx_seterr(ctx, rc, "%s", tsr_run_errmsg(run));
        goto fail;
    }
    TSR_TRY(tsr_run_snapshot(run, out));
fail:
    tsr_run_free(run);
    for (int u = 0; udfs && u < t->n_udfs; u++)
        tsr_udf_free(udfs[u]);
    tsr__free(ctx, udfs);
    tsr__free(ctx, roi);
    tsr_dataset_close(ds);
    return rc;
}
