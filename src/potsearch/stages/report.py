"""runs/NAME/report.html: one self-contained static page (inline CSS, figures as data: URIs).

The page is a list of sections from a small registry. Each section is a function
``render(ctx) -> str | None`` (HTML, or None to leave the section out) registered with
``register_section(key, title, order)``. Built in: the headline, the fit, the diagnostics, and one
generic section per later stage (evolve, polish, attribution) that renders whatever the stage left in
its folder — ``summary.json`` as a table (captions for figures under its "captions" key), every
``*.png`` as a figure, the first rows of every ``*.csv`` — or says "not run yet".

A stage that wants a richer section needs no edit here: put ``render(ctx) -> str`` in a module
``potsearch.stages.report_<stage>`` (e.g. potsearch/stages/report_evolve.py); it replaces the generic one, and
``ctx`` offers the helpers below (``ctx.figure``, ``ctx.table``, ``ctx.kv_table``, ``ctx.esc``).
"""
from __future__ import annotations

import base64
import csv
import html
import importlib
import importlib.util
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from potsearch.core.textsafe import csv_value, printable

STAGES = ("evolve", "polish", "attribution")


@dataclass
class Section:
    key: str
    title: str
    order: int
    render: Callable[["Ctx"], str | None]


SECTIONS: dict[str, Section] = {}


def register_section(key: str, title: str, order: int):
    """Decorator: add (or replace) a section of the report."""

    def deco(fn):
        SECTIONS[key] = Section(key, title, order, fn)
        return fn

    return deco


# ----------------------------------------------------------------------------- helpers
def esc(x) -> str:
    """Text for the page: control characters (model text: ANSI escapes, bidi overrides, ...) shown as
    ``\\xNN`` escapes (``textsafe.printable``; newlines and tabs kept), then HTML-escaped."""
    return html.escape(printable(str(x)), quote=True)


def fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    if isinstance(v, (list, tuple)):
        if len(v) <= 6 and all(not isinstance(i, (list, dict)) for i in v):
            return ", ".join(fmt(i) for i in v)
        return f"[{len(v)} items]"
    if isinstance(v, dict):
        return f"{{{len(v)} keys}}"
    return str(v)


@dataclass
class Ctx:
    run_dir: Path
    stage_results: dict = field(default_factory=dict)
    diagnostics: dict | None = None
    fit: dict | None = None
    captions: dict = field(default_factory=dict)
    n_figures: int = 0

    esc = staticmethod(esc)
    fmt = staticmethod(fmt)

    def figure(self, path: Path, caption: str, alt: str | None = None, wide: bool = False) -> str:
        """An embedded PNG with a numbered caption ('' when the file is missing). ``wide`` spans the grid."""
        path = Path(path)
        if not path.is_file():
            return ""
        self.n_figures += 1
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return (f'<figure class="{"wide" if wide else ""}"><img src="data:image/png;base64,{data}" alt="{esc(alt or caption)}">'
                f"<figcaption><b>Figure {self.n_figures}.</b> {esc(caption)}</figcaption></figure>")

    def table(self, header: list[str], rows: list[list], cls: str = "") -> str:
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, Raw) else esc(fmt(c))}</td>" for c in r)
                       + "</tr>" for r in rows)
        return f'<div class="tw"><table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'

    def kv_table(self, d: dict, skip: tuple = ()) -> str:
        rows = []
        for k, v in d.items():
            if k in skip:
                continue
            if isinstance(v, dict) and len(v) <= 12:
                rows += [[f"{k}.{k2}", v2] for k2, v2 in v.items() if not isinstance(v2, (dict, list)) or
                         (isinstance(v2, list) and len(v2) <= 6)]
            else:
                rows.append([k, v])
        return self.table(["key", "value"], rows, "kv")


class Raw(str):
    """A table cell that is already HTML."""


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _csv_head(path: Path, n: int = 15) -> tuple[list[str], list[list[str]], int]:
    """Header, the first ``n`` rows and the number of rows of a CSV file we wrote; the spreadsheet guard
    of its cells (``textsafe.csv_cell``) removed: the page shows ``-0.5*x``, not ``'-0.5*x``."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [[csv_value(c) for c in r] for r in csv.reader(fh)]
    if not rows:
        return [], [], 0
    return rows[0], rows[1:n + 1], len(rows) - 1


def _badge(status: str) -> str:
    return f'<span class="badge {esc(status)}">{esc(status)}</span>'


# ----------------------------------------------------------------------------- built-in sections
@register_section("headline", "Summary", 0)
def _headline(ctx: Ctx) -> str:
    d, fit = ctx.diagnostics or {}, ctx.fit or {}
    v = d.get("verdict", {"status": "untestable", "text": "diagnostics not run"})
    cards = [("S<sub>min</sub> (least action)", fmt(fit.get("action"))),
             ("states / edges", f"{fmt(fit.get('states'))} / {fmt(fit.get('edges'))}"),
             ("samples", fmt(fit.get("samples"))),
             ("strongly connected components", fmt(fit.get("sccs"))),
             ("loop test p", fmt((d.get("loop") or {}).get("p_value"))),
             ("σ of potentials", fmt((d.get("distribution") or {}).get("sigma")))]
    cells = "".join(f'<div class="card"><div class="num">{val}</div><div class="lab">{lab}</div></div>'
                    for lab, val in cards)
    done = ", ".join(k for k in ctx.stage_results) or "none recorded"
    return (f'<div class="verdict {esc(v["status"])}">{_badge(v["status"])} <span>{esc(v["text"])}</span></div>'
            + (f'<p class="warn">{esc(v["advice"])}</p>' if v.get("advice") else "")
            + f'<div class="cards">{cells}</div><p class="muted">Stages recorded in the store: {esc(done)}.</p>')


@register_section("fit", "Least-action fit", 10)
def _fit(ctx: Ctx) -> str:
    fit = ctx.fit
    if not fit:
        return '<p class="missing">not run yet — <code>potsearch fit RUN</code></p>'
    keys = ["mode", "action", "states", "edges", "samples", "states_in_input", "sccs", "largest_scc",
            "unbounded_states", "converged", "iterations", "grad_norm", "seconds"]
    src = fit.get("source", "saved")
    parts = [f'<p>S<sub>min</sub> is the exact infimum of the action: each strongly connected component (SCC) is '
             f'fitted on its own; a state upstream of another SCC has potential +∞ relative to it and is shown at '
             f'its exclusion lower bound (paper Eq 25). Fit {"read from fit/" if src == "saved" else "computed in memory (not saved: run potsearch fit)"}.</p>',
             '<div class="split">' + ctx.table(["quantity", "value"], [[k, fit.get(k)] for k in keys if k in fit], "kv")
             + ctx.figure(ctx.run_dir / "diagnose" / "convergence.png",
                          "Fit convergence: max |gradient| (log scale) and action per Newton iteration.") + "</div>"]
    if fit.get("dropped"):
        from potsearch.science.dropped import describe

        parts.append(f'<p class="warn">{esc(describe(fit["dropped"]))}</p>')
    for note in fit.get("notes") or []:
        parts.append(f'<p class="warn">{esc(note)}</p>')
    parts.append(_reference_paragraph(fit))
    pot = ctx.run_dir / "fit" / "potentials.csv"
    if pot.is_file():
        head, rows, total = _csv_head(pot, 10 ** 9)
        try:
            i = head.index("visits")
            rows.sort(key=lambda r: -int(r[i] or 0))
        except ValueError:
            pass
        keep = [c for c in ("state", "potential", "lower_bound", "unbounded", "visits", "scc", "ref_potential",
                            "ref_bound", "ref_relation") if c in head]
        idx = [head.index(c) for c in keep]
        parts.append(f"<h3>Most visited states ({min(20, total)} of {total})</h3>")
        ui = head.index("unbounded") if "unbounded" in head else -1
        pi = head.index("potential") if "potential" in head else -1

        def cell(r, j):  # an unbounded state's exact potential is +inf (its lower bound is beside it)
            return "+∞" if j == pi and r[j] == "" and ui >= 0 and r[ui] == "true" else _num(r[j])

        parts.append(ctx.table(keep, [[cell(r, j) for j in idx] for r in rows[:20]]))
    return "".join(parts)


def _reference_paragraph(fit: dict) -> str:
    """The reference-SCC convention (docs/concepts.md): one line, empty for fits written before it."""
    from potsearch.stages.fit import reference_line

    line = reference_line(fit)
    if not line:
        return ""
    return (f"<p>Relative to one reference SCC (columns ref_*): {esc(line)}. Upstream states are +∞ above it "
            "with their exclusion lower bound, downstream states −∞ below it with an upper bound.</p>")


def _num(s: str):
    try:
        return float(s) if any(c in s for c in ".eE") else int(s)
    except ValueError:
        return s


@register_section("diagnose", "Detailed-balance diagnostics", 20)
def _diagnose(ctx: Ctx) -> str:
    d = ctx.diagnostics
    if not d:
        return '<p class="missing">not run yet — <code>potsearch diagnose RUN</code></p>'
    from potsearch.stages.diagnose import summary_rows

    fig = ctx.run_dir / "diagnose"
    rows = [[r[0], r[1], r[2], Raw(_badge(r[3]) if r[3] in ("pass", "FAIL", "check") else esc(r[3]))]
            for r in summary_rows(d)]
    out = [ctx.table(["test", "statistic", "p-value", "verdict"], rows, "verdicts"),
           '<p class="muted">The loop test needs no potential: it checks Kolmogorov\'s criterion (equal products of '
           'transition probabilities around every cycle, both ways) and is calibrated on synthetic chains. '
           'See docs/diagnostics.md for each statistic.</p>', '<div class="figs">']
    lp, pr, ex, di = d["loop"], d["pair"], d["exclusion"], d["distribution"]
    out.append(ctx.figure(fig / "transitions.png", "Observed transitions with counts; states ordered by fitted "
                          "potential, high on the left. Green arcs go downhill, red uphill.", wide=True))
    out.append(ctx.figure(fig / "pairs.png", f"Pair test: fitted V(f) − V(g) against the observed log ratio for "
                          f"{pr['n_pairs']} pairs seen both ways; detailed balance puts them on y = x (error bars σ)."))
    out.append(ctx.figure(fig / "loops.png", f"Loop test: Σ log T forward against backward for "
                          f"{lp['n_triangles']} three-cycles; equal under detailed balance (red: |z| > 3)."))
    out.append(ctx.figure(fig / "exclusion.png", f"Exclusion test: {ex['n_one_way']} one-way pairs against the "
                          "bound of Eq 25; consistent pairs lie above the line."))
    e = di.get("expected_min_action") or {}
    out.append(ctx.figure(fig / "distribution.png", f"Potentials of {di['n_states']} states visited ≥ "
                          f"{di['min_visits']} times with a Gaussian fit; expected minimum action "
                          f"{fmt(e.get('closed_form'))} (Eq 28) / {fmt(e.get('asymptotic'))} (1/√πσ) against "
                          f"S_min {fmt(di.get('actual_min_action'))}."))
    mj = d.get("majority") or {}
    out.append(ctx.figure(fig / "majority.png", f"Majority voting (Eq 29–30): kernel after keeping a state seen ≥ k "
                          f"of m = {mj.get('m')} times; for small T, T′ ≈ C(m,k)·T^k so V′ ≈ kV."))
    out.append("</div>")
    out.append(_detail_tables(ctx, d))
    return "".join(out)


def _detail_tables(ctx: Ctx, d: dict) -> str:
    out = []
    t = d["pair"]["table"]
    if t.get("f"):
        n = len(t["f"])
        order = sorted(range(n), key=lambda i: -abs((t["residual"][i] or 0) / t["sigma"][i]))[:25]
        out.append(f"<details open><summary>Pairs ({n}; largest |residual|/σ first)</summary>" + ctx.table(
            ["f", "g", "n(f→g)", "n(g→f)", "N(f)", "N(g)", "log ratio", "V(f)−V(g)", "σ"],
            [[t["f"][i], t["g"][i], t["n_fg"][i], t["n_gf"][i], t["N_f"][i], t["N_g"][i], t["log_ratio"][i],
              t["dV"][i], t["sigma"][i]] for i in order]) + "</details>")
    tr = d["loop"].get("triangles") or {}
    if tr.get("D"):
        n = len(tr["D"])
        order = sorted(range(n), key=lambda i: -abs(tr["z"][i]))[:15]
        out.append(f"<details><summary>Three-cycles ({n}; largest |z| first)</summary>" + ctx.table(
            ["loop", "Σ log T fwd", "Σ log T bwd", "difference", "σ", "z"],
            [[" → ".join(tr["states"][i]), tr["sum_log_T_forward"][i], tr["sum_log_T_backward"][i], tr["D"][i],
              tr["sigma"][i], tr["z"][i]] for i in order]) + "</details>")
    ex = d["exclusion"]["table"]
    if ex.get("f"):
        n = len(ex["f"])
        order = sorted(range(n), key=lambda i: (ex["consistent"][i], ex["p_zero"][i] or 0))[:25]
        out.append(f"<details open><summary>One-way pairs ({n}; least consistent first)</summary>" + ctx.table(
            ["f", "g (never → f)", "n(f→g)", "N(g)", "bound log N(g)T(f→g)", "V(f)−V(g)", "+∞ in exact fit",
             "P(no return)", "consistent"],
            [[ex["f"][i], ex["g"][i], ex["n_fg"][i], ex["N_g"][i], ex["bound"][i], ex["dV"][i], ex["infinite"][i],
              ex["p_zero"][i], ex["consistent"][i]] for i in order]) + "</details>")
    return "".join(out)


def stage_files(ctx: Ctx, d: Path, caps: dict) -> list[str]:
    """A stage folder's figures (side by side, captioned from ``caps``) and the heads of its CSV files."""
    parts = []
    figs = [ctx.figure(p, caps.get(p.name, p.stem.replace("_", " "))) for p in sorted(d.glob("*.png"))]
    if figs:
        parts.append('<div class="figs">' + "".join(figs) + "</div>")
    for p in sorted(d.glob("*.csv")):
        head, rows, total = _csv_head(p)
        if head:
            parts.append(f"<details><summary>{esc(p.name)} (first {len(rows)} of {total} rows)</summary>"
                         + ctx.table(head, rows) + "</details>")
    return parts


def stage_section(stage: str, ctx: Ctx) -> str:
    """Generic section for a later stage: its summary.json, figures and CSV heads."""
    d = ctx.run_dir / stage
    if not d.is_dir():
        return f'<p class="missing">not run yet — <code>potsearch {"attribute" if stage == "attribution" else stage} RUN</code></p>'
    summary = _read_json(d / "summary.json") or {}
    caps = summary.get("captions", {}) if isinstance(summary.get("captions"), dict) else {}
    parts = []
    if summary:
        parts.append(ctx.kv_table(summary, skip=("captions",)))
    elif (d / "summary.json").exists():
        parts.append('<p class="warn">summary.json is not valid JSON</p>')
    parts += stage_files(ctx, d, caps)
    if stage == "evolve" and (ctx.run_dir / "best_potential.py").is_file():
        src = (ctx.run_dir / "best_potential.py").read_text(errors="replace")
        parts.append(f"<details><summary>best_potential.py</summary><pre>{esc(src)}</pre></details>")
    return "".join(parts) or '<p class="muted">the stage folder is empty</p>'


def _stage_renderer(stage: str):
    modname = f"potsearch.stages.report_{stage}"
    try:
        found = importlib.util.find_spec(modname) is not None
    except (ImportError, ValueError):
        found = False
    if found:
        mod = importlib.import_module(modname)
        if hasattr(mod, "render"):
            return mod.render
    return lambda ctx: stage_section(stage, ctx)


for _i, (_stage, _title) in enumerate((("evolve", "Evolved potential"), ("polish", "Polish"),
                                        ("attribution", "Feature attribution"))):
    SECTIONS.setdefault(_stage, Section(_stage, _title, 30 + 10 * _i,
                                        (lambda s: lambda ctx: _stage_renderer(s)(ctx))(_stage)))


# ----------------------------------------------------------------------------- page
CSS = """
:root{--ink:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--accent:#2563eb;--good:#059669;--bad:#dc2626;--warn:#b45309}
*{box-sizing:border-box}body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#0f172a;color:#fff;padding:28px 40px}header h1{margin:0;font-size:26px}header p{margin:4px 0 0;color:#cbd5e1}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid var(--line);padding:8px 40px;z-index:2}
nav a{color:var(--accent);text-decoration:none;margin-right:18px;font-size:14px}
main{max-width:1180px;margin:0 auto;padding:16px 40px 60px}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px 26px;margin:22px 0}
h2{margin:0 0 12px;font-size:20px}h3{font-size:16px;margin:18px 0 8px}
.verdict{font-size:19px;padding:14px 18px;border-radius:8px;background:#fffbeb;border-left:6px solid var(--warn)}
.verdict.consistent{background:#ecfdf5;border-color:var(--good)}.verdict.violated{background:#fef2f2;border-color:var(--bad)}
.badge{display:inline-block;font-size:12px;font-weight:700;text-transform:uppercase;letter-spacing:.04em;padding:2px 8px;border-radius:99px;background:#fef3c7;color:var(--warn);vertical-align:middle}
.badge.consistent,.badge.pass{background:#d1fae5;color:var(--good)}.badge.violated,.badge.FAIL{background:#fee2e2;color:var(--bad)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(160px,1fr));gap:12px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:12px 14px}.num{font-size:22px;font-weight:700}.lab{color:var(--muted);font-size:13px}
.tw{overflow-x:auto}table{border-collapse:collapse;width:100%;font-size:13.5px;margin:8px 0}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:#f1f5f9;font-weight:600}tbody tr:nth-child(even){background:#fafafa}table.kv{width:auto;min-width:420px}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:18px;margin-top:14px}
figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:10px;background:#fff}
figure img{width:100%;height:auto;display:block}figure.wide{grid-column:1/-1}figure.wide img{max-width:980px;margin:0 auto}
.split{display:grid;grid-template-columns:minmax(360px,1fr) minmax(420px,1.2fr);gap:20px;align-items:start}figcaption{font-size:13px;color:var(--muted);margin-top:6px}
details{margin:10px 0}summary{cursor:pointer;font-weight:600}
.missing{color:var(--muted);font-style:italic}.muted{color:var(--muted);font-size:13.5px}.warn{color:var(--warn)}
pre{background:#0f172a;color:#e2e8f0;padding:12px;border-radius:8px;overflow-x:auto;font-size:12.5px}
code{background:#f1f5f9;padding:1px 5px;border-radius:4px}
.laws{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;margin:8px 0}.law h3{margin-top:0}
p.formula{font:600 16px/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;background:#f1f5f9;padding:8px 12px;border-radius:6px;overflow-x:auto}
img.formula{max-width:100%;height:auto;display:block;margin:6px 0}footer{color:var(--muted);font-size:12px;text-align:center;margin:30px}
"""


def render(ctx: Ctx) -> str:
    body, nav = [], []
    for s in sorted(SECTIONS.values(), key=lambda s: s.order):
        try:
            content = s.render(ctx)
        except Exception as exc:  # one broken stage folder must not lose the whole report
            content = f'<p class="warn">this section failed to render: {esc(type(exc).__name__)}: {esc(exc)}</p>'
        if content is None:
            continue
        nav.append(f'<a href="#{esc(s.key)}">{esc(s.title)}</a>')
        body.append(f'<section id="{esc(s.key)}"><h2>{esc(s.title)}</h2>{content}</section>')
    name = ctx.run_dir.resolve().name
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return ("<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>potsearch report — {esc(name)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>potsearch report: {esc(name)}</h1><p>Hidden potential and detailed balance of an LLM agent "
            f"· generated {stamp}</p></header><nav>{''.join(nav)}</nav><main>{''.join(body)}</main>"
            "<footer>Self-contained page: every figure is embedded; no external resources.</footer></body></html>")


def build_report(run_dir: Path, stage_results: dict | None = None, out: Path | None = None) -> Path:
    """Read what the run has (fit/, diagnose/, later stages' folders) and write report.html."""
    run_dir = Path(run_dir)
    diag = _read_json(run_dir / "diagnose" / "diagnostics.json")
    fit = _read_json(run_dir / "fit" / "fit.json")
    if fit is not None:
        fit = {**fit, "source": "saved"}
    elif diag is not None:
        fit = diag.get("fit")
    ctx = Ctx(run_dir=run_dir, stage_results=stage_results or {}, diagnostics=diag, fit=fit)
    out = out or run_dir / "report.html"
    from potsearch.core.atomic import write_text

    return write_text(out, render(ctx))


@dataclass(frozen=True)
class ReportOptions:
    """Options of the report stage (the CLI's and the API's defaults): ``out``, the page's file
    (default RUN/report.html); ``refresh``: rerun the diagnostics even when the run has them."""

    out: str | None = None
    refresh: bool = False


def run(run, options: ReportOptions = ReportOptions(), say=None) -> Path:
    """The report stage: run the diagnostics first when the run has none (or ``refresh``), then write
    the page (RUN/report.html unless ``out``) and record it; returns its path. ``say(line)`` hears
    what is being done."""
    out, refresh = options.out, options.refresh
    from potsearch.stages.diagnose import DiagnoseOptions, default_out
    from potsearch.stages.diagnose import run as diagnose
    from potsearch.core.errors import InputError
    from potsearch.stages.fit import load_input
    from potsearch.store import STORE_FILENAME

    run_dir = Path(run)
    if run_dir.name == STORE_FILENAME:
        run_dir = run_dir.parent
    if not run_dir.is_dir():
        raise InputError("not a run directory (the report needs a run: import or collect into one first)",
                         str(run_dir))
    if not (run_dir / STORE_FILENAME).exists():
        raise InputError("not a run directory (no store.sqlite inside)", str(run_dir))
    out = Path(out) if out else None
    if out is not None and out.is_dir():
        raise InputError("--out is a directory; give a file name such as report.html", str(out))
    inp = load_input(run_dir)
    if refresh or not (run_dir / "diagnose" / "diagnostics.json").exists():
        if say is not None:
            say(f"running the diagnostics first ({default_out(inp)})")
        diagnose(inp, DiagnoseOptions())
    path = build_report(run_dir, inp.store.stage_results() if inp.store else {}, out)
    if inp.store is not None:
        with inp.store.exclusive("report"):
            inp.store.set_stage_result("report", {"path": str(path), "kilobytes": round(path.stat().st_size / 1024)})
    return path
