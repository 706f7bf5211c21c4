"""What the data say about one law: its BIC (``bic_score``, the score of selection's ``bic`` rule), the
bootstrap standard errors of its parameters (``param_stderr``), what each of its additive terms is
worth (``term_evidence``) and whether the data keep a pole of it off the states (``pole_uncertain``).
Selection (``potsearch.law.selection``) weighs laws with these; ``settle`` sets aside a selected law
whose pole is not determined.
"""
from __future__ import annotations

import json
import math

import numpy as np


def param_list(v) -> list:
    """A candidate's parameters as a list, whether stored as a JSON string or a sequence ([] when absent)."""
    if isinstance(v, str):
        try:
            return json.loads(v)
        except ValueError:
            return []
    return list(v) if isinstance(v, (list, tuple, np.ndarray)) else []


def bic_score(data, train_action, k, heldout_action=None):
    """2 x nats_per_action x S_train + k ln(N): the BIC of a law (or an array of laws) with k fitted
    parameters (``bic``; the scale must be known); with ``heldout_action`` (the law at its training fit
    on the held-out moves) and a held-out scale, plus 2 x heldout_nats_per_action x S_heldout, the
    held-out moves' log-loss (module doc)."""
    out = 2.0 * data.nats_per_action * np.asarray(train_action, dtype=float) + k * math.log(data.n_train_moves)
    if heldout_action is not None and data.heldout_nats_per_action > 0:
        out = out + 2.0 * data.heldout_nats_per_action * np.asarray(heldout_action, dtype=float)
    return out if np.ndim(out) else float(out)


def resampled_pairs(edges, rng):
    """The edges with their unordered pairs resampled with replacement (a bootstrap replicate)."""
    from potsearch.law.scoring import Edges

    lo, hi, a, b = edges.pairs()
    idx = rng.integers(0, len(lo), len(lo))
    src = np.concatenate([lo[idx], hi[idx]])
    dst = np.concatenate([hi[idx], lo[idx]])
    w = np.concatenate([a[idx], b[idx]])
    m = w > 0
    return Edges(src[m], dst[m], w[m], edges.n_states)


def param_stderr(source: str, params, data, n_boot: int = 40, seed: int = 0) -> list | None:
    """Bootstrap standard errors of a law's fitted parameters: the law is refitted (from its fitted
    values, through the GP scoring path) on ``n_boot`` resamples of the training edge pairs (pairs
    taken as independent; ``numpy.random.default_rng(seed)``); the SE is the standard deviation of
    each parameter over the refits. None when fewer than 5 refits succeed. ``source`` must be code
    we generated (a simplified law), never a model's."""
    import dataclasses

    from potsearch.law.scoring import score_source

    params = param_list(params)
    if not params:
        return []
    rng = np.random.default_rng(seed)
    fits = []
    for _ in range(n_boot):
        d = dataclasses.replace(data, train=resampled_pairs(data.train, rng))
        r = score_source(source, params, seed, data=d)
        if not r.get("error") and r.get("params") is not None and len(r["params"]) == len(params):
            fits.append(r["params"])
    if len(fits) < 5:
        return None
    return [float(v) for v in np.std(np.asarray(fits, dtype=float), axis=0, ddof=1)]


def term_evidence(source: str, params, data, seed: int = 0) -> list[dict] | None:
    """What each additive term of a law is worth: the law refitted without it (the simplifier's refit
    path, from the fitted values), per term the rise of the training and held-out actions and, with
    the softplus kernel, of the BIC (``bic``: positive means the data support the term). None for a law
    with fewer than two terms or that cannot be translated. ``source`` must be code we generated (a
    simplified law), never a model's."""
    import sympy as sp

    from potsearch.law.formula import pretty_text
    from potsearch.law.simplify import Refitter, canonical_form, parametrise

    c = canonical_form(source, param_list(params))
    if not c.ok:
        return None
    pe, vals = parametrise(sp.expand(c.expr))
    parts = list(sp.Add.make_args(pe))
    if len(parts) < 2:
        return None
    refit = Refitter(data, seed)
    full = refit.fit(pe, vals, again=False)
    if full is None:
        return None
    scale = data.nats_per_action if data.kernel == "softplus" and data.nats_per_action > 0 else None
    out = []
    for i, t in enumerate(parts):
        rest = sp.Add(*(parts[:i] + parts[i + 1:]))
        res = refit.fit(rest, vals, again=False)
        num = t.xreplace({sp.Symbol(f"P_{j}"): sp.Float(v, 17) for j, v in enumerate(full["params"])})
        row = {"term": pretty_text(num), "train_rise": None, "heldout_rise": None, "bic_rise": None}
        if res is not None:
            row["train_rise"] = res["S"] - full["S"]
            if res.get("Sh") is not None and full.get("Sh") is not None:
                row["heldout_rise"] = float(res["Sh"]) - float(full["Sh"])
            if scale and data.n_train_moves > 1:   # the selection's score: training BIC + held-out log-loss
                both = row["heldout_rise"] is not None
                row["bic_rise"] = (bic_score(data, res["S"], len(res["params"]), res["Sh"] if both else None)
                                   - bic_score(data, full["S"], len(full["params"]), full["Sh"] if both else None))
        out.append(row)
    return out


def pole_uncertain(source: str, params, se, features: dict, n: int) -> str:
    """'' or why not: a denominator b(x) + t of the law (t one of its parameters) whose shift, anywhere
    within 2 bootstrap standard errors of t, puts its pole on a state (-b(x) in [t - 2 SE, t + 2 SE]).
    The data then cannot keep the pole off the states: the term's shape is not determined (the demo's
    zipf/(length - 4.678), t = -4.68 +- 5e5, is a linear zipf term in most resamples). ``source`` must
    be code we generated (a simplified law); ``se`` as ``param_stderr`` returns it."""
    import sympy as sp

    from potsearch.law.conditioning import expr_values
    from potsearch.law.formula import FormulaError, pretty_text, translate

    if not se:
        return ""
    try:
        expr = translate(source, params).expr
    except FormulaError:
        return ""
    vals = [float(v) for v in param_list(params)]
    for node in sp.preorder_traversal(expr):
        if not (isinstance(node, sp.Pow) and node.exp.is_number and node.exp < 0):
            continue
        c, rest = node.base.as_coeff_Add()
        if c == 0 or not rest.free_symbols:
            continue
        k = next((j for j, v in enumerate(vals) if abs(v - float(c)) <= 1e-12 * max(1.0, abs(v))), None)
        if k is None or k >= len(se) or se[k] is None or not math.isfinite(float(se[k])):
            continue
        try:
            b = expr_values(rest, features, n)
        except (KeyError, TypeError, ValueError, NameError):
            continue
        lo, hi = float(c) - 2 * float(se[k]), float(c) + 2 * float(se[k])
        if np.any((-b >= lo) & (-b <= hi)):
            return (f"its pole {pretty_text(node.base)} = 0 can sit on a state within 2 standard errors of "
                    f"p[{k}] = {float(c):.4g} +- {float(se[k]):.3g}")
    return ""
