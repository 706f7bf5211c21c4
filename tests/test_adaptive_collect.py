"""`potsearch collect --protocol adaptive` end to end on the surrogate (Ray): the stopping rule and the
summary, two runs with one seed store the same samples, and SIGKILL mid-collection then --resume loses
and duplicates nothing and keeps every round what its allocation planned. Serial (tests/conftest.py
SERIAL_FILES): the kill lands at a moment chosen against the clock, on a slow fake provider
(tests/test_collect_faults.py, loaded in the workers with --setup) so that a write is a few samples."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from collect_run_helpers import run_samples, stored_count

from potsearch.collector import CollectConfig, collect, make_surrogate
from potsearch.collector.adaptive import make_adaptive, parse_uid
from potsearch.core.errors import InputError
from potsearch.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
SETUP = f"{ROOT / 'tests' / 'test_collect_faults.py'}:register_fake"


def _small_word_agent(tmp_path: Path, n_words: int) -> Path:
    """A copy of agents/word.yaml whose surrogate lives on ``n_words`` words (WIZARDS, the start, included)."""
    import re

    lines = (ROOT / "data" / "words_sum100.tsv").read_text().splitlines()
    body = [l for l in lines[2:] if l and not l.startswith("WIZARDS\t")]
    pick = [body[i] for i in sorted(np.random.default_rng(7).choice(len(body), size=n_words - 1, replace=False))]
    wl = tmp_path / "words.tsv"
    wl.write_text("\n".join(lines[:2] + pick + [l for l in lines if l.startswith("WIZARDS\t")]) + "\n")
    y = re.sub(r"word_list: .*", f"word_list: {wl}", (ROOT / "agents" / "word.yaml").read_text())
    out = tmp_path / "word_small.yaml"
    out.write_text(y)
    return out


def _records(run) -> list[tuple]:
    with RunStore.open(run) as s:
        return s.sample_records()


def _plans_hold(run, seed: int, target: float, round_size: int, horizon: int | None, surrogate: bool = True) -> int:
    """Every round's stored positions are the ones its allocation plans from the rounds before it (all of
    them but in the last round, which a budget may cut); returns the number of rounds."""
    from potsearch.agents.registry import load_agent

    recs = _records(run)
    agent = load_agent("word")     # the driver's initial states: the surrogate's own, else the agent's
    initial = (make_surrogate(agent) if surrogate else agent).initial_states(np.random.default_rng(seed))
    p = make_adaptive(seed, target, round_size, horizon)
    p.restore(initial, recs)
    by_round: dict[int, set] = {}
    for r in recs:
        by_round.setdefault(parse_uid(r[0]), set()).add(r[0])
    last = max(by_round)
    assert sorted(by_round) == list(range(last + 1))
    for r, got in by_round.items():
        planned = {u for u, _ in p.positions(r)}
        assert got == planned if r < last else got <= planned, r
    return last + 1


def test_adaptive_surrogate_collect_stops_at_the_target_and_says_what_is_open(tmp_path, ray_session):
    run = tmp_path / "ad"
    res = collect(CollectConfig(agent="word", provider="surrogate", run=str(run), protocol="adaptive",
                                target_se=0.3, round_size=300, max_samples=4000, workers=2, seed=1,
                                progress=False))
    s = res.summary
    a = s["adaptive"]
    assert s["protocol"] == "adaptive" and s["samples"] == 4000 and res.stop_reason.startswith("sample budget")
    assert a["rounds"] >= 10 and a["fitted_states"] > 0 and a["n_open"] > 0 and not a["target_met"]
    assert a["within_target"] + a["n_open"] == a["fitted_states"] and a["max_se"] > 0.3
    assert _plans_hold(run, 1, 0.3, 300, 4000) == a["rounds"]
    with RunStore.open(run) as st:
        assert st.run_info()["config"]["plan"]["target_se"] == 0.3


def test_the_stopping_rule_ends_the_collection_before_the_budget(tmp_path, ray_session):
    """On a 30-word surrogate every state is found and fitted to the target long before 100,000 calls."""
    res = collect(CollectConfig(agent=str(_small_word_agent(tmp_path, 30)), provider="surrogate",
                                run=str(tmp_path / "small"), protocol="adaptive", target_se=0.3, round_size=300,
                                max_samples=100000, workers=2, seed=1, progress=False))
    a = res.summary["adaptive"]
    assert a["target_met"] and a["n_open"] == 0 and a["max_se"] < 0.3 and a["within_target"] == a["fitted_states"] > 0
    assert res.summary["samples"] < 100000 and res.stop_reason == "every fitted state within the target SE"
    with RunStore.open(tmp_path / "small") as st:
        assert res.summary["adaptive"]["rounds"] == 1 + max(int(r[0].split(":")[1]) for r in st.sample_records())
    with pytest.raises(InputError, match="target-se applies to --protocol adaptive"):
        collect(CollectConfig(agent="word", provider="surrogate", run=str(tmp_path / "ps"), protocol="per-state",
                              target_se=0.3, max_samples=10, workers=2, progress=False))


def test_adaptive_same_seed_same_samples(tmp_path, ray_session):
    def samples(name):
        run = tmp_path / name
        collect(CollectConfig(agent="word", provider="surrogate", run=str(run), protocol="adaptive", target_se=0.2,
                              round_size=150, max_samples=1500, workers=2, batch_size=40, seed=5, progress=False))
        return run_samples(run)

    first = samples("a")
    assert len(first) == 1500 and first == samples("b")


def test_sigkill_mid_adaptive_collection_then_resume_loses_and_duplicates_nothing(tmp_path):
    run = tmp_path / "killed"
    total = 80
    args = [sys.executable, "-m", "potsearch", "collect", "--agent", "word", "--provider", "fake/slow0.4", "--mode",
            "free", "--run", str(run), "--protocol", "adaptive", "--target-se", "0.05", "--round-size", "12",
            "--max-samples", str(total), "--workers", "2", "--batch-size", "1", "--inflight", "1", "--seed", "2",
            "--no-progress", "--setup", SETUP]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               LITELLM_LOCAL_MODEL_COST_MAP="True")
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if (run / "store.sqlite").exists() and stored_count(run / "store.sqlite") >= 22:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
    at_kill = len(_records(run))
    assert 22 <= at_kill < total
    done = subprocess.run(args + ["--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                          start_new_session=True)
    assert done.returncode == 0, done.stderr[-2000:]
    uids = [r[0] for r in _records(run)]
    assert len(uids) == len(set(uids)) == total
    assert _plans_hold(run, 2, 0.05, 12, total, surrogate=False) >= 5
    assert "adaptive:" in done.stdout
