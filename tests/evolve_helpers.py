"""Shared helpers for the evolve tests: a small surrogate word run (built once per session)."""
from __future__ import annotations

import shutil
from pathlib import Path

_CACHE: dict = {}


def small_run(tmp_path_factory, name: str = "run") -> Path:
    """30 real words, V = 0.8 vowels - 0.6 zipf, ~24,000 Metropolis samples (800 per word), fitted.
    Built once per session and copied for each test (a test may write into its copy)."""
    from potsearch.testing.surrogate_run import make_surrogate_run

    if "small" not in _CACHE:
        base = tmp_path_factory.mktemp("evolve_base") / "small"
        make_surrogate_run(base, n_samples=24_000, n_words=30, degree=6, seed=0)
        _CACHE["small"] = base
    dst = tmp_path_factory.mktemp("evolve") / name
    shutil.copytree(_CACHE["small"], dst)
    return dst


def candidate_tuples(run, cols):
    """The run's candidates (all, in store order) as tuples of ``cols``, read through the store; the
    JSON columns (params, parents, meta) come back JSON-encoded, as they are stored."""
    import json

    from potsearch.store import RunStore

    store = RunStore.open(Path(run) / "store.sqlite", readonly=True)
    try:
        rows = store.candidates.rows(valid_only=False)
    finally:
        store.close()

    def value(r, c):
        v = getattr(r, c)
        return json.dumps(v) if c in ("params", "parents", "meta") else v

    return [tuple(value(r, c) for c in cols) for r in rows]


def run_events(run, stage=None, kind=None):
    """The run's logged events (dicts with stage, kind, created, payload), read through the store."""
    from potsearch.store import RunStore

    store = RunStore.open(Path(run) / "store.sqlite", readonly=True)
    try:
        return store.events(stage=stage, kind=kind)
    finally:
        store.close()
