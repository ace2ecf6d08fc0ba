#!/usr/bin/python3
"""Python against the CLI: the same built-in UDF run from Python and from
`tessera run`, and the cost of calling a Python UDF per tile.

    /usr/bin/python3 bench/python_bench.py [--build DIR] [--scratch DIR] [--mib N]
        [--repeat N] [--threads N] [--udf sum] [--json PATH]

1. A raw file of little-endian u16 256x256 frames (--mib, default 1024) in the
   scratch directory (default /tmp/tessera-pybench), written by the project's
   generator (`tsr-gen random`) and read once, so that it is in the page cache.
2. The run, interleaved, --repeat times each (medians):
   - CLI: `tessera run UDF FILE ... --quiet -o DIR/`, process start to exit;
   - Python, in process: ctx.load + ctx.run_udf + tessera.export(res, DIR/)
     (the same work: open, run, write the .npy files), in one interpreter;
   - Python, a new process per run: `python3 -c` doing the above, including
     the interpreter's start and `import tessera` (numpy's import is most of it).
   The ratio in process / CLI is the figure of the issue (within 5 %).
3. Per-tile overhead of a Python UDF:
   - a no-op process_tile on a memory dataset of 1-frame tiles of 4x4 pixels:
     the time per call (C -> GIL -> Python -> back), for 1 and 2 threads;
   - a no-op UDF that takes the dataset's dtype (USE_NATIVE_DTYPE) beside the
     built-in one on the file: the extra time per tile of real size (the
     engine's default 1 MiB tiles), i.e. the cost of the call alone;
   - the same UDF asking for float32 (the default): the engine then also
     converts every tile to float32 (and the wider type halves the tiles).
Prints a table and writes JSON (--json, default bench/python_results.json).
Timings are never test assertions; the machine may be shared.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIG = (256, 256)


def median(xs):
    return statistics.median(xs)


def make_file(build, scratch, mib):
    os.makedirs(scratch, exist_ok=True)
    frames = max(1, mib * 2 ** 20 // (SIG[0] * SIG[1] * 2))
    nav = (frames // 64, 64) if frames % 64 == 0 else (frames, 1)
    path = os.path.join(scratch, f"pybench_{nav[0]}x{nav[1]}_256x256_u2.raw")
    size = nav[0] * nav[1] * SIG[0] * SIG[1] * 2
    if not (os.path.exists(path) and os.path.getsize(path) == size):
        gen = os.path.join(build, "tsr-gen")
        shape = ",".join(map(str, nav + SIG))
        subprocess.run([gen, "random", path, "--shape", shape, "--dtype", "u2", "--seed", "1"],
                       check=True, stdout=subprocess.DEVNULL)
    with open(path, "rb") as f:  # into the page cache
        while f.read(1 << 24):
            pass
    return path, nav


PY_RUN = """
import sys, time
t0 = time.perf_counter()
sys.path[:0] = {paths!r}
import tessera
with tessera.Context(threads={threads}) as ctx:
    ds = ctx.load("raw", path={path!r}, nav_shape={nav!r}, sig_shape={sig!r}, dtype="<u2")
    res = ctx.run_udf(dataset=ds, udf=tessera.udf.builtin({udf!r}))
    tessera.export(res, {out!r} + "/")
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--scratch", default="/tmp/tessera-pybench")
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--threads", type=int, default=0, help="0: one per core")
    ap.add_argument("--udf", default="sum")
    ap.add_argument("--json", default=os.path.join(HERE, "python_results.json"))
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    paths = [os.path.join(ROOT, "python"), os.path.join(build, "python")]
    sys.path[:0] = paths
    import numpy as np
    import tessera

    cli = os.path.join(build, "tessera")
    path, nav = make_file(build, a.scratch, a.mib)
    gb = nav[0] * nav[1] * SIG[0] * SIG[1] * 2 / 1e9
    out = tempfile.mkdtemp(prefix="pybench-out-")
    cli_cmd = [cli, "run", a.udf, path, "--format", "raw", "--set",
               f"nav_shape={nav[0]},{nav[1]}", "--set", f"sig_shape={SIG[0]},{SIG[1]}",
               "--set", "dtype=<u2", "--threads", str(a.threads), "--quiet", "-o", out + "/"]
    py_cmd = [sys.executable, "-c", PY_RUN.format(paths=paths, threads=a.threads, path=path,
                                                  nav=nav, sig=SIG, udf=a.udf, out=out)]
    ctx = tessera.Context(threads=a.threads)
    udf = tessera.udf.builtin(a.udf)

    def py_inproc():
        ds = ctx.load("raw", path=path, nav_shape=nav, sig_shape=SIG, dtype="<u2")
        res = ctx.run_udf(dataset=ds, udf=udf)
        tessera.export(res, out + "/")

    def timed(f):
        t = time.perf_counter()
        f()
        return time.perf_counter() - t

    py_inproc()  # warm-up: imports, first touch
    subprocess.run(cli_cmd, check=True)
    t_cli, t_py, t_pyproc = [], [], []
    for _ in range(a.repeat):
        t_cli.append(timed(lambda: subprocess.run(cli_cmd, check=True)))
        t_py.append(timed(py_inproc))
        t_pyproc.append(timed(lambda: subprocess.run(py_cmd, check=True)))

    # per-tile overhead
    class NoopTile(tessera.UDF):
        def get_result_buffers(self):
            return {"n": self.buffer(kind="single", dtype="int64")}

        def process_tile(self, tile):
            self.results.n[:] += 1

        def merge(self, dest, src):
            dest.n[:] += src.n

    class NoopTile1(NoopTile):
        def get_tiling_preferences(self):
            return {"depth": 1}

    class NoopTileNative(NoopTile):
        def get_preferred_input_dtype(self):
            return tessera.UDF.USE_NATIVE_DTYPE

    calls = {}
    small = np.zeros((200, 100, 4, 4), np.uint8)
    for th in (1, 2):
        with tessera.Context(threads=th) as c:
            ds = c.load("memory", data=small)
            ts = [timed(lambda: c.run_udf(dataset=ds, udf=NoopTile1())) for _ in range(5)]
            base = [timed(lambda: c.run_udf(dataset=ds, udf=tessera.udf.SumUDF()))
                    for _ in range(5)]
            calls[th] = (median(ts) - median(base)) / small.shape[0] / small.shape[1]
    ds = ctx.load("raw", path=path, nav_shape=nav, sig_shape=SIG, dtype="<u2")
    t_alone, t_with, t_f32 = [], [], []
    n_tiles = n_tiles_f32 = 0
    for _ in range(a.repeat):
        t_alone.append(timed(lambda: ctx.run_udf(dataset=ds, udf=udf)))
        t0 = time.perf_counter()
        r = ctx.run_udf(dataset=ds, udf=[udf, NoopTileNative()])
        t_with.append(time.perf_counter() - t0)
        n_tiles = int(r[1]["n"].data[0])
        t0 = time.perf_counter()
        r = ctx.run_udf(dataset=ds, udf=[udf, NoopTile()])
        t_f32.append(time.perf_counter() - t0)
        n_tiles_f32 = int(r[1]["n"].data[0])
    per_tile = (median(t_with) - median(t_alone)) / n_tiles
    per_tile_f32 = (median(t_f32) - median(t_alone)) / n_tiles_f32

    res = {
        "file": path, "gb": gb, "udf": a.udf, "threads": ctx.threads, "repeat": a.repeat,
        "cli_s": t_cli, "python_inprocess_s": t_py, "python_process_s": t_pyproc,
        "cli_median_s": median(t_cli), "python_inprocess_median_s": median(t_py),
        "python_process_median_s": median(t_pyproc),
        "ratio_inprocess_to_cli": median(t_py) / median(t_cli),
        "ratio_process_to_cli": median(t_pyproc) / median(t_cli),
        "python_udf_call_us": {str(k): v * 1e6 for k, v in calls.items()},
        "python_udf_tiles": n_tiles,
        "python_udf_per_tile_us": per_tile * 1e6,
        "python_udf_f32_tiles": n_tiles_f32,
        "python_udf_f32_per_tile_us": per_tile_f32 * 1e6,
        "run_alone_s": t_alone, "run_with_python_udf_s": t_with,
        "run_with_python_udf_f32_s": t_f32,
        "run_alone_median_s": median(t_alone), "run_with_python_udf_median_s": median(t_with),
        "run_with_python_udf_f32_median_s": median(t_f32),
    }
    print(f"{a.udf} over {gb:.2f} GB (page cache), {ctx.threads} threads, median of "
          f"{a.repeat}:")
    print(f"  {'':32s} {'median s':>9s} {'min-max s':>15s} {'GB/s':>6s} {'/ CLI':>6s}")
    for name, ts in (("CLI (tessera run)", t_cli), ("Python, in process", t_py),
                     ("Python, new process", t_pyproc)):
        print(f"  {name:32s} {median(ts):9.4f} {min(ts):7.4f}-{max(ts):7.4f} "
              f"{gb / median(ts):6.2f} {median(ts) / median(t_cli):6.3f}")
    print("Python UDF overhead:")
    for th, v in calls.items():
        print(f"  no-op process_tile call, 1-frame 4x4 tiles, {th} thread(s): {v * 1e6:.2f} us")
    print(f"  no-op UDF (native dtype) beside {a.udf} on the file: {n_tiles} tiles, "
          f"{per_tile * 1e6:.1f} us per tile ({median(t_alone):.4f} s alone, "
          f"{median(t_with):.4f} s with it)")
    print(f"  the same asking for float32 tiles: {n_tiles_f32} tiles, {per_tile_f32 * 1e6:.1f} us "
          f"per tile ({median(t_f32):.4f} s; includes converting every tile to float32)")
    with open(a.json, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {a.json}")


if __name__ == "__main__":
    main()
