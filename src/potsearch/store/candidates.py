"""The ``candidates`` table: every scored (or failed) candidate potential and its genealogy.

``CandidateStore`` is the only code that reads or writes this table. A row is a ``CandidateRow``;
``params``, ``parents`` and ``meta`` are JSON in the table and Python values here.

The ``simplified`` table (schema 2) holds, per candidate uid, the simplified form that evolve's model
selection computed for the members of a search's Pareto front (``save_simplified``), with the one law
it selected flagged: ``simplified()`` returns them as a DataFrame, ``simplified_of(uid)`` one as a
dict, ``selected_law(search_id)`` the selected one. A store of schema 1 opened read-only has no such
table: these read as empty.

The Pareto front of (complexity, training action) has one rule, ``pareto_front``: candidates are
ordered by (complexity, training action, id) and a candidate is on the front when its training
action is strictly lower than that of every simpler candidate on the front. So of two candidates
with the same complexity and action the older (lower id) one is kept, and an equal action at a
higher complexity is dominated. Candidates without a finite training action are never on it.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Iterable

COLUMNS = ("uid", "run_id", "canonical", "source", "params", "parents", "operator", "model", "island", "round",
           "train_action", "heldout_action", "gap", "complexity", "n_params", "eval_seconds", "error", "tokens",
           "cost", "created", "meta")
_JSON = ("params", "parents", "meta")
_READ = ("id", "uid", "source", "params", "parents", "operator", "model", "island", "round", "train_action",
         "heldout_action", "gap", "complexity", "n_params", "canonical", "created", "meta", "error", "eval_seconds",
         "tokens", "cost")
_VALID = "error IS NULL AND train_action IS NOT NULL"
SIMPLIFIED_COLUMNS = ("uid", "search_id", "ok", "source", "params", "text", "latex", "train_action", "heldout_action",
                      "complexity", "n_terms", "cancellation", "ill_conditioned", "steps", "param_se", "selected",
                      "created")
_SIMPLIFIED_JSON = ("params", "param_se")
_SIMPLIFIED_BOOL = ("ok", "ill_conditioned", "selected")


@dataclass
class CandidateRow:
    """One row of the store's ``candidates`` table."""

    id: int
    uid: str
    source: str
    params: list
    parents: list
    operator: str | None
    model: str | None
    island: int | None
    round: int | None
    train_action: float | None
    heldout_action: float | None
    gap: float | None
    complexity: int | None
    n_params: int | None
    canonical: str | None = None
    created: float | None = None
    meta: dict = field(default_factory=dict)
    error: str | None = None
    eval_seconds: float | None = None
    tokens: int | None = None
    cost: float | None = None

    def __repr__(self) -> str:
        return (f"CandidateRow(id={self.id}, uid={self.uid!r}, operator={self.operator!r}, "
                f"train_action={self.train_action}, complexity={self.complexity})")


def _js(v, default):
    if v is None or v == "":
        return default
    try:
        out = json.loads(v)
    except (TypeError, ValueError):
        return default
    return out if out is not None else default


def _row(r) -> CandidateRow:
    d = dict(zip(_READ, r))
    d["params"] = _js(d["params"], []) or []
    d["parents"] = _js(d["parents"], []) or []
    d["meta"] = _js(d["meta"], {}) or {}
    return CandidateRow(**d)


def _value(key: str, v):
    if key in _JSON and v is not None and not isinstance(v, str):
        return json.dumps(v, sort_keys=key == "meta", default=float)
    return v


def pareto_front(rows: Iterable) -> list:
    """The non-dominated rows in (complexity, train_action), by increasing complexity (see the
    module docstring for the tie rule). Rows need ``id``, ``complexity`` and ``train_action``."""
    pts = sorted((r for r in rows if r.train_action is not None and math.isfinite(r.train_action)),
                 key=lambda r: (r.complexity if r.complexity is not None else 0, r.train_action, r.id))
    front, best = [], math.inf
    for r in pts:
        if r.train_action < best:
            front.append(r)
            best = r.train_action
    return front


class CandidateStore:
    """Candidates of one run store: ``CandidateStore(run_store)``."""

    def __init__(self, store):
        self.store = store

    # ---------------------------------------------------------------- write
    def add(self, uid: str, source: str, **fields) -> int:
        """Insert one candidate (columns of ``COLUMNS`` as keywords; lists / dicts for params, parents,
        meta). An existing uid is left unchanged. Returns the row id."""
        return self.add_many([{"uid": uid, "source": source, **fields}])[0]

    def add_many(self, rows: Iterable[dict]) -> list[int]:
        """Insert many candidates in one transaction (``INSERT OR IGNORE`` on uid: re-adding the same
        uid neither duplicates nor loses a row). Returns the row ids in order."""
        rows = list(rows)
        if not rows:
            return []
        run_id = self.store.run_id()
        now = time.time()
        groups: dict[tuple, list] = {}
        uids = []
        for r in rows:
            bad = set(r) - set(COLUMNS)
            if bad:
                raise ValueError(f"unknown candidate columns: {sorted(bad)}")
            full = {"run_id": run_id, "created": now, **r}
            keys = tuple(k for k in COLUMNS if k in full)
            groups.setdefault(keys, []).append([_value(k, full[k]) for k in keys])
            uids.append(full["uid"])
        ids: dict[str, int] = {}
        with self.store.transaction() as c:
            for keys, values in groups.items():
                c.executemany(f"INSERT OR IGNORE INTO candidates({', '.join(keys)})"
                              f" VALUES({','.join('?' * len(keys))})", values)
            for i in range(0, len(uids), 500):
                chunk = uids[i:i + 500]
                q = "SELECT uid, id FROM candidates WHERE uid IN (%s)" % ",".join("?" * len(chunk))
                ids.update(c.execute(q, chunk).fetchall())
        return [int(ids[u]) for u in uids]

    # ---------------------------------------------------------------- read
    def _query(self, where: str = "", args: tuple = (), order: str = "id") -> list[CandidateRow]:
        q = f"SELECT {', '.join(_READ)} FROM candidates"
        if where:
            q += f" WHERE {where}"
        return [_row(r) for r in self.store.conn.execute(f"{q} ORDER BY {order}", args)]

    def rows(self, valid_only: bool = True, search_id: str | None = None) -> list[CandidateRow]:
        """Candidates in id order; only scored ones by default; only one search's (uid prefix) if given."""
        where, args = [], []
        if valid_only:
            where.append(_VALID)
        if search_id is not None:
            where.append("uid LIKE ?")
            args.append(search_id + ":%")
        return self._query(" AND ".join(where), tuple(args))

    def get(self, ref) -> CandidateRow | None:
        """By id (int or digit string) or uid."""
        if ref is None:
            return None
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            found = self._query("id=?", (int(ref),))
            if not found and isinstance(ref, str):
                found = self._query("uid=?", (ref,))
        else:
            found = self._query("uid=?", (str(ref),))
        return found[0] if found else None

    def best(self, search_id: str | None = None) -> CandidateRow | None:
        """The scored candidate with the lowest training action (then the simplest, then the oldest)."""
        rows = self.rows(search_id=search_id)
        return min(rows, key=lambda r: (r.train_action, r.complexity or 0, r.id)) if rows else None

    def pareto(self, search_id: str | None = None) -> list[CandidateRow]:
        """``pareto_front`` of the scored candidates."""
        return pareto_front(self.rows(search_id=search_id))

    def lineage(self, row: CandidateRow | int | str, depth: int = 30) -> list[CandidateRow]:
        """[row, parent, grandparent, ...] following the first parent (ids or uids in ``parents``)."""
        if not isinstance(row, CandidateRow):
            row = self.get(row)
            if row is None:
                return []
        chain, seen, cur = [row], {row.id}, row
        while cur.parents and len(chain) < depth:
            parent = self.get(cur.parents[0])
            if parent is None or parent.id in seen:
                break
            chain.append(parent)
            seen.add(parent.id)
            cur = parent
        return chain

    def count(self) -> int:
        return int(self.store.conn.execute("SELECT count(*) FROM candidates").fetchone()[0])

    def to_frame(self, valid_only: bool = False, search_id: str | None = None):
        """All candidates as a pandas DataFrame (one row a candidate, columns of ``CandidateRow``)."""
        import pandas as pd

        rows = self.rows(valid_only=valid_only, search_id=search_id)
        cols = list(CandidateRow.__dataclass_fields__)
        return pd.DataFrame([asdict(r) for r in rows], columns=cols)

    # ---------------------------------------------------------------- simplified forms (schema 2)
    def save_simplified(self, search_id: str, rows: Iterable[dict], selected_uid: str | None = None) -> int:
        """Store the simplified forms of a search's front members (dicts with ``SIMPLIFIED_COLUMNS``
        keys; ``uid`` and ``source`` required), replacing that search's earlier ones; ``selected_uid``
        is flagged as the selected law. Returns the number of rows written."""
        now = time.time()
        values = []
        for r in rows:
            bad = set(r) - set(SIMPLIFIED_COLUMNS)
            if bad:
                raise ValueError(f"unknown simplified columns: {sorted(bad)}")
            full = {"ok": False, **r, "search_id": search_id, "selected": r["uid"] == selected_uid,
                    "created": now}
            row = []
            for k in SIMPLIFIED_COLUMNS:
                v = full.get(k)
                if k in _SIMPLIFIED_JSON and v is not None and not isinstance(v, str):
                    v = json.dumps([float(x) for x in v])
                elif k in _SIMPLIFIED_BOOL:
                    v = int(bool(v))
                elif hasattr(v, "item"):  # numpy scalars
                    v = v.item()
                row.append(v)
            values.append(row)
        with self.store.transaction() as c:
            c.execute("DELETE FROM simplified WHERE search_id=?", (search_id,))
            c.executemany(f"INSERT OR REPLACE INTO simplified({', '.join(SIMPLIFIED_COLUMNS)})"
                          f" VALUES({','.join('?' * len(SIMPLIFIED_COLUMNS))})", values)
        return len(values)

    def _simplified(self, where: str = "", args: tuple = ()) -> list[dict]:
        if not self.store.has_table("simplified"):
            return []
        q = f"SELECT {', '.join(SIMPLIFIED_COLUMNS)} FROM simplified"
        out = []
        for r in self.store.conn.execute(q + (f" WHERE {where}" if where else "") + " ORDER BY complexity, uid", args):
            d = dict(zip(SIMPLIFIED_COLUMNS, r))
            for k in _SIMPLIFIED_JSON:
                d[k] = _js(d[k], None)
            for k in _SIMPLIFIED_BOOL:
                d[k] = bool(d[k]) if d[k] is not None else False
            out.append(d)
        return out

    def simplified(self, search_id: str | None = None):
        """The stored simplified forms (of one search if given) as a DataFrame, by complexity."""
        import pandas as pd

        rows = self._simplified("search_id=?", (search_id,)) if search_id is not None else self._simplified()
        return pd.DataFrame(rows, columns=list(SIMPLIFIED_COLUMNS))

    def simplified_of(self, uid: str) -> dict | None:
        """The newest stored simplified form of candidate ``uid``, or None."""
        found = self._simplified("uid=?", (str(uid),))
        return found[0] if found else None

    def selected_law(self, search_id: str | None = None) -> dict | None:
        """The law evolve's selection chose (of one search if given; else the newest), or None."""
        if search_id is not None:
            found = self._simplified("selected=1 AND search_id=?", (search_id,))
        else:
            found = sorted(self._simplified("selected=1"), key=lambda d: d["created"] or 0)[-1:]
        return found[0] if found else None
