"""The diagnose stage: detailed-balance tests of a run (or transitions file), figures and diagnostics.json.

The potential is the run's saved least-action fit when there is one (and its options match the ones
asked for), otherwise a fresh fit in memory. ``run(input, DiagnoseOptions(...)) -> DiagnoseResult``;
the tests themselves are pure functions in ``potsearch.science.diagnostics``.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from potsearch.core.atomic import write_json
from potsearch.core.errors import InputError, StageMissing
from potsearch.core.stageopts import SummaryView
from potsearch.science.graph import WEIGHT_MODES, Graph
from potsearch.store.rundir import DIAGNOSTICS, RunDir

TESTS = ("pair", "loop", "exclusion", "distribution", "directionality", "majority")


@dataclass(frozen=True)
class DiagnoseOptions:
    """Options of the diagnose stage (the CLI's and the API's defaults come from here).

    ``weight`` / ``n0`` / ``min_visits``: None = the saved fit's (else low_reject, samples/states, 1).
    ``vote``: majority voting "m,k". ``top``: states in the transition diagram. ``out``: output
    folder (default RUN/diagnose, or ./diagnose for a file); ``write=False`` writes nothing.
    """

    weight: str | None = None
    n0: float | None = None
    min_visits: int | None = None
    alpha: float = 0.05
    min_kernel: float = 0.0
    vote: str = "5,3"
    top: int = 12
    plots: bool = True
    out: str | None = None
    write: bool = True

    def __post_init__(self) -> None:
        if self.weight is not None and self.weight not in WEIGHT_MODES:
            raise InputError(f"unknown weight mode {self.weight!r}; choose from {', '.join(WEIGHT_MODES)}")
        if not (0 < self.alpha < 1):
            raise InputError(f"--alpha must be between 0 and 1, got {self.alpha}")
        if self.top < 1:
            raise InputError(f"--top must be >= 1, got {self.top}")
        if self.n0 is not None and not self.n0 > 0:
            raise InputError(f"--n0 must be > 0, got {self.n0}")
        if self.min_visits is not None and self.min_visits < 0:
            raise InputError(f"--min-visits must be >= 0, got {self.min_visits}")
        if not math.isfinite(self.min_kernel) or self.min_kernel < 0:
            raise InputError(f"--min-kernel must be >= 0, got {self.min_kernel}")
        m, k = self.majority
        if not 1 <= k <= m:
            raise InputError(f"--vote needs 1 <= k <= m, got m={m}, k={k}")

    @property
    def majority(self) -> tuple[int, int]:
        """The majority vote (m, k) ``vote`` names."""
        try:
            m, k = (int(v) for v in str(self.vote).split(","))
        except ValueError:
            raise InputError(f"--vote must be two integers m,k (e.g. 5,3), got {self.vote!r}") from None
        return m, k


@dataclass
class Context:
    """What the figures need besides diagnostics.json."""

    graph: Graph
    V: np.ndarray
    unbounded: np.ndarray
    history: list


@dataclass
class DiagnoseResult(SummaryView):
    """The diagnostics (``data``: the diagnostics.json object), where they were written, and the table."""

    data: dict
    out: Path | None = None
    files: list = field(default_factory=list)
    _view = "data"

    @property
    def verdict(self) -> str:
        return self.data["verdict"]["status"]


    def to_frame(self):
        """One row a test: test, statistic, p_value, verdict (the table `potsearch diagnose` prints)."""
        import pandas as pd

        return pd.DataFrame(summary_rows(self.data), columns=["test", "statistic", "p_value", "verdict"])

    def __repr__(self) -> str:
        fit = self.data.get("fit", {})
        return (f"DiagnoseResult(verdict={self.verdict!r}, s_min={fit.get('action')}, states={fit.get('states')}, "
                f"out={str(self.out) if self.out else None!r})")


def _potential(inp, opts: "DiagnoseOptions"):
    """(graph, V, unbounded, scc, fit summary). Uses the run's saved fit when its options match."""
    from potsearch.stages.fit import FitOptions, fit_summary, run_fit
    from potsearch.store.rundir import load_fit
    from potsearch.science.graph import build_graph

    saved, escapes = None, "count"
    if inp.run_dir is not None:
        try:
            saved = load_fit(inp.run_dir)
        except StageMissing:
            saved = None
        except (ValueError, KeyError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read the saved fit ({exc})", str(RunDir(inp.run_dir).fit_dir)) from None
    if saved is not None:
        o = saved.summary.get("options", {})
        escapes = o.get("escapes", "count")     # the fit's escape convention holds for every graph here
        want = {"weight": opts.weight, "min_visits": opts.min_visits, "n0": opts.n0}
        same = all(v is None or o.get(k) == v for k, v in want.items())
        if same and saved.summary.get("mode", "exact") == "exact":
            g = build_graph(inp.counts, weight=o.get("weight", "low_reject"), n0=o.get("n0"),
                            min_visits=int(o.get("min_visits", 1)), escapes=escapes)
            pos = {s: i for i, s in enumerate(saved.names)}
            idx = np.array([pos.get(s, -1) for s in g.names])
            if (idx < 0).any():
                raise InputError("the saved fit does not match the store (rerun `potsearch fit`)",
                                 str(inp.run_dir))
            summary = {k: v for k, v in saved.summary.items() if k != "history"}
            return (g, saved.target_potential()[idx], saved.unbounded[idx], saved.scc[idx],
                    {**summary, "source": "saved"}, saved.summary.get("history", []))
    opts = FitOptions(weight=opts.weight or "low_reject", n0=opts.n0,
                      min_visits=1 if opts.min_visits is None else opts.min_visits, escapes=escapes)
    g, res = run_fit(inp.counts, opts)
    summary = fit_summary(g, res)
    history = summary.pop("history")
    return g, res.target_potential(), res.unbounded, res.scc, {**summary, "source": "computed"}, history


def compute(inp, opts: DiagnoseOptions, label: str = "") -> tuple[dict, Context]:
    """Run every test. Returns the diagnostics.json object and the plotting context."""
    from potsearch.science import diagnostics as D

    m, k = opts.majority
    g, V, unb, scc, fit, history = _potential(inp, opts)
    alpha = opts.alpha
    pair = D.pair_test(g, V, alpha)
    loop = D.loop_test(g, alpha, max_triangles=50_000)
    result = {
        "input": label,
        "created": time.time(),
        "fit": fit,
        "verdict": D.verdict(loop, pair, alpha),
        "pair": pair,
        "loop": loop,
        "exclusion": D.exclusion_test(g, V, scc, alpha),
        "distribution": D.distribution(g, V, fit.get("action"), bounded=~unb),
        "directionality": D.directionality(g, V, opts.min_kernel),
        "majority": D.majority_check(g, m, k),
        "diagram": {"order": [g.names[i] for i in _layout(g, V, opts.top)]},
    }
    return _clean(result), Context(g, V, unb, history)


def _layout(g, V, top):
    from potsearch.views.plots import diagram_layout

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
    write_json(out / DIAGNOSTICS, result, default=None)
    if not plots:
        return [out / DIAGNOSTICS]
    from potsearch.views import plots as P

    g = ctx.graph
    files = [P.plot_pairs(result["pair"], out), P.plot_loops(result["loop"], out),
             P.plot_exclusion(result["exclusion"], out), P.plot_distribution(result["distribution"], out),
             P.plot_transitions(g.names, ctx.V, g.visits, g.src, g.dst, g.n, out, top=top,
                                unbounded=ctx.unbounded),
             P.plot_convergence(ctx.history, out),
             P.plot_majority(result["majority"]["m"], result["majority"]["k"], out, result["majority"])]
    return [out / DIAGNOSTICS, *files]


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
    every = (lp.get("power") or {}).get("every_cycle")
    seen = f"; detects ≥ {every:.2g} nats per cycle" if every is not None else ""
    loop_mark = "weak" if (r.get("verdict") or {}).get("status") == "weak" else mark(lp["p_value"])
    rows.append(("loop (Kolmogorov)", stat + f"{lp['n_triangles']} three-cycles, {lp['n_triangles_z_gt_3']} with "
                 "|z| > 3" + seen, p(lp["p_value"]), loop_mark))
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


def default_out(inp) -> Path:
    return RunDir(inp.run_dir).diagnose_dir if inp.run_dir is not None else Path("diagnose")


def record(store, result: dict) -> None:
    """The diagnose row of ``potsearch status``."""
    lp, pr, ex, di = result["loop"], result["pair"], result["exclusion"], result["distribution"]
    store.set_stage_result("diagnose", {
        "verdict": result["verdict"]["status"], "loop_p": lp["p_value"], "loop_ndf": lp["ndf"],
        "triangles": lp["n_triangles"], "pairs": pr["n_pairs"], "pair_r": pr["pearson_r"],
        "exclusion_consistent": ex["fraction_consistent"], "sigma": di["sigma"],
        "s_min": result["fit"].get("action"), "at": time.time()})


def run(source, options: DiagnoseOptions = DiagnoseOptions()) -> DiagnoseResult:
    """Diagnose ``source`` (a run directory, a store file or a transitions file, or a loaded
    ``fitstage.Input``); writes diagnostics.json and figures unless ``options.write`` is False."""
    from potsearch.stages.fit import Input, load_input

    inp = source if isinstance(source, Input) else load_input(source)
    label = str(inp.run_dir) if isinstance(source, Input) else str(source)
    result, ctx = compute(inp, options, label)
    if not options.write:
        return DiagnoseResult(result)
    out = Path(options.out) if options.out else default_out(inp)
    if out.exists() and not out.is_dir():
        raise InputError("--out exists and is not a directory", str(out))
    if inp.store is not None:
        with inp.store.exclusive("diagnose"):
            files = write(result, ctx, out, plots=options.plots, top=options.top)
            record(inp.store, result)
    else:
        files = write(result, ctx, out, plots=options.plots, top=options.top)
    return DiagnoseResult(result, out, files)
