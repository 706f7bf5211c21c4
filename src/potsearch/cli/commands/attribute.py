"""`potsearch attribute --run R`: which features and terms of the best potential matter.

The stage is ``potsearch.stages.attribute``; this module parses arguments and prints its result.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from potsearch.cli.runarg import add_run
from potsearch.stages.attribute import AttributeOptions
from potsearch.store.rundir import RunDir

_D = AttributeOptions()
#: flags that only change what is printed (not options of the stage; tests/test_cli_api_parity.py)
PRINTING = ("json",)


def add_arguments(p):
    add_run(p, "run directory (needs fit and evolve)")
    p.add_argument("--candidate", default=_D.candidate, metavar="ID", help="attribute this candidate (id or uid) instead")
    p.add_argument("--repeats", type=int, default=_D.repeats, help="permutation repeats per feature (default 10)")
    p.add_argument("--seed", type=int, default=_D.seed)
    p.add_argument("--refit-evals", type=int, default=_D.refit_evals, metavar="N",
                   help="evaluation budget of each ablation refit (default 1500)")
    p.add_argument("--json", action="store_true", help="print every measure as JSON (attribution/details.json)")


def _f(v, nd=5):
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def run(args) -> int:
    from potsearch.stages.attribute import run as attribute

    res = attribute(args.run, AttributeOptions(candidate=args.candidate, repeats=args.repeats, seed=args.seed,
                                               refit_evals=args.refit_evals))
    if args.json:
        print(json.dumps(res.details, indent=1, default=float))
        return 0
    _print(res.attribution, res.candidate_row, res.out, res.seconds)
    return 0


def _print(att, row, out: Path, seconds: float) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from potsearch.core.textsafe import one_line, printable  # model text: control characters escaped

    con = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    held = f", held-out {att.base_heldout:.6f}" if att.base_heldout is not None else ""
    con.print(f"attribution of candidate {row.id}: train action {att.base_train:.6f}{held} "
              f"({att.repeats} permutation repeats, {seconds:.1f}s)")
    for kind, rows in (("feature", att.by_kind("feature")), ("term", att.by_kind("term"))):
        if not rows:
            continue
        tab = Table(show_edge=False, title=f"{kind}s (ΔS: action increase, higher = more important)",
                    title_justify="left")
        for col in ("rank", kind, "ablation ΔS", "held-out ΔS", "permutation ΔS", "± sd", "curvature"):
            tab.add_column(col, justify="left" if col == kind else "right")
        for r in rows:
            tab.add_row(str(r.rank), Text(one_line(r.name if kind == "feature" else r.detail[:50])),
                        _f(r.ablation_delta),
                        _f(r.ablation_delta_heldout), _f(r.permutation_mean), _f(r.permutation_sd), _f(r.curvature))
        con.print(tab)
    for n in att.notes:
        con.print(f"note: {printable(n)}", markup=False)
    rd = RunDir(out.parent)
    con.print(f"wrote {rd.attribution_csv}, {rd.attribution_png} and {rd.attribution_summary}")
