"""What every surrogate shares: its labels and the hidden potential's formula, read by a small safe
evaluator (numbers, feature names, + - * / **, unary -, and the functions in ``SAFE_FUNCS``); never eval.
(:mod:`potsearch.agents.surrogate` and :mod:`potsearch.agents.statesurrogate` use it.)"""
from __future__ import annotations

import ast

import numpy as np

from potsearch.core.errors import InputError

SURROGATE_MODEL = "surrogate"
SURROGATE_LABEL = "SURROGATE test instrument with a known hidden potential - not a language model"
ESCAPE_REASON = "surrogate escape"
UNKNOWN_SOURCE = "surrogate: unknown source state"

SAFE_FUNCS = {
    "exp": np.exp, "log": np.log, "log1p": np.log1p, "sqrt": np.sqrt, "abs": np.abs,
    "sin": np.sin, "cos": np.cos, "tanh": np.tanh, "minimum": np.minimum, "maximum": np.maximum,
}
_BIN = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}


def compile_formula(text: str, names: tuple[str, ...], where: str = "hidden_potential"):
    """Validate a feature formula; returns ``f(features: dict[str, ndarray]) -> ndarray``."""
    if not isinstance(text, str) or len(text) > 2000:
        raise InputError(f"{where}: a formula string of at most 2000 characters is required")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InputError(f"{where}: not a formula ({exc.msg}): {text!r}") from None

    def check(n, depth=0):
        if depth > 40:
            raise InputError(f"{where}: formula nested too deeply")
        if isinstance(n, ast.Expression):
            return check(n.body, depth + 1)
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool):
            return
        if isinstance(n, ast.Name):
            if n.id not in names:
                raise InputError(f"{where}: unknown feature {n.id!r} (features: {', '.join(names)})")
            return
        if isinstance(n, ast.BinOp) and type(n.op) in _BIN:
            check(n.left, depth + 1)
            check(n.right, depth + 1)
            return
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            return check(n.operand, depth + 1)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in SAFE_FUNCS and not n.keywords:
            for a in n.args:
                check(a, depth + 1)
            return
        raise InputError(f"{where}: {type(n).__name__} is not allowed in a formula: {text!r}")

    check(tree)

    def ev(n, env):
        if isinstance(n, ast.Expression):
            return ev(n.body, env)
        if isinstance(n, ast.Constant):
            return float(n.value)
        if isinstance(n, ast.Name):
            return env[n.id]
        if isinstance(n, ast.BinOp):
            return _BIN[type(n.op)](ev(n.left, env), ev(n.right, env))
        if isinstance(n, ast.UnaryOp):
            v = ev(n.operand, env)
            return -v if isinstance(n.op, ast.USub) else v
        return SAFE_FUNCS[n.func.id](*[ev(a, env) for a in n.args])

    def f(features: dict) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.asarray(ev(tree, features), dtype=float)

    return f
