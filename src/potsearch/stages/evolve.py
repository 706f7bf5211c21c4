"""The evolve stage: the island search for an interpretable potential, and its outputs.

``run(run_dir, EvolveOptions(...)) -> EvolveResult``. The search is ``potsearch.search`` (problem,
islands, operators, sandbox); its outputs (best_potential.py, evolve/summary.json, pareto.csv and
the figures) are written by ``potsearch.search.outputs``. The stage holds the run's writer lock.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from potsearch.core.errors import InputError
from potsearch.core.stageopts import SummaryView
from potsearch.store.rundir import RunDir


@dataclass(frozen=True)
class EvolveOptions:
    """Options of the evolve stage (the CLI's and the API's defaults come from here).

    ``config``: a search config YAML (default: search_configs/default.yaml, else the built-in
    defaults); ``rounds`` / ``islands`` / ``seed`` / ``workers`` override it. ``resume``: continue
    from the run's last evolve checkpoint (a run without one starts a new search and says so).
    ``quiet``: print nothing (no progress, no notes, no warnings). ``address``: score candidates and
    call models on Ray actors of the cluster at that address ('local': an embedded Ray; async loop
    only). ``force``: search even when the fit has fewer states than the floor
    (``science.thindata.EVOLVE_FLOOR``), where any formula reproduces them. ``features``: a features
    table file, or ``module:function`` (a features function of your own code, agents/featurefunc.py),
    stored with the run first (replacing its table) and searched over (store/features.py).
    ``ray_timeout``: seconds to join the cluster at ``address`` (None: ``POTSEARCH_RAY_TIMEOUT``, else
    30; core/raycluster.py): a wrong address fails with one line before anything is written.
    ``patience``: end the search when the Pareto front (and so the lowest training action) has not
    improved for that many rounds (overrides the config's ``patience``; 0 = run every round).
    """

    config: str | None = None
    rounds: int | None = None
    islands: int | None = None
    seed: int | None = None
    workers: int | None = None
    resume: bool = False
    quiet: bool = False
    address: str | None = None
    force: bool = False
    features: str | None = None
    ray_timeout: float | None = None
    patience: int | None = None


@dataclass
class EvolveResult(SummaryView):
    """``summary`` (evolve/summary.json as a dict), the run directory, what the stage noted and its
    thin-data ``warnings`` (``science.thindata.evolve_check``)."""

    summary: dict
    run_dir: Path
    notes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    @property
    def best(self) -> dict | None:
        """The search's own best (lowest training action + parsimony), as found."""
        return self.summary.get("best")

    @property
    def law(self) -> dict | None:
        """The law model selection chose (what best_potential.py holds): summary["selection"]["selected"]."""
        return (self.summary.get("selection") or {}).get("selected") or None


    def pareto(self):
        """The Pareto front of this search (complexity vs training action) as a DataFrame."""
        import pandas as pd

        from potsearch.store import RunStore

        with RunStore.open(self.run_dir, readonly=True) as st:
            front = st.candidates.pareto(search_id=self.summary.get("search_id"))
        cols = ["id", "uid", "complexity", "n_params", "train_action", "heldout_action", "gap", "operator", "source"]
        return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in front], columns=cols)

    to_frame = pareto

    def __repr__(self) -> str:
        b = self.best or {}
        return (f"EvolveResult(rounds={self.summary.get('rounds')}, candidates={self.summary.get('candidates')}, "
                f"best_train_action={b.get('train_action')}, gap={b.get('gap')}, complexity={b.get('complexity')}, "
                f"law={str((self.law or {}).get('text', ''))[:60]!r})")


def search_config(options: EvolveOptions):
    """The SearchConfig the options ask for."""
    from potsearch.search.config import SearchConfig, default_config_path, load_config, with_overrides

    if options.config:
        cfg = load_config(options.config)
    elif default_config_path().exists():
        cfg = load_config(default_config_path())
    else:  # an installed copy without the source tree: the built-in defaults equal default.yaml
        cfg = SearchConfig(source="built-in defaults")
    return with_overrides(cfg, rounds=options.rounds, islands=options.islands, seed=options.seed,
                          workers=options.workers, patience=options.patience)


def run(run_dir, options: EvolveOptions = EvolveOptions()) -> EvolveResult:
    """Run (or resume) the search on the run at ``run_dir``. A fit below the floor is refused (InputError)
    unless ``options.force``; thin-data warnings are said before the search (unless quiet) and kept in
    the result."""
    from potsearch.core.textsafe import printable
    from potsearch.science.thindata import evolve_check
    from potsearch.search.run import evolve
    from potsearch.store.rundir import load_fit
    from potsearch.store import run_lock

    run_dir = Path(run_dir)
    if not RunDir(run_dir).store.exists():
        raise InputError("not a run directory (no store.sqlite inside)", str(run_dir))
    cfg = search_config(options)
    if options.address and options.address != "local":  # a wrong address fails here, before anything is written
        from potsearch.core.raycluster import probe

        probe(options.address, options.ray_timeout)
    fit = load_fit(run_dir)  # StageMissing (one line, exit 2) when the run has no fit
    feats = None
    if options.features:   # a table file, or a features function computed on the fit's states
        from potsearch.agents.featurefunc import read_features

        feats = read_features(options.features, list(fit.names))   # checked before the run is touched
    warnings = evolve_check(int(fit.summary.get("states", len(fit.names))), cfg.gp.max_size, options.force,
                            str(run_dir))
    from potsearch.search.config import unpriced_models

    unpriced = unpriced_models(cfg)   # allowed by llm.allow_unpriced: said, not silent
    if unpriced:
        warnings.append(f"llm.max_cost counts nothing for {len(unpriced)} model(s) without a price ("
                        f"{', '.join(unpriced)}): give llm.prices to cap their spend")
    notes: list[str] = []

    def note(msg: str) -> None:
        notes.append(msg)
        if not options.quiet:
            print(printable(msg), file=sys.stderr, flush=True)

    for w in warnings:
        if not options.quiet:
            print(printable(f"warning: {w}"), file=sys.stderr, flush=True)
    with run_lock(run_dir, "evolve"):
        if feats is not None:
            from potsearch.store import RunStore
            from potsearch.store.features import save

            with RunStore.open(run_dir) as st:
                save(st, feats)
            note(f"stored the {feats.describe()}")
        summary = evolve(run_dir, cfg, resume=options.resume, quiet=options.quiet, log=note, address=options.address,
                         ray_timeout=options.ray_timeout)
    return EvolveResult(summary, run_dir, notes, warnings)
