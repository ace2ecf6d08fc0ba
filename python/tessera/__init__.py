"""Tessera for Python: run the engine's UDFs, and your own, over 4D-STEM data.

    import tessera
    with tessera.Context() as ctx:
        ds = ctx.load("auto", path="scan.npy")
        res = ctx.run_udf(dataset=ds, udf=tessera.udf.SumUDF())
        print(res["intensity"].data)

The API follows LiberTEM's (``Context.load``, ``run_udf``, ``run_udf_iter``,
``map``, ``UDF``); see docs/python.md.
"""

# In a build tree the compiled extension lives in <build>/python/tessera/:
# with PYTHONPATH=<source>/python:<build>/python both folders form the package.
__path__ = __import__("pkgutil").extend_path(__path__, __name__)

from . import _tessera  # noqa: E402
from ._errors import (  # noqa: E402,F401
    CanceledError, CorruptDataError, InvalidArgumentError, NotFoundError, StateError,
    TesseraError, TesseraIOError, TesseraMemoryError, UDFError, UnsupportedError)
from ._shapes import Shape, Slice  # noqa: E402,F401
from ._udf import UDF, UDFMeta  # noqa: E402,F401
from ._results import ResultBuffer, UDFResults, export  # noqa: E402,F401
from ._context import Context, CorrectionSet, DataSet  # noqa: E402,F401
from . import masks, udf  # noqa: E402,F401

__version__ = _tessera.version()

# Runs still going at exit are canceled and waited for while the interpreter
# can still run their Python UDFs (during finalization their threads could not).
__import__("atexit").register(_tessera.shutdown)


def formats():
    """{name: (description, {param: ParamDef})} of the registered formats."""
    from ._params import schema_of
    return {n: (d, schema_of(p)) for n, d, p in _tessera.formats()}


__all__ = ["Context", "DataSet", "CorrectionSet", "UDF", "UDFMeta", "ResultBuffer",
           "UDFResults", "Shape", "Slice", "export", "formats", "masks", "udf",
           "TesseraError", "InvalidArgumentError", "NotFoundError", "TesseraIOError",
           "CorruptDataError", "UnsupportedError", "CanceledError", "StateError", "UDFError",
           "TesseraMemoryError"]
