"""What a failed model call means, and when a stage must stop because its model cannot answer.

litellm's exception classes do not always say what happened: a missing OpenAI key and an unreachable
endpoint both arrive as ``InternalServerError`` (HTTP 500), so a retry policy on classes alone retries
calls that can never succeed. :func:`classify` reads the class *and* the message and returns one kind:

=============  ===========================================  =========  ============================
kind           examples                                     retried    stops the stage
=============  ===========================================  =========  ============================
auth           missing or wrong API key (401/403)           never      at once (before any success)
model          unknown model or provider (404, "not         never      at once (before any success)
               provided")
bad_request    the provider refused this request (400)      never      when every call fails
unreachable    connection refused / DNS / endpoint down     yes        when every call fails
rate_limit     429                                          yes        when every call fails
timeout        no reply within the timeout                  yes        when every call fails
server         5xx from the provider                        yes        when every call fails
other          anything else                                never      when every call fails
=============  ===========================================  =========  ============================

:class:`FailureWatch` is the rule both stages (collect and evolve's model operator) apply: stop with
one line naming the first error and what to do when a fatal kind arrives before any call succeeded, or
when the first ``window`` calls all failed.
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field

from potsearch.core.errors import InputError

RETRIED = frozenset({"unreachable", "rate_limit", "timeout", "server"})
FATAL = frozenset({"auth", "model"})

# phrases of a refused or missing credential (not just any mention of tokens: "invalid value for
# max_tokens" is a bad request)
_AUTH = re.compile(r"missing credentials|(missing|invalid|incorrect|no) (x-)?api[_ -]?key|api[_ -]?key (is )?"
                   r"(missing|invalid|not (set|found|provided))|authenticat|unauthori[sz]ed|permission denied|"
                   r"invalid (bearer|access) token", re.I)
_MODEL = re.compile(r"provider not provided|llm provider|model.{0,40}(not found|does not exist|unknown|"
                    r"not supported)|no such model|unknown model|model_not_found", re.I)
_UNREACHABLE = re.compile(r"connection (error|refused|reset)|failed to establish|name or service not known|"
                          r"nodename nor servname|cannot connect|connecterror|no route to host", re.I)

ADVICE = {
    "auth": "the provider refused the credentials: set its API key in the environment (e.g. OPENAI_API_KEY, "
            "ANTHROPIC_API_KEY; potsearch never stores keys) and run again",
    "model": "the model or provider is unknown: check the model string (e.g. openai/gpt-4o-mini) and, for a "
             "proxy or self-hosted server, --api-base",
    "unreachable": "the endpoint cannot be reached: check --api-base (or api_base in the search config), the "
                   "server and the network",
    "rate_limit": "the provider rate-limits every call: lower --workers or wait and resume",
    "timeout": "no call answered within the timeout: raise --timeout or check the server",
    "server": "the provider failed every call with server errors: try again later",
    "bad_request": "the provider refused every request: check the model's parameters (max tokens, temperature, "
                   "grammar support)",
    "other": "every call failed: see the error",
}


def classify(exc: BaseException) -> str:
    """The kind of a failed call (table above), from litellm's class and the message."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    name = {c.__name__ for c in type(exc).__mro__}
    msg = str(exc)
    status = getattr(exc, "status_code", None)
    if name & {"AuthenticationError", "PermissionDeniedError"} or status in (401, 403) or _AUTH.search(msg):
        return "auth"
    if name & {"NotFoundError"} or status == 404 or _MODEL.search(msg):
        return "model"
    if "Timeout" in name:
        return "timeout"
    if "RateLimitError" in name or status == 429:
        return "rate_limit"
    if "APIConnectionError" in name or _UNREACHABLE.search(msg):
        return "unreachable"
    if name & {"InternalServerError", "ServiceUnavailableError", "BadGatewayError"} or (
            isinstance(status, int) and status >= 500):
        return "server"
    if name & {"BadRequestError", "UnprocessableEntityError", "ContextWindowExceededError"} or status == 400:
        return "bad_request"
    return "other"


class ModelUnavailable(InputError):
    """A stage's model cannot answer (``FailureWatch``): one line with the first error and advice (exit
    status 2 from the command line, like every refusal)."""


@dataclass
class FailureWatch:
    """Watches a stage's calls in the order they finish; ``check`` raises :class:`ModelUnavailable`
    when the model cannot answer (a fatal kind before any success, or ``window`` failures and no
    success). After the first success it never stops a stage: failures then are the provider's bad
    moments, counted and reported by the stage."""

    model: str
    window: int = 8
    calls: int = 0
    ok: int = 0
    first: tuple[str, str] | None = field(default=None)   # (kind, message) of the first failure

    def record(self, error: str | None, kind: str | None) -> None:
        self.calls += 1
        if error is None:
            self.ok += 1
        elif self.first is None:
            self.first = (kind or "other", error)

    def verdict(self) -> str | None:
        """The one line to stop with, or None to go on."""
        if self.ok or self.first is None:
            return None
        kind, err = self.first
        if kind in FATAL or self.calls >= self.window:
            n = f"the first {self.calls} calls" if self.calls > 1 else "the first call"
            return f"model {self.model}: {n} failed, first: {err} — {ADVICE.get(kind, ADVICE['other'])}"
        return None

    def check(self) -> None:
        line = self.verdict()
        if line:
            raise ModelUnavailable(line)
