"""Scoring: the action on pairs equals potsearch.science.action; parameter fits; errors; the sandbox task."""
import numpy as np
import pytest

from potsearch.science.action import action_of, make_kernel
from potsearch.law.scoring import (
    Edges, FitSettings, ScoringData, action_value, complexity_of, fit_parameters, score_function,
    score_program
)
from potsearch.science.graph import Graph


def _toy(n=40, seed=0, kernel="softplus"):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.uniform(0, 3, n)
    V = 1.5 * x1 - 0.7 * x2
    src = rng.integers(0, n, 600)
    dst = rng.integers(0, n, 600)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    key = np.unique(src * n + dst)
    src, dst = key // n, key % n
    w = 1.0 / (1.0 + np.exp(V[dst] - V[src]))  # downhill moves more likely
    e = Edges(src, dst, w, n)
    data = ScoringData(features={"a": x1, "b": x2}, n_states=n, train=e, heldout=e, kernel=kernel)
    return data, V


@pytest.mark.parametrize("kernel,beta", [("softplus", 1.0), ("exp", 1.0), ("exp", 2.5)])
def test_action_on_pairs_matches_core(kernel, beta):
    data, V = _toy()
    e = data.train
    g = Graph(names=[str(i) for i in range(e.n_states)], visits=np.ones(e.n_states, int), src=e.src, dst=e.dst,
              n=np.ones(len(e.src), int), w=e.w, weight="low_reject", n0=1.0, min_visits=1, n_samples=1,
              n_states_all=e.n_states)
    W = np.random.default_rng(1).normal(size=e.n_states)
    assert action_value(W, e, kernel, beta) == pytest.approx(action_of(W, g, make_kernel(kernel, beta)), rel=1e-12)


def test_fit_linear_params_reaches_the_optimum():
    data, V = _toy()
    fn = lambda x, p: p[0] * x["a"] + p[1] * x["b"]  # noqa: E731
    p, S, info = fit_parameters(fn, 2, data, p0=[0.1, 0.1], settings=FitSettings(starts=1, max_iter=50, tol=1e-12))
    # compare with a direct scipy minimisation of the same objective
    from scipy.optimize import minimize

    r = minimize(lambda q: action_value(fn(data.features, q), data.train), [0.1, 0.1], method="Nelder-Mead",
                 options={"xatol": 1e-10, "fatol": 1e-14, "maxiter": 5000})
    assert S <= r.fun + 1e-10
    np.testing.assert_allclose(p, r.x, atol=1e-4)


def test_multiplicative_params_need_a_second_start():
    data, V = _toy()
    fn = lambda x, p: p[0] * (x["a"] + p[1] * x["b"])  # noqa: E731
    _, S2, _ = fit_parameters(fn, 2, data, p0=[1.0, 1.0], seed=3, settings=FitSettings(starts=4))
    lin = lambda x, p: p[0] * x["a"] + p[1] * x["b"]  # noqa: E731
    _, S_lin, _ = fit_parameters(lin, 2, data, settings=FitSettings(starts=1))
    assert S2 == pytest.approx(S_lin, rel=1e-6)


def test_score_function_reports_candidate_errors():
    data, _ = _toy()
    bad_shape = score_function(lambda x, p: np.ones(3) * p[0], 1, data)
    assert bad_shape["error"].startswith("potential returned shape")
    nan = score_function(lambda x, p: p[0] * np.log(x["a"] - 10), 1, data)
    assert "not finite" in nan["error"]
    key = score_function(lambda x, p: p[0] * x["nope"], 1, data)
    assert key["error"].startswith("KeyError")
    ok = score_function(lambda x, p: p[0] * x["a"], 1, data, source="N_PARAMS = 1\ndef potential(x, p):\n"
                        "    return p[0] * x['a']\n")
    assert ok["error"] is None and ok["train_action"] > 0 and ok["complexity"] > 0
    assert ok["gap"] == pytest.approx(ok["train_action"] - data.s_min_train)


def test_scoring_checks_values_with_the_sandbox_check():
    # one check of a candidate's values, in the sandbox (results.potential_values), used by scoring
    from potsearch.law import scoring
    from potsearch.sandbox import potential_values
    from potsearch.law.values import potential_values as leaf

    assert scoring.potential_values is potential_values is leaf
    data, _ = _toy()
    n = data.n_states
    for returned, why in [(lambda x, p: x["a"] > 0, "dtype bool"), (lambda x, p: [p[0]] * n, "returned list"),
                          (lambda x, p: None, "returned NoneType"), (lambda x, p: True, "returned bool")]:
        out = score_function(returned, 1, data)
        assert out["error"].startswith("potential returned") and why in out["error"], out["error"]
        assert out["train_action"] is None
    # non-finite values at a trial step are the fit's business (the step is refused), not an error
    with pytest.raises(ValueError):
        potential_values(np.array([1.0, np.nan]), 2)
    assert np.isnan(potential_values(np.array([1.0, np.nan]), 2, finite=False)[1])
    # on its way to the optimum at p[1] = 0 the fit tries p[1] < 0, where the sqrt is NaN: refused, not an error
    ok = score_function(lambda x, p: p[0] * x["a"] + np.sqrt(p[1]) * x["b"], 2, data)
    assert ok["error"] is None and np.isfinite(ok["train_action"]) and 0 <= ok["params"][1] < 1e-6


def test_complexity_counts_ast_nodes():
    assert complexity_of("N_PARAMS = 1\ndef potential(x, p):\n    return p[0]\n") == 4  # Return Subscript Name Constant
    assert complexity_of("def potential(x, p):\n    return p[0] * x['a']\n") == 9
    assert complexity_of("def potential(x, p):\n    return (p[0] *\n  x['a'])  # comment\n") == 9
    assert complexity_of("def potential(x, p)\n") == 0


def test_score_program_roundtrips_the_payload():
    data, _ = _toy()
    payload = data.payload()
    import json

    payload = json.loads(json.dumps(payload))  # what the sandbox transports
    ns = {"np": np}
    exec("N_PARAMS = 2\ndef potential(x, p):\n    return p[0] * x['a'] + p[1] * x['b']\n", ns)
    out = score_program(ns, dict(payload, source="x", seed=0))
    direct = score_function(ns["potential"], 2, data)
    assert out["train_action"] == pytest.approx(direct["train_action"], rel=1e-9)
    assert score_program({}, payload)["error"].startswith("the program defines no function")
    assert score_program({"potential": ns["potential"], "N_PARAMS": "2"}, payload)["error"].startswith("N_PARAMS")
