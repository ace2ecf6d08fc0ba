/*
 * tiling.h — tiling negotiation and size-based partitioning, as pure
 * functions of shapes and budgets so that they can be tested alone.
 */
#ifndef TSR_CORE_TILING_H
#define TSR_CORE_TILING_H

#include "core/core.h"

typedef struct tsr__tiling_in {
    tsr_shape_t sig;
    size_t elem_bytes;  /* widest element among the tile buffers */
    int64_t budget;     /* bytes one tile may take */
    int64_t base_depth; /* format: depth multiple (0/1 = any) */
    int64_t base_rows;  /* format: rows-of-sig-dim-0 multiple (0/1 = any) */
    int64_t pref_depth; /* UDFs: preferred depth (0 = none) */
    bool full_frames;   /* a UDF processes frames, or pixels need neighbours */
} tsr__tiling_in_t;

typedef struct tsr__tiling {
    int64_t depth; /* frames per tile */
    int64_t rows;  /* rows of the first sig dimension per tile */
} tsr__tiling_t;

void tsr__tiling_negotiate(const tsr__tiling_in_t *in, tsr__tiling_t *out);

typedef struct tsr__part {
    int64_t nav_start, nav_end; /* flat nav range; partitions tile the nav */
    int64_t row_start, rows;    /* selected frames, ROI-compressed */
} tsr__part_t;

/* Split the selected frames into partitions of about part_bytes raw bytes
 * each (or exactly `forced` partitions), at least `min_parts` when there
 * are enough frames.  sel: the flat nav index of each selected frame (NULL:
 * all of 0..nav_size-1).  parts is allocated with tsr__malloc. */
int tsr__partition(tsr_ctx_t *ctx, int64_t nav_size, const int64_t *sel, int64_t n_sel,
                   int64_t frame_bytes, int64_t part_bytes, int64_t forced, int64_t min_parts,
                   tsr__part_t **parts, int64_t *n_parts);

#endif
