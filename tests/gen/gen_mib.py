#!/usr/bin/python3
"""Write Quantum Detectors Merlin MIB acquisitions (.mib frames + optional .hdr)
from known pixel arrays, following the published layout:

- every frame is an ASCII header padded with NULs to its header size
  ("MQ1,<seq>,<header bytes>,<chips>,<width>,<height>,<type>,<layout>,<chip
  select>,<time>,<shutter>,0,0,0,<8 thresholds>,<per chip: 3RX + 27 DACs>,
  MQ1A,<ISO time>,<exposure>ns,<counter depth>,") followed by the pixels;
- U08 / U16 / U32: big-endian counters, frames already assembled (quad
  512x512);
- R64 (RAW): the readout as 64-bit words stored byte-reversed: 1-bit
  counters packed LSB first, 6-bit ones as bytes, 12-bit ones as 16-bit
  values; 24-bit frames are two 12-bit images (high 12 bits first) side by
  side in the header's width.  Quad RAW: a raw row is [chip 4 | chip 3 |
  chip 2 | chip 1] for the frame's top rows (chips 1, 2) and, rotated by
  180°, its bottom rows (chips 3, 4); the header gives 4 chip widths x the
  chip height (1024 x 256).

No real RAW sample exists at 6, 12 and 24 bits (nor 24-bit RAW quad); these
files follow the layout above (as LiberTEM reads RAW files).

Importable (write_mib, write_hdr, write_acquisition, encode_frames) and a CLI
that writes large files in chunks:

    gen_mib.py OUT.mib --shape N,H,W [--depth 1|6|12|24] [--raw] [--quad]
        [--files K] [--hdr] [--scan X,Y] [--header-bytes B] [--seed S] [--max V]
"""
import argparse
import os
import sys

import numpy as np

PTYPE = {1: "U08", 6: "U08", 12: "U16", 24: "U32"}
NP_TYPE = {"U08": ">u1", "U16": ">u2", "U32": ">u4"}
DACS = "011,511,000,000,000,000,000,000,175,010,200,125,100,100,093,100,099,030,128,004,255,140,128,191,179,511,511"


def frame_header(seq, header_bytes, chips, width, height, ptype, layout, depth, extended=True):
    """One frame header, NUL-padded to header_bytes (without the DACs if they do not fit)."""
    head = ["MQ1", "%06d" % seq, "%05d" % header_bytes, "%02d" % chips, "%04d" % width,
             "%04d" % height, ptype, "%6s" % layout, "0F" if chips == 4 else "01",
             "2021-04-15 14:44:15.862206", "0.001000", "0", "0", "0",
             "2.000000E+0", "5.110000E+2"] + ["0.000000E+0"] * 6
    ext = ["MQ1A", "2021-04-15T13:44:15.862206301Z", "1000000ns", str(depth)] if extended else []
    text = (",".join(head + ["3RX", DACS] * chips + ext) + ",").encode("ascii")
    if len(text) > header_bytes:
        text = (",".join(head + ext) + ",").encode("ascii")
    if len(text) > header_bytes:
        raise ValueError("header of %d bytes does not fit in %d" % (len(text), header_bytes))
    return text + b"\0" * (header_bytes - len(text))


def _words_reversed(b, n):
    """Reverse the bytes of every 8-byte word of the (n, bytes) array b."""
    return b.reshape(n, -1, 8)[:, :, ::-1].reshape(n, -1)


def _encode_stream(x, depth):
    """(n, rows, px) counters -> (n, bytes) R64 words of one raw image."""
    n = x.shape[0]
    x = x.reshape(n, -1)
    if depth == 1:
        packed = np.packbits((x & 1).astype(np.uint8), axis=1, bitorder="little")
        return _words_reversed(packed, n)
    if depth == 6:
        return _words_reversed(x.astype(np.uint8), n)
    le = np.ascontiguousarray(x.astype("<u2")).view(np.uint8).reshape(n, -1)
    return _words_reversed(le, n)


def _raw_image(frames, quad):
    """Assembled frames (n, H, W) -> raw images (n, rows, px)."""
    if not quad:
        return frames
    n, h, w = frames.shape
    r, cw = h // 2, w // 2
    raw = np.empty((n, r, 4 * cw), frames.dtype)
    raw[:, :, 3 * cw:] = frames[:, :r, :cw]
    raw[:, :, 2 * cw:3 * cw] = frames[:, :r, cw:]
    raw[:, :, cw:2 * cw] = frames[:, r:, :cw][:, ::-1, ::-1]
    raw[:, :, :cw] = frames[:, r:, cw:][:, ::-1, ::-1]
    return raw


def header_dims(shape, depth, raw, quad):
    """(width, height) the frame header gives for frames of shape (H, W)."""
    h, w = shape
    if raw and quad:
        w, h = 2 * w, h // 2
    if raw and depth == 24:
        w *= 2
    return w, h


def encode_frames(frames, depth, raw=False, quad=False):
    """(n, H, W) integer counters -> (n, bytes) pixel data of n frames."""
    frames = np.asarray(frames)
    n = frames.shape[0]
    if not raw:
        return np.ascontiguousarray(frames.astype(NP_TYPE[PTYPE[depth]])).view(np.uint8) \
            .reshape(n, -1)
    img = _raw_image(frames.astype(np.uint32), quad)
    if depth == 24:
        return np.concatenate([_encode_stream(img >> 12, 12), _encode_stream(img & 0xFFF, 12)],
                              axis=1)
    return _encode_stream(img, depth)


def default_header_bytes(quad):
    return 768 if quad else 384


def write_mib(path, frames, depth, raw=False, quad=False, first_seq=1, header_bytes=None,
              extended=True, mode="wb"):
    """Write (or append, mode="ab") frames (n, H, W) as one .mib file."""
    frames = np.asarray(frames)
    hb = header_bytes or default_header_bytes(quad)
    w, h = header_dims(frames.shape[1:], depth, raw, quad)
    ptype = "R64" if raw else PTYPE[depth]
    layout = "2x2" if quad else "1x1"
    data = encode_frames(frames, depth, raw, quad)
    with open(path, mode) as f:
        for i in range(frames.shape[0]):
            f.write(frame_header(first_seq + i, hb, 4 if quad else 1, w, h, ptype, layout, depth,
                                 extended))
            f.write(data[i].tobytes())


def write_hdr(path, n_frames, depth, quad=False, scan=None, frames_per_trigger=1):
    """The .hdr acquisition header; scan=(x, y) adds ScanX / ScanY."""
    lines = [
        "HDR,\t",
        "Time and Date Stamp (day, mnth, yr, hr, min, s):\t15/04/2021 14:44:41",
        "Chip ID:\tW556_B4,W556_J2,W556_M5,W556_G4" if quad else "Chip ID:\tW559_G11, - , - , - ",
        "Chip Type (Medipix 3.0, Medipix 3.1, Medipix 3RX):\tMedipix 3RX",
        "Assembly Size (NX1, 2X2):\t   %s" % ("2x2" if quad else "1x1"),
        "Chip Mode  (SPM, CSM, CM, CSCM):\tSPM",
        "Counter Depth (number):\t%d" % depth,
        "Gain:\tSLGM",
        "Active Counters:\tCounter 0",
        "Frames in Acquisition (Number):\t%d" % n_frames,
        "Frames per Trigger (Number):\t%d" % frames_per_trigger,
        "Trigger Start (Positive, Negative, Internal):\tInternal",
        "Readout System:\tMerlin Quad",
        "Software Version:\t1.5.0.197",
    ]
    if scan:
        lines += ["ScanX:\t%d" % scan[0], "ScanY:\t%d" % scan[1]]
    text = ("\r\n".join(lines) + "\r\nEnd\t").encode("ascii")
    with open(path, "wb") as f:
        f.write(text + b" " * max(0, 2048 - len(text)))


def write_acquisition(folder, stem, frames, depth, raw=False, quad=False, files=1, hdr=True,
                      scan=None, frames_per_trigger=1, first_seq=1, header_bytes=None,
                      names=None):
    """Write frames as an acquisition of `files` .mib files (numbered stem1.mib, stem2.mib, ...;
    a single file is stem.mib) plus stem.hdr.  names: explicit file names, one per file (in
    sequence order).  Returns (hdr path or None, list of .mib paths in sequence order)."""
    frames = np.asarray(frames)
    n = frames.shape[0]
    bounds = np.linspace(0, n, files + 1).astype(int)
    paths = []
    for k in range(files):
        if names:
            name = names[k]
        else:
            name = "%s.mib" % stem if files == 1 else "%s%d.mib" % (stem, k + 1)
        p = os.path.join(str(folder), name)
        write_mib(p, frames[bounds[k]:bounds[k + 1]], depth, raw, quad,
                  first_seq=first_seq + int(bounds[k]), header_bytes=header_bytes)
        paths.append(p)
    hp = None
    if hdr:
        hp = os.path.join(str(folder), "%s.hdr" % stem)
        write_hdr(hp, n, depth, quad, scan, frames_per_trigger)
    return hp, paths


def random_frames(rng, n, shape, depth, vmax=None):
    hi = (1 << depth) if vmax is None else min(vmax + 1, 1 << depth)
    return rng.integers(0, hi, size=(n,) + tuple(shape), dtype=np.uint32)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="OUT.mib (several files: OUT1.mib, OUT2.mib, ...)")
    ap.add_argument("--shape", required=True, help="N,H,W: frames and the assembled frame shape")
    ap.add_argument("--depth", type=int, default=12, choices=(1, 6, 12, 24))
    ap.add_argument("--raw", action="store_true", help="R64 (RAW) frames")
    ap.add_argument("--quad", action="store_true", help="2x2 chips")
    ap.add_argument("--files", type=int, default=1)
    ap.add_argument("--hdr", action="store_true", help="also write OUT.hdr")
    ap.add_argument("--scan", help="X,Y: ScanX and ScanY in the .hdr")
    ap.add_argument("--header-bytes", type=int)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max", type=int, help="largest counter value (default: 2^depth - 1)")
    ap.add_argument("--chunk", type=int, default=256, help="frames generated at a time")
    a = ap.parse_args(argv)
    n, h, w = (int(x) for x in a.shape.split(","))
    rng = np.random.default_rng(a.seed)
    stem = a.out[:-4] if a.out.lower().endswith(".mib") else a.out
    scan = tuple(int(x) for x in a.scan.split(",")) if a.scan else None
    bounds = np.linspace(0, n, a.files + 1).astype(int)
    for k in range(a.files):
        path = "%s.mib" % stem if a.files == 1 else "%s%d.mib" % (stem, k + 1)
        mode = "wb"
        for c0 in range(int(bounds[k]), int(bounds[k + 1]), a.chunk):
            c1 = min(c0 + a.chunk, int(bounds[k + 1]))
            write_mib(path, random_frames(rng, c1 - c0, (h, w), a.depth, a.max), a.depth, a.raw,
                      a.quad, first_seq=1 + c0, header_bytes=a.header_bytes, mode=mode)
            mode = "ab"
    if a.hdr:
        write_hdr("%s.hdr" % stem, n, a.depth, a.quad, scan)
    return 0


if __name__ == "__main__":
    sys.exit(main())
