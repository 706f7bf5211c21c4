"""The agent interface: what a state is, how it is prompted and how a reply is read.

An agent turns a state into chat messages, and a model's reply back into an
``Outcome``: a new state (``key != source_key``), a self-loop
(``key == source_key``) or an escape (``target is None``, with a reason).
``parse`` never raises: every bad reply is an escape with its reason, so the
runner stores it as a sample like any other.

``potsearch.agents.registry.load_agent("word" | "fitter" | "path/to/agent.yaml")``
builds an agent from its YAML definition (``agents/*.yaml``); bad files raise ``InputError``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable


if TYPE_CHECKING:  # pragma: no cover
    from potsearch.agents.config import AgentConfig

#: The Agent protocol's version (docs/agents.md, "The interface"): raised on an incompatible change to
#: ``Outcome`` or ``Agent``. A class of your own may declare ``agent_protocol = 1``; another number is refused.
AGENT_PROTOCOL = 1

ESCAPE_NO_WORD = "no word"
ESCAPE_NOT_IN_LIST = "not in word list"


@dataclass
class Outcome:
    """One classified reply. ``target``/``key`` are None for an escape."""

    target: str | None  # new state's display text; None = escape
    key: str | None  # canonical key (same expression => same key); None for escape
    reason: str | None  # escape reason ("no word", "wrong sum 97", "parse error: ...")
    meta: dict | None = None  # e.g. {"score": ..., "params": [...]} for the fitter

    @property
    def kind(self) -> str:
        """'escape' or 'state' (a self-loop needs the source key: ``is_self_loop``)."""
        return "escape" if self.target is None else "state"

    def is_self_loop(self, source_key: str) -> bool:
        return self.key is not None and self.key == source_key

    @classmethod
    def escape(cls, reason: str) -> "Outcome":
        return cls(None, None, reason, None)


@runtime_checkable
class Agent(Protocol):
    name: str  # "word" | "fitter" | ...
    config: "AgentConfig"

    def initial_states(self, rng) -> list[tuple[str, str, dict | None]]:  # (text, key, meta)
        ...

    def messages(self, state: str, context: dict | None = None) -> list[dict]:
        ...

    def parse(self, reply: str, source_key: str) -> Outcome:
        ...

    def grammar(self, mode: str) -> str | None:
        ...

    def features(self, text: str) -> dict:
        ...


def fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders by plain substitution (no str.format: the
    values may contain braces and are never interpreted)."""
    out = template
    for k, v in values.items():
        out = out.replace("{" + k + "}", v)
    return out


def chat_messages(config, values: dict) -> list[dict]:
    """The agent's chat messages: its optional system prompt, then its prompt, both filled with ``values``."""
    msgs = []
    if config.system:
        msgs.append({"role": "system", "content": fill(config.system, values)})
    msgs.append({"role": "user", "content": fill(config.prompt, values)})
    return msgs
