"""The candidate allowlists, the numpy argument policy, and a small evaluator of candidate programs.

A candidate program is model-written text. The search runs it only inside the sandbox
(``potsearch.sandbox``). Files written for the user (``best_potential.py``) must not run it
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
import builtins as _builtins
import math as _math
import operator as _operator
import sys as _sys
import time as _time

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
    """The program uses something outside the evaluated subset, or passes one of the evaluator's bounds
    (steps, seconds, array size, work, integer size, nesting): it is never run as Python."""


_BINARY = {
    _ast.Add: _operator.add, _ast.Sub: _operator.sub, _ast.Mult: _operator.mul,
    _ast.Div: _operator.truediv, _ast.FloorDiv: _operator.floordiv, _ast.Mod: _operator.mod,
    _ast.Pow: _operator.pow, _ast.MatMult: _operator.matmul, _ast.BitAnd: _operator.and_,
    _ast.BitOr: _operator.or_, _ast.BitXor: _operator.xor, _ast.LShift: _operator.lshift,
    _ast.RShift: _operator.rshift,
}
# ``a += b`` updates an array (or a list) in place, as in Python: the same aliasing semantics
_INPLACE = {
    _ast.Add: _operator.iadd, _ast.Sub: _operator.isub, _ast.Mult: _operator.imul,
    _ast.Div: _operator.itruediv, _ast.FloorDiv: _operator.ifloordiv, _ast.Mod: _operator.imod,
    _ast.Pow: _operator.ipow, _ast.MatMult: _operator.imatmul, _ast.BitAnd: _operator.iand,
    _ast.BitOr: _operator.ior, _ast.BitXor: _operator.ixor, _ast.LShift: _operator.ilshift,
    _ast.RShift: _operator.irshift,
}
_UNARY = {_ast.UAdd: _operator.pos, _ast.USub: _operator.neg, _ast.Not: _operator.not_,
          _ast.Invert: _operator.invert}
# no ``is`` / ``is not``: object identity is an implementation detail (use ==)
_COMPARE = {
    _ast.Eq: _operator.eq, _ast.NotEq: _operator.ne, _ast.Lt: _operator.lt, _ast.LtE: _operator.le,
    _ast.Gt: _operator.gt, _ast.GtE: _operator.ge, _ast.In: lambda a, b: a in b,
    _ast.NotIn: lambda a, b: a not in b,
}
_DTYPES = {"float": float, "int": int, "bool": bool}
_ITERATORS = ("range", "enumerate", "zip", "reversed")
_SUBSCRIPTABLE = (dict, _np.ndarray, list, tuple, _np.generic, range, str)
_SEQUENCES = (list, tuple, str, range)

#: the evaluator's bounds for one call (``Program.call``); the sandbox and best_potential.py use the same
MAX_INT_BITS = 4096           # a Python integer result
MAX_SEQUENCE = 1_000_000      # items of a list/tuple, characters of a string
MAX_RANGE = 10_000_000        # repetitions of np.diff counted as work (its loop turns count as steps)
MAX_ARRAY = 10_000_000        # elements of one array (8-byte units: 80 MB)
MAX_WORK = 200_000_000        # 8-byte units of arrays, lists and inner products made in one call
MAX_STEPS = 5_000_000         # evaluation steps (nodes, loop items) in one call: a few seconds
MAX_SECONDS = 60.0            # wall clock of one call
MAX_DEPTH = 32                # nested calls of the program's own functions
MAX_FRAMES = 700              # nested evaluator frames (calls x nesting inside each function)
MAX_NESTING = 100             # nesting of one statement or expression
MAX_CONTAINER_DEPTH = 64      # lists and tuples nested in one another
MAX_INT_STR = 640             # characters of a string given to int() (Python's smallest digit limit)
MAX_NUMPY_INT_BITS = 63       # a Python integer handed to numpy (a bigger one makes object arrays)
_TYPE_NAMES = frozenset({"float", "int", "bool", "str", "dict", "list", "tuple", "complex", "object",
                         "type", "set", "frozenset", "bytes", "range", "slice"})  # annotations only

_RET, _BRK, _CNT = "return", "break", "continue"


_MEMO = {}  # id -> (list or tuple, units): containers walked in the current call (emptied around each call)
PY_UNIT = 16  # work of one element walked by Python's own loops (comparisons, searches, sorts) in numpy units


def _units(v):
    """8-byte units a list/tuple/array/string holds, nested items included (a container met again is
    not walked again: ``[a] * 10**6`` costs one walk of ``a``)."""
    if isinstance(v, _np.ndarray):
        return max(v.size, v.nbytes // 8)
    if isinstance(v, str):
        return len(v) // 2 + 1
    if isinstance(v, range):
        return _range_len(v)
    if not isinstance(v, (list, tuple)):
        return 1
    got = _MEMO.get(id(v))
    if got is not None and got[0] is v:
        return got[1]
    total = 0
    for item in v:
        total += _units(item) if isinstance(item, (list, tuple, _np.ndarray, str, range)) else 1
    if len(v) > 8:
        _MEMO[id(v)] = (v, total)
    return total


def _index(v):
    """``v`` as numpy reads a size (ints, bools, numpy integers, 0-d integer arrays), else None."""
    try:
        return _operator.index(v)
    except (TypeError, ValueError):
        return None


_UNKNOWN = 1 << 62  # a size that cannot be read: refused as too large (numpy would refuse it or make it)


def _shape_size(shape):
    i = _index(shape)
    if i is not None:
        return max(i, 0)
    if isinstance(shape, _np.ndarray):
        if shape.size > 64:
            return _UNKNOWN
        shape = shape.tolist()
    if isinstance(shape, (tuple, list, range)) and len(shape) <= 64:
        dims = [_index(s) for s in shape]
        return _UNKNOWN if None in dims else _prod(max(k, 0) for k in dims)
    return _UNKNOWN


def _shape_of(v):
    """The shape numpy gives ``v``: an array's, a list/tuple/range's (``_seq_shape``), () for a scalar."""
    if isinstance(v, _np.ndarray):
        return v.shape
    return _seq_shape(v) if isinstance(v, (list, tuple, range)) else ()


def _seq_shape(v):
    """The shape numpy gives a list/tuple/range (from its first items, at most 32 levels)."""
    dims = []
    while isinstance(v, (list, tuple, range)) and len(dims) < 32:
        dims.append(len(v))
        if not len(v):
            return tuple(dims)
        v = v[0]
    if isinstance(v, _np.ndarray):
        dims.extend(v.shape)
    return tuple(dims)


def _broadcast_units(args):
    """Elements of the broadcast of the array arguments (or of the largest argument, when they do
    not broadcast: numpy then raises)."""
    shapes, biggest = [], 0
    for a in args:
        if isinstance(a, (_np.ndarray, list, tuple, range)):
            shapes.append(_shape_of(a))
            biggest = max(biggest, a.size if isinstance(a, _np.ndarray) else _units(a))
        elif isinstance(a, str):
            biggest = max(biggest, _units(a))
    if len(shapes) > 1:
        try:
            return max(_prod(_np.broadcast_shapes(*shapes)), biggest)
        except ValueError:
            return biggest
    return biggest


def _arg(args, kwargs, i, name, default=None):
    if len(args) > i:
        return args[i]
    return kwargs.get(name, default)


def _predict(name, args, kwargs):
    """Elements a call ``np.<name>(*args, **kwargs)`` makes (and the work it does), before it runs."""
    if name in ("zeros", "ones", "full"):
        n = _shape_size(_arg(args, kwargs, 0, "shape", 0))
        return n * (max(_units(_arg(args, kwargs, 1, "fill_value", 0)), 1) if name == "full" else 1)
    if name in ("zeros_like", "ones_like", "full_like"):
        shape = kwargs.get("shape")
        n = _shape_size(shape) if shape is not None else _units(_arg(args, kwargs, 0, "a"))
        return n * (max(_units(_arg(args, kwargs, 1, "fill_value", 0)), 1) if name == "full_like" else 1)
    if name == "arange":
        try:
            if len(args) <= 1 and "stop" not in kwargs:
                start, stop = 0.0, float(_arg(args, kwargs, 0, "start", 0))
            else:
                start, stop = float(_arg(args, kwargs, 0, "start", 0)), float(_arg(args, kwargs, 1, "stop", 0))
            step = float(_arg(args, kwargs, 2, "step", 1))
            n = (stop - start) / step
            return int(n) + 1 if n > 0 else 0
        except (TypeError, ValueError, OverflowError, ZeroDivisionError):
            return 0
    if name == "linspace":
        n = _shape_size(_arg(args, kwargs, 2, "num", 50))
        return n * max(_broadcast_units([_arg(args, kwargs, 0, "start", 0), _arg(args, kwargs, 1, "stop", 0)]), 1)
    if name == "tile":
        return _units(_arg(args, kwargs, 0, "A")) * max(_shape_size(_arg(args, kwargs, 1, "reps", 1)), 1)
    if name == "broadcast_to":
        return _shape_size(_arg(args, kwargs, 1, "shape", 0))
    if name in ("concatenate", "stack", "column_stack", "array", "asarray", "atleast_1d"):
        return sum(_units(a) for a in args[:1]) + 1
    if name == "dot" and len(args) == 2:
        return _product_work(args[0], args[1])
    if name == "where" and len(args) == 1 and not kwargs:  # one index array per dimension
        shape = _shape_of(args[0])
        return _prod(shape) * max(len(shape), 1)
    if name == "polyval" and len(args) == 2:
        return _units(args[0]) * _units(args[1])
    if name == "diff":
        n = _index(_arg(args, kwargs, 1, "n", 1))
        reps = min(max(n, 1), MAX_RANGE) if n is not None else 1
        return _units(_arg(args, kwargs, 0, "a")) * reps
    return _broadcast_units(list(args) + list(kwargs.values()))


def _python_loop(name, args, kwargs):
    """Turns of the Python loop inside some numpy functions (counted as evaluation steps): np.diff
    loops ``n`` times, np.polyval once per coefficient, stack/concatenate once per array."""
    if name == "diff":
        n = _index(_arg(args, kwargs, 1, "n", 1))
        return max(n, 0) if n is not None else 0
    if name == "polyval" and args:
        p = args[0]
        return p.shape[0] if isinstance(p, _np.ndarray) and p.ndim else len(p) if isinstance(p, (list, tuple)) else 0
    if name in ("stack", "column_stack", "concatenate") and args:
        seq = args[0]
        if isinstance(seq, _np.ndarray):
            return seq.shape[0] if seq.ndim else 0
        return len(seq) if isinstance(seq, (list, tuple)) else 0
    return 0


def _range_len(r):
    """Items of a range, also past what ``len`` can say (a range of 2**120 items is a Python range)."""
    if r.step > 0:
        return max(0, (r.stop - r.start + r.step - 1) // r.step)
    return max(0, (r.start - r.stop - r.step - 1) // -r.step)


def _product_work(a, b):
    """Multiply-adds of ``np.dot(a, b)`` / ``a @ b`` (an upper bound for matmul's batches)."""
    sa, sb = _shape_of(a), _shape_of(b)
    na, nb = _prod(sa), _prod(sb)
    if not sa or not sb:
        return max(na, nb)
    inner = sa[-1]
    rows = na // max(inner, 1)
    cols = nb // max(sb[-2] if len(sb) >= 2 else sb[-1], 1)
    return rows * max(cols, 1) * max(inner, 1) + na + nb


def _prod(shape):
    n = 1
    for k in shape:
        n *= k
    return n


def _big_int(v, depth=0):
    """Is there a Python integer numpy cannot hold in 64 bits in ``v`` (it would make object arrays)?"""
    if type(v) is int:
        return v.bit_length() > MAX_NUMPY_INT_BITS
    if isinstance(v, (list, tuple)) and depth < MAX_CONTAINER_DEPTH:
        return any(_big_int(e, depth + 1) for e in v)
    return False


def _read_only(v):
    if isinstance(v, _np.ndarray):
        w = v.view()
        w.flags.writeable = False
        return w
    if isinstance(v, dict):
        return {k: _read_only(a) for k, a in v.items()}
    return v


class _Call:
    """The state of one evaluation: its own globals, defaults and counters (nothing outlives it)."""

    __slots__ = ("steps", "limit", "deadline", "work", "depth", "frames", "globals", "defaults", "prog", "nested")

    def __init__(self, prog):
        self.prog = prog
        self.steps = 0
        self.limit = min(1024, prog.max_steps)
        self.deadline = _time.monotonic() + prog.max_seconds
        self.work = 0
        self.depth = 0
        self.frames = 0
        self.globals = {}
        self.defaults = {}
        self.nested = {}  # id -> (container, depth) for lists/tuples holding lists/tuples

    def check(self):
        """Called every 1,024 steps: the step and time bounds (each step's own cost is bounded)."""
        if self.steps > self.prog.max_steps:
            raise ProgramRefused(f"more than {self.prog.max_steps:,} evaluation steps in one call")
        if _time.monotonic() > self.deadline:
            raise ProgramRefused(f"more than {self.prog.max_seconds:g} s in one call")
        self.limit = min(self.steps + 1024, self.prog.max_steps)

    def tick(self, n=1):
        self.steps += n
        if self.steps > self.limit:
            self.check()

    def charge(self, units, what="arrays"):
        """Refuse before making something bigger than one array may be, or past the call's work."""
        if units > self.prog.max_array:
            raise ProgramRefused(f"{what} of {units:,} elements above the limit of {self.prog.max_array:,}")
        self.spend(units)

    def spend(self, units):
        """Work that makes no array of that size (inner products, comparisons of sequences)."""
        if units > 65536 and _time.monotonic() > self.deadline:
            self.check()
        self.work += units
        if self.work > self.prog.max_work:
            raise ProgramRefused(f"more than {self.prog.max_work:,} elements of arrays and lists made in one call")

    def depth_of(self, v):
        """How deeply lists/tuples nest in ``v`` (1 for a flat one), remembered per container."""
        if not isinstance(v, (list, tuple)):
            return 0
        got = self.nested.get(id(v))
        if got is not None and got[0] is v:
            return got[1]
        d = 1
        for e in v:
            if isinstance(e, (list, tuple)):
                d = max(d, 1 + self.depth_of(e))
        if d > MAX_CONTAINER_DEPTH:
            raise ProgramRefused(f"lists and tuples nested more than {MAX_CONTAINER_DEPTH} deep refused")
        if d > 2 or len(v) > 8:  # each long or nested container is walked once per call
            self.nested[id(v)] = (v, d)
        return d

    def container(self, v):
        """A list/tuple the program made: its nesting is bounded (hashing or printing a deeper one
        recurses in C)."""
        self.depth_of(v)
        return v

    def compare_cost(self, a, b):
        """Comparing or searching sequences walks them (element by element, nested ones too)."""
        if isinstance(b, range) and (type(a) is int or type(a) is bool):
            return  # an integer in a range: arithmetic, not a search
        if isinstance(a, (list, tuple, str, range)) or isinstance(b, (list, tuple, str, range)):
            self.depth_of(a), self.depth_of(b)
            ua, ub = _units(a), _units(b)
            inner = len(b) * ua if isinstance(b, (list, tuple)) and isinstance(a, (list, tuple)) else 0
            self.spend(PY_UNIT * (ua + ub + inner))

    def made(self, v):
        """Check what an operation made (an array's dtype and real size); returns it."""
        t = type(v)
        if t is float or t is _np.float64 or t is bool:
            return v
        if isinstance(v, _np.ndarray):
            if v.dtype.hasobject:
                raise ProgramRefused("arrays of Python objects refused")
            n = max(v.size, v.nbytes // 8)
            if n > self.prog.max_array:
                raise ProgramRefused(f"array of {n:,} elements above the limit of {self.prog.max_array:,}")
        elif type(v) is int and v.bit_length() > MAX_INT_BITS:
            raise ProgramRefused(f"integer too large (more than {MAX_INT_BITS} bits)")
        return v

    def counted(self, it):
        """Iterate ``it``, one step per item (the step and time bounds hold inside builtins too)."""
        for item in it:
            self.steps += 1
            if self.steps > self.limit:
                self.check()
            yield item

    def materialise(self, it):
        if isinstance(it, range) or hasattr(it, "__len__"):
            n = _range_len(it) if isinstance(it, range) else len(it)
            if n > MAX_SEQUENCE:
                raise ProgramRefused(f"a sequence of {n:,} items above the limit of {MAX_SEQUENCE:,}")
        out = []
        for item in self.counted(it):
            out.append(item)
            if len(out) > MAX_SEQUENCE:
                raise ProgramRefused(f"a sequence of more than {MAX_SEQUENCE:,} items: above the limit")
        self.charge(4 * len(out), "a list")
        return self.container(out)

    def arith(self, op, a, b, table=_BINARY):
        if op is _ast.MatMult:
            self.spend(_product_work(a, b))
        ta, tb = type(a) is _np.ndarray, type(b) is _np.ndarray
        if ta or tb or isinstance(a, _np.ndarray) or isinstance(b, _np.ndarray):
            if ta and tb and a.shape == b.shape:
                n = a.size
            else:
                other = b if ta else a
                t = type(other)
                if t is float or t is _np.float64 or t is bool:
                    n = (a if ta else b).size
                elif t is int:
                    if other.bit_length() > MAX_NUMPY_INT_BITS:
                        raise ProgramRefused(f"integers of more than {MAX_NUMPY_INT_BITS} bits in array arithmetic "
                                             "refused")
                    n = (a if ta else b).size
                else:
                    n = _broadcast_units((a, b))
                    if _big_int(a) or _big_int(b):
                        raise ProgramRefused(f"integers of more than {MAX_NUMPY_INT_BITS} bits in array "
                                             "arithmetic refused")
            self.charge(n)
            return self.made(table[op](a, b))
        if isinstance(a, _SEQUENCES) or isinstance(b, _SEQUENCES):
            return self.sequence_op(op, a, b, table)
        if (type(a) is int or type(a) is bool) and (type(b) is int or type(b) is bool):
            if op is _ast.Pow and b > 1 and abs(a) > 1 and (abs(a).bit_length() - 1) * b > MAX_INT_BITS:
                raise ProgramRefused(f"integer too large (more than {MAX_INT_BITS} bits)")
            if op is _ast.LShift and b > MAX_INT_BITS:
                raise ProgramRefused(f"integer too large (more than {MAX_INT_BITS} bits)")
        return self.made(table[op](a, b))

    def sequence_op(self, op, a, b, table):
        if isinstance(a, str) or isinstance(b, str):
            if op not in (_ast.Add, _ast.Mult):
                raise ProgramRefused("only + and * of strings are evaluated")
        if table is _INPLACE and type(a) is list:  # the list changes in place: what was known of it goes
            _MEMO.pop(id(a), None)
            self.nested.pop(id(a), None)
            if op is _ast.Add and not hasattr(b, "__len__"):
                b = self.materialise(b)  # list += iterator extends the list, as in Python
        if op is _ast.Add and isinstance(a, (list, tuple, str)) and hasattr(b, "__len__"):
            n = len(a) + len(b)
        elif op is _ast.Mult and isinstance(a, (list, tuple, str)) and isinstance(b, (int, _np.integer)):
            n = len(a) * max(int(b), 0)
        elif op is _ast.Mult and isinstance(b, (list, tuple, str)) and isinstance(a, (int, _np.integer)):
            n = len(b) * max(int(a), 0)
        else:
            return table[op](a, b)  # range + 1, [1] - [2], ...: Python's own TypeError
        if n > MAX_SEQUENCE:
            raise ProgramRefused(f"a sequence of {n:,} items above the limit of {MAX_SEQUENCE:,}")
        self.charge(n if isinstance(a, str) or isinstance(b, str) else 4 * n, "a sequence")
        r = table[op](a, b)
        return self.container(r) if isinstance(r, (list, tuple)) else r


def _stack_depth():
    f, n = _sys._getframe(1), 0
    while f is not None:
        n += 1
        f = f.f_back
    return n


class _Isolated:
    """What the caller's process may have set does not change a program's result: numpy's error
    handling (``np.seterr(all="raise")`` would turn a NaN into an exception) is "ignore" inside, and
    Python's recursion limit leaves room above the caller's stack for the evaluator's own bound
    (``MAX_FRAMES``), which alone decides when a program is nested too deeply."""

    __slots__ = ("limit", "raised", "errstate")

    def __enter__(self):
        self.limit = _sys.getrecursionlimit()
        need = _stack_depth() + 4 * MAX_FRAMES + 200
        self.raised = need > self.limit
        if self.raised:
            _sys.setrecursionlimit(need)
        self.errstate = _np.errstate(all="ignore")
        self.errstate.__enter__()
        _MEMO.clear()
        return self

    def __exit__(self, kind, exc, tb):
        _MEMO.clear()
        self.errstate.__exit__(kind, exc, tb)
        if self.raised:
            _sys.setrecursionlimit(self.limit)
        if kind is not None and issubclass(kind, RecursionError):
            raise ProgramRefused("program nested too deeply") from None
        return False


class _Function:
    __slots__ = ("name", "params", "body", "frames", "line")


class Program:
    """A candidate program kept as text and evaluated node by node.

    ``Program(source).call("potential", x, p)`` evaluates the program's ``potential`` on a feature table
    ``x`` (a dict of arrays) and parameters ``p``. This class is the one semantics of candidate programs:
    the sandbox's worker evaluates every model-written candidate with it during the search, and
    best_potential.py embeds this very code, so both compute the same values, or refuse alike.

    Each call is a pure function of its arguments: it runs the module's top level afresh (its constants
    and each function's default values), gets read-only views of the arrays it is given, and keeps
    nothing afterwards. Bounded per call: steps, seconds, the size of one array, the elements of arrays
    and lists it makes, integer size, call depth and nesting (the ``MAX_*`` values above). Anything
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
        with _Isolated():
            self._module = [self._module_stmt(s) for s in tree.body]

    # ------------------------------------------------------------------ calls
    def call(self, name, *args):
        """Call the program's function ``name`` with positional arguments (arrays are passed read-only)."""
        c = _Call(self)
        with _Isolated():
            self._run_module(c)
            return self._call(c, name, [_read_only(a) for a in args], {})

    def constant(self, name, default=None):
        """A module-level value (``N_PARAMS``), from a fresh run of the module's top level."""
        c = _Call(self)
        with _Isolated():
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
            return _nothing
        if isinstance(s, _ast.FunctionDef):
            return self._define(s)
        if isinstance(s, (_ast.Assign, _ast.AnnAssign)):
            run = self._stmt(s, 0)
            return lambda c: run(c, c.globals)
        if isinstance(s, _ast.Pass) or _docstring(s):
            return _nothing
        raise ProgramRefused(f"line {line}: {type(s).__name__} at module level refused")

    def _define(self, fn):
        name, a = fn.name, fn.args
        if name in self.functions or name in self.module_names or "__" in name or name in ("np", "math") \
                or name in _BUILTIN_NAMES:
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
            return _nothing
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
            if n in ("np", "math") or n in _BUILTIN_NAMES or n in _TYPE_NAMES or hasattr(_builtins, n):
                return _nothing

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
        if "__" in n or n in self._function_names or n in ("np", "math") or n in _BUILTIN_NAMES:
            raise ProgramRefused(f"line {line}: assignment to {n!r} refused")

    # ------------------------------------------------------------------ compiling: statements
    def _block(self, stmts, d):
        runs = [self._stmt(s, d) for s in stmts]
        if len(runs) == 1:
            return runs[0]

        def block(c, env):
            for run in runs:
                r = run(c, env)
                if r is not None:
                    return r
            return None
        return block

    def _enter(self, node, d):
        """Nesting depth ``d`` of a node being compiled: bounded, and the function's frame estimate."""
        if d > MAX_NESTING:
            raise ProgramRefused(f"line {getattr(node, 'lineno', '?')}: nested too deeply")
        self._frames = max(self._frames, d)
        return getattr(node, "lineno", "?")

    def _stmt(self, s, d):
        line = self._enter(s, d)
        if isinstance(s, _ast.Assign):
            value = self._expr(s.value, d + 1)
            stores = [self._store(t) for t in s.targets]

            def assign(c, env):
                c.steps += 1
                if c.steps > c.limit:
                    c.check()
                v = value(c, env)
                for st in stores:
                    st(c, env, v)
            return assign
        if isinstance(s, _ast.AnnAssign):
            # at module level Python evaluates the annotation after the assignment; in a function, never
            note = self._annotation(s.annotation) if self._scope is None else None
            if s.value is None:
                return (lambda c, env: note(c)) if note is not None else _nothing2
            value, store = self._expr(s.value, d + 1), self._store(s.target)

            def ann_assign(c, env):
                c.tick()
                store(c, env, value(c, env))
                if note is not None:
                    note(c)
            return ann_assign
        if isinstance(s, _ast.AugAssign):
            if not isinstance(s.target, _ast.Name) or type(s.op) not in _BINARY:
                raise ProgramRefused(f"line {line}: augmented assignment to a plain name only")
            load, store, value, op = self._load(s.target), self._store(s.target), self._expr(s.value, d + 1), type(s.op)

            def aug_assign(c, env):
                c.tick()
                cur = load(c, env)
                store(c, env, c.arith(op, cur, value(c, env), _INPLACE))
            return aug_assign
        if isinstance(s, _ast.Return):
            if self._scope is None:
                raise ProgramRefused(f"line {line}: return outside a function")
            if s.value is None:
                return lambda c, env: (_RET, None)
            value = self._expr(s.value, d + 1)

            def ret(c, env):
                c.tick()
                return _RET, value(c, env)
            return ret
        if isinstance(s, _ast.If):
            test, body = self._expr(s.test, d + 1), self._block(s.body, d + 1)
            orelse = self._block(s.orelse, d + 1) if s.orelse else None

            def if_(c, env):
                c.tick()
                if test(c, env):
                    return body(c, env)
                return orelse(c, env) if orelse is not None else None
            return if_
        if isinstance(s, _ast.For):
            it = s.iter
            if not (isinstance(it, _ast.Call) and isinstance(it.func, _ast.Name) and it.func.id in _ITERATORS):
                raise ProgramRefused(f"line {line}: for loops must use range/enumerate/zip/reversed")
            items, store = self._expr(it, d + 1), self._store(s.target)
            self._loops += 1
            body = self._block(s.body, d + 1)
            self._loops -= 1
            orelse = self._block(s.orelse, d + 1) if s.orelse else None

            def for_(c, env):
                c.tick()
                for item in items(c, env):
                    c.steps += 1
                    if c.steps > c.limit:
                        c.check()
                    store(c, env, item)
                    r = body(c, env)
                    if r is not None:
                        if r is _BRK:
                            break
                        if r is _CNT:
                            continue
                        return r
                else:
                    if orelse is not None:
                        return orelse(c, env)
                return None
            return for_
        if isinstance(s, (_ast.Break, _ast.Continue)):
            if not self._loops:
                raise ProgramRefused(f"line {line}: {type(s).__name__.lower()} outside a loop")
            sig = _BRK if isinstance(s, _ast.Break) else _CNT
            return lambda c, env: sig
        if isinstance(s, _ast.Pass) or _docstring(s):
            return _nothing2
        raise ProgramRefused(f"line {line}: {type(s).__name__} refused")

    def _store(self, t):
        if isinstance(t, _ast.Name):
            n = t.id
            self._check_binding(n, t.lineno)

            def store(c, env, v):
                env[n] = v
            return store
        if isinstance(t, (_ast.Tuple, _ast.List)):
            parts = [self._store(e) for e in t.elts]
            k = len(parts)

            def unpack(c, env, v):
                values = c.materialise(v)
                if len(values) > k:
                    raise ValueError(f"too many values to unpack (expected {k})")
                if len(values) < k:
                    raise ValueError(f"not enough values to unpack (expected {k}, got {len(values)})")
                for st, x in zip(parts, values):
                    st(c, env, x)
            return unpack
        raise ProgramRefused(f"line {getattr(t, 'lineno', '?')}: only names may be assigned")

    # ------------------------------------------------------------------ compiling: expressions
    def _load(self, e):
        n = e.id
        if "__" in n:
            raise ProgramRefused(f"line {e.lineno}: name {n!r} refused")
        if n in ("np", "math") or n in self._function_names or n in _BUILTIN_NAMES:
            raise ProgramRefused(f"line {e.lineno}: {n!r} may only be called (or used as {n}.<name>)")
        if self._scope is not None and n in self._scope:
            def local(c, env):
                try:
                    return env[n]
                except KeyError:
                    raise UnboundLocalError(f"cannot access local variable {n!r} where it is not associated "
                                            "with a value") from None
            return local
        if n not in self.module_names:
            raise ProgramRefused(f"line {e.lineno}: unknown name {n!r}")

        def global_(c, env):
            try:
                return c.globals[n]
            except KeyError:
                raise NameError(f"name {n!r} is not defined") from None
        return global_

    def _expr(self, e, d):
        line = self._enter(e, d)
        if isinstance(e, _ast.Constant):
            v = e.value
            if isinstance(v, str) and ("__" in v or len(v) > 200):
                raise ProgramRefused(f"line {line}: string constant refused (dunder or too long)")
            if not (v is None or isinstance(v, (bool, int, float, complex, str))):
                raise ProgramRefused(f"line {line}: constant of type {type(v).__name__} refused")
            if type(v) is int and v.bit_length() > MAX_INT_BITS:
                raise ProgramRefused(f"line {line}: integer too large")
            return lambda c, env: v
        if isinstance(e, _ast.Name):
            return self._load(e)
        if isinstance(e, _ast.BinOp) and type(e.op) in _BINARY:
            left, right, op = self._expr(e.left, d + 1), self._expr(e.right, d + 1), type(e.op)

            def binop(c, env):
                c.steps += 1
                if c.steps > c.limit:
                    c.check()
                return c.arith(op, left(c, env), right(c, env))
            return binop
        if isinstance(e, _ast.UnaryOp) and type(e.op) in _UNARY:
            operand, fn = self._expr(e.operand, d + 1), _UNARY[type(e.op)]

            def unary(c, env):
                c.tick()
                v = operand(c, env)
                if isinstance(v, _np.ndarray):
                    c.charge(v.size)
                return c.made(fn(v))
            return unary
        if isinstance(e, _ast.BoolOp):
            parts, and_ = [self._expr(v, d + 1) for v in e.values], isinstance(e.op, _ast.And)

            head, last = parts[:-1], parts[-1]

            def boolop(c, env):
                c.tick()
                for part in head:  # Python tests every value but the last
                    v = part(c, env)
                    if (not v) if and_ else v:
                        return v
                return last(c, env)
            return boolop
        if isinstance(e, _ast.Compare):
            for op in e.ops:
                if type(op) not in _COMPARE:
                    raise ProgramRefused(f"line {line}: comparison {type(op).__name__} refused (use == / !=)")
            first = self._expr(e.left, d + 1)
            rest = [(_COMPARE[type(op)], self._expr(x, d + 1)) for op, x in zip(e.ops, e.comparators)]

            def compare(c, env):
                c.tick()
                left = first(c, env)
                result = True
                for i, (fn, right_fn) in enumerate(rest):
                    right = right_fn(c, env)
                    if isinstance(left, _np.ndarray) or isinstance(right, _np.ndarray):
                        c.charge(_broadcast_units((left, right)))
                        if _big_int(left) or _big_int(right):
                            raise ProgramRefused(f"integers of more than {MAX_NUMPY_INT_BITS} bits in array "
                                                 "comparisons refused")
                    else:
                        c.compare_cost(left, right)
                        if type(right) is dict:
                            c.depth_of(left)
                    result = c.made(fn(left, right))
                    if i + 1 < len(rest) and not result:
                        return result
                    left = right
                return result
            return compare
        if isinstance(e, _ast.IfExp):
            test, body, orelse = self._expr(e.test, d + 1), self._expr(e.body, d + 1), self._expr(e.orelse, d + 1)

            def ifexp(c, env):
                c.tick()
                return body(c, env) if test(c, env) else orelse(c, env)
            return ifexp
        if isinstance(e, _ast.Attribute):
            v = self._attribute(e, value=True)
            return lambda c, env: v
        if isinstance(e, _ast.Call):
            return self._call_node(e, d)
        if isinstance(e, _ast.Subscript):
            obj, index = self._expr(e.value, d + 1), self._expr(e.slice, d + 1)

            def subscript(c, env):
                c.tick()
                o = obj(c, env)
                if not isinstance(o, _SUBSCRIPTABLE):
                    raise ProgramRefused(f"line {line}: subscript of {type(o).__name__} refused")
                i = index(c, env)
                if isinstance(o, _np.ndarray) and isinstance(i, (_np.ndarray, list, tuple)):
                    c.charge(_units(i) if not isinstance(i, tuple) else _broadcast_units(i))
                elif type(o) is dict:
                    c.depth_of(i)
                    try:
                        return o[i]
                    except KeyError:  # the key's text, bounded (a key can be a huge tuple or string)
                        raise KeyError(_short(i)) from None
                return c.made(o[i])
            return subscript
        if isinstance(e, _ast.Slice):
            parts = [None if v is None else self._expr(v, d + 1) for v in (e.lower, e.upper, e.step)]
            return lambda c, env: slice(*(None if p is None else p(c, env) for p in parts))
        if isinstance(e, (_ast.Tuple, _ast.List)):
            if len(e.elts) > 1000:
                raise ProgramRefused(f"line {line}: display too long")
            items, kind = [self._expr(x, d + 1) for x in e.elts], tuple if isinstance(e, _ast.Tuple) else list

            def display(c, env):
                c.tick()
                return c.container(kind([f(c, env) for f in items]))
            return display
        raise ProgramRefused(f"line {line}: {type(e).__name__} refused")

    def _attribute(self, e, value):
        if not (isinstance(e.value, _ast.Name) and e.value.id in ("np", "math")):
            raise ProgramRefused(f"line {e.lineno}: attribute .{e.attr} refused (only np.<name> and math.<name>)")
        allowed = ALLOWED_NUMPY if e.value.id == "np" else ALLOWED_MATH
        if e.attr not in allowed or not hasattr(_np if e.value.id == "np" else _math, e.attr):
            raise ProgramRefused(f"line {e.lineno}: {e.value.id}.{e.attr} is not in the allowlist")
        if value and e.attr not in VALUE_ATTRIBUTES:
            raise ProgramRefused(f"line {e.lineno}: {e.value.id}.{e.attr} may only be called")
        return getattr(_np if e.value.id == "np" else _math, e.attr)

    def _call_node(self, e, d):
        f, line = e.func, e.lineno
        if any(isinstance(a, _ast.Starred) for a in e.args):
            raise ProgramRefused(f"line {line}: starred arguments refused")
        if len(e.args) + len(e.keywords) > 64:
            raise ProgramRefused(f"line {line}: too many arguments")
        # Python's order: the positional arguments, then the keyword ones, each left to right
        args = [self._expr(a, d + 1) for a in e.args]
        kws = []
        for k in e.keywords:
            if k.arg is None or "__" in k.arg or k.arg in REFUSED_KEYWORDS:
                raise ProgramRefused(f"line {line}: keyword argument {k.arg or '**'} refused")
            if k.arg == "dtype":
                dt = self._dtype(k.value)
                kws.append(("dtype", lambda c, env, dt=dt: dt))
            else:
                kws.append((k.arg, self._expr(k.value, d + 1)))
        if isinstance(f, _ast.Name):
            n = f.id
            if (self._scope is not None and n in self._scope) or n in self.module_names:
                raise ProgramRefused(f"line {line}: call through the name {n!r} refused")
            if n in self._function_names:
                def user(c, env):
                    c.tick()
                    a = [g(c, env) for g in args]
                    return self._call(c, n, a, {k: g(c, env) for k, g in kws})
                return user
            if n in _BUILTIN_NAMES:
                impl = _BUILTINS[n]

                def builtin(c, env):
                    c.tick()
                    a = [g(c, env) for g in args]
                    return c.made(impl(c, a, {k: g(c, env) for k, g in kws}))
                return builtin
            raise ProgramRefused(f"line {line}: call of {n!r} refused")
        if isinstance(f, _ast.Attribute):
            fn = self._attribute(f, value=False)
            name = f.attr
            if f.value.id == "np":
                if len(args) > numpy_max_positional(name):
                    raise ProgramRefused(f"line {line}: too many positional arguments for np.{name}")

                def numpy_call(c, env):
                    c.tick()
                    a = [g(c, env) for g in args]
                    kw = {k: g(c, env) for k, g in kws}
                    for v in a:
                        c.depth_of(v)
                    c.tick(_python_loop(name, a, kw))
                    c.charge(_predict(name, a, kw))
                    if name == "dot" and len(a) == 2:
                        c.spend(_product_work(a[0], a[1]))
                    if any(_big_int(v) for v in a) or any(_big_int(v) for v in kw.values()):
                        raise ProgramRefused(f"np.{name} of integers of more than {MAX_NUMPY_INT_BITS} bits refused "
                                             "(numpy would compute on Python objects)")
                    return c.made(fn(*a, **kw))
                return numpy_call
            impl = _MATH_IMPL.get(name)

            def math_call(c, env):
                c.tick()
                a = [g(c, env) for g in args]
                kw = {k: g(c, env) for k, g in kws}
                if impl is not None:
                    return c.made(impl(c, a, kw))
                return c.made(fn(*a, **kw))
            return math_call
        raise ProgramRefused(f"line {line}: only named functions may be called")

    @staticmethod
    def _dtype(node):
        if isinstance(node, _ast.Name) and node.id in _DTYPES:
            return _DTYPES[node.id]
        if isinstance(node, _ast.Attribute) and isinstance(node.value, _ast.Name) and node.value.id == "np" \
                and node.attr in ("float64", "int64"):
            return getattr(_np, node.attr)
        raise ProgramRefused("dtype must be float, int, bool, np.float64 or np.int64")


def _nothing(c):
    return None


def _nothing2(c, env):
    return None


def _docstring(s):
    return isinstance(s, _ast.Expr) and isinstance(s.value, _ast.Constant) and isinstance(s.value.value, str)


# ---------------------------------------------------------------------- builtins, with Python's meaning
def _short(v):
    """A bounded text for an error message (the key of a KeyError, say)."""
    if isinstance(v, str):
        return v if len(v) <= 200 else v[:200] + "..."
    if isinstance(v, (int, float, bool, _np.generic)) and not (type(v) is int and v.bit_length() > 256):
        return v
    return f"<{type(v).__name__}>"


def _b_sum(c, a, kw):
    if not 1 <= len(a) <= 2:
        raise TypeError(f"sum() takes at most 2 arguments ({len(a)} given)" if a else
                        "sum() takes at least 1 positional argument (0 given)")
    for k in kw:
        if k != "start":
            raise TypeError(f"sum() got an unexpected keyword argument {k!r}")
        if len(a) > 1:
            raise TypeError("sum() got multiple values for argument 'start'")
    total = a[1] if len(a) > 1 else kw.get("start", 0)
    if isinstance(total, str):
        raise TypeError("sum() can't sum strings [use ''.join(seq) instead]")
    for item in c.counted(a[0]):
        total = c.arith(_ast.Add, total, item)
    return total


def _b_prod(c, a, kw):
    if len(a) != 1:
        raise TypeError(f"prod() takes exactly 1 positional argument ({len(a)} given)")
    for k in kw:
        if k != "start":
            raise TypeError(f"prod() got an unexpected keyword argument {k!r}")
    total = kw.get("start", 1)
    for item in c.counted(a[0]):
        total = c.arith(_ast.Mult, total, item)
    return total


def _b_pow(c, a, kw):
    a = list(a)
    for i, k in enumerate(("base", "exp", "mod")):  # Python's keywords, in their places
        if k in kw:
            if len(a) > i:
                raise TypeError(f"argument for pow() given by name ('{k}') and position ({i + 1})")
            if len(a) < i:
                raise TypeError("pow() missing required argument")
            a.append(kw.pop(k))
    if kw:
        raise TypeError(f"pow() got an unexpected keyword argument {next(iter(kw))!r}")
    if len(a) == 3 and a[2] is None:
        a = a[:2]
    if len(a) == 2:
        return c.arith(_ast.Pow, a[0], a[1])
    if len(a) == 3 and all(isinstance(v, int) for v in a):
        return pow(*a)
    raise TypeError("pow() takes 2 numbers (or 3 ints)")


def _b_range(c, a, kw):
    # a range holds three numbers: what it costs is iterating it (a step per item) or making a list of it
    return range(*a, **kw)


def _b_isinstance(c, a, kw):
    if len(a) != 2 or kw:
        raise TypeError("isinstance expected 2 arguments")
    kinds = a[1] if isinstance(a[1], tuple) else (a[1],)
    if not all(k in (_np.float64, _np.int64) for k in kinds):
        raise ProgramRefused("isinstance takes np.float64 / np.int64 only")
    return isinstance(a[0], a[1])


def _consuming(fn):
    """A builtin that walks an iterable argument: one step per item."""
    def impl(c, a, kw):
        if len(a) == 1:
            return fn(c.counted(a[0]), **kw)
        return fn(*a, **kw)
    return impl


def _materialising(fn):
    def impl(c, a, kw):
        if len(a) > 1:
            raise TypeError(f"{fn.__name__}() takes at most 1 argument")
        if not a:
            return fn(**kw)
        items = c.materialise(a[0])
        if fn is sorted:  # comparisons walk the items: n log n of them
            c.spend(PY_UNIT * _units(items) * max(1, len(items).bit_length()))
        return fn(items, **kw)
    return impl


def _b_round(c, a, kw):
    nd = _index(a[1] if len(a) > 1 else kw.get("ndigits"))
    if isinstance(a[0] if a else None, int) and nd is not None and nd < -1300:
        raise ProgramRefused("round() of an integer to more than 1,300 digits refused")
    v = round(*a, **kw)
    if isinstance(v, _np.ndarray):
        c.charge(v.size)
    return v


def _b_int(c, a, kw):
    if a and isinstance(a[0], str) and len(a[0]) > MAX_INT_STR:
        raise ProgramRefused(f"int() of a string of more than {MAX_INT_STR} characters refused")
    return int(*a, **kw)


def _consuming_seq(fn):
    """min/max/any/all: one step per item, and sequences compared element by element are charged."""
    def impl(c, a, kw):
        for v in a:
            c.depth_of(v)
        if len(a) == 1:
            if isinstance(a[0], (list, tuple)):
                c.spend(PY_UNIT * _units(a[0]))
            return fn(c.counted(a[0]), **kw)
        if any(isinstance(v, (list, tuple, str, range)) for v in a):
            c.spend(PY_UNIT * sum(_units(v) for v in a))
        return fn(*a, **kw)
    return impl


def _plain(fn):
    return lambda c, a, kw: fn(*a, **kw)


def _sized(fn):
    def impl(c, a, kw):
        v = fn(*a, **kw)
        if isinstance(v, _np.ndarray):
            c.charge(v.size)
        return v
    return impl


_BUILTINS = {
    "abs": _sized(abs), "all": _consuming_seq(all), "any": _consuming_seq(any), "bool": _plain(bool),
    "enumerate": _plain(enumerate), "float": _plain(float), "int": _b_int, "isinstance": _b_isinstance,
    "len": _plain(len), "list": _materialising(list), "max": _consuming_seq(max), "min": _consuming_seq(min),
    "pow": _b_pow, "range": _b_range, "reversed": _plain(reversed), "round": _b_round,
    "sorted": _materialising(sorted), "sum": _b_sum, "tuple": _materialising(tuple), "zip": _plain(zip),
}
_BUILTIN_NAMES = frozenset(_BUILTINS)
_MATH_IMPL = {"prod": _b_prod, "fsum": _consuming(_math.fsum)}


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
