/*
 * dir.c — POSIX implementation of platform/dir.h: readdir over a directory
 * and stat for regular files.
 */
#include "platform/dir.h"

#include <dirent.h>
#include <string.h>
#include <sys/stat.h>

int tsr__dir_each(const char *dir, int (*fn)(void *user, const char *name), void *user)
{
    DIR *d = opendir(dir && *dir ? dir : ".");
    if (!d)
        return -1;
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rc = fn(user, e->d_name);
    }
    closedir(d);
    return rc;
}

bool tsr__path_is_file(const char *path)
{
    struct stat st;
    return path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
