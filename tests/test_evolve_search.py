"""The island search end to end on surrogate runs (hidden V = a formula of our features; no LLM)."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from potsearch.core.errors import InputError
from potsearch.search.config import SearchConfig
from potsearch.store import RunStore
from potsearch.search.run import evolve

from evolve_helpers import small_run

ROOT = Path(__file__).resolve().parents[1]

# compare every column that is a function of the search, not of the clock
COLUMNS = ("uid", "canonical", "source", "params", "parents", "operator", "model", "island", "round", "train_action",
           "heldout_action", "gap", "complexity", "n_params", "error", "tokens", "cost", "meta")


def _table(run: Path) -> list[tuple]:
    from potsearch.store import RunStore

    with RunStore.open(run) as st:
        rows = sorted(st.candidates.rows(valid_only=False), key=lambda r: r.uid)
    return [tuple(_hashable(getattr(r, c)) for c in COLUMNS) for r in rows]


def _hashable(v):
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, dict)) else v


def test_recovers_the_hidden_law(tmp_path_factory):
    """Acceptance (small scale): V = 0.8 vowels - 0.6 zipf on 30 words, ~24k samples.
    The best potential's training action is within 1% of S_min (the exact infimum on the training
    graph) and its held-out action is at most that of the per-state least-action fit of the training
    graph (see potsearch.search.problem for the exact definition of that comparison)."""
    run = small_run(tmp_path_factory, "law")
    cfg = SearchConfig(rounds=150, islands=4, population=16, offspring=4, migrate_every=10, reset_every=50,
                       checkpoint_every=50)
    s = evolve(run, cfg)
    b = s["best"]
    assert b["train_action"] <= 1.01 * s["s_min_train"]
    assert b["train_action"] >= s["s_min_train"] - 1e-9          # S_min is a floor
    assert b["heldout_action"] <= s["baseline_heldout"]
    # the outputs
    for f in ("summary.json", "pareto.csv", "pareto.png", "curves.png", "logbook.json"):
        assert (run / "evolve" / f).stat().st_size > 0
    summary = json.loads((run / "evolve" / "summary.json").read_text())
    assert summary["best"]["source"] == b["source"]
    pareto = (run / "evolve" / "pareto.csv").read_text().splitlines()
    assert pareto[0].startswith("complexity,n_params,train_action") and len(pareto) >= 2
    from potsearch.store import RunStore

    st = RunStore.open(run)
    assert st.stage_results()["evolve"]["train_action"] == pytest.approx(b["train_action"])
    n = st.candidates.count()
    resets = 3 * 2 * 15          # rounds 50, 100, 150: 2 weak islands re-seeded with 15 new trees each
    assert n == s["candidates"] == 4 * 16 + 150 * 4 * 4 + resets
    st.close()


def test_best_potential_is_self_contained(tmp_path_factory, tmp_path):
    run = small_run(tmp_path_factory, "bp")
    s = evolve(run, SearchConfig(rounds=8, islands=2, population=8, offspring=2, checkpoint_every=4))
    # copy it alone elsewhere: it must not need potsearch or the run directory
    bp = tmp_path / "best_potential.py"
    bp.write_text((run / "best_potential.py").read_text())
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-I", str(bp), "ATTITUDE", "BUZZY"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert [ln.split("\t")[0] for ln in lines] == ["ATTITUDE", "BUZZY"]
    # same numbers as the candidate applied to potsearch's own feature table
    import importlib.util

    spec = importlib.util.spec_from_file_location("bp_mod", bp)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    from potsearch.law.features import feature_table

    law = s["selection"]["selected"]  # best_potential.py holds the selected law (sympy's code of it)
    ns = {"np": np}
    exec(law["source"], ns)
    ref = np.broadcast_to(ns["potential"](feature_table("word", ["ATTITUDE", "BUZZY"]), np.array(law["params"])),
                          (2,))
    assert mod.potential("ATTITUDE") == pytest.approx(ref[0], rel=1e-12)
    assert float(lines[1].split("\t")[1]) == pytest.approx(ref[1], rel=1e-5)
    assert "import potsearch" not in bp.read_text() and "from potsearch" not in bp.read_text()


def test_gp_search_is_reproducible_bit_for_bit(tmp_path_factory):
    cfg = SearchConfig(rounds=25, islands=3, population=10, offspring=3, migrate_every=5, reset_every=10,
                       checkpoint_every=10, seed=7)
    a, b = small_run(tmp_path_factory, "a"), small_run(tmp_path_factory, "b")
    sa, sb = evolve(a, cfg), evolve(b, cfg)
    assert sa["best"] == sb["best"]
    ta, tb = _table(a), _table(b)
    assert len(ta) > 200 and ta == tb
    strip = lambda t: "\n".join(ln for ln in t.splitlines() if not ln.startswith("Run: "))  # noqa: E731
    assert strip((a / "best_potential.py").read_text()) == strip((b / "best_potential.py").read_text())
    # another seed is another search (and other uids)
    c = small_run(tmp_path_factory, "c")
    import dataclasses

    evolve(c, dataclasses.replace(cfg, seed=8))
    tc = _table(c)
    assert {r[0] for r in tc}.isdisjoint({r[0] for r in ta})


def _surrogate_bigger(tmp_path_factory, name):
    from potsearch.testing.surrogate_run import make_surrogate_run

    d = tmp_path_factory.mktemp("evolve_kill") / name
    make_surrogate_run(d, n_samples=20_000, seed=1)   # 762 words: slower rounds, so a kill lands mid-run
    return d


def test_resume_after_sigkill_loses_nothing(tmp_path_factory):
    cfgfile = tmp_path_factory.mktemp("cfg") / "kill.yaml"
    cfgfile.write_text("rounds: 60\nislands: 2\npopulation: 8\noffspring: 2\ncheckpoint_every: 5\n"
                       "migrate_every: 10\nreset_every: 20\nseed: 3\n")
    victim = _surrogate_bigger(tmp_path_factory, "victim")
    import shutil

    ref = victim.parent / "ref"
    shutil.copytree(victim, ref)
    cmd = [sys.executable, "-m", "potsearch", "evolve", "--run", str(victim), "--config", str(cfgfile), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    killed_at = None
    deadline = time.time() + 300
    try:
        while time.time() < deadline and proc.poll() is None:
            try:
                with RunStore.open(victim, readonly=True) as st:
                    step = max(st.checkpoint_steps("evolve"), default=None)
            except (sqlite3.Error, InputError):
                step = None
            if step is not None and step >= 10:
                proc.send_signal(signal.SIGKILL)
                killed_at = step
                break
            time.sleep(0.01)
    finally:
        if proc.poll() is None and killed_at is None:
            proc.kill()
        proc.wait(timeout=60)
    if killed_at is None:
        pytest.fail(f"the evolve subprocess ended before a checkpoint >= 10 (rc {proc.returncode}): "
                    f"{proc.stderr.read().decode()[-500:]}")
    assert proc.returncode == -signal.SIGKILL
    before = _table(victim)
    assert before and not (victim / "evolve" / "summary.json").exists()
    # resume: continues from the last checkpoint
    from potsearch.cli.app import main

    assert main(["evolve", "--run", str(victim), "--config", str(cfgfile), "--resume", "--quiet"]) == 0
    after = _table(victim)
    assert set(before) <= set(after)                       # no stored candidate lost or changed
    assert len({r[0] for r in after}) == len(after)        # no duplicate
    with RunStore.open(victim) as st:
        ev = [e["payload"] for e in st.events(stage="evolve", kind="resume")]
    assert ev and ev[0]["round"] >= 10
    # and it is the same search as one never interrupted
    assert main(["evolve", "--run", str(ref), "--config", str(cfgfile), "--quiet"]) == 0
    assert after == _table(ref)
    sv = json.loads((victim / "evolve" / "summary.json").read_text())
    sr = json.loads((ref / "evolve" / "summary.json").read_text())
    assert sv["best"] == sr["best"] and sv["rounds"] == 60


def test_resume_refuses_another_config(tmp_path_factory, cli):
    run = small_run(tmp_path_factory, "other")
    evolve(run, SearchConfig(rounds=3, islands=2, population=8, offspring=2, checkpoint_every=1))
    code, out, err = cli("evolve", "--run", run, "--rounds", "5", "--islands", "3", "--resume")
    assert code == 2 and "another configuration" in err


def test_worker_processes_give_the_same_search(tmp_path_factory):
    import dataclasses

    cfg = SearchConfig(rounds=10, islands=2, population=8, offspring=3, checkpoint_every=5, seed=2)
    a, b = small_run(tmp_path_factory, "w1"), small_run(tmp_path_factory, "w2")
    evolve(a, cfg)
    evolve(b, dataclasses.replace(cfg, workers=2))
    assert _table(a) == _table(b)


def test_fitter_agent_run(tmp_path):
    """An expression-agent run: states are formulas, V depends on their parameter count and functions."""
    from potsearch.law.features import feature_table
    from potsearch.stages.fit import FitOptions, Input, record, run_fit, write_fit
    from potsearch.store import ESCAPE, RunStore, Sample
    from potsearch.science.synthetic import metropolis_chain

    bases = ["log_v_k_nu", "exp(-param{k}*log_v_k_nu)", "tanh(param{k}*log_v_k_nu)", "log_v_k_nu**2",
             "log(log_v_k_nu)", "tan(log_v_k_nu)"]
    exprs = []
    for i in range(1, 1 << len(bases)):
        terms = [b.format(k=j + 2) for j, b in enumerate(bases) if i >> j & 1]
        exprs.append("param1 + " + " + ".join(f"param{20 + t}*{b}" for t, b in enumerate(terms)))
    exprs = exprs[:40]
    x = feature_table("fitter", exprs)
    V = 0.5 * x["n_params"] - 1.0 * x["fn_tanh"]
    chain = metropolis_chain(n_states=len(exprs), degree=6, samples_per_state=300, V=V, names=exprs, seed=0)
    c = chain.counts
    store = RunStore.create(tmp_path / "fitter", kind="fitter")
    samples, k = [], 0
    for s, d, n in zip(c.src.tolist(), c.dst.tolist(), c.count.tolist()):
        for _ in range(n):
            samples.append(Sample(uid=f"f{k}", source=c.states[s], target=None if d == ESCAPE else c.states[d]))
            k += 1
    store.add_samples(samples)
    counts = store.counts()
    g, res = run_fit(counts, FitOptions())
    record(Input(counts, tmp_path / "fitter", store), write_fit(tmp_path / "fitter" / "fit", g, res))
    store.close()
    s = evolve(tmp_path / "fitter", SearchConfig(rounds=160, islands=4, population=16, offspring=4, migrate_every=10,
                                                checkpoint_every=40))
    assert s["problem"]["agent"] == "fitter"
    assert "n_params" in s["problem"]["features"] and "fn_tanh" in s["problem"]["features"]
    from potsearch.search.problem import fit_params, load_problem

    prob = load_problem(tmp_path / "fitter", seed=0)
    _, s_true = fit_params(lambda x, p: p[0] * x["n_params"] + p[1] * x["fn_tanh"], prob, p0=[0.1, 0.1])
    assert s["best"]["train_action"] <= 1.001 * s_true   # as good as the hidden law (within 0.1%) on training edges
    out = subprocess.run([sys.executable, str(tmp_path / "fitter" / "best_potential.py"), exprs[0], exprs[5]],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and len(out.stdout.strip().splitlines()) == 2


def test_the_search_id_ignores_how_model_calls_are_paced_and_priced(tmp_path, table2):
    """rpm, tpm, prices and allow_unpriced change no candidate: a search that sets them is the same search
    (same id, so its checkpoints resume), while a setting that changes the search changes the id."""
    import json

    import potsearch as ps

    run = tmp_path / "r"
    ps.import_transitions(table2, run)
    ps.fit(run)
    ids = []
    for extra in ("", "llm:\n  rpm: 30\n  tpm: 5000\n  allow_unpriced: true\n", "population: 12\n"):
        cfg = tmp_path / f"c{len(ids)}.yaml"
        cfg.write_text("seed: 1\n" + extra)
        ps.evolve(run, config=cfg, rounds=1, islands=1, force=True)
        ids.append(json.loads((run / "evolve" / "summary.json").read_text())["search_id"])
    assert ids[0] == ids[1] != ids[2]
