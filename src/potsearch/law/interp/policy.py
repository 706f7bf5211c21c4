"""What a candidate program may use and how much one call may do: the allowlists of numpy, math
and builtin names, the numpy argument policy, the bounds (``MAX_*``), the work a numpy call will do
(predicted before it runs), the state of one call (:class:`CallBudget`) and the process settings it is
isolated from (:class:`Isolated`). Embedded in best_potential.py (``potsearch.law.interp``).
"""
# >>> embed interp
import ast as _ast
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


BINARY = {
    _ast.Add: _operator.add, _ast.Sub: _operator.sub, _ast.Mult: _operator.mul,
    _ast.Div: _operator.truediv, _ast.FloorDiv: _operator.floordiv, _ast.Mod: _operator.mod,
    _ast.Pow: _operator.pow, _ast.MatMult: _operator.matmul, _ast.BitAnd: _operator.and_,
    _ast.BitOr: _operator.or_, _ast.BitXor: _operator.xor, _ast.LShift: _operator.lshift,
    _ast.RShift: _operator.rshift,
}
# ``a += b`` updates an array (or a list) in place, as in Python: the same aliasing semantics
INPLACE = {
    _ast.Add: _operator.iadd, _ast.Sub: _operator.isub, _ast.Mult: _operator.imul,
    _ast.Div: _operator.itruediv, _ast.FloorDiv: _operator.ifloordiv, _ast.Mod: _operator.imod,
    _ast.Pow: _operator.ipow, _ast.MatMult: _operator.imatmul, _ast.BitAnd: _operator.iand,
    _ast.BitOr: _operator.ior, _ast.BitXor: _operator.ixor, _ast.LShift: _operator.ilshift,
    _ast.RShift: _operator.irshift,
}
UNARY = {_ast.UAdd: _operator.pos, _ast.USub: _operator.neg, _ast.Not: _operator.not_,
          _ast.Invert: _operator.invert}
# no ``is`` / ``is not``: object identity is an implementation detail (use ==)
COMPARE = {
    _ast.Eq: _operator.eq, _ast.NotEq: _operator.ne, _ast.Lt: _operator.lt, _ast.LtE: _operator.le,
    _ast.Gt: _operator.gt, _ast.GtE: _operator.ge, _ast.In: lambda a, b: a in b,
    _ast.NotIn: lambda a, b: a not in b,
}
DTYPES = {"float": float, "int": int, "bool": bool}
ITERATORS = ("range", "enumerate", "zip", "reversed")
SUBSCRIPTABLE = (dict, _np.ndarray, list, tuple, _np.generic, range, str)
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
TYPE_NAMES = frozenset({"float", "int", "bool", "str", "dict", "list", "tuple", "complex", "object",
                         "type", "set", "frozenset", "bytes", "range", "slice"})  # annotations only

RET, BRK, CNT = "return", "break", "continue"


_MEMO = {}  # id -> (list or tuple, units): containers walked in the current call (emptied around each call)
PY_UNIT = 16  # work of one element walked by Python's own loops (comparisons, searches, sorts) in numpy units


def work_units(v):
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
        total += work_units(item) if isinstance(item, (list, tuple, _np.ndarray, str, range)) else 1
    if len(v) > 8:
        _MEMO[id(v)] = (v, total)
    return total


def as_index(v):
    """``v`` as numpy reads a size (ints, bools, numpy integers, 0-d integer arrays), else None."""
    try:
        return _operator.index(v)
    except (TypeError, ValueError):
        return None


_UNKNOWN = 1 << 62  # a size that cannot be read: refused as too large (numpy would refuse it or make it)


def _shape_size(shape):
    i = as_index(shape)
    if i is not None:
        return max(i, 0)
    if isinstance(shape, _np.ndarray):
        if shape.size > 64:
            return _UNKNOWN
        shape = shape.tolist()
    if isinstance(shape, (tuple, list, range)) and len(shape) <= 64:
        dims = [as_index(s) for s in shape]
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


def broadcast_units(args):
    """Elements of the broadcast of the array arguments (or of the largest argument, when they do
    not broadcast: numpy then raises)."""
    shapes, biggest = [], 0
    for a in args:
        if isinstance(a, (_np.ndarray, list, tuple, range)):
            shapes.append(_shape_of(a))
            biggest = max(biggest, a.size if isinstance(a, _np.ndarray) else work_units(a))
        elif isinstance(a, str):
            biggest = max(biggest, work_units(a))
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


def predict(name, args, kwargs):
    """Elements a call ``np.<name>(*args, **kwargs)`` makes (and the work it does), before it runs."""
    if name in ("zeros", "ones", "full"):
        n = _shape_size(_arg(args, kwargs, 0, "shape", 0))
        return n * (max(work_units(_arg(args, kwargs, 1, "fill_value", 0)), 1) if name == "full" else 1)
    if name in ("zeros_like", "ones_like", "full_like"):
        shape = kwargs.get("shape")
        n = _shape_size(shape) if shape is not None else work_units(_arg(args, kwargs, 0, "a"))
        return n * (max(work_units(_arg(args, kwargs, 1, "fill_value", 0)), 1) if name == "full_like" else 1)
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
        return n * max(broadcast_units([_arg(args, kwargs, 0, "start", 0), _arg(args, kwargs, 1, "stop", 0)]), 1)
    if name == "tile":
        return work_units(_arg(args, kwargs, 0, "A")) * max(_shape_size(_arg(args, kwargs, 1, "reps", 1)), 1)
    if name == "broadcast_to":
        return _shape_size(_arg(args, kwargs, 1, "shape", 0))
    if name in ("concatenate", "stack", "column_stack", "array", "asarray", "atleast_1d"):
        return sum(work_units(a) for a in args[:1]) + 1
    if name == "dot" and len(args) == 2:
        return product_work(args[0], args[1])
    if name == "where" and len(args) == 1 and not kwargs:  # one index array per dimension
        shape = _shape_of(args[0])
        return _prod(shape) * max(len(shape), 1)
    if name == "polyval" and len(args) == 2:
        return work_units(args[0]) * work_units(args[1])
    if name == "diff":
        n = as_index(_arg(args, kwargs, 1, "n", 1))
        reps = min(max(n, 1), MAX_RANGE) if n is not None else 1
        return work_units(_arg(args, kwargs, 0, "a")) * reps
    return broadcast_units(list(args) + list(kwargs.values()))


def python_loop(name, args, kwargs):
    """Turns of the Python loop inside some numpy functions (counted as evaluation steps): np.diff
    loops ``n`` times, np.polyval once per coefficient, stack/concatenate once per array."""
    if name == "diff":
        n = as_index(_arg(args, kwargs, 1, "n", 1))
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


def product_work(a, b):
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


def big_int(v, depth=0):
    """Is there a Python integer numpy cannot hold in 64 bits in ``v`` (it would make object arrays)?"""
    if type(v) is int:
        return v.bit_length() > MAX_NUMPY_INT_BITS
    if isinstance(v, (list, tuple)) and depth < MAX_CONTAINER_DEPTH:
        return any(big_int(e, depth + 1) for e in v)
    return False


def read_only(v):
    if isinstance(v, _np.ndarray):
        w = v.view()
        w.flags.writeable = False
        return w
    if isinstance(v, dict):
        return {k: read_only(a) for k, a in v.items()}
    return v


class CallBudget:
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
            ua, ub = work_units(a), work_units(b)
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

    def arith(self, op, a, b, table=BINARY):
        if op is _ast.MatMult:
            self.spend(product_work(a, b))
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
                    n = broadcast_units((a, b))
                    if big_int(a) or big_int(b):
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
        if table is INPLACE and type(a) is list:  # the list changes in place: what was known of it goes
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


class Isolated:
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
# <<< embed interp
