"""The show stage: what `potsearch show RUN` prints, as data.

``run(run_dir, ShowOptions(...)) -> ShowResult``. By default the result is the law evolve's model
selection chose (``CandidateStore.selected_law``: the simplified form of a Pareto-front member, with
the bootstrap standard errors of its parameters; ``evolve/summary.json``'s ``selection`` block says
which rule chose it and why, and names the lowest-training-action candidate). ``candidate``: one
stored candidate instead (its stored simplified form if it was on a front, else its canonical form).
``top``: only the K Pareto-front candidates with the lowest training action, each with its formula.

A run evolved before selection existed (no selected law in the store) shows the candidate
the run's best candidate (``store.rundir.best_candidate``) shows, with its canonical form.

``ShowResult.lines()`` is the printed text as (kind, text) items (kind: head, line or source);
``str(result)`` is that text, plain, with model-written text's control characters escaped
(``textsafe.printable``). The command (commands/show.py) only prints it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from potsearch.core.errors import InputError
from potsearch.store.rundir import RunDir, best_candidate, evolve_summary, load_fit, selected_law

#: the paper's "high transition kernel": T(f->g) = n(f->g)/N(f) >= 0.05 (its plot script's p0_threshold)
HIGH_KERNEL = 0.05
FORMATS = ("python", "sympy", "latex")


@dataclass(frozen=True)
class ShowOptions:
    """``candidate``: id or uid to show instead of the selected law; ``top``: list only the K front
    candidates with the lowest training action (with formulas); ``simplify``: a candidate shown with
    ``candidate`` that no selection simplified is simplified now (with the run's data, from its sympy
    translation: its code does not run; nothing is stored); ``format``: the code section as
    Python source, a sympy formula or LaTeX; ``symbolic``: formula formats keep p_i;
    ``min_ratio``: the directionality threshold on the transition ratio T = n/N(f) (diagnose's
    ``min_kernel`` is a threshold on the edge weight instead). The CLI's and the API's defaults."""

    candidate: str | None = None
    simplify: bool = True
    top: int = 0
    format: str = "python"
    symbolic: bool = False
    min_ratio: float = HIGH_KERNEL

    def __post_init__(self) -> None:
        if self.top < 0:
            raise InputError(f"--top must be >= 0, got {self.top}")
        if self.format not in FORMATS:
            raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {self.format!r}")
        if self.top and self.candidate is not None:
            raise InputError("--top lists the Pareto front; it does not combine with --candidate")
        if not 0 <= self.min_ratio <= 1:
            raise InputError(f"--min-ratio must be in [0, 1], got {self.min_ratio}")


@dataclass
class ShowResult:
    """What show found. ``law``: the shown law's formula and code (keys text, latex, source, params,
    param_se, kind = 'selected' | 'canonical' | 'raw', steps; for one candidate also its stored
    ``simplified`` form); ``candidate``: the
    stored candidate row it comes from; ``selection``: rule, reason, dropped terms, lowest-action
    candidate (evolve/summary.json), when the law is the selected one; ``scores``; ``params`` /
    ``lineage`` / ``top``: DataFrames."""

    run_dir: Path
    run_name: str
    options: ShowOptions
    candidate: object = None
    law: dict = field(default_factory=dict)
    selection: dict | None = None
    scores: dict = field(default_factory=dict)
    params: pd.DataFrame = field(default_factory=pd.DataFrame)
    lineage: pd.DataFrame = field(default_factory=pd.DataFrame)
    attribution: str = ""
    directionality: dict | None = None
    directionality_note: str = ""
    formula_lines: list = field(default_factory=list)   # the code section in --format sympy / latex
    top: pd.DataFrame = field(default_factory=pd.DataFrame)
    front_size: int = 0
    features: str = ""   # the run's feature library and its features' names (law/featurelib.features_line)

    @property
    def formula(self) -> str:
        return self.law.get("text", "")

    def lines(self) -> list[tuple[str, str]]:
        """The printed text, item by item: ("head" | "line" | "source", text)."""
        return _render(self)

    def __str__(self) -> str:
        from potsearch.core.textsafe import printable

        out = []
        for kind, text in self.lines():
            if kind == "source":
                out.extend("  " + ln for ln in text.rstrip("\n").splitlines())
            else:
                out.append(text)
        return printable("\n".join(out) + "\n")

    def __repr__(self) -> str:
        cid = getattr(self.candidate, "id", None)
        return (f"ShowResult(run={self.run_name!r}, candidate={cid}, kind={self.law.get('kind')!r}, "
                f"law={self.formula[:80]!r})")


# ----------------------------------------------------------------------------- helpers
def heldout_warning(heldout, baseline) -> str | None:
    """The law predicts held-out moves worse than the per-state table (the fit of the training part,
    one free potential a state): say so, with both numbers; None otherwise."""
    try:
        h, b = float(heldout), float(baseline)
    except (TypeError, ValueError):
        return None
    if not (h > b):
        return None
    return (f"this law predicts held-out moves worse than the per-state table ({h:.4g} vs {b:.4g}): it describes "
            "the training moves but does not generalise better than one free number a state")


def _num(v, nd=6):
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{nd}f}"


def _canonical(source: str, params) -> dict:
    from potsearch.law.simplify import canonical_form

    c = canonical_form(source, params)
    return {"text": c.text, "latex": c.latex} if c.ok else {"text": "", "latex": "", "reason": c.reason}


def directionality_of(run_dir, store, fn, params, min_ratio: float = HIGH_KERNEL) -> dict:
    """The paper's directionality statistic of V = fn(features, params) on the run's graph."""
    import dataclasses

    from potsearch.science.diagnostics import directionality
    from potsearch.search.problem import agent_of, problem_settings
    from potsearch.law.featurelib import choose_library
    from potsearch.science.graph import build_graph

    saved = load_fit(run_dir)
    opts = saved.summary.get("options", {}) or {}
    g = build_graph(store.counts(), weight=opts.get("weight", "low_reject"), n0=opts.get("n0"),
                    min_visits=int(opts.get("min_visits", 1)), escapes=opts.get("escapes", "count"))
    settings = problem_settings(run_dir, store)          # evolve's feature library, as it recorded it
    lib = choose_library(store, agent_of(store, g.names, settings.get("agent")), g.names,
                         recorded=settings.get("library"))
    have = lib.covers(g.names)  # V is undefined (nan) on states without a features table row
    x = lib.compute([s for s, ok in zip(g.names, have) if ok], store.state_meta())
    V = np.full(g.n_states, np.nan)
    with np.errstate(all="ignore"):
        V[have] = np.broadcast_to(np.asarray(fn(x, np.asarray(params, dtype=float)), dtype=float), (int(have.sum()),))
    T = g.n / np.maximum(g.visits[g.src], 1)  # the kernel estimate n/N(f), whatever the weight mode
    out = directionality(dataclasses.replace(g, w=T), V, min_kernel=min_ratio)
    return {"n_transitions": out["n_transitions"], "down": out["down"], "up": out["up"], "flat": out["flat"],
            "min_ratio": min_ratio, "source": "potsearch.science.diagnostics.directionality"}


def _lineage(store, row) -> pd.DataFrame:
    chain = store.candidates.lineage(row, depth=1000)
    cols = ["id", "operator", "model", "island", "round", "train_action", "other_parents"]
    return pd.DataFrame([[r.id, r.operator, r.model, r.island, r.round, r.train_action,
                          [str(p) for p in r.parents[1:]]] for r in chain], columns=cols)


def _formula_lines(source: str, params, fmt: str, symbolic: bool) -> list[str]:
    from potsearch.law.formula import FormulaError, formula_of, latex_legend, latex_text

    try:
        form = formula_of(source, None if symbolic else list(params), simplify=2.0)
        if fmt == "sympy":
            return [f"formula (sympy{', simplified' if form.simplified else ''}):", f"  V = {form.expr}"]
        return ([f"formula (latex{', simplified' if form.simplified else ''}):", f"  {latex_text(form.expr)}"]
                + [f"  % {leg}" for leg in latex_legend(form)])
    except (FormulaError, ValueError, TypeError, OverflowError, RecursionError, MemoryError) as exc:
        # a model's source may hold what sympy cannot print (an exact number of 10^4 digits)
        return [f"formula: not translatable ({str(exc)[:200] or type(exc).__name__}); source:"]


def _top(store, search_id, k: int) -> tuple[pd.DataFrame, int]:
    """The K front candidates with the lowest training action, with their formulas."""
    from potsearch.store.candidates import pareto_front

    rows = store.candidates.rows(search_id=search_id) if search_id else store.candidates.rows()
    front = pareto_front(rows)
    out = []
    for r in sorted(front, key=lambda r: (r.train_action, r.id))[:k]:  # best first
        form = store.candidates.simplified_of(r.uid)
        if form and form.get("text"):
            text, kind, sel = form["text"], "simplified" if form["ok"] else "canonical", form["selected"]
        else:
            c = _canonical(r.source, r.params)
            text, kind, sel = c["text"], "canonical" if c["text"] else "source", False
        out.append({"id": r.id, "uid": r.uid, "train_action": r.train_action, "heldout_action": r.heldout_action,
                    "complexity": r.complexity, "n_params": r.n_params, "operator": r.operator,
                    "selected": bool(sel), "formula": text or r.source, "formula_kind": kind})
    cols = ["id", "uid", "train_action", "heldout_action", "complexity", "n_params", "operator", "selected",
            "formula", "formula_kind"]
    return pd.DataFrame(out, columns=cols), len(front)


def _simplify_now(run_dir, store, row) -> dict:
    """A candidate no selection simplified, simplified now on the run's data -- the problem evolve
    searched (``problem.problem_for_run``) -- with ``simplify.simplify`` (from its sympy translation,
    never its code)."""
    from potsearch.search.problem import problem_for_run
    from potsearch.law.simplify import simplify

    try:
        prob = problem_for_run(run_dir, store)
        s = simplify(row.source, list(row.params or []), prob.data, seed=int(prob.split["seed"]), max_seconds=20.0)
    except Exception as exc:  # noqa: BLE001 - the canonical form is still shown
        return {"simplified_note": f"not simplified now: {type(exc).__name__}: {str(exc)[:120]}"}
    if not s.ok:
        return {"simplified_note": f"not simplified now: {s.reason}"}
    return {"simplified": s.text, "simplified_steps": "; ".join(s.steps) or "no step", "simplified_now": True,
            "simplified_actions": (s.train_action, s.heldout_action)}


# ----------------------------------------------------------------------------- the stage
def run(run_dir, options: ShowOptions = ShowOptions()) -> ShowResult:
    """What `potsearch show` prints for the run at ``run_dir`` (module doc)."""
    from potsearch.law.featurelib import features_line, recorded_library
    from potsearch.stages.fit import reference_line
    from potsearch.search.polish import CandidateFailed, compile_source, open_run, run_sandbox_limits

    run_dir, store = open_run(run_dir)
    try:
        saved = load_fit(run_dir)  # StageMissing: run fit first
        summary = evolve_summary(run_dir)
        search_id = summary.get("search_id")
        res = ShowResult(run_dir, store.run_info().get("name") or Path(run_dir).name, options)
        if options.top:
            best_candidate(store, run_dir, None)  # StageMissing: run evolve first
            res.top, res.front_size = _top(store, search_id, options.top)
            return res
        law = selected_law(summary, store) if options.candidate is None else None
        if law is not None:
            row = store.candidates.get(law["uid"])
        else:
            row = best_candidate(store, run_dir, options.candidate)  # InputError / StageMissing
        if row is None:
            raise InputError(f"the selected law's candidate {law['uid']!r} is not in this run's store", str(run_dir))
        res.candidate = row
        res.features = features_line(recorded_library(summary))
        sel_js = summary.get("selection") or {}
        if law is not None:
            res.law = {**law, "kind": "selected"}
            if (sel_js.get("selected") or {}).get("uid") == law["uid"]:
                res.selection = sel_js
        else:  # one stored candidate as found: its canonical form (sympy, no data) and its stored simplification
            c = _canonical(row.source, row.params)
            form = store.candidates.simplified_of(row.uid)
            res.law = {"kind": "canonical" if c["text"] else "raw", "text": c["text"], "latex": c["latex"],
                       "source": row.source, "params": list(row.params or []), "param_se": None,
                       "train_action": row.train_action, "heldout_action": row.heldout_action,
                       "complexity": row.complexity, "steps": c.get("reason", ""),
                       "simplified": form.get("text") if form and form.get("ok") else None,
                       "simplified_steps": form.get("steps") if form and form.get("ok") else None,
                       "selected_candidate": bool(form and form.get("selected"))}
            if not res.law["simplified"] and options.simplify and options.candidate is not None and c["text"]:
                res.law.update(_simplify_now(run_dir, store, row))
        source, params = res.law["source"], list(res.law.get("params") or [])
        se = res.law.get("param_se") or [None] * len(params)
        res.params = pd.DataFrame({"name": [f"p[{i}]" for i in range(len(params))], "value": params,
                                   "stderr": list(se)[:len(params)] + [None] * (len(params) - len(se))})
        S = res.law.get("train_action")
        s_min_train = summary.get("s_min_train")
        if s_min_train is None and row.train_action is not None and row.gap is not None:
            s_min_train = row.train_action - row.gap
        res.scores = {"train_action": S, "heldout_action": res.law.get("heldout_action"), "s_min_train": s_min_train,
                      "gap": S - s_min_train if S is not None and s_min_train is not None else None,
                      "s_min_fit": saved.s_min, "reference": reference_line(saved.summary),
                      "baseline_heldout": summary.get("baseline_heldout"),
                      "complexity": res.law.get("complexity"), "n_params": len(params),
                      "n_terms": res.law.get("n_terms")}
        if options.format != "python":
            res.formula_lines = _formula_lines(source, params, options.format, options.symbolic)
        res.lineage = _lineage(store, row)
        res.attribution = _attribution(run_dir, row)
        try:
            ns = compile_source(source, limits=run_sandbox_limits(run_dir))   # the run's limits, clamped
            res.directionality = directionality_of(run_dir, store, ns["potential"], params, float(options.min_ratio))
        except (InputError, CandidateFailed, KeyError, ValueError, TypeError, ArithmeticError) as exc:
            res.directionality_note = f"not computable ({str(exc)[:200]})"
        return res
    finally:
        store.close()


def _attribution(run_dir, row) -> str:
    att = RunDir(run_dir).attribution_summary
    if not att.exists():
        return f"not computed (run `potsearch attribute --run {run_dir}`)"
    try:
        a = json.loads(att.read_text())
        abl = a.get("ablation_delta") or {}
        rank = " > ".join(f"{n} ({_num(abl.get(n), 4)})" for n in (a.get("ranking") or [])[:8])
        note = "" if a.get("candidate") == row.id else f" [computed for candidate {a.get('candidate')}]"
        return f"(ablation ΔS): {rank or '-'}{note}"
    except (ValueError, KeyError, TypeError, AttributeError):
        return "attribution/summary.json unreadable"


# ----------------------------------------------------------------------------- text
def _render(r: ShowResult) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    line = lambda t: out.append(("line", t))  # noqa: E731
    if r.options.top:
        out.append(("head", f"run {r.run_name}: Pareto front (train action x complexity), {r.front_size} candidates; "
                            f"the {len(r.top)} with the lowest action (* = the selected law's candidate):"))
        line(f"  {'id':>6} {'train':>10} {'held-out':>10} {'complexity':>10} {'params':>6}  formula")
        for t in r.top.itertuples():
            f = t.formula if t.formula_kind != "source" else "(no formula) " + " ".join(t.formula.split())
            line(f"{'*' if t.selected else ' '} {t.id:>6} {_num(t.train_action):>10} {_num(t.heldout_action):>10} "
                 f"{t.complexity if t.complexity is not None else '-':>10} "
                 f"{t.n_params if t.n_params is not None else '-':>6}  V = {f}")
        if len(r.top):
            line(f"  (`potsearch show {r.run_dir} --candidate {r.top['id'].iloc[0]}` shows the first of them)")
        return out
    law, row = r.law, r.candidate
    kind = law.get("kind")
    if kind == "selected":
        rule = (r.selection or {}).get("rule")
        out.append(("head", f"run {r.run_name}: law selected by evolve{f' ({rule} rule)' if rule else ''}, "
                            f"simplified from candidate {row.id}"))
    else:
        out.append(("head", f"run {r.run_name}: potential = candidate {row.id}"
                            + (" (best)" if r.options.candidate is None else "")))
    label = {"selected": "simplified", "canonical": "as found, constants folded"}
    if law.get("text"):
        line(f"law ({label.get(kind, kind)}): V = {law['text']}")
        line(f"latex: {law.get('latex', '')}")
        if r.features:
            line(r.features)
    else:
        line(f"law: no formula ({law.get('steps') or 'not translatable'}); the source follows")
    if law.get("simplified"):
        mark = " (evolve's selected law)" if law.get("selected_candidate") else ""
        if law.get("simplified_now"):
            tr, ho = law["simplified_actions"]
            mark = (f" (computed now, not stored; training action {float(tr):.6g}, held-out "
                    f"{float('nan') if ho is None else float(ho):.6g})")
        line(f"simplifies to{mark}: V = {law['simplified']}   [{law.get('simplified_steps') or 'no step'}]")
    elif law.get("simplified_note"):
        line(law["simplified_note"])
    if r.formula_lines:
        for ln in r.formula_lines:
            line(ln)
        if r.formula_lines[0].startswith("formula: not translatable"):
            out.append(("source", law["source"]))
    else:
        line("source:")
        out.append(("source", law["source"]))
    cells = []
    for p in r.params.itertuples():
        se = f" ± {p.stderr:.3g}" if p.stderr is not None and not pd.isna(p.stderr) else ""
        cells.append(f"{p.name} = {p.value:.6g}{se}")
    line(f"parameters ({len(cells)}): " + ("  ".join(cells[:6]) or "none"))
    for k in range(6, len(cells), 6):
        line("  " + "  ".join(cells[k:k + 6]))
    if kind == "selected" and cells:
        method = ((r.selection or {}).get("selected") or {}).get("param_se_method")
        line(f"  ± bootstrap standard errors: {method}" if method and law.get("param_se")
             else f"  standard errors: {method or 'not stored'}")
    sc = r.scores
    line(f"train action: {_num(sc['train_action'])}")
    base = sc.get("baseline_heldout")
    line(f"held-out action: {_num(sc['heldout_action'])}" + (f"   (per-state table: {_num(base)})" if base is not None
                                                             else ""))
    worse = heldout_warning(sc["heldout_action"], base)
    if worse:
        line("note: " + worse)
    line(f"S_min (train part): {_num(sc['s_min_train'])}   gap: {_num(sc['gap'])}")
    line(f"S_min (fit, all samples): {_num(sc['s_min_fit'])}")
    if sc.get("reference"):
        line(f"fit {sc['reference']}")
    terms = f"   additive terms: {sc['n_terms']}" if sc.get("n_terms") is not None else ""
    line(f"complexity: {sc['complexity'] if sc['complexity'] is not None else '-'}   parameters: {sc['n_params']}"
         + terms)
    if kind == "selected":
        _render_selection(r, line)
    line("lineage:" + (f" (of candidate {row.id})" if kind == "selected" else ""))
    chain = list(r.lineage.itertuples())
    shown = chain if len(chain) <= 10 else chain[:8] + [None] + chain[-1:]
    for k, c in enumerate(shown):
        if c is None:
            line(f"  <- ... {len(chain) - 9} more ancestors ...")
            continue
        others = f" (other parents {', '.join(c.other_parents)})" if c.other_parents else ""
        line(f"  {'<- ' if k else ''}#{c.id} {c.operator or '-'}  model {c.model or '-'}  "
             f"island {c.island if c.island is not None and not pd.isna(c.island) else '-'}  "
             f"round {int(c.round) if c.round is not None and not pd.isna(c.round) else '-'}"
             f"  train {_num(c.train_action)}{others}")
    line(f"attribution {r.attribution}" if r.attribution.startswith("(") else f"attribution: {r.attribution}")
    d = r.directionality
    if d:
        line(f"directionality (transitions with T >= {d['min_ratio']:g}: {d['n_transitions']}): "
             f"down {100 * d['down']:.2f}%  up {100 * d['up']:.2f}%  flat {100 * d['flat']:.2f}%")
    else:
        line(f"directionality: {r.directionality_note}")
    return out


def _render_selection(r: ShowResult, line) -> None:
    sel, law = r.selection, r.law
    if not sel:
        line("selection: evolve/summary.json does not describe this law (rule and reason unknown)")
        return
    line(f"selection: {sel.get('reason')}")
    if law.get("steps"):
        line(f"simplification: {law['steps']}")
    ev = (sel.get("selected") or {}).get("term_evidence")
    if ev:
        line("each term, against the law refitted without it (a positive BIC rise: the data support the term):")
        for t in ev:
            rise = [f"{name} {t[k]:+.4g}" for name, k in (("training action", "train_rise"),
                                                           ("held-out", "heldout_rise"), ("BIC", "bic_rise"))
                    if t.get(k) is not None]
            line(f"  {t['term']}: " + (", ".join(rise) if rise else "the law without it could not be refitted"))
    low = sel.get("lowest") or {}
    if not low:
        return
    ref = low.get("id", low.get("uid"))
    S, Sl = law.get("train_action"), low.get("train_action")
    diff = (f" (the selected law: {S - Sl:+.3g}, {100 * (S - Sl) / Sl:+.3f}%)"
            if S is not None and Sl else "")
    if low.get("uid") == law.get("uid"):
        line(f"lowest-action candidate: the same candidate #{ref}, train action {_num(Sl)}{diff}; as found: "
             f"V = {low.get('text') or ' '.join(str(low.get('source', '')).split())}")
    else:
        line(f"lowest-action candidate #{ref}: train action {_num(Sl)}, held-out {_num(low.get('heldout_action'))}"
             f"{diff}; V = {low.get('text') or ' '.join(str(low.get('source', '')).split())}")
    dropped = sel.get("dropped") or []
    line(f"dropped against it: {', '.join(dropped)}" if dropped else "dropped against it: no additive term")
    line(f"  (`potsearch show {r.run_dir} --candidate {ref}` shows it)")
