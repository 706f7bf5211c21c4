"""Which features (and which terms) of a candidate potential matter, measured instead of guessed.

Three measures, all in units of the action S (lower is better, so a positive Δ means "needed"):

* ablation — replace the feature by its mean over states (a term: drop it; a constant shift is
  invisible to the action, so "set to its mean" and "remove" coincide for terms), refit the
  remaining parameters from the current ones, ΔS = S(ablated, refitted) − S(full, refitted the
  same way). The refit lets the other features take over what they can: ΔS is what the feature
  contributes that nothing else in the formula can.
* permutation — shuffle the feature's values across states (parameters fixed), ΔS, mean ± sd
  over seeded repeats. No refit: it measures how much the fitted formula relies on the feature,
  including reliance a refit could have compensated (correlated features share the blame).
* parameter sensitivity — dS/dp_i · |p_i| (first order) and ½ ∂²S/∂p_i² · p_i² (second order, the
  action lost if p_i were set to 0 with a quadratic model). At a fitted optimum dS/dp ≈ 0, so the
  first-order number is mostly a convergence check; the second-order one is the informative one.

All functions are pure: a compiled candidate, ``ActionObjective``s (potsearch.search.polish) for the
training and (optionally) held-out edges, and the parameter vector.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from potsearch.law.candidate import CandidateInfo, candidate_info, terms_source
from potsearch.law.formula import FormulaError
from potsearch.law.optimize import ActionObjective, lbfgs

CSV_COLUMNS = ["kind", "name", "rank", "ablation_delta", "ablation_delta_heldout", "permutation_mean",
               "permutation_sd", "permutation_heldout_mean", "sensitivity", "curvature", "params", "detail"]


@dataclass
class Row:
    kind: str                       # feature | term | param
    name: str
    rank: int = 0
    ablation_delta: float = math.nan
    ablation_delta_heldout: float = math.nan
    permutation_mean: float = math.nan
    permutation_sd: float = math.nan
    permutation_heldout_mean: float = math.nan
    sensitivity: float = math.nan   # sum |dS/dp_i * p_i| over the parameters involved
    curvature: float = math.nan     # sum 1/2 d2S/dp_i2 * p_i^2 over the parameters involved
    params: list = field(default_factory=list)
    detail: str = ""


@dataclass
class Attribution:
    base_train: float
    base_heldout: float | None
    refit_train: float
    rows: list[Row]
    repeats: int
    seed: int
    notes: list = field(default_factory=list)

    def by_kind(self, kind: str) -> list[Row]:
        return sorted([r for r in self.rows if r.kind == kind], key=lambda r: r.rank)

    def ranking(self, kind: str = "feature") -> list[str]:
        return [r.name for r in self.by_kind(kind)]

    def summary(self) -> dict:
        feats = self.by_kind("feature")
        return {
            "base_train_action": self.base_train, "base_heldout_action": self.base_heldout,
            "refit_train_action": self.refit_train, "repeats": self.repeats, "seed": self.seed,
            "ranking": [r.name for r in feats],
            "top_feature": feats[0].name if feats else None,
            "features": [_clean(asdict(r)) for r in feats],
            "terms": [_clean(asdict(r)) for r in self.by_kind("term")],
            "params": [_clean(asdict(r)) for r in self.by_kind("param")],
            "notes": self.notes,
        }


def _clean(d: dict) -> dict:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}


# ----------------------------------------------------------------------------- pieces
def param_sensitivity(objective: ActionObjective, params) -> tuple[np.ndarray, np.ndarray]:
    """(dS/dp_i * |p_i|, 1/2 d2S/dp_i2 * p_i^2) per parameter (central differences on S)."""
    p = np.asarray(params, dtype=float)
    S0, grad = objective.value_and_grad(p)
    first = grad * np.abs(p)
    second = np.zeros_like(p)
    for i in range(len(p)):
        h = 1e-3 * max(abs(p[i]), 1e-3)
        hi, lo = p.copy(), p.copy()
        hi[i] += h
        lo[i] -= h
        d2 = (objective(hi) - 2 * S0 + objective(lo)) / h**2
        second[i] = 0.5 * d2 * p[i] ** 2 if np.isfinite(d2) else math.nan
    return first, second


def _refit(objective: ActionObjective, p0, evals: int) -> tuple[np.ndarray, float]:
    if len(p0) == 0:
        return np.asarray(p0, dtype=float), objective(p0)
    r = lbfgs(objective, p0, max_evals=evals, restarts=0)
    return r.x, r.fun


def _mean_fill(x: dict, name: str, mean: float) -> dict:
    out = dict(x)
    out[name] = np.full_like(np.asarray(x[name], dtype=float), mean)
    return out


def _permuted(x: dict, name: str, perm: np.ndarray) -> dict:
    out = dict(x)
    out[name] = np.asarray(x[name])[perm]
    return out


def _states_of(obj: ActionObjective) -> np.ndarray:
    """Rows of the feature table that this graph's edges touch (shuffles stay among them)."""
    return np.unique(np.concatenate([obj.src, obj.dst]))


def _shuffle_rows(rng, rows: np.ndarray, n_rows: int) -> np.ndarray:
    perm = np.arange(n_rows)
    perm[rows] = rows[rng.permutation(len(rows))]
    return perm


# ----------------------------------------------------------------------------- the attribution
def attribute(source: str, fn, params, train: ActionObjective, heldout: ActionObjective | None = None,
              repeats: int = 10, seed: int = 0, refit_evals: int = 1500, terms_fn=None,
              info: CandidateInfo | None = None) -> Attribution:
    """Ablation, permutation and sensitivity per feature, per additive term and per parameter.

    ``fn`` is the compiled ``potential``; ``terms_fn`` (optional) the compiled ``potential_terms`` of
    ``candidate.terms_source`` — without it, terms are not attributed."""
    p = np.asarray(params, dtype=float)
    info = info or candidate_info(source)
    rng = np.random.default_rng(seed)
    base = train(p)
    base_h = heldout(p) if heldout is not None else None
    p_full, S_full = _refit(train, p, refit_evals)
    ref = min(base, S_full)
    # held-out reference: the parameters the train reference stands for
    ref_h = (heldout(p_full) if S_full < base else base_h) if heldout is not None else None
    notes = []
    rows: list[Row] = []
    tr_rows = _states_of(train)
    ho_rows = _states_of(heldout) if heldout is not None else None
    first, second = param_sensitivity(train, p)

    # parameters
    for i in range(len(p)):
        rows.append(Row("param", f"p[{i}]", sensitivity=float(abs(first[i])), curvature=float(second[i]),
                        params=[i], detail=f"value {p[i]:.6g}; dS/dp*|p| = {first[i]:.3g}"))

    # features
    for name in info.features:
        if name not in train.x:
            notes.append(f"feature {name!r} is read by the code but absent from the feature table")
            continue
        vals = np.asarray(train.x[name], dtype=float)
        mean = float(np.mean(vals[tr_rows])) if len(tr_rows) else float(np.mean(vals))
        xa = _mean_fill(train.x, name, mean)
        obj_a = train.with_features(xa)
        pa, Sa = _refit(obj_a, p, refit_evals)
        row = Row("feature", name, ablation_delta=float(Sa - ref))
        if heldout is not None:
            row.ablation_delta_heldout = float(heldout.with_features(_mean_fill(heldout.x, name, mean))(pa) - ref_h)
        deltas, deltas_h = [], []
        for _ in range(repeats):
            perm = _shuffle_rows(rng, tr_rows, train.n_rows)
            deltas.append(train.with_features(_permuted(train.x, name, perm))(p) - base)
            if heldout is not None:
                perm_h = _shuffle_rows(rng, ho_rows, heldout.n_rows)
                deltas_h.append(heldout.with_features(_permuted(heldout.x, name, perm_h))(p) - base_h)
        if deltas:
            row.permutation_mean = float(np.mean(deltas))
            row.permutation_sd = float(np.std(deltas, ddof=1)) if len(deltas) > 1 else 0.0
        if deltas_h:
            row.permutation_heldout_mean = float(np.mean(deltas_h))
        involved = sorted({q for t in info.terms if name in t.features for q in t.params})
        row.params = involved
        if involved:
            row.sensitivity = float(np.sum(np.abs(first[involved])))
            row.curvature = float(np.nansum(second[involved]))
        row.detail = f"mean {mean:.6g}"
        rows.append(row)

    # terms
    if terms_fn is not None and len(info.terms) > 1:
        for t in info.terms:
            j = t.index

            def dropped(x, q, j=j):
                parts = terms_fn(x, q)
                return sum(np.asarray(v, dtype=float) for k, v in enumerate(parts) if k != j) + 0.0

            obj_d = train.with_features(train.x, fn=dropped)
            pd_, Sd = _refit(obj_d, p, refit_evals)
            row = Row("term", f"term {j}", ablation_delta=float(Sd - ref), params=list(t.params),
                      detail=("+ " if t.sign > 0 else "- ") + t.code)
            if heldout is not None:
                row.ablation_delta_heldout = float(heldout.with_features(heldout.x, fn=dropped)(pd_) - ref_h)
            deltas = []
            for _ in range(repeats):
                perm = _shuffle_rows(rng, tr_rows, train.n_rows)

                def shuffled(x, q, j=j, perm=perm):
                    parts = [np.broadcast_to(np.asarray(v, dtype=float), (train.n_rows,)) for v in terms_fn(x, q)]
                    return sum(parts) - parts[j] + parts[j][perm]

                deltas.append(train.with_features(train.x, fn=shuffled)(p) - base)
            row.permutation_mean = float(np.mean(deltas)) if deltas else math.nan
            row.permutation_sd = float(np.std(deltas, ddof=1)) if len(deltas) > 1 else 0.0
            if t.params:
                row.sensitivity = float(np.sum(np.abs(first[t.params])))
                row.curvature = float(np.nansum(second[t.params]))
            rows.append(row)
        notes.append("term ablation drops the term and refits the rest (a constant term never matters: "
                     "the action ignores a constant shift of V)")
    elif len(info.terms) <= 1:
        notes.append("the return expression has a single top-level term: no per-term attribution")

    _rank(rows)
    return Attribution(base, base_h, S_full, rows, repeats, seed, notes)


def _key(r: Row):
    a = r.ablation_delta if math.isfinite(r.ablation_delta) else -math.inf
    m = r.permutation_mean if math.isfinite(r.permutation_mean) else -math.inf
    c = r.curvature if math.isfinite(r.curvature) else -math.inf
    return (a, m) if r.kind != "param" else (c, r.sensitivity)


def _rank(rows: list[Row]) -> None:
    for kind in ("feature", "term", "param"):
        group = sorted([r for r in rows if r.kind == kind], key=_key, reverse=True)
        for k, r in enumerate(group, 1):
            r.rank = k


def compile_terms(source: str, compile_fn):
    """``potential_terms`` for the candidate (via ``compile_fn(source) -> namespace``) or None."""
    try:
        ns = compile_fn(terms_source(source))
    except (FormulaError, SyntaxError, ValueError):
        return None
    return ns.get("potential_terms")


# ----------------------------------------------------------------------------- outputs
def write_csv(att: Attribution, path) -> None:
    """attribution.csv; cells holding candidate code (a term's detail starts with + or -) are
    written as spreadsheet text (``textsafe.csv_cell``), never as a formula, and control characters
    of model text as ``\\xNN`` escapes (``textsafe.printable``)."""
    import csv

    from potsearch.core.textsafe import csv_cell, printable

    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for kind in ("feature", "term", "param"):
            for r in att.by_kind(kind):
                d = asdict(r)
                w.writerow([csv_cell(printable(v) if isinstance(v, str) else v) for v in (
                    _fmt(d[c]) if c != "params" else " ".join(str(i) for i in r.params) for c in CSV_COLUMNS)])


def _fmt(v):
    if isinstance(v, float):
        return "" if not math.isfinite(v) else repr(v)
    return v


def plot(att: Attribution, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from potsearch.core.textsafe import PLAIN

    feats = att.by_kind("feature")[::-1]
    terms = att.by_kind("term")[::-1]
    panels = [("features", feats)] + ([("terms", terms)] if terms else [])
    height = max(2.4, 0.32 * max(len(feats), len(terms)) + 1.2)
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), height), squeeze=False)
    for ax, (title, rows) in zip(axes[0], panels):
        y = np.arange(len(rows))
        abl = [max(r.ablation_delta, 0) if math.isfinite(r.ablation_delta) else 0 for r in rows]
        pm = [r.permutation_mean if math.isfinite(r.permutation_mean) else 0 for r in rows]
        ps = [r.permutation_sd if math.isfinite(r.permutation_sd) else 0 for r in rows]
        ax.barh(y - 0.2, abl, height=0.4, label="ablation ΔS (set to mean / dropped, refit)")
        ax.barh(y + 0.2, pm, height=0.4, xerr=ps, label="permutation ΔS (mean ± sd)", alpha=0.8)
        ax.set_yticks(y)
        ax.set_yticklabels([r.name if title == "features" else (r.detail[:38]) for r in rows], fontsize=8,
                           **PLAIN)  # names and model code: plain text, never mathtext
        ax.set_xlabel("Δ train action")
        ax.set_title(f"attribution: {title}")
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
