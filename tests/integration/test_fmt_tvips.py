"""TVIPS recordings (.tvips): every sample file (single files and a 3-part
series, opened through any of its parts) against HyperSpy 1.7.3, generated
files (versions 1 and 2, 8 and 16 bit, series, scans that start some frames
into the recording) against the numpy arrays written, and bad input.

Pixel values come back through `tessera run pick` of every frame (the
dataset's own dtype), shapes and metadata through `tessera info --json`.
"""

import json
import pathlib
import struct
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_tvips  # noqa: E402


def info(run, path, *args):
    return json.loads(run("info", path, "--json", *args).stdout)


def read_all(run_udfs, path, n, *args):
    """All n frames of a dataset (flat nav order), in its own dtype, via pick."""
    picks = [a for i in range(n) for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *args, *picks)["pick.intensity"]


def stack_args(n):
    return ["--set", "sync_offset=0", "--set", f"nav_shape={n}"]


@pytest.fixture(scope="module")
def hs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs_
    import logging
    logging.getLogger("hyperspy").setLevel(logging.ERROR)
    return hs_


def hs_load(hs, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hs.load(str(path), lazy=False, **kw)


def rotators(paths, hb=60):
    """Rotator index (u32 at byte 48 of each image header) of every frame of
    a series, parsed with numpy from the layout."""
    out = []
    for k, p in enumerate(paths):
        raw = np.fromfile(p, np.uint8)
        h = struct.unpack_from("<13i", raw, 0) if k == 0 else h  # noqa: F821
        rec = h[12] + h[2] * h[3] * h[4] // 8
        body = raw[256 if k == 0 else 0:]
        out.append(body.reshape(-1, rec)[:, 48:52].copy().view("<u4").ravel())
    return np.concatenate(out)


# Facts from SOURCES.md: file -> (image count, sig shape), all <u2.
SOURCES = {
    "test_tvips_2233_000.tvips": (4, (3, 3)),
    "test_tvips_2345_000.tvips": (6, (4, 5)),
    "test_tvips_2345_split_000.tvips": (6, (4, 5)),
}
SPLIT = ["test_tvips_2345_split_000.tvips", "test_tvips_2345_split_001.tvips",
         "test_tvips_2345_split_002.tvips"]


def tvdir(testdata):
    assert testdata is not None and (testdata / "tvips").is_dir(), "TSR_TESTDATA/tvips missing"
    return testdata / "tvips"


def test_every_sample_file_opens_as_tvips(testdata, run):
    files = sorted(tvdir(testdata).glob("*.tvips"))
    assert len(files) == 5
    for p in files:
        d = info(run, p)
        assert d["format"] == "tvips", p
        first = p.name if p.name in SOURCES else SPLIT[0]
        n, sig = SOURCES[first]
        assert d["image_count"] == n and tuple(d["sig_shape"]) == sig, (p, d)
        assert d["typestr"] == "<u2"


@pytest.mark.parametrize("name", list(SOURCES))
def test_samples_stack_against_hyperspy(testdata, run, run_udfs, hs, name):
    path = tvdir(testdata) / name
    n, sig = SOURCES[name]
    s = hs_load(hs, path)
    ref = np.asarray(s.data)
    assert ref.shape == (n,) + sig
    got = read_all(run_udfs, path, n, *stack_args(n))
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, ref)
    # the sig calibration
    d = info(run, path)
    cal = d["meta"]["calibration"]["sig"]
    hax = sorted(s.axes_manager._axes, key=lambda a: a.index_in_array)[1:]
    for mine, theirs in zip(cal, hax):
        assert (mine["name"], mine["units"]) == (theirs.name, theirs.units)
        assert mine["scale"] == pytest.approx(theirs.scale)
        assert mine["offset"] == pytest.approx(theirs.offset)


def test_split_series_through_every_part(testdata, run, run_udfs, hs):
    ref = np.asarray(hs_load(hs, tvdir(testdata) / SPLIT[0]).data)
    for part in SPLIT:
        p = tvdir(testdata) / part
        d = info(run, p)
        assert d["meta"]["files"] == [str(tvdir(testdata) / s) for s in SPLIT]
        np.testing.assert_array_equal(read_all(run_udfs, p, 6, *stack_args(6)), ref)


def test_sample_auto_scan_against_hyperspy(testdata, run, run_udfs, hs):
    """2233: rotator indices 1..4, a 2x2 scan from frame 0 (HyperSpy's
    scan_shape='auto' gives the same)."""
    path = tvdir(testdata) / "test_tvips_2233_000.tvips"
    d = info(run, path)
    assert tuple(d["nav_shape"]) == (2, 2)
    assert d["meta"]["scan"]["method"] == "rotator_index"
    ref = np.asarray(hs_load(hs, path, scan_shape="auto").data)
    got = read_all(run_udfs, path, 4)
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)


@pytest.mark.parametrize("name", ["test_tvips_2345_000.tvips", "test_tvips_2345_split_000.tvips"])
def test_sample_scan_start_is_hyperspys(testdata, run, run_udfs, hs, name):
    """2345: rotator indices 0..5, so the scan starts at frame 1 (HyperSpy's
    rule); 5 positions are no square, so the scan is a line of 5."""
    from hyperspy.io_plugins.tvips import _find_auto_scan_start_stop
    path = tvdir(testdata) / name
    paths = [path] if "split" not in name else [tvdir(testdata) / s for s in SPLIT]
    rot = rotators(paths)
    start, stop = _find_auto_scan_start_stop(rot)
    d = info(run, path)
    assert d["meta"]["sync_offset"] == start == d["meta"]["scan"]["first_frame"]
    assert d["meta"]["scan"]["last_frame"] == stop
    assert tuple(d["nav_shape"]) == (int(rot[stop]),)
    stack = np.asarray(hs_load(hs, path).data)
    np.testing.assert_array_equal(read_all(run_udfs, path, 5), stack[start:start + 5])
    # HyperSpy's own test reads it as a (2, 3) scan from frame 0
    ref = np.asarray(hs_load(hs, path, scan_shape=(2, 3), scan_start_frame=0).data)
    got = read_all(run_udfs, path, 6, "--set", "nav_shape=2,3", "--set", "sync_offset=0")
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)


# ---------------------------------------------------------------------------
# generated


def frames(n, sig, dtype, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256 if dtype == "u1" else 65536, size=(n,) + sig, dtype=dtype)


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("dtype", ["u1", "u2"])
@pytest.mark.parametrize("parts", [None, [4, 3, 0, 2]])
def test_generated_versions_depths_series(tmp_path, run, run_udfs, version, dtype, parts):
    a = frames(9, (5, 6), dtype, seed=version * 10 + len(dtype))
    paths = gen_tvips.write_tvips(tmp_path / "g_000.tvips", a, version=version, hb=64,
                                  parts=parts)
    for p in paths:
        d = info(run, p)
        assert d["format"] == "tvips" and d["image_count"] == 9
        assert d["typestr"] == np.dtype(dtype).newbyteorder("<").str.replace("<u1", "|u1")
        assert d["meta"]["header"]["version"] == version
        assert d["meta"]["header"]["frameheaderbytes"] == (12 if version == 1 else 64)
        assert d["meta"]["scan"]["method"] == "none"
        assert tuple(d["nav_shape"]) == (9,) and d["meta"]["sync_offset"] == 0
        # the first image header's unix time (gen_tvips: t0 = 1700000000)
        assert d["meta"]["acquisition_time"] == "2023-11-14T22:13:20.000Z"
        got = read_all(run_udfs, p, 9)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, a)
    res = run_udfs("sum,sumsig", paths[0])
    np.testing.assert_array_equal(res["sum.intensity"], a.sum(axis=0, dtype=np.float64))
    np.testing.assert_array_equal(res["sumsig.intensity"], a.sum(axis=(1, 2), dtype=np.float64))


def test_generator_agrees_with_hyperspy(tmp_path, hs):
    """A version-2 series from our generator reads the same in HyperSpy."""
    a = frames(7, (4, 3), "u2", seed=3)
    rot, _ = gen_tvips.scan_indices(3, (2, 2), 0)
    paths = gen_tvips.write_tvips(tmp_path / "h_000.tvips", a, hb=76, parts=[3, 4],
                                  rotidx=rot, pixelsize=9, offsetx=2, offsety=5)
    s = hs_load(hs, paths[0])
    np.testing.assert_array_equal(np.asarray(s.data), a)
    assert [ax.scale for ax in s.axes_manager.signal_axes] == [9, 9]
    auto = np.asarray(hs_load(hs, paths[0], scan_shape="auto").data)
    np.testing.assert_array_equal(auto, a[3:].reshape(2, 2, 4, 3))


@pytest.mark.parametrize("method,hb", [("rotator_index", 60), ("scan_position", 76)])
def test_scan_that_starts_mid_recording(tmp_path, run, run_udfs, method, hb):
    """5 frames before a 3x4 scan and 2 after it, split over 3 parts: the
    scan start and shape come from the image headers."""
    pre, scan, post = 5, (3, 4), 2
    n = pre + 12 + post
    a = frames(n, (4, 4), "u2", seed=7)
    rot, pos = gen_tvips.scan_indices(pre, scan, post)
    if method == "rotator_index":
        scan = (12,)  # 12 positions, no square: a line scan of the right frames
    paths = gen_tvips.write_tvips(tmp_path / "m_000.tvips", a, hb=hb, parts=[4, 10, 5],
                                  rotidx=rot, scan_xy=pos if hb >= 76 else None)
    d = info(run, paths[1])
    assert d["meta"]["scan"]["method"] == method
    assert d["meta"]["sync_offset"] == pre
    assert tuple(d["nav_shape"]) == scan
    got = read_all(run_udfs, paths[1], 12)
    np.testing.assert_array_equal(got, a[pre:pre + 12])
    # a user's sync_offset wins; the detected shape stays
    got = read_all(run_udfs, paths[0], 12, "--set", "sync_offset=1")
    np.testing.assert_array_equal(got, a[1:13])
    # both given: no detection
    d = info(run, paths[0], "--set", "sync_offset=2", "--set", "nav_shape=17")
    assert d["meta"]["scan"]["method"] == "not_run" and d["meta"]["sync_offset"] == 2


def test_square_scan_by_rotator_with_hyperspy(tmp_path, run, run_udfs, hs):
    a = frames(3 + 16 + 2, (3, 3), "u1", seed=8)
    rot, _ = gen_tvips.scan_indices(3, (4, 4), 2)
    paths = gen_tvips.write_tvips(tmp_path / "q_000.tvips", a, hb=60, rotidx=rot)
    d = info(run, paths[0])
    assert tuple(d["nav_shape"]) == (4, 4) and d["meta"]["sync_offset"] == 3
    ref = np.asarray(hs_load(hs, paths[0], scan_shape="auto").data)
    np.testing.assert_array_equal(read_all(run_udfs, paths[0], 16).reshape(ref.shape), ref)


def test_irregular_rotator_is_not_reshaped(tmp_path, run):
    """A repeated scan position: the start is found, no shape is guessed."""
    rot = np.array([0, 0, 1, 2, 2, 3, 4, 0], np.uint32)
    a = frames(8, (2, 2), "u1", seed=9)
    p = gen_tvips.write_tvips(tmp_path / "r_000.tvips", a, hb=60, rotidx=rot)[0]
    d = info(run, p)
    sc = d["meta"]["scan"]
    assert sc["method"] == "rotator_index" and sc["regular"] is False
    assert d["meta"]["sync_offset"] == 2 and tuple(d["nav_shape"]) == (6,)


def test_cli_generator(tmp_path, run, run_udfs):
    out = tmp_path / "c_000.tvips"
    assert gen_tvips.main([str(out), "--shape", "20,4,5", "--parts", "3", "--pre", "2",
                           "--scan", "3,6", "--dtype", "u1"]) == 0
    paths = [gen_tvips.part_name(out, k) for k in range(3)]
    d = info(run, out)
    assert tuple(d["nav_shape"]) == (3, 6) and d["meta"]["sync_offset"] == 2
    assert d["typestr"] == "|u1" and d["image_count"] == 20
    # independent parse of the records with numpy
    recs = []
    for k, p in enumerate(paths):
        raw = np.fromfile(p, np.uint8)[256 if k == 0 else 0:]
        recs.append(raw.reshape(-1, 76 + 20))
    px = np.concatenate(recs)[:, 76:].reshape(20, 4, 5)
    np.testing.assert_array_equal(read_all(run_udfs, out, 18), px[2:20])


def test_trailing_partial_record_in_last_part(tmp_path, run, run_udfs):
    a = frames(5, (3, 3), "u2", seed=10)
    paths = gen_tvips.write_tvips(tmp_path / "t_000.tvips", a, hb=60, parts=[2, 3],
                                  trailing=b"\1" * 11)
    d = info(run, paths[0])
    assert d["image_count"] == 5 and d["meta"]["trailing_bytes"] == 11
    np.testing.assert_array_equal(read_all(run_udfs, paths[0], 5), a)


# ---------------------------------------------------------------------------
# bad input


def test_bad_input(tmp_path, fails):
    a = frames(4, (3, 3), "u2", seed=11)
    good = pathlib.Path(gen_tvips.write_tvips(tmp_path / "good.tvips", a, hb=60)[0]).read_bytes()
    rec = 60 + 18

    def put(fmt, off, v):
        b = bytearray(good)
        struct.pack_into(fmt, b, off, v)
        return bytes(b)

    cases = {
        "empty": (b"", "the series header needs 256 bytes, the file has 0"),
        "short header": (good[:200], "the series header needs 256 bytes, the file has 200"),
        "header size": (put("<i", 0, 512), "header size is 512, expected 256"),
        "version": (put("<i", 4, 3), "header version is 3, expected 1 or 2"),
        "bits": (put("<i", 16, 12), "bits per pixel is 12, expected 8 or 16"),
        "dimx zero": (put("<i", 8, 0), "dimx = 0"),
        "dimy huge": (put("<i", 12, 10 ** 6), "dimy = 1000000"),
        "image header bytes": (put("<i", 48, 4), "image header bytes is 4, expected 12"),
        "no whole record": (good[:256 + rec - 1], "no whole image record (78 bytes"),
    }
    for name, (data, want) in cases.items():
        p = tmp_path / f"bad_{name.replace(' ', '_')}.tvips"
        p.write_bytes(data)
        msg = fails("info", p, "--format", "tvips")
        assert str(p) in msg and want in msg, (name, msg)
        assert fails("info", p) == msg, name  # auto-detection reaches the same


def test_bad_series(tmp_path, fails):
    a = frames(6, (3, 3), "u2", seed=12)
    paths = gen_tvips.write_tvips(tmp_path / "s_000.tvips", a, hb=60, parts=[2, 2, 2])
    # a middle part that ends inside a record
    b = pathlib.Path(paths[1]).read_bytes()
    pathlib.Path(paths[1]).write_bytes(b[:-5])
    msg = fails("info", paths[0])
    assert paths[1] in msg and "not a multiple of the record size 78" in msg, msg
    # the first part (with the series header) missing
    pathlib.Path(paths[1]).write_bytes(b)
    pathlib.Path(paths[0]).unlink()
    msg = fails("info", paths[2])
    assert paths[2] in msg and f"{paths[0]}, which holds the series header, is missing" in msg
    # a sync_offset out of range is the common error
    a2 = frames(3, (2, 2), "u1", seed=13)
    p = gen_tvips.write_tvips(tmp_path / "o.tvips", a2, hb=60)[0]
    msg = fails("info", p, "--set", "sync_offset=3")
    assert "sync_offset 3 out of range" in msg
