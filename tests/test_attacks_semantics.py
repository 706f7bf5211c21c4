"""Attacks on the one-semantics evaluator (potsearch.law.interp, embedded in best_potential.py).

Every program here is ACCEPTED by the allowlist (asserted), and each test asserts a guarantee:
(1) the sandbox and the file compute the same values or refuse alike, and follow Python;
(2) purity: nothing survives a call; (3) every call is bounded (steps, 60 s, one array <= 1e7
elements, total work <= 2e8 units, ints <= 4096 bits, sequences <= 1e6, depth, nesting), past a
bound ProgramRefused with one line; (4) no model text runs as Python.

A test FAILS when the attack breaks its guarantee. Bound tests that would take minutes at the
default 60 s run the shipped file's own ``Program`` with ``max_seconds`` lowered (same code path,
only the deadline is shorter) and memory-heavy ones under an address-space limit in a subprocess,
so the suite stays short and never exhausts the machine.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from potsearch.search.outputs import write_best_potential
from potsearch.sandbox import check_source

from semantics_helpers import (EXACT, P, X, _accepted, _best, _file_result, _python, _same,  # noqa: F401
                               _sandbox_result, _vals, pool, shipped, shipped_path)


def _both(pool, mod, src):
    s1, s2 = _sandbox_result(pool, src), _sandbox_result(pool, src)
    f1, f2 = _file_result(mod, src), _file_result(mod, src)
    assert s1 == s2, ("sandbox changed between calls", s1, s2)
    assert f1 == f2, ("file changed between calls", f1, f2)
    return s1, f1


_RUNNER = r'''
import importlib.util, json, resource, sys, time
import numpy as np
spec = importlib.util.spec_from_file_location("bp", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
cfg = json.loads(sys.stdin.read())
if cfg["mem_mb"]:
    vm = int(open("/proc/self/status").read().split("VmSize:")[1].split()[0]) * 1024
    lim = vm + (cfg["mem_mb"] << 20)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
x = {"a": np.array([1.0, 2.5, 4.0, 7.0]), "b": np.array([0.5, -1.0, 3.0, 2.0])}
p = np.array([0.7, -1.3, 2.0])
for src in cfg["sources"]:
    t = time.monotonic()
    try:
        v = mod.Program(src, max_seconds=cfg["max_seconds"]).call("potential", dict(x), p)
        r = {"kind": "value", "msg": str(np.asarray(v, dtype=float).ravel()[:4].tolist())}
    except mod.ProgramRefused as e:
        r = {"kind": "refused", "msg": str(e)[:300]}
    except MemoryError as e:
        r = {"kind": "MemoryError", "msg": str(e)[:300]}
    except Exception as e:
        r = {"kind": type(e).__name__, "msg": str(e)[:300]}
    r["seconds"] = round(time.monotonic() - t, 3)
    print(json.dumps(r), flush=True)
'''


def _limited(shipped_path, sources, *, max_seconds=60.0, mem_mb=0, timeout=60.0):
    """Run the shipped file's Program on each source in a fresh subprocess (optionally under an
    address-space limit of ``mem_mb`` above its size after imports); a source still running at
    ``timeout`` is reported as kind "timeout"."""
    if isinstance(sources, str):
        sources = [sources]
    for s in sources:
        _accepted(s)
    cfg = json.dumps({"sources": list(sources), "max_seconds": max_seconds, "mem_mb": mem_mb})
    try:
        out = subprocess.run([sys.executable, "-c", _RUNNER, str(shipped_path)], input=cfg, capture_output=True,
                             text=True, timeout=timeout).stdout
    except subprocess.TimeoutExpired as e:
        out = e.stdout or ""
        out = out.decode() if isinstance(out, bytes) else out
    res = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    while len(res) < len(sources):
        res.append({"kind": "timeout" if len(res) == len([ln for ln in out.splitlines() if ln.startswith("{")])
                    else "not run", "msg": f"still running after {timeout}s", "seconds": timeout})
    return res[0] if len(res) == 1 else res


def _cli(tmp_path, src, words=("HELLO",), params=(), timeout=60, mem_mb=0):
    """``python best_potential.py WORD...`` as the user runs it."""
    path = tmp_path / "best_potential.py"
    write_best_potential(path, _best(src, params), "word", "run", 0.3, "sid")
    pre = None
    if mem_mb:
        def pre():  # an address-space cap: only so the test cannot exhaust the machine
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))
    return subprocess.run([sys.executable, str(path), *words], capture_output=True, text=True, timeout=timeout,
                          cwd=tmp_path, preexec_fn=pre)


def _one_line_exit_2(out):
    assert out.returncode == 2, (out.returncode, out.stderr[-1500:])
    assert "Traceback" not in out.stderr, out.stderr[-1500:]
    assert out.stderr.strip().count("\n") == 0, out.stderr[-1500:]


# =============================================================================================
# HELD: semantics identical in the sandbox, the file and Python; nothing survives a call
# =============================================================================================
SEMANTICS = {
    "chained_compare": "def potential(x, p):\n    a = 1 < 2 < 3 > 2 == 2 != 3\n    b = 3 < 2 < (1 // 0)\n"
                       "    return (a + b) * x['a']\n",
    "neg_zero": "def potential(x, p):\n    z = -0.0\n    return math.copysign(1.0, z) + math.copysign(1.0, 0.0 * -1) + "
                "1.0 / -math.inf * 0 + x['a']\n",
    "nan_order": "def potential(x, p):\n    n = math.nan\n    a = max(n, 1.0)\n    b = max(1.0, n)\n"
                 "    c = sorted([3.0, n, 1.0, 2.0])\n    d = min([n, 0.5])\n"
                 "    return np.array([float(a), float(b), c[0], c[1], c[3], d]) * 1.0\n",
    "banker_round": "def potential(x, p):\n    return round(2.5) + round(3.5) + round(-0.5) + round(2.675, 2) + "
                    "round(np.float64(0.5)) + round(1250, -2) + x['a']\n",
    "bool_arith": "def potential(x, p):\n    t = True\n    return (t + t * 3 - False ** 0 + (t << 3) + (t ^ t) + -t) * x['a']\n",
    "int_edges": "def potential(x, p):\n    n = 1200\n    big = 10 ** n // 7\n    k = 3000\n    m = pow(3, 2 ** k, 10 ** 9 + 7)\n"
                 "    return (big % 1000 + m % 97 + 7 // -2 + -7 % 3 + 2 ** -1 + int(-2.5) + math.floor(-0.5)) * x['a']\n",
    "int_float_mix": "def potential(x, p):\n    n = 64\n    a = 2 ** n + 1 - 2 ** n\n    b = float(2 ** 53 + 1) - 2 ** 53\n"
                     "    return (a + b + (10 ** 18 + 1) / 10 ** 18) * x['a']\n",
    "for_else_break": "def potential(x, p):\n    s = 0\n    for i in range(5):\n        for j in range(5):\n"
                      "            if j == i:\n                break\n            s += j\n        else:\n            s += 100\n"
                      "        if i == 3:\n            continue\n        s += 1\n    else:\n        s += 1000\n"
                      "    return s * x['a']\n",
    "unpacking": "def potential(x, p):\n    a, (b, c) = 1.0, (2.0, 3.0)\n    a, b = b, a\n    [d, e] = x['a'][:2]\n"
                 "    f, g = enumerate(x['b'][1:3])\n    return a * 100 + b * 10 + c + d + e + f[0] + g[1] + x['a']\n",
    "unpack_error": "def potential(x, p):\n    a, b = x['a']\n    return a + x['a']\n",
    "list_alias_iadd": "def potential(x, p):\n    l = [1.0]\n    m = l\n    m += [2.0]\n    m += (3.0,)\n"
                       "    t = (1.0,)\n    u = t\n    u += (2.0,)\n    return (len(l) * 10 + len(t)) * x['a']\n",
    "array_alias_iadd": "def potential(x, p):\n    v = x['a'] * 1.0\n    w = v\n    w += 1.0\n    w *= 2\n    return v\n",
    "default_from_constant": "C = 2.0\nD = [C, C * 3]\ndef h(v, c=C * 2, d=D):\n    d += [c]\n    return v * c + len(d)\n"
                             "def potential(x, p):\n    return h(x['a']) + h(x['a'], 1.0) + len(D)\n",
    "module_list_mutated": "L = [0.0]\ndef potential(x, p):\n    m = L\n    m += [1.0]\n    return len(L) * x['a']\n",
    "module_array_mutated": "A = np.zeros(4)\ndef potential(x, p):\n    b = A\n    b += x['a']\n    return A * 1.0\n",
    "dict_ior": "def potential(x, p):\n    y = x\n    y |= [('zz', x['a'] * 2.0)]\n    return len(x) + x['zz']\n",
    "readonly_slice": "def potential(x, p):\n    v = x['a'][:]\n    v += 1.0\n    return v\n",
    "readonly_asarray": "def potential(x, p):\n    q = np.asarray(p)\n    q += 1.0\n    return q[0] * x['a']\n",
    "copy_is_writable": "def potential(x, p):\n    q = np.array(p)\n    q += 1.0\n    v = np.array(x['a'])\n    v *= q[0]\n"
                        "    return v\n",
    "short_circuit": "def potential(x, p):\n    a = 0 and 1 // 0\n    b = [] or (0,) or 1 // 0\n    c = 1 if len(b) else 1 // 0\n"
                     "    return (a + len(b) + c) * x['a']\n",
    "np_scalar_types": "def potential(x, p):\n    a = np.float64(1) / 0\n    b = isinstance(p[0], np.float64)\n"
                        "    c = np.int64(7) // np.int64(-2)\n    d = np.int64(2) ** 62 + np.int64(2) ** 62\n"
                        "    return np.array([a, b, c, float(d)]) * 1.0\n",
    "zero_division": "def potential(x, p):\n    return 1 / 0 + x['a']\n",
    "strings": "def potential(x, p):\n    s = 'ab' * 3 + 'c'\n    return (len(s) + ('ba' in s) + (s[::-1][0] == 'c') + len(sorted(x))) * x['a']\n",
    "slices": "def potential(x, p):\n    r = range(10)[::-3]\n    return x['a'][::-1] + x['a'][-1:][0] + r[1] + len(r)\n",
    "builtins": "def potential(x, p):\n    a = all([]) + any(x['a'] > 3) + sum(x['a']) + sum([[1.0]], [])[0]\n"
                "    b = math.fsum([0.1] * 10) + math.prod([2, 3]) + len(list(zip(x['a'], x['b'])))\n"
                "    c = max([], default=-1) + min(3, 1, 2) + abs(-2) + len(tuple(reversed(x['a'])))\n"
                "    return (a + b + c) * x['a']\n",
    "unbound_local": "C = 1.0\ndef potential(x, p):\n    C += 1.0\n    return C * x['a']\n",
    "keyword_call": "def h(a, b=2.0, c=3.0):\n    return a * 100 + b * 10 + c\n"
                    "def potential(x, p):\n    return h(1.0, c=5.0) + h(b=1.0, a=2.0) + x['a']\n",
    "matmul_small": "def potential(x, p):\n    return (x['a'] @ x['b']) + x['a'] @ np.ones((4, 4))\n",
}


@pytest.mark.parametrize("name", sorted(SEMANTICS))
def test_held_semantics_sandbox_file_and_python_agree(pool, shipped, name):
    """Operator corner cases, scalar types, aliasing, defaults, mutation of module constants and of
    read-only inputs: the sandbox, the file and Python give the same value or the same error, on two
    calls in a row (so nothing survives a call)."""
    src = SEMANTICS[name]
    _accepted(src)
    s, f = _both(pool, shipped, src)
    assert _same(s, f), (s, f)
    assert _same(f, _python(src)), (f, _python(src))


@pytest.mark.parametrize("src", [
    "def potential(x, p):\n    x['a'][0:2] += 1\n    return x['a']\n",
    "def potential(x, p):\n    v = x['a']\n    v[0] = 1.0\n    return v\n",
    "def f(v):\n    return g(v)\ndef g(v):\n    return f(v)\ndef potential(x, p):\n    return f(x['a'])\n",
    "def potential(x, p):\n    np.add.at(x['a'], 0, 1.0)\n    return x['a']\n",
    "def potential(x, p):\n    return np.add(x['a'], 1.0, x['a'])\n",
    "def potential(x, p):\n    return x.get('a')\n",
    "def potential(x, p):\n    return p.base\n",
    "def potential(x, p, f=np.multiply):\n    return x['a']\n",
    "def potential(x, p):\n    return np.asarray(x['a'], copy=False)\n",
    "def potential(x, p):\n    return x['a'] if (p is None) else x['a']\n",
])
def test_held_allowlist_refuses_writes_recursion_and_attributes(src):
    assert check_source(src), src


# =============================================================================================
# BREAK (1): the evaluator does not follow Python
# =============================================================================================
@pytest.mark.parametrize("src", [
    # Python: TypeError ('bogus' is an invalid keyword argument); interp silently ignores it
    "def potential(x, p):\n    return sum([1.0, 2.0], bogus=5) + x['a']\n",
    # Python: TypeError (sum() takes at most 2 arguments / 'start' given twice); interp ignores start=
    "def potential(x, p):\n    return sum([1.0, 2.0], 1.0, start=2.0) + x['a']\n",
    "def potential(x, p):\n    return math.prod([1.0, 2.0], bogus=2.0) + x['a']\n",
    # Python: pow(True, 2, 3) == 1; interp: TypeError "pow() takes 2 numbers (or 3 ints)"
    "def potential(x, p):\n    return pow(True, 2, 3) + x['a']\n",
    # Python evaluates parameter/return and module-level annotations: NameError; interp ignores them
    # (documented as "stripped", but then the evaluator computes where Python fails)
    "def potential(x: undefined_type, p):\n    return x['a']\n",
    "C: undefined_type = 2.0\ndef potential(x, p):\n    return C * x['a']\n",
])
def test_break_evaluator_follows_python(shipped, src):
    _accepted(src)
    ours, ref = _file_result(shipped, src), _python(src)
    assert _same(ours, ref), (ours, ref)


@pytest.mark.parametrize("body", [
    "p[0] * x['length'] / np.max(x['length'])",
    "p[0] * (x['length'] - np.mean(x['length']))",
    "p[0] * np.sort(x['length'])",
    "p[0] * x['length'] * len(x['length'])",
    "p[0] * x['length'] + (1.0 if len(x['length']) == 1 else 0.0)",
    "p[0] * np.cumsum(x['length'])",
])
def test_law_of_one_state_depends_on_no_other_state(pool, body):
    """The search evaluates a candidate on the whole state table; best_potential.py's command line
    evaluates one state at a time. A program whose value for a state depends on the other states
    evaluated with it (a reduction over states, the table's size or order) is not a law of the state:
    scoring rejects it, so it is never stored with a score, selected or shipped."""
    from potsearch.law.scoring import Edges, ScoringData
    from potsearch.law.features import feature_table

    src = "N_PARAMS = 1\ndef potential(x, p):\n    return " + body + "\n"
    _accepted(src)
    words = ["HELLO", "HI", "WIZARDS", "BUZZY", "TURKEY", "PERSONAL"]
    table = feature_table("word", words)
    e = Edges(np.array([0, 1, 2, 3, 4, 5, 1]), np.array([1, 2, 3, 4, 5, 0, 0]), np.ones(7), len(words))
    data = ScoringData(features=table, n_states=len(words), train=e, heldout=e)
    r = pool.run(src, task="potsearch.law.scoring:score_program", payload=dict(data.payload(), source=src))
    assert r.ok, r
    assert r.value["train_action"] is None and "not a law of the state" in (r.value["error"] or ""), r.value
    honest = "N_PARAMS = 1\ndef potential(x, p):\n    return p[0] * x['length']\n"
    h = pool.run(honest, task="potsearch.law.scoring:score_program", payload=dict(data.payload(), source=honest))
    assert h.ok and h.value["error"] is None, h


# =============================================================================================
# BREAK (3): time bounds. The deadline is only looked at every 4,096 steps (and never in a call
# of fewer steps), and some single steps cost unbounded time. Run with max_seconds lowered to 0.5
# (the same code; at the default 60 s each program below runs for many minutes or hours).
# =============================================================================================
TIME_ATTACKS = {
    # a loop whose body is `pass` (or `continue`) counts no step per item: 10**10 items (~30 min),
    # about 1,000 steps
    "loop_of_pass": "def potential(x, p):\n    for i in range(1000):\n        for j in range(10**7):\n"
                    "            pass\n    return x['a']\n",
    # ~0.8 s per step, 2 steps per iteration: 2,000 iterations stay under the first deadline check
    # (4,096 steps): ~27 minutes at the default bound of 60 s
    "deadline_between_checks": "def potential(x, p):\n    r = range(10**7)\n    t = 0\n"
                               "    for i in range(2000):\n        t = t + (0.5 in r)\n    return t + x['a']\n",
    # one step: 10**6 list comparisons of 10**6 items each (~25 minutes), charged 1.2e7 units
    "list_containment": "def potential(x, p):\n    a = [0.0] * 10**6\n    b = [0.0] * (10**6 - 1) + [1.0]\n"
                        "    l = [a] * 10**6\n    return (b in l) + x['a']\n",
    # one step: numpy multiplies Python ints (object dtype) 10**6 times, a quadratic product (hours;
    # 2e4 items already take 6 s), charged 10**6 units; math.prod of that list is refused at 4,096 bits
    "np_prod_python_ints": "def potential(x, p):\n    n = 100\n    b = 2 ** n\n    v = np.prod([b] * 10**6)\n"
                           "    return (v > 0) + x['a']\n",
    # one step: Python int power inside a numpy object loop, a 10**10-bit result (charged 1 unit;
    # exponent 10**6 already takes 0.9 s)
    "np_power_python_int": "def potential(x, p):\n    n = 100\n    b = 2 ** n\n    v = np.power([b], 10**8)\n"
                           "    return (v[0] > 0) + x['a']\n",
    # one step: round(int, -k) computes 10**k (~10 min for k = 1e8); refused for a Python int
    # k < -1300, not for an np.int64 or a 0-d array
    "round_np_int_ndigits": "def potential(x, p):\n    return round(7, np.int64(-10**8)) + x['a']\n",
    "round_0d_array_ndigits": "def potential(x, p):\n    return round(7, np.array(-10**8)) + x['a']\n",
}


@pytest.mark.parametrize("name", sorted(TIME_ATTACKS))
def test_break_every_call_ends_near_its_deadline(shipped_path, name):
    r = _limited(shipped_path, TIME_ATTACKS[name], max_seconds=0.5, mem_mb=2048, timeout=3.0)
    assert r["kind"] == "refused" and r["seconds"] < 2.5, r


# =============================================================================================
# BREAK (3): the work bound (2e8 units) misses the cost of products
# =============================================================================================
def test_break_matmul_is_charged_like_dot(shipped):
    """np.dot(a, a) of two 2000x2000 arrays is refused (8e9 units predicted); a @ a does the same
    8e9 multiply-adds and is charged 4e6 (the size of a). With int arrays (no BLAS) 3162x3162
    takes about a minute per @, 18 of them fit the work bound."""
    dot = "def potential(x, p):\n    a = np.ones((2000, 2000))\n    return np.dot(a, a)[0, 0] + x['a']\n"
    mat = "def potential(x, p):\n    a = np.ones((2000, 2000))\n    return (a @ a)[0, 0] + x['a']\n"
    _accepted(dot), _accepted(mat)
    d, m = _file_result(shipped, dot), _file_result(shipped, mat)
    assert d["error"].startswith("ProgramRefused"), d
    assert "error" in m and m["error"].startswith("ProgramRefused"), m


def test_break_nd_dot_is_charged_for_its_work(shipped):
    """np.dot of (1000,1000) with (1000,1000,1) does 1e9 multiply-adds (as the 2-D np.dot that is
    refused) but is predicted as 1e6: the factor b.shape[:-2] is missing (3162-sized: 3e10 each)."""
    two = "def potential(x, p):\n    a = np.ones((1000, 1000))\n    b = np.ones((1000, 1000))\n" \
          "    return np.dot(a, b)[0, 0] + x['a']\n"
    nd = "def potential(x, p):\n    a = np.ones((1000, 1000))\n    b = np.ones((1000, 1000, 1))\n" \
         "    return np.dot(a, b)[0, 0, 0] + x['a']\n"
    _accepted(two), _accepted(nd)
    t, n = _file_result(shipped, two), _file_result(shipped, nd)
    assert t["error"].startswith("ProgramRefused"), t
    assert "error" in n and n["error"].startswith("ProgramRefused"), n


# =============================================================================================
# BREAK (3): one array <= 1e7 elements is checked only AFTER numpy made it. Each of these asks for
# 1e9+ elements (8+ GB) and is predicted as small; under a 1 GB address-space cap the allocation
# fails (MemoryError) instead of a ProgramRefused before anything is allocated. On the user's
# machine (no cap) it allocates and fills the memory first.
# =============================================================================================
MEMORY_ATTACKS = {
    "ones_0d_shape": "def potential(x, p):\n    return np.ones(np.array(10**9))[0] + x['a']\n",
    "zeros_0d_tuple": "def potential(x, p):\n    return np.ones((np.array(10**5), np.array(10**5)))[0, 0] + x['a']\n",
    "full_0d_shape": "def potential(x, p):\n    return np.full(np.array(10**9), 1.5)[0] + x['a']\n",
    "tile_0d_reps": "def potential(x, p):\n    return np.tile(x['a'], np.array(10**9))[0] + x['a']\n",
    "tile_bool_reps": "def potential(x, p):\n    return np.tile(x['a'], (True, 10**9))[0, 0] + x['a']\n",
    "linspace_0d_num": "def potential(x, p):\n    return np.linspace(0.0, 1.0, np.array(10**9))[0] + x['a']\n",
    "ones_like_0d_shape": "def potential(x, p):\n    return np.ones_like(x['a'], shape=(np.array(10**5), np.array(10**5)))[0, 0] + x['a']\n",
    "linspace_array_ends": "def potential(x, p):\n    a = np.zeros(10**6)\n    return np.linspace(a, a + 1.0, 2000)[0, 0] + x['a']\n",
    "broadcast_list_operand": "def potential(x, p):\n    c = np.ones((40000, 1))\n    l = [1.0] * 40000\n"
                              "    return (c * l)[0, 0] + x['a']\n",
    "broadcast_range_compare": "def potential(x, p):\n    c = np.ones((40000, 1))\n"
                               "    return (c < range(40000))[0, 0] + x['a']\n",
    "ufunc_tuple_operand": "def potential(x, p):\n    c = np.ones((40000, 1))\n    t = tuple([2.0] * 40000)\n"
                           "    return np.maximum(c, t)[0, 0] + x['a']\n",
}


MEMORY_CONTROLS = {  # the same sizes given as plain ints: predicted and refused (held)
    "control_ones_int_shape": "def potential(x, p):\n    return np.ones(10**9)[0] + x['a']\n",
    "control_tile_int_reps": "def potential(x, p):\n    return np.tile(x['a'], 10**9)[0] + x['a']\n",
    "control_broadcast_arrays": "def potential(x, p):\n    c = np.ones((40000, 1))\n    r = np.ones(40000)\n"
                                "    return (c * r)[0, 0] + x['a']\n",
}


@pytest.fixture(scope="module")
def memory_results(shipped_path):
    names = sorted(MEMORY_ATTACKS) + sorted(MEMORY_CONTROLS)
    srcs = [{**MEMORY_ATTACKS, **MEMORY_CONTROLS}[n] for n in names]
    return dict(zip(names, _limited(shipped_path, srcs, mem_mb=1024, timeout=40)))


@pytest.mark.parametrize("name", sorted(MEMORY_ATTACKS))
def test_break_arrays_are_refused_before_they_are_made(memory_results, name):
    r = memory_results[name]
    assert r["kind"] == "refused", r


@pytest.mark.parametrize("name", sorted(MEMORY_CONTROLS))
def test_held_predicted_arrays_are_refused_before_they_are_made(memory_results, name):
    r = memory_results[name]
    assert r["kind"] == "refused", r


def test_held_deadline_stops_a_loop_of_cheap_steps(shipped_path):
    """Control for the time attacks (same harness): a long loop of cheap steps stops at the deadline."""
    src = "def potential(x, p):\n    s = 0\n    for i in range(10**7):\n        s = s + i * i\n    return s + x['a']\n"
    r = _limited(shipped_path, src, max_seconds=0.5, timeout=3.0)
    assert r["kind"] == "refused" and "0.5 s" in r["msg"] and r["seconds"] < 1.0, r


def test_break_list_grown_from_an_iterator_is_bounded(shipped_path):
    """l += reversed(range(...)) (or zip/enumerate) extends a list with no length check: 2e6 items
    here (sequences <= 1e6); a loop of them fills any memory."""
    src = "def potential(x, p):\n    l = [0.0]\n    l += reversed(range(2 * 10**6))\n    return len(l) + x['a']\n"
    r = _limited(shipped_path, src, mem_mb=1024, timeout=20)
    assert r["kind"] == "refused", r


# =============================================================================================
# BREAK (1)/(3): the file must refuse with one line (exit status 2), never crash
# =============================================================================================
DEEP_KEY = "def potential(x, p):\n    t = ()\n    for i in range({n}):\n        t = (t,)\n    return x[t] + x['length']\n"


@pytest.mark.slow
def test_break_deep_tuple_key_crashes_file_and_worker(pool, tmp_path):
    """A 10**6-deep tuple used as a dict key: hash() recurses in C with no depth check and the
    interpreter dies with SIGSEGV, in the file (exit -11, no line) and in the worker."""
    src = DEEP_KEY.format(n=10**6)
    _accepted(src)
    out = _cli(tmp_path, src, timeout=60)
    s = pool.run(src, task=EXACT, payload={"x": {"length": [1.0, 2.0]}, "p": []})
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0 and "signal" not in (s.error or ""), \
        ("file exit status", out.returncode, out.stderr[-300:], "sandbox", s.error)


def test_break_error_line_of_a_deep_key_is_a_traceback(tmp_path):
    """A 3,000-deep tuple key: KeyError, whose text (the key's repr) raises RecursionError inside
    the file's error handler: a traceback, exit status 1."""
    src = DEEP_KEY.format(n=3000)
    _accepted(src)
    _one_line_exit_2(_cli(tmp_path, src, timeout=60))


@pytest.mark.slow
def test_break_error_line_of_a_huge_key_is_bounded(tmp_path):
    """A KeyError whose key is a tuple of 10**6 references to one 20,000-character string (charged
    a few MB): its text is 2e10 characters. The file builds it before cutting it to 500 characters;
    under a 1.2 GB cap that is a MemoryError traceback, without a cap it eats the machine's memory."""
    src = ("def potential(x, p):\n    s = 'ab' * 100 * 100\n    t = (s,) * 10**6\n    return x[t] + x['length']\n")
    _accepted(src)
    _one_line_exit_2(_cli(tmp_path, src, timeout=60, mem_mb=1200))


# =============================================================================================
# BREAK (1): the nesting estimate does not bound Python's stack (3.11: every call's argument list
# is a comprehension frame, 2 frames per nesting level against the estimated 1.5), so whether a
# program computes or hits RecursionError ("nested too deeply") depends on the caller's stack.
# =============================================================================================
def _chain(k, n):
    lines = []
    for i in range(k):
        e = "v" if i == 0 else f"f{i - 1}(v)"
        for _ in range(n):
            e = f"abs({e})"
        lines.append(f"def f{i}(v):\n    return {e}\n")
    lines.append(f"def potential(x, p):\n    return f{k - 1}(x['a'])\n")
    return "".join(lines)


def test_break_result_does_not_depend_on_the_callers_stack(pool, shipped):
    """Whether a deeply nested program is refused is decided by the evaluator's own frame estimate,
    not by how deep the caller's stack is: the same answer in the sandbox, a shallow caller and a
    caller 250 frames deep, for a chain the estimate admits and for one it refuses."""
    admitted = _same_at_every_depth(pool, shipped, _chain(4, 57))
    refused = _same_at_every_depth(pool, shipped, _chain(7, 57))
    assert "values" in admitted, admitted
    assert "nested too deeply" in refused["error"], refused


def _same_at_every_depth(pool, shipped, src):
    _accepted(src)

    def depth():
        f, n = sys._getframe(), 0
        while f is not None:
            f, n = f.f_back, n + 1
        return n

    def at(total):
        if depth() < total:
            return at(total)
        return _file_result(shipped, src)

    base = _sandbox_result(pool, src)
    shallow = at(0)
    deep = at(250)  # a caller 250 frames deep
    assert _same(base, shallow), (base, shallow)
    assert _same(shallow, deep), (shallow, deep)
    return base


def test_break_loop_items_are_counted_as_steps(shipped):
    """The step bound counts "nodes, loop items"; a loop whose body is `pass` or `continue` counts
    none: 10**6 items run under a bound of 10,000 steps."""
    for body in ("pass", "continue"):
        src = f"def potential(x, p):\n    for j in range(10**6):\n        {body}\n    return x['a']\n"
        _accepted(src)
        with pytest.raises(shipped.ProgramRefused, match="evaluation steps"):
            shipped.Program(src, max_steps=10_000).call("potential", dict(X), P)


def test_sum_of_floats_is_one_left_fold_on_every_python(pool, shipped):
    """sum() is the evaluator's own left fold (Python 3.11's float sum), so the sandbox and the file
    agree on every Python: 3.12+ sums floats with compensation (sum([0.1] * 10) == 1.0 there), which
    a law evaluated by best_potential.py on a newer Python must not pick up."""
    src = "def potential(x, p):\n    return sum([0.1] * 10) + sum([1e16, 1.0, -1e16]) + x['a'] * 0.0\n"
    _accepted(src)
    f = _file_result(shipped, src)
    assert f["values"][0] == 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + 0.1 + (1e16 + 1.0 - 1e16)
    assert _same(_sandbox_result(pool, src), f)


def test_break_callers_numpy_error_state_leaks_into_the_file(pool, shipped):
    """Program.call keeps numpy's error state of its caller. An application that imports
    best_potential with np.seterr(all='raise') (or -W error) gets FloatingPointError for a law
    the sandbox computes (a masked log of zero is common in candidates)."""
    src = "def potential(x, p):\n    return np.where(x['a'] > 1.0, np.log(x['a'] - 1.0), 0.0)\n"
    _accepted(src)
    s = _sandbox_result(pool, src)
    with np.errstate(all="raise"):
        try:
            f = _vals(shipped.Program(src).call("potential", dict(X), P))
        except Exception as e:
            f = {"error": f"{type(e).__name__}: {e}"}
    assert _same(s, f), (s, f)


def test_break_callers_int_digit_limit_leaks_into_the_file(pool, tmp_path):
    """int(str) follows the interpreter's int_max_str_digits (PYTHONINTMAXSTRDIGITS,
    sys.set_int_max_str_digits): a law the sandbox computes fails in the user's file."""
    import os

    for digits, computed in ((600, True), (1000, False)):
        src = f"def potential(x, p):\n    return (int('1' * {digits}) % 7) + x['length']\n"
        _accepted(src)
        r = pool.run(src, task=EXACT, payload={"x": {"length": [5.0]}, "p": []})
        assert r.ok, r
        path = tmp_path / "best_potential.py"
        write_best_potential(path, _best(src, []), "word", "run", 0.3, "sid")
        out = subprocess.run([sys.executable, str(path), "HELLO"], capture_output=True, text=True, timeout=60,
                             cwd=tmp_path, env={**os.environ, "PYTHONINTMAXSTRDIGITS": "640"})
        if computed:  # within the smallest limit Python allows: the same value whatever the caller set
            assert out.returncode == 0, out.stderr
            assert float(out.stdout.split("\t")[1]) == pytest.approx(r.value["values"][0])
        else:  # refused alike, whatever the caller set
            assert out.returncode == 2 and "int() of a string of more than 640" in out.stderr, out.stderr
            assert "int() of a string of more than 640" in r.value["error"], r.value
