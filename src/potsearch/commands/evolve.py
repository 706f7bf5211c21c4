"""`potsearch evolve`: island search (GP + LLM operators) for an interpretable potential."""
from __future__ import annotations

import sys
from pathlib import Path


def add_arguments(p) -> None:
    p.add_argument("--run", required=True, metavar="DIR", help="run directory (needs a fit: `potsearch fit` first)")
    p.add_argument("--config", metavar="FILE", help="search config YAML (default: search_configs/default.yaml)")
    p.add_argument("--rounds", type=int, help="rounds (overrides the config)")
    p.add_argument("--islands", type=int, help="islands (overrides the config)")
    p.add_argument("--seed", type=int, help="random seed (overrides the config)")
    p.add_argument("--workers", type=int, help="processes scoring GP candidates (overrides the config)")
    p.add_argument("--resume", action="store_true", help="continue from the run's last evolve checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--force", action="store_true",
                   help="search even when the fit has fewer states than the floor (5; docs/evolve.md)")


def run(args) -> int:
    from ..errors import InputError
    from ..fitstage import load_fit
    from ..thindata import evolve_check
    from ..evolve.config import default_config_path, load_config, with_overrides
    from ..evolve.run import evolve

    run_dir = Path(args.run)
    if not (run_dir / "store.sqlite").exists():
        raise InputError("not a run directory (no store.sqlite inside)", str(run_dir))
    if args.config:
        cfg = load_config(args.config)
    elif default_config_path().exists():
        cfg = load_config(default_config_path())
    else:  # an installed copy without the source tree: the built-in defaults equal default.yaml
        from ..evolve.config import SearchConfig

        cfg = SearchConfig(source="built-in defaults")
    cfg = with_overrides(cfg, rounds=args.rounds, islands=args.islands, seed=args.seed, workers=args.workers)
    fit = load_fit(run_dir)  # StageMissing (one line, exit 2) when the run has no fit
    thin = evolve_check(int(fit.summary.get("states", len(fit.names))), cfg.gp.max_size, args.force, str(run_dir))
    for w in thin:  # thin data (thindata.py): said before the search and again with its result
        print(f"warning: {w}", file=sys.stderr)
    from ..store import run_lock

    with run_lock(run_dir, "evolve"):
        s = evolve(run_dir, cfg, resume=args.resume, quiet=args.quiet)
    b = s.get("best")
    print(f"evolve: {s['rounds']} rounds x {s['islands']} islands in {s['seconds']:.1f} s; "
          f"{s['evaluations']} evaluations ({s['evaluations_per_second'] or 0:.0f}/s), "
          f"{s['cache_hits']} cache hits, {s['failed']} failed")
    if s["llm"]["llm_calls"]:
        L = s["llm"]
        print(f"llm: {L['llm_calls']} calls, {L['llm_rejected']} rejected, {L['llm_failed']} failed, "
              f"{L['llm_scored']} scored, {L['tokens']} tokens, ${L['cost']:.4f}")
    if b:
        print(f"best: train action {b['train_action']:.6g} (S_min train {s['s_min_train']:.6g}, gap {b['gap']:.4g}, "
              f"{100 * (b['relative_gap'] or 0):.2f}%); held-out {b['heldout_action']:.6g} vs per-state fit "
              f"{s['baseline_heldout']:.6g}; complexity {b['complexity']}, {b['n_params']} parameters")
        print(b["source"].rstrip())
        print(f"params = {[round(v, 6) for v in b['params']]}")
    for w in thin:
        print(f"warning: {w}")
    print(f"wrote {run_dir / 'best_potential.py'}, {run_dir / 'evolve'}/{{summary.json,pareto.csv,pareto.png,curves.png}}")
    return 0
