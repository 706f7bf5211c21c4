"""The collector: sampling protocols, Ray actors, and the run store.

Shape
-----
* A **protocol** (``protocols``; driver side, deterministic) plans *positions*; each position has
  a uid that depends only on the plan: ``s:{state_key}:{k}`` (per-state: the k-th of K samples of a
  state), ``c{chain}:{step}`` (chain), ``p:{step}`` (population),
  ``a:{round}:{state_key}:{j}`` (adaptive: rounds allocated by the fit's standard errors, ``adaptive``).
  The store is idempotent by uid, so
  a position is stored at most once, and after a crash the plan is rebuilt *from the store*: every
  stored uid is done, every planned-but-unstored position is planned again with the same uid.
  SIGKILL at any moment then ``--resume`` loses and duplicates nothing.
* **Workers** (``workers``) are Ray actors, one per concurrency slot: ``LLMWorker`` (async;
  litellm -> any model, or the in-process llama.cpp provider) or ``SurrogateWorker`` (the agents'
  vectorised surrogate; one call handles a whole batch of sources). Actors restart when they die
  (``max_restarts``) and Ray resubmits their in-flight calls (``max_task_retries``); if a call
  still fails, the driver re-plans its positions.
* The **driver** (``driver``) keeps a bounded number of batches in flight (backpressure), writes
  results in large transactions (one per flush), enforces the budgets (``config.Budget``), and
  shows progress. ``stats`` computes what a run did (the paper's Table 3 row).

A failed model call (after retries) is *not* a sample of the agent — it says nothing about the
agent's kernel. It is logged as an event (``collect/call_failed``) and its position is planned
again (at most ``max_failures_per_position`` times per invocation; later ones are left for
``--resume``). Errors that were retried before success are kept in the sample's ``error``.
"""
from potsearch.collector.config import Budget, CollectConfig, CollectResult, PLAN_KEYS
from potsearch.collector.driver import collect
from potsearch.collector.protocols import (
    CONSTRAINED_NOTE, PROTOCOLS, SURROGATE_NOTE, Chain, PerState, Population, Protocol, Task,
    make_protocol, norm_protocol, task_seed
)
from potsearch.collector.stats import format_summary, table3
from potsearch.collector.workers import LLMWorkerImpl, SurrogateWorkerImpl, make_surrogate, ray_classes

__all__ = ["Budget", "CollectConfig", "CollectResult", "PLAN_KEYS", "collect", "CONSTRAINED_NOTE", "PROTOCOLS",
           "SURROGATE_NOTE", "Chain", "PerState", "Population", "Protocol", "Task", "make_protocol",
           "norm_protocol", "task_seed", "format_summary", "table3", "LLMWorkerImpl", "SurrogateWorkerImpl",
           "make_surrogate", "ray_classes"]
