"""tsr-gen: the demo dataset looks like 4D-STEM data and is deterministic;
`random` writes what it says; bad arguments fail cleanly."""

import json

import numpy as np
import pytest

from oracle import check, expected

SCAN = (16, 20)
SIG = (40, 48)


@pytest.fixture(scope="module")
def demo(gen, tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    path = root / "demo.raw"
    cp = gen("demo", path, "--scan", "16,20", "--sig", "40,48", "--seed", 7)
    assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr
    info = json.loads(gen("demo-info", "--scan", "16,20", "--sig", "40,48", "--seed", 7).stdout)
    data = np.fromfile(path, dtype="<u2").reshape(SCAN + SIG)
    return path, info, data


def demo_args():
    return ["--format", "raw", "--set", "nav_shape=16,20", "--set", "sig_shape=40,48",
            "--set", "dtype=<u2"]


def test_demo_info(demo):
    path, info, data = demo
    assert info["nav_shape"] == list(SCAN)
    assert info["sig_shape"] == list(SIG)
    assert info["dtype"] == "<u2"
    assert info["seed"] == 7
    assert info["bytes"] == path.stat().st_size == data.size * 2


def test_demo_sum_shows_the_central_disk(demo, run_udfs):
    path, info, data = demo
    res = run_udfs("sum,sumsig", path, *demo_args())
    check(res, expected(data, SCAN, SIG, ["sum", "sumsig"]))
    total = res["sum.intensity"]
    cy, cx, r = info["disk"]["cy"], info["disk"]["cx"], info["disk"]["r"]
    shift = info["shift"]["amplitude_px"]
    yy, xx = np.indices(SIG)
    d = np.hypot(yy - cy, xx - cx)
    by, bx = np.unravel_index(np.argmax(total), SIG)
    assert d[by, bx] <= r + shift, f"brightest pixel ({by}, {bx}) is outside the central disk"
    inside = total[d <= r - shift].mean()
    outside = total[d > r + shift + 1].mean()
    assert inside > 5 * outside, (inside, outside)


def test_demo_has_structure(demo, run_udfs):
    path, info, data = demo
    res = run_udfs("sumsig", path, *demo_args())
    s = res["sumsig.intensity"]
    assert s.std() / s.mean() > 0.02, "the total intensity hardly varies across the scan"
    # A ring detector outside the central disk (annular dark field) images
    # grains and holes: strong contrast.
    a = info["suggested"]["annular"]
    yy, xx = np.indices(SIG)
    d2 = (yy - a["cy"]) ** 2 + (xx - a["cx"]) ** 2
    ring = (d2 > a["ri"] ** 2) & (d2 <= a["ro"] ** 2)
    adf = (data * ring).sum(axis=(2, 3)).astype(float)
    assert adf.std() / adf.mean() > 0.1, "the dark-field image shows no grains"
    # The bright-field disk follows the documented shift field.
    c = info["suggested"]["com"]
    bf = (d2 <= c["r"] ** 2)
    w = data * bf
    tot = w.sum(axis=(2, 3)).astype(float)
    comx = (w * xx).sum(axis=(2, 3)) / tot - info["disk"]["cx"]
    iy, ix = np.indices(SCAN)
    u, v = ix / SCAN[1], iy / SCAN[0]
    sh = info["shift"]
    want_x = sh["amplitude_px"] * np.cos(2 * np.pi * sh["fx"] * u) * np.sin(2 * np.pi * sh["fy"] * v)
    corr = np.corrcoef(comx.ravel(), want_x.ravel())[0, 1]
    assert corr > 0.9, f"centre of mass does not follow the shift field (r = {corr:.2f})"


def test_demo_is_deterministic(gen, demo, tmp_path):
    path, _, _ = demo
    again = tmp_path / "again.raw"
    gen("demo", again, "--scan", "16,20", "--sig", "40,48", "--seed", 7)
    assert again.read_bytes() == path.read_bytes()
    other = tmp_path / "other.raw"
    gen("demo", other, "--scan", "16,20", "--sig", "40,48", "--seed", 8)
    assert other.read_bytes() != path.read_bytes()


def test_demo_info_default_size(gen):
    info = json.loads(gen("demo-info").stdout)
    assert info["nav_shape"] == [64, 64] and info["sig_shape"] == [128, 128]
    assert info["bytes"] == 64 * 64 * 128 * 128 * 2


@pytest.mark.parametrize("dtype", ["u1", "u2", "u4", "i2", "i4", "f4", "f8"])
def test_random(gen, tmp_path, dtype):
    le, be = tmp_path / "le.raw", tmp_path / "be.raw"
    gen("random", le, "--shape", "3,4,5", "--dtype", dtype, "--seed", 9)
    gen("random", be, "--shape", "3,4,5", "--dtype", dtype, "--seed", 9, "--big-endian")
    a = np.fromfile(le, dtype="<" + dtype)
    b = np.fromfile(be, dtype=">" + dtype)
    assert a.size == 60 and np.array_equal(a, b)
    if dtype[0] == "f":
        assert a.min() >= 0 and a.max() < 1
    assert len(np.unique(a)) > 20, "values are not random"
    again = tmp_path / "again.raw"
    gen("random", again, "--shape", "3,4,5", "--dtype", dtype, "--seed", 9)
    assert again.read_bytes() == le.read_bytes()


def test_random_range(gen, tmp_path):
    p = tmp_path / "r.raw"
    gen("random", p, "--shape", "1000", "--dtype", "i2", "--range", "-3,4")
    a = np.fromfile(p, dtype="<i2")
    assert set(np.unique(a)) == set(range(-3, 5))


@pytest.mark.parametrize("args", [
    [], ["nope"], ["demo"], ["demo", "x.raw", "--scan", "0,4"], ["demo", "x.raw", "--scan", "4"],
    ["demo", "x.raw", "--seed", "-1"], ["demo", "x.raw", "--bogus"],
    ["random", "x.raw", "--shape", "2,2"], ["random", "x.raw", "--dtype", "u2"],
    ["random", "x.raw", "--shape", "2,2", "--dtype", "q9"],
    ["random", "x.raw", "--shape", "2,,2", "--dtype", "u2"],
    ["random", "x.raw", "--shape", "2", "--dtype", "u1", "--range", "0,300"],
])
def test_gen_bad_arguments(gen, tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    cp = gen(*args, ok=False)
    assert cp.returncode == 2, cp
    assert len(cp.stderr.strip().splitlines()) == 1, cp.stderr
    assert not (tmp_path / "x.raw").exists(), "a failed call left a file behind"
