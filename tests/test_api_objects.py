"""The notebook API returns objects: fit -> diagnose -> evolve -> polish -> attribute on a surrogate run,
every number read from the returned objects (no file read here)."""
import math

import pandas as pd
import pytest

import potsearch as ps
from potsearch.core.errors import InputError


def test_api_pipeline_returns_objects(tmp_path, capfd, ray_session):
    run = tmp_path / "sur"
    col = ps.collect(agent="word", provider="surrogate", run=run, max_samples=6000, samples_per_state=40, seed=0,
                     workers=1, progress=False)
    assert col.new_samples == 6000

    fit = ps.fit(run)
    assert len(repr(fit)) < 300 and "action=" in repr(fit)
    frame = fit.to_frame()
    assert isinstance(frame, pd.DataFrame) and len(frame) == fit.n_states and fit.action > 0

    diag = ps.diagnose(run, plots=False)
    assert diag.verdict in ("consistent", "violated", "inconclusive", diag["verdict"]["status"])
    table = diag.to_frame()
    assert list(table.columns) == ["test", "statistic", "p_value", "verdict"] and len(table) >= 5
    assert diag["fit"]["action"] == pytest.approx(fit.action)
    assert len(repr(diag)) < 300

    cfg = tmp_path / "gp.yaml"
    cfg.write_text("rounds: 4\nislands: 2\npopulation: 8\noffspring: 3\ncheckpoint_every: 2\n")
    capfd.readouterr()
    evo = ps.evolve(run, config=cfg, seed=0, quiet=True)
    printed = capfd.readouterr()
    assert printed.out == "" and printed.err == ""          # quiet means quiet
    best = evo.best
    assert best is not None and math.isfinite(best["train_action"])
    assert best["train_action"] >= evo["s_min_train"] - 1e-9  # the least-action fit is the floor
    front = evo.pareto()
    # the front holds the search's lowest training action, so nothing the search kept is below it
    assert len(front) >= 1 and front["train_action"].min() <= best["train_action"] + 1e-12
    assert front["complexity"].is_monotonic_increasing and front["train_action"].is_monotonic_decreasing

    shown = ps.show(run)               # an object, not captured text
    assert shown.law["kind"] == "selected" and shown.formula == evo.law["text"] == evo["selection"]["selected"]["text"]
    assert isinstance(shown.params, pd.DataFrame) and list(shown.params.columns) == ["name", "value", "stderr"]
    assert len(shown.params) == len(evo["selection"]["selected"]["params"])
    assert str(shown).splitlines()[1] == f"law (simplified): V = {shown.formula}" and len(repr(shown)) < 300
    top = ps.show(run, top=2).top
    assert isinstance(top, pd.DataFrame) and 1 <= len(top) <= 2 and top["formula"].map(bool).all()
    with pytest.raises(InputError, match="--top must be >= 0"):
        ps.show(run, top=-1)

    pol = ps.polish(run, iterations=3, samples=4, keep=2)
    assert pol.candidate is not None and pol.train_after <= pol.train_before
    assert pol.improved == (pol.train_after < pol.train_before)
    assert len(pol.to_frame()) == 1 and len(repr(pol)) < 300

    att = ps.attribute(run, repeats=2, refit_evals=50)
    feats = att.to_frame()
    assert att.top_feature == feats[feats.kind == "feature"].sort_values("rank")["name"].iloc[0]
    assert len(repr(att)) < 300


def test_api_unknown_option_names_the_valid_ones(tmp_path):
    with pytest.raises(InputError, match=r"unknown option 'max_sample'.*max_samples"):
        ps.collect(agent="word", provider="surrogate", run=tmp_path / "r", max_sample=10)
    with pytest.raises(InputError, match=r"unknown option 'plot'.*plots"):
        ps.diagnose(tmp_path, plot=False)
