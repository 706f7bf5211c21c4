"""The surrogate for your own agent: a known hidden potential over the agent's own features.

A test instrument, not a language model (every output names it a surrogate, as for the word and
fitter surrogates in :mod:`potsearch.agents.surrogate`). It lets a user check on their own states and
features, before paying for model calls, that collect -> fit -> evolve recovers a law they chose.

Used for ``kind: text`` agents and for ``kind: python`` agents that have a ``states`` attribute (a
finite list of state texts) or a ``moves_from`` rule. From the agent file's ``surrogate:`` section:

* **features**: the automatic features of the states (:mod:`potsearch.law.autofeatures`, the same
  names evolve uses without a table: ``r3c1`` -> ``r``, ``c``), or ``features: FILE.csv``, a features
  table (:mod:`potsearch.store.features`; give the same file to ``import/evolve --features``).
* **hidden_potential**: a formula over those features (the safe evaluator ``compile_formula``).
* **proposal**, a symmetric neighbour rule over the states:

  - ``step`` (default): two states are neighbours when their features (``step_features``, default
    all) agree except one, which differs by exactly ``step`` (default 1): the board's squares one row
    or one column apart;
  - ``edit``: the state texts are one edit apart (one character changed, inserted or deleted);
  - ``moves``: the moves observed in ``moves_from`` (a CSV of transitions ``source,target[,...]`` as
    ``potsearch import`` reads, or a run directory), made undirected; self-loops and escapes are left out.

The states are the agent's list (``text.states`` / ``states_file``; a python agent's ``states``);
with ``proposal: moves`` and no list, the states of the moves. Each state has K slots, K the largest
number of neighbours of any state; a proposal picks a slot uniformly, an empty slot is a rejection
(a self-loop), so q(f->g) = 1/K = q(g->f). Accepted with min(1, exp(V_f - V_g)): detailed balance
holds exactly, T(f->g)/T(g->f) = exp(V_f - V_g). ``escape_prob`` makes escapes; ``drift`` is not
offered here (the word surrogate has it).
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from potsearch.agents.base import Outcome
from potsearch.agents.hidden import (
    ESCAPE_REASON,
    SURROGATE_LABEL,
    SURROGATE_MODEL,
    UNKNOWN_SOURCE,
    compile_formula,
)
from potsearch.core.errors import InputError

PROPOSALS = ("step", "edit", "moves")
MAX_STATES = 200_000


def read_moves(path: str | Path, where: str) -> list[tuple[str, str]]:
    """The (source, target) moves of a transitions CSV or a run directory (self-loops and escapes left out)."""
    path = Path(path)
    if path.is_dir():
        from potsearch.store import RunStore
        from potsearch.store.rundir import STORE_FILENAME

        if not (path / STORE_FILENAME).exists():
            raise InputError(f"surrogate.moves_from: {path} is neither a CSV of transitions nor a run directory", where)
        with RunStore.open(path, readonly=True) as st:
            cnt = st.counts()
        return [(cnt.states[s], cnt.states[d]) for s, d in zip(cnt.src.tolist(), cnt.dst.tolist())
                if d >= 0 and d != s]
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"source", "target"} <= {c.strip() for c in reader.fieldnames}:
                raise InputError(f"surrogate.moves_from: {path.name} needs 'source' and 'target' columns", where)
            reader.fieldnames = [c.strip() for c in reader.fieldnames]
            out = []
            for row in reader:
                s, t = (row.get("source") or "").strip(), (row.get("target") or "").strip()
                if s and t and s != t:
                    out.append((s, t))
            return out
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"surrogate.moves_from: cannot read {path}: {getattr(exc, 'strerror', None) or exc}",
                         where) from None


def step_neighbours(X: np.ndarray, step: float) -> list[set]:
    """Neighbours under the step rule: rows of ``X`` equal but in one column, which differs by ``step``."""
    n, d = X.shape
    key = lambda row: tuple(np.round(row, 9).tolist())
    where: dict[tuple, list[int]] = {}
    for i in range(n):
        where.setdefault(key(X[i]), []).append(i)
    nb: list[set] = [set() for _ in range(n)]
    for i in range(n):
        for j in range(d):
            row = X[i].copy()
            row[j] += step
            for k in where.get(key(row), ()):
                nb[i].add(k)
                nb[k].add(i)
    return nb


def edit_neighbours(states: list[str]) -> list[set]:
    """Neighbours under the edit rule: one character changed, inserted or deleted."""
    index = {s: i for i, s in enumerate(states)}
    nb: list[set] = [set() for _ in states]
    buckets: dict[tuple[int, str], list[int]] = {}
    for i, s in enumerate(states):
        for p in range(len(s)):
            dropped = s[:p] + s[p + 1:]
            j = index.get(dropped)          # a deletion (and so, from j, an insertion)
            if j is not None and j != i:
                nb[i].add(j)
                nb[j].add(i)
            buckets.setdefault((p, dropped), []).append(i)   # same length, differing only at p
    for group in buckets.values():
        for a in group:
            nb[a].update(b for b in group if b != a)
    return nb


class StateSurrogate:
    """Metropolis on the agent's states under a hidden potential of its features (module doc)."""

    name = "surrogate-states"
    model = SURROGATE_MODEL

    def __init__(self, agent):
        self.agent = agent
        self.opts = o = agent.config.surrogate
        where = agent.config.source or agent.config.name
        self.where = where
        proposal = o.proposal or "step"
        moves = read_moves(o.moves_from, where) if o.moves_from else None
        if proposal == "moves" and moves is None:
            raise InputError("surrogate.proposal: moves needs surrogate.moves_from (a CSV of transitions or a run)",
                             where)
        states = [str(s) for s in (getattr(agent, "states", None) or ())]
        if not states and moves is not None:
            states = list(dict.fromkeys(s for m in moves for s in m))
        if len(states) < 3:
            raise InputError("the surrogate needs the agent's states: a list of at least 3 (text.states or "
                             "text.states_file; or surrogate.moves_from)", where)
        if len(states) > MAX_STATES:
            raise InputError(f"the surrogate takes at most {MAX_STATES} states ({len(states)} given)", where)
        self.states = states
        self.n = len(states)
        self.index = {s: i for i, s in enumerate(states)}
        self.features, self.docs, self.library = self._features(o, where)
        names = tuple(self.features)
        formula = compile_formula(o.hidden_potential, names, f"{where}: surrogate.hidden_potential")
        V = np.broadcast_to(formula(self.features), (self.n,)).astype(float)
        if not np.all(np.isfinite(V)):
            bad = states[int(np.flatnonzero(~np.isfinite(V))[0])]
            raise InputError(f"surrogate.hidden_potential is not finite on {bad!r}", where)
        self.V = V
        self.proposal = proposal
        nb = self._neighbours(proposal, moves, where)
        self.k = max(len(x) for x in nb)
        if self.k == 0:
            raise InputError(f"surrogate.proposal: {proposal}: no two states are neighbours", where)
        self.nb = np.full((self.n, self.k), -1, dtype=np.int64)
        for i, x in enumerate(nb):
            self.nb[i, :len(x)] = sorted(x)
        self.escape_prob = float(o.escape_prob)
        self._state_outcomes = [Outcome(s, s, None, None) for s in states]
        self._escape = Outcome(None, None, ESCAPE_REASON, None)
        self._unknown = Outcome(None, None, UNKNOWN_SOURCE, None)

    # -------------------------------------------------------------- construction
    def _features(self, o, where):
        if o.features:
            from potsearch.store.features import read_features_file

            table = read_features_file(o.features)
            vals, found = table.lookup(self.states)
            if not found.all():
                miss = [s for s, ok in zip(self.states, found) if not ok]
                raise InputError(f"{len(miss)} of the surrogate's {self.n} states have no row in the features table "
                                 f"{table.source}: {', '.join(repr(s) for s in miss[:5])}", where)
            docs = {n: table.descriptions.get(n, f"column {n!r} of {table.source}") for n in table.names}
            return vals, docs, {"library": "table", "source": table.source, "digest": table.digest}
        from potsearch.law.autofeatures import auto_docs, auto_features, auto_schema

        schema = auto_schema(self.states)
        if not schema["order"]:
            raise InputError("no automatic feature varies across the agent's states: give surrogate.features "
                             "(a features table)", where)
        return auto_features(self.states, schema), auto_docs(schema), {"library": "automatic", "schema": schema}

    def _neighbours(self, proposal, moves, where) -> list[set]:
        if proposal == "edit":
            return edit_neighbours(self.states)
        if proposal == "moves":
            nb: list[set] = [set() for _ in self.states]
            for s, t in moves:
                i, j = self.index.get(s), self.index.get(t)
                if i is not None and j is not None and i != j:
                    nb[i].add(j)
                    nb[j].add(i)
            return nb
        names = list(self.opts.step_features) or list(self.features)
        unknown = [f for f in names if f not in self.features]
        if unknown:
            raise InputError(f"surrogate.step_features: unknown feature {unknown[0]!r} (features: "
                             f"{', '.join(self.features)})", where)
        X = np.column_stack([np.asarray(self.features[f], dtype=float) for f in names])
        return step_neighbours(X, float(self.opts.step))

    # -------------------------------------------------------------- the surrogate interface
    def hidden_potential(self, key: str) -> float:
        return float(self.V[self.index[key]])

    def potentials(self) -> dict[str, float]:
        return dict(zip(self.states, self.V.tolist()))

    def initial_states(self, rng) -> list[tuple[str, str, dict | None]]:
        """The agent's initial states that are surrogate states (at least one is needed)."""
        init = [t for t in self.agent.initial_states(rng) if t[1] in self.index]
        if not init:
            raise InputError("none of the agent's initial states is one of the surrogate's states", self.where)
        return init

    def metadata(self) -> dict:
        rule = {"step": f"states whose features {list(self.opts.step_features) or list(self.features)} agree but "
                        f"one, which differs by {self.opts.step:g}",
                "edit": "state texts one edit apart (a character changed, inserted or deleted)",
                "moves": f"the moves observed in {Path(self.opts.moves_from).name if self.opts.moves_from else ''}, "
                         "undirected"}[self.proposal]
        return {
            "surrogate": True,
            "label": SURROGATE_LABEL,
            "task": "states",
            "hidden_potential": self.opts.hidden_potential,
            "features": list(self.features),
            "feature_library": self.library,
            "states": self.n,
            "proposal": self.proposal,
            "neighbours": rule,
            "slots": self.k,
            "acceptance": "min(1, exp(V_f - V_g)); K slots per state (K = the largest degree), an empty slot is "
                          "a rejection: symmetric proposal",
            "detailed_balance": True,
            "escape_prob": self.escape_prob,
        }

    def step(self, source_key: str, rng) -> Outcome:
        return self.step_batch([source_key], rng)[0]

    def step_batch(self, source_keys, rng) -> list[Outcome]:
        """One Metropolis step from each source (vectorised). Unknown sources escape."""
        keys = list(source_keys)
        m = len(keys)
        if m == 0:
            return []
        idx = np.fromiter((self.index.get(k, -1) for k in keys), dtype=np.int64, count=m)
        known = idx >= 0
        src = np.where(known, idx, 0)
        prop = self.nb[src, rng.integers(0, self.k, size=m)]
        has = prop >= 0
        dv = self.V[src] - self.V[np.where(has, prop, src)]
        u = rng.random(m)
        accept = has & (np.log(np.maximum(u, 1e-300)) < np.minimum(dv, 0.0))
        dest = np.where(accept, prop, src)
        esc = rng.random(m) < self.escape_prob if self.escape_prob else np.zeros(m, dtype=bool)
        out = [self._state_outcomes[d] for d in dest.tolist()]
        if esc.any() or not known.all():
            for i in np.flatnonzero(esc | ~known).tolist():
                out[i] = self._unknown if not known[i] else self._escape
        return out


def exact_transition_matrix(sur: StateSurrogate) -> np.ndarray:
    """Dense T(f->g) (self-loops on the diagonal, escapes excluded); for tests on small state sets."""
    n, k = sur.n, sur.k
    T = np.zeros((n, n))
    for i in range(n):
        for j in sur.nb[i]:
            if j < 0:
                T[i, i] += 1.0 / k
                continue
            a = min(1.0, float(np.exp(sur.V[i] - sur.V[j])))
            T[i, j] += a / k
            T[i, i] += (1 - a) / k
    return T * (1 - sur.escape_prob)
