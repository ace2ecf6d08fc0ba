/*
 * corrections.h — dark frame, gain map and excluded-pixel patching, applied
 * to float tiles while reading.
 */
#ifndef TSR_CORE_CORRECTIONS_H
#define TSR_CORE_CORRECTIONS_H

#include "core/core.h"

typedef struct tsr__corr {
    float *dark;       /* sig-sized or NULL */
    float *gain;       /* sig-sized or NULL */
    uint8_t *excluded; /* sig-sized or NULL (kept for task descriptions) */
    /* excluded pixels: for each, its flat index and its neighbours */
    int64_t n_excluded;
    int64_t *excl_index;
    int64_t *nbr_start; /* n_excluded + 1 offsets into nbr */
    int64_t *nbr;
    int64_t sig_size;
} tsr__corr_t;

/* Copy the arrays of c (sig-sized) and build the patch table.  TSR_EINVAL
 * if every pixel is excluded. */
int tsr__corr_init(tsr_ctx_t *ctx, tsr__corr_t *corr, const tsr_corrections_t *c,
                   const tsr_shape_t *sig);
void tsr__corr_destroy(tsr_ctx_t *ctx, tsr__corr_t *corr);
bool tsr__corr_active(const tsr__corr_t *corr);
/* Apply to depth frames of a tile covering pixels [sig0, sig0+siglen).
 * Excluded-pixel patching needs whole frames (sig0 == 0, siglen == size).
 * dt is TSR_F32 or TSR_F64. */
void tsr__corr_apply(const tsr__corr_t *corr, void *tile, tsr_dtype_t dt, int64_t depth,
                     int64_t sig0, int64_t siglen);

#endif
