"""runs/NAME/report.html: one self-contained static page (inline CSS, figures as data: URIs).

The page is a list of sections from a small registry. Each section is a function
``render(ctx) -> str | None`` (HTML, or None to leave the section out) registered with
``register_section(key, title, order)``; it reads what it needs of the run through ``ctx`` and
hands plain data to ``potsearch.views`` (``views.html`` the page and its markup helpers on
``ctx.page``, ``views.report_sections`` the built-in sections, ``views.evolve_section`` the evolve
one). Built in: the headline, the fit, the diagnostics, the evolve section
(``potsearch.stages.report_evolve``), a comparison with other runs when asked (``compare``: the compare
stage's content, ``views.compare_page``), and one generic section per other later stage (polish,
attribution) that renders whatever the stage left in its folder — ``summary.json`` as a table
(captions for figures under its "captions" key), every ``*.png`` as a figure, the first rows of
every ``*.csv`` — or says "not run yet".
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from potsearch.core.textsafe import csv_value
from potsearch.store.rundir import STORE_FILENAME, RunDir
from potsearch.stages import report_evolve
from potsearch.views import html
from potsearch.views import report_sections as views
from potsearch.views.report_sections import CsvHead, StageFolder


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


@dataclass
class Ctx:
    """What the sections read: the run folder, the store's stage results, the diagnostics and the fit;
    ``page`` places their figures and tables."""
    run_dir: Path
    stage_results: dict = field(default_factory=dict)
    diagnostics: dict | None = None
    fit: dict | None = None
    page: html.Page = field(default_factory=html.Page)
    compare: object = None       # a views.compare_page.CompareView when the report compares runs

    def folder(self, stage: str) -> StageFolder:
        """What ``stage`` left in RUN/<stage>/ (with best_potential.py for evolve)."""
        rd = RunDir(self.run_dir)
        d = rd.stage_dir(stage)
        summary = read_json(rd.stage_summary(stage))
        best = None
        if stage == "evolve" and rd.best_potential.is_file():
            best = rd.best_potential.read_text(errors="replace")
        return StageFolder(summary=summary, summary_invalid=not summary and rd.stage_summary(stage).exists(),
                           figures=sorted(d.glob("*.png")), csvs=[csv_head(p) for p in sorted(d.glob("*.csv"))],
                           best_source=best)


# ----------------------------------------------------------------------------- reading the run
def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def csv_head(path: Path, n: int = 15) -> CsvHead:
    """Header, the first ``n`` rows and the number of rows of a CSV file we wrote; the spreadsheet guard
    of its cells (``textsafe.csv_cell``) removed: the page shows ``-0.5*x``, not ``'-0.5*x``."""
    with open(path, newline="", encoding="utf-8") as fh:
        rows = [[csv_value(c) for c in r] for r in csv.reader(fh)]
    if not rows:
        return CsvHead(path.name, [], [], 0)
    return CsvHead(path.name, rows[0], rows[1:n + 1], len(rows) - 1)


# ----------------------------------------------------------------------------- built-in sections
@register_section("headline", "Summary", 0)
def _headline(ctx: Ctx) -> str:
    return views.headline(ctx.page, ctx.diagnostics, ctx.fit, list(ctx.stage_results))


@register_section("fit", "Least-action fit", 10)
def _fit(ctx: Ctx) -> str:
    fit = ctx.fit
    if not fit:
        return views.not_run("fit")
    dropped = None
    if fit.get("dropped"):
        from potsearch.science.dropped import describe

        dropped = describe(fit["dropped"])
    from potsearch.stages.fit import column_advice, reference_line

    rd = RunDir(ctx.run_dir)
    pot = rd.potentials_csv
    return views.fit_section(ctx.page, fit, rd.diagnose_figure("convergence"), dropped,
                             " ".join(x for x in (reference_line(fit), column_advice(fit)) if x) or None,
                             csv_head(pot, 10 ** 9) if pot.is_file() else None)


@register_section("diagnose", "Detailed-balance diagnostics", 20)
def _diagnose(ctx: Ctx) -> str:
    d = ctx.diagnostics
    if not d:
        return views.not_run("diagnose")
    from potsearch.stages.diagnose import summary_rows

    return views.diagnose_section(ctx.page, d, summary_rows(d), RunDir(ctx.run_dir).diagnose_figure)


def stage_section(ctx: Ctx, stage: str) -> str:
    """Generic section for a later stage: its summary.json, figures and CSV heads."""
    if not (ctx.run_dir / stage).is_dir():
        return views.not_run(stage)
    return views.stage_section(ctx.page, ctx.folder(stage))


@register_section("evolve", "Evolved potential", 30)
def _evolve(ctx: Ctx) -> str:
    return report_evolve.render(ctx) or stage_section(ctx, "evolve")


@register_section("polish", "Polish", 40)
def _polish(ctx: Ctx) -> str:
    return stage_section(ctx, "polish")


@register_section("attribution", "Feature attribution", 50)
def _attribution(ctx: Ctx) -> str:
    return stage_section(ctx, "attribution")


@register_section("compare", "Comparison with other runs", 60)
def _compare(ctx: Ctx) -> str | None:
    if ctx.compare is None:
        return None
    from potsearch.views.compare_page import report_section

    return report_section(ctx.page, ctx.compare)


# ----------------------------------------------------------------------------- page
def render(ctx: Ctx) -> str:
    sections = []
    for s in sorted(SECTIONS.values(), key=lambda s: s.order):
        try:
            content = s.render(ctx)
        except Exception as exc:  # one broken stage folder must not lose the whole report
            content = html.failed_section(exc)
        if content is not None:
            sections.append((s.key, s.title, content))
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return html.document(ctx.run_dir.resolve().name, stamp, sections)


def build_report(run_dir: Path, stage_results: dict | None = None, out: Path | None = None, compare=None) -> Path:
    """Read what the run has (fit/, diagnose/, later stages' folders) and write report.html; ``compare``:
    a ``views.compare_page.CompareView`` shown as its own section."""
    run_dir = Path(run_dir)
    diag = read_json(RunDir(run_dir).diagnostics_json)
    fit = read_json(RunDir(run_dir).fit_json)
    if fit is not None:
        fit = {**fit, "source": "saved"}
    elif diag is not None:
        fit = diag.get("fit")
    ctx = Ctx(run_dir=run_dir, stage_results=stage_results or {}, diagnostics=diag, fit=fit, compare=compare)
    out = out or RunDir(run_dir).report_html
    from potsearch.core.atomic import write_text

    return write_text(out, render(ctx))


@dataclass(frozen=True)
class ReportOptions:
    """Options of the report stage (the CLI's and the API's defaults): ``out``, the page's file
    (default RUN/report.html); ``refresh``: rerun the diagnostics even when the run has them; ``compare``:
    other fitted runs of the same agent, compared with this one (the compare stage with its defaults) in a
    section of the page."""

    out: str | None = None
    refresh: bool = False
    compare: tuple[str, ...] | None = None


def run(run, options: ReportOptions = ReportOptions(), say=None) -> Path:
    """The report stage: run the diagnostics first when the run has none (or ``refresh``), then write
    the page (RUN/report.html unless ``out``) and record it; returns its path. ``say(line)`` hears
    what is being done."""
    out, refresh = options.out, options.refresh
    from potsearch.stages.diagnose import DiagnoseOptions, default_out
    from potsearch.stages.diagnose import run as diagnose
    from potsearch.core.errors import InputError
    from potsearch.stages.fit import load_input

    run_dir = Path(run)
    if run_dir.name == STORE_FILENAME:
        run_dir = run_dir.parent
    if not run_dir.is_dir():
        raise InputError("not a run directory (the report needs a run: import or collect into one first)",
                         str(run_dir))
    if not RunDir(run_dir).store.exists():
        raise InputError("not a run directory (no store.sqlite inside)", str(run_dir))
    out = Path(out) if out else None
    if out is not None and out.is_dir():
        raise InputError("--out is a directory; give a file name such as report.html", str(out))
    inp = load_input(run_dir)
    if refresh or not RunDir(run_dir).diagnostics_json.exists():
        if say is not None:
            say(f"running the diagnostics first ({default_out(inp)})")
        diagnose(inp, DiagnoseOptions())
    view = None
    if options.compare:
        from potsearch.stages import compare as cmp

        if say is not None:
            say(f"comparing with {', '.join(map(str, options.compare))}")
        view = cmp.view(cmp.run([run_dir, *options.compare], cmp.CompareOptions()))
    path = build_report(run_dir, inp.store.stage_results() if inp.store else {}, out, compare=view)
    if inp.store is not None:
        with inp.store.exclusive("report"):
            inp.store.set_stage_result("report", {"path": str(path), "kilobytes": round(path.stat().st_size / 1024)})
    return path
