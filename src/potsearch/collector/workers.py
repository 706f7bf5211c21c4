"""Collect workers: one concurrency slot each, as Ray actors or in-process (LLM or surrogate)."""
from __future__ import annotations

import hashlib
import random
import sys

import numpy as np

from potsearch.core.errors import InputError


def _load_setup(specs: list[str]) -> None:
    """Run ``file.py:function`` / ``module:function`` hooks (register test/extra litellm providers)."""
    import importlib
    import importlib.util

    for spec in specs or []:
        target, _, fn = spec.rpartition(":")
        if target.endswith(".py"):
            name = "potsearch_setup_" + hashlib.sha1(target.encode()).hexdigest()[:8]
            if name in sys.modules:
                mod = sys.modules[name]
            else:
                s = importlib.util.spec_from_file_location(name, target)
                mod = importlib.util.module_from_spec(s)
                sys.modules[name] = mod
                s.loader.exec_module(mod)
        else:
            mod = importlib.import_module(target)
        getattr(mod, fn)()


def _outcome_fields(outcome, source_key: str) -> tuple:
    """(target_text, target_key, reason, meta) from an agent Outcome (or a tuple)."""
    if isinstance(outcome, tuple):
        return outcome
    return (outcome.target, outcome.key if outcome.target is not None else None, outcome.reason,
            getattr(outcome, "meta", None))


class LLMWorkerImpl:
    """One concurrency slot: builds the prompt, calls the model through litellm, parses the reply.

    Runs inside a Ray actor (``LLMWorker``) or in-process (tests, ``--workers 0``).
    """

    def __init__(self, agent_spec: str, model: str, mode: str, client_opts: dict, setup: list[str] | None = None,
                 local_threads: int = 1):
        _load_setup(setup or [])
        from potsearch.agents.registry import load_agent
        from potsearch.llm.client import LLMClient

        self.agent = load_agent(agent_spec)
        self.grammar = self.agent.grammar(mode) if mode == "constrained" else None
        self.client = LLMClient(model, **client_opts, local_threads=local_threads)
        self.model = model
        self.calls = 0
        from potsearch.llm.client import is_local

        if is_local(model):  # load the model and compile the grammar now, not on the first sample
            from potsearch.agents.local import compile_grammar, load_llama

            load_llama(n_threads=local_threads)
            if self.grammar:
                compile_grammar(self.grammar)

    def ready(self) -> bool:
        return True

    def pid(self) -> int:
        import os

        return os.getpid()

    async def run(self, tasks: list[dict]) -> list[dict]:
        import asyncio

        return list(await asyncio.gather(*(self._one(t) for t in tasks)))

    async def _one(self, t: dict) -> dict:
        import asyncio

        self.calls += 1
        try:
            msgs = self.agent.messages(t["source"], t.get("context"))
        except Exception as exc:  # an agent bug on this state: not the model's fault
            return {"uid": t["uid"], "failed": f"prompt error: {type(exc).__name__}: {exc}"[:300]}
        rng = random.Random(t["seed"])
        reply = await self.client.complete(msgs, grammar=self.grammar, rng=rng, seed=t["seed"])
        base = {"uid": t["uid"], "tokens_in": reply.tokens_in, "tokens_out": reply.tokens_out, "cost": reply.cost,
                "latency": reply.latency, "error": reply.error_note(), "raw": reply.text,
                "throttled": reply.throttled}
        if not reply.ok:
            base["failed"], base["kind"] = reply.error, reply.kind   # kind: potsearch.llm.failures.classify
            return base
        try:
            outcome = await asyncio.to_thread(self.agent.parse, reply.text, t["source_key"])
            target, key, reason, meta = _outcome_fields(outcome, t["source_key"])
        except Exception as exc:  # parse must never raise; if it does, the reply is an escape anyway
            target, key, reason, meta = None, None, f"parse crashed: {type(exc).__name__}", None
        if reason is not None and reply.finish_reason == "length":
            reason = f"cut at max_tokens: {reason}"     # the budget, not the model's choice, ended it
        base.update(target=target, key=key, reason=reason, meta=meta)
        return base


class SurrogateWorkerImpl:
    """The agents' surrogate, vectorised: one call steps a whole batch of sources."""

    def __init__(self, agent_spec: str, seed: int):
        from potsearch.agents.registry import load_agent

        self.agent = load_agent(agent_spec)
        self.surrogate = make_surrogate(self.agent)
        self.seed = seed

    def pid(self) -> int:
        import os

        return os.getpid()

    def ready(self) -> bool:
        return True

    def run(self, keys: list[str], batch_no: int) -> list[tuple]:
        rng = np.random.default_rng([self.seed, batch_no])
        outs = self.surrogate.step_batch(keys, rng)
        return [_outcome_fields(o, k) for o, k in zip(outs, keys)]


def make_surrogate(agent):
    """The agents engineer's surrogate for this agent (adapter over their constructor names)."""
    from potsearch.agents import surrogate as S

    for name in ("make_surrogate", "build_surrogate", "for_agent"):
        fn = getattr(S, name, None)
        if callable(fn):
            return fn(agent)
    for name in ("Surrogate", "WordSurrogate"):
        cls = getattr(S, name, None)
        if cls is not None:
            return cls(agent)
    raise InputError("this agent has no surrogate")  # pragma: no cover


_ray_classes: dict = {}


def ray_classes():
    """Ray actor classes, created lazily so importing this module never imports ray."""
    if not _ray_classes:
        import ray

        class LLMWorker(LLMWorkerImpl):
            pass

        class SurrogateWorker(SurrogateWorkerImpl):
            pass

        _ray_classes["llm"] = ray.remote(LLMWorker)
        _ray_classes["surrogate"] = ray.remote(SurrogateWorker)
    return _ray_classes


# =====================================================================================  driver
