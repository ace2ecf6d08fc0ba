"""Auto-detection: every real file of a supported format in $TSR_TESTDATA is
recognised as that format by `tessera info` without --format, and files of
other formats are not claimed by it (issue 4, item 9)."""
import json
import os
import pathlib
import subprocess

import pytest

from conftest import TIMEOUT_S

# folder → (format name, file suffixes that open the dataset)
FOLDERS = {
    "mib": ("mib", (".mib", ".hdr")),
    "dm3": ("dm", (".dm3",)),
    "dm4": ("dm", (".dm4",)),
    "ser": ("ser", (".ser", ".emi")),
    "mrc": ("mrc", (".mrc", ".map")),
    "blo": ("blo", (".blo",)),
    "empad": ("empad", (".xml",)),
    "seq": ("seq", (".seq",)),
    "tvips": ("tvips", (".tvips",)),
    "npy": ("npy", (".npy",)),
}


def _cases():
    root = pathlib.Path(os.environ.get("TSR_TESTDATA", "/nonexistent"))
    out = []
    for folder, (fmt, suffixes) in FOLDERS.items():
        for p in sorted((root / folder).rglob("*")):
            if p.is_file() and p.suffix.lower() in suffixes:
                out.append(pytest.param(p, fmt, id=f"{folder}/{p.relative_to(root / folder)}"))
    return out


CASES = _cases()


def test_testdata_present():
    assert len(CASES) > 40, "TSR_TESTDATA does not hold the real sample files"


@pytest.mark.parametrize("path,fmt", CASES)
def test_autodetect(tsr_bin, path, fmt):
    # An EMPAD .xml without its .raw is still recognised: the error names the format.
    r = subprocess.run([tsr_bin, "info", "--json", str(path)], capture_output=True, text=True,
                       timeout=TIMEOUT_S)
    if r.returncode == 0:
        assert json.loads(r.stdout)["format"] == fmt
    else:
        assert fmt in r.stderr.lower(), r.stderr
