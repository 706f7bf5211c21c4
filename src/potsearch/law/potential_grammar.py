"""A GBNF grammar of the potential language, for constrained decoding (``llm.grammar: true``).

A reply the grammar accepts is one fenced code block::

    ```python
    N_PARAMS = 3
    def potential(x, p):
        return p[0] * x["vowels"] + p[1] * np.log1p(np.abs(x["zipf"] - p[2]))
    ```

The return expression is a sum of up to four terms; every term is a parameter ``p[i]``, alone or
times a feature ``x["name"]`` of the agent (only the search's features) or a numpy function of an
inner sum of parameters, features and small numbers (inner sums do not nest further). The numpy
functions are taken, when the grammar is built, from the allowlist (``law.interp.ALLOWED_NUMPY``):
its one-argument float ufuncs that are finite on a probe grid over [-50, 50] are offered as
``np.f(...)``; those finite only on [0, 50] as ``np.f(np.abs(...))`` (when ``abs`` is allowed);
the rest (log of 0, reciprocal, ...) are left out, so a completed reply parses, passes the
allowlist and is finite for most parameter values. ``extract_source`` still raises ``N_PARAMS``
to cover the largest ``p[i]`` the model wrote.
"""
from __future__ import annotations

import json

import numpy as np

MAX_PARAMS = 6


def grammar_functions() -> tuple[list[str], list[str]]:
    """(total functions, functions offered on |argument|), from the sandbox allowlist at run time."""
    from potsearch.law.interp import ALLOWED_NUMPY

    grid = np.linspace(-50.0, 50.0, 401)
    pos = np.linspace(0.0, 50.0, 201)
    total, nonneg = [], []
    for name in sorted(ALLOWED_NUMPY):
        f = getattr(np, name, None)
        if not isinstance(f, np.ufunc) or f.nin != 1 or f.nout != 1 or "d->d" not in f.types:
            continue
        with np.errstate(all="ignore"):
            if np.all(np.isfinite(f(grid))):
                total.append(name)
            elif np.all(np.isfinite(f(pos))):
                nonneg.append(name)
    if "abs" not in ALLOWED_NUMPY:
        nonneg = []
    return total, nonneg


def _lit(s: str) -> str:
    return json.dumps(s)  # a GBNF string literal (same escapes as JSON)


def potential_grammar(features, max_params: int = MAX_PARAMS) -> str:
    """GBNF accepting one candidate program over ``features`` (see the module docstring)."""
    feats = [f for f in features if f]
    if not feats:
        raise ValueError("no features for the grammar")
    total, nonneg = grammar_functions()
    calls = [f'{_lit("np." + n + "(")} inner ")"' for n in total]
    calls += [f'{_lit("np." + n + "(np.abs(")} inner "))"' for n in nonneg]
    lines = [
        'root ::= "```python\\nN_PARAMS = " [1-' + str(max_params) + '] "\\ndef potential(x, p):\\n    return " '
        'sum "\\n```"',
        'sum ::= term (addop term){0,3}',
        'addop ::= " + " | " - "',
        'term ::= param (" * " factor)?',
        'factor ::= feat | call',
        'inner ::= iterm (addop iterm){0,2}',
        'iterm ::= ifactor (" * " ifactor){0,1}',
        'ifactor ::= param | feat | num',
        'param ::= "p[" [0-' + str(max_params - 1) + '] "]"',
        "feat ::= " + " | ".join(_lit(f'x["{f}"]') for f in feats),
        'num ::= [1-9] ("." [0-9])?',
        "call ::= " + (" | ".join(calls) if calls else '"(" inner ")"'),
    ]
    return "\n".join(lines) + "\n"
