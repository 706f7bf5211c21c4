"""Benchmark of the asynchronous evolve loop against the lockstep loop, in the same run, with a
stand-in remote model (potsearch.testing.standin_server: an OpenAI-compatible server on 127.0.0.1,
lognormal latency, median 3 s, sigma 0.5, valid candidate replies) reached through litellm as
``openai/standin``.

Both loops run paper.yaml's shape (16 islands, population 16, 2 offspring per island per round,
mix 0.5) on a surrogate word run for a bounded time (``--seconds``, default 90 each; env
POTSEARCH_BENCH_SECONDS), then are stopped. Printed per loop: model calls completed per minute,
mean calls in flight (time-weighted, over the window after the first call) against the limit,
candidate evaluations per second, and the projected wall time of paper.yaml's 64,000 model calls
at that rate. The lockstep loop's limit is its thread pool (8); the async loop's is
``llm.concurrency`` (default 64).

    python benchmarks/evolve_async.py [--seconds 90] [--concurrency 64] [--median 3.0] [--sigma 0.5]
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402

PAPER_CALLS = 64_000


class _Stop(Exception):
    pass


def _mean_in_flight(samples, t_from=None):
    """Time-weighted mean of a step function given as (t, n) change points."""
    if t_from is not None:
        samples = [(max(t, t_from), n) for t, n in samples]
    if len(samples) < 2:
        return 0.0
    area = sum((t1 - t0) * n for (t0, n), (t1, _) in zip(samples, samples[1:]))
    return area / max(samples[-1][0] - samples[0][0], 1e-9)


def run_loop(loop: str, run_dir: Path, api_base: str, seconds: float, concurrency: int, seed: int) -> dict:
    from potsearch.search.config import LLMConfig, SandboxConfig, SearchConfig
    from potsearch.search.islands import Search
    from potsearch.search.llm_op import LLMOperator
    from potsearch.search.problem import load_problem
    from potsearch.law.scoring import FitSettings
    from potsearch.store import RunStore

    cfg = SearchConfig(seed=seed, rounds=4000, islands=16, population=16, offspring=2, loop=loop,
                       checkpoint_every=20, fit=FitSettings(starts=2),
                       llm=LLMConfig(models=("openai/standin",), mix=(0.5,), parents=3, concurrency=concurrency,
                                     api_base=api_base, timeout=60.0, max_tokens=400),
                       sandbox=SandboxConfig(workers=2, cpu_seconds=20, memory_mb=2048, wall_timeout=30.0))
    problem = load_problem(run_dir, seed=cfg.seed, heldout_fraction=cfg.heldout_fraction, agent=cfg.agent,
                           fit=cfg.fit)
    store = RunStore.open(run_dir)
    op = LLMOperator(cfg, problem)
    search = Search(cfg, problem, store, llm=op)
    t0 = time.monotonic()
    deadline = t0 + seconds

    def on_round(_s):
        if time.monotonic() > deadline:
            raise _Stop

    ev0 = None
    try:
        from potsearch.search.controller import SearchLoop

        ctl = SearchLoop(search)   # lockstep is the loop's ordered mode
        ctl.proposer.caller.t0 = t0
        try:
            ctl.run(on_round=on_round)
        except _Stop:
            pass
        samples = ctl.proposer.caller.samples
        done = sum(1 for (_, a), (_, b) in zip(samples, samples[1:]) if b < a)
        first = next((t for t, n in samples if n > 0), None)
        wall = time.monotonic() - t0
        ev0 = search.counters["evaluations"]
    finally:
        search.close()
        store.close()
    window = wall - (first or 0.0)
    calls_min = 60.0 * done / window if window > 0 else 0.0
    steady_from = (first or 0.0) + 10.0
    return {"loop": loop, "wall": wall, "calls": done, "calls_per_min": calls_min,
            "mean_in_flight": _mean_in_flight(samples, first),
            "mean_in_flight_steady": _mean_in_flight([s for s in samples if s[0] >= steady_from] or samples),
            "max_in_flight": max((n for _, n in samples), default=0),
            "limit": concurrency if loop == "async" else 8,
            "evals_per_s": ev0 / wall if wall > 0 else 0.0, "candidates": search.counters["candidates"],
            "projected_h": PAPER_CALLS / calls_min / 60.0 if calls_min > 0 else math.inf}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=float(os.environ.get("POTSEARCH_BENCH_SECONDS", 90)))
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--median", type=float, default=3.0)
    ap.add_argument("--sigma", type=float, default=0.5)
    ap.add_argument("--words", type=int, default=200, help="words of the surrogate run (scoring cost)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gp-rounds", type=int, default=150, help="rounds of the GP-only comparison")
    args = ap.parse_args()
    os.environ.setdefault("OPENAI_API_KEY", "standin")  # the stand-in accepts any key
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

    from potsearch.testing.surrogate_run import make_surrogate_run
    from potsearch.testing.standin_server import StandinServer

    tmp = Path(tempfile.mkdtemp(prefix="evolve_async_"))
    base = tmp / "base"
    info = make_surrogate_run(base, n_samples=20_000, n_words=args.words, seed=0)
    print(f"surrogate run: {info['samples']} samples, {info['words']} words; stand-in model: lognormal latency "
          f"median {args.median} s, sigma {args.sigma} (mean {args.median * math.exp(args.sigma ** 2 / 2):.2f} s); "
          f"16 islands, mix 0.5; {args.seconds:.0f} s per loop")
    mean_lat = args.median * math.exp(args.sigma ** 2 / 2)
    results = []
    try:
        for loop in ("lockstep", "async"):
            d = tmp / loop
            shutil.copytree(base, d)
            with StandinServer(median=args.median, sigma=args.sigma, seed=args.seed,
                               lifetime=args.seconds + 300) as srv:
                r = run_loop(loop, d, srv.api_base, args.seconds, args.concurrency, args.seed)
            results.append(r)
            print(f"  {loop:9s} {r['calls']:5d} calls in {r['wall']:.0f} s: {r['calls_per_min']:7.1f} calls/min, "
                  f"in flight mean {r['mean_in_flight']:5.1f} (after 10 s: {r['mean_in_flight_steady']:5.1f}) "
                  f"max {r['max_in_flight']} of limit {r['limit']}, {r['evals_per_s']:6.1f} evaluations/s, "
                  f"64,000 calls projected {r['projected_h']:.2f} h")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # GP-only (no model): the same search under both loops, evaluations/s
    gp = {}
    for loop in ("lockstep", "async"):
        from potsearch.search.config import SearchConfig
        from potsearch.search.run import evolve

        d = tmp / f"gp_{loop}"
        shutil.copytree(base, d)
        cfg = SearchConfig(seed=args.seed, rounds=args.gp_rounds, islands=16, population=16, offspring=2,
                           checkpoint_every=20, loop=loop)
        t = time.perf_counter()
        s = evolve(d, cfg)
        gp[loop] = (s["evaluations"] / (time.perf_counter() - t), s["candidates"], s["best"]["train_action"])
        print(f"  GP only, {loop:9s} {args.gp_rounds} rounds x 16 islands: {gp[loop][0]:6.1f} evaluations/s, "
              f"{gp[loop][1]} candidates, best {gp[loop][2]:.6f}")
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"  GP only async / lockstep evaluations/s: {gp['async'][0] / gp['lockstep'][0]:.2f} x "
          f"(same candidates: {'yes' if gp['async'][1:] == gp['lockstep'][1:] else 'NO'})")
    lock, asy = results
    ideal = 0.9 * args.concurrency * 60.0 / mean_lat
    ratio = asy["calls_per_min"] / lock["calls_per_min"] if lock["calls_per_min"] else math.inf
    print(f"\nasync / lockstep: calls/min {ratio:.1f} x, evaluations/s "
          f"{asy['evals_per_s'] / max(lock['evals_per_s'], 1e-9):.2f} x")
    print(f"goals: mean in flight >= 0.9 x {args.concurrency} = {0.9 * args.concurrency:.1f}: "
          f"{'met' if asy['mean_in_flight_steady'] >= 0.9 * args.concurrency else 'NOT met'} "
          f"({asy['mean_in_flight_steady']:.1f} after the first 10 s); calls/min >= {ideal:.0f}: "
          f"{'met' if asy['calls_per_min'] >= ideal else 'NOT met'}; 64,000 calls <= 1.2 h: "
          f"{'met' if asy['projected_h'] <= 1.2 else 'NOT met'} ({asy['projected_h']:.2f} h)")
    print(f"load: {os.getloadavg()[0]:.1f} (1-min load average on {os.cpu_count()} cores)")
    emit("evolve_async", "model calls/min (stand-in, median 3 s)", asy["calls_per_min"], lock["calls_per_min"],
         ratio, f">= {ideal:.0f}/min", asy["calls_per_min"] >= ideal, "/min")
    emit("evolve_async", "projected wall time of 64,000 calls", asy["projected_h"], lock["projected_h"],
         lock["projected_h"] / asy["projected_h"] if asy["projected_h"] else None, "<= 1.2 h",
         asy["projected_h"] <= 1.2, "h")
    return 0


if __name__ == "__main__":
    sys.exit(main())
