"""Context and DataSet: the entry points of the Python API.

    with tessera.Context(threads=4) as ctx:
        ds = ctx.load("auto", path="scan.npy")
        res = ctx.run_udf(dataset=ds, udf=tessera.udf.SumUDF())
        frame_sum = res["intensity"].data

A Context wraps an engine context (its options apply to the runs it
starts).  Runs release the GIL while the engine works; Python UDFs run on
the engine's worker threads beside the built-in ones, in the same pass.
"""

import json
import sys
import time

import numpy as np

from . import _tessera
from ._errors import TesseraError
from ._params import TempFiles, encode, schema_of
from ._results import UDFResults, wrap_results
from ._shapes import Shape
from ._udf import UDF, _Runner, code_of_dtype, dtype_of_code

_EXECUTORS = {"threads": _tessera.EXEC_THREADS, "inline": _tessera.EXEC_INLINE}
_IO_BACKENDS = {"auto": _tessera.IO_AUTO, "pread": _tessera.IO_PREAD, "mmap": _tessera.IO_MMAP,
                "direct": _tessera.IO_DIRECT, "uring": _tessera.IO_URING}


def _format_schemas():
    return {name: schema_of(params) for name, _, params in _tessera.formats()}


class DataSet:
    """An open dataset: ``shape`` (a Shape: ``shape.nav``, ``shape.sig``),
    ``dtype`` (as stored, with its byte order), ``meta`` (dict: format
    header facts, detector, calibration, ...), ``format`` and
    ``image_count`` (frames in the file(s))."""

    def __init__(self, handle, source=None):
        info = handle.info()
        self._handle = handle
        self._source = source  # keeps the frames of a memory dataset alive
        self.shape = Shape(tuple(info["nav"]) + tuple(info["sig"]), len(info["sig"]))
        dt = dtype_of_code(info["dtype"])
        self.dtype = dt.newbyteorder(">") if info["big_endian"] else dt
        self.meta = json.loads(info["meta"])
        self.format = info["format"]
        self.image_count = info["image_count"]

    def __repr__(self):
        return (f"<tessera.DataSet {self.format} nav={tuple(self.shape.nav)} "
                f"sig={tuple(self.shape.sig)} dtype={self.dtype}>")


class CorrectionSet:
    """Corrections applied while reading: ``dark`` (subtracted), ``gain``
    (multiplied) and ``excluded_pixels`` (patched from their neighbours):
    sig-shaped arrays; excluded_pixels may also be LiberTEM's coordinate
    array of shape (sig_dims, n)."""

    def __init__(self, dark=None, gain=None, excluded_pixels=None):
        self.dark = dark
        self.gain = gain
        self.excluded_pixels = excluded_pixels

    def have_corrections(self):
        return any(x is not None for x in (self.dark, self.gain, self.excluded_pixels))

    def _arrays(self, sig):
        def f32(a, what):
            if a is None:
                return None
            a = np.ascontiguousarray(a, dtype=np.float32)
            if a.shape != sig:
                raise ValueError(f"corrections: {what} has shape {a.shape}, expected {sig}")
            return a
        ex = self.excluded_pixels
        if ex is not None:
            ex = np.asarray(ex)
            if ex.shape != sig:
                if ex.ndim == 2 and ex.shape[0] == len(sig):
                    m = np.zeros(sig, dtype=np.uint8)
                    m[tuple(ex.astype(np.intp))] = 1
                    ex = m
                else:
                    raise ValueError(f"corrections: excluded_pixels has shape {ex.shape}, "
                                     f"expected {sig} or ({len(sig)}, n)")
            ex = np.ascontiguousarray(ex != 0, dtype=np.uint8)
        return f32(self.dark, "dark"), f32(self.gain, "gain"), ex


class _Progress:
    """A one-line progress bar on stderr."""

    def __init__(self, total, stream=None):
        self.total = max(int(total), 1)
        self.stream = stream or sys.stderr
        self.last = -1

    def update(self, done):
        pct = int(100 * done / self.total)
        if pct == self.last:
            return
        self.last = pct
        n = pct * 30 // 100
        self.stream.write(f"\r[{'#' * n}{' ' * (30 - n)}] {pct:3d}% {done}/{self.total} frames")
        self.stream.flush()

    def close(self):
        self.stream.write("\n")
        self.stream.flush()


def _raise_from_udfs(exc, runners):
    """Re-raise an engine error, chained to a Python UDF's own exception."""
    for r in runners:
        if r.exc is not None:
            raise exc from r.exc
    raise exc


class Context:
    """An engine context.

    threads: worker threads (None: one per core); executor: "threads"
    (default) or "inline" (everything on the calling thread); and the other
    engine options: partitions (force this many), partition_bytes,
    tile_bytes, io_backend ("auto", "pread", "mmap", "direct", "uring").
    Use it as a context manager, or call close()."""

    def __init__(self, threads=None, executor="threads", *, partitions=None,
                 partition_bytes=None, tile_bytes=None, io_backend=None):
        self._c = _tessera.Context()
        if executor not in _EXECUTORS:
            raise ValueError(f"executor must be one of {sorted(_EXECUTORS)}, not {executor!r}")
        self._c.set(_tessera.OPT_EXECUTOR, _EXECUTORS[executor])
        if threads is not None:
            self._c.set(_tessera.OPT_THREADS, int(threads))
        for opt, v in ((_tessera.OPT_PARTITIONS, partitions),
                       (_tessera.OPT_PARTITION_BYTES, partition_bytes),
                       (_tessera.OPT_TILE_BYTES, tile_bytes)):
            if v is not None:
                self._c.set(opt, int(v))
        if io_backend is not None:
            if io_backend not in _IO_BACKENDS:
                raise ValueError(f"io_backend must be one of {sorted(_IO_BACKENDS)}")
            self._c.set(_tessera.OPT_IO_BACKEND, _IO_BACKENDS[io_backend])

    # -- lifetime --------------------------------------------------------------

    def close(self):
        """Refuse further use.  Engine memory is released once nothing made
        from the context (datasets, results) is referenced any more."""
        self._c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def threads(self):
        return self._c.get(_tessera.OPT_THREADS)

    def memory(self):
        """(bytes the engine holds now, peak) through this context."""
        return self._c.memory()

    # -- datasets --------------------------------------------------------------

    def load(self, filetype="auto", path=None, **params):
        """Open a dataset.

        filetype: "auto" (detect) or a format of ``tessera.formats()``
        ("raw", "npy", ...); path: the file; params: the format's parameters
        (nav_shape=(4, 5), sig_shape=(256, 256), sync_offset=..., dtype=...).

        ``load("memory", data=array, sig_dims=2)`` wraps a numpy array
        without a copy (or nav_shape=/sig_shape= to reshape it)."""
        if filetype == "memory":
            return self._load_memory(**params)
        if path is None:
            raise TypeError("load() needs path=")
        fmt = None if filetype in (None, "auto") else filetype
        schema = _format_schemas().get(fmt) if fmt else None
        with TempFiles() as tmp:
            h = self._c.open(fmt, str(path), encode(params, schema, tmp))
        return DataSet(h)

    def _load_memory(self, data, sig_dims=2, nav_shape=None, sig_shape=None):
        arr = np.asarray(data)
        if arr.dtype.byteorder not in ("=", "|"):
            arr = arr.astype(arr.dtype.newbyteorder("="))
        arr = np.ascontiguousarray(arr)
        code = code_of_dtype(arr.dtype, "memory dataset")
        if sig_shape is None:
            sig_shape = arr.shape[arr.ndim - sig_dims:]
        if nav_shape is None:
            nav_shape = arr.shape[: arr.ndim - len(sig_shape)]
        nav_shape, sig_shape = tuple(nav_shape), tuple(sig_shape)
        if int(np.prod(nav_shape + sig_shape)) != arr.size:
            raise ValueError(f"memory dataset: nav_shape {nav_shape} and sig_shape "
                             f"{sig_shape} do not fit data of shape {arr.shape}")
        h = self._c.from_memory(arr, code, nav_shape, sig_shape)
        return DataSet(h, source=arr)

    # -- runs ------------------------------------------------------------------

    def _start(self, dataset, udfs, roi, corrections):
        from .udf import BuiltinUDF

        if not isinstance(dataset, DataSet):
            raise TypeError(f"dataset must be a tessera DataSet, not {type(dataset).__name__}")
        nav = tuple(dataset.shape.nav)
        sig = tuple(dataset.shape.sig)
        if isinstance(corrections, dict):
            corrections = CorrectionSet(**corrections)
        specs, runners = [], []
        with TempFiles() as tmp:
            for u in udfs:
                if isinstance(u, BuiltinUDF):
                    specs.append((u._tsr_name, encode(u._params, u._tsr_schema, tmp)))
                elif isinstance(u, UDF):
                    r = _Runner(u, corrections)
                    runners.append(r)
                    specs.append((r, type(u).__name__))
                else:
                    raise TypeError(f"not a UDF: {u!r} (use tessera.udf.* or subclass "
                                    f"tessera.UDF)")
            roi_b = None
            if roi is not None:
                roi_a = np.asarray(roi)
                if roi_a.shape != nav and roi_a.size != int(np.prod(nav)):
                    raise ValueError(f"roi has shape {roi_a.shape}, expected the nav shape {nav}")
                roi_b = np.ascontiguousarray(roi_a.reshape(-1) != 0, dtype=np.uint8)
            dark = gain = excl = None
            if corrections is not None:
                dark, gain, excl = corrections._arrays(sig)
            try:
                run = self._c.start(dataset._handle, specs, roi_b, dark, gain, excl)
            except TesseraError as e:
                _raise_from_udfs(e, runners)
        return run, runners

    @staticmethod
    def _udf_list(udf):
        single = not isinstance(udf, (list, tuple))
        udfs = [udf] if single else list(udf)
        if not udfs:
            raise ValueError("run_udf needs at least one UDF")
        return single, udfs

    @staticmethod
    def _roi_array(dataset, roi):
        if roi is None:
            return None
        return np.asarray(roi).reshape(tuple(dataset.shape.nav)) != 0

    def run_udf(self, dataset, udf, roi=None, corrections=None, progress=False):
        """Run one UDF (or a list, in one pass) over dataset.

        roi: nav-shaped bool array (only those positions are processed);
        corrections: a CorrectionSet or dict (dark, gain, excluded_pixels);
        progress: True for a progress bar on stderr.

        Returns a dict name -> ResultBuffer for one UDF, a list of dicts for
        a list of UDFs.  An engine error raises a TesseraError subclass with
        the engine's message; an exception raised in a Python UDF stops the
        run and raises UDFError chained to it (``__cause__``)."""
        single, udfs = self._udf_list(udf)
        run, runners = self._start(dataset, udfs, roi, corrections)
        try:
            if progress:
                bar = _Progress(run.progress()[1])
                try:
                    while not run.wait(0.1):
                        bar.update(run.progress()[0])
                    bar.update(run.progress()[0])
                finally:
                    bar.close()
            else:
                run.wait()
        except TesseraError as e:
            _raise_from_udfs(e, runners)
        dicts, _, _ = wrap_results(self._c, run.results(), len(udfs),
                                   self._roi_array(dataset, roi), len(dataset.shape.sig))
        return dicts[0] if single else dicts

    def run_udf_iter(self, dataset, udf, roi=None, corrections=None, progress=False,
                     interval=0.1):
        """Like run_udf, but a generator of UDFResults: intermediate results
        (a consistent snapshot of the merged buffers, with the damage mask of
        the positions merged so far) while partitions complete, at most one
        per `interval` seconds, then the final results (``final=True``).
        With executor="inline" the run completes in one step, so only the
        final results come.  Closing the generator early cancels the run."""
        single, udfs = self._udf_list(udf)
        run, runners = self._start(dataset, udfs, roi, corrections)
        roi_a = self._roi_array(dataset, roi)
        sig_ndim = len(dataset.shape.sig)
        total = run.progress()[1]
        bar = _Progress(total) if progress else None
        finished = False
        try:
            last_done = 0
            while True:
                try:
                    ended = run.wait(interval)
                except TesseraError as e:
                    _raise_from_udfs(e, runners)
                if bar:
                    bar.update(run.progress()[0])
                if ended:
                    break
                snap = run.snapshot()
                dicts, damage, n_done = wrap_results(self._c, snap, len(udfs), roi_a, sig_ndim)
                if n_done > last_done:
                    last_done = n_done
                    yield UDFResults(dicts, damage, n_done, total, False)
            dicts, damage, n_done = wrap_results(self._c, run.results(), len(udfs), roi_a,
                                                 sig_ndim)
            finished = True
            yield UDFResults(dicts, damage, n_done, total, True)
        finally:
            if bar:
                bar.close()
            if not finished:
                run.cancel()

    def guess(self, dataset, udf, roi=None, corrections=None):
        """Estimate parameters of a built-in UDF from the data (what
        ``tessera run UDF --guess`` does; ``tsr_udf_guess``).

        udf: a built-in UDF object whose parameters are hints (for
        ``CoMUDF``: ``r``, ``ri``, ``regression``, a starting ``cy``,
        ``cx``); roi and corrections as for run_udf.  Runs over the data
        (blocking) and returns a new UDF object of the same class with the
        guessed parameters added (for ``CoMUDF``: ``cy``, ``cx``,
        ``scan_rotation``, ``flip_y``; read them from ``.params``).  A UDF
        without a guess raises UnsupportedError."""
        from .udf import BuiltinUDF

        if not isinstance(dataset, DataSet):
            raise TypeError(f"dataset must be a tessera DataSet, not {type(dataset).__name__}")
        if not isinstance(udf, BuiltinUDF):
            raise TypeError(f"guess needs a built-in UDF (tessera.udf.*), not {udf!r}")
        nav = tuple(dataset.shape.nav)
        sig = tuple(dataset.shape.sig)
        roi_b = None
        if roi is not None:
            roi_a = np.asarray(roi)
            if roi_a.shape != nav and roi_a.size != int(np.prod(nav)):
                raise ValueError(f"roi has shape {roi_a.shape}, expected the nav shape {nav}")
            roi_b = np.ascontiguousarray(roi_a.reshape(-1) != 0, dtype=np.uint8)
        if isinstance(corrections, dict):
            corrections = CorrectionSet(**corrections)
        dark = gain = excl = None
        if corrections is not None:
            dark, gain, excl = corrections._arrays(sig)
        schema = udf._tsr_schema
        with TempFiles() as tmp:
            pairs = self._c.guess(dataset._handle, udf._tsr_name,
                                  encode(udf._params, schema, tmp), roi_b, dark, gain, excl)
        params = dict(udf._params)
        for key, text in pairs:
            params[key] = _typed(text, schema.get(key))
        return type(udf)(**params)

    def map(self, dataset, f, roi=None, progress=False):
        """Apply f to every frame: a nav-shaped ResultBuffer of f's results
        (f's output shape and dtype are taken from its result on the first
        frame, which it receives in the dataset's dtype)."""
        from .udf import PickUDF

        nav = tuple(dataset.shape.nav)
        first = 0
        if roi is not None:
            sel = np.flatnonzero(np.asarray(roi).reshape(-1))
            if sel.size == 0:
                raise ValueError("map: the ROI selects no frame")
            first = int(sel[0])
        pos = np.unravel_index(first, nav)
        frame = self.run_udf(dataset, PickUDF(nav=tuple(int(p) for p in pos)))
        sample = np.asarray(f(np.asarray(frame["intensity"].data[0])))
        udf = _MapUDF(f=f, extra_shape=sample.shape, dtype=sample.dtype)
        return self.run_udf(dataset, udf, roi=roi, progress=progress)["result"]


def _typed(text, pdef):
    """A parameter's engine text as the Python value of its schema type."""
    t = pdef.type if pdef is not None else None
    if t == "bool":
        return text.strip().lower() in ("true", "1", "yes", "on")
    if t == "int":
        return int(text)
    if t in ("float", "double"):
        return float(text)
    return text


class _MapUDF(UDF):
    """Context.map's UDF: result = f(frame) per frame."""

    def __init__(self, f, extra_shape, dtype):
        super().__init__(f=f, extra_shape=extra_shape, dtype=dtype)

    def get_preferred_input_dtype(self):
        return UDF.USE_NATIVE_DTYPE

    def get_result_buffers(self):
        return {"result": self.buffer(kind="nav", extra_shape=self.params.extra_shape,
                                      dtype=self.params.dtype)}

    def process_frame(self, frame):
        self.results.result[:] = self.params.f(frame)
