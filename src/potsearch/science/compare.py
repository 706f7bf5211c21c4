"""Two or more fitted runs side by side: do they share a potential, at what scale, where do they differ?

Pure numpy/scipy/pandas, no file. For a pair of runs A and B (each a :class:`RunData`: its fit's
per-state numbers, its count table and the graph options of its fit):

* **states**: shared states, states only one run has, and for the shared ones whether the SCC
  structure lines up (a state's SCC in A and its SCC in B overlap most with each other);
* **aligned** states: the largest group of shared states that lie in one SCC in A *and* one SCC in B.
  Only there are both potentials defined up to one constant each, so only there can they be compared;
* **rank agreement**: Spearman and Kendall on the aligned potentials, with bootstrap percentile intervals
  (each replicate refits resampled data, which adds noise: the interval sits at or below the estimate when
  the potentials are noisy, a conservative reading of the agreement);
* **scale**: V_A ≈ s·V_B + c by Deming regression (errors in both variables; the ratio of their error
  variances from the bootstrap), its interval the bootstrap percentiles. s is the ratio of the two
  agents' inverse temperatures when they share preferences;
* **differences**: per aligned state the residual V_A − (s·V_B + c), its standard error over the bootstrap
  replicates (s and c refitted in each), a two-sided z-test and Holm (family-wise) or Benjamini–Hochberg correction.
  A negative residual: A prefers the state (lower potential) more than B predicts;
* **homogeneity**: per source state both runs sampled, an Anderson–Goodman χ² test that the two
  transition rows come from one distribution (outcomes with fewer than ``min_count`` samples in the two
  rows together pooled into one column), and the overall χ² summed over the states.

The bootstrap resamples every state's samples from its own count table (``science.uncertainty``'s
``resample_counts``), rebuilds the graph with the fit's options and refits exactly; both runs'
replicates are independent.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from potsearch.science.action import fit_exact, make_kernel
from potsearch.science.graph import build_graph
from potsearch.science.uncertainty import resample_counts
from potsearch.store import ESCAPE, Counts

CORRECTIONS = ("bh", "holm")


@dataclass
class RunData:
    """One fitted run: its states' potentials inside their SCCs (any constant per SCC), SCC labels,
    unbounded flags, its count table and the graph options of its fit."""

    label: str
    names: list[str]
    scc_potential: np.ndarray
    scc: np.ndarray
    unbounded: np.ndarray
    counts: Counts
    weight: str = "low_reject"
    n0: float | None = None
    min_visits: int = 1
    kernel: str = "softplus"
    beta: float = 1.0
    escapes: str = "count"

    @classmethod
    def from_fit(cls, label: str, res, counts: Counts, escapes: str = "count") -> "RunData":
        """From a ``science.action.FitResult`` (or a saved fit with the same fields and ``summary``)."""
        o = res.options if hasattr(res, "options") else res.summary.get("options", {})
        return cls(label, list(res.names), np.asarray(res.scc_potential, float), np.asarray(res.scc),
                   np.asarray(res.unbounded, bool), counts, o.get("weight", "low_reject"), o.get("n0"),
                   int(o.get("min_visits", 1)), o.get("kernel", "softplus"), float(o.get("beta", 1.0) or 1.0),
                   o.get("escapes", escapes))


def bootstrap_replicates(run: RunData, B: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(potentials, scc labels), each (B, states) in ``run.names`` order: every replicate resamples the
    counts, rebuilds the graph with the run's options and refits; a state the replicate dropped is NaN / -1."""
    kernel = make_kernel(run.kernel, run.beta)
    index = {s: i for i, s in enumerate(run.names)}
    pot = np.full((B, len(run.names)), np.nan)
    lab = np.full((B, len(run.names)), -1, dtype=np.int64)
    for b in range(B):
        g = build_graph(resample_counts(run.counts, rng), weight=run.weight, n0=run.n0,
                        min_visits=run.min_visits, escapes=run.escapes)
        if not g.n_states:
            continue
        r = fit_exact(g, kernel)
        idx = np.array([index.get(s, -1) for s in g.names])
        ok = idx >= 0
        pot[b, idx[ok]], lab[b, idx[ok]] = r.scc_potential[ok], r.scc[ok]
    return pot, lab


def deming(x: np.ndarray, y: np.ndarray, delta: float = 1.0) -> tuple[float, float]:
    """(s, c) of y ≈ s·x + c with errors in both; ``delta`` = error variance of y / error variance of x."""
    mx, my = x.mean(), y.mean()
    sxx, syy, sxy = np.mean((x - mx) ** 2), np.mean((y - my) ** 2), np.mean((x - mx) * (y - my))
    if sxy == 0:
        return 0.0, float(my)
    d = syy - delta * sxx
    s = (d + np.sqrt(d * d + 4 * delta * sxy * sxy)) / (2 * sxy)
    return float(s), float(my - s * mx)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (family-wise error)."""
    order = np.argsort(p)
    adj = np.maximum.accumulate(np.minimum(1.0, p[order] * (len(p) - np.arange(len(p)))))
    out = np.empty_like(adj)
    out[order] = adj
    return out


def adjust(p: np.ndarray, correction: str) -> np.ndarray:
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r} (choose from {', '.join(CORRECTIONS)})")
    if not len(p):
        return p
    return holm(p) if correction == "holm" else stats.false_discovery_control(p, method="bh")


def state_table(a: RunData, b: RunData) -> pd.DataFrame:
    """One row per state of either run: where it is, its SCCs, and for shared states whether its SCCs
    line up (``scc_match``: its SCC in A and its SCC in B share more shared states with each other than
    with any other SCC of the other run)."""
    ia, ib = {s: i for i, s in enumerate(a.names)}, {s: i for i, s in enumerate(b.names)}
    states = list(a.names) + [s for s in b.names if s not in ia]
    df = pd.DataFrame({"state": states, "in_a": [s in ia for s in states], "in_b": [s in ib for s in states]})
    df["scc_a"] = [int(a.scc[ia[s]]) if s in ia else -1 for s in states]
    df["scc_b"] = [int(b.scc[ib[s]]) if s in ib else -1 for s in states]
    df["unbounded_a"] = [bool(a.unbounded[ia[s]]) if s in ia else False for s in states]
    df["unbounded_b"] = [bool(b.unbounded[ib[s]]) if s in ib else False for s in states]
    shared = df["in_a"] & df["in_b"]
    sh = df[shared]
    n_ab = sh.groupby(["scc_a", "scc_b"])["state"].transform("size")
    # a shared state's SCCs line up when its (A, B) SCC pair is the largest overlap of its A-SCC and of its B-SCC
    best_a = n_ab.groupby(sh["scc_a"]).transform("max")
    best_b = n_ab.groupby(sh["scc_b"]).transform("max")
    df["scc_match"] = False
    df.loc[shared, "scc_match"] = ((n_ab == best_a) & (n_ab == best_b)).to_numpy()
    # the aligned group: the largest set of shared states in one SCC of A and one SCC of B
    df["aligned"] = False
    if len(sh):
        key = sh.groupby(["scc_a", "scc_b"]).size().sort_values(ascending=False, kind="stable").index[0]
        df.loc[shared & (df["scc_a"] == key[0]) & (df["scc_b"] == key[1]), "aligned"] = True
    return df


def _centred(v: np.ndarray) -> np.ndarray:
    if v.shape[-1] == 0:
        return v
    with warnings.catch_warnings():   # a replicate row with no state in the main SCC stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        return v - np.nanmean(v, axis=-1, keepdims=True)


def _replicate_block(pot: np.ndarray, lab: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The replicates' potentials of the aligned states, centred: a state outside the SCC that holds most
    of them in that replicate (a rare edge vanished) is NaN there."""
    p, l = pot[:, cols], lab[:, cols]
    mode = np.array([np.bincount(r[r >= 0]).argmax() if (r >= 0).any() else -1 for r in l])
    return _centred(np.where((l == mode[:, None]) & (l >= 0), p, np.nan))


def _paired(x: np.ndarray, y: np.ndarray, fn, *args):
    ok = np.isfinite(x) & np.isfinite(y)
    return fn(x[ok], y[ok], *args) if ok.sum() >= 3 else None


@dataclass
class PairComparison:
    """The comparison of run ``a`` with run ``b`` (module doc). DataFrames: ``states`` (every state of
    either run), ``aligned`` (one row per aligned state: potentials, residual after the scale, z, p, q,
    flagged, who prefers it), ``homogeneity`` (one row per shared source state); ``summary`` holds the
    numbers (scale and interval, rank correlations and intervals, overall χ², counts)."""

    a: str
    b: str
    states: pd.DataFrame
    aligned: pd.DataFrame
    homogeneity: pd.DataFrame
    summary: dict = field(default_factory=dict)

    @property
    def flagged(self) -> list[str]:
        return self.aligned.loc[self.aligned["flagged"], "state"].tolist() if len(self.aligned) else []


def compare_pair(a: RunData, b: RunData, B: int = 200, seed: int = 0, alpha: float = 0.05,
                 correction: str = "holm", min_count: int = 5, replicates: dict | None = None) -> PairComparison:
    """Compare two runs (module doc). ``replicates``: label -> (potentials, labels) from
    :func:`bootstrap_replicates`, computed here when absent (B replicates per run, seeded)."""
    rng = np.random.default_rng(seed)
    reps = dict(replicates or {})
    for run in (a, b):
        if run.label not in reps and B > 0:
            reps[run.label] = bootstrap_replicates(run, B, rng)
    states = state_table(a, b)
    al = states.loc[states["aligned"], "state"].tolist()
    ia, ib = {s: i for i, s in enumerate(a.names)}, {s: i for i, s in enumerate(b.names)}
    ca, cb = np.array([ia[s] for s in al], dtype=int), np.array([ib[s] for s in al], dtype=int)
    va, vb = _centred(a.scc_potential[ca]), _centred(b.scc_potential[cb])
    summary = {"a": a.label, "b": b.label, "states_a": len(a.names), "states_b": len(b.names),
               "shared": int((states["in_a"] & states["in_b"]).sum()), "only_a": int((~states["in_b"]).sum()),
               "only_b": int((~states["in_a"]).sum()), "scc_match": int(states["scc_match"].sum()),
               "aligned": len(al), "escapes": [a.escapes, b.escapes], "bootstrap": B, "alpha": alpha,
               "correction": correction}
    aligned = pd.DataFrame({"state": al, "potential_a": va, "potential_b": vb})
    if len(al) >= 3 and np.ptp(vb) > 0 and np.ptp(va) > 0:
        ra = _replicate_block(*reps[a.label], ca) if B > 0 else np.empty((0, len(al)))
        rb = _replicate_block(*reps[b.label], cb) if B > 0 else np.empty((0, len(al)))
        # a replicate counts when at least half of the aligned states are in its main SCC in both runs
        ok = (np.isfinite(ra) & np.isfinite(rb)).mean(axis=1) >= 0.5 if len(ra) else np.zeros(0, bool)
        ra, rb = ra[ok], rb[ok]
        var_a, var_b = (np.nanvar(ra, axis=0, ddof=1), np.nanvar(rb, axis=0, ddof=1)) if len(ra) > 1 else (None, None)
        delta = float(np.nanmean(var_a) / np.nanmean(var_b)) if var_a is not None and np.nanmean(var_b) > 0 else 1.0
        s, c = deming(vb, va, delta)
        resid = va - (s * vb + c)
        fits = np.array([_paired(rb[k], ra[k], deming, delta) for k in range(len(ra))]).reshape(-1, 2)
        sb = fits[:, 0]
        rr = ra - (sb[:, None] * rb + fits[:, 1][:, None])
        rho = [_paired(rb[k], ra[k], lambda x, y: stats.spearmanr(x, y)[0]) for k in range(len(ra))]
        tau = [_paired(rb[k], ra[k], lambda x, y: stats.kendalltau(x, y)[0]) for k in range(len(ra))]
        lo, hi = 100 * alpha / 2, 100 * (1 - alpha / 2)
        ci = (lambda x: [float(np.nanpercentile(x, lo)), float(np.nanpercentile(x, hi))] if len(x) > 1
              else [np.nan, np.nan])
        rho_hat, tau_hat = float(stats.spearmanr(vb, va)[0]), float(stats.kendalltau(vb, va)[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            se = np.nanstd(rr, axis=0, ddof=1) if len(rr) > 1 else np.full(len(al), np.nan)
        se = np.where(np.isfinite(rr).sum(axis=0) >= max(10, len(rr) // 2), se, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, resid / se, np.nan)
        p = np.where(np.isfinite(z), 2 * stats.norm.sf(np.abs(z)), np.nan)
        q = np.full(len(al), np.nan)
        fin = np.isfinite(p)
        q[fin] = adjust(p[fin], correction)
        aligned = aligned.assign(
            se_a=np.sqrt(var_a) if var_a is not None else np.nan, se_b=np.sqrt(var_b) if var_b is not None else np.nan,
            predicted_a=s * vb + c, residual=resid, se=se, z=z, p=p, q=q)
        aligned["flagged"] = aligned["q"] < alpha
        aligned["prefers"] = np.where(~aligned["flagged"], "", np.where(resid < 0, a.label, b.label))
        summary.update(scale=s, offset=c, scale_ci=ci(sb), error_variance_ratio=delta,
                       spearman=rho_hat, spearman_ci=ci(np.asarray(rho, float)),
                       kendall=tau_hat, kendall_ci=ci(np.asarray(tau, float)),
                       replicates_used=int(len(ra)), flagged=int(aligned["flagged"].sum()))
    else:
        aligned["flagged"] = False
        summary.update(scale=np.nan, scale_ci=[np.nan, np.nan], spearman=np.nan, kendall=np.nan, flagged=0,
                       note="fewer than 3 aligned states with varying potentials: no scale, no test")
    homog, overall = homogeneity(a.counts, b.counts, escapes=a.escapes, min_count=min_count, correction=correction,
                                  alpha=alpha)
    summary["homogeneity"] = overall
    return PairComparison(a.label, b.label, states, aligned, homog, summary)


def _rows(counts: Counts, escapes: str) -> pd.DataFrame:
    names = np.asarray(counts.states, dtype=object)
    esc = counts.dst == ESCAPE
    keep = ~esc if escapes == "condition" else np.ones(len(esc), bool)
    return pd.DataFrame({"source": names[counts.src[keep]],
                         "outcome": np.where(esc[keep], "\x00escape", names[np.maximum(counts.dst[keep], 0)]),
                         "n": counts.count[keep].astype(np.int64)}).groupby(["source", "outcome"], as_index=False)["n"].sum()


def homogeneity(ca: Counts, cb: Counts, escapes: str = "count", min_count: int = 5,
                correction: str = "holm", alpha: float = 0.05) -> tuple[pd.DataFrame, dict]:
    """Anderson–Goodman χ² per source state both runs sampled: are its two transition rows (moves,
    self-loops and, unless ``escapes="condition"``, escapes) one distribution? Outcomes with fewer than
    ``min_count`` samples in the two rows together are pooled into one column (which then stays only if it
    reaches ``min_count`` itself, else it joins the smallest remaining one)."""
    ra, rb = _rows(ca, escapes), _rows(cb, escapes)
    m = ra.merge(rb, on=["source", "outcome"], how="outer", suffixes=("_a", "_b")).fillna(0)
    both = set(ra["source"]) & set(rb["source"])
    m = m[m["source"].isin(both)].copy()
    m["tot"] = m["n_a"] + m["n_b"]
    m.loc[m["tot"] < min_count, "outcome"] = "\x00other"
    m = m.groupby(["source", "outcome"], as_index=False)[["n_a", "n_b", "tot"]].sum()
    rows = []
    for src, t in m.groupby("source", sort=True):
        t = t.sort_values("tot")
        if len(t) > 1 and t["outcome"].iloc[0] == "\x00other" and t["tot"].iloc[0] < min_count:
            t = t.copy()
            t.iloc[1, t.columns.get_indexer(["n_a", "n_b", "tot"])] += t.iloc[0][["n_a", "n_b", "tot"]].to_numpy()
            t = t.iloc[1:]
        obs = t[["n_a", "n_b"]].to_numpy(float).T
        na, nb = obs.sum(axis=1)
        k = obs.shape[1]
        if k < 2 or na == 0 or nb == 0:
            rows.append((src, int(na), int(nb), k, np.nan, 0, np.nan, np.nan))
            continue
        exp = np.outer(obs.sum(axis=1), obs.sum(axis=0)) / obs.sum()
        chi2 = float(((obs - exp) ** 2 / exp).sum())
        rows.append((src, int(na), int(nb), k, chi2, k - 1, float(stats.chi2.sf(chi2, k - 1)), float(exp.min())))
    df = pd.DataFrame(rows, columns=["state", "n_a", "n_b", "outcomes", "chi2", "df", "p", "min_expected"])
    fin = df["p"].notna().to_numpy()
    df["q"] = np.nan
    df.loc[fin, "q"] = adjust(df.loc[fin, "p"].to_numpy(), correction)
    chi2, dof = float(df["chi2"].sum(skipna=True)), int(df["df"].sum())
    overall = {"states_tested": int(fin.sum()), "chi2": chi2, "df": dof,
               "p": float(stats.chi2.sf(chi2, dof)) if dof else np.nan,
               "states_differing": int((df["q"] < alpha).sum()), "alpha": alpha}
    return df, overall


@dataclass
class Comparison:
    """Every pair of the runs compared (``pairs``: (label_a, label_b) -> :class:`PairComparison`);
    ``summary`` is one DataFrame row per pair."""

    labels: list[str]
    pairs: dict = field(default_factory=dict)

    @property
    def summary(self) -> pd.DataFrame:
        keys = ["a", "b", "shared", "only_a", "only_b", "scc_match", "aligned", "scale", "scale_ci", "spearman",
                "spearman_ci", "kendall", "kendall_ci", "flagged"]
        return pd.DataFrame([{k: p.summary.get(k) for k in keys} for p in self.pairs.values()], columns=keys)


def compare_runs(runs: list[RunData], B: int = 200, seed: int = 0, alpha: float = 0.05, correction: str = "holm",
                 min_count: int = 5) -> Comparison:
    """Every pair of ``runs`` (each run's bootstrap replicates drawn once and shared by its pairs)."""
    rng = np.random.default_rng(seed)
    reps = {r.label: bootstrap_replicates(r, B, rng) for r in runs} if B > 0 else {}
    out = Comparison([r.label for r in runs])
    for i, a in enumerate(runs):
        for b in runs[i + 1:]:
            out.pairs[(a.label, b.label)] = compare_pair(a, b, B=B, seed=seed, alpha=alpha, correction=correction,
                                                         min_count=min_count, replicates=reps)
    return out
