#!/usr/bin/python3
"""Write PNDetector pnCCD data sets (FRMS6) from the published layout, as LiberTEM's
FRMS6 reader and stemtool's Frms6Reader describe it: "<base>.hdr", an INI file with a
[measurementInfo] section (darkFrames, signalFrames, stemImageSize "AxB", readoutMode
"bin: N, windowing: A x B", ...), and "<base>_000.frms6" (dark frames), "_001", ...
(signal frames).  Each .frms6 file has a 1024-byte little-endian header (header size
1024 at byte 0, frame header size 64 at 2, version 6 at byte 7, a data set id at 8,
width at 88, height at 90, frame count at 1020) and frames of a 64-byte header
(timestamp s and us at 4 and 8, frame number at 12) and height x width uint16 pixels.

A raw frame is folded: raw row r holds, left, row r of the frame's top half and,
right, row 2 height - 1 - r of its bottom half mirrored.  The frames given here are
the *binned* unfolded frames (2 height, width / 2): with binning N a reader shows each
row N times.

Used by tests/integration/test_fmt_frms6.py (import write_frms6) and from the command
line for benchmark data:

    gen_frms6.py OUT_BASE --shape NY,NX [--bin 1] [--dark 10] [--per-file 2000]
"""

import argparse
import struct
import sys

import numpy as np


def fold(frames):
    """(n, 2h, w) unfolded binned frames -> (n, h, 2w) raw frames."""
    frames = np.asarray(frames)
    n, h2, w = frames.shape
    h = h2 // 2
    raw = np.empty((n, h, 2 * w), frames.dtype)
    raw[:, :, :w] = frames[:, :h]
    raw[:, :, w:] = frames[:, h2 - 1:h - 1:-1, ::-1]  # row 2h-1-r, mirrored
    return raw


def file_header(width, height, n, declare=True, header_size=1024, frame_header=64, version=6,
                dataset_id="tessera test"):
    b = bytearray(1024)
    struct.pack_into("<HH", b, 0, header_size, frame_header)
    b[7] = version
    d = dataset_id.encode()[:80]
    b[8:8 + len(d)] = d
    struct.pack_into("<HH", b, 88, width, height)
    struct.pack_into("<I", b, 1020, n if declare else 0)
    return bytes(b)


def frame_header(i, t0=1_600_000_000):
    b = bytearray(64)
    struct.pack_into("<III", b, 4, t0 + i // 1000, (i % 1000) * 1000, i)
    return bytes(b)


def write_file(path, frames, first_index=0, declare=True, **kw):
    raw = fold(frames).astype("<u2")
    n, h, w = raw.shape
    with open(path, "wb") as f:
        f.write(file_header(w, h, n, declare, **kw))
        for i in range(n):
            f.write(frame_header(first_index + i))
            f.write(raw[i].tobytes())


def hdr_text(nav, n_dark, n_signal, binning, window=(264, 264), gain=3, dwell=10,
             extra=""):
    lines = ["[measurementInfo]",
             f"darkFrames={n_dark}",
             f"signalFrames={n_signal}",
             f"dwellTimeMicroSeconds={dwell}",
             f"gain={gain}",
             f'readoutMode="bin: {binning}, windowing: {window[0]} x {window[1]} "']
    if nav is not None:
        lines.append(f"stemImageSize={nav[0]}x{nav[1]}")
    return "\n".join(lines) + "\n" + extra + "\n[other]\nfoo=bar\n"


def write_frms6(base, frames, dark, nav=None, binning=1, per_file=None, declare=True,
                hdr=True, signal_frames=None):
    """frames: (n, 2h, w) uint16 binned unfolded signal frames; dark: (m, 2h, w).
    Writes <base>.hdr (unless hdr=False), <base>_000.frms6 with the dark frames and
    the signal frames in files of per_file frames (default: one file).  Returns the
    list of .frms6 paths."""
    frames = np.asarray(frames, np.uint16)
    dark = np.asarray(dark, np.uint16)
    n = frames.shape[0]
    per_file = per_file or max(n, 1)
    paths = [f"{base}_000.frms6"]
    write_file(paths[0], dark, declare=declare)
    for k, i0 in enumerate(range(0, n, per_file)):
        p = f"{base}_{k + 1:03d}.frms6"
        write_file(p, frames[i0:i0 + per_file], i0, declare=declare)
        paths.append(p)
    if hdr:
        with open(f"{base}.hdr", "w") as f:
            f.write(hdr_text(nav, dark.shape[0], n if signal_frames is None else signal_frames,
                             binning))
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base", help="e.g. dir/scan (writes scan.hdr, scan_000.frms6, ...)")
    ap.add_argument("--shape", required=True, help="scan NY,NX")
    ap.add_argument("--bin", type=int, default=1)
    ap.add_argument("--dark", type=int, default=10, help="dark frames")
    ap.add_argument("--per-file", type=int, default=2000, help="signal frames per file")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    nav = tuple(int(x) for x in a.shape.split(","))
    if len(nav) != 2 or min(nav) < 1:
        ap.error("--shape needs two positive sizes NY,NX")
    rng = np.random.default_rng(a.seed)
    h2, w = 264 // a.bin, 264
    n = nav[0] * nav[1]
    dark = rng.integers(0, 1000, size=(a.dark, h2, w), dtype=np.uint16)
    write_file(f"{a.base}_000.frms6", dark)
    for k, i0 in enumerate(range(0, n, a.per_file)):
        m = min(a.per_file, n - i0)
        with open(f"{a.base}_{k + 1:03d}.frms6", "wb") as f:
            f.write(file_header(2 * w, h2 // 2, m))
            for c0 in range(0, m, 500):
                c = min(500, m - c0)
                raw = fold(rng.integers(0, 4096, size=(c, h2, w), dtype=np.uint16))
                rec = np.zeros((c, 64 + raw[0].nbytes), np.uint8)
                for j in range(c):
                    rec[j, :64] = np.frombuffer(frame_header(i0 + c0 + j), np.uint8)
                rec[:, 64:] = raw.astype("<u2").reshape(c, -1).view(np.uint8)
                f.write(rec.tobytes())
    with open(f"{a.base}.hdr", "w") as f:
        f.write(hdr_text(nav, a.dark, n, a.bin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
