/*
 * task.h — the description of one task (a partition of a run) as a plain
 * value that can be sent to another process: dataset descriptor, partition
 * range, UDF names and parameters, the partition's ROI and the corrections.
 * Executors that leave the process (MPI, live) send it encoded to bytes.
 */
#ifndef TSR_EXEC_TASK_H
#define TSR_EXEC_TASK_H

#include "core/core.h"

typedef struct tsr__task {
    char *format;
    char *path;
    tsr_params_t *ds_params;
    int64_t nav_size, sig_size;
    int64_t part_start, part_end; /* flat nav range */
    int n_udfs;
    char **udf_names;
    tsr_params_t **udf_params;
    uint8_t *roi; /* part_end - part_start bytes, or NULL = all selected */
    float *dark, *gain;
    uint8_t *excluded; /* sig_size each, or NULL */
} tsr__task_t;

/* Describe partition p of a run.  TSR_EUNSUPPORTED (message on the run's
 * context) for memory datasets and UDFs that are not built in. */
int tsr__task_describe(tsr_run_t *run, int64_t p, tsr__task_t **out);
int64_t tsr__run_partition_count(const tsr_run_t *run);
void tsr__task_free(tsr_ctx_t *ctx, tsr__task_t *t);

/* Encode to a buffer allocated with tsr__malloc / decode with full bounds
 * checks (TSR_ECORRUPT with a message on ctx for malformed input). */
int tsr__task_encode(tsr_ctx_t *ctx, const tsr__task_t *t, uint8_t **buf, size_t *len);
int tsr__task_decode(tsr_ctx_t *ctx, const uint8_t *buf, size_t len, tsr__task_t **out);

/* Execute a task on its own, in this process: open the dataset, create the
 * UDFs and run them over the partition (inline).  The results hold the
 * partition's contribution: NAV buffers valid in the partition, SIG and
 * SINGLE buffers as merged over the partition only. */
int tsr__task_execute(tsr_ctx_t *ctx, const tsr__task_t *t, tsr_results_t **out);

#endif
