#!/usr/bin/env python3
"""Rewrite the README's example outputs from real runs, so the README never drifts from the code.

README.md marks each regenerated block with a comment on the line before its fence:

    <!-- output: table2 -->   commands run here, in a fresh folder, on the shipped paper Table 2
                              (deterministic: tests/test_readme_outputs.py fails when they drift)
    <!-- output: demo -->     outputs saved by `make demo` (scripts/demo.sh writes RUN/outputs/STAGE.txt);
                              a command's block is left as it is when its file is missing

In a block, lines starting with ``$ `` are commands (run with bash, ``potsearch`` meaning this
interpreter's ``python -m potsearch``, ``$DATA`` the shipped data folder); the lines after a
command are its output. Usage::

    python scripts/readme_outputs.py              # table2 blocks, and demo blocks if runs/demo/outputs exists
    python scripts/readme_outputs.py --check      # exit 1 (and a diff) if a table2 block drifted
    python scripts/readme_outputs.py --demo-run runs/demo
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARK = re.compile(r"^<!-- output: (\w+) -->$")
# wall-clock numbers differ between runs: compared as <t>
# and round-off (1e-8 and below) differs between machines: compared as <tiny>
VOLATILE = [(re.compile(r"\b\d+(\.\d+)? ?s\b"), "<t>"), (re.compile(r"\(\d+(\.\d+)?/s\)"), "<t>"),
            (re.compile(r"\b\d(\.\d+)?e-(0?[89]|[1-9]\d)\b"), "<tiny>")]


def blocks(lines: list[str]):
    """(kind, first line inside the fence, fence end) for every marked block."""
    for i, ln in enumerate(lines):
        m = MARK.match(ln.strip())
        if m and i + 1 < len(lines) and lines[i + 1].startswith("```"):
            end = next(j for j in range(i + 2, len(lines)) if lines[j].startswith("```"))
            yield m.group(1), i + 2, end


def _commands(body: list[str]) -> list[str]:
    return [ln[2:] for ln in body if ln.startswith("$ ")]


def _data_dir() -> str:
    sys.path.insert(0, str(ROOT / "src"))
    from potsearch.core.resources import shipped_dir

    return str(shipped_dir("data"))


def run_commands(cmds: list[str], cwd: Path, python: str = sys.executable) -> list[str]:
    """Run each command with bash in ``cwd``; returns the README text of the block (commands + outputs)."""
    data = _data_dir()
    env = dict(os.environ, DATA=data, COLUMNS="80", TERM="dumb", NO_COLOR="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "src")] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
               LITELLM_LOCAL_MODEL_COST_MAP="True")
    env.pop("FORCE_COLOR", None)
    prelude = f'potsearch() {{ "{python}" -m potsearch "$@"; }}\n'
    out: list[str] = []
    for cmd in cmds:
        p = subprocess.run(["bash", "-c", prelude + cmd], cwd=cwd, env=env, capture_output=True, text=True,
                           timeout=900)
        if p.returncode != 0:
            raise SystemExit(f"readme_outputs: `{cmd}` failed (exit {p.returncode}):\n{p.stderr.strip()}")
        text = p.stdout.replace(data, "$DATA")
        out.append(f"$ {cmd}")
        out += [ln.rstrip() for ln in text.rstrip("\n").splitlines()]
    return out


def demo_outputs(cmds: list[str], run_dir: Path) -> list[str] | None:
    """The block from ``make demo``'s saved outputs, or None if one is missing."""
    out: list[str] = []
    for cmd in cmds:
        stage = cmd.split()[1] if cmd.startswith("potsearch ") else None
        f = run_dir / "outputs" / f"{stage}.txt"
        if stage is None or not f.is_file():
            return None
        out.append(f"$ {cmd}")
        out += [ln.rstrip() for ln in f.read_text().rstrip("\n").splitlines()]
    return out


def regenerate(text: str, kinds: set[str], demo_run: Path | None = None) -> tuple[str, list[str]]:
    """The README with its marked blocks of ``kinds`` rewritten, and notes on what was left alone."""
    lines = text.split("\n")
    notes: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        new: list[str] = []
        pos = 0
        for kind, start, end in blocks(lines):
            new += lines[pos:start]
            body = lines[start:end]
            cmds = _commands(body)
            repl = None
            if kind in kinds and kind == "table2":
                repl = run_commands(cmds, Path(tmp))
            elif kind in kinds and kind == "demo" and demo_run is not None:
                repl = demo_outputs(cmds, demo_run)
                if repl is None:
                    notes.append(f"demo block at line {start}: no saved output in {demo_run}/outputs (run `make demo`)")
            new += repl if repl is not None else body
            pos = end
        new += lines[pos:]
    return "\n".join(new), notes


def normalise(text: str) -> str:
    for rx, to in VOLATILE:
        text = rx.sub(to, text)
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    ap.add_argument("--check", action="store_true", help="compare only (timings ignored); exit 1 on drift")
    ap.add_argument("--demo-run", default=str(ROOT / "runs" / "demo"), help="the run `make demo` wrote")
    a = ap.parse_args(argv)
    readme = Path(a.readme)
    old = readme.read_text()
    if a.check:
        new, _ = regenerate(old, {"table2"})
        if normalise(new) != normalise(old):
            sys.stdout.writelines(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "README.md",
                                                       "regenerated"))
            return 1
        return 0
    demo = Path(a.demo_run)
    new, notes = regenerate(old, {"table2", "demo"}, demo if (demo / "outputs").is_dir() else None)
    for n in notes:
        print(n, file=sys.stderr)
    if not (demo / "outputs").is_dir():
        print(f"demo blocks left as they are: no {demo}/outputs (run `make demo` first)", file=sys.stderr)
    if new != old:
        readme.write_text(new)
        print(f"rewrote {readme}")
    else:
        print(f"{readme} is current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
