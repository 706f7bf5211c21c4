"""Adaptive vs uniform (per_state) collection on simulated agents: calls needed to reach a target.

The agent is simulated directly (no Ray, no collector): a per-state sampler draws each sample of state f from a
known kernel — a move to a neighbour g (a rejection is a self-loop) or an escape with probability escape_f.
Moves obey detailed balance w.r.t. a hidden potential V ~ N(0, 1) whatever the per-state rates:
T(f->g) = min(kappa_f, kappa_g e^(V_f - V_g)), kappa_f = (1 - escape_f) mobility_f / degree_f (plain Metropolis
times (1 - escape_f) would shift the potential the fit recovers by log(1 - escape_f), as N(f) counts escapes).
Landscapes (n states, all known from the start):

* ``uniform``:  a random symmetric neighbour graph, no escapes, mobility 1 (every state alike);
* ``escape``:   the same graph, escape rates with a heavy tail (keep = 1 - escape = 10^(-1.3 u^3), u ~ U(0,1):
                most states keep ~all samples, the last decile keeps 5-11 %);   <- the TUNING family
* ``oneway``:   25 % of the states only propose moves into the rest and are never proposed back (one-way
                states: an exclusion bound only), escapes U(0, 0.5), V ~ N(0, 1.5);   <- held out
* ``mobility``: a hub-and-spoke graph, very different escape rates (U(0, 0.6)) and mobilities (a heavy tail of
                states that mostly stay: 10^(-u^2));   <- held out

Both methods share round 0 (``k0`` samples a state); then rounds of R = k x n samples: per_state gives every
state k, adaptive gives at most R by :func:`potsearch.science.allocation.allocate`. After each round both are
judged by the same rule (``allocate``'s stopping rule). Reported per landscape and seed: calls to reach the SE
target; calls to first reach rho* (Spearman of the largest SCC's potentials against the hidden V), rho* = the
lower of the two runs' Spearman at their stop - 0.005, a level both reach; the ratios; and the RMS error
against the truth at each run's stop. ``--compare-criteria`` runs "sum" and "max" on the tuning family only.

    python benchmarks/adaptive_bench.py [--n 120] [--seeds 3] [--target 0.3] [--criterion sum|max] [--spread S]
    python benchmarks/adaptive_bench.py --compare-criteria [--spread S]   # the tuning family only
    python benchmarks/adaptive_bench.py --timing        # one allocation at 10^3 / 10^4 / 10^5 states
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from scipy.stats import spearmanr

from potsearch.science.action import fit_exact
from potsearch.science.allocation import AllocationConfig, allocate
from potsearch.science.graph import build_graph
from potsearch.science.synthetic import _neighbour_graph, family_edges
from potsearch.store import ESCAPE, Counts

FAMILIES = ("uniform", "escape", "oneway", "mobility")
TUNING = "escape"


class Landscape:
    """Outcome probabilities per state: columns 0..n-1 = next state (diagonal = stay), column n = escape."""

    def __init__(self, family: str, n: int, seed: int, sigma: float = 1.0):
        rng = np.random.default_rng([seed, FAMILIES.index(family)])
        self.family, self.n = family, n
        V = rng.normal(0.0, sigma, n)
        escape, mobility = np.zeros(n), np.ones(n)
        if family == "mobility":
            und = family_edges("hub", n, rng)
        else:
            und = _neighbour_graph(n, 6, rng)
        f = np.concatenate([und[:, 0], und[:, 1]])
        g = np.concatenate([und[:, 1], und[:, 0]])
        if family == "oneway":
            one = rng.random(n) < 0.25
            core = np.flatnonzero(~one)
            keep = ~one[f] & ~one[g]
            f, g = f[keep], g[keep]
            src = np.repeat(np.flatnonzero(one), 3)
            f, g = np.concatenate([f, src]), np.concatenate([g, rng.choice(core, len(src))])
            escape = rng.uniform(0.0, 0.5, n)
            V = rng.normal(0.0, 1.5, n)
        elif family == "escape":
            escape = 1.0 - 10 ** (-1.3 * rng.random(n) ** 3)
        elif family == "mobility":
            escape = rng.uniform(0.0, 0.6, n)
            mobility = 10 ** (-1.0 * rng.random(n) ** 2)
        pairs = np.unique(np.stack([f, g], axis=1), axis=0)
        f, g = pairs[:, 0], pairs[:, 1]
        deg = np.bincount(f, minlength=n)
        kappa = (1.0 - escape) * mobility / np.maximum(deg, 1)    # detailed balance w.r.t. V whatever the
        P = np.zeros((n, n + 1))                                  # rates: T(f->g) = min(k_f, k_g e^(V_f-V_g))
        back = np.zeros(len(f), dtype=bool) if family != "oneway" else one[f]
        P[f, g] = np.minimum(kappa[f], np.where(back, 1.0 / 3, kappa[g]) * np.exp(V[f] - V[g]))
        P[:, n] = escape
        P[np.arange(n), np.arange(n)] = 1.0 - P.sum(axis=1)
        self.P, self.V = P, V
        self.names = [f"{family[0]}{i:04d}" for i in range(n)]

    def draw(self, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Outcome counts (n x n+1) of k[f] samples of each state f."""
        return rng.multinomial(k, self.P)

    def counts(self, C: np.ndarray) -> Counts:
        s, d = np.nonzero(C)
        dst = np.where(d == self.n, ESCAPE, d)
        return Counts(self.names, s.astype(np.int64), dst.astype(np.int64), C[s, d].astype(np.int64))


def judge(land: Landscape, C: np.ndarray, config: AllocationConfig, budget: int, seed: int):
    counts = land.counts(C)
    g = build_graph(counts, min_visits=config.min_visits)
    fit = fit_exact(g)
    a = allocate(counts, budget, config, seed=seed, fit=fit, graph=g)
    sizes = np.bincount(fit.scc)
    big = fit.scc == sizes.argmax()
    at = {s: i for i, s in enumerate(land.names)}
    idx = np.array([at[s] for s in g.names])[big]
    u = fit.scc_potential[big]
    rho = float(spearmanr(u, land.V[idx]).statistic)
    err = u - land.V[idx]
    rms = float(np.sqrt(np.mean((err - err.mean()) ** 2)))
    return a, rho, rms


def run(land: Landscape, method: str, config: AllocationConfig, k0: int, k: int, seed: int, max_calls: int):
    """One collection until the stopping rule holds (or max_calls): the trajectory (calls, rho) per round and
    the state at the stop."""
    rng = np.random.default_rng([seed, 7])
    C = land.draw(np.full(land.n, k0), rng)
    budget = k * land.n
    calls, traj = int(C.sum()), []
    while True:
        a, rho, rms = judge(land, C, config, budget, seed)
        traj.append((calls, rho))
        want = a.samples if method == "adaptive" else np.full(land.n, k)
        if a.done or calls >= max_calls or want.sum() == 0:
            break
        C += land.draw(want, rng)
        calls += int(want.sum())
    return {"calls": calls if a.done else None, "rho": rho, "rms": rms, "traj": traj, "max_se": a.max_se,
            "one_way": int((a.kind == 1).sum())}


def first(traj, rho_target):
    return next((c for c, r in traj if r >= rho_target), None)


def compare(family: str, n: int, seed: int, config: AllocationConfig, k0: int, k: int, max_per_state: int):
    land = Landscape(family, n, seed)
    uni = run(land, "per_state", config, k0, k, seed, max_per_state * n)
    ada = run(land, "adaptive", config, k0, k, seed, max_per_state * n)
    target = min(uni["rho"], ada["rho"]) - 0.005       # a Spearman both runs reach
    return uni, first(uni["traj"], target), ada, first(ada["traj"], target), target


def fmt(x):
    return f"{x:>8d}" if isinstance(x, int) else f"{'never':>8}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=120)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--target", type=float, default=0.3)
    ap.add_argument("--k0", type=int, default=10, help="round 0: samples a state (shared)")
    ap.add_argument("--k", type=int, default=25, help="round size: k x n samples")
    ap.add_argument("--max-per-state", type=int, default=3000)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--criterion", default=AllocationConfig().criterion)
    ap.add_argument("--spread", type=float, default=AllocationConfig().spread)
    ap.add_argument("--compare-criteria", action="store_true", help="sum vs max on the tuning family only")
    ap.add_argument("--timing", action="store_true")
    args = ap.parse_args(argv)
    if args.timing:
        return timing()
    config = AllocationConfig(target_se=args.target, criterion=args.criterion, spread=args.spread)
    families = args.families.split(",")
    if args.compare_criteria:
        families = [TUNING]
    print(f"n={args.n} target SE={args.target} round={args.k}x n, round 0={args.k0} a state, "
          f"criterion={config.criterion}, spread={config.spread}, discovery={config.discovery}; tuning family: {TUNING}")
    print(f"{'landscape':<10}{'seed':>5}{'crit':>5} | {'per_state':>9}{'adaptive':>9}{'ratio':>7} | "
          f"{'rho*':>6}{'uni@rho':>8}{'ada@rho':>8}{'ratio':>7} | {'rms uni':>8}{'rms ada':>8} | one-way")
    crits = ("sum", "max") if args.compare_criteria else (config.criterion,)
    ratios: dict = {}
    for fam in families:
        for seed in range(args.seeds):
            for crit in crits:
                cfg = replace(config, criterion=crit)
                uni, uni_rho, ada, ada_rho, rho_t = compare(fam, args.n, seed, cfg, args.k0, args.k, args.max_per_state)
                r = (uni["calls"] or args.max_per_state * args.n) / ada["calls"] if ada["calls"] else float("nan")
                low = ">" if uni["calls"] is None and ada["calls"] else " "
                rr = uni_rho / ada_rho if uni_rho and ada_rho else float("nan")
                ratios.setdefault((fam, crit), []).append((r, rr))
                print(f"{fam:<10}{seed:>5}{crit:>5} | {fmt(uni['calls']):>9}{fmt(ada['calls']):>9}{low}{r:>6.2f} | "
                      f"{rho_t:>6.3f}{fmt(uni_rho)}{fmt(ada_rho)}{rr:>7.2f} | "
                      f"{uni['rms']:>8.3f}{ada['rms']:>8.3f} | {ada['one_way']}", flush=True)
    print("\nsummary (calls per_state / calls adaptive; SE target (a lower bound where per_state never reached "
          "it), Spearman target):")
    for (fam, crit), rs in ratios.items():
        a = np.array(rs)
        tag = "tuning" if fam == TUNING else "held out"
        print(f"  {fam:<10}{crit:>5} ({tag}): SE x{np.nanmin(a[:, 0]):.2f}..{np.nanmax(a[:, 0]):.2f} "
              f"(geo-mean {np.exp(np.nanmean(np.log(a[:, 0]))):.2f}), Spearman x{np.nanmin(a[:, 1]):.2f}.."
              f"{np.nanmax(a[:, 1]):.2f}")
    return 0


def timing() -> int:
    """Seconds of one allocation (fit given) at 10^3, 10^4, 10^5 states on a random neighbour graph."""
    from potsearch.science.synthetic import metropolis_chain

    for n in (1_000, 10_000, 100_000):
        ch = metropolis_chain(n_states=n, degree=6, samples_per_state=50, escape=0.2, seed=0)
        g = build_graph(ch.counts)
        t0 = time.perf_counter()
        fit = fit_exact(g)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        a = allocate(ch.counts, 10 * n, AllocationConfig(target_se=0.1), fit=fit, graph=g)
        t = time.perf_counter() - t0
        path = "exact" if n <= AllocationConfig().exact_limit else f"{AllocationConfig().probes} probes"
        print(f"{n:>7} states: allocation {t:7.2f} s ({path}), the fit itself {t_fit:6.2f} s, "
              f"max SE {a.max_se:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
