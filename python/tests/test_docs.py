"""The Python blocks of docs/python.md run as written, in order, in one
namespace (blocks that use LiberTEM itself are skipped: it is not a
dependency)."""

import pathlib
import re

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "python.md"


def blocks():
    text = DOC.read_text(encoding="utf-8")
    return [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "libertem" not in b]


def test_doc_blocks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    found = blocks()
    assert len(found) >= 10
    ns = {"__name__": "docs_python"}
    for i, code in enumerate(found):
        try:
            exec(compile(code, f"{DOC.name} block {i + 1}", "exec"), ns)
        except Exception as e:
            raise AssertionError(f"docs/python.md, python block {i + 1} failed:\n{code}") from e
    out = capsys.readouterr().out
    assert "TSR_EIO" in out or "TSR_ENOTFOUND" in out
    assert "needs 3 numbers" in out
