"""The term-structured operator of the island search: V = sum_i c_i * term_i (evolve/terms.py).

With probability ``terms_mix`` an offspring that is not an LLM child comes from this operator
instead of GP variation. The operator keeps an archive of the best term laws of each size
(1..``terms_max`` terms, ``ARCHIVE`` laws per size, lowest training action first), shared by all
islands, and beside it the best laws of each size without an inner parameter (``ARCHIVE`` more:
linear, log, sqrt and product terms, whose coefficients alone are fitted): terms with a fitted inner
parameter (a ratio's shift, an exponential's rate) reach a slightly lower training action on noisy
data and would otherwise crowd every such law out of the archive, so that a law of k + 1 plain
terms, one mutation away from a law of k plain terms, would never be proposed. A child is a
mutation of a random archive member: with probability ``GUIDED`` a move guided by the data (add the
library term whose score test promises the largest drop of the action, or swap one term for it:
``terms.best_add`` / ``best_swap``), else a random one (add, drop, replace or transform one term;
``terms.mutate``). The operator's first children are the linear sweep's laws (``sweep``: the best
plain linear laws of 1..4 features, every subset solved exactly), so the best sparse linear laws
are always scored, whatever the random moves reach. Its coefficients are solved exactly at the inner parameters' defaults (``terms.fit`` with ``inner_fit=False``: one
Newton solve), and the scorer's Gauss-Newton fitter refines every parameter jointly from there (a
projected line search over an inner parameter costs ~20x more for the same optimum); the law is
written as source (``terms.to_source``) and scored like a GP candidate (``Search.evaluate``: the
score cache, the same fitter started at the exact solution, the same store row). A law already in
the score cache is not fitted again.

Stored rows have operator ``terms``, the parent's uid (none for a fresh single term) and
``meta.terms`` (the term list) and ``meta.terms_op`` (the mutation). Children compete in their
island's population like any other program (they reach the hall of fame, the Pareto front and
migrations); GP never varies them (they have no tree).

Randomness: the global ``random`` module (seeded by the search, saved in checkpoints), drawn only
when ``terms_mix > 0`` -- a run with the operator off makes exactly the candidates it made before
the operator existed. The archive is part of the checkpoint (``state`` / ``restore``).

Ill-conditioning: a law whose fitted inner parameter makes a term a linear one in disguise
(a/(b + t) with |t| > 10 max|b|; exp(t a) bending less than 0.05 over a's range) or puts a pole
among or next to the states (b + t changing sign, or within 1 % of its range to zero:
``conditioning.pole_among``, the rule selection applies) never enters the archive: the operator does not build on it.
"""
from __future__ import annotations

import math
import random

import numpy as np

from potsearch.law import terms as T
from potsearch.law.conditioning import pole_among

ARCHIVE = 4   # laws kept per size
SWEEP = 4     # plain linear laws of 1..SWEEP features: every subset solved exactly, the best seeded first
GUIDED = 0.5  # share of children from the score-test moves (terms.best_add / best_swap), the rest random
MAX_SHIFT = 10.0   # a ratio's inner shift beyond this many times its denominator's range: linear in disguise
MIN_BEND = 0.05    # an exponential bending less than this over its feature's range: linear in disguise


def _key(t: T.Term) -> tuple:
    return (t.kind, t.a, t.b, t.theta0)


class TermsOperator:
    def __init__(self, search):
        self.s = search
        data = search.problem.data
        feats = {k: data.features[k] for k in search.features if k in data.features}
        self.lib = T.library(feats)
        self.lin = [t for t in self.lib if t.kind == "lin"]
        self.max_terms = int(search.cfg.terms_max)
        self.archive: dict[str, list[dict]] = {}   # "size", "size-plain" -> [{"terms", "uid", "train"}]
        self.screen: T.Screen | None = None         # built on first use (the library's pair differences)
        self.seeds: list[list[T.Term]] | None = None   # the sweep's laws not yet handed out (``sweep``)

    # ------------------------------------------------------------------ checkpoint
    def state(self) -> dict:
        out = {k: [{"terms": [list(_key(t)) for t in e["terms"]], "uid": e["uid"], "train": e["train"]}
                   for e in v] for k, v in self.archive.items()}
        if self.seeds is not None:
            out["_seeds"] = [[list(_key(t)) for t in law] for law in self.seeds]
        return out

    def restore(self, state: dict | None) -> None:
        self.archive, self.seeds = {}, None
        for k, v in (state or {}).items():
            if k == "_seeds":
                self.seeds = [[T.Term(*t) for t in law] for law in v]
                continue
            self.archive[str(k)] = [{"terms": [T.Term(*t) for t in e["terms"]], "uid": e["uid"],
                                     "train": e["train"]} for e in v]

    # ------------------------------------------------------------------ the linear sweep
    def prepare(self) -> None:
        """Compute the sweep's laws (``sweep``) unless a checkpoint restores them: the search calls this
        before its loop, so the 1-5 s of solves never hold up the loop while model calls are in flight."""
        if self.seeds is None:
            self.seeds = self.sweep()

    def sweep(self) -> list[list[T.Term]]:
        """The best plain linear laws of 1..``SWEEP`` features (at most ``terms_max``): every subset of
        the library's linear terms solved exactly (``terms.solve_linear``, one Newton solve each:
        4-5 s for the 2,516 subsets of 16 word features on 20,000 samples, 2 shared cores), the ``ARCHIVE`` lowest training actions of each
        size kept, a law whose values equal a kept one's (an identity twin: n_params = terms) skipped.
        A sparse linear law is then on the front whatever the random moves find, and the guided moves
        start from the best ones."""
        import itertools

        data = self.s.problem.data
        cols = {}
        for t in self.lin:
            v = np.asarray(t.value(data.features), float)
            if np.all(np.isfinite(v)):
                cols[t] = v - v.mean()
        out = []
        for k in range(1, min(SWEEP, self.max_terms, len(cols)) + 1):
            ranked = []
            for sub in itertools.combinations(cols, k):
                M = np.column_stack([cols[t] for t in sub])
                try:
                    c, S = T.solve_linear(M, data)
                except (np.linalg.LinAlgError, ValueError, FloatingPointError):
                    continue
                if math.isfinite(S) and np.all(np.isfinite(c)):
                    ranked.append((S, sub, M, c))
            ranked.sort(key=lambda r: r[0])          # stable: the feature table's order breaks ties
            kept: list[np.ndarray] = []
            for S, sub, M, c in ranked:
                V = M @ c
                if any(np.ptp(V - W) <= 1e-9 * max(float(np.ptp(W)), 1e-12) for W in kept):
                    continue
                kept.append(V)
                out.append(list(sub))
                if len(kept) == ARCHIVE:
                    break
        return out

    # ------------------------------------------------------------------ children
    def child(self) -> dict:
        """A new law to score: ``source``, ``p0``, ``parents`` and ``meta`` of the Candidate the search
        makes of it (a mutation of an archive law, or a fresh linear term)."""
        parent, op = None, "new"
        self.prepare()
        if self.seeds:
            op, law = "sweep", self.seeds.pop(0)
        elif self.archive:
            size = random.choice(sorted(self.archive))
            parent = random.choice(self.archive[size])
            if random.random() < GUIDED:
                grow = len(parent["terms"]) < self.max_terms and random.random() < 0.5
                op = "best_add" if grow else "best_swap"
                law = (T.best_add if grow else T.best_swap)(parent["terms"], self._screen(), random)
            else:
                op, law = T.mutate(parent["terms"], self.lib, random)
            if len(law) > self.max_terms:
                op, law = "replace", T.replace_term(parent["terms"], self.lib, random)
        else:
            law = [random.choice(self.lin)] if self.lin else [random.choice(self.lib)]
        law = sorted(set(law), key=_key)
        src, p0 = self._source(law)
        return {"source": src, "p0": p0, "parents": [parent["uid"]] if parent else [],
                "meta": {"terms": [list(_key(t)) for t in law], "terms_op": op}}

    def _screen(self) -> T.Screen:
        if self.screen is None:
            self.screen = T.Screen(self.lib, self.s.problem.data)
        return self.screen

    def _source(self, law: list) -> tuple[str, list]:
        """The law's source and starting parameters (the variable-projection fit, unless cached)."""
        n_inner = sum(t.n_inner for t in law)
        theta0 = np.array([t.theta0 for t in law if t.n_inner], float)
        dummy = T.TermsFit(np.zeros(len(law)), theta0, math.nan, math.nan)
        src, p0 = T.to_source(law, dummy)
        if self.s.db.seen(src):
            return src, p0
        try:
            r = T.fit(law, self.s.problem.data, inner_fit=False)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError, OverflowError):
            return src, p0
        if not (np.all(np.isfinite(r.coef)) and np.all(np.isfinite(r.theta))) or len(r.theta) != n_inner:
            return src, p0
        return T.to_source(law, r)

    # ------------------------------------------------------------------ the archive
    def observe(self, progs) -> None:
        """Scored programs: every finished terms law may enter the archive of its size."""
        for p in progs:
            law = p.meta.get("terms") if p.operator == "terms" else None
            if not law or not p.ok or not math.isfinite(p.train_action):
                continue
            terms = [T.Term(*t) for t in law]
            if not self.well_conditioned(terms, p.params or []):
                continue
            plain = all(t.n_inner == 0 for t in terms)   # no inner parameter: the plain-terms slots too
            keys = [str(len(terms))] + ([f"{len(terms)}-plain"] if plain else [])
            for key in keys:
                entries = self.archive.setdefault(key, [])
                if any(e["terms"] == terms for e in entries):
                    continue
                entries.append({"terms": terms, "uid": p.uid, "train": float(p.train_action)})
                entries.sort(key=lambda e: e["train"])   # stable: older laws win ties
                del entries[ARCHIVE:]

    def well_conditioned(self, terms: list, params: list) -> bool:
        """False when a fitted inner parameter makes its term a linear one in disguise or puts a pole
        among the states: a ratio a/(b + t) with |t| > ``MAX_SHIFT`` x max|b| (then ~ a/t) or b + t
        changing sign over the states or coming within 1 % of its range to zero (``conditioning.pole_among``); an exponential exp(t a) with |t| x range(a) < ``MIN_BEND`` (then
        ~ 1 + t a). Such laws stay in the populations but are not mutated further."""
        x = self.s.problem.data.features
        k = 0
        for t in terms:
            if not t.n_inner:
                continue
            th = float(params[k]) if k < len(params) else t.theta0
            k += 1
            if t.kind == "ratio":
                b = x[t.b]
                if abs(th) > MAX_SHIFT * max(float(np.max(np.abs(b))), 1e-12):
                    return False
                if pole_among(b + th):   # selection's rule (conditioning.pole_among)
                    return False
            elif t.kind == "exp" and abs(th) * float(np.ptp(x[t.a])) < MIN_BEND:
                return False
        return True
