"""The compare stage: two or more fitted runs of one agent side by side (``science.compare``), their
Table 3 rows and detailed-balance verdicts, and law transfer (each run's selected law refitted on the
other run's data, ``law.transfer``). Reads each run's saved fit (``store.rundir.load_fit``) and counts
(its ``RunStore``); writes nothing but, with ``html``, the compare page (``views.compare_page``).

Refused in one line (InputError, exit status 2): fewer than two runs, a run without a fit, runs of
different agents (unless ``force``), runs fitted with different escape conventions (unless ``force``; then
a warning).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from potsearch.core.errors import InputError
from potsearch.science.compare import CORRECTIONS, Comparison, RunData, compare_runs


@dataclass(frozen=True)
class CompareOptions:
    """``bootstrap``: replicates per run (intervals, z-scores); ``seed``; ``alpha``: the level of the
    intervals and of the corrected tests; ``correction``: bh or holm; ``force``: compare runs of different
    agents or escape conventions; ``transfer``: refit each run's selected law on the others' data;
    ``transfer_bootstrap``: replicates for the transferred gaps' standard errors; ``html``: write the compare
    page (one self-contained HTML file) there."""

    bootstrap: int = 200
    seed: int = 0
    alpha: float = 0.05
    correction: str = "holm"
    force: bool = False
    transfer: bool = True
    transfer_bootstrap: int = 20
    html: str | None = None

    def validate(self) -> "CompareOptions":
        if self.bootstrap < 0 or self.transfer_bootstrap < 0:
            raise InputError("--bootstrap must be >= 0")
        if not 0 < self.alpha < 1:
            raise InputError(f"--alpha must be in (0, 1), got {self.alpha}")
        if self.correction not in CORRECTIONS:
            raise InputError(f"--correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if self.html is not None:
            out = Path(self.html)
            if out.is_dir():
                raise InputError("--html is a directory; give a file name such as compare.html", str(out))
            if not out.parent.is_dir():
                raise InputError("--html: its folder does not exist", str(out))
        return self


@dataclass
class CompareResult:
    """``comparison`` (``science.compare.Comparison``: ``pairs``, ``summary``), ``runs`` (one row per run:
    agent, escapes, S_min, Table 3 numbers, detailed-balance verdict), ``transfer`` (one row per law and
    run it was refitted on), ``warnings``."""

    options: CompareOptions
    comparison: Comparison
    runs: pd.DataFrame
    transfer: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    html: Path | None = None           # the compare page, when options.html asked for it
    notes: list[str] = field(default_factory=list)   # why a part is missing (also among ``warnings``)

    @property
    def pairs(self) -> dict:
        return self.comparison.pairs

    def to_json(self) -> dict:
        def clean(v):
            if isinstance(v, dict):
                return {str(k): clean(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, (float, np.floating)):
                return float(v) if np.isfinite(v) else None
            return v.item() if isinstance(v, np.generic) else v

        rec = lambda df: json.loads(df.to_json(orient="records"))  # noqa: E731  (NaN -> null)
        return clean({"runs": rec(self.runs), "warnings": self.warnings, "transfer": rec(self.transfer),
                      "pairs": [{"summary": p.summary, "aligned": rec(p.aligned), "only_a": p.states.loc[~p.states["in_b"], "state"].tolist(),
                                 "only_b": p.states.loc[~p.states["in_a"], "state"].tolist(),
                                 "homogeneity": rec(p.homogeneity)} for p in self.pairs.values()]})


def _labels(paths: list[Path]) -> list[str]:
    names = [p.name or str(p) for p in paths]
    return [n if names.count(n) == 1 else str(p) for n, p in zip(names, paths)]


def _load(path: Path, label: str) -> tuple[RunData, dict]:
    from potsearch.collector.stats import table3
    from potsearch.search.problem import agent_of
    from potsearch.store import STORE_FILENAME, RunStore
    from potsearch.store.rundir import RunDir, load_fit

    if not path.is_dir() or not (path / STORE_FILENAME).exists():
        raise InputError("not a run directory (no store.sqlite inside)", str(path))
    saved = load_fit(path)   # StageMissing (an InputError) when the run has no fit
    with RunStore.open(path, readonly=True) as store:
        counts = store.counts()
        info = {"run": label, "agent": agent_of(store, saved.names), "escapes": saved.summary.get("options", {}).get(
            "escapes", "count"), "s_min": saved.s_min, "states": len(saved.names), **{
            k: v for k, v in table3(store).items() if k in ("samples", "unique_states", "unique_transitions",
                                                            "escape_rate", "self_loop_rate", "pairs_both_ways")}}
        law = store.candidates.selected_law() if store.has_table("simplified") else None
    diag = RunDir(path).diagnostics_json
    info["detailed_balance"] = (json.loads(diag.read_text()).get("verdict") or {}).get("status") if diag.exists() else None
    info["law"] = law
    return RunData.from_fit(label, saved, counts), info


def _transfer(runs: list[RunData], infos: list[dict], options: CompareOptions) -> tuple[pd.DataFrame, list[str]]:
    """Each run's selected law refitted on every other run's data, beside that run's own law."""
    from potsearch.law.features import feature_table
    from potsearch.law.transfer import Law, law_transfer
    from potsearch.search.polish import compile_source

    cols = ["law_of", "on", "gap", "gap_se", "native_gap", "native_gap_se", "params", "s_min"]
    laws = {}
    for info in infos:
        if info["law"] and info["law"].get("source"):
            ns = compile_source(info["law"]["source"])       # model-written code runs in the sandbox only
            laws[info["run"]] = Law(info["run"], ns["potential"], int(ns.get("N_PARAMS", 0) or 0),
                                    list(info["law"].get("params") or []))
    if len(laws) < 2:
        return pd.DataFrame(columns=cols), ["law transfer needs a selected law in at least two runs (run evolve)"]
    rows = []
    for run, info in zip(runs, infos):
        if run.label not in laws:
            continue
        feats = feature_table(info["agent"], run.names)
        for other, law in laws.items():
            if other == run.label:
                continue
            t = law_transfer(law, laws[run.label], run.counts, feats, run.names, B=options.transfer_bootstrap,
                             seed=options.seed, weight=run.weight, n0=run.n0, min_visits=run.min_visits,
                             kernel=run.kernel, beta=run.beta, escapes=run.escapes)
            rows.append([other, run.label, t.transferred["gap"], t.transferred["gap_se"], t.native["gap"],
                         t.native["gap_se"], t.transferred["params"], t.s_min])
    return pd.DataFrame(rows, columns=cols), []


def run(runs, options: CompareOptions = CompareOptions()) -> CompareResult:
    """Compare the fitted runs at the paths ``runs`` (module doc)."""
    options.validate()
    paths = [Path(r) for r in runs]
    if len(paths) < 2:
        raise InputError("compare needs at least two runs (got one)" if paths else "compare needs at least two runs")
    if len({p.resolve() for p in paths}) < len(paths):
        raise InputError("the same run is named twice")
    loaded = [_load(p, lab) for p, lab in zip(paths, _labels(paths))]
    data, infos = [d for d, _ in loaded], [i for _, i in loaded]
    warnings = []
    agents = sorted({i["agent"] for i in infos})
    if len(agents) > 1:
        if not options.force:
            raise InputError(f"the runs are of different agents ({', '.join(agents)}): their states are not "
                             f"comparable (--force to compare anyway)")
        warnings.append(f"runs of different agents ({', '.join(agents)}) compared (--force)")
    conventions = sorted({i["escapes"] for i in infos})
    if len(conventions) > 1:
        if not options.force:
            raise InputError(f"the runs were fitted with different escape conventions ({', '.join(conventions)}): "
                             f"refit them with one `potsearch fit --escapes ...` (or --force)")
        warnings.append(f"runs fitted with different escape conventions ({', '.join(conventions)}): potentials "
                        f"with escapes counted absorb log(1 - escape rate); differences may be escape habits")
    comparison = compare_runs(data, B=options.bootstrap, seed=options.seed, alpha=options.alpha,
                              correction=options.correction)
    transfer, notes = _transfer(data, infos, options) if options.transfer else (pd.DataFrame(), [])
    table = pd.DataFrame([{k: v for k, v in i.items() if k != "law"} for i in infos])
    table["law"] = [(i["law"] or {}).get("text") for i in infos]
    result = CompareResult(options, comparison, table, transfer, warnings + notes, notes=notes)
    if options.html:
        result.html = write_page(result, Path(options.html))
    return result


def view(result: CompareResult):
    """The comparison as the plain data ``views.compare_page`` draws (a ``CompareView``), figures drawn."""
    from potsearch.views.compare_page import CompareView, PairView
    from potsearch.views.plots import compare_scatter

    rec = lambda df: df.to_dict("records") if len(df) else []  # noqa: E731
    pairs, figures = [], []
    for p in result.pairs.values():
        al = p.aligned
        pairs.append(PairView(p.a, p.b, p.summary, rec(al), p.states.loc[~p.states["in_b"], "state"].tolist(),
                              p.states.loc[~p.states["in_a"], "state"].tolist(), rec(p.homogeneity)))
        col = lambda c: al[c].to_numpy(float) if c in al else np.full(len(al), np.nan)  # noqa: E731
        s = p.summary
        figures.append(compare_scatter(p.a, p.b, al["state"].tolist(), col("potential_a"), col("potential_b"),
                                       col("se_a"), col("se_b"), al["flagged"].to_numpy(bool),
                                       float(s.get("scale", np.nan)), float(s.get("offset", 0.0) or 0.0),
                                       s.get("scale_ci") or [np.nan, np.nan]) if len(al) else None)
    return CompareView(rec(result.runs), pairs, figures, rec(result.transfer),
                       [w for w in result.warnings if w not in result.notes], list(result.notes), result.options.alpha)


def write_page(result: CompareResult, out: Path) -> Path:
    """The compare page (``views.compare_page``) from ``result``, written to ``out`` atomically."""
    import time

    from potsearch.core.atomic import write_text
    from potsearch.views.compare_page import compare_document

    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return write_text(out, compare_document(" vs ".join(result.runs["run"].tolist()), stamp, view(result)))
