"""Parameters: Python values to the engine's key=value strings.

The engine takes dataset and UDF parameters as text (include/tessera.h,
"Parameters"); one generic rule turns Python values into it, so that no
format or UDF needs glue of its own:

- ``bool`` -> ``"true"`` / ``"false"``; numbers -> their decimal text;
  ``str`` and path-like -> as is; a numpy dtype or type -> its typestring;
- a sequence of numbers (``(4, 5)``, a 1-D array) -> ``"4,5"``;
- a list of strings, sequences or arrays -> the key repeated, one value per
  element (``mask=["disk:8,8,4", "ring:8,8,2,6"]``, ``nav=[(1, 2), (3, 4)]``);
- a numpy array given to a parameter of type ``string`` or ``path`` (a mask,
  a mask stack) -> written to a temporary ``.npy`` file whose path is passed;
  the file lives until the run has started.
"""

import numbers
import os
import tempfile

import numpy as np


class TempFiles:
    """A temporary directory made on first use; close() removes it."""

    def __init__(self):
        self._dir = None
        self._n = 0

    def npy(self, array):
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="tessera-")
        self._n += 1
        path = os.path.join(self._dir.name, f"param{self._n}.npy")
        np.save(path, np.ascontiguousarray(array), allow_pickle=False)
        return path

    def close(self):
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _is_scalar(v):
    return isinstance(v, (numbers.Number, np.generic)) and not isinstance(v, (str, bytes))


def _scalar(v):
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (numbers.Integral, np.integer)):
        return str(int(v))
    if isinstance(v, (numbers.Real, np.floating)):
        return repr(float(v))
    raise TypeError(f"cannot pass {v!r} as a number")


def _dtype_text(v):
    dt = np.dtype(v)
    return dt.name if dt.byteorder in ("=", "|") else dt.str


def _one(key, v, ptype, tmp):
    """One value's text."""
    if isinstance(v, str):
        return v
    if isinstance(v, os.PathLike):
        return os.fspath(v)
    if isinstance(v, (np.dtype, type)):
        return _dtype_text(v)
    if _is_scalar(v):
        return _scalar(v)
    if isinstance(v, np.ndarray) and ptype in ("string", "path"):
        return tmp.npy(v)
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, (list, tuple)) and all(_is_scalar(x) for x in v):
        return ",".join(_scalar(x) for x in v)
    raise TypeError(f"parameter {key!r}: cannot pass {type(v).__name__} value {v!r}")


def encode(params, schema=None, tmp=None):
    """[(key, text), ...] for a dict of parameters.  schema: {name: ParamDef}
    (may be None); tmp: a TempFiles for array values."""
    pairs = []
    for key, v in params.items():
        if v is None:
            continue
        pdef = schema.get(key) if schema else None
        ptype = pdef.type if pdef else None
        if isinstance(v, np.ndarray) and ptype not in ("string", "path") and v.ndim >= 2:
            v = list(v)
        if isinstance(v, (list, tuple)) and not all(_is_scalar(x) for x in v):
            for x in v:
                pairs.append((key, _one(key, x, ptype, tmp)))
        else:
            pairs.append((key, _one(key, v, ptype, tmp)))
    return pairs


class ParamDef:
    """One parameter of a format or UDF schema, as the registry lists it."""

    __slots__ = ("name", "type", "default", "doc", "repeatable")

    def __init__(self, name, type, default, doc, repeatable):
        self.name = name
        self.type = type
        self.default = default  # None: required; "": optional without default
        self.doc = doc
        self.repeatable = repeatable

    @property
    def required(self):
        return self.default is None

    def describe(self):
        if self.required:
            status = "required"
        elif self.default == "":
            status = "optional"
        else:
            status = f"default {self.default}"
        if self.repeatable:
            status += ", repeatable (a list)"
        return f"{self.name} : {self.type}, {status}\n    {self.doc}"

    def __repr__(self):
        return f"ParamDef({self.name!r}, {self.type!r}, default={self.default!r})"


def schema_of(entries):
    """{name: ParamDef} from the registry's parameter tuples."""
    return {p[0]: ParamDef(*p) for p in entries}
