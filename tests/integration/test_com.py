"""The `com` UDF (centre of mass / DPC) against known answers and numpy.

Known answers come from tests/gen/gen_analyses.py: Gaussian spots moved by
shifts made from a known field through the inverse of LiberTEM's
correction (scan rotation, flip), so the field the analysis reports must be
the field the data were made from.  Every result is also checked against a
numpy implementation of its definition (LiberTEM's com.py conventions,
written out below) on the same frames: float32 results within a relative
1e-5 of the largest value of the array.
"""

import math
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_analyses as ga  # noqa: E402

RTOL = 1e-5
NAV_RESULTS = ("raw_com", "raw_shifts", "field", "field_y", "field_x", "magnitude",
               "divergence", "curl", "icom")


# ---------------------------------------------------------------------------
# numpy oracle (the definitions of docs/analyses.md)


def mask_of(sig, cy, cx, r=math.inf, ri=0.0):
    yy, xx = np.indices(sig)
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    m = d2 <= r * r
    if ri > 0:
        m &= d2 > ri * ri
    return m


def gradient(f, valid, axis):
    """numpy.gradient (unit spacing, edge_order 1) extended to invalid
    neighbours: central where both are valid, one-sided where one is, NaN
    where none is or the position is invalid."""
    f = np.moveaxis(np.where(valid, f, np.nan), axis, 0)
    v = np.moveaxis(valid, axis, 0)
    out = np.full(f.shape, np.nan)
    n = f.shape[0]
    for i in range(n):
        lo = v[i - 1] if i > 0 else np.zeros_like(v[i])
        hi = v[i + 1] if i < n - 1 else np.zeros_like(v[i])
        fl = f[i - 1] if i > 0 else f[i]
        fh = f[i + 1] if i < n - 1 else f[i]
        c = np.where(lo & hi, (fh - fl) / 2,
                     np.where(hi, fh - f[i], np.where(lo, f[i] - fl, np.nan)))
        out[i] = np.where(v[i], c, np.nan)
    return np.moveaxis(out, 0, axis)


def icom_oracle(fy, fx, valid):
    ny, nx = fy.shape
    Fy = np.fft.fft2(np.where(valid, fy, 0))
    Fx = np.fft.fft2(np.where(valid, fx, 0))
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.fftfreq(nx)[None, :]
    q = ky ** 2 + kx ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = (ky * Fy + kx * Fx) / (2j * np.pi * q)
    phi[0, 0] = 0
    if ny % 2 == 0:
        phi[ny // 2, :] = 0
    if nx % 2 == 0:
        phi[:, nx // 2] = 0
    return np.where(valid, np.fft.ifft2(phi).real, np.nan)


def com_oracle(frames, cy, cx, r=math.inf, ri=0.0, rot=0.0, flip=False, regression=-1,
               roi=None):
    """Every result of the com UDF, in float64, from LiberTEM's
    definitions.  NaN outside the ROI."""
    nav = frames.shape[:2]
    valid = np.ones(nav, bool) if roi is None else roi
    m = mask_of(frames.shape[2:], cy, cx, r, ri)
    yy, xx = np.indices(frames.shape[2:])
    f = frames.astype(np.float64)
    s = np.einsum("abyx,yx->ab", f, m)
    sy = np.einsum("abyx,yx->ab", f, m * yy)
    sx = np.einsum("abyx,yx->ab", f, m * xx)
    with np.errstate(divide="ignore", invalid="ignore"):
        comy = np.where(s != 0, sy / s, cy)
        comx = np.where(s != 0, sx / s, cx)
    dy, dx = comy - cy, comx - cx
    t = np.radians(rot)
    R = np.array([[np.cos(t), np.sin(t)], [-np.sin(t), np.cos(t)]])
    F = np.diag([-1.0, 1.0]) if flip else np.eye(2)
    T = R @ F
    fy = T[0, 0] * dy + T[0, 1] * dx
    fx = T[1, 0] * dy + T[1, 1] * dx
    reg = np.zeros((3, 2))
    iy, ix = np.indices(nav)
    if regression == 0:
        reg[0] = [fy[valid].mean(), fx[valid].mean()]
    elif regression == 1:
        inp = np.stack([np.ones(valid.sum()), iy[valid], ix[valid]], axis=1)
        reg[:] = np.linalg.lstsq(inp, np.stack([fy[valid], fx[valid]], axis=1), rcond=None)[0]
    fy = fy - (reg[0, 0] + reg[1, 0] * iy + reg[2, 0] * ix)
    fx = fx - (reg[0, 1] + reg[1, 1] * iy + reg[2, 1] * ix)
    nan = lambda a: np.where(valid if a.ndim == 2 else valid[..., None], a, np.nan)  # noqa: E731
    return {
        "raw_com": nan(np.stack([comy, comx], -1)),
        "raw_shifts": nan(np.stack([dy, dx], -1)),
        "field": nan(np.stack([fy, fx], -1)),
        "field_y": nan(fy),
        "field_x": nan(fx),
        "magnitude": nan(np.hypot(fy, fx)),
        "divergence": gradient(fy, valid, 0) + gradient(fx, valid, 1),
        "curl": gradient(fy, valid, 1) - gradient(fx, valid, 0),
        "icom": icom_oracle(fy, fx, valid),
        "regression": reg,
    }


def assert_close(name, got, want, rtol=RTOL):
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    g = got.astype(np.float64)
    nan_w = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(g), nan_w, err_msg=f"{name}: NaN positions differ")
    if nan_w.all():
        return
    scale = np.nanmax(np.abs(want))
    # values that are zero up to rounding (a field with everything
    # subtracted) are compared against a floor
    tol = rtol * max(scale, 1e-9)
    err = np.nanmax(np.abs(g - want))
    assert err <= tol, f"{name}: max error {err:.3g} > {tol:.3g} (largest value {scale:.3g})"


def check_all(res, want, prefix="com."):
    for name in NAV_RESULTS:
        assert_close(name, res[prefix + name], want[name])
    assert res[prefix + "regression"].dtype == np.float64
    assert_close("regression", res[prefix + "regression"], want["regression"], rtol=1e-7)


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def datadir(tmp_path_factory):
    return tmp_path_factory.mktemp("com")


def save(datadir, name, frames):
    p = datadir / f"{name}.npy"
    np.save(p, frames)
    return p


def params(**kw):
    out = []
    for k, v in kw.items():
        out += ["--param", f"{k}={str(v).lower() if isinstance(v, bool) else v}"]
    return out


# ---------------------------------------------------------------------------
# known answers


@pytest.mark.parametrize("rot,flip", [(0.0, False), (30.0, True), (-115.0, False)])
def test_recovers_known_field(run_udfs, datadir, rot, flip):
    d = ga.com_dataset(nav=(12, 14), sig=(40, 44), rot_deg=rot, flip_y=flip, seed=3)
    p = save(datadir, f"known_{int(rot)}_{flip}", d["frames"])
    res = run_udfs("com", p, *params(cy=d["cy"], cx=d["cx"], scan_rotation=rot, flip_y=flip))
    # the Gaussian spot's centre of mass is its centre to far below float32
    # precision, so the field is the field the data were made from
    np.testing.assert_allclose(res["com.field_y"], d["field_y"], atol=2e-5)
    np.testing.assert_allclose(res["com.field_x"], d["field_x"], atol=2e-5)
    np.testing.assert_allclose(res["com.raw_shifts"][..., 0], d["shifts_y"], atol=2e-5)
    np.testing.assert_allclose(res["com.raw_shifts"][..., 1], d["shifts_x"], atol=2e-5)
    np.testing.assert_allclose(res["com.raw_com"][..., 0], d["cy"] + d["shifts_y"], atol=4e-5)
    assert res["com.field"].dtype == np.float32
    check_all(res, com_oracle(d["frames"], d["cy"], d["cx"], rot=rot, flip=flip))


def test_divergence_and_curl_of_known_field(run_udfs, datadir):
    # field = raw shifts (no rotation): fy = a·y² + b·x, fx = c·x·y.  Central
    # differences are exact for these, so inside the scan
    # divergence = (2a + c)·y and curl = b − c·x.
    ny, nx = 10, 12
    a, b, c = 0.02, 0.15, -0.03
    iy, ix = np.indices((ny, nx), dtype=np.float64)
    fy = a * iy ** 2 + b * ix
    fx = c * ix * iy
    fy -= fy.mean()
    fx -= fx.mean()
    cy, cx = 20.0, 21.0
    frames = ga.spot_frames((40, 42), cy, cx, fy, fx, sigma=2.0).astype(np.float32)
    p = save(datadir, "poly", frames)
    res = run_udfs("com", p, *params(cy=cy, cx=cx))
    inner = (slice(1, -1), slice(1, -1))
    np.testing.assert_allclose(res["com.divergence"][inner], ((2 * a + c) * iy)[inner],
                               atol=5e-5)
    np.testing.assert_allclose(res["com.curl"][inner], (b - c * ix)[inner], atol=5e-5)
    # and the whole array (edges: one-sided) as numpy.gradient has it
    np.testing.assert_allclose(
        res["com.divergence"],
        np.gradient(res["com.field_y"].astype(np.float64), axis=0)
        + np.gradient(res["com.field_x"].astype(np.float64), axis=1), atol=1e-5)
    check_all(res, com_oracle(frames, cy, cx))


def test_icom_integrates_gradient(run_udfs, datadir):
    # a periodic potential sampled below Nyquist: its exact gradient as the
    # field is integrated back to the potential minus its mean
    ny, nx = 16, 20
    iy, ix = np.indices((ny, nx), dtype=np.float64)
    phi = 0.8 * np.sin(2 * np.pi * 2 * iy / ny) + 0.5 * np.cos(2 * np.pi * (3 * ix / nx + iy / ny))
    gy = 0.8 * 2 * np.pi * 2 / ny * np.cos(2 * np.pi * 2 * iy / ny) \
        - 0.5 * 2 * np.pi / ny * np.sin(2 * np.pi * (3 * ix / nx + iy / ny))
    gx = -0.5 * 2 * np.pi * 3 / nx * np.sin(2 * np.pi * (3 * ix / nx + iy / ny))
    cy, cx = 18.0, 18.0
    frames = ga.spot_frames((36, 36), cy, cx, gy, gx, sigma=2.0).astype(np.float32)
    p = save(datadir, "icom", frames)
    res = run_udfs("com", p, *params(cy=cy, cx=cx))
    np.testing.assert_allclose(res["com.icom"], phi - phi.mean(), atol=2e-4)


# ---------------------------------------------------------------------------
# every result against numpy, over parameters, dtypes, ROI, threads and partitions


@pytest.mark.parametrize("dtype", ["u2", "f4", "f8", "i4"])
@pytest.mark.parametrize("geom", [dict(), dict(r=7.5), dict(r=9.0, ri=3.0)])
def test_matches_numpy(run_udfs, datadir, dtype, geom):
    d = ga.com_dataset(nav=(9, 11), sig=(32, 30), rot_deg=12.0, seed=5, dtype=dtype,
                       background=3.0)
    p = save(datadir, f"np_{dtype}_{len(geom)}_{geom.get('r', 0)}", d["frames"])
    cy, cx = 15.2, 14.6
    res = run_udfs("com", p, *params(cy=cy, cx=cx, scan_rotation=-40, **geom))
    want = com_oracle(d["frames"], cy, cx, rot=-40.0, **geom)
    check_all(res, want)
    expect = np.float32 if dtype in ("u2", "f4") else np.float64
    assert res["com.field"].dtype == expect


@pytest.mark.parametrize("regression", [-1, 0, 1])
def test_regression(run_udfs, datadir, regression):
    d = ga.com_dataset(nav=(10, 12), sig=(36, 36), seed=7)
    # add a known descan: an offset and a plane over the scan
    iy, ix = np.indices((10, 12))
    sy = d["shifts_y"] + 0.4 + 0.05 * iy - 0.03 * ix
    sx = d["shifts_x"] - 0.7 + 0.02 * iy + 0.06 * ix
    frames = ga.spot_frames((36, 36), 18.0, 17.0, sy, sx).astype(np.float32)
    p = save(datadir, f"reg{regression}", frames)
    res = run_udfs("com", p, *params(cy=18.0, cx=17.0, regression=regression))
    want = com_oracle(frames, 18.0, 17.0, regression=regression)
    check_all(res, want)
    if regression == 1:
        # the plane added is what the fit finds, up to the fit of the field
        # itself (a curl-free field of atoms has a small plane component)
        reg = res["com.regression"]
        base = np.linalg.lstsq(
            np.stack([np.ones(120), iy.ravel(), ix.ravel()], 1),
            np.stack([d["shifts_y"].ravel(), d["shifts_x"].ravel()], 1), rcond=None)[0]
        np.testing.assert_allclose(reg - base, [[0.4, -0.7], [0.05, 0.02], [-0.03, 0.06]],
                                   atol=1e-5)


def test_roi_threads_partitions(run_udfs, datadir):
    d = ga.com_dataset(nav=(12, 13), sig=(32, 32), rot_deg=75.0, flip_y=True, seed=9,
                       dtype="u2", background=2.0)
    p = save(datadir, "roi", d["frames"])
    roi = np.zeros((12, 13), bool)
    roi[2:10, 1:11] = True
    roi[5, 5] = False  # a hole: one-sided differences around it
    roi[0, 12] = True  # an isolated position: no neighbours, NaN derivatives
    roi_path = datadir / "roi_mask.npy"
    np.save(roi_path, roi)
    kw = dict(cy=16.3, cx=15.8, r=8.0, scan_rotation=75.0, flip_y=True, regression=1)
    want = com_oracle(d["frames"], 16.3, 15.8, r=8.0, rot=75.0, flip=True, regression=1,
                      roi=roi)
    first = None
    for threads, parts in [(1, 1), (2, 1), (2, 3), (2, 7), (1, 5)]:
        res = run_udfs("com", p, *params(**kw), "--roi", roi_path, "--threads", threads,
                       "--partitions", parts)
        check_all(res, want)
        if first is None:
            first = res
        else:
            # integer data: exact sums, so every run gives the same bits
            for k in first:
                np.testing.assert_array_equal(res[k], first[k], err_msg=f"{k} ({threads}, {parts})")


def test_zero_frames_give_zero_shift(run_udfs, datadir):
    frames = np.zeros((3, 4, 16, 16), np.float32)
    frames[1, 2, 3, 4] = 5.0
    p = save(datadir, "zeros", frames)
    res = run_udfs("com", p, *params(cy=8, cx=8))
    shifts = res["com.raw_shifts"]
    assert np.all(shifts[0] == 0) and np.all(shifts[2] == 0)
    np.testing.assert_array_equal(shifts[1, 2], [3 - 8, 4 - 8])
    np.testing.assert_array_equal(res["com.raw_com"][0, 0], [8, 8])


# ---------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("args,msg", [
    (["--param", "ri=5", "--param", "r=5"], "0 <= ri < r"),
    (["--param", "regression=2"], "regression"),
    (["--param", "r=3", "--param", "cy=-50"], "covers no pixel"),
    (["--param", "flip_y=maybe"], "flip_y"),
    (["--param", "scan_rotation=abc"], "scan_rotation"),
])
def test_bad_parameters(fails, datadir, args, msg):
    p = save(datadir, "small", np.ones((2, 3, 8, 8), np.float32))
    line = fails("run", "com", p, *args, "-o", f"{datadir}/bad/")
    assert "com" in line and msg in line, line


def test_needs_2d_scan(fails, datadir):
    p = save(datadir, "line", np.ones((6, 8, 8), np.float32))
    line = fails("run", "com", p, "-o", f"{datadir}/bad1d/")
    assert "2-D scan" in line and "(6,)" in line, line


# ---------------------------------------------------------------------------
# parameter guess


def parse_guess(stdout):
    g = {}
    for line in stdout.splitlines():
        if line.startswith("guess com "):
            k, _, v = line[len("guess com "):].partition("=")
            g[k] = v
    assert set(g) == {"cy", "cx", "scan_rotation", "flip_y"}, stdout
    return float(g["cy"]), float(g["cx"]), float(g["scan_rotation"]), g["flip_y"] == "true"


def angle_diff(a, b):
    return abs((a - b + 180) % 360 - 180)


@pytest.mark.parametrize("rot,flip", [(30.0, True), (-115.0, False), (170.0, True), (0.0, False)])
def test_guess_recovers_rotation_and_flip(run, datadir, rot, flip):
    d = ga.com_dataset(nav=(24, 24), sig=(40, 40), rot_deg=rot, flip_y=flip, seed=11)
    p = save(datadir, f"guess_{int(rot)}_{flip}", d["frames"])
    out = datadir / f"guess_out_{int(rot)}_{flip}"
    cp = run("run", "com", p, "--guess", "-o", f"{out}/")
    cy, cx, grot, gflip = parse_guess(cp.stdout)
    assert gflip == flip, cp.stdout
    assert angle_diff(grot, rot) < 0.5, cp.stdout
    # the centre: the centre of mass of the mean frame
    mean = d["frames"].astype(np.float64).mean(axis=(0, 1))
    yy, xx = np.indices(mean.shape)
    assert abs(cy - (mean * yy).sum() / mean.sum()) < 1e-5
    assert abs(cx - (mean * xx).sum() / mean.sum()) < 1e-5
    # and the run used the guess: the field is the field the data were made from
    res = {f.name[len("com."):-4]: np.load(f) for f in out.glob("com.*.npy")}
    mean_y, mean_x = d["shifts_y"].mean(), d["shifts_x"].mean()
    T = ga.correction(grot, gflip)
    want_y = T[0, 0] * (d["shifts_y"] - mean_y) + T[0, 1] * (d["shifts_x"] - mean_x)
    np.testing.assert_allclose(res["field_y"], want_y, atol=1e-4)


def test_guess_with_radius_is_a_fixed_point(run, datadir):
    # a flat background pulls the whole-frame centre towards the frame
    # centre; with r the guess iterates to the centre of mass of the disk
    # around itself
    d = ga.com_dataset(nav=(10, 10), sig=(48, 48), centre=(20.3, 26.8), seed=4,
                       background=5.0)
    p = save(datadir, "guess_r", d["frames"])
    cp = run("run", "com", p, "--guess", "--param", "r=9", "-o", f"{datadir}/guess_r_out/")
    cy, cx, _, _ = parse_guess(cp.stdout)
    mean = d["frames"].astype(np.float64).mean(axis=(0, 1))
    m = mask_of(mean.shape, cy, cx, 9.0) * mean
    yy, xx = np.indices(mean.shape)
    assert abs((m * yy).sum() / m.sum() - cy) < 1e-5
    assert abs((m * xx).sum() / m.sum() - cx) < 1e-5
    assert abs(cy - 20.3) < 0.3 and abs(cx - 26.8) < 0.3


def test_guess_needs_a_udf_with_a_guess(fails, datadir):
    p = save(datadir, "small", np.ones((2, 3, 8, 8), np.float32))
    line = fails("run", "sum", p, "--guess", "-o", f"{datadir}/g/")
    assert "--guess" in line and "sum" in line, line


@pytest.mark.parametrize("kind", ["row", "diagonal", "point"])
def test_regression_on_degenerate_positions(run_udfs, datadir, kind):
    # ROIs on which a plane is not determined (positions on a line, or one
    # position): the fit is numpy's minimum-norm least-squares solution, as
    # LiberTEM's np.linalg.lstsq gives
    d = ga.com_dataset(nav=(6, 10), sig=(32, 32), seed=12)
    p = save(datadir, "line_roi", d["frames"])
    roi = np.zeros((6, 10), bool)
    if kind == "row":
        roi[3, :] = True
    elif kind == "diagonal":
        roi[np.arange(6), np.arange(6) + 2] = True
    else:
        roi[4, 7] = True
    rp = datadir / f"line_roi_mask_{kind}.npy"
    np.save(rp, roi)
    res = run_udfs("com", p, *params(cy=16, cx=16, regression=1), "--roi", rp)
    want = com_oracle(d["frames"], 16, 16, regression=1, roi=roi)
    check_all(res, want)
