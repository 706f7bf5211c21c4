"""No module reaches into another module's private names.

An AST scan of src/potsearch: ``X._name`` is a violation unless X is ``self``, ``cls``, ``super()``
or a class defined in the same module, and so is ``from m import _name`` (a module-private function or constant taken from
another module). Dunders are not private; the few underscore names that are public API of the
standard library are listed in ``PUBLIC``.

``WAITING`` lists the few accesses the scan cannot tell are internal (an instance of the module's own
class built by its classmethod, a third-party struct, argparse's actions), each with its reason; an
entry that is gone must be removed. ``python tests/test_private_access.py`` prints any violation.
"""
from __future__ import annotations

import ast
import functools
import sys
from collections import Counter
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "potsearch"

#: top-level packages (or modules) of potsearch whose cross-module private access is still to be cleaned

#: (file under potsearch/, the access) -> why it is internal after all
WAITING = {
    ("store/runs.py", "store._pragmas"): "RunStore's own classmethods on the instance they build (one class)",
    ("store/runs.py", "store._migrate"): "RunStore's own classmethods on the instance they build (one class)",
    ("agents/local.py", "params._potsearch"): "a marker on llama.cpp's parameter struct set and read in this module",
    ("cli/app.py", "parser._actions"): "argparse has no public way to list a parser's actions",
}

#: underscore names that are public API (namedtuple's methods, os._exit, sys._getframe)
PUBLIC = frozenset({"_asdict", "_replace", "_fields", "_make", "_field_defaults", "_exit", "_getframe"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and name not in PUBLIC


def violations(source: str) -> list[tuple[int, str]]:
    """(line, access) of every cross-module private access in a module's source."""
    tree = ast.parse(source)
    own = {"self", "cls"} | {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in own:   # this module's own classes
                continue
            if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
                continue
            out.append((node.lineno, f"{ast.unparse(owner)}.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            for alias in node.names:
                if _private(alias.name):
                    out.append((node.lineno, f"from {'.' * node.level}{node.module or ''} import {alias.name}"))
    return out


def package_of(path: Path) -> str:
    """The top-level package of potsearch a file belongs to (a folder name, or a module's file name)."""
    return path.relative_to(SRC).parts[0]


@functools.cache
def scan() -> dict[str, list[tuple[str, int, str]]]:
    """package -> [(file, line, access)] over src/potsearch, without the WAITING accesses."""
    found: dict[str, list] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for line, access in violations(path.read_text()):
            if (rel, access) in WAITING:
                continue
            found.setdefault(package_of(path), []).append((rel, line, access))
    return found


def test_the_scan_finds_each_kind_of_violation():
    src = ("from potsearch.law.terms import _solve_linear, Term\n"
           "from .x import __version__\n"
           "class A:\n"
           "    _TABLE = A._TABLE\n"
           "    def f(self, other):\n"
           "        self._ok = cls_._no = other._bad\n"
           "        super()._fine()\n"
           "        return row._asdict(), type(self).__name__, obj.attr._deep\n")
    assert sorted(violations(src)) == [(1, "from potsearch.law.terms import _solve_linear"), (6, "cls_._no"),
                                       (6, "other._bad"), (8, "obj.attr._deep")]


def test_no_private_access_across_modules():
    found = scan()
    bad = [f"{f}:{line}: {a}" for pkg, items in found.items() for f, line, a in items]
    assert not bad, "private names reached across modules:\n" + "\n".join(bad)


def test_waiting_accesses_still_exist():
    for (rel, access), why in WAITING.items():
        assert any(a == access for _, a in violations((SRC / rel).read_text())), f"{rel}: {access} is gone ({why})"


if __name__ == "__main__":   # every violation, for whoever cleans them
    found = scan()
    counts = Counter({pkg: len(v) for pkg, v in found.items()})
    for pkg, n in sorted(counts.items()):
        print(f"{pkg}: {n}")
        for f, line, a in found[pkg]:
            print(f"    {f}:{line}: {a}")
    sys.exit(0)
