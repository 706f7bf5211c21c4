"""Polish benchmark: the paper's random descent against L-BFGS-B and Nelder–Mead, same run, same start.

Problem: a surrogate word run (potsearch.testing.surrogate_run: real words, hidden potential
``HIDDEN`` over our word features, Metropolis transitions), split into train / held-out by
evolve's ``load_problem``. Two candidates:

* ``linear-19``: 18 word features, one coefficient each, plus a constant (19 parameters);
* ``tanh-49``: 16 features, each through p·tanh(q·x + r), plus a constant — 49 parameters, the
  size of the paper's best evolved potential.

Start: the parameters after a short evolve-style fit (evolve.scoring, 3 iterations), as polish
receives them from a search; plus a raw start (all parameters 0.1) for the hard case.

Currency: potential evaluations (calls of potential(x, p) on every state). Budget: 100 × 20 =
2000, the paper's schedule. Prints, per candidate and method: train action reached, gap to the
training floor S_min, held-out action, evaluations used, seconds, and two ratios against random
descent in the same run: gap ratio (method gap / random-descent gap, < 1 = better) and the
evaluations the method needed to reach random descent's final action (/ 2000, < 1 = cheaper).

Usage: python benchmarks/polish_bench.py [--words 600] [--samples 20000] [--seed 0] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from potsearch.science.action import make_kernel
from potsearch.search.problem import load_problem
from potsearch.law.scoring import FitSettings, score_function
from potsearch.testing.surrogate_run import make_surrogate_run
from potsearch.law.optimize import ActionObjective, polish
from potsearch.search.polish import compile_source

HIDDEN = "0.8 * vowels - 0.6 * zipf + 0.5 * np.tanh(length - 7)"
LINEAR_FEATURES = ["length", "letter_sum", "vowels", "consonants", "vowel_frac", "distinct", "repeats", "doubles",
                   "mean_letter", "max_letter", "min_letter", "var_letter", "first_letter", "last_letter", "rarity",
                   "rare_letters", "zipf", "sum_dev"]
TANH_FEATURES = LINEAR_FEATURES[:15] + ["zipf"]


def linear_source() -> str:
    terms = " + ".join(f'p[{i}] * x["{f}"]' for i, f in enumerate(LINEAR_FEATURES))
    return f"N_PARAMS = {len(LINEAR_FEATURES) + 1}\ndef potential(x, p):\n    return {terms} + p[{len(LINEAR_FEATURES)}]\n"


def tanh_source() -> str:
    terms = " + ".join(f'p[{3 * i}] * np.tanh(p[{3 * i + 1}] * x["{f}"] + p[{3 * i + 2}])'
                       for i, f in enumerate(TANH_FEATURES))
    k = 3 * len(TANH_FEATURES)
    return f"N_PARAMS = {k + 1}\ndef potential(x, p):\n    return {terms} + p[{k}]\n"


def evals_to_reach(history, target: float) -> int | None:
    for n, best in history:
        if best <= target + 1e-12:
            return int(n)
    return None


def bench(prob, name: str, src: str, p0: np.ndarray, start: str, seed: int) -> list[dict]:
    kernel = make_kernel(prob.kernel, prob.beta)
    fn = compile_source(src)["potential"]
    train = ActionObjective.from_edges(fn, prob.features, prob.data.train, kernel, n_rows=prob.n_states)
    held = ActionObjective.from_edges(fn, prob.features, prob.data.heldout, kernel, n_rows=prob.n_states)
    f0 = train(p0)
    rows = []
    results = {}
    for method in ("random-descent", "lbfgs", "nelder-mead"):
        train.calls = 0
        t0 = time.perf_counter()
        r = polish(train, p0, method, iterations=100, samples=20, keep=5, scale=0.1, seed=seed, f0=f0)
        results[method] = (r, time.perf_counter() - t0)
    rd = results["random-descent"][0]
    rd_gap = rd.fun - prob.s_min_train
    for method, (r, sec) in results.items():
        gap = r.fun - prob.s_min_train
        reach = evals_to_reach(r.history, rd.fun)
        rows.append({"candidate": name, "start": start, "n_params": len(p0), "method": method, "action_start": f0,
                     "action": r.fun, "gap": gap, "heldout": held(r.x), "evaluations": r.evaluations,
                     "seconds": sec, "gap_ratio_vs_rd": gap / rd_gap if rd_gap > 0 else float("nan"),
                     "evals_to_rd_action": reach,
                     "evals_ratio_vs_rd": (reach / rd.evaluations) if reach is not None else None})
    return rows


sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--words", type=int, default=600)
    ap.add_argument("--samples", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        make_surrogate_run(run, n_samples=a.samples, n_words=a.words, formula=HIDDEN, seed=a.seed)
        prob = load_problem(run, seed=a.seed)
    print(f"surrogate run: {prob.n_states} states, {prob.train.n_edges} train edges, "
          f"S_min train {prob.s_min_train:.5f}, hidden V = {HIDDEN}")
    rows = []
    for name, src in (("linear-19", linear_source()), ("tanh-49", tanh_source())):
        n = int(src.split("\n")[0].split("=")[1])
        fn = compile_source(src)["potential"]
        prob.data.fit = FitSettings(starts=1, max_iter=3)
        raw = np.full(n, 0.1)
        sc = score_function(fn, n, prob.data, source=src, p0=raw, seed=a.seed)
        starts = [("evolve-fit(3 it)", np.asarray(sc["params"], dtype=float))] if sc["error"] is None else []
        starts.append(("raw 0.1", raw))
        for start, p0 in starts:
            rows += bench(prob, name, src, p0, start, a.seed)
    hdr = (f"{'candidate':<10} {'start':<17} {'method':<15} {'S start':>9} {'S after':>9} {'gap':>9} "
           f"{'held-out':>9} {'evals':>6} {'sec':>6} {'gap/RD':>7} {'evals to RD S':>13}")
    print(hdr)
    for r in rows:
        reach = "never" if r["evals_to_rd_action"] is None else f"{r['evals_to_rd_action']} ({r['evals_ratio_vs_rd']:.2f})"
        print(f"{r['candidate']:<10} {r['start']:<17} {r['method']:<15} {r['action_start']:9.5f} {r['action']:9.5f} "
              f"{r['gap']:9.5f} {r['heldout']:9.5f} {r['evaluations']:6d} {r['seconds']:6.2f} "
              f"{r['gap_ratio_vs_rd']:7.3f} {reach:>13}")
    for r in rows:
        if r["method"] != "random-descent":
            emit("polish", f"{r['candidate']} from {r['start']}: {r['method']} gap / random-descent gap",
                 r["gap"], r["gap"] / r["gap_ratio_vs_rd"] if r["gap_ratio_vs_rd"] else None,
                 r["gap_ratio_vs_rd"], "report (< 1 = better than the paper's method)", None, "")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1, default=float))


if __name__ == "__main__":
    main()
