"""The report's evolve section: what it shows, gathered from the run (drawn by
``potsearch.views.evolve_section``).

Where the selection comes from: the ``selection`` block of evolve/summary.json when the search
wrote one; otherwise the report computes it (``potsearch.law.selection.select_law`` on
evolve/pareto.csv, labelled so); if that fails too, the lowest-action law is shown, labelled as
such. For a surrogate run (a known hidden law in the run's stored config) the hidden law's values
over the states against the selected law's, both centred (the action sees differences only, so
the additive constant is removed). No candidate code runs here: formulas and values come from the
sympy translation (``law.formula``, via ``law.simplify.canonical_form``).
"""
from __future__ import annotations

from pathlib import Path

from potsearch.law.evidence import param_list
from potsearch.store.rundir import PARETO_CSV, RunDir, evolve_summary, selected_law
from potsearch.views.evolve_section import EvolveView, Hidden, evolve_section

MAX_TABLE = 40   # front rows in the table


def _canon(source: str, params) -> dict:
    """text / latex / expr of a law's canonical form ({} when it cannot be translated)."""
    from potsearch.law.simplify import canonical_form

    try:
        c = canonical_form(source, param_list(params))
    except Exception:  # noqa: BLE001 - an untranslatable law is shown by its source
        return {}
    return {"text": c.text, "latex": c.latex, "expr": c.expr} if c.ok else {}


# ----------------------------------------------------------------------------- data
def _front(d: Path):
    import pandas as pd

    p = d / PARETO_CSV
    if not p.is_file():
        return None
    try:
        df = pd.read_csv(p)
    except Exception:  # noqa: BLE001 - a broken CSV: the generic table below still shows its head
        return None
    from potsearch.core.textsafe import csv_value

    for c in df.columns:   # the spreadsheet guard of write_pareto removed: formulas shown as they are
        if not pd.api.types.is_numeric_dtype(df[c]):
            df[c] = df[c].map(csv_value)
    if "params" in df:
        df["params"] = df["params"].map(param_list)
    return df


def _problem(ctx):
    if "problem" in ctx.__dict__:
        return ctx.__dict__["problem"]
    from potsearch.search.problem import problem_for_run

    try:
        prob = problem_for_run(ctx.run_dir)
    except Exception:  # noqa: BLE001 - the section still shows what the files hold
        prob = None
    ctx.__dict__["problem"] = prob
    return prob


def selection_of(ctx, summary: dict, front) -> tuple[dict | None, str]:
    """(selection dict in summary.json's shape, where it came from)."""
    if selected_law(summary) is not None:
        return summary["selection"], "recorded by the search"
    if front is not None and len(front) and {"source", "train_action"} <= set(front.columns):
        prob = _problem(ctx)
        if prob is not None:
            try:
                from potsearch.law.selection import SelectionOptions, select_law, settle

                opts = SelectionOptions(seed=int(prob.split["seed"]))
                s, _ = settle(select_law(front, prob.data, opts), prob.data, opts, seed=opts.seed)
                return s.to_json(), "computed by the report (the search recorded no selection)"
            except Exception:  # noqa: BLE001 - fall back to the lowest-action law below
                pass
        low = front.loc[front["train_action"].astype(float).idxmin()].to_dict()
        low["params"] = param_list(low.get("params"))
        return {"rule": None, "reason": "", "selected": low, "lowest": low, "dropped": []}, "lowest"
    best = summary.get("best")
    if isinstance(best, dict) and best.get("source"):
        return {"rule": None, "reason": "", "selected": best, "lowest": best, "dropped": []}, "lowest"
    return None, ""


def hidden_law(ctx) -> str | None:
    """The hidden potential of a surrogate run (from the run's stored config), else None."""
    from potsearch.store import RunStore

    try:
        with RunStore.open(ctx.run_dir, readonly=True) as st:
            cfg = st.run_info().get("config") or {}
    except Exception:  # noqa: BLE001 - no store, no hidden law
        return None
    sur = cfg.get("surrogate")
    if isinstance(sur, dict) and isinstance(sur.get("hidden_potential"), str):
        return sur["hidden_potential"]
    if sur is True and isinstance(cfg.get("formula"), str):
        return cfg["formula"]
    return None


def _hidden_values(formula: str, prob):
    import numpy as np

    from potsearch.agents.hidden import compile_formula
    from potsearch.core.errors import InputError

    names = tuple(prob.features)
    aliases = {"first": "first_letter", "last": "last_letter"}   # runs made before one feature table
    feats = dict(prob.features)
    for short, long in aliases.items():
        if long in feats and short not in feats:
            feats[short] = feats[long]
            names += (short,)
    try:
        f = compile_formula(formula, names)
        v = np.asarray(f(feats), dtype=float)
    except (InputError, ValueError, TypeError, ZeroDivisionError):
        return None
    if v.shape != (prob.n_states,) or not np.all(np.isfinite(v)):
        return None
    return v


def _fill_from_front(law: dict, front) -> None:
    """What the ``lowest`` block lacks (its operator; its parameters in a summary written before the
    block carried them), taken from pareto.csv."""
    if front is None or "uid" not in front.columns or not law.get("uid"):
        return
    hit = front[front["uid"].astype(str) == str(law["uid"])]
    if len(hit):
        r = hit.iloc[0]
        for k in ("params", "operator"):
            if law.get(k) is None and k in r:
                law[k] = r[k]


# ----------------------------------------------------------------------------- gathering
def _card_formula(law: dict) -> tuple[str, str]:
    """(text, LaTeX) of a law's card: its stored ones, else its source translated."""
    text, latex = law.get("text") or "", law.get("latex") or ""
    if not text and law.get("source"):
        c = _canon(law["source"], law.get("params"))
        text, latex = c.get("text", ""), c.get("latex", "")
    return text, latex


def _table(front) -> list:
    """The front's rows of the table (the MAX_TABLE simplest), each with its simplified formula."""
    has_simpl = "simplified" in front.columns
    rows = []
    for _, r in front.sort_values("complexity", kind="mergesort").head(MAX_TABLE).iterrows():
        if has_simpl and isinstance(r.get("simplified"), str) and r["simplified"]:
            formula = r["simplified"]
        else:
            formula = _canon(str(r.get("source", "")), r.get("params")).get("text") or str(r.get("source", ""))
        rows.append((r, formula))
    return rows


def _hidden(ctx, summary: dict, sel: dict) -> Hidden | None:
    """The hidden law of a surrogate run against the selected one; None for another run."""
    import numpy as np

    formula = hidden_law(ctx)
    if formula is None:
        return None
    prob = _problem(ctx)
    if prob is None:
        return Hidden(formula, missing="problem")
    h = _hidden_values(formula, prob)
    from potsearch.law.selection import law_values

    v = law_values(sel.get("source") or "", param_list(sel.get("params")), prob.features, prob.n_states) \
        if sel.get("source") else None
    if h is None or v is None:
        why = "the hidden law uses features the search's library lacks" if h is None else \
            "the selected law could not be evaluated from its formula"
        return Hidden(formula, missing=why)
    h, v = h - h.mean(), v - v.mean()
    r = float(np.corrcoef(h, v)[0, 1]) if np.std(h) > 0 and np.std(v) > 0 else float("nan")
    rms = float(np.sqrt(np.mean((v - h) ** 2)))
    return Hidden(formula, h=h, v=v, r=r, rms=rms, n_states=prob.n_states)


def render(ctx) -> str | None:
    """The evolve section of the report ``ctx`` (``stages.report.Ctx``); None when the run has no
    evolve/summary.json (the generic section says so)."""
    rd = RunDir(ctx.run_dir)
    d = rd.evolve_dir
    if not d.is_dir():
        return None
    if not rd.evolve_summary.exists():
        return None
    summary = evolve_summary(ctx.run_dir)  # its blocks checked: a file from someone else may hold anything
    front = _front(d)
    sel_block, origin = selection_of(ctx, summary, front)
    ev = EvolveView(summary=summary, folder=ctx.folder("evolve"), selection=sel_block, origin=origin, front=front)
    if sel_block is not None:
        sel, low = dict(sel_block["selected"]), dict(sel_block.get("lowest") or {}) or None
        if low is not None:
            _fill_from_front(low, front)
        ev.sel, ev.low = sel, low
        ev.formulas = {"sel": _card_formula(sel),
                       "low": _card_formula(low) if low and origin != "lowest" else ("", "")}
        if front is not None and len(front) and {"complexity", "train_action"} <= set(front.columns):
            ev.table = _table(front)
        ev.hidden = _hidden(ctx, summary, sel)
        from potsearch.stages.show import heldout_warning   # the words `show` prints, once

        ev.warning = heldout_warning(sel.get("heldout_action"), summary.get("baseline_heldout")) or ""
    return evolve_section(ctx.page, ev)
