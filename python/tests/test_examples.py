"""The Python examples (examples/*.py) run and pass their own checks against
numpy (each exits 0 only then)."""

import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


def test_there_are_examples():
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example(path):
    cp = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, f"{path.name} failed:\n{cp.stdout}\n{cp.stderr}"
    assert "match" in cp.stdout
