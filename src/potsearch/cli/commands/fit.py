"""`potsearch fit INPUT`: the least-action fit."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from potsearch.cli.runarg import add_run
from potsearch.science.dropped import describe
from potsearch.science.graph import WEIGHT_MODES
from potsearch.stages.fit import FitOptions, column_advice, reference_line
from potsearch.views.display import short_state, state_line, state_width
from potsearch.store.rundir import FIT_JSON, POTENTIALS_CSV

_D = FitOptions()
#: flags that only change what is printed (not options of the stage; tests/test_cli_api_parity.py)
PRINTING = ("json",)


def add_arguments(p):
    add_run(p, "a run directory, a store.sqlite, or a transitions file (.csv/.tsv/.jsonl/.json)",
            dest="source", metavar="INPUT")
    p.add_argument("--weight", choices=list(WEIGHT_MODES), default=_D.weight,
                   help="edge weights: n/N(f) with escapes counted (low_reject) or n/N0 (high_reject)")
    p.add_argument("--escapes", choices=["count", "condition"], default=_D.escapes,
                   help="N(f) with escapes (count, the paper's) or valid samples only (condition: the "
                        "preference among valid moves; docs/concepts.md)")
    p.add_argument("--n0", type=float, default=_D.n0, help="N0 for high_reject (default: total samples / states)")
    p.add_argument("--min-visits", type=int, default=_D.min_visits, metavar="K",
                   help="drop states sampled K times or fewer, as sources and targets (default 1)")
    p.add_argument("--kernel", choices=["softplus", "exp"], default=_D.kernel)
    p.add_argument("--beta", type=float, default=_D.beta, help="beta of the exponential kernel")
    p.add_argument("--bootstrap", type=int, default=_D.bootstrap, metavar="B",
                   help="bootstrap replicates for standard errors")
    p.add_argument("--seed", type=int, default=_D.seed, help="seed of the bootstrap")
    p.add_argument("--whole-graph", action="store_true", default=_D.whole_graph,
                   help="the paper's procedure (one L-BFGS-B over all states) for comparison")
    p.add_argument("--reference", default=_D.reference, metavar="STATE",
                   help="potentials relative to the SCC of STATE (default: the largest SCC); columns ref_*")
    p.add_argument("--out", default=_D.out, help="output folder (default: RUN/fit, or ./fit for a plain file)")
    p.add_argument("--json", action="store_true", help="print fit.json to stdout instead of the table")


def _fmt(x, nd=3):
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{nd}f}"


def run(args) -> int:
    from potsearch.stages.fit import run as fit

    res = fit(args.source, FitOptions(weight=args.weight, n0=args.n0, min_visits=args.min_visits,
                                      kernel=args.kernel, beta=args.beta, bootstrap=args.bootstrap,
                                      whole_graph=args.whole_graph, seed=args.seed, reference=args.reference,
                                      escapes=args.escapes, out=args.out))
    if args.json:
        json.dump(res.summary, sys.stdout, indent=1, default=float)
        sys.stdout.write("\n")
        return 0
    _print_table(res, res.summary, res.out)
    return 0


def _print_table(res, summary, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from potsearch.core.textsafe import printable

    con = Console(highlight=False)   # state names: control characters escaped, never rich markup
    title = "least-action fit" + (" (whole-graph mode: paper's procedure)" if res.mode == "whole-graph" else "")
    con.print(f"[bold]{title}[/bold]: S = {res.action:.6f} over {res.n_states} states, {res.n_edges} edges, "
              f"{res.n_sccs} SCCs, {int(res.unbounded.sum())} unbounded", soft_wrap=True)
    con.print(printable(describe(summary["dropped"])), soft_wrap=True, markup=False)
    steps = "Newton steps" if res.mode == "exact" else "L-BFGS-B iterations"
    con.print(f"{'converged' if res.converged else 'NOT converged'} in {res.iterations} {steps}, "
              f"max |grad| {res.grad_norm:.1e}, {res.seconds:.3f} s", soft_wrap=True)
    for note in res.notes:
        con.print(Text.assemble(("note:", "yellow"), " " + printable(note)), soft_wrap=True)
    line = reference_line(summary)
    if line:
        con.print(printable(line), soft_wrap=True, markup=False)
    advice = column_advice(summary)   # most potential cells empty: say which column holds the numbers
    if advice:
        con.print(Text.assemble(("note:", "yellow"), " " + printable(advice)), soft_wrap=True)
    import numpy as np

    order = np.lexsort((-res.visits, res.target_potential()))
    tab = Table(show_edge=False)
    ref = res.reference
    # the reference-SCC column replaces "unbounded" (the potential column shows +inf) when it says something
    # the other columns do not: states downstream of or incomparable with the reference SCC
    if ref is not None and not (ref.relation >= 2).any():
        ref = None
    cols = ("state", "potential", "lower bound", "SCC", "vs ref" if ref is not None else "unbounded", "visits",
            "stderr")
    for col in cols:
        tab.add_column(col, justify="left" if col == "state" else "right", no_wrap=col == "state",
                       overflow="ellipsis")
    limit = 25
    se = res.stderr if res.stderr is not None else np.full(res.n_states, np.nan)
    width = state_width(con.width, 66)  # long names cut with … (display.py); potentials.csv keeps them
    cut = False
    for i in order[:limit]:
        pot = "+inf" if res.unbounded[i] and res.mode == "exact" else _fmt(res.potential[i])
        if ref is not None:
            rel = int(ref.relation[i])
            third = (_fmt(ref.potential[i]) if rel == 0 else "incomparable" if rel == 3
                     else f"{'+inf >=' if rel == 1 else '-inf <='} {_fmt(ref.bound[i])}")
        else:
            third = "yes" if res.unbounded[i] else ""
        name = short_state(res.names[i], width)   # one line, control characters escaped (display.py)
        cut |= name != state_line(res.names[i])
        tab.add_row(Text(name), pot, _fmt(res.lower_bound[i]), str(res.scc[i]), third, str(res.visits[i]),
                    _fmt(se[i]))
    con.print(tab)
    if cut:
        con.print(printable(f"long state names are cut with …; {out / POTENTIALS_CSV} has them in full"),
                  soft_wrap=True, markup=False)
    if res.n_states > limit:
        con.print(printable(f"... {res.n_states - limit} more states in {out / POTENTIALS_CSV}"), markup=False)
    con.print(printable(f"wrote {out / POTENTIALS_CSV} and {out / FIT_JSON}"), markup=False)
