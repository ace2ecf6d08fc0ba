/*
 * args.c — the option scanner of `tessera` (see args.h).
 *
 * It never reorders or modifies argv; it only walks it, so the strings it
 * hands out live as long as argv.
 */
#include "args.h"

#include "cli.h"

#include <string.h>

void cli_args_init(cli_args_t *a, int argc, char **argv, const char *cmd, const cli_opt_t *opts,
                   int n_opts)
{
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
    a->options_done = false;
    a->cmd = cmd;
    a->opts = opts;
    a->n_opts = n_opts;
}

/* The table entry matching word (up to its '=' if it has one). */
static const cli_opt_t *find_opt(const cli_args_t *a, const char *word, size_t len)
{
    for (int k = 0; k < a->n_opts; k++) {
        const cli_opt_t *o = &a->opts[k];
        if ((strlen(o->name) == len && !strncmp(o->name, word, len)) ||
            (o->alias && strlen(o->alias) == len && !strncmp(o->alias, word, len)))
            return o;
    }
    return NULL;
}

static bool is_option_word(const char *w)
{
    return w[0] == '-' && w[1] != '\0';
}

int cli_args_next(cli_args_t *a, const char **value)
{
    *value = NULL;
    if (a->i >= a->argc)
        return CLI_ARG_END;
    const char *w = a->argv[a->i++];
    if (a->options_done || !is_option_word(w)) {
        *value = w;
        return CLI_ARG_POSITIONAL;
    }
    if (!strcmp(w, "--")) {
        a->options_done = true;
        return cli_args_next(a, value);
    }
    const char *eq = w[1] == '-' ? strchr(w, '=') : NULL;
    size_t len = eq ? (size_t)(eq - w) : strlen(w);
    const cli_opt_t *o = find_opt(a, w, len);
    if (!o) {
        cli_error(CLI_USAGE, "unknown option '%.*s' for 'tessera %s' (see 'tessera %s --help')",
                  (int)len, w, a->cmd, a->cmd);
        return CLI_ARG_ERROR;
    }
    if (!o->has_value) {
        if (eq) {
            cli_error(CLI_USAGE, "option '%s' takes no value", o->name);
            return CLI_ARG_ERROR;
        }
        return o->id;
    }
    if (eq) {
        *value = eq + 1;
        return o->id;
    }
    if (a->i >= a->argc) {
        cli_error(CLI_USAGE, "option '%s' needs a value", o->name);
        return CLI_ARG_ERROR;
    }
    *value = a->argv[a->i++];
    return o->id;
}
