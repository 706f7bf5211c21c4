"""The surrogate test instrument: symmetric proposals, exact detailed balance,
drift that breaks it, escapes, speed, labelling."""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from potsearch.agents.registry import load_agent
from potsearch.agents.hidden import ESCAPE_REASON, UNKNOWN_SOURCE, compile_formula
from potsearch.agents.surrogate import (
    FitterSurrogate, WordSurrogate, cycle_graph, exact_transition_matrix, make_surrogate
)
from potsearch.agents.word import WordAgent
from potsearch.core.errors import InputError


@pytest.fixture(scope="module")
def word_agent():
    return load_agent("word")


def word_surrogate(agent, **kw) -> WordSurrogate:
    cfg = replace(agent.config, surrogate=replace(agent.config.surrogate, **kw))
    return make_surrogate(WordAgent(cfg))


def run_chains(sur, n_chains=300, steps=4000, seed=0):
    """Parallel long chains through step_batch; returns counts n[f, g] (self-loops on the diagonal)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, sur.n, size=n_chains)
    keys = [sur.words[i] for i in idx]
    n = np.zeros((sur.n, sur.n), dtype=np.int64)
    for _ in range(steps):
        out = sur.step_batch(keys, rng)
        new = [o.key if o.key is not None else k for o, k in zip(out, keys)]
        a = np.fromiter((sur.index[k] for k in keys), dtype=np.int64, count=n_chains)
        b = np.fromiter((sur.index[k] for k in new), dtype=np.int64, count=n_chains)
        np.add.at(n, (a, b), 1)
        keys = new
    return n


def test_neighbour_graph_is_symmetric_and_regular():
    nb, sign = cycle_graph(50, 6, seed=3)
    assert nb.shape == (50, 6)
    assert not np.any(nb == np.arange(50)[:, None])  # no self-neighbours
    slots = np.zeros((50, 50), dtype=int)
    np.add.at(slots, (np.repeat(np.arange(50), 6), nb.ravel()), 1)
    assert np.array_equal(slots, slots.T)  # q(f->g) = slots/k is symmetric
    assert np.all(sign[:, 0] == 1) and np.all(sign[:, 1] == -1) and not sign[:, 2:].any()
    assert np.array_equal(nb, cycle_graph(50, 6, seed=3)[0])  # seeded


def test_local_neighbour_graph_is_symmetric_and_joins_similar_potentials():
    V = np.random.default_rng(0).normal(0, 3, 200)
    nb, sign = cycle_graph(200, 6, seed=3, V=V, locality=0.2)
    slots = np.zeros((200, 200), dtype=int)
    np.add.at(slots, (np.repeat(np.arange(200), 6), nb.ravel()), 1)
    assert np.array_equal(slots, slots.T) and not np.any(nb == np.arange(200)[:, None])
    assert np.all(sign[:, 0] == 1) and np.all(sign[:, 1] == -1)
    gap_local = np.abs(V[:, None] - V[nb]).mean()
    gap_random = np.abs(V[:, None] - V[cycle_graph(200, 6, seed=3)[0]]).mean()
    assert gap_local < 0.3 * gap_random
    assert np.array_equal(nb, cycle_graph(200, 6, seed=3, V=V, locality=0.2)[0])  # seeded


def test_shipped_word_surrogate_uses_the_local_graph(word_agent):
    sur = make_surrogate(word_agent)
    assert sur.locality == 0.2 and "local" in sur.metadata()["graph"]
    assert np.abs(sur.V[:, None] - sur.V[sur.nb]).mean() < 0.5 * np.std(sur.V)


def test_exact_kernel_satisfies_detailed_balance(word_agent):
    sur = word_surrogate(word_agent)
    T = exact_transition_matrix(sur)
    assert np.allclose(T.sum(1), 1.0)
    pi = np.exp(-(sur.V - sur.V.min()))
    flux = pi[:, None] * T
    assert np.allclose(flux, flux.T, atol=1e-15)
    drifted = exact_transition_matrix(word_surrogate(word_agent, drift=1.0))
    flux = pi[:, None] * drifted
    assert not np.allclose(flux, flux.T, atol=1e-6)


def test_detailed_balance_on_a_long_chain(word_agent):
    """Empirical log T(f->g)/T(g->f) matches V_f - V_g on pairs seen both ways."""
    sur = word_surrogate(word_agent, hidden_potential="0.3*length - 0.5*zipf", locality=None)
    n = run_chains(sur, n_chains=400, steps=3000, seed=1)  # 1.2M transitions
    N = n.sum(1)
    f, g = np.nonzero(np.triu(n, 1))
    ok = (n[f, g] >= 100) & (n[g, f] >= 100)
    f, g = f[ok], g[ok]
    assert f.size > 200
    emp = np.log(n[f, g] / N[f]) - np.log(n[g, f] / N[g])
    true = sur.V[f] - sur.V[g]
    err = emp - true
    sigma = np.sqrt(1 / n[f, g] + 1 / n[g, f])
    assert np.corrcoef(emp, true)[0, 1] > 0.98
    assert abs(np.mean(err)) < 0.02
    assert np.mean((err / sigma) ** 2) < 2.0  # chi2/ndf ~ 1 (chain correlation allows a bit more)


def test_drift_breaks_detailed_balance(word_agent):
    d = 1.0
    sur = word_surrogate(word_agent, hidden_potential="0.3*length - 0.5*zipf", drift=d)
    n = run_chains(sur, n_chains=400, steps=3000, seed=2)
    N = n.sum(1)
    # along neighbour cycle 0 (forward direction) the log-ratio carries the extra +d
    f = np.arange(sur.n)
    g = sur.nb[:, 0]
    ok = (n[f, g] >= 50) & (n[g, f] >= 50) & (sur.nb[g, 0] != f)
    f, g = f[ok], g[ok]
    emp = np.log(n[f, g] / N[f]) - np.log(n[g, f] / N[g])
    excess = emp - (sur.V[f] - sur.V[g])
    assert f.size > 50
    assert np.mean(excess) == pytest.approx(d, abs=0.1)
    # the other cycles still look balanced; the potential cannot explain both
    f2 = np.arange(sur.n)
    g2 = sur.nb[:, 2]
    ok2 = (n[f2, g2] >= 50) & (n[g2, f2] >= 50)
    e2 = np.log(n[f2[ok2], g2[ok2]] / N[f2[ok2]]) - np.log(n[g2[ok2], f2[ok2]] / N[g2[ok2]])
    assert abs(np.mean(e2 - (sur.V[f2[ok2]] - sur.V[g2[ok2]]))) < 0.05


def test_escape_probability_and_unknown_source(word_agent):
    sur = word_surrogate(word_agent, escape_prob=0.25)
    rng = np.random.default_rng(0)
    out = sur.step_batch(["WIZARDS"] * 20000, rng)
    esc = [o for o in out if o.target is None]
    assert len(esc) / 20000 == pytest.approx(0.25, abs=0.015)
    assert {o.reason for o in esc} == {ESCAPE_REASON}
    bad = sur.step_batch(["NOTAWORD", "WIZARDS"], rng)
    assert bad[0].target is None and bad[0].reason == UNKNOWN_SOURCE
    assert sur.step_batch([], rng) == []
    one = sur.step("WIZARDS", rng)
    assert one.key in sur.index


def test_outcomes_follow_the_agent_contract(word_agent):
    sur = word_surrogate(word_agent)
    rng = np.random.default_rng(5)
    src = ["WIZARDS"] * 2000
    outs = sur.step_batch(src, rng)
    keys = {o.key for o in outs}
    assert "WIZARDS" in keys  # rejections are self-loops
    assert keys - {"WIZARDS"} <= {sur.words[j] for j in sur.nb[sur.index["WIZARDS"]]}
    for o in outs[:50]:
        assert word_agent.parse(o.target, "WIZARDS").key == o.key  # surrogate states are agent states


def test_metadata_names_the_surrogate_and_hidden_v(word_agent):
    sur = word_surrogate(word_agent, drift=0.5)
    md = sur.metadata()
    assert md["surrogate"] is True and "SURROGATE" in md["label"] and "not a language model" in md["label"]
    assert md["hidden_potential"] == word_agent.config.surrogate.hidden_potential
    assert md["drift"] == 0.5 and md["detailed_balance"] is False
    assert sur.model == "surrogate" and sur.name.startswith("surrogate")
    V = sur.potentials()
    assert V["BUZZY"] == pytest.approx(1.6 * 5 - 2.4 * 2.46)
    assert sur.hidden_potential("BUZZY") == V["BUZZY"]


def test_step_batch_is_fast(word_agent):
    sur = word_surrogate(word_agent)
    rng = np.random.default_rng(0)
    keys = [sur.words[i] for i in rng.integers(0, sur.n, size=5000)]
    sur.step_batch(keys, rng)
    t = time.perf_counter()
    reps = 20
    for _ in range(reps):
        sur.step_batch(keys, rng)
    rate = reps * len(keys) / (time.perf_counter() - t)
    assert rate > 200_000, rate  # the runner needs >= 2,000/s end to end


@pytest.mark.parametrize(
    "formula,msg",
    [
        ("__import__('os').system('x')", "not allowed"),
        ("length.__class__", "not allowed"),
        ("0.3*lenght", "unknown feature 'lenght'"),
        ("0.3*length +", "not a formula"),
        ("exec('1')", "not allowed"),
        ("[length]", "not allowed"),
    ],
)
def test_hidden_potential_formula_is_safe(formula, msg):
    with pytest.raises(InputError, match=msg):
        compile_formula(formula, ("length", "zipf"))


def test_formula_evaluates_vectorised():
    f = compile_formula("0.3*length - 0.05*vowels + log1p(abs(zipf))**2", ("length", "vowels", "zipf"))
    x = {"length": np.array([5.0, 8.0]), "vowels": np.array([1.0, 3.0]), "zipf": np.array([2.0, -1.0])}
    assert f(x) == pytest.approx(0.3 * x["length"] - 0.05 * x["vowels"] + np.log1p(np.abs(x["zipf"])) ** 2)


# ---------------------------------------------------------------- fitter surrogate
@pytest.fixture(scope="module")
def fitter_agent():
    return load_agent("fitter")


def fitter_surrogate(agent, **kw) -> FitterSurrogate:
    from potsearch.agents.fitter import FitterAgent

    cfg = replace(agent.config, surrogate=replace(agent.config.surrogate, **kw))
    a = FitterAgent.__new__(FitterAgent)
    a.__dict__.update(agent.__dict__)
    a.config = cfg
    return make_surrogate(a)


def test_fitter_surrogate_states_are_fitter_states(fitter_agent):
    sur = fitter_surrogate(fitter_agent)
    init = sur.initial_states(None)
    assert len(init) == len(sur.basis)
    for text, key, meta in init:
        assert fitter_agent.parse(text, "s").key == key and meta["surrogate"] is True
    md = sur.metadata()
    assert md["surrogate"] and md["task"] == "fitter" and md["states"] == 8 + 28 + 56 + 70


def test_fitter_surrogate_detailed_balance_and_drift(fitter_agent):
    for drift in (0.0, 1.0):
        sur = fitter_surrogate(fitter_agent, drift=drift, hidden_potential="0.7*terms + 0.3*n_funcs - 0.1*nodes")
        rng = np.random.default_rng(3)
        keys = [k for _, k, _ in sur.initial_states(None)] * 60
        M = 1 << sur.B
        n = np.zeros((M, M), dtype=np.int64)
        for _ in range(1500):
            out = sur.step_batch(keys, rng)
            a = np.array([sur._key2mask[k] for k in keys])
            b = np.array([o.meta["mask"] for o in out])
            np.add.at(n, (a, b), 1)
            keys = [o.key for o in out]
        N = n.sum(1)
        f, g = np.nonzero(np.triu(n, 1))
        ok = (n[f, g] >= 200) & (n[g, f] >= 200)
        f, g = f[ok], g[ok]
        emp = np.log(n[f, g] / N[f]) - np.log(n[g, f] / N[g])
        dev = np.abs(emp - (sur.V[f] - sur.V[g]))
        assert dev.size > 50
        if drift == 0.0:
            assert np.mean(dev) < 0.1
        else:
            assert np.mean(dev) > 0.3  # a bias of +-1 on a share of the edges


def test_locality_degenerate_cases_still_give_k_neighbours():
    """A constant V (no spread to follow) must not collapse the k/2 cycles into one ring."""
    nb, _ = cycle_graph(300, 6, seed=1, V=np.zeros(300), locality=0.2)
    distinct = np.mean([len(set(r)) for r in nb.tolist()])
    assert distinct > 5.5
    slots = np.zeros((300, 300), dtype=int)
    np.add.at(slots, (np.repeat(np.arange(300), 6), nb.ravel()), 1)
    assert np.array_equal(slots, slots.T)


@pytest.mark.parametrize("value,needle", [("0", "must be >= 1e-06"), (".nan", "nan"), ("-1", "must be >= 1e-06"),
                                         ('"a"', "expected a number")])
def test_bad_locality_is_refused(word_yaml, value, needle):
    from potsearch.agents.config import load_config

    with pytest.raises(InputError, match=needle):
        load_config(word_yaml(("locality: 0.2", f"locality: {value}")))


def test_locality_default_and_null(word_yaml):
    from potsearch.agents.config import load_config

    assert load_config(word_yaml(("  locality: 0.2\n", ""))).surrogate.locality == 0.2
    assert load_config(word_yaml(("locality: 0.2", "locality: null"))).surrogate.locality is None


def test_fitter_surrogate_hidden_law_is_written_in_the_evolve_feature_names(fitter_agent):
    """One feature table: the shipped hidden law reads potsearch.law.features' fitter features of the
    state's key, so the search can write it exactly."""
    from potsearch.law.features import FITTER_FEATURES, feature_table

    assert fitter_agent.config.surrogate.hidden_potential == "0.7*terms + 0.3*n_funcs"
    sur = make_surrogate(fitter_agent)
    pots = sur.potentials()
    keys = sorted(pots)
    assert len(keys) == sur.metadata()["states"] == 162
    x = feature_table("fitter", keys)
    V = np.array([pots[k] for k in keys])
    assert np.allclose(V, 0.7 * x["terms"] + 0.3 * x["n_funcs"], atol=1e-12)
    assert set(np.unique(x["terms"])) == {2.0, 3.0, 4.0, 5.0}      # intercept + 1..4 basis terms
    with pytest.raises(InputError, match="unknown feature 'funcs'"):
        fitter_surrogate(fitter_agent, hidden_potential="0.7*terms + 0.3*funcs")
    assert "funcs" not in FITTER_FEATURES
