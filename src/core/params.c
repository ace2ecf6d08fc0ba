/*
 * params.c — key/value parameter lists and the value parsers that formats
 * and UDFs use to read them.
 *
 * A list is an append-only array of owned (key, value) strings; a key may
 * repeat.  Lookup takes the last value, so a later --set overrides an
 * earlier one, while repeatable keys (mask=...) are read by iteration.
 */
#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>

typedef struct {
    char *key;
    char *value;
} kv_t;

struct tsr_params {
    tsr_ctx_t *ctx;
    kv_t *items;
    size_t n, cap;
};

int tsr_params_new(tsr_ctx_t *ctx, tsr_params_t **out)
{
    if (!ctx || !out)
        return TSR_EINVAL;
    tsr_params_t *p = tsr__calloc(ctx, 1, sizeof *p);
    if (!p)
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory");
    p->ctx = ctx;
    *out = p;
    return 0;
}

void tsr_params_free(tsr_params_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        tsr__free(p->ctx, p->items[i].key);
        tsr__free(p->ctx, p->items[i].value);
    }
    tsr__free(p->ctx, p->items);
    tsr__free(p->ctx, p);
}

tsr_ctx_t *tsr__params_ctx(const tsr_params_t *p)
{
    return p ? p->ctx : NULL;
}

int tsr_params_add(tsr_params_t *p, const char *key, const char *value)
{
    if (!p || !key || !*key || !value)
        return p ? tsr__ctx_seterr(p->ctx, TSR_EINVAL, "parameter with an empty name") : TSR_EINVAL;
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 8;
        kv_t *items = tsr__realloc(p->ctx, p->items, cap * sizeof *items);
        if (!items)
            return tsr__ctx_seterr(p->ctx, TSR_ENOMEM, "out of memory");
        p->items = items;
        p->cap = cap;
    }
    char *k = tsr__strdup(p->ctx, key), *v = tsr__strdup(p->ctx, value);
    if (!k || !v) {
        tsr__free(p->ctx, k);
        tsr__free(p->ctx, v);
        return tsr__ctx_seterr(p->ctx, TSR_ENOMEM, "out of memory");
    }
    p->items[p->n].key = k;
    p->items[p->n].value = v;
    p->n++;
    return 0;
}

int tsr_params_add_kv(tsr_params_t *p, const char *kv)
{
    if (!p || !kv)
        return TSR_EINVAL;
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
        return tsr__ctx_seterr(p->ctx, TSR_EINVAL, "expected KEY=VALUE, got '%s'", kv);
    char key[128];
    size_t kl = (size_t)(eq - kv);
    if (kl >= sizeof key)
        return tsr__ctx_seterr(p->ctx, TSR_EINVAL, "parameter name too long in '%s'", kv);
    memcpy(key, kv, kl);
    key[kl] = 0;
    return tsr_params_add(p, key, eq + 1);
}

static int json_scalar_text(const json_t *v, char *buf, size_t n)
{
    if (json_is_string(v))
        snprintf(buf, n, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(buf, n, "%.17g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
    else
        return TSR_EINVAL;
    return 0;
}

int tsr_params_add_json(tsr_params_t *p, const char *text)
{
    if (!p || !text)
        return TSR_EINVAL;
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    if (!root)
        return tsr__ctx_seterr(p->ctx, TSR_EINVAL, "parameters: bad JSON at line %d: %s", jerr.line,
                               jerr.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = tsr__ctx_seterr(p->ctx, TSR_EINVAL, "parameters: JSON must be an object");
        goto done;
    }
    const char *key;
    json_t *v;
    json_object_foreach (root, key, v) {
        char buf[4096];
        if (json_is_array(v)) {
            size_t i, m = json_array_size(v);
            bool all_str = m > 0;
            for (i = 0; i < m; i++)
                all_str = all_str && json_is_string(json_array_get(v, i));
            if (all_str) {
                for (i = 0; i < m && rc == 0; i++)
                    rc = tsr_params_add(p, key, json_string_value(json_array_get(v, i)));
                if (rc)
                    goto done;
                continue;
            }
            size_t len = 0;
            buf[0] = 0;
            for (i = 0; i < m; i++) {
                char item[64];
                const json_t *e = json_array_get(v, i);
                if (!json_is_number(e) || json_scalar_text(e, item, sizeof item)) {
                    rc = tsr__ctx_seterr(p->ctx, TSR_EINVAL,
                                         "parameters: '%s' must be an array of numbers or of "
                                         "strings",
                                         key);
                    goto done;
                }
                int w = snprintf(buf + len, sizeof buf - len, "%s%s", i ? "," : "", item);
                if (w < 0 || (size_t)w >= sizeof buf - len) {
                    rc = tsr__ctx_seterr(p->ctx, TSR_EINVAL, "parameters: '%s' too long", key);
                    goto done;
                }
                len += (size_t)w;
            }
        } else if (json_scalar_text(v, buf, sizeof buf)) {
            rc =
                tsr__ctx_seterr(p->ctx, TSR_EINVAL,
                                "parameters: '%s' must be a string, number, boolean or array", key);
            goto done;
        }
        if ((rc = tsr_params_add(p, key, buf)))
            goto done;
    }
done:
    json_decref(root);
    return rc;
}

size_t tsr_params_count(const tsr_params_t *p)
{
    return p ? p->n : 0;
}

int tsr_params_at(const tsr_params_t *p, size_t i, const char **key, const char **value)
{
    if (!p || i >= p->n)
        return TSR_ERANGE;
    if (key)
        *key = p->items[i].key;
    if (value)
        *value = p->items[i].value;
    return 0;
}

const char *tsr_params_get(const tsr_params_t *p, const char *key)
{
    if (!p || !key)
        return NULL;
    for (size_t i = p->n; i-- > 0;)
        if (strcmp(p->items[i].key, key) == 0)
            return p->items[i].value;
    return NULL;
}

int tsr__params_copy(tsr_ctx_t *ctx, const tsr_params_t *src, tsr_params_t **out)
{
    tsr_params_t *p = NULL;
    int rc = tsr_params_new(ctx, &p);
    if (rc)
        return rc;
    for (size_t i = 0; src && i < src->n; i++) {
        if ((rc = tsr_params_add(p, src->items[i].key, src->items[i].value))) {
            tsr_params_free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

const char *tsr__params_value(const tsr_params_t *p, const tsr_param_def_t *defs, size_t n_defs,
                              const char *key)
{
    const char *v = tsr_params_get(p, key);
    if (v)
        return v;
    for (size_t i = 0; i < n_defs; i++)
        if (strcmp(defs[i].name, key) == 0)
            return defs[i].default_value && *defs[i].default_value ? defs[i].default_value : NULL;
    return NULL;
}

int tsr__params_check(const tsr_params_t *p, const tsr_param_def_t *defs, size_t n_defs,
                      const char *owner, char *err, size_t n)
{
    for (size_t i = 0; p && i < p->n; i++) {
        size_t j;
        for (j = 0; j < n_defs; j++)
            if (strcmp(defs[j].name, p->items[i].key) == 0)
                break;
        if (j < n_defs)
            continue;
        char known[512];
        size_t len = 0;
        known[0] = 0;
        for (j = 0; j < n_defs && len < sizeof known; j++) {
            int w = snprintf(known + len, sizeof known - len, "%s%s", j ? ", " : "", defs[j].name);
            if (w < 0)
                break;
            len += (size_t)w;
        }
        return tsr__seterr(err, n, TSR_EINVAL, "%s: unknown parameter '%s' (known: %s)", owner,
                           p->items[i].key, n_defs ? known : "none");
    }
    for (size_t j = 0; j < n_defs; j++) {
        if (defs[j].default_value == NULL && !tsr_params_get(p, defs[j].name))
            return tsr__seterr(err, n, TSR_EINVAL, "%s: missing required parameter '%s' (%s)",
                               owner, defs[j].name, defs[j].doc ? defs[j].doc : "");
    }
    return 0;
}

/* ---- value parsers ----------------------------------------------------- */

int tsr__parse_i64(const char *s, int64_t *out, char *err, size_t n, const char *what)
{
    if (!s)
        return tsr__seterr(err, n, TSR_EINVAL, "%s: missing value", what);
    errno = 0;
    char *end;
    while (isspace((unsigned char)*s))
        s++;
    long long v = strtoll(s, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (end == s || *end || errno)
        return tsr__seterr(err, n, TSR_EINVAL, "%s: expected an integer, got '%s'", what, s);
    *out = v;
    return 0;
}

int tsr__parse_f64(const char *s, double *out, char *err, size_t n, const char *what)
{
    if (!s)
        return tsr__seterr(err, n, TSR_EINVAL, "%s: missing value", what);
    errno = 0;
    char *end;
    while (isspace((unsigned char)*s))
        s++;
    double v = strtod(s, &end);
    while (isspace((unsigned char)*end))
        end++;
    if (end == s || *end || errno || !isfinite(v))
        return tsr__seterr(err, n, TSR_EINVAL, "%s: expected a number, got '%s'", what, s);
    *out = v;
    return 0;
}

int tsr__parse_bool(const char *s, bool *out, char *err, size_t n, const char *what)
{
    if (s && (!strcmp(s, "1") || !strcasecmp(s, "true") || !strcasecmp(s, "yes") ||
              !strcasecmp(s, "on"))) {
        *out = true;
        return 0;
    }
    if (s && (!strcmp(s, "0") || !strcasecmp(s, "false") || !strcasecmp(s, "no") ||
              !strcasecmp(s, "off"))) {
        *out = false;
        return 0;
    }
    return tsr__seterr(err, n, TSR_EINVAL, "%s: expected true or false, got '%s'", what,
                       s ? s : "");
}

int tsr__parse_f64_list(const char *s, double *out, int max, int *count, char *err, size_t n,
                        const char *what)
{
    if (!s)
        return tsr__seterr(err, n, TSR_EINVAL, "%s: missing value", what);
    int k = 0;
    const char *p = s;
    while (isspace((unsigned char)*p) || *p == '(' || *p == '[')
        p++;
    while (*p && *p != ')' && *p != ']') {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v))
            return tsr__seterr(err, n, TSR_EINVAL,
                               "%s: expected numbers separated by ',', got '%s'", what, s);
        if (k >= max)
            return tsr__seterr(err, n, TSR_EINVAL, "%s: more than %d values in '%s'", what, max, s);
        out[k++] = v;
        p = end;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == ',') {
            p++;
            while (isspace((unsigned char)*p))
                p++;
        } else if (*p && *p != ')' && *p != ']') {
            return tsr__seterr(err, n, TSR_EINVAL,
                               "%s: expected numbers separated by ',', got '%s'", what, s);
        }
    }
    *count = k;
    return 0;
}

int tsr__parse_shape(const char *s, tsr_shape_t *out, char *err, size_t n, const char *what)
{
    double v[TSR_MAX_DIMS];
    int k = 0;
    int rc = tsr__parse_f64_list(s, v, TSR_MAX_DIMS, &k, err, n, what);
    if (rc)
        return rc;
    if (k == 0)
        return tsr__seterr(err, n, TSR_EINVAL, "%s: empty shape", what);
    tsr_shape_t sh = {.ndim = k};
    for (int i = 0; i < k; i++) {
        if (v[i] < 1 || v[i] != floor(v[i]) || v[i] > 9.0e15)
            return tsr__seterr(err, n, TSR_EINVAL,
                               "%s: dimensions must be positive integers, got '%s'", what, s);
        sh.dims[i] = (int64_t)v[i];
    }
    int64_t total = 1;
    for (int i = 0; i < k; i++)
        if (!tsr__mul_i64(total, sh.dims[i], &total))
            return tsr__seterr(err, n, TSR_EOVERFLOW, "%s: shape '%s' is too large", what, s);
    *out = sh;
    return 0;
}

/* ---- shapes ------------------------------------------------------------ */

int64_t tsr_shape_size(const tsr_shape_t *s)
{
    int64_t n = 1;
    for (int i = 0; s && i < s->ndim; i++)
        if (s->dims[i] < 0 || !tsr__mul_i64(n, s->dims[i], &n))
            return -1;
    return n;
}

const char *tsr__shape_str(const tsr_shape_t *s, char *buf, size_t n)
{
    size_t len = 0;
    int w = snprintf(buf, n, "(");
    len = w > 0 ? (size_t)w : 0;
    for (int i = 0; i < s->ndim && len < n; i++) {
        w = snprintf(buf + len, n - len, "%s%lld", i ? ", " : "", (long long)s->dims[i]);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (len < n)
        snprintf(buf + len, n - len, s->ndim == 1 ? ",)" : ")");
    return buf;
}

bool tsr__shape_eq(const tsr_shape_t *a, const tsr_shape_t *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}
