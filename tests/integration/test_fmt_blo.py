"""NanoMegas ASTAR blockfiles (.blo): every sample file against HyperSpy
1.7.3, generated 8- and 16-bit files (both magic values) against the numpy
arrays written, and bad input.

Pixel values come back through `tessera run pick` of every frame (the
dataset's own dtype), shapes and metadata through `tessera info --json`.
"""

import datetime
import json
import pathlib
import struct
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_blo  # noqa: E402


def info(run, path, *args):
    return json.loads(run("info", path, "--json", *args).stdout)


def read_all(run_udfs, path, n, *args):
    """All n frames of a dataset, in its own dtype, via pick."""
    picks = [a for i in range(n) for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *args, *picks)["pick.intensity"]


@pytest.fixture(scope="module")
def hs():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs_
    import logging
    logging.getLogger("hyperspy").setLevel(logging.ERROR)
    return hs_


def hs_load(hs, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hs.load(str(path), lazy=False)


def samples(testdata):
    assert testdata is not None and (testdata / "blo").is_dir(), "TSR_TESTDATA/blo missing"
    files = sorted((testdata / "blo").glob("*.blo"))
    assert files, "no .blo sample files"
    return files


# Facts from SOURCES.md: (nav, sig), all |u1.
SOURCES = {"test1.blo": ((3, 2), (144, 144)), "test2.blo": ((2, 3), (5, 5))}


def test_samples_against_hyperspy(testdata, run, run_udfs, hs):
    for path in samples(testdata):
        d = info(run, path)
        assert d["format"] == "blo", path
        nav, sig = SOURCES[path.name]
        assert tuple(d["nav_shape"]) == nav and tuple(d["sig_shape"]) == sig, (path, d)
        assert d["typestr"] == "|u1"
        s = hs_load(hs, path)
        ref = np.asarray(s.data).reshape(nav + sig)
        got = read_all(run_udfs, path, nav[0] * nav[1])
        assert got.dtype == np.uint8
        np.testing.assert_array_equal(got.reshape(nav + sig), ref, err_msg=str(path))
        # calibrations: HyperSpy's axes are y, x, dy, dx in array order
        cal = d["meta"]["calibration"]
        axes = cal["nav"] + cal["sig"]
        hax = sorted(s.axes_manager._axes, key=lambda a: a.index_in_array)
        assert len(hax) == 4
        for mine, theirs in zip(axes, hax):
            assert mine["name"] == theirs.name
            assert mine["units"] == theirs.units
            assert mine["scale"] == pytest.approx(theirs.scale, rel=1e-12)
            assert mine["offset"] == pytest.approx(theirs.offset)
        h = d["meta"]["header"]
        orig = s.original_metadata.blockfile_header
        for k in ("NX", "NY", "DP_SZ", "SDP", "Beam_energy", "Camera_length",
                  "Data_offset_1", "Data_offset_2", "Scan_rotation"):
            assert h[k.lower()] == int(orig[k]), k
        assert h["magic"] == int(orig["MAGIC"])
        assert h["note"] == orig["Note"].strip("\x00")
        # acquisition time: HyperSpy's conversion of the serial date, in UTC
        from hyperspy.misc.date_time_tools import serial_date_to_datetime
        t = datetime.datetime.fromisoformat(d["meta"]["acquisition_time"].replace("Z", "+00:00"))
        ref_t = serial_date_to_datetime(orig["Acquisition_time"])
        assert abs((ref_t - t).total_seconds()) < 1e-3, (t, ref_t)


def test_detected_by_content_not_extension(testdata, run, tmp_path):
    src = samples(testdata)[-1]
    p = tmp_path / "renamed.dat"
    p.write_bytes(src.read_bytes())
    assert info(run, p)["format"] == "blo"


def rng_frames(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    hi = 256 if np.dtype(dtype).itemsize == 1 else 65536
    return rng.integers(0, hi, size=shape, dtype=dtype)


@pytest.mark.parametrize("dtype,magic,note", [
    ("u1", 0x0102, None),
    ("u1", 0x0103, None),  # 0x0103 with "Blo Bit Depth: 8 bits"
    ("u2", 0x0103, None),  # 0x0103 with "Blo Bit Depth: 16 bits"
    ("u2", 0x0103, ""),    # no bit depth in the Note: found from the record headers
    ("u2", 0x0102, ""),
])
def test_generated(tmp_path, run, run_udfs, dtype, magic, note):
    nav, sig = (3, 4), (7, 7)
    a = rng_frames(nav + sig, dtype, seed=magic + len(dtype))
    p = gen_blo.write_blo(tmp_path / "g.blo", a, magic=magic, note=note, sx=3.25, sy=1.75,
                          sdp=2500)
    d = info(run, p)
    assert d["format"] == "blo"
    assert tuple(d["nav_shape"]) == nav and tuple(d["sig_shape"]) == sig
    assert d["typestr"] == np.dtype(dtype).newbyteorder("<").str.replace("<u1", "|u1")
    assert d["meta"]["header"]["magic"] == magic
    assert d["meta"]["header"]["bit_depth"] == 8 * np.dtype(dtype).itemsize
    cal = d["meta"]["calibration"]
    assert [c["scale"] for c in cal["nav"]] == [1.75, 3.25]
    assert [c["scale"] for c in cal["sig"]] == [100 / 2500] * 2
    got = read_all(run_udfs, p, 12)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.reshape(nav + sig), a)
    # the whole-dataset sum, through the tiled path
    res = run_udfs("sum,sumsig", p)
    np.testing.assert_array_equal(res["sum.intensity"], a.sum(axis=(0, 1), dtype=np.float64))
    np.testing.assert_array_equal(res["sumsig.intensity"], a.sum(axis=(2, 3), dtype=np.float64))


def test_generator_agrees_with_hyperspy(tmp_path, hs):
    """Our 8-bit generator writes what HyperSpy reads (an independent check
    of the layout the generated tests rely on)."""
    a = rng_frames((2, 5, 6, 6), "u1", seed=9)
    p = gen_blo.write_blo(tmp_path / "g.blo", a, sx=2.0, sy=4.0, sdp=1000)
    s = hs_load(hs, p)
    np.testing.assert_array_equal(np.asarray(s.data), a)
    assert [ax.scale for ax in sorted(s.axes_manager._axes, key=lambda x: x.index_in_array)] \
        == [4.0, 2.0, 0.1, 0.1]


def test_cli_generator(tmp_path, run, run_udfs):
    p = tmp_path / "big.blo"
    assert gen_blo.main([str(p), "--shape", "4,3,8,8", "--dtype", "u2", "--seed", "3"]) == 0
    d = info(run, p)
    assert tuple(d["nav_shape"]) == (4, 3) and d["typestr"] == "<u2"
    # independent parse of the records with numpy
    raw = np.fromfile(p, np.uint8)
    off2 = struct.unpack_from("<I", raw, 12)[0]
    rec = raw[off2:].reshape(12, 6 + 128)
    assert (rec[:, 0] == 0xAA).all() and (rec[:, 1] == 0x55).all()
    ref = rec[:, 6:].copy().view("<u2").reshape(12, 8, 8)
    np.testing.assert_array_equal(read_all(run_udfs, p, 12), ref)


def test_nav_shape_and_sync_offset(tmp_path, run_udfs):
    a = rng_frames((2, 3, 5, 5), "u1", seed=4)
    p = gen_blo.write_blo(tmp_path / "g.blo", a)
    got = read_all(run_udfs, p, 6, "--set", "nav_shape=6", "--set", "sync_offset=2")
    flat = a.reshape(6, 5, 5)
    np.testing.assert_array_equal(got[:4], flat[2:])
    assert not got[4:].any()


# ---------------------------------------------------------------------------
# bad input


def good_bytes(tmp_path, dtype="u1", **kw):
    a = rng_frames((2, 3, 5, 5), dtype, seed=5)
    return bytearray(gen_blo.write_blo(tmp_path / "good.blo", a, **kw).read_bytes())


def put(b, fmt, off, v):
    struct.pack_into(fmt, b, off, v)
    return b


def bad_cases(tmp_path):
    g = good_bytes(tmp_path)
    off2 = struct.unpack_from("<I", g, 12)[0]
    rec = 6 + 25
    g16_as_8 = good_bytes(tmp_path, "u2", note="Blo Bit Depth: 8 bits\r\n")
    g12 = good_bytes(tmp_path, "u2", note="Blo Bit Depth: 12 bits\r\n")
    return {
        "empty": (b"", "header needs 240 bytes, the file has 0"),
        "short header": (bytes(g[:100]), "header needs 240 bytes, the file has 100"),
        "wrong ID": (b"IMGBLX" + bytes(g[6:]), "ID is 'IMGBLX', expected 'IMGBLO'"),
        "wrong magic": (put(bytearray(g), "<H", 6, 0x0201),
                        "MAGIC is 0x0201, expected 0x0102 or 0x0103"),
        "DP_SZ zero": (put(bytearray(g), "<H", 20, 0), "DP_SZ = 0"),
        "NX zero": (put(bytearray(g), "<H", 24, 0), "NX = 0"),
        "offset 1 beyond file": (put(bytearray(g), "<I", 8, 10 ** 8), "Data_offset_1 = 100000000"),
        "offset 2 beyond file": (put(bytearray(g), "<I", 12, 10 ** 8), "Data_offset_2 = 100000000"),
        "offset 2 misplaced": (put(bytearray(g), "<I", 12, off2 + 3),
                               "frame record 0 at Data_offset_2"),
        "truncated frames": (bytes(g[:off2 + 4 * rec + 10]),
                             "truncated blockfile: NY x NX = 2 x 3 frames"),
        "no frames": (bytes(g[:off2]), "no frame at Data_offset_2"),
        "DP_SZ disagrees": (put(bytearray(g), "<H", 20, 4), "frame record 1 at byte"),
        "16-bit records, 8-bit Note": (g16_as_8, "frame record 1 at byte"),
        "unsupported bit depth": (g12, "'Blo Bit Depth: 12 bits'"),
        "last record corrupt": (put(bytearray(g), "<B", off2 + 5 * rec, 0),
                                "frame record 5 at byte"),
        # 65535^2 frames of 65535^2 pixels: the bytes needed exceed 2^63
        "largest sizes": (put(put(put(bytearray(g), "<H", 20, 65535), "<H", 24, 65535), "<H", 26,
                              65535),
                          "NY x NX = 65535 x 65535 frames of 65535 x 65535 u8 (+6 header bytes "
                          "each) need 1.845e+19 bytes"),
    }


def test_bad_input(tmp_path, fails):
    for name, (data, want) in bad_cases(tmp_path).items():
        p = tmp_path / f"bad_{name.replace(' ', '_')}.blo"
        p.write_bytes(bytes(data))
        msg = fails("info", p, "--format", "blo")
        assert str(p) in msg and want in msg, (name, msg)
        # auto-detection reaches the same reader and the same message
        assert fails("info", p) == msg, name


def test_truncated_readable_with_nav_shape(tmp_path, run_udfs):
    a = rng_frames((2, 3, 5, 5), "u1", seed=5)
    g = gen_blo.write_blo(tmp_path / "good.blo", a).read_bytes()
    off2 = struct.unpack_from("<I", g, 12)[0]
    p = tmp_path / "cut.blo"
    p.write_bytes(g[:off2 + 4 * 31 + 7])
    got = read_all(run_udfs, p, 4, "--set", "nav_shape=4")
    np.testing.assert_array_equal(got, a.reshape(6, 5, 5)[:4])
