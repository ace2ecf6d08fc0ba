/*
 * tsr-bench.c — the benchmark driver: times runs of Tessera UDFs on one
 * dataset through the public API only (include/tessera.h), as an embedder
 * would call it, and prints one JSON line.
 *
 *   tsr-bench PATH [--format NAME] [--set KEY=VALUE]...
 *             --udf NAME [--param KEY=VALUE]... [--udf NAME [--param ...]]...
 *             [--threads N] [--executor threads|inline] [--io-backend NAME|N]
 *             [--backend-name LABEL] [--tile-bytes N] [--warmup N] [--repeat N]
 *             [--reuse-dataset] [--checksum-buffer NAME] [--case LABEL]
 *
 * A --param belongs to the --udf before it; all UDFs share one pass.  The
 * I/O backend is given by name (auto, pread, mmap) or by the numeric value of
 * a tsr_io_backend_t constant (bench/run.py reads the list from the header,
 * so backends added later need no change here); --backend-name labels it.
 *
 * What is timed: for each of `repeat` runs after `warmup` untimed ones, the
 * wall time from tsr_run_start() to the return of tsr_run_wait(), on the
 * monotonic clock.  Dataset opening, UDF creation and freeing the run are
 * outside.  The dataset is opened anew (untimed) before every run, so that
 * state it caches — the mmap backend's mapping, whose page tables stay
 * populated — does not carry over from one run to the next, as it does not
 * for a `tessera run`; --reuse-dataset keeps one dataset for all runs, as a
 * long-lived embedder (server, Python session) would.  Input bytes are the frames the run processes
 * (its progress total: all frames, or only the picked ones) times the bytes of one stored frame, so
 * GB/s (1e9 bytes per second) compares directly with the ceiling and numpy baselines, which count
 * the same way.
 *
 * Output: one JSON object on stdout, with "status": "ok", or "status": "n/a"
 * and the stage and message when the engine rejects the configuration (an
 * option value out of range, a backend that cannot open the file); the exit
 * status is then 3.  Usage errors exit with 2.  "checksum" is the sum of the
 * finite values of one result buffer of the first UDF (--checksum-buffer,
 * default: its first; for `sum`, the total of every pixel of every frame),
 * so run.py can check that the engine and the baselines did the same work.
 */
#include <tessera.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_UDFS 16
#define MAX_REPEAT 1000

/* ---- options ------------------------------------------------------------ */

typedef struct udf_arg {
    const char *name;
    tsr_params_t *params;
} udf_arg_t;

typedef struct opts {
    const char *path;
    const char *format;
    const char *label;
    const char *backend_name;
    const char *executor;
    const char *checksum_buffer;
    int64_t threads;
    int64_t backend;
    int64_t tile_bytes;
    int warmup;
    int repeat;
    bool reuse_dataset;
    udf_arg_t udfs[MAX_UDFS];
    int n_udfs;
    tsr_params_t *ds_params;
} opts_t;

static void usage(void)
{
    fputs("usage: tsr-bench PATH [--format NAME] [--set KEY=VALUE]...\n"
          "                 --udf NAME [--param KEY=VALUE]... [--udf NAME ...]\n"
          "                 [--threads N] [--executor threads|inline] [--io-backend NAME|N]\n"
          "                 [--backend-name LABEL] [--tile-bytes N] [--warmup N] [--repeat N]\n"
          "                 [--reuse-dataset] [--checksum-buffer NAME] [--case LABEL]\n",
          stderr);
}

static bool parse_int(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_backend(const char *s, int64_t *out)
{
    static const struct {
        const char *name;
        int value;
    } known[] = {{"auto", TSR_IO_AUTO}, {"pread", TSR_IO_PREAD}, {"mmap", TSR_IO_MMAP}};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(s, known[i].name)) {
            *out = known[i].value;
            return true;
        }
    return parse_int(s, 0, 1000, out);
}

/* ---- JSON output -------------------------------------------------------- */

/* A JSON string literal of s (quotes, backslashes and control characters
 * escaped). */
static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static void print_header(FILE *f, const opts_t *o)
{
    fputs("{\"tool\":\"tessera\",\"case\":", f);
    json_str(f, o->label);
    fputs(",\"udfs\":\"", f);
    for (int i = 0; i < o->n_udfs; i++)
        fprintf(f, "%s%s", i ? "," : "", o->udfs[i].name);
    fputs("\",\"path\":", f);
    json_str(f, o->path);
    fprintf(f, ",\"threads\":%lld,\"executor\":", (long long)o->threads);
    json_str(f, o->executor);
    fputs(",\"backend\":", f);
    json_str(f, o->backend_name);
    fprintf(f, ",\"backend_value\":%lld,\"tile_bytes\":%lld", (long long)o->backend,
            (long long)o->tile_bytes);
}

static int fail(const opts_t *o, const char *stage, int code, const char *msg)
{
    print_header(stdout, o);
    fputs(",\"status\":\"n/a\",\"stage\":", stdout);
    json_str(stdout, stage);
    fputs(",\"error\":", stdout);
    char buf[1024];
    snprintf(buf, sizeof buf, "%s: %s", tsr_err_name(code), msg && *msg ? msg : tsr_strerror(code));
    json_str(stdout, buf);
    fputs("}\n", stdout);
    return 3;
}

/* ---- helpers ------------------------------------------------------------ */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Element i of an array of type dt as a double (complex: the real part). */
static double load(const void *p, tsr_dtype_t dt, size_t i)
{
    switch (dt) {
    case TSR_U8: return ((const uint8_t *)p)[i];
    case TSR_U16: return ((const uint16_t *)p)[i];
    case TSR_U32: return ((const uint32_t *)p)[i];
    case TSR_U64: return (double)((const uint64_t *)p)[i];
    case TSR_I8: return ((const int8_t *)p)[i];
    case TSR_I16: return ((const int16_t *)p)[i];
    case TSR_I32: return ((const int32_t *)p)[i];
    case TSR_I64: return (double)((const int64_t *)p)[i];
    case TSR_F32: return ((const float *)p)[i];
    case TSR_F64: return ((const double *)p)[i];
    case TSR_C64: return ((const float *)p)[2 * i];
    case TSR_BOOL: return ((const uint8_t *)p)[i];
    default: return 0.0;
    }
}

/* Sum of the finite values of the first UDF's result buffer `name` (NULL:
 * the run's first result); NaN if there is none. */
static double checksum(tsr_run_t *run, const char *name)
{
    const tsr_results_t *res;
    tsr_array_t a;
    if (tsr_run_results(run, &res) || tsr_results_count(res) == 0)
        return NAN;
    if (name ? tsr_results_find(res, 0, name, &a) : tsr_results_get(res, 0, &a))
        return NAN;
    int64_t n = tsr_shape_size(&a.shape);
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double v = load(a.data, a.dtype, (size_t)i);
        if (isfinite(v))
            s += v;
    }
    return s;
}

/* ---- main --------------------------------------------------------------- */

static int parse_args(int argc, char **argv, tsr_ctx_t *ctx, opts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes = a[0] == '-' && a[1] == '-';
        if (!strcmp(a, "--reuse-dataset")) {
            o->reuse_dataset = true;
            continue;
        }
        if (takes && !v) {
            fprintf(stderr, "tsr-bench: %s needs a value\n", a);
            return -1;
        }
        bool ok = true;
        if (!takes) {
            if (o->path) {
                fprintf(stderr, "tsr-bench: more than one PATH ('%s')\n", a);
                return -1;
            }
            o->path = a;
            continue;
        } else if (!strcmp(a, "--format")) {
            o->format = v;
        } else if (!strcmp(a, "--set")) {
            ok = tsr_params_add_kv(o->ds_params, v) == 0;
        } else if (!strcmp(a, "--udf")) {
            if (o->n_udfs == MAX_UDFS) {
                fprintf(stderr, "tsr-bench: at most %d UDFs\n", MAX_UDFS);
                return -1;
            }
            o->udfs[o->n_udfs].name = v;
            ok = tsr_params_new(ctx, &o->udfs[o->n_udfs].params) == 0;
            o->n_udfs++;
        } else if (!strcmp(a, "--param")) {
            if (o->n_udfs == 0) {
                fprintf(stderr, "tsr-bench: --param before any --udf\n");
                return -1;
            }
            ok = tsr_params_add_kv(o->udfs[o->n_udfs - 1].params, v) == 0;
        } else if (!strcmp(a, "--threads")) {
            ok = parse_int(v, 0, 4096, &o->threads);
        } else if (!strcmp(a, "--executor")) {
            ok = !strcmp(v, "threads") || !strcmp(v, "inline");
            o->executor = v;
        } else if (!strcmp(a, "--io-backend")) {
            ok = parse_backend(v, &o->backend);
            if (!o->backend_name)
                o->backend_name = v;
        } else if (!strcmp(a, "--backend-name")) {
            o->backend_name = v;
        } else if (!strcmp(a, "--tile-bytes")) {
            ok = parse_int(v, 0, INT64_MAX, &o->tile_bytes);
        } else if (!strcmp(a, "--warmup")) {
            int64_t n;
            ok = parse_int(v, 0, MAX_REPEAT, &n);
            o->warmup = (int)n;
        } else if (!strcmp(a, "--repeat")) {
            int64_t n;
            ok = parse_int(v, 1, MAX_REPEAT, &n);
            o->repeat = (int)n;
        } else if (!strcmp(a, "--checksum-buffer")) {
            o->checksum_buffer = v;
        } else if (!strcmp(a, "--case")) {
            o->label = v;
        } else {
            fprintf(stderr, "tsr-bench: unknown option %s\n", a);
            return -1;
        }
        if (!ok) {
            fprintf(stderr, "tsr-bench: bad value for %s: '%s'\n", a, v);
            return -1;
        }
        i++;
    }
    if (!o->path || o->n_udfs == 0) {
        fprintf(stderr, "tsr-bench: PATH and at least one --udf are required\n");
        return -1;
    }
    if (!o->label)
        o->label = o->udfs[0].name;
    if (!o->backend_name)
        o->backend_name = "auto";
    return 0;
}

int main(int argc, char **argv)
{
    tsr_ctx_t *ctx = NULL;
    tsr_dataset_t *ds = NULL;
    tsr_udf_t *udfs[MAX_UDFS] = {0};
    opts_t o = {.format = "auto", .executor = "threads", .warmup = 1, .repeat = 5};
    double times[MAX_REPEAT];
    int rc, status = 0;

    if (tsr_ctx_new(&ctx) || tsr_params_new(ctx, &o.ds_params)) {
        fprintf(stderr, "tsr-bench: out of memory\n");
        return 1;
    }
    if (parse_args(argc, argv, ctx, &o)) {
        usage();
        status = 2;
        goto done;
    }

    /* Options: a value the engine refuses makes the case "n/a". */
    const struct {
        tsr_option_t opt;
        int64_t value;
        const char *stage;
    } set[] = {
        {TSR_OPT_THREADS, o.threads, "threads"},
        {TSR_OPT_EXECUTOR, strcmp(o.executor, "inline") ? TSR_EXEC_THREADS : TSR_EXEC_INLINE,
         "executor"},
        {TSR_OPT_IO_BACKEND, o.backend, "io-backend"},
        {TSR_OPT_TILE_BYTES, o.tile_bytes, "tile-bytes"},
    };
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        if ((rc = tsr_ctx_set(ctx, set[i].opt, set[i].value))) {
            status = fail(&o, set[i].stage, rc, tsr_ctx_errmsg(ctx));
            goto done;
        }
    if ((rc = tsr_dataset_open(ctx, o.format, o.path, o.ds_params, &ds))) {
        status = fail(&o, "open", rc, tsr_ctx_errmsg(ctx));
        goto done;
    }
    for (int i = 0; i < o.n_udfs; i++)
        if ((rc = tsr_udf_new(ctx, o.udfs[i].name, o.udfs[i].params, &udfs[i]))) {
            status = fail(&o, "udf", rc, tsr_ctx_errmsg(ctx));
            goto done;
        }

    tsr_shape_t sig;
    tsr_dataset_sig_shape(ds, &sig);
    const int64_t frame_bytes =
        tsr_shape_size(&sig) * (int64_t)tsr_dtype_size(tsr_dataset_dtype(ds));
    int64_t frames = 0;
    double sum = NAN;

    for (int r = 0; r < o.warmup + o.repeat; r++) {
        tsr_run_t *run = NULL;
        if (r > 0 && !o.reuse_dataset) {
            tsr_dataset_close(ds);
            ds = NULL;
            if ((rc = tsr_dataset_open(ctx, o.format, o.path, o.ds_params, &ds))) {
                status = fail(&o, "open", rc, tsr_ctx_errmsg(ctx));
                goto done;
            }
        }
        double t0 = now_s();
        if ((rc = tsr_run_start(ctx, ds, udfs, (size_t)o.n_udfs, NULL, &run))) {
            status = fail(&o, "start", rc, tsr_ctx_errmsg(ctx));
            goto done;
        }
        rc = tsr_run_wait(run);
        double t1 = now_s();
        if (rc) {
            status = fail(&o, "run", rc, tsr_run_errmsg(run));
            tsr_run_free(run);
            goto done;
        }
        if (r == 0) {
            int64_t done_frames;
            tsr_run_progress(run, &done_frames, &frames);
            sum = checksum(run, o.checksum_buffer);
        }
        if (r >= o.warmup)
            times[r - o.warmup] = t1 - t0;
        tsr_run_free(run);
    }

    double sorted[MAX_REPEAT];
    memcpy(sorted, times, (size_t)o.repeat * sizeof *times);
    qsort(sorted, (size_t)o.repeat, sizeof *sorted, cmp_double);
    const double tmin = sorted[0], tmax = sorted[o.repeat - 1];
    const double tmed = o.repeat % 2 ? sorted[o.repeat / 2]
                                     : 0.5 * (sorted[o.repeat / 2 - 1] + sorted[o.repeat / 2]);
    const double bytes = (double)frames * (double)frame_bytes;
    int64_t actual_threads = 0;
    tsr_ctx_get(ctx, TSR_OPT_THREADS, &actual_threads);
    size_t mem_now, mem_peak;
    tsr_ctx_memory(ctx, &mem_now, &mem_peak);

    print_header(stdout, &o);
    printf(",\"status\":\"ok\",\"reuse_dataset\":%s,\"format\":",
           o.reuse_dataset ? "true" : "false");
    json_str(stdout, tsr_dataset_format(ds));
    printf(",\"threads_actual\":%lld,\"frames\":%lld,\"frame_bytes\":%lld,\"bytes\":%.0f,"
           "\"warmup\":%d,\"repeat\":%d,\"times_s\":[",
           (long long)actual_threads, (long long)frames, (long long)frame_bytes, bytes, o.warmup,
           o.repeat);
    for (int i = 0; i < o.repeat; i++)
        printf("%s%.6f", i ? "," : "", times[i]);
    printf("],\"min_s\":%.6f,\"median_s\":%.6f,\"max_s\":%.6f,\"gbps_median\":%.4f,"
           "\"gbps_min\":%.4f,\"gbps_max\":%.4f,\"checksum\":%.17g,\"mem_peak_bytes\":%zu}\n",
           tmin, tmed, tmax, bytes / tmed / 1e9, bytes / tmax / 1e9, bytes / tmin / 1e9,
           isfinite(sum) ? sum : 0.0, mem_peak);

done:
    for (int i = 0; i < o.n_udfs; i++) {
        tsr_udf_free(udfs[i]);
        tsr_params_free(o.udfs[i].params);
    }
    tsr_dataset_close(ds);
    tsr_params_free(o.ds_params);
    tsr_ctx_free(ctx);
    return status;
}
