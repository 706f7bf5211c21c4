"""The island search (DEAP): the search's operators and scoring around its programs database.

``Search`` owns what a search is made of: the configuration and problem, the GP primitive set and
toolbox, the term operator (terms_op.py), the LLM operator (llm_op.py), the search id, and the
programs database (database.py: populations, hall of fame, logbook, counters, score cache, store).
Its operators make candidates (``fresh``: a random tree; ``offspring``: a term-operator or GP
child) and score them:

  evaluate(cands)       GP trees and term laws: cache hits first, the rest in-process, in the
                        ``workers`` pool, or (``remote``) by the Ray evaluators; one path for both loops
  model_job(c)          the sandbox job of a model-written candidate (a check of a stored claim on resume)
  score_model(c, res)   its sandbox result (or the cache's score) applied: the one end of every LLM child

The loop that calls them is controller.py (one loop; ``loop: lockstep`` is its ordered mode).

Every child is a row of the store's ``candidates`` table with its parents, operator, model,
island, round, scores and error: the whole genealogy. Uids are ``<search id>:<island>:<round>:<k>``
where the search id hashes the config (minus rounds/workers) and the split, so a resumed search
re-creates the same uids and ``INSERT OR IGNORE`` never duplicates nor loses a row.

The checkpoint is a JSON document with a schema version (checkpoint.py: trees as token lists, term
laws as term lists, ``random.getstate()`` as lists), never a pickle: a store may come from someone
else, and loading it must not run code. On resume nothing stored is believed: the checkpoint's
programs are re-scored and compared with the numbers it holds (resume.py), and the ``candidates``
table's scores are claims, re-scored when their program comes up again (scorecache.py).
"""
from __future__ import annotations

import hashlib
import json
import math
import random
import time
import zlib

from potsearch.core.errors import InputError
from potsearch.law.scoring import ScoringData, score_source, use_data
from potsearch.search import checkpoint as ckpt
from potsearch.search import gp as gpmod
from potsearch.search import resume
from potsearch.search.candidate import Candidate, at_params_payload, cache_entry
from potsearch.search.config import SearchConfig
from potsearch.search.database import ProgramsDatabase
from potsearch.search.problem import Problem

CHECKPOINT_STAGE = "evolve"
SANDBOX_TASK = "potsearch.law.scoring:score_program"


def worker_init(data: ScoringData) -> None:
    use_data(data)


def worker_score(args) -> dict:
    return score_source(*args)


class Search:
    def __init__(self, cfg: SearchConfig, problem: Problem, store, llm=None, log=None):
        self.cfg = cfg
        self.problem = problem
        self.store = store
        self.llm = llm
        self.log = log or (lambda msg: None)
        feats = list(cfg.gp.features) or problem.usable
        unknown = [f for f in feats if f not in problem.features]
        if unknown:
            raise InputError(f"gp.features: unknown feature {unknown[0]!r} (features of the {problem.agent} "
                             f"agent: {', '.join(problem.features)})", cfg.source or None)
        self.features = feats
        self.pset = gpmod.make_pset(feats, cfg.gp.primitives)
        self.tb = gpmod.make_toolbox(self.pset, cfg.gp.max_height, cfg.gp.max_size, cfg.gp.init_min_depth,
                                     cfg.gp.init_max_depth)
        self.sid = self.search_id()
        self.pool = None
        self.terms = None
        self.db = ProgramsDatabase(cfg, store, self.sid, feats)
        if cfg.terms_mix > 0:
            from potsearch.search.terms_op import TermsOperator

            self.terms = self.db.terms = TermsOperator(self)
            self.terms.prepare()   # the linear sweep now, not while model calls are in flight (1-5 s)
        self.resumed = False
        self.loop_stats: dict = {}
        self.started = time.perf_counter()

    # ------------------------------------------------------------------ identity
    def search_id(self) -> str:
        d = self.cfg.to_dict()
        for k in ("rounds", "workers", "source", "checkpoint_every", "patience", "patience_tol"):
            d.pop(k, None)
        d.pop("sandbox", None)
        # the async loop names another search (lockstep ids unchanged); the call limit may change
        if d.pop("loop", "lockstep") != "lockstep":
            d["loop"] = "async"
        # how calls are made, paced and priced does not change which search this is
        for k in ("concurrency", "api_base", "rpm", "tpm", "prices", "allow_unpriced"):
            d["llm"].pop(k, None)
        if not d.get("terms_mix"):  # the term operator off: the id of a search made before it existed
            d.pop("terms_mix", None)
            d.pop("terms_max", None)
        d["features_used"] = self.features
        d["split"] = self.problem.split
        return "ev" + hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:8]

    # ------------------------------------------------------------------ what the outputs read
    @property
    def counters(self) -> dict:
        return self.db.counters

    @property
    def logbook(self):
        return self.db.logbook

    @property
    def round(self) -> int:
        return self.db.round

    def best(self) -> Candidate | None:
        return self.db.best()

    def status(self) -> dict:
        b = self.best()
        el = time.perf_counter() - self.started
        c = self.db.counters
        return {"round": self.db.round, "best": b.train_action if b else None, "gap": b.gap if b else None,
                "evals_per_s": c["evaluations"] / el if el > 0 else 0.0, "tokens": c["tokens"], "cost": c["cost"]}

    # ------------------------------------------------------------------ candidates
    def _from_tree(self, tree, uid, island, rnd, op, parents, scale=None) -> Candidate:
        src, p0 = gpmod.tree_source(tree)
        if scale is not None and math.isfinite(scale):
            p0[0] = float(scale)
        # generated GP source is already canonical (deterministic text): no ast round trip needed
        return Candidate(uid=uid, source=src, canonical=src, island=island, round=rnd,
                         operator=op, parents=parents, tree=tree, p0=p0)

    def fresh(self, uid: str, island: int, rnd: int, op: str = "gp:init") -> Candidate:
        """A random GP tree (initial populations, island resets)."""
        return self._from_tree(self.tb.tree(), uid, island, rnd, op, [])

    def offspring(self, island: int, uid: str, rnd: int) -> Candidate:
        """A non-LLM child: from the term operator with probability ``terms_mix`` (no draw when it is
        off), else GP variation of two tournament parents."""
        if self.terms is not None and random.random() < self.cfg.terms_mix:
            c = self.terms.child()
            return Candidate(uid=uid, source=c["source"], canonical=c["source"], island=island, round=rnd,
                             operator="terms", parents=c["parents"], p0=c["p0"], meta=c["meta"],
                             law=[list(t) for t in c["meta"]["terms"]])
        par = self.db.tree_parents(island, 2)
        if not par:
            return self.fresh(uid, island, rnd, "gp:new")
        tree, op = gpmod.vary(self.tb, par[0].tree, par[1].tree, self.cfg.gp.cx_prob)
        parents = [par[0].uid] + ([par[1].uid] if op == "gp:cx" else [])
        scale = par[0].params[0] if par[0].params else None
        return self._from_tree(tree, uid, island, rnd, op, parents, scale)

    def fit_seed(self, canonical: str) -> int:
        return (zlib.crc32(canonical.encode()) ^ (self.cfg.seed * 2654435761)) & 0x7FFFFFFF

    def initialise(self) -> None:
        """Round 0: ``population`` random trees per island, scored and registered."""
        pops = [[self.fresh(f"{self.sid}:{i}:0:{j}", i, 0) for j in range(self.cfg.population)]
                for i in range(self.cfg.islands)]
        self.evaluate([p for pop in pops for p in pop])
        self.db.populate(pops)
        self.db.record(0, [0] * self.cfg.islands)

    # ------------------------------------------------------------------ GP / term scoring
    def _hit(self, p: Candidate, entry: dict) -> None:
        p.apply(entry, True, self.cfg.gp.parsimony)
        self.db.counters["cache_hits"] += 1

    def _own_job(self, p: Candidate) -> tuple:
        """(claim, scoring args) of a GP / term candidate. When the store claims a score for its canonical
        source (resume), it is scored at the claim's parameters instead (``at_params_data``: the
        uninterrupted search had that score cached; one evaluation checks it), or, for a claimed failure,
        fitted from the claim's start parameters."""
        claim = self.db.cache.claim(p.canonical, "own")
        seed = self.fit_seed(p.canonical)
        if claim is None:
            return None, (p.source, p.p0, seed, False)
        if claim.numbers["error"] is None:
            return claim, (p.source, claim.numbers["params"] or [], seed, True)
        return claim, (p.source, claim.p0, seed, False)

    def _own_result(self, p: Candidate, res: dict, claim, args: tuple) -> None:
        """Record the computed score of a GP / term candidate (re-validating ``claim`` if any)."""
        cache = self.db.cache
        if claim is not None:
            cache.settle(claim, res)   # InputError when the store's score does not reproduce
            cache[p.canonical] = cache_entry(res, claim.p0)
            self._hit(p, cache[p.canonical])
            return
        cache[p.canonical] = cache_entry(res, args[1])
        p.apply(res, False, self.cfg.gp.parsimony)
        self.db.counters["evaluations"] += 1
        self.db.counters["eval_seconds"] += p.eval_seconds

    def evaluate(self, cands: list[Candidate], remote=None) -> None:
        """Score GP trees and term laws: cache hits first, then one evaluation per new canonical source
        (in order) in-process or in the worker pool, or by ``remote(source, p0, seed)`` -> a future of a
        sandbox result (the Ray evaluators; a check of a stored claim is still made here)."""
        todo: list[Candidate] = []
        first: set[str] = set()
        later: list[Candidate] = []
        for p in cands:
            hit = self.db.cached(p.canonical)
            if hit is not None:
                self._hit(p, hit)
            elif p.canonical in first:
                later.append(p)
            else:
                first.add(p.canonical)
                todo.append(p)
        jobs = [self._own_job(p) for p in todo]
        if remote is None:
            results = self.score_own([a for _, a in jobs])
        else:
            checks = [k for k, (claim, _) in enumerate(jobs) if claim is not None]
            checked = dict(zip(checks, self.score_own([jobs[k][1] for k in checks])))
            futs = {k: remote(p.source, a[1], a[2]) for k, (p, (claim, a)) in enumerate(zip(todo, jobs))
                    if claim is None}
            results = [checked[k] if k in checked else _value(futs[k].result()) for k in range(len(todo))]
        for p, (claim, a), res in zip(todo, jobs, results):
            self._own_result(p, res, claim, a)
        for p in later:
            self._hit(p, self.db.cache[p.canonical])

    def score_own(self, args: list[tuple]) -> list[dict]:
        """Scores of our own generated sources (source, p0, seed, at_params): in-process or in the worker pool."""
        if self.cfg.workers > 1 and len(args) > 1:
            if self.pool is None:
                import multiprocessing as mp

                self.pool = mp.get_context("fork").Pool(self.cfg.workers, initializer=worker_init,
                                                        initargs=(self.problem.data,))
            return self.pool.map(worker_score, args, chunksize=max(1, len(args) // (4 * self.cfg.workers)))
        return [score_source(*a, data=self.problem.data) for a in args]

    # ------------------------------------------------------------------ model-written scoring
    def model_check(self, p: Candidate, params=None) -> tuple:
        """(source, payload) of the sandbox job that scores a model-written candidate at its stored parameters."""
        job = dict(self.llm.payload, source=p.source, seed=self.fit_seed(p.canonical))
        return p.source, at_params_payload(job, (p.params if params is None else params) or [])

    def model_job(self, p: Candidate) -> tuple:
        """(source, sandbox payload, at_params) for a model-written candidate; a stored claim on its canonical
        source makes it a check of the claim at its parameters (``at_params_payload``), kept on the candidate."""
        job = dict(self.llm.payload, source=p.source, seed=self.fit_seed(p.canonical))
        p.claim = self.db.cache.claim(p.canonical, "model")
        if p.claim is None:
            return p.source, job, False
        return p.source, at_params_payload(job, p.claim.numbers["params"] or []), True

    def score_model(self, p: Candidate, res, error: str | None = None) -> None:
        """The end of every model-written candidate that passed the allowlist: the cache's score if its
        source has one now, else ``res`` (the sandbox's result of ``model_job``; None when the sandbox
        raised ``error``). A result that re-validates a stored claim is applied as the cache hit the
        uninterrupted search had (a claim that does not reproduce: InputError)."""
        c, cache, pars = self.db.counters, self.db.cache, self.cfg.gp.parsimony
        hit = self.db.cached(p.canonical)
        if hit is not None:
            self._hit(p, hit)
            return
        good = res is not None and res.ok and isinstance(res.value, dict)
        claim, p.claim = p.claim, None
        if claim is not None:
            if good:
                cache.settle(claim, res.value)
                self._hit(p, cache.setdefault(p.canonical, cache_entry(res.value, None)))
                return
            cache.drop_claim(p.canonical)
        c["evaluations"] += 1
        if not good:
            p.fail((res.error if res is not None else error) or "sandbox: no result", pars)
            c["llm_failed"] += 1
            return
        p.apply(res.value, False, pars)
        p.eval_seconds = float(res.seconds)
        if res.value.get("error") is None:
            cache.setdefault(p.canonical, cache_entry(res.value, None))
            c["llm_scored"] += 1
        else:
            c["llm_failed"] += 1

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, extra: dict | None = None) -> None:
        """Save the search as a JSON checkpoint (checkpoint.py): plain data with a schema version."""
        self.store.save_checkpoint(CHECKPOINT_STAGE, self.db.round, ckpt.encode(self.db.checkpoint(extra)))

    def restore(self) -> tuple[bool, dict | None]:
        """Continue from the newest checkpoint: (True, the loop's state) or (False, None) when there is none.
        Nothing in it runs and nothing in it is believed (resume.py): the document is checked key by key,
        every restored candidate is scored again and compared, and the store's other scores become claims.
        Any problem is one line (InputError); the search is then not started."""
        got = self.store.load_checkpoint(CHECKPOINT_STAGE)
        if got is None:
            return False, None
        where = str(self.problem.run_dir)
        state = ckpt.decode(got[1], where)
        if state["sid"] != self.sid:
            raise InputError("the run's evolve checkpoint was made with another configuration, seed or split "
                             "(only --rounds and --workers may change on --resume); run without --resume to start "
                             "a new search", where)
        try:
            pops, hof, extra = resume.restored_state(self, state)
        except ckpt.Malformed as exc:
            raise ckpt.refused(exc, where) from None
        self.db.cache.clear()
        self.db.load_claims()
        restored = [p for pop in pops for p in pop] + hof
        restored += [q for j in (extra or {}).get("jobs", ()) for q in j["parents"]]
        t0 = time.perf_counter()
        n_scored = resume.revalidate(self, restored)
        self.store.log_event("evolve", "resume-revalidated", {"programs": len(restored), "scored": n_scored,
                                                             "seconds": time.perf_counter() - t0,
                                                             "claims": len(self.db.cache.claims)})
        self.db.restore(state, pops, hof)
        self.resumed = True
        return True, extra

    def close(self) -> None:
        if self.resumed:   # what became of the store's claims
            c = self.db.cache
            self.store.log_event("evolve", "resume-claims", {"revalidated": c.revalidated, "dropped": c.dropped,
                                                              "unchecked": len(c.claims),
                                                              "seconds": round(c.check_seconds, 4)})
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()
            self.pool = None
        if self.llm is not None:
            self.llm.close()


def _value(r) -> dict:
    """A Ray evaluator's sandbox result as a score (its error when it gave none)."""
    return r.value if r.ok and isinstance(r.value, dict) else {"error": r.error or "sandbox: no result", "params": None}
