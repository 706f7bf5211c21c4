"""The collect driver: plans positions, keeps batches in flight, writes results, enforces budgets."""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from potsearch.core.errors import InputError
from potsearch.store import RunStore, Sample
from potsearch.store.rundir import RunDir
from potsearch.collector.adaptive import make_adaptive
from potsearch.collector.config import Budget, CollectConfig, CollectResult, PLAN_KEYS
from potsearch.collector.protocols import CONSTRAINED_NOTE, SURROGATE_NOTE, Task, make_protocol, norm_protocol
from potsearch.collector.stats import stored_samples, stored_usage, table3
from potsearch.collector import callsettings as calls
from potsearch.collector.workers import make_surrogate, ray_classes


def _resolve(cfg: CollectConfig, agent, store: RunStore, resuming: bool) -> dict:
    """The plan parameters: CLI > stored run config (on resume, must agree) > agent defaults."""
    ac = agent.config
    stored = store.run_info().get("config", {}).get("plan", {}) if resuming else {}
    default = {
        "agent": cfg.agent, "provider": cfg.provider,
        "mode": ac.decoding, "protocol": ac.protocol,
        "samples_per_state": ac.sampling.samples_per_state,
        "chains": None, "sources_per_prompt": (ac.fitter.population if ac.fitter else 1),
        "seed": ac.sampling.seed, "target_se": None, "round_size": None,   # adaptive: the protocol's defaults
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
    if plan["protocol"] != "adaptive":
        for k in ("target_se", "round_size"):
            if plan[k] is not None:
                raise InputError(f"--{k.replace('_', '-')} applies to --protocol adaptive only "
                                 f"(this run's protocol: {plan['protocol']})", cfg.run)
    if plan["mode"] not in ("free", "constrained"):
        raise InputError(f"unknown decoding mode {plan['mode']!r}; choose free or constrained")
    if plan["chains"] is None:
        plan["chains"] = 256 if plan["provider"] == "surrogate" else max(1, cfg.workers) * 2
    return plan


def collect(cfg: CollectConfig, on_batch: Callable | None = None, out=sys.stderr,
            after_write: Callable | None = None) -> CollectResult:
    """Run (or resume) a collection into ``cfg.run``. ``on_batch(runner_state)`` and ``after_write()``
    (called after each write to the store) are hooks for tests."""
    from potsearch.agents.registry import load_agent

    cfg = _checked(cfg)
    agent = load_agent(cfg.agent)
    store = RunStore.create(Path(cfg.run), kind="collect")
    try:
        plan = _resolve(cfg, agent, store, cfg.resume)
        model = _model(plan, agent)
        return _collect(cfg, agent, store, plan, model, on_batch, out, after_write)
    finally:
        store.close()


def _checked(cfg: CollectConfig) -> CollectConfig:
    """The options checked against each other and the run folder; on resume, a copy completed with the
    stored plan's agent and provider (``cfg`` itself is never changed)."""
    run_dir = Path(cfg.run)
    store_path = RunDir(run_dir).store
    if cfg.resume and not store_path.exists():
        raise InputError("nothing to resume: no run store here (drop --resume to start the run)", str(run_dir))
    if not cfg.resume and store_path.exists():
        with RunStore.open(run_dir) as s:
            n = s.n_samples()
        if n:  # a start that failed before its first sample is reused as if new
            raise InputError(f"run already exists ({n} samples); add --resume to continue it, or choose another --run",
                             str(run_dir))
    # the values themselves were checked when the options were built (CollectOptions.__post_init__)

    if cfg.resume:
        with RunStore.open(run_dir) as s:
            stored_plan = s.run_info().get("config", {}).get("plan", {})
        if not stored_plan:
            raise InputError("this run store holds no collection to resume (drop --resume to start one here)",
                             str(run_dir))
        for k in ("agent", "provider"):
            if getattr(cfg, k) is not None and getattr(cfg, k) != stored_plan[k]:
                raise InputError(f"this run was collected with --{k} {stored_plan[k]}; --resume continues that plan",
                                 str(run_dir))
        cfg = replace(cfg, agent=cfg.agent or stored_plan["agent"], provider=cfg.provider or stored_plan["provider"])
    if not cfg.agent or not cfg.provider:
        raise InputError("collect needs --agent (word, fitter or PATH.yaml) and --provider (surrogate, local or a "
                         "litellm model string)")
    return cfg


def _model(plan: dict, agent) -> str | None:
    """The litellm model string of the plan's provider (None: the surrogate), checked against the
    decoding mode."""
    if plan["provider"] == "surrogate":
        return None
    from potsearch.llm.client import is_local, resolve_model

    model = resolve_model(plan["provider"])
    if plan["mode"] == "constrained" and not is_local(model):
        raise InputError(
            f"constrained decoding needs a grammar-capable local model; {plan['provider']!r} is a remote "
            "model: use --mode free (the paper's protocol) or --provider local")
    if is_local(model):
        from potsearch.agents.local import llama_available

        why = llama_available()
        if why:
            raise InputError(f"--provider local: {why}")
    if plan["mode"] == "constrained" and agent.grammar("constrained") is None:
        raise InputError(f"agent {agent.name!r} has no grammar for constrained decoding")
    return model


def _run_config(cfg, agent, plan, model, sur_meta, call) -> dict:
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
        "call": call,       # how to reach the model (callsettings.py; never a secret)
        "decoding": {"temperature": call["temperature"], "max_tokens": call["max_tokens_per_call"],
                     "chat_template": "the model's own (GGUF metadata)" if model and model.startswith("potsearch-local/")
                     else "the provider's"},
        "uids": {"per_state": "s:{state_key}:{k}", "chain": "c{chain}:{step}", "population": "p:{step}",
                 "adaptive": "a:{round}:{state_key}:{j}"}[plan["protocol"]],
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
        from potsearch.core.raycluster import connect  # deadline and advice (raycluster.py)

        connect(cfg.address, cfg.ray_timeout, **kw)
    else:
        # address="local": always a fresh local instance, never a stale cluster found on this machine
        ray.init(address="local", num_cpus=max(1, cfg.workers), **kw)
    return True


@dataclass
class _Collection:
    """One invocation's state, shared by its steps: what it writes to, what it planned, what came back
    (``buf``: samples not yet stored) and its counts."""
    cfg: CollectConfig
    agent: object
    store: RunStore
    plan: dict
    model: str | None
    proto: object
    budget: Budget
    after_write: Callable | None
    actors: list = field(default_factory=list)
    buf: list = field(default_factory=list)
    last_flush: float = field(default_factory=time.time)
    new: int = 0
    failures: int = 0
    escapes: int = 0
    consecutive_fail: int = 0
    fail_counts: dict = field(default_factory=dict)
    given_up: set = field(default_factory=set)
    watch: object = None       # llm.failures.FailureWatch: stops a collect whose model cannot answer
    call: dict = field(default_factory=dict)   # the run's call settings (callsettings.resolve_call)
    spend: object = None       # llm.limits.SpendCap: spent + calls in flight x one call's worst case <= --max-cost
    pacer: object = None       # llm.limits.Pacer: --rpm / --tpm (None: no limit)
    held: tuple | None = None  # (tasks, monotonic time): a batch the pacer let start at that time
    prompt_est: int = 0        # prompt tokens of one call (over-estimated; raised by what calls used)
    throttled: int = 0         # 429s (rate limits) met, retried or not

    @property
    def surrogate(self) -> bool:
        return self.model is None

    def flush(self) -> None:
        """Store what arrived (one transaction)."""
        if self.buf:
            self.new += self.store.add_samples(self.buf)
            self.buf = []
            if self.after_write is not None:
                self.after_write()
        self.last_flush = time.time()


def _collect(cfg, agent, store, plan, model, on_batch, out, after_write=None) -> CollectResult:
    """Plan, start the workers, run the loop, record the result; whatever happens, what arrived is
    stored and the workers are stopped."""
    c = _plan(cfg, agent, store, plan, model, after_write)
    if model is not None:
        from potsearch.llm.failures import FailureWatch

        c.watch = FailureWatch(model, window=max(8, 2 * cfg.workers))
    owns_ray = _init_ray(cfg)
    progress = None
    try:
        batch, per_worker, in_order = _start_workers(c)
        from potsearch.core.progress import collect_progress

        label = f"{agent.name} SURROGATE" if c.surrogate else f"{agent.name} {plan['provider']} {plan['mode']}"
        progress = collect_progress(cfg.progress, cfg.max_samples, label, out)  # bar or plain lines (progress.py)
        t_run = time.time()
        try:
            stop = _loop(c, batch, per_worker, in_order, progress, on_batch, t_run)
        except InputError as exc:       # the model cannot answer, or failed too often: said in the store too
            c.store.log_event("collect", "stopped", {"error": str(exc)[:400]})
            raise
        c.flush()
        seconds = time.time() - t_run
        progress.close()
        return _finish(c, stop, seconds)
    finally:
        if progress is not None:
            progress.close()
        try:
            c.flush()
        except Exception:  # pragma: no cover - never mask the original error
            pass
        import ray

        for a in c.actors:
            try:
                ray.kill(a, no_restart=True)
            except Exception:
                pass
        if owns_ray:
            ray.shutdown()


def _plan(cfg, agent, store, plan, model, after_write) -> _Collection:
    """The protocol rebuilt from the store, the budget from what is stored, the run's config recorded."""
    if plan["protocol"] == "adaptive":
        proto = make_adaptive(plan["seed"], plan["target_se"], plan["round_size"], cfg.max_samples)
    else:
        proto = make_protocol(plan["protocol"], plan["seed"], plan["samples_per_state"], plan["chains"],
                              plan["sources_per_prompt"])
    init_rng = np.random.default_rng(plan["seed"])
    sur_obj = None
    if model is None:
        try:
            sur_obj = make_surrogate(agent)
        except InputError:
            raise
        except Exception as exc:  # pragma: no cover
            raise InputError(f"the surrogate is not available for this agent: {type(exc).__name__}: {exc}") from None
    # the surrogate has its own state space (e.g. sums of basis terms for the fitter): start there
    initial = (sur_obj.initial_states(init_rng) if sur_obj is not None and hasattr(sur_obj, "initial_states")
               else agent.initial_states(init_rng))
    proto.restore(initial, stored_samples(store))
    n0, tok0, cost0 = stored_usage(store)
    sur_meta = None
    if sur_obj is not None:
        sur_meta = dict(sur_obj.metadata()) if hasattr(sur_obj, "metadata") else {}
        sur_meta.setdefault("note", SURROGATE_NOTE)
    stored_call = store.run_info().get("config", {}).get("call", {}) if cfg.resume else {}
    call = calls.resolve_call(cfg, plan, model, _temperature(cfg, agent), _call_tokens(cfg, agent, plan["mode"]),
                              stored_call, cfg.resume)
    store.set_run_config(_run_config(cfg, agent, plan, model, sur_meta, call), kind="collect")
    c = _Collection(cfg, agent, store, plan, model, proto, Budget(cfg, n0, tok0, cost0), after_write, call=call)
    _limits(c, initial)
    return c


def _limits(c: _Collection, initial) -> None:
    """The spending cap and the pacer of a model collect (llm/limits.py)."""
    from potsearch.llm.limits import Pacer, SpendCap

    c.prompt_est = calls.prompt_estimate(c.agent, initial) if c.model is not None else 0
    c.spend = SpendCap(c.cfg.max_cost, calls.worst_call(c.model, c.call, c.prompt_est), spent=c.budget.cost)
    if c.model is not None and (c.call["rpm"] or c.call["tpm"]):
        c.pacer = Pacer(c.call["rpm"], c.call["tpm"])


def _start_workers(c: _Collection) -> tuple[int, int, bool]:
    """Start the actors and wait until they are ready (model loaded) before the clock starts; returns
    (tasks per call, calls in flight per worker, whether results are taken in submission order)."""
    import ray

    cfg, plan = c.cfg, c.plan
    classes = ray_classes()
    opts = dict(max_restarts=4, max_task_retries=3)
    if c.surrogate:
        c.actors = [classes["surrogate"].options(num_cpus=0, **opts)
                    .remote(cfg.agent, plan["seed"]) for _ in range(cfg.workers)]
        batch = cfg.batch_size or 2000
        in_order = True
    else:
        from potsearch.llm.client import is_local

        local = is_local(c.model)
        k = c.call
        client_opts = dict(timeout=k["timeout"], retries=k["retries"], backoff=k["backoff"],
                           temperature=k["temperature"], max_tokens=k["max_tokens_per_call"], api_base=k["api_base"],
                           price=calls.table_price(k, c.model))
        c.actors = [classes["llm"].options(num_cpus=1 if local else 0, max_concurrency=64, **opts)
                    .remote(cfg.agent, c.model, plan["mode"], client_opts, cfg.setup, 1) for _ in range(cfg.workers)]
        # local llama.cpp: one call at a time per actor, a small queue keeps it busy;
        # remote APIs: several concurrent calls per actor
        batch = cfg.batch_size or (1 if local or c.pacer is not None else 4)   # paced: one call at a time
        in_order = local   # seeded llama.cpp replies are reproducible; remote APIs are not
    try:
        ray.get([a.ready.remote() for a in c.actors])
    except Exception as exc:
        raise InputError(f"the collector's workers failed to start: {type(exc).__name__}: {str(exc)[-300:]}") from None
    c.store.log_event("collect", "resume" if cfg.resume else "start",
                      {"stored": c.budget.samples, "workers": cfg.workers, "address": cfg.address,
                       "max_samples": cfg.max_samples, "max_tokens": cfg.max_tokens, "max_cost": cfg.max_cost})
    return batch, cfg.inflight or 2, in_order


def _loop(c: _Collection, batch: int, per_worker: int, in_order: bool, progress, on_batch, t_run: float) -> str:
    """Keep at most ``per_worker`` batches in flight per actor (backpressure) until the plan or a budget
    is done; take each batch's results, store them in large transactions; returns why it stopped."""
    import ray

    proto, budget, actors = c.proto, c.budget, c.actors
    n0 = budget.samples
    inflight: dict = {}          # ref -> (actor index, [Task], batch_no)
    load = [0] * len(actors)
    batch_no = 0
    while True:
        # ---- plan and submit (bounded in flight = backpressure)
        n_inflight = sum(len(v[1]) for v in inflight.values())
        while len(inflight) < per_worker * len(actors):
            tasks = _next_tasks(c, batch, n_inflight)
            if not tasks:
                break
            a = min(range(len(actors)), key=lambda i: load[i])
            if c.surrogate:
                ref = actors[a].run.remote([t.source_key for t in tasks], batch_no)
            else:
                ref = actors[a].run.remote([t.wire() for t in tasks])
            inflight[ref] = (a, tasks, batch_no)
            c.spend.started(len(tasks))
            if c.pacer is not None:
                c.pacer.started()
            load[a] += 1
            batch_no += 1
            n_inflight += len(tasks)
        if not inflight:
            if c.held is not None:               # the pacer holds the next batch: wait for its time
                time.sleep(max(0.0, c.held[1] - time.monotonic()))
                continue
            if c.spend.reached and budget.room(0) > 0:
                return (f"cost budget reached (${c.spend.spent:.4f}; one more call could cost up to "
                        f"${c.spend.per_call:.4f}, cap ${c.spend.cap})")
            return budget.reason() if budget.room(0) <= 0 else "plan complete"
        # Reproducible runs: take results in submission order, so what is planned next never
        # depends on which worker answered first (remote APIs: first come, first served).
        waiting = [min(inflight, key=lambda r: inflight[r][2])] if in_order else list(inflight)
        hold = max(0.01, c.held[1] - time.monotonic()) if c.held is not None else 0.5
        ready, _ = ray.wait(waiting, num_returns=1, timeout=min(0.5, hold))
        for ref in ready:
            a, tasks, _ = inflight.pop(ref)
            load[a] -= 1
            try:
                results = ray.get(ref)
            except Exception as exc:  # actor died beyond its restarts, or the call raised
                c.store.log_event("collect", "batch_failed", {"uids": [t.uid for t in tasks],
                                                              "error": f"{type(exc).__name__}: {str(exc)[:300]}"})
                c.failures += len(tasks)
                c.consecutive_fail += len(tasks)
                for _t in tasks:
                    c.spend.finished(0.0)
                for t in reversed(tasks):
                    proto.failed(t)
                _check_failing(c.cfg, c.consecutive_fail, str(exc))
                continue
            _take(c, tasks, results)
        if len(c.buf) >= 20000 or (c.buf and time.time() - c.last_flush > 0.5):
            c.flush()
        el = max(1e-9, time.time() - t_run)
        done_now = budget.samples - n0
        progress.update(budget.samples, done_now / el, c.escapes / max(1, done_now), budget.tokens, budget.cost,
                        c.failures, proto.status() if hasattr(proto, "status") else "")
        if on_batch is not None:
            on_batch({"actors": actors, "inflight": inflight, "samples": budget.samples, "store": c.store})


def _take(c: _Collection, tasks: list[Task], results: list) -> None:
    """One batch's results: each a sample (buffered, its position done) or a failed call (logged, its
    position planned again, or given up for this invocation after ``max_failures_per_position``)."""
    proto, budget, agent_name = c.proto, c.budget, c.agent.name
    now = time.time()
    for t, r in zip(tasks, results):
        if not c.surrogate:
            _account(c, r)
        if c.surrogate:
            target, key, reason, meta = r
            s = Sample(uid=t.uid, source=t.source, target=target, reason=reason, agent=agent_name,
                       model="surrogate", created=now, tokens_in=0, tokens_out=0, cost=0.0,
                       source_key=t.source_key, target_key=key, source_meta=t.source_meta,
                       target_meta=meta)
        else:
            if r.get("failed"):
                c.failures += 1
                c.consecutive_fail += 1
                c.fail_counts[t.uid] = c.fail_counts.get(t.uid, 0) + 1
                c.store.log_event("collect", "call_failed", {"uid": t.uid, "error": r["failed"],
                                                             "history": r.get("error")})
                budget.tokens += r.get("tokens_in", 0) + r.get("tokens_out", 0)
                if c.fail_counts[t.uid] >= c.cfg.max_failures_per_position:
                    c.given_up.add(t.uid)   # stays planned; skipped in this invocation, retried on --resume
                proto.failed(t)
                if c.watch is not None:
                    c.watch.record(r["failed"], r.get("kind"))
                    c.watch.check()          # ModelUnavailable: the model cannot answer (llm/failures.py)
                _check_failing(c.cfg, c.consecutive_fail, r["failed"])
                continue
            if c.watch is not None:
                c.watch.record(None, None)
            c.consecutive_fail = 0
            target, key = r.get("target"), r.get("key")
            s = Sample(uid=t.uid, source=t.source, target=target, reason=r.get("reason"), agent=agent_name,
                       model=c.model, created=now, tokens_in=r["tokens_in"], tokens_out=r["tokens_out"],
                       latency=r["latency"], cost=r["cost"], error=r.get("error"), raw=r.get("raw"),
                       source_key=t.source_key, target_key=key if target is not None else None,
                       source_meta=t.source_meta, target_meta=r.get("meta"))
            budget.tokens += (r["tokens_in"] or 0) + (r["tokens_out"] or 0)
            budget.cost += r["cost"] or 0.0
        if s.target is None:
            c.escapes += 1
            proto.done(t, None, None, None)
        else:
            proto.done(t, s.target_key or s.target, s.target, s.target_meta)
        c.buf.append(s)
        budget.samples += 1


def _finish(c: _Collection, stop: str, seconds: float) -> CollectResult:
    """The run's summary (the paper's Table 3 row and this invocation's numbers), recorded."""
    plan = c.plan
    summary = table3(c.store)
    summary.update({"new_samples": c.new, "seconds": round(seconds, 3),
                    "samples_per_second": round(c.new / seconds, 2) if seconds > 0 else None,
                    "failed_calls": c.failures, "stop": stop, "provider": plan["provider"], "mode": plan["mode"],
                    "protocol": plan["protocol"], "agent": c.agent.name, "model": c.model or "surrogate",
                    "positions_given_up": len(c.given_up), "rate_limited": c.throttled})
    if c.surrogate:
        summary["note"] = SURROGATE_NOTE
    if hasattr(c.proto, "summary"):        # adaptive: the stopping rule's verdict (collector/adaptive.py)
        summary["adaptive"] = ad = c.proto.summary()
        if stop == "plan complete":
            summary["stop"] = ("every fitted state within the target SE" if ad["target_met"]
                               else "the allocation plans no further sample")
    c.store.set_stage_result("collect", summary)
    c.store.log_event("collect", "end", {k: summary[k] for k in ("samples", "new_samples", "failed_calls", "stop")})
    return CollectResult(Path(c.cfg.run), summary, c.new, seconds, c.failures, summary["stop"])


def _check_failing(cfg, consecutive: int, last: str):
    if consecutive >= cfg.max_consecutive_failures:
        raise InputError(f"the model failed {consecutive} calls in a row; last error: {last}"[:400]
                         + " (stored samples are kept; fix the provider and rerun with --resume)")




def _next_tasks(c: _Collection, batch: int, n_inflight: int) -> list:
    """The next batch to submit now, or [] (the plan or a budget says no more now, or the pacer holds the
    batch until its time: ``c.held``). The cost cap counts the calls in flight at their worst case."""
    if c.held is not None:
        tasks, at = c.held
        if time.monotonic() < at:
            return []
        c.held = None
        return tasks
    room = min(c.budget.room(n_inflight), c.spend.may_start(batch))
    if room <= 0:
        return []
    tasks = [t for t in c.proto.take(min(batch, room)) if t.uid not in c.given_up]
    if tasks and c.pacer is not None:
        per = c.prompt_est + int(c.call["max_tokens_per_call"] or 0)
        wait = max(c.pacer.delay(per) for _ in tasks)
        if wait > 0:
            c.held = (tasks, time.monotonic() + wait)
            return []
    return tasks


def _account(c: _Collection, r: dict) -> None:
    """One model call's result in the limits: its cost in the cap, its tokens in the pacer, its 429s
    counted (each pushes the pacer's next start back; the client backs off before retrying)."""
    c.spend.finished(r.get("cost") or 0.0)
    tin = int(r.get("tokens_in") or 0)
    if tin > c.prompt_est:        # a longer prompt than estimated: later calls are booked at it
        c.prompt_est = tin
        c.spend.per_call = max(c.spend.per_call, calls.worst_call(c.model, c.call, tin))
    n429 = int(r.get("throttled") or 0)
    c.throttled += n429
    if c.pacer is not None:
        per = c.prompt_est + int(c.call["max_tokens_per_call"] or 0)
        c.pacer.used(per, tin + int(r.get("tokens_out") or 0))
        for _ in range(n429):
            c.pacer.throttle()
