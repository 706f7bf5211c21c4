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
    here = Path(__file__).resolve()
    out = []
    root = here.parents[3]                      # src/potsearch/core/resources.py -> the checkout
    if here.parents[2].name == "src" and (root / "pyproject.toml").is_file():
        out.append(root / name)
    prefixes = [sysconfig.get_path("data"), sys.prefix, getattr(site, "USER_BASE", None),
                here.parents[2]]                # pip install --target DIR: DIR/share/potsearch
    return out + [Path(p) / "share" / "potsearch" / name for p in prefixes if p]


def shipped_dir(name: str) -> Path:
    """The folder ``name`` (one of SHIPPED): the first candidate that exists, else the first
    candidate (so an error message names a place where it was expected)."""
    if name not in SHIPPED:
        raise ValueError(f"not a shipped folder: {name!r}")
    cands = _candidates(name)
    for c in cands:
        if c.is_dir():
            return c
    return cands[0]
