"""A paid-model collect keeps its budget and its endpoint (the stand-in server, a test instrument, plays
the paid API: any key, model ``openai/standin``, ``--api-base``); nothing here measures time.

* ``--max-cost`` with prices set (a ``--prices`` table) is never passed, with 8 workers (the spend cap
  counts the calls in flight at their worst case); on a model without a price it is refused unless
  ``--allow-unpriced``.
* ``--resume`` keeps the run's ``--api-base`` (the stand-in sees the resumed calls) and refuses a
  different one; no API key set in the environment enters the run folder.
* a prices file is checked entry by entry.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from potsearch.testing.standin_server import StandinServer

from standin_collect_helpers import KEY, collect_standin, env, samples_cost  # noqa: F401  (env: a fixture)


def test_max_cost_is_never_passed_by_more_than_one_call_with_8_workers(tmp_path, env, capsys):
    prices = tmp_path / "prices.yaml"
    prices.write_text("prices:\n  openai/standin: {input: 1.0, output: 4.0}\n")
    cap = 0.015
    with StandinServer(median=0.05, sigma=0.3, seed=1, mode="word") as srv:
        code = collect_standin(tmp_path / "r", srv.api_base, "--workers", "8", "--max-cost", str(cap),
                        "--prices", str(prices), "--max-samples", "2000")
        requests = srv.requests
    out = capsys.readouterr().out
    assert code == 0
    n, spent, one = samples_cost(tmp_path / "r")
    assert one > 0, "the prices table prices the calls"
    assert n >= 20 and requests >= n, (n, requests)      # the run is long enough for 8 workers to overlap
    assert spent <= cap + one, (spent, cap, one)
    assert "cost budget reached" in out


def test_max_cost_on_an_unpriced_model_is_refused_unless_allowed(tmp_path, env, capsys):
    with StandinServer(median=0.01, sigma=0.0, seed=1, mode="word") as srv:
        code = collect_standin(tmp_path / "r", srv.api_base, "--workers", "1", "--max-cost", "1", "--max-samples", "3")
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and "no price is known" in err[-1] and "--allow-unpriced" in err[-1]
        assert srv.requests == 0
        code = collect_standin(tmp_path / "r", srv.api_base, "--workers", "1", "--max-cost", "1", "--max-samples", "3",
                        "--allow-unpriced")
        assert code == 0 and srv.requests >= 3


def test_resume_keeps_the_api_base_refuses_another_and_stores_no_secret(tmp_path, env, capsys):
    run = tmp_path / "r"
    with StandinServer(median=0.01, sigma=0.0, seed=3, mode="word") as srv, \
            StandinServer(median=0.01, sigma=0.0, seed=4, mode="word") as other:
        assert collect_standin(run, srv.api_base, "--workers", "2", "--max-samples", "6", "--timeout", "20") == 0
        first = srv.requests
        capsys.readouterr()
        code = collect_standin(run, other.api_base, "--resume", "--max-samples", "12")
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "--api-base" in err[0] and srv.api_base in err[0]
        assert other.requests == 0
        assert collect_standin(run, None, "--resume", "--max-samples", "12") == 0
        assert srv.requests >= first + 6 and other.requests == 0
    from potsearch.store import RunStore

    with RunStore.open(run) as s:
        call = s.run_info()["config"]["call"]
    assert call["api_base"] == srv.api_base and call["timeout"] == 20.0     # pace settings remembered too
    for f in Path(run).rglob("*"):
        if f.is_file():
            assert KEY.encode() not in f.read_bytes(), f"the API key was written to {f.name}"


def test_prices_file_is_checked(tmp_path):
    from potsearch.collector.callsettings import load_prices
    from potsearch.core.errors import InputError

    good = tmp_path / "p.json"
    good.write_text(json.dumps({"openai/x": {"input": 1, "output": 2}}))
    assert load_prices(str(good)) == {"openai/x": {"input": 1.0, "output": 2.0}}
    bad = tmp_path / "b.yaml"
    bad.write_text("openai/x: {input: 1}\n")
    with pytest.raises(InputError, match="needs input and output"):
        load_prices(str(bad))

