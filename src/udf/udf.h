/*
 * udf.h — the internal side of the UDF runtime.
 *
 * A tsr_udf_t is a definition plus bound parameters.  When a run starts,
 * each UDF becomes an instance (tsr__udf_inst_t) holding init's outputs.
 * Buffers live in buffer sets (tsr__bufset_t): one global set per UDF in the
 * run (NAV buffers ROI-compressed: one row per selected frame) and one
 * partial set per UDF on each worker, sized for the partition it works on.
 * Results (tsr_results_t) are built from a copy of the global sets: NAV
 * buffers expanded to the full nav shape, finalize run, private buffers
 * dropped.
 */
#ifndef TSR_UDF_H
#define TSR_UDF_H

#include "core/core.h"

struct tsr_udf {
    tsr_ctx_t *ctx;
    const tsr_udf_def_t *def;
    void *user_data;
    tsr_params_t *params;
};

typedef struct tsr__udf_inst {
    const tsr_udf_t *udf;
    const tsr_udf_def_t *def;
    void *state;
    tsr_buffer_decl_t decls[TSR_UDF_MAX_BUFFERS];
    int n_decls;
    tsr_dtype_t want_dtype;  /* as init asked */
    tsr_dtype_t input_dtype; /* resolved */
    tsr_method_t method;
    int64_t tile_depth;
    int64_t *frames_needed;
    int64_t n_frames_needed;
    int64_t rows_start, rows_end; /* sig rows read; 0, 0 = all */
    bool accepts_sparse;          /* TILE UDF that takes sparse tiles */
    tsr_udf_meta_t meta;          /* run-level fields */
    bool initialized;
} tsr__udf_inst_t;

typedef struct tsr__bufset {
    void *data[TSR_UDF_MAX_BUFFERS];
    int64_t rows[TSR_UDF_MAX_BUFFERS];
    int64_t row_elems[TSR_UDF_MAX_BUFFERS];
    size_t bytes[TSR_UDF_MAX_BUFFERS];
} tsr__bufset_t;

/* Run init for inst; meta must hold the run's shapes, dtype and ROI.
 * Message in err. */
int tsr__udf_inst_init(tsr_ctx_t *ctx, tsr__udf_inst_t *inst, const tsr_udf_t *udf,
                       const tsr_udf_meta_t *meta, bool corrections, char *err, size_t errlen);
void tsr__udf_inst_destroy(tsr_ctx_t *ctx, tsr__udf_inst_t *inst);

/* Allocate the buffers of inst, zeroed: NAV with nav_rows rows, result-only
 * ones only if with_result_only.  Frees what it allocated on failure. */
int tsr__bufset_alloc(tsr_ctx_t *ctx, const tsr__udf_inst_t *inst, int64_t nav_rows,
                      bool with_result_only, tsr__bufset_t *bs);
void tsr__bufset_zero(const tsr__udf_inst_t *inst, tsr__bufset_t *bs);
void tsr__bufset_free(tsr_ctx_t *ctx, tsr__bufset_t *bs);
int tsr__bufset_copy(tsr_ctx_t *ctx, const tsr__udf_inst_t *inst, const tsr__bufset_t *src,
                     tsr__bufset_t *dst);

/* Views of bs for a callback: NAV rows [row0, row0+nrows), SIG pixels
 * [sig0, sig0+siglen), SINGLE whole. */
void tsr__bufset_views(const tsr__udf_inst_t *inst, const tsr__bufset_t *bs, int64_t row0,
                       int64_t nrows, int64_t sig0, int64_t siglen, tsr_view_t *views);

/* Build results from copies of the global buffer sets (taken over: the
 * function frees or keeps them).  valid: nav-sized mask of valid
 * positions; damage: nav-sized mask of processed positions (copied).
 * rows_nav: for each compressed row its flat nav index (NULL: identity). */
int tsr__results_build(tsr_ctx_t *ctx, tsr__udf_inst_t *insts, int n, tsr__bufset_t *sets,
                       const tsr_shape_t *nav, const tsr_shape_t *sig, const int64_t *rows_nav,
                       int64_t n_rows, const uint8_t *valid, const uint8_t *damage,
                       tsr_results_t **out, char *err, size_t errlen);

/* The record behind tsr_udf_call_t.priv: where tsr_udf_error writes. */
struct tsr__call_priv {
    void (*report)(void *target, int code, const char *msg);
    void *target;
};

#endif
