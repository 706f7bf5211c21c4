"""Imports never guess (unknown columns, --count-column, agent validation) and the fast CSV reader."""
from __future__ import annotations

import pytest

from potsearch.collector import io
from potsearch.core.errors import InputError
from potsearch.collector.io import export_counts, read_counts, read_rows, rows_to_counts


def test_misspelt_count_column_is_an_error(tmp_path, cli):
    f = tmp_path / "t.csv"
    f.write_text("source,target,cnt\na,b,2\nb,a,2\n")
    code, out, err = cli("import", f, "--run", tmp_path / "r")
    assert code == 2
    assert "unknown column 'cnt'" in err and "--count-column cnt" in err and ":1:" in err
    assert not (tmp_path / "r").exists()                                 # nothing created
    code, out, err = cli("import", f, "--run", tmp_path / "r", "--count-column", "cnt")
    assert code == 0, err
    assert "imported 4 samples" in out
    with pytest.raises(InputError, match="no column 'n'"):
        read_counts(f, count_column="n")
    assert read_counts(f, count_column="CNT").total == 4


@pytest.mark.parametrize("fast", [True, False])
def test_fast_reader_equals_careful_reader(tmp_path, monkeypatch, fast):
    from potsearch.science.synthetic import family_counts

    monkeypatch.setattr(io, "FAST_MIN_BYTES", 0 if fast else 10 ** 12)
    counts, _ = family_counts("geometric", n_states=3000, n_samples=30_000, seed=3)
    f = tmp_path / "big.csv"
    export_counts(counts, f)
    text = f.read_text().splitlines()
    text.insert(0, "# provenance line")
    text.append("S1,<escape>,3")
    text.append("S2,,0")
    text.append("S2,S1,4")
    f.write_text("\n".join(text) + "\n")
    a = read_counts(f)
    assert (io._fast_csv(f, "csv", None) is not None) == fast or not fast      # the fast path really ran
    rows, meta = read_rows(f)
    b = rows_to_counts(rows, meta)
    assert a.states == b.states
    assert sorted(zip(a.src.tolist(), a.dst.tolist(), a.count.tolist())) == \
        sorted(zip(b.src.tolist(), b.dst.tolist(), b.count.tolist()))
    assert a.total == b.total == counts.total + 7


@pytest.mark.parametrize("bad, msg", [("x,y,-3", "non-negative integer"), ("x,y,2.5", "non-negative integer"),
                                      (",y,1", "source is empty"), ("x,y,1,4", "expected 3 fields")])
def test_fast_reader_names_the_line(tmp_path, monkeypatch, bad, msg):
    monkeypatch.setattr(io, "FAST_MIN_BYTES", 0)
    lines = ["source,target,count"] + [f"s{i},s{i + 1},1" for i in range(500)]
    lines[321] = bad
    f = tmp_path / "bad.csv"
    f.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=msg) as exc:
        read_counts(f)
    assert ":322:" in str(exc.value) or exc.value.line == 322


def test_fitter_states_are_validated(tmp_path, cli):
    f = tmp_path / "fit.csv"
    f.write_text("source,target,count\nparam1*x,x+param1,3\nx+param1,x+++,2\nx+param1,param1*x,1\n")
    code, out, err = cli("import", f, "--run", tmp_path / "r", "--agent", "fitter")
    assert code == 2 and "1 of 3 states" in err and "'x+++'" in err and "--skip-invalid" in err
    assert not (tmp_path / "r").exists()
    code, out, err = cli("import", f, "--run", tmp_path / "r", "--agent", "fitter", "--skip-invalid")
    assert code == 0, err
    assert "imported 4 samples" in out and "skipped 1 row(s) with 1 state(s) invalid" in out
    # the whole file later adds exactly the row left out (row numbers are the file's, not the kept rows')
    code, out, err = cli("import", f, "--run", tmp_path / "r")
    assert code == 0 and "imported 2 samples" in out and "4 already there" in out
    from potsearch.store import RunStore
    c = RunStore.open(tmp_path / "r").counts()
    got = {(c.states[s], c.states[t]): int(n) for s, t, n in zip(c.src, c.dst, c.count)}
    assert got == {("param1*x", "x+param1"): 3, ("x+param1", "x+++"): 2, ("x+param1", "param1*x"): 1}
    code, out, err = cli("import", f, "--run", tmp_path / "w", "--agent", "word")
    assert code == 0 and "imported 6 samples" in out
