"""`potsearch diagnose INPUT`: detailed-balance tests, figures and diagnostics.json.

INPUT is a run directory, a store file or a transitions file. The stage is
``potsearch.stages.diagnose``; this module parses arguments and prints its result.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from potsearch.cli.runarg import add_run
from potsearch.stages.diagnose import DiagnoseOptions, summary_rows
from potsearch.science.graph import WEIGHT_MODES
from potsearch.store.rundir import DIAGNOSTICS

_D = DiagnoseOptions()
#: flags that only change what is printed (not options of the stage; tests/test_cli_api_parity.py)
PRINTING = ("json",)


def add_arguments(p) -> None:
    add_run(p, "run directory, store.sqlite, or transitions file (.csv/.tsv/.jsonl/.json)", dest="source",
            metavar="INPUT")
    p.add_argument("--json", action="store_true", help="print diagnostics.json to stdout instead of the table")
    p.add_argument("--out", default=_D.out, help="output folder (default: RUN/diagnose, or ./diagnose for a file)")
    p.add_argument("--weight", default=_D.weight, help=f"weight mode ({' or '.join(WEIGHT_MODES)}; default: the "
                                                       "saved fit's, else low_reject)")
    p.add_argument("--n0", type=float, default=_D.n0, help="N0 for high_reject (default: samples / states)")
    p.add_argument("--min-visits", type=int, default=_D.min_visits,
                   help="drop states sampled at most this many times (default 1)")
    p.add_argument("--alpha", type=float, default=_D.alpha, help="significance level of the verdicts (0.05)")
    p.add_argument("--min-kernel", type=float, default=_D.min_kernel,
                   help="directionality: only edges with w >= this")
    p.add_argument("--vote", default=_D.vote, help="majority voting m,k (default 5,3)")
    p.add_argument("--top", type=int, default=_D.top, help="transition diagram: states shown (by visits)")
    p.add_argument("--no-plots", dest="plots", action="store_false", default=_D.plots, help="skip the figures")


def print_table(r: dict, out: Path | None, plots: bool = True) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from potsearch.core.textsafe import printable

    def text(s, style: str = "") -> Text:   # data (state names may be in it): escaped, never rich markup
        return Text(printable(s), style=style)

    con = Console()
    v, fit = r["verdict"], r["fit"]
    style = {"consistent": "bold green", "violated": "bold red"}.get(v["status"], "bold yellow")
    # the verdict's label says how strong it is (CONSISTENT / WEAK EVIDENCE / VIOLATED / UNTESTABLE)
    label = v.get("label") or v["status"].upper()   # a diagnostics.json written before labels existed
    con.print(Text.assemble(text(label, style), text(f": {v['text']}")))
    if v.get("advice"):  # what a verdict lacks and how to get it (thindata.py)
        con.print(text(v["advice"], "yellow"))
    con.print(text(f"S_min = {fit.get('action', float('nan')):.6g} over {fit.get('states')} states, "
                   f"{fit.get('edges')} edges, {fit.get('sccs')} SCCs (fit {fit.get('source')})"))
    if fit.get("dropped"):  # what the fit left out (dropped.py)
        from potsearch.science.dropped import describe

        con.print(text(describe(fit["dropped"])), soft_wrap=True)
    t = Table(show_lines=False, header_style="bold")
    for c in ("test", "statistic", "p-value", "verdict"):
        t.add_column(c, overflow="fold")
    for row in summary_rows(r):
        colour = {"pass": "green", "FAIL": "red", "check": "yellow"}.get(row[3], "")
        t.add_row(text(row[0]), text(row[1]), text(row[2]), text(row[3], colour))
    con.print(t)
    if out is not None:
        con.print(text(f"wrote {out / DIAGNOSTICS}" + (" and figures" if plots else " (no figures: --no-plots)")))


def run(args) -> int:
    from potsearch.stages.diagnose import run as diagnose

    res = diagnose(args.source, DiagnoseOptions(weight=args.weight, n0=args.n0, min_visits=args.min_visits,
                                                alpha=args.alpha, min_kernel=args.min_kernel, vote=args.vote,
                                                top=args.top, plots=args.plots, out=args.out))
    if args.json:
        sys.stdout.write(json.dumps(res.data, indent=1) + "\n")
    else:
        print_table(res.data, res.out, plots=args.plots)
    return 0
