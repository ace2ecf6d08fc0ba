"""The MRC reader against mrcfile (the CCP-EM reference reader, permissive mode) on every
MRC file of the shared test data and on generated files (tests/gen/gen_mrc.py, written
from the MRC2014 layout): shapes, dtypes, pixel values, extended headers, calibrations,
DE-Server sidecars, nav reshaping, and clean errors on malformed files."""

import json
import pathlib
import struct
import subprocess
import sys
import warnings

import mrcfile
import numpy as np
import pytest

from oracle import check, expected

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
from gen_mrc import fei_block, header_bytes, write_mrc  # noqa: E402

MRC_FILES = ["20241021_00405_movie.mrc", "Custom_movie.mrc", "EMD-3197.map", "HAADFscan.mrc",
             "ROI_Random_Scan_Sum.mrc", "ROI_Random_Scan_movie.mrc"]


def mrc_data(path):
    """mrcfile's array as (frames, ny, nx)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with mrcfile.open(path, permissive=True) as m:
            d = np.array(m.data)
            h = m.header.copy()
            ext = np.array(m.extended_header) if m.extended_header is not None else None
    return d.reshape((-1,) + d.shape[-2:]), h, ext


def info(run, path, *args):
    return json.loads(run("info", path, *args, "--json").stdout)


def frames(run_udfs, path, n, *args):
    """All n frames of a dataset through `pick` (flat nav indices)."""
    picks = [a for i in range(n) for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *args, *picks)["pick.intensity"]


def de_info(path):
    """key = value lines of a DE-Server _info.txt (the sidecar's published form)."""
    kv = {}
    for line in open(path, encoding="latin-1"):
        if "=" in line:
            k, v = line.split("=", 1)
            kv[k.strip()] = v.strip()
    return kv


@pytest.fixture(scope="module")
def mrcdir(testdata):
    assert testdata is not None, "TSR_TESTDATA is not set"
    d = testdata / "mrc"
    assert d.is_dir(), f"{d} missing"
    return d


# ---------------------------------------------------------------------------
# Real files


@pytest.mark.parametrize("name", MRC_FILES)
def test_real_file_pixels(mrcdir, run, run_udfs, name):
    path = mrcdir / name
    data, h, _ = mrc_data(path)
    meta = info(run, path)
    assert meta["format"] == "mrc", meta
    assert meta["dtype"] == data.dtype.name, (meta["dtype"], data.dtype)
    assert tuple(meta["sig_shape"]) == data.shape[1:], meta
    assert int(np.prod(meta["nav_shape"])) == data.shape[0], meta
    assert meta["image_count"] == int(h.nz)
    got = frames(run_udfs, path, data.shape[0])
    assert got.dtype == data.dtype and got.shape == data.shape
    np.testing.assert_array_equal(got, data)
    hd = meta["meta"]["header"]
    assert (hd["nx"], hd["ny"], hd["nz"], hd["mode"]) == (int(h.nx), int(h.ny), int(h.nz),
                                                          int(h.mode))
    assert hd["nsymbt"] == int(h.nsymbt)


def test_sources_facts(mrcdir, run):
    """Shapes stated in SOURCES.md: DE movie (32, 4, 8) as (4, 8, 4, 8) with its sidecar;
    HAADFscan (16, 16); ROI_Random_Scan_Sum (1, 29, 12); EMD-3197 (20, 20, 20) float32."""
    m = info(run, mrcdir / "20241021_00405_movie.mrc")
    assert (m["nav_shape"], m["sig_shape"], m["dtype"]) == ([4, 8], [4, 8], "uint16"), m
    m = info(run, mrcdir / "HAADFscan.mrc")
    assert (m["nav_shape"], m["sig_shape"], m["dtype"]) == ([1], [16, 16], "uint16"), m
    m = info(run, mrcdir / "ROI_Random_Scan_Sum.mrc")
    assert (m["nav_shape"], m["sig_shape"], m["dtype"]) == ([1], [29, 12], "float32"), m
    m = info(run, mrcdir / "EMD-3197.map")
    assert (m["nav_shape"], m["sig_shape"], m["dtype"]) == ([20], [20, 20], "float32"), m


def test_de_raster_nav_from_info(mrcdir, run, run_udfs):
    """A raster scan: nav = (Scan - Size Y, Scan - Size X) of the _info.txt; frame i of
    the movie is scan position (i // X, i % X)."""
    movie = mrcdir / "20241021_00405_movie.mrc"
    kv = de_info(mrcdir / "20241021_00405_info.txt")
    assert kv["Scan - Type"] == "Raster"
    ny, nx = int(kv["Scan - Size Y"]), int(kv["Scan - Size X"])
    data, _, _ = mrc_data(movie)
    m = info(run, movie)
    assert m["nav_shape"] == [ny, nx], m
    assert m["meta"]["detector"] == "Direct Electron " + kv["Camera Model"], m["meta"]
    cal = m["meta"]["calibration"]
    assert [a["scale"] for a in cal["sig"]] == [float(kv["Diffraction Pixel Size Y"]),
                                                float(kv["Diffraction Pixel Size X"])], cal
    assert [a["scale"] for a in cal["nav"]] == [
        float(kv["Specimen Pixel Size Y (nanometers)"]),
        float(kv["Specimen Pixel Size X (nanometers)"])], cal
    arr = data.reshape((ny, nx) + data.shape[1:])
    res = run_udfs("sum,sumsig,pick", movie, "--param", "nav=3,5", "--param", "nav=1,0")
    check(res, expected(arr, (ny, nx), data.shape[1:], ["sum", "sumsig", "pick"],
                        picks=[(3, 5), (1, 0)]))
    # the sidecar can be ignored, and nav_shape overrides it
    m = info(run, movie, "--set", "de_info=none")
    assert m["nav_shape"] == [data.shape[0]] and "de_info" not in m["meta"], m
    m = info(run, movie, "--set", "nav_shape=2,16")
    assert m["nav_shape"] == [2, 16], m


@pytest.mark.parametrize("stem", ["20241021_00405", "Custom", "ROI_Random_Scan"])
def test_de_companions_open_the_movie(mrcdir, run, run_udfs, stem):
    """The _info.txt (and _scan_coordinates.csv) of a DE-Server movie open the movie."""
    movie = mrcdir / f"{stem}_movie.mrc"
    base = info(run, movie)
    comps = [mrcdir / f"{stem}_info.txt"]
    if (mrcdir / f"{stem}_scan_coordinates.csv").exists():
        comps.append(mrcdir / f"{stem}_scan_coordinates.csv")
    data, _, _ = mrc_data(movie)
    for c in comps:
        m = info(run, c)
        assert m["format"] == "mrc", m
        assert (m["nav_shape"], m["sig_shape"], m["dtype"]) == (
            base["nav_shape"], base["sig_shape"], base["dtype"]), (c, m)
        res = run_udfs("sum", c)
        np.testing.assert_array_equal(res["sum.intensity"], data.sum(axis=0, dtype=np.int64))


def test_de_non_raster_stays_1d(mrcdir, run):
    """Random / XY-file scans keep acquisition order (nav = frames) and name the
    scan-coordinate file."""
    for stem in ("Custom", "ROI_Random_Scan"):
        kv = de_info(mrcdir / f"{stem}_info.txt")
        assert kv["Scan - Type"] != "Raster"
        m = info(run, mrcdir / f"{stem}_movie.mrc")
        assert m["nav_shape"] == [int(kv["Frame Count"])], m
        assert m["meta"]["de_info"]["scan_coordinates"].endswith(
            f"{stem}_scan_coordinates.csv"), m["meta"]


def test_fei_extended_header(mrcdir, run):
    """HAADFscan.mrc (Velox, FEI2): the detector and pixel size of the first section's
    block, as mrcfile decodes it."""
    _, h, ext = mrc_data(mrcdir / "HAADFscan.mrc")
    assert bytes(h.exttyp) == b"FEI2"
    e = ext[0]
    m = info(run, mrcdir / "HAADFscan.mrc")["meta"]
    assert m["detector"] == e["STEM Detector name"].decode(), m
    assert m["extended_header"]["microscope"] == e["Microscope type"].decode()
    assert m["extended_header"]["ht_volts"] == pytest.approx(float(e["HT"]))
    cal = m["calibration"]["sig"]
    assert cal[0]["units"] == "nm"
    assert cal[0]["scale"] == pytest.approx(float(e["Pixel size Y"]) * 1e9, rel=1e-9)
    assert cal[1]["scale"] == pytest.approx(float(e["Pixel size X"]) * 1e9, rel=1e-9)


def test_cella_calibration(mrcdir, run):
    """EMD-3197: voxel size = cella / mx in Å (mrcfile's voxel_size), reported in nm."""
    with mrcfile.open(mrcdir / "EMD-3197.map", permissive=True) as mf:
        vs = mf.voxel_size
    cal = info(run, mrcdir / "EMD-3197.map")["meta"]["calibration"]
    assert [a["scale"] for a in cal["sig"]] == pytest.approx([vs.y / 10, vs.x / 10])
    assert cal["nav"][0]["scale"] == pytest.approx(vs.z / 10)
    assert {a["units"] for a in cal["sig"] + cal["nav"]} == {"nm"}


def test_probe_does_not_steal(testdata, tsr_bin):
    """No file of another format is detected as MRC."""
    others = [p for p in sorted(testdata.rglob("*")) if p.is_file() and p.parent.name != "mrc"
              and p.name != "SOURCES.md"]
    assert others
    for p in others:
        r = subprocess.run([tsr_bin, "info", str(p), "--json"], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode == 0:
            assert json.loads(r.stdout)["format"] != "mrc", p
        else:
            assert 0 < r.returncode < 128 and "MRC" not in r.stderr, (p, r.stderr)


# ---------------------------------------------------------------------------
# Generated files


@pytest.mark.parametrize("dtype,order", [("i1", "<"), ("i2", "<"), ("i2", ">"), ("f4", "<"),
                                         ("f4", ">"), ("u2", "<"), ("u2", ">"), ("c8", "<")])
def test_generated_modes(tmp_path, run, run_udfs, dtype, order):
    rng = np.random.default_rng(7)
    shape = (6, 5, 9)
    if dtype == "c8":
        a = (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
    elif np.dtype(dtype).kind == "f":
        a = rng.normal(size=shape).astype(dtype)
    else:
        ii = np.iinfo(dtype)
        a = rng.integers(ii.min, ii.max, size=shape, endpoint=True).astype(dtype)
    path = tmp_path / "g.mrc"
    write_mrc(path, a, byteorder=order)
    data, _, _ = mrc_data(path)
    np.testing.assert_array_equal(data, a)  # the generator writes what mrcfile reads
    m = info(run, path)
    assert m["dtype"] == np.dtype(dtype).name and m["nav_shape"] == [6], m
    assert m["meta"]["header"]["byte_order"] == ("big" if order == ">" else "little")
    got = frames(run_udfs, path, 6)
    assert got.dtype == data.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, data)


def test_mode0_imod_unsigned(tmp_path, run, run_udfs):
    """Mode 0 is int8 (MRC2014) unless the IMOD stamp is present without the
    'signed bytes' flag (bit 0 of imodFlags): then uint8."""
    rng = np.random.default_rng(8)
    a = rng.integers(0, 256, size=(3, 4, 6)).astype(np.uint8)
    for flags, want in ((0, "uint8"), (1, "int8")):
        path = tmp_path / f"imod{flags}.mrc"
        write_mrc(path, a, imod_flags=flags)
        with open(path, "rb") as f:
            hdr = f.read(1024)
        stamp, fl = struct.unpack_from("<2i", hdr, 152)
        assert stamp == 1146047817 and fl == flags
        data, _, _ = mrc_data(path)  # mrcfile reads int8
        exp = data.view(np.uint8) if want == "uint8" else data
        assert info(run, path)["dtype"] == want
        np.testing.assert_array_equal(frames(run_udfs, path, 3), exp)


@pytest.mark.parametrize("exttyp,size", [(b"FEI1", 768), (b"FEI2", 888)])
def test_generated_fei(tmp_path, run, run_udfs, exttyp, size):
    rng = np.random.default_rng(9)
    a = rng.integers(0, 60000, size=(4, 6, 8)).astype(np.uint16)
    ext = fei_block(size=size, version=1 if exttyp == b"FEI1" else 2, pixel_size_m=3.25e-10,
                    stem_detector=b"DF4") * 4
    path = tmp_path / "fei.mrc"
    write_mrc(path, a, ext_header=ext, exttyp=exttyp)
    data, h, e = mrc_data(path)
    assert int(h.nsymbt) == len(ext) and e.dtype.names is not None
    m = info(run, path)
    assert m["meta"]["detector"] == e[0]["STEM Detector name"].decode()
    assert m["meta"]["calibration"]["sig"][0]["scale"] == pytest.approx(
        float(e[0]["Pixel size Y"]) * 1e9)
    np.testing.assert_array_equal(frames(run_udfs, path, 4), data)


def test_other_extended_header_skipped(tmp_path, run, run_udfs):
    a = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    path = tmp_path / "ext.mrc"
    write_mrc(path, a, ext_header=bytes(range(256)) * 3 + b"xyz", exttyp=b"SERI")
    data, h, _ = mrc_data(path)
    assert int(h.nsymbt) == 771
    m = info(run, path)
    assert m["meta"]["header"]["exttyp"] == "SERI" and "extended_header" not in m["meta"]
    np.testing.assert_array_equal(frames(run_udfs, path, 2), data)


def test_stack_nav_reshape_and_sync_offset(tmp_path, run_udfs):
    """A stack of 12 sections as a 3 x 4 scan, and with sync_offset."""
    rng = np.random.default_rng(10)
    a = rng.integers(0, 30000, size=(12, 5, 7)).astype(np.int16)
    path = tmp_path / "stack.mrc"
    write_mrc(path, a)
    data, _, _ = mrc_data(path)
    nav, sig = (3, 4), (5, 7)
    udfs = ["sum", "sumsig", "stddev", "pick"]
    picks = [(0, 0), (2, 3), (1, 2)]
    pargs = [x for p in picks for x in ("--param", f"nav={p[0]},{p[1]}")]
    res = run_udfs(",".join(udfs), path, "--set", "nav_shape=3,4", *pargs)
    check(res, expected(data.reshape(nav + sig), nav, sig, udfs, picks=picks))
    res = run_udfs("sumsig", path, "--set", "nav_shape=3,4", "--set", "sync_offset=2")
    shifted = np.zeros_like(data)
    shifted[:10] = data[2:]
    check(res, expected(shifted.reshape(nav + sig), nav, sig, ["sumsig"]))


def test_mrcfile_written(tmp_path, run, run_udfs):
    """A file written by mrcfile itself (not by our generator)."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=(5, 8, 6)).astype(np.float32)
    path = tmp_path / "mf.mrc"
    with mrcfile.new(path) as mf:
        mf.set_data(a)
        mf.voxel_size = (2.0, 3.0, 4.0)
    m = info(run, path)
    assert m["nav_shape"] == [5] and m["sig_shape"] == [8, 6]
    cal = m["meta"]["calibration"]
    assert [c["scale"] for c in cal["sig"]] == pytest.approx([0.3, 0.2])
    assert cal["nav"][0]["scale"] == pytest.approx(0.4)
    np.testing.assert_array_equal(frames(run_udfs, path, 5), a)


# ---------------------------------------------------------------------------
# Bad input


def good_file(path, shape=(2, 3, 4)):
    write_mrc(path, np.arange(np.prod(shape), dtype=np.uint16).reshape(shape))
    return bytearray(open(path, "rb").read())


def put(buf, off, fmt, *v):
    struct.pack_into(fmt, buf, off, *v)
    return buf


@pytest.mark.parametrize("case,words", [
    ("empty", ["truncated MRC header", "0 bytes", "1024"]),
    ("short_header", ["truncated MRC header", "500 bytes"]),
    ("no_map", ["'MAP '", "byte 208", "XXXX"]),
    ("nx_zero", ["nx", "> 0", "found 0"]),
    ("nz_negative", ["nz", "found -3"]),
    ("bad_mode", ["mode", "word 4", "77"]),
    ("mode12", ["mode 12", "float16", "not supported"]),
    ("mode3", ["mode 3", "not supported"]),
    ("truncated_data", ["truncated MRC file", "nz = 2", "48 bytes", "holds 40"]),
    ("nsymbt_past_end", ["nsymbt", "past the end"]),
    ("nsymbt_negative", ["nsymbt", ">= 0", "-8"]),
])
def test_bad_files(tmp_path, fails, case, words):
    path = tmp_path / f"{case}.mrc"
    b = good_file(path)
    if case == "empty":
        b = bytearray()
    elif case == "short_header":
        b = b[:500]
    elif case == "no_map":
        b[208:212] = b"XXXX"
    elif case == "nx_zero":
        put(b, 0, "<i", 0)
    elif case == "nz_negative":
        put(b, 8, "<i", -3)
    elif case == "bad_mode":
        put(b, 12, "<i", 77)
    elif case == "mode12":
        put(b, 12, "<i", 12)
    elif case == "mode3":
        put(b, 12, "<i", 3)
    elif case == "truncated_data":
        b = b[:1024 + 40]
    elif case == "nsymbt_past_end":
        put(b, 92, "<i", 100000)
    elif case == "nsymbt_negative":
        put(b, 92, "<i", -8)
    path.write_bytes(bytes(b))
    msg = fails("info", path)
    assert str(path) in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    # the same with the format named
    msg2 = fails("info", path, "--format", "mrc")
    assert str(path) in msg2


def test_bad_sidecars(tmp_path, fails, run):
    a = np.arange(6 * 2 * 3, dtype=np.uint16).reshape(6, 2, 3)
    write_mrc(tmp_path / "x_01_movie.mrc", a)
    # a sidecar without its movie
    (tmp_path / "y_01_info.txt").write_text("Server Software Version = 2.7\nCamera Model = X\n")
    msg = fails("info", tmp_path / "y_01_info.txt")
    assert "y_01_movie.mrc" in msg and "missing" in msg, msg
    # de_info naming a file that does not exist
    msg = fails("info", tmp_path / "x_01_movie.mrc", "--set", f"de_info={tmp_path}/nope.txt")
    assert "nope.txt" in msg and "does not exist" in msg, msg
    # a sidecar whose scan does not match the frames: 1-D, with a note
    (tmp_path / "x_01_info.txt").write_text(
        "Scan - Enable = Enable\nScan - Type = Raster\nScan - Size X = 4\nScan - Size Y = 4\n")
    m = info(run, tmp_path / "x_01_movie.mrc")
    assert m["nav_shape"] == [6] and "does not match" in m["meta"]["de_info"]["note"], m
    # and a matching one with repeats: (repeats, y, x)
    (tmp_path / "x_01_info.txt").write_text(
        "Scan - Enable = Enable\nScan - Type = Raster\nScan - Size X = 3\nScan - Size Y = 1\n"
        "Scan - Repeats = 2\n")
    assert info(run, tmp_path / "x_01_movie.mrc")["nav_shape"] == [2, 1, 3]
    # nav_shape larger than the file
    msg = fails("info", tmp_path / "x_01_movie.mrc", "--set", "nav_shape=4,4")
    assert "nav_shape" in msg and "16" in msg, msg


def test_header_bytes_layout():
    """The generator's header matches mrcfile's header dtype field by field."""
    h = np.frombuffer(header_bytes((3, 4, 5), 2, nsymbt=96, exttyp=b"FEI1",
                                   cella=(10.0, 8.0, 6.0)), dtype=mrcfile.dtypes.HEADER_DTYPE)[0]
    assert (h["nx"], h["ny"], h["nz"], h["mode"], h["nsymbt"]) == (5, 4, 3, 2, 96)
    assert bytes(h["exttyp"]) == b"FEI1" and bytes(h["map"]) == b"MAP "
    assert tuple(h["cella"]) == (10.0, 8.0, 6.0)
