/*
 * masks.c — the `masks` UDF: virtual detectors (LiberTEM's ApplyMasksUDF).
 * Every frame is multiplied with each mask of a stack and summed, giving a
 * NAV buffer `intensity` with extra_shape (n_masks,).
 *
 * Masks come from the repeatable parameter `mask`: a generator spec
 * (maskgen.h: disk, ring, point, rect) or the path of an .npy file holding
 * one sig-shaped mask or a stack (n, *sig_shape).  They are float32 and are
 * stored pixel-major (npix × n_masks) in init's state, so a tile's sig slice
 * [sig_start, sig_start + sig_len) is one contiguous block of mask rows.
 *
 * Numerics: tiles arrive as float32 (float64 for 32/64-bit integer and
 * float64 data; numpy's result_type with float32), and the result has that
 * type.  Each frame·mask dot product of a tile is accumulated in float64
 * inside the kernel and then added (+=) to the result, because a frame may be
 * split over several tiles along sig.  One mask: a dot product with eight
 * float64 lanes; several: per pixel, the pixel value times the mask row, in
 * blocks of up to 64 masks held on the stack (vectorised over masks).
 *
 * Complex data are rejected with TSR_EUNSUPPORTED for now.
 */
#include "io/formats/npy/npy.h"
#include "udf/builtin/builtin.h"
#include "udf/builtin/maskgen.h"

enum { BUF_INTENSITY = 0 };

/* Masks handled per pass over a tile's frame row; the accumulators live on
 * the stack. */
#define MASK_BLOCK 64

typedef struct masks_state {
    tsr_ctx_t *ctx;
    int64_t n;    /* masks */
    int64_t npix; /* pixels per frame */
    float *m;     /* npix × n, pixel-major */
} masks_state_t;

static const tsr_param_def_t masks_params[] = {
    {"mask", "string", NULL,
     "A mask: a generator " TSR__MASK_SPEC_DOC
     ", or the path of an .npy file with one sig-shaped mask or a stack (n, *sig_shape). "
     "Repeat for several masks; results follow the order given.",
     true},
};

/* ---- kernels ----------------------------------------------------------- */

/* acc[0..nb) = Σ_p x[p] · M[p][m0 + m] for one frame row of len pixels;
 * M has n columns. */
#define MASKS_KERNEL(NAME, T)                                                              \
    static void NAME(const T *restrict x, int64_t len, const float *restrict M, int64_t n, \
                     int64_t m0, int64_t nb, double *restrict acc)                         \
    {                                                                                      \
        if (n == 1) {                                                                      \
            double l[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                        \
            int64_t p = 0;                                                                 \
            for (; p + 8 <= len; p += 8)                                                   \
                for (int k = 0; k < 8; k++)                                                \
                    l[k] += (double)x[p + k] * (double)M[p + k];                           \
            for (int k = 0; p < len; p++, k++)                                             \
                l[k] += (double)x[p] * (double)M[p];                                       \
            acc[0] = ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]));    \
            return;                                                                        \
        }                                                                                  \
        for (int64_t m = 0; m < nb; m++)                                                   \
            acc[m] = 0;                                                                    \
        for (int64_t p = 0; p < len; p++) {                                                \
            const double xv = (double)x[p];                                                \
            const float *restrict row = M + p * n + m0;                                    \
            for (int64_t m = 0; m < nb; m++)                                               \
                acc[m] += xv * (double)row[m];                                             \
        }                                                                                  \
    }
MASKS_KERNEL(masks_dot_f32, float)
MASKS_KERNEL(masks_dot_f64, double)
#undef MASKS_KERNEL

/* ---- init / destroy ---------------------------------------------------- */

static void masks_destroy(void *user_data, void *state)
{
    masks_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->m);
    tsr_free(st->ctx, st);
}

/* One `mask` value, resolved: k planes of npix floats, mask-major. */
typedef struct mask_chunk {
    float *data;
    int64_t k;
    bool from_npy; /* data from tsr__npy_load (tsr__free), else tsr_alloc */
} mask_chunk_t;

/* Resolve one spec into a chunk; on error the message is in init->errmsg. */
static int load_chunk(tsr_udf_init_t *init, const char *spec, int64_t npix, mask_chunk_t *ch)
{
    const tsr_shape_t *sig = &init->meta->sig_shape;
    char sh[128], sh2[128];
    if (tsr__mask_is_generator(spec)) {
        size_t bytes;
        if (!tsr__mul_size((size_t)npix, sizeof(float), &bytes))
            return tsr__builtin_init_fail(init, TSR_EOVERFLOW, "masks: signal too large");
        ch->data = tsr_alloc(init->ctx, bytes);
        if (!ch->data)
            return tsr__builtin_init_fail(init, TSR_ENOMEM, "masks: out of memory");
        ch->k = 1;
        char err[200];
        int rc = tsr__mask_generate(spec, sig, ch->data, err, sizeof err);
        if (rc < 0)
            return tsr__builtin_init_fail(init, rc, "masks: %s", err);
        return 0;
    }
    if (tsr__mask_is_unknown_generator(spec)) {
        size_t n = strcspn(spec, ":");
        return tsr__builtin_init_fail(
            init, TSR_EINVAL,
            "masks: mask '%s': unknown generator '%.*s' (expected " TSR__MASK_SPEC_DOC
            ", or an .npy file)",
            spec, (int)n, spec);
    }
    tsr_shape_t shape;
    void *data = NULL;
    int rc = tsr__npy_load(init->ctx, spec, TSR_F32, &shape, &data);
    if (rc < 0)
        return tsr__builtin_init_fail(init, rc, "masks: %s", tsr_ctx_errmsg(init->ctx));
    ch->data = data;
    ch->from_npy = true;
    if (tsr__shape_eq(&shape, sig)) {
        ch->k = 1;
        return 0;
    }
    if (shape.ndim == sig->ndim + 1) {
        tsr_shape_t rest = {.ndim = sig->ndim};
        for (int i = 0; i < sig->ndim; i++)
            rest.dims[i] = shape.dims[i + 1];
        if (tsr__shape_eq(&rest, sig)) {
            ch->k = shape.dims[0];
            return 0;
        }
    }
    /* "(n, 16, 16)": the signal's dims after a leading n. */
    char stack[160];
    int off = snprintf(stack, sizeof stack, "(n");
    for (int i = 0; i < sig->ndim && off > 0 && (size_t)off < sizeof stack; i++)
        off += snprintf(stack + off, sizeof stack - (size_t)off, ", %lld", (long long)sig->dims[i]);
    if (off > 0 && (size_t)off < sizeof stack)
        snprintf(stack + off, sizeof stack - (size_t)off, ")");
    return tsr__builtin_init_fail(init, TSR_EINVAL,
                                  "masks: mask file '%s' has shape %s, expected the signal "
                                  "shape %s or a stack %s",
                                  spec, tsr__shape_str(&shape, sh2, sizeof sh2),
                                  tsr__shape_str(sig, sh, sizeof sh), stack);
}

static void free_chunks(tsr_ctx_t *ctx, mask_chunk_t *chunks, size_t n)
{
    if (!chunks)
        return;
    for (size_t i = 0; i < n; i++) {
        if (chunks[i].from_npy)
            tsr__free(ctx, chunks[i].data);
        else
            tsr_free(ctx, chunks[i].data);
    }
    tsr_free(ctx, chunks);
}

static int masks_init(tsr_udf_init_t *init)
{
    const tsr_udf_meta_t *meta = init->meta;
    const tsr_params_t *p = init->params;
    tsr_ctx_t *ctx = init->ctx;
    masks_state_t *st = NULL;
    mask_chunk_t *chunks = NULL;
    size_t n_specs = 0;
    int rc = 0;

    if (!tsr__dtype_valid(meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "masks: invalid dataset dtype %d",
                                      (int)meta->dataset_dtype);
    if (tsr__dtype_is_complex(meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "masks: complex data (%s) are not supported yet",
                                      tsr_dtype_name(meta->dataset_dtype));
    for (size_t i = 0; i < tsr_params_count(p); i++) {
        const char *k, *v;
        if (tsr_params_at(p, i, &k, &v) == 0 && strcmp(k, "mask") == 0)
            n_specs++;
    }
    if (n_specs == 0)
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "masks: parameter 'mask' is required (" TSR__MASK_SPEC_DOC
                                      ", or an .npy file; repeat it for several masks)");

    const int64_t npix = tsr_shape_size(&meta->sig_shape);
    chunks = tsr_alloc(ctx, n_specs * sizeof *chunks);
    if (!chunks)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "masks: out of memory");
    memset(chunks, 0, n_specs * sizeof *chunks);

    int64_t n = 0;
    size_t c = 0;
    for (size_t i = 0; i < tsr_params_count(p); i++) {
        const char *k, *v;
        if (tsr_params_at(p, i, &k, &v) != 0 || strcmp(k, "mask") != 0)
            continue;
        if ((rc = load_chunk(init, v, npix, &chunks[c++])) < 0)
            goto fail;
        n += chunks[c - 1].k;
    }
    if (n == 0) {
        rc = tsr__builtin_init_fail(init, TSR_EINVAL, "masks: the mask stack is empty");
        goto fail;
    }

    st = tsr_alloc(ctx, sizeof *st);
    if (!st) {
        rc = tsr__builtin_init_fail(init, TSR_ENOMEM, "masks: out of memory");
        goto fail;
    }
    st->ctx = ctx;
    st->n = n;
    st->npix = npix;
    size_t bytes;
    if (!tsr__mul_size((size_t)npix, (size_t)n, &bytes) ||
        !tsr__mul_size(bytes, sizeof(float), &bytes)) {
        rc = tsr__builtin_init_fail(init, TSR_EOVERFLOW, "masks: %lld masks are too many",
                                    (long long)n);
        goto fail;
    }
    st->m = tsr_alloc(ctx, bytes);
    if (!st->m) {
        rc = tsr__builtin_init_fail(init, TSR_ENOMEM, "masks: out of memory for %lld masks",
                                    (long long)n);
        goto fail;
    }
    /* Transpose mask-major planes into pixel-major rows. */
    int64_t m0 = 0;
    for (size_t i = 0; i < n_specs; i++) {
        for (int64_t j = 0; j < chunks[i].k; j++) {
            const float *plane = chunks[i].data + j * npix;
            for (int64_t px = 0; px < npix; px++)
                st->m[px * n + m0 + j] = plane[px];
        }
        m0 += chunks[i].k;
    }
    free_chunks(ctx, chunks, n_specs);
    chunks = NULL;

    tsr_dtype_t out =
        tsr__dtype_promote(meta->dataset_dtype, TSR_F32) == TSR_F32 ? TSR_F32 : TSR_F64;
    tsr__builtin_declare(init, "intensity", TSR_KIND_NAV, out, 0, 1, &n);
    init->input_dtype = TSR_F32;
    init->method = TSR_METHOD_TILE;
    init->state = st;
    return 0;

fail:
    free_chunks(ctx, chunks, n_specs);
    masks_destroy(NULL, st);
    return rc;
}

/* ---- processing -------------------------------------------------------- */

static int masks_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const masks_state_t *st = c->state;
    const tsr_view_t *ov = &c->bufs[BUF_INTENSITY];
    if (t->dtype != TSR_F32 && t->dtype != TSR_F64)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "masks: expected float tiles, got %s",
                             tsr_dtype_name(t->dtype));
    const int64_t n = st->n, len = t->sig_len;
    const float *M = st->m + t->sig_start * n;
    double acc[MASK_BLOCK];
    for (int64_t f = 0; f < t->depth; f++) {
        for (int64_t m0 = 0; m0 < n; m0 += MASK_BLOCK) {
            const int64_t nb = n - m0 < MASK_BLOCK ? n - m0 : MASK_BLOCK;
            if (t->dtype == TSR_F32)
                masks_dot_f32((const float *)t->data + f * len, len, M, n, m0, nb, acc);
            else
                masks_dot_f64((const double *)t->data + f * len, len, M, n, m0, nb, acc);
            if (ov->dtype == TSR_F32) {
                float *o = (float *)ov->data + f * n + m0;
                for (int64_t m = 0; m < nb; m++)
                    o[m] += (float)acc[m];
            } else {
                double *o = (double *)ov->data + f * n + m0;
                for (int64_t m = 0; m < nb; m++)
                    o[m] += acc[m];
            }
        }
    }
    return 0;
}

const tsr_udf_def_t tsr__udf_masks = {
    .abi_version = TSR_UDF_ABI_VERSION,
    .name = "masks",
    .description = "Virtual detectors: each frame multiplied with each mask and summed. Result "
                   "`intensity`: nav shape + (n_masks,), float32 (float64 for float64 and 32/64-"
                   "bit integer data).",
    .params = masks_params,
    .n_params = sizeof masks_params / sizeof masks_params[0],
    .init = masks_init,
    .destroy = masks_destroy,
    .process_tile = masks_process_tile,
    .merge = NULL,
};
