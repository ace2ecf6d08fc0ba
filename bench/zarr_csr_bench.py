#!/usr/bin/python3
"""Zarr and raw_csr reading speed, each against raw data of the same bytes in the same run.

    /usr/bin/python3 bench/zarr_csr_bench.py [--build DIR] [--scratch DIR] [--repeat N]
        [--threads 1,2] [--nav NY,NX] [--sig SY,SX] [--density D] [--json PATH]

Datasets (in --scratch, default /tmp/tessera-bench-zc; reused when present):
  raw      the frames as a .raw file (tsr-gen random: full-range u16, incompressible);
  zarr     the same array as Zarr stores written by zarr-python (tests/gen/gen_zarr.py
           conventions) with chunks of one scan row of frames, uncompressed and compressed
           with blosc-lz4 (shuffle), zstd and lz4 — the compressed stores hold
           detector-like Poisson(2) counts instead, so that they compress; their raw twin
           `counts.raw` holds the same values;
  csr      a raw_csr dataset of the given density (tests/gen/gen_raw_csr.py) and its dense
           twin as a .raw file.
Every file is put in the page cache as reading it from disk leaves it (recache()) before
the cases run.  Cases: `sum` on each, through bench/tsr-bench (public API; the wall time of tsr_run_start to
tsr_run_wait, hot page cache, median of --repeat), for each thread count.  GB/s count the
dense bytes of the frames (nav × sig × 2), so the ratio to raw is the speed ratio; for the
sparse dataset the sparse path (sum alone) and the densified path (sum with stddev, which
needs dense tiles, against sum+stddev on the raw twin).  Prints a table and writes JSON.
"""
import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "gen"))


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True,
                          **kw)


def make_data(a, scratch):
    import zarr
    import gen_raw_csr
    import gen_zarr
    nav = tuple(int(x) for x in a.nav.split(","))
    sig = tuple(int(x) for x in a.sig.split(","))
    shape = nav + sig
    nbytes = int(np.prod(shape)) * 2
    raw = scratch / "frames.raw"
    if not raw.exists() or raw.stat().st_size != nbytes:
        sh(a.build / "tsr-gen", "random", raw, "--shape", ",".join(map(str, shape)), "--dtype",
           "u2", "--seed", 1)
    data = np.memmap(raw, "<u2", "r", shape=shape)
    chunks = (1, nav[1]) + sig
    out = {"raw": (raw, ["--format", "raw", "--set", f"nav_shape={a.nav}", "--set",
                         f"sig_shape={a.sig}", "--set", "dtype=<u2"])}
    z = scratch / "frames-none.zarr"
    if not (z / ".zarray").exists():
        zz = zarr.open(str(z), mode="w", shape=shape, chunks=chunks, dtype="<u2",
                       compressor=None)
        for y in range(nav[0]):
            zz[y] = data[y]
    out["zarr-none"] = (z, [])
    counts = scratch / "counts.raw"
    rng = np.random.default_rng(2)
    if not counts.exists() or counts.stat().st_size != nbytes:
        with open(counts, "wb") as f:
            for y in range(nav[0]):
                rng.poisson(2.0, size=(nav[1],) + sig).astype("<u2").tofile(f)
    cdata = np.memmap(counts, "<u2", "r", shape=shape)
    out["counts-raw"] = (counts, out["raw"][1])
    for comp in ("blosc-lz4", "zstd", "lz4"):
        z = scratch / f"counts-{comp}.zarr"
        if not (z / ".zarray").exists():
            zz = zarr.open(str(z), mode="w", shape=shape, chunks=chunks, dtype="<u2",
                           compressor=gen_zarr.compressor(comp))
            for y in range(nav[0]):
                zz[y] = cdata[y]
        out[f"zarr-{comp}"] = (z, [])
    toml = scratch / "sparse.toml"
    dense = scratch / "sparse-dense.raw"
    if not toml.exists() or not dense.exists() or dense.stat().st_size != nbytes:
        sh(sys.executable, ROOT / "tests" / "gen" / "gen_raw_csr.py", toml, "--nav", a.nav,
           "--sig", a.sig, "--density", a.density, "--dtype", "u2")
        ip = np.fromfile(scratch / "sparse.indptr", "<i8")
        idx = np.fromfile(scratch / "sparse.indices", "<i4")
        val = np.fromfile(scratch / "sparse.data", "<u2")
        npix = int(np.prod(sig))
        with open(dense, "wb") as f:
            for r0 in range(0, len(ip) - 1, 256):
                r1 = min(r0 + 256, len(ip) - 1)
                block = np.zeros((r1 - r0, npix), "<u2")
                for r in range(r0, r1):
                    block[r - r0, idx[ip[r]:ip[r + 1]]] = val[ip[r]:ip[r + 1]]
                block.tofile(f)
    out["csr"] = (toml, [])
    out["csr-dense-raw"] = (dense, out["raw"][1])
    assert gen_raw_csr  # imported for its CLI's conventions
    return out, nbytes


def recache(path):
    """Put a dataset's files in the page cache as reading them from disk leaves them: write
    back, drop their cached pages, read them again.  Files just written sit in the cache in
    small folios, which makes hot reads several times slower than those of files read from
    disk (see bench/run.py, warm()); every dataset here is treated alike."""
    p = pathlib.Path(path)
    files = [p] if p.is_file() else [q for q in p.rglob("*") if q.is_file()]
    if p.suffix == ".toml":
        files += [p.with_suffix(s) for s in (".indptr", ".indices", ".data")]
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            while os.read(fd, 1 << 24):
                pass
        finally:
            os.close(fd)


def bench(a, path, args, udfs, threads):
    cmd = [a.build / "bench" / "tsr-bench", path, *args]
    for u in udfs:
        cmd += ["--udf", u]
    cmd += ["--threads", threads, "--warmup", 1, "--repeat", a.repeat]
    r = json.loads(sh(*cmd).stdout)
    assert r["status"] == "ok", r
    return r


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", type=pathlib.Path, default=ROOT / "build")
    ap.add_argument("--scratch", type=pathlib.Path, default=pathlib.Path("/tmp/tessera-bench-zc"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--nav", default="32,64")
    ap.add_argument("--sig", default="128,128")
    ap.add_argument("--density", type=float, default=0.002)
    ap.add_argument("--json", type=pathlib.Path, default=ROOT / "bench" / "zarr_csr_results.json")
    a = ap.parse_args(argv)
    a.scratch.mkdir(parents=True, exist_ok=True)
    data, nbytes = make_data(a, a.scratch)
    for path, _ in data.values():
        recache(path)
    cases = [("raw", ["sum"], None), ("zarr-none", ["sum"], "raw"),
             ("counts-raw", ["sum"], None), ("zarr-blosc-lz4", ["sum"], "counts-raw"),
             ("zarr-zstd", ["sum"], "counts-raw"), ("zarr-lz4", ["sum"], "counts-raw"),
             ("csr-dense-raw", ["sum"], None), ("csr", ["sum"], "csr-dense-raw"),
             ("csr-dense-raw", ["sum", "stddev"], None), ("csr", ["sum", "stddev"], "csr-dense-raw")]
    results = []
    print(f"{'case':<28}{'threads':>8}{'GB/s':>9}{'min-max':>16}{'vs raw':>9}")
    for t in [int(x) for x in a.threads.split(",")]:
        base = {}
        for name, udfs, ref in cases:
            path, args = data[name]
            r = bench(a, path, args, udfs, t)
            secs = r["times_s"]
            gbs = [nbytes / s / 1e9 for s in secs]
            med = statistics.median(gbs)
            label = f"{name} {'+'.join(udfs)}"
            base[(name, tuple(udfs))] = med
            ratio = med / base[(ref, tuple(udfs))] if ref else None
            results.append({"case": label, "threads": t, "gbps_median": med,
                            "gbps_min": min(gbs), "gbps_max": max(gbs), "ratio_to_raw": ratio,
                            "raw_twin": ref})
            print(f"{label:<28}{t:>8}{med:>9.2f}{min(gbs):>8.2f}-{max(gbs):<7.2f}"
                  f"{'' if ratio is None else f'{ratio:>9.2f}'}")
    a.json.write_text(json.dumps({"bytes": nbytes, "nav": a.nav, "sig": a.sig,
                                  "density": a.density, "results": results}, indent=1))
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
