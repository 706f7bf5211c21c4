"""Shared by the collect tests: how many samples a store holds while the collector writes (the tests that
kill a collection mid-way), and a run's samples in a form two runs can be compared by."""
from __future__ import annotations

import sqlite3
from pathlib import Path

from potsearch.core.errors import InputError
from potsearch.store import RunStore


def stored_count(path: Path) -> int:
    """Samples stored so far, read while the collector writes (0 while the store is being created). The
    connection is always closed: a connection left open in this process (e.g. one that failed while the
    store was being created) would keep a stale mapping of the WAL index after the writer exits."""
    try:
        store = RunStore.open(path, readonly=True)
    except (InputError, sqlite3.Error):
        return 0
    try:
        return store.n_samples()
    except sqlite3.Error:
        return 0
    finally:
        store.close()


def run_samples(run) -> list[tuple]:
    """(uid, source, target or escape reason) of every stored sample, sorted."""
    with RunStore.open(run) as s:
        df = s.samples_frame()
    return sorted((u, a, b if b is not None else r)
                  for u, a, b, r in zip(df.uid, df.source_key, df.target_key, df.reason))
