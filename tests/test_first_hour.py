"""A new user's first hour: dropped states said out loud, one CLI grammar, suggestions for typos."""
from __future__ import annotations

import json

import pytest

from potsearch.cli.app import main

FOUR = "source,target,count\nA,B,5\nB,A,3\nA,C,2\nB,C,1\nC,A,1\nD,C,1\n"


@pytest.fixture
def four(tmp_path):
    p = tmp_path / "four.csv"
    p.write_text(FOUR)
    return p


def test_fit_says_which_states_it_dropped(four, tmp_path, capsys):
    assert main(["fit", str(four), "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    assert "over 2 states" in out
    line = next(ln for ln in out.splitlines() if ln.startswith("dropped"))
    assert "dropped 2 of 4 states" in line and "--min-visits 1" in line
    assert "C, D" in line                      # C (most moves lead there) first
    assert "5 move(s) on 4 edge(s), 3 of them into a dropped state" in line
    saved = json.loads((tmp_path / "f" / "fit.json").read_text())["dropped"]
    assert saved["states_dropped"] == 2 and saved["dropped_names"] == ["C", "D"]
    assert main(["fit", str(four), "--out", str(tmp_path / "g"), "--min-visits", "0"]) == 0
    out = capsys.readouterr().out
    assert "over 4 states" in out and "kept all 4 states" in out


def test_fit_dropped_counts_escapes(tmp_path, capsys):
    p = tmp_path / "e.csv"
    p.write_text("source,target,count\nA,B,3\nB,A,2\nA,,4\nB,B,1\n")
    assert main(["fit", str(p), "--out", str(tmp_path / "f"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["dropped"]
    assert d["escapes"] == 4 and d["self_loops"] == 1 and d["states_dropped"] == 0


def test_unknown_option_names_subcommand_and_suggests(capsys):
    assert main(["fit", "x", "--bootstrp", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "potsearch fit" in err and "--bootstrp" in err and "did you mean --bootstrap?" in err


def test_unknown_option_evolve_suggestion(capsys):
    assert main(["evolve", "--run", "r", "--islnds", "3"]) == 2
    err = capsys.readouterr().err
    assert "potsearch evolve: unknown option --islnds (did you mean --islands?)" in err


@pytest.mark.parametrize("cmd", ["fit", "diagnose", "status", "show", "report"])
def test_plain_commands_accept_run_option(cmd, four, tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["import", str(four), "--run", str(run)]) == 0
    capsys.readouterr()
    rc_flag = main([cmd, "--run", str(run)])
    err_flag = capsys.readouterr().err
    rc_plain = main([cmd, str(run)])
    err_plain = capsys.readouterr().err
    assert "unrecognized" not in err_flag and "unknown option" not in err_flag
    assert rc_flag == rc_plain and err_flag == err_plain


@pytest.mark.parametrize("cmd", ["evolve", "polish", "attribute"])
def test_run_option_commands_accept_plain_run(cmd, tmp_path, capsys):
    missing = tmp_path / "nothing"
    assert main([cmd, str(missing)]) == 2
    err_plain = capsys.readouterr().err
    assert main([cmd, "--run", str(missing)]) == 2
    err_flag = capsys.readouterr().err
    assert "required" not in err_plain and err_plain == err_flag


def test_run_given_twice_differently(capsys):
    assert main(["fit", "a", "--run", "b"]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["fit"]) == 2
    assert "required" in capsys.readouterr().err


# ---------------------------------------------------------------- no dead ends, cluster errors
def test_failed_collect_then_corrected_command_works(tmp_path, capsys, ray_session):
    run = tmp_path / "m2"
    base = ["collect", "--agent", "word", "--run", str(run), "--max-samples", "50", "--no-progress"]
    assert main(base + ["--provider", "surogate"]) == 2
    assert "unknown provider 'surogate'" in capsys.readouterr().err
    assert not run.exists()                      # the failed start left nothing behind
    assert main(base + ["--provider", "surrogate"]) == 0
    out = capsys.readouterr().out
    assert "next: potsearch fit" in out


def test_zero_sample_run_is_reused_without_resume(tmp_path, capsys, ray_session):
    from potsearch.store import RunStore

    run = tmp_path / "z"
    RunStore.create(run, kind="collect").close()     # e.g. left by an older version's failed start
    assert main(["collect", "--agent", "word", "--provider", "surrogate", "--run", str(run),
                 "--max-samples", "30", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["collect", "--agent", "word", "--provider", "surrogate", "--run", str(run),
                 "--max-samples", "30", "--no-progress"]) == 2
    assert "run already exists (30 samples)" in capsys.readouterr().err


def test_closed_port_fails_fast_with_exit_2_and_no_run(tmp_path, capsys):
    import socket
    import time

    with socket.socket() as s:          # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    run = tmp_path / "r"
    t = time.time()
    rc = main(["collect", "--agent", "word", "--provider", "surrogate", "--run", str(run),
               "--address", f"127.0.0.1:{port}", "--ray-timeout", "5"])
    assert rc == 2 and time.time() - t < 5
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nothing listening" in err and "ray status" in err
    assert not run.exists()


def test_silent_listener_times_out_with_advice(tmp_path):
    """Something accepts connections but never answers as a Ray head: the deadline holds."""
    import socket
    import subprocess
    import sys
    import time

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    run = tmp_path / "r"
    t = time.time()
    try:
        p = subprocess.run([sys.executable, "-m", "potsearch", "collect", "--agent", "word", "--provider",
                            "surrogate", "--run", str(run), "--address", f"127.0.0.1:{port}", "--ray-timeout", "4"],
                           capture_output=True, text=True, timeout=120)
    finally:
        srv.close()
    assert p.returncode == 2, p.stderr
    assert time.time() - t < 60
    assert p.stderr.strip().splitlines()[-1].startswith("error: cannot join the Ray cluster")
    assert "within 4 s" in p.stderr and "Traceback" not in p.stderr
    assert not run.exists()


def test_ray_advice_recognises_token_authentication():
    from potsearch.core.raycluster import ADVICE_ADDRESS, ADVICE_TOKEN, advice

    assert advice("rpc error: InvalidAuthToken: missing token") == ADVICE_TOKEN
    assert "RAY_AUTH_MODE=token" in ADVICE_TOKEN and "RAY_AUTH_TOKEN" in ADVICE_TOKEN
    assert advice("ConnectionError: GCS timed out") == ADVICE_ADDRESS


def test_ray_timeout_from_environment(monkeypatch):
    from potsearch.core.errors import InputError
    from potsearch.core.raycluster import timeout_seconds

    monkeypatch.setenv("POTSEARCH_RAY_TIMEOUT", "7.5")
    assert timeout_seconds() == 7.5 and timeout_seconds(3) == 3
    monkeypatch.setenv("POTSEARCH_RAY_TIMEOUT", "soon")
    with pytest.raises(InputError):
        timeout_seconds()
    with pytest.raises(InputError):
        timeout_seconds(0)


# ---------------------------------------------------------------- progress off a terminal
def _pipe(args, tmp_path, every="0"):
    import os
    import subprocess
    import sys

    env = dict(os.environ, POTSEARCH_PROGRESS_EVERY=every)
    return subprocess.run([sys.executable, "-m", "potsearch", *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=600, cwd=tmp_path)


def test_progress_lines_on_a_pipe(tmp_path):
    run = str(tmp_path / "p")
    p = _pipe(["collect", "--agent", "word", "--provider", "surrogate", "--run", run, "--max-samples", "20000",
               "--samples-per-state", "20", "--workers", "1"], tmp_path)
    assert p.returncode == 0, p.stderr
    lines = [ln for ln in p.stderr.splitlines() if "collect word SURROGATE:" in ln]
    assert len(lines) >= 2 and lines[-1].endswith("(done)") and "/20,000" in lines[-1]
    assert any("ETA" in ln for ln in lines[:-1]), lines
    assert _pipe(["fit", run], tmp_path).returncode == 0
    p = _pipe(["evolve", run, "--rounds", "20", "--islands", "2"], tmp_path)
    assert p.returncode == 0, p.stderr
    assert [ln for ln in p.stderr.splitlines() if "] evolve: " in ln and "rounds" in ln][-1].endswith("(done)")
    p = _pipe(["polish", run], tmp_path)
    assert p.returncode == 0, p.stderr
    assert "polish random-descent: 2,000/2,000" in p.stderr
    quiet = _pipe(["evolve", run, "--rounds", "22", "--islands", "2", "--resume", "--quiet"], tmp_path)
    assert quiet.returncode == 0 and "] evolve:" not in quiet.stderr
    none = _pipe(["collect", "--run", run, "--resume", "--max-samples", "21000", "--no-progress"], tmp_path)
    assert none.returncode == 0 and "collect word" not in none.stderr


def test_progress_eta_and_interval():
    import io
    import time

    from potsearch.core.progress import Progress

    buf = io.StringIO()
    p = Progress("job", total=100, unit="items", stream=buf, every=3600)
    p.update(0)
    time.sleep(0.6)
    p.update(50)                 # within the interval: no new line
    assert buf.getvalue().count("\n") == 1
    assert "ETA" in p.line() and "50/100 (50.0%) items" in p.line()
    p.close()
    assert buf.getvalue().count("\n") == 2 and buf.getvalue().rstrip().endswith("(done)")
    q = io.StringIO()
    Progress("job", total=5, stream=q, quiet=True).update(1)
    assert q.getvalue() == ""


# ---------------------------------------------------------------- thin data
TINY = "source,target,count\nCAT,DOG,3\nDOG,CAT,2\nDOG,COW,4\nCAT,CAT,2\nCOW,COW,3\n"


def test_diagnose_says_what_a_verdict_needs(tmp_path, capsys):
    p = tmp_path / "tiny.csv"
    p.write_text(TINY)
    assert main(["diagnose", str(p), "--out", str(tmp_path / "d")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "UNTESTABLE" in out and "missing for a verdict: a cycle" in out
    assert "1 pair(s) both ways, 0 independent cycles" in out and "--samples-per-state" in out


def test_verdict_never_says_exactly_with_a_large_residual():
    from potsearch.science.diagnostics import verdict

    v = verdict({"p_value": None, "ndf": 0}, {"n_pairs": 1, "max_abs_residual": 0.91})
    assert v["status"] == "untestable" and "exactly" not in v["text"] and "0.91" in v["text"]
    assert "no test" in v["text"] and v["advice"].startswith("missing for a verdict")
    v = verdict({"p_value": None, "ndf": 0}, {"n_pairs": 1, "max_abs_residual": 2e-10})
    assert "exactly" in v["text"]
    v = verdict({"p_value": None, "ndf": 0}, {"n_pairs": 0})
    assert "pairs of states seen in both directions (none here)" in v["advice"]
    assert "advice" not in verdict({"p_value": 0.5, "ndf": 2}, {"n_pairs": 4}) or \
        verdict({"p_value": 0.5, "ndf": 2}, {"n_pairs": 4}).get("advice") is None


def test_evolve_refuses_below_the_floor_and_warns_above(tmp_path, capsys):
    p = tmp_path / "tiny.csv"
    p.write_text(TINY)
    run = str(tmp_path / "r")
    assert main(["import", str(p), "--run", run]) == 0
    assert main(["fit", run, "--min-visits", "0"]) == 0
    capsys.readouterr()
    assert main(["evolve", run, "--rounds", "2", "--islands", "2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "only 3 states in the fit (fewer than 5)" in err and "--force" in err and err.count("\n") == 1
    assert main(["evolve", run, "--rounds", "2", "--islands", "2", "--quiet", "--force"]) == 0
    out = capsys.readouterr().out
    assert "warning: only 3 states (below the floor of 5" in out


# ---------------------------------------------------------------- every hint printed works
def _hints(text: str) -> list[str]:
    import re

    found = re.findall(r"next: (potsearch [^\n`]+)", text) + re.findall(r"`(potsearch [^`]+)`", text)
    return [h.strip() for h in found]


def _run_hint(hint: str, capsys) -> str:
    import shlex

    argv = shlex.split(hint)[1:]
    if argv[0] == "evolve":      # the default search is 4000 rounds x 16 islands: keep the test short
        argv += ["--rounds", "3", "--islands", "2", "--quiet"]
    rc = main(argv)
    cap = capsys.readouterr()
    assert rc == 0, (hint, cap.err)
    return cap.out + cap.err


def test_every_hint_printed_is_a_command_that_works(tmp_path, capsys, monkeypatch):
    from potsearch.core.resources import shipped_dir

    monkeypatch.chdir(tmp_path)
    run = "runs/t2"
    seen: list[str] = []
    assert main(["import", str(shipped_dir("data") / "table2_claude4_word.csv"), "--run", run]) == 0
    text = capsys.readouterr().out
    assert main(["show", run]) == 2                      # no fit yet: the error names the command to run
    text += capsys.readouterr().err
    queue = _hints(text)
    assert queue, text
    for _ in range(10):                  # run every new hint; then ask show and status what comes next
        while queue:
            hint = queue.pop(0)
            if hint not in seen:
                seen.append(hint)
                queue += _hints(_run_hint(hint, capsys))
        for cmd in (["show", run], ["status", run]):
            main(cmd)
            cap = capsys.readouterr()
            queue += [h for h in _hints(cap.out + cap.err) if h not in seen]
        if not queue:
            break
    assert any(h.startswith("potsearch fit") for h in seen)
    assert any(h.startswith("potsearch evolve") for h in seen)
    assert any(h.startswith("potsearch attribute") for h in seen)


def test_thin_collect_hint_fits(tmp_path, capsys, ray_session):
    run = str(tmp_path / "thin")
    assert main(["collect", "--agent", "word", "--provider", "surrogate", "--run", run, "--max-samples", "30",
                 "--samples-per-state", "1", "--no-progress"]) == 0
    hints = _hints(capsys.readouterr().out)
    assert hints == [f"potsearch fit {run} --min-visits 0"]
    _run_hint(hints[0], capsys)


# ---------------------------------------------------------------- docs and outputs in step
def test_latex_keeps_feature_names_readable_and_parses_back():
    pytest.importorskip("antlr4")
    import numpy as np

    from potsearch.law.formula import from_latex, latex_text, translate

    src = ("N_PARAMS = 2\ndef potential(x, p):\n"
           "    return p[0] * x['rare_letters'] + np.log1p(x['first_letter']) - p[1] * x['rare']\n")
    form = translate(src, [1.5, 0.25])
    tex = latex_text(form.expr)
    assert r"\mathrm{rare\_letters}" in tex and r"\mathrm{first\_letter}" in tex and r"\mathrm{rare}" in tex
    assert "mathit" not in tex and "rareletters" not in tex
    back = from_latex(tex, form)
    x = {"rare_letters": 2.0, "first_letter": 3.0, "rare": 5.0}
    subs = {form.features[k]: v for k, v in x.items()}
    assert float(back.subs(subs)) == pytest.approx(float(form.expr.subs(subs)))
    assert np.isfinite(float(back.subs(subs)))


def test_data_path_from_any_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["data", "path", "table2_claude4_word.csv"]) == 0
    from pathlib import Path

    p = Path(capsys.readouterr().out.strip())
    assert p.is_absolute() and p.is_file() and p.name == "table2_claude4_word.csv"
    assert main(["import", str(p), "--run", "runs/c4"]) == 0
    assert "imported 20219 samples" in capsys.readouterr().out
    assert main(["data", "path"]) == 0 and Path(capsys.readouterr().out.strip()) == p.parent
    assert main(["data", "path", "word.yaml"]) == 0 and capsys.readouterr().out.strip().endswith("word.yaml")
    assert main(["data", "path", "nope.csv"]) == 2
    err = capsys.readouterr().err
    assert "no shipped file 'nope.csv'" in err and "table2_claude4_word.csv" in err


def test_agent_yaml_missing_relative_path_names_where_it_looked(tmp_path, word_yaml):
    from potsearch.agents.config import load_config
    from potsearch.core.errors import InputError

    y = tmp_path / "moved" / "word.yaml"
    y.parent.mkdir()
    from potsearch.core.resources import shipped_dir

    y.write_text((shipped_dir("agents") / "word.yaml").read_text())
    with pytest.raises(InputError) as e:
        load_config(str(y))
    msg = e.value.format()
    assert "word_list" in msg and "relative paths start at the YAML file's folder" in msg
    assert str(tmp_path / "data" / "words_sum100.tsv") in msg


def test_fit_table_cuts_long_state_names_csv_keeps_them(tmp_path, capsys):
    import csv

    long = "p[0] * x**2 + np.log(np.abs(x + p[1])) / (1 + np.exp(-p[2] * x))"
    p = tmp_path / "long.csv"
    with open(p, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerows([["source", "target", "count"], [long, "SHORT", 3], ["SHORT", long, 2],
                      ["SHORT", "a\nb", 2], ["a\nb", "SHORT", 3]])
    assert main(["fit", str(p), "--out", str(tmp_path / "f")]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if "│" in ln]
    assert len(rows) == 3                                  # one line per state, no wrapping
    assert any("…" in r and r.lstrip().startswith("p[0] * x**2") for r in rows)
    assert any("a ⏎ b" in r for r in rows)
    assert "potentials.csv has them in full" in out
    with open(tmp_path / "f" / "potentials.csv", newline="") as fh:
        names = {r["state"] for r in csv.DictReader(fh)}
    assert names == {long, "SHORT", "a\nb"}
