/*
 * memory.c — datasets over frames held in memory (for tests and embedding),
 * made by tsr_dataset_from_memory().  The data are borrowed or copied; a
 * memory dataset has no descriptor another process could open.
 */
#include "io/dataset.h"

typedef struct {
    const unsigned char *data;
    void *owned;
} mem_state_t;

static int read_mem(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                    int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen)
{
    (void)io;
    (void)err;
    (void)errlen;
    const mem_state_t *st = ds->state;
    size_t es = tsr_dtype_size(ds->dtype), des = tsr_dtype_size(dt);
    int64_t fp = tsr_shape_size(&ds->sig);
    unsigned char *o = out;
    if (siglen == fp) { /* whole frames are contiguous */
        tsr__convert(o, dt, st->data + (size_t)(img0 * fp) * es, ds->dtype, false,
                     (size_t)(n * fp));
        return 0;
    }
    for (int64_t i = 0; i < n; i++) {
        tsr__convert(o, dt, st->data + (size_t)((img0 + i) * fp + sig0) * es, ds->dtype, false,
                     (size_t)siglen);
        o += (size_t)siglen * des;
    }
    return 0;
}

static void close_mem(tsr_dataset_t *ds)
{
    mem_state_t *st = ds->state;
    if (st) {
        tsr__free_aligned(ds->ctx, st->owned);
        tsr__free(ds->ctx, st);
    }
}

static const tsr_param_def_t params[] = {
    {"sync_offset", "int", "0", "frames to skip (positive) or blank frames to insert (negative)",
     false},
};

const tsr__reader_def_t tsr__format_memory = {
    .abi_version = TSR_READER_ABI_VERSION,
    .name = "memory",
    .description = "frames held in memory by the calling program (tsr_dataset_from_memory)",
    .caps = TSR_CAP_RANDOM_ACCESS,
    .params = params,
    .n_params = 1,
    .read = read_mem,
    .close = close_mem,
};

int tsr_dataset_from_memory(tsr_ctx_t *ctx, const void *data, tsr_dtype_t dtype,
                            const tsr_shape_t *nav, const tsr_shape_t *sig, bool copy,
                            tsr_dataset_t **out)
{
    if (!ctx || !out)
        return TSR_EINVAL;
    if (!data || !nav || !sig || !tsr__dtype_valid(dtype))
        return tsr__ctx_seterr(ctx, TSR_EINVAL,
                               "memory dataset: data, shapes and a valid dtype "
                               "are required");
    for (int i = 0; i < nav->ndim; i++)
        if (nav->dims[i] < 1)
            return tsr__ctx_seterr(ctx, TSR_EINVAL, "memory dataset: nav dimensions must be >= 1");
    for (int i = 0; i < sig->ndim; i++)
        if (sig->dims[i] < 1)
            return tsr__ctx_seterr(ctx, TSR_EINVAL, "memory dataset: sig dimensions must be >= 1");
    if (nav->ndim < 1 || nav->ndim > 4 || sig->ndim < 1 || sig->ndim > 3)
        return tsr__ctx_seterr(ctx, TSR_EUNSUPPORTED,
                               "memory dataset: nav must have 1 to 4 dimensions and sig 1 to 3");
    int64_t n = tsr_shape_size(nav), bytes;
    if (n < 0 || tsr_shape_size(sig) < 0 || !tsr__mul_i64(n, tsr_shape_size(sig), &bytes) ||
        !tsr__mul_i64(bytes, (int64_t)tsr_dtype_size(dtype), &bytes))
        return tsr__ctx_seterr(ctx, TSR_EOVERFLOW, "memory dataset: size overflows");
    tsr_dataset_t *ds = tsr__calloc(ctx, 1, sizeof *ds);
    mem_state_t *st = tsr__calloc(ctx, 1, sizeof *st);
    int rc = 0;
    if (!ds || !st || tsr__mutex_init(&ds->map_lock)) {
        tsr__free(ctx, ds);
        tsr__free(ctx, st);
        return tsr__ctx_seterr(ctx, TSR_ENOMEM, "out of memory");
    }
    ds->ctx = ctx;
    ds->fmt = &tsr__format_memory;
    ds->state = st;
    ds->nav = *nav;
    ds->sig = *sig;
    ds->dtype = dtype;
    ds->image_count = n;
    st->data = data;
    ds->path = tsr__strdup(ctx, "<memory>");
    TSR_CHECK(ctx, ds->path != NULL, TSR_ENOMEM, "out of memory");
    TSR_TRY(tsr_params_new(ctx, &ds->params));
    if (copy) {
        st->owned = tsr__malloc_aligned(ctx, (size_t)bytes);
        TSR_CHECK(ctx, st->owned != NULL, TSR_ENOMEM, "out of memory copying %lld bytes of frames",
                  (long long)bytes);
        memcpy(st->owned, data, (size_t)bytes);
        st->data = st->owned;
    }
    *out = ds;
    return 0;
fail:
    tsr_dataset_close(ds);
    return rc;
}
