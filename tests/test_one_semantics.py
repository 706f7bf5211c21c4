"""One semantics (issue 25): the sandbox and best_potential.py evaluate a candidate program with the same
interpreter (potsearch.law.interp, embedded verbatim in the file), so they compute the same values or
refuse alike; each call is a pure function of (x, p); the evaluator bounds the time and memory of a call.

The differential tests run every program through the sandbox (the search's path: the allowlist, then the
interpreter in a worker process) and through the interpreter copied into a real best_potential.py, twice
each, and require equal values (1e-12 relative) or the same error."""
from __future__ import annotations

import itertools
import math
import subprocess
import sys
import types

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from potsearch.search.outputs import write_best_potential
from potsearch.sandbox import check_source

from semantics_helpers import (EXACT, P, X, _best, _file_result, _sandbox_result, _same, pool,  # noqa: F401
                               shipped, shipped_path)


def _both(pool, mod, src, x=X, p=P):
    """The sandbox's and the file's results, each computed twice in a row (a second call sees nothing
    of the first); returns them after checking each side agrees with itself."""
    s1, s2 = _sandbox_result(pool, src, x, p), _sandbox_result(pool, src, x, p)
    f1, f2 = _file_result(mod, src, x, p), _file_result(mod, src, x, p)
    assert s1 == s2, (src, s1, s2)
    assert f1 == f2, (src, f1, f2)
    return s1, f1


# ---------------------------------------------------------------------------------------------
# the findings as reported
# ---------------------------------------------------------------------------------------------
NEGATED = '''N_PARAMS = 1
def potential(x, p):
    n = 65
    k = 2 * (2 ** n + 1 - 2 ** n) - 1
    return k * p[0] * x["a"]
'''


def test_exact_integer_powers_as_in_python(pool, shipped):
    s, f = _both(pool, shipped, NEGATED)
    assert _same(s, f), (s, f)
    # Python's own value: 2**65 stays an exact int, so k = 1 and the law is not negated
    assert s["values"] == [P[0] * a for a in X["a"]]


@pytest.mark.parametrize("src, expect", [
    # a mutable default updated in place: every call starts afresh
    ("def potential(x, p, c=np.zeros(1)):\n    c += 1.0\n    return c[0] * x['a']\n", list(X["a"])),
    # an alias of p updated in place: p is read-only, so Python's own ValueError, in both, every time
    ("def potential(x, p):\n    q = p\n    q += 1.0\n    return q[0] * x['a']\n", "ValueError"),
    # a module constant array rebound through an alias
    ("C = np.zeros(1)\ndef potential(x, p):\n    d = C\n    d += 1.0\n    return d[0] + x['a']\n", list(X["a"] + 1.0)),
    ("def potential(x, p):\n    return [p[1]] * x['a']\n", list(P[1] * X["a"])),
    ("def potential(x, p):\n    return range(10)[1] * x['a']\n", list(X["a"])),
])
def test_state_never_survives_a_call_and_accepted_constructs_run(pool, shipped, src, expect):
    assert check_source(src) == [], check_source(src)
    s, f = _both(pool, shipped, src)
    assert _same(s, f), (s, f)
    if isinstance(expect, str):
        assert s["error"].startswith(expect), s
    else:
        np.testing.assert_allclose(s["values"], expect, rtol=1e-12)


def test_keyword_arguments_are_evaluated_after_positional_ones(pool, shipped):
    # the order is observable through a helper that fails on one argument first
    src = ("def h(a, b):\n    return a + b\n"
           "def potential(x, p):\n    return h(1 // 0, b=int('not a number')) + x['a']\n")
    s, f = _both(pool, shipped, src)
    assert _same(s, f)
    assert s["error"].startswith("ZeroDivisionError") and f["error"].startswith("ZeroDivisionError"), (s, f)


@pytest.mark.parametrize("src", [
    "def potential(x, p):\n    a = 1.0\n    b = 1.0\n    return (a is b) + x['a']\n",
    "def potential(x, p, *, k=1.0):\n    return k * x['a']\n",
    "def potential(x, p, /):\n    return x['a']\n",
])
def test_constructs_the_evaluator_does_not_follow_are_refused_by_the_allowlist(pool, shipped, src):
    assert check_source(src), src
    s, f = _both(pool, shipped, src)
    assert s["error"].startswith("rejected:") and f["error"].startswith("ProgramRefused"), (s, f)


def test_negated_law_file_prints_the_sandbox_value(pool, tmp_path):
    """The selected law written out as best_potential.py gives the sandbox's values (it printed the
    negated value before)."""
    path = tmp_path / "best_potential.py"
    write_best_potential(path, _best(NEGATED.replace('x["a"]', 'x["length"]'), [0.5]), "word", "run", 0.3, "sid")
    out = subprocess.run([sys.executable, str(path), "HELLO", "WIZARDS"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = [float(line.split("\t")[1]) for line in out.stdout.strip().splitlines()]
    assert got == [2.5, 3.5]  # 0.5 x length, positive as in Python


# ---------------------------------------------------------------------------------------------
# a candidate cannot learn during its own fit
# ---------------------------------------------------------------------------------------------
LEARNER = '''N_PARAMS = 2
def potential(x, p, seen=np.zeros(64), book=np.zeros(4)):
    # counts its calls in a default array and answers differently once it has seen the probes
    book += 1.0
    if book[0] > 3.0:
        return p[0] * x["a"] + p[1] * x["b"] + np.sin(book[0] * x["a"]) * 5.0
    return p[0] * x["a"] + p[1] * x["b"]
'''


def test_a_learning_candidate_scores_its_true_action(pool):
    from potsearch.law.scoring import Edges, ScoringData, action_value

    rng = np.random.default_rng(0)
    n = 30
    feats = {"a": rng.normal(size=n), "b": rng.normal(size=n)}
    V = 0.8 * feats["a"] - 0.5 * feats["b"]
    src, dst, w = [], [], []
    for i in range(n):
        for j in range(n):
            if i != j and rng.random() < 0.3:
                src.append(i), dst.append(j), w.append(1.0 / (1.0 + math.exp(V[j] - V[i])))
    e = Edges(np.array(src), np.array(dst), np.array(w), n)
    data = ScoringData(features=feats, n_states=n, train=e, heldout=e)
    r = pool.run(LEARNER, task="potsearch.law.scoring:score_program", payload=dict(data.payload(), source=LEARNER))
    assert r.ok and r.value["error"] is None, r
    p = np.array(r.value["params"])
    # the stored action is the action of the stored parameters, evaluated fresh (no state survives)
    fresh = action_value(p[0] * feats["a"] + p[1] * feats["b"], e)
    assert r.value["train_action"] == pytest.approx(fresh, rel=1e-12)
    # and it is the honest law's: the learner is the plain linear law, call after call
    honest = "N_PARAMS = 2\ndef potential(x, p):\n    return p[0] * x['a'] + p[1] * x['b']\n"
    h = pool.run(honest, task="potsearch.law.scoring:score_program", payload=dict(data.payload(), source=honest))
    assert r.value["train_action"] == pytest.approx(h.value["train_action"], rel=1e-9)
    np.testing.assert_allclose(p, h.value["params"], rtol=1e-7)


def test_a_mismatch_between_fit_and_fresh_evaluation_is_a_rejection():
    """The in-process check itself: a callable that changes between calls (what a stateful candidate
    is) is refused with its reason, never stored with the fit's number."""
    from potsearch.law.scoring import Edges, ScoringData, score_function

    n = 6
    calls = itertools.count()
    feats = {"a": np.arange(float(n))}

    def drifting(x, p):
        return p[0] * x["a"] + 1e-3 * next(calls) * x["a"] ** 2

    e = Edges(np.array([0, 1, 2, 3, 4]), np.array([1, 2, 3, 4, 5]), np.ones(5), n)
    out = score_function(drifting, 1, ScoringData(features=feats, n_states=n, train=e, heldout=e))
    assert out["error"] and "does not reproduce" in out["error"], out
    assert out["train_action"] is None


# ---------------------------------------------------------------------------------------------
# bounded time and memory per call, with one clear error
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, words", [
    ("return math.prod(range(1, 10**5)) + x['a']", "integer too large"),
    ("return np.ones(250_000_000)[0] + x['a']", "elements above the limit"),
    ("l = list(range(100000))\n    return len(sum([l] * 50, [])) + x['a']", "above the limit"),
    ("l = [np.ones(5000)] * 1000\n    return np.concatenate(l * 100)[0] + x['a']", "above the limit"),
    ("v = np.arange(1.0, 5001.0)\n    return np.sum(v[:, None] * v[None, :] * v[:, None, None]) + x['a']", "above the limit"),
    ("return np.linspace(0.0, 1.0, 10**9)[0] + x['a']", "above the limit"),
    ("return np.tile(x['a'], 10**9)[0] + x['a']", "above the limit"),
    ("return len(list(zip(range(10**7), range(10**7)))) + x['a']", "above the limit"),
    ("return round(7, -10**9) + x['a']", "refused"),
    ("return np.full(10**6, 'ab' * 5000)[0] + x['a']", "above the limit"),
])
def test_each_call_is_bounded_with_one_line(pool, shipped, body, words, tmp_path):
    src = "def potential(x, p):\n    " + body + "\n"
    s, f = _both(pool, shipped, src)
    assert f["error"].startswith("ProgramRefused") and words in f["error"], f
    assert s["error"] == f["error"] or s["error"].startswith("rejected:"), (s, f)
    # as the user meets it: one line, exit status 2
    path = tmp_path / "best_potential.py"
    write_best_potential(path, _best(src.replace("x['a']", "x['length']"), []), "word", "run", 0.3, "sid")
    out = subprocess.run([sys.executable, str(path), "HELLO"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.stderr.strip().count("\n") == 0 and "refused" in out.stderr


def test_a_long_loop_stops_at_the_step_bound(pool, shipped):
    src = "def potential(x, p):\n    s = 0\n    for i in range(10**7):\n        s = s + i * i\n    return s + x['a']\n"
    s, f = _sandbox_result(pool, src), _file_result(shipped, src)
    assert f["error"].startswith("ProgramRefused: more than 5,000,000 evaluation steps"), f
    assert s["error"] == f["error"], (s, f)


# ---------------------------------------------------------------------------------------------
# differential: generated allowlisted programs, and the hostile corpus
# ---------------------------------------------------------------------------------------------
_LEAF = st.sampled_from(['x["a"]', 'x["b"]', "p[0]", "p[1]", "p[2]", "1", "2", "3", "0.5", "2.0", "n", "k", "t",
                         "C", "-1"])
_UNARY = ["np.log1p(np.abs({}))", "np.tanh({})", "np.sqrt(np.abs({}))", "abs({})", "(-{})", "np.exp(-np.abs({}))",
          "float(np.sum({}))", "np.sign({})", "np.floor({})", "h({})", "h({}, c=2)", "np.sum({}, 0)",
          "np.maximum({}, 0.0)", "np.cumsum({})[-1]", "np.sort({})[0]", "int(np.sum({}))", "({} ** 2)"]
_BINARY = ["({} + {})", "({} - {})", "({} * {})", "({} / {})", "({} // {})", "({} % {})", "np.maximum({}, {})",
           "np.where({} > {}, 1.0, -1.0)", "({} ** {})", "min({}, {})", "({} if {} == 0 else 2)", "({} < {})",
           "g({}, {})", "np.hypot({}, {})", "({} and {})", "({} or {})", "[{}][0] * {}"]


@st.composite
def _expr(draw, depth=0):
    if depth > 3 or draw(st.integers(0, 3)) == 0:
        return draw(_LEAF)
    if draw(st.booleans()):
        return draw(st.sampled_from(_UNARY)).format(draw(_expr(depth + 1)))
    return draw(st.sampled_from(_BINARY)).format(draw(_expr(depth + 1)), draw(_expr(depth + 1)))


@st.composite
def _program(draw):
    lines = [f"    n = {draw(st.integers(-3, 80))}", f"    k = 2 ** n + 1 - 2 ** n if n > 0 else {draw(st.integers(-5, 5))}",
             f"    t = {draw(_expr())}"]
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.integers(0, 3))
        if kind == 0:
            lines.append(f"    t = {draw(_expr())}")
        elif kind == 1:
            lines.append(f"    for i in range({draw(st.integers(0, 4))}):\n        t = t + i * {draw(_expr())}")
        elif kind == 2:
            lines.append(f"    if {draw(_expr())} == 1:\n        t = {draw(_expr())}\n    else:\n        t += 1")
        else:
            lines.append(f"    t = t + len(range(10)[2:{draw(st.integers(0, 9))}])")
    lines.append(f"    return {draw(_expr())}")
    head = ("C = 0.25\n"
            "def h(v, c=1.5, acc=np.zeros(1)):\n    acc += 1.0\n    return v * c + acc[0]\n"
            "def g(u, w):\n    return u - w * 0.5\n")
    return head + "def potential(x, p):\n" + "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(src=_program())
def test_generated_programs_agree(pool, shipped, src):
    assert check_source(src) == [], (src, check_source(src))
    s, f = _both(pool, shipped, src)
    assert _same(s, f), (src, s, f)


def _hostile_corpus():
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
    import test_sandbox_escapes as esc
    import test_sandbox_hostile as hos

    out = [c.src for c in hos.CASES] + list(esc.VARIANTS.values()) + list(esc.CRAFTED) + [esc.ESCAPE]
    return out


@pytest.mark.parametrize("k", range(len(_hostile_corpus())))
def test_hostile_corpus_is_refused_alike(pool, shipped, k):
    src = _hostile_corpus()[k]
    s, f = _both(pool, shipped, src, x={"length": np.arange(1.0, 6.0), "a": np.ones(5)}, p=np.ones(2))
    if "error" not in s:
        assert _same(s, f), (src, s, f)  # harmless text that both evaluate
    else:
        # the search's path refused it (allowlist) or it failed inside: the file's evaluator never
        # computes a value for it either
        assert "error" in f, (src, s, f)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=_program())
def test_generated_programs_mean_what_python_means(src):
    """The evaluator follows Python on a call from a fresh start (the programs here are the test's own,
    generated text, so running them as Python is safe): same value, or the same exception type."""
    import warnings

    from potsearch.law.interp import Program

    def python(src):
        ns = {"np": np, "math": math}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(compile(src, "<generated>", "exec"), ns)
                ro = {k: v.view() for k, v in X.items()}
                for v in ro.values():
                    v.flags.writeable = False
                q = P.copy()
                q.flags.writeable = False
                v = ns["potential"](ro, q)
                a = np.asarray(v, dtype=np.float64)
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}"}
        return {"shape": list(a.shape), "values": [float(f) if np.isfinite(f) else str(f) for f in a.ravel().tolist()]}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _file_result(types.SimpleNamespace(Program=Program), src)
    assert _same(ours, python(src)), (src, ours, python(src))
