"""The action: analytic gradient, gauge invariance, recovery of a known potential."""
import numpy as np
import pytest
from scipy.stats import spearmanr

from potsearch.science.action import action_and_grad, fit_exact, hessian, make_kernel
from potsearch.science.graph import build_graph
from potsearch.science.synthetic import metropolis_chain


def _random_graph(seed, n=40, m=200):
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m)
    dst = (src + rng.integers(1, n, m)) % n
    w = rng.random(m)
    return src, dst, w, n, rng.normal(0, 2, n)


@pytest.mark.parametrize("kernel", ["softplus", "exp"])
@pytest.mark.parametrize("seed", range(5))
def test_gradient_matches_finite_differences(seed, kernel):
    src, dst, w, n, V = _random_graph(seed)
    k = make_kernel(kernel, 0.7)
    _, g = action_and_grad(V, src, dst, w, n, k)
    h = 1e-6
    fd = np.array([(action_and_grad(V + h * e, src, dst, w, n, k)[0]
                    - action_and_grad(V - h * e, src, dst, w, n, k)[0]) / (2 * h) for e in np.eye(n)])
    assert np.linalg.norm(fd - g) / np.linalg.norm(g) <= 1e-6


def test_hessian_matches_gradient_differences():
    src, dst, w, n, V = _random_graph(11)
    k = make_kernel("softplus")
    H = hessian(V, src, dst, w, n, k).toarray()
    h = 1e-6
    cols = [(action_and_grad(V + h * e, src, dst, w, n, k)[1] - action_and_grad(V - h * e, src, dst, w, n, k)[1])
            / (2 * h) for e in np.eye(n)]
    assert np.allclose(np.array(cols).T, H, atol=1e-7)


@pytest.mark.parametrize("kernel", ["softplus", "exp"])
def test_action_invariant_under_constant(kernel):
    src, dst, w, n, V = _random_graph(3)
    k = make_kernel(kernel)
    a0, g0 = action_and_grad(V, src, dst, w, n, k)
    a1, g1 = action_and_grad(V + 123.456, src, dst, w, n, k)
    assert abs(a0 - a1) < 1e-12 * max(1, abs(a0))
    assert abs(g0.sum()) < 1e-12  # gradient orthogonal to the constant direction


def test_synthetic_chain_recovers_known_potential():
    ch = metropolis_chain(n_states=150, degree=6, samples_per_state=20000, sigma=1.0, escape=0.2, seed=7)
    g = build_graph(ch.counts)
    r = fit_exact(g)
    assert r.converged and r.grad_norm <= 1e-8
    assert r.n_sccs == 1
    truth = dict(zip(ch.counts.states, ch.V))
    V = np.array([truth[s] for s in r.names])
    rich = r.visits >= 100
    est = r.potential[rich]
    d = est - V[rich]
    d -= d.mean()
    assert spearmanr(est, V[rich]).statistic >= 0.99
    assert np.sqrt(np.mean(d**2)) <= 0.05
    r2 = fit_exact(g, make_kernel("exp"))
    d2 = r2.potential - r.potential
    assert np.abs(d2 - d2.mean()).max() < 0.1   # same potentials within sampling tolerance


def test_fit_is_a_minimum():
    ch = metropolis_chain(n_states=60, degree=5, samples_per_state=300, seed=2)
    g = build_graph(ch.counts)
    r = fit_exact(g)
    V = r.scc_potential
    inner = r.scc[g.src] == r.scc[g.dst]
    base, _ = action_and_grad(V, g.src[inner], g.dst[inner], g.w[inner], g.n_states)
    rng = np.random.default_rng(0)
    for _ in range(20):
        pert, _ = action_and_grad(V + 1e-3 * rng.normal(size=len(V)), g.src[inner], g.dst[inner],
                                  g.w[inner], g.n_states)
        assert pert >= base - 1e-15
    assert abs(base - r.action) < 1e-12


@pytest.mark.parametrize("kernel", ["softplus", "exp"])
def test_objective_matches_the_stable_kernel_formulas_at_extreme_differences(kernel):
    """The fused evaluation (potsearch.science.action.Objective) against the textbook per-edge formulas,
    including differences far beyond exp's range (softplus clips at 700 internally)."""
    from potsearch.science.action import Objective

    rng = np.random.default_rng(5)
    n = 30
    src = rng.integers(0, n, 300)
    dst = (src + rng.integers(1, n, 300)) % n
    w = rng.random(300)
    k = make_kernel(kernel, 0.9)
    scale = 400.0 if kernel == "softplus" else 40.0       # exp(-beta x / 2) overflows beyond ~1500
    obj = Objective(src, dst, w, n, k)
    for V in (rng.normal(0, 2, n), rng.normal(0, scale, n), np.zeros(n)):
        x = V[src] - V[dst]
        val = np.dot(w, k.value(x)) / n
        k1 = w * k.d1(x)
        grad = (np.bincount(src, k1, minlength=n) - np.bincount(dst, k1, minlength=n)) / n
        got_val, got_grad = obj(V)
        assert np.isfinite(got_val) and np.all(np.isfinite(got_grad))
        assert abs(got_val - val) <= 1e-12 * max(1.0, abs(val))
        assert np.allclose(got_grad, grad, rtol=1e-12, atol=1e-15)
        again = obj(V)                                   # the shared buffers leave no trace
        assert again[0] == got_val and np.array_equal(again[1], got_grad)
        assert again[1] is not got_grad                  # callers may keep gradients (L-BFGS-B)


def test_objective_without_edges_gives_a_float_zero_gradient():
    from potsearch.science.action import Objective

    empty = np.array([], dtype=int)
    val, g = Objective(empty, empty, np.array([]), 3)(np.zeros(3))
    assert val == 0.0 and g.dtype == float and not g.any()
    g *= 0.5                                             # usable in place


def test_objective_refuses_indices_outside_V():
    from potsearch.science.action import Objective

    obj = Objective(np.array([0, 4]), np.array([1, 2]), np.ones(2), 5)
    with pytest.raises(ValueError, match="need 5"):
        obj(np.zeros(4))
    with pytest.raises(ValueError, match=">= 0"):
        Objective(np.array([-1]), np.array([0]), np.ones(1), 2)


def test_newton_converges_when_the_action_stops_resolving_steps():
    """A 3-state SCC above a sink: after two steps the predicted decrease is below the rounding of S;
    the line search must then judge by the gradient (with the fast value formula and a plain Armijo
    test, Newton crawled for 200 steps at |grad| 1.7e-10 here)."""
    from potsearch.store import Counts

    counts = Counts(states=["A", "B", "C", "D"], src=np.array([0, 1, 1, 2, 2, 3]),
                    dst=np.array([1, 0, 2, 0, 3, 3]), count=np.array([5, 3, 4, 2, 1, 3]))
    r = fit_exact(build_graph(counts))
    assert r.converged and r.iterations <= 10 and r.grad_norm <= 1e-12
    assert list(r.unbounded) == [True, True, True, False]
    assert any("largest SCC (3 states)" in n for n in r.notes)


def test_newton_factor_survives_a_hessian_singular_in_floating_point():
    """A block whose edges to its pinned state lost their curvature (softplus K'' underflow) is a pure
    Laplacian in floating point: the factor is taken with a tiny Levenberg shift instead of raising
    "Factor is exactly singular" (found on a 10^6-row Zipf file, benchmarks/fit_file_bench.py)."""
    import scipy.sparse as sp

    from potsearch.science.newton import NewtonSolver

    n = 50
    A = sp.diags([np.ones(n - 1)], [1], shape=(n, n))
    A = A + A.T
    L = (sp.diags(np.asarray(A.sum(axis=1)).ravel()) - A).tocsr()   # singular: rows sum to 0, exactly
    rhs = np.linspace(-1, 1, n)
    rhs -= rhs.mean()                                                          # consistent right-hand side
    x = NewtonSolver(force="lu").solve(L, rhs)
    assert np.all(np.isfinite(x))
    assert np.abs(L @ x - rhs).max() < 1e-6 * np.abs(rhs).max()
