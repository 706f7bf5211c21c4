"""A candidate's source read without running it: the features and parameters it uses, and the
top-level additive terms of its returned expression (``a + b - c`` -> ``[a, b, -c]``, a scale times a
sum distributed), which attribution ablates one at a time (``terms_source`` writes them as
``potential_terms(x, p)`` for the sandbox). The terms are the source's own code, so that a term is
attributed as the candidate wrote it; the additive terms of a law's sympy form are
``potsearch.law.formula.additive_terms``.
"""
from __future__ import annotations

import ast
import copy
from dataclasses import dataclass, field

from potsearch.law.formula import FormulaError, n_params_of, potential_def

@dataclass
class SourceTerm:
    index: int
    sign: int                 # +1 / -1: how the term enters the sum
    code: str                 # the term's source text (without its sign)
    features: list[str]       # features the term uses (through local names too)
    params: list[int]         # parameter indices the term uses


@dataclass
class CandidateInfo:
    n_params: int
    features: list[str]                   # every x["..."] the function reads, in first-use order
    params: list[int]                     # every p[i] with a constant i
    terms: list[SourceTerm] = field(default_factory=list)   # top-level additive terms of the return (>= 1)
    straight_line: bool = False           # body = assignments + one final return


def _arg_names(fn: ast.FunctionDef) -> tuple[str, str]:
    args = [a.arg for a in fn.args.args]
    if len(args) < 2:
        raise FormulaError("potential() must take (x, p)")
    return args[0], args[1]


def _feature_key(node: ast.AST, xname: str) -> str | None:
    """'name' for x["name"] (or x.get? no: only subscripts with a constant string)."""
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == xname:
        sl = node.slice
        if isinstance(sl, ast.Constant) and isinstance(sl.value, str):
            return sl.value
    return None


def _param_index(node: ast.AST, pname: str) -> int | None:
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == pname:
        sl = node.slice
        if isinstance(sl, ast.UnaryOp) and isinstance(sl.op, ast.USub) and isinstance(sl.operand, ast.Constant):
            return None
        if isinstance(sl, ast.Constant) and isinstance(sl.value, int):
            return int(sl.value)
    return None


def _uses(node: ast.AST, xname: str, pname: str, local: dict[str, tuple[list[str], list[int]]]):
    feats: list[str] = []
    pars: list[int] = []
    nodes = sorted((n for n in ast.walk(node) if hasattr(n, "lineno")),
                   key=lambda n: (n.lineno, n.col_offset))  # source order
    for sub in nodes:
        k = _feature_key(sub, xname)
        if k is not None and k not in feats:
            feats.append(k)
        i = _param_index(sub, pname)
        if i is not None and i not in pars:
            pars.append(i)
        if isinstance(sub, ast.Name) and sub.id in local and isinstance(sub.ctx, ast.Load):
            f2, p2 = local[sub.id]
            feats += [f for f in f2 if f not in feats]
            pars += [q for q in p2 if q not in pars]
    return feats, pars


def _split_sum(node: ast.AST, sign: int = 1) -> list[tuple[int, ast.AST]]:
    """Top-level additive terms: a + b - (c + d) -> [(+,a), (+,b), (-,c), (-,d)]."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
        right_sign = sign if isinstance(node.op, ast.Add) else -sign
        return _split_sum(node.left, sign) + _split_sum(node.right, right_sign)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return _split_sum(node.operand, -sign)
    # a scale times a sum (GP trees: p[0] * (a + b)) distributes: p[0]*a + p[0]*b
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        for scale, rest in ((node.left, node.right), (node.right, node.left)):
            if _is_scale(scale) and isinstance(rest, ast.BinOp) and isinstance(rest.op, (ast.Add, ast.Sub)):
                return [(sg, ast.BinOp(left=scale, op=ast.Mult(), right=t)) for sg, t in _split_sum(rest, sign)]
    return [(sign, node)]


def _is_scale(node: ast.AST) -> bool:
    """A number or a parameter p[i] (anything subscripted by an int constant)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return True
    return isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(
        node.slice.value, int)


def _body(fn: ast.FunctionDef) -> list[ast.stmt]:
    body = list(fn.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]  # docstring
    return body


def candidate_info(source: str) -> CandidateInfo:
    """Features, parameters and additive terms of a candidate (never executes it)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise FormulaError(f"the candidate does not parse: {exc.msg} (line {exc.lineno})") from None
    fn = potential_def(tree)
    n = n_params_of(tree)
    xname, pname = _arg_names(fn)
    local: dict[str, tuple[list[str], list[int]]] = {}
    feats, pars = _uses(fn, xname, pname, {})
    body = _body(fn)
    straight = bool(body) and isinstance(body[-1], ast.Return) and body[-1].value is not None and all(
        isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) for s in body[:-1])
    terms: list[SourceTerm] = []
    # local names -> what they use (straight-line prefix only; enough for term bookkeeping)
    for s in body:
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
            local[s.targets[0].id] = _uses(s.value, xname, pname, local)
    last = body[-1] if body else None
    if isinstance(last, ast.Return) and last.value is not None and not any(
            isinstance(s, ast.Return) for s in ast.walk(ast.Module(body=body[:-1], type_ignores=[]))):
        for k, (sign, node) in enumerate(_split_sum(last.value)):
            f, q = _uses(node, xname, pname, local)
            terms.append(SourceTerm(k, sign, ast.unparse(node), f, q))
    else:
        terms.append(SourceTerm(0, 1, "potential(x, p)", feats, pars))
    return CandidateInfo(n, feats, sorted(pars), terms, straight)


def terms_source(source: str) -> str:
    """The candidate rewritten so that ``potential_terms(x, p)`` returns its additive terms as a list
    (each already carrying its sign). Raises FormulaError when the function has no single final return."""
    tree = ast.parse(source)
    fn = potential_def(tree)
    body = _body(fn)
    last = body[-1] if body else None
    if not (isinstance(last, ast.Return) and last.value is not None) or any(
            isinstance(s, ast.Return) for s in ast.walk(ast.Module(body=body[:-1], type_ignores=[]))):
        raise FormulaError("the potential has no single final return: no additive terms")
    elts = []
    for sign, node in _split_sum(last.value):
        elts.append(node if sign > 0 else ast.UnaryOp(op=ast.USub(), operand=node))
    new_fn = copy.deepcopy(fn)
    new_fn.name = "potential_terms"
    new_fn.decorator_list = []
    new_fn.body = copy.deepcopy(body[:-1]) + [ast.Return(ast.List(elts, ast.Load()))]
    # imports are dropped: the namespace provides np and math (as the sandbox's compile does)
    tree.body = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))] + [new_fn]
    return ast.unparse(ast.fix_missing_locations(tree))
