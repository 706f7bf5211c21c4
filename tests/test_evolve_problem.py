"""The search problem: the seeded sample split, both graphs on the fit's states, floors, baseline."""
import numpy as np
import pytest

from potsearch.search.problem import fit_params, load_problem, split_counts
from potsearch.store import RunStore

from evolve_helpers import small_run


def test_split_is_per_sample_seeded_and_complete(tmp_path_factory):
    run = small_run(tmp_path_factory, "split")
    counts = RunStore.open(run).counts()
    a_tr, a_ho = split_counts(counts, 0.2, seed=5)
    b_tr, b_ho = split_counts(counts, 0.2, seed=5)
    c_tr, _ = split_counts(counts, 0.2, seed=6)
    assert a_tr.total + a_ho.total == counts.total
    assert a_ho.total == pytest.approx(0.2 * counts.total, rel=0.05)
    np.testing.assert_array_equal(a_tr.count, b_tr.count)
    assert not np.array_equal(a_tr.count, c_tr.count)


def test_problem_graphs_floors_and_baseline(tmp_path_factory):
    run = small_run(tmp_path_factory, "prob")
    p = load_problem(run, seed=0)
    from potsearch.store.rundir import load_fit

    fit = load_fit(run)
    assert p.names == fit.names and p.train.names == p.heldout.names == fit.names
    assert p.agent == "word" and "vowels" in p.usable and "letter_sum" not in p.usable  # constant: all sum to 100
    assert p.split["train_samples"] + p.split["heldout_samples"] == RunStore.open(run).counts().total
    # S_min of each part is a floor for any potential on that part
    V = np.random.default_rng(0).normal(size=p.n_states)
    from potsearch.law.scoring import action_value

    assert action_value(V, p.data.train) >= p.s_min_train
    assert p.s_min_heldout <= p.baseline_heldout
    # fit_params: the public entry point used by polish / attribute
    ns = {"np": np}
    exec("N_PARAMS = 2\ndef potential(x, p):\n    return p[0] * x['vowels'] + p[1] * x['zipf']\n", ns)
    params, S = fit_params(ns["potential"], p, p0=[0.1, 0.1])
    assert S <= 1.01 * p.s_min_train and params[0] > 0 > params[1]     # the hidden V = 0.8 vowels - 0.6 zipf
    params2, S2 = fit_params(ns["potential"], p)                         # N_PARAMS read from the function's module
    assert S2 == pytest.approx(S, rel=1e-6)


@pytest.mark.parametrize("weight,kernel", [("high_reject", "softplus"), ("low_reject", "exp")])
def test_problem_follows_the_fit_options(tmp_path_factory, weight, kernel):
    from potsearch.stages.fit import FitOptions, run_fit, write_fit

    run = small_run(tmp_path_factory, f"opt_{weight}_{kernel}")
    store = RunStore.open(run)
    g, res = run_fit(store.counts(), FitOptions(weight=weight, kernel=kernel))
    write_fit(run / "fit", g, res)
    p = load_problem(run, seed=0)
    assert p.train.weight == weight and p.kernel == kernel
    assert np.isfinite([p.s_min_train, p.s_min_heldout, p.baseline_heldout]).all()
    # our fast scorer and the core action agree on this graph and kernel
    from potsearch.science.action import action_of, fit_exact, make_kernel
    from potsearch.law.scoring import action_value

    V = np.random.default_rng(1).normal(size=p.n_states)
    assert action_value(V, p.data.train, p.kernel, p.beta) == pytest.approx(
        action_of(V, p.train, make_kernel(kernel)), rel=1e-12)
    assert p.s_min_train == pytest.approx(fit_exact(p.train, make_kernel(kernel)).action)


def test_a_condition_fit_is_searched_with_its_own_escape_convention(tmp_path, table2):
    """fit --escapes condition: evolve's train / held-out graphs count N(f) without escapes, as the fit did
    (ATTITUDE escapes 3914 of its 4000 samples in the paper's Claude-4 table)."""
    import potsearch as ps
    from potsearch.search.problem import load_problem

    run = tmp_path / "r"
    ps.import_transitions(table2, run)
    ps.fit(run, escapes="condition")
    prob = load_problem(run)
    i = prob.names.index("ATTITUDE")
    n = prob.train.visits[i] + prob.heldout.visits[i]
    assert n == 4000 - 3914
    ps.fit(run)
    prob = load_problem(run)
    assert prob.train.visits[i] + prob.heldout.visits[i] == 4000
