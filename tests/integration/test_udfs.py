"""Every built-in UDF against numpy: raw and npy datasets, every input dtype
(both byte orders), with and without a ROI, and awkward shapes.

Most cases run all UDFs in one pass (as the engine is meant to) and then
check each result buffer; test_udf_alone runs each UDF by itself so that a
failure points at one UDF.
"""

import numpy as np
import pytest

from oracle import check, expected

NAV = (6, 7)
SIG = (7, 11)  # prime-sized
MASKS = ["disk:5,3,2.5", "ring:5,3,1,3", "point:3.2,4.7", "rect:1,2,4,3",
         "disk:4,4,2"]  # d^2 = r^2 exactly on some pixels
PICKS = [(0, 0), (5, 6), (2, 3), (4, 1)]

RAW_DTYPES = ["|u1", "<u2", "<u4", "<i2", "<i4", "<f4", "<f8", ">u2", ">f4"]
NPY_DTYPES = ["<u2", "<i4", "<f4", ">u2", "<f8"]
ROIS = [None, "rect:1,2,3,4", "disk:2.5,3,2", "file"]


def mask_args(masks):
    return [a for m in masks for a in ("--param", f"mask={m}")]


def pick_args(picks):
    return [a for p in picks for a in ("--param", "nav=" + ",".join(map(str, p)))]


def roi_args(roi, nav, tmp_path):
    """(value for the oracle, CLI arguments) of a ROI case."""
    if roi is None:
        return None, []
    if roi == "file":
        rng = np.random.default_rng(7)
        m = rng.random(nav) < 0.4
        m.flat[-1] = False
        m.flat[0] = True
        path = tmp_path / "roi.npy"
        np.save(path, m)
        return m, ["--roi", str(path)]
    return roi, ["--roi", roi]


@pytest.mark.parametrize("roi", ROIS, ids=lambda r: "noroi" if r is None else r.split(":")[0])
@pytest.mark.parametrize("fmt,dtype", [("raw", d) for d in RAW_DTYPES] +
                         [("npy", d) for d in NPY_DTYPES])
def test_all_udfs(make_data, run_udfs, tmp_path, fmt, dtype, roi):
    d = make_data(fmt, dtype, NAV, SIG)
    roi_val, rargs = roi_args(roi, d.nav, tmp_path)
    udfs = ["sum", "sumsig", "stddev", "masks"] + (["pick"] if roi is None else [])
    args = d.args + mask_args(MASKS) + rargs
    if "pick" in udfs:
        args += pick_args(PICKS)
    res = run_udfs(",".join(udfs), d.path, *args)
    check(res, expected(d.array, d.nav, d.sig, udfs, roi=roi_val, masks=MASKS, picks=PICKS),
          f"{fmt} {dtype} roi={roi}")


@pytest.mark.parametrize("udf", ["sum", "sumsig", "stddev", "pick", "masks"])
def test_udf_alone(make_data, run_udfs, udf):
    d = make_data("raw", "<u2", NAV, SIG, seed=2)
    args = list(d.args)
    if udf == "pick":
        args += pick_args(PICKS)
    if udf == "masks":
        args += mask_args(MASKS)
    res = run_udfs(udf, d.path, *args)
    check(res, expected(d.array, d.nav, d.sig, [udf], masks=MASKS, picks=PICKS))
    if udf == "stddev":
        assert {"stddev.var", "stddev.std", "stddev.mean", "stddev.num_frames"} <= set(res)


# Awkward shapes: (nav, sig); 1-D and 3-D sig take their masks from a file.
SHAPES = {
    "prime_sig": ((3, 5), (13, 17)),
    "one_frame": ((1, 1), (7, 11)),
    "nav_1d": ((5,), (7, 11)),
    "nav_3d": ((2, 3, 4), (7, 11)),
    "sig_1d": ((3, 4), (13,)),
    "sig_3d": ((2, 3), (3, 5, 7)),
    # 2 MiB frames of f8: tiles must slice the signal
    "big_frame": ((2, 2), (509, 521)),
}


@pytest.mark.parametrize("roi", [None, "file"], ids=["noroi", "roifile"])
@pytest.mark.parametrize("fmt", ["raw", "npy"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_shapes(make_data, run_udfs, tmp_path, shape, fmt, roi):
    nav, sig = SHAPES[shape]
    dtype = {"raw": "<u2", "npy": "<f8" if shape == "big_frame" else ">i2"}[fmt]
    d = make_data(fmt, dtype, nav, sig, seed=3)
    if len(sig) == 2 and shape != "big_frame":
        masks = MASKS
        margs = mask_args(masks)
    else:
        rng = np.random.default_rng(11)
        stack = rng.random((2,) + sig)
        path = tmp_path / "masks.npy"
        np.save(path, stack)
        masks = [stack]
        margs = ["--param", f"mask={path}"]
    roi_val, rargs = roi_args(roi, nav, tmp_path)
    nnav = int(np.prod(nav))
    picks = [np.unravel_index(i, nav) for i in sorted({0, nnav - 1, nnav // 2})]
    udfs = ["sum", "sumsig", "stddev", "masks"] + (["pick"] if roi is None else [])
    args = d.args + margs + rargs + (pick_args(picks) if roi is None else [])
    res = run_udfs(",".join(udfs), d.path, *args)
    check(res, expected(d.array, nav, sig, udfs, roi=roi_val, masks=masks, picks=picks),
          f"{shape} nav={nav} sig={sig} {fmt} {dtype} roi={roi}")


@pytest.mark.parametrize("kind", ["sig_float", "stack_bool", "mixed"])
def test_masks_from_file(make_data, run_udfs, tmp_path, kind):
    d = make_data("raw", "<f4", NAV, SIG, seed=4)
    rng = np.random.default_rng(5)
    if kind == "sig_float":
        m = rng.random(SIG).astype(np.float32)
        masks = [m]
    elif kind == "stack_bool":
        m = rng.random((3,) + SIG) < 0.3
        masks = [m]
    else:
        m = rng.random(SIG)
        masks = ["disk:5,3,2.5", m, "point:10,6"]
    path = tmp_path / "m.npy"
    np.save(path, m)
    margs = []
    for x in masks:
        margs += ["--param", "mask=" + (x if isinstance(x, str) else str(path))]
    res = run_udfs("masks", d.path, *d.args, *margs)
    check(res, expected(d.array, NAV, SIG, ["masks"], masks=masks), kind)


@pytest.mark.parametrize("mask", ["disk:0,0,3", "ring:10,6,2,4.5", "rect:8,5,10,10",
                                  "rect:-2,-1,5,4", "disk:5,3,100", "disk:-1.5,8,2.2"])
def test_masks_clipped_generators(make_data, run_udfs, mask):
    """Generators reaching beyond the frame are clipped to it."""
    d = make_data("raw", "<u2", NAV, SIG, seed=6)
    res = run_udfs("masks", d.path, *d.args, *mask_args([mask]))
    check(res, expected(d.array, NAV, SIG, ["masks"], masks=[mask]), mask)


def test_sum_and_sumsig_large_u2_exact(make_data, run_udfs):
    """Sums of u2 frames exceed 2^24 (float32 would round): still exact."""
    d = make_data("raw", "<u2", (4, 5), (64, 67), seed=8)
    res = run_udfs("sum,sumsig", d.path, *d.args)
    check(res, expected(d.array, d.nav, d.sig, ["sum", "sumsig"]))
