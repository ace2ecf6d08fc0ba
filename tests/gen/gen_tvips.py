#!/usr/bin/python3
"""Write TVIPS recordings (.tvips), single files or series NAME_000.tvips,
NAME_001.tvips, ..., from the published layout.

Layout (little-endian): part _000 starts with a 256-byte series header
(i32: size 256, version 1|2, dimx, dimy, bits per pixel 8|16, offsetx,
offsety, binx, biny, pixel size, high tension, total magnification, image
header bytes; then 204 unused bytes).  Every part then holds whole image
records: an image header (version 1: 12 bytes; version 2: the series
header's image header bytes) and dimy x dimx pixels.  Image header fields
written here: u32 counter @0, u32 unix time @4, u32 ms @8, u32 mode @24
(2 = diffraction), u32 rotator index @48 (version 2, >= 52 bytes), f32
scan x @68 and scan y @72 (version 2, >= 76 bytes).

As a module: write_tvips(path, frames, ...) (frames: (n, dimy, dimx), u1 or
u2) and scan_indices(...) for a scan that starts some frames into the
recording.  As a program: gen_tvips.py OUT_000.tvips --shape N,DY,DX
[--dtype u1|u2] [--version 1|2] [--parts K] [--pre K --scan NY,NX]
writes random frames in chunks, so it can make big files.
"""

import argparse
import struct
import sys

import numpy as np

HEADER_SIZE = 256


def series_header(dimx, dimy, bpp, *, version=2, hb=76, offsetx=0, offsety=0, binx=1,
                  biny=1, pixelsize=7, ht=300, magtotal=1200, size=HEADER_SIZE):
    h = struct.pack("<13i", size, version, dimx, dimy, bpp, offsetx, offsety, binx, biny,
                    pixelsize, ht, magtotal, hb)
    return h + b"TVIPS " * 34 + b"\0" * (HEADER_SIZE - len(h) - 6 * 34)


def image_headers(n, hb, version, *, rotidx=None, scan_xy=None, t0=1700000000, mode=2,
                  counter0=0):
    """(n, hb) u8 array of image headers."""
    hb_eff = 12 if version == 1 else hb
    out = np.zeros((n, hb_eff), np.uint8)
    idx = np.arange(counter0, counter0 + n)

    def put(off, values, dt):
        w = np.dtype(dt).itemsize
        if off + w <= hb_eff:
            out[:, off:off + w] = np.asarray(values, dtype=dt).reshape(n, 1).view(np.uint8)

    put(0, idx, "<u4")
    put(4, t0 + idx // 100, "<u4")
    put(8, (idx % 100) * 10, "<u4")
    if version == 2:
        put(24, np.full(n, mode), "<u4")
        if rotidx is not None:
            put(48, rotidx, "<u4")
        if scan_xy is not None:
            put(68, scan_xy[:, 1], "<f4")
            put(72, scan_xy[:, 0], "<f4")
    return out


def scan_indices(pre, scan_shape, post):
    """Rotator indices and (y, x) scan positions of a recording with `pre`
    frames before a flyback scan of scan_shape and `post` frames after it.
    Before the scan: rotator 0, position (0, 0); after it the rotator and
    the position stay at the last ones."""
    ny, nx = scan_shape
    n = ny * nx
    rot = np.concatenate([np.zeros(pre), np.arange(1, n + 1), np.full(post, n)])
    yy, xx = np.divmod(np.arange(n), nx)
    pos = np.concatenate([np.zeros((pre, 2)), np.stack([yy, xx], 1),
                          np.tile([[ny - 1, nx - 1]], (post, 1))])
    return rot.astype(np.uint32), pos.astype(np.float32)


def part_name(path, k):
    path = str(path)
    stem, dot, ext = path.rpartition(".")
    assert stem.endswith("_000"), "series paths end in _000.tvips"
    return f"{stem[:-3]}{k:03d}.{ext}"


def write_tvips(path, frames, *, version=2, hb=76, parts=None, rotidx=None, scan_xy=None,
                trailing=b"", **header):
    """Write frames (n, dimy, dimx) u1/u2.  parts: record counts per part
    (a series NAME_000.tvips, ...; path must end in _000.tvips), default
    one file.  rotidx / scan_xy: per-frame rotator index and (y, x) scan
    position.  trailing: bytes appended to the last part.  Other keywords
    go to the series header.  Returns the list of paths written."""
    frames = np.asarray(frames)
    n, dimy, dimx = frames.shape
    bpp = frames.dtype.itemsize * 8
    assert frames.dtype.kind == "u" and bpp in (8, 16)
    hdr = series_header(dimx, dimy, bpp, version=version, hb=hb, **header)
    heads = image_headers(n, hb, version, rotidx=rotidx, scan_xy=scan_xy)
    px = frames.astype(frames.dtype.newbyteorder("<")).reshape(n, -1).view(np.uint8)
    recs = np.concatenate([heads, px], axis=1)
    parts = [n] if parts is None else list(parts)
    assert sum(parts) == n
    paths, i = [], 0
    for k, cnt in enumerate(parts):
        p = path if len(parts) == 1 else part_name(path, k)
        with open(p, "wb") as f:
            if k == 0:
                f.write(hdr)
            f.write(recs[i:i + cnt].tobytes())
            if k == len(parts) - 1:
                f.write(trailing)
        i += cnt
        paths.append(p)
    return paths


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="OUT.tvips, or OUT_000.tvips with --parts")
    p.add_argument("--shape", required=True, help="N,DY,DX (frames, height, width)")
    p.add_argument("--dtype", default="u2", choices=["u1", "u2"])
    p.add_argument("--version", type=int, default=2, choices=[1, 2])
    p.add_argument("--parts", type=int, default=1, help="split into this many parts")
    p.add_argument("--pre", type=int, default=0, help="frames before the scan")
    p.add_argument("--scan", default=None, help="NY,NX: scan after --pre frames")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    n, dy, dx = (int(v) for v in a.shape.split(","))
    dt = np.dtype(a.dtype).newbyteorder("<")
    hb = 12 if a.version == 1 else 76
    rot = pos = None
    if a.scan:
        ny, nx = (int(v) for v in a.scan.split(","))
        if a.pre + ny * nx > n:
            p.error("--pre + scan positions exceed the frames")
        rot, pos = scan_indices(a.pre, (ny, nx), n - a.pre - ny * nx)
    rng = np.random.default_rng(a.seed)
    per = -(-n // a.parts)
    rec = hb + dy * dx * dt.itemsize
    chunk = max(1, (64 << 20) // rec)
    done = 0
    for k in range(a.parts):
        path = a.out if a.parts == 1 else part_name(a.out, k)
        cnt = min(per, n - done)
        with open(path, "wb") as f:
            if k == 0:
                f.write(series_header(dx, dy, dt.itemsize * 8, version=a.version, hb=hb))
            for i0 in range(done, done + cnt, chunk):
                m = min(chunk, done + cnt - i0)
                heads = image_headers(
                    m, hb, a.version, counter0=i0,
                    rotidx=None if rot is None else rot[i0:i0 + m],
                    scan_xy=None if pos is None else pos[i0:i0 + m])
                px = rng.integers(0, 256 if dt.itemsize == 1 else 4096, size=(m, dy * dx),
                                  dtype=dt)
                f.write(np.concatenate([heads, px.view(np.uint8)], axis=1).tobytes())
        done += cnt
    return 0


if __name__ == "__main__":
    sys.exit(main())
