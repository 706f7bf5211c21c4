"""A run's own features table: read from the user's file, stored in the run's store.sqlite.

``potsearch import FILE --run R --features FEATURES.csv`` and ``potsearch evolve --run R --features
FEATURES.csv`` read the table with :func:`read_features_file` (every check before anything is written)
and store it with :func:`save` (replacing the run's previous table), so the run stays self-contained.
A features function's result (agents/featurefunc.py) is checked by the same :func:`table_from_frame`.

The file: CSV (TSV for ``.tsv``), a header row, one row per state; a ``state`` column (the state's
text, surrounding whitespace stripped, as ``import`` does) and numeric columns, one feature each. A
feature's name is its column name and must be a Python identifier that is not a keyword. Optional
one-line descriptions: a YAML file beside the table with the same stem (``FEATURES.yaml`` or
``.yml``) mapping a feature name to its description. Refused, in one line naming the file and the
column or row: no ``state`` column, no feature column, a name that is not an identifier, a cell
that is not a number, an empty, NaN or infinite cell, a state given twice, a description of a column
the table does not have.

Stored as one row of the table ``user_features`` (created on first use; a store without it has no
table): the feature names and descriptions as JSON, the states as a JSON list, and the values as one
little-endian float64 array (states x features), with the sha256 digest of all of it.
"""
from __future__ import annotations

import hashlib
import json
import keyword
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from potsearch.core.errors import InputError

DDL = """CREATE TABLE IF NOT EXISTS user_features(
  id INTEGER PRIMARY KEY CHECK (id = 1), created REAL NOT NULL, source TEXT NOT NULL, names TEXT NOT NULL,
  descriptions TEXT NOT NULL, states TEXT NOT NULL, vals BLOB NOT NULL, digest TEXT NOT NULL)"""
_F8 = np.dtype("<f8")


@dataclass(frozen=True)
class FeatureTable:
    """``values[i, j]``: feature ``names[j]`` of state ``states[i]``; ``source``: the file's name."""

    states: list
    names: list
    values: np.ndarray
    descriptions: dict = field(default_factory=dict)
    source: str = ""

    @property
    def digest(self) -> str:
        h = hashlib.sha256(json.dumps([self.states, self.names], ensure_ascii=False).encode())
        h.update(np.ascontiguousarray(self.values, dtype=_F8).tobytes())
        return h.hexdigest()

    def describe(self) -> str:
        shown = ", ".join(self.names[:8]) + (", ..." if len(self.names) > 8 else "")
        return f"features table {self.source}: {len(self.states)} states x {len(self.names)} features ({shown})"

    def lookup(self, texts) -> tuple[dict, np.ndarray]:
        """(feature name -> values per text, NaN where the text has no row; the mask of texts with a row)."""
        import pandas as pd

        pos = pd.Index(self.states).get_indexer(list(texts))
        found = pos >= 0
        rows = np.full((len(pos), len(self.names)), np.nan)
        rows[found] = self.values[pos[found]]
        return {n: rows[:, j] for j, n in enumerate(self.names)}, found


def _fail(path, what: str):
    raise InputError(what, str(path))


def read_features_file(path) -> FeatureTable:
    """The table in ``path`` (and its descriptions YAML beside it), checked completely (module doc)."""
    import pandas as pd

    path = Path(path)
    try:  # a repeated column name comes back renamed (x.1): refused below as not an identifier
        df = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype={"state": str},
                         keep_default_na=False, na_values=[""])
    except (OSError, UnicodeDecodeError) as exc:
        _fail(path, f"cannot read the features table: {getattr(exc, 'strerror', None) or exc}")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        _fail(path, f"not a readable features table: {str(exc).splitlines()[0] if str(exc) else 'empty'}")
    return table_from_frame(df, path, path.name, _descriptions)


def table_from_frame(df, where, source: str, descriptions=None) -> FeatureTable:
    """A checked FeatureTable from a DataFrame with a ``state`` column and feature columns (a file's, or
    what a features function returned); every problem is one line naming ``where``. ``descriptions(where,
    names)``: the features' one-line descriptions (None: none)."""
    import pandas as pd

    path = where
    cols = [str(c).strip() for c in df.columns]
    df.columns = cols
    if "state" not in cols:
        _fail(path, f"no 'state' column (columns: {', '.join(cols[:8])})")
    names = [c for c in cols if c != "state"]
    if not names:
        _fail(path, "no feature column besides 'state'")
    for c in names:
        if not c.isidentifier() or keyword.iskeyword(c):
            _fail(path, f"column {c!r}: a feature name must be an identifier (letters, digits, _; not starting with "
                        "a digit, not a Python keyword, not a repeated column)")
    states = df["state"].fillna("").str.strip()
    dup = states.duplicated(keep="first")
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        first = int(np.flatnonzero((states == states.iloc[i]).to_numpy())[0])
        _fail(path, f"state {states.iloc[i]!r} appears twice (rows {first + 2} and {i + 2})")
    empty = (states == "").to_numpy()
    if empty.any():
        _fail(path, f"row {int(np.flatnonzero(empty)[0]) + 2}: empty state")
    values = np.empty((len(df), len(names)))
    for j, c in enumerate(names):  # pandas' C parser read the numbers; a column it left as text holds a non-number
        numeric = pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])
        col = df[c].to_numpy(dtype=float) if numeric else \
            pd.to_numeric(df[c].astype(str).str.strip(), errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(col) | (df[c].isna().to_numpy() if not numeric else False)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            cell = df[c].iloc[i]
            why = "empty cell" if pd.isna(cell) or not str(cell).strip() else f"{str(cell)!r} is not a finite number"
            _fail(path, f"column {c!r}, row {i + 2} (state {states.iloc[i]!r}): {why}")
        values[:, j] = col
    return FeatureTable(list(states), names, values, descriptions(path, names) if descriptions else {}, source)


def _descriptions(path: Path, names: list) -> dict:
    """The one-line descriptions in FEATURES.yaml / .yml beside ``path`` ({} when there is none)."""
    from potsearch.core.yamlio import SafeLoader

    import yaml

    for p in (path.with_suffix(".yaml"), path.with_suffix(".yml")):
        if p.exists():
            try:
                doc = yaml.load(p.read_text(encoding="utf-8"), Loader=SafeLoader)
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                _fail(p, f"cannot read the feature descriptions: {str(exc).splitlines()[0]}")
            if doc is None:
                return {}
            if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
                _fail(p, "feature descriptions must be a mapping  name: one-line description")
            unknown = [k for k in doc if k not in names]
            if unknown:
                _fail(p, f"a description of {str(unknown[0])!r}, which is not a column of {path.name}")
            return {str(k): " ".join(v.split()) for k, v in doc.items()}
    return {}


def save(store, table: FeatureTable) -> None:
    """Store ``table`` as the run's features table (replacing the previous one)."""
    vals = np.ascontiguousarray(table.values, dtype=_F8).tobytes()
    with store.transaction() as c:
        c.execute(DDL)
        c.execute("INSERT OR REPLACE INTO user_features VALUES(1,?,?,?,?,?,?,?)",
                  (time.time(), table.source, json.dumps(table.names), json.dumps(table.descriptions),
                   json.dumps(table.states, ensure_ascii=False), vals, table.digest))


def load(store) -> FeatureTable | None:
    """The run's features table, or None when it has none."""
    if not store.has_table("user_features"):
        return None
    row = store.conn.execute("SELECT source, names, descriptions, states, vals FROM user_features").fetchone()
    if row is None:
        return None
    source, names, desc, states, vals = row
    names, states = json.loads(names), json.loads(states)
    values = np.frombuffer(vals, dtype=_F8).reshape(len(states), len(names)).astype(float)
    return FeatureTable(states, names, values, json.loads(desc), source)
