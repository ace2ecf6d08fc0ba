"""Synthetic 4D-STEM data with known answers for the analyses of
tests/integration/test_analyses.py (numpy only, seeded, deterministic).

Every generator returns (data, truth): data is a numpy array of shape
nav + sig, truth what an analysis must find in it.  Coordinates follow the
project: pixel (y, x) at integer coordinates, x the column, y the row; a
centre (cx, cy) may be fractional.

    rings(...)        a ring with an n-fold modulation, n varying over the scan
                      -> radial_fourier's dominant order
    speckle(...)      ring pixels of known spread per frame -> fem
    lattice(...)      fringes of a known frequency in some frames -> crystallinity
    electrons(...)    isolated electron hits on a noisy background, and X-rays
                      -> count_threshold and count
"""

import numpy as np


def polar(sig, cx, cy):
    """(r, phi) of every pixel: r = sqrt(dx^2 + dy^2), phi = atan2(dy, dx)."""
    yy, xx = np.indices(sig, dtype=np.float64)
    dy, dx = yy - cy, xx - cx
    return np.sqrt(dx * dx + dy * dy), np.arctan2(dy, dx)


def rings(nav, sig, cx, cy, radius, orders, width=1.5, amplitude=1000.0, noise=5.0,
          seed=1, dtype="u2"):
    """Frames holding one ring of the given radius whose intensity along the
    ring goes as 1 + cos(n (phi - phi0)): n peaks.  orders: an int array of
    nav shape, the n of each frame (n >= 1); phi0 random per frame.  Plus a
    constant background of 100 and Gaussian noise.  truth: orders."""
    rng = np.random.default_rng(seed)
    orders = np.asarray(orders)
    assert orders.shape == tuple(nav)
    r, phi = polar(sig, cx, cy)
    profile = np.exp(-0.5 * ((r - radius) / width) ** 2)
    out = np.empty(tuple(nav) + tuple(sig), np.float64)
    for idx in np.ndindex(*nav):
        phi0 = rng.uniform(0, 2 * np.pi)
        out[idx] = 100 + amplitude * profile * (1 + np.cos(orders[idx] * (phi - phi0)))
    out += rng.normal(0, noise, out.shape)
    return _cast(out, dtype), orders


def speckle(nav, sig, cx, cy, ri, ro, sigmas, mean=500.0, seed=2, dtype="u2"):
    """Frames whose pixels in the ring ri^2 < d^2 <= ro^2 are Gaussian with
    the mean and, per frame, the standard deviation sigmas[nav] (kinematic
    speckle of an amorphous sample); elsewhere a smooth disk.  truth: sigmas
    (the population std of the ring pixels is close to it, within sampling
    error)."""
    rng = np.random.default_rng(seed)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    assert sigmas.shape == tuple(nav)
    r, _ = polar(sig, cx, cy)
    d2 = r * r
    ring = (d2 > ri * ri) & (d2 <= ro * ro)
    out = np.empty(tuple(nav) + tuple(sig), np.float64)
    for idx in np.ndindex(*nav):
        f = 2000 * np.exp(-0.5 * (r / 3) ** 2) + 50
        f[ring] = rng.normal(mean, sigmas[idx], ring.sum())
        out[idx] = f
    return _cast(out, dtype), sigmas


def lattice(nav, sig, crystalline, period=4.0, amplitude=300.0, noise=30.0, seed=3,
            dtype="u2"):
    """Frames of Gaussian noise around 500; where crystalline[nav] is true,
    plus fringes cos(2 pi (x cos a + y sin a) / period) of a random angle a:
    a peak in the FFT at spatial frequency |k| = size / period pixels.
    truth: crystalline (bool, nav shape)."""
    rng = np.random.default_rng(seed)
    crystalline = np.asarray(crystalline, bool)
    yy, xx = np.indices(sig, dtype=np.float64)
    out = rng.normal(500, noise, tuple(nav) + tuple(sig))
    for idx in np.ndindex(*nav):
        if crystalline[idx]:
            a = rng.uniform(0, np.pi)
            out[idx] += amplitude * np.cos(2 * np.pi * (xx * np.cos(a) + yy * np.sin(a)) / period)
    return _cast(out, dtype), crystalline


def electrons(nav, sig, per_frame=(0, 8), dark=100.0, noise=4.0, peak=400.0, halo=60.0,
              xray_rate=0.3, xray=20000.0, seed=5, dtype="u2"):
    """Counting data: a dark level with Gaussian read noise; in each frame
    a random number of electrons (per_frame: [low, high)) at random pixels at
    least 4 pixels apart and 2 from the edge, each adding `peak` at its pixel
    and `halo` on the 8 neighbours; and with probability xray_rate one X-ray
    hit adding `xray` to one pixel away from the electrons.
    truth: dict with 'hits' (list per flat frame of sorted flat pixel
    indices of the electrons), 'xrays' (list per flat frame of X-ray pixel
    indices)."""
    rng = np.random.default_rng(seed)
    h, w = sig
    nnav = int(np.prod(nav))
    out = rng.normal(dark, noise, (nnav, h, w))
    hits, xrays = [], []
    for i in range(nnav):
        n = rng.integers(*per_frame)
        pos = []
        tries = 0
        while len(pos) < n and tries < 1000:
            tries += 1
            y, x = rng.integers(2, h - 2), rng.integers(2, w - 2)
            if all(max(abs(y - py), abs(x - px)) >= 4 for py, px in pos):
                pos.append((y, x))
        for y, x in pos:
            out[i, y - 1:y + 2, x - 1:x + 2] += halo
            out[i, y, x] += peak - halo
        hits.append(sorted(y * w + x for y, x in pos))
        xr = []
        if rng.random() < xray_rate:
            while True:
                y, x = rng.integers(0, h), rng.integers(0, w)
                if all(max(abs(y - py), abs(x - px)) >= 3 for py, px in pos):
                    break
            out[i, y, x] += xray
            xr.append(y * w + x)
        xrays.append(xr)
    return _cast(out.reshape(tuple(nav) + tuple(sig)), dtype), {"hits": hits, "xrays": xrays}


def _cast(a, dtype):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return np.clip(np.round(a), info.min, info.max).astype(dt)
    return a.astype(dt)
