/*
 * udf.c — the UDF registry (generated from builtin.def), UDF objects with
 * bound parameters, instance initialisation and buffer sets.
 */
#include "udf/udf.h"

#include <stdarg.h>

#define TSR_UDF(name) extern const tsr_udf_def_t tsr__udf_##name;
#include "udf/builtin.def"
#undef TSR_UDF

static const tsr_udf_def_t *const builtins[] = {
#define TSR_UDF(name) &tsr__udf_##name,
#include "udf/builtin.def"
#undef TSR_UDF
};

size_t tsr_udf_count(void)
{
    return sizeof builtins / sizeof builtins[0];
}

const tsr_udf_def_t *tsr_udf_def_at(size_t i)
{
    return i < tsr_udf_count() ? builtins[i] : NULL;
}

const tsr_udf_def_t *tsr_udf_def_find(const char *name)
{
    for (size_t i = 0; name && i < tsr_udf_count(); i++)
        if (strcmp(builtins[i]->name, name) == 0)
            return builtins[i];
    return NULL;
}

static int udf_make(tsr_ctx_t *ctx, const tsr_udf_def_t *def, void *user_data,
                    const tsr_params_t *params, tsr_udf_t **out)
{
    if (def->abi_version != TSR_UDF_ABI_VERSION)
        return tsr__ctx_seterr(ctx, TSR_EUNSUPPORTED, "UDF %s: ABI version %d, expected %d",
                               def->name ? def->name : "?", def->abi_version, TSR_UDF_ABI_VERSION);
    if (!def->name || !def->init)
        return tsr__ctx_seterr(ctx, TSR_EINVAL, "UDF definition without name or init");
    char owner[96];
    snprintf(owner, sizeof owner, "UDF %s", def->name);
    int rc = tsr__params_check(params, def->params, def->n_params, owner, ctx->errmsg,
                               sizeof ctx->errmsg);
    if (rc)
        return rc;
    tsr_udf_t *u = tsr__calloc(ctx, 1, sizeof *u);
    if (!u)
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory");
    u->ctx = ctx;
    u->def = def;
    u->user_data = user_data;
    if ((rc = tsr__params_copy(ctx, params, &u->params))) {
        tsr__free(ctx, u);
        return rc;
    }
    *out = u;
    return 0;
}

int tsr_udf_new(tsr_ctx_t *ctx, const char *name, const tsr_params_t *params, tsr_udf_t **out)
{
    if (!ctx || !out)
        return TSR_EINVAL;
    const tsr_udf_def_t *def = tsr_udf_def_find(name);
    if (!def)
        return tsr__ctx_seterr(ctx, TSR_ENOTFOUND, "unknown UDF '%s' (see tessera list udfs)",
                               name ? name : "");
    return udf_make(ctx, def, NULL, params, out);
}

int tsr_udf_new_custom(tsr_ctx_t *ctx, const tsr_udf_def_t *def, void *user_data,
                       const tsr_params_t *params, tsr_udf_t **out)
{
    if (!ctx || !out || !def)
        return TSR_EINVAL;
    return udf_make(ctx, def, user_data, params, out);
}

void tsr_udf_free(tsr_udf_t *u)
{
    if (!u)
        return;
    tsr_params_free(u->params);
    tsr__free(u->ctx, u);
}

const char *tsr_udf_name(const tsr_udf_t *u)
{
    return u ? u->def->name : "";
}

int tsr_udf_error(const tsr_udf_call_t *c, int code, const char *fmt, ...)
{
    if (code >= 0)
        code = TSR_EUDF;
    char msg[TSR__ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    tsr__vseterr(msg, sizeof msg, code, fmt, ap);
    va_end(ap);
    if (c && c->priv && c->priv->report)
        c->priv->report(c->priv->target, code, msg);
    return code;
}

/* ---- instances --------------------------------------------------------- */

static tsr_dtype_t resolve_dtype(tsr_dtype_t want, tsr_dtype_t ds, bool corrections)
{
    if (want == TSR_DTYPE_NATIVE)
        return corrections ? tsr__dtype_promote(ds, TSR_F32) : ds;
    if (want == TSR_F64)
        return tsr__dtype_promote(ds, TSR_F64);
    return tsr__dtype_promote(ds, TSR_F32);
}

int tsr__udf_inst_init(tsr_ctx_t *ctx, tsr__udf_inst_t *inst, const tsr_udf_t *udf,
                       const tsr_udf_meta_t *meta, bool corrections, char *err, size_t errlen)
{
    memset(inst, 0, sizeof *inst);
    inst->udf = udf;
    inst->def = udf->def;
    inst->meta = *meta;
    /* during init: what TSR_DTYPE_NATIVE would deliver (float32 when
     * corrections apply to integer data) */
    inst->meta.input_dtype = resolve_dtype(TSR_DTYPE_NATIVE, meta->dataset_dtype, corrections);
    tsr_udf_init_t in;
    memset(&in, 0, sizeof in);
    in.user_data = udf->user_data;
    in.params = udf->params;
    in.meta = &inst->meta;
    in.ctx = ctx;
    in.input_dtype = TSR_F32;
    in.method = TSR_METHOD_TILE;
    int rc = udf->def->init(&in);
    if (rc < 0) {
        tsr__free(ctx, in.frames_needed);
        if (in.state && udf->def->destroy)
            udf->def->destroy(udf->user_data, in.state);
        return tsr__seterr(err, errlen, rc, "%s", in.errmsg[0] ? in.errmsg : tsr_strerror(rc));
    }
    inst->state = in.state;
    inst->initialized = true;
    inst->frames_needed = in.frames_needed;
    inst->n_frames_needed = in.n_frames_needed;
    const char *name = udf->def->name;
    if (in.n_buffers < 0 || in.n_buffers > TSR_UDF_MAX_BUFFERS)
        return tsr__seterr(err, errlen, TSR_EINVAL, "UDF %s declared %d buffers (max %d)", name,
                           in.n_buffers, TSR_UDF_MAX_BUFFERS);
    bool needs_merge = false;
    for (int i = 0; i < in.n_buffers; i++) {
        const tsr_buffer_decl_t *d = &in.buffers[i];
        if (!d->name[0] || !tsr__dtype_valid(d->dtype) || d->extra_ndim < 0 ||
            d->extra_ndim > TSR_MAX_DIMS || d->kind < TSR_KIND_NAV || d->kind > TSR_KIND_SINGLE)
            return tsr__seterr(err, errlen, TSR_EINVAL, "UDF %s: buffer %d is malformed", name, i);
        for (int j = 0; j < d->extra_ndim; j++)
            if (d->extra_shape[j] < 1)
                return tsr__seterr(err, errlen, TSR_EINVAL, "UDF %s: buffer %s has a dimension < 1",
                                   name, d->name);
        if (d->kind != TSR_KIND_NAV && !(d->flags & TSR_BUF_RESULT_ONLY))
            needs_merge = true;
    }
    if (needs_merge && !udf->def->merge)
        return tsr__seterr(err, errlen, TSR_EINVAL,
                           "UDF %s has sig or single buffers and must define merge", name);
    tsr_method_t m = in.method;
    if ((m == TSR_METHOD_TILE && !udf->def->process_tile) ||
        (m == TSR_METHOD_FRAME && !udf->def->process_frame) ||
        (m == TSR_METHOD_PARTITION && !udf->def->process_partition) || m < 0 || m > 2)
        return tsr__seterr(err, errlen, TSR_EINVAL,
                           "UDF %s: no process callback for the method it chose", name);
    if (in.input_dtype != TSR_DTYPE_NATIVE && in.input_dtype != TSR_F32 &&
        in.input_dtype != TSR_F64)
        return tsr__seterr(err, errlen, TSR_EINVAL,
                           "UDF %s: input_dtype must be F32, F64 or NATIVE", name);
    memcpy(inst->decls, in.buffers, sizeof in.buffers);
    inst->n_decls = in.n_buffers;
    inst->want_dtype = in.input_dtype;
    inst->input_dtype = resolve_dtype(in.input_dtype, meta->dataset_dtype, corrections);
    inst->meta.input_dtype = inst->input_dtype;
    inst->method = m;
    inst->tile_depth = in.tile_depth > 0 ? in.tile_depth : 0;
    inst->accepts_sparse = in.accepts_sparse && m == TSR_METHOD_TILE;
    int64_t rows = meta->sig_shape.dims[0];
    if (in.sig_rows_start != 0 || in.sig_rows_end != 0) {
        if (in.sig_rows_start < 0 || in.sig_rows_end <= in.sig_rows_start || in.sig_rows_end > rows)
            return tsr__seterr(
                err, errlen, TSR_EINVAL, "UDF %s: sig rows [%lld, %lld) are not inside [0, %lld)",
                name, (long long)in.sig_rows_start, (long long)in.sig_rows_end, (long long)rows);
        if (m == TSR_METHOD_TILE) {
            inst->rows_start = in.sig_rows_start;
            inst->rows_end = in.sig_rows_end;
        }
    }
    return 0;
}

void tsr__udf_inst_destroy(tsr_ctx_t *ctx, tsr__udf_inst_t *inst)
{
    if (!inst || !inst->initialized)
        return;
    if (inst->state && inst->def->destroy)
        inst->def->destroy(inst->udf->user_data, inst->state);
    tsr__free(ctx, inst->frames_needed);
    inst->initialized = false;
}

/* ---- buffer sets ------------------------------------------------------- */

static void decl_geometry(const tsr__udf_inst_t *inst, int i, int64_t nav_rows, int64_t *rows,
                          int64_t *row_elems)
{
    const tsr_buffer_decl_t *d = &inst->decls[i];
    int64_t e = 1;
    for (int j = 0; j < d->extra_ndim; j++)
        e *= d->extra_shape[j];
    *row_elems = e;
    switch (d->kind) {
    case TSR_KIND_NAV: *rows = nav_rows; break;
    case TSR_KIND_SIG: *rows = tsr_shape_size(&inst->meta.sig_shape); break;
    default: *rows = 1; break;
    }
}

int tsr__bufset_alloc(tsr_ctx_t *ctx, const tsr__udf_inst_t *inst, int64_t nav_rows,
                      bool with_result_only, tsr__bufset_t *bs)
{
    memset(bs, 0, sizeof *bs);
    for (int i = 0; i < inst->n_decls; i++) {
        decl_geometry(inst, i, nav_rows, &bs->rows[i], &bs->row_elems[i]);
        if ((inst->decls[i].flags & TSR_BUF_RESULT_ONLY) && !with_result_only)
            continue;
        size_t n;
        if (!tsr__mul_size((size_t)bs->rows[i], (size_t)bs->row_elems[i], &n) ||
            !tsr__mul_size(n, tsr_dtype_size(inst->decls[i].dtype), &n)) {
            tsr__bufset_free(ctx, bs);
            return TSR_EOVERFLOW;
        }
        bs->bytes[i] = n;
        bs->data[i] = tsr__malloc_aligned(ctx, n ? n : 1);
        if (!bs->data[i]) {
            tsr__bufset_free(ctx, bs);
            return TSR_ENOMEM;
        }
        memset(bs->data[i], 0, n);
    }
    return 0;
}

void tsr__bufset_zero(const tsr__udf_inst_t *inst, tsr__bufset_t *bs)
{
    for (int i = 0; i < inst->n_decls; i++)
        if (bs->data[i])
            memset(bs->data[i], 0, bs->bytes[i]);
}

void tsr__bufset_free(tsr_ctx_t *ctx, tsr__bufset_t *bs)
{
    for (int i = 0; i < TSR_UDF_MAX_BUFFERS; i++) {
        tsr__free_aligned(ctx, bs->data[i]);
        bs->data[i] = NULL;
    }
}

int tsr__bufset_copy(tsr_ctx_t *ctx, const tsr__udf_inst_t *inst, const tsr__bufset_t *src,
                     tsr__bufset_t *dst)
{
    *dst = *src;
    for (int i = 0; i < TSR_UDF_MAX_BUFFERS; i++)
        dst->data[i] = NULL;
    for (int i = 0; i < inst->n_decls; i++) {
        if (!src->data[i])
            continue;
        dst->data[i] = tsr__malloc_aligned(ctx, src->bytes[i] ? src->bytes[i] : 1);
        if (!dst->data[i]) {
            tsr__bufset_free(ctx, dst);
            return TSR_ENOMEM;
        }
        memcpy(dst->data[i], src->data[i], src->bytes[i]);
    }
    return 0;
}

void tsr__bufset_views(const tsr__udf_inst_t *inst, const tsr__bufset_t *bs, int64_t row0,
                       int64_t nrows, int64_t sig0, int64_t siglen, tsr_view_t *v)
{
    for (int i = 0; i < inst->n_decls; i++) {
        const tsr_buffer_decl_t *d = &inst->decls[i];
        size_t es = tsr_dtype_size(d->dtype);
        int64_t re = bs->row_elems[i];
        unsigned char *base = bs->data[i];
        v[i].dtype = d->dtype;
        v[i].row_elems = re;
        switch (d->kind) {
        case TSR_KIND_NAV:
            v[i].data = base ? base + (size_t)(row0 * re) * es : NULL;
            v[i].rows = nrows;
            break;
        case TSR_KIND_SIG:
            v[i].data = base ? base + (size_t)(sig0 * re) * es : NULL;
            v[i].rows = siglen;
            break;
        default:
            v[i].data = base;
            v[i].rows = 1;
            break;
        }
    }
}
