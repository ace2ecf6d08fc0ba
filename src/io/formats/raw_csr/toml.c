/*
 * toml.c — the TOML subset of toml.h: a single pass over the text with a
 * cursor that never reads past the end (the text need not be
 * NUL-terminated, and a NUL byte inside is an error), building a flat list
 * of (table, key, value) entries.
 */
#include "io/formats/raw_csr/toml.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

typedef struct cur {
    const char *p, *end;
    int line;
    char *err;
    size_t errlen;
} cur_t;

static int fail(cur_t *c, const char *fmt, ...) TSR__PRINTF(2, 3);
static int fail(cur_t *c, const char *fmt, ...)
{
    char what[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tsr__seterr(c->err, c->errlen, TSR_ECORRUPT, "line %d: %s", c->line, what);
}

static bool at_end(const cur_t *c)
{
    return c->p >= c->end;
}

static int peek(const cur_t *c)
{
    return c->p < c->end ? (unsigned char)*c->p : -1;
}

static void skip_ws(cur_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

/* Skip whitespace and a comment up to (not past) the end of the line. */
static int skip_ws_comment(cur_t *c)
{
    skip_ws(c);
    if (peek(c) == '#') {
        while (c->p < c->end && *c->p != '\n') {
            unsigned char ch = (unsigned char)*c->p;
            if (ch == 0 || (ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
                return fail(c, "control character 0x%02x in a comment", ch);
            c->p++;
        }
    }
    return 0;
}

/* After a value or header: only a comment, then the end of the line. */
static int end_of_line(cur_t *c)
{
    int rc = skip_ws_comment(c);
    if (rc)
        return rc;
    if (peek(c) == '\r')
        c->p++;
    if (at_end(c))
        return 0;
    if (*c->p != '\n')
        return fail(c, "unexpected '%c' after the value (one key = value per line)",
                    (unsigned char)*c->p >= 0x20 && (unsigned char)*c->p < 0x7f ? *c->p : '?');
    c->p++;
    c->line++;
    return 0;
}

static bool bare_char(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* Append n bytes to a bounded buffer. */
static int put(cur_t *c, char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + n >= cap)
        return fail(c, "string or name longer than %zu bytes", cap - 1);
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = 0;
    return 0;
}

static int utf8_put(cur_t *c, char *buf, size_t cap, size_t *len, uint32_t u)
{
    char b[4];
    size_t n;
    if (u > 0x10FFFF || (u >= 0xD800 && u <= 0xDFFF))
        return fail(c, "escape \\u%04X is not a Unicode scalar value", (unsigned)u);
    if (u < 0x80) {
        b[0] = (char)u;
        n = 1;
    } else if (u < 0x800) {
        b[0] = (char)(0xC0 | u >> 6);
        b[1] = (char)(0x80 | (u & 0x3F));
        n = 2;
    } else if (u < 0x10000) {
        b[0] = (char)(0xE0 | u >> 12);
        b[1] = (char)(0x80 | ((u >> 6) & 0x3F));
        b[2] = (char)(0x80 | (u & 0x3F));
        n = 3;
    } else {
        b[0] = (char)(0xF0 | u >> 18);
        b[1] = (char)(0x80 | ((u >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((u >> 6) & 0x3F));
        b[3] = (char)(0x80 | (u & 0x3F));
        n = 4;
    }
    return put(c, buf, cap, len, b, n);
}

/* A quoted string starting at the quote; into buf (cap bytes). */
static int quoted(cur_t *c, char *buf, size_t cap)
{
    char q = *c->p++;
    size_t len = 0;
    buf[0] = 0;
    if (c->end - c->p >= 2 && c->p[0] == q && c->p[1] == q)
        return fail(c, "multi-line strings are not supported");
    for (;;) {
        if (at_end(c) || *c->p == '\n')
            return fail(c, "unterminated string");
        unsigned char ch = (unsigned char)*c->p;
        if (ch == (unsigned char)q) {
            c->p++;
            return 0;
        }
        if (ch == 0 || (ch < 0x20 && ch != '\t') || ch == 0x7f)
            return fail(c, "control character 0x%02x in a string", ch);
        if (ch == '\\' && q == '"') {
            c->p++;
            if (at_end(c))
                return fail(c, "unterminated string");
            char e = *c->p++;
            const char *map = "b\bt\tn\nf\fr\r\"\"\\\\";
            const char *m = NULL;
            for (const char *k = map; *k; k += 2)
                if (*k == e)
                    m = k + 1;
            int rc;
            if (m) {
                rc = put(c, buf, cap, &len, m, 1);
            } else if (e == 'u' || e == 'U') {
                int nd = e == 'u' ? 4 : 8;
                if (c->end - c->p < nd)
                    return fail(c, "truncated \\%c escape", e);
                uint32_t u = 0;
                for (int i = 0; i < nd; i++) {
                    char h = c->p[i];
                    int v = h >= '0' && h <= '9'   ? h - '0'
                            : h >= 'a' && h <= 'f' ? h - 'a' + 10
                            : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                                   : -1;
                    if (v < 0)
                        return fail(c, "bad hex digit in a \\%c escape", e);
                    u = u << 4 | (uint32_t)v;
                }
                c->p += nd;
                rc = utf8_put(c, buf, cap, &len, u);
            } else {
                return fail(c, "unknown escape '\\%c' in a string",
                            (unsigned char)e >= 0x20 && (unsigned char)e < 0x7f ? e : '?');
            }
            if (rc)
                return rc;
            continue;
        }
        int rc = put(c, buf, cap, &len, c->p, 1);
        if (rc)
            return rc;
        c->p++;
    }
}

/* A key or table name: bare or quoted parts joined by dots. */
static int name(cur_t *c, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = 0;
    for (;;) {
        skip_ws(c);
        int ch = peek(c);
        if (ch == '"' || ch == '\'') {
            char part[TSR__TOML_MAX_NAME];
            int rc = quoted(c, part, sizeof part);
            if (rc)
                return rc;
            if ((rc = put(c, buf, cap, &len, part, strlen(part))))
                return rc;
        } else if (bare_char(ch)) {
            const char *s = c->p;
            while (bare_char(peek(c)))
                c->p++;
            int rc = put(c, buf, cap, &len, s, (size_t)(c->p - s));
            if (rc)
                return rc;
        } else {
            return fail(c, "expected a key or table name");
        }
        skip_ws(c);
        if (peek(c) != '.')
            return 0;
        c->p++;
        int rc = put(c, buf, cap, &len, ".", 1);
        if (rc)
            return rc;
    }
}

/* A number or boolean token: the characters up to a delimiter. */
static int scalar(cur_t *c, tsr__toml_entry_t *e)
{
    const char *s = c->p;
    while (c->p < c->end && !strchr(" \t\r\n,]#", *c->p) && *c->p != 0)
        c->p++;
    size_t n = (size_t)(c->p - s);
    if (n == 0)
        return fail(c, "expected a value");
    if (n >= 64)
        return fail(c, "value token too long");
    char tok[64];
    memcpy(tok, s, n);
    tok[n] = 0;
    if (strcmp(tok, "true") == 0 || strcmp(tok, "false") == 0) {
        e->type = TSR__TOML_BOOL;
        e->b = tok[0] == 't';
        return 0;
    }
    /* integers: [+-]digits with single '_' between digits, no leading 0 */
    char digits[64];
    size_t k = 0, i = 0;
    bool is_int = true;
    if (tok[0] == '+' || tok[0] == '-')
        digits[k++] = tok[i++];
    size_t first = i;
    for (; tok[i]; i++) {
        if (tok[i] >= '0' && tok[i] <= '9') {
            digits[k++] = tok[i];
        } else if (tok[i] == '_' && i > first && tok[i - 1] != '_' && tok[i + 1] >= '0' &&
                   tok[i + 1] <= '9') {
            continue;
        } else {
            is_int = false;
            break;
        }
    }
    digits[k] = 0;
    if (is_int && i > first) {
        if (tok[first] == '0' && tok[first + 1])
            return fail(c, "integer '%s' has a leading zero", tok);
        errno = 0;
        char *endp;
        long long v = strtoll(digits, &endp, 10);
        if (errno == ERANGE || *endp)
            return fail(c, "integer '%s' is out of range", tok);
        e->type = TSR__TOML_INT;
        e->i = v;
        return 0;
    }
    /* floats: digits, one '.', exponent; inf and nan */
    const char *t = tok + (tok[0] == '+' || tok[0] == '-');
    if (strcmp(t, "inf") == 0 || strcmp(t, "nan") == 0) {
        e->type = TSR__TOML_FLOAT;
        e->f = t[0] == 'i' ? (tok[0] == '-' ? -INFINITY : INFINITY) : NAN;
        return 0;
    }
    k = 0;
    for (i = 0; tok[i]; i++) {
        char ch = tok[i];
        if (!((ch >= '0' && ch <= '9') || ch == '.' || ch == 'e' || ch == 'E' || ch == '+' ||
              ch == '-' || ch == '_'))
            return fail(c,
                        "unsupported value '%s' (strings, integers, floats, booleans and "
                        "arrays are supported)",
                        tok);
        if (ch == '_' && !(i > 0 && tok[i - 1] >= '0' && tok[i - 1] <= '9' && tok[i + 1] >= '0' &&
                           tok[i + 1] <= '9'))
            return fail(c, "malformed number '%s'", tok);
        if (ch != '_')
            digits[k++] = ch;
    }
    digits[k] = 0;
    char *endp;
    errno = 0;
    double d = strtod(digits, &endp);
    if (*endp || endp == digits ||
        !(tok[0] == '-' || tok[0] == '+' || (tok[0] >= '0' && tok[0] <= '9')))
        return fail(c, "malformed number '%s'", tok);
    e->type = TSR__TOML_FLOAT;
    e->f = d;
    return 0;
}

static int value(cur_t *c, tsr_ctx_t *ctx, tsr__toml_entry_t *e);

static int array(cur_t *c, tsr_ctx_t *ctx, tsr__toml_entry_t *e)
{
    c->p++; /* '[' */
    e->type = TSR__TOML_ARRAY;
    e->n = 0;
    e->all_ints = true;
    for (;;) {
        /* whitespace, newlines and comments may sit between elements */
        for (;;) {
            int rc = skip_ws_comment(c);
            if (rc)
                return rc;
            if (peek(c) == '\r')
                c->p++;
            if (peek(c) != '\n')
                break;
            c->p++;
            c->line++;
        }
        if (at_end(c))
            return fail(c, "unterminated array");
        if (*c->p == ']') {
            c->p++;
            return 0;
        }
        if (e->n >= TSR__TOML_MAX_ARRAY)
            return fail(c, "array longer than %d elements", TSR__TOML_MAX_ARRAY);
        tsr__toml_entry_t el;
        memset(&el, 0, sizeof el);
        if (peek(c) == '[')
            return fail(c, "nested arrays are not supported");
        int rc = value(c, ctx, &el);
        tsr__free(ctx, el.str);
        if (rc)
            return rc;
        if (el.type == TSR__TOML_INT)
            e->ints[e->n] = el.i;
        else
            e->all_ints = false;
        e->n++;
        for (;;) {
            rc = skip_ws_comment(c);
            if (rc)
                return rc;
            if (peek(c) == '\r')
                c->p++;
            if (peek(c) != '\n')
                break;
            c->p++;
            c->line++;
        }
        if (peek(c) == ',') {
            c->p++;
            continue;
        }
        if (peek(c) == ']') {
            c->p++;
            return 0;
        }
        if (at_end(c))
            return fail(c, "unterminated array");
        return fail(c, "expected ',' or ']' in an array");
    }
}

static int value(cur_t *c, tsr_ctx_t *ctx, tsr__toml_entry_t *e)
{
    skip_ws(c);
    int ch = peek(c);
    if (ch == '"' || ch == '\'') {
        char *buf = tsr__malloc(ctx, TSR__TOML_MAX_STRING);
        if (!buf)
            return tsr__seterr(c->err, c->errlen, TSR_ENOMEM, "out of memory");
        int rc = quoted(c, buf, TSR__TOML_MAX_STRING);
        if (rc) {
            tsr__free(ctx, buf);
            return rc;
        }
        e->type = TSR__TOML_STRING;
        e->str = tsr__strdup(ctx, buf);
        tsr__free(ctx, buf);
        return e->str ? 0 : tsr__seterr(c->err, c->errlen, TSR_ENOMEM, "out of memory");
    }
    if (ch == '[')
        return array(c, ctx, e);
    if (ch == '{')
        return fail(c, "inline tables are not supported");
    return scalar(c, e);
}

void tsr__toml_free(tsr_ctx_t *ctx, tsr__toml_t *t)
{
    if (!t)
        return;
    for (int i = 0; i < t->n; i++)
        tsr__free(ctx, t->e[i].str);
    tsr__free(ctx, t->e);
    t->e = NULL;
    t->n = 0;
}

const tsr__toml_entry_t *tsr__toml_get(const tsr__toml_t *t, const char *table, const char *key)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->e[i].table, table) == 0 && strcmp(t->e[i].key, key) == 0)
            return &t->e[i];
    return NULL;
}

const char *tsr__toml_type_name(tsr__toml_type_t type)
{
    switch (type) {
    case TSR__TOML_STRING: return "string";
    case TSR__TOML_INT: return "integer";
    case TSR__TOML_FLOAT: return "float";
    case TSR__TOML_BOOL: return "boolean";
    case TSR__TOML_ARRAY: return "array";
    }
    return "?";
}

static bool table_seen(char (*tables)[TSR__TOML_MAX_NAME], int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(tables[i], name) == 0)
            return true;
    return false;
}

int tsr__toml_parse(tsr_ctx_t *ctx, const char *text, size_t n, tsr__toml_t *t, char *err,
                    size_t errlen)
{
    cur_t c = {text, text + n, 1, err, errlen};
    char table[TSR__TOML_MAX_NAME] = "";
    /* headers seen, to refuse a table defined twice */
    enum { MAX_TABLES = 64 };
    char(*tables)[TSR__TOML_MAX_NAME] = tsr__malloc(ctx, MAX_TABLES * sizeof *tables);
    int n_tables = 0, cap = 0, rc = 0;
    t->e = NULL;
    t->n = 0;
    if (!tables)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    /* a UTF-8 byte order mark is allowed */
    if (n >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        c.p += 3;
    while (!at_end(&c)) {
        if ((rc = skip_ws_comment(&c)))
            goto fail;
        if (peek(&c) == '\r')
            c.p++;
        if (at_end(&c))
            break;
        if (*c.p == '\n') {
            c.p++;
            c.line++;
            continue;
        }
        if (*c.p == '[') {
            c.p++;
            if (peek(&c) == '[') {
                rc = fail(&c, "arrays of tables ([[...]]) are not supported");
                goto fail;
            }
            if ((rc = name(&c, table, sizeof table)))
                goto fail;
            if (peek(&c) != ']') {
                rc = fail(&c, "expected ']' after the table name");
                goto fail;
            }
            c.p++;
            if (table_seen(tables, n_tables, table)) {
                rc = fail(&c, "table [%s] is defined twice", table);
                goto fail;
            }
            if (n_tables == MAX_TABLES) {
                rc = fail(&c, "more than %d tables", MAX_TABLES);
                goto fail;
            }
            snprintf(tables[n_tables++], TSR__TOML_MAX_NAME, "%s", table);
            if ((rc = end_of_line(&c)))
                goto fail;
            continue;
        }
        if (t->n == TSR__TOML_MAX_ENTRIES) {
            rc = fail(&c, "more than %d keys", TSR__TOML_MAX_ENTRIES);
            goto fail;
        }
        if (t->n == cap) {
            int ncap = cap ? 2 * cap : 16;
            tsr__toml_entry_t *e = tsr__realloc(ctx, t->e, (size_t)ncap * sizeof *e);
            if (!e) {
                rc = tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
                goto fail;
            }
            t->e = e;
            cap = ncap;
        }
        tsr__toml_entry_t *e = &t->e[t->n];
        memset(e, 0, sizeof *e);
        e->line = c.line;
        snprintf(e->table, sizeof e->table, "%s", table);
        if ((rc = name(&c, e->key, sizeof e->key)))
            goto fail;
        if (peek(&c) != '=') {
            rc = fail(&c, "expected '=' after key '%s'", e->key);
            goto fail;
        }
        c.p++;
        if (tsr__toml_get(t, e->table, e->key)) {
            rc = fail(&c, "key '%s' is defined twice", e->key);
            goto fail;
        }
        rc = value(&c, ctx, e);
        t->n++; /* owned from here (e->str) */
        if (rc || (rc = end_of_line(&c)))
            goto fail;
    }
    tsr__free(ctx, tables);
    return 0;
fail:
    tsr__free(ctx, tables);
    tsr__toml_free(ctx, t);
    return rc;
}
