"""Polish: the paper's random-descent schedule, the scipy alternatives, the `polish` command."""
from __future__ import annotations

import json

import numpy as np
import pytest

from potsearch.law.optimize import ActionObjective, lbfgs, nelder_mead, polish, random_descent

from polish_helpers import make_run


class Counted:
    """A wrapped objective that counts and records every evaluation."""

    def __init__(self, f):
        self.f, self.n, self.points = f, 0, []

    def __call__(self, p):
        self.n += 1
        self.points.append(np.array(p, dtype=float))
        return self.f(p)


def _quadratic(p):
    target = np.array([1.0, -2.0, 0.5, 3.0])
    return float(np.sum((np.asarray(p) - target) ** 2))


def test_random_descent_default_schedule_is_exactly_100_by_20_evaluations():
    obj = Counted(_quadratic)
    x0 = np.array([0.5, -1.0, 1.0, 1.0])
    res = random_descent(obj, x0, f0=_quadratic(x0), seed=3)  # defaults: 100 it, 20 samples, keep 5
    assert obj.n == 100 * 20 == res.evaluations
    assert len(res.history) == 101
    best = [h[1] for h in res.history]
    assert all(b2 <= b1 for b1, b2 in zip(best, best[1:]))  # the action never increases
    assert res.fun <= _quadratic(x0) and res.fun == pytest.approx(_quadratic(res.x))
    # without a known starting action the start point costs one more evaluation
    obj2 = Counted(_quadratic)
    random_descent(obj2, x0, seed=3)
    assert obj2.n == 100 * 20 + 1


def test_random_descent_perturbs_one_parameter_by_relative_gaussian():
    obj = Counted(_quadratic)
    x0 = np.array([0.5, -1.0, 1.0, 0.0])
    sizes = []
    random_descent(obj, x0, iterations=1, samples=20, keep=5, scale=0.1, seed=0, f0=1.0,
                   callback=lambda it, best, children: sizes.append(len(children)))
    assert sizes == [20]  # first iteration: one parent, all 20 children from it
    moved = 0
    for p in obj.points:
        changed = np.flatnonzero(p != x0)
        # one parameter per sample; when the draw picks p[3] = 0 its sd = scale * |p_3| = 0 and the
        # sample equals its parent (the paper's code does the same: a zero parameter never moves)
        assert len(changed) <= 1 and 3 not in changed
        for i in changed:
            assert abs(p[i] - x0[i]) < 8 * 0.1 * abs(x0[i])
            moved += 1
    assert moved >= 10


def test_random_descent_is_seeded():
    x0 = np.array([0.5, -1.0, 1.0, 1.0])
    a = random_descent(_quadratic, x0, iterations=10, seed=7)
    b = random_descent(_quadratic, x0, iterations=10, seed=7)
    c = random_descent(_quadratic, x0, iterations=10, seed=8)
    assert np.array_equal(a.x, b.x) and not np.array_equal(a.x, c.x)


def _surrogate_objective():
    from potsearch.science.graph import build_graph
    from potsearch.science.synthetic import metropolis_chain

    rng = np.random.default_rng(1)
    n = 200
    feats = {"a": rng.uniform(0, 5, n), "b": rng.normal(0, 1, n), "c": rng.uniform(1, 3, n)}
    V = 1.2 * feats["a"] - 0.8 * np.log1p(feats["c"]) + 0.5 * feats["b"] ** 2
    ch = metropolis_chain(n_states=n, degree=6, samples_per_state=300, V=V, seed=2)
    g = build_graph(ch.counts)
    idx = [int(s[1:]) for s in g.names]
    x = {k: v[idx] for k, v in feats.items()}

    def fn(x, p):
        return p[0] * x["a"] + p[1] * np.log1p(x["c"]) + p[2] * x["b"] ** 2

    return ActionObjective.from_graph(fn, x, g)


def test_scipy_methods_respect_budget_and_never_worsen():
    obj = _surrogate_objective()
    p0 = np.array([0.5, -0.2, 0.1])
    f0 = obj(p0)
    for method in (lbfgs, nelder_mead):
        obj.calls = 0
        r = method(obj, p0, max_evals=300, f0=f0)
        assert r.fun <= f0
        assert r.evaluations == obj.calls
        assert r.evaluations <= 300 + 2 * len(p0) + 1  # a gradient may finish past the budget
        hist = [h[1] for h in r.history]
        assert all(b2 <= b1 for b1, b2 in zip(hist, hist[1:]))
    # all three reach (about) the hidden coefficients' action from a poor start
    res = {m: polish(obj, p0, m, iterations=100, f0=f0).fun for m in ("random-descent", "lbfgs", "nelder-mead")}
    assert max(res.values()) - min(res.values()) < 0.01 * f0


def test_polish_command_writes_candidate_and_best_potential(tmp_path, capsys):
    from potsearch.cli.app import main
    from potsearch.store import RunStore

    run = make_run(tmp_path / "run")
    rc = main(["polish", "--run", str(run), "--iterations", "20", "--seed", "1"])
    assert rc == 0
    out = capsys.readouterr().out
    summary = json.loads((run / "polish" / "summary.json").read_text())
    assert (run / "polish" / "polish.png").stat().st_size > 1000
    assert summary["evaluations"] == 20 * 20
    assert summary["action_after"]["train"] <= summary["action_before"]["train"]
    assert "held-out action" in out
    store = RunStore.open(run)
    last = store.candidates.rows(valid_only=False)[-1]
    row = (last.id, last.parents, last.operator, json.dumps(last.params))
    assert row[2] == "polish:random-descent" and row[1] == [2]
    assert store.get_meta("best_candidate") == row[0]
    assert store.candidates.count() == 3  # old versions kept
    assert "polish" in store.stage_results()
    store.close()
    # best_potential.py is self-contained and carries the polished parameters
    import subprocess
    import sys

    text = (run / "best_potential.py").read_text()
    for v in json.loads(row[3]):
        assert repr(float(v)) in text
    proc = subprocess.run([sys.executable, str(run / "best_potential.py"), "ATTITUDE", "BUZZY"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [ln.split("\t")[0] for ln in proc.stdout.splitlines()] == ["ATTITUDE", "BUZZY"]


@pytest.mark.parametrize("cmd", [["polish", "--run"], ["attribute", "--run"], ["show"]])
def test_commands_need_fit_and_evolve(tmp_path, capsys, cmd):
    from potsearch.cli.app import main
    from potsearch.store import RunStore, Sample

    bare = tmp_path / "bare"
    st = RunStore.create(bare)
    st.add_samples([Sample(uid=str(i), source="ATTITUDE", target="PERSONAL") for i in range(3)])
    st.close()
    assert main(cmd + [str(bare)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "fit" in err and "Traceback" not in err

    run = make_run(tmp_path / "noevolve", with_candidates=False)
    assert main(cmd + [str(run)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "evolve" in err


def test_polish_rejects_bad_options(tmp_path, capsys):
    from potsearch.cli.app import main

    run = make_run(tmp_path / "run")
    assert main(["polish", "--run", str(run), "--keep", "30"]) == 2
    assert "--keep" in capsys.readouterr().err


def test_polish_compare_methods(tmp_path, capsys):
    from potsearch.cli.app import main

    run = make_run(tmp_path / "run")
    assert main(["polish", "--run", str(run), "--method", "lbfgs", "--compare", "--iterations", "10"]) == 0
    out = capsys.readouterr().out
    s = json.loads((run / "polish" / "summary.json").read_text())
    h = json.loads((run / "polish" / "history.json").read_text())
    assert set(s["compare"]) == set(h["methods"]) == {"random-descent", "lbfgs", "nelder-mead"}
    assert h["methods"]["random-descent"]["evaluations"] == 10 * 20
    assert s["method"] == "lbfgs" and "compare random-descent" in out
    assert s["action_after"]["train"] == pytest.approx(h["methods"]["lbfgs"]["action_after"])


def test_polishing_a_non_best_candidate_keeps_best_potential(tmp_path, capsys):
    from potsearch.cli.app import main
    from potsearch.store import RunStore

    run = make_run(tmp_path / "run")
    st = RunStore.open(run)
    best_train = st.candidates.get(2).train_action
    st.close()
    assert main(["polish", "--run", str(run), "--candidate", "1", "--iterations", "1"]) == 0
    out = capsys.readouterr().out
    s = json.loads((run / "polish" / "summary.json").read_text())
    assert s["candidate"] == 1 and s["improved"] and s["action_after"]["train"] > best_train
    assert not s["best_potential_rewritten"] and "does not beat the run's best (candidate 2" in out
    assert not (run / "best_potential.py").exists()
    st = RunStore.open(run)
    assert st.get_meta("best_candidate") is None
    assert st.candidates.rows(valid_only=False)[-1].parents == [1]
    st.close()
