/*
 * json_out.h — the little JSON the CLI prints (`list --json`, `info
 * --json`): string escaping and arrays of integers.  Callers write the
 * punctuation themselves; these helpers only make values safe.
 */
#ifndef TSR_CLI_JSON_OUT_H
#define TSR_CLI_JSON_OUT_H

#include <stdint.h>
#include <stdio.h>

/* Write s as a JSON string literal; NULL is written as null.  Control
 * characters are escaped and invalid UTF-8 bytes become U+FFFD, so the
 * output is valid JSON whatever s holds. */
void cli_json_str(FILE *f, const char *s);
/* Write "[d0,d1,...]". */
void cli_json_dims(FILE *f, const int64_t *dims, int ndim);

#endif
