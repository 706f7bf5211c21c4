"""Synthetic agents with a known potential, for calibration and tests.

``metropolis_chain`` builds an agent that obeys detailed balance by construction:
states on a random undirected neighbour graph, a symmetric proposal (each neighbour
with probability 1/D, D = max degree; otherwise stay), Metropolis acceptance
min(1, exp(V_f - V_g)) — so T(f->g)/T(g->f) = exp(V_f - V_g) exactly. A uniform
escape probability leaves every ratio unchanged.

``drift`` breaks detailed balance on purpose: each undirected edge {f, g} gets an
orientation (from the lower to the higher index modulo a random cyclic order) and
its forward kernel is multiplied by exp(+drift/2), its backward by exp(-drift/2)
(rejections absorb the change). A loop's Kolmogorov sum then differs from zero by
drift × (net orientation of the loop).

Every sample is drawn per state (the paper's word-data protocol): state f is
sampled ``samples_per_state`` times and its outcomes are multinomial.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from potsearch.store import ESCAPE, Counts


@dataclass
class SyntheticChain:
    counts: Counts
    V: np.ndarray           # hidden potential per state (same order as counts.states)
    edges: np.ndarray       # undirected neighbour pairs (i < j)
    drift: float
    meta: dict

    def true_potential(self) -> dict[str, float]:
        return dict(zip(self.counts.states, self.V))


def _neighbour_graph(n: int, degree: int, rng: np.random.Generator) -> np.ndarray:
    """A connected random undirected graph: a ring plus random chords, ~degree per node."""
    ring = np.stack([np.arange(n), (np.arange(n) + 1) % n], axis=1)
    extra = max(0, n * degree // 2 - n)
    a = rng.integers(0, n, extra)
    b = rng.integers(0, n, extra)
    pairs = np.concatenate([ring, np.stack([a, b], axis=1)])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0)


def multinomial_rows(rows: np.ndarray, p: np.ndarray, totals: np.ndarray, mass: np.ndarray,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw, for every row r (``rows`` sorted), a multinomial of ``totals[r]`` trials over the outcomes of
    that row with probabilities ``p / mass[r]``. Vectorised as conditional binomials, one pass per outcome
    column. Returns the draw per outcome and what is left per row (the mass not covered by ``p``)."""
    n = len(totals)
    remaining = totals.astype(np.int64).copy()
    mass = mass.astype(float).copy()
    out = np.zeros(len(rows), dtype=np.int64)
    starts = np.searchsorted(rows, np.arange(n))
    k_in = np.arange(len(rows)) - starts[rows]
    for k in range(int(k_in.max()) + 1 if len(rows) else 0):
        sel = np.flatnonzero(k_in == k)
        r = rows[sel]
        prob = np.clip(p[sel] / np.maximum(mass[r], 1e-300), 0.0, 1.0)
        draw = rng.binomial(remaining[r], prob)
        out[sel] = draw
        remaining[r] -= draw
        mass[r] -= p[sel]
    return out, remaining


def metropolis_chain(
    n_states: int = 100, degree: int = 6, samples_per_state: int = 500, sigma: float = 1.0,
    escape: float = 0.0, drift: float = 0.0, seed: int = 0, V: np.ndarray | None = None,
    names: list[str] | None = None, edges: np.ndarray | None = None,
) -> SyntheticChain:
    rng = np.random.default_rng(seed)
    n = n_states
    if V is None:
        V = rng.normal(0.0, sigma, n)
    V = np.asarray(V, dtype=float)
    if edges is None:
        edges = _neighbour_graph(n, degree, rng)
    edges = np.asarray(edges, dtype=np.int64)
    deg = np.bincount(edges.ravel(), minlength=n)
    D = max(int(deg.max()), 1)
    # directed moves: both orientations of every undirected edge
    f = np.concatenate([edges[:, 0], edges[:, 1]])
    g = np.concatenate([edges[:, 1], edges[:, 0]])
    p = np.minimum(1.0, np.exp(V[f] - V[g])) / D
    if drift:
        order = rng.permutation(n)
        forward = ((order[g] - order[f]) % n) < n / 2
        p = p * np.where(forward, np.exp(drift / 2), np.exp(-drift / 2))
        # keep every state's outgoing probability <= 1
        out = np.bincount(f, weights=p, minlength=n)
        scale = np.maximum(1.0, out)
        p = p / scale[f]
    p = p * (1.0 - escape)
    stay = 1.0 - escape - np.bincount(f, weights=p, minlength=n)
    stay = np.clip(stay, 0.0, None)
    # per-state multinomial draws, vectorised (conditional binomials, one pass per outcome column)
    order = np.argsort(f, kind="stable")
    f, g, p = f[order], g[order], p[order]
    counts_move, remaining = multinomial_rows(f, p, np.full(n, samples_per_state, dtype=np.int64),
                                              np.ones(n), rng)
    # what is left is split between escape and stay
    pe = escape / np.maximum(escape + stay, 1e-300)
    n_escape = rng.binomial(remaining, np.clip(pe, 0, 1)) if escape > 0 else np.zeros(n, dtype=np.int64)
    n_stay = remaining - n_escape
    src = np.concatenate([f, np.arange(n), np.arange(n)])
    dst = np.concatenate([g, np.arange(n), np.full(n, ESCAPE)])
    cnt = np.concatenate([counts_move, n_stay, n_escape])
    keep = cnt > 0
    names = names or [f"S{i:05d}" for i in range(n)]
    counts = Counts(list(names), src[keep], dst[keep], cnt[keep],
                    meta={"synthetic": True, "drift": drift, "seed": seed})
    return SyntheticChain(counts, V, edges, drift,
                          {"n_states": n, "degree": degree, "samples_per_state": samples_per_state,
                           "sigma": sigma, "escape": escape, "drift": drift, "seed": seed})


def paper_size_counts(
    n_states: int = 7484, n_edges: int = 21697, n_samples: int = 50228, sigma: float = 2.0,
    zipf: float = 1.3, seed: int = 0,
) -> tuple[Counts, np.ndarray]:
    """A graph of the paper's Table 3 size (fitter agent): exactly ``n_samples`` samples over exactly
    ``n_edges`` unique transitions among ``n_states`` states. Sources are drawn with a heavy tail (a few
    states sampled often, most once), moves favour lower hidden potential. For benchmarks."""
    rng = np.random.default_rng(seed)
    V = rng.normal(0.0, sigma, n_states)
    pop = 1.0 / np.arange(1, n_states + 1) ** zipf
    pop = rng.permutation(pop / pop.sum())
    seen: set[tuple[int, int]] = set()
    src_l, dst_l = [], []
    while len(src_l) < n_edges:
        m = (n_edges - len(src_l)) * 2
        s = rng.choice(n_states, m, p=pop)
        d = rng.choice(n_states, m, p=pop)
        acc = rng.random(m) < np.minimum(1.0, np.exp(V[s] - V[d]))
        for a, b in zip(s[acc], d[acc]):
            if a != b and (a, b) not in seen:
                seen.add((a, b))
                src_l.append(a)
                dst_l.append(b)
                if len(src_l) == n_edges:
                    break
    src = np.array(src_l, dtype=np.int64)
    dst = np.array(dst_l, dtype=np.int64)
    weight = pop[src] * np.minimum(1.0, np.exp(V[src] - V[dst]))
    extra = rng.multinomial(n_samples - n_edges, weight / weight.sum())
    cnt = 1 + extra
    counts = Counts([f"E{i:06d}" for i in range(n_states)], src, dst, cnt.astype(np.int64),
                    meta={"synthetic": "paper-size"})
    return counts, V


def large_counts(n_states: int = 1_000_000, n_samples: int = 10_000_000, degree: int = 8,
                 sigma: float = 1.5, seed: int = 0) -> tuple[Counts, np.ndarray]:
    """~n_samples samples over n_states states on a random neighbour graph (vectorised), for the
    scale benchmark: each sample picks a source uniformly, a neighbour slot, and Metropolis acceptance."""
    rng = np.random.default_rng(seed)
    V = rng.normal(0.0, sigma, n_states)
    nb = rng.integers(0, n_states, (n_states, degree))
    s = rng.integers(0, n_states, n_samples)
    d = nb[s, rng.integers(0, degree, n_samples)]
    acc = rng.random(n_samples) < np.minimum(1.0, np.exp(V[s] - V[d]))
    d = np.where(acc, d, s)
    key = s * n_states + d
    uniq, cnt = np.unique(key, return_counts=True)
    counts = Counts([f"L{i}" for i in range(n_states)], uniq // n_states, uniq % n_states,
                    cnt.astype(np.int64), meta={"synthetic": "large"})
    return counts, V


# ----------------------------------------------------------------------------- graph families
FAMILIES = ("random", "geometric", "chain_tree", "hub")


def family_edges(family: str, n: int, rng: np.random.Generator, degree: int = 6) -> np.ndarray:
    """Undirected neighbour pairs (i < j) of one graph family on n states:

    * ``random``: a ring plus random chords (an expander-like graph, well conditioned);
    * ``geometric``: points in the unit square, each joined to its ``degree`` nearest neighbours (local moves,
      the way an agent makes small edits; a badly conditioned Laplacian);
    * ``chain_tree``: a random tree of long chains (each state's parent is a few states back) — with the
      heavy-tailed sampling of :func:`family_counts` most leaves are reached once and never sampled;
    * ``hub``: hub-and-spoke — ~sqrt(n) hubs joined in a ring, every other state joined to one or two hubs.
    """
    if family == "random":
        pairs = _neighbour_graph(n, degree, rng)
        return pairs
    if family == "geometric":
        from scipy.spatial import cKDTree

        pts = rng.random((n, 2))
        _, nb = cKDTree(pts).query(pts, k=min(degree, n - 1) + 1)
        a = np.repeat(np.arange(n), nb.shape[1] - 1)
        pairs = np.stack([a, nb[:, 1:].ravel()], axis=1)
    elif family == "chain_tree":
        i = np.arange(1, n)
        parent = np.maximum(0, i - rng.geometric(0.3, n - 1))
        pairs = np.stack([i, parent], axis=1)
    elif family == "hub":
        h = max(2, int(np.sqrt(n)))
        ring = np.stack([np.arange(h), (np.arange(h) + 1) % h], axis=1)
        spokes = np.arange(h, n)
        one = np.stack([spokes, rng.integers(0, h, len(spokes))], axis=1)
        second = spokes[rng.random(len(spokes)) < 0.3]
        two = np.stack([second, rng.integers(0, h, len(second))], axis=1)
        pairs = np.concatenate([ring, one, two])
    else:
        raise ValueError(f"unknown graph family {family!r} (choose from {', '.join(FAMILIES)})")
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    return np.unique(np.sort(pairs, axis=1), axis=0)


def family_counts(family: str, n_states: int = 7484, n_samples: int = 50_000, sigma: float = 0.7,
                  zipf: float = 0.5, seed: int = 0, degree: int = 6) -> tuple[Counts, np.ndarray]:
    """~n_samples samples over n_states states on one graph family (:func:`family_edges`), vectorised:
    each sample picks a source with a popularity proportional to its degree times a heavy-tailed factor
    (Zipf exponent ``zipf``, random order; 0 = uniform), a uniform neighbour, and Metropolis acceptance
    (a rejection is a self-loop)."""
    rng = np.random.default_rng(seed)
    V = rng.normal(0.0, sigma, n_states)
    edges = family_edges(family, n_states, rng, degree)
    f = np.concatenate([edges[:, 0], edges[:, 1]])
    g = np.concatenate([edges[:, 1], edges[:, 0]])
    order = np.argsort(f, kind="stable")
    f, g = f[order], g[order]
    indptr = np.searchsorted(f, np.arange(n_states + 1))
    deg = np.diff(indptr)
    pop = 1.0 / np.arange(1, n_states + 1) ** zipf
    pop = rng.permutation(pop / pop.sum())
    pop = pop * deg
    s = rng.choice(n_states, n_samples, p=pop / pop.sum())
    d = g[indptr[s] + (rng.random(n_samples) * deg[s]).astype(np.int64)]
    acc = rng.random(n_samples) < np.minimum(1.0, np.exp(V[s] - V[d]))
    d = np.where(acc, d, s)
    uniq, cnt = np.unique(s.astype(np.int64) * n_states + d, return_counts=True)
    counts = Counts([f"{family[0].upper()}{i}" for i in range(n_states)], uniq // n_states, uniq % n_states,
                    cnt.astype(np.int64), meta={"synthetic": family, "seed": seed})
    return counts, V
