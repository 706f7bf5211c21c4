"""Trusted example and test tasks, run in the worker as ``task(namespace, payload)`` (named
``"potsearch.sandbox:call_potential"`` and so on: the package re-exports them). The real
search task is ``potsearch.law.scoring:score_program``; polish uses ``call_potential`` and
``call_terms``."""
from __future__ import annotations

import numpy as np

from potsearch.law.values import InvalidResult, potential_values


def call_potential(namespace: dict, payload: dict) -> dict:
    """Trusted example/test task: evaluate ``potential(x, p)`` on the payload's feature table.

    payload: ``{"x": {name: 1-D array}, "p": 1-D array}`` -> ``{"values": [...], "sum": float}``.
    """
    fn = namespace.get("potential")
    if not callable(fn):
        raise InvalidResult("no function 'potential' defined")
    x = payload["x"]
    n = len(next(iter(x.values())))
    vals = potential_values(fn(dict(x), np.array(payload["p"], dtype=np.float64)), n)
    return {"values": vals, "sum": float(vals.sum())}


def call_terms(namespace: dict, payload: dict) -> dict:
    """Trusted task: ``potential_terms(x, p)`` (a list of additive terms, see potsearch.law.formula) on
    the payload's feature table -> ``{"terms": [[...], ...]}``, each term broadcast to ``(n,)``."""
    fn = namespace.get("potential_terms")
    if not callable(fn):
        raise InvalidResult("no function 'potential_terms' defined")
    x = payload["x"]
    n = len(next(iter(x.values())))
    parts = fn(dict(x), np.array(payload["p"], dtype=np.float64))
    if not isinstance(parts, (list, tuple)) or len(parts) > 1000:
        raise InvalidResult("potential_terms must return a list of terms")
    return {"terms": [potential_values(v, n).tolist() for v in parts]}


def return_raw(namespace: dict, payload: dict) -> dict:
    """Trusted test task: pass on whatever ``potential()`` returns (to test result validation)."""
    return {"value": namespace["potential"](payload.get("x"), payload.get("p"))}


def noop(namespace: dict, payload: dict) -> dict:
    """Trusted test task for measuring per-call overhead."""
    return {"ok": 1}


def call_potential_exact(namespace: dict, payload: dict) -> dict:
    """Trusted test task (the differential test of one semantics): ``potential(x, p)`` as it comes,
    non-finite numbers as the strings "nan"/"inf"/"-inf", and the program's own error (the exception's
    type and text) as a value instead of a failed call, so that a result can be compared exactly with
    the evaluator best_potential.py embeds."""
    fn = namespace.get("potential")
    if not callable(fn):
        raise InvalidResult("no function 'potential' defined")
    x = {k: np.asarray(v, dtype=np.float64) for k, v in payload["x"].items()}
    try:
        v = fn(x, np.asarray(payload["p"], dtype=np.float64))
    except Exception as e:  # the program's own error, reported as data
        return {"error": f"{type(e).__name__}: {e}"[:300]}
    a = np.asarray(v, dtype=np.float64)
    if a.size > 100_000:
        raise InvalidResult("result too large")
    flat = [float(f) if np.isfinite(f) else str(f) for f in a.ravel().tolist()]
    return {"shape": list(a.shape), "values": flat}
