"""The asynchronous (steady-state) search: one controller keeps model calls and evaluations in flight,
with no round barrier (``loop: async``, the default; ``loop: lockstep`` is ``Search.run``).

The programs database is the ``Search`` (islands.py: populations, hall of fame, score cache, store,
checkpoints). Proposers (proposers.py) make GP offspring in this thread and LLM offspring through
``ModelCaller`` (at most ``llm.concurrency`` calls in flight); evaluators (evaluators.py) score GP
offspring in-process or in the worker pool and model-written code in the sandbox, from a thread.

The loop, repeated until every island has made its ``rounds x offspring`` children and all are applied:
  1. take finished model calls: the reply becomes a Program (extract, allowlist, cache); code that
     must be scored goes to the sandbox evaluator;
  2. apply finished LLM offspring to their islands (survivor selection, store, hall of fame);
  3. a tick: every island makes up to ``offspring`` children. A GP child is made now; an LLM child
     picks its parents now and joins the queue of model calls. An island with ``cap`` LLM children
     outstanding (cap = ceil(2 x concurrency / islands)) stops until one of them is applied: the mix
     ratio holds, and no island waits for a reply it does not need;
  4. the tick's GP children are scored as one batch and applied;
  5. queued calls are sent while fewer than ``llm.concurrency`` are in flight.

Clocks: migration, resets and checkpoints run on one global clock, round R = (children applied) //
(islands x offspring) — the same number of children as R lockstep rounds. A candidate's ``round`` is
its island's own clock (its children so far // offspring + 1).

Order of results. Remote models: an LLM child is applied when its score arrives; ``meta.applied``
of its stored row is the number of children applied before it (the order is recorded, not
reproducible). GP-only and local-model runs (``ordered``): LLM children are applied only in
submission order and only at fixed points (when an island reaches its cap, and at the end), and
the local model gets a seed per call (from the uid), so a seeded run repeats bit for bit whatever the
timing. A GP-only async run makes exactly the lockstep run's candidates (other uids: the loop is part
of the search id).

Kill and resume: every applied child is stored before the checkpoint that covers it. A checkpoint
holds the LLM children outstanding at that moment (their parents too). On ``--resume`` each is
reloaded from the store if its row exists (a stored score is first recomputed in the sandbox and
compared: ``Search.stored_programs``), else its call is RE-ISSUED (a call in flight at the kill
is paid twice, never lost); children made after the checkpoint are made again under the same uids
and ``INSERT OR IGNORE`` keeps the rows already stored.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from deap import tools

from potsearch.search.proposers import LLMProposer, gp_child


@dataclass
class Job:
    """An LLM child in progress: queued -> calling -> (scoring) -> done -> applied."""

    seq: int
    uid: str
    island: int
    rnd: int
    model: str
    parents: list
    call: object = None
    score: object = None
    prog: object = None
    done: bool = False
    reloaded: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def parent_uids(self) -> list:
        return [p.uid for p in self.parents]


class AsyncController:
    def __init__(self, search, log=None, ray_address: str | None = None):
        self.s = search
        self.ray_address = ray_address   # None: this machine; "local" or an address: Ray actors
        cfg = self.cfg = search.cfg
        self.log = log or (lambda msg: None)
        self.I, self.O = cfg.islands, cfg.offspring
        self.quota = cfg.rounds * cfg.offspring
        self.llm = search.llm
        self.limit = cfg.llm_concurrency
        self.cap = max(1, math.ceil(2 * self.limit / self.I))
        # GP-only and local-model runs apply results in submission order at fixed points (reproducible);
        # with llm.when_busy: gp no island ever waits, so results are applied as they arrive (recorded)
        self.ordered = self.llm is None or (all(m == "local" for m in cfg.llm.models)
                                            and cfg.llm.when_busy == "wait")
        self.proposer = LLMProposer(self.llm, cfg) if self.llm is not None else None
        self.evaluator = None
        self.made = [0] * self.I
        self.out = [0] * self.I           # LLM children outstanding per island
        self.pending_llm = [False] * self.I
        self.applied = 0
        self.clock = 0
        self.seq = 0
        self.jobs: dict[int, Job] = {}
        self.queue: deque = deque()
        self.calling = 0
        self.samples: list[tuple[float, int, int]] = []   # (seconds, calls in flight, calls queued)
        self._wake = threading.Event()
        self._t0 = time.monotonic()
        self._finished_order: list[int] = []

    # ------------------------------------------------------------------ checkpoint state
    def _extra(self) -> dict:
        return {"loop": "async", "made": list(self.made), "applied": self.applied, "clock": self.clock,
                "seq": self.seq, "pending_llm": list(self.pending_llm),
                "jobs": [{"seq": j.seq, "uid": j.uid, "island": j.island, "rnd": j.rnd, "model": j.model,
                          "parents": [p.to_state() for p in j.parents]} for j in sorted(self.jobs.values(),
                                                                                       key=lambda j: j.seq)]}

    def _restore_extra(self, ex: dict | None) -> None:
        """The loop's state from the checkpoint (checked by checkpoint.decode and Search.restore: the job
        parents are Programs whose scores were recomputed)."""
        from potsearch.core.errors import InputError

        if not ex or ex.get("loop") != "async":
            raise InputError("the run's evolve checkpoint was made by the lockstep loop; resume with "
                             "loop: lockstep", str(self.s.problem.run_dir))
        self.made, self.applied, self.clock, self.seq = list(ex["made"]), ex["applied"], ex["clock"], ex["seq"]
        self.pending_llm = list(ex["pending_llm"])
        stored = self.s.stored_programs(ex["jobs"])
        reissued = 0
        for d in ex["jobs"]:
            job = Job(d["seq"], d["uid"], d["island"], d["rnd"], d["model"], list(d["parents"]))
            self.jobs[job.seq] = job
            self.out[job.island] += 1
            if job.uid in stored:
                job.prog, job.done, job.reloaded = stored[job.uid], True, True
                self._finished_order.append(job.seq)
            else:
                self.queue.append(job)
                reissued += 1
        self.s.store.log_event("evolve", "resume-calls", {"reloaded": len(ex["jobs"]) - reissued,
                                                           "reissued": reissued})

    def checkpoint(self) -> None:
        self.s.checkpoint(extra=self._extra())

    # ------------------------------------------------------------------ model calls
    def _dispatch(self) -> None:
        while self.queue and self.calling < self.limit:
            job = self.queue.popleft()
            job.call = self.proposer.submit(job.model, job.parents, job.uid)
            self.calling += 1
            job.call.add_done_callback(lambda _f: self._wake.set())
        if self.proposer is not None:
            self.samples.append((time.monotonic() - self._t0, self.calling, len(self.queue)))

    def _poll(self) -> None:
        """Move finished calls on (reply -> Program -> sandbox) and mark finished jobs done."""
        for job in sorted(self.jobs.values(), key=lambda j: j.seq):
            if job.done:
                continue
            if job.prog is None and job.call is not None and job.call.done():
                self.calling -= 1
                try:
                    rep = job.call.result()
                except BaseException as exc:  # cancelled at close, or a bug in the caller
                    rep = {"text": None, "tokens": 0, "cost": 0.0, "seconds": 0.0,
                           "error": f"llm: {type(exc).__name__}: {exc}"[:500]}
                job.prog = self.proposer.finish(self.s, job, rep)
                if job.prog.meta.pop("needs_score", False):
                    if self.s.cache.get(job.prog.canonical) is None:
                        job.score = self._score_llm(job.prog)
                        job.score.add_done_callback(lambda _f: self._wake.set())
                    else:
                        job.meta["cache"] = True
                else:
                    job.done = True
            if job.prog is not None and not job.done and (job.score is None or job.score.done()):
                job.done = True
            if job.done:
                self._finished_order.append(job.seq)

    # ------------------------------------------------------------------ evaluators
    def _start_ray(self) -> None:
        import ray

        from potsearch.search.evaluators import RayEvaluator, init_ray, ray_classes

        self._ray_owned = init_ray(self.ray_address)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        sb = self.cfg.sandbox
        bases = {"gp": self.s.problem.data.payload()}
        if self.llm is not None:
            bases["llm"] = self.llm.payload
        self.evaluator = RayEvaluator(bases, actors=max(1, cpus), workers=1, cpu_seconds=sb.cpu_seconds,
                                      memory_mb=sb.memory_mb, wall_timeout=sb.wall_timeout)
        if self.proposer is not None:
            self.proposer.caller.actor = ray_classes()["caller"].options(max_concurrency=max(2, self.limit)).remote(
                self.cfg.llm)
        self.s.store.log_event("evolve", "ray", {"address": self.ray_address, "cpus": cpus,
                                                 "evaluator_actors": len(self.evaluator.actors)})

    def _score_llm(self, prog):
        if self.evaluator is None:
            from potsearch.search.evaluators import SandboxEvaluator

            self.evaluator = SandboxEvaluator(self.llm.pool, self.cfg.sandbox.wall_timeout)
        src, payload, at_params = self.proposer.sandbox_job(self.s, prog)
        if self.ray_address is not None:
            keys = ("source", "seed") + (("p0", "fit", "key") if at_params else ())
            return self.evaluator.submit(src, {k: payload[k] for k in keys}, base="llm")
        return self.evaluator.submit(src, payload)

    def _evaluate_gp(self, progs: list) -> None:
        """GP children: ``Search.evaluate`` here, or the Ray evaluator actors (same cache rules)."""
        if self.ray_address is None:
            self.s.evaluate(progs)
            return
        s, c = self.s, self.s.counters
        todo, first, later = [], set(), []
        for p in progs:
            hit = s.cache.get(p.canonical)
            if hit is not None:
                s._apply(p, hit, True)
                c["cache_hits"] += 1
            elif p.canonical in first:
                later.append(p)
            else:
                first.add(p.canonical)
                todo.append(p)
        jobs = [s.own_job(p) for p in todo]
        # a check of a stored claim (resume) is one evaluation of our own source: made here
        checks = [k for k, (claim, _) in enumerate(jobs) if claim is not None]
        checked = dict(zip(checks, s._score_own([jobs[k][1] for k in checks])))
        futs = {k: self.evaluator.submit(p.source, {"source": p.source, "p0": a[1], "seed": a[2]}, base="gp")
                for k, (p, (claim, a)) in enumerate(zip(todo, jobs)) if claim is None}
        for k, (p, (claim, a)) in enumerate(zip(todo, jobs)):
            if claim is not None:
                s.own_result(p, checked[k], claim, a)
                continue
            r = futs[k].result()
            res = r.value if r.ok and isinstance(r.value, dict) else {"error": r.error or "sandbox: no result",
                                                                      "params": None}
            s.own_result(p, res, None, a)
        for p in later:
            s._apply(p, s.cache[p.canonical], True)
            c["cache_hits"] += 1

    def _outcome(self, job: Job):
        """Final scores of a done job's Program (cache looked up now: the cache only grows)."""
        s, c, p = self.s, self.s.counters, job.prog
        if job.reloaded:  # stored before the kill: its call was counted in counters that the checkpoint lost
            c["llm_calls"] += 1
            c["tokens"] += p.tokens
            c["cost"] += p.cost
            return p
        if p.canonical and p.error is None and p.train_action is None:
            hit = s.cache.get(p.canonical)
            if hit is not None:
                s._apply(p, hit, True)
                c["cache_hits"] += 1
            else:
                try:
                    res = job.score.result()
                except Exception as exc:
                    res = None
                    err = f"sandbox: {type(exc).__name__}: {exc}"
                good = res is not None and res.ok and isinstance(res.value, dict)
                if s.model_result(p, res.value if good else None):   # re-validated a stored score: a cache hit
                    return p
                c["evaluations"] += 1
                if good:
                    val = res.value
                    s._apply(p, val, False)
                    p.eval_seconds = float(res.seconds)
                    if val.get("error") is None:
                        s.cache.setdefault(p.canonical, {k: val.get(k) for k in
                                                         ("params", "train_action", "heldout_action", "gap",
                                                          "complexity", "n_params", "error", "heldout_gap")})
                        c["llm_scored"] += 1
                    else:
                        c["llm_failed"] += 1
                else:
                    LLMProposer._fail(p, (res.error if res is not None else err) or "sandbox: no result", s)
                    c["llm_failed"] += 1
        return p

    def _apply_jobs(self, jobs: list[Job]) -> list:
        progs = []
        for job in jobs:
            p = self._outcome(job)
            p.meta["applied"] = self.applied
            self.s.pops[job.island] = self.s._survivors(self.s.pops[job.island], [p])
            self.applied += 1
            self.out[job.island] -= 1
            del self.jobs[job.seq]
            progs.append(p)
        if progs:
            self.s._store_programs(progs)
            self.s.hof.update([p for p in progs if p.ok])
        return progs

    def _apply_ready(self) -> int:
        """Remote models: every finished LLM child, in the order they finished."""
        if self.ordered or not self._finished_order:
            return 0
        seqs, self._finished_order = self._finished_order, []
        return len(self._apply_jobs([self.jobs[q] for q in seqs if q in self.jobs]))

    def _wait_for(self, job: Job) -> None:
        while not job.done:
            self._dispatch()
            self._poll()
            if not job.done:
                self._wake.wait(0.5)
                self._wake.clear()

    def _drain_oldest(self) -> None:
        """Ordered runs: apply the oldest outstanding LLM child (waiting for it)."""
        job = self.jobs[min(self.jobs)]
        self._wait_for(job)
        self._finished_order = [q for q in self._finished_order if q != job.seq]
        self._apply_jobs([job])

    # ------------------------------------------------------------------ one tick of proposals
    def _tick(self) -> int:
        s, cfg = self.s, self.cfg
        gp_children: list = []
        per_island: list[list] = [[] for _ in range(self.I)]
        made = 0
        for i in range(self.I):
            mix = cfg.mix_for(i) if self.llm is not None else 0.0
            for _ in range(self.O):
                if self.made[i] >= self.quota:
                    break
                if self.pending_llm[i]:  # drawn earlier, the island was at its cap
                    want = self.llm.budget_left()
                else:
                    want = mix > 0 and random.random() < mix and self.llm.budget_left()
                if want and self.out[i] >= self.cap and self.cfg.llm.when_busy == "gp":
                    want = False  # the model is busy: a GP child instead (mix becomes an upper bound)
                if want and self.out[i] >= self.cap:
                    if not self.ordered:
                        self.pending_llm[i] = True
                        break
                    while self.out[i] >= self.cap:
                        self._drain_oldest()
                self.pending_llm[i] = False
                n = self.made[i]
                rnd, k = n // self.O + 1, n % self.O
                uid = f"{s.sid}:{i}:{rnd}:{k}"
                self.made[i] += 1
                made += 1
                if want:
                    pop = s.pops[i]
                    parents = tools.selTournament(pop, min(cfg.llm.parents, len(pop)), min(cfg.tournament, len(pop)))
                    job = Job(self.seq, uid, i, rnd, cfg.model_for(i), parents)
                    self.seq += 1
                    self.jobs[job.seq] = job
                    self.out[i] += 1
                    self.queue.append(job)
                    continue
                child = gp_child(s, i, uid, rnd)
                gp_children.append(child)
                per_island[i].append(child)
        if gp_children:
            self._evaluate_gp(gp_children)
            for i in range(self.I):
                if per_island[i]:
                    s.pops[i] = s._survivors(s.pops[i], per_island[i])
            s._store_programs(gp_children)
            s.hof.update([p for p in gp_children if p.ok])
            self.applied += len(gp_children)
        return made

    # ------------------------------------------------------------------ the global clock
    def _advance_clock(self, on_round) -> None:
        s, cfg = self.s, self.cfg
        while self.clock < self.applied // (self.I * self.O):
            self.clock += 1
            r = s.round = self.clock
            if cfg.migrate_every and r % cfg.migrate_every == 0 and self.I > 1:
                tools.migRing(s.pops, cfg.migrants, selection=lambda pop, k: [p.clone() for p in tools.selBest(pop, k)],
                              replacement=tools.selWorst)
            if cfg.reset_every and r % cfg.reset_every == 0 and self.I > 1:
                s._reset(r)
            s._record(r, [self.O] * self.I)
            if r % cfg.checkpoint_every == 0 or r == cfg.rounds:
                self.checkpoint()
            if on_round:
                on_round(s)

    # ------------------------------------------------------------------ driver
    def run(self, resume: bool = False, on_round=None) -> None:
        s, cfg = self.s, self.cfg
        random.seed(cfg.seed)
        if self.ray_address is not None:
            self._start_ray()
        resumed = s.restore() if resume else False
        if resume and not resumed:
            self.log("no evolve checkpoint in this run: starting a new search")
        if resumed:
            self._restore_extra(s.restored_extra)
        else:
            s.initialise()
            self.checkpoint()
        s.store.log_event("evolve", "resume" if resumed else "start",
                          {"round": s.round, "sid": s.sid, "rounds": cfg.rounds, "loop": "async",
                           "concurrency": self.limit if self.llm is not None else 0})
        if on_round:
            on_round(s)
        try:
            while True:
                self._poll()
                applied = self._apply_ready()
                made = self._tick()
                self._dispatch()
                self._advance_clock(on_round)
                if all(m >= self.quota for m in self.made):
                    if not self.jobs:
                        break
                    if self.ordered:
                        self._drain_oldest()
                        self._advance_clock(on_round)
                        continue
                if made == 0 and applied == 0:
                    self._wake.wait(0.5)
                    self._wake.clear()
            self.checkpoint()
        finally:
            self.close()

    def stats(self) -> dict:
        """Calls in flight over time (time-weighted mean), for the summary and the benchmark."""
        out = {"loop": "async", "concurrency": self.limit if self.llm is not None else 0}
        if self.proposer is not None and len(self.proposer.caller.samples) > 1:
            sm = self.proposer.caller.samples
            area = sum((t1 - t0) * n for (t0, n), (t1, _) in zip(sm, sm[1:]))
            out["mean_in_flight"] = area / max(sm[-1][0] - sm[0][0], 1e-9)
            out["max_in_flight"] = max(n for _, n in sm)
        return out

    def close(self) -> None:
        if self.proposer is not None:
            self.proposer.close()
        if self.evaluator is not None:
            self.evaluator.close()
            if getattr(self.evaluator, "stats", None):
                self.s.store.log_event("evolve", "ray-evaluators", dict(self.evaluator.stats))
        if getattr(self, "_ray_owned", False):
            import ray

            ray.shutdown()
