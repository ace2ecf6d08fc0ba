/*
 * tiling.c — how a run cuts its data: partitions (the unit of scheduling)
 * and tiles (the unit of processing).
 *
 * A tile is depth frames × a band of whole rows of the first sig dimension,
 * so that its sig part is contiguous in memory and in the file.  It is sized
 * to the per-worker cache budget: small frames get deep tiles of whole
 * frames, large frames get one frame (or the format's base depth) cut into
 * row bands.  UDF preferences for depth and the format's base shape are
 * honoured: sizes from the budget round down to their multiples (never
 * below one unit), preferred depths round up.
 */
#include "core/tiling.h"

/* Budget-derived sizes round down to a multiple of m (but at least one
 * unit: the format cannot deliver less); a UDF's preferred depth rounds up,
 * since the UDF asked for at least that many frames. */
static int64_t round_down(int64_t v, int64_t m)
{
    if (v < 1)
        v = 1;
    if (m <= 1)
        return v;
    int64_t r = v / m * m;
    return r < m ? m : r;
}

static int64_t round_up(int64_t v, int64_t m)
{
    if (v < 1)
        v = 1;
    return m <= 1 ? v : (v + m - 1) / m * m;
}

void tsr__tiling_negotiate(const tsr__tiling_in_t *in, tsr__tiling_t *out)
{
    int64_t sig_size = tsr_shape_size(&in->sig);
    int64_t rows_total = in->sig.dims[0];
    int64_t row_bytes = (sig_size / rows_total) * (int64_t)in->elem_bytes;
    int64_t frame_bytes = row_bytes * rows_total;
    int64_t budget = in->budget > 0 ? in->budget : 1 << 20;
    if (in->full_frames || frame_bytes <= budget) {
        out->depth = in->pref_depth > 0 ? round_up(in->pref_depth, in->base_depth)
                                        : round_down(budget / frame_bytes, in->base_depth);
        out->rows = rows_total;
        return;
    }
    int64_t depth = round_up(in->pref_depth > 0 ? in->pref_depth : 1, in->base_depth);
    int64_t rows = round_down(budget / (row_bytes * depth), in->base_rows);
    out->depth = depth;
    out->rows = rows > rows_total ? rows_total : rows;
}

int tsr__partition(tsr_ctx_t *ctx, int64_t nav_size, const int64_t *sel, int64_t n_sel,
                   int64_t frame_bytes, int64_t part_bytes, int64_t forced, int64_t min_parts,
                   tsr__part_t **parts, int64_t *n_parts)
{
    int64_t n;
    if (forced > 0) {
        n = forced;
    } else {
        double total = (double)n_sel * (double)frame_bytes;
        n = (int64_t)(total / (double)(part_bytes > 0 ? part_bytes : 1)) + 1;
        /* enough partitions to keep every worker busy and to show progress,
         * but not so many that tiny partitions dominate (>= 8 frames) */
        int64_t by_frames = n_sel / 8;
        int64_t want = min_parts < by_frames ? min_parts : by_frames;
        if (n < want)
            n = want;
    }
    if (n > n_sel)
        n = n_sel;
    if (n < 1)
        n = 1;
    tsr__part_t *p = tsr__calloc(ctx, (size_t)n, sizeof *p);
    if (!p)
        return TSR_ENOMEM;
    int64_t prev_end = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t r0 = n_sel * k / n, r1 = n_sel * (k + 1) / n;
        p[k].row_start = r0;
        p[k].rows = r1 - r0;
        p[k].nav_start = prev_end;
        if (k == n - 1 || r1 == 0)
            p[k].nav_end = k == n - 1 ? nav_size : prev_end;
        else
            p[k].nav_end = (sel ? sel[r1 - 1] : r1 - 1) + 1;
        prev_end = p[k].nav_end;
    }
    *parts = p;
    *n_parts = n;
    return 0;
}
