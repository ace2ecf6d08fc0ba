"""sum, sumsig and stddev through each of their accumulation paths, against
numpy (docs/udfs.md describes the paths).

- stddev on integers of at most 16 bits (and bool) accumulates exact integer
  sums and sums of squares: its results must be the same bits whatever the
  threads, partitions, tiles and instruction set, with `mean` the correctly
  rounded Σx / N and `var` within one ulp of the exact (N·Q - S²) / N².
- stddev on 32-bit integers and floats (and on integer data with
  corrections) folds per-tile statistics with Chan's formula in float64: it
  must agree with numpy's two-pass float64 variance to about
  ε·|mean|/σ relative, also for a large offset with a small spread.
- sum and sumsig of integers are exact, of floats within rounding.

Every case runs the three UDFs in one pass, as the engine is meant to be
used, with threads 1/2/3 × partitions 1/2/5, row-band tiles
(`--tile-bytes 256`), a ROI, sync_offset, and with TSR_ISA=portable (the
kernels compiled for the baseline instead of AVX2: the same bits).
"""

import os
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from conftest import load_results

NAV = (5, 9)     # 45 frames: passes of 8, 3 and 1 frames in the exact kernel
SIG = (13, 40)   # 1040 bytes as u2, so --tile-bytes 256 cuts bands of rows
DTYPES = ["|u1", "<u2", "<i2", "|i1", "<u4", "<i4", "<f4", "<f8"]
EPS = 2.0 ** -52


def small_int(dt):
    return np.dtype(dt).kind in "iub" and np.dtype(dt).itemsize <= 2


def raw_args(dt, nav=NAV, sig=SIG):
    return ["--format", "raw", "--set", "nav_shape=" + ",".join(map(str, nav)),
            "--set", "sig_shape=" + ",".join(map(str, sig)), "--set", f"dtype={dt}"]


@pytest.fixture(scope="module")
def stats(tsr_bin, tmp_path_factory):
    """stats(path, *args, env=None) -> results of `tessera run
    sum,sumsig,stddev PATH ARGS` (with extra environment variables)."""
    counter = [0]

    def run_(path, *args, env=None):
        counter[0] += 1
        out = tmp_path_factory.mktemp(f"stats{counter[0]}")
        argv = [tsr_bin, "run", "sum,sumsig,stddev", str(path), *map(str, args), "--quiet",
                "-o", f"{out}/"]
        full_env = dict(os.environ, **(env or {}))
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                            stdin=subprocess.DEVNULL, env=full_env)
        assert cp.returncode == 0, (f"command: {' '.join(argv)} env={env}\n"
                                    f"exit code: {cp.returncode}\nstderr: {cp.stderr.strip()}")
        return load_results(out)
    return run_


@pytest.fixture(scope="module")
def data(gen, tmp_path_factory):
    """data(dtype, lo=None, hi=None, seed=1) -> (path, array): a raw file of
    NAV + SIG random values from tsr-gen (full range for integers, [0, 1)
    for floats unless lo, hi are given)."""
    cache = {}
    root = tmp_path_factory.mktemp("statsdata")

    def make(dtype, lo=None, hi=None, seed=1):
        key = (dtype, lo, hi, seed)
        if key not in cache:
            dt = np.dtype(dtype)
            path = root / f"d{len(cache)}.raw"
            rng = [] if lo is None else ["--range", f"{lo!r},{hi!r}"]
            gen("random", path, "--shape", ",".join(map(str, NAV + SIG)), "--dtype",
                f"{dt.kind}{dt.itemsize}", "--seed", seed, *rng)
            cache[key] = (path, np.fromfile(path, dtype=dt).reshape(NAV + SIG))
        return cache[key]
    return make


# ---------------------------------------------------------------------------
# Oracles


def frames_of(array, roi=None):
    """The selected frames, flat: (n, *sig)."""
    flat = array.reshape((-1,) + array.shape[len(NAV):])
    return flat if roi is None else flat[roi.reshape(-1)]


def exact_moments(x):
    """Correctly rounded mean and variance of integer frames x (n, *sig),
    from exact integer sums (Python integers)."""
    n = x.shape[0]
    xi = x.astype(np.int64).reshape(n, -1)
    s = xi.sum(axis=0)
    q = (xi * xi).sum(axis=0)
    mean = np.array([float(Fraction(int(a), n)) for a in s])
    var = np.array([float(Fraction(n * int(b) - int(a) * int(a), n * n)) for a, b in zip(s, q)])
    return mean.reshape(x.shape[1:]), var.reshape(x.shape[1:])


def check_stats(res, array, what, roi=None, frames=None):
    """Compare the results of sum, sumsig and stddev with numpy.  frames:
    the frames as the engine sees them (default: array), e.g. corrected."""
    x = frames_of(array if frames is None else frames, roi)
    n = x.shape[0]
    exact_int = frames is None and small_int(array.dtype)
    xf = x.astype(np.float64)

    # num_frames
    assert int(res["stddev.num_frames"].reshape(())) == n, what

    # sum and sumsig: integers exactly, floats to rounding
    tot = res["sum.intensity"]
    assert tot.dtype == np.float64, what
    ss = res["sumsig.intensity"].reshape(-1)
    sel = np.ones(ss.size, bool) if roi is None else roi.reshape(-1)
    if frames is None and array.dtype.kind in "iub":
        want = x.astype(np.int64).sum(axis=0).astype(np.float64)
        assert np.array_equal(tot, want), f"{what}: sum.intensity not exact"
        fs = frames_of(array).astype(np.int64).reshape(sel.size, -1).sum(axis=1)
        assert np.array_equal(ss[sel], fs[sel].astype(np.float64)), f"{what}: sumsig not exact"
    else:
        want = xf.sum(axis=0)
        scale = np.abs(xf).sum(axis=0)
        assert np.all(np.abs(tot - want) <= 1e-13 * scale), f"{what}: sum.intensity"
        fa = frames_of(array if frames is None else frames).astype(np.float64)
        fs = fa.reshape(sel.size, -1).sum(axis=1)
        fscale = np.abs(fa).reshape(sel.size, -1).sum(axis=1)
        assert np.all(np.abs(ss[sel] - fs[sel]) <= 1e-13 * fscale[sel]), f"{what}: sumsig"
    assert np.all(np.isnan(ss[~sel])), f"{what}: sumsig outside the ROI"

    # stddev
    mean, var, std = res["stddev.mean"], res["stddev.var"], res["stddev.std"]
    for a in (mean, var, std):
        assert a.dtype == np.float64 and a.shape == x.shape[1:], what
    if exact_int:
        emean, evar = exact_moments(x)
        assert np.array_equal(mean, emean), f"{what}: mean is not Σx/N rounded once"
        bad = np.abs(var - evar) > np.spacing(evar)
        assert not bad.any(), (f"{what}: var more than an ulp from exact at "
                               f"{np.argwhere(bad)[0]}: {var[bad][0]!r} vs {evar[bad][0]!r}")
        assert np.array_equal(std, np.sqrt(var)), what
    else:
        nmean, nvar = xf.mean(axis=0), xf.var(axis=0)
        sd = np.sqrt(nvar)
        # float64 means of magnitude |mean| carry ~ε|mean|; the variance
        # then ~ε|mean|/σ relative (see docs/udfs.md); 16× that, at least 1e-12
        rel = np.maximum(1e-12, 16 * EPS * np.abs(nmean) / np.where(sd > 0, sd, 1))
        assert np.all(np.abs(mean - nmean) <= 1e-14 * np.abs(xf).max(axis=0)), f"{what}: mean"
        bad = np.abs(var - nvar) > rel * nvar + 1e-300
        assert not bad.any(), (f"{what}: var off at {np.argwhere(bad)[0]}: "
                               f"{var[bad][0]!r} vs numpy {nvar[bad][0]!r}")
        assert np.all(np.abs(std - sd) <= rel * sd + 1e-300), f"{what}: std"


def same_bits(a, b, keys, what):
    for k in keys:
        assert a[k].tobytes() == b[k].tobytes(), f"{what}: {k} differs"


STATS = ("stddev.mean", "stddev.var", "stddev.std")
ALL = STATS + ("sum.intensity", "sumsig.intensity", "stddev.num_frames")


# ---------------------------------------------------------------------------
# Cases


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_and_partitions(stats, data, dtype):
    path, arr = data(dtype)
    first = None
    for threads in (1, 2, 3):
        for parts in (1, 2, 5):
            what = f"{dtype} threads={threads} partitions={parts}"
            res = stats(path, *raw_args(dtype), "--threads", threads, "--partitions", parts)
            check_stats(res, arr, what)
            if first is None:
                first = res
            elif small_int(dtype) or dtype[1] in "iu":
                # exact sums: the same bits whatever the split
                same_bits(res, first, ALL if small_int(dtype) else
                          ("sum.intensity", "sumsig.intensity"), what)


@pytest.mark.parametrize("dtype", DTYPES)
def test_row_bands(stats, data, dtype):
    """256-byte tiles: frames cut into bands of rows (one row for f8)."""
    path, arr = data(dtype)
    res = stats(path, *raw_args(dtype), "--tile-bytes", 256, "--threads", 2, "--partitions", 3)
    check_stats(res, arr, f"{dtype} row bands")
    if small_int(dtype):
        same_bits(res, stats(path, *raw_args(dtype)), ALL, f"{dtype} row bands")


@pytest.mark.parametrize("dtype", DTYPES)
def test_portable_kernels(stats, data, dtype):
    """TSR_ISA=portable: the baseline kernels give the same bits as the
    AVX2 ones (no FMA, the same operations in the same order)."""
    path, arr = data(dtype)
    for args in ([], ["--tile-bytes", 256]):
        base = stats(path, *raw_args(dtype), *args, "--threads", 1)
        port = stats(path, *raw_args(dtype), *args, "--threads", 1, env={"TSR_ISA": "portable"})
        check_stats(port, arr, f"{dtype} portable {args}")
        same_bits(port, base, ALL, f"{dtype} portable vs default {args}")


@pytest.mark.parametrize("dtype", ["<u2", "|i1", "<i4", "<f4"])
def test_roi(stats, data, tmp_path, dtype):
    path, arr = data(dtype, seed=2)
    rng = np.random.default_rng(3)
    roi = rng.random(NAV) < 0.45
    roi[0, 0] = roi[-1, -1] = True
    np.save(tmp_path / "roi.npy", roi)
    for threads, parts in ((1, 1), (2, 5)):
        res = stats(path, *raw_args(dtype), "--roi", tmp_path / "roi.npy", "--threads", threads,
                    "--partitions", parts)
        check_stats(res, arr, f"{dtype} roi threads={threads}", roi=roi)
    res = stats(path, *raw_args(dtype), "--roi", "rect:1,2,3,4")
    rect = np.zeros(NAV, bool)
    rect[1:4, 2:6] = True
    check_stats(res, arr, f"{dtype} rect roi", roi=rect)


@pytest.mark.parametrize("offset", [3, -4])
@pytest.mark.parametrize("dtype", ["<u2", "<f4"])
def test_sync_offset(stats, data, dtype, offset):
    """Frames shifted by sync_offset; the ones outside the file are zeros,
    which the float scheme folds in like any other tile."""
    path, arr = data(dtype)
    flat = arr.reshape((-1,) + SIG)
    seen = np.zeros_like(flat)
    n = flat.shape[0]
    if offset >= 0:
        seen[:n - offset] = flat[offset:]
    else:
        seen[-offset:] = flat[:n + offset]
    seen = seen.reshape(arr.shape)
    for threads, parts in ((1, 1), (2, 5)):
        res = stats(path, *raw_args(dtype), "--set", f"sync_offset={offset}",
                    "--threads", threads, "--partitions", parts)
        check_stats(res, seen, f"{dtype} sync_offset={offset}")


@pytest.mark.parametrize("dtype,lo,hi", [
    ("<f4", 1.0e4, 1.0e4 + 1.0),      # f32 spacing 2^-10 near 1e4: a small spread
    ("<f8", 1.0e6, 1.0e6 + 1.0e-3),
    ("<f8", -5.0e3, -5.0e3 + 2.0),
    ("<u4", 4.0e9, 4.0e9 + 20),
    ("<i4", -2.0e9, -2.0e9 + 7),
])
def test_large_offset(stats, data, dtype, lo, hi):
    """A large mean with a small spread: no Σx² in float, so the variance
    keeps its precision (a naive one-pass Σx² loses it entirely)."""
    path, arr = data(dtype, lo, hi, seed=4)
    for args in ([], ["--tile-bytes", 256, "--threads", 2, "--partitions", 5]):
        res = stats(path, *raw_args(dtype), *args)
        check_stats(res, arr, f"{dtype} [{lo}, {hi}) {args}")


def test_extremes(stats, tmp_path):
    """Integer extremes: a pixel at the minimum in every frame, one at the
    maximum, one alternating (the largest variance), one constant."""
    nf = int(np.prod(NAV))
    for dt in ("<u2", "<i2", "|u1", "|i1", "|b1"):
        d = np.dtype(dt)
        lo, hi = (0, 1) if d.kind == "b" else (np.iinfo(d).min, np.iinfo(d).max)
        rng = np.random.default_rng(9)
        a = rng.integers(lo, hi, size=(nf,) + SIG, endpoint=True).astype(d)
        a[:, 0, 0] = lo
        a[:, 0, 1] = hi
        a[:, 0, 2] = np.where(np.arange(nf) % 2 == 0, lo, hi)
        a[:, 0, 3] = hi - 1 if d.kind != "b" else hi
        a = a.reshape(NAV + SIG)
        path = tmp_path / f"x_{d.kind}{d.itemsize}.raw"
        a.tofile(path)
        args = raw_args("bool" if d.kind == "b" else dt)
        first = None
        for extra in ([], ["--threads", 2, "--partitions", 5], ["--tile-bytes", 256]):
            res = stats(path, *args, *extra)
            check_stats(res, a.astype(np.uint8) if d.kind == "b" else a, f"{dt} extremes {extra}")
            if first is None:
                first = res
            same_bits(res, first, ALL, f"{dt} extremes {extra}")


def test_corrections_take_the_float_path(stats, data, tmp_path):
    """With a dark frame, integer data arrive as float32: the float scheme,
    compared with numpy on the corrected frames."""
    path, arr = data("<u2", seed=5)
    dark = (np.arange(np.prod(SIG)).reshape(SIG) % 17).astype(np.float32) * 3.5
    np.save(tmp_path / "dark.npy", dark)
    corrected = (arr.astype(np.float32) - dark).astype(np.float64)
    for threads, parts in ((1, 1), (3, 5)):
        res = stats(path, *raw_args("<u2"), "--dark", tmp_path / "dark.npy", "--threads",
                    threads, "--partitions", parts)
        check_stats(res, arr, f"u2 dark threads={threads}", frames=corrected)
