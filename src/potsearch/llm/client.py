"""The one door to language models: litellm (imported once, offline price map), the sync and async
completion calls, timeouts, retries with backoff, local vs remote routing, and the record of a call.

Both stages call models through :class:`LLMClient`: collect (``collector/workers.py``, async,
with retries) and evolve's LLM operator (``search/llm_op.py`` sync in the lockstep loop,
``search/proposers.py`` async in the asynchronous one; a failed call is one failed candidate, so
evolve's client does not retry).

A model is any litellm model string (``openai/gpt-4o-mini``, ``anthropic/...``, ``ollama/...``,
``openai/NAME`` with ``api_base``); keys come from the environment as litellm reads them. ``local``
(or ``potsearch-local/...``) is routed to the in-process SmolLM2 provider of
:mod:`potsearch.agents.local`, registered here in ``litellm.custom_provider_map`` and reached like
any other model.

Errors: time-outs (``asyncio.wait_for`` cuts the call at ``timeout`` seconds: ``Timeout: no reply
within Ns``), rate limits, connection and server errors are retried with exponential backoff and
full jitter (``retries`` times); other errors (bad request, authentication, unknown model) are not —
by the kind :func:`potsearch.llm.failures.classify` reads from the class and the message.
A call that still fails returns a :class:`Reply` with ``error`` set — nothing here raises on a
model failure; the caller decides what to do.
"""
from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field

from potsearch.llm.failures import RETRIED, classify

LOCAL = "local"                   # the configured name of the in-process model
LOCAL_PROVIDER = "potsearch-local"
LOCAL_MODEL = f"{LOCAL_PROVIDER}/smollm2-135m-instruct"

_litellm = None


# --------------------------------------------------------------------------- litellm, once
def litellm_environment() -> None:
    """The environment litellm must see before its import: offline price map, quiet log.
    The one place that sets the offline price map (no network at import)."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("LITELLM_LOG", "ERROR")


def get_litellm():
    """Import litellm once, offline (bundled cost map), quiet."""
    global _litellm
    if _litellm is None:
        litellm_environment()
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        litellm.drop_params = False
        _litellm = litellm
    return _litellm


def register_provider(name: str, handler) -> None:
    """Register (or replace) a litellm custom provider ``name`` (a litellm.CustomLLM instance)."""
    litellm = get_litellm()
    litellm.custom_provider_map = [p for p in litellm.custom_provider_map if p["provider"] != name]
    litellm.custom_provider_map.append({"provider": name, "custom_handler": handler})
    try:
        from litellm.utils import custom_llm_setup

        custom_llm_setup()
    except Exception:  # pragma: no cover - older/newer litellm: registration happens on first call
        pass


# --------------------------------------------------------------------------- routing
def is_local(model: str) -> bool:
    return model == LOCAL or model.startswith(LOCAL_PROVIDER + "/")


def route(model: str, local_threads: int = 1) -> str:
    """litellm's model string for a configured one: ``local`` -> the in-process provider (registered
    here, its model on ``local_threads`` llama.cpp threads); anything else as is."""
    if not is_local(model):
        return model
    from potsearch.agents.local import local_handler

    register_provider(LOCAL_PROVIDER, local_handler(get_litellm(), n_threads=local_threads))
    return LOCAL_MODEL


def resolve_model(provider: str) -> str:
    """A provider named on the command line: ``local`` -> our provider's model string, a litellm
    model string as is; a bare word that is no known model family is most likely a typo."""
    from potsearch.core.errors import InputError

    if provider == LOCAL:
        return LOCAL_MODEL
    if provider in ("surrogate",):
        raise InputError("the surrogate provider does not call a model")
    if "/" not in provider and not provider.startswith(("gpt", "claude", "gemini", "o1", "o3", "o4")):
        raise InputError(
            f"unknown provider {provider!r}: use surrogate, local, or a litellm model string such as "
            "openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest, ollama/llama3"
        )
    return provider


# --------------------------------------------------------------------------- the record of a call
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
    kind: str | None = None       # a failure's kind (potsearch.llm.failures.classify), None on success
    throttled: int = 0            # attempts answered with a rate limit (429), retried or final

    @property
    def ok(self) -> bool:
        return self.error is None and self.text is not None

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out

    def error_note(self) -> str | None:
        """What went wrong on the way (retried errors, then the final one), or None."""
        parts = list(self.retried) + ([self.error] if self.error else [])
        return "; ".join(parts) if parts else None


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {msg[:200]}" if msg else type(exc).__name__


# --------------------------------------------------------------------------- the client
@dataclass
class LLMClient:
    """One model, called with a per-call timeout and retries (exponential backoff + full jitter)."""

    model: str
    timeout: float = 60.0
    retries: int = 4
    backoff: float = 0.5          # first retry waits up to this many seconds (full jitter)
    backoff_max: float = 30.0
    temperature: float = 1.0
    max_tokens: int = 64
    api_base: str | None = None
    local_threads: int = 1        # llama.cpp threads of the in-process local model
    price: tuple[float, float] | None = None  # $ per prompt / completion token from a prices table (else litellm's)

    def __post_init__(self):
        self._litellm = get_litellm()
        self.model = route(self.model, self.local_threads)

    def _kwargs(self, messages, grammar, seed) -> dict:
        kw = dict(model=self.model, messages=messages, temperature=self.temperature,
                  max_tokens=self.max_tokens, timeout=self.timeout, num_retries=0)
        if self.api_base:
            kw["api_base"] = self.api_base
        if seed is not None:
            kw["seed"] = int(seed) & 0x7FFFFFFF
        if grammar is not None:
            kw["extra_body"] = {"grammar": grammar}
        return kw

    async def complete(self, messages: list[dict], grammar: str | None = None, rng: random.Random | None = None,
                       seed: int | None = None) -> Reply:
        """One call through ``litellm.acompletion`` (retried as the class says); never raises."""
        kw, calls = self._kwargs(messages, grammar, seed), _Attempts(self, rng)
        while True:
            t0 = time.perf_counter()
            try:
                resp = await asyncio.wait_for(self._litellm.acompletion(**kw), timeout=self.timeout)
            except Exception as exc:
                wait = calls.failed(exc, t0)
                if wait is None:
                    return calls.reply
                await asyncio.sleep(wait)
                continue
            return calls.done(resp, t0)

    def complete_sync(self, messages: list[dict], grammar: str | None = None, rng: random.Random | None = None,
                      seed: int | None = None) -> Reply:
        """The same call through ``litellm.completion`` (the provider's own timeout); never raises."""
        kw, calls = self._kwargs(messages, grammar, seed), _Attempts(self, rng)
        while True:
            t0 = time.perf_counter()
            try:
                resp = self._litellm.completion(**kw)
            except Exception as exc:
                wait = calls.failed(exc, t0)
                if wait is None:
                    return calls.reply
                time.sleep(wait)
                continue
            return calls.done(resp, t0)

    def cost(self, resp) -> float:
        if is_local(self.model):
            return 0.0
        if self.price is not None:
            _, tin, tout = _unpack(resp)
            return tin * self.price[0] + tout * self.price[1]
        hidden = getattr(resp, "_hidden_params", None) or {}
        if hidden.get("response_cost") is not None:  # litellm priced it already
            return float(hidden["response_cost"])
        try:
            return float(self._litellm.completion_cost(completion_response=resp, model=self.model) or 0.0)
        except Exception:
            return 0.0  # price unknown to litellm's bundled map


class _Attempts:
    """The attempts of one call: what failed, whether to retry and after how long."""

    def __init__(self, client: LLMClient, rng: random.Random | None):
        self.client, self.rng = client, rng or random.Random()
        self.attempt, self.retried, self.reply = 1, [], None
        self.throttled = 0

    def failed(self, exc: Exception, t0: float) -> float | None:
        """The wait before the next attempt, or None (``self.reply`` holds the failure). Whether to retry
        follows :func:`potsearch.llm.failures.classify` (a missing key is never retried, even when litellm
        calls it a server error)."""
        c, kind = self.client, classify(exc)
        err = f"Timeout: no reply within {c.timeout:g}s" if isinstance(exc, asyncio.TimeoutError) else _short(exc)
        self.throttled += kind == "rate_limit"
        if kind in RETRIED and self.attempt <= c.retries:
            self.retried.append(err)
            wait = min(c.backoff_max, c.backoff * 2 ** (self.attempt - 1)) * self.rng.random()
            self.attempt += 1
            return wait
        self.reply = Reply(None, latency=time.perf_counter() - t0, attempts=self.attempt, error=err,
                           retried=self.retried, kind=kind, throttled=self.throttled)
        return None

    def done(self, resp, t0: float) -> Reply:
        latency = time.perf_counter() - t0
        text, tin, tout = _unpack(resp)
        return Reply(text, tin, tout, self.client.cost(resp), latency, self.attempt, None, self.retried,
                     _finish_reason(resp), throttled=self.throttled)


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
