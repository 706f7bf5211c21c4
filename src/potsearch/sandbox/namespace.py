"""Layer 2 of the sandbox: what a candidate sees.

``program_namespace`` is the search's path: a source the allowlist (``allowlist.check_tree``) accepts is
evaluated by the interpreter of ``potsearch.law.interp`` (the same code best_potential.py embeds), so
the sandbox and the shipped file compute the same function, each call from a fresh start; it is never
compiled or executed as Python. ``compile_candidate``/``make_namespace`` (compile and exec in a restricted
namespace: ``np``/``math`` proxies holding only the allowlisted functions and a small dict of safe
builtins, no ``__import__``, ``open``, ``getattr``, ``eval``, ``type``, ...) remain for the hostile test
suite, which runs attacks with the allowlist bypassed to test the layers below it. Used inside the
worker process."""
from __future__ import annotations

import ast
import math
from typing import Any

import numpy as np

from potsearch.law.interp import Program, ProgramRefused
from potsearch.sandbox.allowlist import (
    ALLOWED_BUILTINS, ALLOWED_MATH, ALLOWED_NUMPY, Rejected, check_tree, parse_source
)

__all__ = ["compile_candidate", "make_namespace", "program_namespace", "Rejected"]


class _Bound:
    """A program's function as a callable: each call is a fresh evaluation by the interpreter."""

    __slots__ = ("program", "name")

    def __init__(self, program: Program, name: str) -> None:
        self.program, self.name = program, name

    def __call__(self, *args):
        return self.program.call(self.name, *args)


def checked_program(src: str) -> Program:
    """The allowlist, then the interpreter's own checks; raises :class:`Rejected`."""
    tree, reasons = check_tree(src)
    if reasons or tree is None:
        raise Rejected("; ".join(reasons))
    try:
        return Program(src)
    except ProgramRefused as e:
        raise Rejected(f"refused by the evaluator: {e}") from None


def program_namespace(program: Program) -> dict[str, Any]:
    """What a task sees of a checked program: its functions (each call evaluated afresh by the
    interpreter) and ``N_PARAMS`` (from a fresh run of the module's top level)."""
    ns: dict[str, Any] = {name: _Bound(program, name) for name in program.functions}
    ns["N_PARAMS"] = program.constant("N_PARAMS", 0)
    return ns


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
    """Return a code object for ``src``; raises :class:`Rejected`. With ``checked`` (the default) the
    allowlist is enforced first; ``checked=False`` is for the hostile test suite only."""
    try:
        if checked:
            tree, reasons = check_tree(src)
            if reasons or tree is None:
                raise Rejected("; ".join(reasons))
        else:
            tree = parse_source(src)
        tree = _StripForExec().visit(tree)
        ast.fix_missing_locations(tree)
        return compile(tree, "<candidate>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError) as e:
        raise Rejected(f"cannot compile: {type(e).__name__}: {e}") from None


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
