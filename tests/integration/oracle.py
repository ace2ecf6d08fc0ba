"""numpy oracles for the built-in UDFs, the ROI and the corrections, and the
comparison of the CLI's results with them.

Everything here is written from the specification (issue 2, sections 7-9),
independently of the engine: the same data go through numpy in float64 (in
int64 for exact integer sums) and the engine's results must match — integer
sums bit for bit, everything else within a relative 1e-5.
"""

import math

import numpy as np

RTOL = 1e-5
UDFS = ("sum", "sumsig", "stddev", "pick", "masks")


# ---------------------------------------------------------------------------
# ROI and masks


def roi_mask(nav, spec):
    """The bool nav mask of a --roi value: None, "rect:y,x,h,w" (rows
    [y, y+h), columns [x, x+w), clipped), "disk:cy,cx,r" ((y-cy)^2 +
    (x-cx)^2 <= r^2) or an array (nonzero selects)."""
    if spec is None:
        return None
    if isinstance(spec, np.ndarray):
        assert spec.shape == tuple(nav)
        return spec.astype(bool)
    kind, _, args = spec.partition(":")
    v = [float(a) for a in args.split(",")]
    assert len(nav) == 2, "geometric ROIs need a 2-D scan"
    yy, xx = np.indices(nav)
    if kind == "rect":
        y, x, h, w = v
        return (yy >= y) & (yy < y + h) & (xx >= x) & (xx < x + w)
    if kind == "disk":
        cy, cx, r = v
        return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
    raise ValueError(spec)


def gen_mask(spec, sig):
    """The float64 sig mask of a masks generator: disk:cx,cy,r,
    ring:cx,cy,ri,ro (ri^2 < d^2 <= ro^2), point:cx,cy (pixel y=round(cy),
    x=round(cx)), rect:x,y,w,h; x is the column, y the row."""
    kind, _, args = spec.partition(":")
    v = [float(a) for a in args.split(",")]
    yy, xx = np.indices(sig)
    if kind == "disk":
        cx, cy, r = v
        m = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    elif kind == "ring":
        cx, cy, ri, ro = v
        d2 = (xx - cx) ** 2 + (yy - cy) ** 2
        m = (d2 > ri * ri) & (d2 <= ro * ro)
    elif kind == "point":
        cx, cy = v
        m = (yy == math.floor(cy + 0.5)) & (xx == math.floor(cx + 0.5))
    elif kind == "rect":
        x, y, w, h = v
        m = (xx >= x) & (xx < x + w) & (yy >= y) & (yy < y + h)
    else:
        raise ValueError(spec)
    return m.astype(np.float64)


def mask_stack(masks, sig):
    """(n, *sig) float64 from a list of generator strings and/or arrays
    (sig-shaped or (n, *sig))."""
    out = []
    for m in masks:
        if isinstance(m, str):
            out.append(gen_mask(m, sig)[None])
        else:
            a = np.asarray(m, dtype=np.float64)
            out.append(a.reshape((-1,) + tuple(sig)))
    return np.concatenate(out, axis=0)


# ---------------------------------------------------------------------------
# Corrections


def correct(frames, dark=None, gain=None, exclude=None):
    """frames (..., *sig) -> float64: dark subtracted, then multiplied by the
    gain, then every excluded pixel replaced by the mean of the non-excluded
    pixels in its 3x3 neighbourhood, widened to 5x5, 7x7, ... until one is
    found (windows clipped to the frame).  Only 2-D frames are patched."""
    x = np.asarray(frames, dtype=np.float64).copy()
    if dark is not None:
        x = x - np.asarray(dark, dtype=np.float64)
    if gain is not None:
        x = x * np.asarray(gain, dtype=np.float64)
    if exclude is not None:
        ex = np.asarray(exclude).astype(bool)
        h, w = ex.shape
        patched = x.copy()
        for py, px in zip(*np.nonzero(ex)):
            k = 1
            while True:
                y0, y1 = max(py - k, 0), min(py + k + 1, h)
                x0, x1 = max(px - k, 0), min(px + k + 1, w)
                good = ~ex[y0:y1, x0:x1]
                if good.any():
                    patched[..., py, px] = x[..., y0:y1, x0:x1][..., good].mean(axis=-1)
                    break
                k += 1
                assert k <= max(h, w), "every pixel is excluded"
        x = patched
    return x


# ---------------------------------------------------------------------------
# Expected results


class Expect:
    """One expected result buffer."""

    def __init__(self, key, value, exact=False, dtypes=None, atol=0.0, scalar=False):
        self.key = key            # "udf.buffer"
        self.value = value        # numpy array (float64 with NaN, or ints)
        self.exact = exact        # bit-identical comparison
        self.dtypes = dtypes      # allowed result dtypes (native order), None: any
        self.atol = atol          # absolute tolerance (scalar or array) besides RTOL
        self.scalar = scalar      # compare a single value, whatever the shape


def native(dt):
    return np.dtype(dt).newbyteorder("=")


def expected(array, nav, sig, udfs=("sum", "sumsig", "stddev", "masks"), roi=None,
             masks=None, picks=None, corrected=None):
    """Expected results of `tessera run` on a dataset whose frames are
    `array` (shape nav + sig, the dataset's dtype).

    roi: a --roi value (see roi_mask); masks: list for the masks UDF (see
    mask_stack); picks: list of nav coordinate tuples; corrected: the
    float64 corrected frames (see correct), when corrections are applied."""
    nav, sig = tuple(nav), tuple(sig)
    dt = array.dtype
    is_int = dt.kind in "biu"
    exact = is_int and corrected is None
    nnav = int(np.prod(nav))
    flat = array.reshape((nnav,) + sig)
    data = (corrected.reshape((nnav,) + sig) if corrected is not None else flat)
    sel = roi_mask(nav, roi)
    sel_flat = np.ones(nnav, bool) if sel is None else sel.reshape(-1)
    assert sel_flat.any()
    sig_axes = tuple(range(1, 1 + len(sig)))
    out = []

    def f64(a):
        return np.asarray(a, dtype=np.float64)

    if exact:
        ints = flat.astype(np.int64)
        frame_sums = ints.sum(axis=sig_axes).astype(np.float64)
        total = ints[sel_flat].sum(axis=0).astype(np.float64)
    else:
        frame_sums = f64(data).sum(axis=sig_axes)
        total = f64(data)[sel_flat].sum(axis=0)

    if "sum" in udfs:
        out.append(Expect("sum.intensity", total, exact=exact, dtypes=[np.float64],
                          atol=RTOL * np.abs(f64(data)[sel_flat]).sum(axis=0)))
    if "sumsig" in udfs:
        v = np.full(nnav, np.nan)
        v[sel_flat] = frame_sums[sel_flat]
        scale = np.abs(f64(data)).sum(axis=sig_axes)
        out.append(Expect("sumsig.intensity", v.reshape(nav), exact=exact,
                          dtypes=[np.float64], atol=RTOL * scale.reshape(nav)))
    if "stddev" in udfs:
        x = f64(data)[sel_flat]
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        mscale = np.abs(x).max(axis=0)
        out.append(Expect("stddev.mean", mean, dtypes=[np.float64], atol=RTOL * mscale))
        out.append(Expect("stddev.var", var, dtypes=[np.float64], atol=RTOL * mscale ** 2))
        out.append(Expect("stddev.std", np.sqrt(var), dtypes=[np.float64], atol=RTOL * mscale))
        out.append(Expect("stddev.num_frames", np.array(int(sel_flat.sum()), np.int64),
                          exact=True, dtypes=[np.int64], scalar=True))
    if "pick" in udfs:
        assert picks, "pick needs coordinates"
        v = np.stack([array[tuple(p)] for p in picks])
        if corrected is not None:
            v = np.stack([corrected[tuple(p)] for p in picks])
            out.append(Expect("pick.intensity", v, atol=RTOL * np.abs(v)))
        else:
            out.append(Expect("pick.intensity", v, exact=True, dtypes=[native(dt)]))
    if "masks" in udfs:
        ms = mask_stack(masks, sig)
        n = ms.shape[0]
        x = f64(data)
        v = np.tensordot(x, ms, axes=(sig_axes, tuple(range(1, 1 + len(sig)))))
        scale = np.tensordot(np.abs(x), np.abs(ms), axes=(sig_axes, tuple(range(1, 1 + len(sig)))))
        v[~sel_flat] = np.nan
        if corrected is not None:
            dtypes = [np.float32, np.float64]
        elif dt.kind == "f" and dt.itemsize == 8:
            dtypes = [np.float64]
        elif dt.kind == "f" or dt.itemsize <= 2:
            dtypes = [np.float32]
        else:
            dtypes = [np.float32, np.float64]
        # float32 accumulation: about 1e-7 per addition, well inside RTOL.
        out.append(Expect("masks.intensity", v.reshape(nav + (n,)), dtypes=dtypes,
                          atol=RTOL * scale.reshape(nav + (n,))))
    return out


# ---------------------------------------------------------------------------
# Comparison


def _first_bad(bad):
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    return idx


def compare(found, exp):
    """Problems (list of strings) of one result against its expectation."""
    key = exp.key
    if key not in found:
        return [f"{key}: missing (the run wrote: {', '.join(sorted(found)) or 'nothing'})"]
    f = found[key]
    e = exp.value
    problems = []
    if exp.dtypes is not None and native(f.dtype) not in [native(d) for d in exp.dtypes]:
        problems.append(f"{key}: dtype {f.dtype.str}, expected one of "
                        f"{[np.dtype(d).str for d in exp.dtypes]}")
    if exp.scalar:
        if f.size != 1:
            return problems + [f"{key}: expected a single value, found shape {f.shape}"]
        f = f.reshape(())
        e = np.asarray(e).reshape(())
    elif f.shape != e.shape:
        return problems + [f"{key}: shape {f.shape}, expected {e.shape}"]
    if f.dtype.kind in "biu" and e.dtype.kind in "biu":
        bad = f.astype(np.int64) != e.astype(np.int64) if f.dtype.itemsize < 8 or \
            f.dtype.kind == "i" else f != e
    else:
        ff = f.astype(np.float64)
        ee = e.astype(np.float64)
        nan_f, nan_e = np.isnan(ff), np.isnan(ee)
        if exp.exact:
            bad = ~((ff == ee) | (nan_f & nan_e))
        else:
            tol = np.broadcast_to(exp.atol, ee.shape) + RTOL * np.abs(ee)
            with np.errstate(invalid="ignore"):
                bad = ~((np.abs(ff - ee) <= tol) | (nan_f & nan_e))
    bad = np.asarray(bad)
    if bad.any():
        idx = _first_bad(bad) if bad.ndim else ()
        fv, ev = f[idx], e[idx]
        how = "bit-identical" if exp.exact else f"within rtol {RTOL}"
        problems.append(f"{key}: {int(bad.sum())} of {bad.size} values not {how}; first at "
                        f"{idx}: expected {ev!r}, found {fv!r}")
    return problems


def check(found, expects, context=""):
    """Assert that every expected buffer is in `found` and matches."""
    problems = []
    for exp in expects:
        problems += compare(found, exp)
    assert not problems, (context + "\n" if context else "") + "\n".join(problems)
