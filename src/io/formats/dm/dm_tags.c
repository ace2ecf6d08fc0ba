/*
 * dm_tags.c — the DM3/DM4 tag-tree parser (see dm_tags.h for the layout).
 *
 * The file is read through a small buffered cursor; large values are
 * skipped by moving the cursor, so opening a file of many gigabytes reads
 * only its tags.  Invariants kept by the parser:
 *   - no byte is read past the end of the file, and no size read from the
 *     file is used before it is checked against the bytes that remain;
 *   - groups nest at most MAX_DEPTH deep, an info array has at most
 *     MAX_INFO entries and a struct at most MAX_FIELDS fields;
 *   - every text in the pool is valid UTF-8 without NUL bytes (names that
 *     are not UTF-8 are read as Latin-1, as DM writes them), so it can go
 *     into JSON as it is.
 */
#include "io/formats/dm/dm_tags.h"

#include <stdlib.h>

#define MAX_DEPTH 64
#define MAX_INFO 1024
#define MAX_FIELDS 256
#define MAX_STRING 4096 /* decode strings up to this many characters */
#define MAX_NODES (1 << 24)
#define BUF_SIZE (1 << 16)

typedef struct reader {
    const tsr__file_t *f;
    const char *path;
    tsr__dm_tree_t *t;
    int64_t size, pos;
    int w; /* width of sizes and type codes: 4 (DM3) or 8 (DM4) */
    int64_t boff;
    size_t blen;
    char *err;
    size_t errlen;
    uint8_t name[65536]; /* the tag name being read */
    uint8_t buf[BUF_SIZE];
} reader_t;

/* ---- the tree ---------------------------------------------------------- */

size_t tsr__dm_simple_size(int type)
{
    switch (type) {
    case TSR__DM_BOOL:
    case TSR__DM_CHAR:
    case TSR__DM_OCTET: return 1;
    case TSR__DM_SHORT:
    case TSR__DM_USHORT: return 2;
    case TSR__DM_LONG:
    case TSR__DM_ULONG:
    case TSR__DM_FLOAT: return 4;
    case TSR__DM_DOUBLE:
    case TSR__DM_INT64:
    case TSR__DM_UINT64: return 8;
    default: return 0;
    }
}

static bool text_reserve(tsr__dm_tree_t *t, int64_t more)
{
    if (t->n_text + more <= t->cap_text)
        return true;
    int64_t cap = t->cap_text ? t->cap_text : 4096;
    while (cap < t->n_text + more)
        cap *= 2;
    char *p = tsr__realloc(t->ctx, t->text, (size_t)cap);
    if (!p)
        return false;
    t->text = p;
    t->cap_text = cap;
    return true;
}

/* Append the UTF-8 encoding of code point c (reserve 4 bytes first). */
static void put_utf8(tsr__dm_tree_t *t, uint32_t c)
{
    char *o = t->text + t->n_text;
    if (c < 0x80) {
        o[0] = (char)c;
        t->n_text += 1;
    } else if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 0x3F));
        t->n_text += 2;
    } else if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        t->n_text += 3;
    } else {
        o[0] = (char)(0xF0 | (c >> 18));
        o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        o[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[3] = (char)(0x80 | (c & 0x3F));
        t->n_text += 4;
    }
}

static bool valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t k;
        uint32_t cp;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += k + 1;
    }
    return true;
}

/* Add 8-bit text (UTF-8 if valid, else Latin-1; stops at a NUL) to the
 * pool; returns its offset or -1 (out of memory). */
static int64_t add_text8(tsr__dm_tree_t *t, const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == 0) {
            n = i;
            break;
        }
    if (!text_reserve(t, (int64_t)n * 2 + 1))
        return -1;
    int64_t off = t->n_text;
    if (valid_utf8(s, n)) {
        memcpy(t->text + t->n_text, s, n);
        t->n_text += (int64_t)n;
    } else {
        for (size_t i = 0; i < n; i++)
            put_utf8(t, s[i]);
    }
    t->text[t->n_text++] = 0;
    return off;
}

/* Add UTF-16 text (n code units in the file's byte order; stops at a NUL;
 * unpaired surrogates become U+FFFD). */
static int64_t add_text16(tsr__dm_tree_t *t, const uint8_t *s, size_t n, bool little)
{
    if (!text_reserve(t, (int64_t)n * 3 + 1))
        return -1;
    int64_t off = t->n_text;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = little ? (uint32_t)(s[2 * i] | s[2 * i + 1] << 8)
                            : (uint32_t)(s[2 * i] << 8 | s[2 * i + 1]);
        if (c == 0)
            break;
        if (c >= 0xD800 && c <= 0xDBFF && i + 1 < n) {
            uint32_t d = little ? (uint32_t)(s[2 * i + 2] | s[2 * i + 3] << 8)
                                : (uint32_t)(s[2 * i + 2] << 8 | s[2 * i + 3]);
            if (d >= 0xDC00 && d <= 0xDFFF) {
                put_utf8(t, 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00));
                i++;
                continue;
            }
        }
        if (c >= 0xD800 && c <= 0xDFFF)
            c = 0xFFFD;
        put_utf8(t, c);
    }
    t->text[t->n_text++] = 0;
    return off;
}

static int32_t add_node(tsr__dm_tree_t *t, int32_t parent, int64_t name)
{
    if (t->n_nodes >= MAX_NODES)
        return -1;
    if (t->n_nodes == t->cap_nodes) {
        int32_t cap = t->cap_nodes ? t->cap_nodes * 2 : 256;
        tsr__dm_node_t *p = tsr__realloc(t->ctx, t->nodes, (size_t)cap * sizeof *p);
        if (!p)
            return -1;
        t->nodes = p;
        t->cap_nodes = cap;
    }
    int32_t i = t->n_nodes++;
    tsr__dm_node_t *n = &t->nodes[i];
    memset(n, 0, sizeof *n);
    n->name = name;
    n->str = -1;
    n->parent = parent;
    n->first = n->last = n->next = -1;
    if (parent >= 0) {
        tsr__dm_node_t *p = &t->nodes[parent];
        if (p->last >= 0)
            t->nodes[p->last].next = i;
        else
            p->first = i;
        p->last = i;
        p->n_children++;
    }
    return i;
}

const char *tsr__dm_name(const tsr__dm_tree_t *t, int32_t node)
{
    return node >= 0 && node < t->n_nodes ? t->text + t->nodes[node].name : "";
}

const char *tsr__dm_str(const tsr__dm_tree_t *t, int32_t node)
{
    if (node < 0 || node >= t->n_nodes || t->nodes[node].str < 0)
        return NULL;
    return t->text + t->nodes[node].str;
}

int32_t tsr__dm_child(const tsr__dm_tree_t *t, int32_t node, const char *name)
{
    if (node < 0 || node >= t->n_nodes)
        return -1;
    for (int32_t c = t->nodes[node].first; c >= 0; c = t->nodes[c].next)
        if (strcmp(t->text + t->nodes[c].name, name) == 0)
            return c;
    return -1;
}

int32_t tsr__dm_child_at(const tsr__dm_tree_t *t, int32_t node, int64_t i)
{
    if (node < 0 || node >= t->n_nodes || i < 0)
        return -1;
    int32_t c = t->nodes[node].first;
    for (; c >= 0 && i > 0; i--)
        c = t->nodes[c].next;
    return c;
}

int32_t tsr__dm_find_v(const tsr__dm_tree_t *t, int32_t node, const char *const *path)
{
    for (; *path && node >= 0; path++)
        node = tsr__dm_child(t, node, *path);
    return node;
}

bool tsr__dm_num(const tsr__dm_tree_t *t, int32_t node, double *out)
{
    if (node < 0 || node >= t->n_nodes || t->nodes[node].kind != TSR__DM_NODE_VALUE)
        return false;
    *out = t->nodes[node].num;
    return true;
}

void tsr__dm_tree_free(tsr__dm_tree_t *t)
{
    if (!t)
        return;
    tsr__free(t->ctx, t->nodes);
    tsr__free(t->ctx, t->text);
    t->nodes = NULL;
    t->text = NULL;
    t->n_nodes = t->cap_nodes = 0;
    t->n_text = t->cap_text = 0;
}

/* "ImageList/[1]/ImageData/Data": where a node sits, for messages. */
static const char *node_path(const tsr__dm_tree_t *t, int32_t node, char *buf, size_t n)
{
    int32_t chain[MAX_DEPTH + 2];
    int k = 0;
    for (int32_t c = node; c > 0 && k < MAX_DEPTH + 2; c = t->nodes[c].parent)
        chain[k++] = c;
    size_t len = 0;
    buf[0] = 0;
    for (int i = k - 1; i >= 0 && len < n; i--) {
        int32_t c = chain[i];
        const char *name = t->text + t->nodes[c].name;
        int w;
        if (*name) {
            w = snprintf(buf + len, n - len, "%s%s", len ? "/" : "", name);
        } else {
            int64_t pos = 0;
            for (int32_t s = t->nodes[t->nodes[c].parent].first; s >= 0 && s != c;
                 s = t->nodes[s].next)
                pos++;
            w = snprintf(buf + len, n - len, "%s[%lld]", len ? "/" : "", (long long)pos);
        }
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (!buf[0])
        snprintf(buf, n, "(root)");
    return buf;
}

/* ---- reading ----------------------------------------------------------- */

static int corrupt(reader_t *r, int32_t node, const char *fmt, ...) TSR__PRINTF(3, 4);
static int corrupt(reader_t *r, int32_t node, const char *fmt, ...)
{
    char where[256], what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return tsr__seterr(r->err, r->errlen, TSR_ECORRUPT, "%s: DM tag %s: %s", r->path,
                       node_path(r->t, node, where, sizeof where), what);
}

static int nomem(reader_t *r)
{
    return tsr__seterr(r->err, r->errlen, TSR_ENOMEM, "%s: out of memory reading the DM tags",
                       r->path);
}

/* Copy n bytes at the cursor into dst and advance. */
static int get(reader_t *r, int32_t node, void *dst, size_t n, const char *what)
{
    if ((int64_t)n > r->size - r->pos)
        return corrupt(r, node,
                       "truncated file: %s at offset %lld needs %zu bytes but the file ends at "
                       "%lld",
                       what, (long long)r->pos, n, (long long)r->size);
    uint8_t *o = dst;
    while (n > 0) {
        if (r->pos < r->boff || r->pos >= r->boff + (int64_t)r->blen) {
            int64_t left = r->size - r->pos;
            size_t len = left < BUF_SIZE ? (size_t)left : BUF_SIZE;
            if (tsr__file_pread(r->f, r->buf, len, r->pos))
                return tsr__seterr(r->err, r->errlen, TSR_EIO, "%s: cannot read %zu bytes at %lld",
                                   r->path, len, (long long)r->pos);
            r->boff = r->pos;
            r->blen = len;
        }
        size_t at = (size_t)(r->pos - r->boff), k = r->blen - at;
        if (k > n)
            k = n;
        memcpy(o, r->buf + at, k);
        o += k;
        r->pos += (int64_t)k;
        n -= k;
    }
    return 0;
}

static uint64_t be(const uint8_t *b, int w)
{
    uint64_t v = 0;
    for (int i = 0; i < w; i++)
        v = v << 8 | b[i];
    return v;
}

/* A big-endian size or type code (4 bytes in DM3, 8 in DM4). */
static int get_code(reader_t *r, int32_t node, uint64_t *v, const char *what)
{
    uint8_t b[8];
    int rc = get(r, node, b, (size_t)r->w, what);
    if (rc)
        return rc;
    *v = be(b, r->w);
    return 0;
}

/* A simple value of type `type` at the cursor, as a double. */
static double simple_value(const uint8_t *b, int type, bool little)
{
    size_t n = tsr__dm_simple_size(type);
    uint8_t v[8];
    for (size_t i = 0; i < n; i++)
        v[i] = little ? b[i] : b[n - 1 - i];
    /* v holds the value little-endian: assemble it portably */
    uint64_t u = 0;
    for (size_t i = n; i-- > 0;)
        u = u << 8 | v[i];
    switch (type) {
    case TSR__DM_SHORT: return (double)(int16_t)(uint16_t)u;
    case TSR__DM_LONG: return (double)(int32_t)(uint32_t)u;
    case TSR__DM_USHORT: return (double)(uint16_t)u;
    case TSR__DM_ULONG: return (double)(uint32_t)u;
    case TSR__DM_FLOAT: {
        uint32_t x = (uint32_t)u;
        float f;
        memcpy(&f, &x, 4);
        return (double)f;
    }
    case TSR__DM_DOUBLE: {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    case TSR__DM_CHAR: return (double)(int8_t)(uint8_t)u;
    case TSR__DM_BOOL:
    case TSR__DM_OCTET: return (double)(uint8_t)u;
    case TSR__DM_INT64: return (double)(int64_t)u;
    case TSR__DM_UINT64: return (double)u;
    default: return 0;
    }
}

/* Byte size of a struct whose field types are info[at .. at+2*nf) as
 * (name length, type) pairs; 0 with an error if a field is not simple. */
static int struct_size(reader_t *r, int32_t node, const uint64_t *info, uint64_t nf, int64_t *size)
{
    int64_t s = 0;
    for (uint64_t i = 0; i < nf; i++) {
        uint64_t ft = info[2 * i + 1];
        size_t fs = tsr__dm_simple_size(ft > 64 ? 0 : (int)ft);
        if (!fs)
            return corrupt(r, node, "struct field %llu has type %llu (expected a number type 2-12)",
                           (unsigned long long)i, (unsigned long long)ft);
        s += (int64_t)fs;
    }
    *size = s;
    return 0;
}

static int skip(reader_t *r, int32_t node, int64_t bytes, const char *what)
{
    if (bytes > r->size - r->pos)
        return corrupt(r, node,
                       "%s of %lld bytes at offset %lld runs past the end of the file (%lld "
                       "bytes)",
                       what, (long long)bytes, (long long)r->pos, (long long)r->size);
    r->pos += bytes;
    return 0;
}

static bool mul_ok(uint64_t a, uint64_t b, int64_t *out)
{
    if (a > (uint64_t)INT64_MAX || b > (uint64_t)INT64_MAX)
        return false;
    return tsr__mul_i64((int64_t)a, (int64_t)b, out);
}

static int parse_data(reader_t *r, int32_t node)
{
    tsr__dm_tree_t *t = r->t;
    uint8_t delim[4];
    int rc;
    if ((rc = get(r, node, delim, 4, "the '%%%%' delimiter")))
        return rc;
    if (memcmp(delim, "%%%%", 4) != 0)
        return corrupt(r, node,
                       "expected the delimiter '%%%%%%%%' at offset %lld, found bytes %02x %02x "
                       "%02x %02x",
                       (long long)(r->pos - 4), delim[0], delim[1], delim[2], delim[3]);
    uint64_t ninfo;
    if ((rc = get_code(r, node, &ninfo, "the type description length")))
        return rc;
    if (ninfo < 1 || ninfo > MAX_INFO)
        return corrupt(r, node, "type description of %llu entries (expected 1 to %d)",
                       (unsigned long long)ninfo, MAX_INFO);
    uint64_t info[MAX_INFO];
    for (uint64_t i = 0; i < ninfo; i++)
        if ((rc = get_code(r, node, &info[i], "the type description")))
            return rc;
    tsr__dm_node_t *n = &t->nodes[node];
    uint64_t t0 = info[0];
    int64_t bytes = 0;
    if (tsr__dm_simple_size(t0 > 64 ? 0 : (int)t0)) {
        n->kind = TSR__DM_NODE_VALUE;
        n->type = (int)t0;
        n->offset = r->pos;
        n->bytes = (int64_t)tsr__dm_simple_size(n->type);
        uint8_t b[8];
        if ((rc = get(r, node, b, (size_t)n->bytes, "a value")))
            return rc;
        t->nodes[node].num = simple_value(b, n->type, t->little_endian);
        return 0;
    }
    if (t0 == TSR__DM_STRING) {
        if (ninfo < 2)
            return corrupt(r, node, "string without a length (type description of %llu entries)",
                           (unsigned long long)ninfo);
        if (info[1] > (uint64_t)INT64_MAX)
            return corrupt(r, node, "string length %llu is too large", (unsigned long long)info[1]);
        n->kind = TSR__DM_NODE_STRING;
        n->count = n->bytes = (int64_t)info[1];
        n->offset = r->pos;
        if (n->bytes <= MAX_STRING) {
            uint8_t s[MAX_STRING];
            if ((rc = get(r, node, s, (size_t)n->bytes, "a string")))
                return rc;
            int64_t off = add_text8(t, s, (size_t)t->nodes[node].bytes);
            if (off < 0)
                return nomem(r);
            t->nodes[node].str = off;
            return 0;
        }
        return skip(r, node, n->bytes, "a string");
    }
    if (t0 == TSR__DM_STRUCT) {
        if (ninfo < 3 || info[2] > MAX_FIELDS || ninfo < 3 + 2 * info[2])
            return corrupt(r, node,
                           "struct description of %llu entries does not hold its field list "
                           "(%llu fields)",
                           (unsigned long long)ninfo,
                           (unsigned long long)(ninfo >= 3 ? info[2] : 0));
        uint64_t nf = info[2];
        if ((rc = struct_size(r, node, info + 3, nf, &bytes)))
            return rc;
        n = &t->nodes[node];
        n->kind = TSR__DM_NODE_STRUCT;
        n->count = (int64_t)nf;
        n->offset = r->pos;
        n->bytes = bytes;
        for (uint64_t i = 0; i < nf; i++) {
            int ft = (int)info[3 + 2 * i + 1];
            uint8_t b[8];
            if ((rc = get(r, node, b, tsr__dm_simple_size(ft), "a struct field")))
                return rc;
            if (i < TSR__DM_STRUCT_KEEP)
                t->nodes[node].fields[i] = simple_value(b, ft, t->little_endian);
        }
        return 0;
    }
    if (t0 != TSR__DM_ARRAY)
        return corrupt(r, node, "unknown tag type %llu (expected 2-12, 15, 18 or 20)",
                       (unsigned long long)t0);
    if (ninfo < 3)
        return corrupt(r, node, "array description of %llu entries (expected at least 3)",
                       (unsigned long long)ninfo);
    uint64_t et = info[1], count;
    int64_t el = 0;
    if (tsr__dm_simple_size(et > 64 ? 0 : (int)et)) {
        el = (int64_t)tsr__dm_simple_size((int)et);
        count = info[2];
    } else if (et == TSR__DM_STRUCT) {
        uint64_t nf = ninfo >= 4 ? info[3] : 0;
        if (ninfo < 5 || nf > MAX_FIELDS || ninfo < 5 + 2 * nf)
            return corrupt(r, node,
                           "array of structs: description of %llu entries does not hold its "
                           "field list and length",
                           (unsigned long long)ninfo);
        if ((rc = struct_size(r, node, info + 4, nf, &el)))
            return rc;
        count = info[4 + 2 * nf];
    } else if (et == TSR__DM_STRING) {
        if (ninfo < 4)
            return corrupt(r, node, "array of strings: description of %llu entries (expected 4)",
                           (unsigned long long)ninfo);
        if (!mul_ok(info[2], 1, &el))
            return corrupt(r, node, "string length %llu is too large", (unsigned long long)info[2]);
        count = info[3];
    } else if (et == TSR__DM_ARRAY) {
        uint64_t it = info[2];
        size_t is = tsr__dm_simple_size(it > 64 ? 0 : (int)it);
        if (ninfo < 5 || !is)
            return corrupt(r, node,
                           "array of arrays: description of %llu entries with element type %llu "
                           "(expected 5 entries and a number type)",
                           (unsigned long long)ninfo, (unsigned long long)it);
        if (!mul_ok(info[3], is, &el))
            return corrupt(r, node, "inner array length %llu is too large",
                           (unsigned long long)info[3]);
        count = info[4];
    } else {
        return corrupt(r, node, "array of unknown element type %llu", (unsigned long long)et);
    }
    if (!mul_ok(count, (uint64_t)el, &bytes))
        return corrupt(r, node, "array of %llu elements of %lld bytes is too large",
                       (unsigned long long)count, (long long)el);
    n = &t->nodes[node];
    n->kind = TSR__DM_NODE_ARRAY;
    n->type = (int)et;
    n->count = (int64_t)count;
    n->offset = r->pos;
    n->bytes = bytes;
    if (bytes > r->size - r->pos)
        return corrupt(r, node,
                       "array of %lld elements (%lld bytes) at offset %lld runs past the end of "
                       "the file (%lld bytes)",
                       (long long)count, (long long)bytes, (long long)r->pos, (long long)r->size);
    /* DM keeps text in arrays of 16-bit characters: decode short ones */
    if (et == TSR__DM_USHORT && count <= MAX_STRING && strcmp(tsr__dm_name(t, node), "Data")) {
        uint8_t s[2 * MAX_STRING];
        if ((rc = get(r, node, s, (size_t)bytes, "a string")))
            return rc;
        int64_t off = add_text16(t, s, (size_t)count, t->little_endian);
        if (off < 0)
            return nomem(r);
        t->nodes[node].str = off;
        return 0;
    }
    return skip(r, node, bytes, "an array");
}

static int parse_group(reader_t *r, int32_t node, int depth)
{
    tsr__dm_tree_t *t = r->t;
    uint8_t so[2];
    uint64_t ntags;
    int rc;
    if (depth > MAX_DEPTH)
        return corrupt(r, node, "tag groups nested deeper than %d levels", MAX_DEPTH);
    t->nodes[node].kind = TSR__DM_NODE_GROUP;
    if ((rc = get(r, node, so, 2, "the group header")) ||
        (rc = get_code(r, node, &ntags, "the group's entry count")))
        return rc;
    for (uint64_t i = 0; i < ntags; i++) {
        if (r->pos >= r->size)
            return corrupt(r, node,
                           "truncated file: the group declares %llu entries but the file ends "
                           "after %llu",
                           (unsigned long long)ntags, (unsigned long long)i);
        uint8_t h[3];
        if ((rc = get(r, node, h, 3, "a tag header")))
            return rc;
        size_t namelen = (size_t)(h[1] << 8 | h[2]);
        if ((rc = get(r, node, r->name, namelen, "a tag name")))
            return rc;
        int64_t noff = add_text8(t, r->name, namelen);
        if (noff < 0)
            return nomem(r);
        int32_t child = add_node(t, node, noff);
        if (child < 0)
            return t->n_nodes >= MAX_NODES ? corrupt(r, node, "more than %d tags", MAX_NODES)
                                           : nomem(r);
        if (t->version == 4) {
            uint64_t tag_size; /* the entry's byte size; not needed */
            if ((rc = get_code(r, child, &tag_size, "the tag size")))
                return rc;
        }
        if (h[0] == 20)
            rc = parse_group(r, child, depth + 1);
        else if (h[0] == 21)
            rc = parse_data(r, child);
        else
            rc = corrupt(r, child, "tag kind %u at offset %lld (expected 20 = group or 21 = data)",
                         h[0], (long long)(r->pos - 3 - (int64_t)namelen));
        if (rc)
            return rc;
    }
    return 0;
}

int tsr__dm_parse(tsr_ctx_t *ctx, const tsr__file_t *f, const char *path, tsr__dm_tree_t *t,
                  char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    t->ctx = ctx;
    reader_t *r = tsr__malloc(ctx, sizeof *r);
    if (!r)
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    memset(r, 0, offsetof(reader_t, name));
    r->f = f;
    r->path = path;
    r->t = t;
    r->size = f->size;
    r->err = err;
    r->errlen = errlen;
    r->w = 4;
    r->boff = -1;
    int rc;
    uint8_t h[16];
    int64_t root;
    if (f->size < 16) {
        rc = tsr__seterr(err, errlen, TSR_ECORRUPT,
                         "%s: not a DM file: %lld bytes, shorter than a DM header", path,
                         (long long)f->size);
        goto done;
    }
    if ((rc = get(r, -1, h, 4, "the version")))
        goto done;
    t->version = (int)be(h, 4);
    if (t->version != 3 && t->version != 4) {
        rc = tsr__seterr(err, errlen,
                         t->version > 0 && t->version < 16 ? TSR_EUNSUPPORTED : TSR_ECORRUPT,
                         "%s: not a DM3/DM4 file: header version field is %u (expected 3 or 4)",
                         path, (unsigned)be(h, 4));
        goto done;
    }
    r->w = t->version == 4 ? 8 : 4;
    if ((rc = get(r, -1, h, (size_t)r->w + 4, "the header")))
        goto done;
    t->size_field = (int64_t)(be(h, r->w) & INT64_MAX);
    uint32_t order = (uint32_t)be(h + r->w, 4);
    if (order > 1) {
        rc = tsr__seterr(err, errlen, TSR_ECORRUPT,
                         "%s: DM header: byte order field %u (expected 0 = big or 1 = little "
                         "endian)",
                         path, order);
        goto done;
    }
    t->little_endian = order == 1;
    int64_t empty = add_text8(t, (const uint8_t *)"", 0);
    root = empty < 0 ? -1 : add_node(t, -1, empty);
    if (root != 0) {
        rc = nomem(r);
        goto done;
    }
    rc = parse_group(r, 0, 0);
done:
    tsr__free(ctx, r);
    return rc;
}
