/*
 * run.h — the internal structure of a run, shared by run.c (start, observe,
 * results) and task.c (what one partition's work is).
 */
#ifndef TSR_EXEC_RUN_H
#define TSR_EXEC_RUN_H

#include "core/corrections.h"
#include "core/tiling.h"
#include "exec/executor.h"
#include "io/dataset.h"
#include "platform/os.h"
#include "udf/udf.h"

struct tsr_run {
    tsr_ctx_t *ctx;
    tsr_dataset_t *ds;
    int n_udfs;
    tsr__udf_inst_t *insts;
    int64_t nav_size, sig_size;
    /* The flat pixel range the tiles cover: whole rows of the first sig
     * dimension, all of them unless every UDF reads fewer (sig_rows). */
    int64_t sig_lo, sig_hi;
    uint8_t *roi; /* effective selection, nav-sized; NULL = all */
    int64_t *sel; /* compressed row → flat nav index; NULL = identity */
    int64_t n_sel;
    tsr__corr_t corr;
    /* distinct tile dtypes */
    tsr_dtype_t dts[TSR_DTYPE_COUNT];
    int n_dts;
    bool partition_mode;
    bool sparse; /* tiles are lent as sparse rows (see run.c) */
    tsr__tiling_t tiling;
    tsr__part_t *parts;
    int64_t n_parts, max_part_rows;
    /* merged state */
    tsr__mutex_t lock;               /* guards: global, damage, status, errmsg */
    tsr__bufset_t *global;           /* per UDF; guarded by: lock */
    uint8_t *damage;                 /* guarded by: lock */
    int status;                      /* guarded by: lock */
    char errmsg[TSR__ERRMSG_MAX];    /* guarded by: lock */
    atomic_int_fast64_t frames_done; /* atomic */
    atomic_bool cancel;              /* atomic */
    tsr__exec_t *exec;
    bool ended;
    tsr_results_t *results;
};

#endif
