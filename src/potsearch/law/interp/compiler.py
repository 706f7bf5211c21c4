"""The evaluator's compiler: each statement and expression of a candidate program becomes a closure
that evaluates it, counting steps and work and refusing what is outside the evaluated subset.
Embedded in best_potential.py (``potsearch.law.interp``).
"""
# >>> embed interp
import ast as _ast
import math as _math

import numpy as _np
# <<< embed interp

from potsearch.law.interp.policy import (
    ALLOWED_MATH, ALLOWED_NUMPY, MAX_INT_BITS, MAX_NESTING, MAX_NUMPY_INT_BITS, REFUSED_KEYWORDS, VALUE_ATTRIBUTES,
    BINARY, BRK, CNT, COMPARE, DTYPES, INPLACE, ITERATORS, RET, SUBSCRIPTABLE, UNARY, ProgramRefused,
    big_int, broadcast_units, predict, product_work, python_loop, work_units, numpy_max_positional
)
from potsearch.law.interp.pybuiltins import BUILTIN_NAMES, BUILTINS, MATH_IMPL, short_repr

# >>> embed interp
class Compiler:
    """Statements and expressions of a program compiled to closures ``run(c, env)`` (``c``: the
    call's state, :class:`CallBudget`; ``env``: the local names). A base of :class:`Program`, which holds
    the module-level state these methods read (``_scope``, ``_loops``, ``_frames``, the names)."""

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
            if not isinstance(s.target, _ast.Name) or type(s.op) not in BINARY:
                raise ProgramRefused(f"line {line}: augmented assignment to a plain name only")
            load, store, value, op = self._load(s.target), self._store(s.target), self._expr(s.value, d + 1), type(s.op)

            def aug_assign(c, env):
                c.tick()
                cur = load(c, env)
                store(c, env, c.arith(op, cur, value(c, env), INPLACE))
            return aug_assign
        if isinstance(s, _ast.Return):
            if self._scope is None:
                raise ProgramRefused(f"line {line}: return outside a function")
            if s.value is None:
                return lambda c, env: (RET, None)
            value = self._expr(s.value, d + 1)

            def ret(c, env):
                c.tick()
                return RET, value(c, env)
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
            if not (isinstance(it, _ast.Call) and isinstance(it.func, _ast.Name) and it.func.id in ITERATORS):
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
                        if r is BRK:
                            break
                        if r is CNT:
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
            sig = BRK if isinstance(s, _ast.Break) else CNT
            return lambda c, env: sig
        if isinstance(s, _ast.Pass) or docstring_of(s):
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
        if n in ("np", "math") or n in self._function_names or n in BUILTIN_NAMES:
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
        if isinstance(e, _ast.BinOp) and type(e.op) in BINARY:
            left, right, op = self._expr(e.left, d + 1), self._expr(e.right, d + 1), type(e.op)

            def binop(c, env):
                c.steps += 1
                if c.steps > c.limit:
                    c.check()
                return c.arith(op, left(c, env), right(c, env))
            return binop
        if isinstance(e, _ast.UnaryOp) and type(e.op) in UNARY:
            operand, fn = self._expr(e.operand, d + 1), UNARY[type(e.op)]

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
                if type(op) not in COMPARE:
                    raise ProgramRefused(f"line {line}: comparison {type(op).__name__} refused (use == / !=)")
            first = self._expr(e.left, d + 1)
            rest = [(COMPARE[type(op)], self._expr(x, d + 1)) for op, x in zip(e.ops, e.comparators)]

            def compare(c, env):
                c.tick()
                left = first(c, env)
                result = True
                for i, (fn, right_fn) in enumerate(rest):
                    right = right_fn(c, env)
                    if isinstance(left, _np.ndarray) or isinstance(right, _np.ndarray):
                        c.charge(broadcast_units((left, right)))
                        if big_int(left) or big_int(right):
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
                if not isinstance(o, SUBSCRIPTABLE):
                    raise ProgramRefused(f"line {line}: subscript of {type(o).__name__} refused")
                i = index(c, env)
                if isinstance(o, _np.ndarray) and isinstance(i, (_np.ndarray, list, tuple)):
                    c.charge(work_units(i) if not isinstance(i, tuple) else broadcast_units(i))
                elif type(o) is dict:
                    c.depth_of(i)
                    try:
                        return o[i]
                    except KeyError:  # the key's text, bounded (a key can be a huge tuple or string)
                        raise KeyError(short_repr(i)) from None
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
            if n in BUILTIN_NAMES:
                impl = BUILTINS[n]

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
                    c.tick(python_loop(name, a, kw))
                    c.charge(predict(name, a, kw))
                    if name == "dot" and len(a) == 2:
                        c.spend(product_work(a[0], a[1]))
                    if any(big_int(v) for v in a) or any(big_int(v) for v in kw.values()):
                        raise ProgramRefused(f"np.{name} of integers of more than {MAX_NUMPY_INT_BITS} bits refused "
                                             "(numpy would compute on Python objects)")
                    return c.made(fn(*a, **kw))
                return numpy_call
            impl = MATH_IMPL.get(name)

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
        if isinstance(node, _ast.Name) and node.id in DTYPES:
            return DTYPES[node.id]
        if isinstance(node, _ast.Attribute) and isinstance(node.value, _ast.Name) and node.value.id == "np" \
                and node.attr in ("float64", "int64"):
            return getattr(_np, node.attr)
        raise ProgramRefused("dtype must be float, int, bool, np.float64 or np.int64")


def no_op(c):
    return None


def _nothing2(c, env):
    return None


def docstring_of(s):
    return isinstance(s, _ast.Expr) and isinstance(s.value, _ast.Constant) and isinstance(s.value.value, str)
# <<< embed interp
