"""The programs database of the search: island populations, hall of fame, logbook, counters, score cache.

The candidates table records it. The search loop (controller.py), the operators and the resume
checks reach this state only through its methods:

  parents(i, k)       k parents of island i by tournament (size ``tournament``), any candidate
  tree_parents(i, k)  the same among island i's GP trees (the parents of GP variation)
  cached(canonical)   the score computed for a canonical source, or None (``seen``: a stored claim too)
  register(cands)     store scored candidates (one row each), update the hall of fame, and (``admit``)
                      merge each into its island: the best ``population`` distinct candidates survive
  migrate(r)          every ``migrate_every`` rounds a ring migration (``tools.migRing``: each
                      island's best ``migrants`` replace the next island's worst)
  reset(r, fresh)     every ``reset_every`` rounds the weakest ``reset_fraction`` of islands are
                      re-seeded with the best candidate of a random surviving island plus ``fresh``
                      random trees (FunSearch-style); returns the new candidates, to score and register
  record(r, n)        one logbook line (best and median train action per island); the round ends for
                      the early stop (``convergence``: patience.py, fed by every register)
  checkpoint(extra)   the JSON-able state the checkpoint module writes (checkpoint.encode)
  restore(...)        the state of a checked checkpoint (resume.py makes the checks)

Randomness: selection, migration and resets draw from the global ``random`` module (seeded by the
search and kept in checkpoints), in the order the loop calls them.
"""
from __future__ import annotations

import random
import statistics

from deap import tools

from potsearch.search import checkpoint as ckpt
from potsearch.search.candidate import Candidate
from potsearch.search.patience import Convergence
from potsearch.search.scorecache import ScoreCache, claim_of_row

COUNTERS = ("evaluations", "cache_hits", "candidates", "failed", "llm_calls", "llm_rejected", "llm_failed",
            "llm_scored", "llm_rate_limited", "tokens", "cost", "eval_seconds")


class ProgramsDatabase:
    def __init__(self, cfg, store, sid: str, features: list[str], terms=None):
        self.cfg = cfg
        self.store = store
        self.run_id = store.run_id()
        self.sid = sid
        self.features = features
        self.terms = terms           # the term operator: its archive observes registered candidates
        self.pops: list[list[Candidate]] = []
        self.hof = tools.HallOfFame(cfg.hall_of_fame, similar=lambda a, b: a.canonical == b.canonical)
        self.logbook = tools.Logbook()
        self.cache = ScoreCache()    # canonical -> scores computed here; the store's scores are claims (resume)
        self.round = -1
        self.convergence = Convergence(getattr(cfg, "patience", 0), getattr(cfg, "patience_tol", 1e-4))
        self.counters = {k: (0.0 if k in ("cost", "eval_seconds") else 0) for k in COUNTERS}

    # ------------------------------------------------------------------ selection
    def parents(self, island: int, k: int) -> list[Candidate]:
        pop = self.pops[island]
        return tools.selTournament(pop, min(k, len(pop)), min(self.cfg.tournament, len(pop)))

    def tree_parents(self, island: int, k: int) -> list[Candidate]:
        trees = [p for p in self.pops[island] if p.tree is not None]
        if not trees:
            return []
        return tools.selTournament(trees, k, min(self.cfg.tournament, len(trees)))

    def best(self) -> Candidate | None:
        return self.hof[0] if len(self.hof) else None

    # ------------------------------------------------------------------ the score cache
    def cached(self, canonical: str) -> dict | None:
        """The score computed in this search for a canonical source (a stored claim is not one)."""
        return self.cache.get(canonical)

    def seen(self, canonical: str) -> bool:
        """Computed here or claimed by the store (the search then takes the uninterrupted search's decisions)."""
        return canonical in self.cache

    def load_claims(self) -> None:
        """This search's stored scores as claims (scorecache.py): seen, never used unchecked."""
        for r in self.store.candidates.rows(valid_only=False, search_id=self.sid):
            got = claim_of_row(r)
            if got is not None and got[0] not in self.cache:
                self.cache.claims[got[0]] = got[1]

    # ------------------------------------------------------------------ populations
    def populate(self, pops: list[list[Candidate]]) -> None:
        """The initial populations (scored), registered as they are."""
        self.pops = pops
        self.register([p for pop in pops for p in pop], admit=False)

    def register(self, cands: list[Candidate], admit: bool = True) -> None:
        """Scored candidates: merged into their islands (``admit``), stored, offered to the hall of fame."""
        if admit:
            by_island: dict[int, list[Candidate]] = {}
            for p in cands:
                by_island.setdefault(p.island, []).append(p)
            for i, children in by_island.items():
                self.pops[i] = self.survivors(self.pops[i], children)
        if cands:
            self.store.candidates.add_many(p.row(self.run_id) for p in cands)
            self.counters["candidates"] += len(cands)
            self.counters["failed"] += sum(1 for p in cands if not p.ok)
            if self.terms is not None:
                self.terms.observe(cands)
        self.hof.update([p for p in cands if p.ok])
        self.convergence.offer(cands)

    def survivors(self, pop: list[Candidate], children: list[Candidate]) -> list[Candidate]:
        seen: set[str] = set()
        merged = []
        for p in pop + children:
            if p.canonical in seen:
                continue
            seen.add(p.canonical)
            merged.append(p)
        merged.sort(key=lambda p: p.fitness.values[0])  # stable: older candidates win ties
        out = merged[: self.cfg.population]
        while len(out) < self.cfg.population:  # too few distinct candidates: keep duplicates
            out.append(pop[len(out) % len(pop)] if pop else children[0])
        return out

    def migrate(self, rnd: int) -> None:
        cfg = self.cfg
        if cfg.migrate_every and rnd % cfg.migrate_every == 0 and cfg.islands > 1:
            tools.migRing(self.pops, cfg.migrants, selection=lambda pop, k: [p.clone() for p in tools.selBest(pop, k)],
                          replacement=tools.selWorst)

    def reset(self, rnd: int, fresh) -> list[Candidate]:
        """Re-seed the weakest islands when a reset is due; ``fresh(uid, island, rnd)`` makes a random
        candidate. Returns the fresh candidates (in their populations already), to score and register."""
        cfg = self.cfg
        if not (cfg.reset_every and rnd % cfg.reset_every == 0 and cfg.islands > 1):
            return []
        best = [min(p.fitness.values[0] for p in pop) for pop in self.pops]
        order = sorted(range(cfg.islands), key=lambda i: (best[i], i))
        n_reset = int(cfg.islands * cfg.reset_fraction)
        if n_reset <= 0:
            return []
        keep, weak = order[: cfg.islands - n_reset], order[cfg.islands - n_reset:]
        out = []
        for i in sorted(weak):
            donor = random.choice(keep)
            seed = tools.selBest(self.pops[donor], 1)[0].clone()
            pop = [seed] + [fresh(f"{self.sid}:{i}:{rnd}:r{j}", i, rnd) for j in range(1, cfg.population)]
            out.extend(pop[1:])
            self.pops[i] = pop
        return out

    def record(self, rnd: int, n_children: list[int]) -> None:
        self.round = rnd
        best, median = [], []
        for pop in self.pops:
            vals = [p.train_action for p in pop if p.ok]
            best.append(min(vals) if vals else None)
            median.append(statistics.median(vals) if vals else None)
        self.logbook.record(round=rnd, best=best, median=median, children=sum(n_children),
                            evaluations=self.counters["evaluations"], cache_hits=self.counters["cache_hits"])
        self.convergence.end_round(rnd)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, extra: dict | None = None) -> dict:
        """The search as plain data (checkpoint.encode writes it; ``extra``: the loop's own state)."""
        return {
            "sid": self.sid, "round": self.round, "random": ckpt.random_state(random.getstate()),
            "pops": [[p.to_state() for p in pop] for pop in self.pops],
            "hof": [p.to_state() for p in self.hof], "logbook": [dict(r) for r in self.logbook],
            "counters": dict(self.counters), "features": list(self.features), "extra": extra,
            "terms": self.terms.state() if self.terms is not None else None,
            "patience": self.convergence.state(),
        }

    def restore(self, state: dict, pops: list[list[Candidate]], hof: list[Candidate]) -> None:
        """Take a checked checkpoint (``state``: checkpoint.decode's; ``pops``, ``hof``: its candidates,
        re-scored by resume.py): the random state, populations, hall of fame, logbook, counters, round
        and the term archive."""
        random.setstate(state["random"])
        self.pops = pops
        self.hof.clear()
        self.hof.update(hof)
        self.logbook = tools.Logbook()
        for r in state["logbook"]:
            self.logbook.record(**r)
        self.counters.update(state["counters"])
        self.round = int(state["round"])
        if self.terms is not None:
            self.terms.restore(state["terms"])
        self.convergence.restore(state.get("patience"), self.round, [p for pop in pops for p in pop] + list(hof),
                                 state["logbook"])
