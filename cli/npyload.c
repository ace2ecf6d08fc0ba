/*
 * npyload.c — the CLI's .npy reader (see npyload.h).
 *
 * Layout of an .npy file: the magic "\x93NUMPY", a major and a minor version
 * byte, the header length (2 bytes little-endian for version 1, 4 bytes for
 * versions 2 and 3), then the header — a Python dict literal with the keys
 * 'descr', 'fortran_order' and 'shape' — and the raw data in C or Fortran
 * order.  The header is parsed with a small recursive-descent reader that
 * accepts exactly the literals numpy writes; anything else is reported as a
 * malformed header rather than guessed at.
 */
#include "npyload.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_HEADER (1u << 20) /* far more than numpy ever writes */

/* Format a message into err and return -1. */
static int fail(char *err, size_t errlen, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* =========================================================================
 * Header dict parser
 * ========================================================================= */

typedef struct hdr_parser {
    const char *p, *end;
    char descr[16];
    bool have_descr, have_fortran, have_shape;
    bool fortran;
    int ndim;
    int64_t shape[TSR_MAX_DIMS];
    const char *why; /* what was wrong, for the message */
} hdr_parser_t;

static void skip_ws(hdr_parser_t *h)
{
    while (h->p < h->end && isspace((unsigned char)*h->p))
        h->p++;
}

static bool expect(hdr_parser_t *h, char c)
{
    skip_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

/* A quoted string (either quote) into buf; false if malformed or too long. */
static bool parse_string(hdr_parser_t *h, char *buf, size_t n)
{
    skip_ws(h);
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return false;
    char q = *h->p++;
    size_t len = 0;
    while (h->p < h->end && *h->p != q) {
        if (len + 1 >= n)
            return false;
        buf[len++] = *h->p++;
    }
    if (h->p >= h->end)
        return false;
    h->p++;
    buf[len] = '\0';
    return true;
}

static bool parse_bool(hdr_parser_t *h, bool *out)
{
    skip_ws(h);
    size_t left = (size_t)(h->end - h->p);
    if (left >= 4 && !strncmp(h->p, "True", 4)) {
        h->p += 4;
        *out = true;
        return true;
    }
    if (left >= 5 && !strncmp(h->p, "False", 5)) {
        h->p += 5;
        *out = false;
        return true;
    }
    return false;
}

/* A non-negative integer (Python 2 files may end it with 'L'). */
static bool parse_dim(hdr_parser_t *h, int64_t *out)
{
    skip_ws(h);
    int64_t v = 0;
    const char *start = h->p;
    while (h->p < h->end && isdigit((unsigned char)*h->p)) {
        int d = *h->p++ - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (h->p == start)
        return false;
    if (h->p < h->end && *h->p == 'L')
        h->p++;
    *out = v;
    return true;
}

/* "(a, b, c)", "(a,)" or "()". */
static bool parse_shape(hdr_parser_t *h)
{
    if (!expect(h, '('))
        return false;
    h->ndim = 0;
    if (expect(h, ')'))
        return true;
    for (;;) {
        if (h->ndim == TSR_MAX_DIMS) {
            h->why = "too many dimensions";
            return false;
        }
        if (!parse_dim(h, &h->shape[h->ndim++]))
            return false;
        if (expect(h, ')'))
            return true;
        if (!expect(h, ','))
            return false;
        if (expect(h, ')'))
            return true;
    }
}

static bool parse_entry(hdr_parser_t *h)
{
    char key[32];
    if (!parse_string(h, key, sizeof key) || !expect(h, ':'))
        return false;
    if (!strcmp(key, "descr")) {
        skip_ws(h);
        if (h->p < h->end && *h->p == '[') {
            h->why = "structured dtypes are not supported";
            return false;
        }
        h->have_descr = parse_string(h, h->descr, sizeof h->descr);
        return h->have_descr;
    }
    if (!strcmp(key, "fortran_order"))
        return (h->have_fortran = parse_bool(h, &h->fortran));
    if (!strcmp(key, "shape"))
        return (h->have_shape = parse_shape(h));
    h->why = "unknown key in header";
    return false;
}

static bool parse_dict(hdr_parser_t *h)
{
    if (!expect(h, '{'))
        return false;
    if (expect(h, '}'))
        return true;
    for (;;) {
        if (!parse_entry(h))
            return false;
        if (expect(h, '}'))
            return true;
        if (!expect(h, ','))
            return false;
        if (expect(h, '}'))
            return true;
    }
}

/* =========================================================================
 * dtype
 * ========================================================================= */

/* Fill kind, itemsize and byte order from a typestring like "<u2". */
static bool parse_descr(const char *d, cli_npy_t *a)
{
    static const union {
        uint16_t u;
        uint8_t b[2];
    } probe = {0x0102};
    bool host_big = probe.b[0] == 0x01;
    char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=')
        return false;
    char kind = d[1];
    char *end;
    long size = strtol(d + 2, &end, 10);
    if (end == d + 2 || *end)
        return false;
    switch (kind) {
    case 'b':
        if (size != 1)
            return false;
        break;
    case 'u':
    case 'i':
        if (size != 1 && size != 2 && size != 4 && size != 8)
            return false;
        break;
    case 'f':
        if (size != 4 && size != 8)
            return false;
        break;
    default: return false;
    }
    a->kind = kind;
    a->itemsize = (int)size;
    a->big_endian = order == '>' || (order == '=' && host_big);
    snprintf(a->descr, sizeof a->descr, "%s", d);
    return true;
}

/* =========================================================================
 * File reading
 * ========================================================================= */

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Read the preamble and header text; on success *hdr is malloc'd. */
static int read_header(FILE *f, const char *path, char **hdr, size_t *hlen, char *err,
                       size_t errlen)
{
    unsigned char pre[12];
    size_t got = fread(pre, 1, 10, f);
    if (got < 10 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return fail(err, errlen, "%s: not an NPY file (bad magic)", path);
    int major = pre[6];
    if (major < 1 || major > 3)
        return fail(err, errlen, "%s: unsupported NPY version %d.%d", path, major, pre[7]);
    size_t len = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (major >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2)
            return fail(err, errlen, "%s: truncated NPY header", path);
        len = le32(pre + 8);
    }
    if (len > NPY_MAX_HEADER)
        return fail(err, errlen, "%s: NPY header length %zu is implausible", path, len);
    *hdr = malloc(len + 1);
    if (!*hdr)
        return fail(err, errlen, "%s: out of memory", path);
    if (fread(*hdr, 1, len, f) != len) {
        free(*hdr);
        *hdr = NULL;
        return fail(err, errlen, "%s: truncated NPY header", path);
    }
    (*hdr)[len] = '\0';
    *hlen = len;
    return 0;
}

/* Parse the header text into a's dtype and shape. */
static int interpret_header(const char *hdr, size_t hlen, const char *path, cli_npy_t *a, char *err,
                            size_t errlen)
{
    hdr_parser_t h = {.p = hdr, .end = hdr + hlen};
    if (!parse_dict(&h) || !h.have_descr || !h.have_fortran || !h.have_shape)
        return fail(err, errlen, "%s: malformed NPY header (%s)", path,
                    h.why ? h.why : "expected {'descr': ..., 'fortran_order': ..., 'shape': ...}");
    if (h.fortran)
        return fail(err, errlen,
                    "%s: Fortran-order arrays are not supported (save it with "
                    "numpy.ascontiguousarray)",
                    path);
    if (!parse_descr(h.descr, a))
        return fail(err, errlen,
                    "%s: unsupported dtype '%s' (expected bool, integers, "
                    "float32 or float64)",
                    path, h.descr);
    a->ndim = h.ndim;
    a->count = 1;
    for (int i = 0; i < h.ndim; i++) {
        a->shape[i] = h.shape[i];
        if (h.shape[i] != 0 && a->count > INT64_MAX / 8 / h.shape[i])
            return fail(err, errlen, "%s: NPY shape too large", path);
        a->count *= h.shape[i];
    }
    return 0;
}

static int read_data(FILE *f, const char *path, cli_npy_t *a, char *err, size_t errlen)
{
    size_t nbytes = (size_t)a->count * (size_t)a->itemsize;
    a->data = malloc(nbytes ? nbytes : 1);
    if (!a->data)
        return fail(err, errlen, "%s: out of memory for %zu bytes", path, nbytes);
    size_t got = fread(a->data, 1, nbytes, f);
    if (got != nbytes)
        return fail(err, errlen, "%s: truncated NPY data: expected %zu bytes, found %zu", path,
                    nbytes, got);
    return 0;
}

int cli_npy_load(const char *path, cli_npy_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, errlen, "%s: %s", path, strerror(errno));
    char *hdr = NULL;
    size_t hlen = 0;
    int rc = read_header(f, path, &hdr, &hlen, err, errlen);
    if (rc == 0)
        rc = interpret_header(hdr, hlen, path, out, err, errlen);
    if (rc == 0)
        rc = read_data(f, path, out, err, errlen);
    free(hdr);
    fclose(f);
    if (rc != 0)
        cli_npy_free(out);
    return rc;
}

void cli_npy_free(cli_npy_t *a)
{
    if (!a)
        return;
    free(a->data);
    a->data = NULL;
}

/* =========================================================================
 * Conversion
 * ========================================================================= */

/* Element i as a double (integers above 2^53 round, which keeps them
 * nonzero, all a mask needs). */
static double elem(const cli_npy_t *a, int64_t i)
{
    static const union {
        uint16_t u;
        uint8_t b[2];
    } probe = {0x0102};
    bool host_big = probe.b[0] == 0x01;
    unsigned char b[8];
    const unsigned char *src = a->data + (size_t)i * (size_t)a->itemsize;
    int n = a->itemsize;
    for (int k = 0; k < n; k++)
        b[k] = (a->big_endian != host_big && n > 1) ? src[n - 1 - k] : src[k];
    union {
        uint8_t u8;
        uint16_t u16;
        uint32_t u32;
        uint64_t u64;
        int8_t i8;
        int16_t i16;
        int32_t i32;
        int64_t i64;
        float f32;
        double f64;
    } v;
    memcpy(&v, b, (size_t)n);
    switch (a->kind) {
    case 'b': return v.u8 != 0;
    case 'u': return n == 1 ? v.u8 : n == 2 ? v.u16 : n == 4 ? v.u32 : (double)v.u64;
    case 'i': return n == 1 ? v.i8 : n == 2 ? v.i16 : n == 4 ? v.i32 : (double)v.i64;
    default: return n == 4 ? v.f32 : v.f64;
    }
}

float *cli_npy_to_f32(const cli_npy_t *a)
{
    float *out = malloc(a->count ? (size_t)a->count * sizeof *out : 1);
    if (!out)
        return NULL;
    for (int64_t i = 0; i < a->count; i++)
        out[i] = (float)elem(a, i);
    return out;
}

uint8_t *cli_npy_to_mask(const cli_npy_t *a)
{
    uint8_t *out = malloc(a->count ? (size_t)a->count : 1);
    if (!out)
        return NULL;
    for (int64_t i = 0; i < a->count; i++)
        out[i] = elem(a, i) != 0.0;
    return out;
}
