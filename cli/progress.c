/*
 * progress.c — the progress bar and Ctrl-C handling of `tessera run`.
 *
 * The main thread polls the run with tsr_run_wait_for() every 100 ms and
 * redraws the bar.  The inline executor does its work inside that call and
 * never returns early, so cancellation cannot wait for the main thread: a
 * small watcher thread sleeps on a semaphore that the SIGINT handler posts
 * (sem_post is async-signal-safe) and calls tsr_run_cancel() (thread-safe),
 * which works the same for every executor.  When the run ends the main
 * thread posts the semaphore too, so the watcher never delays the exit.
 * g_sigint and g_wake are the CLI's only mutable globals.
 */
#include "progress.h"

#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define POLL_MS 100

static atomic_int g_sigint; /* set by the SIGINT handler */
static sem_t g_wake;        /* posted by the handler and at the end of a run */

static void on_sigint(int sig)
{
    (void)sig;
    if (atomic_exchange(&g_sigint, 1))
        _exit(130); /* second Ctrl-C: the user insists */
    sem_post(&g_wake);
}

void cli_sigint_install(void)
{
    sem_init(&g_wake, 0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
}

/* ---- the watcher thread ------------------------------------------------ */

typedef struct watcher {
    tsr_run_t *run;
    atomic_bool stop; /* atomic: set by the main thread when the run ended */
} watcher_t;

static void *watch(void *arg)
{
    watcher_t *w = arg;
    while (!atomic_load(&w->stop)) {
        if (atomic_load(&g_sigint)) {
            tsr_run_cancel(w->run);
            break;
        }
        while (sem_wait(&g_wake) != 0) /* EINTR: wait again */
            ;
    }
    return NULL;
}

/* ---- the bar ----------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* "1.2 GB/s" and the like, in decimal units. */
static void format_rate(double bytes_per_s, char *buf, size_t n)
{
    static const char *units[] = {"B/s", "kB/s", "MB/s", "GB/s", "TB/s"};
    int u = 0;
    while (bytes_per_s >= 1000.0 && u < 4) {
        bytes_per_s /= 1000.0;
        u++;
    }
    snprintf(buf, n, "%.1f %s", bytes_per_s, units[u]);
}

static void draw_bar(const tsr_run_t *run, int64_t frame_bytes, double t0)
{
    int64_t done = 0, total = 0;
    tsr_run_progress(run, &done, &total);
    double frac = total > 0 ? (double)done / (double)total : 0.0;
    if (frac > 1.0)
        frac = 1.0;
    int filled = (int)(frac * BAR_WIDTH);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < filled ? '=' : ' ';
    if (filled > 0 && filled < BAR_WIDTH)
        bar[filled - 1] = '>';
    bar[BAR_WIDTH] = '\0';
    double dt = now_s() - t0;
    char rate[32];
    format_rate(dt > 0 ? (double)done * (double)frame_bytes / dt : 0.0, rate, sizeof rate);
    fprintf(stderr, "\r[%s] %3d%% %lld/%lld frames  %s\033[K", bar, (int)(frac * 100.0),
            (long long)done, (long long)total, rate);
    fflush(stderr);
}

static void erase_bar(void)
{
    fputs("\r\033[K", stderr);
    fflush(stderr);
}

int cli_run_observe(tsr_run_t *run, bool show_bar, int64_t frame_bytes, bool *interrupted)
{
    watcher_t w = {.run = run};
    atomic_init(&w.stop, false);
    pthread_t tid;
    bool have_watcher = pthread_create(&tid, NULL, watch, &w) == 0;
    double t0 = now_s();
    int rc;
    if (show_bar)
        draw_bar(run, frame_bytes, t0);
    while ((rc = tsr_run_wait_for(run, POLL_MS)) == TSR_EAGAIN) {
        if (!have_watcher && atomic_load(&g_sigint))
            tsr_run_cancel(run);
        if (show_bar)
            draw_bar(run, frame_bytes, t0);
    }
    atomic_store(&w.stop, true);
    if (have_watcher) {
        sem_post(&g_wake);
        pthread_join(tid, NULL);
    }
    if (show_bar)
        erase_bar();
    *interrupted = atomic_load(&g_sigint) != 0;
    return rc;
}
