/*
 * cmd_info.c — `tessera info PATH [--format NAME] [--set KEY=VALUE]...
 * [--json]`: what a dataset is — its format, nav and sig shapes, element
 * type with byte order, frame count and the format's metadata.
 *
 * The metadata come from the library as a JSON object text and are embedded
 * as they are in the --json output.
 */
#include "args.h"
#include "cli.h"
#include "json_out.h"

#include <ctype.h>
#include <jansson.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static const char INFO_USAGE[] =
    "usage: tessera info PATH [--format NAME] [--set KEY=VALUE]... [--json]\n"
    "\n"
    "Open a dataset and describe it: format, nav_shape, sig_shape, dtype,\n"
    "image_count and metadata.\n"
    "\n"
    "options:\n"
    "  --format NAME      dataset format (default: auto-detect; see 'tessera list formats')\n"
    "  --set KEY=VALUE    dataset parameter, e.g. nav_shape=4,5 sig_shape=16,16 dtype=>u2\n"
    "                     sync_offset=-2 (may repeat)\n"
    "  --json             print one JSON object\n"
    "  -h, --help         show this help\n";

enum { OPT_FORMAT = 1, OPT_SET, OPT_JSON, OPT_HELP };

static const cli_opt_t INFO_OPTS[] = {
    {"--format", NULL, true, OPT_FORMAT},
    {"--set", NULL, true, OPT_SET},
    {"--json", NULL, false, OPT_JSON},
    {"--help", "-h", false, OPT_HELP},
};

typedef struct info_args {
    const char *path;
    const char *format;
    const char **sets;
    size_t n_sets;
    bool json;
    bool help;
} info_args_t;

/* Handle one scanned word; returns CLI_OK or an exit code. */
static int take_arg(info_args_t *ia, int id, const char *v)
{
    switch (id) {
    case OPT_FORMAT: ia->format = v; return CLI_OK;
    case OPT_SET: ia->sets[ia->n_sets++] = v; return cli_check_kv("--set", v);
    case OPT_JSON: ia->json = true; return CLI_OK;
    case OPT_HELP: ia->help = true; return CLI_OK;
    default: break;
    }
    if (ia->path)
        return cli_error(CLI_USAGE, "unexpected argument '%s' for 'tessera info' (one PATH)", v);
    ia->path = v;
    return CLI_OK;
}

static int parse_info_args(int argc, char **argv, info_args_t *ia)
{
    cli_args_t a;
    cli_args_init(&a, argc, argv, "info", INFO_OPTS, (int)(sizeof INFO_OPTS / sizeof *INFO_OPTS));
    const char *v;
    int id;
    while ((id = cli_args_next(&a, &v)) != CLI_ARG_END) {
        if (id == CLI_ARG_ERROR)
            return CLI_USAGE;
        int rc = take_arg(ia, id, v);
        if (rc != CLI_OK || ia->help)
            return rc;
    }
    if (!ia->path)
        return cli_error(CLI_USAGE, "'tessera info' needs a PATH (see 'tessera info --help')");
    return CLI_OK;
}

/* The metadata text, or "{}" if the format gave none or it is not an
 * object (never emit something that would break the document). */
static const char *meta_or_empty(const char *meta)
{
    if (!meta)
        return "{}";
    while (isspace((unsigned char)*meta))
        meta++;
    return *meta == '{' ? meta : "{}";
}

static void print_info_json(const char *path, tsr_dataset_t *ds)
{
    tsr_shape_t nav, sig;
    tsr_dataset_nav_shape(ds, &nav);
    tsr_dataset_sig_shape(ds, &sig);
    tsr_dtype_t dt = tsr_dataset_dtype(ds);
    char ts[8];
    const char *bo;
    cli_typestr(dt, tsr_dataset_big_endian(ds), ts, &bo);
    fputs("{\"path\":", stdout);
    cli_json_str(stdout, path);
    fputs(",\"format\":", stdout);
    cli_json_str(stdout, tsr_dataset_format(ds));
    fputs(",\"nav_shape\":", stdout);
    cli_json_dims(stdout, nav.dims, nav.ndim);
    fputs(",\"sig_shape\":", stdout);
    cli_json_dims(stdout, sig.dims, sig.ndim);
    fputs(",\"dtype\":", stdout);
    cli_json_str(stdout, tsr_dtype_name(dt));
    fputs(",\"byteorder\":", stdout);
    cli_json_str(stdout, bo);
    fputs(",\"typestr\":", stdout);
    cli_json_str(stdout, ts);
    printf(",\"image_count\":%" PRId64 ",\"meta\":%s}\n", tsr_dataset_image_count(ds),
           meta_or_empty(tsr_dataset_meta_json(ds)));
}

/* One calibrated axis: "name: scale units/px, offset o". */
static void print_axis(const json_t *ax)
{
    const char *name = json_string_value(json_object_get(ax, "name"));
    const char *units = json_string_value(json_object_get(ax, "units"));
    json_t *scale = json_object_get(ax, "scale"), *offset = json_object_get(ax, "offset");
    printf("  %s: %g %s/px", name && *name ? name : "?", json_number_value(scale),
           units && *units ? units : "px");
    if (json_is_number(offset) && json_number_value(offset) != 0)
        printf(", offset %g", json_number_value(offset));
}

/* The facts the metadata convention names (docs/formats.md): detector and
 * calibrations, when the format gives them. */
static void print_meta_human(const char *text)
{
    json_t *m = json_loads(text, 0, NULL);
    if (!json_is_object(m)) {
        json_decref(m);
        return;
    }
    const char *det = json_string_value(json_object_get(m, "detector"));
    if (det)
        printf("detector     %s\n", det);
    json_t *cal = json_object_get(m, "calibration");
    const char *parts[2] = {"nav", "sig"};
    for (int k = 0; k < 2 && json_is_object(cal); k++) {
        json_t *axes = json_object_get(cal, parts[k]);
        size_t i;
        json_t *ax;
        bool useful = false; /* not only unit-less axes of scale 1 */
        json_array_foreach (axes, i, ax) {
            const char *u = json_string_value(json_object_get(ax, "units"));
            useful = useful || (u && *u) ||
                     json_number_value(json_object_get(ax, "scale")) != 1.0 ||
                     json_number_value(json_object_get(ax, "offset")) != 0.0;
        }
        if (!useful)
            continue;
        printf("%s_calib  ", parts[k]);
        json_array_foreach (axes, i, ax)
            print_axis(ax);
        putchar('\n');
    }
    json_decref(m);
}

static void print_info_human(const char *path, tsr_dataset_t *ds)
{
    tsr_shape_t nav, sig;
    tsr_dataset_nav_shape(ds, &nav);
    tsr_dataset_sig_shape(ds, &sig);
    tsr_dtype_t dt = tsr_dataset_dtype(ds);
    char ts[8], navs[160], sigs[160];
    cli_typestr(dt, tsr_dataset_big_endian(ds), ts, NULL);
    cli_format_shape(nav.dims, nav.ndim, navs, sizeof navs);
    cli_format_shape(sig.dims, sig.ndim, sigs, sizeof sigs);
    printf("path         %s\n", path);
    printf("format       %s\n", tsr_dataset_format(ds));
    printf("nav_shape    %s\n", navs);
    printf("sig_shape    %s\n", sigs);
    printf("dtype        %s (%s)\n", tsr_dtype_name(dt), ts);
    printf("image_count  %" PRId64 "\n", tsr_dataset_image_count(ds));
    print_meta_human(meta_or_empty(tsr_dataset_meta_json(ds)));
    printf("meta         %s\n", meta_or_empty(tsr_dataset_meta_json(ds)));
}

int cli_cmd_info(int argc, char **argv)
{
    info_args_t ia = {0};
    ia.sets = calloc((size_t)argc, sizeof *ia.sets);
    if (!ia.sets)
        return cli_error(CLI_FAIL, "out of memory");
    int rc = parse_info_args(argc, argv, &ia);
    if (rc == CLI_OK && ia.help)
        fputs(INFO_USAGE, stdout);
    if (rc != CLI_OK || ia.help) {
        free(ia.sets);
        return rc;
    }
    tsr_ctx_t *ctx = NULL;
    tsr_dataset_t *ds = NULL;
    if (tsr_ctx_new(&ctx) != 0)
        rc = cli_error(CLI_FAIL, "out of memory");
    else
        rc = cli_open_dataset(ctx, ia.path, ia.format, ia.sets, ia.n_sets, &ds);
    if (rc == CLI_OK) {
        if (ia.json)
            print_info_json(ia.path, ds);
        else
            print_info_human(ia.path, ds);
    }
    tsr_dataset_close(ds);
    tsr_ctx_free(ctx);
    free(ia.sets);
    return rc;
}
