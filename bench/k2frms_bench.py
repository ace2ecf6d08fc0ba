#!/usr/bin/python3
"""K2IS and FRMS6 reading speed against raw files of the same frames (`make bench` hook).

    /usr/bin/python3 bench/k2frms_bench.py [--build DIR] [--scratch DIR] [--repeat N]
        [--threads 1,2] [--json PATH]

Writes, in the scratch directory (default /tmp/tessera-bench-k2frms; reused when present):
a K2IS data set (tests/gen/gen_k2is.py: a 6×6 scan plus 2 frames before the shutter, 8
sector files of 12-bit packed blocks, 206 MB, 274 MB as uint16 frames), an FRMS6 data
set (tests/gen/gen_frms6.py: a 32×32 scan of folded 264×264 frames, 143 MB) and, for
each, a raw file of uint16 frames of the same shape (the bytes the decoder produces).
Then times `sumsig` and `sum` with bench/tsr-bench (median of --repeat runs after one
warm-up, hot page cache, dataset corrections off) for each thread count, and prints a
table of GB/s of decoded frames (frames × 2 bytes per pixel) with the ratio of each
format to raw, then JSON (also written to --json).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
GEN = HERE.parent / "tests" / "gen"


def write_raw(path, n, shape, seed=1):
    if path.exists() and path.stat().st_size == n * shape[0] * shape[1] * 2:
        return
    rng = np.random.default_rng(seed)
    with open(path, "wb") as f:
        per = max(1, (64 << 20) // (shape[0] * shape[1] * 2))
        for i in range(0, n, per):
            k = min(per, n - i)
            f.write(rng.integers(0, 4096, size=(k,) + shape, dtype=np.uint16).tobytes())


def prepare(d):
    d.mkdir(parents=True, exist_ok=True)
    k2 = d / "k2_"
    if not (d / "k2_8.bin").exists():
        subprocess.run([sys.executable, str(GEN / "gen_k2is.py"), str(k2), "--shape", "6,6",
                        "--pre", "2"], check=True)
    f6 = d / "f6"
    if not (d / "f6.hdr").exists():
        subprocess.run([sys.executable, str(GEN / "gen_frms6.py"), str(f6), "--shape", "32,32",
                        "--dark", "10"], check=True)
    write_raw(d / "k2.raw", 36, (1860, 2048))
    write_raw(d / "f6.raw", 1024, (264, 264))
    return [
        ("k2is", [str(k2) + ".gtg"],
         [str(d / "k2.raw"), "--format", "raw", "--set", "nav_shape=6,6",
          "--set", "sig_shape=1860,2048", "--set", "dtype=u2"]),
        ("frms6", [str(f6) + ".hdr", "--set", "enable_offset_correction=false"],
         [str(d / "f6.raw"), "--format", "raw", "--set", "nav_shape=32,32",
          "--set", "sig_shape=264,264", "--set", "dtype=u2"]),
    ]


def bench(tool, args, udf, threads, repeat):
    cmd = [tool, *args, "--udf", udf, "--threads", str(threads), "--warmup", "1",
           "--repeat", str(repeat)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=str(HERE.parent / "build"))
    ap.add_argument("--scratch", default="/tmp/tessera-bench-k2frms")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    tool = os.path.join(a.build, "bench", "tsr-bench")
    rows = []
    for fmt, fargs, rargs in prepare(pathlib.Path(a.scratch)):
        for udf in ("sumsig", "sum"):
            for t in (int(x) for x in a.threads.split(",")):
                f = bench(tool, fargs, udf, t, a.repeat)
                r = bench(tool, rargs, udf, t, a.repeat)
                rows.append({"format": fmt, "udf": udf, "threads": t,
                             "gbps": f["gbps_median"], "raw_gbps": r["gbps_median"],
                             "ratio": f["gbps_median"] / r["gbps_median"],
                             "median_s": f["median_s"], "raw_median_s": r["median_s"],
                             "bytes": f["bytes"]})
    print(f"{'format':8} {'udf':7} {'thr':>3} {'GB/s':>7} {'raw GB/s':>9} {'ratio':>6}")
    for r in rows:
        print(f"{r['format']:8} {r['udf']:7} {r['threads']:3d} {r['gbps']:7.2f} "
              f"{r['raw_gbps']:9.2f} {r['ratio']:6.2f}")
    js = json.dumps({"k2frms": rows})
    print(js)
    if a.json:
        pathlib.Path(a.json).write_text(js + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
