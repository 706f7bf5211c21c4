"""A run's feature library: which features a search sees, with a one-line description each.

Four libraries (``FeatureLibrary.kind``):

* ``word`` / ``fitter`` — the built-in agents' features (:mod:`potsearch.law.features`);
* ``table`` — the run's own features table (``--features FEATURES.csv``, :mod:`potsearch.store.features`);
  a state without a row is left out of the search (``keep`` names them);
* ``automatic`` — features read from the state text (:mod:`potsearch.law.autofeatures`).

``choose_library`` picks one for a search: a library evolve recorded (readers rebuild the same one);
else the run's table when the search config's ``agent`` is ``auto`` and the run has a table; else the
agent kind (``search.problem.agent_of``: word, fitter, or automatic for states that are neither).
``record()`` is what evolve writes in its summary (``config.features``); ``embedded_source()`` is the
feature code best_potential.py carries: the built-in sections, the automatic features' code with its
schema, or the table itself as JSON data read by ``json.loads`` — never code from a model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from potsearch.core.errors import InputError
from potsearch.law import autofeatures
from potsearch.law.features import FEATURES, embedded_source as builtin_source, feature_table
from potsearch.store import features as stored

KINDS = ("word", "fitter", "table", "automatic")

_TABLE_CODE = '''
import json  # noqa: E402

import numpy as np  # noqa: E402,F811

# ---- the run's features table: data (JSON read by json.loads), one row per state ----
FEATURES_TABLE = json.loads({data})
_ROW = {{s: i for i, s in enumerate(FEATURES_TABLE["states"])}}
_VALUES = np.asarray(FEATURES_TABLE["values"], dtype=float).reshape(len(_ROW), len(FEATURES_TABLE["names"]))


def feature_table(texts, meta=None):
    """The features of each state, looked up in the run's table (a state without a row is refused)."""
    idx = []
    for t in texts:
        if t not in _ROW:
            raise KeyError(f"state {{t!r}} has no row in the run's features table ({source})")
        idx.append(_ROW[t])
    rows = _VALUES[np.asarray(idx, dtype=np.int64)].reshape(len(idx), _VALUES.shape[1])
    return {{name: rows[:, j] for j, name in enumerate(FEATURES_TABLE["names"])}}
'''


@dataclass(frozen=True)
class FeatureLibrary:
    """``docs``: feature name -> one-line description (every feature of the library, in order);
    ``schema``: the automatic features' schema; ``table``: the run's features table."""

    kind: str
    docs: dict
    schema: dict | None = None
    table: stored.FeatureTable | None = None

    def covers(self, names) -> np.ndarray:
        """Which of the states ``names`` have features (all but a table's states without a row)."""
        if self.table is None:
            return np.ones(len(names), dtype=bool)
        return self.table.lookup(names)[1]

    def compute(self, names, meta: dict | None = None) -> dict[str, np.ndarray]:
        """Feature name -> float array, one value per state (NaN for a state without a table row)."""
        if self.kind == "table":
            return self.table.lookup(names)[0]
        if self.kind == "automatic":
            return autofeatures.auto_features(names, self.schema)
        return feature_table(self.kind, names, meta)

    def keep(self, names, where: str = "") -> tuple[np.ndarray, list[str]]:
        """(which of the fit's states ``names`` the search keeps, notes): every state needs its features, so a
        table without a row for some fitted state is refused in one line naming them (InputError)."""
        covered = self.covers(names)
        if covered.all():
            return covered, []
        miss = [s for s, ok in zip(names, covered) if not ok]
        shown = ", ".join(repr(s)[:40] for s in miss[:5]) + (", ..." if len(miss) > 5 else "")
        raise InputError(f"{len(miss)} of the fit's {len(names)} states have no row in the features table "
                         f"{self.table.source}: {shown} (add their rows, or drop thinly sampled states with "
                         f"`potsearch fit --min-visits K`)", str(where) or None)

    def record(self) -> dict:
        """What evolve records (summary.json ``config.features``) to rebuild this library."""
        rec = {"library": self.kind, "features": list(self.docs)}
        if self.kind == "automatic":
            rec.update(schema=self.schema, descriptions=dict(self.docs))
        if self.kind == "table":
            rec.update(source=self.table.source, digest=self.table.digest, states=len(self.table.states),
                       descriptions=dict(self.table.descriptions))
        return rec

    def provenance(self) -> str:
        """Where best_potential.py's features come from (a phrase for its docstring)."""
        if self.kind == "table":
            return (f"looked up in the run's features table {_plain(self.table.source)} (kept below as JSON "
                    "data); a state without a row is refused")
        where = "potsearch.law.autofeatures, with the run's schema" if self.kind == "automatic" else \
            "potsearch.law.features"
        return f"computed from the state text by the same code the search used (copied from\n{where})"

    def embedded_source(self) -> str:
        """The feature code of best_potential.py: defines ``feature_table(texts, meta=None)``."""
        if self.kind == "automatic":
            return autofeatures.embedded_source(self.schema)
        if self.kind == "table":
            t = self.table
            data = json.dumps({"names": t.names, "states": t.states, "values": t.values.ravel().tolist()},
                              separators=(",", ":"), ensure_ascii=False)
            return _TABLE_CODE.format(data=repr(data), source=_plain(t.source))
        return builtin_source(self.kind)


def _plain(text: str) -> str:
    """A file name for a string literal inside generated code: no quotes, braces or backslashes."""
    return "".join(c if c.isprintable() and c not in "\\\"'{}" else "?" for c in str(text))[:200]


def builtin(kind: str) -> FeatureLibrary:
    return FeatureLibrary(kind, dict(FEATURES[kind]))


def automatic(names) -> FeatureLibrary:
    schema = autofeatures.auto_schema(names)
    return FeatureLibrary("automatic", autofeatures.auto_docs(schema), schema=schema)


def of_table(table: stored.FeatureTable) -> FeatureLibrary:
    docs = {n: table.descriptions.get(n, f"column {n!r} of the features table {table.source}") for n in table.names}
    return FeatureLibrary("table", docs, table=table)


def choose_library(store, kind: str, names, agent: str | None = None, recorded: dict | None = None) -> FeatureLibrary:
    """The library of a search on ``store``'s run (module doc). ``kind``: the agent kind
    (``agent_of``); ``agent``: the search config's agent (None or "auto": the run's table wins);
    ``recorded``: a library evolve recorded (summary.json ``config.features``), rebuilt as it was."""
    if recorded:
        return from_record(store, recorded)
    table = stored.load(store) if agent in (None, "auto") else None
    if table is not None:
        return of_table(table)
    return automatic(names) if kind == "automatic" else builtin(kind)


def from_record(store, rec: dict) -> FeatureLibrary:
    """The library ``rec`` (``record()``) names; InputError when the run no longer holds it."""
    kind = rec.get("library")
    if kind == "automatic" and isinstance(rec.get("schema"), dict):
        return FeatureLibrary(kind, autofeatures.auto_docs(rec["schema"]), schema=rec["schema"])
    if kind == "table":
        table = stored.load(store)
        if table is None or table.digest != rec.get("digest"):
            raise InputError("the run's features table is not the one evolve searched with "
                             f"({rec.get('source')}): run evolve again", str(store.run_dir))
        return of_table(table)
    if kind in FEATURES:
        return builtin(kind)
    raise InputError(f"evolve's summary names an unknown feature library {kind!r}", str(store.run_dir))


def recorded_library(summary: dict) -> dict | None:
    """The library an evolve summary (summary.json as a dict) records, or None."""
    rec = (summary.get("config") or {}).get("features")
    return rec if isinstance(rec, dict) else None


def features_line(rec: dict | None) -> str:
    """One line naming a recorded library's features, for `potsearch show` ("" without a record)."""
    if not rec:
        return ""
    names = [str(n) for n in rec.get("features") or []]
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    what = {"table": f"the run's features table {rec.get('source', '')}".rstrip(),
            "automatic": "automatic features of the state text"}.get(rec.get("library"), f"the {rec.get('library')} "
                                                                                         "agent's features")
    return f"features: {what}: {shown}"
