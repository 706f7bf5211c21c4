"""Polishing a candidate potential's parameters: random descent (the paper's) and scipy alternatives.

The objective is the action S(p) = S(V(x; p)) of the potential ``V = potential(x, p)`` on a graph
(potsearch.science.action). Every method here is a pure function of an ``ActionObjective`` and a start
vector; the currency they are compared in is *potential evaluations* — calls of the candidate's
``potential(x, p)`` on every state — because that is what dominates for evolved code.

Random descent follows the paper's reference code (appendix E; ``random_optimize_manual.py`` in
its repository) step for step:

* the pool starts as [(p0, S(p0))];
* each iteration, every member of the pool (at most ``keep``) spawns ``samples // len(pool)``
  children; a child copies its parent and perturbs ONE parameter, chosen uniformly, by
  N(0, scale * |p_i|) — a parameter that is exactly 0 therefore never moves;
* the pool becomes the ``keep`` best of old pool + children (stable sort: ties keep the elder).

With the defaults (100 iterations, 20 samples, keep 5) the first iteration has one parent (20
children) and every later one 5 parents × 4 children: exactly 100 × 20 evaluations after the
start point, and the best action never increases (the pool keeps its best member).
The reference script is called with ``perturbation_scale=0.1`` (its function default is 0.2);
our default is 0.1.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from potsearch.core.errors import InputError
from potsearch.science.action import Objective, Softplus

METHODS = ("random-descent", "lbfgs", "nelder-mead")


class CandidateLimitError(InputError):
    """The candidate hit a sandbox limit (wall-clock timeout, CPU, memory) or was killed: polish /
    attribute stop with this one line (exit status 2)."""


# ----------------------------------------------------------------------------- the objective
class ActionObjective:
    """S(p) for ``fn(x, p)`` on edges (src, dst, w) over ``n_states`` states.

    ``x`` holds one array per feature, aligned with the graph's states. Non-finite potentials or
    exceptions give S = +inf (the candidate is invalid there). ``calls`` counts potential evaluations.
    """

    def __init__(self, fn, x: dict, src, dst, w, n_states: int, kernel=Softplus(), n_rows: int | None = None):
        self.fn = fn
        self.x = x
        self.src, self.dst, self.w = np.asarray(src), np.asarray(dst), np.asarray(w, dtype=float)
        self.n_states = int(n_states)          # the action's normaliser (states of this graph)
        if n_rows is None:                     # rows of the feature table (edges index into it)
            n_rows = len(next(iter(x.values()))) if x else self.n_states
        self.n_rows = int(n_rows)
        self.kernel = kernel
        self.calls = 0
        self._objective = Objective(self.src, self.dst, self.w, self.n_states, kernel)

    @classmethod
    def from_graph(cls, fn, x: dict, graph, kernel=Softplus()) -> "ActionObjective":
        return cls(fn, x, graph.src, graph.dst, graph.w, graph.n_states, kernel, n_rows=graph.n_states)

    @classmethod
    def from_edges(cls, fn, x: dict, edges, kernel=Softplus(), n_rows: int | None = None) -> "ActionObjective":
        """From ``potsearch.law.scoring.Edges`` (src, dst, w, n_states) over a shared feature table."""
        return cls(fn, x, edges.src, edges.dst, edges.w, edges.n_states, kernel, n_rows=n_rows)

    def with_features(self, x: dict, fn=None) -> "ActionObjective":
        """The same graph with other feature arrays (ablation, permutation) or another function."""
        return ActionObjective(fn or self.fn, x, self.src, self.dst, self.w, self.n_states, self.kernel,
                               n_rows=self.n_rows)

    def potential(self, p) -> np.ndarray | None:
        self.calls += 1
        try:
            with np.errstate(all="ignore"):
                V = np.asarray(self.fn(self.x, np.asarray(p, dtype=float)), dtype=float)
        except (CandidateLimitError, KeyboardInterrupt):
            raise  # a sandbox limit stops the stage (one line, exit 2): never retried as "invalid at p"
        except Exception:  # noqa: BLE001 - a candidate may fail anywhere: it is then invalid at p
            return None
        if V.ndim == 0:
            V = np.full(self.n_rows, float(V))
        if V.shape != (self.n_rows,) or not np.all(np.isfinite(V)):
            return None
        return V

    def action_of_V(self, V) -> float:
        val, _ = self._objective(V)
        return float(val)

    def __call__(self, p) -> float:
        V = self.potential(p)
        if V is None:
            return float("inf")
        return self.action_of_V(V)

    def value_and_grad(self, p, rel_step: float = 1e-6):
        """S and dS/dp: the analytic dS/dV (potsearch.science.action) times dV/dp by central differences
        (2 potential evaluations per parameter, plus one)."""
        p = np.asarray(p, dtype=float)
        V = self.potential(p)
        if V is None:
            return float("inf"), np.zeros_like(p)
        val, gV = self._objective(V)
        grad = np.zeros_like(p)
        for i in range(len(p)):
            h = rel_step * max(1.0, abs(p[i]))
            hi, lo = p.copy(), p.copy()
            hi[i] += h
            lo[i] -= h
            Vh, Vl = self.potential(hi), self.potential(lo)
            if Vh is None or Vl is None:
                Vh = Vh if Vh is not None else V
                Vl = Vl if Vl is not None else V
                span = (h if Vh is not V else 0.0) + (h if Vl is not V else 0.0)
                grad[i] = float(np.dot(gV, Vh - Vl) / span) if span else 0.0
            else:
                grad[i] = float(np.dot(gV, Vh - Vl) / (2 * h))
        return float(val), grad


# ----------------------------------------------------------------------------- results
@dataclass
class OptimizeResult:
    method: str
    x0: np.ndarray
    f0: float
    x: np.ndarray
    fun: float
    evaluations: int                       # potential evaluations spent (start point excluded)
    history: list = field(default_factory=list)   # (evaluations, best action so far)
    seconds: float = 0.0
    options: dict = field(default_factory=dict)
    message: str = ""

    def summary(self) -> dict:
        return {"method": self.method, "action_before": self.f0, "action_after": self.fun,
                "improvement": self.f0 - self.fun, "evaluations": self.evaluations, "seconds": self.seconds,
                "options": self.options, "message": self.message,
                "params_before": [float(v) for v in self.x0], "params_after": [float(v) for v in self.x]}


class _Tracker:
    """Counts potential evaluations and keeps the best point seen (what every method returns)."""

    def __init__(self, objective, x0, f0, budget: int | None):
        self.obj = objective
        self.start_calls = objective.calls
        self.best_x, self.best_f = np.array(x0, dtype=float), float(f0)
        self.history = [(0, self.best_f)]
        self.budget = budget

    @property
    def used(self) -> int:
        return self.obj.calls - self.start_calls

    def note(self, x, f):
        if np.isfinite(f) and f < self.best_f:
            self.best_x, self.best_f = np.array(x, dtype=float), float(f)
        self.history.append((self.used, self.best_f))

    def exhausted(self) -> bool:
        return self.budget is not None and self.used >= self.budget


class _Budget(Exception):
    pass


# ----------------------------------------------------------------------------- random descent
def random_descent(objective, x0, iterations: int = 100, samples: int = 20, keep: int = 5,
                   scale: float = 0.1, seed: int | None = 0, f0: float | None = None,
                   callback=None) -> OptimizeResult:
    """The paper's random descent (module docstring). ``objective(p) -> float``; ``f0`` = S(x0) if
    already known (then exactly iterations × samples evaluations are made when keep divides samples)."""
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    x0 = np.asarray(x0, dtype=float).copy()
    calls = 0
    if f0 is None:
        f0 = float(objective(x0))
        calls += 1
    f0 = float(f0)
    pool = [(x0.copy(), f0 if np.isfinite(f0) else np.inf)]
    history = [(0, pool[0][1])]
    spent = 0
    n = len(x0)
    for it in range(iterations):
        children = []
        parents = pool[:keep]
        per = samples // len(parents)
        for base, _ in parents:
            for _ in range(per):
                i = int(rng.integers(0, n)) if n else 0
                new = base.copy()
                if n:
                    new[i] = base[i] + rng.normal(0.0, scale * abs(base[i]))
                f = float(objective(new))
                spent += 1
                children.append((new, f if np.isfinite(f) else np.inf))
        children.sort(key=lambda c: c[1])
        pool = sorted(pool + children, key=lambda c: c[1])[:keep]
        history.append((spent, pool[0][1]))
        if callback is not None:
            callback(it + 1, pool[0][1], children)
    best_x, best_f = pool[0]
    return OptimizeResult("random-descent", x0, f0, best_x, float(best_f), spent, history,
                        time.perf_counter() - t0,
                        {"iterations": iterations, "samples": samples, "keep": keep, "scale": scale, "seed": seed},
                        f"{iterations} iterations × {samples} samples")


# ----------------------------------------------------------------------------- scipy
def lbfgs(objective: ActionObjective, x0, max_evals: int = 2000, f0: float | None = None,
          rel_step: float = 1e-6, restarts: int = 0, seed: int | None = 0) -> OptimizeResult:
    """L-BFGS-B with the chain-rule gradient (analytic dS/dV × finite-difference dV/dp), stopped when
    ``max_evals`` potential evaluations are spent or scipy converges. Optional random restarts
    (the best point moved by 10 % of |p_i| + 0.1) use any budget left."""
    from scipy.optimize import minimize

    t0 = time.perf_counter()
    x0 = np.asarray(x0, dtype=float).copy()
    if f0 is None:
        f0 = objective(x0)
    tr = _Tracker(objective, x0, f0, max_evals)
    rng = np.random.default_rng(seed)

    def fun(p):
        if tr.exhausted():
            raise _Budget()
        val, grad = objective.value_and_grad(p, rel_step)
        tr.note(p, val)
        if not np.isfinite(val):
            return 1e300, np.zeros_like(p)
        return val, grad

    msg = ""
    start = x0
    for attempt in range(restarts + 1):
        try:
            r = minimize(fun, start, jac=True, method="L-BFGS-B",
                         options={"maxiter": 100000, "maxfun": 100000, "ftol": 1e-15, "gtol": 1e-12})
            msg = str(r.message)
        except _Budget:
            msg = "evaluation budget spent"
            break
        if tr.exhausted() or attempt == restarts:
            break
        start = tr.best_x + 0.1 * (np.abs(tr.best_x) + 0.1) * rng.standard_normal(len(x0))
    return OptimizeResult("lbfgs", x0, float(f0), tr.best_x, tr.best_f, tr.used, tr.history,
                        time.perf_counter() - t0, {"max_evals": max_evals, "rel_step": rel_step,
                                                   "restarts": restarts}, msg)


def nelder_mead(objective, x0, max_evals: int = 2000, f0: float | None = None) -> OptimizeResult:
    """scipy's Nelder–Mead (adaptive simplex), at most ``max_evals`` potential evaluations."""
    from scipy.optimize import minimize

    t0 = time.perf_counter()
    x0 = np.asarray(x0, dtype=float).copy()
    if f0 is None:
        f0 = objective(x0)
    counter = {"n": 0}
    best = {"x": x0.copy(), "f": float(f0)}
    history = [(0, float(f0))]

    def fun(p):
        if counter["n"] >= max_evals:
            raise _Budget()
        counter["n"] += 1
        f = float(objective(p))
        if np.isfinite(f) and f < best["f"]:
            best["x"], best["f"] = np.array(p, dtype=float), f
        history.append((counter["n"], best["f"]))
        return f if np.isfinite(f) else 1e300

    msg = ""
    try:
        r = minimize(fun, x0, method="Nelder-Mead",
                     options={"maxfev": max_evals, "maxiter": max_evals * 10, "xatol": 1e-10, "fatol": 1e-14,
                              "adaptive": len(x0) > 3})
        msg = str(r.message)
    except _Budget:
        msg = "evaluation budget spent"
    used = counter["n"]
    return OptimizeResult("nelder-mead", x0, float(f0), best["x"], best["f"], used, history,
                        time.perf_counter() - t0, {"max_evals": max_evals}, msg)


def polish(objective, x0, method: str = "random-descent", iterations: int = 100, samples: int = 20,
           keep: int = 5, scale: float = 0.1, seed: int | None = 0, max_evals: int | None = None,
           f0: float | None = None) -> OptimizeResult:
    """Dispatch. The scipy methods get the random descent's budget (iterations × samples) unless
    ``max_evals`` says otherwise."""
    budget = max_evals if max_evals is not None else iterations * samples
    if method == "random-descent":
        return random_descent(objective, x0, iterations, samples, keep, scale, seed, f0=f0)
    if method == "lbfgs":
        return lbfgs(objective, x0, max_evals=budget, f0=f0, seed=seed, restarts=3)
    if method == "nelder-mead":
        return nelder_mead(objective, x0, max_evals=budget, f0=f0)
    raise ValueError(f"unknown method {method!r} (choose from {', '.join(METHODS)})")


# ----------------------------------------------------------------------------- figure
def plot_convergence(results: list[OptimizeResult], path, s_min: float | None = None, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for r in results:
        h = np.array(r.history, dtype=float)
        if len(h):
            ax.step(np.maximum(h[:, 0], 0), h[:, 1], where="post", label=f"{r.method} ({r.fun:.4g})")
    if s_min is not None and np.isfinite(s_min):
        ax.axhline(s_min, color="k", ls="--", lw=1, label=f"least-action S_min ({s_min:.4g})")
    ax.set_xlabel("potential evaluations")
    ax.set_ylabel("train action (best so far)")
    ax.set_title(title or "parameter polish", parse_math=False)   # may name a candidate: plain text
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------- candidates
