"""Dataset parameters that behave the same for every format: sync_offset,
nav/sig reshaping of npy files; and `tessera info` / `tessera list`."""

import json

import numpy as np
import pytest

from oracle import check, expected

NAV = (6, 7)
SIG = (7, 11)
N = NAV[0] * NAV[1]


def shifted(array, nav, sig, offset):
    """The frames a dataset with this sync_offset shows: frame i is the
    file's image i + offset, zeros where that lies outside the file."""
    flat = array.reshape((-1,) + sig)
    out = np.zeros_like(flat)
    for i in range(flat.shape[0]):
        j = i + offset
        if 0 <= j < flat.shape[0]:
            out[i] = flat[j]
    return out.reshape(tuple(nav) + tuple(sig))


@pytest.mark.parametrize("offset", [0, 2, -3, N - 1, -(N - 1)])
@pytest.mark.parametrize("fmt", ["raw", "npy"])
def test_sync_offset(make_data, run_udfs, fmt, offset):
    d = make_data(fmt, "<u2", NAV, SIG, seed=31)
    picks = [(0, 0), (0, 2), (5, 6), (3, 3)]
    udfs = ["sum", "sumsig", "stddev", "pick"]
    pargs = [a for p in picks for a in ("--param", f"nav={p[0]},{p[1]}")]
    res = run_udfs(",".join(udfs), d.path, *d.args, "--set", f"sync_offset={offset}", *pargs)
    check(res, expected(shifted(d.array, NAV, SIG, offset), NAV, SIG, udfs, picks=picks),
          f"{fmt} sync_offset={offset}")


@pytest.mark.parametrize("offset", [5, -4])
def test_sync_offset_with_roi(make_data, run_udfs, offset):
    d = make_data("raw", "<f4", NAV, SIG, seed=32)
    udfs = ["sum", "sumsig", "stddev", "masks"]
    res = run_udfs(",".join(udfs), d.path, *d.args, "--set", f"sync_offset={offset}",
                   "--roi", "disk:2,3,2.5", "--param", "mask=disk:5,3,3")
    check(res, expected(shifted(d.array, NAV, SIG, offset), NAV, SIG, udfs,
                        roi="disk:2,3,2.5", masks=["disk:5,3,3"]), f"sync_offset={offset}")


def test_npy_nav_reshape(tmp_path, run_udfs):
    """A stack of frames (n, sy, sx) reshaped to a 2-D scan."""
    rng = np.random.default_rng(33)
    a = rng.integers(0, 5000, size=(N,) + SIG, dtype=np.uint16)
    path = tmp_path / "stack.npy"
    np.save(path, a)
    res = run_udfs("sum,sumsig", path, "--set", f"nav_shape={NAV[0]},{NAV[1]}")
    check(res, expected(a.reshape(NAV + SIG), NAV, SIG, ["sum", "sumsig"]))


def test_npy_sig_reshape(tmp_path, run_udfs):
    """Flattened frames (ny, nx, sy*sx) reshaped to 2-D frames."""
    rng = np.random.default_rng(34)
    a = rng.random(NAV + (SIG[0] * SIG[1],))
    path = tmp_path / "flat.npy"
    np.save(path, a)
    res = run_udfs("sum,sumsig,masks", path, "--set", f"sig_shape={SIG[0]},{SIG[1]}",
                   "--set", f"nav_shape={NAV[0]},{NAV[1]}", "--param", "mask=rect:2,1,5,4")
    check(res, expected(a.reshape(NAV + SIG), NAV, SIG, ["sum", "sumsig", "masks"],
                        masks=["rect:2,1,5,4"]))


def test_npy_explicit_format(make_data, run_udfs):
    d = make_data("npy", "<i4", NAV, SIG, seed=35)
    res = run_udfs("sum", d.path, "--format", "npy")
    check(res, expected(d.array, NAV, SIG, ["sum"]))


def _dtype_ok(found, want):
    try:
        return np.dtype(found).newbyteorder("=") == np.dtype(want).newbyteorder("=")
    except TypeError:
        return False


@pytest.mark.parametrize("fmt,dtype", [("raw", ">u2"), ("raw", "<f4"), ("npy", "<i2")])
def test_info_json(make_data, run, fmt, dtype):
    d = make_data(fmt, dtype, NAV, SIG, seed=36)
    cp = run("info", d.path, *d.args, "--json")
    info = json.loads(cp.stdout)
    assert info["format"] == fmt, info
    assert list(info["nav_shape"]) == list(NAV), info
    assert list(info["sig_shape"]) == list(SIG), info
    assert _dtype_ok(info["dtype"], dtype), info


def test_list(run):
    udfs = run("list", "udfs").stdout
    for name in ("sum", "sumsig", "stddev", "pick", "masks"):
        assert name in udfs, udfs
    formats = run("list", "formats").stdout
    for name in ("raw", "npy"):
        assert name in formats, formats
    parsed = json.loads(run("list", "udfs", "--json").stdout)
    text = json.dumps(parsed)
    for word in ("masks", "mask", "pick", "nav"):
        assert word in text, f"'{word}' missing from 'tessera list udfs --json'"
    parsed = json.loads(run("list", "formats", "--json").stdout)
    text = json.dumps(parsed)
    for word in ("raw", "npy", "sync_offset", "nav_shape", "sig_shape", "dtype"):
        assert word in text, f"'{word}' missing from 'tessera list formats --json'"
