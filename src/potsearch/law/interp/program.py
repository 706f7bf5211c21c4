"""A candidate program kept as text and evaluated node by node (:class:`Program`): the module's top
level and its functions, and a call of one of them. Embedded in best_potential.py
(``potsearch.law.interp``).
"""
# >>> embed interp
import ast as _ast
import builtins as _builtins
import math as _math

import numpy as _np
# <<< embed interp

from potsearch.law.interp.compiler import Compiler, docstring_of, no_op
from potsearch.law.interp.policy import (
    MAX_ARRAY, MAX_DEPTH, MAX_FRAMES, MAX_SECONDS, MAX_STEPS, MAX_WORK, TYPE_NAMES, ProgramRefused, CallBudget,
    Isolated, read_only
)
from potsearch.law.interp.pybuiltins import BUILTIN_NAMES

# >>> embed interp
class _Function:
    __slots__ = ("name", "params", "body", "frames", "line")


class Program(Compiler):
    """A candidate program kept as text and evaluated node by node.

    ``Program(source).call("potential", x, p)`` evaluates the program's ``potential`` on a feature table
    ``x`` (a dict of arrays) and parameters ``p``. This class is the one semantics of candidate programs:
    the sandbox's worker evaluates every model-written candidate with it during the search, and
    best_potential.py embeds this very code, so both compute the same values, or refuse alike.

    Each call is a pure function of its arguments: it runs the module's top level afresh (its constants
    and each function's default values), gets read-only views of the arrays it is given, and keeps
    nothing afterwards. Bounded per call: steps, seconds, the size of one array, the elements of arrays
    and lists it makes, integer size, call depth and nesting (the ``MAX_*`` values of ``policy``). Anything
    outside the evaluated subset, or past a bound, raises :class:`ProgramRefused`; the program's own
    errors (ZeroDivisionError, ValueError, ...) are raised as Python raises them."""

    def __init__(self, source, max_depth=MAX_DEPTH, max_steps=MAX_STEPS, max_seconds=MAX_SECONDS,
                 max_array=MAX_ARRAY, max_work=MAX_WORK):
        if not isinstance(source, str) or len(source) > 100_000:
            raise ProgramRefused("program source must be a string of at most 100,000 characters")
        try:
            tree = _ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            raise ProgramRefused(f"cannot parse the program: {type(e).__name__}") from None
        self.max_depth, self.max_steps, self.max_seconds = int(max_depth), int(max_steps), float(max_seconds)
        self.max_array, self.max_work = int(max_array), int(max_work)
        self.functions = {}
        self.module_names = set()
        self._function_names = {s.name for s in tree.body if isinstance(s, _ast.FunctionDef)}
        for s in tree.body:
            for t in (s.targets if isinstance(s, _ast.Assign) else [s.target] if isinstance(s, _ast.AnnAssign) else []):
                self.module_names.update(self._target_names(t))
        self._scope = None  # the local names of the function being compiled (None: module level)
        self._loops = 0
        self._frames = 0
        with Isolated():
            self._module = [self._module_stmt(s) for s in tree.body]

    # ------------------------------------------------------------------ calls
    def call(self, name, *args):
        """Call the program's function ``name`` with positional arguments (arrays are passed read-only)."""
        c = CallBudget(self)
        with Isolated():
            self._run_module(c)
            return self._call(c, name, [read_only(a) for a in args], {})

    def constant(self, name, default=None):
        """A module-level value (``N_PARAMS``), from a fresh run of the module's top level."""
        c = CallBudget(self)
        with Isolated():
            self._run_module(c)
        return c.globals.get(name, default)

    def _run_module(self, c):
        for run in self._module:
            run(c)

    def _call(self, c, name, args, kwargs):
        f = self.functions.get(name)
        if f is None or name not in c.defaults:
            raise NameError(f"name {name!r} is not defined")
        params = f.params
        if len(args) > len(params):
            raise TypeError(f"{name}() takes {len(params)} positional arguments but {len(args)} were given")
        env = dict(zip(params, args))
        for k, v in kwargs.items():
            if k not in params:
                raise TypeError(f"{name}() got an unexpected keyword argument {k!r}")
            if k in env:
                raise TypeError(f"{name}() got multiple values for argument {k!r}")
            env[k] = v
        defaults = c.defaults[name]
        first = len(params) - len(defaults)
        for i, n in enumerate(params):
            if n not in env:
                if i < first:
                    raise TypeError(f"{name}() missing required argument: {n!r}")
                env[n] = defaults[i - first]
        if c.depth >= self.max_depth:
            raise ProgramRefused(f"call depth above {self.max_depth}")
        if c.frames + f.frames > MAX_FRAMES:
            raise ProgramRefused(f"program nested too deeply (calls x nesting above {MAX_FRAMES})")
        c.depth += 1
        c.frames += f.frames
        try:
            r = f.body(c, env)
        finally:
            c.depth -= 1
            c.frames -= f.frames
        return r[1] if r is not None else None

    # ------------------------------------------------------------------ compiling: module level
    @staticmethod
    def _target_names(t):
        if isinstance(t, _ast.Name):
            return [t.id]
        if isinstance(t, (_ast.Tuple, _ast.List)):
            return [n for e in t.elts for n in Program._target_names(e)]
        return []

    def _module_stmt(self, s):
        line = getattr(s, "lineno", "?")
        if isinstance(s, _ast.Import):
            for a in s.names:
                if (a.name, a.asname) not in (("numpy", "np"), ("math", None), ("math", "math")):
                    raise ProgramRefused(f"line {line}: import of {a.name!r} refused")
            return no_op
        if isinstance(s, _ast.FunctionDef):
            return self._define(s)
        if isinstance(s, (_ast.Assign, _ast.AnnAssign)):
            run = self._stmt(s, 0)
            return lambda c: run(c, c.globals)
        if isinstance(s, _ast.Pass) or docstring_of(s):
            return no_op
        raise ProgramRefused(f"line {line}: {type(s).__name__} at module level refused")

    def _define(self, fn):
        name, a = fn.name, fn.args
        if name in self.functions or name in self.module_names or "__" in name or name in ("np", "math") \
                or name in BUILTIN_NAMES:
            raise ProgramRefused(f"line {fn.lineno}: function {name!r} refused")
        if fn.decorator_list or a.vararg or a.kwarg or a.posonlyargs or a.kwonlyargs:
            raise ProgramRefused(f"line {fn.lineno}: decorators, *args, **kwargs, positional-only and "
                                 "keyword-only arguments refused")
        f = _Function()
        f.name, f.line = name, fn.lineno
        f.params = [x.arg for x in a.args]
        if len(set(f.params)) != len(f.params):
            raise ProgramRefused(f"line {fn.lineno}: duplicate argument names")
        for p in f.params:
            self._check_binding(p, fn.lineno)
        # defaults, then annotations, are evaluated where the function is defined (module level), at each
        # call's fresh start, as Python evaluates them when the def runs
        defaults = [self._expr(d, 0) for d in a.defaults]
        notes = [self._annotation(x.annotation) for x in a.args if x.annotation is not None]
        if fn.returns is not None:
            notes.append(self._annotation(fn.returns))
        scope = set(f.params)
        for node in _ast.walk(fn):
            if isinstance(node, (_ast.Assign, _ast.AnnAssign, _ast.AugAssign, _ast.For)) and node is not fn:
                targets = node.targets if isinstance(node, _ast.Assign) else [node.target]
                for t in targets:
                    scope.update(self._target_names(t))
        self._scope, self._frames, self._loops = scope, 0, 0
        try:
            f.body = self._block(fn.body, 1)
        finally:
            self._scope = None
        f.frames = 2 * self._frames + 8  # evaluator frames: about two per level of nesting
        self.functions[name] = f

        def define(c):
            g = c.globals
            values = [d(c, g) for d in defaults]
            for note in notes:
                note(c)
            c.defaults[name] = values
        return define

    def _annotation(self, node, depth=0):
        """An annotation: evaluated only for what Python would raise (an undefined name, a missing
        ``np.``/``math.`` attribute); its value is never used."""
        if depth > 10:
            raise ProgramRefused(f"line {getattr(node, 'lineno', '?')}: annotation nested too deeply")
        if isinstance(node, _ast.Constant):
            return no_op
        if isinstance(node, _ast.Name):
            n = node.id
            if "__" in n:
                raise ProgramRefused(f"line {node.lineno}: name {n!r} refused")
            if n in self.module_names or n in self._function_names:
                table = "globals" if n in self.module_names else "defaults"

                def defined(c):
                    if n not in getattr(c, table):
                        raise NameError(f"name {n!r} is not defined")
                return defined
            if n in ("np", "math") or n in BUILTIN_NAMES or n in TYPE_NAMES or hasattr(_builtins, n):
                return no_op

            def undefined(c):
                raise NameError(f"name {n!r} is not defined")
            return undefined
        if isinstance(node, _ast.Attribute):
            if not (isinstance(node.value, _ast.Name) and node.value.id in ("np", "math")) or "__" in node.attr:
                raise ProgramRefused(f"line {node.lineno}: annotation refused (only names and np.<name>, math.<name>)")
            mod = _np if node.value.id == "np" else _math
            attr, modname = node.attr, "numpy" if mod is _np else "math"

            def attribute(c):
                if attr not in vars(mod):
                    raise AttributeError(f"module {modname!r} has no attribute {attr!r}")
            return attribute
        if isinstance(node, _ast.Subscript):
            parts = [self._annotation(node.value, depth + 1), self._annotation(node.slice, depth + 1)]
        elif isinstance(node, (_ast.Tuple, _ast.List)):
            parts = [self._annotation(e, depth + 1) for e in node.elts]
        elif isinstance(node, _ast.BinOp) and isinstance(node.op, _ast.BitOr):
            parts = [self._annotation(node.left, depth + 1), self._annotation(node.right, depth + 1)]
        else:
            raise ProgramRefused(f"line {getattr(node, 'lineno', '?')}: annotation too complex")

        def each(c):
            for part in parts:
                part(c)
        return each

    def _check_binding(self, n, line):
        if "__" in n or n in self._function_names or n in ("np", "math") or n in BUILTIN_NAMES:
            raise ProgramRefused(f"line {line}: assignment to {n!r} refused")


def read_only_features(x):
    """A fresh dict of read-only views of the feature arrays (a candidate cannot change them)."""
    out = {}
    for k, v in x.items():
        a = _np.asarray(v, dtype=float).view()
        a.flags.writeable = False
        out[k] = a
    return out
# <<< embed interp
