"""Adaptive vs uniform (per_state) collection on simulated agents: calls needed to reach a target.

The agent is simulated directly (no Ray, no collector): a per-state sampler draws each sample of state f from a
known kernel — a move to a neighbour g (a rejection is a self-loop) or an escape with probability escape_f.
Moves obey detailed balance w.r.t. a hidden potential V ~ N(0, 1) whatever the per-state rates:
T(f->g) = min(kappa_f, kappa_g e^(V_f - V_g)), kappa_f = (1 - escape_f) mobility_f / degree_f (plain Metropolis
times (1 - escape_f) would shift the potential the fit recovers by log(1 - escape_f), as N(f) counts escapes).
Landscapes (n states, all known from the start):

* ``uniform``:  a random symmetric neighbour graph, no escapes, mobility 1 (every state alike);
* ``escape``:   the same graph, escape rates with a heavy tail (keep = 1 - escape = 10^(-1.3 u^3), u ~ U(0,1):
                most states keep ~all samples, the last decile keeps 5-11 %);   <- the criterion's TUNING family
* ``oneway``:   25 % of the states only propose moves into the rest and are never proposed back (one-way
                states: an exclusion bound only), escapes U(0, 0.5), V ~ N(0, 1.5);
* ``mobility``: a hub-and-spoke graph, very different escape rates (U(0, 0.6)) and mobilities (a heavy tail of
                states that mostly stay: 10^(-u^2));
* ``rare``:     exponential potentials (scale 1.5: a long tail of states rarely entered), escapes U(0, 0.3);
* ``smollm2``:  the largest SCC of data/smollm2_word_demo.csv (this project's own SmolLM2 word collection):
                its fitted potentials, its observed pairs and each state's observed share of samples that
                moved (no escapes); the seed changes the samples only.
(the criterion was chosen on ``escape``, the met states' weight ``bulk`` on the first four; ``rare`` and
``smollm2`` were added after both: HELD_OUT.)

Both methods share round 0 (``k0`` samples a state); then rounds of R = k x n samples: per_state gives every
state k, adaptive gives at most R by :func:`potsearch.science.allocation.allocate`. After each round both are
judged by the same rule (``allocate``'s stopping rule). Reported per landscape and seed: calls to reach the SE
target; calls to first reach rho* (Spearman of the largest SCC's potentials against the hidden V), rho* = the
lower of the two runs' Spearman at their stop - 0.005, a level both reach; the ratios; drho@= (adaptive's
Spearman at its stop minus per_state's at the same calls, linear between its rounds); the bound (the most any
reallocation of per_state's final calls could lower the sum of the fitted states' variances, to first order:
sum_f c_f/N_f against (sum_f sqrt c_f)^2 / sum_f N_f); and the RMS error against the truth at each run's stop.
``--budget K``: a fixed budget of K samples a state on average, both methods spend it all (adaptive is told
what is left: the allocation's triage); reported: the fitted states within the SE target at the end, and how
many of those really are within 2 x target of the truth. ``--compare-criteria`` runs "sum" and "max" on the
tuning family only.

    python benchmarks/adaptive_bench.py [--n 120] [--seeds 3] [--target 0.3] [--criterion sum|max] [--bulk B]
    python benchmarks/adaptive_bench.py --budget 40 --k0 10 --k 5     # states within the target at a budget
    python benchmarks/adaptive_bench.py --compare-criteria [--spread S]   # the tuning family only
    python benchmarks/adaptive_bench.py --timing        # one allocation at 10^3 / 10^4 / 10^5 states
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from dataclasses import replace

import numpy as np
from scipy.stats import spearmanr

from potsearch.science.action import fit_exact
from potsearch.science.allocation import FITTED, AllocationConfig, allocate, state_errors
from potsearch.science.graph import build_graph
from potsearch.science.synthetic import _neighbour_graph, family_edges
from potsearch.store import ESCAPE, Counts

FAMILIES = ("uniform", "escape", "oneway", "mobility", "rare", "smollm2")
TUNING = "escape"
HELD_OUT = ("rare", "smollm2")
DATA = Path(__file__).resolve().parent.parent / "data" / "smollm2_word_demo.csv"


def smollm2_landscape() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The largest SCC of the shipped SmolLM2 word collection (data/smollm2_word_demo.csv): its fitted
    potentials, its observed pairs (both ways) and each state's observed share of samples that moved."""
    from potsearch.collector.io import read_rows, rows_to_counts

    counts = rows_to_counts(*read_rows(DATA))
    g = build_graph(counts)
    fit = fit_exact(g)
    big = np.flatnonzero(fit.scc == np.bincount(fit.scc).argmax())
    pos = np.full(g.n_states, -1)
    pos[big] = np.arange(len(big))
    inner = (pos[g.src] >= 0) & (pos[g.dst] >= 0)
    moved = np.bincount(pos[g.src[inner]], g.n[inner], len(big)) / g.visits[big]
    und = np.stack([pos[g.src[inner]], pos[g.dst[inner]]], axis=1)
    return fit.scc_potential[big], und, moved, np.zeros(len(big))


class Landscape:
    """Outcome probabilities per state: columns 0..n-1 = next state (diagonal = stay), column n = escape."""

    def __init__(self, family: str, n: int, seed: int, sigma: float = 1.0):
        rng = np.random.default_rng([seed, FAMILIES.index(family)])
        if family == "smollm2":
            V, und, mobility, escape = smollm2_landscape()
            n = len(V)
        else:
            V = rng.normal(0.0, sigma, n)
            escape, mobility = np.zeros(n), np.ones(n)
        self.family, self.n = family, n
        if family == "smollm2":
            pass
        elif family == "mobility":
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
        elif family == "rare":
            V = rng.exponential(1.5, n)          # a long tail of high potentials: states rarely entered
            escape = rng.uniform(0.0, 0.3, n)
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
        P[np.arange(n), np.arange(n)] = np.clip(1.0 - P.sum(axis=1), 0.0, None)
        self.P, self.V = P, V
        self.names = [f"{family[0]}{i:04d}" for i in range(n)]

    def draw(self, k: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Outcome counts (n x n+1) of k[f] samples of each state f."""
        return rng.multinomial(k, self.P)

    def counts(self, C: np.ndarray) -> Counts:
        s, d = np.nonzero(C)
        dst = np.where(d == self.n, ESCAPE, d)
        return Counts(self.names, s.astype(np.int64), dst.astype(np.int64), C[s, d].astype(np.int64))


def judge(land: Landscape, C: np.ndarray, config: AllocationConfig, budget: int, seed: int,
          remaining: int | None = None):
    counts = land.counts(C)
    g = build_graph(counts, min_visits=config.min_visits)
    fit = fit_exact(g)
    a = allocate(counts, budget, config, seed=seed, fit=fit, graph=g, remaining=remaining)
    sizes = np.bincount(fit.scc)
    big = fit.scc == sizes.argmax()
    at = {s: i for i, s in enumerate(land.names)}
    idx = np.array([at[s] for s in g.names])[big]
    u = fit.scc_potential[big]
    rho = float(spearmanr(u, land.V[idx]).statistic)
    err = u - land.V[idx]
    rms = float(np.sqrt(np.mean((err - err.mean()) ** 2)))
    # every fitted state's true error in the SE's gauge (V_f - the mean of its SCC), per land state
    true = np.full(land.n, np.nan)
    gi = np.array([at[s] for s in g.names])
    for c in np.unique(fit.scc[np.bincount(fit.scc)[fit.scc] >= 2]):
        m = fit.scc == c
        e = fit.scc_potential[m] - land.V[gi[m]]
        true[gi[m]] = e - e.mean()
    a.true_error = true
    return a, rho, rms


def run(land: Landscape, method: str, config: AllocationConfig, k0: int, k: int, seed: int, max_calls: int,
        fixed: bool = False):
    """One collection until the stopping rule holds (or max_calls): the trajectory (calls, rho) per round and
    the state at the stop. ``fixed``: a fixed budget of max_calls (adaptive is told what is left: triage),
    run to its end."""
    rng = np.random.default_rng([seed, 7])
    C = land.draw(np.full(land.n, k0), rng)
    calls, traj = int(C.sum()), []
    while True:
        budget = min(k * land.n, max_calls - calls) if fixed else k * land.n
        a, rho, rms = judge(land, C, config, budget, seed, remaining=max_calls - calls if fixed else None)
        traj.append((calls, rho))
        if method == "adaptive":
            want = a.samples
        else:                                            # k a state; a last partial round spread evenly
            want = np.full(land.n, budget // land.n)
            want[np.random.default_rng([seed, calls]).permutation(land.n)[: budget % land.n]] += 1
        if (a.done and not fixed) or calls >= max_calls or want.sum() == 0:
            break
        C += land.draw(want, rng)
        calls += int(want.sum())
    return {"calls": calls if a.done else None, "rho": rho, "rms": rms, "traj": traj, "max_se": a.max_se,
            "one_way": int((a.kind == 1).sum()), "within": int(((a.kind == 0) & a.met).sum()),
            "fitted": int((a.kind == 0).sum()), "spent": calls, "C": C,
            "covered": int((np.abs(a.true_error[(a.kind == 0) & a.met]) < 2 * config.target_se).sum())}


def saving_bound(land: Landscape, C: np.ndarray, config: AllocationConfig) -> float:
    """The most any reallocation of these calls can save on the sum of the fitted states' variances (first
    order): with c_f the variance one sample of f carries (omega = 1 on every fitted state), sum_f c_f / N_f
    at the calls made against (sum_f sqrt c_f)^2 / sum_f N_f, the A-optimal allocation's."""
    counts = land.counts(C)
    g = build_graph(counts, min_visits=config.min_visits)
    fit = fit_exact(g)
    err = state_errors(g, fit, config)
    fitted = err.kind == FITTED
    c = err.sandwich.contributions(fitted.astype(float))[fitted]
    N = g.visits[fitted].astype(float)
    return float((c / N).sum() * N.sum() / np.sqrt(c).sum() ** 2)


def at_calls(traj, calls):
    """The Spearman of a trajectory at ``calls`` (linear between rounds; its last value beyond its end)."""
    c, r = np.array(traj, dtype=float).T
    return float(np.interp(calls, c, r))


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


def fixed_budget(families, args, config) -> int:
    """States within the target SE after the same budget (``--budget`` samples a state on average)."""
    print(f"fixed budget: {args.budget} samples a state on average; target SE={args.target}; round={args.k}x n, "
          f"round 0={args.k0} a state; within = fitted states that meet the target (allocate's rule)")
    wins = []
    print(f"{'landscape':<10}{'seed':>5} | {'calls':>7} | {'per_state':>9}{'adaptive':>9} of fitted | "
          f"{'max SE uni':>10}{'ada':>7}")
    for fam in families:
        for seed in range(args.seeds):
            land = Landscape(fam, args.n, seed)
            total = args.budget * land.n
            uni = run(land, "per_state", config, args.k0, args.k, seed, total, fixed=True)
            ada = run(land, "adaptive", config, args.k0, args.k, seed, total, fixed=True)
            wins.append((uni["within"], ada["within"], uni["covered"], ada["covered"]))
            print(f"{fam:<10}{seed:>5} | {uni['spent']:>7} | {uni['within']:>9}{ada['within']:>9} "
                  f"{uni['fitted']:>3}/{ada['fitted']:<3} | {uni['max_se']:>10.3f}{ada['max_se']:>7.3f}", flush=True)
    w = np.array(wins)
    print(f"total within: per_state {w[:, 0].sum()}, adaptive {w[:, 1].sum()}; adaptive ahead in "
          f"{(w[:, 1] > w[:, 0]).sum()}, behind in {(w[:, 1] < w[:, 0]).sum()} of {len(w)} runs; of those within, "
          f"true error < 2 x target: per_state {w[:, 2].sum()}/{w[:, 0].sum()}, "
          f"adaptive {w[:, 3].sum()}/{w[:, 1].sum()}")
    return 0


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
    ap.add_argument("--bulk", type=float, default=AllocationConfig().bulk)
    ap.add_argument("--discovery", type=float, default=AllocationConfig().discovery)
    ap.add_argument("--budget", type=int, help="a fixed budget (samples a state on average): states within the target")
    ap.add_argument("--compare-criteria", action="store_true", help="sum vs max on the tuning family only")
    ap.add_argument("--timing", action="store_true")
    args = ap.parse_args(argv)
    if args.timing:
        return timing()
    config = AllocationConfig(target_se=args.target, criterion=args.criterion, spread=args.spread, bulk=args.bulk,
                              discovery=args.discovery)
    families = args.families.split(",")
    if args.compare_criteria:
        families = [TUNING]
    if args.budget:
        return fixed_budget(families, args, config)
    print(f"n={args.n} target SE={args.target} round={args.k}x n, round 0={args.k0} a state, "
          f"criterion={config.criterion}, bulk={config.bulk}, spread={config.spread}, discovery={config.discovery}; "
          f"tuning family: {TUNING}")
    print(f"{'landscape':<10}{'seed':>5}{'crit':>5} | {'per_state':>9}{'adaptive':>9}{'ratio':>7} | "
          f"{'rho*':>6}{'uni@rho':>8}{'ada@rho':>8}{'ratio':>7} | {'drho@=':>7} | {'bound':>5} | "
          f"{'rms uni':>8}{'rms ada':>8} | one-way")
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
                drho = ada["rho"] - at_calls(uni["traj"], ada["traj"][-1][0])
                bound = saving_bound(Landscape(fam, args.n, seed), uni["C"], cfg)
                ratios.setdefault((fam, crit), []).append((r, rr, drho, bound))
                print(f"{fam:<10}{seed:>5}{crit:>5} | {fmt(uni['calls']):>9}{fmt(ada['calls']):>9}{low}{r:>6.2f} | "
                      f"{rho_t:>6.3f}{fmt(uni_rho)}{fmt(ada_rho)}{rr:>7.2f} | {drho:>+7.3f} | {bound:>5.2f} | "
                      f"{uni['rms']:>8.3f}{ada['rms']:>8.3f} | {ada['one_way']}", flush=True)
    print("\nsummary (calls per_state / calls adaptive; SE target (a lower bound where per_state never reached "
          "it), Spearman target; drho@=: adaptive's Spearman at its stop minus per_state's at the same calls; "
          "bound: the most any allocation saves on the sum of variances):")
    for (fam, crit), rs in ratios.items():
        a = np.array(rs)
        tag = "tuning" if fam == TUNING else "held out" if fam in HELD_OUT else "seen"
        print(f"  {fam:<10}{crit:>5} ({tag}): SE x{np.nanmin(a[:, 0]):.2f}..{np.nanmax(a[:, 0]):.2f} "
              f"(geo-mean {np.exp(np.nanmean(np.log(a[:, 0]))):.2f}), Spearman x{np.nanmin(a[:, 1]):.2f}.."
              f"{np.nanmax(a[:, 1]):.2f}, drho@= {np.nanmin(a[:, 2]):+.3f}..{np.nanmax(a[:, 2]):+.3f}, "
              f"bound x{np.nanmin(a[:, 3]):.2f}..{np.nanmax(a[:, 3]):.2f}")
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
