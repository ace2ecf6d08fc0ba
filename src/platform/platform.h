/*
 * platform.h — the few file-system calls the engine needs beyond C11, each
 * behind a small function so that src/platform/posix/ and src/platform/win/
 * can implement it for their system (CMake compiles one of the two, as libuv
 * does).
 *
 * Convention: like the system calls they wrap, these return 0 on success or
 * -1 with errno set, so that the caller can name the failing path together
 * with strerror(errno) in its own message.  They keep no state and are
 * thread-safe.
 */
#ifndef TSR_PLATFORM_H
#define TSR_PLATFORM_H

/* Create the directory path and any missing parents, like `mkdir -p`
 * (permissions 0777 less the umask).  Trailing '/' are ignored.  An existing
 * directory is success; an existing non-directory fails with ENOTDIR or
 * EEXIST. */
int tsr__mkdir_p(const char *path);

/* Rename from to to, replacing to if it exists.  Where the system allows
 * (POSIX), the replacement is atomic: a reader sees the old file or the new
 * one, never a mix. */
int tsr__rename_replace(const char *from, const char *to);

#endif /* TSR_PLATFORM_H */
