/*
 * module.c — the `tessera._tessera` module: registries, errors, Context and
 * Dataset objects.
 *
 * Registries (formats, UDFs and their parameter schemas, dtypes, error
 * codes, options) are read through the public API and returned as plain
 * tuples; the Python layer builds classes and documentation from them, so
 * nothing here knows a particular format or UDF.
 */
#include "ext.h"

PyTypeObject *tsrpy_ContextType;
PyTypeObject *tsrpy_DatasetType;
PyObject *tsrpy_error_factory;

/* =========================================================================
 * Errors
 * ========================================================================= */

PyObject *tsrpy_raise(int code, const char *msg)
{
    if (!msg || !*msg)
        msg = tsr_strerror(code);
    if (!tsrpy_error_factory) {
        PyErr_Format(PyExc_RuntimeError, "%s (%s)", msg, tsr_err_name(code));
        return NULL;
    }
    PyObject *exc =
        PyObject_CallFunction(tsrpy_error_factory, "sis", msg, code, tsr_err_name(code));
    if (!exc)
        return NULL;
    PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
    Py_DECREF(exc);
    return NULL;
}

static PyObject *ctx_raise(tsrpy_Context *c, int code)
{
    return tsrpy_raise(code, tsr_ctx_errmsg(c->ctx));
}

/* =========================================================================
 * Helpers
 * ========================================================================= */

PyObject *tsrpy_shape_tuple(const tsr_shape_t *s)
{
    PyObject *t = PyTuple_New(s->ndim);
    if (!t)
        return NULL;
    for (int i = 0; i < s->ndim; i++) {
        PyObject *d = PyLong_FromLongLong(s->dims[i]);
        if (!d) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SetItem(t, i, d);
    }
    return t;
}

int tsrpy_shape_parse(PyObject *seq, tsr_shape_t *out, const char *what)
{
    PyObject *fast = PySequence_Tuple(seq);
    if (!fast)
        return -1;
    Py_ssize_t n = PyTuple_Size(fast);
    if (n < 0 || n > TSR_MAX_DIMS) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "%s: at most %d dimensions, got %zd", what, TSR_MAX_DIMS, n);
        return -1;
    }
    tsr_shape_t s = {(int)n, {0}};
    for (Py_ssize_t i = 0; i < n; i++) {
        long long d = PyLong_AsLongLong(PyTuple_GetItem(fast, i));
        if (d == -1 && PyErr_Occurred()) {
            Py_DECREF(fast);
            return -1;
        }
        s.dims[i] = d;
    }
    Py_DECREF(fast);
    *out = s;
    return 0;
}

static PyObject *param_defs(const tsr_param_def_t *p, size_t n)
{
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *t = Py_BuildValue("(sszsO)", p[i].name, p[i].type, p[i].default_value,
                                    p[i].doc ? p[i].doc : "", p[i].repeatable ? Py_True : Py_False);
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(t);
    }
    return list;
}

/* =========================================================================
 * Module functions
 * ========================================================================= */

static PyObject *mod_version(PyObject *m, PyObject *noargs)
{
    return PyUnicode_FromString(tsr_version_string());
}

static PyObject *mod_formats(PyObject *m, PyObject *noargs)
{
    PyObject *list = PyList_New(0);
    size_t n = tsr_format_count();
    for (size_t i = 0; list && i < n; i++) {
        const char *name, *desc;
        const tsr_param_def_t *params;
        size_t np;
        if (tsr_format_info(i, &name, &desc, &params, &np))
            continue;
        PyObject *pl = param_defs(params, params ? np : 0);
        PyObject *t = pl ? Py_BuildValue("(ssN)", name, desc ? desc : "", pl) : NULL;
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(t);
    }
    return list;
}

static PyObject *mod_udfs(PyObject *m, PyObject *noargs)
{
    PyObject *list = PyList_New(0);
    size_t n = tsr_udf_count();
    for (size_t i = 0; list && i < n; i++) {
        const tsr_udf_def_t *d = tsr_udf_def_at(i);
        if (!d)
            continue;
        PyObject *pl = param_defs(d->params, d->params ? d->n_params : 0);
        PyObject *t =
            pl ? Py_BuildValue("(ssN)", d->name, d->description ? d->description : "", pl) : NULL;
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(t);
    }
    return list;
}

static PyObject *mod_dtypes(PyObject *m, PyObject *noargs)
{
    PyObject *t = PyTuple_New(TSR_DTYPE_COUNT);
    for (int i = 0; t && i < TSR_DTYPE_COUNT; i++) {
        PyObject *s = PyUnicode_FromString(tsr_dtype_name((tsr_dtype_t)i));
        if (!s) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SetItem(t, i, s);
    }
    return t;
}

static PyObject *mod_errors(PyObject *m, PyObject *noargs)
{
    PyObject *list = PyList_New(0);
    for (int code = -1; list && code >= TSR_ERRNO_MIN; code--) {
        PyObject *t = Py_BuildValue("(iss)", code, tsr_err_name(code), tsr_strerror(code));
        if (!t || PyList_Append(list, t) < 0) {
            Py_XDECREF(t);
            Py_CLEAR(list);
        }
        Py_XDECREF(t);
    }
    return list;
}

static PyObject *mod_set_error_factory(PyObject *m, PyObject *f)
{
    if (!PyCallable_Check(f)) {
        PyErr_SetString(PyExc_TypeError, "the error factory must be callable");
        return NULL;
    }
    PyObject *old = tsrpy_error_factory;
    tsrpy_error_factory = Py_NewRef(f);
    Py_XDECREF(old);
    Py_RETURN_NONE;
}

/* dtype_parse("<u2") -> (code, big_endian) */
static PyObject *mod_dtype_parse(PyObject *m, PyObject *arg)
{
    const char *s = PyUnicode_AsUTF8AndSize(arg, NULL);
    if (!s)
        return NULL;
    tsr_dtype_t dt;
    bool big;
    int rc = tsr_dtype_parse(s, &dt, &big);
    if (rc)
        return tsrpy_raise(rc, "unknown dtype");
    return Py_BuildValue("(iO)", (int)dt, big ? Py_True : Py_False);
}

static PyMethodDef mod_methods[] = {
    {"version", mod_version, METH_NOARGS, "The library's version string."},
    {"formats", mod_formats, METH_NOARGS,
     "The format registry: [(name, description, [(param, type, default, doc, repeatable)])]."},
    {"udfs", mod_udfs, METH_NOARGS,
     "The UDF registry: [(name, description, [(param, type, default, doc, repeatable)])]."},
    {"dtypes", mod_dtypes, METH_NOARGS, "numpy names of the element types, by code."},
    {"errors", mod_errors, METH_NOARGS, "[(code, name, description)] of the error codes."},
    {"set_error_factory", mod_set_error_factory, METH_O,
     "Set the callable f(message, code, name) -> exception used for engine errors."},
    {"dtype_parse", mod_dtype_parse, METH_O, "(code, big_endian) of a numpy-style type name."},
    {"shutdown", tsrpy_shutdown, METH_NOARGS,
     "Cancel every run still going and wait for it (registered with atexit)."},
    {NULL, NULL, 0, NULL},
};

/* =========================================================================
 * Context
 * ========================================================================= */

static PyObject *ctx_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
    if (!PyArg_ParseTuple(args, ""))
        return NULL;
    allocfunc alloc = (allocfunc)PyType_GetSlot(tp, Py_tp_alloc);
    tsrpy_Context *self = (tsrpy_Context *)alloc(tp, 0);
    if (!self)
        return NULL;
    int rc = tsr_ctx_new(&self->ctx);
    if (rc) {
        Py_DECREF(self);
        return tsrpy_raise(rc, "cannot create a context");
    }
    return (PyObject *)self;
}

static void ctx_dealloc(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    tsrpy_Context *self = (tsrpy_Context *)obj;
    tsr_ctx_free(self->ctx);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(obj);
    Py_DECREF(tp);
}

static int ctx_check(tsrpy_Context *self)
{
    if (self->closed) {
        tsrpy_raise(TSR_ESTATE, "the context is closed");
        return -1;
    }
    return 0;
}

static PyObject *ctx_set(PyObject *obj, PyObject *args)
{
    tsrpy_Context *self = (tsrpy_Context *)obj;
    int opt;
    long long v;
    if (!PyArg_ParseTuple(args, "iL", &opt, &v) || ctx_check(self))
        return NULL;
    int rc = tsr_ctx_set(self->ctx, (tsr_option_t)opt, v);
    if (rc)
        return ctx_raise(self, rc);
    Py_RETURN_NONE;
}

static PyObject *ctx_get(PyObject *obj, PyObject *args)
{
    tsrpy_Context *self = (tsrpy_Context *)obj;
    int opt;
    int64_t v;
    if (!PyArg_ParseTuple(args, "i", &opt))
        return NULL;
    int rc = tsr_ctx_get(self->ctx, (tsr_option_t)opt, &v);
    if (rc)
        return ctx_raise(self, rc);
    return PyLong_FromLongLong(v);
}

static PyObject *ctx_memory(PyObject *obj, PyObject *noargs)
{
    size_t cur, peak;
    tsr_ctx_memory(((tsrpy_Context *)obj)->ctx, &cur, &peak);
    return Py_BuildValue("(nn)", (Py_ssize_t)cur, (Py_ssize_t)peak);
}

static PyObject *ctx_close(PyObject *obj, PyObject *noargs)
{
    ((tsrpy_Context *)obj)->closed = 1;
    Py_RETURN_NONE;
}

/* Fill params from a sequence of (key, value) string pairs. */
static tsr_params_t *make_params(tsrpy_Context *self, PyObject *pairs)
{
    tsr_params_t *p = NULL;
    int rc = tsr_params_new(self->ctx, &p);
    if (rc) {
        ctx_raise(self, rc);
        return NULL;
    }
    PyObject *fast = PySequence_Tuple(pairs);
    if (!fast)
        goto fail;
    for (Py_ssize_t i = 0; i < PyTuple_Size(fast); i++) {
        const char *k, *v;
        if (!PyArg_ParseTuple(PyTuple_GetItem(fast, i), "ss", &k, &v))
            goto fail;
        if ((rc = tsr_params_add(p, k, v))) {
            ctx_raise(self, rc);
            goto fail;
        }
    }
    Py_DECREF(fast);
    return p;
fail:
    Py_XDECREF(fast);
    tsr_params_free(p);
    return NULL;
}

tsr_params_t *tsrpy_make_params(tsrpy_Context *self, PyObject *pairs)
{
    return make_params(self, pairs);
}

static PyObject *dataset_wrap(tsrpy_Context *self, tsr_dataset_t *ds)
{
    allocfunc alloc = (allocfunc)PyType_GetSlot(tsrpy_DatasetType, Py_tp_alloc);
    tsrpy_Dataset *d = (tsrpy_Dataset *)alloc(tsrpy_DatasetType, 0);
    if (!d) {
        tsr_dataset_close(ds);
        return NULL;
    }
    d->ctx = (tsrpy_Context *)Py_NewRef((PyObject *)self);
    d->ds = ds;
    return (PyObject *)d;
}

/* open(format, path, [(key, value), ...]) -> Dataset */
static PyObject *ctx_open(PyObject *obj, PyObject *args)
{
    tsrpy_Context *self = (tsrpy_Context *)obj;
    const char *format, *path;
    PyObject *pairs;
    if (!PyArg_ParseTuple(args, "zsO", &format, &path, &pairs) || ctx_check(self))
        return NULL;
    tsr_params_t *p = make_params(self, pairs);
    if (!p)
        return NULL;
    tsr_dataset_t *ds = NULL;
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = tsr_dataset_open(self->ctx, format, path, p, &ds);
    PyEval_RestoreThread(ts);
    tsr_params_free(p);
    if (rc)
        return ctx_raise(self, rc);
    return dataset_wrap(self, ds);
}

/* from_memory(buffer, dtype_code, nav, sig) -> Dataset; the buffer must be
 * C-contiguous in host order and is borrowed (kept) by the dataset. */
static PyObject *ctx_from_memory(PyObject *obj, PyObject *args)
{
    tsrpy_Context *self = (tsrpy_Context *)obj;
    PyObject *data, *navo, *sigo;
    int dtype;
    if (!PyArg_ParseTuple(args, "OiOO", &data, &dtype, &navo, &sigo) || ctx_check(self))
        return NULL;
    tsr_shape_t nav, sig;
    if (tsrpy_shape_parse(navo, &nav, "nav shape") || tsrpy_shape_parse(sigo, &sig, "sig shape"))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    int64_t n = tsr_shape_size(&nav), s = tsr_shape_size(&sig);
    size_t es = tsr_dtype_size((tsr_dtype_t)dtype);
    if (n < 0 || s < 0 || es == 0 || (double)n * (double)s * (double)es != (double)view.len) {
        PyBuffer_Release(&view);
        return tsrpy_raise(TSR_EINVAL, "memory dataset: the buffer's size does not match the "
                                       "shapes and dtype");
    }
    tsr_dataset_t *ds = NULL;
    int rc =
        tsr_dataset_from_memory(self->ctx, view.buf, (tsr_dtype_t)dtype, &nav, &sig, false, &ds);
    if (rc) {
        PyBuffer_Release(&view);
        return ctx_raise(self, rc);
    }
    tsrpy_Dataset *d = (tsrpy_Dataset *)dataset_wrap(self, ds);
    if (!d) {
        PyBuffer_Release(&view);
        return NULL;
    }
    d->mem = view;
    d->has_mem = 1;
    return (PyObject *)d;
}

/* export_array(results, index, path, colormap, log) */
static PyObject *ctx_export_array(PyObject *obj, PyObject *args)
{
    tsrpy_Context *self = (tsrpy_Context *)obj;
    PyObject *ro;
    Py_ssize_t i;
    const char *path, *cmap;
    int log;
    if (!PyArg_ParseTuple(args, "O!nszp", tsrpy_ResultsType, &ro, &i, &path, &cmap, &log))
        return NULL;
    tsrpy_Results *r = (tsrpy_Results *)ro;
    tsr_array_t arr;
    int rc = tsr_results_get(r->res, (size_t)i, &arr);
    if (rc)
        return tsrpy_raise(rc, "no such result buffer");
    tsr_export_opts_t opts = {cmap, log != 0};
    PyThreadState *ts = PyEval_SaveThread();
    rc = tsr_export_array(self->ctx, &arr, path, &opts);
    PyEval_RestoreThread(ts);
    if (rc)
        return ctx_raise(self, rc);
    Py_RETURN_NONE;
}

/* export_results(results, path) */
static PyObject *ctx_export_results(PyObject *obj, PyObject *args)
{
    tsrpy_Context *self = (tsrpy_Context *)obj;
    PyObject *ro;
    const char *path;
    if (!PyArg_ParseTuple(args, "O!s", tsrpy_ResultsType, &ro, &path))
        return NULL;
    int rc;
    const tsr_results_t *res = ((tsrpy_Results *)ro)->res;
    PyThreadState *ts = PyEval_SaveThread();
    rc = tsr_export_results(self->ctx, res, path);
    PyEval_RestoreThread(ts);
    if (rc)
        return ctx_raise(self, rc);
    Py_RETURN_NONE;
}

static PyMethodDef ctx_methods[] = {
    {"set", ctx_set, METH_VARARGS, "set(option, value)"},
    {"get", ctx_get, METH_VARARGS, "get(option) -> value"},
    {"memory", ctx_memory, METH_NOARGS, "(bytes held now, peak bytes held)"},
    {"close", ctx_close, METH_NOARGS,
     "Refuse further use; the engine context is freed when "
     "nothing made from it remains."},
    {"open", ctx_open, METH_VARARGS, "open(format or None, path, [(key, value)]) -> Dataset"},
    {"from_memory", ctx_from_memory, METH_VARARGS,
     "from_memory(buffer, dtype_code, nav, sig) -> Dataset (the buffer is borrowed)"},
    {"start", (PyCFunction)(void (*)(void))tsrpy_context_start, METH_VARARGS,
     "start(dataset, udfs, roi, dark, gain, excluded) -> Run"},
    {"guess", (PyCFunction)(void (*)(void))tsrpy_context_guess, METH_VARARGS,
     "guess(dataset, name, [(key, value)], roi, dark, gain, excluded) -> [(key, value)]"},
    {"export_array", ctx_export_array, METH_VARARGS,
     "export_array(results, index, path, colormap, log)"},
    {"export_results", ctx_export_results, METH_VARARGS, "export_results(results, path)"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot ctx_slots[] = {
    {Py_tp_new, (void *)ctx_new},
    {Py_tp_dealloc, (void *)ctx_dealloc},
    {Py_tp_methods, ctx_methods},
    {Py_tp_doc, (void *)"An engine context (tsr_ctx_t)."},
    {0, NULL},
};

static PyType_Spec ctx_spec = {"tessera._tessera.Context", sizeof(tsrpy_Context), 0,
                               Py_TPFLAGS_DEFAULT, ctx_slots};

/* =========================================================================
 * Dataset
 * ========================================================================= */

static void ds_dealloc(PyObject *obj)
{
    PyTypeObject *tp = Py_TYPE(obj);
    tsrpy_Dataset *self = (tsrpy_Dataset *)obj;
    tsr_dataset_close(self->ds);
    if (self->has_mem)
        PyBuffer_Release(&self->mem);
    Py_XDECREF((PyObject *)self->ctx);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(obj);
    Py_DECREF(tp);
}

static PyObject *ds_info(PyObject *obj, PyObject *noargs)
{
    tsrpy_Dataset *self = (tsrpy_Dataset *)obj;
    tsr_shape_t nav, sig;
    tsr_dataset_nav_shape(self->ds, &nav);
    tsr_dataset_sig_shape(self->ds, &sig);
    const char *meta = tsr_dataset_meta_json(self->ds);
    return Py_BuildValue("{s:N,s:N,s:i,s:O,s:s,s:s,s:L}", "nav", tsrpy_shape_tuple(&nav), "sig",
                         tsrpy_shape_tuple(&sig), "dtype", (int)tsr_dataset_dtype(self->ds),
                         "big_endian", tsr_dataset_big_endian(self->ds) ? Py_True : Py_False,
                         "format", tsr_dataset_format(self->ds), "meta", meta ? meta : "{}",
                         "image_count", (long long)tsr_dataset_image_count(self->ds));
}

static PyMethodDef ds_methods[] = {
    {"info", ds_info, METH_NOARGS,
     "{nav, sig, dtype, big_endian, format, meta (JSON text), image_count}"},
    {NULL, NULL, 0, NULL},
};

static PyType_Slot ds_slots[] = {
    {Py_tp_dealloc, (void *)ds_dealloc},
    {Py_tp_methods, ds_methods},
    {Py_tp_doc, (void *)"An open dataset (tsr_dataset_t)."},
    {0, NULL},
};

static PyType_Spec ds_spec = {"tessera._tessera.Dataset", sizeof(tsrpy_Dataset), 0,
                              Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION, ds_slots};

int tsrpy_add_module_types(PyObject *m)
{
    tsrpy_ContextType = (PyTypeObject *)PyType_FromSpec(&ctx_spec);
    if (!tsrpy_ContextType || PyModule_AddObjectRef(m, "Context", (PyObject *)tsrpy_ContextType))
        return -1;
    tsrpy_DatasetType = (PyTypeObject *)PyType_FromSpec(&ds_spec);
    if (!tsrpy_DatasetType || PyModule_AddObjectRef(m, "Dataset", (PyObject *)tsrpy_DatasetType))
        return -1;
    return 0;
}

/* =========================================================================
 * Module
 * ========================================================================= */

static int add_int(PyObject *m, const char *name, long v)
{
    return PyModule_AddIntConstant(m, name, v);
}

static int mod_exec(PyObject *m)
{
    if (tsrpy_add_bufview_type(m) || tsrpy_add_module_types(m) || tsrpy_add_run_types(m))
        return -1;
    if (add_int(m, "OPT_THREADS", TSR_OPT_THREADS) ||
        add_int(m, "OPT_EXECUTOR", TSR_OPT_EXECUTOR) ||
        add_int(m, "OPT_TILE_BYTES", TSR_OPT_TILE_BYTES) ||
        add_int(m, "OPT_PARTITION_BYTES", TSR_OPT_PARTITION_BYTES) ||
        add_int(m, "OPT_PARTITIONS", TSR_OPT_PARTITIONS) ||
        add_int(m, "OPT_IO_BACKEND", TSR_OPT_IO_BACKEND) ||
        add_int(m, "EXEC_THREADS", TSR_EXEC_THREADS) ||
        add_int(m, "EXEC_INLINE", TSR_EXEC_INLINE) || add_int(m, "IO_AUTO", TSR_IO_AUTO) ||
        add_int(m, "IO_PREAD", TSR_IO_PREAD) || add_int(m, "IO_MMAP", TSR_IO_MMAP) ||
        add_int(m, "IO_DIRECT", TSR_IO_DIRECT) || add_int(m, "IO_URING", TSR_IO_URING) ||
        add_int(m, "KIND_NAV", TSR_KIND_NAV) || add_int(m, "KIND_SIG", TSR_KIND_SIG) ||
        add_int(m, "KIND_SINGLE", TSR_KIND_SINGLE) || add_int(m, "BUF_PRIVATE", TSR_BUF_PRIVATE) ||
        add_int(m, "BUF_RESULT_ONLY", TSR_BUF_RESULT_ONLY) ||
        add_int(m, "METHOD_TILE", TSR_METHOD_TILE) ||
        add_int(m, "METHOD_FRAME", TSR_METHOD_FRAME) ||
        add_int(m, "METHOD_PARTITION", TSR_METHOD_PARTITION) ||
        add_int(m, "DTYPE_NATIVE", TSR_DTYPE_NATIVE) || add_int(m, "E_UDF", TSR_EUDF) ||
        add_int(m, "E_CANCELED", TSR_ECANCELED) || add_int(m, "MAX_DIMS", TSR_MAX_DIMS) ||
        add_int(m, "MAX_BUFFERS", TSR_UDF_MAX_BUFFERS))
        return -1;
    return 0;
}

static PyModuleDef_Slot mod_slots[] = {
    {Py_mod_exec, (void *)mod_exec},
    {0, NULL},
};

static struct PyModuleDef mod_def = {
    PyModuleDef_HEAD_INIT,
    "tessera._tessera",
    "The C extension of the tessera package: a thin layer over the public C API.",
    0,
    mod_methods,
    mod_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__tessera(void)
{
    return PyModuleDef_Init(&mod_def);
}
