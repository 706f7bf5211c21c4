"""Acceptance: a paid-model collect keeps its budgets and its endpoint (the stand-in server, a test
instrument, plays the paid API: any key, model ``openai/standin``, ``--api-base``).

* ``--rpm 60`` keeps the rate of requests the server sees within 10 % of 60 a minute (it measures time:
  a SERIAL file).
(tests/test_collect_call_settings.py has the checks that measure no time: the cost cap, prices, resume.)
"""
from __future__ import annotations

import json


from potsearch.testing.standin_server import StandinServer

from standin_collect_helpers import KEY, collect_standin, env  # noqa: F401  (env: a fixture)


def test_rpm_keeps_the_measured_request_rate(tmp_path, env, capsys):
    with StandinServer(median=0.05, sigma=0.3, seed=2, mode="word") as srv:
        code = collect_standin(tmp_path / "r", srv.api_base, "--workers", "4", "--rpm", "60", "--max-samples", "40")
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
