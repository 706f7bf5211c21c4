"""Automatic features, the features table file and the feature library (pure, fast)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from potsearch.core.errors import InputError
from potsearch.law import autofeatures as af
from potsearch.law.featurelib import automatic, builtin, choose_library, features_line, from_record, of_table
from potsearch.law.features import guess_agent_kind
from potsearch.store import RunStore
from potsearch.store.features import FeatureTable, load, read_features_file, save


def test_numbers_in_the_text_named_by_the_letters_before_them():
    texts = [f"r{i}c{j}" for i in range(6) for j in range(6)]
    schema = af.auto_schema(texts)
    assert schema["order"] == ["r", "c"]          # length, digits ... are constant: dropped
    x = af.auto_features(["r3c1", "r0c5"], schema)
    assert x["r"].tolist() == [3.0, 0.0] and x["c"].tolist() == [1.0, 5.0]
    assert af.auto_docs(schema)["c"].startswith("number 2 embedded in the state text, after 'c'")


def test_signs_separators_and_unnamed_numbers():
    assert af._numbers("item-17") == [("item", 17.0)]      # a dash after a letter separates
    assert af._numbers("x=-3, y=2.5") == [("x", -3.0), ("y", 2.5)]
    assert af._numbers("(-2, 3)") == [("", -2.0), ("", 3.0)]
    schema = af.auto_schema(["a1 b2", "b3 a4", "a5 b6"])   # letters differ across states: num0, num1
    assert schema["numbers"] == ["num0", "num1"]
    assert af.auto_features(["7"], schema)["num1"].tolist() == [0.0]  # a missing number is 0


def test_json_fields_and_character_classes():
    texts = [json.dumps({"x": x, "y": {"z": y}, "ok": x > 0, "name": "p"}) for x in (-1, 0, 2) for y in (1, 2)]
    schema = af.auto_schema(texts)
    assert schema["order"] == ["x", "y_z", "ok"]    # a JSON state's text length says nothing: dropped
    x = af.auto_features(['{"x": 5}', "not json"], schema)
    assert x["x"].tolist() == [5.0, 0.0] and x["ok"].tolist() == [0.0, 0.0]
    words = ["Ab c!", "abc", "A  B"]
    s = af.auto_schema(words)
    c = af.auto_features(words, s)
    assert c["length"].tolist() == [5, 3, 4] and c["n_upper"].tolist() == [1, 0, 2]
    assert c["n_spaces"].tolist() == [1, 0, 2] and c["n_punct"].tolist() == [1, 0, 0]
    assert set(af.auto_docs(s)) == set(s["order"])


def test_embedded_auto_features_equal_the_library_and_use_no_potsearch():
    texts = [f"item-{i}" for i in range(30)] + ['{"q": 1}']
    schema = af.auto_schema(texts)
    src = af.embedded_source(schema)
    assert "potsearch" not in src.split("automatic features (the code of", 1)[1].split("\n", 1)[1]
    ns: dict = {}
    exec(compile(src, "<embedded>", "exec"), ns)  # our own code, as best_potential.py runs it
    mine, theirs = af.auto_features(texts + ["item-99"], schema), ns["feature_table"](texts + ["item-99"])
    assert list(mine) == list(theirs) and all(np.array_equal(mine[k], theirs[k]) for k in mine)


def test_guess_agent_kind_for_states_that_are_not_words():
    assert guess_agent_kind(["ATTITUDE", "BUZZY"]) == "word"
    assert guess_agent_kind(["param1*x + param2", "exp(param1*x)"]) == "fitter"
    assert guess_agent_kind(["r0c0", "r1c0"]) == "automatic"
    assert guess_agent_kind(["item-1", '{"x": 1}']) == "automatic"


def _table(tmp_path, text, yaml=None):
    p = tmp_path / "feats.csv"
    p.write_text(text)
    if yaml is not None:
        (tmp_path / "feats.yaml").write_text(yaml)
    return p


def test_features_file_read_with_descriptions(tmp_path):
    t = read_features_file(_table(tmp_path, "state,row,col\n r0c0 ,0,0\nr1c2,1,2.5\n",
                                  "row: the row\ncol: |\n  the\n  column\n"))
    assert t.states == ["r0c0", "r1c2"] and t.names == ["row", "col"] and t.values.tolist() == [[0, 0], [1, 2.5]]
    assert t.descriptions == {"row": "the row", "col": "the column"}


@pytest.mark.parametrize("text, yaml, says", [
    ("state,a\nx,1\ny,two\n", None, "column 'a', row 3 (state 'y'): 'two' is not a finite number"),
    ("state,a\nx,1\ny,\n", None, "column 'a', row 3 (state 'y'): empty cell"),
    ("state,a\nx,inf\n", None, "'inf' is not a finite number"),
    ("state,a\nx,1\nx,2\n", None, "state 'x' appears twice (rows 2 and 3)"),
    ("state,class\nx,1\n", None, "column 'class': a feature name must be an identifier"),
    ("state,a,a\nx,1,2\n", None, "column 'a.1': a feature name must be an identifier"),
    ("state\nx\n", None, "no feature column besides 'state'"),
    ("state,a\nx,1\n", "b: no such column\n", "a description of 'b', which is not a column of feats.csv"),
    ("state,a\nx,1\n", "- a\n", "feature descriptions must be a mapping"),
])
def test_features_file_refused_in_one_line(tmp_path, text, yaml, says):
    with pytest.raises(InputError) as e:
        read_features_file(_table(tmp_path, text, yaml))
    assert says in str(e.value) and "\n" not in str(e.value)


def test_table_stored_with_the_run_and_the_library_rebuilt(tmp_path):
    table = FeatureTable(["a", "b", "c"], ["u", "v"], np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.5]]),
                         {"u": "the u"}, "f.csv")
    with RunStore.create(tmp_path / "run") as st:
        assert load(st) is None
        assert choose_library(st, "automatic", ["a", "b"]).kind == "automatic"
        save(st, table)
        back = load(st)
        assert back.digest == table.digest and back.descriptions == {"u": "the u"}
        lib = choose_library(st, "automatic", ["a", "d", "b"])
        assert lib.kind == "table" and lib.docs["u"] == "the u" and "v" in lib.docs
        assert choose_library(st, "word", ["a"], agent="word").kind == "word"  # an explicit agent wins
        keep, notes = lib.keep(["a", "c", "b"])
        assert keep.tolist() == [True, True, True] and notes == []
        with pytest.raises(InputError, match="1 of the fit's 3 states have no row in the features table f.csv: 'd'"):
            lib.keep(["a", "d", "b"])
        x = lib.compute(["c", "a"])
        assert x["v"].tolist() == [6.5, 2.0]
        assert from_record(st, lib.record()).table.digest == table.digest
        save(st, FeatureTable(["a"], ["u"], np.array([[0.0]]), {}, "g.csv"))   # replaced: the record no longer holds
        with pytest.raises(InputError, match="not the one evolve searched with"):
            from_record(st, lib.record())
    ns: dict = {}
    exec(compile(lib.embedded_source(), "<table>", "exec"), ns)   # data + our lookup code only
    assert ns["feature_table"](["b"])["u"].tolist() == [3.0]
    with pytest.raises(KeyError, match="no row in the run's features table"):
        ns["feature_table"](["zz"])


def test_records_and_the_show_line():
    auto = automatic(["r0c0", "r1c1", "r2c0"])
    rec = json.loads(json.dumps(auto.record()))
    assert rec["library"] == "automatic" and rec["features"] == ["r", "c"]
    assert from_record(None, rec).schema == auto.schema
    assert features_line(rec) == "features: automatic features of the state text: r, c"
    assert builtin("word").record() == {"library": "word", "features": list(builtin("word").docs)}
    assert features_line(None) == ""
    t = of_table(FeatureTable(["s"], ["row"], np.zeros((1, 1)), {}, "b.csv"))
    assert features_line(t.record()) == "features: the run's features table b.csv: row"
