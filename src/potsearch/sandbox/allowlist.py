"""Layer 1 of the sandbox: the AST allowlist every candidate passes before anything is compiled.

numpy/math calls from explicit lists, arithmetic, ``if``, ``for`` over ``range``, functions; no
attribute access except ``np.<allowed>``/``math.<allowed>``, no dunder names or strings, no
lambda/class/try/with/while/f-strings/comprehensions/starred arguments, bounded size, depth and
constant exponents; names resolved per scope, calls only of top-level functions / allowed builtins /
np.<name> / math.<name>, never through a parameter or local; a positional-argument policy per numpy
function, so no positional out/dtype/where. It runs in the worker before anything is compiled
(``namespace.compile_candidate``); callers may also call ``check_source`` directly, e.g. to count LLM
rejections. Rejected code never executes. Pure: imports nothing but ``ast`` and the allowlists.
"""
from __future__ import annotations

import ast
from typing import Any, Sequence

# The allowlists and the per-function argument policy live in ``interp`` (the same data drives the
# embedded evaluator of best_potential.py, which must stay self-contained).
from potsearch.law.interp import (
    ALLOWED_BUILTINS, ALLOWED_MATH, ALLOWED_NUMPY, REFUSED_KEYWORDS, VALUE_ATTRIBUTES,
    numpy_max_positional
)

__all__ = ["check_source", "check_tree", "parse_source", "Rejected", "ALLOWED_NUMPY", "ALLOWED_MATH",
           "ALLOWED_BUILTINS", "MAX_SOURCE_CHARS"]

MAX_SOURCE_CHARS = 20_000
MAX_NODES = 5_000
MAX_DEPTH = 60
MAX_EXPONENT = 64  # |constant exponent| of ``**``
MAX_INT_DIGITS = 30  # integer literals / folded constants

_ITERATORS = frozenset({"range", "enumerate", "zip", "reversed"})

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult,
           ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift, ast.RShift)
_UNARYOPS = (ast.UAdd, ast.USub, ast.Not, ast.Invert)
# no ``is`` / ``is not``: object identity is an implementation detail the evaluator does not follow
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)

# Friendly names for the node types people (and LLMs) try most, used in rejection reasons.
_NODE_WORDS = {
    "Lambda": "lambda", "ClassDef": "class definitions", "With": "with statements",
    "AsyncWith": "with statements", "Try": "try statements", "TryStar": "try statements",
    "Global": "global statements", "Nonlocal": "nonlocal statements", "Yield": "yield",
    "YieldFrom": "yield", "Await": "await", "AsyncFunctionDef": "async functions",
    "JoinedStr": "f-strings", "FormattedValue": "f-strings", "ListComp": "comprehensions",
    "SetComp": "comprehensions", "DictComp": "comprehensions", "GeneratorExp": "generator expressions",
    "While": "while loops (use for ... in range(...))", "Raise": "raise statements",
    "Delete": "del statements", "Assert": "assert statements", "Starred": "starred arguments",
    "NamedExpr": "assignment expressions (:=)", "Match": "match statements", "Set": "set displays",
    "Dict": "dict displays", "Import": "imports other than `import numpy as np` / `import math`",
    "ImportFrom": "from-imports", "AnnAssign": "annotated assignments", "AsyncFor": "async for",
}


class Rejected(Exception):
    """The source is refused: the allowlist's reasons, or it cannot be parsed or compiled."""


def _line(node: ast.AST) -> str:
    return f"line {getattr(node, 'lineno', '?')}"


def _const_value(node: ast.AST) -> complex | float | int | bool | None:
    """Fold a purely numeric constant expression, refusing to compute anything big."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, complex)) \
            and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _const_value(node.operand)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Pow)):
        a, b = _const_value(node.left), _const_value(node.right)
        if a is None or b is None:
            return None
        try:
            if isinstance(node.op, ast.Pow):
                if abs(b) > MAX_EXPONENT:
                    raise Rejected(f"{_line(node)}: constant exponent {b!r} is larger than {MAX_EXPONENT}")
                if isinstance(a, int) and isinstance(b, int) and abs(a) > 10**6 and b > 4:
                    raise Rejected(f"{_line(node)}: constant power too large")
                v = a**b
            elif isinstance(node.op, ast.Mult):
                v = a * b
            elif isinstance(node.op, ast.Add):
                v = a + b
            else:
                v = a - b
        except (OverflowError, ZeroDivisionError, ValueError):
            return None
        if isinstance(v, int) and abs(v) >= 10**MAX_INT_DIGITS:
            raise Rejected(f"{_line(node)}: integer constant too large")
        return v
    return None


class _Checker:
    """One recursive pass over the tree (no ast.walk: checking must stay cheap); name loads and
    calls are resolved after the pass, once every binding in the module is known."""

    def __init__(self) -> None:
        self.reasons: list[str] = []
        self.functions: dict[str, ast.FunctionDef] = {}
        self.function_names: set[str] = set()     # every top-level def (known before the pass)
        self.module_names: set[str] = set()       # top-level assignments (N_PARAMS, constants)
        self.locals: dict[str, set[str]] = {}     # function -> its parameters and local names
        self.modules: set[str] = {"np", "math"}
        # (node, name, scope): scope is the enclosing function's name, None at module level
        self.loads: list[tuple[ast.Name, str, str | None]] = []
        self.called: list[tuple[ast.AST, str, str | None]] = []
        self.edges: dict[str, set[str]] = {}
        self.current: str | None = None
        self.nodes = 0

    # -- helpers ------------------------------------------------------------------------------
    def fail(self, node: ast.AST, why: str) -> None:
        msg = f"{_line(node)}: {why}"
        if msg not in self.reasons:
            self.reasons.append(msg)

    def count(self) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise Rejected(f"source too large (more than {MAX_NODES} AST nodes)")

    def name_ok(self, node: ast.AST, name: str) -> bool:
        if "__" in name:
            self.fail(node, f"dunder name {name!r} is not allowed")
            return False
        return True

    def bind(self, node: ast.AST, name: str, *, definition: bool = False) -> None:
        """A name bound in the current scope (a function's parameters and locals, or the module's
        top level). Names are resolved per scope: a binding is visible only where it is made."""
        if not self.name_ok(node, name):
            return
        if name in self.modules or name in ALLOWED_BUILTINS:
            self.fail(node, f"rebinding {name!r} is not allowed")
        elif name in self.function_names and not definition:
            self.fail(node, f"{name!r} is a function of this program: it may not be rebound or shadowed")
        if self.current is None:
            self.module_names.add(name)
        else:
            self.locals[self.current].add(name)

    def forbidden(self, node: ast.AST) -> None:
        kind = type(node).__name__
        self.fail(node, f"{_NODE_WORDS.get(kind, kind)} not allowed")

    # -- module level ---------------------------------------------------------------------------
    def module(self, tree: ast.Module) -> None:
        self.function_names = {s.name for s in tree.body if isinstance(s, ast.FunctionDef)}
        for stmt in tree.body:
            self.count()
            if isinstance(stmt, ast.Import):
                for alias in stmt.names:
                    ok = (alias.name == "numpy" and alias.asname == "np") or (
                        alias.name == "math" and alias.asname in (None, "math"))
                    if not ok:
                        self.fail(stmt, f"import of {alias.name!r}"
                                        f"{' as ' + alias.asname if alias.asname else ''} not allowed"
                                        " (only `import numpy as np` and `import math`)")
            elif isinstance(stmt, ast.FunctionDef):
                if stmt.name in self.functions:
                    self.fail(stmt, f"function {stmt.name!r} defined twice")
                self.functions[stmt.name] = stmt
                self.bind(stmt, stmt.name, definition=True)
                self.function(stmt)
                self.current = None
            elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
                self.stmt(stmt, depth=1)
            elif isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) \
                    and isinstance(stmt.value.value, str):
                self.expr(stmt.value, 1)  # docstring-like string (checked for dunders)
            elif isinstance(stmt, ast.Pass):
                pass
            else:
                self.forbidden(stmt)
        # resolve names now that every binding is known, each in its own scope: the enclosing
        # function's parameters and locals, then the module's top level, then the allowlist
        for node, name, scope in self.loads:
            if name in self.modules:
                self.fail(node, f"{name!r} may only be used as {name}.<name>")
            elif scope is not None and name in self.locals.get(scope, ()):
                pass
            elif name in self.function_names or name in ALLOWED_BUILTINS:
                self.fail(node, f"function {name!r} may only be called, not used as a value")
            elif name not in self.module_names:
                where = f"in function {scope!r}" if scope else "at module level"
                self.fail(node, f"unknown name {name!r} {where}")
        for node, name, scope in self.called:
            if scope is not None and name in self.locals.get(scope, ()):
                self.fail(node, f"call through the parameter or local {name!r} not allowed "
                                "(only the program's own functions, np.<name>, math.<name> and allowed "
                                "builtins may be called)")
            elif name not in ALLOWED_BUILTINS and name not in self.function_names:
                self.fail(node, f"call of {name!r} not allowed")
        self.no_recursion()

    def no_recursion(self) -> None:
        calls = {f: {g for g in gs if g in self.functions} for f, gs in self.edges.items()}
        state: dict[str, int] = {}

        def visit(n: str, stack: list[str]) -> None:
            state[n] = 1
            for m in sorted(calls.get(n, ())):
                if state.get(m) == 1:
                    self.fail(self.functions[m], "recursion not allowed: "
                              + " -> ".join(stack[stack.index(m):] + [m]))
                elif m not in state:
                    visit(m, stack + [m])
            state[n] = 2

        for n in sorted(calls):
            if n not in state:
                visit(n, [n])

    def function(self, fn: ast.FunctionDef) -> None:
        if fn.decorator_list:
            self.fail(fn, "decorators not allowed")
        a = fn.args
        if a.vararg or a.kwarg:
            self.fail(fn, "*args / **kwargs not allowed")
        if a.posonlyargs or a.kwonlyargs:
            self.fail(fn, "positional-only and keyword-only parameters not allowed")
        # defaults are evaluated at module level, once, when the function is defined
        self.current = None
        for d in a.defaults + [d for d in a.kw_defaults if d is not None]:
            self.expr(d, 1)
        self.current = fn.name
        self.locals[fn.name] = set()
        self.edges.setdefault(fn.name, set())
        for arg in a.posonlyargs + a.args + a.kwonlyargs:
            self.count()
            self.bind(arg, arg.arg)
            if arg.annotation is not None:
                self.annotation(arg.annotation)
        if fn.returns is not None:
            self.annotation(fn.returns)
        self.body(fn.body, depth=1)

    def annotation(self, node: ast.AST, depth: int = 0) -> None:
        # Annotations are stripped before compiling; accept plain type expressions only.
        self.count()
        if depth > 10:
            raise Rejected(f"{_line(node)}: annotation nested too deeply")
        if isinstance(node, ast.Name):
            self.name_ok(node, node.id)
        elif isinstance(node, ast.Attribute):
            self.name_ok(node, node.attr)
            self.annotation(node.value, depth + 1)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, str) and "__" in node.value:
                self.fail(node, "strings containing '__' are not allowed")
        elif isinstance(node, ast.Subscript):
            self.annotation(node.value, depth + 1)
            self.annotation(node.slice, depth + 1)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for e in node.elts:
                self.annotation(e, depth + 1)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            self.annotation(node.left, depth + 1)
            self.annotation(node.right, depth + 1)
        else:
            self.fail(node, "annotation too complex")

    # -- statements -----------------------------------------------------------------------------
    def body(self, stmts: list[ast.stmt], depth: int) -> None:
        for s in stmts:
            self.stmt(s, depth)

    def stmt(self, s: ast.stmt, depth: int) -> None:
        self.count()
        if depth > MAX_DEPTH:
            raise Rejected(f"{_line(s)}: nested too deeply")
        if isinstance(s, ast.Assign):
            for t in s.targets:
                self.target(t)
            self.expr(s.value, depth + 1)
        elif isinstance(s, ast.AnnAssign):
            self.target(s.target)
            self.annotation(s.annotation)
            if s.value is not None:
                self.expr(s.value, depth + 1)
        elif isinstance(s, ast.AugAssign):
            if not isinstance(s.op, _BINOPS):
                self.forbidden(s.op)
            self.target(s.target)
            if isinstance(s.target, ast.Name):
                self.loads.append((s.target, s.target.id, self.current))
            self.expr(s.value, depth + 1)
        elif isinstance(s, ast.Return):
            if s.value is not None:
                self.expr(s.value, depth + 1)
        elif isinstance(s, ast.If):
            self.expr(s.test, depth + 1)
            self.body(s.body, depth + 1)
            self.body(s.orelse, depth + 1)
        elif isinstance(s, ast.For):
            self.target(s.target)
            it = s.iter
            if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name)
                    and it.func.id in _ITERATORS):
                self.fail(s, "for loops must iterate over range(...), enumerate(...), zip(...)"
                             " or reversed(...)")
            self.expr(it, depth + 1)
            self.body(s.body, depth + 1)
            self.body(s.orelse, depth + 1)
        elif isinstance(s, (ast.Pass, ast.Break, ast.Continue)):
            pass
        elif isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) \
                and isinstance(s.value.value, str):
            self.expr(s.value, depth + 1)  # docstring
        elif isinstance(s, ast.FunctionDef):
            self.fail(s, "nested function definitions not allowed")
        elif isinstance(s, ast.Expr):
            self.fail(s, "expression statements (other than docstrings) not allowed")
            self.expr(s.value, depth + 1)
        else:
            self.forbidden(s)

    def target(self, t: ast.AST) -> None:
        self.count()
        if isinstance(t, ast.Name):
            self.bind(t, t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                self.target(e)
        else:
            self.fail(t, "assignment targets must be plain names")

    # -- expressions ----------------------------------------------------------------------------
    def expr(self, e: ast.AST, depth: int) -> None:
        self.count()
        if depth > MAX_DEPTH:
            raise Rejected(f"{_line(e)}: expression nested too deeply")
        d = depth + 1
        if isinstance(e, ast.Constant):
            v = e.value
            if isinstance(v, str):
                if "__" in v:
                    self.fail(e, "strings containing '__' are not allowed")
                if len(v) > 200:
                    self.fail(e, "string constant too long")
            elif isinstance(v, bool) or v is None:
                pass
            elif isinstance(v, int):
                if abs(v) >= 10**MAX_INT_DIGITS:
                    self.fail(e, "integer constant too large")
            elif isinstance(v, (float, complex)):
                pass
            else:
                self.fail(e, f"constant of type {type(v).__name__} not allowed")
        elif isinstance(e, ast.Name):
            if self.name_ok(e, e.id):
                if not isinstance(e.ctx, ast.Load):
                    self.fail(e, "assignment inside an expression not allowed")
                self.loads.append((e, e.id, self.current))
        elif isinstance(e, ast.BinOp):
            if not isinstance(e.op, _BINOPS):
                self.forbidden(e.op)
            if isinstance(e.op, ast.Pow):
                b = _const_value(e.right)
                if b is not None and abs(b) > MAX_EXPONENT:
                    self.fail(e, f"constant exponent {b!r} is larger than {MAX_EXPONENT}")
                else:
                    _const_value(e)  # folds and bounds nested constant powers
            self.expr(e.left, d)
            self.expr(e.right, d)
        elif isinstance(e, ast.UnaryOp):
            if not isinstance(e.op, _UNARYOPS):
                self.forbidden(e.op)
            self.expr(e.operand, d)
        elif isinstance(e, ast.BoolOp):
            for v in e.values:
                self.expr(v, d)
        elif isinstance(e, ast.Compare):
            for op in e.ops:
                if not isinstance(op, _CMPOPS):
                    if isinstance(op, (ast.Is, ast.IsNot)):
                        self.fail(e, "identity comparisons (is / is not) not allowed: use == / !=")
                    else:
                        self.forbidden(op)
            self.expr(e.left, d)
            for c in e.comparators:
                self.expr(c, d)
        elif isinstance(e, ast.IfExp):
            self.expr(e.test, d)
            self.expr(e.body, d)
            self.expr(e.orelse, d)
        elif isinstance(e, ast.Attribute):
            self.attribute(e, as_value=True)
        elif isinstance(e, ast.Call):
            self.call(e, d)
        elif isinstance(e, ast.Subscript):
            self.expr(e.value, d)  # x["a"], p[0], x["a"][1:3], np.sort(v)[0]
            if not isinstance(e.ctx, ast.Load):
                self.fail(e, "assigning to subscripts not allowed")
            self.expr(e.slice, d)
        elif isinstance(e, ast.Slice):
            for part in (e.lower, e.upper, e.step):
                if part is not None:
                    self.expr(part, d)
        elif isinstance(e, (ast.Tuple, ast.List)):
            if len(e.elts) > 1000:
                self.fail(e, "display too long")
            for x in e.elts:
                self.expr(x, d)
        else:
            self.forbidden(e)

    def attribute(self, e: ast.Attribute, as_value: bool = False) -> None:
        self.count()
        if "__" in e.attr:
            self.fail(e, f"dunder attribute {e.attr!r} not allowed")
            return
        if not (isinstance(e.value, ast.Name) and e.value.id in self.modules):
            self.fail(e, f"attribute access .{e.attr} not allowed (only np.<name> and math.<name>)")
            return
        allowed = ALLOWED_NUMPY if e.value.id == "np" else ALLOWED_MATH
        if e.attr not in allowed:
            self.fail(e, f"{e.value.id}.{e.attr} is not in the allowlist")
        elif as_value and e.attr not in VALUE_ATTRIBUTES:
            self.fail(e, f"{e.value.id}.{e.attr} may only be called, not used as a value")
        if not isinstance(e.ctx, ast.Load):
            self.fail(e, "assigning to attributes not allowed")

    def call(self, e: ast.Call, depth: int) -> None:
        f = e.func
        if isinstance(f, ast.Name):
            if not self.name_ok(f, f.id):
                return
            self.called.append((e, f.id, self.current))
            if self.current is not None:
                self.edges[self.current].add(f.id)
        elif isinstance(f, ast.Attribute):
            self.attribute(f)
            if isinstance(f.value, ast.Name) and f.value.id == "np" and f.attr in ALLOWED_NUMPY:
                limit = numpy_max_positional(f.attr)
                if len(e.args) > limit:
                    self.fail(e, f"np.{f.attr} takes at most {limit} positional argument"
                                 f"{'s' if limit != 1 else ''} here (no positional out/dtype/where)")
        else:
            self.fail(e, "only named functions may be called")
            self.expr(f, depth)
        if len(e.args) + len(e.keywords) > 64:
            self.fail(e, "too many arguments")
        for a in e.args:
            if isinstance(a, ast.Starred):
                self.forbidden(a)
            else:
                self.expr(a, depth)
        for k in e.keywords:
            if k.arg is None:
                self.fail(e, "**kwargs not allowed")
                continue
            self.name_ok(k, k.arg)
            if k.arg in REFUSED_KEYWORDS:
                self.fail(k, f"{k.arg}= not allowed (no in-place writes, no uninitialised output)")
            if k.arg == "dtype":
                if (isinstance(k.value, ast.Attribute) and isinstance(k.value.value, ast.Name)
                        and k.value.value.id == "np" and k.value.attr in ("float64", "int64")) \
                        or (isinstance(k.value, ast.Name) and k.value.id in ("float", "int", "bool")):
                    continue  # a known type name: nothing else to check
                self.fail(k.value, "dtype must be float, int, bool, np.float64 or np.int64")
            self.expr(k.value, depth)


def parse_source(src: str) -> ast.Module:
    try:
        return ast.parse(src, mode="exec")
    except SyntaxError as e:
        raise Rejected(f"syntax error: {e.msg} (line {e.lineno})") from None
    except (RecursionError, MemoryError):
        raise Rejected("source nested too deeply to parse") from None
    except (ValueError, TypeError) as e:
        raise Rejected(f"cannot parse: {e}") from None


def check_tree(src: Any) -> tuple[ast.Module | None, list[str]]:
    """-> (the parsed tree, the allowlist's reasons); no tree when it cannot be parsed or checking stopped."""
    if not isinstance(src, str):
        return None, [f"source must be str, not {type(src).__name__}"]
    if len(src) > MAX_SOURCE_CHARS:
        return None, [f"source too long ({len(src)} > {MAX_SOURCE_CHARS} characters)"]
    if "\x00" in src:
        return None, ["source contains NUL bytes"]
    chk = _Checker()
    try:
        tree = parse_source(src)
        chk.module(tree)
    except Rejected as e:
        return None, [str(e)]
    except RecursionError:
        return None, ["source nested too deeply"]
    return tree, chk.reasons


def check_source(src: str, *, require: Sequence[str] = ()) -> list[str]:
    """Check untrusted candidate source against the allowlist.

    Returns ``[]`` when the source may be executed, else human-readable reasons (``"line 3: ..."``).
    ``require`` lists module-level function names that must be defined (e.g. ``("potential",)``).
    Never raises for any string input.
    """
    tree, reasons = check_tree(src)
    if tree is not None:
        names = {s.name for s in tree.body if isinstance(s, ast.FunctionDef)}
        reasons += [f"no function {n!r} defined" for n in require if n not in names]
    return reasons
