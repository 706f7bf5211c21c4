"""docs/dev/architecture.md's module map names every module of src/potsearch and no other, and every
module has at most 600 lines (the house rule)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "potsearch"


def test_the_module_map_names_every_module_and_no_other():
    doc = (ROOT / "docs" / "dev" / "architecture.md").read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([\w/]+\.py)` \| \d+ \|", doc, re.M))
    actual = {p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py")}
    assert listed == actual, f"missing: {sorted(actual - listed)}; gone: {sorted(listed - actual)}"


def test_every_module_has_at_most_600_lines():
    big = {p.relative_to(SRC).as_posix(): n for p in SRC.rglob("*.py")
           if (n := len(p.read_text(encoding="utf-8").splitlines())) > 600}
    assert not big, big
