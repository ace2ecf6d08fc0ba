"""Fixtures of the integration suite: the programs under test, running them,
making test data and reading results back.

The suite checks the `tessera` command line against numpy on the same data
(see oracle.py).  ctest runs it as

    /usr/bin/python3 -m pytest -q tests/integration

with TSR_BIN (the `tessera` CLI), TSR_GEN (`tsr-gen`) and TSR_TESTDATA (real
instrument files) in the environment.  A missing TSR_BIN or TSR_GEN is an
error of every test that needs it, never a skip: a suite that silently
skips proves nothing.
"""

import os
import pathlib
import subprocess

import numpy as np
import pytest

TIMEOUT_S = 60

# tsr-gen's dtype names and the numpy dtypes they write.
GEN_DTYPES = {
    "u1": "u1", "u2": "u2", "u4": "u4", "u8": "u8",
    "i1": "i1", "i2": "i2", "i4": "i4", "i8": "i8",
    "f4": "f4", "f8": "f8",
}


def _program(var):
    path = os.environ.get(var)
    if not path:
        pytest.fail(f"{var} is not set: point it at the program under test "
                    f"(ctest sets it; by hand: {var}=/path/to/build/"
                    f"{'tessera' if var == 'TSR_BIN' else 'tsr-gen'})", pytrace=False)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"{var}={path} is not an executable file", pytrace=False)
    return path


@pytest.fixture(scope="session")
def tsr_bin():
    """Path of the `tessera` CLI (env TSR_BIN)."""
    return _program("TSR_BIN")


@pytest.fixture(scope="session")
def tsr_gen():
    """Path of `tsr-gen` (env TSR_GEN)."""
    return _program("TSR_GEN")


@pytest.fixture(scope="session")
def testdata():
    """The shared folder of real instrument files (env TSR_TESTDATA); may be absent."""
    p = os.environ.get("TSR_TESTDATA")
    return pathlib.Path(p) if p else None


def _describe(cp):
    return (f"command: {' '.join(map(str, cp.args))}\nexit code: {cp.returncode}\n"
            f"stdout: {cp.stdout.strip()!r}\nstderr: {cp.stderr.strip()!r}")


def _run(program, args, ok):
    args = [str(a) for a in args]
    try:
        cp = subprocess.run([program, *args], capture_output=True, text=True,
                            timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        pytest.fail(f"timed out after {TIMEOUT_S} s: {program} {' '.join(args)}",
                    pytrace=False)
    if ok:
        assert cp.returncode == 0, "expected success\n" + _describe(cp)
    else:
        assert cp.returncode != 0, "expected failure\n" + _describe(cp)
        # A negative code is a signal (a crash); 128+N is a shell's report of one.
        assert 0 < cp.returncode < 128, "crashed instead of failing cleanly\n" + _describe(cp)
    return cp


@pytest.fixture(scope="session")
def run(tsr_bin):
    """run(*args, ok=True) -> CompletedProcess of `tessera *args`.

    ok=True asserts exit code 0; ok=False asserts a clean non-zero exit (no
    signal).  Every call has a 60 s timeout."""
    def run_(*args, ok=True):
        return _run(tsr_bin, args, ok)
    return run_


@pytest.fixture(scope="session")
def gen(tsr_gen):
    """gen(*args, ok=True) -> CompletedProcess of `tsr-gen *args`."""
    def gen_(*args, ok=True):
        return _run(tsr_gen, args, ok)
    return gen_


def _error_line(cp):
    lines = cp.stderr.strip().splitlines()
    assert len(lines) == 1, ("expected exactly one line on stderr\n" + _describe(cp))
    return lines[0]


@pytest.fixture(scope="session")
def fails(run):
    """fails(*args) -> the single stderr line of `tessera *args`, which must
    exit non-zero without crashing and print exactly one line on stderr."""
    def fails_(*args):
        return _error_line(run(*args, ok=False))
    return fails_


@pytest.fixture(scope="session")
def gen_fails(gen):
    """fails() for tsr-gen."""
    def gen_fails_(*args):
        return _error_line(gen(*args, ok=False))
    return gen_fails_


def load_results(outdir):
    """Read every `<udf>.<buffer>.npy` of an output directory into a dict
    keyed "udf.buffer"."""
    res = {}
    for p in sorted(pathlib.Path(outdir).glob("*.npy")):
        stem = p.name[:-len(".npy")]
        assert "." in stem, f"unexpected file {p.name} in {outdir}"
        res[stem] = np.load(p, allow_pickle=False)
    return res


@pytest.fixture(scope="session")
def load():
    """load(outdir) -> dict "udf.buffer" -> array (see load_results)."""
    return load_results


@pytest.fixture(scope="session")
def run_udfs(run, tmp_path_factory):
    """run_udfs(udfs, path, *args) -> dict of results: runs
    `tessera run UDFS PATH ARGS -o DIR/` into a fresh directory and loads it."""
    counter = [0]

    def run_udfs_(udfs, path, *args):
        counter[0] += 1
        out = tmp_path_factory.mktemp(f"out{counter[0]}")
        run("run", udfs, path, *args, "-o", f"{out}/")
        res = load_results(out)
        assert res, f"no result files written to {out}"
        return res
    return run_udfs_


class Data:
    """A dataset on disk: its path, the CLI arguments that open it, and its
    content as numpy sees it (shape nav + sig, the file's dtype)."""

    def __init__(self, path, args, array, nav, sig):
        self.path = path
        self.args = list(args)
        self.array = array
        self.nav = tuple(nav)
        self.sig = tuple(sig)

    @property
    def dtype(self):
        return self.array.dtype


def shape_arg(shape):
    return ",".join(str(int(d)) for d in shape)


@pytest.fixture(scope="session")
def make_data(gen, tmp_path_factory):
    """make_data(fmt, dtype, nav, sig, seed=1) -> Data.

    fmt is "raw" or "npy"; dtype a numpy typestring ("u2", ">u2", "<f4", ...).
    Values are uniform random from `tsr-gen random` (full range for integers,
    [0, 1) for floats).  Files are cached for the session."""
    cache = {}
    root = tmp_path_factory.mktemp("data")

    def make(fmt, dtype, nav, sig, seed=1):
        dt = np.dtype(dtype)
        key = (fmt, dt.str, tuple(nav), tuple(sig), seed)
        if key in cache:
            return cache[key]
        code = f"{dt.kind}{dt.itemsize}"
        assert code in GEN_DTYPES, f"tsr-gen cannot make {dtype}"
        big = dt.byteorder == ">" or (dt.byteorder == "=" and np.little_endian is False)
        name = f"d{len(cache)}_{fmt}_{code}{'_be' if big else ''}"
        raw = root / f"{name}.raw"
        gen("random", raw, "--shape", shape_arg(tuple(nav) + tuple(sig)), "--dtype", code,
            "--seed", seed, *(["--big-endian"] if big else []))
        arr = np.fromfile(raw, dtype=dt).reshape(tuple(nav) + tuple(sig))
        if fmt == "raw":
            args = ["--format", "raw", "--set", f"nav_shape={shape_arg(nav)}",
                    "--set", f"sig_shape={shape_arg(sig)}", "--set", f"dtype={dt.str}"]
            d = Data(raw, args, arr, nav, sig)
        elif fmt == "npy":
            path = root / f"{name}.npy"
            np.save(path, arr)
            args = []
            if len(sig) != 2:
                args = ["--set", f"sig_shape={shape_arg(sig)}",
                        "--set", f"nav_shape={shape_arg(nav)}"]
            d = Data(path, args, arr, nav, sig)
        else:
            raise ValueError(fmt)
        cache[key] = d
        return d
    return make
