"""The same answers whatever the execution: 1, 2 or 3 worker threads, 1, 2
or 5 partitions, the inline executor, tiny tiles.  Integer sums must stay
bit-identical to numpy's exact sum however the work is split and merged."""

import pytest

from oracle import check, expected

NAV = (6, 7)
SIG = (7, 11)
MASKS = ["disk:5,3,2.5", "ring:5,3,1,3"]
PICKS = [(0, 0), (3, 4), (5, 6)]
UDFS = ["sum", "sumsig", "stddev", "masks", "pick"]


def udf_args():
    args = []
    for m in MASKS:
        args += ["--param", f"mask={m}"]
    for p in PICKS:
        args += ["--param", "nav=" + ",".join(map(str, p))]
    return args


GRID = ([(t, p, dt) for dt in ("<u2", "<f4") for t in (1, 2, 3) for p in (1, 2, 5)] +
        [(1, 1, "<i4"), (2, 2, "<i4"), (3, 5, "<i4")])


@pytest.mark.parametrize("threads,partitions,dtype", GRID)
def test_threads_partitions(make_data, run_udfs, threads, partitions, dtype):
    d = make_data("raw", dtype, NAV, SIG, seed=21)
    res = run_udfs(",".join(UDFS), d.path, *d.args, *udf_args(),
                   "--threads", threads, "--partitions", partitions)
    check(res, expected(d.array, NAV, SIG, UDFS, masks=MASKS, picks=PICKS),
          f"threads={threads} partitions={partitions} {dtype}")


@pytest.mark.parametrize("dtype", ["<u2", "<f8"])
@pytest.mark.parametrize("partitions", [1, 5])
def test_inline_executor(make_data, run_udfs, partitions, dtype):
    d = make_data("raw", dtype, NAV, SIG, seed=22)
    res = run_udfs(",".join(UDFS), d.path, *d.args, *udf_args(),
                   "--executor", "inline", "--partitions", partitions)
    check(res, expected(d.array, NAV, SIG, UDFS, masks=MASKS, picks=PICKS),
          f"inline partitions={partitions} {dtype}")


@pytest.mark.parametrize("executor,threads,partitions",
                         [("threads", 3, 5), ("threads", 2, 2), ("inline", 1, 5)])
def test_roi_split(make_data, run_udfs, executor, threads, partitions):
    """A ROI whose selected frames straddle partition boundaries."""
    d = make_data("raw", "<u2", NAV, SIG, seed=23)
    udfs = ["sum", "sumsig", "stddev", "masks"]
    margs = [a for m in MASKS for a in ("--param", f"mask={m}")]
    res = run_udfs(",".join(udfs), d.path, *d.args, *margs, "--roi", "rect:1,1,4,5",
                   "--executor", executor, "--threads", threads, "--partitions", partitions)
    check(res, expected(d.array, NAV, SIG, udfs, roi="rect:1,1,4,5", masks=MASKS),
          f"{executor} threads={threads} partitions={partitions}")


def test_more_partitions_than_frames(make_data, run_udfs):
    d = make_data("raw", "<u2", (2, 2), SIG, seed=24)
    res = run_udfs("sum,sumsig,stddev", d.path, *d.args, "--partitions", 64, "--threads", 3)
    check(res, expected(d.array, (2, 2), SIG, ["sum", "sumsig", "stddev"]))


@pytest.mark.parametrize("tile_bytes", [256, 4096])
def test_small_tiles(make_data, run_udfs, tile_bytes):
    """Tiles far smaller than a frame: the signal is processed in slices."""
    d = make_data("raw", "<u2", NAV, (31, 37), seed=25)
    masks = ["disk:18,15,9", "rect:3,4,20,10"]
    margs = [a for m in masks for a in ("--param", f"mask={m}")]
    udfs = ["sum", "sumsig", "stddev", "masks"]
    res = run_udfs(",".join(udfs), d.path, *d.args, *margs, "--tile-bytes", tile_bytes,
                   "--threads", 2, "--partitions", 3)
    check(res, expected(d.array, NAV, (31, 37), udfs, masks=masks), f"tile-bytes {tile_bytes}")
