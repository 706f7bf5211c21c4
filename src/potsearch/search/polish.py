"""A run's candidates for the stages that work on one (polish, attribute, show): the sandbox limits read
from the run (clamped), a candidate's program evaluated in a sandbox worker (``SandboxedFunction``,
``compile_source``), the context a stage needs (the candidate by ``rundir.best_candidate``, the problem
evolve searched), and the polished candidate written back. The optimisers themselves are ``potsearch.law.optimize``."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from potsearch.core.errors import InputError
from potsearch.law.optimize import ActionObjective, CandidateLimitError
from potsearch.store.candidates import CandidateRow
from potsearch.store.rundir import RunDir, best_candidate, evolve_summary


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
    from potsearch.search.config import SANDBOX_MAX, SandboxConfig

    d = SandboxConfig()
    lim = {"cpu_seconds": d.cpu_seconds, "memory_mb": d.memory_mb, "wall_timeout": d.wall_timeout}
    notes: list[str] = []
    if run_dir is None:
        return lim, notes
    cfg = evolve_summary(run_dir).get("config")
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

    from potsearch.sandbox import SandboxPool

    key = tuple(sorted(limits.items()))
    pool = _POOLS.get(key)
    if pool is None:
        pool = SandboxPool(workers=1, tasks=("potsearch.sandbox:call_potential",), **limits)
        _POOLS[key] = pool
        atexit.register(pool.close)
    return pool


class SandboxedFunction:
    """``potential(x, p)`` (or ``potential_terms``) of a candidate, evaluated in the sandbox pool —
    a separate, rlimited, seccomp-filtered worker process killed at the wall-clock limit — never in
    this process. ``calls`` counts evaluations."""

    _TASKS = {"potential": "potsearch.sandbox:call_potential",
              "potential_terms": "potsearch.sandbox:call_terms"}

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

    from potsearch import sandbox

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
def get_candidate(store, ref) -> CandidateRow | None:
    """By id (int or digit string) or uid."""
    return store.candidates.get(ref)


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
    from potsearch.store.rundir import load_fit

    load_fit(run_dir)  # StageMissing: "run potsearch fit first"


def open_run(run) -> tuple:
    """(run_dir, store) for a run directory; InputError in one line otherwise."""
    from pathlib import Path

    from potsearch.store import RunStore

    run_dir = Path(run)
    store = RunStore.open(run_dir)
    return store.run_dir, store


def load_context(run, candidate=None) -> RunContext:
    """Everything polish / attribute need: the run's problem (the one evolve searched:
    ``problem.problem_for_run``: its split and its feature library), the candidate (``rundir.best_candidate``),
    its compiled function and the two objectives."""
    from potsearch.science.action import make_kernel
    from potsearch.search.problem import problem_for_run

    run_dir, store = open_run(run)
    require_fit(run_dir)
    row = best_candidate(store, run_dir, candidate)
    problem = problem_for_run(run_dir, store)
    use_sandbox_limits(run_sandbox_limits(run_dir))
    ns = compile_source(row.source)
    fn = ns.get("potential")
    if not callable(fn):
        from potsearch.core.errors import InputError

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
def write_best_potential(run_dir, library, row: CandidateRow, s_min_train: float, store=None):
    """Rewrite run_dir/best_potential.py for ``row`` with evolve's writer (self-contained module,
    written to a temporary file and renamed: atomic); ``library``: the run's feature library."""
    from pathlib import Path

    from potsearch.search.outputs import write_best_potential as _write

    run_dir = Path(run_dir)
    sid = evolve_summary(run_dir).get("search_id") or "polish"
    path = RunDir(run_dir).best_potential
    _write(path, row, library.kind, run_dir.name, s_min_train, sid, library=library)
    return path
