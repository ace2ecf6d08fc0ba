#!/usr/bin/env bash
# check_install.sh — the offline install of README.md and docs/python.md,
# as written: a venv made with `python3 -m venv --system-site-packages`,
# `pip install --no-index --no-build-isolation ./python` from the repository
# root, then, outside the source tree and without PYTHONPATH, the installed
# package imports and runs a built-in and a Python UDF that give numpy's
# answer.  ctest runs it (python.pip_install) in builds without sanitizers.
# Usage: python/check_install.sh [PYTHON]   (default /usr/bin/python3)
set -euo pipefail
py=${1:-/usr/bin/python3}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset PYTHONPATH LD_PRELOAD
"$py" -m venv --system-site-packages "$tmp/venv"
(cd "$root" && TESSERA_BUILD_JOBS=${TESSERA_BUILD_JOBS:-2} \
   "$tmp/venv/bin/pip" install -q --no-index --no-build-isolation ./python)
cd "$tmp"
"$tmp/venv/bin/python" - "$tmp/venv" <<'PY'
import sys
import numpy as np
import tessera

assert tessera.__file__.startswith(sys.argv[1]), tessera.__file__  # the installed copy


class Max(tessera.UDF):
    def get_result_buffers(self):
        return {"m": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame):
        self.results.m[:] = frame.max()


data = np.random.default_rng(1).integers(0, 1000, (4, 5, 16, 12)).astype(np.uint16)
with tessera.Context(threads=2) as ctx:
    ds = ctx.load("memory", data=data)
    s, m = ctx.run_udf(dataset=ds, udf=[tessera.udf.SumUDF(), Max()])
assert np.array_equal(s["intensity"].data, data.sum(axis=(0, 1)))
assert np.array_equal(m["m"].data, data.max(axis=(2, 3)))
print("pip install: tessera", tessera.__version__, "from", tessera.__file__, "works")
PY
