"""`potsearch diagnose` and `potsearch report` from the command line: outputs, saved fits, bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from potsearch.cli.app import main
from potsearch.collector.io import export_counts, import_file
from potsearch.store import RunStore
from potsearch.science.synthetic import metropolis_chain

TABLE2 = Path(__file__).resolve().parents[1] / "data" / "table2_claude4_word.csv"
TESTS = ("pair", "loop", "exclusion", "distribution", "directionality")


def make_run(path: Path, source: Path = TABLE2) -> Path:
    store = RunStore.create(path)
    import_file(source, store)
    store.close()
    return path


def test_diagnose_json_on_a_transitions_file(tmp_path, capsys):
    rc = main(["diagnose", str(TABLE2), "--json", "--no-plots", "--out", str(tmp_path / "d")])
    out = capsys.readouterr().out
    assert rc == 0
    res = json.loads(out)
    for t in TESTS:
        assert "p_value" in res[t], t
    assert res == json.loads((tmp_path / "d" / "diagnostics.json").read_text())
    assert res["diagram"]["order"] == ["BUZZY", "TURKEY", "PROBLEMS", "PERSONAL", "ATTITUDE"]
    assert res["verdict"]["status"] == "untestable"
    assert sorted(res["exclusion"]["table"]["f"]) == ["BUZZY", "BUZZY", "TURKEY"]


def test_diagnose_no_plots_says_no_figures(tmp_path, capsys):
    out_dir = tmp_path / "d"
    assert main(["diagnose", str(TABLE2), "--no-plots", "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    flat = "".join(out.split())  # rich wraps long paths, even inside a word
    assert "diagnostics.json(nofigures:--no-plots)" in flat and "andfigures" not in flat
    assert [p.name for p in out_dir.iterdir()] == ["diagnostics.json"]


def test_diagnose_table_and_figures_on_a_run(tmp_path, capsys):
    run = make_run(tmp_path / "runs" / "syn", _synthetic_csv(tmp_path))
    assert main(["diagnose", str(run)]) == 0
    out = capsys.readouterr().out
    assert "loop (Kolmogorov)" in out and "S_min" in out
    d = run / "diagnose"
    for name in ("pairs", "loops", "exclusion", "distribution", "transitions", "convergence", "majority"):
        assert (d / f"{name}.png").stat().st_size > 1000 and (d / f"{name}.svg").exists()
    res = json.loads((d / "diagnostics.json").read_text())
    assert res["loop"]["ndf"] > 0 and res["loop"]["p_value"] is not None
    with RunStore.open(run) as store:
        stage = store.stage_results()["diagnose"]
    assert stage["verdict"] == res["verdict"]["status"] and stage["loop_p"] == res["loop"]["p_value"]


def _synthetic_csv(tmp_path: Path, drift: float = 0.0) -> Path:
    ch = metropolis_chain(n_states=8, degree=4, samples_per_state=200, seed=1, drift=drift)
    p = tmp_path / f"syn{drift}.csv"
    export_counts(ch.counts, p)
    return p


def test_diagnose_uses_the_saved_fit_unless_options_differ(tmp_path, capsys):
    from potsearch.stages.fit import FitOptions, load_input, run_fit, write_fit

    run = make_run(tmp_path / "run")
    g, res = run_fit(load_input(run).counts, FitOptions())
    write_fit(run / "fit", g, res)
    assert main(["diagnose", str(run), "--json", "--no-plots"]) == 0
    saved = json.loads(capsys.readouterr().out)
    assert saved["fit"]["source"] == "saved" and saved["fit"]["action"] == pytest.approx(res.action)
    assert main(["diagnose", str(run), "--json", "--no-plots", "--weight", "high_reject"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["fit"]["source"] == "computed" and other["fit"]["options"]["weight"] == "high_reject"


def test_report_command_writes_one_page(tmp_path, capsys):
    run = make_run(tmp_path / "run")
    assert main(["report", str(run)]) == 0
    assert "wrote" in capsys.readouterr().out
    page = (run / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == 7
    assert (run / "diagnose" / "diagnostics.json").exists()   # the report ran the diagnostics first


def _write(p: Path, text: str | bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    (p.write_bytes if isinstance(text, bytes) else p.write_text)(text)
    return p


BAD = {
    "missing file": lambda t: ["diagnose", str(t / "nope.csv")],
    "unknown extension": lambda t: ["diagnose", str(_write(t / "x.txt", "source,target\na,b\n"))],
    "bad count": lambda t: ["diagnose", str(_write(t / "x.csv", "source,target,count\na,b,1.5\n"))],
    "empty file": lambda t: ["diagnose", str(_write(t / "e.csv", ""))],
    "binary file": lambda t: ["diagnose", str(_write(t / "b.csv", b"\xff\xfe\x00\x01"))],
    "dir without store": lambda t: ["diagnose", str((t / "d").mkdir() or t / "d")],
    "alpha out of range": lambda t: ["diagnose", str(TABLE2), "--alpha", "2"],
    "bad vote": lambda t: ["diagnose", str(TABLE2), "--vote", "x"],
    "vote k > m": lambda t: ["diagnose", str(TABLE2), "--vote", "3,5"],
    "bad weight": lambda t: ["diagnose", str(TABLE2), "--weight", "bogus"],
    "nothing to fit": lambda t: ["diagnose", str(TABLE2), "--min-visits", "100000"],
    "negative n0": lambda t: ["diagnose", str(TABLE2), "--n0", "-1"],
    "top zero": lambda t: ["diagnose", str(TABLE2), "--top", "0"],
    "out is a file": lambda t: ["diagnose", str(TABLE2), "--out", str(_write(t / "f", "x"))],
    "corrupt fit.json": lambda t: ["diagnose", str(_corrupt_fit(t))],
    "report on a file": lambda t: ["report", str(TABLE2)],
    "report on missing run": lambda t: ["report", str(t / "none")],
    "report out is a dir": lambda t: ["report", str(make_run(t / "r")), "--out", str(t)],
}


def _corrupt_fit(t: Path) -> Path:
    run = make_run(t / "cf")
    _write(run / "fit" / "fit.json", "{not json")
    _write(run / "fit" / "potentials.csv", "state,potential\n")
    return run


@pytest.mark.parametrize("case", sorted(BAD))
def test_malformed_input_gives_one_line_and_exit_2(case, tmp_path, capsys):
    rc = main(BAD[case](tmp_path))
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["diagnose", str(TABLE2), "--alpha", "abc"], ["diagnose"], ["report"],
                                  ["diagnose", str(TABLE2), "--top", "many"]])
def test_argparse_errors_are_one_line_exit_2(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as exc:  # older cli.main let argparse exit
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:")
