"""The report's sections as HTML, from data the report stage read: the headline, the least-action
fit, the diagnostics, and a later stage's folder (its summary, figures and CSV heads)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from potsearch.views.html import Page, Raw, badge, esc, fmt


@dataclass
class CsvHead:
    """The first rows of a CSV file: its name, header, those rows and how many rows it has."""
    name: str
    header: list[str]
    rows: list[list[str]]
    total: int


@dataclass
class StageFolder:
    """What a later stage left in its folder (``summary``: its summary.json, None when missing or not JSON)."""
    summary: dict | None = None
    summary_invalid: bool = False      # summary.json is there but empty or not valid JSON
    figures: list[Path] = field(default_factory=list)
    csvs: list[CsvHead] = field(default_factory=list)
    best_source: str | None = None     # best_potential.py (the evolve stage's)


def headline(page: Page, diagnostics: dict | None, fit: dict | None, stages_done: list[str]) -> str:
    d, fit = diagnostics or {}, fit or {}
    v = d.get("verdict", {"status": "untestable", "text": "diagnostics not run"})
    cards = [("S<sub>min</sub> (least action)", fmt(fit.get("action"))),
             ("states / edges", f"{fmt(fit.get('states'))} / {fmt(fit.get('edges'))}"),
             ("samples", fmt(fit.get("samples"))),
             ("strongly connected components", fmt(fit.get("sccs"))),
             ("loop test p", fmt((d.get("loop") or {}).get("p_value"))),
             ("σ of potentials", fmt((d.get("distribution") or {}).get("sigma")))]
    cells = "".join(f'<div class="card"><div class="num">{val}</div><div class="lab">{lab}</div></div>'
                    for lab, val in cards)
    done = ", ".join(stages_done) or "none recorded"
    return (f'<div class="verdict {esc(v["status"])}">{badge(v["status"], v.get("label"))} <span>{esc(v["text"])}</span></div>'
            + (f'<p class="warn">{esc(v["advice"])}</p>' if v.get("advice") else "")
            + f'<div class="cards">{cells}</div><p class="muted">Stages recorded in the store: {esc(done)}.</p>')


FIT_KEYS = ["mode", "action", "states", "edges", "samples", "states_in_input", "sccs", "largest_scc",
            "unbounded_states", "converged", "iterations", "grad_norm", "seconds"]


def fit_section(page: Page, fit: dict, convergence: Path, dropped: str | None, reference: str | None,
                potentials: CsvHead | None) -> str:
    """``dropped``: the sentence on what the fit dropped; ``reference``: the reference-SCC line;
    ``potentials``: every row of fit/potentials.csv."""
    src = fit.get("source", "saved")
    parts = [f'<p>S<sub>min</sub> is the exact infimum of the action: each strongly connected component (SCC) is '
             f'fitted on its own; a state upstream of another SCC has potential +∞ relative to it and is shown at '
             f'its exclusion lower bound (paper Eq 25). Fit {"read from fit/" if src == "saved" else "computed in memory (not saved: run potsearch fit)"}.</p>',
             '<div class="split">' + page.table(["quantity", "value"], [[k, fit.get(k)] for k in FIT_KEYS if k in fit],
                                                "kv")
             + page.figure(convergence,
                           "Fit convergence: max |gradient| (log scale) and action per Newton iteration.") + "</div>"]
    if dropped is not None:
        parts.append(f'<p class="warn">{esc(dropped)}</p>')
    for note in fit.get("notes") or []:
        parts.append(f'<p class="warn">{esc(note)}</p>')
    if reference:
        parts.append(f"<p>Relative to one reference SCC (columns ref_*): {esc(reference)}. Upstream states are +∞ "
                     "above it with their exclusion lower bound, downstream states −∞ below it with an upper bound.</p>")
    if potentials is not None:
        parts.append(_most_visited(page, potentials))
    return "".join(parts)


def _most_visited(page: Page, pot: CsvHead) -> str:
    head, rows, total = pot.header, list(pot.rows), pot.total
    try:
        i = head.index("visits")
        rows.sort(key=lambda r: -int(r[i] or 0))
    except ValueError:
        pass
    keep = [c for c in ("state", "potential", "lower_bound", "unbounded", "visits", "scc", "ref_potential",
                        "ref_bound", "ref_relation") if c in head]
    idx = [head.index(c) for c in keep]
    ui = head.index("unbounded") if "unbounded" in head else -1
    pi = head.index("potential") if "potential" in head else -1

    def cell(r, j):  # an unbounded state's exact potential is +inf (its lower bound is beside it)
        return "+∞" if j == pi and r[j] == "" and ui >= 0 and r[ui] == "true" else _num(r[j])

    return (f"<h3>Most visited states ({min(20, total)} of {total})</h3>"
            + page.table(keep, [[cell(r, j) for j in idx] for r in rows[:20]]))


def _num(s: str):
    try:
        return float(s) if any(c in s for c in ".eE") else int(s)
    except ValueError:
        return s


def diagnose_section(page: Page, d: dict, rows: list[tuple[str, str, str, str]], figs) -> str:
    """``d``: diagnostics.json; ``rows``: its (test, statistic, p-value, verdict) summary; ``figs(name)``:
    the path of its figure ``name`` (``store.rundir.RunDir.diagnose_figure``)."""
    rows = [[r[0], r[1], r[2], Raw(badge(r[3]) if r[3] in ("pass", "FAIL", "check", "weak") else esc(r[3]))] for r in rows]
    out = [page.table(["test", "statistic", "p-value", "verdict"], rows, "verdicts"),
           '<p class="muted">The loop test needs no potential: it checks Kolmogorov\'s criterion (equal products of '
           'transition probabilities around every cycle, both ways) and is calibrated on synthetic chains. '
           'See docs/diagnostics.md for each statistic.</p>', '<div class="figs">']
    lp, pr, ex, di = d["loop"], d["pair"], d["exclusion"], d["distribution"]
    out.append(page.figure(figs("transitions"), "Observed transitions with counts; states ordered by fitted "
                           "potential, high on the left. Green arcs go downhill, red uphill.", wide=True))
    out.append(page.figure(figs("pairs"), f"Pair test: fitted V(f) − V(g) against the observed log ratio for "
                           f"{pr['n_pairs']} pairs seen both ways; detailed balance puts them on y = x (error bars σ)."))
    out.append(page.figure(figs("loops"), f"Loop test: Σ log T forward against backward for "
                           f"{lp['n_triangles']} three-cycles; equal under detailed balance (red: |z| > 3)."))
    out.append(page.figure(figs("exclusion"), f"Exclusion test: {ex['n_one_way']} one-way pairs against the "
                           "bound of Eq 25; consistent pairs lie above the line."))
    e = di.get("expected_min_action") or {}
    out.append(page.figure(figs("distribution"), f"Potentials of {di['n_states']} states visited ≥ "
                           f"{di['min_visits']} times with a Gaussian fit; expected minimum action "
                           f"{fmt(e.get('closed_form'))} (Eq 28) / {fmt(e.get('asymptotic'))} (1/√πσ) against "
                           f"S_min {fmt(di.get('actual_min_action'))}."))
    mj = d.get("majority") or {}
    out.append(page.figure(figs("majority"), f"Majority voting (Eq 29–30): kernel after keeping a state seen ≥ "
                           f"k of m = {mj.get('m')} times; for small T, T′ ≈ C(m,k)·T^k so V′ ≈ kV."))
    out.append("</div>")
    out.append(_detail_tables(page, d))
    return "".join(out)


def _detail_tables(page: Page, d: dict) -> str:
    out = []
    t = d["pair"]["table"]
    if t.get("f"):
        n = len(t["f"])
        order = sorted(range(n), key=lambda i: -abs((t["residual"][i] or 0) / t["sigma"][i]))[:25]
        out.append(f"<details open><summary>Pairs ({n}; largest |residual|/σ first)</summary>" + page.table(
            ["f", "g", "n(f→g)", "n(g→f)", "N(f)", "N(g)", "log ratio", "V(f)−V(g)", "σ"],
            [[t["f"][i], t["g"][i], t["n_fg"][i], t["n_gf"][i], t["N_f"][i], t["N_g"][i], t["log_ratio"][i],
              t["dV"][i], t["sigma"][i]] for i in order]) + "</details>")
    tr = d["loop"].get("triangles") or {}
    if tr.get("D"):
        n = len(tr["D"])
        order = sorted(range(n), key=lambda i: -abs(tr["z"][i]))[:15]
        out.append(f"<details><summary>Three-cycles ({n}; largest |z| first)</summary>" + page.table(
            ["loop", "Σ log T fwd", "Σ log T bwd", "difference", "σ", "z"],
            [[" → ".join(tr["states"][i]), tr["sum_log_T_forward"][i], tr["sum_log_T_backward"][i], tr["D"][i],
              tr["sigma"][i], tr["z"][i]] for i in order]) + "</details>")
    ex = d["exclusion"]["table"]
    if ex.get("f"):
        n = len(ex["f"])
        order = sorted(range(n), key=lambda i: (ex["consistent"][i], ex["p_zero"][i] or 0))[:25]
        out.append(f"<details open><summary>One-way pairs ({n}; least consistent first)</summary>" + page.table(
            ["f", "g (never → f)", "n(f→g)", "N(g)", "bound log N(g)T(f→g)", "V(f)−V(g)", "+∞ in exact fit",
             "P(no return)", "consistent"],
            [[ex["f"][i], ex["g"][i], ex["n_fg"][i], ex["N_g"][i], ex["bound"][i], ex["dV"][i], ex["infinite"][i],
              ex["p_zero"][i], ex["consistent"][i]] for i in order]) + "</details>")
    return "".join(out)


def not_run(stage: str) -> str:
    """A stage's section before the stage ran."""
    return f'<p class="missing">not run yet — <code>potsearch {"attribute" if stage == "attribution" else stage} RUN</code></p>'


def folder_files(page: Page, folder: StageFolder, captions: dict) -> list[str]:
    """A stage folder's figures (side by side, captioned from ``captions``: file name -> caption), the
    heads of its CSV files, and best_potential.py when the folder carries it."""
    parts = []
    figs = [page.figure(p, captions.get(p.name, p.stem.replace("_", " "))) for p in folder.figures]
    if figs:
        parts.append('<div class="figs">' + "".join(figs) + "</div>")
    for c in folder.csvs:
        if c.header:
            parts.append(f"<details><summary>{esc(c.name)} (first {len(c.rows)} of {c.total} rows)</summary>"
                         + page.table(c.header, c.rows) + "</details>")
    if folder.best_source is not None:
        parts.append(f"<details><summary>best_potential.py</summary><pre>{esc(folder.best_source)}</pre></details>")
    return parts


def stage_section(page: Page, folder: StageFolder) -> str:
    """The generic section of a later stage: its summary.json as a table, figures and CSV heads."""
    summary = folder.summary or {}
    caps = summary.get("captions", {}) if isinstance(summary.get("captions"), dict) else {}
    parts = []
    if summary:
        parts.append(page.kv_table(summary, skip=("captions",)))
    elif folder.summary_invalid:
        parts.append('<p class="warn">summary.json is not valid JSON</p>')
    parts += folder_files(page, folder, caps)
    return "".join(parts) or '<p class="muted">the stage folder is empty</p>'
