"""The README's layout table names every source file and package of the project (a new module
without a row fails here)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def layout_table() -> str:
    if not README.exists() or not (ROOT / "python" / "nnmargin").is_dir():
        pytest.skip("needs the source tree")
    text = README.read_text()
    start = text.index("## Layout")
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def sources():
    """Files a reader looks for: Python modules and packages, C++/CUDA sources, benchmark scripts, tools."""
    pkg = ROOT / "python" / "nnmargin"
    for p in sorted(pkg.iterdir()):
        if p.suffix == ".py" or (p.is_dir() and p.name != "__pycache__"):
            yield p
    for p in sorted((ROOT / "csrc").rglob("*")):
        if p.suffix in (".h", ".cpp", ".cu", ".cuh") and "emulation" not in p.parts:
            yield p
    yield from sorted((ROOT / "benchmarks").glob("*.py"))
    yield from sorted((ROOT / "tools").iterdir())


def test_layout_table_names_every_source():
    table = layout_table()
    named = set(re.findall(r"[A-Za-z0-9_.]+", table))
    missing = []
    for p in sources():
        stem = p.name if p.is_dir() else p.stem
        if p.name not in table and stem not in named and f"{stem}." not in table:
            missing.append(str(p.relative_to(ROOT)))
    assert not missing, f"README layout table lacks: {missing}"


def test_layout_table_names_no_missing_file():
    table = layout_table()
    for path in re.findall(r"`((?:csrc|python|tools|tests|benchmarks)/[^`{ ]+)`", table):
        assert (ROOT / path).exists(), f"README layout table names {path}, which does not exist"
