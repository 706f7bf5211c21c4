"""The one search loop: model calls and evaluations kept in flight over the programs database.

With no round barrier (``loop: async``, the default), or round by round (``loop: lockstep``, an
ordered mode of the same loop).

Operators (named as in the code): ``search.offspring`` makes a GP or term-operator child in this
thread; ``LLMProposer`` (proposers.py) prompts a model through ``ModelCaller`` (at most
``llm.concurrency`` calls in flight) and turns the reply into a candidate (``finish``: extract,
allowlist); ``search.evaluate`` scores GP children (score cache, in-process, the worker pool or the
Ray evaluators); ``search.score_model`` scores model-written code (the sandbox evaluator, or the
cache); the database's ``parents``, ``register``, ``migrate``, ``reset``, ``record`` and
``checkpoint`` keep the islands. In pseudo-code::

    db.populate(initial random trees, scored)                  # round 0
    until every island has made rounds x offspring children and all are registered:
        for each finished model call:    cand = finish(reply); sandbox(cand) unless db.cached
        async, remote models:            register every finished LLM child, in finishing order
        tick, for each island i, up to offspring children:
            with the island's mix ratio: parents = db.parents(i, llm.parents); queue a model call
                (async: an island with cap LLM children outstanding stops, or, ordered, waits
                for its oldest one; cap = ceil(2 x concurrency / islands))
            else:                        child = offspring(i)  (term operator or GP variation)
        evaluate(the tick's GP children)
        async:     register(GP children); send queued calls while fewer than concurrency are out
        lockstep:  send every call; wait for all; register(GP + LLM children of the round)
        every islands x offspring registered children, round R += 1:
            db.migrate(R); evaluate + register(db.reset(R)); db.record(R); checkpoint when due

Clocks: migration, resets and checkpoints run on one global clock, round R = (children applied) //
(islands x offspring) -- the same number of children as R lockstep rounds. A candidate's ``round``
is its island's own clock (its children so far // offspring + 1).

Order of results. Remote models (async): an LLM child is applied when its score arrives;
``meta.applied`` of its stored row is the number of children applied before it (the order is
recorded, not reproducible). GP-only and local-model runs (``ordered``): LLM children are applied
only in submission order and only at fixed points (when an island reaches its cap, and at the end),
and the local model gets a seed per call (from the uid), so a seeded run repeats bit for bit
whatever the timing. Lockstep applies a round's children together, in uid order. A GP-only async
run makes exactly the lockstep run's candidates (other uids: the loop is part of the search id).

Kill and resume: every applied child is stored before the checkpoint that covers it. An async
checkpoint holds the LLM children outstanding at that moment (their parents too); a lockstep one
has none. On ``--resume`` each is reloaded from the store if its row exists (a stored score is first
recomputed in the sandbox and compared: ``resume.stored_children``), else its call is RE-ISSUED (a
call in flight at the kill is paid twice, never lost); children made after the checkpoint are made
again under the same uids and ``INSERT OR IGNORE`` keeps the rows already stored.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field

from potsearch.core.errors import InputError
from potsearch.search import resume
from potsearch.search.proposers import LLMProposer

LOCKSTEP_CALLS = 8   # model calls in flight at most in the lockstep mode



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


class SearchLoop:
    def __init__(self, search, log=None, ray_address: str | None = None, ray_timeout: float | None = None):
        self.s = search
        self.db = search.db
        self.ray_address = ray_address   # None: this machine; "local" or an address: Ray actors
        self.ray_timeout = ray_timeout   # seconds to join the cluster (core/raycluster.py)
        cfg = self.cfg = search.cfg
        self.log = log or (lambda msg: None)
        self.lockstep = cfg.loop == "lockstep"
        self.I, self.O = cfg.islands, cfg.offspring
        self.quota = cfg.rounds * cfg.offspring
        self.llm = search.llm
        self.limit = min(LOCKSTEP_CALLS, cfg.llm_concurrency) if self.lockstep else cfg.llm_concurrency
        self.cap = math.inf if self.lockstep else max(1, math.ceil(2 * self.limit / self.I))
        # GP-only and local-model runs apply results in submission order at fixed points (reproducible);
        # with llm.when_busy: gp no island ever waits, so results are applied as they arrive (recorded)
        self.ordered = self.lockstep or self.llm is None or (all(m == "local" for m in cfg.llm.models)
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
        self._ray_owned = False
        self._finished_order: list[int] = []

    # ------------------------------------------------------------------ checkpoint state
    def _extra(self) -> dict | None:
        if self.lockstep:   # between rounds nothing is outstanding: the round is the whole state
            return None
        return {"loop": "async", "made": list(self.made), "applied": self.applied, "clock": self.clock,
                "seq": self.seq, "pending_llm": list(self.pending_llm),
                "jobs": [{"seq": j.seq, "uid": j.uid, "island": j.island, "rnd": j.rnd, "model": j.model,
                          "parents": [p.to_state() for p in j.parents]} for j in sorted(self.jobs.values(),
                                                                                       key=lambda j: j.seq)]}

    def _restore_extra(self, ex: dict | None) -> None:
        """The loop's state from the checkpoint (checked by checkpoint.decode and resume.restored_state:
        the job parents are candidates whose scores were recomputed)."""
        if self.lockstep:
            r = self.db.round
            self.made, self.applied, self.clock = [r * self.O] * self.I, r * self.I * self.O, r
            return
        if not ex or ex.get("loop") != "async":
            raise InputError("the run's evolve checkpoint was made by the lockstep loop; resume with "
                             "loop: lockstep", str(self.s.problem.run_dir))
        self.made, self.applied, self.clock, self.seq = list(ex["made"]), ex["applied"], ex["clock"], ex["seq"]
        self.pending_llm = list(ex["pending_llm"])
        stored = resume.stored_children(self.s, ex["jobs"])
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
        """Move finished calls on (reply -> candidate -> sandbox) and mark finished jobs done."""
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
                job.prog = self.proposer.finish(self.db.counters, job, rep)
                if job.prog.meta.pop("needs_score", False):
                    if self.db.cached(job.prog.canonical) is None:
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

        self._ray_owned = init_ray(self.ray_address, self.ray_timeout)
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
        src, payload, at_params = self.s.model_job(prog)
        if self.ray_address is not None:
            keys = ("source", "seed") + (("p0", "fit", "key") if at_params else ())
            return self.evaluator.submit(src, {k: payload[k] for k in keys}, base="llm")
        return self.evaluator.submit(src, payload)

    def _remote_gp(self, src: str, p0, seed: int):
        """A GP child scored by the Ray evaluator actors (a future of its sandbox result)."""
        return self.evaluator.submit(src, {"source": src, "p0": p0, "seed": seed}, base="gp")

    def _outcome(self, job: Job):
        """Final scores of a done job's candidate (the cache is looked up now: it only grows)."""
        c, p = self.db.counters, job.prog
        if job.reloaded:  # stored before the kill: its call was counted in counters that the checkpoint lost
            c["llm_calls"] += 1
            c["tokens"] += p.tokens
            c["cost"] += p.cost
            return p
        if p.canonical and p.error is None and p.train_action is None:
            res, err = None, None
            if job.score is not None:
                try:
                    res = job.score.result()
                except Exception as exc:
                    err = f"sandbox: {type(exc).__name__}: {exc}"
            self.s.score_model(p, res, err)
        return p

    def _apply_jobs(self, jobs: list[Job]) -> None:
        """Async: register finished LLM children one by one (each merged into its island in turn)."""
        for job in jobs:
            p = self._outcome(job)
            p.meta["applied"] = self.applied
            self._forget(job)
            self.db.register([p])

    def _forget(self, job: Job) -> None:
        self.applied += 1
        self.out[job.island] -= 1
        del self.jobs[job.seq]

    def _apply_ready(self) -> int:
        """Remote models: every finished LLM child, in the order they finished."""
        if self.ordered or not self._finished_order:
            return 0
        seqs, self._finished_order = self._finished_order, []
        jobs = [self.jobs[q] for q in seqs if q in self.jobs]
        self._apply_jobs(jobs)
        return len(jobs)

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
        """Every island makes up to ``offspring`` children; the GP ones are scored and registered (async)
        or wait for the round's LLM children (lockstep)."""
        s, cfg = self.s, self.cfg
        gp_children: list = []
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
                    job = Job(self.seq, uid, i, rnd, cfg.model_for(i), self.db.parents(i, cfg.llm.parents))
                    self.seq += 1
                    self.jobs[job.seq] = job
                    self.out[i] += 1
                    self.queue.append(job)
                    continue
                gp_children.append(s.offspring(i, uid, rnd))
        if gp_children:
            s.evaluate(gp_children, remote=self._remote_gp if self.ray_address is not None else None)
        if self.lockstep:
            self._settle_round(gp_children)
        elif gp_children:
            self.db.register(gp_children)
            self.applied += len(gp_children)
        return made

    def _settle_round(self, gp_children: list) -> None:
        """Lockstep: every LLM child of the round is called and scored, then the round's children are
        registered together in uid order."""
        jobs = [self.jobs[q] for q in sorted(self.jobs)]
        for job in jobs:
            self._wait_for(job)
        llm_children = [self._outcome(job) for job in jobs]
        for job in jobs:
            self._forget(job)
        self._finished_order = []
        new = gp_children + llm_children
        new.sort(key=lambda p: (p.island, int(p.uid.rsplit(":", 1)[1])))
        self.db.register(new)
        self.applied += len(gp_children)

    # ------------------------------------------------------------------ the global clock
    def _advance_clock(self, on_round) -> None:
        s, db = self.s, self.db
        while self.clock < self.applied // (self.I * self.O):
            self.clock += 1
            r = self.clock
            db.migrate(r)
            fresh = db.reset(r, lambda uid, i, rnd: s.fresh(uid, i, rnd, "gp:reset"))
            if fresh:
                s.evaluate(fresh)
                db.register(fresh, admit=False)
            db.record(r, [self.O] * self.I)
            stop = self.quota > 0 and db.convergence.exhausted(r)   # patience.py: no improvement for N rounds
            if stop:
                self.quota = 0   # no new children; model calls already out are finished and stored
                db.convergence.stopped = True
            if r % self.cfg.checkpoint_every == 0 or r == self.cfg.rounds or stop:
                self.checkpoint()
            if on_round:
                on_round(s)
            if stop:
                self.log(f"stopped at round {r}: {db.convergence.reason(r)['text']}")
                break

    # ------------------------------------------------------------------ driver
    def run(self, resume: bool = False, on_round=None) -> None:
        s, cfg = self.s, self.cfg
        random.seed(cfg.seed)
        if self.ray_address is not None:
            self._start_ray()
        resumed, extra = s.restore() if resume else (False, None)
        if resume and not resumed:
            self.log("no evolve checkpoint in this run: starting a new search")
        if resumed:
            self._restore_extra(extra)
            if self.db.round < cfg.rounds and self.db.convergence.exhausted(self.db.round):
                self.quota = 0
                self.db.convergence.stopped = True
                self.log(f"the search had converged at round {self.db.round} "
                         f"({self.db.convergence.reason(self.db.round)['text']}): raise --patience, or --patience 0, "
                         f"to search on")
        else:
            s.initialise()
            self.checkpoint()
        event = {"round": self.db.round, "sid": s.sid, "rounds": cfg.rounds}
        if not self.lockstep:
            event.update(loop="async", concurrency=self.limit if self.llm is not None else 0)
        s.store.log_event("evolve", "resume" if resumed else "start", event)
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
            if not self.lockstep:
                self.checkpoint()
        finally:
            self.close()

    def stats(self) -> dict:
        """Calls in flight over time (time-weighted mean), for the summary and the benchmark."""
        if self.lockstep:
            return {"loop": "lockstep"}
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
        if self._ray_owned:
            import ray

            ray.shutdown()
