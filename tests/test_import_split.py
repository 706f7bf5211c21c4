"""`potsearch import FILE RUN --split-by COLUMN`: one run per value, RUN/<value>, the whole file checked before
anything is created, each run idempotent; folder names by one rule, two values never merged."""
from __future__ import annotations

import json

import pytest

import potsearch as ps
from potsearch.cli.app import main
from potsearch.collector import io
from potsearch.collector.split import folder_name
from potsearch.core.errors import InputError

CSV = """# two models in one file
source,target,count,model
ATTITUDE,PERSONAL,66,claude-4
PERSONAL,ATTITUDE,3879,claude-4
ATTITUDE,<escape>,3914,claude-4
ATTITUDE,PERSONAL,30,openai/gpt-5-nano
PERSONAL,ATTITUDE,100,openai/gpt-5-nano
PERSONAL,PROBLEMS,5,openai/gpt-5-nano
"""


def _edges(run) -> dict:
    c = ps.load(run)
    return {(c.states[s], None if d < 0 else c.states[d]): int(n) for s, d, n in zip(c.src, c.dst, c.count)}


def _one_line_exit2(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    return err


@pytest.mark.parametrize("fast", [False, True])
def test_two_values_give_two_runs_with_their_samples_idempotently(tmp_path, capsys, monkeypatch, fast):
    monkeypatch.setattr(io, "FAST_MIN_BYTES", 0 if fast else 10 ** 12)    # pandas' reader and the careful one
    f = tmp_path / "m.csv"
    f.write_text(CSV)
    assert main(["import", str(f), str(tmp_path / "runs"), "--split-by", "model"]) == 0
    out = capsys.readouterr().out
    assert "model claude-4: imported 7859 samples" in out and "model openai/gpt-5-nano: imported 135 samples" in out
    a, b = tmp_path / "runs" / "claude-4", tmp_path / "runs" / "openai_gpt-5-nano"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["claude-4", "openai_gpt-5-nano"]
    assert _edges(a) == {("ATTITUDE", "PERSONAL"): 66, ("PERSONAL", "ATTITUDE"): 3879, ("ATTITUDE", None): 3914}
    assert _edges(b) == {("ATTITUDE", "PERSONAL"): 30, ("PERSONAL", "ATTITUDE"): 100, ("PERSONAL", "PROBLEMS"): 5}
    assert ps.status(b)["run"]["name"] == "openai/gpt-5-nano"              # the value itself, kept
    res = ps.import_transitions(f, tmp_path / "runs", split_by="model")     # again: nothing new
    assert {v: (r["added"], r["duplicates"], r.total) for v, r in res.runs.items()} == {
        "claude-4": (0, 7859, 7859), "openai/gpt-5-nano": (0, 135, 135)}
    assert res.folders["openai/gpt-5-nano"] == b


def test_jsonl_field_and_numbers_as_values(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in [
        {"source": "A", "target": "B", "count": 2, "temperature": 0.7},
        {"source": "B", "target": None, "count": 1, "temperature": 1},
        {"source": "B", "target": "A", "count": 3, "temperature": 0.7}]))
    res = ps.import_transitions(f, tmp_path / "r", split_by="temperature")
    assert {v: r.total for v, r in res.runs.items()} == {"0.7": 5, "1": 1}
    assert _edges(tmp_path / "r" / "0.7") == {("A", "B"): 2, ("B", "A"): 3}


@pytest.mark.parametrize("rows, msg", [
    ("A,B,1,x\nB,A,2,\n", "m.csv:4: the --split-by column 'model' is empty"),
    ("A,B,1,gpt 5\nB,A,2,gpt/5\n", "values 'gpt 5' and 'gpt/5' of --split-by model would both be written"),
    ("A,B,1,GPT\nB,A,2,gpt\n", "values 'GPT' and 'gpt' of --split-by model would both be written"),
    ("A,B,1,x\nB,A,-2,y\n", "m.csv:4: count must be a non-negative integer"),
    ("A,B,1," + "m" * 101 + "\n", "longer than 100 characters"),
])
def test_a_bad_value_is_refused_before_anything_is_created(tmp_path, capsys, rows, msg):
    f = tmp_path / "m.csv"
    f.write_text("# provenance\nsource,target,count,model\n" + rows)
    assert msg in _one_line_exit2(capsys, ["import", str(f), str(tmp_path / "runs"), "--split-by", "model"])
    assert not (tmp_path / "runs").exists()


def test_an_unknown_column_and_the_refusal_without_split_by(tmp_path, capsys):
    f = tmp_path / "m.csv"
    f.write_text(CSV)
    err = _one_line_exit2(capsys, ["import", str(f), str(tmp_path / "runs"), "--split-by", "agent"])
    assert "no column 'agent' for --split-by (header: source,target,count,model)" in err
    err = _one_line_exit2(capsys, ["import", str(f), str(tmp_path / "runs")])
    assert "unknown column 'model'" in err and "--count-column model" in err and "--split-by model" in err
    assert "names the source column" in _one_line_exit2(capsys, ["import", str(f), str(tmp_path / "r"),
                                                                 "--split-by", "source"])
    g = tmp_path / "t.jsonl"
    g.write_text('{"source": "A", "target": "B", "model": "x"}\n{"source": "B", "target": "A"}\n')
    assert "t.jsonl:2: missing field 'model' for --split-by" in _one_line_exit2(
        capsys, ["import", str(g), str(tmp_path / "runs"), "--split-by", "model"])
    assert not (tmp_path / "runs").exists() and not (tmp_path / "r").exists()


def test_run_is_a_parent_folder_not_a_run(tmp_path):
    f = tmp_path / "m.csv"
    f.write_text(CSV)
    ps.import_transitions(f, tmp_path / "runs", split_by="model")
    with pytest.raises(InputError, match="but it is a run itself"):
        ps.import_transitions(f, tmp_path / "runs" / "claude-4", split_by="model")
    (tmp_path / "busy" / "claude-4").mkdir(parents=True)
    (tmp_path / "busy" / "claude-4" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="in the way"):
        ps.import_transitions(f, tmp_path / "busy", split_by="model")
    assert not (tmp_path / "busy" / "openai_gpt-5-nano").exists()


def test_folder_name_rule():
    assert folder_name("openai/gpt-5-nano") == "openai_gpt-5-nano"
    assert folder_name("..") == "_." and folder_name("-rf") == "_rf" and folder_name(".hidden") == "_hidden"
    assert folder_name("claude 4 (τ=0.7)") == "claude_4_0.7_"
