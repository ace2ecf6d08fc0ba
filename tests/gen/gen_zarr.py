#!/usr/bin/python3
"""Write Zarr v2 directory stores with zarr-python and numcodecs (Debian's python3-zarr),
the reference implementation of the format.

Used by tests/integration/test_fmt_zarr.py (import write_zarr, COMPRESSORS) and from the
command line to make big stores for benchmarks:

    gen_zarr.py OUT.zarr --shape NY,NX,SY,SX [--chunks 1,8,SY,SX] [--dtype u2]
                [--compressor blosc-lz4|blosc-zstd|zstd|lz4|gzip|zlib|none]
                [--separator . | /] [--seed 1]
"""

import argparse
import sys

import numpy as np


def compressor(name):
    """A numcodecs compressor by short name (None for "none")."""
    import numcodecs
    table = {
        "none": lambda: None,
        "blosc-lz4": lambda: numcodecs.Blosc("lz4", 5, numcodecs.Blosc.SHUFFLE),
        "blosc-zstd": lambda: numcodecs.Blosc("zstd", 3, numcodecs.Blosc.BITSHUFFLE),
        "blosc-zlib": lambda: numcodecs.Blosc("zlib", 4, numcodecs.Blosc.NOSHUFFLE),
        "blosc-blosclz": lambda: numcodecs.Blosc("blosclz", 5, numcodecs.Blosc.SHUFFLE),
        "zstd": lambda: numcodecs.Zstd(3),
        "lz4": lambda: numcodecs.LZ4(1),
        "gzip": lambda: numcodecs.GZip(5),
        "zlib": lambda: numcodecs.Zlib(5),
    }
    return table[name]()


COMPRESSORS = ["none", "blosc-lz4", "blosc-zstd", "blosc-zlib", "blosc-blosclz", "zstd", "lz4",
               "gzip", "zlib"]


def write_zarr(path, data, chunks, comp="none", separator=".", fill_value=0, order="C",
               filters=None):
    """Write data (a numpy array) as a Zarr v2 array directory at path; returns the
    zarr array."""
    import zarr
    z = zarr.open(str(path), mode="w", shape=data.shape, chunks=chunks, dtype=data.dtype,
                  compressor=compressor(comp), fill_value=fill_value, order=order,
                  dimension_separator=separator, filters=filters)
    z[...] = data
    return z


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--shape", required=True, help="NY,NX,SY,SX (or N,SY,SX)")
    ap.add_argument("--chunks", help="chunk shape (default: one scan row of frames)")
    ap.add_argument("--dtype", default="u2")
    ap.add_argument("--compressor", default="blosc-lz4", choices=COMPRESSORS)
    ap.add_argument("--separator", default=".", choices=[".", "/"])
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    import zarr
    shape = tuple(int(x) for x in a.shape.split(","))
    if len(shape) < 3 or min(shape) < 1:
        ap.error("--shape needs at least three positive sizes")
    chunks = (tuple(int(x) for x in a.chunks.split(",")) if a.chunks
              else (1,) * (len(shape) - 3) + shape[-3:])
    dt = np.dtype(a.dtype)
    z = zarr.open(a.out, mode="w", shape=shape, chunks=chunks, dtype=dt,
                  compressor=compressor(a.compressor), dimension_separator=a.separator)
    rng = np.random.default_rng(a.seed)
    # write one block of whole chunks along the first axis at a time
    frame = int(np.prod(shape[1:])) * dt.itemsize
    per = max(chunks[0], (256 << 20) // max(frame, 1) // chunks[0] * chunks[0])
    for i0 in range(0, shape[0], per):
        n = min(per, shape[0] - i0)
        if dt.kind in "iu":
            # detector-like counts: mostly small values, so that they compress
            x = rng.poisson(2.0, size=(n,) + shape[1:]).astype(dt)
        else:
            x = rng.random((n,) + shape[1:]).astype(dt)
        z[i0:i0 + n] = x
    return 0


if __name__ == "__main__":
    sys.exit(main())
