"""`potsearch collect`: protocols, resume planning, the surrogate -> fit loop, CLI errors, the local model.

Ray tests share one Ray session for the module (starting Ray costs seconds here).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from collect_run_helpers import run_samples

from potsearch.collector import (
    Chain, CollectConfig, PerState, Population, collect, format_summary, norm_protocol, table3
)
from potsearch.core.errors import InputError
from potsearch.store import RunStore, Sample

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- helpers
def small_word_agent(tmp_path: Path, n_words: int = 60, neighbours: int = 10, hidden: str | None = None,
                     drift: float | None = None) -> Path:
    """A copy of agents/word.yaml whose surrogate lives on ``n_words`` words (WIZARDS included)."""
    lines = (ROOT / "data" / "words_sum100.tsv").read_text().splitlines()
    head = [l for l in lines[:2]]
    body = [l for l in lines[2:] if l and not l.startswith("WIZARDS\t")]
    wiz = [l for l in lines if l.startswith("WIZARDS\t")]
    rng = np.random.default_rng(7)
    pick = [body[i] for i in sorted(rng.choice(len(body), size=n_words - 1, replace=False))]
    wl = tmp_path / "words.tsv"
    wl.write_text("\n".join(head + pick + wiz) + "\n")
    y = (ROOT / "agents" / "word.yaml").read_text()
    y = re.sub(r"word_list: .*", f"word_list: {wl}", y)
    y = re.sub(r"neighbours: \d+", f"neighbours: {neighbours}", y)
    if hidden:
        y = re.sub(r'hidden_potential: ".*"', f'hidden_potential: "{hidden}"', y)
    if drift is not None:
        y = re.sub(r"drift: [0-9.]+", f"drift: {drift}", y)
    p = tmp_path / "word_small.yaml"
    p.write_text(y)
    return p


def stored_uids(run: Path) -> list[str]:
    with RunStore.open(run) as s:
        return list(s.samples_frame()["uid"])


# ----------------------------------------------------------------------------- protocols (no Ray)
INIT = [("A", "A", None), ("B", "B", None)]


def test_per_state_plans_k_positions_per_state_and_enqueues_new_states():
    p = PerState(seed=0, k=3)
    p.restore(INIT, [])
    tasks = p.take(100)
    assert [t.uid for t in tasks] == ["s:A:0", "s:A:1", "s:A:2", "s:B:0", "s:B:1", "s:B:2"]
    p.done(tasks[0], "C", "C", None)      # new state -> its K positions join the queue
    p.done(tasks[1], "A", "A", None)      # self-loop: nothing new
    p.done(tasks[2], None, None, None)    # escape: nothing new
    assert [t.uid for t in p.take(100)] == ["s:C:0", "s:C:1", "s:C:2"]
    assert p.finished()


def test_per_state_restore_continues_the_plan_without_repeating_stored_positions():
    stored = [("s:A:0", "A", "A", "C", "C", None), ("s:A:2", "A", "A", None, None, None),
              ("s:C:1", "C", "C", "A", "A", None)]
    p = PerState(seed=0, k=3)
    p.restore(INIT, stored)
    uids = [t.uid for t in p.take(100)]
    # A:1 was in flight at the crash; B untouched; C discovered before the crash keeps its queue place
    assert uids == ["s:A:1", "s:B:0", "s:B:1", "s:B:2", "s:C:0", "s:C:2"]
    assert not set(uids) & {s[0] for s in stored}


def test_per_state_failed_position_is_planned_again_first():
    p = PerState(seed=0, k=2)
    p.restore(INIT, [])
    t = p.take(1)[0]
    p.failed(t)
    assert p.take(1)[0].uid == t.uid


def test_chain_walks_from_the_last_state_and_restores_each_chain():
    c = Chain(seed=0, n_chains=2)
    c.restore(INIT, [])
    t0, t1 = c.take(10)
    assert (t0.uid, t0.source_key, t1.uid, t1.source_key) == ("c0:0", "A", "c1:0", "B")
    assert c.take(10) == []                  # one step in flight per chain
    c.done(t0, "C", "C", None)
    c.done(t1, None, None, None)              # escape: stay
    t0, t1 = c.take(10)
    assert (t0.uid, t0.source_key, t1.uid, t1.source_key) == ("c0:1", "C", "c1:1", "B")
    r = Chain(seed=0, n_chains=2)
    r.restore(INIT, [("c0:0", "A", "A", "C", "C", None), ("c0:1", "C", "C", "D", "D", None),
                     ("c1:0", "B", "B", None, None, None)])
    t0, t1 = r.take(10)
    assert (t0.uid, t0.source_key, t1.uid, t1.source_key) == ("c0:2", "D", "c1:1", "B")


def test_population_draws_sources_from_the_pool_and_replans_gaps():
    p = Population(seed=3, sources_per_prompt=2)
    p.restore(INIT, [("p:0", "A", "A", "C", "C", None), ("p:2", "B", "B", None, None, None)])
    tasks = p.take(3)
    assert [t.uid for t in tasks] == ["p:1", "p:3", "p:4"]   # p:1 was in flight at the crash
    for t in tasks:
        keys = t.context["source_keys"]
        assert len(keys) == 2 and keys[0] == t.source_key and set(keys) <= {"A", "B", "C"}
        assert [text for text, _score in t.context["sources"]] == keys
    again = Population(seed=3, sources_per_prompt=2)
    again.restore(INIT, [("p:0", "A", "A", "C", "C", None), ("p:2", "B", "B", None, None, None)])
    assert [t.context for t in again.take(3)] == [t.context for t in tasks]  # deterministic plan


def test_protocol_names():
    assert norm_protocol("per-state") == "per_state"
    with pytest.raises(InputError):
        norm_protocol("bfs")


def test_table3_counts_the_papers_columns(tmp_path):
    s = RunStore.create(tmp_path / "r")
    s.add_samples([Sample("1", "A", "B"), Sample("2", "B", "A"), Sample("3", "A", None, reason="no word"),
                   Sample("4", "A", "A"), Sample("5", "C", "B")])
    t = table3(s)
    assert (t["samples"], t["unique_states"], t["unique_transitions"], t["states_sampled_gt1"]) == (5, 3, 3, 1)
    assert t["pairs_both_ways"] == 1 and t["escape_rate"] == pytest.approx(0.2)
    assert t["escape_reasons"] == {"no word": 1}


# ----------------------------------------------------------------------------- CLI errors (no Ray)
def test_existing_run_without_resume_is_a_one_line_error(tmp_path, cli):
    run = tmp_path / "r"
    s = RunStore.create(run)
    s.add_samples([Sample("1", "A", "B")])       # a run with samples (an empty one is reused as new)
    s.close()
    code, out, err = cli("collect", "--agent", "word", "--provider", "surrogate", "--run", run)
    assert code == 2 and "--resume" in err and "1 samples" in err and len(err.strip().splitlines()) == 1


def test_resume_without_a_run_is_an_error(tmp_path, cli):
    code, _, err = cli("collect", "--run", tmp_path / "none", "--resume")
    assert code == 2 and "nothing to resume" in err


def test_constrained_mode_needs_a_local_model(tmp_path, cli):
    code, _, err = cli("collect", "--agent", "word", "--provider", "openai/gpt-4o-mini", "--mode", "constrained",
                       "--run", tmp_path / "r")
    assert code == 2 and "--mode free" in err


def test_unknown_provider_and_bad_budget(tmp_path, cli):
    code, _, err = cli("collect", "--agent", "word", "--provider", "gtp4", "--run", tmp_path / "a")
    assert code == 2 and "unknown provider" in err
    code, _, err = cli("collect", "--agent", "word", "--provider", "surrogate", "--run", tmp_path / "b",
                       "--max-samples", "-1")
    assert code == 2 and "--max-samples" in err


# ----------------------------------------------------------------------------- surrogate runs (Ray)
# A hidden V with a spread (std ~1.6) well above the sampling noise of ~250 samples a state.
HIDDEN = "0.8*length - 1.2*zipf"

def test_surrogate_word_run_then_fit_recovers_the_hidden_potential(tmp_path, ray_session):
    """Small version of the acceptance run: 60 states x 250 samples, Spearman on states with >= 20 visits."""
    from scipy.stats import spearmanr

    from potsearch.agents.registry import load_agent
    from potsearch.collector import make_surrogate
    from potsearch.stages.fit import FitOptions, run_fit

    agent = small_word_agent(tmp_path, n_words=60, hidden=HIDDEN)
    run = tmp_path / "sur"
    res = collect(CollectConfig(agent=str(agent), provider="surrogate", run=str(run), samples_per_state=250,
                                max_samples=15000, workers=2, progress=False))
    assert res.summary["samples"] == 15000 and res.summary["unique_states"] == 60
    with RunStore.open(run) as s:
        info = s.run_info()
        assert info["config"]["surrogate"]["hidden_potential"] == HIDDEN
        assert "surrogate" in info["config"]["agent_is"]
        assert s.stage_results()["collect"]["samples"] == 15000
        g, fit = run_fit(s.counts(), FitOptions())
    hidden = make_surrogate(load_agent(str(agent))).potentials()
    keep = (fit.visits >= 20) & ~fit.unbounded
    assert keep.sum() == 60
    V = fit.target_potential()
    rho = spearmanr(V[keep], [hidden[n] for n, k in zip(fit.names, keep) if k]).correlation
    assert rho >= 0.99, rho
    assert "potsearch fit" in format_summary(res.summary, str(run))


def test_acceptance_20000_sample_run_of_the_shipped_word_surrogate(tmp_path, ray_session):
    """The acceptance run itself: the shipped word agent's surrogate (762 words), 20,000 samples,
    27 a state, then the fit: Spearman >= 0.99 on every state with >= 20 visits."""
    from scipy.stats import spearmanr

    from potsearch.agents.registry import load_agent
    from potsearch.collector import make_surrogate
    from potsearch.stages.fit import FitOptions, run_fit

    run = tmp_path / "sur20k"
    res = collect(CollectConfig(agent="word", provider="surrogate", run=str(run), samples_per_state=27,
                                max_samples=20000, workers=2, progress=False, seed=1))
    assert res.summary["samples"] == 20000
    with RunStore.open(run) as s:
        g, fit = run_fit(s.counts(), FitOptions())
    hidden = make_surrogate(load_agent("word")).potentials()
    rich = fit.visits >= 20
    assert rich.sum() >= 700 and fit.n_sccs == 1 and not fit.unbounded.any()
    rho = spearmanr(fit.potential[rich], [hidden[n] for n in np.asarray(fit.names)[rich]]).correlation
    assert rho >= 0.99, rho


@pytest.mark.parametrize("protocol", ["per-state", "chain", "population"])
def test_same_seed_same_samples_with_two_workers(tmp_path, ray_session, protocol):
    """Results are taken in submission order, so two runs with one seed store the same samples
    even though two workers race (the per-state budget cuts the queue mid-way)."""
    agent = small_word_agent(tmp_path, n_words=200)

    def samples(name):
        run = tmp_path / name
        collect(CollectConfig(agent=str(agent), provider="surrogate", run=str(run), protocol=protocol,
                              samples_per_state=7, max_samples=1000, workers=2, batch_size=50, seed=3,
                              progress=False))
        return run_samples(run)

    first = samples("a")
    assert len(first) == 1000 and first == samples("b")


def test_surrogate_chain_and_population_protocols_and_resume_extends_the_budget(tmp_path, ray_session):
    agent = small_word_agent(tmp_path, n_words=40)
    for proto in ("chain", "population"):
        run = tmp_path / proto
        res = collect(CollectConfig(agent=str(agent), provider="surrogate", run=str(run), protocol=proto,
                                    max_samples=3000, workers=2, progress=False, batch_size=256))
        assert res.summary["samples"] == 3000
        cfg = CollectConfig(run=str(run), resume=True, max_samples=5000, workers=2, progress=False, batch_size=256)
        res = collect(cfg)
        assert res.new_samples == 2000
        assert cfg.agent is None and cfg.provider is None   # the stored plan completes a copy, not the options
        uids = stored_uids(run)
        assert len(uids) == len(set(uids)) == 5000
        prefix = "c" if proto == "chain" else "p:"
        assert all(u.startswith(prefix) for u in uids)
    with pytest.raises(InputError, match="protocol"):
        collect(CollectConfig(run=str(tmp_path / "chain"), resume=True, protocol="per-state", progress=False))


# ----------------------------------------------------------------------------- the real local model
@pytest.mark.llm
@pytest.mark.slow
def test_local_smollm2_constrained_word_run_end_to_end(tmp_path, ray_session):
    from potsearch.agents.local import llama_available

    why = llama_available()
    if why:
        pytest.skip(f"local model unavailable: {why}")
    run = tmp_path / "local"
    res = collect(CollectConfig(agent="word", provider="local", mode="constrained", run=str(run), max_samples=20,
                                samples_per_state=10, workers=2, progress=False, timeout=120))
    s = res.summary
    assert s["samples"] == 20 and s["failed_calls"] == 0
    assert s["tokens_out"] > 0 and s["cost"] == 0.0
    with RunStore.open(run) as st:
        df = st.samples_frame()
        df = df[df.raw.notna()]
        rows = list(zip(df.outcome, df.model, df.raw))
        conf = st.run_info()["config"]
    assert len(rows) == 20 and all(m.startswith("potsearch-local/") for _, m, _ in rows)
    # constrained decoding: every reply is a word of the list, so nothing escapes
    assert all(o in ("state", "self") for o, _, _ in rows), rows
    assert conf["agent_is"].startswith("the model restricted to valid states")
