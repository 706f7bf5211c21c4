"""The surrogate for your own agent (agents/statesurrogate.py): neighbour rules, detailed balance, bad input."""
from __future__ import annotations

import itertools
import json
import sys
import textwrap

import numpy as np
import pytest

from potsearch.agents.registry import load_agent
from potsearch.agents.statesurrogate import (
    StateSurrogate,
    edit_neighbours,
    exact_transition_matrix,
)
from potsearch.agents.surrogate import make_surrogate
from potsearch.core.errors import InputError

BOARD = [f"r{r}c{c}" for r in range(4) for c in range(3)]


def agent_file(tmp_path, surrogate: str, states=BOARD, extra: str = "", name="a.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(f"""\
        name: t
        kind: text
        prompt: "from {{state}}"
        initial: [{json.dumps(states[0])}]
        text:
          states: {json.dumps(states)}
        {extra}
        surrogate:
        """) + textwrap.indent(textwrap.dedent(surrogate), "  "))
    return p


def levenshtein(a: str, b: str) -> int:
    d = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, d[0] = d[0], i
        for j, cb in enumerate(b, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (ca != cb))
    return d[-1]


def test_step_rule_on_a_board_and_exact_detailed_balance(tmp_path):
    sur = make_surrogate(load_agent(agent_file(tmp_path, 'hidden_potential: "0.8*r - 0.5*c"\n')))
    assert isinstance(sur, StateSurrogate) and list(sur.features) == ["r", "c"] and sur.k == 4
    nb = {BOARD[i]: {BOARD[j] for j in row if j >= 0} for i, row in enumerate(sur.nb)}
    assert nb["r0c0"] == {"r1c0", "r0c1"} and nb["r1c1"] == {"r0c1", "r2c1", "r1c0", "r1c2"}
    T = exact_transition_matrix(sur)
    assert np.allclose(T.sum(1), 1.0)
    V = np.array([0.8 * int(s[1]) - 0.5 * int(s[3]) for s in BOARD])
    assert np.allclose(sur.V, V)
    for i, j in itertools.product(range(len(BOARD)), repeat=2):
        if i != j and T[i, j] > 0:
            assert T[j, i] > 0 and np.isclose(np.log(T[i, j] / T[j, i]), V[i] - V[j])
    # the sampler follows T
    rng = np.random.default_rng(0)
    outs = sur.step_batch(["r1c1"] * 40000, rng)
    freq = {s: sum(o.key == s for o in outs) / 40000 for s in BOARD}
    i = BOARD.index("r1c1")
    for j, s in enumerate(BOARD):
        assert abs(freq[s] - T[i, j]) < 0.01, s
    meta = sur.metadata()
    assert meta["surrogate"] and meta["hidden_potential"] == "0.8*r - 0.5*c" and meta["features"] == ["r", "c"]


def test_edit_rule_is_one_edit_apart():
    rng = np.random.default_rng(1)
    states = sorted({"".join(rng.choice(list("ab"), size=rng.integers(1, 5))) for _ in range(80)})
    nb = edit_neighbours(states)
    for i, a in enumerate(states):
        assert nb[i] == {j for j, b in enumerate(states) if j != i and levenshtein(a, b) == 1}, a


def test_moves_rule_from_a_csv_and_a_features_table(tmp_path):
    items = [f"item-{i}" for i in range(12)]
    moves = tmp_path / "moves.csv"
    moves.write_text("source,target\n" + "".join(f"item-{i},item-{i + 1}\nitem-{i},item-{i}\n" for i in range(11))
                     + "item-3,\n")
    feats = tmp_path / "items.csv"
    feats.write_text("state,n\n" + "".join(f"item-{i},{i}\n" for i in range(12)))
    p = agent_file(tmp_path, 'hidden_potential: "0.15*n"\nproposal: moves\nmoves_from: moves.csv\nfeatures: items.csv\n',
                   states=items)
    sur = make_surrogate(load_agent(p))
    assert list(sur.features) == ["n"] and sur.k == 2 and sur.metadata()["feature_library"]["library"] == "table"
    assert {items[j] for j in sur.nb[items.index("item-5")]} == {"item-4", "item-6"}
    assert np.allclose(sur.V, 0.15 * np.arange(12))
    # a table without a row for a state: one line naming it
    feats.write_text("state,n\n" + "".join(f"item-{i},{i}\n" for i in range(11)))
    with pytest.raises(InputError, match="1 of the surrogate's 12 states have no row in the features table items.csv: "
                                         "'item-11'"):
        make_surrogate(load_agent(p))


def test_moves_from_a_run_directory_and_states_from_the_moves(tmp_path):
    from potsearch.store import RunStore

    run = tmp_path / "r"
    names = ["a1", "a2", "a3", "a4"]
    with RunStore.create(run) as st:
        st.add_import("d", names, np.array([0, 1, 2, 3, 0]), np.array([1, 2, 3, 3, -1]), np.array([5, 5, 5, 5, 1]))
    p = tmp_path / "m.yaml"
    p.write_text(f'name: m\nkind: text\nprompt: "{{state}}"\ninitial: [a1]\nsurrogate:\n  hidden_potential: "a"\n'
                 f'  proposal: moves\n  moves_from: {run}\n')
    sur = make_surrogate(load_agent(p))
    assert sur.states == names and sur.k == 2
    assert {names[j] for j in sur.nb[1] if j >= 0} == {"a1", "a3"}


@pytest.mark.parametrize("surrogate, says", [
    ('hidden_potential: "0.8*row"\n', "unknown feature 'row' (features: r, c)"),
    ('hidden_potential: "__import__(1)"\n', "is not allowed in a formula"),
    ('hidden_potential: "r/0"\n', "is not finite on 'r0c0'"),
    ('hidden_potential: "r"\nproposal: moves\n', "proposal: moves needs surrogate.moves_from"),
    ('hidden_potential: "r"\nstep_features: [z]\n', "step_features: unknown feature 'z'"),
    ('hidden_potential: "r"\nstep: 7\n', "no two states are neighbours"),
])
def test_bad_surrogate_one_line(tmp_path, surrogate, says):
    with pytest.raises(InputError, match=None) as exc:
        make_surrogate(load_agent(agent_file(tmp_path, surrogate)))
    assert says in str(exc.value) and "\n" not in str(exc.value)


def test_bad_surrogate_keys_refused_when_the_file_loads(tmp_path):
    for surrogate, says in (('proposal: nearby\n', "must be one of step, edit, moves"),
                            ('moves_from: nowhere.csv\n', "nowhere.csv"), ('step: 0\n', "step")):
        with pytest.raises(InputError) as exc:
            load_agent(agent_file(tmp_path, 'hidden_potential: "r"\n' + surrogate))
        assert says in str(exc.value)


def test_a_text_agent_without_a_state_list_is_told_what_to_give(tmp_path):
    p = tmp_path / "free.yaml"
    p.write_text('name: f\nkind: text\nprompt: "{state}"\ninitial: [x1]\nsurrogate:\n  hidden_potential: "num0"\n')
    with pytest.raises(InputError, match="text.states or text.states_file; or surrogate.moves_from"):
        make_surrogate(load_agent(p))


def test_a_python_agent_with_states_gets_the_surrogate(tmp_path, monkeypatch):
    (tmp_path / "gridagent.py").write_text(textwrap.dedent("""
        from potsearch.agents.base import Outcome, chat_messages
        class Grid:
            states = tuple(f"x{i}" for i in range(10))
            def __init__(self, config):
                self.config, self.name = config, config.name
            def initial_states(self, rng):
                return [("x0", "x0", None), ("elsewhere", "elsewhere", None)]
            def messages(self, state, context=None):
                return chat_messages(self.config, {"state": state})
            def parse(self, reply, source_key):
                r = (reply or "").strip()
                return Outcome(r, r, None) if r in self.states else Outcome.escape("no")
            def grammar(self, mode):
                return None
            def features(self, text):
                return {}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    p = tmp_path / "g.yaml"
    p.write_text('name: g\nkind: python\nclass: gridagent:Grid\nprompt: "{state}"\ninitial: [x0]\n'
                 'surrogate:\n  hidden_potential: "-0.3*x"\n')
    sur = make_surrogate(load_agent(p))
    assert sur.k == 2 and [t[1] for t in sur.initial_states(np.random.default_rng(0))] == ["x0"]
    assert sur.step_batch(["nowhere"], np.random.default_rng(0))[0].reason == "surrogate: unknown source state"
    sys.modules.pop("gridagent", None)


def test_a_class_for_another_agent_protocol_is_refused(tmp_path, monkeypatch):
    from potsearch.agents.base import AGENT_PROTOCOL

    (tmp_path / "futureagent.py").write_text(textwrap.dedent("""
        class Future:
            agent_protocol = 99
            def __init__(self, config): self.config, self.name = config, config.name
            def initial_states(self, rng): return []
            def messages(self, state, context=None): return []
            def parse(self, reply, source_key): return None
            def grammar(self, mode): return None
            def features(self, text): return {}
        class Current(Future):
            agent_protocol = 1
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    p = tmp_path / "f.yaml"
    p.write_text('name: f\nkind: python\nclass: futureagent:Future\nprompt: "{state}"\ninitial: [x0]\n')
    with pytest.raises(InputError, match=f"written for Agent protocol 99; this potsearch has protocol {AGENT_PROTOCOL}"):
        load_agent(p)
    p.write_text('name: f\nkind: python\nclass: futureagent:Current\nprompt: "{state}"\ninitial: [x0]\n')
    assert AGENT_PROTOCOL == 1 and load_agent(p).name == "f"
    sys.modules.pop("futureagent", None)
