"""What a candidate's program returns, checked: ``potential_values`` (the values of ``potential(x, p)``,
shared by in-process scoring and the sandbox's tasks), ``check_finite`` (a task's JSON result) and
:class:`InvalidResult`, raised when either is unusable. Needs numpy only: imported by the sandbox's
worker and parent as well as by the law's scoring."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["InvalidResult", "potential_values", "check_finite"]


class InvalidResult(ValueError):
    """Raise from a task function when the candidate's output is unusable (wrong type, shape,
    non-finite values); the result's error becomes ``"invalid result: <message>"``."""


def potential_values(v: Any, n: int, *, finite: bool = True) -> np.ndarray:
    """Validate what ``potential(x, p)`` returned: a real numeric scalar or array broadcastable to
    ``(n,)``. Returns a float64 array of shape ``(n,)``; raises :class:`InvalidResult`. With
    ``finite`` (the default) every value must be finite; the parameter fit (evolve/scoring.py) passes
    ``finite=False`` and handles NaN/inf itself (a trial step into them is refused, not an error)."""
    if isinstance(v, (bool, np.bool_)) or v is None:
        raise InvalidResult(f"potential returned {type(v).__name__}, expected numbers")
    if isinstance(v, (int, float, np.integer, np.floating)):
        arr = np.full(n, float(v))
    elif isinstance(v, np.ndarray):
        if v.dtype.kind not in "iuf":
            raise InvalidResult(f"potential returned an array of dtype {v.dtype}, expected floats")
        if v.ndim == 0:
            arr = np.full(n, float(v))
        elif v.shape != (n,):
            raise InvalidResult(f"potential returned shape {v.shape}, expected ({n},)")
        else:
            arr = v.astype(np.float64, copy=False)
    else:
        raise InvalidResult(f"potential returned {type(v).__name__}, expected a numpy array")
    if finite:
        bad = ~np.isfinite(arr)
        if bad.any():
            kind = "NaN" if np.isnan(arr).any() else "inf"
            raise InvalidResult(f"{kind} in {int(bad.sum())} of {n} values")
    return arr


def check_finite(v: Any, path: str = "value") -> None:
    """Raise :class:`InvalidResult` naming the first NaN or inf in a reply's plain value."""
    if isinstance(v, float):
        if math.isnan(v):
            raise InvalidResult(f"NaN at {path}")
        if math.isinf(v):
            raise InvalidResult(f"inf at {path}")
    elif isinstance(v, dict):
        for k, x in v.items():
            check_finite(x, f"{path}[{k!r}]")
    elif isinstance(v, list):
        if len(v) > 16 and all(type(x) is float for x in v):  # fast path: a list of numbers
            bad = np.flatnonzero(~np.isfinite(np.asarray(v, dtype=float)))
            if len(bad):
                check_finite(v[int(bad[0])], f"{path}[{int(bad[0])}]")
            return
        for i, x in enumerate(v):
            check_finite(x, f"{path}[{i}]")
