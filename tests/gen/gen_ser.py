#!/usr/bin/python3
"""Write FEI TIA series files (.ser) from the published layout (Chris
Boothroyd's description of the format, as ncempy and RosettaSciIO read it),
independently of Tessera's reader.

Layout (little-endian): header: ByteOrder u2 0x4949, SeriesID u2 0x0197,
SeriesVersion u2 (0x0210: 4-byte offsets, 0x0220: 8-byte), DataTypeID u4
(0x4120 1-D elements, 0x4122 2-D), TagTypeID u4 (0x4152 time, 0x4142 time and
X/Y position), TotalNumberElements u4, ValidNumberElements u4,
OffsetArrayOffset (u4 or u8), NumberDimensions u4; one record per dimension:
DimensionSize i4, CalibrationOffset f8, CalibrationDelta f8,
CalibrationElement i4, DescriptionLength i4 + text, UnitsLength i4 + text.
At OffsetArrayOffset: TotalNumberElements data offsets, then as many tag
offsets.  A 1-D element: CalibrationOffset f8, CalibrationDelta f8,
CalibrationElement i4, DataType i2, ArrayLength i4, data.  A 2-D element:
the three calibration fields for X then for Y, DataType i2, ArraySizeX i4,
ArraySizeY i4, data (X fastest; TIA stores the bottom row first).  A tag:
TagTypeID u2, 0 u2, Time u4 (+ PositionX f8, PositionY f8 for 0x4142).

Usable as a module (write_ser) and as a program:

    gen_ser.py OUT.ser --shape 64,64,256,256 [--dtype u2] [--one-d]
                       [--version 0x220] [--total N]

writes a scan of nav (64, 64) with 256×256 2-D elements (or, with --one-d
and --shape NAV...,LEN, spectra), frame i holding (i * 7 + pixel index) mod
the dtype's range, frame by frame (for files larger than memory).
"""

import argparse
import struct
import sys

import numpy as np

DTYPES = {1: "<u1", 2: "<u2", 3: "<u4", 4: "<i1", 5: "<i2", 6: "<i4", 7: "<f4", 8: "<f8",
          9: "<c8", 10: "<c16"}
CODES = {np.dtype(v).str: k for k, v in DTYPES.items()}


def dim(size, offset=0.0, delta=1.0, element=0, description="Number", units=""):
    """One dimension record (Dimension 1 is the fastest of the scan)."""
    return dict(size=size, offset=offset, delta=delta, element=element,
                description=description, units=units)


def _header(version, data_type_id, tag_type_id, total, valid, dims):
    wide = version >= 0x220
    head = struct.pack("<HHHIIII", 0x4949, 0x0197, version, data_type_id, tag_type_id,
                       total, valid)
    rec = b""
    for d in dims:
        desc = d["description"].encode()
        units = d["units"].encode()
        rec += struct.pack("<iddii", d["size"], d["offset"], d["delta"], d["element"], len(desc))
        rec += desc + struct.pack("<i", len(units)) + units
    fixed = len(head) + (8 if wide else 4) + 4
    offset_array = fixed + len(rec)
    head += struct.pack("<Q" if wide else "<I", offset_array) + struct.pack("<I", len(dims))
    return head + rec, offset_array


def _element_header(one_d, type_code, shape, cal):
    if one_d:
        off, delta, el = cal[0]
        return struct.pack("<ddihi", off, delta, el, type_code, shape[0])
    (ox, dx, ex), (oy, dy, ey) = cal
    return struct.pack("<ddiddihii", ox, dx, ex, oy, dy, ey, type_code, shape[1], shape[0])


def write_ser(path, frames=None, *, count=None, frame_fn=None, sig=None, dtype=None,
              dims=None, total=None, version=0x210, cal=None, xy_tags=None, gaps=None,
              type_code=None):
    """Write a .ser whose valid elements are the stored arrays `frames`
    ((valid, n) for 1-D elements, (valid, ny, nx) for 2-D, row 0 stored
    first) — or `count` frames made by frame_fn(i) of shape sig and dtype.

    dims: dimension records (default one 'Number' dimension of size total);
    total: TotalNumberElements (default valid); cal: element calibrations,
    [(offset, delta, element)] for 1-D, [x, y] for 2-D; xy_tags: (x, y)
    position per element for 0x4142 tags (default: time-only tags); gaps:
    bytes of padding after each element (non-uniform spacing); type_code:
    the DataType written (default from the dtype)."""
    if frames is not None:
        frames = np.asarray(frames)
        count = frames.shape[0]
        sig = frames.shape[1:]
        dtype = frames.dtype
        frame_fn = frames.__getitem__
    dtype = np.dtype(dtype).newbyteorder("<")
    one_d = len(sig) == 1
    total = count if total is None else total
    dims = [dim(total)] if dims is None else dims
    if cal is None:
        cal = [(0.0, 1.0, 0)] if one_d else [(0.0, 1.0, 0), (0.0, 1.0, 0)]
    code = CODES[dtype.str] if type_code is None else type_code
    tag_id = 0x4142 if xy_tags is not None else 0x4152
    head, offset_array = _header(version, 0x4120 if one_d else 0x4122, tag_id, total, count, dims)
    osz = 8 if version >= 0x220 else 4
    data_start = offset_array + 2 * total * osz
    ehead = _element_header(one_d, code, sig, cal)
    frame_bytes = int(np.prod(sig)) * dtype.itemsize
    tag_bytes = 24 if xy_tags is not None else 8
    data_offs, tag_offs = [], []
    pos = data_start
    for i in range(count):
        data_offs.append(pos)
        pos += len(ehead) + frame_bytes
        tag_offs.append(pos)
        pos += tag_bytes + (gaps[i] if gaps is not None else 0)
    pad = [0] * (total - count)
    fmt = "<%d%s" % (total, "Q" if osz == 8 else "I")
    with open(path, "wb") as f:
        f.write(head)
        f.write(struct.pack(fmt, *(data_offs + pad)))
        f.write(struct.pack(fmt, *(tag_offs + pad)))
        for i in range(count):
            a = np.ascontiguousarray(frame_fn(i), dtype=dtype).reshape(sig)
            f.write(ehead)
            f.write(a.tobytes())
            if xy_tags is not None:
                f.write(struct.pack("<HHIdd", tag_id, 0, 1000 + i, *xy_tags[i]))
            else:
                f.write(struct.pack("<HHI", tag_id, 0, 1000 + i))
            if gaps is not None:
                f.write(b"\xee" * gaps[i])
    return path


def pattern(i, sig, dtype):
    """The CLI's frame i: (i * 7 + pixel index) mod the dtype's range."""
    dtype = np.dtype(dtype)
    n = int(np.prod(sig))
    v = np.arange(n, dtype=np.int64) + i * 7
    if dtype.kind in "ui":
        v %= min(2 ** (8 * dtype.itemsize - (dtype.kind == "i")), 2 ** 31)
    return v.astype(dtype).reshape(sig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--shape", required=True,
                   help="NAV...,SIG: e.g. 64,64,256,256 (2-D elements) or 8,8,1024 --one-d")
    p.add_argument("--dtype", default="u2")
    p.add_argument("--one-d", action="store_true", help="1-D elements (spectra)")
    p.add_argument("--version", default="0x210", help="0x210 (4-byte offsets) or 0x220")
    p.add_argument("--total", type=int, help="TotalNumberElements (default: all frames)")
    a = p.parse_args(argv)
    shape = [int(s) for s in a.shape.split(",")]
    nsig = 1 if a.one_d else 2
    if len(shape) < nsig + 1 or min(shape) < 1:
        p.error("--shape needs at least one nav and %d sig dimensions, all >= 1" % nsig)
    nav, sig = shape[:-nsig], tuple(shape[-nsig:])
    count = int(np.prod(nav))
    total = a.total or count
    if len(nav) == 1:
        dims = [dim(total)]
    else:  # Dimension 1 is the fastest (x)
        dims = [dim(n, 0.0, 1e-9, 0, "Position", "meters") for n in reversed(nav)]
        if total != count:
            p.error("--total needs a 1-D nav shape")
    dt = np.dtype(a.dtype).newbyteorder("<")
    write_ser(a.out, count=count, frame_fn=lambda i: pattern(i, sig, dt), sig=sig, dtype=dt,
              dims=dims, total=total, version=int(a.version, 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
