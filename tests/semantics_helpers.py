"""Shared harness of the one-semantics tests: the same program through a sandbox worker, through the
evaluator inside a real best_potential.py, and (the test's own text only) through Python."""
from __future__ import annotations

import importlib.util
import math
import types
import warnings

import numpy as np
import pytest

from potsearch.search.outputs import write_best_potential
from potsearch.sandbox import SandboxPool, check_source

EXACT = "potsearch.sandbox:call_potential_exact"
X = {"a": np.array([1.0, 2.5, 4.0, 7.0]), "b": np.array([0.5, -1.0, 3.0, 2.0])}
P = np.array([0.7, -1.3, 2.0])


# ---------------------------------------------------------------------------------------------
# harness
# ---------------------------------------------------------------------------------------------
def _best(source, params):
    return types.SimpleNamespace(source=source, train_action=0.4, gap=0.1, heldout_action=0.5, uid="s:7",
                                 island=0, round=3, operator="llm", params=list(params))


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=1, cpu_seconds=20, memory_mb=1024, wall_timeout=30, tasks=(EXACT,)) as p:
        yield p


@pytest.fixture(scope="module")
def shipped_path(tmp_path_factory):
    d = tmp_path_factory.mktemp("shipped")
    path = d / "best_potential.py"
    write_best_potential(path, _best("N_PARAMS = 1\ndef potential(x, p):\n    return p[0] * x['a']\n", [1.0]),
                         "word", "run", 0.3, "sid")
    return path


@pytest.fixture(scope="module")
def shipped(shipped_path):
    """The evaluator as best_potential.py ships it: a real file, imported as a module."""
    spec = importlib.util.spec_from_file_location(f"shipped_best_potential_{id(shipped_path)}", shipped_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _accepted(src):
    assert check_source(src) == [], check_source(src)


def _vals(v):
    a = np.asarray(v, dtype=np.float64)
    return {"shape": list(a.shape), "values": [float(f) if np.isfinite(f) else str(f) for f in a.ravel().tolist()]}


def _file_result(mod, src, x=X, p=P):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            v = mod.Program(src).call("potential", dict(x), np.array(p))
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}"[:300]}
        try:
            out = _vals(v)
        except Exception as e:  # the sandbox's task fails alike on a value that is no number
            return {"error": f"{type(e).__name__}: {e}"[:300]}
        if len(out["values"]) > 100_000:  # what the sandbox's test task can send back
            return {"error": "InvalidResult: result too large"}
        return out


def _sandbox_result(pool, src, x=X, p=P):
    r = pool.run(src, task=EXACT, payload={"x": {k: v.tolist() for k, v in x.items()}, "p": list(p)})
    return r.value if r.ok else {"error": r.error}


def _python(src, x=X, p=P):
    """The reference: the test's OWN program text run as Python (safe: written here, not by a model),
    on read-only views, from a fresh start."""
    ns = {"np": np, "math": math}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exec(compile(src, "<reference>", "exec", dont_inherit=True), ns)
            ro = {k: v.view() for k, v in x.items()}
            for v in ro.values():
                v.flags.writeable = False
            q = np.array(p)
            q.flags.writeable = False
            return _vals(ns["potential"](ro, q))
        except Exception as e:
            return {"error": f"{type(e).__name__}: {e}"[:300]}


def _same(a, b):
    if "error" in a or "error" in b:
        return "error" in a and "error" in b and a["error"].split(":")[0] == b["error"].split(":")[0]
    if a["shape"] != b["shape"]:
        return False
    for u, v in zip(a["values"], b["values"]):
        if isinstance(u, str) or isinstance(v, str):
            if u != v:
                return False
        elif not math.isclose(u, v, rel_tol=1e-12, abs_tol=1e-300):
            return False
    return True


