"""The compare page (`potsearch compare RUN_A RUN_B --html OUT.html`, or a section of `report --compare`) as
HTML, from plain data the compare stage gathered (``CompareView``).

The runs side by side (Table 3 numbers, escape convention, S_min, detailed-balance verdict,
selected law), then per pair of runs the state and SCC alignment, the scale with its interval, the rank
agreement, the scatter of aligned potentials with error bars and the fitted scale line (differing states in
red), the states that differ after the scale, the transition-row homogeneity, and finally the law-transfer
table. Run labels, state names and law text come from files and models: every one is escaped here
(``html.esc``) and drawn as plain text in the figure (``plots.compare_scatter``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

from potsearch.views.html import Page, Raw, badge, document, esc, fmt


@dataclass
class PairView:
    """One pair of runs: ``summary`` (science.compare's pair summary: scale, scale_ci, spearman, ...,
    homogeneity, note), ``aligned`` (one dict per aligned state: state, potential_a, potential_b, se_a,
    se_b, residual, se, z, q, flagged, prefers), the states ``only_a`` / ``only_b`` one run has, and
    ``homogeneity`` (one dict per shared source: state, n_a, n_b, outcomes, chi2, df, p, q)."""
    a: str
    b: str
    summary: dict
    aligned: list[dict] = field(default_factory=list)
    only_a: list[str] = field(default_factory=list)
    only_b: list[str] = field(default_factory=list)
    homogeneity: list[dict] = field(default_factory=list)


@dataclass
class CompareView:
    """What the compare page shows: ``runs`` (one dict per run), ``pairs`` with their ``figures`` (PNG bytes
    or None, one per pair), ``transfer`` rows, ``warnings``, ``notes`` (why a part is missing), ``alpha``."""
    runs: list[dict]
    pairs: list[PairView]
    figures: list
    transfer: list[dict]
    warnings: list[str]
    notes: list[str]
    alpha: float


def _num(v):
    """A number for a cell (NaN and None as a dash)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return v


def _text(v) -> str | None:
    """A text cell of a DataFrame row (missing values come back as NaN)."""
    return v if isinstance(v, str) and v else None


def _ci(v) -> str:
    if not v or any(x is None or (isinstance(x, float) and not math.isfinite(x)) for x in v):
        return "—"
    return f"[{fmt(float(v[0]))}, {fmt(float(v[1]))}]"


def _cards(items: list[tuple[str, str]]) -> str:
    return '<div class="cards">' + "".join(f'<div class="card"><div class="num">{esc(v)}</div>'
                                           f'<div class="lab">{esc(k)}</div></div>' for k, v in items) + "</div>"


def runs_section(page: Page, runs: list[dict], warnings: list[str]) -> str:
    """The runs side by side: each one's agent, escape convention, fit, Table 3 numbers and verdict."""
    out = [f'<p class="warn">{esc(w)}</p>' for w in warnings]
    rows = []
    for r in runs:
        v = _text(r.get("detailed_balance"))
        rows.append([r.get("run"), r.get("agent"), r.get("escapes"), r.get("states"), _num(r.get("s_min")),
                     r.get("samples"), _num(r.get("escape_rate")), _num(r.get("self_loop_rate")),
                     r.get("pairs_both_ways"), Raw(badge(v) if v else '<span class="missing">not diagnosed</span>'),
                     _text(r.get("law")) or "—"])
    out.append(page.table(["run", "agent", "escapes", "fitted states", "S_min", "samples", "escape rate",
                           "self-loop rate", "pairs both ways", "detailed balance", "selected law"], rows))
    out.append('<p class="muted">Detailed balance: the verdict of <code>potsearch diagnose</code> on each run. '
               'Escapes: <code>count</code> folds a state\'s escape rate into its potential, <code>condition</code> '
               'compares preferences among valid moves only (docs/compare.md).</p>')
    return "".join(out)


def pair_section(page: Page, p: PairView, png: bytes | None, alpha: float) -> str:
    s, h = p.summary, p.summary.get("homogeneity") or {}
    a, b = p.a, p.b
    out = [_cards([("shared states", fmt(s.get("shared"))), (f"only in {a}", fmt(s.get("only_a"))),
                   (f"only in {b}", fmt(s.get("only_b"))), ("SCCs line up", fmt(s.get("scc_match"))),
                   ("aligned (one SCC in both)", fmt(s.get("aligned"))),
                   ("differ after the scale", fmt(s.get("flagged")))])]
    level = f"{100 * (1 - alpha):g}%"
    if s.get("note"):
        out.append(f'<p class="warn">{esc(s["note"])}</p>')
    else:
        out.append(page.table(["quantity", "estimate", f"{level} interval"], [
            [Raw(f"scale s in V<sub>{esc(a)}</sub> = s·V<sub>{esc(b)}</sub> + c"), _num(s.get("scale")),
             _ci(s.get("scale_ci"))],
            ["offset c", _num(s.get("offset")), "—"],
            ["Spearman ρ", _num(s.get("spearman")), _ci(s.get("spearman_ci"))],
            ["Kendall τ", _num(s.get("kendall")), _ci(s.get("kendall_ci"))],
            ["bootstrap replicates used", s.get("replicates_used", 0), "—"]], "kv"))
    if png is not None:
        out.append('<div class="figs">' + page.png_figure(
            png, f"Aligned potentials of {a} against {b} (each centred on the aligned states) with bootstrap "
                 f"standard errors and the fitted line V_{a} = s·V_{b} + c (Deming regression); red: states that "
                 f"differ after the scale ({s.get('correction', 'holm')}, q < {alpha:g}).",
            f"scatter of the potentials of {a} against {b}") + "</div>")
    flagged = sorted((r for r in p.aligned if r.get("flagged")), key=lambda r: r.get("q") or 0)
    cols = ["state", f"V {a}", f"V {b}", "predicted", "residual", "se", "z", "q"]

    def row(r):
        return [r["state"], _num(r.get("potential_a")), _num(r.get("potential_b")), _num(r.get("predicted_a")),
                _num(r.get("residual")), _num(r.get("se")), _num(r.get("z")), _num(r.get("q"))]

    out.append(f"<h3>States that differ after the scale ({len(flagged)})</h3>")
    if flagged:
        out.append(page.table(cols + ["preferred more by"], [row(r) + [r.get("prefers")] for r in flagged[:50]],
                              "flagged"))
        out.append('<p class="muted">A negative residual: the first run prefers the state (lower potential) more '
                   'than the second run predicts after the scale.</p>')
    else:
        out.append('<p class="muted">none</p>')
    if p.aligned:
        top = sorted(p.aligned, key=lambda r: -abs(r.get("z") if isinstance(r.get("z"), float)
                                                    and math.isfinite(r["z"]) else 0))
        out.append(f"<details><summary>Aligned states ({len(p.aligned)}; largest |z| first, first 40)</summary>"
                   + page.table(cols, [row(r) for r in top[:40]]) + "</details>")
    for label, only in ((a, p.only_a), (b, p.only_b)):
        if only:
            shown = ", ".join(esc(x) for x in only[:40]) + (f", … ({len(only)} in all)" if len(only) > 40 else "")
            out.append(f"<details><summary>States only in {esc(label)} ({len(only)})</summary><p>{shown}</p></details>")
    out.append("<h3>Transition rows (Anderson–Goodman χ²)</h3>")
    out.append(f"<p>{fmt(h.get('states_tested'))} source states both runs sampled: χ² {fmt(h.get('chi2'))} on "
               f"{fmt(h.get('df'))} degrees of freedom (p {fmt(_num(h.get('p')))}); "
               f"{fmt(h.get('states_differing'))} rows differ (q &lt; {alpha:g}).</p>")
    diff = sorted((r for r in p.homogeneity if isinstance(r.get("q"), float) and math.isfinite(r["q"])),
                  key=lambda r: r["q"])[:20]
    if diff:
        out.append("<details><summary>Source states, smallest q first (first 20)</summary>" + page.table(
            ["state", f"samples {a}", f"samples {b}", "outcomes", "χ²", "df", "p", "q"],
            [[r["state"], r.get("n_a"), r.get("n_b"), r.get("outcomes"), _num(r.get("chi2")), r.get("df"),
              _num(r.get("p")), _num(r.get("q"))] for r in diff]) + "</details>")
    return "".join(out)


def transfer_section(page: Page, transfer: list[dict], notes: list[str]) -> str:
    if not transfer:
        return ('<p class="missing">' + esc("; ".join(notes) or "law transfer not computed (--no-transfer)")
                + "</p>")
    rows = []
    for r in transfer:
        g, ge, n, ne = (r.get(k) for k in ("gap", "gap_se", "native_gap", "native_gap_se"))
        try:
            z = (g - n) / math.sqrt(ge ** 2 + ne ** 2)
        except (TypeError, ZeroDivisionError, ValueError):
            z = None
        ok = z is not None and math.isfinite(z)
        verdict = Raw(badge("pass", "carries over") if ok and z <= 2 else badge("check", "worse") if ok
                      else '<span class="missing">no SE</span>')
        rows.append([r.get("law_of"), r.get("on"), _num(g), _num(ge), _num(n), _num(ne),
                     _num(z) if ok else "—", verdict])
    return (page.table(["law of", "refitted on", "gap to S_min", "± SE", "native law's gap", "± SE",
                        "difference / SE", "verdict"], rows, "transfer")
            + '<p class="muted">Each run\'s selected law, its parameters refitted on the other run\'s data (structure '
              'kept), against that run\'s own law refitted the same way. Gaps are on all of a run\'s samples; a law '
              'carries over when its gap is within about two standard errors of the native one.</p>')


def sections(page: Page, v: CompareView) -> list[tuple[str, str, str]]:
    """(key, title, HTML) of the runs, of each pair and of the law transfer."""
    out = [("runs", "Runs side by side", runs_section(page, v.runs, v.warnings))]
    for i, (p, png) in enumerate(zip(v.pairs, v.figures)):
        out.append((f"pair-{i}", f"{p.a} vs {p.b}", pair_section(page, p, png, v.alpha)))
    out.append(("transfer", "Law transfer", transfer_section(page, v.transfer, v.notes)))
    return out


def compare_document(title: str, stamp: str, v: CompareView) -> str:
    """The whole compare page."""
    return document(title, stamp, sections(Page(), v), subtitle="Comparison of fitted runs: shared potential, "
                                                                "scale, differing states, law transfer")


def report_section(page: Page, v: CompareView) -> str:
    """The same content as one section of a run's report (``report RUN --compare OTHER``)."""
    return "".join(f"<h3>{esc(title)}</h3>{html}" for _, title, html in sections(page, v))
