/*
 * test_sparse.c — sparse tiles (tsr_tile_t.sparse) through the public API:
 * which runs receive them, and that what they hold is the dataset.
 *
 * A raw_csr dataset is written here (a TOML file and three arrays) from a
 * known dense matrix.  A UDF defined here accepts sparse tiles, densifies
 * what it receives into a NAV × SIG copy and counts sparse and dense
 * tiles; the copy is compared with the matrix, frame by frame, so the
 * checks cover indptr, indices relative to sig_start, values, dtype
 * conversion, sync_offset (empty rows) and ROI.  The rule under test
 * (tessera.h, tsr_udf_init_t.accepts_sparse): sparse tiles only when the
 * dataset is sparse, no corrections apply and every UDF of the run accepts
 * them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tessera.h"

enum { NY = 5, NX = 7, SY = 6, SX = 5, NAV = NY * NX, SIG = SY * SX };

/* The dense dataset: about one pixel in five nonzero, values 1..97. */
static uint16_t value_at(int64_t i, int64_t p)
{
    uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)(p * 40503u);
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    return h % 5 == 0 ? (uint16_t)(1 + h % 97) : 0;
}

static char dir[64];
static char toml[128];

static void write_array(const char *name, const void *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* Write the dataset: indices of each row in descending order (CSR does not
 * sort them), int64 indptr, int32 indices, uint16 data. */
static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/tsr-test-sparse-%d", (int)getpid());
    char cmd[128];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    if (system(cmd) != 0)
        return -1;
    int64_t indptr[NAV + 1];
    int32_t indices[NAV * SIG];
    uint16_t data[NAV * SIG];
    int64_t nnz = 0;
    indptr[0] = 0;
    for (int64_t i = 0; i < NAV; i++) {
        for (int64_t p = SIG - 1; p >= 0; p--) {
            if (value_at(i, p)) {
                indices[nnz] = (int32_t)p;
                data[nnz++] = value_at(i, p);
            }
        }
        indptr[i + 1] = nnz;
    }
    write_array("m.indptr", indptr, sizeof indptr);
    write_array("m.indices", indices, (size_t)nnz * sizeof *indices);
    write_array("m.data", data, (size_t)nnz * sizeof *data);
    snprintf(toml, sizeof toml, "%s/m.toml", dir);
    FILE *f = fopen(toml, "w");
    if (!f)
        return -1;
    fprintf(f,
            "[params]\nfiletype = \"raw_csr\"\nnav_shape = [%d, %d]\nsig_shape = [%d, %d]\n\n"
            "[raw_csr]\nindptr_file = \"m.indptr\"\nindptr_dtype = \"<i8\"\n"
            "indices_file = \"m.indices\"\nindices_dtype = \"<i4\"\n"
            "data_file = \"m.data\"\ndata_dtype = \"<u2\"\n",
            NY, NX, SY, SX);
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- the probing UDF --------------------------------------------------- */

typedef struct seen {
    bool accept;      /* set accepts_sparse */
    bool meta_sparse; /* what init saw in meta->sparse */
    bool wide;        /* ask for float64 tiles */
    atomic_int sparse_tiles, dense_tiles, bad;
    double copy[NAV * SIG]; /* densified frames, by flat nav index */
} seen_t;

static int probe_init(tsr_udf_init_t *init)
{
    seen_t *s = init->user_data;
    s->meta_sparse = init->meta->sparse;
    init->n_buffers = 1;
    snprintf(init->buffers[0].name, sizeof init->buffers[0].name, "n");
    init->buffers[0].kind = TSR_KIND_NAV;
    init->buffers[0].dtype = TSR_F64;
    init->input_dtype = s->wide ? TSR_F64 : TSR_DTYPE_NATIVE;
    init->accepts_sparse = s->accept;
    return 0;
}

static double load(const void *p, tsr_dtype_t dt, int64_t i)
{
    switch (dt) {
    case TSR_U16: return ((const uint16_t *)p)[i];
    case TSR_F32: return ((const float *)p)[i];
    case TSR_F64: return ((const double *)p)[i];
    default: return -1e300;
    }
}

static int probe_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    seen_t *s = c->user_data;
    double *n = c->bufs[0].data;
    if (t->sparse) {
        atomic_fetch_add(&s->sparse_tiles, 1);
        const tsr_sparse_rows_t *sp = t->sparse;
        if (t->data || sp->indptr[0] != 0)
            atomic_fetch_add(&s->bad, 1);
        for (int64_t f = 0; f < t->depth; f++) {
            if (sp->indptr[f + 1] < sp->indptr[f])
                atomic_fetch_add(&s->bad, 1);
            for (int64_t e = sp->indptr[f]; e < sp->indptr[f + 1]; e++) {
                int64_t q = sp->indices[e];
                if (q < 0 || q >= t->sig_len) {
                    atomic_fetch_add(&s->bad, 1);
                    continue;
                }
                s->copy[(t->nav_index + f) * SIG + t->sig_start + q] +=
                    load(sp->values, t->dtype, e);
                n[f] += 1;
            }
        }
    } else {
        atomic_fetch_add(&s->dense_tiles, 1);
        for (int64_t f = 0; f < t->depth; f++)
            for (int64_t q = 0; q < t->sig_len; q++) {
                double v = load(t->data, t->dtype, f * t->sig_len + q);
                s->copy[(t->nav_index + f) * SIG + t->sig_start + q] += v;
                n[f] += v != 0;
            }
    }
    return 0;
}

static const tsr_udf_def_t probe_def = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "sparseprobe",
    .init = probe_init,
    .process_tile = probe_tile,
};

/* ---- helpers ----------------------------------------------------------- */

typedef struct opts {
    int threads;
    int64_t tile_bytes;
    const char *sync_offset;
    const uint8_t *roi;
    const float *dark;
} opts_t;

/* Run the probes (and a built-in `sum` if with_sum) over the dataset. */
static void run(seen_t **probes, int n_probes, bool with_sum, const opts_t *o)
{
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_THREADS, o->threads), 0);
    if (o->tile_bytes)
        assert_int_equal(tsr_ctx_set(ctx, TSR_OPT_TILE_BYTES, o->tile_bytes), 0);
    tsr_params_t *dp;
    assert_int_equal(tsr_params_new(ctx, &dp), 0);
    if (o->sync_offset) {
        assert_int_equal(tsr_params_add(dp, "sync_offset", o->sync_offset), 0);
        assert_int_equal(tsr_params_add(dp, "nav_shape", "30"), 0);
    }
    tsr_dataset_t *ds;
    int rc = tsr_dataset_open(ctx, "auto", toml, dp, &ds);
    if (rc)
        fail_msg("open: %s", tsr_ctx_errmsg(ctx));
    assert_string_equal(tsr_dataset_format(ds), "raw_csr");
    tsr_udf_t *udfs[4];
    int n = 0;
    for (int i = 0; i < n_probes; i++)
        assert_int_equal(tsr_udf_new_custom(ctx, &probe_def, probes[i], NULL, &udfs[n++]), 0);
    if (with_sum)
        assert_int_equal(tsr_udf_new(ctx, "sum", NULL, &udfs[n++]), 0);
    tsr_run_opts_t ro = {.roi = o->roi};
    ro.corrections.dark = o->dark;
    tsr_run_t *r;
    rc = tsr_run_start(ctx, ds, udfs, (size_t)n, &ro, &r);
    if (rc)
        fail_msg("start: %s", tsr_ctx_errmsg(ctx));
    rc = tsr_run_wait(r);
    if (rc)
        fail_msg("run: %s", tsr_run_errmsg(r));
    tsr_run_free(r);
    for (int i = 0; i < n; i++)
        tsr_udf_free(udfs[i]);
    tsr_dataset_close(ds);
    tsr_params_free(dp);
    tsr_ctx_free(ctx);
}

/* The copy must equal the dataset at every selected frame (image = frame +
 * sync_offset, zero outside) and be zero elsewhere. */
static void check_copy(const seen_t *s, int64_t so, int64_t frames, const uint8_t *roi, double dark)
{
    assert_int_equal(atomic_load(&s->bad), 0);
    for (int64_t f = 0; f < NAV; f++) {
        bool sel = f < frames && (!roi || roi[f]);
        for (int64_t p = 0; p < SIG; p++) {
            int64_t img = f + so;
            double want = !sel ? 0 : (img >= 0 && img < NAV ? value_at(img, p) : 0) - dark;
            double got = s->copy[f * SIG + p];
            if (got != want)
                fail_msg("frame %lld pixel %lld: got %g, want %g", (long long)f, (long long)p, got,
                         want);
        }
    }
}

/* ---- tests ------------------------------------------------------------- */

static void all_accept_gets_sparse(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 2; threads++) {
        for (int wide = 0; wide < 2; wide++) {
            static seen_t a, b;
            memset(&a, 0, sizeof a);
            memset(&b, 0, sizeof b);
            a.accept = b.accept = true;
            b.wide = wide; /* a second dtype: values converted for it */
            seen_t *p[2] = {&a, &b};
            opts_t o = {.threads = threads, .tile_bytes = 64};
            run(p, 2, true, &o);
            assert_true(a.meta_sparse);
            assert_true(atomic_load(&a.sparse_tiles) > 1);
            assert_int_equal(atomic_load(&a.dense_tiles), 0);
            assert_int_equal(atomic_load(&b.dense_tiles), 0);
            check_copy(&a, 0, NAV, NULL, 0);
            check_copy(&b, 0, NAV, NULL, 0);
        }
    }
}

static void one_refuses_all_dense(void **state)
{
    (void)state;
    static seen_t a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.accept = true;
    b.accept = false;
    seen_t *p[2] = {&a, &b};
    opts_t o = {.threads = 2};
    run(p, 2, true, &o);
    assert_true(b.meta_sparse);
    assert_int_equal(atomic_load(&a.sparse_tiles), 0);
    assert_true(atomic_load(&a.dense_tiles) > 0);
    check_copy(&a, 0, NAV, NULL, 0);
    check_copy(&b, 0, NAV, NULL, 0);
}

static void corrections_densify(void **state)
{
    (void)state;
    static seen_t a;
    memset(&a, 0, sizeof a);
    a.accept = true;
    float dark[SIG];
    for (int p = 0; p < SIG; p++)
        dark[p] = 0.5f;
    seen_t *p[1] = {&a};
    opts_t o = {.threads = 1, .dark = dark};
    run(p, 1, false, &o);
    assert_int_equal(atomic_load(&a.sparse_tiles), 0);
    check_copy(&a, 0, NAV, NULL, 0.5);
}

static void sync_offset_and_roi(void **state)
{
    (void)state;
    uint8_t roi[30];
    for (int i = 0; i < 30; i++)
        roi[i] = (uint8_t)(i % 3 != 1);
    const char *offsets[] = {"-4", "9"};
    for (int k = 0; k < 2; k++) {
        static seen_t a;
        memset(&a, 0, sizeof a);
        a.accept = true;
        seen_t *p[1] = {&a};
        opts_t o = {.threads = 2, .tile_bytes = 100, .sync_offset = offsets[k], .roi = roi};
        run(p, 1, false, &o);
        assert_true(atomic_load(&a.sparse_tiles) > 0);
        assert_int_equal(atomic_load(&a.dense_tiles), 0);
        check_copy(&a, atoi(offsets[k]), 30, roi, 0);
    }
}

static void dense_dataset_never_sparse(void **state)
{
    (void)state;
    static uint16_t frames[NAV * SIG];
    for (int64_t i = 0; i < NAV; i++)
        for (int64_t p = 0; p < SIG; p++)
            frames[i * SIG + p] = value_at(i, p);
    tsr_ctx_t *ctx;
    assert_int_equal(tsr_ctx_new(&ctx), 0);
    tsr_shape_t nav = {2, {NY, NX}}, sig = {2, {SY, SX}};
    tsr_dataset_t *ds;
    assert_int_equal(tsr_dataset_from_memory(ctx, frames, TSR_U16, &nav, &sig, false, &ds), 0);
    static seen_t a;
    memset(&a, 0, sizeof a);
    a.accept = true;
    tsr_udf_t *u;
    assert_int_equal(tsr_udf_new_custom(ctx, &probe_def, &a, NULL, &u), 0);
    tsr_run_t *r;
    assert_int_equal(tsr_run_start(ctx, ds, &u, 1, NULL, &r), 0);
    assert_int_equal(tsr_run_wait(r), 0);
    tsr_run_free(r);
    assert_false(a.meta_sparse);
    assert_int_equal(atomic_load(&a.sparse_tiles), 0);
    check_copy(&a, 0, NAV, NULL, 0);
    tsr_udf_free(u);
    tsr_dataset_close(ds);
    tsr_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(all_accept_gets_sparse),     cmocka_unit_test(one_refuses_all_dense),
        cmocka_unit_test(corrections_densify),        cmocka_unit_test(sync_offset_and_roi),
        cmocka_unit_test(dense_dataset_never_sparse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
