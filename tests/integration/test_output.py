"""Output files: HDF5 (/<udf>/<buffer> and <buffer>_valid beside nav
buffers, read with h5py), single-array .npy with --buffer, and the
directory listing."""

import h5py
import numpy as np
import pytest

from oracle import check, expected, roi_mask

NAV = (6, 7)
SIG = (7, 11)
MASKS = ["disk:5,3,2.5", "point:2,2"]
UDFS = ["sum", "sumsig", "stddev", "masks"]


def margs():
    return [a for m in MASKS for a in ("--param", f"mask={m}")]


@pytest.mark.parametrize("roi", [None, "rect:1,2,3,4"], ids=["noroi", "rect"])
def test_h5(make_data, run, tmp_path, roi):
    d = make_data("raw", "<u2", NAV, SIG, seed=51)
    out = tmp_path / "res.h5"
    rargs = ["--roi", roi] if roi else []
    run("run", ",".join(UDFS), d.path, *d.args, *margs(), *rargs, "-o", out)
    found = {}
    with h5py.File(out, "r") as f:
        for udf in UDFS:
            assert udf in f, f"group /{udf} missing; file has {list(f)}"
            for name, ds in f[udf].items():
                found[f"{udf}.{name}"] = ds[()]
    check(found, expected(d.array, NAV, SIG, UDFS, roi=roi, masks=MASKS))
    sel = roi_mask(NAV, roi) if roi else np.ones(NAV, bool)
    for key in ("sumsig.intensity", "masks.intensity"):
        vkey = key + "_valid"
        assert vkey in found, f"/{vkey.replace('.', '/')} missing; found {sorted(found)}"
        valid = np.asarray(found[vkey]).astype(bool)
        assert valid.shape[:2] == NAV, f"{vkey}: shape {valid.shape}"
        v = valid.reshape(NAV + (-1,))
        assert (v == sel[..., None]).all(), f"{vkey} does not match the ROI"


def test_directory_files(make_data, run, tmp_path, load):
    d = make_data("raw", "<u2", NAV, SIG, seed=52)
    out = tmp_path / "dir"
    cp = run("run", ",".join(UDFS), d.path, *d.args, *margs(), "-o", f"{out}/")
    names = {p.name for p in out.iterdir()}
    want = {"sum.intensity.npy", "sumsig.intensity.npy", "stddev.var.npy", "stddev.std.npy",
            "stddev.mean.npy", "stddev.num_frames.npy", "masks.intensity.npy"}
    assert want <= names, f"missing {sorted(want - names)}; found {sorted(names)}"
    check(load(out), expected(d.array, NAV, SIG, UDFS, masks=MASKS))
    assert cp.stderr.strip() == "", f"a successful piped run printed on stderr: {cp.stderr!r}"


def test_single_npy(make_data, run, tmp_path):
    d = make_data("raw", "<f4", NAV, SIG, seed=53)
    out = tmp_path / "s.npy"
    run("run", "sumsig", d.path, *d.args, "-o", out)
    check({"sumsig.intensity": np.load(out)}, expected(d.array, NAV, SIG, ["sumsig"]))
    out2 = tmp_path / "std.npy"
    run("run", "stddev", d.path, *d.args, "--buffer", "std", "-o", out2)
    exp = [e for e in expected(d.array, NAV, SIG, ["stddev"]) if e.key == "stddev.std"]
    check({"stddev.std": np.load(out2)}, exp)


def test_single_npy_needs_buffer(make_data, fails, tmp_path):
    d = make_data("raw", "<f4", NAV, SIG, seed=53)
    line = fails("run", "stddev", d.path, *d.args, "-o", tmp_path / "x.npy")
    assert "buffer" in line.lower(), line
