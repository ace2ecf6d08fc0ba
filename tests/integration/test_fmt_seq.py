"""The Norpix SEQ reader against numpy parsing the published header layout (written
below, independently of the reader) on the shared sample and on generated files
(tests/gen/gen_seq.py): header fields, 8/16-bit frames, footers, both header sizes,
nav reshaping; the dataset corrections read from the files beside a sequence (dark/gain
MRC written by mrcfile, bad pixels from the DE XML) against oracle.correct; clean
errors on malformed files."""

import json
import pathlib
import struct
import subprocess
import sys

import mrcfile
import numpy as np
import pytest

from oracle import check, correct, expected

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
from gen_seq import write_seq  # noqa: E402

# The StreamPix header, as published (pims' norpix_reader, LiberTEM's seq.py):
# little-endian fields from byte 0.
SEQ_HEADER = np.dtype([
    ("magic", "<u4"), ("name", "V24"), ("version", "<i4"), ("header_size", "<i4"),
    ("description", "V512"), ("width", "<u4"), ("height", "<u4"), ("bit_depth", "<u4"),
    ("bit_depth_real", "<u4"), ("image_size_bytes", "<u4"), ("image_format", "<u4"),
    ("allocated_frames", "<u4"), ("origin", "<u4"), ("true_image_size", "<u4"),
    ("suggested_frame_rate", "<f8"), ("description_format", "<i4"),
    ("reference_frame", "<u4"), ("fixed_size", "<u4"), ("flags", "<u4"),
    ("bayer_pattern", "<i4"), ("time_offset_us", "<i4"), ("extended_header_size", "<i4"),
    ("compression_format", "<u4"),
])


def np_seq(path):
    """(header, frames (n, h, w), timestamps) of a .seq, by numpy from the layout."""
    raw = np.fromfile(path, np.uint8)
    h = raw[:SEQ_HEADER.itemsize].view(SEQ_HEADER)[0]
    assert h["magic"] == 0xFEED
    offset = 8192 if h["version"] >= 5 else 1024
    dt = np.dtype("<u%d" % (h["bit_depth"] // 8))
    stride = int(h["true_image_size"])
    fb = int(h["width"]) * int(h["height"]) * dt.itemsize
    n = (raw.size - offset - fb) // stride + 1
    recs = [raw[offset + i * stride: offset + i * stride + fb] for i in range(n)]
    frames = np.stack([r.view(dt) for r in recs]).reshape(n, int(h["height"]), int(h["width"]))
    times = []
    for i in (0, n - 1):
        at = offset + i * stride + fb
        if h["version"] >= 5 and stride - fb >= 8:
            s, ms, us = struct.unpack_from("<IHH", raw.tobytes(), at)
            times.append(s + ms / 1e3 + us / 1e6)
        elif stride - fb >= 6:
            s, ms = struct.unpack_from("<IH", raw.tobytes(), at)
            times.append(s + ms / 1e3)
    return h, frames, times


def info(run, path, *args):
    return json.loads(run("info", path, *args, "--json").stdout)


def frames(run_udfs, path, n, *args):
    picks = [a for i in range(n) for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *args, *picks)["pick.intensity"]


# ---------------------------------------------------------------------------
# The real sample


def test_sample(testdata, run, run_udfs):
    path = testdata / "seq" / "sample_norpix6.seq"
    h, data, times = np_seq(path)
    # SOURCES.md: shape (6, 32, 36), |u1, version 5, 8192-byte stride
    assert data.shape == (6, 32, 36) and data.dtype == np.uint8
    assert h["version"] == 5 and h["true_image_size"] == 8192
    m = info(run, path)
    assert m["format"] == "seq", m
    assert (m["nav_shape"], m["sig_shape"], m["dtype"]) == ([6], [32, 36], "uint8"), m
    hd = m["meta"]["header"]
    for k in ("version", "header_size", "width", "height", "bit_depth", "bit_depth_real",
              "image_size_bytes", "image_format", "allocated_frames", "true_image_size"):
        assert hd[k] == int(h[k]), (k, hd[k], h[k])
    assert hd["data_offset"] == 8192
    assert m["meta"]["frame_rate"] == pytest.approx(float(h["suggested_frame_rate"]))
    assert m["meta"]["first_frame_time"] == pytest.approx(times[0], abs=1e-6)
    assert m["meta"]["last_frame_time"] == pytest.approx(times[1], abs=1e-6)
    assert "corrections" not in m["meta"]
    got = frames(run_udfs, path, 6)
    np.testing.assert_array_equal(got, data)
    res = run_udfs("sum,sumsig", path, "--set", "nav_shape=2,3")
    check(res, expected(data.reshape(2, 3, 32, 36), (2, 3), (32, 36), ["sum", "sumsig"]))


def test_probe(testdata, tsr_bin):
    """The sample is detected as seq; no other test file is."""
    for p in sorted(testdata.rglob("*")):
        if not p.is_file() or p.name == "SOURCES.md":
            continue
        r = subprocess.run([tsr_bin, "info", str(p), "--json"], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if p.suffix == ".seq":
            assert r.returncode == 0 and json.loads(r.stdout)["format"] == "seq", (p, r.stderr)
        elif r.returncode == 0:
            assert json.loads(r.stdout)["format"] != "seq", p
        else:
            assert 0 < r.returncode < 128 and "SEQ" not in r.stderr, (p, r.stderr)


# ---------------------------------------------------------------------------
# Generated files


@pytest.mark.parametrize("version", [3, 5])
@pytest.mark.parametrize("dtype", ["u1", "u2"])
@pytest.mark.parametrize("footer", [0, 8, 1000])
def test_generated(tmp_path, run, run_udfs, version, dtype, footer):
    rng = np.random.default_rng(version * 100 + footer)
    a = rng.integers(0, np.iinfo(dtype).max, size=(7, 9, 13), endpoint=True).astype(dtype)
    path = tmp_path / "g.seq"
    write_seq(path, a, version=version, footer=footer)
    h, data, times = np_seq(path)
    np.testing.assert_array_equal(data, a)  # the generator writes the published layout
    m = info(run, path)
    assert (m["nav_shape"], m["sig_shape"], m["dtype"]) == (
        [7], [9, 13], np.dtype(dtype).name), m
    assert m["meta"]["header"]["data_offset"] == (8192 if version >= 5 else 1024)
    assert m["meta"]["header"]["footer_bytes"] == footer
    if times:
        assert m["meta"]["first_frame_time"] == pytest.approx(times[0], abs=1e-6)
        assert m["meta"]["last_frame_time"] == pytest.approx(times[1], abs=1e-6)
    else:
        assert "first_frame_time" not in m["meta"]
    np.testing.assert_array_equal(frames(run_udfs, path, 7), data)


def test_nav_shape(tmp_path, run, run_udfs):
    """Without nav_shape a SEQ is a 1-D series of all frames; nav_shape makes the scan."""
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4000, size=(12, 6, 5)).astype(np.uint16)
    path = tmp_path / "scan.seq"
    write_seq(path, a)
    assert info(run, path)["nav_shape"] == [12]
    nav, sig = (3, 4), (6, 5)
    udfs = ["sum", "sumsig", "stddev", "pick"]
    picks = [(0, 1), (2, 3)]
    pargs = [x for p in picks for x in ("--param", f"nav={p[0]},{p[1]}")]
    res = run_udfs(",".join(udfs), path, "--set", "nav_shape=3,4", *pargs)
    check(res, expected(a.reshape(nav + sig), nav, sig, udfs, picks=picks))
    res = run_udfs("sumsig", path, "--set", "nav_shape=2,5", "--set", "sync_offset=2")
    check(res, expected(a[2:12].reshape(2, 5, 6, 5), (2, 5), sig, ["sumsig"]))


def test_partial_last_frame(tmp_path, run, run_udfs):
    """A file cut inside the last footer still holds that frame's pixels; one cut
    inside the pixels does not."""
    a = np.arange(4 * 3 * 5, dtype=np.uint16).reshape(4, 3, 5)
    path = tmp_path / "cut.seq"
    write_seq(path, a, footer=100)
    full = path.read_bytes()
    path.write_bytes(full[:-50])
    assert info(run, path)["image_count"] == 4
    np.testing.assert_array_equal(frames(run_udfs, path, 4), a)
    path.write_bytes(full[:-(100 + 10)])
    assert info(run, path)["image_count"] == 3


# ---------------------------------------------------------------------------
# Corrections from the files beside the sequence

NAV, SIG = (4, 5), (12, 16)

XML = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Configuration>
  <PixelSize></PixelSize><DiffPixelSize></DiffPixelSize>
  <BadPixels>
    <BadPixelMap Rows="64" Columns="64">
      <Defect Rows="21-22"/>
      <Defect Column="40"/>
      <Defect Row="13" Column="37"/>
    </BadPixelMap>
    <BadPixelMap Binning="2" Rows="32" Columns="32">
      <Defect Row="10"/>
      <Defect Columns="12-13"/>
      <Defect Row="3" Column="20"/>
      <Defect Row='14' Column='25'/>
      <Defect Row="31" Column="0"/>
    </BadPixelMap>
  </BadPixels>
</Configuration>
"""


def metadata_bytes(offset_x, offset_y, binning, unbinned=(64, 64)):
    """DE's .metadata: 11 int32 from byte 282 (size, version, unbinned x, y, offset x,
    y, binning, bit mode, frame rate, rotation, flip) and a bool."""
    b = bytearray(400)
    struct.pack_into("<11i?", b, 282, 400, 1, unbinned[0], unbinned[1], offset_x, offset_y,
                     binning, 16, 100, 0, 0, False)
    return bytes(b)


def expected_mask(binning, oy, ox):
    """The excluded pixels of the map for `binning` in the window of the frames."""
    if binning == 1:
        full = np.zeros((64, 64), bool)
        full[21:23] = True
        full[:, 40] = True
        full[13, 37] = True
    else:
        full = np.zeros((32, 32), bool)
        full[10] = True
        full[:, 12:14] = True
        full[3, 20] = True
        full[14, 25] = True
        full[31, 0] = True
    return full[oy:oy + SIG[0], ox:ox + SIG[1]]


def write_mrc_image(path, a):
    with mrcfile.new(path, overwrite=True) as mf:
        mf.set_data(np.asarray(a, np.float32))


@pytest.fixture
def corrected_seq(tmp_path):
    rng = np.random.default_rng(21)
    a = rng.integers(100, 4000, size=(NAV[0] * NAV[1],) + SIG).astype(np.uint16)
    path = tmp_path / "acq.seq"
    write_seq(path, a)
    dark = (rng.random(SIG) * 90).astype(np.float32)
    gain = (0.5 + rng.random(SIG)).astype(np.float32)
    write_mrc_image(tmp_path / "acq.seq.dark.mrc", dark)
    write_mrc_image(tmp_path / "acq.seq.gain.mrc", gain)
    (tmp_path / "acq.seq.Config.Metadata.xml").write_text(XML)
    # binned 2x: offsets 8, 16 unbinned = rows [4, 16), columns [8, 24) of the 32x32 map
    (tmp_path / "acq.seq.metadata").write_bytes(metadata_bytes(16, 8, 2))
    return path, a.reshape(NAV + SIG), dark, gain


def test_dataset_corrections(corrected_seq, run, run_udfs):
    path, a, dark, gain = corrected_seq
    ex = expected_mask(2, 4, 8)
    assert ex.shape == SIG and 0 < ex.sum() < ex.size
    m = info(run, path, "--set", "nav_shape=4,5")["meta"]
    c = m["corrections"]
    assert c["dark"].endswith("acq.seq.dark.mrc") and c["gain"].endswith("acq.seq.gain.mrc")
    assert c["excluded_pixels"] == int(ex.sum()) and c["hardware_binning"] == 2, c
    udfs = ["sum", "sumsig", "stddev"]
    res = run_udfs(",".join(udfs), path, "--set", "nav_shape=4,5")
    corr = correct(a, dark=dark, gain=gain, exclude=ex)
    check(res, expected(a, NAV, SIG, udfs, corrected=corr), "dataset corrections")
    # the same with threads, partitions and a ROI
    res = run_udfs(",".join(udfs), path, "--set", "nav_shape=4,5", "--threads", 3,
                   "--partitions", 4, "--roi", "rect:1,1,2,3")
    check(res, expected(a, NAV, SIG, udfs, corrected=corr, roi="rect:1,1,2,3"))


def test_dataset_corrections_disabled_or_replaced(corrected_seq, run_udfs, tmp_path):
    path, a, dark, gain = corrected_seq
    res = run_udfs("sum", path, "--set", "nav_shape=4,5", "--no-dataset-corrections")
    check(res, expected(a, NAV, SIG, ["sum"]), "--no-dataset-corrections")
    res = run_udfs("sum", path, "--set", "nav_shape=4,5", "--set", "corrections=false")
    check(res, expected(a, NAV, SIG, ["sum"]), "corrections=false")
    # a correction given by the caller replaces the dataset's as a whole
    d2 = np.full(SIG, 7.0, np.float32)
    np.save(tmp_path / "d2.npy", d2)
    res = run_udfs("sum", path, "--set", "nav_shape=4,5", "--dark", tmp_path / "d2.npy")
    check(res, expected(a, NAV, SIG, ["sum"], corrected=correct(a, dark=d2)), "--dark")


def test_bad_pixels_unbinned_and_without_metadata(tmp_path, run, run_udfs):
    rng = np.random.default_rng(22)
    a = rng.integers(0, 255, size=(6,) + SIG).astype(np.uint8)
    path = tmp_path / "b.seq"
    write_seq(path, a, version=3, footer=6)
    (tmp_path / "b.seq.Config.Metadata.xml").write_text(XML)
    # unbinned, offset (x 30, y 10): rows [10, 22), columns [30, 46) of the 64x64 map
    (tmp_path / "b.seq.metadata").write_bytes(metadata_bytes(30, 10, 1))
    ex = expected_mask(1, 10, 30)
    res = run_udfs("sum", path)
    check(res, expected(a, (6,), SIG, ["sum"], corrected=correct(a, exclude=ex)))
    # without the .metadata no map has the frame size: bad pixels are not applied
    (tmp_path / "b.seq.metadata").unlink()
    m = info(run, path)["meta"]["corrections"]
    assert m["excluded_pixels"] == 0 and "not applied" in m["note"], m
    res = run_udfs("sum", path)
    check(res, expected(a, (6,), SIG, ["sum"]))
    # ... but a map of exactly the frame size applies at offset 0
    (tmp_path / "b.seq.Config.Metadata.xml").write_text(
        f'<BadPixels><BadPixelMap Rows="{SIG[0]}" Columns="{SIG[1]}">'
        '<Defect Row="2" Column="3"/><Defect Columns="7-8"/></BadPixelMap></BadPixels>')
    ex = np.zeros(SIG, bool)
    ex[2, 3] = True
    ex[:, 7:9] = True
    res = run_udfs("sum", path)
    check(res, expected(a, (6,), SIG, ["sum"], corrected=correct(a, exclude=ex)))


@pytest.mark.parametrize("name", ["acq.seq.Config.Metadata.xml", "acq.seq.metadata"])
def test_companions_open_the_sequence(corrected_seq, run, name):
    path = corrected_seq[0]
    base = info(run, path)
    m = info(run, path.parent / name)
    assert m["format"] == "seq" and m["nav_shape"] == base["nav_shape"], m
    assert m["meta"]["corrections"] == base["meta"]["corrections"]


# ---------------------------------------------------------------------------
# Bad input


def good(path, **kw):
    write_seq(path, np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5), **kw)
    return bytearray(path.read_bytes())


@pytest.mark.parametrize("case,words", [
    ("empty", ["truncated SEQ header", "0 bytes", "1024"]),
    ("short", ["truncated SEQ header", "600 bytes"]),
    ("magic", ["not a Norpix SEQ", "0x0000beef", "0x0000feed"]),
    ("zero_width", ["width", "byte 548", "0"]),
    ("bit_depth", ["bit depth", "byte 556", "12"]),
    ("image_format", ["image format", "byte 568", "200", "100"]),
    ("compressed", ["compressed", "byte 620", "1"]),
    ("image_size", ["image size", "byte 564", "41", "40"]),
    ("stride", ["true image size", "byte 580", "30", "40"]),
    ("no_frame", ["no complete frame", "8192"]),
])
def test_bad_files(tmp_path, fails, case, words):
    path = tmp_path / f"{case}.seq"
    b = good(path)
    if case == "empty":
        b = bytearray()
    elif case == "short":
        b = b[:600]
    elif case == "magic":
        struct.pack_into("<I", b, 0, 0xBEEF)
    elif case == "zero_width":
        struct.pack_into("<I", b, 548, 0)
    elif case == "bit_depth":
        struct.pack_into("<I", b, 556, 12)
    elif case == "image_format":
        struct.pack_into("<I", b, 568, 200)
    elif case == "compressed":
        struct.pack_into("<I", b, 620, 1)
    elif case == "image_size":
        struct.pack_into("<I", b, 564, 41)
    elif case == "stride":
        struct.pack_into("<I", b, 580, 30)
    elif case == "no_frame":
        b = b[:8192 + 20]
    path.write_bytes(bytes(b))
    for args in ((), ("--format", "seq")):
        msg = fails("info", path, *args)
        assert str(path) in msg, msg
        for w in words:
            assert w in msg, (w, msg)


@pytest.mark.parametrize("name", ["lone.seq.Config.Metadata.xml", "lone.seq.metadata"])
def test_companion_without_its_sequence(tmp_path, fails, name):
    p = tmp_path / name
    p.write_bytes(b"<BadPixels></BadPixels>" if name.endswith(".xml") else b"\0" * 400)
    for args in ((), ("--format", "seq")):
        msg = fails("info", p, *args)
        assert str(p) in msg and str(tmp_path / "lone.seq") in msg and "missing" in msg, msg


def test_nav_shape_too_large(tmp_path, fails):
    path = tmp_path / "n.seq"
    good(path)
    msg = fails("info", path, "--set", "nav_shape=2,2")
    assert "nav_shape" in msg and "holds 3" in msg, msg


@pytest.mark.parametrize("case,words", [
    ("dark_shape", ["acq.seq.dark.mrc", "dark reference is 3 x 4", "12 x 16"]),
    ("gain_not_mrc", ["gain reference", "acq.seq.gain.mrc", "MAP"]),
    ("xml_unquoted", ["acq.seq.Config.Metadata.xml", "unquoted attribute"]),
    ("xml_defect_range", ["acq.seq.Config.Metadata.xml", "Row=\"40\"", "32 rows"]),
    ("xml_window", ["acq.seq.Config.Metadata.xml", "do not fit"]),
    ("xml_no_binning", ["Binning=\"2\""]),
    ("metadata_short", ["acq.seq.metadata", "too short"]),
])
def test_bad_companions(corrected_seq, fails, run, case, words):
    path = corrected_seq[0]
    d = path.parent
    if case == "dark_shape":
        write_mrc_image(d / "acq.seq.dark.mrc", np.zeros((3, 4)))
    elif case == "gain_not_mrc":
        (d / "acq.seq.gain.mrc").write_bytes(b"\0" * 2000)
    elif case == "xml_unquoted":
        (d / "acq.seq.Config.Metadata.xml").write_text(
            '<BadPixels><BadPixelMap Binning="2" Rows=32 Columns="32"></BadPixelMap></BadPixels>')
    elif case == "xml_defect_range":
        (d / "acq.seq.Config.Metadata.xml").write_text(XML.replace('<Defect Row="10"/>',
                                                                   '<Defect Row="40"/>'))
    elif case == "xml_window":
        (d / "acq.seq.metadata").write_bytes(metadata_bytes(60, 8, 2))
    elif case == "xml_no_binning":
        (d / "acq.seq.Config.Metadata.xml").write_text(XML.replace('Binning="2"', 'Binning="4"'))
    elif case == "metadata_short":
        (d / "acq.seq.metadata").write_bytes(b"\0" * 100)
    msg = fails("info", path)
    for w in words:
        assert w in msg, (w, msg)
    assert "corrections=false" in msg, msg
    # the data still open without the companion files
    assert info(run, path, "--set", "corrections=false")["nav_shape"] == [20]
