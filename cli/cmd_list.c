/*
 * cmd_list.c — `tessera list [formats|udfs] [--json]`: the format and UDF
 * registries with their parameter schemas.
 *
 * Nothing here knows a particular format or UDF: both registries are read
 * through the public API (tsr_format_info, tsr_udf_def_at) and printed by
 * the same code, so a new reader or UDF shows up without touching the CLI.
 */
#include "args.h"
#include "cli.h"
#include "json_out.h"

#include <stdio.h>
#include <string.h>

static const char LIST_USAGE[] =
    "usage: tessera list [formats|udfs] [--json]\n"
    "\n"
    "List the dataset formats and the analyses (UDFs) with their parameters.\n"
    "Without a noun, both are listed.\n"
    "\n"
    "options:\n"
    "  --json       print one JSON object: {\"formats\": [...], \"udfs\": [...]}\n"
    "  -h, --help   show this help\n";

/* One registry entry, whatever its kind. */
typedef struct reg_entry {
    const char *name;
    const char *description;
    const tsr_param_def_t *params;
    size_t n_params;
} reg_entry_t;

typedef struct registry {
    const char *title;    /* human heading */
    const char *json_key; /* key of the JSON array */
    size_t (*count)(void);
    bool (*get)(size_t i, reg_entry_t *e);
} registry_t;

static bool get_format(size_t i, reg_entry_t *e)
{
    return tsr_format_info(i, &e->name, &e->description, &e->params, &e->n_params) == 0;
}

static bool get_udf(size_t i, reg_entry_t *e)
{
    const tsr_udf_def_t *d = tsr_udf_def_at(i);
    if (!d)
        return false;
    e->name = d->name;
    e->description = d->description;
    e->params = d->params;
    e->n_params = d->params ? d->n_params : 0;
    return true;
}

static const registry_t REGISTRIES[] = {
    {"Formats", "formats", tsr_format_count, get_format},
    {"UDFs", "udfs", tsr_udf_count, get_udf},
};
#define N_REGISTRIES (sizeof REGISTRIES / sizeof REGISTRIES[0])

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

/* =========================================================================
 * Human listing
 * ========================================================================= */

/* "required", "optional" or "default X", with ", repeatable" appended. */
static void param_status(const tsr_param_def_t *p, char *buf, size_t n)
{
    const char *rep = p->repeatable ? ", repeatable" : "";
    if (!p->default_value)
        snprintf(buf, n, "required%s", rep);
    else if (!*p->default_value)
        snprintf(buf, n, "optional%s", rep);
    else
        snprintf(buf, n, "default %s%s", p->default_value, rep);
}

typedef struct widths {
    int entry, name, type, status;
} widths_t;

static int max_int(int a, size_t b)
{
    return (size_t)a > b ? a : (int)b;
}

/* Column widths over every entry of a registry, so columns line up. */
static widths_t measure(const registry_t *r)
{
    widths_t w = {4, 4, 4, 8};
    size_t n = r->count();
    for (size_t i = 0; i < n; i++) {
        reg_entry_t e;
        if (!r->get(i, &e))
            continue;
        w.entry = max_int(w.entry, strlen(or_empty(e.name)));
        for (size_t k = 0; k < e.n_params; k++) {
            char st[160];
            param_status(&e.params[k], st, sizeof st);
            w.name = max_int(w.name, strlen(or_empty(e.params[k].name)));
            w.type = max_int(w.type, strlen(or_empty(e.params[k].type)));
            w.status = max_int(w.status, strlen(st));
        }
    }
    return w;
}

static void print_entry(const reg_entry_t *e, const widths_t *w)
{
    printf("  %-*s  %s\n", w->entry, or_empty(e->name), or_empty(e->description));
    if (e->n_params == 0)
        printf("      (no parameters)\n");
    for (size_t k = 0; k < e->n_params; k++) {
        const tsr_param_def_t *p = &e->params[k];
        char st[160];
        param_status(p, st, sizeof st);
        printf("      %-*s  %-*s  %-*s  %s\n", w->name, or_empty(p->name), w->type,
               or_empty(p->type), w->status, st, or_empty(p->doc));
    }
}

static void print_human(const registry_t *r, bool first)
{
    widths_t w = measure(r);
    printf("%s%s:\n", first ? "" : "\n", r->title);
    size_t n = r->count();
    for (size_t i = 0; i < n; i++) {
        reg_entry_t e;
        if (r->get(i, &e))
            print_entry(&e, &w);
    }
}

/* =========================================================================
 * JSON listing
 * ========================================================================= */

static void print_json_param(const tsr_param_def_t *p)
{
    fputs("{\"name\":", stdout);
    cli_json_str(stdout, p->name);
    fputs(",\"type\":", stdout);
    cli_json_str(stdout, p->type);
    /* "" means optional without a default: null, like a required one, with
     * "required" telling them apart. */
    fputs(",\"default\":", stdout);
    cli_json_str(stdout, p->default_value && *p->default_value ? p->default_value : NULL);
    printf(",\"required\":%s,\"repeatable\":%s,\"doc\":", p->default_value ? "false" : "true",
           p->repeatable ? "true" : "false");
    cli_json_str(stdout, or_empty(p->doc));
    fputc('}', stdout);
}

static void print_json_entry(const reg_entry_t *e)
{
    fputs("{\"name\":", stdout);
    cli_json_str(stdout, e->name);
    fputs(",\"description\":", stdout);
    cli_json_str(stdout, or_empty(e->description));
    fputs(",\"params\":[", stdout);
    for (size_t k = 0; k < e->n_params; k++) {
        if (k)
            fputc(',', stdout);
        print_json_param(&e->params[k]);
    }
    fputs("]}", stdout);
}

static void print_json(const registry_t *r)
{
    cli_json_str(stdout, r->json_key);
    fputs(":[", stdout);
    size_t n = r->count();
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        reg_entry_t e;
        if (!r->get(i, &e))
            continue;
        if (!first)
            fputc(',', stdout);
        first = false;
        print_json_entry(&e);
    }
    fputc(']', stdout);
}

/* =========================================================================
 * Command
 * ========================================================================= */

enum { OPT_JSON = 1, OPT_HELP };

static const cli_opt_t LIST_OPTS[] = {
    {"--json", NULL, false, OPT_JSON},
    {"--help", "-h", false, OPT_HELP},
};

/* Which registries the noun selects: a bit per REGISTRIES entry. */
static int parse_noun(const char *noun, unsigned *which)
{
    for (size_t i = 0; i < N_REGISTRIES; i++) {
        if (!strcmp(noun, REGISTRIES[i].json_key)) {
            *which = 1u << i;
            return CLI_OK;
        }
    }
    return cli_error(CLI_USAGE, "unknown list '%s' (expected 'formats' or 'udfs')", noun);
}

int cli_cmd_list(int argc, char **argv)
{
    cli_args_t a;
    cli_args_init(&a, argc, argv, "list", LIST_OPTS, (int)(sizeof LIST_OPTS / sizeof *LIST_OPTS));
    bool json = false, have_noun = false;
    unsigned which = (1u << N_REGISTRIES) - 1;
    const char *v;
    int id;
    while ((id = cli_args_next(&a, &v)) != CLI_ARG_END) {
        if (id == CLI_ARG_ERROR)
            return CLI_USAGE;
        if (id == OPT_HELP) {
            fputs(LIST_USAGE, stdout);
            return CLI_OK;
        }
        if (id == OPT_JSON) {
            json = true;
        } else if (have_noun) {
            return cli_error(CLI_USAGE, "unexpected argument '%s' for 'tessera list'", v);
        } else {
            have_noun = true;
            int rc = parse_noun(v, &which);
            if (rc != CLI_OK)
                return rc;
        }
    }
    bool first = true;
    if (json)
        fputc('{', stdout);
    for (size_t i = 0; i < N_REGISTRIES; i++) {
        if (!(which & (1u << i)))
            continue;
        if (json) {
            if (!first)
                fputc(',', stdout);
            print_json(&REGISTRIES[i]);
        } else {
            print_human(&REGISTRIES[i], first);
        }
        first = false;
    }
    if (json)
        fputs("}\n", stdout);
    return CLI_OK;
}
