"""The one door to language models: litellm (pinned), with timeouts, retries, tokens and cost.

Every model call of potsearch goes through :class:`LLMClient`. A model is any litellm model
string (``openai/gpt-4o-mini``, ``anthropic/...``, ``ollama/...``, ``openai/NAME`` with
``api_base``); keys come from the environment as litellm reads them. ``local`` maps to the
in-process SmolLM2 provider of :mod:`potsearch.agents.local`, registered in
``litellm.custom_provider_map`` and reached through ``litellm.acompletion`` like any other.

Errors: time-outs, rate limits, connection and server errors are retried with exponential
backoff and full jitter; other errors (bad request, authentication, unknown model) are not.
A call that still fails returns a :class:`Reply` with ``error`` set — the caller decides what
to do; nothing here raises on a model failure.
"""
from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from ..errors import InputError

# litellm itself (its one import, the environment it needs, custom providers) lives in ``providers``
from .providers import LOCAL_MODEL, LOCAL_PROVIDER, get_litellm, register_provider  # noqa: E402,F401


def resolve_model(provider: str) -> str:
    """``local`` -> our in-process provider; anything else is passed to litellm as is."""
    if provider == "local":
        return LOCAL_MODEL
    if provider in ("surrogate",):
        raise InputError("the surrogate provider does not call a model")
    if "/" not in provider and not provider.startswith(("gpt", "claude", "gemini", "o1", "o3", "o4")):
        # litellm accepts some bare names; anything else is most likely a typo
        raise InputError(
            f"unknown provider {provider!r}: use surrogate, local, or a litellm model string such as "
            "openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3"
        )
    return provider


def is_local(model: str) -> bool:
    return model.startswith(LOCAL_PROVIDER + "/")


@dataclass
class Reply:
    """The outcome of one (possibly retried) model call."""

    text: str | None
    tokens_in: int = 0
    tokens_out: int = 0
    cost: float = 0.0
    latency: float = 0.0          # seconds of the successful attempt (or of the last one)
    attempts: int = 1
    error: str | None = None      # set when the call failed for good
    retried: list[str] = field(default_factory=list)  # errors of earlier attempts, in order
    finish_reason: str | None = None  # "stop", or "length" when max_tokens cut the reply

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    def error_note(self) -> str | None:
        """What went wrong on the way (retried errors, then the final one), or None."""
        parts = list(self.retried) + ([self.error] if self.error else [])
        return "; ".join(parts) if parts else None


def _retryable_classes():
    litellm = get_litellm()
    names = ["Timeout", "RateLimitError", "APIConnectionError", "InternalServerError",
             "ServiceUnavailableError", "BadGatewayError"]
    return tuple(getattr(litellm, n) for n in names if hasattr(litellm, n)) + (asyncio.TimeoutError, TimeoutError)


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg[:200]}" if msg else type(exc).__name__


@dataclass
class LLMClient:
    """Async litellm client with a per-call timeout and retries (exponential backoff + jitter)."""

    model: str
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 0.5          # first retry waits up to this many seconds (full jitter)
    backoff_max: float = 30.0
    temperature: float = 1.0
    max_tokens: int = 64
    api_base: str | None = None
    seed: int | None = None
    local_threads: int = 1        # llama.cpp threads of the in-process local model

    def __post_init__(self):
        self._litellm = get_litellm()
        self._retryable = _retryable_classes()
        if is_local(self.model):
            from .local import ensure_registered

            ensure_registered(n_threads=self.local_threads)

    async def complete(self, messages: list[dict], grammar: str | None = None, rng: random.Random | None = None,
                       seed: int | None = None) -> Reply:
        rng = rng or random.Random()
        kwargs = dict(model=self.model, messages=messages, temperature=self.temperature,
                      max_tokens=self.max_tokens, timeout=self.timeout, num_retries=0)
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if seed is not None:
            kwargs["seed"] = int(seed) & 0x7FFFFFFF
        if grammar is not None:
            kwargs["extra_body"] = {"grammar": grammar}
        retried: list[str] = []
        for attempt in range(1, self.retries + 2):
            t0 = time.perf_counter()
            try:
                resp = await asyncio.wait_for(self._litellm.acompletion(**kwargs), timeout=self.timeout)
            except self._retryable as exc:
                err = "Timeout: no reply within %gs" % self.timeout if isinstance(exc, asyncio.TimeoutError) else _short(exc)
                if attempt > self.retries:
                    return Reply(None, latency=time.perf_counter() - t0, attempts=attempt, error=err, retried=retried)
                retried.append(err)
                wait = min(self.backoff_max, self.backoff * 2 ** (attempt - 1)) * rng.random()
                await asyncio.sleep(wait)
                continue
            except Exception as exc:  # not worth retrying: bad request, auth, unknown model, provider bug
                return Reply(None, latency=time.perf_counter() - t0, attempts=attempt, error=_short(exc), retried=retried)
            latency = time.perf_counter() - t0
            text, tin, tout = _unpack(resp)
            return Reply(text, tin, tout, self._cost(resp), latency, attempt, None, retried, _finish_reason(resp))
        raise AssertionError("unreachable")  # pragma: no cover

    def _cost(self, resp) -> float:
        if is_local(self.model):
            return 0.0
        hidden = getattr(resp, "_hidden_params", None) or {}
        if hidden.get("response_cost") is not None:  # litellm priced it already
            return float(hidden["response_cost"])
        try:
            return float(self._litellm.completion_cost(completion_response=resp, model=self.model) or 0.0)
        except Exception:
            return 0.0  # price unknown to litellm's bundled map


def _finish_reason(resp) -> str | None:
    try:
        return resp.choices[0].finish_reason
    except (AttributeError, IndexError, KeyError, TypeError):
        return None


def _unpack(resp) -> tuple[str | None, int, int]:
    try:
        text = resp.choices[0].message.content
    except (AttributeError, IndexError, KeyError, TypeError):
        text = None
    usage = getattr(resp, "usage", None)
    tin = int(getattr(usage, "prompt_tokens", 0) or 0) if usage else 0
    tout = int(getattr(usage, "completion_tokens", 0) or 0) if usage else 0
    return text, tin, tout
