#!/usr/bin/python3
"""gen_hdf5.py — HDF5 files for the tests and benchmarks of Tessera's HDF5
reader, written with h5py and the filters Debian packages:

  gzip, shuffle-gzip, fletcher-shuffle-gzip   built into libhdf5
  lz4      filter 32004 (hdf5-filter-plugin)
  bslz4    filter 32008, bitshuffle + LZ4 as DECTRIS writes it (bitshuffle)
  bszstd   filter 32008 with zstd blocks: the chunks are encoded here (zstandard
           and bitshuffle's own transform) and written with write_direct_chunk
  zstd     filter 32015: chunks compressed here (zstandard) and written with
           write_direct_chunk (no zstd filter package exists in Debian)

Storage: chunked (any chunk shape, also ones that do not divide the data),
contiguous or compact; libver 'earliest' (v1 B-tree chunk index) or 'latest'
(fixed array; extensible array with maxshape_none; single chunk when the
chunk is the whole array; implicit with early allocation).

As a module: counts(), write(), write_big().  As a program:

  gen_hdf5.py OUT.h5 --shape 64,64,256,256 [--dtype u2] [--chunks 1,1,256,256]
      [--compression none|gzip|shuffle-gzip|lz4|bslz4|zstd] [--layout chunked|contiguous]
      [--libver earliest|latest] [--ds-path /data] [--seed 0]

writes a big file chunk row by chunk row (memory: one row of chunks).
"""

import argparse
import sys

import h5py
import numpy as np

try:  # registers the bitshuffle filter (32008) with h5py
    import bitshuffle.h5  # noqa: F401
except ImportError:  # pragma: no cover
    bitshuffle = None

COMPRESSIONS = ("none", "gzip", "shuffle-gzip", "fletcher-shuffle-gzip", "lz4", "bslz4",
                "bszstd", "zstd")


def counts(shape, dtype="u2", seed=0):
    """Detector-like frames: a bright disc in the middle of each frame over a
    sparse background, Poisson counts (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(s) for s in shape)
    sy, sx = shape[-2:] if len(shape) >= 2 else (1, shape[-1])
    yy, xx = np.mgrid[0:sy, 0:sx]
    r = np.hypot(yy - sy / 2, xx - sx / 2)
    lam = np.where(r < max(sy, sx) / 6, 20.0, 0.05)
    lam = np.broadcast_to(lam.reshape((1,) * (len(shape) - 2) + (sy, sx)) if len(shape) >= 2
                          else lam.reshape(sx), shape)
    data = rng.poisson(lam)
    dt = np.dtype(dtype)
    if dt.kind == "f":
        return (data + rng.random(shape)).astype(dt)
    if dt.kind == "i":
        data = data - 3
    return data.astype(dt)


def _filter_kwargs(compression):
    if compression in (None, "none"):
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 4}
    if compression == "shuffle-gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True}
    if compression == "fletcher-shuffle-gzip":
        return {"compression": "gzip", "compression_opts": 4, "shuffle": True, "fletcher32": True}
    if compression == "lz4":
        return {"compression": 32004, "compression_opts": (1 << 14,)}
    if compression == "bslz4":
        return {"compression": 32008, "compression_opts": (0, 2)}
    if compression == "bszstd":
        return {"compression": 32008, "compression_opts": (0, 3), "allow_unknown_filter": True}
    if compression == "zstd":
        return {"compression": 32015, "compression_opts": (3,), "allow_unknown_filter": True}
    raise ValueError(f"unknown compression {compression!r} (one of {', '.join(COMPRESSIONS)})")


def bitshuffle_block(block):
    """bitshuffle's transform of a 1-d array whose length is a multiple of 8:
    row j*8+k holds bit k of byte j of every element (element i at bit i%8
    of byte i/8 of the row)."""
    b = block.view(np.uint8).reshape(len(block), block.dtype.itemsize)
    bits = np.unpackbits(b, axis=1, bitorder="little")          # (n, es*8)
    return np.packbits(bits.T, axis=1, bitorder="little").tobytes()


def bszstd_chunk(chunk):
    """A chunk in filter 32008's framing with zstd blocks (compression 3)."""
    import zstandard
    flat = np.ascontiguousarray(chunk).reshape(-1)
    es = flat.dtype.itemsize
    block = max(128, (8192 // es) // 8 * 8)
    out = [int(flat.nbytes).to_bytes(8, "big"), int(block * es).to_bytes(4, "big")]
    z = zstandard.ZstdCompressor(level=3)
    done, n = 0, len(flat)
    while n - done >= 8:
        m = block if n - done >= block else (n - done) // 8 * 8
        c = z.compress(bitshuffle_block(flat[done:done + m]))
        out += [len(c).to_bytes(4, "big"), c]
        done += m
    out.append(flat[done:].tobytes())
    return b"".join(out)


def _direct_chunks(ds, data, chunks, encode):
    """Write every chunk of data (padded to full chunks) with encode()."""
    grid = [(s + c - 1) // c for s, c in zip(data.shape, chunks)]
    for idx in np.ndindex(*grid):
        sl = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, chunks, data.shape))
        block = np.zeros(chunks, dtype=data.dtype)
        part = data[sl]
        block[tuple(slice(0, n) for n in part.shape)] = part
        ds.id.write_direct_chunk(tuple(i * c for i, c in zip(idx, chunks)), encode(block))


def _zstd(block):
    import zstandard
    return zstandard.ZstdCompressor(level=3).compress(block.tobytes())


def write(path, data, ds_path="/data", chunks=None, compression=None, libver="earliest",
          maxshape_none=False, layout=None, alloc_early=False, extra=(), mode="w"):
    """Write data to path at ds_path.  chunks=None with layout=None means
    contiguous (or compact with layout='compact').  extra: (path, array)
    pairs written as more datasets.  Returns path."""
    with h5py.File(path, mode, libver=libver) as f:
        _write_ds(f, ds_path, np.asarray(data), chunks, compression, maxshape_none, layout,
                  alloc_early)
        for p, a in extra:
            f.create_dataset(p, data=a)
    return path


def _write_ds(f, ds_path, data, chunks, compression, maxshape_none, layout, alloc_early):
    if layout == "compact":
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        tid = h5py.h5t.py_create(data.dtype, logical=1)
        space = h5py.h5s.create_simple(data.shape)
        parent = f.require_group(ds_path.rsplit("/", 1)[0] or "/")
        dsid = h5py.h5d.create(parent.id, ds_path.rsplit("/", 1)[1].encode(), tid, space,
                               dcpl=dcpl)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data))
        return
    if chunks is None:
        if compression not in (None, "none"):
            raise ValueError("compression needs chunks")
        f.create_dataset(ds_path, data=data)
        return
    chunks = tuple(int(c) for c in chunks)
    maxshape = (None,) + data.shape[1:] if maxshape_none else None
    if alloc_early:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk(chunks)
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
        tid = h5py.h5t.py_create(data.dtype, logical=1)
        space = h5py.h5s.create_simple(data.shape)
        dsid = h5py.h5d.create(f.id, ds_path.encode(), tid, space, dcpl=dcpl)
        dsid.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(data))
        return
    kw = _filter_kwargs(compression)
    ds = f.create_dataset(ds_path, shape=data.shape, dtype=data.dtype, chunks=chunks,
                          maxshape=maxshape, **kw)
    if compression == "zstd":
        _direct_chunks(ds, data, chunks, _zstd)
    elif compression == "bszstd":
        _direct_chunks(ds, data, chunks, bszstd_chunk)
    else:
        ds[...] = data


def write_big(path, shape, dtype="u2", chunks=None, compression=None, ds_path="/data",
              libver="earliest", seed=0):
    """A big file, written one row of chunks (along the first axis) at a
    time; every row holds the same frames (counts of one row, seed)."""
    shape = tuple(int(s) for s in shape)
    rows = int(chunks[0]) if chunks else max(1, min(shape[0], (64 << 20) // max(
        1, int(np.prod(shape[1:])) * np.dtype(dtype).itemsize)))
    block = counts((rows,) + shape[1:], dtype, seed)
    with h5py.File(path, "w", libver=libver) as f:
        if chunks is None:
            ds = f.create_dataset(ds_path, shape=shape, dtype=dtype)
        else:
            ds = f.create_dataset(ds_path, shape=shape, dtype=dtype, chunks=tuple(chunks),
                                  **_filter_kwargs(compression))
        direct = {"zstd": _zstd, "bszstd": bszstd_chunk}.get(compression)
        for r0 in range(0, shape[0], rows):
            n = min(rows, shape[0] - r0)
            if direct:
                sub = np.ascontiguousarray(block[:n])
                grid = [(s + c - 1) // c for s, c in zip(sub.shape, chunks)]
                for idx in np.ndindex(*grid):
                    sl = tuple(slice(i * c, min((i + 1) * c, s))
                               for i, c, s in zip(idx, chunks, sub.shape))
                    blk = np.zeros(chunks, dtype=sub.dtype)
                    part = sub[sl]
                    blk[tuple(slice(0, k) for k in part.shape)] = part
                    off = (r0 + idx[0] * chunks[0],) + tuple(i * c for i, c in
                                                             zip(idx[1:], chunks[1:]))
                    ds.id.write_direct_chunk(off, direct(blk))
            else:
                ds[r0:r0 + n] = block[:n]
    return block


DECTRIS_DETECTOR = {
    "description": b"Dectris ARINA Si", "detector_number": b"T-00-0000",
    "sensor_material": b"Si", "sensor_thickness": (0.00045, b"m"),
    "x_pixel_size": (7.5e-05, b"m"), "y_pixel_size": (7.5e-05, b"m"),
    "count_time": (0.00099, b"s"), "frame_time": (0.001, b"s"),
    "beam_center_x": (95.5, b"pixel"), "beam_center_y": (96.25, b"pixel"),
    "detector_distance": (0.125, b"m"), "bit_depth_image": np.uint16(16),
}


def write_dectris(folder, stem, frames, frame_shape=(24, 20), dtype="u2", seed=0,
                  compression="bslz4"):
    """A DECTRIS-style recording: <stem>_master.h5 with /entry/data/data_00000k
    external links to <stem>_data_00000k.h5 (/entry/data/data, frames[k-1]
    images each, one chunk per image) and /entry/instrument/detector facts.
    Returns (master path, all images as one array, data file paths)."""
    import pathlib
    folder = pathlib.Path(folder)
    data = counts((sum(frames),) + tuple(frame_shape), dtype, seed)
    files, at = [], 0
    for k, n in enumerate(frames, 1):
        name = f"{stem}_data_{k:06d}.h5"
        with h5py.File(folder / name, "w") as f:
            ds = f.create_dataset("/entry/data/data", shape=(n,) + tuple(frame_shape),
                                  dtype=dtype, chunks=(1,) + tuple(frame_shape),
                                  maxshape=(None,) + tuple(frame_shape),
                                  **_filter_kwargs(compression))
            ds[...] = data[at:at + n]
        files.append(folder / name)
        at += n
    master = folder / f"{stem}_master.h5"
    with h5py.File(master, "w") as f:
        f.create_dataset("/entry/definition", data=b"NXmx")
        det = f.create_group("/entry/instrument/detector")
        for key, v in DECTRIS_DETECTOR.items():
            if isinstance(v, tuple):
                det.create_dataset(key, data=v[0]).attrs["units"] = v[1]
            else:
                det.create_dataset(key, data=v)
        det.create_dataset("detectorSpecific/nimages", data=np.uint64(sum(frames)))
        for k in range(1, len(frames) + 1):
            f[f"/entry/data/data_{k:06d}"] = h5py.ExternalLink(
                f"{stem}_data_{k:06d}.h5", "/entry/data/data")
    return master, data, files


def _ints(s):
    return tuple(int(x) for x in s.replace("(", "").replace(")", "").split(",") if x.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--shape", required=True, type=_ints)
    ap.add_argument("--dtype", default="u2")
    ap.add_argument("--chunks", type=_ints, default=None)
    ap.add_argument("--compression", default="none", choices=COMPRESSIONS)
    ap.add_argument("--layout", default="chunked", choices=("chunked", "contiguous"))
    ap.add_argument("--libver", default="earliest", choices=("earliest", "latest"))
    ap.add_argument("--ds-path", default="/data")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    chunks = None
    if a.layout == "chunked":
        chunks = a.chunks or ((1,) * (len(a.shape) - 2) + tuple(a.shape[-2:]))
    elif a.compression != "none":
        ap.error("--compression needs --layout chunked")
    write_big(a.out, a.shape, a.dtype, chunks, a.compression, a.ds_path, a.libver, a.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
