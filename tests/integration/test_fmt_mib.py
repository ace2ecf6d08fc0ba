"""The MIB reader (Quantum Detectors Merlin) against an independent numpy reading of the published
layout, written here: every sample of $TSR_TESTDATA/mib (opened from the .mib and from the .hdr),
the RAW samples against the non-RAW recordings of the same settings, and generated files
(tests/gen/gen_mib.py) for what no sample covers: RAW at 6, 12 and 24 bits (single chip and quad),
multi-file acquisitions, .hdr scan shapes, header sizes, detector ROIs, and bad input.

hyperspy 1.7.3 has no MIB reader, so the oracle is this file's parser: the frame header
("MQ1,<seq>,<header bytes>,<chips>,<width>,<height>,<type>,<layout>,...,MQ1A,...,<depth>,"),
big-endian U08/U16/U32 pixels after it, and for RAW (R64) the decoding by index arithmetic:
64-bit words stored byte-reversed; 1-bit pixels LSB first, 6-bit as bytes, 12-bit as 16-bit
values; 24-bit = two 12-bit images, high bits first; quad: raw row [chip4|chip3|chip2|chip1],
lower chips rotated by 180 degrees.  Shapes and dtypes are also checked against the facts in
SOURCES.md.
"""

import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from oracle import check, expected

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_mib  # noqa: E402


# ---------------------------------------------------------------------------
# The oracle: MIB parsed with numpy from the layout


def parse_header(b):
    """Fields of the frame header at the start of bytes b."""
    assert b[:4] == b"MQ1,", b[:16]
    size = int(b.split(b",")[2])
    fields = b[:size].split(b"\0")[0].decode("ascii").split(",")
    h = {"seq": int(fields[1]), "size": size, "chips": int(fields[3]), "w": int(fields[4]),
         "h": int(fields[5]), "type": fields[6], "layout": fields[7].strip(), "depth": None}
    if "MQ1A" in fields:
        h["depth"] = int(fields[fields.index("MQ1A") + 3])
    return h


def raw_pixel_bytes(h, depth):
    npx = h["w"] * h["h"]
    return {1: npx // 8, 6: npx, 12: 2 * npx, 24: 2 * npx}[depth]


def decode_stream(words, depth, npx):
    """Counters of one raw image: words is (n, bytes) uint8 of R64 words."""
    n = words.shape[0]
    i = np.arange(npx)
    if depth == 1:
        byte = words[:, 8 * (i // 64) + 7 - (i % 64) // 8]
        return (byte >> (i % 8).astype(np.uint8)) & 1
    if depth == 6:
        return words[:, 8 * (i // 8) + 7 - i % 8]
    pos = 2 * (4 * (i // 4) + 3 - i % 4)  # big-endian 16-bit value, groups of 4 reversed
    return words[:, pos].astype(np.uint32) * 256 + words[:, pos + 1]


def decode_raw(data, h, depth):
    """(n, bytes) RAW pixel data -> (n, H, W) frames."""
    n = data.shape[0]
    w, ht = h["w"], h["h"]
    if depth == 24:
        w //= 2
        half = data.shape[1] // 2
        img = decode_stream(data[:, :half], 12, w * ht).astype(np.uint32) * 4096 + \
            decode_stream(data[:, half:], 12, w * ht)
    else:
        img = decode_stream(data, depth, w * ht)
    img = img.reshape(n, ht, w)
    if h["chips"] == 1:
        return img
    cw = w // 4
    out_h, out_w = 2 * ht, 2 * cw
    y, x = np.mgrid[0:out_h, 0:out_w]
    top = y < ht
    ry = np.where(top, y, 2 * ht - 1 - y)
    left = x < cw
    xin = np.where(left, x, x - cw)
    rx = np.where(top, np.where(left, 3 * cw + xin, 2 * cw + xin),
                  np.where(left, cw + (cw - 1 - xin), cw - 1 - xin))
    return img[:, ry, rx]


def read_mib(path, depth=None):
    """(first header, frames (n, H, W)) of one .mib file, per the layout."""
    b = pathlib.Path(path).read_bytes()
    h = parse_header(b)
    raw = h["type"] == "R64"
    depth = depth or h["depth"]
    if raw:
        nbytes = raw_pixel_bytes(h, depth)
    else:
        nbytes = h["w"] * h["h"] * int(h["type"][1:]) // 8
    stride = h["size"] + nbytes
    n = len(b) // stride
    a = np.frombuffer(b, np.uint8, n * stride).reshape(n, stride)
    for k in range(n):  # every frame has a header with consecutive sequence numbers
        assert parse_header(a[k].tobytes())["seq"] == h["seq"] + k
    data = a[:, h["size"]:]
    if raw:
        return h, decode_raw(np.ascontiguousarray(data), h, depth)
    dt = {"U08": ">u1", "U16": ">u2", "U32": ">u4"}[h["type"]]
    return h, np.ascontiguousarray(data).view(dt).reshape(n, h["h"], h["w"])


def read_hdr(path):
    d = {}
    for line in pathlib.Path(path).read_text("latin1").splitlines()[1:]:
        if "\t" in line:
            k, v = line.split("\t", 1)
            d[k.strip().rstrip(":")] = v.strip()
    return d


def hdr_nav(hdr, n):
    """The documented default scan: ScanY,ScanX; else Frames in Acquisition / Frames per
    Trigger when 1 < FpT < FiA divides; else square; else 1-D."""
    if "ScanX" in hdr and "ScanY" in hdr:
        return (int(hdr["ScanY"]), int(hdr["ScanX"]))
    fia = int(hdr.get("Frames in Acquisition (Number)", 0))
    fpt = int(hdr.get("Frames per Trigger (Number)", 0))
    if 1 < fpt < fia and fia % fpt == 0:
        return (fia // fpt, fpt)
    s = int(round(n ** 0.5))
    return (s, s) if n > 1 and s * s == n else (n,)


def sources_facts(testdata):
    """{file name: (shape, typestr)} from the 'data:' lines of SOURCES.md."""
    text = (testdata / "SOURCES.md").read_text()
    facts = {}
    for m in re.finditer(r"### `mib/([^`]+)`\n(.*?)(?=\n### |\Z)", text, re.S):
        d = re.search(r"- data: shape \(([\d, ]+)\), dtype `([^`]+)`", m.group(2))
        if d:
            facts[m.group(1)] = (tuple(int(x) for x in d.group(1).split(",") if x.strip()),
                                 d.group(2))
    return facts


# ---------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="module")
def mibdir(testdata):
    assert testdata is not None, "TSR_TESTDATA is not set"
    d = testdata / "mib"
    assert d.is_dir(), f"{d} is missing"
    return d


def mib_files(testdata):
    d = pathlib.Path(os.environ.get("TSR_TESTDATA", "/nonexistent")) / "mib"
    return sorted(p.name for p in d.glob("*.mib")) if d.is_dir() else ["(TSR_TESTDATA unset)"]


def info(run, path, *args):
    return json.loads(run("info", "--json", path, *args).stdout)


def pick_all(run_udfs, path, nav, *args):
    """Every frame through `pick`, as (n, H, W)."""
    idx = np.ndindex(*nav)
    pargs = [a for p in idx for a in ("--param", "nav=" + ",".join(map(str, p)))]
    return run_udfs("pick", path, *args, *pargs)["pick.intensity"]


def full_check(run_udfs, path, frames, nav, *args, udfs=("sum", "sumsig", "stddev", "pick")):
    """sum, sumsig, stddev and pick of every-other frame against numpy on the frames."""
    sig = frames.shape[1:]
    arr = frames.reshape(tuple(nav) + sig)
    picks = [p for i, p in enumerate(np.ndindex(*nav)) if i % 2 == 0]
    pargs = [a for p in picks for a in ("--param", "nav=" + ",".join(map(str, p)))]
    res = run_udfs(",".join(udfs), path, *args, *(pargs if "pick" in udfs else []))
    check(res, expected(arr, nav, sig, list(udfs), picks=picks), str(path))


# ---------------------------------------------------------------------------
# Every real sample


@pytest.mark.parametrize("name", mib_files(None))
def test_sample(mibdir, testdata, run, run_udfs, name):
    path = mibdir / name
    hdr_path = path.with_suffix(".hdr")
    h, frames = read_mib(path)
    n = frames.shape[0]
    facts = sources_facts(testdata)
    assert name in facts, f"SOURCES.md has no data line for {name}"
    shape, typestr = facts[name]
    assert frames.shape == shape, (frames.shape, shape)  # the oracle agrees with SOURCES.md
    nav = hdr_nav(read_hdr(hdr_path), n) if hdr_path.exists() else \
        ((int(n ** 0.5),) * 2 if n > 1 and int(n ** 0.5) ** 2 == n else (n,))
    opened = [path] + ([hdr_path] if hdr_path.exists() else [])
    for p in opened:
        i = info(run, p)
        assert i["format"] == "mib", (p, i["format"])
        assert tuple(i["nav_shape"]) == nav, (p, i["nav_shape"], nav)
        assert tuple(i["sig_shape"]) == shape[1:], (p, i["sig_shape"])
        assert i["image_count"] == shape[0]
        if h["type"] == "R64":
            assert np.dtype(i["typestr"]) == np.dtype(typestr)
        else:
            assert i["typestr"] == typestr, (i["typestr"], typestr)
        m = i["meta"]
        assert "Merlin" in m["detector"] and f"{h['chips']} chip" in m["detector"]
        assert m["raw"] == (h["type"] == "R64")
        assert m["header"]["sequence_first"] == h["seq"]
        assert m["header"]["header_bytes"] == h["size"]
        if h["depth"]:
            assert m["counter_depth"] == h["depth"]
        if hdr_path.exists():
            assert m["header"]["hdr"]["Frames in Acquisition (Number)"] == str(n)
    full_check(run_udfs, path, frames.astype(frames.dtype.newbyteorder("=")), nav)
    if hdr_path.exists():
        got = pick_all(run_udfs, hdr_path, nav)
        assert np.array_equal(got.reshape(frames.shape), frames), f"{hdr_path}: pixels differ"


def test_samples_auto_detected(mibdir, run):
    """Every file of the folder (.mib and .hdr) is detected as mib."""
    for p in sorted(mibdir.iterdir()):
        assert info(run, p)["format"] == "mib", p


def test_sample_sequence_offset(mibdir, run_udfs):
    """SingleMIB.mib starts at sequence number 10: its one frame is frame 0."""
    h, frames = read_mib(mibdir / "SingleMIB.mib")
    assert h["seq"] == 10
    got = pick_all(run_udfs, mibdir / "SingleMIB.mib", (1,))
    assert np.array_equal(got, frames)


def corr(a, b):
    return float(np.corrcoef(np.ravel(a).astype(float), np.ravel(b).astype(float))[0, 1])


def test_raw_single_against_non_raw(mibdir, run_udfs):
    """RAW 1-bit single chip vs the non-RAW 1-bit recording of the same settings: the summed
    images correlate >= 0.99 (SOURCES.md)."""
    raw = run_udfs("sum", mibdir / "Single_9_Frame_CounterDepth_1_Rows_256RAW.mib")
    ref = run_udfs("sum", mibdir / "Single_9_Frame_CounterDepth_1_Rows_256.mib")
    c = corr(raw["sum.intensity"], ref["sum.intensity"])
    assert c >= 0.99, c


def test_raw_quad_against_non_raw(mibdir, run_udfs):
    """RAW 1-bit quad vs the 6-bit quad recording of the same settings: per frame, a pixel is 1
    where the 6-bit counter is non-zero; the summed images correlate >= 0.99, and better than
    any other arrangement of the four chips (so the quad layout is right)."""
    raw = run_udfs("sum", mibdir / "Quad_9_Frame_CounterDepth_1_Rows_256RAW.mib")["sum.intensity"]
    _, six = read_mib(mibdir / "Quad_9_Frame_CounterDepth_6_Rows_256.mib")
    ref = (six > 0).sum(axis=0)
    c = corr(raw, ref)
    assert c >= 0.99, c
    # the same decode with the chips swapped or unrotated correlates worse
    q = [raw[:256, :256], raw[:256, 256:], raw[256:, :256], raw[256:, 256:]]
    for perm in ([1, 0, 2, 3], [0, 1, 3, 2], [2, 3, 0, 1]):
        alt = np.block([[q[perm[0]], q[perm[1]]], [q[perm[2]], q[perm[3]]]])
        assert corr(alt, ref) < c - 0.05, perm
    unrot = np.block([[q[0], q[1]], [q[2][::-1, ::-1], q[3][::-1, ::-1]]])
    assert corr(unrot, ref) < c - 0.05


def test_raw_quad_one_frame_exact(mibdir, run_udfs):
    """The 1-frame RAW quad sample decodes exactly as the layout says."""
    _, frames = read_mib(mibdir / "Quad_1_Frame_CounterDepth_1_Rows_256RAW.mib")
    got = pick_all(run_udfs, mibdir / "Quad_1_Frame_CounterDepth_1_Rows_256RAW.mib", (1,))
    assert np.array_equal(got, frames)


# ---------------------------------------------------------------------------
# Generated files


@pytest.mark.parametrize("quad", [False, True], ids=["single", "quad"])
@pytest.mark.parametrize("raw", [False, True], ids=["u", "raw"])
@pytest.mark.parametrize("depth", [1, 6, 12, 24])
def test_generated(tmp_path, run, run_udfs, depth, raw, quad):
    """Every pixel type, RAW at every counter depth, single chip and quad: exact pixels, and the
    oracle's decoding of the written bytes gives the known arrays too."""
    rng = np.random.default_rng(100 + depth + 10 * raw + 20 * quad)
    shape = (512, 512) if quad else (256, 256)
    frames = gen_mib.random_frames(rng, 4, shape, depth)
    hp, paths = gen_mib.write_acquisition(tmp_path, "g", frames, depth, raw=raw, quad=quad,
                                          scan=(2, 2))
    _, oracle = read_mib(paths[0])
    assert np.array_equal(oracle, frames), "the generator and the oracle disagree"
    want_dt = {1: "u1", 6: "u1", 12: "u2", 24: "u4"}[depth]
    i = info(run, paths[0])
    assert tuple(i["nav_shape"]) == (2, 2) and tuple(i["sig_shape"]) == shape
    assert np.dtype(i["typestr"]).newbyteorder("=") == np.dtype(want_dt)
    full_check(run_udfs, hp, frames.astype(want_dt), (2, 2))


@pytest.mark.parametrize("depth", [1, 6, 12, 24])
def test_raw_quad_tiles_and_types(tmp_path, run_udfs, depth):
    """RAW quad read in row bands (small tiles) and converted to float: the same values."""
    rng = np.random.default_rng(200 + depth)
    frames = gen_mib.random_frames(rng, 6, (512, 512), depth)
    hp, _ = gen_mib.write_acquisition(tmp_path, "t", frames, depth, raw=True, quad=True,
                                      scan=(3, 2))
    for tb in ("4K", "100K"):
        full_check(run_udfs, hp, frames.astype(np.int64), (2, 3), "--tile-bytes", tb,
                   udfs=("sum", "sumsig", "stddev", "masks")[:3])
    res = run_udfs("masks", hp, "--param", "mask=disk:300,200,90", "--tile-bytes", "8K")
    check(res, expected(frames.reshape(2, 3, 512, 512).astype(np.int64), (2, 3), (512, 512),
                        ["masks"], masks=["disk:300,200,90"]))


@pytest.mark.parametrize("backend", ["pread", "mmap"])
def test_raw_backends(tmp_path, run_udfs, backend):
    rng = np.random.default_rng(7)
    frames = gen_mib.random_frames(rng, 5, (512, 512), 12)
    _, paths = gen_mib.write_acquisition(tmp_path, "b", frames, 12, raw=True, quad=True,
                                         hdr=False)
    full_check(run_udfs, paths[0], frames.astype(np.uint16), (5,), "--io-backend", backend)


def test_raw_sig_reshape(tmp_path, run_udfs):
    """sig_shape reshapes decoded RAW frames (flat pixels keep their order)."""
    rng = np.random.default_rng(8)
    frames = gen_mib.random_frames(rng, 4, (256, 256), 6)
    _, paths = gen_mib.write_acquisition(tmp_path, "r", frames, 6, raw=True, hdr=False)
    res = run_udfs("sum,pick", paths[0], "--set", "sig_shape=512,128", "--tile-bytes", "4K",
                   "--param", "nav=1,0")
    arr = frames.reshape(2, 2, 512, 128)
    assert np.array_equal(res["sum.intensity"], arr.reshape(4, 512, 128).sum(0))
    assert np.array_equal(res["pick.intensity"][0], arr[1, 0])


def test_multi_file_order_by_sequence(tmp_path, run, run_udfs):
    """Several numbered .mib files with a .hdr: ordered by their first sequence number (not by
    name), opened from the .hdr or from any .mib; ScanX/ScanY give the scan."""
    rng = np.random.default_rng(11)
    frames = gen_mib.random_frames(rng, 12, (256, 256), 12)
    # names in an order that differs from the sequence: x10 < x2 < x9 as text
    hp, paths = gen_mib.write_acquisition(tmp_path, "x", frames, 12, files=3, scan=(4, 3),
                                          names=["x9.mib", "x10.mib", "x2.mib"])
    for p in [hp] + paths:
        i = info(run, p)
        assert tuple(i["nav_shape"]) == (3, 4), (p, i["nav_shape"])
        assert i["meta"]["files"] == [str(q) for q in paths]
        assert i["meta"]["scan_shape_from"] == "hdr ScanX/ScanY"
    full_check(run_udfs, hp, frames.astype(np.uint16), (3, 4))
    # disable_glob: only the named file
    i = info(run, paths[1], "--set", "disable_glob=true")
    assert i["image_count"] == 4
    got = pick_all(run_udfs, paths[1], (4,), "--set", "disable_glob=true")
    assert np.array_equal(got, frames[4:8])


def test_multi_file_raw_sync_offset(tmp_path, run_udfs):
    """A RAW acquisition in files, read across file boundaries with a sync_offset."""
    rng = np.random.default_rng(12)
    frames = gen_mib.random_frames(rng, 9, (512, 512), 1)
    hp, _ = gen_mib.write_acquisition(tmp_path, "m", frames, 1, raw=True, quad=True, files=4)
    shifted = np.zeros_like(frames)
    shifted[:7] = frames[2:]
    full_check(run_udfs, hp, shifted.astype(np.uint8), (3, 3), "--set", "sync_offset=2")


def test_frames_per_trigger(tmp_path, run):
    rng = np.random.default_rng(13)
    frames = gen_mib.random_frames(rng, 12, (256, 256), 6)
    hp, _ = gen_mib.write_acquisition(tmp_path, "f", frames, 6, frames_per_trigger=4)
    i = info(run, hp)
    assert tuple(i["nav_shape"]) == (3, 4)
    assert i["meta"]["scan_shape_from"] == "hdr Frames per Trigger"


@pytest.mark.parametrize("n,nav", [(16, (4, 4)), (12, (12,)), (1, (1,))])
def test_fallback_nav(tmp_path, run, n, nav):
    """No scan in the .hdr (frames per trigger 1 or all): square if possible, else 1-D; the
    same without a .hdr."""
    rng = np.random.default_rng(14)
    frames = gen_mib.random_frames(rng, n, (256, 256), 12)
    hp, paths = gen_mib.write_acquisition(tmp_path, "s", frames, 12, frames_per_trigger=n)
    assert tuple(info(run, hp)["nav_shape"]) == nav
    os.unlink(hp)
    assert tuple(info(run, paths[0])["nav_shape"]) == nav
    assert tuple(info(run, paths[0], "--set", "nav_shape=%d" % n)["nav_shape"]) == (n,)


@pytest.mark.parametrize("hb", [256, 1000, 2048])
@pytest.mark.parametrize("raw", [False, True])
def test_header_sizes(tmp_path, run_udfs, hb, raw):
    """Frame headers of any size (the size field decides the stride)."""
    rng = np.random.default_rng(hb)
    frames = gen_mib.random_frames(rng, 4, (256, 256), 12)
    _, paths = gen_mib.write_acquisition(tmp_path, "h", frames, 12, raw=raw, hdr=False,
                                         header_bytes=hb)
    full_check(run_udfs, paths[0], frames.astype(np.uint16), (2, 2))


@pytest.mark.parametrize("rows", [128, 64])
@pytest.mark.parametrize("raw", [False, True])
def test_detector_roi(tmp_path, run, run_udfs, rows, raw):
    """Detector ROI: 256 x rows frames (also RAW)."""
    rng = np.random.default_rng(rows)
    frames = gen_mib.random_frames(rng, 6, (rows, 256), 1 if raw else 12)
    _, paths = gen_mib.write_acquisition(tmp_path, "roi", frames, 1 if raw else 12, raw=raw,
                                         hdr=False)
    assert tuple(info(run, paths[0], "--set", "nav_shape=6")["sig_shape"]) == (rows, 256)
    full_check(run_udfs, paths[0], frames.astype(np.uint8 if raw else np.uint16), (6,),
               "--set", "nav_shape=6")


def test_raw_depth_from_hdr_or_parameter(tmp_path, run, run_udfs):
    """Frame headers without the MQ1A extension: the RAW counter depth comes from the .hdr, or
    from counter_depth=; with neither it is an error that says so."""
    rng = np.random.default_rng(15)
    frames = gen_mib.random_frames(rng, 4, (256, 256), 12)
    p = tmp_path / "old.mib"
    gen_mib.write_mib(p, frames, 12, raw=True, extended=False)
    gen_mib.write_hdr(tmp_path / "old.hdr", 4, 12)
    assert info(run, p)["meta"]["counter_depth"] == 12
    full_check(run_udfs, p, frames.astype(np.uint16), (2, 2))
    os.unlink(tmp_path / "old.hdr")
    full_check(run_udfs, p, frames.astype(np.uint16), (2, 2), "--set", "counter_depth=12")


# ---------------------------------------------------------------------------
# Bad input


def one(tmp_path, name="bad", n=4, depth=12, raw=False, quad=False, hdr=False):
    rng = np.random.default_rng(99)
    frames = gen_mib.random_frames(rng, n, (512, 512) if quad else (256, 256), depth)
    hp, paths = gen_mib.write_acquisition(tmp_path, name, frames, depth, raw=raw, quad=quad,
                                          hdr=hdr)
    return hp, paths[0]


def test_bad_truncated(tmp_path, fails, run_udfs):
    hp, p = one(tmp_path, hdr=True)
    size = os.path.getsize(p)
    with open(p, "r+b") as f:
        f.truncate(size - 1000)
    for q in (hp, p):
        msg = fails("info", q)
        assert "truncated" in msg and "nav_shape" in msg, msg
    # with an explicit nav_shape the whole frames are readable
    h, frames = read_mib(p)
    assert frames.shape[0] == 3
    full_check(run_udfs, p, frames.astype(np.uint16), (3,), "--set", "nav_shape=3")
    # shorter than one frame
    with open(p, "r+b") as f:
        f.truncate(300)
    msg = fails("info", p)
    assert str(p) in msg and "truncated" in msg, msg


def test_bad_magic(tmp_path, fails):
    _, p = one(tmp_path)
    b = bytearray(pathlib.Path(p).read_bytes())
    b[:4] = b"XQ1,"
    pathlib.Path(p).write_bytes(bytes(b))
    msg = fails("info", p)
    assert str(p) in msg and "'MQ1,'" in msg and "XQ1," in msg, msg


@pytest.mark.parametrize("field,value,words", [
    (2, b"00000", ["header size", "00000"]),
    (4, b"0000", ["width", "0000"]),
    (5, b"99999", ["height", "99999"]),
    (3, b"xx", ["number of chips", "xx"]),
    (6, b"U12", ["pixel type", "U12", "U08"]),
])
def test_bad_header_field(tmp_path, fails, field, value, words):
    _, p = one(tmp_path)
    b = pathlib.Path(p).read_bytes()
    parts = b[:384].split(b",")
    parts[field] = value
    head = b",".join(parts)
    head = head[:384] + b"\0" * (384 - len(head))
    pathlib.Path(p).write_bytes(head + b[384:])
    msg = fails("info", p)
    assert str(p) in msg, msg
    for w in words:
        assert w in msg, (w, msg)


def test_bad_wrong_depth(tmp_path, fails):
    """A RAW file opened with the wrong counter depth: the next frame header is not where the
    frame size puts it."""
    _, p = one(tmp_path, raw=True, depth=12)
    msg = fails("info", p, "--set", "counter_depth=6")
    assert "MQ1," in msg and "counter depth" in msg, msg
    msg = fails("info", p, "--set", "counter_depth=7")
    assert "counter_depth" in msg and "7" in msg, msg


def test_bad_hdr_without_mib(tmp_path, fails):
    hp, p = one(tmp_path, hdr=True)
    os.unlink(p)
    msg = fails("info", hp)
    assert str(hp) in msg and "no .mib" in msg, msg


def test_bad_hdr_not_merlin(tmp_path, fails):
    p = tmp_path / "x.hdr"
    p.write_text("ENVI\nsamples = 3\n")
    msg = fails("info", p, "--format", "mib")
    assert str(p) in msg and "HDR," in msg, msg


def test_bad_empty(tmp_path, fails):
    p = tmp_path / "empty.mib"
    p.write_bytes(b"")
    msg = fails("info", p)
    assert str(p) in msg and "empty" in msg, msg
    h = tmp_path / "empty.hdr"
    h.write_bytes(b"")
    msg = fails("info", h, "--format", "mib")
    assert str(h) in msg and "empty" in msg, msg


def test_bad_missing_file_of_acquisition(tmp_path, fails):
    rng = np.random.default_rng(3)
    frames = gen_mib.random_frames(rng, 9, (256, 256), 12)
    hp, paths = gen_mib.write_acquisition(tmp_path, "gap", frames, 12, files=3)
    os.unlink(paths[1])
    msg = fails("info", hp)
    assert "missing" in msg and "sequence number 7" in msg and "expected 4" in msg, msg


def test_bad_mixed_files(tmp_path, fails):
    """A file of other frames in the acquisition's name pattern."""
    rng = np.random.default_rng(4)
    hp, paths = gen_mib.write_acquisition(tmp_path, "mix", gen_mib.random_frames(
        rng, 6, (256, 256), 12), 12, files=2)
    gen_mib.write_mib(paths[1], gen_mib.random_frames(rng, 3, (256, 256), 6), 6, first_seq=4)
    msg = fails("info", hp)
    assert "pixel type" in msg and "U08" in msg and "U16" in msg, msg


def test_bad_sequence_inside_file(tmp_path, fails):
    """Frames of one file with a jump in their sequence numbers (dropped frames)."""
    _, p = one(tmp_path, n=5)
    b = bytearray(pathlib.Path(p).read_bytes())
    stride = 384 + 256 * 256 * 2
    b[4 * stride + 4:4 * stride + 10] = b"000009"
    pathlib.Path(p).write_bytes(bytes(b))
    msg = fails("info", p)
    assert "sequence number 9" in msg and "expected 5" in msg, msg


def test_not_stealing_other_formats(testdata):
    """The MIB probe claims no file of the other formats' folders."""
    for d in sorted(testdata.iterdir()):
        if not d.is_dir() or d.name == "mib":
            continue
        for p in sorted(d.iterdir()):
            r = subprocess.run([os.environ["TSR_BIN"], "info", "--json", str(p)],
                               capture_output=True, text=True, timeout=60)
            if r.returncode == 0:
                assert json.loads(r.stdout)["format"] != "mib", p
            else:
                assert "MIB" not in r.stderr and ".hdr" not in r.stderr, (p, r.stderr)


def test_other_extension_opens_alone(tmp_path, run, run_udfs):
    """A MIB file under another name is detected by its magic and read alone, even beside a
    .hdr of the same stem."""
    rng = np.random.default_rng(16)
    frames = gen_mib.random_frames(rng, 3, (256, 256), 6)
    hp, paths = gen_mib.write_acquisition(tmp_path, "o", frames, 6, files=1)
    other = tmp_path / "o.dat"
    os.replace(paths[0], other)
    i = info(run, other)
    assert i["format"] == "mib" and i["image_count"] == 3 and "hdr_file" not in i["meta"]
    full_check(run_udfs, other, frames.astype(np.uint8), (3,))
