"""The Gatan K2 IS reader against an independent numpy decoder of the published layout
(written below, sharing nothing with the generator tests/gen/gen_k2is.py): block
headers parsed with a numpy record type, 12-bit pixels unpacked bit by bit, blocks
placed by the pixel ranges in their headers, frames gathered by frame id and kept when
every sector holds all their blocks, image 0 at the first frame with the shutter flag.
The .gtg tag files are checked with HyperSpy's DM tag parser, and the scan shape
expected from them is the one HyperSpy finds in the tags LiberTEM reads.
No public K2 IS sample exists, so the data sets are generated: sectors that start
mid-frame or with extra frames, partial frames at the end, frames before the shutter,
DM4/DM3 .gtg files, and malformed files for clean errors."""

import json
import os
import pathlib
import struct
import subprocess
import sys

import numpy as np
import pytest

from oracle import check, expected

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
from gen_k2is import gtg_bytes, write_k2is  # noqa: E402

H, W = 1860, 2048
BLOCK, HDR = 0x5758, 40

# The block header, big-endian (LiberTEM's k2is.py: DataBlock.header_dtype).
BLOCK_HEADER = np.dtype([
    ("sync", ">u4"), ("_p1", "V4"), ("version", "u1"), ("flags", "u1"), ("_p2", "V6"),
    ("block_count", ">u4"), ("width", ">u2"), ("height", ">u2"), ("frame_id", ">u4"),
    ("pixel_x_start", ">u2"), ("pixel_y_start", ">u2"), ("pixel_x_end", ">u2"),
    ("pixel_y_end", ">u2"), ("block_size", ">u4")])


def unpack12(raw):
    """Packed 12-bit values (little-endian bit stream) -> uint16, bit by bit."""
    bits = np.unpackbits(raw, bitorder="little").reshape(-1, 12).astype(np.uint16)
    return (bits << np.arange(12, dtype=np.uint16)).sum(axis=1).astype(np.uint16)


def np_k2is(prefix):
    """(frames of the complete frames in frame-id order, their shutter flags): every
    block of the 8 sectors is read; a frame is complete when each sector holds all 32
    of its pixel ranges."""
    frames, seen, flags = {}, {}, {}
    for s in range(8):
        raw = np.fromfile(f"{prefix}{s + 1}.bin", np.uint8)
        n = raw.size // BLOCK
        blocks = raw[:n * BLOCK].reshape(n, BLOCK)
        hdr = blocks[:, :HDR].copy().view(BLOCK_HEADER).reshape(n)
        for i in range(n):
            h = hdr[i]
            assert h["sync"] == 0xFFFF0055 and h["width"] == 256 and h["height"] == 1860
            fid = int(h["frame_id"])
            y0, y1 = int(h["pixel_y_start"]), int(h["pixel_y_end"]) + 1
            x0, x1 = int(h["pixel_x_start"]) + 256 * s, int(h["pixel_x_end"]) + 1 + 256 * s
            fr = frames.setdefault(fid, np.zeros((H, W), np.uint16))
            fr[y0:y1, x0:x1] = unpack12(blocks[i, HDR:]).reshape(y1 - y0, x1 - x0)
            seen.setdefault(fid, set()).add((s, y0, x0))
            flags.setdefault(fid, []).append(int(h["flags"]) & 1)
    complete = sorted(f for f in frames if len(seen[f]) == 8 * 32)
    return (np.stack([frames[f] for f in complete]),
            np.array([all(flags[f]) for f in complete]), complete)


def hs_gtg(path):
    """HyperSpy's DM tag parser on a .gtg: (its tags, the version); the whole file must
    be read, up to the zero padding after the root group."""
    from hyperspy.io_plugins.digital_micrograph import DigitalMicrographReader
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        r = DigitalMicrographReader(f)
        r.parse_file()
        pad = 8 if r.dm_version == 4 else 4
        assert f.tell() == size - pad, (f.tell(), size)
        assert f.read() == bytes(pad)
    return r.tags_dict, r.dm_version


def hs_scan(path):
    """The scan shape (Size Y, Size X of "SI Dimensions") and the one without flyback
    (Spatial Sampling Height, Width) of a .gtg as HyperSpy reads them (None if absent):
    the tags LiberTEM's k2is.py reads."""
    tags, _ = hs_gtg(path)
    dims = tags.get("SI Dimensions")
    scan = (dims["Size Y"], dims["Size X"]) if dims else None
    try:
        samp = tags["SI Image Tags"]["SI"]["Acquisition"]["Spatial Sampling"]
        flyback = (samp["Height (pixels)"], samp["Width (pixels)"])
    except KeyError:
        flyback = None
    return scan, flyback


def info(run, path, *args):
    return json.loads(run("info", path, *args, "--json").stdout)


def pick(run_udfs, path, idx, *args):
    picks = [a for i in idx for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *args, *picks)["pick.intensity"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """5 images (2 before the shutter), sectors out of step at both ends."""
    d = tmp_path_factory.mktemp("k2")
    rng = np.random.default_rng(7)
    frames = rng.integers(0, 4096, size=(3, H, W), dtype=np.uint16)
    pre = rng.integers(0, 4096, size=(2, H, W), dtype=np.uint16)
    prefix = str(d / "Capture52_")
    write_k2is(prefix, frames, pre=pre, nav=(1, 3), lead_blocks=[0, 3, 0, 0, 0, 0, 17, 0],
               extra_frames=[0, 0, 1, 0, 0, 0, 0, 2], tail_blocks=[1, 0, 0, 31, 0, 0, 0, 0])
    return d, prefix, frames, pre


def test_generator_writes_the_layout(dataset):
    d, prefix, frames, pre = dataset
    got, shutter, ids = np_k2is(prefix)
    assert ids == list(range(100, 105))
    np.testing.assert_array_equal(got, np.concatenate([pre, frames]))
    assert shutter.tolist() == [False, False, True, True, True]


def test_generated(dataset, run, run_udfs):
    d, prefix, frames, pre = dataset
    ref, shutter, ids = np_k2is(prefix)
    first = int(np.argmax(shutter))
    scan, _ = hs_scan(prefix + ".gtg")
    assert scan == (1, 3)
    m = info(run, prefix + ".gtg")
    assert m["format"] == "k2is"
    assert (m["nav_shape"], m["sig_shape"], m["dtype"]) == (list(scan), [H, W], "uint16"), m
    assert m["image_count"] == len(ids)
    hd = m["meta"]["header"]
    assert hd["shutter_frame"] == first and hd["complete_frames"] == len(ids)
    assert (hd["first_frame_id"], hd["last_frame_id"]) == (ids[0], ids[-1])
    assert m["meta"]["detector"] == "Gatan K2 IS"
    assert m["meta"]["gtg"]["scan_shape"] == [1, 3]
    assert len(m["meta"]["files"]) == 9
    got = pick(run_udfs, prefix + ".gtg", ["0,0", "0,1", "0,2"])
    np.testing.assert_array_equal(got, ref[first:first + 3])
    # every sector file opens the same data set
    for k in (1, 5, 8):
        m2 = info(run, f"{prefix}{k}.bin")
        assert m2["format"] == "k2is" and m2["nav_shape"] == [1, 3], m2
        assert m2["meta"]["header"] == hd


@pytest.mark.parametrize("args", [
    (),
    ("--threads", 2, "--partitions", 3),
    ("--tile-bytes", "64K"),           # tiles of one 930-row block row
    ("--io-backend", "mmap"),
])
def test_udfs(dataset, run_udfs, args):
    d, prefix, frames, pre = dataset
    ref, shutter, _ = np_k2is(prefix)
    data = ref[2:5].reshape(1, 3, H, W)
    res = run_udfs("sum,sumsig,stddev", prefix + ".gtg", *args)
    check(res, expected(data, (1, 3), (H, W), ["sum", "sumsig", "stddev"]), str(args))


def test_sync_offset(dataset, run_udfs):
    """sync_offset counts from the first frame with the shutter flag: negative values
    reach the frames before it, then blank frames."""
    d, prefix, frames, pre = dataset
    ref, shutter, _ = np_k2is(prefix)
    g = prefix + ".gtg"
    got = pick(run_udfs, g, ["0,0", "0,1", "0,2"], "--set", "sync_offset=-1")
    np.testing.assert_array_equal(got, ref[1:4])
    got = pick(run_udfs, g, ["0,0", "0,2"], "--set", "sync_offset=-3")
    np.testing.assert_array_equal(got[0], 0)
    np.testing.assert_array_equal(got[1], ref[1])
    got = pick(run_udfs, g, ["0,0", "0,1", "0,2"], "--set", "sync_offset=1")
    np.testing.assert_array_equal(got[:2], ref[3:5])
    np.testing.assert_array_equal(got[2], 0)  # past the last frame
    got = pick(run_udfs, g, ["0", "1"], "--set", "nav_shape=2", "--set", "sync_offset=1")
    np.testing.assert_array_equal(got, ref[3:5])


def test_sig_reshape_unaligned_bands(dataset, run_udfs):
    """Reshaped frames make tiles whose bands do not follow the block rows."""
    d, prefix, frames, pre = dataset
    ref, _, _ = np_k2is(prefix)
    data = ref[2:5].reshape(3, 3720, 1024)
    res = run_udfs("sum,sumsig", prefix + ".gtg", "--set", "sig_shape=3720,1024",
                   "--set", "nav_shape=3", "--tile-bytes", "300K")
    check(res, expected(data, (3,), (3720, 1024), ["sum", "sumsig"]))


@pytest.mark.parametrize("version", [4, 3])
@pytest.mark.parametrize("size_type", ["i4", "u4", "f8", "u2"])
def test_gtg_is_a_dm_file(tmp_path, version, size_type):
    """The generator's .gtg is a DM tag file HyperSpy parses whole, holding the scan
    shape in the tags LiberTEM reads, and the tags beside them."""
    p = tmp_path / "x.gtg"
    p.write_bytes(gtg_bytes((5, 7), version, without_flyback=(4, 6), size_type=size_type))
    tags, v = hs_gtg(p)
    assert v == version
    assert hs_scan(p) == ((5, 7), (4, 6))
    assert tags["Name"] == "K2 IS" and tags["Origin"] == (0.5, 1.5), tags
    assert tags["Data"] == [1.0, 2.0, 3.0, 4.0], tags
    p.write_bytes(gtg_bytes(None, version))
    assert hs_scan(p) == (None, None)


@pytest.mark.parametrize("variant", ["dm3", "u4", "f8", "u2"])
def test_gtg_variants(tmp_path, run, variant):
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 4096, size=(6, H, W), dtype=np.uint16)
    prefix = str(tmp_path / "s_")
    write_k2is(prefix, frames, nav=(2, 3), gtg=3 if variant == "dm3" else 4,
               size_type="i4" if variant == "dm3" else variant, without_flyback=(2, 2))
    scan, flyback = hs_scan(prefix + ".gtg")
    assert (scan, flyback) == ((2, 3), (2, 2))
    m = info(run, prefix + ".gtg")
    assert m["nav_shape"] == [int(x) for x in scan], m
    assert m["meta"]["gtg"] == {"scan_shape": [int(x) for x in scan],
                                "scan_shape_without_flyback": [int(x) for x in flyback]}


def test_time_series_and_missing_gtg(tmp_path, run, run_udfs, fails):
    rng = np.random.default_rng(4)
    frames = rng.integers(0, 4096, size=(3, H, W), dtype=np.uint16)
    pre = rng.integers(0, 4096, size=(1, H, W), dtype=np.uint16)
    prefix = str(tmp_path / "t_")
    write_k2is(prefix, frames, pre=pre, nav=None)
    # a .gtg without SI Dimensions: a time series of the frames from the shutter on
    assert hs_scan(prefix + ".gtg")[0] is None
    m = info(run, prefix + ".gtg")
    assert m["nav_shape"] == [3] and m["image_count"] == 4, m
    np.testing.assert_array_equal(pick(run_udfs, prefix + "2.bin", ["2"]), frames[2:3])
    # no .gtg: the scan shape must be given
    os.unlink(prefix + ".gtg")
    msg = fails("info", prefix + "1.bin")
    assert "t_.gtg" in msg and "nav_shape" in msg, msg
    m = info(run, prefix + "1.bin", "--set", "nav_shape=3")
    assert m["nav_shape"] == [3] and "gtg_note" in m["meta"], m
    # a .gtg that is not a tag file: the same
    pathlib.Path(prefix + ".gtg").write_bytes(b"\x00\x00\x00\x07garbage" * 3)
    msg = fails("info", prefix + "1.bin")
    assert "t_.gtg" in msg and "header version field is 7" in msg and "nav_shape" in msg, msg
    # cut inside the last tag (Size Y's value) of SI Dimensions
    pathlib.Path(prefix + ".gtg").write_bytes(gtg_bytes((1, 3))[:-8 - 3])
    msg = fails("info", prefix + "1.bin")
    assert "t_.gtg" in msg and "SI Dimensions/Size Y" in msg and "truncated" in msg, msg
    m = info(run, prefix + "1.bin", "--set", "nav_shape=3")
    assert "SI Dimensions/Size Y" in m["meta"]["gtg_note"], m


def test_no_shutter_flag(tmp_path, run, run_udfs):
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 4096, size=(2, H, W), dtype=np.uint16)
    prefix = str(tmp_path / "n_")
    write_k2is(prefix, frames, nav=(1, 2), no_shutter=True)
    m = info(run, prefix + ".gtg")
    assert m["meta"]["header"]["shutter_frame"] == -1 and "shutter" in m["meta"]["note"]
    np.testing.assert_array_equal(pick(run_udfs, prefix + ".gtg", ["0,0", "0,1"]), frames)


def test_probe(testdata, tsr_bin):
    """No file of the shared test data is taken for K2IS."""
    for p in sorted(testdata.rglob("*")):
        if not p.is_file() or p.name == "SOURCES.md":
            continue
        r = subprocess.run([tsr_bin, "info", str(p), "--json"], capture_output=True, text=True,
                           timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode == 0:
            assert json.loads(r.stdout)["format"] != "k2is", p
        else:
            assert 0 < r.returncode < 128 and "K2IS" not in r.stderr, (p, r.stderr)


# ---------------------------------------------------------------------------
# Bad input


@pytest.fixture
def small(tmp_path):
    rng = np.random.default_rng(9)
    frames = rng.integers(0, 4096, size=(3, H, W), dtype=np.uint16)
    prefix = str(tmp_path / "b_")
    write_k2is(prefix, frames, nav=(1, 3))
    return prefix, frames


def patch(path, off, fmt, value):
    b = bytearray(pathlib.Path(path).read_bytes())
    struct.pack_into(fmt, b, off, value)
    pathlib.Path(path).write_bytes(bytes(b))


@pytest.mark.parametrize("case,words", [
    ("missing_sector", ["8 sector files", "found 7"]),
    ("empty_sector", ["b_3.bin", "truncated K2IS sector", "the file has 0"]),
    ("truncated_first_frame", ["b_2.bin", "truncated K2IS sector"]),
    ("sync", ["b_4.bin", "sync word 0x12345678", "0xffff0055"]),
    ("width", ["b_1.bin", "255 x 1860", "256 x 1860"]),
    ("pixel_x", ["b_5.bin", "pixel range x 250", "block of the sector layout"]),
    ("frame_id", ["b_6.bin", "not whole", "frame id 999"]),
    ("no_frame_start", ["b_7.bin", "no block starting a frame"]),
])
def test_bad_open(small, fails, case, words):
    prefix, _ = small
    if case == "missing_sector":
        os.unlink(prefix + "8.bin")
    elif case == "empty_sector":
        pathlib.Path(prefix + "3.bin").write_bytes(b"")
    elif case == "truncated_first_frame":
        with open(prefix + "2.bin", "r+b") as f:
            f.truncate(BLOCK * 20)
    elif case == "sync":
        patch(prefix + "4.bin", 0, ">I", 0x12345678)
    elif case == "width":
        patch(prefix + "1.bin", 20, ">H", 255)
    elif case == "pixel_x":
        patch(prefix + "5.bin", BLOCK * 3 + 28, ">H", 250)
    elif case == "frame_id":
        patch(prefix + "6.bin", BLOCK * 7 + 24, ">I", 999)
    elif case == "no_frame_start":
        patch(prefix + "7.bin", 28, ">H", 224)  # block 0 claims the place of block 1
        patch(prefix + "7.bin", 32, ">H", 239)
    for target in (prefix + ".gtg", prefix + "1.bin"):
        msg = fails("info", target)
        for w in words:
            assert w in msg, (w, msg)


def test_bad_read(small, fails, run):
    """A damaged block inside the data is found when it is read."""
    prefix, _ = small
    patch(prefix + "3.bin", 32 * BLOCK + 5 * BLOCK, ">I", 0xDEADBEEF)  # frame 1, block 5
    assert info(run, prefix + ".gtg")["nav_shape"] == [1, 3]
    msg = fails("run", "sumsig", prefix + ".gtg", "-o", str(pathlib.Path(prefix).parent) + "/o/")
    assert "b_3.bin" in msg and "sync 0xdeadbeef" in msg and "image 1" in msg, msg


def test_out_of_step(small, fails):
    """One sector's frame id disagrees with the others inside the data."""
    prefix, _ = small
    path = prefix + "2.bin"
    b = bytearray(pathlib.Path(path).read_bytes())
    for k in range(32, 64):
        struct.pack_into(">I", b, k * BLOCK + 24, 555)
    pathlib.Path(path).write_bytes(bytes(b))
    msg = fails("run", "sumsig", prefix + ".gtg", "-o", str(pathlib.Path(prefix).parent) + "/o/")
    # which sector the message names depends on the one a worker checked first (the frame id
    # of the first block read is the reference): the wrong id is named either way
    assert "frame id 555" in msg and "out of step" in msg and ".bin" in msg, msg


def test_truncated_sector_shortens(small, run, run_udfs):
    """A sector cut inside the last frame: that frame is not part of the data set."""
    prefix, frames = small
    with open(prefix + "6.bin", "r+b") as f:
        f.truncate(BLOCK * (32 + 10))
    m = info(run, prefix + ".gtg", "--set", "nav_shape=1")
    assert m["image_count"] == 1, m
    np.testing.assert_array_equal(pick(run_udfs, prefix + ".gtg", ["0"], "--set",
                                       "nav_shape=1"), frames[:1])


def test_sector_missing_first_block(small, run, run_udfs):
    """A sector whose first frame lacks a block: all sectors start at the next frame."""
    prefix, frames = small
    b = pathlib.Path(prefix + "7.bin").read_bytes()
    pathlib.Path(prefix + "7.bin").write_bytes(b[BLOCK:])
    m = info(run, prefix + ".gtg", "--set", "nav_shape=2")
    assert m["image_count"] == 2 and m["meta"]["header"]["first_frame_id"] == 101, m
    np.testing.assert_array_equal(pick(run_udfs, prefix + ".gtg", ["0", "1"], "--set",
                                       "nav_shape=2"), frames[1:])


def test_damaged_last_frame_dropped(small, run, run_udfs):
    """A last frame that is not whole in one sector is left out; the others read."""
    prefix, frames = small
    patch(prefix + "4.bin", (2 * 32 + 10) * BLOCK + 24, ">I", 777)
    m = info(run, prefix + ".gtg", "--set", "nav_shape=2")
    assert m["image_count"] == 2 and m["meta"]["header"]["last_frame_id"] == 101, m
    np.testing.assert_array_equal(pick(run_udfs, prefix + ".gtg", ["0", "1"], "--set",
                                       "nav_shape=2"), frames[:2])
