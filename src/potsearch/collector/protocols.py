"""Sampling protocols (driver side, deterministic): per_state, chain, population (adaptive: adaptive.py).

A protocol plans *positions*, each with a uid that depends only on the plan, so after a crash the
plan is rebuilt from the store (see ``potsearch.collector``)."""
from __future__ import annotations

import hashlib
from collections import OrderedDict, deque
from dataclasses import dataclass

import numpy as np

from potsearch.core.errors import InputError


PROTOCOLS = ("per_state", "chain", "population", "adaptive")
CONSTRAINED_NOTE = "the model restricted to valid states (constrained decoding with the agent's GBNF grammar)"
SURROGATE_NOTE = ("surrogate: a test instrument with a known hidden potential (Metropolis on a symmetric "
                  "neighbour graph); it validates the pipeline and never stands in for a real model")


def norm_protocol(name: str) -> str:
    p = name.replace("-", "_")
    if p not in PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}; choose per-state, chain, population or adaptive")
    return p


def task_seed(seed: int, uid: str) -> int:
    """A stable 31-bit seed per position (model sampling seed for local models)."""
    h = hashlib.blake2b(f"{seed}|{uid}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFFFFFF


# =====================================================================================  tasks
@dataclass
class Task:
    uid: str
    source: str
    source_key: str
    source_meta: dict | None = None
    context: dict | None = None
    seed: int = 0
    failures: int = 0

    def wire(self) -> dict:
        return {"uid": self.uid, "source": self.source, "source_key": self.source_key,
                "context": self.context, "seed": self.seed}


# =====================================================================================  protocols
class Protocol:
    """Plans positions. ``restore`` from the store, then ``take``/``done``/``failed``."""

    name = "?"

    def __init__(self, seed: int):
        self.seed = seed
        self.states: "OrderedDict[str, tuple[str, dict | None]]" = OrderedDict()  # key -> (text, meta)

    def add_state(self, key: str, text: str, meta: dict | None) -> bool:
        if key in self.states:
            return False
        self.states[key] = (text, meta)
        return True

    def restore(self, initial: list[tuple[str, str, dict | None]], stored: list[tuple]) -> None:
        """``stored``: (uid, source_key, source_text, target_key|None, target_text, target_meta) in store order."""
        raise NotImplementedError

    def take(self, n: int) -> list[Task]:
        raise NotImplementedError

    def done(self, task: Task, key: str | None, text: str | None, meta: dict | None) -> None:
        raise NotImplementedError

    def failed(self, task: Task) -> None:
        raise NotImplementedError

    def finished(self) -> bool:
        """No position is ready and none will become ready (given nothing is in flight)."""
        raise NotImplementedError

    def _task(self, uid: str, key: str, context: dict | None = None) -> Task:
        text, meta = self.states[key]
        return Task(uid, text, key, meta, context, task_seed(self.seed, uid))

    def _drain(self, queue, n: int) -> list[Task]:
        """Up to ``n`` tasks from a queue of (uid, state key), in order."""
        out = []
        while queue and len(out) < n:
            uid, key = queue.popleft()
            out.append(self._task(uid, key))
        return out


class PerState(Protocol):
    """Each state in a FIFO queue is sampled K times; every new state joins the queue.

    Positions ``s:{key}:{k}``, k = 0..K-1: the paper's word data with N0 = K samples a state.
    """

    name = "per_state"

    def __init__(self, seed: int, k: int):
        super().__init__(seed)
        if k < 1:
            raise InputError(f"--samples-per-state must be >= 1, got {k}")
        self.k = k
        self.queue: deque = deque()
        self.done_uids: set[str] = set()

    def _enqueue(self, key: str) -> None:
        for j in range(self.k):
            uid = f"s:{key}:{j}"
            if uid not in self.done_uids:
                self.queue.append((uid, key))

    def restore(self, initial, stored):
        for text, key, meta in initial:
            self.add_state(key, text, meta)
        for uid, skey, stext, tkey, ttext, tmeta in stored:
            self.done_uids.add(uid)
            self.add_state(skey, stext, None)
            if tkey is not None:
                self.add_state(tkey, ttext, tmeta)
        for key in list(self.states):
            self._enqueue(key)

    def take(self, n):
        return self._drain(self.queue, n)

    def done(self, task, key, text, meta):
        self.done_uids.add(task.uid)
        if key is not None and self.add_state(key, text, meta):
            self._enqueue(key)

    def failed(self, task):
        self.queue.appendleft((task.uid, task.source_key))

    def finished(self):
        return not self.queue


class Chain(Protocol):
    """``n_chains`` random walks: the next source is the last reply's state (stay on an escape)."""

    name = "chain"

    def __init__(self, seed: int, n_chains: int):
        super().__init__(seed)
        self.n = max(1, n_chains)
        self.pos: list[int] = [0] * self.n      # next step of each chain
        self.cur: list[str | None] = [None] * self.n
        self.busy: list[bool] = [False] * self.n

    def restore(self, initial, stored):
        if not initial:
            raise InputError("the agent has no initial state")
        for text, key, meta in initial:
            self.add_state(key, text, meta)
        keys = [k for _, k, _ in initial]
        for c in range(self.n):
            self.cur[c] = keys[c % len(keys)]
        last: dict[int, tuple[int, str, str | None]] = {}
        for uid, skey, stext, tkey, ttext, tmeta in stored:
            self.add_state(skey, stext, None)
            if tkey is not None:
                self.add_state(tkey, ttext, tmeta)
            if uid.startswith("c") and ":" in uid:
                c, step = uid[1:].split(":", 1)
                c, step = int(c), int(step)
                if c < self.n and (c not in last or step > last[c][0]):
                    last[c] = (step, skey, tkey)
        for c, (step, skey, tkey) in last.items():
            self.pos[c] = step + 1
            self.cur[c] = tkey if tkey is not None else skey

    def take(self, n):
        out = []
        for c in range(self.n):
            if len(out) >= n:
                break
            if not self.busy[c]:
                self.busy[c] = True
                t = self._task(f"c{c}:{self.pos[c]}", self.cur[c])
                t.context = {"chain": c}
                out.append(t)
        return out

    def _chain(self, task):
        return int(task.uid[1:].split(":", 1)[0])

    def done(self, task, key, text, meta):
        c = self._chain(task)
        self.busy[c] = False
        self.pos[c] += 1
        if key is not None:
            self.add_state(key, text, meta)
            self.cur[c] = key

    def failed(self, task):
        self.busy[self._chain(task)] = False

    def finished(self):
        return False  # a walk never ends by itself: the budget stops it


class Population(Protocol):
    """A growing pool of valid states; step i shows ``m`` states drawn uniformly from the pool
    (the first is the sample's source, the rest its context) and the reply joins the pool — the
    paper's fitter data (IdeaSearchFitter with a very high sampling temperature = uniform)."""

    name = "population"

    def __init__(self, seed: int, sources_per_prompt: int = 1):
        super().__init__(seed)
        self.m = max(1, sources_per_prompt)
        self.next_step = 0
        self.done_steps: set[int] = set()
        self.retry: deque = deque()
        self.pool: list[str] = []

    def add_state(self, key, text, meta):
        new = super().add_state(key, text, meta)
        if new:
            self.pool.append(key)
        return new

    def restore(self, initial, stored):
        if not initial:
            raise InputError("the agent has no initial state")
        for text, key, meta in initial:
            self.add_state(key, text, meta)
        for uid, skey, stext, tkey, ttext, tmeta in stored:
            self.add_state(skey, stext, None)
            if tkey is not None:
                self.add_state(tkey, ttext, tmeta)
            if uid.startswith("p:"):
                self.done_steps.add(int(uid[2:]))
        top = max(self.done_steps) + 1 if self.done_steps else 0
        self.retry.extend(i for i in range(top) if i not in self.done_steps)  # in flight at the crash
        self.next_step = top

    def _plan(self, step: int) -> Task:
        rng = np.random.default_rng([self.seed, step])
        m = min(self.m, len(self.pool))
        idx = rng.choice(len(self.pool), size=m, replace=False)
        keys = [self.pool[int(i)] for i in idx]
        t = self._task(f"p:{step}", keys[0])
        # the agents' format: sources = [(text, score)], the sample's own source first
        t.context = {"sources": [(self.states[k][0], (self.states[k][1] or {}).get("score")) for k in keys],
                     "source_keys": keys}
        return t

    def take(self, n):
        # plan no more steps at once than the pool holds: a batch planned from a tiny early pool
        # would draw nearly all its sources from the initial states
        n = min(n, max(8, len(self.pool)))
        out = []
        while len(out) < n:
            if self.retry:
                out.append(self._plan(self.retry.popleft()))
            else:
                out.append(self._plan(self.next_step))
                self.next_step += 1
        return out

    def done(self, task, key, text, meta):
        self.done_steps.add(int(task.uid[2:]))
        if key is not None:
            self.add_state(key, text, meta)

    def failed(self, task):
        self.retry.appendleft(int(task.uid[2:]))

    def finished(self):
        return False


def make_protocol(name: str, seed: int, samples_per_state: int, chains: int, sources_per_prompt: int) -> Protocol:
    """per_state, chain or population (the adaptive protocol: ``adaptive.make_adaptive``)."""
    name = norm_protocol(name)
    if name == "per_state":
        return PerState(seed, samples_per_state)
    if name == "chain":
        return Chain(seed, chains)
    return Population(seed, sources_per_prompt)


# =====================================================================================  workers
