"""UDFs: the engine's built-in UDFs as classes, and the Python UDF base.

The built-in classes are generated from the engine's UDF registry when the
module is imported: one class per registered UDF, with the registry's
parameters (keyword arguments, checked by name) and documentation.  Names
follow LiberTEM (``SumUDF``, ``SumSigUDF``, ``StdDevUDF``, ``PickUDF``,
``ApplyMasksUDF``, ...); a UDF the map below does not know gets its
registry name in CamelCase plus "UDF" (``radial_fourier`` ->
``RadialFourierUDF``), so UDFs added to the engine appear here without any
change.  ``tessera.udf.builtin_udfs()`` lists them all.

    >>> import tessera
    >>> u = tessera.udf.ApplyMasksUDF(mask=["disk:8,8,4", "ring:8,8,4,7"])

Python UDFs subclass :class:`tessera.UDF` (see docs/python.md).
"""

import inspect

from . import _tessera
from ._params import schema_of
from ._udf import UDF, BufferDecl, MergeAttrMapping, UDFData, UDFMeta, UDFParams  # noqa: F401

# Registry name -> LiberTEM's class name, where they differ from the rule.
_CLASS_NAMES = {
    "sum": "SumUDF",
    "sumsig": "SumSigUDF",
    "stddev": "StdDevUDF",
    "pick": "PickUDF",
    "masks": "ApplyMasksUDF",
    "com": "CoMUDF",
    "fem": "FEMUDF",
    "radial_fourier": "RadialFourierUDF",
    "logsum": "LogsumUDF",
}


def class_name(name):
    """The Python class name of a registry UDF name."""
    return _CLASS_NAMES.get(name) or "".join(p[:1].upper() + p[1:] for p in name.split("_")) + "UDF"


class BuiltinUDF:
    """A built-in (C) UDF with its parameters.  Subclasses are generated
    from the registry; instances are passed to Context.run_udf."""

    _tsr_name = None
    _tsr_schema = {}

    def __init__(self, **params):
        schema = self._tsr_schema
        unknown = [k for k in params if k not in schema]
        if unknown:
            known = ", ".join(schema) or "none"
            raise TypeError(f"{type(self).__name__}: unknown parameter(s) "
                            f"{', '.join(unknown)} (parameters: {known})")
        missing = [p.name for p in schema.values() if p.required and params.get(p.name) is None]
        if missing:
            raise TypeError(f"{type(self).__name__}: missing required parameter(s) "
                            f"{', '.join(missing)}")
        self._params = dict(params)

    @property
    def params(self):
        return dict(self._params)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"


def _make_class(name, description, params):
    schema = schema_of(params)
    doc = [f"{description}", "", f"The engine's built-in UDF {name!r} (LiberTEM-style name).",
           "", "Parameters", "----------"]
    if not schema:
        doc.append("(none)")
    for p in schema.values():
        doc.append(p.describe())
    sig = inspect.Signature([
        inspect.Parameter(p.name, inspect.Parameter.KEYWORD_ONLY,
                          default=inspect.Parameter.empty if p.required else None)
        for p in schema.values()
    ])
    return type(class_name(name), (BuiltinUDF,), {
        "__doc__": "\n".join(doc),
        "__module__": __name__,
        "__signature__": sig,
        "_tsr_name": name,
        "_tsr_schema": schema,
    })


_BUILTINS = {}
for _name, _desc, _params in _tessera.udfs():
    _cls = _make_class(_name, _desc, _params)
    _BUILTINS[_name] = _cls
    globals()[_cls.__name__] = _cls
del _name, _desc, _params, _cls


def builtin_udfs():
    """{registry name: class} of every built-in UDF."""
    return dict(_BUILTINS)


def builtin(name, **params):
    """A built-in UDF by its registry name: builtin("masks", mask=[...])."""
    try:
        cls = _BUILTINS[name]
    except KeyError:
        raise LookupError(f"no built-in UDF {name!r} (known: {', '.join(_BUILTINS)})") from None
    return cls(**params)


__all__ = ["UDF", "BuiltinUDF", "builtin", "builtin_udfs", "class_name"] + [
    c.__name__ for c in _BUILTINS.values()]
