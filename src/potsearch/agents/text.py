"""A task described in YAML (``kind: text``): states are text, and the agent file says how a reply
becomes a state and which states are valid — no Python needed.

Reading a reply (``parse``, never raises; every failure is an escape with its reason):

* ``extract: line``   the first non-empty line, stripped of quotes, emphasis and end punctuation;
* ``extract: regex``  the first match of ``pattern`` in the reply, its capture group;
* ``extract: json``   ``field`` (dotted) of the reply's JSON object (the reply, or its first {...});
* ``extract: choice`` the first line, which must be one of ``states`` (the case rule applies).

Then the case rule (``case: keep|upper|lower``; with upper or lower, ``pattern`` ignores case), the
length bounds, ``valid`` (a regular expression the
whole state must match) and, when given, the state list. ``pattern`` and ``valid`` are the user's own
expressions, compiled when the file is loaded (a bad one is one line naming the file and key); model
replies are cut at ``MAX_REPLY`` characters before any expression sees them.

Constrained decoding needs a finite state list: the grammar then allows exactly those states.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from potsearch.agents.base import Outcome, chat_messages
from potsearch.agents.config import AgentConfig, TextOptions

MAX_REPLY = 20000
_STRIP = " \t\"'`*_.!:;,"


def _cased(s: str, case: str) -> str:
    return s.upper() if case == "upper" else s.lower() if case == "lower" else s


def _first_line(reply: str) -> str | None:
    for line in reply.splitlines():
        line = line.strip().strip(_STRIP)
        if line:
            return line
    return None


def _json_field(reply: str, field: str):
    text = reply.strip()
    if text.startswith("```"):
        text = text.strip("`").split("\n", 1)[-1]
    try:
        obj = json.loads(text)
    except ValueError:
        a, b = text.find("{"), text.rfind("}")
        if a < 0 or b <= a:
            return None
        try:
            obj = json.loads(text[a:b + 1])
        except ValueError:
            return None
    for part in field.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    if isinstance(obj, bool) or not isinstance(obj, (str, int, float)):
        return None
    return str(obj)


class TextAgent:
    """An agent whose states are text, described by its YAML file (module doc)."""

    def __init__(self, config: AgentConfig):
        self.config = config
        self.name = config.name
        self.opts = config.text or TextOptions()
        o = self.opts
        # with a case rule, the reply's case does not matter to the pattern (the state is cased after)
        self._pattern = (re.compile(o.pattern, re.IGNORECASE if o.case != "keep" else 0)
                         if o.extract == "regex" else None)
        self._valid = re.compile(o.valid) if o.valid else None
        states = list(o.states)
        if o.states_file:
            states += [s.strip() for s in Path(o.states_file).read_text(encoding="utf-8").splitlines()
                       if s.strip() and not s.startswith("#")]
        self.states = tuple(dict.fromkeys(_cased(s, o.case) for s in states))
        self._index = frozenset(self.states)
        if self.states:
            from potsearch.core.errors import InputError

            bad = next(((s, r) for s in self.states if (r := self._check(s, listed=False))), None)
            if bad:
                raise InputError(f"text.states: {bad[0]!r} is not a valid state ({bad[1]})", config.source)

    # -------------------------------------------------------------- states
    def _check(self, state: str, listed: bool = True) -> str | None:
        o = self.opts
        if len(state) < o.min_length:
            return f"shorter than {o.min_length} characters"
        if len(state) > o.max_length:
            return f"longer than {o.max_length} characters"
        if self._valid is not None and not self._valid.fullmatch(state):
            return "does not match text.valid"
        if listed and self._index and state not in self._index:
            return "not in the state list"
        return None

    def valid_reason(self, state: str) -> str | None:
        """Why ``state`` is not a valid state of this agent, or None (also used by `import --agent`)."""
        return self._check(_cased(str(state).strip(), self.opts.case))

    def is_valid(self, state: str) -> bool:
        return self.valid_reason(state) is None

    def initial_states(self, rng) -> list[tuple[str, str, dict | None]]:
        from potsearch.core.errors import InputError

        out: list[str] = []
        for s in self.config.initial:
            s = _cased(s.strip(), self.opts.case)
            why = self._check(s)
            if why:
                raise InputError(f"initial state {s!r} is not valid: {why}", self.config.source)
            out.append(s)
        if self.config.initial_random:
            if not self.states:
                raise InputError("initial_random needs a state list (text.states or text.states_file)",
                                 self.config.source)
            k = min(self.config.initial_random, len(self.states))
            for i in rng.choice(len(self.states), size=k, replace=False):
                if self.states[int(i)] not in out:
                    out.append(self.states[int(i)])
        return [(s, s, None) for s in out]

    # -------------------------------------------------------------- prompt and reply
    def messages(self, state: str, context: dict | None = None) -> list[dict]:
        return chat_messages(self.config, {"state": state})

    def parse(self, reply: str, source_key: str) -> Outcome:
        try:
            if not isinstance(reply, str):
                return Outcome.escape("no reply")
            text, o = reply[:MAX_REPLY], self.opts
            if o.extract == "regex":
                m = self._pattern.search(text)
                state = m.group(1).strip() if m and m.group(1) is not None else None
            elif o.extract == "json":
                state = _json_field(text, o.field)
            else:
                state = _first_line(text)
            if state is None:
                return Outcome.escape(f"no state ({o.extract})")
            state = _cased(state, o.case)
            why = self._check(state)
            if why:
                return Outcome.escape(why)
            return Outcome(state, state, None, None)
        except Exception as exc:  # never raise: a bad reply is an escape
            return Outcome.escape(f"parse error: {type(exc).__name__}")

    def grammar(self, mode: str) -> str | None:
        from potsearch.agents.grammar import constrained

        if not constrained(mode):
            return None
        if not self.states:
            return None
        from potsearch.agents.grammar import choice_grammar

        return choice_grammar(self.states)

    def features(self, text: str) -> dict:
        return {}
