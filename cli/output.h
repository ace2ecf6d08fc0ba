/*
 * output.h — where `tessera run -o OUT` writes its results.
 *
 * OUT ending in '/' or naming an existing directory receives one
 * <udf>.<buffer>.npy per result buffer; .h5/.hdf5 receives every buffer;
 * .npy, .tif/.tiff and .png receive one buffer: the only one, or the one
 * --buffer names.  The kind is decided before the run, so a bad name fails
 * before any data is read.
 */
#ifndef TSR_CLI_OUTPUT_H
#define TSR_CLI_OUTPUT_H

#include "tessera.h"

#include <stdbool.h>

typedef enum { CLI_OUT_DIR, CLI_OUT_H5, CLI_OUT_ARRAY } cli_out_kind_t;

typedef struct cli_output {
    cli_out_kind_t kind;
    char *path;         /* malloc'd; directories end in '/' */
    const char *buffer; /* --buffer NAME, or NULL */
    tsr_export_opts_t export_opts;
    bool quiet; /* no "wrote PATH" lines */
} cli_output_t;

/* Decide the kind of out and fill o; buffer (may be NULL) is --buffer
 * (export options and quiet are the caller's to set).  Returns CLI_OK, or
 * CLI_USAGE for a name whose type cannot be told or a --buffer with an
 * output that takes every buffer (message printed). */
int cli_output_init(cli_output_t *o, const char *out, const char *buffer);
void cli_output_destroy(cli_output_t *o);

/* Write res as o says and print "wrote PATH" on stdout per file (unless
 * quiet).  Returns CLI_OK or an exit code with the message printed. */
int cli_output_write(const cli_output_t *o, tsr_ctx_t *ctx, const tsr_results_t *res);

#endif
