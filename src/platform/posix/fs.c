/*
 * fs.c — POSIX implementation of the file-system calls of platform.h:
 * recursive directory creation, atomic replacing rename and directory
 * listing.
 *
 * tsr__mkdir_p walks the path one component at a time in a fixed-size copy
 * (PATH_MAX), so it allocates nothing; a component that already exists is
 * accepted only if it is a directory.
 */
#include "platform/os.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#ifndef PATH_MAX
#define PATH_MAX 4096
#endif

/* mkdir one directory; an existing directory is fine. */
static int mkdir_one(const char *dir)
{
    struct stat st;

    if (mkdir(dir, 0777) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int tsr__mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t len;

    if (path == NULL || path[0] == '\0') {
        errno = ENOENT;
        return -1;
    }
    len = strlen(path);
    if (len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = '\0';

    /* Create each prefix that ends just before a '/', then the whole path.
     * A leading '/' (root) is skipped. */
    for (size_t i = 1; i < len; i++) {
        if (buf[i] != '/' || buf[i - 1] == '/')
            continue;
        buf[i] = '\0';
        if (mkdir_one(buf) != 0)
            return -1;
        buf[i] = '/';
    }
    return mkdir_one(buf);
}

int tsr__rename_replace(const char *from, const char *to)
{
    /* POSIX rename() replaces the target atomically. */
    return rename(from, to);
}

bool tsr__is_dir(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int tsr__dir_each(const char *dir, int (*fn)(void *arg, const char *name), void *arg)
{
    DIR *d = opendir(dir && *dir ? dir : ".");
    if (!d)
        return -1;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        rc = fn(arg, e->d_name);
    }
    closedir(d);
    return rc;
}

bool tsr__path_is_file(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
