"""Exceptions: every engine error reaches Python as a TesseraError subclass
with the engine's message, its code and the code's name (``TSR_EINVAL``...).

The classes also derive from the matching built-in exception, so
``except ValueError`` catches a bad parameter and ``except OSError`` an
unreadable file.
"""

from . import _tessera


class TesseraError(Exception):
    """An error reported by the Tessera engine.

    Attributes: ``code`` (negative ``TSR_E*`` value) and ``name``
    (``"TSR_EINVAL"``, ...).  ``str(e)`` is the engine's message, which names
    the file, the field and the expected and found values."""

    code = None
    name = None


class InvalidArgumentError(TesseraError, ValueError):
    """TSR_EINVAL, TSR_ERANGE, TSR_EOVERFLOW: a bad parameter or value."""


class NotFoundError(TesseraError, LookupError):
    """TSR_ENOTFOUND: no such format, UDF or buffer; no format recognises the file."""


class TesseraIOError(TesseraError, OSError):
    """TSR_EIO: a file could not be read or written."""


class CorruptDataError(TesseraError, ValueError):
    """TSR_ECORRUPT: malformed or truncated input."""


class UnsupportedError(TesseraError, NotImplementedError):
    """TSR_EUNSUPPORTED: valid, but not supported (yet)."""


class CanceledError(TesseraError):
    """TSR_ECANCELED: the run was canceled."""


class StateError(TesseraError, RuntimeError):
    """TSR_ESTATE, TSR_EAGAIN: the operation is not valid now."""


class UDFError(TesseraError):
    """TSR_EUDF: a UDF failed.  For a Python UDF, ``__cause__`` is the
    exception it raised, with its traceback."""


class TesseraMemoryError(TesseraError, MemoryError):
    """TSR_ENOMEM: out of memory."""


_BY_NAME = {
    "TSR_EINVAL": InvalidArgumentError,
    "TSR_ERANGE": InvalidArgumentError,
    "TSR_EOVERFLOW": InvalidArgumentError,
    "TSR_ENOTFOUND": NotFoundError,
    "TSR_EIO": TesseraIOError,
    "TSR_ECORRUPT": CorruptDataError,
    "TSR_EUNSUPPORTED": UnsupportedError,
    "TSR_ECANCELED": CanceledError,
    "TSR_ESTATE": StateError,
    "TSR_EAGAIN": StateError,
    "TSR_EUDF": UDFError,
    "TSR_ENOMEM": TesseraMemoryError,
}


def _make_error(message, code, name):
    cls = _BY_NAME.get(name, TesseraError)
    exc = cls(message)
    exc.code = code
    exc.name = name
    return exc


_tessera.set_error_factory(_make_error)
