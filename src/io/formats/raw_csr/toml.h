/*
 * toml.h — a small, strict TOML subset, enough for the sidecar files that
 * describe datasets (LiberTEM's raw_csr .toml).
 *
 * Supported: comments, [table] headers (bare, quoted or dotted names), and
 * key = value pairs (bare, quoted or dotted keys) whose value is a basic
 * "string" (with escapes, \uXXXX included) or a 'literal string', an
 * integer (decimal, with _ between digits), a float, a boolean, or an array
 * of those on one or several lines (arrays of integers are kept as
 * numbers).  Anything else — multi-line strings, inline tables, arrays of
 * tables, dates — is refused with an error naming the line.  Duplicate keys
 * are refused, as TOML requires.  Every length is bounded.
 */
#ifndef TSR_IO_FORMATS_TOML_H
#define TSR_IO_FORMATS_TOML_H

#include "core/core.h"

#define TSR__TOML_MAX_ENTRIES 1024
#define TSR__TOML_MAX_NAME 128    /* table and key names, bytes */
#define TSR__TOML_MAX_STRING 4096 /* string values, bytes */
#define TSR__TOML_MAX_ARRAY 64    /* array elements */

typedef enum {
    TSR__TOML_STRING = 0,
    TSR__TOML_INT,
    TSR__TOML_FLOAT,
    TSR__TOML_BOOL,
    TSR__TOML_ARRAY /* ints[] holds the integers; all_ints says whether every element was one */
} tsr__toml_type_t;

typedef struct tsr__toml_entry {
    char table[TSR__TOML_MAX_NAME]; /* "" for keys before the first header */
    char key[TSR__TOML_MAX_NAME];
    tsr__toml_type_t type;
    int line;
    char *str; /* STRING: NUL-terminated, allocated */
    int64_t i;
    double f;
    bool b;
    int n;         /* ARRAY: elements */
    bool all_ints; /* ARRAY: every element an integer */
    int64_t ints[TSR__TOML_MAX_ARRAY];
} tsr__toml_entry_t;

typedef struct tsr__toml {
    tsr__toml_entry_t *e;
    int n;
} tsr__toml_t;

/* Parse n bytes of text.  On failure returns TSR_ECORRUPT (or TSR_ENOMEM)
 * with "line N: what" in err, and t is left empty. */
int tsr__toml_parse(tsr_ctx_t *ctx, const char *text, size_t n, tsr__toml_t *t, char *err,
                    size_t errlen);
void tsr__toml_free(tsr_ctx_t *ctx, tsr__toml_t *t);
/* The entry table.key, or NULL. */
const tsr__toml_entry_t *tsr__toml_get(const tsr__toml_t *t, const char *table, const char *key);
/* The name of a type for messages ("string", "integer", ...). */
const char *tsr__toml_type_name(tsr__toml_type_t type);

#endif
