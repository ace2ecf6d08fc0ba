/*
 * main.c — the `tessera` command: dispatch to the subcommands (list, info,
 * run), --version and --help.
 *
 * Every subcommand returns its exit code (see cli.h): 0 on success, 1 for a
 * runtime error, 2 for a usage error, 130 after Ctrl-C; each failure has
 * printed exactly one "tessera: ..." line on stderr.  A failure to write
 * stdout (a closed pipe, a full disk) is itself an error, so a script never
 * mistakes truncated output for a complete one.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const char MAIN_USAGE[] =
    "usage: tessera COMMAND [ARGS]\n"
    "\n"
    "Tessera: high-throughput analyses of 4D-STEM and other detector data.\n"
    "\n"
    "commands:\n"
    "  list [formats|udfs] [--json]         the dataset formats and analyses, with parameters\n"
    "  info PATH [--format NAME] [--set KEY=VALUE]... [--json]\n"
    "                                       describe a dataset\n"
    "  run UDF[,UDF...] PATH [options] -o OUT\n"
    "                                       run analyses and write their results\n"
    "\n"
    "options:\n"
    "  -h, --help      show this help ('tessera COMMAND --help' for a command's options)\n"
    "  -V, --version   show the version\n"
    "\n"
    "Exit status: 0 success, 1 error, 2 usage error, 130 interrupted.\n";

typedef struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
} command_t;

static const command_t COMMANDS[] = {
    {"list", cli_cmd_list},
    {"info", cli_cmd_info},
    {"run", cli_cmd_run},
};

static int print_version(void)
{
    printf("tessera %d.%d.%d (library %s)\n", TSR_VERSION_MAJOR, TSR_VERSION_MINOR,
           TSR_VERSION_PATCH, tsr_version_string());
    return CLI_OK;
}

static int dispatch(int argc, char **argv)
{
    if (argc < 2)
        return cli_error(CLI_USAGE, "no command given (see 'tessera --help')");
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(MAIN_USAGE, stdout);
        return CLI_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V") || !strcmp(cmd, "version"))
        return print_version();
    for (size_t i = 0; i < sizeof COMMANDS / sizeof COMMANDS[0]; i++)
        if (!strcmp(cmd, COMMANDS[i].name))
            return COMMANDS[i].fn(argc - 1, argv + 1);
    if (cmd[0] == '-')
        return cli_error(CLI_USAGE, "unknown option '%s' (see 'tessera --help')", cmd);
    return cli_error(CLI_USAGE,
                     "unknown command '%s' (expected list, info or run; see "
                     "'tessera --help')",
                     cmd);
}

int main(int argc, char **argv)
{
    int rc = dispatch(argc, argv);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        if (rc == CLI_OK)
            rc = cli_error(CLI_FAIL, "writing to standard output failed");
    }
    return rc;
}
