"""A small surrogate-like scoring problem with a known law (in memory, no store): word features of
real words, Metropolis counts from ``potsearch.science.synthetic.metropolis_chain``, split per sample."""
from __future__ import annotations

import numpy as np

_CACHE: dict = {}


def word_problem(formula: str = "1.6*length - 2.4*zipf", n_words: int = 300, per_state: int = 60, seed: int = 0):
    """(ScoringData, hidden V) for ``formula`` over the evolve word features."""
    key = (formula, n_words, per_state, seed)
    if key in _CACHE:
        return _CACHE[key]
    from potsearch.law.scoring import Edges, ScoringData, likelihood_scale
    from potsearch.testing.surrogate_run import load_words
    from potsearch.law.features import feature_table
    from potsearch.science.synthetic import metropolis_chain

    rng = np.random.default_rng(seed)
    words = sorted(rng.choice(load_words(), n_words, replace=False).tolist())
    x = feature_table("word", words)
    V = np.asarray(eval(formula, {"np": np, "__builtins__": {}}, dict(x)), dtype=float)  # test formula
    c = metropolis_chain(n_states=n_words, degree=8, samples_per_state=per_state, V=V, names=words, seed=seed).counts
    src, dst, cnt = c.src, c.dst, c.count.astype(np.int64)
    held = rng.binomial(cnt, 0.2)
    visits = np.bincount(src, weights=cnt, minlength=n_words)

    def edges(k):
        m = (dst >= 0) & (dst != src) & (k > 0)
        vis = np.bincount(src, weights=k, minlength=n_words)
        return Edges(src[m], dst[m], np.minimum(1.0, k[m] / np.maximum(vis[src[m]], 1)), n_words)

    tr = cnt - held
    m = (dst >= 0) & (dst != src) & (tr > 0)
    mh = (dst >= 0) & (dst != src) & (held > 0)
    data = ScoringData(features=x, n_states=n_words, train=edges(tr), heldout=edges(held),
                       **likelihood_scale(n_words, tr[m], edges(tr).w),
                       heldout_nats_per_action=likelihood_scale(n_words, held[mh], edges(held).w)["nats_per_action"])
    _CACHE[key] = (data, V, visits)
    return _CACHE[key]
