"""Model selection: which law of the Pareto front (training action x complexity) a reader is shown.

Three rules, all deterministic for a seed:

* ``one_se`` — held-out action with the one-standard-error rule. Let m be the front
  member with the lowest held-out action H_m. For every member i, SE_i is the bootstrap standard
  error of the paired difference H_i - H_m over the held-out edge pairs (``n_boot`` resamples of
  the pairs, ``numpy.random.default_rng(seed)``); pairing removes the noise both laws share. The
  selected law is the least complex member with H_i <= H_m + SE_i.
* ``bic`` (default, by measurement: docs/evolve.md) — the Bayesian information criterion of the
  training likelihood: the softplus action is the logistic likelihood of the moves between two
  states, so 2 x nats_per_action x S_train + k ln N (k fitted parameters, N training moves) weighs
  action against parameters with the data's own noise. To it is added the held-out moves' log-loss
  at the training fit, 2 x heldout_nats_per_action x S_heldout: the parameters were not fitted on
  those moves and the search never saw them, so a form that fits the training moves' noise (one of
  the ~10⁵ forms a search scores will) pays there, and the true law gains (measured: docs/evolve.md).
  Without held-out moves the score is the training BIC alone. Among members within ``bic_window`` (4) of
  the lowest, those with the fewest additive terms, then features, compete (a form whose extra
  feature buys less than positive evidence, 2-6 on Kass & Raftery's scale, does not win on it); of
  them the lowest score + ``form_window`` (2) x its nonlinear operations on features
  (``simplify.n_nonlinear``) wins: each operation is priced like positive evidence, so a transform
  of the same features (sqrt(max_letter) against max_letter) wins with more than 2, a ratio
  (n_vars/nodes: two operations) against the linear law with more than 4, and two transforms
  (log(max_letter) against 1/max_letter) compete on the evidence alone.
  Without the scale (another kernel) the rule falls back to ``pysr`` and says so.
* ``pysr`` — PySR's ``model_selection="best"`` on the training gap (S_train - S_min_train, the
  loss above the data's own floor): among members with gap <= ``loss_window`` (1.5) x the lowest
  gap, the one with the largest -d log(gap) / d complexity against the next simpler member.

Laws flagged ill-conditioned by the simplifier (cancelling terms, ``conditioning.MAX_CANCELLATION``;
terms carried by a few states or with a pole among them, ``conditioning.support``) are excluded
whenever a well-conditioned member exists; the front of simplified laws is built without them, since
such a law (a linear term in disguise) would otherwise dominate the plain law it mimics. They would
also hide, on the raw front, the sound candidates they dominate: when front members simplify to
ill-conditioned laws, they are set aside and the front of the remaining candidates is rebuilt and
simplified too (at most ``max_layers`` times, within ``max_front`` simplifications and
``max_seconds``); ``Selection.layers`` says which front each member came from. The same rebuild
brings back a candidate hidden on the raw front by a member whose simplified law costs more action
than it does (the exact 0.73·terms + 0.27·n_funcs behind a 19-node tree of 10⁻⁶ lower action that
simplifies to a proxy 8·10⁻⁶ higher): each layer is the raw candidates not yet simplified that reach
the front of themselves and the well-conditioned simplified laws so far. Held-out values are computed
from each law's sympy translation (``formula.translate``), never by running a candidate's own code;
a candidate that cannot be translated keeps its stored held-out action and gets SE = 0 (it competes,
without the benefit of the doubt). A law's evidence (its BIC, parameter SEs, terms' worth, poles) is
``potsearch.law.evidence``.

``select_law(candidates, data)`` is the entry point for the stages: it takes the candidates table
(a DataFrame with source, params, train_action, heldout_action, complexity ...), builds the Pareto
front, simplifies every member (``simplify.simplify``), rebuilds the front on the simplified laws
(complexity, training action and fitted parameters: a twin of the law with one parameter more at the
same complexity must not hide it) and applies the rule. Each member's simplification path (the refitted form before every step) joins the
simplified front as well: the simplifier's tolerance decides what is the same action, the rule then
weighs the evidence (2.07 sqrt(max_letter) - 1.98 zipf, one step before "sqrt replaced by its
argument", stays selectable). The lowest-action candidate stays in the result (``lowest``) with the terms the
selected law dropped against it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from potsearch.law.evidence import bic_score, param_list, param_stderr, pole_uncertain

RULES = ("one_se", "pysr", "bic")
DEFAULT_RULE = "bic"   # chosen by measurement on benchmarks/recovery.py (docs/evolve.md)


@dataclass(frozen=True)
class SelectionOptions:
    rule: str = DEFAULT_RULE
    n_boot: int = 200
    loss_window: float = 1.5
    bic_window: float = 4.0      # laws within this of the lowest BIC count as tied (the simplest wins)
    form_window: float = 2.0     # ... and of those, each nonlinear operation costs this much score
    seed: int = 0
    simplify: bool = True
    max_front: int = 40          # simplify at most this many front members (lowest training action first)
    max_seconds: float = 120.0   # for simplifying the whole front; members past it get the canonical form only
    max_layers: int = 3          # fronts rebuilt behind members whose simplified law is ill-conditioned or worse


@dataclass
class Selection:
    rule: str
    reason: str
    selected: dict                                   # the selected law (simplified form when available)
    lowest: dict | None = None                       # the lowest-training-action candidate (raw)
    front: pd.DataFrame = field(default_factory=pd.DataFrame)   # the front considered, with se / score / selected
    dropped: list = field(default_factory=list)      # additive terms of the lowest-action law absent from the selected
    forms: pd.DataFrame = field(default_factory=pd.DataFrame)   # per raw front member (uid): its simplified form
    layers: dict = field(default_factory=dict)   # uid -> 0 (the front) or k (the front rebuilt k times, module doc)
    note: str = ""   # what the front was built without (ill-conditioned laws), kept when ``settle`` re-chooses

    def to_json(self) -> dict:
        """A JSON-able summary (for summary.json / show): the selected law, why, and the lowest."""
        def clean(v):   # strict JSON: numpy scalars as Python ones, NaN / inf as null (also inside lists)
            if isinstance(v, (np.floating, np.integer)):
                v = v.item()
            if isinstance(v, np.bool_):
                return bool(v)
            if isinstance(v, float) and not math.isfinite(v):
                return None
            if isinstance(v, (list, tuple)):
                return [clean(a) for a in v]
            if isinstance(v, dict):
                return {k: clean(a) for k, a in v.items()}
            return v

        keys = ("uid", "source", "params", "text", "latex", "train_action", "heldout_action", "complexity",
                "n_terms", "raw_source", "steps", "cancellation", "ill_conditioned", "param_se", "param_se_method",
                "term_evidence")
        sel = {k: clean(self.selected[k]) for k in keys if k in self.selected}
        sel["simplified"] = bool(self.selected.get("simplified", False))   # else its text is the form as found
        low = {k: clean(self.lowest[k]) for k in ("uid", "id", "source", "params", "text", "latex", "train_action",
                                                  "heldout_action", "complexity") if self.lowest and k in self.lowest}
        return {"rule": self.rule, "reason": self.reason, "selected": sel, "lowest": low, "dropped": self.dropped,
                "front_size": int(len(self.front))}


def pareto_front(df: pd.DataFrame, x: str = "complexity", y: str = "train_action",
                 k: str | None = None) -> pd.DataFrame:
    """Non-dominated rows: for growing complexity, strictly lower training action (ties: first row).
    With ``k`` (a column: fitted parameters) a third objective: a row is dominated only by one with at
    most its complexity *and* parameters and a lower action (the front of each parameter count among
    the rows with at most that many)."""
    d = df[np.isfinite(df[y].astype(float))].sort_values([x, y], kind="mergesort")
    if k is None:
        v = d[y].to_numpy(float)
        best_before = np.minimum.accumulate(np.concatenate([[math.inf], v[:-1]])) if len(v) else v
        return d[v < best_before]
    kv = d[k].to_numpy(float)
    keep = np.zeros(len(d), dtype=bool)
    for n in np.unique(kv):
        sub = d[kv <= n]
        f = pareto_front(sub, x, y)
        keep |= d.index.isin(f.index[f[k].to_numpy(float) == n])
    return d[keep]


def pair_contributions(V: np.ndarray, edges, kernel: str = "softplus", beta: float = 1.0) -> np.ndarray:
    """Each unordered edge pair's share of the action of V on ``edges`` (they sum to the action)."""
    from potsearch.law.scoring import pair_terms

    lo, hi, a, b = edges.pairs()
    with np.errstate(all="ignore"):
        val, _, _ = pair_terms(V[lo] - V[hi], a, b, kernel, beta, 0)
    return val / edges.n_states


def law_values(source: str, params, features: dict, n: int) -> np.ndarray | None:
    """V on every state from the law's sympy translation (no candidate code runs); None if untranslatable."""
    from potsearch.law.conditioning import expr_values
    from potsearch.law.formula import FormulaError, translate

    try:
        expr = translate(source, params).expr
        V = expr_values(expr, features, n)
    except (FormulaError, KeyError, TypeError, ValueError, NameError, ZeroDivisionError, RecursionError,
            AttributeError, OverflowError):
        return None
    return V if np.all(np.isfinite(V)) else None


def one_se(front: pd.DataFrame, data, n_boot: int = 200, seed: int = 0) -> tuple[int, str, pd.DataFrame]:
    """Index (into ``front``) chosen by the one-SE rule on held-out action; the front with ``se`` added."""
    fr = front.reset_index(drop=True).copy()
    contrib = []
    for _, r in fr.iterrows():
        V = law_values(r["source"], param_list(r["params"]), data.features, data.n_states)
        contrib.append(None if V is None else pair_contributions(V, data.heldout, data.kernel, data.beta))
    H = np.array([float(c.sum()) if c is not None else float(r) for c, r in zip(contrib, fr["heldout_action"])])
    H = np.where(np.isfinite(H), H, np.inf)    # a law without a finite held-out action never leads
    fr["heldout_action"] = H
    if not np.isfinite(H).any():
        raise ValueError("no front member has a finite held-out action")
    m = int(np.argmin(H))
    rng = np.random.default_rng(seed)
    n_pairs = len(contrib[m]) if contrib[m] is not None else 0
    idx = rng.integers(0, max(n_pairs, 1), size=(n_boot, max(n_pairs, 1))) if n_pairs else None
    se = np.zeros(len(fr))
    for i, c in enumerate(contrib):
        if c is None or contrib[m] is None or i == m:
            continue
        d = c - contrib[m]
        se[i] = float(np.std(d[idx].sum(axis=1), ddof=1))
    fr["se"] = se
    ok = np.flatnonzero(H <= H[m] + se)
    pick = int(min(ok, key=lambda i: (fr.loc[i, "complexity"], H[i])))
    reason = (f"one-SE rule: lowest held-out action {H[m]:.6g} (complexity {int(fr.loc[m, 'complexity'])}); "
              f"selected the least complex law within one bootstrap SE of it: held-out {H[pick]:.6g} "
              f"(+{H[pick] - H[m]:.3g}, SE {se[pick]:.3g}), complexity {int(fr.loc[pick, 'complexity'])}")
    return pick, reason, fr


def pysr_best(front: pd.DataFrame, s_min: float, loss_window: float = 1.5) -> tuple[int, str, pd.DataFrame]:
    """PySR-style 'best': steepest -dlog(gap)/dcomplexity within gap <= loss_window x the lowest gap."""
    fr = front.sort_values("complexity", kind="mergesort").reset_index(drop=True).copy()
    gap = np.maximum(fr["train_action"].to_numpy(float) - s_min, 1e-12)
    gap = np.where(np.isfinite(gap), gap, np.inf)
    comp = fr["complexity"].to_numpy(float)
    score = np.zeros(len(fr))
    for i in range(1, len(fr)):
        dc = max(comp[i] - comp[i - 1], 1.0)
        score[i] = -(math.log(gap[i]) - math.log(gap[i - 1])) / dc
    fr["score"] = score
    ok = np.flatnonzero(gap <= loss_window * gap.min())
    pick = int(max(ok, key=lambda i: (score[i], -comp[i])))
    reason = (f"PySR-style score: among {len(ok)} laws with training gap <= {loss_window} x the lowest "
              f"({gap.min():.3g}), the steepest drop of log(gap) per unit complexity ({score[pick]:.3g}) "
              f"at complexity {int(comp[pick])}")
    return pick, reason, fr


def n_fitted(row) -> int:
    """How many parameters a law fits (its ``params``)."""
    return len(param_list(row["params"]))


def bic(front: pd.DataFrame, data, window: float = 4.0, form_window: float = 2.0
        ) -> tuple[int, str, pd.DataFrame] | None:
    """Bayesian information criterion on the training likelihood: the softplus action is a logistic
    likelihood of the moves between two states, ``data.nats_per_action`` converts it to nats, so a law
    scores 2 * nats * S_train + k * ln(N) (k fitted parameters, N training moves), plus the held-out
    moves' log-loss at the training fit, 2 * heldout_nats * S_heldout (module doc; a member without a
    finite held-out action is then not comparable and not chosen). Among the laws within
    ``window`` of the lowest score, those with the fewest additive terms, then features, compete; of
    them the lowest score + ``form_window`` x nonlinear operations (``simplify.n_nonlinear``) wins (a
    transform of the same features, sqrt(max_letter) against max_letter, needs positive evidence,
    more than 2, to beat the plainer form, and wins with it; a ratio more than 4; log(max_letter)
    against 1/max_letter is decided by the evidence). None when the scale is unknown (another kernel, no moves)."""
    if data.kernel != "softplus" or not data.nats_per_action > 0 or not data.n_train_moves > 1:
        return None
    fr = front.sort_values("complexity", kind="mergesort").reset_index(drop=True).copy()
    k = np.array([n_fitted(r) for _, r in fr.iterrows()], dtype=float)
    ho = (pd.to_numeric(fr["heldout_action"], errors="coerce").to_numpy(float) if "heldout_action" in fr
          else np.full(len(fr), np.nan))
    use_ho = data.heldout_nats_per_action > 0 and np.isfinite(ho).any()
    score = bic_score(data, fr["train_action"].to_numpy(float), k, ho if use_ho else None)
    score = np.where(np.isfinite(score), score, np.inf)   # no held-out action: not comparable, not chosen
    fr["score"] = score - np.min(score)
    best = int(np.argmin(score))
    near = [i for i in range(len(fr)) if score[i] <= score[best] + window]
    shapes = {i: _shape(fr.loc[i]) for i in near}
    fewest = min(shapes[i][:2] for i in near)
    same = [i for i in near if shapes[i][:2] == fewest]        # the fewest terms, then features
    # each nonlinear operation on features costs form_window: a law with m more of them than another
    # must beat it by m x form_window; equally plain forms (log(x) against 1/x) compete on the evidence
    pick = min(same, key=lambda i: (score[i] + form_window * shapes[i][2], shapes[i][2], score[i]))
    ho_part = (f" + 2 x {data.heldout_nats_per_action:.4g} nats x held-out action at the training fit"
               if use_ho else "")
    reason = (f"BIC (2 x {data.nats_per_action:.4g} nats x training action + parameters x ln "
              f"{data.n_train_moves:.0f} moves{ho_part}): lowest {score[best]:.1f} at {int(k[best])} parameter(s); "
              f"{len(near)} law(s) within {window:g} of it; of those with the fewest terms and features, the "
              f"lowest score + {form_window:g} x nonlinear operations selected: "
              f"{int(k[pick])} parameter(s), {shapes[pick][2]} nonlinear operation(s), "
              f"complexity {int(fr.loc[pick, 'complexity'])}")
    return pick, reason, fr


def _shape(row) -> tuple:
    """(additive terms, features read, nonlinear operations, complexity) of a law, from its canonical
    form (no code runs)."""
    from potsearch.law.formula import additive_terms
    from potsearch.law.simplify import canonical_form, n_features, n_nonlinear

    c = canonical_form(row["source"], param_list(row["params"]))
    if not c.ok:
        return (math.inf, math.inf, math.inf, row["complexity"])
    import sympy as sp

    return (len(additive_terms(sp.expand(c.expr))), n_features(c.expr), n_nonlinear(c.expr), row["complexity"])


def choose(front: pd.DataFrame, data, opts: SelectionOptions = SelectionOptions()) -> tuple[int, str, pd.DataFrame]:
    """Apply ``opts.rule`` to a front (rows: source, params, train_action, heldout_action, complexity
    and optionally ill_conditioned); returns (position in the returned frame, reason, frame)."""
    if opts.rule not in RULES:
        raise ValueError(f"unknown selection rule {opts.rule!r} (choose from {', '.join(RULES)})")
    if front.empty:
        raise ValueError("no candidate to select from")
    fr = front.reset_index(drop=True)
    note = ""
    if "ill_conditioned" in fr and fr["ill_conditioned"].astype(bool).any() and not fr["ill_conditioned"].all():
        n_bad = int(fr["ill_conditioned"].astype(bool).sum())
        fr = fr[~fr["ill_conditioned"].astype(bool)].reset_index(drop=True)
        note = f" ({n_bad} ill-conditioned law(s) excluded)"
    got = bic(fr, data, opts.bic_window, opts.form_window) if opts.rule == "bic" else None
    if got is not None:
        i, reason, out = got
    elif opts.rule == "one_se":
        i, reason, out = one_se(fr, data, opts.n_boot, opts.seed)
    else:
        if opts.rule == "bic":
            note += " (BIC needs the softplus kernel and the moves' counts: PySR-style score instead)"
        i, reason, out = pysr_best(fr, float(data.s_min_train), opts.loss_window)
    out["selected"] = False
    out.loc[i, "selected"] = True
    return i, reason + note, out


def select_law(candidates: pd.DataFrame, data, opts: SelectionOptions = SelectionOptions(), progress=None) -> Selection:
    """The entry point for the stages (module doc). ``data`` is the search's ``ScoringData``."""
    from potsearch.law.simplify import simplify

    need = {"source", "params", "train_action", "heldout_action", "complexity"}
    missing = need - set(candidates.columns)
    if missing:
        raise ValueError(f"candidates table lacks column(s) {', '.join(sorted(missing))}")
    ok = candidates.dropna(subset=["train_action"])
    if ok.empty:
        raise ValueError("no scored candidate to select from")
    lowest = ok.loc[ok["train_action"].astype(float).idxmin()].to_dict()
    front = pareto_front(ok)
    forms, left_out = [], ""
    if opts.simplify:
        import time

        t_end = time.perf_counter() + opts.max_seconds
        rows, path_rows, ill, seen, pool, layer, rest = [], [], {}, set(), ok, 0, []
        while True:
            todo = [ix for ix in front.sort_values("train_action").index if ix not in seen]
            for k, ix in enumerate(todo):
                left = t_end - time.perf_counter()
                if left <= 0 or len(seen) >= opts.max_front:
                    rest = todo[k:]
                    break
                r = front.loc[ix]
                s = simplify(r["source"], param_list(r["params"]), data, seed=opts.seed,
                             max_seconds=min(20.0, left))
                seen.add(ix)
                ill[ix] = bool(s.ok and s.ill_conditioned)
                row = dict(r)
                row.update(raw_source=r["source"], raw_complexity=r["complexity"], simplified=s.ok,
                           steps="; ".join(s.steps), ill_conditioned=s.ill_conditioned,
                           cancellation=s.cancellation, support=s.support, layer=layer)
                if s.ok:
                    row.update(source=s.source, params=s.params, train_action=s.train_action,
                               heldout_action=s.heldout_action, complexity=s.complexity, text=s.text,
                               latex=s.latex, n_terms=s.n_terms)
                else:
                    row["steps"] = f"not simplified: {s.reason}"
                rows.append(row)
                forms.append(_form(row, s.ok))
                for f in s.path if s.ok else ():   # the forms before each step compete too (module doc)
                    if f.get("same_values_as_next"):
                        continue   # the same law in value, rewritten by an exact identity of the features
                    path_rows.append({**dict(r), "raw_source": r["source"], "raw_complexity": r["complexity"],
                                      "simplified": True, "path_form": True, "layer": layer, **f})
                if progress:
                    progress(len(seen), opts.max_front)
            # the next layer (module doc): raw candidates not yet simplified that reach the front of the
            # simplified laws (well-conditioned ones) and themselves -- those hidden on the raw front by
            # members whose simplified law is ill-conditioned or costs more action than they do
            if rest or layer >= opts.max_layers:
                break
            done = pd.DataFrame([r for r in rows + path_rows if not r.get("ill_conditioned")],
                                columns=["train_action", "complexity"])
            # a raw candidate with the complexity and training action of one simplified already is taken
            # for the same law (the search stores a law many times, written differently)
            def key(d):   # rounded to 1e-10 (a huge action of a diverging candidate must not overflow)
                with np.errstate(over="ignore", invalid="ignore"):
                    return list(zip(d["complexity"].astype(float), np.round(d["train_action"].to_numpy(float), 10)))
            raw = pool[["train_action", "complexity"]]
            raw = raw[~pd.Series(key(raw), index=raw.index).isin(set(key(pool.loc[list(seen)])))]
            both = pd.concat([raw.assign(_raw=raw.index), done.assign(_raw=-1)], ignore_index=True)
            both = both[np.isfinite(both["train_action"].astype(float))]
            nxt = [int(ix) for ix in pareto_front(both)["_raw"] if ix != -1]
            if not nxt:
                break
            front, layer = pool.loc[nxt], layer + 1
        for ix in rest:  # past the budget: the canonical form (no data, no refit), not selectable
            forms.append(_form(dict(front.loc[ix]), False, note="canonical form only (selection's time budget)"))
        # final forms first: on a tie (same complexity and action) a final form wins over a path form
        sf = pd.DataFrame(rows + path_rows).drop_duplicates(subset=["source"], keep="first")
        bad = sf["ill_conditioned"].astype(bool) if "ill_conditioned" in sf else pd.Series(False, index=sf.index)
        # parameters are the third objective here: a law with one parameter more at the same complexity
        # (an identity twin with a free shift) must not hide the law the rule would choose
        sf["n_fitted"] = [len(param_list(p)) for p in sf["params"]]
        if bad.any() and not bad.all():
            # built without them: a linear term in disguise must not hide the plain law it mimics
            front = pareto_front(sf[~bad], k="n_fitted")
            left_out = f" ({int(bad.sum())} ill-conditioned simplified law(s) left out of the front)"
        else:
            front = pareto_front(sf, k="n_fitted")
    else:
        forms = [_form(dict(r), False, note="not simplified") for _, r in front.iterrows()]
    i, reason, fr = choose(front, data, opts)
    reason += left_out
    sel, dropped, forms = _finish(fr.loc[i].to_dict(), lowest, forms)
    layers = {r.get("uid"): int(r.get("layer", 0)) for r in (rows if opts.simplify else [])}
    return Selection(opts.rule, reason, sel, lowest, fr, dropped, pd.DataFrame(forms), layers, left_out)


def _finish(sel: dict, lowest: dict, forms: list) -> tuple[dict, list, list]:
    """The selected row with its text, the terms it dropped against the lowest-action law, and the
    stored forms (a selected path form becomes the form stored for its candidate)."""
    import sympy as sp

    from potsearch.law.formula import additive_terms
    from potsearch.law.simplify import canonical_form

    if isinstance(sel.get("path_form"), (bool, np.bool_)) and sel["path_form"]:
        forms = [_form(sel, True) if f["uid"] == sel.get("uid") else f for f in forms]
    sc = canonical_form(sel["source"], param_list(sel["params"]))
    if not sel.get("text") and sc.ok:
        sel.update(text=sc.text, latex=sc.latex)
    dropped = []
    lc = canonical_form(lowest["source"], param_list(lowest["params"]))
    if lc.ok:
        lowest.update(text=lc.text, latex=lc.latex)
    if lc.ok and sc.ok:
        mine = {b for _, b in additive_terms(sp.expand(sc.expr))}
        dropped = [str(b) for _, b in additive_terms(sp.expand(lc.expr)) if b not in mine]
    return sel, dropped, forms


def settle(sel: "Selection", data, opts: SelectionOptions = SelectionOptions(), n_boot: int = 40,
           seed: int = 0, max_tries: int = 3) -> tuple["Selection", list | None]:
    """The selected law's bootstrap parameter SEs (``param_stderr``); a law whose pole the data cannot
    keep off the states (``pole_uncertain``) is set aside and the rule applied again to the rest of the
    simplified front (at most ``max_tries`` times; the reason says which laws were set aside and why).
    Returns (selection, SEs of its law or None)."""
    import dataclasses

    aside = []
    while True:
        law = sel.selected
        if not law.get("simplified"):
            return sel, None
        se = param_stderr(law["source"], law["params"], data, n_boot=n_boot, seed=seed)
        why = pole_uncertain(law["source"], law["params"], se, data.features, data.n_states)
        if not why or len(aside) >= max_tries:
            return sel, se
        fr = sel.front.copy()
        mark = fr["selected"].astype(bool)
        fr["ill_conditioned"] = (fr["ill_conditioned"].astype(bool) if "ill_conditioned" in fr
                                 else pd.Series(False, index=fr.index)) | mark
        if fr["ill_conditioned"].all():
            return sel, se
        aside.append(f"{law.get('text') or law['source']}: {why}")
        i, reason, out = choose(fr, data, opts)
        new, dropped, forms = _finish(out.loc[i].to_dict(), dict(sel.lowest), sel.forms.to_dict("records"))
        reason += f"{sel.note}; set aside (pole not determined by the data): {' | '.join(aside)}"
        sel = dataclasses.replace(sel, reason=reason, selected=new, front=out, dropped=dropped,
                                  forms=pd.DataFrame(forms))


def _form(row: dict, ok: bool, note: str = "") -> dict:
    """One raw front member's simplified form, as the store keeps it (``CandidateStore.save_simplified``):
    when simplification did not succeed, the canonical form's text (sympy, no data) where it has one."""
    from potsearch.law.simplify import canonical_form

    out = {"uid": row.get("uid"), "ok": bool(ok), "source": row["source"], "params": param_list(row["params"]),
           "text": row.get("text") or "", "latex": row.get("latex") or "", "train_action": row.get("train_action"),
           "heldout_action": row.get("heldout_action"), "complexity": row.get("complexity"),
           "n_terms": row.get("n_terms"), "cancellation": row.get("cancellation"),
           "ill_conditioned": bool(row.get("ill_conditioned", False)), "steps": note or row.get("steps") or ""}
    if not ok:
        c = canonical_form(row.get("raw_source", row["source"]), param_list(row["params"]))
        if c.ok:
            out.update(text=c.text, latex=c.latex)
    for k in ("train_action", "heldout_action", "cancellation"):
        v = out[k]
        out[k] = None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)
    for k in ("complexity", "n_terms"):
        v = out[k]
        out[k] = None if v is None or (isinstance(v, float) and not math.isfinite(v)) else int(v)
    return out
