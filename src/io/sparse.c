/*
 * sparse.c — sparse reads: the per-worker CSR buffer (tsr__sparse_t) and
 * tsr__dataset_read_sparse, which does for sparse formats what
 * tsr__dataset_read does for dense ones: frames before and after the
 * stored images (sync_offset) become empty rows, and the rest comes from
 * the format's read_sparse.
 *
 * Invariant: after any call, indptr[0] == 0, indptr[rows] == nnz, and the
 * buffers hold at least rows + 1 offsets and nnz indices and values.
 */
#include "io/dataset.h"

static int grow(tsr_ctx_t *ctx, void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 256;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : 2 * n;
    size_t bytes;
    if (!tsr__mul_size(n, elem, &bytes))
        return TSR_EOVERFLOW;
    void *q = tsr__realloc(ctx, *p, bytes);
    if (!q)
        return TSR_ENOMEM;
    *p = q;
    *cap = n;
    return 0;
}

int tsr__sparse_reserve(tsr_ctx_t *ctx, tsr__sparse_t *sp, int64_t rows, int64_t nnz)
{
    if (rows < 0 || nnz < 0)
        return TSR_EINVAL;
    size_t es = tsr_dtype_size(sp->dtype);
    int rc = grow(ctx, (void **)&sp->indptr, &sp->rows_cap, (size_t)(sp->rows + rows) + 1,
                  sizeof *sp->indptr);
    if (!rc)
        rc = grow(ctx, (void **)&sp->indices, &sp->nnz_cap, (size_t)(sp->nnz + nnz),
                  sizeof *sp->indices);
    if (!rc)
        rc = grow(ctx, &sp->values, &sp->values_cap, (size_t)(sp->nnz + nnz), es ? es : 1);
    return rc;
}

void tsr__sparse_empty_rows(tsr__sparse_t *sp, int64_t k)
{
    for (int64_t i = 0; i < k; i++)
        sp->indptr[++sp->rows] = sp->nnz;
}

void tsr__sparse_free(tsr_ctx_t *ctx, tsr__sparse_t *sp)
{
    if (!sp)
        return;
    tsr__free(ctx, sp->indptr);
    tsr__free(ctx, sp->indices);
    tsr__free(ctx, sp->values);
    memset(sp, 0, sizeof *sp);
}

int tsr__dataset_read_sparse(const tsr_dataset_t *ds, tsr__io_t *io, int64_t frame0, int64_t n,
                             int64_t sig0, int64_t siglen, tsr_dtype_t dt, tsr__sparse_t *sp,
                             char *err, size_t errlen)
{
    if (!ds->fmt->read_sparse)
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, "%s: format %s has no sparse reads",
                           ds->path, ds->fmt->name);
    if (sp->dtype != dt) { /* the values buffer holds another type: start afresh */
        tsr__free(io->ctx, sp->values);
        sp->values = NULL;
        sp->values_cap = 0;
        sp->dtype = dt;
    }
    sp->rows = 0;
    sp->nnz = 0;
    int rc = tsr__sparse_reserve(io->ctx, sp, n, 0);
    if (rc)
        return tsr__seterr(err, errlen, rc, "out of memory for %lld sparse rows", (long long)n);
    sp->indptr[0] = 0;
    int64_t img0 = frame0 + ds->sync_offset;
    if (img0 < 0) { /* frames before the first stored image */
        int64_t k = -img0 < n ? -img0 : n;
        tsr__sparse_empty_rows(sp, k);
        img0 += k;
        n -= k;
    }
    int64_t avail = ds->image_count - img0;
    int64_t k = n < avail ? n : (avail > 0 ? avail : 0);
    if (k > 0) {
        int64_t before = sp->rows;
        if ((rc = ds->fmt->read_sparse(ds, io, img0, k, sig0, siglen, sp, err, errlen)))
            return rc;
        if (sp->rows != before + k)
            return tsr__seterr(err, errlen, TSR_EIO,
                               "%s: format %s gave %lld sparse rows, not %lld", ds->path,
                               ds->fmt->name, (long long)(sp->rows - before), (long long)k);
        n -= k;
    }
    if (n > 0) { /* frames after the last stored image */
        if ((rc = tsr__sparse_reserve(io->ctx, sp, n, 0)))
            return tsr__seterr(err, errlen, rc, "out of memory for %lld sparse rows", (long long)n);
        tsr__sparse_empty_rows(sp, n);
    }
    return 0;
}
