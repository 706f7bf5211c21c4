"""Configs read exponent floats without a dot (``1e-3``) as numbers; PyYAML's global loader is untouched."""
import yaml

from potsearch.agents.config import load_config as load_agent_config
from potsearch.search.config import parse_config
from potsearch.core.yamlio import SafeLoader


def test_exponent_floats_are_numbers():
    d = yaml.load("a: 1e-3\nb: 1E6\nc: -2.5e+2\nd: 7\ne: '1e-3'\nf: 1.5\ng: .inf\n", Loader=SafeLoader)
    assert d == {"a": 1e-3, "b": 1e6, "c": -250.0, "d": 7, "e": "1e-3", "f": 1.5, "g": float("inf")}
    assert isinstance(d["d"], int) and isinstance(d["e"], str)
    assert yaml.safe_load("a: 1e-3") == {"a": "1e-3"}      # the global SafeLoader keeps YAML 1.1


def test_search_config_accepts_1e_notation():
    cfg = parse_config("fit:\n  tol: 1e-9\nllm:\n  max_cost: 5e-1\n")
    assert cfg.fit.tol == 1e-9 and cfg.llm.max_cost == 0.5


def test_agent_config_accepts_1e_notation(word_yaml):
    assert load_agent_config(word_yaml(("locality: 0.2", "locality: 2e-1"))).surrogate.locality == 0.2
