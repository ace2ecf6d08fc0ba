/*
 * zarr_meta.c — the .zarray parser of the Zarr v2 reader.
 *
 * Accepted (the Zarr v2 specification, as zarr-python and HyperSpy's zspy
 * write it): zarr_format 2; shape and chunks of 1 to TSR_MAX_DIMS positive
 * integers; a numpy typestring dtype of a type Tessera has ("<u2", ">f4",
 * "|u1", "|b1", "<c8"); order "C"; fill_value null, a number, "NaN",
 * "Infinity", "-Infinity", a boolean (bool arrays) or [re, im] (complex);
 * filters null or []; compressor null or one of blosc, zstd, lz4, gzip,
 * zlib; dimension_separator "." (the default) or "/".  Everything else is
 * refused with a message that names the field.
 */
#include "io/formats/zarr/zarr.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>

static int bad(char *err, size_t errlen, int code, const char *fmt, ...) TSR__PRINTF(4, 5);
static int bad(char *err, size_t errlen, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tsr__vseterr(err, errlen, code, fmt, ap);
    va_end(ap);
    return code;
}

/* A short text of a JSON value for messages. */
static void json_brief(const json_t *v, char *out, size_t n)
{
    char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    snprintf(out, n, "%s", s ? s : "(missing)");
    if (s && strlen(s) >= n && n > 4)
        memcpy(out + n - 4, "...", 4);
    free(s);
}

static int int_list(const json_t *v, const char *field, int64_t *out, int *nd, char *err,
                    size_t errlen)
{
    char found[96];
    if (!json_is_array(v) || json_array_size(v) < 1 || json_array_size(v) > TSR_MAX_DIMS) {
        json_brief(v, found, sizeof found);
        return bad(err, errlen, TSR_ECORRUPT,
                   "'%s' must be a list of 1 to %d positive integers, found %s", field,
                   TSR_MAX_DIMS, found);
    }
    *nd = (int)json_array_size(v);
    for (int i = 0; i < *nd; i++) {
        const json_t *e = json_array_get(v, (size_t)i);
        if (!json_is_integer(e) || json_integer_value(e) < 1) {
            json_brief(v, found, sizeof found);
            return bad(err, errlen, TSR_ECORRUPT,
                       "'%s' must hold positive integers, found %s (dimension %d)", field, found,
                       i);
        }
        out[i] = (int64_t)json_integer_value(e);
    }
    return 0;
}

static const char *str_member(const json_t *o, const char *key)
{
    const json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_compressor(const json_t *c, tsr__zarr_meta_t *m, char *err, size_t errlen)
{
    char found[96];
    if (!c || json_is_null(c)) {
        m->codec = TSR__ZARR_RAW;
        snprintf(m->codec_desc, sizeof m->codec_desc, "none");
        return 0;
    }
    const char *id = json_is_object(c) ? str_member(c, "id") : NULL;
    if (!id) {
        json_brief(c, found, sizeof found);
        return bad(err, errlen, TSR_ECORRUPT,
                   "'compressor' must be null or an object with an 'id', found %s", found);
    }
    if (strcmp(id, "blosc") == 0) {
        m->codec = TSR__ZARR_BLOSC;
        const char *cname = str_member(c, "cname");
        const json_t *sh = json_object_get(c, "shuffle");
        snprintf(m->codec_desc, sizeof m->codec_desc, "blosc (%.16s, shuffle %lld)",
                 cname ? cname : "?", json_is_integer(sh) ? (long long)json_integer_value(sh) : 0);
    } else if (strcmp(id, "zstd") == 0) {
        m->codec = TSR__ZARR_ZSTD;
    } else if (strcmp(id, "lz4") == 0) {
        m->codec = TSR__ZARR_LZ4;
    } else if (strcmp(id, "gzip") == 0) {
        m->codec = TSR__ZARR_GZIP;
    } else if (strcmp(id, "zlib") == 0) {
        m->codec = TSR__ZARR_ZLIB;
    } else {
        return bad(err, errlen, TSR_EUNSUPPORTED,
                   "compressor '%.40s' is not supported (supported: blosc, zstd, lz4, gzip, "
                   "zlib, or none)",
                   id);
    }
    if (m->codec != TSR__ZARR_BLOSC)
        snprintf(m->codec_desc, sizeof m->codec_desc, "%s", id);
    return 0;
}

/* Store v (host order) as one element of m->dtype into m->fill. */
static int fill_number(const json_t *v, tsr__zarr_meta_t *m, char *err, size_t errlen)
{
    char found[96];
    double d = 0, im = 0;
    bool is_int = false;
    json_int_t iv = 0;
    if (json_is_integer(v)) {
        is_int = true;
        iv = json_integer_value(v);
        d = (double)iv;
    } else if (json_is_real(v)) {
        d = json_real_value(v);
    } else if (json_is_boolean(v)) {
        d = json_is_true(v) ? 1 : 0;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strcmp(s, "NaN") == 0)
            d = NAN;
        else if (strcmp(s, "Infinity") == 0)
            d = INFINITY;
        else if (strcmp(s, "-Infinity") == 0)
            d = -INFINITY;
        else
            goto bad_value;
        if (!tsr__dtype_is_float(m->dtype))
            goto bad_value;
    } else if (json_is_array(v) && m->dtype == TSR_C64 && json_array_size(v) == 2 &&
               json_is_number(json_array_get(v, 0)) && json_is_number(json_array_get(v, 1))) {
        d = json_number_value(json_array_get(v, 0));
        im = json_number_value(json_array_get(v, 1));
    } else {
        goto bad_value;
    }
    if (!tsr__dtype_is_float(m->dtype) && m->dtype != TSR_BOOL) {
        /* an integer type: the value must be an integer in its range */
        if (!is_int) {
            if (!(d == floor(d)) || fabs(d) > 9007199254740992.0)
                goto bad_value;
            iv = (json_int_t)d;
        }
        int bits = (int)tsr_dtype_size(m->dtype) * 8;
        bool sgn = tsr__dtype_is_signed(m->dtype);
        bool ok = sgn ? (bits == 64 || (iv >= -((json_int_t)1 << (bits - 1)) &&
                                        iv < ((json_int_t)1 << (bits - 1))))
                      : (iv >= 0 && (bits == 64 || iv < ((json_int_t)1 << bits)));
        if (!ok)
            goto bad_value;
        uint64_t u = (uint64_t)iv;
        memcpy(m->fill, &u, tsr_dtype_size(m->dtype)); /* little-endian host */
    } else if (m->dtype == TSR_BOOL) {
        if (!(d == 0 || d == 1))
            goto bad_value;
        m->fill[0] = d != 0;
    } else if (m->dtype == TSR_F32) {
        float f = (float)d;
        memcpy(m->fill, &f, 4);
    } else if (m->dtype == TSR_F64) {
        memcpy(m->fill, &d, 8);
    } else { /* complex64 */
        float c[2] = {(float)d, (float)im};
        memcpy(m->fill, c, 8);
    }
    if (m->big_endian) {
        size_t es = tsr_dtype_size(m->dtype);
        tsr__byteswap(m->fill, m->dtype == TSR_C64 ? 4 : es, m->dtype == TSR_C64 ? 2 : 1);
    }
    return 0;
bad_value:
    json_brief(v, found, sizeof found);
    return bad(err, errlen, TSR_ECORRUPT, "'fill_value' %s is not a value of dtype '%s'", found,
               m->dtype_str);
}

int tsr__zarr_parse_meta(const char *text, size_t n, tsr__zarr_meta_t *m, char *err, size_t errlen)
{
    memset(m, 0, sizeof *m);
    json_error_t je;
    json_t *root = json_loadb(text, n, JSON_REJECT_DUPLICATES, &je);
    char found[96];
    int rc = 0;
    if (!root)
        return bad(err, errlen, TSR_ECORRUPT, "not valid JSON: %s (line %d, column %d)", je.text,
                   je.line, je.column);
    if (!json_is_object(root)) {
        rc = bad(err, errlen, TSR_ECORRUPT, "not a JSON object");
        goto done;
    }
    const json_t *zf = json_object_get(root, "zarr_format");
    if (!json_is_integer(zf) || json_integer_value(zf) != 2) {
        json_brief(zf, found, sizeof found);
        rc = bad(err, errlen, json_is_integer(zf) ? TSR_EUNSUPPORTED : TSR_ECORRUPT,
                 "'zarr_format' is %s, expected 2 (Zarr v2)", found);
        goto done;
    }
    int nd_c = 0;
    if ((rc = int_list(json_object_get(root, "shape"), "shape", m->shape, &m->ndim, err, errlen)) ||
        (rc = int_list(json_object_get(root, "chunks"), "chunks", m->chunks, &nd_c, err, errlen)))
        goto done;
    if (nd_c != m->ndim) {
        rc = bad(err, errlen, TSR_ECORRUPT, "'chunks' has %d dimensions, 'shape' has %d", nd_c,
                 m->ndim);
        goto done;
    }
    int64_t total = 1;
    for (int i = 0; i < m->ndim; i++)
        if (!tsr__mul_i64(total, m->shape[i], &total)) {
            rc = bad(err, errlen, TSR_ECORRUPT, "'shape' is too large (the size overflows)");
            goto done;
        }

    const json_t *dt = json_object_get(root, "dtype");
    if (!json_is_string(dt)) {
        json_brief(dt, found, sizeof found);
        rc = bad(err, errlen, json_is_array(dt) ? TSR_EUNSUPPORTED : TSR_ECORRUPT,
                 json_is_array(dt) ? "'dtype' %s is a structured type, which is not supported"
                                   : "'dtype' must be a numpy typestring such as \"<u2\", found %s",
                 found);
        goto done;
    }
    snprintf(m->dtype_str, sizeof m->dtype_str, "%s", json_string_value(dt));
    const char *ds = json_string_value(dt);
    if (strlen(ds) != 3 || !strchr("<>|", ds[0]) ||
        tsr_dtype_parse(ds, &m->dtype, &m->big_endian) != 0) {
        rc = bad(err, errlen, TSR_EUNSUPPORTED,
                 "'dtype' \"%.20s\" is not supported (expected a typestring such as \"<u2\", "
                 "\">f4\", \"|u1\": u1-u8, i1-i8, f4, f8, c8 or b1)",
                 ds);
        goto done;
    }

    const char *order = str_member(root, "order");
    if (!order || (strcmp(order, "C") != 0 && strcmp(order, "F") != 0)) {
        json_brief(json_object_get(root, "order"), found, sizeof found);
        rc = bad(err, errlen, TSR_ECORRUPT, "'order' must be \"C\" or \"F\", found %s", found);
        goto done;
    }
    if (strcmp(order, "F") == 0) {
        rc = bad(err, errlen, TSR_EUNSUPPORTED,
                 "'order' is \"F\" (Fortran order within chunks), which is not supported: frames "
                 "would not be contiguous; rewrite the array with order \"C\"");
        goto done;
    }

    const json_t *filters = json_object_get(root, "filters");
    if (filters && !json_is_null(filters) &&
        !(json_is_array(filters) && json_array_size(filters) == 0)) {
        json_brief(filters, found, sizeof found);
        rc = bad(err, errlen, TSR_EUNSUPPORTED,
                 "'filters' %s are not supported (only null or []): rewrite the array without "
                 "filters",
                 found);
        goto done;
    }
    if ((rc = parse_compressor(json_object_get(root, "compressor"), m, err, errlen)))
        goto done;

    const json_t *sep = json_object_get(root, "dimension_separator");
    m->sep = '.';
    if (sep && !json_is_null(sep)) {
        const char *s = json_is_string(sep) ? json_string_value(sep) : "";
        if (strcmp(s, ".") != 0 && strcmp(s, "/") != 0) {
            json_brief(sep, found, sizeof found);
            rc = bad(err, errlen, TSR_ECORRUPT,
                     "'dimension_separator' must be \".\" or \"/\", found %s", found);
            goto done;
        }
        m->sep = s[0];
    }

    const json_t *fv = json_object_get(root, "fill_value");
    if (!fv || json_is_null(fv)) {
        m->fill_null = true;
    } else if ((rc = fill_number(fv, m, err, errlen))) {
        goto done;
    }

    size_t es = tsr_dtype_size(m->dtype), elems = 1;
    for (int i = 0; i < m->ndim; i++)
        if (!tsr__mul_size(elems, (size_t)m->chunks[i], &elems)) {
            elems = SIZE_MAX;
            break;
        }
    size_t bytes;
    if (elems == SIZE_MAX || !tsr__mul_size(elems, es, &bytes) || bytes > TSR__ZARR_MAX_CHUNK) {
        json_brief(json_object_get(root, "chunks"), found, sizeof found);
        rc = bad(err, errlen, TSR_EUNSUPPORTED,
                 "'chunks' %s of %s make chunks larger than the %zu MiB this reader accepts", found,
                 m->dtype_str, TSR__ZARR_MAX_CHUNK >> 20);
        goto done;
    }
    m->chunk_elems = elems;
    m->chunk_bytes = bytes;
done:
    json_decref(root);
    return rc;
}
