"""`potsearch attribute --run R`: which features and terms of the best potential matter."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

from ..errors import InputError


def add_arguments(p):
    p.add_argument("--run", required=True, help="run directory (needs fit and evolve)")
    p.add_argument("--candidate", default=None, metavar="ID", help="attribute this candidate (id or uid) instead")
    p.add_argument("--repeats", type=int, default=10, help="permutation repeats per feature (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--refit-evals", type=int, default=1500, metavar="N",
                   help="evaluation budget of each ablation refit (default 1500)")
    p.add_argument("--json", action="store_true", help="print every measure as JSON (attribution/details.json)")


def _f(v, nd=5):
    return "" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def run(args) -> int:
    from ..attribution import attribute, compile_terms, plot, write_csv
    from ..polish import compile_source, load_context

    if args.repeats < 1:
        raise InputError(f"--repeats must be >= 1, got {args.repeats}")
    if args.refit_evals < 1:
        raise InputError(f"--refit-evals must be >= 1, got {args.refit_evals}")
    ctx = load_context(args.run, args.candidate)
    row = ctx.row
    terms_fn = compile_terms(row.source, lambda s: compile_source(s, checked=False))
    t0 = time.perf_counter()
    att = attribute(row.source, ctx.fn, ctx.params, ctx.train, ctx.heldout, repeats=args.repeats, seed=args.seed,
                    refit_evals=args.refit_evals, terms_fn=terms_fn)
    seconds = time.perf_counter() - t0
    out = Path(ctx.run_dir) / "attribution"
    out.mkdir(parents=True, exist_ok=True)
    full = att.summary()
    feats = att.by_kind("feature")
    details = {"candidate": row.id, **full, "seconds": seconds}
    summary = {
        "candidate": row.id, "top_feature": full["top_feature"], "ranking": full["ranking"],
        "base_train_action": att.base_train, "base_heldout_action": att.base_heldout,
        "refit_train_action": att.refit_train, "repeats": att.repeats, "seed": att.seed, "seconds": seconds,
        "ablation_delta": {r.name: r.ablation_delta for r in feats[:12]},
        "permutation_mean": {r.name: r.permutation_mean for r in feats[:12]},
        "terms": len(att.by_kind("term")),
        "features_not_read": [f for f in ctx.problem.usable if f not in full["ranking"]],
        "notes": " ".join(att.notes),
        "measures": {
            "ablation_delta": "feature set to its mean (term: dropped), other parameters refitted; "
                              "Δ train action vs the full formula refitted the same way",
            "ablation_delta_heldout": "the ablated, refitted formula on held-out edges minus the full one",
            "permutation_mean": "feature (term) values shuffled across states, parameters fixed; "
                                "Δ train action, mean ± sd over repeats",
            "sensitivity": "|dS/dp_i · p_i| summed over the parameters involved (≈ 0 at an optimum)",
            "curvature": "½ ∂²S/∂p_i² · p_i² summed over the parameters involved"},
        "captions": {"attribution.png": "Δ train action when a feature is set to its mean and the rest refitted "
                                        "(ablation) or shuffled across states (permutation, mean ± sd); "
                                        "right: the same per additive term"},
        "details": "attribution/details.json (every measure per feature, term and parameter)",
        "at": time.time()}
    write_csv(att, out / "attribution.csv")
    plot(att, out / "attribution.png")
    (out / "summary.json.tmp").write_text(json.dumps(summary, indent=1, default=float))
    (out / "summary.json.tmp").replace(out / "summary.json")
    (out / "details.json.tmp").write_text(json.dumps(details, indent=1, default=float))
    (out / "details.json.tmp").replace(out / "details.json")
    ctx.store.set_stage_result("attribute", {
        "candidate": row.id, "top_feature": feats[0].name if feats else None,
        "ranking": " > ".join(r.name for r in feats[:5]), "features": len(feats),
        "terms": len(att.by_kind("term")), "seconds": seconds, "at": time.time()})
    ctx.store.log_event("attribute", "done", {"candidate": row.id})
    if args.json:
        print(json.dumps(details, indent=1, default=float))
        return 0
    _print(att, row, out, seconds)
    return 0


def _print(att, row, out: Path, seconds: float) -> None:
    import sys

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..evolve.outputs import printable as _printable  # model text: control characters escaped

    con = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    held = f", held-out {att.base_heldout:.6f}" if att.base_heldout is not None else ""
    con.print(f"attribution of candidate {row.id}: train action {att.base_train:.6f}{held} "
              f"({att.repeats} permutation repeats, {seconds:.1f}s)")
    for kind, rows in (("feature", att.by_kind("feature")), ("term", att.by_kind("term"))):
        if not rows:
            continue
        tab = Table(show_edge=False, title=f"{kind}s (ΔS: action increase, higher = more important)",
                    title_justify="left")
        for col in ("rank", kind, "ablation ΔS", "held-out ΔS", "permutation ΔS", "± sd", "curvature"):
            tab.add_column(col, justify="left" if col == kind else "right")
        for r in rows:
            tab.add_row(str(r.rank), Text(_printable(r.name if kind == "feature" else r.detail[:50])),
                        _f(r.ablation_delta),
                        _f(r.ablation_delta_heldout), _f(r.permutation_mean), _f(r.permutation_sd), _f(r.curvature))
        con.print(tab)
    for n in att.notes:
        con.print(f"note: {_printable(n)}", markup=False)
    con.print(f"wrote {out / 'attribution.csv'}, {out / 'attribution.png'} and {out / 'summary.json'}")
