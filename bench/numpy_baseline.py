#!/usr/bin/python3
"""numpy baseline of the benchmark: each case done the way a careful numpy user would.

    /usr/bin/python3 bench/numpy_baseline.py PATH --shape 128,128,256,256 [--dtype <u2]
        [--offset BYTES | --npy] [--case NAME]... [--mask-disk CX,CY,R]
        [--sparse-disk CX,CY,R] [--masks16 FILE.npy] [--pick I,J,...]
        [--chunk-mib 64] [--warmup 1] [--repeat 5] [--reuse-memmap]

The file is opened with np.memmap (np.load(mmap_mode='r') for --npy) and walked in chunks
of whole frames of about --chunk-mib MiB; per chunk one vectorised operation does the work of
the case, accumulating in the same type as Tessera's result.  Where several spellings exist, the
fastest measured one is used (integer sums of 8/16-bit data in uint32, which is exact for a
chunk of up to 65537 frames or a frame of up to 65537 pixels, and 1.3-1.5x faster than
dtype=float64; einsum for the sum of squares), so that the baseline is a careful user's:

    sum      acc(sig, float64) += chunk.sum(axis=0, dtype=uint32)
    sumsig   out[frames] = chunk.sum(axis=1, dtype=uint32)             (into float64)
    stddev   x = chunk as float64; s += x.sum(0), s2 += einsum('ij,ij->j', x, x); mean, var
    mask1    out[frames] = chunk(float32) @ mask(npix, float32)       (one disk, BLAS gemv)
    masks16  out[frames] = chunk(float32) @ M(npix × 16, float32)      (BLAS sgemm)
    sparse   out[frames] = chunk[:, idx](float32) @ mask[idx]          (only the disk's pixels)
    pick     np.array(mm[i]) for a few flat frame indices

Each case runs `warmup` untimed times, then `repeat` timed ones (time.perf_counter around the
whole pass, including the memmap's page faults and the float conversions).  The memmap is made
anew (untimed) before every pass, as Tessera's driver opens its dataset anew for every run: a
pass over a mapping whose page tables an earlier pass populated is 2-3x faster on this kind of
VM, an advantage a script that opens a file and analyses it once does not have.
--reuse-memmap keeps one memmap for all passes (an interactive session's case). One JSON line per
case goes to stdout with the fields of tsr-bench's output (min/median/max seconds, GB/s of
input bytes = frames × frame bytes, "checksum" = sum of the first result) plus the BLAS
library numpy uses (read from /proc/self/maps after a matrix product) and the OPENBLAS_*
variables of the environment, which are left as they are.

Masks follow Tessera's generator: disk:cx,cy,r selects (x-cx)² + (y-cy)² <= r².
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

CASES = ("sum", "sumsig", "stddev", "mask1", "masks16", "sparse", "pick")


def disk(sig, cx, cy, r):
    """Tessera's disk:cx,cy,r as a float32 frame."""
    y, x = np.mgrid[0 : sig[0], 0 : sig[1]]
    d2 = (x - cx) ** 2.0 + (y - cy) ** 2.0
    return (d2 <= r * r).astype(np.float32)


def blas_info():
    """Which BLAS numpy links at run time, and the OPENBLAS_* environment."""
    a = np.ones((64, 64), np.float32)
    a @ a
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                p = line.split()[-1]
                if "blas" in p or "lapack" in p or "mkl" in p:
                    libs.add(os.path.realpath(p))
    except OSError:
        pass
    env = {k: v for k, v in os.environ.items() if k.startswith("OPENBLAS")}
    return {"libs": sorted(libs), "env": env, "numpy": np.__version__}


def chunks(mm, frames_per_chunk):
    """(start, view) over mm (frames × npix) in chunks of whole frames."""
    n = mm.shape[0]
    for s in range(0, n, frames_per_chunk):
        yield s, mm[s : s + frames_per_chunk]


def small_int(mm):
    """8/16-bit unsigned data: sums of up to 65537 values fit a uint32."""
    return mm.dtype.kind in "ub" and mm.dtype.itemsize <= 2


def case_sum(mm, fpc, a):
    acc = np.zeros(mm.shape[1], np.float64)
    dt = np.uint32 if small_int(mm) and fpc <= 65537 else np.float64
    for _, c in chunks(mm, fpc):
        acc += c.sum(axis=0, dtype=dt)
    return acc


def case_sumsig(mm, fpc, a):
    out = np.empty(mm.shape[0], np.float64)
    dt = np.uint32 if small_int(mm) and mm.shape[1] <= 65537 else np.float64
    for s, c in chunks(mm, fpc):
        out[s : s + len(c)] = c.sum(axis=1, dtype=dt)
    return out


def case_stddev(mm, fpc, a):
    s1 = np.zeros(mm.shape[1], np.float64)
    s2 = np.zeros(mm.shape[1], np.float64)
    for _, c in chunks(mm, fpc):
        x = c.astype(np.float64)
        s1 += x.sum(axis=0)
        s2 += np.einsum("ij,ij->j", x, x)
    n = mm.shape[0]
    mean = s1 / n
    np.sqrt(np.maximum(s2 / n - mean * mean, 0))  # var and std, as Tessera's finalize forms them
    return mean


def case_dot(mm, fpc, m):
    out = np.empty((mm.shape[0],) + m.shape[1:], np.float32)
    for s, c in chunks(mm, fpc):
        out[s : s + len(c)] = c.astype(np.float32) @ m
    return out


def case_sparse(mm, fpc, a):
    idx, w = a
    out = np.empty(mm.shape[0], np.float32)
    for s, c in chunks(mm, fpc):
        out[s : s + len(c)] = c[:, idx].astype(np.float32) @ w
    return out


def case_pick(mm, fpc, picks):
    return np.stack([np.array(mm[i]) for i in picks])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("path")
    ap.add_argument("--shape", required=True, help="nav and sig dims, e.g. 128,128,256,256")
    ap.add_argument("--dtype", default="<u2")
    ap.add_argument("--offset", type=int, default=0, help="byte offset of the first frame")
    ap.add_argument("--npy", action="store_true", help="open with np.load(mmap_mode='r')")
    ap.add_argument("--case", action="append", choices=CASES, help="default: all")
    ap.add_argument("--mask-disk", default="128,128,40")
    ap.add_argument("--sparse-disk", default="128,128,10")
    ap.add_argument("--masks16", help=".npy stack (16, *sig) of dense masks")
    ap.add_argument("--pick", default="0,1,2,3", help="flat frame indices")
    ap.add_argument("--chunk-mib", type=float, default=64)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--label-suffix", default="", help="appended to each case label")
    ap.add_argument("--reuse-memmap", action="store_true",
                    help="one memmap for all passes (default: a new one for each)")
    a = ap.parse_args()

    shape = tuple(int(v) for v in a.shape.split(","))
    sig = shape[2:]
    npix = int(np.prod(sig))
    nframes = int(np.prod(shape[:2]))

    def open_mm():
        """The frames as a (frames, npix) memmap view."""
        if a.npy:
            arr = np.load(a.path, mmap_mode="r")
            return arr.reshape(-1, npix)[:nframes]
        return np.memmap(a.path, dtype=np.dtype(a.dtype), mode="r", offset=a.offset,
                         shape=(nframes, npix))

    mm = open_mm()
    dtype = mm.dtype
    frame_bytes = npix * dtype.itemsize
    fpc = max(1, int(a.chunk_mib * 2**20 // frame_bytes))

    cx, cy, r = (float(v) for v in a.mask_disk.split(","))
    m1 = disk(sig, cx, cy, r).reshape(npix)
    cx, cy, r = (float(v) for v in a.sparse_disk.split(","))
    ms = disk(sig, cx, cy, r).reshape(npix)
    idx = np.flatnonzero(ms)
    picks = [int(v) for v in a.pick.split(",")]

    cases = {
        "sum": (case_sum, None, nframes),
        "sumsig": (case_sumsig, None, nframes),
        "stddev": (case_stddev, None, nframes),
        "mask1": (case_dot, m1, nframes),
        "sparse": (case_sparse, (idx, ms[idx]), nframes),
        "pick": (case_pick, picks, len(picks)),
    }
    if a.masks16:
        stack = np.load(a.masks16).astype(np.float32)
        cases["masks16"] = (case_dot, np.ascontiguousarray(stack.reshape(len(stack), npix).T),
                            nframes)
    blas = blas_info()

    for name in a.case or CASES:
        if name not in cases:
            print(f"numpy_baseline: case {name} needs --masks16", file=sys.stderr)
            continue
        fn, arg, frames = cases[name]
        times = []
        for i in range(a.warmup + a.repeat):
            if not a.reuse_memmap:
                del mm  # unmapped: the next pass maps and faults the file in again
                mm = open_mm()
            t0 = time.perf_counter()
            res = fn(mm, fpc, arg)
            t1 = time.perf_counter()
            if i >= a.warmup:
                times.append(t1 - t0)
            if i == 0:
                res0 = np.asarray(res, np.float64)
                checksum = float(res0[np.isfinite(res0)].sum())
        nbytes = frames * frame_bytes
        med = statistics.median(times)
        print(json.dumps({
            "tool": "numpy", "case": name + a.label_suffix, "path": a.path,
            "threads": "default", "backend": "memmap", "status": "ok",
            "reuse_memmap": a.reuse_memmap,
            "frames": frames, "frame_bytes": frame_bytes, "bytes": nbytes,
            "chunk_frames": fpc, "warmup": a.warmup, "repeat": a.repeat,
            "times_s": [round(t, 6) for t in times],
            "min_s": min(times), "median_s": med, "max_s": max(times),
            "gbps_median": nbytes / med / 1e9, "gbps_min": nbytes / max(times) / 1e9,
            "gbps_max": nbytes / min(times) / 1e9, "checksum": checksum, "blas": blas,
        }), flush=True)


if __name__ == "__main__":
    main()
