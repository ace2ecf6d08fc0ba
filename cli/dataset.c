/*
 * dataset.c — opening the dataset named on the command line, shared by
 * `tessera info` and `tessera run`.
 *
 * An unknown --format is caught here against the registry, so it is a usage
 * error that lists the known names; everything about the file itself is the
 * library's to judge and report.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int cli_check_kv(const char *opt, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return cli_error(CLI_USAGE, "%s '%s': expected KEY=VALUE", opt, kv);
    return CLI_OK;
}

/* "raw, npy, memory" into buf. */
static void format_names(char *buf, size_t n)
{
    size_t pos = 0, count = tsr_format_count();
    buf[0] = '\0';
    for (size_t i = 0; i < count && pos < n; i++) {
        const char *name, *desc;
        const tsr_param_def_t *params;
        size_t np;
        if (tsr_format_info(i, &name, &desc, &params, &np) != 0)
            continue;
        int w = snprintf(buf + pos, n - pos, "%s%s", pos ? ", " : "", name);
        if (w < 0)
            return;
        pos += (size_t)w;
    }
}

static bool format_known(const char *format)
{
    size_t count = tsr_format_count();
    for (size_t i = 0; i < count; i++) {
        const char *name, *desc;
        const tsr_param_def_t *params;
        size_t np;
        if (tsr_format_info(i, &name, &desc, &params, &np) == 0 && !strcmp(name, format))
            return true;
    }
    return false;
}

int cli_open_dataset(tsr_ctx_t *ctx, const char *path, const char *format, const char *const *sets,
                     size_t n_sets, tsr_dataset_t **out)
{
    if (format && !strcmp(format, "auto"))
        format = NULL;
    if (format && !format_known(format)) {
        char names[512];
        format_names(names, sizeof names);
        return cli_error(CLI_USAGE, "unknown format '%s' (known: %s)", format, names);
    }
    tsr_params_t *params = NULL;
    int rc = tsr_params_new(ctx, &params);
    for (size_t i = 0; rc == 0 && i < n_sets; i++)
        rc = tsr_params_add_kv(params, sets[i]);
    if (rc != 0) {
        tsr_params_free(params);
        return cli_lib_error(CLI_FAIL, ctx, rc, NULL);
    }
    rc = tsr_dataset_open(ctx, format, path, params, out);
    tsr_params_free(params);
    return rc ? cli_lib_error(CLI_FAIL, ctx, rc, path) : CLI_OK;
}
