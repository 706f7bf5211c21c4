"""The LLM proposer of the search loop: model calls
(an asyncio event loop in one background thread, at most ``llm.concurrency`` calls in flight).

``ModelCaller.submit`` returns a ``concurrent.futures.Future`` of a reply dict ``{text, tokens, cost,
error, seconds}`` (``llm_op.reply_record``); calls go through ``potsearch.llm.client``, which cuts a
call at ``llm.timeout`` seconds (``asyncio.wait_for`` cancels the HTTP request; the local model's C
loop cannot be interrupted and finishes in its thread, its reply dropped), recorded as
``llm: Timeout: no reply within Ns``. The caller records the number of calls in
flight at every change (``samples``: (seconds since start, calls in flight)).

``LLMProposer.finish`` turns a reply into a Candidate (``llm_op.screen_reply``: extract_source, the
allowlist): it either carries its final outcome (the call failed, the reply was rejected) or needs
scoring (``Search.score_model``: the score cache or the sandbox).
"""
from __future__ import annotations

import asyncio
import threading
import time
import zlib
from concurrent.futures import Future


# --------------------------------------------------------------------------- model calls
class ModelCaller:
    """Model calls through the async client (``llmclient``) on one event-loop thread."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.clients = Clients(cfg.llm)
        self.actor = None              # set by use_ray(): calls go to a ModelCallerActor
        self.inflight = 0
        self.samples: list[tuple[float, int]] = []
        self._lock = threading.Lock()
        self.t0 = time.monotonic()
        self.pacer = None              # llm.rpm / llm.tpm (llm/limits.py); used on the event-loop thread only
        self._pace_lock = None
        if cfg.llm.rpm or cfg.llm.tpm:
            from potsearch.llm.limits import Pacer

            self.pacer = Pacer(cfg.llm.rpm, cfg.llm.tpm)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="evolve-model-calls", daemon=True)
        self._thread.start()

    def _track(self, d: int) -> None:
        with self._lock:
            self.inflight += d
            self.samples.append((time.monotonic() - self.t0, self.inflight))

    def submit(self, model: str, prompt: str, seed: int | None = None, grammar: str | None = None) -> Future:
        if self.actor is None:
            self.clients.get(model)  # made in the caller's thread: the local model registers here
        self._track(+1)
        fut = asyncio.run_coroutine_threadsafe(self._call(model, prompt, seed, grammar), self.loop)
        fut.add_done_callback(lambda _f: self._track(-1))
        return fut

    async def _call(self, model: str, prompt: str, seed: int | None, grammar: str | None) -> dict:
        est = len(prompt) // 3 + 64 + self.cfg.llm.max_tokens     # tokens, over-estimated (system prompt too)
        if self.pacer is not None:
            if self._pace_lock is None:
                self._pace_lock = asyncio.Lock()
            async with self._pace_lock:          # one call booked at a time, each at its real start
                await asyncio.sleep(self.pacer.delay(est))
                self.pacer.started()
        if self.actor is not None:  # a Ray actor makes the call (anywhere in the cluster)
            rep = await self.actor.call.remote(model, prompt, seed, grammar)
        else:
            rep = await self.clients.call(model, prompt, seed, grammar)
        if self.pacer is not None:
            self.pacer.used(est, int(rep.get("tokens") or 0))
            for _ in range(int(rep.get("throttled") or 0)):
                self.pacer.throttle()       # a 429 pushes the next call back
        return rep

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


class Clients:
    """One ``llmclient.LLMClient`` per configured model name, made on first use."""

    def __init__(self, llm_cfg):
        self.llm = llm_cfg
        self._by_name: dict = {}

    def get(self, model: str):
        if model not in self._by_name:
            from potsearch.search.llm_op import model_client

            self._by_name[model] = model_client(self.llm, model)
        return self._by_name[model]

    async def call(self, model: str, prompt: str, seed: int | None, grammar: str | None) -> dict:
        """One model call; never raises: errors are in the reply dict."""
        from potsearch.search.llm_op import messages, reply_record

        return reply_record(await self.get(model).complete(messages(prompt), grammar=grammar, seed=seed))


class ModelCallerActorImpl:
    """Ray actor (async, ``max_concurrency`` = the call limit): model calls made on its node."""

    def __init__(self, llm_cfg):
        self.clients = Clients(llm_cfg)

    async def call(self, model: str, prompt: str, seed: int | None, grammar: str | None = None) -> dict:
        return await self.clients.call(model, prompt, seed, grammar)


# --------------------------------------------------------------------------- LLM offspring
class LLMProposer:
    """Prompts, model calls and reply handling of the LLM operator (one per search)."""

    def __init__(self, op, cfg):
        self.op = op                      # the LLMOperator: prompt, payload, allowlist, sandbox pool
        self.cfg = cfg
        self.caller = ModelCaller(cfg)
        self.local = all(m == "local" for m in cfg.llm.models)
        from potsearch.llm.failures import FailureWatch

        # a model whose first calls all fail (or fail for a missing key / unknown model) stops the search
        self.watch = {m: FailureWatch(m, window=8) for m in cfg.llm.models}

    def submit(self, model: str, parents, uid: str) -> Future:
        prompt = self.op.prompt(parents)
        # a seed per call makes the local model's reply independent of the order calls run in
        seed = zlib.crc32(uid.encode()) & 0x7FFFFFFF if model == "local" else None
        return self.caller.submit(model, prompt, seed, self.op.grammar())

    def finish(self, counters: dict, job, rep: dict):
        """The Candidate of a reply (the call counted in ``counters``); ``meta['needs_score']`` when it
        passed the allowlist and must be scored."""
        from potsearch.search.candidate import Candidate
        from potsearch.search.llm_op import screen_reply

        c = counters
        c["llm_calls"] += 1
        c["llm_rate_limited"] += int(rep.get("throttled") or 0)
        c["tokens"] += rep["tokens"]
        c["cost"] += rep["cost"]
        self.op.spent += rep["cost"]
        source, canonical, rejection = screen_reply(rep["text"], self.op.check_source)
        prog = Candidate(uid=job.uid, source=source, canonical=canonical, island=job.island,
                         round=job.rnd, operator="llm", parents=list(job.parent_uids), model=job.model,
                         tokens=rep["tokens"], cost=rep["cost"],
                         meta={"llm_seconds": rep["seconds"], "reply_chars": len(rep["text"] or "")})
        watch = self.watch.get(job.model)
        if watch is not None:
            watch.record(rep["error"], rep.get("kind"))
            watch.check()                 # ModelUnavailable (one line, exit 2): llm/failures.py
        if rep["error"]:
            prog.fail(rep["error"], self.cfg.gp.parsimony)
            c["llm_failed"] += 1
            return prog
        if rejection is not None:
            prog.fail(rejection, self.cfg.gp.parsimony)
            c["llm_rejected"] += 1
            return prog
        prog.meta["needs_score"] = True
        return prog

    def close(self) -> None:
        self.caller.close()
