"""The adaptive protocol without Ray: rounds planned by the allocation, the stopping rule, and a restore
in the middle of a round that plans exactly what the uninterrupted run planned (collector/adaptive.py)."""
from __future__ import annotations

import numpy as np
import pytest

from potsearch.collector.adaptive import Adaptive, make_adaptive, parse_uid
from potsearch.core.errors import InputError

N = 12
V = np.linspace(0.0, 2.0, N)          # hidden potential of states S0..S11 on a ring


def reply(task):
    """A deterministic agent: Metropolis on a ring (steps ±1, ±2), 5 % escapes; drawn from the task's seed."""
    rng = np.random.default_rng(task.seed)
    i = int(task.source_key[1:])
    if rng.random() < 0.05:
        return None
    j = (i + int(rng.choice([-2, -1, 1, 2]))) % N
    if rng.random() < min(1.0, float(np.exp(V[i] - V[j]))):
        return f"S{j}"
    return task.source_key


INIT = [("S0", "S0", None), ("S6", "S6", None)]


def drive(p: Adaptive, store: list, limit: int, batch: int = 7, fail_every: int = 0) -> None:
    """The driver's part: take a batch, answer it (every ``fail_every``-th call fails and is retried),
    store each sample as (uid, source, source text, target, target text, meta), until ``limit`` samples
    are stored or the protocol has nothing more to plan."""
    calls = 0
    while len(store) < limit:
        tasks = p.take(min(batch, limit - len(store)))
        if not tasks:
            return
        for t in tasks:
            calls += 1
            if fail_every and calls % fail_every == 0:
                p.failed(t)
                continue
            k = reply(t)
            p.done(t, k, k, None)
            store.append((t.uid, t.source_key, t.source_key, k, k, None))


def fresh(round_size=40, target=0.4, seed=3, horizon=None) -> Adaptive:
    p = make_adaptive(seed, target, round_size, horizon)
    p.restore(INIT, [])
    return p


def test_rounds_follow_the_allocation_and_the_stopping_rule_ends_the_collection():
    p = fresh()
    store: list = []
    drive(p, store, 100000)
    assert p.finished() and 0 < len(store) < 100000
    rounds = [parse_uid(u) for u, *_ in store]
    assert rounds == sorted(rounds)                     # round r + 1 starts once round r is stored
    # every round holds exactly what the allocation planned from the rounds before it
    for r in range(max(rounds) + 1):
        got = sorted(u for u, *_ in store if parse_uid(u) == r)
        assert got == sorted(u for u, _ in p.positions(r)), r
        assert len(got) <= 40
    s = p.summary()
    assert s["target_met"] and s["n_open"] == 0 and s["open_states"] == []
    assert s["fitted_states"] == s["within_target"] == N and s["max_se"] < 0.4


def test_a_budget_stop_names_the_open_states():
    p = fresh(target=0.05)
    store: list = []
    drive(p, store, 300)
    assert len(store) == 300 and not p.finished()
    s = p.summary()
    assert not s["target_met"] and s["n_open"] == len(s["open_states"]) > 0 and s["max_se"] >= 0.05
    assert "max SE" in p.status()


@pytest.mark.parametrize("horizon", [None, 500])
@pytest.mark.parametrize("cut", [1, 40, 57, 133, 250])
def test_restore_mid_round_finishes_that_round_and_plans_the_same_next_rounds(cut, horizon):
    """Stored samples are the restore's only input; a restore after any prefix (rounds finished and a
    half-done round) continues with the positions the uninterrupted run planned, and the samples of the
    whole collection (the agent answers by uid seed) are the same, none lost, none twice — also with a
    sample budget the plan is made for (triage)."""
    whole: list = []
    drive(fresh(horizon=horizon), whole, 500, fail_every=5)
    part: list = []
    drive(fresh(horizon=horizon), part, cut, batch=3)
    p = make_adaptive(3, 0.4, 40, horizon)
    p.restore(INIT, part)
    drive(p, part, 500, batch=11)
    assert sorted(part) == sorted(whole)
    assert len({u for u, *_ in part}) == len(part)


def test_a_sample_budget_changes_the_plan_once_it_binds():
    """With a horizon the open states cannot all be paid for, the round is planned for the cheapest ones
    (allocation triage); without one, the same counts are planned for every open state."""
    store: list = []
    drive(fresh(target=0.1), store, 200)
    free, tight = make_adaptive(3, 0.1, 40), make_adaptive(3, 0.1, 40, 240)
    free.restore(INIT, store)
    tight.restore(INIT, store)
    r = free.round + 1
    assert free.positions(r) != tight.positions(r)
    assert tight.alloc.shares["triage"] > 0 and free.alloc.shares["triage"] == 0


def test_the_plan_does_not_depend_on_the_order_replies_arrive_in():
    a: list = []
    drive(fresh(), a, 200, batch=1)
    b = a[:]
    p = make_adaptive(3, 0.4, 40)
    rng = np.random.default_rng(0)
    p.restore(INIT, [b[i] for i in rng.permutation(len(b))])   # stored in another order
    q = make_adaptive(3, 0.4, 40)
    q.restore(INIT, a)
    assert [t.uid for t in p.take(1000)] == [t.uid for t in q.take(1000)]


def test_bad_options_are_input_errors():
    with pytest.raises(InputError, match="target-se"):
        Adaptive(0, 0.0, 10)
    with pytest.raises(InputError, match="round-size"):
        Adaptive(0, 0.1, 0)


def test_the_calls_saved_estimate_waits_for_a_state_within_the_target():
    p = fresh(target=0.4)
    assert p.summary()["calls_saved_vs_per_state"] is None   # round 0: nothing fitted yet
    store: list = []
    drive(p, store, 100000)
    s = p.summary()
    assert s["within_target"] > 0 and isinstance(s["calls_saved_vs_per_state"], int)
    assert "saved vs per_state" in p.status()
