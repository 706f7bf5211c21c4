"""`potsearch report RUN`: write RUN/report.html (one self-contained page).

Runs the diagnostics first when the run has none yet (or with --refresh), so a report always has them.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError
from ..store import STORE_FILENAME


def add_arguments(p) -> None:
    p.add_argument("run", help="run directory (containing store.sqlite)")
    p.add_argument("--out", help="output file (default RUN/report.html)")
    p.add_argument("--refresh", action="store_true", help="rerun the diagnostics even if diagnose/ exists")


def _diagnose_args(run: Path) -> argparse.Namespace:
    return argparse.Namespace(input=str(run), json=False, out=None, weight=None, n0=None, min_visits=None,
                              alpha=0.05, min_kernel=0.0, vote="5,3", top=12, no_plots=False)


def run(args) -> int:
    from ..fitstage import load_input
    from ..report import build_report
    from .diagnose import default_out, run_diagnose

    run_dir = Path(args.run)
    if run_dir.name == STORE_FILENAME:
        run_dir = run_dir.parent
    if not run_dir.is_dir():
        raise InputError("not a run directory (the report needs a run: import or collect into one first)",
                         str(run_dir))
    if not (run_dir / STORE_FILENAME).exists():
        raise InputError("not a run directory (no store.sqlite inside)", str(run_dir))
    out = Path(args.out) if args.out else None
    if out is not None and out.is_dir():
        raise InputError("--out is a directory; give a file name such as report.html", str(out))
    inp = load_input(run_dir)
    if args.refresh or not (run_dir / "diagnose" / "diagnostics.json").exists():
        print(f"running the diagnostics first ({default_out(inp)})")
        run_diagnose(inp, _diagnose_args(run_dir), default_out(inp))
    path = build_report(run_dir, inp.store.stage_results() if inp.store else {}, out)
    kb = path.stat().st_size / 1024
    if inp.store is not None:
        inp.store.set_stage_result("report", {"path": str(path), "kilobytes": round(kb)})
    print(f"wrote {path} ({kb:.0f} KB, self-contained)")
    return 0
