"""The run folder's files (RUN/): what a stage writes there and reads back. Today: the fit's files
(``fit/potentials.csv``, ``fit/fit.json``), written by ``write_fit_files`` and read by ``load_fit`` for
every later stage. Pure file handling: no fitting, no science."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from potsearch.core.atomic import write_json, write_text
from potsearch.core.errors import StageMissing
from potsearch.core.textsafe import csv_cell, csv_value

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
    """fit/potentials.csv and fit/fit.json of a least-action fit ``res`` (a ``science.action.FitResult``)
    and its ``summary``. A state name a spreadsheet would run as a formula (``=1+1``) is written with a
    leading apostrophe (``textsafe.csv_cell``); ``load_fit`` reads it back exactly. Columns are formatted
    whole (numpy) and written by the csv module's C writer: 10^5 states in well under a second."""
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
    write_text(out / "potentials.csv", fh.getvalue())
    write_json(out / "fit.json", summary)


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
    d = Path(run_dir) / "fit"
    if not (d / "fit.json").exists() or not (d / "potentials.csv").exists():
        raise StageMissing(f"this run has no fit yet: run `potsearch fit {run_dir}` first", str(run_dir))
    summary = json.loads((d / "fit.json").read_text())
    cols: dict[str, list] = {c: [] for c in POTENTIAL_COLUMNS}
    with open(d / "potentials.csv", newline="", encoding="utf-8") as fh:
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
