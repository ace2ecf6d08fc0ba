"""Python UDFs: LiberTEM's UDF interface, run by the Tessera engine.

Subclass :class:`UDF`, declare result buffers in ``get_result_buffers`` with
``self.buffer(kind=..., extra_shape=..., dtype=...)`` and implement one of
``process_tile`` / ``process_frame`` / ``process_partition``; optionally
``get_task_data``, ``preprocess``, ``postprocess``, ``merge`` and
``get_results``.  The methods see ``self.params``, ``self.meta``,
``self.task_data`` and ``self.results`` as in LiberTEM (docs/python.md has
the details and a side-by-side port).

How it runs: the engine calls the C bridge (python/src/pyudf.c) on its
worker threads; the bridge takes the GIL and calls a _Runner (one per UDF
and run) or a _Task (one per partition, on one worker).  Each task works on
its own copy of the UDF (``udf.copy()``, i.e. ``cls(**kwargs)``, as LiberTEM
does), so that tasks on different threads never share ``self.results``.
Buffers are the engine's memory seen through numpy without copies; per tile
only the views are re-sliced.
"""

import math
import traceback

import numpy as np

from . import _tessera
from ._shapes import Shape, Slice

_DTYPE_NAMES = _tessera.dtypes()
_CODE_OF = {np.dtype(name): code for code, name in enumerate(_DTYPE_NAMES)}
NAV, SIG, SINGLE = _tessera.KIND_NAV, _tessera.KIND_SIG, _tessera.KIND_SINGLE
_KINDS = {"nav": NAV, "sig": SIG, "single": SINGLE}
_KIND_NAMES = {v: k for k, v in _KINDS.items()}
_METHODS = {"tile": _tessera.METHOD_TILE, "frame": _tessera.METHOD_FRAME,
            "partition": _tessera.METHOD_PARTITION}


def dtype_of_code(code):
    return np.dtype(_DTYPE_NAMES[code])


def code_of_dtype(dt, what):
    dt = np.dtype(dt)
    code = _CODE_OF.get(dt.newbyteorder("=") if dt.byteorder == "=" else dt)
    if code is None:
        code = _CODE_OF.get(dt)
    if code is None:
        raise TypeError(f"{what}: dtype {dt} is not supported (Tessera buffers hold "
                        f"{', '.join(_DTYPE_NAMES)} in native byte order)")
    return code


# ---------------------------------------------------------------------------
# Namespaces


class UDFParams:
    """``self.params``: the keyword arguments of the UDF, by attribute."""

    def __init__(self, kwargs):
        self.__dict__.update(kwargs)

    def __getattr__(self, k):
        raise AttributeError(f"the UDF has no parameter {k!r}")

    def __contains__(self, k):
        return k in self.__dict__

    def get(self, k, default=None):
        return self.__dict__.get(k, default)

    def keys(self):
        return self.__dict__.keys()

    def items(self):
        return self.__dict__.items()

    def __repr__(self):
        return f"UDFParams({self.__dict__!r})"


class UDFData:
    """``self.results`` / ``self.task_data``: arrays by attribute.

    In the process methods, ``self.results.<name>`` is the view of buffer
    <name> for the current tile, frame or partition.  Assigning to an
    attribute writes into the buffer (``self.results.x = v`` is
    ``self.results.x[:] = v``), as in LiberTEM."""

    def __getattr__(self, k):
        raise AttributeError(f"no buffer or task data named {k!r}")

    def __setattr__(self, k, v):
        d = self.__dict__
        if k in d and isinstance(d[k], np.ndarray):
            d[k][...] = v
        else:
            d[k] = v

    def __contains__(self, k):
        return k in self.__dict__

    def get(self, k, default=None):
        return self.__dict__.get(k, default)

    def keys(self):
        return self.__dict__.keys()

    def items(self):
        return self.__dict__.items()

    def as_dict(self):
        return dict(self.__dict__)

    def __repr__(self):
        return f"UDFData({sorted(self.__dict__)})"


class MergeAttrMapping:
    """``dest`` and ``src`` of merge: the buffers by attribute (``dest.x``).
    Assigning to an attribute writes into the buffer."""

    def __init__(self, arrays):
        object.__setattr__(self, "_d", arrays)

    def __getattr__(self, k):
        try:
            return self._d[k]
        except KeyError:
            raise AttributeError(f"no buffer named {k!r}") from None

    def __setattr__(self, k, v):
        self._d[k][...] = v

    def __iter__(self):
        return iter(self._d)

    def __contains__(self, k):
        return k in self._d

    def __getitem__(self, k):
        return self._d[k]

    def keys(self):
        return self._d.keys()

    def items(self):
        return self._d.items()


class BufferDecl:
    """A result buffer declaration (LiberTEM's BufferWrapper), made by
    :meth:`UDF.buffer`."""

    __slots__ = ("kind", "extra_shape", "dtype", "use")

    def __init__(self, kind, extra_shape=(), dtype="float32", use=None):
        if kind not in _KINDS:
            raise ValueError(f"buffer kind must be 'nav', 'sig' or 'single', not {kind!r}")
        if use not in (None, "private", "result_only"):
            raise ValueError(f"buffer use must be None, 'private' or 'result_only', not {use!r}")
        if isinstance(extra_shape, int):
            extra_shape = (extra_shape,)
        self.kind = kind
        self.extra_shape = tuple(int(d) for d in extra_shape)
        self.dtype = np.dtype(dtype)
        self.use = use

    def __repr__(self):
        return (f"BufferDecl(kind={self.kind!r}, extra_shape={self.extra_shape}, "
                f"dtype={self.dtype}, use={self.use!r})")


# ---------------------------------------------------------------------------
# Meta


class UDFMeta:
    """``self.meta``: what a UDF knows about the run and the current data.

    Attributes: ``dataset_shape`` (Shape), ``roi`` (nav-shaped bool or None),
    ``dataset_dtype``, ``input_dtype`` (the dtype of the tiles),
    ``corrections``, ``device_class`` ("cpu"), ``array_backend`` ("numpy");
    during a task ``partition_shape``, ``slice`` / ``sig_slice`` (where the
    current tile lies, nav flattened and reduced to the ROI),
    ``coordinates`` (nav coordinates of the current frames, one row each)
    and ``nav_index`` (flat nav index of the current first frame)."""

    device_class = "cpu"
    array_backend = "numpy"
    threads_per_worker = None

    def __init__(self, dataset_shape, roi, dataset_dtype, input_dtype, corrections):
        self.dataset_shape = dataset_shape
        self.roi = roi
        self.dataset_dtype = dataset_dtype
        self.input_dtype = input_dtype
        self.corrections = corrections
        self._part = None  # (part_start, part_end, row_start, rows)
        self._cur = None  # (row in task, depth, nav_index, sig_start, sig_len)
        self._valid = None

    def _for_task(self, part, input_dtype):
        m = UDFMeta.__new__(UDFMeta)
        m.__dict__.update(self.__dict__)
        m._part = part
        m._cur = None
        m.input_dtype = input_dtype
        return m

    @property
    def partition_shape(self):
        if self._part is None:
            raise AttributeError("partition_shape is only known during a task")
        return Shape((self._part[3],) + tuple(self.dataset_shape.sig),
                     self.dataset_shape.sig_dims)

    def _sig_box(self):
        sig = tuple(self.dataset_shape.sig)
        _, _, _, s0, slen = self._cur
        inner = math.prod(sig[1:])
        return (s0 // inner,) + (0,) * (len(sig) - 1), (slen // inner,) + sig[1:]

    @property
    def slice(self):
        """Slice of the current tile, frame or partition (nav flattened and
        reduced to the ROI)."""
        if self._cur is None:
            return None
        row, n, _, _, _ = self._cur
        so, ss = self._sig_box()
        sd = self.dataset_shape.sig_dims
        return Slice((self._part[2] + row,) + so, Shape((n,) + ss, sd))

    @property
    def sig_slice(self):
        if self._cur is None:
            return None
        so, ss = self._sig_box()
        return Slice(so, Shape(ss, self.dataset_shape.sig_dims))

    @property
    def nav_index(self):
        return None if self._cur is None else self._cur[2]

    @property
    def coordinates(self):
        """(n, nav_ndim) int array: the nav coordinates of the current frames."""
        if self._cur is None:
            return None
        row, n, nav_index, _, _ = self._cur
        nav = tuple(self.dataset_shape.nav)
        if self.roi is None:
            flat = np.arange(nav_index, nav_index + n)
        else:
            p0, p1 = self._part[0], self._part[1]
            sel = np.flatnonzero(self.roi.reshape(-1)[p0:p1]) + p0
            flat = sel[row:row + n]
        return np.stack(np.unravel_index(flat, nav), axis=1)

    def get_valid_nav_mask(self, full_nav=False):
        """In get_results: the flat mask of the positions already processed
        (compressed to the ROI unless full_nav)."""
        if self._valid is None:
            return None
        if full_nav or self.roi is None:
            return self._valid.copy()
        return self._valid[self.roi.reshape(-1)]


# ---------------------------------------------------------------------------
# The UDF base class


class UDF:
    """Base class of Python UDFs (LiberTEM's ``libertem.udf.base.UDF``).

    Keyword arguments of the constructor become ``self.params``.  A task
    works on ``self.copy()`` (``cls(**kwargs)``): if you override
    ``__init__``, accept your own keyword arguments again and pass them to
    ``super().__init__``."""

    USE_NATIVE_DTYPE = np.bool_
    TILE_DEPTH_DEFAULT = None
    TILE_DEPTH_MAX = math.inf
    TILE_SIZE_MAX = math.inf
    TILE_SIZE_BEST_FIT = None
    BACKEND_NUMPY = "numpy"

    def __init__(self, **kwargs):
        self._kwargs = kwargs
        self.params = UDFParams(kwargs)
        self.results = UDFData()
        self.task_data = UDFData()
        self.meta = None

    def copy(self):
        return self.__class__(**self._kwargs)

    # -- declarations ------------------------------------------------------

    def buffer(self, kind, extra_shape=(), dtype="float32", where=None, use=None):
        """Declare a result buffer: kind "nav" (nav_shape + extra_shape), "sig"
        (sig_shape + extra_shape) or "single" (extra_shape; (1,) if empty);
        use None, "private" (not returned) or "result_only" (written by
        get_results only)."""
        return BufferDecl(kind, extra_shape, dtype, use)

    def get_result_buffers(self):
        raise NotImplementedError(
            f"{type(self).__name__} must implement get_result_buffers()")

    def get_task_data(self):
        return {}

    def get_preferred_input_dtype(self):
        """float32 (default), float64, or UDF.USE_NATIVE_DTYPE; combined with
        the dataset's dtype as numpy.result_type does."""
        return np.float32

    def get_tiling_preferences(self):
        return {"depth": UDF.TILE_DEPTH_DEFAULT, "total_size": UDF.TILE_SIZE_MAX}

    def get_backends(self):
        return (UDF.BACKEND_NUMPY,)

    def get_method(self):
        cls = type(self)
        for m in ("tile", "frame", "partition"):
            if callable(getattr(cls, "process_" + m, None)):
                return m
        raise TypeError(f"{cls.__name__} should implement one of process_tile, "
                        f"process_frame or process_partition")

    @property
    def requires_custom_merge(self):
        return any(b.kind != "nav" and b.use != "result_only"
                   for b in self.get_result_buffers().values())

    @property
    def xp(self):
        return np

    def forbuf(self, arr, target):
        return arr

    # -- reduction ---------------------------------------------------------

    def merge(self, dest, src):
        """Fold a partition's results ``src`` into ``dest`` (both
        MergeAttrMapping).  The default places nav buffers; UDFs with sig or
        single buffers must override it."""
        for k in dest:
            dest[k][...] = src[k]

    def get_results(self):
        """Results after merging: a dict name -> array for buffers declared
        with use="result_only" (and any others to replace).  Nav buffers are
        flat, compressed to the ROI, as in self.results."""
        return {}


# ---------------------------------------------------------------------------
# The engine side


def _native_dtype_request(pref, ds_dtype):
    """(engine input_dtype code, numpy dtype the tiles will have) for a
    preferred input dtype."""
    pref = np.dtype(pref)
    if pref == np.dtype(np.bool_):
        return _tessera.DTYPE_NATIVE, ds_dtype
    if pref.kind in "iub" and np.result_type(pref, ds_dtype) == ds_dtype:
        return _tessera.DTYPE_NATIVE, ds_dtype
    if np.result_type(pref, np.float32) == np.float64 or pref == np.float64:
        return code_of_dtype(np.float64, "input"), np.result_type(ds_dtype, np.float64)
    return code_of_dtype(np.float32, "input"), np.result_type(ds_dtype, np.float32)


def _defines(obj, name):
    """Whether the UDF's class defines method name (not UDF's default)."""
    f = getattr(type(obj), name, None)
    return f is not None and f is not getattr(UDF, name, None)


class _Runner:
    """One Python UDF in one run: the object the C bridge calls."""

    def __init__(self, udf, corrections):
        self.udf = udf
        self.name = type(udf).__name__
        self.corrections = corrections
        self.exc = None
        self.where = None

    # -- errors ------------------------------------------------------------

    def _tsr_record(self, where, exc):
        """Keep the first exception (with its traceback); return the message
        the run carries."""
        if where == "init":  # name the UDF's method that raised
            tb = exc.__traceback__
            while tb is not None:
                if isinstance(tb.tb_frame.f_locals.get("self"), UDF):
                    where = tb.tb_frame.f_code.co_name
                tb = tb.tb_next
        if self.exc is None:
            self.exc = exc
            self.where = where
        lines = traceback.format_exception_only(type(exc), exc)
        text = lines[-1].strip() if lines else type(exc).__name__
        if where in ("merge", "get_results"):  # the engine names the UDF there
            return f"{where} raised {text}"
        return f"UDF {self.name}: {where} raised {text}"

    # -- init --------------------------------------------------------------

    def _tsr_init(self, meta):
        nav, sig, ds_code, native_code, roi_view, roi_count = meta
        u = self.udf
        ds_dtype = dtype_of_code(ds_code)
        roi = None if roi_view is None else np.array(roi_view, dtype=bool)
        self.roi = roi
        self.roi_flat = None if roi is None else roi.reshape(-1)
        self.nav = tuple(nav)
        self.sig = tuple(sig)
        self.meta = UDFMeta(Shape(self.nav + self.sig, len(sig)), roi, ds_dtype,
                            dtype_of_code(native_code), self.corrections)
        u.meta = self.meta
        req, in_dtype = _native_dtype_request(u.get_preferred_input_dtype(),
                                              dtype_of_code(native_code))
        self.meta.input_dtype = in_dtype
        decls = u.get_result_buffers()
        if not isinstance(decls, dict):
            raise TypeError("get_result_buffers() must return a dict name -> self.buffer(...)")
        self.decls = []
        out = []
        for name, d in decls.items():
            if not isinstance(d, BufferDecl):
                raise TypeError(f"buffer {name!r}: declare it with self.buffer(...), "
                                f"not {type(d).__name__}")
            extra = d.extra_shape
            if d.kind == "single" and extra == ():
                extra = (1,)
            flags = {None: 0, "private": _tessera.BUF_PRIVATE,
                     "result_only": _tessera.BUF_RESULT_ONLY}[d.use]
            code = code_of_dtype(d.dtype, f"buffer {name!r}")
            self.decls.append((name, _KINDS[d.kind], extra, d.use, dtype_of_code(code)))
            out.append((name, _KINDS[d.kind], code, extra, flags))
        custom_merge = _defines(u, "merge")
        if not custom_merge and any(d.kind != "nav" and d.use != "result_only"
                                    for d in decls.values()):
            raise NotImplementedError(
                "Default merging only works for kind='nav' buffers. "
                "Please implement a suitable custom merge function.")
        self.custom_results = _defines(u, "get_results")
        if not self.custom_results:
            for name, _, _, use, _ in self.decls:
                if use == "result_only":
                    raise NotImplementedError(
                        f"don't know how to set use='result_only' buffer {name!r}; "
                        f"please implement get_results")
        method = u.get_method()
        if method not in _METHODS:
            raise ValueError(f"get_method() returned {method!r}")
        if not callable(getattr(u, "process_" + method, None)):
            raise TypeError(f"{self.name}.get_method() is {method!r} but there is no "
                            f"process_{method}")
        depth = (u.get_tiling_preferences() or {}).get("depth")
        depth = int(depth) if depth is not None and math.isfinite(depth) else 0
        self.has_pre = callable(getattr(u, "preprocess", None))
        self.has_post = callable(getattr(u, "postprocess", None))
        return out, req, _METHODS[method], depth, custom_merge

    # -- tasks ---------------------------------------------------------------

    def _tsr_task_start(self, views, part_start, part_end, row_start, rows, input_code):
        return _Task(self, views, (part_start, part_end, row_start, rows),
                     dtype_of_code(input_code))

    # -- merge and results ---------------------------------------------------

    def _arrays(self, views):
        out = {}
        for (name, _, _, _, _), v in zip(self.decls, views):
            if v is not None:
                out[name] = np.asarray(v)
        return out

    def _tsr_merge(self, dest, src, row_start, rows):
        self.udf.meta = self.meta
        self.udf.merge(MergeAttrMapping(self._arrays(dest)), MergeAttrMapping(self._arrays(src)))

    def _tsr_finalize(self, views, valid_view):
        if not self.custom_results:
            return
        u = self.udf
        arrays = self._arrays(views)
        valid = np.asarray(valid_view).reshape(-1)
        roi = self.roi_flat
        ns = UDFData()
        for name, kind, extra, use, _ in self.decls:
            a = arrays[name]
            if kind == NAV and roi is not None:
                a = a[roi]
            ns.__dict__[name] = a
        u.results = ns
        self.meta._valid = valid
        u.meta = self.meta
        try:
            out = u.get_results()
        finally:
            self.meta._valid = None
            u.results = UDFData()
        if not isinstance(out, dict):
            raise TypeError("get_results() must return a dict name -> array")
        by_name = {d[0]: d for d in self.decls}
        for name, value in out.items():
            if name not in by_name:
                raise KeyError(f"get_results() returned {name!r}, which is not declared in "
                               f"get_result_buffers (hint: self.buffer(..., use='result_only'))")
            _, kind, extra, use, dtype = by_name[name]
            if use == "private":
                raise ValueError(f"get_results() returned the private buffer {name!r}")
            dst = arrays[name]
            value = np.asarray(value)
            if kind == NAV:
                nav_size = dst.shape[0]
                if roi is not None and value.shape == (int(roi.sum()),) + extra:
                    dst[roi] = value
                elif value.shape == (nav_size,) + extra:
                    dst[...] = value
                elif value.shape == self.nav + extra:
                    dst[...] = value.reshape(dst.shape)
                else:
                    raise ValueError(f"get_results(): {name!r} has shape {value.shape}; "
                                     f"expected {(nav_size,) + extra} or {self.nav + extra}")
                if not valid.all():
                    dst[~valid] = np.nan if dst.dtype.kind in "fc" else 0
            else:
                if value.size != dst.size and value.shape != ():
                    raise ValueError(f"get_results(): {name!r} has shape {value.shape}; "
                                     f"expected {dst.shape}")
                dst[...] = value.reshape(dst.shape) if value.shape != () else value


class _Task:
    """One partition on one worker: the UDF copy and its views."""

    def __init__(self, runner, views, part, input_dtype):
        u = runner.udf.copy()
        self.runner = runner
        self.udf = u
        self.meta = runner.meta._for_task(part, input_dtype)
        u.meta = self.meta
        rows = part[3]
        sig = runner.sig
        self.inner = math.prod(sig[1:])
        self.sig_size = math.prod(sig)
        self.nav_bufs = []
        self.sig_bufs = []
        ns = UDFData()
        d = ns.__dict__
        for (name, kind, extra, use, _), v in zip(runner.decls, views):
            if v is None:
                continue
            a = np.asarray(v)
            d[name] = a
            if kind == NAV:
                self.nav_bufs.append((name, a, len(extra) > 0))
            elif kind == SIG:
                self.sig_bufs.append((name, a))
        self.ns = d
        self.full = dict(d)
        u.results = ns
        u.task_data = UDFData()
        u.task_data.__dict__.update(u.get_task_data() or {})
        self.process_tile = getattr(u, "process_tile", None)
        self.process_frame = getattr(u, "process_frame", None)
        self.process_partition = getattr(u, "process_partition", None)
        self.rows = rows
        if runner.has_pre:
            self.meta._cur = (0, rows, part[0], 0, self.sig_size)
            u.preprocess()

    def _tsr_tile(self, view, row, n, nav_index, s0, slen):
        tile = np.asarray(view)
        d = self.ns
        for name, a, _ in self.nav_bufs:
            d[name] = a[row:row + n]
        if self.sig_bufs:
            if slen == self.sig_size:
                for name, a in self.sig_bufs:
                    d[name] = a
            else:
                y0, y1 = s0 // self.inner, (s0 + slen) // self.inner
                for name, a in self.sig_bufs:
                    d[name] = a[y0:y1]
        self.meta._cur = (row, n, nav_index, s0, slen)
        self.process_tile(tile)

    def _tsr_frame(self, view, row, nav_index):
        frame = np.asarray(view)
        d = self.ns
        for name, a, has_extra in self.nav_bufs:
            d[name] = a[row] if has_extra else a[row:row + 1]
        self.meta._cur = (row, 1, nav_index, 0, self.sig_size)
        self.process_frame(frame)

    def _tsr_partition(self, view, n, nav_index):
        data = np.asarray(view)
        self.ns.update(self.full)
        self.meta._cur = (0, n, nav_index, 0, self.sig_size)
        self.process_partition(data)

    def _tsr_stop(self):
        try:
            if self.runner.has_post and self.runner.exc is None:
                self.ns.update(self.full)
                self.meta._cur = (0, self.rows, self.meta._part[0], 0, self.sig_size)
                self.udf.postprocess()
        finally:
            self.udf.results = UDFData()
            self.ns = self.full = None
            self.nav_bufs = self.sig_bufs = None
