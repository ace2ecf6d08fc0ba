/*
 * cmd_run.c — `tessera run UDF[,UDF...] PATH ... -o OUT`: one pass of one or
 * more UDFs over a dataset, with an optional ROI and corrections, written to
 * npy/HDF5/TIFF/PNG.
 *
 * Order of work: everything that can be checked from the command line alone
 * (options, UDF names, parameter names against the UDF schemas, ROI syntax,
 * output type) is checked first and reported as a usage error (exit 2)
 * before any file is opened; then the dataset is opened, the ROI and
 * corrections are built against its shapes, and the run starts.  All
 * resources of a command live in one run_state_t, released in one place.
 *
 * Parameter routing: --param KEY=VALUE goes to every UDF of the run whose
 * schema has KEY; --param UDF.KEY=VALUE only to the UDFs named UDF.  A
 * parameter no UDF of the run knows is an error naming it.
 */
#include "args.h"
#include "cli.h"
#include "npyload.h"
#include "output.h"
#include "progress.h"
#include "roi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char RUN_USAGE[] =
    "usage: tessera run UDF[,UDF...] PATH [options] -o OUT\n"
    "\n"
    "Run one or more analyses (UDFs, see 'tessera list udfs') in one pass over\n"
    "a dataset and write their results.\n"
    "\n"
    "dataset:\n"
    "  --format NAME          dataset format (default: auto-detect)\n"
    "  --set KEY=VALUE        dataset parameter, e.g. nav_shape=4,5 sig_shape=16,16\n"
    "                         dtype=>u2 sync_offset=-2 (may repeat)\n"
    "analysis:\n"
    "  --param KEY=VALUE      UDF parameter, given to every UDF of the run that has KEY;\n"
    "                         UDF.KEY=VALUE gives it to that UDF only (may repeat)\n"
    "  --roi SPEC             only these scan positions: rect:y,x,h,w, disk:cy,cx,r\n"
    "                         (2-D scans) or FILE.npy (bool/integer mask of the nav shape)\n"
    "  --dark FILE.npy        dark frame to subtract (sig shape)\n"
    "  --gain FILE.npy        gain map to multiply by (sig shape)\n"
    "  --exclude FILE.npy     excluded pixels, nonzero = patched from neighbours (sig shape)\n"
    "  --no-dataset-corrections  do not apply the corrections that came with the dataset\n"
    "                         (e.g. a SEQ file's dark/gain/bad pixels); --dark, --gain\n"
    "                         or --exclude replace them anyway\n"
    "  --guess                guess parameters from the data first (UDFs that have a guess,\n"
    "                         e.g. com: cy, cx, scan_rotation, flip_y), print them as\n"
    "                         'guess UDF KEY=VALUE' and run with them; other --param values\n"
    "                         are hints\n"
    "execution:\n"
    "  --threads N            worker threads (0 = one per core, the default)\n"
    "  --executor KIND        inline or threads (default)\n"
    "  --partitions N         number of partitions (0 = by size, the default)\n"
    "  --tile-bytes N         cache budget of one tile, e.g. 1M (0 = default)\n"
    "  --io-backend KIND      auto (default), pread, mmap, direct (O_DIRECT) or\n"
    "                         uring (io_uring with read-ahead)\n"
    "output:\n"
    "  -o, --output OUT       DIR/ (one <udf>.<buffer>.npy per buffer), FILE.h5 or\n"
    "                         FILE.hdf5 (every buffer), FILE.npy, FILE.tif or FILE.png\n"
    "                         (one buffer)\n"
    "  --buffer NAME          the buffer for .npy/.tif/.png: BUFFER or UDF.BUFFER\n"
    "  --colormap NAME        PNG colormap: viridis (default), magma, gray\n"
    "  --log                  PNG on a log scale\n"
    "  --quiet                no progress bar and no 'wrote PATH' lines\n"
    "  -h, --help             show this help\n"
    "\n"
    "Each file written is reported on stdout as 'wrote PATH'.\n";

enum {
    OPT_FORMAT = 1,
    OPT_SET,
    OPT_PARAM,
    OPT_ROI,
    OPT_THREADS,
    OPT_EXECUTOR,
    OPT_PARTITIONS,
    OPT_TILE_BYTES,
    OPT_IO_BACKEND,
    OPT_BUFFER,
    OPT_COLORMAP,
    OPT_LOG,
    OPT_DARK,
    OPT_GAIN,
    OPT_EXCLUDE,
    OPT_NO_DS_CORR,
    OPT_GUESS,
    OPT_QUIET,
    OPT_OUTPUT,
    OPT_HELP
};

static const cli_opt_t RUN_OPTS[] = {
    {"--format", NULL, true, OPT_FORMAT},
    {"--set", NULL, true, OPT_SET},
    {"--param", NULL, true, OPT_PARAM},
    {"--roi", NULL, true, OPT_ROI},
    {"--threads", NULL, true, OPT_THREADS},
    {"--executor", NULL, true, OPT_EXECUTOR},
    {"--partitions", NULL, true, OPT_PARTITIONS},
    {"--tile-bytes", NULL, true, OPT_TILE_BYTES},
    {"--io-backend", NULL, true, OPT_IO_BACKEND},
    {"--buffer", NULL, true, OPT_BUFFER},
    {"--colormap", NULL, true, OPT_COLORMAP},
    {"--log", NULL, false, OPT_LOG},
    {"--dark", NULL, true, OPT_DARK},
    {"--gain", NULL, true, OPT_GAIN},
    {"--exclude", NULL, true, OPT_EXCLUDE},
    {"--no-dataset-corrections", NULL, false, OPT_NO_DS_CORR},
    {"--guess", NULL, false, OPT_GUESS},
    {"--quiet", "-q", false, OPT_QUIET},
    {"--output", "-o", true, OPT_OUTPUT},
    {"--help", "-h", false, OPT_HELP},
};

/* Context options in the order they are applied; -1 = not given. */
enum { CTXO_THREADS, CTXO_EXECUTOR, CTXO_PARTITIONS, CTXO_TILE_BYTES, CTXO_IO_BACKEND, N_CTXO };

static const struct {
    tsr_option_t opt;
    const char *flag;
} CTX_OPTS[N_CTXO] = {
    [CTXO_THREADS] = {TSR_OPT_THREADS, "--threads"},
    [CTXO_EXECUTOR] = {TSR_OPT_EXECUTOR, "--executor"},
    [CTXO_PARTITIONS] = {TSR_OPT_PARTITIONS, "--partitions"},
    [CTXO_TILE_BYTES] = {TSR_OPT_TILE_BYTES, "--tile-bytes"},
    [CTXO_IO_BACKEND] = {TSR_OPT_IO_BACKEND, "--io-backend"},
};

/* The command line, as scanned.  Strings point into argv. */
typedef struct run_args {
    const char *udfs; /* "sum,stddev" */
    const char *path;
    const char *format;
    const char **sets, **params; /* argc-sized arrays */
    size_t n_sets, n_params;
    const char *roi;
    int64_t ctx_opts[N_CTXO];
    const char *buffer, *colormap;
    bool log, quiet, help, no_ds_corr, guess;
    const char *dark, *gain, *exclude;
    const char *out;
} run_args_t;

/* Everything the command allocates; run_state_destroy() releases it. */
typedef struct run_state {
    tsr_ctx_t *ctx;
    tsr_dataset_t *ds;
    char *names_buf;    /* copy of the UDF list, split in place */
    const char **names; /* n_udfs UDF names */
    tsr_params_t **udf_params;
    tsr_udf_t **udfs;
    size_t n_udfs;
    cli_roi_spec_t roi_spec;
    uint8_t *roi;
    float *dark, *gain;
    uint8_t *excluded;
    tsr_run_t *run;
    cli_output_t out;
} run_state_t;

/* =========================================================================
 * Scanning the command line
 * ========================================================================= */

static int parse_count(const char *flag, const char *v, bool suffix, int64_t *out)
{
    if (!cli_parse_i64(v, suffix, out) || *out < 0)
        return cli_error(CLI_USAGE, "%s '%s': expected a non-negative integer", flag, v);
    return CLI_OK;
}

static int parse_choice(const char *flag, const char *v, const char *const *names,
                        const int64_t *values, int n, int64_t *out)
{
    for (int i = 0; i < n; i++) {
        if (!strcmp(v, names[i])) {
            *out = values[i];
            return CLI_OK;
        }
    }
    return cli_error(CLI_USAGE, "%s '%s': expected %s%s%s%s%s", flag, v, names[0],
                     n > 2 ? ", " : " or ", names[1], n > 2 ? " or " : "", n > 2 ? names[2] : "");
}

static int parse_executor(const char *v, int64_t *out)
{
    static const char *const names[] = {"inline", "threads"};
    static const int64_t values[] = {TSR_EXEC_INLINE, TSR_EXEC_THREADS};
    return parse_choice("--executor", v, names, values, 2, out);
}

static int parse_io_backend(const char *v, int64_t *out)
{
    static const char *const names[] = {"auto", "pread", "mmap", "direct", "uring"};
    static const int64_t values[] = {TSR_IO_AUTO, TSR_IO_PREAD, TSR_IO_MMAP, TSR_IO_DIRECT,
                                     TSR_IO_URING};
    return parse_choice("--io-backend", v, names, values, 5, out);
}

static int take_positional(run_args_t *ra, const char *v)
{
    if (!ra->udfs)
        ra->udfs = v;
    else if (!ra->path)
        ra->path = v;
    else
        return cli_error(CLI_USAGE,
                         "unexpected argument '%s' for 'tessera run' "
                         "(expected UDF[,UDF...] PATH)",
                         v);
    return CLI_OK;
}

/* Handle one scanned word; returns CLI_OK or an exit code. */
static int take_arg(run_args_t *ra, int id, const char *v)
{
    int64_t *co = ra->ctx_opts;
    switch (id) {
    case CLI_ARG_POSITIONAL: return take_positional(ra, v);
    case OPT_FORMAT: ra->format = v; return CLI_OK;
    case OPT_SET: ra->sets[ra->n_sets++] = v; return cli_check_kv("--set", v);
    case OPT_PARAM: ra->params[ra->n_params++] = v; return cli_check_kv("--param", v);
    case OPT_ROI: ra->roi = v; return CLI_OK;
    case OPT_THREADS: return parse_count("--threads", v, false, &co[CTXO_THREADS]);
    case OPT_EXECUTOR: return parse_executor(v, &co[CTXO_EXECUTOR]);
    case OPT_PARTITIONS: return parse_count("--partitions", v, false, &co[CTXO_PARTITIONS]);
    case OPT_TILE_BYTES: return parse_count("--tile-bytes", v, true, &co[CTXO_TILE_BYTES]);
    case OPT_IO_BACKEND: return parse_io_backend(v, &co[CTXO_IO_BACKEND]);
    case OPT_BUFFER: ra->buffer = v; return CLI_OK;
    case OPT_COLORMAP: ra->colormap = v; return CLI_OK;
    case OPT_LOG: ra->log = true; return CLI_OK;
    case OPT_DARK: ra->dark = v; return CLI_OK;
    case OPT_GAIN: ra->gain = v; return CLI_OK;
    case OPT_EXCLUDE: ra->exclude = v; return CLI_OK;
    case OPT_NO_DS_CORR: ra->no_ds_corr = true; return CLI_OK;
    case OPT_GUESS: ra->guess = true; return CLI_OK;
    case OPT_QUIET: ra->quiet = true; return CLI_OK;
    case OPT_OUTPUT: ra->out = v; return CLI_OK;
    case OPT_HELP: ra->help = true; return CLI_OK;
    default: return cli_error(CLI_USAGE, "internal error: unhandled option %d", id);
    }
}

static int parse_run_args(int argc, char **argv, run_args_t *ra)
{
    cli_args_t a;
    cli_args_init(&a, argc, argv, "run", RUN_OPTS, (int)(sizeof RUN_OPTS / sizeof *RUN_OPTS));
    for (int i = 0; i < N_CTXO; i++)
        ra->ctx_opts[i] = -1;
    const char *v;
    int id;
    while ((id = cli_args_next(&a, &v)) != CLI_ARG_END) {
        if (id == CLI_ARG_ERROR)
            return CLI_USAGE;
        int rc = take_arg(ra, id, v);
        if (rc != CLI_OK || ra->help)
            return rc;
    }
    if (!ra->udfs || !ra->path)
        return cli_error(CLI_USAGE, "'tessera run' needs UDF[,UDF...] and PATH "
                                    "(see 'tessera run --help')");
    if (!ra->out)
        return cli_error(CLI_USAGE, "'tessera run' needs an output: -o OUT");
    return CLI_OK;
}

/* =========================================================================
 * UDF names and parameters
 * ========================================================================= */

/* "sum, sumsig, ..." of the built-in UDFs. */
static void udf_names(char *buf, size_t n)
{
    size_t pos = 0, count = tsr_udf_count();
    buf[0] = '\0';
    for (size_t i = 0; i < count && pos < n; i++) {
        const tsr_udf_def_t *d = tsr_udf_def_at(i);
        int w = d ? snprintf(buf + pos, n - pos, "%s%s", pos ? ", " : "", d->name) : 0;
        if (w < 0)
            return;
        pos += (size_t)w;
    }
}

/* Split the comma list into s->names and check each is a known UDF. */
static int split_udf_list(run_state_t *s, const char *list)
{
    s->names_buf = strdup(list);
    s->names = calloc(strlen(list) / 2 + 1, sizeof *s->names);
    if (!s->names_buf || !s->names)
        return cli_error(CLI_FAIL, "out of memory");
    for (char *p = s->names_buf;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (!*p)
            return cli_error(CLI_USAGE, "empty UDF name in '%s'", list);
        if (!tsr_udf_def_find(p)) {
            char known[512];
            udf_names(known, sizeof known);
            return cli_error(CLI_USAGE, "unknown UDF '%s' (known: %s)", p, known);
        }
        s->names[s->n_udfs++] = p;
        if (!comma)
            return CLI_OK;
        p = comma + 1;
    }
}

static bool schema_has(const char *udf, const char *key)
{
    const tsr_udf_def_t *d = tsr_udf_def_find(udf);
    for (size_t i = 0; d && d->params && i < d->n_params; i++)
        if (!strcmp(d->params[i].name, key))
            return true;
    return false;
}

/* "sum, stddev" of the run's UDFs. */
static void run_udf_names(const run_state_t *s, char *buf, size_t n)
{
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->n_udfs && pos < n; i++) {
        int w = snprintf(buf + pos, n - pos, "%s%s", i ? ", " : "", s->names[i]);
        if (w < 0)
            return;
        pos += (size_t)w;
    }
}

/* Add key=value to every UDF of the run whose schema has key (only those
 * named only, if not NULL).  Returns how many received it, or -1 if adding
 * failed. */
static int add_to_udfs(run_state_t *s, const char *only, const char *key, const char *value)
{
    int n = 0;
    for (size_t i = 0; i < s->n_udfs; i++) {
        if ((only && strcmp(s->names[i], only)) || !schema_has(s->names[i], key))
            continue;
        if (tsr_params_add(s->udf_params[i], key, value) != 0)
            return -1;
        n++;
    }
    return n;
}

static bool udf_in_run(const run_state_t *s, const char *name)
{
    for (size_t i = 0; i < s->n_udfs; i++)
        if (!strcmp(s->names[i], name))
            return true;
    return false;
}

/* Route one --param KEY=VALUE (buf is a writable copy of it). */
static int route_param(run_state_t *s, char *buf, const char *orig)
{
    char *eq = strchr(buf, '=');
    *eq = '\0';
    const char *key = buf, *value = eq + 1, *only = NULL;
    char *dot = strchr(buf, '.');
    if (dot) {
        *dot = '\0';
        if (udf_in_run(s, buf)) {
            only = buf;
            key = dot + 1;
        } else {
            *dot = '.';
        }
    }
    int n = add_to_udfs(s, only, key, value);
    if (n < 0)
        return cli_error(CLI_FAIL, "out of memory");
    if (n > 0)
        return CLI_OK;
    if (only)
        return cli_error(CLI_USAGE,
                         "--param %s: UDF '%s' has no parameter '%s' "
                         "(see 'tessera list udfs')",
                         orig, only, key);
    char names[256];
    run_udf_names(s, names, sizeof names);
    if (dot) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "%.*s", (int)(dot - buf), buf);
        if (tsr_udf_def_find(prefix))
            return cli_error(CLI_USAGE, "--param %s: UDF '%s' is not part of this run (%s)", orig,
                             prefix, names);
    }
    return cli_error(CLI_USAGE,
                     "--param %s: no UDF of this run (%s) has a parameter '%s' "
                     "(see 'tessera list udfs')",
                     orig, names, key);
}

static int route_params(run_state_t *s, const run_args_t *ra)
{
    s->udf_params = calloc(s->n_udfs, sizeof *s->udf_params);
    s->udfs = calloc(s->n_udfs, sizeof *s->udfs);
    if (!s->udf_params || !s->udfs)
        return cli_error(CLI_FAIL, "out of memory");
    for (size_t i = 0; i < s->n_udfs; i++)
        if (tsr_params_new(s->ctx, &s->udf_params[i]) != 0)
            return cli_error(CLI_FAIL, "out of memory");
    for (size_t i = 0; i < ra->n_params; i++) {
        char *buf = strdup(ra->params[i]);
        if (!buf)
            return cli_error(CLI_FAIL, "out of memory");
        int rc = route_param(s, buf, ra->params[i]);
        free(buf);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

static int make_udfs(run_state_t *s)
{
    for (size_t i = 0; i < s->n_udfs; i++) {
        int rc = tsr_udf_new(s->ctx, s->names[i], s->udf_params[i], &s->udfs[i]);
        if (rc != 0)
            return cli_lib_error(CLI_FAIL, s->ctx, rc, NULL);
    }
    return CLI_OK;
}

/* =========================================================================
 * Context options, ROI and corrections
 * ========================================================================= */

static int apply_ctx_opts(run_state_t *s, const run_args_t *ra)
{
    for (int i = 0; i < N_CTXO; i++) {
        if (ra->ctx_opts[i] < 0)
            continue;
        int rc = tsr_ctx_set(s->ctx, CTX_OPTS[i].opt, ra->ctx_opts[i]);
        if (rc != 0) {
            const char *msg = tsr_ctx_errmsg(s->ctx);
            return cli_error(CLI_USAGE, "%s: %s", CTX_OPTS[i].flag, *msg ? msg : tsr_strerror(rc));
        }
    }
    return CLI_OK;
}

static bool shape_equals(const cli_npy_t *a, const tsr_shape_t *s)
{
    if (a->ndim != s->ndim)
        return false;
    for (int i = 0; i < s->ndim; i++)
        if (a->shape[i] != s->dims[i])
            return false;
    return true;
}

/* Load a sig-sized .npy for flag: as float32 into *f32, or, when f32 is
 * NULL, as a 0/1 mask into *mask. */
static int load_sig_array(const char *flag, const char *path, const tsr_shape_t *sig, float **f32,
                          uint8_t **mask)
{
    cli_npy_t a;
    char err[512];
    if (cli_npy_load(path, &a, err, sizeof err) != 0)
        return cli_error(CLI_FAIL, "%s %s", flag, err);
    int rc = CLI_OK;
    if (!shape_equals(&a, sig)) {
        char want[128], found[128];
        cli_format_shape(sig->dims, sig->ndim, want, sizeof want);
        cli_format_shape(a.shape, a.ndim, found, sizeof found);
        rc = cli_error(CLI_FAIL, "%s %s: expected the sig shape %s, found %s", flag, path, want,
                       found);
    } else if (f32 ? !(*f32 = cli_npy_to_f32(&a)) : !(*mask = cli_npy_to_mask(&a))) {
        rc = cli_error(CLI_FAIL, "out of memory");
    }
    cli_npy_free(&a);
    return rc;
}

static int load_corrections(run_state_t *s, const run_args_t *ra)
{
    tsr_shape_t sig;
    tsr_dataset_sig_shape(s->ds, &sig);
    int rc = CLI_OK;
    if (ra->dark)
        rc = load_sig_array("--dark", ra->dark, &sig, &s->dark, NULL);
    if (rc == CLI_OK && ra->gain)
        rc = load_sig_array("--gain", ra->gain, &sig, &s->gain, NULL);
    if (rc == CLI_OK && ra->exclude)
        rc = load_sig_array("--exclude", ra->exclude, &sig, NULL, &s->excluded);
    return rc;
}

/* =========================================================================
 * Parameter guesses
 * ========================================================================= */

/* --guess: every UDF of the run that has a guess gets its guessed
 * parameters appended (so they win) and is made again; the guesses are
 * printed as "guess UDF KEY=VALUE" lines. */
static int apply_guesses(run_state_t *s, bool quiet)
{
    tsr_run_opts_t opts = {
        .roi = s->roi,
        .corrections = {.dark = s->dark, .gain = s->gain, .excluded = s->excluded},
    };
    for (size_t i = 0; i < s->n_udfs; i++) {
        if (!tsr_udf_has_guess(s->names[i]))
            continue;
        tsr_params_t *g = NULL;
        if (tsr_params_new(s->ctx, &g) != 0)
            return cli_error(CLI_FAIL, "out of memory");
        int rc = tsr_udf_guess(s->ctx, s->ds, s->names[i], s->udf_params[i], &opts, g);
        if (rc != 0) {
            tsr_params_free(g);
            return cli_lib_error(CLI_FAIL, s->ctx, rc, NULL);
        }
        for (size_t k = 0; k < tsr_params_count(g); k++) {
            const char *key, *value;
            tsr_params_at(g, k, &key, &value);
            if (tsr_params_add(s->udf_params[i], key, value) != 0) {
                tsr_params_free(g);
                return cli_error(CLI_FAIL, "out of memory");
            }
            if (!quiet)
                printf("guess %s %s=%s\n", s->names[i], key, value);
        }
        tsr_params_free(g);
        tsr_udf_free(s->udfs[i]);
        s->udfs[i] = NULL;
        rc = tsr_udf_new(s->ctx, s->names[i], s->udf_params[i], &s->udfs[i]);
        if (rc != 0)
            return cli_lib_error(CLI_FAIL, s->ctx, rc, NULL);
    }
    fflush(stdout);
    return CLI_OK;
}

/* =========================================================================
 * Running
 * ========================================================================= */

static int64_t frame_bytes(const tsr_dataset_t *ds)
{
    tsr_shape_t sig;
    tsr_dataset_sig_shape(ds, &sig);
    return tsr_shape_size(&sig) * (int64_t)tsr_dtype_size(tsr_dataset_dtype(ds));
}

static int start_and_wait(run_state_t *s, bool quiet, bool no_ds_corr)
{
    tsr_run_opts_t opts = {
        .roi = s->roi,
        .corrections = {.dark = s->dark, .gain = s->gain, .excluded = s->excluded},
        .no_dataset_corrections = no_ds_corr,
    };
    int rc = tsr_run_start(s->ctx, s->ds, s->udfs, s->n_udfs, &opts, &s->run);
    if (rc != 0)
        return cli_lib_error(CLI_FAIL, s->ctx, rc, NULL);
    bool interrupted = false;
    bool bar = !quiet && isatty(STDERR_FILENO);
    rc = cli_run_observe(s->run, bar, frame_bytes(s->ds), &interrupted);
    if (interrupted)
        return cli_error(CLI_INTERRUPTED, "interrupted");
    if (rc != 0) {
        const char *msg = tsr_run_errmsg(s->run);
        return cli_error(CLI_FAIL, "%s", msg && *msg ? msg : tsr_strerror(rc));
    }
    return CLI_OK;
}

static int write_results(run_state_t *s)
{
    const tsr_results_t *res = NULL;
    int rc = tsr_run_results(s->run, &res);
    if (rc != 0) {
        const char *msg = tsr_run_errmsg(s->run);
        return cli_error(CLI_FAIL, "%s", msg && *msg ? msg : tsr_strerror(rc));
    }
    return cli_output_write(&s->out, s->ctx, res);
}

static void run_state_destroy(run_state_t *s)
{
    tsr_run_free(s->run);
    for (size_t i = 0; s->udfs && i < s->n_udfs; i++)
        tsr_udf_free(s->udfs[i]);
    for (size_t i = 0; s->udf_params && i < s->n_udfs; i++)
        tsr_params_free(s->udf_params[i]);
    tsr_dataset_close(s->ds);
    tsr_ctx_free(s->ctx);
    free(s->udfs);
    free(s->udf_params);
    free(s->names);
    free(s->names_buf);
    free(s->roi);
    free(s->dark);
    free(s->gain);
    free(s->excluded);
    cli_output_destroy(&s->out);
}

/* Everything checkable without opening a file. */
static int prepare(run_state_t *s, const run_args_t *ra)
{
    int rc = split_udf_list(s, ra->udfs);
    if (rc == CLI_OK && tsr_ctx_new(&s->ctx) != 0)
        rc = cli_error(CLI_FAIL, "out of memory");
    if (rc == CLI_OK)
        rc = route_params(s, ra);
    if (rc == CLI_OK)
        rc = make_udfs(s);
    if (rc == CLI_OK && ra->guess) {
        bool any = false;
        for (size_t i = 0; i < s->n_udfs; i++)
            any = any || tsr_udf_has_guess(s->names[i]);
        if (!any) {
            char names[256];
            run_udf_names(s, names, sizeof names);
            rc = cli_error(CLI_USAGE, "--guess: no UDF of this run (%s) has a parameter guess",
                           names);
        }
    }
    if (rc == CLI_OK && ra->roi)
        rc = cli_roi_parse(ra->roi, &s->roi_spec);
    if (rc == CLI_OK)
        rc = cli_output_init(&s->out, ra->out, ra->buffer);
    if (rc == CLI_OK)
        rc = apply_ctx_opts(s, ra);
    s->out.export_opts.colormap = ra->colormap;
    s->out.export_opts.log = ra->log;
    s->out.quiet = ra->quiet;
    return rc;
}

/* Open the data, build what depends on it, run and write. */
static int execute(run_state_t *s, const run_args_t *ra)
{
    int rc = cli_open_dataset(s->ctx, ra->path, ra->format, ra->sets, ra->n_sets, &s->ds);
    if (rc == CLI_OK && ra->roi) {
        tsr_shape_t nav;
        tsr_dataset_nav_shape(s->ds, &nav);
        rc = cli_roi_build(&s->roi_spec, &nav, &s->roi);
    }
    if (rc == CLI_OK)
        rc = load_corrections(s, ra);
    if (rc == CLI_OK && ra->guess)
        rc = apply_guesses(s, ra->quiet);
    if (rc == CLI_OK)
        rc = start_and_wait(s, ra->quiet, ra->no_ds_corr);
    if (rc == CLI_OK)
        rc = write_results(s);
    return rc;
}

int cli_cmd_run(int argc, char **argv)
{
    run_args_t ra = {0};
    ra.sets = calloc((size_t)argc, sizeof *ra.sets);
    ra.params = calloc((size_t)argc, sizeof *ra.params);
    int rc = ra.sets && ra.params ? parse_run_args(argc, argv, &ra)
                                  : cli_error(CLI_FAIL, "out of memory");
    if (rc == CLI_OK && ra.help) {
        fputs(RUN_USAGE, stdout);
    } else if (rc == CLI_OK) {
        run_state_t s = {0};
        cli_sigint_install();
        rc = prepare(&s, &ra);
        if (rc == CLI_OK)
            rc = execute(&s, &ra);
        run_state_destroy(&s);
    }
    free(ra.sets);
    free(ra.params);
    return rc;
}
