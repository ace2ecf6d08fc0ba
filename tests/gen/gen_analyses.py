#!/usr/bin/python3
"""Synthetic 4D-STEM datasets with a known answer, for the analyses tests
(tests/integration/test_com.py, test_masks_ext.py) and the examples of
docs/analyses.md.  numpy only, seeded, deterministic.

Centre of mass: every frame holds one round Gaussian spot (sigma in pixels)
whose centre is the reference point (cy, cx) moved by the *raw shift*
(dy, dx) of its scan position, on a flat background.  The shifts are made
from a known *field* (fy, fx) by undoing LiberTEM's correction: the
analysis computes field = R(scan_rotation) @ F(flip_y) @ (dy, dx), with
R(t) = [[cos t, sin t], [-sin t, cos t]] and F = diag(-1, 1) when flipped,
so here (dy, dx) = F @ R(-t) @ (fy, fx).  The default field is the gradient
of a potential made of Gaussian "atoms" (positive peaks), so that it is
curl-free and its divergence is negative at the atoms, which is what the
rotation guess assumes.

Descan: `moving_disk` draws a uniform disk whose centre moves by a known
per-position (dy, dx), so that a virtual detector shifted by the same
amount sees the whole disk at every position.

As a script it writes a dataset as .npy (nav + sig) plus its truth:

    gen_analyses.py com OUT.npy [--nav 16,16] [--sig 64,64] [--rot 30]
                     [--flip] [--dtype f4] [--seed 1]
        writes OUT.npy and OUT.truth.npz (field_y, field_x, shifts_y,
        shifts_x, cy, cx, scan_rotation, flip_y)
    gen_analyses.py descan OUT.npy [--nav 8,8] [--sig 48,48] ...
        writes OUT.npy and OUT.shifts.npy (nav + (2,), (dy, dx))
"""

import argparse
import math
import sys

import numpy as np


def rotation(deg):
    """LiberTEM's rotate_deg: acts on (y, x) column vectors."""
    t = math.radians(deg)
    return np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])


def correction(rot_deg, flip_y):
    """The matrix that turns raw shifts into the field: R @ F."""
    f = np.diag([-1.0, 1.0]) if flip_y else np.eye(2)
    return rotation(rot_deg) @ f


def atoms_potential(nav, n_atoms=None, width=1.6, seed=1, amplitude=1.0):
    """A potential phi (nav-shaped) of Gaussian peaks at random positions,
    and its exact gradient (dphi/dy, dphi/dx).  Returns (phi, gy, gx)."""
    rng = np.random.default_rng(seed)
    ny, nx = nav
    if n_atoms is None:
        n_atoms = max(2, ny * nx // 24)
    ay = rng.uniform(0, ny - 1, n_atoms)
    ax = rng.uniform(0, nx - 1, n_atoms)
    yy, xx = np.indices(nav, dtype=np.float64)
    phi = np.zeros(nav)
    gy = np.zeros(nav)
    gx = np.zeros(nav)
    for y0, x0 in zip(ay, ax):
        g = amplitude * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * width ** 2))
        phi += g
        gy += -(yy - y0) / width ** 2 * g
        gx += -(xx - x0) / width ** 2 * g
    return phi, gy, gx


def spot_frames(sig, cy, cx, shifts_y, shifts_x, sigma=2.0, peak=1000.0, background=0.0):
    """Frames (nav + sig, float64) with one Gaussian spot centred at
    (cy + dy, cx + dx) for every scan position."""
    h, w = sig
    yy = np.arange(h, dtype=np.float64)
    xx = np.arange(w, dtype=np.float64)
    py = np.exp(-(yy[None, :] - (cy + shifts_y.reshape(-1, 1))) ** 2 / (2 * sigma ** 2))
    px = np.exp(-(xx[None, :] - (cx + shifts_x.reshape(-1, 1))) ** 2 / (2 * sigma ** 2))
    frames = peak * py[:, :, None] * px[:, None, :] + background
    return frames.reshape(shifts_y.shape + (h, w))


def com_dataset(nav=(16, 16), sig=(48, 48), centre=None, rot_deg=0.0, flip_y=False,
                sigma=2.0, field_scale=1.0, seed=1, dtype="f4", peak=1000.0,
                background=0.0):
    """A CoM dataset: returns dict(frames, field_y, field_x, shifts_y,
    shifts_x, cy, cx, phi).  The field is field_scale * grad(phi) of
    atoms_potential, normalised so its largest component is field_scale
    pixels; shifts undo R(rot_deg) @ F(flip_y)."""
    if centre is None:
        centre = (sig[0] / 2 - 0.3, sig[1] / 2 + 0.4)
    cy, cx = centre
    phi, gy, gx = atoms_potential(nav, seed=seed)
    s = field_scale / max(np.abs(gy).max(), np.abs(gx).max())
    fy, fx = gy * s, gx * s
    inv = np.linalg.inv(correction(rot_deg, flip_y))
    sy = inv[0, 0] * fy + inv[0, 1] * fx
    sx = inv[1, 0] * fy + inv[1, 1] * fx
    frames = spot_frames(sig, cy, cx, sy, sx, sigma=sigma, peak=peak, background=background)
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        frames = np.round(frames)
    return dict(frames=frames.astype(dt), field_y=fy, field_x=fx, shifts_y=sy, shifts_x=sx,
                cy=cy, cx=cx, phi=phi * s)


def disk_coverage(sig, cy, cx, r, supersample=None):
    """Area of the disk inside each pixel square [y-1/2, y+1/2] x
    [x-1/2, x+1/2] (exact, from the integral of sqrt(r^2 - u^2)); with
    supersample=k, the fraction of k x k sub-pixel centres inside instead."""
    h, w = sig
    if supersample:
        k = supersample
        o = (np.arange(k) + 0.5) / k - 0.5
        yy = (np.arange(h)[:, None] + o[None, :]).reshape(-1)
        xx = (np.arange(w)[:, None] + o[None, :]).reshape(-1)
        inside = (yy[:, None] - cy) ** 2 + (xx[None, :] - cx) ** 2 <= r * r
        return inside.reshape(h, k, w, k).mean(axis=(1, 3))

    def prim(u):  # integral of sqrt(r^2 - t^2) dt from 0 to u, |u| <= r
        u = np.clip(u, -r, r)
        return 0.5 * (u * np.sqrt(np.maximum(r * r - u * u, 0)) + r * r * np.arcsin(u / r))

    def quadrant(a, b):  # signed area of disk ∩ [0, a] x [0, b]
        sa, sb = np.sign(a), np.sign(b)
        a, b = np.minimum(np.abs(a), r), np.minimum(np.abs(b), r)
        ustar = np.sqrt(np.maximum(r * r - b * b, 0))
        full = a * b
        part = b * ustar + prim(a) - prim(ustar)
        return sa * sb * np.where(a * a + b * b <= r * r, full, np.where(a <= ustar, full, part))

    y0 = np.arange(h)[:, None] - 0.5 - cy
    x0 = np.arange(w)[None, :] - 0.5 - cx
    y1, x1 = y0 + 1, x0 + 1
    return quadrant(x1, y1) - quadrant(x0, y1) - quadrant(x1, y0) + quadrant(x0, y0)


def moving_disk(nav=(8, 8), sig=(48, 48), centre=(23.2, 24.6), r=6.0, max_shift=5.0,
                seed=2, intensity=100.0, dtype="f4"):
    """Frames with a uniform disk (exact area coverage) centred at
    (cy + dy, cx + dx) with random per-position shifts of up to max_shift
    pixels.  Returns dict(frames, shifts (nav + (2,), (dy, dx)), cy, cx, r,
    intensity)."""
    rng = np.random.default_rng(seed)
    shifts = rng.uniform(-max_shift, max_shift, tuple(nav) + (2,))
    frames = np.empty(tuple(nav) + tuple(sig))
    for idx in np.ndindex(*nav):
        dy, dx = shifts[idx]
        frames[idx] = intensity * disk_coverage(sig, centre[0] + dy, centre[1] + dx, r)
    return dict(frames=frames.astype(dtype), shifts=shifts, cy=centre[0], cx=centre[1], r=r,
                intensity=intensity)


def _shape(s):
    return tuple(int(v) for v in s.split(","))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["com", "descan"])
    ap.add_argument("out")
    ap.add_argument("--nav", type=_shape, default=None)
    ap.add_argument("--sig", type=_shape, default=None)
    ap.add_argument("--rot", type=float, default=0.0)
    ap.add_argument("--flip", action="store_true")
    ap.add_argument("--dtype", default="f4")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    out = a.out[:-4] if a.out.endswith(".npy") else a.out
    if a.kind == "com":
        d = com_dataset(nav=a.nav or (16, 16), sig=a.sig or (48, 48), rot_deg=a.rot,
                        flip_y=a.flip, dtype=a.dtype, seed=a.seed)
        np.save(out + ".npy", d["frames"])
        np.savez(out + ".truth.npz", field_y=d["field_y"], field_x=d["field_x"],
                 shifts_y=d["shifts_y"], shifts_x=d["shifts_x"], cy=d["cy"], cx=d["cx"],
                 scan_rotation=a.rot, flip_y=a.flip)
    else:
        d = moving_disk(nav=a.nav or (8, 8), sig=a.sig or (48, 48), dtype=a.dtype, seed=a.seed)
        np.save(out + ".npy", d["frames"])
        np.save(out + ".shifts.npy", d["shifts"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
