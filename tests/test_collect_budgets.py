"""Acceptance: a paid-model collect keeps its budgets and its endpoint (the stand-in server, a test
instrument, plays the paid API: any key, model ``openai/standin``, ``--api-base``).

* ``--max-cost`` with prices set (a ``--prices`` table) is never passed by more than one call's cost,
  with 8 workers (the spend cap counts the calls in flight at their worst case).
* ``--rpm 60`` keeps the rate of requests the server sees within 10 % of 60 a minute (it measures time:
  a SERIAL file).
* ``--resume`` keeps the run's ``--api-base`` (the stand-in sees the resumed calls) and refuses a
  different one; no API key set in the environment enters the run folder.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from potsearch.testing.standin_server import StandinServer

KEY = "sk-potsearch-test-secret-5f0c2e9a"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("POTSEARCH_TEST_PAUSE_AFTER_WRITE", raising=False)


def _collect(run, api_base, *extra):
    from potsearch.cli import main

    return main(["collect", "--agent", "word", "--provider", "openai/standin", "--mode", "free", "--run", str(run),
                 *(["--api-base", api_base] if api_base else []), "--no-progress", *extra])


def _samples_cost(run) -> tuple[int, float, float]:
    """(samples, total cost, most one sample cost) as stored."""
    from potsearch.store import RunStore

    with RunStore.open(Path(run)) as s:
        costs = [float(x) for x in s.samples_frame()["cost"].fillna(0.0)]
    return len(costs), sum(costs), max(costs, default=0.0)


def test_max_cost_is_never_passed_by_more_than_one_call_with_8_workers(tmp_path, env, capsys):
    prices = tmp_path / "prices.yaml"
    prices.write_text("prices:\n  openai/standin: {input: 1.0, output: 4.0}\n")
    cap = 0.015
    with StandinServer(median=0.05, sigma=0.3, seed=1, mode="word") as srv:
        code = _collect(tmp_path / "r", srv.api_base, "--workers", "8", "--max-cost", str(cap),
                        "--prices", str(prices), "--max-samples", "2000")
        requests = srv.requests
    out = capsys.readouterr().out
    assert code == 0
    n, spent, one = _samples_cost(tmp_path / "r")
    assert one > 0, "the prices table prices the calls"
    assert n >= 20 and requests >= n, (n, requests)      # the run is long enough for 8 workers to overlap
    assert spent <= cap + one, (spent, cap, one)
    assert "cost budget reached" in out


def test_max_cost_on_an_unpriced_model_is_refused_unless_allowed(tmp_path, env, capsys):
    with StandinServer(median=0.01, sigma=0.0, seed=1, mode="word") as srv:
        code = _collect(tmp_path / "r", srv.api_base, "--workers", "1", "--max-cost", "1", "--max-samples", "3")
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and "no price is known" in err[-1] and "--allow-unpriced" in err[-1]
        assert srv.requests == 0
        code = _collect(tmp_path / "r", srv.api_base, "--workers", "1", "--max-cost", "1", "--max-samples", "3",
                        "--allow-unpriced")
        assert code == 0 and srv.requests >= 3


def test_rpm_keeps_the_measured_request_rate(tmp_path, env, capsys):
    with StandinServer(median=0.05, sigma=0.3, seed=2, mode="word") as srv:
        code = _collect(tmp_path / "r", srv.api_base, "--workers", "4", "--rpm", "60", "--max-samples", "40")
        samples = list(srv.inflight_samples)
    assert code == 0
    starts, prev = [], 0
    for t, k in samples:
        if k > prev:
            starts.append(t)
        prev = k
    rate = (len(starts) - 1) / (starts[-1] - starts[0]) * 60.0
    gaps = [round(b - a, 2) for a, b in zip(starts, starts[1:])]
    assert len(starts) >= 38 and abs(rate - 60.0) <= 6.0, (len(starts), rate, gaps)
    # and no burst (unpaced, 32 calls would start at once): calls catch up at most twice as fast
    assert max(sum(1 for u in starts if s <= u < s + 10.0) for s in starts) <= 13, gaps


def test_resume_keeps_the_api_base_refuses_another_and_stores_no_secret(tmp_path, env, capsys):
    run = tmp_path / "r"
    with StandinServer(median=0.01, sigma=0.0, seed=3, mode="word") as srv, \
            StandinServer(median=0.01, sigma=0.0, seed=4, mode="word") as other:
        assert _collect(run, srv.api_base, "--workers", "2", "--max-samples", "6", "--timeout", "20") == 0
        first = srv.requests
        capsys.readouterr()
        code = _collect(run, other.api_base, "--resume", "--max-samples", "12")
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "--api-base" in err[0] and srv.api_base in err[0]
        assert other.requests == 0
        assert _collect(run, None, "--resume", "--max-samples", "12") == 0
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


def test_evolve_model_calls_honour_llm_rpm_and_prices(env):
    """evolve's model operator (ModelCaller) spreads its calls at llm.rpm and prices them from llm.prices."""
    from potsearch.search.config import parse_config
    from potsearch.search.proposers import ModelCaller

    with StandinServer(median=0.01, sigma=0.0, seed=5) as srv:
        cfg = parse_config(f"llm:\n  models: [openai/standin]\n  mix: [0.5]\n  rpm: 240\n  max_cost: 1.0\n"
                           f"  api_base: {srv.api_base}\n  prices: {{openai/standin: {{input: 1.0, output: 2.0}}}}\n")
        caller = ModelCaller(cfg)
        try:
            caller.submit("openai/standin", "warm up", None).result(timeout=60)   # litellm's first-call imports
            n0 = len(srv.inflight_samples)
            reps = [f.result(timeout=60) for f in [caller.submit("openai/standin", "hi", None) for _ in range(9)]]
        finally:
            caller.close()
        starts, prev = [], 0
        for t, k in srv.inflight_samples[n0:]:
            if k > prev:
                starts.append(t)
            prev = k
    assert all(r["error"] is None and r["cost"] > 0 for r in reps)
    assert len(starts) == 9
    gaps = [round(b - a, 3) for a, b in zip(starts, starts[1:])]
    # 240/min: a call every 0.25 s (an idle moment earns at most 4 slots, made up at 0.125 s); unpaced,
    # the 9 calls start within a few milliseconds
    assert 8 * 0.25 - 4 * 0.125 <= starts[-1] - starts[0] <= 8 * 0.25 * 1.5, gaps


def test_429s_are_retried_with_backoff_and_counted(env):
    """A provider that answers 429 twice, then replies: the call succeeds after backing off and the
    reply counts the two rate limits (collect sums them into the summary's ``rate_limited``)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from potsearch.llm.client import LLMClient

    seen = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append(1)
            if len(seen) <= 2:
                code, body = 429, {"error": {"message": "Rate limit reached", "type": "rate_limit_error"}}
            else:
                code, body = 200, {"id": "x", "object": "chat.completion", "created": 0, "model": "standin",
                                   "choices": [{"index": 0, "message": {"role": "assistant", "content": "OK"},
                                                "finish_reason": "stop"}],
                                   "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        client = LLMClient("openai/standin", timeout=10, retries=3, backoff=0.01,
                           api_base=f"http://127.0.0.1:{srv.server_address[1]}/v1")
        reply = client.complete_sync([{"role": "user", "content": "hi"}])
    finally:
        srv.shutdown()
        srv.server_close()
    assert reply.ok and reply.text == "OK" and reply.throttled == 2 and reply.attempts == 3
