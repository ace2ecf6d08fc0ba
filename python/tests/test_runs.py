"""Runs from Python: intermediate results, cancellation, errors from C as
exceptions, exceptions in Python UDFs, results without copies, export."""

import time
import traceback

import numpy as np
import pytest

import tessera

NAV = (8, 8)
SIG = (6, 5)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    return rng.integers(0, 100, NAV + SIG).astype(np.uint16)


class SlowSum(tessera.UDF):
    """Sum of each frame, slowly (so that a run lasts long enough to be
    observed)."""

    def __init__(self, delay=0.004, **kw):
        super().__init__(delay=delay, **kw)

    def get_result_buffers(self):
        return {"s": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame):
        time.sleep(self.params.delay)
        self.results.s[:] = frame.sum()


def test_run_udf_iter_yields_intermediate_results(data):
    with tessera.Context(threads=2, partitions=8) as ctx:
        ds = ctx.load("memory", data=data)
        items = list(ctx.run_udf_iter(dataset=ds, udf=[SlowSum(), tessera.udf.SumUDF()],
                                      interval=0.02))
    assert len(items) >= 2, "no intermediate result before the final one"
    assert [it.final for it in items] == [False] * (len(items) - 1) + [True]
    want = data.astype(np.float64).sum(axis=(2, 3))
    last_done = 0
    for it in items[:-1]:
        dmg = np.asarray(it.damage)
        assert dmg.shape == NAV and dmg.dtype == bool
        assert 0 < it.n_done < 64 and it.n_done == dmg.sum() and it.n_done > last_done
        last_done = it.n_done
        s = it.buffers[0]["s"]
        assert np.array_equal(s.valid_mask, dmg)
        assert np.array_equal(s.data[dmg], want[dmg]) and np.isnan(s.data[~dmg]).all()
        # the sum over the merged frames only: consistent with the damage mask
        total = it.buffers[1]["intensity"].data
        assert np.array_equal(total, data[dmg].astype(np.float64).sum(axis=0))
    final = items[-1]
    assert final.n_done == 64 and np.asarray(final.damage).all()
    assert np.array_equal(final.buffers[0]["s"].data, want)


def test_run_udf_iter_close_cancels(data):
    with tessera.Context(threads=1, partitions=8) as ctx:
        ds = ctx.load("memory", data=data)
        t0 = time.monotonic()
        gen = ctx.run_udf_iter(dataset=ds, udf=SlowSum(delay=0.05), interval=0.01)
        first = next(gen)
        assert not first.final
        gen.close()
        assert time.monotonic() - t0 < 2.5  # 64 frames x 50 ms would be 3.2 s
        # the context is usable afterwards
        r = ctx.run_udf(dataset=ds, udf=tessera.udf.SumSigUDF())
        assert np.array_equal(r["intensity"].data, data.sum(axis=(2, 3)))


def test_progress_bar(data, capsys):
    with tessera.Context(threads=2) as ctx:
        ds = ctx.load("memory", data=data)
        ctx.run_udf(dataset=ds, udf=SlowSum(delay=0.001), progress=True)
    err = capsys.readouterr().err
    assert "100% 64/64 frames" in err


# --- errors -----------------------------------------------------------------


def test_engine_errors_are_exceptions_with_the_message(tmp_path, data):
    with tessera.Context() as ctx:
        missing = tmp_path / "missing.raw"
        with pytest.raises(tessera.TesseraError) as ei:
            ctx.load("raw", path=missing, nav_shape=(2, 2), sig_shape=(4, 4), dtype="u2")
        assert str(missing) in str(ei.value)
        assert ei.value.name.startswith("TSR_E") and ei.value.code < 0
        short = tmp_path / "short.raw"
        short.write_bytes(b"\0" * 10)
        with pytest.raises(tessera.TesseraError) as ei:
            ctx.load("raw", path=short, nav_shape=(2, 2), sig_shape=(4, 4), dtype="u2")
        assert "short.raw" in str(ei.value)
        with pytest.raises(tessera.NotFoundError, match="nosuchformat"):
            ctx.load("nosuchformat", path=short)
        with pytest.raises(tessera.InvalidArgumentError) as ei:
            ctx.load("raw", path=short, nav_shape=(2, 2), sig_shape=(4, 4), dtype="u2",
                     no_such_key=1)
        assert isinstance(ei.value, ValueError) and "no_such_key" in str(ei.value)
        ds = ctx.load("memory", data=data)
        with pytest.raises(tessera.TesseraError) as ei:
            ctx.run_udf(dataset=ds, udf=tessera.udf.ApplyMasksUDF(mask=["disk:1,2"]))
        assert "disk:1,2" in str(ei.value) and "3 numbers" in str(ei.value)
        with pytest.raises(tessera.TesseraError, match="out of range"):
            ctx.run_udf(dataset=ds, udf=tessera.udf.PickUDF(nav=(8, 0)))
        with pytest.raises(ValueError, match="roi has shape"):
            ctx.run_udf(dataset=ds, udf=tessera.udf.SumUDF(), roi=np.ones((3, 3), bool))
    with pytest.raises(tessera.InvalidArgumentError):
        tessera.Context(threads=-5)
    with pytest.raises(ValueError, match="executor"):
        tessera.Context(executor="gpu")


class Raises(tessera.UDF):
    """Raises in the method named by `where` at nav index 37."""

    def __init__(self, where="process_frame", **kw):
        super().__init__(where=where, **kw)

    def get_result_buffers(self):
        if self.params.where == "get_result_buffers":
            raise KeyError("no buffers today")
        return {"s": self.buffer(kind="sig", dtype="float64")}

    def process_frame(self, frame):
        if self.params.where == "process_frame" and self.meta.nav_index == 37:
            raise ValueError("frame 37 is cursed")
        self.results.s[:] += frame

    def merge(self, dest, src):
        if self.params.where == "merge":
            raise RuntimeError("merge refused")
        dest.s[:] += src.s

    def get_results(self):
        if self.params.where == "get_results":
            raise ZeroDivisionError("no results")
        return {}


@pytest.mark.parametrize("where,exc,text", [
    ("process_frame", ValueError, "frame 37 is cursed"),
    ("get_result_buffers", KeyError, "no buffers today"),
    ("merge", RuntimeError, "merge refused"),
    ("get_results", ZeroDivisionError, "no results"),
])
@pytest.mark.parametrize("threads", [1, 2])
def test_exception_in_python_udf_aborts_the_run(data, where, exc, text, threads):
    with tessera.Context(threads=threads, partitions=4) as ctx:
        ds = ctx.load("memory", data=data)
        with pytest.raises(tessera.UDFError) as ei:
            ctx.run_udf(dataset=ds, udf=[tessera.udf.SumUDF(), Raises(where=where)])
        assert text in str(ei.value) and "Raises" in str(ei.value)
        cause = ei.value.__cause__
        assert isinstance(cause, exc)
        tb = "".join(traceback.format_exception(cause))
        assert f"in {where}" in tb and text in tb  # the UDF's own frame
        # the context still works
        r = ctx.run_udf(dataset=ds, udf=tessera.udf.SumUDF())
        assert np.array_equal(r["intensity"].data, data.sum(axis=(0, 1), dtype=np.int64))


# --- results ------------------------------------------------------------------


def test_results_are_views_of_engine_memory(data):
    with tessera.Context(threads=2) as ctx:
        ds = ctx.load("memory", data=data)
        res = ctx.run_udf(dataset=ds, udf=[tessera.udf.SumUDF(), tessera.udf.StdDevUDF()])
    buf = res[0]["intensity"]
    a = np.asarray(buf)
    assert a is buf.data and not a.flags.owndata
    assert np.shares_memory(a, buf.data)
    base = a.base
    while base is not None and not isinstance(base, tessera._tessera.BufferView):
        base = getattr(base, "obj", None) if isinstance(base, memoryview) else base.base
    assert isinstance(base, tessera._tessera.BufferView)
    # results outlive the context and the run
    del ctx, ds, res
    import gc
    gc.collect()
    assert np.array_equal(a, data.sum(axis=(0, 1), dtype=np.int64))
    assert np.asarray(buf, dtype=np.float32).dtype == np.float32
    assert buf[1, 2] == a[1, 2] and buf.shape == SIG and len(buf) == SIG[0]


def test_raw_data_and_valid_mask(data):
    roi = np.zeros(NAV, bool)
    roi[2:5, 1:7] = True
    with tessera.Context(threads=2) as ctx:
        ds = ctx.load("memory", data=data)
        res = ctx.run_udf(dataset=ds, udf=[tessera.udf.SumSigUDF(), tessera.udf.StdDevUDF()],
                          roi=roi)
    s = res[0]["intensity"]
    assert s.kind == "nav" and s.extra_shape == ()
    assert np.array_equal(s.valid_mask, roi)
    assert np.array_equal(s.raw_data, data[roi].sum(axis=(1, 2)))
    assert np.isnan(s.data[~roi]).all()
    n = res[1]["num_frames"]
    assert n.kind == "single" and n.data == roi.sum() and n.valid_mask.all()
    m = res[1]["mean"]
    assert m.kind == "sig" and m.raw_data is m.data and m.valid_mask.shape == SIG


def read_tiff_f32(raw):
    """The first page of a baseline TIFF of float32 samples, parsed from the
    published layout (TIFF 6.0: header, IFD entries, strips)."""
    bo = {b"II": "<", b"MM": ">"}[raw[:2]]
    assert np.frombuffer(raw, bo + "u2", 1, 2)[0] == 42
    ifd = int(np.frombuffer(raw, bo + "u4", 1, 4)[0])
    n = int(np.frombuffer(raw, bo + "u2", 1, ifd)[0])
    tags = {}
    for k in range(n):
        e = ifd + 2 + 12 * k
        tag, typ = np.frombuffer(raw, bo + "u2", 2, e)
        count = int(np.frombuffer(raw, bo + "u4", 1, e + 4)[0])
        size = {3: 2, 4: 4}[int(typ)] if typ in (3, 4) else None
        if size is None:
            continue
        where = e + 8 if size * count <= 4 else int(np.frombuffer(raw, bo + "u4", 1, e + 8)[0])
        tags[int(tag)] = np.frombuffer(raw, bo + ("u2" if size == 2 else "u4"), count, where)
    w, h = int(tags[256][0]), int(tags[257][0])
    assert int(tags[258][0]) == 32 and int(tags[339][0]) == 3  # 32-bit IEEE float
    data = b"".join(raw[int(o):int(o) + int(c)] for o, c in zip(tags[273], tags[279]))
    return np.frombuffer(data, bo + "f4", w * h).reshape(h, w)


def test_export(tmp_path, data):
    import h5py

    with tessera.Context(threads=2) as ctx:
        ds = ctx.load("memory", data=data)
        res = ctx.run_udf(dataset=ds, udf=[tessera.udf.SumUDF(), tessera.udf.SumSigUDF()])
    s = res[0]["intensity"]
    s.export(tmp_path / "sum.npy")
    assert np.array_equal(np.load(tmp_path / "sum.npy"), s.data)
    tessera.export(res, tmp_path / "all.h5")
    with h5py.File(tmp_path / "all.h5", "r") as f:
        assert np.array_equal(f["sum/intensity"][()], s.data)
        assert np.array_equal(f["sumsig/intensity"][()], res[1]["intensity"].data)
    tessera.export(res, f"{tmp_path}/dir/")
    assert np.array_equal(np.load(tmp_path / "dir" / "sumsig.intensity.npy"),
                          res[1]["intensity"].data)
    tessera.export(res[1]["intensity"], tmp_path / "sumsig.tif")
    img = read_tiff_f32((tmp_path / "sumsig.tif").read_bytes())
    assert np.array_equal(img, res[1]["intensity"].data.astype(np.float32))
    s.export(tmp_path / "sum.png", colormap="gray", log=True)
    assert (tmp_path / "sum.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(tessera.InvalidArgumentError, match="xyz"):
        s.export(tmp_path / "sum.xyz")
    with pytest.raises(tessera.InvalidArgumentError):
        tessera.export(res, tmp_path / "two.npy")


EXIT_SCRIPT = '''
import sys, types
import numpy as np, tessera

class Bad(tessera.UDF):
    def get_result_buffers(self):
        return {"x": self.buffer(kind="nav")}
    def process_tile(self, tile):
        raise ValueError("boom")

ctx = tessera.Context(threads=2)
ds = ctx.load("memory", data=np.ones((4, 4, 8, 8), np.float32))
holder = sys.modules["holder"] = types.ModuleType("holder")
try:
    ctx.run_udf(dataset=ds, udf=Bad())
except tessera.UDFError as e:
    holder.keep = [e]  # its traceback holds the run_udf frame, and so the Run
    holder.keep.append(holder.keep)  # a cycle: freed by the interpreter's last collection
print("done")
'''


def test_run_freed_during_interpreter_finalization():
    """A Run kept alive by a reference cycle (an exception's traceback) until
    the interpreter's final collection, after finalization has deleted every
    thread state: the exit is clean (it crashed with a double free when the
    Run deleted its workers' thread states a second time)."""
    import subprocess
    import sys
    cp = subprocess.run([sys.executable, "-c", EXIT_SCRIPT], capture_output=True, text=True,
                        timeout=60)
    assert cp.returncode == 0 and cp.stdout.strip() == "done", (cp.returncode, cp.stderr[-2000:])
