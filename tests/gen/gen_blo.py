#!/usr/bin/python3
"""Write NanoMegas ASTAR blockfiles (.blo) from the published layout.

Layout (little-endian): a 240-byte header ("IMGBLO", u16 magic 0x0102 or
0x0103, u32 Data_offset_1, u32 Data_offset_2, u32 unknown, u16 DP_SZ,
u16 DP_rotation, u16 NX, u16 NY, u16 Scan_rotation, f64 SX, f64 SY,
u32 Beam_energy, u16 SDP, u32 Camera_length, f64 Acquisition_time, 22 f64
centering/distortion terms), a text Note up to Data_offset_1, a virtual
bright-field image (NX*NY u8) at Data_offset_1, and from Data_offset_2 one
record per frame: bytes AA 55, the u32 frame number, DP_SZ*DP_SZ pixels
(u8, or u16 when the Note says "Blo Bit Depth: 16 bits").

As a module: write_blo(path, data, ...) with data of shape (NY, NX, DP, DP).
As a program: gen_blo.py OUT --shape NY,NX,DP,DP [--dtype u1|u2] [--magic
0x0103] [--seed N] writes random frames in chunks, so it can make big files.
"""

import argparse
import struct
import sys

import numpy as np

HEADER_SIZE = 240
OFFSET_1 = 0x1000


def header_bytes(nx, ny, dp, *, magic=0x0102, offset2, sx=1.5, sy=2.5, sdp=5000,
                 beam_energy=200000, camera_length=1500, scan_rotation=1250,
                 dp_rotation=0, acquisition_time=43831.5, offset1=OFFSET_1):
    head = b"IMGBLO" + struct.pack(
        "<HIIIHHHHHddIHId", magic, offset1, offset2, 0x20045, dp, dp_rotation, nx, ny,
        scan_rotation, sx, sy, beam_energy, sdp, camera_length, acquisition_time)
    head += b"\0" * (HEADER_SIZE - len(head))
    assert len(head) == HEADER_SIZE
    return head


def default_note(bits, magic):
    note = "Precession angle : 0.5\r\nPrecession Frequency : 100\r\n"
    if magic == 0x0103:
        note += f"Blo Bit Depth: {bits} bits\r\n"
    return note


def _prefix(nx, ny, dp, bits, magic, note, offset2=None, **kw):
    """Header + Note + VBF + padding, and Data_offset_2."""
    if note is None:
        note = default_note(bits, magic)
    nb = note.encode("latin1")
    assert HEADER_SIZE + len(nb) <= OFFSET_1
    if offset2 is None:
        offset2 = OFFSET_1 + nx * ny
        offset2 += (-offset2) % 16
    head = header_bytes(nx, ny, dp, magic=magic, offset2=offset2, **kw)
    body = head + nb + b"\0" * (OFFSET_1 - HEADER_SIZE - len(nb))
    vbf = (np.arange(nx * ny) % 251).astype(np.uint8).tobytes()
    body += vbf + b"\0" * (offset2 - OFFSET_1 - len(vbf))
    return body, offset2


def record(i, frame):
    return b"\xaa\x55" + struct.pack("<I", i) + np.ascontiguousarray(frame).astype(
        frame.dtype.newbyteorder("<")).tobytes()


def write_blo(path, data, *, magic=None, note=None, **kw):
    """Write data (NY, NX, DP, DP), dtype u1 or u2, as a blockfile.  magic
    defaults to 0x0102 for u1 and 0x0103 (with the bit depth in the Note)
    for u2; pass note="" to leave the bit depth out.  Other keywords set
    header fields (sx, sy, sdp, beam_energy, ...)."""
    data = np.asarray(data)
    ny, nx, dp, dp2 = data.shape
    assert dp == dp2, "blockfile frames are square"
    bits = data.dtype.itemsize * 8
    assert data.dtype.kind == "u" and bits in (8, 16)
    if magic is None:
        magic = 0x0102 if bits == 8 else 0x0103
    prefix, _ = _prefix(nx, ny, dp, bits, magic, note, **kw)
    with open(path, "wb") as f:
        f.write(prefix)
        flat = data.reshape(nx * ny, dp, dp)
        for i in range(nx * ny):
            f.write(record(i, flat[i]))
    return path


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--shape", required=True, help="NY,NX,DP,DP")
    p.add_argument("--dtype", default="u1", choices=["u1", "u2"])
    p.add_argument("--magic", default=None, help="0x0102 or 0x0103 (default by dtype)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    ny, nx, dp, dp2 = (int(x) for x in a.shape.split(","))
    if dp != dp2:
        p.error("blockfile frames are square")
    dt = np.dtype(a.dtype)
    bits = dt.itemsize * 8
    magic = int(a.magic, 0) if a.magic else (0x0102 if bits == 8 else 0x0103)
    prefix, _ = _prefix(nx, ny, dp, bits, magic, None)
    rng = np.random.default_rng(a.seed)
    n = nx * ny
    rec = 6 + dp * dp * dt.itemsize
    chunk = max(1, (64 << 20) // rec)
    with open(a.out, "wb") as f:
        f.write(prefix)
        for i0 in range(0, n, chunk):
            k = min(chunk, n - i0)
            buf = np.empty((k, rec), np.uint8)
            buf[:, 0] = 0xAA
            buf[:, 1] = 0x55
            buf[:, 2:6] = np.arange(i0, i0 + k, dtype="<u4").view(np.uint8).reshape(k, 4)
            px = rng.integers(0, 256 if bits == 8 else 4096, size=(k, dp * dp), dtype=dt)
            buf[:, 6:] = px.astype(dt.newbyteorder("<")).view(np.uint8)
            f.write(buf.tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
