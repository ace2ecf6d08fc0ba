"""Results: the engine's result buffers as numpy arrays, without copies.

A :class:`ResultBuffer` wraps one array of a result set.  ``.data`` (and
``numpy.asarray(buf)``) is a view of the engine's memory, which stays alive
as long as any array made from it.  Nav buffers have the full nav shape;
positions outside the ROI (or not yet processed, in an intermediate result)
hold NaN (floats) or 0 (integers), and ``.valid_mask`` tells which are
valid.  ``.raw_data`` is LiberTEM's flat form: nav buffers as
(frames, *extra), reduced to the ROI (a copy when there is a ROI).
"""

import os

import numpy as np

from . import _tessera


class ResultBuffer:
    """One result buffer: a numpy-like object (``__array__``, indexing,
    ``shape``, ``dtype``) with ``.data``, ``.raw_data``, ``.valid_mask``,
    ``.kind``, ``.extra_shape`` and ``.export(path)``."""

    __slots__ = ("_data", "_valid", "_roi", "kind", "name", "udf", "udf_index", "nav_ndim",
                 "_source", "_any", "extra_shape")

    def __init__(self, data, kind, name, udf, udf_index, nav_ndim, valid, roi, source, any_valid,
                 extra_shape):
        self._data = data
        self.extra_shape = tuple(extra_shape)
        self.kind = kind
        self.name = name
        self.udf = udf
        self.udf_index = udf_index
        self.nav_ndim = nav_ndim
        self._valid = valid
        self._roi = roi
        self._source = source  # (C context, C results, index) for export
        self._any = any_valid

    @property
    def data(self):
        """The buffer in its full shape (nav_shape + extra, sig_shape + extra
        or extra): a view of the engine's memory."""
        return self._data

    @property
    def raw_data(self):
        """LiberTEM's raw form: nav buffers flat (frames, *extra), reduced to
        the ROI; others as .data."""
        if self.kind != "nav":
            return self._data
        flat = self._data.reshape((-1,) + self.extra_shape)
        if self._roi is None:
            return flat
        return flat[self._roi.reshape(-1)]

    @property
    def valid_mask(self):
        """Bool array of .data's shape, True where the value is valid."""
        if self.kind == "nav" and self._valid is not None:
            v = self._valid.reshape(self._valid.shape + (1,) * len(self.extra_shape))
            return np.broadcast_to(v, self._data.shape)
        return np.broadcast_to(np.bool_(self._any), self._data.shape)

    @property
    def shape(self):
        return self._data.shape

    @property
    def dtype(self):
        return self._data.dtype

    @property
    def ndim(self):
        return self._data.ndim

    def __len__(self):
        return len(self._data)

    def __getitem__(self, idx):
        return self._data[idx]

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self._data, dtype=dtype, copy=True)
        if dtype is None or np.dtype(dtype) == self._data.dtype:
            return self._data
        return self._data.astype(dtype)

    def export(self, path, colormap=None, log=False):
        """Write this buffer to path: .npy (exact), .h5/.hdf5, .tif/.tiff
        (float32) or .png (colour-mapped; colormap viridis, magma or gray;
        log scale).  See docs/export.md."""
        if self._source is None:
            np.save(path, self._data)
            return
        cctx, cres, index = self._source
        cctx.export_array(cres, index, os.fspath(path), colormap, bool(log))

    def __repr__(self):
        return (f"<ResultBuffer {self.udf}.{self.name} kind={self.kind} "
                f"shape={self._data.shape} dtype={self._data.dtype}>")


def _extra(kind, data, nav_ndim, sig_ndim):
    if kind == "nav":
        return data.shape[nav_ndim:]
    if kind == "sig":
        return data.shape[sig_ndim:]
    return data.shape


def wrap_results(cctx, cres, n_udfs, roi, sig_ndim):
    """A list of n_udfs dicts name -> ResultBuffer, and the damage buffer."""
    dmg_view, n_done = cres.damage()
    damage = np.asarray(dmg_view)
    out = [dict() for _ in range(n_udfs)]
    for i in range(len(cres)):
        udf, idx, name, kind, dtype, shape, nav_ndim, data, valid = cres.get(i)
        arr = np.asarray(data)
        v = None if valid is None else np.asarray(valid)
        out[idx][name] = ResultBuffer(arr, kind, name, udf, idx, nav_ndim, v, roi,
                                      (cctx, cres, i), n_done > 0,
                                      _extra(kind, arr, nav_ndim, sig_ndim))
    dmg = ResultBuffer(damage, "nav", "damage", "", -1, damage.ndim, None, None, None, True, ())
    return out, dmg, n_done


class UDFResults:
    """One item of ``Context.run_udf_iter``: ``buffers`` (a tuple with one
    dict name -> ResultBuffer per UDF), ``damage`` (nav-shaped bool
    ResultBuffer: the positions merged so far), ``n_done`` and ``total``
    (frames), ``final`` (True for the last item)."""

    def __init__(self, buffers, damage, n_done, total, final):
        self.buffers = tuple(buffers)
        self.damage = damage
        self.n_done = n_done
        self.total = total
        self.final = final

    def __repr__(self):
        return (f"<UDFResults {self.n_done}/{self.total} frames{' final' if self.final else ''}: "
                f"{[sorted(b) for b in self.buffers]}>")


def _buffers_of(obj):
    if isinstance(obj, ResultBuffer):
        return [obj]
    if isinstance(obj, UDFResults):
        obj = obj.buffers
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [b for x in obj for b in _buffers_of(x)]
    raise TypeError(f"cannot export {type(obj).__name__}: pass a ResultBuffer, a dict of "
                    f"them, a list of dicts or a UDFResults")


def export(results, path, colormap=None, log=False):
    """Write results to path.

    - a ResultBuffer: one file, by extension (.npy, .h5/.hdf5, .tif/.tiff,
      .png; colormap and log for PNG);
    - a dict, a list of dicts (run_udf's result) or a UDFResults: a path
      ending in "/" is a directory receiving <udf>.<buffer>.npy per buffer;
      .h5/.hdf5 receives every buffer as /<udf>/<buffer> (with a
      <buffer>_valid mask beside nav buffers); .npy/.tif/.png need exactly
      one buffer.
    """
    path = os.fspath(path)
    bufs = _buffers_of(results)
    if len(bufs) == 1 and not path.endswith(("/", ".h5", ".hdf5", ".H5", ".HDF5")):
        bufs[0].export(path, colormap, log)
        return
    if not bufs:
        raise ValueError("nothing to export: no result buffers")
    sources = {id(b._source[1]) for b in bufs if b._source is not None}
    src = bufs[0]._source
    complete = (len(sources) == 1 and src is not None and len(bufs) == len(src[1]))
    if complete:
        src[0].export_results(src[1], path)
        return
    if path.endswith("/"):
        os.makedirs(path, exist_ok=True)
        for b in bufs:
            b.export(os.path.join(path, f"{b.udf}.{b.name}.npy"))
        return
    raise ValueError("export: a .h5 file or a single file needs all buffers of one run "
                     "(pass run_udf's whole result, or one ResultBuffer)")
