"""`potsearch show`: plain and correct when piped; formulas (sympy / LaTeX) that read back."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from potsearch.law.formula import FormulaError, formula_of, from_latex, latex_legend, latex_text, translate

from polish_helpers import CANDIDATE, make_run


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("show") / "run")


def _show(run, *extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    env.pop("FORCE_COLOR", None)
    proc = subprocess.run([sys.executable, "-m", "potsearch", "show", str(run), *extra], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_show_piped_is_plain_and_complete(run):
    from potsearch.store import RunStore

    out = _show(run)
    assert "\x1b" not in out  # no ANSI escape codes when stdout is a pipe
    st = RunStore.open(run)
    b = st.candidates.best()
    best = (b.id, json.dumps(b.params), b.train_action, b.heldout_action, b.gap)
    st.close()
    lines = out.splitlines()
    assert lines[0].endswith(f"candidate {best[0]} (best)")
    assert '    return (p[0] * x["vowels"] + p[1] * x["zipf"] + p[2] * x["length"]' in out  # the source, verbatim
    params = json.loads(best[1])
    assert f"parameters ({len(params)}): p[0] = {params[0]:.6g}" in out
    assert f"train action: {best[2]:.6f}" in out
    assert f"held-out action: {best[3]:.6f}" in out
    assert f"gap: {best[4]:.6f}" in out
    fit = json.loads((run / "fit" / "fit.json").read_text())
    assert f"S_min (fit, all samples): {fit['action']:.6f}" in out
    # lineage: the child, then its parent (the seed)
    i = lines.index("lineage:")
    assert "#2 llm:mutate  model local  island 0  round 1" in lines[i + 1]
    assert "<- #1 seed" in lines[i + 2]
    # directionality: shares add up to 100 %
    d = next(ln for ln in lines if ln.startswith("directionality"))
    shares = [float(t.rstrip("%")) for t in d.split() if t.endswith("%")]
    assert len(shares) == 3 and abs(sum(shares) - 100) < 0.05
    assert shares[0] > shares[1]  # the fitted V explains the moves: most high-kernel moves go down
    assert "attribution: not computed" in out
    # the formula comes first (a run without evolve's selection: the candidate's canonical form)
    assert lines[1].startswith("law (as found, constants folded): V = ") and "vowels" in lines[1]
    assert lines[2].startswith("latex: ") and lines[3] == "source:"
    # --top K: the front with formulas, not a repeat of the whole output
    top = _show(run, "--top", "3").splitlines()
    assert "Pareto front" in top[0] and "lineage:" not in top
    st = RunStore.open(run)
    n_front = len(st.candidates.pareto())
    st.close()
    assert sum(" V = " in ln for ln in top) == min(3, n_front) and f"{n_front} candidates" in top[0]


def test_show_directionality_matches_own_computation(run):
    """The statistic show prints (diagnostics.directionality) equals a computation of its own here."""
    from potsearch.law.features import feature_table
    from potsearch.store.rundir import load_fit
    from potsearch.science.graph import build_graph
    from potsearch.search.polish import compile_source
    from potsearch.store import RunStore

    st = RunStore.open(run)
    g = build_graph(st.counts())
    row = (json.dumps(st.candidates.best().params),)
    st.close()
    load_fit(run)
    fn = compile_source(CANDIDATE)["potential"]
    V = fn(feature_table("word", g.names), np.array(json.loads(row[0])))
    sel = g.n / g.visits[g.src] >= 0.05
    d = np.asarray(V, dtype=float)[g.src[sel]] - np.asarray(V, dtype=float)[g.dst[sel]]
    d = d[np.isfinite(d)]
    own = {"n_transitions": len(d), "down": float((d > 1e-9).sum() / max(len(d), 1))}
    out = _show(run)
    line = next(ln for ln in out.splitlines() if ln.startswith("directionality"))
    assert f"{own['n_transitions']})" in line
    assert f"down {100 * own['down']:.2f}%" in line


def test_show_latex_parses_back(run):
    out = _show(run, "--format", "latex")
    assert "\x1b" not in out
    lines = out.splitlines()
    i = lines.index(next(ln for ln in lines if ln.startswith("formula (latex")))
    tex = lines[i + 1].strip()
    legend = [ln.strip() for ln in lines[i + 2:] if ln.strip().startswith("%")]
    assert len(legend) == 5 and r'x_{\mathit{firstletter}} = x["first_letter"]' in legend[-1] or any(
        "first_letter" in ln for ln in legend)
    # the formula the LaTeX came from, and a numeric check of it against the candidate's own code
    from potsearch.search.polish import compile_source
    from potsearch.store import RunStore

    st = RunStore.open(run)
    params = st.candidates.best().params
    st.close()
    form = formula_of(CANDIDATE, params)
    assert latex_text(form.expr) == tex
    pytest.importorskip("antlr4", reason="sympy's LaTeX parser needs antlr4-python3-runtime==4.11.*")
    back = from_latex(tex, form)
    rng = np.random.default_rng(0)
    x = {k: rng.uniform(1, 5, 20) for k in form.features}
    fn = compile_source(CANDIDATE)["potential"]
    import sympy

    f = sympy.lambdify(list(form.features.values()), back, "numpy")
    got = f(*[x[k] for k in form.features])
    assert np.allclose(got, fn(x, np.array(params)), rtol=1e-3)   # numbers printed to 4 significant digits


def test_latex_of_abs_max_and_arctan_reads_back():
    """from_latex reads what the one printer writes for |a|, max and arctan (sympy's parser does not
    read \\left|{..}\\right| nor \\operatorname{atan} as printed)."""
    pytest.importorskip("antlr4", reason="sympy's LaTeX parser needs antlr4-python3-runtime==4.11.*")
    from potsearch.law.simplify import canonical_form

    law = ("N_PARAMS = 3\ndef potential(x, p):\n    return p[0] * np.log1p(np.abs(x['rare_letters'] - 2)) "
           "+ p[1] * np.maximum(x['zipf'], 1.5) + p[2] * np.arctan(x['length'])\n")
    c = canonical_form(law, [1.25, -0.5, 0.75])
    assert r"\left|" in c.latex and r"\operatorname{atan}" in c.latex and r"\max" in c.latex
    shown = formula_of(c.source, c.params)
    back = from_latex(c.latex, shown)
    x = {shown.features[k]: v for k, v in (("rare_letters", 5.0), ("zipf", 3.0), ("length", 4.0))}
    assert float(back.subs(x)) == pytest.approx(float(c.expr.subs(x)), rel=1e-3)


def test_formula_translation_gp_and_llm_code():
    gp_src = ("N_PARAMS = 3\n\ndef potential(x, p):\n    return p[0] * ((x[\"vowels\"] * p[1]) "
              "- np.log1p(np.abs(x[\"zipf\"] / p[2])))\n")
    llm_src = ("N_PARAMS = 2\ndef potential(x, p):\n    \"\"\"doc\"\"\"\n    a = np.tanh(x['length'] / 4)\n"
               "    return p[0] * a + p[1] * np.maximum(x['zipf'], 1.0) + math.pi\n")
    rng = np.random.default_rng(0)
    from potsearch.search.polish import compile_source

    for src, p in ((gp_src, [2.0, 0.5, 3.0]), (llm_src, [1.5, -0.25])):
        form = translate(src, p)
        x = {k: rng.uniform(0.5, 5, 30) for k in form.features}
        assert np.allclose(form.lambdify()(x, p), compile_source(src)["potential"](x, np.array(p)))
        # sympy's own round trip: printing and re-reading gives the same expression
        import sympy

        assert sympy.sympify(sympy.srepr(form.expr)) == form.expr
    sym = translate(gp_src)
    assert {str(s) for s in sym.expr.free_symbols} == {"p_0", "p_1", "p_2", "vowels", "zipf"}
    assert "p_{1}" in latex_text(sym.expr) and latex_legend(sym)[0] == r'\mathrm{vowels} = x["vowels"]'
    with pytest.raises(FormulaError, match="statement If in potential"):
        translate("N_PARAMS = 1\ndef potential(x, p):\n    if p[0] > 0:\n        return x['a']\n"
                 "    return p[0]\n")


def test_show_formula_fallback_and_sympy_format(run):
    out = _show(run, "--format", "sympy", "--symbolic")
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("V = "))
    assert "p_0*vowels" in line and "p_1*zipf" in line


def test_show_candidate_and_bad_candidate(run, cli):
    code, out, err = cli("show", run, "--candidate", "1")
    assert code == 0 and "candidate 1" in out.splitlines()[0]
    code, out, err = cli("show", run, "--candidate", "999")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "999" in err


def test_pareto_front_is_non_dominated():
    from types import SimpleNamespace as R

    from potsearch.store.candidates import pareto_front

    rows = [R(id=1, train_action=0.30, complexity=5), R(id=2, train_action=0.25, complexity=9),
            R(id=3, train_action=0.27, complexity=12), R(id=4, train_action=0.20, complexity=30),
            R(id=5, train_action=0.31, complexity=3), R(id=6, train_action=float("nan"), complexity=1)]
    assert [r.id for r in pareto_front(rows)] == [5, 1, 2, 4]


def test_show_candidate_off_the_front_is_simplified_now(run, cli):
    """A candidate no selection simplified is simplified on the run's data when shown (from its sympy
    translation); nothing is written to the store, and --no-simplify skips it."""
    before = (run / "store.sqlite").stat().st_mtime_ns
    code, out, err = cli("show", run, "--candidate", "2")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith("simplifies to"))
    assert "(computed now, not stored; training action" in line and " V = " in line
    assert (run / "store.sqlite").stat().st_mtime_ns == before
    code, out, err = cli("show", run, "--candidate", "2", "--no-simplify")
    assert code == 0 and "simplifies to" not in out


def test_show_says_when_the_law_predicts_held_out_moves_worse_than_the_per_state_table():
    from potsearch.stages.show import heldout_warning

    assert "worse than the per-state table (0.2095 vs 0.1473)" in heldout_warning(0.2095, 0.1473)
    assert heldout_warning(0.14, 0.1473) is None and heldout_warning(None, 0.1) is None
    assert heldout_warning(0.2, None) is None and heldout_warning(float("nan"), 0.1) is None
