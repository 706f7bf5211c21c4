"""The action, its derivatives, and the least-action fit (pure numpy/scipy).

S(V) = (1/n) * sum_{edges f->g} w(f->g) * K(V_f - V_g)

Kernels (K'(x)/K'(-x) = exp(-beta x) makes detailed balance stationary):
  softplus     K(x) = log(1 + exp(-x))
  exponential  K(x) = exp(-beta x / 2)

The exact infimum: S is convex and gauge invariant. Inside a strongly connected
component (SCC) the minimiser is finite; an edge between SCCs has no return path,
so the infimum sends the upstream SCC to +inf relative to the downstream one and
the edge contributes 0. We fit all SCCs at once by Newton's method on the
block-diagonal Hessian (a weighted graph Laplacian with one pinned state per SCC,
solved by preconditioned CG) — at the paper's size about a dozen Newton steps where
L-BFGS-B needs hundreds of iterations (benchmarks/fit_bench.py) — then propagate exclusion lower bounds
(paper Eq 25) down the condensation DAG.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse import linalg as spla

from potsearch.science.graph import Graph
from potsearch.science.newton import NewtonSolver, one_blas_thread


# ----------------------------------------------------------------------------- kernels
@dataclass(frozen=True)
class Softplus:
    name: str = "softplus"
    beta: float = 1.0

    def value(self, x):
        a = np.abs(x)
        return np.log1p(np.exp(-a)) + 0.5 * (a - x)   # log(1 + e^-x), stable for both signs

    def d1(self, x):
        return -0.5 * (1.0 - np.tanh(0.5 * x))         # -sigmoid(-x), without np.where

    def d2(self, x):
        t = np.tanh(0.5 * x)
        return 0.25 * (1.0 - t * t)                     # sigmoid(x) * sigmoid(-x)

    def weighted(self, x, w, buf, out):
        """sum(w K(x)) and out = -w K'(x), in place (x and buf are overwritten): one exp, one log.

        K(x) = log(1 + e^x) - x with x clipped at 700 from above (e^x stays finite; beyond 700 both
        K and K' are below 1e-304, negligible in any sum), -K'(x) = 1/(1 + e^x). The price of the
        cancellation: each K is exact to a few ulp of max(|x|, 1) in ABSOLUTE terms (K ~ e^-x itself
        is lost for x > ~37), so S is accurate to ~1e-16 * sum(w |x|), not to its last digit; the
        gradient keeps full relative precision, and newton_fit's line search allows for this.
        Measured 1.4x faster than the abs/exp/log1p/tanh form (benchmarks/fit_bench.py)."""
        np.minimum(x, 700.0, out=x)
        np.exp(x, out=buf)
        buf += 1.0
        np.log(buf, out=out)
        val = np.dot(w, out) - np.dot(w, x)
        np.divide(w, buf, out=out)
        return float(val)


@dataclass(frozen=True)
class Exponential:
    beta: float = 1.0
    name: str = "exp"

    def value(self, x):
        return np.exp(-0.5 * self.beta * x)

    def d1(self, x):
        return -0.5 * self.beta * np.exp(-0.5 * self.beta * x)

    def d2(self, x):
        return 0.25 * self.beta**2 * np.exp(-0.5 * self.beta * x)

    def weighted(self, x, w, buf, out):
        """sum(w K(x)) and out = -w K'(x), in place (x and buf are overwritten)."""
        np.multiply(x, -0.5 * self.beta, out=buf)
        np.exp(buf, out=buf)
        val = np.dot(w, buf)
        np.multiply(w, buf, out=out)
        out *= 0.5 * self.beta
        return float(val)


def make_kernel(name: str = "softplus", beta: float = 1.0):
    if name == "softplus":
        return Softplus()
    if name in ("exp", "exponential"):
        if not beta > 0:
            raise ValueError("beta must be > 0")
        return Exponential(beta=float(beta))
    raise ValueError(f"unknown kernel {name!r} (choose softplus or exp)")


# ----------------------------------------------------------------------------- action
def action(V: np.ndarray, src, dst, w, n_states: int, kernel=Softplus()) -> float:
    return float(np.dot(w, kernel.value(V[src] - V[dst])) / n_states)


class Objective:
    """S(V) and its analytic gradient over a fixed edge set, vectorised over edges (gather with
    np.take, scatter with np.bincount), with work buffers allocated once: fresh 100-kB arrays cost
    page faults on every call. Not re-entrant (the buffers are shared between calls)."""

    def __init__(self, src, dst, w, n_states: int, kernel=Softplus()):
        self.src = np.ascontiguousarray(src, dtype=np.intp)
        self.dst = np.ascontiguousarray(dst, dtype=np.intp)
        self.n_states, self.kernel = int(n_states), kernel
        self.w = np.asarray(w, dtype=float) / self.n_states        # the 1/n folded into the weights
        m = len(self.w)
        self._x, self._buf, self._k = np.empty(m), np.empty(m), np.empty(m)
        self._need = int(max(self.src.max(initial=-1), self.dst.max(initial=-1))) + 1
        if min(self.src.min(initial=0), self.dst.min(initial=0)) < 0:
            raise ValueError("edge indices must be >= 0")

    def __call__(self, V: np.ndarray):
        V = np.asarray(V, dtype=float)
        if len(V) < self._need:
            raise ValueError(f"V has {len(V)} entries; the edges need {self._need}")
        x, k = self._x, self._k
        np.take(V, self.src, out=x, mode="clip")          # indices checked above: no buffered copy
        np.take(V, self.dst, out=self._buf, mode="clip")
        x -= self._buf
        val = self.kernel.weighted(x, self.w, self._buf, k)          # k = -w K'(x) >= 0
        g = np.bincount(self.dst, k, minlength=len(V)).astype(float, copy=False)  # int64 if no edges
        g -= np.bincount(self.src, k, minlength=len(V))
        return val, g


def action_and_grad(V: np.ndarray, src, dst, w, n_states: int, kernel=Softplus()):
    """Value and analytic gradient (one-off; build an :class:`Objective` to evaluate repeatedly)."""
    return Objective(src, dst, w, n_states, kernel)(V)


def hessian(V: np.ndarray, src, dst, w, n_states: int, kernel=Softplus()) -> sp.csr_matrix:
    """The Hessian: a weighted graph Laplacian with edge weights w K''(V_f - V_g) / n."""
    c = w * kernel.d2(V[src] - V[dst]) / n_states
    n = len(V)
    rows = np.concatenate([src, dst, src, dst])
    cols = np.concatenate([src, dst, dst, src])
    vals = np.concatenate([c, c, -c, -c])
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def pinned_hessian(V, src, dst, w, n_states: int, kernel, free: np.ndarray, idx: np.ndarray) -> sp.csr_matrix:
    """The Hessian restricted to the free states ``idx`` (rows/columns of pinned or untouched states removed),
    assembled directly in the reduced numbering (no fancy-indexing of the full matrix)."""
    c = w * kernel.d2(V[src] - V[dst]) / n_states
    m = len(idx)
    local = np.full(len(free), -1, dtype=np.int64)
    local[idx] = np.arange(m)
    ls, ld = local[src], local[dst]
    diag = np.bincount(ls[ls >= 0], c[ls >= 0], minlength=m) + np.bincount(ld[ld >= 0], c[ld >= 0], minlength=m)
    both = (ls >= 0) & (ld >= 0)
    rows = np.concatenate([ls[both], ld[both], np.arange(m)])
    cols = np.concatenate([ld[both], ls[both], np.arange(m)])
    vals = np.concatenate([-c[both], -c[both], diag])
    return sp.csr_matrix((vals, (rows, cols)), shape=(m, m))


def action_of(V: np.ndarray, g: Graph, kernel=Softplus()) -> float:
    """The action of a full potential vector on graph ``g`` (+inf entries allowed: they cost 0 downhill)."""
    V = np.asarray(V, dtype=float)
    x = V[g.src] - V[g.dst]
    with np.errstate(invalid="ignore"):
        k = np.where(np.isposinf(x), 0.0, kernel.value(np.where(np.isfinite(x), x, 0.0)))
    k = np.where(np.isneginf(x) | np.isnan(x), np.inf, k)
    return float(np.dot(g.w, k) / g.n_states)


# ----------------------------------------------------------------------------- results
@dataclass
class FitResult:
    names: list[str]
    visits: np.ndarray
    potential: np.ndarray        # finite for states in sink SCCs, nan where unbounded
    scc_potential: np.ndarray    # finite potential inside the state's own SCC (gauge: SCC minimum = 0)
    lower_bound: np.ndarray      # exclusion-inequality lower bound in the downstream sinks' gauge
    scc: np.ndarray              # SCC label per state
    unbounded: np.ndarray        # state's SCC is upstream of another SCC
    scc_order: list[int]         # SCC labels in topological order (upstream first)
    action: float                # S_min (exact infimum) or the whole-graph stopping value
    converged: bool
    iterations: int
    grad_norm: float
    seconds: float
    mode: str = "exact"
    n_edges: int = 0
    stderr: np.ndarray | None = None
    history: list = field(default_factory=list)   # (iteration, action, grad_norm)
    options: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    reference: "ReferenceView | None" = None   # the reference-SCC convention (exact mode)

    def __repr__(self) -> str:  # short: the arrays are per state (thousands of entries)
        return (f"FitResult(mode={self.mode!r}, action={self.action:.6g}, states={self.n_states}, "
                f"edges={self.n_edges}, sccs={self.n_sccs}, unbounded={int(self.unbounded.sum())}, "
                f"converged={self.converged})")

    def to_frame(self):
        """One row a state: state, potential, lower_bound, scc, unbounded, visits (and stderr if known)."""
        import pandas as pd

        cols = {"state": self.names, "potential": self.potential, "lower_bound": self.lower_bound, "scc": self.scc,
                "unbounded": self.unbounded, "visits": self.visits}
        if self.stderr is not None:
            cols["stderr"] = self.stderr
        return pd.DataFrame(cols)

    @property
    def n_states(self) -> int:
        return len(self.names)

    @property
    def n_sccs(self) -> int:
        return int(self.scc.max()) + 1 if len(self.scc) else 0

    def target_potential(self) -> np.ndarray:
        """One finite number per state for display and evolution targets:
        the potential where bounded, the exclusion lower bound where unbounded."""
        return np.where(self.unbounded, self.lower_bound, self.potential)


# ----------------------------------------------------------------------------- Newton
def _solve(H: sp.csr_matrix, rhs: np.ndarray, rtol: float = 1e-13, direct_limit: int = 200_000) -> np.ndarray:
    """Solve the pinned Laplacian system with Jacobi-preconditioned CG, sparse LU as the fallback
    (the original single-rule solver; kept as the reference the adaptive solver is tested against)."""
    if H.shape[0] == 0:
        return rhs.copy()
    d = H.diagonal()
    M = spla.LinearOperator(H.shape, matvec=lambda v: v / d, dtype=float)
    x, info = spla.cg(H, rhs, rtol=rtol, atol=0.0, maxiter=max(1000, 5 * H.shape[0]), M=M)
    if info == 0 or H.shape[0] > direct_limit:
        return x
    return spla.spsolve(H.tocsc(), rhs, permc_spec="MMD_AT_PLUS_A")


def newton_fit(
    g: Graph, labels: np.ndarray, pins: np.ndarray, kernel=Softplus(), tol: float = 1e-10,
    max_iter: int = 200, solver: NewtonSolver | None = None,
) -> tuple[np.ndarray, dict]:
    """Minimise the action restricted to intra-SCC edges, one pinned state per SCC (V=0 there).

    Returns V (finite inside each SCC, pinned states 0) and a stats dict.
    """
    n = g.n_states
    inner = labels[g.src] == labels[g.dst]
    src, dst, w = g.src[inner], g.dst[inner], g.w[inner]
    free = np.ones(n, dtype=bool)
    free[pins] = False
    # states with no intra-SCC edge are singletons: nothing to fit
    touched = np.zeros(n, dtype=bool)
    touched[src] = touched[dst] = True
    free &= touched
    idx = np.flatnonzero(free)
    solver = solver or NewtonSolver()
    V = np.zeros(n)
    objective = Objective(src, dst, w, n, kernel)
    S, grad = objective(V)
    history = [(0, S, float(np.abs(grad).max()) if n else 0.0)]
    it = 0
    converged = history[0][2] <= tol
    while not converged and it < max_iter:
        it += 1
        H = pinned_hessian(V, src, dst, w, n, kernel, free, idx)
        step = np.zeros(n)
        # inexact Newton (Eisenstat-Walker forcing term): loose solves far from the optimum
        eta = min(0.5, np.sqrt(history[-1][2] / max(history[0][2], 1e-300)), 1e-2 * np.sqrt(history[-1][2]))
        step[idx] = -solver.solve(H, grad[idx], rtol=max(eta, 1e-13))
        slope = float(np.dot(grad, step))
        # Near the optimum the predicted decrease falls below the rounding of S (~1e-16 sum w|x|,
        # Softplus.weighted): then S cannot judge a step and a smaller max |gradient| does.
        flat = -slope <= 1e-13 * max(1.0, abs(S))
        t = 1.0
        while True:
            Vn = V + t * step
            Sn, gn = objective(Vn)
            if Sn <= S + 1e-4 * t * slope or t < 1e-12:
                break
            if flat and np.abs(gn).max() < history[-1][2]:
                break
            t *= 0.5
        stalled = Sn >= S and t < 1e-12
        V, S, grad = Vn, Sn, gn
        gnorm = float(np.abs(grad).max())
        history.append((it, S, gnorm))
        converged = gnorm <= tol
        if stalled:
            break
    return V, {"iterations": it, "converged": bool(converged), "grad_norm": history[-1][2], "history": history,
               "action": S, "solver": solver.mode or "none", "solves": list(solver.log), "lu_fill": solver.fill}


# ----------------------------------------------------------------------------- condensation DAG
def _dag(labels: np.ndarray, n_comp: int, g: Graph):
    cross = labels[g.src] != labels[g.dst]
    a, b = labels[g.src[cross]], labels[g.dst[cross]]
    return cross, a, b


def _levels_from(n_comp: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Kahn's algorithm, vectorised per frontier, on the DAG a->b. Returns the level of each node
    (0 = no incoming edge) — one Python iteration per level, not per node."""
    key = np.unique(a.astype(np.int64) * n_comp + b)
    a, b = key // n_comp, key % n_comp
    order = np.argsort(a, kind="stable")
    a, b = a[order], b[order]
    indptr = np.searchsorted(a, np.arange(n_comp + 1))
    indeg = np.bincount(b, minlength=n_comp)
    level = np.full(n_comp, -1, dtype=np.int64)
    frontier = np.flatnonzero(indeg == 0)
    lev = 0
    while len(frontier):
        level[frontier] = lev
        starts, ends = indptr[frontier], indptr[frontier + 1]
        lens = ends - starts
        if lens.sum() == 0:
            break
        pos = np.repeat(starts - np.cumsum(lens) + lens, lens) + np.arange(lens.sum())
        targets = b[pos]
        np.subtract.at(indeg, targets, 1)
        cand = np.unique(targets)
        frontier = cand[indeg[cand] == 0]
        lev += 1
    return level


def topological_order(labels: np.ndarray, n_comp: int, g: Graph) -> list[int]:
    """SCC labels, upstream first (ties by label)."""
    _, a, b = _dag(labels, n_comp, g)
    level = _levels_from(n_comp, a, b)
    return [int(c) for c in np.lexsort((np.arange(n_comp), level))]


def lower_bounds(g: Graph, labels: np.ndarray, n_comp: int, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exclusion-inequality bounds propagated from the sink SCCs upward.

    For an inter-SCC edge f->g (g->f never seen in N(g) samples): V_f - V_g >= log(w(f->g)/w_unit(g)),
    w_unit(g) = 1/N(g) (low_reject) or 1/N0 (high_reject) — paper Eq 25. An upstream SCC C gets the
    offset max over its outgoing edges of lb(g) + bound - u_f; sink SCCs keep offset 0.
    Returns (lower bound per state, upstream flag per SCC).
    """
    cross, a, b = _dag(labels, n_comp, g)
    es, ed = g.src[cross], g.dst[cross]
    bound = np.log(g.w[cross] / g.unit_weight()[ed])
    upstream = np.zeros(n_comp, dtype=bool)
    upstream[a] = True
    height = _levels_from(n_comp, b, a)  # level 0 = sinks, on the reversed DAG
    offset = np.zeros(n_comp)
    lb = u.copy()
    edge_level = height[a]
    for lev in range(1, int(height.max()) + 1 if n_comp else 0):
        sel = edge_level == lev
        if not sel.any():
            continue
        vals = lb[ed[sel]] + bound[sel] - u[es[sel]]
        comps = a[sel]
        off = np.full(n_comp, -np.inf)
        np.maximum.at(off, comps, vals)
        done = np.isfinite(off)
        offset[done] = off[done]
        members = done[labels]
        lb[members] = offset[labels[members]] + u[members]
    return lb, upstream


# ----------------------------------------------------------------------------- reference-SCC convention
RELATIONS = ("reference", "upstream", "downstream", "incomparable")


@dataclass
class ReferenceView:
    """Potentials relative to one reference SCC (gauge: its minimum = 0).

    * states of the reference SCC: finite potential;
    * states upstream of it (a path leads from them into it): +inf, with an exclusion LOWER bound
      (paper Eq 25 chained along the paths into the reference);
    * states downstream of it (reached from it): -inf, with an exclusion UPPER bound;
    * all other states: incomparable (no path either way): no number, no bound.
    """
    scc: int                     # the reference SCC's label
    size: int
    potential: np.ndarray        # finite / +inf / -inf / nan (incomparable)
    bound: np.ndarray            # lower bound (upstream), upper bound (downstream), = potential in the reference
    relation: np.ndarray         # index into RELATIONS per state

    def relation_names(self) -> list[str]:
        return [RELATIONS[int(r)] for r in self.relation]


def _reach(n_comp: int, a: np.ndarray, b: np.ndarray, start: int) -> np.ndarray:
    from scipy.sparse import csgraph

    adj = sp.csr_matrix((np.ones(len(a)), (a, b)), shape=(n_comp, n_comp))
    order = csgraph.breadth_first_order(adj, start, directed=True, return_predecessors=False)
    out = np.zeros(n_comp, dtype=bool)
    out[order] = True
    return out


def reference_view(g: Graph, labels: np.ndarray, n_comp: int, u: np.ndarray, ref: int) -> ReferenceView:
    """Bounds relative to SCC ``ref`` (``u``: potential inside each SCC). Upstream SCC C:
    offset_C = max over edges f->h (f in C, h upstream-or-reference) of lb(h) + bound(f->h) - u_f, processed
    in order of longest distance to the reference; downstream symmetrically with min and upper bounds."""
    cross, a, b = _dag(labels, n_comp, g)
    es, ed = g.src[cross], g.dst[cross]
    bound = np.log(g.w[cross] / g.unit_weight()[ed])
    down = _reach(n_comp, a, b, ref)
    up = _reach(n_comp, b, a, ref)
    down[ref] = up[ref] = False
    val = np.full(g.n_states, np.nan)
    lim = np.full(g.n_states, np.nan)
    inref = labels == ref
    val[inref] = lim[inref] = u[inref]
    for side, sel_comp in (("up", up), ("down", down)):
        member = sel_comp.copy()
        member[ref] = True
        e = member[a] & member[b]
        if side == "up":          # levels = longest distance to the reference, on the reversed sub-DAG
            lev = _levels_from(n_comp, b[e], a[e])
            comp_of_edge, other = a[e], ed[e]
        else:                     # levels = longest distance from the reference
            lev = _levels_from(n_comp, a[e], b[e])
            comp_of_edge, other = b[e], es[e]
        own = es[e] if side == "up" else ed[e]
        bnd = bound[e]
        edge_level = lev[comp_of_edge]
        for k in range(1, int(edge_level.max()) + 1 if len(edge_level) else 0):
            sel = edge_level == k
            if not sel.any():
                continue
            off = np.full(n_comp, -np.inf if side == "up" else np.inf)
            if side == "up":
                np.maximum.at(off, comp_of_edge[sel], lim[other[sel]] + bnd[sel] - u[own[sel]])
            else:
                np.minimum.at(off, comp_of_edge[sel], lim[other[sel]] - bnd[sel] - u[own[sel]])
            done = np.isfinite(off)
            members = done[labels]
            lim[members] = off[labels[members]] + u[members]
        states = sel_comp[labels]
        val[states] = np.inf if side == "up" else -np.inf
    relation = np.full(g.n_states, 3, dtype=np.int8)
    relation[inref] = 0
    relation[up[labels]] = 1
    relation[down[labels]] = 2
    return ReferenceView(scc=int(ref), size=int(inref.sum()), potential=val, bound=lim, relation=relation)


def reference_scc(g: Graph, labels: np.ndarray, n_comp: int, state: str | None = None) -> int:
    """The reference SCC: the one holding ``state``, else the largest (ties: most visits, then lowest label)."""
    if state is not None:
        try:
            return int(labels[g.names.index(state)])
        except ValueError:
            raise ValueError(f"reference state {state!r} is not among the fitted states") from None
    sizes = np.bincount(labels, minlength=n_comp)
    visits = np.bincount(labels, weights=g.visits, minlength=n_comp)
    return int(np.lexsort((np.arange(n_comp), -visits, -sizes))[0])


# ----------------------------------------------------------------------------- the fit
def fit_exact(g: Graph, kernel=Softplus(), tol: float = 1e-10, solver: str | None = None,
              reference: str | None = None) -> FitResult:
    """The exact infimum: SCCs, Newton per SCC (all at once), lower bounds down the DAG.
    ``solver``: None = the adaptive rule of :class:`NewtonSolver`; "cg", "lu" or "amg" forces one method.
    ``reference``: the state whose SCC is the reference of :class:`ReferenceView` (default: the largest SCC)."""
    t0 = time.perf_counter()
    n_comp, labels = g.sccs()
    ref = reference_scc(g, labels, n_comp, reference) if g.n_states else 0
    # pin: the most visited state of each SCC (ties: lowest index)
    order = np.lexsort((np.arange(g.n_states), -g.visits, labels))
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    pins = order[first]
    with one_blas_thread():
        V, stats = newton_fit(g, labels, pins, kernel, tol=tol, solver=NewtonSolver(force=solver))
    # gauge: the minimum of each SCC is 0
    mins = np.full(n_comp, np.inf)
    np.minimum.at(mins, labels, V)
    u = V - mins[labels]
    lb, upstream = lower_bounds(g, labels, n_comp, u)
    unb = upstream[labels]
    potential = np.where(unb, np.nan, u)
    res = FitResult(
        names=g.names, visits=g.visits, potential=potential, scc_potential=u, lower_bound=lb, scc=labels,
        unbounded=unb, scc_order=topological_order(labels, n_comp, g), action=float(stats["action"]),
        converged=stats["converged"], iterations=stats["iterations"], grad_norm=stats["grad_norm"],
        seconds=time.perf_counter() - t0, mode="exact", n_edges=g.n_edges, history=stats["history"],
        options={"kernel": kernel.name, "beta": kernel.beta, "weight": g.weight, "n0": g.n0,
                 "min_visits": g.min_visits, "gauge": "minimum potential of each SCC = 0",
                 "newton_solver": stats["solver"]},
    )
    if g.n_states:
        res.reference = reference_view(g, labels, n_comp, u, ref)
        res.options["reference_state"] = reference
    res.notes.extend(_largest_scc_note(labels, n_comp, unb, g))
    return res


def _largest_scc_note(labels: np.ndarray, n_comp: int, unbounded: np.ndarray, g: Graph) -> list[str]:
    """A note when the largest SCC is 'unbounded' only because it feeds smaller SCCs: its potentials
    are then empty in the `potential` column although they are fitted (column scc_potential)."""
    if n_comp < 2:
        return []
    sizes = np.bincount(labels, minlength=n_comp)
    big = int(sizes.argmax())
    if not unbounded[labels == big].any() or sizes[big] < 2:
        return []
    cross = (labels[g.src] == big) & (labels[g.dst] != big)
    below = np.unique(labels[g.dst[cross]])
    return [f"the largest SCC ({int(sizes[big])} states) is upstream of {len(below)} other SCC(s) "
            f"({int(sizes[below].sum())} states next below it), so its states are unbounded relative to "
            "those; their potentials relative to each other are finite (column scc_potential). "
            "--min-visits K drops thinly sampled states that often cause this."]


def fit_whole_graph(g: Graph, kernel=Softplus(), maxiter: int = 15000) -> FitResult:
    """The paper's procedure, for comparison: one L-BFGS-B over every state and edge,
    topological initialisation (upstream SCCs start higher), zero-mean gauge.
    Its values for states upstream of another SCC are wherever the optimiser stopped."""
    from scipy.optimize import minimize

    t0 = time.perf_counter()
    n_comp, labels = g.sccs()
    _, a, b = _dag(labels, n_comp, g)
    level = _levels_from(n_comp, a, b)  # 0 = no upstream SCC; the paper's init is V0 = -level
    V0 = -level[labels].astype(float)
    V0 -= V0.mean()
    history = []

    objective = Objective(g.src, g.dst, g.w, g.n_states, kernel)

    def fun(V):
        return objective(V)

    def cb(xk):
        val, grad = fun(xk)
        history.append((len(history) + 1, val, float(np.abs(grad).max())))

    r = minimize(fun, V0, jac=True, method="L-BFGS-B", callback=cb, options={"maxiter": maxiter})
    V = r.x - r.x.mean()
    val, grad = fun(V)
    _, upstream = lower_bounds(g, labels, n_comp, np.zeros(g.n_states))
    return FitResult(
        names=g.names, visits=g.visits, potential=V, scc_potential=V, lower_bound=np.full(g.n_states, np.nan),
        scc=labels, unbounded=upstream[labels], scc_order=topological_order(labels, n_comp, g), action=val,
        converged=bool(r.success), iterations=int(r.nit), grad_norm=float(np.abs(grad).max()),
        seconds=time.perf_counter() - t0, mode="whole-graph", n_edges=g.n_edges, history=history,
        options={"kernel": kernel.name, "beta": kernel.beta, "weight": g.weight, "n0": g.n0,
                 "min_visits": g.min_visits, "gauge": "mean potential = 0", "optimizer": "L-BFGS-B"},
        notes=["whole-graph mode (the paper's procedure): values for states upstream of another SCC "
               "are stopping artefacts of L-BFGS-B, not estimates — their true potential is +inf "
               "relative to the downstream SCC (use the default exact mode)."],
    )
