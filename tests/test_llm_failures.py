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
    # a bad request that mentions tokens is not a credential problem (that one would stop the stage at once)
    assert classify(litellm.BadRequestError("Invalid value for max_tokens: 99999", "m", "openai")) == "bad_request"
    assert classify(litellm.BadRequestError("Incorrect API key provided: sk-...", "m", "openai")) == "auth"


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


def test_a_collect_without_a_key_stops_at_once_with_one_line(tmp_path, monkeypatch, capsys):
    """No OPENAI_API_KEY: the first failed call stops the collect (exit 2) with the error and what to do,
    instead of 'plan complete' after minutes of retries; what the store holds is kept."""
    from potsearch.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    run = tmp_path / "r"
    code = main(["collect", "--agent", "word", "--provider", "openai/standin", "--mode", "free", "--run", str(run),
                 "--api-base", f"http://127.0.0.1:{_closed_port()}/v1", "--max-samples", "40", "--workers", "1",
                 "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "Missing credentials" in err[-1] and "API key" in err[-1]


def test_evolve_whose_model_cannot_answer_stops_with_one_line(tmp_path, monkeypatch, capsys, table2):
    from potsearch.cli import main

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    run = tmp_path / "r"
    assert main(["import", str(table2), str(run)]) == 0 and main(["fit", str(run)]) == 0
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"loop: lockstep\nllm:\n  models: [openai/standin]\n  mix: 1.0\n"
                   f"  api_base: http://127.0.0.1:{_closed_port()}/v1\n")
    capsys.readouterr()
    code = main(["evolve", str(run), "--config", str(cfg), "--rounds", "3", "--islands", "1", "--quiet", "--force"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "model openai/standin" in err[-1] and "API key" in err[-1]


def test_a_collect_that_cannot_be_fitted_says_so_instead_of_suggesting_fit():
    from potsearch.collector.stats import next_step

    s = {"samples": 60, "unique_transitions": 0, "escape_rate": 1.0, "states_sampled_gt1": 1}
    assert next_step(s, "runs/x").startswith("nothing to fit yet: every sample is an escape")
    s.update(escape_rate=0.5)
    assert "no move between two different states" in next_step(s, "runs/x")
    s.update(unique_transitions=3)
    assert next_step(s, "runs/x") == "next: potsearch fit runs/x"


def test_an_endpoint_with_credentials_in_it_is_refused_before_anything_is_stored(tmp_path, capsys):
    from potsearch.cli import main

    run = tmp_path / "r"
    code = main(["collect", "--agent", "word", "--provider", "openai/standin", "--mode", "free", "--run", str(run),
                 "--api-base", "http://user:secret@127.0.0.1:9/v1", "--max-samples", "4", "--workers", "1",
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "holds a user or password" in err and "secret" not in err
    assert not run.exists() or not any("secret" in p.read_bytes().decode("latin-1") for p in run.rglob("*")
                                       if p.is_file())
