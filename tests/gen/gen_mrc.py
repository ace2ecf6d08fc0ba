#!/usr/bin/python3
"""Write MRC files from the published MRC2014 layout (https://www.ccpem.ac.uk/mrc_format/
mrc2014.php): a 1024-byte header of 56 words and ten 80-byte labels, `nsymbt` bytes of
extended header, then nz sections of ny x nx pixels in C order.

Used by tests/integration/test_fmt_mrc.py (import write_mrc) and from the command line
to make big files for benchmarks:

    gen_mrc.py OUT.mrc --shape NZ,NY,NX [--mode 6] [--big-endian] [--ext-bytes N]
               [--exttyp FEI2] [--seed 1]
"""

import argparse
import struct
import sys

import numpy as np

MODE_DTYPES = {0: "i1", 1: "i2", 2: "f4", 4: "c8", 6: "u2", 12: "f2"}
IMOD_STAMP = 1146047817


def header_bytes(shape, mode, byteorder="<", nsymbt=0, exttyp=b"", cella=None, origin=(0, 0, 0),
                 imod_flags=None, labels=(), nversion=20140, map_id=b"MAP ", stamp=None,
                 mxyz=None):
    """The 1024-byte header for data of shape (nz, ny, nx)."""
    nz, ny, nx = shape
    e = byteorder
    mx, my, mz = mxyz if mxyz is not None else (nx, ny, nz)
    cella = cella if cella is not None else (float(nx), float(ny), float(nz))
    h = bytearray(1024)
    struct.pack_into(e + "10i", h, 0, nx, ny, nz, mode, 0, 0, 0, mx, my, mz)
    struct.pack_into(e + "6f", h, 40, *cella, 90.0, 90.0, 90.0)
    struct.pack_into(e + "3i", h, 64, 1, 2, 3)
    struct.pack_into(e + "3f", h, 76, 0.0, 0.0, 0.0)
    struct.pack_into(e + "2i", h, 88, 0 if nz == 1 else 1, nsymbt)
    h[104:108] = exttyp.ljust(4, b"\0")[:4]
    struct.pack_into(e + "i", h, 108, nversion)
    if imod_flags is not None:
        struct.pack_into(e + "2i", h, 152, IMOD_STAMP, imod_flags)
    struct.pack_into(e + "3f", h, 196, *origin)
    h[208:212] = map_id
    if stamp is None:
        stamp = b"\x44\x44\x00\x00" if byteorder == "<" else b"\x11\x11\x00\x00"
    h[212:216] = stamp
    struct.pack_into(e + "fi", h, 216, 0.0, len(labels))
    for i, lab in enumerate(labels[:10]):
        h[224 + 80 * i:224 + 80 * (i + 1)] = lab.encode().ljust(80, b" ")[:80]
    return bytes(h)


def write_mrc(path, data, mode=None, byteorder="<", ext_header=b"", exttyp=b"", **kw):
    """Write data (nz, ny, nx) or (ny, nx) as an MRC file.  mode defaults from the
    dtype (int8 0, int16 1, float32 2, complex64 4, uint16 6, float16 12; uint8 is
    written as mode 0 with the IMOD stamp and unsigned-bytes flags, as IMOD does)."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    assert data.ndim == 3
    if mode is None:
        if data.dtype == np.uint8:
            mode = 0
            kw.setdefault("imod_flags", 0)
        else:
            inv = {np.dtype(v): k for k, v in MODE_DTYPES.items()}
            mode = inv[data.dtype]
    stored = data.view(np.int8) if data.dtype == np.uint8 else data
    with open(path, "wb") as f:
        f.write(header_bytes(data.shape, mode, byteorder, len(ext_header), exttyp, **kw))
        f.write(ext_header)
        if stored.dtype.itemsize > 1:
            stored = stored.astype(stored.dtype.newbyteorder(byteorder))
        f.write(np.ascontiguousarray(stored).tobytes())


def fei_block(byteorder="<", size=888, version=2, pixel_size_m=2.5e-9, stem_detector=b"HAADF",
              camera=b"Ceta", instrument_mode=2, ht=300e3):
    """One FEI1/FEI2 per-section metadata block (the fields the reader uses)."""
    e = byteorder
    b = bytearray(size)
    struct.pack_into(e + "ii", b, 0, size, version)
    b[20:36] = b"Titan".ljust(16, b"\0")
    b[52:68] = b"Velox".ljust(16, b"\0")
    struct.pack_into(e + "d", b, 84, ht)
    struct.pack_into(e + "dd", b, 156, pixel_size_m, pixel_size_m)
    struct.pack_into(e + "i", b, 244, instrument_mode)
    b[435:451] = camera.ljust(16, b"\0")
    b[519:535] = stem_detector.ljust(16, b"\0")
    return bytes(b)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--shape", required=True, help="NZ,NY,NX")
    ap.add_argument("--mode", type=int, default=6, choices=sorted(MODE_DTYPES))
    ap.add_argument("--big-endian", action="store_true")
    ap.add_argument("--ext-bytes", type=int, default=0, help="extended header size (nsymbt)")
    ap.add_argument("--exttyp", default="", help="extended header type, e.g. FEI2")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    shape = tuple(int(x) for x in a.shape.split(","))
    if len(shape) != 3 or min(shape) < 1:
        ap.error("--shape needs three positive sizes NZ,NY,NX")
    bo = ">" if a.big_endian else "<"
    dt = np.dtype(MODE_DTYPES[a.mode]).newbyteorder(bo)
    rng = np.random.default_rng(a.seed)
    ext = bytes(a.ext_bytes)
    if a.exttyp.startswith("FEI") and a.ext_bytes >= 888:
        ext = fei_block(bo) + bytes(a.ext_bytes - 888)
    with open(a.out, "wb") as f:
        f.write(header_bytes(shape, a.mode, bo, a.ext_bytes, a.exttyp.encode()))
        f.write(ext)
        nz, ny, nx = shape
        per = max(1, (64 << 20) // (ny * nx * dt.itemsize))  # ~64 MiB per write
        for z0 in range(0, nz, per):
            n = min(per, nz - z0)
            native = dt.newbyteorder("=")
            if dt.kind in "iu":
                info = np.iinfo(native)
                x = rng.integers(info.min, info.max, size=(n, ny, nx), endpoint=True,
                                 dtype=native)
            elif dt.kind == "c":
                x = rng.random((n, ny, nx)) + 1j * rng.random((n, ny, nx))
            else:
                x = rng.random((n, ny, nx))
            x = x.astype(dt)
            f.write(x.tobytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
