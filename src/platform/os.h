/*
 * os.h — the operating-system services the engine needs, behind one small
 * interface: CPU count, monotonic clock, threads and locks, and read-only
 * file access (open, size, pread, mmap).  src/platform/posix implements it
 * for Linux and macOS; a Windows port adds src/platform/win.
 */
#ifndef TSR_PLATFORM_OS_H
#define TSR_PLATFORM_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

int64_t tsr__cpu_count(void);
/* Physical memory in bytes (a large value if unknown). */
int64_t tsr__phys_mem(void);
/* Monotonic time in seconds. */
double tsr__now(void);

/* ---- threads (thin wrappers so a port swaps one file) ------------------ */
typedef pthread_t tsr__thread_t;
typedef pthread_mutex_t tsr__mutex_t;
typedef pthread_cond_t tsr__cond_t;

int tsr__thread_create(tsr__thread_t *t, void *(*fn)(void *), void *arg);
void tsr__thread_join(tsr__thread_t t);
int tsr__mutex_init(tsr__mutex_t *m);
void tsr__mutex_destroy(tsr__mutex_t *m);
void tsr__mutex_lock(tsr__mutex_t *m);
void tsr__mutex_unlock(tsr__mutex_t *m);
int tsr__cond_init(tsr__cond_t *c);
void tsr__cond_destroy(tsr__cond_t *c);
void tsr__cond_wait(tsr__cond_t *c, tsr__mutex_t *m);
/* Returns false on timeout. */
bool tsr__cond_timedwait(tsr__cond_t *c, tsr__mutex_t *m, int timeout_ms);
void tsr__cond_broadcast(tsr__cond_t *c);

/* ---- files ------------------------------------------------------------- */
typedef struct tsr__file {
    int fd;
    int64_t size;
} tsr__file_t;

/* Open read-only; on failure return -errno-like TSR_EIO/TSR_ENOTFOUND and
 * fill err with the system's reason. */
int tsr__file_open(tsr__file_t *f, const char *path, char *err, size_t errlen);
void tsr__file_close(tsr__file_t *f);
/* Read exactly n bytes at off (retrying short reads); TSR_EIO on error,
 * TSR_ECORRUPT if the file ends first. */
int tsr__file_pread(const tsr__file_t *f, void *buf, size_t n, int64_t off);
/* The file's size now (it may have shrunk since it was opened); -1 on
 * error. */
int64_t tsr__file_current_size(const tsr__file_t *f);
/* Map the whole file read-only (NULL on failure); unmap. */
void *tsr__file_map(const tsr__file_t *f);
void tsr__file_unmap(void *p, int64_t size);
/* Let go of the pages of a read-only file mapping that hold [p, p+n)
 * (whole pages, so a neighbour's first or last page too): they leave the
 * process (its RSS) but stay in the page cache, and touching them again
 * maps them again, with the same data.  A hint: nothing happens where
 * unsupported. */
void tsr__map_drop(const void *p, size_t n);
/* Tell the kernel we will read [off, off+n) soon / sequentially. */
void tsr__file_advise_sequential(const tsr__file_t *f);
/* Read up to n bytes from the start of a file at path (for probing).
 * Returns bytes read or a negative code. */
int64_t tsr__file_head(const char *path, void *buf, size_t n);

/* ---- unbuffered and asynchronous reads -------------------------------- */

/* Open path for O_DIRECT reads (no page cache).  Returns an fd, or -1 where
 * the system or the file system does not support it; *align receives the
 * alignment that offsets, lengths and buffers need. */
int tsr__fd_open_direct(const char *path, size_t *align);
void tsr__fd_close(int fd);
/* Read up to n bytes at off into buf, retrying short reads until EOF;
 * returns the bytes read or a negative code. */
int64_t tsr__fd_pread(int fd, void *buf, size_t n, int64_t off);

/* Asynchronous reads with one request in flight (io_uring on Linux; the
 * storage is the caller's, tsr__aio_size() bytes, 64-byte aligned).
 * tsr__aio_init returns false where the kernel refuses or the build lacks
 * io_uring: callers then fall back to synchronous reads. */
size_t tsr__aio_size(void);
bool tsr__aio_init(void *aio);
void tsr__aio_destroy(void *aio);
/* Queue a read; 0 or a negative code. */
int tsr__aio_read(void *aio, int fd, void *buf, size_t n, int64_t off);
/* Wait for the queued read; bytes read, or a negative code. */
int64_t tsr__aio_wait(void *aio);

/* ---- file system (posix/fs.c): 0 or -1 with errno, like the calls ---- */

/* Create the directory path and any missing parents, like `mkdir -p`.
 * Trailing '/' are ignored; an existing directory is success. */
int tsr__mkdir_p(const char *path);
/* Rename from to to, replacing to atomically where the system allows. */
int tsr__rename_replace(const char *from, const char *to);
/* Call fn(arg, name) for each entry of directory dir except "." and "..",
 * in no particular order, until fn returns nonzero; that value is returned.
 * Returns 0 after the last entry, or -1 with errno if dir cannot be read.
 * (For readers whose data span files named by a pattern.) */
int tsr__dir_each(const char *dir, int (*fn)(void *arg, const char *name), void *arg);
/* Whether path names an existing regular file (following links). */
bool tsr__path_is_file(const char *path);
/* Whether path names a directory (following symbolic links). */
bool tsr__is_dir(const char *path);

/* ==== run-time library loading (posix/dl.c) ============================ */
/* Used to open optional dependencies (libhdf5, libtiff) on first use
 * instead of linking them, so that runs which never write those files do
 * not pay for loading them at process start. */

/* Open the first library of the NULL-terminated list candidates that loads
 * (names are searched as the dynamic linker does; a name with a '/' is a
 * path; empty names are skipped).  Its symbols stay private to it (they
 * resolve nothing else), and a library already in the process is shared,
 * not loaded again.  Returns a handle that is never closed, or NULL with the
 * system's reason for the first candidate, and the other names tried, in
 * err (which may be NULL).  Thread-safe. */
void *tsr__dl_open(const char *const *candidates, char *err, size_t errlen);
/* The address of symbol name in lib, or NULL if it has none.  Thread-safe. */
void *tsr__dl_sym(void *lib, const char *name);
/* The address of lib's variable name as lib's own code uses it, or NULL if
 * lib has none: not always lib's definition, since a program linked against
 * lib that reads the variable holds its own copy, which lib then uses.
 * Thread-safe. */
void *tsr__dl_var(void *lib, const char *name);

/* Run fn exactly once per once flag, whichever thread gets there first;
 * the others wait until it has returned. */
typedef pthread_once_t tsr__once_t;
#define TSR__ONCE_INIT PTHREAD_ONCE_INIT
void tsr__once(tsr__once_t *once, void (*fn)(void));
/* ==== end of run-time library loading ================================== */

#endif
