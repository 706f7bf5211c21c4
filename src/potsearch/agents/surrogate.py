"""The SURROGATE: a test instrument with a known hidden potential.

It is not a language model and never stands in for one: it validates the
pipeline (collect -> fit -> diagnose) against a potential we know. Every
output names it a surrogate (``metadata()["surrogate"]`` and the model name
``SURROGATE_MODEL``).

Word task: a fixed undirected neighbour graph on the shipped word list, built
from ``graph_seed`` as the union of k/2 Hamiltonian cycles — random ones, or with
``locality`` cycles through the words in order of V plus a Gaussian jitter of
locality*std(V), so a proposal goes to a word of similar potential, as an agent
editing its last answer does (every word
has k neighbour slots; a pair joined twice has two slots each way, so the
proposal q(f->g) = slots(f,g)/k is symmetric). A proposal f->g is accepted
with the Metropolis rule min(1, exp(V_f - V_g + b(f,g))); a rejection is a
self-loop. With b = 0 detailed balance holds exactly:
T(f->g)/T(g->f) = exp(V_f - V_g).

Drift (non-equilibrium): b(f,g) = +drift when g follows f along cycle 0 and
-drift against it (0 on the other cycles). Then log T(f->g)/T(g->f) =
V_f - V_g + drift on cycle-0 edges, so the sum of log-ratios around cycle 0
is n*drift != 0: Kolmogorov's criterion fails, detailed balance is broken.

Escape: with probability ``escape_prob`` a sample is an escape ("surrogate
escape") before any proposal; it scales T(f->g) and T(g->f) alike.

Fitter task: states are sums of basis terms ``paramK*b_j(x)`` plus an
intercept; a move toggles one basis term chosen uniformly (add or remove, a
symmetric proposal); a move leaving 1..max_terms terms is rejected (self-loop).

The hidden V is a formula of state features (``hidden_potential`` in the
agent config) read by a small safe evaluator (numbers, feature names,
+ - * / **, unary -, and the functions in ``agents.hidden.SAFE_FUNCS``); never eval.
"""
from __future__ import annotations

import numpy as np

from potsearch.core.errors import InputError
from potsearch.law.features import FITTER_FEATURES as _LIBRARY_FITTER_FEATURES
from potsearch.law.features import feature_table
from potsearch.agents.base import Outcome
from potsearch.agents.hidden import (
    ESCAPE_REASON, SURROGATE_LABEL, SURROGATE_MODEL, UNKNOWN_SOURCE, compile_formula)


def cycle_graph(n: int, k: int, seed: int, V: np.ndarray | None = None,
                locality: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Union of k/2 Hamiltonian cycles on n nodes: random permutations, or, with
    ``locality`` and ``V``, the nodes in order of V + N(0, (locality*std V)^2)
    (a fresh jitter per cycle), so neighbours have similar potentials.

    Returns ``nb`` (n, k): neighbour in each slot, and ``sign`` (n, k): +1 for
    the forward step along cycle 0, -1 backward, 0 on the other cycles.
    """
    if n < 3:
        raise ValueError("the surrogate needs at least 3 states")
    rng = np.random.default_rng(seed)
    nb = np.empty((n, k), dtype=np.int64)
    sign = np.zeros((n, k), dtype=np.int8)
    for c in range(k // 2):
        if locality is None or V is None:
            perm = rng.permutation(n)
        else:   # ties (a constant V) in random order: never the same ring twice
            perm = np.lexsort((rng.random(n), V + rng.normal(0.0, locality * float(np.std(V)), n)))
        nxt = np.empty(n, dtype=np.int64)
        prv = np.empty(n, dtype=np.int64)
        nxt[perm] = np.roll(perm, -1)
        prv[perm] = np.roll(perm, 1)
        nb[:, 2 * c] = nxt
        nb[:, 2 * c + 1] = prv
        if c == 0:
            sign[:, 0] = 1
            sign[:, 1] = -1
    return nb, sign


def _lookup(source_keys, table: dict) -> tuple[list, np.ndarray]:
    """The source keys and their indices in ``table`` (-1 where unknown)."""
    keys = list(source_keys)
    return keys, np.fromiter((table.get(k, -1) for k in keys), dtype=np.int64, count=len(keys))


class _Stepper:
    def step(self, source_key: str, rng) -> Outcome:
        """One step from one source (``step_batch`` of one)."""
        return self.step_batch([source_key], rng)[0]


class WordSurrogate(_Stepper):
    """Metropolis surrogate on the word list (see module doc)."""

    name = "surrogate-word"
    model = SURROGATE_MODEL

    def __init__(self, agent):
        from potsearch.law.features import word_features

        from potsearch.agents.word import FEATURES

        self.agent = agent
        self.opts = agent.config.surrogate
        self.words = list(agent.words)
        self.n = len(self.words)
        self.index = {w: i for i, w in enumerate(self.words)}
        table = word_features(self.words, zipf=agent.wordlist.zipf)
        self.features = {k: np.asarray(table[k], dtype=float) for k in FEATURES}
        formula = compile_formula(self.opts.hidden_potential, FEATURES, f"{agent.config.source}: surrogate.hidden_potential")
        V = np.broadcast_to(formula(self.features), (self.n,)).astype(float)
        if not np.all(np.isfinite(V)):
            bad = self.words[int(np.flatnonzero(~np.isfinite(V))[0])]
            raise InputError(f"surrogate.hidden_potential is not finite on {bad}", agent.config.source)
        self.V = V
        self.k = self.opts.neighbours
        if self.n < 3:
            raise InputError("the word surrogate needs at least 3 words in the list", agent.config.source)
        self.locality = self.opts.locality
        self.nb, self.sign = cycle_graph(self.n, self.k, self.opts.graph_seed, V, self.locality)
        self.drift = float(self.opts.drift)
        self.escape_prob = float(self.opts.escape_prob)
        # Outcome objects are immutable in use: share one per state
        self._state_outcomes = [Outcome(w, w, None, None) for w in self.words]
        self._escape = Outcome(None, None, ESCAPE_REASON, None)
        self._unknown = Outcome(None, None, UNKNOWN_SOURCE, None)

    def hidden_potential(self, key: str) -> float:
        return float(self.V[self.index[key]])

    def initial_states(self, rng) -> list[tuple[str, str, dict | None]]:
        """The agent's initial states (all in the word list)."""
        return self.agent.initial_states(rng)

    def potentials(self) -> dict[str, float]:
        return dict(zip(self.words, self.V.tolist()))

    def metadata(self) -> dict:
        return {
            "surrogate": True,
            "label": SURROGATE_LABEL,
            "task": "word",
            "hidden_potential": self.opts.hidden_potential,
            "features": list(self.features),
            "states": self.n,
            "neighbours": self.k,
            "graph": ("union of k/2 random Hamiltonian cycles (symmetric proposal)" if self.locality is None else
                      f"union of k/2 Hamiltonian cycles in order of V + N(0, ({self.locality}*std V)^2) "
                      "(local, symmetric proposal)"),
            "locality": self.locality,
            "graph_seed": self.opts.graph_seed,
            "acceptance": "min(1, exp(V_f - V_g + drift*s)), s=+1/-1 along/against neighbour cycle 0",
            "drift": self.drift,
            "detailed_balance": self.drift == 0.0,
            "escape_prob": self.escape_prob,
            "word_list": self.agent.wordlist.provenance,
        }

    def step_batch(self, source_keys, rng) -> list[Outcome]:
        """One Metropolis step from each source (vectorised). Unknown sources escape."""
        keys, idx = _lookup(source_keys, self.index)
        m = len(keys)
        if m == 0:
            return []
        known = idx >= 0
        src = np.where(known, idx, 0)
        slot = rng.integers(0, self.k, size=m)
        prop = self.nb[src, slot]
        dv = self.V[src] - self.V[prop]
        if self.drift:
            dv = dv + self.drift * self.sign[src, slot]
        u = rng.random(m)
        accept = np.log(np.maximum(u, 1e-300)) < np.minimum(dv, 0.0)
        dest = np.where(accept, prop, src)
        if self.escape_prob:
            esc = rng.random(m) < self.escape_prob
        else:
            esc = np.zeros(m, dtype=bool)
        so = self._state_outcomes
        out = [so[d] for d in dest.tolist()]
        if esc.any() or not known.all():
            for i in np.flatnonzero(esc | ~known).tolist():
                out[i] = self._unknown if not known[i] else self._escape
        return out


FITTER_FEATURES = tuple(_LIBRARY_FITTER_FEATURES)


class FitterSurrogate(_Stepper):
    """Metropolis surrogate on sums of basis terms (see module doc).

    State for a bit mask S of the basis (1 <= |S| <= max_terms):
    ``param1 + sum_j paramK*(b_j)`` in the fitter's canonical form. Features: those
    of potsearch.law.features (``feature_table("fitter", ...)`` of the state's key text, so
    the hidden law is written in the names the search uses: terms = |S| + 1 with the
    intercept, n_params, n_funcs, nodes ...); score = the fitter's score of the state
    (fitted lazily, only when the formula uses it). Proposal:
    toggle bit j, j uniform in 0..B-1 (symmetric); a mask outside the allowed
    sizes is rejected (self-loop). Drift d: toggling j with bit (j+1) mod B set
    gets +d when adding j and -d when removing it (antisymmetric, and its sum
    around the square add j, add j+1, remove j, remove j+1 is -d: not a gradient).
    """

    name = "surrogate-fitter"
    model = SURROGATE_MODEL

    def __init__(self, agent):
        from potsearch.agents.fitter import ExpressionError, parse_expression

        self.agent = agent
        self.opts = agent.config.surrogate
        src = agent.config.source
        basis = list(self.opts.basis)
        if not 2 <= len(basis) <= 16:
            raise InputError("surrogate.basis needs 2 to 16 terms for the fitter surrogate", src)
        self.basis = basis
        self.B = len(basis)
        for b in basis:
            try:
                pr = parse_expression(b, agent.opts)
            except ExpressionError as exc:
                raise InputError(f"surrogate.basis term {b!r}: {exc}", src) from None
            if pr.params:
                raise InputError(f"surrogate.basis term {b!r} must not contain parameters", src)
        M = 1 << self.B
        masks = np.arange(M)
        bits = (masks[:, None] >> np.arange(self.B)[None, :]) & 1
        terms = bits.sum(1)
        self.valid = (terms >= 1) & (terms <= self.opts.max_terms)
        self._out: list[Outcome | None] = [None] * M
        self._key2mask: dict[str, int] = {}
        self.formula = compile_formula(self.opts.hidden_potential, FITTER_FEATURES, f"{src}: surrogate.hidden_potential")
        self.uses_score = "score" in self.opts.hidden_potential
        self.V = None
        # the features of every state, computed from its key text by the evolve feature library:
        # one feature table for the surrogate's hidden law and for the search
        self.feat = {k: np.full(M, np.nan) for k in FITTER_FEATURES}
        valid = np.flatnonzero(self.valid)
        table = feature_table("fitter", [self._state(int(m)).key for m in valid])
        for k, v in table.items():
            self.feat[k][valid] = v
        self.feat["score"][:] = np.nan
        self.V = np.full(M, np.nan)
        if not self.uses_score:
            self.V[valid] = np.broadcast_to(self.formula({k: v[valid] for k, v in self.feat.items()}),
                                            (len(valid),)).astype(float)
        self.drift = float(self.opts.drift)
        self.escape_prob = float(self.opts.escape_prob)
        self.k = self.B
        self._not_mine: set[str] = set()
        self._basis_exprs = None
        self._escape = Outcome(None, None, ESCAPE_REASON, None)
        self._unknown = Outcome(None, None, UNKNOWN_SOURCE, None)

    # -------------------------------------------------------------- states
    def text_of(self, mask: int) -> str:
        terms = [f"param{i + 2}*({self.basis[j]})" for i, j in enumerate(j for j in range(self.B) if mask >> j & 1)]
        return " + ".join(["param1"] + terms)

    def _state(self, mask: int) -> Outcome:
        o = self._out[mask]
        if o is None:
            from potsearch.agents.fitter import canonical, clean_reply, parse_expression

            key = canonical(parse_expression(clean_reply(self.text_of(mask)), self.agent.opts))[0]
            o = Outcome(key, key, None, {"surrogate": True, "mask": int(mask)})
            self._out[mask] = o
            self._key2mask[key] = int(mask)
        if self.V is not None and np.isnan(self.V[mask]) and self.valid[mask]:
            if self.uses_score:
                self.feat["score"][mask] = self.agent.score(o.key)
                env = {k: v[mask] for k, v in self.feat.items()}
                self.V[mask] = float(self.formula(env))
        return o

    def _mask_of_key(self, key: str) -> int:
        """The mask of a state given by the fitter agent (e.g. its initial states), or -1.

        A key belongs to the surrogate's space when it is an intercept parameter plus
        ``paramK*b_j`` terms of distinct basis functions (1..max_terms of them)."""
        if key in self._key2mask:
            return self._key2mask[key]
        if key in self._not_mine:
            return -1
        from potsearch.agents.fitter import ExpressionError, canonical, clean_reply, parse_expression

        mask = -1
        try:
            sp = __import__("sympy")
            parsed = parse_expression(clean_reply(key), self.agent.opts)
            params = set(parsed.params)
            if self._basis_exprs is None:
                self._basis_exprs = [parse_expression(b, self.agent.opts).expr for b in self.basis]
            m, intercept, ok = 0, 0, True
            for term in sp.Add.make_args(parsed.expr):
                ps = term.free_symbols & params
                if term in params:
                    intercept += 1
                    continue
                if len(ps) != 1:
                    ok = False
                    break
                g = term / next(iter(ps))
                js = [j for j, b in enumerate(self._basis_exprs) if g == b]
                if len(js) != 1 or m >> js[0] & 1:
                    ok = False
                    break
                m |= 1 << js[0]
            if ok and intercept == 1 and self.valid[m]:
                if self._state(m).key == canonical(parsed)[0]:
                    mask = m
        except (ExpressionError, Exception):
            mask = -1
        if mask < 0:
            self._not_mine.add(key)
        return mask

    def initial_states(self, rng) -> list[tuple[str, str, dict | None]]:
        """Every one-term state (the surrogate's own state space)."""
        out = []
        for j in range(self.B):
            o = self._state(1 << j)
            out.append((o.target, o.key, dict(o.meta)))
        return out

    def hidden_potential(self, key: str) -> float:
        m = self._key2mask[key]
        self._state(m)
        return float(self.V[m])

    def potentials(self) -> dict[str, float]:
        return {o.key: float(self.V[m]) for m, o in enumerate(self._out) if o is not None}

    def metadata(self) -> dict:
        return {
            "surrogate": True,
            "label": SURROGATE_LABEL,
            "task": "fitter",
            "hidden_potential": self.opts.hidden_potential,
            "features": list(FITTER_FEATURES),
            "basis": self.basis,
            "max_terms": self.opts.max_terms,
            "states": int(self.valid.sum()),
            "proposal": "toggle one basis term chosen uniformly (symmetric); outside 1..max_terms -> rejected",
            "acceptance": "min(1, exp(V_f - V_g + drift*s)), s=+1/-1 adding/removing term j when term j+1 is present",
            "drift": self.drift,
            "detailed_balance": self.drift == 0.0,
            "escape_prob": self.escape_prob,
        }

    def step_batch(self, source_keys, rng) -> list[Outcome]:
        keys, src = _lookup(source_keys, self._key2mask)
        m = len(keys)
        if m == 0:
            return []
        if (src < 0).any():
            for i in np.flatnonzero(src < 0).tolist():
                src[i] = self._mask_of_key(keys[i])
        known = src >= 0
        src = np.where(known, src, 0)
        j = rng.integers(0, self.B, size=m)
        prop = src ^ (1 << j)
        ok = self.valid[prop] & known
        if self.uses_score:
            for mk in set(prop[ok].tolist()) | set(src[known].tolist()):
                self._state(mk)
        dv = self.V[src] - np.where(ok, self.V[prop], 0.0)
        if self.drift:
            adding = (prop >> j) & 1
            nxt = (src >> ((j + 1) % self.B)) & 1
            dv = dv + self.drift * nxt * np.where(adding == 1, 1.0, -1.0)
        u = rng.random(m)
        accept = ok & (np.log(np.maximum(u, 1e-300)) < np.minimum(np.nan_to_num(dv, nan=-np.inf), 0.0))
        dest = np.where(accept, prop, src)
        esc = rng.random(m) < self.escape_prob if self.escape_prob else np.zeros(m, dtype=bool)
        outs = self._out
        res = [outs[d] or self._state(d) for d in dest.tolist()]
        if esc.any() or not known.all():
            for i in np.flatnonzero(esc | ~known).tolist():
                res[i] = self._unknown if not known[i] else self._escape
        return res


def make_surrogate(agent):
    """The surrogate for an agent: ``WordSurrogate``, ``FitterSurrogate``, or for your own agent (``kind:
    text`` or ``python``) ``StateSurrogate`` (agents/statesurrogate.py)."""
    if agent.config.kind == "word":
        return WordSurrogate(agent)
    if agent.config.kind == "fitter":
        return FitterSurrogate(agent)
    from potsearch.agents.statesurrogate import StateSurrogate

    return StateSurrogate(agent)


def exact_transition_matrix(sur: WordSurrogate) -> np.ndarray:
    """Dense T(f->g) of a word surrogate (self-loops on the diagonal, escapes excluded).
    For tests; n x n, so keep n small or accept O(n^2) memory."""
    n, k = sur.n, sur.k
    T = np.zeros((n, n))
    for s in range(k):
        dv = sur.V - sur.V[sur.nb[:, s]] + sur.drift * sur.sign[:, s]
        acc = np.exp(np.minimum(dv, 0.0)) / k
        np.add.at(T, (np.arange(n), sur.nb[:, s]), acc)
        T[np.arange(n), np.arange(n)] += (1 - np.exp(np.minimum(dv, 0.0))) / k
    return T * (1 - sur.escape_prob)

