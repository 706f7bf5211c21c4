"""What ``--resume`` checks before a search continues from its checkpoint (``Search.restore``).

Nothing in a checkpoint runs and nothing in it is believed. ``checkpoint.decode`` checks the
document key by key (a pickle is refused, never loaded); here come the checks only the search can
make (``restored_state``): GP trees and term laws must name this search's primitives and features
and give the stored source, the island count and population sizes must be this search's. Then every
restored candidate is scored again at its stored parameters and compared with the numbers the
checkpoint holds (``revalidate``), and the model calls in flight at the checkpoint whose child is
already stored are reloaded only after their stored score is recomputed (``stored_children``).
"""
from __future__ import annotations

import math
import random

from potsearch.core.errors import InputError
from potsearch.search import checkpoint as ckpt
from potsearch.search import gp as gpmod
from potsearch.search.candidate import (
    Candidate,
    cache_entry,
    canonical_source,
    law_source,
)
from potsearch.search.scorecache import claim_of_row, mismatch, not_reproduced

SANDBOX_TASK = "potsearch.law.scoring:score_program"


def restored_state(search, state: dict) -> tuple:
    """The checkpoint's populations, hall of fame and async loop state as the search's candidates, after
    the checks only the search can make (checkpoint.Malformed otherwise); the term archive's laws are
    checked too."""
    cfg = search.cfg
    try:
        random.Random().setstate(state["random"])
    except (ValueError, TypeError, OverflowError) as exc:
        raise ckpt.Malformed("random", f"not a random state ({exc})") from None
    if state["features"] != list(search.features):
        raise ckpt.Malformed("features", "not the features of this search")
    unknown = [k for k in state["counters"] if k not in search.db.counters]
    if unknown:
        raise ckpt.Malformed("counters", f"unknown counter {unknown[0]!r}")
    if len(state["pops"]) != cfg.islands:
        raise ckpt.Malformed("pops", f"{cfg.islands} populations expected, got {len(state['pops'])}")
    pops = []
    for i, pop in enumerate(state["pops"]):
        if not 1 <= len(pop) <= cfg.population:
            raise ckpt.Malformed(f"pops[{i}]", f"1 to {cfg.population} programs expected, got {len(pop)}")
        pops.append([restored_candidate(search, d, f"pops[{i}][{j}]") for j, d in enumerate(pop)])
    if len(state["hof"]) > cfg.hall_of_fame:
        raise ckpt.Malformed("hof", f"at most {cfg.hall_of_fame} programs expected, got {len(state['hof'])}")
    hof = [restored_candidate(search, d, f"hof[{i}]") for i, d in enumerate(state["hof"])]
    extra = state["extra"]
    if extra is not None and extra.get("loop") == "async":
        if len(extra["made"]) != cfg.islands or len(extra["pending_llm"]) != cfg.islands:
            raise ckpt.Malformed("extra", f"the async state of {cfg.islands} islands expected")
        if extra["jobs"] and search.llm is None:
            raise ckpt.Malformed("extra.jobs", "model calls in flight in a search without a model operator")
        jobs = []
        for k, j in enumerate(extra["jobs"]):
            path = f"extra.jobs[{k}]"
            if j["island"] >= cfg.islands or not j["uid"].startswith(f"{search.sid}:{j['island']}:"):
                raise ckpt.Malformed(path, "not a candidate of this search")
            jobs.append(dict(j, parents=[restored_candidate(search, d, f"{path}.parents[{i}]")
                                         for i, d in enumerate(j["parents"])]))
        extra = dict(extra, jobs=jobs)
    terms = state["terms"]
    if terms is not None and search.terms is not None:
        for key, entries in terms.items():
            for i, e in enumerate(entries):
                checked_law(search, e if key == "_seeds" else e["terms"], f"terms.{key}[{i}]")
    return pops, hof, extra


def restored_candidate(search, d: dict, path: str) -> Candidate:
    """A checkpoint's program (types already checked) as a Candidate, or checkpoint.Malformed: a GP tree
    must use this search's primitives and features and give the stored source, a term law likewise;
    a model-written program is text (it is only ever run in the sandbox)."""
    if d["island"] >= search.cfg.islands:
        raise ckpt.Malformed(f"{path}.island", f"{d['island']} is not an island of this search")
    if d["tree"] is not None:
        src = gpmod.tree_source(checked_tree(search.pset, d["tree"], f"{path}.tree"))[0]
    elif d["law"] is not None:
        src = law_source(checked_law(search, d["law"], f"{path}.law"))
    else:
        src = None
        if d["error"] is None and search.llm is None:
            raise ckpt.Malformed(path, "a model-written program in a search without a model operator")
        if d["error"] is None and d["canonical"] != canonical_source(d["source"]):
            raise ckpt.Malformed(f"{path}.canonical", "not the canonical form of its source")
    if src is not None and (d["source"] != src or d["canonical"] != src):
        raise ckpt.Malformed(f"{path}.source", "not the source its GP tree or term law gives")
    p = Candidate.from_state(d, search.pset)
    p.derive_fitness(search.cfg.gp.parsimony)
    return p


def checked_tree(pset, data: list, path: str):
    """A GP tree's tokens checked against the primitive set (names, arities, one whole tree)."""
    need = 1
    for i, (kind, v) in enumerate(data):
        if need == 0:
            raise ckpt.Malformed(f"{path}[{i}]", "nodes after the end of the tree")
        if kind == "f":
            node = pset.mapping.get(v)
            if not isinstance(node, gpmod.gp.Primitive):
                raise ckpt.Malformed(f"{path}[{i}]", f"unknown primitive {v!r}")
            need += node.arity - 1
        else:
            if kind == "x" and v not in pset.arguments:
                raise ckpt.Malformed(f"{path}[{i}]", f"unknown feature {v!r}")
            need -= 1
    if need != 0:
        raise ckpt.Malformed(path, "an incomplete tree")
    return gpmod.load_tree(data, pset)


def checked_law(search, law: list, path: str) -> list:
    """A term law whose features are the search's (so its source is ours: terms.to_source)."""
    for i, (kind, a, b, _theta) in enumerate(law):
        binary = kind in ("prod", "ratio")
        if a not in search.features or (b not in search.features if binary else b != ""):
            raise ckpt.Malformed(f"{path}[{i}]", "a term of features this search does not have")
    return law


def revalidate(search, cands: list[Candidate]) -> int:
    """Check every restored candidate's numbers (one check per canonical source) and seed the cache with
    the computed scores; InputError naming the first candidate whose numbers do not reproduce.

    A scored candidate is scored again AT its stored parameters (``at_params_data``: one evaluation, no
    fit), so its train and held-out action must be the action its own parameters give, to 1e-9: a
    stored score can be a worse fit than potsearch finds, never better than the program is. A failed
    GP tree or term law is fitted again from its start parameters and must fail again. GP trees and
    term laws run here, from the source our own code regenerated from them; model-written programs run
    in the sandbox; a failed model-written program is not run (it never enters the cache and ranks
    last). Returns the number of checks made."""
    groups: dict[str, list[Candidate]] = {}
    for p in cands:
        if p.tree is None and p.law is None and p.error is not None:
            continue
        groups.setdefault(p.canonical, []).append(p)
    reps = [ps[0] for ps in groups.values()]
    own = [p for p in reps if p.tree is not None or p.law is not None]
    model = [p for p in reps if p.tree is None and p.law is None]
    own_args = [(p.source, p.params or [], search.fit_seed(p.canonical), True) if p.error is None
                else (p.source, p.score_p0, search.fit_seed(p.canonical), False) for p in own]
    results = list(zip(own, search.score_own(own_args)))
    if model:
        jobs = [search.model_check(p) for p in model]
        for p, r in zip(model, search.llm.pool.map(jobs, task=SANDBOX_TASK, timeout=search.cfg.sandbox.wall_timeout)):
            if not (r.ok and isinstance(r.value, dict)):
                raise InputError(f"candidate {p.uid} of the evolve checkpoint could not be scored again to check "
                                 f"its stored score ({str(r.error)[:200]}); run --resume again (nothing was "
                                 f"changed)", str(search.problem.run_dir))
            results.append((p, r.value))
    for rep, res in results:
        for p in groups[rep.canonical]:
            why = mismatch(p.numbers(), res)
            if why is not None:
                raise not_reproduced(p.uid, why)
        if rep.tree is not None or rep.law is not None or res.get("error") is None:
            search.db.cache[rep.canonical] = cache_entry(res, rep.score_p0)
    return len(results)


def stored_children(search, jobs: list[dict]) -> dict:
    """The model calls in flight at the checkpoint whose child is already stored, as Candidates. A stored
    score is re-scored in the sandbox and compared (InputError when it does not reproduce); a row that
    is not a usable outcome, or whose score the sandbox cannot recompute now, is left out (its call is
    made again; the stored row is kept)."""
    out, todo = {}, []
    pars = search.cfg.gp.parsimony
    for j in jobs:
        r = search.store.candidates.get(j["uid"])
        if r is None or r.uid != j["uid"] or not isinstance(r.source, str) or len(r.source) > ckpt.MAX_SOURCE:
            continue
        meta = dict(r.meta) if isinstance(r.meta, dict) else {}
        tokens = r.tokens if isinstance(r.tokens, int) and not isinstance(r.tokens, bool) else 0
        cost = float(r.cost) if isinstance(r.cost, (int, float)) and math.isfinite(r.cost) else 0.0
        p = Candidate(uid=j["uid"], source=r.source, canonical=r.canonical or r.source, island=j["island"],
                      round=j["rnd"], operator="llm", parents=[q.uid for q in j["parents"]], model=j["model"],
                      tokens=max(0, tokens), cost=max(0.0, cost), meta=meta)
        if r.error is not None:                      # a failed or rejected child: no score to believe
            p.set_score({"error": str(r.error)[:20_000]}, pars)
            out[j["uid"]] = p
            continue
        got = claim_of_row(r, cached_too=True)
        if got is None or got[1].numbers["train_action"] is None:
            continue
        p.canonical = canonical_source(r.source)
        p.eval_seconds = float(r.eval_seconds) if isinstance(r.eval_seconds, (int, float)) else 0.0
        todo.append((p, got[1]))
    if todo:
        checks = [search.model_check(p, claim.numbers["params"]) for p, claim in todo]
        cache = search.db.cache
        for (p, claim), res in zip(todo, search.llm.pool.map(checks, task=SANDBOX_TASK,
                                                              timeout=search.cfg.sandbox.wall_timeout)):
            if not (res.ok and isinstance(res.value, dict)):
                continue
            cache.settle(claim, res.value)        # InputError when the stored score does not reproduce
            p.set_score(claim.numbers, pars)
            if res.value.get("error") is None:
                cache.setdefault(p.canonical, cache_entry(res.value, None))
            out[p.uid] = p
    return out
