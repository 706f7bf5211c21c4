"""Issue 12: model-written code never runs unconfined (scope escape through best_potential.py,
feature poisoning, complexity gaming, reply-parser crashes, unbounded polish/attribute).

Each finding is reproduced as it was reported; see docs/sandbox.md ("Threat model") for which
layer stops what."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
import types
from pathlib import Path

import numpy as np
import pytest

from potsearch.sandbox import SandboxPool, check_source

# ---------------------------------------------------------------------------------------------
# 1. the scope escape (as reported): exec reached through a parameter of an unused function and a
#    call through a parameter that shares its name with a top-level function
# ---------------------------------------------------------------------------------------------
ESCAPE = '''
N_PARAMS = 2
def g(a):
    return a

def run1(g, a):
    return g(a)

def decoy(exec):
    return 0

def potential(x, p):
    if len(x["length"]) == 1:
        r = run1(exec, "import os; open('MARKER', 'w').write(os.popen('id').read())")
    return p[0] * x["length"] + p[1]
'''


def test_scope_escape_is_rejected():
    reasons = check_source(ESCAPE)
    assert reasons, "the escape program passed the allowlist"
    text = "; ".join(reasons)
    assert "call through the parameter or local 'g'" in text
    assert "unknown name 'exec' in function 'potential'" in text
    assert "'g' is a function of this program" in text  # run1's parameter shadows g


def test_scope_aware_check_still_admits_honest_helpers():
    ok = '''
N_PARAMS = 3
SCALE = 2.0
def h(v, q, k=1.5):
    s = 0.0
    for i in range(3):
        s = s + q[i] * v ** i
    return s * k
def potential(x, p):
    v = np.log1p(x["length"])
    w = h(v, p)
    w += SCALE
    return np.where(v > 1.0, w, w * 0.5) + np.sum(v, 0) + np.asarray(x["vowels"], dtype=float)
'''
    assert check_source(ok) == []


# ---------------------------------------------------------------------------------------------
# 2. best_potential.py never executes model text as Python
# ---------------------------------------------------------------------------------------------
def _best(source, params=(1.0, 2.0)):
    return types.SimpleNamespace(source=source, train_action=0.4, gap=0.1, heldout_action=0.5, uid="s:7",
                                 island=0, round=3, operator="llm", params=list(params))


CRAFTED = [
    # top-level code with real imports
    ESCAPE,
    "import os\nos.system('touch MARKER')\nN_PARAMS = 1\ndef potential(x, p):\n    return p[0] * x['length']\n",
    # break out of a docstring / string literal of the generated file
    "N_PARAMS = 1\ndef potential(x, p):\n    return p[0] * x['length']\n'''\n\"\"\"\n"
    "import os; open('MARKER', 'w').write('x')\n\"\"\"\n'''\n",
    # the classic subclasses walk
    "N_PARAMS = 1\ndef potential(x, p):\n    for c in ().__class__.__base__.__subclasses__():\n"
    "        if c.__name__ == '_wrap_close':\n            c.__init__.__globals__['system']('touch MARKER')\n"
    "    return p[0] * x['length']\n",
    # a default argument that captures a builtin
    "N_PARAMS = 1\ndef potential(x, p, e=open):\n    e('MARKER', 'w')\n    return p[0] * x['length']\n",
    # a decorator, a lambda, a class body
    "N_PARAMS = 1\n@(lambda f: open('MARKER', 'w') and f)\ndef potential(x, p):\n    return p[0] * x['length']\n",
    "N_PARAMS = 1\nclass A:\n    open('MARKER', 'w')\ndef potential(x, p):\n    return p[0] * x['length']\n",
]


def _write_best(tmp_path, source, agent="word", params=(1.0, 2.0)):
    from potsearch.search.outputs import write_best_potential

    path = tmp_path / "best_potential.py"
    write_best_potential(path, _best(source, params), agent, "run", 0.3, "sid")
    return path


@pytest.mark.parametrize("k", range(len(CRAFTED)))
def test_best_potential_never_runs_model_text(tmp_path, k):
    path = _write_best(tmp_path, CRAFTED[k])
    import ast

    tree = ast.parse(path.read_text())
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not called & {"exec", "eval", "compile", "__import__"}, called
    # the program is one string constant, assigned to PROGRAM
    prog = [n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "PROGRAM"]
    assert len(prog) == 1 and isinstance(prog[0].value, ast.Constant) and prog[0].value.value == CRAFTED[k]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": ""}
    # as the file's docstring tells the user: run it, and import it
    run = subprocess.run([sys.executable, str(path), "a"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=env)
    imp = subprocess.run([sys.executable, "-c", "import best_potential as b\ntry:\n    print(b.potential('a'))\n"
                          "except b.ProgramRefused as e:\n    print('refused', e)\n"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert not (tmp_path / "MARKER").exists()
    assert imp.returncode == 0, imp.stderr[-2000:]
    if k == 2:  # the break-out text is only a string statement in the program: harmless, evaluated
        assert imp.stdout.strip() == "1.0" and run.returncode == 0 and run.stdout == "a\t1\n"
        return
    assert "refused" in imp.stdout, imp.stdout
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr[-2000:]
    assert run.stderr.strip().count("\n") == 0 and "refused" in run.stderr


HONEST = [
    'N_PARAMS = 2\ndef potential(x, p):\n    return p[0] * x["length"] + p[1]\n',
    'N_PARAMS = 3\ndef h(v, q):\n    return q[0] * np.log1p(v) + q[1] * v ** 2\n'
    'def potential(x, p):\n    return h(x["length"], p) - p[2] * np.tanh(x["vowels"])\n',
    'N_PARAMS = 2\nK = 0.5\ndef potential(x, p):\n    s = np.zeros_like(x["length"])\n    for i in range(4):\n'
    '        if i % 2 == 0:\n            s += x["vowels"] * (i + 1)\n        else:\n            continue\n'
    '    v = np.sqrt(np.abs(s)) if K > 0 else s\n    return p[0] * v + p[1] * math.exp(-K) * x["zipf"]\n',
    'N_PARAMS = 2\ndef potential(x, p):\n    a, b = np.sort(x["length"]), np.maximum(x["vowels"], 1.0)\n'
    '    return np.clip(p[0] * x["length"] / b, -5, 5) + p[1] * np.mean(a) + float(len(a) > 2)\n',
]


def test_best_potential_computes_what_the_sandbox_computes(tmp_path):
    words = ["hello", "world", "tree", "a", "potential", "queue", "sky"]
    for k, src in enumerate(HONEST):
        assert check_source(src) == [], src
        d = tmp_path / str(k)
        d.mkdir()
        n_params = int(src.split("\n", 1)[0].split("=")[1])
        params = [0.7, -1.3, 0.25][:n_params]
        path = _write_best(d, src, params=params)
        spec = __import__("importlib.util").util.spec_from_file_location(f"bp{k}", path)
        mod = __import__("importlib.util").util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        got = mod.potentials(words)
        x = {key: np.asarray(v, dtype=float) for key, v in mod.feature_table(words, None).items()}
        with SandboxPool(workers=1, cpu_seconds=5, memory_mb=512, wall_timeout=10) as pool:
            res = pool.run(src, payload={"x": x, "p": np.array(params)})
        assert res.ok, res
        np.testing.assert_allclose(got, res.value["values"], rtol=0, atol=1e-9)
        out = subprocess.run([sys.executable, str(path)] + words, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        printed = [float(line.split("\t")[1]) for line in out.stdout.splitlines()]
        one_by_one = [float(f"{mod.potentials([w])[0]:.6g}") for w in words]  # the command line: one state each
        np.testing.assert_allclose(printed, one_by_one, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# 3. feature poisoning: positional out arguments; cached, writable feature arrays
# ---------------------------------------------------------------------------------------------
POISON = [
    'N_PARAMS = 1\ndef potential(x, p):\n    np.multiply(x["length"], 0.0, x["length"])\n    return p[0] * x["vowels"]\n',
    'N_PARAMS = 1\ndef potential(x, p):\n    v = x["vowels"] * 3.0\n    np.concatenate((v,), 0, x["length"])\n'
    '    return p[0] * x["vowels"]\n',
    'N_PARAMS = 1\ndef potential(x, p):\n    v = x["length"]\n    v += 7.0\n    return p[0] * x["vowels"]\n',
    'N_PARAMS = 1\ndef potential(x, p):\n    np.negative(p, p)\n    np.cumsum(x["length"], 0, None, x["length"])\n'
    '    return p[0] * x["vowels"]\n',
]
HONEST_LINEAR = 'N_PARAMS = 2\ndef potential(x, p):\n    return p[0] * x["length"] + p[1]\n'


def _scoring_payload():
    from potsearch.law.scoring import Edges, ScoringData

    rng = np.random.default_rng(3)
    n = 40
    feats = {"length": rng.integers(1, 9, n).astype(float), "vowels": rng.integers(0, 4, n).astype(float)}
    V = 0.8 * feats["length"]
    src, dst = rng.integers(0, n, 400), rng.integers(0, n, 400)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    w = 1.0 / (1.0 + np.exp(V[dst] - V[src]))
    e = Edges(src, dst, w, n)
    return ScoringData(feats, n, e, Edges(src[:50], dst[:50], w[:50], n), s_min_train=0.1,
                       s_min_heldout=0.1).payload()


@pytest.mark.parametrize("bypass", [False, True], ids=["checked", "data-layer-alone"])
def test_poisoning_cannot_change_a_later_score(bypass):
    task = "potsearch.law.scoring:score_program"
    payload = _scoring_payload()
    job = dict(payload, source=HONEST_LINEAR, seed=0)
    with SandboxPool(workers=1, cpu_seconds=5, memory_mb=1024, wall_timeout=20, tasks=(task,)) as pool:
        clean = pool.run(HONEST_LINEAR, task=task, payload=job)
    with SandboxPool(workers=1, cpu_seconds=5, memory_mb=1024, wall_timeout=20, tasks=(task,)) as pool:
        for src in POISON:  # in the same worker, before the honest candidate
            r = pool.run(src, task=task, payload=dict(payload, source=src, seed=0), _bypass_ast_check=bypass)
            assert bypass or r.category == "rejected" or (r.ok and r.value.get("error")), (src, r)
        after = pool.run(HONEST_LINEAR, task=task, payload=job)
        assert pool.stats["restarts"] == 0  # really the same worker
    assert clean.ok and after.ok and clean.value["error"] is None
    assert after.value["train_action"] == pytest.approx(clean.value["train_action"], abs=1e-9, rel=0)
    assert after.value["heldout_action"] == pytest.approx(clean.value["heldout_action"], abs=1e-9, rel=0)
    np.testing.assert_allclose(after.value["params"], clean.value["params"], atol=1e-9, rtol=0)


def test_positional_out_and_refused_keywords_are_rejected():
    from potsearch.law.interp import Program, ProgramRefused

    for call in ('np.multiply(a, 0.0, a)', 'np.concatenate((a,), 0, a)', 'np.add(a, 1.0, a)', 'np.negative(a, a)',
                 'np.sum(a, 0, None, a)', 'np.cumsum(a, 0, None, a)', 'np.clip(a, 0, 1, a)', 'np.dot(a, a, a)',
                 'np.mean(a, 0, None, a)', 'np.nan_to_num(a, False)', 'np.add(a, 1.0, where=a > 0)',
                 'np.round(a, 2, a)', 'np.add.at(a, 0, 1.0)', 'np.add.reduce(a, 0, None, a)',
                 'np.add.accumulate(a)', 'np.multiply.outer(a, a)', 'np.add(a, 1.0, casting="unsafe")'):
        src = f'def potential(x, p):\n    a = x["length"]\n    return {call}\n'
        assert check_source(src), call
        with pytest.raises(ProgramRefused):
            Program(src).call("potential", {"length": np.ones(3)}, np.ones(1))


# ---------------------------------------------------------------------------------------------
# 4. complexity counts the whole program
# ---------------------------------------------------------------------------------------------
FORMULA = ("p[0] * x['a'] + p[1] * np.log1p(x['b']) + p[2] * x['c'] ** 2 + p[3] * np.tanh(p[4] * x['d']) "
           "+ p[5] * x['a'] * x['b'] + p[6] / (1.0 + x['c']) + p[7] * np.sqrt(x['d']) + p[8]")


def test_complexity_counts_helper_functions():
    from potsearch.law.scoring import complexity_of

    inlined = f"N_PARAMS = 9\ndef potential(x, p):\n    return {FORMULA}\n"
    wrapped = f"N_PARAMS = 9\ndef h(x, p):\n    return {FORMULA}\ndef potential(x, p):\n    return h(x, p)\n"
    ci, cw = complexity_of(inlined), complexity_of(wrapped)
    assert ci > 50
    # the stated rule (docs/sandbox.md): every function body counts; the wrapper adds its call
    # `return h(x, p)` = Return, Call, 3 Names = 5
    assert cw == ci + 5
    # an unused helper counts too; a module-level constant counts; N_PARAMS / imports do not
    assert complexity_of(inlined + "def unused(v):\n    return v * 2.0\n") == ci + 5
    assert complexity_of("import numpy as np\n" + inlined) == ci
    assert complexity_of("K = 2.0\n" + inlined) == ci + 3


# ---------------------------------------------------------------------------------------------
# 5. the reply parser: bounded, never raises anything but a rejection
# ---------------------------------------------------------------------------------------------
def _long_sum(n=400):
    return "```python\nN_PARAMS = 1\ndef potential(x, p):\n    return p[0]*x[\"length\"]" + " + 1" * n + "\n```"


def _nested(open_, close, n=400):
    return ("```python\nN_PARAMS = 1\ndef potential(x, p):\n    return " + open_ * n + "p[0]" + close * n
            + "\n```")


HUGE = {
    "sum400": _long_sum(),
    "neg": _nested("-", ""),
    "not": _nested("not ", ""),
    "index": "```python\nN_PARAMS = 1\ndef potential(x, p):\n    return p" + "[0]" * 400 + "\n```",
    "ifelse": "```python\nN_PARAMS = 1\ndef potential(x, p):\n    return " + "p[0] if p[0] else (" * 300
              + "p[0]" + ")" * 300 + "\n```",
    "parens": _nested("(", ")", 300),
    "lines30k": "```python\nN_PARAMS = 1\ndef potential(x, p):\n    return p[0]\n```\n" + "blah\n" * 30_000,
    "mb5": "no code here " * 400_000,
}
JUNK = "def potential(x, p):\n    return p[0] * x['length']\n" + "this is ) not ( python\n" * 1400


@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_and_deep_replies_are_rejections(name):
    from potsearch.search import llm_op
    from potsearch.search.llm_op import extract_source

    ReplyRejected = getattr(llm_op, "ReplyRejected", ())  # noqa: N806
    try:
        src = extract_source(HUGE[name])
    except ReplyRejected as exc:
        assert str(exc)
        return
    if src is not None:
        assert check_source(src), name  # reaches the allowlist, which refuses it


def test_reply_parser_is_linear():
    """A reply with many trailing junk lines parses a bounded number of times (was: once per line)."""
    import ast as _ast

    from potsearch.search import llm_op

    calls = []
    orig = _ast.parse

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    reply = JUNK
    _ast.parse = counting
    try:
        src = llm_op.extract_source(reply)
    finally:
        _ast.parse = orig
    assert src is not None and "this is" not in src
    assert len(calls) <= getattr(llm_op, "MAX_PARSES", 8)


@pytest.mark.parametrize("loop", ["lockstep", "async"])
def test_evolve_records_hostile_replies_and_exits_0(tmp_path_factory, monkeypatch, capsys, loop):
    from evolve_helpers import candidate_tuples, small_run
    from potsearch.llm.client import get_litellm
    from potsearch.cli.app import main

    litellm = get_litellm()
    good = ("```python\nN_PARAMS = 2\ndef potential(x, p):\n    # \x1b]0;owned\x07\x1b[2J\n"
            "    return p[0] * x['vowels'] + p[1] * x['zipf']\n```")
    texts = [HUGE[k] for k in sorted(HUGE)] + [f"```python\n{ESCAPE}```", JUNK, good]
    replies = itertools.cycle(texts)
    lock = threading.Lock()
    orig = litellm.completion

    def scripted(*args, **kw):
        with lock:
            text = next(replies)
        return orig(*args, **{**kw, "mock_response": text})

    orig_async = litellm.acompletion

    async def scripted_async(*args, **kw):  # the async loop calls litellm.acompletion
        with lock:
            text = next(replies)
        return await orig_async(*args, **{**kw, "mock_response": text})

    monkeypatch.setattr(litellm, "completion", scripted)
    monkeypatch.setattr(litellm, "acompletion", scripted_async)
    run = small_run(tmp_path_factory, f"hostile_replies_{loop}")
    cfg = run / "search.yaml"
    cfg.write_text(f"seed: 0\nloop: {loop}\nrounds: 1\nislands: 1\npopulation: 12\noffspring: {len(texts)}\n"
                   "checkpoint_every: 1\nllm:\n  models: [openai/gpt-4o-mini]\n  mix: 1.0\n  parents: 2\n"
                   "sandbox:\n  workers: 2\n  cpu_seconds: 3\n  memory_mb: 1024\n  wall_timeout: 6.0\n")
    rc = main(["evolve", "--run", str(run), "--config", str(cfg), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "\x1b" not in printed
    cands = candidate_tuples(run, ("id", "error", "source", "meta", "operator"))
    rows = [(e, len(src), m) for _, e, src, m, op in cands if op == "llm"]
    assert len(rows) == len(texts)
    # the model's own text (with its terminal escapes) is shown escaped by `show --candidate`
    good_id = next(i for i, e, src, _, op in cands if op == "llm" and e is None and "owned" in src)
    assert main(["show", "--run", str(run), "--candidate", str(good_id)]) == 0
    shown = capsys.readouterr().out
    assert "def potential" in shown and "\x1b" not in shown and "\\x1b]0;owned\\x07" in shown
    errors = [r[0] for r in rows]
    assert sum(e is None for e in errors) == 2  # the good one and the one with junk after it scored
    assert all(e.startswith(("rejected", "no code")) for e in errors if e is not None), errors
    assert max(r[1] for r in rows) <= 4_100  # stored replies are capped ...
    assert max(json.loads(r[2])["reply_chars"] for r in rows) >= 5_000_000  # ... with the full length recorded
    s = json.loads((run / "evolve" / "summary.json").read_text())
    assert s["llm"]["llm_calls"] == len(texts) and s["llm"]["llm_rejected"] == len(texts) - 2


# ---------------------------------------------------------------------------------------------
# 6. polish and attribute score candidates in the sandbox pool, under evolve's limits
# ---------------------------------------------------------------------------------------------
SLOW = '''N_PARAMS = 2
def potential(x, p):
    s = 0.0
    if p[0] != 1.5:
        for i in range(10 ** 7):
            s = s + 1.0
    return p[0] * x["vowels"] + p[1] * x["zipf"] + s
'''


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory):
    from polish_helpers import add_candidate, make_run
    from potsearch.store import RunStore

    run = make_run(tmp_path_factory.mktemp("slow") / "run", n_words=60, n_samples=1500, with_candidates=False)
    store = RunStore.open(run)
    cid = add_candidate(store, "slow-0", SLOW, [1.5, -0.5], train=0.9)
    store.close()
    (run / "evolve").mkdir(exist_ok=True)
    (run / "evolve" / "summary.json").write_text(json.dumps(
        {"config": {"sandbox": {"workers": 1, "cpu_seconds": 1, "memory_mb": 1024, "wall_timeout": 2.0}}}))
    return run, cid


@pytest.mark.parametrize("command", ["polish", "attribute"])
def test_slow_candidate_stops_polish_and_attribute_at_the_limit(slow_run, command, capsys):
    from potsearch.cli.app import main

    run, cid = slow_run
    rc = main([command, "--run", str(run), "--candidate", str(cid)] + (["--quiet"] if command == "polish" else []))
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 0, err
    assert "stopped by the sandbox" in err and "2s wall" in err, err


def test_polish_runs_no_candidate_code_in_process(tmp_path, monkeypatch):
    """compile_source no longer execs anything here: a program that would write a file when run
    in-process leaves nothing behind, and its evaluation happens in a sandbox worker."""
    from potsearch.search.polish import compile_source

    monkeypatch.chdir(tmp_path)
    src = 'N_PARAMS = 1\ndef potential(x, p):\n    return p[0] * x["length"]\n'
    ns = compile_source(src)
    assert ns["N_PARAMS"] == 1
    v = ns["potential"]({"length": np.arange(3.0)}, np.array([2.0]))
    np.testing.assert_array_equal(v, [0.0, 2.0, 4.0])
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Hostile variations beyond the report: each is refused by the allowlist AND by the evaluator of
# best_potential.py (the two independent checks of the same subset)
# ---------------------------------------------------------------------------------------------
def _prog(body, extra=""):
    return extra + "N_PARAMS = 1\ndef potential(x, p):\n" + "".join("    " + ln + "\n" for ln in body.split("\n"))


VARIANTS = {
    "nested_def": _prog("def inner(e):\n    return e('1')\nreturn inner(exec)"),
    "lambda": _prog("f = lambda a: exec(a)\nreturn p[0]"),
    "comprehension_binds": _prog("v = [exec for exec in (1, 2)]\nreturn p[0]"),
    "global_stmt": _prog("global exec\nreturn p[0]"),
    "nonlocal_stmt": "def outer(x, p):\n    e = 1\n    def inner():\n        nonlocal e\n    return p[0]\n"
                     + _prog("return outer(x, p)"),
    "default_captures_builtin": "def h(a, e=exec):\n    return e(a)\n" + _prog("return h('1')"),
    "default_captures_allowed_builtin": "def h(a, s=sorted):\n    return s(a)\n" + _prog("return h(p)"),
    "default_captures_np_function": "def h(a, f=np.multiply):\n    return f(a, 0.0, a)\n" + _prog("return h(p)"),
    "decorator": "def deco(f):\n    return f\n@deco\ndef potential(x, p):\n    return p[0]\n",
    "class_body": "class A:\n    e = exec\n" + _prog("return p[0]"),
    "walrus": _prog("if (e := p[0]) > 0:\n    return e\nreturn p[0]"),
    "star_args": "def run1(a, b):\n    return a\n" + _prog("return run1(*[p, p])"),
    "kwargs_splat": "def run1(a, b):\n    return a\n" + _prog("return run1(**{'a': p, 'b': p})"),
    "vectorize": _prog("f = np.vectorize(len)\nreturn f(p)"),
    "frompyfunc": _prog("return np.frompyfunc(exec, 1, 1)(p)"),
    "apply_along_axis": _prog("return np.apply_along_axis(sum, 0, p)"),
    "dunder_attribute": _prog("return p.__class__"),
    "dunder_string_subscript": _prog("return x['__class__']"),
    "format_string": _prog("s = f'{p!r}'\nreturn p[0]"),
    "str_format_method": _prog("s = '{0.__class__}'.format(p)\nreturn p[0]"),
    "local_alias_of_np_function": _prog("f = np.multiply\nreturn f(p, 0.0, p)"),
    "local_shadows_helper": "def h(v):\n    return v\n" + _prog("h = p\nreturn h(p)"),
    "param_shadows_helper": "def h(v):\n    return v\ndef k(h, v):\n    return h(v)\n" + _prog("return k(h, p)"),
    "for_target_shadows_helper": "def h(v):\n    return v\n" + _prog("for h in range(2):\n    pass\nreturn p[0]"),
    "module_alias_of_function": "def h(v):\n    return v\ng = h\n" + _prog("return g(p)"),
    "module_alias_of_builtin": "g = len\n" + _prog("return g(p)"),
    "tuple_unpack_call": _prog("a, b = p[0], p[0]\nreturn a(b)"),
    "call_result_called": "def h(v):\n    return v\n" + _prog("return h(p)(p)"),
    "subscript_called": _prog("return x['length'](p)"),
    "sorted_key": "def h(v):\n    return v\n" + _prog("return sorted(p, key=h)"),
    "max_key_builtin": _prog("return max(p, key=len)"),
    "ufunc_at": _prog("np.add.at(x['length'], 0, 1.0)\nreturn p[0]"),
    "ufunc_reduce_out": _prog("return np.add.reduce(x['length'], 0, None, x['length'])"),
    "ufunc_accumulate": _prog("return np.multiply.accumulate(x['length'])"),
    "positional_out_ufunc": _prog("return np.sqrt(x['length'], x['length'])"),
    "positional_out_reduction": _prog("return np.max(x['length'], 0, x['length'])"),
    "copy_false": _prog("return np.nan_to_num(x['length'], copy=False)"),
    "where_keyword": _prog("return np.add(x['length'], 1.0, where=False)"),
    "recursion_via_two_helpers": "def a(v):\n    return b(v)\ndef b(v):\n    return a(v)\n" + _prog("return a(p)"),
    "builtin_value_returned": _prog("return len"),
    "np_module_value": _prog("return np"),
    "import_inside": _prog("import os\nreturn p[0]"),
    "try_except": _prog("try:\n    return p[0]\nexcept Exception:\n    return p[0]"),
    "while_loop": _prog("while True:\n    pass"),
    "attribute_of_array": _prog("return x['length'].T"),
    "assign_to_subscript": _prog("p[0] = 1.0\nreturn p[0]"),
}


def test_at_least_15_hostile_variations():
    assert len(VARIANTS) >= 15


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_hostile_variation_refused_by_both_checks(name):
    from potsearch.law.interp import Program, ProgramRefused

    src = VARIANTS[name]
    assert check_source(src), f"{name} passed the allowlist"
    x = {"length": np.arange(1.0, 4.0)}
    with pytest.raises((ProgramRefused, SyntaxError)):
        Program(src).call("potential", x, np.ones(1))
    assert list(x["length"]) == [1.0, 2.0, 3.0]


def test_evaluator_bounds_recursion_loops_and_big_integers():
    from potsearch.law.interp import Program, ProgramRefused

    x = {"length": np.ones(2)}
    # call depth: the allowlist refuses recursion; the evaluator bounds depth on its own
    rec = "def a(v):\n    return a(v)\ndef potential(x, p):\n    return a(p)\n"
    with pytest.raises(ProgramRefused, match="call depth"):
        Program(rec).call("potential", x, np.ones(1))
    spin = "def potential(x, p):\n    s = 0\n    for i in range(10 ** 7):\n        s = s + 1\n    return s\n"
    with pytest.raises(ProgramRefused, match="steps"):
        Program(spin, max_steps=100_000).call("potential", x, np.ones(1))
    big = "def potential(x, p):\n    s = 3\n    for i in range(40):\n        s = s * s\n    return s\n"
    with pytest.raises(ProgramRefused, match="integer too large"):
        Program(big).call("potential", x, np.ones(1))
    seq = "def potential(x, p):\n    return [0] * 10 ** 9\n"
    with pytest.raises(ProgramRefused):
        Program(seq).call("potential", x, np.ones(1))


# ---------------------------------------------------------------------------------------------
# Files and terminal output written for the user that hold model text
# ---------------------------------------------------------------------------------------------
NASTY_SOURCE = ('N_PARAMS = 2\ndef potential(x, p):\n    # \x1b[2J\x1b]0;owned\x07 [red]markup[/red] </pre><script>alert(1)</script>\n'
                '    return p[0] * x["vowels"] + p[1] * x["zipf"]\n')


def test_csv_cells_are_never_formulas(tmp_path):
    import csv

    from potsearch.core.textsafe import csv_cell
    from potsearch.search.outputs import write_pareto

    assert csv_cell("=HYPERLINK(\"http://x\")") == "'=HYPERLINK(\"http://x\")"
    assert csv_cell("+ p[0] * x") == "'+ p[0] * x" and csv_cell("@SUM(A1)") == "'@SUM(A1)"
    assert csv_cell("-0.25") == "-0.25" and csv_cell("-inf") == "-inf" and csv_cell(3) == 3
    assert csv_cell("N_PARAMS = 1") == "N_PARAMS = 1"
    from potsearch.store.candidates import CandidateRow

    row = CandidateRow(id=1, uid="s:1", source="=1+1", params=[1.0], parents=[], operator="=cmd|' /C calc'!A0",
                       model=None, island=0, round=0, train_action=0.5, heldout_action=-0.5, gap=0.1,
                       complexity=5, n_params=1)
    write_pareto(tmp_path, [row], [row], 0.4)
    with open(tmp_path / "pareto.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[1][6] == "'=cmd|' /C calc'!A0" and rows[1][7] == "'=1+1" and rows[1][3] == "-0.5"


def test_printable_escapes_control_characters():
    from potsearch.core.textsafe import printable

    assert printable("a\x1b[2Jb\u202ec\rd\te\nf\x07") == "a\\x1b[2Jb\\u202ec\\rd\te\nf\\x07"
    assert printable("[red]x[/red] é ∑") == "[red]x[/red] é ∑"


def test_attribution_csv_terms_are_text(tmp_path):
    import csv

    from potsearch.law.attribution import Attribution, Row, write_csv

    att = Attribution(1.0, None, 1.0, [Row("term", "term 0", detail="+ p[0] * x['a']"),
                                       Row("term", "term 1", detail="- p[1]")], 1, 0, [])
    write_csv(att, tmp_path / "a.csv")
    with open(tmp_path / "a.csv", newline="") as fh:
        cells = [c for r in csv.reader(fh) for c in r]
    assert "'+ p[0] * x['a']" in cells and "'- p[1]" in cells
    assert not any(c.startswith(("=", "+", "-", "@")) and not c.lstrip("+-").replace(".", "").isdigit()
                   for c in cells if c not in ("-",))


def test_show_escapes_control_characters_and_markup(tmp_path):
    from polish_helpers import add_candidate, make_run
    from potsearch.store import RunStore

    run = make_run(tmp_path / "run", n_words=60, n_samples=1500, with_candidates=False)
    store = RunStore.open(run)
    cid = add_candidate(store, "nasty-0", NASTY_SOURCE, [0.8, -0.6], train=0.5)
    store.close()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run([sys.executable, "-m", "potsearch", "show", str(run), "--candidate", str(cid)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "\\x1b[2J" in proc.stdout and "[red]markup[/red]" in proc.stdout


def test_report_html_escapes_model_text(tmp_path):
    from potsearch.search.outputs import write_best_potential
    from potsearch.stages.report import build_report

    from polish_helpers import make_run

    run = make_run(tmp_path / "run", n_words=60, n_samples=1500, with_candidates=False)
    (run / "evolve").mkdir(exist_ok=True)
    (run / "evolve" / "summary.json").write_text(json.dumps({"best": {"source": NASTY_SOURCE}}))
    write_best_potential(run / "best_potential.py", _best(NASTY_SOURCE), "word", "run", 0.3, "sid")
    page = Path(build_report(run)).read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    # the evolve section's formulas, selection block and Pareto table carry model text too
    evil = "</p><script>alert(2)</script>"
    sel = {"uid": evil, "source": NASTY_SOURCE, "params": [0.8, -0.6], "text": evil, "latex": evil,
           "train_action": 0.5, "heldout_action": 0.5, "complexity": 9, "n_terms": 2, "raw_source": NASTY_SOURCE}
    (run / "evolve" / "summary.json").write_text(json.dumps({
        "best": {"source": NASTY_SOURCE}, "config": {"seed": 0},
        "selection": {"rule": evil, "reason": evil, "selected": sel, "dropped": [evil], "front_size": 1,
                      "lowest": {"uid": "u1", "source": NASTY_SOURCE, "train_action": 0.4, "complexity": 12}}}))
    with open(run / "evolve" / "pareto.csv", "w", encoding="utf-8") as fh:
        fh.write("complexity,train_action,heldout_action,uid,operator,source,params,simplified,selected\n")
        fh.write(f'9,0.5,0.5,"{evil}","{evil}","{NASTY_SOURCE.replace(chr(34), chr(34) * 2)}","[0.8, -0.6]",'
                 f'"{evil}",1\n')
    page = Path(build_report(run)).read_text()
    assert "<script>" not in page and page.count("&lt;script&gt;alert(2)&lt;/script&gt;") >= 5
