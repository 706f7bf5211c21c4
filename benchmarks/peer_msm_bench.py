"""Least-action fit against deeptime's reversible maximum-likelihood MSM (V = -log pi) on the same counts.

For synthetic detailed-balance data with a known potential (science/synthetic.py: four graph families
with heavy-tailed visit counts, and an evenly sampled Metropolis chain), both estimators fit the same
counts; each is timed (best of 3, count matrix / graph construction included) and scored against the
hidden V on the states both estimate finitely: RMS error of the centred potentials and Spearman.
The least-action fit keeps escapes out of N(f) here (there are none) and reads self-loops as samples,
as the MSM does. deeptime is a test/benchmark dependency, not a runtime one.

Usage: python benchmarks/peer_msm_bench.py [--states 2000] [--samples 60000]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy import sparse as sp
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402


def best_of(fn, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def least_action(counts):
    from potsearch.science.action import fit_exact
    from potsearch.science.graph import build_graph

    g = build_graph(counts, min_visits=0)
    r = fit_exact(g)
    idx = {s: i for i, s in enumerate(counts.states)}
    V = np.full(len(counts.states), np.nan)
    pos = np.array([idx[s] for s in g.names])
    # the largest SCC's states, by their potentials relative to each other (scc_potential: finite inside an
    # SCC even when the SCC is upstream of others); potentials of different SCCs are not comparable
    V[pos] = r.scc_potential
    big = np.bincount(r.scc).argmax()
    V[pos[r.scc != big]] = np.nan
    return V


def msm_potential(counts):
    from deeptime.markov.msm import MaximumLikelihoodMSM

    n = len(counts.states)
    ok = counts.dst >= 0
    C = sp.coo_matrix((counts.count[ok].astype(float), (counts.src[ok], counts.dst[ok])), shape=(n, n)).toarray()
    m = MaximumLikelihoodMSM(reversible=True).fit_fetch(C)
    V = np.full(n, np.nan)
    V[m.state_symbols()] = -np.log(m.stationary_distribution)
    return V


def score(V, truth):
    ok = np.isfinite(V)
    d = V[ok] - truth[ok]
    return {"states": int(ok.sum()), "rms": float(np.sqrt(np.mean((d - d.mean()) ** 2))),
            "spearman": float(spearmanr(V[ok], truth[ok])[0])}


def main() -> None:
    from potsearch.science.synthetic import family_counts, metropolis_chain

    ap = argparse.ArgumentParser()
    ap.add_argument("--states", type=int, default=2000)
    ap.add_argument("--samples", type=int, default=60000)
    a = ap.parse_args()
    cases = [(fam, *family_counts(fam, n_states=a.states, n_samples=a.samples, seed=1))
             for fam in ("random", "geometric", "chain_tree", "hub")]
    ch = metropolis_chain(n_states=a.states // 4, samples_per_state=max(1, 4 * a.samples // a.states), seed=2)
    cases.append(("metropolis", ch.counts, ch.V))
    for fam, counts, truth in cases:
        t_ours, V_ours = best_of(lambda: least_action(counts))
        t_msm, V_msm = best_of(lambda: msm_potential(counts))
        both = np.isfinite(V_ours) & np.isfinite(V_msm)
        so, sm = score(np.where(both, V_ours, np.nan), truth), score(np.where(both, V_msm, np.nan), truth)
        print(f"{fam}: {len(counts.states)} states, {int(counts.count.sum())} samples, {so['states']} compared; "
              f"least action {t_ours:.3f} s, RMS {so['rms']:.4f}, Spearman {so['spearman']:.4f}; reversible MSM "
              f"{t_msm:.3f} s, RMS {sm['rms']:.4f}, Spearman {sm['spearman']:.4f}; time ratio MSM/ours "
              f"{t_msm / t_ours:.1f}x; load {os.getloadavg()[0]:.1f}")
        emit("peer-msm", f"least action vs reversible MSM ({fam}): time", t_ours, t_msm, t_msm / t_ours,
             "accuracy within 10% of the MSM's", so["rms"] <= 1.1 * sm["rms"], "s")


if __name__ == "__main__":
    main()
