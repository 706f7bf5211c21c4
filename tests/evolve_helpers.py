"""Shared helpers for the evolve tests: a small surrogate word run (built once per session)."""
from __future__ import annotations

import shutil
from pathlib import Path

_CACHE: dict = {}


def small_run(tmp_path_factory, name: str = "run") -> Path:
    """30 real words, V = 0.8 vowels - 0.6 zipf, ~24,000 Metropolis samples (800 per word), fitted.
    Built once per session and copied for each test (a test may write into its copy)."""
    from potsearch.evolve.surrogate import make_surrogate_run

    if "small" not in _CACHE:
        base = tmp_path_factory.mktemp("evolve_base") / "small"
        make_surrogate_run(base, n_samples=24_000, n_words=30, degree=6, seed=0)
        _CACHE["small"] = base
    dst = tmp_path_factory.mktemp("evolve") / name
    shutil.copytree(_CACHE["small"], dst)
    return dst
