/*
 * test_run.c — runs through the public API (tessera.h) on memory datasets,
 * with UDFs defined here in C through tsr_udf_def_t.
 *
 * The UDFs check, inside their callbacks, what the UDF interface promises
 * (tile dtype, views sliced per tile, rows in ROI-compressed order, whole
 * frames for process_frame / process_partition, tile data equal to the
 * dataset's pixels) and count what they see through user_data with
 * atomics; cmocka's asserts are not used on worker threads, failures are
 * recorded in the probe and asserted on the main thread.
 *
 * Every result is compared with a reference computed here by plain loops
 * over the same pixels (maximum, sums, histogram, corrections from the
 * definition in tessera.h), for many executor, partition, tiling, ROI and
 * shape configurations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tessera.h"

#define ASSERT_DBL_EQ(a, b)                                       \
    do {                                                          \
        double a_ = (a), b_ = (b);                                \
        if (!(a_ == b_))                                          \
            fail_msg("%s == %s: %.17g != %.17g", #a, #b, a_, b_); \
    } while (0)

#define ASSERT_CLOSE(a, b, rel)                                         \
    do {                                                                \
        double a_ = (a), b_ = (b);                                      \
        if (!(fabs(a_ - b_) <= (rel)*fmax(fabs(a_), fabs(b_)) + 1e-30)) \
            fail_msg("%s ~ %s: %.17g vs %.17g", #a, #b, a_, b_);        \
    } while (0)

#define ASSERT_CONTAINS(hay, needle)                                        \
    do {                                                                    \
        const char *h_ = (hay), *n_ = (needle);                             \
        if (!h_ || !strstr(h_, n_))                                         \
            fail_msg("'%s' does not contain '%s'", h_ ? h_ : "(null)", n_); \
    } while (0)

enum { HIST_BINS = 16, MAX_PARTS = 256 };

/* The pixel value of frame i (flat nav), pixel p (flat sig): 0..999. */
static uint16_t pix(int64_t i, int64_t p)
{
    return (uint16_t)((i * 37 + p * 11 + (i * p) % 7) % 1000);
}

/* ---- the probe: what the UDFs saw --------------------------------------- */

typedef struct probe {
    /* set up by the test */
    const uint16_t *src; /* the dataset, u16 */
    int64_t nav_size, sig_size, row_len;
    const uint8_t *sel;     /* effective selection (nav-sized), NULL = all */
    const int64_t *rank;    /* nav → compressed row (-1 unselected) */
    tsr_dtype_t want_dtype; /* expected tile dtype; TSR_DTYPE_NATIVE = don't check */
    tsr_dtype_t ask_dtype;  /* what init asks for */
    int64_t fail_at;        /* fail in process_tile on this frame; -1 = never */
    int fail_code;
    int fail_where; /* 0 tile, 1 task_start, 2 merge, 3 finalize, 4 init */
    int sleep_us;
    /* a tile holding this frame (-2: every tile) waits until gate_open */
    int64_t gate_frame;
    atomic_int gate_open;
    int64_t pref_depth; /* tmax asks for this tile depth */
    const int64_t *needed;
    int64_t n_needed;
    /* corrections applied (for data checks); NULL = raw values */
    const float *corrected;
    const double *corrected64;
    /* seen */
    atomic_long calls, tasks, errors, pixels, destroys, finalizes;
    atomic_long min_len, max_len, max_depth;
    atomic_int *cover; /* nav_size × sig_size */
    atomic_int msg_set;
    char msg[256];
    atomic_long nparts;
    int64_t parts[MAX_PARTS][2];
} probe_t;

static void probe_init(probe_t *pr, const uint16_t *src, int64_t nav_size, int64_t sig_size,
                       int64_t row_len, const uint8_t *sel, const int64_t *rank)
{
    memset(pr, 0, sizeof *pr);
    pr->src = src;
    pr->nav_size = nav_size;
    pr->sig_size = sig_size;
    pr->row_len = row_len;
    pr->sel = sel;
    pr->rank = rank;
    pr->want_dtype = TSR_DTYPE_NATIVE;
    pr->ask_dtype = TSR_F32;
    pr->fail_at = -1;
    pr->gate_frame = -1;
    atomic_init(&pr->min_len, INT64_MAX);
    pr->cover = calloc((size_t)(nav_size * sig_size), sizeof *pr->cover);
}

static void probe_free(probe_t *pr)
{
    free(pr->cover);
    pr->cover = NULL;
}

static void perr(probe_t *pr, const char *fmt, ...)
{
    atomic_fetch_add(&pr->errors, 1);
    int expected = 0;
    if (atomic_compare_exchange_strong(&pr->msg_set, &expected, 1)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(pr->msg, sizeof pr->msg, fmt, ap);
        va_end(ap);
    }
}

static void amin(atomic_long *a, long v)
{
    long cur = atomic_load(a);
    while (v < cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}
static void amax(atomic_long *a, long v)
{
    long cur = atomic_load(a);
    while (v > cur && !atomic_compare_exchange_weak(a, &cur, v))
        ;
}

static void check_probe(probe_t *pr)
{
    if (atomic_load(&pr->errors))
        fail_msg("%ld error(s) inside the UDF callbacks; first: %s", atomic_load(&pr->errors),
                 pr->msg);
}

/* The value the UDF should see at frame i, pixel p, as a double. */
static double seen_value(const probe_t *pr, int64_t i, int64_t p, tsr_dtype_t dt)
{
    if (dt == TSR_F64 && pr->corrected64)
        return pr->corrected64[i * pr->sig_size + p];
    if (pr->corrected)
        return pr->corrected[i * pr->sig_size + p];
    return pr->src[i * pr->sig_size + p];
}

static double tile_value(const tsr_tile_t *t, int64_t k)
{
    switch (t->dtype) {
    case TSR_F32: return ((const float *)t->data)[k];
    case TSR_F64: return ((const double *)t->data)[k];
    case TSR_U16: return ((const uint16_t *)t->data)[k];
    case TSR_I32: return ((const int32_t *)t->data)[k];
    default: return NAN;
    }
}

/* Checks common to every tile: dtype, range, selection, order, data;
 * marks coverage. */
static void check_tile(probe_t *pr, const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    atomic_fetch_add(&pr->calls, 1);
    atomic_fetch_add(&pr->pixels, (long)(t->depth * t->sig_len));
    amin(&pr->min_len, (long)t->sig_len);
    amax(&pr->max_len, (long)t->sig_len);
    amax(&pr->max_depth, (long)t->depth);
    if (pr->sleep_us) {
        struct timespec ts = {0, (long)pr->sleep_us * 1000};
        nanosleep(&ts, NULL);
    }
    if (pr->gate_frame == -2 ||
        (pr->gate_frame >= t->nav_index && pr->gate_frame < t->nav_index + t->depth)) {
        /* hold this tile until the test opens the gate (at most 20 s) */
        for (int k = 0; k < 100000 && !atomic_load(&pr->gate_open); k++) {
            struct timespec ts = {0, 200 * 1000};
            nanosleep(&ts, NULL);
        }
        if (!atomic_load(&pr->gate_open))
            perr(pr, "the gate on frame %lld never opened", (long long)pr->gate_frame);
    }
    if (pr->want_dtype != TSR_DTYPE_NATIVE && t->dtype != pr->want_dtype)
        perr(pr, "tile dtype %d, expected %d", (int)t->dtype, (int)pr->want_dtype);
    if (c->meta->input_dtype != t->dtype)
        perr(pr, "meta input_dtype %d != tile dtype %d", (int)c->meta->input_dtype, (int)t->dtype);
    if (t->depth < 1 || t->sig_len < 1 || t->sig_start < 0 ||
        t->sig_start + t->sig_len > pr->sig_size)
        perr(pr, "bad tile geometry depth %lld sig [%lld, +%lld)", (long long)t->depth,
             (long long)t->sig_start, (long long)t->sig_len);
    if (t->sig_start % pr->row_len || t->sig_len % pr->row_len)
        perr(pr, "sig slice [%lld, +%lld) is not whole rows of %lld", (long long)t->sig_start,
             (long long)t->sig_len, (long long)pr->row_len);
    if (t->nav_index < c->meta->part_start || t->nav_index + t->depth > c->meta->part_end)
        perr(pr, "tile frames [%lld, +%lld) outside the partition [%lld, %lld)",
             (long long)t->nav_index, (long long)t->depth, (long long)c->meta->part_start,
             (long long)c->meta->part_end);
    for (int64_t r = 0; r < t->depth; r++) {
        int64_t f = t->nav_index + r;
        if (f < 0 || f >= pr->nav_size) {
            perr(pr, "frame %lld out of range", (long long)f);
            return;
        }
        if (pr->sel && !pr->sel[f])
            perr(pr, "frame %lld is not selected but was passed", (long long)f);
        if (pr->rank && pr->rank[f] != t->row + r)
            perr(pr, "frame %lld: tile row %lld + %lld, expected compressed row %lld", (long long)f,
                 (long long)t->row, (long long)r, (long long)pr->rank[f]);
        for (int64_t p = 0; p < t->sig_len; p++) {
            int64_t q = t->sig_start + p;
            double got = tile_value(t, r * t->sig_len + p);
            double want = seen_value(pr, f, q, t->dtype);
            bool ok = t->dtype == TSR_F32 && (pr->corrected)
                          ? fabs(got - want) <= 1e-5 * fmax(1.0, fabs(want))
                          : got == want;
            if (!ok)
                perr(pr, "frame %lld pixel %lld: tile has %.9g, dataset %.9g", (long long)f,
                     (long long)q, got, want);
            if (pr->cover)
                atomic_fetch_add(&pr->cover[f * pr->sig_size + q], 1);
        }
    }
}

static int fill_needed(const probe_t *pr, tsr_udf_init_t *init)
{
    if (!pr->needed)
        return 0;
    int64_t *list = tsr_alloc(init->ctx, (size_t)pr->n_needed * sizeof *list);
    if (!list) {
        snprintf(init->errmsg, sizeof init->errmsg, "out of memory");
        return TSR_ENOMEM;
    }
    memcpy(list, pr->needed, (size_t)pr->n_needed * sizeof *list);
    init->frames_needed = list;
    init->n_frames_needed = pr->n_needed;
    return 0;
}

static void declare(tsr_udf_init_t *init, const char *name, tsr_buf_kind_t kind, tsr_dtype_t dt,
                    unsigned flags, int extra_ndim, const int64_t *extra)
{
    tsr_buffer_decl_t *b = &init->buffers[init->n_buffers++];
    memset(b, 0, sizeof *b);
    snprintf(b->name, sizeof b->name, "%s", name);
    b->kind = kind;
    b->dtype = dt;
    b->flags = flags;
    b->extra_ndim = extra_ndim;
    for (int i = 0; i < extra_ndim; i++)
        b->extra_shape[i] = extra[i];
}

static int common_task_start(const tsr_udf_call_t *c, void **task_state)
{
    probe_t *pr = c->user_data;
    if (pr->fail_where == 1 && pr->fail_at >= c->meta->part_start &&
        pr->fail_at < c->meta->part_end)
        return tsr_udf_error(c, pr->fail_code, "task start refused partition [%lld, %lld)",
                             (long long)c->meta->part_start, (long long)c->meta->part_end);
    long k = atomic_fetch_add(&pr->nparts, 1);
    atomic_fetch_add(&pr->tasks, 1);
    if (k < MAX_PARTS) {
        pr->parts[k][0] = c->meta->part_start;
        pr->parts[k][1] = c->meta->part_end;
    }
    if (c->meta->rows < 1)
        perr(pr, "task with %lld rows", (long long)c->meta->rows);
    *task_state = pr;
    return 0;
}

static void common_task_stop(const tsr_udf_call_t *c, void *task_state)
{
    probe_t *pr = c->user_data;
    if (task_state != pr)
        perr(pr, "task_stop got task state %p, expected %p", task_state, (void *)pr);
}

static void common_destroy(void *user_data, void *state)
{
    probe_t *pr = user_data;
    atomic_fetch_add(&pr->destroys, 1);
    free(state);
}

/* ---- UDF A: per-frame maximum and count > 500 (NAV, process_tile) ------- */

static int tmax_init(tsr_udf_init_t *init)
{
    probe_t *pr = init->user_data;
    if (pr->fail_where == 4) {
        snprintf(init->errmsg, sizeof init->errmsg, "tmax: parameter 'level' is out of range");
        init->state = malloc(16); /* must be given to destroy */
        return pr->fail_code;
    }
    declare(init, "max", TSR_KIND_NAV, TSR_F32, 0, 0, NULL);
    declare(init, "count", TSR_KIND_NAV, TSR_I32, 0, 0, NULL);
    init->input_dtype = pr->ask_dtype;
    init->method = TSR_METHOD_TILE;
    init->tile_depth = pr->pref_depth;
    init->state = malloc(16);
    return fill_needed(pr, init);
}

static int tmax_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    probe_t *pr = c->user_data;
    check_tile(pr, c, t);
    if (c->task_state != pr)
        perr(pr, "process_tile: task_state %p", c->task_state);
    if (c->n_bufs != 2 || c->bufs[0].rows != t->depth || c->bufs[0].row_elems != 1 ||
        c->bufs[0].dtype != TSR_F32 || c->bufs[1].rows != t->depth || c->bufs[1].dtype != TSR_I32)
        perr(pr, "NAV views not sliced to the tile: rows %lld/%lld elems %lld for depth %lld",
             (long long)c->bufs[0].rows, (long long)c->bufs[1].rows,
             (long long)c->bufs[0].row_elems, (long long)t->depth);
    float *mx = c->bufs[0].data;
    int32_t *cnt = c->bufs[1].data;
    for (int64_t r = 0; r < t->depth; r++) {
        if (pr->fail_where == 0 && t->nav_index + r == pr->fail_at)
            return tsr_udf_error(c, pr->fail_code, "boom at frame %lld", (long long)pr->fail_at);
        for (int64_t p = 0; p < t->sig_len; p++) {
            double v = tile_value(t, r * t->sig_len + p);
            if (v > mx[r])
                mx[r] = (float)v;
            cnt[r] += v > 500;
        }
    }
    return 0;
}

static const tsr_udf_def_t tmax_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "tmax",
    .description = "per-frame maximum (test)",
    .init = tmax_init,
    .destroy = common_destroy,
    .task_start = common_task_start,
    .task_stop = common_task_stop,
    .process_tile = tmax_tile,
};

/* ---- UDF B: SIG sum with a custom merge --------------------------------- */

static int ssum_init(tsr_udf_init_t *init)
{
    probe_t *pr = init->user_data;
    declare(init, "sum", TSR_KIND_SIG, TSR_F64, 0, 0, NULL);
    init->input_dtype = pr->ask_dtype;
    init->method = TSR_METHOD_TILE;
    return fill_needed(pr, init);
}

static int ssum_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    probe_t *pr = c->user_data;
    check_tile(pr, c, t);
    if (c->bufs[0].rows != t->sig_len || c->bufs[0].row_elems != 1)
        perr(pr, "SIG view has %lld rows for a sig slice of %lld", (long long)c->bufs[0].rows,
             (long long)t->sig_len);
    double *s = c->bufs[0].data;
    for (int64_t r = 0; r < t->depth; r++)
        for (int64_t p = 0; p < t->sig_len; p++)
            s[p] += tile_value(t, r * t->sig_len + p);
    return 0;
}

static int ssum_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    probe_t *pr = c->user_data;
    if (pr->fail_where == 2)
        return tsr_udf_error(c, pr->fail_code, "merge refused");
    if (c->bufs[0].rows != pr->sig_size || src[0].rows != pr->sig_size)
        perr(pr, "merge: SIG views of %lld / %lld rows", (long long)c->bufs[0].rows,
             (long long)src[0].rows);
    double *d = c->bufs[0].data;
    const double *s = src[0].data;
    for (int64_t p = 0; p < c->bufs[0].rows; p++)
        d[p] += s[p];
    return 0;
}

static int ssum_finalize(const tsr_udf_call_t *c)
{
    probe_t *pr = c->user_data;
    atomic_fetch_add(&pr->finalizes, 1);
    if (pr->fail_where == 3)
        return tsr_udf_error(c, pr->fail_code, "finalize refused");
    return 0;
}

static const tsr_udf_def_t ssum_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "ssum",
    .init = ssum_init,
    .process_tile = ssum_tile,
    .merge = ssum_merge,
    .finalize = ssum_finalize,
};

/* ---- UDF B2: SIG buffer with an extra dimension (Σx, Σx² per pixel) ------ */

static int sig2_init(tsr_udf_init_t *init)
{
    const int64_t two = 2;
    declare(init, "moments", TSR_KIND_SIG, TSR_F64, 0, 1, &two);
    init->input_dtype = TSR_F64;
    init->method = TSR_METHOD_TILE;
    return 0;
}

static int sig2_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    probe_t *pr = c->user_data;
    check_tile(pr, c, t);
    if (c->bufs[0].rows != t->sig_len || c->bufs[0].row_elems != 2)
        perr(pr, "SIG view with extra (2,): %lld × %lld for a slice of %lld",
             (long long)c->bufs[0].rows, (long long)c->bufs[0].row_elems, (long long)t->sig_len);
    double *m = c->bufs[0].data;
    for (int64_t r = 0; r < t->depth; r++)
        for (int64_t p = 0; p < t->sig_len; p++) {
            double v = tile_value(t, r * t->sig_len + p);
            m[2 * p] += v;
            m[2 * p + 1] += v * v;
        }
    return 0;
}

static int sig2_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    double *d = c->bufs[0].data;
    const double *s = src[0].data;
    for (int64_t k = 0; k < 2 * c->bufs[0].rows; k++)
        d[k] += s[k];
    return 0;
}

static const tsr_udf_def_t sig2_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "sig2",
    .init = sig2_init,
    .process_tile = sig2_tile,
    .merge = sig2_merge,
};

/* ---- UDF C: SINGLE histogram with a custom merge (NATIVE input) --------- */

static int hist_init(tsr_udf_init_t *init)
{
    const int64_t bins = HIST_BINS;
    declare(init, "hist", TSR_KIND_SINGLE, TSR_U64, 0, 1, &bins);
    init->input_dtype = TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_TILE;
    return 0;
}

static int hist_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    probe_t *pr = c->user_data;
    check_tile(pr, c, t);
    if (c->bufs[0].rows != 1 || c->bufs[0].row_elems != HIST_BINS)
        perr(pr, "SINGLE view %lld × %lld", (long long)c->bufs[0].rows,
             (long long)c->bufs[0].row_elems);
    uint64_t *h = c->bufs[0].data;
    for (int64_t k = 0; k < t->depth * t->sig_len; k++) {
        double v = tile_value(t, k);
        int b = (int)(v * HIST_BINS / 1000.0);
        h[b < 0 ? 0 : (b >= HIST_BINS ? HIST_BINS - 1 : b)]++;
    }
    return 0;
}

static int hist_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    uint64_t *d = c->bufs[0].data;
    const uint64_t *s = src[0].data;
    for (int b = 0; b < HIST_BINS; b++)
        d[b] += s[b];
    return 0;
}

static const tsr_udf_def_t hist_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "hist",
    .init = hist_init,
    .process_tile = hist_tile,
    .merge = hist_merge,
};

/* ---- UDF D1: process_frame --------------------------------------------- */

static int pframe_init(tsr_udf_init_t *init)
{
    declare(init, "fsum", TSR_KIND_NAV, TSR_F64, 0, 0, NULL);
    init->input_dtype = TSR_F32;
    init->method = TSR_METHOD_FRAME;
    return 0;
}

static int pframe_frame(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    probe_t *pr = c->user_data;
    check_tile(pr, c, t);
    if (t->depth != 1 || t->sig_start != 0 || t->sig_len != pr->sig_size)
        perr(pr, "process_frame got depth %lld sig [%lld, +%lld), not one whole frame",
             (long long)t->depth, (long long)t->sig_start, (long long)t->sig_len);
    if (c->bufs[0].rows != 1)
        perr(pr, "process_frame: NAV view of %lld rows", (long long)c->bufs[0].rows);
    double s = 0;
    for (int64_t p = 0; p < t->sig_len; p++)
        s += tile_value(t, p);
    ((double *)c->bufs[0].data)[0] = s;
    return 0;
}

static const tsr_udf_def_t pframe_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "pframe",
    .init = pframe_init,
    .process_frame = pframe_frame,
};

/* ---- UDF D2: process_partition ----------------------------------------- */

static int ppart_init(tsr_udf_init_t *init)
{
    declare(init, "psum", TSR_KIND_NAV, TSR_F64, 0, 0, NULL);
    init->input_dtype = TSR_F64;
    init->method = TSR_METHOD_PARTITION;
    return 0;
}

static int ppart_part(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    probe_t *pr = c->user_data;
    const tsr_udf_meta_t *m = c->meta;
    atomic_fetch_add(&pr->calls, 1);
    if (t->depth != m->rows || c->bufs[0].rows != m->rows)
        perr(pr, "process_partition: depth %lld, view rows %lld, meta rows %lld",
             (long long)t->depth, (long long)c->bufs[0].rows, (long long)m->rows);
    if (t->sig_start != 0 || t->sig_len != pr->sig_size)
        perr(pr, "process_partition: sig [%lld, +%lld), not whole frames", (long long)t->sig_start,
             (long long)t->sig_len);
    if (t->row != m->row_start)
        perr(pr, "process_partition: row %lld, meta row_start %lld", (long long)t->row,
             (long long)m->row_start);
    if (t->dtype != TSR_F64)
        perr(pr, "process_partition: dtype %d", (int)t->dtype);
    double *out = c->bufs[0].data;
    int64_t r = 0;
    for (int64_t f = m->part_start; f < m->part_end && r < t->depth; f++) {
        if (pr->sel && !pr->sel[f])
            continue;
        double s = 0;
        for (int64_t p = 0; p < pr->sig_size; p++) {
            double v = ((const double *)t->data)[r * t->sig_len + p];
            if (v != pr->src[f * pr->sig_size + p])
                perr(pr, "process_partition: frame %lld (row %lld) pixel %lld = %g, want %u",
                     (long long)f, (long long)r, (long long)p, v, pr->src[f * pr->sig_size + p]);
            s += v;
            atomic_fetch_add(&pr->cover[f * pr->sig_size + p], 1);
        }
        out[r] = s;
        r++;
    }
    if (r != t->depth)
        perr(pr, "process_partition: %lld selected frames in [%lld, %lld), depth %lld",
             (long long)r, (long long)m->part_start, (long long)m->part_end, (long long)t->depth);
    return 0;
}

static const tsr_udf_def_t ppart_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "ppart",
    .init = ppart_init,
    .process_partition = ppart_part,
};

/* ---- UDF E: finalize, RESULT_ONLY and PRIVATE buffers ------------------- */

enum { E_SUMSQ = 0, E_ACC = 1, E_RMS = 2, E_TOTAL = 3 };

static int derived_init(tsr_udf_init_t *init)
{
    declare(init, "sumsq", TSR_KIND_NAV, TSR_F64, 0, 0, NULL);
    declare(init, "acc", TSR_KIND_SIG, TSR_F64, TSR_BUF_PRIVATE, 0, NULL);
    declare(init, "rms", TSR_KIND_NAV, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    declare(init, "total", TSR_KIND_SINGLE, TSR_F64, TSR_BUF_RESULT_ONLY, 0, NULL);
    init->input_dtype = TSR_F64;
    init->method = TSR_METHOD_TILE;
    return 0;
}

static int derived_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    probe_t *pr = c->user_data;
    check_tile(pr, c, t);
    if (c->n_bufs != 4 || c->bufs[E_RMS].data || c->bufs[E_TOTAL].data)
        perr(pr, "RESULT_ONLY buffers visible in process_tile");
    double *sq = c->bufs[E_SUMSQ].data, *acc = c->bufs[E_ACC].data;
    for (int64_t r = 0; r < t->depth; r++)
        for (int64_t p = 0; p < t->sig_len; p++) {
            double v = tile_value(t, r * t->sig_len + p);
            sq[r] += v * v;
            acc[p] += v;
        }
    return 0;
}

static int derived_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    probe_t *pr = c->user_data;
    if (c->bufs[E_SUMSQ].rows != src[E_SUMSQ].rows)
        perr(pr, "merge: NAV dest %lld rows, src %lld", (long long)c->bufs[E_SUMSQ].rows,
             (long long)src[E_SUMSQ].rows);
    if (c->bufs[E_RMS].data || src[E_RMS].data)
        perr(pr, "merge: RESULT_ONLY buffer has data");
    memcpy(c->bufs[E_SUMSQ].data, src[E_SUMSQ].data, (size_t)src[E_SUMSQ].rows * sizeof(double));
    double *d = c->bufs[E_ACC].data;
    const double *s = src[E_ACC].data;
    for (int64_t p = 0; p < c->bufs[E_ACC].rows; p++)
        d[p] += s[p];
    return 0;
}

static int derived_finalize(const tsr_udf_call_t *c)
{
    probe_t *pr = c->user_data;
    atomic_fetch_add(&pr->finalizes, 1);
    if (c->bufs[E_SUMSQ].rows != pr->nav_size || c->bufs[E_RMS].rows != pr->nav_size ||
        !c->bufs[E_RMS].data || !c->bufs[E_TOTAL].data || c->bufs[E_TOTAL].rows != 1)
        perr(pr, "finalize: views %lld / %lld rows (nav %lld), data %p %p",
             (long long)c->bufs[E_SUMSQ].rows, (long long)c->bufs[E_RMS].rows,
             (long long)pr->nav_size, c->bufs[E_RMS].data, c->bufs[E_TOTAL].data);
    if (!c->meta->valid)
        perr(pr, "finalize: no valid mask");
    const double *sq = c->bufs[E_SUMSQ].data, *acc = c->bufs[E_ACC].data;
    double *rms = c->bufs[E_RMS].data, *tot = c->bufs[E_TOTAL].data;
    for (int64_t i = 0; i < pr->nav_size; i++) {
        if (rms[i] != 0)
            perr(pr, "finalize: RESULT_ONLY buffer not zeroed");
        rms[i] = c->meta->valid && c->meta->valid[i] ? sqrt(sq[i] / (double)pr->sig_size) : 12345.0;
    }
    double s = 0;
    for (int64_t p = 0; p < pr->sig_size; p++)
        s += acc[p];
    tot[0] = s;
    return 0;
}

static const tsr_udf_def_t derived_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "derived",
    .init = derived_init,
    .process_tile = derived_tile,
    .merge = derived_merge,
    .finalize = derived_finalize,
};

/* ---- UDF: whole corrected frames into a NAV buffer (extra = sig) -------- */

typedef struct frames_ud {
    probe_t *pr;
    tsr_dtype_t ask;
    int sig_ndim;
    int64_t sig[3];
} frames_ud_t;

static int frames_init(tsr_udf_init_t *init)
{
    frames_ud_t *u = init->user_data;
    declare(init, "frames", TSR_KIND_NAV, u->ask == TSR_F64 ? TSR_F64 : TSR_F32, 0, u->sig_ndim,
            u->sig);
    init->input_dtype = u->ask;
    init->method = TSR_METHOD_TILE;
    return 0;
}

static int frames_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    frames_ud_t *u = c->user_data;
    probe_t *pr = u->pr;
    check_tile(pr, c, t);
    const tsr_view_t *v = &c->bufs[0];
    if (v->row_elems != pr->sig_size || v->rows != t->depth)
        perr(pr, "frames view %lld × %lld", (long long)v->rows, (long long)v->row_elems);
    for (int64_t r = 0; r < t->depth; r++)
        for (int64_t p = 0; p < t->sig_len; p++) {
            double x = tile_value(t, r * t->sig_len + p);
            int64_t k = r * v->row_elems + t->sig_start + p;
            if (v->dtype == TSR_F64)
                ((double *)v->data)[k] = x;
            else
                ((float *)v->data)[k] = (float)x;
        }
    return 0;
}

static const tsr_udf_def_t frames_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "frames",
    .init = frames_init,
    .process_tile = frames_tile,
};

/* ---- reference and configuration ---------------------------------------- */

typedef struct cfg {
    const char *name;
    int nav_ndim;
    int64_t nav[4];
    int sig_ndim;
    int64_t sig[3];
    int threads;    /* 0: inline executor */
    int partitions; /* TSR_OPT_PARTITIONS */
    int64_t tile_bytes;
    int roi; /* 0 none, 1 pattern, 2 nothing selected, 3 mask selecting all */
} cfg_t;

typedef struct world {
    cfg_t cfg;
    int64_t nav_size, sig_size, row_len, n_sel;
    uint16_t *src;
    uint8_t *roi; /* the mask given to the run, or NULL */
    uint8_t *sel; /* nav-sized: selected */
    int64_t *rank;
    tsr_shape_t nav, sig;
    tsr_ctx_t *ctx;
    tsr_dataset_t *ds;
} world_t;

static bool roi_pattern(int64_t i)
{
    return (i * 7) % 5 != 2 && (i * 3) % 4 != 1;
}

static void world_init(world_t *w, const cfg_t *c)
{
    memset(w, 0, sizeof *w);
    w->cfg = *c;
    w->nav.ndim = c->nav_ndim;
    w->sig.ndim = c->sig_ndim;
    w->nav_size = w->sig_size = 1;
    for (int d = 0; d < c->nav_ndim; d++) {
        w->nav.dims[d] = c->nav[d];
        w->nav_size *= c->nav[d];
    }
    for (int d = 0; d < c->sig_ndim; d++) {
        w->sig.dims[d] = c->sig[d];
        w->sig_size *= c->sig[d];
    }
    w->row_len = w->sig_size / c->sig[0];
    w->src = malloc((size_t)(w->nav_size * w->sig_size) * sizeof *w->src);
    for (int64_t i = 0; i < w->nav_size; i++)
        for (int64_t p = 0; p < w->sig_size; p++)
            w->src[i * w->sig_size + p] = pix(i, p);
    w->sel = malloc((size_t)w->nav_size);
    w->rank = malloc((size_t)w->nav_size * sizeof *w->rank);
    if (c->roi) {
        w->roi = malloc((size_t)w->nav_size);
        for (int64_t i = 0; i < w->nav_size; i++)
            w->roi[i] =
                c->roi == 1 ? (uint8_t)(roi_pattern(i) ? 1 + (i % 3) : 0) : (c->roi == 2 ? 0 : 255);
    }
    for (int64_t i = 0; i < w->nav_size; i++) {
        w->sel[i] = w->roi ? w->roi[i] != 0 : 1;
        w->rank[i] = w->sel[i] ? w->n_sel++ : -1;
    }
    assert_int_equal(tsr_ctx_new(&w->ctx), 0);
    if (c->threads == 0) {
        assert_int_equal(tsr_ctx_set(w->ctx, TSR_OPT_EXECUTOR, TSR_EXEC_INLINE), 0);
    } else {
        assert_int_equal(tsr_ctx_set(w->ctx, TSR_OPT_EXECUTOR, TSR_EXEC_THREADS), 0);
        assert_int_equal(tsr_ctx_set(w->ctx, TSR_OPT_THREADS, c->threads), 0);
    }
    assert_int_equal(tsr_ctx_set(w->ctx, TSR_OPT_PARTITIONS, c->partitions), 0);
    assert_int_equal(tsr_ctx_set(w->ctx, TSR_OPT_TILE_BYTES, c->tile_bytes), 0);
    assert_int_equal(
        tsr_dataset_from_memory(w->ctx, w->src, TSR_U16, &w->nav, &w->sig, false, &w->ds), 0);
}

static void world_free(world_t *w)
{
    tsr_dataset_close(w->ds);
    size_t cur = 0;
    tsr_ctx_memory(w->ctx, &cur, NULL);
    tsr_ctx_free(w->ctx);
    free(w->src);
    free(w->roi);
    free(w->sel);
    free(w->rank);
    if (cur != 0)
        fail_msg("[%s] %zu bytes still allocated through the context after freeing everything",
                 w->cfg.name, cur);
}

static tsr_udf_t *custom(world_t *w, const tsr_udf_def_t *def, void *ud)
{
    tsr_udf_t *u = NULL;
    int rc = tsr_udf_new_custom(w->ctx, def, ud, NULL, &u);
    if (rc)
        fail_msg("tsr_udf_new_custom(%s): %d %s", def->name, rc, tsr_ctx_errmsg(w->ctx));
    return u;
}

static tsr_run_t *start(world_t *w, tsr_udf_t **udfs, size_t n, const tsr_corrections_t *corr)
{
    tsr_run_opts_t opts;
    memset(&opts, 0, sizeof opts);
    opts.roi = w->roi;
    if (corr)
        opts.corrections = *corr;
    tsr_run_t *run = NULL;
    int rc = tsr_run_start(w->ctx, w->ds, udfs, n, &opts, &run);
    if (rc)
        fail_msg("[%s] tsr_run_start: %d %s", w->cfg.name, rc, tsr_ctx_errmsg(w->ctx));
    return run;
}

static void wait_ok(world_t *w, tsr_run_t *run)
{
    int rc = tsr_run_wait(run);
    if (rc)
        fail_msg("[%s] tsr_run_wait: %d (%s) %s", w->cfg.name, rc, tsr_err_name(rc),
                 tsr_run_errmsg(run));
}

static void find(world_t *w, const tsr_results_t *res, int udf, const char *name, tsr_array_t *a)
{
    int rc = tsr_results_find(res, udf, name, a);
    if (rc)
        fail_msg("[%s] result %d/%s not found: %d", w->cfg.name, udf, name, rc);
}

static void check_nav_shape(world_t *w, const tsr_array_t *a, int extra_ndim, const int64_t *extra)
{
    if (a->kind != TSR_KIND_NAV || a->shape.ndim != w->nav.ndim + extra_ndim)
        fail_msg("[%s] %s: kind %d ndim %d, expected NAV with %d dims", w->cfg.name, a->name,
                 a->kind, a->shape.ndim, w->nav.ndim + extra_ndim);
    for (int d = 0; d < w->nav.ndim; d++)
        assert_int_equal(a->shape.dims[d], w->nav.dims[d]);
    for (int d = 0; d < extra_ndim; d++)
        assert_int_equal(a->shape.dims[w->nav.ndim + d], extra[d]);
    assert_non_null(a->valid);
    for (int64_t i = 0; i < w->nav_size; i++)
        if (a->valid[i] != w->sel[i])
            fail_msg("[%s] %s: valid[%lld] = %d, selected %d", w->cfg.name, a->name, (long long)i,
                     a->valid[i], w->sel[i]);
}

static void check_sig_shape(world_t *w, const tsr_array_t *a)
{
    assert_int_equal(a->kind, TSR_KIND_SIG);
    assert_int_equal(a->shape.ndim, w->sig.ndim);
    for (int d = 0; d < w->sig.ndim; d++)
        assert_int_equal(a->shape.dims[d], w->sig.dims[d]);
    assert_null(a->valid);
}

/* Coverage: each selected pixel seen `times`, unselected never. */
static void check_cover(world_t *w, probe_t *pr, int times)
{
    for (int64_t i = 0; i < w->nav_size; i++)
        for (int64_t p = 0; p < w->sig_size; p++) {
            int got = atomic_load(&pr->cover[i * w->sig_size + p]);
            int want = w->sel[i] ? times : 0;
            if (got != want)
                fail_msg("[%s] frame %lld pixel %lld processed %d times, expected %d", w->cfg.name,
                         (long long)i, (long long)p, got, want);
        }
    assert_int_equal(atomic_load(&pr->pixels), w->n_sel * w->sig_size * times);
}

/* Partitions seen by task_start cover the nav without overlap (those with
 * rows) and, when forced, their number is min(forced, selected). */
static void check_parts(world_t *w, probe_t *pr)
{
    long n = atomic_load(&pr->nparts);
    assert_true(n <= MAX_PARTS);
    if (w->cfg.partitions > 0 && w->n_sel > 0) {
        long want = w->cfg.partitions < w->n_sel ? w->cfg.partitions : (long)w->n_sel;
        if (n != want)
            fail_msg("[%s] %ld tasks ran, TSR_OPT_PARTITIONS=%d with %lld selected frames",
                     w->cfg.name, n, w->cfg.partitions, (long long)w->n_sel);
    }
    /* disjoint ranges */
    for (long a = 0; a < n; a++)
        for (long b = a + 1; b < n; b++)
            if (pr->parts[a][0] < pr->parts[b][1] && pr->parts[b][0] < pr->parts[a][1])
                fail_msg("[%s] partitions [%lld, %lld) and [%lld, %lld) overlap", w->cfg.name,
                         (long long)pr->parts[a][0], (long long)pr->parts[a][1],
                         (long long)pr->parts[b][0], (long long)pr->parts[b][1]);
}

/* Pass 1: tile UDFs A, B, C, E together. */
static void pass_tiles(world_t *w)
{
    probe_t pa, pb, pc, pe, pm;
    probe_init(&pm, w->src, w->nav_size, w->sig_size, w->row_len, w->sel, w->rank);
    probe_init(&pa, w->src, w->nav_size, w->sig_size, w->row_len, w->sel, w->rank);
    probe_init(&pb, w->src, w->nav_size, w->sig_size, w->row_len, w->sel, w->rank);
    probe_init(&pc, w->src, w->nav_size, w->sig_size, w->row_len, w->sel, w->rank);
    probe_init(&pe, w->src, w->nav_size, w->sig_size, w->row_len, w->sel, w->rank);
    pa.want_dtype = TSR_F32;
    pb.want_dtype = TSR_F64;
    pb.ask_dtype = TSR_F64;
    pc.want_dtype = TSR_U16;
    pe.want_dtype = TSR_F64;
    pm.want_dtype = TSR_F64;
    tsr_udf_t *udfs[5] = {custom(w, &tmax_def, &pa), custom(w, &ssum_def, &pb),
                          custom(w, &hist_def, &pc), custom(w, &derived_def, &pe),
                          custom(w, &sig2_def, &pm)};
    tsr_run_t *run = start(w, udfs, 5, NULL);
    wait_ok(w, run);
    /* wait again: the same status */
    assert_int_equal(tsr_run_wait(run), 0);
    int64_t done = -1, total = -1;
    tsr_run_progress(run, &done, &total);
    assert_int_equal(total, w->n_sel);
    assert_int_equal(done, w->n_sel);

    const tsr_results_t *res;
    assert_int_equal(tsr_run_results(run, &res), 0);
    /* 2 + 1 + 1 + 3 (acc is private) + 1 */
    assert_int_equal(tsr_results_count(res), 8);
    tsr_array_t a;
    assert_int_equal(tsr_results_find(res, 3, "acc", &a), TSR_ENOTFOUND);
    assert_int_equal(tsr_results_find(res, -1, "acc", &a), TSR_ENOTFOUND);
    for (size_t i = 0; i < tsr_results_count(res); i++) {
        assert_int_equal(tsr_results_get(res, i, &a), 0);
        assert_string_not_equal(a.name, "acc");
    }
    assert_true(tsr_results_get(res, 8, &a) < 0);

    int64_t n_done = -1;
    const uint8_t *damage = tsr_results_damage(res, &n_done);
    assert_int_equal(n_done, w->n_sel);
    for (int64_t i = 0; i < w->nav_size; i++)
        assert_int_equal(damage[i] != 0, w->sel[i]);

    /* A: max and count */
    find(w, res, 0, "max", &a);
    assert_string_equal(a.udf, "tmax");
    assert_int_equal(a.udf_index, 0);
    assert_int_equal(a.dtype, TSR_F32);
    check_nav_shape(w, &a, 0, NULL);
    const float *mx = a.data;
    for (int64_t i = 0; i < w->nav_size; i++) {
        if (!w->sel[i]) {
            if (!isnan(mx[i]))
                fail_msg("[%s] max[%lld] = %g at an unselected position, expected NaN", w->cfg.name,
                         (long long)i, mx[i]);
            continue;
        }
        double want = 0;
        for (int64_t p = 0; p < w->sig_size; p++)
            want = fmax(want, w->src[i * w->sig_size + p]);
        if (mx[i] != want)
            fail_msg("[%s] max[%lld] = %g, expected %g", w->cfg.name, (long long)i, mx[i], want);
    }
    find(w, res, 0, "count", &a);
    assert_int_equal(a.dtype, TSR_I32);
    check_nav_shape(w, &a, 0, NULL);
    const int32_t *cnt = a.data;
    for (int64_t i = 0; i < w->nav_size; i++) {
        int32_t want = 0;
        for (int64_t p = 0; w->sel[i] && p < w->sig_size; p++)
            want += w->src[i * w->sig_size + p] > 500;
        if (cnt[i] != want)
            fail_msg("[%s] count[%lld] = %d, expected %d%s", w->cfg.name, (long long)i, cnt[i],
                     want, w->sel[i] ? "" : " (unselected: 0)");
    }

    /* B: SIG sum over the selected frames only */
    find(w, res, 1, "sum", &a);
    assert_string_equal(a.udf, "ssum");
    assert_int_equal(a.dtype, TSR_F64);
    check_sig_shape(w, &a);
    const double *sum = a.data;
    for (int64_t p = 0; p < w->sig_size; p++) {
        double want = 0;
        for (int64_t i = 0; i < w->nav_size; i++)
            if (w->sel[i])
                want += w->src[i * w->sig_size + p];
        if (sum[p] != want)
            fail_msg("[%s] sum[%lld] = %.17g, expected %.17g", w->cfg.name, (long long)p, sum[p],
                     want);
    }

    /* C: histogram */
    find(w, res, 2, "hist", &a);
    assert_int_equal(a.kind, TSR_KIND_SINGLE);
    assert_int_equal(a.dtype, TSR_U64);
    assert_int_equal(a.shape.ndim, 1);
    assert_int_equal(a.shape.dims[0], HIST_BINS);
    assert_null(a.valid);
    uint64_t hist[HIST_BINS] = {0};
    for (int64_t i = 0; i < w->nav_size; i++)
        for (int64_t p = 0; w->sel[i] && p < w->sig_size; p++)
            hist[w->src[i * w->sig_size + p] * HIST_BINS / 1000]++;
    for (int b = 0; b < HIST_BINS; b++)
        if (((const uint64_t *)a.data)[b] != hist[b])
            fail_msg("[%s] hist[%d] = %llu, expected %llu", w->cfg.name, b,
                     (unsigned long long)((const uint64_t *)a.data)[b],
                     (unsigned long long)hist[b]);

    /* E: sumsq (merged by the custom merge), rms and total (finalize) */
    find(w, res, 3, "sumsq", &a);
    check_nav_shape(w, &a, 0, NULL);
    const double *sq = a.data;
    tsr_array_t rms_a, tot_a;
    find(w, res, 3, "rms", &rms_a);
    check_nav_shape(w, &rms_a, 0, NULL);
    find(w, res, 3, "total", &tot_a);
    assert_int_equal(tot_a.kind, TSR_KIND_SINGLE);
    assert_int_equal(tot_a.shape.ndim, 0);
    double total_want = 0;
    for (int64_t i = 0; i < w->nav_size; i++) {
        double s2 = 0;
        for (int64_t p = 0; p < w->sig_size; p++) {
            double v = w->src[i * w->sig_size + p];
            s2 += v * v;
            if (w->sel[i])
                total_want += v;
        }
        double r = ((const double *)rms_a.data)[i];
        if (!w->sel[i]) {
            if (!isnan(sq[i]) || !isnan(r))
                fail_msg("[%s] sumsq/rms[%lld] = %g/%g unselected, expected NaN", w->cfg.name,
                         (long long)i, sq[i], r);
            continue;
        }
        if (sq[i] != s2)
            fail_msg("[%s] sumsq[%lld] = %.17g, expected %.17g", w->cfg.name, (long long)i, sq[i],
                     s2);
        ASSERT_CLOSE(r, sqrt(s2 / (double)w->sig_size), 1e-12);
    }
    ASSERT_DBL_EQ(((const double *)tot_a.data)[0], total_want);
    assert_true(atomic_load(&pe.finalizes) >= 1);

    /* B2: sig_shape + (2,) */
    find(w, res, 4, "moments", &a);
    assert_int_equal(a.kind, TSR_KIND_SIG);
    assert_int_equal(a.shape.ndim, w->sig.ndim + 1);
    for (int d = 0; d < w->sig.ndim; d++)
        assert_int_equal(a.shape.dims[d], w->sig.dims[d]);
    assert_int_equal(a.shape.dims[w->sig.ndim], 2);
    for (int64_t p = 0; p < w->sig_size; p++) {
        double s1 = 0, s2 = 0;
        for (int64_t i = 0; i < w->nav_size; i++)
            if (w->sel[i]) {
                double v = w->src[i * w->sig_size + p];
                s1 += v;
                s2 += v * v;
            }
        const double *m = (const double *)a.data + 2 * p;
        if (m[0] != s1 || m[1] != s2)
            fail_msg("[%s] moments[%lld] = (%.17g, %.17g), expected (%.17g, %.17g)", w->cfg.name,
                     (long long)p, m[0], m[1], s1, s2);
    }

    tsr_run_free(run);
    for (int i = 0; i < 5; i++)
        tsr_udf_free(udfs[i]);
    assert_int_equal(atomic_load(&pa.destroys), 1);

    check_probe(&pa);
    check_probe(&pb);
    check_probe(&pc);
    check_probe(&pe);
    check_cover(w, &pa, 1);
    check_cover(w, &pb, 1);
    check_cover(w, &pc, 1);
    check_cover(w, &pe, 1);
    check_probe(&pm);
    check_cover(w, &pm, 1);
    check_parts(w, &pa);
    /* whole frames unless the budget forces row bands */
    if (w->n_sel > 0) {
        int64_t frame_f64 = w->sig_size * 8;
        if (w->cfg.tile_bytes && w->cfg.tile_bytes < frame_f64) {
            if (atomic_load(&pa.max_len) >= w->sig_size)
                fail_msg("[%s] tile budget %lld < frame %lld but tiles held whole frames",
                         w->cfg.name, (long long)w->cfg.tile_bytes, (long long)frame_f64);
            if (atomic_load(&pa.max_len) * 8 * atomic_load(&pa.max_depth) > w->cfg.tile_bytes &&
                w->row_len * 8 <= w->cfg.tile_bytes)
                fail_msg("[%s] tiles of %ld × %ld exceed the %lld-byte budget", w->cfg.name,
                         atomic_load(&pa.max_depth), atomic_load(&pa.max_len),
                         (long long)w->cfg.tile_bytes);
        } else {
            assert_int_equal(atomic_load(&pa.min_len), w->sig_size);
        }
    }
    probe_free(&pa);
    probe_free(&pb);
    probe_free(&pc);
    probe_free(&pe);
    probe_free(&pm);
}

/* Pass 2: process_frame and process_partition UDFs, with a tile UDF in the
 * same pass. */
static void pass_frames(world_t *w, bool with_part)
{
    probe_t pf, pp, pa;
    probe_init(&pf, w->src, w->nav_size, w->sig_size, w->row_len, w->sel, w->rank);
    probe_init(&pp, w->src, w->nav_size, w->sig_size, w->row_len, w->sel, w->rank);
    probe_init(&pa, w->src, w->nav_size, w->sig_size, w->row_len, w->sel, w->rank);
    pf.want_dtype = TSR_F32;
    pa.want_dtype = TSR_F32;
    /* with_part: process_partition puts the run in partition mode; without
     * it, process_frame runs beside a tile UDF in the tile loop */
    tsr_udf_t *udfs[3] = {custom(w, &pframe_def, &pf), custom(w, &tmax_def, &pa),
                          with_part ? custom(w, &ppart_def, &pp) : NULL};
    int n = with_part ? 3 : 2;
    tsr_run_t *run = start(w, udfs, (size_t)n, NULL);
    wait_ok(w, run);
    const tsr_results_t *res;
    assert_int_equal(tsr_run_results(run, &res), 0);
    tsr_array_t fs, ps, mx;
    find(w, res, 0, "fsum", &fs);
    find(w, res, 1, "max", &mx);
    check_nav_shape(w, &fs, 0, NULL);
    if (with_part) {
        find(w, res, 2, "psum", &ps);
        check_nav_shape(w, &ps, 0, NULL);
    } else {
        ps = fs; /* compared with the same reference */
    }
    for (int64_t i = 0; i < w->nav_size; i++) {
        double s = 0, m = 0;
        for (int64_t p = 0; p < w->sig_size; p++) {
            s += w->src[i * w->sig_size + p];
            m = fmax(m, w->src[i * w->sig_size + p]);
        }
        double f = ((const double *)fs.data)[i], q = ((const double *)ps.data)[i];
        float x = ((const float *)mx.data)[i];
        if (!w->sel[i]) {
            assert_true(isnan(f) && isnan(q) && isnan(x));
            continue;
        }
        if (f != s || q != s || x != m)
            fail_msg("[%s] frame %lld: fsum %.17g psum %.17g max %g, expected %.17g / %g",
                     w->cfg.name, (long long)i, f, q, x, s, m);
    }
    tsr_run_free(run);
    for (int i = 0; i < 3; i++)
        tsr_udf_free(udfs[i]);
    check_probe(&pf);
    check_probe(&pp);
    assert_int_equal(atomic_load(&pp.calls) > 0, with_part && w->n_sel > 0);
    check_probe(&pa);
    check_cover(w, &pf, 1);
    check_cover(w, &pa, 1);
    for (int64_t i = 0; with_part && i < w->nav_size; i++)
        for (int64_t p = 0; p < w->sig_size; p++)
            assert_int_equal(atomic_load(&pp.cover[i * w->sig_size + p]), w->sel[i]);
    if (w->n_sel > 0) {
        assert_int_equal(atomic_load(&pf.max_depth), 1);
        assert_int_equal(atomic_load(&pf.min_len), w->sig_size);
        assert_int_equal(atomic_load(&pa.min_len), w->sig_size); /* whole frames */
    }
    probe_free(&pf);
    probe_free(&pp);
    probe_free(&pa);
}

static void run_config(const cfg_t *c)
{
    world_t w;
    world_init(&w, c);
    pass_tiles(&w);
    pass_frames(&w, true);
    pass_frames(&w, false);
    world_free(&w);
}

#define NAV57      \
    2,             \
    {              \
        5, 7, 0, 0 \
    }
#define SIG88   \
    2,          \
    {           \
        8, 8, 0 \
    }

static void test_executors(void **state)
{
    (void)state;
    const cfg_t cfgs[] = {
        {"1 thread", NAV57, SIG88, 1, 0, 0, 0},
        {"2 threads", NAV57, SIG88, 2, 0, 0, 0},
        {"3 threads", NAV57, SIG88, 3, 0, 0, 0},
        {"inline", NAV57, SIG88, 0, 0, 0, 0},
        {"inline, 5 partitions", NAV57, SIG88, 0, 5, 0, 0},
        {"default threads", NAV57, SIG88, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++) {
        cfg_t c = cfgs[i];
        if (i == 5) {
            /* the default: threads executor, one worker per core */
            world_t w;
            world_init(&w, &c);
            assert_int_equal(tsr_ctx_set(w.ctx, TSR_OPT_EXECUTOR, TSR_EXEC_THREADS), 0);
            assert_int_equal(tsr_ctx_set(w.ctx, TSR_OPT_THREADS, 0), 0);
            pass_tiles(&w);
            world_free(&w);
            continue;
        }
        run_config(&c);
    }
}

static void test_partitions(void **state)
{
    (void)state;
    const int counts[] = {1, 2, 5, 7, 35, 100};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        for (int threads = 0; threads <= 3; threads += 3) {
            char name[64];
            snprintf(name, sizeof name, "%d partitions, %d threads", counts[i], threads);
            cfg_t c = {name, NAV57, SIG88, threads, counts[i], 0, 0};
            run_config(&c);
        }
    }
}

static void test_row_bands(void **state)
{
    (void)state;
    /* 8×8 frames, float64 tiles: 64 bytes hold one row */
    const cfg_t cfgs[] = {
        {"64-byte tiles, 2 threads", NAV57, SIG88, 2, 5, 64, 0},
        {"64-byte tiles, inline", NAV57, SIG88, 0, 0, 64, 0},
        {"200-byte tiles, 3 threads, ROI", NAV57, SIG88, 3, 7, 200, 1},
        {"1000-byte tiles (depth > 1), 2 threads", NAV57, SIG88, 2, 3, 1000, 0},
        {"64-byte tiles, 3-D sig", 2, {5, 7, 0, 0}, 3, {2, 3, 4}, 2, 4, 64, 1},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        run_config(&cfgs[i]);
}

static void test_roi(void **state)
{
    (void)state;
    const cfg_t cfgs[] = {
        {"ROI, 1 thread", NAV57, SIG88, 1, 0, 0, 1},
        {"ROI, 3 threads, 7 partitions", NAV57, SIG88, 3, 7, 0, 1},
        {"ROI, inline, 2 partitions", NAV57, SIG88, 0, 2, 0, 1},
        {"ROI, 2 threads, 5 partitions", NAV57, SIG88, 2, 5, 0, 1},
        {"ROI selecting nothing", NAV57, SIG88, 2, 0, 0, 2},
        {"ROI selecting all (values 255)", NAV57, SIG88, 2, 3, 0, 3},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        run_config(&cfgs[i]);
}

static void test_shapes(void **state)
{
    (void)state;
    const cfg_t cfgs[] = {
        {"1-D nav", 1, {35, 0, 0, 0}, SIG88, 2, 4, 0, 0},
        {"1-D nav, ROI", 1, {35, 0, 0, 0}, SIG88, 3, 0, 0, 1},
        {"3-D nav", 3, {2, 3, 4, 0}, SIG88, 2, 5, 0, 1},
        {"4-D nav", 4, {2, 2, 3, 2}, SIG88, 3, 7, 0, 0},
        {"4-D nav, ROI, inline", 4, {2, 2, 3, 2}, SIG88, 0, 3, 0, 1},
        {"1-D sig", NAV57, 1, {20, 0, 0}, 2, 5, 0, 0},
        {"1-D sig, ROI, bands", NAV57, 1, {20, 0, 0}, 2, 5, 48, 1},
        {"3-D sig", NAV57, 3, {2, 3, 4}, 3, 0, 0, 0},
        {"prime sig 7×11", NAV57, 2, {7, 11, 0}, 2, 0, 0, 1},
        {"one frame", 1, {1, 0, 0, 0}, SIG88, 2, 0, 0, 0},
        {"one frame, inline, ROI", 1, {1, 0, 0, 0}, SIG88, 0, 3, 0, 1},
        {"one frame, 2-D nav", 2, {1, 1, 0, 0}, SIG88, 3, 0, 64, 0},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof cfgs[0]; i++)
        run_config(&cfgs[i]);
}

/* ---- corrections -------------------------------------------------------- */

/* The definition in tessera.h: subtract dark, multiply by gain (float32
 * arithmetic for float32 tiles, double for float64 ones), then replace each
 * excluded pixel by the mean of the non-excluded pixels of its 3×3
 * neighbourhood (clipped at the edges), widened to 5×5, 7×7, … until one
 * is found.  Neighbour values are the dark/gain-corrected ones. */
static void ref_corrections(const world_t *w, const float *dark, const float *gain,
                            const uint8_t *ex, float *out32, double *out64)
{
    int64_t H = w->sig.dims[0], W = w->sig.dims[1];
    for (int64_t i = 0; i < w->nav_size; i++) {
        float *f32 = out32 + i * w->sig_size;
        double *f64 = out64 + i * w->sig_size;
        for (int64_t p = 0; p < w->sig_size; p++) {
            float v = (float)w->src[i * w->sig_size + p];
            double d = (double)w->src[i * w->sig_size + p];
            if (dark) {
                v -= dark[p];
                d -= (double)dark[p];
            }
            if (gain) {
                v *= gain[p];
                d *= (double)gain[p];
            }
            f32[p] = v;
            f64[p] = d;
        }
        if (!ex)
            continue;
        float patched32[256];
        double patched64[256];
        for (int64_t p = 0; p < w->sig_size; p++) {
            patched32[p] = f32[p];
            patched64[p] = f64[p];
        }
        for (int64_t y = 0; y < H; y++)
            for (int64_t x = 0; x < W; x++) {
                if (!ex[y * W + x])
                    continue;
                for (int64_t r = 1; r < H + W; r++) {
                    double s32 = 0, s64 = 0;
                    int n = 0;
                    for (int64_t yy = y - r; yy <= y + r; yy++)
                        for (int64_t xx = x - r; xx <= x + r; xx++) {
                            if (yy < 0 || yy >= H || xx < 0 || xx >= W || ex[yy * W + xx])
                                continue;
                            s32 += f32[yy * W + xx];
                            s64 += f64[yy * W + xx];
                            n++;
                        }
                    if (n) {
                        patched32[y * W + x] = (float)(s32 / n);
                        patched64[y * W + x] = s64 / n;
                        break;
                    }
                }
            }
        for (int64_t p = 0; p < w->sig_size; p++) {
            f32[p] = patched32[p];
            f64[p] = patched64[p];
        }
    }
}

static void run_corrections(const cfg_t *c, bool use_dark, bool use_gain, bool use_ex)
{
    world_t w;
    world_init(&w, c);
    assert_int_equal(w.sig.ndim, 2);
    assert_true(w.sig_size <= 256);
    float dark[256], gain[256];
    uint8_t ex[256] = {0};
    int64_t W = w.sig.dims[1];
    for (int64_t p = 0; p < w.sig_size; p++) {
        dark[p] = (float)(p % 5) * 1.5f + 0.25f;
        gain[p] = 0.5f + (float)(p % 7) * 0.125f;
    }
    if (use_ex) {
        /* a 2×2 block whose 3×3 neighbourhoods are partly excluded */
        ex[1 * W + 1] = ex[1 * W + 2] = ex[2 * W + 1] = ex[2 * W + 2] = 1;
        /* a 3×3 block: its centre's whole 3×3 neighbourhood is excluded
         * and widens to 5×5 */
        for (int64_t y = 4; y <= 6; y++)
            for (int64_t x = 4; x <= 6; x++)
                ex[y * W + x] = 1;
        /* a corner and an edge pixel */
        ex[0] = 1;
        ex[7 * W + 3] = 1;
    }
    float *ref32 = malloc((size_t)(w.nav_size * w.sig_size) * sizeof(float));
    double *ref64 = malloc((size_t)(w.nav_size * w.sig_size) * sizeof(double));
    ref_corrections(&w, use_dark ? dark : NULL, use_gain ? gain : NULL, use_ex ? ex : NULL, ref32,
                    ref64);
    /* the widened pixel really needed 5×5: its 3×3 is all excluded */
    if (use_ex) {
        int n3 = 0;
        for (int64_t y = 4; y <= 6; y++)
            for (int64_t x = 4; x <= 6; x++)
                n3 += !ex[y * W + x];
        assert_int_equal(n3, 0);
    }

    probe_t p32, p64, pn;
    probe_init(&p32, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    probe_init(&p64, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    probe_init(&pn, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    p32.want_dtype = TSR_F32;
    p32.corrected = ref32;
    p64.want_dtype = TSR_F64;
    p64.corrected64 = ref64;
    /* NATIVE on integer data with corrections: float32 tiles */
    pn.want_dtype = TSR_F32;
    pn.corrected = ref32;
    frames_ud_t u32 = {&p32, TSR_F32, 2, {w.sig.dims[0], w.sig.dims[1], 0}};
    frames_ud_t u64 = {&p64, TSR_F64, 2, {w.sig.dims[0], w.sig.dims[1], 0}};
    frames_ud_t un = {&pn, TSR_DTYPE_NATIVE, 2, {w.sig.dims[0], w.sig.dims[1], 0}};
    tsr_udf_t *udfs[3] = {custom(&w, &frames_def, &u32), custom(&w, &frames_def, &u64),
                          custom(&w, &frames_def, &un)};
    tsr_corrections_t corr = {use_dark ? dark : NULL, use_gain ? gain : NULL, use_ex ? ex : NULL};
    tsr_run_t *run = start(&w, udfs, 3, &corr);
    /* the arrays are copied at start: scribbling on them changes nothing */
    for (int64_t p = 0; p < w.sig_size; p++) {
        dark[p] = 1e6f;
        gain[p] = -1e6f;
    }
    wait_ok(&w, run);
    const tsr_results_t *res;
    assert_int_equal(tsr_run_results(run, &res), 0);
    for (int u = 0; u < 3; u++) {
        tsr_array_t a;
        find(&w, res, u, "frames", &a);
        int64_t extra[2] = {w.sig.dims[0], w.sig.dims[1]};
        check_nav_shape(&w, &a, 2, extra);
        for (int64_t i = 0; i < w.nav_size; i++) {
            if (!w.sel[i])
                continue;
            for (int64_t p = 0; p < w.sig_size; p++) {
                double got = u == 1 ? ((const double *)a.data)[i * w.sig_size + p]
                                    : ((const float *)a.data)[i * w.sig_size + p];
                double want = u == 1 ? ref64[i * w.sig_size + p] : ref32[i * w.sig_size + p];
                if (!(fabs(got - want) <= 1e-6 * fmax(1.0, fabs(want))))
                    fail_msg("[%s] UDF %d frame %lld pixel (%lld, %lld): %.9g, reference %.9g%s",
                             c->name, u, (long long)i, (long long)(p / W), (long long)(p % W), got,
                             want, use_ex && ex[p] ? " (excluded pixel)" : "");
            }
        }
    }
    tsr_run_free(run);
    for (int u = 0; u < 3; u++)
        tsr_udf_free(udfs[u]);
    check_probe(&p32);
    check_probe(&p64);
    check_probe(&pn);
    if (use_ex && w.n_sel > 0)
        assert_int_equal(atomic_load(&p32.min_len), w.sig_size); /* patching needs frames */
    probe_free(&p32);
    probe_free(&p64);
    probe_free(&pn);
    free(ref32);
    free(ref64);
    world_free(&w);
}

static void test_corrections(void **state)
{
    (void)state;
    const cfg_t a = {"dark+gain, row bands, ROI", NAV57, SIG88, 2, 5, 64, 1};
    run_corrections(&a, true, true, false);
    const cfg_t b = {"dark+gain+excluded, 3 threads", NAV57, SIG88, 3, 5, 0, 0};
    run_corrections(&b, true, true, true);
    const cfg_t c = {"excluded only, inline, ROI", NAV57, SIG88, 0, 3, 64, 1};
    run_corrections(&c, false, false, true);
    const cfg_t d = {"dark only, 1 thread", NAV57, SIG88, 1, 0, 0, 0};
    run_corrections(&d, true, false, false);
    const cfg_t e = {"gain only, 2 threads", NAV57, SIG88, 2, 7, 0, 0};
    run_corrections(&e, false, true, false);
}

static void test_corrections_all_excluded(void **state)
{
    (void)state;
    const cfg_t c = {"all excluded", NAV57, SIG88, 2, 0, 0, 0};
    world_t w;
    world_init(&w, &c);
    uint8_t ex[64];
    memset(ex, 1, sizeof ex);
    probe_t pr;
    probe_init(&pr, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    tsr_udf_t *u = custom(&w, &tmax_def, &pr);
    tsr_run_opts_t opts = {.corrections = {.excluded = ex}};
    tsr_run_t *run = NULL;
    int rc = tsr_run_start(w.ctx, w.ds, &u, 1, &opts, &run);
    assert_true(rc < 0);
    assert_null(run);
    assert_true(tsr_ctx_errmsg(w.ctx)[0] != 0);

    /* corrections on complex data: not supported, said at start */
    float cdata[2 * 4 * 9] = {0};
    tsr_shape_t nav = {.ndim = 1, .dims = {4}}, sig = {.ndim = 2, .dims = {3, 3}};
    tsr_dataset_t *cds;
    assert_int_equal(tsr_dataset_from_memory(w.ctx, cdata, TSR_C64, &nav, &sig, true, &cds), 0);
    float dark[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    tsr_run_opts_t copts = {.corrections = {.dark = dark}};
    rc = tsr_run_start(w.ctx, cds, &u, 1, &copts, &run);
    assert_int_equal(rc, TSR_EUNSUPPORTED);
    assert_null(run);
    ASSERT_CONTAINS(tsr_ctx_errmsg(w.ctx), "complex");
    tsr_dataset_close(cds);
    tsr_udf_free(u);
    probe_free(&pr);
    world_free(&w);
}

/* A UDF's preferred tile depth is honoured: tiles hold at most that many
 * frames, and exactly that many where a span of consecutive frames is long
 * enough. */
static void test_tile_depth_preference(void **state)
{
    (void)state;
    const cfg_t cfgs[] = {
        {"tile_depth 3, 2 threads", NAV57, SIG88, 2, 2, 0, 0},
        {"tile_depth 3, inline, ROI", NAV57, SIG88, 0, 1, 0, 1},
    };
    for (size_t k = 0; k < 2; k++) {
        world_t w;
        world_init(&w, &cfgs[k]);
        probe_t pr;
        probe_init(&pr, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
        pr.pref_depth = 3;
        tsr_udf_t *u = custom(&w, &tmax_def, &pr);
        tsr_run_t *run = start(&w, &u, 1, NULL);
        wait_ok(&w, run);
        tsr_run_free(run);
        tsr_udf_free(u);
        check_probe(&pr);
        check_cover(&w, &pr, 1);
        if (atomic_load(&pr.max_depth) != 3)
            fail_msg("[%s] preferred depth 3, largest tile %ld frames", cfgs[k].name,
                     atomic_load(&pr.max_depth));
        probe_free(&pr);
        world_free(&w);
    }
}

/* ---- snapshots ---------------------------------------------------------- */

/* Check a snapshot: positions flagged in the damage mask carry their final
 * values, others NaN; the SIG sum is the sum over exactly the damaged
 * frames.  Returns the number of damaged positions. */
static int64_t check_snapshot(world_t *w, const tsr_results_t *snap)
{
    int64_t n_done = -1;
    const uint8_t *damage = tsr_results_damage(snap, &n_done);
    assert_non_null(damage);
    int64_t count = 0;
    for (int64_t i = 0; i < w->nav_size; i++) {
        count += damage[i] != 0;
        if (damage[i] && !w->sel[i])
            fail_msg("snapshot: unselected position %lld marked processed", (long long)i);
    }
    assert_int_equal(count, n_done);
    tsr_array_t mx, sm;
    find(w, snap, 0, "max", &mx);
    find(w, snap, 1, "sum", &sm);
    for (int64_t i = 0; i < w->nav_size; i++) {
        float v = ((const float *)mx.data)[i];
        if (damage[i]) {
            double want = 0;
            for (int64_t p = 0; p < w->sig_size; p++)
                want = fmax(want, w->src[i * w->sig_size + p]);
            if (v != want || !mx.valid[i])
                fail_msg("snapshot: damaged position %lld has max %g (valid %d), final %g",
                         (long long)i, v, mx.valid[i], want);
        } else if (!isnan(v) || mx.valid[i]) {
            fail_msg("snapshot: position %lld not processed yet but max = %g, valid %d",
                     (long long)i, v, mx.valid[i]);
        }
    }
    for (int64_t p = 0; p < w->sig_size; p++) {
        double want = 0;
        for (int64_t i = 0; i < w->nav_size; i++)
            if (damage[i])
                want += w->src[i * w->sig_size + p];
        if (((const double *)sm.data)[p] != want)
            fail_msg("snapshot: sum[%lld] = %.17g but the damaged frames sum to %.17g "
                     "(inconsistent snapshot)",
                     (long long)p, ((const double *)sm.data)[p], want);
    }
    return n_done;
}

static void snapshot_run(const cfg_t *c, int sleep_us)
{
    world_t w;
    world_init(&w, c);
    probe_t pa, pb;
    probe_init(&pa, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    probe_init(&pb, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    pa.sleep_us = sleep_us;
    pb.ask_dtype = TSR_F64;
    /* With threads, the first partition is held until a snapshot has seen
     * other partitions merged: at least one snapshot is taken mid-run. */
    bool gated = c->threads > 1 && w.n_sel > 1;
    for (int64_t i = 0; gated && i < w.nav_size; i++)
        if (w.sel[i]) {
            pa.gate_frame = i;
            break;
        }
    tsr_udf_t *udfs[2] = {custom(&w, &tmax_def, &pa), custom(&w, &ssum_def, &pb)};
    tsr_run_t *run = start(&w, udfs, 2, NULL);
    int64_t last = 0, snaps = 0, mid = 0;
    for (;;) {
        int rc = tsr_run_wait_for(run, 2);
        tsr_results_t *snap = NULL;
        assert_int_equal(tsr_run_snapshot(run, &snap), 0);
        int64_t n = check_snapshot(&w, snap);
        tsr_results_free(snap);
        if (n < last)
            fail_msg("[%s] damage went from %lld to %lld positions", c->name, (long long)last,
                     (long long)n);
        last = n;
        snaps++;
        mid += n > 0 && n < w.n_sel;
        if (gated && (n > 0 || snaps > 5000))
            atomic_store(&pa.gate_open, 1);
        if (rc != TSR_EAGAIN) {
            assert_int_equal(rc, 0);
            break;
        }
    }
    atomic_store(&pa.gate_open, 1);
    if (gated && mid == 0)
        fail_msg("[%s] %lld snapshots, none taken mid-run", c->name, (long long)snaps);
    /* after the end: the snapshot equals the final results */
    const tsr_results_t *res;
    assert_int_equal(tsr_run_results(run, &res), 0);
    tsr_results_t *snap;
    assert_int_equal(tsr_run_snapshot(run, &snap), 0);
    assert_int_equal(check_snapshot(&w, snap), w.n_sel);
    assert_int_equal(tsr_results_count(snap), tsr_results_count(res));
    for (size_t i = 0; i < tsr_results_count(res); i++) {
        tsr_array_t a, b;
        assert_int_equal(tsr_results_get(res, i, &a), 0);
        assert_int_equal(tsr_results_get(snap, i, &b), 0);
        assert_string_equal(a.name, b.name);
        assert_int_equal(a.dtype, b.dtype);
        assert_int_equal(a.shape.ndim, b.shape.ndim);
        int64_t n = 1;
        for (int d = 0; d < a.shape.ndim; d++) {
            assert_int_equal(a.shape.dims[d], b.shape.dims[d]);
            n *= a.shape.dims[d];
        }
        assert_memory_equal(a.data, b.data, (size_t)n * tsr_dtype_size(a.dtype));
        if (a.valid)
            assert_memory_equal(a.valid, b.valid, (size_t)w.nav_size);
    }
    tsr_results_free(snap);
    tsr_run_free(run);
    tsr_udf_free(udfs[0]);
    tsr_udf_free(udfs[1]);
    check_probe(&pa);
    check_probe(&pb);
    probe_free(&pa);
    probe_free(&pb);
    world_free(&w);
}

static void test_snapshots(void **state)
{
    (void)state;
    const cfg_t a = {"snapshots, 2 threads, 35 partitions", NAV57, SIG88, 2, 35, 0, 0};
    snapshot_run(&a, 1500);
    const cfg_t b = {"snapshots, 3 threads, 12 partitions, ROI", NAV57, SIG88, 3, 12, 64, 1};
    snapshot_run(&b, 300);
    const cfg_t c = {"snapshots, inline", NAV57, SIG88, 0, 7, 0, 0};
    snapshot_run(&c, 0);
}

static void test_snapshot_inline_before_wait(void **state)
{
    (void)state;
    const cfg_t c = {"inline snapshot before wait", NAV57, SIG88, 0, 5, 0, 1};
    world_t w;
    world_init(&w, &c);
    probe_t pa, pb;
    probe_init(&pa, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    probe_init(&pb, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    tsr_udf_t *udfs[2] = {custom(&w, &tmax_def, &pa), custom(&w, &ssum_def, &pb)};
    tsr_run_t *run = start(&w, udfs, 2, NULL);
    const tsr_results_t *res = NULL;
    assert_int_equal(tsr_run_results(run, &res), TSR_ESTATE);
    tsr_results_t *snap;
    assert_int_equal(tsr_run_snapshot(run, &snap), 0);
    assert_int_equal(check_snapshot(&w, snap), 0); /* nothing ran yet */
    tsr_results_free(snap);
    assert_int_equal(atomic_load(&pa.calls), 0);
    wait_ok(&w, run);
    assert_int_equal(tsr_run_snapshot(run, &snap), 0);
    assert_int_equal(check_snapshot(&w, snap), w.n_sel);
    tsr_results_free(snap);
    tsr_run_free(run);
    tsr_udf_free(udfs[0]);
    tsr_udf_free(udfs[1]);
    probe_free(&pa);
    probe_free(&pb);
    world_free(&w);
}

/* ---- cancel -------------------------------------------------------------- */

static void test_cancel(void **state)
{
    (void)state;
    const cfg_t c = {"cancel", NAV57, SIG88, 2, 35, 0, 0};
    world_t w;
    world_init(&w, &c);
    probe_t pa;
    probe_init(&pa, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    /* every tile waits at the gate: cancel while the first ones are held,
     * then let them finish; no other tile may start */
    pa.gate_frame = -2;
    tsr_udf_t *u = custom(&w, &tmax_def, &pa);
    tsr_run_t *run = start(&w, &u, 1, NULL);
    for (int k = 0; k < 20000 && atomic_load(&pa.calls) == 0; k++) {
        struct timespec ts = {0, 500 * 1000};
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&pa.calls) > 0);
    tsr_run_cancel(run);
    atomic_store(&pa.gate_open, 1);
    int rc = tsr_run_wait(run);
    assert_int_equal(rc, TSR_ECANCELED);
    ASSERT_CONTAINS(tsr_run_errmsg(run), "cancel");
    assert_int_equal(tsr_run_wait(run), TSR_ECANCELED); /* again */
    int64_t done, total;
    tsr_run_progress(run, &done, &total);
    assert_int_equal(total, 35);
    /* at most the tiles in flight when cancel came: one per worker */
    if (done > 2 || atomic_load(&pa.calls) > 2)
        fail_msg("canceled with the first tiles in flight, yet %lld frames (%ld tiles) were "
                 "processed",
                 (long long)done, atomic_load(&pa.calls));
    const tsr_results_t *res;
    assert_true(tsr_run_results(run, &res) < 0);
    /* a snapshot after a cancel is still consistent */
    tsr_results_t *snap;
    assert_int_equal(tsr_run_snapshot(run, &snap), 0);
    int64_t n_done;
    tsr_results_damage(snap, &n_done);
    assert_true(n_done <= 2);
    tsr_results_free(snap);
    tsr_run_free(run);
    tsr_udf_free(u);
    check_probe(&pa);
    probe_free(&pa);
    world_free(&w);
}

static void test_cancel_inline_and_free_running(void **state)
{
    (void)state;
    /* inline: cancel before wait */
    const cfg_t c = {"cancel inline", NAV57, SIG88, 0, 5, 0, 0};
    world_t w;
    world_init(&w, &c);
    probe_t pa;
    probe_init(&pa, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    tsr_udf_t *u = custom(&w, &tmax_def, &pa);
    tsr_run_t *run = start(&w, &u, 1, NULL);
    tsr_run_cancel(run);
    assert_int_equal(tsr_run_wait(run), TSR_ECANCELED);
    tsr_run_free(run);
    /* threads: free a run that is still going (it cancels and waits) */
    assert_int_equal(tsr_ctx_set(w.ctx, TSR_OPT_EXECUTOR, TSR_EXEC_THREADS), 0);
    assert_int_equal(tsr_ctx_set(w.ctx, TSR_OPT_THREADS, 2), 0);
    assert_int_equal(tsr_ctx_set(w.ctx, TSR_OPT_PARTITIONS, 35), 0);
    pa.sleep_us = 3000;
    run = start(&w, &u, 1, NULL);
    tsr_run_free(run);
    tsr_run_free(NULL);
    tsr_udf_free(u);
    check_probe(&pa);
    probe_free(&pa);
    world_free(&w);
}

/* ---- several input dtypes in one pass ------------------------------------ */

static void test_input_dtypes(void **state)
{
    (void)state;
    /* u16 data: F32 → float32, NATIVE → uint16, F64 → float64 */
    const cfg_t c = {"dtypes", NAV57, SIG88, 3, 5, 0, 1};
    world_t w;
    world_init(&w, &c);
    probe_t p[3];
    const tsr_dtype_t ask[3] = {TSR_F32, TSR_DTYPE_NATIVE, TSR_F64};
    const tsr_dtype_t want[3] = {TSR_F32, TSR_U16, TSR_F64};
    tsr_udf_t *udfs[3];
    for (int k = 0; k < 3; k++) {
        probe_init(&p[k], w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
        p[k].ask_dtype = ask[k];
        p[k].want_dtype = want[k];
        udfs[k] = custom(&w, &ssum_def, &p[k]);
    }
    tsr_run_t *run = start(&w, udfs, 3, NULL);
    wait_ok(&w, run);
    const tsr_results_t *res;
    assert_int_equal(tsr_run_results(run, &res), 0);
    for (int k = 0; k < 3; k++) {
        tsr_array_t a;
        find(&w, res, k, "sum", &a);
        for (int64_t q = 0; q < w.sig_size; q++) {
            double s = 0;
            for (int64_t i = 0; i < w.nav_size; i++)
                if (w.sel[i])
                    s += w.src[i * w.sig_size + q];
            ASSERT_DBL_EQ(((const double *)a.data)[q], s);
        }
    }
    tsr_run_free(run);
    for (int k = 0; k < 3; k++) {
        tsr_udf_free(udfs[k]);
        check_probe(&p[k]);
        check_cover(&w, &p[k], 1);
        probe_free(&p[k]);
    }
    world_free(&w);
}

/* int32 data: float32 cannot hold it, so F32 gives float64 tiles (numpy's
 * result_type(int32, float32)); NATIVE gives int32. */
static void test_input_dtype_widening(void **state)
{
    (void)state;
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_THREADS, 2), 0);
    enum { N = 6, S = 16 };
    int32_t data[N * S];
    uint16_t as16[N * S]; /* the probe compares with u16 values: keep them small */
    for (int i = 0; i < N * S; i++) {
        as16[i] = pix(i / S, i % S);
        data[i] = as16[i];
    }
    tsr_shape_t nav = {.ndim = 1, .dims = {N}}, sig = {.ndim = 2, .dims = {4, 4}};
    tsr_dataset_t *ds;
    assert_int_equal(tsr_dataset_from_memory(ctx, data, TSR_I32, &nav, &sig, true, &ds), 0);
    probe_t pf, pn;
    probe_init(&pf, as16, N, S, 4, NULL, NULL);
    probe_init(&pn, as16, N, S, 4, NULL, NULL);
    pf.ask_dtype = TSR_F32;
    pf.want_dtype = TSR_F64;
    pn.ask_dtype = TSR_DTYPE_NATIVE;
    pn.want_dtype = TSR_I32;
    tsr_udf_t *u[2];
    assert_int_equal(tsr_udf_new_custom(ctx, &ssum_def, &pf, NULL, &u[0]), 0);
    assert_int_equal(tsr_udf_new_custom(ctx, &ssum_def, &pn, NULL, &u[1]), 0);
    tsr_run_t *run;
    assert_int_equal(tsr_run_start(ctx, ds, u, 2, NULL, &run), 0);
    assert_int_equal(tsr_run_wait(run), 0);
    tsr_run_free(run);
    tsr_udf_free(u[0]);
    tsr_udf_free(u[1]);
    check_probe(&pf);
    check_probe(&pn);
    assert_true(atomic_load(&pf.calls) > 0);
    probe_free(&pf);
    probe_free(&pn);
    tsr_dataset_close(ds);
    size_t cur;
    tsr_ctx_memory(ctx, &cur, NULL);
    assert_int_equal(cur, 0);
    tsr_ctx_free(ctx);
}

/* ---- frames_needed -------------------------------------------------------- */

static void needed_run(const cfg_t *c, const int64_t *needed, int64_t n_needed, bool with_other)
{
    world_t w;
    world_init(&w, c);
    /* the effective selection: ROI ∩ needed (when every UDF has a list) */
    uint8_t *eff = calloc((size_t)w.nav_size, 1);
    int64_t *rank = malloc((size_t)w.nav_size * sizeof *rank);
    int64_t n_eff = 0;
    for (int64_t k = 0; k < n_needed; k++)
        eff[needed[k]] = w.sel[needed[k]];
    if (with_other)
        memcpy(eff, w.sel, (size_t)w.nav_size);
    for (int64_t i = 0; i < w.nav_size; i++)
        rank[i] = eff[i] ? n_eff++ : -1;
    probe_t pn, po;
    probe_init(&pn, w.src, w.nav_size, w.sig_size, w.row_len, eff, rank);
    probe_init(&po, w.src, w.nav_size, w.sig_size, w.row_len, eff, rank);
    pn.needed = needed;
    pn.n_needed = n_needed;
    tsr_udf_t *udfs[2] = {custom(&w, &tmax_def, &pn), NULL};
    if (with_other)
        udfs[1] = custom(&w, &ssum_def, &po);
    tsr_run_t *run = start(&w, udfs, with_other ? 2 : 1, NULL);
    wait_ok(&w, run);
    const tsr_results_t *res;
    assert_int_equal(tsr_run_results(run, &res), 0);
    tsr_array_t a;
    find(&w, res, 0, "max", &a);
    for (int64_t i = 0; i < w.nav_size; i++) {
        float v = ((const float *)a.data)[i];
        if (eff[i]) {
            double want = 0;
            for (int64_t p = 0; p < w.sig_size; p++)
                want = fmax(want, w.src[i * w.sig_size + p]);
            if (v != want)
                fail_msg("[%s] needed frame %lld: max %g, expected %g", c->name, (long long)i, v,
                         want);
        }
    }
    int64_t done, total;
    tsr_run_progress(run, &done, &total);
    assert_int_equal(total, n_eff);
    tsr_run_free(run);
    tsr_udf_free(udfs[0]);
    tsr_udf_free(udfs[1]);
    check_probe(&pn);
    check_probe(&po);
    /* frames passed = exactly the needed ones (within the ROI) */
    for (int64_t i = 0; i < w.nav_size; i++) {
        int seen = 0;
        for (int64_t p = 0; p < w.sig_size; p++)
            seen += atomic_load(&pn.cover[i * w.sig_size + p]);
        if (seen != (eff[i] ? w.sig_size : 0))
            fail_msg("[%s] frame %lld: %d pixels passed, expected %lld", c->name, (long long)i,
                     seen, (long long)(eff[i] ? w.sig_size : 0));
    }
    assert_int_equal(atomic_load(&pn.pixels), n_eff * w.sig_size);
    probe_free(&pn);
    probe_free(&po);
    free(eff);
    free(rank);
    world_free(&w);
}

static void test_frames_needed(void **state)
{
    (void)state;
    const int64_t needed[] = {3, 10, 11, 20, 34};
    const cfg_t a = {"frames_needed, 2 threads", NAV57, SIG88, 2, 0, 0, 0};
    needed_run(&a, needed, 5, false);
    const cfg_t b = {"frames_needed, ROI, inline", NAV57, SIG88, 0, 3, 0, 1};
    needed_run(&b, needed, 5, false);
    const cfg_t c = {"frames_needed, 3 threads, 7 partitions, bands", NAV57, SIG88, 3, 7, 64, 0};
    needed_run(&c, needed, 5, false);
    /* another UDF without a list: every frame is read */
    const cfg_t d = {"frames_needed with another UDF", NAV57, SIG88, 2, 4, 0, 0};
    needed_run(&d, needed, 5, true);
}

/* ---- sig_rows: UDFs that read a band of rows -------------------------------- */

typedef struct band_ud {
    probe_t pr;
    int64_t r0, r1; /* rows declared */
} band_ud_t;

static int band_init(tsr_udf_init_t *init)
{
    band_ud_t *u = init->user_data;
    declare(init, "bsum", TSR_KIND_NAV, TSR_F64, 0, 0, NULL);
    init->input_dtype = TSR_F64;
    init->method = TSR_METHOD_TILE;
    init->sig_rows_start = u->r0;
    init->sig_rows_end = u->r1;
    return 0;
}

static int band_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    band_ud_t *u = c->user_data;
    check_tile(&u->pr, c, t);
    const double *d = t->data;
    double *out = c->bufs[0].data;
    int64_t lo = u->r0 * u->pr.row_len, hi = u->r1 * u->pr.row_len;
    for (int64_t r = 0; r < t->depth; r++)
        for (int64_t p = 0; p < t->sig_len; p++) {
            int64_t q = t->sig_start + p;
            if (q >= lo && q < hi) /* another UDF may widen the tiles */
                out[r] += d[r * t->sig_len + p];
        }
    return 0;
}

static const tsr_udf_def_t band_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "band",
    .init = band_init,
    .process_tile = band_tile,
};

/* Run band UDFs (and ssum if full): the results are right, and exactly the
 * rows [want0, want1) of every selected frame were read. */
static void band_run(const cfg_t *c, band_ud_t *b, int nb, bool full, int64_t want0, int64_t want1)
{
    world_t w;
    world_init(&w, c);
    tsr_udf_t *udfs[4] = {0};
    probe_t po;
    probe_init(&po, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    for (int k = 0; k < nb; k++) {
        probe_init(&b[k].pr, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
        b[k].pr.want_dtype = TSR_F64;
        udfs[k] = custom(&w, &band_def, &b[k]);
    }
    if (full)
        udfs[nb] = custom(&w, &ssum_def, &po);
    tsr_run_t *run = start(&w, udfs, (size_t)nb + full, NULL);
    wait_ok(&w, run);
    const tsr_results_t *res;
    assert_int_equal(tsr_run_results(run, &res), 0);
    for (int k = 0; k < nb; k++) {
        tsr_array_t a;
        find(&w, res, k, "bsum", &a);
        check_probe(&b[k].pr);
        for (int64_t i = 0; i < w.nav_size; i++) {
            if (!w.sel[i])
                continue;
            double want = 0;
            for (int64_t q = b[k].r0 * w.row_len; q < b[k].r1 * w.row_len; q++)
                want += w.src[i * w.sig_size + q];
            double got = ((const double *)a.data)[i];
            if (got != want)
                fail_msg("[%s] band %d frame %lld: %g, expected %g", c->name, k, (long long)i, got,
                         want);
            for (int64_t q = 0; q < w.sig_size; q++) {
                int seen = atomic_load(&b[k].pr.cover[i * w.sig_size + q]);
                int exp = q >= want0 * w.row_len && q < want1 * w.row_len;
                if (seen != exp)
                    fail_msg("[%s] band %d frame %lld pixel %lld passed %d times, expected %d",
                             c->name, k, (long long)i, (long long)q, seen, exp);
            }
        }
        probe_free(&b[k].pr);
        tsr_udf_free(udfs[k]);
    }
    tsr_run_free(run);
    if (full)
        tsr_udf_free(udfs[nb]);
    probe_free(&po);
    world_free(&w);
}

static void test_sig_rows(void **state)
{
    (void)state;
    /* SIG88: 8 rows of 8; small tile budgets cut the band into bands */
    const cfg_t a = {"sig_rows, 2 threads", NAV57, SIG88, 2, 0, 0, 0};
    band_ud_t one[1] = {{.r0 = 2, .r1 = 5}};
    band_run(&a, one, 1, false, 2, 5);
    const cfg_t b = {"sig_rows, ROI, inline, row bands", NAV57, SIG88, 0, 3, 16, 1};
    band_ud_t two[2] = {{.r0 = 1, .r1 = 3}, {.r0 = 5, .r1 = 7}};
    band_run(&b, two, 2, false, 1, 7); /* the union's extent */
    const cfg_t c = {"sig_rows with a UDF reading all", NAV57, SIG88, 2, 4, 0, 0};
    band_ud_t three[1] = {{.r0 = 3, .r1 = 4}};
    band_run(&c, three, 1, true, 0, 8);
}

/* ---- failures -------------------------------------------------------------- */

static void fail_run(const cfg_t *c, int where, int code, const char *in_msg)
{
    world_t w;
    world_init(&w, c);
    probe_t pa, pb;
    probe_init(&pa, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    probe_init(&pb, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    /* the failing one is the first UDF, a healthy one follows */
    probe_t *bad = where == 2 || where == 3 ? &pb : &pa;
    bad->fail_where = where;
    bad->fail_at = 17;
    bad->fail_code = code;
    tsr_udf_t *udfs[3];
    if (where == 2 || where == 3) {
        udfs[0] = custom(&w, &ssum_def, &pb);
        udfs[1] = custom(&w, &tmax_def, &pa);
    } else {
        udfs[0] = custom(&w, &tmax_def, &pa);
        udfs[1] = custom(&w, &ssum_def, &pb);
    }
    udfs[2] = custom(&w, &hist_def, &pb);
    tsr_run_t *run = start(&w, udfs, 3, NULL);
    int rc = tsr_run_wait(run);
    if (rc != code)
        fail_msg("[%s] wait returned %d (%s), expected %d (%s); message '%s'", c->name, rc,
                 tsr_err_name(rc), code, tsr_err_name(code), tsr_run_errmsg(run));
    ASSERT_CONTAINS(tsr_run_errmsg(run), in_msg);
    assert_int_equal(tsr_run_wait(run), code);
    const tsr_results_t *res = NULL;
    assert_int_equal(tsr_run_results(run, &res), code);
    assert_null(res);
    tsr_run_free(run);
    for (int i = 0; i < 3; i++)
        tsr_udf_free(udfs[i]);
    assert_int_equal(atomic_load(&pa.destroys), 1);
    probe_free(&pa);
    probe_free(&pb);
    world_free(&w); /* checks that nothing leaked */
}

static void test_udf_errors(void **state)
{
    (void)state;
    const cfg_t t2 = {"fail in process_tile, 2 threads", NAV57, SIG88, 2, 7, 0, 0};
    fail_run(&t2, 0, TSR_EIO, "boom at frame 17");
    const cfg_t t3 = {"fail in process_tile, 3 threads, bands", NAV57, SIG88, 3, 35, 64, 1};
    fail_run(&t3, 0, TSR_ECORRUPT, "boom at frame 17");
    const cfg_t in = {"fail in process_tile, inline", NAV57, SIG88, 0, 5, 0, 0};
    fail_run(&in, 0, TSR_EIO, "boom at frame 17");
    const cfg_t ts = {"fail in task_start", NAV57, SIG88, 2, 5, 0, 0};
    fail_run(&ts, 1, TSR_EUDF, "task start refused");
    const cfg_t mg = {"fail in merge", NAV57, SIG88, 2, 5, 0, 0};
    fail_run(&mg, 2, TSR_EINVAL, "merge refused");
}

/* finalize failing on the first of several UDFs: the run reports it and
 * every buffer of every UDF is freed. */
static void test_finalize_error(void **state)
{
    (void)state;
    const cfg_t in = {"fail in finalize, inline", NAV57, SIG88, 0, 5, 0, 0};
    fail_run(&in, 3, TSR_EUDF, "finalize refused");
    const cfg_t th = {"fail in finalize, 2 threads", NAV57, SIG88, 2, 5, 0, 1};
    fail_run(&th, 3, TSR_ERANGE, "finalize refused");
}

static void test_init_errors(void **state)
{
    (void)state;
    const cfg_t c = {"init errors", NAV57, SIG88, 2, 0, 0, 0};
    world_t w;
    world_init(&w, &c);
    probe_t ok, bad;
    probe_init(&ok, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    probe_init(&bad, w.src, w.nav_size, w.sig_size, w.row_len, w.sel, w.rank);
    bad.fail_where = 4;
    bad.fail_code = TSR_EINVAL;
    tsr_udf_t *udfs[2] = {custom(&w, &tmax_def, &ok), custom(&w, &tmax_def, &bad)};
    tsr_run_t *run = (tsr_run_t *)&ok; /* must stay untouched */
    int rc = tsr_run_start(w.ctx, w.ds, udfs, 2, NULL, &run);
    assert_int_equal(rc, TSR_EINVAL);
    assert_ptr_equal(run, (tsr_run_t *)&ok);
    ASSERT_CONTAINS(tsr_ctx_errmsg(w.ctx), "parameter 'level' is out of range");
    /* the healthy UDF's state and the failed init's state were destroyed */
    assert_int_equal(atomic_load(&ok.destroys), 1);
    assert_int_equal(atomic_load(&bad.destroys), 1);
    assert_int_equal(atomic_load(&ok.calls) + atomic_load(&bad.calls), 0);
    tsr_udf_free(udfs[0]);
    tsr_udf_free(udfs[1]);

    /* malformed definitions and declarations */
    static const tsr_udf_def_t no_merge = {.abi_version = TSR_UDF_ABI_VERSION,
                                           .name = "nomerge",
                                           .init = ssum_init,
                                           .process_tile = ssum_tile};
    tsr_udf_t *u = custom(&w, &no_merge, &ok);
    assert_int_equal(tsr_run_start(w.ctx, w.ds, &u, 1, NULL, &run), TSR_EINVAL);
    ASSERT_CONTAINS(tsr_ctx_errmsg(w.ctx), "merge");
    tsr_udf_free(u);
    static const tsr_udf_def_t no_process = {.abi_version = TSR_UDF_ABI_VERSION,
                                             .name = "noproc",
                                             .init = pframe_init,
                                             .process_tile = tmax_tile};
    u = custom(&w, &no_process, &ok);
    assert_int_equal(tsr_run_start(w.ctx, w.ds, &u, 1, NULL, &run), TSR_EINVAL);
    tsr_udf_free(u);
    static const tsr_udf_def_t old_abi = {.abi_version = 99, .name = "old", .init = hist_init};
    assert_true(tsr_udf_new_custom(w.ctx, &old_abi, NULL, NULL, &u) < 0);
    static const tsr_udf_def_t no_init = {.abi_version = TSR_UDF_ABI_VERSION, .name = "x"};
    assert_true(tsr_udf_new_custom(w.ctx, &no_init, NULL, NULL, &u) < 0);
    /* parameters checked against the (empty) schema */
    tsr_params_t *p;
    assert_int_equal(tsr_params_new(w.ctx, &p), 0);
    assert_int_equal(tsr_params_add(p, "level", "3"), 0);
    assert_int_equal(tsr_udf_new_custom(w.ctx, &hist_def, NULL, p, &u), TSR_EINVAL);
    ASSERT_CONTAINS(tsr_ctx_errmsg(w.ctx), "level");
    tsr_params_free(p);
    /* run arguments */
    u = custom(&w, &hist_def, &ok);
    assert_int_equal(tsr_run_start(w.ctx, w.ds, &u, 0, NULL, &run), TSR_EINVAL);
    assert_int_equal(tsr_run_start(w.ctx, NULL, &u, 1, NULL, &run), TSR_EINVAL);
    assert_int_equal(tsr_run_start(w.ctx, w.ds, NULL, 1, NULL, &run), TSR_EINVAL);
    tsr_udf_t *nul[1] = {NULL};
    assert_int_equal(tsr_run_start(w.ctx, w.ds, nul, 1, NULL, &run), TSR_EINVAL);
    tsr_udf_free(u);
    /* built-in lookup */
    assert_int_equal(tsr_udf_new(w.ctx, "no-such-udf", NULL, &u), TSR_ENOTFOUND);
    ASSERT_CONTAINS(tsr_ctx_errmsg(w.ctx), "no-such-udf");
    probe_free(&ok);
    probe_free(&bad);
    world_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_executors),
        cmocka_unit_test(test_partitions),
        cmocka_unit_test(test_row_bands),
        cmocka_unit_test(test_sig_rows),
        cmocka_unit_test(test_roi),
        cmocka_unit_test(test_shapes),
        cmocka_unit_test(test_corrections),
        cmocka_unit_test(test_corrections_all_excluded),
        cmocka_unit_test(test_tile_depth_preference),
        cmocka_unit_test(test_snapshots),
        cmocka_unit_test(test_snapshot_inline_before_wait),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_cancel_inline_and_free_running),
        cmocka_unit_test(test_input_dtypes),
        cmocka_unit_test(test_input_dtype_widening),
        cmocka_unit_test(test_frames_needed),
        cmocka_unit_test(test_udf_errors),
        cmocka_unit_test(test_finalize_error),
        cmocka_unit_test(test_init_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
