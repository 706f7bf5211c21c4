"""The search's score cache, and the stored scores a resume must re-validate before it uses them.

Entries (``canonical source -> scores``) are only ever made from a score computed by this process:
a GP or term law scored in process, a model-written program scored in the sandbox. On ``--resume``
the store's ``candidates`` table says what earlier scores were; those numbers are **claims**, never
entries: a store may come from someone else and may have been changed outside potsearch.

* The restored populations, hall of fame and the parents of calls in flight are scored again at
  once (``Search.restore``) and compared with the numbers the checkpoint holds.
* Every other stored score is a ``Claim``. ``in`` sees it (so the search takes the same decisions as
  the uninterrupted one, e.g. the term operator skips the fit of a law it has seen), ``get`` does
  not. When a program with that canonical source comes up again it is scored AT the claimed
  parameters (one evaluation, no fit: ``scoring.at_params_data``; a claimed failure is fitted again
  from the claimed start parameters and must fail again); the result is compared with the claim
  (``mismatch``: 1e-9 relative) and becomes the entry, and the program counts as a cache hit,
  exactly as in a search never interrupted. A claim whose numbers do not reproduce stops the resume
  with one line naming the stored candidate.

A check at the stored parameters is exact (no optimiser path, so the fit's wall-clock cap cannot
make an honest score look forged) and bounds what a store can claim: a score may be a worse fit
than potsearch would find, never better than the program is at the stored parameters. So no stored
number reaches selection, migration or the hall of fame without being recomputed; the cost is one
evaluation per stored program that comes up again.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from potsearch.core.errors import InputError

REL_TOL = 1e-9
ABS_TOL = 1e-12
NUMBERS = ("train_action", "heldout_action", "gap")
LABELS = {"train_action": "train action", "heldout_action": "held-out action", "gap": "gap",
          "complexity": "complexity", "n_params": "n_params", "params": "params", "error": "outcome"}


@dataclass(frozen=True)
class Claim:
    """A score the store says a candidate had, not yet recomputed."""

    uid: str
    kind: str               # "own": a GP tree or term law (scored in process); "model": model-written (sandbox)
    p0: list | None         # the start parameters the stored score was fitted from
    numbers: dict           # params, train_action, heldout_action, gap, complexity, n_params, error


class ScoreCache:
    """``canonical -> scores`` computed here, plus the store's unchecked ``claims`` (module doc)."""

    def __init__(self):
        self.entries: dict[str, dict] = {}
        self.claims: dict[str, Claim] = {}
        self.revalidated = 0    # claims that reproduced
        self.dropped = 0        # claims that could not be checked (a sandbox failure, another scoring path)
        self.check_seconds = 0.0  # time the checks of claims took (their evaluations)

    # the dict interface the search uses: only computed entries are hits
    def get(self, canonical: str, default=None):
        return self.entries.get(canonical, default)

    def __getitem__(self, canonical: str) -> dict:
        return self.entries[canonical]

    def __setitem__(self, canonical: str, entry: dict) -> None:
        self.entries[canonical] = entry
        self.claims.pop(canonical, None)

    def setdefault(self, canonical: str, entry: dict) -> dict:
        self.claims.pop(canonical, None)
        return self.entries.setdefault(canonical, entry)

    def __contains__(self, canonical) -> bool:
        return canonical in self.entries or canonical in self.claims

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        self.entries.clear()
        self.claims.clear()

    # claims
    def claim(self, canonical: str, kind: str) -> Claim | None:
        """The stored claim for ``canonical`` when it was scored the way ``kind`` programs are."""
        c = self.claims.get(canonical)
        return c if c is not None and c.kind == kind else None

    def drop_claim(self, canonical: str) -> None:
        if self.claims.pop(canonical, None) is not None:
            self.dropped += 1

    def settle(self, claim: Claim, computed: dict) -> None:
        """Compare a recomputed score with the claim: ``InputError`` (one line) when it does not reproduce."""
        why = mismatch(claim.numbers, computed)
        if why is not None:
            raise not_reproduced(claim.uid, why)
        self.revalidated += 1
        t = computed.get("eval_seconds")
        if isinstance(t, (int, float)) and math.isfinite(t):
            self.check_seconds += float(t)


def not_reproduced(uid: str, why: str) -> InputError:
    return InputError(f"the store's score of candidate {uid} does not reproduce: {why}; the store was changed "
                      f"outside potsearch, so the resume is refused (run without --resume and with another --seed "
                      f"to start a new search beside it)")


def _close(a, b) -> bool:
    return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=ABS_TOL)


def mismatch(stored: dict, computed: dict) -> str | None:
    """None when ``computed`` reproduces ``stored`` (numbers within 1e-9 relative, integers and the
    outcome exactly), else what differs: ``train action: stored 0.1, computed 0.4``."""
    s_err, c_err = stored.get("error"), computed.get("error")
    if (s_err is None) != (c_err is None):
        s = "failed" if s_err is not None else "scored"
        c = f"failed ({str(c_err)[:80]})" if c_err is not None else "scored"
        return f"outcome: stored {s}, computed {c}"
    for k in ("complexity", "n_params"):
        a, b = stored.get(k), computed.get(k)
        if a is not None and b is not None and int(a) != int(b):
            return f"{LABELS[k]}: stored {a}, computed {b}"
    if s_err is not None:
        return None
    for k in NUMBERS:
        a, b = stored.get(k), computed.get(k)
        if (a is None) != (b is None) or (a is not None and not _close(a, b)):
            return f"{LABELS[k]}: stored {_num(a)}, computed {_num(b)}"
    pa, pb = stored.get("params") or [], computed.get("params") or []
    if len(pa) != len(pb):
        return f"params: stored {len(pa)}, computed {len(pb)}"
    for i, (a, b) in enumerate(zip(pa, pb)):
        if not _close(a, b):
            return f"params[{i}]: stored {_num(a)}, computed {_num(b)}"
    return None


def _num(v) -> str:
    return "none" if v is None else f"{float(v):.10g}"


def _finite_list(v, max_len: int = 1000):
    """A stored list of finite numbers (floats), else None."""
    if not isinstance(v, list) or len(v) > max_len:
        return None
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            return None
        out.append(float(x))
    return out


def _finite(v):
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError
    return float(v)


def claim_of_row(row, cached_too: bool = False) -> tuple[str, Claim] | None:
    """(canonical, Claim) for a stored candidate row whose score an uninterrupted search would have
    cached, or None: rejected replies and failed model calls are never scored, a failed model-written
    program is never cached, a row marked ``cached`` holds another row's score (unless ``cached_too``),
    and a row whose numbers are not numbers is left out (a program with that source is then simply
    scored again)."""
    error = row.error if isinstance(row.error, str) or row.error is None else str(row.error)
    if (error or "").startswith(("rejected", "llm:", "no code")):
        return None
    meta = row.meta if isinstance(row.meta, dict) else {}
    if meta.get("cached") and not cached_too:
        return None
    kind = "model" if row.operator == "llm" else "own"
    if kind == "model" and error is not None:
        return None
    can = row.canonical or row.source
    if not isinstance(can, str):
        return None
    p0 = meta.get("p0")
    if p0 is not None:
        p0 = _finite_list(p0, 1000)
        if p0 is None:
            return None
    params = None
    if row.params:
        params = _finite_list(row.params, 1000)
        if params is None:
            return None
    try:
        numbers = {k: _finite(getattr(row, k)) for k in NUMBERS}
    except ValueError:
        return None
    for k in ("complexity", "n_params"):
        v = getattr(row, k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            return None
        numbers[k] = v
    numbers["params"] = params
    numbers["error"] = error
    return can, Claim(uid=str(row.uid), kind=kind, p0=p0, numbers=numbers)
