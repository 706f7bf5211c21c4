"""Run untrusted candidate potentials (e.g. written by an LLM) safely.

Why: earlier tools ran candidate code with ``exec`` and a blacklist (trivially bypassed) and used
thread timeouts that cannot stop a runaway candidate (design.md §3). Here untrusted source passes
four independent layers, each of which is meant to hold on its own:

1. ``check_source``: an AST *allowlist* (numpy/math calls from explicit lists, arithmetic, ``if``,
   ``for`` over ``range``, functions; no attribute access except ``np.<allowed>``/``math.<allowed>``,
   no dunder names or strings, no lambda/class/try/with/while/f-strings/comprehensions/starred
   arguments, bounded size, depth and constant exponents; names resolved per scope, calls only of
   top-level functions / allowed builtins / np.<name> / math.<name>, never through a parameter or
   local; a positional-argument policy per numpy function, so no positional out/dtype/where).
   It runs in the worker before anything
   is compiled (callers may also call it directly, e.g. to count LLM rejections); rejected code
   never executes.
2. A restricted namespace: only ``np``/``math`` *proxies* holding the allowlisted functions and a
   small dict of safe builtins (no ``__import__``, ``open``, ``getattr``, ``eval``, ``type``, ...).
3. A separate, persistent worker process (``subprocess.Popen`` of ``potsearch.evolve._worker``,
   never ``fork`` of the caller, never a Ray actor) with rlimits (CPU seconds per call, address space,
   no new processes, no file writes, no new file descriptors, no core files), a minimal environment
   (no API keys), an empty read-only working directory, privileges dropped to ``nobody`` when run as
   root, ``PR_SET_NO_NEW_PRIVS`` and a seccomp filter denying process creation, exec, signals to other
   processes, file creation/modification and sockets.
4. The parent enforces a wall-clock timeout and SIGKILLs the worker's whole process group; a dead
   worker is replaced, so whatever a candidate does, the pool keeps serving.

Results travel back as length-prefixed JSON only (never pickle) and are validated again in the
parent (plain types, finite numbers, bounded size). See docs/sandbox.md.

Contract (used by evolve/scoring)::

    from potsearch.evolve.sandbox import check_source, SandboxPool, SandboxResult
    check_source(src) -> list[str]          # [] = OK
    with SandboxPool(workers=2, cpu_seconds=10, memory_mb=1024, wall_timeout=20) as pool:
        res = pool.run(src, task="potsearch.evolve.scoring:score_program", payload={...})
        results = pool.map([(src, payload), ...], task=...)
"""
from __future__ import annotations

import ast
import dataclasses
import json
import math
import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from typing import Any, Iterable, Sequence

import numpy as np

__all__ = [
    "check_source",
    "SandboxPool",
    "SandboxResult",
    "SandboxError",
    "InvalidResult",
    "potential_values",
    "ALLOWED_NUMPY",
    "ALLOWED_MATH",
    "ALLOWED_BUILTINS",
]

# --------------------------------------------------------------------------------------------
# Layer 1: the AST allowlist
# --------------------------------------------------------------------------------------------

MAX_SOURCE_CHARS = 20_000
MAX_NODES = 5_000
MAX_DEPTH = 60
MAX_EXPONENT = 64  # |constant exponent| of ``**``
MAX_INT_DIGITS = 30  # integer literals / folded constants

# The allowlists and the per-function argument policy live in ``interp`` (the same data drives the
# embedded evaluator of best_potential.py, which must stay self-contained).
from .interp import (  # noqa: E402
    ALLOWED_BUILTINS, ALLOWED_MATH, ALLOWED_NUMPY, REFUSED_KEYWORDS, VALUE_ATTRIBUTES, numpy_max_positional)

_MODULE_ALIASES = {"np": "numpy", "math": "math"}
_ITERATORS = frozenset({"range", "enumerate", "zip", "reversed"})

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.MatMult,
           ast.BitAnd, ast.BitOr, ast.BitXor, ast.LShift, ast.RShift)
_UNARYOPS = (ast.UAdd, ast.USub, ast.Not, ast.Invert)
_CMPOPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Is, ast.IsNot, ast.In, ast.NotIn)

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


class _Reject(Exception):
    pass


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
                    raise _Reject(f"{_line(node)}: constant exponent {b!r} is larger than {MAX_EXPONENT}")
                if isinstance(a, int) and isinstance(b, int) and abs(a) > 10**6 and b > 4:
                    raise _Reject(f"{_line(node)}: constant power too large")
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
            raise _Reject(f"{_line(node)}: integer constant too large")
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
            raise _Reject(f"source too large (more than {MAX_NODES} AST nodes)")

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
            raise _Reject(f"{_line(node)}: annotation nested too deeply")
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
            raise _Reject(f"{_line(s)}: nested too deeply")
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
            raise _Reject(f"{_line(e)}: expression nested too deeply")
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


def _parse(src: str) -> ast.Module:
    try:
        return ast.parse(src, mode="exec")
    except SyntaxError as e:
        raise _Reject(f"syntax error: {e.msg} (line {e.lineno})") from None
    except (RecursionError, MemoryError):
        raise _Reject("source nested too deeply to parse") from None
    except (ValueError, TypeError) as e:
        raise _Reject(f"cannot parse: {e}") from None


def _check(src: Any) -> tuple[ast.Module | None, list[str]]:
    if not isinstance(src, str):
        return None, [f"source must be str, not {type(src).__name__}"]
    if len(src) > MAX_SOURCE_CHARS:
        return None, [f"source too long ({len(src)} > {MAX_SOURCE_CHARS} characters)"]
    if "\x00" in src:
        return None, ["source contains NUL bytes"]
    chk = _Checker()
    try:
        tree = _parse(src)
        chk.module(tree)
    except _Reject as e:
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
    tree, reasons = _check(src)
    if tree is not None:
        names = {s.name for s in tree.body if isinstance(s, ast.FunctionDef)}
        reasons += [f"no function {n!r} defined" for n in require if n not in names]
    return reasons


class _StripForExec(ast.NodeTransformer):
    """Remove what the restricted namespace cannot execute: the allowed imports (np/math are
    provided; any other import is kept and fails for want of ``__import__``) and annotations
    (they would be evaluated at definition time)."""

    def visit_Import(self, node: ast.Import) -> ast.AST:
        if all((a.name, a.asname) in (("numpy", "np"), ("math", None), ("math", "math"))
               for a in node.names):
            return ast.copy_location(ast.Pass(), node)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.returns = None
        for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs:
            a.annotation = None
        self.generic_visit(node)
        return node


def compile_candidate(src: str, *, checked: bool = True):
    """Return a code object for ``src``; raises ``_Rejected``. With ``checked`` (the default) the
    allowlist is enforced first; ``checked=False`` is for the hostile test suite only."""
    try:
        if checked:
            tree, reasons = _check(src)
            if reasons or tree is None:
                raise _Rejected("; ".join(reasons))
        else:
            tree = _parse(src)
        tree = _StripForExec().visit(tree)
        ast.fix_missing_locations(tree)
        return compile(tree, "<candidate>", "exec", dont_inherit=True)
    except _Reject as e:
        raise _Rejected(str(e)) from None
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as e:
        raise _Rejected(f"cannot compile: {type(e).__name__}: {e}") from None


class _Rejected(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Layer 2: the restricted namespace (built inside the worker)
# --------------------------------------------------------------------------------------------


_NS_PARTS: tuple[dict, dict, dict] | None = None


def make_namespace() -> dict[str, Any]:
    """A fresh namespace for one candidate: ``np``/``math`` are proxies holding only the allowlisted
    names (a candidate that slipped through cannot reach ``np.load`` or ``np.lib``, and cannot
    monkey-patch the real modules or the builtins for later candidates: everything is a copy)."""
    global _NS_PARTS
    import builtins
    import types

    if _NS_PARTS is None:
        _NS_PARTS = ({n: getattr(builtins, n) for n in sorted(ALLOWED_BUILTINS)},
                     {n: getattr(np, n) for n in sorted(ALLOWED_NUMPY) if hasattr(np, n)},
                     {n: getattr(math, n) for n in sorted(ALLOWED_MATH) if hasattr(math, n)})
    b, npd, md = _NS_PARTS
    return {"__builtins__": dict(b), "__name__": "candidate",
            "np": types.SimpleNamespace(**npd), "math": types.SimpleNamespace(**md)}


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


class InvalidResult(ValueError):
    """Raise from a task function when the candidate's output is unusable (wrong type, shape,
    non-finite values); the result's error becomes ``"invalid result: <message>"``."""


class SandboxError(RuntimeError):
    """The pool itself failed (e.g. a worker cannot start). Never raised for a bad candidate."""


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    ok: bool
    value: dict | None
    error: str | None
    seconds: float

    @property
    def category(self) -> str:
        """``ok``, ``rejected``, ``timeout``, ``killed``, ``exception`` or ``invalid result``."""
        if self.ok:
            return "ok"
        head = (self.error or "").split(":", 1)[0]
        return "timeout" if head.startswith("timeout") else head


CATEGORIES = ("ok", "rejected", "timeout", "killed", "exception", "invalid result")


def potential_values(v: Any, n: int) -> np.ndarray:
    """Validate what ``potential(x, p)`` returned: a real numeric scalar or array broadcastable to
    ``(n,)``, all finite. Returns a float64 array of shape ``(n,)``; raises :class:`InvalidResult`."""
    if isinstance(v, (bool, np.bool_)) or v is None:
        raise InvalidResult(f"potential returned {type(v).__name__}, expected numbers")
    if isinstance(v, (int, float, np.integer, np.floating)):
        arr = np.full(n, float(v))
    elif isinstance(v, np.ndarray):
        if v.dtype.kind not in "iuf":
            raise InvalidResult(f"potential returned an array of dtype {v.dtype}, expected floats")
        if v.ndim == 0:
            arr = np.full(n, float(v))
        elif v.shape != (n,):
            raise InvalidResult(f"potential returned shape {v.shape}, expected ({n},)")
        else:
            arr = v.astype(np.float64, copy=False)
    else:
        raise InvalidResult(f"potential returned {type(v).__name__}, expected a numpy array")
    bad = ~np.isfinite(arr)
    if bad.any():
        kind = "NaN" if np.isnan(arr).any() else "inf"
        raise InvalidResult(f"{kind} in {int(bad.sum())} of {n} values")
    return arr


def _call_potential(namespace: dict, payload: dict) -> dict:
    """Trusted example/test task: evaluate ``potential(x, p)`` on the payload's feature table.

    payload: ``{"x": {name: 1-D array}, "p": 1-D array}`` -> ``{"values": [...], "sum": float}``.
    """
    fn = namespace.get("potential")
    if not callable(fn):
        raise InvalidResult("no function 'potential' defined")
    x = payload["x"]
    n = len(next(iter(x.values())))
    vals = potential_values(fn(dict(x), np.array(payload["p"], dtype=np.float64)), n)
    return {"values": vals, "sum": float(vals.sum())}


def _call_terms(namespace: dict, payload: dict) -> dict:
    """Trusted task: ``potential_terms(x, p)`` (a list of additive terms, see potsearch.formula) on
    the payload's feature table -> ``{"terms": [[...], ...]}``, each term broadcast to ``(n,)``."""
    fn = namespace.get("potential_terms")
    if not callable(fn):
        raise InvalidResult("no function 'potential_terms' defined")
    x = payload["x"]
    n = len(next(iter(x.values())))
    parts = fn(dict(x), np.array(payload["p"], dtype=np.float64))
    if not isinstance(parts, (list, tuple)) or len(parts) > 1000:
        raise InvalidResult("potential_terms must return a list of terms")
    return {"terms": [potential_values(v, n).tolist() for v in parts]}


def _return_raw(namespace: dict, payload: dict) -> dict:
    """Trusted test task: pass on whatever ``potential()`` returns (to test result validation)."""
    return {"value": namespace["potential"](payload.get("x"), payload.get("p"))}


def _noop(namespace: dict, payload: dict) -> dict:
    """Trusted test task for measuring per-call overhead."""
    return {"ok": 1}


# --------------------------------------------------------------------------------------------
# Wire format: 8-byte length + body. Parent -> worker: pickle (trusted). Worker -> parent: JSON.
# --------------------------------------------------------------------------------------------

_HDR = struct.Struct("!Q")
MAX_RESULT_BYTES = 32 * 1024 * 1024


from ._worker import _read_exact, _write_frame  # noqa: E402  (one framing for both sides)


def _read_frame(fd: int) -> bytes:
    (n,) = _HDR.unpack(_read_exact(fd, _HDR.size))
    return _read_exact(fd, n)


def _check_finite(v: Any, path: str = "value") -> None:
    if isinstance(v, float):
        if math.isnan(v):
            raise InvalidResult(f"NaN at {path}")
        if math.isinf(v):
            raise InvalidResult(f"inf at {path}")
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_finite(x, f"{path}[{k!r}]")
    elif isinstance(v, list):
        if len(v) > 16 and all(type(x) is float for x in v):  # fast path: a list of numbers
            bad = np.flatnonzero(~np.isfinite(np.asarray(v, dtype=float)))
            if len(bad):
                _check_finite(v[int(bad[0])], f"{path}[{int(bad[0])}]")
            return
        for i, x in enumerate(v):
            _check_finite(x, f"{path}[{i}]")


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


# --------------------------------------------------------------------------------------------
# Layer 3/4: the pool of worker processes
# --------------------------------------------------------------------------------------------


def _task_module(task: str) -> str:
    mod, sep, fn = task.partition(":")
    if not sep or not mod or not fn or not all(p.isidentifier() for p in mod.split(".")) \
            or not fn.isidentifier():
        raise ValueError(f"task must be 'package.module:function', got {task!r}")
    return mod


class _Worker:
    __slots__ = ("proc", "to_w", "from_w", "payloads", "ready", "calls", "cpu_used", "info",
                 "modules")

    def __init__(self, proc: subprocess.Popen, to_w: int, from_w: int, modules: tuple[str, ...]):
        self.proc = proc
        self.to_w = to_w
        self.from_w = from_w
        self.payloads: set[int] = set()
        self.ready = False
        self.calls = 0
        self.cpu_used = 0.0
        self.info: dict = {}
        self.modules = modules


@dataclasses.dataclass
class _Job:
    index: int
    src: str
    payload: tuple
    timeout: float
    checked: bool
    t0: float = 0.0
    deadline: float = 0.0
    seq: int = 0


class SandboxPool:
    """A pool of persistent, locked-down worker processes that run untrusted candidates.

    ``workers``: processes; ``cpu_seconds``: CPU limit per call (kernel RLIMIT_CPU);
    ``memory_mb``: address space a call may add on top of the worker's baseline after its trusted
    imports (RLIMIT_AS = baseline + memory_mb); ``wall_timeout``: default wall-clock limit per call,
    enforced by the parent with SIGKILL of the worker's process group. ``tasks``: task modules to
    import in every worker before the limits are applied (tasks first seen in ``run``/``map`` are
    added and the workers restarted once). Thread-safe (calls are serialised); use one pool per
    process. Payloads are sent once per worker and cached by identity: treat a payload dict as
    immutable once passed (pass a new dict for new data).
    """

    def __init__(self, workers: int = 2, cpu_seconds: float = 10, memory_mb: int = 1024,
                 wall_timeout: float = 20, *, tasks: Iterable[str] = (),
                 max_calls_per_worker: int = 20_000, startup_timeout: float = 120.0,
                 drop_privileges: bool = True, seccomp: bool = True) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.n_workers = int(workers)
        self.cpu_seconds = max(1, int(math.ceil(cpu_seconds)))
        self.memory_mb = int(memory_mb)
        self.wall_timeout = float(wall_timeout)
        self.max_calls_per_worker = int(max_calls_per_worker)
        self.startup_timeout = float(startup_timeout)
        self.drop_privileges = drop_privileges
        self.seccomp = seccomp
        self._modules: tuple[str, ...] = tuple(dict.fromkeys(
            ["potsearch.evolve.sandbox"] + [_task_module(t) if ":" in t else t for t in tasks]))
        self._lock = threading.RLock()
        self._parts: OrderedDict[int, tuple[Any, int, bytes]] = OrderedDict()  # id -> (obj, pid, pickle)
        self._part_blobs: dict[int, bytes] = {}
        self._part_seq = 0
        self._rundir = tempfile.mkdtemp(prefix="potsearch-sandbox-")
        os.chmod(self._rundir, 0o555)  # empty and read-only for the (unprivileged) worker
        self._workers: list[_Worker | None] = [None] * self.n_workers
        self._closed = False
        self._owner = os.getpid()  # a forked child must neither use nor kill the parent's workers
        self._seq = 0
        self.stats = {"calls": 0, "restarts": 0, "timeouts": 0, "killed": 0, "payload_bytes": 0}
        for i in range(self.n_workers):
            self._workers[i] = self._spawn()

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def close(self) -> None:
        if os.getpid() != getattr(self, "_owner", None):
            return  # a forked copy of the pool: the workers belong to the parent process
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for i, w in enumerate(self._workers):
                if w is not None:
                    self._kill(w)
                    self._workers[i] = None
            try:
                os.chmod(self._rundir, 0o700)
                shutil.rmtree(self._rundir, ignore_errors=True)
            except OSError:
                pass

    def _spawn(self) -> _Worker:
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        config = {
            "in_fd": to_r, "out_fd": from_w, "modules": list(self._modules),
            "cpu_seconds": self.cpu_seconds, "memory_mb": self.memory_mb,
            "cpu_lifetime": self.cpu_seconds * 50 + 60,
            "drop_privileges": self.drop_privileges, "seccomp": self.seccomp,
        }
        env = {
            "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1", "PYTHONHASHSEED": "0",
            "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1",
            # the parent's import path (so the worker finds the same trusted task modules);
            # nothing else from the parent's environment (API keys stay out).
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)),
        }
        try:
            proc = subprocess.Popen(
                [sys.executable, "-s", "-B", "-m", "potsearch.evolve._worker", json.dumps(config)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(to_r, from_w), close_fds=True, start_new_session=True,
                cwd=self._rundir, env=env)
        finally:
            os.close(to_r)
            os.close(from_w)
        return _Worker(proc, to_w, from_r, self._modules)

    def _kill(self, w: _Worker) -> None:
        for fd in (w.to_w, w.from_w):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(w.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            w.proc.kill()
        except OSError:
            pass
        try:
            w.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable only if in D state
            pass

    def _replace(self, slot: int) -> None:
        w = self._workers[slot]
        if w is not None:
            self._kill(w)
        self.stats["restarts"] += 1
        self._workers[slot] = self._spawn()

    def _ensure_ready(self, slot: int) -> _Worker:
        for attempt in range(2):
            w = self._workers[slot]
            if w is None or w.modules != self._modules:
                self._replace(slot)
                w = self._workers[slot]
            assert w is not None
            if w.ready:
                return w
            r, _, _ = select.select([w.from_w], [], [], self.startup_timeout)
            if not r:
                self._kill(w)
                self._workers[slot] = None
                raise SandboxError(f"sandbox worker did not start within {self.startup_timeout:g}s")
            try:
                msg = json.loads(_read_frame(w.from_w))
                if not isinstance(msg, dict):
                    raise ValueError("not a dict")
            except (EOFError, OSError, ValueError) as e:
                rc = w.proc.poll()
                msg = {"startup_error": f"worker died during startup (exit {rc}): {e!r}"}
            if "startup_error" in msg:
                self._kill(w)
                self._workers[slot] = None
                if attempt == 1:
                    raise SandboxError(f"sandbox worker failed to start: {msg['startup_error']}")
                continue
            w.ready = True
            w.info = msg
            return w
        raise SandboxError("unreachable")  # pragma: no cover

    def worker_info(self) -> list[dict]:
        """What each worker reported at startup (pid, uid, limits, seccomp status)."""
        with self._lock:
            return [self._ensure_ready(i).info for i in range(self.n_workers)]

    # -- payloads -----------------------------------------------------------------------------------
    # A payload dict's big values (arrays, long lists, dicts of those) are pickled and sent once per
    # worker, then cached there by the *identity* of the object in the parent; small values travel
    # inline with each call. So ``dict(base, seed=s, source=src)`` per call costs only the small
    # values. The parent keeps a strong reference to every cached object, so its id cannot be
    # reused while cached. Do not mutate a value after passing it: pass a new object instead.

    def _part_id(self, obj: Any) -> int:
        key = id(obj)
        hit = self._parts.get(key)
        if hit is not None:
            self._parts.move_to_end(key)
            return hit[1]
        self._part_seq += 1
        blob = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        self._parts[key] = (obj, self._part_seq, blob)
        self._part_blobs[self._part_seq] = blob
        return self._part_seq

    def _encode_payload(self, payload: Any) -> tuple:
        """-> (whole_id | None, ((key, part_id), ...), inline pickle | None)"""
        if payload is None:
            payload = _EMPTY
        if type(payload) is not dict:
            return (self._part_id(payload), (), None)
        refs, inline = [], {}
        for k, v in payload.items():
            if isinstance(v, (dict, list, tuple, np.ndarray)) and _rough_size(v) >= CACHE_MIN_BYTES:
                refs.append((k, self._part_id(v)))
            else:
                inline[k] = v
        blob = pickle.dumps(inline, protocol=pickle.HIGHEST_PROTOCOL) if inline else None
        return (None, tuple(refs), blob)

    def _trim_parts(self) -> None:
        while len(self._parts) > MAX_CACHED_PARTS:
            _, (_, pid, _) = self._parts.popitem(last=False)
            self._part_blobs.pop(pid, None)
            for w in self._workers:
                if w is not None and pid in w.payloads:
                    try:
                        self._send(w, ("drop", pid, None))
                    except OSError:
                        pass
                    w.payloads.discard(pid)

    @staticmethod
    def _send(w: _Worker, msg: tuple) -> None:
        _write_frame(w.to_w, pickle.dumps(msg, protocol=pickle.HIGHEST_PROTOCOL))

    # -- running -------------------------------------------------------------------------------------
    def run(self, src: str, task: str = "potsearch.evolve.sandbox:_call_potential",
            payload: Any = None, timeout: float | None = None, *,
            _bypass_ast_check: bool = False) -> SandboxResult:
        """Run ``task(namespace, payload)`` in a worker on the candidate ``src``."""
        return self.map([(src, payload)], task=task, timeout=timeout,
                        _bypass_ast_check=_bypass_ast_check)[0]

    def map(self, jobs: Sequence[tuple[str, Any]], task: str = "potsearch.evolve.sandbox:_call_potential",
            timeout: float | None = None, *, _bypass_ast_check: bool = False) -> list[SandboxResult]:
        """Run many ``(src, payload)`` jobs in parallel over the workers; results keep job order.

        ``_bypass_ast_check`` skips layer 1 (parent and worker) -- for the hostile test suite only.
        """
        mod = _task_module(task)
        wall = self.wall_timeout if timeout is None else float(timeout)
        with self._lock:
            if self._closed:
                raise SandboxError("pool is closed")
            if os.getpid() != self._owner:
                raise SandboxError("a SandboxPool cannot be used from a forked child process")
            if mod not in self._modules:
                self._modules = self._modules + (mod,)  # workers restart with it imported
            results: list[SandboxResult | None] = [None] * len(jobs)
            pending: list[_Job] = []
            for i, (src, payload) in enumerate(jobs):
                # The allowlist itself runs in the worker (in parallel, before anything executes);
                # only what cannot even be sent is refused here.
                if not isinstance(src, str) or len(src) > MAX_SOURCE_CHARS:
                    why = check_source(src) if isinstance(src, str) else ["source must be str"]
                    results[i] = SandboxResult(False, None, "rejected: " + "; ".join(why), 0.0)
                    continue
                pending.append(_Job(i, src, self._encode_payload(payload), wall,
                                    not _bypass_ast_check))
            try:
                self._schedule(pending, task, results)
            finally:
                self._trim_parts()
            self.stats["calls"] += len(jobs)
            return [r for r in results if r is not None]

    def _dispatch(self, slot: int, job: _Job, task: str) -> bool:
        w = self._ensure_ready(slot)
        if w.calls >= self.max_calls_per_worker or \
                w.cpu_used + self.cpu_seconds + 1 >= w.info.get("cpu_hard", 0):
            self._replace(slot)
            w = self._ensure_ready(slot)
        try:
            whole, refs, _ = job.payload
            for pid in ([whole] if whole is not None else [p for _, p in refs]):
                if pid not in w.payloads:
                    self._send(w, ("payload", pid, self._part_blobs[pid]))
                    w.payloads.add(pid)
                    self.stats["payload_bytes"] += len(self._part_blobs[pid])
            self._seq += 1
            job.seq = self._seq
            self._send(w, ("call", job.seq, job.src, task, job.payload, job.checked))
        except (BrokenPipeError, OSError):
            self._replace(slot)
            return False
        w.calls += 1
        job.t0 = time.perf_counter()
        job.deadline = job.t0 + job.timeout
        return True

    def _schedule(self, jobs: list[_Job], task: str, results: list) -> None:
        queue = list(reversed(jobs))
        busy: dict[int, _Job] = {}  # slot -> job
        retries: dict[int, int] = {}
        while queue or busy:
            for slot in range(self.n_workers):
                if slot not in busy and queue:
                    job = queue.pop()
                    if self._dispatch(slot, job, task):
                        busy[slot] = job
                    else:
                        retries[job.index] = retries.get(job.index, 0) + 1
                        if retries[job.index] > 3:
                            results[job.index] = SandboxResult(False, None,
                                                               "killed: worker unavailable", 0.0)
                        else:
                            queue.append(job)
            if not busy:
                continue
            now = time.perf_counter()
            wait = max(0.0, min(j.deadline for j in busy.values()) - now)
            fds = {self._workers[s].from_w: s for s in busy}  # type: ignore[union-attr]
            r, _, _ = select.select(list(fds), [], [], wait)
            done = [fds[fd] for fd in r]
            now = time.perf_counter()
            for slot in list(busy):
                job = busy[slot]
                if slot in done:
                    results[job.index] = self._collect(slot, job)
                    del busy[slot]
                elif now >= job.deadline:
                    w = self._workers[slot]
                    assert w is not None
                    self._kill(w)
                    self._workers[slot] = None
                    self.stats["timeouts"] += 1
                    self._replace(slot)
                    results[job.index] = SandboxResult(
                        False, None, f"timeout after {job.timeout:g}s (worker killed)", now - job.t0)
                    del busy[slot]

    def _collect(self, slot: int, job: _Job) -> SandboxResult:
        w = self._workers[slot]
        assert w is not None
        try:
            grace = max(job.deadline, time.perf_counter() + 2.0)
            (n,) = _HDR.unpack(self._read_body(w, _HDR.size, grace))
            if n > MAX_RESULT_BYTES:
                raise InvalidResult(f"result too large ({n} bytes)")
            # the body follows at once; bound the wait anyway
            body = self._read_body(w, n, grace)
            msg = json.loads(body)
            if not isinstance(msg, dict) or "ok" not in msg:
                raise InvalidResult("malformed reply")
            if msg.get("seq") != job.seq:
                raise InvalidResult("reply out of sequence")
        except EOFError:
            return self._dead(slot, job)
        except (InvalidResult, ValueError, RecursionError, OSError) as e:
            self._replace(slot)
            self.stats["killed"] += 1
            text = str(e) if isinstance(e, InvalidResult) else f"malformed reply ({type(e).__name__})"
            return SandboxResult(False, None, f"invalid result: {text}", time.perf_counter() - job.t0)
        seconds = time.perf_counter() - job.t0
        cpu = msg.get("cpu")
        w.cpu_used = float(cpu) if type(cpu) in (int, float) else 1e9  # unknown: recycle next time
        if msg.get("recycle"):
            self._replace(slot)
        if msg["ok"] is True:
            value = msg.get("value")
            try:
                if value is not None and not isinstance(value, dict):
                    raise InvalidResult(f"task returned {type(value).__name__}, expected dict")
                _check_finite(value)
            except InvalidResult as e:
                return SandboxResult(False, None, f"invalid result: {e}", seconds)
            except RecursionError:
                return SandboxResult(False, None, "invalid result: nested too deeply", seconds)
            return SandboxResult(True, value, None, seconds)
        err = msg.get("error")
        if not isinstance(err, str) or err.split(":", 1)[0] not in CATEGORIES:
            err = "invalid result: malformed error"
        return SandboxResult(False, None, err[:2000], seconds)

    def _read_body(self, w: _Worker, n: int, deadline: float) -> bytes:
        chunks, got = [], 0
        while got < n:
            r, _, _ = select.select([w.from_w], [], [], max(0.0, deadline - time.perf_counter()))
            if not r:
                raise InvalidResult("reply truncated (timeout)")
            b = os.read(w.from_w, min(n - got, 1 << 20))
            if not b:
                raise EOFError
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def _dead(self, slot: int, job: _Job) -> SandboxResult:
        w = self._workers[slot]
        assert w is not None
        try:
            rc = w.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            rc = None
        self._replace(slot)
        self.stats["killed"] += 1
        seconds = time.perf_counter() - job.t0
        if rc is None:
            why = "worker closed its pipe"
        elif rc < 0:
            sig = -rc
            why = {signal.SIGXCPU: "cpu limit", signal.SIGXFSZ: "file size limit",
                   signal.SIGSYS: "forbidden system call"}.get(sig, f"signal {_signal_name(sig)}")
        else:
            why = f"worker exited with code {rc}"
        return SandboxResult(False, None, f"killed: {why}", seconds)


_EMPTY: dict = {}
CACHE_MIN_BYTES = 16 * 1024  # payload values at least this big (roughly) are cached in the workers
MAX_CACHED_PARTS = 64


def _rough_size(v: Any, depth: int = 2) -> int:
    """A cheap size estimate (no pickling): enough to tell a feature table from a seed."""
    if isinstance(v, np.ndarray):
        return int(v.nbytes)
    if isinstance(v, (str, bytes)):
        return len(v)
    if isinstance(v, (list, tuple)):
        if depth and v:
            return len(v) * max(8, _rough_size(v[0], depth - 1))
        return 8 * len(v)
    if isinstance(v, dict):
        if depth:
            return sum(_rough_size(x, depth - 1) for _, x in zip(range(1000), v.values()))
        return 8 * len(v)
    return 8
