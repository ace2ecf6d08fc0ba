"""Gatan DigitalMicrograph DM3/DM4 (format `dm`).

Oracles: HyperSpy 1.7.3 (`hs.load`, an independent DM reader) for every real
file in $TSR_TESTDATA/dm3 and dm4 — shape, dtype, every pixel and the axis
calibrations — and, for what the samples do not cover (4D-STEM in both
layouts, every data type, several images, big-endian files, malformed
files), files written by tests/gen/gen_dm.py from the published layout,
whose oracle is the numpy array written.  The generator itself is checked
against HyperSpy on the kinds of file HyperSpy understands.
"""

import json
import pathlib
import struct
import sys
import warnings

import numpy as np
import pytest

from oracle import check, expected

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_dm  # noqa: E402

TESTDATA = pathlib.Path(__import__("os").environ.get("TSR_TESTDATA", "/nonexistent"))


def dm_samples():
    return sorted(list((TESTDATA / "dm3").rglob("*.dm3")) +
                  list((TESTDATA / "dm4").rglob("*.dm4")))


SAMPLES = dm_samples()


def hs_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
        s = hs.load(str(path), lazy=False)
    assert not isinstance(s, list), f"{path}: HyperSpy found several images"
    return s


def info(run, path, *args):
    return json.loads(run("info", path, "--json", *args).stdout)


def read_all(run, tmp_path, path, nav, *args):
    """Every frame of the dataset, via `pick` of every flat nav index, in the
    dataset's dtype: shape nav + sig."""
    n = int(np.prod(nav))
    picks = [a for i in range(n) for a in ("--param", f"nav={i}")]
    out = tmp_path / f"pick{len(list(tmp_path.iterdir()))}.npy"
    run("run", "pick", path, *args, *picks, "-o", out, "--quiet")
    a = np.load(out)
    return a.reshape(tuple(nav) + a.shape[1:])


def axes_of(meta):
    cal = meta["calibration"]
    return cal["nav"] + cal["sig"]


def mentions(line, *words):
    low = line.lower()
    assert any(w.lower() in low for w in words), \
        f"the error should mention one of {words}: {line!r}"


# ---------------------------------------------------------------------------
# real files


def test_samples_present():
    """Every DM file SOURCES.md lists is tested."""
    import re
    listed = re.findall(r"^### `(dm[34]/[^`]+)`", (TESTDATA / "SOURCES.md").read_text(), re.M)
    assert listed
    assert sorted(str(p.relative_to(TESTDATA)) for p in SAMPLES) == sorted(listed)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: str(p.relative_to(TESTDATA)))
def test_sample_matches_hyperspy(run, tmp_path, path):
    s = hs_load(path)
    ref = s.data
    d = info(run, path)  # auto-detected
    assert d["format"] == "dm"
    nav, sig = tuple(d["nav_shape"]), tuple(d["sig_shape"])
    assert np.dtype(d["dtype"]) == ref.dtype
    assert int(np.prod(nav + sig)) == ref.size
    # HyperSpy drops axes of length 1; so do we for the comparison
    assert tuple(x for x in nav + sig if x != 1) == tuple(x for x in ref.shape if x != 1)
    got = read_all(run, tmp_path, path, nav)
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)
    # sums through the tile path (integer sums exact)
    res = {}
    out = tmp_path / "sums"
    run("run", "sum,sumsig", path, "-o", f"{out}/", "--quiet")
    for name in ("sum.intensity", "sumsig.intensity"):
        res[name] = np.load(out / f"{name}.npy")
    flat = got.reshape(nav + sig).astype(np.float64)
    np.testing.assert_allclose(res["sum.intensity"], flat.reshape((-1,) + sig).sum(axis=0),
                               rtol=1e-6)
    np.testing.assert_allclose(res["sumsig.intensity"],
                               flat.reshape(nav + (-1,)).sum(axis=-1), rtol=1e-6)
    # calibrations: scale, offset and units of every axis (and the names
    # HyperSpy gives, for these 1-3 dimensional data)
    axes = [a for a, n in zip(axes_of(d["meta"]), nav + sig) if n != 1]
    hs_axes = [a for a in s.axes_manager._axes]
    assert len(axes) == len(hs_axes)
    for mine, theirs in zip(axes, hs_axes):
        assert mine["scale"] == pytest.approx(theirs.scale, rel=1e-6)
        assert mine["offset"] == pytest.approx(theirs.offset, rel=1e-6, abs=1e-9)
        assert mine["units"] == (theirs.units or "")
        assert mine["name"] == theirs.name


def test_sample_metadata(run):
    """Facts read with HyperSpy's tag tree (original_metadata) of the STEM
    image sample."""
    path = TESTDATA / "dm3" / "test_STEM_image.dm3"
    om = hs_load(path).original_metadata.ImageList.TagGroup0.ImageTags
    m = info(run, path)["meta"]
    assert m["voltage_kV"] == pytest.approx(om.Microscope_Info.Voltage / 1000)
    assert m["camera_length_mm"] == pytest.approx(om.Microscope_Info.STEM_Camera_Length)
    assert m["dwell_time_us"] == pytest.approx(om.DigiScan.Sample_Time)
    assert m["illumination_mode"] == om.Microscope_Info.Illumination_Mode
    assert m["acquisition_date"] == om.DataBar.Acquisition_Date
    assert m["header"]["dm_version"] == 3
    assert m["header"]["image_index"] == 1  # image 0 is the (larger) thumbnail
    assert [im["thumbnail"] for im in m["images"]] == [True, False]


def test_spectrum_image_sample_layout(run):
    """The EELS spectrum image is stored energy-slowest (sig first)."""
    d = info(run, TESTDATA / "dm4" / "EELS_SI.dm4")
    assert d["nav_shape"] == [2, 2] and d["sig_shape"] == [2048]
    assert d["meta"]["header"]["layout"] == "sig_first"
    assert d["meta"]["signal_type"] == "EELS"


def test_probe_leaves_other_formats_alone(tsr_bin):
    """No file of another format in the test data is taken for DM."""
    import subprocess
    others = [p for p in sorted(TESTDATA.rglob("*")) if p.is_file() and
              p.suffix.lower() not in (".dm3", ".dm4") and p.suffix != ".md"]
    assert len(others) > 50
    for p in others:
        r = subprocess.run([tsr_bin, "info", str(p), "--json"], capture_output=True, text=True,
                           timeout=60)
        assert 0 <= r.returncode < 128, f"{p}: crashed"
        if r.returncode == 0:
            assert json.loads(r.stdout)["format"] != "dm", f"dm claims {p}"
        else:
            assert "DM" not in r.stderr, f"{p}: {r.stderr}"


# ---------------------------------------------------------------------------
# generated files


def test_generator_agrees_with_hyperspy(tmp_path):
    rng = np.random.default_rng(3)
    a = rng.integers(-500, 500, (3, 4, 5)).astype("i2")
    si = rng.random((2, 3, 40)).astype("f4")
    for v in (3, 4):
        p = tmp_path / f"s.dm{v}"
        gen_dm.write_dm(p, a, version=v, calibration=[(2.0, 1.0, "nm"), (0.5, 0, "µm"),
                                                      (1.5, -3.0, "A")])
        s = hs_load(p)
        np.testing.assert_array_equal(s.data, a)
        assert [(x.scale, x.offset, x.units) for x in s.axes_manager._axes] == \
            [(2.0, 1.0, "nm"), (0.5, 0.0, "µm"), (1.5, -3.0, "A")]
        p = tmp_path / f"si.dm{v}"
        gen_dm.write_dm(p, si, version=v, kind="si", layout="sig_first")
        np.testing.assert_array_equal(hs_load(p).data, si)


DTYPES = ["i1", "u1", "i2", "u2", "i4", "u4", "f4", "f8", "c8", "bool"]


def make(dtype, shape, seed=1):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        info_ = np.iinfo(dt)
        return rng.integers(info_.min, info_.max, shape, endpoint=True, dtype=dt)
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return rng.standard_normal(shape).astype(dt)


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_data_type(run, tmp_path, version, dtype):
    a = make(dtype, (3, 5, 7))
    p = tmp_path / f"t.dm{version}"
    gen_dm.write_dm(p, a, version=version)
    d = info(run, p)
    assert d["nav_shape"] == [3] and d["sig_shape"] == [5, 7]
    want = np.uint8 if dtype == "bool" else np.dtype(dtype)
    assert np.dtype(d["dtype"]) == want
    got = read_all(run, tmp_path, p, (3,))
    np.testing.assert_array_equal(got, a.astype(want))


SCAN, DET = (5, 6), (7, 9)


@pytest.fixture(scope="module")
def cube():
    return make("u2", SCAN + DET, seed=11)


@pytest.fixture(scope="module")
def files4d(tmp_path_factory, cube):
    root = tmp_path_factory.mktemp("dm4d")
    out = {}
    for v in (3, 4):
        # GMS's newer C-ordered 4D-STEM, tagged Data Order Swapped = 1
        out["c", v] = root / f"c.dm{v}"
        gen_dm.write_dm(out["c", v], cube, version=v, swapped_tag=1,
                        calibration=[(0.5, 0, "nm"), (0.25, 0, "nm"), (0.1, -0.35, "1/nm"),
                                     (0.2, -0.8, "1/nm")])
        # the signal-first layout (no tag)
        out["f", v] = root / f"f.dm{v}"
        gen_dm.write_dm(out["f", v], cube, version=v, layout="sig_first",
                        calibration=[(0.5, 0, "nm"), (0.25, 0, "nm"), (0.1, -0.35, "1/nm"),
                                     (0.2, -0.8, "1/nm")])
    return out


@pytest.mark.parametrize("version", [3, 4])
@pytest.mark.parametrize("layout", ["c", "f"])
def test_4d(run, run_udfs, tmp_path, files4d, cube, layout, version):
    p = files4d[layout, version]
    d = info(run, p)
    assert d["nav_shape"] == list(SCAN) and d["sig_shape"] == list(DET)
    assert d["meta"]["header"]["layout"] == ("c" if layout == "c" else "sig_first")
    cal = d["meta"]["calibration"]
    assert [(a["name"], a["scale"], a["units"]) for a in cal["nav"] + cal["sig"]] == [
        ("y", 0.5, "nm"), ("x", 0.25, "nm"), ("ky", pytest.approx(0.1), "1/nm"),
        ("kx", pytest.approx(0.2), "1/nm")]
    assert [a["offset"] for a in cal["sig"]] == [pytest.approx(-0.35), pytest.approx(-0.8)]
    np.testing.assert_array_equal(read_all(run, tmp_path, p, SCAN), cube)
    udfs = ["sum", "sumsig", "stddev"]
    for extra in ([], ["--tile-bytes", "200"], ["--io-backend", "mmap"],
                  ["--io-backend", "direct"], ["--io-backend", "direct", "--tile-bytes", "300"],
                  ["--io-backend", "pread", "--partitions", "3"], ["--threads", "1"]):
        res = run_udfs(",".join(udfs), p, *extra)
        check(res, expected(cube, SCAN, DET, udfs), f"{p} {extra}")


@pytest.mark.parametrize("layout", ["c", "f"])
def test_4d_roi_pick_offset_reshape(run, run_udfs, tmp_path, files4d, cube, layout):
    p = files4d[layout, 4]
    picks = [(0, 0), (4, 5), (2, 3)]
    pargs = [a for q in picks for a in ("--param", f"nav={q[0]},{q[1]}")]
    res = run_udfs("sum,sumsig,stddev", p, "--roi", "rect:1,1,3,4")
    check(res, expected(cube, SCAN, DET, ["sum", "sumsig", "stddev"], roi="rect:1,1,3,4"))
    res = run_udfs("pick", p, *pargs)
    check(res, expected(cube, SCAN, DET, ["pick"], picks=picks))
    # sync_offset shifts the frames; nav_shape takes fewer; sig_shape reshapes
    flat = cube.reshape((-1,) + DET)
    got = read_all(run, tmp_path, p, (28,), "--set", "sync_offset=2", "--set", "nav_shape=28")
    np.testing.assert_array_equal(got, flat[2:30])
    got = read_all(run, tmp_path, p, (4,), "--set", "sync_offset=-3", "--set", "nav_shape=4")
    np.testing.assert_array_equal(got[3:], flat[:1])
    assert not got[:3].any()
    got = read_all(run, tmp_path, p, (30,), "--set", "sig_shape=63", "--set", "nav_shape=30")
    np.testing.assert_array_equal(got, cube.reshape(30, 63))


def test_layout_parameters(run, tmp_path, cube):
    # a C-ordered 4-D file without the tag: read sig-first by default (as
    # Gatan's older files), correctly with force_c_order or layout=c
    p = tmp_path / "untagged.dm4"
    gen_dm.write_dm(p, cube)
    np.testing.assert_array_equal(
        read_all(run, tmp_path, p, SCAN, "--set", "force_c_order=true"), cube)
    np.testing.assert_array_equal(read_all(run, tmp_path, p, SCAN, "--set", "layout=c"), cube)
    d = info(run, p)
    assert d["meta"]["header"]["layout"] == "sig_first"
    # the default reading of those bytes: DM dims (x, y, kx, ky) = cube's
    # axes reversed; sig-first means stored (ky', kx', y', x') C-order
    stored = cube.reshape(-1)
    nav_d = tuple(d["nav_shape"])
    sig_d = tuple(d["sig_shape"])
    as_sig_first = stored.reshape(sig_d + nav_d)
    want = np.moveaxis(as_sig_first, (0, 1), (2, 3))
    np.testing.assert_array_equal(read_all(run, tmp_path, p, nav_d), want)
    # layout=sig_first overrides the tag of a C-ordered file the same way
    q = tmp_path / "tagged.dm4"
    gen_dm.write_dm(q, cube, swapped_tag=1)
    d = info(run, q, "--set", "layout=sig_first")
    assert d["meta"]["header"]["layout"] == "sig_first"
    np.testing.assert_array_equal(
        read_all(run, tmp_path, q, tuple(d["nav_shape"]), "--set", "layout=sig_first"), want)


def test_spectrum_image_and_sig_dims(run, tmp_path):
    si = make("f4", (3, 4, 50), seed=5)
    p = tmp_path / "si.dm4"
    gen_dm.write_dm(p, si, kind="si", layout="sig_first",
                    calibration=[(1.0, 0, "nm"), (1.0, 0, "nm"), (0.5, 100.0, "eV")])
    d = info(run, p)
    assert d["nav_shape"] == [3, 4] and d["sig_shape"] == [50]
    assert d["meta"]["calibration"]["sig"] == [
        {"name": "Energy loss", "scale": 0.5, "offset": 100.0, "units": "eV"}]
    np.testing.assert_array_equal(read_all(run, tmp_path, p, (3, 4)), si)
    # a 3-D stack read with one signal dimension
    a = make("u2", (3, 5, 7), seed=6)
    q = tmp_path / "st.dm4"
    gen_dm.write_dm(q, a)
    d = info(run, q, "--set", "sig_dims=1")
    assert d["nav_shape"] == [3, 5] and d["sig_shape"] == [7]
    np.testing.assert_array_equal(read_all(run, tmp_path, q, (3, 5), "--set", "sig_dims=1"), a)


def test_several_images(run, tmp_path):
    main = make("u2", (2, 4, 4), seed=7)
    big = make("f4", (16, 16), seed=8)
    small = make("i1", (3, 3), seed=9)
    p = tmp_path / "multi.dm4"
    gen_dm.write_dm(p, main, extra=[big, small])
    d = info(run, p)  # the largest: image 2 (256 pixels)
    assert d["meta"]["header"]["image_index"] == 2
    assert d["nav_shape"] == [1] and d["sig_shape"] == [16, 16]
    np.testing.assert_array_equal(read_all(run, tmp_path, p, (1,))[0], big)
    for idx, arr in ((1, main), (3, small)):
        d = info(run, p, "--set", f"dataset_index={idx}")
        nav = tuple(d["nav_shape"])
        got = read_all(run, tmp_path, p, nav, "--set", f"dataset_index={idx}")
        np.testing.assert_array_equal(got.reshape(arr.shape), arr)
    assert [im["shape"] for im in d["meta"]["images"]] == [[8, 8], [2, 4, 4], [16, 16], [3, 3]]


def test_big_endian_file(run, tmp_path):
    a = make("i4", (2, 3, 4), seed=10)
    p = tmp_path / "be.dm3"
    gen_dm.write_dm(p, a, version=3, little=False)
    d = info(run, p)
    assert d["typestr"] == ">i4"
    np.testing.assert_array_equal(read_all(run, tmp_path, p, (2,)), a)


def test_acquisition_metadata(run, tmp_path):
    p = tmp_path / "m.dm4"
    gen_dm.write_dm(p, make("u1", (2, 3, 3)))
    m = info(run, p)["meta"]
    assert m["voltage_kV"] == 300.0
    assert m["camera_length_mm"] == 91.0
    assert m["detector"] == "Test Camera"
    assert m["exposure_s"] == 0.001
    assert m["detector_pixel_size_um"] == [55.0, 55.0]
    assert m["microscope"] == "Test Microscope"
    assert m["title"] == "data"
    assert m["intensity"] == {"scale": 1.0, "offset": 0.0, "units": "counts"}


def test_generator_cli_big_file(tmp_path, run):
    p = tmp_path / "big.dm4"
    import subprocess
    gen = pathlib.Path(gen_dm.__file__)
    r = subprocess.run([sys.executable, str(gen), str(p), "--shape", "4,6,8,10", "--dtype", "u2",
                        "--layout", "sig_first"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    d = info(run, p)
    assert d["nav_shape"] == [4, 6] and d["sig_shape"] == [8, 10]
    assert d["meta"]["header"]["layout"] == "sig_first"


# ---------------------------------------------------------------------------
# bad input


def test_empty_file(fails, tmp_path):
    p = tmp_path / "empty.dm4"
    p.write_bytes(b"")
    line = fails("info", p, "--format", "dm")
    assert "empty.dm4" in line
    mentions(line, "not a dm file", "header", "bytes")


def test_wrong_magic(fails, tmp_path):
    p = tmp_path / "junk.dm3"
    p.write_bytes(bytes(range(256)) * 4)
    line = fails("info", p)  # the extension alone selects dm, which explains
    assert "junk.dm3" in line
    mentions(line, "version")


def test_bad_byte_order(fails, tmp_path):
    p = tmp_path / "bo.dm4"
    gen_dm.write_dm(p, make("u1", (2, 2)))
    b = bytearray(p.read_bytes())
    b[12:16] = struct.pack(">I", 7)
    p.write_bytes(bytes(b))
    line = fails("info", p, "--format", "dm")
    mentions(line, "byte order")
    assert "7" in line


@pytest.mark.parametrize("frac", [0.001, 0.01, 0.3, 0.6, 0.9, 0.999])
def test_truncated_samples(fails, tmp_path, frac):
    for src in (TESTDATA / "dm3" / "test_STEM_image.dm3", TESTDATA / "dm4" / "EELS_SI.dm4"):
        data = src.read_bytes()
        p = tmp_path / ("cut" + src.suffix)
        p.write_bytes(data[:max(1, int(len(data) * frac))])
        line = fails("run", "sum", p, "--format", "dm", "-o", f"{tmp_path}/o/")
        assert p.name in line, line
        mentions(line, "truncat", "past the end", "ends", "bytes", "not a dm")


def test_data_size_disagrees_with_dimensions(fails, tmp_path):
    g = gen_dm
    img = g.image_group("bad", np.zeros(50, "<u2"), 10, g.USHORT)
    # Dimensions say 10 x 10 but Data holds 50 elements
    imdata = dict(img.entries)["ImageData"]
    for i, (name, node) in enumerate(imdata.entries):
        if name == "Dimensions":
            imdata.entries[i] = (name, g.dims_group((10, 10)))
    p = tmp_path / "size.dm4"
    g.write_tree(p, g.Group([("ImageList", g.Group([("", img)]))]))
    line = fails("info", p)
    mentions(line, "Data holds 100 bytes")
    assert "200" in line and "size.dm4" in line


@pytest.mark.parametrize("dtype_code,label", [(23, "RGBA"), (8, "RGB"), (13, "complex128"),
                                              (27, "packed")])
def test_unsupported_data_types(fails, tmp_path, dtype_code, label):
    p = tmp_path / "u.dm4"
    el = gen_dm.DOUBLE if dtype_code in (13,) else gen_dm.ULONG
    arr = np.zeros((4, 4), "<u4" if el == gen_dm.ULONG else "<f8")
    if dtype_code == 13:
        arr = np.zeros((4, 4, 2), "<f8").reshape(4, 4, 2)
    g = gen_dm
    node = g.Array(el, arr.size, data=arr)
    img = g.image_group("u", (4, 4), dtype_code, el, data_node=node)
    g.write_tree(p, g.Group([("ImageList", g.Group([("", img)]))]))
    line = fails("info", p)
    mentions(line, "not supported")
    assert label.lower() in line.lower() and str(dtype_code) in line


def test_thumbnail_only_by_index(fails, tmp_path):
    p = tmp_path / "t.dm4"
    gen_dm.write_dm(p, make("u1", (3, 3)))
    line = fails("info", p, "--set", "dataset_index=0")
    mentions(line, "RGBA")
    line = fails("info", p, "--set", "dataset_index=2")
    mentions(line, "dataset_index")
    assert "2 image" in line


def test_no_image_list(fails, tmp_path):
    p = tmp_path / "noimg.dm3"
    gen_dm.write_tree(p, gen_dm.Group([("Other", gen_dm.Value(gen_dm.LONG, 1))]), version=3)
    line = fails("info", p)
    mentions(line, "ImageList")


def _sample_with_patch(tmp_path, find, repl, name):
    src = TESTDATA / "dm4" / "dmTest_float32_nonSquare_diffPixelSize.dm4"
    b = src.read_bytes()
    at = b.index(find)
    p = tmp_path / name
    p.write_bytes(b[:at] + repl + b[at + len(repl):])
    return p


def test_bad_tag_kind_and_delimiter(fails, tmp_path):
    # the first data tag's kind byte (21 before a name and "%%%%") -> 99
    p = _sample_with_patch(tmp_path, b"%%%%", b"&&&&", "delim.dm4")
    line = fails("info", p)
    mentions(line, "delimiter")
    src = (TESTDATA / "dm4" / "dmTest_float32_nonSquare_diffPixelSize.dm4").read_bytes()
    b = bytearray(src)
    # root group: sorted, open, ntags (8) at 16; first entry's kind at 26
    assert b[26] in (20, 21)
    b[26] = 99
    q = tmp_path / "kind.dm4"
    q.write_bytes(bytes(b))
    line = fails("info", q, "--format", "dm")
    mentions(line, "tag kind 99")


def test_deep_nesting(fails, tmp_path):
    g = gen_dm
    node = g.Group()
    for _ in range(100):
        node = g.Group([("g", node)])
    p = tmp_path / "deep.dm4"
    g.write_tree(p, g.Group([("ImageList", node)]))
    line = fails("info", p)
    mentions(line, "nested deeper")


def test_huge_counts(fails, tmp_path):
    g = gen_dm
    p = tmp_path / "huge.dm4"
    img = g.image_group("h", (4, 4), 10, g.USHORT,
                        data_node=g.Array(g.USHORT, 16, data=np.zeros(16, "<u2")))
    g.write_tree(p, g.Group([("ImageList", g.Group([("", img)]))]))
    b = bytearray(p.read_bytes())
    # the Data array's count (8 bytes before its 32 payload bytes) -> 2^62
    at = bytes(b).index(b"%%%%" + struct.pack(">QQQQ", 3, 20, g.USHORT, 16))
    b[at + 28:at + 36] = struct.pack(">Q", 1 << 62)
    p.write_bytes(bytes(b))
    line = fails("info", p)
    mentions(line, "too large", "past the end")


@pytest.mark.parametrize("setting,word", [
    ("layout=diagonal", "layout"), ("sig_dims=5", "sig_dims"), ("sig_dims=x", "sig_dims"),
    ("dataset_index=-1", "dataset_index"), ("force_c_order=maybe", "force_c_order"),
    ("nav_shape=9,9", "nav_shape"), ("sig_shape=3,3", "sig_shape"),
])
def test_bad_parameters(fails, tmp_path, setting, word):
    p = tmp_path / "p.dm4"
    gen_dm.write_dm(p, make("u1", (2, 3, 4)))
    line = fails("info", p, "--set", setting)
    mentions(line, word)


def test_contradicting_layout_parameters(fails, tmp_path):
    p = tmp_path / "p.dm4"
    gen_dm.write_dm(p, make("u1", (2, 3, 4, 5)))
    line = fails("info", p, "--set", "force_c_order=true", "--set", "layout=sig_first")
    mentions(line, "contradicts")
