"""States that are not words: `potsearch import --features`, automatic features, and the law found.

Three families of states whose moves are drawn here by a Metropolis proposal under a hidden potential:
a 6x6 board (``r{i}c{j}``, V = 0.8 row - 0.5 col), JSON points (``{"x": .., "y": ..}``, V = x^2/10 - y)
and numbered items (``item-17``, V = 0.15 n). Each is imported as a CSV of transitions, fitted and
evolved (seeded; our own GP and term operators, no model): the law evolve selects must be the hidden one.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

GP_ONLY = """seed: 0
rounds: {rounds}
islands: 2
loop: lockstep
terms_mix: 0.1
checkpoint_every: 1000
sandbox: {{workers: 1}}
"""


def metropolis(states, neighbours, V, per_state, seed=0):
    """(source, target) rows: from each state, ``per_state`` proposals of one of its ``neighbours``
    (a list of the same length for every state: None = off the state space, always rejected), accepted
    with probability min(1, exp(V(f) - V(g))); a rejection is a self-loop. Detailed balance holds."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in states:
        nb = neighbours(s)
        for k in rng.integers(len(nb), size=per_state):
            g = nb[k]
            ok = g is not None and rng.random() < min(1.0, np.exp(V(s) - V(g)))
            rows.append((s, g if ok else s))
    return rows


def board():
    states = [(r, c) for r in range(6) for c in range(6)]
    step = lambda s: [(s[0] + dr, s[1] + dc) if 0 <= s[0] + dr < 6 and 0 <= s[1] + dc < 6 else None  # noqa: E731
                      for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    return states, step, lambda s: 0.8 * s[0] - 0.5 * s[1], lambda s: f"r{s[0]}c{s[1]}"


def points():
    states = [(x, y) for x in range(-6, 7) for y in range(4)]
    step = lambda s: [(s[0] + dx, s[1] + dy) if -6 <= s[0] + dx <= 6 and 0 <= s[1] + dy < 4 else None  # noqa: E731
                      for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))]
    return states, step, lambda s: s[0] ** 2 / 10 - s[1], lambda s: json.dumps({"x": s[0], "y": s[1]})


def items():
    states = list(range(30))
    step = lambda n: [n + 1 if n < 29 else None, n - 1 if n > 0 else None]  # noqa: E731
    return states, step, lambda n: 0.15 * n, lambda n: f"item-{n}"


def write_family(tmp_path, family, per_state=1500) -> tuple[Path, dict]:
    """The family's transitions as a CSV; returns it and {state text: hidden V}."""
    states, step, V, text = family()
    rows = metropolis(states, step, V, per_state)
    path = tmp_path / f"{family.__name__}.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["source", "target"])
        w.writerows((text(a), text(b)) for a, b in rows)
    return path, {text(s): V(s) for s in states}


def gp_config(tmp_path, rounds=200) -> Path:
    p = tmp_path / "gp.yaml"
    p.write_text(GP_ONLY.format(rounds=rounds))
    return p


def evolve_run(cli, tmp_path, transitions, run, *import_args, rounds=200):
    assert cli("import", transitions, "--run", run, *import_args)[0] == 0
    assert cli("fit", run)[0] == 0
    code, out, err = cli("evolve", "--run", run, "--config", gp_config(tmp_path, rounds), "--quiet")
    assert code == 0, err
    return json.loads((run / "evolve" / "summary.json").read_text()), out


def law_values(run, states) -> np.ndarray:
    """The selected law's values on ``states``, from the run's best_potential.py."""
    spec = importlib.util.spec_from_file_location(f"bp_{run.name}", run / "best_potential.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.potentials(states)


def test_board_with_a_features_table_recovers_the_law(cli, tmp_path):
    transitions, hidden = write_family(tmp_path, board)
    table = tmp_path / "board_features.csv"
    partial = tmp_path / "partial.csv"   # a table without r5c5's row: refused in one line, nothing created
    partial.write_text("state,row,col\n" + "".join(f"r{r}c{c},{r},{c}\n" for r in range(6) for c in range(6)
                                                   if (r, c) != (5, 5)))
    code, _, err = cli("import", transitions, "--run", tmp_path / "runs" / "p", "--features", partial)
    assert code == 2 and "have no row in the features table: 'r5c5'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs" / "p").exists()
    table.write_text("state,row,col\n" + "".join(f"r{r}c{c},{r},{c}\n" for r in range(6) for c in range(6)))
    (tmp_path / "board_features.yaml").write_text("row: the square's row (0 = top)\ncol: the square's column\n")
    run = tmp_path / "runs" / "b"
    summary, out = evolve_run(cli, tmp_path, transitions, run, "--features", table)
    rec = summary["config"]["features"]
    assert rec["library"] == "table" and rec["features"] == ["row", "col"] and rec["source"] == table.name
    assert rec["descriptions"]["row"] == "the square's row (0 = top)"
    assert summary["problem"]["states"] == 36
    law = sp.sympify(summary["selection"]["selected"]["text"])
    row, col = sp.Symbol("row"), sp.Symbol("col")
    assert law.free_symbols <= {row, col}
    poly = sp.Poly(law, row, col)
    assert poly.total_degree() == 1
    a, b = float(poly.coeff_monomial(row)), float(poly.coeff_monomial(col))
    assert abs(a - 0.8) <= 0.08 and abs(b + 0.5) <= 0.05, (a, b)
    code, shown, _ = cli("show", run)
    assert code == 0 and "features: the run's features table board_features.csv: row, col" in shown
    # best_potential.py: the law on the table's states; a state without a row is refused in one line
    states = ["r0c0", "r3c1", "r2c4"]
    v = law_values(run, states)
    expect = np.array([hidden[s] for s in states])
    assert np.allclose(v - v[0], expect - expect[0], atol=0.1 * 4)
    text = (run / "best_potential.py").read_text()
    assert "FEATURES_TABLE = json.loads(" in text and "exec(" not in text.split("FEATURES_TABLE", 1)[1][:200]
    bad = subprocess.run([sys.executable, str(run / "best_potential.py"), "r9c9"], capture_output=True, text=True)
    assert bad.returncode == 2 and "no row in the run's features table" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    # polish and attribute rebuild the same features
    assert cli("polish", "--run", run)[0] == 0
    assert cli("attribute", "--run", run)[0] == 0


@pytest.mark.parametrize("family, names", [(board, ["r", "c"]), (points, ["x", "y"]), (items, ["item"])])
def test_automatic_features_find_the_hidden_law(cli, tmp_path, family, names):
    transitions, hidden = write_family(tmp_path, family)
    run = tmp_path / "runs" / family.__name__
    summary, _ = evolve_run(cli, tmp_path, transitions, run, rounds=300)
    rec = summary["config"]["features"]
    assert rec["library"] == "automatic" and set(names) <= set(rec["features"])
    with open(run / "fit" / "potentials.csv", newline="") as fh:
        states = [r["state"] for r in csv.DictReader(fh)]
    assert set(states) <= set(hidden) and len(states) == len(hidden)
    v = law_values(run, states)
    r = np.corrcoef(v, [hidden[s] for s in states])[0, 1]
    assert r >= 0.999, (summary["selection"]["selected"].get("text"), r)
    code, shown, _ = cli("show", run)
    assert code == 0 and "features: automatic features of the state text: " in shown


@pytest.mark.parametrize("content, says", [
    ("state,row,col\nr0c0,0,zero\n", "column 'col', row 2 (state 'r0c0'): 'zero' is not a finite number"),
    ("state,row\nr0c0,0\nr0c0,1\n", "state 'r0c0' appears twice (rows 2 and 3)"),
    ("state,row\n,0\n", "row 2: empty state"),
    ("square,row\nr0c0,0\n", "no 'state' column"),
    ("state,row\nr0c0,nan\n", "'nan' is not a finite number"),
    ("state,my row\nr0c0,1\n", "column 'my row': a feature name must be an identifier"),
])
def test_bad_features_table_exit_2_one_line_nothing_created(cli, tmp_path, content, says):
    transitions, _ = write_family(tmp_path, items, per_state=2)
    table = tmp_path / "f.csv"
    table.write_text(content)
    run = tmp_path / "runs" / "x"
    code, out, err = cli("import", transitions, "--run", run, "--features", table)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1 and str(table) in err
    assert not run.exists()


def test_evolve_features_bad_table_leaves_the_run_unchanged(cli, tmp_path):
    from potsearch.store import RunStore
    from potsearch.store.features import load

    transitions, _ = write_family(tmp_path, items, per_state=20)
    good = tmp_path / "good.csv"
    good.write_text("state,n\n" + "".join(f"item-{i},{i}\n" for i in range(30)))
    run = tmp_path / "runs" / "i"
    assert cli("import", transitions, "--run", run, "--features", good)[0] == 0
    assert cli("fit", run)[0] == 0
    before = (run / "store.sqlite").read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("state,n\nitem-0,1\nitem-0,2\n")
    code, _, err = cli("evolve", "--run", run, "--features", bad)
    assert code == 2 and "appears twice" in err and len(err.strip().splitlines()) == 1
    assert (run / "store.sqlite").read_bytes() == before and not (run / "evolve").exists()
    with RunStore.open(run, readonly=True) as st:
        assert load(st).names == ["n"]
    # a description of a column the table does not have is refused too
    (tmp_path / "good.yaml").write_text("m: not a column\n")
    code, _, err = cli("evolve", "--run", run, "--features", good)
    assert code == 2 and "'m', which is not a column of good.csv" in err


def test_ten_to_the_five_states_in_seconds():
    import time

    from potsearch.law import autofeatures as af

    texts = [f"r{i % 300}c{i // 300}" for i in range(100_000)]
    t0 = time.perf_counter()
    schema = af.auto_schema(texts)
    x = af.auto_features(texts, schema)
    assert time.perf_counter() - t0 < 10 and x["c"][-1] == 333.0
