"""The early stop's tracker (search/patience.py) and its checkpoint entry: pure, no search."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from potsearch.search import checkpoint as ckpt
from potsearch.search.patience import Convergence


def cand(complexity, action, ok=True):
    return SimpleNamespace(complexity=complexity, train_action=action, ok=ok)


def test_an_improvement_lowers_the_front_by_more_than_the_tolerance():
    cv = Convergence(patience=3, tol=1e-2)
    cv.offer([cand(5, 1.0)])
    cv.end_round(0)
    assert cv.last == 0 and cv.front == [(5, 1.0)]
    for r, c in ((1, cand(7, 0.995)), (2, cand(9, 1.2)), (3, cand(5, 1.0)), (4, cand(3, math.inf)),
                 (5, cand(2, 0.1, ok=False))):
        cv.offer([c])          # within the tolerance, dominated, a repeat, not finite, failed: no improvement
        cv.end_round(r)
    assert cv.last == 0 and cv.exhausted(3) and not cv.exhausted(2)
    assert cv.front == [(5, 1.0), (7, 0.995)]          # the front still moved (below the tolerance)
    cv.offer([cand(3, 2.0)])   # a new, simpler front point is an improvement (the selection may pick it)
    cv.end_round(6)
    assert cv.last == 6 and cv.front[0] == (3, 2.0)
    cv.offer([cand(9, 0.9)])   # the lowest training action, lower by 10 %
    cv.end_round(7)
    assert cv.last == 7 and cv.front[-1] == (9, 0.9)
    cv.offer([cand(4, 0.5)])   # dominates every point of complexity >= 4
    assert cv.front == [(3, 2.0), (4, 0.5)]


def test_off_by_default_and_the_reason_says_why():
    cv = Convergence()
    cv.offer([cand(5, 1.0)])
    cv.end_round(0)
    assert not cv.exhausted(10_000)
    assert cv.reason(40)["text"] == "rounds done" and cv.reason(40)["reason"] == "rounds"
    cv = Convergence(patience=4)
    cv.offer([cand(5, 1.0)])
    cv.end_round(2)
    assert cv.exhausted(6) and cv.reason(6)["reason"] == "rounds"   # patience only when the loop stopped for it
    cv.stopped = True
    got = cv.reason(6)
    assert got["reason"] == "patience" and got["text"] == "patience (no improvement for 4 rounds)"
    assert got["last_improvement"] == 2


def test_state_round_trips_through_the_checkpoint_checks():
    cv = Convergence(patience=2)
    cv.offer([cand(3, 2.0), cand(6, 1.0)])
    cv.end_round(4)
    doc = ckpt.patience_state(cv.state(), "patience")
    other = Convergence(patience=2)
    other.restore(doc, rnd=9)
    assert other.front == cv.front and other.last == 4
    old = Convergence(patience=2)      # a checkpoint made before the tracker existed: the logbook's lowest action
    book = [{"round": 0, "best": [3.0, None]}, {"round": 1, "best": [2.0, 2.5]}, {"round": 2, "best": [2.0, 1.5]},
            {"round": 3, "best": [1.9999, 1.6]}, {"round": 4, "best": [None, None]}]
    old.restore(None, rnd=4, cands=[cand(3, 2.0)], logbook=book)
    assert old.front == [(3, 2.0)] and old.last == 2 and not old.pending and old.exhausted(4)


@pytest.mark.parametrize("bad", [{"front": [[1]], "last": 0}, {"front": [], "last": -1},
                                 {"front": [[1, "x"]], "last": 0}, {"front": []}])
def test_a_malformed_entry_is_refused(bad):
    with pytest.raises(ckpt.Malformed):
        ckpt.patience_state(bad, "patience")
