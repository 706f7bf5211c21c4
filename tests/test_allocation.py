"""Adaptive allocation (science/allocation.py): standard errors against the bootstrap, determinism, the
stopping rule, stopped / one-way / discovery states."""
from __future__ import annotations

import numpy as np
import pytest

from potsearch.science.action import fit_exact
from potsearch.science.allocation import (
    FITTED,
    ONE_WAY,
    UNSEEN,
    AllocationConfig,
    allocate,
    state_errors,
    water_fill,
)
from potsearch.science.graph import build_graph
from potsearch.science.synthetic import metropolis_chain
from potsearch.science.uncertainty import resample_counts
from potsearch.store import Counts


def _chain(n=10, samples=600, seed=3, escape=0.2, sigma=0.6):
    return metropolis_chain(n_states=n, degree=3, samples_per_state=samples, seed=seed, escape=escape,
                           sigma=sigma).counts


def _extend(counts: Counts, states: list[str], rows: list[tuple[int, int, int]]) -> Counts:
    s, d, c = zip(*rows)
    return Counts(counts.states + states, np.concatenate([counts.src, s]), np.concatenate([counts.dst, d]),
                  np.concatenate([counts.count, c]))


@pytest.fixture(scope="module")
def bootstrap():
    """A small chain, its fit, and the multinomial bootstrap's SEs in the SCC-mean gauge."""
    counts = _chain()
    g = build_graph(counts)
    rng = np.random.default_rng(0)
    reps = []
    for _ in range(120):
        r = fit_exact(build_graph(resample_counts(counts, rng)))
        assert r.n_sccs == 1
        reps.append(r.scc_potential - r.scc_potential.mean())
    return g, fit_exact(g), np.std(reps, axis=0, ddof=1)


@pytest.mark.parametrize("exact_limit,probes", [(1500, 64), (0, 600)])
def test_standard_errors_match_the_bootstrap(bootstrap, exact_limit, probes):
    g, fit, boot = bootstrap
    se = state_errors(g, fit, AllocationConfig(exact_limit=exact_limit, probes=probes)).se
    assert np.all(np.abs(se / boot - 1) < 0.2), np.round(se / boot, 2)


def test_deterministic_for_a_seed():
    counts = _chain(n=14, samples=60)
    for cfg in (AllocationConfig(target_se=0.05), AllocationConfig(target_se=0.05, exact_limit=0, probes=16)):
        a, b = allocate(counts, 300, cfg, seed=5), allocate(counts, 300, cfg, seed=5)
        assert np.array_equal(a.samples, b.samples) and np.array_equal(a.se, b.se, equal_nan=True)
        assert a.samples.sum() > 0


def test_stopping_rule_lists_the_open_states():
    counts = _chain(n=12, samples=80)
    loose = allocate(counts, 500, AllocationConfig(target_se=50.0))
    assert loose.done and loose.open_states == [] and loose.samples.sum() == 0 and loose.stopped.all()
    tight = allocate(counts, 500, AllocationConfig(target_se=0.05))
    assert not tight.done
    assert tight.open_states == [s for s, e in zip(tight.states, tight.se) if e >= 0.05]
    assert tight.max_se == pytest.approx(np.nanmax(tight.se))
    assert 0 < tight.samples.sum() <= 500


def test_stopped_states_get_nothing():
    a, b = _chain(n=8, samples=4000, seed=1), _chain(n=8, samples=30, seed=2)
    k = len(a.states)
    counts = Counts([f"A{i}" for i in range(k)] + [f"B{i}" for i in range(len(b.states))],
                    np.concatenate([a.src, b.src + k]), np.concatenate([a.dst, np.where(b.dst >= 0, b.dst + k, b.dst)]),
                    np.concatenate([a.count, b.count]))
    al = allocate(counts, 400, AllocationConfig(target_se=0.12, discovery=0.0))
    sa = np.array([s.startswith("A") for s in al.states])
    assert al.stopped[sa].all() and not al.stopped[~sa].any()
    assert al.samples[sa].sum() == 0 and al.samples[~sa].sum() > 0


def test_discovery_share_goes_to_unseen_states():
    base = _chain(n=10, samples=50)
    counts = _extend(base, ["new1", "new2", "new3"], [(0, 10, 1), (1, 11, 1), (2, 12, 1)])
    al = allocate(counts, 200, AllocationConfig(target_se=0.01, discovery=0.2))
    unseen = al.kind == UNSEEN
    assert unseen.sum() == 3 and al.samples[unseen].sum() == 40 and al.shares["discovery"] == 40
    assert al.samples[unseen].max() - al.samples[unseen].min() <= 1
    # an unseen state is explored up to `explore` samples; the share's rest goes to the design
    big = allocate(counts, 200, AllocationConfig(target_se=0.01, discovery=0.5, explore=16))
    assert list(big.samples[unseen]) == [16, 16, 16] and big.shares["design"] > 0
    none = allocate(counts, 200, AllocationConfig(target_se=0.01, discovery=0.0))
    assert none.samples[none.kind == UNSEEN].sum() == 0 and none.samples.sum() > 0


@pytest.mark.parametrize("moves,decisive", [(30, True), (1, False)])
def test_one_way_states_are_capped_once_their_bound_is_decisive(moves, decisive):
    base = _chain(n=10, samples=200)
    # state X moves into state 0 `moves` times in 40 samples; nothing ever moves back
    counts = _extend(base, ["X"], [(10, 0, moves), (10, 10, 40 - moves)])
    al = allocate(counts, 300, AllocationConfig(target_se=0.01, decisive_gap=2.0, oneway_cap=2))
    x = al.states.index("X")
    assert al.kind[x] == ONE_WAY and np.isnan(al.se[x])
    assert al.gap[x] == pytest.approx(np.log(moves / 40 * 200))
    assert bool(al.capped[x]) is decisive
    assert al.samples[x] == (0 if decisive else 2)
    assert (al.kind[:10] == FITTED).all()


def test_water_fill():
    c = np.array([4.0, 1.0, 0.0, 9.0])
    N = np.array([10, 10, 10, 10])
    d = water_fill(c, N, 60, np.array([100, 100, 100, 5]))
    assert d.sum() == 60 and d[2] == 0 and d[3] == 5
    # uncapped: N + d proportional to sqrt(c), 2 : 1 for the first two
    d = water_fill(c[:2], N[:2], 30, np.array([100, 100]))
    assert tuple(d) == (23, 7)          # 10 + d = (33.3, 16.7), rounded
    assert water_fill(c, N, 0, np.full(4, 9)).sum() == 0


def test_a_state_is_not_met_on_a_handful_of_moves():
    # A <-> B once each way in 100 samples each: a 2-state SCC whose SE rests on two moves
    counts = Counts(["A", "B"], np.array([0, 0, 1, 1]), np.array([1, 0, 0, 1]), np.array([1, 99, 1, 99]))
    thin = allocate(counts, 100, AllocationConfig(target_se=50.0, min_moves=10))
    assert not thin.done and thin.open_states == ["A", "B"] and thin.samples.sum() > 0
    assert allocate(counts, 100, AllocationConfig(target_se=50.0, min_moves=2)).done


def test_before_any_sample_the_round_explores():
    empty = np.zeros(0, dtype=np.int64)
    counts = Counts(["a", "b", "c"], empty, empty, empty)
    al = allocate(counts, 30, AllocationConfig(target_se=0.2))
    assert list(al.samples) == [10, 10, 10] and not al.done and al.shares["discovery"] == 30
    assert list(allocate(counts, 100, AllocationConfig(explore=16)).samples) == [16, 16, 16]


def test_a_one_way_state_is_explored_before_it_is_capped():
    """A state seen moving one way in a handful of samples is explored (up to ``explore``) like an unseen
    one: a few more samples may show the way back."""
    base = _chain(n=10, samples=200)
    counts = _extend(base, ["X", "Y"], [(10, 11, 1), (10, 10, 3), (11, 11, 2)])   # X -> Y once, Y seen twice
    al = allocate(counts, 300, AllocationConfig(target_se=0.01, explore=16))
    x = al.states.index("X")
    assert al.kind[x] == ONE_WAY and not al.capped[x] and al.samples[x] == 12


def test_triage_designs_for_the_cheapest_open_states_the_budget_can_pay_for():
    counts = _chain(n=14, samples=40, escape=0.4, sigma=1.2)
    cfg = AllocationConfig(target_se=0.15, discovery=0.0, bulk=0.0)
    free = allocate(counts, 400, cfg)
    tight = allocate(counts, 400, cfg, remaining=300)
    assert free.shares["triage"] == 0 and 0 < tight.shares["triage"] < len(free.open_states)
    need = np.maximum(np.ceil(tight.visits * np.clip(tight.se ** 2 / 0.15 ** 2 - 1, 0, None) * cfg.need_margin) + 1,
                      cfg.min_samples - tight.visits)
    open_ = np.isin(tight.states, tight.open_states)
    got = open_ & (tight.samples > 0)
    assert got.any() and (open_ & ~got).any()
    assert need[got].max() <= need[open_ & ~got].min()       # the funded ones need the least
    assert tight.samples.sum() <= 300
    # a budget that pays for everything changes nothing
    assert np.array_equal(allocate(counts, 400, cfg, remaining=10 ** 9).samples, free.samples)


def test_met_states_keep_a_small_weight_in_the_design():
    counts = _chain(n=12, samples=150, escape=0.5, sigma=1.0)
    base = allocate(counts, 2000, AllocationConfig(target_se=0.3, discovery=0.0, bulk=0.0))
    assert base.met.any() and (~base.met).any()
    heavy = allocate(counts, 2000, AllocationConfig(target_se=0.3, discovery=0.0, bulk=0.5))
    assert heavy.samples[heavy.met].sum() > base.samples[base.met].sum()


def test_under_triage_exploring_is_priced_with_what_an_explored_state_then_needs():
    """Thirty states seen once and ten fitted states a little short of the target: exploring a new state
    (15 samples) looks cheaper than finishing a fitted one, but does not bring it within the target."""
    base = _chain(n=10, samples=60, escape=0.1, sigma=0.5)
    new = [f"N{i}" for i in range(30)]
    counts = _extend(base, new, [(i % 10, 10 + i, 1) for i in range(30)] + [(10 + i, 10 + i, 1) for i in range(30)])
    cfg = AllocationConfig(target_se=0.15, bulk=0.0)
    al = allocate(counts, 300, cfg, remaining=300)
    fitted = al.kind == FITTED
    assert al.shares["triage"] > 0 and (~fitted & (al.samples > 0)).sum() < 30
    assert al.samples[fitted].sum() > al.samples[~fitted].sum()
