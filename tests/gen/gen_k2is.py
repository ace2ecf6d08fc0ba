#!/usr/bin/python3
"""Write Gatan K2 IS raw data sets (8 sector files "<prefix><k>.bin", k = 1..8, and the
tag file "<prefix>.gtg") from the published layout, as LiberTEM's K2IS reader describes
it: each sector file is a run of 22360-byte blocks, a 40-byte big-endian header (sync
0xFFFF0055, version, flags with bit 0 = shutter active, block counter, sector width 256
and height 1860, frame id, the block's first/last pixel x and y within the sector,
block size) and 930 x 16 pixels of 12 bits packed little-endian (two pixels in three
bytes).  A frame is 32 blocks per sector: block b holds rows 930 * (b // 16) and
columns 240 - 16 * (b % 16) of the sector; sector s holds columns 256 s .. 256 s + 255
of the 1860 x 2048 frame.  The .gtg is a DigitalMicrograph tag tree (DM4 or DM3) with
"SI Dimensions" / "Size Y", "Size X".

Used by tests/integration/test_fmt_k2is.py (import write_k2is) and from the command
line for benchmark data:

    gen_k2is.py OUT_PREFIX --shape NY,NX [--pre 3] [--seed 1]
"""

import argparse
import struct
import sys

import numpy as np

BLOCK = 22360
HDR = 40
H, W, SW = 1860, 2048, 256
SYNC = 0xFFFF0055


def pack12(px):
    """(..., 2k) values < 4096 -> (..., 3k) bytes, least significant bits first."""
    px = px.astype(np.uint16)
    a = px[..., 0::2]
    b = px[..., 1::2]
    out = np.empty(px.shape[:-1] + (px.shape[-1] // 2, 3), np.uint8)
    out[..., 0] = a & 0xFF
    out[..., 1] = (a >> 8) | ((b & 0xF) << 4)
    out[..., 2] = b >> 4
    return out.reshape(px.shape[:-1] + (-1,))


def sector_blocks(frame, s):
    """The 32 blocks' pixels of sector s of a frame: (32, 930 * 16) in block order."""
    sec = frame[:, s * SW:(s + 1) * SW]
    # (block row, row, block column c, px): block b = 16 * br + k sits at c = 15 - k
    a = sec.reshape(2, 930, 16, 16).transpose(0, 2, 1, 3)[:, ::-1]
    return a.reshape(32, 930 * 16)


HEADER = np.dtype([("sync", ">u4"), ("pad1", "V4"), ("version", "u1"), ("flags", "u1"),
                   ("pad2", "V6"), ("block_count", ">u4"), ("width", ">u2"),
                   ("height", ">u2"), ("frame_id", ">u4"), ("x0", ">u2"), ("y0", ">u2"),
                   ("x1", ">u2"), ("y1", ">u2"), ("block_size", ">u4")])
assert HEADER.itemsize == HDR


def frame_records(frame, s, frame_id, flags, block_count0, version=2, sync=SYNC):
    """The 32 blocks (32, 22360) bytes of sector s of one frame."""
    h = np.zeros(32, HEADER)
    b = np.arange(32)
    h["sync"] = sync
    h["version"] = version
    h["flags"] = flags
    h["block_count"] = block_count0 + b
    h["width"] = SW
    h["height"] = H
    h["frame_id"] = frame_id
    h["x0"] = 240 - 16 * (b % 16)
    h["y0"] = 930 * (b // 16)
    h["x1"] = h["x0"] + 15
    h["y1"] = h["y0"] + 929
    h["block_size"] = BLOCK
    rec = np.empty((32, BLOCK), np.uint8)
    rec[:, :HDR] = h.view(np.uint8).reshape(32, HDR)
    rec[:, HDR:] = pack12(sector_blocks(frame, s))
    return rec


# ---- the .gtg: a DigitalMicrograph tag tree -------------------------------

def _word(v, version):
    return struct.pack(">Q" if version == 4 else ">I", v)


def _data_tag(name, info, data, version):
    body = b"%%%%" + _word(len(info), version) + b"".join(_word(i, version) for i in info) + data
    head = struct.pack(">BH", 21, len(name)) + name.encode("latin-1")
    if version == 4:
        head += struct.pack(">Q", len(body))
    return head + body


def _group_tag(name, tags, version):
    body = struct.pack(">BB", 0, 1) + _word(len(tags), version) + b"".join(tags)
    head = struct.pack(">BH", 20, len(name)) + name.encode("latin-1")
    if version == 4:
        head += struct.pack(">Q", len(body))
    return head + body


def gtg_bytes(nav=None, version=4, without_flyback=None, size_type="i4"):
    """A tag file; nav (ny, nx) as SI Dimensions Size Y / Size X (omitted if None),
    with a few other tags around them (a string, an array, a struct) to skip."""
    code, fmt = {"i4": (3, "<i"), "u4": (5, "<I"), "f8": (7, "<d"), "u2": (4, "<H")}[size_type]
    t = []
    t.append(_data_tag("Name", [18, 5], "K2 IS".encode("utf-16-le"), version))
    t.append(_data_tag("Data", [20, 6, 4], struct.pack("<4f", 1, 2, 3, 4), version))
    t.append(_data_tag("Origin", [15, 0, 2, 0, 7, 0, 7], struct.pack("<2d", 0.5, 1.5), version))
    if nav is not None:
        ny, nx = nav
        t.append(_group_tag("SI Dimensions", [
            _data_tag("Size X", [code], struct.pack(fmt, nx), version),
            _data_tag("Size Y", [code], struct.pack(fmt, ny), version),
        ], version))
    if without_flyback is not None:
        h, w = without_flyback
        samp = _group_tag("Spatial Sampling", [
            _data_tag("Height (pixels)", [3], struct.pack("<i", h), version),
            _data_tag("Width (pixels)", [3], struct.pack("<i", w), version)], version)
        t.append(_group_tag("SI Image Tags", [_group_tag("SI", [
            _group_tag("Acquisition", [samp], version)], version)], version))
    root = struct.pack(">BB", 0, 1) + _word(len(t), version) + b"".join(t)
    if version == 4:
        return struct.pack(">IQI", 4, len(root), 1) + root
    return struct.pack(">III", 3, len(root), 1) + root


# ---- the data set ---------------------------------------------------------

def write_k2is(prefix, frames, pre=None, nav=None, gtg=4, lead_blocks=None,
               extra_frames=None, tail_blocks=None, frame_id0=100, version=2,
               without_flyback=None, size_type="i4", no_shutter=False):
    """frames: (n, 1860, 2048) values < 4096, the frames with the shutter flag.
    pre: (m, 1860, 2048) frames before them (shutter flag clear), or None.
    nav: the scan shape written to the .gtg (None: no SI Dimensions).
    gtg: 4 or 3 (DM version), or None for no .gtg file.
    lead_blocks[s]: sector s starts with that many trailing blocks of an earlier,
    incomplete frame; extra_frames[s]: and before image data with that many whole
    earlier frames (frame ids before the others'); tail_blocks[s]: it ends with that
    many blocks of a frame after the last.  Filler pixels are 4095.
    Returns the paths of the 8 sector files and of the .gtg (or None)."""
    frames = np.asarray(frames)
    assert frames.ndim == 3 and frames.shape[1:] == (H, W) and frames.max(initial=0) < 4096
    pre = np.zeros((0, H, W), np.uint16) if pre is None else np.asarray(pre)
    lead_blocks = lead_blocks or [0] * 8
    extra_frames = extra_frames or [0] * 8
    tail_blocks = tail_blocks or [0] * 8
    filler = np.full((H, W), 4095, np.uint16)
    paths = []
    all_frames = list(pre) + list(frames)
    n_pre = len(pre)
    for s in range(8):
        path = f"{prefix}{s + 1}.bin"
        paths.append(path)
        with open(path, "wb") as f:
            base_id = frame_id0 - extra_frames[s]
            bc = 1000 + 32 * base_id
            if lead_blocks[s]:
                rec = frame_records(filler, s, base_id - 1, 0, bc - 32, version)
                f.write(rec[32 - lead_blocks[s]:].tobytes())
            for k in range(extra_frames[s]):
                f.write(frame_records(filler, s, base_id + k, 0, bc + 32 * k, version).tobytes())
            for i, fr in enumerate(all_frames):
                flags = 1 if i >= n_pre and not no_shutter else 0
                fid = frame_id0 + i
                f.write(frame_records(fr, s, fid, flags, 1000 + 32 * fid, version).tobytes())
            if tail_blocks[s]:
                fid = frame_id0 + len(all_frames)
                rec = frame_records(filler, s, fid, 1, 1000 + 32 * fid, version)
                f.write(rec[:tail_blocks[s]].tobytes())
    gtg_path = None
    if gtg:
        gtg_path = f"{prefix}.gtg"
        with open(gtg_path, "wb") as f:
            f.write(gtg_bytes(nav, gtg, without_flyback, size_type))
    return paths, gtg_path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prefix", help="e.g. dir/Capture_ (writes Capture_1.bin .. _8.bin, .gtg)")
    ap.add_argument("--shape", required=True, help="scan NY,NX")
    ap.add_argument("--pre", type=int, default=2, help="frames before the shutter flag")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    nav = tuple(int(x) for x in a.shape.split(","))
    if len(nav) != 2 or min(nav) < 1:
        ap.error("--shape needs two positive sizes NY,NX")
    n = nav[0] * nav[1]
    rng = np.random.default_rng(a.seed)
    # a few distinct frames, repeated: packing is the slow part of writing
    pool = [rng.integers(0, 4096, size=(H, W), dtype=np.uint16) for _ in range(4)]
    recs = [[frame_records(p, s, 0, 1, 0) for s in range(8)] for p in pool]
    files = [open(f"{a.prefix}{s + 1}.bin", "wb") for s in range(8)]
    h = np.zeros(32, HEADER)
    for i in range(a.pre + n):
        fid = 100 + i
        for s in range(8):
            r = recs[i % len(pool)][s].copy()
            h = r[:, :HDR].copy().view(HEADER).reshape(32)
            h["frame_id"] = fid
            h["block_count"] = 1000 + 32 * fid + np.arange(32)
            h["flags"] = 1 if i >= a.pre else 0
            r[:, :HDR] = h.view(np.uint8).reshape(32, HDR)
            files[s].write(r.tobytes())
    for f in files:
        f.close()
    with open(f"{a.prefix}.gtg", "wb") as f:
        f.write(gtg_bytes(nav))
    return 0


if __name__ == "__main__":
    sys.exit(main())
