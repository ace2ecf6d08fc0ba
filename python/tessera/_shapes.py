"""Shapes and slices in LiberTEM's style: a Shape is a tuple that knows how
many of its trailing dimensions are the signal (``shape.nav``,
``shape.sig``); a Slice is an origin and a shape in a dataset whose
navigation dimensions are flattened (and reduced to the ROI)."""

import math


class Shape(tuple):
    """A dataset shape: nav dimensions then sig dimensions (numpy order).

    >>> s = Shape((4, 5, 16, 16), sig_dims=2)
    >>> s.nav, s.sig, s.size
    ((4, 5), (16, 16), 5120)
    """

    def __new__(cls, dims, sig_dims):
        self = super().__new__(cls, (int(d) for d in dims))
        if not 0 <= sig_dims <= len(self):
            raise ValueError(f"sig_dims={sig_dims} does not fit shape {tuple(self)}")
        self.sig_dims = sig_dims
        return self

    def __getnewargs__(self):
        return (tuple(self), self.sig_dims)

    @property
    def nav(self):
        """The navigation (scan) part, a Shape with sig_dims=0."""
        return Shape(self[: len(self) - self.sig_dims], 0)

    @property
    def sig(self):
        """The signal (frame) part."""
        return Shape(self[len(self) - self.sig_dims:], self.sig_dims)

    @property
    def size(self):
        return math.prod(self)

    @property
    def dims(self):
        return len(self)

    def to_tuple(self):
        return tuple(self)

    def flatten_nav(self):
        """(nav size, *sig)."""
        return Shape((self.nav.size,) + tuple(self.sig), self.sig_dims)

    def __repr__(self):
        return repr(tuple(self))


class Slice:
    """A box in a dataset with flattened navigation: ``origin`` and ``shape``
    (a Shape whose first dimension counts frames)."""

    __slots__ = ("origin", "shape")

    def __init__(self, origin, shape):
        self.origin = tuple(int(o) for o in origin)
        self.shape = shape

    @property
    def nav(self):
        return Slice(self.origin[: len(self.origin) - self.shape.sig_dims], self.shape.nav)

    @property
    def sig(self):
        return Slice(self.origin[len(self.origin) - self.shape.sig_dims:], self.shape.sig)

    def get(self, arr=None, sig_only=False, nav_only=False):
        """The box as a tuple of slices (or arr indexed by it)."""
        o, s = self.origin, tuple(self.shape)
        k = len(o) - self.shape.sig_dims
        if sig_only:
            o, s = o[k:], s[k:]
        elif nav_only:
            o, s = o[:k], s[:k]
        sl = tuple(slice(a, a + n) for a, n in zip(o, s))
        return arr[sl] if arr is not None else sl

    def __repr__(self):
        return f"Slice(origin={self.origin}, shape={tuple(self.shape)})"
