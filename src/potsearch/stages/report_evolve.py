"""The report's evolve section (``potsearch.stages.report`` finds ``render(ctx)`` here by name).

What a scientist reads first: the SELECTED law as a formula (visible text, plus the formula drawn
by matplotlib's mathtext and its LaTeX source; the page loads no script, so LaTeX is not typeset
in the browser), the lowest-training-action law beside it with the terms the selection dropped,
the Pareto front (complexity x training action) with the selected and lowest points marked and a
table of every front member's simplified formula, and, for a surrogate run (a known hidden law in
the run's stored config), the hidden law and a scatter of hidden against found potential over the
states, both centred (the action sees differences only, so the additive constant is removed).

Where the selection comes from: the ``selection`` block of evolve/summary.json when the search
wrote one; otherwise the report computes it (``potsearch.law.selection.select_law`` on
evolve/pareto.csv, labelled so); if that fails too, the lowest-action law is shown, labelled as
such. No candidate code runs here: formulas and values come from the sympy translation
(``evolve.simplify``). Everything that came from a model is escaped.
"""
from __future__ import annotations

import base64
import io
import math
from pathlib import Path

from potsearch.law.selection import param_list
from potsearch.stages.report import Ctx, Raw, esc, fmt, stage_files, stage_section

MAX_TABLE = 40   # front rows in the table


# ----------------------------------------------------------------------------- helpers
def _png_figure(ctx: Ctx, png: bytes, caption: str, alt: str) -> str:
    ctx.n_figures += 1
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}">'
            f"<figcaption><b>Figure {ctx.n_figures}.</b> {esc(caption)}</figcaption></figure>")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _savefig(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def formula_png(latex: str) -> bytes | None:
    """The formula drawn by matplotlib's mathtext (None when mathtext cannot parse it)."""
    if not latex or len(latex) > 1500:
        return None
    plt = _plt()
    fig = plt.figure(figsize=(0.01, 0.01))
    try:
        fig.text(0, 0, "$" + latex.replace(r"\mathrm{", r"\,\mathrm{") + "$", fontsize=15)
        return _savefig(fig)
    except Exception:  # mathtext covers a subset of LaTeX: the text form is always shown anyway
        plt.close(fig)
        return None


def _canon(source: str, params) -> dict:
    """text / latex / expr of a law's canonical form ({} when it cannot be translated)."""
    from potsearch.law.simplify import canonical_form

    try:
        c = canonical_form(source, param_list(params))
    except Exception:  # noqa: BLE001 - an untranslatable law is shown by its source
        return {}
    return {"text": c.text, "latex": c.latex, "expr": c.expr} if c.ok else {}


def _num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------------------- data
def _front(d: Path):
    import pandas as pd

    p = d / "pareto.csv"
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


def _problem(ctx: Ctx, summary: dict):
    if "problem" in ctx.__dict__:
        return ctx.__dict__["problem"]
    from potsearch.law.featurelib import recorded_library
    from potsearch.search.problem import load_problem

    cfg = summary.get("config") or {}
    try:
        prob = load_problem(ctx.run_dir, seed=int(cfg.get("seed", 0)),
                            heldout_fraction=float(cfg.get("heldout_fraction", 0.2)), agent=cfg.get("agent") or None,
                            library=recorded_library(summary))
    except Exception:  # noqa: BLE001 - the section still shows what the files hold
        prob = None
    ctx.__dict__["problem"] = prob
    return prob


def selection_of(ctx: Ctx, summary: dict, front) -> tuple[dict | None, str]:
    """(selection dict in summary.json's shape, where it came from)."""
    sel = summary.get("selection")
    if isinstance(sel, dict) and isinstance(sel.get("selected"), dict):
        return sel, "recorded by the search"
    if front is not None and len(front) and {"source", "train_action"} <= set(front.columns):
        prob = _problem(ctx, summary)
        if prob is not None:
            try:
                from potsearch.law.selection import SelectionOptions, select_law, settle

                cfg = summary.get("config") or {}
                opts = SelectionOptions(seed=int(cfg.get("seed", 0)))
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


def hidden_law(ctx: Ctx) -> str | None:
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

    from potsearch.agents.surrogate import compile_formula
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


# ----------------------------------------------------------------------------- figures
def front_figure(front, sel: dict, low: dict | None) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    layer = front["layer"].fillna(0).astype(int) if "layer" in front.columns else None
    behind = front[layer > 0] if layer is not None else front.iloc[:0]
    first = front[layer == 0] if layer is not None else front
    x = first["complexity"].astype(float).tolist()
    y = first["train_action"].astype(float).tolist()
    ax.step(x, y, where="post", color="C3", marker="o", ms=4, label="Pareto front")
    if len(behind):
        ax.scatter(behind["complexity"].astype(float), behind["train_action"].astype(float), s=14, marker="s",
                   color="C1", label="behind ill-conditioned members")
    if low and _num(low.get("complexity")) is not None and _num(low.get("train_action")) is not None:
        ax.scatter([_num(low["complexity"])], [_num(low["train_action"])], s=90, facecolors="none",
                   edgecolors="C0", lw=1.8, zorder=4, label="lowest training action")
    if _num(sel.get("complexity")) is not None and _num(sel.get("train_action")) is not None:
        ax.scatter([_num(sel["complexity"])], [_num(sel["train_action"])], marker="*", s=220, color="C2",
                   edgecolors="k", zorder=5, label="selected law")
    lo, hi = min(y), sorted(y)[int(0.9 * (len(y) - 1))] if len(y) > 2 else max(y)
    if hi > lo:
        ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.25 * (hi - lo))
    ax.set_xlabel("complexity (AST nodes)")
    ax.set_ylabel("training action")
    ax.set_title("Pareto front and the selected law")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _savefig(fig)


def scatter_figure(h, v) -> bytes:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.scatter(h, v, s=8, alpha=0.5, color="C0")
    lo, hi = float(min(h.min(), v.min())), float(max(h.max(), v.max()))
    ax.plot([lo, hi], [lo, hi], color="k", lw=1, ls="--", label="y = x")
    ax.set_xlabel("hidden V (centred)")
    ax.set_ylabel("found V (centred)")
    ax.set_title("Hidden against found potential over the states")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _savefig(fig)


# ----------------------------------------------------------------------------- blocks
def _law_card(ctx: Ctx, title: str, law: dict, note: str = "", draw: bool = True) -> str:
    text, latex = law.get("text") or "", law.get("latex") or ""
    if not text and law.get("source"):
        c = _canon(law["source"], law.get("params"))
        text, latex = c.get("text", ""), c.get("latex", "")
    parts = [f'<div class="card law"><h3>{esc(title)}</h3>']
    if text:
        parts.append(f'<p class="formula">V = {esc(text)}</p>')
        png = formula_png(latex) if draw else None
        if png:
            data = base64.b64encode(png).decode("ascii")
            parts.append(f'<img class="formula" src="data:image/png;base64,{data}" alt="V = {esc(text)}">')
        if latex:
            parts.append(f"<details><summary>LaTeX</summary><pre>{esc(latex)}</pre></details>")
    else:
        parts.append('<p class="muted">no formula: the law could not be translated; its source:</p>')
    rows = [[k.replace("_", " "), law.get(k)] for k in ("train_action", "heldout_action", "complexity", "n_terms",
                                                         "uid", "operator") if law.get(k) is not None]
    parts.append(ctx.table(["quantity", "value"], rows, "kv"))
    ev = law.get("term_evidence") or []
    if ev:
        parts.append('<p class="muted">Each term against the law refitted without it (a positive BIC rise: '
                     'the data support the term):</p>')
        parts.append(ctx.table(["term", "training action rise", "held-out rise", "BIC rise"],
                               [[e.get("term"), e.get("train_rise"), e.get("heldout_rise"), e.get("bic_rise")]
                                for e in ev]))
    if note:
        parts.append(f'<p class="muted">{esc(note)}</p>')
    src = law.get("source") or ""
    if src:
        parts.append(f"<details><summary>source</summary><pre>{esc(src)}</pre>"
                     f"<p class=\"muted\">parameters: {esc(fmt(law.get('params')))}</p></details>")
    parts.append("</div>")
    return "".join(parts)


def _front_table(ctx: Ctx, front, sel: dict, low: dict | None) -> str:
    sel_uid, low_uid = str(sel.get("uid") or ""), str((low or {}).get("uid") or "")
    has_simpl = "simplified" in front.columns
    has_flag = "selected" in front.columns
    rows = []
    for _, r in front.sort_values("complexity", kind="mergesort").head(MAX_TABLE).iterrows():
        if has_simpl and isinstance(r.get("simplified"), str) and r["simplified"]:
            formula = r["simplified"]
        else:
            formula = _canon(str(r.get("source", "")), r.get("params")).get("text") or str(r.get("source", ""))
        mark = []
        if (has_flag and _num(r.get("selected")) == 1) or (not has_flag and sel_uid and str(r.get("uid")) == sel_uid):
            simpler = _num(sel.get("complexity"))
            mark.append("★ selected" + (f" (simplified: complexity {simpler:g})"
                                        if simpler is not None and simpler != _num(r.get("complexity")) else ""))
        if low_uid and str(r.get("uid")) == low_uid:
            mark.append("lowest action")
        rows.append([Raw(f"<b>{esc(', '.join(mark))}</b>") if mark else "", r.get("complexity"),
                     _num(r.get("train_action")), _num(r.get("heldout_action")), r.get("operator"), formula])
    more = f" (the {MAX_TABLE} simplest of {len(front)})" if len(front) > MAX_TABLE else ""
    return (f"<h3>Pareto front: complexity × training action{esc(more)}</h3>"
            + ctx.table(["", "complexity", "train action", "held-out action", "operator", "simplified formula"], rows))


def _hidden_block(ctx: Ctx, summary: dict, sel: dict) -> tuple[str, str]:
    """(the hidden law's text, the hidden-vs-found figure) of a surrogate run; ("", "") otherwise."""
    import numpy as np

    formula = hidden_law(ctx)
    if formula is None:
        return "", ""
    parts = ['<h3>Surrogate run: the hidden law</h3>',
             f'<p>This run was collected from a surrogate (a test instrument, not a language model) whose hidden '
             f'potential is known:</p><p class="formula">V<sub>hidden</sub> = {esc(formula)}</p>']
    prob = _problem(ctx, summary)
    if prob is None:
        return "".join(parts) + '<p class="muted">the run\'s problem could not be loaded: no scatter</p>', ""
    h = _hidden_values(formula, prob)
    from potsearch.law.selection import law_values

    v = law_values(sel.get("source") or "", param_list(sel.get("params")), prob.features, prob.n_states) \
        if sel.get("source") else None
    if h is None or v is None:
        why = "the hidden law uses features the search's library lacks" if h is None else \
            "the selected law could not be evaluated from its formula"
        return "".join(parts) + f'<p class="muted">no scatter: {esc(why)}</p>', ""
    h, v = h - h.mean(), v - v.mean()
    r = float(np.corrcoef(h, v)[0, 1]) if np.std(h) > 0 and np.std(v) > 0 else float("nan")
    rms = float(np.sqrt(np.mean((v - h) ** 2)))
    fig = _png_figure(ctx, scatter_figure(h, v),
                      f"Hidden against found (selected) potential on the {prob.n_states} states, both centred "
                      f"(the additive constant removed): r = {r:.5f}, rms difference {rms:.4g} "
                      f"(std of hidden V {float(np.std(h)):.4g}).", "scatter of hidden against found potential")
    parts.append(f'<p>The selected law against the hidden one over the {prob.n_states} states (both centred): '
                 f'r = {r:.5f}, rms difference {rms:.4g}.</p>')
    return "".join(parts), fig


def _search_table(ctx: Ctx, summary: dict) -> str:
    keys = ("rounds", "islands", "candidates", "evaluations", "cache_hits", "failed", "seconds",
            "evaluations_per_second", "s_min_train", "baseline_heldout", "s_min_heldout", "pareto_size", "search_id")
    rows = [[k.replace("_", " "), summary.get(k)] for k in keys if k in summary]
    llm = summary.get("llm") or {}
    if isinstance(llm, dict) and llm.get("llm_calls"):
        rows += [[f"llm {k.replace('llm_', '')}", v] for k, v in llm.items()]
    cfg = summary.get("config") or {}
    out = "<h3>The search</h3>" + ctx.table(["quantity", "value"], rows, "kv")
    if isinstance(cfg, dict) and cfg:
        out += "<details><summary>configuration</summary>" + ctx.kv_table(cfg) + "</details>"
    rest = {k: v for k, v in summary.items() if k not in keys and k not in ("config", "captions", "llm")}
    if rest:
        out += "<details><summary>summary.json (the other keys)</summary>" + ctx.kv_table(rest) + "</details>"
    return out


# ----------------------------------------------------------------------------- the section
def render(ctx: Ctx) -> str:
    d = ctx.run_dir / "evolve"
    if not d.is_dir():
        return stage_section("evolve", ctx)
    if not (d / "summary.json").exists():
        return stage_section("evolve", ctx)
    from potsearch.search.outputs import read_summary

    summary = read_summary(ctx.run_dir)  # its blocks checked: a file from someone else may hold anything
    front = _front(d)
    sel_block, origin = selection_of(ctx, summary, front)
    parts = []
    if sel_block is None:
        parts.append('<p class="muted">no scored law in this search</p>')
    else:
        sel, low = dict(sel_block["selected"]), dict(sel_block.get("lowest") or {}) or None
        if low is not None:
            _fill_from_front(low, front)
        if origin == "lowest":
            head = "Lowest-training-action law (no selection recorded or computable)"
            note = "No model selection is available for this run: this is the candidate of lowest training action."
        else:
            head = f"Selected law (rule {sel_block.get('rule')})"
            note = f"Selection {origin}. {sel_block.get('reason') or ''}"
        cards = [_law_card(ctx, head, sel, note)]
        if low and origin != "lowest":
            dropped = sel_block.get("dropped") or []
            lnote = ("The selected law drops these terms of it: " + ", ".join(map(str, dropped))) if dropped else ""
            if low.get("uid") and low.get("uid") == sel.get("uid"):
                lnote = "The selected law is this candidate, simplified." + (" " + lnote if lnote else "")
            cards.append(_law_card(ctx, "Lowest training action", low, lnote))
        parts.append('<div class="laws">' + "".join(cards) + "</div>")
        figs = []
        has_front = front is not None and len(front) and {"complexity", "train_action"} <= set(front.columns)
        if has_front:
            figs.append(_png_figure(
                ctx, front_figure(front, sel, low),
                "Pareto front (complexity × training action); star: the selected law (its simplified form); "
                "circle: the lowest training action.", "Pareto front with the selected law marked"))
        hidden_text, hidden_fig = _hidden_block(ctx, summary, sel)
        parts.append(hidden_text)
        figs += [hidden_fig] if hidden_fig else []
        if figs:
            parts.append('<div class="figs">' + "".join(figs) + "</div>")
        if has_front:
            parts.append(_front_table(ctx, front, sel, low))
    parts.append(_search_table(ctx, summary))
    caps = summary.get("captions", {}) if isinstance(summary.get("captions"), dict) else {}
    parts += stage_files(ctx, d, caps)
    if (ctx.run_dir / "best_potential.py").is_file():
        src = (ctx.run_dir / "best_potential.py").read_text(errors="replace")
        parts.append(f"<details><summary>best_potential.py</summary><pre>{esc(src)}</pre></details>")
    return "".join(parts)
