"""Bounds on the sympy expressions built from a candidate's source (a model's code is hostile).

The law language's one translator (``potsearch.law.formula.translate``, which calls these checks:
no caller needs to) reads a candidate's source without running it, but sympy itself can be made to
work without end by a short, allowlisted source: ``((v/9 + 1)**16 + 1)**16`` expands to ~10^9
terms, ``(a + b + ... + h)**16`` to 245,157, and 24 lines of ``y = y + np.tanh(y)`` share a
subtree whose every walk (``free_symbols``, ``count_ops``, printing) visits 2^24 nodes. An exact
integer squared on 30 lines has 10^10 digits.
These checks refuse such an expression before sympy walks it, in time linear in its stored size:

* ``check_number``: an exact number with more than ``MAX_EXACT_BITS`` bits in its numerator or
  denominator, or one that is not finite as a float (``1e308 * 10``, a parameter of inf);
* ``check_expr``: more than ``MAX_TREE_NODES`` nodes when shared subtrees are counted every time they
  occur (what a walk visits), or a subexpression whose full expansion (``sympy.expand``) would have
  more than ``MAX_EXPANDED_TERMS`` additive terms (multinomial counts, no expansion done).

A law a reader can take in is far inside every bound (the suite's laws: < 60 nodes, < 10 terms).
"""
from __future__ import annotations

import math

MAX_SOURCE_CHARS = 20_000      # the sandbox's own limit on a candidate's source
MAX_TREE_NODES = 5_000
MAX_EXPANDED_TERMS = 2_000
MAX_EXACT_BITS = 2_000         # ~600 decimal digits


class TooLarge(ValueError):
    """The expression (or a number in it) is beyond the bounds of this module."""


def check_number(v):
    """``v`` unchanged, or TooLarge for a huge exact number or a non-finite one (module doc)."""
    import sympy as sp

    if v in (sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise TooLarge("a non-finite number")
    if isinstance(v, sp.Rational) and max(abs(int(v.p)), abs(int(v.q))).bit_length() > MAX_EXACT_BITS:
        raise TooLarge(f"an exact number beyond {MAX_EXACT_BITS} bits")
    if isinstance(v, sp.Number):
        try:
            f = float(v)
        except (OverflowError, TypeError, ValueError):
            raise TooLarge("a number beyond the float range") from None
        if not math.isfinite(f):
            raise TooLarge("a number beyond the float range" if isinstance(v, sp.Rational) else "a non-finite number")
    return v


def exact_power_bound(base, exp, max_exp: float):
    """TooLarge before ``base ** exp`` is computed when the exponent is beyond ``max_exp`` or the
    exact result would pass ``MAX_EXACT_BITS`` (``(9999999999**64)**64`` has 40,960 digits)."""
    import sympy as sp

    if isinstance(exp, sp.Number) and abs(float(exp)) > max_exp:
        raise TooLarge(f"a power with an exponent beyond {max_exp:g}")
    if isinstance(base, sp.Rational) and isinstance(exp, sp.Integer) and base != 0:
        bits = max(abs(int(base.p)), abs(int(base.q))).bit_length()
        if bits * abs(int(exp)) > MAX_EXACT_BITS:
            raise TooLarge(f"an exact number beyond {MAX_EXACT_BITS} bits")


def check_expr(expr):
    """``expr`` unchanged, or TooLarge (module doc). Each distinct subexpression is visited once."""
    import sympy as sp

    if not isinstance(expr, sp.Basic):
        return expr
    size: dict = {}
    terms: dict = {}
    stack = [(expr, False)]
    while stack:
        node, ready = stack.pop()
        if node in size:
            continue
        if not ready:
            stack.append((node, True))
            stack.extend((a, False) for a in node.args if a not in size)
            continue
        s = 1 + sum(size[a] for a in node.args)
        if s > MAX_TREE_NODES:
            raise TooLarge(f"the law has more than {MAX_TREE_NODES} nodes once shared parts are written out")
        size[node] = s
        if isinstance(node, sp.Number) or node in (sp.zoo, sp.nan, sp.oo, -sp.oo):
            check_number(node)     # (sympy's infinities and nan too: not finite as floats)
        terms[node] = t = _terms(node, terms)
        if t > MAX_EXPANDED_TERMS:
            raise TooLarge(f"the law would expand to more than {MAX_EXPANDED_TERMS} terms")
    return expr


def _terms(node, terms: dict) -> int:
    """Additive terms of ``node`` fully expanded, from its arguments' (capped just above the bound)."""
    import sympy as sp

    cap = MAX_EXPANDED_TERMS + 1
    if isinstance(node, sp.Add):
        return min(cap, sum(terms[a] for a in node.args))
    if isinstance(node, sp.Mul):
        out = 1
        for a in node.args:
            out = min(cap, out * terms[a])
        return out
    if isinstance(node, sp.Pow) and node.exp.is_Integer:
        k, t = abs(int(node.exp)), terms[node.base]
        n = min(cap, math.comb(t + k - 1, k)) if t > 1 and k > 1 else t
        if n >= cap:
            return cap
        return n if node.exp > 0 else 1      # a denominator is expanded inside its own term
    return 1
