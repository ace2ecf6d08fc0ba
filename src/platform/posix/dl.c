/*
 * dl.c — POSIX implementation of the run-time library loading of
 * platform/os.h (dlopen/dlsym), and of tsr__once.
 *
 * Optional dependencies that only some runs need (libhdf5 and libtiff for
 * .h5 and .tif outputs) are opened on first use rather than linked, because
 * loading them and everything they depend on costs more at process start
 * than a small run takes in all.  A library is opened with RTLD_NOW, so a
 * missing symbol of the library itself shows up here and not later as a
 * crash, and RTLD_LOCAL, so its symbols never interpose on anyone else's.
 * A library already in the process (a program that links it too) is found
 * by its name or file and shared, not loaded twice.  Nothing is ever
 * closed: the handle lives as long as the process.
 *
 * dlerror() is per thread in every system we target, so these functions
 * are thread-safe; making a load happen once is the caller's job
 * (tsr__once).
 */
#include "platform/os.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

/* Whether *c already appears before c in the list. */
static bool seen_before(const char *const *list, const char *const *c)
{
    for (; list != c; list++)
        if (strcmp(*list, *c) == 0)
            return true;
    return false;
}

void *tsr__dl_open(const char *const *candidates, char *err, size_t errlen)
{
    char first[256] = "", others[256] = "";
    size_t used = 0;
    int tried = 0;

    for (const char *const *c = candidates; c != NULL && *c != NULL; c++) {
        const char *why;
        void *lib;

        if ((*c)[0] == '\0' || seen_before(candidates, c))
            continue; /* a name the build did not know, or one tried */
        lib = dlopen(*c, RTLD_NOW | RTLD_LOCAL);
        if (lib != NULL)
            return lib;
        /* Keep the first reason, which concerns the library the build
         * linked against, and list the other names tried after it. */
        why = dlerror();
        if (tried == 0) {
            snprintf(first, sizeof first, "%s", why != NULL ? why : *c);
        } else if (used < sizeof others) {
            int k =
                snprintf(others + used, sizeof others - used, "%s%s", tried > 1 ? ", " : "", *c);
            used = k < 0 ? sizeof others : used + (size_t)k;
        }
        tried++;
    }
    if (err != NULL && errlen > 0) {
        if (tried == 0)
            snprintf(err, errlen, "no library name to try");
        else if (tried == 1)
            snprintf(err, errlen, "%s", first);
        else
            snprintf(err, errlen, "%s (also tried %s)", first, others);
    }
    return NULL;
}

void *tsr__dl_sym(void *lib, const char *name)
{
    return lib != NULL ? dlsym(lib, name) : NULL;
}

void *tsr__dl_var(void *lib, const char *name)
{
    void *own = tsr__dl_sym(lib, name), *global;

    if (own == NULL)
        return NULL;
    /* lib's own references to its variables are bound like every symbol:
     * the program's global scope first, then lib.  A program linked
     * against lib that reads one of them directly owns a copy of it (a
     * copy relocation) which lib then uses, and lib's original is never
     * written.  So take the one the global scope gives, if any. */
    global = dlsym(RTLD_DEFAULT, name);
    return global != NULL ? global : own;
}

void tsr__once(tsr__once_t *once, void (*fn)(void))
{
    pthread_once(once, fn);
}
