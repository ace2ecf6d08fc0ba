/*
 * bufview.c — BufferView: engine memory exported through the buffer
 * protocol.
 *
 * numpy.asarray(view) makes an ndarray over the same bytes (no copy) whose
 * base is the view, and the view holds a reference to the object that owns
 * the memory (a Results, a Run, ...), so the memory lives as long as any
 * array made from it.  Views of tiles lent to a Python UDF have no owner: the
 * engine reuses that memory after the callback (docs/python.md says so), and
 * they are read-only.
 *
 * The format is a single struct-module character in native byte order, so
 * numpy takes its fast path (no format parsing in Python) and the same
 * binary works with numpy 1.x and 2.x.
 */
#include "ext.h"

PyTypeObject *tsrpy_BufferViewType;

const char *tsrpy_format(tsr_dtype_t dt)
{
    switch (dt) {
    case TSR_U8: return "B";
    case TSR_U16: return "H";
    case TSR_U32: return "I";
    case TSR_U64: return "Q";
    case TSR_I8: return "b";
    case TSR_I16: return "h";
    case TSR_I32: return "i";
    case TSR_I64: return "q";
    case TSR_F32: return "f";
    case TSR_F64: return "d";
    case TSR_C64: return "Zf";
    case TSR_BOOL: return "?";
    default: return NULL;
    }
}

PyObject *tsrpy_bufview_new(void *buf, tsr_dtype_t dtype, int ndim, const int64_t *dims,
                            PyObject *owner, int readonly)
{
    const char *fmt = tsrpy_format(dtype);
    if (!fmt || ndim < 0 ||
        ndim > (int)(sizeof(((tsrpy_BufferView *)0)->shape) / sizeof(Py_ssize_t))) {
        PyErr_Format(PyExc_ValueError, "cannot export dtype %d with %d dimensions", (int)dtype,
                     ndim);
        return NULL;
    }
    allocfunc alloc = (allocfunc)PyType_GetSlot(tsrpy_BufferViewType, Py_tp_alloc);
    tsrpy_BufferView *v = (tsrpy_BufferView *)alloc(tsrpy_BufferViewType, 0);
    if (!v)
        return NULL;
    v->buf = buf;
    v->readonly = readonly;
    v->ndim = ndim;
    v->itemsize = (Py_ssize_t)tsr_dtype_size(dtype);
    snprintf(v->format, sizeof v->format, "%s", fmt);
    Py_ssize_t stride = v->itemsize;
    for (int i = ndim - 1; i >= 0; i--) {
        v->shape[i] = (Py_ssize_t)dims[i];
        v->strides[i] = stride;
        stride *= v->shape[i];
    }
    Py_XINCREF(owner);
    v->owner = owner;
    return (PyObject *)v;
}

static int bv_getbuffer(PyObject *obj, Py_buffer *view, int flags)
{
    tsrpy_BufferView *v = (tsrpy_BufferView *)obj;
    if ((flags & PyBUF_WRITABLE) == PyBUF_WRITABLE && v->readonly) {
        PyErr_SetString(PyExc_BufferError,
                        "this view is read-only (tiles are lent to a UDF read-only)");
        return -1;
    }
    Py_ssize_t n = 1;
    for (int i = 0; i < v->ndim; i++)
        n *= v->shape[i];
    view->buf = v->buf;
    view->obj = Py_NewRef(obj);
    view->len = n * v->itemsize;
    view->readonly = v->readonly;
    view->itemsize = v->itemsize;
    view->format = (flags & PyBUF_FORMAT) == PyBUF_FORMAT ? v->format : NULL;
    view->ndim = v->ndim;
    view->shape = (flags & PyBUF_ND) == PyBUF_ND ? v->shape : NULL;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? v->strides : NULL;
    view->suboffsets = NULL;
    view->internal = NULL;
    if (!view->shape) /* a plain bytes buffer (the data are C-contiguous) */
        view->itemsize = 1;
    return 0;
}

static void bv_releasebuffer(PyObject *obj, Py_buffer *view)
{
    (void)obj;
    (void)view;
}

static int bv_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((tsrpy_BufferView *)self)->owner);
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int bv_clear(PyObject *self)
{
    Py_CLEAR(((tsrpy_BufferView *)self)->owner);
    return 0;
}

static void bv_dealloc(PyObject *self)
{
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    bv_clear(self);
    freefunc f = (freefunc)PyType_GetSlot(tp, Py_tp_free);
    f(self);
    Py_DECREF(tp);
}

static PyObject *bv_repr(PyObject *self)
{
    tsrpy_BufferView *v = (tsrpy_BufferView *)self;
    return PyUnicode_FromFormat("<tessera BufferView format=%s ndim=%d%s>", v->format, v->ndim,
                                v->readonly ? " read-only" : "");
}

static PyType_Slot bv_slots[] = {
    {Py_bf_getbuffer, (void *)bv_getbuffer},
    {Py_bf_releasebuffer, (void *)bv_releasebuffer},
    {Py_tp_traverse, (void *)bv_traverse},
    {Py_tp_clear, (void *)bv_clear},
    {Py_tp_dealloc, (void *)bv_dealloc},
    {Py_tp_repr, (void *)bv_repr},
    {Py_tp_doc, (void *)"Engine memory exported through the buffer protocol (numpy.asarray "
                        "wraps it without a copy)."},
    {0, NULL},
};

static PyType_Spec bv_spec = {
    "tessera._tessera.BufferView",
    sizeof(tsrpy_BufferView),
    0,
    Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    bv_slots,
};

int tsrpy_add_bufview_type(PyObject *m)
{
    tsrpy_BufferViewType = (PyTypeObject *)PyType_FromSpec(&bv_spec);
    if (!tsrpy_BufferViewType)
        return -1;
    return PyModule_AddObjectRef(m, "BufferView", (PyObject *)tsrpy_BufferViewType);
}
