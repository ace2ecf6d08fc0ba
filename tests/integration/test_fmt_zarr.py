"""Zarr v2 stores and HyperSpy .zspy: generated with zarr-python / numcodecs (Debian's
python3-zarr, the reference implementation) for every compressor, chunk shapes that do not
divide the data, chunks that split frames, missing chunks (fill_value), both dimension
separators, byte orders and dtypes, groups (largest array, ds_path), HyperSpy's zspy
(values and calibrations against hs.load), and bad input.  There is no Zarr sample in
TSR_TESTDATA.

Pixel values come back through `tessera run pick` of every frame (the dataset's own dtype)
and are compared with what zarr-python reads from the same store; shapes and metadata
through `tessera info --json`.
"""

import json
import os
import pathlib
import shutil
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_zarr  # noqa: E402

import zarr  # noqa: E402
import numcodecs  # noqa: E402


def info(run, path, *args):
    return json.loads(run("info", path, "--json", *args).stdout)


def read_all(run_udfs, path, n, *args):
    """All n frames (flat nav order) in the dataset's dtype, via pick."""
    picks = [a for i in range(n) for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *args, *picks)["pick.intensity"]


def reference(path):
    """The whole array as zarr-python reads it (fill_value for missing chunks)."""
    return zarr.open(str(path), mode="r")[...]


def frames(a, sig_ndim=2):
    return a.reshape((-1,) + a.shape[a.ndim - sig_ndim:])


def rng_data(shape, dtype, seed=1):
    rng = np.random.default_rng(seed)
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        native = dt.newbyteorder("=")
        info_ = np.iinfo(native)
        return rng.integers(info_.min, info_.max, size=shape, endpoint=True,
                            dtype=native).astype(dt)
    if dt.kind == "b":
        return rng.random(shape) < 0.3
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    return rng.standard_normal(shape).astype(dt)


# ---- every compressor ------------------------------------------------------

@pytest.mark.parametrize("comp", gen_zarr.COMPRESSORS)
def test_compressors(run, run_udfs, tmp_path, comp):
    data = rng_data((3, 5, 7, 6), "<u2")
    p = tmp_path / "a.zarr"
    gen_zarr.write_zarr(p, data, chunks=(2, 2, 4, 4), comp=comp)
    meta = info(run, p)
    assert meta["format"] == "zarr"
    assert meta["nav_shape"] == [3, 5] and meta["sig_shape"] == [7, 6]
    assert meta["dtype"] == "uint16"
    hdr = meta["meta"]["header"]
    assert hdr["chunks"] == [2, 2, 4, 4] and hdr["shape"] == [3, 5, 7, 6]
    got = read_all(run_udfs, p, 15)
    ref = frames(reference(p))
    assert got.dtype == ref.dtype
    np.testing.assert_array_equal(got, ref)
    # sum and sumsig with two threads and small tiles (bands of chunk rows)
    r = run_udfs("sum,sumsig", p, "--threads", "2", "--tile-bytes", "200")
    np.testing.assert_array_equal(r["sum.intensity"], data.astype(np.float64).sum((0, 1)))
    np.testing.assert_array_equal(r["sumsig.intensity"], data.astype(np.float64).sum((2, 3)))


@pytest.mark.parametrize("dtype", ["|u1", "<i2", ">u2", ">i4", "<u4", "<f4", ">f8", "<i8",
                                   "|b1", "<c8"])
def test_dtypes(run, run_udfs, tmp_path, dtype):
    data = rng_data((4, 3, 5, 4), dtype)
    p = tmp_path / "d.zarr"
    gen_zarr.write_zarr(p, data, chunks=(3, 2, 2, 3), comp="blosc-lz4")
    meta = info(run, p)
    dt = np.dtype(dtype)
    assert meta["dtype"] == dt.name
    got = read_all(run_udfs, p, 12)
    ref = frames(reference(p))
    np.testing.assert_array_equal(got, ref.astype(ref.dtype.newbyteorder("=")))


@pytest.mark.parametrize("shape,chunks", [
    ((7, 9, 11), (3, 4, 5)),            # 3-D stack, nothing divides
    ((5, 6, 13, 10), (2, 4, 6, 10)),    # chunks split rows only
    ((5, 6, 13, 10), (5, 6, 13, 10)),   # one chunk
    ((5, 6, 13, 10), (1, 1, 13, 10)),   # one frame per chunk
    ((2, 3, 4, 9, 8), (1, 2, 3, 4, 5)),  # 3-D scan
    ((3, 4, 17, 19), (2, 3, 1, 19)),    # one row per chunk
])
def test_chunk_shapes(run, run_udfs, tmp_path, shape, chunks):
    data = rng_data(shape, "<u2", seed=3)
    p = tmp_path / "c.zarr"
    gen_zarr.write_zarr(p, data, chunks=chunks, comp="zstd")
    n = int(np.prod(shape[:-2]))
    meta = info(run, p)
    assert tuple(meta["sig_shape"]) == shape[-2:]
    assert tuple(meta["nav_shape"]) == shape[:-2]
    # default cache, small tiles, several partitions, and a cache of two chunks (the
    # least allowed: chunks that span scan rows are evicted and decoded again)
    for extra in ([], ["--tile-bytes", "64", "--threads", "2"], ["--partitions", "3"],
                  ["--set", "chunk_cache_mib=0", "--threads", "2", "--tile-bytes", "100"]):
        got = read_all(run_udfs, p, n, *extra)
        np.testing.assert_array_equal(got, frames(reference(p)))


@pytest.mark.parametrize("comp,chunks", [("gzip", (2, 3, 4, 4)), ("none", (2, 3, 4, 4)),
                                         ("none", (2, 3, 4, 6))])
def test_missing_chunks_fill_value(run_udfs, tmp_path, comp, chunks):
    data = rng_data((4, 4, 6, 6), ">i2" if comp == "gzip" else "<i2", seed=5)
    p = tmp_path / "m.zarr"
    gen_zarr.write_zarr(p, data, chunks=chunks, comp=comp, fill_value=-7)
    removed = ["0.0.0.0", "1.1.1.0", "0.1.0.0", "1.0.1.0"]
    for key in removed:
        os.remove(p / key)
    ref = reference(p)
    assert (ref == -7).sum() > 0  # zarr fills the removed chunks
    got = read_all(run_udfs, p, 16)
    np.testing.assert_array_equal(got, frames(ref))
    # converted reads (float tiles) of the fill value too
    r = run_udfs("sum,stddev", p)
    np.testing.assert_array_equal(r["sum.intensity"], ref.astype(np.float64).sum((0, 1)))
    np.testing.assert_allclose(r["stddev.mean"], ref.astype(np.float64).mean((0, 1)),
                               rtol=1e-12)
    # float NaN fill value
    f = rng_data((3, 3, 4, 4), "<f4", seed=6)
    q = tmp_path / "n.zarr"
    gen_zarr.write_zarr(q, f, chunks=(2, 2, 4, 4), comp="lz4", fill_value=float("nan"))
    os.remove(q / "1.1.0.0")
    ref = reference(q)
    got = read_all(run_udfs, q, 9)
    np.testing.assert_array_equal(got, frames(ref))
    assert np.isnan(got).sum() == np.isnan(ref).sum() > 0


def test_nested_separator(run, run_udfs, tmp_path):
    data = rng_data((3, 4, 5, 6), "<u2", seed=7)
    p = tmp_path / "nested.zarr"
    gen_zarr.write_zarr(p, data, chunks=(2, 3, 3, 4), comp="blosc-zstd", separator="/")
    assert (p / "1" / "1" / "1" / "1").is_file()
    meta = info(run, p)
    assert meta["meta"]["header"]["dimension_separator"] == "/"
    np.testing.assert_array_equal(read_all(run_udfs, p, 12), frames(reference(p)))
    # missing nested chunk: fill value
    shutil.rmtree(p / "1" / "0")
    np.testing.assert_array_equal(read_all(run_udfs, p, 12), frames(reference(p)))


def test_open_by_metadata_file_and_reshape(run, run_udfs, tmp_path):
    data = rng_data((4, 6, 5, 5), "<u2", seed=8)
    p = tmp_path / "r.zarr"
    gen_zarr.write_zarr(p, data, chunks=(3, 4, 5, 2), comp="zlib")
    meta = info(run, p / ".zarray")
    assert meta["format"] == "zarr" and meta["nav_shape"] == [4, 6]
    got = read_all(run_udfs, p, 24, "--set", "nav_shape=24", "--set", "sig_shape=25")
    np.testing.assert_array_equal(got, data.reshape(24, 25))
    got = read_all(run_udfs, p, 20, "--set", "sync_offset=3", "--set", "nav_shape=20")
    ref = np.zeros((20, 5, 5), data.dtype)
    ref[:] = data.reshape(24, 5, 5)[3:23]
    np.testing.assert_array_equal(got, ref)
    r = run_udfs("sum", p, "--roi", "rect:1,2,2,3", "--threads", "2")
    np.testing.assert_array_equal(r["sum.intensity"],
                                  data[1:3, 2:5].astype(np.float64).sum((0, 1)))


def test_group_picks_largest_and_ds_path(run, run_udfs, tmp_path):
    root = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    small = rng_data((2, 3, 4, 4), "<u2", seed=9)
    big = rng_data((3, 3, 5, 5), "<u2", seed=10)
    flat = rng_data((50, 50), "<u2", seed=11)  # larger but 2-D: not chosen
    root.create_dataset("a/small", data=small, chunks=(1, 3, 4, 4))
    root.create_dataset("b/c/big", data=big, chunks=(2, 2, 5, 5))
    root.create_dataset("flat", data=flat, chunks=(25, 25))
    g = tmp_path / "g.zarr"
    meta = info(run, g)
    assert meta["meta"]["header"]["array"] == "b/c/big"
    assert sorted(a["path"] for a in meta["meta"]["arrays"]) == ["a/small", "b/c/big", "flat"]
    np.testing.assert_array_equal(read_all(run_udfs, g, 9), frames(big))
    got = read_all(run_udfs, g, 6, "--set", "ds_path=a/small")
    np.testing.assert_array_equal(got, frames(small))
    got = read_all(run_udfs, g, 1, "--set", "ds_path=flat")
    np.testing.assert_array_equal(got, flat[None])


def test_hyperspy_zspy(run, run_udfs, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
        import logging
        logging.getLogger("hyperspy").setLevel(logging.ERROR)
        data = rng_data((4, 5, 6, 7), "<u2", seed=12)
        s = hs.signals.Signal2D(data)
        s.axes_manager[0].scale = 2.5
        s.axes_manager[0].units = "nm"
        s.axes_manager[1].offset = -1.0
        s.axes_manager[2].scale = 0.1
        s.axes_manager[2].units = "mrad"
        p = tmp_path / "s.zspy"
        s.save(str(p), chunks=(2, 3, 6, 4))
        back = hs.load(str(p), lazy=False)
    meta = info(run, p)
    assert meta["format"] == "zarr"
    assert meta["nav_shape"] == [4, 5] and meta["sig_shape"] == [6, 7]
    assert meta["meta"]["header"]["array"] == "Experiments/__unnamed__/data"
    cal = meta["meta"]["calibration"]
    # HyperSpy's axes_manager lists x before y; calibrations are in numpy order
    am = back.axes_manager
    exp_nav = [am.navigation_axes[1], am.navigation_axes[0]]
    exp_sig = [am.signal_axes[1], am.signal_axes[0]]
    for got_ax, ax in zip(cal["nav"] + cal["sig"], exp_nav + exp_sig):
        assert got_ax["scale"] == pytest.approx(ax.scale)
        assert got_ax["offset"] == pytest.approx(ax.offset)
        assert got_ax["units"] == (ax.units if isinstance(ax.units, str) else "")
    np.testing.assert_array_equal(read_all(run_udfs, p, 20), frames(np.asarray(back.data)))


def test_hyperspy_signal1d_zspy(run, tmp_path):
    """A spectrum image: HyperSpy marks only the last axis as signal."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
        s = hs.signals.Signal1D(rng_data((3, 4, 50), "<f4", seed=13))
        p = tmp_path / "spec.zspy"
        s.save(str(p))
    meta = info(run, p)
    assert meta["nav_shape"] == [3, 4] and meta["sig_shape"] == [50]


# ---- bad input -------------------------------------------------------------

def edit_meta(p, **changes):
    m = json.loads((p / ".zarray").read_text())
    for k, v in changes.items():
        if v is KeyError:
            m.pop(k, None)
        else:
            m[k] = v
    (p / ".zarray").write_text(json.dumps(m))


@pytest.fixture
def store(tmp_path):
    data = rng_data((2, 3, 8, 8), "<u2", seed=20)
    p = tmp_path / "bad.zarr"
    gen_zarr.write_zarr(p, data, chunks=(1, 3, 8, 8), comp="zstd")
    return p


@pytest.mark.parametrize("change,words", [
    (dict(order="F"), ["'order'", "\"F\"", "not supported"]),
    (dict(filters=[{"id": "delta", "dtype": "<u2"}]), ["'filters'", "delta", "not supported"]),
    (dict(compressor={"id": "bz2", "level": 1}), ["compressor 'bz2'", "not supported"]),
    (dict(zarr_format=3), ["'zarr_format'", "3", "expected 2"]),
    (dict(dtype=[["a", "<u2"]]), ["'dtype'", "structured"]),
    (dict(dtype="<M8"), ["'dtype'", "<M8", "not supported"]),
    (dict(shape=[2, 3, 8]), ["'chunks' has 4 dimensions", "'shape' has 3"]),
    (dict(chunks=[0, 3, 8, 8]), ["'chunks'", "positive"]),
    (dict(fill_value=70000), ["'fill_value'", "70000", "<u2"]),
    (dict(dimension_separator="-"), ["'dimension_separator'", "\"-\""]),
    (dict(chunks=[100000, 100000, 8, 8]), ["'chunks'", "larger than"]),
    (dict(shape=KeyError), ["'shape'", "(missing)"]),
])
def test_bad_metadata(fails, store, change, words):
    edit_meta(store, **change)
    msg = fails("info", store)
    assert str(store / ".zarray") in msg
    for w in words:
        assert w in msg, msg


def test_bad_json(fails, store):
    (store / ".zarray").write_text('{"zarr_format": 2, "shape": [1, 2')
    msg = fails("info", store)
    assert ".zarray" in msg and "not valid JSON" in msg


def test_not_a_store(fails, tmp_path):
    d = tmp_path / "empty.zarr"
    d.mkdir()
    msg = fails("info", d, "--format", "zarr")
    assert "neither .zarray nor .zgroup" in msg and str(d) in msg
    # auto-detection does not claim a plain directory
    msg = fails("info", d)
    assert "no format recognises" in msg


def test_group_errors(fails, tmp_path):
    root = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    root.create_dataset("line", data=np.arange(10), chunks=(5,))
    root.create_dataset("img", data=np.zeros((4, 4)), chunks=(4, 4))
    g = tmp_path / "g.zarr"
    msg = fails("info", g)
    assert "no array of 3 or more dimensions" in msg and "line (1-D)" in msg
    assert "img (2-D)" in msg and "ds_path" in msg
    msg = fails("info", g, "--set", "ds_path=nope")
    assert "ds_path 'nope'" in msg and "not a Zarr array" in msg
    msg = fails("info", g, "--set", "ds_path=../x")
    assert "ds_path" in msg and ".." in msg


def run_sum_fails(fails, p):
    return fails("run", "sum", p, "-o", str(p.parent / "out") + "/")


def test_corrupt_chunk(fails, store):
    (store / "1.0.0.0").write_bytes(b"\x28\xb5\x2f\xfd" + b"garbage" * 30)
    msg = run_sum_fails(fails, store)
    assert str(store / "1.0.0.0") in msg and "Zstandard" in msg


def test_truncated_chunk(fails, store):
    raw = (store / "0.0.0.0").read_bytes()
    (store / "0.0.0.0").write_bytes(raw[:len(raw) // 2])
    msg = run_sum_fails(fails, store)
    assert str(store / "0.0.0.0") in msg and "Zstandard" in msg


@pytest.mark.parametrize("comp,codec,label", [
    ("zstd", numcodecs.Zstd(1), "Zstandard"),
    ("lz4", numcodecs.LZ4(), "LZ4"),
    ("blosc-lz4", numcodecs.Blosc("lz4"), "Blosc"),
    ("gzip", numcodecs.GZip(1), "gzip"),
    ("zlib", numcodecs.Zlib(1), "zlib"),
])
@pytest.mark.parametrize("factor", [0.5, 1000])
def test_wrong_size_and_bombs(fails, tmp_path, comp, codec, label, factor):
    """A chunk that decompresses to less than a chunk, or far more (a decompression bomb:
    1000 chunks' worth of zeros), is an error naming the chunk file."""
    data = rng_data((2, 3, 8, 8), "<u2", seed=21)
    p = tmp_path / "w.zarr"
    gen_zarr.write_zarr(p, data, chunks=(1, 3, 8, 8), comp=comp)
    nbytes = int(3 * 8 * 8 * 2 * factor)
    (p / "1.0.0.0").write_bytes(codec.encode(np.zeros(nbytes, np.uint8)))
    msg = run_sum_fails(fails, p)
    assert str(p / "1.0.0.0") in msg and label in msg
    assert "384" in msg  # the chunk's size in bytes


def test_uncompressed_chunk_wrong_size(fails, tmp_path):
    data = rng_data((2, 3, 8, 8), "<u2", seed=22)
    p = tmp_path / "u.zarr"
    gen_zarr.write_zarr(p, data, chunks=(1, 3, 8, 8), comp="none")
    (p / "0.0.0.0").write_bytes(b"\0" * 100)
    msg = run_sum_fails(fails, p)
    assert str(p / "0.0.0.0") in msg and "100 bytes" in msg and "384" in msg


def test_huge_chunk_file_refused(fails, store):
    (store / "0.0.0.0").write_bytes(b"\0" * 5000)
    msg = run_sum_fails(fails, store)
    assert str(store / "0.0.0.0") in msg and "5000 bytes" in msg


def test_unreadable_chunk_path(fails, store):
    os.remove(store / "0.0.0.0")
    (store / "0.0.0.0").mkdir()
    msg = run_sum_fails(fails, store)
    assert str(store / "0.0.0.0") in msg and "directory" in msg
