"""Verdicts that say how strong they are, where a reader sees them: the diagnose command's first line,
the report's banner, the report's law card when the law predicts held-out moves worse than the
per-state table, and the fit's advice on which column to read."""
from __future__ import annotations

import json

import pytest

from evolve_helpers import small_run
from potsearch.cli.app import main

#: one 4-cycle seen twice each way: no violation detected, but the test could not have seen one of ~5 nats
WEAK = ("source,target,count\nA,B,2\nB,A,2\nB,C,2\nC,B,2\nC,D,2\nD,C,2\nD,A,2\nA,D,2\n"
        "A,A,3\nB,B,3\nC,C,3\nD,D,3\n")
#: the largest SCC {A, B, C} upstream of D (docs/concepts.md's example): most potential cells empty
UPSTREAM = ("source,target,count\nA,B,5\nB,A,4\nB,C,6\nC,B,3\nC,A,4\nA,C,2\nA,A,3\nB,B,3\nC,C,3\nU,A,1\nU,U,3\n"
            "A,D,1\nD,D,3\nX,Y,2\nY,X,2\n")


def test_diagnose_prints_the_label_and_the_report_banner_follows(tmp_path, capsys):
    f = tmp_path / "weak.csv"
    f.write_text(WEAK)
    run = tmp_path / "r"
    assert main(["import", str(f), str(run)]) == 0
    assert main(["fit", str(run)]) == 0
    capsys.readouterr()
    assert main(["diagnose", str(run), "--no-plots"]) == 0
    out = capsys.readouterr().out
    v = json.loads((run / "diagnose" / "diagnostics.json").read_text())["verdict"]
    assert v["status"] == "weak" and v["label"] == "WEAK EVIDENCE"
    assert out.startswith("WEAK EVIDENCE: no violation detected")
    assert "CONSISTENT" not in out.split("\n")[0]
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    assert '<span class="badge weak">WEAK EVIDENCE</span>' in html and "CONSISTENT" not in html


def test_fit_says_which_column_to_read_when_most_potentials_are_empty(tmp_path, capsys, table2):
    f = tmp_path / "up.csv"
    f.write_text(UPSTREAM)
    assert main(["fit", str(f), "--out", str(tmp_path / "fit")]) == 0
    out = capsys.readouterr().out
    assert "most potential cells are empty (4 of 7 states" in out and "read ref_potential" in out
    assert main(["fit", str(table2), "--out", str(tmp_path / "fit2")]) == 0   # few states unbounded: no advice
    assert "read ref_potential" not in capsys.readouterr().out


@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    run = small_run(tmp_path_factory, "honest")
    cfg = run.parent / "c.yaml"
    cfg.write_text("seed: 1\nislands: 2\npopulation: 8\nterms_mix: 0\nloop: lockstep\n")
    assert main(["evolve", str(run), "--config", str(cfg), "--rounds", "15", "--patience", "3", "--quiet"]) == 0
    return run


@pytest.mark.parametrize("worse", [True, False])
def test_report_and_evolve_say_when_the_law_predicts_worse_than_the_table(evolved, tmp_path, capsys, worse):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(evolved, run)
    p = run / "evolve" / "summary.json"
    s = json.loads(p.read_text())
    h = s["selection"]["selected"]["heldout_action"]
    s["baseline_heldout"] = h * (0.7 if worse else 1.3)
    p.write_text(json.dumps(s))
    capsys.readouterr()
    assert main(["report", str(run)]) == 0
    html = (run / "report.html").read_text()
    warned = "this law predicts held-out moves worse than the per-state table" in html
    assert warned == worse
    assert "<td>stopped</td>" in html and "last improvement at round" in html
    assert main(["show", str(run)]) == 0
    assert ("predicts held-out moves worse than the per-state table" in capsys.readouterr().out) == worse
