"""Import/export formats: round trips keep every count; bad input is one clear line."""
import json

import numpy as np
import pytest

from potsearch.core.errors import InputError
from potsearch.collector.io import export_counts, read_counts


def _table(c):
    out = {}
    for s, d, n in zip(c.src, c.dst, c.count):
        out[(c.states[s], None if d < 0 else c.states[d])] = out.get((c.states[s], None if d < 0 else c.states[d]), 0) + int(n)
    return out


@pytest.mark.parametrize("ext", ["csv", "tsv", "jsonl", "json"])
def test_round_trip(table2, tmp_path, ext):
    c = read_counts(table2)
    p = tmp_path / f"t.{ext}"
    n = export_counts(c, p)
    assert n == c.total == 20_000 + 219   # ATT 4000, TUR 4122, PER 4000, PRO 4000, BUZ 4097
    c2 = read_counts(p)
    assert _table(c2) == _table(c)


def test_csv_rules(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("source,target,count\nA,B,2\nA,,3\nA,<escape>,1\nA,A,4\nB,A,\n")
    t = _table(read_counts(p))
    assert t == {("A", "B"): 2, ("A", None): 4, ("A", "A"): 4, ("B", "A"): 1}


def test_paper_json_rule(tmp_path):
    p = tmp_path / "d.json"
    p.write_text(json.dumps([
        {"target_expression": "x+1", "target_score": 0.5,
         "source_expressions": [{"expression": "x", "score": 0.1}, {"expression": "x", "score": 0.1},
                                {"expression": "x+1", "score": 0.5}]},
    ]))
    c = read_counts(p)
    assert _table(c) == {("x", "x+1"): 2, ("x+1", "x+1"): 1}
    assert c.meta["state_meta"]["x+1"]["score"] == 0.5


BAD = [
    ("a.csv", "src,target\nA,B\n", "missing column 'source'", 1),
    ("b.csv", "source,target,count\nA,B,-1\n", "non-negative integer", 2),
    ("c.csv", "source,target,count\nA,B,1.5\n", "non-negative integer", 2),
    ("d.csv", "source,target,count\nA,B,x\n", "non-negative integer", 2),
    ("e.csv", "", "file is empty", None),
    ("f.jsonl", '{"source": "A", "target": "B"}\n{"source": "A", "target": \n', "broken JSON", 2),
    ("g.json", '[{"target_expression": "a", "source_expressions": [}]', "broken JSON", 1),
    ("h.json", '{"a": 1}', "expected a JSON list", 1),
    ("i.txt", "source,target\n", "unknown file type", None),
    ("j.csv", "source,target,count\nA,B,1,9\n", "expected 3 fields", 2),
    ("k.jsonl", '{"source": "A"}\n', "missing field 'target'", 1),
    ("l.csv", "source,target,count\n,B,1\n", "source is empty", 2),
]


@pytest.mark.parametrize("name,text,msg,line", BAD)
def test_bad_input_one_line(tmp_path, name, text, msg, line, cli):
    p = tmp_path / name
    p.write_text(text)
    with pytest.raises(InputError) as ei:
        read_counts(p)
    assert msg in ei.value.message
    assert ei.value.where.endswith(name)
    assert ei.value.line == line
    code, out, err = cli("fit", p, "--out", tmp_path / "o")
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err and name in err


def test_missing_file(cli, tmp_path):
    code, _, err = cli("fit", tmp_path / "nope.csv")
    assert code == 2 and "no such file" in err
