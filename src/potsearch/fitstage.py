"""The fit stage: resolve an input, build the graph, fit, write fit/ outputs, read them back.

Other stages use ``load_input`` (counts from a run dir, a store file or a transitions file),
``run_fit`` and ``load_fit`` (the saved fit of a run) — never their own parsing.
"""
from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .action import FitResult, fit_exact, fit_whole_graph, make_kernel
from .atomic import write_json, write_text
from .errors import InputError, StageMissing
from .graph import WEIGHT_MODES, Graph, build_graph
from .store import STORE_FILENAME, Counts, RunStore
from .textsafe import csv_cell, csv_value

POTENTIAL_COLUMNS = ["state", "potential", "lower_bound", "scc", "unbounded", "visits", "stderr",
                     "scc_potential", "scc_size", "scc_rank", "ref_potential", "ref_bound", "ref_relation"]
REFERENCE_COLUMNS = POTENTIAL_COLUMNS[-3:]   # absent from fits written before the reference convention


@dataclass
class FitOptions:
    weight: str = "low_reject"
    n0: float | None = None
    min_visits: int = 1
    kernel: str = "softplus"
    beta: float = 1.0
    bootstrap: int = 0
    whole_graph: bool = False
    seed: int = 0
    reference: str | None = None     # state whose SCC is the reference (default: the largest SCC)

    def validate(self) -> "FitOptions":
        if self.weight not in WEIGHT_MODES:
            raise InputError(f"unknown weight mode {self.weight!r}; choose from {', '.join(WEIGHT_MODES)}")
        if self.kernel not in ("softplus", "exp"):
            raise InputError(f"unknown kernel {self.kernel!r}; choose softplus or exp")
        if self.n0 is not None and not self.n0 > 0:
            raise InputError(f"--n0 must be > 0, got {self.n0}")
        if self.min_visits < 0:
            raise InputError(f"--min-visits must be >= 0, got {self.min_visits}")
        if not self.beta > 0:
            raise InputError(f"--beta must be > 0, got {self.beta}")
        if self.bootstrap < 0:
            raise InputError(f"--bootstrap must be >= 0, got {self.bootstrap}")
        return self


@dataclass
class Input:
    counts: Counts
    run_dir: Path | None     # the run directory when the input is a run or a store
    store: RunStore | None


def load_input(path: str | Path) -> Input:
    """A run directory, a store file, or an importable transitions file."""
    from .io import FORMATS, read_counts

    p = Path(path)
    if p.is_dir() or p.name == STORE_FILENAME or p.suffix in (".sqlite", ".db"):
        if p.is_dir() and not (p / STORE_FILENAME).exists():
            raise InputError("not a run directory (no store.sqlite inside)", str(p))
        store = RunStore.open(p)
        return Input(store.counts(), store.run_dir, store)
    if not p.exists():
        raise InputError("no such file or run directory", str(p))
    if p.suffix.lower() not in FORMATS:
        # maybe a store with another name
        with open(p, "rb") as fh:
            if fh.read(16) == b"SQLite format 3\x00":
                store = RunStore.open(p)
                return Input(store.counts(), store.run_dir, store)
    return Input(read_counts(p), None, None)


def run_fit(counts: Counts, opts: FitOptions) -> tuple[Graph, FitResult]:
    opts.validate()
    g = build_graph(counts, weight=opts.weight, n0=opts.n0, min_visits=opts.min_visits)
    if g.n_states == 0:
        raise InputError(f"no state was sampled more than {opts.min_visits} time(s): nothing to fit "
                         f"(lower --min-visits)")
    kernel = make_kernel(opts.kernel, opts.beta)
    if opts.reference is not None and opts.reference not in g.names:
        raise InputError(f"--reference {opts.reference!r} is not among the {g.n_states} fitted states"
                         + (f" (states sampled {opts.min_visits} time(s) or fewer are dropped)" if opts.min_visits else ""))
    res = fit_whole_graph(g, kernel) if opts.whole_graph else fit_exact(g, kernel, reference=opts.reference)
    if opts.bootstrap and not opts.whole_graph:
        from .uncertainty import bootstrap_stderr

        res.stderr = bootstrap_stderr(counts, g, res, opts, opts.bootstrap, seed=opts.seed)
    res.options.update({"bootstrap": opts.bootstrap, "seed": opts.seed})
    return g, res


def fit_summary(g: Graph, res: FitResult) -> dict:
    sizes = np.bincount(res.scc) if len(res.scc) else np.zeros(0, int)
    return {
        "mode": res.mode,
        "action": res.action,
        "states": res.n_states,
        "edges": res.n_edges,
        "samples": g.n_samples,
        "states_in_input": g.n_states_all,
        "sccs": res.n_sccs,
        "largest_scc": int(sizes.max()) if len(sizes) else 0,
        "unbounded_states": int(res.unbounded.sum()),
        "converged": res.converged,
        "iterations": res.iterations,
        "grad_norm": res.grad_norm,
        "seconds": res.seconds,
        "scc_order": res.scc_order,
        "options": res.options,
        "notes": res.notes,
        "history": [list(h) for h in res.history],
        "reference": reference_summary(res),
    }


def reference_summary(res: FitResult) -> dict | None:
    """The reference-SCC convention in numbers: which SCC, and how many states relate to it how."""
    v = res.reference
    if v is None:
        return None
    from .action import RELATIONS

    counts = np.bincount(v.relation, minlength=len(RELATIONS))
    members = np.flatnonzero(v.relation == 0)
    top = members[np.argmax(res.visits[members])] if len(members) else None
    return {"scc": v.scc, "size": v.size, "most_visited_state": res.names[top] if top is not None else None,
            "chosen_by": "--reference " + res.options["reference_state"] if res.options.get("reference_state")
            else "largest SCC", **{name: int(k) for name, k in zip(RELATIONS, counts)}}


def reference_line(summary: dict) -> str | None:
    """One line for tables and reports: how the states relate to the reference SCC."""
    r = summary.get("reference")
    if not r:
        return None
    return (f"reference SCC {r['scc']} ({r['size']} states, {r['chosen_by']}, most visited {r['most_visited_state']!r}): "
            f"{r['reference']} finite, {r['upstream']} upstream (+inf, lower bounds), {r['downstream']} downstream "
            f"(-inf, upper bounds), {r['incomparable']} incomparable")


def _num(x: float) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else repr(float(x))


def _ref_num(x: float) -> str:
    return "+inf" if x == np.inf else "-inf" if x == -np.inf else _num(x)


def write_fit(out: Path, g: Graph, res: FitResult) -> dict:
    """fit/potentials.csv and fit/fit.json. A state name a spreadsheet would run as a formula (``=1+1``)
    is written with a leading apostrophe (``textsafe.csv_cell``); ``load_fit`` reads it back exactly."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = np.bincount(res.scc)
    rank = np.empty(res.n_sccs, dtype=int)
    rank[np.asarray(res.scc_order, dtype=int)] = np.arange(res.n_sccs)
    fh = io.StringIO()
    w = csv.writer(fh, lineterminator="\n")
    w.writerow(POTENTIAL_COLUMNS)
    se = res.stderr if res.stderr is not None else np.full(res.n_states, np.nan)
    ref = res.reference
    rel = ref.relation_names() if ref is not None else [""] * res.n_states
    for i, name in enumerate(res.names):
        w.writerow([csv_cell(name), _num(res.potential[i]), _num(res.lower_bound[i]), int(res.scc[i]),
                    "true" if res.unbounded[i] else "false", int(res.visits[i]), _num(se[i]),
                    _num(res.scc_potential[i]), int(sizes[res.scc[i]]), int(rank[res.scc[i]]),
                    _ref_num(ref.potential[i]) if ref is not None else "",
                    _num(ref.bound[i]) if ref is not None else "", rel[i]])
    write_text(out / "potentials.csv", fh.getvalue())
    summary = fit_summary(g, res)
    write_json(out / "fit.json", summary)
    return summary


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


def default_out(inp: Input) -> Path:
    return inp.run_dir / "fit" if inp.run_dir else Path("fit")


def record(inp: Input, summary: dict) -> None:
    if inp.store is not None:
        keep = {k: summary[k] for k in ("mode", "action", "states", "edges", "sccs", "unbounded_states",
                                        "converged", "grad_norm", "seconds")}
        inp.store.set_stage_result("fit", {**keep, "at": time.time()})
