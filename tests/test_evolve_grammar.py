"""The grammar of the potential language: functions from the sandbox allowlist at run time; with the
local model every reply parses, and seeded local-model async runs repeat exactly."""
import dataclasses

import pytest

from potsearch.search.config import LLMConfig, SandboxConfig, SearchConfig
from potsearch.law.potential_grammar import grammar_functions, potential_grammar

from evolve_helpers import candidate_tuples, small_run


def test_grammar_takes_the_allowlist_at_run_time(monkeypatch):
    from potsearch.law import interp as sandbox  # the allowlists live with the evaluator

    total, nonneg = grammar_functions()
    assert "tanh" in total and "exp" in total and "log1p" in nonneg and "sqrt" in nonneg
    assert "log" not in total + nonneg and "reciprocal" not in total + nonneg  # not finite at 0
    monkeypatch.setattr(sandbox, "ALLOWED_NUMPY", frozenset({"tanh", "sqrt"}))
    assert grammar_functions() == (["tanh"], [])  # no abs allowed: sqrt is not offered
    g = potential_grammar(["vowels", "zipf"])
    assert '"np.tanh("' in g and "np.exp" not in g and "sqrt" not in g
    assert 'x[\\"vowels\\"]' in g and 'x[\\"zipf\\"]' in g
    with pytest.raises(ValueError):
        potential_grammar([])


def _local_or_skip():
    from potsearch.agents.local import llama_available

    why = llama_available()
    if why:
        pytest.skip(f"local model unavailable: {why}")


def _rows(run):
    return candidate_tuples(run, ("uid", "source", "params", "parents", "operator", "island", "round",
                                  "train_action", "error"))


@pytest.mark.slow
def test_local_model_with_grammar_replies_parse_and_seeded_runs_repeat(tmp_path_factory):
    _local_or_skip()
    from potsearch.search.run import evolve

    cfg = SearchConfig(seed=2, rounds=3, islands=2, population=8, offspring=2, checkpoint_every=2,
                       llm=LLMConfig(models=("local",), mix=(0.5,), parents=2, grammar=True, max_tokens=256,
                                     temperature=0.8),
                       sandbox=SandboxConfig(workers=2, cpu_seconds=5, memory_mb=1024, wall_timeout=10.0))
    a, b = small_run(tmp_path_factory, "local_a"), small_run(tmp_path_factory, "local_b")
    s = evolve(a, cfg)
    evolve(b, cfg)
    ra = _rows(a)
    llm = [r for r in ra if r[4] == "llm"]
    assert len(llm) >= 3 and s["llm"]["llm_calls"] == len(llm)
    bad = [r[8] for r in llm if (r[8] or "").startswith(("no code", "rejected", "llm:"))]
    assert not bad, bad  # every reply is a program that parses and passes the allowlist
    assert ra == _rows(b)  # ordered application + a seed per call: the same candidates
