"""`potsearch show RUN`: the best potential — source or formula, parameters, scores, lineage,
attribution, directionality; ``--top K`` lists the Pareto front (action × complexity).

On a terminal the source is highlighted with rich; piped (stdout not a tty) the output is plain
text without escape codes, one fact per line, so it can be grepped and diffed.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..store.candidates import pareto_front  # noqa: F401  (re-exported for callers of show)

#: the paper's "high transition kernel": T(f->g) = n(f->g)/N(f) >= 0.05 (its plot script's p0_threshold)
HIGH_KERNEL = 0.05


def add_arguments(p):
    p.add_argument("run", help="run directory (needs fit and evolve)")
    p.add_argument("--top", type=int, default=0, metavar="K", help="also list K candidates of the Pareto front")
    p.add_argument("--candidate", default=None, metavar="ID", help="show this candidate (id or uid) instead")
    p.add_argument("--format", choices=["python", "sympy", "latex"], default="python",
                   help="the potential as Python source (default), a sympy formula or LaTeX")
    p.add_argument("--symbolic", action="store_true", help="formula formats: keep parameters as p_i symbols")
    p.add_argument("--min-kernel", type=float, default=HIGH_KERNEL,
                   help="directionality: transitions with T = n/N(f) >= this (default 0.05, as the paper)")


# ----------------------------------------------------------------------------- pure helpers
def lineage(store, row, depth: int = 30) -> list:
    """[row, parent, grandparent, ...] following the first parent; ids or uids in ``parents``."""
    return store.candidates.lineage(row, depth)


def _num(v, nd=6):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def _reference_line(out, saved) -> None:
    """How the fitted states relate to the reference SCC (the convention of docs/concepts.md)."""
    from ..fitstage import reference_line

    line = reference_line(saved.summary)
    if line:
        out.line(f"fit {line}")


def _directionality_of(run_dir, store, fn, params, min_kernel: float = HIGH_KERNEL) -> dict:
    from ..fitstage import load_fit
    from ..graph import build_graph

    saved = load_fit(run_dir)
    opts = saved.summary.get("options", {}) or {}
    counts = store.counts()
    g = build_graph(counts, weight=opts.get("weight", "low_reject"), n0=opts.get("n0"),
                    min_visits=int(opts.get("min_visits", 1)))
    try:
        from ..evolve.problem import _agent_of

        agent = _agent_of(store, g.names, None)
    except ImportError:  # pragma: no cover
        from ..features import guess_agent_kind

        agent = guess_agent_kind(g.names)
    from ..features import feature_table

    x = feature_table(agent, g.names, store.state_meta())
    with np.errstate(all="ignore"):
        V = np.broadcast_to(np.asarray(fn(x, np.asarray(params, dtype=float)), dtype=float), (g.n_states,))
    T = g.n / np.maximum(g.visits[g.src], 1)  # the kernel estimate n/N(f), whatever the weight mode
    import dataclasses

    from ..diagnostics import directionality

    out = directionality(dataclasses.replace(g, w=T), V, min_kernel=min_kernel)
    return {"n_transitions": out["n_transitions"], "down": out["down"], "up": out["up"], "flat": out["flat"],
            "min_kernel": min_kernel, "source": "potsearch.diagnostics.directionality"}



# ----------------------------------------------------------------------------- the command
def run(args) -> int:
    from ..fitstage import load_fit
    from ..polish import best_candidate, compile_source, open_run, read_candidates

    if args.top < 0:
        raise InputError(f"--top must be >= 0, got {args.top}")
    run_dir, store = open_run(args.run)
    saved = load_fit(run_dir)  # StageMissing: run fit first
    row = best_candidate(store, run_dir, args.candidate)  # StageMissing: run evolve first
    tty = sys.stdout.isatty()
    out = _Out(tty)
    name = store.run_info().get("name")
    out.head(f"run {name}: potential = candidate {row.id}" + (" (best)" if args.candidate is None else ""))
    # ---- the potential
    params = list(row.params or [])
    if args.format == "python":
        out.line("source:")
        out.source(row.source)
    else:
        from ..formula import FormulaError, formula_of, latex_legend, to_latex

        try:
            form = formula_of(row.source, None if args.symbolic else params, simplify=2.0,
                              substitute=not args.symbolic)
            if args.format == "sympy":
                out.line(f"formula (sympy{', simplified' if form.simplified else ''}):")
                out.line(f"  V = {form.expr}")
            else:
                out.line(f"formula (latex{', simplified' if form.simplified else ''}):")
                out.line(f"  {to_latex(form)}")
                for leg in latex_legend(form):
                    out.line(f"  % {leg}")
        except FormulaError as exc:
            out.line(f"formula: not translatable ({exc}); source:")
            out.source(row.source)
    cells = [f"p[{i}] = {v:.6g}" for i, v in enumerate(params)]
    out.line(f"parameters ({len(params)}): " + ("  ".join(cells[:6]) or "none"))
    for k in range(6, len(cells), 6):  # six per line
        out.line("  " + "  ".join(cells[k:k + 6]))
    # ---- scores
    s_min_train = row.train_action - row.gap if row.train_action is not None and row.gap is not None else None
    out.line(f"train action: {_num(row.train_action)}")
    out.line(f"held-out action: {_num(row.heldout_action)}")
    out.line(f"S_min (train part): {_num(s_min_train)}   gap: {_num(row.gap)}")
    out.line(f"S_min (fit, all samples): {_num(saved.s_min)}")
    _reference_line(out, saved)
    out.line(f"complexity: {row.complexity if row.complexity is not None else '-'}   "
             f"parameters: {row.n_params if row.n_params is not None else len(params)}")
    # ---- lineage
    out.line("lineage:")
    chain = lineage(store, row, depth=1000)
    shown = chain if len(chain) <= 10 else chain[:8] + [None] + chain[-1:]
    for k, r in enumerate(shown):
        if r is None:
            out.line(f"  <- ... {len(chain) - 9} more ancestors ...")
            continue
        others = f" (other parents {', '.join(str(p) for p in r.parents[1:])})" if len(r.parents) > 1 else ""
        out.line(f"  {'<- ' if k else ''}#{r.id} {r.operator or '-'}  model {r.model or '-'}  "
                 f"island {r.island if r.island is not None else '-'}  round {r.round if r.round is not None else '-'}"
                 f"  train {_num(r.train_action)}{others}")
    # ---- attribution
    att = Path(run_dir) / "attribution" / "summary.json"
    if att.exists():
        try:
            a = json.loads(att.read_text())
            abl = a.get("ablation_delta") or {}
            rank = " > ".join(f"{n} ({_num(abl.get(n), 4)})" for n in (a.get("ranking") or [])[:8])
            note = "" if a.get("candidate") == row.id else f" [computed for candidate {a.get('candidate')}]"
            out.line(f"attribution (ablation ΔS): {rank or '-'}{note}")
        except (ValueError, KeyError, TypeError):
            out.line("attribution: attribution/summary.json unreadable")
    else:
        out.line(f"attribution: not computed (run `potsearch attribute --run {args.run}`)")
    # ---- directionality
    try:
        ns = compile_source(row.source)
        d = _directionality_of(run_dir, store, ns["potential"], params, float(args.min_kernel))
        out.line(f"directionality (transitions with T >= {d['min_kernel']:g}: {d['n_transitions']}): "
                 f"down {100 * d['down']:.2f}%  up {100 * d['up']:.2f}%  flat {100 * d['flat']:.2f}%")
    except (InputError, KeyError, ValueError, TypeError, ArithmeticError) as exc:
        out.line(f"directionality: not computable ({exc})")
    # ---- Pareto front
    if args.top:
        front = pareto_front(read_candidates(store))
        out.line(f"Pareto front (train action x complexity): {len(front)} candidates, the {min(args.top, len(front))} "
                 f"with the lowest action:")
        out.line(f"  {'id':>6} {'train':>10} {'held-out':>10} {'complexity':>10} {'params':>6}  operator")
        for r in sorted(front, key=lambda r: (r.train_action, r.id))[: args.top]:  # best first
            out.line(f"  {r.id:>6} {_num(r.train_action):>10} {_num(r.heldout_action):>10} "
                     f"{r.complexity if r.complexity is not None else '-':>10} "
                     f"{r.n_params if r.n_params is not None else '-':>6}  {r.operator or '-'}")
    return 0


def _printable(text: str) -> str:
    from ..evolve.outputs import printable

    return printable(text)


class _Out:
    """Plain print when piped; rich (bold heading, highlighted source) on a terminal. Every text is
    printed with rich markup off and control characters escaped (it may hold model-written code)."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.con = None
        if tty:
            from rich.console import Console

            self.con = Console(highlight=False)

    def head(self, text: str) -> None:
        text = _printable(text)
        if self.con:
            self.con.print(text, markup=False, style="bold")
        else:
            print(text)

    def line(self, text: str) -> None:
        text = _printable(text)
        if self.con:
            self.con.print(text, markup=False)
        else:
            print(text)

    def source(self, src: str) -> None:
        src = _printable(src)
        if self.con:
            from rich.syntax import Syntax

            self.con.print(Syntax(src.rstrip("\n"), "python", line_numbers=False))
        else:
            for ln in src.rstrip("\n").splitlines():
                print("  " + ln)
