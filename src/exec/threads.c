/*
 * threads.c — the local thread-pool executor: n workers take task numbers
 * from one atomic counter until none are left (dynamic assignment, no
 * stragglers).  The first failure is kept and stops the hand-out.
 *
 * Lock order: only `lock`, which guards `finished`, `status` and the
 * condition variable.  `next` and `stop` are atomics.
 */
#include "exec/executor.h"
#include "platform/os.h"

typedef struct threads_exec threads_exec_t;

typedef struct {
    threads_exec_t *te;
    int index;
} worker_arg_t;

struct threads_exec {
    tsr__exec_t base;
    tsr__job_t job;
    int n_workers;
    tsr__thread_t *threads;
    worker_arg_t *args;
    int started;
    atomic_int_fast64_t next; /* atomic */
    atomic_bool stop;         /* atomic */
    tsr__mutex_t lock;
    tsr__cond_t cond;
    int finished; /* guarded by: lock */
    int status;   /* guarded by: lock */
    bool joined;
};

static void fail(threads_exec_t *te, int rc)
{
    tsr__mutex_lock(&te->lock);
    if (te->status == 0)
        te->status = rc;
    tsr__mutex_unlock(&te->lock);
    atomic_store(&te->stop, true);
}

static void *worker(void *p)
{
    worker_arg_t *a = p;
    threads_exec_t *te = a->te;
    void *ws = NULL;
    int rc = te->job.worker_init ? te->job.worker_init(te->job.ud, a->index, &ws) : 0;
    if (rc)
        fail(te, rc);
    while (rc == 0 && !atomic_load(&te->stop)) {
        int64_t t = atomic_fetch_add(&te->next, 1);
        if (t >= te->job.n_tasks)
            break;
        rc = te->job.run_task(te->job.ud, ws, t);
        if (rc)
            fail(te, rc);
    }
    if (te->job.worker_done)
        te->job.worker_done(te->job.ud, ws);
    tsr__mutex_lock(&te->lock);
    te->finished++;
    tsr__cond_broadcast(&te->cond);
    tsr__mutex_unlock(&te->lock);
    return NULL;
}

static int submit(tsr__exec_t *ex, const tsr__job_t *job)
{
    threads_exec_t *te = (threads_exec_t *)ex;
    if (te->started)
        return TSR_ESTATE;
    te->job = *job;
    int n = te->n_workers;
    if (job->n_tasks < n)
        n = job->n_tasks > 0 ? (int)job->n_tasks : 1;
    for (int i = 0; i < n; i++) {
        te->args[i] = (worker_arg_t){te, i};
        if (tsr__thread_create(&te->threads[i], worker, &te->args[i])) {
            fail(te, TSR_ENOMEM);
            break;
        }
        te->started++;
    }
    return te->started ? 0 : TSR_ENOMEM;
}

static int wait_threads(tsr__exec_t *ex, int timeout_ms)
{
    threads_exec_t *te = (threads_exec_t *)ex;
    tsr__mutex_lock(&te->lock);
    while (te->finished < te->started) {
        if (timeout_ms < 0) {
            tsr__cond_wait(&te->cond, &te->lock);
        } else if (!tsr__cond_timedwait(&te->cond, &te->lock, timeout_ms)) {
            if (te->finished < te->started) {
                tsr__mutex_unlock(&te->lock);
                return TSR_EAGAIN;
            }
        }
    }
    int status = te->status;
    tsr__mutex_unlock(&te->lock);
    if (!te->joined) {
        for (int i = 0; i < te->started; i++)
            tsr__thread_join(te->threads[i]);
        te->joined = true;
    }
    return status;
}

static void cancel(tsr__exec_t *ex)
{
    atomic_store(&((threads_exec_t *)ex)->stop, true);
}

static void free_threads(tsr__exec_t *ex)
{
    threads_exec_t *te = (threads_exec_t *)ex;
    if (!te)
        return;
    if (te->started && !te->joined) {
        cancel(ex);
        wait_threads(ex, -1);
    }
    tsr__cond_destroy(&te->cond);
    tsr__mutex_destroy(&te->lock);
    tsr__free(ex->ctx, te->threads);
    tsr__free(ex->ctx, te->args);
    tsr__free(ex->ctx, te);
}

static const tsr__exec_vt_t vt = {"threads", submit, wait_threads, cancel, free_threads};

int tsr__exec_threads_new(tsr_ctx_t *ctx, int n_workers, tsr__exec_t **out)
{
    if (n_workers < 1)
        n_workers = 1;
    threads_exec_t *te = tsr__calloc(ctx, 1, sizeof *te);
    if (!te)
        return TSR_ENOMEM;
    te->base.vt = &vt;
    te->base.ctx = ctx;
    te->n_workers = n_workers;
    te->threads = tsr__calloc(ctx, (size_t)n_workers, sizeof *te->threads);
    te->args = tsr__calloc(ctx, (size_t)n_workers, sizeof *te->args);
    atomic_init(&te->next, 0);
    atomic_init(&te->stop, false);
    if (!te->threads || !te->args || tsr__mutex_init(&te->lock)) {
        tsr__free(ctx, te->threads);
        tsr__free(ctx, te->args);
        tsr__free(ctx, te);
        return TSR_ENOMEM;
    }
    if (tsr__cond_init(&te->cond)) {
        tsr__mutex_destroy(&te->lock);
        tsr__free(ctx, te->threads);
        tsr__free(ctx, te->args);
        tsr__free(ctx, te);
        return TSR_ENOMEM;
    }
    *out = &te->base;
    return 0;
}
