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
from concurrent.futures import Future

TASK = "potsearch.evolve.scoring:score_program"


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
