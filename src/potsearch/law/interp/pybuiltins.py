"""The builtins a candidate program may call, with Python's meaning and the evaluator's bounds (each
charged for the work it does). Embedded in best_potential.py (``potsearch.law.interp``).
"""
# >>> embed interp
import ast as _ast
import math as _math

import numpy as _np
# <<< embed interp

from potsearch.law.interp.policy import MAX_INT_STR, PY_UNIT, ProgramRefused, as_index, work_units

# >>> embed interp
# ---------------------------------------------------------------------- builtins, with Python's meaning
def short_repr(v):
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
            c.spend(PY_UNIT * work_units(items) * max(1, len(items).bit_length()))
        return fn(items, **kw)
    return impl


def _b_round(c, a, kw):
    nd = as_index(a[1] if len(a) > 1 else kw.get("ndigits"))
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
                c.spend(PY_UNIT * work_units(a[0]))
            return fn(c.counted(a[0]), **kw)
        if any(isinstance(v, (list, tuple, str, range)) for v in a):
            c.spend(PY_UNIT * sum(work_units(v) for v in a))
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


BUILTINS = {
    "abs": _sized(abs), "all": _consuming_seq(all), "any": _consuming_seq(any), "bool": _plain(bool),
    "enumerate": _plain(enumerate), "float": _plain(float), "int": _b_int, "isinstance": _b_isinstance,
    "len": _plain(len), "list": _materialising(list), "max": _consuming_seq(max), "min": _consuming_seq(min),
    "pow": _b_pow, "range": _b_range, "reversed": _plain(reversed), "round": _b_round,
    "sorted": _materialising(sorted), "sum": _b_sum, "tuple": _materialising(tuple), "zip": _plain(zip),
}
BUILTIN_NAMES = frozenset(BUILTINS)
MATH_IMPL = {"prod": _b_prod, "fsum": _consuming(_math.fsum)}
# <<< embed interp
