"""Every I/O backend (pread, mmap, O_DIRECT, io_uring with read-ahead, auto)
gives numpy's answer: whole-frame tiles, row bands (tiny tiles), a ROI with
gaps, sync offsets and big-endian data, on raw and npy files."""

import pytest

from oracle import check, expected

NAV = (5, 9)
SIG = (16, 24)
MASKS = ["disk:11,7,5"]
UDFS = ["sum", "sumsig", "stddev", "masks"]
BACKENDS = ["auto", "pread", "mmap", "direct", "uring"]


def masks_args():
    return [a for m in MASKS for a in ("--param", f"mask={m}")]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("fmt,dtype", [("raw", "<u2"), ("raw", ">f4"), ("npy", "<u2")])
@pytest.mark.parametrize("tile", ["default", "256"])
def test_backend(make_data, run_udfs, backend, fmt, dtype, tile):
    d = make_data(fmt, dtype, NAV, SIG, seed=77)
    extra = [] if tile == "default" else ["--tile-bytes", tile]
    res = run_udfs(",".join(UDFS), d.path, *d.args, *masks_args(), "--io-backend", backend,
                   "--threads", 2, "--partitions", 3, *extra)
    check(res, expected(d.array, NAV, SIG, UDFS, masks=MASKS),
          f"{backend} {fmt} {dtype} tile={tile}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_roi_and_sync_offset(make_data, run_udfs, backend, tmp_path):
    import numpy as np
    d = make_data("raw", "<u2", NAV, SIG, seed=78)
    roi = np.zeros(NAV, bool)
    roi[1:4, 2:7] = True
    roi[2, 4] = False
    np.save(tmp_path / "roi.npy", roi)
    res = run_udfs("sum,sumsig", d.path, *d.args, "--set", "sync_offset=3",
                   "--roi", tmp_path / "roi.npy", "--io-backend", backend, "--threads", 2)
    flat = d.array.reshape(-1, *SIG)
    shifted = np.zeros_like(flat)
    shifted[:-3] = flat[3:]
    check(res, expected(shifted.reshape(*NAV, *SIG), NAV, SIG, ["sum", "sumsig"], roi=roi),
          f"{backend} roi+sync_offset")
