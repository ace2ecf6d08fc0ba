"""raw_csr datasets (LiberTEM's sparse layout: a TOML file naming indptr, indices and
data arrays of a scipy.sparse CSR matrix, nav flattened × sig flattened), generated with
scipy.sparse in the test (tests/gen/gen_raw_csr.py).  There is no sample in TSR_TESTDATA.

Every result is checked against numpy on the dense equivalent (oracle.py): runs whose UDFs
all accept sparse tiles (sum, sumsig, masks: the sparse path), mixed runs (with stddev or
pick, which need dense tiles: the reader densifies), with a ROI, sync_offset, reshaping and
1 or 2 threads.  Bad input (indptr not monotonic, indices out of range, files too short,
malformed TOML) must give one clear error line naming the file.
"""

import json
import pathlib
import sys

import numpy as np
import pytest
import scipy.sparse

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_raw_csr  # noqa: E402

from oracle import check, expected  # noqa: E402

NAV, SIG = (6, 7), (9, 8)
MASKS = ["disk:4,3,3", "ring:3.5,4,1,3"]


def info(run, path, *args):
    return json.loads(run("info", path, "--json", *args).stdout)


def make(tmp_path, dtype="<u2", indptr="<i4", indices="<i4", density=0.15, seed=1,
         nav=NAV, sig=SIG, name="d"):
    dense = gen_raw_csr.random_sparse(nav, sig, density, np.dtype(dtype).newbyteorder("="),
                                      seed).astype(dtype)
    p = tmp_path / f"{name}.toml"
    gen_raw_csr.write_raw_csr(p, dense.reshape(int(np.prod(nav)), -1), nav, sig,
                              indptr_dtype=indptr, indices_dtype=indices, data_dtype=dtype)
    return p, dense


def mask_file(tmp_path, sig=SIG, n=3, seed=4):
    m = np.random.default_rng(seed).random((n,) + sig).astype(np.float32)
    p = tmp_path / "masks.npy"
    np.save(p, m)
    return p, m


def test_info(run, tmp_path):
    p, dense = make(tmp_path)
    m = info(run, p)
    assert m["format"] == "raw_csr"
    assert m["nav_shape"] == list(NAV) and m["sig_shape"] == list(SIG)
    assert m["dtype"] == "uint16" and m["image_count"] == 42
    hdr = m["meta"]["header"]
    assert hdr["nnz"] == int(np.count_nonzero(dense))
    assert hdr["indptr_dtype"] == "<i4" and hdr["data_dtype"] == "<u2"
    assert m["meta"]["sparse"] is True
    assert [pathlib.Path(f).name for f in m["meta"]["files"]] == ["d.indptr", "d.indices",
                                                                  "d.data"]


@pytest.mark.parametrize("dtype,indptr,indices", [
    ("<u2", "<i4", "<i4"),
    ("|u1", "<i8", "<u4"),
    ("<i4", "<u8", "<i8"),
    ("<f4", "<i8", "<i4"),
    (">f8", ">i8", ">i4"),
    (">i2", "<u4", ">u2"),
])
@pytest.mark.parametrize("threads", [1, 2])
def test_all_sparse_udfs(run_udfs, tmp_path, dtype, indptr, indices, threads):
    """sum, sumsig and masks accept sparse tiles: one run, all on the sparse path."""
    p, dense = make(tmp_path, dtype, indptr, indices)
    mp, mstack = mask_file(tmp_path)
    masks = MASKS + [mstack]
    args = ["--threads", threads, "--param", f"mask={MASKS[0]}", "--param", f"mask={MASKS[1]}",
            "--param", f"mask={mp}"]
    r = run_udfs("sum,sumsig,masks", p, *args)
    check(r, expected(dense, NAV, SIG, udfs=("sum", "sumsig", "masks"), masks=masks))
    # small tiles: many partitions and tiles
    r = run_udfs("sum,sumsig,masks", p, *args, "--tile-bytes", "64", "--partitions", "5")
    check(r, expected(dense, NAV, SIG, udfs=("sum", "sumsig", "masks"), masks=masks))


@pytest.mark.parametrize("udfs", ["sum,stddev", "sumsig,pick", "masks,stddev,sum",
                                  "stddev"])
@pytest.mark.parametrize("threads", [1, 2])
def test_mixed_runs_densify(run_udfs, tmp_path, udfs, threads):
    """stddev and pick take dense tiles: the reader densifies for every UDF of the run."""
    p, dense = make(tmp_path, "<u2", "<i8", "<i4")
    picks = [(0, 0), (2, 5), (5, 6)]
    args = ["--threads", threads]
    if "pick" in udfs:
        for y, x in picks:
            args += ["--param", f"nav={y},{x}"]
    if "masks" in udfs:
        args += ["--param", f"mask={MASKS[0]}"]
    r = run_udfs(udfs, p, *args)
    check(r, expected(dense, NAV, SIG, udfs=tuple(udfs.split(",")), masks=MASKS[:1],
                      picks=picks))


@pytest.mark.parametrize("roi", ["rect:1,2,3,4", "disk:3,3,2"])
@pytest.mark.parametrize("udfs", ["sum,sumsig,masks", "sum,sumsig,masks,stddev"])
def test_roi(run_udfs, tmp_path, roi, udfs):
    p, dense = make(tmp_path, "<f4", "<i8", "<i4")
    r = run_udfs(udfs, p, "--roi", roi, "--threads", "2", "--param", f"mask={MASKS[1]}")
    check(r, expected(dense, NAV, SIG, udfs=tuple(udfs.split(",")), roi=roi,
                      masks=MASKS[1:]))


@pytest.mark.parametrize("so", [-5, 4])
@pytest.mark.parametrize("udfs", ["sum,sumsig", "sum,sumsig,pick"])
def test_sync_offset_and_reshape(run, run_udfs, tmp_path, so, udfs):
    p, dense = make(tmp_path, "<u2", "<i4", "<i4")
    flat = dense.reshape(42, *SIG)
    n = 30
    ref = np.zeros((n,) + SIG, dense.dtype)
    for f in range(n):
        if 0 <= f + so < 42:
            ref[f] = flat[f + so]
    picks = [(0,), (7,), (29,)]
    args = ["--set", f"sync_offset={so}", "--set", f"nav_shape={n}", "--threads", "2"]
    pick_args = [a for (f,) in picks for a in ("--param", f"nav={f}")] if "pick" in udfs else []
    r = run_udfs(udfs, p, *args, *pick_args)
    check(r, expected(ref, (n,), SIG, udfs=tuple(udfs.split(",")), picks=picks))
    # sync_offset from the TOML file, and a flat signal
    text = p.read_text().replace('sig_shape = [9, 8]', f'sig_shape = [9, 8]\nsync_offset = {so}')
    q = tmp_path / "so.toml"
    q.write_text(text)
    r = run_udfs(udfs, q, "--set", f"nav_shape={n}", "--set", "sig_shape=72", *pick_args)
    check(r, expected(ref.reshape(n, 72), (n,), (72,), udfs=tuple(udfs.split(",")),
                      picks=picks))


def test_unsorted_and_duplicate_indices(run_udfs, tmp_path):
    """CSR rows need not be sorted and may repeat a pixel (scipy's toarray adds them)."""
    rng = np.random.default_rng(9)
    n, npix = 42, 72
    indptr = [0]
    indices, data = [], []
    for _ in range(n):
        k = int(rng.integers(0, 12))
        indices += list(rng.integers(0, npix, size=k))  # unsorted, with repeats
        data += list(rng.integers(1, 50, size=k))
        indptr.append(len(indices))
    m = scipy.sparse.csr_matrix((np.array(data, np.uint16), np.array(indices, np.int32),
                                 np.array(indptr, np.int32)), shape=(n, npix))
    assert not m.has_sorted_indices or not m.has_canonical_format
    dense = m.toarray().reshape(NAV + SIG)
    p = tmp_path / "dup.toml"
    np.array(indptr, np.int32).tofile(tmp_path / "dup.indptr")
    np.array(indices, np.int32).tofile(tmp_path / "dup.indices")
    np.array(data, np.uint16).tofile(tmp_path / "dup.data")
    p.write_text(gen_raw_csr.toml_text("dup", NAV, SIG, "<i4", "<i4", "<u2"))
    for udfs in ("sum,sumsig,masks", "sum,sumsig,masks,stddev"):
        r = run_udfs(udfs, p, "--param", f"mask={MASKS[0]}")
        check(r, expected(dense, NAV, SIG, udfs=tuple(udfs.split(",")), masks=MASKS[:1]))


def test_empty_frames_and_all_empty(run_udfs, tmp_path):
    dense = np.zeros(NAV + SIG, np.uint16)
    dense[2, 3, 4, 5] = 7
    p = tmp_path / "e.toml"
    gen_raw_csr.write_raw_csr(p, dense.reshape(42, 72), NAV, SIG)
    check(run_udfs("sum,sumsig", p), expected(dense, NAV, SIG, udfs=("sum", "sumsig")))


def test_indptr_not_starting_at_zero(run_udfs, tmp_path):
    """indptr holds offsets into the value files; the first need not be 0."""
    p, dense = make(tmp_path, "<u2", "<i8", "<i4")
    ip = np.fromfile(tmp_path / "d.indptr", "<i8")
    idx = np.fromfile(tmp_path / "d.indices", "<i4")
    val = np.fromfile(tmp_path / "d.data", "<u2")
    (ip + 3).tofile(tmp_path / "d.indptr")
    np.concatenate([[1, 2, 3], idx]).astype("<i4").tofile(tmp_path / "d.indices")
    np.concatenate([[9, 9, 9], val]).astype("<u2").tofile(tmp_path / "d.data")
    check(run_udfs("sum,sumsig", p), expected(dense, NAV, SIG, udfs=("sum", "sumsig")))


def test_absolute_paths_and_other_table_case(run, run_udfs, tmp_path):
    p, dense = make(tmp_path)
    text = p.read_text()
    for k in ("indptr", "indices", "data"):
        text = text.replace(f'"d.{k}"', f'"{tmp_path}/d.{k}"')
    text = text.replace('filetype = "raw_csr"', 'filetype = "RAW_CSR"').replace(
        "[raw_csr]", "[RAW_CSR]")
    q = tmp_path / "sub"
    q.mkdir()
    (q / "x.toml").write_text(text)
    check(run_udfs("sum", q / "x.toml"), expected(dense, NAV, SIG, udfs=("sum",)))


# ---- bad input -------------------------------------------------------------

def sum_fails(fails, p):
    return fails("run", "sum,sumsig", p, "-o", str(p.parent / "out") + "/")


def test_indptr_not_monotonic(fails, tmp_path):
    p, _ = make(tmp_path, "<u2", "<i4", "<i4")
    ip = np.fromfile(tmp_path / "d.indptr", "<i4")
    ip[10], ip[11] = ip[11] + 1, ip[10]
    ip.tofile(tmp_path / "d.indptr")
    msg = sum_fails(fails, p)
    assert "d.indptr" in msg and "not monotonic" in msg and "indptr[11]" in msg


@pytest.mark.parametrize("bad", [72, 1000, -1])
def test_indices_out_of_range(fails, tmp_path, bad):
    p, _ = make(tmp_path, "<u2", "<i4", "<i4")
    idx = np.fromfile(tmp_path / "d.indices", "<i4")
    idx[17] = bad
    idx.tofile(tmp_path / "d.indices")
    msg = sum_fails(fails, p)
    assert "d.indices" in msg and "indices[17]" in msg and str(bad) in msg and "72" in msg


def test_indices_out_of_range_mixed_run(fails, tmp_path):
    p, _ = make(tmp_path, "<u2", "<i4", "<i4")
    idx = np.fromfile(tmp_path / "d.indices", "<i4")
    idx[-1] = 99
    idx.tofile(tmp_path / "d.indices")
    msg = fails("run", "stddev", p, "-o", str(tmp_path / "o") + "/")
    assert "d.indices" in msg and "99" in msg


def test_indptr_beyond_data(fails, tmp_path):
    p, _ = make(tmp_path, "<u2", "<i4", "<i4")
    ip = np.fromfile(tmp_path / "d.indptr", "<i4")
    ip[-1] += 5
    ip.tofile(tmp_path / "d.indptr")
    msg = fails("info", p)
    assert "d.indptr" in msg and "indptr[42]" in msg and "d.data" in msg


def test_indptr_middle_beyond_data(fails, tmp_path):
    p, _ = make(tmp_path, "<u2", "<i4", "<i4")
    ip = np.fromfile(tmp_path / "d.indptr", "<i4")
    ip[20] = 10**6
    ip.tofile(tmp_path / "d.indptr")
    msg = sum_fails(fails, p)
    assert "d.indptr" in msg and "indptr[20]" in msg and "out of range" in msg


def test_data_shorter_than_indices(fails, tmp_path):
    p, _ = make(tmp_path, "<u2", "<i4", "<i4")
    val = np.fromfile(tmp_path / "d.data", "<u2")
    val[:-3].tofile(tmp_path / "d.data")
    msg = fails("info", p)
    assert "d.indices" in msg and "d.data" in msg and "values" in msg


@pytest.mark.parametrize("which,itemsize", [("indptr", 4), ("indices", 4), ("data", 2)])
def test_truncated_mid_element(fails, tmp_path, which, itemsize):
    p, _ = make(tmp_path, "<u2", "<i4", "<i4")
    f = tmp_path / f"d.{which}"
    raw = f.read_bytes()
    f.write_bytes(raw[:-1])
    msg = fails("info", p)
    assert f"d.{which}" in msg and "not a whole number" in msg


def test_indptr_too_short(fails, tmp_path):
    p, _ = make(tmp_path)
    np.zeros(1, "<i4").tofile(tmp_path / "d.indptr")
    msg = fails("info", p)
    assert "d.indptr" in msg and "1 entries" in msg


def test_nav_shape_larger_than_file(fails, tmp_path):
    p, _ = make(tmp_path)
    msg = fails("info", p, "--set", "nav_shape=7,7")
    assert "49 frames" in msg and "42" in msg


def test_missing_file(fails, tmp_path):
    p, _ = make(tmp_path)
    (tmp_path / "d.data").unlink()
    msg = fails("info", p)
    assert str(p) in msg and "data_file" in msg and "d.data" in msg


@pytest.mark.parametrize("edit,words", [
    (lambda t: t.replace('filetype = "raw_csr"', 'filetype = "hdf5"'),
     ['filetype is "hdf5"', 'expected "raw_csr"']),
    (lambda t: t.replace('indices_dtype = "<i4"', 'indices_dtype = "<f4"'),
     ["indices_dtype", "<f4", "integer"]),
    (lambda t: t.replace('data_dtype = "<u2"', 'data_dtype = "<c8"'),
     ["data_dtype", "<c8"]),
    (lambda t: t.replace('indptr_file = "d.indptr"\n', ''), ["[raw_csr] indptr_file is missing"]),
    (lambda t: t.replace("nav_shape = [6, 7]", "nav_shape = [6, 0]"),
     ["line 4", "nav_shape[1]", "positive"]),
    (lambda t: t.replace("nav_shape = [6, 7]", 'nav_shape = "6,7"'),
     ["line 4", "nav_shape", "array"]),
    (lambda t: t.replace("sig_shape = [9, 8]", "sig_shape = [9, 8"),
     ["not valid TOML", "line"]),
    (lambda t: t.replace('data_file = "d.data"', 'data_file = "d.data'),
     ["not valid TOML", "line 12", "unterminated string"]),
    (lambda t: t + 'data_file = "other"\n', ["not valid TOML", "defined twice"]),
    (lambda t: t.replace("[raw_csr]", "[[raw_csr]]"), ["not valid TOML", "arrays of tables"]),
    (lambda t: t.replace('data_dtype = "<u2"', 'data_dtype = 2'),
     ["line 13", "data_dtype must be a string"]),
])
def test_bad_toml(fails, tmp_path, edit, words):
    p, _ = make(tmp_path)
    p.write_text(edit(p.read_text()))
    msg = fails("info", p, "--format", "raw_csr")
    assert str(p) in msg
    for w in words:
        assert w in msg, msg


def test_toml_parsed_like_python(tmp_path):
    """The TOML files written here are valid TOML (tomllib, Python's reader) with the keys
    LiberTEM's reader looks up."""
    import tomllib
    p, _ = make(tmp_path)
    conf = tomllib.loads(p.read_text())
    ft = conf["params"]["filetype"]
    assert ft.lower() == "raw_csr"
    assert set(conf[ft]) == {"indptr_file", "indptr_dtype", "indices_file", "indices_dtype",
                             "data_file", "data_dtype"}
    assert conf["params"]["nav_shape"] == list(NAV)


def test_probe_does_not_claim_other_toml(fails, tmp_path):
    p = tmp_path / "other.toml"
    p.write_text('[tool]\nname = "x"\n')
    msg = fails("info", p)
    assert str(p) in msg


@pytest.mark.parametrize("backend", ["pread", "mmap", "direct", "uring"])
def test_io_backends(run_udfs, tmp_path, backend):
    """The three arrays are read through the engine's I/O backends (tsr__io_fetch)."""
    p, dense = make(tmp_path, "<i2", "<i8", "<i4")
    for udfs in ("sum,sumsig", "sum,stddev"):
        r = run_udfs(udfs, p, "--io-backend", backend, "--threads", "2")
        check(r, expected(dense, NAV, SIG, udfs=tuple(udfs.split(","))))


def count_events_oracle(frames, threshold):
    """Events of the `count` UDF's definition (src/udf/builtin/count.c) without an X-ray
    cut-off: y = x where x > threshold, else 0; an event where y > 0 is a local maximum
    (strictly above the neighbours before it in raster order, at least the ones after)."""
    n, h, w = frames.shape
    y = np.where(frames > threshold, frames.astype(np.int64), 0)
    pad = np.full((n, h + 2, w + 2), -1, np.int64)
    pad[:, 1:-1, 1:-1] = y
    ev = y > 0
    for dy, dx, strict in [(-1, -1, 1), (-1, 0, 1), (-1, 1, 1), (0, -1, 1),
                           (0, 1, 0), (1, -1, 0), (1, 0, 0), (1, 1, 0)]:
        q = pad[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w]
        ev &= (y > q) if strict else (y >= q)
    return ev


def test_reads_what_count_writes(run_udfs, tmp_path):
    """The `count` UDF writes raw_csr datasets; this reader opens them: the events it
    reads back are those of the count definition, on the sparse and the dense path."""
    rng = np.random.default_rng(14)
    data = (rng.poisson(0.3, NAV + SIG) * 60 + rng.integers(0, 5, NAV + SIG)).astype(np.uint16)
    src = tmp_path / "frames.npy"
    np.save(src, data)
    out = tmp_path / "ev.toml"
    res = run_udfs("count", src, "--param", "threshold=30", "--param", f"output={out}")
    ev = count_events_oracle(data.reshape((-1,) + SIG), 30).reshape(NAV + SIG)
    assert np.array_equal(res["count.events"], ev.sum(axis=(2, 3)))
    dense = ev.astype(np.uint8)
    check(run_udfs("sum,sumsig", out), expected(dense, NAV, SIG, udfs=("sum", "sumsig")))
    check(run_udfs("sum,stddev", out), expected(dense, NAV, SIG, udfs=("sum", "stddev")))
