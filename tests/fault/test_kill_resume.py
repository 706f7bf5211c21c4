"""SIGKILL at seeded random moments during collect and evolve, then --resume: nothing lost, nothing
duplicated, the store intact. 20 kills each (the fault-suite requirement)."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

KILLS = 20
PY = sys.executable


def _env(**extra):
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", RAY_DISABLE_USAGE_STATS="1")
    env.update(extra)
    return env


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _db(run):
    from potsearch.store import RunStore

    with RunStore.open(run) as st:
        return (st.integrity_check(), list(st.samples_frame()["uid"]),
                [r.uid for r in st.candidates.rows(valid_only=False)])


@pytest.mark.slow
def test_collect_killed_20_times(tmp_path):
    rng = np.random.default_rng(2026)
    run = tmp_path / "c"
    total = 20_000
    args = [PY, "-m", "potsearch", "collect", "--agent", "word", "--provider", "surrogate", "--run", str(run),
            "--max-samples", str(total), "--samples-per-state", "50", "--workers", "1", "--seed", "3",
            "--no-progress"]
    env = _env(POTSEARCH_TEST_PAUSE_AFTER_WRITE="0.15")
    seen: set[str] = set()
    kills = 0
    for i in range(KILLS):
        cmd = args + (["--resume"] if (run / "store.sqlite").exists() else [])
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        time.sleep(float(rng.uniform(0.5, 5.0)))
        if proc.poll() is None:
            kills += 1
        _kill_group(proc)
        if (run / "store.sqlite").exists():
            ok, uids, _ = _db(run)
            assert ok == "ok"
            assert len(uids) == len(set(uids))
            assert seen <= set(uids), "a stored sample was lost"
            seen = set(uids)
    done = subprocess.run(args + ["--resume"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=600, start_new_session=True)
    assert done.returncode == 0, done.stderr[-2000:]
    ok, uids, _ = _db(run)
    assert ok == "ok" and len(uids) == total == len(set(uids)) and seen <= set(uids)
    assert kills >= KILLS // 2, f"only {kills} kills landed while the collector was running"
    print(f"collect: {KILLS} runs, {kills} killed mid-run, samples {len(uids)}/{total}, lost 0, duplicated 0")


@pytest.mark.slow
def test_evolve_killed_20_times(tmp_path):
    from potsearch.stages.fit import FitOptions, run_fit, write_fit
    from potsearch.store import RunStore

    run = tmp_path / "e"
    r = subprocess.run([PY, "-m", "potsearch", "collect", "--agent", "word", "--provider", "surrogate", "--run",
                        str(run), "--max-samples", "20000", "--samples-per-state", "50", "--workers", "1",
                        "--no-progress"], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    st = RunStore.open(run)
    g, res = run_fit(st.counts(), FitOptions())
    write_fit(run / "fit", g, res)
    st.close()
    rng = np.random.default_rng(7)
    args = [PY, "-m", "potsearch", "evolve", "--run", str(run), "--rounds", "8000", "--islands", "4", "--seed", "5"]
    seen: set[str] = set()
    kills = 0
    for i in range(KILLS):
        cmd = args + (["--resume"] if i else [])
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        time.sleep(float(rng.uniform(0.5, 3.0)))
        if proc.poll() is None:
            kills += 1
        _kill_group(proc)
        ok, _, cands = _db(run)
        assert ok == "ok"
        assert len(cands) == len(set(cands))
        assert seen <= set(cands), "a stored candidate was lost"
        seen = set(cands)
    done = subprocess.run(args + ["--resume"], cwd=tmp_path, env=_env(), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    ok, _, cands = _db(run)
    assert ok == "ok" and len(cands) == len(set(cands)) and seen <= set(cands)
    assert (run / "best_potential.py").exists()
    assert kills >= KILLS // 2, f"only {kills} kills landed while evolve was running"
    print(f"evolve: {KILLS} runs, {kills} killed mid-run, candidates {len(cands)}, lost 0, duplicated 0")
