"""Corrections applied while reading — dark frame, gain map, excluded pixels —
against the numpy oracle written from their definition (oracle.correct)."""

import numpy as np
import pytest

from oracle import check, correct, expected

NAV = (6, 7)
SIG = (7, 11)
MASKS = ["disk:5,3,2.5", "rect:0,0,3,2"]
UDFS = ["sum", "sumsig", "stddev", "masks"]


def exclude_map():
    ex = np.zeros(SIG, bool)
    ex[0, 0] = True                # corner
    ex[3, 10] = True               # edge
    ex[1, 2] = True                # isolated
    ex[3:6, 5:8] = True            # 3x3 block: its centre needs a 5x5 window
    ex[6, 0] = ex[6, 1] = True     # bottom corner pair
    return ex


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(41)
    dark = (rng.random(SIG) * 300).astype(np.float32)
    gain = (0.5 + rng.random(SIG)).astype(np.float32)
    ex = exclude_map()
    paths = {}
    for name, arr in (("dark", dark), ("gain", gain), ("exclude", ex)):
        paths[name] = tmp_path / f"{name}.npy"
        np.save(paths[name], arr)
    return {"dark": dark, "gain": gain, "exclude": ex}, paths


CASES = {
    "dark": ("dark",),
    "gain": ("gain",),
    "exclude": ("exclude",),
    "all": ("dark", "gain", "exclude"),
}


@pytest.mark.parametrize("dtype", ["<u2", "<f4"])
@pytest.mark.parametrize("case", list(CASES))
def test_corrections(make_data, run_udfs, files, case, dtype):
    arrays, paths = files
    d = make_data("raw", dtype, NAV, SIG, seed=42)
    used = CASES[case]
    args = []
    for name in used:
        args += [f"--{name}", str(paths[name])]
    margs = [a for m in MASKS for a in ("--param", f"mask={m}")]
    res = run_udfs(",".join(UDFS), d.path, *d.args, *args, *margs)
    corr = correct(d.array, **{k: arrays[k] for k in used})
    check(res, expected(d.array, NAV, SIG, UDFS, masks=MASKS, corrected=corr),
          f"corrections {used} on {dtype}")


@pytest.mark.parametrize("threads,partitions", [(3, 5), (1, 1)])
def test_corrections_roi_threads(make_data, run_udfs, files, threads, partitions):
    arrays, paths = files
    d = make_data("npy", "<u2", NAV, SIG, seed=43)
    res = run_udfs(",".join(UDFS), d.path, "--dark", paths["dark"], "--gain", paths["gain"],
                   "--exclude", paths["exclude"], "--roi", "rect:0,2,5,3",
                   "--threads", threads, "--partitions", partitions,
                   *[a for m in MASKS for a in ("--param", f"mask={m}")])
    corr = correct(d.array, **arrays)
    check(res, expected(d.array, NAV, SIG, UDFS, roi="rect:0,2,5,3", masks=MASKS,
                        corrected=corr))


def test_exclude_only_uint8_map(make_data, run_udfs, tmp_path):
    """An exclude map stored as integers (nonzero = excluded)."""
    d = make_data("raw", "<u2", NAV, SIG, seed=44)
    ex = exclude_map().astype(np.uint8)
    path = tmp_path / "ex.npy"
    np.save(path, ex)
    res = run_udfs("sum,sumsig", d.path, *d.args, "--exclude", path)
    check(res, expected(d.array, NAV, SIG, ["sum", "sumsig"],
                        corrected=correct(d.array, exclude=ex)))
