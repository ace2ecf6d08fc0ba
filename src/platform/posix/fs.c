/*
 * fs.c — POSIX implementation of the file-system calls of platform.h:
 * recursive directory creation and atomic replacing rename.
 *
 * tsr__mkdir_p walks the path one component at a time in a fixed-size copy
 * (PATH_MAX), so it allocates nothing; a component that already exists is
 * accepted only if it is a directory.  tsr__dir_each lists a directory
 * (readdir), asking stat only where the entry type is unknown.
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

int tsr__dir_each(const char *path, int (*fn)(void *ud, const char *name, bool is_dir), void *ud)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int rc = 0;
    struct dirent *e;
    char full[PATH_MAX];
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        bool is_dir = e->d_type == DT_DIR;
        if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
            int n = snprintf(full, sizeof full, "%s/%s", path, e->d_name);
            is_dir = n > 0 && (size_t)n < sizeof full && tsr__is_dir(full);
        }
        rc = fn(ud, e->d_name, is_dir);
    }
    closedir(d);
    return rc;
}
