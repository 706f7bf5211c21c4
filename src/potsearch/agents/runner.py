"""The collector: sampling protocols, Ray actors, and the run store.

Shape
-----
* A **protocol** (driver side, deterministic) plans *positions*; each position has a uid that
  depends only on the plan: ``s:{state_key}:{k}`` (per-state: the k-th of K samples of a state),
  ``c{chain}:{step}`` (chain), ``p:{step}`` (population). The store is idempotent by uid, so a
  position is stored at most once, and after a crash the plan is rebuilt *from the store*:
  every stored uid is done, every planned-but-unstored position is planned again with the same
  uid. SIGKILL at any moment then ``--resume`` loses and duplicates nothing.
* **Workers** are Ray actors, one per concurrency slot: :class:`LLMWorker` (async; litellm ->
  any model, or the in-process llama.cpp provider) or :class:`SurrogateWorker` (the agents'
  vectorised surrogate; one call handles a whole batch of sources). Actors restart when they
  die (``max_restarts``) and Ray resubmits their in-flight calls (``max_task_retries``); if a call
  still fails, the driver re-plans its positions.
* The **driver** keeps a bounded number of batches in flight (backpressure), writes results in
  large transactions (one per flush), enforces the budgets, and shows progress.

A failed model call (after retries) is *not* a sample of the agent — it says nothing about the
agent's kernel. It is logged as an event (``collect/call_failed``) and its position is planned
again (at most ``max_failures_per_position`` times per invocation; later ones are left for
``--resume``). Errors that were retried before success are kept in the sample's ``error``.
"""
from __future__ import annotations

import hashlib
import json
import random
import sys
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import InputError
from ..store import RunStore, Sample

PROTOCOLS = ("per_state", "chain", "population")
CONSTRAINED_NOTE = "the model restricted to valid states (constrained decoding with the agent's GBNF grammar)"
SURROGATE_NOTE = ("surrogate: a test instrument with a known hidden potential (Metropolis on a symmetric "
                  "neighbour graph); it validates the pipeline and never stands in for a real model")


def norm_protocol(name: str) -> str:
    p = name.replace("-", "_")
    if p not in PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}; choose per-state, chain or population")
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
        out = []
        while self.queue and len(out) < n:
            uid, key = self.queue.popleft()
            out.append(self._task(uid, key))
        return out

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
    name = norm_protocol(name)
    if name == "per_state":
        return PerState(seed, samples_per_state)
    if name == "chain":
        return Chain(seed, chains)
    return Population(seed, sources_per_prompt)


# =====================================================================================  workers
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
        import os

        os.environ["POTSEARCH_LOCAL_THREADS"] = str(local_threads)
        _load_setup(setup or [])
        from .base import load_agent
        from .llm import LLMClient

        self.agent = load_agent(agent_spec)
        self.grammar = self.agent.grammar(mode) if mode == "constrained" else None
        self.client = LLMClient(model, **client_opts)
        self.model = model
        self.calls = 0
        from .llm import is_local

        if is_local(model):  # load the model and compile the grammar now, not on the first sample
            from .local import compile_grammar, load_llama

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
                "latency": reply.latency, "error": reply.error_note(), "raw": reply.text}
        if not reply.ok:
            base["failed"] = reply.error
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
        from .base import load_agent

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
    from . import surrogate as S

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
@dataclass
class CollectConfig:
    agent: str | None = None             # word | fitter | PATH.yaml (on --resume: the stored one)
    provider: str | None = None          # surrogate | local | any litellm model string
    run: str = "runs/collect"
    mode: str | None = None              # free | constrained (default: the agent's)
    protocol: str | None = None          # per_state | chain | population (default: the agent's)
    samples_per_state: int | None = None
    chains: int | None = None
    sources_per_prompt: int | None = None
    seed: int | None = None
    max_samples: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    workers: int = 2
    address: str | None = None
    ray_timeout: float | None = None     # seconds to join --address (None: POTSEARCH_RAY_TIMEOUT or 30)
    resume: bool = False
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 0.5
    temperature: float | None = None
    max_tokens_per_call: int | None = None
    api_base: str | None = None
    batch_size: int | None = None        # tasks per actor call
    inflight: int | None = None          # batches in flight per worker
    setup: list[str] = field(default_factory=list)   # provider hooks loaded in every worker
    progress: bool | None = None         # None: when stderr is a terminal
    max_failures_per_position: int = 3
    max_consecutive_failures: int = 200


PLAN_KEYS = ("agent", "provider", "mode", "protocol", "samples_per_state", "chains", "sources_per_prompt", "seed")


@dataclass
class CollectResult:
    run_dir: Path
    summary: dict
    new_samples: int
    seconds: float
    failures: int
    stop_reason: str


class Budget:
    def __init__(self, cfg: CollectConfig, samples: int, tokens: int, cost: float):
        self.cfg = cfg
        self.samples, self.tokens, self.cost = samples, tokens, cost

    def room(self, inflight: int) -> int:
        """How many more positions may be planned now."""
        c = self.cfg
        if c.max_tokens is not None and self.tokens >= c.max_tokens:
            return 0
        if c.max_cost is not None and self.cost >= c.max_cost:
            return 0
        if c.max_samples is None:
            return 1 << 30
        return max(0, c.max_samples - self.samples - inflight)

    def reason(self) -> str:
        c = self.cfg
        if c.max_tokens is not None and self.tokens >= c.max_tokens:
            return f"token budget reached ({self.tokens} >= {c.max_tokens})"
        if c.max_cost is not None and self.cost >= c.max_cost:
            return f"cost budget reached (${self.cost:.4f} >= ${c.max_cost})"
        if c.max_samples is not None and self.samples >= c.max_samples:
            return f"sample budget reached ({self.samples})"
        return "plan complete"


def _stored_samples(store: RunStore) -> list[tuple]:
    q = ("SELECT s.uid, a.key, a.text, b.key, b.text, b.meta FROM samples s JOIN states a ON a.id = s.source_id "
         "LEFT JOIN states b ON b.id = s.target_id ORDER BY s.id")
    return [(u, sk, st, tk, tt, json.loads(tm) if tm else None) for u, sk, st, tk, tt, tm in store.conn.execute(q)]


def _stored_usage(store: RunStore) -> tuple[int, int, float]:
    n, tok, cost = store.conn.execute(
        "SELECT count(*), coalesce(sum(coalesce(tokens_in,0)+coalesce(tokens_out,0)),0), coalesce(sum(cost),0) FROM samples"
    ).fetchone()
    return int(n), int(tok), float(cost)


def table3(store: RunStore) -> dict:
    """The paper's Table 3 row for this run, plus pairs seen both ways and the escape rate."""
    counts = store.counts()
    src, dst, cnt = counts.src, counts.dst, counts.count
    visits = counts.visits()
    valid = dst >= 0
    edge = valid & (dst != src)
    edges = set(zip(src[edge].tolist(), dst[edge].tolist()))
    both = sum(1 for (a, b) in edges if a < b and (b, a) in edges)
    used = set(src.tolist()) | set(dst[valid].tolist())
    total = int(cnt.sum())
    escapes = int(cnt[~valid].sum())
    selfl = int(cnt[valid & (dst == src)].sum())
    reasons = dict(store.conn.execute(
        "SELECT coalesce(reason,'?'), count(*) FROM samples WHERE outcome='escape' GROUP BY reason ORDER BY count(*) DESC LIMIT 8"
    ).fetchall())
    tok = store.conn.execute("SELECT coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0), coalesce(sum(cost),0),"
                             " coalesce(avg(latency),0), sum(error IS NOT NULL) FROM samples").fetchone()
    return {
        "samples": total,
        "unique_states": len(used),
        "unique_transitions": len(edges),
        "states_sampled_gt1": int((visits > 1).sum()),
        "escape_rate": escapes / total if total else 0.0,
        "self_loop_rate": selfl / total if total else 0.0,
        "pairs_both_ways": both,
        "escape_reasons": reasons,
        "tokens_in": int(tok[0]), "tokens_out": int(tok[1]), "cost": float(tok[2]),
        "mean_latency": float(tok[3]), "samples_with_retried_errors": int(tok[4] or 0),
    }


def _resolve(cfg: CollectConfig, agent, store: RunStore, resuming: bool) -> dict:
    """The plan parameters: CLI > stored run config (on resume, must agree) > agent defaults."""
    ac = agent.config
    stored = store.run_info().get("config", {}).get("plan", {}) if resuming else {}
    default = {
        "agent": cfg.agent, "provider": cfg.provider,
        "mode": ac.decoding, "protocol": ac.protocol,
        "samples_per_state": ac.sampling.samples_per_state,
        "chains": None, "sources_per_prompt": (ac.fitter.population if ac.fitter else 1),
        "seed": ac.sampling.seed,
    }
    given = {k: getattr(cfg, k) for k in PLAN_KEYS}
    if given["protocol"]:
        given["protocol"] = norm_protocol(given["protocol"])
    plan = {}
    for k in PLAN_KEYS:
        if resuming and k in stored:
            if given[k] is not None and given[k] != stored[k]:
                raise InputError(f"this run was collected with {k.replace('_', '-')} = {stored[k]!r}; "
                                 f"--resume continues that plan (drop the option or pass the same value)", cfg.run)
            plan[k] = stored[k]
        else:
            plan[k] = given[k] if given[k] is not None else default[k]
    plan["protocol"] = norm_protocol(plan["protocol"])
    if plan["mode"] not in ("free", "constrained"):
        raise InputError(f"unknown decoding mode {plan['mode']!r}; choose free or constrained")
    if plan["chains"] is None:
        plan["chains"] = 256 if plan["provider"] == "surrogate" else max(1, cfg.workers) * 2
    return plan


def collect(cfg: CollectConfig, on_batch: Callable | None = None, out=sys.stderr) -> CollectResult:
    """Run (or resume) a collection into ``cfg.run``. ``on_batch(runner_state)`` is a test hook."""
    from .base import load_agent

    t_start = time.time()
    run_dir = Path(cfg.run)
    store_path = run_dir / "store.sqlite"
    if cfg.resume and not store_path.exists():
        raise InputError("nothing to resume: no run store here (drop --resume to start the run)", str(run_dir))
    if not cfg.resume and store_path.exists():
        with RunStore.open(run_dir) as s:
            n = s.n_samples()
        if n:  # a start that failed before its first sample is reused as if new
            raise InputError(f"run already exists ({n} samples); add --resume to continue it, or choose another --run",
                             str(run_dir))
    if cfg.workers < 1:
        raise InputError(f"--workers must be >= 1, got {cfg.workers}")
    for name in ("max_samples", "max_tokens"):
        v = getattr(cfg, name)
        if v is not None and v < 0:
            raise InputError(f"--{name.replace('_', '-')} must be >= 0, got {v}")
    if cfg.max_cost is not None and not cfg.max_cost >= 0:
        raise InputError(f"--max-cost must be >= 0, got {cfg.max_cost}")
    if not cfg.timeout > 0:
        raise InputError(f"--timeout must be > 0, got {cfg.timeout}")

    if cfg.resume:
        with RunStore.open(run_dir) as s:
            stored_plan = s.run_info().get("config", {}).get("plan", {})
        if not stored_plan:
            raise InputError("this run store holds no collection to resume (drop --resume to start one here)",
                             str(run_dir))
        for k in ("agent", "provider"):
            if getattr(cfg, k) is None:
                setattr(cfg, k, stored_plan[k])
            elif getattr(cfg, k) != stored_plan[k]:
                raise InputError(f"this run was collected with --{k} {stored_plan[k]}; --resume continues that plan",
                                 str(run_dir))
    if not cfg.agent or not cfg.provider:
        raise InputError("collect needs --agent (word, fitter or PATH.yaml) and --provider (surrogate, local or a "
                         "litellm model string)")
    agent = load_agent(cfg.agent)
    store = RunStore.create(run_dir, kind="collect")
    try:
        plan = _resolve(cfg, agent, store, cfg.resume)
        surrogate = plan["provider"] == "surrogate"
        model = None
        if not surrogate:
            from .llm import is_local, resolve_model

            model = resolve_model(plan["provider"])
            if plan["mode"] == "constrained" and not is_local(model):
                raise InputError(
                    f"constrained decoding needs a grammar-capable local model; {plan['provider']!r} is a remote "
                    "model: use --mode free (the paper's protocol) or --provider local")
            if is_local(model):
                from .local import llama_available

                why = llama_available()
                if why:
                    raise InputError(f"--provider local: {why}")
            if plan["mode"] == "constrained" and agent.grammar("constrained") is None:
                raise InputError(f"agent {agent.name!r} has no grammar for constrained decoding")
        return _collect(cfg, agent, store, plan, model, on_batch, out, t_start)
    finally:
        store.close()


def _run_config(cfg, agent, plan, model, sur_meta) -> dict:
    ac = agent.config
    conf = {
        "stage": "collect",
        "plan": plan,
        "agent": {"name": agent.name, "spec": cfg.agent, "config": ac.to_dict()},
        "provider": plan["provider"],
        "model": model or "surrogate",
        "mode": plan["mode"],
        "protocol": plan["protocol"],
        "seed": plan["seed"],
        "decoding": {"temperature": _temperature(cfg, agent), "max_tokens": _call_tokens(cfg, agent, plan["mode"]),
                     "chat_template": "the model's own (GGUF metadata)" if model and model.startswith("potsearch-local/")
                     else "the provider's"},
        "uids": {"per_state": "s:{state_key}:{k}", "chain": "c{chain}:{step}", "population": "p:{step}"}[plan["protocol"]],
    }
    if plan["mode"] == "constrained" and model:
        conf["agent_is"] = CONSTRAINED_NOTE
    elif model:
        conf["agent_is"] = "the model in free decoding (the paper's protocol: invalid replies are escapes)"
    if sur_meta is not None:
        conf["agent_is"] = SURROGATE_NOTE
        conf["surrogate"] = sur_meta
    return conf


def _temperature(cfg, agent):
    return cfg.temperature if cfg.temperature is not None else agent.config.sampling.temperature


def _call_tokens(cfg, agent, mode):
    if cfg.max_tokens_per_call is not None:
        return cfg.max_tokens_per_call
    s = agent.config.sampling
    return s.max_tokens if mode == "constrained" else s.free_max_tokens


def _init_ray(cfg: CollectConfig):
    import logging
    import os

    import ray

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    if ray.is_initialized():
        return False
    kw = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    if cfg.address:
        from ..raycluster import connect  # deadline and advice (raycluster.py)

        connect(cfg.address, cfg.ray_timeout, **kw)
    else:
        # address="local": always a fresh local instance, never a stale cluster found on this machine
        ray.init(address="local", num_cpus=max(1, cfg.workers), **kw)
    return True


def _collect(cfg, agent, store, plan, model, on_batch, out, t_start) -> CollectResult:
    import ray

    from ..progress import collect_progress

    surrogate = model is None
    proto = make_protocol(plan["protocol"], plan["seed"], plan["samples_per_state"], plan["chains"],
                          plan["sources_per_prompt"])
    init_rng = np.random.default_rng(plan["seed"])
    sur_obj = None
    if surrogate:
        try:
            sur_obj = make_surrogate(agent)
        except InputError:
            raise
        except Exception as exc:  # pragma: no cover
            raise InputError(f"the surrogate is not available for this agent: {type(exc).__name__}: {exc}") from None
    # the surrogate has its own state space (e.g. sums of basis terms for the fitter): start there
    initial = (sur_obj.initial_states(init_rng) if sur_obj is not None and hasattr(sur_obj, "initial_states")
               else agent.initial_states(init_rng))
    stored = _stored_samples(store)
    proto.restore(initial, stored)
    n0, tok0, cost0 = _stored_usage(store)
    budget = Budget(cfg, n0, tok0, cost0)

    sur_meta = None
    if sur_obj is not None:
        sur_meta = dict(sur_obj.metadata()) if hasattr(sur_obj, "metadata") else {}
        sur_meta.setdefault("note", SURROGATE_NOTE)
    store.set_run_config(_run_config(cfg, agent, plan, model, sur_meta), kind="collect")
    owns_ray = _init_ray(cfg)
    actors: list = []
    failures = 0
    new = 0
    stop = "plan complete"
    progress = None
    hold: dict = {}  # the flush function, so that an interrupt or an error still stores what arrived
    try:
        classes = ray_classes()
        opts = dict(max_restarts=4, max_task_retries=3)
        if surrogate:
            actors = [classes["surrogate"].options(num_cpus=0, **opts)
                      .remote(cfg.agent, plan["seed"]) for _ in range(cfg.workers)]
            batch = cfg.batch_size or 2000
            per_worker = cfg.inflight or 2
            in_order = True
        else:
            from .llm import is_local

            local = is_local(model)
            client_opts = dict(timeout=cfg.timeout, retries=cfg.retries, backoff=cfg.backoff,
                               temperature=_temperature(cfg, agent), max_tokens=_call_tokens(cfg, agent, plan["mode"]),
                               api_base=cfg.api_base)
            actors = [classes["llm"].options(num_cpus=1 if local else 0, max_concurrency=64, **opts)
                      .remote(cfg.agent, model, plan["mode"], client_opts, cfg.setup, 1) for _ in range(cfg.workers)]
            # local llama.cpp: one call at a time per actor, a small queue keeps it busy;
            # remote APIs: several concurrent calls per actor
            batch = cfg.batch_size or (1 if local else 4)
            per_worker = cfg.inflight or 2
            in_order = local   # seeded llama.cpp replies are reproducible; remote APIs are not
        try:  # workers built (model loaded) before the clock starts
            ray.get([a.ready.remote() for a in actors])
        except Exception as exc:
            raise InputError(f"the collector's workers failed to start: {type(exc).__name__}: {str(exc)[-300:]}") from None
        store.log_event("collect", "resume" if cfg.resume else "start",
                        {"stored": n0, "workers": cfg.workers, "address": cfg.address,
                         "max_samples": cfg.max_samples, "max_tokens": cfg.max_tokens, "max_cost": cfg.max_cost})

        label = f"{agent.name} SURROGATE" if surrogate else f"{agent.name} {plan['provider']} {plan['mode']}"
        progress = collect_progress(cfg.progress, cfg.max_samples, label, out)  # bar or plain lines (progress.py)
        inflight: dict = {}          # ref -> (actor index, [Task], batch_no)
        load = [0] * len(actors)
        buf: list[Sample] = []
        last_flush = time.time()
        batch_no = 0
        escapes = 0
        consecutive_fail = 0
        t_run = time.time()
        fail_counts: dict[str, int] = {}
        given_up: set[str] = set()
        agent_name = agent.name

        # fault-suite hook: pause after each write so a test's SIGKILL lands mid-run even for the
        # surrogate (60k samples/s); never set in normal use
        pause = float(os.environ.get("POTSEARCH_TEST_PAUSE_AFTER_WRITE", "0") or 0)

        def flush():
            nonlocal buf, last_flush, new
            if buf:
                new += store.add_samples(buf)
                buf = []
                if pause:
                    time.sleep(pause)
            last_flush = time.time()

        hold["flush"] = flush
        while True:
            # ---- plan and submit (bounded in flight = backpressure)
            n_inflight = sum(len(v[1]) for v in inflight.values())
            while len(inflight) < per_worker * len(actors):
                room = budget.room(n_inflight)
                if room <= 0:
                    break
                tasks = [t for t in proto.take(min(batch, room)) if t.uid not in given_up]
                if not tasks:
                    break
                a = min(range(len(actors)), key=lambda i: load[i])
                if surrogate:
                    ref = actors[a].run.remote([t.source_key for t in tasks], batch_no)
                else:
                    ref = actors[a].run.remote([t.wire() for t in tasks])
                inflight[ref] = (a, tasks, batch_no)
                load[a] += 1
                batch_no += 1
                n_inflight += len(tasks)
            if not inflight:
                stop = budget.reason() if budget.room(0) <= 0 else "plan complete"
                break
            # Reproducible runs: take results in submission order, so what is planned next never
            # depends on which worker answered first (remote APIs: first come, first served).
            waiting = [min(inflight, key=lambda r: inflight[r][2])] if in_order else list(inflight)
            ready, _ = ray.wait(waiting, num_returns=1, timeout=0.5)
            for ref in ready:
                a, tasks, bno = inflight.pop(ref)
                load[a] -= 1
                try:
                    results = ray.get(ref)
                except Exception as exc:  # actor died beyond its restarts, or the call raised
                    store.log_event("collect", "batch_failed", {"uids": [t.uid for t in tasks],
                                                                "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                    failures += len(tasks)
                    consecutive_fail += len(tasks)
                    for t in reversed(tasks):
                        proto.failed(t)
                    _check_failing(cfg, consecutive_fail, str(exc))
                    continue
                now = time.time()
                for t, r in zip(tasks, results):
                    if surrogate:
                        target, key, reason, meta = r
                        s = Sample(uid=t.uid, source=t.source, target=target, reason=reason, agent=agent_name,
                                   model="surrogate", created=now, tokens_in=0, tokens_out=0, cost=0.0,
                                   source_key=t.source_key, target_key=key, source_meta=t.source_meta,
                                   target_meta=meta)
                    else:
                        if r.get("failed"):
                            failures += 1
                            consecutive_fail += 1
                            fail_counts[t.uid] = fail_counts.get(t.uid, 0) + 1
                            store.log_event("collect", "call_failed", {"uid": t.uid, "error": r["failed"],
                                                                       "history": r.get("error")})
                            budget.tokens += r.get("tokens_in", 0) + r.get("tokens_out", 0)
                            if fail_counts[t.uid] < cfg.max_failures_per_position:
                                proto.failed(t)
                            else:
                                given_up.add(t.uid)
                                proto.failed(t)  # stays planned; skipped in this invocation, retried on --resume
                            _check_failing(cfg, consecutive_fail, r["failed"])
                            continue
                        consecutive_fail = 0
                        target, key = r.get("target"), r.get("key")
                        s = Sample(uid=t.uid, source=t.source, target=target, reason=r.get("reason"), agent=agent_name,
                                   model=model, created=now, tokens_in=r["tokens_in"], tokens_out=r["tokens_out"],
                                   latency=r["latency"], cost=r["cost"], error=r.get("error"), raw=r.get("raw"),
                                   source_key=t.source_key, target_key=key if target is not None else None,
                                   source_meta=t.source_meta, target_meta=r.get("meta"))
                        budget.tokens += (r["tokens_in"] or 0) + (r["tokens_out"] or 0)
                        budget.cost += r["cost"] or 0.0
                    if s.target is None:
                        escapes += 1
                        proto.done(t, None, None, None)
                    else:
                        proto.done(t, s.target_key or s.target, s.target, s.target_meta)
                    buf.append(s)
                    budget.samples += 1
            if len(buf) >= 20000 or (buf and time.time() - last_flush > 0.5):
                flush()
            el = max(1e-9, time.time() - t_run)
            done_now = budget.samples - n0
            progress.update(budget.samples, done_now / el, escapes / max(1, done_now), budget.tokens, budget.cost, failures)
            if on_batch is not None:
                on_batch({"actors": actors, "inflight": inflight, "samples": budget.samples, "store": store})
        flush()
        seconds = time.time() - t_run
        progress.close()
        summary = table3(store)
        summary.update({"new_samples": new, "seconds": round(seconds, 3),
                        "samples_per_second": round(new / seconds, 2) if seconds > 0 else None,
                        "failed_calls": failures, "stop": stop, "provider": plan["provider"], "mode": plan["mode"],
                        "protocol": plan["protocol"], "agent": agent.name, "model": model or "surrogate",
                        "positions_given_up": len(given_up)})
        if surrogate:
            summary["note"] = SURROGATE_NOTE
        store.set_stage_result("collect", summary)
        store.log_event("collect", "end", {k: summary[k] for k in ("samples", "new_samples", "failed_calls", "stop")})
        return CollectResult(Path(cfg.run), summary, new, seconds, failures, stop)
    finally:
        if progress is not None:
            progress.close()
        if "flush" in hold:
            try:
                hold["flush"]()
            except Exception:  # pragma: no cover - never mask the original error
                pass
        for a in actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        if owns_ray:
            import ray

            ray.shutdown()


def _check_failing(cfg, consecutive: int, last: str):
    if consecutive >= cfg.max_consecutive_failures:
        raise InputError(f"the model failed {consecutive} calls in a row; last error: {last}"[:400]
                         + " (stored samples are kept; fix the provider and rerun with --resume)")


def format_summary(summary: dict, run: str) -> str:
    s = summary
    head = f"{'Agent':<32}{'Transition samples':>20}{'Unique states':>15}{'Unique transitions':>20}{'States sampled >1':>19}{'Escape rate':>13}"
    who = f"{s['agent']} (SURROGATE)" if s["provider"] == "surrogate" else f"{s['agent']} ({s['provider']}, {s['mode']})"
    row = (f"{who[:31]:<32}{s['samples']:>20,}{s['unique_states']:>15,}{s['unique_transitions']:>20,}"
           f"{s['states_sampled_gt1']:>19,}{s['escape_rate']:>12.1%}")
    lines = [head, row,
             f"pairs seen both ways: {s['pairs_both_ways']}   self-loops: {s['self_loop_rate']:.1%}   "
             f"new samples: {s['new_samples']} in {s['seconds']:.1f}s ({s['samples_per_second'] or 0:.1f}/s)   "
             f"tokens: {s['tokens_in'] + s['tokens_out']:,}   cost: ${s['cost']:.4f}   failed calls: {s['failed_calls']}",
             f"stopped: {s['stop']}"]
    if s.get("escape_reasons"):
        lines.append("escapes: " + ", ".join(f"{k} {v}" for k, v in s["escape_reasons"].items()))
    if s.get("note"):
        lines.append(s["note"])
    # with no state sampled twice the default --min-visits 1 would leave nothing to fit
    lines.append(f"next: potsearch fit {run}" + ("" if s["states_sampled_gt1"] else " --min-visits 0"))
    return "\n".join(lines)
