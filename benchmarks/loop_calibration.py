"""Loop-test calibration on synthetic chains (potsearch.science.synthetic.metropolis_chain).

Prints the false-positive rate at alpha (equilibrium chains, detailed balance by construction) and the
power at a list of cyclic drift strengths, each over R seeded replicates, with binomial standard errors.
The test suite asserts the same numbers on fewer replicates (tests/test_diagnostics.py).

    python benchmarks/loop_calibration.py [--reps 1000] [--drifts 0.2,0.4,0.6] [--samples 300]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
import time

import numpy as np

from potsearch.science import diagnostics as D
from potsearch.science.graph import build_graph
from potsearch.science.synthetic import metropolis_chain


def rate(drift: float, reps: int, alpha: float, seed0: int, **kw) -> tuple[float, float]:
    rej = 0
    for s in range(seed0, seed0 + reps):
        r = D.loop_test(build_graph(metropolis_chain(drift=drift, seed=s, **kw).counts), alpha, max_basis=0)
        rej += r["p_value"] is not None and r["p_value"] < alpha
    p = rej / reps
    return p, math.sqrt(p * (1 - p) / reps)


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--alpha", type=float, default=0.05)
    ap.add_argument("--drifts", default="0.2,0.4,0.6,0.8")
    ap.add_argument("--states", type=int, default=10)
    ap.add_argument("--degree", type=int, default=4)
    ap.add_argument("--samples", type=int, default=300, help="samples per state")
    ap.add_argument("--sigma", type=float, default=1.0)
    a = ap.parse_args()
    kw = dict(n_states=a.states, degree=a.degree, samples_per_state=a.samples, sigma=a.sigma)
    t0 = time.perf_counter()
    p, se = rate(0.0, a.reps, a.alpha, 100_000, **kw)
    print(f"chains: {kw}, alpha = {a.alpha}, {a.reps} replicates each")
    print(f"false-positive rate (drift 0):  {p:.3f} ± {se:.3f}")
    emit("diagnose", f"loop test false-positive rate at alpha={a.alpha} ({a.reps} reps)", p, a.alpha, p / a.alpha,
         "in [0.02, 0.09]", 0.02 <= p <= 0.09, "")
    for d in (float(x) for x in a.drifts.split(",")):
        p, se = rate(d, a.reps, a.alpha, 200_000, **kw)
        print(f"power at drift {d:<4}:            {p:.3f} ± {se:.3f}")
        emit("diagnose", f"loop test power at drift {d}", p, None, None, ">= 0.9 at drift 0.6",
             (p >= 0.9) if abs(d - 0.6) < 1e-9 else None, "")
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
