#!/usr/bin/python3
"""Write Gatan DigitalMicrograph DM3/DM4 files from the published layout.

Written from the format description (a big-endian header: version, size,
byte order; then one root tag group of named or unnamed entries, each a
group or a data tag "%%%%" + type description + value; sizes and type codes
are 4 bytes wide in DM3 and 8 in DM4, and DM4 puts an 8-byte size after
each tag name), independently of the reader under test.  The file holds
what DigitalMicrograph writes for an image: ImageList with a thumbnail
(image 0, RGBA, listed under Thumbnails) and the data image(s), each with
ImageData (Data, DataType, Dimensions x-first, Calibrations) and ImageTags.

As a module: write_dm(path, array, ...) writes `array` (numpy order: nav
dimensions, then sig) and returns a dict describing the file.  The oracle of
a test is the array itself.

As a program (big files for benchmarks, data written in chunks):
    gen_dm.py OUT --shape 64,64,256,256 --dtype u2 [--version 4]
              [--layout c|sig_first] [--seed 1]
"""

import argparse
import struct
import sys

import numpy as np

# DM tag element types
SHORT, LONG, USHORT, ULONG, FLOAT, DOUBLE, BOOL, CHAR, OCTET, INT64, UINT64 = (
    2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
STRUCT, STRING, ARRAY = 15, 18, 20
SIMPLE = {SHORT: "h", LONG: "i", USHORT: "H", ULONG: "I", FLOAT: "f", DOUBLE: "d",
          BOOL: "B", CHAR: "b", OCTET: "B", INT64: "q", UINT64: "Q"}

# DM image data types for numpy dtypes, and the tag element type of Data
IMAGE_TYPES = {
    "int16": (1, SHORT), "float32": (2, FLOAT), "complex64": (3, DOUBLE),
    "uint8": (6, OCTET), "int32": (7, LONG), "int8": (9, CHAR), "uint16": (10, USHORT),
    "uint32": (11, ULONG), "float64": (12, DOUBLE), "bool": (14, BOOL),
}


# ---------------------------------------------------------------------------
# tag values: each encodes to (type description, payload chunks, payload size)


class Value:
    def __init__(self, type_, v):
        self.type, self.v = type_, v

    def info(self):
        return [self.type]


class Text:
    """A string as DM stores it: an array of 16-bit characters."""

    def __init__(self, s):
        self.units = np.frombuffer(s.encode("utf-16-le"), dtype="<u2")

    def info(self):
        return [ARRAY, USHORT, len(self.units)]


class Struct:
    def __init__(self, types, values):
        self.types, self.values = types, values

    def info(self):
        out = [STRUCT, 0, len(self.types)]
        for t in self.types:
            out += [0, t]
        return out


class Array:
    """An array of a simple type: data is a numpy array (written as its
    bytes) or a callable writing nbytes in chunks (big files)."""

    def __init__(self, eltype, count, data=None, nbytes=None, writer=None):
        self.eltype, self.count = eltype, count
        self.data, self.writer = data, writer
        self.nbytes = nbytes if nbytes is not None else data.nbytes

    def info(self):
        return [ARRAY, self.eltype, self.count]


class Group:
    def __init__(self, entries=()):
        self.entries = list(entries)  # (name, node)


# ---------------------------------------------------------------------------
# encoding


class Encoder:
    def __init__(self, version, little=True):
        assert version in (3, 4)
        self.version = version
        self.w = ">I" if version == 3 else ">Q"
        self.bo = "<" if little else ">"

    def code(self, v):
        return struct.pack(self.w, v)

    def payload(self, node):
        """(chunks, size) of a data tag's value."""
        if isinstance(node, Value):
            b = struct.pack(self.bo + SIMPLE[node.type], node.v)
            return [b], len(b)
        if isinstance(node, Text):
            b = node.units.astype(self.bo + "u2").tobytes()
            return [b], len(b)
        if isinstance(node, Struct):
            b = b"".join(struct.pack(self.bo + SIMPLE[t], v)
                         for t, v in zip(node.types, node.values))
            return [b], len(b)
        if isinstance(node, Array):
            if node.writer is not None:
                return [node.writer], node.nbytes
            return [np.ascontiguousarray(node.data).tobytes()], node.nbytes
        raise TypeError(node)

    def entry(self, name, node):
        """(chunks, size) of one entry of a group."""
        nm = name.encode("latin-1")
        if isinstance(node, Group):
            body, size = self.group(node)
            kind = 20
        else:
            info = node.info()
            chunks, psize = self.payload(node)
            head = b"%%%%" + self.code(len(info)) + b"".join(self.code(i) for i in info)
            body, size = [head] + chunks, len(head) + psize
            kind = 21
        head = struct.pack(">BH", kind, len(nm)) + nm
        if self.version == 4:
            head += struct.pack(">Q", size)
        return [head] + body, len(head) + size

    def group(self, g):
        head = struct.pack(">BB", 1, 0) + self.code(len(g.entries))
        chunks, size = [head], len(head)
        for name, node in g.entries:
            c, s = self.entry(name, node)
            chunks += c
            size += s
        return chunks, size


def write_tree(path, root, version=4, little=True):
    """Write a DM file holding the root group; returns the offsets of the
    Array payloads in the order written."""
    enc = Encoder(version, little)
    chunks, size = enc.group(root)
    tail = b"\0" * 8
    hsize = 12 if version == 3 else 16
    total = hsize + size + len(tail)
    if version == 3:
        header = struct.pack(">III", 3, total - 20, 1 if little else 0)
    else:
        header = struct.pack(">IQI", 4, total - 24, 1 if little else 0)
    offsets = []
    with open(path, "wb") as f:
        f.write(header)
        for c in chunks:
            if callable(c):
                offsets.append(f.tell())
                c(f)
            else:
                f.write(c)
        f.write(tail)
    return total


# ---------------------------------------------------------------------------
# images


def dims_group(stored_shape):
    """Dimensions: unnamed longs, x (the fastest) first."""
    return Group([("", Value(ULONG, int(d))) for d in reversed(stored_shape)])


def calibration_group(cal_stored):
    """Calibrations/Dimension from (scale, offset, units) per stored numpy
    axis; DM keeps Origin (the pixel at 0) = -offset / scale."""
    entries = []
    for scale, offset, units in reversed(cal_stored):
        entries.append(("", Group([
            ("Origin", Value(FLOAT, -offset / scale if offset else 0.0)),
            ("Scale", Value(FLOAT, scale)),
            ("Units", Text(units)),
        ])))
    return Group(entries)


def image_group(name, stored, data_type, el_type, cal_stored=None, tags=None, data_node=None):
    shape = stored.shape if hasattr(stored, "shape") else stored
    nd = len(shape)
    if cal_stored is None:
        cal_stored = [(1.0, 0.0, "")] * nd
    if data_node is None:
        count = int(np.prod(shape))
        data_node = Array(el_type, count, data=stored)
    imdata = Group([
        ("Calibrations", Group([
            ("Brightness", Group([("Origin", Value(FLOAT, 0.0)), ("Scale", Value(FLOAT, 1.0)),
                                  ("Units", Text("counts"))])),
            ("Dimension", calibration_group(cal_stored)),
            ("DisplayCalibratedUnits", Value(BOOL, 1)),
        ])),
        ("Data", data_node),
        ("DataType", Value(LONG, data_type)),
        ("Dimensions", dims_group(shape)),
        ("PixelDepth", Value(LONG, data_node.nbytes // max(1, int(np.prod(shape))))),
    ])
    entries = [("ImageData", imdata), ("ImageTags", tags or Group()), ("Name", Text(name))]
    return Group(entries)


def image_tags(fmt=None, signal=None, swapped=None, microscope=True):
    meta = []
    if fmt is not None:
        meta.append(("Format", Text(fmt)))
    if signal is not None:
        meta.append(("Signal", Text(signal)))
    if swapped is not None:
        meta.append(("Data Order Swapped", Value(BOOL, int(swapped))))
    entries = []
    if microscope:
        entries.append(("Microscope Info", Group([
            ("Voltage", Value(DOUBLE, 300000.0)),
            ("STEM Camera Length", Value(FLOAT, 91.0)),
            ("Illumination Mode", Text("STEM")),
            ("Name", Text("Test Microscope")),
        ])))
        entries.append(("Acquisition", Group([
            ("Device", Group([("Name", Text("Test Camera")),
                              ("CCD", Group([("Pixel Size (um)",
                                              Struct([FLOAT, FLOAT], [55.0, 55.0]))]))])),
            ("Parameters", Group([("High Level", Group([("Exposure (s)",
                                                        Value(DOUBLE, 0.001))]))])),
        ])))
    if meta:
        entries.append(("Meta Data", Group(meta)))
    return Group(entries)


def stored_order(ndim, sig_dims, layout):
    """Axes of the logical array (nav..., sig...) in the order stored."""
    axes = list(range(ndim))
    if layout == "c":
        return axes
    return axes[ndim - sig_dims:] + axes[:ndim - sig_dims]


def write_dm(path, array, *, version=4, layout="c", sig_dims=None, kind=None,
             swapped_tag=None, calibration=None, thumbnail=True, extra=(), little=True,
             data_type=None, el_type=None, microscope=True):
    """Write `array` (numpy order: nav..., sig...) as the data image of a DM
    file.

    layout: "c" (stored as given) or "sig_first" (signal axes slowest, as
    Gatan writes 4D-STEM and spectrum images).  kind: "image" (2-D/3-D,
    Meta Data/Format "Image"), "si" (spectrum image: Format "Spectrum image",
    Signal "EELS"), "4d" (Format "Diffraction image"); default from ndim.
    swapped_tag: write Meta Data/Data Order Swapped with this value.
    calibration: (scale, offset, units) per logical axis.  extra: further
    arrays stored as more images (C order) after the data image.
    data_type/el_type: override the DM DataType / Data element type (for
    unsupported types).  Returns {"offset", "index", "dims"}."""
    array = np.asarray(array)
    nd = array.ndim
    if kind is None:
        kind = "4d" if nd == 4 else "image"
    if sig_dims is None:
        sig_dims = 1 if kind == "si" else min(2, nd)
    order = stored_order(nd, sig_dims, layout)
    stored = np.ascontiguousarray(np.transpose(array, order))
    if data_type is None:
        data_type, el_type = IMAGE_TYPES[array.dtype.name]
    cal_stored = None
    if calibration is not None:
        cal_stored = [calibration[a] for a in order]
    fmt = {"image": "Image", "si": "Spectrum image", "4d": "Diffraction image"}[kind]
    tags = image_tags(fmt, "EELS" if kind == "si" else None, swapped_tag, microscope)
    stored_le = stored.astype(stored.dtype.newbyteorder("<" if little else ">"))
    images = []
    if thumbnail:
        thumb = np.zeros((8, 8), dtype="<u4")
        images.append(("", image_group("thumbnail", thumb, 23, ULONG)))
    images.append(("", image_group("data", stored_le, data_type, el_type, cal_stored, tags)))
    for i, e in enumerate(extra):
        e = np.asarray(e)
        dt, et = IMAGE_TYPES[e.dtype.name]
        images.append(("", image_group(f"extra{i}", e.astype(e.dtype.newbyteorder(
            "<" if little else ">")), dt, et)))
    root = Group([("ImageList", Group(images))])
    if thumbnail:
        root.entries.append(("Thumbnails", Group([("", Group([
            ("ImageIndex", Value(ULONG, 0)),
            ("SourceSize_Pixels", Struct([LONG, LONG], [8, 8]))]))])))
    write_tree(path, root, version, little)
    return {"index": 1 if thumbnail else 0, "dims": list(reversed(stored.shape))}


def write_big(path, shape, dtype, version=4, layout="c", seed=1, chunk_bytes=64 << 20):
    """A big 4-D (or any) file with random data written in chunks; shape in
    numpy order (nav..., sig...).  Returns the data offset."""
    dt = np.dtype(dtype).newbyteorder("<")
    nd = len(shape)
    sig_dims = min(2, nd)
    stored_shape = [shape[a] for a in stored_order(nd, sig_dims, layout)]
    count = int(np.prod(shape))
    nbytes = count * dt.itemsize
    rng = np.random.default_rng(seed)

    def writer(f):
        left = count
        per = max(1, chunk_bytes // dt.itemsize)
        while left:
            k = min(per, left)
            if dt.kind in "ui":
                info = np.iinfo(dt)
                a = rng.integers(0, min(info.max, 4095), size=k, endpoint=True, dtype=dt)
            else:
                a = rng.random(k).astype(dt)
            f.write(a.tobytes())
            left -= k

    data_type, el_type = IMAGE_TYPES[dt.name]
    node = Array(el_type, count, nbytes=nbytes, writer=writer)
    kind = "4d" if nd == 4 else "image"
    fmt = {"image": "Image", "4d": "Diffraction image"}[kind]
    swapped = 1 if (nd == 4 and layout == "c") else None
    tags = image_tags(fmt, None, swapped)
    root = Group([("ImageList", Group([
        ("", image_group("data", tuple(stored_shape), data_type, el_type, None, tags,
                         data_node=node))]))])
    return write_tree(path, root, version)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out")
    p.add_argument("--shape", required=True, help="numpy order, e.g. 64,64,256,256")
    p.add_argument("--dtype", default="u2")
    p.add_argument("--version", type=int, default=4, choices=(3, 4))
    p.add_argument("--layout", default="c", choices=("c", "sig_first"))
    p.add_argument("--seed", type=int, default=1)
    a = p.parse_args(argv)
    shape = tuple(int(x) for x in a.shape.split(","))
    total = write_big(a.out, shape, a.dtype, a.version, a.layout, a.seed)
    print(f"wrote {a.out} ({total} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
