"""Files and terminal output with hostile state names and model text (docs/sandbox.md, threat model).

State names come from a model's replies or a user's file, formulas and code from a model: CSV files
written for people never hold a formula cell (and potsearch reads its own guarded cells back
exactly), nothing printed to a terminal carries a raw control character or rich markup, figures draw
names as plain text (never mathtext), and the HTML report shows formulas without the CSV guard and
without raw control characters.
"""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from potsearch.cli.app import main
from potsearch.collector.io import export_counts, read_counts
from potsearch.store import Counts, RunStore
from potsearch.core.textsafe import EXPORT_START, csv_cell, csv_value, one_line, printable

# a formula in a spreadsheet, a terminal escape, a bidi override, a C1 control, rich markup, mathtext
HOSTILE = ["=1+1", "+cmd|' /C calc'!A0", "@SUM(1)", "-2+3", "|pipe", "\x1b[31mRED\x1b[0m", "\x1b]0;owned\x07",
           "a\u202eb", "\x9bC1", "[bold]B[/bold]", "[/]", "$x^{$", "\\frac{", "_^", "'=quoted", "''@x", "#hash",
           "<escape>x", "PLAIN", "-5"]
#: what a terminal must never receive from data: C0 (but newline), DEL, C1, bidi overrides/isolates
CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
FORMULA = ("=", "+", "-", "@", "\t", "\r", "|")


def _is_number(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _formula_cells(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [c for row in csv.reader(fh) for c in row if c.startswith(FORMULA) and not _is_number(c)]


def _transitions(names: list[str]) -> list[dict]:
    """Every name moves to its two neighbours on a ring, both ways: one SCC, every state visited > 1."""
    rows, n = [], len(names)
    for i, a in enumerate(names):
        for k in (1, 2):
            b = names[(i + k) % n]
            rows += [{"source": a, "target": b, "count": 4 + k}, {"source": b, "target": a, "count": 2 + k}]
        rows.append({"source": a, "target": None, "count": 1})
    return rows


def _hostile_run(tmp: Path, names=HOSTILE, name: str = "run") -> Path:
    src = tmp / f"{name}.jsonl"          # JSONL keeps every name exactly (a CSV line may not start with #)
    src.write_text("".join(json.dumps(r) + "\n" for r in _transitions(list(names))), encoding="utf-8")
    assert main(["import", str(src), "--run", str(tmp / name)]) == 0
    return tmp / name


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    run = _hostile_run(tmp)
    assert main(["fit", str(run)]) == 0
    return run


# ----------------------------------------------------------------------------- the guards themselves
GUARD_CASES = HOSTILE + ["", "'", "''", "'tis", "'-5", "-inf", "+3", "\tTAB", "\rCR", "\t5", "'\t=x", "N_PARAMS = 1",
                         "#", "<escape>", "'<escape>", "é=", "=", "-"]


@pytest.mark.parametrize("start", [None, EXPORT_START])
def test_csv_guard_is_never_a_formula_and_reads_back_exactly(start):
    kw = {} if start is None else {"start": start}
    for x in GUARD_CASES:
        cell = csv_cell(x, **kw)
        assert csv_value(cell, **kw) == x, (x, cell)
        assert not cell.startswith(FORMULA) or _is_number(cell), (x, cell)
    assert csv_cell("=1+1") == "'=1+1" and csv_cell("'=1+1") == "''=1+1" and csv_cell("'tis") == "'tis"
    assert csv_cell("-0.25") == "-0.25" and csv_cell(3) == 3 and csv_value(3) == 3
    assert csv_cell("#c", start=EXPORT_START) == "'#c" and csv_cell("#c") == "#c"


def test_printable_escapes_c0_c1_del_and_bidi():
    s = "a\x1b[2J\x07\x7f\x85\x9b\u202a\u202e\u2066\u2069\u200fz"
    assert CONTROL.search(printable(s)) is None and "\\x1b[2J" in printable(s) and "\\u202e" in printable(s)
    assert printable("x\ny\tz") == "x\ny\tz" and one_line("x\ny\tz") == "x\\ny\\tz"
    assert printable("[bold]é ∑[/bold]") == "[bold]é ∑[/bold]"


# ----------------------------------------------------------------------------- fit: files and terminal
def test_fit_potentials_csv_has_no_formula_cell_and_reads_back(hostile_run):
    from potsearch.store.rundir import load_fit

    assert _formula_cells(hostile_run / "fit" / "potentials.csv") == []
    with RunStore.open(hostile_run, readonly=True) as st:
        stored = set(st.counts().states)
    assert set(load_fit(hostile_run).names) == stored == set(HOSTILE)


def _no_control(text: str) -> None:
    hit = CONTROL.search(text)
    assert hit is None, f"raw control character {hit.group()!r} at {hit.start()}: {text[max(0, hit.start() - 60):hit.start() + 20]!r}"


def test_fit_prints_no_control_characters_or_markup(hostile_run, cli):
    code, out, err = cli("fit", hostile_run)
    assert code == 0, err
    _no_control(out + err)
    assert "\\x1b[31mRED" in out and "a\\u202eb" in out and "\\x9bC1" in out
    assert "[bold]B[/bold]" in out and "[/]" in out       # shown as written, not as rich markup


def test_every_command_prints_state_names_escaped(hostile_run, tmp_path, cli):
    import shutil

    run = shutil.copytree(hostile_run, tmp_path / "copy")   # the module's run stays as it is
    src = tmp_path / "more.jsonl"
    src.write_text(json.dumps({"source": "\x1b[2Jclear", "target": "[red]r[/red]", "count": 1}) + "\n")
    for argv in (("import", src, "--run", run), ("diagnose", run, "--no-plots"), ("status", run),
                 ("export", run, tmp_path / "t.csv"), ("fit", run, "--min-visits", "0")):
        code, out, err = cli(*argv)
        assert code == 0, (argv, err)
        _no_control(out + err)
    code, out, err = cli("fit", run, "--reference", "\x1b[2Jnope")
    assert code == 2 and CONTROL.search(out + err) is None and "\\x1b[2Jnope" in err


# ----------------------------------------------------------------------------- export / import round trip
@pytest.mark.parametrize("fast", [False, True], ids=["careful-reader", "pandas-reader"])
def test_export_guards_csv_and_round_trips_exactly(tmp_path, monkeypatch, fast):
    from potsearch.collector import io

    if fast:   # the reader of big files (pandas), which hands anything unusual to the careful one
        monkeypatch.setattr(io, "FAST_MIN_BYTES", 0)
    names = HOSTILE + ["\tTAB", "\rCR", "x\ty", "'tis", "'-5"]
    n = len(names)
    counts = Counts(names, np.arange(n), (np.arange(n) + 1) % n, np.arange(1, n + 1))
    for ext in ("csv", "tsv", "jsonl", "json"):
        out = tmp_path / f"t.{ext}"
        assert export_counts(counts, out) == sum(range(1, len(names) + 1))
        if ext in ("csv", "tsv"):
            text = out.read_text(encoding="utf-8")
            cells = [c for row in csv.reader(text.splitlines(), delimiter="," if ext == "csv" else "\t")
                     for c in row]
            assert not [c for c in cells if c.startswith(FORMULA + ("#",)) and not _is_number(c)]
        back = read_counts(out)
        got = {(back.states[s], back.states[d], int(c)) for s, d, c in zip(back.src, back.dst, back.count)}
        # the guard keeps even a leading tab or CR in CSV/TSV; JSON(L) import strips names (as every agent
        # does: no store holds a name with whitespace around it)
        keep = (lambda s: s) if ext in ("csv", "tsv") else str.strip
        want = {(keep(names[s]), keep(names[d]), int(c)) for s, d, c in zip(counts.src, counts.dst, counts.count)}
        assert got == want, ext


def test_export_then_import_into_a_run_is_exact(hostile_run, tmp_path, cli):
    for ext in ("csv", "tsv", "jsonl"):
        code, _, err = cli("export", hostile_run, tmp_path / f"t.{ext}")
        assert code == 0, err
        code, _, err = cli("import", tmp_path / f"t.{ext}", "--run", tmp_path / ext)
        assert code == 0, err
        with RunStore.open(hostile_run, readonly=True) as a, RunStore.open(tmp_path / ext, readonly=True) as b:
            ca, cb = a.counts(), b.counts()
        edges = lambda c: {(c.states[s], c.states[d] if d >= 0 else None, int(n))  # noqa: E731
                           for s, d, n in zip(c.src, c.dst, c.count)}
        assert edges(ca) == edges(cb), ext


# ----------------------------------------------------------------------------- plots: never mathtext
def test_diagnose_and_report_draw_mathtext_names_as_text(tmp_path, cli):
    run = _hostile_run(tmp_path, ["$x^{$", "\\frac{", "_^", "$\\alpha$", "A", "B"], name="math")
    code, out, err = cli("diagnose", run)
    assert code == 0, err
    for fig in ("transitions", "pairs", "exclusion", "distribution"):
        assert (run / "diagnose" / f"{fig}.png").stat().st_size > 0
    code, out, err = cli("report", run, "--refresh")
    assert code == 0, err
    page = (run / "report.html").read_text(encoding="utf-8")
    assert "this section failed" not in page and "$x^{$" in page


def test_attribution_and_polish_figures_draw_names_as_text(tmp_path):
    from potsearch.law.attribution import Attribution, Row, plot
    from potsearch.law.optimize import OptimizeResult, plot_convergence

    att = Attribution(1.0, None, 1.0, [Row("feature", "$x^{$"), Row("term", "term 0", detail="+ p[0] * x['$a^{$']")],
                      1, 0, [])
    plot(att, tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 0
    plot_convergence([OptimizeResult("random-descent", [1.0], 1.0, [1.0], 0.5, 3, [(0, 1.0), (3, 0.5)])],
                     tmp_path / "p.png", 0.4, title="$x^{$ \\frac{")
    assert (tmp_path / "p.png").stat().st_size > 0


# ----------------------------------------------------------------------------- the HTML report
def _evolve_folder(run: Path, formula: str, operator: str = "gp") -> None:
    from potsearch.search.outputs import write_pareto
    from potsearch.store.candidates import CandidateRow

    src = "N_PARAMS = 1\ndef potential(x, p):\n    return p[0] * x['length']\n"
    rows = [CandidateRow(id=1, uid="u1", source=src, params=[-0.8585], parents=[], operator=operator, model=None,
                         island=0, round=0, train_action=0.5, heldout_action=0.6, gap=0.1, complexity=5, n_params=1),
            CandidateRow(id=2, uid="u2", source="=HYPERLINK(1)\n" + src, params=[1.0], parents=[], operator="=op",
                         model=None, island=0, round=1, train_action=0.4, heldout_action=0.6, gap=0.1, complexity=9,
                         n_params=1)]
    (run / "evolve").mkdir(parents=True, exist_ok=True)
    write_pareto(run / "evolve", rows, rows, 0.3, {"u1": formula, "u2": "+1\x1b[2J"}, selected_uid="u1")
    law = {"uid": "u1", "source": src, "params": [-0.8585], "text": formula, "latex": "", "train_action": 0.5,
           "heldout_action": 0.6, "complexity": 5, "simplified": True}
    (run / "evolve" / "summary.json").write_text(json.dumps({
        "config": {"seed": 0}, "s_min_train": 0.3, "best": {"source": src},
        "selection": {"rule": "bic", "reason": "r\x1b[2J", "selected": law, "dropped": [], "front_size": 2,
                      "lowest": {"uid": "u2", "source": rows[1].source, "train_action": 0.4, "complexity": 9}}}))


def test_report_pareto_table_shows_formulas_without_the_csv_guard(hostile_run):
    from potsearch.stages.report import build_report

    formula = "-0.8585*mean_letter*vowel_frac"
    _evolve_folder(hostile_run, formula, operator="\x1b]0;owned\x07 \u202e")
    assert _formula_cells(hostile_run / "evolve" / "pareto.csv") == []
    page = Path(build_report(hostile_run)).read_text(encoding="utf-8")
    table = re.search(r"<h3>Pareto front: complexity × training action.*?</table>", page, re.S).group(0)
    assert f"<td>{formula}</td>" in table and f"&#x27;{formula}" not in page
    assert "&#x27;=HYPERLINK" not in page and "&#x27;=op" not in page and "=HYPERLINK(1)" in page
    _no_control(page.replace("\n", "").replace("\t", ""))
    assert "\\x1b]0;owned\\x07" in page


def test_report_fit_table_shows_state_names_without_the_guard(hostile_run):
    from potsearch.stages.report import build_report

    page = Path(build_report(hostile_run)).read_text(encoding="utf-8")
    fit = re.search(r'<section id="fit">(.*?)</section>', page, re.S).group(1)
    assert "<td>=1+1</td>" in fit and "<td>&#x27;=quoted</td>" in fit and "<td>&#x27;=1+1</td>" not in fit
    assert "\\x1b[31mRED" in fit
    _no_control(page.replace("\n", "").replace("\t", ""))


# ----------------------------------------------------------------------------- the evolve summary
def test_evolve_summary_never_prints_a_question_mark_law(hostile_run, monkeypatch, cli):
    from potsearch.stages import evolve as evolvestage

    src = "N_PARAMS = 1\ndef potential(x, p):\n    # \x1b[2J\n    return p[0] * x['length']\n"
    law = {"uid": "u1", "source": src, "params": [1.0], "train_action": 0.5, "heldout_action": 0.6,
           "complexity": 5, "steps": "not simplified: timeout"}
    summary = {"rounds": 1, "islands": 1, "seconds": 1.0, "evaluations": 1, "evaluations_per_second": 1.0,
               "cache_hits": 0, "failed": 0, "llm": {"llm_calls": 0}, "s_min_train": 0.3, "baseline_heldout": 0.7,
               "selection": {"rule": "bic", "reason": "", "selected": law, "lowest": {}, "dropped": []}}
    monkeypatch.setattr(evolvestage, "run", lambda run_dir, opts: evolvestage.EvolveResult(summary, Path(run_dir), []))
    code, out, err = cli("evolve", "--run", hostile_run, "--force")
    assert code == 0, err
    assert "V = ?" not in out and "not simplified" in out and "(bic rule, simplified)" not in out
    _no_control(out + err)
    summary["selection"]["selected"] = dict(law, text="-2*length\x1b[2J", simplified=False)
    code, out, err = cli("evolve", "--run", hostile_run, "--force")
    assert "V = -2*length\\x1b[2J" in out and "not simplified" in out
    _no_control(out + err)
    summary["selection"]["selected"] = dict(law, text="2*length", simplified=True, steps="")
    code, out, err = cli("evolve", "--run", hostile_run, "--force")
    assert "law (bic rule, simplified): V = 2*length" in out
