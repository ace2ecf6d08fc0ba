/*
 * pyudf.c — Python objects as UDFs: a tsr_udf_def_t whose callbacks call a
 * "runner" object of the Python layer (tessera/_udf.py, class _Runner).
 *
 * The engine calls these callbacks on its worker threads; each takes the GIL
 * for the length of the call.  What crosses the boundary is kept small and
 * flat: BufferViews of the engine's buffers and tiles, and integers.  The
 * runner turns them into numpy arrays and LiberTEM-style calls:
 *
 *   init          runner._tsr_init(meta) -> (decls, input_dtype, method,
 *                                            tile_depth, custom_merge)
 *   task_start    runner._tsr_task_start(views, part_start, part_end,
 *                                        row_start, rows, input_dtype) -> task
 *   process_tile  task._tsr_tile(tile, row, depth, nav_index, sig_start, sig_len)
 *   process_frame task._tsr_frame(frame, row, nav_index)
 *   process_part. task._tsr_partition(data, n, nav_index)
 *   task_stop     task._tsr_stop()
 *   merge         runner._tsr_merge(dest_views, src_views, row_start, rows)
 *                 (NAV-only UDFs without a merge of their own: rows are
 *                 copied here, without Python)
 *   finalize      runner._tsr_finalize(views, valid)
 *
 * Task views cover the task's rows of NAV buffers ((rows, *extra)), whole
 * SIG buffers ((*sig, *extra)) and SINGLE ones (extra); the runner slices
 * them per tile.  Tiles are read-only views of memory the engine reuses
 * after the callback.
 *
 * A Python exception in a callback is handed to runner._tsr_record(where,
 * exc), which keeps it (with its traceback) for the Python layer to re-raise
 * and returns the one-line message the run carries; the callback then fails
 * with TSR_EUDF, which stops the run.
 */
#include "ext.h"

#include <string.h>

struct tsrpy_pyudf {
    tsr_udf_def_t def;
    tsrpy_threads_t *threads; /* the run's thread states */
    char name[64];
    PyObject *runner; /* borrowed: the Run holds it */
    int custom_merge;
    int n_decls;
    tsr_buffer_decl_t decls[TSR_UDF_MAX_BUFFERS];
    tsr_shape_t nav, sig;
};

/* ---- the GIL on worker threads -------------------------------------------

   PyGILState_Ensure on a thread Python does not know creates a thread state
   and PyGILState_Release deletes it again: tens of microseconds per call.  So
   a worker thread makes one thread state (PyThreadState_New, which also
   registers it with the PyGILState API of that thread) on its first callback
   of a run, keeps it in a thread-local variable and takes the GIL with it
   afterwards.  The run lists them and deletes them when it is freed, after
   its threads have ended.  A thread that already has a thread state (the
   caller's, with the inline executor) uses PyGILState_Ensure. */

struct tsrpy_threads {
    uint64_t id;
    PyInterpreterState *interp;
    PyThreadState **ts; /* guarded by: the GIL */
    int n, cap;
};

static uint64_t next_threads_id = 1; /* guarded by: the GIL */

static _Thread_local struct {
    uint64_t id;
    PyThreadState *ts;
} tl;

typedef struct {
    int gilstate;
    PyGILState_STATE g;
} gil_t;

static void gil_enter(tsrpy_threads_t *reg, gil_t *e)
{
    if (tl.id == reg->id && tl.ts) {
        e->gilstate = 0;
        PyEval_RestoreThread(tl.ts);
        return;
    }
    PyThreadState *ts = PyGILState_GetThisThreadState() ? NULL : PyThreadState_New(reg->interp);
    if (!ts) {
        e->gilstate = 1;
        e->g = PyGILState_Ensure();
        return;
    }
    PyEval_RestoreThread(ts);
    e->gilstate = 0;
    if (reg->n == reg->cap) {
        int cap = reg->cap ? 2 * reg->cap : 8;
        PyThreadState **a = PyMem_Realloc(reg->ts, (size_t)cap * sizeof *a);
        if (!a)
            return; /* not kept: a thread state leaks, nothing breaks */
        reg->ts = a;
        reg->cap = cap;
    }
    reg->ts[reg->n++] = ts;
    tl.id = reg->id;
    tl.ts = ts;
}

static void gil_leave(gil_t *e)
{
    if (e->gilstate)
        PyGILState_Release(e->g);
    else
        PyEval_SaveThread();
}

tsrpy_threads_t *tsrpy_threads_new(void)
{
    tsrpy_threads_t *r = PyMem_Calloc(1, sizeof *r);
    if (!r) {
        PyErr_NoMemory();
        return NULL;
    }
    r->id = next_threads_id++;
    r->interp = PyInterpreterState_Get();
    return r;
}

int tsrpy_finalizing = 0;

void tsrpy_threads_free(tsrpy_threads_t *r)
{
    if (!r)
        return;
    /* after tsrpy_shutdown, the interpreter's finalization deletes them */
    for (int i = 0; !tsrpy_finalizing && i < r->n; i++) {
        PyThreadState_Clear(r->ts[i]);
        PyThreadState_Delete(r->ts[i]);
    }
    PyMem_Free(r->ts);
    PyMem_Free(r);
}

/* ---- method names --------------------------------------------------------- */

static PyObject *s_init, *s_task_start, *s_tile, *s_frame, *s_partition, *s_stop, *s_merge,
    *s_finalize, *s_record;

static int intern_names(void)
{
    if (s_init)
        return 0;
    s_init = PyUnicode_InternFromString("_tsr_init");
    s_task_start = PyUnicode_InternFromString("_tsr_task_start");
    s_tile = PyUnicode_InternFromString("_tsr_tile");
    s_frame = PyUnicode_InternFromString("_tsr_frame");
    s_partition = PyUnicode_InternFromString("_tsr_partition");
    s_stop = PyUnicode_InternFromString("_tsr_stop");
    s_merge = PyUnicode_InternFromString("_tsr_merge");
    s_finalize = PyUnicode_InternFromString("_tsr_finalize");
    s_record = PyUnicode_InternFromString("_tsr_record");
    return s_init && s_task_start && s_tile && s_frame && s_partition && s_stop && s_merge &&
                   s_finalize && s_record
               ? 0
               : -1;
}

/* ---- errors ------------------------------------------------------------- */

/* Hand the pending Python exception to the runner; write the message. */
static void take_exception(tsrpy_pyudf_t *p, const char *where, char *buf, size_t n)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (!value) {
        snprintf(buf, n, "UDF %s: %s failed", p->name, where);
        Py_XDECREF(type);
        Py_XDECREF(tb);
        return;
    }
    if (tb)
        PyException_SetTraceback(value, tb);
    PyObject *w = PyUnicode_FromString(where);
    PyObject *msg = w ? PyObject_CallMethodObjArgs(p->runner, s_record, w, value, NULL) : NULL;
    Py_XDECREF(w);
    const char *s = msg ? PyUnicode_AsUTF8AndSize(msg, NULL) : NULL;
    if (s) {
        snprintf(buf, n, "%s", s);
    } else {
        PyErr_Clear();
        PyObject *str = PyObject_Str(value);
        const char *v = str ? PyUnicode_AsUTF8AndSize(str, NULL) : NULL;
        if (!v)
            PyErr_Clear();
        snprintf(buf, n, "UDF %s: %s raised %s", p->name, where, v ? v : "an exception");
        Py_XDECREF(str);
    }
    Py_XDECREF(msg);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

static int call_failed(tsrpy_pyudf_t *p, const tsr_udf_call_t *c, const char *where)
{
    char msg[480];
    take_exception(p, where, msg, sizeof msg);
    return tsr_udf_error(c, TSR_EUDF, "%s", msg);
}

/* ---- views -------------------------------------------------------------- */

/* The BufferView of buffer i's view v, whole sig; None where no data. */
static PyObject *buffer_view(const tsrpy_pyudf_t *p, int i, const tsr_view_t *v)
{
    if (!v->data)
        Py_RETURN_NONE;
    const tsr_buffer_decl_t *d = &p->decls[i];
    int64_t dims[2 * TSR_MAX_DIMS + 1];
    int nd = 0;
    if (d->kind == TSR_KIND_NAV) {
        dims[nd++] = v->rows;
    } else if (d->kind == TSR_KIND_SIG) {
        for (int k = 0; k < p->sig.ndim; k++)
            dims[nd++] = p->sig.dims[k];
    }
    for (int k = 0; k < d->extra_ndim; k++)
        dims[nd++] = d->extra_shape[k];
    return tsrpy_bufview_new(v->data, v->dtype, nd, dims, NULL, 0);
}

static PyObject *buffer_views(const tsrpy_pyudf_t *p, const tsr_view_t *views, int n)
{
    PyObject *t = PyTuple_New(n);
    for (int i = 0; t && i < n; i++) {
        PyObject *v = buffer_view(p, i, &views[i]);
        if (!v) {
            Py_CLEAR(t);
            break;
        }
        PyTuple_SetItem(t, i, v);
    }
    return t;
}

/* A read-only view of a tile: (depth, rows of the sig slice, *sig[1:]), or
 * the sig shape alone for a frame. */
static PyObject *tile_view(const tsrpy_pyudf_t *p, const tsr_tile_t *t, int frame)
{
    int64_t dims[TSR_MAX_DIMS + 1];
    int nd = 0;
    int64_t inner = 1;
    for (int k = 1; k < p->sig.ndim; k++)
        inner *= p->sig.dims[k];
    if (!frame)
        dims[nd++] = t->depth;
    dims[nd++] = t->sig_len / inner;
    for (int k = 1; k < p->sig.ndim; k++)
        dims[nd++] = p->sig.dims[k];
    return tsrpy_bufview_new((void *)t->data, t->dtype, nd, dims, NULL, 1);
}

/* ---- callbacks ---------------------------------------------------------- */

static int parse_decl(PyObject *item, tsr_buffer_decl_t *d, char *err, size_t n)
{
    const char *name;
    int kind, dtype;
    unsigned flags;
    PyObject *extra;
    if (!PyArg_ParseTuple(item, "siiOI", &name, &kind, &dtype, &extra, &flags))
        return -1;
    memset(d, 0, sizeof *d);
    if (strlen(name) >= sizeof d->name) {
        snprintf(err, n, "buffer name '%s' is longer than %zu characters", name,
                 sizeof d->name - 1);
        return 1;
    }
    snprintf(d->name, sizeof d->name, "%s", name);
    d->kind = (tsr_buf_kind_t)kind;
    d->dtype = (tsr_dtype_t)dtype;
    d->flags = flags;
    tsr_shape_t s;
    if (tsrpy_shape_parse(extra, &s, "extra_shape"))
        return -1;
    d->extra_ndim = s.ndim;
    memcpy(d->extra_shape, s.dims, sizeof s.dims);
    return 0;
}

static int py_init(tsr_udf_init_t *in)
{
    tsrpy_pyudf_t *p = in->user_data;
    gil_t g;
    gil_enter(p->threads, &g);
    int rc = TSR_EUDF;
    p->nav = in->meta->nav_shape;
    p->sig = in->meta->sig_shape;
    PyObject *roi = Py_None, *res = NULL;
    Py_INCREF(roi);
    if (in->meta->roi) {
        Py_DECREF(roi);
        roi = tsrpy_bufview_new((void *)in->meta->roi, TSR_BOOL, p->nav.ndim, p->nav.dims, NULL, 1);
    }
    PyObject *meta =
        roi ? Py_BuildValue("(NNiiOL)", tsrpy_shape_tuple(&p->nav), tsrpy_shape_tuple(&p->sig),
                            (int)in->meta->dataset_dtype, (int)in->meta->input_dtype, roi,
                            (long long)in->meta->roi_count)
            : NULL;
    Py_XDECREF(roi);
    if (meta)
        res = PyObject_CallMethodObjArgs(p->runner, s_init, meta, NULL);
    Py_XDECREF(meta);
    PyObject *decls;
    int input_dtype, method, custom_merge;
    long long depth;
    if (!res ||
        !PyArg_ParseTuple(res, "OiiLp", &decls, &input_dtype, &method, &depth, &custom_merge))
        goto pyfail;
    PyObject *fast = PySequence_Tuple(decls);
    if (!fast)
        goto pyfail;
    Py_ssize_t n = PyTuple_Size(fast);
    if (n > TSR_UDF_MAX_BUFFERS) {
        snprintf(in->errmsg, sizeof in->errmsg, "UDF %s declares %zd buffers (at most %d)", p->name,
                 n, TSR_UDF_MAX_BUFFERS);
        Py_DECREF(fast);
        rc = TSR_EINVAL;
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int r =
            parse_decl(PyTuple_GetItem(fast, i), &in->buffers[i], in->errmsg, sizeof in->errmsg);
        if (r) {
            Py_DECREF(fast);
            if (r < 0)
                goto pyfail;
            rc = TSR_EINVAL;
            goto done;
        }
    }
    Py_DECREF(fast);
    in->n_buffers = (int)n;
    in->input_dtype = (tsr_dtype_t)input_dtype;
    in->method = (tsr_method_t)method;
    in->tile_depth = depth;
    p->custom_merge = custom_merge;
    p->n_decls = (int)n;
    memcpy(p->decls, in->buffers, sizeof p->decls);
    rc = 0;
    goto done;
pyfail:
    take_exception(p, "init", in->errmsg, sizeof in->errmsg);
    rc = TSR_EUDF;
done:
    Py_XDECREF(res);
    gil_leave(&g);
    return rc;
}

static int py_task_start(const tsr_udf_call_t *c, void **task_state)
{
    tsrpy_pyudf_t *p = c->user_data;
    gil_t g;
    gil_enter(p->threads, &g);
    int rc = 0;
    const tsr_udf_meta_t *m = c->meta;
    PyObject *views = buffer_views(p, c->bufs, c->n_bufs);
    PyObject *args =
        views ? Py_BuildValue("(NLLLLi)", views, (long long)m->part_start, (long long)m->part_end,
                              (long long)m->row_start, (long long)m->rows, (int)m->input_dtype)
              : NULL;
    PyObject *task = NULL;
    if (args) {
        PyObject *f = PyObject_GetAttr(p->runner, s_task_start);
        task = f ? PyObject_CallObject(f, args) : NULL;
        Py_XDECREF(f);
        Py_DECREF(args);
    }
    if (!task)
        rc = call_failed(p, c, "task start");
    *task_state = task;
    gil_leave(&g);
    return rc;
}

static void py_task_stop(const tsr_udf_call_t *c, void *task_state)
{
    tsrpy_pyudf_t *p = c->user_data;
    PyObject *task = task_state;
    if (!task)
        return;
    gil_t g;
    gil_enter(p->threads, &g);
    PyObject *r = PyObject_CallMethodObjArgs(task, s_stop, NULL);
    if (!r)
        call_failed(p, c, "postprocess"); /* recorded on the run: it fails */
    Py_XDECREF(r);
    Py_DECREF(task);
    gil_leave(&g);
}

static int process(const tsr_udf_call_t *c, const tsr_tile_t *t, int method)
{
    tsrpy_pyudf_t *p = c->user_data;
    PyObject *task = c->task_state;
    gil_t g;
    gil_enter(p->threads, &g);
    int rc = 0;
    PyObject *tv = tile_view(p, t, method == TSR_METHOD_FRAME), *r = NULL;
    if (tv) {
        long long row = (long long)(t->row - c->meta->row_start);
        PyObject *a = NULL, *b = NULL, *d = NULL, *e = NULL, *f = NULL;
        if (method == TSR_METHOD_TILE) {
            a = PyLong_FromLongLong(row);
            b = PyLong_FromLongLong(t->depth);
            d = PyLong_FromLongLong(t->nav_index);
            e = PyLong_FromLongLong(t->sig_start);
            f = PyLong_FromLongLong(t->sig_len);
            if (a && b && d && e && f)
                r = PyObject_CallMethodObjArgs(task, s_tile, tv, a, b, d, e, f, NULL);
        } else if (method == TSR_METHOD_FRAME) {
            a = PyLong_FromLongLong(row);
            d = PyLong_FromLongLong(t->nav_index);
            if (a && d)
                r = PyObject_CallMethodObjArgs(task, s_frame, tv, a, d, NULL);
        } else {
            b = PyLong_FromLongLong(t->depth);
            d = PyLong_FromLongLong(t->nav_index);
            if (b && d)
                r = PyObject_CallMethodObjArgs(task, s_partition, tv, b, d, NULL);
        }
        Py_XDECREF(a);
        Py_XDECREF(b);
        Py_XDECREF(d);
        Py_XDECREF(e);
        Py_XDECREF(f);
        Py_DECREF(tv);
    }
    if (!r)
        rc = call_failed(p, c,
                         method == TSR_METHOD_TILE    ? "process_tile"
                         : method == TSR_METHOD_FRAME ? "process_frame"
                                                      : "process_partition");
    Py_XDECREF(r);
    gil_leave(&g);
    return rc;
}

static int py_process_tile(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    return process(c, t, TSR_METHOD_TILE);
}

static int py_process_frame(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    return process(c, t, TSR_METHOD_FRAME);
}

static int py_process_partition(const tsr_udf_call_t *c, const tsr_tile_t *t)
{
    return process(c, t, TSR_METHOD_PARTITION);
}

static int py_merge(const tsr_udf_call_t *c, const tsr_view_t *src)
{
    tsrpy_pyudf_t *p = c->user_data;
    if (!p->custom_merge) { /* NAV buffers only: place the rows, as the runtime does */
        for (int i = 0; i < c->n_bufs; i++) {
            if (p->decls[i].kind != TSR_KIND_NAV || !c->bufs[i].data || !src[i].data)
                continue;
            memcpy(c->bufs[i].data, src[i].data,
                   (size_t)(c->bufs[i].rows * c->bufs[i].row_elems) *
                       tsr_dtype_size(c->bufs[i].dtype));
        }
        return 0;
    }
    gil_t g;
    gil_enter(p->threads, &g);
    int rc = 0;
    PyObject *dest = buffer_views(p, c->bufs, c->n_bufs);
    PyObject *srcv = dest ? buffer_views(p, src, c->n_bufs) : NULL;
    PyObject *args = srcv ? Py_BuildValue("(OOLL)", dest, srcv, (long long)c->meta->row_start,
                                          (long long)c->meta->rows)
                          : NULL;
    PyObject *r = NULL;
    if (args) {
        PyObject *f = PyObject_GetAttr(p->runner, s_merge);
        r = f ? PyObject_CallObject(f, args) : NULL;
        Py_XDECREF(f);
    }
    if (!r)
        rc = call_failed(p, c, "merge");
    Py_XDECREF(r);
    Py_XDECREF(args);
    Py_XDECREF(srcv);
    Py_XDECREF(dest);
    gil_leave(&g);
    return rc;
}

static int py_finalize(const tsr_udf_call_t *c)
{
    tsrpy_pyudf_t *p = c->user_data;
    gil_t g;
    gil_enter(p->threads, &g);
    int rc = 0;
    PyObject *views = buffer_views(p, c->bufs, c->n_bufs);
    PyObject *valid = views ? tsrpy_bufview_new((void *)c->meta->valid, TSR_BOOL, p->nav.ndim,
                                                p->nav.dims, NULL, 1)
                            : NULL;
    PyObject *r =
        valid ? PyObject_CallMethodObjArgs(p->runner, s_finalize, views, valid, NULL) : NULL;
    if (!r)
        rc = call_failed(p, c, "get_results");
    Py_XDECREF(r);
    Py_XDECREF(valid);
    Py_XDECREF(views);
    gil_leave(&g);
    return rc;
}

/* ---- the definition ----------------------------------------------------- */

tsrpy_pyudf_t *tsrpy_pyudf_new(PyObject *runner, const char *name, tsrpy_threads_t *threads)
{
    if (intern_names())
        return NULL;
    tsrpy_pyudf_t *p = PyMem_Calloc(1, sizeof *p);
    if (!p) {
        PyErr_NoMemory();
        return NULL;
    }
    snprintf(p->name, sizeof p->name, "%s", name);
    p->runner = runner;
    p->threads = threads;
    p->def.abi_version = TSR_UDF_ABI_VERSION;
    p->def.name = p->name;
    p->def.description = "a Python UDF";
    p->def.init = py_init;
    p->def.task_start = py_task_start;
    p->def.task_stop = py_task_stop;
    p->def.process_tile = py_process_tile;
    p->def.process_frame = py_process_frame;
    p->def.process_partition = py_process_partition;
    p->def.merge = py_merge;
    p->def.finalize = py_finalize;
    return p;
}

const tsr_udf_def_t *tsrpy_pyudf_def(tsrpy_pyudf_t *p)
{
    return &p->def;
}

void tsrpy_pyudf_free(tsrpy_pyudf_t *p)
{
    PyMem_Free(p);
}
