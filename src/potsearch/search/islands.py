"""The island search (DEAP): populations, rounds, migration, resets, cache, store, checkpoints.

One ROUND, on every island in turn (island 0, 1, ...):
  1. select parents by tournament (``tools.selTournament``, size ``tournament``);
  2. make ``offspring`` children: each comes from the LLM operator with the island's mix ratio
     (prompted with 2-4 parents), else from the term-structured operator with probability
     ``terms_mix`` (terms_op.py), else from GP variation (crossover or one mutation);
  3. evaluate the round's children of *all* islands as one batch (score cache by canonical source;
     GP children in-process or in ``workers`` processes, LLM children in the sandbox);
  4. keep the best ``population`` distinct programs of parents + children (selection score =
     train action + parsimony x complexity; a failed candidate scores +inf).
Then: every ``migrate_every`` rounds a ring migration (``tools.migRing``: each island's best
``migrants`` replace the next island's worst); every ``reset_every`` rounds the weakest
``reset_fraction`` of islands are re-seeded with the best program of a random surviving island
plus fresh random trees (FunSearch-style); every ``checkpoint_every`` rounds a checkpoint.
Round 0 is the random initial population.

Every child is a row of the store's ``candidates`` table with its parents, operator, model,
island, round, scores and error: the whole genealogy. Uids are ``<search id>:<island>:<round>:<k>``
where the search id hashes the config (minus rounds/workers) and the split, so a resumed search
re-creates the same uids and ``INSERT OR IGNORE`` never duplicates nor loses a row.

DEAP's creator classes are created once, at import (design notes section 5). The checkpoint is a
JSON document with a schema version (checkpoint.py: trees as token lists, term laws as term lists,
``random.getstate()`` as lists), never a pickle: a store may come from someone else, and loading it
must not run code. On resume nothing stored is believed: the checkpoint's programs are re-scored and
compared with the numbers it holds, and the ``candidates`` table's scores are claims, re-scored when
their program comes up again (scorecache.py).
"""
from __future__ import annotations

import ast
import hashlib
import json
import math
import random
import statistics
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
from deap import base, creator, tools

from potsearch.core.errors import InputError
from potsearch.search import checkpoint as ckpt
from potsearch.search import gp as gpmod
from potsearch.search.config import SearchConfig
from potsearch.search.problem import Problem
from potsearch.search.scorecache import ScoreCache, claim_of_row, mismatch, not_reproduced
from potsearch.law.scoring import ScoringData, score_source, use_data

if not hasattr(creator, "PotFitness"):
    creator.create("PotFitness", base.Fitness, weights=(-1.0,))

CHECKPOINT_STAGE = "evolve"
CHECKPOINT_VERSION = ckpt.VERSION
SANDBOX_TASK = "potsearch.law.scoring:score_program"
SCORE_KEYS = ("params", "train_action", "heldout_action", "gap", "complexity", "n_params", "error")


def canonical_source(src: str) -> str:
    """Whitespace/comment-insensitive form used as the cache key (ast.unparse of the parse)."""
    try:
        return ast.unparse(ast.parse(src))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return src.strip()


@dataclass(eq=False)
class Program:
    uid: str
    source: str
    canonical: str
    island: int
    round: int
    operator: str
    parents: list = field(default_factory=list)
    model: str | None = None
    tree: object = None            # gp.PrimitiveTree for GP programs, None for LLM programs
    law: list | None = None        # a term-structured law ([[kind, a, b, theta0], ...]) for terms programs
    p0: list | None = None         # starting parameters
    score_p0: list | None = None   # the start parameters its scores were fitted from (a cache hit's: the entry's)
    params: list | None = None     # fitted parameters
    train_action: float | None = None
    heldout_action: float | None = None
    gap: float | None = None
    complexity: int = 0
    n_params: int = 0
    eval_seconds: float = 0.0
    error: str | None = None
    tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        self.fitness = creator.PotFitness()

    def set_score(self, res: dict, parsimony: float) -> None:
        for k in SCORE_KEYS:
            setattr(self, k, res.get(k))
        self.complexity = int(self.complexity or 0)
        self.n_params = int(self.n_params or 0)
        self.derive_fitness(parsimony)

    def derive_fitness(self, parsimony: float) -> None:
        """Selection score = train action + parsimony x complexity (+inf for a failed program)."""
        ok = self.error is None and self.train_action is not None and math.isfinite(self.train_action)
        self.fitness.values = ((self.train_action + parsimony * self.complexity) if ok else math.inf,)

    def numbers(self) -> dict:
        """The scores as stored: what a recomputation must reproduce."""
        return {"params": self.params, "train_action": self.train_action, "heldout_action": self.heldout_action,
                "gap": self.gap, "complexity": self.complexity, "n_params": self.n_params, "error": self.error}

    @property
    def ok(self) -> bool:
        return self.error is None and self.train_action is not None

    def to_state(self) -> dict:
        """Plain data (the checkpoint's program, checkpoint.PROGRAM_KEYS); fitness is derived, not kept."""
        floats = lambda v: None if v is None else [float(x) for x in v]  # noqa: E731
        opt = lambda v: None if v is None else float(v)  # noqa: E731
        return {"uid": self.uid, "source": self.source, "canonical": self.canonical, "island": int(self.island),
                "round": int(self.round), "operator": self.operator, "parents": list(self.parents),
                "model": self.model, "p0": floats(self.p0), "params": floats(self.params),
                "score_p0": floats(self.score_p0), "train_action": opt(self.train_action),
                "heldout_action": opt(self.heldout_action), "gap": opt(self.gap), "complexity": int(self.complexity),
                "n_params": int(self.n_params), "error": self.error, "tokens": int(self.tokens or 0),
                "cost": float(self.cost or 0.0),
                "tree": gpmod.dump_tree(self.tree) if self.tree is not None else None,
                "law": [list(t) for t in self.law] if self.law is not None else None}

    @classmethod
    def from_state(cls, d: dict, pset) -> "Program":
        """The Program of ``to_state`` data (checked data only: ``Search.restore`` checks a checkpoint's)."""
        kw = {k: v for k, v in d.items() if k not in ("tree", "law")}
        p = cls(**kw)
        p.tree = gpmod.load_tree(d["tree"], pset) if d.get("tree") is not None else None
        p.law = [list(t) for t in d["law"]] if d.get("law") is not None else None
        return p

    def clone(self) -> "Program":
        p = Program.from_state(self.to_state(), _PSET_HOLDER["pset"])
        p.fitness.values = self.fitness.values
        return p

    def row(self, run_id: int) -> dict:
        meta = dict(self.meta)
        meta["cached"] = self.cached
        if self.p0 is not None:
            meta["p0"] = self.p0
        # canonical is stored only where it differs from the source (GP source is canonical as generated)
        can = None if self.canonical == self.source else self.canonical
        return {"uid": self.uid, "run_id": run_id, "canonical": can, "source": self.source,
                "params": json.dumps(self.params), "parents": json.dumps(self.parents), "operator": self.operator,
                "model": self.model, "island": self.island, "round": self.round, "train_action": self.train_action,
                "heldout_action": self.heldout_action, "gap": self.gap, "complexity": self.complexity,
                "n_params": self.n_params, "eval_seconds": self.eval_seconds, "error": self.error,
                "tokens": self.tokens, "cost": self.cost, "created": time.time(),
                "meta": json.dumps(meta, sort_keys=True)}


_PSET_HOLDER: dict = {}

# --------------------------------------------------------------------------- evaluation (GP fast path)
def at_params_payload(payload: dict, params) -> dict:
    """The sandbox payload (``score_program``) that scores a program at ``params`` (as ``at_params_data``)."""
    return dict(payload, p0=[float(v) for v in params], fit=dict(payload["fit"], starts=1, max_iter=0),
                key=f"{payload.get('key', '')}:at-params")


def _law_source(law: list) -> str:
    """The source of a term-structured law (terms.to_source; it does not depend on the fitted values)."""
    from potsearch.law import terms as T

    terms = [T.Term(*t) for t in law]
    theta0 = np.array([t.theta0 for t in terms if t.n_inner], float)
    return T.to_source(terms, T.TermsFit(np.zeros(len(terms)), theta0, math.nan, math.nan))[0]


def _worker_init(data: ScoringData) -> None:
    use_data(data)


def _worker_score(args) -> dict:
    return score_source(*args)


# --------------------------------------------------------------------------- the search
class Search:
    def __init__(self, cfg: SearchConfig, problem: Problem, store, llm=None, progress=None,
                 log=None):
        self.cfg = cfg
        self.problem = problem
        self.store = store
        self.llm = llm
        self.progress = progress
        self.log = log or (lambda msg: None)
        feats = list(cfg.gp.features) or problem.usable
        unknown = [f for f in feats if f not in problem.features]
        if unknown:
            raise InputError(f"gp.features: unknown feature {unknown[0]!r} (features of the {problem.agent} "
                             f"agent: {', '.join(problem.features)})", cfg.source or None)
        self.features = feats
        self.pset = gpmod.make_pset(feats, cfg.gp.primitives)
        _PSET_HOLDER["pset"] = self.pset
        self.tb = gpmod.make_toolbox(self.pset, cfg.gp.max_height, cfg.gp.max_size, cfg.gp.init_min_depth,
                                     cfg.gp.init_max_depth)
        self.sid = self.search_id()
        self.pops: list[list[Program]] = []
        self.hof = tools.HallOfFame(cfg.hall_of_fame, similar=lambda a, b: a.canonical == b.canonical)
        self.logbook = tools.Logbook()
        self.cache = ScoreCache()   # canonical -> scores computed here; the store's scores are claims (resume)
        self.round = -1
        self.counters = {"evaluations": 0, "cache_hits": 0, "candidates": 0, "failed": 0, "llm_calls": 0,
                         "llm_rejected": 0, "llm_failed": 0, "llm_scored": 0, "tokens": 0, "cost": 0.0,
                         "eval_seconds": 0.0}
        self._pool = None
        self.terms = None
        if cfg.terms_mix > 0:
            from potsearch.search.terms_op import TermsOperator

            self.terms = TermsOperator(self)
            self.terms.prepare()   # the linear sweep now, not while model calls are in flight (1-5 s)
        self.started = time.perf_counter()
        self.run_id = store.run_id()

    # ------------------------------------------------------------------ identity
    def search_id(self) -> str:
        d = self.cfg.to_dict()
        for k in ("rounds", "workers", "source", "checkpoint_every"):
            d.pop(k, None)
        d.pop("sandbox", None)
        # async loop hook: the loop names another search (lockstep ids unchanged); the call limit may change
        if d.pop("loop", "lockstep") != "lockstep":
            d["loop"] = "async"
        for k in ("concurrency", "api_base"):
            d["llm"].pop(k, None)
        if not d.get("terms_mix"):  # the term operator off: the id of a search made before it existed
            d.pop("terms_mix", None)
            d.pop("terms_max", None)
        d["features_used"] = self.features
        d["split"] = self.problem.split
        return "ev" + hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:8]

    # ------------------------------------------------------------------ programs
    def _from_tree(self, tree, uid, island, rnd, op, parents, scale=None) -> Program:
        src, p0 = gpmod.tree_source(tree)
        if scale is not None and math.isfinite(scale):
            p0[0] = float(scale)
        # generated GP source is already canonical (deterministic text): no ast round trip needed
        return Program(uid=uid, source=src, canonical=src, island=island, round=rnd,
                       operator=op, parents=parents, tree=tree, p0=p0)

    def offspring(self, island: int, uid: str, rnd: int) -> Program:
        """A non-LLM child: from the term operator with probability ``terms_mix`` (no draw when it is
        off), else GP variation of two tournament parents."""
        if self.terms is not None and random.random() < self.cfg.terms_mix:
            c = self.terms.child()
            return Program(uid=uid, source=c["source"], canonical=c["source"], island=island, round=rnd,
                           operator="terms", parents=c["parents"], p0=c["p0"], meta=c["meta"],
                           law=[list(t) for t in c["meta"]["terms"]])
        pop = self.pops[island]
        par = self._tree_parents(pop, 2)
        if not par:
            return self._random_program(uid, island, rnd, "gp:new")
        tree, op = gpmod.vary(self.tb, par[0].tree, par[1].tree, self.cfg.gp.cx_prob)
        parents = [par[0].uid] + ([par[1].uid] if op == "gp:cx" else [])
        scale = par[0].params[0] if par[0].params else None
        return self._from_tree(tree, uid, island, rnd, op, parents, scale)

    def _random_program(self, uid, island, rnd, op="gp:init") -> Program:
        return self._from_tree(self.tb.tree(), uid, island, rnd, op, [])

    def _fit_seed(self, canonical: str) -> int:
        return (zlib.crc32(canonical.encode()) ^ (self.cfg.seed * 2654435761)) & 0x7FFFFFFF

    # ------------------------------------------------------------------ evaluation
    def _apply(self, prog: Program, res: dict, cached: bool) -> None:
        prog.set_score(res, self.cfg.gp.parsimony)
        prog.cached = cached
        prog.eval_seconds = 0.0 if cached else float(res.get("eval_seconds") or 0.0)
        prog.score_p0 = res.get("p0") if cached else prog.p0
        if prog.tree is not None and prog.params:
            gpmod.set_constants(prog.tree, prog.params[1:])
        if res.get("heldout_gap") is not None:
            prog.meta["heldout_gap"] = res["heldout_gap"]

    @staticmethod
    def _entry(res: dict, p0) -> dict:
        """A cache entry of a computed score (``p0``: the start parameters it was fitted from)."""
        return {k: res.get(k) for k in SCORE_KEYS} | {"heldout_gap": res.get("heldout_gap"), "p0": p0}

    def own_job(self, p: Program) -> tuple:
        """(claim, scoring args) of a GP / term program. When the store claims a score for its canonical
        source (resume), the program is scored at the claim's parameters instead (``at_params_data``: the
        uninterrupted search had that score cached; one evaluation checks it), or, for a claimed failure,
        fitted from the claim's start parameters."""
        claim = self.cache.claim(p.canonical, "own")
        seed = self._fit_seed(p.canonical)
        if claim is None:
            return None, (p.source, p.p0, seed, False)
        if claim.numbers["error"] is None:
            return claim, (p.source, claim.numbers["params"] or [], seed, True)
        return claim, (p.source, claim.p0, seed, False)

    def own_result(self, p: Program, res: dict, claim, args: tuple) -> None:
        """Record the computed score of a GP / term program (re-validating ``claim`` if any)."""
        if claim is not None:
            self.cache.settle(claim, res)   # InputError when the store's score does not reproduce
            self.cache[p.canonical] = self._entry(res, claim.p0)
            self._apply(p, self.cache[p.canonical], True)
            self.counters["cache_hits"] += 1
            return
        self.cache[p.canonical] = self._entry(res, args[1])
        self._apply(p, res, False)
        self.counters["evaluations"] += 1
        self.counters["eval_seconds"] += p.eval_seconds

    def model_job(self, p: Program, payload: dict) -> tuple:
        """(source, sandbox payload, at_params) for a model-written program; a stored claim on its canonical
        source makes it a check of the claim at its parameters (``at_params_payload``), kept on the program."""
        job = dict(payload, source=p.source, seed=self._fit_seed(p.canonical))
        claim = self.cache.claim(p.canonical, "model")
        p.claim = claim
        if claim is None:
            return p.source, job, False
        return p.source, at_params_payload(job, claim.numbers["params"] or []), True

    def model_result(self, p: Program, val: dict | None) -> bool:
        """The sandbox result ``val`` (None: the sandbox gave none) of a model-written program whose job
        checked a stored claim (``model_job``): compared (InputError when it does not reproduce) and applied
        as the cache hit the uninterrupted search had; returns True then. False when there was no claim,
        or the sandbox failed (the claim is dropped; the caller records the failure as for any program)."""
        claim = getattr(p, "claim", None)
        if claim is None:
            return False
        p.claim = None
        if val is None:
            self.cache.drop_claim(p.canonical)
            return False
        self.cache.settle(claim, val)
        entry = self.cache.setdefault(p.canonical, self._entry(val, None))
        self._apply(p, entry, True)
        self.counters["cache_hits"] += 1
        return True

    def evaluate(self, progs: list[Program]) -> None:
        """Score GP programs: cache hits first, the rest in-process or in the worker pool (order kept)."""
        todo: list[Program] = []
        first: dict[str, Program] = {}
        later: list[Program] = []
        for p in progs:
            hit = self.cache.get(p.canonical)
            if hit is not None:
                self._apply(p, hit, True)
                self.counters["cache_hits"] += 1
            elif p.canonical in first:
                later.append(p)
            else:
                first[p.canonical] = p
                todo.append(p)
        jobs = [self.own_job(p) for p in todo]
        results = self._score_own([a for _, a in jobs])
        for p, (claim, a), res in zip(todo, jobs, results):
            self.own_result(p, res, claim, a)
        for p in later:
            self._apply(p, self.cache[p.canonical], True)
            self.counters["cache_hits"] += 1

    def _score_own(self, args: list[tuple]) -> list[dict]:
        """Scores of our own generated sources (source, p0, seed, at_params): in-process or in the worker pool."""
        if self.cfg.workers > 1 and len(args) > 1:
            return self._get_pool().map(_worker_score, args, chunksize=max(1, len(args) // (4 * self.cfg.workers)))
        return [score_source(*a, data=self.problem.data) for a in args]

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing as mp

            ctx = mp.get_context("fork")
            self._pool = ctx.Pool(self.cfg.workers, initializer=_worker_init, initargs=(self.problem.data,))
        return self._pool

    def close(self) -> None:
        if getattr(self, "restored_extra", False) is not False:   # a resumed search: what became of the claims
            c = self.cache
            self.store.log_event("evolve", "resume-claims", {"revalidated": c.revalidated, "dropped": c.dropped,
                                                              "unchecked": len(c.claims),
                                                              "seconds": round(c.check_seconds, 4)})
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        if self.llm is not None:
            self.llm.close()

    # ------------------------------------------------------------------ store
    def _store_programs(self, progs: list[Program]) -> None:
        if not progs:
            return
        self.store.candidates.add_many(p.row(self.run_id) for p in progs)
        self.counters["candidates"] += len(progs)
        self.counters["failed"] += sum(1 for p in progs if not p.ok)
        if self.terms is not None:
            self.terms.observe(progs)

    def _index_stored_scores(self) -> None:
        """This search's stored scores as claims (scorecache.py): seen by ``in``, never used unchecked."""
        for r in self.store.candidates.rows(valid_only=False, search_id=self.sid):
            got = claim_of_row(r)
            if got is not None and got[0] not in self.cache:
                self.cache.claims[got[0]] = got[1]

    # ------------------------------------------------------------------ selection helpers
    def _tree_parents(self, pop: list[Program], k: int) -> list[Program]:
        trees = [p for p in pop if p.tree is not None]
        if not trees:
            return []
        return tools.selTournament(trees, k, min(self.cfg.tournament, len(trees)))

    def _survivors(self, pop: list[Program], children: list[Program]) -> list[Program]:
        seen: set[str] = set()
        merged = []
        for p in pop + children:
            if p.canonical in seen:
                continue
            seen.add(p.canonical)
            merged.append(p)
        merged.sort(key=lambda p: p.fitness.values[0])  # stable: older programs win ties
        out = merged[: self.cfg.population]
        while len(out) < self.cfg.population:  # too few distinct programs: keep duplicates
            out.append(pop[len(out) % len(pop)] if pop else children[0])
        return out

    # ------------------------------------------------------------------ rounds
    def initialise(self) -> None:
        progs = []
        self.pops = []
        for i in range(self.cfg.islands):
            pop = [self._random_program(f"{self.sid}:{i}:0:{j}", i, 0) for j in range(self.cfg.population)]
            self.pops.append(pop)
            progs.extend(pop)
        self.evaluate(progs)
        self._store_programs(progs)
        self.hof.update([p for p in progs if p.ok])
        self.round = 0
        self._record(0, [0] * self.cfg.islands)

    def step(self, rnd: int) -> None:
        cfg = self.cfg
        gp_children: list[Program] = []
        llm_jobs: list[tuple] = []
        per_island: list[list[Program]] = [[] for _ in range(cfg.islands)]
        for i, pop in enumerate(self.pops):
            mix = cfg.mix_for(i) if self.llm is not None else 0.0
            for j in range(cfg.offspring):
                uid = f"{self.sid}:{i}:{rnd}:{j}"
                if mix > 0 and random.random() < mix and self.llm.budget_left():
                    k = min(cfg.llm.parents, len(pop))
                    parents = tools.selTournament(pop, k, min(cfg.tournament, len(pop)))
                    llm_jobs.append((i, uid, parents))
                    continue
                child = self.offspring(i, uid, rnd)
                gp_children.append(child)
                per_island[i].append(child)
        self.evaluate(gp_children)
        llm_children: list[Program] = []
        if llm_jobs:
            llm_children = self.llm.run_jobs(self, llm_jobs, rnd)
            for p in llm_children:
                per_island[p.island].append(p)
        new = gp_children + llm_children
        new.sort(key=lambda p: (p.island, int(p.uid.rsplit(":", 1)[1])))
        for i in range(cfg.islands):
            self.pops[i] = self._survivors(self.pops[i], per_island[i])
        self._store_programs(new)
        self.hof.update([p for p in new if p.ok])
        self.round = rnd
        if cfg.migrate_every and rnd % cfg.migrate_every == 0 and cfg.islands > 1:
            tools.migRing(self.pops, cfg.migrants, selection=lambda pop, k: [p.clone() for p in tools.selBest(pop, k)],
                          replacement=tools.selWorst)
        if cfg.reset_every and rnd % cfg.reset_every == 0 and cfg.islands > 1:
            self._reset(rnd)
        self._record(rnd, [len(x) for x in per_island])

    def _reset(self, rnd: int) -> None:
        cfg = self.cfg
        best = [min(p.fitness.values[0] for p in pop) for pop in self.pops]
        order = sorted(range(cfg.islands), key=lambda i: (best[i], i))
        n_reset = int(cfg.islands * cfg.reset_fraction)
        if n_reset <= 0:
            return
        keep, weak = order[: cfg.islands - n_reset], order[cfg.islands - n_reset:]
        progs = []
        for i in sorted(weak):
            donor = random.choice(keep)
            seed_prog = tools.selBest(self.pops[donor], 1)[0].clone()
            pop = [seed_prog] + [self._random_program(f"{self.sid}:{i}:{rnd}:r{j}", i, rnd, "gp:reset")
                                 for j in range(1, cfg.population)]
            progs.extend(pop[1:])
            self.pops[i] = pop
        self.evaluate(progs)
        self._store_programs(progs)
        self.hof.update([p for p in progs if p.ok])

    def _record(self, rnd: int, n_children: list[int]) -> None:
        best, median = [], []
        for pop in self.pops:
            vals = [p.train_action for p in pop if p.ok]
            best.append(min(vals) if vals else None)
            median.append(statistics.median(vals) if vals else None)
        self.logbook.record(round=rnd, best=best, median=median, children=sum(n_children),
                            evaluations=self.counters["evaluations"], cache_hits=self.counters["cache_hits"])

    # ------------------------------------------------------------------ results
    def best(self) -> Program | None:
        return self.hof[0] if len(self.hof) else None

    def status(self) -> dict:
        b = self.best()
        el = time.perf_counter() - self.started
        return {"round": self.round, "best": b.train_action if b else None, "gap": b.gap if b else None,
                "evals_per_s": self.counters["evaluations"] / el if el > 0 else 0.0,
                "tokens": self.counters["tokens"], "cost": self.counters["cost"]}

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, extra: dict | None = None) -> None:
        """Save the search as a JSON checkpoint (checkpoint.py): plain data with a schema version."""
        state = {
            "sid": self.sid, "round": self.round, "random": ckpt.random_state(random.getstate()),
            "pops": [[p.to_state() for p in pop] for pop in self.pops],
            "hof": [p.to_state() for p in self.hof], "logbook": [dict(r) for r in self.logbook],
            "counters": dict(self.counters), "features": list(self.features), "extra": extra,
            "terms": self.terms.state() if self.terms is not None else None,
        }
        self.store.save_checkpoint(CHECKPOINT_STAGE, self.round, ckpt.encode(state))

    def restore(self) -> bool:
        """Continue from the newest checkpoint. Nothing in it runs and nothing in it is believed: the
        document is checked key by key (``checkpoint.decode``; a pickle is refused, never loaded), GP
        trees and term laws must name this search's primitives and features and give the stored source,
        and every restored program is scored again at its stored parameters and compared with the numbers
        the checkpoint holds (``_revalidate``). The store's other scores become claims
        (``_index_stored_scores``). Any problem is one line (InputError); the search is then not started."""
        got = self.store.load_checkpoint(CHECKPOINT_STAGE)
        if got is None:
            return False
        where = str(self.problem.run_dir)
        state = ckpt.decode(got[1], where)
        if state["sid"] != self.sid:
            raise InputError("the run's evolve checkpoint was made with another configuration, seed or split "
                             "(only --rounds and --workers may change on --resume); run without --resume to start "
                             "a new search", where)
        try:
            pops, hof, extra, terms = self._restored_state(state)
        except ckpt.Malformed as exc:
            raise ckpt.refused(exc, where) from None
        self.cache.clear()
        self._index_stored_scores()
        restored = [p for pop in pops for p in pop] + hof
        restored += [q for j in (extra or {}).get("jobs", ()) for q in j["parents"]]
        t0 = time.perf_counter()
        n_scored = self._revalidate(restored)
        self.store.log_event("evolve", "resume-revalidated", {"programs": len(restored), "scored": n_scored,
                                                             "seconds": time.perf_counter() - t0,
                                                             "claims": len(self.cache.claims)})
        random.setstate(state["random"])     # checked by _restored_state
        self.pops = pops
        self.hof.clear()
        self.hof.update(hof)
        self.logbook = tools.Logbook()
        for r in state["logbook"]:
            self.logbook.record(**r)
        self.counters.update(state["counters"])
        self.round = int(state["round"])
        if self.terms is not None:
            self.terms.restore(terms)
        self.restored_extra = extra  # async loop hook: its island clocks and calls in flight (parents as Programs)
        return True

    def _restored_state(self, state: dict) -> tuple:
        """The checkpoint's populations, hall of fame, async state and term archive as this search's
        objects, after the checks only the search can make (checkpoint.Malformed otherwise)."""
        cfg = self.cfg
        try:
            random.Random().setstate(state["random"])
        except (ValueError, TypeError, OverflowError) as exc:
            raise ckpt.Malformed("random", f"not a random state ({exc})") from None
        if state["features"] != list(self.features):
            raise ckpt.Malformed("features", "not the features of this search")
        unknown = [k for k in state["counters"] if k not in self.counters]
        if unknown:
            raise ckpt.Malformed("counters", f"unknown counter {unknown[0]!r}")
        if len(state["pops"]) != cfg.islands:
            raise ckpt.Malformed("pops", f"{cfg.islands} populations expected, got {len(state['pops'])}")
        pops = []
        for i, pop in enumerate(state["pops"]):
            if not 1 <= len(pop) <= cfg.population:
                raise ckpt.Malformed(f"pops[{i}]", f"1 to {cfg.population} programs expected, got {len(pop)}")
            pops.append([self._restored_program(d, f"pops[{i}][{j}]") for j, d in enumerate(pop)])
        if len(state["hof"]) > cfg.hall_of_fame:
            raise ckpt.Malformed("hof", f"at most {cfg.hall_of_fame} programs expected, got {len(state['hof'])}")
        hof = [self._restored_program(d, f"hof[{i}]") for i, d in enumerate(state["hof"])]
        extra = state["extra"]
        if extra is not None and extra.get("loop") == "async":
            if len(extra["made"]) != cfg.islands or len(extra["pending_llm"]) != cfg.islands:
                raise ckpt.Malformed("extra", f"the async state of {cfg.islands} islands expected")
            if extra["jobs"] and self.llm is None:
                raise ckpt.Malformed("extra.jobs", "model calls in flight in a search without a model operator")
            jobs = []
            for k, j in enumerate(extra["jobs"]):
                path = f"extra.jobs[{k}]"
                if j["island"] >= cfg.islands or not j["uid"].startswith(f"{self.sid}:{j['island']}:"):
                    raise ckpt.Malformed(path, "not a candidate of this search")
                jobs.append(dict(j, parents=[self._restored_program(d, f"{path}.parents[{i}]")
                                             for i, d in enumerate(j["parents"])]))
            extra = dict(extra, jobs=jobs)
        terms = state["terms"]
        if terms is not None and self.terms is not None:
            for key, entries in terms.items():
                for i, e in enumerate(entries):
                    law = e if key == "_seeds" else e["terms"]
                    self._checked_law(law, f"terms.{key}[{i}]")
        return pops, hof, extra, terms

    def _restored_program(self, d: dict, path: str) -> Program:
        """A checkpoint's program (types already checked) as a Program, or checkpoint.Malformed: a GP tree
        must use this search's primitives and features and give the stored source, a term law likewise;
        a model-written program is text (it is only ever run in the sandbox)."""
        if d["island"] >= self.cfg.islands:
            raise ckpt.Malformed(f"{path}.island", f"{d['island']} is not an island of this search")
        if d["tree"] is not None:
            src = gpmod.tree_source(self._checked_tree(d["tree"], f"{path}.tree"))[0]
        elif d["law"] is not None:
            src = _law_source(self._checked_law(d["law"], f"{path}.law"))
        else:
            src = None
            if d["error"] is None and self.llm is None:
                raise ckpt.Malformed(path, "a model-written program in a search without a model operator")
            if d["error"] is None and d["canonical"] != canonical_source(d["source"]):
                raise ckpt.Malformed(f"{path}.canonical", "not the canonical form of its source")
        if src is not None and (d["source"] != src or d["canonical"] != src):
            raise ckpt.Malformed(f"{path}.source", "not the source its GP tree or term law gives")
        p = Program.from_state(d, self.pset)
        p.derive_fitness(self.cfg.gp.parsimony)
        return p

    def _checked_tree(self, data: list, path: str):
        """A GP tree's tokens checked against this search's primitive set (names, arities, one whole tree)."""
        need = 1
        for i, (kind, v) in enumerate(data):
            if need == 0:
                raise ckpt.Malformed(f"{path}[{i}]", "nodes after the end of the tree")
            if kind == "f":
                node = self.pset.mapping.get(v)
                if not isinstance(node, gpmod.gp.Primitive):
                    raise ckpt.Malformed(f"{path}[{i}]", f"unknown primitive {v!r}")
                need += node.arity - 1
            else:
                if kind == "x" and v not in self.pset.arguments:
                    raise ckpt.Malformed(f"{path}[{i}]", f"unknown feature {v!r}")
                need -= 1
        if need != 0:
            raise ckpt.Malformed(path, "an incomplete tree")
        return gpmod.load_tree(data, self.pset)

    def _checked_law(self, law: list, path: str) -> list:
        """A term law whose features are this search's (so its source is ours: terms.to_source)."""
        for i, (kind, a, b, _theta) in enumerate(law):
            binary = kind in ("prod", "ratio")
            if a not in self.features or (b not in self.features if binary else b != ""):
                raise ckpt.Malformed(f"{path}[{i}]", "a term of features this search does not have")
        return law

    def _revalidate(self, progs: list[Program]) -> int:
        """Check every restored program's numbers (one check per canonical source) and seed the cache with
        the computed scores; InputError naming the first program whose numbers do not reproduce.

        A scored program is scored again AT its stored parameters (``at_params_data``: one evaluation, no
        fit), so its train and held-out action must be the action its own parameters give, to 1e-9: a
        stored score can be a worse fit than potsearch finds, never better than the program is. A failed
        GP program or term law is fitted again from its start parameters and must fail again. GP trees and
        term laws run here, from the source our own code regenerated from them; model-written programs run
        in the sandbox; a failed model-written program is not run (it never enters the cache and ranks
        last). Returns the number of checks made."""
        groups: dict[str, list[Program]] = {}
        for p in progs:
            if p.tree is None and p.law is None and p.error is not None:
                continue
            groups.setdefault(p.canonical, []).append(p)
        reps = [ps[0] for ps in groups.values()]
        own = [p for p in reps if p.tree is not None or p.law is not None]
        model = [p for p in reps if p.tree is None and p.law is None]
        own_args = [(p.source, p.params or [], self._fit_seed(p.canonical), True) if p.error is None
                    else (p.source, p.score_p0, self._fit_seed(p.canonical), False) for p in own]
        results = list(zip(own, self._score_own(own_args)))
        if model:
            jobs = [self.model_check(p) for p in model]
            for p, r in zip(model, self.llm.pool.map(jobs, task=SANDBOX_TASK, timeout=self.cfg.sandbox.wall_timeout)):
                if not (r.ok and isinstance(r.value, dict)):
                    raise InputError(f"candidate {p.uid} of the evolve checkpoint could not be scored again to check "
                                     f"its stored score ({str(r.error)[:200]}); run --resume again (nothing was "
                                     f"changed)", str(self.problem.run_dir))
                results.append((p, r.value))
        for rep, res in results:
            for p in groups[rep.canonical]:
                why = mismatch(p.numbers(), res)
                if why is not None:
                    raise not_reproduced(p.uid, why)
            if rep.tree is not None or rep.law is not None or res.get("error") is None:
                self.cache[rep.canonical] = self._entry(res, rep.score_p0)
        return len(results)

    def model_check(self, p: Program, params=None) -> tuple:
        """(source, payload) of the sandbox job that scores a model-written program at its stored parameters."""
        job = dict(self.llm.payload, source=p.source, seed=self._fit_seed(p.canonical))
        return p.source, at_params_payload(job, (p.params if params is None else params) or [])

    def stored_programs(self, jobs: list[dict]) -> dict:
        """Async loop hook (resume): the calls in flight at the checkpoint whose child is already stored, as
        Programs. A stored score is re-scored in the sandbox and compared (InputError when it does not
        reproduce); a row that is not a usable outcome, or whose score the sandbox cannot recompute now, is
        left out (its call is made again; the stored row is kept)."""
        out, todo = {}, []
        for j in jobs:
            r = self.store.candidates.get(j["uid"])
            if r is None or r.uid != j["uid"] or not isinstance(r.source, str) or len(r.source) > ckpt.MAX_SOURCE:
                continue
            meta = dict(r.meta) if isinstance(r.meta, dict) else {}
            tokens = r.tokens if isinstance(r.tokens, int) and not isinstance(r.tokens, bool) else 0
            cost = float(r.cost) if isinstance(r.cost, (int, float)) and math.isfinite(r.cost) else 0.0
            p = Program(uid=j["uid"], source=r.source, canonical=r.canonical or r.source, island=j["island"],
                        round=j["rnd"], operator="llm", parents=[q.uid for q in j["parents"]], model=j["model"],
                        tokens=max(0, tokens), cost=max(0.0, cost), meta=meta)
            if r.error is not None:                      # a failed or rejected child: no score to believe
                p.set_score({"error": str(r.error)[:20_000]}, self.cfg.gp.parsimony)
                out[j["uid"]] = p
                continue
            got = claim_of_row(r, cached_too=True)
            if got is None or got[1].numbers["train_action"] is None:
                continue
            p.canonical = canonical_source(r.source)
            p.eval_seconds = float(r.eval_seconds) if isinstance(r.eval_seconds, (int, float)) else 0.0
            todo.append((p, got[1]))
        if todo:
            jobs_ = [self.model_check(p, claim.numbers["params"]) for p, claim in todo]
            for (p, claim), res in zip(todo, self.llm.pool.map(jobs_, task=SANDBOX_TASK,
                                                               timeout=self.cfg.sandbox.wall_timeout)):
                if not (res.ok and isinstance(res.value, dict)):
                    continue
                self.cache.settle(claim, res.value)        # InputError when the stored score does not reproduce
                p.set_score(claim.numbers, self.cfg.gp.parsimony)
                if res.value.get("error") is None:
                    self.cache.setdefault(p.canonical, self._entry(res.value, None))
                out[p.uid] = p
        return out

    # ------------------------------------------------------------------ driver
    def run(self, resume: bool = False, on_round=None) -> None:
        cfg = self.cfg
        random.seed(cfg.seed)
        resumed = self.restore() if resume else False
        if resume and not resumed:
            self.log("no evolve checkpoint in this run: starting a new search")
        if not resumed:
            self.initialise()
            self.checkpoint()
        self.store.log_event("evolve", "resume" if resumed else "start",
                             {"round": self.round, "sid": self.sid, "rounds": cfg.rounds})
        if on_round:
            on_round(self)
        for rnd in range(self.round + 1, cfg.rounds + 1):
            self.step(rnd)
            if rnd % cfg.checkpoint_every == 0 or rnd == cfg.rounds:
                self.checkpoint()
            if on_round:
                on_round(self)
