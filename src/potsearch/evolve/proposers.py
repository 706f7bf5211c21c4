"""Proposers for the asynchronous search: GP variation (in the controller's thread) and model calls
(an asyncio event loop in one background thread, at most ``llm.concurrency`` calls in flight).

``ModelCaller.submit`` returns a ``concurrent.futures.Future`` of a reply dict ``{text, tokens, cost,
error, seconds}``; a call is cut at ``llm.timeout`` seconds (``asyncio.wait_for`` cancels the HTTP
request; the local model's C loop cannot be interrupted and finishes in its thread, its reply
dropped) and recorded as ``llm: timeout after N s``. The caller records the number of calls in
flight at every change (``samples``: (seconds since start, calls in flight)).

``LLMProposer.finish`` turns a reply into a Program exactly as the lockstep operator does
(extract_source, the allowlist, the score cache): it either carries its final outcome (failed,
rejected, cache hit) or needs scoring in the sandbox.
"""
from __future__ import annotations

import asyncio
import threading
import time
import zlib
from concurrent.futures import Future


# --------------------------------------------------------------------------- GP
def gp_child(search, island: int, uid: str, rnd: int):
    """One non-LLM offspring of ``island`` (the lockstep step's variation, child by child): GP, or the
    term-structured operator with probability ``terms_mix`` (``Search.offspring``)."""
    return search.offspring(island, uid, rnd)


# --------------------------------------------------------------------------- model calls
class ModelCaller:
    """Model calls through litellm's async API on one event-loop thread."""

    def __init__(self, cfg, resolve_model):
        from ..agents.llm import get_litellm

        self.cfg = cfg
        self.litellm = get_litellm()
        self.resolve_model = resolve_model
        self.actor = None              # set by use_ray(): calls go to a ModelCallerActor
        self.inflight = 0
        self.samples: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self.t0 = time.monotonic()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="evolve-model-calls", daemon=True)
        self._thread.start()

    def _track(self, d: int) -> None:
        with self._lock:
            self.inflight += d
            self.samples.append((time.monotonic() - self.t0, self.inflight))

    def submit(self, model: str, prompt: str, seed: int | None = None, extra: dict | None = None) -> Future:
        self._track(+1)
        fut = asyncio.run_coroutine_threadsafe(self._call(model, prompt, seed, extra or {}), self.loop)
        fut.add_done_callback(lambda _f: self._track(-1))
        return fut

    async def _call(self, model: str, prompt: str, seed: int | None, extra: dict) -> dict:
        if self.actor is not None:  # a Ray actor makes the call (anywhere in the cluster)
            return await self.actor.call.remote(model, prompt, seed, extra)
        return await call_model(self.litellm, self.cfg.llm, self.resolve_model(model), prompt, seed, extra)

    def close(self) -> None:
        """Cancel the calls still in flight (their replies are dropped) and stop the event loop."""
        if self.loop.is_running():
            async def cancel_all():
                tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            try:
                asyncio.run_coroutine_threadsafe(cancel_all(), self.loop).result(timeout=10)
            except Exception:  # a call that ignores cancellation: the loop thread is a daemon
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=5)


def resolve_model(name: str) -> str:
    """litellm's model string for a configured model (``local`` -> the in-process provider)."""
    if name == "local":
        from ..agents.llm import resolve_model as resolve
        from ..agents.local import ensure_registered

        ensure_registered()
        return resolve("local")
    return name


async def call_model(litellm, llm, model: str, prompt: str, seed: int | None, extra: dict | None = None) -> dict:
    """One model call, cut at ``llm.timeout``; never raises: errors are in the reply dict."""
    import asyncio

    from .llm_op import SYSTEM

    t0 = time.perf_counter()
    kw = dict(model=model, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
              temperature=llm.temperature, max_tokens=llm.max_tokens, timeout=llm.timeout)
    kw.update(extra or {})  # api_base, extra_body (grammar)
    if seed is not None:
        kw["seed"] = seed
    try:
        resp = await asyncio.wait_for(litellm.acompletion(**kw), timeout=llm.timeout)
    except (asyncio.TimeoutError, TimeoutError):
        return {"text": None, "tokens": 0, "cost": 0.0, "seconds": time.perf_counter() - t0,
                "error": f"llm: timeout after {llm.timeout:g} s"}
    except Exception as exc:  # any provider error: recorded on the candidate, the search goes on
        return {"text": None, "tokens": 0, "cost": 0.0, "seconds": time.perf_counter() - t0,
                "error": f"llm: {type(exc).__name__}: {exc}"[:500]}
    from .llm_op import reply_record

    return reply_record(litellm, resp, t0)


class ModelCallerActorImpl:
    """Ray actor (async, ``max_concurrency`` = the call limit): model calls made on its node."""

    def __init__(self, llm_cfg):
        import os

        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
        from ..agents.llm import get_litellm

        self.llm = llm_cfg
        self.litellm = get_litellm()

    async def call(self, model: str, prompt: str, seed: int | None, extra: dict | None = None) -> dict:
        return await call_model(self.litellm, self.llm, resolve_model(model), prompt, seed, extra)


# --------------------------------------------------------------------------- LLM offspring
class LLMProposer:
    """Prompts, model calls and reply handling of the LLM operator (one per search)."""

    def __init__(self, op, cfg):
        self.op = op                      # the LLMOperator: prompt, payload, allowlist, sandbox pool
        self.cfg = cfg
        self.caller = ModelCaller(cfg, op._model)
        self.local = all(m == "local" for m in cfg.llm.models)

    def submit(self, model: str, parents, uid: str) -> Future:
        prompt = self.op.prompt(parents)
        # a seed per call makes the local model's reply independent of the order calls run in
        seed = zlib.crc32(uid.encode()) & 0x7FFFFFFF if model == "local" else None
        return self.caller.submit(model, prompt, seed, self.op.call_options())

    def finish(self, search, job, rep: dict):
        """The Program for a reply; ``prog.meta['needs_score']`` when it must go to the sandbox."""
        from .islands import Program
        from .llm_op import screen_reply

        c = search.counters
        c["llm_calls"] += 1
        c["tokens"] += rep["tokens"]
        c["cost"] += rep["cost"]
        self.op.spent += rep["cost"]
        source, canonical, rejection = screen_reply(rep["text"], self.op.check_source)
        prog = Program(uid=job.uid, source=source, canonical=canonical, island=job.island,
                       round=job.rnd, operator="llm", parents=list(job.parent_uids), model=job.model,
                       tokens=rep["tokens"], cost=rep["cost"],
                       meta={"llm_seconds": rep["seconds"], "reply_chars": len(rep["text"] or "")})
        if rep["error"]:
            self._fail(prog, rep["error"], search)
            c["llm_failed"] += 1
            return prog
        if rejection is not None:
            self._fail(prog, rejection, search)
            c["llm_rejected"] += 1
            return prog
        prog.meta["needs_score"] = True
        return prog

    def sandbox_job(self, search, prog) -> tuple:
        return (prog.source, dict(self.op.payload, source=prog.source, seed=search._fit_seed(prog.canonical)))

    @staticmethod
    def _fail(prog, error: str, search) -> None:
        prog.set_score({"error": error}, search.cfg.gp.parsimony)
        prog.meta["category"] = error.split(":", 1)[0]

    def close(self) -> None:
        self.caller.close()
