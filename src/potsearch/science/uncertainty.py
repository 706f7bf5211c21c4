"""Bootstrap standard errors of the fitted potentials.

Each replicate resamples every state's samples (multinomial with that state's N(f)
and its observed outcome frequencies, escapes and self-loops included), rebuilds
the graph with the same options (N(f) is preserved, so the same states are kept)
and refits exactly. A state's error is the spread of V_f - V_ref over replicates,
where ref is the state its SCC's gauge puts at 0 in the original fit; replicates in
which f and ref fell into different SCCs (a rare edge vanished) are left out of
that state's estimate.
"""
from __future__ import annotations

import numpy as np

from potsearch.science.action import FitResult, fit_exact, make_kernel
from potsearch.science.graph import Graph, build_graph
from potsearch.store import Counts
from potsearch.science.synthetic import multinomial_rows


def resample_counts(counts: Counts, rng: np.random.Generator) -> Counts:
    order = np.argsort(counts.src, kind="stable")
    src, dst, cnt = counts.src[order], counts.dst[order], counts.count[order]
    n = len(counts.states)
    totals = np.bincount(src, weights=cnt, minlength=n).astype(np.int64)
    new, _ = multinomial_rows(src, cnt.astype(float), totals, totals.astype(float), rng)
    return Counts(counts.states, src, dst, new, meta=dict(counts.meta))


def bootstrap_stderr(counts: Counts, g: Graph, res: FitResult, opts, B: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    kernel = make_kernel(opts.kernel, opts.beta)
    # the gauge state of each original SCC: where scc_potential == 0
    ref = np.full(res.n_sccs, -1)
    zero = np.flatnonzero(res.scc_potential == 0.0)
    ref[res.scc[zero]] = zero
    ref_of = ref[res.scc]
    diffs = np.full((B, g.n_states), np.nan)
    for b in range(B):
        gb = build_graph(resample_counts(counts, rng), weight=g.weight, n0=g.n0, min_visits=g.min_visits,
                         escapes=g.escapes)
        if gb.names != g.names:  # cannot happen (N(f) preserved); guard anyway
            continue
        rb = fit_exact(gb, kernel)
        same = rb.scc == rb.scc[ref_of]
        d = rb.scc_potential - rb.scc_potential[ref_of]
        diffs[b] = np.where(same, d, np.nan)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(diffs).sum(axis=0)
        se = np.nanstd(diffs, axis=0, ddof=1) if B > 1 else np.full(g.n_states, np.nan)
    se = np.where((valid >= 2) & ~res.unbounded, se, np.nan)
    return se
