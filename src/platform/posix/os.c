/*
 * os.c — POSIX implementation of platform/os.h (Linux first; macOS should
 * only need the posix_fadvise guard).
 */
#include "platform/os.h"
#include "tessera.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int64_t tsr__cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int64_t)n : 1;
}

int64_t tsr__phys_mem(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (int64_t)pages * size : INT64_MAX;
}

double tsr__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int tsr__thread_create(tsr__thread_t *t, void *(*fn)(void *), void *arg)
{
    return pthread_create(t, NULL, fn, arg) ? TSR_ENOMEM : 0;
}
void tsr__thread_join(tsr__thread_t t)
{
    pthread_join(t, NULL);
}
int tsr__mutex_init(tsr__mutex_t *m)
{
    return pthread_mutex_init(m, NULL) ? TSR_ENOMEM : 0;
}
void tsr__mutex_destroy(tsr__mutex_t *m)
{
    pthread_mutex_destroy(m);
}
void tsr__mutex_lock(tsr__mutex_t *m)
{
    pthread_mutex_lock(m);
}
void tsr__mutex_unlock(tsr__mutex_t *m)
{
    pthread_mutex_unlock(m);
}
int tsr__cond_init(tsr__cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return rc ? TSR_ENOMEM : 0;
}
void tsr__cond_destroy(tsr__cond_t *c)
{
    pthread_cond_destroy(c);
}
void tsr__cond_wait(tsr__cond_t *c, tsr__mutex_t *m)
{
    pthread_cond_wait(c, m);
}
bool tsr__cond_timedwait(tsr__cond_t *c, tsr__mutex_t *m, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return pthread_cond_timedwait(c, m, &ts) != ETIMEDOUT;
}
void tsr__cond_broadcast(tsr__cond_t *c)
{
    pthread_cond_broadcast(c);
}

int tsr__file_open(tsr__file_t *f, const char *path, char *err, size_t errlen)
{
    f->fd = -1;
    f->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot open '%s': %s", path, strerror(e));
        return e == ENOENT ? TSR_ENOTFOUND : TSR_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "cannot stat '%s': %s", path, strerror(errno));
        close(fd);
        return TSR_EIO;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "'%s' is a directory, not a file", path);
        close(fd);
        return TSR_EIO;
    }
    f->fd = fd;
    f->size = (int64_t)st.st_size;
    return 0;
}

void tsr__file_close(tsr__file_t *f)
{
    if (f && f->fd >= 0) {
        close(f->fd);
        f->fd = -1;
    }
}

int tsr__file_pread(const tsr__file_t *f, void *buf, size_t n, int64_t off)
{
    unsigned char *p = buf;
    while (n > 0) {
        ssize_t r = pread(f->fd, p, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return TSR_EIO;
        }
        if (r == 0)
            return TSR_ECORRUPT;
        p += r;
        n -= (size_t)r;
        off += r;
    }
    return 0;
}

int64_t tsr__file_current_size(const tsr__file_t *f)
{
    struct stat st;
    return fstat(f->fd, &st) == 0 ? (int64_t)st.st_size : -1;
}

void *tsr__file_map(const tsr__file_t *f)
{
    if (f->size <= 0)
        return NULL;
    void *p = mmap(NULL, (size_t)f->size, PROT_READ, MAP_SHARED, f->fd, 0);
    if (p == MAP_FAILED)
        return NULL;
    madvise(p, (size_t)f->size, MADV_SEQUENTIAL);
    return p;
}

void tsr__file_unmap(void *p, int64_t size)
{
    if (p)
        munmap(p, (size_t)size);
}

void tsr__map_drop(const void *p, size_t n)
{
    static long page;
    if (!page)
        page = sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page - 1);
    uintptr_t b = ((uintptr_t)p + n + (uintptr_t)page - 1) & ~(uintptr_t)(page - 1);
    if (page > 0 && b > a)
        madvise((void *)a, b - a, MADV_DONTNEED);
}

void tsr__file_advise_sequential(const tsr__file_t *f)
{
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#else
    (void)f;
#endif
}

int64_t tsr__file_head(const char *path, void *buf, size_t n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? TSR_ENOTFOUND : TSR_EIO;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    return (int64_t)got;
}
