/*
 * results.c — result sets: named arrays with dtype, full shape and validity.
 *
 * A result set is built from copies of a run's merged buffers (final or
 * snapshot).  NAV buffers are held ROI-compressed during the run; here they
 * are expanded to the full nav shape with NaN (floats) or 0 at positions that
 * are not valid, then finalize derives the RESULT_ONLY buffers.  Private
 * buffers are dropped from the listing.  The set owns all its memory.
 */
#include "udf/udf.h"

struct tsr_results {
    tsr_ctx_t *ctx;
    size_t n;
    tsr_array_t *arrays;
    void **owned; /* per array, freed with tsr__free_aligned */
    /* names per array, owned, so results may outlive the run and its UDFs */
    char (*names)[sizeof(((tsr_buffer_decl_t *)0)->name)];
    char (*udf_names)[64];
    uint8_t *valid;
    uint8_t *damage;
    int64_t n_done;
    int64_t nav_size;
};

static void record_msg(void *t, int code, const char *msg)
{
    (void)code;
    char *err = t;
    snprintf(err, TSR__ERRMSG_MAX, "%s", msg);
}

static void fill_shape(const tsr__udf_inst_t *inst, int i, const tsr_shape_t *nav,
                       const tsr_shape_t *sig, tsr_shape_t *out)
{
    const tsr_buffer_decl_t *d = &inst->decls[i];
    tsr_shape_t s = {0};
    if (d->kind == TSR_KIND_NAV)
        s = *nav;
    else if (d->kind == TSR_KIND_SIG)
        s = *sig;
    for (int j = 0; j < d->extra_ndim && s.ndim < TSR_MAX_DIMS; j++)
        s.dims[s.ndim++] = d->extra_shape[j];
    *out = s;
}

void tsr_results_free(tsr_results_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        tsr__free_aligned(r->ctx, r->owned[i]);
    tsr__free(r->ctx, r->owned);
    tsr__free(r->ctx, r->names);
    tsr__free(r->ctx, r->udf_names);
    tsr__free(r->ctx, r->arrays);
    tsr__free(r->ctx, r->valid);
    tsr__free(r->ctx, r->damage);
    tsr__free(r->ctx, r);
}

int tsr__results_build(tsr_ctx_t *ctx, tsr__udf_inst_t *insts, int n, tsr__bufset_t *sets,
                       const tsr_shape_t *nav, const tsr_shape_t *sig, const int64_t *rows_nav,
                       int64_t n_rows, const uint8_t *valid, const uint8_t *damage,
                       tsr_results_t **out, char *err, size_t errlen)
{
    int64_t nav_size = tsr_shape_size(nav);
    int rc = 0;
    tsr_results_t *r = tsr__calloc(ctx, 1, sizeof *r);
    if (!r) {
        rc = TSR_ENOMEM;
        goto oom;
    }
    r->ctx = ctx;
    r->nav_size = nav_size;
    size_t total = 0;
    for (int u = 0; u < n; u++)
        total += (size_t)insts[u].n_decls;
    r->arrays = tsr__calloc(ctx, total ? total : 1, sizeof *r->arrays);
    r->owned = tsr__calloc(ctx, total ? total : 1, sizeof *r->owned);
    r->names = tsr__calloc(ctx, total ? total : 1, sizeof *r->names);
    r->udf_names = tsr__calloc(ctx, total ? total : 1, sizeof *r->udf_names);
    r->valid = tsr__malloc(ctx, (size_t)nav_size);
    r->damage = tsr__malloc(ctx, (size_t)nav_size);
    if (!r->arrays || !r->owned || !r->names || !r->udf_names || !r->valid || !r->damage) {
        rc = TSR_ENOMEM;
        goto oom;
    }
    memcpy(r->valid, valid, (size_t)nav_size);
    memcpy(r->damage, damage, (size_t)nav_size);
    for (int64_t i = 0; i < nav_size; i++)
        r->n_done += damage[i] != 0;

    for (int u = 0; u < n; u++) {
        tsr__udf_inst_t *inst = &insts[u];
        tsr__bufset_t full;
        memset(&full, 0, sizeof full);
        /* expand NAV buffers, allocate RESULT_ONLY ones */
        for (int i = 0; i < inst->n_decls; i++) {
            const tsr_buffer_decl_t *d = &inst->decls[i];
            bool expand = d->kind == TSR_KIND_NAV && (rows_nav || n_rows != nav_size);
            bool ronly = (d->flags & TSR_BUF_RESULT_ONLY) != 0;
            full.row_elems[i] = sets[u].row_elems[i];
            full.rows[i] = d->kind == TSR_KIND_NAV ? nav_size : sets[u].rows[i];
            if (!expand && !ronly) {
                full.data[i] = sets[u].data[i];
                full.bytes[i] = sets[u].bytes[i];
                sets[u].data[i] = NULL;
            } else {
                size_t es = tsr_dtype_size(d->dtype);
                size_t re = (size_t)full.row_elems[i];
                size_t bytes = (size_t)full.rows[i] * re * es;
                full.bytes[i] = bytes;
                full.data[i] = tsr__malloc_aligned(ctx, bytes ? bytes : 1);
                if (!full.data[i]) {
                    tsr__bufset_free(ctx, &full);
                    rc = TSR_ENOMEM;
                    goto oom;
                }
                memset(full.data[i], 0, bytes);
                if (expand && !ronly) {
                    const unsigned char *src = sets[u].data[i];
                    unsigned char *dst = full.data[i];
                    for (int64_t k = 0; k < n_rows; k++) {
                        int64_t pos = rows_nav ? rows_nav[k] : k;
                        memcpy(dst + (size_t)pos * re * es, src + (size_t)k * re * es, re * es);
                    }
                }
            }
            if (d->kind == TSR_KIND_NAV && !ronly) {
                size_t es = tsr_dtype_size(d->dtype), re = (size_t)full.row_elems[i];
                unsigned char *dst = full.data[i];
                for (int64_t k = 0; k < nav_size; k++)
                    if (!valid[k])
                        tsr__fill_invalid(dst + (size_t)k * re * es, d->dtype, re);
            }
        }
        tsr__bufset_free(ctx, &sets[u]);
        if (inst->def->finalize) {
            tsr_view_t views[TSR_UDF_MAX_BUFFERS];
            tsr__bufset_views(inst, &full, 0, nav_size, 0, tsr_shape_size(sig), views);
            tsr_udf_meta_t meta = inst->meta;
            meta.valid = valid;
            char msg[TSR__ERRMSG_MAX] = "";
            tsr__call_priv_t priv = {record_msg, msg};
            tsr_udf_call_t call = {inst->udf->user_data, inst->state, NULL, &meta, views,
                                   inst->n_decls,        &priv};
            rc = inst->def->finalize(&call);
            if (rc < 0) {
                tsr__bufset_free(ctx, &full);
                tsr__seterr(err, errlen, rc, "UDF %s: finalize failed: %s", inst->def->name,
                            msg[0] ? msg : tsr_strerror(rc));
                for (int v = u + 1; v < n; v++)
                    tsr__bufset_free(ctx, &sets[v]);
                tsr_results_free(r);
                return rc;
            }
        }
        /* NAV result-only buffers: mark invalid positions too */
        for (int i = 0; i < inst->n_decls; i++) {
            const tsr_buffer_decl_t *d = &inst->decls[i];
            if (d->kind == TSR_KIND_NAV && (d->flags & TSR_BUF_RESULT_ONLY)) {
                size_t es = tsr_dtype_size(d->dtype), re = (size_t)full.row_elems[i];
                unsigned char *dst = full.data[i];
                for (int64_t k = 0; k < nav_size; k++)
                    if (!valid[k])
                        tsr__fill_invalid(dst + (size_t)k * re * es, d->dtype, re);
            }
        }
        for (int i = 0; i < inst->n_decls; i++) {
            const tsr_buffer_decl_t *d = &inst->decls[i];
            if (d->flags & TSR_BUF_PRIVATE) {
                tsr__free_aligned(ctx, full.data[i]);
                continue;
            }
            tsr_array_t *a = &r->arrays[r->n];
            snprintf(r->udf_names[r->n], sizeof r->udf_names[r->n], "%s", inst->def->name);
            snprintf(r->names[r->n], sizeof r->names[r->n], "%s", d->name);
            a->udf = r->udf_names[r->n];
            a->udf_index = u;
            a->name = r->names[r->n];
            a->kind = d->kind;
            a->dtype = d->dtype;
            fill_shape(inst, i, nav, sig, &a->shape);
            a->nav_ndim = d->kind == TSR_KIND_NAV ? nav->ndim : 0;
            a->data = full.data[i];
            a->valid = d->kind == TSR_KIND_NAV ? r->valid : NULL;
            r->owned[r->n] = full.data[i];
            r->n++;
        }
    }
    *out = r;
    return 0;
oom:
    for (int u = 0; u < n; u++)
        tsr__bufset_free(ctx, &sets[u]);
    tsr_results_free(r);
    return tsr__seterr(err, errlen, rc, "out of memory building results");
}

size_t tsr_results_count(const tsr_results_t *r)
{
    return r ? r->n : 0;
}

int tsr_results_get(const tsr_results_t *r, size_t i, tsr_array_t *out)
{
    if (!r || !out || i >= r->n)
        return TSR_ERANGE;
    *out = r->arrays[i];
    return 0;
}

int tsr_results_find(const tsr_results_t *r, int udf_index, const char *name, tsr_array_t *out)
{
    for (size_t i = 0; r && name && i < r->n; i++) {
        if ((udf_index < 0 || r->arrays[i].udf_index == udf_index) &&
            strcmp(r->arrays[i].name, name) == 0) {
            if (out)
                *out = r->arrays[i];
            return 0;
        }
    }
    return TSR_ENOTFOUND;
}

const uint8_t *tsr_results_damage(const tsr_results_t *r, int64_t *n_done)
{
    if (n_done)
        *n_done = r ? r->n_done : 0;
    return r ? r->damage : NULL;
}
