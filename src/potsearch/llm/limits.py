"""Limits a study with paid models must keep: prices, a spending cap that counts the calls in flight,
and a requests-/tokens-per-minute pacer. Pure bookkeeping (no I/O, an injectable clock), shared by
collect and evolve's model operator.

* :func:`price` — dollars per prompt and per completion token of a model: the run's ``prices`` table
  first (``{model: {input: $/Mtok, output: $/Mtok}}``), then litellm's bundled price map; None when
  neither knows the model (a ``--max-cost`` on such a model is refused unless ``--allow-unpriced``).
* :class:`SpendCap` — a call may start only when what was spent plus the most every call in flight
  could still cost (prompt estimate + max completion tokens, at the model's price) stays within the cap.
  So the cap is never passed by more than the error of one call's prompt estimate.
* :class:`Pacer` — requests and tokens per minute, spread evenly (a request every 60/rpm seconds, tokens
  refilled continuously): no burst at start-up for a provider to answer with 429s. A caller that
  started late (it was busy) makes the lost slots up at most two requests an interval (``catch_up``
  slots at most), so the rate over a run stays ``rpm`` without bursts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from potsearch.core.errors import InputError


def price(model: str, prices: dict | None = None) -> tuple[float, float] | None:
    """(dollars per prompt token, dollars per completion token), or None when the price is unknown."""
    table = prices or {}
    if model in table:
        p = table[model]
        try:
            return float(p["input"]) / 1e6, float(p["output"]) / 1e6
        except (KeyError, TypeError, ValueError):
            raise InputError(f"prices: {model!r} needs input and output in dollars per million tokens") from None
    from potsearch.llm.client import get_litellm, is_local

    if is_local(model):
        return 0.0, 0.0
    litellm = get_litellm()
    for key in (model, model.split("/", 1)[-1]):
        info = litellm.model_cost.get(key)
        if info and info.get("input_cost_per_token") is not None:
            return float(info["input_cost_per_token"]), float(info.get("output_cost_per_token") or 0.0)
    return None


def check_priced(model: str, max_cost: float | None, prices: dict | None, allow_unpriced: bool) -> None:
    """A cost cap on a model without a price cannot hold: refuse it in one line unless allowed."""
    if max_cost is not None and price(model, prices) is None and not allow_unpriced:
        raise InputError(f"--max-cost cannot be enforced: no price is known for model {model!r} (litellm's price "
                         "map has none); give one in a prices table ({MODEL: {input: $/Mtok, output: $/Mtok}}: "
                         "--prices FILE, or llm.prices in a search config) or pass --allow-unpriced to run "
                         "with the cap counting nothing")


def check_prices(data, where: str) -> dict:
    """A prices table, checked: every entry ``{input: >= 0, output: >= 0}`` in dollars per million tokens."""
    if isinstance(data, dict) and set(data) == {"prices"}:
        data = data["prices"]
    if not isinstance(data, dict) or not data:
        raise InputError("prices: expected a table {MODEL: {input: $/Mtok, output: $/Mtok}}", where)
    out = {}
    for model, entry in data.items():
        try:
            pin, pout = float(entry["input"]), float(entry["output"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"prices: {model!r} needs input and output in dollars per million tokens", where) from None
        if not (pin >= 0 and pout >= 0):
            raise InputError(f"prices: {model!r} has a negative price", where)
        out[str(model)] = {"input": pin, "output": pout}
    return out


@dataclass
class SpendCap:
    """``cap`` dollars; ``per_call`` the most one call can cost (its worst case at the model's price)."""

    cap: float | None
    per_call: float
    spent: float = 0.0
    inflight: int = 0

    def may_start(self, n: int = 1) -> int:
        """How many of ``n`` calls may start now (0: wait for calls in flight, or the cap is reached)."""
        if self.cap is None:
            return n
        room = self.cap - self.spent - self.inflight * self.per_call
        if self.per_call <= 0:
            return n if room >= 0 else 0
        return max(0, min(n, int(room // self.per_call + 1e-9)))

    def started(self, n: int = 1) -> None:
        self.inflight += n

    def finished(self, cost: float) -> None:
        self.inflight = max(0, self.inflight - 1)
        self.spent += float(cost)

    @property
    def reached(self) -> bool:
        """Nothing in flight and not even one more call fits: the stage stops on its budget."""
        return self.cap is not None and self.inflight == 0 and self.may_start(1) == 0


@dataclass
class Pacer:
    """Requests per minute (``rpm``) and tokens per minute (``tpm``); None = no limit. ``delay(tokens)``
    says how long to wait before a call estimated at ``tokens`` may start, and books it."""

    rpm: float | None = None
    tpm: float | None = None
    clock: Callable[[], float] = time.monotonic
    _next: float = field(default=0.0, repr=False)     # the schedule: the next request's slot
    _prev: float = field(default=float("-inf"), repr=False)   # the last request's (real) start
    catch_up: int = 4              # slots a late caller may make up (at most two requests an interval)
    _tokens: float | None = field(default=None, repr=False)
    _t_tokens: float = field(default=0.0, repr=False)
    throttled: int = 0           # 429s reported back (counted, they slow the pace)

    def __post_init__(self):
        for name in ("rpm", "tpm"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise InputError(f"--{name} must be > 0, got {v}")

    def delay(self, tokens: int = 0) -> float:
        now = self.clock()
        wait = 0.0
        if self.rpm:
            iv = 60.0 / self.rpm
            # the first request opens the schedule; later, idle time gives at most catch_up slots of credit
            slot = now if self._prev == float("-inf") else max(self._next, now - self.catch_up * iv)
            start = max(now, slot, self._prev + iv / 2)
            wait = start - now
            self._next = slot + iv        # the schedule, not the start: a late start is made up, not lost
            self._prev = start
        if self.tpm:
            if self._tokens is None:
                self._tokens, self._t_tokens = float(self.tpm) / 60.0, now   # one second's worth at start
            t = now + wait
            self._tokens = min(float(self.tpm), self._tokens + (t - self._t_tokens) * self.tpm / 60.0)
            self._t_tokens = t
            need = min(float(tokens), float(self.tpm))
            if self._tokens < need:
                extra = (need - self._tokens) * 60.0 / self.tpm
                wait += extra
                self._tokens += extra * self.tpm / 60.0
                self._t_tokens = now + wait
                if self.rpm:
                    self._next = max(self._next, now + wait + 60.0 / self.rpm)
            self._tokens -= need
        return wait

    def started(self, t: float | None = None) -> None:
        """A call started at ``t`` (now). After a late start (the caller was busy) the schedule catches up,
        so the rate over a run stays ``rpm``, but never faster than two calls an interval: no burst."""
        if self.rpm:
            self._prev = max(self._prev, self.clock() if t is None else t)

    def used(self, estimated: int, actual: int) -> None:
        """Correct the token booking once a call's real usage is known."""
        if self.tpm and self._tokens is not None:
            self._tokens = min(float(self.tpm), self._tokens + estimated - actual)

    def throttle(self) -> None:
        """A 429: count it and push the next start back by one interval (or a second)."""
        self.throttled += 1
        self._next = max(self._next, self.clock()) + (60.0 / self.rpm if self.rpm else 1.0)
