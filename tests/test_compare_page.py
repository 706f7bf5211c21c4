"""The compare page (`potsearch compare RUN_A RUN_B --html OUT.html`): its content, escaping of hostile
state names and law text, its refusals, and a real browser loading it without a console message."""
from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import pytest

import potsearch as ps
from potsearch.cli.app import main
from potsearch.collector.io import export_counts
from potsearch.science.synthetic import metropolis_chain
from potsearch.views.compare_page import transfer_section
from potsearch.views.html import Page

SCRIPT, MATH = "<script>alert(1)</script>", r"$\frac{1}{0}$"


@pytest.fixture(scope="module")
def hostile_pair(tmp_path_factory):
    """Two runs over 30 states, A's potential twice B's with one state pushed up (named SCRIPT) and one
    pushed down (named MATH): both must be flagged, shown and escaped."""
    d = tmp_path_factory.mktemp("cmp_page")
    base = metropolis_chain(n_states=30, seed=11)
    for label, scale, seed in (("a", 2.0, 2), ("b", 1.0, 3)):
        v = scale * base.V.copy()
        if label == "a":
            v[3] += 3.0
            v[7] -= 3.0
        counts = metropolis_chain(n_states=30, V=v, edges=base.edges, samples_per_state=400, seed=seed).counts
        counts.states = [{3: SCRIPT, 7: MATH}.get(i, s) for i, s in enumerate(counts.states)]
        export_counts(counts, d / f"{label}.jsonl")
        ps.import_transitions(d / f"{label}.jsonl", d / label)
        ps.fit(d / label)
    ps.diagnose(d / "a", plots=False)
    return d


def _page(hostile_pair, name="c.html") -> tuple[Path, str]:
    out = hostile_pair / name
    if not out.exists():
        assert main(["compare", str(hostile_pair / "a"), str(hostile_pair / "b"), "--bootstrap", "30",
                     "--html", str(out)]) == 0
    return out, out.read_text()


def test_page_shows_scatter_flags_summaries_and_escapes_state_names(hostile_pair, capsys):
    out, page = _page(hostile_pair)
    assert f"wrote {out}" in capsys.readouterr().out
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert MATH in page                                     # shown as written (no mathtext, no script to typeset)
    assert page.count('src="data:image/png;base64,') == 1 and "<link" not in page
    for text in ("Runs side by side", "a vs b", "Law transfer", "SCCs line up", "aligned (one SCC in both)",
                 "Anderson–Goodman", "States that differ after the scale (2)", "Spearman", "Kendall"):
        assert text in page, text
    flagged = page[page.index("States that differ after the scale"):page.index("Aligned states (")]
    assert "&lt;script&gt;" in flagged and MATH in flagged
    verdicts = page[page.index('id="runs"'):page.index('id="pair-0"')]
    assert 'class="badge' in verdicts and "not diagnosed" in verdicts   # a diagnosed, b not


def test_api_writes_the_page_and_refuses_a_folder(hostile_pair, tmp_path, capsys):
    res = ps.compare(hostile_pair / "a", hostile_pair / "b", bootstrap=10, transfer=False, html=tmp_path / "p.html")
    assert res.html == tmp_path / "p.html" and "not computed (--no-transfer)" in res.html.read_text()
    assert main(["compare", str(hostile_pair / "a"), str(hostile_pair / "b"), "--html", str(tmp_path)]) == 2
    assert "--html is a directory" in capsys.readouterr().err
    assert main(["compare", str(hostile_pair / "a"), str(hostile_pair / "b"), "--html",
                 str(tmp_path / "no" / "p.html")]) == 2
    assert not (tmp_path / "no").exists()


def test_transfer_table_escapes_law_text_and_reads_the_gaps():
    rows = [dict(law_of=SCRIPT, on="b", gap=0.021, gap_se=0.0006, native_gap=0.026, native_gap_se=0.0006),
            dict(law_of="b", on=SCRIPT, gap=0.044, gap_se=0.0008, native_gap=0.038, native_gap_se=0.0007),
            dict(law_of="c", on="d", gap=0.01, gap_se=float("nan"), native_gap=0.01, native_gap_se=float("nan"))]
    html = transfer_section(Page(), rows, [])
    assert "<script" not in html and html.count("&lt;script&gt;") == 2
    body = html[html.index("<tbody>"):]
    first, second, third = body.split("<tr>")[1:4]
    assert "carries over" in first and "worse" in second and "no SE" in third
    assert "need" in transfer_section(Page(), [], ["law transfer needs a selected law in at least two runs"])


CHROMIUM = __import__("shutil").which("chromium") or __import__("shutil").which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PROBE_HEAD = "<head><script>window.alert = function () { console.error('alert called'); };</script>"
PROBE_END = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 200; }).length;
  var m = document.createElement('div'); m.id = 'potsearch-check';
  m.textContent = 'images=' + imgs.length + ' loaded=' + ok + ' tables=' + document.querySelectorAll('table').length
    + ' flagged=' + document.querySelectorAll('table.flagged tbody tr').length;
  document.body.appendChild(m);
});
</script></body>"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package `chromium`): "
                                             "the browser check of the compare page cannot run")
def test_compare_page_renders_in_headless_chromium(hostile_pair, tmp_path):
    out, page = _page(hostile_pair)
    # the page itself is script-free; this copy adds a checker, and an alert() that would log if a state
    # name's script ever ran
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("<head>", PROBE_HEAD, 1).replace("</body>", PROBE_END))
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}"]
    run = subprocess.run(common + ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom",
                                   probe.as_uri()], capture_output=True, text=True, timeout=120)
    m = re.search(r"images=(\d+) loaded=(\d+) tables=(\d+) flagged=(\d+)", run.stdout)
    assert m, "the checker script did not run"
    images, loaded, tables, flagged = map(int, m.groups())
    assert images == loaded == 1 and tables >= 4 and flagged == 2
    assert "alert(1)" in run.stdout.replace("&lt;", "<").replace("&gt;", ">")      # shown as text
    console = [ln for ln in run.stderr.splitlines() if ":CONSOLE" in ln]
    assert not console, console


def test_report_compare_adds_the_comparison_as_a_section(hostile_pair, tmp_path, capsys):
    out = tmp_path / "rep.html"
    assert main(["report", str(hostile_pair / "a"), "--compare", str(hostile_pair / "b"), "--out", str(out)]) == 0
    page = out.read_text()
    section = page[page.index('<section id="compare">'):]
    assert "Comparison with other runs" in section and "States that differ after the scale (2)" in section
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert section.count('src="data:image/png;base64,') == 1
    plain = tmp_path / "plain.html"
    assert main(["report", str(hostile_pair / "a"), "--out", str(plain)]) == 0
    assert 'id="compare"' not in plain.read_text()                 # no --compare: no section
    capsys.readouterr()
    assert main(["report", str(hostile_pair / "a"), "--compare", str(tmp_path / "nosuch"), "--out",
                 str(tmp_path / "x.html")]) == 2
    assert "not a run directory" in capsys.readouterr().err and not (tmp_path / "x.html").exists()
