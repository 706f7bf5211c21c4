"""Budget and pace bookkeeping (llm/limits.py): a cost cap that counts calls in flight, an even pacer."""
from __future__ import annotations

import pytest

from potsearch.core.errors import InputError
from potsearch.llm.limits import Pacer, SpendCap, check_priced, price


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_spend_cap_never_lets_calls_in_flight_pass_the_cap():
    cap = SpendCap(cap=1.0, per_call=0.3)
    assert cap.may_start(8) == 3          # 3 x 0.3 fits, a fourth could pass the cap
    cap.started(3)
    assert cap.may_start(1) == 0
    for cost in (0.25, 0.3, 0.1):
        cap.finished(cost)
    assert cap.spent == pytest.approx(0.65) and cap.may_start(5) == 1
    cap.started(1)
    cap.finished(0.3)
    assert cap.reached and cap.spent <= 1.0


def test_spend_cap_with_workers_stays_within_one_call():
    """8 workers that each keep one call in flight: the final spend never passes the cap."""
    import random

    rng = random.Random(0)
    for per_call in (0.0004, 0.001, 0.0123):
        cap = SpendCap(cap=0.05, per_call=per_call)
        while not cap.reached:
            n = cap.may_start(8 - cap.inflight)
            cap.started(n)
            if cap.inflight:
                cap.finished(per_call * rng.uniform(0.3, 1.0))
        assert cap.spent <= 0.05


def test_no_cap_means_no_limit():
    assert SpendCap(cap=None, per_call=1.0).may_start(64) == 64


def test_pacer_spreads_requests_evenly():
    clk = Clock()
    p = Pacer(rpm=60, clock=clk)
    starts = []
    for _ in range(120):
        clk.t += p.delay()
        starts.append(clk.t)
    rate = (len(starts) - 1) / (starts[-1] - starts[0]) * 60
    assert rate == pytest.approx(60, rel=0.01)
    assert starts[1] - starts[0] == pytest.approx(1.0)     # no burst at start-up


def test_pacer_tokens_per_minute():
    clk = Clock()
    p = Pacer(tpm=6000, clock=clk)
    used = 0
    while clk.t < 120:
        clk.t += p.delay(500)
        used += 500
    assert used / clk.t * 60 == pytest.approx(6000, rel=0.1)


def test_pacer_counts_429s_and_slows_down():
    clk = Clock()
    p = Pacer(rpm=120, clock=clk)
    p.delay()
    p.throttle()
    assert p.throttled == 1 and p.delay() == pytest.approx(1.0)


def test_bad_limits_and_unpriced_caps_are_refused_in_one_line():
    with pytest.raises(InputError, match="rpm"):
        Pacer(rpm=0)
    with pytest.raises(InputError, match="allow-unpriced"):
        check_priced("openai/no-such-model-xyz", 1.0, None, allow_unpriced=False)
    check_priced("openai/no-such-model-xyz", 1.0, None, allow_unpriced=True)
    check_priced("openai/no-such-model-xyz", None, None, allow_unpriced=False)     # no cap: nothing to enforce
    assert price("openai/standin", {"openai/standin": {"input": 1.0, "output": 2.0}}) == (1e-6, 2e-6)
    assert price("openai/gpt-4o-mini") is not None and price("local") == (0.0, 0.0)


def test_a_late_start_is_not_followed_by_a_burst():
    clk = Clock()
    p = Pacer(rpm=60, clock=clk)
    assert p.delay() == 0.0
    assert p.delay() == pytest.approx(1.0)    # booked for t = 1
    clk.t = 10.0                              # the caller was busy: the call starts at 10
    p.started()
    waits = [p.delay() for _ in range(6)]    # booked in a row, no time passing
    assert waits[0] == pytest.approx(0.5)     # catching up at most twice as fast, not at once
    assert [b - a for a, b in zip(waits, waits[1:])] == pytest.approx([0.5] * 5)
    assert sum(1 for w in waits if w < 4.0) <= 8     # never more than two an interval


def test_prices_tables_are_checked():
    from potsearch.llm.limits import check_prices

    assert check_prices({"prices": {"m": {"input": 1, "output": 2}}}, "f") == {"m": {"input": 1.0, "output": 2.0}}
    for bad in ({}, {"m": {"input": 1}}, {"m": {"input": -1, "output": 1}}, ["m"]):
        with pytest.raises(InputError):
            check_prices(bad, "f")
