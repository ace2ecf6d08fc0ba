"""The built-in UDFs through Python: the classes come from the registry, and
every built-in UDF gives the CLI's answer (the same bits) and numpy's."""

import inspect
import tempfile

import numpy as np
import pytest

import tessera
from conftest import flat_results
from oracle import check, expected

NAV = (6, 7)
SIG = (7, 11)
MASKS = ["disk:5,3,2.5", "ring:5,3,1,3", "point:3.2,4.7", "rect:1,2,4,3"]
PICKS = [(0, 0), (5, 6), (2, 3)]

# Parameters of the built-in UDFs for the comparison with the CLI: Python
# keyword arguments and the CLI's --param arguments.  A UDF with required
# parameters must be listed here; one without may be (else it runs with its
# defaults).
_COUNT_DIR = tempfile.mkdtemp(prefix="tsr-count-")
PARAMS = {
    "masks": ({"mask": MASKS},
              [a for m in MASKS for a in ("--param", f"masks.mask={m}")]),
    "pick": ({"nav": PICKS},
             [a for p in PICKS for a in ("--param", "pick.nav=" + ",".join(map(str, p)))]),
    # count writes a raw_csr dataset: each side to its own file
    "count": ({"threshold": 10, "output": f"{_COUNT_DIR}/py.toml"},
              ["--param", "count.threshold=10", "--param", f"count.output={_COUNT_DIR}/cli.toml"]),
}
ORACLE = ("sum", "sumsig", "stddev", "pick", "masks")
# Values for required parameters of UDFs not in PARAMS, by parameter name (for
# the 7x11 frames here): UDFs added to the registry later are compared with the
# CLI without a change here when their required parameters are among these.
BY_NAME = {"cx": 5, "cy": 3, "r": 2, "ri": 1, "ro": 3, "radius": 2, "radius_outer": 3,
           "radius_inner": 1, "rad_in": 1, "rad_out": 3}


def test_registry_classes():
    reg = tessera._tessera.udfs()
    classes = tessera.udf.builtin_udfs()
    assert sorted(classes) == sorted(name for name, _, _ in reg)
    for name, desc, params in reg:
        cls = classes[name]
        assert getattr(tessera.udf, cls.__name__) is cls
        assert cls.__name__ == tessera.udf.class_name(name)
        assert desc in cls.__doc__
        sig = inspect.signature(cls)
        assert list(sig.parameters) == [p[0] for p in params]
        for p in params:
            assert p[0] in cls.__doc__ and p[3] in cls.__doc__
    for libertem_name in ("SumUDF", "SumSigUDF", "StdDevUDF", "PickUDF", "ApplyMasksUDF"):
        assert hasattr(tessera.udf, libertem_name)


def test_class_names_follow_the_rule():
    assert tessera.udf.class_name("radial_fourier") == "RadialFourierUDF"
    assert tessera.udf.class_name("com") == "CoMUDF"
    assert tessera.udf.class_name("new_thing") == "NewThingUDF"


def test_parameters_are_checked_in_python():
    with pytest.raises(TypeError, match="unknown parameter.*radius"):
        tessera.udf.ApplyMasksUDF(mask=["disk:1,1,1"], radius=3)
    with pytest.raises(TypeError, match="missing required parameter.*mask"):
        tessera.udf.ApplyMasksUDF()


def _udf_and_args(name):
    cls = tessera.udf.builtin_udfs()[name]
    if name in PARAMS:
        kwargs, args = PARAMS[name]
        return cls(**kwargs), args
    required = [p.name for p in cls._tsr_schema.values() if p.required]
    missing = [p for p in required if p not in BY_NAME]
    assert not missing, (
        f"built-in UDF {name!r} has required parameters {missing}: add example values to "
        f"PARAMS in {__file__}")
    kwargs = {p: BY_NAME[p] for p in required}
    return cls(**kwargs), [a for p, v in kwargs.items() for a in ("--param", f"{name}.{p}={v}")]


@pytest.mark.parametrize("roi", [False, True], ids=["noroi", "roi"])
@pytest.mark.parametrize("dtype", ["<u2", "<i4", "<f4", ">u2", "<f8", "|u1"])
def test_every_builtin_equals_cli_and_numpy(cli, raw_file, tmp_path, dtype, roi):
    """Same options as the CLI's run (one thread, so that float merges happen in
    the same order): the same bits."""
    ctx = tessera.Context(threads=1, partitions=3)
    path, arr = raw_file(dtype, NAV, SIG)
    names = [n for n in tessera.udf.builtin_udfs() if not (roi and n == "pick")]
    udfs, args = [], []
    for n in names:
        u, a = _udf_and_args(n)
        udfs.append(u)
        args += a
    roi_mask = None
    if roi:
        rng = np.random.default_rng(3)
        roi_mask = rng.random(NAV) < 0.5
        roi_mask[0, 0] = True
        np.save(tmp_path / "roi.npy", roi_mask)
        args += ["--roi", tmp_path / "roi.npy"]
    ds = ctx.load("raw", path=path, nav_shape=NAV, sig_shape=SIG, dtype=np.dtype(dtype))
    assert ds.shape.nav == NAV and ds.shape.sig == SIG and ds.dtype == np.dtype(dtype)
    res = ctx.run_udf(dataset=ds, udf=udfs, roi=roi_mask)
    found = flat_results(res)
    want = cli(",".join(names), path, "--format", "raw", "--set",
               f"nav_shape={NAV[0]},{NAV[1]}", "--set", f"sig_shape={SIG[0]},{SIG[1]}",
               "--set", f"dtype={np.dtype(dtype).str}", "--threads", 1, "--partitions", 3,
               *args)
    assert sorted(found) == sorted(want)
    for key, w in want.items():
        f = found[key]
        assert f.dtype == w.dtype and f.shape == w.shape, key
        assert np.array_equal(f, w, equal_nan=True), f"{key}: Python and CLI differ"
    check(found, expected(arr, NAV, SIG, [n for n in names if n in ORACLE], roi=roi_mask,
                          masks=MASKS, picks=PICKS), f"{dtype} roi={roi}")


def test_each_builtin_alone(ctx, raw_file):
    path, arr = raw_file("<u2", NAV, SIG)
    ds = ctx.load("raw", path=path, nav_shape=NAV, sig_shape=SIG, dtype="<u2")
    for name in tessera.udf.builtin_udfs():
        u, _ = _udf_and_args(name)
        res = ctx.run_udf(dataset=ds, udf=u)
        assert isinstance(res, dict) and res
        if name in ORACLE:
            check({f"{name}.{k}": np.asarray(v) for k, v in res.items()},
                  expected(arr, NAV, SIG, [name], masks=MASKS, picks=PICKS), name)


def test_masks_from_arrays_and_helpers(ctx, raw_file):
    """Arrays and tessera.masks helpers give the same results as the engine's
    generator specs (and numpy)."""
    path, arr = raw_file("<u2", NAV, SIG)
    ds = ctx.load("raw", path=path, nav_shape=NAV, sig_shape=SIG, dtype="<u2")
    sy, sx = SIG
    helpers = [tessera.masks.circular(5, 3, sx, sy, 2.5), tessera.masks.ring(5, 3, sx, sy, 3, 1),
               tessera.masks.point(3.2, 4.7, sx, sy), tessera.masks.rectangular(1, 2, 4, 3, sx, sy)]
    by_spec = ctx.run_udf(dataset=ds, udf=tessera.udf.ApplyMasksUDF(mask=MASKS))
    by_list = ctx.run_udf(dataset=ds, udf=tessera.udf.ApplyMasksUDF(mask=helpers))
    by_stack = ctx.run_udf(dataset=ds, udf=tessera.udf.ApplyMasksUDF(
        mask=np.stack(helpers).astype(np.float32)))
    a = np.asarray(by_spec["intensity"])
    assert np.array_equal(a, np.asarray(by_list["intensity"]))
    assert np.array_equal(a, np.asarray(by_stack["intensity"]))
    ref = np.tensordot(arr.astype(np.float64), np.stack(helpers).astype(np.float64),
                       axes=((2, 3), (1, 2)))
    assert np.allclose(a, ref, rtol=1e-5)
    assert tessera.masks.to_spec("disk", 5, 3, 2.5) == "disk:5,3,2.5"


def test_npy_file_and_meta(ctx, tmp_path):
    arr = np.arange(3 * 4 * 5 * 6, dtype=">f4").reshape(3, 4, 5, 6)
    np.save(tmp_path / "a.npy", arr)
    ds = ctx.load("auto", path=tmp_path / "a.npy")
    assert ds.format == "npy"
    assert ds.shape == (3, 4, 5, 6) and ds.shape.nav == (3, 4) and ds.shape.sig == (5, 6)
    assert ds.shape.nav.size == 12 and ds.dtype == np.dtype(">f4")
    assert ds.image_count == 12
    assert isinstance(ds.meta, dict)
    res = ctx.run_udf(dataset=ds, udf=tessera.udf.SumUDF())
    assert np.array_equal(res["intensity"].data, arr.astype(np.float64).sum(axis=(0, 1)))


@pytest.mark.parametrize("executor", ["threads", "inline"])
def test_memory_dataset_and_executors(executor):
    rng = np.random.default_rng(5)
    arr = rng.integers(0, 1000, (5, 4, 9, 8)).astype(np.uint16)
    with tessera.Context(threads=2, executor=executor) as c:
        ds = c.load("memory", data=arr)
        assert ds.format == "memory" and ds.shape.sig == (9, 8)
        res = c.run_udf(dataset=ds, udf=[tessera.udf.SumUDF(), tessera.udf.SumSigUDF()])
        assert np.array_equal(res[0]["intensity"].data, arr.sum(axis=(0, 1), dtype=np.int64))
        assert np.array_equal(res[1]["intensity"].data, arr.sum(axis=(2, 3), dtype=np.int64))
        ds1 = c.load("memory", data=arr, sig_dims=1)
        assert ds1.shape.nav == (5, 4, 9) and ds1.shape.sig == (8,)
        ds2 = c.load("memory", data=arr, nav_shape=(20,), sig_shape=(72,))
        r2 = c.run_udf(dataset=ds2, udf=tessera.udf.SumSigUDF())
        assert np.array_equal(r2["intensity"].data, arr.reshape(20, 72).sum(axis=1))


def test_corrections(ctx, raw_file):
    from oracle import correct
    path, arr = raw_file("<u2", NAV, SIG)
    rng = np.random.default_rng(9)
    dark = rng.random(SIG).astype(np.float32) * 100
    gain = (rng.random(SIG) + 0.5).astype(np.float32)
    excl = np.zeros(SIG, bool)
    excl[2, 3] = excl[5, 9] = True
    ds = ctx.load("raw", path=path, nav_shape=NAV, sig_shape=SIG, dtype="<u2")
    res = ctx.run_udf(dataset=ds, udf=tessera.udf.SumUDF(), corrections=tessera.CorrectionSet(
        dark=dark, gain=gain, excluded_pixels=np.array(np.nonzero(excl))))
    ref = correct(arr, dark, gain, excl).sum(axis=(0, 1))
    assert np.allclose(res["intensity"].data, ref, rtol=1e-5)
    res2 = ctx.run_udf(dataset=ds, udf=tessera.udf.SumUDF(),
                       corrections={"dark": dark, "excluded_pixels": excl})
    assert np.allclose(res2["intensity"].data, correct(arr, dark, None, excl).sum(axis=(0, 1)),
                       rtol=1e-5)


def test_com_guess_equals_cli(tsr_bin, tmp_path):
    """ctx.guess finds the CLI's `--guess` numbers (the same engine call),
    which are the rotation and flip the data were made with; the UDF it
    returns runs with them."""
    import os
    import pathlib
    import subprocess
    import sys
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tests" / "gen"))
    import gen_analyses as ga
    d = ga.com_dataset(nav=(20, 22), sig=(36, 38), rot_deg=-65.0, flip_y=True, seed=4)
    path = tmp_path / "dpc.npy"
    np.save(path, d["frames"])
    roi = np.ones((20, 22), bool)
    roi[3:6, 4:9] = False
    np.save(tmp_path / "roi.npy", roi)
    with tessera.Context(threads=2) as ctx:
        ds = ctx.load("auto", path=path)
        u = ctx.guess(ds, tessera.udf.CoMUDF(r=14, regression=1), roi=roi)
        assert isinstance(u, tessera.udf.CoMUDF)
        p = u.params
        assert p["r"] == 14 and p["regression"] == 1 and p["flip_y"] is True
        assert abs((p["scan_rotation"] + 65.0 + 180) % 360 - 180) < 0.5, p
        res = ctx.run_udf(dataset=ds, udf=u, roi=roi)
        with pytest.raises(tessera.UnsupportedError, match="sum"):
            ctx.guess(ds, tessera.udf.SumUDF())
        with pytest.raises(TypeError, match="built-in"):
            ctx.guess(ds, object())
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # as conftest's cli
    cp = subprocess.run([tsr_bin, "run", "com", str(path), "--guess", "--param", "r=14",
                         "--param", "regression=1", "--roi", str(tmp_path / "roi.npy"),
                         "--threads", "2", "-o", f"{tmp_path}/out/"], capture_output=True,
                        text=True, env=env, timeout=120)
    assert cp.returncode == 0, cp.stderr
    got = dict(line[len("guess com "):].split("=", 1) for line in cp.stdout.splitlines()
               if line.startswith("guess com "))
    assert set(got) == {"cy", "cx", "scan_rotation", "flip_y"}
    for k in ("cy", "cx", "scan_rotation"):
        assert p[k] == float(got[k]), k
    assert got["flip_y"] == "true"
    for k, v in res.items():
        assert np.array_equal(v.data, np.load(tmp_path / "out" / f"com.{k}.npy"),
                              equal_nan=True), k


@pytest.mark.parametrize("roi", [False, True], ids=["noroi", "roi"])
@pytest.mark.parametrize("dtype", ["<u2", "<f4"])
def test_analyses_equal_numpy(tmp_path, dtype, roi):
    """The analyses of docs/analyses.md through Python against the numpy
    oracles of the CLI's suite (tests/integration/test_analyses.py,
    test_com.py), in one pass with a ROI and several partitions (the CLI's
    answers are compared in test_every_builtin_equals_cli_and_numpy)."""
    import test_analyses as ta
    import test_com as tc
    nav, sig = (6, 7), (24, 30)
    data = ta.random_frames(dtype, nav=nav, sig=sig, seed=19)
    sel = None
    if roi:
        sel = np.random.default_rng(6).random(nav) < 0.6
        sel[0, 0] = True
    thr, xray = (40000, 55000) if dtype == "<u2" else (700.5, 880.25)
    U = tessera.udf
    udfs = [
        U.CoMUDF(cy=11.3, cx=14.8, r=9, ri=2, scan_rotation=25, flip_y=True, regression=1),
        U.RadialProfileUDF(cx=14.3, cy=11.8, ri=1, ro=13, n_bins=6),
        U.FEMUDF(cx=14.3, cy=11.8, ri=3, ro=10),
        U.RadialFourierUDF(cx=14.3, cy=11.8, ri=2, ro=10, n_bins=2, max_order=6),
        U.CrystallinityUDF(rad_in=2, rad_out=8, real_rad=3),
        U.LogsumUDF(), U.MaxUDF(), U.MinUDF(),
        U.CountThresholdUDF(n_samples=9),
        U.CountUDF(threshold=thr, xray=xray, output=tmp_path / "ev.toml"),
    ]
    with tessera.Context(threads=2, partitions=5) as ctx:
        ds = ctx.load("memory", data=data)
        com, rp, fem, rf, cr, ls, mx, mn, ct, cn = ctx.run_udf(dataset=ds, udf=udfs, roi=sel)
    tc.check_all({f"com.{k}": np.asarray(v) for k, v in com.items()},
                 tc.com_oracle(data, 11.3, 14.8, r=9, ri=2, rot=25, flip=True, regression=1,
                               roi=sel))
    want, pixels, radius = ta.radial_profile_oracle(data, cx=14.3, cy=11.8, ri=1, ro=13,
                                                    n_bins=6)
    ta.close(rp["intensity"].data, ta.masked_nav(want, sel), "radial_profile")
    assert np.array_equal(rp["pixels"].data, pixels)
    ta.close(rp["radius"].data, radius, "radius", rtol=1e-12)
    ta.close(fem["intensity"].data, ta.masked_nav(ta.fem_oracle(data, 14.3, 11.8, 3, 10), sel),
             "fem")
    want = ta.radial_fourier_oracle(data, 14.3, 11.8, 2, 10, 2, 6)
    scale = np.abs(want).max(axis=-1, keepdims=True)
    got = rf["complex"].data
    ok = np.ones(nav, bool) if sel is None else sel
    assert np.isnan(got[~ok]).all()
    ta.close(got[ok].real, want[ok].real, "radial_fourier", scale=scale[ok])
    ta.close(got[ok].imag, want[ok].imag, "radial_fourier", scale=scale[ok])
    ta.close(cr["intensity"].data, ta.masked_nav(ta.crystallinity_oracle(data, 2, 8, 3), sel),
             "crystallinity")
    frames = data.reshape((-1,) + sig)
    chosen = frames if sel is None else frames[sel.reshape(-1)]
    ta.close(ls["logsum"].data, ta.logsum_oracle(chosen), "logsum", rtol=1e-12)
    assert np.array_equal(mx["intensity"].data, chosen.max(axis=0))
    assert np.array_equal(mn["intensity"].data, chosen.min(axis=0))
    picked = [i * 42 // 9 for i in range(9)]
    picked = [i for i in picked if sel is None or sel.flat[i]]
    want = ta.threshold_oracle(frames[picked])
    for k, name in enumerate(["threshold", "xray", "mean", "std"]):
        ta.close(ct[name].data, want[k], name, rtol=1e-9)
    m, _, _ = ta.read_csr(tmp_path / "ev.toml")
    for f in range(len(frames)):
        w = ta.count_oracle(frames[f], thr, xray) if sel is None or sel.flat[f] else []
        assert np.array_equal(m.indices[m.indptr[f]:m.indptr[f + 1]], w), f"frame {f}"
    assert np.array_equal(cn["events"].raw_data, np.diff(m.indptr)[ok.reshape(-1)])
    assert m.nnz > 10
