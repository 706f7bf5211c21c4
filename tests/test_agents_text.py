"""Agents defined outside the package: kind text (YAML only) and kind python (the user's own class)."""
from __future__ import annotations

import sys
import textwrap

import numpy as np
import pytest

from potsearch.agents.registry import load_agent
from potsearch.core.errors import InputError

BOARD = """
name: board
kind: text
prompt: "You stand on square {state} of a 6x6 board. Name the square you move to next."
decoding: free
initial: [r0c0]
text:
  extract: regex
  pattern: '\\b(r[0-5]c[0-5])\\b'
  valid: 'r[0-5]c[0-5]'
  case: lower
"""


def _agent(tmp_path, text: str, name: str = "agent.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return load_agent(str(p))


def test_a_regex_agent_reads_states_and_escapes_everything_else(tmp_path):
    a = _agent(tmp_path, BOARD)
    assert a.parse("I move to R3C1.", "r0c0").key == "r3c1"
    assert a.parse("r0c0", "r0c0").is_self_loop("r0c0")
    assert a.parse("somewhere else", "r0c0").reason == "no state (regex)"
    assert a.parse("r9c9 please", "r0c0").kind == "escape"
    assert a.parse(None, "r0c0").kind == "escape"
    assert "r0c0" in a.messages("r0c0")[-1]["content"]
    assert a.config.protocol == "per_state" and a.grammar("free") is None


def test_json_and_choice_extraction_and_the_choice_grammar(tmp_path):
    j = _agent(tmp_path, """
        name: j
        kind: text
        prompt: "Move from {state}; answer JSON."
        initial: ['{"x": 1}']
        text: {extract: json, field: move.to, max_length: 20}
    """)
    assert j.parse('Sure: {"move": {"to": "B7"}}', "A").key == "B7"
    assert j.parse('{"move": {"to": ["x"]}}', "A").kind == "escape"
    assert j.parse("not json", "A").kind == "escape"
    c = _agent(tmp_path, """
        name: c
        kind: text
        prompt: "Pick a colour after {state}."
        initial: [red]
        text: {extract: choice, states: [red, green, 'blue "sky"', "ünï"], case: keep}
    """, "c.yaml")
    assert c.parse("green\n", "red").key == "green"
    assert c.parse("purple", "red").reason == "not in the state list"
    g = c.grammar("constrained")
    assert g.startswith("root ::= ") and '"blue \\"sky\\""' in g and "\\u00FC" in g


@pytest.mark.parametrize("body, msg", [
    ("text: {extract: regex, pattern: '(unclosed'}", "not a valid regular expression"),
    ("text: {extract: regex, pattern: 'no group'}", "exactly 1 capture group"),
    ("text: {extract: json}", "needs text.field"),
    ("text: {extract: choice}", "needs text.states"),
    ("text: {extrakt: line}", "did you mean 'extract'"),
    ("class: nosuchmodule.x:Y", "goes with kind: python"),
])
def test_bad_agent_files_are_one_line_naming_file_and_line(tmp_path, body, msg):
    with pytest.raises(InputError, match=msg) as e:
        _agent(tmp_path, f"name: bad\nkind: text\nprompt: 'x {{state}}'\ninitial: [a]\n{body}\n")
    assert "agent.yaml" in e.value.format() and "\n" not in e.value.format()


def test_initial_states_must_be_valid(tmp_path):
    with pytest.raises(InputError, match="initial state 'zz' is not valid"):
        _agent(tmp_path, BOARD.replace("initial: [r0c0]", "initial: [zz]")).initial_states(np.random.default_rng(0))


def test_a_python_agent_names_its_own_class(tmp_path, monkeypatch):
    (tmp_path / "myagents.py").write_text(textwrap.dedent("""
        from potsearch.agents.base import Outcome, chat_messages
        class Dice:
            def __init__(self, config):
                self.config, self.name = config, config.name
            def initial_states(self, rng):
                return [("1", "1", None)]
            def messages(self, state, context=None):
                return chat_messages(self.config, {"state": state})
            def parse(self, reply, source_key):
                r = (reply or "").strip()
                return Outcome(r, r, None) if r in "123456" and r else Outcome.escape("not a face")
            def grammar(self, mode):
                return None
            def features(self, text):
                return {"face": float(text)}
        class Broken(Dice):
            def __init__(self, config):
                raise RuntimeError("no dice")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    a = _agent(tmp_path, "name: dice\nkind: python\nclass: myagents:Dice\nprompt: 'roll after {state}'\ninitial: ['1']\n")
    assert a.parse("4", "1").key == "4" and a.features("4") == {"face": 4.0}
    for cls, msg in (("myagents:Broken", "failed to start: RuntimeError: no dice"),
                     ("myagents:Nope", "cannot load agent class"), ("nosuch.mod:X", "cannot load agent class"),
                     ("sys:version_info", "lacks initial_states")):
        with pytest.raises(InputError, match=msg):
            _agent(tmp_path, f"name: d\nkind: python\nclass: {cls}\nprompt: 'x'\ninitial: ['1']\n", "d.yaml")
    sys.modules.pop("myagents", None)
