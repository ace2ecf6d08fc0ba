/*
 * ext.h — the internal header of the `tessera._tessera` CPython extension.
 *
 * The extension is a thin layer over the public C API (include/tessera.h),
 * built against Python's Limited API of 3.11 (Py_LIMITED_API = 0x030B0000),
 * so that one binary serves every CPython from 3.11 on and needs no numpy
 * headers: arrays cross the boundary through the buffer protocol
 * (BufferView objects), and numpy, loaded by the Python layer, wraps them
 * without a copy.
 *
 * Objects (one file each):
 *   Context   (module.c)   a tsr_ctx_t; options, datasets, runs, export
 *   Dataset   (module.c)   a tsr_dataset_t (from a file or a Python buffer)
 *   Run       (run.c)      a tsr_run_t with its UDFs; wait, snapshot, cancel
 *   Results   (run.c)      a tsr_results_t (a run's final one or a snapshot)
 *   BufferView(bufview.c)  exports engine memory through the buffer protocol
 * and the bridge that lets Python objects act as UDFs (pyudf.c).
 *
 * Ownership follows references: a Dataset, Run or Results holds a reference
 * to its Context, a Run to its Dataset and UDF objects, a Results to its Run
 * (final results) and a BufferView to whatever owns its memory.  The engine
 * object behind a Python object is freed only in its dealloc, so nothing is
 * freed while something made from it is still reachable.
 *
 * The GIL: every call into the engine that may wait for worker threads (run
 * start, wait, snapshot, free) releases it, and every callback from a worker
 * takes it (PyGILState_Ensure), so Python UDFs run on the engine's workers.
 */
#ifndef TSR_PY_EXT_H
#define TSR_PY_EXT_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdio.h>
#include <string.h>

#include "tessera.h"

/* ---- module state (one interpreter: plain statics) ---------------------- */

/* Types, created from specs at import. */
extern PyTypeObject *tsrpy_ContextType;
extern PyTypeObject *tsrpy_DatasetType;
extern PyTypeObject *tsrpy_RunType;
extern PyTypeObject *tsrpy_ResultsType;
extern PyTypeObject *tsrpy_BufferViewType;

/* A Python callable set by the pure-Python layer: error_factory(message,
 * code, name) -> exception instance.  NULL until set: RuntimeError then. */
extern PyObject *tsrpy_error_factory;

/* Raise the exception for an engine error code with a message. Returns NULL. */
PyObject *tsrpy_raise(int code, const char *msg);

/* ---- Context and Dataset (module.c) ------------------------------------- */

typedef struct {
    PyObject_HEAD tsr_ctx_t *ctx;
    int closed;
} tsrpy_Context;

typedef struct {
    PyObject_HEAD tsrpy_Context *ctx; /* strong */
    tsr_dataset_t *ds;
    Py_buffer mem; /* memory datasets: the borrowed frames */
    int has_mem;
} tsrpy_Dataset;

/* ---- BufferView (bufview.c) --------------------------------------------- */

/* A C-contiguous window on memory the engine owns; `owner` keeps it alive.
 * The buffer protocol is its only interface. */
typedef struct {
    PyObject_HEAD void *buf;
    PyObject *owner; /* strong, may be NULL for memory valid only during a callback */
    int readonly;
    int ndim;
    Py_ssize_t itemsize;
    Py_ssize_t shape[TSR_MAX_DIMS * 2 + 2];
    Py_ssize_t strides[TSR_MAX_DIMS * 2 + 2];
    char format[4];
} tsrpy_BufferView;

/* A new view of dtype elements with the given shape.  dims may be NULL when
 * ndim == 0. */
PyObject *tsrpy_bufview_new(void *buf, tsr_dtype_t dtype, int ndim, const int64_t *dims,
                            PyObject *owner, int readonly);

/* ---- Run and Results (run.c) -------------------------------------------- */

typedef struct tsrpy_pyudf tsrpy_pyudf_t;
typedef struct tsrpy_threads tsrpy_threads_t;

typedef struct {
    PyObject_HEAD tsrpy_Context *ctx; /* strong */
    tsrpy_Dataset *ds;                /* strong */
    tsr_run_t *run;
    tsr_udf_t **udfs;
    size_t n_udfs;
    tsrpy_pyudf_t **bridges;  /* per UDF: NULL for built-ins */
    PyObject *runners;        /* list of the Python UDF runners (strong) */
    tsrpy_threads_t *threads; /* thread states of the workers */
    PyObject *prev, *next;    /* the list of started runs (borrowed; guarded by: the GIL) */
    tsr_shape_t nav;
} tsrpy_Run;

typedef struct {
    PyObject_HEAD tsrpy_Context *ctx; /* strong */
    PyObject *run;                    /* strong, final results only */
    tsr_results_t *owned;             /* snapshots */
    const tsr_results_t *res;
    tsr_shape_t nav;
} tsrpy_Results;

PyObject *tsrpy_context_start(PyObject *self, PyObject *args);
PyObject *tsrpy_context_guess(PyObject *self, PyObject *args);
/* Parameters from a sequence of (key, value) string pairs; NULL with an
 * exception set. */
tsr_params_t *tsrpy_make_params(tsrpy_Context *self, PyObject *pairs);

/* ---- Python UDFs (pyudf.c) ---------------------------------------------- */

/* A tsr_udf_def_t whose callbacks call the Python runner object. */
tsrpy_pyudf_t *tsrpy_pyudf_new(PyObject *runner, const char *name, tsrpy_threads_t *threads);
/* The thread states a run's workers make for calling Python; free (with the
 * GIL) after the run's threads have ended. */
tsrpy_threads_t *tsrpy_threads_new(void);
void tsrpy_threads_free(tsrpy_threads_t *r);
/* Set by tsrpy_shutdown (at exit): thread states are left to the
 * interpreter's finalization, which deletes all of them. */
extern int tsrpy_finalizing;
const tsr_udf_def_t *tsrpy_pyudf_def(tsrpy_pyudf_t *p);
void tsrpy_pyudf_free(tsrpy_pyudf_t *p);

/* ---- helpers ------------------------------------------------------------- */

/* struct-module format character of a dtype ("H", "f", "Zf", "?"). */
const char *tsrpy_format(tsr_dtype_t dt);
/* A tuple of ints from a shape. */
PyObject *tsrpy_shape_tuple(const tsr_shape_t *s);
/* Parse a sequence of ints into a shape; -1 with an exception set. */
int tsrpy_shape_parse(PyObject *seq, tsr_shape_t *out, const char *what);

/* Cancel every run still going and wait for it (atexit: the workers must be
 * done with Python before the interpreter finalizes). */
PyObject *tsrpy_shutdown(PyObject *m, PyObject *noargs);

int tsrpy_add_module_types(PyObject *m);
int tsrpy_add_run_types(PyObject *m);
int tsrpy_add_bufview_type(PyObject *m);

#endif
