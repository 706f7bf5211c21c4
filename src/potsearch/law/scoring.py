"""Score a candidate potential: fit its parameters by least action, report train / held-out action.

This module is imported inside the sandbox worker (``score_program``) as well as in-process
(the GP fast path, ``fit_parameters``). It needs numpy (and the sandbox's check of a candidate's
values, ``sandbox.results.potential_values``), writes no file and keeps no state other than a small
per-process cache of decoded payloads.

The fit: minimise S(p) = (1/n) sum_edges w K(V_f(p) - V_g(p)) over the parameter vector p with a
Levenberg-Marquardt-damped Gauss-Newton method. The gradient is exact in V (the action's analytic
gradient) chained with a forward-difference Jacobian dV/dp (k+1 vectorised calls of the candidate);
the Gauss-Newton matrix is J' L J where L is the action's Hessian in V (a weighted graph
Laplacian) — exact Newton when V is linear in p, where the problem is convex. Several starts
(the inherited parameters first, then seeded random ones); bounded by an iteration cap (which keeps
runs reproducible) and a wall-clock cap (a safety net that should not trigger).
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.random  # noqa: F401  imported here, before the sandbox worker's rlimits forbid opening files

from potsearch.law.interp import ProgramRefused
from potsearch.law.values import InvalidResult, potential_values

MAX_PARAMS = 64


# ----------------------------------------------------------------------------- data
@dataclass
class Edges:
    """Edges of one graph (local state indices shared with the feature table)."""

    src: np.ndarray
    dst: np.ndarray
    w: np.ndarray
    n_states: int  # the action's normaliser (states of that graph)

    def to_json(self) -> dict:
        return {"src": self.src.tolist(), "dst": self.dst.tolist(), "w": self.w.tolist(), "n_states": self.n_states}

    @classmethod
    def from_json(cls, d: dict) -> "Edges":
        return cls(np.asarray(d["src"], dtype=np.int64), np.asarray(d["dst"], dtype=np.int64),
                   np.asarray(d["w"], dtype=float), int(d["n_states"]))

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Unordered pairs (lo, hi, a, b): a = w(lo->hi), b = w(hi->lo) (0 when unseen), so the
        action is sum_pairs [a K(V_lo - V_hi) + b K(V_hi - V_lo)] / n — one kernel call per pair
        instead of one per edge (most edges of an agent's graph come in both directions)."""
        cached = getattr(self, "_pairs", None)
        if cached is not None:
            return cached
        lo, hi = np.minimum(self.src, self.dst), np.maximum(self.src, self.dst)
        fwd = self.src == lo
        n = int(max(self.src.max(initial=0), self.dst.max(initial=0))) + 1
        key, inv = np.unique(lo * n + hi, return_inverse=True)
        a = np.bincount(inv, weights=np.where(fwd, self.w, 0.0), minlength=len(key))
        b = np.bincount(inv, weights=np.where(fwd, 0.0, self.w), minlength=len(key))
        out = ((key // n).astype(np.int64), (key % n).astype(np.int64), a, b)
        object.__setattr__(self, "_pairs", out)
        return out


@dataclass(frozen=True)
class FitSettings:
    """The parameter fit of a candidate: the ``fit:`` section of a search config (defaults here only).

    The metadata are the limits ``potsearch.core.configload`` checks when a config file is read."""

    starts: int = field(default=1, metadata={"gt": 0})           # p0 (inherited values), then seeded random ones
    max_iter: int = field(default=40, metadata={"gt": 0})         # Gauss-Newton iterations per start (repeatable)
    max_seconds: float = field(default=2.0, metadata={"gt": 0})   # wall-clock safety net for one candidate
    tol: float = field(default=1e-7, metadata={"ge": 0})          # stop when the relative improvement is below this


@dataclass
class ScoringData:
    """Everything a score needs: the feature table and the two edge sets."""

    features: dict[str, np.ndarray]
    n_states: int
    train: Edges
    heldout: Edges
    kernel: str = "softplus"
    beta: float = 1.0
    s_min_train: float = 0.0
    s_min_heldout: float = 0.0
    fit: FitSettings = field(default_factory=FitSettings)
    # the training action in nats of the softplus likelihood (n_states x moves / sum of their weights) and
    # the number of training moves: the "bic" selection rule's scale (0: unknown, the rule falls back)
    nats_per_action: float = 0.0
    n_train_moves: float = 0.0
    # the same scale for the held-out moves (0: none): the "bic" rule adds their log-loss at the training fit
    heldout_nats_per_action: float = 0.0

    def payload(self) -> dict:
        """A JSON-able dict for the sandbox worker (``score_program``)."""
        body = {
            "features": {k: v.tolist() for k, v in self.features.items()}, "n_states": self.n_states,
            "train": self.train.to_json(), "heldout": self.heldout.to_json(), "kernel": self.kernel,
            "beta": self.beta, "s_min_train": self.s_min_train, "s_min_heldout": self.s_min_heldout,
            "fit": asdict(self.fit),
        }
        key = hashlib.sha256(repr(sorted((k, str(v)[:64]) for k, v in body.items())).encode()).hexdigest()
        body["key"] = key + f":{self.train.w.sum():.17g}:{self.n_states}"
        return body

    @classmethod
    def from_payload(cls, d: dict) -> "ScoringData":
        # read-only: the worker keeps this for later candidates, which a candidate must not reach
        return cls(
            features={k: _frozen(np.array(v, dtype=float)) for k, v in d["features"].items()},
            n_states=int(d["n_states"]), train=Edges.from_json(d["train"]), heldout=Edges.from_json(d["heldout"]),
            kernel=d.get("kernel", "softplus"), beta=float(d.get("beta", 1.0)),
            s_min_train=float(d["s_min_train"]), s_min_heldout=float(d["s_min_heldout"]),
            fit=FitSettings(**d.get("fit", {})),
        )


def likelihood_scale(n_states: int, counts, weights) -> dict:
    """``nats_per_action`` and ``n_train_moves`` of ScoringData from the training moves' counts and
    their edge weights: with softplus, sum(counts x K) nats is the logistic likelihood of the moves and
    the action is (1/n_states) sum(w x K), so one unit of action is n_states x sum(counts) / sum(w)
    nats (exact for count weights, a count-weighted mean for per-visit ones)."""
    c, w = float(np.sum(counts)), float(np.sum(weights))
    if c <= 0 or w <= 0:
        return {"nats_per_action": 0.0, "n_train_moves": 0.0}
    return {"nats_per_action": n_states * c / w, "n_train_moves": c}


# ----------------------------------------------------------------------------- kernel pieces
def pair_terms(x: np.ndarray, a: np.ndarray, b: np.ndarray, kernel: str, beta: float, order: int):
    """f(x) = a K(x) + b K(-x) and its first two derivatives, for the action's kernels
    (see potsearch.science.action). Softplus uses K(-x) = K(x) + x and one exp per pair:
    K(x) = log1p(exp(-|x|)) + max(-x, 0), sigma(-x) from the same exp."""
    if kernel == "softplus":
        ab = a + b
        t = np.exp(-np.abs(x))
        val = ab * (np.log1p(t) + np.maximum(-x, 0.0)) + b * x
        if order == 0:
            return val, None, None
        r = 1.0 / (1.0 + t)
        e = np.where(x >= 0, t * r, r)  # expit(-x), stable
        return val, b - ab * e, (ab * e * (1.0 - e) if order > 1 else None)
    h = 0.5 * beta
    u = np.exp(np.clip(-h * x, -700, 700))
    v = 1.0 / u
    val = a * u + b * v
    if order == 0:
        return val, None, None
    return val, -h * (a * u - b * v), (h * h * val if order > 1 else None)


def action_value(V: np.ndarray, e: Edges, kernel: str = "softplus", beta: float = 1.0) -> float:
    """The action of potential vector V on edge set ``e`` (same value as potsearch.science.action.action)."""
    if len(e.src) == 0:
        return 0.0
    lo, hi, a, b = e.pairs()
    with np.errstate(over="ignore", invalid="ignore"):
        val, _, _ = pair_terms(V[lo] - V[hi], a, b, kernel, beta, 0)
    return float(val.sum() / e.n_states)


# ----------------------------------------------------------------------------- evaluation
def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _read_only_view(a) -> np.ndarray:
    v = np.asarray(a, dtype=float).view()
    v.flags.writeable = False
    return v


def _values(fn, X: dict, p: np.ndarray, n: int) -> np.ndarray:
    """The candidate's values on every state (call inside np.errstate(all="ignore")), checked by the
    sandbox's ``potential_values`` (numbers, shape ``(n,)``; NaN/inf pass: the fit refuses a step into
    them, the callers refuse a non-finite result). The candidate gets a fresh dict of read-only views
    of the features and a read-only view of ``p``: whatever it does, it cannot change the data the fit
    or a later candidate sees."""
    return potential_values(fn({k: _read_only_view(v) for k, v in X.items()}, _read_only_view(p)), n,
                            finite=False)


def fit_parameters(fn, n_params: int, data: ScoringData, p0=None, seed: int = 0,
                   settings: FitSettings | None = None) -> tuple[np.ndarray, float, dict]:
    """Minimise the training action over p. Returns (params, train_action, info)."""
    with np.errstate(all="ignore"):
        return _fit(fn, n_params, data, p0, seed, settings)


def _fit(fn, n_params, data, p0, seed, settings):
    st = settings or data.fit
    X, n, tr = data.features, data.n_states, data.train
    k, b = data.kernel, data.beta
    t0 = time.perf_counter()
    if n_params == 0:
        V = _values(fn, X, np.zeros(0), n)
        if not np.all(np.isfinite(V)):
            raise InvalidResult("potential is not finite on every state")
        return np.zeros(0), action_value(V, tr, k, b), {"iterations": 0, "starts": 0, "evals": 1}
    rng = np.random.default_rng(seed)
    starts = []
    if p0 is not None and len(p0) == n_params and np.all(np.isfinite(p0)):
        starts.append(np.asarray(p0, dtype=float))
    else:
        starts.append(np.ones(n_params))
    while len(starts) < max(1, st.starts):
        starts.append(rng.normal(0.0, 1.0, n_params))
    best_p, best_S = None, math.inf
    iters = evals = 0
    src, dst, pa, pb = tr.pairs()
    ns = tr.n_states
    last_error = None
    for p in starts:
        try:
            V = _values(fn, X, p, n)
            evals += 1
        except InvalidResult as exc:
            last_error = exc
            continue
        if not np.all(np.isfinite(V)):
            last_error = InvalidResult("potential is not finite on every state at the start parameters")
            continue
        val, d1, d2 = pair_terms(V[src] - V[dst], pa, pb, k, b, 2)
        S = float(val.sum() / ns)
        lam = 1e-3
        for _ in range(st.max_iter):
            iters += 1
            # forward-difference Jacobian of V in p
            J = np.empty((n, n_params))
            for j in range(n_params):
                h = 1e-6 * (1.0 + abs(p[j]))
                q = p.copy()
                q[j] += h
                J[:, j] = (_values(fn, X, q, n) - V) / h
                evals += 1
            if not np.all(np.isfinite(J)):
                J = np.nan_to_num(J, nan=0.0, posinf=0.0, neginf=0.0)
            D = J[src] - J[dst]
            g = D.T @ d1 / ns
            H = (D * (d2 / ns)[:, None]).T @ D
            diag = np.diag(H).copy() + 1e-12
            improved = False
            for _try in range(8):
                try:
                    step = np.linalg.solve(H + lam * np.diag(diag), -g)
                except (np.linalg.LinAlgError, ValueError):
                    lam *= 10.0
                    continue
                pn = p + step
                Vn = _values(fn, X, pn, n)
                evals += 1
                if np.isfinite(Vn).all():
                    # derivatives computed with the value: most trial steps are accepted
                    vn, d1n, d2n = pair_terms(Vn[src] - Vn[dst], pa, pb, k, b, 2)
                    Sn = float(vn.sum() / ns)
                    if Sn < S:
                        improved = True
                        break
                lam *= 4.0
            if not improved:
                break
            rel = (S - Sn) / max(abs(S), 1e-300)
            p, V, S, d1, d2 = pn, Vn, Sn, d1n, d2n
            lam = max(lam / 3.0, 1e-9)
            if rel < st.tol or time.perf_counter() - t0 > st.max_seconds:
                break
        if S < best_S:
            best_p, best_S = p.copy(), S
        if time.perf_counter() - t0 > st.max_seconds:
            break
    if best_p is None:
        raise last_error or InvalidResult("no start gave a finite potential")
    return best_p, best_S, {"iterations": iters, "starts": len(starts), "evals": evals}


def _check_per_state(fn, data: ScoringData, p: np.ndarray, V: np.ndarray) -> None:
    """A law gives each state its potential from that state's features alone: evaluated on every other
    state in reverse order, and on the first state alone (as best_potential.py evaluates one state),
    it must give the same values. A reduction over the states (``x / np.max(x)``, a rank, a mean)
    fails, and so does a program that reads the table's size or order."""
    n = data.n_states
    if n < 2:
        return
    scale = 1e-12 * max(1.0, float(np.max(np.abs(V))))
    for idx in (np.arange(n)[::-2], np.arange(1)):
        with np.errstate(all="ignore"):
            Vs = _values(fn, {k: v[idx] for k, v in data.features.items()}, p, len(idx))
        if not np.allclose(Vs, V[idx], rtol=1e-9, atol=scale):
            raise InvalidResult("a state's potential depends on the other states evaluated with it (a reduction "
                                "over states such as np.max(x[...]) or np.mean, or the table's size or order): "
                                "not a law of the state")


def complexity_of(source) -> int:
    """Complexity of the whole program = AST nodes of every statement it defines, not counting the
    Load/Store context markers: the bodies of ``potential`` *and* of every helper function (each
    counted once, however often it is called), plus module-level assignments other than
    ``N_PARAMS``; imports, docstrings and ``N_PARAMS`` cost nothing. ``return p[0] * x["a"]`` is
    Return, BinOp, Mult, 2 Subscripts, 2 Names, 2 Constants = 9. Moving a formula into a helper
    ``h`` therefore costs the call in ``potential`` (``return h(x, p)``: Return, Call and 3 Names
    = 5) on top of the formula (0 if unparsable)."""
    if isinstance(source, ast.AST):
        tree = source
    else:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return 0
    if not isinstance(tree, ast.Module):
        return sum(1 for n in ast.walk(tree) if not isinstance(n, ast.expr_context))
    total = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            stmts = list(node.body)
            if stmts and isinstance(stmts[0], ast.Expr) and isinstance(stmts[0].value, ast.Constant) \
                    and isinstance(stmts[0].value.value, str):
                stmts = stmts[1:]  # docstring
            total += sum(1 for stmt in stmts for n in ast.walk(stmt) if not isinstance(n, ast.expr_context))
        elif isinstance(node, (ast.Import, ast.ImportFrom, ast.Pass)):
            continue
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id == "N_PARAMS":
            continue
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue
        else:
            total += sum(1 for n in ast.walk(node) if not isinstance(n, ast.expr_context))
    return total


def score_function(fn, n_params: int, data: ScoringData, source: str = "", p0=None, seed: int = 0,
                   complexity: int | None = None) -> dict:
    """Fit and score a compiled candidate. Never raises for a candidate's fault: returns ``error``."""
    t0 = time.perf_counter()
    if complexity is None:
        complexity = complexity_of(source) if source else 0
    out = {"params": None, "train_action": None, "heldout_action": None, "gap": None, "heldout_gap": None,
           "n_params": int(n_params), "complexity": int(complexity), "error": None}
    try:
        if not isinstance(n_params, int) or not 0 <= n_params <= MAX_PARAMS:
            raise InvalidResult(f"N_PARAMS must be an int in 0..{MAX_PARAMS}, got {n_params!r}")
        p, S, info = fit_parameters(fn, n_params, data, p0=p0, seed=seed)
        # the stored numbers come from a fresh evaluation at the stored parameters: a candidate whose
        # values depend on anything but (x, p) (state kept between calls) is caught here
        with np.errstate(all="ignore"):
            V = _values(fn, data.features, p, data.n_states)
            S_fresh = action_value(V, data.train, data.kernel, data.beta)
            Sh = action_value(V, data.heldout, data.kernel, data.beta)
        if not (math.isfinite(S) and math.isfinite(Sh) and math.isfinite(S_fresh)):
            raise InvalidResult("action is not finite")
        if abs(S_fresh - S) > 1e-9 * max(1.0, abs(S)):
            raise InvalidResult(f"the training action does not reproduce at the fitted parameters (fit {S:.10g}, "
                                f"fresh evaluation {S_fresh:.10g}): the values depend on more than (x, p)")
        S = S_fresh
        _check_per_state(fn, data, p, V)
        out.update(params=[float(v) for v in p], train_action=S, heldout_action=Sh, gap=S - data.s_min_train,
                   heldout_gap=Sh - data.s_min_heldout, iterations=info["iterations"], evals=info["evals"])
    except InvalidResult as exc:
        out["error"] = str(exc)
    except ProgramRefused as exc:
        out["error"] = f"refused by the evaluator: {exc}"[:500]
    except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, AttributeError, NameError,
            RuntimeError, np.linalg.LinAlgError) as exc:
        out["error"] = f"{type(exc).__name__}: {exc}"[:500]
    out["eval_seconds"] = time.perf_counter() - t0
    return out


# ----------------------------------------------------------------------------- sandbox entry point
_PAYLOAD_CACHE: dict[str, ScoringData] = {}


def score_program(namespace: dict, payload: dict) -> dict:
    """Sandbox task: ``namespace`` holds the candidate's ``potential`` and ``N_PARAMS``; ``payload`` is
    ``ScoringData.payload()`` plus optional ``source``, ``p0`` and ``seed``. Returns a JSON-able dict."""
    key = payload.get("key")
    data = _PAYLOAD_CACHE.get(key) if key else None
    if data is None:
        data = ScoringData.from_payload(payload)
        if key:
            _PAYLOAD_CACHE.clear()
            _PAYLOAD_CACHE[key] = data
    fn = namespace.get("potential")
    if not callable(fn):
        return {"error": "the program defines no function potential(x, p)", "params": None}
    n_params = namespace.get("N_PARAMS", 0)
    if isinstance(n_params, bool) or not isinstance(n_params, int):
        return {"error": f"N_PARAMS must be an int, got {type(n_params).__name__}", "params": None}
    return score_function(fn, n_params, data, source=payload.get("source", ""), p0=payload.get("p0"),
                          seed=int(payload.get("seed", 0)))


# ----------------------------------------------------------------------------- our own source, in process
_PROCESS_DATA: dict = {}


def use_data(data: ScoringData) -> None:
    """The scoring data ``score_source`` uses when it is given none (a GP worker process's table)."""
    _PROCESS_DATA["data"] = data


def _compile(src: str, with_tree: bool = False):
    """Our own generated source (GP trees, term laws, simplified forms) compiled in this process; a
    model-written program never comes here (it is evaluated in the sandbox)."""
    tree = ast.parse(src)
    ns: dict = {"np": np, "math": math}
    exec(compile(tree, "<candidate>", "exec"), ns)  # our own GP source (LLM code goes to the sandbox)
    if with_tree:
        return ns["potential"], ns.get("N_PARAMS", 0), tree
    return ns["potential"], ns.get("N_PARAMS", 0)


def score_source(src: str, p0, seed: int, at_params: bool = False, data: ScoringData | None = None) -> dict:
    """Score one of our own candidates (GP, terms, simplified forms) in this process (parsed once: the same
    AST gives code and complexity).
    ``at_params``: no fit, the scores of the program at the parameters ``p0`` (``at_params_data``)."""
    data = data or _PROCESS_DATA["data"]
    if at_params:
        data = at_params_data(data)
    try:
        fn, n, tree = _compile(src, with_tree=True)
    except Exception as exc:  # our generator produced bad code: record, never crash the search
        return {"error": f"compile: {type(exc).__name__}: {exc}", "params": None, "eval_seconds": 0.0}
    return score_function(fn, n, data, source=src, p0=p0, seed=seed, complexity=complexity_of(tree))


_AT_PARAMS: list = [None, None]


def at_params_data(data: ScoringData) -> ScoringData:
    """``data`` with a fit of no iteration and one start: scoring from p0 then gives the scores of the
    program AT p0 (params = p0 exactly, its train / held-out action). That is how a stored score is
    checked: one evaluation, no optimiser path (so no wall-clock cap) between the stored numbers and
    the recomputed ones."""
    if _AT_PARAMS[0] is not data:
        fixed = dataclasses.replace(data.fit, starts=1, max_iter=0)
        _AT_PARAMS[:] = [data, dataclasses.replace(data, fit=fixed)]
    return _AT_PARAMS[1]
