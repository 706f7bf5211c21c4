"""Counts -> graph: N(f), weights, thresholds."""
import numpy as np
import pytest

from potsearch.science.graph import build_graph
from potsearch.collector.io import Row, rows_to_counts


def _counts(rows):
    return rows_to_counts([Row(s, t, c, i) for i, (s, t, c) in enumerate(rows)])


def test_self_loops_and_escapes_count_in_N_but_are_not_edges():
    c = _counts([("A", "B", 2), ("A", "A", 3), ("A", None, 5), ("B", "A", 4), ("B", None, 4)])
    g = build_graph(c, min_visits=1)
    N = dict(zip(g.names, g.visits))
    assert N == {"A": 10, "B": 8}
    edges = {(g.names[s], g.names[d]): w for s, d, w in zip(g.src, g.dst, g.w)}
    assert set(edges) == {("A", "B"), ("B", "A")}
    assert edges[("A", "B")] == pytest.approx(2 / 10)
    assert edges[("B", "A")] == pytest.approx(4 / 8)


def test_min_visits_drops_sources_and_targets():
    c = _counts([("A", "B", 5), ("B", "A", 5), ("A", "C", 1), ("C", "A", 1), ("D", "A", 2)])
    g = build_graph(c, min_visits=1)
    assert set(g.names) == {"A", "B", "D"}          # C sampled once: dropped everywhere
    assert all(g.names[d] != "C" for d in g.dst)
    g2 = build_graph(c, min_visits=2)
    assert set(g2.names) == {"A", "B"}
    g0 = build_graph(c, min_visits=0)
    assert set(g0.names) == {"A", "B", "C", "D"}


def test_high_reject_uses_one_n0():
    c = _counts([("A", "B", 3), ("A", None, 97), ("B", "A", 6), ("B", None, 4)])
    g = build_graph(c, weight="high_reject")
    assert g.n0 == pytest.approx(110 / 2)
    w = {(g.names[s], g.names[d]): x for s, d, x in zip(g.src, g.dst, g.w)}
    assert w[("A", "B")] == pytest.approx(3 / 55) and w[("B", "A")] == pytest.approx(6 / 55)
    g2 = build_graph(c, weight="high_reject", n0=10)
    assert g2.w.max() == pytest.approx(0.6)


def test_bad_options():
    c = _counts([("A", "B", 3)])
    with pytest.raises(ValueError):
        build_graph(c, weight="nope")
    with pytest.raises(ValueError):
        build_graph(c, weight="high_reject", n0=0)
