"""potsearch compare: the pure comparison (science.compare), law transfer (law.transfer), the stage's
refusals and the escape conventions of the graph."""
import numpy as np
import pytest

from potsearch.cli.app import main
from potsearch.law.features import feature_table
from potsearch.law.scoring import _compile
from potsearch.law.transfer import Law, law_transfer, scoring_data
from potsearch.science.action import fit_exact
from potsearch.science.compare import RunData, compare_pair, deming, homogeneity
from potsearch.science.graph import build_graph
from potsearch.science.synthetic import metropolis_chain
from potsearch.testing.surrogate_run import load_words, make_surrogate_run


def _run(label, V, edges, seed, per_state=400, escape=0.0):
    ch = metropolis_chain(n_states=len(V), V=V, edges=edges, samples_per_state=per_state, seed=seed, escape=escape)
    return RunData.from_fit(label, fit_exact(build_graph(ch.counts)), ch.counts)


@pytest.fixture(scope="module")
def base():
    ch = metropolis_chain(n_states=60, seed=11)
    return ch.V, ch.edges


def test_scale_two_and_the_shifted_state_flagged(base):
    V, E = base
    Va = 2 * V
    Va[7] += 3.0
    p = compare_pair(_run("A", Va, E, 2), _run("B", V, E, 3), B=100, seed=0)
    s = p.summary
    assert abs(s["scale"] - 2) < 0.2
    assert s["scale_ci"][0] <= 2 <= s["scale_ci"][1]
    assert p.flagged == ["S00007"]
    assert p.aligned.set_index("state").loc["S00007", "prefers"] == "B"   # A's potential is higher there
    assert s["shared"] == s["aligned"] == 60 and s["only_a"] == s["only_b"] == 0


def test_same_potential_flags_almost_nothing(base):
    V, E = base
    V = V[:30]
    E = E[(E < 30).all(axis=1)]
    E = np.unique(np.concatenate([E, np.stack([np.arange(29), np.arange(1, 30)], 1)]), axis=0)
    flags, tested, covered = 0, 0, 0
    for seed in range(20):
        p = compare_pair(_run("A", V, E, 100 + seed), _run("B", V, E, 200 + seed), B=40, seed=seed)
        flags += int(p.aligned["flagged"].sum())
        tested += len(p.aligned)
        covered += p.summary["scale_ci"][0] <= 1 <= p.summary["scale_ci"][1]
    assert flags / tested <= 0.05
    assert flags <= 2        # Holm at 5 %: a false flag in at most ~1 seed of 20
    assert covered >= 16


def test_deming_recovers_the_line_with_noise_in_both():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 2000)
    s, c = deming(x + rng.normal(0, 0.3, 2000), 3 * x + 1 + rng.normal(0, 0.9, 2000), delta=9.0)
    assert abs(s - 3) < 0.1 and abs(c - 1) < 0.1


def test_homogeneity_tells_same_rows_from_different_ones(base):
    V, E = base
    same = homogeneity(_run("A", V, E, 1).counts, _run("B", V, E, 2).counts)[1]
    diff = homogeneity(_run("A", V, E, 1).counts, _run("B", 3 * V, E, 2).counts)[1]
    assert same["p"] > 0.01 and diff["p"] < 1e-6 and diff["states_differing"] > same["states_differing"]


def test_escapes_condition_removes_the_escape_rate():
    """A uniform escape rate changes N(f) but not the preference among valid moves."""
    ch = metropolis_chain(n_states=40, seed=3, samples_per_state=2000, escape=0.5)
    cnt = fit_exact(build_graph(ch.counts, escapes="count"))
    cond = fit_exact(build_graph(ch.counts, escapes="condition"))
    g = build_graph(ch.counts, escapes="condition")
    assert (g.visits < build_graph(ch.counts).visits).all()
    err = lambda r: np.std((r.scc_potential - r.scc_potential.mean()) - (ch.V - ch.V.mean()))  # noqa: E731
    assert err(cond) < err(cnt)
    with pytest.raises(ValueError):
        build_graph(ch.counts, escapes="nope")


def test_law_transfer_same_law_other_scale():
    words = load_words()[:150]
    X = feature_table("word", words)
    law_v = 0.8 * X["vowels"] - 0.6 * X["zipf"]
    ch = metropolis_chain(n_states=len(words), V=law_v, names=words, samples_per_state=200, seed=1)
    chb = metropolis_chain(n_states=len(words), V=2 * law_v, names=words, edges=ch.edges, samples_per_state=200, seed=2)
    src = "N_PARAMS = 2\ndef potential(x, p):\n    return p[0] * x['vowels'] + p[1] * x['zipf']\n"
    fn, n = _compile(src)
    a_params = fit_and_params(fn, n, ch.counts, X, words)
    law_a = Law("A", fn, n, a_params)
    native_src = "N_PARAMS = 2\ndef potential(x, p):\n    return p[1] * x['zipf'] + p[0] * x['vowels']\n"
    fnb, nb = _compile(native_src)
    t = law_transfer(law_a, Law("B", fnb, nb, [1.0, -1.0]), chb.counts, X, words, B=20, seed=0)
    se = max(t.transferred["gap_se"], t.native["gap_se"])
    assert abs(t.gap_difference) <= 2 * se + 1e-9
    assert abs(t.transferred["params"][0] / a_params[0] - 2) < 0.4     # the parameters carry the scale
    # a wrong law (vowels only) transfers measurably worse: the check can fail
    fw, nw = _compile("N_PARAMS = 1\ndef potential(x, p):\n    return p[0] * x['vowels']\n")
    w = law_transfer(Law("W", fw, nw, [1.0]), Law("B", fnb, nb, [1.0, -1.0]), chb.counts, X, words, B=20)
    assert w.gap_difference > 2 * max(w.transferred["gap_se"], w.native["gap_se"])


def fit_and_params(fn, n, counts, X, words):
    from potsearch.law.scoring import score_function

    return score_function(fn, n, scoring_data(counts, X, words))["params"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("cmp")
    make_surrogate_run(d / "a", n_samples=3000, n_words=60, seed=1)
    make_surrogate_run(d / "b", n_samples=3000, n_words=60, seed=1, formula="2 * (0.8 * vowels - 0.6 * zipf)")
    return d


def _one_line_exit2(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error:")
    return err


def test_cli_compare_prints_and_refuses(two_runs, capsys, tmp_path):
    a, b = str(two_runs / "a"), str(two_runs / "b")
    assert main(["compare", a, b, "--bootstrap", "20", "--no-transfer"]) == 0
    out = capsys.readouterr().out
    assert "a vs b:" in out and "scale: V_a =" in out and "60 shared" in out
    assert "at least two runs" in _one_line_exit2(capsys, ["compare", a])
    (tmp_path / "nofit").mkdir()
    make_surrogate_run(tmp_path / "c", n_samples=600, n_words=20, seed=3)
    import shutil

    shutil.rmtree(tmp_path / "c" / "fit")
    assert "no fit" in _one_line_exit2(capsys, ["compare", a, str(tmp_path / "c")])
    from potsearch.store import RunStore

    shutil.copytree(two_runs / "b", tmp_path / "f")
    with RunStore.open(tmp_path / "f") as st:
        st.conn.execute("UPDATE runs SET kind='fitter'")
        st.conn.commit()
    assert "different agents" in _one_line_exit2(capsys, ["compare", a, str(tmp_path / "f")])
    assert main(["compare", a, str(tmp_path / "f"), "--force", "--bootstrap", "0", "--no-transfer"]) == 0
    assert "different agents" in capsys.readouterr().out


def test_different_escape_conventions_refused_unless_forced(two_runs, capsys, tmp_path):
    import shutil

    shutil.copytree(two_runs / "b", tmp_path / "e")
    assert main(["fit", str(tmp_path / "e"), "--escapes", "condition", "--json"]) == 0
    out = capsys.readouterr().out
    assert '"escapes": "condition"' in out and '"escape_convention": "condition"' in out
    a = str(two_runs / "a")
    assert "escape conventions" in _one_line_exit2(capsys, ["compare", a, str(tmp_path / "e")])
    assert main(["compare", a, str(tmp_path / "e"), "--force", "--bootstrap", "0", "--no-transfer", "--json"]) == 0
    assert "escape conventions" in capsys.readouterr().out


def test_api_compare_returns_frames(two_runs):
    import potsearch as ps
    from potsearch.core.errors import InputError

    res = ps.compare(two_runs / "a", two_runs / "b", bootstrap=10, transfer=False)
    pair = res.pairs[("a", "b")]
    assert {"state", "residual", "z", "q", "flagged"} <= set(pair.aligned.columns)
    assert list(res.runs["run"]) == ["a", "b"] and list(res.comparison.summary["a"]) == ["a"]
    assert 0.35 < pair.summary["scale"] < 0.7        # b's potential is 2 x a's: V_a = s V_b + c with s ~ 1/2
    with pytest.raises(InputError):
        ps.compare(two_runs / "a", two_runs / "b", bootstrp=10)
