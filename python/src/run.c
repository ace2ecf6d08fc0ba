/*
 * run.c — Run and Results objects, and Context.start().
 *
 * A Run owns a tsr_run_t, the tsr_udf_t objects of its UDFs and the bridges
 * of its Python UDFs, and holds references to its Context, Dataset and the
 * Python runners, so that everything the engine borrows outlives the run.
 * Every engine call that can wait for the workers (start, wait, snapshot,
 * free) runs without the GIL, since the workers take it to call Python UDFs.
 *
 * A Results wraps a tsr_results_t: the run's final results (borrowed from
 * the run, which it keeps alive) or a snapshot (owned).  Its arrays are
 * exported as BufferViews that keep the Results alive.
 */
#include "ext.h"

#include <string.h>

PyTypeObject *tsrpy_RunType;
PyTypeObject *tsrpy_ResultsType;

/* =========================================================================
 * Results
 * ========================================================================= */

static PyObject *results_new(tsrpy_Context *ctx, PyObject *run, tsr_results_t *owned,
                             const tsr_results_t *res, const tsr_shape_t *nav)
{
    allocfunc alloc = (allocfunc)PyType_GetSlot(tsrpy_ResultsType, Py_tp_alloc);
    tsrpy_Results *r = (tsrpy_Results *)alloc(tsrpy_ResultsType, 0);
    if (!r) {
        tsr_results_free(owned);
        return NULL;
    }
    r->ctx = (tsrpy_Context *)Py_NewRef((PyObject *)ctx);
    r->run = run ? Py_NewRef(run) : NULL;
    r->owned = owned;
    r->res = res;
    r->nav = *nav;
    return (PyObject *)r;
}

static void results_dealloc(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    tsrpy_Results *self = (tsrpy_Results *)obj;
    tsr_results_free(self->owned);
    Py_XDECREF(self->run);
    Py_XDECREF((PyObject *)self->ctx);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(obj);
    Py_DECREF(tp);
}

static Py_ssize_t results_len(PyObject *obj)
{
    return (Py_ssize_t)tsr_results_count(((tsrpy_Results *)obj)->res);
}

static const char *kind_name(tsr_buf_kind_t k)
{
    return k == TSR_KIND_NAV ? "nav" : k == TSR_KIND_SIG ? "sig" : "single";
}

/* get(i) -> (udf, udf_index, name, kind, dtype, shape, nav_ndim, data, valid) */
static PyObject *results_get(PyObject *obj, PyObject *arg)
{
    tsrpy_Results *self = (tsrpy_Results *)obj;
    Py_ssize_t i = PyLong_AsSsize_t(arg);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    tsr_array_t a;
    if (i < 0 || tsr_results_get(self->res, (size_t)i, &a)) {
        PyErr_SetString(PyExc_IndexError, "result index out of range");
        return NULL;
    }
    PyObject *data = tsrpy_bufview_new((void *)a.data, a.dtype, a.shape.ndim, a.shape.dims, obj, 0);
    if (!data)
        return NULL;
    PyObject *valid = Py_None;
    Py_INCREF(valid);
    if (a.valid) {
        Py_DECREF(valid);
        valid =
            tsrpy_bufview_new((void *)a.valid, TSR_BOOL, self->nav.ndim, self->nav.dims, obj, 1);
        if (!valid) {
            Py_DECREF(data);
            return NULL;
        }
    }
    return Py_BuildValue("(sisssNiNN)", a.udf, a.udf_index, a.name, kind_name(a.kind),
                         tsr_dtype_name(a.dtype), tsrpy_shape_tuple(&a.shape), a.nav_ndim, data,
                         valid);
}

/* damage() -> (nav-shaped bool view, n_done) */
static PyObject *results_damage(PyObject *obj, PyObject *noargs)
{
    tsrpy_Results *self = (tsrpy_Results *)obj;
    int64_t n;
    const uint8_t *d = tsr_results_damage(self->res, &n);
    PyObject *v = tsrpy_bufview_new((void *)d, TSR_BOOL, self->nav.ndim, self->nav.dims, obj, 1);
    return v ? Py_BuildValue("(NL)", v, (long long)n) : NULL;
}

static PyMethodDef results_methods[] = {
    {"get", results_get, METH_O,
     "get(i) -> (udf, udf_index, name, kind, dtype, shape, nav_ndim, data, valid)"},
    {"damage", results_damage, METH_NOARGS, "(nav-shaped bool mask of processed frames, count)"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot results_slots[] = {
    {Py_tp_dealloc, (void *)results_dealloc},
    {Py_sq_length, (void *)results_len},
    {Py_tp_methods, results_methods},
    {Py_tp_doc, (void *)"A result set (tsr_results_t): final results or a snapshot."},
    {0, NULL},
};

static PyType_Spec results_spec = {"tessera._tessera.Results", sizeof(tsrpy_Results), 0,
                                   Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
                                   results_slots};

/* =========================================================================
 * Run
 * ========================================================================= */

/* Started runs, so that shutdown can stop them (guarded by: the GIL). */
static tsrpy_Run *live_runs;

static void live_add(tsrpy_Run *r)
{
    r->next = (PyObject *)live_runs;
    r->prev = NULL;
    if (live_runs)
        live_runs->prev = (PyObject *)r;
    live_runs = r;
}

static void live_remove(tsrpy_Run *r)
{
    tsrpy_Run *prev = (tsrpy_Run *)r->prev, *next = (tsrpy_Run *)r->next;
    if (prev)
        prev->next = (PyObject *)next;
    else if (live_runs == r)
        live_runs = next;
    if (next)
        next->prev = (PyObject *)prev;
    r->prev = r->next = NULL;
}

PyObject *tsrpy_shutdown(PyObject *m, PyObject *noargs)
{
    for (tsrpy_Run *r = live_runs; r; r = (tsrpy_Run *)r->next) {
        tsr_run_t *run = r->run;
        if (run) {
            PyThreadState *ts = PyEval_SaveThread();
            tsr_run_cancel(run);
            tsr_run_wait(run);
            PyEval_RestoreThread(ts);
        }
        /* The run's workers are done with Python: delete their thread
         * states now.  Finalization deletes every thread state left, so a
         * Run freed later (one kept alive by a reference cycle, such as a
         * traceback, until the last collection) must not delete them again. */
        tsrpy_threads_free(r->threads);
        r->threads = NULL;
    }
    tsrpy_finalizing = 1;
    Py_RETURN_NONE;
}

static void run_release(tsrpy_Run *self)
{
    tsr_run_t *run = self->run;
    self->run = NULL;
    live_remove(self);
    if (run) {
        PyThreadState *ts = PyEval_SaveThread();
        tsr_run_free(run);
        PyEval_RestoreThread(ts);
    }
    for (size_t i = 0; self->udfs && i < self->n_udfs; i++)
        tsr_udf_free(self->udfs[i]);
    for (size_t i = 0; self->bridges && i < self->n_udfs; i++)
        if (self->bridges[i])
            tsrpy_pyudf_free(self->bridges[i]);
    tsrpy_threads_free(self->threads);
    self->threads = NULL;
    PyMem_Free(self->udfs);
    PyMem_Free(self->bridges);
    self->udfs = NULL;
    self->bridges = NULL;
    self->n_udfs = 0;
}

static void run_dealloc(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    tsrpy_Run *self = (tsrpy_Run *)obj;
    run_release(self);
    Py_XDECREF(self->runners);
    Py_XDECREF((PyObject *)self->ds);
    Py_XDECREF((PyObject *)self->ctx);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(obj);
    Py_DECREF(tp);
}

static int run_check(tsrpy_Run *self)
{
    if (!self->run) {
        tsrpy_raise(TSR_ESTATE, "the run was not started");
        return -1;
    }
    return 0;
}

/* wait(timeout=None) -> True when the run has ended (raises its error),
 * False if timeout seconds passed first.  Signals (Ctrl-C) are checked every
 * 100 ms; a KeyboardInterrupt cancels the run. */
static PyObject *run_wait(PyObject *obj, PyObject *args)
{
    tsrpy_Run *self = (tsrpy_Run *)obj;
    PyObject *to = Py_None;
    if (!PyArg_ParseTuple(args, "|O", &to) || run_check(self))
        return NULL;
    double timeout = -1;
    if (to != Py_None) {
        timeout = PyFloat_AsDouble(to);
        if (timeout == -1 && PyErr_Occurred())
            return NULL;
        if (timeout < 0)
            timeout = 0;
    }
    double left = timeout;
    int rc;
    for (;;) {
        int chunk = 100;
        if (timeout >= 0 && left * 1000 < chunk)
            chunk = left * 1000 < 1 ? 1 : (int)(left * 1000);
        PyThreadState *ts = PyEval_SaveThread();
        rc = tsr_run_wait_for(self->run, chunk);
        PyEval_RestoreThread(ts);
        if (rc != TSR_EAGAIN)
            break;
        if (PyErr_CheckSignals() < 0) {
            tsr_run_cancel(self->run);
            return NULL;
        }
        if (timeout >= 0) {
            left -= chunk / 1000.0;
            if (left <= 0)
                Py_RETURN_FALSE;
        }
    }
    if (rc)
        return tsrpy_raise(rc, tsr_run_errmsg(self->run));
    Py_RETURN_TRUE;
}

static PyObject *run_progress(PyObject *obj, PyObject *noargs)
{
    tsrpy_Run *self = (tsrpy_Run *)obj;
    if (run_check(self))
        return NULL;
    int64_t done, total;
    tsr_run_progress(self->run, &done, &total);
    return Py_BuildValue("(LL)", (long long)done, (long long)total);
}

static PyObject *run_cancel(PyObject *obj, PyObject *noargs)
{
    tsrpy_Run *self = (tsrpy_Run *)obj;
    if (self->run)
        tsr_run_cancel(self->run);
    Py_RETURN_NONE;
}

static PyObject *run_results(PyObject *obj, PyObject *noargs)
{
    tsrpy_Run *self = (tsrpy_Run *)obj;
    if (run_check(self))
        return NULL;
    const tsr_results_t *res;
    int rc = tsr_run_results(self->run, &res);
    if (rc)
        return tsrpy_raise(rc,
                           rc == TSR_ESTATE ? "the run has not ended" : tsr_run_errmsg(self->run));
    return results_new(self->ctx, obj, NULL, res, &self->nav);
}

static PyObject *run_snapshot(PyObject *obj, PyObject *noargs)
{
    tsrpy_Run *self = (tsrpy_Run *)obj;
    if (run_check(self))
        return NULL;
    tsr_results_t *snap = NULL;
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = tsr_run_snapshot(self->run, &snap);
    PyEval_RestoreThread(ts);
    if (rc)
        return tsrpy_raise(rc, "cannot take a snapshot of the run");
    return results_new(self->ctx, NULL, snap, snap, &self->nav);
}

static PyMethodDef run_methods[] = {
    {"wait", run_wait, METH_VARARGS, "wait(timeout=None) -> True when ended, False on timeout"},
    {"progress", run_progress, METH_NOARGS, "(frames done, frames to do)"},
    {"cancel", run_cancel, METH_NOARGS, "Ask the run to stop."},
    {"results", run_results, METH_NOARGS, "The final Results (after a successful wait)."},
    {"snapshot", run_snapshot, METH_NOARGS, "A Results snapshot of the merged buffers now."},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot run_slots[] = {
    {Py_tp_dealloc, (void *)run_dealloc},
    {Py_tp_methods, run_methods},
    {Py_tp_doc, (void *)"A run of UDFs over a dataset (tsr_run_t)."},
    {0, NULL},
};

static PyType_Spec run_spec = {"tessera._tessera.Run", sizeof(tsrpy_Run), 0,
                               Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, run_slots};

int tsrpy_add_run_types(PyObject *m)
{
    tsrpy_RunType = (PyTypeObject *)PyType_FromSpec(&run_spec);
    if (!tsrpy_RunType || PyModule_AddObjectRef(m, "Run", (PyObject *)tsrpy_RunType))
        return -1;
    tsrpy_ResultsType = (PyTypeObject *)PyType_FromSpec(&results_spec);
    if (!tsrpy_ResultsType || PyModule_AddObjectRef(m, "Results", (PyObject *)tsrpy_ResultsType))
        return -1;
    return 0;
}

/* =========================================================================
 * Context.start
 * ========================================================================= */

/* A contiguous buffer of exactly n bytes, or None (view->buf = NULL). */
static int get_array(PyObject *o, Py_buffer *view, Py_ssize_t n, const char *what)
{
    memset(view, 0, sizeof *view);
    if (o == Py_None)
        return 0;
    if (PyObject_GetBuffer(o, view, PyBUF_C_CONTIGUOUS) < 0)
        return -1;
    if (view->len != n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", what, n, view->len);
        PyBuffer_Release(view);
        memset(view, 0, sizeof *view);
        return -1;
    }
    return 0;
}

static void release_array(Py_buffer *view)
{
    if (view->obj)
        PyBuffer_Release(view);
}

/* start(dataset, udfs, roi, dark, gain, excluded) -> Run
 *   udfs: sequence of (name, [(key, value), ...]) for built-in UDFs and
 *         (runner, name) for Python UDFs;
 *   roi: nav-size bytes (uint8) or None; dark, gain: sig-size float32 or
 *   None; excluded: sig-size uint8 or None. */
PyObject *tsrpy_context_start(PyObject *obj, PyObject *args)
{
    tsrpy_Context *self = (tsrpy_Context *)obj;
    PyObject *dso, *udfs, *roio, *darko, *gaino, *exclo;
    if (!PyArg_ParseTuple(args, "O!OOOOO", tsrpy_DatasetType, &dso, &udfs, &roio, &darko, &gaino,
                          &exclo))
        return NULL;
    if (self->closed)
        return tsrpy_raise(TSR_ESTATE, "the context is closed");
    tsrpy_Dataset *ds = (tsrpy_Dataset *)dso;
    PyObject *items = PySequence_Tuple(udfs);
    if (!items)
        return NULL;
    Py_ssize_t n = PyTuple_Size(items);
    allocfunc alloc = (allocfunc)PyType_GetSlot(tsrpy_RunType, Py_tp_alloc);
    tsrpy_Run *run = (tsrpy_Run *)alloc(tsrpy_RunType, 0);
    Py_buffer roi, dark, gain, excl;
    memset(&roi, 0, sizeof roi);
    memset(&dark, 0, sizeof dark);
    memset(&gain, 0, sizeof gain);
    memset(&excl, 0, sizeof excl);
    if (!run)
        goto fail;
    run->ctx = (tsrpy_Context *)Py_NewRef(obj);
    run->ds = (tsrpy_Dataset *)Py_NewRef(dso);
    tsr_dataset_nav_shape(ds->ds, &run->nav);
    tsr_shape_t sig;
    tsr_dataset_sig_shape(ds->ds, &sig);
    Py_ssize_t nav_n = (Py_ssize_t)tsr_shape_size(&run->nav);
    Py_ssize_t sig_n = (Py_ssize_t)tsr_shape_size(&sig);
    run->udfs = PyMem_Calloc((size_t)(n ? n : 1), sizeof *run->udfs);
    run->bridges = PyMem_Calloc((size_t)(n ? n : 1), sizeof *run->bridges);
    run->runners = PyList_New(0);
    run->threads = tsrpy_threads_new();
    if (!run->udfs || !run->bridges || !run->runners || !run->threads) {
        PyErr_NoMemory();
        goto fail;
    }
    run->n_udfs = (size_t)n;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *it = PyTuple_GetItem(items, i);
        PyObject *first;
        if (!PyTuple_Check(it) || PyTuple_Size(it) != 2) {
            PyErr_SetString(PyExc_TypeError, "a UDF spec is (name, params) or (runner, name)");
            goto fail;
        }
        first = PyTuple_GetItem(it, 0);
        int rc;
        if (PyUnicode_Check(first)) {
            const char *name = PyUnicode_AsUTF8AndSize(first, NULL);
            if (!name)
                goto fail;
            tsr_params_t *p = tsrpy_make_params(self, PyTuple_GetItem(it, 1));
            if (!p)
                goto fail;
            rc = tsr_udf_new(self->ctx, name, p, &run->udfs[i]);
            tsr_params_free(p);
        } else {
            const char *name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(it, 1), NULL);
            if (!name)
                goto fail;
            if (PyList_Append(run->runners, first) < 0)
                goto fail;
            run->bridges[i] = tsrpy_pyudf_new(first, name, run->threads);
            if (!run->bridges[i])
                goto fail;
            rc = tsr_udf_new_custom(self->ctx, tsrpy_pyudf_def(run->bridges[i]), run->bridges[i],
                                    NULL, &run->udfs[i]);
        }
        if (rc) {
            tsrpy_raise(rc, tsr_ctx_errmsg(self->ctx));
            goto fail;
        }
    }
    if (get_array(roio, &roi, nav_n, "roi") ||
        get_array(darko, &dark, sig_n * (Py_ssize_t)sizeof(float), "dark") ||
        get_array(gaino, &gain, sig_n * (Py_ssize_t)sizeof(float), "gain") ||
        get_array(exclo, &excl, sig_n, "excluded pixels"))
        goto fail;
    tsr_run_opts_t opts = {.roi = roi.buf, .corrections = {dark.buf, gain.buf, excl.buf}};
    int rc;
    tsr_run_t *r = NULL;
    PyThreadState *ts = PyEval_SaveThread();
    rc = tsr_run_start(self->ctx, ds->ds, run->udfs, run->n_udfs, &opts, &r);
    PyEval_RestoreThread(ts);
    if (rc) {
        tsrpy_raise(rc, tsr_ctx_errmsg(self->ctx));
        goto fail;
    }
    run->run = r;
    live_add(run);
    release_array(&roi);
    release_array(&dark);
    release_array(&gain);
    release_array(&excl);
    Py_DECREF(items);
    return (PyObject *)run;
fail:
    release_array(&roi);
    release_array(&dark);
    release_array(&gain);
    release_array(&excl);
    Py_XDECREF((PyObject *)run);
    Py_DECREF(items);
    return NULL;
}

/* guess(dataset, name, [(key, value), ...], roi, dark, gain, excluded)
 *   -> [(key, value), ...]: tsr_udf_guess of the built-in UDF name with the
 *   given parameters as hints (arrays as for start).  Blocks, without the
 *   GIL, until the guess's runs are done. */
PyObject *tsrpy_context_guess(PyObject *obj, PyObject *args)
{
    tsrpy_Context *self = (tsrpy_Context *)obj;
    PyObject *dso, *pairs, *roio, *darko, *gaino, *exclo;
    const char *name;
    if (!PyArg_ParseTuple(args, "O!sOOOOO", tsrpy_DatasetType, &dso, &name, &pairs, &roio, &darko,
                          &gaino, &exclo))
        return NULL;
    if (self->closed)
        return tsrpy_raise(TSR_ESTATE, "the context is closed");
    tsrpy_Dataset *ds = (tsrpy_Dataset *)dso;
    tsr_shape_t nav, sig;
    tsr_dataset_nav_shape(ds->ds, &nav);
    tsr_dataset_sig_shape(ds->ds, &sig);
    Py_ssize_t nav_n = (Py_ssize_t)tsr_shape_size(&nav);
    Py_ssize_t sig_n = (Py_ssize_t)tsr_shape_size(&sig);
    Py_buffer roi, dark, gain, excl;
    memset(&roi, 0, sizeof roi);
    memset(&dark, 0, sizeof dark);
    memset(&gain, 0, sizeof gain);
    memset(&excl, 0, sizeof excl);
    PyObject *out = NULL;
    tsr_params_t *hints = tsrpy_make_params(self, pairs);
    tsr_params_t *g = NULL;
    if (!hints)
        return NULL;
    if (get_array(roio, &roi, nav_n, "roi") ||
        get_array(darko, &dark, sig_n * (Py_ssize_t)sizeof(float), "dark") ||
        get_array(gaino, &gain, sig_n * (Py_ssize_t)sizeof(float), "gain") ||
        get_array(exclo, &excl, sig_n, "excluded pixels"))
        goto done;
    int rc = tsr_params_new(self->ctx, &g);
    if (rc) {
        tsrpy_raise(rc, tsr_ctx_errmsg(self->ctx));
        goto done;
    }
    tsr_run_opts_t opts = {.roi = roi.buf, .corrections = {dark.buf, gain.buf, excl.buf}};
    PyThreadState *ts = PyEval_SaveThread();
    rc = tsr_udf_guess(self->ctx, ds->ds, name, hints, &opts, g);
    PyEval_RestoreThread(ts);
    if (rc) {
        tsrpy_raise(rc, tsr_ctx_errmsg(self->ctx));
        goto done;
    }
    size_t n = tsr_params_count(g);
    out = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; out && i < n; i++) {
        const char *k, *v;
        tsr_params_at(g, i, &k, &v);
        PyObject *kv = Py_BuildValue("(ss)", k, v);
        if (!kv)
            Py_CLEAR(out);
        else
            PyList_SetItem(out, (Py_ssize_t)i, kv);
    }
done:
    release_array(&roi);
    release_array(&dark);
    release_array(&gain);
    release_array(&excl);
    tsr_params_free(g);
    tsr_params_free(hints);
    return out;
}
