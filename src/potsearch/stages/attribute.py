"""The attribute stage: which features and additive terms of a candidate potential matter.

``run(run_dir, AttributeOptions(...)) -> AttributeResult``. The measures (ablation with refit,
permutation, sensitivity, curvature) are in ``potsearch.law.attribution``; this module picks the
candidate, runs them and writes attribution/{attribution.csv, attribution.png, summary.json,
details.json} under the run's writer lock.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from potsearch.core.atomic import write_json
from potsearch.core.errors import InputError
from potsearch.core.stageopts import SummaryView

MEASURES = {
    "ablation_delta": "feature set to its mean (term: dropped), other parameters refitted; "
                      "Δ train action vs the full formula refitted the same way",
    "ablation_delta_heldout": "the ablated, refitted formula on held-out edges minus the full one",
    "permutation_mean": "feature (term) values shuffled across states, parameters fixed; "
                        "Δ train action, mean ± sd over repeats",
    "sensitivity": "|dS/dp_i · p_i| summed over the parameters involved (≈ 0 at an optimum)",
    "curvature": "½ ∂²S/∂p_i² · p_i² summed over the parameters involved"}


@dataclass(frozen=True)
class AttributeOptions:
    """Options of the attribute stage (the CLI's and the API's defaults come from here).

    ``candidate``: id or uid (default: the selected law's candidate, else the run's best).
    ``repeats``: permutation repeats per feature. ``refit_evals``: evaluation budget of each ablation
    refit.
    """

    candidate: str | int | None = None
    repeats: int = 10
    seed: int = 0
    refit_evals: int = 1500

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise InputError(f"--repeats must be >= 1, got {self.repeats}")
        if self.refit_evals < 1:
            raise InputError(f"--refit-evals must be >= 1, got {self.refit_evals}")


@dataclass
class AttributeResult(SummaryView):
    """``summary`` (attribution/summary.json), ``details`` (details.json), the measures (``attribution``)."""

    summary: dict
    details: dict
    attribution: object            # potsearch.law.attribution's result (rows by kind)
    candidate_row: object
    out: Path
    seconds: float

    top_feature = property(lambda self: self.summary["top_feature"])
    ranking = property(lambda self: self.summary["ranking"])


    def to_frame(self):
        """One row a feature or term: kind, name, rank and every measure."""
        import pandas as pd

        rows = []
        for kind in ("feature", "term"):
            for r in self.attribution.by_kind(kind):
                rows.append({"kind": kind, "name": r.name, "rank": r.rank, "ablation_delta": r.ablation_delta,
                             "ablation_delta_heldout": r.ablation_delta_heldout,
                             "permutation_mean": r.permutation_mean, "permutation_sd": r.permutation_sd,
                             "curvature": r.curvature})
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (f"AttributeResult(candidate={self.summary['candidate']}, top_feature={self.top_feature!r}, "
                f"features={len(self.attribution.by_kind('feature'))}, terms={self.summary['terms']})")


def run(run_dir, options: AttributeOptions = AttributeOptions()) -> AttributeResult:
    """Attribute ``options.candidate`` (default: the candidate whose simplified form is the law evolve
    selected — the law ``show`` presents; without a selection, the run's best) of the run at ``run_dir``."""
    from potsearch.law.attribution import attribute, compile_terms, plot, write_csv
    from potsearch.search.polish import compile_source, load_context
    from potsearch.store import run_lock
    from potsearch.store.rundir import RunDir, evolve_summary, selected_law

    o = options
    with run_lock(Path(run_dir), "attribute"):
        ref = o.candidate
        if ref is None:
            ref = (selected_law(evolve_summary(run_dir)) or {}).get("uid")
        ctx = load_context(run_dir, ref)
        try:
            row = ctx.row
            terms_fn = compile_terms(row.source, lambda s: compile_source(s, checked=False))
            t0 = time.perf_counter()
            att = attribute(row.source, ctx.fn, ctx.params, ctx.train, ctx.heldout, repeats=o.repeats, seed=o.seed,
                            refit_evals=o.refit_evals, terms_fn=terms_fn)
            seconds = time.perf_counter() - t0
            rd = RunDir(ctx.run_dir)
            out = rd.attribution_dir
            out.mkdir(parents=True, exist_ok=True)
            full = att.summary()
            feats = att.by_kind("feature")
            details = {"candidate": row.id, **full, "seconds": seconds}
            summary = {
                "candidate": row.id, "top_feature": full["top_feature"], "ranking": full["ranking"],
                "base_train_action": att.base_train, "base_heldout_action": att.base_heldout,
                "refit_train_action": att.refit_train, "repeats": att.repeats, "seed": att.seed,
                "seconds": seconds,
                "ablation_delta": {r.name: r.ablation_delta for r in feats[:12]},
                "permutation_mean": {r.name: r.permutation_mean for r in feats[:12]},
                "terms": len(att.by_kind("term")),
                "features_not_read": [f for f in ctx.problem.usable if f not in full["ranking"]],
                "notes": " ".join(att.notes),
                "measures": MEASURES,
                "captions": {"attribution.png": "Δ train action when a feature is set to its mean and the rest "
                                                "refitted (ablation) or shuffled across states (permutation, "
                                                "mean ± sd); right: the same per additive term"},
                "details": "attribution/details.json (every measure per feature, term and parameter)",
                "at": time.time()}
            write_csv(att, rd.attribution_csv)
            plot(att, rd.attribution_png)
            write_json(rd.attribution_summary, summary)
            write_json(rd.attribution_details, details)
            ctx.store.set_stage_result("attribute", {
                "candidate": row.id, "top_feature": feats[0].name if feats else None,
                "ranking": " > ".join(r.name for r in feats[:5]), "features": len(feats),
                "terms": len(att.by_kind("term")), "seconds": seconds, "at": time.time()})
            ctx.store.log_event("attribute", "done", {"candidate": row.id})
        finally:
            ctx.store.close()
    return AttributeResult(summary, details, att, row, out, seconds)
