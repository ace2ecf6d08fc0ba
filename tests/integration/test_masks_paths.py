"""The `masks` UDF's fast paths against numpy: the dense frames x masks
product (several masks), the single-mask dot product and the sparse runs
(forced with use_sparse=true, chosen by use_sparse=auto), for several input
types, awkward signal shapes, row-band tiles (--tile-bytes 256), a ROI and
one or two threads.

The oracle (oracle.expected) computes every frame . mask product in float64;
results must agree within a relative 1e-5, with an absolute tolerance of
1e-5 * sum(|frame| * |mask|) so that signed masks whose products cancel are
judged against the size of what was added.
"""

import numpy as np
import pytest

from oracle import check, expected

NAV = (5, 7)
SIG = (32, 29)  # prime width: rows of 29 pixels, no vector multiple


def mask_args(masks, paths):
    """CLI --param arguments for masks given as generator strings or arrays
    (saved to the paths given, in order)."""
    args, k = [], 0
    for m in masks:
        if isinstance(m, str):
            args += ["--param", f"mask={m}"]
        else:
            np.save(paths[k], m)
            args += ["--param", f"mask={paths[k]}"]
            k += 1
    return args


def dense_stack(sig, n, seed, signed=True):
    """n masks of random weights over the whole signal (float32)."""
    rng = np.random.default_rng(seed)
    m = rng.random((n,) + tuple(sig)).astype(np.float32)
    return m * 2 - 1 if signed else m


def rings(sig, n):
    """n concentric binary rings around the centre, 2 pixels wide."""
    yy, xx = np.indices(sig)
    d = np.hypot(yy - sig[0] / 2, xx - sig[1] / 2)
    return np.stack([((d >= 2 * i) & (d < 2 * (i + 1))) for i in range(n)]).astype(np.float32)


def run_case(make_data, run_udfs, tmp_path, dtype, masks, sig=SIG, nav=NAV, extra=(), roi=None,
             fmt="raw", seed=1):
    d = make_data(fmt, dtype, nav, sig, seed=seed)
    paths = [tmp_path / f"m{i}.npy" for i in range(len(masks))]
    args = list(d.args) + mask_args(masks, paths) + list(extra)
    roi_val = None
    if roi is not None:
        if isinstance(roi, np.ndarray):
            rp = tmp_path / "roi.npy"
            np.save(rp, roi)
            args += ["--roi", str(rp)]
        else:
            args += ["--roi", roi]
        roi_val = roi
    res = run_udfs("masks", d.path, *args)
    check(res, expected(d.array, nav, sig, ["masks"], roi=roi_val, masks=masks),
          f"{dtype} sig={sig} {' '.join(map(str, extra))} roi={roi}")


DTYPES = ["|u1", "<u2", "<i4", "<f4", "<f8"]
MODES = ["auto", "true", "false"]
THREADS = ["1", "2"]


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_dense_16(make_data, run_udfs, tmp_path, dtype, mode, threads):
    """16 dense signed masks: the frames x masks product (or, forced, 16
    weighted runs per row)."""
    masks = [dense_stack(SIG, 16, 3)]
    run_case(make_data, run_udfs, tmp_path, dtype, masks,
             extra=["--param", f"use_sparse={mode}", "--threads", threads])


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mask", ["disk:14,16,9", "dense"])
def test_single_mask(make_data, run_udfs, tmp_path, dtype, mode, threads, mask):
    """One mask: a disk (constant-weight runs, or a dot product with
    use_sparse=false) and a dense weighted mask."""
    masks = [mask if mask != "dense" else dense_stack(SIG, 1, 4)[0]]
    run_case(make_data, run_udfs, tmp_path, dtype, masks,
             extra=["--param", f"use_sparse={mode}", "--threads", threads])


@pytest.mark.parametrize("mode", ["auto", "true"])
@pytest.mark.parametrize("dtype", DTYPES + ["<i2", "|i1", "<u4"])
def test_sparse(make_data, run_udfs, tmp_path, dtype, mode):
    """Small and scattered masks: a small disk, a ring, a point, a clipped
    rectangle, 16 rings, and a sparse weighted mask with short gaps."""
    rng = np.random.default_rng(6)
    scattered = np.where(rng.random(SIG) < 0.05, rng.random(SIG) * 4 - 2, 0).astype(np.float32)
    gappy = np.zeros(SIG, np.float32)
    gappy[3:20, 2:27:3] = np.arange(17 * 9, dtype=np.float32).reshape(17, 9) - 50
    masks = ["disk:10,20,3", "ring:14,16,4,7.5", "point:28,31", "rect:25,-3,10,6",
             rings(SIG, 16), scattered, gappy]
    run_case(make_data, run_udfs, tmp_path, dtype, masks,
             extra=["--param", f"use_sparse={mode}"])


@pytest.mark.parametrize("dtype", ["<u2", "<f4", "<f8", "<i4"])
def test_mixed_paths(make_data, run_udfs, tmp_path, dtype):
    """auto on a stack that has both kinds: the small disks go sparse, the
    dense random masks into the frames x masks product."""
    sig = (64, 67)
    masks = ["disk:30,30,3", dense_stack(sig, 5, 7), "point:3,60", dense_stack(sig, 1, 8),
             "ring:40,20,5,7"]
    run_case(make_data, run_udfs, tmp_path, dtype, masks, sig=sig, nav=(3, 4))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["<u2", "<f4", "<f8", "|u1"])
def test_row_band_tiles(make_data, run_udfs, tmp_path, dtype, mode):
    """--tile-bytes 256 cuts every frame into bands of a few rows: runs and
    mask rows are clipped to each band and per-band sums are added up."""
    masks = ["disk:14,16,9", dense_stack(SIG, 3, 9), rings(SIG, 4), "rect:0,0,29,32"]
    run_case(make_data, run_udfs, tmp_path, dtype, masks,
             extra=["--param", f"use_sparse={mode}", "--tile-bytes", "256", "--threads", "2"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("roi", ["rect:1,2,3,4", "file"])
def test_roi(make_data, run_udfs, tmp_path, roi, mode):
    roi_val = roi
    if roi == "file":
        rng = np.random.default_rng(12)
        roi_val = rng.random(NAV) < 0.4
        roi_val.flat[0] = True
    masks = ["disk:14,16,9", dense_stack(SIG, 16, 10), "point:3,4"]
    run_case(make_data, run_udfs, tmp_path, "<u2", masks, roi=roi_val,
             extra=["--param", f"use_sparse={mode}", "--threads", "2"])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", ["<u2", "<f8", "|i1"])
@pytest.mark.parametrize("fmt", ["raw", "npy"])
def test_sig_1d(make_data, run_udfs, tmp_path, fmt, dtype, mode):
    """A 1-D signal of prime length with masks from .npy files: a dense
    stack and a sparse stack of single pixels and short segments."""
    sig = (1013,)
    sparse = np.zeros((3,) + sig, np.float32)
    sparse[0, 500] = 1
    sparse[1, 17:40] = 2
    sparse[2, ::97] = np.linspace(-1, 1, len(range(0, 1013, 97)))
    masks = [dense_stack(sig, 4, 11), sparse]
    run_case(make_data, run_udfs, tmp_path, dtype, masks, sig=sig, nav=(4, 3), fmt=fmt,
             extra=["--param", f"use_sparse={mode}", "--tile-bytes", "1K"])


@pytest.mark.parametrize("mode", MODES)
def test_big_frames(make_data, run_udfs, tmp_path, mode):
    """Frames larger than the tile budget (sliced by the runtime) with a
    dense stack, a disk and rings."""
    sig = (257, 263)
    masks = [dense_stack(sig, 9, 13), "disk:130,120,40", rings(sig, 6)]
    run_case(make_data, run_udfs, tmp_path, "<u2", masks, sig=sig, nav=(2, 3),
             extra=["--param", f"use_sparse={mode}", "--threads", "2"])


def test_non_finite_outside_sparse_mask(tmp_path, run_udfs, load):
    """The sparse path reads only the pixels of a mask's runs: NaN far from
    the disk does not reach its result.  The dense path, like numpy, gives
    NaN for a NaN in the rows the masks cover (0 × NaN), but rows where
    every mask is zero are not read at all (sig_rows), so a NaN there does
    not reach either path."""
    a = np.ones((2, 3, 8, 8), np.float32)
    a[:, :, 4, 0] = np.nan  # in the disk's rows (4..6), outside the disk
    a[:, :, 0, 0] = np.nan  # in no mask's rows
    path = tmp_path / "nan.npy"
    np.save(path, a)
    res = run_udfs("masks", path, "--param", "mask=disk:5,5,1", "--param", "use_sparse=true")
    np.testing.assert_array_equal(res["masks.intensity"], np.full((2, 3, 1), 5, np.float32))
    res = run_udfs("masks", path, "--param", "mask=disk:5,5,1", "--param", "use_sparse=false")
    assert np.isnan(res["masks.intensity"]).all()
    a[:, :, 4, 0] = 1
    np.save(path, a)
    res = run_udfs("masks", path, "--param", "mask=disk:5,5,1", "--param", "use_sparse=false")
    np.testing.assert_array_equal(res["masks.intensity"], np.full((2, 3, 1), 5, np.float32))


def test_use_sparse_bad_value(make_data, fails):
    d = make_data("raw", "<u2", NAV, SIG)
    msg = fails("run", "masks", d.path, *d.args, "--param", "mask=disk:1,1,1",
                "--param", "use_sparse=sometimes", "-o", "/dev/null/x/")
    assert "masks: use_sparse: expected auto, true or false, got 'sometimes'" in msg


def test_listed(run):
    """`tessera list udfs` documents use_sparse with its default."""
    out = run("list", "udfs").stdout
    block = out[out.index("masks"):]
    assert "use_sparse" in block and "default auto" in block


@pytest.mark.parametrize("dtype", ["<u2", "|i1", "<f4", "<f8", "<i4"])
@pytest.mark.parametrize("isa", ["portable", "avx2", "avx512"])
def test_instruction_sets(make_data, run_udfs, tmp_path, monkeypatch, isa, dtype):
    """Every kernel set the CPU has (TSR_ISA caps the choice; a set the
    CPU lacks falls back to the best it has), on a stack that uses both
    paths, with row-band tiles."""
    monkeypatch.setenv("TSR_ISA", isa)
    masks = ["disk:14,16,9", dense_stack(SIG, 17, 14), rings(SIG, 5), "point:3,4"]
    run_case(make_data, run_udfs, tmp_path, dtype, masks, extra=["--threads", "2"])
    run_case(make_data, run_udfs, tmp_path, dtype, masks,
             extra=["--param", "use_sparse=true", "--tile-bytes", "300"])
