"""`potsearch polish --run R`: polish the best potential's parameters (random descent or scipy).

The stage is ``potsearch.stages.polish``; this module parses arguments and prints its result.
"""
from __future__ import annotations

import json

from potsearch.cli.runarg import add_run
from potsearch.stages.polish import METHODS, PolishOptions
from potsearch.store.rundir import RunDir

_D = PolishOptions()
#: flags that only change what is printed (tests/test_cli_api_parity.py): the API is quiet by default
PRINTING = ("json", "quiet")


def add_arguments(p):
    add_run(p, "run directory (needs fit and evolve)")
    p.add_argument("--method", choices=list(METHODS), default=_D.method,
                   help="random-descent: the paper's schedule (default); lbfgs / nelder-mead: scipy")
    p.add_argument("--iterations", type=int, default=_D.iterations, help="random-descent iterations (default 100)")
    p.add_argument("--samples", type=int, default=_D.samples, help="perturbations per iteration (default 20)")
    p.add_argument("--keep", type=int, default=_D.keep, help="best points kept per iteration (default 5)")
    p.add_argument("--scale", type=float, default=_D.scale,
                   help="perturbation sd as a fraction of |p_i| (default 0.1, as the paper's script)")
    p.add_argument("--seed", type=int, default=_D.seed)
    p.add_argument("--max-evals", type=int, default=_D.max_evals, metavar="N",
                   help="evaluation budget of lbfgs / nelder-mead (default iterations x samples)")
    p.add_argument("--candidate", default=_D.candidate, metavar="ID",
                   help="polish this candidate (id or uid) instead")
    p.add_argument("--compare", action="store_true", default=_D.compare,
                   help="also run the other two methods (same budget) for the figure and summary")
    p.add_argument("--json", action="store_true", help="print polish/summary.json")
    p.add_argument("--quiet", action="store_true", default=_D.quiet, help="no progress output")


def run(args) -> int:
    from potsearch.stages.polish import run as polish

    opts = PolishOptions(method=args.method, iterations=args.iterations, samples=args.samples, keep=args.keep,
                         scale=args.scale, seed=args.seed, max_evals=args.max_evals, candidate=args.candidate,
                         compare=args.compare, quiet=args.quiet)
    res = polish(args.run, opts)
    s = res.summary
    if args.json:
        print(json.dumps(s, indent=1, default=float))
        return 0
    f0, f1, h0, h1 = res.train_before, res.train_after, res.heldout_before, res.heldout_after
    smin, row_id, new_id, method = s["s_min_train"], s["candidate"], s["polished_candidate"], s["method"]
    print(f"polish {method}: candidate {row_id}, {s['n_params']} parameters, {s['evaluations']} evaluations, "
          f"{s['seconds']:.2f}s")
    print(f"  train action    {f0:.6f} -> {f1:.6f}   (S_min train {smin:.6f}, "
          f"gap {f0 - smin:.6f} -> {f1 - smin:.6f})")
    print(f"  held-out action {h0:.6f} -> {h1:.6f}   (S_min held-out {s['s_min_heldout']:.6f})")
    for m, r in res.methods.items():
        if m != method:
            print(f"  compare {m:<14} train {r.fun:.6f} in {r.evaluations} evaluations")
    if res.promoted:
        print(f"  wrote candidate {new_id} (parents [{row_id}], operator polish:{method}) and "
              f"{RunDir(res.out.parent).best_potential}; candidate {row_id} is kept in the store")
    elif res.improved and s.get("best_potential_kept"):
        print(f"  wrote candidate {new_id} (parents [{row_id}], operator polish:{method}), now the run's lowest-action "
              f"candidate; best_potential.py left unchanged: it holds the law evolve selected (`potsearch show` "
              f"shows it, `--candidate {new_id}` the polished one)")
    elif res.improved:
        cur = res.best_before
        print(f"  wrote candidate {new_id} (parents [{row_id}], operator polish:{method}); it does not beat "
              f"the run's best (candidate {cur.id}, train {cur.train_action:.6f}): "
              f"best_potential.py left unchanged")
    else:
        print("  no improvement (the parameters are already a local optimum of the training action): "
              "best_potential.py left unchanged")
    rd = RunDir(res.out.parent)
    print(f"  wrote {rd.polish_summary} and {rd.polish_png}")
    return 0
