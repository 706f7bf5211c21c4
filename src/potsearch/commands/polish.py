"""`potsearch polish --run R`: polish the best potential's parameters (random descent or scipy)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from ..errors import InputError


def add_arguments(p):
    p.add_argument("--run", required=True, help="run directory (needs fit and evolve)")
    p.add_argument("--method", choices=["random-descent", "lbfgs", "nelder-mead"], default="random-descent",
                   help="random-descent: the paper's schedule (default); lbfgs / nelder-mead: scipy")
    p.add_argument("--iterations", type=int, default=100, help="random-descent iterations (default 100)")
    p.add_argument("--samples", type=int, default=20, help="perturbations per iteration (default 20)")
    p.add_argument("--keep", type=int, default=5, help="best points kept per iteration (default 5)")
    p.add_argument("--scale", type=float, default=0.1,
                   help="perturbation sd as a fraction of |p_i| (default 0.1, as the paper's script)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-evals", type=int, default=None, metavar="N",
                   help="evaluation budget of lbfgs / nelder-mead (default iterations x samples)")
    p.add_argument("--candidate", default=None, metavar="ID", help="polish this candidate (id or uid) instead")
    p.add_argument("--compare", action="store_true",
                   help="also run the other two methods (same budget) for the figure and summary")
    p.add_argument("--json", action="store_true", help="print polish/summary.json")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _check(args):
    for name in ("iterations", "samples", "keep"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.keep > args.samples:
        raise InputError(f"--keep ({args.keep}) cannot exceed --samples ({args.samples})")
    if not args.scale > 0:
        raise InputError(f"--scale must be > 0, got {args.scale}")
    if args.max_evals is not None and args.max_evals < 1:
        raise InputError(f"--max-evals must be >= 1, got {args.max_evals}")


def run(args) -> int:
    import numpy as np

    from ..polish import load_context, plot_convergence, polish, write_best_potential, write_candidate
    from ..progress import Ticker

    _check(args)
    ctx = load_context(args.run, args.candidate)
    row, prob = ctx.row, ctx.problem
    p0 = ctx.params
    if len(p0) == 0:
        raise InputError(f"candidate {row.id} has no parameters: nothing to polish", str(ctx.run_dir))
    f0 = ctx.train(p0)
    h0 = ctx.heldout(p0)
    methods = [args.method] + ([m for m in ("random-descent", "lbfgs", "nelder-mead") if m != args.method]
                               if args.compare else [])
    results = {}
    for m in methods:
        ctx.train.calls = 0
        budget = args.max_evals if args.max_evals is not None else args.iterations * args.samples
        with Ticker(f"polish {m}", lambda: ctx.train.calls, budget, "evaluations", quiet=args.quiet):  # progress.py
            results[m] = polish(ctx.train, p0, m, iterations=args.iterations, samples=args.samples,
                                keep=args.keep, scale=args.scale, seed=args.seed, max_evals=args.max_evals, f0=f0)
    res = results[args.method]
    h1 = ctx.heldout(res.x)
    out = Path(ctx.run_dir) / "polish"
    out.mkdir(parents=True, exist_ok=True)
    improved = res.fun < f0
    new_id = None
    promoted = False
    if improved:
        from ..polish import best_candidate, get_candidate

        current = best_candidate(ctx.store, ctx.run_dir)  # the run's best before this polish
        gap = res.fun - prob.s_min_train
        new_id = write_candidate(ctx.store, row, res.x, f"polish:{args.method}", res.fun, h1, gap,
                                 meta={"polish": {k: v for k, v in res.summary().items()
                                                  if k not in ("params_before", "params_after")}})
        # best_potential.py follows the run's best: rewrite it only when the polished row beats it
        if current.id == row.id or res.fun < (current.train_action if current.train_action is not None else np.inf):
            ctx.store.set_meta("best_candidate", new_id)
            write_best_potential(ctx.run_dir, prob.agent, get_candidate(ctx.store, new_id), prob.s_min_train)
            promoted = True
    held_after = {m: ctx.heldout(r.x) for m, r in results.items()}
    summary = {
        "candidate": row.id, "polished_candidate": new_id, "method": args.method, "improved": bool(improved),
        "best_potential_rewritten": promoted, "n_params": len(p0),
        "action_before": {"train": f0, "heldout": h0}, "action_after": {"train": res.fun, "heldout": h1},
        "s_min_train": prob.s_min_train, "s_min_heldout": prob.s_min_heldout,
        "gap_before": f0 - prob.s_min_train, "gap_after": res.fun - prob.s_min_train,
        "evaluations": res.evaluations, "seconds": res.seconds,
        "schedule": {"iterations": args.iterations, "samples": args.samples, "keep": args.keep,
                     "scale": args.scale, "seed": args.seed},
        "compare": {m: f"train {r.fun:.6g}, held-out {held_after[m]:.6g}, {r.evaluations} evaluations, "
                       f"{r.seconds:.2f}s" for m, r in results.items()},
        "captions": {"polish.png": "best training action so far against potential evaluations spent"
                                   + (" for each method (same start, same budget)" if len(results) > 1 else "")},
        "details": "polish/history.json (parameters before / after, every method's convergence history)",
        "at": time.time(),
    }
    history = {
        "candidate": row.id, "params_before": [float(v) for v in p0], "params_after": [float(v) for v in res.x],
        "methods": {m: {"action_after": r.fun, "heldout_after": held_after[m], "evaluations": r.evaluations,
                        "seconds": r.seconds, "message": r.message, "params": [float(v) for v in r.x],
                        "history": [[int(a), float(b)] for a, b in r.history]} for m, r in results.items()},
    }
    for name, data in (("summary.json", summary), ("history.json", history)):
        (out / (name + ".tmp")).write_text(json.dumps(data, indent=1, default=float))
        (out / (name + ".tmp")).replace(out / name)
    plot_convergence(list(results.values()), out / "polish.png", s_min=prob.s_min_train,
                     title=f"polish of candidate {row.id} ({len(p0)} parameters)")
    ctx.store.set_stage_result("polish", {
        "method": args.method, "candidate": row.id, "polished_candidate": new_id,
        "train_before": f0, "train_after": res.fun, "heldout_before": h0, "heldout_after": h1,
        "gap_after": res.fun - prob.s_min_train, "evaluations": res.evaluations, "at": time.time()})
    ctx.store.log_event("polish", "done", {"candidate": row.id, "new": new_id, "method": args.method})
    if args.json:
        print(json.dumps(summary, indent=1, default=float))
        return 0
    print(f"polish {args.method}: candidate {row.id}, {len(p0)} parameters, {res.evaluations} evaluations, "
          f"{res.seconds:.2f}s")
    print(f"  train action    {f0:.6f} -> {res.fun:.6f}   (S_min train {prob.s_min_train:.6f}, "
          f"gap {f0 - prob.s_min_train:.6f} -> {res.fun - prob.s_min_train:.6f})")
    print(f"  held-out action {h0:.6f} -> {h1:.6f}   (S_min held-out {prob.s_min_heldout:.6f})")
    for m, r in results.items():
        if m != args.method:
            print(f"  compare {m:<14} train {r.fun:.6f} in {r.evaluations} evaluations")
    if promoted:
        print(f"  wrote candidate {new_id} (parents [{row.id}], operator polish:{args.method}) and "
              f"{Path(ctx.run_dir) / 'best_potential.py'}; candidate {row.id} is kept in the store")
    elif improved:
        print(f"  wrote candidate {new_id} (parents [{row.id}], operator polish:{args.method}); it does not beat "
              f"the run's best (candidate {current.id}, train {current.train_action:.6f}): "
              f"best_potential.py left unchanged")
    else:
        print("  no improvement (the parameters are already a local optimum of the training action): "
              "best_potential.py left unchanged")
    print(f"  wrote {out / 'summary.json'} and {out / 'polish.png'}")
    return 0
