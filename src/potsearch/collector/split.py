"""One transitions file, several runs: `potsearch import FILE --split-by COLUMN` writes one run per value of
COLUMN (for instance ``model``), each run the folder RUN/<value>.

A value becomes a folder name by one rule (:func:`folder_name`): every run of characters other than ASCII
letters, digits and ``. _ + -`` becomes one ``_`` (``openai/gpt-5-nano`` -> ``openai_gpt-5-nano``), and a
leading ``.`` or ``-`` becomes ``_`` (no hidden folder, no name read as an option, never ``..``). Two values
are never merged: when two of them give one folder name (``gpt 5`` and ``gpt/5``, or names that differ only
in case, which a case-insensitive file system would merge) the file is refused, naming both. A value longer
than :data:`MAX_NAME` characters is refused too. The original value is the run's name in its store.
"""
from __future__ import annotations

import re

import numpy as np

from potsearch.core.errors import InputError

MAX_NAME = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def folder_name(value: str) -> str:
    """The folder of the run of ``value`` (module doc)."""
    name = _UNSAFE.sub("_", value)
    return "_" + name[1:] if name[:1] in (".", "-") else name


def folder_names(values: list[str], column: str, where: str) -> dict[str, str]:
    """value -> folder name for every value, refused (InputError) when a value is too long or two values
    would share a folder."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for v in values:
        if len(v) > MAX_NAME:
            raise InputError(f"a value of --split-by {column} is longer than {MAX_NAME} characters: {v[:40]!r}...",
                             where)
        name = folder_name(v)
        other = seen.get(name.casefold())
        if other is not None:
            raise InputError(f"values {other!r} and {v!r} of --split-by {column} would both be written to the run "
                             f"folder {name!r} (folder names keep only letters, digits and . _ + -, and ignore "
                             f"case): rename one in the file", where)
        seen[name.casefold()] = v
        out[v] = name
    return out


def split_table(table, groups: np.ndarray, rows: np.ndarray | None = None) -> dict[str, tuple]:
    """value -> (its rows of ``table`` as a table, their row numbers in the file's table), values in order
    of first appearance. ``rows``: the file-table row numbers of ``table``'s rows when some were dropped."""
    names, s, t, c, meta = table
    groups = np.asarray(groups, dtype=object)
    positions = np.arange(len(s)) if rows is None else np.asarray(rows)
    values, first, inverse = np.unique(groups.astype(str), return_index=True, return_inverse=True)
    out = {}
    for k in np.argsort(first, kind="stable"):
        mask = inverse.ravel() == k
        out[str(values[k])] = ((names, s[mask], t[mask], c[mask], meta), positions[mask])
    return out
