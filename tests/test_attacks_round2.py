"""Round 2 of adversarial tests against docs/sandbox.md ("One semantics", the per-call bounds).

Each test asserts a GUARANTEE; a failing test is a break. Found by someone who did not write the
evaluator. Runs in well under a minute (the slow programs run in a subprocess with a short timeout)."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest

from potsearch.law import interp
from potsearch.law.interp import Program, ProgramRefused
from potsearch.sandbox import check_source

from semantics_helpers import (EXACT, P, X, _file_result, _python, _same, _sandbox_result,  # noqa: F401
                               pool)

FILE = types.SimpleNamespace(Program=Program)  # the evaluator best_potential.py embeds verbatim


def _accepted(src):
    assert check_source(src) == [], check_source(src)


# ---------------------------------------------------------------------------------------------
# np.where(cond) with ONE argument returns cond.ndim index arrays: charged as one array of cond.size
# ---------------------------------------------------------------------------------------------
WHERE_LOOP = '''
def potential(x, p):
    b = np.broadcast_to(1.0, (1,) * 63 + (500000,))
    t = 0
    for i in range(10):
        w = np.where(b)
        t = t + len(w)
    return t * x["a"]
'''


def test_np_where_index_arrays_count_towards_the_work_bound():
    """10 calls each make 64 index arrays of 5e5 elements: 3.2e8 elements > MAX_WORK (2e8), charged
    only 10 x 5e5. Expected: ProgramRefused (the work bound)."""
    _accepted(WHERE_LOOP)
    with pytest.raises(ProgramRefused):
        Program(WHERE_LOOP).call("potential", dict(X), P)


WHERE_BIG = '''
def potential(x, p):
    w = np.where(np.broadcast_to(1.0, (1,) * 63 + (4000000,)))
    return len(w) + x["a"]
'''


def test_np_where_index_arrays_same_in_sandbox_and_file(pool):
    """One np.where makes 64 x 4e6 int64 (2 GB) while charged 4e6: the sandbox dies of its memory
    limit (MemoryError), best_potential.py returns a value. Expected: the same result (a refusal
    before numpy allocates)."""
    _accepted(WHERE_BIG)
    s = _sandbox_result(pool, WHERE_BIG)
    f = _file_result(FILE, WHERE_BIG)
    assert _same(s, f), (s, f)


# ---------------------------------------------------------------------------------------------
# np.full with an EMPTY fill value: predicted 0 elements, numpy allocates the whole shape first
# ---------------------------------------------------------------------------------------------
FULL_EMPTY = '''
def potential(x, p):
    f = np.full(10**9, x["a"][:0])
    return x["a"]
'''


def test_np_full_with_empty_fill_same_in_sandbox_and_file(pool):
    """Sandbox: MemoryError (8 GB allocated before the broadcast fails); file: ValueError. Expected:
    the same result; the size 1e9 > MAX_ARRAY refused before numpy allocates."""
    _accepted(FULL_EMPTY)
    s = _sandbox_result(pool, FULL_EMPTY)
    f = _file_result(FILE, FULL_EMPTY)
    assert _same(s, f), (s, f)
    assert "ProgramRefused" in f.get("error", ""), f


# ---------------------------------------------------------------------------------------------
# Python loops inside numpy functions that are neither steps nor predicted work: the wall bound
# ---------------------------------------------------------------------------------------------
def _bounded(src, max_seconds=0.5, timeout=6.0):
    """Run Program(src, max_seconds=...).call in a subprocess; return (seconds, last line) or fail
    when it outlives `timeout`."""
    code = textwrap.dedent(f'''
        import time, numpy as np
        from potsearch.law.interp import Program
        t = time.time()
        try:
            Program({src!r}, max_seconds={max_seconds}).call("potential", {{"a": np.array([1.0, 2.5, 4.0, 7.0])}},
                                                           np.array([0.7]))
            r = "value"
        except Exception as e:
            r = type(e).__name__
        print(round(time.time() - t, 2), r)
    ''')
    t = time.time()
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a call bounded to {max_seconds} s still ran after {time.time() - t:.1f} s")
    return out.stdout.strip() + out.stderr.strip()[-300:]


DIFF_EMPTY = '''
def potential(x, p):
    return np.sum(np.diff(x["a"][:0], 10**18)) + x["a"]
'''


def test_np_diff_of_an_empty_array_with_huge_order_is_bounded():
    """np.diff loops n times in Python; an empty array predicts 0 work, so n = 1e18 runs forever (in
    best_potential.py nothing else stops it). Expected: refused within about the wall bound."""
    _accepted(DIFF_EMPTY)
    out = _bounded(DIFF_EMPTY)
    assert "ProgramRefused" in out, out


POLYVAL_EMPTY = '''
def potential(x, p):
    c = np.zeros(1000000)
    e = x["a"][:0]
    t = 0.0
    for i in range(50):
        t = t + np.sum(np.polyval(c, e))
    return t + x["a"]
'''


def test_np_polyval_on_empty_points_is_bounded():
    """np.polyval loops over the coefficients in Python (1e6 each call, ~1.5 s); with empty points
    the predicted work is 0 and the deadline is never checked. Expected: refused near 0.5 s."""
    _accepted(POLYVAL_EMPTY)
    out = _bounded(POLYVAL_EMPTY)
    assert "ProgramRefused" in out, out


# ---------------------------------------------------------------------------------------------
# accepted programs whose meaning differs from Python (sandbox and file agree with each other)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("src", [
    # Python: pow accepts base=/exp=/mod= keywords (3.8+); the evaluator refuses
    "def potential(x, p):\n    return pow(base=2.0, exp=2) * x['a']\n",
    # Python: a range longer than sys.maxsize exists and can be indexed; the evaluator's len() check
    # raises OverflowError
    "def potential(x, p):\n    n = 2 ** 60\n    return range(n * n)[3] * x['a']\n",
])
def test_accepted_programs_follow_python(pool, src):
    _accepted(src)
    s, f, py = _sandbox_result(pool, src), _file_result(FILE, src), _python(src)
    assert _same(s, f), (s, f)
    assert _same(f, py), (f, py)


# ---------------------------------------------------------------------------------------------
# what held (kept as regression tests)
# ---------------------------------------------------------------------------------------------
HELD = {
    "linspace_retstep": "def potential(x, p):\n    a, s = np.linspace(0.0, 1.0, 5, retstep=True)\n"
                        "    return s * x['a']\n",
    "round_np": "def potential(x, p):\n    return round(np.float64(2.5)) + round(np.float64(3.14159), 2) + x['a']\n",
    "zip_strict": "def potential(x, p):\n    t = 0.0\n    for a, b in zip(x['a'], p, strict=True):\n"
                  "        t = t + a * b\n    return t * x['a']\n",
    "sorted_rev": "def potential(x, p):\n    s = sorted([3.0, 1.0, 2.0], reverse=True)\n    return s[0] * x['a']\n",
    "int_of_1e308": "def potential(x, p):\n    k = int(1e308)\n    return float(k % 1000) * x['a']\n",
    "powmod_negative": "def potential(x, p):\n    return pow(3, -1, 7) * x['a']\n",
    "tuple_augassign": "def potential(x, p):\n    t = (1.0,)\n    u = t\n    t += (2.0,)\n"
                       "    return (len(t) + len(u)) * x['a']\n",
    "nested_list_cmp": "def potential(x, p):\n    return ([1.0, [2.0]] < [1.0, [3.0]]) * x['a']\n",
    "identity_list_eq": "def potential(x, p):\n    a = [x['a']]\n    return (a == a) * x['a']\n",
    "default_calls_helper": "def h():\n    return 2.0\ndef potential(x, p, c=h()):\n    return c * x['a']\n",
    "helper_defined_later": "K = h()\ndef h():\n    return 2.0\ndef potential(x, p):\n    return K * x['a']\n",
    "string_doubling": "def potential(x, p):\n    s = 'ab'\n    for i in range(15):\n        s = s + s\n"
                       "    return len(s) * x['a']\n",
    "cumprod_overflow": "def potential(x, p):\n    return np.cumprod(np.full(100, 10**18))[-1] + x['a']\n",
    "np_round_huge_decimals": "def potential(x, p):\n    return np.round(x['a'], 10**18)\n",
    "list_iadd_array": "def potential(x, p):\n    l = [0.0] * 10\n    l += x['a']\n    return len(l) * x['a']\n",
    "unbound_local": "K = 2.0\ndef potential(x, p):\n    K = K + 1.0\n    return K * x['a']\n",
}


@pytest.mark.parametrize("name", sorted(HELD))
def test_held_corner_cases_follow_python_in_sandbox_and_file(pool, name):
    src = HELD[name]
    _accepted(src)
    s1, s2 = _sandbox_result(pool, src), _sandbox_result(pool, src)
    f1, f2 = _file_result(FILE, src), _file_result(FILE, src)
    assert s1 == s2 and f1 == f2
    if "error" in s1 and s1["error"].startswith("exception: "):  # the pool's category of a module-level error
        s1 = {"error": s1["error"][len("exception: "):]}
    assert _same(s1, f1), (s1, f1)
    assert _same(f1, _python(src)), (f1, _python(src))
