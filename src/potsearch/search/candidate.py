"""A candidate of the search: a program (GP tree, term law or model-written source) with its scores.

Every candidate becomes one row of the store's ``candidates`` table (``row``) and, while it lives in
a population, plain data in the checkpoint (``to_state`` / ``from_state``). Its selection score is
derived, never stored: train action + parsimony x complexity, +inf for a failed candidate.
"""
from __future__ import annotations

import ast
import json
import math
import time
from dataclasses import dataclass, field

import numpy as np
from deap import base, creator

from potsearch.search import gp as gpmod

if not hasattr(creator, "PotFitness"):
    creator.create("PotFitness", base.Fitness, weights=(-1.0,))

SCORE_KEYS = ("params", "train_action", "heldout_action", "gap", "complexity", "n_params", "error")


def canonical_source(src: str) -> str:
    """Whitespace/comment-insensitive form used as the cache key (ast.unparse of the parse)."""
    try:
        return ast.unparse(ast.parse(src))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return src.strip()


def law_source(law: list) -> str:
    """The source of a term-structured law (terms.to_source; it does not depend on the fitted values)."""
    from potsearch.law import terms as T

    terms = [T.Term(*t) for t in law]
    theta0 = np.array([t.theta0 for t in terms if t.n_inner], float)
    return T.to_source(terms, T.TermsFit(np.zeros(len(terms)), theta0, math.nan, math.nan))[0]


def at_params_payload(payload: dict, params) -> dict:
    """The sandbox payload (``score_program``) that scores a program at ``params`` (as ``at_params_data``)."""
    return dict(payload, p0=[float(v) for v in params], fit=dict(payload["fit"], starts=1, max_iter=0),
                key=f"{payload.get('key', '')}:at-params")


def cache_entry(res: dict, p0) -> dict:
    """A score-cache entry of a computed score (``p0``: the start parameters it was fitted from)."""
    return {k: res.get(k) for k in SCORE_KEYS} | {"heldout_gap": res.get("heldout_gap"), "p0": p0}


@dataclass(eq=False)
class Candidate:
    uid: str
    source: str
    canonical: str
    island: int
    round: int
    operator: str
    parents: list = field(default_factory=list)
    model: str | None = None
    tree: object = None            # gp.PrimitiveTree for GP candidates, None otherwise
    law: list | None = None        # a term-structured law ([[kind, a, b, theta0], ...]) for terms candidates
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
    claim: object = None           # a stored score its sandbox job checks (resume: ``Search.model_job``)

    def __post_init__(self):
        self.fitness = creator.PotFitness()

    def set_score(self, res: dict, parsimony: float) -> None:
        for k in SCORE_KEYS:
            setattr(self, k, res.get(k))
        self.complexity = int(self.complexity or 0)
        self.n_params = int(self.n_params or 0)
        self.derive_fitness(parsimony)

    def apply(self, res: dict, cached: bool, parsimony: float) -> None:
        """Take a score (a cache entry when ``cached``, else a computed result)."""
        self.set_score(res, parsimony)
        self.cached = cached
        self.eval_seconds = 0.0 if cached else float(res.get("eval_seconds") or 0.0)
        self.score_p0 = res.get("p0") if cached else self.p0
        if self.tree is not None and self.params:
            gpmod.set_constants(self.tree, self.params[1:])
        if res.get("heldout_gap") is not None:
            self.meta["heldout_gap"] = res["heldout_gap"]

    def fail(self, error: str, parsimony: float) -> None:
        """A candidate with no score: the error is stored, its category (``llm``, ``rejected``...) in meta."""
        self.set_score({"error": error}, parsimony)
        self.meta["category"] = error.split(":", 1)[0]

    def derive_fitness(self, parsimony: float) -> None:
        """Selection score = train action + parsimony x complexity (+inf for a failed candidate)."""
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
    def from_state(cls, d: dict, pset) -> "Candidate":
        """The Candidate of ``to_state`` data (checked data only: resume.py checks a checkpoint's)."""
        kw = {k: v for k, v in d.items() if k not in ("tree", "law")}
        p = cls(**kw)
        p.tree = gpmod.load_tree(d["tree"], pset) if d.get("tree") is not None else None
        p.law = [list(t) for t in d["law"]] if d.get("law") is not None else None
        return p

    def clone(self) -> "Candidate":
        """A copy as a checkpoint would restore it (a migrant, a reset island's seed)."""
        p = Candidate.from_state(dict(self.to_state(), tree=None), None)
        p.tree = gpmod.copy_tree(self.tree) if self.tree is not None else None
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
