"""custom_udf.py — your own UDFs in Python, LiberTEM style, run by Tessera's
engine beside its built-in ones, in one pass over the data.

Two UDFs: the centre of mass of each frame (a nav buffer with an extra
dimension, process_frame) and the brightest frame pixel by pixel (a sig
buffer with its own merge, process_tile).  They run with a built-in UDF and
a region of interest, on two threads, and are checked against numpy.

    python3 examples/custom_udf.py
"""

import sys

import numpy as np

import tessera


class CenterOfMassUDF(tessera.UDF):
    """The centre of mass (y, x) of each frame."""

    def get_result_buffers(self):
        return {"com": self.buffer(kind="nav", extra_shape=(2,), dtype="float64")}

    def get_task_data(self):
        # made once per partition, on the worker that processes it
        sy, sx = self.meta.dataset_shape.sig
        yy, xx = np.indices((sy, sx))
        return {"yy": yy, "xx": xx}

    def process_frame(self, frame):
        total = frame.sum()
        self.results.com[:] = ((frame * self.task_data.yy).sum() / total,
                               (frame * self.task_data.xx).sum() / total)


class MaxFrameUDF(tessera.UDF):
    """The largest value of each pixel over all frames."""

    def get_result_buffers(self):
        return {"maximum": self.buffer(kind="sig", dtype=self.meta.input_dtype)}

    def get_preferred_input_dtype(self):
        return self.USE_NATIVE_DTYPE  # the tiles in the dataset's own dtype

    def process_tile(self, tile):
        np.maximum(self.results.maximum, tile.max(axis=0), out=self.results.maximum)

    def merge(self, dest, src):
        np.maximum(dest.maximum, src.maximum, out=dest.maximum)


def main():
    rng = np.random.default_rng(0)
    data = rng.poisson(5, size=(20, 24, 16, 16)).astype(np.uint16)
    data[:, :, 5, 9] += 200  # a bright spot off centre
    roi = np.zeros((20, 24), dtype=bool)
    roi[4:16, 2:20] = True
    with tessera.Context(threads=2) as ctx:
        ds = ctx.load("memory", data=data)
        com, mx, sums = ctx.run_udf(dataset=ds, roi=roi, udf=[
            CenterOfMassUDF(), MaxFrameUDF(), tessera.udf.SumSigUDF()])
    yy, xx = np.indices((16, 16))
    sel = data[roi].astype(np.float64)
    tot = sel.sum(axis=(1, 2))
    want = np.stack([(sel * yy).sum(axis=(1, 2)) / tot, (sel * xx).sum(axis=(1, 2)) / tot], 1)
    ok = np.allclose(com["com"].raw_data, want)
    ok &= bool(np.isnan(com["com"].data[~roi]).all())
    ok &= np.array_equal(mx["maximum"].data, data[roi].max(axis=0))
    ok &= np.array_equal(sums["intensity"].raw_data, tot)
    if not ok:
        print("custom_udf: results differ from numpy", file=sys.stderr)
        return 1
    print(f"custom_udf: centre of mass of {int(roi.sum())} frames, mean "
          f"{com['com'].raw_data.mean(axis=0).round(2)}; brightest pixel "
          f"{np.unravel_index(mx['maximum'].data.argmax(), (16, 16))}; both match numpy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
