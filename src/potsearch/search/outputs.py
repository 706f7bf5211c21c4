"""What a search leaves behind: best_potential.py, evolve/pareto.csv + .png, curves.png, summary.json.

After the search, model selection (``selection.select_law``, default rule ``bic``) picks the law a
reader is shown from the Pareto front of the search's candidates, each front member simplified
(``simplify``). best_potential.py holds that SELECTED law (its simplified source and parameters);
summary.json's ``selection`` block says which rule chose it, why, with the bootstrap standard errors
of its parameters, and names the lowest-training-action candidate (``best`` stays the search's own
best, the lowest training action); pareto.csv marks the selected row and gives each member's
simplified formula; the simplified forms go to the store (``CandidateStore.save_simplified``).

matplotlib is imported lazily (Agg backend), only here.
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

from potsearch.core.atomic import write_json, write_text
from potsearch.law.featurelib import builtin
from potsearch.store.candidates import pareto_front
from potsearch.store.rundir import CURVES_PNG, PARETO_CSV, PARETO_PNG, RunDir
from potsearch.core.textsafe import csv_cell, printable

HEADER = '''#!/usr/bin/env python3
"""Potential found by `potsearch evolve` — self-contained (numpy{extra}; no potsearch import).

    V = {law}

{chosen}
Run: {run}
Train action {train:.6g} (S_min on the training graph {smin:.6g}, gap {gap:.3g}); held-out action {held:.6g}.
Search id {sid}, program {uid} (island {island}, round {round}, operator {op}).

    python best_potential.py WORD ...      prints the potential of each state
    from best_potential import potential   potential(state: str) -> float

The features are {features}; the parameters below were fitted by least action on the training edges.
The evolved program was written by a language model: it is kept below as a string (PROGRAM) and
evaluated by the small interpreter in this file, never run as Python (no exec, eval or compile).
"""
'''

FOOTER = '''

PARAMS = np.array({params!r}, dtype=float)
AGENT = {agent!r}


def potentials(states, meta=None):
    """Potentials of several states at once (vectorised)."""
    x = read_only_features(feature_table(list(states), meta))
    v = np.asarray(potential(x, PARAMS), dtype=float)
    return np.broadcast_to(v, (len(x[next(iter(x))]),)).astype(float)


def potential_of(state, meta=None):
    return float(potentials([state], meta)[0])


import sys  # noqa: E402


def _line(text):
    """One line for a terminal: control characters shown as escapes, at most 500 characters."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))[:500]


def _main(argv):
    if not argv:
        print(__doc__)
        return 2
    for s in argv:
        try:
            v = potential_of(s)
        except ProgramRefused as exc:
            print(_line(f"best_potential.py: the evolved program is refused: {{exc}}"), file=sys.stderr)
            return 2
        except Exception as exc:  # the program's own error (ZeroDivisionError, ...) on this state
            print(_line(f"best_potential.py: the evolved program failed on {{s!r}}: {{type(exc).__name__}}: {{exc}}"),
                  file=sys.stderr)
            return 2
        print(f"{{s}}\\t{{v:.6g}}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
'''


_PROGRAM_CODE = '''

# ---- the evolved candidate: model-written text, kept as data and never executed as Python ----
PROGRAM = {source}
_PROGRAM = []


def _candidate(x, p):
    if not _PROGRAM:
        _PROGRAM.append(Program(PROGRAM))
    return _PROGRAM[0].call("potential", x, p)


def potential(x, p=None):
    """potential(state: str) -> float; or, with a feature table and parameters, the candidate."""
    if isinstance(x, str):
        return potential_of(x)
    return _candidate(x, PARAMS if p is None else p)
'''


def _doc_safe(v, limit: int = 200) -> str:
    """A value for the module docstring: printable, no quotes or backslashes (cannot end it)."""
    return "".join(c if c.isprintable() and c not in "\\\"'" else "?" for c in str(v))[:limit]


def _wrap(text: str, width: int = 96, indent: str = "    ") -> str:
    import textwrap

    return textwrap.fill(text, width, subsequent_indent=indent, break_long_words=True, break_on_hyphens=False)


def best_potential_source(best, agent: str, run_name: str, s_min_train: float, sid: str, law: str = "",
                          chosen: str = "", library=None) -> str:
    """A self-contained module: the agent's feature code, the evaluator, the candidate's source as a
    string literal (``repr``: no way out of the literal) and potential(state). ``law``: the formula
    shown at the top of its docstring; ``chosen``: how the law was chosen (both sanitised);
    ``library``: the run's feature library (law/featurelib.py; None: the built-in one of ``agent``)."""
    from potsearch.law.interp import embedded_sections

    library = library or builtin(agent)
    agent = library.kind
    feats = library.embedded_source()
    extra = ", wordfreq for the zipf feature" if agent == "word" else ""
    chosen = chosen or "The candidate with the lowest training action (no model selection ran)."
    parts = [
        HEADER.format(features=library.provenance(),
                      extra=extra, law=_wrap(_doc_safe(law or "(see PROGRAM below)", 2000), indent="        "),
                      chosen=_wrap(_doc_safe(chosen, 2000), indent=""), run=_doc_safe(run_name), train=best.train_action, smin=s_min_train, gap=best.gap,
                      held=best.heldout_action if best.heldout_action is not None else math.nan, sid=_doc_safe(sid),
                      uid=_doc_safe(best.uid), island=_doc_safe(best.island), round=_doc_safe(best.round),
                      op=_doc_safe(best.operator)),
        feats,
        *(f"\n\n# ---- the evaluator of candidate programs (the code of {path}) ----\n{code}"
          for path, code in embedded_sections()),
        _PROGRAM_CODE.format(source=repr(str(best.source))),
        FOOTER.format(params=[float(v) for v in (best.params or [])], agent=agent),
    ]
    return "".join(parts)


def write_best_potential(path: Path, *args, **kw) -> None:
    text = best_potential_source(*args, **kw)
    compile(text, str(path), "exec")
    write_text(path, text)


def write_pareto(out: Path, front: list, all_rows: list, s_min: float, simplified: dict | None = None,
                 selected_uid: str | None = None, layers: dict | None = None) -> None:
    """evolve/pareto.csv and pareto.png from ``CandidateRow``s (the front and every scored row).
    ``simplified``: uid -> the member's simplified formula (pretty text); ``selected_uid``: the
    selected law's candidate (column ``selected`` = 1 on its row, else 0; circled in the figure);
    ``layers``: uid -> the front selection took it from (0: the Pareto front; k: the front rebuilt k
    times with the members whose simplified law is ill-conditioned set aside), whose members of
    layers above 0 follow the front's rows."""
    simplified, layers = simplified or {}, layers or {}
    on_front = {r.uid for r in front}
    behind = sorted((r for r in all_rows if layers.get(r.uid, 0) > 0 and r.uid not in on_front),
                    key=lambda r: (layers[r.uid], r.complexity, r.train_action))
    with open(out / PARETO_CSV, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["complexity", "n_params", "train_action", "heldout_action", "gap", "uid", "operator", "source",
                    "params", "simplified", "selected", "layer"])
        for r in list(front) + behind:
            w.writerow([csv_cell(printable(c)) if isinstance(c, str) else c for c in (
                r.complexity, r.n_params, repr(r.train_action), repr(r.heldout_action), repr(r.gap), r.uid,
                r.operator, r.source, json.dumps(r.params), simplified.get(r.uid, ""),
                int(selected_uid is not None and r.uid == selected_uid), layers.get(r.uid, 0))])
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    if all_rows:
        step = max(1, len(all_rows) // 20000)
        sub = all_rows[::step]
        ax.scatter([r.complexity for r in sub], [r.train_action for r in sub], s=4, alpha=0.25,
                   color="0.6", label="candidates" + (f" (1 in {step})" if step > 1 else ""))
    ax.step([r.complexity for r in front], [r.train_action for r in front], where="post", color="C3",
            marker="o", ms=4, label="Pareto front")
    if behind:
        ax.scatter([r.complexity for r in behind], [r.train_action for r in behind], s=14, marker="s",
                   color="C1", label="behind ill-conditioned members")
    sel = [r for r in list(front) + behind if selected_uid is not None and r.uid == selected_uid]
    if sel:
        ax.scatter([sel[0].complexity], [sel[0].train_action], s=90, facecolors="none", edgecolors="k", lw=1.5,
                   zorder=5, label="selected law (raw candidate)")
    ax.axhline(s_min, color="C0", ls="--", lw=1, label=f"S_min (train) = {s_min:.4g}")
    if front:
        top = max(r.train_action for r in front)
        ax.set_ylim(s_min - 0.05 * (top - s_min + 1e-9), top + 0.3 * (top - s_min + 1e-9))
    ax.set_xlabel("complexity (AST nodes)")
    ax.set_ylabel("training action")
    ax.set_title("Evolved potentials: action vs complexity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / PARETO_PNG, dpi=110)
    plt.close(fig)


def write_curves(out: Path, logbook, s_min: float) -> None:
    plt = _plt()
    rounds = [r["round"] for r in logbook]
    n_isl = len(logbook[0]["best"]) if len(logbook) else 0
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    cmap = plt.get_cmap("tab20")
    overall = []
    for i in range(n_isl):
        b = [r["best"][i] if r["best"][i] is not None else math.nan for r in logbook]
        m = [r["median"][i] if r["median"][i] is not None else math.nan for r in logbook]
        ax.plot(rounds, b, color=cmap(i % 20), lw=0.9, label=f"island {i} best" if n_isl <= 8 else None)
        ax.plot(rounds, m, color=cmap(i % 20), lw=0.6, ls=":", alpha=0.7)
    for r in logbook:
        vals = [v for v in r["best"] if v is not None]
        overall.append(min(vals) if vals else math.nan)
    ax.plot(rounds, overall, color="k", lw=2.0, label="best of all islands")
    ax.axhline(s_min, color="C0", ls="--", lw=1, label=f"S_min (train) = {s_min:.4g}")
    finite = [v for v in overall if v == v]
    if finite:
        lo = min(s_min, min(finite))
        meds = [v for r in logbook for v in r["median"] if v is not None]
        hi = sorted(meds)[int(0.9 * (len(meds) - 1))] if meds else max(finite)
        ax.set_ylim(lo - 0.05 * (hi - lo + 1e-9), hi + 0.1 * (hi - lo + 1e-9))
    ax.set_xlabel("round")
    ax.set_ylabel("training action")
    ax.set_title("Evolution: best (solid) and median (dotted) action per island")
    if len(rounds) > 50:
        ax.set_xscale("symlog", linthresh=10)
    if rounds:
        ax.set_xlim(0, max(rounds[-1], 1))
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(out / CURVES_PNG, dpi=110)
    plt.close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def select(store, search_id: str, data, seed: int = 0, n_boot: int = 40):
    """Model selection on one search's candidates (``selection.select_law`` with the default rule),
    the bootstrap standard errors of the selected law's parameters (``selection.settle``: a law whose
    pole they leave among the states is set aside and the rule applied again) and
    the simplified forms stored (``CandidateStore.save_simplified``). Returns (Selection, seconds), or
    (None, message) when there is nothing to select from."""
    from potsearch.law.evidence import term_evidence
    from potsearch.law.selection import SelectionOptions, select_law, settle

    t0 = time.perf_counter()
    df = store.candidates.to_frame(valid_only=True, search_id=search_id)
    if df.empty:
        return None, "no scored candidate"
    try:
        sel = select_law(df, data, SelectionOptions(seed=seed))
    except ValueError as exc:
        return None, str(exc)
    # the SEs of the law's parameters; a law whose pole they leave among the states is set aside
    sel, se = settle(sel, data, SelectionOptions(seed=seed), n_boot=n_boot, seed=seed)
    law = sel.selected
    if law.get("simplified"):  # our own code (sympy's form of the law): refitted in process
        law["param_se"] = se
        law["param_se_method"] = (f"standard deviation of each parameter over {n_boot} refits on bootstrap "
                                  f"resamples of the training edge pairs (seed {seed})" if se is not None
                                  else "not computed: fewer than 5 bootstrap refits succeeded")
        law["term_evidence"] = term_evidence(law["source"], law["params"], data, seed=seed)
    else:
        law["param_se"] = None
        law["param_se_method"] = "not computed: the law is not in simplified form (its code is not refitted here)"
    forms = sel.forms.to_dict("records") if not sel.forms.empty else []
    for f in forms:
        if f["uid"] == law.get("uid"):
            f["param_se"] = law["param_se"]
    store.candidates.save_simplified(search_id, forms, selected_uid=law.get("uid"))
    return sel, time.perf_counter() - t0


def _law_object(sel, raw, s_min_train: float):
    """What ``best_potential_source`` reads, for the selected law (its simplified source and params)."""
    from types import SimpleNamespace

    law = sel.selected
    train = law.get("train_action")
    return SimpleNamespace(uid=law.get("uid"), source=law["source"], params=[float(v) for v in law["params"]],
                           train_action=train, heldout_action=law.get("heldout_action"),
                           gap=train - s_min_train if train is not None else math.nan,
                           island=getattr(raw, "island", None), round=getattr(raw, "round", None),
                           operator=getattr(raw, "operator", None))


def write_outputs(search, seconds: float) -> dict:
    """All outputs of a finished (or interrupted) search; returns the summary."""
    prob = search.problem
    run_dir = Path(prob.run_dir)
    rd = RunDir(run_dir)
    out = rd.evolve_dir
    out.mkdir(parents=True, exist_ok=True)
    best = search.best()
    rows = search.store.candidates.rows(search_id=search.sid)
    front = pareto_front(rows)
    sel, sel_info = select(search.store, search.sid, prob.data, seed=search.cfg.seed)
    forms = {f["uid"]: f["text"] for f in sel.forms.to_dict("records")} if sel is not None and not sel.forms.empty \
        else {}
    write_pareto(out, front, rows, prob.s_min_train, forms, sel.selected.get("uid") if sel is not None else None,
                 sel.layers if sel is not None else None)
    write_curves(out, search.logbook, prob.s_min_train)
    with open(rd.logbook_json, "w", encoding="utf-8") as fh:
        json.dump([dict(r) for r in search.logbook], fh)
    c = search.counters
    summary = {
        "search_id": search.sid, "rounds": search.round, "stopped": search.db.convergence.reason(search.round),
        "islands": search.cfg.islands,
        "seconds": seconds, "candidates": c["candidates"], "evaluations": c["evaluations"],
        "cache_hits": c["cache_hits"], "failed": c["failed"],
        "evaluations_per_second": c["evaluations"] / seconds if seconds > 0 else None,
        "llm": {**{k: c[k] for k in ("llm_calls", "llm_rejected", "llm_failed", "llm_scored", "tokens", "cost")},
                "rate_limited": c["llm_rate_limited"]},
        "s_min_train": prob.s_min_train, "s_min_heldout": prob.s_min_heldout, "s_min_full": prob.s_min_full,
        "baseline_heldout": prob.baseline_heldout,
        "problem": prob.summary(), "config": {**search.cfg.to_dict(), "features": prob.library.record()},
        "pareto_size": len(front),
        "at": time.time(), "loop": getattr(search, "loop_stats", None),
    }
    if best is not None:
        summary["best"] = {
            "uid": best.uid, "source": best.source, "params": best.params, "train_action": best.train_action,
            "heldout_action": best.heldout_action, "gap": best.gap,
            "relative_gap": best.gap / prob.s_min_train if prob.s_min_train else None,
            "heldout_vs_baseline": (best.heldout_action - prob.baseline_heldout)
            if best.heldout_action is not None else None,
            "complexity": best.complexity, "n_params": best.n_params, "operator": best.operator,
            "island": best.island, "round": best.round, "parents": best.parents,
        }
    if sel is not None:
        js = sel.to_json()
        js["seconds"] = sel_info
        summary["selection"] = js
        raw = next((r for r in rows if r.uid == sel.selected.get("uid")), None)
        low = js["lowest"]
        chosen = (f"Selected from the Pareto front (training action x complexity) of the search by the "
                  f"{sel.rule} rule: {sel.reason}. The lowest-training-action candidate ({low.get('uid')}, "
                  f"training action {low.get('train_action', math.nan):.6g}) is in evolve/pareto.csv and "
                  f"`potsearch show RUN --top K` / `--candidate ID`.")
        write_best_potential(rd.best_potential, _law_object(sel, raw, prob.s_min_train), prob.agent,
                             run_dir.name, prob.s_min_train, search.sid, law=js["selected"].get("text", ""),
                             chosen=chosen, library=prob.library)
    elif best is not None:
        summary["selection"] = {"rule": None, "reason": f"no selection: {sel_info}", "selected": {}, "lowest": {},
                                "dropped": [], "front_size": 0}
        write_best_potential(rd.best_potential, best, prob.agent, run_dir.name, prob.s_min_train,
                             search.sid, library=prob.library)
    summary["captions"] = {
        PARETO_PNG: "Training action against complexity (AST nodes) of every scored candidate; red: the Pareto "
                      "front; circled: the candidate whose simplified form is the selected law; dashed: S_min, the "
                      "exact infimum on the training graph.",
        CURVES_PNG: "Best (solid) and median (dotted) training action per island and round; black: best of all "
                      "islands.",
    }
    order = ["selection", "best", "s_min_train", "baseline_heldout", "s_min_heldout", "s_min_full", "rounds", "stopped",
             "islands",
             "seconds", "candidates", "evaluations", "evaluations_per_second", "cache_hits", "failed", "llm"]
    summary = {**{k: summary[k] for k in order if k in summary}, **summary}
    write_json(rd.evolve_summary, summary)
    stage = {k: summary[k] for k in ("rounds", "islands", "candidates", "evaluations", "seconds", "s_min_train",
                                     "baseline_heldout")}
    if best is not None:
        stage.update({"train_action": best.train_action, "heldout_action": best.heldout_action, "gap": best.gap,
                      "complexity": best.complexity, "n_params": best.n_params})
    if sel is not None:
        stage.update({"law": sel.selected.get("text"), "law_train_action": sel.selected.get("train_action"),
                      "law_heldout_action": sel.selected.get("heldout_action"), "selection_rule": sel.rule})
    stage["tokens"], stage["cost"] = c["tokens"], c["cost"]
    search.store.set_stage_result("evolve", stage)
    return summary
