#!/usr/bin/python3
"""Write EMPAD datasets from the published layout (as RosettaSciIO and
LiberTEM read them), independently of Tessera's reader: an .xml sidecar and
its .raw of little-endian float32 frames of 128 columns × 130 rows, the last
two rows a footer.

The XML follows the acquisition software's: <root> with <raw_file
filename=...>, and either <type>scan</type> with <pix_x>/<pix_y> (software
0.51), <scan_parameters mode="acquire|search"> with <scan_resolution_x/y>
(software 1.2.2), or <type>series</type> with <count> and
<scan_parameters><series_count>.

Usable as a module (write_empad, empad_xml) and as a program:

    gen_empad.py OUT.xml --shape NY,NX | --shape N --series [--style v122]

writes OUT.xml and, beside it, scan_x<NX>_y<NY>.raw (series_x<N>.raw), frame
i holding float32(i * 7 + pixel index) mod 65536 and footer rows of -1,
frame by frame (for files larger than memory).
"""

import argparse
import os
import sys

import numpy as np

W, H, RAW_H = 128, 128, 130


def raw_name(nav):
    return ("series_x%d.raw" % nav[0]) if len(nav) == 1 else ("scan_x%d_y%d.raw" % (nav[1], nav[0]))


def empad_xml(raw, nav, style="v051", search=None, fov=None, pixelsize=None, extra=""):
    """The XML text for a .raw named raw holding nav; style v051 (pix_x,
    pix_y), v122 (scan_parameters acquire, and search = (ny, nx) if given)
    or series (nav = (n,)).  fov (x, y) in m and pixelsize add the
    iom_measurements the software writes."""
    parts = ['<root name="generated">',
             '<timestamp timestamp="1.0" isoformat="2024-01-02T03:04:05.000000"/>',
             "<software_version>gen_empad</software_version>"]
    if style == "series":
        parts += ["<type>series</type>", "<count>%d</count>" % nav[0]]
    elif style == "v051":
        parts += ["<type>scan</type>", "<pix_x>%d</pix_x>" % nav[1], "<pix_y>%d</pix_y>" % nav[0]]
    parts.append('<raw_file filename="%s"/>' % raw)
    parts.append("<exposure_time>1</exposure_time>")
    if style == "series":
        parts.append("<scan_parameters><series_count>%d</series_count></scan_parameters>" % nav[0])
    else:
        s = search if search is not None else nav
        for mode, (ny, nx) in (("search", s), ("acquire", nav)):
            parts.append('<scan_parameters mode="%s"><scan_size>0.5</scan_size>'
                         "<scan_resolution_y>%d</scan_resolution_y>"
                         "<scan_resolution_x>%d</scan_resolution_x></scan_parameters>"
                         % (mode, ny, nx))
    iom = ""
    if fov is not None:
        iom += "<optics.get_full_scan_field_of_view>[%r, %r]</optics.get_full_scan_field_of_view>" % (
            fov[0], fov[1])
    if pixelsize is not None:
        iom += "<calibrated_pixelsize>%r</calibrated_pixelsize>" % pixelsize
    if iom:
        parts.append("<iom_measurements>%s</iom_measurements>" % iom)
    parts.append(extra)
    parts.append("</root>")
    return "".join(parts)


def pattern(i):
    """The CLI's frame i (128 × 128 float32)."""
    return ((np.arange(H * W, dtype=np.int64) + i * 7) % 65536).astype("<f4").reshape(H, W)


def write_raw(path, count, frame_fn, footer=-1.0):
    """count frames of 130 × 128 float32: frame_fn(i) (128 × 128), then two
    footer rows of `footer`."""
    buf = np.full((RAW_H, W), footer, dtype="<f4")
    with open(path, "wb") as f:
        for i in range(count):
            buf[:H] = frame_fn(i)
            f.write(buf.tobytes())


def write_empad(xml_path, nav, frames=None, style=None, **xml_kw):
    """Write xml_path and its .raw beside it; frames (prod(nav), 128, 128)
    or the CLI's pattern.  Returns the .raw's path."""
    nav = tuple(int(n) for n in nav)
    style = style or ("series" if len(nav) == 1 else "v051")
    raw = os.path.join(os.path.dirname(str(xml_path)), raw_name(nav))
    with open(xml_path, "w") as f:
        f.write(empad_xml(os.path.basename(raw), nav, style, **xml_kw))
    count = int(np.prod(nav))
    write_raw(raw, count, (lambda i: frames[i]) if frames is not None else pattern)
    return raw


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the .xml to write (the .raw goes beside it)")
    p.add_argument("--shape", required=True, help="NY,NX (a scan) or N (with --series)")
    p.add_argument("--series", action="store_true")
    p.add_argument("--style", choices=("v051", "v122"), default="v051")
    a = p.parse_args(argv)
    nav = [int(s) for s in a.shape.split(",")]
    if len(nav) != (1 if a.series else 2) or min(nav) < 1:
        p.error("--shape must be NY,NX (or N with --series), all >= 1")
    write_empad(a.out, nav, style="series" if a.series else a.style)
    return 0


if __name__ == "__main__":
    sys.exit(main())
