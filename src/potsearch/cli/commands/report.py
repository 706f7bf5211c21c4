"""`potsearch report RUN`: write RUN/report.html (one self-contained page).

Runs the diagnostics first when the run has none yet (or with --refresh), so a report always has them.
"""
from __future__ import annotations


def add_arguments(p) -> None:
    p.add_argument("run", help="run directory (containing store.sqlite)")
    p.add_argument("--out", help="output file (default RUN/report.html)")
    p.add_argument("--refresh", action="store_true", help="rerun the diagnostics even if diagnose/ exists")


def run(args) -> int:
    from potsearch.stages.report import make_report

    path = make_report(args.run, out=args.out, refresh=args.refresh, say=print)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB, self-contained)")
    return 0
