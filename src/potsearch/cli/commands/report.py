"""`potsearch report RUN`: write RUN/report.html (one self-contained page); `--compare RUN_B` adds a comparison.

Runs the diagnostics first when the run has none yet (or with --refresh), so a report always has them.
"""
from __future__ import annotations

from potsearch.cli.runarg import add_run
from potsearch.stages.report import ReportOptions

_D = ReportOptions()
PRINTING = ()   # every flag is an option of the stage (tests/test_cli_api_parity.py)


def add_arguments(p) -> None:
    add_run(p, "run directory (containing store.sqlite)")
    p.add_argument("--out", default=_D.out, help="output file (default RUN/report.html)")
    p.add_argument("--refresh", action="store_true", default=_D.refresh,
                   help="rerun the diagnostics even if diagnose/ exists")
    p.add_argument("--compare", action="append", default=_D.compare, metavar="RUN_B",
                   help="add a section comparing the run with RUN_B (repeat for more runs): what `potsearch compare "
                        "RUN RUN_B --html` shows, with compare's defaults")


def run(args) -> int:
    from potsearch.stages.report import run as report

    path = report(args.run, ReportOptions(out=args.out, refresh=args.refresh,
                                          compare=None if args.compare is None else tuple(args.compare)), say=print)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB, self-contained)")
    return 0
