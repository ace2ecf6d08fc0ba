/*
 * dir.h — directory listing and path tests, for readers whose datasets span
 * several files named after a pattern (e.g. MIB: default.hdr with
 * default1.mib, default2.mib, ...).  src/platform/posix/dir.c implements it.
 */
#ifndef TSR_PLATFORM_DIR_H
#define TSR_PLATFORM_DIR_H

#include <stdbool.h>

/* Call fn(user, name) for every entry of directory dir (not "." or ".."),
 * in no particular order, until fn returns non-zero.  Returns fn's non-zero
 * value, 0 when all were visited, or -1 if the directory cannot be read. */
int tsr__dir_each(const char *dir, int (*fn)(void *user, const char *name), void *user);

/* Whether path names an existing regular file (following links). */
bool tsr__path_is_file(const char *path);

#endif
