"""Print docs/dev/architecture.md's module map: every module of src/potsearch with its line count and the
first sentence of its docstring. `python scripts/module_map.py > /tmp/map.md`, then paste it over the
table (tests/test_module_map.py checks that the table names every module and no other)."""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "potsearch"


def first_sentence(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    text = " ".join(doc.split("\n\n")[0].split())
    cut = text.find(". ")
    return (text if cut < 0 else text[:cut + 1]).replace("|", "\\|")


def rows() -> list[tuple[str, int, str]]:
    out = []
    for p in sorted(SRC.rglob("*.py")):
        rel = p.relative_to(SRC).as_posix()
        out.append((rel, len(p.read_text(encoding="utf-8").splitlines()), first_sentence(p)))
    return out


if __name__ == "__main__":
    print("| module | lines | what it is |\n|---|---|---|")
    for rel, n, what in rows():
        print(f"| `{rel}` | {n} | {what} |")
