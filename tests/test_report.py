"""The HTML report: self-contained, section registry, later stages' folders, and a real browser check."""
from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from potsearch.stages import report as R
from potsearch.views.html import esc, fmt
from potsearch.cli.app import main
from potsearch.collector.io import export_counts, import_file
from potsearch.store import RunStore
from potsearch.science.synthetic import metropolis_chain

TABLE2 = Path(__file__).resolve().parents[1] / "data" / "table2_claude4_word.csv"
PNG_1PX = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def _run(tmp: Path, name: str, synthetic: bool = False) -> Path:
    src = TABLE2
    if synthetic:
        src = tmp / "syn.csv"
        export_counts(metropolis_chain(n_states=10, degree=4, samples_per_state=300, seed=3).counts, src)
    with RunStore.create(tmp / name) as store:
        import_file(src, store)
    assert main(["report", str(tmp / name)]) == 0
    return tmp / name


@pytest.fixture(scope="module")
def table2_run(tmp_path_factory):
    return _run(tmp_path_factory.mktemp("rep"), "table2")


def test_report_is_self_contained(table2_run):
    page = (table2_run / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    # no external resource of any kind: every src/href is a data: URI or an in-page anchor
    for attr in re.findall(r'(?:src|href)="([^"]*)"', page):
        assert attr.startswith(("data:", "#")), attr
    assert "<link" not in page and "@import" not in page and "url(" not in page
    pngs = sorted((table2_run / "diagnose").glob("*.png"))
    assert page.count("data:image/png;base64,") == len(pngs) == 7
    for p in pngs:   # each figure is embedded byte for byte
        assert base64.b64encode(p.read_bytes()).decode() in page


def test_report_headline_and_sections(table2_run):
    page = (table2_run / "report.html").read_text()
    assert 'class="verdict untestable"' in page
    assert "S<sub>min</sub>" in page
    diag = json.loads((table2_run / "diagnose" / "diagnostics.json").read_text())
    assert fmt(diag["fit"]["action"]) in page
    for word in ("ATTITUDE", "PERSONAL", "PROBLEMS", "TURKEY", "BUZZY"):
        assert word in page
    for key in ("evolve", "polish", "attribution"):
        sec = re.search(rf'<section id="{key}">(.*?)</section>', page, re.S).group(1)
        assert "not run yet" in sec


def test_saved_fit_is_shown_with_unbounded_states(tmp_path):
    from potsearch.stages.fit import FitOptions, load_input, run_fit, write_fit

    with RunStore.create(tmp_path / "r") as store:
        import_file(TABLE2, store)
    g, res = run_fit(load_input(tmp_path / "r").counts, FitOptions())
    write_fit(tmp_path / "r" / "fit", g, res)
    assert main(["report", str(tmp_path / "r")]) == 0
    fit = re.search(r'<section id="fit">(.*?)</section>', (tmp_path / "r" / "report.html").read_text(), re.S).group(1)
    assert "read from fit/" in fit
    rows = dict(re.findall(r"<tr><td>(TURKEY|BUZZY|PERSONAL)</td><td>([^<]*)</td>", fit))
    assert rows["TURKEY"] == "+∞" and rows["BUZZY"] == "+∞" and rows["PERSONAL"] == "4.074"


def test_stage_folders_render_automatically(tmp_path):
    run = _run(tmp_path, "r")
    (run / "evolve").mkdir()
    (run / "evolve" / "summary.json").write_text(json.dumps(
        {"best_train_action": 0.4712, "rounds": 40, "captions": {"pareto.png": "Pareto front of the islands"}}))
    (run / "evolve" / "pareto.png").write_bytes(PNG_1PX)
    (run / "evolve" / "pareto.csv").write_text("complexity,action\n3,0.61\n7,0.4712\n")
    (run / "best_potential.py").write_text("def potential(state):\n    return len(state)\n")
    (run / "polish").mkdir()
    (run / "polish" / "summary.json").write_text("{broken")
    page = R.render(R.Ctx(run_dir=run, diagnostics=json.loads((run / "diagnose" / "diagnostics.json").read_text())))
    evolve = re.search(r'<section id="evolve">(.*?)</section>', page, re.S).group(1)
    assert "best_train_action" in evolve and "0.4712" in evolve and "Pareto front of the islands" in evolve
    assert base64.b64encode(PNG_1PX).decode() in evolve and "complexity" in evolve and "len(state)" in evolve
    polish = re.search(r'<section id="polish">(.*?)</section>', page, re.S).group(1)
    assert "not valid JSON" in polish
    assert "not run yet" in re.search(r'<section id="attribution">(.*?)</section>', page, re.S).group(1)


def test_registry_adds_and_replaces_sections(tmp_path, monkeypatch):
    run = _run(tmp_path, "r")
    monkeypatch.setitem(R.SECTIONS, "attribution", R.Section("attribution", "Feature attribution", 50,
                                                             lambda ctx: "<p>custom attribution section</p>"))
    monkeypatch.setitem(R.SECTIONS, "extra", R.Section("extra", "Extra", 99, lambda ctx: "<p>registered</p>"))
    monkeypatch.setitem(R.SECTIONS, "broken", R.Section("broken", "Broken", 98, lambda ctx: 1 / 0))
    page = R.render(R.Ctx(run_dir=run))
    assert "custom attribution section" in page and "registered" in page
    assert "failed to render: ZeroDivisionError" in page
    assert page.index('id="broken"') < page.index('id="extra"')


# ----------------------------------------------------------------------------- real browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHECK_JS = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var m = document.createElement('div'); m.id = 'potsearch-check';
  m.textContent = 'images=' + imgs.length + ' loaded=' + ok + ' text=' + document.body.innerText.length
    + ' height=' + document.body.scrollHeight;
  document.body.appendChild(m);
});
</script></body>"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package `chromium`): "
                                             "the browser check of report.html cannot run")
def test_report_renders_in_headless_chromium(tmp_path):
    run = _run(tmp_path, "syn", synthetic=True)
    page = run / "report.html"
    n_img = page.read_text().count("<img ")
    assert n_img >= 7
    # a copy with a checker script (the report itself stays script-free)
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", CHECK_JS))
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"]
    dom = subprocess.run(common + ["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    m = re.search(r"images=(\d+) loaded=(\d+) text=(\d+) height=(\d+)", dom)
    assert m, "the checker script did not run"
    images, loaded, text, height = map(int, m.groups())
    assert images == n_img and loaded == images, f"{loaded} of {images} images loaded"
    assert text > 2000 and height > 2000
    shot = tmp_path / "shot.png"
    subprocess.run(common + [f"--screenshot={shot}", "--window-size=1280,4000", page.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.exists(), "no screenshot written"
    import matplotlib.image as mpimg

    px = mpimg.imread(shot)[..., :3]
    assert px.shape[1] == 1280
    q = np.round(px.reshape(-1, 3) * 15).astype(int)
    colours, counts = np.unique(q, axis=0, return_counts=True)
    background = colours[counts.argmax()] / 15.0
    ink = np.any(np.abs(px - background) > 0.1, axis=-1)   # differs from the most common colour
    assert ink.mean() > 0.05 and px.std() > 0.05           # not a blank page
    # the headline band (dark header) is at the top, as designed
    assert px[:60].mean() < 0.3


# ----------------------------------------------------------------------------- evolve section
EVIL = '<script>alert("x")</script>&'


def _evolve_folder(run: Path, selection: bool = True) -> None:
    (run / "evolve").mkdir()
    src_sel = 'N_PARAMS = 2\n\n\ndef potential(x, p):\n    return p[0] * x["length"] + p[1] * x["zipf"]\n'
    src_low = ('N_PARAMS = 3\n\n\ndef potential(x, p):\n    return p[0] * x["length"] + p[1] * x["zipf"] '
               '+ p[2] * x["vowels"]\n')
    summary = {"rounds": 7, "islands": 2, "candidates": 30, "best_train_action": 0.4712,
               "config": {"seed": 0, "heldout_fraction": 0.2, "note": EVIL},
               "best": {"uid": "u3", "source": src_low, "params": [1.6, -2.4, 0.001], "train_action": 0.4712}}
    if selection:
        summary["selection"] = {
            "rule": "pysr", "reason": "steepest drop " + EVIL,
            "selected": {"uid": "u2", "source": src_sel, "params": [1.6, -2.4], "text": "1.6*length - 2.4*zipf " + EVIL,
                         "latex": r"1.6 \mathrm{length} - 2.4 \mathrm{zipf}", "train_action": 0.4713,
                         "heldout_action": 0.49, "complexity": 9, "n_terms": 2, "raw_source": src_sel,
                         "term_evidence": [{"term": "1.6*length " + EVIL, "train_rise": 0.03, "heldout_rise": 0.031,
                                            "bic_rise": 995.4}, {"term": "-2.4*zipf", "train_rise": 0.04,
                                                                 "heldout_rise": 0.041, "bic_rise": 1201.0}]},
            "lowest": {"uid": "u3", "source": src_low, "train_action": 0.4712, "heldout_action": 0.491,
                       "complexity": 13},
            "dropped": ["vowels " + EVIL], "front_size": 3}
    (run / "evolve" / "summary.json").write_text(json.dumps(summary))
    rows = [(3, 0.61, 0.62, "u1", "gp:cx", 'N_PARAMS = 1\n\n\ndef potential(x, p):\n    return p[0] * x["length"]\n',
             [0.9], "0.9*length", 0),
            (9, 0.4713, 0.49, "u2", "terms", src_sel, [1.6, -2.4], "1.6*length - 2.4*zipf", 1),
            (13, 0.4712, 0.491, "u3", "llm", src_low, [1.6, -2.4, 0.001], "1.6*length " + EVIL, 0)]
    import csv

    with open(run / "evolve" / "pareto.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["complexity", "n_params", "train_action", "heldout_action", "gap", "uid", "operator", "source",
                    "params", "simplified", "selected"])
        for c, tr, he, uid, op, src, par, simp, sel in rows:
            w.writerow([c, len(par), tr, he, 0.01, uid, op, src, json.dumps(par), simp if selection else "",
                        sel if selection else ""])


def _section(page: str, key: str) -> str:
    return re.search(rf'<section id="{key}">(.*?)</section>', page, re.S).group(1)


def test_evolve_section_shows_the_selected_law_and_escapes_model_text(tmp_path):
    run = _run(tmp_path, "r")
    _evolve_folder(run)
    sec = _section(R.render(R.Ctx(run_dir=run)), "evolve")
    assert "<script" not in sec and "&lt;script&gt;" in sec and "&amp;" in sec
    # the selected formula is visible text, before any collapsed block
    visible = re.sub(r"<details>.*?</details>", "", sec, flags=re.S)
    assert "Selected law (rule pysr)" in visible and "V = 1.6*length - 2.4*zipf &lt;script&gt;" in visible
    assert "Lowest training action" in visible and "drops these terms" in visible
    assert "recorded by the search" in visible
    # each term's evidence under the selected law, escaped
    assert "a positive BIC rise: the data support the term" in visible
    assert "<td>-2.4*zipf</td>" in visible and "1201" in visible
    # the front table: the selected row is marked (pareto.csv's selected column), its simplified formula shown
    rows = re.findall(r"<tr>(.*?)</tr>", visible, re.S)
    marked = [r for r in rows if "★ selected" in r]
    assert len(marked) == 1 and "<td>9</td>" in marked[0] and "terms" in marked[0]
    assert any("lowest action" in r and "<td>13</td>" in r and "&lt;script&gt;" in r for r in rows)
    assert sec.count("data:image/png;base64,") >= 2      # the front figure, the formula drawn by mathtext


def test_evolve_section_without_a_selection_block_computes_it(tmp_path_factory):
    from potsearch.search.config import SearchConfig
    from potsearch.search.run import evolve

    from evolve_helpers import small_run

    run = small_run(tmp_path_factory, "report")
    evolve(run, SearchConfig(rounds=30, islands=2, population=8, offspring=2, checkpoint_every=10, seed=1))
    summary = json.loads((run / "evolve" / "summary.json").read_text())
    summary.pop("selection", None)
    (run / "evolve" / "summary.json").write_text(json.dumps(summary))
    sec = _section(R.render(R.Ctx(run_dir=run)), "evolve")
    visible = re.sub(r"<details>.*?</details>", "", sec, flags=re.S)
    assert "computed by the report" in visible and re.search(r'<p class="formula">V = [^<]*(vowels|zipf)', visible)
    # a surrogate run: the hidden law from the run's stored config, and the scatter of hidden vs found
    with RunStore.open(run, readonly=True) as st:
        formula = st.run_info()["config"]["formula"]
    assert f"V<sub>hidden</sub> = {esc(formula)}" in visible
    m = re.search(r"both centred \(the additive constant removed\): r = ([-0-9.]+)", visible)
    assert m and float(m.group(1)) > 0.5
    assert visible.count("★ selected") == 1


def test_evolve_section_falls_back_to_the_lowest_action_law(tmp_path):
    run = _run(tmp_path, "r")
    _evolve_folder(run, selection=False)      # no selection block, and the run has no saved fit to compute one
    sec = _section(R.render(R.Ctx(run_dir=run)), "evolve")
    assert "Lowest-training-action law" in sec and "no selection recorded" in sec
    assert "<script" not in sec
