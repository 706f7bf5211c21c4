"""The term-structured operator inside the island search (potsearch.search.terms_op)."""
from __future__ import annotations

import dataclasses
import json

import pytest

from potsearch.search.config import SearchConfig, parse_config
from potsearch.search.run import evolve
from potsearch.store import RunStore

from evolve_helpers import small_run

CFG = SearchConfig(rounds=12, islands=2, population=8, offspring=3, migrate_every=4, reset_every=6,
                   checkpoint_every=4, seed=5, terms_mix=0.3)


def _rows(run):
    with RunStore.open(run, readonly=True) as st:
        rows = sorted(st.candidates.rows(valid_only=False), key=lambda r: r.uid)
    return [(r.uid, r.source, json.dumps(r.params), json.dumps(r.parents), r.operator, r.train_action,
             json.dumps(r.meta, sort_keys=True)) for r in rows]


@pytest.mark.parametrize("loop", ["async", "lockstep"])
def test_terms_children_are_stored_scored_and_seeded(tmp_path_factory, loop):
    cfg = dataclasses.replace(CFG, loop=loop)
    a, b = small_run(tmp_path_factory, f"ta_{loop}"), small_run(tmp_path_factory, f"tb_{loop}")
    evolve(a, cfg)
    evolve(b, cfg)
    ra = _rows(a)
    assert ra == _rows(b)                                  # a seeded run with the operator on repeats
    terms = [r for r in ra if r[4] == "terms"]
    uids = {r[0]: r for r in ra}
    assert len(terms) >= 10
    for uid, src, params, parents, _op, train, meta in terms:
        m = json.loads(meta)
        assert src.startswith("N_PARAMS") and m["terms"] and m["terms_op"] in ("new", "add", "drop", "replace",
                                                                             "transform", "best_add", "best_swap", "sweep")
        assert train is not None and len(json.loads(params)) == len(m["terms"]) + sum(
            t[0] in ("ratio", "exp") for t in m["terms"])
        for p in json.loads(parents):                      # a mutated law names its parent, a terms law
            assert uids[p][4] == "terms"
    assert any(json.loads(r[3]) for r in terms)           # some children were mutated from a stored law
    assert {"best_add", "best_swap"} & {json.loads(r[6])["terms_op"] for r in terms}   # the score-test moves ran


def test_operator_off_names_the_search_made_before_it_existed(tmp_path_factory, monkeypatch):
    """terms_mix 0: the search id (hence every uid) is the one of a config without the two keys, and
    the run draws nothing for the operator (the candidates do not depend on terms_max)."""
    from potsearch.search.islands import Search
    from potsearch.search.problem import load_problem

    run = small_run(tmp_path_factory, "off")
    off = dataclasses.replace(CFG, terms_mix=0.0)
    prob = load_problem(run, seed=off.seed)

    class _Store:
        def run_id(self):
            return 1

    sid_off = Search(off, prob, _Store()).sid
    plain = SearchConfig.to_dict
    monkeypatch.setattr(SearchConfig, "to_dict", lambda self: {k: v for k, v in plain(self).items()
                                                               if k not in ("terms_mix", "terms_max")})
    assert Search(off, prob, _Store()).sid == sid_off
    monkeypatch.undo()
    assert Search(CFG, prob, _Store()).sid != sid_off      # the operator on: another search
    a, b = small_run(tmp_path_factory, "off_a"), small_run(tmp_path_factory, "off_b")
    evolve(a, off)
    evolve(b, dataclasses.replace(off, terms_max=2))
    ra = _rows(a)
    assert ra == _rows(b) and not [r for r in ra if r[4] == "terms"]


def test_resume_continues_the_same_search(tmp_path_factory):
    whole, part = small_run(tmp_path_factory, "whole"), small_run(tmp_path_factory, "part")
    evolve(whole, CFG)
    evolve(part, dataclasses.replace(CFG, rounds=8))       # checkpoints at 4 and 8
    evolve(part, CFG, resume=True)
    assert _rows(part) == _rows(whole)
    sw = json.loads((whole / "evolve" / "summary.json").read_text())
    sp = json.loads((part / "evolve" / "summary.json").read_text())
    assert sw["best"] == sp["best"]


def test_config_keys_are_validated():
    cfg = parse_config("terms_mix: 0.25\nterms_max: 3\n")
    assert cfg.terms_mix == 0.25 and cfg.terms_max == 3
    from potsearch.core.errors import InputError

    with pytest.raises(InputError, match="terms_mix"):
        parse_config("terms_mix: 1.5\n")
    with pytest.raises(InputError, match="terms_max"):
        parse_config("terms_max: 0\n")


def test_laws_with_a_disguised_linear_term_do_not_enter_the_archive():
    from types import SimpleNamespace

    import numpy as np

    from potsearch.law import terms as T
    from potsearch.search.terms_op import TermsOperator

    x = {"a": np.array([1.0, 2.0, 3.0, 4.0]), "b": np.array([0.0, 1.0, 2.0, 3.0])}
    s = SimpleNamespace(problem=SimpleNamespace(data=SimpleNamespace(features=x)), features=["a", "b"],
                        cfg=SimpleNamespace(terms_max=3))
    op = TermsOperator(s)
    ratio, expo = [T.Term("ratio", "a", "b", 1.0)], [T.Term("exp", "a", theta0=-0.1)]
    assert op.well_conditioned(ratio, [1.0, 2.0])
    assert not op.well_conditioned(ratio, [5000.0, 2.0])      # a/(b + 5000) ~ a/5000: linear in disguise
    assert not op.well_conditioned(ratio, [-1.5, 2.0])        # b - 1.5 changes sign among the states: a pole
    assert op.well_conditioned(expo, [-0.5, 1.0])
    assert not op.well_conditioned(expo, [-1e-4, 1.0])        # exp(-1e-4 a) ~ 1 - 1e-4 a
    prog = SimpleNamespace(operator="terms", ok=True, train_action=0.5, uid="u", params=[5000.0, 2.0],
                           meta={"terms": [["ratio", "a", "b", 1.0]]})
    op.observe([prog])
    assert op.archive == {}
    prog.params = [1.0, 2.0]
    op.observe([prog])
    assert op.archive["1"][0]["uid"] == "u" and "1-plain" not in op.archive   # a ratio has an inner parameter


def test_plain_laws_keep_their_own_archive_slots():
    """Laws with a fitted inner parameter and a lower action fill a size's slots; the best laws of that
    size without one are kept beside them (the next such law is one mutation away), and the archive
    survives a checkpoint."""
    from types import SimpleNamespace

    import numpy as np

    from potsearch.law import terms as T
    from potsearch.search.terms_op import ARCHIVE, TermsOperator

    rng = np.random.default_rng(0)
    x = {k: rng.uniform(1, 5, 50) for k in "abc"}
    s = SimpleNamespace(problem=SimpleNamespace(data=SimpleNamespace(features=x)), features=list(x),
                        cfg=SimpleNamespace(terms_max=3))
    op = TermsOperator(s)

    def prog(uid, law, train, params):
        return SimpleNamespace(operator="terms", ok=True, train_action=train, uid=uid, params=params,
                               meta={"terms": [list(t) for t in law]})

    nonlinear = [prog(f"r{i}", [("ratio", "a", "b", 1.0 + i), ("lin", "c", "", 0.0)], 0.40 + 0.001 * i, [1.0, 1.0, 1.0])
                 for i in range(ARCHIVE + 2)]
    linear = prog("lin", [("log", "a", "", 1.0), ("lin", "b", "", 0.0)], 0.45, [1.0, 1.0])
    op.observe(nonlinear + [linear])
    assert [e["uid"] for e in op.archive["2"]] == [f"r{i}" for i in range(ARCHIVE)]   # by action only
    assert [e["uid"] for e in op.archive["2-plain"]] == ["lin"]                       # kept beside them
    again = TermsOperator(s)
    again.restore(op.state())
    assert again.archive == op.archive
