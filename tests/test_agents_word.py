"""Word agent: prompt, word list, reply classification, config errors."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from potsearch.agents.base import Outcome
from potsearch.agents.registry import load_agent
from potsearch.agents.config import load_config
from potsearch.agents.data import WORD_LIST_FILE, build_word_list, data_dir, letter_sum, load_word_list
from potsearch.agents.word import extract_word, spelled
from potsearch.core.errors import InputError

PAPER_WORDS = ["ATTITUDE", "TURKEY", "PERSONAL", "PROBLEMS", "BUZZY", "WIZARDS", "EXCELLENT"]


@pytest.fixture(scope="module")
def agent():
    return load_agent("word")


def test_spelled_sum_matches_paper():
    assert spelled("WIZARDS") == "WIZARDS(23+9+26+1+18+4+19=100)"
    assert spelled("buzzy") == "BUZZY(2+21+26+26+25=100)"


def test_prompt_shows_word_with_sum(agent):
    msgs = agent.messages("WIZARDS")
    assert msgs[-1]["role"] == "user"
    assert "WIZARDS(23+9+26+1+18+4+19=100)" in msgs[-1]["content"]
    assert all(set(m) == {"role", "content"} for m in msgs)
    # placeholders are substituted, braces in values are not interpreted
    assert "{" not in msgs[-1]["content"]


def test_shipped_word_list():
    wl = load_word_list()
    assert wl.provenance.startswith("words whose letters sum to 100")
    assert "wordfreq" in wl.provenance and "english-words" in wl.provenance
    assert len(wl.words) == len(set(wl.words)) > 500
    assert list(wl.words) == sorted(wl.words)
    assert all(letter_sum(w) == 100 and w.isalpha() and w.isupper() for w in wl.words)
    for w in PAPER_WORDS:
        assert w in wl.words, w
    assert np.all(wl.zipf >= 1.5)


@pytest.mark.skipif(
    importlib.util.find_spec("wordfreq") is None or importlib.util.find_spec("english_words") is None,
    reason="wordfreq / english-words not installed: cannot rebuild the word list",
)
def test_word_list_rebuilds_identically():
    rows, prov = build_word_list()
    shipped = (data_dir() / WORD_LIST_FILE).read_text(encoding="utf-8").splitlines()
    assert shipped[0] == f"# provenance: {prov}"
    assert shipped[2:] == [f"{w}\t{z:.2f}" for w, z in rows]


@pytest.mark.parametrize(
    "reply,expected",
    [
        ("BUZZY", "BUZZY"),
        ("buzzy.", "BUZZY"),
        ("**TURKEY**", "TURKEY"),
        ("  'Turkey'  ", "TURKEY"),
        ("TURKEY(20+21+18+11+5+25=100)", "TURKEY"),
        ("\n\nPROBLEMS\nbecause it sums to 100", "PROBLEMS"),
        ("Sure! The word is TURKEY", None),
        ("", None),
        ("   \n  ", None),
        ("12345", None),
        ("WORD-LIST", None),
        ("CAFÉ", None),
    ],
)
def test_extract_word(reply, expected):
    assert extract_word(reply) == expected


def test_classification(agent):
    src = "WIZARDS"
    new = agent.parse("BUZZY", src)
    assert new == Outcome("BUZZY", "BUZZY", None, None) and new.key != src
    self_loop = agent.parse("wizards", src)
    assert self_loop.key == src and self_loop.target == "WIZARDS" and self_loop.is_self_loop(src)
    assert agent.parse("HELLO", src).reason == "wrong sum 52"
    assert agent.parse("HELLO", src).target is None
    # letters summing to 100 but not an English word of the list
    assert letter_sum("ZZZV") == 100
    out = agent.parse("ZZZV", src)
    assert out.target is None and out.key is None and out.reason == "not in word list"
    prose = agent.parse("I think a good word would be TURKEY because...", src)
    assert prose.target is None and prose.reason == "no word"


@pytest.mark.parametrize("reply", [None, 12, "\x00" * 10, "A" * 10**6, "🙂🙂", "(" * 5000, "\udcff"])
def test_parse_never_raises(agent, reply):
    out = agent.parse(reply, "WIZARDS")
    assert out.target is None and out.reason


def test_initial_states_and_features(agent):
    rng = np.random.default_rng(0)
    assert agent.initial_states(rng) == [("WIZARDS", "WIZARDS", None)]
    f = agent.features("BUZZY")
    assert f["length"] == 5 and f["vowels"] == 1 and f["repeats"] == 1 and f["zipf"] > 2
    assert agent.grammar("free") is None
    g = agent.grammar("constrained")
    assert g.startswith("root ::= ") and g.count("\n") == 1
    assert len(g) < 2 * sum(len(w) for w in agent.words)  # a trie, not a flat list


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "agent.yaml"
    p.write_text(text, encoding="utf-8")
    return p


GOOD = f"""name: w
kind: word
prompt: "{{state_sum}}"
initial: [BUZZY]
word:
  word_list: {(data_dir() / WORD_LIST_FILE).as_posix()}
"""


def test_config_minimal_ok(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD))
    assert cfg.kind == "word" and cfg.decoding == "constrained" and cfg.sampling.temperature == 1.0
    assert cfg.to_dict()["word"]["target_sum"] == 100
    import json

    for spec in ("word", "fitter"):
        d = json.loads(json.dumps(load_agent(spec).config.to_dict()))  # run metadata is plain JSON
        assert d["kind"] == spec and d["surrogate"]["hidden_potential"]
    with pytest.raises(Exception):
        cfg.name = "x"  # frozen


@pytest.mark.parametrize(
    "text,msg,line",
    [
        (GOOD + "colour: red\n", "unknown key 'colour'", 7),
        (GOOD + "sampling:\n  temperature: hot\n", "sampling.temperature: expected a number, got 'hot'", 8),
        (GOOD + "sampling:\n  temprature: 1\n", "unknown key 'sampling.temprature'", 8),
        (GOOD + "decoding: greedy\n", "decoding must be one of free, constrained, got 'greedy'", 7),
        (GOOD + "surrogate:\n  neighbours: 5\n", "neighbours must be even", 8),
        (GOOD.replace("kind: word", "kind: poem"), "kind must be one of word, fitter, text, python, got 'poem'", 2),
        (GOOD.replace(data_dir().as_posix() + "/", "nowhere/"), "no such file", 6),
        (GOOD + "name: again\n", "duplicate key 'name'", 7),
        ("name: [unclosed\n", "not valid YAML", None),
        ("- a\n- b\n", "expected a mapping", None),
    ],
)
def test_config_errors_name_file_and_line(tmp_path, text, msg, line):
    p = _write(tmp_path, text)
    with pytest.raises(InputError) as ei:
        load_config(p)
    assert msg in ei.value.message
    assert ei.value.where == str(p)
    if line is not None:
        assert ei.value.line == line
    assert "\n" not in ei.value.message


def test_load_agent_errors(tmp_path):
    with pytest.raises(InputError, match="unknown agent"):
        load_agent("poem")
    with pytest.raises(InputError, match="cannot read"):
        load_agent(str(tmp_path / "missing.yaml"))
    p = _write(tmp_path, GOOD.replace("[BUZZY]", "[HELLO]"))
    with pytest.raises(InputError, match="not in the word list"):
        load_agent(str(p)).initial_states(np.random.default_rng(0))
