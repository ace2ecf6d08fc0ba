"""Fixtures of the Python package's tests.

ctest runs them as

    /usr/bin/python3 -m pytest -q python/tests

with PYTHONPATH=<source>/python:<build>/python (the package and its built
extension), TSR_BIN (the CLI, whose answers the built-in UDFs are compared
with) and TSR_TESTDATA.  The numpy oracle of the CLI's integration suite
(tests/integration/oracle.py) is shared.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

import tessera  # noqa: E402


@pytest.fixture(scope="session")
def tsr_bin():
    path = os.environ.get("TSR_BIN")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("TSR_BIN must point at the tessera CLI (ctest sets it)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def cli(tsr_bin, tmp_path_factory):
    """cli(udfs, path, *args) -> dict "udf.buffer" -> array of
    `tessera run UDFS PATH ARGS -o DIR/`."""
    counter = [0]

    def run(udfs, path, *args):
        counter[0] += 1
        out = tmp_path_factory.mktemp(f"cli{counter[0]}")
        cmd = [tsr_bin, "run", udfs, str(path), *map(str, args), "--quiet", "-o", f"{out}/"]
        # the CLI carries its own sanitizer runtime in sanitizer builds: not
        # the one preloaded for python
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
        assert cp.returncode == 0, f"{' '.join(cmd)} failed:\n{cp.stderr}"
        return {p.name[:-4]: np.load(p) for p in out.glob("*.npy")}
    return run


@pytest.fixture
def ctx():
    with tessera.Context(threads=2, partitions=4) as c:
        yield c


def flat_results(res):
    """dict "udf.buffer" -> ndarray from run_udf's list of dicts."""
    out = {}
    for d in res:
        for name, buf in d.items():
            out[f"{buf.udf}.{name}"] = np.asarray(buf)
    return out


@pytest.fixture(scope="session")
def raw_file(tmp_path_factory):
    """raw_file(dtype, nav, sig, seed) -> (path, array): random data in a raw file."""
    cache = {}
    root = tmp_path_factory.mktemp("data")

    def make(dtype, nav, sig, seed=1):
        key = (np.dtype(dtype).str, tuple(nav), tuple(sig), seed)
        if key not in cache:
            rng = np.random.default_rng(seed)
            dt = np.dtype(dtype)
            shape = tuple(nav) + tuple(sig)
            if dt.kind == "f":
                a = rng.random(shape).astype(dt)
            else:
                info = np.iinfo(dt)
                a = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(dt)
            path = root / f"d{len(cache)}.raw"
            a.tofile(path)
            cache[key] = (path, a)
        return cache[key]
    return make
