"""Benchmark of the offline LLM operator (SmolLM2 constrained by the potential grammar, as in
search_configs/local.yaml) on a surrogate word run: parse rate (goal >= 95 %), scored rate
(goal >= 80 %), the share of hall-of-fame programs with an LLM ancestor, and GP + local LLM against
GP alone at equal wall time (best training action reached; both seeded, same config otherwise).
With --no-grammar the same measurement is made for the free (unconstrained) operator.

    python benchmarks/evolve_local_llm.py [--seconds 120] [--config search_configs/local.yaml] [--no-grammar]
                                          [--modes wait,gp]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402


class _Stop(Exception):
    pass


def run_for(run_dir: Path, cfg, seconds: float):
    from potsearch.search.controller import SearchLoop
    from potsearch.search.islands import Search
    from potsearch.search.llm_op import LLMOperator
    from potsearch.search.problem import load_problem
    from potsearch.store import RunStore

    problem = load_problem(run_dir, seed=cfg.seed, heldout_fraction=cfg.heldout_fraction, agent=cfg.agent,
                           fit=cfg.fit)
    store = RunStore.open(run_dir)
    search = Search(cfg, problem, store, llm=LLMOperator(cfg, problem) if cfg.uses_llm else None)
    ctl = SearchLoop(search)
    t0 = time.monotonic()

    def on_round(_s):
        if time.monotonic() - t0 > seconds:
            raise _Stop

    try:
        ctl.run(on_round=on_round)
    except _Stop:
        pass
    wall = time.monotonic() - t0
    rows = {r[0]: r for r in store.conn.execute(
        "SELECT uid, operator, parents, error, train_action FROM candidates WHERE uid LIKE ?", (search.sid + ":%",))}
    hof = list(search.hof)
    best = search.best()
    search.close()
    store.close()
    return search, rows, hof, best, wall


def llm_ancestor(uid: str, rows: dict) -> bool:
    seen, stack = set(), [uid]
    while stack:
        u = stack.pop()
        if u in seen or u not in rows:
            continue
        seen.add(u)
        if rows[u][1] == "llm":
            return True
        stack.extend(json.loads(rows[u][2] or "[]"))
    return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--config", default=str(ROOT / "search_configs" / "local.yaml"))
    ap.add_argument("--no-grammar", action="store_true")
    ap.add_argument("--words", type=int, default=200)
    ap.add_argument("--modes", default="wait,gp", help="llm.when_busy values to measure (comma-separated)")
    args = ap.parse_args()
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

    from potsearch.search.config import load_config
    from potsearch.testing.surrogate_run import make_surrogate_run

    cfg = load_config(args.config)
    cfg = dataclasses.replace(cfg, rounds=100_000, llm=dataclasses.replace(cfg.llm, grammar=not args.no_grammar))
    tmp = Path(tempfile.mkdtemp(prefix="evolve_local_"))
    try:
        base = tmp / "base"
        info = make_surrogate_run(base, n_samples=20_000, n_words=args.words, seed=0)
        print(f"surrogate run: {info['samples']} samples, {info['words']} words; {Path(args.config).name}: "
              f"{cfg.islands} islands, mix {cfg.llm.mix}, grammar {cfg.llm.grammar}; {args.seconds:.0f} s per arm")
        hybrids = []
        for mode in args.modes.split(","):
            hcfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, when_busy=mode))
            shutil.copytree(base, tmp / f"hybrid_{mode}")
            s, rows, hof, best, wall = run_for(tmp / f"hybrid_{mode}", hcfg, args.seconds)
            c = s.counters
            llm = [r for r in rows.values() if r[1] == "llm"]
            replies = [r for r in llm if not (r[3] or "").startswith("llm:")]
            parsed = [r for r in replies if not (r[3] or "").startswith(("no code", "rejected"))]
            scored = [r for r in llm if r[4] is not None]
            with_llm = sum(1 for p in hof if llm_ancestor(p.uid, rows))
            print(f"  GP + local LLM (llm.when_busy: {mode}): {wall:.0f} s, {len(rows)} candidates, "
                  f"{c['llm_calls']} model calls ({len(llm) - len(replies)} failed calls)")
            print(f"    parse rate  {len(parsed)}/{len(replies)} = {100 * len(parsed) / max(1, len(replies)):.0f} % "
                  f"(goal >= 95 %)")
            print(f"    scored rate {len(scored)}/{len(llm)} = {100 * len(scored) / max(1, len(llm)):.0f} % "
                  f"(goal >= 80 %)")
            print(f"    hall of fame with an LLM ancestor: {with_llm}/{len(hof)}")
            print(f"    best train action {best.train_action:.6f} (gap {best.gap:.5f}, operator {best.operator})")
            hybrids.append((mode, best, wall))
            emit("evolve_local", f"parse rate (grammar {cfg.llm.grammar}, {mode})", len(parsed) / max(1, len(replies)),
                 None, None, ">= 0.95", len(parsed) >= 0.95 * len(replies), "")
            emit("evolve_local", f"scored rate ({mode})", len(scored) / max(1, len(llm)), None, None, ">= 0.80",
                 len(scored) >= 0.8 * len(llm), "")
        gcfg = dataclasses.replace(cfg, llm=dataclasses.replace(cfg.llm, mix=(0.0,), models=()))
        shutil.copytree(base, tmp / "gp")
        gs, grows, _, gbest, gwall = run_for(tmp / "gp", gcfg, max(w for *_, w in hybrids))
        print(f"  GP alone:       {gwall:.0f} s, {len(grows)} candidates; best train action {gbest.train_action:.6f} "
              f"(gap {gbest.gap:.5f})")
        for mode, best, _ in hybrids:
            better = best.train_action < gbest.train_action
            print(f"  at equal wall time GP + local LLM ({mode}) is {'BETTER' if better else 'not better'} than GP "
                  f"alone (gap {best.gap:.5f} vs {gbest.gap:.5f})")
        print(f"  load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
