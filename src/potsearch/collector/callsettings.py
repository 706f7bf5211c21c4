"""How a collect reaches its model and how fast and how dearly it may call it.

A run remembers its call settings in the collect config (``call``), so ``--resume`` calls the same model
the same way. Two groups:

* **reach** — what decides which model answers and what its replies look like: ``api_base``,
  ``temperature``, ``max_tokens_per_call`` and the model's ``prices`` entry (with ``provider``, which is a
  plan key). On ``--resume`` a value given again must equal the stored one: a different one is refused
  in one line (start a new run to change them — one run, one model).
* **pace** — ``timeout``, ``retries``, ``backoff``, ``rpm``, ``tpm``: remembered and used on resume
  when not given; a value given on resume replaces the stored one (a new rate limit of the provider,
  a slower server) and is stored.

Secrets never enter the store: keys are read by litellm from the environment at call time and no value
from the environment is stored here (``api_base`` is what the command line or the API gave).

Budgets: :func:`worst_call` is the most one call can cost (its prompt estimate plus the max completion
tokens, at the model's price) — the ``per_call`` of :class:`potsearch.llm.limits.SpendCap`.
"""
from __future__ import annotations

import json
from pathlib import Path

from potsearch.core.errors import InputError
from potsearch.llm.limits import check_prices

REACH = ("api_base", "temperature", "max_tokens_per_call", "prices")
PACE = ("timeout", "retries", "backoff", "rpm", "tpm")
PACE_DEFAULTS = {"timeout": 60.0, "retries": 4, "backoff": 0.5, "rpm": None, "tpm": None}


def load_prices(path: str | None) -> dict | None:
    """A ``--prices`` file (YAML or JSON): ``{MODEL: {input: $/Mtok, output: $/Mtok}}``, or the same
    table under a top-level ``prices:`` key; checked entry by entry."""
    if path is None:
        return None
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--prices: cannot read the file ({exc.strerror or exc})", str(p)) from None
    try:
        if p.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise InputError(f"--prices: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'} "
                         f"({type(exc).__name__})", str(p)) from None
    return check_prices(data, str(p))


def resolve_call(cfg, plan: dict, model: str | None, temperature, call_tokens, stored: dict, resuming: bool) -> dict:
    """The run's call settings: on resume the stored ones (reach: a different given value is refused;
    pace: a given value wins), else the given ones or the defaults. ``temperature`` / ``call_tokens``:
    the values this invocation would use (given or the agent's)."""
    table = load_prices(cfg.prices)
    _no_secret_in(cfg.api_base, cfg.run)
    given = {"api_base": cfg.api_base, "temperature": cfg.temperature, "max_tokens_per_call": cfg.max_tokens_per_call,
             "prices": ({model: table[model]} if table and model in table else None) if cfg.prices else None}
    fallback = {"api_base": None, "temperature": temperature, "max_tokens_per_call": call_tokens, "prices": None}
    call = {}
    for k in REACH:
        if resuming and k in stored:
            if given[k] is not None and given[k] != stored[k]:
                flag = "--" + k.replace("_", "-")
                raise InputError(f"this run calls its model with {flag} = {stored[k]!r}; --resume keeps it (drop "
                                 f"{flag} or pass the same value; a different one needs a new run)", cfg.run)
            call[k] = stored[k]
        else:
            call[k] = given[k] if given[k] is not None else fallback[k]
    for k in PACE:
        v = getattr(cfg, k)
        call[k] = v if v is not None else stored.get(k, PACE_DEFAULTS[k]) if resuming else PACE_DEFAULTS[k]
    if not call["timeout"] > 0:
        raise InputError(f"--timeout must be > 0, got {call['timeout']}")
    for k in ("rpm", "tpm"):
        if call[k] is not None and not call[k] > 0:
            raise InputError(f"--{k} must be > 0, got {call[k]}")
    if call["retries"] < 0 or call["backoff"] < 0:
        raise InputError("--retries and --backoff must be >= 0")
    if model is not None:
        from potsearch.llm.limits import check_priced

        check_priced(model, cfg.max_cost, call["prices"], cfg.allow_unpriced)
    return call


def _no_secret_in(api_base: str | None, where) -> None:
    """An endpoint is stored with the run: one with a user or password in it is refused (secrets come from
    the environment, as litellm reads them), never stored."""
    if not api_base:
        return
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(api_base)
    except ValueError:
        raise InputError(f"--api-base is not a URL: {api_base[:80]!r}", where) from None
    if parts.username or parts.password or "@" in parts.netloc:
        raise InputError("--api-base holds a user or password; the endpoint is stored with the run, so give the "
                         "credentials through the environment (e.g. OPENAI_API_KEY) instead", where)


def table_price(call: dict, model: str | None) -> tuple[float, float] | None:
    """(dollars per prompt token, per completion token) from the run's prices table, or None."""
    entry = (call.get("prices") or {}).get(model) if model else None
    return (entry["input"] / 1e6, entry["output"] / 1e6) if entry else None


def prompt_estimate(agent, states) -> int:
    """Prompt tokens of one call, over-estimated (3 characters a token) from the first states' prompts."""
    best = 0
    for s in list(states)[:8]:
        try:
            msgs = agent.messages(s[0] if isinstance(s, tuple) else s, None)
        except Exception:
            continue
        best = max(best, sum(len(str(m.get("content", ""))) for m in msgs if isinstance(m, dict)))
    return best // 3 + 16


def worst_call(model: str | None, call: dict, prompt_tokens: int) -> float:
    """The most one call can cost: its prompt estimate plus max tokens per call at the model's price
    (0 for the surrogate, the local model, or an unpriced model run with --allow-unpriced)."""
    if model is None:
        return 0.0
    from potsearch.llm.limits import price

    p = price(model, call.get("prices"))
    if p is None:
        return 0.0
    return prompt_tokens * p[0] + int(call["max_tokens_per_call"] or 0) * p[1]
