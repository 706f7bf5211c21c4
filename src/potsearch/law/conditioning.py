"""How well a law is conditioned on the data: its values on the states, how much its sums cancel
(``cancellation``) and how many states carry each of its additive terms (``support``, terms by
``formula.additive_terms``). Used by the simplifier (``simplify``) to flag ill-conditioned laws and
by selection to leave them out.
"""
from __future__ import annotations

import math

import numpy as np
import sympy as sp

from potsearch.law.formula import additive_terms

MIN_SUPPORT = 3.0         # a term carried by fewer states (or by fewer than MIN_SUPPORT_FRACTION of
MIN_SUPPORT_FRACTION = 0.03   # them) is a lookup of those states (``support``): ill-conditioned. Pole terms
# the search placed next to a state measure 7-17 of 741 word states, features and smooth transforms of
# them 47 (exp(zipf)) to 690.


def min_support(n: int) -> float:
    """The fewest states a law's every additive term must be carried by (``support``)."""
    return max(MIN_SUPPORT, MIN_SUPPORT_FRACTION * n)


MAX_CANCELLATION = 30.0   # the suite's hidden laws stay below 7 on the word data, Taylor tricks such
# as 1.5*length + 8.3e4/(zipf - 191) (229) or (zipf + 26.7)/(first_letter + last_letter + 728) (76) above


def expr_values(expr: sp.Expr, features: dict, n: int) -> np.ndarray:
    syms = sorted(expr.free_symbols, key=lambda s: s.name)
    f = sp.lambdify(syms, expr, modules="numpy")
    with np.errstate(all="ignore"):
        v = np.asarray(f(*[features[s.name] for s in syms]), dtype=float)
    return np.broadcast_to(v, (n,)).astype(float)


def cancellation(expr: sp.Expr, features: dict, n: int) -> float:
    """Largest cancellation ratio over the sum nodes of ``expr`` (module doc)."""
    worst = 1.0
    root = expr
    for node in sp.preorder_traversal(expr):
        if not isinstance(node, sp.Add):
            continue
        try:
            parts = [expr_values(a, features, n) for a in node.args]
            tot = expr_values(node, features, n)
        except (KeyError, TypeError, ValueError, NameError):
            continue
        if node is root:
            num, den = sum(float(np.std(p)) for p in parts), float(np.std(tot))
        else:
            num, den = sum(float(np.sqrt(np.mean(p * p))) for p in parts), float(np.std(tot))
        if not math.isfinite(num):
            return math.inf
        if den <= 1e-300:
            continue
        worst = max(worst, num / den)
    return worst


def support(expr: sp.Expr, features: dict, n: int) -> float:
    """How many states carry the law's least supported additive term: the participation ratio
    (sum d^2)^2 / sum d^4 of the term's centred values d over the states (k for a term that is the
    same non-zero number on k states and 0 elsewhere, ~n for a spread-out one); 0 for a term with a pole
    next to the states (``_pole_next_to_states``). A term carried by
    fewer than ``min_support(n)`` states is a lookup of those states, not a law: a pole placed next to a
    state (``doubles / (zipf - 1.503)`` with one word at zipf 1.51) fits that state's noise."""
    worst = math.inf
    for _, b in additive_terms(sp.expand(expr)):
        try:
            v = expr_values(b, features, n)
        except (KeyError, TypeError, ValueError, NameError):
            continue
        if not np.all(np.isfinite(v)):
            return 0.0
        if _pole_next_to_states(b, features, n):
            return 0.0
        d = v - v.mean()
        s2 = float(np.sum(d * d))
        if s2 <= 1e-300 * n:
            continue
        d = d / math.sqrt(s2)
        worst = min(worst, 1.0 / float(np.sum(d ** 4)))
    return worst


POLE_MARGIN = 0.01   # a denominator within this share of its range from zero on some state: a pole


def _pole_next_to_states(term: sp.Expr, features: dict, n: int) -> bool:
    """True when a division in ``term`` has a denominator that changes sign over the states (a pole
    between two of them: ``rarity / (first_letter - 1.448)`` jumps from -0.8 to +0.6 between the A and
    B words) or comes within ``POLE_MARGIN`` of its range to zero on some state
    (``x / (first_letter - 0.9998)`` with first_letter >= 1): the term is then a lookup of the states
    next to the pole, whatever their number."""
    for a in sp.preorder_traversal(term):
        if isinstance(a, sp.Pow) and a.exp.is_negative and any(not s.name.startswith("P_")
                                                                for s in a.base.free_symbols):
            try:
                d = expr_values(a.base, features, n)
            except (KeyError, TypeError, ValueError, NameError):
                continue
            if pole_among(d):
                return True
    return False


def pole_among(d: np.ndarray) -> bool:
    """True when denominator values ``d`` (one per state) change sign or come within ``POLE_MARGIN``
    of their range to zero: a pole between or next to the states (``_pole_next_to_states``; the terms
    operator's archive uses the same rule, ``terms_op.TermsOperator.well_conditioned``)."""
    d = np.asarray(d, dtype=float)
    span = float(np.ptp(d)) if d.size else 0.0
    return span > 0 and (float(np.min(d)) <= 0.0 <= float(np.max(d))
                         or float(np.min(np.abs(d))) < POLE_MARGIN * span)
