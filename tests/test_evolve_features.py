"""Feature library: values on known words, longest-first tokens, the embedded copy."""
import numpy as np
import pytest

from potsearch.law.features import (
    FEATURES, embedded_source, feature_table, guess_agent_kind, tokenize_expression
)


def test_word_features_known_words():
    t = feature_table("word", ["ATTITUDE", "buzzy", "EXCELLENT", "WIZARDS"])
    assert set(t) == set(FEATURES["word"])
    assert t["length"].tolist() == [8, 5, 9, 7]
    assert t["letter_sum"].tolist() == [100, 100, 100, 100]
    assert t["sum_dev"].tolist() == [0, 0, 0, 0]
    assert t["vowels"].tolist() == [4, 1, 3, 2]          # A I U E / U / E E E / I A
    assert t["consonants"].tolist() == [4, 4, 6, 5]
    assert t["distinct"].tolist() == [6, 4, 6, 7]         # ATIUDE / BUZY / EXCLNT / WIZARDS
    assert t["repeats"].tolist() == [2, 1, 3, 0]
    assert t["doubles"].tolist() == [1, 1, 1, 0]          # TT, ZZ, LL
    assert t["max_letter"].tolist() == [21, 26, 24, 26]
    assert t["min_letter"].tolist() == [1, 2, 3, 1]
    assert t["first_letter"].tolist() == [1, 2, 5, 23]
    assert t["last_letter"].tolist() == [5, 25, 20, 19]
    assert t["mean_letter"][0] == pytest.approx(12.5)
    assert t["var_letter"][1] == pytest.approx(np.var([2, 21, 26, 26, 25]))
    assert t["rarity"][1] == 3 + 1 + 10 + 10 + 4          # B U Z Z Y
    assert t["zipf"][0] > 3 and t["zipf"][1] > 0           # wordfreq ships its data (offline)
    assert all(v.dtype == float and v.shape == (4,) for v in t.values())


def test_word_features_empty_and_odd_text():
    t = feature_table("word", ["", "a-b"])
    assert t["length"].tolist() == [0, 2]
    assert np.all(np.isfinite(np.stack(list(t.values()))))


def test_tokens_longest_first():
    # design notes section 3: the reference tokenizer matched `log` inside `log_v_k_nu` and `tan` in `tanh`
    toks = [v for k, v in tokenize_expression("tanh(param1*log_v_k_nu)+log(x)**2") if k == "id"]
    assert toks == ["tanh", "param1", "log_v_k_nu", "log", "x"]
    t = feature_table("fitter", ["tanh(param1*log_v_k_nu) + param2", "tan(log_v_k_nu)", "log(log_v_k_nu)"])
    assert t["fn_tanh"].tolist() == [1, 0, 0]
    assert t["fn_tan"].tolist() == [0, 1, 0]
    assert t["fn_log"].tolist() == [0, 0, 1]
    assert t["n_vars"].tolist() == [1, 1, 1]   # log_v_k_nu is a variable, never a function


def test_fitter_features():
    exprs = ["param1 * exp(-param2 * log_v_k_nu) + param3", "((param1 + log_v_k_nu) / 2", "x ** 2 - 1"]
    t = feature_table("fitter", exprs, {exprs[2]: {"score": 0.25}})
    assert t["n_params"].tolist() == [3, 1, 0]
    assert t["valid"].tolist() == [1, 0, 1]
    assert t["depth"].tolist() == [1, 2, 0]
    assert t["n_pow"].tolist() == [0, 0, 1]
    assert t["n_div"].tolist() == [0, 1, 0]
    assert t["n_sub"].tolist() == [1, 0, 1]
    assert t["fn_exp"].tolist() == [1, 0, 0]
    assert t["score"].tolist() == [0, 0, 0.25] and t["has_score"].tolist() == [0, 0, 1]


def test_guess_agent_kind():
    assert guess_agent_kind(["ATTITUDE", "BUZZY"]) == "word"
    assert guess_agent_kind(["param1*x", "BUZZY"]) == "fitter"


@pytest.mark.parametrize("kind,texts", [("word", ["ATTITUDE", "BUZZY", "ZZZ"]),
                                        ("fitter", ["param1*log(x)+param2", "tanh(x"])])
def test_embedded_source_is_the_same_code(kind, texts):
    ns = {}
    exec(compile(embedded_source(kind), "<embedded>", "exec"), ns)
    a, b = ns["feature_table"](texts), feature_table(kind, texts)
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert "potsearch" not in embedded_source(kind).replace("potsearch.law.features", "")


def test_fitter_terms_feature_counts_top_level_additive_terms():
    t = feature_table("fitter", ["param1 + param2*x - param3*exp(-x/100)", "param1*(x + 1)", "-x + 2", "x*-3 + 1",
                                 "param1*x**2 + param2/(x - 10)"])
    assert t["terms"].tolist() == [3.0, 1.0, 2.0, 2.0, 2.0]
