/*
 * args.h — the option scanner shared by the commands of `tessera`.
 *
 * Options and positional words may be interleaved.  An option takes its
 * value from "--name=VALUE" or from the next word (so "--threads -1" reads
 * "-1" as the value); "--" ends the options.  A command describes its options
 * in a table and receives them one at a time in command-line order, so a
 * repeated option (--set, --param) is simply seen several times.
 */
#ifndef TSR_CLI_ARGS_H
#define TSR_CLI_ARGS_H

#include <stdbool.h>

typedef struct cli_opt {
    const char *name;  /* long form, "--format" */
    const char *alias; /* short form, "-o", or NULL */
    bool has_value;
    int id; /* > 0 */
} cli_opt_t;

typedef struct cli_args {
    int argc;
    char **argv;
    int i;             /* next word */
    bool options_done; /* after "--" */
    const char *cmd;   /* command name for messages */
    const cli_opt_t *opts;
    int n_opts;
} cli_args_t;

enum {
    CLI_ARG_END = 0,         /* no words left */
    CLI_ARG_POSITIONAL = -1, /* *value is the word */
    CLI_ARG_ERROR = -2       /* a usage error was printed */
};

/* Start scanning argv[1..argc) (argv[0] is the command). */
void cli_args_init(cli_args_t *a, int argc, char **argv, const char *cmd, const cli_opt_t *opts,
                   int n_opts);
/* The next option (its id, *value = its value or NULL) or positional word
 * (CLI_ARG_POSITIONAL), CLI_ARG_END, or CLI_ARG_ERROR after printing an
 * unknown-option or missing-value error. */
int cli_args_next(cli_args_t *a, const char **value);

#endif
