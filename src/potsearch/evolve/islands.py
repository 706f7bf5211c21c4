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

DEAP's creator classes are created once, at import (pickling trap, design notes section 5); the
checkpoint holds plain data only (trees as token lists, ``random.getstate()``), never creator
instances.
"""
from __future__ import annotations

import ast
import hashlib
import json
import math
import pickle
import random
import statistics
import time
import zlib
from dataclasses import dataclass, field

import numpy as np
from deap import base, creator, tools

from ..errors import InputError
from . import gp as gpmod
from .config import SearchConfig
from .problem import Problem
from .scoring import ScoringData, complexity_of, score_function

if not hasattr(creator, "PotFitness"):
    creator.create("PotFitness", base.Fitness, weights=(-1.0,))

CHECKPOINT_STAGE = "evolve"
CHECKPOINT_VERSION = 1
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
    p0: list | None = None         # starting parameters
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
        ok = self.error is None and self.train_action is not None and math.isfinite(self.train_action)
        self.fitness.values = ((self.train_action + parsimony * self.complexity) if ok else math.inf,)

    @property
    def ok(self) -> bool:
        return self.error is None and self.train_action is not None

    def to_state(self) -> dict:
        d = {k: getattr(self, k) for k in ("uid", "source", "canonical", "island", "round", "operator", "parents",
                                           "model", "p0", "params", "train_action", "heldout_action", "gap",
                                           "complexity", "n_params", "error", "tokens", "cost")}
        d["tree"] = gpmod.dump_tree(self.tree) if self.tree is not None else None
        d["fitness"] = list(self.fitness.values)
        return d

    @classmethod
    def from_state(cls, d: dict, pset) -> "Program":
        kw = {k: v for k, v in d.items() if k not in ("tree", "fitness")}
        p = cls(**kw)
        p.tree = gpmod.load_tree(d["tree"], pset) if d["tree"] is not None else None
        p.fitness.values = tuple(d["fitness"])
        return p

    def clone(self) -> "Program":
        return Program.from_state(self.to_state(), _PSET_HOLDER["pset"])

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
_WORKER_DATA: dict = {}


def _compile(src: str, with_tree: bool = False):
    tree = ast.parse(src)
    ns: dict = {"np": np, "math": math}
    exec(compile(tree, "<candidate>", "exec"), ns)  # our own GP source (LLM code goes to the sandbox)
    if with_tree:
        return ns["potential"], ns.get("N_PARAMS", 0), tree
    return ns["potential"], ns.get("N_PARAMS", 0)


def score_source(src: str, p0, seed: int, data: ScoringData | None = None) -> dict:
    """Score one GP candidate in this process (parsed once: the same AST gives code and complexity)."""
    data = data or _WORKER_DATA["data"]
    try:
        fn, n, tree = _compile(src, with_tree=True)
    except Exception as exc:  # our generator produced bad code: record, never crash the search
        return {"error": f"compile: {type(exc).__name__}: {exc}", "params": None, "eval_seconds": 0.0}
    return score_function(fn, n, data, source=src, p0=p0, seed=seed, complexity=complexity_of(tree))


def _worker_init(data: ScoringData) -> None:
    _WORKER_DATA["data"] = data


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
        self.cache: dict[str, dict] = {}
        self.round = -1
        self.counters = {"evaluations": 0, "cache_hits": 0, "candidates": 0, "failed": 0, "llm_calls": 0,
                         "llm_rejected": 0, "llm_failed": 0, "llm_scored": 0, "tokens": 0, "cost": 0.0,
                         "eval_seconds": 0.0}
        self._pool = None
        self.terms = None
        if cfg.terms_mix > 0:
            from .terms_op import TermsOperator

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
                           operator="terms", parents=c["parents"], p0=c["p0"], meta=c["meta"])
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
        if prog.tree is not None and prog.params:
            gpmod.set_constants(prog.tree, prog.params[1:])
        if res.get("heldout_gap") is not None:
            prog.meta["heldout_gap"] = res["heldout_gap"]

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
        args = [(p.source, p.p0, self._fit_seed(p.canonical)) for p in todo]
        if self.cfg.workers > 1 and len(todo) > 1:
            results = self._get_pool().map(_worker_score, args, chunksize=max(1, len(args) // (4 * self.cfg.workers)))
        else:
            results = [score_source(*a, data=self.problem.data) for a in args]
        for p, res in zip(todo, results):
            self.cache[p.canonical] = {k: res.get(k) for k in SCORE_KEYS} | {"heldout_gap": res.get("heldout_gap")}
            self._apply(p, res, False)
            self.counters["evaluations"] += 1
            self.counters["eval_seconds"] += p.eval_seconds
        for p in later:
            self._apply(p, self.cache[p.canonical], True)
            self.counters["cache_hits"] += 1

    def _get_pool(self):
        if self._pool is None:
            import multiprocessing as mp

            ctx = mp.get_context("fork")
            self._pool = ctx.Pool(self.cfg.workers, initializer=_worker_init, initargs=(self.problem.data,))
        return self._pool

    def close(self) -> None:
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

    def _load_cache_from_store(self) -> None:
        for r in self.store.candidates.rows(valid_only=False, search_id=self.sid):
            can = r.canonical or r.source
            if can in self.cache or (r.error or "").startswith(("rejected", "llm:")):
                continue
            self.cache[can] = {"params": None if r.error is not None and not r.params else r.params, "train_action": r.train_action,
                               "heldout_action": r.heldout_action, "gap": r.gap, "complexity": r.complexity,
                               "n_params": r.n_params, "error": r.error, "heldout_gap": r.meta.get("heldout_gap")}

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
        state = {
            "version": CHECKPOINT_VERSION, "sid": self.sid, "round": self.round, "random": random.getstate(),
            "pops": [[p.to_state() for p in pop] for pop in self.pops],
            "hof": [p.to_state() for p in self.hof], "logbook": [dict(r) for r in self.logbook],
            "counters": dict(self.counters), "features": self.features, "extra": extra,
        }
        if self.terms is not None:
            state["terms"] = self.terms.state()
        self.store.save_checkpoint(CHECKPOINT_STAGE, self.round, pickle.dumps(state, protocol=4))

    def restore(self) -> bool:
        got = self.store.load_checkpoint(CHECKPOINT_STAGE)
        if got is None:
            return False
        _, blob = got
        state = pickle.loads(blob)
        if state.get("version") != CHECKPOINT_VERSION or state.get("sid") != self.sid:
            raise InputError("the run's evolve checkpoint was made with another configuration, seed or split "
                             "(only --rounds and --workers may change on --resume); run without --resume to start "
                             "a new search", str(self.problem.run_dir))
        random.setstate(state["random"])
        self.pops = [[Program.from_state(d, self.pset) for d in pop] for pop in state["pops"]]
        self.hof.clear()
        self.hof.update([Program.from_state(d, self.pset) for d in state["hof"]])
        self.logbook = tools.Logbook()
        for r in state["logbook"]:
            self.logbook.record(**r)
        self.counters.update(state["counters"])
        self.round = int(state["round"])
        if self.terms is not None:
            self.terms.restore(state.get("terms"))
        self.restored_extra = state.get("extra")  # async loop hook: its island clocks and calls in flight
        self._load_cache_from_store()
        return True

    def stored_programs(self, uids: list[str]) -> dict:
        """Async loop hook (resume): the stored candidates among ``uids``, as Programs (LLM offspring)."""
        out = {}
        for uid in uids:
            r = self.store.candidates.get(uid)
            if r is None:
                continue
            p = Program(uid=r.uid, source=r.source, canonical=r.canonical or r.source, island=r.island,
                        round=r.round, operator=r.operator, parents=list(r.parents or []), model=r.model,
                        tokens=r.tokens or 0, cost=r.cost or 0.0, meta=dict(r.meta or {}))
            p.set_score({"params": r.params, "train_action": r.train_action, "heldout_action": r.heldout_action,
                         "gap": r.gap, "complexity": r.complexity, "n_params": r.n_params, "error": r.error},
                        self.cfg.gp.parsimony)
            p.eval_seconds = r.eval_seconds or 0.0
            out[uid] = p
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
