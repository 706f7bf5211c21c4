"""The law language: a candidate potential as a formula (sympy), and back.

A candidate is Python source (docs/dev/contracts.md)::

    N_PARAMS = 2
    def potential(x, p):
        return p[0] * x["length"] + p[1] * np.log1p(x["vowels"])

One translator, ``translate``, reads it as a sympy expression without running it: a body of
assignments (``=``, ``+=`` ...) and one ``return``, over numbers, ``x["feature"]``, ``p[i]``,
arithmetic, ``np.pi`` / ``np.e``, the functions of the one function table ``FUNCTIONS`` (numpy,
math and builtin names, as PySR's export_sympy maps its operators) and the program's own helper
functions (inlined). GP trees always qualify; anything else (branches, loops, unknown calls) raises
``FormulaError`` with the reason, and the source stays the reference. A model's code is hostile:
the translation is bounded by ``potsearch.law.exprguard`` at this one entry point (a huge
expansion or exact number is refused as it grows).

The other direction: ``to_source`` writes an expression over features and parameters ``P_i`` as
``potential(x, p)`` source, calling numpy by the names of the same table (``NUMPY_NAMES``).

Printing: ``pretty_text`` (sympy's text, numbers rounded) and the one LaTeX printer ``latex_text``
(features upright as ``\\mathrm{name}``, specials escaped; parameters ``p_{i}``), which ``from_latex``
(sympy's LaTeX parser: the optional package ``antlr4-python3-runtime==4.11.*``) reads back.
``additive_terms`` splits an expanded law into (coefficient, basis) terms.
"""
from __future__ import annotations

import ast
import functools
import keyword
import operator
import re
import signal
import threading
from dataclasses import dataclass

import numpy as np

from potsearch.law.exprguard import MAX_SOURCE_CHARS, TooLarge, check_expr, check_number, exact_power_bound

# Python's arithmetic AST operators -> the operation (on sympy or numpy objects alike)
ARITHMETIC = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
              ast.Pow: operator.pow}
MAX_EXPONENT = 16          # |exponent| of a power the translator writes out
MODULES = ("np", "numpy", "math")
BUILTIN_CALLS = ("abs", "min", "max", "pow")


class FormulaError(ValueError):
    """The candidate's code cannot be translated to a formula (the reason is the message)."""


def _sympy():
    import sympy

    return sympy


# ----------------------------------------------------------------------------- the function table
@functools.cache
def functions() -> dict:
    """``FUNCTIONS``: a function's name, as a candidate calls it (``np.<name>``, ``math.<name>`` or a
    builtin), -> (number of arguments, its sympy form). The one table of the law language."""
    sp = _sympy()
    one = {
        "exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "sin": sp.sin, "cos": sp.cos, "tan": sp.tan,
        "tanh": sp.tanh, "sinh": sp.sinh, "cosh": sp.cosh, "arctan": sp.atan, "atan": sp.atan,
        "arcsin": sp.asin, "asin": sp.asin, "arccos": sp.acos, "acos": sp.acos, "arctanh": sp.atanh,
        "atanh": sp.atanh, "arcsinh": sp.asinh, "asinh": sp.asinh, "abs": sp.Abs, "fabs": sp.Abs,
        "absolute": sp.Abs, "sign": sp.sign, "cbrt": sp.cbrt, "erf": sp.erf,
        "log1p": lambda a: sp.log(1 + a), "expm1": lambda a: sp.exp(a) - 1, "square": lambda a: a ** 2,
        "log10": lambda a: sp.log(a, 10), "log2": lambda a: sp.log(a, 2), "reciprocal": lambda a: 1 / a,
        "negative": lambda a: -a,
    }
    two = {
        "power": _pow, "pow": _pow, "maximum": sp.Max, "fmax": sp.Max, "max": sp.Max,
        "minimum": sp.Min, "fmin": sp.Min, "min": sp.Min, "arctan2": sp.atan2, "atan2": sp.atan2,
        "hypot": lambda a, b: sp.sqrt(a ** 2 + b ** 2), "add": operator.add, "subtract": operator.sub,
        "multiply": operator.mul, "divide": operator.truediv, "true_divide": operator.truediv,
    }
    three = {"clip": lambda a, lo, hi: sp.Min(sp.Max(a, lo), hi)}
    return {**{k: (1, f) for k, f in one.items()}, **{k: (2, f) for k, f in two.items()},
            **{k: (3, f) for k, f in three.items()}}


@functools.cache
def numpy_names() -> dict:
    """``NUMPY_NAMES``: the sympy functions of ``FUNCTIONS`` -> the numpy call ``to_source`` writes
    (the first numpy name the table gives each: ``Abs`` -> ``np.abs``, ``atan`` -> ``np.arctan``)."""
    sp = _sympy()
    out = {}
    for name, (_, f) in functions().items():
        if isinstance(f, type) and issubclass(f, sp.Function) and hasattr(np, name) and f not in out:
            out[f] = f"np.{name}"
    return out


def _pow(a, b):
    """a ** b, refusing exponents that would make sympy build huge exact numbers (9**9**9)."""
    if getattr(b, "is_Number", False) and abs(float(b)) > MAX_EXPONENT:
        raise FormulaError(f"power with an exponent beyond {MAX_EXPONENT}")
    exact_power_bound(a, b, MAX_EXPONENT)
    if not getattr(b, "is_Number", False) and getattr(a, "is_Number", False) and abs(float(a)) > 1e6:
        raise FormulaError("power of a huge base")
    return a ** b


_BINARY = {**ARITHMETIC, ast.Pow: _pow}


# ----------------------------------------------------------------------------- source -> sympy
def potential_def(tree: ast.Module) -> ast.FunctionDef:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "potential":
            return node
    raise FormulaError("no function potential")


def n_params_of(tree: ast.Module) -> int:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "N_PARAMS" for t in node.targets):
            try:
                return int(ast.literal_eval(node.value))
            except (ValueError, TypeError):
                break
    raise FormulaError("no constant `N_PARAMS = k` in the candidate source")


_FEATURE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARAM_NAME = re.compile(r"[Pp]_\d+")


def feature_symbol(name: str):
    """The symbol of the feature ``name`` (a real number on every state)."""
    return _sympy().Symbol(name, real=True)


def _feature(name: str):
    """The symbol of ``x[name]`` in a candidate's source; a name that is not a plain identifier, a
    Python keyword, or that reads like a parameter symbol (p_0, P_0) is refused (it could not be a
    feature of a table)."""
    if not _FEATURE_NAME.fullmatch(name) or keyword.iskeyword(name) or _PARAM_NAME.fullmatch(name):
        raise FormulaError(f"feature name {name[:40]!r} is not a plain identifier")
    return feature_symbol(name)


def param_symbol(i: int):
    return _sympy().Symbol(f"p_{i}")


@dataclass
class Formula:
    expr: object                        # sympy expression (parameters symbolic or substituted)
    features: dict[str, object]         # feature name -> sympy Symbol
    params: dict[int, object]           # index -> sympy Symbol p_i (empty when the values were given)
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


def translate(source: str, params=None) -> Formula:
    """The candidate's law as a sympy expression, without running its code (module doc). ``params``
    given: their values (as 17-digit floats) stand for p[i]; else the symbols p_i (p[i] must be below
    the source's ``N_PARAMS``). Raises FormulaError, the reason as its message."""
    if len(source) > MAX_SOURCE_CHARS:
        raise FormulaError(f"source longer than {MAX_SOURCE_CHARS} characters")
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise FormulaError(f"unparsable: {type(exc).__name__}") from None
    try:
        return _Translation(tree, params).formula()
    except TooLarge as exc:
        raise FormulaError(str(exc)) from None
    except RecursionError:
        raise FormulaError("the law is nested too deeply to write out") from None


class _Translation:
    """One walk of a candidate's AST into sympy (``translate``), every value bounded as it is built."""

    def __init__(self, tree: ast.Module, params):
        self.sp = sp = _sympy()
        self.funcs = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        if "potential" not in self.funcs:
            raise FormulaError("no function potential")
        self.features: dict[str, object] = {}
        self.psyms: dict[int, object] = {}
        if params is None:
            self.pvals, self.n = None, n_params_of(tree)
        else:
            try:
                self.pvals = [check_number(sp.Float(float(v), 17)) for v in params]
            except (TypeError, ValueError, OverflowError):
                raise FormulaError("a parameter that is not a number") from None
            self.n = len(self.pvals)

    def formula(self) -> Formula:
        pot = self.funcs["potential"]
        if len(pot.args.args) != 2:
            raise FormulaError("potential must take (x, p)")
        env = {pot.args.args[0].arg: "__x__", pot.args.args[1].arg: "__p__"}
        expr = self.body(pot.body, env, 0, "potential")
        return Formula(expr, self.features, self.psyms, self.n, substituted=self.pvals is not None)

    def call(self, fdef: ast.FunctionDef, args: list, depth: int):
        if depth > 8:
            raise FormulaError("helper calls nested too deeply")
        names = [a.arg for a in fdef.args.args]
        if fdef.args.vararg or fdef.args.kwarg or fdef.args.kwonlyargs or fdef.args.defaults or len(args) != len(names):
            raise FormulaError(f"unsupported signature of {fdef.name}")
        return self.body(fdef.body, dict(zip(names, args)), depth, fdef.name)

    def body(self, stmts, env, depth, where):
        for stmt in stmts:
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                continue  # docstring
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                env[stmt.targets[0].id] = check_expr(self.ev(stmt.value, env, depth))
            elif isinstance(stmt, ast.AugAssign) and isinstance(stmt.target, ast.Name) and type(stmt.op) in _BINARY \
                    and not isinstance(env.get(stmt.target.id, ""), str):
                old = env[stmt.target.id]
                env[stmt.target.id] = check_expr(_BINARY[type(stmt.op)](old, self.ev(stmt.value, env, depth)))
            elif isinstance(stmt, ast.Return) and stmt.value is not None:
                return check_expr(self.sp.sympify(self.ev(stmt.value, env, depth)))
            else:
                raise FormulaError(f"statement {type(stmt).__name__} in {where}")
        raise FormulaError(f"{where} returns nothing")

    def ev(self, n, env, depth):
        sp = self.sp
        if isinstance(n, ast.Constant) and isinstance(n.value, (int, float)) and not isinstance(n.value, bool):
            if isinstance(n.value, int) and n.value.bit_length() > 2000:
                raise FormulaError("an integer literal beyond 2000 bits")
            return check_number(sp.Integer(n.value) if isinstance(n.value, int) else sp.Rational(str(n.value)))
        if isinstance(n, ast.Name):
            if n.id in env and not isinstance(env[n.id], str):
                return env[n.id]
            raise FormulaError(f"name {n.id}")
        if isinstance(n, ast.Subscript) and isinstance(n.value, ast.Name):
            return self.subscript(env.get(n.value.id), n.slice)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in MODULES \
                and n.attr in ("pi", "e"):
            return sp.pi if n.attr == "pi" else sp.E
        if isinstance(n, ast.BinOp) and type(n.op) in _BINARY:   # exact numbers bounded as they grow
            out = _BINARY[type(n.op)](self.ev(n.left, env, depth), self.ev(n.right, env, depth))
            return check_number(out) if isinstance(out, sp.Number) else out
        if isinstance(n, ast.UnaryOp) and isinstance(n.op, (ast.USub, ast.UAdd)):
            v = self.ev(n.operand, env, depth)
            return -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.Call) and not n.keywords:
            args = [self.ev(a, env, depth) for a in n.args]
            f, name = n.func, None
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in MODULES \
                    and f.attr not in ("max", "min"):   # np.max(a, b) is a reduction over axis b
                name = f.attr
            elif isinstance(f, ast.Name) and f.id in self.funcs and f.id != "potential":
                return self.call(self.funcs[f.id], args, depth + 1)
            elif isinstance(f, ast.Name) and f.id in BUILTIN_CALLS:
                name = f.id
            arity, fn = functions().get(name, (None, None))
            if arity == len(args):
                return fn(*args)
            raise FormulaError(f"call {ast.unparse(f)[:40]}() with {len(args)} argument(s)")
        raise FormulaError(type(n).__name__)

    def subscript(self, base, key):
        if isinstance(key, ast.Constant) and base == "__x__" and isinstance(key.value, str):
            name = key.value
            if name not in self.features:
                self.features[name] = _feature(name)
            return self.features[name]
        if isinstance(key, ast.Constant) and base == "__p__" and isinstance(key.value, int) \
                and not isinstance(key.value, bool):
            i = key.value
            if self.pvals is not None:
                if not 0 <= i < len(self.pvals):
                    raise FormulaError(f"p[{i}] without a value")
                return self.pvals[i]
            if not 0 <= i < max(self.n, 1):
                raise FormulaError(f"p[{i}] is out of range for N_PARAMS = {self.n}")
            return self.psyms.setdefault(i, param_symbol(i))
        raise FormulaError("subscript")


# ----------------------------------------------------------------------------- sympy -> source
def to_source(pexpr, n_params: int) -> str:
    """potential(x, p) source of an expression over features and parameters P_i (numpy calls by
    ``numpy_names``). Raises FormulaError for a function the table cannot write."""
    return f"N_PARAMS = {n_params}\n\n\ndef potential(x, p):\n    return {_py(pexpr)}\n"


def _py(e) -> str:
    sp = _sympy()
    if isinstance(e, sp.Symbol):
        if e.name.startswith("P_") and e.name[2:].isdigit():
            return f"p[{int(e.name[2:])}]"
        return f"x[{e.name!r}]"
    if isinstance(e, sp.Integer):
        return f"({int(e)})" if e < 0 else str(int(e))
    if isinstance(e, sp.Rational):
        return f"({float(e)!r})"
    if isinstance(e, sp.Float) or e.is_Number:
        return f"({float(e)!r})"
    if e is sp.pi or e is sp.E:
        return "np.pi" if e is sp.pi else "np.e"
    if isinstance(e, sp.Add):
        return "(" + " + ".join(_py(a) for a in e.args) + ")"
    if isinstance(e, sp.Mul):
        num = [a for a in e.args if not (a.is_Pow and a.exp.is_Number and a.exp < 0)]
        den = [a.base ** (-a.exp) for a in e.args if a.is_Pow and a.exp.is_Number and a.exp < 0]
        s = " * ".join(_py(a) for a in num) if num else "1"
        if den:
            s = f"({s}) / ({' * '.join(_py(a) for a in den)})"
        return f"({s})"
    if isinstance(e, sp.Pow):
        if e.exp == sp.Rational(1, 2):
            return f"np.sqrt({_py(e.base)})"
        if e.exp.is_Number and e.exp < 0:
            return f"(1 / {_py(e.base ** (-e.exp))})"
        return f"(({_py(e.base)}) ** {_py(e.exp)})"
    if isinstance(e, (sp.Max, sp.Min)):
        fn = "np.maximum" if isinstance(e, sp.Max) else "np.minimum"
        args = [_py(a) for a in e.args]
        s = args[0]
        for a in args[1:]:
            s = f"{fn}({s}, {a})"
        return s
    if e.func in numpy_names():
        return f"{numpy_names()[e.func]}({', '.join(_py(a) for a in e.args)})"
    raise FormulaError(f"cannot emit {e.func}")


# ----------------------------------------------------------------------------- terms and text
def additive_terms(expr) -> list[tuple[float, object]]:
    """Additive terms (coefficient, basis) of an expanded law; the additive constant is dropped."""
    sp = _sympy()
    out: dict = {}
    for t in sp.Add.make_args(expr):
        c, b = t.as_coeff_Mul()
        if b == 1 or not b.free_symbols:
            continue
        out[b] = out.get(b, 0.0) + float(c)
    return [(c, b) for b, c in out.items() if c != 0.0]


def _rounded(expr, digits: int):
    sp = _sympy()
    return expr.xreplace({f: sp.Float(float(f), digits) for f in expr.atoms(sp.Float)})


def pretty_text(expr, digits: int = 4) -> str:
    """sympy's text of a law, numbers rounded to ``digits`` significant digits."""
    return _sympy().sstr(_rounded(expr, digits))


# ----------------------------------------------------------------------------- symbolic simplification
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


def formula_of(source: str, params=None, simplify: float = 2.0) -> Formula:
    """The formula ``show --format sympy|latex`` prints. With ``params``: the law at those values as
    its source writes it (``translate``; for a simplified law the expression of its ``latex_text``
    line); without: the family over p_i, simplified symbolically within ``simplify`` seconds."""
    if params is not None:
        return translate(source, params)
    form = translate(source)
    expr, ok = simplify_bounded(form.expr, simplify)
    return Formula(expr, form.features, form.params, form.n_params, False, ok)


# ----------------------------------------------------------------------------- LaTeX
def latex_name(name: str) -> str:
    """A feature name as upright text, underscores and other specials escaped: rare_letters ->
    \\mathrm{rare\\_letters}."""
    special = {"_": r"\_", "#": r"\#", "$": r"\$", "%": r"\%", "&": r"\&", "{": r"\{", "}": r"\}",
               "\\": r"\backslash{}", "^": r"\^{}", "~": r"\~{}", " ": r"\ "}
    return r"\mathrm{%s}" % "".join(special.get(c, c) for c in name)


def _latex_symbol(name: str) -> str:
    return "p_{%s}" % name[2:] if _PARAM_NAME.fullmatch(name) and name[0] == "p" else latex_name(name)


def latex_text(expr, digits: int = 4) -> str:
    """The one LaTeX printer of the law language: sympy's LaTeX of ``expr``, numbers rounded to
    ``digits`` significant digits, features upright (``latex_name``), parameters p_{i}."""
    sp = _sympy()
    r = _rounded(expr, digits)
    return sp.latex(r, symbol_names={s: _latex_symbol(s.name) for s in r.free_symbols})


def latex_legend(form: Formula) -> list[str]:
    return [f'{latex_name(name)} = x["{name}"]' for name in form.features]


def from_latex(tex: str, form: Formula):
    """Parse LaTeX printed by ``latex_text`` back to sympy, with the formula's own symbols.
    Needs sympy's LaTeX parser backend: ``antlr4-python3-runtime==4.11.*``."""
    sp = _sympy()
    try:
        import antlr4  # noqa: F401
    except ImportError:
        raise FormulaError("reading LaTeX back needs the optional package antlr4-python3-runtime==4.11.*") from None
    from sympy.parsing.latex import parse_latex

    # what sympy's parser does not read: \mathrm{..} (stand-ins z_{k} first), |..| written \left|{..}\right|
    # and the functions it names \operatorname{..} (their table names instead)
    names = {sym: latex_name(name) for name, sym in form.features.items()}
    names.update({sym: "p_{%d}" % i for i, sym in form.params.items()})
    stand = {}
    for k, (sym, t) in enumerate(sorted(((s_, t_) for s_, t_ in names.items() if t_.startswith(r"\mathrm")),
                                        key=lambda st: -len(st[1]))):
        tex = tex.replace(t, "z_{%d}" % k)
        stand[sym] = "z_{%d}" % k
    tex = tex.replace(r"\left|{", "|").replace(r"}\right|", "|")
    tex = re.sub(r"\\operatorname\{(\w+)\}", lambda m: "\\" + {"atan": "arctan", "asin": "arcsin",
                                                                 "acos": "arccos"}.get(m[1], m[1]), tex)
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
