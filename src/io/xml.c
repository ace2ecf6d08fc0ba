/*
 * xml.c — the small XML reader of xml.h: one pass over the text, a stack
 * of open elements, nodes appended to one growing array.
 *
 * Invariants: node 0 is the document; every other node has a parent; a
 * node's children are linked through `next` in document order (`last`
 * tracks the tail while parsing).  Spans point into the caller's text.
 */
#include "io/xml.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>

#define XML_MAX_DEPTH 64

static bool is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '-' || c == '.' || c == ':' ||
           (unsigned char)c >= 0x80;
}

static int add_node(tsr__xml_t *x, int parent, int *last_child)
{
    if (x->n == x->cap) {
        int cap = x->cap ? x->cap * 2 : 64;
        tsr__xml_node_t *nodes = tsr__realloc(x->ctx, x->nodes, (size_t)cap * sizeof *nodes);
        if (!nodes)
            return TSR_ENOMEM;
        x->nodes = nodes;
        x->cap = cap;
    }
    int i = x->n++;
    x->nodes[i] = (tsr__xml_node_t){.parent = parent, .child = -1, .next = -1};
    if (parent >= 0) {
        if (last_child[0] >= 0)
            x->nodes[last_child[0]].next = i;
        else
            x->nodes[parent].child = i;
        last_child[0] = i;
    }
    return i;
}

/* Find the end of a construct that ends with `end`, from p; NULL if none. */
static const char *find(const char *p, const char *e, const char *end)
{
    size_t k = strlen(end);
    for (; p + k <= e; p++)
        if (memcmp(p, end, k) == 0)
            return p + k;
    return NULL;
}

/* A syntax error. The message quotes names from the text, which may hold
 * any bytes: those outside printable ASCII become '?' so that the message
 * stays valid UTF-8 (for JSON and Python). */
static int TSR__PRINTF(3, 4) xml_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tsr__vseterr(err, errlen, TSR_ECORRUPT, fmt, ap);
    va_end(ap);
    for (size_t i = 0; err && i < errlen && err[i]; i++)
        if ((unsigned char)err[i] < 32 || (unsigned char)err[i] >= 127)
            err[i] = '?';
    return TSR_ECORRUPT;
}

int tsr__xml_parse(tsr__xml_t *x, tsr_ctx_t *ctx, const char *text, size_t len, char *err,
                   size_t errlen)
{
    *x = (tsr__xml_t){.ctx = ctx};
    const char *p = text, *e = text + len;
    int stack[XML_MAX_DEPTH + 1];
    int last[XML_MAX_DEPTH + 1]; /* last child of each open element */
    int depth = 0;
    int rc = add_node(x, -1, NULL);
    if (rc < 0)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    stack[0] = 0;
    last[0] = -1;
#define XML_FAIL(...) return xml_fail(err, errlen, __VA_ARGS__)
    while (p < e) {
        if (*p != '<') {
            const char *q = memchr(p, '<', (size_t)(e - p));
            if (!q)
                q = e;
            tsr__xml_node_t *cur = &x->nodes[stack[depth]];
            if (depth > 0 && !cur->text) {
                cur->text = p;
                cur->text_len = (size_t)(q - p);
            }
            p = q;
            continue;
        }
        size_t off = (size_t)(p - text);
        const char *q;
        if (e - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            if (!(q = find(p + 4, e, "-->")))
                XML_FAIL("unterminated comment at byte %zu", off);
            p = q;
        } else if (e - p >= 9 && memcmp(p, "<![CDATA[", 9) == 0) {
            if (!(q = find(p + 9, e, "]]>")))
                XML_FAIL("unterminated CDATA section at byte %zu", off);
            p = q;
        } else if (e - p >= 2 && (p[1] == '?' || p[1] == '!')) {
            if (!(q = find(p + 2, e, p[1] == '?' ? "?>" : ">")))
                XML_FAIL("unterminated declaration at byte %zu", off);
            p = q;
        } else if (e - p >= 2 && p[1] == '/') {
            const char *n0 = p + 2, *n1 = n0;
            while (n1 < e && is_name_char(*n1))
                n1++;
            const char *gt = n1;
            while (gt < e && isspace((unsigned char)*gt))
                gt++;
            if (gt >= e || *gt != '>')
                XML_FAIL("malformed end tag at byte %zu", off);
            if (depth == 0)
                XML_FAIL("end tag </%.*s> without a start tag at byte %zu", (int)(n1 - n0), n0,
                         off);
            tsr__xml_node_t *cur = &x->nodes[stack[depth]];
            if (cur->name_len != (size_t)(n1 - n0) || memcmp(cur->name, n0, cur->name_len) != 0)
                XML_FAIL("end tag </%.*s> at byte %zu does not match <%.*s>", (int)(n1 - n0), n0,
                         off, (int)cur->name_len, cur->name);
            depth--;
            p = gt + 1;
        } else {
            const char *n0 = p + 1, *n1 = n0;
            while (n1 < e && is_name_char(*n1))
                n1++;
            if (n1 == n0)
                XML_FAIL("'<' not followed by a tag name at byte %zu", off);
            /* the tag ends at the first '>' outside quotes */
            const char *a = n1;
            char quote = 0;
            while (a < e && (quote || *a != '>')) {
                if (quote && *a == quote)
                    quote = 0;
                else if (!quote && (*a == '"' || *a == '\''))
                    quote = *a;
                else if (!quote && *a == '<')
                    XML_FAIL("'<' inside the tag <%.*s> at byte %zu", (int)(n1 - n0), n0, off);
                a++;
            }
            if (a >= e)
                XML_FAIL("unterminated tag <%.*s> at byte %zu", (int)(n1 - n0), n0, off);
            bool empty = a > n1 && a[-1] == '/';
            int i = add_node(x, stack[depth], &last[depth]);
            if (i < 0)
                return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
            tsr__xml_node_t *nd = &x->nodes[i];
            nd->name = n0;
            nd->name_len = (size_t)(n1 - n0);
            nd->attrs = n1;
            nd->attrs_len = (size_t)((empty ? a - 1 : a) - n1);
            if (!empty) {
                if (depth == XML_MAX_DEPTH)
                    XML_FAIL("elements nested deeper than %d at byte %zu", XML_MAX_DEPTH, off);
                depth++;
                stack[depth] = i;
                last[depth] = -1;
            }
            p = a + 1;
        }
    }
    if (depth > 0) {
        const tsr__xml_node_t *cur = &x->nodes[stack[depth]];
        XML_FAIL("the text ends inside <%.*s> (started at byte %zu)", (int)cur->name_len, cur->name,
                 (size_t)(cur->name - 1 - text));
    }
    if (x->nodes[0].child < 0)
        XML_FAIL("no XML element found");
#undef XML_FAIL
    return 0;
}

void tsr__xml_free(tsr__xml_t *x)
{
    if (x && x->nodes)
        tsr__free(x->ctx, x->nodes);
    if (x)
        *x = (tsr__xml_t){0};
}

bool tsr__xml_is(const tsr__xml_t *x, int node, const char *name)
{
    if (node < 0 || node >= x->n)
        return false;
    const tsr__xml_node_t *nd = &x->nodes[node];
    return strlen(name) == nd->name_len && memcmp(nd->name, name, nd->name_len) == 0;
}

int tsr__xml_child(const tsr__xml_t *x, int node, const char *name)
{
    if (node < 0 || node >= x->n)
        return -1;
    for (int c = x->nodes[node].child; c >= 0; c = x->nodes[c].next)
        if (!name || tsr__xml_is(x, c, name))
            return c;
    return -1;
}

int tsr__xml_next(const tsr__xml_t *x, int node)
{
    if (node < 0 || node >= x->n)
        return -1;
    const tsr__xml_node_t *nd = &x->nodes[node];
    for (int c = nd->next; c >= 0; c = x->nodes[c].next)
        if (x->nodes[c].name_len == nd->name_len &&
            memcmp(x->nodes[c].name, nd->name, nd->name_len) == 0)
            return c;
    return -1;
}

int tsr__xml_path(const tsr__xml_t *x, int node, const char *path)
{
    char part[128];
    while (node >= 0 && *path) {
        const char *s = strchr(path, '/');
        size_t k = s ? (size_t)(s - path) : strlen(path);
        if (k >= sizeof part)
            return -1;
        memcpy(part, path, k);
        part[k] = 0;
        node = tsr__xml_child(x, node, part);
        path += s ? k + 1 : k;
    }
    return node;
}

/* Decode entities of s[0, n) into out (cap bytes, NUL-terminated). */
static void decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    if (!cap)
        return;
    for (size_t i = 0; i < n && o + 1 < cap;) {
        if (s[i] == '&') {
            static const struct {
                const char *name;
                char c;
            } ents[] = {{"lt;", '<'}, {"gt;", '>'}, {"amp;", '&'}, {"quot;", '"'}, {"apos;", '\''}};
            bool done = false;
            for (size_t k = 0; k < sizeof ents / sizeof ents[0]; k++) {
                size_t l = strlen(ents[k].name);
                if (n - i - 1 >= l && memcmp(s + i + 1, ents[k].name, l) == 0) {
                    out[o++] = ents[k].c;
                    i += 1 + l;
                    done = true;
                    break;
                }
            }
            if (!done && i + 2 < n && s[i + 1] == '#') {
                size_t j = i + 2;
                int base = 10;
                if (s[j] == 'x' || s[j] == 'X') {
                    base = 16;
                    j++;
                }
                unsigned long v = 0;
                size_t d = 0;
                while (j < n && d < 8 && isxdigit((unsigned char)s[j]) &&
                       (base == 16 || isdigit((unsigned char)s[j]))) {
                    int c = s[j];
                    v = v * (unsigned long)base +
                        (unsigned long)(isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
                    j++;
                    d++;
                }
                if (d > 0 && j < n && s[j] == ';') {
                    /* UTF-8 encode (at most 4 bytes) */
                    unsigned char b[4];
                    int nb;
                    if (v < 0x80) {
                        b[0] = (unsigned char)v;
                        nb = 1;
                    } else if (v < 0x800) {
                        b[0] = (unsigned char)(0xC0 | (v >> 6));
                        b[1] = (unsigned char)(0x80 | (v & 0x3F));
                        nb = 2;
                    } else if (v < 0x10000) {
                        b[0] = (unsigned char)(0xE0 | (v >> 12));
                        b[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
                        b[2] = (unsigned char)(0x80 | (v & 0x3F));
                        nb = 3;
                    } else {
                        v &= 0x1FFFFF;
                        b[0] = (unsigned char)(0xF0 | (v >> 18));
                        b[1] = (unsigned char)(0x80 | ((v >> 12) & 0x3F));
                        b[2] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
                        b[3] = (unsigned char)(0x80 | (v & 0x3F));
                        nb = 4;
                    }
                    if (o + (size_t)nb + 1 > cap)
                        break;
                    for (int k = 0; k < nb; k++)
                        out[o++] = (char)b[k];
                    i = j + 1;
                    done = true;
                }
            }
            if (done)
                continue;
        }
        out[o++] = s[i++];
    }
    out[o] = 0;
}

bool tsr__xml_text(const tsr__xml_t *x, int node, char *out, size_t n)
{
    if (n)
        out[0] = 0;
    if (node < 0 || node >= x->n)
        return false;
    const tsr__xml_node_t *nd = &x->nodes[node];
    const char *s = nd->text;
    size_t k = s ? nd->text_len : 0;
    while (k && isspace((unsigned char)*s)) {
        s++;
        k--;
    }
    while (k && isspace((unsigned char)s[k - 1]))
        k--;
    decode(s ? s : "", k, out, n);
    return true;
}

bool tsr__xml_attr(const tsr__xml_t *x, int node, const char *attr, char *out, size_t n)
{
    if (n)
        out[0] = 0;
    if (node < 0 || node >= x->n)
        return false;
    const tsr__xml_node_t *nd = &x->nodes[node];
    const char *p = nd->attrs, *e = nd->attrs + nd->attrs_len;
    size_t al = strlen(attr);
    while (p < e) {
        while (p < e && isspace((unsigned char)*p))
            p++;
        const char *n0 = p;
        while (p < e && is_name_char(*p))
            p++;
        const char *n1 = p;
        if (n1 == n0)
            return false; /* not an attribute list we understand */
        while (p < e && isspace((unsigned char)*p))
            p++;
        if (p >= e || *p != '=')
            return false;
        p++;
        while (p < e && isspace((unsigned char)*p))
            p++;
        if (p >= e || (*p != '"' && *p != '\''))
            return false;
        char q = *p++;
        const char *v0 = p;
        while (p < e && *p != q)
            p++;
        if (p >= e)
            return false;
        const char *v1 = p++;
        if ((size_t)(n1 - n0) == al && memcmp(n0, attr, al) == 0) {
            decode(v0, (size_t)(v1 - v0), out, n);
            return true;
        }
    }
    return false;
}

int tsr__xml_child_with(const tsr__xml_t *x, int node, const char *name, const char *attr,
                        const char *value)
{
    char buf[256];
    for (int c = tsr__xml_child(x, node, name); c >= 0; c = tsr__xml_next(x, c))
        if (tsr__xml_attr(x, c, attr, buf, sizeof buf) && strcmp(buf, value) == 0)
            return c;
    return -1;
}
