"""quickstart.py — Tessera from Python: open a dataset, run built-in UDFs in
one pass, read the results as numpy arrays, export them.

It writes a small 4D-STEM scan to a temporary .npy file (a 12x16 scan of
32x32 frames with a bright disk that moves with the scan), computes the sum
of all frames and a virtual bright-field image, checks both against numpy
and writes them to an HDF5 file.  Exit status 0 means every check passed.

    python3 examples/quickstart.py
"""

import os
import sys
import tempfile

import numpy as np

import tessera

NY, NX, SY, SX = 12, 16, 32, 32


def make_scan():
    yy, xx = np.indices((SY, SX))
    data = np.ones((NY, NX, SY, SX), dtype=np.uint16)
    for y in range(NY):
        for x in range(NX):
            cy, cx = 16 + (y - NY // 2) / 3, 16 + (x - NX // 2) / 3
            data[y, x][(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = 100 + y * NX + x
    return data


def main():
    data = make_scan()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "scan.npy")
        np.save(path, data)
        with tessera.Context() as ctx:
            ds = ctx.load("auto", path=path)
            print(f"opened {ds}: nav {tuple(ds.shape.nav)}, sig {tuple(ds.shape.sig)}")
            bright_field = tessera.masks.circular(centerX=16, centerY=16, imageSizeX=SX,
                                                  imageSizeY=SY, radius=8)
            frame_sum, vbf = ctx.run_udf(dataset=ds, udf=[
                tessera.udf.SumUDF(),
                tessera.udf.ApplyMasksUDF(mask=[bright_field]),
            ])
            # results are numpy views of the engine's memory
            total = frame_sum["intensity"].data
            image = vbf["intensity"].data[..., 0]
            ok = np.array_equal(total, data.sum(axis=(0, 1), dtype=np.int64))
            want = (data * bright_field).sum(axis=(2, 3))
            ok &= np.allclose(image, want, rtol=1e-6)
            out = os.path.join(tmp, "results.h5")
            tessera.export([frame_sum, vbf], out)
            ok &= os.path.getsize(out) > 0
    if not ok:
        print("quickstart: results differ from numpy", file=sys.stderr)
        return 1
    print(f"quickstart: sum and virtual bright field of {NY * NX} frames match numpy "
          f"(tessera {tessera.__version__})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
