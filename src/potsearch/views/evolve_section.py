"""The report's evolve section as HTML, from data the report stage gathered (``EvolveView``).

What a scientist reads first: the SELECTED law as a formula (visible text, plus the formula drawn
by matplotlib's mathtext and its LaTeX source; the page loads no script, so LaTeX is not typeset
in the browser), the lowest-training-action law beside it with the terms the selection dropped,
the Pareto front (complexity x training action) with the selected and lowest points marked and a
table of the front members' simplified formulas, and, for a surrogate run, the hidden law and a
scatter of hidden against found potential over the states, both centred. Everything that came from
a model is escaped.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass, field

from potsearch.views.html import Page, Raw, esc, fmt, png_data
from potsearch.views.report_sections import StageFolder, folder_files


@dataclass
class Hidden:
    """A surrogate run's hidden law against the selected one. ``missing``: why there is no scatter
    (``"problem"`` when the run's problem could not be loaded); else ``h``, ``v`` are the hidden and
    found potentials over the states, both centred, with their correlation ``r`` and rms difference."""
    formula: str
    missing: str = ""
    h: object = None
    v: object = None
    r: float = math.nan
    rms: float = math.nan
    n_states: int = 0


@dataclass
class EvolveView:
    """``selection``: summary.json's selection block (or one made by the stage), ``origin``: where it
    came from (``"lowest"``: no selection, the lowest-action law); ``sel``/``low``: its selected and
    lowest laws, ``formulas``: (text, LaTeX) of each law's card; ``table``: the front rows shown,
    each with its formula; ``warning``: what the reader must know about the selected law (it predicts
    held-out moves worse than the per-state table: ``stages.show.heldout_warning``)."""
    summary: dict
    folder: StageFolder
    selection: dict | None = None
    origin: str = ""
    sel: dict = field(default_factory=dict)
    low: dict | None = None
    formulas: dict = field(default_factory=dict)
    front: object = None
    table: list = field(default_factory=list)
    hidden: Hidden | None = None
    warning: str = ""


# ----------------------------------------------------------------------------- figures
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


def _num(v):
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


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
def law_card(page: Page, title: str, law: dict, formula: tuple[str, str], note: str = "") -> str:
    """One law: its formula (text, drawn, LaTeX), numbers, term evidence, ``note`` and source."""
    text, latex = formula
    parts = [f'<div class="card law"><h3>{esc(title)}</h3>']
    if text:
        parts.append(f'<p class="formula">V = {esc(text)}</p>')
        png = formula_png(latex)
        if png:
            parts.append(f'<img class="formula" src="{png_data(png)}" alt="V = {esc(text)}">')
        if latex:
            parts.append(f"<details><summary>LaTeX</summary><pre>{esc(latex)}</pre></details>")
    else:
        parts.append('<p class="muted">no formula: the law could not be translated; its source:</p>')
    rows = [[k.replace("_", " "), law.get(k)] for k in ("train_action", "heldout_action", "complexity", "n_terms",
                                                         "uid", "operator") if law.get(k) is not None]
    parts.append(page.table(["quantity", "value"], rows, "kv"))
    ev = law.get("term_evidence") or []
    if ev:
        parts.append('<p class="muted">Each term against the law refitted without it (a positive BIC rise: '
                     'the data support the term):</p>')
        parts.append(page.table(["term", "training action rise", "held-out rise", "BIC rise"],
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


def front_table(page: Page, front, table: list, sel: dict, low: dict | None) -> str:
    """The front's rows ``table`` ((row, formula) pairs, simplest first) with the selected and the
    lowest-action rows marked."""
    sel_uid, low_uid = str(sel.get("uid") or ""), str((low or {}).get("uid") or "")
    has_flag = "selected" in front.columns
    rows = []
    for r, formula in table:
        mark = []
        if (has_flag and _num(r.get("selected")) == 1) or (not has_flag and sel_uid and str(r.get("uid")) == sel_uid):
            simpler = _num(sel.get("complexity"))
            mark.append("★ selected" + (f" (simplified: complexity {simpler:g})"
                                        if simpler is not None and simpler != _num(r.get("complexity")) else ""))
        if low_uid and str(r.get("uid")) == low_uid:
            mark.append("lowest action")
        rows.append([Raw(f"<b>{esc(', '.join(mark))}</b>") if mark else "", r.get("complexity"),
                     _num(r.get("train_action")), _num(r.get("heldout_action")), r.get("operator"), formula])
    more = f" (the {len(table)} simplest of {len(front)})" if len(front) > len(table) else ""
    return (f"<h3>Pareto front: complexity × training action{esc(more)}</h3>"
            + page.table(["", "complexity", "train action", "held-out action", "operator", "simplified formula"], rows))


def hidden_block(page: Page, hid: Hidden) -> tuple[str, str]:
    """(the hidden law's text, the hidden-vs-found figure) of a surrogate run."""
    parts = ['<h3>Surrogate run: the hidden law</h3>',
             f'<p>This run was collected from a surrogate (a test instrument, not a language model) whose hidden '
             f'potential is known:</p><p class="formula">V<sub>hidden</sub> = {esc(hid.formula)}</p>']
    if hid.missing == "problem":
        return "".join(parts) + '<p class="muted">the run\'s problem could not be loaded: no scatter</p>', ""
    if hid.missing:
        return "".join(parts) + f'<p class="muted">no scatter: {esc(hid.missing)}</p>', ""
    import numpy as np

    h, v, r, rms = hid.h, hid.v, hid.r, hid.rms
    fig = page.png_figure(scatter_figure(h, v),
                          f"Hidden against found (selected) potential on the {hid.n_states} states, both centred "
                          f"(the additive constant removed): r = {r:.5f}, rms difference {rms:.4g} "
                          f"(std of hidden V {float(np.std(h)):.4g}).", "scatter of hidden against found potential")
    parts.append(f'<p>The selected law against the hidden one over the {hid.n_states} states (both centred): '
                 f'r = {r:.5f}, rms difference {rms:.4g}.</p>')
    return "".join(parts), fig


SEARCH_KEYS = ("rounds", "islands", "candidates", "evaluations", "cache_hits", "failed", "seconds",
               "evaluations_per_second", "s_min_train", "baseline_heldout", "s_min_heldout", "pareto_size", "search_id")


def search_table(page: Page, summary: dict) -> str:
    rows = [[k.replace("_", " "), summary.get(k)] for k in SEARCH_KEYS if k in summary]
    stop = summary.get("stopped")
    if isinstance(stop, dict) and stop.get("text"):   # why the search ended (search/patience.py)
        rows.insert(1, ["stopped", f"{stop['text']}; last improvement at round {stop.get('last_improvement')}"])
    llm = summary.get("llm") or {}
    if isinstance(llm, dict) and llm.get("llm_calls"):
        rows += [[f"llm {k.replace('llm_', '')}", v] for k, v in llm.items()]
    cfg = summary.get("config") or {}
    out = "<h3>The search</h3>" + page.table(["quantity", "value"], rows, "kv")
    if isinstance(cfg, dict) and cfg:
        out += "<details><summary>configuration</summary>" + page.kv_table(cfg) + "</details>"
    rest = {k: v for k, v in summary.items()
            if k not in SEARCH_KEYS and k not in ("config", "captions", "llm", "stopped")}
    if rest:
        out += "<details><summary>summary.json (the other keys)</summary>" + page.kv_table(rest) + "</details>"
    return out


# ----------------------------------------------------------------------------- the section
def evolve_section(page: Page, ev: EvolveView) -> str:
    parts = []
    if ev.selection is None:
        parts.append('<p class="muted">no scored law in this search</p>')
    else:
        sel, low, origin = ev.sel, ev.low, ev.origin
        if origin == "lowest":
            head = "Lowest-training-action law (no selection recorded or computable)"
            note = "No model selection is available for this run: this is the candidate of lowest training action."
        else:
            head = f"Selected law (rule {ev.selection.get('rule')})"
            note = f"Selection {origin}. {ev.selection.get('reason') or ''}"
        cards = [law_card(page, head, sel, ev.formulas["sel"], note)]
        if low and origin != "lowest":
            dropped = ev.selection.get("dropped") or []
            lnote = ("The selected law drops these terms of it: " + ", ".join(map(str, dropped))) if dropped else ""
            if low.get("uid") and low.get("uid") == sel.get("uid"):
                lnote = "The selected law is this candidate, simplified." + (" " + lnote if lnote else "")
            cards.append(law_card(page, "Lowest training action", low, ev.formulas["low"], lnote))
        if ev.warning:
            parts.append(f'<p class="warn">Warning: {esc(ev.warning)}</p>')
        parts.append('<div class="laws">' + "".join(cards) + "</div>")
        figs = []
        front = ev.front
        has_front = front is not None and len(front) and {"complexity", "train_action"} <= set(front.columns)
        if has_front:
            figs.append(page.png_figure(
                front_figure(front, sel, low),
                "Pareto front (complexity × training action); star: the selected law (its simplified form); "
                "circle: the lowest training action.", "Pareto front with the selected law marked"))
        hidden_text, hidden_fig = hidden_block(page, ev.hidden) if ev.hidden is not None else ("", "")
        parts.append(hidden_text)
        figs += [hidden_fig] if hidden_fig else []
        if figs:
            parts.append('<div class="figs">' + "".join(figs) + "</div>")
        if has_front:
            parts.append(front_table(page, front, ev.table, sel, low))
    parts.append(search_table(page, ev.summary))
    caps = ev.summary.get("captions", {}) if isinstance(ev.summary.get("captions"), dict) else {}
    parts += folder_files(page, ev.folder, caps)
    return "".join(parts)
