/*
 * mat.c — one 2-D numeric variable from a MATLAB Level 5 MAT-file.
 *
 * Layout (MathWorks, "MAT-File Format"): a 128-byte header (text, subsystem
 * offset, version 0x0100 at 124, the endian indicator "IM" or "MI" at 126),
 * then data elements: a tag (type u32, byte count u32; or, when the upper
 * half of the first word is set, a small element with its count there and
 * up to 4 bytes of data in the second word) and the data, padded to 8
 * bytes.  A variable is a miMATRIX element holding sub-elements: array flags
 * (class in the low byte, 0x800 complex), dimensions (int32), the name
 * (int8) and the real part in any numeric storage type, column-major.
 * MATLAB's default (-v7) compresses each variable into a miCOMPRESSED
 * element (zlib).  Every count is checked against the bytes that hold it;
 * inflation stops at 256 MiB.
 */
#include "io/formats/frms6/mat.h"

#include "platform/os.h"

#include <zlib.h>

#define MAT_HEADER 128
#define MAT_MAX_INFLATE ((size_t)256 << 20)
#define MAT_MAX_FILE ((int64_t)1 << 30)

enum {
    MI_INT8 = 1,
    MI_UINT8 = 2,
    MI_INT16 = 3,
    MI_UINT16 = 4,
    MI_INT32 = 5,
    MI_UINT32 = 6,
    MI_SINGLE = 7,
    MI_DOUBLE = 9,
    MI_INT64 = 12,
    MI_UINT64 = 13,
    MI_MATRIX = 14,
    MI_COMPRESSED = 15,
};

typedef struct mat {
    tsr_ctx_t *ctx;
    bool swap;
    const char *path, *want;
    char *err;
    size_t errlen;
    bool found;
    int64_t rows, cols;
    float *out;
    char names[200]; /* variables seen, for the message when want is absent */
} mat_t;

static uint32_t rd32(const mat_t *m, const uint8_t *p)
{
    uint32_t v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    return m->swap ? __builtin_bswap32(v) : v;
}

static int bad(const mat_t *m, const char *what)
{
    return tsr__seterr(m->err, m->errlen, TSR_ECORRUPT, "%s: malformed MAT-file: %s", m->path,
                       what);
}

static int type_size(uint32_t t)
{
    switch (t) {
    case MI_INT8:
    case MI_UINT8: return 1;
    case MI_INT16:
    case MI_UINT16: return 2;
    case MI_INT32:
    case MI_UINT32:
    case MI_SINGLE: return 4;
    case MI_DOUBLE:
    case MI_INT64:
    case MI_UINT64: return 8;
    default: return 0;
    }
}

static double value(const mat_t *m, uint32_t t, const uint8_t *p)
{
    int k = type_size(t);
    uint64_t u = 0;
    for (int i = 0; i < k; i++) /* little-endian bytes, or big when swapped */
        u |= (uint64_t)p[m->swap ? k - 1 - i : i] << (8 * i);
    switch (t) {
    case MI_INT8: return (int8_t)u;
    case MI_UINT8:
    case MI_UINT16:
    case MI_UINT32:
    case MI_UINT64: return (double)u;
    case MI_INT16: return (int16_t)u;
    case MI_INT32: return (int32_t)u;
    case MI_INT64: return (double)(int64_t)u;
    case MI_SINGLE: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        return f;
    }
    default: {
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    }
}

/* The element at p (before end): its type, data and byte count, and the
 * bytes to the next element. */
static int element(const mat_t *m, const uint8_t *p, const uint8_t *end, uint32_t *type,
                   const uint8_t **data, size_t *nbytes, size_t *next)
{
    if (end - p < 8)
        return bad(m, "an element tag is cut off");
    uint32_t t = rd32(m, p);
    if (t >> 16) { /* small element */
        *type = t & 0xFFFF;
        *nbytes = t >> 16;
        if (*nbytes > 4)
            return bad(m, "a small data element claims more than 4 bytes");
        *data = p + 4;
        *next = 8;
        return 0;
    }
    *type = t;
    *nbytes = rd32(m, p + 4);
    if (*nbytes > (size_t)(end - p - 8)) {
        char msg[128];
        snprintf(msg, sizeof msg, "an element claims %zu bytes, %lld remain", *nbytes,
                 (long long)(end - p - 8));
        return bad(m, msg);
    }
    *data = p + 8;
    size_t sz = 8 + *nbytes;
    if (t != MI_COMPRESSED)
        sz = (sz + 7) & ~(size_t)7;
    *next = sz < (size_t)(end - p) ? sz : (size_t)(end - p);
    return 0;
}

static int matrix(mat_t *m, const uint8_t *p, size_t n)
{
    const uint8_t *end = p + n, *d[4] = {0};
    uint32_t t[4] = {0};
    size_t nb[4] = {0}, next = 0;
    int rc;
    for (int i = 0; i < 3; i++) { /* flags, dimensions, name */
        if ((rc = element(m, p, end, &t[i], &d[i], &nb[i], &next)))
            return rc;
        p += next;
    }
    if (t[0] != MI_UINT32 || nb[0] < 8 || t[1] != MI_INT32 || nb[1] % 4 || nb[1] < 8 ||
        (t[2] != MI_INT8 && t[2] != MI_UINT8))
        return bad(m, "a matrix lacks its flags, dimensions or name");
    uint32_t flags = rd32(m, d[0]), cls = flags & 0xFF;
    char name[64];
    size_t nl = nb[2] < sizeof name - 1 ? nb[2] : sizeof name - 1;
    memcpy(name, d[2], nl);
    name[nl] = 0;
    for (size_t i = 0; i < nl; i++)
        if (name[i] < 32 || name[i] > 126)
            name[i] = '?';
    size_t have = strlen(m->names);
    if (have + nl + 3 < sizeof m->names)
        snprintf(m->names + have, sizeof m->names - have, "%s%s", have ? ", " : "", name);
    if (m->found || strcmp(name, m->want))
        return 0;
    if (cls < 6 || cls > 15)
        return tsr__seterr(m->err, m->errlen, TSR_EUNSUPPORTED,
                           "%s: variable %s is not a numeric array (MATLAB class %u)", m->path,
                           name, cls);
    if (flags & 0x800)
        return tsr__seterr(m->err, m->errlen, TSR_EUNSUPPORTED,
                           "%s: variable %s is complex; a real array is needed", m->path, name);
    size_t ndims = nb[1] / 4;
    int64_t rows = (int32_t)rd32(m, d[1]), cols = (int32_t)rd32(m, d[1] + 4);
    for (size_t i = 2; i < ndims; i++)
        if ((int32_t)rd32(m, d[1] + 4 * i) != 1)
            return tsr__seterr(m->err, m->errlen, TSR_EUNSUPPORTED,
                               "%s: variable %s has %zu dimensions; a 2-D array is needed", m->path,
                               name, ndims);
    if (rows < 1 || cols < 1 || rows > (1 << 20) || cols > (1 << 20))
        return bad(m, "a matrix dimension is out of range");
    if ((rc = element(m, p, end, &t[3], &d[3], &nb[3], &next)))
        return rc;
    int es = type_size(t[3]);
    if (!es)
        return bad(m, "the real part has no numeric storage type");
    if (nb[3] / (size_t)es != (size_t)(rows * cols)) {
        char msg[160];
        snprintf(msg, sizeof msg, "variable %s is %lld x %lld but holds %zu values", name,
                 (long long)rows, (long long)cols, nb[3] / (size_t)es);
        return bad(m, msg);
    }
    float *out = tsr__malloc(m->ctx, (size_t)(rows * cols) * sizeof *out);
    if (!out)
        return tsr__seterr(m->err, m->errlen, TSR_ENOMEM, "out of memory");
    for (int64_t c = 0; c < cols; c++) /* column-major storage */
        for (int64_t r = 0; r < rows; r++)
            out[r * cols + c] = (float)value(m, t[3], d[3] + (size_t)(c * rows + r) * (size_t)es);
    m->out = out;
    m->rows = rows;
    m->cols = cols;
    m->found = true;
    return 0;
}

static int inflate_all(mat_t *m, const uint8_t *src, size_t n, uint8_t **out, size_t *outn)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit(&z) != Z_OK)
        return tsr__seterr(m->err, m->errlen, TSR_ENOMEM, "out of memory (zlib)");
    size_t cap = n * 4 > 65536 ? n * 4 : 65536, len = 0;
    if (cap > MAT_MAX_INFLATE)
        cap = MAT_MAX_INFLATE;
    uint8_t *buf = tsr__malloc(m->ctx, cap);
    int rc = 0;
    if (!buf) {
        rc = tsr__seterr(m->err, m->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    z.next_in = (Bytef *)src;
    z.avail_in = (uInt)(n < UINT32_MAX ? n : UINT32_MAX);
    for (;;) {
        if (len == cap) {
            if (cap >= MAT_MAX_INFLATE) {
                rc = tsr__seterr(m->err, m->errlen, TSR_ECORRUPT,
                                 "%s: a compressed variable inflates to more than %zu MiB", m->path,
                                 MAT_MAX_INFLATE >> 20);
                goto done;
            }
            size_t nc = cap * 2 < MAT_MAX_INFLATE ? cap * 2 : MAT_MAX_INFLATE;
            uint8_t *nbuf = tsr__realloc(m->ctx, buf, nc);
            if (!nbuf) {
                rc = tsr__seterr(m->err, m->errlen, TSR_ENOMEM, "out of memory");
                goto done;
            }
            buf = nbuf;
            cap = nc;
        }
        z.next_out = buf + len;
        z.avail_out = (uInt)(cap - len);
        int zr = inflate(&z, Z_NO_FLUSH);
        len = cap - z.avail_out;
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && !(zr == Z_BUF_ERROR && z.avail_out == 0)) {
            rc = tsr__seterr(m->err, m->errlen, TSR_ECORRUPT,
                             "%s: a compressed variable does not inflate (zlib: %s)", m->path,
                             z.msg ? z.msg : (zr == Z_BUF_ERROR ? "data cut off" : "error"));
            goto done;
        }
    }
    *out = buf;
    *outn = len;
    buf = NULL;
done:
    inflateEnd(&z);
    tsr__free(m->ctx, buf);
    return rc;
}

static int elements(mat_t *m, const uint8_t *p, const uint8_t *end, int depth)
{
    while (p < end && !m->found) {
        uint32_t t = 0;
        const uint8_t *d = NULL;
        size_t nb = 0, next = 0;
        int rc = element(m, p, end, &t, &d, &nb, &next);
        if (rc)
            return rc;
        if (t == MI_MATRIX) {
            if ((rc = matrix(m, d, nb)))
                return rc;
        } else if (t == MI_COMPRESSED && depth == 0) {
            uint8_t *z = NULL;
            size_t zn = 0;
            if ((rc = inflate_all(m, d, nb, &z, &zn)))
                return rc;
            rc = elements(m, z, z + zn, 1);
            tsr__free(m->ctx, z);
            if (rc)
                return rc;
        }
        p += next;
    }
    return 0;
}

int tsr__mat_parse_f32(tsr_ctx_t *ctx, const uint8_t *b, size_t n, const char *path,
                       const char *name, int64_t *rows, int64_t *cols, float **out, char *err,
                       size_t errlen)
{
    mat_t m = {ctx, false, path, name, err, errlen, false, 0, 0, NULL, {0}};
    if (n >= 10 && !memcmp(b, "MATLAB 7.3", 10))
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED,
                           "%s: MATLAB v7.3 MAT-files (HDF5) are not supported: save with -v7 "
                           "or -v6, or as .npy",
                           path);
    if (n < MAT_HEADER)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: %zu bytes, too short for a MAT-file (a 128-byte header)", path, n);
    if (b[126] == 'I' && b[127] == 'M')
        m.swap = false;
    else if (b[126] == 'M' && b[127] == 'I')
        m.swap = true;
    else
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: not a Level 5 MAT-file: endian indicator at byte 126 is 0x%02x "
                           "0x%02x, expected \"IM\" or \"MI\"",
                           path, b[126], b[127]);
    int rc = elements(&m, b + MAT_HEADER, b + n, 0);
    if (rc) {
        tsr__free(ctx, m.out);
        return rc;
    }
    if (!m.found)
        return tsr__seterr(err, errlen, TSR_ENOTFOUND, "%s: no variable %s (found: %s)", path, name,
                           m.names[0] ? m.names : "none");
    *rows = m.rows;
    *cols = m.cols;
    *out = m.out;
    return 0;
}

int tsr__mat_load_f32(tsr_ctx_t *ctx, const char *path, const char *name, int64_t *rows,
                      int64_t *cols, float **out, char *err, size_t errlen)
{
    tsr__file_t f;
    int rc = tsr__file_open(&f, path, err, errlen);
    if (rc)
        return rc;
    if (f.size > MAT_MAX_FILE) {
        tsr__file_close(&f);
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, "%s: %lld bytes, larger than 1 GiB", path,
                           (long long)f.size);
    }
    uint8_t *b = tsr__malloc(ctx, f.size > 0 ? (size_t)f.size : 1);
    if (!b) {
        tsr__file_close(&f);
        return tsr__seterr(err, errlen, TSR_ENOMEM, "out of memory");
    }
    rc = tsr__file_pread(&f, b, (size_t)f.size, 0);
    tsr__file_close(&f);
    if (rc)
        rc = tsr__seterr(err, errlen, TSR_EIO, "%s: cannot read", path);
    else
        rc = tsr__mat_parse_f32(ctx, b, (size_t)f.size, path, name, rows, cols, out, err, errlen);
    tsr__free(ctx, b);
    return rc;
}
