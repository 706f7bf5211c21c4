"""Run store: idempotent, transactional, versioned; bad stores are refused with one line."""

import re

import pytest

from potsearch.core.errors import InputError
from potsearch.store import RunStore, Sample
from potsearch.store.faults import as_schema_1, corrupt_checkpoint, foreign_sqlite, set_schema_version


def test_samples_idempotent_and_counts(tmp_path):
    st = RunStore.create(tmp_path / "r")
    s = [Sample(uid="a", source="X", target="Y"), Sample(uid="b", source="X", target=None, reason="no word"),
         Sample(uid="c", source="X", target="X"), Sample(uid="a", source="X", target="Y")]
    assert st.add_samples(s) == 3
    assert st.add_samples(s) == 0
    c = st.counts()
    assert c.total == 3
    df = st.samples_frame()
    outcomes = dict(zip(df.uid, df.outcome))
    assert outcomes == {"a": "state", "b": "escape", "c": "self"}
    assert st.journal_mode() == "wal"


def test_failed_write_rolls_back(tmp_path):
    st = RunStore.create(tmp_path / "r")
    st.add_samples([Sample(uid="a", source="X", target="Y")])

    class Boom(Sample):
        @property
        def outcome(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        st.add_samples([Sample(uid="b", source="Z", target="W"), Boom(uid="c", source="X", target="Y")])
    assert st.n_samples() == 1
    assert set(st.state_texts()) == {"X", "Y"}


def test_import_failure_leaves_store_unchanged(tmp_path, table2, cli):
    run = tmp_path / "r"
    assert cli("import", table2, "--run", run)[0] == 0
    before = RunStore.open(run).n_samples()
    bad = tmp_path / "bad.csv"
    bad.write_text("source,target,count\nA,B,1\nA,B,-3\n")
    code, _, err = cli("import", bad, "--run", run)
    assert code == 2 and "bad.csv:3" in err
    assert RunStore.open(run).n_samples() == before == 20219
    # importing the same file again adds nothing
    code, out, _ = cli("import", table2, "--run", run)
    assert code == 0 and "imported 0 samples" in out
    assert RunStore.open(run).n_samples() == before


def test_not_a_store(tmp_path, cli):
    p = tmp_path / "x.sqlite"
    p.write_text("hello, not a database at all")
    with pytest.raises(InputError, match="not a potsearch run store"):
        RunStore.open(p)
    other = tmp_path / "other.sqlite"
    foreign_sqlite(other)
    with pytest.raises(InputError, match="another application"):
        RunStore.open(other)
    code, _, err = cli("fit", other)
    assert code == 2 and "other.sqlite" in err


def test_other_schema_version(tmp_path, cli):
    st = RunStore.create(tmp_path / "r")
    set_schema_version(st, 99)
    st.close()
    with pytest.raises(InputError, match="schema version 99"):
        RunStore.open(tmp_path / "r")
    code, _, err = cli("fit", tmp_path / "r")
    assert code == 2 and "schema version 99" in err


def test_schema_1_store_is_read_as_is_and_migrated_for_writing(tmp_path):
    """A store written before the simplified table (schema 1): read-only it reads as it is (no
    simplified forms), opened for writing it is migrated in place, keeping every candidate."""
    from potsearch.store import SCHEMA_VERSION

    st = RunStore.create(tmp_path / "r")
    st.candidates.add("s:0:0:0", "def potential(x, p):\n    return p[0] * x['a']\n", params=[1.0], train_action=0.5)
    as_schema_1(st)
    st.close()
    ro = RunStore.open(tmp_path / "r", readonly=True)
    assert ro.schema_version == 1 and not ro.has_table("simplified")
    assert ro.candidates.selected_law() is None and ro.candidates.simplified().empty
    assert ro.candidates.count() == 1
    ro.close()
    rw = RunStore.open(tmp_path / "r")
    assert rw.schema_version == SCHEMA_VERSION == 3 and rw.has_table("simplified") and rw.has_table("imports")
    assert rw.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert rw.candidates.count() == 1
    n = rw.candidates.save_simplified("s", [{"uid": "s:0:0:0", "ok": True, "source": "src", "params": [1.5],
                                             "text": "1.5*a", "param_se": [0.1]}], selected_uid="s:0:0:0")
    assert n == 1
    law = rw.candidates.selected_law("s")
    assert law["text"] == "1.5*a" and law["params"] == [1.5] and law["param_se"] == [0.1] and law["selected"]
    # writing again replaces that search's forms (no duplicates), the flag moves
    rw.candidates.save_simplified("s", [{"uid": "s:0:0:0", "source": "src", "text": "a"}], selected_uid=None)
    assert len(rw.candidates.simplified("s")) == 1 and rw.candidates.selected_law("s") is None
    rw.close()
    assert RunStore.open(tmp_path / "r").schema_version == 3  # migrated once


def test_checkpoint_checksum(tmp_path):
    st = RunStore.create(tmp_path / "r")
    st.save_checkpoint("evolve", 1, b"one")
    st.save_checkpoint("evolve", 2, b"two")
    corrupt_checkpoint(st, 2)
    assert st.load_checkpoint("evolve") == (1, b"one")


def test_unknown_option_value(cli, table2):
    code, _, err = cli("fit", table2, "--weight", "sideways")
    assert code == 2 and "invalid choice" in err and "Traceback" not in err
    code, _, err = cli("fit", table2, "--min-visits", "-1")
    assert code == 2 and "min-visits" in err


def test_fit_from_run_and_export(tmp_path, table2, cli):
    run = tmp_path / "r"
    cli("import", table2, "--run", run)
    code, out, err = cli("fit", run)
    assert code == 0, err
    assert (run / "fit" / "potentials.csv").exists()
    code, out, _ = cli("status", run)
    assert "fit" in out and "done" in out
    assert re.search(r"import\s+done .*samples_in_file=20219", out)       # the import stage is recorded
    code, out, _ = cli("export", run, tmp_path / "back.jsonl")
    assert code == 0 and "20219" in out


def test_exclusive_lock_refuses_second_writer(tmp_path):
    import subprocess
    import sys
    import textwrap

    st = RunStore.create(tmp_path / "r")
    code = textwrap.dedent(f"""
        from potsearch.store import RunStore
        from potsearch.core.errors import InputError
        st = RunStore.open({str(tmp_path / 'r')!r})
        try:
            with st.exclusive("evolve"):
                print("got it")
        except InputError as e:
            print(e.format())
    """)
    with st.exclusive("collect"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
        assert "run is busy" in out and "potsearch collect" in out
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "got it" in out


def test_bulk_import_reads_as_sample_rows(tmp_path):
    """An import is stored in bulk, yet every reader sees one sample per counted row, in insertion order."""
    from potsearch.collector.io import file_digest, import_file

    f = tmp_path / "t.csv"
    f.write_text("source,target,count\nA,B,2\nB,<escape>,1\nA,A,1\nC,A,0\nB,A,1\n")
    st = RunStore.create(tmp_path / "r")
    st.add_samples([Sample(uid="first", source="B", target=None, reason="no word")])
    info = import_file(f, st)
    st.add_samples([Sample(uid="last", source="A", target="B")])
    assert info["added"] == 5 and st.n_samples() == 7 and st.usage()[0] == 7
    d = file_digest(f)
    df = st.samples_frame()
    assert list(df.uid) == ["first", f"import:{d}:0:0", f"import:{d}:0:1", f"import:{d}:1:0", f"import:{d}:2:0",
                            f"import:{d}:4:0", "last"]
    assert list(df.outcome) == ["escape", "state", "state", "escape", "self", "state", "state"]
    assert list(df.agent)[1:6] == ["import"] * 5 and df.reason[3] == "imported escape"
    assert [r[0] for r in st.sample_records()] == list(df.uid)
    assert st.escape_reasons(limit=None) == {"no word": 1, "imported escape": 1}
    c = st.counts()
    got = {(c.states[s], None if t < 0 else c.states[t]): int(n) for s, t, n in zip(c.src, c.dst, c.count)}
    assert got == {("A", "B"): 3, ("B", None): 2, ("A", "A"): 1, ("B", "A"): 1}
    assert st.has_uids([f"import:{d}:0:1", f"import:{d}:0:2", f"import:{d}:3:0", "first"]) == {
        f"import:{d}:0:1", "first"}
    assert st.add_samples([Sample(uid=f"import:{d}:4:0", source="B", target="A")]) == 0
    assert import_file(f, st)["added"] == 0 and st.n_samples() == 7
    assert st.stage_results()["import"]["added"] == 0


def test_schema_1_store_with_imported_rows_is_migrated_and_reimport_adds_nothing(tmp_path):
    from potsearch.collector.io import file_digest, import_file

    f = tmp_path / "t.csv"
    f.write_text("source,target,count\nA,B,2\nB,A,1\n")
    d = file_digest(f)
    st = RunStore.create(tmp_path / "r")
    rows = [Sample(uid=f"import:{d}:0:{k}", source="A", target="B", agent="import") for k in range(2)]
    st.add_samples(rows + [Sample(uid=f"import:{d}:1:0", source="B", target="A", agent="import")])
    as_schema_1(st)          # imported samples as one samples row each, no imports table
    st.close()
    ro = RunStore.open(tmp_path / "r", readonly=True)
    assert ro.n_samples() == 3 and ro.get_meta("schema_version") == "1"
    ro.close()
    st = RunStore.open(tmp_path / "r")
    assert st.get_meta("schema_version") == "3"
    assert import_file(f, st)["added"] == 0 and st.n_samples() == 3
    g = tmp_path / "u.csv"
    g.write_text("source,target\nB,C\n")
    assert import_file(g, st)["added"] == 1 and st.n_samples() == 4
