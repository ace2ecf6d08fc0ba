"""The `ser` format: FEI TIA series files (.ser) and their .emi.

Every .ser and .emi of $TSR_TESTDATA/ser opens with auto-detection; shapes,
dtypes, pixels and calibrations are checked against HyperSpy 1.7.3
(hs.load), against a parser of the published layout written here with numpy
(`parse_ser`), and against the facts of SOURCES.md.  Generated files
(tests/gen/gen_ser.py) cover what the samples do not: a 2-D scan of spectra
that is not square, 8-byte offsets, elements that are not equally spaced, and
a 2-D element series that stopped early.  Then bad input.
"""

import json
import pathlib
import re
import struct
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_ser  # noqa: E402

SER_DTYPES = {1: "<u1", 2: "<u2", 3: "<u4", 4: "<i1", 5: "<i2", 6: "<i4", 7: "<f4", 8: "<f8",
              9: "<c8"}


# ---------------------------------------------------------------------------
# An independent reader of the published layout


def parse_ser(path):
    """Header, dimension records and the valid elements (as stored) of a
    .ser, read with struct and numpy from the published layout."""
    b = pathlib.Path(path).read_bytes()
    order, sid, ver = struct.unpack_from("<HHH", b, 0)
    assert (order, sid) == (0x4949, 0x0197)
    dtid, tagid, total, valid = struct.unpack_from("<IIII", b, 6)
    if ver >= 0x220:
        oao, ndim = struct.unpack_from("<QI", b, 22)
        p, osz = 34, "<u8"
    else:
        oao, ndim = struct.unpack_from("<II", b, 22)
        p, osz = 30, "<u4"
    dims = []
    for _ in range(ndim):
        size, off, delta, el, dl = struct.unpack_from("<iddii", b, p)
        p += 28
        desc = b[p:p + dl].decode()
        p += dl
        (ul,) = struct.unpack_from("<i", b, p)
        p += 4
        units = b[p:p + ul].decode()
        p += ul
        dims.append(dict(size=size, offset=off, delta=delta, element=el, desc=desc, units=units))
    offs = np.frombuffer(b, osz, valid, oao).astype(np.int64)
    elems, cals = [], []
    for o in offs:
        if dtid == 0x4122:
            ox, dx, ex, oy, dy, ey, t, sx, sy = struct.unpack_from("<ddiddihii", b, o)
            a = np.frombuffer(b, SER_DTYPES[t], sx * sy, o + 50).reshape(sy, sx)
            cals.append(((ox, dx, ex), (oy, dy, ey)))
        else:
            co, cd, ce, t, n = struct.unpack_from("<ddihi", b, o)
            a = np.frombuffer(b, SER_DTYPES[t], n, o + 26)
            cals.append(((co, cd, ce),))
        elems.append(a)
    return dict(version=ver, data_type_id=dtid, tag_type_id=tagid, total=total, valid=valid,
                dims=dims, elements=np.stack(elems), cals=cals)


def shown(h):
    """The frames as a viewer shows them: 2-D elements top row first (TIA
    stores the bottom row first; ncempy and HyperSpy flip them)."""
    e = h["elements"]
    return e[:, ::-1, :] if h["data_type_id"] == 0x4122 else e


def picks_all(run_udfs, path, n, *args):
    """Every frame of a dataset through `pick` (flat indices), as stored type."""
    pargs = [a for i in range(n) for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *pargs, *args)["pick.intensity"]


def info(run, path, *args):
    return json.loads(run("info", path, *args, "--json").stdout)


# ---------------------------------------------------------------------------
# The real files


def sources_facts(testdata):
    """{file name: (shape, dtype)} from the 'data:' lines of SOURCES.md."""
    text = (testdata / "SOURCES.md").read_text()
    facts = {}
    for m in re.finditer(r"^### `ser/([^`]+)`\n((?:- .*\n)+)", text, re.M):
        d = re.search(r"data: shape \(([\d, ]*)\), dtype `([^`]+)`", m.group(2))
        if d:
            shape = tuple(int(s) for s in d.group(1).replace(" ", "").split(",") if s)
            facts[m.group(1)] = (shape, np.dtype(d.group(2)))
    return facts


def ser_files(testdata):
    files = sorted((testdata / "ser").glob("*.ser"))
    assert len(files) >= 9, files
    return files


def test_every_sample_matches_the_layout_and_sources(testdata, run, run_udfs):
    facts = sources_facts(testdata)
    for ser in ser_files(testdata):
        h = parse_ser(ser)
        inf = info(run, ser)
        assert inf["format"] == "ser", (ser, inf)
        assert inf["image_count"] == h["valid"], (ser, inf)
        # SOURCES.md: shape of the valid elements (nav () for one element)
        shape, dtype = facts[ser.name]
        assert inf["sig_shape"] == list(shape[-len(inf["sig_shape"]):]), (ser, inf, shape)
        assert np.prod(inf["nav_shape"]) == (np.prod(shape[:-len(inf["sig_shape"])])
                                             if len(shape) > len(inf["sig_shape"]) else 1)
        assert np.dtype(inf["typestr"]) == dtype, (ser, inf)
        got = picks_all(run_udfs, ser, h["valid"])
        np.testing.assert_array_equal(got, shown(h), err_msg=str(ser))


def test_sample_nav_shapes(testdata, run):
    # valid < total: only the elements present are frames
    for name, nav in [("03_Scanning Preview_1.ser", [5]), ("14.01.03 Scanning Acquire_1.ser", [1]),
                      ("16x16-spectrum_image-5x5x1024_1.ser", [5, 5]),
                      ("128x128x5-diffraction_preview_1.ser", [5])]:
        inf = info(run, testdata / "ser" / name)
        assert inf["nav_shape"] == nav, (name, inf)
    inf = info(run, testdata / "ser" / "03_Scanning Preview_1.ser")
    hdr = inf["meta"]["header"]
    assert (hdr["total_number_elements"], hdr["valid_number_elements"]) == (200, 5)


@pytest.fixture(scope="module")
def hs():
    import hyperspy.api as hs_
    return hs_


def hs_axes(sig):
    return [dict(name=a.name, scale=a.scale, offset=a.offset, units=a.units, size=a.size,
                 navigate=a.navigate) for a in sig.axes_manager._axes]


def test_emi_and_ser_against_hyperspy(testdata, run, run_udfs, hs):
    """Pixels and calibrations: HyperSpy 1.7.3 reads the .emi (for the
    units) and zero-pads series that stopped early; we keep the valid
    elements.  HyperSpy converts m to nm (scale only)."""
    emis = sorted((testdata / "ser").glob("*.emi"))
    assert len(emis) >= 8
    for emi in emis:
        s = hs.load(str(emi), lazy=False)
        s = s[0] if isinstance(s, list) else s
        ser = emi.with_name(emi.stem + "_1.ser")
        h = parse_ser(ser)
        for path in (emi, ser):
            inf = info(run, path)
            assert inf["format"] == "ser", (path, inf)
            n = inf["image_count"]
            got = picks_all(run_udfs, path, n)
            ref = s.data.reshape((-1,) + tuple(got.shape[1:]))[:n]
            np.testing.assert_array_equal(got, ref, err_msg=str(path))
        meta = info(run, emi)["meta"]
        assert meta["files"] == [str(emi), str(ser)]
        cal = meta["calibration"]
        # signal axes: HyperSpy's scale and units; offsets from the header
        sig_axes = [a for a in hs_axes(s) if not a["navigate"]]
        assert len(sig_axes) == len(cal["sig"]), (emi, sig_axes, cal)
        for ours, ref in zip(cal["sig"], sig_axes):
            factor = {"m": 1e9, "1/m": 1e-9, "eV": 1.0}[ours["units"]]
            ref_units = {"m": "nm", "1/m": "1 / nm", "eV": "eV"}[ours["units"]]
            assert ref["units"] == ref_units, (emi, ours, ref)
            assert ours["scale"] * factor == pytest.approx(ref["scale"], rel=1e-12), (emi, ours)
        ecal = h["cals"][0]
        for ours, (o, d, e) in zip(cal["sig"], ecal[::-1]):  # y then x
            assert ours["scale"] == d and ours["offset"] == pytest.approx(o - e * d, rel=1e-12)
        # navigation axes from the dimension records, slowest first
        if "nav" in cal:
            dims = h["dims"]
            kept = [d for d in dims if d["size"] > 1 or len(dims) == 1][::-1]
            assert len(cal["nav"]) == len(kept)
            for ours, d in zip(cal["nav"], kept):
                assert ours["scale"] == d["delta"], (emi, ours, d)
                assert ours["offset"] == pytest.approx(d["offset"] - d["element"] * d["delta"])
                assert ours["units"] == {"meters": "m"}.get(d["units"], d["units"])


def test_spectrum_image_nav_calibration_matches_positions(testdata, run):
    """The 5×5 spectrum image: our nav axes (value at index 0) put each
    element's recorded X/Y tag position half a step inside its pixel."""
    ser = testdata / "ser" / "16x16-spectrum_image-5x5x1024_1.ser"
    b = ser.read_bytes()
    h = parse_ser(ser)
    assert h["tag_type_id"] == 0x4142
    offs = np.frombuffer(b, "<u4", 2 * h["total"], struct.unpack_from("<I", b, 22)[0])
    tags = offs[h["total"]:]
    pos = np.array([struct.unpack_from("<dd", b, int(t) + 8) for t in tags])  # x, y
    cal = info(run, ser)["meta"]["calibration"]["nav"]
    (cy, cx) = cal
    assert (cy["name"], cx["name"]) == ("y", "x")
    iy, ix = np.divmod(np.arange(25), 5)
    np.testing.assert_allclose(pos[:, 0], cx["offset"] + (ix + 0.5) * cx["scale"], rtol=1e-6)
    np.testing.assert_allclose(pos[:, 1], cy["offset"] + (iy + 0.5) * cy["scale"], rtol=1e-6)


def test_emi_signal_parameter(testdata, run, run_udfs, fails):
    emi = testdata / "ser" / "16x16x5_STEM_BF_DF_preview.emi"
    for k in (1, 2):
        ser = emi.with_name(f"{emi.stem}_{k}.ser")
        got = picks_all(run_udfs, emi, 5, "--set", f"signal={k}")
        np.testing.assert_array_equal(got, shown(parse_ser(ser)))
        assert info(run, emi, "--set", f"signal={k}")["meta"]["files"][1] == str(ser)
    msg = fails("info", emi, "--set", "signal=3")
    assert "16x16x5_STEM_BF_DF_preview_3.ser" in msg and "signal 3" in msg, msg


def test_samples_sum_and_row_bands(testdata, run_udfs):
    """Small tiles cut frames into row bands: the flipped rows still land in
    place (sum over frames, and sumsig, against numpy)."""
    for name in ("128x128x5-diffraction_preview_1.ser", "64x64x5_TEM_preview_1.ser"):
        ser = testdata / "ser" / name
        ref = shown(parse_ser(ser)).astype(np.float64)
        for tb in ("0", "4096", "1000"):
            res = run_udfs("sum,sumsig", ser, "--tile-bytes", tb)
            np.testing.assert_allclose(res["sum.intensity"], ref.sum(axis=0), rtol=1e-6)
            np.testing.assert_allclose(res["sumsig.intensity"], ref.sum(axis=(1, 2)), rtol=1e-6)


def test_samples_converted_reads(testdata, run_udfs):
    """stddev takes float64 tiles: every frame goes through a type
    conversion, also those that lie at odd offsets in a batched read."""
    for name in ("16x16-spectrum_image-5x5x1024_1.ser", "128x128x5-diffraction_preview_1.ser"):
        ser = testdata / "ser" / name
        ref = shown(parse_ser(ser)).astype(np.float64)
        res = run_udfs("stddev", ser)
        np.testing.assert_allclose(res["stddev.mean"], ref.mean(axis=0), rtol=1e-9)
        np.testing.assert_allclose(res["stddev.var"], ref.var(axis=0), rtol=1e-7, atol=1e-9)


# ---------------------------------------------------------------------------
# Generated files


def test_generated_2d_elements_stopped_early(tmp_path, run, run_udfs):
    """A 2-D element series of 7 frames in a file that declares 12, with
    8-byte offsets: only the 7 are frames; rows come top first."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 60000, size=(7, 5, 6), dtype=np.uint16)
    path = gen_ser.write_ser(tmp_path / "early_1.ser", frames, total=12, version=0x220,
                             cal=[(-3e-9, 1e-10, 0), (2e-9, 5e-10, 4)])
    inf = info(run, path)
    assert inf["format"] == "ser"
    assert (inf["nav_shape"], inf["sig_shape"], inf["typestr"]) == ([7], [5, 6], "<u2")
    assert inf["meta"]["header"]["series_version"] == "0x0220"
    np.testing.assert_array_equal(picks_all(run_udfs, path, 7), frames[:, ::-1, :])
    y, x = inf["meta"]["calibration"]["sig"]
    assert (y["scale"], y["offset"]) == (5e-10, pytest.approx(2e-9 - 4 * 5e-10))
    assert (x["scale"], x["offset"]) == (1e-10, pytest.approx(-3e-9))
    res = run_udfs("sum,sumsig", path, "--set", "sync_offset=2")
    shifted = np.concatenate([frames[2:, ::-1, :], np.zeros((2, 5, 6))]).astype(np.float64)
    np.testing.assert_array_equal(res["sum.intensity"], shifted.sum(axis=0))
    np.testing.assert_array_equal(res["sumsig.intensity"], shifted.sum(axis=(1, 2)))


def test_generated_2d_scan_stopped_after_whole_rows(tmp_path, run, run_udfs):
    """A 4×3 scan (y, x) of 2-D elements with 6 of 12 present: two whole
    rows, so the scan keeps its width."""
    frames = np.arange(6 * 2 * 3, dtype="<f4").reshape(6, 2, 3)
    dims = [gen_ser.dim(3, 0, 1e-9, 0, "Position", "meters"),
            gen_ser.dim(4, 0, 2e-9, 0, "Position", "meters")]
    path = gen_ser.write_ser(tmp_path / "rows_1.ser", frames, total=12, dims=dims)
    inf = info(run, path)
    assert inf["nav_shape"] == [2, 3], inf
    np.testing.assert_array_equal(picks_all(run_udfs, path, 6), frames[:, ::-1, :])
    # 5 present: not whole rows, so one flat axis
    path = gen_ser.write_ser(tmp_path / "rows5_1.ser", frames[:5], total=12, dims=dims)
    assert info(run, path)["nav_shape"] == [5]


def test_generated_spectrum_scan_against_hyperspy(tmp_path, run, run_udfs, hs):
    """A 3×4 (y, x) scan of 1-D spectra with X/Y position tags, x fastest:
    Dimension 1 is x.  HyperSpy reads the same file the same way."""
    ny, nx, n = 3, 4, 16
    rng = np.random.default_rng(5)
    frames = rng.integers(-1000, 1000, size=(ny * nx, n), dtype=np.int32)
    dims = [gen_ser.dim(nx, -1e-9, 2e-10, 0, "Position", "meters"),
            gen_ser.dim(ny, 5e-9, -3e-10, 0, "Position", "meters")]
    xy = [(-1e-9 + (i % nx) * 2e-10, 5e-9 - (i // nx) * 3e-10) for i in range(ny * nx)]
    path = gen_ser.write_ser(tmp_path / "si_1.ser", frames, dims=dims, xy_tags=xy,
                             cal=[(-50.0, 0.5, 0)])
    inf = info(run, path)
    assert (inf["nav_shape"], inf["sig_shape"], inf["typestr"]) == ([ny, nx], [n], "<i4")
    got = picks_all(run_udfs, path, ny * nx)
    np.testing.assert_array_equal(got, frames)
    s = hs.load(str(path), lazy=False)
    assert s.data.shape == (ny, nx, n)
    np.testing.assert_array_equal(got.reshape(ny, nx, n), s.data)
    cal = inf["meta"]["calibration"]
    assert [a["name"] for a in cal["nav"]] == ["y", "x"]
    assert [a["scale"] for a in cal["nav"]] == [-3e-10, 2e-10]
    assert cal["sig"] == [dict(name="energy", scale=0.5, offset=-50.0, units="eV")]
    res = run_udfs("sumsig", path)
    np.testing.assert_array_equal(res["sumsig.intensity"], frames.sum(axis=1).reshape(ny, nx))


def test_generated_uneven_spacing(tmp_path, run, run_udfs):
    """Elements with padding of different lengths between them: each is
    located by its own offset."""
    frames = np.arange(5 * 4 * 3, dtype=np.int16).reshape(5, 4, 3) - 30
    path = gen_ser.write_ser(tmp_path / "gaps_1.ser", frames, gaps=[0, 13, 1, 100, 7])
    inf = info(run, path)
    assert inf["meta"]["header"]["equally_spaced"] is False
    np.testing.assert_array_equal(picks_all(run_udfs, path, 5), frames[:, ::-1, :])
    res = run_udfs("sum", path, "--tile-bytes", "16")
    np.testing.assert_array_equal(res["sum.intensity"], frames[:, ::-1, :].sum(axis=0))


def test_generator_cli(tmp_path, run, run_udfs):
    out = tmp_path / "cli_1.ser"
    assert gen_ser.main([str(out), "--shape", "3,2,8,6", "--dtype", "u2"]) == 0
    inf = info(run, out)
    assert (inf["nav_shape"], inf["sig_shape"]) == ([3, 2], [8, 6])
    ref = np.stack([gen_ser.pattern(i, (8, 6), "<u2") for i in range(6)])[:, ::-1, :]
    np.testing.assert_array_equal(picks_all(run_udfs, out, 6), ref)


# ---------------------------------------------------------------------------
# Bad input


@pytest.fixture
def good(tmp_path):
    frames = np.arange(3 * 4 * 5, dtype="<u2").reshape(3, 4, 5)
    path = gen_ser.write_ser(tmp_path / "good_1.ser", frames, total=4)
    return path, bytearray(path.read_bytes())


def patched(tmp_path, data, off, fmt, value, name="bad_1.ser"):
    b = bytearray(data)
    struct.pack_into(fmt, b, off, value)
    p = tmp_path / name
    p.write_bytes(bytes(b))
    return p


def test_bad_headers(tmp_path, good, fails):
    path, b = good
    oao = struct.unpack_from("<I", b, 22)[0]
    elem0 = struct.unpack_from("<I", b, oao)[0]
    cases = [
        (0, "<H", 0x4D4D, ["ByteOrder", "0x4d4d"]),
        (4, "<H", 0x0300, ["SeriesVersion", "0x0300"]),
        (6, "<I", 0x4121, ["DataTypeID", "0x4121"]),
        (14, "<I", 2, ["ValidNumberElements", "TotalNumberElements"]),  # total < valid
        (18, "<I", 0, ["ValidNumberElements is 0"]),
        (22, "<I", len(b) - 2, ["OffsetArrayOffset"]),
        (26, "<I", 9, ["NumberDimensions", "9"]),
        (30, "<i", 0, ["DimensionSize", "0"]),
        (30, "<i", 5, ["multiply to 5", "TotalNumberElements is 4"]),
        (30 + 24, "<i", 1 << 30, ["DescriptionLength"]),
        (oao + 4, "<I", len(b) + 10, ["offset of data element 1", "outside the file"]),
        (elem0 + 40, "<h", 10, ["DataType 10", "complex128"]),
        (elem0 + 40, "<h", 77, ["DataType 77"]),
        (elem0 + 42, "<i", 0, ["ArraySizeX 0"]),
        (elem0 + 42, "<i", 50000, ["data element 0", "past the end"]),
    ]
    for off, fmt, value, words in cases:
        p = patched(tmp_path, b, off, fmt, value)
        msg = fails("info", p, "--format", "ser")
        assert str(p) in msg, (off, msg)
        for w in words:
            assert w in msg, (off, value, w, msg)


def test_bad_series_id_and_empty(tmp_path, good, fails):
    path, b = good
    p = patched(tmp_path, b, 2, "<H", 0x0198)
    msg = fails("info", p, "--format", "ser")
    assert "SeriesID" in msg and "0x0198" in msg and str(p) in msg, msg
    empty = tmp_path / "empty_1.ser"
    empty.write_bytes(b"")
    msg = fails("info", empty, "--format", "ser")
    assert str(empty) in msg and "truncated" in msg, msg
    # nothing claims an empty file by its content
    msg = fails("info", empty)
    assert str(empty) in msg


def test_truncated_and_mismatched_elements(tmp_path, good, fails):
    path, b = good
    for cut in (len(b) - 9, len(b) - 50, 40):
        p = tmp_path / "cut_1.ser"
        p.write_bytes(bytes(b[:cut]))
        msg = fails("info", p)
        assert str(p) in msg and ("truncated" in msg or "past the end" in msg), (cut, msg)
    # the last element says another size than the first
    oao = struct.unpack_from("<I", b, 22)[0]
    last = struct.unpack_from("<I", b, oao + 8)[0]
    p = patched(tmp_path, b, last + 42, "<i", 4)
    msg = fails("info", p)
    assert "data element 2" in msg and "unlike element 0" in msg, msg


def test_emi_without_ser(tmp_path, testdata, fails):
    emi = tmp_path / "lonely.emi"
    emi.write_bytes((testdata / "ser" / "64x64_TEM_images_acquire.emi").read_bytes())
    msg = fails("info", emi)
    assert "lonely_1.ser" in msg and str(emi) in msg, msg
