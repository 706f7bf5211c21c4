"""Shared by the collect tests that play a paid API with the stand-in server (a test instrument): the API
key they set, a collect against it, and what the run stored."""
from __future__ import annotations

from pathlib import Path

import pytest

KEY = "sk-potsearch-test-secret-5f0c2e9a"


@pytest.fixture
def env(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("POTSEARCH_TEST_PAUSE_AFTER_WRITE", raising=False)


def collect_standin(run, api_base, *extra):
    from potsearch.cli import main

    return main(["collect", "--agent", "word", "--provider", "openai/standin", "--mode", "free", "--run", str(run),
                 *(["--api-base", api_base] if api_base else []), "--no-progress", *extra])


def samples_cost(run) -> tuple[int, float, float]:
    """(samples, total cost, most one sample cost) as stored."""
    from potsearch.store import RunStore

    with RunStore.open(Path(run)) as s:
        costs = [float(x) for x in s.samples_frame()["cost"].fillna(0.0)]
    return len(costs), sum(costs), max(costs, default=0.0)
