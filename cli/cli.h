/*
 * cli.h — what the parts of the `tessera` command share: exit codes, the
 * one-line error reporter, number parsing and the command entry points.
 *
 * The CLI is a user of the public API only (include/tessera.h); nothing here
 * reaches into src/.  Error discipline: the function that detects a failure
 * prints it with cli_error() (or cli_lib_error()) and returns the exit code;
 * its callers only pass that code up.  So every failing command prints
 * exactly one line, "tessera: <message>", on stderr.
 */
#ifndef TSR_CLI_H
#define TSR_CLI_H

#include "tessera.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CLI_PRINTF(a, b)
#endif

/* Exit codes. */
enum {
    CLI_OK = 0,
    CLI_FAIL = 1,         /* runtime error: unreadable file, failed run, ... */
    CLI_USAGE = 2,        /* bad command line */
    CLI_INTERRUPTED = 130 /* SIGINT, as a shell reports it */
};

/* Print "tessera: <message>" as one line on stderr (newlines in the message
 * become spaces) and return code. */
int cli_error(int code, const char *fmt, ...) CLI_PRINTF(2, 3);

/* Report a failed library call: the context's message, or the code's
 * description when the context has none.  If path is not NULL and the
 * message does not mention it, the message is prefixed with "path: ".
 * Returns exit_code. */
int cli_lib_error(int exit_code, const tsr_ctx_t *ctx, int rc, const char *path);

/* Parse a whole string as a decimal integer (an optional k/M/G suffix, in
 * powers of 1024, when allow_suffix).  Returns false on garbage or
 * overflow. */
bool cli_parse_i64(const char *s, bool allow_suffix, int64_t *out);
/* Parse a whole string as a finite double. */
bool cli_parse_double(const char *s, double *out);

/* Write a shape as "(4, 5)" into buf (always terminated). */
void cli_format_shape(const int64_t *dims, int ndim, char *buf, size_t n);

/* The numpy typestring of a type and byte order, e.g. "<u2", ">f4", "|u1";
 * *byteorder receives "<", ">" or "|".  buf needs 8 bytes. */
void cli_typestr(tsr_dtype_t dt, bool big_endian, char buf[8], const char **byteorder);

/* Check a KEY=VALUE word given to option opt ("--set", "--param"):
 * CLI_OK, or CLI_USAGE with a message. */
int cli_check_kv(const char *opt, const char *kv);

/* Open the dataset at path with format (NULL or "auto": detect) and the
 * KEY=VALUE dataset parameters sets[0..n_sets).  Returns CLI_OK, CLI_USAGE
 * for an unknown format name, or CLI_FAIL with the library's message naming
 * the path (all printed). */
int cli_open_dataset(tsr_ctx_t *ctx, const char *path, const char *format, const char *const *sets,
                     size_t n_sets, tsr_dataset_t **out);

/* Commands: argv[0] is the command's name.  Each returns an exit code. */
int cli_cmd_list(int argc, char **argv);
int cli_cmd_info(int argc, char **argv);
int cli_cmd_run(int argc, char **argv);

#endif
