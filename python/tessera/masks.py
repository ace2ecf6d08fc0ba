"""Mask helpers in LiberTEM's style (``libertem.masks``): 2-D numpy arrays
for ApplyMasksUDF, ROIs and plots.

Coordinates are detector pixels: x is the column, y the row, pixel (y, x)
at integer coordinates, origin top-left.  The shapes are the engine's mask
generators (docs/udfs.md), so ``circular(cx, cy, w, h, r)`` selects exactly
the pixels of the spec ``"disk:cx,cy,r"``:

- circular: (x-cx)^2 + (y-cy)^2 <= r^2
- ring: ri^2 < (x-cx)^2 + (y-cy)^2 <= ro^2
- rectangular: rows y..y+h-1, columns x..x+w-1, clipped to the frame
- point: the one pixel y = round(cy), x = round(cx) (halves away from zero)

Masks are bool arrays (multiply or pass them as they are: the engine
converts masks to float32).
"""

import math

import numpy as np


def _grid(imageSizeX, imageSizeY, centerX, centerY):
    y, x = np.ogrid[0:int(imageSizeY), 0:int(imageSizeX)]
    return (x - centerX) ** 2 + (y - centerY) ** 2


def circular(centerX, centerY, imageSizeX, imageSizeY, radius):
    """Disk of radius around (centerX, centerY) in a (imageSizeY, imageSizeX) frame."""
    if radius < 0:
        raise ValueError("circular: radius must be >= 0")
    return _grid(imageSizeX, imageSizeY, centerX, centerY) <= radius * radius


def ring(centerX, centerY, imageSizeX, imageSizeY, radius, radius_inner):
    """Ring between radius_inner (excluded) and radius (included)."""
    if not 0 <= radius_inner <= radius:
        raise ValueError("ring: need 0 <= radius_inner <= radius")
    d2 = _grid(imageSizeX, imageSizeY, centerX, centerY)
    return (d2 > radius_inner * radius_inner) & (d2 <= radius * radius)


def rectangular(X, Y, Width, Height, imageSizeX, imageSizeY):
    """Rows Y..Y+Height-1 and columns X..X+Width-1, clipped to the frame."""
    m = np.zeros((int(imageSizeY), int(imageSizeX)), dtype=bool)
    m[max(int(Y), 0):max(int(Y + Height), 0), max(int(X), 0):max(int(X + Width), 0)] = True
    return m


def _round_half_away(v):
    return int(math.floor(v + 0.5)) if v >= 0 else -int(math.floor(-v + 0.5))


def point(centerX, centerY, imageSizeX, imageSizeY):
    """The single pixel nearest to (centerX, centerY)."""
    x, y = _round_half_away(centerX), _round_half_away(centerY)
    if not (0 <= x < imageSizeX and 0 <= y < imageSizeY):
        raise ValueError(f"point: ({centerX}, {centerY}) is outside the frame")
    m = np.zeros((int(imageSizeY), int(imageSizeX)), dtype=bool)
    m[y, x] = True
    return m


def radial_gradient(centerX, centerY, imageSizeX, imageSizeY, radius):
    """float32: distance from the centre divided by radius, inside the disk; 0 outside."""
    d = np.sqrt(_grid(imageSizeX, imageSizeY, centerX, centerY))
    return np.where(d <= radius, d / radius, 0).astype(np.float32)


def to_spec(kind, *args):
    """The engine's generator spec text: to_spec("disk", cx, cy, r) -> "disk:cx,cy,r"."""
    def text(a):
        return str(int(a)) if float(a).is_integer() else repr(float(a))
    return kind + ":" + ",".join(text(a) for a in args)
