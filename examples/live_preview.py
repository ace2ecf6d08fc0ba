"""live_preview.py — intermediate results while a run proceeds, as a GUI or
a notebook would show them, and Context.map for a quick one-off.

run_udf_iter yields a consistent snapshot of the merged results each time
partitions have been merged, with the damage mask of the scan positions
already done; the last item holds the final results.  A deliberately slow
Python UDF makes the run last long enough to watch.

    python3 examples/live_preview.py
"""

import sys
import time

import numpy as np

import tessera


class SlowFrameSum(tessera.UDF):
    def get_result_buffers(self):
        return {"total": self.buffer(kind="nav", dtype="float64")}

    def process_frame(self, frame):
        time.sleep(0.002)  # pretend this is expensive
        self.results.total[:] = frame.sum()


def main():
    rng = np.random.default_rng(1)
    data = rng.integers(0, 50, size=(16, 16, 8, 8)).astype(np.uint8)
    want = data.sum(axis=(2, 3), dtype=np.int64)
    ok = True
    seen = 0
    with tessera.Context(threads=2, partitions=8) as ctx:
        ds = ctx.load("memory", data=data)
        for part in ctx.run_udf_iter(dataset=ds, udf=SlowFrameSum(), interval=0.05):
            img = part.buffers[0]["total"]
            done = np.asarray(part.damage)
            # what is done is final; what is not is NaN
            ok &= np.array_equal(img.data[done], want[done])
            ok &= bool(np.isnan(img.data[~done]).all())
            seen += 1
            print(f"  {part.n_done:4d}/{part.total} frames{' (final)' if part.final else ''}")
        ok &= part.final and bool(done.all())
        brightest = ctx.map(dataset=ds, f=lambda frame: frame.max())
        ok &= np.array_equal(brightest.data, data.max(axis=(2, 3)))
    if not ok:
        print("live_preview: results differ from numpy", file=sys.stderr)
        return 1
    print(f"live_preview: {seen} updates, final image and map() match numpy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
