"""What comes back from a sandbox call: :class:`SandboxResult` and its error categories, the
exceptions of the sandbox, and the checks of a candidate's output (``potential_values``, shared with
in-process scoring, and ``check_finite``). Needs numpy only: imported by the worker and the parent."""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

__all__ = ["InvalidResult", "SandboxError", "SandboxResult", "CATEGORIES", "potential_values",
           "check_finite"]


class InvalidResult(ValueError):
    """Raise from a task function when the candidate's output is unusable (wrong type, shape,
    non-finite values); the result's error becomes ``"invalid result: <message>"``."""


class SandboxError(RuntimeError):
    """The pool itself failed (e.g. a worker cannot start). Never raised for a bad candidate."""


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    ok: bool
    value: dict | None
    error: str | None
    seconds: float

    @property
    def category(self) -> str:
        """``ok``, ``rejected``, ``timeout``, ``killed``, ``exception`` or ``invalid result``."""
        if self.ok:
            return "ok"
        head = (self.error or "").split(":", 1)[0]
        return "timeout" if head.startswith("timeout") else head


CATEGORIES = ("ok", "rejected", "timeout", "killed", "exception", "invalid result")


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
