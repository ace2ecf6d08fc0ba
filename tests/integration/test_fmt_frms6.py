"""The PNDetector FRMS6 reader against an independent numpy decoder of the published
layout (written below, sharing nothing with the generator tests/gen/gen_frms6.py): the
.hdr read with configparser, file and frame headers as numpy record types, frames
unfolded by concatenating the left halves with the right halves flipped in both axes,
rows repeated by the binning, the dark reference the mean of the _000 file.  No public
FRMS6 sample exists, so the data sets are generated; gain maps are written by
scipy.io.savemat (plain and compressed) and numpy."""

import configparser
import glob
import json
import os
import pathlib
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

from oracle import check, correct, expected

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
from gen_frms6 import write_frms6  # noqa: E402

# LiberTEM's frms6.py: file header (1024 bytes) and frame header (64 bytes).
FILE_HEADER = np.dtype([
    ("header_size", "<u2"), ("frame_header_size", "<u2"), ("_p1", "V3"), ("version", "u1"),
    ("comment_1", "V80"), ("width", "<u2"), ("height", "<u2"), ("comment_2", "V928"),
    ("num_frames", "<u4")])
FRAME_HEADER = np.dtype([
    ("_p1", "V4"), ("timestamp_s", "<u4"), ("timestamp_us", "<u4"), ("frame_number", "<u4"),
    ("_p2", "V12"), ("comment", "V36")])
assert FILE_HEADER.itemsize == 1024 and FRAME_HEADER.itemsize == 64


def np_frms6(base):
    """(signal frames, dark reference (float64), nav, binning) of a data set."""
    cfg = configparser.ConfigParser()
    cfg.read(base + ".hdr")
    mi = cfg["measurementInfo"]
    binning = int(re.search(r"bin:\s*(\d+)", mi["readoutmode"]).group(1))
    nav = tuple(int(v) for v in mi["stemimagesize"].split("x")) if "stemimagesize" in mi else None
    stacks = []
    for path in sorted(glob.glob(glob.escape(base) + "_*.frms6")):
        raw = np.fromfile(path, np.uint8)
        h = raw[:1024].view(FILE_HEADER)[0]
        assert (h["header_size"], h["frame_header_size"], h["version"]) == (1024, 64, 6)
        rec = np.dtype([("h", FRAME_HEADER), ("px", "<u2", (int(h["height"]), int(h["width"])))])
        n = int(h["num_frames"]) or (raw.size - 1024) // rec.itemsize
        px = raw[1024:1024 + n * rec.itemsize].view(rec)["px"]
        half = px.shape[2] // 2
        unfolded = np.concatenate([px[:, :, :half], np.flip(px[:, :, half:], axis=(1, 2))], axis=1)
        stacks.append(np.repeat(unfolded, binning, axis=1))
    dark = stacks[0].astype(np.float64).mean(axis=0)
    return np.concatenate(stacks[1:]), dark, nav, binning


def info(run, path, *args):
    return json.loads(run("info", path, *args, "--json").stdout)


def pick(run_udfs, path, idx, *args):
    picks = [a for i in idx for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *args, *picks)["pick.intensity"]


def make(tmp_path, name="scan", n=6, rows=8, cols=10, n_dark=3, seed=0, **kw):
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 4096, size=(n, rows, cols), dtype=np.uint16)
    dark = rng.integers(0, 200, size=(n_dark, rows, cols), dtype=np.uint16)
    base = str(tmp_path / name)
    write_frms6(base, frames, dark, **kw)
    return base, frames, dark


@pytest.mark.parametrize("binning", [1, 2, 4])
def test_generator_writes_the_layout(tmp_path, binning):
    base, frames, dark = make(tmp_path, nav=(2, 3), binning=binning, per_file=4)
    sig, d, nav, b = np_frms6(base)
    assert nav == (2, 3) and b == binning
    np.testing.assert_array_equal(sig, np.repeat(frames, binning, axis=1))
    np.testing.assert_allclose(d, np.repeat(dark, binning, axis=1).mean(axis=0))


@pytest.mark.parametrize("binning,per_file,declare", [(1, 6, True), (2, 4, False), (4, 1, True)])
def test_generated(tmp_path, run, run_udfs, binning, per_file, declare):
    base, frames, dark = make(tmp_path, nav=(2, 3), binning=binning, per_file=per_file,
                              declare=declare)
    sig, dref, nav, _ = np_frms6(base)
    shape = list(sig.shape[1:])
    assert shape == [8 * binning, 10]
    m = info(run, base + ".hdr")
    assert m["format"] == "frms6"
    assert (m["nav_shape"], m["sig_shape"], m["dtype"]) == ([2, 3], shape, "uint16"), m
    assert m["image_count"] == 6
    hd = m["meta"]["header"]
    assert (hd["width"], hd["height"], hd["binning"]) == (20, 4, binning)
    assert (hd["dark_frames"], hd["signal_frames"]) == (3, 6)
    assert m["meta"]["detector"] == "PNDetector pnCCD"
    assert m["meta"]["corrections"]["dark"]["frames"] == 3
    assert m["meta"]["hdr"]["stemImageSize"] == "2x3"
    assert len(m["meta"]["files"]) == 2 + -(-6 // per_file)
    got = pick(run_udfs, base + "_001.frms6", ["0,0", "1,2", "0,2"], "--no-dataset-corrections")
    np.testing.assert_array_equal(got, sig[[0, 5, 2]])
    # the dark frames' mean is the dataset's dark correction
    a = sig.reshape((2, 3) + sig.shape[1:])
    udfs = ["sum", "sumsig", "stddev"]
    res = run_udfs(",".join(udfs), base + ".hdr")
    check(res, expected(a, (2, 3), sig.shape[1:], udfs,
                        corrected=correct(a, dark=dref.astype(np.float32))))
    res = run_udfs(",".join(udfs), base + ".hdr", "--set", "enable_offset_correction=false")
    check(res, expected(a, (2, 3), sig.shape[1:], udfs))


def test_bands_and_reshape(tmp_path, run_udfs):
    """Tiles of a few rows, and frames reshaped so that tiles cut rows."""
    base, frames, dark = make(tmp_path, n=4, rows=66, cols=264, nav=(2, 2), binning=2)
    sig, dref, _, _ = np_frms6(base)
    assert sig.shape[1:] == (132, 264)
    a = sig.reshape(2, 2, 132, 264)
    for args in (("--tile-bytes", "8K"), ("--tile-bytes", "40K", "--threads", 2)):
        res = run_udfs("sum,sumsig", base + ".hdr", "--no-dataset-corrections", *args)
        check(res, expected(a, (2, 2), (132, 264), ["sum", "sumsig"]), str(args))
    flat = sig.reshape(4, 99, 352)
    res = run_udfs("sum,sumsig", base + ".hdr", "--no-dataset-corrections", "--set",
                   "sig_shape=99,352", "--set", "nav_shape=4", "--tile-bytes", "5K")
    check(res, expected(flat, (4,), flat.shape[1:], ["sum", "sumsig"]))


def test_nav_sync_and_signal_frames(tmp_path, run, run_udfs):
    base, frames, dark = make(tmp_path, n=7, nav=(2, 3), per_file=3, signal_frames=6)
    sig, _, _, _ = np_frms6(base)
    m = info(run, base + ".hdr")
    assert m["image_count"] == 6, m  # signalFrames wins over the 7 frames present
    got = pick(run_udfs, base + ".hdr", ["0", "1", "3"], "--set", "nav_shape=4",
               "--set", "sync_offset=2", "--no-dataset-corrections")
    np.testing.assert_array_equal(got, sig[[2, 3, 5]])
    got = pick(run_udfs, base + ".hdr", ["0", "1"], "--set", "nav_shape=2",
               "--set", "sync_offset=-1", "--no-dataset-corrections")
    np.testing.assert_array_equal(got[0], 0)
    np.testing.assert_array_equal(got[1], sig[0])
    # without stemImageSize the scan is 1-D
    text = pathlib.Path(base + ".hdr").read_text()
    pathlib.Path(base + ".hdr").write_text(text.replace("stemImageSize=2x3\n", ""))
    assert info(run, base + ".hdr")["nav_shape"] == [6]


@pytest.mark.parametrize("kind", ["mat", "mat_compressed", "npy"])
def test_gain_map(tmp_path, run, run_udfs, kind):
    base, frames, dark = make(tmp_path, nav=(2, 3), binning=2)
    sig, dref, _, _ = np_frms6(base)
    rng = np.random.default_rng(11)
    gain = 0.5 + rng.random(sig.shape[1:])
    if kind == "npy":
        gpath = tmp_path / "gain.npy"
        np.save(gpath, gain.astype(np.float32))
    else:
        gpath = tmp_path / "gain.mat"
        scipy.io.savemat(gpath, {"Other": np.arange(6.0).reshape(2, 3), "GainMap": gain},
                         do_compression=kind == "mat_compressed")
    m = info(run, base + ".hdr", "--set", f"gain_map_path={gpath}")
    assert m["meta"]["corrections"]["gain"] == str(gpath)
    a = sig.reshape((2, 3) + sig.shape[1:])
    res = run_udfs("sum,sumsig", base + ".hdr", "--set", f"gain_map_path={gpath}")
    corr = correct(a, dark=dref.astype(np.float32), gain=gain.astype(np.float32))
    check(res, expected(a, (2, 3), sig.shape[1:], ["sum", "sumsig"], corrected=corr))


def test_probe(testdata, tsr_bin):
    """No file of the shared test data is taken for FRMS6."""
    for p in sorted(testdata.rglob("*")):
        if not p.is_file() or p.name == "SOURCES.md":
            continue
        r = subprocess.run([tsr_bin, "info", str(p), "--json"], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode == 0:
            assert json.loads(r.stdout)["format"] != "frms6", p
        else:
            assert 0 < r.returncode < 128 and "FRMS6" not in r.stderr, (p, r.stderr)


# ---------------------------------------------------------------------------
# Bad input


def patch(path, off, fmt, value):
    b = bytearray(pathlib.Path(path).read_bytes())
    struct.pack_into(fmt, b, off, value)
    pathlib.Path(path).write_bytes(bytes(b))


@pytest.mark.parametrize("case,words", [
    ("no_hdr", ["scan.hdr is missing", "binning"]),
    ("missing_file", ["file number 1 is missing", "scan_002.frms6"]),
    ("no_signal", ["no signal frames"]),
    ("empty", ["scan_001.frms6", "truncated FRMS6 header", "0 bytes"]),
    ("truncated", ["scan_002.frms6", "truncated", "declares 3 frames", "holds 2"]),
    ("header_size", ["scan_001.frms6", "not an FRMS6 file", "header size (byte 0) 512"]),
    ("version", ["scan_000.frms6", "version (byte 7) 5"]),
    ("odd_width", ["scan_000.frms6", "width (byte 88) 11"]),
    ("width_differs", ["scan_002.frms6", "12 x 4", "20 x 4"]),
    ("no_readout", ["scan.hdr", "no readoutMode"]),
    ("bad_bin", ["scan.hdr", "readoutMode", "bin: 0"]),
    ("bad_scan", ["scan.hdr", "stemImageSize = 2y3", "AxB"]),
    ("no_section", ["scan.hdr", "no [measurementInfo]"]),
    ("bad_name", ["opened by its <name>.hdr"]),
])
def test_bad_files(tmp_path, fails, case, words):
    base, frames, dark = make(tmp_path, nav=(2, 3), per_file=3)
    hdr = pathlib.Path(base + ".hdr")
    target = base + ".hdr"
    if case == "no_hdr":
        hdr.unlink()
        target = base + "_001.frms6"
    elif case == "missing_file":
        os.unlink(base + "_001.frms6")
        target = base + "_002.frms6"
    elif case == "no_signal":
        os.unlink(base + "_001.frms6")
        os.unlink(base + "_002.frms6")
    elif case == "empty":
        pathlib.Path(base + "_001.frms6").write_bytes(b"")
    elif case == "truncated":
        with open(base + "_002.frms6", "r+b") as f:
            f.truncate(1024 + 2 * (64 + 80 * 2) + 100)
    elif case == "header_size":
        patch(base + "_001.frms6", 0, "<H", 512)
    elif case == "version":
        patch(base + "_000.frms6", 7, "B", 5)
    elif case == "odd_width":
        patch(base + "_000.frms6", 88, "<H", 11)
    elif case == "width_differs":
        patch(base + "_002.frms6", 88, "<H", 12)
    elif case == "no_readout":
        hdr.write_text(re.sub(r"readoutMode=.*\n", "", hdr.read_text()))
    elif case == "bad_bin":
        hdr.write_text(hdr.read_text().replace("bin: 1", "bin: 0"))
    elif case == "bad_scan":
        hdr.write_text(hdr.read_text().replace("2x3", "2y3"))
    elif case == "no_section":
        hdr.write_text(hdr.read_text().replace("[measurementInfo]", "[measurement]"))
    elif case == "bad_name":
        os.rename(base + "_001.frms6", base + "_x.frms6")
        target = base + "_x.frms6"
    # a .hdr without the section is not recognised as FRMS6; named, it is refused
    for args in ((("--format", "frms6"),) if case == "no_section" else ((), ("--format", "frms6"))):
        msg = fails("info", target, *args)
        for w in words:
            assert w in msg, (w, msg)


@pytest.mark.parametrize("case,words", [
    ("shape", ["gain map is 3 x 4", "8 x 10"]),
    ("no_var", ["no variable GainMap", "Gain"]),
    ("not_mat", ["not a Level 5 MAT-file"]),
    ("v73", ["v7.3", "not supported"]),
    ("ext", ["expected a .mat", ".npy"]),
    ("missing", ["nothere.mat"]),
    ("zlib", ["does not inflate"]),
])
def test_bad_gain(tmp_path, fails, case, words):
    base, frames, dark = make(tmp_path, nav=(2, 3))
    g = tmp_path / "g.mat"
    if case == "shape":
        scipy.io.savemat(g, {"GainMap": np.ones((3, 4))})
    elif case == "no_var":
        scipy.io.savemat(g, {"Gain": np.ones((8, 10))})
    elif case == "not_mat":
        g.write_bytes(b"\0" * 300)
    elif case == "v73":
        g.write_bytes(b"MATLAB 7.3 MAT-file, Platform: GLNXA64" + b"\0" * 600)
    elif case == "ext":
        g = tmp_path / "g.csv"
        g.write_text("1;2\n")
    elif case == "missing":
        g = tmp_path / "nothere.mat"
    elif case == "zlib":
        scipy.io.savemat(g, {"GainMap": np.ones((8, 10))}, do_compression=True)
        b = bytearray(g.read_bytes())
        b[136 + 2:136 + 12] = b"\xff" * 10  # inside the deflate stream
        g.write_bytes(bytes(b))
    msg = fails("info", base + ".hdr", "--set", f"gain_map_path={g}")
    for w in words:
        assert w in msg, (w, msg)
