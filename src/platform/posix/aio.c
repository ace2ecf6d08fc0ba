/*
 * aio.c — unbuffered (O_DIRECT) and asynchronous (io_uring) reads for the
 * I/O backends of src/io/backend.c.  io_uring is compiled in when liburing
 * is found (TSR_HAVE_IO_URING) and probed at run time: a kernel that refuses
 * it (old, or io_uring disabled by sysctl or seccomp) makes tsr__aio_init
 * return false and the engine reads synchronously.
 */
#include "platform/os.h"
#include "tessera.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef TSR_HAVE_IO_URING
#include <liburing.h>
#endif

int tsr__fd_open_direct(const char *path, size_t *align)
{
#ifdef O_DIRECT
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0)
        return -1;
    struct stat st;
    size_t a = 4096;
    if (fstat(fd, &st) == 0 && st.st_blksize > 0 && (size_t)st.st_blksize > a)
        a = (size_t)st.st_blksize;
    *align = a;
    return fd;
#else
    (void)path;
    (void)align;
    return -1;
#endif
}

void tsr__fd_close(int fd)
{
    if (fd >= 0)
        close(fd);
}

int64_t tsr__fd_pread(int fd, void *buf, size_t n, int64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + (int64_t)got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return TSR_EIO;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

#ifdef TSR_HAVE_IO_URING

typedef struct {
    struct io_uring ring;
    bool pending;
} aio_t;

size_t tsr__aio_size(void)
{
    return sizeof(aio_t);
}

bool tsr__aio_init(void *p)
{
    aio_t *a = p;
    memset(a, 0, sizeof *a);
    return io_uring_queue_init(4, &a->ring, 0) == 0;
}

void tsr__aio_destroy(void *p)
{
    aio_t *a = p;
    if (a->pending)
        tsr__aio_wait(p);
    io_uring_queue_exit(&a->ring);
}

int tsr__aio_read(void *p, int fd, void *buf, size_t n, int64_t off)
{
    aio_t *a = p;
    if (a->pending)
        return TSR_ESTATE;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
    if (!sqe)
        return TSR_EIO;
    io_uring_prep_read(sqe, fd, buf, (unsigned)n, (uint64_t)off);
    if (io_uring_submit(&a->ring) < 1)
        return TSR_EIO;
    a->pending = true;
    return 0;
}

int64_t tsr__aio_wait(void *p)
{
    aio_t *a = p;
    if (!a->pending)
        return TSR_ESTATE;
    struct io_uring_cqe *cqe;
    int rc;
    do
        rc = io_uring_wait_cqe(&a->ring, &cqe);
    while (rc == -EINTR);
    a->pending = false;
    if (rc < 0)
        return TSR_EIO;
    int64_t res = cqe->res;
    io_uring_cqe_seen(&a->ring, cqe);
    return res < 0 ? TSR_EIO : res;
}

#else

size_t tsr__aio_size(void)
{
    return 64;
}
bool tsr__aio_init(void *p)
{
    (void)p;
    return false;
}
void tsr__aio_destroy(void *p)
{
    (void)p;
}
int tsr__aio_read(void *p, int fd, void *buf, size_t n, int64_t off)
{
    (void)p, (void)fd, (void)buf, (void)n, (void)off;
    return TSR_EUNSUPPORTED;
}
int64_t tsr__aio_wait(void *p)
{
    (void)p;
    return TSR_EUNSUPPORTED;
}

#endif
