"""A failed start leaves no run behind.

``discard_if_empty(run_dir)`` wraps a stage that may create a run (collect): when the stage fails
and the run holds no sample, whatever the stage created is removed again — the directory when it
did not exist before, else only the files that appeared — so the corrected command works as a
first start. A run that holds samples is never touched.
"""
from __future__ import annotations

import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from potsearch.store.rundir import RunDir


def _samples(run_dir: Path) -> int | None:
    """Samples in the run's store; None when it cannot be read (then nothing is removed)."""
    import sqlite3

    from potsearch.core.errors import InputError
    from potsearch.store import RunStore

    if not RunDir(run_dir).store.exists():
        return 0
    try:
        with RunStore.open(run_dir, readonly=True) as st:
            return st.n_samples()
    except (sqlite3.Error, OSError, InputError):
        return None


@contextmanager
def discard_if_empty(run_dir: str | Path) -> Iterator[None]:
    run_dir = Path(run_dir)
    existed = run_dir.exists()
    before = {p.name for p in run_dir.iterdir()} if existed and run_dir.is_dir() else set()
    try:
        yield
    except BaseException:
        if run_dir.is_dir() and _samples(run_dir) == 0:
            if not existed:
                shutil.rmtree(run_dir, ignore_errors=True)
            else:
                for p in run_dir.iterdir():
                    if p.name in before:
                        continue
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
        raise
