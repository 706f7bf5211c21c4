"""The search problem of a run: feature table, train / held-out graphs, the floors S_min.

Split (seeded, documented in docs/evolve.md): every *sample* goes to the held-out part with
probability ``heldout_fraction`` (default 0.2), independently — done on aggregated counts as
held = Binomial(n(f->g), heldout_fraction) per (source, outcome) row, rows in sorted order, with
``numpy.random.default_rng(seed)``. Escapes and self-loops are split too, so each part has its
own N(f). Both parts keep exactly the states of the run's saved fit (N(f) > min_visits on the
full data) and the fit's options (weight mode, kernel, beta); weights are recomputed per part
(low_reject: n/N_part(f); high_reject: n/N0_part with N0_part = N0 x part's share of samples).

Floors: ``s_min_train`` / ``s_min_heldout`` are the exact infima (``fit_exact``) on each part's
graph. A candidate's gap is S_train - s_min_train.

Held-out comparison (the per-state baseline): the least-action fit *of the training graph*
gives one number per state (its potential; the exclusion lower bound where unbounded). States
with no training edge get the median of the others — the per-state fit cannot say anything
about them. Its action on the held-out graph is ``baseline_heldout``: an evolved law should
predict the held-out transitions at least as well as this table of numbers.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from potsearch.science.action import FitResult, action_of, fit_exact, make_kernel
from potsearch.core.errors import InputError
from potsearch.law.featurelib import FeatureLibrary, choose_library
from potsearch.law.features import FEATURES, guess_agent_kind
from potsearch.store.rundir import SavedFit, evolve_settings, load_fit
from potsearch.science.graph import Graph
from potsearch.store import ESCAPE, Counts, RunStore
from potsearch.law.scoring import Edges, FitSettings, ScoringData, fit_parameters, likelihood_scale


@dataclass
class Problem:
    run_dir: Path
    agent: str
    names: list[str]                 # the fit's states (feature-table order)
    features: dict[str, np.ndarray]  # the full feature table (every feature of the agent)
    usable: list[str]                # features that vary across the states (offered to GP / LLM)
    train: Graph
    heldout: Graph
    train_fit: FitResult
    s_min_train: float
    s_min_heldout: float
    s_min_full: float                # the saved fit's S_min (all samples)
    target: np.ndarray               # saved fit's target potential per state (for prompts, plots)
    baseline_heldout: float          # held-out action of the training graph's per-state fit
    data: ScoringData
    split: dict = field(default_factory=dict)
    kernel: str = "softplus"
    beta: float = 1.0
    library: FeatureLibrary | None = None   # where the features come from (law/featurelib.py)
    notes: list = field(default_factory=list)  # one line each, for the stage to say (states left out)

    @property
    def n_states(self) -> int:
        return len(self.names)

    def summary(self) -> dict:
        return {"agent": self.agent, "states": self.n_states, "train_edges": self.train.n_edges,
                "heldout_edges": self.heldout.n_edges, "s_min_train": self.s_min_train,
                "s_min_heldout": self.s_min_heldout, "s_min_full": self.s_min_full,
                "baseline_heldout": self.baseline_heldout, "features": self.usable, "split": self.split}


def split_counts(counts: Counts, heldout_fraction: float, seed: int) -> tuple[Counts, Counts]:
    """Each sample held out with probability ``heldout_fraction`` (binomial per aggregated row)."""
    order = np.lexsort((counts.dst, counts.src))
    src, dst, cnt = counts.src[order], counts.dst[order], counts.count[order].astype(np.int64)
    rng = np.random.default_rng(seed)
    held = rng.binomial(cnt, heldout_fraction) if heldout_fraction > 0 else np.zeros_like(cnt)
    train = cnt - held
    mk = lambda c: Counts(counts.states, src[c > 0], dst[c > 0], c[c > 0], meta=dict(counts.meta))  # noqa: E731
    return mk(train), mk(held)


def part_graph(part: Counts, index: dict[str, int], names: list[str], weight: str, n0_part: float,
               min_visits: int, escapes: str = "count") -> Graph:
    """The graph of one part on a fixed state set (``index``: state text -> local index); ``escapes``: the
    fit's convention (``condition``: N(f) without the escapes, science/graph.py)."""
    glob = np.array([index.get(s, -1) for s in part.states], dtype=np.int64)
    n = len(names)
    visits_all = part.visits()
    if escapes == "condition":
        esc = part.dst == ESCAPE
        visits_all = visits_all - np.bincount(part.src[esc], weights=part.count[esc],
                                              minlength=len(part.states)).astype(np.int64)
    visits = np.zeros(n, dtype=np.int64)
    ok = glob >= 0
    np.add.at(visits, glob[ok], visits_all[ok])
    move = (part.dst != ESCAPE) & (part.dst != part.src)
    s, d, c = glob[part.src[move]], glob[part.dst[move]], part.count[move]
    keep = (s >= 0) & (d >= 0) & (c > 0)
    s, d, c = s[keep], d[keep], c[keep]
    if len(s):
        key, inv = np.unique(s * n + d, return_inverse=True)
        c = np.bincount(inv, weights=c).astype(np.int64)
        s, d = key // n, key % n
    if weight == "low_reject":
        w = np.minimum(1.0, c / np.maximum(visits[s], 1))
    else:
        w = c / float(n0_part)
    # visits floor 1: a state never drawn in this part still needs a finite "one unseen sample" bound
    return Graph(names=list(names), visits=np.maximum(visits, 1), src=s.astype(np.int64), dst=d.astype(np.int64), n=c,
                 w=w.astype(float), weight=weight, n0=float(n0_part), min_visits=min_visits,
                 n_samples=part.total, n_states_all=n)


def agent_of(store: RunStore, names: list[str], agent: str | None = None) -> str:
    """The run's agent kind: ``agent`` when given, else the store's kind/config, else guessed from the states."""
    if agent and agent != "auto":
        if agent not in FEATURES:
            raise InputError(f"unknown agent kind {agent!r} (choose auto, word or fitter)")
        return agent
    info = store.run_info()
    for cand in (info.get("kind"), (info.get("config") or {}).get("kind"),
                 (info.get("config") or {}).get("agent")):
        if isinstance(cand, str) and cand in FEATURES:
            return cand
        if isinstance(cand, dict) and cand.get("kind") in FEATURES:
            return cand["kind"]
    return guess_agent_kind(names)


def load_problem(run_dir, seed: int = 0, heldout_fraction: float = 0.2, agent: str | None = None,
                 fit: FitSettings | None = None, features: list[str] | None = None,
                 library: dict | None = None) -> Problem:
    """Everything the search needs from a run directory (needs its saved fit: StageMissing otherwise).
    ``library``: the feature library evolve recorded (summary.json config.features), rebuilt as it was."""
    run_dir = Path(run_dir)
    saved: SavedFit = load_fit(run_dir)
    if not 0.0 <= heldout_fraction < 1.0:
        raise InputError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    store = RunStore.open(run_dir)
    try:
        counts = store.counts()
        meta = store.state_meta()
        kind = agent_of(store, saved.names, agent)
        lib = choose_library(store, kind, saved.names, agent, library)
    finally:
        store.close()
    opts = saved.summary.get("options", {}) or {}
    weight = opts.get("weight", "low_reject")
    kname, beta = opts.get("kernel", "softplus"), float(opts.get("beta", 1.0) or 1.0)
    min_visits = int(opts.get("min_visits", 1))
    covered, notes = lib.keep(saved.names, run_dir)  # states without a table row leave the search (notes)
    names = [s for s, ok in zip(saved.names, covered) if ok]
    index = {s: i for i, s in enumerate(names)}
    known = set(counts.states)
    missing = [s for s in names if s not in known]
    if missing:
        raise InputError(f"the saved fit names states absent from the store (e.g. {missing[0]!r}): re-run fit",
                         str(run_dir))
    train_c, held_c = split_counts(counts, heldout_fraction, seed)
    total = max(counts.total, 1)
    n0 = opts.get("n0") or total / max(len(counts.states), 1)
    escapes = opts.get("escapes", "count")
    g_train = part_graph(train_c, index, names, weight, n0 * train_c.total / total, min_visits, escapes)
    g_held = part_graph(held_c, index, names, weight, max(n0 * held_c.total / total, 1e-300), min_visits, escapes)
    kernel = make_kernel(kname, beta)
    f_train = fit_exact(g_train, kernel)
    s_min_held = fit_exact(g_held, kernel).action if g_held.n_edges else 0.0
    # per-state baseline on the held-out graph
    base = f_train.target_potential().astype(float)
    seen = np.zeros(len(names), dtype=bool)
    seen[g_train.src] = seen[g_train.dst] = True
    fill = float(np.median(base[seen])) if seen.any() else 0.0
    base = np.where(seen & np.isfinite(base), base, fill)
    baseline = action_of(base, g_held, kernel) if g_held.n_edges else 0.0
    table = lib.compute(names, meta)
    if features:
        unknown = [f for f in features if f not in table]
        if unknown:
            raise InputError(f"unknown feature {unknown[0]!r} for the {lib.kind} agent "
                             f"(features: {', '.join(table)})")
        table = {k: table[k] for k in features}
    usable = [k for k, v in table.items() if len(v) and np.ptp(v) > 0]
    data = ScoringData(
        features=table, n_states=len(names),
        train=Edges(g_train.src, g_train.dst, g_train.w, g_train.n_states),
        heldout=Edges(g_held.src, g_held.dst, g_held.w, g_held.n_states),
        kernel=kernel.name, beta=float(getattr(kernel, "beta", 1.0)),
        s_min_train=float(f_train.action), s_min_heldout=float(s_min_held), fit=fit or FitSettings(),
        **likelihood_scale(len(names), g_train.n, g_train.w),
        heldout_nats_per_action=(likelihood_scale(len(names), g_held.n, g_held.w)["nats_per_action"]
                                 if g_held.n_edges else 0.0),
    )
    return Problem(
        run_dir=run_dir, agent=lib.kind, names=names, features=table, usable=usable, train=g_train, heldout=g_held,
        train_fit=f_train, s_min_train=float(f_train.action), s_min_heldout=float(s_min_held),
        s_min_full=saved.s_min, target=saved.target_potential()[covered], baseline_heldout=float(baseline), data=data,
        split={"heldout_fraction": heldout_fraction, "seed": seed, "unit": "sample",
               "train_samples": train_c.total, "heldout_samples": held_c.total},
        kernel=kernel.name, beta=float(getattr(kernel, "beta", 1.0)), library=lib, notes=notes,
    )


def _fit_settings(raw: dict) -> FitSettings:
    """FitSettings from a run's recorded ``fit`` block: a value that is not a number within its field's
    limits (the ``gt`` / ``ge`` metadata the config loader checks) is the default."""
    kw = {}
    for f in dataclasses.fields(FitSettings):
        v = raw.get(f.name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            continue
        if ("gt" in f.metadata and not v > f.metadata["gt"]) or ("ge" in f.metadata and not v >= f.metadata["ge"]):
            continue
        kw[f.name] = int(v) if isinstance(f.default, int) else float(v)
    return FitSettings(**kw)


def problem_settings(run_dir, store: RunStore | None = None) -> dict:
    """``load_problem``'s keywords for the problem evolve searched on this run (``rundir.evolve_settings``:
    split seed and fraction, agent, fit settings as recorded; the feature library it recorded); an agent that is no feature library, or
    no record, leaves load_problem's default (the run's own kind)."""
    s = evolve_settings(run_dir, store)
    kw = {k: s[k] for k in ("seed", "heldout_fraction") if k in s}
    if s.get("agent") in FEATURES:
        kw["agent"] = s["agent"]
    if "fit" in s:
        kw["fit"] = _fit_settings(s["fit"])
    from potsearch.law.featurelib import recorded_library
    from potsearch.store.rundir import evolve_summary

    lib = recorded_library(evolve_summary(run_dir))
    if lib:
        kw["library"] = lib
    return kw


def problem_for_run(run_dir, store: RunStore | None = None) -> Problem:
    """The problem evolve searched on this run, rebuilt from what it recorded (``problem_settings``): the
    one way polish, attribute, show and report get it."""
    return load_problem(run_dir, **problem_settings(run_dir, store))


def fit_params(fn, problem: Problem, p0=None, n_params: int | None = None, seed: int = 0):
    """Fit a candidate's parameters on the training edges: returns (params, train_action).

    ``fn`` is ``potential(x, p)``; the parameter count is ``n_params``, else ``len(p0)``, else
    ``fn.N_PARAMS`` / the defining module's N_PARAMS attribute when present, else 0."""
    if n_params is None:
        if p0 is not None:
            n_params = len(p0)
        else:
            n_params = int(getattr(fn, "N_PARAMS", 0) or (getattr(fn, "__globals__", {}) or {}).get("N_PARAMS", 0))
    p, S, _ = fit_parameters(fn, n_params, problem.data, p0=p0, seed=seed)
    return p, float(S)


def nan_to_none(x):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x

