"""`potsearch diagnose INPUT`: detailed-balance tests, figures and diagnostics.json.

INPUT is a run directory, a store file or a transitions file. The potential is the run's saved
least-action fit when there is one (and its options match the ones asked for), otherwise a fresh
fit in memory. ``compute`` and ``write`` are reused by ``potsearch report``.
"""
from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, StageMissing
from ..graph import WEIGHT_MODES, Graph

TESTS = ("pair", "loop", "exclusion", "distribution", "directionality", "majority")


def add_arguments(p) -> None:
    p.add_argument("input", help="run directory, store.sqlite, or transitions file (.csv/.tsv/.jsonl/.json)")
    p.add_argument("--json", action="store_true", help="print diagnostics.json to stdout instead of the table")
    p.add_argument("--out", help="output folder (default: RUN/diagnose, or ./diagnose for a file)")
    p.add_argument("--weight", help=f"weight mode ({' or '.join(WEIGHT_MODES)}; default: the saved fit's, "
                                    "else low_reject)")
    p.add_argument("--n0", type=float, help="N0 for high_reject (default: samples / states)")
    p.add_argument("--min-visits", type=int, help="drop states sampled at most this many times (default 1)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level of the verdicts (0.05)")
    p.add_argument("--min-kernel", type=float, default=0.0, help="directionality: only edges with w >= this")
    p.add_argument("--vote", default="5,3", help="majority voting m,k (default 5,3)")
    p.add_argument("--top", type=int, default=12, help="transition diagram: states shown (by visits)")
    p.add_argument("--no-plots", action="store_true", help="skip the figures")


@dataclass
class Context:
    """What the figures need besides diagnostics.json."""

    graph: Graph
    V: np.ndarray
    unbounded: np.ndarray
    history: list


def _check(args) -> tuple[int, int]:
    if args.weight is not None and args.weight not in WEIGHT_MODES:
        raise InputError(f"unknown weight mode {args.weight!r}; choose from {', '.join(WEIGHT_MODES)}")
    if not (0 < args.alpha < 1):
        raise InputError(f"--alpha must be between 0 and 1, got {args.alpha}")
    if args.top < 1:
        raise InputError(f"--top must be >= 1, got {args.top}")
    if args.n0 is not None and not args.n0 > 0:
        raise InputError(f"--n0 must be > 0, got {args.n0}")
    if args.min_visits is not None and args.min_visits < 0:
        raise InputError(f"--min-visits must be >= 0, got {args.min_visits}")
    if not math.isfinite(args.min_kernel) or args.min_kernel < 0:
        raise InputError(f"--min-kernel must be >= 0, got {args.min_kernel}")
    try:
        m, k = (int(v) for v in str(args.vote).split(","))
    except ValueError:
        raise InputError(f"--vote must be two integers m,k (e.g. 5,3), got {args.vote!r}") from None
    if not 1 <= k <= m:
        raise InputError(f"--vote needs 1 <= k <= m, got m={m}, k={k}")
    return m, k


def _potential(inp, args):
    """(graph, V, unbounded, scc, fit summary). Uses the run's saved fit when its options match."""
    from ..fitstage import FitOptions, fit_summary, load_fit, run_fit
    from ..graph import build_graph

    saved = None
    if inp.run_dir is not None:
        try:
            saved = load_fit(inp.run_dir)
        except StageMissing:
            saved = None
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read the saved fit ({exc})", str(Path(inp.run_dir) / "fit")) from None
    if saved is not None:
        o = saved.summary.get("options", {})
        want = {"weight": args.weight, "min_visits": args.min_visits, "n0": args.n0}
        same = all(v is None or o.get(k) == v for k, v in want.items())
        if same and saved.summary.get("mode", "exact") == "exact":
            g = build_graph(inp.counts, weight=o.get("weight", "low_reject"), n0=o.get("n0"),
                            min_visits=int(o.get("min_visits", 1)))
            pos = {s: i for i, s in enumerate(saved.names)}
            idx = np.array([pos.get(s, -1) for s in g.names])
            if (idx < 0).any():
                raise InputError("the saved fit does not match the store (rerun `potsearch fit`)",
                                 str(inp.run_dir))
            summary = {k: v for k, v in saved.summary.items() if k != "history"}
            return (g, saved.target_potential()[idx], saved.unbounded[idx], saved.scc[idx],
                    {**summary, "source": "saved"}, saved.summary.get("history", []))
    opts = FitOptions(weight=args.weight or "low_reject", n0=args.n0,
                      min_visits=1 if args.min_visits is None else args.min_visits)
    g, res = run_fit(inp.counts, opts)
    summary = fit_summary(g, res)
    history = summary.pop("history")
    return g, res.target_potential(), res.unbounded, res.scc, {**summary, "source": "computed"}, history


def compute(inp, args) -> tuple[dict, Context]:
    """Run every test. Returns the diagnostics.json object and the plotting context."""
    from .. import diagnostics as D

    m, k = _check(args)
    g, V, unb, scc, fit, history = _potential(inp, args)
    alpha = args.alpha
    pair = D.pair_test(g, V, alpha)
    loop = D.loop_test(g, alpha, max_triangles=50_000)
    result = {
        "input": str(args.input),
        "created": time.time(),
        "fit": fit,
        "verdict": D.verdict(loop, pair, alpha),
        "pair": pair,
        "loop": loop,
        "exclusion": D.exclusion_test(g, V, scc, alpha),
        "distribution": D.distribution(g, V, fit.get("action"), bounded=~unb),
        "directionality": D.directionality(g, V, args.min_kernel),
        "majority": D.majority_check(g, m, k),
        "diagram": {"order": [g.names[i] for i in _layout(g, V, args.top)]},
    }
    return _clean(result), Context(g, V, unb, history)


def _layout(g, V, top):
    from ..plots import diagram_layout

    return diagram_layout(g.names, V, g.visits, top)


def _clean(x):
    """JSON-safe: numpy scalars to Python, non-finite floats to None."""
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    return x


def write(result: dict, ctx: Context, out: Path, plots: bool = True, top: int = 12) -> list[Path]:
    """diagnostics.json and the figures (PNG + SVG) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "diagnostics.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(out / "diagnostics.json")
    if not plots:
        return [out / "diagnostics.json"]
    from .. import plots as P

    g = ctx.graph
    files = [P.plot_pairs(result["pair"], out), P.plot_loops(result["loop"], out),
             P.plot_exclusion(result["exclusion"], out), P.plot_distribution(result["distribution"], out),
             P.plot_transitions(g.names, ctx.V, g.visits, g.src, g.dst, g.n, out, top=top,
                                unbounded=ctx.unbounded),
             P.plot_convergence(ctx.history, out),
             P.plot_majority(result["majority"]["m"], result["majority"]["k"], out, result["majority"])]
    return [out / "diagnostics.json", *files]


def summary_rows(r: dict) -> list[tuple[str, str, str, str]]:
    """(test, statistic, p-value, verdict) rows for the terminal and the report."""
    a = r["pair"]["alpha"]

    def p(v):
        return "—" if v is None else f"{v:.3g}"

    def mark(pv):
        return "—" if pv is None else ("pass" if pv >= a else "FAIL")

    lp, pr, ex, di, dr, mj = (r[k] for k in ("loop", "pair", "exclusion", "distribution", "directionality",
                                              "majority"))
    rows = []
    stat = (f"χ²/ndf = {lp['chi2_ndf']:.3g} (ndf {lp['ndf']}); " if lp["chi2_ndf"] is not None else "no cycle; ")
    rows.append(("loop (Kolmogorov)", stat + f"{lp['n_triangles']} three-cycles, {lp['n_triangles_z_gt_3']} with "
                 "|z| > 3", p(lp["p_value"]), mark(lp["p_value"])))
    s = f"{pr['n_pairs']} pairs"
    if pr["pearson_r"] is not None:
        s += f", r = {pr['pearson_r']:.3f}, slope {pr['slope']:.3f} [{pr['slope_ci'][0]:.3f}, {pr['slope_ci'][1]:.3f}]"
    if pr["chi2_ndf"] is not None:
        s += f", χ²/ndf = {pr['chi2_ndf']:.3g}"
    elif pr["max_abs_residual"] is not None:
        s += f", max |residual| {pr['max_abs_residual']:.2g} (exact: no cycle among pairs)"
    # the pair chi2 is approximate (the potential is not a likelihood fit of these residuals): "check"
    rows.append(("pair", s, p(pr["p_value"]), mark(pr["p_value"]).replace("FAIL", "check")))
    fc = ex["fraction_consistent"]
    rows.append(("exclusion (Eq 25)", f"{ex['n_one_way']} one-way pairs, "
                 + (f"{fc:.1%} consistent at α={a} ({ex['n_between_scc']} between SCCs)" if fc is not None
                    else "none evaluated"), "—",
                 "—" if fc is None else ("pass" if fc >= 1 - a else "check")))
    e = di["expected_min_action"]
    s = (f"{di['n_states']} states, μ = {di['mu']:.3g}, σ = {di['sigma']:.3g}; expected S ≈ {e['closed_form']:.3g} "
         f"(closed form) / {e['asymptotic']:.3g} (1/√πσ) vs S_min {di['actual_min_action']:.3g}"
         if e and e.get("closed_form") is not None else f"{di['n_states']} states")
    rows.append(("distribution", s, p(di["p_value"]), "normal" if di["p_value"] is not None and
                 di["p_value"] >= a else ("non-normal" if di["p_value"] is not None else "—")))
    rows.append(("directionality", f"down {dr['down']:.1%} / up {dr['up']:.1%} / flat {dr['flat']:.1%} "
                 f"(by samples {dr['down_weighted']:.1%} / {dr['up_weighted']:.1%} / {dr['flat_weighted']:.1%})",
                 "—", "—"))
    if mj["slope"] is not None:
        rows.append(("majority vote", f"V′/V slope {mj['slope']:.2f} for m={mj['m']}, k={mj['k']} "
                     f"(≈ k for small T)", "—", "—"))
    return rows


def print_table(r: dict, out: Path | None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    v, fit = r["verdict"], r["fit"]
    style = {"consistent": "bold green", "violated": "bold red"}.get(v["status"], "bold yellow")
    con.print(f"[{style}]{v['status'].upper()}[/]: {v['text']}")
    if v.get("advice"):  # what a verdict lacks and how to get it (thindata.py)
        con.print(f"[yellow]{v['advice']}[/]")
    con.print(f"S_min = {fit.get('action', float('nan')):.6g} over {fit.get('states')} states, "
              f"{fit.get('edges')} edges, {fit.get('sccs')} SCCs (fit {fit.get('source')})")
    if fit.get("dropped"):  # what the fit left out (dropped.py)
        from ..dropped import describe

        con.print(describe(fit["dropped"]), soft_wrap=True)
    t = Table(show_lines=False, header_style="bold")
    for c in ("test", "statistic", "p-value", "verdict"):
        t.add_column(c, overflow="fold")
    for row in summary_rows(r):
        colour = {"pass": "green", "FAIL": "red", "check": "yellow"}.get(row[3], "")
        t.add_row(row[0], row[1], row[2], f"[{colour}]{row[3]}[/]" if colour else row[3])
    con.print(t)
    if out is not None:
        con.print(f"wrote {out / 'diagnostics.json'} and figures")


def run_diagnose(inp, args, out: Path) -> dict:
    result, ctx = compute(inp, args)
    write(result, ctx, out, plots=not getattr(args, "no_plots", False), top=args.top)
    if inp.store is not None:
        lp, pr, ex, di = result["loop"], result["pair"], result["exclusion"], result["distribution"]
        inp.store.set_stage_result("diagnose", {
            "verdict": result["verdict"]["status"], "loop_p": lp["p_value"], "loop_ndf": lp["ndf"],
            "triangles": lp["n_triangles"], "pairs": pr["n_pairs"], "pair_r": pr["pearson_r"],
            "exclusion_consistent": ex["fraction_consistent"], "sigma": di["sigma"],
            "s_min": result["fit"].get("action"), "at": time.time()})
    return result


def default_out(inp) -> Path:
    return Path(inp.run_dir) / "diagnose" if inp.run_dir is not None else Path("diagnose")


def run(args) -> int:
    from ..fitstage import load_input

    _check(args)
    inp = load_input(args.input)
    out = Path(args.out) if args.out else default_out(inp)
    if out.exists() and not out.is_dir():
        raise InputError("--out exists and is not a directory", str(out))
    result = run_diagnose(inp, args, out)
    if args.json:
        sys.stdout.write(json.dumps(result, indent=1) + "\n")
    else:
        print_table(result, out)
    return 0
