"""Golden-style tests of the `tessera` command line.

Each test runs the binary named by $TSR_BIN on small data written by numpy
into tmp_path and checks the exit code, the exact shape of the error output
(one line "tessera: ..." on stderr) and, for runs, the written results
against numpy's answer on the same data.  numpy is the oracle; the CLI's own
earlier output never is.

Run: TSR_BIN=/path/to/tessera /usr/bin/python3 -m pytest tests/cli
"""

import json
import os
import subprocess

import numpy as np
import pytest

TSR_BIN = os.environ.get("TSR_BIN")
TSR_BIN = os.path.abspath(TSR_BIN) if TSR_BIN else TSR_BIN

if not TSR_BIN or not os.access(TSR_BIN, os.X_OK):
    raise RuntimeError("set TSR_BIN to the path of the tessera binary")

NAV = (4, 5)
SIG = (8, 8)


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

def tessera(*args, timeout=60):
    """Run tessera with args (stdout/stderr piped, so never a terminal)."""
    return subprocess.run([TSR_BIN, *map(str, args)], capture_output=True,
                          text=True, timeout=timeout)


def assert_one_error_line(p, code):
    """Exit status code and exactly one 'tessera: ...' line on stderr."""
    assert p.returncode == code, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("tessera: "), p.stderr
    assert p.stderr.endswith("\n")
    return lines[0]


def assert_ok(p):
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    return p


def wrote(p):
    """The paths of the 'wrote PATH' lines on stdout."""
    out = []
    for line in p.stdout.splitlines():
        assert line.startswith("wrote "), p.stdout
        out.append(line[len("wrote "):])
    return out


def make_data(dtype="<u2", nav=NAV, sig=SIG):
    """Deterministic frames with no zero pixel (so 0 means 'not written')."""
    n = int(np.prod(nav)) * int(np.prod(sig))
    rng = np.random.default_rng(1234)
    data = rng.integers(1, 200, size=n).astype(dtype)
    return data.reshape(nav + sig)


@pytest.fixture
def npy4d(tmp_path):
    data = make_data()
    path = tmp_path / "data.npy"
    np.save(path, data)
    return path, data


def load_single(outdir, udf):
    """The one <udf>.*.npy file in outdir."""
    files = sorted(outdir.glob(f"{udf}.*.npy"))
    assert len(files) >= 1, list(outdir.iterdir())
    return {f.name[len(udf) + 1:-4]: np.load(f) for f in files}


# ---------------------------------------------------------------------------
# usage, version, help
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["--frobnicate"],
    ["list", "nonsense"],
    ["list", "--bogus"],
    ["info"],
    ["info", "a.npy", "b.npy"],
    ["info", "a.npy", "--set", "nav_shape"],
    ["info", "a.npy", "--format"],
    ["run"],
    ["run", "sum"],
    ["run", "sum", "x.npy"],                              # no -o
    ["run", "sum", "x.npy", "-o", "out.txt"],             # unknown output type
    ["run", "nosuchudf", "x.npy", "-o", "out/"],
    ["run", "sum,", "x.npy", "-o", "out/"],
    ["run", "sum", "x.npy", "--threads", "many", "-o", "out/"],
    ["run", "sum", "x.npy", "--threads", "-1", "-o", "out/"],
    ["run", "sum", "x.npy", "--executor", "gpu", "-o", "out/"],
    ["run", "sum", "x.npy", "--io-backend", "tape", "-o", "out/"],
    ["run", "sum", "x.npy", "--roi", "rect:1,2,3", "-o", "out/"],
    ["run", "sum", "x.npy", "--roi", "disk:1,2", "-o", "out/"],
    ["run", "sum", "x.npy", "--roi", "triangle:1,2,3", "-o", "out/"],
    ["run", "sum", "x.npy", "--param", "noequals", "-o", "out/"],
    ["run", "sum", "x.npy", "--buffer", "x", "-o", "out/"],
    ["run", "sum", "x.npy", "--quiet=yes", "-o", "out/"],
])
def test_usage_errors_exit_2_with_one_line(args, tmp_path):
    p = subprocess.run([TSR_BIN, *args], capture_output=True, text=True,
                       cwd=tmp_path, timeout=30)
    assert_one_error_line(p, 2)
    assert p.stdout == ""


def test_version():
    p = assert_ok(tessera("--version"))
    assert p.stdout.startswith("tessera ")
    assert "0.1" in p.stdout
    assert p.stderr == ""


def test_help():
    p = assert_ok(tessera("--help"))
    for word in ("list", "info", "run"):
        assert word in p.stdout


@pytest.mark.parametrize("cmd,opts", [
    ("list", ["--json"]),
    ("info", ["--format", "--set", "--json"]),
    ("run", ["--format", "--set", "--param", "--roi", "--threads", "--executor",
             "--partitions", "--tile-bytes", "--io-backend", "--buffer",
             "--colormap", "--log", "--dark", "--gain", "--exclude", "--quiet",
             "-o"]),
])
def test_command_help_lists_options(cmd, opts):
    p = assert_ok(tessera(cmd, "--help"))
    assert p.stdout.startswith("usage: tessera " + cmd)
    for o in opts:
        assert o in p.stdout, o


# ---------------------------------------------------------------------------
# runtime errors
# ---------------------------------------------------------------------------

def test_info_missing_file_names_path(tmp_path):
    path = tmp_path / "does-not-exist.npy"
    line = assert_one_error_line(tessera("info", path), 1)
    assert str(path) in line


def test_run_missing_file_names_path(tmp_path):
    path = tmp_path / "does-not-exist.npy"
    line = assert_one_error_line(tessera("run", "sum", path, "-o", f"{tmp_path}/o/"), 1)
    assert str(path) in line
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_unknown_format_is_usage_error(npy4d):
    path, _ = npy4d
    line = assert_one_error_line(tessera("info", path, "--format", "nosuch"), 2)
    assert "nosuch" in line


# ---------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------

def list_json(*noun):
    p = assert_ok(tessera("list", *noun, "--json"))
    return json.loads(p.stdout)


def check_entries(entries):
    for e in entries:
        assert isinstance(e["name"], str) and e["name"]
        assert isinstance(e["description"], str)
        for prm in e["params"]:
            assert set(prm) >= {"name", "type", "default", "required", "repeatable", "doc"}
            assert isinstance(prm["name"], str) and prm["name"]
            assert isinstance(prm["type"], str)
            assert prm["default"] is None or isinstance(prm["default"], str)
            assert isinstance(prm["required"], bool)
            assert isinstance(prm["repeatable"], bool)
            assert isinstance(prm["doc"], str)
            if prm["required"]:
                assert prm["default"] is None


def test_list_json_has_registries_and_params():
    doc = list_json()
    assert set(doc) == {"formats", "udfs"}
    check_entries(doc["formats"])
    check_entries(doc["udfs"])
    formats = {f["name"]: f for f in doc["formats"]}
    assert {"raw", "npy"} <= set(formats)
    raw_params = {prm["name"] for prm in formats["raw"]["params"]}
    assert {"nav_shape", "sig_shape", "dtype", "sync_offset"} <= raw_params
    udfs = {u["name"]: u for u in doc["udfs"]}
    assert {"sum", "sumsig", "stddev", "pick", "masks"} <= set(udfs)
    assert udfs["pick"]["params"], "pick needs its coordinates as parameters"
    masks = {prm["name"]: prm for prm in udfs["masks"]["params"]}
    assert "mask" in masks and masks["mask"]["repeatable"]


@pytest.mark.parametrize("noun", ["formats", "udfs"])
def test_list_json_one_noun(noun):
    doc = list_json(noun)
    assert list(doc) == [noun]


def test_list_human_mentions_everything():
    p = assert_ok(tessera("list"))
    doc = list_json()
    for section in ("formats", "udfs"):
        for e in doc[section]:
            assert e["name"] in p.stdout
            for prm in e["params"]:
                assert prm["name"] in p.stdout


# ---------------------------------------------------------------------------
# info
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["<u2", ">u2", "|u1", "<f4", ">i4", "<f8"])
def test_info_json_matches_numpy(tmp_path, dtype):
    data = make_data(dtype)
    path = tmp_path / "d.npy"
    np.save(path, data)
    p = assert_ok(tessera("info", path, "--json"))
    info = json.loads(p.stdout)
    dt = np.dtype(dtype)
    assert info["format"] == "npy"
    assert info["nav_shape"] == list(NAV)
    assert info["sig_shape"] == list(SIG)
    assert info["dtype"] == dt.name
    assert info["byteorder"] == ("|" if dt.itemsize == 1 else dtype[0])
    assert np.dtype(info["typestr"]) == dt
    assert info["image_count"] == int(np.prod(NAV))
    assert isinstance(info["meta"], dict)


def test_info_raw_with_set(tmp_path):
    data = make_data(">u2")
    path = tmp_path / "d.raw"
    data.tofile(path)
    p = assert_ok(tessera("info", path, "--format", "raw", "--set", "nav_shape=4,5",
                          "--set", "sig_shape=8,8", "--set", "dtype=>u2", "--json"))
    info = json.loads(p.stdout)
    assert info["format"] == "raw"
    assert info["nav_shape"] == [4, 5] and info["sig_shape"] == [8, 8]
    assert info["dtype"] == "uint16" and info["byteorder"] == ">"


def test_info_human(npy4d):
    path, _ = npy4d
    p = assert_ok(tessera("info", path))
    assert "npy" in p.stdout and "uint16" in p.stdout and "(4, 5)" in p.stdout


# ---------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------

def test_run_sum_to_directory(npy4d, tmp_path):
    path, data = npy4d
    out = tmp_path / "out"
    p = assert_ok(tessera("run", "sum", path, "-o", f"{out}/"))
    assert p.stderr == ""  # piped: no progress bar
    files = wrote(p)
    assert files and all(os.path.exists(f) for f in files)
    res = load_single(out, "sum")
    assert len(res) == 1
    (got,) = res.values()
    assert got.shape == SIG
    np.testing.assert_array_equal(got, data.sum(axis=(0, 1), dtype=np.float64))


def test_run_into_existing_directory_without_slash(npy4d, tmp_path):
    path, data = npy4d
    out = tmp_path / "existing"
    out.mkdir()
    assert_ok(tessera("run", "sum", path, "-o", out))
    (got,) = load_single(out, "sum").values()
    np.testing.assert_array_equal(got, data.sum(axis=(0, 1), dtype=np.float64))


def test_run_raw_big_endian(tmp_path):
    data = make_data(">u2")
    path = tmp_path / "d.raw"
    data.tofile(path)
    out = tmp_path / "out"
    assert_ok(tessera("run", "sum", path, "--format", "raw", "--set", "nav_shape=4,5",
                      "--set", "sig_shape=8,8", "--set", "dtype=>u2", "-o", f"{out}/"))
    (got,) = load_single(out, "sum").values()
    np.testing.assert_array_equal(got, data.astype(np.float64).sum(axis=(0, 1)))


@pytest.mark.parametrize("opts", [
    ["--executor", "inline"],
    ["--threads", "3", "--partitions", "4"],
    ["--tile-bytes", "1k", "--io-backend", "pread"],
    ["--io-backend", "mmap", "--partitions", "20"],
])
def test_run_execution_options_same_answer(npy4d, tmp_path, opts):
    path, data = npy4d
    out = tmp_path / "sum.npy"
    p = assert_ok(tessera("run", "sum", path, *opts, "-o", out))
    assert wrote(p) == [str(out)]
    np.testing.assert_array_equal(np.load(out), data.sum(axis=(0, 1), dtype=np.float64))


def test_run_progress_bar_only_on_a_terminal(npy4d, tmp_path):
    """stderr on a pty gets a bar that is erased at the end; piped gets none."""
    import pty
    path, _ = npy4d
    master, slave = pty.openpty()
    try:
        p = subprocess.run([TSR_BIN, "run", "sum", str(path), "-o", str(tmp_path / "s.npy")],
                           stdout=subprocess.PIPE, stderr=slave, text=True, timeout=60)
        os.close(slave)
        slave = -1
        chunks = []
        while True:
            try:
                b = os.read(master, 4096)
            except OSError:  # EIO once the writer is gone (Linux)
                break
            if not b:
                break
            chunks.append(b)
    finally:
        if slave >= 0:
            os.close(slave)
        os.close(master)
    err = b"".join(chunks).decode()
    assert p.returncode == 0, err
    assert "frames" in err and "[" in err and "%" in err
    assert err.endswith("\r\x1b[K"), repr(err)
    assert wrote(p) == [str(tmp_path / "s.npy")]


def test_run_quiet_prints_nothing(npy4d, tmp_path):
    path, _ = npy4d
    p = assert_ok(tessera("run", "sum", path, "--quiet", "-o", tmp_path / "s.npy"))
    assert p.stdout == "" and p.stderr == ""
    assert (tmp_path / "s.npy").exists()


def test_run_several_buffers_need_buffer_option(npy4d, tmp_path):
    path, _ = npy4d
    out = tmp_path / "x.npy"
    line = assert_one_error_line(tessera("run", "stddev", path, "-o", out), 2)
    assert "--buffer" in line and "std" in line
    assert not out.exists()


@pytest.mark.parametrize("name", ["std", "stddev.std"])
def test_run_buffer_selection(npy4d, tmp_path, name):
    path, data = npy4d
    out = tmp_path / "std.npy"
    p = assert_ok(tessera("run", "stddev", path, "--buffer", name, "-o", out))
    assert wrote(p) == [str(out)]
    want = data.astype(np.float64).std(axis=(0, 1))
    np.testing.assert_allclose(np.load(out), want, rtol=1e-5)


def test_run_unknown_buffer(npy4d, tmp_path):
    path, _ = npy4d
    line = assert_one_error_line(
        tessera("run", "stddev", path, "--buffer", "nosuch", "-o", tmp_path / "x.npy"), 2)
    assert "nosuch" in line


def test_run_two_udfs_to_directory(npy4d, tmp_path):
    path, data = npy4d
    out = tmp_path / "out"
    p = assert_ok(tessera("run", "sum,sumsig", path, "-o", f"{out}/"))
    files = wrote(p)
    assert any(os.path.basename(f).startswith("sum.") for f in files)
    assert any(os.path.basename(f).startswith("sumsig.") for f in files)
    (ssum,) = load_single(out, "sumsig").values()
    np.testing.assert_array_equal(ssum.reshape(NAV), data.sum(axis=(2, 3), dtype=np.float64))


def test_run_bad_param_name(npy4d, tmp_path):
    path, _ = npy4d
    line = assert_one_error_line(
        tessera("run", "sum", path, "--param", "nonexistent=1", "-o", f"{tmp_path}/o/"), 2)
    assert "nonexistent" in line


def test_run_bad_qualified_param_name(npy4d, tmp_path):
    path, _ = npy4d
    line = assert_one_error_line(
        tessera("run", "sum,masks", path, "--param", "sum.mask=rect:0,0,2,2",
                "-o", f"{tmp_path}/o/"), 2)
    assert "mask" in line


def test_run_param_routed_to_udf_that_has_it(npy4d, tmp_path):
    """'mask' goes to masks only; sum, which has no such parameter, runs too."""
    path, data = npy4d
    out = tmp_path / "o"
    assert_ok(tessera("run", "sum,masks", path, "--param", "mask=rect:1,2,3,4",
                      "-o", f"{out}/"))
    (got,) = load_single(out, "masks").values()
    # rect:x,y,w,h covers rows y..y+h-1 and columns x..x+w-1 of each frame.
    want = data[:, :, 2:6, 1:4].astype(np.float64).sum(axis=(2, 3))
    np.testing.assert_allclose(got.reshape(-1), want.reshape(-1), rtol=1e-6)


def roi_check(result, mask, want):
    """Values at selected positions equal want; others are NaN or 0."""
    result = result.reshape(mask.shape)
    np.testing.assert_allclose(result[mask], want[mask], rtol=1e-6)
    if np.issubdtype(result.dtype, np.floating):
        np.testing.assert_array_equal(np.isnan(result), ~mask)
    else:
        np.testing.assert_array_equal(result != 0, mask)


def test_run_roi_rect(npy4d, tmp_path):
    path, data = npy4d
    out = tmp_path / "sumsig.npy"
    assert_ok(tessera("run", "sumsig", path, "--roi", "rect:1,2,2,3", "-o", out))
    mask = np.zeros(NAV, bool)
    mask[1:3, 2:5] = True
    roi_check(np.load(out), mask, data.sum(axis=(2, 3), dtype=np.float64))


def test_run_roi_rect_clipped_and_sum(npy4d, tmp_path):
    path, data = npy4d
    out = tmp_path / "sum.npy"
    assert_ok(tessera("run", "sum", path, "--roi", "rect:-1,3,3,10", "-o", out))
    mask = np.zeros(NAV, bool)
    mask[0:2, 3:5] = True
    np.testing.assert_array_equal(np.load(out), data[mask].sum(axis=0, dtype=np.float64))


def test_run_roi_disk(npy4d, tmp_path):
    path, data = npy4d
    out = tmp_path / "sumsig.npy"
    assert_ok(tessera("run", "sumsig", path, "--roi", "disk:1.5,2,1.2", "-o", out))
    yy, xx = np.mgrid[0:NAV[0], 0:NAV[1]]
    mask = (yy - 1.5) ** 2 + (xx - 2) ** 2 <= 1.2 ** 2
    roi_check(np.load(out), mask, data.sum(axis=(2, 3), dtype=np.float64))


@pytest.mark.parametrize("mdtype", ["bool", "<u1", ">i4"])
def test_run_roi_file(npy4d, tmp_path, mdtype):
    path, data = npy4d
    mask = np.zeros(NAV, bool)
    mask[0, 0] = mask[3, 4] = mask[2, 1] = True
    mpath = tmp_path / "roi.npy"
    np.save(mpath, mask.astype(mdtype))
    out = tmp_path / "sumsig.npy"
    assert_ok(tessera("run", "sumsig", path, "--roi", mpath, "-o", out))
    roi_check(np.load(out), mask, data.sum(axis=(2, 3), dtype=np.float64))


def test_run_roi_valid_mask_in_hdf5(npy4d, tmp_path):
    import h5py
    path, data = npy4d
    out = tmp_path / "r.h5"
    p = assert_ok(tessera("run", "sumsig", path, "--roi", "rect:0,1,3,2", "-o", out))
    assert wrote(p) == [str(out)]
    mask = np.zeros(NAV, bool)
    mask[0:3, 1:3] = True
    with h5py.File(out, "r") as f:
        names = list(f["sumsig"])
        buf = next(n for n in names if not n.endswith("_valid"))
        valid = np.asarray(f["sumsig"][buf + "_valid"]).astype(bool)
        np.testing.assert_array_equal(valid.reshape(NAV), mask)
        roi_check(np.asarray(f["sumsig"][buf]), mask, data.sum(axis=(2, 3), dtype=np.float64))


def test_run_roi_rect_needs_2d_nav(tmp_path):
    data = make_data(nav=(20,))
    path = tmp_path / "d3.npy"
    np.save(path, data)
    line = assert_one_error_line(
        tessera("run", "sum", path, "--roi", "rect:0,0,1,1", "-o", tmp_path / "x.npy"), 2)
    assert "2-D" in line


def test_run_roi_selecting_nothing(npy4d, tmp_path):
    path, _ = npy4d
    assert_one_error_line(
        tessera("run", "sum", path, "--roi", "rect:10,10,2,2", "-o", tmp_path / "x.npy"), 2)


def test_run_roi_file_wrong_shape(npy4d, tmp_path):
    path, _ = npy4d
    mpath = tmp_path / "roi.npy"
    np.save(mpath, np.ones((5, 4), bool))
    line = assert_one_error_line(
        tessera("run", "sum", path, "--roi", mpath, "-o", tmp_path / "x.npy"), 1)
    assert "(4, 5)" in line and "(5, 4)" in line


def test_run_roi_file_fortran_order_rejected(npy4d, tmp_path):
    path, _ = npy4d
    mpath = tmp_path / "roi.npy"
    np.save(mpath, np.asfortranarray(np.ones(NAV, bool)))
    line = assert_one_error_line(
        tessera("run", "sum", path, "--roi", mpath, "-o", tmp_path / "x.npy"), 1)
    assert "Fortran" in line


def test_run_dark_and_gain(npy4d, tmp_path):
    path, data = npy4d
    rng = np.random.default_rng(7)
    dark = rng.uniform(0, 5, SIG).astype(">f8")   # converted to float32 by the CLI
    gain = rng.uniform(0.5, 1.5, SIG).astype("<f4")
    np.save(tmp_path / "dark.npy", dark)
    np.save(tmp_path / "gain.npy", gain)
    out = tmp_path / "sum.npy"
    assert_ok(tessera("run", "sum", path, "--dark", tmp_path / "dark.npy",
                      "--gain", tmp_path / "gain.npy", "-o", out))
    frames = (data.astype(np.float32) - dark.astype(np.float32)) * gain
    np.testing.assert_allclose(np.load(out), frames.astype(np.float64).sum(axis=(0, 1)),
                               rtol=1e-5)


def test_run_exclude_patches_pixel(npy4d, tmp_path):
    """An excluded interior pixel becomes the mean of its 8 neighbours."""
    path, data = npy4d
    ex = np.zeros(SIG, np.uint8)
    ex[3, 4] = 1
    np.save(tmp_path / "ex.npy", ex)
    out = tmp_path / "sum.npy"
    assert_ok(tessera("run", "sum", path, "--exclude", tmp_path / "ex.npy", "-o", out))
    frames = data.astype(np.float64)
    hood = frames[:, :, 2:5, 3:6]
    frames[:, :, 3, 4] = (hood.sum(axis=(2, 3)) - frames[:, :, 3, 4]) / 8
    np.testing.assert_allclose(np.load(out), frames.sum(axis=(0, 1)), rtol=1e-5)


def test_run_dark_wrong_shape(npy4d, tmp_path):
    path, _ = npy4d
    np.save(tmp_path / "dark.npy", np.zeros((3, 3), np.float32))
    line = assert_one_error_line(
        tessera("run", "sum", path, "--dark", tmp_path / "dark.npy", "-o", tmp_path / "x.npy"),
        1)
    assert "(8, 8)" in line and "(3, 3)" in line


def test_run_exclude_wrong_shape(npy4d, tmp_path):
    path, _ = npy4d
    np.save(tmp_path / "ex.npy", np.zeros((8,), bool))
    line = assert_one_error_line(
        tessera("run", "sum", path, "--exclude", tmp_path / "ex.npy", "-o", tmp_path / "x.npy"),
        1)
    assert "(8, 8)" in line and "(8,)" in line


def test_run_truncated_correction_file(npy4d, tmp_path):
    path, _ = npy4d
    np.save(tmp_path / "gain.npy", np.ones(SIG, np.float32))
    raw = (tmp_path / "gain.npy").read_bytes()
    (tmp_path / "gain.npy").write_bytes(raw[:-10])
    line = assert_one_error_line(
        tessera("run", "sum", path, "--gain", tmp_path / "gain.npy", "-o", tmp_path / "x.npy"),
        1)
    assert "gain.npy" in line


def test_info_shows_calibrations_of_the_file():
    """`tessera info` prints the signal calibration a DM4 file holds, as
    HyperSpy reads it (scale and units of each signal axis)."""
    import hyperspy.api as hs
    path = os.path.join(os.environ["TSR_TESTDATA"], "dm4",
                        "dmTest_float32_nonSquare_diffPixelSize.dm4")
    s = hs.load(path)
    p = tessera("info", path)
    assert_ok(p)
    line = [ln for ln in p.stdout.splitlines() if ln.startswith("sig_calib")]
    assert len(line) == 1, p.stdout
    axes = s.axes_manager.signal_axes[::-1]  # numpy order: y, x
    want = "  ".join(f"{ax.name}: {ax.scale:g} {ax.units}/px" for ax in axes)
    assert line[0].split(None, 1)[1] == want
