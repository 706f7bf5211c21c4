"""SQLite run store: the durable record of a run (WAL, versioned schema).

One row per collected agent sample in ``samples`` (with a unique ``uid``), so counts are
always derived and never lost; imported files are stored in bulk blocks (``imports``, see
:mod:`.imports`) that every reader expands exactly as those rows. Writes are transactional and
idempotent: re-inserting a sample with the same uid is a no-op.

Tables: meta (schema version), runs, states, raw_outputs, samples, imports (imported files in bulk,
schema 3), candidates (evolution genealogy), simplified (the simplified forms of evolve's Pareto front,
schema 2), events (stage log), checkpoints (blobs), stage_results (per-stage summaries read by
``potsearch status``).

Schema versions: a store of an older version is migrated in place when it is opened for writing
(``MIGRATIONS``, one transaction per step: tables are only added, nothing is rewritten); opened
read-only it is read as it is (a table it lacks reads as empty). A newer version is refused.
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from potsearch.core.errors import InputError
from potsearch.store import imports as _imports
from potsearch.store.rundir import STORE_FILENAME, RunDir

SCHEMA_VERSION = 3
APP_ID = 0x706F7473  # "pots": marks a file as a potsearch store

ESCAPE = -1  # target index of an escape in aggregated counts

_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
  id INTEGER PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,
  created REAL NOT NULL, config TEXT, status TEXT);
CREATE TABLE IF NOT EXISTS states(
  id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, text TEXT NOT NULL, meta TEXT);
CREATE TABLE IF NOT EXISTS raw_outputs(id INTEGER PRIMARY KEY, text TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples(
  id INTEGER PRIMARY KEY,
  uid TEXT NOT NULL UNIQUE,
  run_id INTEGER REFERENCES runs(id),
  source_id INTEGER NOT NULL REFERENCES states(id),
  target_id INTEGER REFERENCES states(id),
  outcome TEXT NOT NULL CHECK (outcome IN ('state','self','escape')),
  reason TEXT,
  agent TEXT, model TEXT, created REAL,
  tokens_in INTEGER, tokens_out INTEGER, latency REAL, cost REAL, error TEXT,
  raw_id INTEGER REFERENCES raw_outputs(id),
  CHECK ((outcome = 'escape') = (target_id IS NULL)));
CREATE INDEX IF NOT EXISTS samples_source ON samples(source_id);
CREATE TABLE IF NOT EXISTS candidates(
  id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, run_id INTEGER REFERENCES runs(id),
  canonical TEXT, source TEXT NOT NULL, params TEXT, parents TEXT,
  operator TEXT, model TEXT, island INTEGER, round INTEGER,
  train_action REAL, heldout_action REAL, gap REAL,
  complexity INTEGER, n_params INTEGER, eval_seconds REAL,
  error TEXT, tokens INTEGER, cost REAL, created REAL, meta TEXT);
CREATE INDEX IF NOT EXISTS candidates_canonical ON candidates(canonical);
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY, run_id INTEGER, created REAL NOT NULL,
  stage TEXT NOT NULL, kind TEXT NOT NULL, payload TEXT);
CREATE TABLE IF NOT EXISTS checkpoints(
  id INTEGER PRIMARY KEY, stage TEXT NOT NULL, step INTEGER NOT NULL,
  created REAL NOT NULL, sha256 TEXT NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS stage_results(
  stage TEXT PRIMARY KEY, created REAL NOT NULL, summary TEXT NOT NULL);
"""

# schema 2: the simplified form of each Pareto-front candidate of a search (written by evolve's selection)
_DDL_SIMPLIFIED = """
CREATE TABLE IF NOT EXISTS simplified(
  uid TEXT PRIMARY KEY, search_id TEXT, ok INTEGER NOT NULL, source TEXT NOT NULL, params TEXT,
  text TEXT, latex TEXT, train_action REAL, heldout_action REAL, complexity INTEGER, n_terms INTEGER,
  cancellation REAL, ill_conditioned INTEGER, steps TEXT, param_se TEXT, selected INTEGER NOT NULL DEFAULT 0,
  created REAL);
CREATE INDEX IF NOT EXISTS simplified_search ON simplified(search_id);
"""

#: version -> DDL that brings a store of that version to the next one
MIGRATIONS = {1: _DDL_SIMPLIFIED, 2: _imports.DDL}     # schema 3: imported files in bulk (store/imports.py)


@dataclass
class Sample:
    """One agent sample. ``target`` is None for an escape; == source for a self-loop."""

    uid: str
    source: str
    target: str | None
    reason: str | None = None
    agent: str | None = None
    model: str | None = None
    created: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    latency: float | None = None
    cost: float | None = None
    error: str | None = None
    raw: str | None = None
    source_key: str | None = None  # canonical keys (default: the text itself)
    target_key: str | None = None
    source_meta: dict | None = None
    target_meta: dict | None = None

    @property
    def outcome(self) -> str:
        if self.target is None:
            return "escape"
        skey = self.source_key or self.source
        tkey = self.target_key or self.target
        return "self" if skey == tkey else "state"


@dataclass
class Counts:
    """Aggregated transitions: one row per (source, outcome) with its count.

    ``states[i]`` is state i's text; ``dst == ESCAPE`` marks escapes and
    ``dst == src`` self-loops. This is the exchange format between the store,
    the importers, the synthetic generator and the graph builder.
    """

    states: list[str]
    src: np.ndarray
    dst: np.ndarray
    count: np.ndarray
    meta: dict = field(default_factory=dict)

    @property
    def total(self) -> int:
        return int(self.count.sum())

    def visits(self) -> np.ndarray:
        """N(f): every sample drawn from f, self-loops and escapes included."""
        return np.bincount(self.src, weights=self.count, minlength=len(self.states)).astype(np.int64)


def run_dir_of(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p.parent if p.name == STORE_FILENAME or p.suffix in (".sqlite", ".db") else p


@contextmanager
def run_lock(run_dir: str | os.PathLike, stage: str) -> Iterator[None]:
    """Hold the run's writer lock for a long stage (collect, evolve). A second process that tries
    to run a writer stage on the same run is refused with one clear line instead of racing."""
    import fcntl

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    fh = open(RunDir(run_dir).lock, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise InputError(f"run is busy: {holder} is writing to it; wait for it or stop it first",
                         str(run_dir)) from None
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"potsearch {stage} (pid {os.getpid()})")
        fh.flush()
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


class RunStore:
    """A run's SQLite store. Use ``RunStore.open`` / ``RunStore.create``."""

    def __init__(self, path: Path, conn: sqlite3.Connection):
        self.path = path
        self.conn = conn
        self.schema_version = SCHEMA_VERSION

    # ---------------------------------------------------------------- open
    @classmethod
    def create(cls, path: str | os.PathLike, name: str | None = None, kind: str = "run") -> "RunStore":
        """Open the store at ``path`` (a run directory or a .sqlite file), creating it if needed."""
        path = Path(path)
        if path.suffix not in (".sqlite", ".db"):
            path = RunDir(path).store
        if path.exists():
            return cls.open(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise InputError(f"cannot create the run store: {exc}", str(path)) from None
        store = cls(path, conn)
        store._pragmas()
        with store.transaction():
            for stmt in (_DDL + _DDL_SIMPLIFIED + _imports.DDL).split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"PRAGMA application_id = {APP_ID}")
            conn.execute("INSERT INTO meta VALUES('schema_version', ?)", (str(SCHEMA_VERSION),))
            conn.execute("INSERT INTO meta VALUES('created', ?)", (str(time.time()),))
            conn.execute(
                "INSERT INTO runs(name, kind, created) VALUES(?,?,?)",
                (name or path.parent.name, kind, time.time()),
            )
        return store

    @classmethod
    def open(cls, path: str | os.PathLike, readonly: bool = False) -> "RunStore":
        path = Path(path)
        if path.is_dir():
            path = RunDir(path).store
        if not path.exists():
            raise InputError("no run store here (run `potsearch collect` or `potsearch import` first)", str(path))
        try:
            with open(path, "rb") as fh:
                head = fh.read(16)
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", str(path)) from None
        if head != b"SQLite format 3\x00":
            raise InputError("not a potsearch run store (not an SQLite file)", str(path))
        uri = f"file:{path}?mode=ro" if readonly else f"file:{path}"
        conn = None
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None)
            store = cls(path, conn)
            app = conn.execute("PRAGMA application_id").fetchone()[0]
            if app != APP_ID:
                raise InputError("not a potsearch run store (an SQLite file of another application)", str(path))
            row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            version = int(row[0]) if row else -1
            if version != SCHEMA_VERSION and not (version in MIGRATIONS and version < SCHEMA_VERSION):
                raise InputError(
                    f"run store has schema version {version}; this potsearch reads version {SCHEMA_VERSION}"
                    f" (and migrates older versions from {min(MIGRATIONS)})",
                    str(path),
                )
            store.schema_version = version
            if not readonly:
                store._pragmas()
                store._migrate(version)
        except sqlite3.DatabaseError as exc:
            if conn is not None:
                conn.close()
            raise InputError(f"not a readable potsearch run store ({exc})", str(path)) from None
        except BaseException:
            if conn is not None:
                conn.close()
            raise
        return store

    def _migrate(self, version: int) -> None:
        """Bring an older store to ``SCHEMA_VERSION`` (``MIGRATIONS``), one transaction per version."""
        while version < SCHEMA_VERSION:
            with self.transaction() as c:
                cur = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                if cur is None or int(cur[0]) != version:  # another process migrated it meanwhile
                    version = int(cur[0]) if cur else SCHEMA_VERSION
                    continue
                for stmt in MIGRATIONS[version].split(";"):
                    if stmt.strip():
                        c.execute(stmt)
                c.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version + 1),))
            version += 1
        self.schema_version = version

    def has_table(self, name: str) -> bool:
        return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                 (name,)).fetchone() is not None

    def _pragmas(self) -> None:
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.execute("PRAGMA busy_timeout=30000")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def exclusive(self, stage: str):
        """The run's writer lock (see ``run_lock``)."""
        return run_lock(self.run_dir, stage)

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT; rolls back on any exception."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            if self.conn.in_transaction:  # SQLite may already have rolled back (e.g. disk full)
                self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    # ---------------------------------------------------------------- runs / meta
    def run_id(self) -> int:
        return int(self.conn.execute("SELECT min(id) FROM runs").fetchone()[0])

    def run_info(self) -> dict:
        r = self.conn.execute("SELECT name, kind, created, config, status FROM runs ORDER BY id LIMIT 1").fetchone()
        return {"name": r[0], "kind": r[1], "created": r[2], "config": json.loads(r[3]) if r[3] else {}, "status": r[4]}

    def set_run_config(self, config: dict, kind: str | None = None) -> None:
        with self.transaction() as c:
            c.execute("UPDATE runs SET config=? WHERE id=?", (json.dumps(config, sort_keys=True), self.run_id()))
            if kind:
                c.execute("UPDATE runs SET kind=? WHERE id=?", (kind, self.run_id()))

    def get_meta(self, key: str, default=None):
        r = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return json.loads(r[0]) if r and key != "schema_version" else (r[0] if r else default)

    def set_meta(self, key: str, value) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES(?,?)", (key, json.dumps(value)))

    # ---------------------------------------------------------------- states / samples
    def _state_ids(self, c: sqlite3.Connection, items: dict[str, tuple[str, dict | None]]) -> dict[str, int]:
        """key -> id for every key in ``items`` (key -> (text, meta)), inserting new ones."""
        c.executemany(
            "INSERT OR IGNORE INTO states(key, text, meta) VALUES(?,?,?)",
            [(k, t, json.dumps(m) if m else None) for k, (t, m) in items.items()],
        )
        out: dict[str, int] = {}
        keys = list(items)
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            q = "SELECT key, id FROM states WHERE key IN (%s)" % ",".join("?" * len(chunk))
            out.update(dict(c.execute(q, chunk).fetchall()))
        return out

    def add_samples(self, samples: Iterable[Sample]) -> int:
        """Insert samples in one transaction; returns how many were new (uid not seen before)."""
        samples = list(samples)
        if not samples:
            return 0
        run_id = self.run_id()
        items: dict[str, tuple[str, dict | None]] = {}
        for s in samples:
            items.setdefault(s.source_key or s.source, (s.source, s.source_meta))
            if s.target is not None:
                items.setdefault(s.target_key or s.target, (s.target, s.target_meta))
        with self.transaction() as c:
            seen = self.has_uids(s.uid for s in samples)  # inside the transaction: a consistent view
            fresh = []
            for s in samples:
                if s.uid not in seen:
                    seen.add(s.uid)
                    fresh.append(s)
            if not fresh:
                return 0
            ids = self._state_ids(c, items)
            rows = []
            for s in fresh:
                raw_id = None
                if s.raw is not None:
                    raw_id = c.execute("INSERT INTO raw_outputs(text) VALUES(?)", (s.raw,)).lastrowid
                rows.append(
                    (
                        s.uid, run_id, ids[s.source_key or s.source],
                        None if s.target is None else ids[s.target_key or s.target],
                        s.outcome, s.reason, s.agent, s.model, s.created or time.time(),
                        s.tokens_in, s.tokens_out, s.latency, s.cost, s.error, raw_id,
                    )
                )
            c.executemany(
                "INSERT INTO samples(uid, run_id, source_id, target_id, outcome, reason, agent, model,"
                " created, tokens_in, tokens_out, latency, cost, error, raw_id)"
                " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            inserted = len(rows)
        return int(inserted)

    def has_uids(self, uids: Iterable[str]) -> set[str]:
        uids = list(uids)
        out: set[str] = set()
        for i in range(0, len(uids), 500):
            chunk = uids[i : i + 500]
            q = "SELECT uid FROM samples WHERE uid IN (%s)" % ",".join("?" * len(chunk))
            out.update(r[0] for r in self.conn.execute(q, chunk))
        return out | _imports.has_uids(self.conn, [u for u in uids if u.startswith("import:")])

    def n_samples(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM samples").fetchone()[0]) + _imports.n_samples(self.conn)

    def add_import(self, digest: str, names: list[str], src: np.ndarray, tgt: np.ndarray, cnt: np.ndarray,
                   meta: dict | None = None, rows: np.ndarray | None = None) -> int:
        """Store an imported file's rows (state indices into ``names``, ESCAPE for an escape) in bulk, in one
        transaction; row i (``rows[i]`` when given) stands for the samples import:digest:i:0..count-1. Rows
        already stored (the same file imported before) are skipped. Returns how many samples were new."""
        src, tgt, cnt = (np.asarray(a, dtype=np.int64) for a in (src, tgt, cnt))
        self.conn.execute("PRAGMA cache_size=-262144")        # 256 MB of page cache for the bulk insert
        with self.transaction() as c:
            rows = np.arange(len(src), dtype=np.int64) if rows is None else np.asarray(rows, dtype=np.int64)
            fresh = (cnt > 0) & ~_imports.is_stored(c, digest, rows)        # zero counts hold no sample
            rows, src, tgt, cnt = rows[fresh], src[fresh], tgt[fresh], cnt[fresh]
            used = np.zeros(len(names), dtype=bool)
            used[src] = True
            used[tgt[tgt != ESCAPE]] = True
            lookup = np.full(len(names) + 1, -1, dtype=np.int64)   # index -1 (ESCAPE) -> -1
            which = np.flatnonzero(used)
            lookup[which] = _imports.state_ids(c, [names[i] for i in which], meta)
            return _imports.add(c, digest, rows, lookup[src], lookup[tgt], cnt)

    def counts(self) -> Counts:
        """Aggregate samples into (source, outcome, count) rows; states indexed by store id order."""
        rows = self.conn.execute("SELECT id, text FROM states ORDER BY id").fetchall()
        index = {sid: i for i, (sid, _) in enumerate(rows)}
        states = [t for _, t in rows]
        agg = self.conn.execute(
            "SELECT source_id, coalesce(target_id, -1), count(*) FROM samples GROUP BY source_id, target_id"
        ).fetchall()
        bs, bt, bc = _imports.edge_counts(self.conn)
        if len(bs):                      # imported blocks: the same grouping, ordered by (source id, target id)
            a = np.array(agg, dtype=np.int64).reshape(-1, 3)
            s_all, t_all, c_all = (np.concatenate([a[:, j], x]) for j, x in enumerate((bs, bt, bc)))
            key = s_all * (int(t_all.max()) + 2) + (t_all + 1)
            uniq, inv = np.unique(key, return_inverse=True)
            tot = np.bincount(inv.ravel(), weights=c_all, minlength=len(uniq)).astype(np.int64)
            lookup = np.full(max(index) + 2, -2, dtype=np.int64)
            lookup[list(index)] = list(index.values())
            lookup[-1] = ESCAPE
            width = int(t_all.max()) + 2
            return Counts(states, lookup[uniq // width], lookup[uniq % width - 1], tot, meta={"store": str(self.path)})
        if agg:
            a = np.array(agg, dtype=np.int64)
            src = np.array([index[s] for s in a[:, 0]], dtype=np.int64)
            dst = np.array([index[d] if d != -1 else ESCAPE for d in a[:, 1]], dtype=np.int64)
            cnt = a[:, 2]
        else:
            src = dst = cnt = np.zeros(0, dtype=np.int64)
        return Counts(states, src, dst, cnt, meta={"store": str(self.path)})

    def sample_records(self) -> list[tuple]:
        """(uid, source key, source text, target key, target text, target meta) of every sample, in
        insertion order (target fields None for an escape)."""
        q = ("SELECT s.uid, a.key, a.text, b.key, b.text, b.meta FROM samples s JOIN states a ON a.id = s.source_id "
             "LEFT JOIN states b ON b.id = s.target_id ORDER BY s.id")
        recs = [(u, sk, st, tk, tt, json.loads(tm) if tm else None) for u, sk, st, tk, tt, tm in self.conn.execute(q)]
        if not _imports.has_table(self.conn) or not _imports.n_samples(self.conn):
            return recs
        return _imports.interleave(self.conn, recs, frame=False)

    def usage(self) -> tuple[int, int, float]:
        """(samples, tokens in + out, cost) over every stored sample."""
        n, tok, cost = self.conn.execute(
            "SELECT count(*), coalesce(sum(coalesce(tokens_in,0)+coalesce(tokens_out,0)),0), coalesce(sum(cost),0)"
            " FROM samples").fetchone()
        return int(n) + _imports.n_samples(self.conn), int(tok), float(cost)

    def usage_stats(self) -> dict:
        """Tokens in / out, cost, mean latency and the number of samples that carry a retried error."""
        r = self.conn.execute("SELECT coalesce(sum(tokens_in),0), coalesce(sum(tokens_out),0), coalesce(sum(cost),0),"
                              " coalesce(avg(latency),0), sum(error IS NOT NULL) FROM samples").fetchone()
        return {"tokens_in": int(r[0]), "tokens_out": int(r[1]), "cost": float(r[2]), "mean_latency": float(r[3]),
                "samples_with_retried_errors": int(r[4] or 0)}

    def escape_reasons(self, limit: int | None = 8) -> dict[str, int]:
        """Escape reason -> count, most frequent first ('?' for an escape without a reason)."""
        q = ("SELECT coalesce(reason,'?'), count(*) FROM samples WHERE outcome='escape' GROUP BY reason"
             " ORDER BY count(*) DESC")
        extra = _imports.n_escapes(self.conn) if _imports.has_table(self.conn) else 0
        if limit is not None and not extra:
            q += f" LIMIT {int(limit)}"
        out = dict(self.conn.execute(q).fetchall())
        if extra:
            out[_imports.ESCAPE_REASON] = out.get(_imports.ESCAPE_REASON, 0) + extra
            ranked = sorted(out.items(), key=lambda kv: -kv[1])     # stable: ties keep SQLite's order
            out = dict(ranked if limit is None else ranked[: int(limit)])
        return out

    def samples_frame(self):
        """Every sample as a pandas DataFrame: uid, source_key, source, target_key, target, outcome, reason,
        agent, model, tokens_in, tokens_out, latency, cost, error, raw (target fields None for an escape)."""
        import pandas as pd

        cols = ["uid", "source_key", "source", "target_key", "target", "outcome", "reason", "agent", "model",
                "tokens_in", "tokens_out", "latency", "cost", "error", "raw"]
        q = ("SELECT s.uid, a.key, a.text, b.key, b.text, s.outcome, s.reason, s.agent, s.model, s.tokens_in,"
             " s.tokens_out, s.latency, s.cost, s.error, r.text FROM samples s JOIN states a ON a.id = s.source_id"
             " LEFT JOIN states b ON b.id = s.target_id LEFT JOIN raw_outputs r ON r.id = s.raw_id ORDER BY s.id")
        recs = self.conn.execute(q).fetchall()
        if _imports.n_samples(self.conn):
            recs = _imports.interleave(self.conn, recs, frame=True)
        return pd.DataFrame(recs, columns=cols)

    def state_texts(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT text FROM states ORDER BY id")]

    def state_meta(self) -> dict[str, dict]:
        return {t: json.loads(m) for t, m in self.conn.execute("SELECT text, meta FROM states WHERE meta IS NOT NULL")}

    # ---------------------------------------------------------------- events / stage results / checkpoints
    def log_event(self, stage: str, kind: str, payload: dict | None = None) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO events(run_id, created, stage, kind, payload) VALUES(?,?,?,?,?)",
                (self.run_id(), time.time(), stage, kind, json.dumps(payload or {}, default=str)),
            )

    def set_stage_result(self, stage: str, summary: dict) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO stage_results VALUES(?,?,?)",
                (stage, time.time(), json.dumps(summary, default=float)),
            )

    def stage_results(self) -> dict[str, dict]:
        return {s: json.loads(v) for s, v in self.conn.execute("SELECT stage, summary FROM stage_results")}

    def stage_times(self) -> dict[str, float]:
        """stage -> when its result was last written (seconds since the epoch)."""
        return dict(self.conn.execute("SELECT stage, created FROM stage_results").fetchall())

    def events(self, stage: str | None = None, kind: str | None = None) -> list[dict]:
        """Logged events in order: dicts with stage, kind, created and the decoded payload."""
        where, args = [], []
        for col, v in (("stage", stage), ("kind", kind)):
            if v is not None:
                where.append(f"{col}=?")
                args.append(v)
        q = "SELECT stage, kind, created, payload FROM events"
        if where:
            q += " WHERE " + " AND ".join(where)
        return [{"stage": s, "kind": k, "created": t, "payload": json.loads(p) if p else {}}
                for s, k, t, p in self.conn.execute(q + " ORDER BY id", args)]

    def checkpoint_steps(self, stage: str) -> list[int]:
        """Steps of the checkpoints kept for ``stage``, oldest first."""
        return [int(r[0]) for r in self.conn.execute("SELECT step FROM checkpoints WHERE stage=? ORDER BY id",
                                                     (stage,))]

    def integrity_check(self) -> str:
        """SQLite's integrity check: 'ok' for a sound file."""
        return str(self.conn.execute("PRAGMA integrity_check").fetchone()[0])

    def journal_mode(self) -> str:
        return str(self.conn.execute("PRAGMA journal_mode").fetchone()[0])

    @property
    def candidates(self):
        """This store's ``CandidateStore``."""
        from potsearch.store.candidates import CandidateStore

        return CandidateStore(self)

    def save_checkpoint(self, stage: str, step: int, data: bytes, keep: int = 3) -> None:
        digest = hashlib.sha256(data).hexdigest()
        with self.transaction() as c:
            c.execute(
                "INSERT INTO checkpoints(stage, step, created, sha256, data) VALUES(?,?,?,?,?)",
                (stage, step, time.time(), digest, data),
            )
            c.execute(
                "DELETE FROM checkpoints WHERE stage=? AND id NOT IN "
                "(SELECT id FROM checkpoints WHERE stage=? ORDER BY id DESC LIMIT ?)",
                (stage, stage, keep),
            )

    def load_checkpoint(self, stage: str) -> tuple[int, bytes] | None:
        """Newest checkpoint whose checksum verifies (a corrupted one is skipped)."""
        for step, digest, data in self.conn.execute(
            "SELECT step, sha256, data FROM checkpoints WHERE stage=? ORDER BY id DESC", (stage,)
        ):
            if hashlib.sha256(data).hexdigest() == digest:
                return int(step), bytes(data)
        return None
