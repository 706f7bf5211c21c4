"""Counts -> the weighted transition graph the action is defined on.

Rules (design notes §1, paper Eq 18 and 24):

* N(f) counts *every* sample drawn from f: moves, self-loops and escapes (``escapes="count"``, the
  paper's convention: a state's potential then absorbs its escape rate, V_f + log(1 - e_f)). With
  ``escapes="condition"`` N(f) is the valid samples only (visits minus escapes): the potential is the
  agent's preference among valid moves (docs/concepts.md).
* Self-loops and escapes are never edges.
* States with N(f) <= min_visits are dropped as sources *and* as targets
  (states never sampled, N = 0, are always dropped).
* ``low_reject``: w(f->g) = min(1, n(f->g)/N(f))   (escapes kept in N(f))
  ``high_reject``: w(f->g) = n(f->g)/N0, one N0 for every state
  (default N0 = sum of N(f) / number of distinct states), escapes ignored.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from potsearch.store import ESCAPE, Counts

WEIGHT_MODES = ("low_reject", "high_reject")
ESCAPE_MODES = ("count", "condition")


@dataclass
class Graph:
    """Edges f->g between kept states, in local indices 0..n-1."""

    names: list[str]          # kept states' texts (local index order)
    visits: np.ndarray        # N(f) for kept states
    src: np.ndarray           # edge sources (local)
    dst: np.ndarray           # edge targets (local)
    n: np.ndarray             # edge counts n(f->g)
    w: np.ndarray             # edge weights
    weight: str
    n0: float | None
    min_visits: int
    n_samples: int            # all samples in the input
    n_states_all: int         # distinct states in the input
    options: dict = field(default_factory=dict)
    escapes: str = "count"    # what N(f) holds: "count" (escapes included) or "condition" (valid samples)

    @property
    def n_states(self) -> int:
        return len(self.names)

    @property
    def n_edges(self) -> int:
        return len(self.src)

    def unit_weight(self) -> np.ndarray:
        """Weight of one unseen sample from each state: the bound a never-seen move obeys."""
        if self.weight == "high_reject":
            return np.full(self.n_states, 1.0 / self.n0)
        return 1.0 / self.visits

    def adjacency(self) -> sp.csr_matrix:
        return sp.csr_matrix((self.w, (self.src, self.dst)), shape=(self.n_states, self.n_states))

    def sccs(self) -> tuple[int, np.ndarray]:
        """Strongly connected components of the observed-edge graph (scipy.sparse.csgraph)."""
        return csgraph.connected_components(self.adjacency(), directed=True, connection="strong")


def build_graph(
    counts: Counts, weight: str = "low_reject", n0: float | None = None, min_visits: int = 1,
    escapes: str = "count",
) -> Graph:
    if weight not in WEIGHT_MODES:
        raise ValueError(f"unknown weight mode {weight!r} (choose from {', '.join(WEIGHT_MODES)})")
    if escapes not in ESCAPE_MODES:
        raise ValueError(f"unknown escape convention {escapes!r} (choose from {', '.join(ESCAPE_MODES)})")
    if min_visits < 0:
        raise ValueError("min_visits must be >= 0")
    n_all = len(counts.states)
    visits = counts.visits()
    if escapes == "condition":
        esc = counts.dst == ESCAPE
        visits = visits - np.bincount(counts.src[esc], weights=counts.count[esc], minlength=n_all).astype(np.int64)
    total = counts.total
    appearing = np.zeros(n_all, dtype=bool)
    appearing[counts.src] = True
    appearing[counts.dst[counts.dst >= 0]] = True
    if n0 is None:
        n0 = int(visits.sum()) / max(int(appearing.sum()), 1)
    elif n0 <= 0:
        raise ValueError("n0 must be > 0")
    keep = visits > min_visits
    local = np.full(n_all, -1, dtype=np.int64)
    local[keep] = np.arange(int(keep.sum()))
    move = (counts.dst != ESCAPE) & (counts.dst != counts.src)
    s, d, c = counts.src[move], counts.dst[move], counts.count[move]
    ok = keep[s] & keep[d] & (c > 0)
    s, d, c = local[s[ok]], local[d[ok]], c[ok]
    # merge duplicate (s, d) rows if any
    if len(s):
        key = s * keep.sum() + d
        uniq, inv = np.unique(key, return_inverse=True)
        c = np.bincount(inv, weights=c).astype(np.int64)
        s, d = uniq // keep.sum(), uniq % keep.sum()
    kv = visits[keep]
    if weight == "low_reject":
        w = np.minimum(1.0, c / kv[s])
    else:
        w = c / float(n0)
    names = [counts.states[i] for i in np.flatnonzero(keep)]
    return Graph(
        names=names, visits=kv, src=s.astype(np.int64), dst=d.astype(np.int64), n=c, w=w.astype(float),
        weight=weight, n0=float(n0), min_visits=min_visits, escapes=escapes, n_samples=total, n_states_all=int(appearing.sum()),
    )
