"""HDF5 (and EMD, NeXus, DECTRIS): every sample file against h5py, generated
files for every compressor, chunk shape and chunk index against the numpy
arrays written, DECTRIS master files with their data files, and bad input.

Pixel values come back through `tessera run pick` of every frame (the
dataset's own dtype) or sum/sumsig; shapes and metadata through
`tessera info --json`.  h5py reads the compressed samples through Debian's
filter plugins (bitshuffle, hdf5-filter-plugin; `hdf5plugin` is imported
where it registers more).
"""

import json
import pathlib
import shutil
import struct
import sys
import zlib

import h5py
import numpy as np
import pytest

try:
    import hdf5plugin  # noqa: F401  (registers filters where it bundles them)
except ImportError:
    pass
import bitshuffle.h5  # noqa: F401,E402  (registers filter 32008 with h5py)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_hdf5  # noqa: E402


def info(run, path, *args):
    return json.loads(run("info", path, "--json", *args).stdout)


def read_all(run_udfs, path, n, *args):
    """All n frames of a dataset, in its own dtype, via pick."""
    picks = [a for i in range(n) for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *args, *picks)["pick.intensity"]


def native(dt):
    return np.dtype(dt).newbyteorder("=")


# ---------------------------------------------------------------------------
# the sample files

# Facts from SOURCES.md: dataset path, nav, sig, typestr; frames_last for
# Velox (stored (y, x, frame)); extra --set arguments.
SAMPLES = {
    "hdf5/Si100_4D.emd": (
        "/4DSTEM_simulation/data/datacubes/CBED_array_depth0000/datacube",
        (11, 11), (8, 8), "<f4", False, ()),
    "hdf5/py4DSTEM_size2x3x4x5.h5": ("/datacube_root/datacube/data", (2, 3), (4, 5), "<f4",
                                     False, ()),
    "hdf5/fei_example_tem_stack.emd": ("/Data/Image/26f60320a61d4f66a73efd8cde34ffa9/Data",
                                       (2,), (3, 3), "<i2", True, ()),
    "hdf5/Camera Ceta Diffraction Micro.emd": (
        "/Data/Image/5c415056c9dc4df8be289b4bf4d63e8c/Data", (1,), (512, 512), "<i2", True, ()),
    "hdf5/emd_type1_stringDims.h5": ("/exper/emd_data/data", (3, 4), (5, 6), "<i8", False, ()),
    "hdf5/FPD_HDF5.hdf5": ("/fpd_expt/fpd_data/data", (16, 16), (256, 256), ">u2", False, ()),
    "hdf5/nexus_dls_example.nxs": ("/entry1/testdata/nexustest/data", (10, 10), (15,), "<f8",
                                   False, ("--set", "sig_dims=1")),
}


def sample_files(testdata):
    assert testdata is not None and (testdata / "hdf5").is_dir(), "TSR_TESTDATA/hdf5 missing"
    found = sorted(str(p.relative_to(testdata)) for p in (testdata / "hdf5").iterdir())
    assert found == sorted(SAMPLES), f"sample set changed: {found}"
    return found


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_against_h5py(testdata, run, run_udfs, name):
    sample_files(testdata)
    path = testdata / name
    ds_path, nav, sig, ts, frames_last, args = SAMPLES[name]
    d = info(run, path, *args)
    assert d["format"] == "hdf5"
    assert tuple(d["nav_shape"]) == nav and tuple(d["sig_shape"]) == sig, d
    assert d["typestr"] == ts
    h = d["meta"]["header"]
    assert h["dataset"] == ds_path
    assert h["frames_last"] == frames_last
    with h5py.File(path, "r") as f:
        ref = f[ds_path][()]
        cands = []
        f.visititems(lambda n, o: cands.append("/" + n) if isinstance(o, h5py.Dataset)
                     and o.ndim >= 3 and o.dtype.kind in "uif" else None)
    assert sorted(c["path"] for c in d["meta"]["candidates"]) == sorted(cands)
    if frames_last:
        ref = np.moveaxis(ref, -1, 0)
    ref = ref.reshape(nav + sig)
    got = read_all(run_udfs, path, int(np.prod(nav)), *args)
    assert got.dtype == native(ref.dtype), (got.dtype, ref.dtype)
    np.testing.assert_array_equal(got.reshape(nav + sig), ref, err_msg=name)
    # the tiled path and a second thread agree
    res = run_udfs("sum,sumsig", path, *args, "--threads", "2")
    np.testing.assert_allclose(res["sum.intensity"], ref.sum(axis=tuple(range(len(nav))),
                                                             dtype=np.float64), rtol=1e-12)
    np.testing.assert_allclose(res["sumsig.intensity"].reshape(nav),
                               ref.sum(axis=tuple(range(len(nav), ref.ndim)), dtype=np.float64),
                               rtol=1e-12)


def test_sample_chunk_layouts(testdata, run):
    """The FPD file: shuffle + deflate + fletcher32 in chunks of 16^4, as
    h5py sees them; the chunk table is read from the file's B-tree."""
    d = info(run, testdata / "hdf5/FPD_HDF5.hdf5")
    h = d["meta"]["header"]
    with h5py.File(testdata / "hdf5/FPD_HDF5.hdf5", "r") as f:
        ds = f["/fpd_expt/fpd_data/data"]
        assert tuple(h["chunks"]) == ds.chunks
        assert h["filters"] == ["shuffle", "deflate", "fletcher32"]
    assert h["chunk_index"] == "v1 B-tree"
    assert h["layout"] == "chunked"


def test_sample_emd_calibration(testdata, run):
    """Berkeley EMD dim vectors become calibrations (checked with h5py)."""
    path = testdata / "hdf5/Si100_4D.emd"
    d = info(run, path)
    cal = d["meta"]["calibration"]
    axes = cal["nav"] + cal["sig"]
    grp = "/4DSTEM_simulation/data/datacubes/CBED_array_depth0000"
    with h5py.File(path, "r") as f:
        for i, ax in enumerate(axes, 1):
            v = f[f"{grp}/dim{i}"]
            assert ax["offset"] == pytest.approx(float(v[0]))
            assert ax["scale"] == pytest.approx(float(v[1] - v[0]))
            assert ax["name"] == v.attrs["name"].decode() if isinstance(v.attrs["name"], bytes) \
                else ax["name"] == v.attrs["name"]


def test_sample_ds_path_picks_another(testdata, run, run_udfs):
    """Si100 holds two datacubes: the default is the first of the largest,
    ds_path opens the other."""
    path = testdata / "hdf5/Si100_4D.emd"
    other = "/4DSTEM_simulation/data/datacubes/CBED_array_depth0001/datacube"
    d = info(run, path, "--set", f"ds_path={other}")
    assert d["meta"]["header"]["dataset"] == other
    with h5py.File(path, "r") as f:
        ref = f[other][()]
    got = read_all(run_udfs, path, 121, "--set", f"ds_path={other}")
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)


def test_dectris_sample(testdata, run, run_udfs):
    """The ARINA sample: the master file opens as the data file's 16 images,
    4x4 from the scan sidecar, with the detector's metadata as h5py reads
    them; values match h5py's read through the external link."""
    master = testdata / "dectris/test_00_master.h5"
    d = info(run, master)
    assert d["format"] == "hdf5"
    assert tuple(d["nav_shape"]) == (4, 4) and tuple(d["sig_shape"]) == (192, 192)
    assert d["typestr"] == "<u4"
    meta = d["meta"]
    with h5py.File(master, "r") as f:
        ref = f["/entry/data/data_000001"][()]
        det = f["/entry/instrument/detector"]
        facts = {k: det[k][()] for k in ("description", "x_pixel_size", "y_pixel_size",
                                         "count_time", "frame_time", "beam_center_x",
                                         "beam_center_y", "detector_distance",
                                         "sensor_material", "bit_depth_image")}
        units = {k: det[k].attrs["units"] for k in ("x_pixel_size", "count_time",
                                                     "detector_distance")}
    dh = meta["header"]["detector"]
    for k, v in facts.items():
        if isinstance(v, bytes):
            assert dh[k] == v.decode(), k
        else:
            assert dh[k] == pytest.approx(float(v)), k
    for k, v in units.items():
        assert dh[k + "_units"] == v.decode()
    assert meta["detector"] == facts["description"].decode()
    assert meta["exposure_time_s"] == pytest.approx(float(facts["count_time"]))
    assert [a["scale"] for a in meta["calibration"]["sig"]] == \
        pytest.approx([float(facts["y_pixel_size"]), float(facts["x_pixel_size"])])
    assert meta["header"]["filters"] == ["bitshuffle"]
    assert meta["header"]["dataset"] == ["/entry/data/data_000001"]
    got = read_all(run_udfs, master, 16)
    assert got.dtype == np.uint32
    np.testing.assert_array_equal(got.reshape(ref.shape), ref)


def test_dectris_data_file_alone(testdata, run, run_udfs):
    p = testdata / "dectris/test_00_data_000001.h5"
    d = info(run, p)
    assert tuple(d["nav_shape"]) == (16,) and tuple(d["sig_shape"]) == (192, 192)
    with h5py.File(p, "r") as f:
        ref = f["/entry/data/data"][()]
    np.testing.assert_array_equal(read_all(run_udfs, p, 16).reshape(ref.shape), ref)


# ---------------------------------------------------------------------------
# generated files


SHAPE = (3, 5, 20, 24)


@pytest.fixture(scope="module")
def data():
    return gen_hdf5.counts(SHAPE, "u2", seed=1)


@pytest.mark.parametrize("compression", gen_hdf5.COMPRESSIONS)
@pytest.mark.parametrize("chunks", [(1, 1, 20, 24), (2, 3, 7, 24), (3, 5, 9, 5)])
def test_compressors_and_chunks(tmp_path, run, run_udfs, data, compression, chunks):
    p = gen_hdf5.write(tmp_path / "g.h5", data, chunks=chunks, compression=compression)
    d = info(run, p)
    assert tuple(d["nav_shape"]) == SHAPE[:2] and tuple(d["sig_shape"]) == SHAPE[2:]
    assert tuple(d["meta"]["header"]["chunks"]) == chunks
    got = read_all(run_udfs, p, 15)
    np.testing.assert_array_equal(got.reshape(SHAPE), data)
    # row bands smaller than the chunks (the decoded-chunk cache), 2 threads
    res = run_udfs("sum,sumsig", p, "--tile-bytes", "1000", "--threads", "2")
    np.testing.assert_array_equal(res["sum.intensity"], data.sum(axis=(0, 1), dtype=np.float64))
    np.testing.assert_array_equal(res["sumsig.intensity"], data.sum(axis=(2, 3), dtype=np.float64))


@pytest.mark.parametrize("kind,kw", [
    ("v1 B-tree", dict(chunks=(2, 3, 7, 24))),
    ("fixed array", dict(chunks=(2, 3, 7, 24), libver="latest")),
    ("fixed array", dict(chunks=(1, 1, 20, 24), libver="latest", compression="gzip")),
    ("extensible array", dict(chunks=(1, 2, 20, 24), libver="latest", maxshape_none=True)),
    ("extensible array", dict(chunks=(1, 2, 20, 24), libver="latest", maxshape_none=True,
                              compression="shuffle-gzip")),
    ("single chunk", dict(chunks=SHAPE, libver="latest")),
    ("single chunk", dict(chunks=SHAPE, libver="latest", compression="gzip")),
    ("implicit", dict(chunks=(1, 5, 10, 24), libver="latest", alloc_early=True)),
])
def test_chunk_indexes(tmp_path, run, run_udfs, data, kind, kw):
    p = gen_hdf5.write(tmp_path / "g.h5", data, **kw)
    assert info(run, p)["meta"]["header"]["chunk_index"] == kind
    np.testing.assert_array_equal(read_all(run_udfs, p, 15).reshape(SHAPE), data)


@pytest.mark.parametrize("kw", [
    dict(chunks=(1, 1, 8, 8)),
    dict(chunks=(1, 1, 8, 8), libver="latest"),                       # paged fixed array
    dict(chunks=(1, 1, 8, 8), libver="latest", maxshape_none=True),   # super blocks
    dict(chunks=(1, 1, 8, 8), libver="latest", maxshape_none=True, compression="gzip"),
])
def test_many_chunks(tmp_path, run, run_udfs, kw):
    """65 536 chunks: the table is read in one pass (not libhdf5's n^2)."""
    a = gen_hdf5.counts((256, 256, 8, 8), "u2", seed=2)
    p = gen_hdf5.write(tmp_path / "g.h5", a, **kw)
    assert info(run, p)["meta"]["header"]["chunk_index"] != "libhdf5"
    res = run_udfs("sumsig", p)
    np.testing.assert_array_equal(res["sumsig.intensity"], a.sum(axis=(2, 3), dtype=np.float64))


def test_never_written_chunks_read_as_fill(tmp_path, run_udfs):
    a = np.zeros((4, 6, 6), "i4")
    with h5py.File(tmp_path / "g.h5", "w") as f:
        ds = f.create_dataset("d", shape=a.shape, dtype="i4", chunks=(1, 6, 6), fillvalue=-7)
        ds[1] = 5
    a[:] = -7
    a[1] = 5
    np.testing.assert_array_equal(read_all(run_udfs, tmp_path / "g.h5", 4), a)


@pytest.mark.parametrize("layout", ["contiguous", "compact"])
@pytest.mark.parametrize("dtype", ["<u2", ">i4", "<f4", ">f8", "u1"])
def test_unchunked(tmp_path, run, run_udfs, layout, dtype):
    a = gen_hdf5.counts((3, 4, 5, 6), dtype, seed=3)
    p = gen_hdf5.write(tmp_path / "g.h5", a, layout=None if layout == "contiguous" else layout)
    d = info(run, p)
    assert d["meta"]["header"]["layout"] == layout
    assert d["typestr"] == np.dtype(dtype).str
    got = read_all(run_udfs, p, 12)
    assert got.dtype == native(dtype)
    np.testing.assert_array_equal(got.reshape(a.shape), a)


def test_several_datasets(tmp_path, run, run_udfs):
    """The largest dataset of 3+ dimensions is opened; every candidate is
    listed; ds_path opens another."""
    big = gen_hdf5.counts((4, 5, 6, 7), "u2", seed=4)
    small = gen_hdf5.counts((2, 9, 9), "f4", seed=5)
    p = gen_hdf5.write(tmp_path / "g.h5", big, ds_path="/a/big", chunks=(1, 5, 6, 7),
                       compression="gzip", extra=[("/b/small", small),
                                                  ("/b/flat", np.arange(50.0)),
                                                  ("/b/img", np.ones((30, 30)))])
    d = info(run, p)
    assert d["meta"]["header"]["dataset"] == "/a/big"
    cands = {c["path"]: (tuple(c["shape"]), c["dtype"]) for c in d["meta"]["candidates"]}
    assert cands == {"/a/big": ((4, 5, 6, 7), "<u2"), "/b/small": ((2, 9, 9), "<f4")}
    got = read_all(run_udfs, p, 2, "--set", "ds_path=/b/small")
    np.testing.assert_array_equal(got, small)
    # a 2-D dataset opens when named, with sig_dims=1
    got = read_all(run_udfs, p, 30, "--set", "ds_path=b/img", "--set", "sig_dims=1")
    np.testing.assert_array_equal(got, np.ones((30, 30)))


@pytest.mark.parametrize("sig_dims", [1, 2, 3])
def test_sig_dims(tmp_path, run, run_udfs, data, sig_dims):
    p = gen_hdf5.write(tmp_path / "g.h5", data, chunks=(2, 3, 7, 24), compression="lz4")
    d = info(run, p, "--set", f"sig_dims={sig_dims}")
    nav, sig = SHAPE[:4 - sig_dims], SHAPE[4 - sig_dims:]
    assert tuple(d["nav_shape"]) == nav and tuple(d["sig_shape"]) == sig
    res = run_udfs("sum", p, "--set", f"sig_dims={sig_dims}", "--tile-bytes", "700")
    np.testing.assert_array_equal(res["sum.intensity"],
                                  data.sum(axis=tuple(range(len(nav))), dtype=np.float64))


def test_nav_shape_and_sync_offset(tmp_path, run_udfs, data):
    p = gen_hdf5.write(tmp_path / "g.h5", data, chunks=(2, 3, 7, 24), compression="bslz4")
    got = read_all(run_udfs, p, 15, "--set", "nav_shape=15", "--set", "sync_offset=4")
    flat = data.reshape(15, 20, 24)
    np.testing.assert_array_equal(got[:11], flat[4:])
    assert not got[11:].any()
    got = read_all(run_udfs, p, 15, "--set", "nav_shape=5,3", "--set", "sync_offset=-2")
    assert not got[:2].any()
    np.testing.assert_array_equal(got[2:], flat[:13])


def test_frames_last(tmp_path, run, run_udfs):
    """A Velox-style stack (y, x, frame) in chunks of one frame."""
    a = gen_hdf5.counts((5, 16, 12), "i2", seed=6)
    stored = np.ascontiguousarray(np.moveaxis(a, 0, -1))
    p = tmp_path / "v.emd"
    with h5py.File(p, "w") as f:
        f.create_dataset("/Data/Image/abc/Data", data=stored, chunks=(16, 12, 1))
        f.create_dataset("/Version", data=np.array([b'{"version": "Velox"}']))
    d = info(run, p)
    assert d["meta"]["header"]["frames_last"] is True
    assert tuple(d["nav_shape"]) == (5,) and tuple(d["sig_shape"]) == (16, 12)
    np.testing.assert_array_equal(read_all(run_udfs, p, 5), a)
    # and the other way round when asked
    d = info(run, p, "--set", "frames_last=false", "--set", "sig_dims=2")
    assert tuple(d["nav_shape"]) == (16,) and tuple(d["sig_shape"]) == (12, 5)


def test_dectris_generated(tmp_path, run, run_udfs):
    """A master file with two data files (5 + 3 images, bitshuffle-LZ4)."""
    master, a, files = gen_hdf5.write_dectris(tmp_path, "rec", [5, 3])
    d = info(run, master)
    assert tuple(d["nav_shape"]) == (8,) and tuple(d["sig_shape"]) == a.shape[1:]
    assert [pathlib.Path(f).name for f in d["meta"]["files"]] == [f.name for f in files]
    det = d["meta"]["header"]["detector"]
    for k, v in gen_hdf5.DECTRIS_DETECTOR.items():
        if isinstance(v, tuple):
            assert det[k] == pytest.approx(v[0]) and det[k + "_units"] == v[1].decode(), k
        elif isinstance(v, bytes):
            assert det[k] == v.decode(), k
        else:
            assert det[k] == int(v), k
    np.testing.assert_array_equal(read_all(run_udfs, master, 8), a)
    res = run_udfs("sum,sumsig", master, "--threads", "2", "--set", "nav_shape=2,4")
    np.testing.assert_array_equal(res["sum.intensity"], a.sum(axis=0, dtype=np.float64))
    np.testing.assert_array_equal(res["sumsig.intensity"],
                                  a.sum(axis=(1, 2), dtype=np.float64).reshape(2, 4))


def test_cli_generator(tmp_path, run, run_udfs):
    p = tmp_path / "big.h5"
    assert gen_hdf5.main([str(p), "--shape", "4,3,16,16", "--compression", "bslz4",
                          "--chunks", "1,3,16,16"]) == 0
    with h5py.File(p, "r") as f:
        ref = f["/data"][()]
    d = info(run, p)
    assert tuple(d["nav_shape"]) == (4, 3) and d["meta"]["header"]["filters"] == ["bitshuffle"]
    np.testing.assert_array_equal(read_all(run_udfs, p, 12).reshape(ref.shape), ref)


def test_bitshuffle_independent_decoder(tmp_path):
    """The generator's bitshuffle (numpy bit operations) matches the
    bitshuffle library's encoding of the same block, byte for byte."""
    import bitshuffle
    a = gen_hdf5.counts((1024,), "u2", seed=7)
    assert gen_hdf5.bitshuffle_block(a) == bitshuffle.bitshuffle(a).tobytes()


# ---------------------------------------------------------------------------
# bad input


def chunk_offset(path, ds="/data", idx=0):
    with h5py.File(path, "r") as f:
        ci = f[ds].id.get_chunk_info(idx)
        return ci.byte_offset, ci.size


def patched(path, at, data):
    b = bytearray(pathlib.Path(path).read_bytes())
    b[at:at + len(data)] = data
    pathlib.Path(path).write_bytes(bytes(b))
    return path


@pytest.mark.parametrize("compression", ["gzip", "lz4", "bslz4", "zstd", "bszstd",
                                         "fletcher-shuffle-gzip"])
def test_corrupt_chunk(tmp_path, fails, data, compression):
    p = gen_hdf5.write(tmp_path / "g.h5", data, chunks=(1, 1, 20, 24), compression=compression)
    off, size = chunk_offset(p, idx=3)
    patched(p, off + size // 3, b"\xff\x13\x00\x77" * 6)
    msg = fails("run", "sum", p, "-o", tmp_path / "o.npy")
    assert str(p) in msg and "chunk 3" in msg, msg


def test_lying_stream_headers(tmp_path, fails, data):
    """Streams that claim more output than the chunk holds (bombs)."""
    p = gen_hdf5.write(tmp_path / "g.h5", data, chunks=(1, 1, 20, 24), compression="bslz4")
    off, _ = chunk_offset(p)
    patched(p, off, struct.pack(">Q", 20 * 24 * 2 * 1000))
    msg = fails("run", "sum", p, "-o", tmp_path / "o.npy")
    assert "chunk 0" in msg and "header says 960000 bytes, the chunk holds 960" in msg, msg
    p = gen_hdf5.write(tmp_path / "l.h5", data, chunks=(1, 1, 20, 24), compression="lz4")
    off, _ = chunk_offset(p)
    patched(p, off, struct.pack(">Q", 1 << 40))
    assert "header says" in fails("run", "sum", p, "-o", tmp_path / "o.npy")


def test_decompression_bombs(tmp_path, fails):
    """Chunks whose compressed data inflate far beyond the chunk."""
    shape, chunk = (2, 8, 8), (1, 8, 8)
    with h5py.File(tmp_path / "z.h5", "w") as f:
        ds = f.create_dataset("data", shape=shape, dtype="u2", chunks=chunk, compression="gzip")
        ds.id.write_direct_chunk((0, 0, 0), zlib.compress(bytes(128 * 1000)))
        ds.id.write_direct_chunk((1, 0, 0), zlib.compress(bytes(128)))
    msg = fails("run", "sum", tmp_path / "z.h5", "-o", tmp_path / "o.npy")
    assert "chunk 0" in msg and "more than the 128 bytes" in msg, msg
    import zstandard
    with h5py.File(tmp_path / "s.h5", "w") as f:
        ds = f.create_dataset("data", shape=shape, dtype="u2", chunks=chunk, compression=32015,
                              allow_unknown_filter=True)
        ds.id.write_direct_chunk((0, 0, 0), zstandard.ZstdCompressor().compress(bytes(1 << 20)))
        ds.id.write_direct_chunk((1, 0, 0), zstandard.ZstdCompressor().compress(bytes(128)))
    msg = fails("run", "sum", tmp_path / "s.h5", "-o", tmp_path / "o.npy")
    assert "declares 1048576 bytes, the chunk holds 128" in msg, msg


def test_lying_chunk_size_in_index(tmp_path, fails, data):
    """A B-tree entry whose stored size is absurd for its chunk."""
    p = gen_hdf5.write(tmp_path / "g.h5", data, chunks=(1, 1, 20, 24), compression="gzip")
    raw = pathlib.Path(p).read_bytes()
    tree = raw.index(b"TREE\x01\x00")  # a leaf node of a chunk B-tree
    # key 0 of a leaf: chunk size (u32) after the 8-byte header and two 8-byte siblings
    patched(p, tree + 24, struct.pack("<I", 0x7FFFFFF0))
    msg = fails("info", p)
    assert "implausible" in msg and "chunk 0" in msg, msg


def test_truncated(tmp_path, fails, data):
    """Cut in the last chunk: libhdf5 itself notices (the superblock's end of
    file); with that field patched to the cut, our chunk check does."""
    p = gen_hdf5.write(tmp_path / "g.h5", data, chunks=(1, 1, 20, 24), compression="gzip")
    off, size = chunk_offset(p, idx=14)
    b = pathlib.Path(p).read_bytes()
    assert off + size <= len(b) and b[8] == 0  # superblock version 0
    cut = off + size // 2
    pathlib.Path(p).write_bytes(b[:cut])
    msg = fails("run", "sum", p, "-o", tmp_path / "o.npy")
    assert str(p) in msg and "truncated" in msg, msg
    # superblock v0, 8-byte offsets: the end-of-file address is at byte 40
    patched(p, 40, struct.pack("<Q", cut))
    msg = fails("info", p)
    assert "chunk 14" in msg and "past the end of the file" in msg, msg
    # contiguous data cut short
    c = gen_hdf5.write(tmp_path / "c.h5", data)
    b = pathlib.Path(c).read_bytes()
    pathlib.Path(c).write_bytes(b[:len(b) - 1000])
    patched(c, 40, struct.pack("<Q", len(b) - 1000))
    msg = fails("info", c)
    assert "run past the end of the file" in msg, msg


def test_missing_data_file(tmp_path, fails):
    master, a, files = gen_hdf5.write_dectris(tmp_path, "rec", [2, 2])
    files[1].unlink()
    msg = fails("info", master)
    assert "/entry/data/data_000002" in msg and "rec_data_000002.h5" in msg, msg
    assert "missing" in msg


@pytest.mark.parametrize("content,needle", [
    (b"", "cannot open as an HDF5 file"),
    (b"\x89HDF\r\n\x1a\n" + bytes(200), "cannot open as an HDF5 file"),
    (b"not hdf5 at all" * 20, "cannot open as an HDF5 file"),
])
def test_not_hdf5(tmp_path, fails, content, needle):
    p = tmp_path / "x.h5"
    p.write_bytes(content)
    msg = fails("info", p)
    assert str(p) in msg and needle in msg, msg


def test_bad_parameters(tmp_path, fails, data):
    p = gen_hdf5.write(tmp_path / "g.h5", data, chunks=(1, 1, 20, 24),
                       extra=[("/flat", np.arange(10))])
    msg = fails("info", p, "--set", "ds_path=/nope")
    assert "/nope" in msg, msg
    msg = fails("info", p, "--set", "ds_path=/flat")
    assert "1 dimensions" in msg, msg
    msg = fails("info", p, "--set", "sig_dims=4")
    assert "sig_dims is 4" in msg and "4 dimensions" in msg, msg
    msg = fails("info", p, "--set", "frames_last=maybe")
    assert "frames_last" in msg, msg
    q = gen_hdf5.write(tmp_path / "flat.h5", np.ones((5, 5)))
    msg = fails("info", q)
    assert "no dataset of 3 or more dimensions" in msg and "ds_path" in msg, msg


def test_unsupported_filter(tmp_path, fails):
    with h5py.File(tmp_path / "b.h5", "w") as f:
        ds = f.create_dataset("data", shape=(2, 4, 4), dtype="u2", chunks=(1, 4, 4),
                              compression=32001, allow_unknown_filter=True)
        ds.id.write_direct_chunk((0, 0, 0), bytes(40))
    msg = fails("info", tmp_path / "b.h5")
    assert "32001" in msg and "not supported" in msg, msg


def test_strings_are_not_candidates(tmp_path, fails):
    with h5py.File(tmp_path / "s.h5", "w") as f:
        f.create_dataset("s", data=np.array([[[b"ab"]]]))
    msg = fails("info", tmp_path / "s.h5")
    assert "no dataset of 3 or more dimensions" in msg, msg


def test_huge_empty_dataset(tmp_path, fails):
    """A tiny file may declare an enormous, never written dataset: its chunk
    table is refused, not allocated."""
    with h5py.File(tmp_path / "h.h5", "w") as f:
        f.create_dataset("d", shape=(100000, 100000, 256, 256), dtype="u2",
                         chunks=(1, 1, 256, 256))
    msg = fails("info", tmp_path / "h.h5")
    assert "a grid of more than" in msg and "chunks" in msg, msg


def test_hyperspy_file(tmp_path, run, run_udfs):
    """A 4D signal saved by HyperSpy 1.7 (.hspy: chunked, gzip): opened as
    HyperSpy reads it back, calibrations aside."""
    import logging
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import hyperspy.api as hs
    logging.getLogger("hyperspy").setLevel(logging.ERROR)
    a = gen_hdf5.counts((4, 5, 16, 12), "u2", seed=8)
    p = tmp_path / "s.hspy"
    hs.signals.Signal2D(a).save(str(p))
    d = info(run, p)
    assert d["format"] == "hdf5"
    assert tuple(d["nav_shape"]) == (4, 5) and tuple(d["sig_shape"]) == (16, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.asarray(hs.load(str(p), lazy=False).data)
    np.testing.assert_array_equal(read_all(run_udfs, p, 20).reshape(a.shape), ref)
    np.testing.assert_array_equal(ref, a)
