"""The collect driver: plans positions, keeps batches in flight, writes results, enforces budgets."""
from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from potsearch.core.errors import InputError
from potsearch.store import RunStore, Sample
from potsearch.store.rundir import RunDir
from potsearch.collector.config import Budget, CollectConfig, CollectResult, PLAN_KEYS
from potsearch.collector.protocols import CONSTRAINED_NOTE, SURROGATE_NOTE, Task, make_protocol, norm_protocol
from potsearch.collector.stats import _stored_samples, _stored_usage, table3
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


def collect(cfg: CollectConfig, on_batch: Callable | None = None, out=sys.stderr,
            after_write: Callable | None = None) -> CollectResult:
    """Run (or resume) a collection into ``cfg.run``. ``on_batch(runner_state)`` and ``after_write()``
    (called after each write to the store) are hooks for tests."""
    from potsearch.agents.registry import load_agent

    t_start = time.time()
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
        return _collect(cfg, agent, store, plan, model, on_batch, out, t_start, after_write)
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
        from potsearch.core.raycluster import connect  # deadline and advice (raycluster.py)

        connect(cfg.address, cfg.ray_timeout, **kw)
    else:
        # address="local": always a fresh local instance, never a stale cluster found on this machine
        ray.init(address="local", num_cpus=max(1, cfg.workers), **kw)
    return True


def _collect(cfg, agent, store, plan, model, on_batch, out, t_start, after_write=None) -> CollectResult:
    import ray

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
            from potsearch.llm.client import is_local

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

        from potsearch.core.progress import collect_progress

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


        def flush():
            nonlocal buf, last_flush, new
            if buf:
                new += store.add_samples(buf)
                buf = []
                if after_write is not None:
                    after_write()
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


