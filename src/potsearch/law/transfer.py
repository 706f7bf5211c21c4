"""Law transfer: does the law found on one run explain another run's transitions?

A law (a compiled candidate ``potential(x, p)``: our own source compiled in process, or a model-written one
as a sandboxed function) has its parameters refitted on the other run's data (its structure kept), with the
scoring's own fit (``law.scoring.score_function``). Its training-action gap to that run's exact floor S_min
stands beside the gap of that run's own law, refitted the same way; both gaps get bootstrap standard errors
(every state's samples resampled, graph rebuilt with the fit's options, S_min and both laws refitted).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from potsearch.law.scoring import Edges, ScoringData, score_function
from potsearch.science.action import fit_exact, make_kernel
from potsearch.science.graph import build_graph
from potsearch.science.uncertainty import resample_counts
from potsearch.store import Counts


@dataclass
class Law:
    """A compiled law: ``fn(x, p)``, its parameter count and its parameters on its own run."""

    label: str
    fn: object
    n_params: int
    params: list[float]


@dataclass
class TransferResult:
    transferred: dict    # the law of the other run refitted here: params, train_action, gap, gap_se
    native: dict         # this run's own law refitted the same way
    s_min: float
    replicates: int

    @property
    def gap_difference(self) -> float:
        return self.transferred["gap"] - self.native["gap"]


def scoring_data(counts: Counts, features: dict[str, np.ndarray], names: list[str], weight: str = "low_reject",
                 n0: float | None = None, min_visits: int = 1, kernel: str = "softplus", beta: float = 1.0,
                 escapes: str = "count") -> ScoringData:
    """The whole run as training data (no held-out part) on the states the graph keeps; ``features`` is
    the feature table in ``names`` order."""
    g = build_graph(counts, weight=weight, n0=n0, min_visits=min_visits, escapes=escapes)
    index = {s: i for i, s in enumerate(names)}
    missing = [s for s in g.names if s not in index]
    if missing:
        raise ValueError(f"no features for state {missing[0]!r}")
    rows = np.array([index[s] for s in g.names], dtype=int)
    k = make_kernel(kernel, beta)
    s_min = fit_exact(g, k).action
    empty = Edges(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), g.n_states)
    return ScoringData(features={f: np.asarray(v, float)[rows] for f, v in features.items()}, n_states=g.n_states,
                       train=Edges(g.src, g.dst, g.w, g.n_states), heldout=empty, kernel=k.name,
                       beta=float(getattr(k, "beta", 1.0)), s_min_train=float(s_min), s_min_heldout=0.0)


def _score(law: Law, data: ScoringData, p0) -> dict:
    out = score_function(law.fn, law.n_params, data, p0=p0)
    if out["error"]:
        raise ValueError(f"law {law.label!r} cannot be fitted on this run: {out['error']}")
    return out


def law_transfer(law: Law, native: Law, counts: Counts, features: dict[str, np.ndarray], names: list[str],
                 B: int = 50, seed: int = 0, **graph_options) -> TransferResult:
    """``law`` (found on another run) and ``native`` (this run's own) refitted on this run's ``counts``;
    each gap to S_min with its bootstrap standard error (B replicates)."""
    data = scoring_data(counts, features, names, **graph_options)
    t, n = _score(law, data, law.params), _score(native, data, native.params)
    rng = np.random.default_rng(seed)
    gaps = np.full((B, 2), np.nan)
    for b in range(B):
        try:
            d = scoring_data(resample_counts(counts, rng), features, names, **graph_options)
            gaps[b] = [_score(law, d, t["params"])["gap"], _score(native, d, n["params"])["gap"]]
        except ValueError:
            continue
    ok = np.isfinite(gaps).all(axis=1)
    se = gaps[ok].std(axis=0, ddof=1) if ok.sum() > 1 else np.full(2, np.nan)
    pick = ("params", "train_action", "gap")
    return TransferResult({"law": law.label, **{k: t[k] for k in pick}, "gap_se": float(se[0])},
                          {"law": native.label, **{k: n[k] for k in pick}, "gap_se": float(se[1])},
                          data.s_min_train, int(ok.sum()))
