"""Where the shipped folders are: ``agents/``, ``data/`` and ``search_configs/``.

In a checkout or an editable install they are the source tree's own folders; a wheel installs
copies under ``<prefix>/share/potsearch/`` (pyproject.toml, ``[tool.setuptools.data-files]``),
with the same layout, so relative paths inside the YAML files (``../data/…``) hold in both.
"""
from __future__ import annotations

import site
import sys
import sysconfig
from pathlib import Path

SHIPPED = ("agents", "data", "search_configs")


def _candidates(name: str) -> list[Path]:
    source_tree = Path(__file__).resolve().parents[2] / name       # src/potsearch/resources.py -> root
    prefixes = [sysconfig.get_path("data"), sys.prefix, getattr(site, "USER_BASE", None)]
    return [source_tree] + [Path(p) / "share" / "potsearch" / name for p in prefixes if p]


def shipped_dir(name: str) -> Path:
    """The folder ``name`` (one of SHIPPED): the first candidate that exists, else the source tree's
    path (so an error message names where it was expected)."""
    if name not in SHIPPED:
        raise ValueError(f"not a shipped folder: {name!r}")
    cands = _candidates(name)
    for c in cands:
        if c.is_dir():
            return c
    return cands[0]
