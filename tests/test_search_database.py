"""The programs database of the search (potsearch.search.database): its public methods on their own."""
from __future__ import annotations

import math
import random
import types

from potsearch.search import checkpoint as ckpt
from potsearch.search.candidate import Candidate
from potsearch.search.config import SearchConfig
from potsearch.search.database import ProgramsDatabase


class _Store:
    def __init__(self):
        self.rows = []
        self.candidates = types.SimpleNamespace(add_many=lambda rows: self.rows.extend(rows))

    def run_id(self):
        return 1


def _cand(uid, island, action, canonical=None):
    c = Candidate(uid=uid, source=canonical or uid, canonical=canonical or uid, island=island, round=0,
                  operator="gp:init")
    if action is None:
        c.fail("boom: no score", 0.0)
    else:
        c.set_score({"train_action": action, "params": [1.0], "complexity": 1, "n_params": 1}, 0.0)
    return c


def _db(**kw):
    cfg = SearchConfig(**{"islands": 2, "population": 3, "hall_of_fame": 2, **kw})
    db = ProgramsDatabase(cfg, _Store(), "evtest", ["a"])
    db.populate([[_cand(f"s:{i}:0:{j}", i, 1.0 + i + j) for j in range(3)] for i in range(2)])
    return db


def test_register_keeps_the_best_distinct_candidates_and_records_every_one():
    db = _db()
    kids = [_cand("s:0:1:0", 0, 0.5), _cand("s:0:1:1", 0, 0.1, canonical="s:0:0:0"), _cand("s:0:1:2", 0, None)]
    db.register(kids)
    assert [p.uid for p in db.pops[0]] == ["s:0:1:0", "s:0:0:0", "s:0:0:1"]   # a twin and a failure left out
    assert [p.uid for p in db.pops[1]] == ["s:1:0:0", "s:1:0:1", "s:1:0:2"]   # another island untouched
    assert [r["uid"] for r in db.store.rows[6:]] == [k.uid for k in kids]
    assert db.counters["candidates"] == 9 and db.counters["failed"] == 1
    assert db.best().uid == "s:0:1:0" and len(db.hof) == 2   # the twin of a hall-of-fame member stays out


def test_parents_come_from_the_island_and_migration_moves_the_best():
    random.seed(0)
    db = _db(migrate_every=2, migrants=1)
    assert all(p.island == 1 for p in db.parents(1, 2))
    db.migrate(1)                                                  # not due
    assert [p.uid for p in db.pops[1]] == ["s:1:0:0", "s:1:0:1", "s:1:0:2"]
    db.migrate(2)
    assert "s:0:0:0" in [p.uid for p in db.pops[1]]                # island 0's best replaced island 1's worst
    assert "s:1:0:2" not in [p.uid for p in db.pops[1]]


def test_reset_reseeds_the_weakest_island_with_fresh_candidates():
    random.seed(0)
    db = _db(reset_every=4, reset_fraction=0.5)
    made = []

    def fresh(uid, island, rnd):
        made.append(uid)
        return _cand(uid, island, 9.0)

    assert db.reset(3, fresh) == []
    out = db.reset(4, fresh)
    assert [p.uid for p in out] == made == ["evtest:1:4:r1", "evtest:1:4:r2"]
    assert db.pops[1][0].uid == "s:0:0:0" and db.pops[1][0] is not db.pops[0][0]   # a clone of the best


def test_checkpoint_is_json_and_restores_the_same_state():
    random.seed(5)
    db = _db()
    db.record(0, [0, 0])
    state = ckpt.decode(ckpt.encode(db.checkpoint({"loop": "async", "made": [0, 0], "applied": 0, "clock": 0,
                                                    "seq": 0, "pending_llm": [False, False], "jobs": []})))
    expect = random.random()
    other = ProgramsDatabase(db.cfg, _Store(), "evtest", ["a"])
    pops = [[Candidate.from_state(d, None) for d in pop] for pop in state["pops"]]
    other.restore(state, pops, [Candidate.from_state(d, None) for d in state["hof"]])
    assert random.random() == expect
    assert [[p.uid for p in pop] for pop in other.pops] == [[p.uid for p in pop] for pop in db.pops]
    assert other.counters == db.counters and other.round == 0 and len(other.logbook) == 1
    assert other.cached("s:0:0:0") is None and not other.seen("s:0:0:0")
    assert math.isinf(_cand("x", 0, None).fitness.values[0])
