/*
 * backend.c — the I/O backends behind the strided-frame reader.
 *
 *   pread   one copy from the page cache into the worker's buffer (default
 *           while the data fit in memory: hot-cache reads are copies anyway)
 *   mmap    the file mapped once; tiles copy from the mapping, or point
 *           into it when no conversion is needed (zero copy)
 *   direct  O_DIRECT reads through an aligned bounce buffer: no page cache,
 *           for data far larger than RAM (no eviction storms, no double
 *           buffering); falls back to pread where unsupported (tmpfs)
 *   uring   io_uring reads with one tile of read-ahead per worker, on the
 *           O_DIRECT descriptor where possible: the next tile's read is in
 *           flight while the current one is processed
 *
 * TSR_IO_AUTO picks, for datasets up to half the physical memory (those the
 * page cache can hold), mmap when the run reads most of the frames (1.4-2x
 * pread on the reference machine) and pread when it reads a few (mapping
 * costs more than copying them); above that, uring (else direct).  See
 * docs/performance.md for the measurements.  All
 * paths check the range against the file size, so truncated files give
 * TSR_ECORRUPT.
 */
#include "io/dataset.h"

static int resolve(const tsr_dataset_t *ds, int b, bool most)
{
    if (b == TSR_IO_AUTO) {
        int64_t bytes = tsr_shape_size(&ds->nav) * tsr_shape_size(&ds->sig) *
                        (int64_t)tsr_dtype_size(ds->dtype);
        b = bytes > tsr__phys_mem() / 2 ? TSR_IO_URING : most ? TSR_IO_MMAP : TSR_IO_PREAD;
    }
    if (b == TSR_IO_MMAP && !(ds->fmt->caps & TSR_CAP_MMAP))
        b = TSR_IO_PREAD;
    return b;
}

void tsr__io_init(tsr__io_t *io, tsr_ctx_t *ctx, const tsr_dataset_t *ds)
{
    tsr__io_init_for(io, ctx, ds, false);
}

void tsr__io_init_for(tsr__io_t *io, tsr_ctx_t *ctx, const tsr_dataset_t *ds, bool most)
{
    memset(io, 0, sizeof *io);
    io->ctx = ctx;
    io->backend = resolve(ds, (int)ctx->io_backend, most);
    if (io->backend == TSR_IO_URING) {
        io->aio = tsr__malloc_aligned(ctx, tsr__aio_size());
        if (!io->aio || !tsr__aio_init(io->aio)) {
            tsr__free_aligned(ctx, io->aio);
            io->aio = NULL;
            io->backend = TSR_IO_DIRECT; /* io_uring refused: read synchronously */
        }
    }
}

void tsr__io_release(tsr__io_t *io)
{
    if (io->lent)
        tsr__map_drop(io->lent, io->lent_n);
    io->lent = NULL;
    io->lent_n = 0;
}

/* Mapped bytes this worker has read and not dropped yet: up to this much
 * before the range is dropped.  Each drop costs a TLB shootdown on every
 * core running the process, whatever its size: dropping every 4 MiB made
 * 2-thread mmap runs 27 % slower, every 64 MiB 3 % (docs/performance.md),
 * for a peak RSS of 64 MiB per worker whatever the file size. */
#define DROP_BYTES ((size_t)64 << 20)

void tsr__io_note_mapped(tsr__io_t *io, int file, const void *p, size_t n)
{
    const unsigned char *a = p, *l = io->lent;
    /* only ever within one file's mapping: a range across mappings could
     * take in the process's own memory, which MADV_DONTNEED would zero */
    if (l && file == io->lent_file && a >= l && a <= l + io->lent_n + DROP_BYTES) {
        /* reading forward: drop what lies before this range once it is big */
        if ((size_t)(a - l) >= DROP_BYTES) {
            tsr__map_drop(l, (size_t)(a - l));
            io->lent_n -= io->lent_n < (size_t)(a - l) ? io->lent_n : (size_t)(a - l);
            io->lent = l = a;
        }
        size_t end = (size_t)(a - l) + n;
        io->lent_n = end > io->lent_n ? end : io->lent_n;
        return;
    }
    tsr__io_release(io);
    io->lent = p;
    io->lent_n = n;
    io->lent_file = file;
}

void tsr__io_destroy(tsr__io_t *io)
{
    tsr__io_release(io);
    if (io->fmt_scratch && io->fmt_scratch_free)
        io->fmt_scratch_free(io);
    if (io->aio) {
        tsr__aio_destroy(io->aio);
        tsr__free_aligned(io->ctx, io->aio);
    }
    tsr__free_aligned(io->ctx, io->scratch);
    tsr__free_aligned(io->ctx, io->bounce);
    memset(io, 0, sizeof *io);
}

static int reserve(tsr__io_t *io, void **buf, size_t *cap, size_t n)
{
    if (n <= *cap)
        return 0;
    tsr__free_aligned(io->ctx, *buf);
    /* page-aligned for O_DIRECT: over-allocate and align by hand */
    *buf = tsr__malloc_aligned(io->ctx, n);
    *cap = *buf ? n : 0;
    return *buf ? 0 : TSR_ENOMEM;
}

int tsr__io_reserve(tsr__io_t *io, size_t n)
{
    return reserve(io, &io->scratch, &io->cap, n);
}

/* ---- mmap -------------------------------------------------------------- */

static const void *get_map(const tsr_dataset_t *ds, int file)
{
    tsr_dataset_t *mds = (tsr_dataset_t *)ds; /* the map cache is internal state */
    tsr__mutex_lock(&mds->map_lock);
    if (!mds->maps[file])
        mds->maps[file] = tsr__file_map(&ds->files[file]);
    void *p = mds->maps[file];
    tsr__mutex_unlock(&mds->map_lock);
    return p;
}

/* Touching a mapping beyond the end of a file that shrank after it was
 * opened raises SIGBUS, so the current size is checked first (one fstat per
 * tile; a truncation racing with the copy itself is not caught). */
int tsr__io_map(const tsr_dataset_t *ds, int file, int64_t off, size_t n, const unsigned char **out,
                char *err, size_t errlen)
{
    const unsigned char *m = get_map(ds, file);
    *out = NULL;
    if (!m)
        return 0;
    int64_t now = tsr__file_current_size(&ds->files[file]);
    if (now < off + (int64_t)n)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: the file shrank to %lld bytes while open (was it truncated?)",
                           ds->file_paths[file], (long long)now);
    *out = m + off;
    return 0;
}

/* ---- O_DIRECT ---------------------------------------------------------- */

/* The O_DIRECT descriptor of a file, opened on first use; -1 if the file
 * system does not support it. */
static int direct_fd(const tsr_dataset_t *ds, int file, size_t *align)
{
    tsr_dataset_t *mds = (tsr_dataset_t *)ds;
    tsr__mutex_lock(&mds->map_lock);
    if (mds->dfds[file] == -2)
        mds->dfds[file] = tsr__fd_open_direct(ds->file_paths[file], &mds->dalign[file]);
    int fd = mds->dfds[file];
    *align = mds->dalign[file];
    tsr__mutex_unlock(&mds->map_lock);
    return fd;
}

/* The aligned range covering [off, off+n): start, length, and the bytes of
 * alignment before off. */
static void aligned_range(int64_t off, size_t n, size_t align, int64_t *start, size_t *len,
                          size_t *skip)
{
    *start = off / (int64_t)align * (int64_t)align;
    *skip = (size_t)(off - *start);
    *len = (*skip + n + align - 1) / align * align;
}

static int bounce_for(tsr__io_t *io, size_t len, size_t align, unsigned char **out)
{
    int rc = reserve(io, &io->bounce, &io->bounce_cap, len + align);
    if (rc)
        return rc;
    uintptr_t p = ((uintptr_t)io->bounce + align - 1) / align * align;
    *out = (unsigned char *)p;
    return 0;
}

static int fetch_direct(const tsr_dataset_t *ds, tsr__io_t *io, int file, int64_t off, size_t n,
                        void *dst, bool *done)
{
    size_t align;
    int fd = direct_fd(ds, file, &align);
    *done = false;
    if (fd < 0)
        return 0;
    int64_t start;
    size_t len, skip;
    aligned_range(off, n, align, &start, &len, &skip);
    unsigned char *b;
    int rc = bounce_for(io, len, align, &b);
    if (rc)
        return rc;
    int64_t got = tsr__fd_pread(fd, b, len, start);
    if (got < 0)
        return (int)got;
    if (got < (int64_t)(skip + n))
        return TSR_ECORRUPT;
    memcpy(dst, b + skip, n);
    *done = true;
    return 0;
}

/* ---- read-ahead (io_uring) --------------------------------------------- */

static void ahead_drop(tsr__io_t *io)
{
    if (io->ahead.active) {
        tsr__aio_wait(io->aio);
        io->ahead.active = false;
    }
}

void tsr__io_read_ahead(const tsr_dataset_t *ds, tsr__io_t *io, int file, int64_t off, size_t n)
{
    if (io->backend != TSR_IO_URING || !io->aio)
        return;
    ahead_drop(io);
    const tsr__file_t *f = &ds->files[file];
    if (off < 0 || (int64_t)n > f->size - off || n > (1u << 30))
        return;
    size_t align;
    int fd = direct_fd(ds, file, &align);
    int64_t start = off;
    size_t len = n, skip = 0;
    if (fd >= 0) {
        aligned_range(off, n, align, &start, &len, &skip);
    } else {
        fd = f->fd;
        align = 64;
    }
    unsigned char *b;
    if (bounce_for(io, len, align, &b) || tsr__aio_read(io->aio, fd, b, len, start))
        return;
    io->ahead.active = true;
    io->ahead.file = file;
    io->ahead.off = off;
    io->ahead.n = n;
    io->ahead.skip = skip;
    io->ahead.buf = b;
}

static bool take_ahead(tsr__io_t *io, int file, int64_t off, size_t n, void *dst)
{
    if (!io->ahead.active)
        return false;
    bool match = io->ahead.file == file && io->ahead.off == off && io->ahead.n == n;
    int64_t got = tsr__aio_wait(io->aio);
    io->ahead.active = false;
    if (!match || got < (int64_t)(io->ahead.skip + n))
        return false; /* not what was asked, or short: read synchronously */
    memcpy(dst, (const unsigned char *)io->ahead.buf + io->ahead.skip, n);
    return true;
}

/* ---- fetch ------------------------------------------------------------- */

int tsr__io_fetch(const tsr_dataset_t *ds, tsr__io_t *io, int file, int64_t off, size_t n,
                  void *dst, char *err, size_t errlen)
{
    const tsr__file_t *f = &ds->files[file];
    int rc = 0;
    if (off < 0 || off > f->size || (int64_t)n > f->size - off)
        return tsr__seterr(err, errlen, TSR_ECORRUPT,
                           "%s: read of %zu bytes at offset %lld is past the end of the file "
                           "(%lld bytes; was it truncated?)",
                           ds->file_paths[file], n, (long long)off, (long long)f->size);
    switch (io->backend) {
    case TSR_IO_MMAP: {
        const unsigned char *m;
        if ((rc = tsr__io_map(ds, file, off, n, &m, err, errlen)))
            return rc;
        if (m) {
            memcpy(dst, m, n);
            tsr__io_note_mapped(io, file, m, n);
            return 0;
        }
        break;
    }
    case TSR_IO_URING:
        if (take_ahead(io, file, off, n, dst))
            return 0;
        /* otherwise a synchronous read of this range, as direct */
        __attribute__((fallthrough));
    case TSR_IO_DIRECT: {
        bool done;
        rc = fetch_direct(ds, io, file, off, n, dst, &done);
        if (rc == 0 && done)
            return 0;
        if (rc)
            return tsr__seterr(err, errlen, rc,
                               "%s: unbuffered read of %zu bytes at offset %lld "
                               "failed%s",
                               ds->file_paths[file], n, (long long)off,
                               rc == TSR_ECORRUPT ? " (file shorter than expected)" : "");
        break; /* no O_DIRECT here: pread */
    }
    default: break;
    }
    rc = tsr__file_pread(f, dst, n, off);
    if (rc)
        return tsr__seterr(err, errlen, rc, "%s: read of %zu bytes at offset %lld failed%s",
                           ds->file_paths[file], n, (long long)off,
                           rc == TSR_ECORRUPT ? " (file shorter than expected)" : "");
    return 0;
}
