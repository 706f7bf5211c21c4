"""A features function of the user's own code (agents/featurefunc.py): `--features module:function` on
import and evolve, `features: module:function` in an agent file; its result is stored as the run's table."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest

from potsearch.agents.featurefunc import is_function, read_features
from potsearch.cli import main
from potsearch.core.errors import InputError
from potsearch.store import RunStore
from potsearch.store.features import load

FEATS = '''
def board(states):
    return {"row": [int(s[1]) for s in states], "col": [float(s[3]) for s in states]}

def broken(states):
    raise RuntimeError("no board here")

def short(states):
    return {"row": [1.0]}

def text(states):
    return {"row": ["a"] * len(states)}
'''


@pytest.fixture
def feats(tmp_path, monkeypatch):
    (tmp_path / "myfeats.py").write_text(FEATS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "myfeats"
    import sys

    sys.modules.pop("myfeats", None)


def _board_csv(tmp_path):
    f = tmp_path / "board.csv"
    f.write_text("source,target,count\nr0c0,r0c1,5\nr0c1,r0c0,3\nr0c1,r1c1,2\nr1c1,r0c1,4\n")
    return f


def test_import_stores_what_the_function_computes(tmp_path, feats, capsys):
    run = tmp_path / "r"
    assert main(["import", str(_board_csv(tmp_path)), str(run), "--features", f"{feats}:board"]) == 0
    assert "stored the features table myfeats:board: 3 states x 2 features (row, col)" in capsys.readouterr().out
    with RunStore.open(run, readonly=True) as st:
        t = load(st)
    x, found = t.lookup(["r1c1", "r0c1"])
    assert found.all() and x["row"].tolist() == [1.0, 0.0] and x["col"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("fn, msg", [("broken", "the features function raised RuntimeError: no board here"),
                                     ("short", "returned 1 rows for 3 states"),
                                     ("text", "column 'row', row 2 (state 'r0c0'): 'a' is not a finite number"),
                                     ("nosuch", "cannot load the features function: AttributeError")])
def test_a_bad_function_is_one_line_and_nothing_is_created(tmp_path, feats, capsys, fn, msg):
    run = tmp_path / "r"
    assert main(["import", str(_board_csv(tmp_path)), str(run), "--features", f"{feats}:{fn}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and msg in err[0] and not run.exists()


def test_a_spec_is_a_function_only_when_no_such_file_exists(tmp_path, feats, monkeypatch):
    assert is_function("myfeats:board") and not is_function("table.csv") and not is_function("a/b.csv")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "odd:name").write_text("state,x\na,1\n")
    assert not is_function("odd:name")                   # an existing file wins: read as a table
    t = read_features("myfeats:board", ["r2c3"])
    assert t.names == ["row", "col"] and np.allclose(t.values, [[2.0, 3.0]])


def test_an_agent_file_names_its_features_function(tmp_path):
    from potsearch.agents.registry import load_agent

    base = "name: b\nkind: text\nprompt: 'x {state}'\ninitial: [a]\n"
    (tmp_path / "ok.yaml").write_text(base + "features: myfeats:board\n")
    assert load_agent(str(tmp_path / "ok.yaml")).config.features == "myfeats:board"
    (tmp_path / "bad.yaml").write_text(base + "features: not a function\n")
    with pytest.raises(InputError, match="features: expected module:function"):
        load_agent(str(tmp_path / "bad.yaml"))


def test_collect_stores_the_agent_files_features_table(tmp_path, feats):
    """A board agent with `features: myfeats:board`, collected through its surrogate: the run holds the
    table of every state it reached."""
    from pathlib import Path

    board = Path(__file__).resolve().parents[1] / "examples" / "board" / "agent.yaml"
    agent = tmp_path / "agent.yaml"
    agent.write_text(board.read_text() + f"\nfeatures: {feats}:board\n")
    run = tmp_path / "run"
    assert main(["collect", "--agent", str(agent), "--provider", "surrogate", "--run", str(run),
                 "--max-samples", "300", "--workers", "1", "--no-progress"]) == 0
    with RunStore.open(run, readonly=True) as st:
        t, states = load(st), st.counts().states
    x, found = t.lookup(states)
    assert found.all() and x["row"].tolist() == [float(s[1]) for s in states]
