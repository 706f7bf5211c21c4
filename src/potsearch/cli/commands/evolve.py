"""`potsearch evolve`: island search (GP + LLM operators) for an interpretable potential."""
from __future__ import annotations

from potsearch.cli.runarg import add_run
from potsearch.stages.evolve import EvolveOptions
from potsearch.store.rundir import RunDir

_D = EvolveOptions()
#: flags that only change what is printed (tests/test_cli_api_parity.py): the API is quiet by default
PRINTING = ("quiet",)


def add_arguments(p) -> None:
    add_run(p, "run directory (needs a fit: `potsearch fit` first)")
    p.add_argument("--config", default=_D.config, metavar="FILE",
                   help="search config YAML (default: search_configs/default.yaml)")
    p.add_argument("--rounds", type=int, default=_D.rounds, help="rounds (overrides the config)")
    p.add_argument("--islands", type=int, default=_D.islands, help="islands (overrides the config)")
    p.add_argument("--seed", type=int, default=_D.seed, help="random seed (overrides the config)")
    p.add_argument("--workers", type=int, default=_D.workers,
                   help="processes scoring GP candidates (overrides the config)")
    p.add_argument("--resume", action="store_true", default=_D.resume,
                   help="continue from the run's last evolve checkpoint")
    p.add_argument("--address", default=_D.address, metavar="ADDR",
                   help="score candidates and call models on Ray actors of the cluster at ADDR "
                        "('local': an embedded Ray on this machine); async loop only")
    p.add_argument("--ray-timeout", type=float, default=_D.ray_timeout, metavar="SECONDS",
                   help="seconds to join the cluster at --address before failing with advice "
                        "(default: POTSEARCH_RAY_TIMEOUT, else 30)")
    p.add_argument("--patience", type=int, default=_D.patience, metavar="N",
                   help="stop when the Pareto front (and the lowest training action) has not improved for N "
                        "rounds (overrides the config's patience; 0 = every round; docs/evolve.md)")
    p.add_argument("--features", default=_D.features, metavar="FILE|MODULE:FUNCTION",
                   help="store this features table (or the table your features function module:function computes "
                        "for the fit's states) with the run first, replacing its table, and search over its "
                        "features; docs/own-agent.md")
    p.add_argument("--quiet", action="store_true", default=_D.quiet, help="no progress output")
    p.add_argument("--force", action="store_true", default=_D.force,
                   help="search even when the fit has fewer states than the floor (5; docs/evolve.md)")


def law_line(sel: dict, law: dict) -> str:
    """The summary's law line. "simplified" only for a law the selection simplified; a law it did not
    simplify (its simplification failed or was not run) is named so, with its formula as found when it
    has one, else with "no formula" (its source follows): never a formula that is not there."""
    done = law.get("simplified")
    if done is None:   # a summary written before the selection recorded it: its steps say so
        done = bool(law.get("text")) and not str(law.get("steps") or "").startswith("not simplified")
    how = "simplified" if done else "not simplified"
    if law.get("text"):
        return f"law ({sel.get('rule')} rule, {how}): V = {law['text']}"
    why = str(law.get("steps") or "").removeprefix("not simplified: ") or "not translatable"
    return f"law ({sel.get('rule')} rule, {how}): no formula ({why}); its source follows"


def run(args) -> int:
    from potsearch.core.textsafe import printable as _printable  # model text: control characters escaped
    from potsearch.stages.evolve import run as evolve

    res = evolve(args.run, EvolveOptions(config=args.config, rounds=args.rounds, islands=args.islands,
                                         seed=args.seed, workers=args.workers, resume=args.resume,
                                         quiet=args.quiet, address=args.address, force=args.force,
                                         features=args.features, ray_timeout=args.ray_timeout,
                                         patience=args.patience))
    s, run_dir, thin = res.summary, res.run_dir, res.warnings
    if args.quiet:  # the stage kept its notes to itself; they are not progress, so say them here
        for n in res.notes:
            print(_printable(n))
    b = s.get("best")
    print(f"evolve: {s['rounds']} rounds x {s['islands']} islands in {s['seconds']:.1f} s; "
          f"{s['evaluations']} evaluations ({s['evaluations_per_second'] or 0:.0f}/s), "
          f"{s['cache_hits']} cache hits, {s['failed']} failed")
    stop = s.get("stopped") or {}
    if stop:
        print(f"stopped: {stop['text']}; last improvement at round {stop['last_improvement']}")
    if s["llm"]["llm_calls"]:
        L = s["llm"]
        print(f"llm: {L['llm_calls']} calls, {L['llm_rejected']} rejected, {L['llm_failed']} failed, "
              f"{L['llm_scored']} scored, {L['tokens']} tokens, ${L['cost']:.4f}")
    sel = s.get("selection") or {}
    law = sel.get("selected") or {}
    if law:
        se = law.get("param_se") or []
        print(_printable(law_line(sel, law), keep=""))
        print(f"  train action {law['train_action']:.6g} (S_min train {s['s_min_train']:.6g}, gap "
              f"{law['train_action'] - s['s_min_train']:.4g}); held-out {law['heldout_action']:.6g} vs per-state fit "
              f"{s['baseline_heldout']:.6g}; complexity {law['complexity']}, {len(law['params'])} parameters")
        from potsearch.stages.show import heldout_warning

        worse = heldout_warning(law.get("heldout_action"), s.get("baseline_heldout"))
        if worse:
            print(f"warning: {worse}")
        print(_printable(law["source"].rstrip()))
        print("params = [" + ", ".join(f"{v:.6g}" + (f" ± {e:.2g}" if e is not None else "")
                                       for v, e in zip(law["params"], list(se) + [None] * len(law["params"]))) + "]")
    low = sel.get("lowest") or {}
    if low.get("id") is not None:
        gap = low["train_action"] - s["s_min_train"]
        print(f"lowest training action: candidate {low['id']}, {low['train_action']:.6g} (gap {gap:.4g}, "
              f"{100 * gap / s['s_min_train'] if s['s_min_train'] else 0:.2f}%), complexity {low['complexity']}: "
              f"`potsearch show {run_dir} --candidate {low['id']}`")
    elif b and not law:
        print(f"best: train action {b['train_action']:.6g} (S_min train {s['s_min_train']:.6g}, gap {b['gap']:.4g}, "
              f"{100 * (b['relative_gap'] or 0):.2f}%); held-out {b['heldout_action']:.6g} vs per-state fit "
              f"{s['baseline_heldout']:.6g}; complexity {b['complexity']}, {b['n_params']} parameters")
        print(_printable(b["source"].rstrip()))
        print(f"params = {[round(v, 6) for v in b['params']]}")
    for w in thin:
        print(_printable(f"warning: {w}"))
    rd = RunDir(run_dir)
    print(f"wrote {rd.best_potential}, {rd.evolve_dir}/{{summary.json,pareto.csv,pareto.png,curves.png}}")
    return 0
