#!/usr/bin/python3
"""Tessera's benchmark (`make bench`): every case against the ceiling and numpy baselines.

    /usr/bin/python3 bench/run.py [--build DIR] [--scratch DIR] [--quick | --big]
        [--repeat N] [--threads 1,2] [--backends auto,pread,...] [--cases sum,stddev,...]
        [--json PATH] [--no-numpy] [--no-latency] [--no-rss] [--no-recache] [--full]
        [--tile-sweep] [--latency-runs N] [--no-formats] [--format-cases LABEL,...]

What it does, in order (see docs/performance.md for the results and their analysis):

1. Datasets, in the scratch directory (default /tmp/tessera-bench; files already there with
   the right size are reused): the main file, a 128×128 scan of 256×256 little-endian u16
   frames (2 GiB; --quick: 64×64, 512 MiB; --big: 256×256, 8 GiB), written by the project's
   generator `tsr-gen random`; the same data as .npy (a version 1.0 header, written here,
   followed by a copy of the raw bytes, so it never holds the data in memory); a 64×64 file
   (512 MiB) for the latency figures; a 4 GiB file (128×256 scan) for the memory figures;
   a stack of 16 dense random float32 masks as .npy.
2. Puts every file in the page cache as reading it from disk leaves it: drops its cached pages
   and reads it again, at the start and again before a case if the file was last read more
   than 30 s earlier (see warm(): the folios the page cache holds change pread and mmap speeds
   by up to 8x on this VM; --no-recache only reads the files).
3. Baselines: the ceiling (bench/ceiling.c: pread of 1 MiB blocks by each thread, u32 frame
   sum; default compiler flags, as the library) for each thread count, measured at the start
   and at the end of the run (the better median is the reference, so a busy moment of the
   machine cannot make a case look better than it is); the same ceiling built with
   -march=native and a mmap variant, for reference; numpy (bench/numpy_baseline.py on
   /usr/bin/python3) for each case, with a new memmap for every pass (as tsr-bench opens its
   dataset anew for every run) and again with one memmap kept for all passes.
4. Tessera (bench/tsr-bench.c through the public API) for every case — sum, sumsig, stddev,
   masks with one disk, 16 dense masks and one sparse disk, pick, and every other UDF that
   `tessera list udfs --json` lists (required parameters filled from a table of defaults by
   name) — for each thread count and each I/O backend of tsr_io_backend_t in
   include/tessera.h (a backend the engine rejects shows as n/a); `sum` also on the .npy
   file and with the inline executor.  The backends that bypass the page cache (direct,
   uring) read at the disk's speed whatever the case, so by default they run only sum,
   stddev and 16 masks (--full: every case).
5. Latency: `tessera run sum` on the 512 MiB file from process start to the result file
   written (median of --latency-runs runs, hot cache), and the same for one frame.
6. Memory: peak RSS (ru_maxrss, through bench/peak-rss) of `tessera run sum,sumsig,stddev` on
   a 1 GiB and a 4 GiB dataset of 256×256 frames, for each backend, with their ratio.
7. File formats (--no-formats skips them): for each case of FORMAT_CASES (MIB U16, MIB RAW
   12-bit quad, MIB RAW 1-bit quad, and DM4, SER, MRC, BLO, EMPAD, SEQ, TVIPS through the shared
   strided reader), a file written by the format's generator in tests/gen/
   (512 MiB of decoded frames; --quick 128 MiB, --big 2 GiB; reused when present) and a raw
   file of the same frames' bytes (the decoded shape and dtype, little-endian, `tsr-gen
   random`); `sum` on both for each thread count (default backend).  GB/s count the decoded
   (output) bytes, so the ratio to the raw case is the cost of locating and decoding.
8. Prints a table (median GB/s of input bytes, min–max, ratio to the ceiling at the same
   thread count, ratio to numpy, speed-up from 1 to 2 threads), the latency and memory
   figures and a check of the issue's targets; writes everything to --json (default
   bench/results.json).

Input bytes are selected frames × frame bytes for every tool.  Timings are noisy on a shared
machine: with each measurement the share of the CPU that other processes used meanwhile is
recorded ("others' CPU", from /proc/stat less this run's own rusage) and printed in the tables.
"""
import argparse
import json
import os
import platform
import random
import re
import resource
import statistics
import struct
import subprocess
import sys
import time
from array import array

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIG = (256, 256)
FRAME_BYTES = SIG[0] * SIG[1] * 2
MASK_DISK = "disk:128,128,40"
SPARSE_DISK = "disk:128,128,10"
PAGE_CACHE_BYPASS = ("direct", "uring")  # backends that read the disk, not the page cache
# Cases run with those backends by default (--full: all): every case reads at the disk's speed
# there, so an I/O-bound, a mixed and a compute-bound case show it at a third of the time.
BYPASS_CASES = ("sum", "stddev", "masks16")

# Format cases: a file written by a generator of tests/gen/ ({out}: the path, {n}: frames), the
# shape and dtype of its decoded frames, and the tessera options that open it.  The raw file of
# the same decoded bytes is the baseline of each.
FORMAT_CASES = [
    {"label": "mib-u16", "ext": ".mib", "sig": (256, 256), "dtype": "u2",
     "gen": ["tests/gen/gen_mib.py", "{out}", "--shape", "{n},256,256", "--depth", "12",
             "--max", "4095"], "args": []},
    {"label": "mib-raw12-quad", "ext": ".mib", "sig": (512, 512), "dtype": "u2",
     "gen": ["tests/gen/gen_mib.py", "{out}", "--shape", "{n},512,512", "--depth", "12",
             "--raw", "--quad", "--max", "4095"], "args": []},
    {"label": "mib-raw1-quad", "ext": ".mib", "sig": (512, 512), "dtype": "u1",
     "gen": ["tests/gen/gen_mib.py", "{out}", "--shape", "{n},512,512", "--depth", "1",
             "--raw", "--quad"], "args": []},
    # uncompressed formats through the shared strided reader: the same speed as raw
    {"label": "dm4", "ext": ".dm4", "sig": (256, 256), "dtype": "u2",
     "gen": ["tests/gen/gen_dm.py", "{out}", "--shape", "{n},256,256", "--dtype", "u2",
             "--version", "4"], "args": []},
    {"label": "ser", "ext": "_1.ser", "sig": (256, 256), "dtype": "u2",
     "gen": ["tests/gen/gen_ser.py", "{out}", "--shape", "{n},256,256", "--dtype", "u2"],
     "args": []},
    {"label": "mrc", "ext": ".mrc", "sig": (256, 256), "dtype": "u2",
     "gen": ["tests/gen/gen_mrc.py", "{out}", "--shape", "{n},256,256", "--mode", "6"],
     "args": []},
    {"label": "blo", "ext": ".blo", "sig": (256, 256), "dtype": "u2",
     "gen": ["tests/gen/gen_blo.py", "{out}", "--shape", "{h},{w},256,256", "--dtype", "u2"],
     "args": []},
    {"label": "empad", "ext": ".xml", "sig": (128, 128), "dtype": "f4",
     "gen": ["tests/gen/gen_empad.py", "{out}", "--shape", "{h},{w}"], "args": []},
    {"label": "seq", "ext": ".seq", "sig": (256, 256), "dtype": "u2",
     "gen": ["tests/gen/gen_seq.py", "{out}", "--shape", "{n},256,256", "--dtype", "u2"],
     "args": []},
    {"label": "tvips", "ext": "_000.tvips", "sig": (256, 256), "dtype": "u2",
     "gen": ["tests/gen/gen_tvips.py", "{out}", "--shape", "{n},256,256", "--dtype", "u2"],
     "args": []},
]

# Values for required parameters of UDFs this script does not know, by parameter name.
PARAM_DEFAULTS = {
    "cx": "128", "cy": "128", "r": "40", "ri": "20", "ro": "60", "mask": MASK_DISK,
    "nav": "0", "radius": "40", "radius_outer": "60", "rad_in": "2", "rad_out": "30",
    "threshold": "60000",
}
# Parameters given to these UDFs beyond the required ones: a typical setting rather than the
# defaults where those are unusually expensive or unset ("{scratch}" is the scratch folder).
UDF_PARAMS = {
    "radial_fourier": ["cx=128", "cy=128", "ri=20", "ro=100", "n_bins=4", "max_order=8"],
    "radial_profile": ["cx=128", "cy=128"],
    "count": ["output={scratch}/count.toml"],
}

# The targets (2 threads, hot cache): fraction of the ceiling, for the table's check.
NUMPY_CASES = ("sum", "sumsig", "stddev", "mask1", "masks16", "sparse", "pick")
TARGETS = {"sum": 0.85, "sumsig": 0.85, "mask1": 0.85, "stddev": 0.50, "masks16": 0.40,
           "sparse": 0.85, "com": 0.70, "radial_profile": 0.40, "fem": 0.40}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


# ---- header and registry ---------------------------------------------------------------

def io_backends():
    """[(name, value)] of tsr_io_backend_t, read from include/tessera.h."""
    with open(os.path.join(ROOT, "include", "tessera.h")) as f:
        text = f.read()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    m = re.search(r"typedef\s+enum\s*\{([^}]*)\}\s*tsr_io_backend_t\s*;", text)
    if not m:
        raise SystemExit("run.py: tsr_io_backend_t not found in include/tessera.h")
    out, nxt = [], 0
    for item in m.group(1).split(","):
        item = item.strip()
        if not item:
            continue
        mm = re.match(r"TSR_IO_(\w+)\s*(?:=\s*(-?\d+))?$", item)
        if not mm:
            continue
        value = int(mm.group(2)) if mm.group(2) is not None else nxt
        out.append((mm.group(1).lower(), value))
        nxt = value + 1
    return out


def list_udfs(tessera):
    out = subprocess.run([tessera, "list", "udfs", "--json"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["udfs"]


# ---- datasets ------------------------------------------------------------------------

class Dataset:
    """A raw file of u16 256×256 frames, or a view of its first frames (nav_shape)."""

    def __init__(self, path, nav, fmt="raw", offset=0):
        self.path, self.nav, self.fmt, self.offset = path, tuple(nav), fmt, offset

    @property
    def frames(self):
        n = 1
        for d in self.nav:
            n *= d
        return n

    @property
    def nbytes(self):
        return self.frames * FRAME_BYTES

    def tessera_args(self):
        """Dataset options for tsr-bench and `tessera run`."""
        if self.fmt == "npy":
            return ["--format", "npy"]
        return ["--format", "raw", "--set", "nav_shape=" + ",".join(map(str, self.nav)),
                "--set", "sig_shape=256,256", "--set", "dtype=<u2"]

    def shape_arg(self):
        return ",".join(map(str, self.nav + SIG))


generated = []


def generate(gen, scratch, nav):
    """The raw file of a nav×256×256 u16 scan, generated unless present."""
    path = os.path.join(scratch, "raw_%s_256x256_u2.raw" % "x".join(map(str, nav)))
    want = nav[0] * nav[1] * FRAME_BYTES
    if not (os.path.exists(path) and os.path.getsize(path) == want):
        log("generating %s (%.1f GiB)" % (path, want / 2**30))
        tmp = path + ".tmp"
        subprocess.run([gen, "random", tmp, "--shape", "%d,%d,256,256" % nav, "--dtype", "u2"],
                       check=True, stdout=subprocess.DEVNULL)
        os.replace(tmp, path)
        generated.append(path)
    return Dataset(path, nav)


def npy_header(descr, shape):
    """A .npy version 1.0 header, padded (as numpy does) to a multiple of 64 bytes."""
    dims = ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "")
    d = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    pad = 64 - (10 + len(d) + 1) % 64
    d = d + " " * (pad % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode("latin1")


def write_npy_copy(raw):
    """The same frames as .npy: header, then the raw file's bytes (copied in the kernel)."""
    path = raw.path[:-4] + ".npy"
    hdr = npy_header("<u2", raw.nav + SIG)
    if not (os.path.exists(path) and os.path.getsize(path) == len(hdr) + raw.nbytes):
        log("writing %s" % path)
        tmp = path + ".tmp"
        with open(raw.path, "rb") as src, open(tmp, "wb") as dst:
            dst.write(hdr)
            dst.flush()
            left = raw.nbytes
            while left:
                n = os.copy_file_range(src.fileno(), dst.fileno(), min(left, 1 << 30))
                if n <= 0:
                    raise SystemExit("run.py: copy to %s failed" % tmp)
                left -= n
        os.replace(tmp, path)
        generated.append(path)
    return Dataset(path, raw.nav, fmt="npy", offset=len(hdr))


def write_masks16(scratch):
    """16 dense masks (uniform random float32 in [0, 1), seeded) as a (16, 256, 256) .npy."""
    path = os.path.join(scratch, "masks16_256x256_f4.npy")
    n = 16 * SIG[0] * SIG[1]
    hdr = npy_header("<f4", (16,) + SIG)
    if not (os.path.exists(path) and os.path.getsize(path) == len(hdr) + 4 * n):
        rng = random.Random(16)
        data = array("f", (rng.random() for _ in range(n)))
        if sys.byteorder != "little":
            data.byteswap()
        with open(path + ".tmp", "wb") as f:
            f.write(hdr)
            data.tofile(f)
        os.replace(path + ".tmp", path)
    return path


_warmed = {}
RECACHE = True  # --no-recache sets it to False


def read_through(path):
    buf = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass
    _warmed[path] = time.monotonic()


def warm(path, max_age=30.0):
    """Make sure a file sits in the page cache as reading it from disk leaves it, unless that
    was done less than max_age seconds ago.

    The page cache must be in the same state for every case, or the figures measure it rather
    than the code: pages a writer left in the cache are small folios, and pages read back after
    this VM's DAMON scheme paged part of a file out (memory idle for about a minute) come back
    in whatever pieces the next reader faulted; read sequentially from an empty cache through
    readahead they are large folios (up to 2 MiB), which a pread copies ~1.6x faster and which
    mmap maps with huge-page entries (3-8x faster here).  Real data were read from disk, so
    that is the state measured: the file's cached pages are dropped (POSIX_FADV_DONTNEED; they
    are clean) and it is read again from the start.  With RECACHE off it is only read."""
    if time.monotonic() - _warmed.get(path, -1e9) < max_age:
        return
    if RECACHE:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    read_through(path)


# ---- measurements ---------------------------------------------------------------------

def cpu_busy():
    """(CPU seconds used on this machine by everything so far, of which steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return busy / hz, (v[7] if len(v) > 7 else 0) / hz


def run_measured(cmd):
    """Run cmd; returns (returncode, stdout, stderr, others), where `others` is the share of
    the machine's CPU time used by other processes (and the hypervisor's steal) while it ran:
    the interference behind a noisy figure."""
    def children_cpu():
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    c0, (b0, _) = children_cpu(), cpu_busy()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate()
    t1 = time.perf_counter()
    c1, (b1, _) = children_cpu(), cpu_busy()
    others = max(0.0, (b1 - b0) - (c1 - c0)) / ((t1 - t0) * (os.cpu_count() or 1))
    return p.returncode, out, err, min(1.0, others)


def run_json(cmd):
    """Run a benchmark program that prints one JSON line; a status "n/a" row if it failed."""
    rc, out, err, others = run_measured(cmd)
    line = out.strip().splitlines()[-1] if out.strip() else ""
    try:
        d = json.loads(line)
    except ValueError:
        log("  failed (%d): %s" % (rc, (err or out).strip()[-300:]))
        return {"status": "n/a", "error": (err or out).strip()[-300:], "others_cpu": others}
    d["loadavg"] = loadavg()
    d["others_cpu"] = others
    return d


def ceiling(args, exe, ds, threads, method="pread", label="ceiling"):
    warm(ds.path)
    d = run_json([exe, ds.path, "--frame-bytes", str(FRAME_BYTES), "--offset", str(ds.offset),
                  "--frames", str(ds.frames), "--threads", str(threads), "--method", method,
                  "--repeat", str(args.repeat), "--case", label])
    d["file"] = ds.fmt
    return d


def udf_args(case):
    """tsr-bench options of a case (label, [(udf, [params])], checksum buffer or None)."""
    label, udfs, check = case
    cmd = []
    for name, params in udfs:
        cmd += ["--udf", name]
        for p in params:
            cmd += ["--param", p]
    return cmd + (["--checksum-buffer", check] if check else []) + ["--case", label]


def tessera_case(args, case, ds, threads, backend, value, executor="threads"):
    """One row: a case for one configuration."""
    label = case[0]
    if backend not in PAGE_CACHE_BYPASS:
        warm(ds.path)
    cmd = [args.bench, ds.path] + ds.tessera_args() + udf_args(case)
    cmd += ["--threads", str(threads), "--executor", executor, "--io-backend", str(value),
            "--backend-name", backend, "--repeat", str(args.repeat)]
    d = run_json(cmd)
    d.update(tool="tessera", case=label, file=ds.fmt, threads=threads, backend=backend,
             executor=executor)
    return d


def numpy_cases(args, ds, cases, masks16, reuse=False):
    """numpy rows for the cases; reuse: one memmap for all passes (default: a new one for each,
    as tsr-bench opens its dataset anew for each run)."""
    warm(ds.path)
    cmd = ["/usr/bin/python3", os.path.join(HERE, "numpy_baseline.py"), ds.path,
           "--shape", ds.shape_arg(), "--masks16", masks16, "--repeat", str(args.repeat),
           "--mask-disk", MASK_DISK.split(":")[1], "--sparse-disk", SPARSE_DISK.split(":")[1],
           "--pick", ",".join(map(str, pick_frames(ds)))]
    cmd += ["--npy"] if ds.fmt == "npy" else ["--offset", str(ds.offset)]
    cmd += ["--reuse-memmap"] if reuse else []
    out = []
    for c in cases:  # one process per case, so that each has its own interference figure
        d = run_json(cmd + ["--case", c])
        if d.get("status") != "ok":
            log("  numpy baseline %s failed" % c)
            continue
        d["file"] = ds.fmt
        out.append(d)
        log("numpy %-12s %s GB/s%s" % (d["case"] + " " + d["file"], fmt_gbps(d),
                                       " (memmap reused)" if reuse else ""))
    return out


def pick_frames(ds):
    n = ds.frames
    return sorted({0, 1, n // 2 + ds.nav[1] // 2, n - 1})


def latency(args, tessera, ds, out, extra=(), runs=15):
    """Median seconds of `tessera run sum` from process start to the result written."""
    warm(ds.path)
    cmd = [tessera, "run", "sum", ds.path] + ds.tessera_args() + list(extra) + \
          ["-o", out, "--quiet"]
    times = []
    for i in range(runs + 1):
        t0 = time.perf_counter()
        p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t1 = time.perf_counter()
        if p.returncode or not os.path.exists(out):
            return {"status": "n/a", "error": p.stderr.decode().strip()}
        os.unlink(out)
        if i:  # the first run only warms the binary and its libraries
            times.append(t1 - t0)
    return {"status": "ok", "cmd": " ".join(cmd), "runs": runs,
            "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "loadavg": loadavg()}


def peak_rss(peak_exe, tessera, ds, outdir, backend, runs=3):
    """Peak RSS (bytes) of `tessera run sum,sumsig,stddev`, the median of a few runs, measured
    by bench/peak-rss (ru_maxrss of the process alone: started from this Python process it
    would include Python's own); the peaks of its anonymous and file-backed parts, sampled
    from /proc/PID/status every 2 ms (mapped page cache counts in RSS but is no copy); and
    the bytes of the results written (one .npy per buffer)."""
    if backend not in PAGE_CACHE_BYPASS:
        warm(ds.path)
    cmd = [peak_exe, tessera, "run", "sum,sumsig,stddev", ds.path] + ds.tessera_args() + \
          ["--io-backend", backend, "-o", outdir + "/", "--quiet"]
    rss, anon, fil, result_bytes = [], [], [], 0
    for _ in range(runs):
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        peak = {"RssAnon": 0, "RssFile": 0}
        child = None
        while p.poll() is None:  # sample the split of RSS into anonymous and file-backed pages
            try:
                if child is None:
                    with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
                        child = int(f.read().split()[0])
                with open("/proc/%d/status" % child) as f:
                    for line in f:
                        k, _, v = line.partition(":")
                        if k in peak:
                            peak[k] = max(peak[k], int(v.split()[0]) * 1024)
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.002)
        err = p.stderr.read().strip().splitlines()
        p.stderr.close()
        try:
            res = json.loads(err[-1])
        except (ValueError, IndexError):
            res = {}
        if p.returncode or "maxrss_bytes" not in res:
            return {"status": "n/a", "error": " ".join(err)[-200:] or "exit %d" % p.returncode}
        rss.append(res["maxrss_bytes"])
        anon.append(peak["RssAnon"])
        fil.append(peak["RssFile"])
        result_bytes = sum(os.path.getsize(os.path.join(outdir, f)) for f in os.listdir(outdir))
        for f in os.listdir(outdir):
            os.unlink(os.path.join(outdir, f))
    return {"status": "ok", "rss_bytes": statistics.median(rss), "rss_all": rss,
            "rss_anon_sampled": max(anon), "rss_file_sampled": max(fil),
            "result_bytes": result_bytes, "dataset_bytes": ds.nbytes}


def tile_sweep(args, ds, value, backend):
    """sum, stddev and 16 masks at the highest thread count for several tile budgets."""
    rows = []
    for case in [c for c in args.case_list if c[0] in ("sum", "stddev", "masks16")]:
        label = case[0]
        for tb in (64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20):
            warm(ds.path)
            cmd = [args.bench, ds.path] + ds.tessera_args() + udf_args(case)
            cmd += ["--threads", str(max(args.threads)), "--io-backend", str(value),
                    "--backend-name", backend, "--tile-bytes", str(tb), "--repeat",
                    str(args.repeat)]
            d = run_json(cmd)
            d["file"] = ds.fmt
            rows.append(d)
            log("  tile %-8s %-8d %s" % (label, tb, fmt_gbps(d)))
    return rows


def prepare_format_cases(args):
    """Generate (or reuse) the file of each format case and its raw baseline; returns
    [(case, format Dataset-like dict, raw Dataset)]."""
    target = (128 << 20) if args.quick else (2 << 30) if args.big else (512 << 20)
    out = []
    for fc in FORMAT_CASES:
        if args.format_cases and fc["label"] not in args.format_cases.split(","):
            continue
        es = {"u1": 1, "u2": 2, "u4": 4, "f4": 4}[fc["dtype"]]
        frame = fc["sig"][0] * fc["sig"][1] * es
        n = max(1, target // frame)
        h = max(1, int(n ** 0.5))  # a 2-D scan h × w = n for formats that need one
        while n % h:
            h -= 1
        path = os.path.join(args.scratch, "fmt_%s_%d%s" % (fc["label"], n, fc["ext"]))
        stamp = path + ".ok"  # written after the generator succeeded
        if not (os.path.exists(path) and os.path.exists(stamp)):
            log("generating %s" % path)
            cmd = [a.format(out=path, n=n, h=h, w=n // h) for a in fc["gen"]]
            if cmd[0].endswith(".py"):
                cmd = ["/usr/bin/python3", os.path.join(ROOT, cmd[0])] + cmd[1:]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            with open(stamp, "w") as f:
                f.write("ok\n")
            generated.append(path)
        raw = os.path.join(args.scratch, "fmtraw_%dx%dx%d_%s.raw" % ((n,) + fc["sig"] +
                                                                    (fc["dtype"],)))
        if not (os.path.exists(raw) and os.path.getsize(raw) == n * frame):
            log("generating %s" % raw)
            subprocess.run([args.gen, "random", raw + ".tmp", "--shape",
                            "%d,%d,%d" % ((n,) + fc["sig"]), "--dtype", fc["dtype"]],
                           check=True, stdout=subprocess.DEVNULL)
            os.replace(raw + ".tmp", raw)
            generated.append(raw)
        raw_args = ["--format", "raw", "--set", "nav_shape=%d" % n, "--set",
                    "sig_shape=%d,%d" % fc["sig"], "--set",
                    "dtype=%s%s" % ("|" if es == 1 else "<", fc["dtype"])]
        out.append((fc, path, raw, raw_args, n * frame))
    return out


def run_format_cases(args, fcases):
    """`sum` on each format file and on its raw baseline, for each thread count."""
    rows = []
    case = ("sum", [("sum", [])], None)
    for fc, path, raw, raw_args, nbytes in fcases:
        for t in args.threads:
            for kind, p, extra in (("format", path, fc["args"]), ("raw", raw, raw_args)):
                warm(p)
                cmd = [args.bench, p] + extra + udf_args(case)
                cmd += ["--threads", str(t), "--repeat", str(args.repeat)]
                d = run_json(cmd)
                d.update(tool="tessera", case=fc["label"], file=kind, threads=t,
                         decoded_bytes=nbytes)
                rows.append(d)
                log("%-16s %d thr %-6s %s GB/s" % (fc["label"], t, kind, fmt_gbps(d)))
    return rows


def format_table(rows, threads):
    """Markdown table of the format cases: GB/s of decoded bytes and the ratio to raw."""
    by = {(d["case"], d["file"], d["threads"]): d for d in rows}
    out = ["| format case | threads | GB/s (median) | min–max | raw same bytes GB/s "
           "| × raw | 1→2 threads | others' CPU |",
           "|---|---:|---:|---|---:|---:|---:|---:|"]
    for d in rows:
        if d["file"] != "format":
            continue
        ok = d.get("status") == "ok"
        raw = by.get((d["case"], "raw", d["threads"]))
        rng = "%.2f–%.2f" % (d["gbps_min"], d["gbps_max"]) if ok else \
            (d.get("error", "")[:40] or "n/a")
        speedup = ""
        one = by.get((d["case"], "format", min(threads)))
        if ok and d["threads"] > min(threads) and one and one.get("status") == "ok":
            speedup = "%.2f×" % (d["gbps_median"] / one["gbps_median"])
        out.append("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
            d["case"], d["threads"], fmt_gbps(d), rng, fmt_gbps(raw), fmt_ratio(d, raw),
            speedup, fmt_others(d)))
    return "\n".join(out)


# ---- the report ------------------------------------------------------------------------

def fmt_gbps(d):
    if not d or d.get("status") != "ok":
        return "n/a"
    return "%.2f" % d["gbps_median"]


def fmt_ratio(a, b, key="gbps_median"):
    if not a or not b or a.get("status") != "ok" or b.get("status") != "ok":
        return "-"
    return "%.2f" % (a[key] / b[key])


def fmt_ms(seconds):
    return "%.1f" % (1e3 * seconds) if seconds >= 0.01 else "%.3f" % (1e3 * seconds)


def fmt_others(d):
    return "%.0f%%" % (100 * d["others_cpu"]) if "others_cpu" in d else ""


def machine():
    info = {"kernel": platform.release(), "python": platform.python_version()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket",
                             "L1d cache", "L2 cache", "L3 cache", "CPU max MHz", "CPU family",
                             "Model", "Hypervisor vendor"):
                info[k.strip()] = v.strip()
    except OSError:
        pass
    with open("/proc/meminfo") as f:
        info["MemTotal"] = f.readline().split(":")[1].strip()
    flags = open("/proc/cpuinfo").read()
    info["avx512f"] = " avx512f " in flags
    info["avx2"] = " avx2 " in flags
    return info


def table(rows, ceilings, numpy_rows, threads):
    """The markdown table of the Tessera rows, with ratios."""
    ceil = {t: ceilings.get(t) for t in threads}
    npy = {(d["case"], d["file"]): d for d in numpy_rows if not d.get("reuse_memmap")}
    npy_reuse = {(d["case"], d["file"]): d for d in numpy_rows if d.get("reuse_memmap")}
    by = {(d["case"], d["file"], d["threads"], d["backend"], d["executor"]): d for d in rows}
    out = ["| case | file | threads | backend | GB/s (median) | min–max | ms (median) "
           "| × ceiling | × ceiling (best) | × numpy | × numpy (map reused) | 1→2 threads "
           "| others' CPU |",
           "|---|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for d in rows:
        key = (d["case"], d["file"], d["threads"], d["backend"], d["executor"])
        backend = d["backend"] + (" inline" if d["executor"] == "inline" else "")
        ok = d.get("status") == "ok"
        rng = "%.2f–%.2f" % (d["gbps_min"], d["gbps_max"]) if ok else \
            (d.get("error", "")[:40] or "n/a")
        np_ref = npy.get((d["case"], d["file"])) or npy.get((d["case"], "raw"))
        np_reuse = npy_reuse.get((d["case"], d["file"])) or npy_reuse.get((d["case"], "raw"))
        speedup = ""
        if d["threads"] > min(threads) and ok:
            one = by.get((d["case"], d["file"], min(threads), d["backend"], d["executor"]))
            if one and one.get("status") == "ok":
                speedup = "%.2f×" % (d["gbps_median"] / one["gbps_median"])
        ms = fmt_ms(d["median_s"]) if ok else ""
        out.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            d["case"], d["file"], d["threads"], backend, fmt_gbps(d), rng, ms,
            fmt_ratio(d, ceil.get(d["threads"])),
            fmt_ratio(d, ceil.get(d["threads"]), "gbps_max"), fmt_ratio(d, np_ref),
            fmt_ratio(d, np_reuse), speedup, fmt_others(d)))
    return "\n".join(out)


def baseline_table(ceil_rows, numpy_rows):
    out = ["| baseline | case | threads | GB/s (median) | min–max | ms (median) | others' CPU |",
           "|---|---|---:|---:|---|---:|---:|"]
    for d in ceil_rows:
        name = "ceiling" + ("-native" if d.get("native") else "") + \
            (" (mmap)" if d.get("method") == "mmap" else "") + \
            (" [%s]" % d["when"] if d.get("when") else "")
        ok = d.get("status") == "ok"
        rng = "%.2f–%.2f" % (d["gbps_min"], d["gbps_max"]) if ok else "n/a"
        ms = fmt_ms(d["median_s"]) if ok else ""
        out.append("| %s | sum | %s | %s | %s | %s | %s |" % (
            name, d.get("threads"), fmt_gbps(d), rng, ms, fmt_others(d)))
    for d in numpy_rows:
        rng = "%.2f–%.2f" % (d["gbps_min"], d["gbps_max"])
        out.append("| numpy (%s%s) | %s | %s | %s | %s | %s | %s |" % (
            d["file"], ", map reused" if d.get("reuse_memmap") else "", d["case"], d["threads"], fmt_gbps(d), rng, fmt_ms(d["median_s"]),
            fmt_others(d)))
    return "\n".join(out)


def check_targets(rows, ceilings, numpy_rows, threads):
    """The issue's targets at the highest thread count, hot cache, for `auto` and the best
    backend: the fraction of the ceiling (cases of TARGETS), 3× numpy (every case with a numpy
    baseline) and the speed-up from the lowest thread count; returns lines of text."""
    hi, lo = max(threads), min(threads)
    npy = {d["case"]: d for d in numpy_rows if d["file"] == "raw" and not d.get("reuse_memmap")}
    npy_reuse = {d["case"]: d for d in numpy_rows if d["file"] == "raw" and d.get("reuse_memmap")}
    lines = []
    for case in list(TARGETS) + [c for c in npy if c not in TARGETS]:
        frac = TARGETS.get(case)
        cands = [d for d in rows if d["case"] == case and d["file"] == "raw" and
                 d["threads"] == hi and d["executor"] == "threads" and d.get("status") == "ok"
                 and d["backend"] not in PAGE_CACHE_BYPASS]
        if not cands or hi not in ceilings:
            continue
        auto = sorted(cands, key=lambda d: d["backend"] != "auto")[0]
        best = max(cands, key=lambda d: d["gbps_median"])
        for d in [auto] + ([best] if best is not auto else []):
            r = d["gbps_median"] / ceilings[hi]["gbps_median"]
            n = npy.get(case)
            rn = d["gbps_median"] / n["gbps_median"] if n else None
            nr = npy_reuse.get(case)
            rr = d["gbps_median"] / nr["gbps_median"] if nr else None
            one = [e for e in rows if e["case"] == case and e["file"] == "raw" and
                   e["threads"] == lo and e["backend"] == d["backend"] and
                   e["executor"] == "threads" and e.get("status") == "ok"]
            sp = d["gbps_median"] / one[0]["gbps_median"] if one else None
            ceil = "%3.0f%% of ceiling (target %3.0f%%) %s" % (
                100 * r, 100 * frac, "ok  " if r >= frac else "MISS") if frac else \
                "%3.0f%% of ceiling (no target)     " % (100 * r)
            lines.append("%-8s %-6s %5.2f GB/s  %s   %s× numpy (target 3×) %s (map reused: "
                         "%s×)   %d→%d threads %s" % (
                             case, d["backend"], d["gbps_median"], ceil,
                             "%.1f" % rn if rn else "-",
                             ("ok  " if rn >= 3 else "MISS") if rn else "",
                             "%.1f" % rr if rr else "-",
                             lo, hi, "%.2f×" % sp if sp else "-"))
    return lines


# ---- main ------------------------------------------------------------------------------

def parse_args():
    ap = argparse.ArgumentParser(description="Tessera benchmark (see the file's docstring)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="the project's build directory (default: build)")
    ap.add_argument("--scratch", default="/tmp/tessera-bench", help="where datasets go")
    size = ap.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="64×64 scan (512 MiB) to iterate")
    size.add_argument("--big", action="store_true", help="256×256 scan (8 GiB)")
    ap.add_argument("--repeat", type=int, default=5, help="timed runs per case (median)")
    ap.add_argument("--threads", default="1,2", help="thread counts, e.g. 1,2")
    ap.add_argument("--backends", help="I/O backends (default: all of tsr_io_backend_t)")
    ap.add_argument("--cases", help="only these case labels, comma separated")
    ap.add_argument("--json", default=os.path.join(HERE, "results.json"),
                    help="where to write all results (default: bench/results.json)")
    ap.add_argument("--no-numpy", action="store_true", help="skip the numpy baseline")
    ap.add_argument("--no-latency", action="store_true", help="skip the latency figures")
    ap.add_argument("--no-rss", action="store_true", help="skip the memory figures")
    ap.add_argument("--latency-runs", type=int, default=15)
    ap.add_argument("--no-recache", action="store_true",
                    help="keep the files' page cache as it is (default: drop and re-read)")
    ap.add_argument("--full", action="store_true",
                    help="run every case with the page-cache-bypassing backends too "
                         "(default: %s)" % ", ".join(BYPASS_CASES))
    ap.add_argument("--no-formats", action="store_true",
                    help="skip the file-format cases (MIB, DM4, SER, MRC, BLO, EMPAD, SEQ, TVIPS)")
    ap.add_argument("--format-cases", help="only these format case labels, comma separated")
    ap.add_argument("--tile-sweep", action="store_true",
                    help="also time sum, stddev and 16 masks for tile budgets 64 KiB..16 MiB")
    args = ap.parse_args()

    build = os.path.abspath(args.build)
    args.build = build
    args.tessera = os.path.join(build, "tessera")
    args.gen = os.path.join(build, "tsr-gen")
    args.bench = os.path.join(build, "bench", "tsr-bench")
    args.ceiling = os.path.join(build, "bench", "ceiling")
    args.ceiling_native = os.path.join(build, "bench", "ceiling-native")
    args.peak_rss = os.path.join(build, "bench", "peak-rss")
    for exe in (args.tessera, args.gen, args.bench, args.ceiling, args.peak_rss):
        if not os.access(exe, os.X_OK):
            raise SystemExit("run.py: %s is missing; run `make build` first" % exe)
    args.threads = [int(t) for t in args.threads.split(",")]
    args.backends = [b for b in io_backends()
                     if not args.backends or b[0] in args.backends.split(",")]
    return args


def prepare_datasets(args):
    """Generate (or reuse) every file; returns a dict of Datasets and the masks16 path."""
    os.makedirs(args.scratch, exist_ok=True)
    nav = (64, 64) if args.quick else (256, 256) if args.big else (128, 128)
    ds = {"main": generate(args.gen, args.scratch, nav)}
    ds["npy"] = write_npy_copy(ds["main"])
    ds["latency"] = generate(args.gen, args.scratch, (64, 64))
    if not args.no_rss:
        # the memory figures: 1 GiB and 4 GiB (--quick: 128 MiB and 512 MiB) of 256×256 frames,
        # as views of the first frames of a file large enough
        small_nav, big_nav = ((16, 64), (64, 64)) if args.quick else ((64, 128), (128, 256))
        big = ds["main"] if ds["main"].frames >= big_nav[0] * big_nav[1] else \
            generate(args.gen, args.scratch, big_nav)
        small = ds["main"] if ds["main"].frames >= small_nav[0] * small_nav[1] else big
        ds["rss_small"] = Dataset(small.path, small_nav)
        ds["rss_large"] = Dataset(big.path, big_nav)
    masks16 = write_masks16(args.scratch)
    if generated:
        os.sync()  # let the writeback of new files finish before anything is timed
    return ds, masks16


def build_cases(args, main_ds, masks16):
    """The cases: (label, [(udf, [params])], result buffer for the checksum or None: the
    first), the built-in ones and every other registered UDF; and the UDFs skipped."""
    picks = ["nav=%d" % i for i in pick_frames(main_ds)]
    cases = [
        ("sum", [("sum", [])], None),
        ("sumsig", [("sumsig", [])], None),
        ("stddev", [("stddev", [])], "mean"),
        ("mask1", [("masks", ["mask=" + MASK_DISK])], None),
        ("masks16", [("masks", ["mask=" + masks16])], None),
        ("sparse", [("masks", ["mask=" + SPARSE_DISK])], None),
        ("pick", [("pick", picks)], None),
    ]
    known = {"sum", "sumsig", "stddev", "masks", "pick"}
    skipped = []
    for u in list_udfs(args.tessera):
        if u["name"] in known:
            continue
        params = [v.format(scratch=args.scratch) for v in UDF_PARAMS.get(u["name"], [])]
        given, missing = {v.split("=", 1)[0] for v in params}, []
        for p in u.get("params", []):
            if p.get("required") and p.get("default") is None and p["name"] not in given:
                if p["name"] in PARAM_DEFAULTS:
                    params.append("%s=%s" % (p["name"], PARAM_DEFAULTS[p["name"]]))
                else:
                    missing.append(p["name"])
        if missing:
            skipped.append("%s (needs %s)" % (u["name"], ", ".join(missing)))
        else:
            cases.append((u["name"], [(u["name"], params)], None))
    if args.cases:
        cases = [c for c in cases if c[0] in args.cases.split(",")]
    return cases, skipped


def run_tessera(args, cases, main_ds, npy_ds):
    """Every case × thread count × backend; sum also on the .npy file and inline."""
    rows = []

    def one(case, ds, t, name, value, executor="threads"):
        d = tessera_case(args, case, ds, t, name, value, executor)
        rows.append(d)
        log("%-10s %d thr %-6s %-7s %s GB/s%s" % (case[0], t, name, executor, fmt_gbps(d),
                                                  " (npy)" if ds.fmt == "npy" else ""))

    for case in cases:
        for t in args.threads:
            for name, value in args.backends:
                if name in PAGE_CACHE_BYPASS and not args.full and case[0] not in BYPASS_CASES:
                    continue
                one(case, main_ds, t, name, value)
        if case[0] == "sum":
            for t in args.threads:
                for name, value in args.backends:
                    one(case, npy_ds, t, name, value)
            one(case, main_ds, 1, args.backends[0][0], args.backends[0][1], "inline")
    return rows


def run_ceilings(args, main_ds, when, extras):
    """The ceiling per thread count (and, if extras, its -march=native and mmap variants)."""
    rows = []
    for t in args.threads:
        d = ceiling(args, args.ceiling, main_ds, t)
        d["when"] = when
        rows.append(d)
        log("ceiling            %d thr %s GB/s (%s)" % (t, fmt_gbps(d), when))
        if not extras:
            continue
        if os.access(args.ceiling_native, os.X_OK):
            d = ceiling(args, args.ceiling_native, main_ds, t)
            rows.append(d)
            log("ceiling-native     %d thr %s GB/s" % (t, fmt_gbps(d)))
        d = ceiling(args, args.ceiling, main_ds, t, method="mmap", label="ceiling-mmap")
        rows.append(d)
        log("ceiling (mmap)     %d thr %s GB/s" % (t, fmt_gbps(d)))
    return rows


def reference_ceilings(ceil_rows):
    """Per thread count: the better median and the fastest run of the plain ceiling."""
    ceilings = {}
    for d in ceil_rows:
        if d.get("status") == "ok" and d.get("method") == "pread" and not d.get("native"):
            c = ceilings.setdefault(d["threads"], {"status": "ok", "gbps_median": 0.0,
                                                   "gbps_max": 0.0})
            c["gbps_median"] = max(c["gbps_median"], d["gbps_median"])
            c["gbps_max"] = max(c["gbps_max"], d["gbps_max"])
    return ceilings


def run_latency(args, lat_ds):
    out = os.path.join(args.scratch, "latency_out.npy")
    lat = {"sum_512MiB": latency(args, args.tessera, lat_ds, out, runs=args.latency_runs),
           "sum_1frame": latency(args, args.tessera, Dataset(lat_ds.path, (1,)), out,
                                 runs=args.latency_runs)}
    for k, v in lat.items():
        log("latency %-10s %s" % (k, "%.1f ms" % (1e3 * v["median_s"])
                                  if v["status"] == "ok" else v["error"]))
    return lat


def run_rss(args, small, large):
    outdir = os.path.join(args.scratch, "rss_out")
    os.makedirs(outdir, exist_ok=True)
    rss = []
    for name, _ in args.backends:
        pair = [peak_rss(args.peak_rss, args.tessera, ds, outdir, name) for ds in (small, large)]
        rss.append({"backend": name, "small": pair[0], "large": pair[1]})
        log("rss %-6s %s" % (name, " / ".join(
            "%.1f MiB" % (p["rss_bytes"] / 2**20) if p["status"] == "ok" else "n/a"
            for p in pair)))
    return rss


def checksum_mismatches(rows, ceil_rows, numpy_rows):
    """Rows whose result checksum differs from the baseline's: the same work was not done."""
    checks = []
    ref = {(d["case"], d["file"]): d for d in numpy_rows}
    ceil_sum = next((d["checksum"] for d in ceil_rows if d.get("status") == "ok"), None)
    for d in rows:
        if d.get("status") != "ok":
            continue
        want = ceil_sum if d["case"] in ("sum", "sumsig") else \
            (ref.get((d["case"], "raw")) or {}).get("checksum")
        if want is not None and abs(d["checksum"] - want) > 1e-4 * abs(want) + 1e-6:
            checks.append("%s %s %d thr %s: checksum %.10g, baseline %.10g" % (
                d["case"], d["file"], d["threads"], d["backend"], d["checksum"], want))
    return checks


def report(args, r):
    """Print the tables and figures of results dict r."""
    mi, main_ds = r["machine"], r["main_ds"]
    print()
    print("## Tessera benchmark: %s, %s scan of 256×256 u16 (%.1f GiB), %d runs, hot cache" % (
        r["date"], "×".join(map(str, main_ds.nav)), main_ds.nbytes / 2**30, args.repeat))
    print()
    print("machine: %s, %s CPUs, %s, kernel %s; load average %.2f at start, %.2f at end" % (
        mi.get("Model name", "?"), mi.get("CPU(s)", "?"), mi.get("MemTotal"), mi["kernel"],
        r["loadavg"][0], r["loadavg"][1]))
    if r["numpy"]:
        b = r["numpy"][0]["blas"]
        print("numpy %s, BLAS %s, %s" % (
            b["numpy"], ", ".join(os.path.basename(x) for x in b["libs"]) or "?",
            " ".join("%s=%s" % kv for kv in b["env"].items())))
    print()
    print(table(r["tessera"], r["ceilings"], r["numpy"], args.threads))
    print()
    print(baseline_table(r["ceiling"], r["numpy"]))
    if r.get("formats"):
        print()
        print(format_table(r["formats"], args.threads))
        print()
        print("format cases: `sum` through tsr-bench; GB/s of decoded frame bytes; × raw: over "
              "`sum` on a raw file of the same decoded bytes at the same thread count.")
    print()
    print("× ceiling: median GB/s over the better of the two ceiling medians at the same "
          "thread count; (best): the fastest run over the ceiling's fastest, less sensitive to "
          "interference.  others' CPU: share of the machine's CPU time that other processes "
          "used during the measurement (anything above a few % makes the figure suspect).")
    lat, rss = r["latency"], r["rss"]
    if lat:
        print()
        for k, v in lat.items():
            if v["status"] == "ok":
                print("latency %-11s median %6.1f ms (min %.1f, max %.1f, %d runs)" % (
                    k, 1e3 * v["median_s"], 1e3 * v["min_s"], 1e3 * v["max_s"], v["runs"]))
            else:
                print("latency %-11s n/a: %s" % (k, v["error"]))
    if rss:
        print()
        print("peak RSS of `tessera run sum,sumsig,stddev` (%.0f MiB / %.0f MiB dataset):" % (
            rss[0]["small"].get("dataset_bytes", 0) / 2**20,
            rss[0]["large"].get("dataset_bytes", 0) / 2**20))
        for x in rss:
            s, l = x["small"], x["large"]
            if s["status"] == "ok" and l["status"] == "ok":
                print("  %-6s %7.1f MiB / %7.1f MiB  ratio %.2f  (results %.1f MiB; sampled "
                      "peaks: anonymous %.1f / %.1f MiB, file-backed %.1f / %.1f MiB)" % (
                          x["backend"], s["rss_bytes"] / 2**20, l["rss_bytes"] / 2**20,
                          l["rss_bytes"] / s["rss_bytes"], l["result_bytes"] / 2**20,
                          s["rss_anon_sampled"] / 2**20, l["rss_anon_sampled"] / 2**20,
                          s["rss_file_sampled"] / 2**20, l["rss_file_sampled"] / 2**20))
            else:
                print("  %-6s n/a: %s" % (x["backend"], (s.get("error") or l.get("error"))[:80]))
    print()
    hi, lo = max(args.threads), min(args.threads)
    print("targets (%d threads, hot cache):" % hi)
    c = r["ceilings"]
    if lo in c and hi in c and hi != lo:
        print("  (the ceiling itself: %d→%d threads %.2f×)" % (
            lo, hi, c[hi]["gbps_median"] / c[lo]["gbps_median"]))
    for line in check_targets(r["tessera"], c, r["numpy"], args.threads):
        print("  " + line)
    a, b = lat.get("sum_512MiB", {}), lat.get("sum_1frame", {})
    if a.get("status") == "ok":
        print("  latency 512 MiB %.0f ms (target < 150) %s" % (
            1e3 * a["median_s"], "ok" if a["median_s"] < 0.15 else "MISS"))
    if b.get("status") == "ok":
        print("  latency 1 frame %.1f ms (target < 20) %s" % (
            1e3 * b["median_s"], "ok" if b["median_s"] < 0.02 else "MISS"))
    for x in rss:
        s, l = x["small"], x["large"]
        if s["status"] == "ok" and l["status"] == "ok":
            same = abs(l["rss_bytes"] / s["rss_bytes"] - 1) <= 0.10
            under = l["rss_bytes"] < 256 * 2**20 + l["result_bytes"]
            print("  RSS %-6s equal ±10%% %s, < 256 MiB + results %s" % (
                x["backend"], "ok" if same else "MISS", "ok" if under else "MISS"))
    if r["tile_sweep"]:
        print()
        print("tile budget (TSR_OPT_TILE_BYTES), %d threads, backend %s:" % (
            hi, args.backends[0][0]))
        print()
        print("| case | tile bytes | GB/s (median) | min–max | others' CPU |")
        print("|---|---:|---:|---|---:|")
        for d in r["tile_sweep"]:
            if d.get("status") == "ok":
                print("| %s | %d KiB | %.2f | %.2f–%.2f | %s |" % (
                    d["case"], d["tile_bytes"] // 1024, d["gbps_median"], d["gbps_min"],
                    d["gbps_max"], fmt_others(d)))
    if r["checksum_mismatches"]:
        print()
        print("checksum mismatches (the engine and the baseline disagree):")
        for line in r["checksum_mismatches"]:
            print("  " + line)
    if r["skipped"]:
        print()
        print("not benchmarked: " + "; ".join(r["skipped"]))


def main():
    t_start = time.monotonic()
    args = parse_args()
    ds, masks16 = prepare_datasets(args)
    fcases = [] if args.no_formats else prepare_format_cases(args)
    if generated:
        os.sync()
    main_ds, npy_ds = ds["main"], ds["npy"]
    cases, skipped = build_cases(args, main_ds, masks16)
    for s in skipped:
        log("skipping UDF %s" % s)
    args.case_list = cases

    la0 = loadavg()
    log("load average %.2f%s" % (la0, " — the machine is busy, timings will be noisy"
                                 if la0 > 0.5 else ""))
    global RECACHE
    RECACHE = not args.no_recache
    os.sync()  # cached pages must be clean to be dropped
    t0 = time.monotonic()
    for path in sorted({d.path for d in ds.values()} | {c[1] for c in fcases} |
                       {c[2] for c in fcases}):
        warm(path, max_age=0)
    log("page cache: %s in %.0f s" % ("read" if args.no_recache else "dropped and re-read",
                                      time.monotonic() - t0))

    ceil_rows = run_ceilings(args, main_ds, "start", extras=False)
    numpy_rows = []
    if not args.no_numpy:
        labels = [c[0] for c in cases if c[0] in NUMPY_CASES]
        numpy_rows = numpy_cases(args, main_ds, labels, masks16)
        if "sum" in labels:
            numpy_rows += numpy_cases(args, npy_ds, ["sum"], masks16)
        numpy_rows += numpy_cases(args, main_ds, labels, masks16, reuse=True)
    rows = run_tessera(args, cases, main_ds, npy_ds)
    fmt_rows = run_format_cases(args, fcases) if fcases else []
    ceil_rows += run_ceilings(args, main_ds, "end", extras=True)
    lat = {} if args.no_latency else run_latency(args, ds["latency"])
    rss = [] if args.no_rss else run_rss(args, ds["rss_small"], ds["rss_large"])
    sweep = tile_sweep(args, main_ds, args.backends[0][1], args.backends[0][0]) \
        if args.tile_sweep else []

    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"), "machine": machine(),
        "config": {"nav": main_ds.nav, "sig": SIG, "repeat": args.repeat,
                   "threads": args.threads, "backends": args.backends, "full": args.full,
                   "scratch": args.scratch, "build": args.build},
        "loadavg": [la0, loadavg()], "ceiling": ceil_rows,
        "ceilings": reference_ceilings(ceil_rows), "numpy": numpy_rows, "tessera": rows,
        "latency": lat, "rss": rss, "tile_sweep": sweep, "formats": fmt_rows,
        "checksum_mismatches": checksum_mismatches(rows, ceil_rows, numpy_rows),
        "skipped": skipped,
    }
    report(args, dict(results, main_ds=main_ds))
    with open(args.json, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    print()
    print("total time %.0f s; results in %s" % (time.monotonic() - t_start, args.json))


if __name__ == "__main__":
    main()
