"""Imported samples, stored in bulk (schema version 3).

An import of a transitions file adds one block per chunk of the file's rows to ``imports``: the file's
digest, the row numbers, the source and target state ids (-1 for an escape) and the count of every row, as
little-endian int64 arrays. Nothing a per-sample row of ``samples`` would record is lost: an imported sample
``k`` of row ``i`` of the file with digest ``d`` is the sample with uid ``import:d:i:k``, outcome from its
source and target, reason "imported escape" for an escape, agent "import", no model, tokens, latency, cost,
error or raw output, and the block's creation time. The readers in :mod:`.runs` (counts, sample counts,
escape reasons, sample frames and records) expand or sum these blocks exactly as they would the rows, so a
fit, ``status``, ``export`` and a resumed collection see the same data either way. Writing 10^7 samples
this way takes a few array copies instead of 10^7 SQL inserts.

Stores written before schema version 3 hold imported samples as ``samples`` rows with the same uids; both forms
are read, and an import skips the rows of a file already stored in either form.
"""
from __future__ import annotations

import json
import sqlite3
import time

import numpy as np

DDL = """CREATE TABLE IF NOT EXISTS imports(
  id INTEGER PRIMARY KEY, digest TEXT NOT NULL, created REAL NOT NULL, after_sample INTEGER NOT NULL,
  n_rows INTEGER NOT NULL, n_samples INTEGER NOT NULL, rows BLOB NOT NULL, source_ids BLOB NOT NULL,
  target_ids BLOB NOT NULL, counts BLOB NOT NULL)"""
CHUNK = 1_000_000          # rows per block
ESCAPE_REASON = "imported escape"
_I8 = np.dtype("<i8")


def has_table(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='imports'").fetchone() is not None


def blocks(conn: sqlite3.Connection, digest: str | None = None):
    """Every import block in order: (id, digest, created, after_sample, rows, source ids, target ids, counts)."""
    if not has_table(conn):
        return
    q = "SELECT id, digest, created, after_sample, rows, source_ids, target_ids, counts FROM imports"
    args: tuple = ()
    if digest is not None:
        q, args = q + " WHERE digest=?", (digest,)
    for bid, d, created, after, *arrays in conn.execute(q + " ORDER BY id", args):
        yield (bid, d, created, after, *(np.frombuffer(a, dtype=_I8) for a in arrays))


def n_samples(conn: sqlite3.Connection) -> int:
    if not has_table(conn):
        return 0
    return int(conn.execute("SELECT coalesce(sum(n_samples), 0) FROM imports").fetchone()[0])


def n_escapes(conn: sqlite3.Connection) -> int:
    return sum(int(c[t < 0].sum()) for *_, t, c in blocks(conn))


def edge_counts(conn: sqlite3.Connection) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source id, target id or -1, count) of every stored row, unaggregated."""
    parts = [(s, t, c) for *_, s, t, c in blocks(conn)]
    if not parts:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))  # type: ignore[return-value]


def stored_rows(conn: sqlite3.Connection, digest: str) -> np.ndarray:
    """Row numbers of the file with this digest already in the store (either form; may repeat)."""
    found = [r for _, _, _, _, r, *_ in blocks(conn, digest)]
    prefix = f"import:{digest}:"
    old = [int(u[len(prefix):].split(":")[0]) for (u,) in conn.execute(
        "SELECT uid FROM samples WHERE uid >= ? AND uid < ?", (prefix, prefix[:-1] + ";"))]
    found.append(np.asarray(old, dtype=np.int64))
    return np.concatenate(found)


def is_stored(conn: sqlite3.Connection, digest: str, rows: np.ndarray) -> np.ndarray:
    """Per row number in ``rows`` (non-negative): is it already stored for the file with this digest?"""
    stored = stored_rows(conn, digest)
    if not len(rows) or not len(stored):
        return np.zeros(len(rows), dtype=bool)
    flag = np.zeros(int(rows.max()) + 1, dtype=bool)
    flag[stored[stored < len(flag)]] = True
    return flag[rows]


def state_ids(c: sqlite3.Connection, names: list[str], meta: dict | None = None) -> np.ndarray:
    """Store ids of ``names`` (inserted if new, with their metadata); call inside a transaction."""
    meta = meta or {}
    top = int(c.execute("SELECT coalesce(max(id), 0) FROM states").fetchone()[0])
    before = c.total_changes
    rows = (((n, n, json.dumps(meta[n]) if meta.get(n) else None) for n in names) if meta
            else ((n, n) for n in names))
    c.executemany("INSERT OR IGNORE INTO states(key, text, meta) VALUES(?,?,?)" if meta
                  else "INSERT OR IGNORE INTO states(key, text) VALUES(?,?)", rows)
    if c.total_changes - before == len(names):          # all new: ids follow the largest one in order
        return np.arange(top + 1, top + 1 + len(names), dtype=np.int64)
    if len(names) > 5000:
        ids = dict(c.execute("SELECT key, id FROM states"))
        return np.fromiter((ids[n] for n in names), dtype=np.int64, count=len(names))
    got: dict[str, int] = {}
    for i in range(0, len(names), 500):
        chunk = names[i: i + 500]
        q = "SELECT key, id FROM states WHERE key IN (%s)" % ",".join("?" * len(chunk))
        got.update(c.execute(q, chunk).fetchall())
    return np.array([got[n] for n in names], dtype=np.int64)


def add(conn: sqlite3.Connection, digest: str, rows: np.ndarray, src_ids: np.ndarray, tgt_ids: np.ndarray,
        cnt: np.ndarray) -> int:
    """Store rows of one file (not stored before, counts > 0: the caller checks, inside its transaction);
    returns the samples added."""
    rows, src_ids, tgt_ids, cnt = (np.ascontiguousarray(a, dtype=_I8) for a in (rows, src_ids, tgt_ids, cnt))
    after = int(conn.execute("SELECT coalesce(max(id), 0) FROM samples").fetchone()[0])
    now = time.time()
    for i in range(0, len(rows), CHUNK):
        sl = slice(i, i + CHUNK)
        conn.execute(
            "INSERT INTO imports(digest, created, after_sample, n_rows, n_samples, rows, source_ids, target_ids,"
            " counts) VALUES(?,?,?,?,?,?,?,?,?)",
            (digest, now, after, len(rows[sl]), int(cnt[sl].sum()), rows[sl].tobytes(), src_ids[sl].tobytes(),
             tgt_ids[sl].tobytes(), cnt[sl].tobytes()))
    return int(cnt.sum())


def has_uids(conn: sqlite3.Connection, uids: list[str]) -> set[str]:
    """The imported-sample uids (import:digest:row:k) among ``uids`` that a block holds."""
    out: set[str] = set()
    wanted: dict[str, list[tuple[str, int, int]]] = {}
    for u in uids:
        p = u.split(":")
        if len(p) == 4 and p[0] == "import" and p[2].isdigit() and p[3].isdigit():
            wanted.setdefault(p[1], []).append((u, int(p[2]), int(p[3])))
    for d, items in wanted.items():
        for *_, rows, _s, _t, cnt in blocks(conn, d):
            pos = dict(zip(rows.tolist(), cnt.tolist()))
            out.update(u for u, i, k in items if k < pos.get(i, 0))
    return out


def expand(digest: str, rows: np.ndarray, cnt: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Uids of a block's samples in order (row by row, k = 0..count-1) and the row position of each."""
    pos = np.repeat(np.arange(len(rows)), cnt)
    start = np.cumsum(cnt) - cnt
    k = np.arange(len(pos)) - start[pos]
    prefix = f"import:{digest}:"
    uids = [f"{prefix}{i}:{j}" for i, j in zip(rows[pos].tolist(), k.tolist())]
    return uids, pos


def _records(conn: sqlite3.Connection, d: str, rows, s, t, c, states: dict, frame: bool) -> list[tuple]:
    """A block's samples as the rows of ``RunStore.samples_frame`` (frame) or ``sample_records``."""
    uids, pos = expand(d, rows, c)
    out = []
    none = (None, None, None)
    for u, si, ti in zip(uids, s[pos].tolist(), t[pos].tolist()):
        a, b = states[si], states.get(ti, none)
        if not frame:
            out.append((u, a[0], a[1], b[0], b[1], b[2]))
        elif ti < 0:
            out.append((u, a[0], a[1], None, None, "escape", ESCAPE_REASON, "import") + (None,) * 7)
        else:
            out.append((u, a[0], a[1], b[0], b[1], "self" if si == ti else "state", None, "import") + (None,) * 7)
    return out


def interleave(conn: sqlite3.Connection, recs: list, frame: bool) -> list:
    """``recs`` (one per ``samples`` row, in id order) with each import block's samples placed after the
    samples stored before it: the order one row per sample would have had."""
    if not n_samples(conn):
        return recs
    ids = [r[0] for r in conn.execute("SELECT id FROM samples ORDER BY id")]
    states = {i: (k, x, json.loads(m) if m else None) for i, k, x, m in
              conn.execute("SELECT id, key, text, meta FROM states")}
    out, pos = [], 0
    for _bid, d, _created, after, rows, s, t, c in blocks(conn):
        end = int(np.searchsorted(ids, after, side="right"))
        out.extend(recs[pos:end])
        pos = max(pos, end)
        out.extend(_records(conn, d, rows, s, t, c, states, frame))
    out.extend(recs[pos:])
    return out
