"""Peer cross-check: the least-action potentials agree with deeptime's reversible maximum-likelihood MSM
(V = -log pi) within the bootstrap error, on synthetic detailed-balance data and on the shipped Claude-4 table."""
import numpy as np
import pytest

from potsearch.science.action import fit_exact
from potsearch.science.graph import build_graph
from potsearch.science.synthetic import metropolis_chain
from potsearch.science.uncertainty import bootstrap_stderr
from potsearch.stages.fit import FitOptions

from deeptime.markov import msm  # a test dependency (pyproject.toml: test extra), never a runtime one


def _msm_potential(counts, names):
    """-log pi of the reversible MLE MSM on the count matrix (moves and self-loops; escapes left out)."""
    idx = {s: i for i, s in enumerate(names)}
    C = np.zeros((len(names), len(names)))
    for s, d, c in zip(counts.src, counts.dst, counts.count):
        if d >= 0 and counts.states[s] in idx and counts.states[d] in idx:
            C[idx[counts.states[s]], idx[counts.states[d]]] += c
    m = msm.MaximumLikelihoodMSM(reversible=True).fit_fetch(C)
    pi = np.zeros(len(names))
    pi[m.state_symbols()] = m.stationary_distribution
    with np.errstate(divide="ignore"):
        return -np.log(pi)


def _agree(counts, B=60, escapes="count"):
    g = build_graph(counts, escapes=escapes)
    r = fit_exact(g)
    se = bootstrap_stderr(counts, g, r, FitOptions(escapes=escapes), B, seed=0)
    v_msm = _msm_potential(counts, g.names)
    ok = ~r.unbounded & np.isfinite(v_msm) & np.isfinite(se)
    d = (r.potential - v_msm)[ok]
    d -= np.median(d)
    return np.abs(d) / np.sqrt(2 * se[ok] ** 2 + 1e-12), ok.sum()


def test_synthetic_potentials_match_the_reversible_msm():
    ch = metropolis_chain(n_states=50, seed=4, samples_per_state=800)
    z, n = _agree(ch.counts)
    assert n >= 45 and np.mean(z <= 3) >= 0.95


def test_claude4_table_matches_the_reversible_msm(table2):
    """Escapes conditioned out: the MSM sees valid moves only, as the condition convention does."""
    from potsearch.collector.io import read_counts

    z, n = _agree(read_counts(table2), B=100, escapes="condition")
    assert n >= 2 and np.all(z <= 3)
