/*
 * util.c — small helpers of the `tessera` command: the one-line error
 * reporter, strict number parsing, and the textual forms of shapes and
 * numpy typestrings.
 *
 * cli_error() guarantees its output is a single line: whatever the message
 * holds (a library message may quote a file's header, which may contain
 * newlines), control characters are replaced and one '\n' ends it.
 */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Print msg on one line after the program's name. */
static void print_one_line(const char *msg)
{
    size_t len = strlen(msg);
    while (len > 0 && isspace((unsigned char)msg[len - 1]))
        len--;
    fputs("tessera: ", stderr);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)msg[i];
        fputc(c < 0x20 || c == 0x7f ? ' ' : c, stderr);
    }
    fputc('\n', stderr);
    fflush(stderr);
}

int cli_error(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    print_one_line(msg);
    return code;
}

int cli_lib_error(int exit_code, const tsr_ctx_t *ctx, int rc, const char *path)
{
    const char *msg = ctx ? tsr_ctx_errmsg(ctx) : NULL;
    if (!msg || !*msg)
        msg = tsr_strerror(rc);
    if (path && *path && !strstr(msg, path))
        return cli_error(exit_code, "%s: %s", path, msg);
    return cli_error(exit_code, "%s", msg);
}

/* ---- numbers ----------------------------------------------------------- */

bool cli_parse_i64(const char *s, bool allow_suffix, int64_t *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return false;
    int shift = 0;
    if (allow_suffix && *end) {
        switch (*end) {
        case 'k':
        case 'K': shift = 10; break;
        case 'm':
        case 'M': shift = 20; break;
        case 'g':
        case 'G': shift = 30; break;
        default: return false;
        }
        end++;
    }
    if (*end)
        return false;
    if (shift && (v > (INT64_MAX >> shift) || v < (INT64_MIN >> shift)))
        return false;
    *out = shift ? (int64_t)v * ((int64_t)1 << shift) : (int64_t)v;
    return true;
}

bool cli_parse_double(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* ---- text forms -------------------------------------------------------- */

/* Append formatted text at *pos; once buf is full, later appends do nothing
 * (the text stays terminated and truncated). */
static void append(char *buf, size_t n, size_t *pos, const char *fmt, ...) CLI_PRINTF(4, 5);
static void append(char *buf, size_t n, size_t *pos, const char *fmt, ...)
{
    if (*pos >= n)
        return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + *pos, n - *pos, fmt, ap);
    va_end(ap);
    if (w > 0)
        *pos += (size_t)w;
}

void cli_format_shape(const int64_t *dims, int ndim, char *buf, size_t n)
{
    size_t pos = 0;
    buf[0] = '\0';
    append(buf, n, &pos, "(");
    for (int i = 0; i < ndim; i++)
        append(buf, n, &pos, "%s%" PRId64, i ? ", " : "", dims[i]);
    append(buf, n, &pos, ndim == 1 ? ",)" : ")");
}

void cli_typestr(tsr_dtype_t dt, bool big_endian, char buf[8], const char **byteorder)
{
    char kind;
    switch (dt) {
    case TSR_U8:
    case TSR_U16:
    case TSR_U32:
    case TSR_U64: kind = 'u'; break;
    case TSR_I8:
    case TSR_I16:
    case TSR_I32:
    case TSR_I64: kind = 'i'; break;
    case TSR_F32:
    case TSR_F64: kind = 'f'; break;
    case TSR_C64: kind = 'c'; break;
    case TSR_BOOL: kind = 'b'; break;
    default: kind = '?'; break;
    }
    size_t size = tsr_dtype_size(dt);
    const char *bo = size <= 1 ? "|" : big_endian ? ">" : "<";
    snprintf(buf, 8, "%s%c%u", bo, kind, (unsigned)size);
    if (byteorder)
        *byteorder = bo;
}
