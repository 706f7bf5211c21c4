"""Benchmark of `potsearch evolve`: candidate evaluations per second against a baseline measured
in the same run, and (with --full) the wall time of the acceptance search
`potsearch evolve --rounds 4000 --islands 16` with the default config.

Problem: a 20,000-sample surrogate word run (the 762 shipped words, V = 0.8 vowels - 0.6 zipf,
Metropolis transitions; potsearch.testing.surrogate_run), 80/20 sample split as in a real search.

Candidates: ``--n`` distinct random GP trees (seeded) compiled to source, each scored from its own
constants as start (what the search does for a new structure): ours = Gauss-Newton on parameters
with the analytic action gradient on merged edge pairs (potsearch.law.scoring), default fit
settings. Baseline = the naive path: scipy.optimize.minimize (L-BFGS-B, finite-difference gradient)
on the same action (potsearch.science.action.action_of over every edge), same start. Both report the
training action reached, so the speed-up is not bought with worse fits.

    python benchmarks/evolve_bench.py [--n 300] [--full] [--workers 1]
"""
from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402


def _cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=300, help="random candidates to score")
    ap.add_argument("--baseline-n", type=int, default=60, help="candidates for the (slow) baseline")
    ap.add_argument("--full", action="store_true", help="also time `potsearch evolve --rounds 4000 --islands 16`")
    ap.add_argument("--rounds", type=int, default=4000)
    ap.add_argument("--islands", type=int, default=16)
    ap.add_argument("--workers", type=int, default=None, help="--workers for the full run (default: config)")
    ap.add_argument("--keep", metavar="DIR", help="build the run here and keep it")
    args = ap.parse_args()

    from scipy.optimize import minimize

    from potsearch.science.action import action_of, make_kernel
    from potsearch.search import gp as G
    from potsearch.law.scoring import _compile, score_source
    from potsearch.search.problem import load_problem
    from potsearch.testing.surrogate_run import make_surrogate_run

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="evolve_bench_"))
    run = tmp / "surrogate20k"
    if run.exists():
        shutil.rmtree(run)
    t = time.perf_counter()
    info = make_surrogate_run(run, n_samples=20_000, seed=0)
    print(f"surrogate run: {info['samples']} samples, {info['words']} words, {info['edges']} edges, "
          f"S_min {info['s_min']:.5f} (built in {time.perf_counter() - t:.1f} s)")
    prob = load_problem(run, seed=0)
    print(f"train graph: {prob.train.n_edges} edges ({len(prob.data.train.pairs()[0])} merged pairs), "
          f"S_min train {prob.s_min_train:.5f}; held-out {prob.heldout.n_edges} edges")

    random.seed(12345)
    pset = G.make_pset(prob.usable)
    tb = G.make_toolbox(pset)
    seen, cands = set(), []
    while len(cands) < args.n:
        src, p0 = G.tree_source(tb.tree())
        if src not in seen:
            seen.add(src)
            cands.append((src, p0))

    # --- ours (wall clock, and CPU time of this process: the machine may be shared)
    t, c = time.perf_counter(), time.process_time()
    ours = [score_source(src, p0, 0, prob.data) for src, p0 in cands]
    dt_ours, cpu_ours = time.perf_counter() - t, time.process_time() - c
    rate = len(cands) / dt_ours

    # --- one plain numpy evaluation of a fixed formula (no fit): context, the floor of any scorer
    kern = make_kernel(prob.kernel, prob.beta)
    fn, _ = _compile("N_PARAMS = 2\ndef potential(x, p):\n    return p[0] * x['vowels'] + p[1] * x['zipf']\n")
    pfix = np.array([0.8, -0.6])
    reps = 2000
    t = time.perf_counter()
    for _ in range(reps):
        action_of(fn(prob.features, pfix), prob.train, kern)
    plain = (time.perf_counter() - t) / reps

    # --- baseline: naive per-candidate path on the first baseline-n candidates
    nb = min(args.baseline_n, len(cands))
    base_actions = []
    t, c = time.perf_counter(), time.process_time()
    for src, p0 in cands[:nb]:
        f, n_params = _compile(src)

        def obj(p, f=f):
            with np.errstate(all="ignore"):
                V = np.broadcast_to(np.asarray(f(prob.features, p), dtype=float), (prob.n_states,))
            if not np.all(np.isfinite(V)):
                return 1e10
            return action_of(V, prob.train, kern)

        try:
            r = minimize(obj, np.array(p0, dtype=float), method="L-BFGS-B", options={"maxiter": 200})
            base_actions.append(float(r.fun))
        except Exception:
            base_actions.append(float("nan"))
    dt_base, cpu_base = (time.perf_counter() - t) / nb, (time.process_time() - c) / nb
    rate_base = 1.0 / dt_base
    ours_first = [o["train_action"] for o in ours[:nb]]
    both = [(a, b) for a, b in zip(ours_first, base_actions) if a is not None and b == b and b < 1e9]
    better = sum(1 for a, b in both if a <= b + 1e-9)
    ok = sum(1 for o in ours if o["error"] is None)

    print()
    print(f"candidate evaluations/s (fit + train + held-out action), {len(cands)} random GP trees, in-process:")
    print(f"  ours:      {rate:8.1f} /s   ({1e3 * dt_ours / len(cands):.2f} ms each; {ok} scored, "
          f"{len(cands) - ok} failed with inf/NaN)")
    print(f"  baseline:  {rate_base:8.1f} /s   naive L-BFGS-B + finite differences over edges ({nb} candidates)")
    print(f"  ratio:     {rate / rate_base:8.1f} x   (goal: >= 500 evaluations/s: "
          f"{'met' if rate >= 500 else 'NOT met'} on this machine now)")
    print(f"  per CPU-second: ours {len(cands) / cpu_ours:.1f} /s, baseline {1.0 / cpu_base:.1f} /s, "
          f"ratio {(len(cands) / cpu_ours) * cpu_base:.1f} x")
    print(f"  fit quality: ours reaches an action <= the baseline's on {better}/{len(both)} candidates")
    print(f"  context: one plain numpy evaluation of a fixed formula (no fit) takes {1e6 * plain:.0f} us")
    print(f"  load: {os.getloadavg()[0]:.1f} (1-min load average on {os.cpu_count()} cores)")
    emit("evolve", "candidate evaluations/s (wall)", rate, rate_base, rate / rate_base, ">= 500/s", rate >= 500, "/s")
    emit("evolve", "candidate evaluations/s per CPU-second", len(cands) / cpu_ours, 1.0 / cpu_base,
         (len(cands) / cpu_ours) * cpu_base, ">= 500/s", len(cands) / cpu_ours >= 500, "/s")

    if args.full:
        cmd = [sys.executable, "-m", "potsearch", "evolve", "--run", str(run), "--rounds", str(args.rounds),
               "--islands", str(args.islands), "--quiet"]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        print(f"\n$ potsearch evolve --run RUN --rounds {args.rounds} --islands {args.islands}"
              + (f" --workers {args.workers}" if args.workers else "") + "   (default config)")
        c0, t = _cpu_children(), time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall, cpu = time.perf_counter() - t, _cpu_children() - c0
        print(out.stdout.rstrip())
        if out.returncode:
            print(out.stderr[-2000:])
        print(f"wall time {wall:.1f} s ({wall / 60:.2f} min; goal <= 10 min), CPU time {cpu:.1f} s, "
              f"load average {os.getloadavg()[0]:.1f}")
        emit("evolve", f"`evolve --rounds {args.rounds} --islands {args.islands}` wall time", wall, None, None,
             "<= 600 s", wall <= 600 and out.returncode == 0, "s")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
