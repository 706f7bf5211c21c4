"""The collect stage: run an agent through a model (or the surrogate) and store every transition.

``run(run_dir, CollectOptions(...)) -> CollectResult``. The collector (``potsearch.collector``: protocols,
Ray workers, the driver) does the sampling; this module checks an ``address`` answers before a run
directory exists, holds the run's writer lock, and removes what a failed start created when the run holds
no sample (``store.runstart.discard_if_empty``), so the corrected command works as a first start.
"""
from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

from potsearch.collector.config import CollectOptions, CollectResult

__all__ = ["CollectOptions", "CollectResult", "run"]   # the stage's options are the collector's (one definition)


def run(run_dir, options: CollectOptions = CollectOptions()) -> CollectResult:
    """Collect (or, with ``options.resume``, continue collecting) into the run at ``run_dir``."""
    from potsearch.collector import CollectConfig, collect
    from potsearch.core.raycluster import probe
    from potsearch.store import run_lock
    from potsearch.store.runstart import discard_if_empty

    same = {f.name: getattr(options, f.name) for f in fields(options) if f.name != "workers"}
    cfg = CollectConfig(run=str(run_dir), workers=options.workers or os.cpu_count() or 2, **same)
    if options.address:  # a wrong address fails here, before a run directory exists
        probe(options.address, options.ray_timeout)
    with discard_if_empty(run_dir), run_lock(Path(run_dir), "collect"):
        res = collect(cfg, after_write=_test_pause())
        _agent_features(run_dir, cfg)
        return res


def _agent_features(run_dir, cfg) -> None:
    """The agent file's features function (``features: module:function``, the user's code), run on every
    state of the run and stored as its features table; the function is named by the agent file the user
    gave, never read from the store."""
    from potsearch.agents.registry import load_agent
    from potsearch.store import RunStore

    spec = cfg.agent and load_agent(cfg.agent).config.features
    if not spec:
        return
    from potsearch.agents.featurefunc import table_from_function
    from potsearch.store.features import save

    with RunStore.open(run_dir) as store:
        table = table_from_function(spec, list(store.counts().states))
        save(store, table)


def _test_pause():
    """The fault tests' hook (environment POTSEARCH_TEST_PAUSE_AFTER_WRITE=seconds): pause after each
    write so a SIGKILL lands mid-run even for the surrogate; never set in normal use."""
    import time

    pause = float(os.environ.get("POTSEARCH_TEST_PAUSE_AFTER_WRITE", "0") or 0)
    return (lambda: time.sleep(pause)) if pause > 0 else None
