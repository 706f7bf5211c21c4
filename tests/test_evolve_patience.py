"""evolve --patience (search/patience.py) and evolve --address/--ray-timeout (core/raycluster.py)."""
from __future__ import annotations

import json
import socket
import time

import pytest

from evolve_helpers import candidate_tuples, small_run
from potsearch.cli.app import main

CFG = ("seed: 1\nislands: 2\npopulation: 8\noffspring: 2\nmigrate_every: 10\nreset_every: 0\n"
       "terms_mix: 0\ncheckpoint_every: 1000\nloop: {loop}\ngp:\n  max_size: 12\n  max_height: 4\n")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return small_run(tmp_path_factory, "patience")


def _config(tmp_path, loop="lockstep"):
    p = tmp_path / f"{loop}.yaml"
    p.write_text(CFG.format(loop=loop))
    return p


@pytest.mark.parametrize("loop", ["lockstep", "async"])
def test_a_converged_search_stops_early_and_says_why(tmp_path_factory, tmp_path, capsys, loop):
    run = small_run(tmp_path_factory, f"p-{loop}")
    cfg = _config(tmp_path, loop)
    assert main(["evolve", str(run), "--config", str(cfg), "--rounds", "400", "--patience", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    s = json.loads((run / "evolve" / "summary.json").read_text())
    stop = s["stopped"]
    assert stop["reason"] == "patience" and s["rounds"] < 400
    assert s["rounds"] - stop["last_improvement"] == 8 == stop["patience"]
    assert "stopped: patience (no improvement for 8 rounds)" in out
    assert len(json.loads((run / "evolve" / "logbook.json").read_text())) == s["rounds"] + 1
    # the same search without patience stores the same candidates up to the stop, then goes on
    run2 = small_run(tmp_path_factory, f"full-{loop}")
    assert main(["evolve", str(run2), "--config", str(cfg), "--rounds", str(s["rounds"] + 5), "--quiet"]) == 0
    out2 = capsys.readouterr().out
    assert "stopped: rounds done" in out2
    cols = ("uid", "source", "train_action")
    short, full = candidate_tuples(run, cols), candidate_tuples(run2, cols)
    assert len(full) > len(short) and full[:len(short)] == short


def test_resume_after_a_patience_stop(tmp_path_factory, tmp_path, capsys):
    """Same --patience: nothing more to do (it has converged; the note says how to go on). --patience 0:
    the search continues to --rounds from where it stopped."""
    run = small_run(tmp_path_factory, "p-resume")
    cfg = _config(tmp_path)
    assert main(["evolve", str(run), "--config", str(cfg), "--rounds", "400", "--patience", "8", "--quiet"]) == 0
    capsys.readouterr()
    s = json.loads((run / "evolve" / "summary.json").read_text())
    n = len(candidate_tuples(run, ("uid",)))
    assert main(["evolve", str(run), "--config", str(cfg), "--rounds", "400", "--patience", "8", "--resume",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    again = json.loads((run / "evolve" / "summary.json").read_text())
    assert "the search had converged at round" in out and "--patience 0" in out
    assert again["rounds"] == s["rounds"] and again["stopped"]["reason"] == "patience"
    assert len(candidate_tuples(run, ("uid",))) == n
    target = s["rounds"] + 6
    assert main(["evolve", str(run), "--config", str(cfg), "--rounds", str(target), "--patience", "0", "--resume",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    more = json.loads((run / "evolve" / "summary.json").read_text())
    assert more["rounds"] == target and more["stopped"]["reason"] == "rounds"
    assert len(candidate_tuples(run, ("uid",))) > n and "stopped: rounds done" in out


def test_patience_must_not_be_negative(base, capsys):
    assert main(["evolve", str(base), "--patience", "-1", "--rounds", "1"]) == 2
    assert "--patience must be >= 0" in capsys.readouterr().err


def test_wrong_ray_address_fails_fast_with_exit_2_and_writes_nothing(base, capsys):
    with socket.socket() as s:          # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = sorted(p.relative_to(base) for p in base.rglob("*"))
    t = time.time()
    rc = main(["evolve", str(base), "--address", f"127.0.0.1:{port}", "--ray-timeout", "3", "--rounds", "1"])
    assert rc == 2 and time.time() - t < 3
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot join the Ray cluster" in err and "ray status" in err
    assert sorted(p.relative_to(base) for p in base.rglob("*")) == before


def test_silent_listener_fails_evolve_within_the_timeout(base, tmp_path):
    """Something accepts connections but never answers as a Ray head: the deadline holds."""
    import subprocess
    import sys

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    port = srv.getsockname()[1]
    cfg = _config(tmp_path, "async")
    t = time.time()
    try:
        p = subprocess.run([sys.executable, "-m", "potsearch", "evolve", str(base), "--config", str(cfg),
                            "--rounds", "1", "--address", f"127.0.0.1:{port}", "--ray-timeout", "4", "--quiet"],
                           capture_output=True, text=True, timeout=120)
    finally:
        srv.close()
    assert p.returncode == 2, p.stderr
    assert time.time() - t < 60
    # Ray's connecting thread may still log a line while the process exits: the error is one line of them
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1 and errors[0].startswith("error: cannot join the Ray cluster")
    assert "within 4 s" in errors[0] and "Traceback" not in p.stderr
    assert not (base / "evolve").exists()
