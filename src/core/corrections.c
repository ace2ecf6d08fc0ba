/*
 * corrections.c — dark subtraction, gain multiplication and excluded-pixel
 * patching.
 *
 * An excluded (dead or hot) pixel is replaced by the mean of its
 * non-excluded neighbours in the 3×3 (3^d) neighbourhood; if all of those
 * are excluded the neighbourhood widens to 5×5, 7×7, … until one is found.
 * The neighbour lists are computed once per run, so patching a frame costs
 * only the excluded pixels.
 */
#include "core/corrections.h"

static void unravel(int64_t i, const tsr_shape_t *s, int64_t *c)
{
    for (int d = s->ndim - 1; d >= 0; d--) {
        c[d] = i % s->dims[d];
        i /= s->dims[d];
    }
}

/* Append the non-excluded pixels within Chebyshev radius r of pixel c. */
static int64_t gather(const tsr_shape_t *s, const uint8_t *ex, const int64_t *c, int64_t r,
                      int64_t *out)
{
    int nd = s->ndim;
    int64_t lo[TSR_MAX_DIMS], hi[TSR_MAX_DIMS], k[TSR_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        lo[d] = c[d] - r < 0 ? 0 : c[d] - r;
        hi[d] = c[d] + r >= s->dims[d] ? s->dims[d] - 1 : c[d] + r;
        k[d] = lo[d];
    }
    int64_t n = 0;
    for (;;) {
        int64_t flat = 0;
        for (int d = 0; d < nd; d++)
            flat = flat * s->dims[d] + k[d];
        if (!ex[flat]) {
            if (out)
                out[n] = flat;
            n++;
        }
        int d = nd - 1;
        while (d >= 0 && k[d] == hi[d]) {
            k[d] = lo[d];
            d--;
        }
        if (d < 0)
            break;
        k[d]++;
    }
    return n;
}

int tsr__corr_init(tsr_ctx_t *ctx, tsr__corr_t *corr, const tsr_corrections_t *c,
                   const tsr_shape_t *sig)
{
    memset(corr, 0, sizeof *corr);
    int64_t n = tsr_shape_size(sig);
    corr->sig_size = n;
    if (!c)
        return 0;
    int rc = 0;
    if (c->dark) {
        TSR_CHECK(ctx, (corr->dark = tsr__malloc(ctx, (size_t)n * sizeof(float))), TSR_ENOMEM,
                  "out of memory");
        memcpy(corr->dark, c->dark, (size_t)n * sizeof(float));
    }
    if (c->gain) {
        TSR_CHECK(ctx, (corr->gain = tsr__malloc(ctx, (size_t)n * sizeof(float))), TSR_ENOMEM,
                  "out of memory");
        memcpy(corr->gain, c->gain, (size_t)n * sizeof(float));
    }
    if (c->excluded) {
        int64_t ne = 0;
        for (int64_t i = 0; i < n; i++)
            ne += c->excluded[i] != 0;
        TSR_CHECK(ctx, ne < n, TSR_EINVAL, "corrections: every pixel is excluded");
        if (ne == 0)
            return 0;
        TSR_CHECK(ctx, (corr->excluded = tsr__malloc(ctx, (size_t)n)), TSR_ENOMEM, "out of memory");
        for (int64_t i = 0; i < n; i++)
            corr->excluded[i] = c->excluded[i] != 0;
        corr->n_excluded = ne;
        corr->excl_index = tsr__malloc(ctx, (size_t)ne * sizeof(int64_t));
        corr->nbr_start = tsr__malloc(ctx, (size_t)(ne + 1) * sizeof(int64_t));
        TSR_CHECK(ctx, corr->excl_index && corr->nbr_start, TSR_ENOMEM, "out of memory");
        /* first pass: sizes and radii */
        int64_t total = 0, j = 0, cc[TSR_MAX_DIMS];
        int64_t maxdim = 0;
        for (int d = 0; d < sig->ndim; d++)
            maxdim = sig->dims[d] > maxdim ? sig->dims[d] : maxdim;
        for (int64_t i = 0; i < n; i++) {
            if (!c->excluded[i])
                continue;
            unravel(i, sig, cc);
            int64_t r = 1, k = 0;
            while ((k = gather(sig, c->excluded, cc, r, NULL)) == 0 && r < maxdim)
                r++;
            corr->excl_index[j] = i;
            corr->nbr_start[j] = total;
            total += k;
            j++;
        }
        corr->nbr_start[ne] = total;
        corr->nbr = tsr__malloc(ctx, (size_t)(total ? total : 1) * sizeof(int64_t));
        TSR_CHECK(ctx, corr->nbr, TSR_ENOMEM, "out of memory");
        for (j = 0; j < ne; j++) {
            unravel(corr->excl_index[j], sig, cc);
            int64_t r = 1;
            while (gather(sig, c->excluded, cc, r, NULL) == 0 && r < maxdim)
                r++;
            gather(sig, c->excluded, cc, r, corr->nbr + corr->nbr_start[j]);
        }
    }
    return 0;
fail:
    tsr__corr_destroy(ctx, corr);
    return rc;
}

void tsr__corr_destroy(tsr_ctx_t *ctx, tsr__corr_t *corr)
{
    tsr__free(ctx, corr->dark);
    tsr__free(ctx, corr->gain);
    tsr__free(ctx, corr->excluded);
    tsr__free(ctx, corr->excl_index);
    tsr__free(ctx, corr->nbr_start);
    tsr__free(ctx, corr->nbr);
    memset(corr, 0, sizeof *corr);
}

bool tsr__corr_active(const tsr__corr_t *corr)
{
    return corr->dark || corr->gain || corr->n_excluded;
}

#define APPLY(T)                                                                   \
    do {                                                                           \
        T *t = tile;                                                               \
        for (int64_t f = 0; f < depth; f++) {                                      \
            T *row = t + f * siglen;                                               \
            if (corr->dark) {                                                      \
                const float *dk = corr->dark + sig0;                               \
                for (int64_t p = 0; p < siglen; p++)                               \
                    row[p] -= (T)dk[p];                                            \
            }                                                                      \
            if (corr->gain) {                                                      \
                const float *g = corr->gain + sig0;                                \
                for (int64_t p = 0; p < siglen; p++)                               \
                    row[p] *= (T)g[p];                                             \
            }                                                                      \
            for (int64_t e = 0; e < corr->n_excluded; e++) {                       \
                double s = 0;                                                      \
                int64_t a = corr->nbr_start[e], b = corr->nbr_start[e + 1];        \
                for (int64_t k = a; k < b; k++)                                    \
                    s += (double)row[corr->nbr[k]];                                \
                row[corr->excl_index[e]] = (T)(b > a ? s / (double)(b - a) : 0.0); \
            }                                                                      \
        }                                                                          \
    } while (0)

void tsr__corr_apply(const tsr__corr_t *corr, void *tile, tsr_dtype_t dt, int64_t depth,
                     int64_t sig0, int64_t siglen)
{
    if (dt == TSR_F32)
        APPLY(float);
    else if (dt == TSR_F64)
        APPLY(double);
}
