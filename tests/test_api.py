"""The notebook API runs the same stages as the CLI and returns data."""
import math

import pytest

import potsearch as ps
from potsearch.core.errors import InputError


def test_api_fit_diagnose_report_status(tmp_path, table2):
    run = tmp_path / "r"
    info = ps.import_transitions(table2, run)
    assert info["added"] == 20219
    res = ps.fit(run)
    pot = dict(zip(res.names, res.potential))
    assert abs(pot["PERSONAL"] - math.log(3879 / 66)) < 1e-9
    assert (run / "fit" / "potentials.csv").exists()
    diag = ps.diagnose(run, plots=False)
    assert {"pair", "loop", "exclusion", "distribution"} <= set(diag)
    assert diag["pair"]["n_pairs"] == 2
    path = ps.report(run)
    assert path.exists() and path.read_text().startswith("<!DOCTYPE html")
    st = ps.status(run)
    assert {"fit", "diagnose", "report"} <= set(st["stages"])
    assert ps.load(run).total == 20219


def test_api_errors_are_input_errors(tmp_path):
    with pytest.raises(InputError):
        ps.fit(tmp_path / "missing.csv")
    with pytest.raises(TypeError, match="unknown option"):
        ps.polish(tmp_path, no_such_option=1)


def test_public_names_have_docstrings():
    import potsearch.search.run  # noqa: F401  (submodule imports must not shadow API names)
    import potsearch.search.polish  # noqa: F401
    import potsearch.stages.report  # noqa: F401

    for name in ps.__all__:
        if name != "__version__":
            assert callable(getattr(ps, name)), name
    for name in ps.__all__:
        if name != "__version__":
            assert getattr(ps, name).__doc__, name


@pytest.mark.slow
def test_docs_worked_example_runs(tmp_path, monkeypatch, table2, capsys):
    """docs/api.md's example, executed as written (in a scratch folder)."""
    import shutil
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "api.md").read_text()
    src = text.split("```python", 1)[1].split("```", 1)[0]
    (tmp_path / "data").mkdir()
    shutil.copy(table2, tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    exec(compile(src, "docs/api.md", "exec"), {})
    out = capsys.readouterr().out
    assert "PERSONAL     4.074" in out and "+inf" in out
    assert (tmp_path / "runs" / "sur" / "report.html").exists()
