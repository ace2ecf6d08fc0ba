/*
 * executor.h — executors run the tasks of a job.  An executor is a small
 * vtable (submit, wait, cancel, free); only executors create threads.
 *
 * A job is a number of tasks plus callbacks: worker_init / worker_done run on
 * each worker thread around its tasks (per-worker state is allocated on the
 * worker), run_task runs one task.  Tasks are handed out dynamically, so a
 * slow partition never holds up the others.  A task that fails stops the
 * hand-out; wait returns the first error.
 */
#ifndef TSR_EXEC_EXECUTOR_H
#define TSR_EXEC_EXECUTOR_H

#include "core/core.h"

typedef struct tsr__job {
    int64_t n_tasks;
    void *ud;
    int (*worker_init)(void *ud, int worker, void **wstate);
    int (*run_task)(void *ud, void *wstate, int64_t task);
    void (*worker_done)(void *ud, void *wstate);
} tsr__job_t;

typedef struct tsr__exec tsr__exec_t;

typedef struct tsr__exec_vt {
    const char *name;
    /* Start running job (copied).  Inline: nothing happens until wait. */
    int (*submit)(tsr__exec_t *ex, const tsr__job_t *job);
    /* Wait up to timeout_ms (< 0: forever); TSR_EAGAIN if not done yet,
     * else the job's status. */
    int (*wait)(tsr__exec_t *ex, int timeout_ms);
    /* Stop handing out tasks.  Thread-safe. */
    void (*cancel)(tsr__exec_t *ex);
    void (*free)(tsr__exec_t *ex);
} tsr__exec_vt_t;

struct tsr__exec {
    const tsr__exec_vt_t *vt;
    tsr_ctx_t *ctx;
};

int tsr__exec_inline_new(tsr_ctx_t *ctx, tsr__exec_t **out);
int tsr__exec_threads_new(tsr_ctx_t *ctx, int n_workers, tsr__exec_t **out);

#endif
