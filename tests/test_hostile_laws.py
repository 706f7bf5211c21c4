"""Hostile candidate laws on the post-search path: translation (evolve.simplify), selection
(evolve.selection), `potsearch show` (showstage) and the report (evolve_report).

The project rule: code written by a model is hostile in every stage. It must never run outside the
sandbox, must not hang or crash selection / show / report, and bad input gives one clear line.

Every case is time-bounded (``within``: SIGALRM, a hang fails the test instead of blocking the run).
Most hostile sources here pass the sandbox allowlist (``check_source``) and evaluate to finite
values, i.e. they can be scored by the sandbox and stored as valid candidates by a real search.
"""
from __future__ import annotations

import contextlib
import csv
import json
import math
import signal
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from potsearch.law import simplify as S
from potsearch.sandbox.allowlist import check_source
from simplify_helpers import word_problem


# ----------------------------------------------------------------------------- time bound
class _Hang(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` of the code under test eats it."""


@contextlib.contextmanager
def within(seconds: float, what: str):
    def on_alarm(signum, frame):
        raise _Hang()

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Hang:
        pytest.fail(f"{what}: still running after {seconds:g} s (hang on hostile input)", pytrace=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _src(body: str, n_params: int = 1) -> str:
    return f"N_PARAMS = {n_params}\ndef potential(x, p):\n    return {body}\n"


# ----------------------------------------------------------------------------- hostile sources
F8 = ["length", "zipf", "vowels", "consonants", "distinct", "doubles", "rarity", "max_letter"]
# exponents within the translator's own guard (<= 16) and the allowlist's (<= 64); finite on the data
NESTED_POWER = _src('p[0] * ((x["vowels"] / 9 + 1) ** 16 + 1) ** 16')
MULTINOMIAL = _src("p[0] * (" + " + ".join(f'x["{f}"]' for f in F8) + ") ** 16 / 1e30")
# 26 lines: each assignment doubles the expression *tree* (sympy shares the subtree, walks do not)
SHARED_SUBTREE = ('N_PARAMS = 1\ndef potential(x, p):\n    y = p[0] * x["vowels"] + x["zipf"]\n'
                  + "    y = y + np.tanh(y)\n" * 24 + "    return y\n")
# an exact rational with > 4300 digits (Python's int->str limit); a / (a + 1) is ~1.0 when run
HUGE_RATIONAL = ('N_PARAMS = 1\ndef potential(x, p):\n    a = 99999999999\n' + "    a = a * a\n" * 11
                 + '    return p[0] * x["vowels"] + (a / (a + 1)) * x["zipf"]\n')
TRUE = 'N_PARAMS = 2\n\n\ndef potential(x, p):\n    return p[0] * (x["length"] + p[1] * x["zipf"])\n'
ONE = 'N_PARAMS = 1\n\n\ndef potential(x, p):\n    return p[0] * x["length"]\n'


@pytest.fixture(scope="module")
def data():
    return word_problem("1.6*length - 2.4*zipf")[0]


def _scored_rows(data, sources):
    from potsearch.law.scoring import score_source   # our own test laws (TRUE / ONE)

    rows = []
    for k, (src, p0) in enumerate(sources):
        r = score_source(src, p0, 0, data=data)
        assert r["error"] is None, r
        rows.append({"uid": f"c{k}", "source": src, "params": r["params"], "train_action": r["train_action"],
                     "heldout_action": r["heldout_action"], "complexity": r["complexity"]})
    return rows


# ============================================================================= translation
@pytest.mark.parametrize("src", [NESTED_POWER, MULTINOMIAL, SHARED_SUBTREE],
                         ids=["nested_power", "multinomial_16", "shared_subtree"])
def test_canonical_form_is_bounded_on_allowlisted_sources(src):
    """A few lines that the sandbox accepts and scores (finite values) must not stall the translator:
    sp.expand of ((v/9+1)**16+1)**16 / (8 features)**16, or walks of a doubling tree, run for minutes."""
    assert check_source(src) == []                       # a real search can score and store it
    with within(4, "canonical_form"):
        S.canonical_form(src, [0.5])


def test_canonical_form_never_raises_on_a_deep_unary_chain():
    """Documented: 'Never raises for a candidate's fault'. 10,000 unary minus signs make the parser
    raise MemoryError, which canonical_form does not catch."""
    src = _src("-" * 10000 + 'x["vowels"]')
    with within(4, "canonical_form"):
        try:
            c = S.canonical_form(src, [])
        except MemoryError:
            pytest.fail("canonical_form raised MemoryError on a 10 kB source (parser stack)", pytrace=False)
    assert not c.ok


def test_law_values_returns_none_on_a_deep_unary_chain(data):
    """selection.law_values: 'None if untranslatable' -- it lets MemoryError through (one_se dies)."""
    from potsearch.law.selection import law_values

    src = _src("-" * 10000 + 'x["vowels"]')
    with within(4, "law_values"):
        try:
            v = law_values(src, [], data.features, data.n_states)
        except MemoryError:
            pytest.fail("law_values raised MemoryError instead of returning None", pytrace=False)
    assert v is None


def test_latex_of_a_hostile_feature_name_stays_inside_mathrm():
    """formula.latex_text (once simplify's printer) escaped only '_' in a name: x["a}\\input{/etc/passwd}"] closes \\mathrm{..}
    and injects a control sequence into the law's LaTeX (stored, shown, put in the report).
    formula.latex_name escapes the same name correctly."""
    c = S.canonical_form(_src('p[0] * x["a}\\\\input{/etc/passwd}"]'), [2.0])
    assert not c.ok or "\\input" not in c.latex, c.latex


def test_a_feature_named_like_a_parameter_stays_a_feature():
    """x["P_1"] is read as the re-parametrisation symbol P_1: the canonical source becomes
    p[0] * p[1] (one parameter stored, an IndexError when run) and 'ok' is True."""
    c = S.canonical_form(_src('p[0] * x["P_1"]'), [2.0])
    assert not c.ok or "x['P_1']" in c.source, c.source


@pytest.mark.parametrize("body,params", [('p[0] * x["vowels"]', [math.inf]),
                                         ('x["vowels"] * 1e308 * 10', [])], ids=["inf_param", "overflow_literal"])
def test_canonical_form_gives_up_on_non_finite_coefficients(body, params):
    """An infinite coefficient is not a law: NaN already gives ok=False ('constant potential'), but
    inf gives ok=True, text 'oo*vowels' and params [inf] (non-JSON 'Infinity' in the store)."""
    c = S.canonical_form(_src(body), params)
    assert not c.ok or all(math.isfinite(v) for v in c.params), (c.text, c.params)


def test_translator_refuses_hostile_constructs_quickly_without_running_them(tmp_path):
    """Defence that holds: exponent / literal / attribute / dunder / call / depth tricks give ok=False
    fast and nothing of the source runs."""
    marker = tmp_path / "ran"
    bodies = ['x["a"] ** 10 ** 10', "9 ** 9 ** 9 * x['a']", 'x["a"] * 1' + "0" * 5000,
              'x["a"].__class__.__mro__[1].__subclasses__()', 'getattr(np, "exp")(x["a"])',
              f'np.exp.__globals__["__builtins__"]["open"]({str(marker)!r}, "w")',
              f'__import__("os").system("touch {marker}")', " + ".join(['x["a"]'] * 5000),
              'p[1000000] * x["a"]', '(lambda: x["a"])()', 'x["a"] if p[0] else x["b"]']
    for body in bodies:
        with within(3, f"canonical_form({body[:40]})"):
            c = S.canonical_form(_src(body), [1.0])
        assert not c.ok, body
    c = S.canonical_form(_src('p[0] * x["a"]'), [math.nan])
    assert not c.ok
    assert not marker.exists()


# ============================================================================= selection
def test_simplify_does_not_run_model_source_in_process(data, tmp_path):
    """simplify() scores the ORIGINAL source through scoring.score_source, i.e. exec() in this process
    (the GP path, meant for our own code). formula.translate only reads the FunctionDefs, so a module-level
    statement rides along: it runs, outside the sandbox, during selection and the report."""
    marker = tmp_path / "ran"
    src = f'open({str(marker)!r}, "w").write("ran")\n' + TRUE
    with within(20, "simplify"):
        S.simplify(src, [1.6, -1.5], data, max_seconds=3)
    assert not marker.exists(), "model-written module-level code ran in the selection process"


def test_select_law_does_not_exec_allowlisted_model_source_in_process(data, monkeypatch):
    """Even an allowlist-clean model candidate is exec()'d in the main process by select_law (no CPU /
    memory limits of the sandbox worker): only code generated from the sympy form may be."""
    from potsearch.law import scoring as islands  # the in-process compile path of our own source
    from potsearch.law.selection import SelectionOptions, select_law

    model_src = 'N_PARAMS = 2\ndef potential(x, p):\n    """written by a model"""\n' \
                '    return p[0] * x["length"] + p[1] * x["zipf"]\n'
    assert check_source(model_src) == []
    rows = _scored_rows(data, [(ONE, [1.0]), (TRUE, [1.6, -1.5])])
    rows[1] = {**rows[1], "uid": "model", "source": model_src}
    compiled = []
    real = islands._compile
    monkeypatch.setattr(islands, "_compile", lambda src, **kw: (compiled.append(src), real(src, **kw))[1])
    with within(20, "select_law"):
        select_law(pd.DataFrame(rows), data, SelectionOptions(seed=0, max_seconds=10))
    assert model_src not in compiled, "select_law exec()'d the model's own source in-process"


def test_select_law_is_bounded_with_one_hostile_front_member(data):
    """SelectionOptions.max_seconds bounds the whole front; one allowlisted member whose canonical
    form explodes (NESTED_POWER) stalls select_law inside canonical_form, past any budget."""
    from potsearch.law.selection import SelectionOptions, select_law

    rows = _scored_rows(data, [(ONE, [1.0]), (TRUE, [1.6, -1.5])])
    rows.append({**rows[1], "uid": "evil", "source": NESTED_POWER, "params": [1e-80],
                 "train_action": rows[1]["train_action"] - 1e-3, "complexity": rows[1]["complexity"] + 5})
    with within(8, "select_law(max_seconds=3)"):
        select_law(pd.DataFrame(rows), data, SelectionOptions(seed=0, max_seconds=3))


def test_one_se_survives_a_nan_heldout_member(data):
    """one_se: np.argmin picks a NaN held-out action as 'the lowest'; nothing is <= NaN + SE, and the
    rule dies with 'min() arg is an empty sequence' instead of selecting or saying what is wrong."""
    from potsearch.law.selection import SelectionOptions, choose, pareto_front

    rows = _scored_rows(data, [(ONE, [1.0]), (TRUE, [1.6, -1.5])])
    untranslatable = ('N_PARAMS = 1\ndef potential(x, p):\n    v = 0\n    for i in range(2):\n'
                      '        v = v + p[0] * x["length"]\n    return v\n')
    rows.append({"uid": "nan", "source": untranslatable, "params": [0.5], "complexity": 1,
                 "train_action": rows[0]["train_action"] + 1.0, "heldout_action": math.nan})
    front = pareto_front(pd.DataFrame(rows))
    assert "nan" in set(front["uid"])
    try:
        i, reason, fr = choose(front, data, SelectionOptions(rule="one_se", seed=0))
    except ValueError as exc:
        assert "empty sequence" not in str(exc), f"unclear error: {exc}"
        return
    assert math.isfinite(fr.loc[i, "heldout_action"])


def test_select_law_keeps_hostile_but_worse_members_out(data):
    """Defence that holds: untranslatable, unknown-feature and NaN-parameter members on the front are
    simplified without crashing, and the sound law is selected; the summary stays strict JSON."""
    from potsearch.law.selection import SelectionOptions, select_law

    rows = _scored_rows(data, [(ONE, [1.0]), (TRUE, [1.6, -1.5])])
    worse = rows[0]["train_action"] + 1.0
    hostile = [('N_PARAMS = 1\ndef potential(x, p):\n    return p[0] * x["__class__"]\n', [1.0]),
               ('N_PARAMS = 1\ndef potential(x, p):\n    if p[0] > 0:\n        return x["length"]\n'
                '    return x["zipf"]\n', [1.0]),
               (TRUE, [math.nan, 1.0]), ("def potential(x, p):\n    return (", [])]
    for k, (src, par) in enumerate(hostile):   # simpler than ONE and each better than the last: all on the front
        rows.append({"uid": f"h{k}", "source": src, "params": par, "train_action": worse + 1.0 - 0.1 * k,
                     "heldout_action": worse, "complexity": 1 + k})
    with within(20, "select_law"):
        sel = select_law(pd.DataFrame(rows), data, SelectionOptions(seed=0, max_seconds=15))
    assert {f"h{k}" for k in range(len(hostile))} <= set(sel.forms["uid"])
    assert "length" in sel.selected["text"] and "zipf" in sel.selected["text"], sel.selected
    json.dumps(sel.to_json(), allow_nan=False)


# ============================================================================= show
@pytest.fixture(scope="module")
def show_run(tmp_path_factory):
    from polish_helpers import add_candidate, make_run
    from potsearch.store import RunStore

    run = make_run(tmp_path_factory.mktemp("hostile_show") / "run", n_words=60, n_samples=1500,
                   with_candidates=False)
    st = RunStore.open(run)
    ids = {"good": add_candidate(st, "good", _src('p[0] * x["vowels"] + p[1] * x["zipf"]', 2), [0.8, -0.6],
                                 train=0.5),
           "nested": add_candidate(st, "nested", NESTED_POWER, [1e-80], train=0.6),
           "rational": add_candidate(st, "rational", HUGE_RATIONAL, [0.8], train=0.7),
           "escape": add_candidate(st, "escape", 'N_PARAMS = 1\ndef potential(x, p):\n'
                                   '    """\x1b[2J\x1b]0;owned\x07 \u202e"""\n'
                                   '    return p[0] * x["vowels"]\n', [0.8], train=0.8),
           "missing": add_candidate(st, "missing", _src('p[0] * x["vowels"] + p[1] * x["not_a_feature"]', 2),
                                    [0.8, 0.1], train=0.9)}
    st.close()
    return run, ids


def test_show_candidate_is_bounded_on_a_nested_power(show_run):
    """`potsearch show RUN --candidate N` on an allowlisted candidate stalls in canonical_form."""
    from potsearch.stages.show import ShowOptions, run as show

    run, ids = show_run
    with within(8, "show --candidate"):
        show(run, ShowOptions(candidate=str(ids["nested"])))


def test_show_format_sympy_on_a_huge_exact_rational_is_one_line(show_run, cli):
    """`show --format sympy` (formula.formula_of) keeps a / (a + 1) exact; printing it raises Python's
    int->str ValueError, which _formula_lines does not catch (only FormulaError): a traceback."""
    run, ids = show_run
    assert check_source(HUGE_RATIONAL) == []
    for fmt in ("sympy", "latex"):
        with within(15, f"show --format {fmt}"):
            try:
                code, out, err = cli("show", run, "--candidate", ids["rational"], "--format", fmt)
            except Exception as exc:  # noqa: BLE001 - the CLI re-raises: the user sees a traceback
                pytest.fail(f"--format {fmt}: traceback {type(exc).__name__}: {str(exc)[:90]}", pytrace=False)
        assert code in (0, 2) and len(err.strip().splitlines()) <= 1


def test_show_candidate_failing_in_the_sandbox_is_one_line(show_run, cli):
    """show's directionality evaluates the candidate in the sandbox and catches InputError, KeyError,
    ValueError, ... but not polish.CandidateFailed (a RuntimeError): a candidate the sandbox cannot
    evaluate on this run's feature table (a feature the run lacks) ends `potsearch show` in a traceback."""
    run, ids = show_run
    with within(15, "show"):
        try:
            code, out, err = cli("show", run, "--candidate", ids["missing"])
        except Exception as exc:  # noqa: BLE001 - the CLI re-raises: the user sees a traceback
            pytest.fail(f"traceback {type(exc).__name__}: {str(exc)[:90]}", pytrace=False)
    assert code in (0, 2)


def test_show_escapes_terminal_control_sequences(show_run, cli):
    """Defence that holds: escape sequences (clear screen, OSC title, bidi override) in a candidate's
    source are printed escaped."""
    run, ids = show_run
    with within(15, "show"):
        code, out, err = cli("show", run, "--candidate", ids["escape"])
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "law (as found, constants folded)" in out


# ============================================================================= report
def _report_run(tmp: Path, rows: list[dict], selection: dict | None) -> Path:
    run = tmp / "run"
    (run / "evolve").mkdir(parents=True)
    summary = {"rounds": 1, "islands": 1, "candidates": len(rows), "config": {"seed": 0}}
    if selection:
        summary["selection"] = selection
    (run / "evolve" / "summary.json").write_text(json.dumps(summary))
    with open(run / "evolve" / "pareto.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["complexity", "n_params", "train_action", "heldout_action", "uid", "operator", "source",
                    "params", "simplified", "selected"])
        for r in rows:
            w.writerow([r["complexity"], len(r["params"]), r["train_action"], r["heldout_action"], r["uid"], "llm",
                        r["source"], json.dumps(r["params"]), r.get("simplified", ""), r.get("selected", 0)])
    return run


def _good_selection(low: dict) -> dict:
    good = {"uid": "good", "source": TRUE, "params": [1.6, -1.5], "text": "1.6*length - 2.4*zipf",
            "latex": r"1.6 \mathrm{length} - 2.4 \mathrm{zipf}", "train_action": 0.5, "heldout_action": 0.5,
            "complexity": 9}
    return {"rule": "bic", "reason": "test", "selected": good, "lowest": low, "dropped": []}


def test_report_is_bounded_on_a_nested_power_in_the_front(tmp_path):
    """The report translates front rows / the lowest law without stored text (evolve_report._canon):
    an allowlisted nested power stalls `potsearch report`."""
    from potsearch.stages import report_evolve as evolve_report
    from potsearch.stages.report import Ctx

    evil = {"uid": "evil", "source": NESTED_POWER, "params": [1e-80], "train_action": 0.4,
            "heldout_action": 0.4, "complexity": 20}
    good = {"uid": "good", "source": TRUE, "params": [1.6, -1.5], "train_action": 0.5, "heldout_action": 0.5,
            "complexity": 9, "simplified": "1.6*length - 2.4*zipf", "selected": 1}
    run = _report_run(tmp_path, [good, evil], _good_selection({k: evil[k] for k in ("uid", "source", "train_action",
                                                                                     "heldout_action", "complexity")}))
    with within(8, "evolve_report.render"):
        evolve_report.render(Ctx(run_dir=run))


def test_report_does_not_run_model_source(tmp_path, data):
    """With no recorded selection the report computes it (select_law -> simplify): a module-level
    statement of a front candidate's source runs in the report's process."""
    from potsearch.stages import report_evolve as evolve_report
    from potsearch.stages.report import Ctx

    marker = tmp_path / "ran"
    rows = _scored_rows(data, [(ONE, [1.0]), (TRUE, [1.6, -1.5])])
    rows[1]["source"] = f'open({str(marker)!r}, "w").write("ran")\n' + TRUE
    run = _report_run(tmp_path, rows, None)
    ctx = Ctx(run_dir=run)
    ctx.__dict__["problem"] = SimpleNamespace(data=data, features=data.features, n_states=data.n_states,
                                              split={"seed": 0})
    with within(20, "evolve_report.render"):
        sec = evolve_report.render(ctx)
    assert "computed by the report" in sec
    assert not marker.exists(), "model-written module-level code ran while writing the report"


def test_report_escapes_html_in_feature_names(tmp_path):
    """Defence that holds: a feature name carrying HTML reaches the page only escaped (text, LaTeX,
    front table, source); the translator refuses such a name (not a plain identifier)."""
    from potsearch.stages import report_evolve as evolve_report
    from potsearch.stages.report import Ctx

    src = _src('p[0] * x["</pre><script>alert(1)</script>"] + x["<img src=x onerror=alert(1)>"]')
    low = {"uid": "evil", "source": src, "params": [2.0], "train_action": 0.4, "heldout_action": 0.4,
           "complexity": 7}
    good = {"uid": "good", "source": TRUE, "params": [1.6, -1.5], "train_action": 0.5, "heldout_action": 0.5,
            "complexity": 9, "simplified": "1.6*length - 2.4*zipf", "selected": 1}
    run = _report_run(tmp_path, [good, low], _good_selection(dict(low)))
    assert not S.canonical_form(src, [2.0]).ok   # the translator refuses the name; the source still reaches the page
    with within(15, "evolve_report.render"):
        sec = evolve_report.render(Ctx(run_dir=run))
    assert "<script" not in sec and "<img src=x" not in sec
    assert "&lt;script&gt;" in sec


@pytest.mark.parametrize("body", [
    "    a = 99999999999\n" + "    a = a * a\n" * 30 + '    return p[0] * x["vowels"] + a * 0 * x["zipf"]\n',
    '    return p[0] * x["vowels"] * ((9999999999 ** 16) ** 16) ** 16\n',
])
def test_exact_numbers_are_bounded_as_they_grow(body):
    """Repeated squaring or nested powers of an exact integer would build numbers of 10^10 digits
    before any check of the result: the translator refuses them as they grow."""
    from potsearch.law.formula import FormulaError, translate

    src = "N_PARAMS = 1\ndef potential(x, p):\n" + body
    with within(5, "canonical_form on a growing exact number"):
        c = S.canonical_form(src, [1.0])
    assert not c.ok and ("bits" in c.reason or "float range" in c.reason), c.reason
    with within(5, "formula.translate on a growing exact number"):
        with pytest.raises(FormulaError):
            translate(src)


def test_a_plain_law_passes_the_bounds_unchanged():
    """The bounds refuse only the hostile: a law with a square, a ratio and a log is translated as written."""
    src = _src('p[0] * (x["length"] + 1) ** 2 + p[1] * x["zipf"] / (x["length"] + 1) + np.log1p(x["vowels"])', 2)
    c = S.canonical_form(src, [0.5, -2.0])
    assert c.ok, c.reason
    assert {s.name for s in c.expr.free_symbols} == {"length", "zipf", "vowels"}


@pytest.mark.parametrize("body", ['p[0] * x["vowels"] + (1 / 0) * x["zipf"]',
                                  'p[0] * x["vowels"] + (0 / 0) * x["zipf"]'])
def test_sympy_infinities_are_refused(body):
    """1/0 and 0/0 are zoo and nan to sympy, not errors: the translation refuses them."""
    c = S.canonical_form(_src(body), [1.0])
    assert not c.ok and "non-finite" in c.reason, c
