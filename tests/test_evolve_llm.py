"""The LLM operator: reply extraction, checking, sandboxed scoring, counting; and the local SmolLM2."""
import itertools
import json
import threading

import pytest

from potsearch.search.config import LLMConfig, SandboxConfig, SearchConfig
from potsearch.search.llm_op import extract_source
from potsearch.search.run import evolve

from evolve_helpers import small_run


def _llm_rows(run):
    """(error, train_action, model, parents) of the candidates the LLM operator proposed."""
    from potsearch.store import RunStore

    with RunStore.open(run) as st:
        return [(r.error, r.train_action, r.model, r.parents) for r in st.candidates.rows(valid_only=False)
                if r.operator == "llm"]


VALID = """Here is a better formula:
```python
import numpy as np

N_PARAMS = 2
def potential(x, p):
    # vowels push the potential up, frequent words down
    return p[0] * x["vowels"] + p[1] * x["zipf"]

print(potential)
```
It should work."""
IMPORT_OS = "```python\nimport os\nN_PARAMS = 1\ndef potential(x, p):\n    return p[0] * len(os.listdir('/'))\n```"
NO_CODE = "I think the potential is related to vowels."
SPIN = ("```python\nN_PARAMS = 1\ndef potential(x, p):\n    s = 0.0\n    for i in range(10 ** 12):\n"
        "        s = s + 1.0\n    return p[0] * s\n```")


def test_extract_source():
    src = extract_source(VALID)
    assert src.startswith("N_PARAMS = 2\n") and "print" not in src and "import" not in src
    assert extract_source(NO_CODE) is None
    # missing or too small N_PARAMS is repaired; trailing junk after the function is cut
    src = extract_source("def potential(x, p):\n    return p[0] + p[2] * x['length']\n\nThis formula is")
    assert src.startswith("N_PARAMS = 3\n")
    assert extract_source("```\nN_PARAMS = 1\ndef potential(x, p):\n    return p[0] * p[1]\n```").startswith(
        "N_PARAMS = 2")
    # the import stays visible to the checker when it is inside the function
    src = extract_source("```python\ndef potential(x, p):\n    import os\n    return p[0]\n```")
    assert "import os" in src


@pytest.mark.parametrize("loop", ["lockstep", "async"])
def test_llm_operator_through_litellm_and_the_sandbox(tmp_path_factory, monkeypatch, loop):
    """A scripted model (litellm's mock_response, no network): one valid program, one that imports os,
    one reply without code, one endless loop. The valid one is scored in the sandbox, the others are
    rejected or killed, every call is counted and stored, and the search goes on (both loops: the
    lockstep operator calls litellm.completion, the async one litellm.acompletion)."""
    from potsearch.llm.client import get_litellm

    litellm = get_litellm()
    replies = itertools.cycle([VALID, IMPORT_OS, NO_CODE, SPIN])
    lock = threading.Lock()
    orig, orig_async = litellm.completion, litellm.acompletion

    def scripted(*args, **kw):
        with lock:
            text = next(replies)
        return orig(*args, **{**kw, "mock_response": text})

    async def scripted_async(*args, **kw):
        with lock:
            text = next(replies)
        return await orig_async(*args, **{**kw, "mock_response": text})

    monkeypatch.setattr(litellm, "completion", scripted)
    monkeypatch.setattr(litellm, "acompletion", scripted_async)
    run = small_run(tmp_path_factory, "llm_mock")
    cfg = SearchConfig(rounds=2, islands=1, population=8, offspring=2, checkpoint_every=1, loop=loop,
                       llm=LLMConfig(models=("openai/gpt-4o-mini",), mix=(1.0,), parents=2),
                       sandbox=SandboxConfig(workers=2, cpu_seconds=3, memory_mb=1024, wall_timeout=6.0))
    s = evolve(run, cfg)
    L = s["llm"]
    assert L["llm_calls"] == 4
    assert L["llm_rejected"] == 2          # import os (allowlist) + no code in the reply
    assert L["llm_scored"] == 1
    assert L["llm_failed"] == 1            # the endless loop: stopped by the evaluator or the sandbox
    assert L["tokens"] > 0
    rows = _llm_rows(run)
    assert len(rows) == 4 and all(r[2] == "openai/gpt-4o-mini" and len(r[3]) == 2 for r in rows)
    errors = [(r[0] or "ok").split(":")[0].split(" ")[0] for r in rows]
    spun = [e for e in errors if e in ("timeout", "killed", "refused")]  # the endless loop: the evaluator's bounds or the sandbox
    assert sorted(e for e in errors if e not in spun) == ["no", "ok", "rejected"] and len(spun) == 1
    scored = [r for r in rows if r[0] is None]
    assert scored[0][1] == pytest.approx(s["best"]["train_action"], rel=0.05)
    spin = [r[0] for r in rows if r[0] and not r[0].startswith(("rejected", "no code"))]
    assert spin and ("timeout" in spin[0] or "killed" in spin[0] or "cpu" in spin[0].lower()
                    or spin[0].startswith("refused by the evaluator: more than 5,000,000 evaluation steps"))


@pytest.mark.llm
def test_local_smollm2_end_to_end(tmp_path_factory):
    """The offline SmolLM2-135M through litellm for one round: whatever it writes is extracted,
    checked and either rejected (counted) or scored in the sandbox (counted)."""
    try:
        from potsearch.agents.local import llama_available
    except ImportError:
        pytest.skip("potsearch.agents.local (the local provider) is not available")
    why = llama_available()
    if why:
        pytest.skip(f"local model unavailable: {why}")
    run = small_run(tmp_path_factory, "llm_local")
    cfg = SearchConfig(rounds=1, islands=1, population=8, offspring=2, checkpoint_every=1,
                       llm=LLMConfig(models=("local",), mix=(1.0,), parents=2, max_tokens=160,
                                     samples_in_prompt=4, temperature=0.7),
                       sandbox=SandboxConfig(workers=1, cpu_seconds=10, memory_mb=1024, wall_timeout=20.0))
    s = evolve(run, cfg)
    L = s["llm"]
    assert L["llm_calls"] == 2 and L["tokens"] > 0 and L["cost"] == 0
    rows = [r[:3] for r in _llm_rows(run)]
    assert len(rows) == 2 and all(r[2] == "local" for r in rows)
    for err, action, _ in rows:
        assert (err is None) == (action is not None)
    assert L["llm_rejected"] + L["llm_failed"] + L["llm_scored"] + (2 - L["llm_rejected"] - L["llm_failed"]
                                                                      - L["llm_scored"]) == 2
    assert L["llm_rejected"] == sum(1 for r in rows if r[0] and r[0].startswith(("rejected", "no code")))
