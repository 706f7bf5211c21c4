"""Diagnostics: paper Table 2 acceptance, Table 4 numbers, majority vote, loop-test algebra and calibration."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

from potsearch.science import diagnostics as D
from potsearch.stages.fit import FitOptions, load_input, run_fit
from potsearch.science.graph import build_graph
from potsearch.views.plots import diagram_layout
from potsearch.science.synthetic import metropolis_chain

TABLE2 = Path(__file__).resolve().parents[1] / "data" / "table2_claude4_word.csv"


@pytest.fixture(scope="module")
def table2():
    g, res = run_fit(load_input(TABLE2).counts, FitOptions())
    return g, res, res.target_potential()


# ----------------------------------------------------------------------------- Table 2 acceptance
def test_table2_pair_test_lists_both_pairs_with_exact_agreement(table2):
    g, res, V = table2
    p = D.pair_test(g, V)
    t = p["table"]
    pairs = {frozenset((f, h)): i for i, (f, h) in enumerate(zip(t["f"], t["g"]))}
    assert set(pairs) == {frozenset({"ATTITUDE", "PERSONAL"}), frozenset({"ATTITUDE", "PROBLEMS"})}
    for other, n_out, n_back in (("PERSONAL", 66, 3879), ("PROBLEMS", 20, 3558)):
        i = pairs[frozenset({"ATTITUDE", other})]
        sign = 1 if t["f"][i] == "ATTITUDE" else -1
        # both states were sampled 4000 times, so log T ratio = log of the count ratio (paper Eq 19)
        assert t["log_ratio"][i] == pytest.approx(sign * math.log(n_out / n_back), abs=1e-12)
        assert abs(t["dV"][i] - t["log_ratio"][i]) < 1e-8
    assert p["ndf"] == 0 and p["p_value"] is None          # a tree of pairs: nothing left to test
    assert D.verdict(D.loop_test(g), p)["status"] == "untestable"


def test_table2_exclusion_has_turkey_and_buzzy_with_eq25_bounds(table2):
    g, res, V = table2
    ex = D.exclusion_test(g, V, res.scc)
    t = ex["table"]
    rows = {(f, h): i for i, (f, h) in enumerate(zip(t["f"], t["g"]))}
    assert set(rows) == {("TURKEY", "ATTITUDE"), ("BUZZY", "ATTITUDE"), ("BUZZY", "TURKEY")}
    # design notes §2: V_TUR >~ log(4000 * 1), V_BUZ - V_TUR >~ log(4122 * 238/4097)
    assert t["bound"][rows[("TURKEY", "ATTITUDE")]] == pytest.approx(math.log(4000), abs=1e-9)
    assert t["bound"][rows[("BUZZY", "TURKEY")]] == pytest.approx(math.log(4122 * 238 / 4097), abs=1e-9)
    assert all(t["infinite"]) and all(t["consistent"]) and ex["fraction_consistent"] == 1.0


def test_table2_diagram_shows_all_five_words_in_potential_order(table2):
    g, res, V = table2
    order = [g.names[i] for i in diagram_layout(g.names, V, g.visits, top=12)]
    # high to low: BUZZY (>= 13.8), TURKEY (>= 8.29), PROBLEMS 5.18, PERSONAL 4.07, ATTITUDE 0
    assert order == ["BUZZY", "TURKEY", "PROBLEMS", "PERSONAL", "ATTITUDE"]
    top3 = [g.names[i] for i in diagram_layout(g.names, V, g.visits, top=3)]
    assert len(top3) == 3 and "BUZZY" in top3  # BUZZY was sampled 4097 times, the most


def test_exclusion_within_scc_flags_an_inconsistent_pair():
    # a -> b seen 50 times in 100 samples, b -> a never in 1000 samples, but a cycle a->b->c->a makes it
    # one SCC; with a potential where V_a - V_b = 0 the chance of never seeing b->a is exp(-500): inconsistent
    from potsearch.store import Counts

    c = Counts(["a", "b", "c"], np.array([0, 1, 2, 0, 1]), np.array([1, 2, 0, 0, 1]),
               np.array([50, 10, 10, 50, 990]))
    g = build_graph(c)
    ex = D.exclusion_test(g, np.zeros(3), np.zeros(3, dtype=int))
    t = ex["table"]
    i = list(zip(t["f"], t["g"])).index(("a", "b"))
    assert not t["consistent"][i] and not t["infinite"][i]
    assert t["p_zero"][i] == pytest.approx(math.exp(-500), abs=1e-200)
    ok = D.exclusion_test(g, np.array([10.0, 0.0, 5.0]), np.zeros(3, dtype=int))
    assert ok["table"]["consistent"][list(zip(ok["table"]["f"], ok["table"]["g"])).index(("a", "b"))]


# ----------------------------------------------------------------------------- Table 4 and Eq 28
def test_table4_expected_minimum_action():
    for sigma, paper in ((4.38, 0.129), (2.30, 0.245)):
        e = D.expected_min_action(sigma)
        assert round(e["asymptotic"], 3) == paper          # the paper printed 1/(sqrt(pi) sigma)
        assert e["closed_form"] < e["asymptotic"]          # the closed form is smaller (0.126, 0.227)
    assert round(D.expected_min_action(4.38)["closed_form"], 3) == 0.126
    big = D.expected_min_action(200.0)
    assert big["closed_form"] / big["asymptotic"] == pytest.approx(1.0, abs=1e-4)


def test_closed_form_normalisation_is_twice_the_gaussian_expectation():
    # A = 1 means closed_form = 2 E[exp(-X); X > 0], X = V_f - V_g ~ N(0, 2 sigma^2)
    for sigma in (0.5, 1.3, 3.0):
        s = math.sqrt(2) * sigma
        val, _ = integrate.quad(lambda x: math.exp(-x) * stats.norm.pdf(x, 0, s), 0, np.inf)
        assert D.expected_min_action(sigma)["closed_form"] == pytest.approx(2 * val, rel=1e-7)


# ----------------------------------------------------------------------------- majority voting
@pytest.mark.parametrize("T,m,k", [(0.05, 5, 3), (0.3, 5, 3), (0.6, 7, 4), (0.2, 3, 1), (0.5, 9, 9)])
def test_majority_vote_matches_monte_carlo(T, m, k):
    rng = np.random.default_rng(7)
    n = 200_000
    # m candidates from a categorical kernel: the target with prob T, three other outcomes share the rest
    draws = rng.multinomial(m, [T, (1 - T) / 3, (1 - T) / 3, (1 - T) / 3], size=n)
    mc = np.mean(draws[:, 0] >= k)
    exact = float(D.majority_vote(T, m, k))
    assert abs(mc - exact) < 5 * math.sqrt(exact * (1 - exact) / n) + 1e-4


def test_majority_vote_small_t_gives_v_prime_k_v():
    T = np.array([1e-3, 1e-4, 1e-5])
    ratio = np.log(D.majority_vote(T, 5, 3)) / np.log(D.majority_vote_small_t(T, 5, 3))
    assert np.all(np.abs(ratio - 1) < 1e-3)
    # on a graph with small kernels the slope of V' on V is close to k
    ch = metropolis_chain(n_states=12, degree=4, samples_per_state=20000, sigma=1.0, seed=5)
    chk = D.majority_check(build_graph(ch.counts), m=5, k=3)
    assert 2.5 < chk["slope"] <= 3.05
    with pytest.raises(ValueError):
        D.majority_vote(0.1, 3, 4)


# ----------------------------------------------------------------------------- loop test algebra
def _synthetic_graph(drift=0.0, seed=0, **kw):
    kw = {"n_states": 10, "degree": 4, "samples_per_state": 300, "sigma": 1.0, **kw}
    return build_graph(metropolis_chain(drift=drift, seed=seed, **kw).counts)


def test_loop_chi2_equals_cycle_basis_quadratic_form():
    g = _synthetic_graph(drift=0.3, seed=11)
    r = D.loop_test(g)
    b = r["basis"]
    assert len(b["D"]) == r["ndf"] > 0
    # rebuild Cov(D) = B diag(var) B^T from the pair counts and compare D^T Cov^-1 D with the WLS chi2
    n = {(g.names[s], g.names[d]): c + D.LOOP_CORRECTION for s, d, c in zip(g.src, g.dst, g.n)}
    edges = sorted({tuple(sorted(k)) for k in n if k[::-1] in n})
    col = {e: i for i, e in enumerate(edges)}
    B = np.zeros((len(b["D"]), len(edges)))
    for row, cyc in enumerate(b["states"]):
        for u, v in zip(cyc, cyc[1:] + cyc[:1]):
            B[row, col[tuple(sorted((u, v)))]] += 1 if (u, v) == tuple(sorted((u, v))) else -1
    a = np.array([math.log(n[e] / n[e[::-1]]) for e in edges])
    var = np.array([1 / n[e] + 1 / n[e[::-1]] for e in edges])
    Dv = B @ a
    assert np.allclose(Dv, b["D"])
    chi2 = Dv @ np.linalg.solve(B @ np.diag(var) @ B.T, Dv)
    assert chi2 == pytest.approx(r["chi2_wls"], rel=1e-8)
    assert r["p_value_wls"] == pytest.approx(stats.chi2.sf(chi2, r["ndf"]), rel=1e-8)
    # the decision statistic (Bradley-Terry Pearson chi2) measures the same cycle-space violation
    assert r["chi2"] == pytest.approx(chi2, rel=0.5)


def test_triangles_carry_the_drift():
    # near-noiseless counts: each triangle's Kolmogorov difference is a multiple of the drift
    g = _synthetic_graph(drift=0.8, seed=2, samples_per_state=5_000_000)
    t = D.loop_test(g)["triangles"]
    assert len(t["D"]) > 0
    k = np.array(t["D"]) / 0.8
    assert np.allclose(k, np.round(k), atol=0.02) and np.any(np.round(k) != 0)
    assert np.allclose(np.array(t["sum_log_T_forward"]) - t["sum_log_T_backward"], t["D"], atol=0.01)


def test_bradley_terry_is_exact_on_a_gradient_and_detects_a_cycle():
    from potsearch.store import Counts

    # counts n(a->b) = 100 e^{(U_a - U_b)/2}: exactly Bradley-Terry, so Pearson chi2 = 0
    U = np.array([0.0, 1.0, 2.5])
    src, dst, cnt = [], [], []
    for a in range(3):
        for b in range(3):
            if a != b:
                src.append(a); dst.append(b); cnt.append(round(1e6 * math.exp((U[a] - U[b]) / 2)))
    c = Counts(list("abc"), np.array(src), np.array(dst), np.array(cnt))
    r = D.loop_test(build_graph(c))
    assert r["ndf"] == 1 and r["chi2"] < 1e-3 and r["p_value"] > 0.97
    # a rock-paper-scissors cycle: a beats b, b beats c, c beats a (60:40 each) — violated
    c2 = Counts(list("abc"), np.array([0, 1, 1, 2, 2, 0]), np.array([1, 0, 2, 1, 0, 2]),
                np.array([600, 400, 600, 400, 600, 400]))
    r2 = D.loop_test(build_graph(c2))
    assert r2["p_value"] < 1e-6 and r2["n_triangles"] == 1
    assert r2["triangles"]["D"][0] == pytest.approx(3 * math.log(600.5 / 400.5) * np.sign(r2["triangles"]["D"][0]))


def test_pair_chi2_degrees_of_freedom_are_the_cycle_rank():
    g = _synthetic_graph(seed=4)
    _, res = run_fit(metropolis_chain(n_states=10, degree=4, samples_per_state=300, sigma=1.0, seed=4).counts,
                     FitOptions())
    p = D.pair_test(g, res.target_potential())
    assert p["ndf"] == D.loop_test(g)["ndf"] and p["p_value"] is not None
    assert 0.9 < p["slope"] < 1.1 and p["pearson_r"] > 0.95
    assert p["slope_ci"][0] < p["slope"] < p["slope_ci"][1]


def test_directionality_shares():
    from potsearch.store import Counts

    c = Counts(list("abcd"), np.array([0, 1, 2, 0, 3, 3]), np.array([1, 2, 3, 3, 0, 3]),
               np.array([4, 3, 2, 1, 5, 9]))
    g = build_graph(c)
    V = np.array([3.0, 2.0, 2.0, 0.0])   # a->b down, b->c flat, c->d down, a->d down, d->a up
    d = D.directionality(g, V)
    assert (d["down"], d["up"], d["flat"]) == (pytest.approx(3 / 5), pytest.approx(1 / 5), pytest.approx(1 / 5))
    assert d["down_weighted"] == pytest.approx((4 + 2 + 1) / 15)
    hi = D.directionality(g, V, min_kernel=0.3)   # w = n/N: keeps a->b (4/5), b->c (3/3), c->d (2/2), d->a (5/14)
    assert hi["n_transitions"] == 4


# ----------------------------------------------------------------------------- calibration
CAL = {"n_states": 10, "degree": 4, "samples_per_state": 300, "sigma": 1.0}
CAL_DRIFT = 0.6


def _rejections(drift: float, seeds: range) -> np.ndarray:
    rej = []
    for s in seeds:
        r = D.loop_test(_synthetic_graph(drift=drift, seed=s, **CAL), max_basis=0)
        assert r["ndf"] > 0
        rej.append(r["p_value"] < 0.05)
    return np.array(rej)


def test_loop_test_false_positive_rate_is_calibrated():
    """Equilibrium chains (detailed balance by construction): rejections at alpha = 0.05."""
    rate = _rejections(0.0, range(1000, 1400)).mean()
    assert 0.02 <= rate <= 0.09, rate


def test_loop_test_power_at_documented_drift():
    """Cyclic drift 0.6 (each edge's forward kernel x e^0.3, backward x e^-0.3): power >= 0.9."""
    rate = _rejections(CAL_DRIFT, range(2000, 2200)).mean()
    assert rate >= 0.9, rate


# ----------------------------------------------------------------------------- power of the verdict
TRIANGLE = np.array([[0, 1], [1, 2], [0, 2]])
TRI_V = np.array([0.0, 0.3, -0.2])


def _triangle(samples: int, seed: int, drift: float = 0.0):
    return build_graph(metropolis_chain(n_states=3, samples_per_state=samples, V=TRI_V, edges=TRIANGLE,
                                        drift=drift, seed=seed).counts)


def test_detectable_violation_is_the_normal_power_formula_for_one_cycle():
    z = stats.norm.isf(0.025) + stats.norm.isf(0.2)
    assert D.detectable(1.0, 1, 0.05) == pytest.approx(z, rel=1e-5)
    assert D.detectable(0.5, 40, 0.05) > D.detectable(0.5, 1, 0.05)   # a violation among 40 cycles: larger
    assert D.detectable(None, 1, 0.05) is None and D.detectable(1.0, 0, 0.05) is None


def test_power_figure_is_calibrated_on_one_cycle():
    """A drift making the cycle's D equal to the stated one-cycle figure is detected about 80 % of the time."""
    d_star = D.loop_test(_triangle(300, 1))["power"]["one_cycle"]
    rate = np.mean([D.loop_test(_triangle(300, s, drift=d_star / 3))["p_value"] < 0.05 for s in range(200)])
    assert 0.65 <= rate <= 0.92, rate


def test_a_pass_on_thin_data_reads_weak_evidence_not_consistent():
    g = _triangle(10, 0)
    loop = D.loop_test(g)
    assert loop["p_value"] is not None and loop["p_value"] >= 0.05
    assert loop["power"]["every_cycle"] > D.WEAK_NATS
    v = D.verdict(loop, D.pair_test(g, np.zeros(3)))
    assert v["status"] == "weak" and v["label"] == "WEAK EVIDENCE" and "nats" in v["text"]


def test_a_pass_with_enough_data_reads_consistent_and_states_its_power():
    g = build_graph(metropolis_chain(n_states=100, samples_per_state=500, seed=3).counts)
    loop = D.loop_test(g)
    v = D.verdict(loop, D.pair_test(g, np.zeros(100)))
    assert v["status"] == "consistent" and loop["power"]["every_cycle"] < D.WEAK_NATS
    assert f"{loop['power']['every_cycle']:.2g} nats" in v["text"]


def test_a_violation_stays_violated_whatever_the_power():
    g = build_graph(metropolis_chain(n_states=60, samples_per_state=400, drift=1.0, seed=4).counts)
    v = D.verdict(D.loop_test(g), D.pair_test(g, np.zeros(60)))
    assert v["status"] == "violated" and v["label"] == "VIOLATED"


def test_small_counts_are_named_in_the_verdict_because_the_chi2_is_conservative_there():
    """Measured: equilibrium chains with most pairs seen < 5 times give chi2/ndf well below 1."""
    g = build_graph(metropolis_chain(n_states=400, degree=6, samples_per_state=20, sigma=0.5, seed=1).counts)
    loop = D.loop_test(g, max_triangles=1000)
    assert loop["power"]["small_counts"] > 0.5 and loop["chi2_ndf"] < 0.7
    v = D.verdict(loop, D.pair_test(g, np.zeros(400)))
    assert v["status"] != "consistent" and "fewer than 5 times" in v["text"]
