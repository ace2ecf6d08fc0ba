/*
 * raw_csr.c — sparse frames in compressed sparse row form, described by a
 * TOML sidecar (LiberTEM's raw_csr layout):
 *
 *     [params]
 *     filetype = "raw_csr"
 *     nav_shape = [512, 512]
 *     sig_shape = [516, 516]
 *     sync_offset = 0            # optional
 *
 *     [raw_csr]                  # the table named by filetype
 *     indptr_file = "rowind.dat"   indptr_dtype = "<i4"
 *     indices_file = "coords.dat"  indices_dtype = "<i4"
 *     data_file = "values.dat"     data_dtype = "<i4"
 *
 * The three files are raw arrays (numpy typestrings, paths relative to the
 * TOML file): frame i (a row of the nav-flattened, sig-flattened matrix)
 * holds data[indptr[i]:indptr[i+1]] at flat sig positions
 * indices[indptr[i]:indptr[i+1]], as scipy.sparse.csr_matrix stores it;
 * the image count is len(indptr) - 1.
 *
 * Two read paths share one loop (load_rows): `read` scatters the values
 * into zeroed dense tiles for UDFs that want dense data, and `read_sparse`
 * hands the rows on as they are (tsr_sparse_rows_t) when every UDF of the
 * run accepts sparse tiles.  Tiles are whole frames (base_rows).  indptr is
 * checked where it is read (monotonic, within the value files) and every
 * index against the frame size, so malformed files give an error naming
 * the file, the position and the value, never a wild write.
 */
#include "io/formats/raw_csr/toml.h"
#include "io/dataset.h"

#include <jansson.h>
#include <stdlib.h>
#include <strings.h>

#define CSR_TOML_MAX ((int64_t)1 << 20)
/* values converted per batch: bounds the scratch whatever a tile holds */
#define CSR_BATCH ((int64_t)1 << 16)

enum { F_INDPTR = 0, F_INDICES = 1, F_DATA = 2 };

static const tsr_param_def_t params[] = {
    {"nav_shape", "shape", "", "scan shape (default: nav_shape of the TOML file)", false},
    {"sig_shape", "shape", "", "frame shape (default: sig_shape of the TOML file)", false},
    {"sync_offset", "int", "",
     "frames to skip at the start (positive) or blank frames to insert (negative); default: "
     "sync_offset of the TOML file, else 0",
     false},
};

static const char *const exts[] = {"toml", NULL};

typedef struct csr_state {
    tsr_dtype_t idt[3]; /* indptr, indices, data */
    bool be[3];
    int64_t count[3]; /* elements in each file */
    int64_t sig_size;
} csr_state_t;

static const char *const file_keys[3] = {"indptr", "indices", "data"};

/* ---- probe ------------------------------------------------------------- */

static int probe(const char *path, const uint8_t *head, size_t n)
{
    const char *dot = strrchr(path, '.');
    bool toml = dot && strcasecmp(dot, ".toml") == 0;
    /* look for filetype = "raw_csr" in the first bytes */
    for (size_t i = 0; i + 8 <= n; i++) {
        if (memcmp(head + i, "filetype", 8) != 0)
            continue;
        size_t j = i + 8;
        while (j < n && (head[j] == ' ' || head[j] == '\t'))
            j++;
        if (j >= n || head[j] != '=')
            continue;
        j++;
        while (j < n && (head[j] == ' ' || head[j] == '\t'))
            j++;
        if (j + 9 <= n && (head[j] == '"' || head[j] == '\'') &&
            strncasecmp((const char *)head + j + 1, "raw_csr", 7) == 0 && head[j + 8] == head[j])
            return 100;
    }
    return toml ? 5 : 0;
}

/* ---- open -------------------------------------------------------------- */

static int shape_entry(tsr__open_args_t *a, const tsr__toml_t *t, const char *key, int max_nd,
                       tsr_shape_t *out, bool *present)
{
    const tsr__toml_entry_t *e = tsr__toml_get(t, "params", key);
    *present = e != NULL;
    if (!e)
        return 0;
    if (e->type != TSR__TOML_ARRAY || !e->all_ints || e->n < 1 || e->n > max_nd)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: line %d: [params] %s must be an array of 1 to %d positive "
                           "integers (found a %s%s)",
                           a->path, e->line, key, max_nd, tsr__toml_type_name(e->type),
                           e->type == TSR__TOML_ARRAY ? " of other values or length" : "");
    out->ndim = e->n;
    for (int i = 0; i < e->n; i++) {
        if (e->ints[i] < 1)
            return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                               "%s: line %d: [params] %s[%d] is %lld, expected a positive "
                               "integer",
                               a->path, e->line, key, i, (long long)e->ints[i]);
        out->dims[i] = e->ints[i];
    }
    return 0;
}

static int string_entry(tsr__open_args_t *a, const tsr__toml_t *t, const char *table,
                        const char *key, const char **out)
{
    const tsr__toml_entry_t *e = tsr__toml_get(t, table, key);
    if (!e)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT, "%s: [%s] %s is missing", a->path,
                           table, key);
    if (e->type != TSR__TOML_STRING)
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: line %d: [%s] %s must be a string, found a %s", a->path, e->line,
                           table, key, tsr__toml_type_name(e->type));
    *out = e->str;
    return 0;
}

/* One int64 from an index file's element (dtype dt, byte order be);
 * false if it does not fit. */
static bool load_index(const unsigned char *p, tsr_dtype_t dt, bool be, int64_t *out)
{
    unsigned char b[8];
    size_t es = tsr_dtype_size(dt);
    memcpy(b, p, es);
    if (be && es > 1)
        tsr__byteswap(b, es, 1);
    switch (dt) {
    case TSR_U8: *out = b[0]; return true;
    case TSR_I8: *out = (int8_t)b[0]; return true;
    case TSR_U16: {
        uint16_t v;
        memcpy(&v, b, 2);
        *out = v;
        return true;
    }
    case TSR_I16: {
        int16_t v;
        memcpy(&v, b, 2);
        *out = v;
        return true;
    }
    case TSR_U32: {
        uint32_t v;
        memcpy(&v, b, 4);
        *out = v;
        return true;
    }
    case TSR_I32: {
        int32_t v;
        memcpy(&v, b, 4);
        *out = v;
        return true;
    }
    case TSR_U64: {
        uint64_t v;
        memcpy(&v, b, 8);
        *out = (int64_t)v;
        return v <= (uint64_t)INT64_MAX;
    }
    case TSR_I64: memcpy(out, b, 8); return true;
    default: return false;
    }
}

static int read_indptr_at(const tsr_dataset_t *ds, int64_t i, int64_t *v, char *err, size_t errlen)
{
    const csr_state_t *st = ds->state;
    unsigned char b[8];
    size_t es = tsr_dtype_size(st->idt[F_INDPTR]);
    if (tsr__file_pread(&ds->files[F_INDPTR], b, es, i * (int64_t)es))
        return tsr__seterr(err, errlen, TSR_EIO, "%s: cannot read indptr[%lld]",
                           ds->file_paths[F_INDPTR], (long long)i);
    if (!load_index(b, st->idt[F_INDPTR], st->be[F_INDPTR], v))
        return tsr__seterr(err, errlen, TSR_ECORRUPT, "%s: indptr[%lld] is out of range",
                           ds->file_paths[F_INDPTR], (long long)i);
    return 0;
}

static int open_csr(tsr__open_args_t *a)
{
    tsr_ctx_t *ctx = a->ctx;
    tsr_dataset_t *ds = a->ds;
    tsr__toml_t t = {0};
    char *text = NULL, *dir = NULL;
    int rc = 0;
    csr_state_t *st = tsr__calloc(ctx, 1, sizeof *st);
    if (!st)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    ds->state = st;

    /* the TOML file */
    tsr__file_t f;
    if ((rc = tsr__file_open(&f, a->path, a->err, a->errlen)))
        return rc;
    if (f.size > CSR_TOML_MAX) {
        tsr__file_close(&f);
        return tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                           "%s: %lld bytes is too large for a raw_csr TOML description (at most "
                           "%lld)",
                           a->path, (long long)f.size, (long long)CSR_TOML_MAX);
    }
    text = tsr__malloc(ctx, (size_t)f.size + 1);
    if (!text) {
        tsr__file_close(&f);
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
    }
    rc = f.size ? tsr__file_pread(&f, text, (size_t)f.size, 0) : 0;
    tsr__file_close(&f);
    if (rc) {
        rc = tsr__seterr(a->err, a->errlen, rc, "%s: cannot read the file", a->path);
        goto done;
    }
    char why[TSR__ERRMSG_MAX - 128];
    if ((rc = tsr__toml_parse(ctx, text, (size_t)f.size, &t, why, sizeof why))) {
        rc = tsr__seterr(a->err, a->errlen, rc, "%s: not valid TOML: %s", a->path, why);
        goto done;
    }
    const char *filetype;
    if ((rc = string_entry(a, &t, "params", "filetype", &filetype)))
        goto done;
    if (strcasecmp(filetype, "raw_csr") != 0) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: [params] filetype is \"%.40s\", expected \"raw_csr\"", a->path,
                         filetype);
        goto done;
    }
    tsr_shape_t nav = {0}, sig = {0};
    bool has_nav, has_sig;
    if ((rc = shape_entry(a, &t, "nav_shape", 4, &nav, &has_nav)) ||
        (rc = shape_entry(a, &t, "sig_shape", 3, &sig, &has_sig)))
        goto done;
    if (!has_sig && !tsr_params_get(a->params, "sig_shape")) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT, "%s: [params] sig_shape is missing",
                         a->path);
        goto done;
    }
    int64_t toml_so = 0;
    const tsr__toml_entry_t *so = tsr__toml_get(&t, "params", "sync_offset");
    if (so && so->type != TSR__TOML_INT) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: line %d: [params] sync_offset must be an integer, found a %s",
                         a->path, so->line, tsr__toml_type_name(so->type));
        goto done;
    }
    if (so)
        toml_so = so->i;

    /* the three files, relative to the TOML file's directory */
    dir = tsr__strdup(ctx, a->path);
    if (!dir) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
        goto done;
    }
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[1] = 0;
    else
        dir[0] = 0;
    for (int k = 0; k < 3; k++) {
        char key[32];
        const char *name, *dts;
        snprintf(key, sizeof key, "%s_file", file_keys[k]);
        if ((rc = string_entry(a, &t, filetype, key, &name)))
            goto done;
        snprintf(key, sizeof key, "%s_dtype", file_keys[k]);
        if ((rc = string_entry(a, &t, filetype, key, &dts)))
            goto done;
        if (tsr_dtype_parse(dts, &st->idt[k], &st->be[k]) != 0 ||
            (k < F_DATA && (tsr__dtype_is_float(st->idt[k]) || st->idt[k] == TSR_BOOL)) ||
            (k == F_DATA && tsr__dtype_is_complex(st->idt[k]))) {
            rc = tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                             "%s: [%s] %s = \"%.20s\" is not supported (expected %s)", a->path,
                             filetype, key, dts,
                             k < F_DATA ? "an integer typestring such as \"<i4\" or \"<u8\""
                                        : "a real typestring such as \"<u2\" or \"<f4\"");
            goto done;
        }
        size_t plen = strlen(dir) + strlen(name) + 1;
        char *p = tsr__malloc(ctx, plen);
        if (!p) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(p, plen, "%s%s", name[0] == '/' ? "" : dir, name);
        int idx = tsr__dataset_add_file(a, p);
        if (idx < 0) {
            char sys[256];
            snprintf(sys, sizeof sys, "%s", a->err);
            rc = tsr__seterr(a->err, a->errlen, idx, "%s: [%s] %s_file: %s", a->path, filetype,
                             file_keys[k], sys);
            tsr__free(ctx, p);
            goto done;
        }
        tsr__free(ctx, p);
        size_t es = tsr_dtype_size(st->idt[k]);
        int64_t size = ds->files[idx].size;
        if (size % (int64_t)es) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: %lld bytes is not a whole number of %s elements (%zu bytes "
                             "each): truncated %s file?",
                             ds->file_paths[idx], (long long)size, dts, es, file_keys[k]);
            goto done;
        }
        st->count[k] = size / (int64_t)es;
    }
    if (st->count[F_INDPTR] < 2) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: the indptr file holds %lld entries; one frame needs 2 (frames + 1 "
                         "entries)",
                         ds->file_paths[F_INDPTR], (long long)st->count[F_INDPTR]);
        goto done;
    }
    if (st->count[F_INDICES] != st->count[F_DATA]) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: %lld indices but %s holds %lld values (the two files must have "
                         "one entry per stored value)",
                         ds->file_paths[F_INDICES], (long long)st->count[F_INDICES],
                         ds->file_paths[F_DATA], (long long)st->count[F_DATA]);
        goto done;
    }
    int64_t first, last, nimg = st->count[F_INDPTR] - 1;
    if ((rc = read_indptr_at(ds, 0, &first, a->err, a->errlen)) ||
        (rc = read_indptr_at(ds, nimg, &last, a->err, a->errlen)))
        goto done;
    if (first < 0 || last < first || last > st->count[F_DATA]) {
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                         "%s: indptr[0] = %lld and indptr[%lld] = %lld must satisfy 0 <= "
                         "indptr[0] <= indptr[%lld] <= %lld (the values in %s)",
                         ds->file_paths[F_INDPTR], (long long)first, (long long)nimg,
                         (long long)last, (long long)nimg, (long long)st->count[F_DATA],
                         ds->file_paths[F_DATA]);
        goto done;
    }
    ds->image_count = nimg;
    ds->nnz = last - first;
    ds->dtype = st->idt[F_DATA];
    ds->big_endian = st->be[F_DATA];
    if ((rc = tsr__dataset_shape_params(a, has_nav ? &nav : NULL, has_sig ? &sig : NULL)))
        goto done;
    if (!tsr_params_get(a->params, "sync_offset") && toml_so != 0) {
        if (!(-nimg < toml_so && toml_so < nimg)) {
            rc = tsr__seterr(a->err, a->errlen, TSR_ERANGE,
                             "%s: [params] sync_offset %lld out of range: must be > %lld and < "
                             "%lld (the number of frames)",
                             a->path, (long long)toml_so, (long long)-nimg, (long long)nimg);
            goto done;
        }
        ds->sync_offset = toml_so;
    }
    st->sig_size = tsr_shape_size(&ds->sig);
    ds->base_rows = ds->sig.dims[0]; /* whole frames */

    char dstr[3][16];
    for (int k = 0; k < 3; k++)
        snprintf(dstr[k], sizeof dstr[k], "%c%c%zu",
                 tsr_dtype_size(st->idt[k]) == 1 ? '|'
                 : st->be[k]                     ? '>'
                                                 : '<',
                 tsr_dtype_name(st->idt[k])[0] == 'b' ? 'b' : tsr_dtype_name(st->idt[k])[0],
                 tsr_dtype_size(st->idt[k]));
    json_t *hdr =
        json_pack("{s:s, s:s, s:s, s:s, s:I}", "filetype", filetype, "indptr_dtype", dstr[0],
                  "indices_dtype", dstr[1], "data_dtype", dstr[2], "nnz", (json_int_t)ds->nnz);
    json_t *files = json_pack("[s, s, s]", ds->file_paths[0], ds->file_paths[1], ds->file_paths[2]);
    json_t *m = json_pack("{s:o, s:o, s:b}", "header", hdr, "files", files, "sparse", 1);
    rc = tsr__dataset_set_meta(a, m);
done:
    tsr__toml_free(ctx, &t);
    tsr__free(ctx, text);
    tsr__free(ctx, dir);
    return rc;
}

static void close_csr(tsr_dataset_t *ds)
{
    tsr__free(ds->ctx, ds->state);
}

/* ---- reading ----------------------------------------------------------- */

/* Scatter-add n values (type dt) at rel[] (-1 = skip) into row o. */
#define SCATTER(DT, T)                             \
    case DT: {                                     \
        T *d = (T *)o;                             \
        const T *v = (const T *)vals;              \
        for (int64_t e = 0; e < n; e++)            \
            if (rel[e] >= 0)                       \
                d[rel[e]] = (T)(d[rel[e]] + v[e]); \
        break;                                     \
    }

static void scatter(void *o, tsr_dtype_t dt, const int64_t *rel, const void *vals, int64_t n)
{
    switch (dt) {
        TSR__REAL_TYPES(SCATTER)
    case TSR_BOOL: {
        uint8_t *d = o;
        const uint8_t *v = vals;
        for (int64_t e = 0; e < n; e++)
            if (rel[e] >= 0)
                d[rel[e]] |= v[e] != 0;
        break;
    }
    default: break;
    }
}
#undef SCATTER

/* Images [img0, img0+n), pixels [sig0, sig0+siglen): values as dt, either
 * scattered into the dense tile `out` (zeroed here) or appended to sp. */
static int load_rows(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                     int64_t siglen, tsr_dtype_t dt, void *out, tsr__sparse_t *sp, char *err,
                     size_t errlen)
{
    const csr_state_t *st = ds->state;
    const size_t pes = tsr_dtype_size(st->idt[F_INDPTR]), ies = tsr_dtype_size(st->idt[F_INDICES]);
    const size_t des = tsr_dtype_size(st->idt[F_DATA]), oes = tsr_dtype_size(dt);
    const int64_t batch = CSR_BATCH;
    /* scratch: indptr as int64 (n + 1) | raw indptr | indices (batch) |
     * values as dt (batch) | raw bytes (batch) */
    size_t raw_es = ies > des ? ies : des;
    size_t ip_bytes = ((size_t)(n + 1) * sizeof(int64_t) + 63) & ~(size_t)63;
    size_t ipr_bytes = ((size_t)(n + 1) * pes + 63) & ~(size_t)63;
    size_t need = ip_bytes + ipr_bytes + (size_t)batch * (sizeof(int64_t) + oes + raw_es);
    int rc = tsr__io_reserve(io, need);
    if (rc)
        return tsr__seterr(err, errlen, rc, "out of memory");
    unsigned char *base = io->scratch;
    int64_t *ip = (int64_t *)base;
    unsigned char *ipr = base + ip_bytes;
    int64_t *idx = (int64_t *)(ipr + ipr_bytes);
    unsigned char *vals = (unsigned char *)(idx + batch);
    unsigned char *raw = vals + (size_t)batch * oes;

    if ((rc = tsr__io_fetch(ds, io, F_INDPTR, img0 * (int64_t)pes, (size_t)(n + 1) * pes, ipr, err,
                            errlen)))
        return rc;
    for (int64_t i = 0; i <= n; i++) {
        if (!load_index(ipr + (size_t)i * pes, st->idt[F_INDPTR], st->be[F_INDPTR], &ip[i]) ||
            ip[i] < 0 || ip[i] > st->count[F_DATA])
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "%s: indptr[%lld] is out of range [0, %lld] (the values in the "
                               "data file)",
                               ds->file_paths[F_INDPTR], (long long)(img0 + i),
                               (long long)st->count[F_DATA]);
        if (i > 0 && ip[i] < ip[i - 1])
            return tsr__seterr(err, errlen, TSR_ECORRUPT,
                               "%s: indptr is not monotonic: indptr[%lld] = %lld < indptr[%lld] "
                               "= %lld",
                               ds->file_paths[F_INDPTR], (long long)(img0 + i), (long long)ip[i],
                               (long long)(img0 + i - 1), (long long)ip[i - 1]);
    }
    if (out)
        memset(out, 0, (size_t)(n * siglen) * oes);
    else if ((rc = tsr__sparse_reserve(io->ctx, sp, n, ip[n] - ip[0])))
        return tsr__seterr(err, errlen, rc, "out of memory for %lld sparse values",
                           (long long)(ip[n] - ip[0]));
    const bool iswap = st->be[F_INDICES] && ies > 1, dswap = st->be[F_DATA] && des > 1;
    int64_t row = 0;
    for (int64_t e0 = ip[0]; e0 < ip[n]; e0 += batch) {
        int64_t m = ip[n] - e0 < batch ? ip[n] - e0 : batch;
        if ((rc = tsr__io_fetch(ds, io, F_INDICES, e0 * (int64_t)ies, (size_t)m * ies, raw, err,
                                errlen)))
            return rc;
        tsr__convert(idx, TSR_I64, raw, st->idt[F_INDICES], iswap, (size_t)m);
        for (int64_t e = 0; e < m; e++) {
            /* a u64 index beyond int64 wraps to a negative value here */
            if (idx[e] < 0 || idx[e] >= st->sig_size) {
                uint64_t u = (uint64_t)idx[e];
                return tsr__seterr(err, errlen, TSR_ECORRUPT,
                                   "%s: indices[%lld] = %s%llu is outside the frame of %lld "
                                   "pixels",
                                   ds->file_paths[F_INDICES], (long long)(e0 + e),
                                   idx[e] < 0 && tsr__dtype_is_signed(st->idt[F_INDICES]) ? "-"
                                                                                          : "",
                                   idx[e] < 0 && tsr__dtype_is_signed(st->idt[F_INDICES])
                                       ? (unsigned long long)(0 - u)
                                       : (unsigned long long)u,
                                   (long long)st->sig_size);
            }
            int64_t r = idx[e] - sig0;
            idx[e] = r >= 0 && r < siglen ? r : -1;
        }
        if ((rc = tsr__io_fetch(ds, io, F_DATA, e0 * (int64_t)des, (size_t)m * des, raw, err,
                                errlen)))
            return rc;
        tsr__convert(vals, dt, raw, st->idt[F_DATA], dswap, (size_t)m);
        /* hand the batch to the rows it covers */
        int64_t e = 0;
        while (e < m) {
            while (row < n && ip[row + 1] <= e0 + e) {
                if (sp)
                    sp->indptr[++sp->rows] = sp->nnz;
                row++;
            }
            int64_t end = ip[row + 1] - e0 < m ? ip[row + 1] - e0 : m;
            if (out) {
                scatter((unsigned char *)out + (size_t)(row * siglen) * oes, dt, idx + e,
                        vals + (size_t)e * oes, end - e);
            } else {
                for (int64_t q = e; q < end; q++) {
                    if (idx[q] < 0)
                        continue;
                    sp->indices[sp->nnz] = idx[q];
                    memcpy((unsigned char *)sp->values + (size_t)sp->nnz * oes,
                           vals + (size_t)q * oes, oes);
                    sp->nnz++;
                }
            }
            e = end;
        }
    }
    if (sp)
        while (row < n) {
            sp->indptr[++sp->rows] = sp->nnz;
            row++;
        }
    return 0;
}

static int read_csr(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                    int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen)
{
    return load_rows(ds, io, img0, n, sig0, siglen, dt, out, NULL, err, errlen);
}

static int read_csr_sparse(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n,
                           int64_t sig0, int64_t siglen, tsr__sparse_t *sp, char *err,
                           size_t errlen)
{
    return load_rows(ds, io, img0, n, sig0, siglen, sp->dtype, NULL, sp, err, errlen);
}

const tsr__reader_def_t tsr__format_raw_csr = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "raw_csr",
    .description = "sparse frames as CSR arrays (indptr, indices, data files) described by a "
                   "TOML file (LiberTEM's raw_csr)",
    .extensions = exts,
    .caps = TSR_CAP_RANDOM_ACCESS,
    .params = params,
    .n_params = sizeof params / sizeof params[0],
    .probe = probe,
    .open = open_csr,
    .read = read_csr,
    .close = close_csr,
    .read_sparse = read_csr_sparse,
};
