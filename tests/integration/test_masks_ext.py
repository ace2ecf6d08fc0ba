"""The `masks` UDF's extensions: the polygon generator, anti-aliased
(area coverage) disk, ring, polygon and point masks, and per-frame shifts
of the masks (descan compensation).

Oracles: numpy masks written here from the definitions in docs/analyses.md
(pnpoly for polygons, exact disk coverage from tests/gen/gen_analyses.py,
a Python Sutherland-Hodgman clip for polygon coverage), applied to the same
frames in float64; plus known answers (the area of a shape on frames of
ones, a moving disk fully captured by a mask that follows it).
"""

import math
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_analyses as ga  # noqa: E402

RTOL = 1e-5


# ---------------------------------------------------------------------------
# mask oracles


def pnpoly(verts, sig, dy=0.0, dx=0.0):
    """Pixel centres inside the polygon (even-odd, pnpoly's edge rule)."""
    yy, xx = np.indices(sig, dtype=np.float64)
    vx = np.array([v[0] for v in verts]) + dx
    vy = np.array([v[1] for v in verts]) + dy
    inside = np.zeros(sig, bool)
    j = len(verts) - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(len(verts)):
            cross = (vy[i] > yy) != (vy[j] > yy)
            xc = (vx[j] - vx[i]) * (yy - vy[i]) / (vy[j] - vy[i]) + vx[i]
            inside ^= cross & (xx < xc)
            j = i
    return inside.astype(np.float64)


def clip_area(poly, x0, x1, y0, y1):
    """Area of a simple polygon [(x, y), ...] inside [x0, x1] x [y0, y1]."""
    def clip(pts, inside, cut):
        out = []
        for i, p in enumerate(pts):
            q = pts[(i + 1) % len(pts)]
            if inside(p):
                out.append(p)
            if inside(p) != inside(q):
                out.append(cut(p, q))
        return out

    def cx(c):
        return lambda p, q: (c, p[1] + (q[1] - p[1]) * (c - p[0]) / (q[0] - p[0]))

    def cy(c):
        return lambda p, q: (p[0] + (q[0] - p[0]) * (c - p[1]) / (q[1] - p[1]), c)

    pts = list(poly)
    for inside, cut in [(lambda p: p[0] >= x0, cx(x0)), (lambda p: p[0] <= x1, cx(x1)),
                        (lambda p: p[1] >= y0, cy(y0)), (lambda p: p[1] <= y1, cy(y1))]:
        if not pts:
            return 0.0
        pts = clip(pts, inside, cut)
    a = sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(pts, pts[1:] + pts[:1]))
    return abs(a) / 2


def poly_coverage(verts, sig, dy=0.0, dx=0.0):
    poly = [(x + dx, y + dy) for x, y in verts]
    out = np.zeros(sig)
    for y in range(sig[0]):
        for x in range(sig[1]):
            out[y, x] = clip_area(poly, x - 0.5, x + 0.5, y - 0.5, y + 0.5)
    return out


def shoelace(verts):
    return abs(sum(p[0] * q[1] - q[0] * p[1]
                   for p, q in zip(verts, verts[1:] + verts[:1]))) / 2


def disk(sig, cx, cy, r, aa=False):
    if aa:
        return ga.disk_coverage(sig, cy, cx, r)
    yy, xx = np.indices(sig)
    return ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r).astype(np.float64)


def ring(sig, cx, cy, ri, ro, aa=False):
    if aa:
        return ga.disk_coverage(sig, cy, cx, ro) - ga.disk_coverage(sig, cy, cx, ri)
    yy, xx = np.indices(sig)
    d2 = (xx - cx) ** 2 + (yy - cy) ** 2
    return ((d2 > ri * ri) & (d2 <= ro * ro)).astype(np.float64)


def poly_spec(verts):
    return "polygon:" + ",".join(f"{x},{y}" for x, y in verts)


def apply(frames, masks):
    """numpy's virtual detector: frames (nav + sig) · masks (k + sig)."""
    f = frames.astype(np.float64)
    return np.einsum("...yx,kyx->...k", f, np.asarray(masks, dtype=np.float64))


def assert_close(got, want, rtol=RTOL):
    got = got.astype(np.float64)
    tol = rtol * max(np.abs(want).max(), 1e-30)
    err = np.abs(got - want).max()
    assert err <= tol, f"max error {err:.3g} > {tol:.3g}"


@pytest.fixture(scope="module")
def datadir(tmp_path_factory):
    return tmp_path_factory.mktemp("masks_ext")


def save(datadir, name, arr):
    p = datadir / f"{name}.npy"
    np.save(p, arr)
    return p


def masks_args(specs, *extra):
    out = []
    for s in specs:
        out += ["--param", f"mask={s}"]
    return out + list(extra)


SIG = (28, 30)
CONVEX = [(4.3, 3.2), (20.7, 5.1), (24.2, 19.6), (9.5, 23.4)]
CONCAVE = [(3.2, 2.7), (25.1, 3.3), (14.4, 11.9), (26.3, 24.2), (2.6, 22.8), (8.4, 12.1)]
# vertices on pixel centres and horizontal edges through them: exercises
# the edge rule
ON_GRID = [(5, 5), (15, 5), (15, 15), (10, 20), (5, 15)]


# ---------------------------------------------------------------------------
# polygon and anti-aliasing, unshifted


@pytest.mark.parametrize("verts", [CONVEX, CONCAVE, ON_GRID])
@pytest.mark.parametrize("use_sparse", ["auto", "true", "false"])
def test_polygon(run_udfs, make_data, verts, use_sparse):
    d = make_data("npy", "u2", (4, 5), SIG)
    res = run_udfs("masks", d.path, *d.args,
                   *masks_args([poly_spec(verts)], "--param", f"use_sparse={use_sparse}"))
    assert_close(res["masks.intensity"], apply(d.array, [pnpoly(verts, SIG)]))


@pytest.mark.parametrize("verts", [CONVEX, CONCAVE])
def test_polygon_antialiased(run_udfs, make_data, datadir, verts):
    d = make_data("npy", "f4", (3, 4), SIG)
    res = run_udfs("masks", d.path, *d.args,
                   *masks_args([poly_spec(verts)], "--param", "antialiased=true"))
    assert_close(res["masks.intensity"], apply(d.array, [poly_coverage(verts, SIG)]))
    # known answer: on frames of ones the result is the polygon's area
    ones = save(datadir, "ones", np.ones((2, 2) + SIG, np.float32))
    res = run_udfs("masks", ones, *masks_args([poly_spec(verts)], "--param", "antialiased=1"))
    np.testing.assert_allclose(res["masks.intensity"][..., 0], shoelace(verts), rtol=1e-6)


def test_disk_ring_point_antialiased(run_udfs, make_data, datadir):
    d = make_data("npy", "u2", (3, 4), SIG)
    specs = ["disk:14.3,12.8,6.6", "ring:15.1,13.7,3.2,9.4", "disk:0.4,1.2,5.5",
             "point:7.25,9.5", "rect:3,4,5,6"]
    res = run_udfs("masks", d.path, *d.args, *masks_args(specs, "--param", "antialiased=true"))
    pt = np.zeros(SIG)
    pt[9, 7], pt[9, 8], pt[10, 7], pt[10, 8] = 0.5 * 0.75, 0.5 * 0.25, 0.5 * 0.75, 0.5 * 0.25
    rect = np.zeros(SIG)
    rect[4:10, 3:8] = 1
    want = [disk(SIG, 14.3, 12.8, 6.6, True), ring(SIG, 15.1, 13.7, 3.2, 9.4, True),
            disk(SIG, 0.4, 1.2, 5.5, True), pt, rect]
    assert_close(res["masks.intensity"], apply(d.array, want))
    # areas on frames of ones: πr², π(ro² − ri²)
    ones = save(datadir, "ones2", np.ones((1, 2) + SIG, np.float32))
    res = run_udfs("masks", ones, *masks_args(specs[:2], "--param", "antialiased=true"))
    np.testing.assert_allclose(res["masks.intensity"][0, 0],
                               [math.pi * 6.6 ** 2, math.pi * (9.4 ** 2 - 3.2 ** 2)], rtol=1e-6)


# ---------------------------------------------------------------------------
# shifts


def test_constant_shift(run_udfs, make_data):
    d = make_data("npy", "f4", (3, 3), SIG)
    dy, dx = 2.3, -3.6
    specs = ["disk:14,13,5.5", "ring:14,13,2,7", poly_spec(CONVEX), "rect:3,4,5,6",
             "point:7,9"]
    for aa in (False, True):
        res = run_udfs("masks", d.path, *d.args,
                       *masks_args(specs, "--param", f"shifts={dy},{dx}",
                                   "--param", f"antialiased={aa}"))
        rect = np.zeros(SIG)
        if aa:
            # the rect's squares moved: coverage of [x-1/2+dx, x+w-1/2+dx)
            ys = np.clip(np.minimum(np.arange(SIG[0]) + 0.5, 4 + 6 - 0.5 + dy)
                         - np.maximum(np.arange(SIG[0]) - 0.5, 4 - 0.5 + dy), 0, None)
            xs = np.clip(np.minimum(np.arange(SIG[1]) + 0.5, 3 + 5 - 0.5 + dx)
                         - np.maximum(np.arange(SIG[1]) - 0.5, 3 - 0.5 + dx), 0, None)
            rect = ys[:, None] * xs[None, :]
            pt = np.zeros(SIG)
            # unit square around (7 + dx, 9 + dy) = (3.4, 11.3)
            pt[11, 3], pt[11, 4], pt[12, 3], pt[12, 4] = 0.7 * 0.6, 0.7 * 0.4, 0.3 * 0.6, 0.3 * 0.4
            poly = poly_coverage(CONVEX, SIG, dy, dx)
        else:
            rect[6:12, 0:4] = 1  # centres in [4-0.5+2.3, 9.5+2.3) x [-1.1, 3.9)
            pt = np.zeros(SIG)
            pt[round(9 + dy), round(7 + dx)] = 1
            poly = pnpoly(CONVEX, SIG, dy, dx)
        want = [disk(SIG, 14 + dx, 13 + dy, 5.5, aa), ring(SIG, 14 + dx, 13 + dy, 2, 7, aa),
                poly, rect, pt]
        assert_close(res["masks.intensity"], apply(d.array, want))


def test_shift_file_follows_moving_disk(run_udfs, datadir):
    g = ga.moving_disk(nav=(6, 7), sig=(40, 42), centre=(19.2, 20.6), r=6.0, max_shift=5.0)
    p = save(datadir, "moving", g["frames"])
    sh = save(datadir, "moving_shifts", g["shifts"])
    res = run_udfs("masks", p, *masks_args(["disk:20.6,19.2,7.5", "disk:20.6,19.2,6"],
                                           "--param", f"shifts={sh}",
                                           "--param", "antialiased=true"))
    out = res["masks.intensity"]
    # known answer: the larger detector follows the disk and sees all of it
    np.testing.assert_allclose(out[..., 0], g["intensity"] * math.pi * 36, rtol=1e-5)
    # without shifts it does not
    res0 = run_udfs("masks", p, "--param", "mask=disk:20.6,19.2,7.5")
    assert np.abs(res0["masks.intensity"][..., 0] / (g["intensity"] * math.pi * 36) - 1).max() > 0.1
    # and the same-size one is Σ coverage², the same at every position
    # (up to where the pixel grid cuts the disk)
    want = np.empty(out.shape[:2])
    for idx in np.ndindex(*want.shape):
        dy, dx = g["shifts"][idx]
        m = ga.disk_coverage((40, 42), 19.2 + dy, 20.6 + dx, 6.0)
        want[idx] = (g["frames"][idx].astype(np.float64) * m).sum()
    assert_close(out[..., 1], want)


def test_shift_file_masks_move_whole_pixels(run_udfs, make_data, datadir):
    d = make_data("npy", "u2", (3, 4), SIG, seed=4)
    rng = np.random.default_rng(5)
    m = np.zeros(SIG, np.float32)
    m[6:14, 8:20] = rng.uniform(-1, 1, (8, 12))
    mp = save(datadir, "filemask", m)
    shifts = rng.uniform(-9, 9, (3, 4, 2))
    shifts[0, 0] = (0.5, -0.5)    # halves round away from zero
    shifts[0, 1] = (40.0, 3.0)    # moved out of the frame
    sp = save(datadir, "fileshifts", shifts)
    res = run_udfs("masks", d.path, *d.args, *masks_args([str(mp)], "--param", f"shifts={sp}"))
    want = np.empty((3, 4))
    for idx in np.ndindex(3, 4):
        iy, ix = (int(math.copysign(math.floor(abs(v) + 0.5), v)) for v in shifts[idx])
        mm = np.zeros(SIG)
        ys, xs = np.nonzero(m)
        ok = (ys + iy >= 0) & (ys + iy < SIG[0]) & (xs + ix >= 0) & (xs + ix < SIG[1])
        mm[ys[ok] + iy, xs[ok] + ix] = m[ys[ok], xs[ok]]
        want[idx] = (d.array[idx].astype(np.float64) * mm).sum()
    assert_close(res["masks.intensity"][..., 0], want)


def test_shifts_roi_threads_partitions(run_udfs, datadir):
    g = ga.moving_disk(nav=(8, 9), sig=(32, 32), centre=(15.5, 16.2), r=5.0, max_shift=4.0,
                       seed=8, dtype="u2", intensity=50.0)
    p = save(datadir, "moving2", g["frames"])
    shifts = g["shifts"].copy()
    roi = np.zeros((8, 9), bool)
    roi[1:7, 2:8] = True
    shifts[0, 0] = np.nan  # outside the ROI: never used
    sp = save(datadir, "moving2_shifts", shifts)
    rp = save(datadir, "moving2_roi", roi)
    specs = ["disk:16.2,15.5,6", poly_spec([(10, 10), (22, 11), (20, 21), (12, 19)])]
    want = np.full((8, 9, 2), np.nan)
    for idx in zip(*np.nonzero(roi)):
        dy, dx = shifts[idx]
        ms = [disk((32, 32), 16.2 + dx, 15.5 + dy, 6),
              pnpoly([(10, 10), (22, 11), (20, 21), (12, 19)], (32, 32), dy, dx)]
        want[idx] = apply(g["frames"][idx][None], ms)[0]
    first = None
    for threads, parts in [(1, 1), (2, 3), (2, 8)]:
        res = run_udfs("masks", p, *masks_args(specs, "--param", f"shifts={sp}", "--roi", rp,
                                               "--threads", threads, "--partitions", parts))
        out = res["masks.intensity"]
        np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
        assert_close(np.nan_to_num(out), np.nan_to_num(want))
        if first is None:
            first = out
        else:
            np.testing.assert_array_equal(out, first)


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("args,msg", [
    (["--param", "mask=polygon:1,1,5,1"], "needs 3 to 64 vertices"),
    (["--param", "mask=polygon:1,1,5,1,3,4,7"], "needs 3 to 64 vertices"),
    (["--param", "mask=disk:3,3,2", "--param", "shifts=1,2,3"], "expected dy,dx"),
    (["--param", "mask=disk:3,3,2", "--param", "antialiased=perhaps"], "antialiased"),
])
def test_errors(fails, datadir, args, msg):
    p = save(datadir, "small", np.ones((2, 3, 8, 8), np.float32))
    line = fails("run", "masks", p, *args, "-o", f"{datadir}/bad/")
    assert msg in line, line


def test_shift_file_errors(fails, datadir):
    p = save(datadir, "small", np.ones((2, 3, 8, 8), np.float32))
    bad = save(datadir, "badshape", np.zeros((3, 2, 2)))
    line = fails("run", "masks", p, "--param", "mask=disk:3,3,2", "--param", f"shifts={bad}",
                 "-o", f"{datadir}/bad/")
    assert "(3, 2, 2)" in line and "(2, 3, 2)" in line, line
    nan = np.zeros((2, 3, 2))
    nan[1, 2, 0] = np.nan
    bad = save(datadir, "nanshift", nan)
    line = fails("run", "masks", p, "--param", "mask=disk:3,3,2", "--param", f"shifts={bad}",
                 "-o", f"{datadir}/bad/")
    assert "not finite" in line and "5" in line, line
