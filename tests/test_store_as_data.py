"""A store or run folder from someone else is data: it cannot run code, its scores are recomputed
before a resumed search builds on them, and the sandbox limits it names are clamped.

Each test reproduces one finding (docs/sandbox.md, "The run folder and the store"):
* a planted pickle checkpoint ran code on ``evolve --resume``: now it is refused, never unpickled;
* a checkpoint is JSON with a schema: wrong types, unknown primitives or features, a source that is
  not its GP tree's ... are refused in one line;
* the score cache was rebuilt from the candidates table: a forged training action was trusted;
* evolve/summary.json set the sandbox limits of polish / attribute / show (1e9 s CPU was accepted).
"""
from __future__ import annotations

import json
import pickle
import sqlite3
import time

import pytest

from evolve_helpers import small_run


def _config(tmp_path, rounds=4, loop="async", name="cfg.yaml"):
    path = tmp_path / name
    path.write_text(f"rounds: {rounds}\nislands: 2\npopulation: 6\noffspring: 4\ncheckpoint_every: 2\n"
                    f"migrate_every: 2\nreset_every: 0\nseed: 1\nloop: {loop}\n")
    return path


def _one_line_refusal(code, err, *needles):
    err = err.strip()
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert err.startswith("error: "), err
    for n in needles:
        assert n in err, err
    return err


def _count(run) -> int:
    con = sqlite3.connect(run / "store.sqlite")
    try:
        return con.execute("SELECT count(*) FROM candidates").fetchone()[0]
    finally:
        con.close()


# ---------------------------------------------------------------------------------------------
# a planted pickle checkpoint
# ---------------------------------------------------------------------------------------------
class _Plant:
    """Unpickling this calls builtins.open(marker, "w"): the file appears if anything unpickles it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        import builtins

        return (builtins.open, (self.marker, "w"))


def test_planted_pickle_checkpoint_never_runs(tmp_path_factory, tmp_path, cli):
    from potsearch.store import RunStore

    run = small_run(tmp_path_factory, "planted")
    # the plant is live: unpickling a blob of it makes its marker
    probe = tmp_path / "probe-marker"
    pickle.loads(pickle.dumps(_Plant(str(probe)), protocol=4))
    assert probe.exists()
    marker = tmp_path / "marker"
    blob = pickle.dumps({"version": 1, "sid": "ev00000000", "random": _Plant(str(marker))}, protocol=4)
    with RunStore.open(run) as st:     # the store's sha256 is a checksum anyone recomputes
        st.save_checkpoint("evolve", 7, blob)
    before = _count(run)
    code, out, err = cli("evolve", "--run", run, "--config", _config(tmp_path), "--resume")
    assert not marker.exists(), "the planted checkpoint was unpickled"
    _one_line_refusal(code, err, "pickle", "refused", "never loaded", "without --resume")
    assert _count(run) == before       # the refusal changed nothing


def test_non_json_checkpoint_is_refused(tmp_path_factory, tmp_path, cli):
    from potsearch.store import RunStore

    run = small_run(tmp_path_factory, "garbage")
    with RunStore.open(run) as st:
        st.save_checkpoint("evolve", 3, b"cos\nsystem\n(S'id'\ntR.")     # protocol-0 pickle: no \x80 header
    code, out, err = cli("evolve", "--run", run, "--config", _config(tmp_path), "--resume")
    _one_line_refusal(code, err, "not a JSON document", "refused")


# ---------------------------------------------------------------------------------------------
# the JSON checkpoint: a declared document, checked key by key
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def evolved(tmp_path_factory):
    """A small GP + term-operator search (4 rounds, checkpoints at rounds 2 and 4), copied per test."""
    from potsearch.cli.app import main

    run = small_run(tmp_path_factory, "evolved")
    cfg = _config(run.parent, rounds=4)
    assert main(["evolve", "--run", str(run), "--config", str(cfg), "--quiet"]) == 0
    return run, cfg


def _copy(evolved, tmp_path):
    import shutil

    run, cfg = evolved
    dst = tmp_path / "run"
    shutil.copytree(run, dst)
    return dst, cfg


def _doc(run) -> tuple[int, dict]:
    from potsearch.store import RunStore

    with RunStore.open(run, readonly=True) as st:
        step, blob = st.load_checkpoint("evolve")
    assert blob[:1] == b"{"
    return step, json.loads(blob)


def _save(run, step, data: bytes) -> None:
    from potsearch.store import RunStore

    with RunStore.open(run) as st:
        st.save_checkpoint("evolve", step + 1, data)


def _first(doc, key):
    return next(p for pop in doc["pops"] for p in pop if p[key] is not None)


def _set_train_string(doc):
    doc["pops"][0][0]["train_action"] = "0.1"


def _unknown_primitive(doc):
    _first(doc, "tree")["tree"][0] = ["f", "__import__"]


def _injected_feature(doc):
    p = _first(doc, "tree")
    i = next(k for k, (kind, _) in enumerate(p["tree"]) if kind == "x")
    p["tree"][i] = ["x", 'vowels"] + __import__("os").system("id") + x["zipf']


def _injected_law(doc):
    bad = 'vowels"] + __import__("os").system("id") + x["zipf'
    laws = [p["law"] for pop in doc["pops"] for p in pop if p["law"] is not None]
    laws += [e["terms"] for k, v in (doc["terms"] or {}).items() if k != "_seeds" for e in v]
    laws[0][0][1] = bad      # a term-structured program, else the term operator's archive


def _source_not_its_tree(doc):
    p = _first(doc, "tree")
    p["source"] = p["canonical"] = p["source"].replace("return ", "return __import__('os').system('id') or ")


def _model_program_in_gp_search(doc):
    p = _first(doc, "tree")
    p["tree"], p["operator"] = None, "llm"


def _short_random_state(doc):
    doc["random"]["internal"] = doc["random"]["internal"][:10]


def _missing_counters(doc):
    del doc["counters"]


def _newer_version(doc):
    doc["version"] = 99


def _extra_key(doc):
    doc["pops"][1][0]["fitness"] = [0.1]


BAD = {
    "train_action_string": (_set_train_string, "pops[0][0].train_action (expected a number, got a string)"),
    "unknown_primitive": (_unknown_primitive, "unknown primitive '__import__'"),
    "code_as_feature_name": (_injected_feature, "unknown feature"),
    "code_in_a_term_law": (_injected_law, "a term of features this search does not have"),
    "source_not_its_tree": (_source_not_its_tree, "not the source its GP tree or term law gives"),
    "model_program_in_gp_search": (_model_program_in_gp_search, "model-written program in a search without a model"),
    "short_random_state": (_short_random_state, "random.internal (625 integers expected"),
    "missing_counters": (_missing_counters, "missing key 'counters'"),
    "newer_version": (_newer_version, "written by a newer potsearch"),
    "unknown_key": (_extra_key, "unknown key 'fitness'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_json_checkpoint_with_wrong_types_or_names_is_refused(evolved, tmp_path, cli, case):
    run, cfg = _copy(evolved, tmp_path)
    step, doc = _doc(run)
    change, needle = BAD[case]
    change(doc)
    _save(run, step, json.dumps(doc).encode())
    before = _count(run)
    code, out, err = cli("evolve", "--run", run, "--config", cfg, "--rounds", "6", "--resume")
    _one_line_refusal(code, err, needle, "refused")
    assert _count(run) == before


def test_non_finite_number_in_a_checkpoint_is_refused(evolved, tmp_path, cli):
    run, cfg = _copy(evolved, tmp_path)
    step, doc = _doc(run)
    text = json.dumps(doc).replace('"cost":0.0', '"cost":Infinity', 1).replace('"cost": 0.0', '"cost": Infinity', 1)
    assert "Infinity" in text
    _save(run, step, text.encode())
    code, out, err = cli("evolve", "--run", run, "--config", cfg, "--rounds", "6", "--resume")
    _one_line_refusal(code, err, "not valid JSON", "Infinity")


def test_intact_json_checkpoint_resumes(evolved, tmp_path, cli):
    """The checks refuse nothing potsearch wrote itself: the same checkpoint resumes (and re-scores its
    programs, recorded as an event)."""
    from evolve_helpers import run_events

    run, cfg = _copy(evolved, tmp_path)
    code, out, err = cli("evolve", "--run", run, "--config", cfg, "--rounds", "6", "--resume", "--quiet")
    assert code == 0, err
    ev = [e["payload"] for e in run_events(run, kind="resume-revalidated")]
    assert ev and ev[0]["programs"] >= 12 and 0 < ev[0]["scored"] <= ev[0]["programs"]


# ---------------------------------------------------------------------------------------------
# forged numbers: the checkpoint's and the candidates table's
# ---------------------------------------------------------------------------------------------
def test_forged_score_in_the_checkpoint_does_not_reproduce(evolved, tmp_path, cli):
    run, cfg = _copy(evolved, tmp_path)
    step, doc = _doc(run)
    p = next(p for pop in doc["pops"] for p in pop if p["error"] is None)
    p["train_action"] *= 0.5
    _save(run, step, json.dumps(doc).encode())
    code, out, err = cli("evolve", "--run", run, "--config", cfg, "--rounds", "6", "--resume")
    _one_line_refusal(code, err, f"the store's score of candidate {p['uid']} does not reproduce",
                      "train action: stored", "changed outside potsearch")


@pytest.mark.parametrize("loop", ["async", "lockstep"])
def test_forged_training_action_in_the_store_is_detected_on_resume(tmp_path_factory, tmp_path, cli, loop):
    run = small_run(tmp_path_factory, f"forged_{loop}")
    cfg = _config(tmp_path, rounds=4, loop=loop)
    assert cli("evolve", "--run", run, "--config", cfg, "--quiet")[0] == 0
    con = sqlite3.connect(run / "store.sqlite")
    with con:
        # as if killed after storing rounds 3 and 4: the last checkpoint is round 2's
        con.execute("DELETE FROM checkpoints WHERE step > 2")
        rows = con.execute("SELECT uid, coalesce(canonical, source), train_action, round, meta FROM candidates "
                           "ORDER BY id").fetchall()
        early = {c for _, c, _, r, _ in rows if r <= 2}
        # a score first computed after the checkpoint: the resumed search meets its program again
        victim = next((uid for uid, c, t, r, m in rows
                       if r == 3 and t is not None and c not in early and not json.loads(m).get("cached")), None)
        assert victim is not None, "no new program in round 3 to forge"
        con.execute("UPDATE candidates SET train_action = train_action - 0.25 WHERE uid = ?", (victim,))
    con.close()
    code, out, err = cli("evolve", "--run", run, "--config", cfg, "--resume", "--quiet")
    _one_line_refusal(code, err, f"the store's score of candidate {victim} does not reproduce",
                      "train action: stored", "changed outside potsearch")


# ---------------------------------------------------------------------------------------------
# sandbox limits read from evolve/summary.json
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tampered(tmp_path_factory):
    """A small run with two stored candidates whose evolve/summary.json asks for 1e9 s CPU and 10^9 MB."""
    from polish_helpers import make_run

    run = make_run(tmp_path_factory.mktemp("tampered") / "run", n_words=60, n_samples=1500)
    (run / "evolve").mkdir(exist_ok=True)
    (run / "evolve" / "summary.json").write_text(json.dumps(
        {"config": {"sandbox": {"workers": 10**9, "cpu_seconds": 1e9, "memory_mb": 10**9, "wall_timeout": 1e9}}}))
    return run


def test_read_sandbox_limits_clamps_and_says_so(tmp_path):
    from potsearch.search.config import SANDBOX_MAX, SandboxConfig
    from potsearch.search.polish import read_sandbox_limits

    d = SandboxConfig()
    run = tmp_path / "run"
    (run / "evolve").mkdir(parents=True)
    summary = run / "evolve" / "summary.json"
    summary.write_text('{"config": {"sandbox": {"cpu_seconds": 1e9, "memory_mb": 1000000000, "wall_timeout": 5}}}')
    lim, notes = read_sandbox_limits(run)
    assert lim == {"cpu_seconds": SANDBOX_MAX["cpu_seconds"], "memory_mb": SANDBOX_MAX["memory_mb"],
                   "wall_timeout": 5.0}
    assert len(notes) == 1 and "clamped: cpu_seconds 1e+09 -> 600, memory_mb 1000000000 -> 32768" in notes[0]
    # not numbers, missing, NaN, infinity: defaults (said once), infinity clamped
    summary.write_text('{"config": {"sandbox": {"cpu_seconds": "lots", "memory_mb": NaN, "wall_timeout": Infinity}}}')
    lim, notes = read_sandbox_limits(run)
    assert lim == {"cpu_seconds": d.cpu_seconds, "memory_mb": d.memory_mb, "wall_timeout": SANDBOX_MAX["wall_timeout"]}
    assert len(notes) == 2 and "wall_timeout inf -> 1200" in notes[0]
    assert "no usable sandbox limit for cpu_seconds 'lots', memory_mb nan; evolve's defaults" in notes[1]
    summary.write_text('{"config": {"sandbox": {"wall_timeout": 10}}}')
    lim, notes = read_sandbox_limits(run)
    assert lim["wall_timeout"] == 10.0 and len(notes) == 1 and "cpu_seconds (missing), memory_mb (missing)" in notes[0]
    summary.write_text('{"config": {"sandbox": [1, 2]}}')
    assert read_sandbox_limits(run)[0] == read_sandbox_limits(None)[0]
    summary.write_text("[" * 100_000 + "]" * 100_000)        # nested too deep for json: no summary
    assert read_sandbox_limits(run) == (read_sandbox_limits(None)[0], [])
    summary.unlink()                                            # no summary: the defaults, nothing to say
    assert read_sandbox_limits(run) == (read_sandbox_limits(None)[0], [])


def test_split_values_from_a_run_folder_are_checked(tmp_path):
    """A seed or held-out fraction in evolve/summary.json that load_problem cannot take is ignored (the
    defaults), never a traceback in polish / attribute / show."""
    from types import SimpleNamespace

    from potsearch.store.rundir import evolve_settings

    run = tmp_path / "run"
    (run / "evolve").mkdir(parents=True)
    store = SimpleNamespace(stage_results=lambda: {"evolve": {"seed": 4}})
    (run / "evolve" / "summary.json").write_text(
        '{"config": {"seed": -1, "heldout_fraction": NaN}, "problem": [1], "split": {"heldout_fraction": 7}}')
    assert evolve_settings(run, store) == {"seed": 4}
    (run / "evolve" / "summary.json").write_text('{"config": {"seed": 3, "heldout_fraction": 0.25}}')
    assert evolve_settings(run, store) == {"seed": 3, "heldout_fraction": 0.25}


def test_config_loader_refuses_limits_above_the_maximums():
    from potsearch.core.errors import InputError
    from potsearch.search.config import parse_config

    with pytest.raises(InputError, match="sandbox.cpu_seconds"):
        parse_config("sandbox:\n  cpu_seconds: 1000000000\n")
    with pytest.raises(InputError, match="sandbox.wall_timeout"):
        parse_config("sandbox:\n  wall_timeout: 0\n")
    assert parse_config("sandbox:\n  cpu_seconds: 600\n  memory_mb: 32768\n").sandbox.cpu_seconds == 600


def _pool_limits():
    from potsearch.search import polish

    return [dict(k) for k in polish._POOLS]


CLAMPED = {"cpu_seconds": 600, "memory_mb": 32768, "wall_timeout": 1200.0}


@pytest.mark.parametrize("command", ["polish", "attribute", "show"])
def test_tampered_summary_limits_are_clamped(tampered, cli, command):
    from potsearch.search import polish

    polish._DEFAULT_LIMITS.clear()
    try:
        _clamped_run(tampered, cli, command)
    finally:
        polish._DEFAULT_LIMITS.clear()    # load_context set the run's limits for this process


def _clamped_run(tampered, cli, command):
    args = {"polish": ["polish", "--run", tampered, "--candidate", "2", "--iterations", "1", "--samples", "2",
                       "--keep", "1", "--quiet"],
            "attribute": ["attribute", "--run", tampered, "--candidate", "2", "--repeats", "1", "--refit-evals", "5"],
            "show": ["show", tampered, "--candidate", "2", "--no-simplify"]}[command]
    t0 = time.perf_counter()
    code, out, err = cli(*args)
    assert code == 0, err
    warnings = [ln for ln in err.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1, err
    assert ("clamped: cpu_seconds 1e+09 -> 600, memory_mb 1000000000 -> 32768, wall_timeout 1e+09 -> 1200"
            in warnings[0]), err
    assert CLAMPED in _pool_limits()
    assert not [lim for lim in _pool_limits() if lim["cpu_seconds"] > 600 or lim["memory_mb"] > 32768]
    assert time.perf_counter() - t0 < 120


@pytest.mark.parametrize("bad", [
    {"selection": [], "config": "x"},
    {"selection": {"selected": [1, 2], "lowest": "no"}, "config": {"sandbox": []}},
    {"selection": {"selected": {"source": 5, "params": "x"}}, "best": 3},
])
def test_malformed_summary_blocks_never_give_a_traceback(tmp_path, bad, capsys):
    """A summary.json whose blocks are not what potsearch writes (a file from someone else) is read as
    missing those blocks: show, polish and attribute answer with their result or one line, never a
    traceback."""
    import json as _json

    from polish_helpers import make_run
    from potsearch.cli.app import main
    from potsearch.store.rundir import evolve_summary

    run = make_run(tmp_path / "run", n_words=30, n_samples=600)
    (run / "evolve").mkdir(exist_ok=True)
    (run / "evolve" / "summary.json").write_text(_json.dumps(bad))
    got = evolve_summary(run)
    assert all(isinstance(got.get(k, {}), dict) for k in ("selection", "config", "best"))
    for argv in (["show", str(run)], ["polish", "--run", str(run), "--quiet"], ["attribute", "--run", str(run)],
                 ["report", str(run)]):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse
            rc = e.code
        err = capsys.readouterr().err
        assert "Traceback" not in err, (argv, err[-2000:])
        assert rc in (0, 2), (argv, rc, err[-2000:])
        if rc == 2:
            assert err.strip().count("\n") <= 1, (argv, err)
