"""What a stage left out of its graph, and why: one line for the summary, a dict for fit.json and the report.

The graph builder (graph.py) keeps the states sampled more than ``--min-visits`` times (valid samples
only under ``--escapes condition``); a move
that starts or ends at a dropped state is not an edge. Escapes and self-loops are never edges
(they count in N(f) under ``low_reject``). Nothing here changes the fit: it only tells the reader.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

SHOW_NAMES = 3


@dataclass(frozen=True)
class Dropped:
    min_visits: int
    states_in_input: int
    states_kept: int
    states_dropped: int
    dropped_names: list[str] = field(default_factory=list)   # the most-involved dropped states first
    moves_dropped: int = 0        # samples f->g (g != f) with f or g dropped
    edges_dropped: int = 0        # distinct f->g pairs among those
    moves_into_dropped: int = 0   # samples from a kept state into a dropped one
    escapes: int = 0              # samples that left the state space (not edges)
    self_loops: int = 0           # samples that stayed (not edges)
    samples: int = 0
    escape_convention: str = "count"   # "condition": escapes are not samples of N(f)

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def anything(self) -> bool:
        return bool(self.states_dropped or self.escapes)


def dropped_states(counts, min_visits: int, escapes: str = "count") -> Dropped:
    """Count what ``build_graph(counts, min_visits=..., escapes=...)`` leaves out."""
    from potsearch.store import ESCAPE

    visits = counts.visits()
    n_all = len(counts.states)
    src, dst, cnt = np.asarray(counts.src), np.asarray(counts.dst), np.asarray(counts.count)
    if escapes == "condition":
        visits = visits - np.bincount(src[dst == ESCAPE], weights=cnt[dst == ESCAPE], minlength=n_all).astype(np.int64)
    appearing = np.zeros(n_all, dtype=bool)
    appearing[src] = True
    appearing[dst[dst >= 0]] = True
    keep = visits > min_visits
    dropped = appearing & ~keep
    esc = dst == ESCAPE
    move = ~esc & (dst != src) & (cnt > 0)
    lost = move & (dropped[src] | dropped[np.where(esc, 0, dst)])
    into = move & keep[src] & dropped[np.where(esc, 0, dst)]
    # the dropped states most involved in moves first, so the line names the ones a reader misses
    w = cnt[lost].astype(float)
    involvement = (np.bincount(src[lost], weights=w, minlength=n_all)
                   + np.bincount(dst[lost], weights=w, minlength=n_all))
    idx = np.flatnonzero(dropped)
    idx = idx[np.lexsort((idx, -involvement[idx]))]
    return Dropped(
        min_visits=int(min_visits), states_in_input=int(appearing.sum()), states_kept=int((appearing & keep).sum()),
        states_dropped=int(dropped.sum()), dropped_names=[counts.states[i] for i in idx[:SHOW_NAMES]],
        moves_dropped=int(cnt[lost].sum()), edges_dropped=int(len(np.unique(src[lost].astype(np.int64) * n_all + dst[lost]))),
        moves_into_dropped=int(cnt[into].sum()), escapes=int(cnt[esc].sum()),
        self_loops=int(cnt[~esc & (dst == src)].sum()), samples=int(cnt.sum()), escape_convention=escapes,
    )


def _short(name: str, width: int = 24) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def describe(d: Dropped | dict) -> str:
    """One line: which states were dropped and why, the moves lost with them, escapes and self-loops."""
    if isinstance(d, dict):
        d = Dropped(**d)
    parts = []
    if d.states_dropped:
        names = ", ".join(_short(n) for n in d.dropped_names)
        more = f" and {d.states_dropped - len(d.dropped_names)} more" if d.states_dropped > len(d.dropped_names) else ""
        parts.append(
            f"dropped {d.states_dropped} of {d.states_in_input} states sampled <= {d.min_visits} time(s) "
            f"(--min-visits {d.min_visits}; 0 keeps all): {names}{more}; with them {d.moves_dropped} move(s) on "
            f"{d.edges_dropped} edge(s), {d.moves_into_dropped} of them into a dropped state")
    else:
        parts.append(f"kept all {d.states_in_input} states (--min-visits {d.min_visits})")
    if d.escape_convention == "condition":
        parts.append(f"{d.escapes} escape(s) left out of N(f) (--escapes condition); {d.self_loops} self-loop(s) "
                     f"count as samples, not edges")
    elif d.escapes or d.self_loops:
        parts.append(f"{d.escapes} escape(s) and {d.self_loops} self-loop(s) count as samples, not edges")
    return "; ".join(parts)


def annotate_fit(out, summary: dict, counts, min_visits: int, escapes: str = "count") -> Dropped:
    """Add ``dropped`` to a written fit's summary and to its fit.json (what ``potsearch report`` reads)."""
    import json
    from pathlib import Path

    from potsearch.core.atomic import write_json

    d = dropped_states(counts, min_visits, escapes)
    summary["dropped"] = d.as_dict()
    from potsearch.store.rundir import FIT_JSON

    path = Path(out) / FIT_JSON
    if path.is_file():
        saved = json.loads(path.read_text())
        saved["dropped"] = d.as_dict()
        write_json(path, saved)
    return d
