"""How the Newton systems of the exact fit are solved (used by :mod:`potsearch.science.action`).

Each system is a weighted graph Laplacian of the intra-SCC edges with one pinned state per SCC: symmetric
positive definite and block diagonal (one block per SCC). The solver is chosen per fit, because no
single method is fast on every graph shape (benchmarks/fit_bench.py measures four families).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse import linalg as spla


class NewtonSolver:
    """Chooses, per fit, how to solve the Newton systems (weighted Laplacians of the intra-SCC edges with one
    pinned state per SCC; their sparsity pattern is the same at every step, so one choice serves them all).

    No single solver wins on every graph family (benchmarks/fit_bench.py): Jacobi-CG is cheapest on
    expander-like graphs (few iterations) but needs O(sqrt(kappa)) iterations on chains and geometric graphs;
    a sparse LU is exact and fastest where its fill-in is small (chains, trees, hubs, planar-like graphs)
    and hopeless on expanders; algebraic multigrid (pyamg) as the CG preconditioner is robust everywhere.

    The rule: systems of <= ``small`` unknowns go to LU. Otherwise Jacobi-CG with a budget of ``cg_budget``
    iterations; if that does not converge, the fill of a sparse LU is probed on a breadth-first ball of
    ``probe`` states of the largest block (nnz(L+U) / nnz(H) there) and scaled to the whole block by
    log(block size) / log(probe) (the fill of a 2-D-like graph grows as log n: measured 2.26 on the ball,
    predicted 4.26, actual 4.35 on a 952,007-unknown geometric block). LU from then on if that predicted
    fill is <= ``max_fill`` and the predicted factor (fill x nnz(H)) has <= ``max_lu_nnz`` entries, else
    AMG-PCG. A factor that turns out fuller than 2 ``max_fill`` hands later steps to AMG.
    The Hessian changes less and less between Newton steps, so a factor (or AMG hierarchy) built at one
    step preconditions CG at the next ones: it is rebuilt when that CG needs more than ``reuse_budget``
    iterations, and a factor also at the step after a CG that needed more than ``refresh`` (iterations
    grow from step to step while a fresh factor solves exactly: on that block a factor costs ~7.7 s, one
    preconditioned iteration ~0.2 s). ``force`` picks one method ("cg", "lu", "amg"), rebuilt at every
    step, for benchmarks and tests."""

    def __init__(self, small: int = 400, cg_budget: int = 150, probe: int = 1500, max_fill: float = 25.0,
                 max_lu_nnz: float = 6e7, reuse_budget: int = 25, refresh: int = 15,
                 force: str | None = None):
        if force not in (None, "cg", "lu", "amg"):
            raise ValueError(f"unknown Newton solver {force!r} (choose cg, lu or amg)")
        self.small, self.cg_budget, self.probe, self.reuse_budget = small, cg_budget, probe, reuse_budget
        self.prec = None                           # the last factor / hierarchy, as a CG preconditioner
        self.max_fill, self.max_lu_nnz, self.refresh = max_fill, max_lu_nnz, refresh
        self.mode = force
        self.forced = force is not None
        self.fill: float | None = None
        self.probe_fill: float | None = None
        self.predicted_fill: float | None = None
        self.stale = False                         # rebuild the factor at the next step
        self.log: list[tuple[str, int]] = []       # (method, CG iterations or 0) per solve

    def _cg(self, H, rhs, rtol, M, maxiter):
        it = [0]

        def count(_):
            it[0] += 1
        x, info = spla.cg(H, rhs, rtol=rtol, atol=0.0, maxiter=maxiter, M=M, callback=count)
        return x, info, it[0]

    @staticmethod
    def _factor(H):
        """Sparse LU of H. When the curvature of the edges joining a block to its pinned state has
        underflowed (the softplus K'' of a large potential difference), H is singular in floating point
        although not in exact arithmetic ("Factor is exactly singular"): the factor is then taken of
        H + 1e-10 max|diag| I, a Levenberg step the line search accepts or shortens like any other."""
        opts = dict(permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0, options={"SymmetricMode": True})
        try:
            return spla.splu(H.tocsc(), **opts)
        except RuntimeError:
            shift = 1e-10 * max(float(np.abs(H.diagonal()).max()), 1e-300)
            return spla.splu((H + shift * sp.identity(H.shape[0], format="csc")).tocsc(), **opts)

    def _lu(self, H, rhs):
        lu = self._factor(H)
        self.stale = False
        self.fill = (lu.L.nnz + lu.U.nnz) / max(H.nnz, 1)
        self.log.append(("lu", 0))
        if self.fill > 2 * self.max_fill and not self.forced:
            self.mode = "amg"
        else:
            self.prec = spla.LinearOperator(H.shape, matvec=lu.solve, dtype=float)
        return lu.solve(rhs)

    def _probe(self, H) -> tuple[float, int]:
        """Fill ratio of a sparse LU on a breadth-first ball of the largest block (cheap: <= probe states),
        and that block's size."""
        from scipy.sparse import csgraph

        _, comp = csgraph.connected_components(H, directed=False)
        sizes = np.bincount(comp)
        start = int(np.flatnonzero(comp == sizes.argmax())[0])
        ball = csgraph.breadth_first_order(H, start, directed=False, return_predecessors=False)[: self.probe]
        sub = H[ball][:, ball]
        lu = self._factor(sub)
        return (lu.L.nnz + lu.U.nnz) / max(sub.nnz, 1), int(sizes.max())

    def _amg(self, H, rhs, rtol):
        try:
            import pyamg
        except ImportError:                            # not installed: Jacobi-CG without a budget
            d = H.diagonal()
            M = spla.LinearOperator(H.shape, matvec=lambda v: v / d, dtype=float)
            x, _, it = self._cg(H, rhs, rtol, M, max(1000, 5 * H.shape[0]))
            self.log.append(("cg", it))
            return x
        ml = pyamg.smoothed_aggregation_solver(H.tocsr(), symmetry="symmetric", max_coarse=500)
        self.prec = ml.aspreconditioner(cycle="V")
        x, info, it = self._cg(H, rhs, rtol, self.prec, 500)
        self.log.append(("amg", it))
        if info != 0:
            raise RuntimeError(f"AMG-preconditioned CG did not converge in {it} iterations")
        return x

    def solve(self, H: sp.csr_matrix, rhs: np.ndarray, rtol: float = 1e-13) -> np.ndarray:
        n = H.shape[0]
        if n == 0:
            return rhs.copy()
        if self.mode is None and n <= self.small:
            self.mode = "lu"
        if self.mode in (None, "cg"):
            d = H.diagonal()
            M = spla.LinearOperator(H.shape, matvec=lambda v: v / d, dtype=float)
            budget = max(1000, 5 * n) if self.forced else self.cg_budget
            x, info, it = self._cg(H, rhs, rtol, M, budget)
            if info == 0 or self.forced:
                self.mode = "cg"
                self.log.append(("cg", it))
                return x
            self.log.append(("cg-budget", it))
            self.probe_fill, largest = self._probe(H)
            self.predicted_fill = self.probe_fill * max(1.0, np.log(largest) / np.log(self.probe))
            fits = self.predicted_fill <= self.max_fill and self.predicted_fill * H.nnz <= self.max_lu_nnz
            self.mode = "lu" if fits else "amg"
        if self.prec is not None and not self.forced and not self.stale:
            x, info, it = self._cg(H, rhs, rtol, self.prec, self.reuse_budget)
            if info == 0:
                self.log.append((self.mode + "-reuse", it))
                self.stale = self.mode == "lu" and it > self.refresh
                return x
        if self.mode == "lu":
            return self._lu(H, rhs)
        return self._amg(H, rhs, rtol)


def one_blas_thread():
    """BLAS on one thread inside the fit: its vectors are memory-bound (threads gain little), threaded
    reductions round differently from run to run, and on a busy machine spinning BLAS threads were measured
    to triple the fit's time (benchmarks/fit_bench.py)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:                                    # pragma: no cover - a declared dependency
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")
