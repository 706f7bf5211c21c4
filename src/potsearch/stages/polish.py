"""The polish stage: polish a candidate potential's parameters and record the result.

``run(run_dir, PolishOptions(...)) -> PolishResult``. The optimisers and the objective are in
``potsearch.search.polish``; this module picks the candidate, runs the method(s), writes a new candidate
row, polish/summary.json, history.json and polish.png, and rewrites best_potential.py when the
polished candidate beats the run's best — all under the run's writer lock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from potsearch.core.progress import Ticker
from potsearch.core.atomic import write_json
from potsearch.core.errors import InputError
from potsearch.core.stageopts import SummaryView
from potsearch.law.optimize import METHODS


@dataclass(frozen=True)
class PolishOptions:
    """Options of the polish stage (the CLI's and the API's defaults come from here).

    ``method``: random-descent (the paper's schedule: ``iterations`` x ``samples`` perturbations
    of sd ``scale`` x |p_i|, ``keep`` best points kept) or lbfgs / nelder-mead (scipy, budget
    ``max_evals``, default iterations x samples). ``candidate``: id or uid (default: the run's best).
    ``compare``: also run the other two methods with the same budget. ``quiet``: no progress output.
    """

    method: str = "random-descent"
    iterations: int = 100
    samples: int = 20
    keep: int = 5
    scale: float = 0.1
    seed: int = 0
    max_evals: int | None = None
    candidate: str | int | None = None
    compare: bool = False
    quiet: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise InputError(f"unknown polish method {self.method!r}; choose from {', '.join(METHODS)}")
        for name in ("iterations", "samples", "keep"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name} must be >= 1, got {getattr(self, name)}")
        if self.keep > self.samples:
            raise InputError(f"--keep ({self.keep}) cannot exceed --samples ({self.samples})")
        if not self.scale > 0:
            raise InputError(f"--scale must be > 0, got {self.scale}")
        if self.max_evals is not None and self.max_evals < 1:
            raise InputError(f"--max-evals must be >= 1, got {self.max_evals}")


@dataclass
class PolishResult(SummaryView):
    """What a polish did: ``summary`` (polish/summary.json), the methods' results, and the outcome."""

    summary: dict
    methods: dict = field(default_factory=dict)        # method -> optimize.PolishResult
    out: Path | None = None
    best_before: object = None                         # the run's best CandidateRow before this polish

    candidate = property(lambda self: self.summary["candidate"])
    polished_candidate = property(lambda self: self.summary["polished_candidate"])
    improved = property(lambda self: self.summary["improved"])
    promoted = property(lambda self: self.summary["best_potential_rewritten"])
    train_before = property(lambda self: self.summary["action_before"]["train"])
    train_after = property(lambda self: self.summary["action_after"]["train"])
    heldout_before = property(lambda self: self.summary["action_before"]["heldout"])
    heldout_after = property(lambda self: self.summary["action_after"]["heldout"])


    def to_frame(self):
        """One row a method: method, train_action, evaluations, seconds."""
        import pandas as pd

        return pd.DataFrame([{"method": m, "train_action": r.fun, "evaluations": r.evaluations, "seconds": r.seconds}
                             for m, r in self.methods.items()])

    def __repr__(self) -> str:
        return (f"PolishResult(candidate={self.candidate}, method={self.summary['method']!r}, "
                f"train {self.train_before:.6g} -> {self.train_after:.6g}, "
                f"polished_candidate={self.polished_candidate}, promoted={self.promoted})")


def run(run_dir, options: PolishOptions = PolishOptions()) -> PolishResult:
    """Polish ``options.candidate`` (default: the run's best) of the run at ``run_dir``."""
    from potsearch.search.polish import load_context
    from potsearch.store import run_lock

    with run_lock(Path(run_dir), "polish"):
        ctx = load_context(run_dir, options.candidate)
        try:
            return _polish(ctx, options)
        finally:
            ctx.store.close()


def _polish(ctx, o: PolishOptions) -> PolishResult:
    from potsearch.law.optimize import plot_convergence, polish
    from potsearch.search.polish import get_candidate, write_best_potential, write_candidate
    from potsearch.store.rundir import RunDir, best_candidate, evolve_summary, selected_law

    row, prob = ctx.row, ctx.problem
    p0 = ctx.params
    if len(p0) == 0:
        raise InputError(f"candidate {row.id} has no parameters: nothing to polish", str(ctx.run_dir))
    f0 = ctx.train(p0)
    h0 = ctx.heldout(p0)
    methods = [o.method] + ([m for m in METHODS if m != o.method] if o.compare else [])
    results = {}
    for m in methods:
        ctx.train.calls = 0
        budget = o.max_evals if o.max_evals is not None else o.iterations * o.samples
        with Ticker(f"polish {m}", lambda: ctx.train.calls, budget, "evaluations", quiet=o.quiet):
            results[m] = polish(ctx.train, p0, m, iterations=o.iterations, samples=o.samples, keep=o.keep,
                                scale=o.scale, seed=o.seed, max_evals=o.max_evals, f0=f0)
    res = results[o.method]
    h1 = ctx.heldout(res.x)
    rd = RunDir(ctx.run_dir)
    out = rd.polish_dir
    out.mkdir(parents=True, exist_ok=True)
    improved = res.fun < f0
    new_id, promoted, current, kept_law = None, False, None, False
    if improved:
        current = best_candidate(ctx.store, ctx.run_dir)  # the run's best before this polish
        gap = res.fun - prob.s_min_train
        new_id = write_candidate(ctx.store, row, res.x, f"polish:{o.method}", res.fun, h1, gap,
                                 meta={"polish": {k: v for k, v in res.summary().items()
                                                  if k not in ("params_before", "params_after")}})
        # best_potential.py follows the run's best: rewrite it only when the polished row beats it
        if current.id == row.id or res.fun < (current.train_action if current.train_action is not None else np.inf):
            ctx.store.set_meta("best_candidate", new_id)
            if selected_law(evolve_summary(ctx.run_dir)):  # best_potential.py holds that law: polish leaves it
                kept_law = True
            else:
                write_best_potential(ctx.run_dir, prob.library, get_candidate(ctx.store, new_id), prob.s_min_train)
                promoted = True
    held_after = {m: ctx.heldout(r.x) for m, r in results.items()}
    summary = {
        "candidate": row.id, "polished_candidate": new_id, "method": o.method, "improved": bool(improved),
        "best_potential_rewritten": promoted, "n_params": len(p0),
        "best_potential_kept": "best_potential.py holds the law evolve selected (its simplified form, refitted); "
                               "the polished candidate is in the store" if kept_law else None,
        "action_before": {"train": f0, "heldout": h0}, "action_after": {"train": res.fun, "heldout": h1},
        "s_min_train": prob.s_min_train, "s_min_heldout": prob.s_min_heldout,
        "gap_before": f0 - prob.s_min_train, "gap_after": res.fun - prob.s_min_train,
        "evaluations": res.evaluations, "seconds": res.seconds,
        "schedule": {"iterations": o.iterations, "samples": o.samples, "keep": o.keep,
                     "scale": o.scale, "seed": o.seed},
        "compare": {m: f"train {r.fun:.6g}, held-out {held_after[m]:.6g}, {r.evaluations} evaluations, "
                       f"{r.seconds:.2f}s" for m, r in results.items()},
        "captions": {"polish.png": "best training action so far against potential evaluations spent"
                                   + (" for each method (same start, same budget)" if len(results) > 1 else "")},
        "details": "polish/history.json (parameters before / after, every method's convergence history)",
        "at": time.time(),
    }
    history = {
        "candidate": row.id, "params_before": [float(v) for v in p0], "params_after": [float(v) for v in res.x],
        "methods": {m: {"action_after": r.fun, "heldout_after": held_after[m], "evaluations": r.evaluations,
                        "seconds": r.seconds, "message": r.message, "params": [float(v) for v in r.x],
                        "history": [[int(a), float(b)] for a, b in r.history]} for m, r in results.items()},
    }
    write_json(rd.polish_summary, summary)
    write_json(rd.polish_history, history)
    plot_convergence(list(results.values()), rd.polish_png, s_min=prob.s_min_train,
                     title=f"polish of candidate {row.id} ({len(p0)} parameters)")
    ctx.store.set_stage_result("polish", {
        "method": o.method, "candidate": row.id, "polished_candidate": new_id,
        "train_before": f0, "train_after": res.fun, "heldout_before": h0, "heldout_after": h1,
        "gap_after": res.fun - prob.s_min_train, "evaluations": res.evaluations, "at": time.time()})
    ctx.store.log_event("polish", "done", {"candidate": row.id, "new": new_id, "method": o.method})
    return PolishResult(summary, results, out, current)
