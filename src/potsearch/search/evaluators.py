"""Evaluators for the asynchronous search.

GP offspring are scored by the search itself (``Search.evaluate``: in this process or its
``workers`` pool; our own generated code). Code written by a model goes to ``SandboxEvaluator``: one
thread that hands whatever is queued, as one batch, to the sandbox pool (rlimited, killable
subprocesses; ``SandboxPool.map`` spreads a batch over its workers) and resolves one future per
candidate with its ``SandboxResult``. The controller never waits on it except when it has nothing
else to do.
"""
from __future__ import annotations

import queue
import threading
from collections import deque
from concurrent.futures import Future

TASK = "potsearch.law.scoring:score_program"


class SandboxEvaluator:
    def __init__(self, pool, timeout: float):
        self.pool = pool
        self.timeout = timeout
        self._q: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evolve-sandbox-evaluator", daemon=True)
        self._thread.start()

    def submit(self, src: str, payload: dict) -> Future:
        fut: Future = Future()
        self._q.put((src, payload, fut))
        return fut

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._q.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self._q.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self.pool.map([(s, p) for s, p, _ in batch], task=TASK, timeout=self.timeout)
            except Exception as exc:  # the pool itself failed: every candidate of the batch records it
                for _, _, fut in batch:
                    fut.set_exception(exc)
                continue
            for (_, _, fut), res in zip(batch, results):
                fut.set_result(res)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- Ray
class EvalActorImpl:
    """Ray actor: scores candidates in its own SandboxPool (rlimited subprocesses on its node),
    never in the actor's process. Shared payloads (feature table, edges) arrive once per actor."""

    def __init__(self, workers: int, cpu_seconds: float, memory_mb: int, wall_timeout: float):
        from potsearch.sandbox.pool import SandboxPool

        self.pool = SandboxPool(workers=workers, cpu_seconds=cpu_seconds, memory_mb=memory_mb,
                                wall_timeout=wall_timeout, tasks=(TASK,))
        self.bases: dict = {}

    def ready(self) -> int:
        import os

        return os.getpid()

    def score(self, base_key: str, base_box: list, jobs: list, timeout: float) -> list:
        import ray

        base = self.bases.get(base_key)
        if base is None:
            base = self.bases[base_key] = ray.get(base_box[0])
        res = self.pool.map([(src, dict(base, **extra)) for src, extra in jobs], task=TASK, timeout=timeout)
        return [(r.ok, r.value, r.error, r.seconds) for r in res]


_ray_classes: dict = {}


def ray_classes() -> dict:
    """Ray actor classes, made lazily (importing this module never imports ray)."""
    if not _ray_classes:
        import ray

        from potsearch.search.proposers import ModelCallerActorImpl

        class EvalActor(EvalActorImpl):
            pass

        class ModelCallerActor(ModelCallerActorImpl):
            pass

        _ray_classes["eval"] = ray.remote(num_cpus=1, max_restarts=0)(EvalActor)
        _ray_classes["caller"] = ray.remote(num_cpus=0, max_restarts=0)(ModelCallerActor)
    return _ray_classes


class RayEvaluator:
    """Evaluator actors across a Ray cluster; the same ``submit`` -> Future as SandboxEvaluator.

    A dispatcher thread sends batches (at most two per actor outstanding) and resolves futures in
    job order per batch. When an actor dies (``ray.kill``, a lost node) its outstanding batches go
    back to the front of the queue and a new actor takes its place: no candidate is lost.
    ``stats``: batches, requeued jobs, replaced actors."""

    def __init__(self, bases: dict, actors: int, workers: int, cpu_seconds: float, memory_mb: int,
                 wall_timeout: float, batch: int = 8):
        import ray

        self.ray = ray
        self.bases = {k: [ray.put(v)] for k, v in bases.items()}
        self.opts = (workers, cpu_seconds, memory_mb, wall_timeout)
        self.timeout = wall_timeout
        self.batch = batch
        self.cls = ray_classes()["eval"]
        self.actors = [self.cls.remote(*self.opts) for _ in range(max(1, actors))]
        ray.get([a.ready.remote() for a in self.actors])
        self.stats = {"batches": 0, "requeued": 0, "replaced": 0}
        self._q: deque = deque()
        self._lock = threading.Lock()
        self._out: dict = {}        # ref -> (actor index, items)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evolve-ray-evaluator", daemon=True)
        self._thread.start()

    def submit(self, src: str, extra: dict, base: str = "llm") -> Future:
        fut: Future = Future()
        with self._lock:
            self._q.append((base, src, extra, fut))
        return fut

    def _send(self) -> None:
        load = [0] * len(self.actors)
        for ai, _, _ in self._out.values():
            load[ai] += 1
        with self._lock:
            for ai in sorted(range(len(self.actors)), key=lambda a: load[a]):
                while load[ai] < 2 and self._q:
                    base = self._q[0][0]
                    items = []
                    while self._q and self._q[0][0] == base and len(items) < self.batch:
                        items.append(self._q.popleft())
                    ref = self.actors[ai].score.remote(base, self.bases[base], [(s, e) for _, s, e, _ in items],
                                                       self.timeout)
                    self._out[ref] = (ai, self.actors[ai], items)
                    load[ai] += 1
                    self.stats["batches"] += 1

    def _run(self) -> None:
        ray = self.ray
        while not self._stop.is_set():
            self._send()
            if not self._out:
                self._stop.wait(0.02)
                continue
            ready, _ = ray.wait(list(self._out), num_returns=1, timeout=0.2)
            for ref in ready:
                ai, handle, items = self._out.pop(ref)
                try:
                    results = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                        ray.exceptions.NodeDiedError if hasattr(ray.exceptions, "NodeDiedError")
                        else ray.exceptions.RayActorError):
                    self._requeue(ai, handle, items)
                    continue
                except Exception as exc:  # the pool itself failed: every candidate of the batch records it
                    for *_, fut in items:
                        fut.set_exception(exc)
                    continue
                from potsearch.sandbox.results import SandboxResult

                for (*_, fut), r in zip(items, results):
                    fut.set_result(SandboxResult(*r))

    def _requeue(self, ai: int, handle, items: list) -> None:
        with self._lock:
            self._q.extendleft(reversed(items))
            self.stats["requeued"] += len(items)
        # the dead actor's other batches fail the same way and are requeued when they are waited on
        if self.actors[ai] is handle:
            self.actors[ai] = self.cls.remote(*self.opts)
            self.stats["replaced"] += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for a in self.actors:
            try:
                self.ray.kill(a, no_restart=True)
            except Exception:
                pass


def init_ray(address: str | None, timeout: float | None = None) -> bool:
    """Join the Ray cluster at ``address`` within ``timeout`` seconds (``core.raycluster.connect``: one
    line with advice when it fails), or start an embedded local Ray (``None`` or ``local``).
    Returns True when this call started/joined Ray (and so should shut it down)."""
    import logging
    import os

    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if ray.is_initialized():
        return False
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    if address and address != "local":
        from potsearch.core.raycluster import connect

        connect(address, timeout, **kw)
    else:  # always a fresh local instance, never a stale cluster found on this machine
        ray.init(address="local", num_cpus=max(1, os.cpu_count() or 1), **kw)
    return True
