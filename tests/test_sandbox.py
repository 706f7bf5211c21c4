"""The candidate sandbox: allowlist, results, timeouts, worker replacement, map order, payloads."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potsearch.sandbox import (
    SandboxError, SandboxPool, SandboxResult, check_source, potential_values, InvalidResult
)

X = {"length": np.arange(1.0, 8.0), "vowels": np.array([0, 1, 2, 1, 0, 3, 1], dtype=float)}
PAYLOAD = {"x": X, "p": np.array([0.5, -1.0, 2.0])}
NOOP = "potsearch.sandbox:noop"

GOOD = '''
"""A readable potential."""
import numpy as np
import math

N_PARAMS: int = 3
SCALE = 2.0 ** -3


def helper(v: np.ndarray, k: float = 1.0) -> np.ndarray:
    return np.log1p(np.abs(v)) * k


def potential(x: dict, p: np.ndarray) -> np.ndarray:
    """length and vowels."""
    a = p[0] * x["length"] + p[1] * helper(x["vowels"], k=SCALE)
    total = 0.0
    for i in range(3):
        if i % 2 == 0:
            total += p[2] * math.sqrt(i + 1)
        else:
            total -= 0.5
    b = np.where(x["vowels"] > 1, a, -a) if total > 0 else a
    return np.clip(b, -1e6, 1e6) + total
'''


def good_expected() -> np.ndarray:
    p = PAYLOAD["p"]
    a = p[0] * X["length"] + p[1] * np.log1p(np.abs(X["vowels"])) * 2.0**-3
    total = p[2] * (1 + np.sqrt(3)) - 0.5
    return np.clip(np.where(X["vowels"] > 1, a, -a), -1e6, 1e6) + total


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=2, cpu_seconds=2, memory_mb=512, wall_timeout=3) as p:
        yield p


# --------------------------------------------------------------------------------------------
# check_source
# --------------------------------------------------------------------------------------------

ACCEPTED = [
    GOOD,
    "def potential(x, p):\n    return p[0]\n",
    "import numpy as np\ndef potential(x, p):\n    return np.sum(x['a'][1:3], axis=0) ** 2\n",
    "def potential(x, p):\n    a, b = p[0], p[1]\n    for i, v in enumerate(zip(x['a'], x['b'])):\n"
    "        if i > 3:\n            break\n    return a if a > b and not b else -b\n",
    "def potential(x, p):\n    return 1e-300 ** 0.5 + (-2) ** 3 + x['a'] ** p[0]\n",
    "def potential(x, p):\n    return np.zeros_like(x['a'], dtype=np.float64) + math.pi\n",
]

REJECTED = [
    ("import os", "import of 'os'"),
    ("from numpy import load", "from-imports"),
    ("import numpy", "import of 'numpy'"),
    ("def potential(x, p):\n    return x.__class__", "dunder attribute"),
    ("def potential(x, p):\n    return x['__class__']", "'__'"),
    ("def potential(x, p):\n    return x.sum()", "attribute access .sum"),
    ("def potential(x, p):\n    return np.load('f')", "np.load is not in the allowlist"),
    ("def potential(x, p):\n    return np.lib", "np.lib is not in the allowlist"),
    ("def potential(x, p):\n    return np", "'np' may only be used"),
    ("def potential(x, p):\n    return open('/etc/passwd')", "call of 'open'"),
    ("def potential(x, p):\n    return eval('1')", "call of 'eval'"),
    ("def potential(x, p):\n    return getattr(x, 'a')", "call of 'getattr'"),
    ("def potential(x, p):\n    return type(x)", "call of 'type'"),
    ("def potential(x, p):\n    return os", "unknown name 'os'"),
    ("def potential(x, p):\n    return (lambda: 1)()", "lambda"),
    ("def potential(x, p):\n    return [i for i in range(3)]", "comprehensions"),
    ("def potential(x, p):\n    return f'{x}'", "f-strings"),
    ("def potential(x, p):\n    while True:\n        pass", "while loops"),
    ("def potential(x, p):\n    try:\n        pass\n    except Exception:\n        pass", "try"),
    ("def potential(x, p):\n    with x:\n        pass", "with"),
    ("def potential(x, p):\n    global y\n    return 1", "global"),
    ("def potential(x, p):\n    yield 1", "yield"),
    ("async def potential(x, p):\n    return 1", "async"),
    ("class A:\n    pass", "class"),
    ("@dec\ndef potential(x, p):\n    return 1", "decorators"),
    ("def potential(*x):\n    return 1", "*args"),
    ("def potential(x, p):\n    return max(*x)", "starred"),
    ("def potential(x, p):\n    return np.sum(**x)", "**kwargs"),
    ("def potential(x, p):\n    return 2 ** 10 ** 10", "exponent"),
    ("def potential(x, p):\n    return x['a'] ** 100", "exponent"),
    ("def potential(x, p):\n    return 10 ** 40", "too large"),
    ("def potential(x, p):\n    return potential(x, p)", "recursion"),
    ("def potential(x, p):\n    for i in x:\n        pass", "for loops must iterate"),
    ("def potential(x, p):\n    x[0] = 1", "plain names"),
    ("def potential(x, p):\n    def inner():\n        return 1\n    return 1", "nested function"),
    ("def potential(x, p):\n    np.sum(x)\n    return 1", "expression statements"),
    ("def potential(x, p):\n    return np.array(x, dtype='object')", "dtype must be"),
    ("def potential(x, p):\n    return np.add(x, 1, out=x)", "out= not allowed"),
    ("range = 3", "rebinding 'range'"),
    ("def potential(x, p):\n    raise ValueError", "raise"),
    ("def potential(x, p):\n    return (y := 1)", ":="),
    ("x = 1\n" * 4000, "too long"),
    ("def potential(x, p):\n    return " + "-" * 5000 + "1", "nested too deeply"),
    ("def potential(x, p):\n    return " + "(" * 300 + "1" + ")" * 300, "syntax error"),
    ("def potential(x, p) return 1", "syntax error"),
    ("x = 1\x00", "NUL"),
]


@pytest.mark.parametrize("src", ACCEPTED)
def test_check_source_accepts_readable_potentials(src):
    assert check_source(src) == []


@pytest.mark.parametrize("src,why", REJECTED, ids=[w for _, w in REJECTED])
def test_check_source_rejects_with_a_reason(src, why):
    reasons = check_source(src)
    assert reasons, src
    assert any(why in r for r in reasons), reasons


def test_check_source_require_and_non_str():
    assert check_source("X = 1", require=("potential",)) == ["no function 'potential' defined"]
    assert check_source(b"x = 1")  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_check_source_never_raises(text):
    assert isinstance(check_source(text), list)


def test_potential_values_validation():
    assert potential_values(2.0, 3).tolist() == [2.0, 2.0, 2.0]
    assert potential_values(np.arange(3), 3).dtype == np.float64
    for bad in ("s", None, True, [1.0, 2.0, 3.0], np.ones(2), np.array(["a"] * 3),
                np.array([1.0, np.nan, 0.0]), np.array([np.inf, 0, 0])):
        with pytest.raises(InvalidResult):
            potential_values(bad, 3)


# --------------------------------------------------------------------------------------------
# the pool
# --------------------------------------------------------------------------------------------


def test_good_candidate_returns_correct_values(pool):
    res = pool.run(GOOD, payload=PAYLOAD)
    assert isinstance(res, SandboxResult)
    assert res.ok and res.error is None and res.category == "ok", res
    np.testing.assert_allclose(res.value["values"], good_expected(), rtol=1e-12)
    assert res.value["sum"] == pytest.approx(float(good_expected().sum()))
    assert res.seconds >= 0


def test_rejected_candidate_never_runs(pool):
    res = pool.run("import os\ndef potential(x, p):\n    return 1.0\n", payload=PAYLOAD)
    assert not res.ok and res.category == "rejected" and "import of 'os'" in res.error


def test_workers_are_locked_down(pool):
    infos = pool.worker_info()
    assert len(infos) == 2
    for info in infos:
        assert info["nofile"] == 5
        assert info["as_bytes"] - info["baseline_bytes"] == 512 * 1024 * 1024
        if os.getuid() == 0:
            assert info["uid"] == 65534 and info["privileges"] == "nobody"
        if os.uname().machine == "x86_64":
            assert info["seccomp"] == "on"
        assert info["pid"] != os.getpid()


def test_timeout_kills_the_worker():
    with SandboxPool(workers=1, cpu_seconds=30, memory_mb=256, wall_timeout=1) as p:
        old_pid = p.worker_info()[0]["pid"]
        spin = "def potential(x, p):\n    s = 0\n    for i in range(10**7):\n        s += i\n    return s\n"
        t0 = time.perf_counter()
        res = p.run(spin, payload=PAYLOAD)
        elapsed = time.perf_counter() - t0
        assert res.category == "timeout" and res.error.startswith("timeout after 1s"), res
        assert elapsed < 2.0 + 1.0  # within ~2x the limit (plus scheduling slack on a busy box)
        with pytest.raises(ProcessLookupError):
            os.kill(old_pid, 0)  # the worker is gone (killed and reaped), not left running
        assert p.worker_info()[0]["pid"] != old_pid
        assert p.run(GOOD, payload=PAYLOAD).ok
        assert p.stats["timeouts"] == 1
        # a per-call timeout overrides the pool default
        res = p.run(spin, payload=PAYLOAD, timeout=0.3)
        assert res.error.startswith("timeout after 0.3s")


def test_cpu_limit_kills_the_worker():
    with SandboxPool(workers=1, cpu_seconds=1, memory_mb=256, wall_timeout=40) as p:
        spin = "def potential(x, p):\n    s = 0\n    for i in range(10**7):\n        s += i\n    return s\n"
        res = p.run(spin, payload=PAYLOAD)
        assert res.error == "killed: cpu limit", res
        assert p.run(GOOD, payload=PAYLOAD).ok


def test_memory_limit(pool):
    # each array within the evaluator's bounds (10**7 elements), together past the worker's memory limit
    hog = ("def potential(x, p):\n    keep = []\n    for i in range(18):\n        keep = keep + [np.ones(10**7) + i]\n"
           "    return x['length']\n")
    res = pool.run(hog, payload=PAYLOAD)
    assert res.category == "killed" and "memory limit" in res.error, res
    assert pool.run(GOOD, payload=PAYLOAD).ok
    # one array past the evaluator's own bound is refused before it is made
    res = pool.run("def potential(x, p):\n    return np.ones(10**10)\n", payload=PAYLOAD)
    assert res.error.startswith("exception: ProgramRefused: arrays of 10,000,000,000 elements"), res
    # and with the allowlist and the evaluator bypassed, the rlimit stops it
    res = pool.run("def potential(x, p):\n    return np.ones(10**10)\n", payload=PAYLOAD, _bypass_ast_check=True)
    assert res.category == "killed" and "memory limit" in res.error, res
    assert pool.run(GOOD, payload=PAYLOAD).ok


def test_pool_replaces_dead_workers(pool):
    pids = [i["pid"] for i in pool.worker_info()]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)  # die while idle
    for pid in pids:  # wait until the kernel has really ended them (zombie or gone)
        for _ in range(500):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] in "ZX":
                        break
            except FileNotFoundError:
                break
            time.sleep(0.01)
    results = pool.map([(GOOD, PAYLOAD)] * 4)
    assert all(r.ok for r in results), results
    assert set(i["pid"] for i in pool.worker_info()).isdisjoint(pids)


def test_map_preserves_order_and_isolates_failures(pool):
    jobs = []
    for k in range(12):
        if k % 4 == 3:
            jobs.append(("def potential(x, p):\n    return 'bad'\n", PAYLOAD))
        else:
            jobs.append((f"def potential(x, p):\n    return x['length'] * 0.0 + {k}\n", PAYLOAD))
    results = pool.map(jobs)
    assert len(results) == 12
    for k, r in enumerate(results):
        if k % 4 == 3:
            assert r.category == "invalid result"
        else:
            assert r.ok and r.value["sum"] == pytest.approx(7 * k)
    assert pool.map([]) == []


def test_payloads_are_cached_and_kept_apart(pool):
    src = "def potential(x, p):\n    return x['length'] * p[0]\n"
    a = {"x": {"length": np.ones(4)}, "p": np.array([1.0])}
    b = {"x": {"length": np.ones(6)}, "p": np.array([3.0])}
    results = pool.map([(src, a), (src, b)] * 5)
    assert [r.value["sum"] for r in results] == [4.0, 18.0] * 5
    assert pool.run(src, payload=None).category == "exception"  # no x in an empty payload


def test_big_payload_values_are_sent_once_per_worker_and_frozen(pool):
    big = {"length": np.linspace(0.0, 1.0, 20_000), "vowels": np.ones(20_000)}
    base = {"x": big, "p": np.array([2.0])}
    src = "def potential(x, p):\n    return x['length'] * p[0]\n"
    before = pool.stats["payload_bytes"]
    results = pool.map([(src, dict(base, seed=k)) for k in range(40)])
    assert all(r.ok for r in results)
    assert results[0].value["sum"] == pytest.approx(2 * big["length"].sum())
    sent = pool.stats["payload_bytes"] - before
    assert sent < 3 * 320_000 + 10_000  # the 320 kB feature table went to each worker once, not 40 times
    # cached arrays are read-only in the worker: in-place writes cannot poison later candidates
    poison = "def potential(x, p):\n    return np.add(x['length'], 1.0, x['length'])\n"
    assert pool.run(poison, payload=base).category == "rejected"  # positional out: layer 1
    res = pool.run(poison, payload=base, _bypass_ast_check=True)   # and the data layer on its own
    assert res.category == "exception" and "read-only" in res.error, res
    assert pool.run(src, payload=base).value["sum"] == pytest.approx(2 * big["length"].sum())


def test_task_errors_and_bad_task_names(pool):
    res = pool.run("def potential(x, p):\n    return 1.0\n", task="potsearch.sandbox:return_raw",
                   payload={"x": None, "p": None})
    assert res.ok and res.value == {"value": 1.0}
    res = pool.run("def potential(x, p):\n    return x['nope']\n", payload=PAYLOAD)
    assert res.category == "exception" and "KeyError" in res.error
    with pytest.raises(ValueError):
        pool.run(GOOD, task="not a task")


def test_forked_child_can_neither_use_nor_kill_the_pool(pool):
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 0
        try:
            pool.run(GOOD, payload=PAYLOAD)
            code = 1
        except SandboxError:
            pass
        except BaseException:
            code = 2
        pool.close()  # must not kill the parent's workers
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    assert pool.run(GOOD, payload=PAYLOAD).ok


def test_closed_pool_raises():
    p = SandboxPool(workers=1)
    p.close()
    with pytest.raises(SandboxError):
        p.run(GOOD, payload=PAYLOAD)
    p.close()  # idempotent


def test_throughput_trivial_task(pool, capsys):
    src = "def potential(x, p):\n    return p[0]\n"
    pool.map([(src, PAYLOAD)] * 20, task=NOOP)
    n = 400
    t0 = time.perf_counter()
    results = pool.map([(src, PAYLOAD)] * n, task=NOOP)
    rate = n / (time.perf_counter() - t0)
    assert all(r.ok for r in results)
    with capsys.disabled():
        print(f"\nsandbox pool, 2 workers, trivial task: {rate:.0f} calls/s")
    assert rate > 50  # a loose floor: this box is shared; the number is reported, not benchmarked
