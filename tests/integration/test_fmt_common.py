"""The parameters every format shares (issue 4, item 9): `nav_shape`,
`sig_shape` and `sync_offset` behave for every file format as for `raw`.

Each case writes a file with the format's generator (tests/gen/gen_*.py) from
a known numpy array of frames (n, *sig) and reads it back through the CLI:

- `nav_shape` reshapes the frames into a scan: `sumsig` has the scan's shape
  and the totals of numpy's reshaped frames; `pick` at (y, x) is frame
  y * width + x;
- `sig_shape` reshapes each frame keeping its pixels in C order (sum and
  pick against numpy's reshape);
- `sync_offset` k: frame i is image i + k, and images outside the file are
  zero frames (docs/architecture.md "Frame numbering"), for positive and
  negative k, combined with a `nav_shape` smaller than the file;
- the common errors: a sync_offset out of range, a nav_shape larger than
  the file, a sig_shape with another number of pixels.

The oracle is numpy on the array written (for SER: TIA stores 2-D elements
bottom row first, which the format's own tests check against HyperSpy, so
the frames are that array with its rows reversed).
"""

import json
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_blo  # noqa: E402
import gen_dm  # noqa: E402
import gen_empad  # noqa: E402
import gen_mib  # noqa: E402
import gen_mrc  # noqa: E402
import gen_seq  # noqa: E402
import gen_ser  # noqa: E402
import gen_tvips  # noqa: E402

N = 12  # frames in every generated file
NAV = (3, 4)


def rand(rng, dtype, shape):
    dt = np.dtype(dtype)
    if dt.kind in "iu":
        ii = np.iinfo(dt)
        return rng.integers(ii.min, ii.max, shape, endpoint=True, dtype=dt)
    return rng.standard_normal(shape).astype(dt)


# Each writer: (folder, rng) -> (path to open, frames (N, *sig) as the reader
# must give them, extra CLI arguments).

def w_raw(d, rng):
    a = rand(rng, "<u2", (N, 6, 10))
    p = d / "a.raw"
    a.tofile(p)
    return p, a, ["--format", "raw", "--set", "dtype=<u2", "--set", "sig_shape=6,10",
                  "--set", f"nav_shape={N}"]


def w_mib(d, rng):
    a = gen_mib.random_frames(rng, N, (64, 256), 12).astype(np.uint16)
    _, paths = gen_mib.write_acquisition(d, "m", a, 12, hdr=False)
    return paths[0], a, []


def w_mib_files(d, rng):
    # three files with a .hdr: frames cross file boundaries
    a = gen_mib.random_frames(rng, N, (256, 256), 6).astype(np.uint8)
    hp, _ = gen_mib.write_acquisition(d, "f", a, 6, files=3)
    return hp, a, []


def w_mib_raw1_quad(d, rng):
    a = gen_mib.random_frames(rng, N, (512, 512), 1).astype(np.uint8)
    _, paths = gen_mib.write_acquisition(d, "r1", a, 1, raw=True, quad=True, hdr=False)
    return paths[0], a, []


def w_mib_raw12_quad(d, rng):
    a = gen_mib.random_frames(rng, N, (512, 512), 12).astype(np.uint16)
    _, paths = gen_mib.write_acquisition(d, "r12", a, 12, raw=True, quad=True, hdr=False)
    return paths[0], a, []


def w_mib_raw24(d, rng):
    a = gen_mib.random_frames(rng, N, (256, 256), 24).astype(np.uint32)
    _, paths = gen_mib.write_acquisition(d, "r24", a, 24, raw=True, hdr=False)
    return paths[0], a, []


def w_dm_stack(d, rng):
    a = rand(rng, "<i2", (N, 6, 10))
    p = d / "s.dm3"
    gen_dm.write_dm(p, a, version=3)
    return p, a, []


def w_dm_4d_sig_first(d, rng):
    a = rand(rng, "<f4", NAV + (6, 10))
    p = d / "f.dm4"
    gen_dm.write_dm(p, a, version=4, layout="sig_first")
    return p, a.reshape((N, 6, 10)), []


def w_dm_4d_c(d, rng):
    a = rand(rng, "<u4", NAV + (6, 10))
    p = d / "c.dm4"
    gen_dm.write_dm(p, a, version=4, swapped_tag=1)
    return p, a.reshape((N, 6, 10)), []


def w_ser_2d(d, rng):
    a = rand(rng, "<u2", (N, 6, 10))
    p = gen_ser.write_ser(d / "i_1.ser", a, total=N + 3)
    return p, a[:, ::-1, :], []


def w_ser_1d(d, rng):
    a = rand(rng, "<i4", (N, 40))
    p = gen_ser.write_ser(d / "s_1.ser", a, version=0x220)
    return p, a, []


def w_mrc(d, rng):
    a = rand(rng, "<f4", (N, 6, 10))
    p = d / "a.mrc"
    gen_mrc.write_mrc(p, a)
    return p, a, []


def w_mrc_be_i2(d, rng):
    a = rand(rng, "<i2", (N, 6, 10))
    p = d / "b.mrc"
    gen_mrc.write_mrc(p, a, byteorder=">")
    return p, a, []


def w_blo8(d, rng):
    a = rand(rng, "u1", NAV + (8, 8))
    p = gen_blo.write_blo(d / "a.blo", a)
    return p, a.reshape(N, 8, 8), []


def w_blo16(d, rng):
    a = rand(rng, "<u2", NAV + (8, 8))
    p = gen_blo.write_blo(d / "b.blo", a)
    return p, a.reshape(N, 8, 8), []


def w_empad(d, rng):
    a = rand(rng, "<f4", (N, 128, 128))
    gen_empad.write_empad(d / "e.xml", (N,), a)
    return d / "e.xml", a, []


def w_seq16(d, rng):
    a = rand(rng, "<u2", (N, 6, 10))
    p = d / "a.seq"
    gen_seq.write_seq(p, a, version=5, footer=8)
    return p, a, []


def w_seq8_old(d, rng):
    a = rand(rng, "u1", (N, 6, 10))
    p = d / "b.seq"
    gen_seq.write_seq(p, a, version=3, footer=100)
    return p, a, []


def w_tvips_series(d, rng):
    a = rand(rng, "<u2", (N, 6, 10))
    paths = gen_tvips.write_tvips(d / "t_000.tvips", a, version=2, hb=76, parts=[5, 4, 3])
    return pathlib.Path(paths[1]), a, []


def w_tvips_v1(d, rng):
    a = rand(rng, "u1", (N, 6, 10))
    paths = gen_tvips.write_tvips(d / "v1.tvips", a, version=1)
    return pathlib.Path(paths[0]), a, []


CASES = {
    "raw": ("raw", w_raw),
    "mib-u16": ("mib", w_mib),
    "mib-files-hdr": ("mib", w_mib_files),
    "mib-raw1-quad": ("mib", w_mib_raw1_quad),
    "mib-raw12-quad": ("mib", w_mib_raw12_quad),
    "mib-raw24": ("mib", w_mib_raw24),
    "dm3-stack": ("dm", w_dm_stack),
    "dm4-4d-sig-first": ("dm", w_dm_4d_sig_first),
    "dm4-4d-c": ("dm", w_dm_4d_c),
    "ser-2d-elements": ("ser", w_ser_2d),
    "ser-1d-elements": ("ser", w_ser_1d),
    "mrc-f4": ("mrc", w_mrc),
    "mrc-i2-big-endian": ("mrc", w_mrc_be_i2),
    "blo-8bit": ("blo", w_blo8),
    "blo-16bit": ("blo", w_blo16),
    "empad": ("empad", w_empad),
    "seq-16bit": ("seq", w_seq16),
    "seq-8bit-old-header": ("seq", w_seq8_old),
    "tvips-v2-series": ("tvips", w_tvips_series),
    "tvips-v1": ("tvips", w_tvips_v1),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request, tmp_path_factory):
    fmt, writer = CASES[request.param]
    d = tmp_path_factory.mktemp(request.param)
    rng = np.random.default_rng(sum(map(ord, request.param)))
    path, frames, args = writer(d, rng)
    assert frames.shape[0] == N
    return fmt, pathlib.Path(path), np.ascontiguousarray(frames), args


def info(run, path, *args):
    return json.loads(run("info", path, *args, "--json").stdout)


def sets(**kw):
    return [a for k, v in kw.items() for a in ("--set", f"{k}={v}")]


def shape_arg(shape):
    return ",".join(map(str, shape))


def other_sig(sig):
    """A different sig shape with the same number of pixels."""
    if len(sig) == 1:
        return (4, sig[0] // 4)
    h, w = sig
    return (w, h) if h != w else (2 * h, w // 2)


def shifted(frames, k):
    """Frames as read with sync_offset k: frame i is image i + k, zero where
    that is outside the file."""
    out = np.zeros_like(frames)
    n = frames.shape[0]
    for i in range(n):
        if 0 <= i + k < n:
            out[i] = frames[i + k]
    return out


def totals(frames):
    return frames.reshape(frames.shape[0], -1).astype(np.float64).sum(axis=1)


def assert_totals(got, want, what):
    if np.issubdtype(want.dtype, np.floating):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def picks(positions):
    return [a for p in positions for a in ("--param", "nav=" + shape_arg(np.atleast_1d(p)))]


def test_opens_as_the_format(case, run):
    fmt, path, frames, args = case
    i = info(run, path, *args)
    assert i["format"] == fmt
    assert i["image_count"] == N
    assert tuple(i["sig_shape"]) == frames.shape[1:]
    assert np.dtype(i["typestr"]).newbyteorder("=") == frames.dtype.newbyteorder("=")


def test_nav_shape(case, run, run_udfs):
    fmt, path, frames, args = case
    i = info(run, path, *args, *sets(nav_shape=shape_arg(NAV)))
    assert tuple(i["nav_shape"]) == NAV and tuple(i["sig_shape"]) == frames.shape[1:]
    pos = [(0, 0), (2, 1), (1, 3), (2, 3)]
    res = run_udfs("sumsig,pick", path, *args, *sets(nav_shape=shape_arg(NAV)), *picks(pos))
    assert res["sumsig.intensity"].shape == NAV
    assert_totals(res["sumsig.intensity"], totals(frames).reshape(NAV), f"{fmt} nav_shape")
    want = np.stack([frames.reshape(NAV + frames.shape[1:])[p] for p in pos])
    np.testing.assert_array_equal(res["pick.intensity"], want)
    # a scan of fewer frames than the file holds: the first ones
    res = run_udfs("sumsig", path, *args, *sets(nav_shape="2,5"))
    assert_totals(res["sumsig.intensity"], totals(frames[:10]).reshape(2, 5), f"{fmt} 2x5")


def test_sig_shape(case, run, run_udfs):
    fmt, path, frames, args = case
    sig = other_sig(frames.shape[1:])
    i = info(run, path, *args, *sets(sig_shape=shape_arg(sig)))
    assert tuple(i["sig_shape"]) == sig, (fmt, i["sig_shape"])
    assert i["image_count"] == N
    res = run_udfs("sum,pick", path, *args, *sets(sig_shape=shape_arg(sig), nav_shape=N),
                   *picks([5, 11]))
    re = frames.reshape((N,) + sig)
    np.testing.assert_array_equal(res["pick.intensity"], re[[5, 11]])
    want = re.astype(np.float64).sum(axis=0)
    assert res["sum.intensity"].shape == sig
    assert_totals(res["sum.intensity"], want, f"{fmt} sig_shape")
    # a flat frame too, with a scan
    flat = (int(np.prod(frames.shape[1:])),)
    res = run_udfs("pick", path, *args,
                   *sets(sig_shape=shape_arg(flat), nav_shape=shape_arg(NAV)), *picks([(1, 2)]))
    np.testing.assert_array_equal(res["pick.intensity"][0], frames[6].reshape(flat))


@pytest.mark.parametrize("k", [3, -5, 1 - N, N - 1])
def test_sync_offset(case, run, run_udfs, k):
    fmt, path, frames, args = case
    want = shifted(frames, k)
    res = run_udfs("sumsig,pick", path, *args, *sets(sync_offset=k, nav_shape=shape_arg(NAV)),
                   *picks(range(N)))
    assert_totals(res["sumsig.intensity"], totals(want).reshape(NAV), f"{fmt} sync_offset={k}")
    np.testing.assert_array_equal(res["pick.intensity"], want)


def test_sync_offset_with_fewer_frames(case, run_udfs):
    """A scan smaller than the file, shifted either way."""
    fmt, path, frames, args = case
    for k in (4, -2):
        want = shifted(frames, k)[:6]
        res = run_udfs("sumsig,pick", path, *args, *sets(sync_offset=k, nav_shape="2,3"),
                       *picks([(0, 0), (0, 2), (1, 0), (1, 2)]))
        assert_totals(res["sumsig.intensity"], totals(want).reshape(2, 3),
                      f"{fmt} sync_offset={k} nav 2x3")
        np.testing.assert_array_equal(res["pick.intensity"], want[[0, 2, 3, 5]])


def test_common_errors(case, fails):
    fmt, path, frames, args = case
    for k in (N, -N, 10 * N):
        msg = fails("info", path, *args, *sets(sync_offset=k))
        assert "sync_offset" in msg and str(k) in msg, (fmt, msg)
    msg = fails("info", path, *args, *sets(nav_shape=f"{N + 1}"))
    assert "nav_shape" in msg and str(N) in msg, (fmt, msg)
    if fmt != "raw":  # for raw, sig_shape is the stored frame, not a reshape
        npx = int(np.prod(frames.shape[1:]))
        msg = fails("info", path, *args, *sets(sig_shape=f"{npx + 1}"))
        assert "sig_shape" in msg and str(npx) in msg, (fmt, msg)
    msg = fails("info", path, *args, *sets(nav_shape="0,4"))
    assert "nav_shape" in msg, (fmt, msg)


# ---------------------------------------------------------------------------
# Messages quote bytes of broken files as printable text


def fails_bytes(tsr_bin, *args):
    """stderr (bytes) of a failing `tessera` that did not crash."""
    import subprocess
    r = subprocess.run([tsr_bin, *map(str, args)], capture_output=True, timeout=60,
                       stdin=subprocess.DEVNULL)
    assert 0 < r.returncode < 128, r
    return r.stderr


def assert_printable(msg, path):
    text = msg.decode("utf-8")  # valid UTF-8 (JSON, Python and terminals need it)
    assert str(path) in text, text
    assert all(c == "\n" or c.isprintable() for c in text), text


def test_mib_fields_quoted_printable(tmp_path, tsr_bin):
    rng = np.random.default_rng(5)
    a = gen_mib.random_frames(rng, 4, (512, 512), 1)
    _, paths = gen_mib.write_acquisition(tmp_path, "q", a, 1, raw=True, quad=True, hdr=False)
    b = bytearray(pathlib.Path(paths[0]).read_bytes())
    i = b.index(b"   2x2,")
    b[i + 2] = 0xFF  # the layout field of the first frame header
    pathlib.Path(paths[0]).write_bytes(bytes(b))
    msg = fails_bytes(tsr_bin, "info", paths[0])
    assert_printable(msg, paths[0])
    assert b"layout" in msg, msg
    # a file of an acquisition whose layout differs from the first file's
    a = gen_mib.random_frames(rng, 4, (256, 256), 6)
    hp, paths = gen_mib.write_acquisition(tmp_path, "two", a, 6, files=2)
    b = bytearray(pathlib.Path(paths[1]).read_bytes())
    i = b.index(b"   1x1,")
    b[i + 2] = 0x81
    pathlib.Path(paths[1]).write_bytes(bytes(b))
    msg = fails_bytes(tsr_bin, "info", hp)
    assert_printable(msg, hp)
    assert b"layout" in msg, msg


@pytest.mark.parametrize("xml", [
    b'<root><raw_file filename="x.raw"/><soft\xffware>1</software></root>',
    b'<ro\xfft><raw_file filename="x.raw"/></ro\xfft>',
    b'<root><raw_file filename="x.raw"/><pix_x>\xfe\x01</pix_x><pix_y>2</pix_y></root>',
    b'<root><raw_file filename="x.raw"/><type>sc\xc3an</type></root>',
])
def test_empad_xml_quoted_printable(tmp_path, tsr_bin, xml):
    gen_empad.write_raw(tmp_path / "x.raw", 4, lambda i: np.zeros((128, 128), "<f4"))
    p = tmp_path / "bad.xml"
    p.write_bytes(xml)
    assert_printable(fails_bytes(tsr_bin, "info", p, "--format", "empad"), p)
