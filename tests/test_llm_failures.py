"""Failed model calls: what each means (classify), which are retried, and when a stage must stop.

Real litellm calls, no network: a closed port on 127.0.0.1, a missing key, an unknown provider, and the
stand-in server's 500s (a test instrument)."""
from __future__ import annotations

import socket

import pytest

from potsearch.llm.client import LLMClient
from potsearch.llm.failures import FailureWatch, ModelUnavailable, classify
from potsearch.testing.standin_server import StandinServer

MSG = [{"role": "user", "content": "hi"}]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client(monkeypatch, model="openai/standin", key: str | None = None, **kw) -> LLMClient:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    if key:
        monkeypatch.setenv("OPENAI_API_KEY", key)
    return LLMClient(model, timeout=5, retries=2, backoff=0.0, **kw)


def test_a_missing_key_is_auth_and_is_never_retried(monkeypatch):
    # litellm calls this one an InternalServerError (HTTP 500): the message decides
    r = _client(monkeypatch, api_base=f"http://127.0.0.1:{_closed_port()}/v1").complete_sync(MSG)
    assert r.kind == "auth" and r.attempts == 1 and "Missing credentials" in r.error


def test_an_unknown_provider_is_a_model_error_never_retried(monkeypatch):
    r = _client(monkeypatch, model="nosuchprovider/x").complete_sync(MSG)
    assert r.kind == "model" and r.attempts == 1


def test_an_unreachable_endpoint_is_retried_then_named(monkeypatch):
    r = _client(monkeypatch, key="sk-test", api_base=f"http://127.0.0.1:{_closed_port()}/v1").complete_sync(MSG)
    assert r.kind == "unreachable" and r.attempts == 3 and len(r.retried) == 2


def test_server_errors_are_retried(monkeypatch):
    with StandinServer(median=0.001, sigma=0.0, fail=1.0) as srv:
        r = _client(monkeypatch, key="sk-test", api_base=srv.api_base).complete_sync(MSG)
    assert r.kind == "server" and r.attempts == 3


def test_classify_reads_the_class_and_the_status():
    import litellm

    assert classify(TimeoutError()) == "timeout"
    assert classify(litellm.RateLimitError("slow down", "openai", "m")) == "rate_limit"
    assert classify(litellm.AuthenticationError("nope", "openai", "m")) == "auth"
    assert classify(litellm.NotFoundError("gone", "openai", "m")) == "model"
    assert classify(litellm.BadRequestError("max_tokens too large", "m", "openai")) == "bad_request"
    assert classify(ValueError("odd")) == "other"


def test_failure_watch_stops_at_once_on_a_fatal_kind_and_after_a_window_otherwise():
    w = FailureWatch("openai/x", window=4)
    w.record("InternalServerError: Missing credentials", "auth")
    with pytest.raises(ModelUnavailable, match="first call failed.*API key"):
        w.check()
    w = FailureWatch("openai/x", window=4)
    for _ in range(3):
        w.record("InternalServerError: Connection error.", "unreachable")
        w.check()                                   # not yet: three of a window of four
    w.record("InternalServerError: Connection error.", "unreachable")
    with pytest.raises(ModelUnavailable, match="first 4 calls failed.*--api-base"):
        w.check()
    w = FailureWatch("openai/x", window=2)
    w.record(None, None)                            # one success: later failures never stop the stage
    for _ in range(10):
        w.record("Timeout", "timeout")
    assert w.verdict() is None
