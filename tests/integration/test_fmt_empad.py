"""The `empad` format: an EMPAD .xml and its .raw of 128×130 float32 frames
(two footer rows dropped).

$TSR_TESTDATA/empad holds only the .xml files of real acquisitions (no
.raw): their scan shapes are checked against SOURCES.md and against the XML
read here with xml.etree; to read pixels, each XML is copied to a temporary
folder beside a .raw written here (as RosettaSciIO's tests do), and the
result is compared with numpy on the published layout and with HyperSpy
1.7.3.  Generated pairs (tests/gen/gen_empad.py) cover the rest, then bad
input.
"""

import json
import pathlib
import re
import shutil
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "gen"))
import gen_empad  # noqa: E402

FRAME_RAW = 128 * 130 * 4


def info(run, path, *args):
    return json.loads(run("info", path, *args, "--json").stdout)


def picks_all(run_udfs, path, n, *args):
    pargs = [a for i in range(n) for a in ("--param", f"nav={i}")]
    return run_udfs("pick", path, *pargs, *args)["pick.intensity"]


def sources_facts(testdata):
    """{xml name: (raw name, array shape, raw bytes)} from SOURCES.md."""
    text = (testdata / "SOURCES.md").read_text()
    facts = {}
    for m in re.finditer(r"^### `empad/([^`]+)`\n((?:- .*\n)+)", text, re.M):
        d = re.search(r"Declares raw file `([^`]+)`; expected array \(([\d, ]+)\) float32 from "
                      r"(\d+) raw bytes", m.group(2))
        if d:
            facts[m.group(1)] = (d.group(1), tuple(int(s) for s in d.group(2).split(",")),
                                 int(d.group(3)))
    return facts


def xml_scan(path):
    """(raw file name, nav shape) read from the XML with xml.etree, by the
    readers' rules: a series is (count,); pix_x/pix_y; else the acquire
    scan resolution (y, x)."""
    root = ET.parse(path).getroot()
    raw = root.find("raw_file").attrib["filename"]
    sc = root.find("scan_parameters/series_count")
    typ = root.find("type")
    if sc is not None or (typ is not None and typ.text == "series"):
        n = sc if sc is not None else root.find("count")
        return raw, (int(n.text),)
    if root.find("pix_x") is not None:
        return raw, (int(root.find("pix_y").text), int(root.find("pix_x").text))
    acq = [e for e in root.findall("scan_parameters") if e.attrib.get("mode") == "acquire"][0]
    return raw, (int(acq.find("scan_resolution_y").text), int(acq.find("scan_resolution_x").text))


def real_xmls(testdata):
    xmls = sorted((testdata / "empad").glob("*.xml"))
    assert len(xmls) >= 3, xmls
    return xmls


def stage(xml, folder, data=None):
    """Copy xml into folder with a .raw beside it: data (n, 130, 128) float32,
    or a sparse file of the declared size (zeros)."""
    dst = folder / xml.name
    shutil.copy(xml, dst)
    raw_name, nav = xml_scan(xml)
    raw = folder / raw_name
    if data is None:
        with open(raw, "wb") as f:
            f.truncate(int(np.prod(nav)) * FRAME_RAW)
    else:
        data.astype("<f4").tofile(raw)
    return dst, raw, nav


def test_real_xmls_give_the_scan(testdata, tmp_path, run):
    facts = sources_facts(testdata)
    for xml in real_xmls(testdata):
        raw_name, shape, nbytes = facts[xml.name]
        assert xml_scan(xml) == (raw_name, shape[:-2]), xml
        folder = tmp_path / xml.stem
        folder.mkdir()
        dst, raw, nav = stage(xml, folder)
        assert raw.stat().st_size == nbytes
        inf = info(run, dst)
        assert inf["format"] == "empad", inf
        assert (tuple(inf["nav_shape"]), inf["sig_shape"], inf["typestr"]) == (
            shape[:-2], [128, 128], "<f4"), (xml, inf)
        assert inf["image_count"] == np.prod(shape[:-2])
        meta = inf["meta"]
        assert meta["header"]["raw_file"] == raw_name
        assert meta["files"] == [str(dst), str(raw)]
        assert meta["detector"] == "EMPAD"


def test_real_xml_without_its_raw(testdata, fails):
    """The samples lack their .raw: a clear error naming it."""
    for xml in real_xmls(testdata):
        raw_name, _ = xml_scan(xml)
        msg = fails("info", xml)
        assert str(xml) in msg and str(xml.parent / raw_name) in msg, msg
        assert "cannot be opened" in msg and "No such file" in msg, msg


@pytest.fixture(scope="module")
def hs():
    import hyperspy.api as hs_
    return hs_


@pytest.mark.parametrize("name", ["map4x4.xml", "stack_images.xml"])
def test_real_xml_with_data_against_numpy_and_hyperspy(testdata, tmp_path, run, run_udfs, hs,
                                                       name):
    xml = testdata / "empad" / name
    _, nav = xml_scan(xml)
    n = int(np.prod(nav))
    raw_data = np.arange(n * 130 * 128, dtype=np.float32).reshape(n, 130, 128)
    dst, raw, _ = stage(xml, tmp_path, raw_data)
    ref = raw_data[:, :128, :]  # the published layout: drop rows 128, 129
    got = picks_all(run_udfs, dst, n)
    np.testing.assert_array_equal(got, ref)
    s = hs.load(str(dst), lazy=False)
    np.testing.assert_array_equal(got, s.data.reshape(n, 128, 128))
    res = run_udfs("sum,sumsig", dst)
    np.testing.assert_allclose(res["sum.intensity"], ref.astype(np.float64).sum(axis=0),
                               rtol=1e-6)
    np.testing.assert_allclose(res["sumsig.intensity"],
                               ref.astype(np.float64).sum(axis=(1, 2)).reshape(nav), rtol=1e-6)
    # calibrations: the detector pixel as HyperSpy reads it
    cal = info(run, dst)["meta"].get("calibration", {})
    sig_ref = [a for a in s.axes_manager._axes if not a.navigate]
    root = ET.parse(xml).getroot()
    px = root.find("iom_measurements/calibrated_pixelsize")
    if px is None:
        assert "sig" not in cal
    else:
        assert len(cal["sig"]) == 2
        for ours, ref_ax in zip(cal["sig"], sig_ref):
            assert ours["scale"] == pytest.approx(ref_ax.scale, rel=1e-12)
            assert ours["offset"] == pytest.approx(ref_ax.offset, rel=1e-12)
            assert ours["units"] == ref_ax.units == "1/nm"
    fov = root.find("iom_measurements/optics.get_full_scan_field_of_view")
    if fov is not None and len(nav) == 2:
        fx, fy = json.loads(fov.text)
        (cy, cx) = cal["nav"]
        assert (cy["scale"], cx["scale"]) == (pytest.approx(fy / nav[0]), pytest.approx(fx / nav[1]))
        assert cy["units"] == cx["units"] == "m"
    else:
        assert "nav" not in cal


def test_v122_xml_scan_is_y_x(testdata, tmp_path, run, run_udfs):
    """scan_x32_y64: 32 columns, 64 rows; the last frame is readable."""
    xml = testdata / "empad" / "EMPAD_v1.2.2_x32_y64_size0.8.xml"
    dst, raw, nav = stage(xml, tmp_path)
    assert nav == (64, 32)
    inf = info(run, dst)
    assert inf["nav_shape"] == [64, 32]
    assert inf["meta"]["header"]["scan_shape_from"] == "scan_parameters mode=acquire"
    got = run_udfs("pick", dst, "--param", "nav=63,31")["pick.intensity"]
    assert got.shape == (1, 128, 128) and not got.any()


# ---------------------------------------------------------------------------
# Generated pairs


def frames_for(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(100, 30, size=(n, 128, 128)).astype("<f4")


@pytest.mark.parametrize("style,nav", [("v051", (3, 4)), ("v122", (2, 5)), ("series", (6,))])
def test_generated_pairs(tmp_path, run, run_udfs, style, nav):
    n = int(np.prod(nav))
    frames = frames_for(n, seed=n)
    xml = tmp_path / "acq.xml"
    raw = gen_empad.write_empad(xml, nav, frames, style=style)
    # the footer rows are really in the file, with their own values
    stored = np.fromfile(raw, "<f4").reshape(n, 130, 128)
    assert (stored[:, 128:] == -1).all()
    np.testing.assert_array_equal(stored[:, :128], frames)
    inf = info(run, xml)
    assert (tuple(inf["nav_shape"]), inf["sig_shape"]) == (nav, [128, 128])
    np.testing.assert_array_equal(picks_all(run_udfs, xml, n), frames)
    res = run_udfs("sum,sumsig", xml, "--tile-bytes", "20000")
    f64 = frames.astype(np.float64)
    np.testing.assert_allclose(res["sum.intensity"], f64.sum(axis=0), rtol=1e-6)
    np.testing.assert_allclose(res["sumsig.intensity"], f64.sum(axis=(1, 2)).reshape(nav),
                               rtol=1e-6)
    # sync_offset and nav_shape behave as for raw
    res = run_udfs("sumsig", xml, "--set", "sync_offset=1", "--set", f"nav_shape={n - 1}")
    np.testing.assert_allclose(res["sumsig.intensity"], f64.sum(axis=(1, 2))[1:], rtol=1e-6)


def test_search_mode_fallback(tmp_path, run, run_udfs):
    """The .raw holds the 'search' scan, not the 'acquire' one."""
    frames = frames_for(6)
    xml = tmp_path / "s.xml"
    (tmp_path / "data.raw").write_bytes(b"")
    text = gen_empad.empad_xml("data.raw", (4, 5), "v122", search=(2, 3))
    xml.write_text(text)
    gen_empad.write_raw(tmp_path / "data.raw", 6, frames.__getitem__)
    inf = info(run, xml)
    assert inf["nav_shape"] == [2, 3]
    assert inf["meta"]["header"]["scan_shape_from"] == "scan_parameters mode=search"
    np.testing.assert_array_equal(picks_all(run_udfs, xml, 6), frames)


def test_raw_opens_alone(tmp_path, run, run_udfs, fails):
    frames = frames_for(6, seed=9)
    raw = gen_empad.write_empad(tmp_path / "a.xml", (2, 3), frames)
    assert pathlib.Path(raw).name == "scan_x3_y2.raw"
    inf = info(run, raw)  # auto-detected by the software's file name
    assert (inf["format"], inf["nav_shape"]) == ("empad", [2, 3])
    np.testing.assert_array_equal(picks_all(run_udfs, raw, 6), frames)
    other = tmp_path / "renamed.raw"
    shutil.copy(raw, other)
    assert "format raw" in fails("info", other)  # no telling name: raw's, not ours
    inf = info(run, other, "--format", "empad")
    assert inf["nav_shape"] == [6]
    inf = info(run, other, "--format", "empad", "--set", "nav_shape=3,2")
    assert inf["nav_shape"] == [3, 2]
    with open(other, "ab") as f:
        f.write(b"\0" * 10)
    msg = fails("info", other, "--format", "empad")
    assert str(other) in msg and "whole number" in msg, msg


def test_size_mismatch(tmp_path, run, fails):
    frames = frames_for(6)
    xml = tmp_path / "m.xml"
    raw = pathlib.Path(gen_empad.write_empad(xml, (2, 3), frames))
    with open(raw, "r+b") as f:
        f.truncate(5 * FRAME_RAW)
    msg = fails("info", xml)
    assert str(raw) in msg and str(5 * FRAME_RAW) in msg and str(6 * FRAME_RAW) in msg, msg
    assert "(2, 3)" in msg and "pix_y, pix_x" in msg, msg
    # a nav_shape that fits reads part of it; one that does not is refused
    assert info(run, xml, "--set", "nav_shape=5")["nav_shape"] == [5]
    msg = fails("info", xml, "--set", "nav_shape=2,3")
    assert "6 frames" in msg and "holds 5" in msg, msg
    empty = tmp_path / "e.xml"
    gen_empad.write_empad(empty, (1,), frames[:1], style="series")
    (tmp_path / "series_x1.raw").write_bytes(b"")
    msg = fails("info", empty)
    assert "series_x1.raw" in msg and "0 bytes" in msg, msg


BAD_XML = [
    ('<root><raw_file filename="x.raw"/><pix_x>2</pix_x><pix_y>2</pix_y>', ["well-formed", "ends inside <root>"]),
    ('<root><raw_file filename="x.raw"/></wrong></root>', ["well-formed", "</wrong>"]),
    ('<other><raw_file filename="x.raw"/></other>', ["<other>", "expected <root>"]),
    ("<root><pix_x>2</pix_x><pix_y>2</pix_y><scan_parameters/></root>", ["raw_file"]),
    ('<root><raw_file filename="x.raw"/><pix_x>two</pix_x><pix_y>2</pix_y></root>', ["<pix_x>", "'two'"]),
    ('<root><raw_file filename="x.raw"/><pix_x>0</pix_x><pix_y>2</pix_y></root>', ["<pix_x>", "'0'"]),
    ('<root><raw_file filename="x.raw"/><type>movie</type></root>', ["<type>", "movie"]),
    ('<root><raw_file filename="x.raw"/><type>series</type></root>', ["series", "<count>"]),
    ('<root><raw_file filename="x.raw"/><scan_parameters mode="acquire"><scan_size>1</scan_size>'
     "</scan_parameters><software_version>1</software_version></root>", ["scan_resolution_x"]),
    ('<root><raw_file filename="x.raw"/><software_version>1</software_version></root>',
     ["scan shape", "nav_shape"]),
]


def test_bad_xml(tmp_path, fails):
    gen_empad.write_raw(tmp_path / "x.raw", 4, lambda i: np.zeros((128, 128), "<f4"))
    for text, words in BAD_XML:
        xml = tmp_path / "bad.xml"
        xml.write_text(text)
        msg = fails("info", xml, "--format", "empad")
        assert str(xml) in msg, (text, msg)
        for w in words:
            assert w in msg, (text, w, msg)
    empty = tmp_path / "empty.xml"
    empty.write_text("")
    msg = fails("info", empty, "--format", "empad")
    assert str(empty) in msg and "no XML element" in msg, msg


def test_probe_leaves_other_xml_alone(tmp_path, fails):
    other = tmp_path / "other.xml"
    other.write_text('<?xml version="1.0"?><config><raw_file filename="x.raw"/></config>')
    msg = fails("info", other)
    assert "no format recognises" in msg, msg


def test_generator_cli(tmp_path, run, run_udfs):
    xml = tmp_path / "cli.xml"
    assert gen_empad.main([str(xml), "--shape", "2,3", "--style", "v122"]) == 0
    assert (tmp_path / "scan_x3_y2.raw").stat().st_size == 6 * FRAME_RAW
    assert info(run, xml)["nav_shape"] == [2, 3]
    ref = np.stack([gen_empad.pattern(i) for i in range(6)])
    np.testing.assert_array_equal(picks_all(run_udfs, xml, 6), ref)
