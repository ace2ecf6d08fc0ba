"""Python UDFs (tessera.UDF, LiberTEM's interface) against numpy: the three
UDFs of the style of LiberTEM's documentation, with 1 and 2 threads and a
ROI, and the rest of the interface (methods, meta, buffers, dtypes)."""

import numpy as np
import pytest

import tessera

NAV = (7, 9)
SIG = (12, 10)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    return rng.integers(0, 4000, NAV + SIG).astype(np.uint16)


def roi_of(kind):
    if kind is None:
        return None
    rng = np.random.default_rng(2)
    m = rng.random(NAV) < 0.4
    m[0, 0] = m[-1, -1] = True
    return m


# --- the three examples, as LiberTEM's documentation writes them -----------


class MaxUDF(tessera.UDF):
    """The maximum of each frame: a nav buffer."""

    def get_result_buffers(self):
        return {"maxbuf": self.buffer(kind="nav", dtype=self.meta.input_dtype)}

    def process_frame(self, frame):
        self.results.maxbuf[:] = np.max(frame)


class SumSigUDF(tessera.UDF):
    """The sum of all frames: a sig buffer with its own merge."""

    def get_result_buffers(self):
        return {"intensity": self.buffer(kind="sig", dtype="float64")}

    def process_tile(self, tile):
        self.results.intensity[:] += np.sum(tile, axis=0)

    def merge(self, dest, src):
        dest.intensity[:] += src.intensity


class HistUDF(tessera.UDF):
    """A histogram of all pixels: one single buffer."""

    def __init__(self, bins=32, vmax=4000, **kwargs):
        super().__init__(bins=bins, vmax=vmax, **kwargs)

    def get_result_buffers(self):
        return {"hist": self.buffer(kind="single", extra_shape=(self.params.bins,),
                                    dtype="int64")}

    def process_tile(self, tile):
        h, _ = np.histogram(tile, bins=self.params.bins, range=(0, self.params.vmax))
        self.results.hist[:] += h

    def merge(self, dest, src):
        dest.hist[:] += src.hist


@pytest.mark.parametrize("roi", [None, "roi"])
@pytest.mark.parametrize("threads", [1, 2, "inline"])
def test_three_examples(data, threads, roi):
    roi_m = roi_of(roi)
    opts = {"executor": "inline"} if threads == "inline" else {"threads": threads}
    with tessera.Context(partitions=3, tile_bytes=4096, **opts) as ctx:
        ds = ctx.load("memory", data=data)
        res = ctx.run_udf(dataset=ds, udf=[MaxUDF(), SumSigUDF(), HistUDF(bins=17)], roi=roi_m)
    sel = data.reshape((-1,) + SIG) if roi_m is None else data[roi_m]
    mx = res[0]["maxbuf"]
    assert mx.dtype == np.float32 and mx.shape == NAV and mx.kind == "nav"
    want = data.max(axis=(2, 3)).astype(np.float32)
    if roi_m is not None:
        want[~roi_m] = np.nan
        assert np.array_equal(mx.valid_mask, roi_m)
        assert np.array_equal(mx.raw_data, data[roi_m].max(axis=(1, 2)))
    assert np.array_equal(mx.data, want, equal_nan=True)
    assert np.array_equal(res[1]["intensity"].data, sel.astype(np.float64).sum(axis=0))
    h, _ = np.histogram(sel, bins=17, range=(0, 4000))
    assert np.array_equal(res[2]["hist"].data, h)


def test_beside_builtin_udfs_in_one_pass(data):
    with tessera.Context(threads=2, partitions=4) as ctx:
        ds = ctx.load("memory", data=data)
        res = ctx.run_udf(dataset=ds, udf=[tessera.udf.SumUDF(), SumSigUDF(),
                                           tessera.udf.SumSigUDF(), MaxUDF()])
    assert np.array_equal(res[0]["intensity"].data, res[1]["intensity"].data)
    assert np.array_equal(res[2]["intensity"].data, data.sum(axis=(2, 3), dtype=np.int64))
    assert np.array_equal(res[3]["maxbuf"].data, data.max(axis=(2, 3)))


# --- the rest of the interface ------------------------------------------------


class Everything(tessera.UDF):
    """Per-frame sums from tiles that split frames, completed in postprocess
    (sqrt), task data, preprocess, a private buffer, a result-only buffer
    computed in get_results, and the coordinates of each frame."""

    def get_result_buffers(self):
        return {
            "root": self.buffer(kind="nav", dtype="float64"),
            "coords": self.buffer(kind="nav", extra_shape=(2,), dtype="int64"),
            "count": self.buffer(kind="single", dtype="int64", use="private"),
            "total": self.buffer(kind="sig", dtype="float64", use="private"),
            "mean": self.buffer(kind="sig", dtype="float64", use="result_only"),
            "tiles": self.buffer(kind="single", dtype="int64"),
        }

    def get_task_data(self):
        return {"scale": 2.0}

    def preprocess(self):
        assert self.results.root.shape == (self.meta.partition_shape[0],)
        self.results.root[:] = 0

    def process_tile(self, tile):
        # a read-only view of the engine's tile buffer, not a copy
        assert not tile.flags.owndata and not tile.flags.writeable
        assert isinstance(tile.base, (memoryview, tessera._tessera.BufferView)), type(tile.base)
        assert tile.shape == tuple(self.meta.slice.shape)
        assert tile.shape[1:] == tuple(self.meta.sig_slice.shape)
        self.results.root[:] += tile.sum(axis=(1, 2)) * self.task_data.scale / 2
        self.results.coords[:] = self.meta.coordinates
        self.results.total[:] += tile.sum(axis=0)
        if self.meta.sig_slice.origin[0] == 0:
            self.results.count[:] += tile.shape[0]
        if tile.shape[1] < SIG[0]:
            self.results.tiles[:] += 1

    def postprocess(self):
        self.results.root[:] = np.sqrt(self.results.root)

    def merge(self, dest, src):
        dest.root[:] = src.root
        dest.coords[:] = src.coords
        dest.count[:] += src.count
        dest.total[:] += src.total
        dest.tiles[:] += src.tiles

    def get_results(self):
        assert self.results.root.ndim == 1
        return {"mean": self.results.total / self.results.count[0]}


@pytest.mark.parametrize("roi", [None, "roi"])
def test_methods_meta_and_buffer_uses(data, roi):
    roi_m = roi_of(roi)
    with tessera.Context(threads=2, partitions=3, tile_bytes=160) as ctx:
        ds = ctx.load("memory", data=data)
        res = ctx.run_udf(dataset=ds, udf=Everything(), roi=roi_m)
    assert sorted(res) == ["coords", "mean", "root", "tiles"]
    sel = np.ones(NAV, bool) if roi_m is None else roi_m
    want = np.sqrt(data.astype(np.float64).sum(axis=(2, 3)))
    got = res["root"].data
    assert np.allclose(got[sel], want[sel], rtol=1e-6)
    assert np.isnan(got[~sel]).all()
    yy, xx = np.indices(NAV)
    assert np.array_equal(res["coords"].data[sel], np.stack([yy, xx], axis=-1)[sel])
    assert np.allclose(res["mean"].data, data[sel].astype(np.float64).mean(axis=0), rtol=1e-6)
    assert res["tiles"].data[0] >= 2 * sel.sum()  # frames were split into several tiles


class FrameCoords(tessera.UDF):
    def get_result_buffers(self):
        return {"c": self.buffer(kind="nav", extra_shape=(2,), dtype="int64"),
                "n": self.buffer(kind="nav", dtype="int64")}

    def get_preferred_input_dtype(self):
        return self.USE_NATIVE_DTYPE

    def process_frame(self, frame):
        assert frame.dtype == self.meta.input_dtype == self.meta.dataset_dtype
        assert frame.shape == SIG
        self.results.c[:] = self.meta.coordinates[0]
        self.results.n[:] = frame.astype(np.int64).sum()


class PartitionSum(tessera.UDF):
    def get_result_buffers(self):
        return {"s": self.buffer(kind="nav", dtype="float64"),
                "part": self.buffer(kind="nav", dtype="int64")}

    def get_preferred_input_dtype(self):
        return np.float64

    def process_partition(self, partition):
        assert partition.dtype == np.float64
        assert partition.shape[0] == self.meta.partition_shape[0] == self.results.s.shape[0]
        self.results.s[:] = partition.sum(axis=(1, 2))
        self.results.part[:] = self.meta.slice.origin[0]


@pytest.mark.parametrize("roi", [None, "roi"])
def test_frame_and_partition_methods(data, roi):
    roi_m = roi_of(roi)
    sel = np.ones(NAV, bool) if roi_m is None else roi_m
    with tessera.Context(threads=2, partitions=4) as ctx:
        ds = ctx.load("memory", data=data)
        fc, ps = ctx.run_udf(dataset=ds, udf=[FrameCoords(), PartitionSum()], roi=roi_m)
    yy, xx = np.indices(NAV)
    assert np.array_equal(fc["c"].data[sel], np.stack([yy, xx], axis=-1)[sel])
    assert np.array_equal(fc["n"].data[sel], data.astype(np.int64).sum(axis=(2, 3))[sel])
    assert np.array_equal(ps["s"].data[sel], data.astype(np.float64).sum(axis=(2, 3))[sel])
    assert len(np.unique(ps["part"].raw_data)) == 4  # four partitions, each its own origin


class WritesTile(tessera.UDF):
    def get_result_buffers(self):
        return {"x": self.buffer(kind="nav")}

    def process_tile(self, tile):
        tile[0] = 1


def test_tiles_are_read_only(data):
    with tessera.Context(threads=1) as ctx:
        ds = ctx.load("memory", data=data)
        with pytest.raises(tessera.UDFError, match="read-only") as ei:
            ctx.run_udf(dataset=ds, udf=WritesTile())
    assert isinstance(ei.value.__cause__, ValueError)


class NeedsMerge(tessera.UDF):
    def get_result_buffers(self):
        return {"s": self.buffer(kind="sig")}

    def process_tile(self, tile):
        pass


class ObjectBuffer(tessera.UDF):
    def get_result_buffers(self):
        return {"o": self.buffer(kind="nav", dtype=object)}

    def process_frame(self, frame):
        pass


def test_declaration_errors(data):
    with tessera.Context(threads=1) as ctx:
        ds = ctx.load("memory", data=data)
        with pytest.raises(tessera.UDFError, match="custom merge") as ei:
            ctx.run_udf(dataset=ds, udf=NeedsMerge())
        assert isinstance(ei.value.__cause__, NotImplementedError)
        with pytest.raises(tessera.UDFError, match="dtype object is not supported"):
            ctx.run_udf(dataset=ds, udf=ObjectBuffer())
        with pytest.raises(TypeError, match="not a UDF"):
            ctx.run_udf(dataset=ds, udf=object())


def test_map(data):
    with tessera.Context(threads=2, partitions=3) as ctx:
        ds = ctx.load("memory", data=data)
        r = ctx.map(dataset=ds, f=lambda frame: frame.max())
        assert r.dtype == data.dtype and r.shape == NAV
        assert np.array_equal(r.data, data.max(axis=(2, 3)))
        r2 = ctx.map(dataset=ds, f=lambda frame: np.array([frame.min(), frame.mean()]))
        assert r2.shape == NAV + (2,)
        assert np.allclose(r2.data[..., 1], data.mean(axis=(2, 3)))
        roi_m = roi_of("roi")
        r3 = ctx.map(dataset=ds, f=np.sum, roi=roi_m)
        assert np.array_equal(r3.raw_data, data[roi_m].sum(axis=(1, 2), dtype=np.uint64))
