"""The word agent (the paper's constrained word task, design.md §2).

A state is an upper-case word of the shipped list (``data/words_sum100.tsv``):
English words whose letters (A=1..Z=26) sum to 100. The prompt shows the
current word with its sum spelled out, ``WIZARDS(23+9+26+1+18+4+19=100)``.

Reading a reply (``parse``): the first non-empty line, stripped of quotes,
markdown emphasis, a trailing period and an optional spelled-out sum in
parentheses, must be one word of letters. Otherwise the reply is an escape
"no word" (prose, empty, digits...). A word is then checked in this order:
letter sum != 100 -> "wrong sum N"; not in the list -> "not in word list";
the source word itself -> self-loop; else a new state.
"""
from __future__ import annotations

import re

from potsearch.agents.base import ESCAPE_NO_WORD, ESCAPE_NOT_IN_LIST, Outcome, chat_messages
from potsearch.agents.config import AgentConfig
from potsearch.agents.data import letter_sum, letter_values, load_word_list

MAX_REPLY = 20000  # characters of a reply we look at
_WORD_LINE = re.compile(r"^([A-Za-z]+)\s*(\([^()]*\))?$")
_STRIP = " \t\"'`*_.!:;,"


def spelled(word: str) -> str:
    """``WIZARDS(23+9+26+1+18+4+19=100)``."""
    vals = letter_values(word)
    return f"{word.upper()}({'+'.join(map(str, vals))}={sum(vals)})"


def extract_word(reply: str) -> str | None:
    """The single word a reply consists of, upper case, or None (see module doc)."""
    if not isinstance(reply, str):
        return None
    text = reply[:MAX_REPLY]
    for line in text.splitlines():
        line = line.strip().strip(_STRIP)
        if not line:
            continue
        m = _WORD_LINE.match(line)
        if not m:
            return None
        w = m.group(1)
        if not w.isascii():
            return None
        return w.upper()
    return None


def word_features(word: str, zipf: float = 0.0) -> dict:
    """Features of one word: ``potsearch.law.features.word_features`` (the one definition, with the names
    evolve and the docs use), with the word list's Zipf frequency."""
    from potsearch.law.features import word_features as table

    return {k: float(v[0]) for k, v in table([word.upper()], zipf=[zipf]).items()}


FEATURES = tuple(word_features("A"))


class WordAgent:
    name = "word"

    def __init__(self, config: AgentConfig):
        assert config.kind == "word" and config.word is not None
        self.config = config
        self.target_sum = config.word.target_sum
        self.wordlist = load_word_list(config.word.word_list)
        self.words = self.wordlist.words
        self._index = self.wordlist.index()
        self._zipf = dict(zip(self.words, self.wordlist.zipf.tolist()))

    # -------------------------------------------------------------- states
    def initial_states(self, rng) -> list[tuple[str, str, dict | None]]:
        out: list[str] = []
        for w in self.config.initial:
            w = w.strip().upper()
            if w not in self._index:
                from potsearch.core.errors import InputError

                raise InputError(f"initial state {w!r} is not in the word list", self.config.source)
            out.append(w)
        if self.config.initial_random:
            k = min(self.config.initial_random, len(self.words))
            for i in rng.choice(len(self.words), size=k, replace=False):
                if self.words[int(i)] not in out:
                    out.append(self.words[int(i)])
        return [(w, w, None) for w in out]

    # -------------------------------------------------------------- prompt
    def messages(self, state: str, context: dict | None = None) -> list[dict]:
        word = state.strip().upper()
        values = {"state": word, "state_sum": spelled(word), "target_sum": str(self.target_sum)}
        return chat_messages(self.config, values)

    # -------------------------------------------------------------- reply
    def parse(self, reply: str, source_key: str) -> Outcome:
        try:
            w = extract_word(reply)
            if w is None:
                return Outcome.escape(ESCAPE_NO_WORD)
            s = letter_sum(w)
            if s != self.target_sum:
                return Outcome.escape(f"wrong sum {s}")
            if w not in self._index:
                return Outcome.escape(ESCAPE_NOT_IN_LIST)
            return Outcome(w, w, None, None)
        except Exception as exc:  # never raise: a bad reply is an escape
            return Outcome.escape(f"parse error: {type(exc).__name__}")

    def grammar(self, mode: str) -> str | None:
        from potsearch.agents.grammar import constrained

        if not constrained(mode):
            return None
        from potsearch.agents.grammar import word_grammar

        return word_grammar(self.words)

    def features(self, text: str) -> dict:
        w = text.strip().upper()
        return word_features(w, self._zipf.get(w, 0.0))
