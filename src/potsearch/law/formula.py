"""A candidate potential as a formula: its sympy form, its additive terms, LaTeX export.

A candidate is Python source (docs/dev/contracts.md)::

    N_PARAMS = 2
    def potential(x, p):
        return p[0] * x["length"] + p[1] * np.log1p(x["vowels"])

Translation to sympy works when the body is straight-line code: assignments of
expressions to local names followed by one ``return`` expression built from numbers,
``x["feature"]``, ``p[i]``, arithmetic and the numpy / math functions in ``_FUNCS``
(GP trees always are). Anything else (branches, loops, comprehensions, unknown calls)
raises ``FormulaError`` with the reason — the source stays the reference then.

The same AST walk gives the *top-level additive terms* of the returned expression
(``a + b - c`` -> ``[a, b, -c]``), which attribution ablates one at a time.

LaTeX: ``to_latex`` prints features as ``\\mathrm{name}`` (underscores escaped) and parameters as ``p_{i}``
so that ``from_latex`` (sympy's LaTeX parser, which needs the optional package
``antlr4-python3-runtime==4.11.*``) reads it back to the same expression.
"""
from __future__ import annotations

import ast
import math
import operator
import re
import signal
import threading
from dataclasses import dataclass, field

import numpy as np

# Python's arithmetic AST operators -> the operation (on sympy or numpy objects alike)
ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow}


class FormulaError(ValueError):
    """The candidate's code cannot be translated to a formula (the reason is the message)."""


# ----------------------------------------------------------------------------- source inspection
@dataclass
class Term:
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
    terms: list[Term] = field(default_factory=list)   # top-level additive terms of the return (>= 1)
    straight_line: bool = False           # body = assignments + one final return


def _find_potential(tree: ast.Module) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "potential":
            return node
    raise FormulaError("no `def potential(x, p)` in the candidate source")


def _n_params(tree: ast.Module) -> int:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "N_PARAMS" for t in node.targets):
            try:
                return int(ast.literal_eval(node.value))
            except (ValueError, TypeError):
                break
    raise FormulaError("no constant `N_PARAMS = k` in the candidate source")


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
    fn = _find_potential(tree)
    n = _n_params(tree)
    xname, pname = _arg_names(fn)
    local: dict[str, tuple[list[str], list[int]]] = {}
    feats, pars = _uses(fn, xname, pname, {})
    body = _body(fn)
    straight = bool(body) and isinstance(body[-1], ast.Return) and body[-1].value is not None and all(
        isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name) for s in body[:-1])
    terms: list[Term] = []
    # local names -> what they use (straight-line prefix only; enough for term bookkeeping)
    for s in body:
        if isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name):
            local[s.targets[0].id] = _uses(s.value, xname, pname, local)
    last = body[-1] if body else None
    if isinstance(last, ast.Return) and last.value is not None and not any(
            isinstance(s, ast.Return) for s in ast.walk(ast.Module(body=body[:-1], type_ignores=[]))):
        for k, (sign, node) in enumerate(_split_sum(last.value)):
            f, q = _uses(node, xname, pname, local)
            terms.append(Term(k, sign, ast.unparse(node), f, q))
    else:
        terms.append(Term(0, 1, "potential(x, p)", feats, pars))
    return CandidateInfo(n, feats, sorted(pars), terms, straight)


def terms_source(source: str) -> str:
    """The candidate rewritten so that ``potential_terms(x, p)`` returns its additive terms as a list
    (each already carrying its sign). Raises FormulaError when the function has no single final return."""
    tree = ast.parse(source)
    fn = _find_potential(tree)
    body = _body(fn)
    last = body[-1] if body else None
    if not (isinstance(last, ast.Return) and last.value is not None) or any(
            isinstance(s, ast.Return) for s in ast.walk(ast.Module(body=body[:-1], type_ignores=[]))):
        raise FormulaError("the potential has no single final return: no additive terms")
    elts = []
    for sign, node in _split_sum(last.value):
        elts.append(node if sign > 0 else ast.UnaryOp(op=ast.USub(), operand=node))
    import copy

    new_fn = copy.deepcopy(fn)
    new_fn.name = "potential_terms"
    new_fn.decorator_list = []
    new_fn.body = copy.deepcopy(body[:-1]) + [ast.Return(ast.List(elts, ast.Load()))]
    # imports are dropped: the namespace provides np and math (as the sandbox's compile does)
    tree.body = [n for n in tree.body if not isinstance(n, (ast.Import, ast.ImportFrom))] + [new_fn]
    return ast.unparse(ast.fix_missing_locations(tree))


# ----------------------------------------------------------------------------- sympy translation
def _sympy():
    import sympy

    return sympy


def _funcs():
    sp = _sympy()
    one = {
        "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
        "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh, "arctan": sp.atan, "atan": sp.atan,
        "arcsin": sp.asin, "asin": sp.asin, "arccos": sp.acos, "acos": sp.acos, "arctanh": sp.atanh,
        "atanh": sp.atanh, "arcsinh": sp.asinh, "asinh": sp.asinh, "abs": sp.Abs, "fabs": sp.Abs,
        "absolute": sp.Abs, "sign": sp.sign, "cbrt": sp.cbrt, "erf": sp.erf,
        "log1p": lambda a: sp.log(1 + a), "expm1": lambda a: sp.exp(a) - 1, "square": lambda a: a**2,
        "log10": lambda a: sp.log(a, 10), "log2": lambda a: sp.log(a, 2), "reciprocal": lambda a: 1 / a,
        "negative": lambda a: -a,
    }
    two = {
        "power": lambda a, b: a**b, "pow": lambda a, b: a**b, "maximum": sp.Max, "fmax": sp.Max, "max": sp.Max,
        "minimum": sp.Min, "fmin": sp.Min, "min": sp.Min, "arctan2": sp.atan2, "atan2": sp.atan2,
        "hypot": lambda a, b: sp.sqrt(a**2 + b**2), "add": lambda a, b: a + b, "subtract": lambda a, b: a - b,
        "multiply": lambda a, b: a * b, "divide": lambda a, b: a / b, "true_divide": lambda a, b: a / b,
    }
    three = {"clip": lambda a, lo, hi: sp.Min(sp.Max(a, lo), hi)}
    return one, two, three


_MODULES = {"np", "numpy", "math"}
_CONSTS = {"pi": math.pi, "e": math.e}
_BUILTINS = {"abs", "min", "max", "pow"}


@dataclass
class Formula:
    expr: object                        # sympy expression (parameters symbolic or substituted)
    features: dict[str, object]         # feature name -> sympy Symbol
    params: dict[int, object]           # index -> sympy Symbol p_i
    n_params: int
    substituted: bool = False
    simplified: bool = False

    def substitute(self, values) -> "Formula":
        values = np.asarray(values, dtype=float)
        sp = _sympy()
        sub = {s: sp.Float(float(values[i]), 15) for i, s in self.params.items() if i < len(values)}
        return Formula(self.expr.xreplace(sub), self.features, self.params, self.n_params, True, self.simplified)

    def lambdify(self):
        """f(x: dict, p) -> np.ndarray, evaluating the formula (used to check a translation numerically)."""
        sp = _sympy()
        fsyms = list(self.features.values())
        psyms = [self.params[i] for i in sorted(self.params)]
        f = sp.lambdify(fsyms + psyms, self.expr, modules="numpy")
        names = list(self.features)
        order = sorted(self.params)

        def call(x, p=()):
            args = [np.asarray(x[n], dtype=float) for n in names] + [float(p[i]) for i in order]
            out = f(*args)
            n = len(next(iter(x.values()))) if x else 1
            return np.broadcast_to(np.asarray(out, dtype=float), (n,)).copy()

        return call


def feature_symbol(name: str):
    sp = _sympy()
    return sp.Symbol(name if name.isidentifier() else re.sub(r"\W", "_", name))


def param_symbol(i: int):
    return _sympy().Symbol(f"p_{i}")


def to_sympy(source: str, params=None) -> Formula:
    """The candidate as a sympy expression. ``params`` given: numbers substituted for p_i."""
    from potsearch.law.exprguard import (
        MAX_SOURCE_CHARS, TooLarge, check_expr, check_number, exact_power_bound
    )

    sp = _sympy()
    if len(source) > MAX_SOURCE_CHARS:
        raise FormulaError(f"the candidate is longer than {MAX_SOURCE_CHARS} characters")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise FormulaError(f"the candidate does not parse: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise FormulaError(f"the candidate does not parse ({type(exc).__name__})") from None
    try:
        return _to_sympy(tree, params, sp, check_expr, check_number, exact_power_bound)
    except TooLarge as exc:
        raise FormulaError(f"the candidate's law is too large to write out: {exc}") from None
    except RecursionError:
        raise FormulaError("the candidate's law is nested too deeply to write out") from None


def _to_sympy(tree, params, sp, check_expr, check_number, exact_power_bound) -> Formula:
    fn = _find_potential(tree)
    n = _n_params(tree)
    xname, pname = _arg_names(fn)
    one, two, three = _funcs()
    features: dict[str, object] = {}
    psyms: dict[int, object] = {}
    env: dict[str, object] = {}

    def conv(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            if isinstance(node.value, int) and node.value.bit_length() > 2000:
                raise FormulaError("an integer literal beyond 2000 bits")
            return sp.Integer(node.value) if isinstance(node.value, int) else sp.Float(node.value, 15)
        key = _feature_key(node, xname)
        if key is not None:
            if key not in features:
                features[key] = feature_symbol(key)
            return features[key]
        idx = _param_index(node, pname)
        if idx is not None:
            if not 0 <= idx < max(n, 1):
                raise FormulaError(f"p[{idx}] is out of range for N_PARAMS = {n}")
            psyms.setdefault(idx, param_symbol(idx))
            return psyms[idx]
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            raise FormulaError(f"unknown name {node.id!r}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in _MODULES \
                and node.attr in _CONSTS:
            return sp.pi if node.attr == "pi" else sp.E
        if isinstance(node, ast.BinOp):
            a, b = conv(node.left), conv(node.right)
            if type(node.op) not in ARITHMETIC:
                raise FormulaError(f"operator {type(node.op).__name__} has no formula")
            if isinstance(node.op, ast.Pow):
                exact_power_bound(a, b, 64)
            out = ARITHMETIC[type(node.op)](a, b)
            return check_number(out) if getattr(out, "is_Number", False) else out
        if isinstance(node, ast.UnaryOp):
            a = conv(node.operand)
            if isinstance(node.op, ast.USub):
                return -a
            if isinstance(node.op, ast.UAdd):
                return a
            raise FormulaError(f"operator {type(node.op).__name__} has no formula")
        if isinstance(node, ast.Call) and not node.keywords:
            f = node.func
            name = None
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in _MODULES:
                name = f.attr
            elif isinstance(f, ast.Name) and f.id in _BUILTINS:
                name = f.id
            if name is not None:
                args = [conv(a) for a in node.args]
                table = {1: one, 2: two, 3: three}.get(len(args), {})
                if name in table:
                    return table[name](*args)
            raise FormulaError(f"call {ast.unparse(node.func)}() with {len(node.args)} argument(s) has no formula")
        raise FormulaError(f"`{ast.unparse(node)[:60]}` has no formula")

    body = _body(fn)
    if not body or not isinstance(body[-1], ast.Return) or body[-1].value is None:
        raise FormulaError("the potential does not end with a single return expression")
    for s in body[:-1]:
        if not (isinstance(s, ast.Assign) and len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)):
            raise FormulaError(f"statement `{ast.unparse(s).splitlines()[0][:60]}` is not a plain assignment")
        env[s.targets[0].id] = check_expr(conv(s.value))
    expr = check_expr(conv(body[-1].value))
    form = Formula(expr, features, psyms, n)
    if params is not None:
        form = form.substitute(params)
    return form


# ----------------------------------------------------------------------------- simplification
class _Timeout(Exception):
    pass


def simplify_bounded(expr, seconds: float = 2.0):
    """sympy.simplify under a wall-clock bound (SIGALRM, main thread only); returns (expr, simplified?).
    Elsewhere (or on timeout) the cheap ``sympy.cancel``-free form is kept."""
    sp = _sympy()
    if seconds <= 0 or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        return expr, False

    def handler(signum, frame):
        raise _Timeout()

    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        out = sp.simplify(expr)
        ok = True
    except _Timeout:
        out, ok = expr, False
    except Exception:  # noqa: BLE001 - sympy can fail on odd expressions: keep the unsimplified form
        out, ok = expr, False
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    # never accept a "simplification" that is longer than the original
    if ok and sp.count_ops(out) > sp.count_ops(expr):
        return expr, False
    return out, ok


def formula_of(source: str, params=None, simplify: float = 2.0, substitute: bool = True) -> Formula:
    """Translate, simplify symbolically (time-bounded), then substitute the parameter values."""
    form = to_sympy(source)
    expr, ok = simplify_bounded(form.expr, simplify)
    form = Formula(expr, form.features, form.params, form.n_params, False, ok)
    if params is not None and substitute:
        form = form.substitute(params)
    return form


# ----------------------------------------------------------------------------- LaTeX
def latex_name(name: str) -> str:
    """A feature name as upright text, underscores and other specials escaped: rare_letters ->
    \\mathrm{rare\\_letters}."""
    special = {"_": r"\_", "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&", "{": r"\{", "}": r"\}",
               "\\": r"\backslash{}", "^": r"\^{}", "~": r"\~{}", " ": r"\ "}
    return r"\mathrm{%s}" % "".join(special.get(c, c) for c in name)


def latex_symbols(form: Formula) -> dict:
    """Symbol -> LaTeX: features by their own names, upright (\\mathrm{rare\\_letters}); parameters p_{i}."""
    out = {}
    for name, sym in form.features.items():
        out[sym] = latex_name(name)
    for i, sym in form.params.items():
        out[sym] = "p_{%d}" % i
    return out


def to_latex(form: Formula, digits: int = 6) -> str:
    """LaTeX of the formula (numbers rounded to ``digits`` significant digits), readable back by from_latex."""
    sp = _sympy()
    from sympy.printing.latex import LatexPrinter

    class _Printer(LatexPrinter):
        def _print_Abs(self, expr, exp=None):  # |a|, the form sympy's parser reads
            tex = r"|%s|" % self._print(expr.args[0])
            return tex if exp is None else r"%s^{%s}" % (tex, exp)

        def _print_Max(self, expr, exp=None):
            return r"\max(%s)" % ", ".join(self._print(a) for a in expr.args)

        def _print_Min(self, expr, exp=None):
            return r"\min(%s)" % ", ".join(self._print(a) for a in expr.args)

    expr = form.expr
    floats = {f: sp.Float(f, digits) for f in expr.atoms(sp.Float)}
    expr = expr.xreplace(floats)
    return _Printer({"symbol_names": latex_symbols(form), "mul_symbol": "dot"}).doprint(expr)


def latex_legend(form: Formula) -> list[str]:
    names = latex_symbols(form)
    return [f'{names[sym]} = x["{name}"]' for name, sym in form.features.items()]


def from_latex(tex: str, form: Formula):
    """Parse LaTeX produced by ``to_latex`` back to sympy, with the formula's own symbols.
    Needs sympy's LaTeX parser backend: ``antlr4-python3-runtime==4.11.*``."""
    sp = _sympy()
    try:
        import antlr4  # noqa: F401
    except ImportError:
        raise FormulaError("reading LaTeX back needs the optional package antlr4-python3-runtime==4.11.*") from None
    from sympy.parsing.latex import parse_latex

    # sympy's parser does not read \\mathrm{..}: stand-ins z_{k} for the feature names first
    names = latex_symbols(form)
    stand = {}
    for k, (sym, t) in enumerate(sorted(((s_, t_) for s_, t_ in names.items() if t_.startswith(r"\mathrm")),
                                        key=lambda st: -len(st[1]))):
        tex = tex.replace(t, "z_{%d}" % k)
        stand[sym] = "z_{%d}" % k
    expr = parse_latex(tex)
    # the parser reads e^{a} as the symbol e, \max as an undefined function: map them back
    back = {parse_latex(stand.get(sym, t)): sym for sym, t in names.items()}
    back[sp.Symbol("e")] = sp.E
    expr = expr.xreplace(back)
    repl = {}
    for f in expr.atoms(sp.Function):
        fname = type(f).__name__
        if fname in ("max", "min"):
            repl[f] = (sp.Max if fname == "max" else sp.Min)(*f.args)
    return expr.xreplace(repl) if repl else expr
