"""The agent registry: agent kind -> class, and ``load_agent("word"|"fitter"|NAME|path.yaml)``.

Built in: ``word`` and ``fitter`` (the paper's tasks) and ``text`` (a task described in YAML). An agent
file of ``kind: python`` names a class of the user's own code (``class: mypkg.agents:MyAgent``); an
installed package can also offer an agent under a name through the ``potsearch.agents`` entry-point
group (the entry point is an agent YAML path or a class with a ``default_config()``). That code is the
user's, trusted like any package they install: it runs in our process. Model-written code never does.

The agents import ``base``; only this module imports the agents, so there is no cycle.
"""
from __future__ import annotations

from pathlib import Path

from potsearch.core.errors import InputError
from potsearch.agents.base import AGENT_PROTOCOL, Agent
from potsearch.agents.config import load_config
from potsearch.agents.fitter import FitterAgent
from potsearch.agents.text import TextAgent
from potsearch.agents.word import WordAgent

#: agent kind (an agent YAML's ``kind``) -> its class (``python``: the file names the class)
AGENTS = {"word": WordAgent, "fitter": FitterAgent, "text": TextAgent}
AGENT_METHODS = ("initial_states", "messages", "parse", "grammar", "features")


def builtin_agent_path(name: str) -> Path:
    """``agents/<name>.yaml`` (the source tree's, or the installed copy: potsearch.core.resources)."""
    from potsearch.core.resources import shipped_dir

    return shipped_dir("agents") / f"{name}.yaml"


def user_class(spec: str, where: str):
    """The class ``module:Class`` names (the user's own code), or one line saying why not."""
    from potsearch.agents.usercode import load_object

    mod, _, name = spec.partition(":")
    if not mod or not name:
        raise InputError(f"class: expected module:Class, got {spec!r}", where)
    obj = load_object(spec, f"agent class {spec!r}", where)
    check_protocol(obj, spec, where)
    missing = [m for m in AGENT_METHODS if not callable(getattr(obj, m, None))]
    if missing:
        raise InputError(f"agent class {spec!r} lacks {', '.join(missing)} (the Agent protocol, docs/agents.md)",
                         where)
    return obj


def check_protocol(cls, spec: str, where: str) -> None:
    """Refuse a class that declares another Agent protocol version (``agent_protocol``) than ours."""
    declared = getattr(cls, "agent_protocol", AGENT_PROTOCOL)
    if declared != AGENT_PROTOCOL:
        raise InputError(f"agent class {spec!r} is written for Agent protocol {declared!r}; this potsearch has "
                         f"protocol {AGENT_PROTOCOL} (docs/agents.md)", where)


def _entry_point(spec: str):
    from importlib.metadata import entry_points

    for ep in entry_points(group="potsearch.agents"):
        if ep.name == spec:
            return ep
    return None


def load_agent(spec: str) -> Agent:
    """Build an agent from "word", "fitter", an installed agent's name (entry point group
    ``potsearch.agents``) or a path to an agent YAML file."""
    spec = str(spec)
    if spec in ("word", "fitter"):
        path = builtin_agent_path(spec)
    else:
        path = Path(spec)
        if not path.suffix and not path.exists():
            ep = _entry_point(spec)
            if ep is None:
                raise InputError(f"unknown agent {spec!r} (use word, fitter, an installed agent's name or a path "
                                 "to an agent .yaml)", spec)
            target = ep.load() if ":" in ep.value else ep.value
            if isinstance(target, (str, Path)):
                path = Path(target)
            else:
                check_protocol(target, spec, spec)
                return _construct(target, target.default_config(), spec)
    config = load_config(path)
    if config.kind == "python":
        return _construct(user_class(config.agent_class, str(path)), config, str(path))
    return AGENTS[config.kind](config)


def _construct(cls, config, where: str) -> Agent:
    try:
        agent = cls(config)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"agent class {getattr(cls, '__name__', cls)!r} failed to start: {type(exc).__name__}: "
                         f"{exc}", where) from None
    if not getattr(agent, "name", None):
        agent.name = config.name
    return agent
