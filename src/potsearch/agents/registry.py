"""The agent registry: agent kind -> class, and ``load_agent("word"|"fitter"|path.yaml)``.

The agents (word, fitter) import ``base``; only this module imports the agents, so there is no cycle.
"""
from __future__ import annotations

from pathlib import Path

from potsearch.core.errors import InputError
from potsearch.agents.base import Agent
from potsearch.agents.config import load_config
from potsearch.agents.fitter import FitterAgent
from potsearch.agents.word import WordAgent

#: agent kind (an agent YAML's ``kind``) -> its class
AGENTS = {"word": WordAgent, "fitter": FitterAgent}


def builtin_agent_path(name: str) -> Path:
    """``agents/<name>.yaml`` (the source tree's, or the installed copy: potsearch.core.resources)."""
    from potsearch.core.resources import shipped_dir

    return shipped_dir("agents") / f"{name}.yaml"


def load_agent(spec: str) -> Agent:
    """Build an agent from "word", "fitter" or a path to an agent YAML file."""
    spec = str(spec)
    if spec in AGENTS:
        path = builtin_agent_path(spec)
    else:
        path = Path(spec)
        if not path.suffix and not path.exists():
            raise InputError(f"unknown agent {spec!r} (use word, fitter or a path to an agent .yaml)", spec)
    config = load_config(path)
    cls = AGENTS.get(config.kind)
    if cls is None:  # pragma: no cover (the config loader validates the kind)
        raise InputError(f"unknown agent kind {config.kind!r}", str(path))
    return cls(config)
