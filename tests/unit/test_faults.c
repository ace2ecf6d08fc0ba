/*
 * test_faults.c — fault injection in the manner of SQLite's malloc tests:
 * an allocator hook that fails the Nth allocation, for N = 1, 2, … until a
 * whole scenario (context, dataset, UDFs, run, results, snapshot, frees)
 * completes without reaching the Nth allocation.  Every injected failure
 * must surface as a negative code with a message on the object that failed,
 * and once everything is freed the hook must hold no block (no leak).
 *
 * The Nth read cannot be failed through a hook, so the read faults are made
 * by truncating a raw file after it was opened (ftruncate): the run must end
 * with TSR_ECORRUPT or TSR_EIO and a message naming the file, with each
 * I/O backend.  The mmap case runs in a child process, so that a SIGBUS
 * (reading a mapping past the new end of the file) is reported as a test
 * failure instead of killing the whole suite.
 *
 * Results of the runs that succeed are checked against sums computed here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tessera.h"

#define ASSERT_CONTAINS(hay, needle)                                        \
    do {                                                                    \
        const char *h_ = (hay), *n_ = (needle);                             \
        if (!h_ || !strstr(h_, n_))                                         \
            fail_msg("'%s' does not contain '%s'", h_ ? h_ : "(null)", n_); \
    } while (0)

enum { NAV_H = 5, NAV_W = 7, NF = NAV_H * NAV_W, SIG_H = 8, SIG_W = 8, NP = SIG_H * SIG_W };

static uint16_t pix(int64_t i, int64_t p)
{
    return (uint16_t)((i * 37 + p * 11 + (i * p) % 7) % 1000);
}

/* ---- the faulty allocator ------------------------------------------------ */

typedef struct faulty {
    atomic_long calls;  /* malloc + realloc calls so far */
    atomic_long live;   /* blocks held */
    atomic_long failed; /* failures injected */
    long fail_at;       /* fail this call (1-based); 0 = never */
    bool persistent;    /* fail every call from fail_at on */
} faulty_t;

static bool should_fail(faulty_t *f)
{
    long k = atomic_fetch_add(&f->calls, 1) + 1;
    if (f->fail_at && (k == f->fail_at || (f->persistent && k > f->fail_at))) {
        atomic_fetch_add(&f->failed, 1);
        return true;
    }
    return false;
}

static void *f_malloc(void *o, size_t n)
{
    faulty_t *f = o;
    if (should_fail(f))
        return NULL;
    void *p = malloc(n);
    if (p)
        atomic_fetch_add(&f->live, 1);
    return p;
}

static void *f_realloc(void *o, void *ptr, size_t n)
{
    faulty_t *f = o;
    if (should_fail(f))
        return NULL;
    void *p = realloc(ptr, n);
    if (p && !ptr)
        atomic_fetch_add(&f->live, 1);
    return p;
}

static void f_free(void *o, void *p)
{
    faulty_t *f = o;
    if (p)
        atomic_fetch_sub(&f->live, 1);
    free(p);
}

/* ---- one scenario -------------------------------------------------------- */

typedef struct scenario {
    const char *name;
    int threads;      /* 0: inline */
    bool from_file;   /* raw file instead of a memory dataset */
    const char *path; /* the raw file */
    bool roi;         /* a ROI and a dark frame */
} scenario_t;

static uint16_t g_data[NF * NP];
static uint8_t g_roi[NF];
static float g_dark[NP];

/* What a failed step must look like: a negative code and, where there is
 * an object to hold it, a message. */
#define STEP(call, msg_src)                                                                    \
    do {                                                                                       \
        rc = (call);                                                                           \
        if (rc) {                                                                              \
            if (rc > 0)                                                                        \
                fail_msg("[%s, N=%ld] %s returned %d (positive)", sc->name, f->fail_at, #call, \
                         rc);                                                                  \
            const char *m_ = (msg_src);                                                        \
            if (m_ && !m_[0])                                                                  \
                fail_msg("[%s, N=%ld] %s failed with %d (%s) and no message", sc->name,        \
                         f->fail_at, #call, rc, tsr_err_name(rc));                             \
            goto done;                                                                         \
        }                                                                                      \
    } while (0)

static void check_results(const scenario_t *sc, long n, const tsr_results_t *res)
{
    double sum[NP] = {0}, mean[NP], var[NP] = {0};
    int64_t nsel = 0;
    for (int64_t i = 0; i < NF; i++) {
        if (sc->roi && !g_roi[i])
            continue;
        nsel++;
        for (int p = 0; p < NP; p++)
            sum[p] += g_data[i * NP + p] - (sc->roi ? (double)g_dark[p] : 0.0);
    }
    for (int p = 0; p < NP; p++)
        mean[p] = sum[p] / (double)nsel;
    for (int64_t i = 0; i < NF; i++) {
        if (sc->roi && !g_roi[i])
            continue;
        for (int p = 0; p < NP; p++) {
            double d = g_data[i * NP + p] - (sc->roi ? (double)g_dark[p] : 0.0) - mean[p];
            var[p] += d * d;
        }
    }
    tsr_array_t a, v, m;
    assert_int_equal(tsr_results_find(res, 0, "intensity", &a), 0);
    assert_int_equal(tsr_results_find(res, 1, "var", &v), 0);
    assert_int_equal(tsr_results_find(res, 1, "mean", &m), 0);
    for (int p = 0; p < NP; p++) {
        double s = ((const double *)a.data)[p];
        if (fabs(s - sum[p]) > 1e-9 * fabs(sum[p]) + 1e-9)
            fail_msg("[%s, N=%ld] intensity[%d] = %.17g, expected %.17g", sc->name, n, p, s,
                     sum[p]);
        double vv = ((const double *)v.data)[p], mm = ((const double *)m.data)[p];
        if (fabs(vv - var[p] / (double)nsel) > 1e-9 * (var[p] / (double)nsel) + 1e-9 ||
            fabs(mm - mean[p]) > 1e-9 * fabs(mean[p]) + 1e-9)
            fail_msg("[%s, N=%ld] pixel %d: var %.17g mean %.17g, expected %.17g %.17g", sc->name,
                     n, p, vv, mm, var[p] / (double)nsel, mean[p]);
    }
}

/* Run the scenario once with f->fail_at set; returns 0 on success. */
static int run_scenario(const scenario_t *sc, faulty_t *f)
{
    tsr_allocator_t a = {f_malloc, f_realloc, f_free, f};
    tsr_ctx_t *ctx = NULL;
    tsr_dataset_t *ds = NULL;
    tsr_params_t *p = NULL;
    tsr_udf_t *udfs[2] = {NULL, NULL};
    tsr_run_t *run = NULL;
    tsr_results_t *snap = NULL;
    int rc = tsr_ctx_new_with_allocator(&a, &ctx);
    if (rc) {
        if (rc != TSR_ENOMEM)
            fail_msg("[%s, N=%ld] tsr_ctx_new_with_allocator: %d", sc->name, f->fail_at, rc);
        goto done;
    }
    if (sc->threads) {
        STEP(tsr_ctx_set(ctx, TSR_OPT_THREADS, sc->threads), tsr_ctx_errmsg(ctx));
        STEP(tsr_ctx_set(ctx, TSR_OPT_PARTITIONS, 4), tsr_ctx_errmsg(ctx));
    } else {
        STEP(tsr_ctx_set(ctx, TSR_OPT_EXECUTOR, TSR_EXEC_INLINE), tsr_ctx_errmsg(ctx));
        STEP(tsr_ctx_set(ctx, TSR_OPT_PARTITIONS, 3), tsr_ctx_errmsg(ctx));
    }
    STEP(tsr_ctx_set(ctx, TSR_OPT_TILE_BYTES, 1024), tsr_ctx_errmsg(ctx));
    if (sc->from_file) {
        STEP(tsr_params_new(ctx, &p), tsr_ctx_errmsg(ctx));
        STEP(tsr_params_add_json(
                 p, "{\"nav_shape\": [5, 7], \"sig_shape\": [8, 8], \"dtype\": \"<u2\"}"),
             tsr_ctx_errmsg(ctx));
        STEP(tsr_dataset_open(ctx, "raw", sc->path, p, &ds), tsr_ctx_errmsg(ctx));
    } else {
        tsr_shape_t nav = {.ndim = 2, .dims = {NAV_H, NAV_W}};
        tsr_shape_t sig = {.ndim = 2, .dims = {SIG_H, SIG_W}};
        STEP(tsr_dataset_from_memory(ctx, g_data, TSR_U16, &nav, &sig, true, &ds),
             tsr_ctx_errmsg(ctx));
    }
    STEP(tsr_udf_new(ctx, "sum", NULL, &udfs[0]), tsr_ctx_errmsg(ctx));
    STEP(tsr_udf_new(ctx, "stddev", NULL, &udfs[1]), tsr_ctx_errmsg(ctx));
    tsr_run_opts_t opts;
    memset(&opts, 0, sizeof opts);
    if (sc->roi) {
        opts.roi = g_roi;
        opts.corrections.dark = g_dark;
    }
    STEP(tsr_run_start(ctx, ds, udfs, 2, &opts, &run), tsr_ctx_errmsg(ctx));
    STEP(tsr_run_wait(run), tsr_run_errmsg(run));
    const tsr_results_t *res = NULL;
    STEP(tsr_run_results(run, &res), tsr_run_errmsg(run));
    check_results(sc, f->fail_at, res);
    STEP(tsr_run_snapshot(run, &snap), NULL);
    check_results(sc, f->fail_at, snap);
done:
    tsr_results_free(snap);
    tsr_run_free(run);
    tsr_udf_free(udfs[0]);
    tsr_udf_free(udfs[1]);
    tsr_params_free(p);
    tsr_dataset_close(ds);
    if (ctx) {
        size_t cur = 0;
        tsr_ctx_memory(ctx, &cur, NULL);
        if (cur != 0)
            fail_msg("[%s, N=%ld] %zu bytes still accounted on the context after freeing "
                     "everything (rc %d)",
                     sc->name, f->fail_at, cur, rc);
    }
    tsr_ctx_free(ctx);
    if (atomic_load(&f->live) != 0)
        fail_msg("[%s, N=%ld] %ld blocks leaked (rc %d %s)", sc->name, f->fail_at,
                 atomic_load(&f->live), rc, tsr_err_name(rc));
    if (rc != 0 && atomic_load(&f->failed) == 0)
        fail_msg("[%s, N=%ld] failed with %d (%s) without an injected failure", sc->name,
                 f->fail_at, rc, tsr_err_name(rc));
    return rc;
}

static void fault_loop(const scenario_t *sc, bool persistent)
{
    long n, failures = 0;
    for (n = 1; n < 5000; n++) {
        faulty_t f;
        memset(&f, 0, sizeof f);
        f.fail_at = n;
        f.persistent = persistent;
        int rc = run_scenario(sc, &f);
        failures += rc != 0;
        if (atomic_load(&f.calls) < n) {
            /* the Nth allocation was never reached: the whole scenario ran */
            if (rc != 0)
                fail_msg("[%s, N=%ld] no failure injected but rc %d", sc->name, n, rc);
            break;
        }
    }
    assert_true(n < 5000);
    assert_true(failures > 0);
    print_message("%s%s: %ld allocation points, %ld ended in an error\n", sc->name,
                  persistent ? " (persistent)" : "", n - 1, failures);
}

static void fill_globals(void)
{
    for (int64_t i = 0; i < NF; i++) {
        g_roi[i] = (i % 4) != 1;
        for (int p = 0; p < NP; p++)
            g_data[i * NP + p] = pix(i, p);
    }
    for (int p = 0; p < NP; p++)
        g_dark[p] = (float)(p % 3) * 0.5f;
}

static void test_alloc_faults_inline(void **state)
{
    (void)state;
    fill_globals();
    const scenario_t sc = {"memory, inline", 0, false, NULL, false};
    fault_loop(&sc, false);
    fault_loop(&sc, true);
}

static void test_alloc_faults_threads(void **state)
{
    (void)state;
    fill_globals();
    const scenario_t sc = {"memory, 2 threads", 2, false, NULL, false};
    fault_loop(&sc, false);
    const scenario_t sc3 = {"memory, 3 threads, ROI + dark", 3, false, NULL, true};
    fault_loop(&sc3, false);
}

/* Every file made here, removed at exit even when a test fails early. */
static char g_tmp[64][64];
static int g_ntmp;

static void remove_tmp(void)
{
    for (int i = 0; i < g_ntmp; i++)
        unlink(g_tmp[i]);
}

static void write_raw(char *path)
{
    snprintf(path, 64, "/tmp/tsr_ut_faults_XXXXXX.raw");
    int fd = mkstemps(path, 4);
    assert_true(fd >= 0);
    if (g_ntmp < 64)
        snprintf(g_tmp[g_ntmp++], sizeof g_tmp[0], "%s", path);
    assert_int_equal(write(fd, g_data, sizeof g_data), (ssize_t)sizeof g_data);
    close(fd);
}

static void test_alloc_faults_file(void **state)
{
    (void)state;
    fill_globals();
    char path[64];
    write_raw(path);
    const scenario_t sc = {"raw file, inline, ROI + dark", 0, true, path, true};
    fault_loop(&sc, false);
    const scenario_t sc2 = {"raw file, 2 threads", 2, true, path, false};
    fault_loop(&sc2, false);
    unlink(path);
}

/* ---- read faults: a file truncated after it was opened -------------------- */

/* Open, truncate to `keep` bytes, run "sum" and "stddev", free everything.
 * Plain C (no cmocka asserts: it also runs in a child process).  Returns
 * the wait status; *setup is set to a description if something other than
 * the run failed; msg receives the run's message. */
static int truncated_run(const char *path, int backend, int threads, off_t keep, char *msg,
                         size_t msglen, const char **setup)
{
    tsr_ctx_t *ctx = NULL;
    tsr_params_t *p = NULL;
    tsr_dataset_t *ds = NULL;
    tsr_udf_t *udfs[2] = {NULL, NULL};
    tsr_run_t *run = NULL;
    int rc = 0;
    *setup = NULL;
    msg[0] = 0;
#define SETUP(call)                                                      \
    do {                                                                 \
        if ((call) != 0) {                                               \
            *setup = #call;                                              \
            snprintf(msg, msglen, "%s", ctx ? tsr_ctx_errmsg(ctx) : ""); \
            goto done;                                                   \
        }                                                                \
    } while (0)
    SETUP(tsr_ctx_new(&ctx));
    SETUP(tsr_ctx_set(ctx, TSR_OPT_IO_BACKEND, backend));
    if (threads)
        SETUP(tsr_ctx_set(ctx, TSR_OPT_THREADS, threads));
    else
        SETUP(tsr_ctx_set(ctx, TSR_OPT_EXECUTOR, TSR_EXEC_INLINE));
    SETUP(tsr_ctx_set(ctx, TSR_OPT_PARTITIONS, 5));
    SETUP(tsr_params_new(ctx, &p));
    SETUP(tsr_params_add_kv(p, "nav_shape=5,7"));
    SETUP(tsr_params_add_kv(p, "sig_shape=8,8"));
    SETUP(tsr_params_add_kv(p, "dtype=<u2"));
    SETUP(tsr_dataset_open(ctx, "raw", path, p, &ds));
    /* the file shrinks under the open dataset */
    SETUP(truncate(path, keep));
    SETUP(tsr_udf_new(ctx, "sum", NULL, &udfs[0]));
    SETUP(tsr_udf_new(ctx, "stddev", NULL, &udfs[1]));
    SETUP(tsr_run_start(ctx, ds, udfs, 2, NULL, &run));
    rc = tsr_run_wait(run);
    snprintf(msg, msglen, "%s", tsr_run_errmsg(run));
    const tsr_results_t *res;
    if (rc != 0 && tsr_run_results(run, &res) >= 0)
        *setup = "tsr_run_results succeeded after a failed run";
#undef SETUP
done:
    tsr_run_free(run);
    tsr_udf_free(udfs[0]);
    tsr_udf_free(udfs[1]);
    tsr_dataset_close(ds);
    tsr_params_free(p);
    if (ctx) {
        size_t cur;
        tsr_ctx_memory(ctx, &cur, NULL);
        if (cur != 0 && !*setup)
            *setup = "memory still accounted on the context after freeing everything";
    }
    tsr_ctx_free(ctx);
    return rc;
}

static void test_truncated_pread(void **state)
{
    (void)state;
    fill_globals();
    const off_t keeps[] = {0, 1, (off_t)(NP * 2 * 10 + 17), (off_t)(NP * 2 * 34)};
    for (size_t k = 0; k < sizeof keeps / sizeof keeps[0]; k++)
        for (int threads = 0; threads <= 2; threads += 2) {
            char path[64], msg[600];
            const char *setup;
            write_raw(path);
            int rc = truncated_run(path, TSR_IO_PREAD, threads, keeps[k], msg, sizeof msg, &setup);
            unlink(path);
            if (setup)
                fail_msg("%s (message '%s')", setup, msg);
            if (rc != TSR_ECORRUPT && rc != TSR_EIO)
                fail_msg("pread backend, truncated to %lld bytes after open, %d threads: wait "
                         "returned %d (%s), expected TSR_ECORRUPT or TSR_EIO; message '%s'",
                         (long long)keeps[k], threads, rc, tsr_err_name(rc), msg);
            ASSERT_CONTAINS(msg, path);
        }
}

/* The same with the mmap backend, in a child process: reading a mapping
 * past the end of a file that shrank raises SIGBUS, which must not happen
 * (the engine must notice the truncation and fail cleanly). */
static void test_truncated_mmap(void **state)
{
    (void)state;
    fill_globals();
    const off_t keeps[] = {0, (off_t)(NP * 2 * 10 + 17)};
    for (size_t k = 0; k < sizeof keeps / sizeof keeps[0]; k++)
        for (int threads = 0; threads <= 2; threads += 2) {
            char path[64];
            write_raw(path);
            int pipefd[2];
            assert_int_equal(pipe(pipefd), 0);
            fflush(NULL);
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                char msg[600];
                const char *setup;
                /* cmocka catches these to report a crashing test; the child
                 * must die of them so that the parent sees the signal */
                signal(SIGBUS, SIG_DFL);
                signal(SIGSEGV, SIG_DFL);
                signal(SIGILL, SIG_DFL);
                signal(SIGFPE, SIG_DFL);
                close(pipefd[0]);
                int rc =
                    truncated_run(path, TSR_IO_MMAP, threads, keeps[k], msg, sizeof msg, &setup);
                char out[800];
                int len = snprintf(out, sizeof out, "%d|%s|%s", rc, setup ? setup : "", msg);
                if (write(pipefd[1], out, (size_t)len) < 0)
                    _exit(3);
                _exit(0);
            }
            close(pipefd[1]);
            char buf[801];
            ssize_t got = 0, r;
            while (got < 800 && (r = read(pipefd[0], buf + got, (size_t)(800 - got))) > 0)
                got += r;
            buf[got > 0 ? got : 0] = 0;
            close(pipefd[0]);
            int status = 0;
            assert_int_equal(waitpid(pid, &status, 0), pid);
            unlink(path);
            if (WIFSIGNALED(status))
                fail_msg("mmap backend, file truncated to %lld bytes after open, %d threads: "
                         "the process was killed by signal %d (%s) instead of the run failing "
                         "with TSR_ECORRUPT/TSR_EIO",
                         (long long)keeps[k], threads, WTERMSIG(status),
                         strsignal(WTERMSIG(status)));
            assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
            int rc = atoi(buf);
            char *f1 = strchr(buf, '|'), *f2 = f1 ? strchr(f1 + 1, '|') : NULL;
            assert_non_null(f2);
            *f2 = 0;
            if (f1[1])
                fail_msg("mmap child: %s (message '%s')", f1 + 1, f2 + 1);
            if (rc != TSR_ECORRUPT && rc != TSR_EIO)
                fail_msg("mmap backend, truncated to %lld bytes after open, %d threads: wait "
                         "returned %d (%s); message '%s'",
                         (long long)keeps[k], threads, rc, tsr_err_name(rc), f2 + 1);
            ASSERT_CONTAINS(f2 + 1, path);
        }
}

int main(void)
{
    atexit(remove_tmp);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc_faults_inline), cmocka_unit_test(test_alloc_faults_threads),
        cmocka_unit_test(test_alloc_faults_file),   cmocka_unit_test(test_truncated_pread),
        cmocka_unit_test(test_truncated_mmap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
