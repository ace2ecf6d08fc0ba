"""Bad input: a non-zero exit (never a crash), exactly one line on stderr,
and that line names the problem."""

import os

import numpy as np
import pytest

NAV = (6, 7)
SIG = (7, 11)
FRAME = SIG[0] * SIG[1] * 2  # bytes of a <u2 frame


def raw_args(nav=NAV, sig=SIG, dtype="<u2"):
    return ["--format", "raw", "--set", "nav_shape=" + ",".join(map(str, nav)),
            "--set", "sig_shape=" + ",".join(map(str, sig)), "--set", f"dtype={dtype}"]


def mentions(line, *words):
    low = line.lower()
    assert any(w.lower() in low for w in words), \
        f"the error should mention one of {words}: {line!r}"


@pytest.fixture
def raw_file(tmp_path):
    rng = np.random.default_rng(61)
    a = rng.integers(0, 1000, size=NAV + SIG, dtype="<u2")
    path = tmp_path / "ok.raw"
    a.tofile(path)
    return path


def test_raw_too_small_for_nav(fails, raw_file):
    # 6x7 frames in the file, 7x7 asked for
    line = fails("run", "sum", raw_file, *raw_args(nav=(7, 7)), "-o", f"{raw_file}.out/")
    mentions(line, "truncat", "too small", "short", "larger than", "frames", "size", "bytes")


def test_raw_truncated_mid_frame(fails, tmp_path, raw_file):
    path = tmp_path / "cut.raw"
    path.write_bytes(raw_file.read_bytes()[:-FRAME // 2])
    line = fails("run", "sum", path, *raw_args(), "-o", f"{tmp_path}/o/")
    mentions(line, "truncat", "too small", "short", "larger than", "frames", "size", "bytes")
    assert "cut.raw" in line, line


@pytest.mark.parametrize("dtype", ["<q7", "u3", "float16x", ""])
def test_unknown_dtype(fails, raw_file, tmp_path, dtype):
    args = raw_args()
    args[-1] = f"dtype={dtype}"
    line = fails("run", "sum", raw_file, *args, "-o", f"{tmp_path}/o/")
    mentions(line, "dtype")


@pytest.mark.parametrize("offset", [42, -42, 1000, "x"])
def test_sync_offset_out_of_range(fails, raw_file, tmp_path, offset):
    line = fails("run", "sum", raw_file, *raw_args(), "--set", f"sync_offset={offset}",
                 "-o", f"{tmp_path}/o/")
    mentions(line, "sync_offset")


def test_nonexistent_path(fails, tmp_path):
    path = tmp_path / "does-not-exist.raw"
    line = fails("run", "sum", path, *raw_args(), "-o", f"{tmp_path}/o/")
    mentions(line, "does-not-exist.raw")
    mentions(line, "no such", "not found", "exist", "cannot open")


def test_nonexistent_npy_autodetect(fails, tmp_path):
    line = fails("run", "sum", tmp_path / "nothing.npy", "-o", f"{tmp_path}/o/")
    mentions(line, "nothing.npy")


def test_directory_as_path(fails, tmp_path):
    line = fails("run", "sum", tmp_path, *raw_args(), "-o", f"{tmp_path}/o/")
    mentions(line, str(tmp_path.name), "directory")


@pytest.mark.parametrize("kind", ["symlink-loop", "not-a-directory"])
def test_unreadable_path(fails, tmp_path, raw_file, kind):
    # Paths that no one can open, root included (file modes do not stop root).
    if kind == "symlink-loop":
        path = tmp_path / "loop"
        os.symlink(path, path)
    else:
        path = f"{raw_file}/frames.raw"
    line = fails("run", "sum", str(path), *raw_args(), "-o", f"{tmp_path}/o/")
    mentions(line, "cannot", str(path))


@pytest.mark.parametrize("shape", [(7, 10), (11, 7), (2, 7, 10), (77,)])
def test_mask_wrong_shape(fails, raw_file, tmp_path, shape):
    path = tmp_path / "mask.npy"
    np.save(path, np.ones(shape, np.float32))
    line = fails("run", "masks", raw_file, *raw_args(), "--param", f"mask={path}",
                 "-o", f"{tmp_path}/o/")
    mentions(line, "mask", "shape")


@pytest.mark.parametrize("mask", ["disk:1,2", "ring:1,2,3", "blob:1,2,3", "disk:a,b,c", ""])
def test_bad_mask_generator(fails, raw_file, tmp_path, mask):
    line = fails("run", "masks", raw_file, *raw_args(), "--param", f"mask={mask}",
                 "-o", f"{tmp_path}/o/")
    mentions(line, "mask")


def test_masks_without_mask(fails, raw_file, tmp_path):
    line = fails("run", "masks", raw_file, *raw_args(), "-o", f"{tmp_path}/o/")
    mentions(line, "mask")


def test_fortran_npy(fails, tmp_path):
    path = tmp_path / "f.npy"
    a = np.asfortranarray(np.arange(np.prod(NAV + SIG), dtype="<u2").reshape(NAV + SIG))
    np.save(path, a)
    line = fails("run", "sum", path, "-o", f"{tmp_path}/o/")
    mentions(line, "fortran")


@pytest.mark.parametrize("cut", [1, FRAME, 500])
def test_truncated_npy(fails, tmp_path, cut):
    path = tmp_path / "t.npy"
    np.save(path, np.ones(NAV + SIG, "<u2"))
    data = path.read_bytes()
    path.write_bytes(data[:-cut])
    line = fails("run", "sum", path, "-o", f"{tmp_path}/o/")
    mentions(line, "truncat", "too small", "short", "size", "bytes", "expected")
    mentions(line, "t.npy")


def test_npy_bad_header(fails, tmp_path):
    path = tmp_path / "h.npy"
    path.write_bytes(b"\x93NUMPY\x01\x00\x20\x00{'descr': '<u2', 'fortran_order': Fal")
    line = fails("run", "sum", path, "--format", "npy", "-o", f"{tmp_path}/o/")
    mentions(line, "h.npy")


def test_unknown_udf(fails, raw_file, tmp_path):
    line = fails("run", "sum,nosuchudf", raw_file, *raw_args(), "-o", f"{tmp_path}/o/")
    mentions(line, "nosuchudf")


def test_unknown_format(fails, raw_file, tmp_path):
    line = fails("run", "sum", raw_file, "--format", "nosuchformat", "-o", f"{tmp_path}/o/")
    mentions(line, "nosuchformat")


@pytest.mark.parametrize("roi", ["rect:1,2", "disk:1,2,x", "ellipse:1,2,3", "rect:100,100,2,2"])
def test_bad_roi(fails, raw_file, tmp_path, roi):
    line = fails("run", "sum", raw_file, *raw_args(), "--roi", roi, "-o", f"{tmp_path}/o/")
    mentions(line, "roi")


def test_roi_file_wrong_shape(fails, raw_file, tmp_path):
    path = tmp_path / "roi.npy"
    np.save(path, np.ones((7, 6), bool))
    line = fails("run", "sum", raw_file, *raw_args(), "--roi", path, "-o", f"{tmp_path}/o/")
    mentions(line, "roi", "shape")


@pytest.mark.parametrize("what", ["dark", "gain", "exclude"])
def test_correction_wrong_shape(fails, raw_file, tmp_path, what):
    path = tmp_path / f"{what}.npy"
    np.save(path, np.ones((7, 12), np.float32))
    line = fails("run", "sum", raw_file, *raw_args(), f"--{what}", path, "-o", f"{tmp_path}/o/")
    mentions(line, what)


@pytest.mark.parametrize("args", [["--threads", "-2"], ["--threads", "x"],
                                  ["--executor", "warp"], ["--partitions", "-1"]])
def test_bad_execution_options(fails, raw_file, tmp_path, args):
    line = fails("run", "sum", raw_file, *raw_args(), *args, "-o", f"{tmp_path}/o/")
    mentions(line, args[0].lstrip("-"))


def test_pick_outside_scan(fails, raw_file, tmp_path):
    line = fails("run", "pick", raw_file, *raw_args(), "--param", "nav=6,0",
                 "-o", f"{tmp_path}/o/")
    mentions(line, "nav", "pick", "range", "outside")
