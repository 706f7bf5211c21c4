"""The candidate allowlists, the numpy argument policy, and a small evaluator of candidate programs.

A candidate program is model-written text. The search runs it only inside the sandbox
(``potsearch.evolve.sandbox``). Files written for the user (``best_potential.py``) must not run it
as Python at all: they keep the program as a *string* and evaluate it with :class:`Program`, a
tree-walking interpreter over the same AST subset the sandbox's allowlist admits. It never calls
``exec``/``eval``/``compile`` and never looks an attribute up on anything but the ``numpy`` and
``math`` modules, by names from the lists below; anything else is refused with
:class:`ProgramRefused`.

The section between the ``embed`` markers is copied verbatim into best_potential.py, so it needs
only ``ast``, ``math`` and ``numpy`` (no potsearch import).
"""
# >>> embed interp
import ast as _ast
import math as _math
import operator as _operator

import numpy as _np

#: numpy names a candidate may use as ``np.<name>`` (functions and constants). No I/O (load, save,
#: fromfile, loadtxt, memmap, tofile), no submodules (lib, ctypeslib, random, linalg), no global
#: state setters (seterr, set_printoptions), nothing that takes a callable (vectorize, frompyfunc).
ALLOWED_NUMPY = frozenset(
    """
    abs absolute add all allclose amax amin any arange arccos arccosh arcsin arcsinh arctan arctan2
    arctanh argmax argmin around array asarray atleast_1d broadcast_to cbrt ceil clip column_stack
    concatenate copysign cos cosh count_nonzero cumprod cumsum deg2rad diff divide dot e equal
    euler_gamma exp exp2 expm1 fabs float64 floor floor_divide fmax fmin fmod full full_like greater
    greater_equal heaviside hypot inf int64 interp isclose isfinite isinf isnan less less_equal
    linspace log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not logical_or
    logical_xor max maximum mean median min minimum mod multiply nan nan_to_num nanmax nanmean
    nanmin nansum negative ones ones_like pi polyval positive power prod rad2deg reciprocal
    remainder rint round searchsorted sign signbit sin sinc sinh sort sqrt square stack std
    subtract sum tan tanh tile true_divide trunc var where zeros zeros_like
    """.split()
)

#: math names a candidate may use as ``math.<name>``. (factorial/comb/perm are left out: one call
#: can burn minutes of CPU.)
ALLOWED_MATH = frozenset(
    """
    acos acosh asin asinh atan atan2 atanh ceil copysign cos cosh degrees e erf erfc exp expm1 fabs
    floor fmod fsum gamma hypot inf isclose isfinite isinf isnan lgamma log log10 log1p log2 nan pi
    pow prod radians sin sinh sqrt tan tanh tau trunc
    """.split()
)

#: builtins a candidate may call (the only builtins present in the sandbox's namespace).
ALLOWED_BUILTINS = frozenset(
    """
    abs all any bool enumerate float int isinstance len list max min pow range reversed round sorted
    sum tuple zip
    """.split()
)

#: ``np.<name>`` / ``math.<name>`` that may appear as values; every other one may only be called.
VALUE_ATTRIBUTES = frozenset({"e", "pi", "inf", "nan", "euler_gamma", "tau", "float64", "int64"})

#: keyword arguments refused on every call: in-place or uninitialised output, casting/memory tricks.
REFUSED_KEYWORDS = frozenset({"out", "where", "casting", "order", "subok", "signature", "extobj", "copy",
                              "like", "key"})

#: the argument policy: most positional arguments each non-ufunc numpy function takes (the next
#: positional one is an ``out``, ``dtype`` or ``copy``); a ufunc takes exactly its ``nin`` inputs.
NUMPY_POSITIONAL = {
    "all": 2, "any": 2, "allclose": 5, "isclose": 5, "amax": 2, "amin": 2, "max": 2, "min": 2,
    "argmax": 2, "argmin": 2, "around": 2, "round": 2, "arange": 3, "array": 1, "asarray": 1,
    "atleast_1d": 8, "broadcast_to": 2, "clip": 3, "column_stack": 1, "concatenate": 2, "stack": 2,
    "count_nonzero": 2, "cumprod": 2, "cumsum": 2, "diff": 3, "dot": 2, "float64": 1, "int64": 1,
    "full": 2, "full_like": 2, "interp": 6, "linspace": 4, "mean": 2, "median": 2, "nan_to_num": 1,
    "nanmax": 2, "nanmin": 2, "nanmean": 2, "nansum": 2, "ones": 1, "zeros": 1, "ones_like": 1,
    "zeros_like": 1, "polyval": 2, "prod": 2, "sum": 2, "std": 2, "var": 2, "searchsorted": 3,
    "sinc": 1, "sort": 2, "tile": 2, "where": 3,
}


def numpy_max_positional(name):
    """The most positional arguments ``np.<name>`` may be given (0 for constants)."""
    obj = getattr(_np, name, None)
    if isinstance(obj, _np.ufunc):
        return obj.nin
    return NUMPY_POSITIONAL.get(name, 0)


class ProgramRefused(Exception):
    """The program uses something outside the evaluated subset (it is never run as Python)."""


_BINARY = {
    _ast.Add: _operator.add, _ast.Sub: _operator.sub, _ast.Mult: _operator.mul,
    _ast.Div: _operator.truediv, _ast.FloorDiv: _operator.floordiv, _ast.Mod: _operator.mod,
    _ast.Pow: _operator.pow, _ast.MatMult: _operator.matmul, _ast.BitAnd: _operator.and_,
    _ast.BitOr: _operator.or_, _ast.BitXor: _operator.xor, _ast.LShift: _operator.lshift,
    _ast.RShift: _operator.rshift,
}
# ``a += b`` updates an array in place in Python, so it does here too (same aliasing semantics)
_INPLACE = {
    _ast.Add: _operator.iadd, _ast.Sub: _operator.isub, _ast.Mult: _operator.imul,
    _ast.Div: _operator.itruediv, _ast.FloorDiv: _operator.ifloordiv, _ast.Mod: _operator.imod,
    _ast.Pow: _operator.ipow, _ast.MatMult: _operator.imatmul, _ast.BitAnd: _operator.iand,
    _ast.BitOr: _operator.ior, _ast.BitXor: _operator.ixor, _ast.LShift: _operator.ilshift,
    _ast.RShift: _operator.irshift,
}
_UNARY = {_ast.UAdd: _operator.pos, _ast.USub: _operator.neg, _ast.Not: _operator.not_,
          _ast.Invert: _operator.invert}
_COMPARE = {
    _ast.Eq: _operator.eq, _ast.NotEq: _operator.ne, _ast.Lt: _operator.lt, _ast.LtE: _operator.le,
    _ast.Gt: _operator.gt, _ast.GtE: _operator.ge, _ast.Is: _operator.is_, _ast.IsNot: _operator.is_not,
    _ast.In: lambda a, b: a in b, _ast.NotIn: lambda a, b: a not in b,
}
_DTYPES = {"float": float, "int": int, "bool": bool}
_ITERATORS = ("range", "enumerate", "zip", "reversed")
_MAX_INT_BITS = 4096
_MAX_SEQUENCE = 1_000_000


class _Return(Exception):
    def __init__(self, value):
        self.value = value


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class Program:
    """A candidate program kept as text and evaluated node by node.

    ``Program(source).call("potential", x, p)`` computes what the sandbox computes for the same
    program (the same numpy functions in the same order), or raises :class:`ProgramRefused`.
    Bounded: call depth ``max_depth``, ``max_steps`` evaluated nodes per call."""

    def __init__(self, source, max_depth=32, max_steps=20_000_000):
        if not isinstance(source, str) or len(source) > 100_000:
            raise ProgramRefused("program source must be a string of at most 100,000 characters")
        try:
            tree = _ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
            raise ProgramRefused(f"cannot parse the program: {type(e).__name__}") from None
        self.max_depth, self.max_steps = int(max_depth), int(max_steps)
        self.functions = {}
        self.globals = {}
        self._steps = 0
        self._depth = 0
        self._builtins = {
            "abs": abs, "all": all, "any": any, "bool": bool, "enumerate": enumerate, "float": float,
            "int": int, "len": len, "list": list, "max": max, "min": min, "pow": self._pow,
            "range": self._range, "reversed": reversed, "round": round, "sorted": sorted, "sum": sum,
            "tuple": tuple, "zip": zip, "isinstance": self._isinstance,
        }
        for stmt in tree.body:
            if isinstance(stmt, _ast.Import):
                for a in stmt.names:
                    if (a.name, a.asname) not in (("numpy", "np"), ("math", None), ("math", "math")):
                        raise ProgramRefused(f"line {stmt.lineno}: import of {a.name!r} refused")
            elif isinstance(stmt, _ast.FunctionDef):
                self._define(stmt)
            elif isinstance(stmt, (_ast.Assign, _ast.AnnAssign)):
                self._statement(stmt, self.globals)
            elif isinstance(stmt, _ast.Pass) or (isinstance(stmt, _ast.Expr) and isinstance(stmt.value, _ast.Constant)
                                                and isinstance(stmt.value.value, str)):
                pass
            else:
                raise ProgramRefused(f"line {stmt.lineno}: {type(stmt).__name__} at module level refused")

    # ------------------------------------------------------------------ definitions and calls
    def _define(self, fn):
        if fn.name in self.functions or fn.name in self.globals or "__" in fn.name:
            raise ProgramRefused(f"line {fn.lineno}: function {fn.name!r} refused")
        a = fn.args
        if fn.decorator_list or a.vararg or a.kwarg or a.posonlyargs or a.kwonlyargs:
            raise ProgramRefused(f"line {fn.lineno}: decorators, *args, **kwargs and keyword-only arguments refused")
        names = [x.arg for x in a.args]
        defaults = [self._eval(d, self.globals) for d in a.defaults]
        self.functions[fn.name] = (fn, names, defaults)

    def call(self, name, *args):
        """Call the program's function ``name`` with positional arguments."""
        self._steps = 0
        self._depth = 0
        return self._call(name, list(args), {})

    def _call(self, name, args, kwargs):
        if name not in self.functions:
            raise ProgramRefused(f"no function {name!r} in the program")
        fn, names, defaults = self.functions[name]
        if len(args) > len(names):
            raise TypeError(f"{name}() takes {len(names)} arguments, {len(args)} given")
        env = dict(zip(names, args))
        for k, v in kwargs.items():
            if k not in names or k in env:
                raise TypeError(f"{name}() got an unexpected or repeated argument {k!r}")
            env[k] = v
        first_default = len(names) - len(defaults)
        for i, n in enumerate(names):
            if n not in env:
                if i < first_default:
                    raise TypeError(f"{name}() missing argument {n!r}")
                env[n] = defaults[i - first_default]
        if self._depth >= self.max_depth:
            raise ProgramRefused(f"call depth above {self.max_depth}")
        self._depth += 1
        try:
            self._block(fn.body, env)
        except _Return as r:
            return r.value
        finally:
            self._depth -= 1
        return None

    # ------------------------------------------------------------------ statements
    def _block(self, stmts, env):
        for s in stmts:
            self._statement(s, env)

    def _statement(self, s, env):
        self._tick(s)
        if isinstance(s, _ast.Assign):
            value = self._eval(s.value, env)
            for t in s.targets:
                self._assign(t, value, env)
        elif isinstance(s, _ast.AnnAssign):
            if s.value is not None:
                self._assign(s.target, self._eval(s.value, env), env)
        elif isinstance(s, _ast.AugAssign) and isinstance(s.target, _ast.Name) and type(s.op) in _BINARY:
            cur = self._name(s.target, env)
            self._assign(s.target, self._binop(s.op, cur, self._eval(s.value, env), _INPLACE), env)
        elif isinstance(s, _ast.Return):
            raise _Return(None if s.value is None else self._eval(s.value, env))
        elif isinstance(s, _ast.If):
            self._block(s.body if self._eval(s.test, env) else s.orelse, env)
        elif isinstance(s, _ast.For):
            it = s.iter
            if not (isinstance(it, _ast.Call) and isinstance(it.func, _ast.Name) and it.func.id in _ITERATORS):
                raise ProgramRefused(f"line {s.lineno}: for loops must use range/enumerate/zip/reversed")
            for item in self._eval(it, env):
                self._assign(s.target, item, env)
                try:
                    self._block(s.body, env)
                except _Break:
                    break
                except _Continue:
                    continue
            else:
                self._block(s.orelse, env)
        elif isinstance(s, _ast.Pass):
            pass
        elif isinstance(s, _ast.Break):
            raise _Break()
        elif isinstance(s, _ast.Continue):
            raise _Continue()
        elif isinstance(s, _ast.Expr) and isinstance(s.value, _ast.Constant) and isinstance(s.value.value, str):
            pass
        else:
            raise ProgramRefused(f"line {getattr(s, 'lineno', '?')}: {type(s).__name__} refused")

    def _assign(self, t, value, env):
        if isinstance(t, _ast.Name):
            if "__" in t.id or t.id in self.functions or t.id in ("np", "math") or t.id in self._builtins:
                raise ProgramRefused(f"line {t.lineno}: assignment to {t.id!r} refused")
            env[t.id] = value
        elif isinstance(t, (_ast.Tuple, _ast.List)):
            values = list(value)
            if len(values) != len(t.elts):
                raise ValueError(f"cannot unpack {len(values)} values into {len(t.elts)} names")
            for e, v in zip(t.elts, values):
                self._assign(e, v, env)
        else:
            raise ProgramRefused(f"line {getattr(t, 'lineno', '?')}: only names may be assigned")

    # ------------------------------------------------------------------ expressions
    def _tick(self, node):
        self._steps += 1
        if self._steps > self.max_steps:
            raise ProgramRefused(f"more than {self.max_steps} evaluation steps")

    def _name(self, node, env):
        n = node.id
        if n in env:
            return env[n]
        if n in self.globals:
            return self.globals[n]
        raise ProgramRefused(f"line {node.lineno}: unknown name {n!r}")

    def _eval(self, e, env):
        self._tick(e)
        if isinstance(e, _ast.Constant):
            v = e.value
            if isinstance(v, str) and ("__" in v or len(v) > 200):
                raise ProgramRefused(f"line {e.lineno}: string constant refused (dunder or too long)")
            if v is None or isinstance(v, (bool, int, float, complex, str)):
                return v
            raise ProgramRefused(f"line {e.lineno}: constant of type {type(v).__name__} refused")
        if isinstance(e, _ast.Name):
            return self._name(e, env)
        if isinstance(e, _ast.BinOp) and type(e.op) in _BINARY:
            return self._binop(e.op, self._eval(e.left, env), self._eval(e.right, env))
        if isinstance(e, _ast.UnaryOp) and type(e.op) in _UNARY:
            return self._int_ok(_UNARY[type(e.op)](self._eval(e.operand, env)))
        if isinstance(e, _ast.BoolOp):
            and_ = isinstance(e.op, _ast.And)
            v = None
            for part in e.values:
                v = self._eval(part, env)
                if (not v) if and_ else v:
                    return v
            return v
        if isinstance(e, _ast.Compare):
            left = self._eval(e.left, env)
            result = True
            for op, c in zip(e.ops, e.comparators):
                right = self._eval(c, env)
                result = _COMPARE[type(op)](left, right)
                if not result:
                    return result
                left = right
            return result
        if isinstance(e, _ast.IfExp):
            return self._eval(e.body if self._eval(e.test, env) else e.orelse, env)
        if isinstance(e, _ast.Attribute):
            return self._attribute(e, value=True)
        if isinstance(e, _ast.Call):
            return self._call_node(e, env)
        if isinstance(e, _ast.Subscript):
            obj = self._eval(e.value, env)
            if not isinstance(obj, (dict, _np.ndarray, list, tuple, _np.generic)):
                raise ProgramRefused(f"line {e.lineno}: subscript of {type(obj).__name__} refused")
            return obj[self._eval(e.slice, env)]
        if isinstance(e, _ast.Slice):
            return slice(*(None if v is None else self._eval(v, env) for v in (e.lower, e.upper, e.step)))
        if isinstance(e, _ast.Tuple):
            return tuple(self._eval(x, env) for x in e.elts)
        if isinstance(e, _ast.List):
            return [self._eval(x, env) for x in e.elts]
        raise ProgramRefused(f"line {getattr(e, 'lineno', '?')}: {type(e).__name__} refused")

    def _binop(self, op, a, b, table=_BINARY):
        if isinstance(a, (list, tuple, str)) or isinstance(b, (list, tuple, str)):
            if not isinstance(op, _ast.Add) or len(a) + len(b) > _MAX_SEQUENCE:
                raise ProgramRefused("arithmetic on sequences refused (only + of short sequences)")
        if isinstance(op, _ast.Pow) and type(a) is int and type(b) is int and abs(b) > 64:
            a = float(a)
        if isinstance(op, (_ast.LShift, _ast.RShift)) and type(b) is int and b > 64:
            raise ProgramRefused("shift by more than 64 bits refused")
        return self._int_ok(table[type(op)](a, b))

    @staticmethod
    def _int_ok(v):
        if type(v) is int and v.bit_length() > _MAX_INT_BITS:
            raise ProgramRefused("integer too large")
        return v

    def _pow(self, *args):
        if len(args) == 2:
            return self._binop(_ast.Pow(), args[0], args[1])
        if len(args) == 3 and all(type(a) is int for a in args):
            return pow(*args)
        raise TypeError("pow() takes 2 numbers (or 3 ints)")

    @staticmethod
    def _range(*args):
        r = range(*args)
        if len(r) > 10_000_000:
            raise ProgramRefused("range longer than 10,000,000 refused")
        return r

    @staticmethod
    def _isinstance(obj, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not all(k in (_np.float64, _np.int64) for k in kinds):
            raise ProgramRefused("isinstance takes np.float64 / np.int64 only")
        return isinstance(obj, kind)

    def _attribute(self, e, value):
        if not (isinstance(e.value, _ast.Name) and e.value.id in ("np", "math")):
            raise ProgramRefused(f"line {e.lineno}: attribute .{e.attr} refused (only np.<name> and math.<name>)")
        allowed = ALLOWED_NUMPY if e.value.id == "np" else ALLOWED_MATH
        if e.attr not in allowed:
            raise ProgramRefused(f"line {e.lineno}: {e.value.id}.{e.attr} is not in the allowlist")
        if value and e.attr not in VALUE_ATTRIBUTES:
            raise ProgramRefused(f"line {e.lineno}: {e.value.id}.{e.attr} may only be called")
        return getattr(_np if e.value.id == "np" else _math, e.attr)

    def _call_node(self, e, env):
        f = e.func
        kwargs = {}
        for k in e.keywords:
            if k.arg is None or "__" in k.arg or k.arg in REFUSED_KEYWORDS:
                raise ProgramRefused(f"line {e.lineno}: keyword argument {k.arg or '**'} refused")
            if k.arg == "dtype":
                kwargs["dtype"] = self._dtype(k.value)
            else:
                kwargs[k.arg] = self._eval(k.value, env)
        if any(isinstance(a, _ast.Starred) for a in e.args):
            raise ProgramRefused(f"line {e.lineno}: starred arguments refused")
        args = [self._eval(a, env) for a in e.args]
        if isinstance(f, _ast.Name):
            if f.id in env or f.id in self.globals:
                raise ProgramRefused(f"line {e.lineno}: call through the name {f.id!r} refused")
            if f.id in self.functions:
                return self._call(f.id, args, kwargs)
            if f.id in self._builtins:
                return self._builtins[f.id](*args, **kwargs)
            raise ProgramRefused(f"line {e.lineno}: call of {f.id!r} refused")
        if isinstance(f, _ast.Attribute):
            fn = self._attribute(f, value=False)
            if f.value.id == "np" and len(args) > numpy_max_positional(f.attr):
                raise ProgramRefused(f"line {e.lineno}: too many positional arguments for np.{f.attr}")
            return fn(*args, **kwargs)
        raise ProgramRefused(f"line {e.lineno}: only named functions may be called")

    @staticmethod
    def _dtype(node):
        if isinstance(node, _ast.Name) and node.id in _DTYPES:
            return _DTYPES[node.id]
        if isinstance(node, _ast.Attribute) and isinstance(node.value, _ast.Name) and node.value.id == "np" \
                and node.attr in ("float64", "int64"):
            return getattr(_np, node.attr)
        raise ProgramRefused("dtype must be float, int, bool, np.float64 or np.int64")


def read_only_features(x):
    """A fresh dict of read-only views of the feature arrays (a candidate cannot change them)."""
    out = {}
    for k, v in x.items():
        a = _np.asarray(v, dtype=float).view()
        a.flags.writeable = False
        out[k] = a
    return out
# <<< embed interp


def embedded_source() -> str:
    """The evaluator's code (between the embed markers) for best_potential.py."""
    import inspect
    import re

    text = inspect.getsource(inspect.getmodule(embedded_source))
    m = re.search(r"^# >>> embed interp\n(.*?)^# <<< embed interp\n", text, re.S | re.M)
    if m is None:  # pragma: no cover - guarded by tests
        raise RuntimeError("embed section missing from interp.py")
    return m.group(1)
