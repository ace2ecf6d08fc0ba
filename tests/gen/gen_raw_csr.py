#!/usr/bin/python3
"""Write raw_csr datasets (LiberTEM's layout): three raw arrays holding a
scipy.sparse.csr_matrix of shape (nav size, sig size) — indptr, indices and data —
and a TOML file that names them:

    [params]
    filetype = "raw_csr"
    nav_shape = [NY, NX]
    sig_shape = [SY, SX]

    [raw_csr]
    indptr_file = "NAME.indptr"    indptr_dtype = "<i4"
    indices_file = "NAME.indices"  indices_dtype = "<i4"
    data_file = "NAME.data"        data_dtype = "<u2"

Used by tests/integration/test_fmt_raw_csr.py (import write_raw_csr, random_sparse) and
from the command line to make big datasets for benchmarks:

    gen_raw_csr.py OUT.toml --nav NY,NX --sig SY,SX [--density 0.001] [--dtype u2]
                   [--indptr-dtype <i8] [--indices-dtype <i4] [--seed 1]
"""

import argparse
import pathlib
import sys

import numpy as np


def random_sparse(nav, sig, density, dtype, seed=1):
    """A dense array of shape nav + sig with about `density` of its pixels nonzero."""
    rng = np.random.default_rng(seed)
    shape = tuple(nav) + tuple(sig)
    dt = np.dtype(dtype)
    mask = rng.random(shape) < density
    if dt.kind in "iu":
        vals = rng.integers(1, 100, size=shape).astype(dt)
    elif dt.kind == "b":
        vals = np.ones(shape, dt)
    else:
        vals = (rng.random(shape) * 10 - 2).astype(dt)
    return np.where(mask, vals, np.zeros((), dt)).astype(dt)


def toml_text(name, nav, sig, indptr_dtype, indices_dtype, data_dtype, sync_offset=None,
              filetype="raw_csr", extra=""):
    lines = [
        "# written by tests/gen/gen_raw_csr.py",
        "[params]",
        f'filetype = "{filetype}"',
        f"nav_shape = [{', '.join(str(int(d)) for d in nav)}]",
        f"sig_shape = [{', '.join(str(int(d)) for d in sig)}]",
    ]
    if sync_offset is not None:
        lines.append(f"sync_offset = {int(sync_offset)}")
    lines += [
        "",
        f"[{filetype}]",
        f'indptr_file = "{name}.indptr"',
        f'indptr_dtype = "{np.dtype(indptr_dtype).str}"',
        f'indices_file = "{name}.indices"',
        f'indices_dtype = "{np.dtype(indices_dtype).str}"',
        f'data_file = "{name}.data"',
        f'data_dtype = "{np.dtype(data_dtype).str}"',
    ]
    return "\n".join(lines) + "\n" + extra


def write_raw_csr(toml_path, matrix, nav, sig, indptr_dtype="<i4", indices_dtype="<i4",
                  data_dtype=None, sync_offset=None):
    """Write a scipy.sparse CSR matrix (or anything scipy.sparse.csr_matrix takes, e.g. a
    dense 2-D array) of shape (prod(nav), prod(sig)) as a raw_csr dataset: TOML at
    toml_path, the three arrays beside it.  Returns the csr_matrix written."""
    import scipy.sparse
    m = scipy.sparse.csr_matrix(matrix)
    toml_path = pathlib.Path(toml_path)
    name = toml_path.stem
    data_dtype = np.dtype(data_dtype if data_dtype is not None else m.dtype)
    m.indptr.astype(indptr_dtype).tofile(toml_path.with_name(name + ".indptr"))
    m.indices.astype(indices_dtype).tofile(toml_path.with_name(name + ".indices"))
    m.data.astype(data_dtype).tofile(toml_path.with_name(name + ".data"))
    toml_path.write_text(toml_text(name, nav, sig, indptr_dtype, indices_dtype, data_dtype,
                                   sync_offset))
    return m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the .toml file (the arrays go beside it)")
    ap.add_argument("--nav", required=True, help="NY,NX")
    ap.add_argument("--sig", required=True, help="SY,SX")
    ap.add_argument("--density", type=float, default=0.001)
    ap.add_argument("--dtype", default="u2")
    ap.add_argument("--indptr-dtype", default="<i8")
    ap.add_argument("--indices-dtype", default="<i4")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    nav = tuple(int(x) for x in a.nav.split(","))
    sig = tuple(int(x) for x in a.sig.split(","))
    n, npix = int(np.prod(nav)), int(np.prod(sig))
    rng = np.random.default_rng(a.seed)
    out = pathlib.Path(a.out)
    name = out.stem
    dt = np.dtype(a.dtype)
    # rows in blocks, so that big datasets never exist densely
    per = max(1, (1 << 24) // max(1, int(npix * a.density) + 1))
    offset = 0
    with open(out.with_name(name + ".indptr"), "wb") as fp, \
            open(out.with_name(name + ".indices"), "wb") as fi, \
            open(out.with_name(name + ".data"), "wb") as fd:
        np.zeros(1, a.indptr_dtype).tofile(fp)
        for r0 in range(0, n, per):
            k = min(per, n - r0)
            counts = rng.binomial(npix, a.density, size=k)
            idx = [np.sort(rng.choice(npix, size=c, replace=False)) for c in counts]
            cols = np.concatenate(idx) if idx else np.zeros(0, np.int64)
            vals = rng.integers(1, 100, size=cols.size).astype(dt) if dt.kind in "iu" \
                else rng.random(cols.size).astype(dt)
            (offset + np.cumsum(counts)).astype(a.indptr_dtype).tofile(fp)
            offset += int(counts.sum())
            cols.astype(a.indices_dtype).tofile(fi)
            vals.tofile(fd)
    out.write_text(toml_text(name, nav, sig, a.indptr_dtype, a.indices_dtype, dt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
