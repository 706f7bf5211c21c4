"""Detailed-balance diagnostics (pure numpy/scipy; no I/O, no plotting).

Every function takes a ``Graph`` (potsearch.science.graph) and, where it needs one, a potential vector
``V`` aligned with ``graph.names``. Conventions (design notes §1): detailed balance means
T(f->g)/T(g->f) = exp(V_f - V_g), transitions favour going *down* in potential.

Tests and their statistics:

* ``pair_test``      pairs observed both ways: log(w_fg/w_gf) against V_f - V_g (paper Figs 3, 7).
* ``loop_test``      Kolmogorov's criterion on cycles of the bidirectional graph, with a global chi2
                     test over a cycle basis (paper Fig 8 shows the 3-cycles). Potential-free, so it
                     is the calibrated test of detailed balance (see tests/test_diagnostics.py).
* ``exclusion_test`` one-way pairs against paper Eq 25.
* ``distribution``   Gaussian fit of the potentials and the expected minimum action (paper Eq 28).
* ``directionality`` share of transitions going down / up / flat under any potential.
* ``majority_vote``  paper Eq 29-30.

Each test returns a plain dict (JSON-ready: lists, floats, None) with a ``p_value`` key where the
test has one. Per-item tables are dicts of equal-length lists.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import sparse as sp
from scipy import stats
from scipy.sparse import csgraph
from scipy.sparse import linalg as spla
from scipy.special import betainc, comb, erfcx

from potsearch.science.graph import Graph

# Haldane's correction for log counts in the loop test: log(n + 1/2) removes the O(1/n) bias of
# log(n) and keeps small counts from producing spurious violations (measured in the calibration test).
LOOP_CORRECTION = 0.5
# The power of a test: the smallest violation (in nats) it detects with probability POWER at level alpha.
# A loop test that could not see a violation of WEAK_NATS (the product of rates around a cycle off by a
# factor e = 2.7 either way, a gross violation) is weak evidence, whatever its p-value (docs/concepts.md).
POWER = 0.8
WEAK_NATS = 1.0
# one-way pairs: g->f never seen in N(g) samples. Under detailed balance with potential V the chance of
# that is exp(-N(g) T(g->f)) = exp(-exp(bound - dV)); "consistent" means that chance is >= alpha.


def _f(x) -> float | None:
    """A Python float, None for nan (±inf kept; the CLI writes non-finite numbers as null)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else (None if math.isnan(x) else (math.inf if x > 0 else -math.inf))


def _pairs(g: Graph) -> tuple[np.ndarray, np.ndarray]:
    """Edge indices (e_fg, e_gf) of every pair observed both ways, f < g."""
    n = max(g.n_states, 1)
    key = g.src * n + g.dst
    order = np.argsort(key)
    skey = key[order]
    rkey = g.dst * n + g.src
    pos = np.clip(np.searchsorted(skey, rkey), 0, max(len(skey) - 1, 0))
    has = (len(skey) > 0) & (skey[pos] == rkey) if len(skey) else np.zeros(0, bool)
    fwd = np.flatnonzero(has & (g.src < g.dst))
    return fwd, order[pos[fwd]]


def _edge_index(g: Graph) -> dict[tuple[int, int], int]:
    return {(int(a), int(b)): i for i, (a, b) in enumerate(zip(g.src, g.dst))}


# ----------------------------------------------------------------------------- pair test
def pair_test(g: Graph, V: np.ndarray, alpha: float = 0.05) -> dict:
    """Pairs observed both ways: x = log(w(f->g)/w(g->f)) against y = V_f - V_g.

    sigma^2 = 1/n(f->g) + 1/N(f) + 1/n(g->f) + 1/N(g) (low_reject; the design notes' conservative
    choice — the conditional binomial variance would subtract the 1/N terms) or 1/n(f->g) + 1/n(g->f)
    (high_reject: one fixed N0). chi2 = sum ((x - y)/sigma)^2 with ndf = pairs - independent potential
    differences among them (= independent cycles of the pair graph): a tree of pairs is always fitted
    exactly, so it has ndf = 0 and no p-value. The potential comes from the least-action fit, not a
    weighted least-squares fit of these residuals, so the chi2 is approximate (the loop test is exact).
    """
    V = np.asarray(V, dtype=float)
    ef, eb = _pairs(g)
    f, h = g.src[ef], g.dst[ef]
    x = np.log(g.w[ef] / g.w[eb])
    y = V[f] - V[h]
    var = 1.0 / g.n[ef] + 1.0 / g.n[eb]
    if g.weight == "low_reject":
        var = var + 1.0 / g.visits[f] + 1.0 / g.visits[h]
    sigma = np.sqrt(var)
    ok = np.isfinite(y)
    resid = x - y
    z = resid / sigma
    out: dict = {
        "test": "pair",
        "n_pairs": int(len(ef)),
        "n_pairs_finite": int(ok.sum()),
        "table": {
            "f": [g.names[i] for i in f], "g": [g.names[i] for i in h],
            "n_fg": g.n[ef].tolist(), "n_gf": g.n[eb].tolist(),
            "N_f": g.visits[f].tolist(), "N_g": g.visits[h].tolist(),
            "log_ratio": x.tolist(), "dV": [_f(v) for v in y], "sigma": sigma.tolist(),
            "residual": [_f(v) for v in resid],
        },
        "pearson_r": None, "slope": None, "slope_ci": None, "intercept": None,
        "chi2": None, "ndf": 0, "chi2_ndf": None, "p_value": None,
        "max_abs_residual": _f(np.max(np.abs(resid[ok]))) if ok.any() else None,
        "alpha": alpha,
        # the smallest residual (nats) one pair could show at level alpha with probability POWER
        "power": {"power": POWER, "one_pair": detectable(float(sigma.min()) if len(sigma) else None, 1, alpha)},
    }
    if ok.sum() >= 3 and np.ptp(x[ok]) > 0 and np.ptp(y[ok]) > 0:
        lr = stats.linregress(x[ok], y[ok])
        t = stats.t.ppf(0.975, ok.sum() - 2)
        out.update(pearson_r=float(lr.rvalue), slope=float(lr.slope), intercept=float(lr.intercept),
                   slope_ci=[float(lr.slope - t * lr.stderr), float(lr.slope + t * lr.stderr)])
    if ok.any():
        nodes = np.unique(np.concatenate([f[ok], h[ok]]))
        loc = np.searchsorted(nodes, np.concatenate([f[ok], h[ok]]))
        m = int(ok.sum())
        adj = sp.coo_matrix((np.ones(m), (loc[:m], loc[m:])), shape=(len(nodes),) * 2)
        n_comp = csgraph.connected_components(adj, directed=False)[0]
        ndf = m - (len(nodes) - n_comp)
        chi2 = float(np.sum(z[ok] ** 2))
        out.update(chi2=chi2, ndf=int(ndf))
        if ndf > 0:
            out.update(chi2_ndf=chi2 / ndf, p_value=float(stats.chi2.sf(chi2, ndf)))
    return out


# ----------------------------------------------------------------------------- power
def noncentrality_for_power(ndf: int, alpha: float, power: float = POWER) -> float:
    """The noncentrality lambda at which a chi2 test with ``ndf`` degrees of freedom at level ``alpha``
    rejects with probability ``power`` (noncentral chi2; ndf = 1 gives (z_{1-alpha/2} + z_power)^2)."""
    from scipy.optimize import brentq

    crit = stats.chi2.isf(alpha, ndf)

    def short(lam):
        return stats.ncx2.sf(crit, ndf, lam) - power

    hi = 10.0
    while short(hi) < 0:
        hi *= 2
    return float(brentq(short, 1e-9, hi, xtol=1e-9))


def detectable(sigma_min: float | None, ndf: int, alpha: float, power: float = POWER) -> float | None:
    """The smallest violation, in nats, that a chi2 test over ``ndf`` independent cycles (or pairs)
    detects with probability ``power`` when it sits on the best-measured one (standard error
    ``sigma_min``): sqrt(lambda) * sigma_min. An approximation that treats the cycles as independent
    (shared edges make the true figure somewhat larger); None without anything measured."""
    if sigma_min is None or not math.isfinite(sigma_min) or ndf <= 0:
        return None
    return float(math.sqrt(noncentrality_for_power(ndf, alpha, power)) * sigma_min)


# ----------------------------------------------------------------------------- loop test
def _bidirectional(g: Graph, correction: float, min_count: int = 1):
    """Undirected pair graph: edges (a<b), a_e = log((n_ab+c)/(n_ba+c)), var_e = 1/(n_ab+c) + 1/(n_ba+c),
    and log w both ways (for the forward/backward sums of the paper's plot)."""
    ef, eb = _pairs(g)
    keep = (g.n[ef] >= min_count) & (g.n[eb] >= min_count)
    ef, eb = ef[keep], eb[keep]
    a, b = g.src[ef], g.dst[ef]
    nab, nba = g.n[ef] + correction, g.n[eb] + correction
    return a, b, np.log(nab / nba), 1.0 / nab + 1.0 / nba, np.log(g.w[ef]), np.log(g.w[eb])


def triangles(a: np.ndarray, b: np.ndarray, limit: int | None = None) -> np.ndarray:
    """All 3-cycles (i<j<k) of the undirected graph with edges (a<b). Rows of node indices."""
    nbr: dict[int, set[int]] = {}
    for u, v in zip(a.tolist(), b.tolist()):
        nbr.setdefault(u, set()).add(v)
    out = []
    for u, vs in nbr.items():
        for v in vs:
            for w in vs & nbr.get(v, set()):
                out.append((u, v, w))
                if limit and len(out) >= limit:
                    return np.array(out, dtype=np.int64).reshape(-1, 3)
    out.sort()
    return np.array(out, dtype=np.int64).reshape(-1, 3)


def loop_test(g: Graph, alpha: float = 0.05, correction: float = LOOP_CORRECTION,
              max_triangles: int = 200_000, max_basis: int = 5000, min_count: int = 1) -> dict:
    """Kolmogorov's criterion: around every cycle, sum log T forward = sum log T backward.

    Per loop D = sum log T fwd - sum log T bwd. The visit counts N(f) cancel exactly (each state on a
    cycle is the source of one forward and one backward move), so D = sum over the loop's undirected
    edges of ±log(n_ab/n_ba) (Haldane-corrected, n + ``correction``), and its multinomial delta-method
    variance is sum 1/n over the 2L moves (the -1/N covariances cancel for the same reason).

    Global test (``p_value``): detailed balance <=> P(a->b | pair total) follows a Bradley-Terry model
    logit p = U_a - U_b on the bidirectional graph (see ``_bradley_terry``); Pearson's chi2 of its
    maximum-likelihood fit has ndf = edges - nodes + components (the cycle rank). ``chi2_wls`` is the
    delta-method alternative, D^T Cov(D)^-1 D on any cycle basis (= weighted least squares of log ratios
    on potential differences); it is conservative with small counts (false-positive rate 0.01-0.04 at
    alpha 0.05 where the Pearson statistic gives 0.04-0.07: benchmarks/loop_calibration.py), so it is
    reported, not used for the verdict. Pairs with a count below ``min_count`` either way are left out.
    """
    a, b, ae, var, lw_ab, lw_ba = _bidirectional(g, correction, min_count)
    E = len(a)
    out: dict = {"test": "loop", "alpha": alpha, "correction": correction, "n_bidirectional_pairs": int(E),
                 "n_triangles": 0, "triangles": {}, "basis": {}, "chi2": None, "ndf": 0, "chi2_ndf": None,
                 "p_value": None, "n_triangles_z_gt_3": 0, "triangles_truncated": False}
    if E == 0:
        return out
    nodes, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    la, lb = inv[:E], inv[E:]
    nv = len(nodes)
    # --- 3-cycles
    tri = triangles(la, lb, limit=max_triangles)
    out["triangles_truncated"] = bool(len(tri) >= max_triangles)
    eid = {(int(u), int(v)): i for i, (u, v) in enumerate(zip(la, lb))}
    if len(tri):
        e1 = np.array([eid[(i, j)] for i, j in tri[:, :2]])
        e2 = np.array([eid[(j, k)] for j, k in tri[:, 1:]])
        e3 = np.array([eid[(i, k)] for i, k in tri[:, [0, 2]]])
        # loop i->j->k->i: forward moves i->j, j->k, k->i
        D = ae[e1] + ae[e2] - ae[e3]
        s = np.sqrt(var[e1] + var[e2] + var[e3])
        fwd = lw_ab[e1] + lw_ab[e2] + lw_ba[e3]
        bwd = lw_ba[e1] + lw_ba[e2] + lw_ab[e3]
        z = D / s
        names = [g.names[int(i)] for i in nodes]
        out["n_triangles"] = int(len(tri))
        out["n_triangles_z_gt_3"] = int(np.sum(np.abs(z) > 3))
        out["triangles"] = {"states": [[names[i] for i in t] for t in tri.tolist()],
                            "sum_log_T_forward": fwd.tolist(), "sum_log_T_backward": bwd.tolist(),
                            "D": D.tolist(), "sigma": s.tolist(), "z": z.tolist()}
    # --- global tests on the pair graph (one pinned node per component)
    adj = sp.coo_matrix((np.ones(E), (la, lb)), shape=(nv, nv))
    n_comp, comp = csgraph.connected_components(adj, directed=False)
    ndf = E - nv + n_comp
    out["ndf"] = int(ndf)
    if ndf <= 0:
        return out
    Bm = sp.csr_matrix((np.concatenate([np.ones(E), -np.ones(E)]),
                        (np.concatenate([np.arange(E)] * 2), np.concatenate([la, lb]))), shape=(E, nv))
    first = np.ones(nv, dtype=bool)
    first[np.unique(comp, return_index=True)[1]] = False
    Bf = Bm[:, np.flatnonzero(first)]
    # (1) weighted least squares on log count ratios (delta method): chi2 = D^T Cov(D)^-1 D on any basis
    wts = 1.0 / var
    U = _solve(Bf.T @ sp.diags(wts) @ Bf, Bf.T @ (wts * ae))
    chi2_wls = float(np.sum(wts * (ae - Bf @ U) ** 2))
    # (2) the decision statistic: Pearson chi2 of a Bradley-Terry fit to the raw pair counts
    k, t = _pair_counts(g, min_count)
    chi2, _ = _bradley_terry(Bf, k, t, U)
    out.update(chi2=chi2, chi2_ndf=chi2 / ndf, p_value=float(stats.chi2.sf(chi2, ndf)), chi2_wls=chi2_wls,
               p_value_wls=float(stats.chi2.sf(chi2_wls, ndf)), statistic="bradley-terry pearson chi2")
    out["basis"] = cycle_basis_table(g, nodes, la, lb, ae, var, limit=max_basis)
    out["power"] = loop_power(out, t, alpha)
    return out


def loop_power(loop: dict, t, alpha: float, power: float = POWER) -> dict:
    """What the loop test could have seen (in nats of D, the log of the product of rates around a cycle
    forward over backward): ``one_cycle``, a violation on the best-measured cycle alone (the smallest
    sigma among the three-cycles and the basis cycles); ``every_cycle``, a violation of the same size on
    every basis cycle (sum of 1/sigma^2 over the basis, scaled to ndf when the basis table was cut).
    Both at level alpha with probability ``power``; cycles treated as independent. ``small_counts``: the
    share of two-way pairs seen fewer than 5 times in all, where the chi2 approximation is conservative
    (chi2/ndf below 1 is expected under detailed balance; benchmarks/loop_calibration.py)."""
    ndf = int(loop.get("ndf") or 0)
    sig = list((loop.get("basis") or {}).get("sigma") or []) + list((loop.get("triangles") or {}).get("sigma") or [])
    basis = np.asarray((loop.get("basis") or {}).get("sigma") or [], dtype=float)
    best = float(min(sig)) if sig else None
    spread = None
    if len(basis) and ndf > 0:
        info = float(np.sum(1.0 / basis ** 2)) * ndf / len(basis)
        spread = float(math.sqrt(noncentrality_for_power(ndf, alpha, power) / info))
    t = np.asarray(t, dtype=float)
    return {"power": power, "one_cycle": detectable(best, 1, alpha, power), "every_cycle": spread,
            "best_sigma": best, "small_counts": float(np.mean(t < 5)) if len(t) else None, "weak_nats": WEAK_NATS}


def _solve(H, rhs):
    H = sp.csc_matrix(H)
    if H.shape[0] == 0:
        return np.zeros(0)
    if H.shape[0] == 1:
        return rhs / H.toarray().ravel()
    return spla.spsolve(H, rhs)


def _pair_counts(g: Graph, min_count: int):
    ef, eb = _pairs(g)
    keep = (g.n[ef] >= min_count) & (g.n[eb] >= min_count)
    k = g.n[ef][keep].astype(float)
    return k, k + g.n[eb][keep]


def _bradley_terry(Bf, k, t, U0, max_iter: int = 100):
    """Maximum-likelihood fit of logit P(a->b | pair total) = U_a - U_b, then Pearson's chi2.

    Conditional on the pair total t = n(a->b) + n(b->a), n(a->b) is ~ Binomial(t, p) with
    logit p = log(N_a T(a->b) / (N_b T(b->a))) (Poisson approximation of each state's multinomial).
    Detailed balance makes that a difference of U = V + log N: a Bradley-Terry model on the pair graph.
    Every pair is seen both ways, so the (concave) likelihood has a finite maximum; Newton from the
    least-squares start, with step halving."""

    def loglik(U):
        eta = Bf @ U
        return float(np.sum(k * eta - t * np.logaddexp(0.0, eta)))

    U, ll = U0.copy(), loglik(U0)
    for _ in range(max_iter):
        p = 1.0 / (1.0 + np.exp(-(Bf @ U)))
        step = _solve(Bf.T @ sp.diags(t * p * (1 - p)) @ Bf, Bf.T @ (k - t * p))
        s = 1.0
        while True:
            Un = U + s * step
            lln = loglik(Un)
            if lln >= ll - 1e-12 or s < 1e-6:
                break
            s /= 2
        U, ll = Un, lln
        if np.max(np.abs(s * step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(Bf @ U)))
    return float(np.sum((k - t * p) ** 2 / (t * p * (1 - p)))), p


def cycle_basis_table(g: Graph, nodes, la, lb, ae, var, limit: int = 5000) -> dict:
    """Per-cycle D and sigma for a cycle basis of the bidirectional graph (networkx.cycle_basis)."""
    import networkx as nx

    G = nx.Graph()
    G.add_edges_from(zip(la.tolist(), lb.tolist()))
    eid = {(int(u), int(v)): i for i, (u, v) in enumerate(zip(la, lb))}
    rows: dict = {"states": [], "length": [], "D": [], "sigma": []}
    for cyc in nx.cycle_basis(G):
        if len(rows["D"]) >= limit:
            break
        d = v2 = 0.0
        for u, v in zip(cyc, cyc[1:] + cyc[:1]):
            if (u, v) in eid:
                d += ae[eid[(u, v)]]
                v2 += var[eid[(u, v)]]
            else:
                d -= ae[eid[(v, u)]]
                v2 += var[eid[(v, u)]]
        rows["states"].append([g.names[int(nodes[i])] for i in cyc])
        rows["length"].append(len(cyc))
        rows["D"].append(float(d))
        rows["sigma"].append(float(math.sqrt(v2)))
    return rows


# ----------------------------------------------------------------------------- exclusion test
def exclusion_test(g: Graph, V: np.ndarray, scc: np.ndarray | None = None, alpha: float = 0.05) -> dict:
    """One-way pairs (paper Eq 25): f->g seen, g->f never seen in N(g) samples.

    bound = log(w(f->g) / w_unit(g)) = log(N(g) T(f->g)) for low_reject (N0 for high_reject).
    Under detailed balance with potential V, P(no g->f in N(g) samples) = exp(-exp(bound - dV)),
    dV = V_f - V_g; a pair is *consistent* when that chance is >= alpha (dV >= bound - log(-log alpha),
    i.e. the rule of three at alpha = 0.05) and *strictly* consistent when dV >= bound. If ``scc``
    labels are given (the exact fit), an edge between SCCs has dV = +inf in the exact infimum: it is
    consistent by construction and flagged ``infinite``; ``dV`` then shows V's finite difference
    (lower bounds for unbounded states) for plotting.
    """
    V = np.asarray(V, dtype=float)
    n = max(g.n_states, 1)
    key = set((g.src * n + g.dst).tolist())
    rev = np.array([int(d) * n + int(s) in key for s, d in zip(g.src, g.dst)], dtype=bool)
    e = np.flatnonzero(~rev)
    f, h = g.src[e], g.dst[e]
    bound = np.log(g.w[e] / g.unit_weight()[h])
    dV = V[f] - V[h]
    infinite = (scc[f] != scc[h]) if scc is not None else np.zeros(len(e), bool)
    with np.errstate(over="ignore", invalid="ignore"):
        p_zero = np.where(infinite, 1.0, np.exp(-np.exp(np.clip(bound - dV, -700, 700))))
    p_zero = np.where(np.isnan(dV) & ~infinite, np.nan, p_zero)
    ok = ~np.isnan(p_zero)
    consistent = ok & (p_zero >= alpha)
    strict = ok & (infinite | (dV >= bound))
    within = ok & ~infinite
    return {
        "test": "exclusion", "alpha": alpha, "n_one_way": int(len(e)), "n_evaluated": int(ok.sum()),
        "n_within_scc": int(within.sum()), "n_between_scc": int(infinite.sum()),
        "fraction_consistent": _f(consistent.sum() / ok.sum()) if ok.any() else None,
        "fraction_strict": _f(strict.sum() / ok.sum()) if ok.any() else None,
        "fraction_consistent_within_scc": _f((consistent & within).sum() / within.sum()) if within.any() else None,
        "p_value": None,
        "note": "descriptive: each pair has p_zero, the chance of never seeing g->f under detailed balance",
        "table": {"f": [g.names[i] for i in f], "g": [g.names[i] for i in h], "n_fg": g.n[e].tolist(),
                  "N_g": g.visits[h].tolist(), "bound": bound.tolist(), "dV": [_f(v) for v in dV],
                  "infinite": infinite.tolist(), "p_zero": [_f(v) for v in p_zero],
                  "consistent": consistent.tolist()},
    }


# ----------------------------------------------------------------------------- distribution
def expected_min_action(sigma: float) -> dict:
    """Paper Eq 28 for Gaussian potentials N(mu, sigma^2).

    With X = V_f - V_g ~ N(0, 2 sigma^2), E[exp(-X); X > 0] = exp(sigma^2) erfc(sigma) / 2: the action
    scales as A exp(sigma^2) erfc(sigma). We fix A = 1, the normalisation for which the closed form
    tends to the paper's asymptotic 1/(sqrt(pi) sigma) at large sigma. Paper Table 4 (4.38 -> 0.129,
    2.30 -> 0.245) equals the *asymptotic* value to 3 digits; the closed form gives 0.126 and 0.228.
    erfcx(sigma) = exp(sigma^2) erfc(sigma) without overflow.
    """
    s = float(sigma)
    if not s > 0:
        return {"sigma": s, "closed_form": None, "asymptotic": None}
    return {"sigma": s, "closed_form": float(erfcx(s)), "asymptotic": float(1.0 / (math.sqrt(math.pi) * s))}


def distribution(g: Graph, V: np.ndarray, s_min: float | None = None, min_visits: int = 2,
                 bounded: np.ndarray | None = None) -> dict:
    """Gaussian fit (MLE mean and std) of the finite potentials of states with >= min_visits visits,
    the expected minimum action from sigma, and a D'Agostino (n >= 8) or Shapiro (n >= 3) normality
    p-value — a test of the Gaussian shape, not of detailed balance. ``bounded`` (optional) marks states
    with a finite exact potential; the others enter at their lower bound and are counted."""
    V = np.asarray(V, dtype=float)
    sel = (g.visits >= min_visits) & np.isfinite(V)
    v = V[sel]
    out: dict = {"test": "distribution", "min_visits": min_visits, "n_states": int(sel.sum()),
                 "n_lower_bounds": int((sel & ~bounded).sum()) if bounded is not None else 0,
                 "mu": None, "sigma": None, "p_value": None, "normality_test": None,
                 "expected_min_action": None, "actual_min_action": s_min, "values": v.tolist()}
    if len(v) >= 2:
        mu, sd = float(v.mean()), float(v.std())
        out.update(mu=mu, sigma=sd, expected_min_action=expected_min_action(sd))
        if len(v) >= 8 and sd > 0:
            out.update(normality_test="dagostino", p_value=float(stats.normaltest(v).pvalue))
        elif len(v) >= 3 and sd > 0:
            out.update(normality_test="shapiro", p_value=float(stats.shapiro(v).pvalue))
    return out


# ----------------------------------------------------------------------------- directionality
def directionality(g: Graph, V: np.ndarray, min_kernel: float = 0.0, flat_tol: float = 1e-9) -> dict:
    """Among edges with w(f->g) >= min_kernel: the share going down (V_g < V_f - tol), up, flat
    (|V_f - V_g| <= tol). Both per unique transition and weighted by sample count. Edges touching a
    state with an undefined (nan) potential are left out and counted. Works for any potential: the
    least-action fit, an evolved function, a polished one."""
    V = np.asarray(V, dtype=float)
    sel = g.w >= min_kernel
    d = V[g.src[sel]] - V[g.dst[sel]]
    n = g.n[sel]
    ok = ~np.isnan(d)
    d, n = d[ok], n[ok]
    down, up = d > flat_tol, d < -flat_tol
    flat = ~down & ~up
    tot, ntot = max(len(d), 1), max(int(n.sum()), 1)
    return {"test": "directionality", "min_kernel": min_kernel, "flat_tol": flat_tol,
            "n_transitions": int(len(d)), "n_samples": int(n.sum()), "n_undefined": int((~ok).sum()),
            "down": float(down.sum() / tot), "up": float(up.sum() / tot), "flat": float(flat.sum() / tot),
            "down_weighted": float(n[down].sum() / ntot), "up_weighted": float(n[up].sum() / ntot),
            "flat_weighted": float(n[flat].sum() / ntot), "p_value": None}


# ----------------------------------------------------------------------------- majority voting
def majority_vote(T, m: int, k: int):
    """Paper Eq 29: draw m candidates, accept a state seen >= k times. Its new kernel is
    P(Binomial(m, T) >= k) = I_T(k, m - k + 1), the regularised incomplete beta function."""
    if not (1 <= k <= m):
        raise ValueError("need 1 <= k <= m")
    return betainc(k, m - k + 1, np.asarray(T, dtype=float))


def majority_vote_small_t(T, m: int, k: int):
    """Paper Eq 30: for small T, T' ≈ C(m, k) T^k, hence V' ≈ k V."""
    return comb(m, k) * np.asarray(T, dtype=float) ** k


def majority_check(g: Graph, m: int = 5, k: int = 3) -> dict:
    """V' ≈ kV on the observed pairs: x = log(T_fg/T_gf) (T = w) and x' = log(T'_fg/T'_gf);
    the least-squares slope of x' on x through the origin should be close to k when T is small."""
    ef, eb = _pairs(g)
    Tf, Tb = np.clip(g.w[ef], 1e-300, 1), np.clip(g.w[eb], 1e-300, 1)
    x = np.log(Tf / Tb)
    xp = np.log(majority_vote(Tf, m, k) / majority_vote(Tb, m, k))
    slope = float(np.dot(x, xp) / np.dot(x, x)) if len(x) and np.dot(x, x) > 0 else None
    return {"test": "majority", "m": m, "k": k, "n_pairs": int(len(x)), "slope": slope, "expected_slope": k,
            "p_value": None, "x": x.tolist(), "x_vote": xp.tolist()}


# ----------------------------------------------------------------------------- verdict
def verdict(loop: dict, pair: dict, alpha: float = 0.05) -> dict:
    """One line for a reader, with its strength. The loop test decides (it needs no potential and is
    calibrated); a pass says how large a violation the test could have seen, and reads WEAK EVIDENCE
    when even a violation of ``WEAK_NATS`` on every cycle would have gone unseen. Without cycles we can
    only say that the pairs are fitted exactly (UNTESTABLE)."""
    if loop.get("p_value") is not None:
        p, ndf, pw = loop["p_value"], loop["ndf"], loop.get("power") or {}
        every, one = pw.get("every_cycle"), pw.get("one_cycle")
        if every is None:
            seen = ""
        elif ndf == 1:
            seen = f"it would have detected a violation of {every:.2g} nats around its cycle (power {POWER:.0%})"
        else:
            seen = (f"it would have detected a violation of {every:.2g} nats on every cycle"
                    + ("" if one is None else f" or of {one:.2g} nats on the best-measured cycle alone")
                    + f" (power {POWER:.0%})")
        small = pw.get("small_counts")
        small_note = ("; most two-way pairs were seen fewer than 5 times, where the chi2 runs far below its "
                      "degrees of freedom (measured at equilibrium: chi2/ndf 0.2-0.6), so p near 1 adds no support "
                      "and the power above is optimistic" if small is not None and small > 0.5 else "")
        if p < alpha:
            return {"status": "violated", "label": "VIOLATED", "p_value": p, "power": pw,
                    "text": f"detailed balance violated (loop test p = {p:.2g} < {alpha}, {ndf} cycles)"}
        if every is None or every > WEAK_NATS:
            return {"status": "weak", "label": "WEAK EVIDENCE", "p_value": p, "power": pw,
                    "text": f"no violation detected (loop test p = {p:.3g}, {ndf} independent cycles), but the test "
                            f"is weak: {seen or 'its power is unknown'}; a violation smaller than {WEAK_NATS:g} nat "
                            f"per cycle could pass unseen{small_note}"}
        return {"status": "consistent", "label": "CONSISTENT", "p_value": p, "power": pw,
                "text": f"consistent with detailed balance (loop test p = {p:.3g}, {ndf} independent cycles); "
                        f"{seen}{small_note}"}
    from potsearch.science.thindata import verdict_advice

    advice = verdict_advice(loop, pair)
    if pair.get("n_pairs"):
        n, r = pair["n_pairs"], pair.get("max_abs_residual")
        if r is None:
            text = f"no cycles to test among the {n} pair(s) seen both ways"
        elif r < 1e-6:  # without a cycle any potential reproduces the pairs: no evidence either way
            text = (f"no cycles to test; the {n} two-way pair(s) are reproduced exactly by the potential "
                    f"(|residual| max {r:.2g}), as any potential would reproduce them without a cycle")
        else:  # one-way moves and the kernel pull the potential off the pairs' log-ratios
            text = (f"no cycles to test; the fit leaves |residual| up to {r:.2g} on the {n} two-way pair(s), "
                    "but without a cycle that is no test of detailed balance")
        return {"status": "untestable", "label": "UNTESTABLE", "p_value": None, "text": text, "advice": advice}
    return {"status": "untestable", "label": "UNTESTABLE", "p_value": None,
            "text": "no pair observed in both directions: nothing to test",
            "advice": advice}
