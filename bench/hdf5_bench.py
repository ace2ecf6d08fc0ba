#!/usr/bin/python3
"""HDF5 reader benchmark: the issue's three figures, each against a baseline
measured in the same run.

    /usr/bin/python3 bench/hdf5_bench.py [--build DIR] [--scratch DIR] [--quick]
        [--repeat N] [--json PATH]

1. Chunked, uncompressed HDF5 against the same bytes as a raw file: `sum`
   (tsr-bench, 2 threads, hot page cache, median of --repeat runs) on a scan
   of 256x256 u16 frames (32x64, 256 MiB; --quick: 16x32) stored as raw, as
   a contiguous HDF5 dataset, and chunked by frame (1,1,256,256) and by
   blocks (1,8,128,128).  Target: chunked >= 80 % of raw.
2. Bitshuffle-LZ4 decoding per core: bench/bslz4-bench (one core, 512x512
   frames of u16 and u32 detector-like counts).  Target: >= 1.5 GB/s of
   output.
3. Scaling of the HDF5 reader from 1 to 2 threads: `sum` on the same scan
   stored bitshuffle-LZ4 (one chunk per frame, as DECTRIS writes) and
   chunked uncompressed.

Prints a table and, last, one JSON line (also written to --json).  Timings
are noisy on a shared machine; the load average is recorded with each row.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "gen"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def read_through(path):
    buf = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def make_files(scratch, nav):
    import h5py
    import numpy as np
    import gen_hdf5
    sig = (256, 256)
    shape = tuple(nav) + sig
    tag = "x".join(map(str, nav))
    files = {
        "raw": os.path.join(scratch, f"scan_{tag}.raw"),
        "hdf5 contiguous": os.path.join(scratch, f"scan_{tag}_contig.h5"),
        "hdf5 chunks (1,1,256,256)": os.path.join(scratch, f"scan_{tag}_frames.h5"),
        "hdf5 chunks (1,8,128,128)": os.path.join(scratch, f"scan_{tag}_blocks.h5"),
        "hdf5 bslz4 (1,1,256,256)": os.path.join(scratch, f"scan_{tag}_bslz4.h5"),
    }
    if all(os.path.exists(p) for p in files.values()):
        return files, shape
    log(f"writing {shape} u16 as raw and HDF5 in {scratch} ...")
    row = gen_hdf5.counts((1,) + shape[1:], "u2", seed=11)
    kinds = [("hdf5 contiguous", None, None), ("hdf5 chunks (1,1,256,256)", (1, 1, 256, 256), None),
             ("hdf5 chunks (1,8,128,128)", (1, 8, 128, 128), None),
             ("hdf5 bslz4 (1,1,256,256)", (1, 1, 256, 256), "bslz4")]
    with open(files["raw"], "wb") as raw:
        for _ in range(shape[0]):
            row.tofile(raw)
    for name, chunks, comp in kinds:
        with h5py.File(files[name], "w") as f:
            kw = gen_hdf5._filter_kwargs(comp)
            ds = f.create_dataset("/data", shape=shape, dtype="u2", chunks=chunks, **kw)
            for r in range(shape[0]):
                ds[r] = row[0]
    return files, shape


def tsr_bench(build, path, args, threads, repeat):
    cmd = [os.path.join(build, "bench", "tsr-bench"), path, *args, "--udf", "sum",
           "--threads", str(threads), "--warmup", "1", "--repeat", str(repeat)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"tsr-bench failed: {' '.join(cmd)}\n{p.stderr}")
    d = json.loads(p.stdout.strip().splitlines()[-1])
    d["loadavg"] = os.getloadavg()[0]
    return d


def gbps(d):
    for k in ("gbps_median", "median_gbps"):
        if k in d:
            return d[k]
    if "seconds" in d and "bytes" in d:
        return d["bytes"] / statistics.median(d["seconds"]) / 1e9
    raise KeyError(f"no throughput in {d}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--scratch", default="/tmp/tessera-bench")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--json", default=os.path.join(HERE, "hdf5_results.json"))
    a = ap.parse_args()
    os.makedirs(a.scratch, exist_ok=True)
    nav = (16, 32) if a.quick else (32, 64)
    files, shape = make_files(a.scratch, nav)
    load0 = os.getloadavg()[0]
    raw_args = ["--format", "raw", "--set", f"nav_shape={shape[0]},{shape[1]}",
                "--set", "sig_shape=256,256", "--set", "dtype=<u2"]
    res = {"shape": shape, "cases": {}}

    # 1 + 3: sum on each storage, 1 and 2 threads
    rows = []
    for name, path in files.items():
        read_through(path)
        for threads in (1, 2):
            d = tsr_bench(a.build, path, raw_args if name == "raw" else [], threads, a.repeat)
            res["cases"][f"{name} t{threads}"] = d
            rows.append((name, threads, gbps(d), d.get("checksum"), d["loadavg"]))
            log(f"  {name:28s} threads {threads}: {gbps(d):6.2f} GB/s")
    sums = {r[3] for r in rows}
    if len(sums) != 1:
        raise SystemExit(f"the storages disagree on the sum: {rows}")
    raw2 = next(r[2] for r in rows if r[0] == "raw" and r[1] == 2)

    # 2: bslz4 decoding per core
    dec = {}
    for es in (2, 4):
        p = subprocess.run([os.path.join(a.build, "bench", "bslz4-bench"), "512", str(es)],
                           capture_output=True, text=True, check=True)
        dec[f"u{8 * es}"] = json.loads(p.stdout.strip().splitlines()[-1])
    res["bslz4_decode"] = dec

    print(f"\nHDF5 reader, sum of {shape} u16 ({shape[0] * shape[1] * 256 * 256 * 2 >> 20} MiB), "
          f"hot page cache, median of {a.repeat}")
    print(f"load average at the start {load0:.2f} (2 shared cores: other processes' load "
          "makes the 2-thread figures vary)")
    print(f"{'storage':30s} {'1 thread':>10s} {'2 threads':>10s} {'1->2':>6s} {'vs raw (2t)':>12s}")
    for name in files:
        g1 = next(r[2] for r in rows if r[0] == name and r[1] == 1)
        g2 = next(r[2] for r in rows if r[0] == name and r[1] == 2)
        res["cases"][name] = {"gbps_t1": g1, "gbps_t2": g2, "scaling": g2 / g1,
                              "ratio_to_raw_t2": g2 / raw2}
        print(f"{name:30s} {g1:8.2f} GB/s {g2:8.2f} GB/s {g2 / g1:5.2f}x {g2 / raw2:11.0%}")
    print("\nbitshuffle-LZ4 decoding on one core (512x512 frames, GB/s of output):")
    for k, d in dec.items():
        kern = ", ".join(f"{kk.split('_')[1]} {v:.2f}" for kk, v in d.items()
                         if kk.startswith("untranspose_"))
        print(f"  {k}: {d['gbps_per_core']:.2f} GB/s (compression ratio {d['ratio']:.1f}; "
              f"bit transpose alone: {kern})")
    # the target's case: chunks of whole frames (as detectors and h5py's
    # writers of 4D-STEM scans lay them out); blocks that split the frame's
    # columns cost one more copy and are reported beside it
    chunked = res["cases"]["hdf5 chunks (1,1,256,256)"]["ratio_to_raw_t2"]
    res["targets"] = {
        "chunked_uncompressed_vs_raw": chunked, "chunked_ok": chunked >= 0.8,
        "chunked_blocks_vs_raw": res["cases"]["hdf5 chunks (1,8,128,128)"]["ratio_to_raw_t2"],
        "bslz4_gbps_per_core": min(d["gbps_per_core"] for d in dec.values()),
        "bslz4_ok": min(d["gbps_per_core"] for d in dec.values()) >= 1.5,
        "bslz4_scaling_1_to_2": res["cases"]["hdf5 bslz4 (1,1,256,256)"]["scaling"],
    }
    print("\ntargets: chunked uncompressed (frames) >= 80 %% of raw: %s (%.0f %%); bslz4 >= 1.5 GB/s per "
          "core: %s (%.2f); bslz4 file 1->2 threads: %.2fx" % (
              "yes" if res["targets"]["chunked_ok"] else "NO", 100 * chunked,
              "yes" if res["targets"]["bslz4_ok"] else "NO",
              res["targets"]["bslz4_gbps_per_core"], res["targets"]["bslz4_scaling_1_to_2"]))
    res["loadavg_end"] = os.getloadavg()
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res["targets"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
