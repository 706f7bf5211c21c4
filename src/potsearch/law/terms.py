"""Term-structured laws: V = sum_i c_i * term_i(x; theta_i), linear coefficients solved exactly.

A law is a list of terms drawn from a small library built on the feature names: ``f``, ``log1p(f)``
and ``sqrt(f)`` (non-negative features), ``f*g``, ``f/(g + t)`` and ``exp(t*f)`` (t an inner,
nonlinear parameter). Fitting is variable projection (separable least action): for given inner
parameters theta, the action is convex in V and V is linear in c, so c is solved exactly by Newton's
method on the action (gradient D'K', Hessian D'diag(K'')D over the training edge pairs, D the term
differences); only theta is searched iteratively (Brent's method for one inner parameter, Nelder-Mead for more, on the
projected action S*(theta) = min_c S(T(theta) c)). Laws without inner parameters cost one Newton
solve: no finite-difference Jacobian, no parameter starts.

Mutations (each returns a new law, ``random.Random`` seeded by the caller): add a term, drop a term,
replace one term, or transform one (another term of the same feature: x -> log1p(x), sqrt(x) ...);
and two guided by the data (``Screen``: Rao's score test of every library term at once): add the
term that would lower the action most, or swap one term for it. ``to_source`` writes the law as ``potential(x, p)`` source (inner parameters
first, then the coefficients), the form the rest of the pipeline scores and simplifies.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, minimize_scalar

from potsearch.law.scoring import ScoringData, pair_terms


@dataclass(frozen=True)
class Term:
    kind: str          # "lin" | "log" | "sqrt" | "prod" | "ratio" | "exp"
    a: str
    b: str = ""
    theta0: float = 1.0

    @property
    def n_inner(self) -> int:
        return 1 if self.kind in ("ratio", "exp") else 0

    def value(self, x: dict, theta: float | None = None) -> np.ndarray:
        t = self.theta0 if theta is None else theta
        with np.errstate(all="ignore"):
            if self.kind == "lin":
                return x[self.a]
            if self.kind == "log":
                return np.log1p(x[self.a])
            if self.kind == "sqrt":
                return np.sqrt(x[self.a])
            if self.kind == "prod":
                return x[self.a] * x[self.b]
            if self.kind == "ratio":
                return x[self.a] / (x[self.b] + t)
            return np.exp(t * x[self.a])

    def source(self, inner: str = "") -> str:
        a, b = f'x["{self.a}"]', f'x["{self.b}"]'
        return {"lin": a, "log": f"np.log1p({a})", "sqrt": f"np.sqrt({a})", "prod": f"{a} * {b}",
                "ratio": f"{a} / ({b} + {inner})", "exp": f"np.exp({inner} * {a})"}[self.kind]


def library(features: dict) -> list[Term]:
    """Every term the mutations may use, for the non-constant features of ``features``."""
    names = [k for k, v in features.items() if np.ptp(v) > 0]
    nonneg = [k for k in names if np.min(features[k]) >= 0]
    out = [Term("lin", k) for k in names]
    out += [Term("log", k) for k in nonneg] + [Term("sqrt", k) for k in nonneg]
    out += [Term("prod", a, b) for i, a in enumerate(names) for b in names[i:]]
    out += [Term("ratio", a, b, 1.0) for a in names for b in nonneg if a != b]
    out += [Term("exp", k, theta0=-0.1) for k in names]
    return out


@dataclass
class TermsFit:
    """The fit of a term-structured law: its linear coefficients, inner parameters and actions."""

    coef: np.ndarray
    theta: np.ndarray
    train_action: float
    heldout_action: float


def solve_linear(T: np.ndarray, data: ScoringData, c0=None, iters: int = 30) -> tuple[np.ndarray, float]:
    """Exact minimiser of the (convex) action over c for V = T c: damped Newton."""
    lo, hi, a, b = data.train.pairs()
    D = T[lo] - T[hi]
    ns = data.train.n_states
    c = np.zeros(T.shape[1]) if c0 is None else np.asarray(c0, float).copy()
    S = math.inf
    for _ in range(iters):
        val, d1, d2 = pair_terms(D @ c, a, b, data.kernel, data.beta, 2)
        S_new = float(val.sum() / ns)
        if S_new > S - 1e-13 * max(1.0, abs(S)):
            break
        S = S_new
        g = D.T @ d1 / ns
        H = (D * (d2 / ns)[:, None]).T @ D
        H[np.diag_indices_from(H)] += 1e-12 * (np.trace(H) / max(len(H), 1) + 1e-300)
        try:
            step = np.linalg.solve(H, -g)
        except np.linalg.LinAlgError:
            step = np.linalg.lstsq(H, -g, rcond=None)[0]
        lam = 1.0
        for _h in range(20):
            val2, _, _ = pair_terms(D @ (c + lam * step), a, b, data.kernel, data.beta, 0)
            if float(val2.sum() / ns) <= S:
                break
            lam *= 0.5
        c = c + lam * step
    val, _, _ = pair_terms(D @ c, a, b, data.kernel, data.beta, 0)
    return c, float(val.sum() / ns)


def term_matrix(terms: list[Term], theta, x: dict, n: int) -> np.ndarray:
    """The terms' values on the states (one column a term), the inner parameters ``theta`` taken in order."""
    cols, k = [], 0
    for t in terms:
        if t.n_inner:
            cols.append(t.value(x, theta[k]))
            k += 1
        else:
            cols.append(t.value(x))
    return np.column_stack(cols) if cols else np.zeros((n, 0))


def fit(terms: list[Term], data: ScoringData, theta0=None, inner_fit: bool = True) -> TermsFit:
    """Variable projection: exact coefficients, inner parameters by Brent / Nelder-Mead on S*(theta).
    ``inner_fit=False``: the inner parameters stay at ``theta0`` (one exact linear solve; the island
    search's scorer then refines every parameter jointly by Gauss-Newton from there, ~20x cheaper
    than a projected line search)."""
    from potsearch.law.scoring import action_value

    x = data.features
    inner = [i for i, t in enumerate(terms) if t.n_inner]
    th0 = np.array([terms[i].theta0 for i in inner] if theta0 is None else theta0, float)

    def matrix(th):
        T = term_matrix(terms, th, x, data.n_states)
        return T - T.mean(axis=0)

    def projected(th):
        T = matrix(th)
        if not np.all(np.isfinite(T)):
            return math.inf
        return solve_linear(T, data)[1]

    th = th0
    if len(inner) == 1 and inner_fit:   # one inner parameter: Brent's method, a few dozen projected solves
        res = minimize_scalar(lambda t: projected(np.array([t])), bracket=(th0[0], th0[0] + 0.5),
                              options={"xtol": 1e-6, "maxiter": 60})
        th = np.array([float(res.x)])
        if not math.isfinite(projected(th)):
            th = th0
    elif len(inner) and inner_fit:
        res = minimize(projected, th0, method="Nelder-Mead", options={"maxiter": 200 * len(inner), "xatol": 1e-6,
                                                                       "fatol": 1e-10})
        th = np.asarray(res.x, float)
    T = matrix(th)
    c, S = solve_linear(T, data)
    Sh = action_value(T @ c, data.heldout, data.kernel, data.beta)
    return TermsFit(c, th, S, Sh)


def to_source(terms: list[Term], fitres: TermsFit) -> tuple[str, list[float]]:
    """``potential(x, p)`` source and its parameters: inner parameters p[0..m-1], then coefficients."""
    m = sum(t.n_inner for t in terms)
    parts, k = [], 0
    for i, t in enumerate(terms):
        inner = ""
        if t.n_inner:
            inner = f"p[{k}]"
            k += 1
        parts.append(f"p[{m + i}] * {t.source(inner)}")
    body = " + ".join(parts) if parts else "0.0 * p[0]"
    params = [float(v) for v in fitres.theta] + [float(v) for v in fitres.coef]
    return f"N_PARAMS = {len(params)}\n\n\ndef potential(x, p):\n    return {body}\n", params


# ----------------------------------------------------------------------------- mutations
def add_term(terms: list[Term], lib: list[Term], rng: random.Random) -> list[Term]:
    pool = [t for t in lib if t not in terms]
    return terms + [rng.choice(pool)] if pool else list(terms)


def drop_term(terms: list[Term], rng: random.Random) -> list[Term]:
    if len(terms) <= 1:
        return list(terms)
    i = rng.randrange(len(terms))
    return terms[:i] + terms[i + 1:]


def replace_term(terms: list[Term], lib: list[Term], rng: random.Random) -> list[Term]:
    pool = [t for t in lib if t not in terms]
    if not terms or not pool:
        return list(terms)
    i = rng.randrange(len(terms))
    return terms[:i] + [rng.choice(pool)] + terms[i + 1:]


def transform_term(terms: list[Term], lib: list[Term], rng: random.Random) -> list[Term]:
    """Replace one term by another of the same feature(s) (x -> log1p(x), sqrt(x), x*x ...): the
    library is large, a uniform replacement rarely proposes the right transform of a right feature."""
    if not terms:
        return list(terms)
    i = rng.randrange(len(terms))
    feats = {terms[i].a, terms[i].b} - {""}
    pool = [t for t in lib if t not in terms and feats & ({t.a, t.b} - {""})]
    if not pool:
        return list(terms)
    return terms[:i] + [rng.choice(pool)] + terms[i + 1:]


def mutate(terms: list[Term], lib: list[Term], rng: random.Random) -> tuple[str, list[Term]]:
    op = rng.choice(("add", "drop", "replace", "transform"))
    if op == "add":
        return op, add_term(terms, lib, rng)
    if op == "drop":
        return op, drop_term(terms, rng)
    if op == "transform":
        return op, transform_term(terms, lib, rng)
    return op, replace_term(terms, lib, rng)


# ----------------------------------------------------------------------------- score-test moves
class Screen:
    """Rao's score test of every library term against a fitted law: adding term t with coefficient
    c changes the action by about -g_t c + h_t c^2 / 2 (g_t = -dS/dc_t, h_t = d2S/dc_t^2 at c = 0,
    over the training edge pairs), so g_t^2 / h_t is the drop a one-dimensional Newton step on t
    would buy. One matrix product scores the whole library (inner parameters at their defaults);
    ``best_add`` and ``best_swap`` take the term with the largest drop, which makes a law of k + 1
    right terms one step from a law of k of them whatever the library's size (a uniform draw finds
    the one right term among hundreds too rarely)."""

    def __init__(self, lib: list[Term], data: ScoringData):
        self.lib, self.data = lib, data
        lo, hi, a, b = data.train.pairs()
        self.lo, self.hi, self.a, self.b = lo, hi, a, b
        with np.errstate(all="ignore"):
            L = np.column_stack([t.value(data.features) for t in lib]) if lib else np.zeros((data.n_states, 0))
        ok = np.all(np.isfinite(L), axis=0) & (np.ptp(L, axis=0) > 0)
        L = np.where(ok[None, :], L, 0.0)
        sd = np.where(ok, L.std(axis=0), 1.0)
        self.ok = ok
        self.D = (L[lo] - L[hi]) / sd          # per-pair differences of the (scaled) library terms

    def drops(self, terms: list[Term]) -> np.ndarray:
        """The score-test drop of the action for each library term added to the law ``terms`` (fitted
        exactly here, inner parameters at their defaults); -inf for terms already in it."""
        d = self.data
        V = np.zeros(d.n_states)
        if terms:
            r = fit(terms, d, inner_fit=False)
            V = term_matrix(terms, r.theta, d.features, d.n_states) @ r.coef
        _, d1, d2 = pair_terms(V[self.lo] - V[self.hi], self.a, self.b, d.kernel, d.beta, 2)
        g = self.D.T @ d1
        h = (self.D * self.D).T @ d2
        with np.errstate(all="ignore"):
            out = np.where(self.ok & (h > 0), g * g / np.where(h > 0, h, 1.0), -np.inf)
        for t in terms:
            if t in self.lib:
                out[self.lib.index(t)] = -np.inf
        return out

    def pick(self, drops: np.ndarray, rng: random.Random, top: int = 3) -> Term | None:
        """One of the ``top`` largest drops (uniformly: a little diversity among near ties)."""
        order = [i for i in np.argsort(-drops)[:top] if np.isfinite(drops[i])]
        return self.lib[rng.choice(order)] if order else None


def best_add(terms: list[Term], screen: Screen, rng: random.Random) -> list[Term]:
    t = screen.pick(screen.drops(terms), rng)
    return terms + [t] if t is not None else list(terms)


def best_swap(terms: list[Term], screen: Screen, rng: random.Random) -> list[Term]:
    """Drop one term (at random), then add the best term for the rest."""
    if not terms:
        return list(terms)
    i = rng.randrange(len(terms))
    rest = terms[:i] + terms[i + 1:]
    drops = screen.drops(rest)
    if terms[i] in screen.lib:
        drops[screen.lib.index(terms[i])] = -np.inf
    t = screen.pick(drops, rng)
    return rest + [t] if t is not None else list(terms)


# ----------------------------------------------------------------------------- a small search
def search(data: ScoringData, steps: int = 300, max_terms: int = 4, seed: int = 0, progress=None) -> list[dict]:
    """Stochastic local search over term lists: an archive keeps the lowest-action law of each size
    (1..max_terms); each step mutates a random archive member (add / drop / replace one term) and
    keeps the child if it beats the archive entry of its size. Returns the archive as candidate rows
    (source, params, train_action, heldout_action, complexity, n_terms) for selection."""
    from potsearch.law.scoring import complexity_of

    rng = random.Random(seed)
    lib = library(data.features)
    archive: dict[int, tuple[list[Term], TermsFit]] = {}
    seen: set = set()

    def consider(law):
        key = tuple(sorted(law, key=repr))
        if not law or len(law) > max_terms or key in seen:
            return
        seen.add(key)
        try:
            r = fit(law, data)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError):
            return
        if not math.isfinite(r.train_action):
            return
        k = len(law)
        if k not in archive or r.train_action < archive[k][1].train_action:
            archive[k] = (list(law), r)

    for t in lib:
        if t.kind == "lin":
            consider([t])
    for i in range(steps):
        k = rng.choice(sorted(archive))
        _, child = mutate(archive[k][0], lib, rng)
        consider(child)
        if progress:
            progress(i + 1, steps)
    rows = []
    for k in sorted(archive):
        law, r = archive[k]
        src, params = to_source(law, r)
        rows.append({"source": src, "params": params, "train_action": r.train_action,
                     "heldout_action": r.heldout_action, "complexity": complexity_of(src), "n_terms": k})
    return rows
