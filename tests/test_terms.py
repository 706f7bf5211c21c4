"""Term-structured laws with exactly solved linear coefficients (potsearch.law.terms)."""
from __future__ import annotations

import random

import numpy as np

from potsearch.law import terms as T
from potsearch.law.scoring import score_source
from simplify_helpers import word_problem


def test_linear_coefficients_are_solved_exactly_and_match_the_scoring_path():
    data, _, _ = word_problem("1.6*length - 2.4*zipf")
    law = [T.Term("lin", "length"), T.Term("lin", "zipf")]
    r = T.fit(law, data)
    assert abs(r.coef[0] / 1.6 - 1) < 0.1 and abs(r.coef[1] / -2.4 - 1) < 0.1
    src, params = T.to_source(law, r)
    s = score_source(src, params, 0, data=data)
    assert s["error"] is None
    # the generic fitter, started at the exact solution, finds nothing lower; the exact solve is its equal
    assert abs(s["train_action"] - r.train_action) < 1e-9 * r.train_action
    cold = score_source(src, [0.0, 0.0], 0, data=data)
    assert r.train_action <= cold["train_action"] + 1e-12


def test_inner_parameters_by_variable_projection():
    data, _, _ = word_problem("1.5*length - 6.0*zipf/(length + 1)")
    law = [T.Term("lin", "length"), T.Term("ratio", "zipf", "length", 3.0)]
    r = T.fit(law, data)
    # the projected action at the true inner parameter (t = 1), coefficients solved exactly
    x = data.features
    M = np.column_stack([x["length"], x["zipf"] / (x["length"] + 1.0)])
    _, s_true = T.solve_linear(M - M.mean(axis=0), data)
    assert r.train_action <= s_true + 1e-9 and r.coef[1] < 0
    lin_only = T.fit([T.Term("lin", "length"), T.Term("lin", "zipf")], data)
    assert r.train_action < lin_only.train_action


def test_mutations_are_seeded_and_change_one_term():
    data, _, _ = word_problem("1.6*length - 2.4*zipf")
    lib = T.library(data.features)
    assert T.Term("lin", "zipf") in lib and T.Term("log", "length") in lib
    law = [T.Term("lin", "length"), T.Term("lin", "zipf")]
    a = [T.mutate(law, lib, random.Random(7)) for _ in range(3)]
    b = [T.mutate(law, lib, random.Random(7)) for _ in range(3)]
    assert a == b
    assert len(T.add_term(law, lib, random.Random(1))) == 3
    assert len(T.drop_term(law, random.Random(1))) == 1
    rep = T.replace_term(law, lib, random.Random(1))
    assert len(rep) == 2 and len(set(rep) & set(law)) == 1
    assert np.isfinite(T.fit(rep, data).train_action)


def test_term_search_finds_a_two_term_law_and_is_seeded():
    data, _, _ = word_problem("1.6*length - 2.4*zipf", n_words=150, per_state=60)
    a = T.search(data, steps=40, max_terms=3, seed=1)
    b = T.search(data, steps=40, max_terms=3, seed=1)
    assert [r["source"] for r in a] == [r["source"] for r in b]
    two = [r for r in a if r["n_terms"] == 2][0]
    assert 'x["length"]' in two["source"] and 'x["zipf"]' in two["source"]


def test_transform_keeps_the_feature():
    data, _, _ = word_problem("1.6*length - 2.4*zipf")
    lib = T.library(data.features)
    law = [T.Term("lin", "length")]
    for seed in range(10):
        new = T.transform_term(law, lib, random.Random(seed))
        assert new != law and "length" in (new[0].a, new[0].b)


def test_score_test_moves_add_the_missing_term():
    """From a law missing one hidden term, the score test ranks that term first (the library has
    hundreds of terms: a uniform draw would find it rarely), and a swap replaces a useless term by it."""
    import random

    from potsearch.law import terms as T
    from simplify_helpers import word_problem

    data, _, _ = word_problem("1.2*vowels - 2.0*zipf + 0.3*max_letter", per_state=120)
    lib = T.library(data.features)
    screen = T.Screen(lib, data)
    law = [T.Term("lin", "vowels"), T.Term("lin", "zipf")]
    drops = screen.drops(law)
    assert lib[int(drops.argmax())] in (T.Term("lin", "max_letter"), T.Term("sqrt", "max_letter"),
                                        T.Term("log", "max_letter"))
    assert all(drops[lib.index(t)] == -float("inf") for t in law)
    added = T.best_add(law, screen, random.Random(0))
    assert len(added) == 3 and added[:2] == law and "max_letter" in (added[2].a, added[2].b)
    swapped = T.best_swap([T.Term("lin", "first_letter")], screen, random.Random(0))
    assert len(swapped) == 1 and swapped[0] != T.Term("lin", "first_letter")
