"""Attribution: on a surrogate run whose hidden V uses vowels and zipf, those two rank above every
decoy feature the candidate also reads (length, rarity, first_letter), by every measure."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from potsearch.law.attribution import attribute, compile_terms
from potsearch.law.candidate import candidate_info
from potsearch.law.optimize import ActionObjective
from potsearch.search.polish import compile_source

from polish_helpers import CANDIDATE, make_run

HIDDEN_FEATURES = {"vowels", "zipf"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("att") / "run")


def test_attribute_command_ranks_hidden_features_first(run, capsys):
    from potsearch.cli.app import main
    from potsearch.store import RunStore

    assert main(["attribute", "--run", str(run), "--repeats", "5"]) == 0
    out = capsys.readouterr().out
    s = json.loads((run / "attribution" / "details.json").read_text())
    short = json.loads((run / "attribution" / "summary.json").read_text())
    assert short["ranking"] == s["ranking"] and short["top_feature"] in HIDDEN_FEATURES
    assert set(s["ranking"][:2]) == HIDDEN_FEATURES, s["ranking"]
    assert set(s["ranking"]) == {"vowels", "zipf", "length", "rarity", "first_letter"}
    feats = {f["name"]: f for f in s["features"]}
    decoys = [f for n, f in feats.items() if n not in HIDDEN_FEATURES]
    for h in HIDDEN_FEATURES:
        # ablation and permutation separate the hidden features from the decoys (the curvature need
        # not: a decoy with a large mean and a small coefficient can have a large p^2 d2S/dp2)
        assert feats[h]["ablation_delta"] > max(d["ablation_delta"] for d in decoys)
        assert feats[h]["permutation_mean"] > max(d["permutation_mean"] for d in decoys)
        assert feats[h]["permutation_mean"] > 3 * feats[h]["permutation_sd"]
        assert feats[h]["ablation_delta_heldout"] > 0
    # terms: the return expression has 6 additive terms; the hidden ones rank 1 and 2
    terms = s["terms"]
    assert len(terms) == 6
    assert {t["detail"].split("x[")[1].split("]")[0].strip("'\"") for t in terms[:2]} == HIDDEN_FEATURES
    # files, table and the stage record
    rows = list(csv.DictReader(open(run / "attribution" / "attribution.csv")))
    assert {r["kind"] for r in rows} == {"feature", "term", "param"}
    assert (run / "attribution" / "attribution.png").stat().st_size > 1000
    assert "vowels" in out and "ablation" in out
    st = RunStore.open(run)
    assert st.stage_results()["attribute"]["top_feature"] in HIDDEN_FEATURES
    st.close()


def test_attribute_pure_function_on_synthetic_formula():
    """No run store: a Metropolis chain driven by V = 1.2 a - 0.8 log1p(c) + 0.5 b^2, candidate with
    two decoys (d, e). Ablation, permutation and curvature rank a, b, c above d, e."""
    from potsearch.science.graph import build_graph
    from potsearch.law.optimize import lbfgs
    from potsearch.science.synthetic import metropolis_chain

    rng = np.random.default_rng(1)
    n = 250
    feats = {"a": rng.uniform(0, 5, n), "b": rng.normal(0, 1, n), "c": rng.uniform(1, 3, n),
             "d": rng.normal(0, 1, n), "e": rng.uniform(0, 1, n)}
    V = 1.2 * feats["a"] - 0.8 * np.log1p(feats["c"]) + 0.5 * feats["b"] ** 2
    ch = metropolis_chain(n_states=n, degree=6, samples_per_state=400, V=V, seed=2)
    g = build_graph(ch.counts)
    idx = [int(s[1:]) for s in g.names]
    x = {k: v[idx] for k, v in feats.items()}
    src = ('N_PARAMS = 5\ndef potential(x, p):\n    return p[0]*x["a"] + p[1]*np.log1p(x["c"]) + p[2]*x["b"]**2'
           ' + p[3]*x["d"] + p[4]*np.sqrt(x["e"])\n')
    ns = compile_source(src)
    obj = ActionObjective.from_graph(ns["potential"], x, g)
    p = lbfgs(obj, np.ones(5), max_evals=3000).x
    att = attribute(src, ns["potential"], p, obj, repeats=8, seed=0,
                    terms_fn=compile_terms(src, lambda s: compile_source(s, checked=False)))
    assert att.ranking("feature")[:3] == ["a", "b", "c"]
    assert set(att.ranking("feature")[3:]) == {"d", "e"}
    perm = {r.name: r.permutation_mean for r in att.by_kind("feature")}
    assert min(perm["a"], perm["b"], perm["c"]) > max(perm["d"], perm["e"])
    # at the optimum the first-order sensitivity is ~0 (documented caveat), the curvature is not
    sens = {r.name: r for r in att.by_kind("param")}
    assert all(abs(r.sensitivity) < 1e-4 for r in sens.values())
    assert sens["p[0]"].curvature > 100 * sens["p[3]"].curvature


def test_candidate_info_terms_and_features():
    info = candidate_info(CANDIDATE)
    assert info.n_params == 6
    assert info.features == ["vowels", "zipf", "length", "rarity", "first_letter"]
    assert [t.params for t in info.terms] == [[0], [1], [2], [3], [4], [5]]
    assert not math.isnan(len(info.terms))


def test_show_reports_attribution_after_attribute(run, cli):
    if not (run / "attribution" / "summary.json").exists():
        assert cli("attribute", "--run", run, "--repeats", "3")[0] == 0
    code, out, err = cli("show", run)
    assert code == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("attribution"))
    first_two = [t.split(" (")[0] for t in line.split(": ", 1)[1].split(" > ")[:2]]
    assert set(first_two) == HIDDEN_FEATURES
