"""The standard 4D-STEM analyses (issue 6): radial_profile, fem,
radial_fourier, crystallinity, logsum, max, min, sum in a ROI, pick's FFT,
count_threshold and count.

Every UDF is checked against a numpy implementation of its definition
(written here from docs/analyses.md (its part on rings, Fourier transforms, frame statistics and electron counting) and LiberTEM's definitions, not
from the engine) on the same data, and on data with a known answer made by
tests/gen/gen_radial.py: rings with an n-fold symmetry (radial_fourier finds
n), speckle of known spread (fem), lattice fringes (crystallinity), isolated
electrons and X-rays (count).  Results must not depend on the ROI handling,
the number of threads, partitions or the tiling.

The examples of docs/analyses.md run as written (test_doc_examples for the
part on rings, Fourier, statistics and counting; test_doc_examples_masks_and_com
for the part on masks and com, checked with the oracles of test_masks_ext.py
and test_com.py).
"""

import pathlib
import sys
import tomllib

import numpy as np
import pytest
import scipy.sparse

from oracle import roi_mask

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_radial  # noqa: E402

RTOL = 1e-5
NAV = (5, 6)
SIG = (24, 30)

# (threads, partitions, tile bytes): one pass, several partitions and
# threads, and tiles of a few rows (frames split along the signal)
SPLITS = [("1", "1", None), ("2", "3", None), ("2", "7", "600")]


def params(**kw):
    return [a for k, v in kw.items() for a in ("--param", f"{k}={v}")]


def split_args(threads, parts, tile):
    a = ["--threads", threads, "--partitions", parts]
    return a + (["--tile-bytes", tile] if tile else [])


def save(tmp_path, name, arr):
    p = tmp_path / name
    np.save(p, arr)
    return p


def random_frames(dtype, nav=NAV, sig=SIG, seed=11):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (rng.random(tuple(nav) + tuple(sig)) * 1000 - 100).astype(dt)
    info = np.iinfo(dt)
    hi = min(info.max, 60000)
    lo = max(info.min, -30000)
    return rng.integers(lo, hi, tuple(nav) + tuple(sig), endpoint=True).astype(dt)


def close(got, want, what, rtol=RTOL, scale=None):
    """got ~ want elementwise: |got - want| <= rtol * scale (default |want|),
    NaN where want is NaN."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), f"{what}: NaN at the wrong places"
    s = np.abs(want) if scale is None else np.broadcast_to(scale, want.shape)
    err = np.abs(got - want)[~nan]
    tol = (rtol * s)[~nan] + 1e-30
    assert np.all(err <= tol), (f"{what}: max error {err.max():.3g}, "
                                f"tolerance {tol[np.argmax(err - tol)]:.3g}")


def masked_nav(values, sel, fill=np.nan):
    """values (nav + extra) with the unselected positions set to fill."""
    v = np.array(values, dtype=np.float64 if fill is np.nan else values.dtype)
    if sel is not None:
        v[~sel] = fill
    return v


# ---------------------------------------------------------------------------
# oracles, from the definitions


def polar(sig, cx, cy):
    yy, xx = np.indices(sig, dtype=np.float64)
    dy, dx = yy - cy, xx - cx
    return np.sqrt(dx * dx + dy * dy), np.arctan2(dy, dx)


def bounding_radius(cx, cy, h, w):
    """LiberTEM's masks.bounding_radius."""
    dy = max(cy, h - cy)
    dx = max(cx, w - cx)
    return int(np.ceil(np.sqrt(dy ** 2 + dx ** 2))) + 1


def radial_profile_oracle(data, cx=None, cy=None, ri=0.0, ro=None, n_bins=None, width=None,
                          exclude=None):
    """Hard rings: bin floor((r - ri) / width) for ri <= r < ro, clamped to
    n_bins - 1; the mean over each ring's pixels (NaN if none)."""
    h, w = data.shape[-2:]
    cx = w / 2 if cx is None else cx
    cy = h / 2 if cy is None else cy
    ro = bounding_radius(cx, cy, h, w) if ro is None else ro
    if width is not None:
        n_bins = int(np.ceil((ro - ri) / width))
    else:
        n_bins = max(1, int(np.round(ro - ri))) if n_bins is None else n_bins
        width = (ro - ri) / n_bins
    r, _ = polar((h, w), cx, cy)
    inside = (r >= ri) & (r < ro)
    if exclude is not None:
        inside &= ~exclude.astype(bool)
    b = np.minimum(np.floor((r - ri) / width).astype(np.int64), n_bins - 1)
    flat = data.reshape(data.shape[:-2] + (h * w,)).astype(np.float64)
    out = np.full(data.shape[:-2] + (n_bins,), np.nan)
    pixels = np.zeros(n_bins, np.int64)
    for k in range(n_bins):
        m = (inside & (b == k)).reshape(-1)
        pixels[k] = m.sum()
        if pixels[k]:
            out[..., k] = flat[..., m].mean(axis=-1)
    lo = ri + np.arange(n_bins) * width
    hi = np.minimum(ri + (np.arange(n_bins) + 1) * width, ro)
    return out, pixels, (lo + hi) / 2


def ring_mask(sig, cx, cy, ri, ro):
    """LiberTEM's ring: outer disk minus inner disk, d^2 <= r^2 each."""
    r, _ = polar(sig, cx, cy)
    d2 = r * r
    return (d2 <= ro * ro) & ~(d2 <= ri * ri)


def fem_oracle(data, cx, cy, ri, ro, exclude=None):
    m = ring_mask(data.shape[-2:], cx, cy, ri, ro)
    if exclude is not None:
        m &= ~exclude.astype(bool)
    return data[..., m].astype(np.float64).std(axis=-1)


def radial_fourier_oracle(data, cx, cy, ri, ro, n_bins, max_order):
    """LiberTEM's RadialFourierAnalysis: antialiased rings
    (masks.radial_bins) times exp(i n phi), as one complex mask stack."""
    h, w = data.shape[-2:]
    r, phi = polar((h, w), cx, cy)
    width = (ro - ri) / n_bins
    rings = np.array([np.clip(width / 2 + 0.5 - np.abs(r - r0), 0, 1)
                      for r0 in np.linspace(ri, ro - width, n_bins) + width / 2])
    if ri < 0.5:
        yy, xx = int(np.round(cy)), int(np.round(cx))
        if 0 <= yy < h and 0 <= xx < w:
            rings[0, yy, xx] = 1 - ri
    orders = np.arange(max_order + 1)
    stack = rings[:, None] * np.exp(1j * orders[:, None, None] * phi)
    flat = data.reshape(-1, h * w).astype(np.float64)
    c = flat @ stack.reshape(-1, h * w).T
    return c.reshape(data.shape[:-2] + (n_bins, max_order + 1))


def freq_ring(sig, rad_in, rad_out):
    """Frequencies (numpy's fft layout) with rad_in^2 < kx^2 + ky^2 <= rad_out^2,
    kx, ky the integer frequency indices fftfreq(n) * n."""
    h, w = sig
    ky = np.fft.fftfreq(h, 1 / h)
    kx = np.fft.fftfreq(w, 1 / w)
    d2 = ky[:, None] ** 2 + kx[None, :] ** 2
    return (d2 > rad_in ** 2) & (d2 <= rad_out ** 2)


def real_mask(sig, rad=None, cx=None, cy=None):
    h, w = sig
    if rad is None:
        return np.ones(sig)
    cx = w / 2 if cx is None else cx
    cy = h / 2 if cy is None else cy
    r, _ = polar(sig, cx, cy)
    return 1.0 - (r * r <= rad * rad)


def crystallinity_oracle(data, rad_in, rad_out, real_rad=None, real_cx=None, real_cy=None,
                         squared=False):
    sig = data.shape[-2:]
    f = np.abs(np.fft.fft2(data.astype(np.float64) * real_mask(sig, real_rad, real_cx, real_cy)))
    if squared:
        f = f ** 2
    return (f * freq_ring(sig, rad_in, rad_out)).sum(axis=(-2, -1))


def logsum_oracle(frames):
    """Σ log(x - min(frame) + 1) in float64 over frames (n, *sig)."""
    x = frames.astype(np.float64)
    mins = x.reshape(len(x), -1).min(axis=1)
    return np.log(x - mins[:, None, None] + 1).sum(axis=0)


def threshold_oracle(samples, nsigma=4.0, xray_nsigma=10.0, clip=3.0):
    """Sigma clipping of all sampled values until the number kept no longer
    changes; xray from the mean and std of all values."""
    v = samples.astype(np.float32).astype(np.float64).ravel()
    keep = np.ones(v.size, bool)
    m_all, s_all = v.mean(), v.std()
    m, s = m_all, s_all
    n = v.size
    for _ in range(100):
        keep = np.abs(v - m) <= clip * s
        if keep.sum() == n:
            break
        n = keep.sum()
        m, s = v[keep].mean(), v[keep].std()
    return m + nsigma * s, m_all + xray_nsigma * s_all, m, s


def count_oracle(frame, thr, xray):
    """Event pixels (flat, ascending) of one frame: y = x where thr < x <=
    xray else 0; y > 0 and y > the neighbours before it in raster order, >=
    those after it."""
    x = frame.astype(np.float64)
    h, w = x.shape
    y = np.where((x > thr) & (x <= xray), x, 0.0)
    p = np.pad(y, 1, constant_values=-np.inf)
    c = p[1:-1, 1:-1]
    ev = c > 0
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            if dy == 0 and dx == 0:
                continue
            q = p[1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
            ev &= (c > q) if (dy < 0 or (dy == 0 and dx < 0)) else (c >= q)
    return np.flatnonzero(ev)


# ---------------------------------------------------------------------------
# radial_profile


RP_CASES = {
    "defaults": {},
    "ring": dict(cx=13.3, cy=11.6, ri=2.5, ro=11, n_bins=7),
    "width": dict(cx=15, cy=12, ri=1, width=2.7),
    "exclude": dict(cx=14.2, cy=12.9, ri=0, ro=20, n_bins=9, exclude=True),
}


@pytest.mark.parametrize("dtype", ["<u2", "<f4", "<i4", "|u1"])
@pytest.mark.parametrize("case", list(RP_CASES))
def test_radial_profile(run_udfs, tmp_path, case, dtype):
    data = random_frames(dtype)
    path = save(tmp_path, "d.npy", data)
    kw = dict(RP_CASES[case])
    excl = None
    if kw.pop("exclude", False):
        excl = np.random.default_rng(4).random(SIG) < 0.15
        kw["exclude"] = save(tmp_path, "ex.npy", excl)
    res = run_udfs("radial_profile", path, *params(**kw))
    kw.pop("exclude", None)
    want, pixels, radius = radial_profile_oracle(data, exclude=excl, **kw)
    assert res["radial_profile.intensity"].dtype == np.float32
    close(res["radial_profile.intensity"], want, "radial_profile.intensity")
    assert np.array_equal(res["radial_profile.pixels"], pixels)
    close(res["radial_profile.radius"], radius, "radial_profile.radius", rtol=1e-12)
    assert np.isnan(want).any() == (pixels == 0).any()


@pytest.mark.parametrize("dtype", ["<u2", "<i4"])
def test_radial_profile_split_frames(run_udfs, tmp_path, dtype):
    """Frames larger than a tile come in bands of a few rows, eight frames
    at a time (and the rest of the frames fewer)."""
    data = random_frames(dtype, nav=(3, 7))
    path = save(tmp_path, "d.npy", data)
    kw = dict(cx=14.2, cy=11.7, ri=0.5, ro=14, n_bins=9)
    want, _, _ = radial_profile_oracle(data, **kw)
    for tile in ["600", "3000", "30000"]:
        res = run_udfs("radial_profile", path, *params(**kw), "--tile-bytes", tile,
                       "--partitions", "2")
        close(res["radial_profile.intensity"], want, f"radial_profile tile {tile}")


def test_radial_profile_of_rings(run_udfs, tmp_path):
    """A frame of concentric rings of value = their radius gives that value
    back in every ring."""
    sig = (41, 37)
    cx, cy = 18.0, 20.0
    r, _ = polar(sig, cx, cy)
    frame = np.floor(r).astype(np.uint16)  # 1-pixel rings, value = ring index
    data = np.stack([frame, 2 * frame])
    path = save(tmp_path, "rings.npy", data[None])
    res = run_udfs("radial_profile", path, *params(cx=cx, cy=cy, ri=0, ro=18, n_bins=18),
                   "--set", "nav_shape=1,2", "--set", "sig_shape=41,37")
    got = res["radial_profile.intensity"].reshape(2, 18)
    assert np.array_equal(got[0], np.arange(18, dtype=np.float32))
    assert np.array_equal(got[1], 2 * np.arange(18, dtype=np.float32))


# ---------------------------------------------------------------------------
# fem


@pytest.mark.parametrize("dtype", ["<u2", "<i2", "<f4", "<f8", "<u4"])
def test_fem_oracle(run_udfs, tmp_path, dtype):
    data = random_frames(dtype)
    excl = np.random.default_rng(6).random(SIG) < 0.2
    path = save(tmp_path, "d.npy", data)
    ex = save(tmp_path, "ex.npy", excl)
    for kw, e in [(dict(cx=14.5, cy=11.2, ri=3, ro=10.5), None),
                  (dict(ri=0, ro=8), None),
                  (dict(cx=10, cy=10, ri=4, ro=30), excl)]:
        args = params(**kw) + (params(exclude=ex) if e is not None else [])
        res = run_udfs("fem", path, *args)
        want = fem_oracle(data, kw.get("cx", SIG[1] / 2), kw.get("cy", SIG[0] / 2), kw["ri"],
                          kw["ro"], e)
        assert res["fem.intensity"].dtype == np.float32
        close(res["fem.intensity"], want, f"fem {kw}")


def test_fem_known_speckle(run_udfs, tmp_path):
    """The spread of the speckle is found within sampling error (the ring
    holds ~700 pixels: relative standard error of a std about 3 %)."""
    sigmas = np.linspace(10, 120, 30).reshape(NAV)
    sig = (48, 48)
    data, truth = gen_radial.speckle(NAV, sig, 23.5, 23.5, 10, 18, sigmas)
    path = save(tmp_path, "speckle.npy", data)
    res = run_udfs("fem", path, *params(cx=23.5, cy=23.5, ri=10, ro=18))
    got = res["fem.intensity"]
    assert np.all(np.abs(got / truth - 1) < 0.12), np.abs(got / truth - 1).max()
    # the ranking of the frames by spread is the truth's
    assert np.corrcoef(got.ravel(), truth.ravel())[0, 1] > 0.99
    close(got, fem_oracle(data, 23.5, 23.5, 10, 18), "fem on speckle")


# ---------------------------------------------------------------------------
# radial_fourier


@pytest.mark.parametrize("kw", [
    dict(),
    dict(cx=13.7, cy=11.2, ri=2.5, ro=11, n_bins=3, max_order=8),
    dict(cx=15, cy=12, ri=0.2, ro=6, n_bins=9, max_order=4),  # rings narrower than a pixel
], ids=["defaults", "three_rings", "narrow"])
@pytest.mark.parametrize("dtype", ["<u2", "<f4", "<f8", "<i4"])  # float32 and float64 tiles
def test_radial_fourier_oracle(run_udfs, tmp_path, kw, dtype):
    data = random_frames(dtype)
    path = save(tmp_path, "d.npy", data)
    res = run_udfs("radial_fourier", path, *params(**kw))
    h, w = SIG
    cx, cy = kw.get("cx", w / 2), kw.get("cy", h / 2)
    ri = kw.get("ri", 0.0)
    ro = kw.get("ro", bounding_radius(cx, cy, h, w))
    nb, mo = kw.get("n_bins", 1), kw.get("max_order", 24)
    want = radial_fourier_oracle(data, cx, cy, ri, ro, nb, mo)
    scale = np.abs(want).max(axis=-1, keepdims=True)  # per ring: its order 0
    c = res["radial_fourier.complex"]
    assert c.dtype == np.complex64 and c.shape == NAV + (nb, mo + 1)
    close(c.real, want.real, "complex.real", scale=scale)
    close(c.imag, want.imag, "complex.imag", scale=scale)
    ab = res["radial_fourier.absolute"]
    assert ab.dtype == np.float32
    close(ab, np.abs(want), "absolute", scale=scale)
    ph = res["radial_fourier.phase"]
    big = np.abs(want) > 1e-3 * scale  # the phase of a tiny coefficient is noise
    dphi = np.angle(np.exp(1j * (ph.astype(np.float64) - np.angle(want))))
    assert np.abs(dphi[big]).max() < 1e-4
    dom = res["radial_fourier.dominant"]
    assert dom.dtype == np.int32 and dom.shape == NAV + (nb,)
    a = np.abs(want[..., 1:])
    top2 = np.sort(a, axis=-1)[..., -2:]
    clear = top2[..., 1] > top2[..., 0] * (1 + 1e-4)  # no near-tie
    assert np.array_equal(dom[clear], (np.argmax(a, axis=-1) + 1)[clear])


def test_radial_fourier_finds_symmetry(run_udfs, tmp_path):
    """Rings with n peaks: the dominant order of the ring is n."""
    orders = np.array([[1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1], [2, 4, 6, 8, 3, 7],
                       [7, 8, 2, 2, 4, 4], [3, 3, 5, 6, 1, 8]])
    sig = (64, 64)
    data, truth = gen_radial.rings(orders.shape, sig, 31.3, 32.6, 20, orders)
    path = save(tmp_path, "rings.npy", data)
    res = run_udfs("radial_fourier", path,
                   *params(cx=31.3, cy=32.6, ri=17, ro=23, n_bins=1, max_order=10))
    assert np.array_equal(res["radial_fourier.dominant"][..., 0], truth)
    ab = res["radial_fourier.absolute"][..., 0, :].astype(np.float64)
    # the n-th coefficient is about half of the ring's intensity (1 + cos)
    rel = np.take_along_axis(ab, truth[..., None], -1)[..., 0] / ab[..., 0]
    assert np.all((rel > 0.3) & (rel < 0.6)), rel


# ---------------------------------------------------------------------------
# crystallinity


@pytest.mark.parametrize("dtype", ["<u2", "<f4", "<f8"])
@pytest.mark.parametrize("sig", [(24, 30), (25, 27)], ids=["even", "odd"])
def test_crystallinity_oracle(run_udfs, tmp_path, sig, dtype):
    data = random_frames(dtype, sig=sig)
    path = save(tmp_path, "d.npy", data)
    for kw in [dict(rad_in=2, rad_out=9), dict(rad_in=1, rad_out=12.5, real_rad=4),
               dict(rad_in=3, rad_out=7, real_rad=3, real_cx=10.5, real_cy=9, squared="true")]:
        res = run_udfs("crystallinity", path, *params(**kw))
        want = crystallinity_oracle(data, kw["rad_in"], kw["rad_out"], kw.get("real_rad"),
                                    kw.get("real_cx"), kw.get("real_cy"),
                                    kw.get("squared") == "true")
        assert res["crystallinity.intensity"].dtype == np.float32
        # single-precision FFT
        close(res["crystallinity.intensity"], want, f"crystallinity {kw}", rtol=1e-5)


def test_crystallinity_finds_lattice(run_udfs, tmp_path):
    """Fringes of period 4 on 32-pixel frames: a peak at |k| = 8.  The
    crystalline frames score far above the amorphous ones."""
    cryst = np.zeros(NAV, bool)
    cryst[1:4, 2:5] = True
    data, truth = gen_radial.lattice(NAV, (32, 32), cryst, period=4.0)
    path = save(tmp_path, "lattice.npy", data)
    res = run_udfs("crystallinity", path, *params(rad_in=6, rad_out=10))
    got = res["crystallinity.intensity"]
    assert got[truth].min() > 2 * got[~truth].max()
    close(got, crystallinity_oracle(data, 6, 10), "crystallinity on fringes")


# ---------------------------------------------------------------------------
# logsum, max, min, sum in a ROI


ROIS = [None, "rect:1,2,3,3", "file"]


def roi_args(roi, tmp_path):
    if roi is None:
        return None, []
    if roi == "file":
        m = np.random.default_rng(8).random(NAV) < 0.4
        m.flat[0] = True
        return m, ["--roi", save(tmp_path, "roi.npy", m)]
    return roi_mask(NAV, roi), ["--roi", roi]


@pytest.mark.parametrize("roi", ROIS, ids=["noroi", "rect", "file"])
@pytest.mark.parametrize("dtype", ["<u2", "<i2", "<f4", "<i4", "|u1", "<f8"])
def test_frame_statistics(run_udfs, tmp_path, dtype, roi):
    data = random_frames(dtype)
    if data.dtype.kind == "f":
        data[2, 3, 4, 5] = np.nan  # NaN propagates through max and min
    path = save(tmp_path, "d.npy", data)
    sel, rargs = roi_args(roi, tmp_path)
    res = run_udfs("sum,logsum,max,min", path, *rargs)
    frames = data.reshape((-1,) + SIG)
    if sel is not None:
        frames = frames[sel.reshape(-1)]
    for udf, want in [("max", frames.max(axis=0)), ("min", frames.min(axis=0))]:
        got = res[f"{udf}.intensity"]
        assert got.dtype == data.dtype.newbyteorder("="), f"{udf}: dtype {got.dtype}"
        assert np.array_equal(got, want, equal_nan=data.dtype.kind == "f"), udf
    close(res["logsum.logsum"], logsum_oracle(frames), "logsum.logsum", rtol=1e-12)
    s = res["sum.intensity"]
    if data.dtype.kind in "iu":  # the sum of a ROI is exact
        assert np.array_equal(s, frames.astype(np.int64).sum(axis=0).astype(np.float64))
    else:
        close(s, frames.astype(np.float64).sum(axis=0), "sum.intensity", rtol=1e-12)


def test_logsum_definition(run_udfs, tmp_path):
    """LiberTEM's docstring example: log-scaling before summing lifts a
    weak feature that every frame has over a strong one that few have."""
    f = np.full((10, 1, 2), (11, 1), np.uint16)
    f[0, 0, 1] = 101
    path = save(tmp_path, "ls.npy", f.reshape(10, 1, 2))
    res = run_udfs("logsum", path, "--set", "nav_shape=10", "--set", "sig_shape=1,2")
    ls = res["logsum.logsum"].reshape(2)
    # frame 0: min 11 -> log(1), log(91); frames 1..9: min 1 -> log(11), log(1)
    assert np.allclose(ls, [9 * np.log(11), np.log(91)], rtol=1e-14)


# ---------------------------------------------------------------------------
# pick with fft


@pytest.mark.parametrize("dtype", ["<u2", "<f4", "<f8"])
def test_pick_fft(run_udfs, tmp_path, dtype):
    """The FFT of the picked frames, whatever the threads, partitions,
    tiling and a ROI that holds the picked positions."""
    data = random_frames(dtype, sig=(25, 30))
    path = save(tmp_path, "d.npy", data)
    picks = [(0, 0), (3, 4), (4, 5)]
    nav = [a for p in picks for a in ("--param", f"nav={p[0]},{p[1]}")]
    roi = np.random.default_rng(4).random(NAV) < 0.5
    for p in picks:
        roi[p] = True
    rargs = ["--roi", save(tmp_path, "roi.npy", roi)]
    runs = [(dict(fft="true"), []), (dict(fft="true", real_rad=5), split_args("2", "3", None)),
            (dict(fft="true", real_rad=4, real_cx=11.5, real_cy=9),
             split_args("2", "7", "600") + rargs)]
    for kw, extra in runs:
        res = run_udfs("pick", path, *nav, *params(**kw), *extra)
        frames = np.stack([data[p] for p in picks])
        assert np.array_equal(res["pick.intensity"], frames)
        m = real_mask((25, 30), kw.get("real_rad"), kw.get("real_cx"), kw.get("real_cy"))
        want = np.fft.fftshift(np.abs(np.fft.fft2(frames * m)), axes=(-2, -1))
        got = res["pick.fft"]
        assert got.dtype == np.float32 and got.shape == (3, 25, 30)
        close(got, want, f"pick.fft {kw} {extra}", scale=want.max(axis=(-2, -1), keepdims=True))


# ---------------------------------------------------------------------------
# counting


def read_csr(toml_path):
    """Read a raw_csr dataset as LiberTEM's RawCSRDataSet does
    (libertem/io/dataset/raw_csr.py: get_descriptor, get_nav_size, check):
    [params] filetype (case-insensitive "raw_csr"), nav_shape, sig_shape;
    the section named by filetype holds the three file names (joined to the
    TOML's folder) and their numpy dtypes; the number of frames is
    len(indptr) - 1."""
    import os
    with open(toml_path, "rb") as f:
        conf = tomllib.load(f)
    assert conf["params"]["filetype"].lower() == "raw_csr"
    c = conf[conf["params"]["filetype"]]
    base = os.path.dirname(str(toml_path))
    arrs = [np.fromfile(os.path.join(base, c[f"{k}_file"]), dtype=np.dtype(c[f"{k}_dtype"]))
            for k in ("indptr", "indices", "data")]
    nav = tuple(conf["params"]["nav_shape"])
    sig = tuple(conf["params"]["sig_shape"])
    assert len(arrs[0]) - 1 == int(np.prod(nav))
    assert arrs[1].shape == arrs[2].shape
    m = scipy.sparse.csr_matrix((arrs[2], arrs[1], arrs[0]),
                                shape=(int(np.prod(nav)), int(np.prod(sig))))
    m.check_format(full_check=True)
    return m, nav, sig


def test_count_known_electrons(run_udfs, tmp_path):
    nav, sig = (6, 7), (32, 40)
    data, truth = gen_radial.electrons(nav, sig)
    path = save(tmp_path, "e.npy", data)
    # 6 sigma: no noise pixel in 54000 passes (4 sigma would give a few)
    res = run_udfs("count_threshold", path, *params(n_samples=12, nsigma=6))
    thr, xray = float(res["count_threshold.threshold"]), float(res["count_threshold.xray"])
    # the background is the dark level and its noise, found despite the hits
    assert abs(float(res["count_threshold.mean"]) - 100) < 0.5
    assert abs(float(res["count_threshold.std"]) / 4 - 1) < 0.05
    assert int(res["count_threshold.num_frames"]) == 12
    # thresholds against the oracle on the same sampled frames
    nnav = int(np.prod(nav))
    sample = data.reshape((nnav,) + sig)[[i * nnav // 12 for i in range(12)]]
    want = threshold_oracle(sample, nsigma=6)
    for k, name in enumerate(["threshold", "xray", "mean", "std"]):
        close(res[f"count_threshold.{name}"], want[k], name, rtol=1e-9)
    assert 120 < thr < 160 and 500 < xray < 20000, (thr, xray)  # noise < thr < halo, peak < xray

    out = tmp_path / "counted" / "ev.toml"
    out.parent.mkdir()
    res = run_udfs("count", path, *params(threshold=thr, xray=xray, output=out))
    m, cnav, csig = read_csr(out)
    assert cnav == nav and csig == sig
    assert m.dtype == np.uint8 and np.all(m.data == 1)
    for i in range(nnav):
        row = m.indices[m.indptr[i]:m.indptr[i + 1]]
        assert list(row) == truth["hits"][i], f"frame {i}"  # every electron once, no X-ray
    assert np.array_equal(res["count.events"].ravel(), [len(h) for h in truth["hits"]])
    # the X-rays were above the cut-off: without it they count too
    out2 = tmp_path / "counted" / "all.toml"
    run_udfs("count", path, *params(threshold=thr, output=out2))
    m2, _, _ = read_csr(out2)
    assert m2.nnz == m.nnz + sum(len(x) for x in truth["xrays"])


@pytest.mark.parametrize("dtype", ["<u2", "<f4"])
@pytest.mark.parametrize("roi", ROIS, ids=["noroi", "rect", "file"])
def test_count_oracle(run_udfs, tmp_path, roi, dtype):
    """Noisy data with touching electrons and plateaus (integer values; in
    float32, with a fraction added to part of the pixels), against the
    definition; frames outside the ROI are empty rows."""
    rng = np.random.default_rng(12)
    data = rng.poisson(0.6, NAV + SIG).astype(np.uint16) * 50 + rng.integers(0, 3, NAV + SIG)
    data = data.astype(dtype)
    if data.dtype.kind == "f":
        data += (rng.random(NAV + SIG) < 0.5) * rng.random(NAV + SIG).astype(np.float32)
    path = save(tmp_path, "d.npy", data)
    sel, rargs = roi_args(roi, tmp_path)
    for i, (threads, parts, tile) in enumerate(SPLITS):
        out = tmp_path / f"c{i}.toml"
        res = run_udfs("count", path, *params(threshold=40, xray=120, output=out), *rargs,
                       *split_args(threads, parts, tile))
        m, _, _ = read_csr(out)
        frames = data.reshape((-1,) + SIG)
        for f in range(len(frames)):
            want = count_oracle(frames[f], 40, 120) if sel is None or sel.flat[f] else []
            got = m.indices[m.indptr[f]:m.indptr[f + 1]]
            assert np.array_equal(got, want), f"frame {f}"
        ev = res["count.events"].ravel()
        n = np.diff(m.indptr)
        assert np.array_equal(ev if sel is None else ev[sel.ravel()],
                              n if sel is None else n[sel.ravel()])


@pytest.mark.parametrize("dtype", ["<u2", "<f4"])
@pytest.mark.parametrize("roi", ROIS, ids=["noroi", "rect", "file"])
def test_count_threshold_oracle(run_udfs, tmp_path, roi, dtype):
    """count_threshold samples frame floor(i * N / n_samples) for i <
    n_samples, reads those in the ROI only, and gives the same numbers
    whatever the threads, partitions and tiling."""
    nav = (6, 7)
    data, _ = gen_radial.electrons(nav, SIG)
    data = data.astype(dtype)
    path = save(tmp_path, "e.npy", data)
    sel = None
    rargs = []
    if roi == "rect":
        sel = roi_mask(nav, "rect:1,2,4,3")
        rargs = ["--roi", "rect:1,2,4,3"]
    elif roi == "file":
        sel = np.random.default_rng(8).random(nav) < 0.5
        rargs = ["--roi", save(tmp_path, "roi.npy", sel)]
    n = int(np.prod(nav))
    picked = [i * n // 9 for i in range(9)]
    if sel is not None:
        picked = [i for i in picked if sel.flat[i]]
    assert len(picked) >= 2
    want = threshold_oracle(data.reshape((n,) + SIG)[picked], nsigma=5, xray_nsigma=8,
                            clip=2.5)
    for threads, parts, tile in SPLITS:
        res = run_udfs("count_threshold", path, *params(n_samples=9, nsigma=5, xray_nsigma=8,
                                                        clip=2.5),
                       *rargs, *split_args(threads, parts, tile))
        assert int(res["count_threshold.num_frames"]) == len(picked)
        for k, name in enumerate(["threshold", "xray", "mean", "std"]):
            close(res[f"count_threshold.{name}"], want[k], f"{name} {threads},{parts},{tile}",
                  rtol=1e-9)


def test_count_file_names_are_escaped(run_udfs, tmp_path):
    """A descriptor whose name needs TOML escapes (quote, backslash, tab)
    still parses and names the right files."""
    data = random_frames("<u2")
    path = save(tmp_path, "d.npy", data)
    out = tmp_path / 'we"ird\\na\tme.toml'
    res = run_udfs("count", path, *params(threshold=30000, output=out))
    m, nav, sig = read_csr(out)
    assert (tmp_path / 'we"ird\\na\tme.indices.raw').is_file()
    assert nav == NAV and sig == SIG
    frames = data.reshape((-1,) + SIG)
    for f in range(len(frames)):
        assert np.array_equal(m.indices[m.indptr[f]:m.indptr[f + 1]],
                              count_oracle(frames[f], 30000, np.inf)), f"frame {f}"
    assert np.array_equal(res["count.events"].ravel(), np.diff(m.indptr))


def test_count_empty_roi(run_udfs, tmp_path):
    """A ROI that selects nothing still gives a complete dataset: empty rows."""
    path = save(tmp_path, "d.npy", random_frames("<u2"))
    roi = save(tmp_path, "roi.npy", np.zeros(NAV, bool))
    out = tmp_path / "e.toml"
    run_udfs("count", path, *params(threshold=100, output=out), "--roi", roi)
    m, nav, sig = read_csr(out)
    assert nav == NAV and sig == SIG and m.nnz == 0 and len(m.indptr) == 31


# ---------------------------------------------------------------------------
# the same results whatever the threads, partitions, tiling and ROI


INVARIANT = [
    ("radial_profile", dict(cx=14.3, cy=11.8, ri=1, ro=13, n_bins=6), ["intensity"]),
    ("fem", dict(cx=14.3, cy=11.8, ri=3, ro=10), ["intensity"]),
    ("radial_fourier", dict(cx=14.3, cy=11.8, ri=2, ro=10, n_bins=2, max_order=6),
     ["complex", "dominant"]),
    ("crystallinity", dict(rad_in=2, rad_out=8, real_rad=3), ["intensity"]),
    ("logsum", {}, ["logsum"]),
    ("max", {}, ["intensity"]),
    ("min", {}, ["intensity"]),
    ("sum", {}, ["intensity"]),
]


# UDFs that take whole frames make the whole run take whole frames, so the
# tile UDFs also run alone: with tiles of a few rows their frames are split
GROUPS = [[u for u in INVARIANT if u[0] in ("radial_profile", "radial_fourier", "max", "min",
                                             "sum")], INVARIANT]


@pytest.mark.parametrize("group", [0, 1], ids=["tile_udfs", "all"])
@pytest.mark.parametrize("roi", ROIS, ids=["noroi", "rect", "file"])
def test_invariance(run_udfs, tmp_path, roi, group):
    data = random_frames("<u2", seed=21)
    path = save(tmp_path, "d.npy", data)
    sel, rargs = roi_args(roi, tmp_path)
    todo = GROUPS[group]
    udfs = ",".join(u for u, _, _ in todo)
    args = [a for u, kw, _ in todo for k, v in kw.items() for a in ("--param", f"{u}.{k}={v}")]
    runs = [run_udfs(udfs, path, *args, *rargs, *split_args(*s)) for s in SPLITS]
    for u, kw, bufs in todo:
        for b in bufs:
            key = f"{u}.{b}"
            first = runs[0][key]
            for s, r in zip(SPLITS[1:], runs[1:]):
                if u in ("radial_fourier", "logsum") and b != "dominant":
                    # float64 sums in another order: last bits
                    close(r[key].real, first.real, f"{key} {s}", rtol=1e-6,
                          scale=np.nanmax(np.abs(first)))
                else:
                    assert np.array_equal(r[key], first, equal_nan=True), f"{key} {s}"
    # and they are right: the split runs against the oracles
    frames = data.reshape((-1,) + SIG)
    kw = dict(INVARIANT[0][1])
    want, _, _ = radial_profile_oracle(data, **kw)
    close(runs[-1]["radial_profile.intensity"], masked_nav(want, sel), "radial_profile split")
    kw = dict(INVARIANT[2][1])
    want = radial_fourier_oracle(data, kw["cx"], kw["cy"], kw["ri"], kw["ro"], kw["n_bins"],
                                 kw["max_order"])
    close(runs[-1]["radial_fourier.complex"].real, masked_nav(want.real, sel),
          "radial_fourier split", scale=np.abs(want).max())
    if sel is not None:
        frames = frames[sel.reshape(-1)]
    assert np.array_equal(runs[-1]["max.intensity"], frames.max(axis=0))
    # the ROI: NAV results are NaN (0 for the integer dominant) outside it,
    # and the positions inside hold what a run over all frames gives
    if sel is not None:
        full = run_udfs(udfs, path, *args)
        nav_bufs = [(u, b) for u, _, bs in todo for b in bs
                    if u in ("radial_profile", "fem", "crystallinity", "radial_fourier")]
        for u, b in nav_bufs:
            got = runs[0][f"{u}.{b}"]
            if b == "dominant":
                assert (got[~sel] == 0).all()
            else:
                assert np.isnan(got[~sel]).all()
            assert np.array_equal(got[sel], full[f"{u}.{b}"][sel])


# ---------------------------------------------------------------------------
# bad input: one clear line, no crash


@pytest.mark.parametrize("udf,args,words", [
    ("radial_profile", dict(n_bins=3, width=2), ["n_bins or width"]),
    ("radial_profile", dict(ri=5, ro=2), ["ri", "ro"]),
    ("radial_profile", dict(n_bins=0), ["n_bins", "0"]),
    ("radial_profile", dict(cx="abc"), ["cx", "abc"]),
    ("fem", dict(ri=2), ["ro"]),
    ("radial_fourier", dict(max_order=-1), ["max_order"]),
    ("crystallinity", dict(rad_in=5, rad_out=1), ["rad_in", "rad_out"]),
    ("count", dict(threshold=5, output="x.txt"), [".toml"]),
    ("count", dict(threshold=5, xray=2, output="x.toml"), ["xray", "threshold"]),
    ("count_threshold", dict(n_samples=0), ["n_samples"]),
    ("pick", {"nav": "0,0", "real_rad": 3}, ["fft=true"]),
])
def test_bad_parameters(fails, tmp_path, udf, args, words):
    path = save(tmp_path, "d.npy", random_frames("<u2"))
    msg = fails("run", udf, path, *params(**args), "-o", f"{tmp_path}/o/")
    for w in words:
        assert w in msg, msg


def test_bad_exclude_file(fails, tmp_path):
    path = save(tmp_path, "d.npy", random_frames("<u2"))
    ex = save(tmp_path, "ex.npy", np.zeros((5, 5), bool))
    msg = fails("run", "radial_profile", path, *params(exclude=ex), "-o", f"{tmp_path}/o/")
    assert "ex.npy" in msg and "(5, 5)" in msg and "(24, 30)" in msg, msg


def test_needs_2d_signal(fails, tmp_path):
    path = save(tmp_path, "d.npy", np.zeros((4, 5, 6, 7), np.uint16))
    msg = fails("run", "fem", path, *params(ri=1, ro=2), "--set", "nav_shape=4,5,6",
                "--set", "sig_shape=7", "-o", f"{tmp_path}/o/")
    assert "2-D" in msg, msg


# ---------------------------------------------------------------------------
# the examples of docs/analyses.md (the part on rings, Fourier, statistics, counting) run as written


def test_doc_examples(tsr_bin, tsr_gen, tmp_path):
    import os
    import re
    import subprocess
    doc = pathlib.Path(__file__).resolve().parents[2] / "docs" / "analyses.md"
    text = doc.read_text()
    text = text[text.index("\n## Rings, Fourier transforms, frame statistics"):]
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) >= 9, "examples not found"
    script = "set -e\n" + "\n".join(blocks)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(tsr_bin), os.path.dirname(tsr_gen),
                                   "/usr/bin", env.get("PATH", "")])
    # the programs under test are called tessera and tsr-gen in the examples
    for name, prog in [("tessera", tsr_bin), ("tsr-gen", tsr_gen)]:
        assert os.path.basename(prog) == name, prog
    cp = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=300)
    assert cp.returncode == 0, f"stdout: {cp.stdout[-2000:]}\nstderr: {cp.stderr[-2000:]}"
    for f in ["profile/radial_profile.intensity.npy", "fem.npy", "crystallinity.npy",
              "logsum.npy", "fourier/radial_fourier.dominant.npy", "stats/max.intensity.npy",
              "pick/pick.fft.npy", "counted/counted.toml", "thresholds/count_threshold.xray.npy"]:
        assert (tmp_path / f).is_file(), f
    # the demo's grains: most positions are 4- or 6-fold
    dom = np.load(tmp_path / "fourier/radial_fourier.dominant.npy")[..., 0]
    assert np.isin(dom, [4, 6]).mean() > 0.8
    assert "events" in cp.stdout


# ---------------------------------------------------------------------------
# the examples of docs/analyses.md (the part on masks and com) run as written


def test_doc_examples_masks_and_com(tsr_bin, tmp_path):
    """The commands of the sections on `masks` and `com` (up to "Rings,
    Fourier transforms, ...") run as written from the repository root, with
    only their /tmp/ folder moved to the test's own; their results are those
    of numpy's oracles (test_masks_ext.py, test_com.py) on the same files."""
    import os
    import re
    import subprocess

    import h5py
    import test_com as tc
    import test_masks_ext as tm
    root = pathlib.Path(__file__).resolve().parents[2]
    text = (root / "docs" / "analyses.md").read_text()
    text = text[:text.index("\n## Rings, Fourier transforms, frame statistics")]
    blocks = re.findall(r"```sh\n(.*?)```", text, re.S)
    assert len(blocks) == 2, "examples not found"
    script = "set -e\n" + "\n".join(blocks)
    assert script.count("/tmp/") >= 10
    script = script.replace("/tmp/", f"{tmp_path}/")
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([os.path.dirname(tsr_bin), "/usr/bin", env.get("PATH", "")])
    assert os.path.basename(tsr_bin) == "tessera", tsr_bin
    cp = subprocess.run(["bash", "-c", script], cwd=root, env=env, capture_output=True,
                        text=True, timeout=300)
    assert cp.returncode == 0, f"stdout: {cp.stdout[-2000:]}\nstderr: {cp.stderr[-2000:]}"

    # masks: an anti-aliased disk, ring and polygon (area coverage)
    scan = np.load(tmp_path / "scan.npy")
    sig = scan.shape[2:]
    want = tm.apply(scan, [tm.disk(sig, 24.4, 23.7, 6, aa=True),
                           tm.ring(sig, 24.4, 23.7, 8, 20, aa=True),
                           tm.poly_coverage([(10, 10), (38, 12), (30, 40)], sig)])
    got = np.load(tmp_path / "masks" / "masks.intensity.npy")
    assert got.shape == scan.shape[:2] + (3,)
    for k in range(3):
        tm.assert_close(got[..., k], want[..., k])
    # the virtual bright field that follows the disk sees all of it everywhere
    frames = np.load(tmp_path / "descan.npy")
    shifts = np.load(tmp_path / "descan.shifts.npy")
    bf = np.load(tmp_path / "descan-bf.npy")
    assert bf.shape == frames.shape[:2] + (1,) and shifts.shape == frames.shape[:2] + (2,)
    bf = bf[..., 0]
    want = np.empty(bf.shape)
    for idx in np.ndindex(*bf.shape):
        dy, dx = shifts[idx]
        m = tm.disk(frames.shape[2:], 24.6 + dx, 23.2 + dy, 7.5)
        want[idx] = (frames[idx].astype(np.float64) * m).sum()
    tm.assert_close(bf, want)
    tm.assert_close(bf, frames.astype(np.float64).sum(axis=(2, 3)))

    # com --guess: the rotation and flip the data were made with
    truth = np.load(tmp_path / "dpc.truth.npz")
    cy, cx, rot, flip = tc.parse_guess(cp.stdout)
    assert flip and float(truth["flip_y"]) and tc.angle_diff(rot, 30.0) < 0.5, cp.stdout
    dpc = np.load(tmp_path / "dpc.npy")
    res = {f"com.{f.name[4:-4]}": np.load(f) for f in (tmp_path / "dpc").glob("com.*.npy")}
    tc.check_all(res, tc.com_oracle(dpc, cy, cx, rot=rot, flip=flip))
    # ... and the run with the parameters given, written to HDF5
    with h5py.File(tmp_path / "dpc.h5", "r") as f:
        res = {f"com.{k}": f["com"][k][()] for k in f["com"] if not k.endswith("_valid")}
    tc.check_all(res, tc.com_oracle(dpc, 19.7, 20.4, r=12, rot=30.0, flip=True, regression=1))
