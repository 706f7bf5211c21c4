"""Adaptive collection: per-state standard errors and the next round's sample allocation (pure numpy/scipy).

Standard errors (a sandwich estimate, the linearised bootstrap)
    The fitted potential solves grad S(V) = 0 with S = sum_e w_e K(V_f - V_g), w_e = n(f->g)/N(f) (low_reject).
    The counts of one source state are multinomial, so w_f ~ (p_f, (diag p_f - p_f p_f^T)/N(f)) with
    p_f its observed outcome frequencies (escapes, self-loops and moves leaving the SCC are the outcome
    "other"). A perturbation dw moves V by dV = -H^-1 A dw, where A's column e is K'(x_e)(1_f - 1_g) and H
    is the Newton Hessian (a weighted graph Laplacian, edge weights w_e K''(x_e)) pinned at one state per
    SCC. Hence Cov(V) = G J G, G = H^-1, J = sum_f Phi_f / N(f), with the per-sample covariance
        Phi_f = sum_{e from f} p_e a_e a_e^T - b_f b_f^T,   b_f = sum_{e from f} p_e a_e.
    This is the multinomial bootstrap of :mod:`potsearch.science.uncertainty` to first order. Gauge: a state's
    error is that of V_f - mean of its SCC (G is then the pseudo-inverse of H; the bootstrap's gauge, the SCC's
    minimum state, would add that one state's error to every other and, at SE 0 itself, the reference would
    stop being sampled). Computed exactly with a dense inverse when at most ``exact_limit`` states are free,
    else by ``probes`` random draws of dw (solved together by a block Jacobi-CG, a sparse LU where that
    stalls): a relative error of ~1/sqrt(2 probes) on each SE.

State kinds
    FITTED: in an SCC of >= 2 states (its SE is within the SCC); ONE_WAY: a singleton SCC upstream of
    another (only an exclusion lower bound, paper Eq 25: V_f - V_g >= log(w(f->g) / w_unit(g)); more samples
    of f barely move it, and its strongest such gap is "decisive" once >= ``decisive_gap``); ISOLATED: a
    singleton with no kept move out; UNSEEN: sampled <= min_visits times (not in the graph).

Allocation of a round of ``budget`` samples (:func:`allocate`)
    1. met: FITTED states with SE < target_se, >= ``min_samples`` samples and >= ``min_moves`` moves within
       their SCC are no longer sampled for their own variance; stopped: met states of an SCC whose states all
       met the target get nothing at all. What an open state still needs: N (SE^2/t^2 - 1) ``need_margin``
       + 1 of its own samples, the samples that bring its moves to the floor at its rate of moving out, and
       the samples floor; an explored state (2.) needs ``explore`` - N and then what the median open state needs.
    Triage: when ``remaining`` (the collection's samples left) cannot pay for every open and explored
       state's need, only the cheapest ones it can pay for are explored (2.) and designed for (4.), the met
       states keep no weight (``bulk`` 0) and one-way states get nothing (3.): with too small a budget for
       the target, the most states within it (benchmarks/adaptive_bench.py --budget).
    2. discovery: a share ``discovery`` of the budget (all of it under triage) goes, one sample at a time
       round-robin, to UNSEEN and ISOLATED states and to ONE_WAY states whose bound is not decisive, sampled
       fewer than ``explore`` times (fewest first, ties in a seeded order): a few more samples of a one-way
       state may show the way back; an unused share returns to the pool, and what the design (4.) cannot
       use comes back to discovery;
    3. ONE_WAY states sampled ``explore`` times get ``oneway_cap`` samples while their bound is not
       decisive, none once it is;
    4. the rest goes to the FITTED states by A-optimal design: with weights omega_i, sum_i omega_i Var_i =
       sum_f c_f / N(f), c_f = tr(Phi_f G Omega G), is minimised over the added samples d_f (sum d_f = rest)
       by water-filling, N(f) + d_f = lambda sqrt(c_f) (``criterion`` "sum": omega = 1 on the open states;
       "max": omega_i = Var_i / target_se^2), the met states of open SCCs weighing ``bulk`` (0.1), optionally
       after a share ``spread`` of it is spread evenly over the open states. Met states stay eligible: a
       state whose moves in are rare (high potential) is pinned by its neighbours' samples, and forbidding
       those stalled the max SE at ~2x the target. Their small weight keeps the ranking of the bulk: with
       ``bulk`` 0 the design serves the worst states only, and at its stop adaptive's Spearman against the
       truth was 0.005-0.024 below per_state's at the same calls on 4 of 6 landscape families; with 0.1,
       not more than 0.010 below on 29 of 30 runs (6 families x 5 seeds), for max-SE savings 3-22 %
       smaller (geo-means, seeds 0-2; benchmarks/adaptive_bench.py, docs/collect.md). The round spends
       at most what the open states need (their needs' sum), so it ends early rather than overshoot.
    Stopping rule: done when every FITTED state is met and no UNSEEN/ISOLATED (or not yet explored
    one-way) state is still being explored (ONE_WAY states never block: their bound is all more samples
    of them can give).
    The allocation is a function of the counts, the fit, the config, ``remaining`` and the seed only (the
    seed keys the probes and the tie order together with the number of samples so far): a resumed
    collection plans the same round.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse import linalg as spla

from potsearch.science.action import FitResult, fit_exact, make_kernel, pinned_hessian
from potsearch.science.graph import Graph, build_graph
from potsearch.science.newton import one_blas_thread
from potsearch.store import Counts

FITTED, ONE_WAY, ISOLATED, UNSEEN = 0, 1, 2, 3
KINDS = ("fitted", "one_way", "isolated", "unseen")
CRITERIA = ("sum", "max")


@dataclass(frozen=True)
class AllocationConfig:
    target_se: float = 0.1
    discovery: float = 0.1          # share of each round for states not fitted yet
    criterion: str = "sum"
    decisive_gap: float = 2.0       # nats: a one-way state's exclusion gap that settles its place
    oneway_cap: int = 1             # samples a round for a one-way state whose bound is not decisive
    min_samples: int = 8            # a state is never stopped on fewer samples (its SE is unreliable)
    min_moves: int = 10             # ... nor on fewer moves within its SCC, in and out (p from a handful of
                                    # moves makes the sandwich too small: 2-state SCCs met the target at once)
    explore: int = 16               # an unseen, isolated or one-way state is explored until sampled this often
    need_margin: float = 1.2        # a round spends at most the samples the open SEs need, times this
    spread: float = 0.0             # share of the design budget spread evenly over the open states
    bulk: float = 0.1               # design weight of the met (not stopped) fitted states (open ones: 1)
    probes: int = 64
    exact_limit: int = 1500
    kernel: str = "softplus"
    beta: float = 1.0
    min_visits: int = 1

    def __post_init__(self):
        if self.criterion not in CRITERIA:
            raise ValueError(f"unknown criterion {self.criterion!r} (choose from {', '.join(CRITERIA)})")
        if not self.target_se > 0:
            raise ValueError("target_se must be > 0")
        if not 0.0 <= self.discovery <= 1.0:
            raise ValueError("discovery must be in [0, 1]")


@dataclass
class Errors:
    """Per graph state: kind, SE (nan unless FITTED), exclusion gap (ONE_WAY), and the criterion's pieces."""

    kind: np.ndarray
    se: np.ndarray
    gap: np.ndarray
    sandwich: Sandwich


class Sandwich:
    """Cov(V) = G J G of one fit in the mean gauge (module docstring); ``variances`` and ``contributions``
    evaluate it. Coordinates: the states of SCCs of >= 2 states ("fitted"), in graph order."""

    def __init__(self, g: Graph, fit: FitResult, kernel, exact_limit: int = 1500, probes: int = 64,
                 rng: np.random.Generator | None = None):
        n = g.n_states
        sizes = np.bincount(fit.scc, minlength=fit.n_sccs)
        big = sizes[fit.scc] >= 2
        self.F = np.flatnonzero(big)
        nf = len(self.F)
        pos = np.full(n, -1)
        pos[self.F] = np.arange(nf)
        _, self.lab = np.unique(fit.scc[self.F], return_inverse=True)   # SCC per fitted state, 0..
        self.size = np.bincount(self.lab).astype(float)
        u = fit.scc_potential
        inner = (fit.scc[g.src] == fit.scc[g.dst]) & big[g.src]
        src, dst = g.src[inner], g.dst[inner]
        self.p = g.n[inner] / g.visits[src]
        x = u[src] - u[dst]
        self.k1 = kernel.d1(x)
        # pinned Newton Hessian: one state per SCC fixed (the first), solved on the others
        free = np.zeros(n, dtype=bool)
        free[self.F] = True
        first = np.unique(fit.scc[self.F], return_index=True)[1]
        free[self.F[first]] = False
        self.idx = pos[np.flatnonzero(free)]
        H = pinned_hessian(u, src, dst, self.p, 1, kernel, free, np.flatnonzero(free)).tocsc()
        self.s, self.d = pos[src], pos[dst]
        e = np.arange(len(src))
        # A: column e = K'(x_e)(1_f - 1_g); B: column j (a fitted source) = b_f = sum_e p_e a_e
        self.A = sp.csc_matrix((np.concatenate([self.k1, -self.k1]),
                                (np.concatenate([self.s, self.d]), np.concatenate([e, e]))), shape=(nf, len(e)))
        self.B = (self.A @ sp.csr_matrix((self.p, (e, self.s)), shape=(len(e), nf))).tocsc()
        self.N = g.visits[self.F].astype(float)
        self.exact = len(self.idx) <= exact_limit
        self.probes, self.rng = probes, rng or np.random.default_rng(0)
        self.n = n
        if self.exact:
            Gf = np.zeros((nf, nf))
            if len(self.idx):
                Gf[np.ix_(self.idx, self.idx)] = np.linalg.inv(H.toarray())
            self.G = self._center(self._center(Gf).T)          # the pseudo-inverse of H, SCC by SCC
        else:
            self.H, self.lu = H.tocsr(), None

    def _center(self, X: np.ndarray) -> np.ndarray:
        """Subtract each SCC's mean from its rows (the mean gauge)."""
        means = np.zeros((len(self.size),) + X.shape[1:])
        np.add.at(means, self.lab, X)
        return X - (means / self.size.reshape((-1,) + (1,) * (X.ndim - 1)))[self.lab]

    def _solve(self, R: np.ndarray) -> np.ndarray:
        """G R for right-hand sides R that sum to zero over every SCC (the gradient's directions)."""
        if self.exact:
            return self.G @ R
        out = np.zeros_like(R)
        if len(self.idx):
            out[self.idx] = self._block_cg(np.ascontiguousarray(R[self.idx]))
        return self._center(out)

    def _block_cg(self, R: np.ndarray, rtol: float = 1e-4, maxiter: int = 400) -> np.ndarray:
        """H X = R for all columns at once: Jacobi-preconditioned CG, vectorised over the columns (one sparse
        product a step serves every probe; in place, as the n x probes arrays are memory-bound). rtol 1e-4
        is ample for an SE known to ~10 %. A sparse LU of H takes over if CG has not converged in ``maxiter``
        steps (chain-like graphs; CG is fast on expander-like ones, where an LU fills in: newton.py)."""
        if self.lu is not None:
            return self.lu.solve(R)
        dinv = 1.0 / self.H.diagonal()[:, None]
        X = np.zeros_like(R)
        res = R.copy()
        z = dinv * res
        p = z.copy()
        rz = np.einsum("ij,ij->j", res, z)
        stop = rtol ** 2 * np.einsum("ij,ij->j", R, R)
        for _ in range(maxiter):
            Hp = self.H @ p
            alpha = rz / np.maximum(np.einsum("ij,ij->j", p, Hp), 1e-300)
            X += np.multiply(p, alpha, out=z)
            res -= np.multiply(Hp, alpha, out=Hp)
            if np.all(np.einsum("ij,ij->j", res, res) <= stop):
                return X
            np.multiply(res, dinv, out=z)
            rz_new = np.einsum("ij,ij->j", res, z)
            p *= rz_new / np.maximum(rz, 1e-300)
            p += z
            rz = rz_new
        self.lu = spla.splu(self.H.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                            options={"SymmetricMode": True})
        return self.lu.solve(R)

    def _full(self, v: np.ndarray) -> np.ndarray:
        out = np.full(self.n, np.nan)
        out[self.F] = v
        return out

    def variances(self) -> np.ndarray:
        """Var(V_f - mean of f's SCC) per graph state (nan outside SCCs of >= 2 states)."""
        if not len(self.F):
            return self._full(np.zeros(0))
        if self.exact:
            J = (self.A @ sp.diags(self.p / self.N[self.s]) @ self.A.T - self.B @ sp.diags(1 / self.N) @ self.B.T)
            var = np.einsum("ij,ji->i", self.G, J @ self.G)
        else:                                            # random multinomial-linearised perturbations dw
            K, nf = self.probes, len(self.F)
            z = self.rng.standard_normal((len(self.s), K)) * np.sqrt(self.p / self.N[self.s])[:, None]
            other = np.clip(1.0 - np.bincount(self.s, self.p, minlength=nf), 0.0, None)
            tot = np.zeros((nf, K))
            np.add.at(tot, self.s, z)
            tot += self.rng.standard_normal((nf, K)) * np.sqrt(other / self.N)[:, None]
            var = (self._solve(self.A @ (z - self.p[:, None] * tot[self.s])) ** 2).mean(axis=1)
        return self._full(np.maximum(var, 0.0))

    def contributions(self, omega: np.ndarray) -> np.ndarray:
        """c_f = tr(Phi_f G Omega G) per graph state: the weighted variance one sample of f carries
        (sum_i omega_i Var_i = sum_f c_f / N(f)); ``omega`` per graph state."""
        if not len(self.F):
            return np.zeros(self.n)
        w = omega[self.F]
        if self.exact:
            M = self.G @ (w[:, None] * self.G)
            q = self.k1 ** 2 * (M[self.s, self.s] + M[self.d, self.d] - 2 * M[self.s, self.d])
            r = np.asarray((self.B.multiply(M @ self.B)).sum(axis=0)).ravel()
        else:
            Y = self._solve(self._center(np.sqrt(w)[:, None] * self.rng.standard_normal((len(w), self.probes))))
            q = self.k1 ** 2 * ((Y[self.s] - Y[self.d]) ** 2).mean(axis=1)
            r = np.asarray((self.B.T @ Y) ** 2).mean(axis=1)
        c = np.maximum(np.bincount(self.s, self.p * q, minlength=len(self.F)) - r, 0.0)
        return np.nan_to_num(self._full(c))


def state_errors(g: Graph, fit: FitResult, config: AllocationConfig = AllocationConfig(),
                 rng: np.random.Generator | None = None) -> Errors:
    """Kinds, standard errors and one-way gaps of a fit's states (low_reject graphs)."""
    if g.weight != "low_reject":
        raise ValueError("adaptive allocation needs the low_reject weights (w = n/N per source state)")
    kernel = make_kernel(config.kernel, config.beta)
    sizes = np.bincount(fit.scc, minlength=fit.n_sccs)
    single = sizes[fit.scc] == 1
    kind = np.where(single, np.where(fit.unbounded, ONE_WAY, ISOLATED), FITTED)
    with one_blas_thread():
        sw = Sandwich(g, fit, kernel, config.exact_limit, config.probes, rng)
        se = np.sqrt(sw.variances())
    cross = fit.scc[g.src] != fit.scc[g.dst]
    gaps = np.log(g.w[cross] / g.unit_weight()[g.dst[cross]])
    gap = np.full(g.n_states, -np.inf)
    np.maximum.at(gap, g.src[cross], gaps)
    gap[kind != ONE_WAY] = np.nan
    return Errors(kind, se, gap, sw)


@dataclass
class Allocation:
    """The next round: ``samples[i]`` for ``states[i]`` (the counts' states), with the evidence behind it."""

    states: list[str]
    samples: np.ndarray
    visits: np.ndarray
    kind: np.ndarray                 # index into KINDS
    se: np.ndarray                   # nan unless fitted
    gap: np.ndarray                  # exclusion gap (nats) of one-way states, nan otherwise
    met: np.ndarray                  # fitted states whose SE meets the target (sampled only as helpers)
    stopped: np.ndarray              # met, and so did every state of their SCC: never sampled again
    capped: np.ndarray               # one-way states whose bound is decisive
    done: bool                       # every fitted state met the target, no state is still explored
    max_se: float
    shares: dict                     # samples per part: discovery, one_way, design (triage: states funded)
    moves: np.ndarray | None = None  # moves within its SCC per state, in and out

    @property
    def open_states(self) -> list[str]:
        """Fitted states that have not met the target (the stopping rule's list)."""
        return [s for s, k, m in zip(self.states, self.kind, self.met) if k == FITTED and not m]

    def plan(self) -> dict[str, int]:
        return {s: int(k) for s, k in zip(self.states, self.samples) if k > 0}


def water_fill(c: np.ndarray, N: np.ndarray, budget: int, cap: np.ndarray) -> np.ndarray:
    """Integer d >= 0, d <= cap, sum d <= budget, minimising sum c / (N + d): N + d = lambda sqrt(c) clipped
    (bisection on lambda), floors, then the remainder one each by largest fractional part (ties: index)."""
    d = np.zeros(len(c), dtype=np.int64)
    ok = (c > 0) & (cap > 0)
    if budget <= 0 or not ok.any():
        return d
    rc, n, cp = np.sqrt(c[ok]), N[ok].astype(float), cap[ok].astype(float)

    def spend(lam):
        return np.clip(lam * rc - n, 0.0, cp)

    if spend(1e300).sum() <= budget:
        d[ok] = cap[ok]
        return d
    lo, hi = 0.0, 1.0
    while spend(hi).sum() < budget:
        hi *= 2.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if spend(mid).sum() < budget else (lo, mid)
    x = spend(lo)
    base = np.floor(x).astype(np.int64)
    left = int(budget - base.sum())
    frac = np.where(base < cp, x - base, -1.0)
    order = np.lexsort((np.arange(len(x)), -frac))[: max(left, 0)]
    base[order[frac[order] >= 0]] += 1
    d[ok] = base
    return d


def allocate(counts: Counts, budget: int, config: AllocationConfig = AllocationConfig(), seed: int = 0,
             fit: FitResult | None = None, graph: Graph | None = None, remaining: int | None = None) -> Allocation:
    """The next round's samples per state (module docstring). ``fit``/``graph`` may be passed when the caller
    has just fitted the same counts (low_reject, ``config.min_visits``). ``remaining``: the samples the whole
    collection has left, this round's included (None: no limit); when the open states need more than that,
    only the open states that need the fewest samples, as many as it can pay for, are designed for (triage)."""
    rng = np.random.default_rng([int(seed), int(counts.total)])
    if remaining is not None:
        budget = min(budget, max(int(remaining), 0))
    n_all = len(counts.states)
    g = graph or build_graph(counts, weight="low_reject", min_visits=config.min_visits)
    fit = fit or fit_exact(g, make_kernel(config.kernel, config.beta))
    err = state_errors(g, fit, config, rng)
    at = {s: i for i, s in enumerate(counts.states)}
    gi = np.array([at[s] for s in g.names], dtype=np.int64)
    visits = counts.visits()
    kind = np.full(n_all, UNSEEN)
    kind[gi] = err.kind
    se = np.full(n_all, np.nan)
    se[gi] = err.se
    gap = np.full(n_all, np.nan)
    gap[gi] = err.gap
    fitted = kind == FITTED
    inner = fit.scc[g.src] == fit.scc[g.dst]
    moves = np.zeros(n_all)
    out = np.bincount(g.src[inner], g.n[inner], g.n_states)
    moves[gi] = out + np.bincount(g.dst[inner], g.n[inner], g.n_states)
    met = (fitted & (np.nan_to_num(se, nan=np.inf) < config.target_se) & (visits >= config.min_samples)
           & (moves >= config.min_moves))
    open_ = fitted & ~met
    scc = np.full(n_all, -1)
    scc[gi] = fit.scc
    stopped = met & ~np.isin(scc, scc[open_])              # every state of its SCC met the target
    capped = (kind == ONE_WAY) & (gap >= config.decisive_gap)
    samples = np.zeros(n_all, dtype=np.int64)
    explore = ((kind == UNSEEN) | (kind == ISOLATED) | ((kind == ONE_WAY) & ~capped)) & (visits < config.explore)
    done = not open_.any() and not explore.any()
    max_se = float(np.nanmax(se)) if fitted.any() else float("nan")
    shares = {"discovery": 0, "one_way": 0, "design": 0, "triage": 0}
    if done or budget <= 0:
        return Allocation(list(counts.states), samples, visits, kind, se, gap, met, stopped, capped, done, max_se,
                          shares, moves)
    # what each open state still needs (its own samples only: N (SE^2/t^2 - 1), the moves floor at its rate of
    # moving out, the samples floor) and each explored state (up to ``explore``)
    open_g = open_[gi]
    var = err.se ** 2
    vg = visits[gi].astype(float)
    need = vg * np.clip(var / config.target_se ** 2 - 1.0, 0.0, None) * config.need_margin
    need_moves = np.clip(config.min_moves - moves[gi], 0.0, None) * vg / np.maximum(out, 1.0)
    need = np.maximum.reduce([np.ceil(np.nan_to_num(need)) + 1, np.ceil(need_moves), config.min_samples - vg])
    cost = np.full(n_all, np.inf)
    cost[gi[open_g]] = need[open_g]
    # an explored state is not within the target once explored: it then needs what a typical open state needs
    cost[explore] = config.explore - visits[explore] + (np.median(need[open_g]) if open_g.any() else 0.0)
    triage = remaining is not None and cost[np.isfinite(cost)].sum() > remaining
    if triage:
        # triage: the budget cannot pay for every open and explored state: the cheapest it can pay for
        o = np.flatnonzero(np.isfinite(cost))
        o = o[np.lexsort((o, cost[o]))]
        funded = np.zeros(n_all, dtype=bool)
        funded[o[: max(1, int(np.searchsorted(np.cumsum(cost[o]), remaining, side="right")))]] = True
        explore &= funded
        open_g &= funded[gi]
        shares["triage"] = int(funded.sum())
    bulk = 0.0 if triage else config.bulk                # under triage no sample to spare for states already met
    # 2. discovery: round-robin over unseen and isolated states (up to ``explore`` samples each), fewest
    #    samples first, seeded ties
    cand = np.flatnonzero(explore)
    cand = cand[np.lexsort((rng.permutation(len(cand)), visits[cand]))]

    def discover(left: int) -> None:
        nonlocal cand
        while left and len(cand):
            cand = cand[visits[cand] + samples[cand] < config.explore]
            take = cand[:left]
            samples[take] += 1
            left -= len(take)
            shares["discovery"] += len(take)

    discover(budget if triage else min(int(config.discovery * budget), budget))
    # 3. one-way states whose bound is not decisive
    ow = np.flatnonzero((kind == ONE_WAY) & ~capped & ~explore) if not triage else np.zeros(0, int)
    room = budget - int(samples.sum())
    if len(ow) and config.oneway_cap > 0 and room > 0:
        ow = ow[rng.permutation(len(ow))][: room // config.oneway_cap]
        samples[ow] += config.oneway_cap
        shares["one_way"] = len(ow) * config.oneway_cap
    # 4. A-optimal design for the open fitted states' variances; samples of met states count when they
    #    reduce those more per call than the open states' own (they are a neighbour's bottleneck)
    room = budget - int(samples.sum())
    omega = np.zeros(g.n_states)
    omega[open_g] = 1.0 if config.criterion == "sum" else var[open_g] / config.target_se ** 2
    helpers = met[gi] & ~stopped[gi]
    if bulk:                                             # the bulk keeps a little weight (module docstring)
        omega[helpers] = bulk
    c = err.sandwich.contributions(omega)
    room = min(room, int(need[open_g].sum()))
    eligible = open_g | helpers
    even = np.zeros(g.n_states, dtype=np.int64)
    share = int(config.spread * room)
    if share:
        o = np.flatnonzero(open_g)
        o = o[rng.permutation(len(o))]
        even[o] = share // len(o)
        even[o[: share % len(o)]] += 1
    d = even + water_fill(np.where(eligible, c, 0.0), g.visits + even, room - share, np.where(eligible, room, 0))
    samples[gi] += d
    shares["design"] = int(d.sum())
    discover(budget - int(samples.sum()))              # what the design cannot use explores further
    return Allocation(list(counts.states), samples, visits, kind, se, gap, met, stopped, capped, done, max_se,
                      shares, moves)
