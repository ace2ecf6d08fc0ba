/*
 * masks.c — the `masks` UDF: virtual detectors (LiberTEM's ApplyMasksUDF).
 * Every frame is multiplied with each mask of a stack and summed, giving a
 * NAV buffer `intensity` with extra_shape (n_masks,).
 *
 * Masks come from the repeatable parameter `mask`: a generator spec
 * (maskgen.h: disk, ring, point, rect) or the path of an .npy file holding
 * one sig-shaped mask or a stack (n, *sig_shape).  Weights are float32.
 *
 * Tiles arrive in the dataset's own type (TSR_DTYPE_NATIVE; float32 when
 * corrections apply to integer data), so no float copy of the data is ever
 * made: the kernels (masks_kernels.h) convert in registers.  At init every
 * mask goes to one of two paths:
 *  - dense: its weights are a column of a pixel-major matrix (npix × ld),
 *    so a tile's sig slice [sig_start, sig_start + sig_len) is one
 *    contiguous block of rows; several dense masks are one frames × masks
 *    product per tile, a single one is a dot product per frame;
 *  - sparse: its nonzero pixels as *runs* of consecutive pixels, sorted by
 *    position (zero gaps of up to RUN_GAP pixels are bridged with zero
 *    weights).  A run whose weights are all equal (the generators' masks)
 *    stores no weights: its pixels are summed (exactly, for integer data)
 *    and the sum multiplied once.  A tile visits only the runs of its sig
 *    range (binary search), so a small disk touches a small part of each
 *    frame.
 * The parameter use_sparse chooses: true or false for every mask, or auto
 * (the default), which estimates the cost of both per mask (the constants
 * were measured; docs/udfs.md) and takes the cheaper.
 *
 * Numerics: the result is float32 for data that numpy's result_type with
 * float32 keeps in float32 (8/16-bit integers, bool, float32), else
 * float64.  The kernels compute float32-class data in float32 with partial
 * sums of at most 128 products per lane folded into float64, and the other
 * types in float64; each tile's per-frame sums are float64 and are then
 * added (+=) to the result, because a frame may be split over several
 * tiles along sig.  The sparse path never reads pixels outside its runs,
 * so non-finite data elsewhere do not reach that mask's result.
 *
 * Anti-aliasing (parameter antialiased) makes generator masks area
 * coverages (maskgen.h).  Shifts (parameter shifts: a constant "dy,dx" or
 * an .npy of shape nav + (2,)) move every mask by the frame's (dy, dx),
 * to follow a pattern that the descan moves across the detector.  Then
 * the masks differ per frame and the two paths above do not apply: the
 * shifted path asks for float tiles and, per frame and mask, renders the
 * moved generator mask row by row over its bounding box only (exact for
 * sub-pixel shifts), or reads a file mask moved by the whole-pixel
 * shift nearest (dy, dx), and takes the dot product with the frame's row.
 *
 * Sparse datasets (meta->sparse): with use_sparse=auto every mask takes
 * the dense layout, whose pixel-major weights let each stored value of a
 * sparse tile meet its row of weights directly (one multiply-add per value
 * and mask, in float64); the UDF then accepts sparse tiles.  With
 * use_sparse=true, or with shifts, it gets dense tiles.
 *
 * Complex data are rejected with TSR_EUNSUPPORTED for now.
 */
#include "io/formats/npy/npy.h"
#include "udf/builtin/builtin.h"
#include "udf/builtin/maskgen.h"
#include "udf/builtin/masks_kernels.h"

#include <math.h>
#include <stdlib.h>

enum { BUF_INTENSITY = 0 };

/* Frames processed together: the per-frame float64 sums of a group live in
 * the task's scratch (FRAME_GROUP × n_masks). */
#define FRAME_GROUP TSR__MASKS_MAX_DEPTH
/* Tile depth asked for when the dense weights exceed DEEP_TILE_WEIGHTS
 * bytes (see masks_init). */
#define DEEP_TILE_DEPTH 32
#define DEEP_TILE_WEIGHTS (12.0 * 1024 * 1024)
/* Zero gaps of up to this many pixels inside a sparse mask's run are
 * bridged (with zero weights) rather than starting a new run. */
#define RUN_GAP 16

/* Cost model of use_sparse=auto, per kernel ISA, in units of one pixel of
 * a dot product (a weighted or constant-weight run pixel costs about the
 * same: both are bound by loading the tile from L2).  Measured on 256×256
 * uint16 tiles of 8 frames (docs/udfs.md). */
typedef struct cost_model {
    double run;        /* visiting one run */
    double dense_min;  /* per frame pixel, the frames × masks product of up to 8 masks */
    double dense_per8; /* per frame pixel and started group of 8 masks */
} cost_model_t;

static const cost_model_t cost_models[TSR__MASKS_ISA_COUNT] = {
    [TSR__MASKS_ISA_PORTABLE] = {20, 4, 4},
    [TSR__MASKS_ISA_AVX2] = {22, 10, 6},
    [TSR__MASKS_ISA_AVX512] = {50, 8, 4.9},
};

typedef enum { SPARSE_AUTO = 0, SPARSE_ON, SPARSE_OFF } sparse_mode_t;

typedef tsr__masks_run_t masks_run_t;

typedef struct masks_state {
    tsr_ctx_t *ctx;
    int64_t n;      /* masks */
    int64_t npix;   /* pixels per frame */
    tsr_dtype_t in; /* tile dtype */
    const tsr__masks_kernels_t *k;
    /* dense masks: result column of each, weights npix × ld (ld = 1 for a
     * single dense mask, else a multiple of TSR__MASKS_LD_ALIGN) */
    int64_t nd, ld;
    int64_t *dcol;
    float *dm;
    /* sparse masks: result column of each, runs[roff[k] .. roff[k+1]) */
    int64_t ns;
    int64_t *scol;
    int64_t *roff;
    masks_run_t *runs;
    float *w;
    /* shifted path (shifted = true): per mask a generator shape, or a file
     * plane (npix floats) with the bounding box of its nonzero pixels */
    bool shifted;
    int64_t h, wd; /* sig height, width */
    double sdy, sdx;
    double *shifts; /* nav-sized × 2 (dy, dx), or NULL for the constant */
    tsr__mask_shape_t *shapes;
    bool *is_gen;
    float *planes;
    int64_t *pbox; /* 4 per mask: y0, y1, x0, x1 */
} masks_state_t;

typedef struct masks_task {
    float *row;   /* shifted path: one rendered mask row */
    double *acc;  /* FRAME_GROUP × n */
    double *dacc; /* FRAME_GROUP × nd */
    double sums[FRAME_GROUP];
} masks_task_t;

static const tsr_param_def_t masks_params[] = {
    {"mask", "string", NULL,
     "A mask: a generator " TSR__MASK_SPEC_DOC
     ", or the path of an .npy file with one sig-shaped mask or a stack (n, *sig_shape). "
     "Repeat for several masks; results follow the order given.",
     true},
    {"use_sparse", "string", "auto",
     "auto, true or false: true visits only the nonzero pixels of each mask (as runs of "
     "consecutive pixels), false multiplies every pixel (one frames x masks product); auto "
     "chooses per mask by estimated cost (sparse for masks like a small disk or a ring).",
     false},
    {"antialiased", "bool", "false",
     "Generator masks as area coverage: each pixel holds the fraction of its square inside the "
     "shape (disk, ring, polygon; sub-pixel exact).",
     false},
    {"shifts", "string", "",
     "Move every mask per frame by (dy, dx) pixels to compensate the descan: 'dy,dx' for all "
     "frames, or an .npy file of shape nav_shape + (2,) holding (dy, dx) per scan position "
     "(e.g. com's raw_shifts). Generator masks move by the exact sub-pixel shift, file masks "
     "by the nearest whole pixels.",
     false},
};

/* ---- init / destroy ---------------------------------------------------- */

static void masks_destroy(void *user_data, void *state)
{
    masks_state_t *st = state;
    if (!st)
        return;
    tsr_free(st->ctx, st->dcol);
    tsr_free(st->ctx, st->dm);
    tsr_free(st->ctx, st->scol);
    tsr_free(st->ctx, st->roff);
    tsr_free(st->ctx, st->runs);
    tsr_free(st->ctx, st->w);
    tsr__free(st->ctx, st->shifts);
    tsr_free(st->ctx, st->shapes);
    tsr_free(st->ctx, st->is_gen);
    tsr_free(st->ctx, st->planes);
    tsr_free(st->ctx, st->pbox);
    tsr_free(st->ctx, st);
}

/* One `mask` value, resolved: k planes of npix floats, mask-major. */
typedef struct mask_chunk {
    float *data;
    int64_t k;
    bool from_npy; /* data from tsr__npy_load (tsr__free), else tsr_alloc */
} mask_chunk_t;

/* Resolve one spec into a chunk; on error the message is in init->errmsg. */
static int load_chunk(tsr_udf_init_t *init, const char *spec, int64_t npix, bool aa,
                      mask_chunk_t *ch)
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
        int rc = tsr__mask_generate_aa(spec, sig, aa, ch->data, err, sizeof err);
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

/* ---- sparse runs ------------------------------------------------------- */

/* Scan one mask plane for its runs: nonzero pixels, with zero gaps of up to
 * RUN_GAP pixels bridged.  If runs is non-NULL, fill runs and weights
 * (weights at w + *nw); always count runs (*nr) and weights (*nw) and
 * return the number of pixels the runs cover. */
static int64_t scan_runs(const float *plane, int64_t npix, masks_run_t *runs, float *w, int64_t *nr,
                         int64_t *nw)
{
    int64_t covered = 0;
    int64_t p = 0;
    while (p < npix) {
        while (p < npix && plane[p] == 0.0f)
            p++;
        if (p == npix)
            break;
        int64_t start = p, last = p;
        for (int64_t q = p + 1; q < npix && q - last <= RUN_GAP; q++)
            if (plane[q] != 0.0f)
                last = q;
        const int64_t len = last + 1 - start;
        bool uniform = true;
        for (int64_t q = start + 1; q <= last && uniform; q++)
            uniform = plane[q] == plane[start];
        if (runs) {
            masks_run_t *r = &runs[*nr];
            r->start = start;
            r->len = len;
            r->uw = plane[start];
            r->woff = uniform ? -1 : *nw;
            if (!uniform)
                memcpy(w + *nw, plane + start, (size_t)len * sizeof *w);
        }
        (*nr)++;
        if (!uniform)
            *nw += len;
        covered += len;
        p = last + 1;
    }
    return covered;
}

/* ---- init -------------------------------------------------------------- */

static int parse_mode(tsr_udf_init_t *init, sparse_mode_t *mode)
{
    const char *v = tsr__params_value(init->params, masks_params,
                                      sizeof masks_params / sizeof masks_params[0], "use_sparse");
    bool b;
    char err[200];
    if (!v || strcmp(v, "auto") == 0) {
        *mode = SPARSE_AUTO;
        return 0;
    }
    if (tsr__parse_bool(v, &b, err, sizeof err, "use_sparse") < 0)
        return tsr__builtin_init_fail(
            init, TSR_EINVAL, "masks: use_sparse: expected auto, true or false, got '%s'", v);
    *mode = b ? SPARSE_ON : SPARSE_OFF;
    return 0;
}

/* Allocate count elements of size bytes (overflow-checked); NULL on
 * failure. */
static void *alloc_n(tsr_ctx_t *ctx, int64_t count, size_t size)
{
    size_t bytes;
    if (count < 0 || !tsr__mul_size((size_t)count, size, &bytes))
        return NULL;
    return tsr_alloc(ctx, bytes ? bytes : 1);
}

/* Cost (cost_model_t units) of the dense path for d masks of npix pixels:
 * a dot product for one, the frames × masks product for several. */
static double dense_cost(const cost_model_t *cm, int64_t d, int64_t npix)
{
    if (d == 0)
        return 0;
    if (d == 1)
        return (double)npix;
    double c = cm->dense_per8 * (double)((d + 7) / 8);
    return (double)npix * (c > cm->dense_min ? c : cm->dense_min);
}

typedef struct mask_cost {
    double cost; /* of the sparse path */
    int64_t j;
} mask_cost_t;

static int by_cost_desc(const void *a, const void *b)
{
    const mask_cost_t *x = a, *y = b;
    return x->cost < y->cost ? 1 : x->cost > y->cost ? -1 : (x->j > y->j) - (x->j < y->j);
}

/* use_sparse=auto: the cheapest split, by the cost model.  Making a mask
 * dense saves its sparse cost, so the dense set is always the d masks with
 * the most expensive runs; try every d. */
static void choose_auto(const cost_model_t *cm, mask_cost_t *mc, int64_t n, int64_t npix,
                        bool *sparse)
{
    qsort(mc, (size_t)n, sizeof *mc, by_cost_desc);
    double rest = 0;
    for (int64_t i = 0; i < n; i++)
        rest += mc[i].cost;
    double best = rest;
    int64_t best_d = 0;
    for (int64_t d = 1; d <= n; d++) {
        rest -= mc[d - 1].cost;
        double t = dense_cost(cm, d, npix) + rest;
        if (t < best) {
            best = t;
            best_d = d;
        }
    }
    for (int64_t i = 0; i < n; i++)
        sparse[mc[i].j] = i >= best_d;
}

/* Split the masks (n planes of npix floats, plane j at planes[j]) into the
 * dense and sparse sets and build both. */
static int build_paths(tsr_udf_init_t *init, masks_state_t *st, const float *const *planes,
                       sparse_mode_t mode, tsr__masks_isa_t isa)
{
    tsr_ctx_t *ctx = init->ctx;
    const int64_t n = st->n, npix = st->npix;
    bool *sparse = alloc_n(ctx, n, sizeof *sparse);
    mask_cost_t *mc = alloc_n(ctx, n, sizeof *mc);
    int64_t *runs_of = alloc_n(ctx, 2 * n, sizeof *runs_of);
    int rc = 0;
    if (!sparse || !mc || !runs_of) {
        rc = tsr__builtin_init_fail(init, TSR_ENOMEM, "masks: out of memory");
        goto out;
    }
    const cost_model_t *cm = &cost_models[isa];
    for (int64_t j = 0; j < n; j++) {
        int64_t r = 0, w = 0;
        int64_t covered = scan_runs(planes[j], npix, NULL, NULL, &r, &w);
        runs_of[2 * j] = r;
        runs_of[2 * j + 1] = w;
        mc[j] = (mask_cost_t){(double)r * cm->run + (double)covered, j};
        sparse[j] = mode == SPARSE_ON;
    }
    if (mode == SPARSE_AUTO)
        choose_auto(cm, mc, n, npix, sparse);
    int64_t nr = 0, nw = 0;
    for (int64_t j = 0; j < n; j++) {
        if (sparse[j]) {
            st->ns++;
            nr += runs_of[2 * j];
            nw += runs_of[2 * j + 1];
        } else {
            st->nd++;
        }
    }
    /* A single dense mask is a dot product (ld 1); several share the
     * frames × masks product. */
    st->ld = st->nd <= 1
                 ? 1
                 : (st->nd + TSR__MASKS_LD_ALIGN - 1) / TSR__MASKS_LD_ALIGN * TSR__MASKS_LD_ALIGN;
    int64_t dm_elems = 0;
    if (st->nd && !tsr__mul_i64(npix, st->ld, &dm_elems)) {
        rc = tsr__builtin_init_fail(init, TSR_EOVERFLOW, "masks: %lld masks are too many",
                                    (long long)n);
        goto out;
    }
    st->dcol = alloc_n(ctx, st->nd, sizeof *st->dcol);
    st->dm = alloc_n(ctx, dm_elems, sizeof *st->dm);
    st->scol = alloc_n(ctx, st->ns, sizeof *st->scol);
    st->roff = alloc_n(ctx, st->ns + 1, sizeof *st->roff);
    st->runs = alloc_n(ctx, nr, sizeof *st->runs);
    st->w = alloc_n(ctx, nw, sizeof *st->w);
    if (!st->dcol || !st->dm || !st->scol || !st->roff || !st->runs || !st->w) {
        rc = tsr__builtin_init_fail(init, TSR_ENOMEM, "masks: out of memory for %lld masks",
                                    (long long)n);
        goto out;
    }
    if (dm_elems)
        memset(st->dm, 0, (size_t)dm_elems * sizeof *st->dm);
    int64_t d = 0, s = 0;
    nr = nw = 0;
    for (int64_t j = 0; j < n; j++) {
        if (sparse[j]) {
            st->scol[s] = j;
            st->roff[s++] = nr;
            scan_runs(planes[j], npix, st->runs, st->w, &nr, &nw);
        } else {
            /* transpose into column d of the pixel-major matrix */
            st->dcol[d] = j;
            for (int64_t p = 0; p < npix; p++)
                st->dm[p * st->ld + d] = planes[j][p];
            d++;
        }
    }
    st->roff[s] = nr;
out:
    tsr_free(ctx, sparse);
    tsr_free(ctx, mc);
    tsr_free(ctx, runs_of);
    return rc;
}

/* Parameter shifts: "dy,dx" or an .npy of shape nav + (2,).  Sets
 * st->shifted and the shifts; checks that every selected position has a
 * finite shift. */
static int parse_shifts(tsr_udf_init_t *init, masks_state_t *st)
{
    const tsr_udf_meta_t *meta = init->meta;
    const char *v = tsr__params_value(init->params, masks_params,
                                      sizeof masks_params / sizeof masks_params[0], "shifts");
    if (!v || !*v)
        return 0;
    st->shifted = true;
    double c[8];
    int count = 0;
    char err[256];
    if (tsr__parse_f64_list(v, c, 8, &count, err, sizeof err, "shifts") == 0) {
        if (count != 2)
            return tsr__builtin_init_fail(init, TSR_EINVAL,
                                          "masks: shifts '%s': expected dy,dx (2 numbers) or an "
                                          ".npy file, got %d numbers",
                                          v, count);
        st->sdy = c[0];
        st->sdx = c[1];
        return 0;
    }
    tsr_shape_t shape;
    void *data = NULL;
    int rc = tsr__npy_load(init->ctx, v, TSR_F64, &shape, &data);
    if (rc < 0)
        return tsr__builtin_init_fail(init, rc, "masks: shifts: %s", tsr_ctx_errmsg(init->ctx));
    st->shifts = data;
    tsr_shape_t want = meta->nav_shape;
    if (want.ndim < TSR_MAX_DIMS)
        want.dims[want.ndim++] = 2;
    char sh[128], sh2[128];
    if (!tsr__shape_eq(&shape, &want))
        return tsr__builtin_init_fail(init, TSR_EINVAL,
                                      "masks: shifts file '%s' has shape %s, expected nav shape + "
                                      "(2,) = %s",
                                      v, tsr__shape_str(&shape, sh, sizeof sh),
                                      tsr__shape_str(&want, sh2, sizeof sh2));
    const int64_t nav = tsr_shape_size(&meta->nav_shape);
    for (int64_t i = 0; i < nav; i++)
        if ((!meta->roi || meta->roi[i]) &&
            !(isfinite(st->shifts[2 * i]) && isfinite(st->shifts[2 * i + 1])))
            return tsr__builtin_init_fail(init, TSR_EINVAL,
                                          "masks: shifts file '%s': the shift of scan position "
                                          "%lld (flat index) is not finite (%g, %g)",
                                          v, (long long)i, st->shifts[2 * i],
                                          st->shifts[2 * i + 1]);
    return 0;
}

/* The shifted path: a shape per generator mask, a plane and its nonzero
 * bounding box per file mask.  planes[j] is mask j, spec_of[j] its spec. */
static int build_shifted(tsr_udf_init_t *init, masks_state_t *st, const float *const *planes,
                         const char *const *spec_of, bool aa)
{
    tsr_ctx_t *ctx = init->ctx;
    const int64_t n = st->n, npix = st->npix;
    st->shapes = alloc_n(ctx, n, sizeof *st->shapes);
    st->is_gen = alloc_n(ctx, n, sizeof *st->is_gen);
    st->pbox = alloc_n(ctx, 4 * n, sizeof *st->pbox);
    int64_t nfile = 0;
    for (int64_t j = 0; j < n; j++)
        nfile += !tsr__mask_is_generator(spec_of[j]);
    int64_t pe = 0;
    if (!tsr__mul_i64(nfile, npix, &pe))
        return tsr__builtin_init_fail(init, TSR_EOVERFLOW, "masks: too many masks");
    st->planes = alloc_n(ctx, pe, sizeof *st->planes);
    if (!st->shapes || !st->is_gen || !st->pbox || !st->planes)
        return tsr__builtin_init_fail(init, TSR_ENOMEM, "masks: out of memory");
    int64_t f = 0;
    for (int64_t j = 0; j < n; j++) {
        int64_t *bb = st->pbox + 4 * j;
        st->is_gen[j] = tsr__mask_is_generator(spec_of[j]);
        if (st->is_gen[j]) {
            char err[200];
            int rc = tsr__mask_parse(spec_of[j], &init->meta->sig_shape, aa, &st->shapes[j], err,
                                     sizeof err);
            if (rc < 0)
                return tsr__builtin_init_fail(init, rc, "masks: %s", err);
            bb[0] = f; /* unused for generators */
            continue;
        }
        float *pl = st->planes + f * npix;
        memcpy(pl, planes[j], (size_t)npix * sizeof *pl);
        bb[0] = st->h;
        bb[1] = 0;
        bb[2] = st->wd;
        bb[3] = 0;
        for (int64_t y = 0; y < st->h; y++)
            for (int64_t x = 0; x < st->wd; x++)
                if (pl[y * st->wd + x] != 0.0f) {
                    bb[0] = y < bb[0] ? y : bb[0];
                    bb[1] = y + 1 > bb[1] ? y + 1 : bb[1];
                    bb[2] = x < bb[2] ? x : bb[2];
                    bb[3] = x + 1 > bb[3] ? x + 1 : bb[3];
                }
        st->shapes[j].kind = (int)f++; /* file masks: index of the plane */
    }
    return 0;
}

static int masks_init(tsr_udf_init_t *init)
{
    const tsr_udf_meta_t *meta = init->meta;
    const tsr_params_t *p = init->params;
    tsr_ctx_t *ctx = init->ctx;
    masks_state_t *st = NULL;
    mask_chunk_t *chunks = NULL;
    const float **planes = NULL;
    const char **spec_of = NULL;
    size_t n_specs = 0;
    sparse_mode_t mode = SPARSE_AUTO;
    int rc = 0;

    if (!tsr__dtype_valid(meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EINVAL, "masks: invalid dataset dtype %d",
                                      (int)meta->dataset_dtype);
    if (tsr__dtype_is_complex(meta->dataset_dtype))
        return tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                      "masks: complex data (%s) are not supported yet",
                                      tsr_dtype_name(meta->dataset_dtype));
    if ((rc = parse_mode(init, &mode)) < 0)
        return rc;
    bool aa = false;
    {
        const char *v =
            tsr__params_value(init->params, masks_params,
                              sizeof masks_params / sizeof masks_params[0], "antialiased");
        char err[200];
        if (tsr__parse_bool(v, &aa, err, sizeof err, "masks: antialiased") < 0)
            return tsr__builtin_init_fail(init, TSR_EINVAL, "%s", err);
    }
    if (meta->sparse && mode == SPARSE_AUTO)
        mode = SPARSE_OFF; /* pixel-major weights for sparse tiles */
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
        if ((rc = load_chunk(init, v, npix, aa, &chunks[c++])) < 0)
            goto fail;
        n += chunks[c - 1].k;
    }
    if (n == 0) {
        rc = tsr__builtin_init_fail(init, TSR_EINVAL, "masks: the mask stack is empty");
        goto fail;
    }

    st = tsr_alloc(ctx, sizeof *st);
    if (st) {
        memset(st, 0, sizeof *st);
        st->ctx = ctx;
    }
    planes = alloc_n(ctx, n, sizeof *planes);
    if (!st || !planes) {
        rc = tsr__builtin_init_fail(init, TSR_ENOMEM, "masks: out of memory");
        goto fail;
    }
    st->n = n;
    st->npix = npix;
    st->in = meta->input_dtype; /* what TSR_DTYPE_NATIVE delivers */
    if ((rc = parse_shifts(init, st)) < 0)
        goto fail;
    int64_t j = 0;
    for (size_t i = 0; i < n_specs; i++)
        for (int64_t q = 0; q < chunks[i].k; q++)
            planes[j++] = chunks[i].data + q * npix;
    if (st->shifted) {
        char sh[128];
        if (meta->sig_shape.ndim != 2) {
            rc = tsr__builtin_init_fail(init, TSR_EUNSUPPORTED,
                                        "masks: shifts need a 2-D signal, the dataset's signal "
                                        "has shape %s",
                                        tsr__shape_str(&meta->sig_shape, sh, sizeof sh));
            goto fail;
        }
        st->h = meta->sig_shape.dims[0];
        st->wd = meta->sig_shape.dims[1];
        st->in = tsr__dtype_promote(meta->dataset_dtype, TSR_F32);
        spec_of = alloc_n(ctx, n, sizeof *spec_of);
        if (!spec_of) {
            rc = tsr__builtin_init_fail(init, TSR_ENOMEM, "masks: out of memory");
            goto fail;
        }
        j = 0;
        for (size_t i = 0, c2 = 0; i < tsr_params_count(p); i++) {
            const char *k, *v;
            if (tsr_params_at(p, i, &k, &v) != 0 || strcmp(k, "mask") != 0)
                continue;
            for (int64_t q = 0; q < chunks[c2].k; q++)
                spec_of[j++] = v;
            c2++;
        }
        if ((rc = build_shifted(init, st, planes, spec_of, aa)) < 0)
            goto fail;
        tsr_free(ctx, spec_of);
        spec_of = NULL;
    } else {
        const tsr__masks_isa_t isa = tsr__masks_isa_best();
        st->k = tsr__masks_kernels_get(st->in, isa);
        if (!st->k) {
            rc = tsr__builtin_init_fail(init, TSR_EUNSUPPORTED, "masks: no kernel for %s tiles",
                                        tsr_dtype_name(st->in));
            goto fail;
        }
        /* Without shifts, only the rows that hold a nonzero weight of some mask are read: for a
         * small disk, a band of the frame. */
        int64_t lo = npix, hi = -1;
        for (int64_t q = 0; q < n; q++) {
            int64_t a = 0, b = npix - 1;
            while (a < lo && planes[q][a] == 0.0f)
                a++;
            while (b > hi && b >= a && planes[q][b] == 0.0f)
                b--;
            lo = a < lo ? a : lo;
            hi = b > hi && b >= a ? b : hi;
        }
        if (hi >= lo) {
            int64_t row_px = npix / meta->sig_shape.dims[0];
            init->sig_rows_start = lo / row_px;
            init->sig_rows_end = hi / row_px + 1;
        }
        if ((rc = build_paths(init, st, planes, mode, isa)) < 0)
            goto fail;
    }
    tsr_free(ctx, planes);
    planes = NULL;
    free_chunks(ctx, chunks, n_specs);
    chunks = NULL;

    tsr_dtype_t out =
        tsr__dtype_promote(meta->dataset_dtype, TSR_F32) == TSR_F32 ? TSR_F32 : TSR_F64;
    tsr__builtin_declare(init, "intensity", TSR_KIND_NAV, out, 0, 1, &n);
    init->input_dtype = st->shifted ? TSR_F32 : TSR_DTYPE_NATIVE;
    init->method = TSR_METHOD_TILE;
    init->accepts_sparse = meta->sparse && st->ns == 0 && !st->shifted;
    /* Many dense masks: their weights (npix × ld float32) no longer fit in
     * the caches and are streamed once per tile, so deeper tiles read them
     * for more frames (64 masks of 256 × 256: 32 frames per tile instead of
     * 8 is 2× faster; up to 32 masks it makes no difference).  Only for
     * frames of 32 KiB or more, which the default budget gives fewer than
     * 32 per tile anyway. */
    if (st->nd > 1 && (double)npix * (double)st->ld * sizeof(float) > DEEP_TILE_WEIGHTS &&
        (double)npix * (double)tsr_dtype_size(st->in) >= 32768)
        init->tile_depth = DEEP_TILE_DEPTH;
    init->state = st;
    return 0;

fail:
    tsr_free(ctx, spec_of);
    tsr_free(ctx, planes);
    free_chunks(ctx, chunks, n_specs);
    masks_destroy(NULL, st);
    return rc;
}

/* ---- tasks ------------------------------------------------------------- */

static int masks_task_start(const tsr_udf_call_t *c, void **task_state)
{
    const masks_state_t *st = c->state;
    masks_task_t *ts = tsr_alloc(st->ctx, sizeof *ts);
    if (!ts)
        return tsr_udf_error(c, TSR_ENOMEM, "masks: out of memory");
    ts->acc = alloc_n(st->ctx, FRAME_GROUP * st->n, sizeof *ts->acc);
    ts->dacc = alloc_n(st->ctx, FRAME_GROUP * st->nd, sizeof *ts->dacc);
    ts->row = alloc_n(st->ctx, st->wd, sizeof *ts->row);
    if (!ts->acc || !ts->dacc || !ts->row) {
        tsr_free(st->ctx, ts->acc);
        tsr_free(st->ctx, ts->dacc);
        tsr_free(st->ctx, ts->row);
        tsr_free(st->ctx, ts);
        return tsr_udf_error(c, TSR_ENOMEM, "masks: out of memory");
    }
    *task_state = ts;
    return 0;
}

static void masks_task_stop(const tsr_udf_call_t *c, void *task_state)
{
    const masks_state_t *st = c->state;
    masks_task_t *ts = task_state;
    if (!ts)
        return;
    tsr_free(st->ctx, ts->acc);
    tsr_free(st->ctx, ts->dacc);
    tsr_free(st->ctx, ts->row);
    tsr_free(st->ctx, ts);
}

/* ---- processing -------------------------------------------------------- */

/* The first run of runs[lo, hi) that ends after pixel p (runs are sorted
 * and disjoint), or hi. */
static int64_t first_run_after(const masks_run_t *runs, int64_t lo, int64_t hi, int64_t p)
{
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (runs[mid].start + runs[mid].len <= p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* acc[f * n + col] += frame · mask for the G frames at x (frame stride
 * len), over the tile's sig range [s0, s0 + len), for every mask. */
static void group_products(const masks_state_t *st, masks_task_t *ts, const unsigned char *x,
                           int64_t G, int64_t s0, int64_t len, double *acc)
{
    const tsr__masks_kernels_t *k = st->k;
    const int64_t n = st->n;
    if (st->nd == 1) {
        k->dot(x, len, G, st->dm + s0, len, acc + st->dcol[0], n);
    } else if (st->nd > 1) {
        const int64_t nd = st->nd;
        memset(ts->dacc, 0, (size_t)(G * nd) * sizeof *ts->dacc);
        k->dense(x, len, G, len, st->dm + s0 * st->ld, st->ld, nd, ts->dacc);
        for (int64_t f = 0; f < G; f++)
            for (int64_t j = 0; j < nd; j++)
                acc[f * n + st->dcol[j]] += ts->dacc[f * nd + j];
    }
    /* Sparse masks: consecutive runs of the same kind (constant weight uw,
     * or weighted) go to one kernel call. */
    const int64_t s1 = s0 + len;
    for (int64_t q = 0; q < st->ns; q++) {
        const masks_run_t *runs = st->runs;
        const int64_t col = st->scol[q], hi = st->roff[q + 1];
        int64_t i = first_run_after(runs, st->roff[q], hi, s0);
        while (i < hi && runs[i].start < s1) {
            int64_t j = i + 1;
            if (runs[i].woff < 0) {
                while (j < hi && runs[j].start < s1 && runs[j].woff < 0 && runs[j].uw == runs[i].uw)
                    j++;
                k->sum_runs(x, len, G, runs + i, j - i, s0, s1, ts->sums);
                for (int64_t f = 0; f < G; f++)
                    acc[f * n + col] += runs[i].uw * ts->sums[f];
            } else {
                while (j < hi && runs[j].start < s1 && runs[j].woff >= 0)
                    j++;
                k->dot_runs(x, len, G, runs + i, j - i, s0, s1, st->w, acc + col, n);
            }
            i = j;
        }
    }
}

/* Sparse tile, every mask dense: acc[j] = Σ value · dm[pixel * ld + j]
 * per frame, in float64, added to the frame's results. */
#define MASKS_SPARSE(DT, T)                                                 \
    case DT: {                                                              \
        const T *v = (const T *)sp->values;                                 \
        for (int64_t e = sp->indptr[f]; e < sp->indptr[f + 1]; e++) {       \
            const double x = (double)v[e];                                  \
            const float *w = st->dm + (t->sig_start + sp->indices[e]) * ld; \
            for (int64_t j = 0; j < nd; j++)                                \
                acc[j] += x * (double)w[j];                                 \
        }                                                                   \
        break;                                                              \
    }

static int masks_process_sparse(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const masks_state_t *st = c->state;
    masks_task_t *ts = c->task_state;
    const tsr_view_t *ov = &c->bufs[BUF_INTENSITY];
    const tsr_sparse_rows_t *sp = t->sparse;
    const int64_t n = st->n, nd = st->nd, ld = st->ld;
    if (st->ns != 0 || !tsr__dtype_valid(t->dtype) || tsr__dtype_is_complex(t->dtype))
        return tsr_udf_error(c, TSR_EUNSUPPORTED,
                             "masks: cannot apply run masks to sparse %s tiles",
                             tsr_dtype_name(t->dtype));
    double *acc = ts->dacc; /* nd of FRAME_GROUP × nd */
    for (int64_t f = 0; f < t->depth; f++) {
        memset(acc, 0, (size_t)nd * sizeof *acc);
        switch (t->dtype) {
            TSR__BUILTIN_REAL_TYPES(MASKS_SPARSE)
        default: break;
        }
        for (int64_t j = 0; j < nd; j++) {
            if (ov->dtype == TSR_F32)
                ((float *)ov->data)[f * n + st->dcol[j]] += (float)acc[j];
            else
                ((double *)ov->data)[f * n + st->dcol[j]] += acc[j];
        }
    }
    return 0;
}
#undef MASKS_SPARSE

/* Σ a[i]·m[i] in float64, a float32 or float64. */
static double dot_row(const void *a, tsr_dtype_t dt, const float *restrict m, int64_t n)
{
    double l[4] = {0, 0, 0, 0};
    if (dt == TSR_F32) {
        const float *restrict x = a;
        int64_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (int k = 0; k < 4; k++)
                l[k] += (double)x[i + k] * (double)m[i + k];
        for (; i < n; i++)
            l[0] += (double)x[i] * (double)m[i];
    } else {
        const double *restrict x = a;
        int64_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (int k = 0; k < 4; k++)
                l[k] += x[i + k] * (double)m[i + k];
        for (; i < n; i++)
            l[0] += x[i] * (double)m[i];
    }
    return (l[0] + l[2]) + (l[1] + l[3]);
}

/* The shifted path: every frame, every mask moved by the frame's shift,
 * over the mask's bounding box within the tile's rows. */
static void process_shifted(const masks_state_t *st, masks_task_t *ts, const tsr_tile_t *t,
                            const tsr_view_t *ov)
{
    const int64_t n = st->n, w = st->wd, es = (int64_t)tsr_dtype_size(t->dtype);
    const int64_t ty0 = t->sig_start / w, ty1 = (t->sig_start + t->sig_len) / w;
    for (int64_t f = 0; f < t->depth; f++) {
        const int64_t pos = t->nav_index + f;
        const double dy = st->shifts ? st->shifts[2 * pos] : st->sdy;
        const double dx = st->shifts ? st->shifts[2 * pos + 1] : st->sdx;
        const unsigned char *frame = (const unsigned char *)t->data + f * t->sig_len * es;
        for (int64_t j = 0; j < n; j++) {
            double sum = 0;
            int64_t y0, y1, x0, x1;
            const tsr__mask_shape_t *m = &st->shapes[j];
            int64_t iy = 0, ix = 0;
            if (st->is_gen[j]) {
                tsr__mask_bbox(m, dy, dx, st->h, w, &y0, &y1, &x0, &x1);
            } else {
                /* whole-pixel shift; far shifts leave nothing in the frame */
                const int64_t *bb = st->pbox + 4 * j;
                const double big = (double)(st->h + w);
                iy = fabs(dy) < big ? llround(dy) : (dy < 0 ? -(st->h + w) : st->h + w);
                ix = fabs(dx) < big ? llround(dx) : (dx < 0 ? -(st->h + w) : st->h + w);
                y0 = bb[0] + iy > 0 ? bb[0] + iy : 0;
                y1 = bb[1] + iy < st->h ? bb[1] + iy : st->h;
                x0 = bb[2] + ix > 0 ? bb[2] + ix : 0;
                x1 = bb[3] + ix < w ? bb[3] + ix : w;
            }
            y0 = y0 > ty0 ? y0 : ty0;
            y1 = y1 < ty1 ? y1 : ty1;
            for (int64_t y = y0; y < y1 && x0 < x1; y++) {
                const float *mrow;
                if (st->is_gen[j]) {
                    tsr__mask_render(m, dy, dx, y, x0, x1, ts->row);
                    mrow = ts->row;
                } else {
                    mrow = st->planes + (int64_t)m->kind * st->npix + (y - iy) * w + (x0 - ix);
                }
                sum += dot_row(frame + ((y - ty0) * w + x0) * es, t->dtype, mrow, x1 - x0);
            }
            if (ov->dtype == TSR_F32)
                ((float *)ov->data)[f * n + j] += (float)sum;
            else
                ((double *)ov->data)[f * n + j] += sum;
        }
    }
}

static int masks_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    const masks_state_t *st = c->state;
    masks_task_t *ts = c->task_state;
    const tsr_view_t *ov = &c->bufs[BUF_INTENSITY];
    if (t->sparse)
        return masks_process_sparse(c, t);
    if (t->dtype != st->in)
        return tsr_udf_error(c, TSR_EUNSUPPORTED, "masks: expected %s tiles, got %s",
                             tsr_dtype_name(st->in), tsr_dtype_name(t->dtype));
    if (st->shifted) {
        process_shifted(st, ts, t, ov);
        return 0;
    }
    const int64_t n = st->n, len = t->sig_len;
    const size_t fbytes = (size_t)len * tsr_dtype_size(t->dtype);
    for (int64_t g0 = 0; g0 < t->depth; g0 += FRAME_GROUP) {
        const int64_t G = t->depth - g0 < FRAME_GROUP ? t->depth - g0 : FRAME_GROUP;
        double *acc = ts->acc;
        memset(acc, 0, (size_t)(G * n) * sizeof *acc);
        group_products(st, ts, (const unsigned char *)t->data + (size_t)g0 * fbytes, G,
                       t->sig_start, len, acc);
        if (ov->dtype == TSR_F32) {
            float *o = (float *)ov->data + g0 * n;
            for (int64_t i = 0; i < G * n; i++)
                o[i] += (float)acc[i];
        } else {
            double *o = (double *)ov->data + g0 * n;
            for (int64_t i = 0; i < G * n; i++)
                o[i] += acc[i];
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
    .task_start = masks_task_start,
    .task_stop = masks_task_stop,
    .process_tile = masks_process_tile,
    .merge = NULL,
};
