#!/usr/bin/python3
"""Write Norpix StreamPix sequences (.seq) from the published header layout (StreamPix
manual; as read by pims' norpix_reader and LiberTEM's SEQ reader): magic 0xFEED, the
UTF-16 name "Norpix seq", version, header size, a UTF-16 description, then at byte 548
width, height, bit depth, real bit depth, image size in bytes, image format (100 =
monochrome), allocated frames, origin, true image size (the frame stride), frame rate
(f64), ..., compression format at byte 620.  Frames start at byte 1024 (version < 5) or
8192 (version >= 5); each is followed by a footer starting with its timestamp (u32
seconds, u16 ms and, from version 5, u16 us), padded to the stride.

Used by tests/integration/test_fmt_seq.py (import write_seq) and from the command line
to make big files for benchmarks:

    gen_seq.py OUT.seq --shape N,H,W [--dtype u2] [--version 5] [--footer 8] [--seed 1]
"""

import argparse
import struct
import sys

import numpy as np


def header_bytes(n, h, w, bit_depth=16, version=5, footer=8, description="Tessera test",
                 frame_rate=25.0, image_format=100, compression=0, bit_depth_real=None,
                 magic=0xFEED, image_size=None, stride=None):
    size = 8192 if version >= 5 else 1024
    b = bytearray(size)
    frame = w * h * bit_depth // 8
    struct.pack_into("<I", b, 0, magic)
    name = "Norpix seq".encode("utf-16-le")
    b[4:4 + len(name)] = name
    struct.pack_into("<ii", b, 28, version, 1024)
    d = description.encode("utf-16-le")[:510]
    b[36:36 + len(d)] = d
    struct.pack_into("<9I", b, 548, w, h, bit_depth,
                     bit_depth if bit_depth_real is None else bit_depth_real,
                     frame if image_size is None else image_size, image_format, n, 0,
                     frame + footer if stride is None else stride)
    struct.pack_into("<d", b, 584, frame_rate)
    struct.pack_into("<I", b, 620, compression)
    return bytes(b)


def footer_bytes(i, version, footer, t0=1_700_000_000):
    """The footer of frame i: its timestamp (t0 + i * 0.040 s), zero padded."""
    ms_total = i * 40
    if version >= 5:
        ts = struct.pack("<IHH", t0 + ms_total // 1000, ms_total % 1000, 123)
    else:
        ts = struct.pack("<IH", t0 + ms_total // 1000, ms_total % 1000)
    return (ts + bytes(max(footer - len(ts), 0)))[:footer]


def write_seq(path, frames, version=5, footer=8, **kw):
    """frames: (n, h, w) uint8 or uint16."""
    frames = np.asarray(frames)
    assert frames.ndim == 3 and frames.dtype in (np.uint8, np.uint16)
    n, h, w = frames.shape
    with open(path, "wb") as f:
        f.write(header_bytes(n, h, w, frames.dtype.itemsize * 8, version, footer, **kw))
        for i in range(n):
            f.write(frames[i].astype(frames.dtype.newbyteorder("<")).tobytes())
            f.write(footer_bytes(i, version, footer))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--shape", required=True, help="N,H,W")
    ap.add_argument("--dtype", default="u2", choices=["u1", "u2"])
    ap.add_argument("--version", type=int, default=5)
    ap.add_argument("--footer", type=int, default=8, help="footer bytes after each frame")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    shape = tuple(int(x) for x in a.shape.split(","))
    if len(shape) != 3 or min(shape) < 1:
        ap.error("--shape needs three positive sizes N,H,W")
    n, h, w = shape
    dt = np.dtype(a.dtype)
    rng = np.random.default_rng(a.seed)
    with open(a.out, "wb") as f:
        f.write(header_bytes(n, h, w, dt.itemsize * 8, a.version, a.footer))
        per = max(1, (64 << 20) // (h * w * dt.itemsize))  # ~64 MiB per write
        for i0 in range(0, n, per):
            k = min(per, n - i0)
            x = rng.integers(0, np.iinfo(dt).max, size=(k, h * w), endpoint=True, dtype=dt)
            rec = np.zeros((k, h * w * dt.itemsize + a.footer), np.uint8)
            rec[:, :h * w * dt.itemsize] = x.astype(dt.newbyteorder("<")).view(np.uint8)
            for j in range(k):
                rec[j, h * w * dt.itemsize:] = np.frombuffer(
                    footer_bytes(i0 + j, a.version, a.footer), np.uint8)
            f.write(rec.tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
