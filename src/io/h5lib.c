/*
 * h5lib.c — libhdf5 loaded at first use (see h5lib.h).
 *
 * Lock order: h5_lock only; nothing else is taken while it is held.
 */
#include "io/h5lib.h"

#include "core/core.h"
#include "platform/os.h"

/* The build passes the SONAME and the file of the libhdf5 it found; then
 * the usual names of HDF5 1.10 (SONAME 103), serial build first. */
#ifndef TSR_HDF5_SONAME
#define TSR_HDF5_SONAME ""
#endif
#ifndef TSR_HDF5_PATH
#define TSR_HDF5_PATH ""
#endif

tsr__h5_api_t tsr__h5;

/* Written once by h5_load (under h5_once), read-only afterwards: either
 * h5_ok is set and tsr__h5 is complete, or h5_err says why not. */
static bool h5_ok;
static char h5_err[400];
static tsr__once_t h5_once = TSR__ONCE_INIT;
static tsr__mutex_t h5_lock; /* serialises the engine's calls into libhdf5 */

static void h5_load(void)
{
    static const char *const names[] = {TSR_HDF5_SONAME,
                                        TSR_HDF5_PATH,
                                        "libhdf5_serial.so.103",
                                        "libhdf5.so.103",
                                        "libhdf5_serial.so",
                                        "libhdf5.so",
                                        NULL};
    tsr__h5_api_t api = {0};
    unsigned major = 0, minor = 0, release = 0;
    const char *name = NULL;
    char why[300];
    void *lib, *sym;

    if (tsr__mutex_init(&h5_lock) != 0) {
        snprintf(h5_err, sizeof h5_err, "cannot create a lock");
        return;
    }
    lib = tsr__dl_open(names, why, sizeof why);
    if (lib == NULL) {
        snprintf(h5_err, sizeof h5_err, "libhdf5 could not be loaded: %s", why);
        return;
    }
#define H5_RESOLVE(fn)                                \
    if ((sym = tsr__dl_sym(lib, name = #fn)) == NULL) \
        goto missing;                                 \
    api.fn = (__typeof__(api.fn))sym;
    TSR__H5_FUNCS(H5_RESOLVE)
#undef H5_RESOLVE
#define H5_RESOLVE(t)                                     \
    if ((sym = tsr__dl_var(lib, name = #t "_g")) == NULL) \
        goto missing;                                     \
    api.t##_g = sym;
    TSR__H5_NATIVES(H5_RESOLVE)
#undef H5_RESOLVE

    /* What H5check() would do, without its abort(): the same series as the
     * headers (releases of a series share the ABI).  H5open() also sets the
     * globals behind the type macros. */
    if (api.H5open() < 0 || api.H5get_libversion(&major, &minor, &release) < 0) {
        snprintf(h5_err, sizeof h5_err, "libhdf5 failed to initialise");
        return;
    }
    if (major != H5_VERS_MAJOR || minor != H5_VERS_MINOR) {
        snprintf(h5_err, sizeof h5_err,
                 "the libhdf5 found (%u.%u.%u) is not the %d.%d series Tessera was built for",
                 major, minor, release, H5_VERS_MAJOR, H5_VERS_MINOR);
        return;
    }
    tsr__h5 = api;
    h5_ok = true;
    return;

missing:
    snprintf(h5_err, sizeof h5_err, "the libhdf5 loaded has no symbol %s", name);
}

int tsr__h5_load(char *err, size_t errlen)
{
    tsr__once(&h5_once, h5_load);
    if (!h5_ok)
        return tsr__seterr(err, errlen, TSR_EUNSUPPORTED, "%s", h5_err);
    return 0;
}

void tsr__h5_enter(tsr__h5_scope_t *s)
{
    tsr__mutex_lock(&h5_lock);
    s->quiet = tsr__h5.H5Eget_auto2(H5E_DEFAULT, &s->func, &s->data) >= 0 &&
               tsr__h5.H5Eset_auto2(H5E_DEFAULT, NULL, NULL) >= 0;
}

void tsr__h5_leave(tsr__h5_scope_t *s)
{
    tsr__h5.H5Eclear2(H5E_DEFAULT);
    if (s->quiet)
        tsr__h5.H5Eset_auto2(H5E_DEFAULT, s->func, s->data);
    s->quiet = false;
    tsr__mutex_unlock(&h5_lock);
}

typedef struct walk {
    char *buf;
    size_t n;
} walk_t;

/* H5Ewalk2 callback: keep the description of the innermost error. */
static herr_t walk_first(unsigned n, const H5E_error2_t *e, void *data)
{
    walk_t *w = data;

    if (n == 0 && e->desc != NULL)
        snprintf(w->buf, w->n, "%s", e->desc);
    return 0;
}

void tsr__h5_error(char *buf, size_t n)
{
    walk_t w = {buf, n};

    if (buf == NULL || n == 0) {
        tsr__h5.H5Eclear2(H5E_DEFAULT);
        return;
    }
    buf[0] = '\0';
    tsr__h5.H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, walk_first, &w);
    tsr__h5.H5Eclear2(H5E_DEFAULT);
}
