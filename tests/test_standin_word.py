"""The stand-in server's word mode (a TEST INSTRUMENT): answers the word agent's prompt like an agent with
a known potential, so the paid-model path can be rehearsed offline."""
from __future__ import annotations

import math
import random
import subprocess
import sys

from potsearch.agents.registry import load_agent
from potsearch.testing.standin_server import WordMode


def test_word_mode_answers_the_word_agents_prompt_with_list_words_in_detailed_balance():
    agent, mode, rng = load_agent("word"), WordMode(0), random.Random(1)
    i = 200
    a, b = mode.words[i], mode.words[i + 1]
    counts = {}
    for src in (a, b):
        msgs = agent.messages(src)
        for _ in range(20000):
            r = mode.reply(msgs, rng)
            out = agent.parse(r, src)
            counts[(src, out.key)] = counts.get((src, out.key), 0) + 1
            assert out.key is None or out.key in mode.index        # a word of the list, or an escape
    ratio = counts[(a, b)] / counts[(b, a)]
    expected = math.exp(mode.potential(a) - mode.potential(b))
    assert abs(math.log(ratio / expected)) < 0.15, (ratio, expected)


def test_word_mode_escapes_a_prompt_without_a_word():
    assert "not sure" in WordMode(0).reply([{"role": "user", "content": "hello"}], random.Random(0))


def test_the_documented_command_prints_its_endpoint_and_exits_at_its_lifetime():
    out = subprocess.run([sys.executable, "-m", "potsearch.testing.standin_server", "--lifetime", "1"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "TEST INSTRUMENT" in out.stdout and "http://127.0.0.1:" in out.stdout
