"""The run folder (RUN/): the one owner of its paths, and what a stage reads back from its files.

``RunDir(run)`` names every file and folder of a run; no other module joins a file name under RUN/
(tests/test_rundir_owner.py checks it)::

    RUN/store.sqlite             the store (STORE_FILENAME)        RUN/.lock     the writer lock
    RUN/fit/{potentials.csv, fit.json}                             the saved fit (write_fit_files, load_fit)
    RUN/diagnose/{diagnostics.json, NAME.png, NAME.svg}            the diagnostics and their figures
    RUN/evolve/{summary.json, pareto.csv, pareto.png, curves.png, logbook.json}
    RUN/polish/{summary.json, history.json, polish.png}
    RUN/attribution/{summary.json, details.json, attribution.csv, attribution.png}
    RUN/best_potential.py        the law (or candidate) exported as a self-contained module
    RUN/report.html              the report page

Read back here, once: the saved fit (``load_fit``); evolve's summary (``evolve_summary``, its blocks
checked); the settings of the problem evolve searched (``evolve_settings``: split seed and fraction,
agent, fit settings, as recorded; ``search.problem.problem_for_run`` rebuilds the problem from them);
the law evolve's model selection chose (``selected_law``); and the run's best candidate
(``best_candidate``, one rule). Pure file handling: no fitting, no science. The run folder is data
(it may come from someone else): a value of the wrong type reads as missing.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from potsearch.core.atomic import write_json, write_text
from potsearch.core.errors import InputError, StageMissing
from potsearch.core.textsafe import csv_cell, csv_value

STORE_FILENAME = "store.sqlite"
SUMMARY = "summary.json"            # every later stage's folder: evolve/, polish/, attribution/
FIT_JSON, POTENTIALS_CSV = "fit.json", "potentials.csv"
DIAGNOSTICS = "diagnostics.json"
PARETO_CSV, PARETO_PNG, CURVES_PNG, LOGBOOK = "pareto.csv", "pareto.png", "curves.png", "logbook.json"


class RunDir:
    """The paths of one run folder, ``RunDir(run).fit_json`` and so on (nothing is created or read here)."""

    __slots__ = ("root",)

    def __init__(self, root: str | Path):
        self.root = Path(root)

    # the store, the lock, the exported law, the report
    store = property(lambda self: self.root / STORE_FILENAME)
    lock = property(lambda self: self.root / ".lock")
    best_potential = property(lambda self: self.root / "best_potential.py")
    report_html = property(lambda self: self.root / "report.html")

    def stage_dir(self, stage: str) -> Path:
        """A stage's folder (fit, diagnose, evolve, polish, attribution)."""
        return self.root / stage

    def stage_summary(self, stage: str) -> Path:
        """A later stage's summary.json (evolve, polish, attribution)."""
        return self.root / stage / SUMMARY

    # fit/
    fit_dir = property(lambda self: self.root / "fit")
    fit_json = property(lambda self: self.fit_dir / FIT_JSON)
    potentials_csv = property(lambda self: self.fit_dir / POTENTIALS_CSV)
    # diagnose/
    diagnose_dir = property(lambda self: self.root / "diagnose")
    diagnostics_json = property(lambda self: self.diagnose_dir / DIAGNOSTICS)

    def diagnose_figure(self, name: str) -> Path:
        """A diagnostics figure, RUN/diagnose/NAME.png (``views.plots`` writes it)."""
        return self.diagnose_dir / f"{name}.png"

    # evolve/
    evolve_dir = property(lambda self: self.root / "evolve")
    evolve_summary = property(lambda self: self.evolve_dir / SUMMARY)
    pareto_csv = property(lambda self: self.evolve_dir / PARETO_CSV)
    logbook_json = property(lambda self: self.evolve_dir / LOGBOOK)
    # polish/
    polish_dir = property(lambda self: self.root / "polish")
    polish_summary = property(lambda self: self.polish_dir / SUMMARY)
    polish_history = property(lambda self: self.polish_dir / "history.json")
    polish_png = property(lambda self: self.polish_dir / "polish.png")
    # attribution/
    attribution_dir = property(lambda self: self.root / "attribution")
    attribution_summary = property(lambda self: self.attribution_dir / SUMMARY)
    attribution_details = property(lambda self: self.attribution_dir / "details.json")
    attribution_csv = property(lambda self: self.attribution_dir / "attribution.csv")
    attribution_png = property(lambda self: self.attribution_dir / "attribution.png")


# ----------------------------------------------------------------------------- fit/
POTENTIAL_COLUMNS = ["state", "potential", "lower_bound", "scc", "unbounded", "visits", "stderr",
                     "scc_potential", "scc_size", "scc_rank", "ref_potential", "ref_bound", "ref_relation"]
REFERENCE_COLUMNS = POTENTIAL_COLUMNS[-3:]   # absent from fits written before the reference convention


def _column(a, inf: str = "inf") -> list:
    """A float column as CSV text, vectorised: repr of each finite value (exact round trip), "" for NaN,
    ``inf`` / "-inf" for the infinities (the reference columns write "+inf")."""
    a = np.asarray(a, dtype=float)
    out = np.full(len(a), "", dtype=object)
    fin = np.isfinite(a)
    out[fin] = list(map(repr, a[fin].tolist()))
    out[a == np.inf], out[a == -np.inf] = inf, "-inf"
    return out.tolist()


def write_fit_files(out: Path, res, summary: dict) -> None:
    """potentials.csv and fit.json in ``out`` (RUN/fit, or the fit's ``--out``) of a least-action fit ``res``
    (a ``science.action.FitResult``) and its ``summary``. A state name a spreadsheet would run as a formula
    (``=1+1``) is written with a leading apostrophe (``textsafe.csv_cell``); ``load_fit`` reads it back exactly.
    Columns are formatted whole and written by the csv module's C writer: 10^5 states in well under a second."""
    out.mkdir(parents=True, exist_ok=True)
    n = res.n_states
    sizes = np.bincount(res.scc)
    rank = np.empty(res.n_sccs, dtype=int)
    rank[np.asarray(res.scc_order, dtype=int)] = np.arange(res.n_sccs)
    se = res.stderr if res.stderr is not None else np.full(n, np.nan)
    ref = res.reference
    blank = [""] * n
    scc = np.asarray(res.scc, dtype=int)
    cols = [list(map(csv_cell, res.names)), _column(res.potential), _column(res.lower_bound), scc.tolist(),
            np.where(res.unbounded, "true", "false").tolist(), np.asarray(res.visits, dtype=int).tolist(),
            _column(se), _column(res.scc_potential), sizes[scc].tolist(), rank[scc].tolist(),
            _column(ref.potential, "+inf") if ref is not None else blank,
            _column(ref.bound) if ref is not None else blank,
            list(ref.relation_names()) if ref is not None else blank]
    fh = io.StringIO()
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(POTENTIAL_COLUMNS)
    w.writerows(zip(*cols))
    write_text(out / POTENTIALS_CSV, fh.getvalue())
    write_json(out / FIT_JSON, summary)


@dataclass
class SavedFit:
    """A run's saved fit, as read back from fit/ (what later stages use)."""

    names: list[str]
    potential: np.ndarray
    lower_bound: np.ndarray
    scc_potential: np.ndarray
    scc: np.ndarray
    unbounded: np.ndarray
    visits: np.ndarray
    stderr: np.ndarray
    summary: dict
    ref_potential: np.ndarray | None = None    # reference-SCC convention (None: a fit from before it)
    ref_bound: np.ndarray | None = None
    ref_relation: list[str] | None = None

    @property
    def s_min(self) -> float:
        return float(self.summary["action"])

    def target_potential(self) -> np.ndarray:
        return np.where(self.unbounded, self.lower_bound, self.potential)

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self.target_potential()))


def load_fit(run_dir: str | Path) -> SavedFit:
    rd = RunDir(run_dir)
    if not rd.fit_json.exists() or not rd.potentials_csv.exists():
        raise StageMissing(f"this run has no fit yet: run `potsearch fit {run_dir}` first", str(run_dir))
    summary = json.loads(rd.fit_json.read_text())
    cols: dict[str, list] = {c: [] for c in POTENTIAL_COLUMNS}
    with open(rd.potentials_csv, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        has_ref = all(c in (reader.fieldnames or []) for c in REFERENCE_COLUMNS)
        wanted = POTENTIAL_COLUMNS if has_ref else [c for c in POTENTIAL_COLUMNS if c not in REFERENCE_COLUMNS]
        for rec in reader:
            for c in wanted:
                cols[c].append(rec[c])

    def f(c):
        return np.array([float(v) if v != "" else np.nan for v in cols[c]])

    return SavedFit(
        names=[csv_value(n) for n in cols["state"]],   # the spreadsheet guard of write_fit undone
        potential=f("potential"), lower_bound=f("lower_bound"),
        scc_potential=f("scc_potential"), scc=np.array(cols["scc"], dtype=int),
        unbounded=np.array([v == "true" for v in cols["unbounded"]]), visits=np.array(cols["visits"], dtype=int),
        stderr=f("stderr"), summary=summary,
        ref_potential=f("ref_potential") if has_ref else None, ref_bound=f("ref_bound") if has_ref else None,
        ref_relation=cols["ref_relation"] if has_ref else None,
    )


# ----------------------------------------------------------------------------- evolve/summary.json
# the blocks of summary.json that readers take apart: each must be an object (a file from someone else
# may hold anything); a block of another type is read as missing
_SUMMARY_OBJECTS = ("selection", "config", "best", "llm", "problem", "fit", "split")
_SELECTION_OBJECTS = ("selected", "lowest")


def evolve_summary(run_dir) -> dict:
    """A run's evolve/summary.json as a dict ({} when it is missing or not a JSON object). Its blocks
    that stages take apart (``selection`` with ``selected``/``lowest``, ``config``, ...) are objects or
    absent: a block of another type is dropped, as if missing."""
    try:
        d = json.loads(RunDir(run_dir).evolve_summary.read_text())
    except (OSError, ValueError, RecursionError):   # a summary nested too deep is no summary either
        return {}
    if not isinstance(d, dict):
        return {}
    for k in _SUMMARY_OBJECTS:
        if k in d and not isinstance(d[k], dict):
            del d[k]
    sel = d.get("selection")
    if sel is not None:
        for k in _SELECTION_OBJECTS:
            if k in sel and not isinstance(sel[k], dict):
                del sel[k]
    return d


def _split_value(k: str, v) -> bool:
    """A usable seed (an integer in [0, 2**63)) or held-out fraction (a number in [0, 1))."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    if k == "seed":
        return isinstance(v, int) and 0 <= v < 2**63
    return 0.0 <= v < 1.0          # NaN fails


def _sub(d, key: str) -> dict:
    return d[key] if isinstance(d, dict) and isinstance(d.get(key), dict) else {}


def evolve_settings(run_dir, store=None) -> dict:
    """The settings of the problem evolve searched on this run, as recorded: ``seed`` and
    ``heldout_fraction`` of the split (from evolve/summary.json: its top level, ``split``,
    ``problem.split`` or ``config``, first usable value wins; then the store's evolve stage result when
    ``store`` is given), ``agent`` (config.agent, a string) and ``fit`` (config.fit, a mapping). A key
    is present only when recorded and usable: the caller's defaults stand for the rest
    (``search.problem.problem_for_run`` checks agent and fit against their definitions)."""
    summary = evolve_summary(run_dir)
    found: dict = {}
    sources = [summary, (store.stage_results().get("evolve") or {}) if store is not None else {}]
    for d in sources:
        if not isinstance(d, dict):
            continue
        for cand in (d, _sub(d, "split"), _sub(_sub(d, "problem"), "split"), _sub(d, "config")):
            for k in ("seed", "heldout_fraction"):
                if k in cand and k not in found and _split_value(k, cand[k]):
                    found[k] = cand[k]
    cfg = _sub(summary, "config")
    if isinstance(cfg.get("agent"), str):
        found["agent"] = cfg["agent"]
    if isinstance(cfg.get("fit"), dict):
        found["fit"] = cfg["fit"]
    return found


def selected_law(summary: dict, store=None) -> dict | None:
    """The law evolve's model selection chose, None when there is none.

    Without ``store``: the ``selection.selected`` block of evolve/summary.json (``summary``, as
    ``evolve_summary`` reads it) when it names a law (a non-empty source); a search where no
    selection ran records ``selected: {}``, which is none. With ``store``: the law as the store keeps
    it (its simplified form, with the bootstrap standard errors: ``CandidateStore.selected_law``), of
    the search the summary names, else of the newest search."""
    if store is not None:
        return store.candidates.selected_law(summary.get("search_id"))
    law = (summary.get("selection") or {}).get("selected") or {}
    return law if isinstance(law.get("source"), str) and law["source"] else None


# ----------------------------------------------------------------------------- the best candidate
def best_candidate(store, run_dir, ref=None):
    """The run's best candidate (a ``CandidateRow``), one rule for every stage: ``ref`` (id or uid) if
    given; else the better (lower training action, then lower id) of the designated bests, the store's
    ``best_candidate`` meta (set by polish) and evolve's ``best`` (evolve/summary.json), so that a later
    evolve run may beat an earlier polish; else the scored candidate with the lowest training action
    (``CandidateStore.best``). StageMissing when the run has no scored candidate."""
    if ref is not None:
        row = store.candidates.get(ref)
        if row is None:
            raise InputError(f"no candidate {ref!r} in this run's store", str(run_dir))
        if row.train_action is None or not row.params and (row.n_params or 0) > 0:
            raise InputError(f"candidate {ref} has no fitted parameters (it failed to score)", str(run_dir))
        return row
    lowest = store.candidates.best()
    if lowest is None:
        raise StageMissing(f"this run has no evolved potential yet: run `potsearch evolve {run_dir}` first",
                           str(run_dir))
    picks = []
    for ref_ in (store.get_meta("best_candidate"), evolve_summary(run_dir).get("best", {}).get("uid")):
        row = store.candidates.get(ref_) if ref_ is not None else None
        if row is not None and row.train_action is not None:
            picks.append(row)
    return min(picks, key=lambda r: (r.train_action, r.id)) if picks else lowest
