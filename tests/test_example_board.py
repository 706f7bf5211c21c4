"""The shipped example examples/board/: its agent file loads (with its surrogate and features table), and the
commands its README runs are the documented ones (docs/own-agent.md) and parse as potsearch commands."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "board"


def commands(text: str) -> list[str]:
    """The potsearch commands in a Markdown text's code blocks (``$ `` prompts and comments dropped)."""
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ").split("  #", 1)[0].strip()
            if line.startswith("potsearch "):
                out.append(line)
    return out


def test_the_example_agent_file_loads_with_its_surrogate_and_features_table():
    from potsearch.agents.registry import load_agent
    from potsearch.agents.surrogate import make_surrogate
    from potsearch.store.features import read_features_file

    agent = load_agent(EXAMPLE / "agent.yaml")
    assert agent.config.kind == "text" and len(agent.states) == 36
    assert [t[1] for t in agent.initial_states(np.random.default_rng(0))][:3] == ["r0c0", "r5c5", "r2c3"]
    assert agent.parse("I move to R2C4.", "r2c3").key == "r2c4" and agent.parse("r9c9", "r2c3").key is None
    assert agent.grammar("constrained") and agent.grammar("free") is None
    sur = make_surrogate(agent)
    assert list(sur.features) == ["r", "c"] and sur.k == 4
    assert np.allclose(sur.V, [0.8 * int(s[1]) - 0.5 * int(s[3]) for s in sur.states])
    table = read_features_file(EXAMPLE / "board_features.csv")
    assert table.names == ["row", "col"] and sorted(table.states) == sorted(agent.states)
    assert table.descriptions["row"].startswith("the square's row")


def test_the_readme_runs_the_documented_commands():
    from potsearch.cli.app import build_parser

    readme = commands((EXAMPLE / "README.md").read_text())
    documented = commands((ROOT / "docs" / "own-agent.md").read_text().split("## The example", 1)[1])
    assert documented and readme[:len(documented)] == documented
    assert any("--provider surrogate" in c for c in readme) and any("--provider local" in c for c in readme)
    parser = build_parser(load_all=True)
    for line in readme:
        argv = shlex.split(line)[1:]
        ns = parser.parse_args(argv)      # an unknown command or option exits with status 2
        assert ns.command == argv[0]
        for arg in argv:                  # every file the commands name is shipped
            if arg.endswith((".yaml", ".csv")):
                assert (ROOT / arg).exists(), arg
