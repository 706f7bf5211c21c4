"""Polishing a candidate potential's parameters: random descent (the paper's) and scipy alternatives.

The objective is the action S(p) = S(V(x; p)) of the potential ``V = potential(x, p)`` on a graph
(potsearch.action). Every method here is a pure function of an ``ActionObjective`` and a start
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

from .action import Objective, Softplus
from .errors import InputError
from .evolve.outputs import read_summary
from .store.candidates import CandidateRow

METHODS = ("random-descent", "lbfgs", "nelder-mead")


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
        """From ``potsearch.evolve.scoring.Edges`` (src, dst, w, n_states) over a shared feature table."""
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
        """S and dS/dp: the analytic dS/dV (potsearch.action) times dV/dp by central differences
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
class PolishResult:
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
                   callback=None) -> PolishResult:
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
    return PolishResult("random-descent", x0, f0, best_x, float(best_f), spent, history,
                        time.perf_counter() - t0,
                        {"iterations": iterations, "samples": samples, "keep": keep, "scale": scale, "seed": seed},
                        f"{iterations} iterations × {samples} samples")


# ----------------------------------------------------------------------------- scipy
def lbfgs(objective: ActionObjective, x0, max_evals: int = 2000, f0: float | None = None,
          rel_step: float = 1e-6, restarts: int = 0, seed: int | None = 0) -> PolishResult:
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
    return PolishResult("lbfgs", x0, float(f0), tr.best_x, tr.best_f, tr.used, tr.history,
                        time.perf_counter() - t0, {"max_evals": max_evals, "rel_step": rel_step,
                                                   "restarts": restarts}, msg)


def nelder_mead(objective, x0, max_evals: int = 2000, f0: float | None = None) -> PolishResult:
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
    return PolishResult("nelder-mead", x0, float(f0), best["x"], best["f"], used, history,
                        time.perf_counter() - t0, {"max_evals": max_evals}, msg)


def polish(objective, x0, method: str = "random-descent", iterations: int = 100, samples: int = 20,
           keep: int = 5, scale: float = 0.1, seed: int | None = 0, max_evals: int | None = None,
           f0: float | None = None) -> PolishResult:
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
def plot_convergence(results: list[PolishResult], path, s_min: float | None = None, title: str = "") -> None:
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
class CandidateLimitError(InputError):
    """The candidate hit a sandbox limit (wall-clock timeout, CPU, memory) or was killed: polish /
    attribute stop with this one line (exit status 2)."""


class CandidateFailed(RuntimeError):
    """The candidate raised or returned unusable values at these parameters (it is invalid there)."""


_POOLS: dict = {}
_DEFAULT_LIMITS: dict = {}


def read_sandbox_limits(run_dir=None) -> tuple[dict, list[str]]:
    """(limits, notes): the sandbox limits evolve used for this run (its summary's ``config.sandbox``),
    else evolve's defaults, so polish, attribute and show run the same code under the same limits.

    The run folder is data, not a trusted config: a limit above evolve's own maximum
    (``evolve.config.SANDBOX_MAX``, which evolve's config loader enforces too) is clamped to it, and a
    value that is not a positive number, or missing, is evolve's default. ``notes`` says so (at most
    one line for the clamped values and one for the defaults); a run without evolve/summary.json (or
    without its ``config.sandbox``) simply uses the defaults."""
    from .evolve.config import SANDBOX_MAX, SandboxConfig

    d = SandboxConfig()
    lim = {"cpu_seconds": d.cpu_seconds, "memory_mb": d.memory_mb, "wall_timeout": d.wall_timeout}
    notes: list[str] = []
    if run_dir is None:
        return lim, notes
    cfg = read_summary(run_dir).get("config")
    sb = cfg.get("sandbox") if isinstance(cfg, dict) else None
    if sb is None:
        return lim, notes
    if not isinstance(sb, dict):
        notes.append("evolve/summary.json: config.sandbox is not a mapping; evolve's default sandbox limits are used "
                     f"({_limits_text(lim)})")
        return lim, notes
    clamped, defaulted = [], []
    for k in lim:
        v = sb.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:   # NaN is not > 0
            defaulted.append(f"{k} {_shown(v)}")
            continue
        top = SANDBOX_MAX[k]
        if v > top:                                                               # infinity included
            clamped.append(f"{k} {_shown(v)} -> {top:g}")
            v = top
        lim[k] = max(1, int(v)) if isinstance(lim[k], int) else float(v)
    if clamped:
        notes.append("evolve/summary.json asks for sandbox limits above evolve's maximums; clamped: "
                     + ", ".join(clamped))
    if defaulted:
        notes.append("evolve/summary.json has no usable sandbox limit for " + ", ".join(defaulted)
                     + f"; evolve's defaults are used ({_limits_text(lim)})")
    return lim, notes


def _shown(v) -> str:
    if v is None:
        return "(missing)"
    text = f"{v:g}" if isinstance(v, float) else repr(v)
    return text if len(text) <= 30 else text[:27] + "..."


def _limits_text(lim: dict) -> str:
    return f"{lim['wall_timeout']:g}s wall, {lim['cpu_seconds']:g}s CPU, {lim['memory_mb']} MB"


def sandbox_limits(run_dir=None) -> dict:
    """The limits of ``read_sandbox_limits`` without its notes."""
    return read_sandbox_limits(run_dir)[0]


def run_sandbox_limits(run_dir) -> dict:
    """The run's sandbox limits (``read_sandbox_limits``), its notes said on stderr (``warning: ...``)."""
    import sys

    lim, notes = read_sandbox_limits(run_dir)
    for n in notes:
        print(f"warning: {n}", file=sys.stderr, flush=True)
    return lim


def use_sandbox_limits(limits: dict) -> None:
    """Limits for the candidates compiled from now on in this process (``load_context`` sets the run's)."""
    _DEFAULT_LIMITS.clear()
    _DEFAULT_LIMITS.update(limits)


def _pool(limits: dict):
    import atexit

    from .evolve.sandbox import SandboxPool

    key = tuple(sorted(limits.items()))
    pool = _POOLS.get(key)
    if pool is None:
        pool = SandboxPool(workers=1, tasks=("potsearch.evolve.sandbox:_call_potential",), **limits)
        _POOLS[key] = pool
        atexit.register(pool.close)
    return pool


class SandboxedFunction:
    """``potential(x, p)`` (or ``potential_terms``) of a candidate, evaluated in the sandbox pool —
    a separate, rlimited, seccomp-filtered worker process killed at the wall-clock limit — never in
    this process. ``calls`` counts evaluations."""

    _TASKS = {"potential": "potsearch.evolve.sandbox:_call_potential",
              "potential_terms": "potsearch.evolve.sandbox:_call_terms"}

    def __init__(self, source: str, name: str = "potential", checked: bool = True, limits: dict | None = None):
        self.source, self.name, self.checked = source, name, checked
        self.limits = dict(limits or _DEFAULT_LIMITS or sandbox_limits())
        self.calls = 0

    def __call__(self, x, p):
        self.calls += 1
        res = _pool(self.limits).run(self.source, task=self._TASKS[self.name],
                                     payload={"x": x, "p": np.asarray(p, dtype=float)},
                                     _bypass_ast_check=not self.checked)
        if res.ok:
            if self.name == "potential":
                return np.asarray(res.value["values"], dtype=float)
            return [np.asarray(t, dtype=float) for t in res.value["terms"]]
        if res.category in ("timeout", "killed"):
            lim = self.limits
            raise CandidateLimitError(
                f"the candidate was stopped by the sandbox at evaluation {self.calls} ({res.error}; limits: "
                f"{lim['wall_timeout']:g}s wall, {lim['cpu_seconds']:g}s CPU, {lim['memory_mb']} MB, as in evolve)")
        if res.category == "rejected":
            raise InputError(f"the candidate is rejected by the sandbox allowlist: {res.error[:300]}")
        raise CandidateFailed(res.error)


def compile_source(source: str, checked: bool = True, limits: dict | None = None) -> dict:
    """The candidate's functions, each evaluated in the sandbox pool (see :class:`SandboxedFunction`).

    Nothing of the source runs in this process: it is parsed (to learn its function names and
    ``N_PARAMS``) and checked against the allowlist; every evaluation runs in a sandbox worker with
    the same limits as evolve (the run's, once ``load_context`` has read them). ``checked=False`` is
    for code we derived ourselves from checked code (additive terms): the worker-side layers still
    hold. Returns ``{"potential": fn, "N_PARAMS": n, ...}``."""
    import ast

    from .evolve import sandbox

    if checked:
        reasons = sandbox.check_source(source)
        if reasons:
            raise InputError("the candidate is rejected by the sandbox allowlist: " + "; ".join(reasons[:3]))
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise InputError(f"the candidate cannot be parsed ({type(exc).__name__})") from None
    ns: dict = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in SandboxedFunction._TASKS:
            ns[node.name] = SandboxedFunction(source, node.name, checked, limits)
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id == "N_PARAMS" and isinstance(node.value, ast.Constant):
            ns["N_PARAMS"] = node.value.value
    return ns


# ----------------------------------------------------------------------------- run plumbing
def read_candidates(store, valid_only: bool = True) -> list[CandidateRow]:
    return store.candidates.rows(valid_only=valid_only)


def get_candidate(store, ref) -> CandidateRow | None:
    """By id (int or digit string) or uid."""
    return store.candidates.get(ref)


def best_candidate(store, run_dir, ref=None) -> CandidateRow:
    """``ref`` if given; else the store's ``best_candidate`` meta (set by polish, or by evolve);
    else the valid candidate with the lowest training action. StageMissing when there is none."""
    from .errors import InputError, StageMissing

    if ref is not None:
        row = get_candidate(store, ref)
        if row is None:
            raise InputError(f"no candidate {ref!r} in this run's store", str(run_dir))
        if row.train_action is None or not row.params and (row.n_params or 0) > 0:
            raise InputError(f"candidate {ref} has no fitted parameters (it failed to score)", str(run_dir))
        return row
    rows = read_candidates(store)
    if not rows:
        raise StageMissing(f"this run has no evolved potential yet: run `potsearch evolve {run_dir}` first",
                           str(run_dir))
    # the designated bests: the one polish wrote last, and evolve's (evolve/summary.json); the better
    # of the two wins (a later evolve run may beat an earlier polish)
    picks = []
    for ref_ in (store.get_meta("best_candidate"), read_summary(run_dir).get("best", {}).get("uid")):
        row = get_candidate(store, ref_) if ref_ is not None else None
        if row is not None and row.train_action is not None:
            picks.append(row)
    if picks:
        return min(picks, key=lambda r: (r.train_action, r.id))
    return min(rows, key=lambda r: (r.train_action, r.complexity or 0, r.id))


def _split_value(k: str, v) -> bool:
    """A usable seed (an integer in [0, 2**63)) or held-out fraction (a number in [0, 1)); anything
    else in a run's files is not (the run folder is data)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if k == "seed":
        return isinstance(v, int) and 0 <= v < 2**63
    return 0.0 <= v < 1.0          # NaN fails


def evolve_split(store, run_dir) -> dict:
    """The seed / held-out fraction evolve split the samples with (defaults of load_problem)."""
    found: dict = {}
    sources = [read_summary(run_dir), store.stage_results().get("evolve") or {}]
    for d in sources:
        if not isinstance(d, dict):
            continue
        sub = lambda x, k: x.get(k) if isinstance(x, dict) and isinstance(x.get(k), dict) else {}  # noqa: E731
        for cand in (d, sub(d, "split"), sub(sub(d, "problem"), "split"), sub(d, "config")):
            if isinstance(cand, dict):
                for k in ("seed", "heldout_fraction"):
                    if k in cand and k not in found and _split_value(k, cand[k]):
                        found[k] = cand[k]
    return found


@dataclass
class RunContext:
    run_dir: object
    store: object
    problem: object
    row: CandidateRow
    namespace: dict
    fn: object
    params: np.ndarray
    train: ActionObjective
    heldout: ActionObjective


def require_fit(run_dir) -> None:
    from .fitstage import load_fit

    load_fit(run_dir)  # StageMissing: "run potsearch fit first"


def open_run(run) -> tuple:
    """(run_dir, store) for a run directory; InputError in one line otherwise."""
    from pathlib import Path

    from .store import RunStore

    run_dir = Path(run)
    store = RunStore.open(run_dir)
    return store.run_dir, store


def load_context(run, candidate=None) -> RunContext:
    """Everything polish / attribute need: the run's problem (evolve's train / held-out split),
    the candidate, its compiled function and the two objectives."""
    from .action import make_kernel
    from .evolve.problem import load_problem

    run_dir, store = open_run(run)
    require_fit(run_dir)
    row = best_candidate(store, run_dir, candidate)
    split = evolve_split(store, run_dir)
    problem = load_problem(run_dir, seed=int(split.get("seed", 0)),
                           heldout_fraction=float(split.get("heldout_fraction", 0.2)))
    use_sandbox_limits(run_sandbox_limits(run_dir))
    ns = compile_source(row.source)
    fn = ns.get("potential")
    if not callable(fn):
        from .errors import InputError

        raise InputError(f"candidate {row.id} defines no potential(x, p)", str(run_dir))
    params = np.asarray(row.params or [], dtype=float)
    kernel = make_kernel(problem.kernel, problem.beta)
    x = problem.features
    train = ActionObjective.from_edges(fn, x, problem.data.train, kernel, n_rows=problem.n_states)
    held = ActionObjective.from_edges(fn, x, problem.data.heldout, kernel, n_rows=problem.n_states)
    return RunContext(run_dir, store, problem, row, ns, fn, params, train, held)


def write_candidate(store, parent: CandidateRow, params, operator: str, train_action: float,
                    heldout_action: float | None, gap: float | None, meta: dict | None = None) -> int:
    """A new candidates row: same source, new parameters, parents = [parent id]. Returns its id."""
    import hashlib
    import json

    payload = json.dumps([float(v) for v in params])
    uid = f"{operator}:{parent.uid}:{hashlib.sha256(payload.encode()).hexdigest()[:16]}"
    return store.candidates.add(
        uid, parent.source, canonical=parent.canonical, params=payload, parents=[parent.id], operator=operator,
        model=None, island=parent.island, round=parent.round, train_action=float(train_action),
        heldout_action=None if heldout_action is None else float(heldout_action),
        gap=None if gap is None else float(gap), complexity=parent.complexity,
        n_params=parent.n_params if parent.n_params is not None else len(params), eval_seconds=None, error=None,
        tokens=0, cost=0.0, created=time.time(), meta=json.dumps(meta or {}, default=float))


# ----------------------------------------------------------------------------- best_potential.py
def write_best_potential(run_dir, agent: str, row: CandidateRow, s_min_train: float, store=None):
    """Rewrite run_dir/best_potential.py for ``row`` with evolve's writer (self-contained module,
    written to a temporary file and renamed: atomic)."""
    from pathlib import Path

    from .evolve.outputs import write_best_potential as _write

    run_dir = Path(run_dir)
    sid = read_summary(run_dir).get("search_id") or "polish"
    path = run_dir / "best_potential.py"
    _write(path, row, agent, run_dir.name, s_min_train, sid)
    return path
