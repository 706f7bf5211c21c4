"""The fit stage: resolve an input, build the graph, fit, write fit/ outputs, read them back.

``run(source, FitOptions(...)) -> FitStageResult``: fit, write fit/ (potentials.csv, fit.json with
what was dropped) and record the stage, under the run's writer lock. Other stages use ``load_input`` (counts from a run dir, a store file or a transitions file),
``run_fit``, and ``store.rundir.load_fit`` (the saved fit of a run) — never their own parsing.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from potsearch.science.action import FitResult, fit_exact, fit_whole_graph, make_kernel
from potsearch.core.errors import InputError
from potsearch.science.graph import ESCAPE_MODES, WEIGHT_MODES, Graph, build_graph
from potsearch.store import STORE_FILENAME, Counts, RunStore
from potsearch.store.rundir import write_fit_files
from potsearch.store.rundir import RunDir


@dataclass(frozen=True)
class FitOptions:
    """Options of the fit stage (the CLI's and the API's defaults come from here).

    ``weight`` / ``n0`` / ``min_visits``: the graph (``science.graph.build_graph``); ``kernel`` /
    ``beta``: the action's kernel; ``bootstrap``: replicates for standard errors (``seed``);
    ``whole_graph``: the paper's one L-BFGS-B instead of the exact fit; ``reference``: the state whose
    SCC is the reference (default: the largest SCC); ``escapes``: N(f) with escapes (``count``, the
    paper's) or valid samples only (``condition``: the preference among valid moves). ``out``: output folder (default RUN/fit, or ./fit
    for a plain file); ``write=False`` writes nothing and records nothing.
    """

    weight: str = "low_reject"
    n0: float | None = None
    min_visits: int = 1
    kernel: str = "softplus"
    beta: float = 1.0
    bootstrap: int = 0
    whole_graph: bool = False
    seed: int = 0
    reference: str | None = None
    escapes: str = "count"
    out: str | None = None
    write: bool = True

    def __post_init__(self) -> None:
        if self.weight not in WEIGHT_MODES:
            raise InputError(f"unknown weight mode {self.weight!r}; choose from {', '.join(WEIGHT_MODES)}")
        if self.escapes not in ESCAPE_MODES:
            raise InputError(f"unknown escape convention {self.escapes!r}; choose from {', '.join(ESCAPE_MODES)}")
        if self.kernel not in ("softplus", "exp"):
            raise InputError(f"unknown kernel {self.kernel!r}; choose softplus or exp")
        if self.n0 is not None and not self.n0 > 0:
            raise InputError(f"--n0 must be > 0, got {self.n0}")
        if self.min_visits < 0:
            raise InputError(f"--min-visits must be >= 0, got {self.min_visits}")
        if not self.beta > 0:
            raise InputError(f"--beta must be > 0, got {self.beta}")
        if self.bootstrap < 0:
            raise InputError(f"--bootstrap must be >= 0, got {self.bootstrap}")


@dataclass(repr=False)
class FitStageResult(FitResult):
    """The fit stage's result: the least-action fit (every ``FitResult`` field: names, potential,
    lower_bound, unbounded, scc, stderr, action, ...) with ``summary`` (fit.json, with its ``dropped``
    block) and ``out``, the folder written (None with ``write=False``)."""

    summary: dict = field(default_factory=dict)
    out: Path | None = None


@dataclass
class Input:
    counts: Counts
    run_dir: Path | None     # the run directory when the input is a run or a store
    store: RunStore | None


def load_input(path: str | Path) -> Input:
    """A run directory, a store file, or an importable transitions file."""
    from potsearch.collector.io import FORMATS, read_counts

    p = Path(path)
    if p.is_dir() or p.name == STORE_FILENAME or p.suffix in (".sqlite", ".db"):
        if p.is_dir() and not (p / STORE_FILENAME).exists():
            raise InputError("not a run directory (no store.sqlite inside)", str(p))
        store = RunStore.open(p)
        return Input(store.counts(), store.run_dir, store)
    if not p.exists():
        raise InputError("no such file or run directory", str(p))
    if p.suffix.lower() not in FORMATS:
        # maybe a store with another name
        with open(p, "rb") as fh:
            if fh.read(16) == b"SQLite format 3\x00":
                store = RunStore.open(p)
                return Input(store.counts(), store.run_dir, store)
    return Input(read_counts(p), None, None)


def run_fit(counts: Counts, opts: FitOptions) -> tuple[Graph, FitResult]:
    g = build_graph(counts, weight=opts.weight, n0=opts.n0, min_visits=opts.min_visits, escapes=opts.escapes)
    if g.n_states == 0:
        raise InputError(f"no state was sampled more than {opts.min_visits} time(s): nothing to fit "
                         f"(lower --min-visits)")
    kernel = make_kernel(opts.kernel, opts.beta)
    if opts.reference is not None and opts.reference not in g.names:
        raise InputError(f"--reference {opts.reference!r} is not among the {g.n_states} fitted states"
                         + (f" (states sampled {opts.min_visits} time(s) or fewer are dropped)" if opts.min_visits else ""))
    res = fit_whole_graph(g, kernel) if opts.whole_graph else fit_exact(g, kernel, reference=opts.reference)
    if opts.bootstrap and not opts.whole_graph:
        from potsearch.science.uncertainty import bootstrap_stderr

        res.stderr = bootstrap_stderr(counts, g, res, opts, opts.bootstrap, seed=opts.seed)
    res.options.update({"bootstrap": opts.bootstrap, "seed": opts.seed, "escapes": opts.escapes})
    return g, res


def fit_summary(g: Graph, res: FitResult) -> dict:
    sizes = np.bincount(res.scc) if len(res.scc) else np.zeros(0, int)
    return {
        "mode": res.mode,
        "action": res.action,
        "states": res.n_states,
        "edges": res.n_edges,
        "samples": g.n_samples,
        "states_in_input": g.n_states_all,
        "sccs": res.n_sccs,
        "largest_scc": int(sizes.max()) if len(sizes) else 0,
        "unbounded_states": int(res.unbounded.sum()),
        "converged": res.converged,
        "iterations": res.iterations,
        "grad_norm": res.grad_norm,
        "seconds": res.seconds,
        "scc_order": res.scc_order,
        "options": res.options,
        "notes": res.notes,
        "history": [list(h) for h in res.history],
        "reference": reference_summary(res),
    }


def reference_summary(res: FitResult) -> dict | None:
    """The reference-SCC convention in numbers: which SCC, and how many states relate to it how."""
    v = res.reference
    if v is None:
        return None
    from potsearch.science.action import RELATIONS

    counts = np.bincount(v.relation, minlength=len(RELATIONS))
    members = np.flatnonzero(v.relation == 0)
    top = members[np.argmax(res.visits[members])] if len(members) else None
    return {"scc": v.scc, "size": v.size, "most_visited_state": res.names[top] if top is not None else None,
            "chosen_by": "--reference " + res.options["reference_state"] if res.options.get("reference_state")
            else "largest SCC", **{name: int(k) for name, k in zip(RELATIONS, counts)}}


def reference_line(summary: dict) -> str | None:
    """One line for tables and reports: how the states relate to the reference SCC."""
    r = summary.get("reference")
    if not r:
        return None
    return (f"reference SCC {r['scc']} ({r['size']} states, {r['chosen_by']}, most visited {r['most_visited_state']!r}): "
            f"{r['reference']} finite, {r['upstream']} upstream (+inf, lower bounds), {r['downstream']} downstream "
            f"(-inf, upper bounds), {r['incomparable']} incomparable")


def column_advice(summary: dict) -> str | None:
    """Which column of potentials.csv to read when most `potential` cells are empty. At scale the largest
    SCC often lies upstream of small ones (a state reached once and never sampled again), so most states
    are +inf in the sink convention and their `potential` cells are empty (the finite ones are each in
    their own small SCC's gauge), while `ref_potential` holds the reference SCC's numbers in one gauge
    (docs/concepts.md, "Two conventions"). None when at most half the states are unbounded."""
    r, n, unb = summary.get("reference"), summary.get("states"), summary.get("unbounded_states")
    if not r or not n or unb is None or 2 * unb <= n or r.get("reference", 0) < 2:
        return None
    return (f"most potential cells are empty ({unb} of {n} states are +inf in the sink convention: their SCC lies "
            f"upstream of another one); read ref_potential, which gives the {r['reference']} states of the "
            f"reference SCC in one gauge (or scc_potential within each SCC; docs/concepts.md)")


def write_fit(out: Path, g: Graph, res: FitResult) -> dict:
    """fit/potentials.csv and fit/fit.json (``store.rundir.write_fit_files``); returns the summary."""
    summary = fit_summary(g, res)
    write_fit_files(out, res, summary)
    return summary


def default_out(inp: Input) -> Path:
    return RunDir(inp.run_dir).fit_dir if inp.run_dir else Path("fit")


def record(inp: Input, summary: dict) -> None:
    if inp.store is not None:
        keep = {k: summary[k] for k in ("mode", "action", "states", "edges", "sccs", "unbounded_states",
                                        "converged", "grad_norm", "seconds")}
        inp.store.set_stage_result("fit", {**keep, "at": time.time()})


def run(source, options: FitOptions = FitOptions()) -> FitStageResult:
    """The fit stage on ``source`` (a run directory, a store file or a transitions file): fit, then,
    unless ``options.write`` is False, write fit/ (potentials.csv, fit.json with what was dropped)
    and record the stage, under the run's writer lock when the source is a run."""
    from potsearch.science.dropped import annotate_fit, dropped_states

    inp = load_input(source)
    g, res = run_fit(inp.counts, options)
    result = FitStageResult(**{f.name: getattr(res, f.name) for f in fields(res)})
    if not options.write:
        result.summary = {**fit_summary(g, res), "dropped": dropped_states(inp.counts, options.min_visits).as_dict()}
        return result
    out = Path(options.out) if options.out else default_out(inp)
    with inp.store.exclusive("fit") if inp.store is not None else nullcontext():
        summary = write_fit(out, g, res)
        annotate_fit(out, summary, inp.counts, options.min_visits, options.escapes)  # what was dropped and why (dropped.py)
        record(inp, summary)
    result.summary, result.out = summary, out
    return result
