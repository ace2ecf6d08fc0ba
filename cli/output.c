/*
 * output.c — writing the results of `tessera run` (see output.h).
 *
 * The writers are the library's (tsr_export_results, tsr_export_array); this
 * file only decides which one to call, picks the buffer for single-array
 * files, and reports the files written on stdout so that scripts can
 * capture them.
 */
#include "output.h"

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static bool has_ext(const char *path, const char *ext)
{
    size_t n = strlen(path), e = strlen(ext);
    return n > e && !strcasecmp(path + n - e, ext);
}

static bool is_directory(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* path with a '/' appended unless it ends in one (malloc'd). */
static char *dir_path(const char *path)
{
    size_t n = strlen(path);
    bool slash = n > 0 && path[n - 1] == '/';
    char *s = malloc(n + 2);
    if (s)
        snprintf(s, n + 2, "%s%s", path, slash ? "" : "/");
    return s;
}

int cli_output_init(cli_output_t *o, const char *out, const char *buffer)
{
    memset(o, 0, sizeof *o);
    o->buffer = buffer;
    size_t n = strlen(out);
    if (n == 0)
        return cli_error(CLI_USAGE, "the output name (-o) is empty");
    if (out[n - 1] == '/' || is_directory(out)) {
        o->kind = CLI_OUT_DIR;
        o->path = dir_path(out);
    } else if (has_ext(out, ".h5") || has_ext(out, ".hdf5")) {
        o->kind = CLI_OUT_H5;
        o->path = strdup(out);
    } else if (has_ext(out, ".npy") || has_ext(out, ".tif") || has_ext(out, ".tiff") ||
               has_ext(out, ".png")) {
        o->kind = CLI_OUT_ARRAY;
        o->path = strdup(out);
    } else {
        return cli_error(CLI_USAGE,
                         "cannot tell the output type of '%s': end it with '/' for a "
                         "directory, or use .h5, .hdf5, .npy, .tif, .tiff or .png",
                         out);
    }
    if (!o->path)
        return cli_error(CLI_FAIL, "out of memory");
    if (buffer && o->kind != CLI_OUT_ARRAY)
        return cli_error(CLI_USAGE,
                         "--buffer selects the buffer of a .npy, .tif or .png "
                         "output; %s receives every buffer",
                         o->path);
    return CLI_OK;
}

void cli_output_destroy(cli_output_t *o)
{
    free(o->path);
    o->path = NULL;
}

/* ---- picking one buffer ------------------------------------------------ */

/* "udf.buffer, udf.buffer, ..." of every result, truncated to fit. */
static void list_buffers(const tsr_results_t *res, char *buf, size_t n)
{
    size_t pos = 0;
    buf[0] = '\0';
    size_t count = tsr_results_count(res);
    for (size_t i = 0; i < count && pos < n; i++) {
        tsr_array_t a;
        if (tsr_results_get(res, i, &a) != 0)
            continue;
        int w = snprintf(buf + pos, n - pos, "%s%s.%s", i ? ", " : "", a.udf, a.name);
        if (w < 0 || (size_t)w >= n - pos) {
            if (n >= 4)
                memcpy(buf + n - 4, "...", 4);
            return;
        }
        pos += (size_t)w;
    }
}

/* Does a match "udf.buffer" (qualified) or "buffer"? */
static bool name_matches(const tsr_array_t *a, const char *want, bool qualified)
{
    if (!qualified)
        return !strcmp(a->name, want);
    size_t u = strlen(a->udf);
    return !strncmp(want, a->udf, u) && want[u] == '.' && !strcmp(want + u + 1, a->name);
}

/* Count the arrays matching want; the first one goes to *out. */
static size_t find_matches(const tsr_results_t *res, const char *want, bool qualified,
                           tsr_array_t *out)
{
    size_t found = 0, count = tsr_results_count(res);
    for (size_t i = 0; i < count; i++) {
        tsr_array_t a;
        if (tsr_results_get(res, i, &a) == 0 && name_matches(&a, want, qualified))
            if (found++ == 0)
                *out = a;
    }
    return found;
}

static int pick_named(const tsr_results_t *res, const char *want, tsr_array_t *out)
{
    char names[768];
    list_buffers(res, names, sizeof names);
    bool qualified = true;
    size_t n = find_matches(res, want, true, out);
    if (n == 0) {
        qualified = false;
        n = find_matches(res, want, false, out);
    }
    if (n == 1)
        return CLI_OK;
    if (n == 0)
        return cli_error(CLI_USAGE, "--buffer %s: no such result buffer (the run has: %s)", want,
                         names);
    return cli_error(CLI_USAGE, "--buffer %s matches %zu buffers%s (the run has: %s)", want, n,
                     qualified ? "; run that UDF once" : "; name it as udf.buffer", names);
}

static int pick_array(const cli_output_t *o, const tsr_results_t *res, tsr_array_t *out)
{
    if (o->buffer)
        return pick_named(res, o->buffer, out);
    size_t count = tsr_results_count(res);
    if (count == 0)
        return cli_error(CLI_FAIL, "the run produced no result buffer to write to %s", o->path);
    if (count > 1) {
        char names[768];
        list_buffers(res, names, sizeof names);
        return cli_error(CLI_USAGE,
                         "%s holds one buffer but the run has %zu; choose one with "
                         "--buffer NAME: %s",
                         o->path, count, names);
    }
    int rc = tsr_results_get(res, 0, out);
    return rc ? cli_error(CLI_FAIL, "reading the result: %s", tsr_strerror(rc)) : CLI_OK;
}

/* ---- writing ----------------------------------------------------------- */

static void report_dir_files(const cli_output_t *o, const tsr_results_t *res)
{
    size_t count = tsr_results_count(res);
    for (size_t i = 0; i < count; i++) {
        tsr_array_t a;
        if (tsr_results_get(res, i, &a) == 0)
            printf("wrote %s%s.%s.npy\n", o->path, a.udf, a.name);
    }
}

int cli_output_write(const cli_output_t *o, tsr_ctx_t *ctx, const tsr_results_t *res)
{
    int rc;
    if (o->kind == CLI_OUT_ARRAY) {
        tsr_array_t a;
        int prc = pick_array(o, res, &a);
        if (prc != CLI_OK)
            return prc;
        rc = tsr_export_array(ctx, &a, o->path, &o->export_opts);
    } else {
        rc = tsr_export_results(ctx, res, o->path);
    }
    if (rc != 0)
        return cli_lib_error(CLI_FAIL, ctx, rc, o->path);
    if (!o->quiet) {
        if (o->kind == CLI_OUT_DIR)
            report_dir_files(o, res);
        else
            printf("wrote %s\n", o->path);
        fflush(stdout);
    }
    return CLI_OK;
}
