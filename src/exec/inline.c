/*
 * inline.c — the inline executor: every task runs on the thread that waits,
 * in order.  For debugging, profiling and embedding in programs that own
 * their threads.
 */
#include "exec/executor.h"

typedef struct {
    tsr__exec_t base;
    tsr__job_t job;
    bool submitted, done;
    int status;
    atomic_bool cancel; /* atomic */
} inline_exec_t;

static int submit(tsr__exec_t *ex, const tsr__job_t *job)
{
    inline_exec_t *ie = (inline_exec_t *)ex;
    if (ie->submitted)
        return TSR_ESTATE;
    ie->job = *job;
    ie->submitted = true;
    return 0;
}

static int wait_inline(tsr__exec_t *ex, int timeout_ms)
{
    (void)timeout_ms;
    inline_exec_t *ie = (inline_exec_t *)ex;
    if (!ie->submitted)
        return TSR_ESTATE;
    if (ie->done)
        return ie->status;
    void *ws = NULL;
    int rc = ie->job.worker_init ? ie->job.worker_init(ie->job.ud, 0, &ws) : 0;
    for (int64_t t = 0; rc == 0 && t < ie->job.n_tasks; t++) {
        if (atomic_load(&ie->cancel)) {
            rc = TSR_ECANCELED;
            break;
        }
        rc = ie->job.run_task(ie->job.ud, ws, t);
    }
    if (ie->job.worker_done)
        ie->job.worker_done(ie->job.ud, ws);
    ie->status = rc;
    ie->done = true;
    return rc;
}

static void cancel(tsr__exec_t *ex)
{
    atomic_store(&((inline_exec_t *)ex)->cancel, true);
}

static void free_inline(tsr__exec_t *ex)
{
    if (ex)
        tsr__free(ex->ctx, ex);
}

static const tsr__exec_vt_t vt = {"inline", submit, wait_inline, cancel, free_inline};

int tsr__exec_inline_new(tsr_ctx_t *ctx, tsr__exec_t **out)
{
    inline_exec_t *ie = tsr__calloc(ctx, 1, sizeof *ie);
    if (!ie)
        return TSR_ENOMEM;
    ie->base.vt = &vt;
    ie->base.ctx = ctx;
    atomic_init(&ie->cancel, false);
    *out = &ie->base;
    return 0;
}
