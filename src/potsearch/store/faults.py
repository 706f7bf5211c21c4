"""Damage a run store on purpose (used by the tests of corruption handling). Never called by potsearch."""
from __future__ import annotations

import sqlite3
from pathlib import Path


def set_schema_version(store, version) -> None:
    """Rewrite the schema version a store declares."""
    store.conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))


def corrupt_checkpoint(store, step: int) -> None:
    """Overwrite a checkpoint's data (its checksum no longer verifies)."""
    store.conn.execute("UPDATE checkpoints SET data=X'00' WHERE step=?", (int(step),))


def foreign_sqlite(path: str | Path) -> Path:
    """An SQLite file of another application (one table, no potsearch marks)."""
    con = sqlite3.connect(str(path))
    try:
        con.execute("CREATE TABLE t(x)")
        con.commit()
    finally:
        con.close()
    return Path(path)


def as_schema_1(store) -> None:
    """Make a store look like one written before schema 2 (no ``simplified`` and no ``imports`` table,
    version 1; imported samples of such a store are ``samples`` rows with import uids)."""
    store.conn.execute("DROP INDEX IF EXISTS simplified_search")
    store.conn.execute("DROP TABLE IF EXISTS simplified")
    store.conn.execute("DROP TABLE IF EXISTS imports")
    set_schema_version(store, 1)
