"""The adaptive protocol: sampling in rounds, each round allocated by the fit's own standard errors.

Round r's positions are ``a:{r}:{state_key}:{j}`` (j = 0.. the samples round r gives the state). Round 0 is
planned from no sample (it explores the initial states); round r + 1 is planned once every position of
round r is stored, by :func:`potsearch.science.allocation.allocate` on the counts of rounds <= r (a refit,
the states' standard errors, the allocation of ``round_size`` samples). The counts are built from the
stored (source, outcome) pairs with the states in sorted key order, so a plan depends on the samples
and the seed only, never on the order replies arrived in: ``restore`` rebuilds the counts from the stored
samples of the finished rounds < R (R: the last round with a stored sample), plans round R again (the
same positions) and finishes it before it plans R + 1. With a sample budget (``horizon``, --max-samples) a
round is planned for the samples the collection has left (the allocation's triage: when the open states need
more than that, the ones that need the fewest are designed for); a resume with another --max-samples plans
its unfinished round for that budget (what is stored stays). The collection ends when the stopping rule holds
(every fitted state meets ``target_se`` and no state is still explored), when a round plans nothing, or
when a budget runs out; ``summary`` says which fitted states did not meet the target.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from potsearch.collector.protocols import Protocol
from potsearch.core.errors import InputError
from potsearch.science.allocation import FITTED, AllocationConfig, allocate
from potsearch.store import ESCAPE, Counts

ROUND_SIZE = 100        # samples a round when --round-size is not given
OPEN_LISTED = 50        # open states named in the summary (the count is always given)


def parse_uid(uid: str) -> int | None:
    """The round of an adaptive position (None for another protocol's uid)."""
    if not uid.startswith("a:"):
        return None
    try:
        return int(uid.split(":", 2)[1])
    except (IndexError, ValueError):
        return None


def make_adaptive(seed: int, target_se: float | None, round_size: int | None,
                  horizon: int | None = None) -> "Adaptive":
    """The adaptive protocol with the plan's options (None: the allocation's target SE, ``ROUND_SIZE``);
    ``horizon``: the collection's sample budget (--max-samples), which the allocation's triage plans for."""
    return Adaptive(seed, AllocationConfig().target_se if target_se is None else target_se,
                    ROUND_SIZE if round_size is None else round_size, horizon)


class Adaptive(Protocol):
    """Rounds of ``round_size`` samples allocated by ``allocate`` (module docstring)."""

    name = "adaptive"

    def __init__(self, seed: int, target_se: float, round_size: int, horizon: int | None = None):
        super().__init__(seed)
        self.horizon = horizon
        if not target_se > 0:
            raise InputError(f"--target-se must be > 0, got {target_se}")
        if round_size < 1:
            raise InputError(f"--round-size must be >= 1, got {round_size}")
        self.config = AllocationConfig(target_se=float(target_se))
        self.round_size = int(round_size)
        self.initial: list[str] = []
        self.records: dict[int, list[tuple[str, str | None]]] = {}   # round -> stored (source, target|None)
        self.round = -1
        self.queue: deque = deque()          # (uid, key) of the current round not yet handed out
        self.outstanding: set[str] = set()   # uids of the current round not stored yet
        self.over = False
        self.alloc = None                    # the last round's allocation (progress, summary)
        self.status_text = ""

    # ---------------------------------------------------------------- counts and plans
    def counts(self, below: int | None = None) -> Counts:
        """The counts of the stored samples of rounds < ``below`` (all rounds: None), states sorted by key
        (the initial states included, unsampled)."""
        pairs = [p for r, recs in self.records.items() if below is None or r < below for p in recs]
        names = sorted(set(self.initial) | {s for s, _ in pairs} | {t for _, t in pairs if t is not None})
        at = {s: i for i, s in enumerate(names)}
        agg: dict[tuple[int, int], int] = {}
        for s, t in pairs:
            k = (at[s], ESCAPE if t is None else at[t])
            agg[k] = agg.get(k, 0) + 1
        keys = sorted(agg)
        return Counts(names, np.array([k[0] for k in keys], dtype=np.int64),
                      np.array([k[1] for k in keys], dtype=np.int64),
                      np.array([agg[k] for k in keys], dtype=np.int64))

    def positions(self, r: int) -> list[tuple[str, str]]:
        """Round r's positions, from the counts of rounds < r (interleaved: the j-th sample of every state
        before the (j+1)-th of any, so a budget that ends mid-round still spreads over the states)."""
        counts = self.counts(below=r)
        left = None if self.horizon is None or counts.total >= self.horizon else self.horizon - counts.total
        self.alloc = a = allocate(counts, self.round_size, self.config, self.seed, remaining=left)
        self.status_text = self._status(counts, a)
        if a.done:
            return []
        plan = [(s, int(k)) for s, k in zip(a.states, a.samples) if k > 0]
        top = max((k for _, k in plan), default=0)
        return [(f"a:{r}:{s}:{j}", s) for j in range(top) for s, k in plan if j < k]

    def _start(self, r: int, done_uids: set[str] = frozenset()) -> None:
        self.round = r
        pos = self.positions(r)
        if not pos:
            self.over = True
        todo = [(u, k) for u, k in pos if u not in done_uids]
        self.queue = deque(todo)
        self.outstanding = {u for u, _ in todo}

    def _saved(self, counts: Counts, a) -> int | None:
        """Calls a per_state collection would need to bring as many states within the target as are now,
        minus the calls made. A rough estimate, state by state: SE_f^2 N_f is f's per-sample variance and
        moves_f / N_f its moves per sample, so K samples a state bring f within once K >= SE_f^2 N_f /
        target^2, min_samples and min_moves N_f / moves_f; per_state gives every sampled state the k-th
        smallest of those (k: the states within now). It leaves out what neighbours' samples do to a state's
        SE, which favours per_state when adaptive has sampled a state's neighbours heavily. None while no
        state is within."""
        c = self.config
        fitted = (a.kind == FITTED) & np.isfinite(a.se)
        k = int((fitted & a.met).sum())
        if not k:
            return None
        n = a.visits[fitted].astype(float)
        need = np.maximum.reduce([a.se[fitted] ** 2 * n / c.target_se ** 2, np.full(len(n), float(c.min_samples)),
                                  c.min_moves * n / np.maximum(a.moves[fitted], 1.0)])
        per = np.sort(need)[k - 1]
        return int(round(int((a.visits > 0).sum()) * per - counts.total))

    def _status(self, counts: Counts, a) -> str:
        se = f"{a.max_se:.3f}" if np.isfinite(a.max_se) else "-"
        saved = self._saved(counts, a)
        within = int(((a.kind == FITTED) & a.met).sum())
        return (f"round {self.round} · max SE {se} (target {self.config.target_se:g}) · "
                f"within {within}/{int((a.kind == FITTED).sum())} · open {len(a.open_states)} · "
                f"saved vs per_state {'-' if saved is None else f'{saved:,}'}")

    # ---------------------------------------------------------------- the protocol
    def restore(self, initial, stored):
        for text, key, meta in initial:
            self.add_state(key, text, meta)
            self.initial.append(key)
        done_uids = set()
        for uid, skey, stext, tkey, ttext, tmeta in stored:
            self.add_state(skey, stext, None)
            if tkey is not None:
                self.add_state(tkey, ttext, tmeta)
            r = parse_uid(uid)
            if r is None:
                continue
            self.records.setdefault(r, []).append((skey, tkey))
            done_uids.add(uid)
        last = max(self.records, default=0)
        self._start(last, done_uids)        # rounds < last are finished: last is planned again, then finished

    def take(self, n):
        if not self.queue and not self.outstanding and not self.over:
            self._start(self.round + 1)
        return self._drain(self.queue, n)

    def done(self, task, key, text, meta):
        self.outstanding.discard(task.uid)
        r = parse_uid(task.uid)
        self.records.setdefault(r, []).append((task.source_key, key))
        if key is not None:
            self.add_state(key, text, meta)

    def failed(self, task):
        self.queue.appendleft((task.uid, task.source_key))

    def finished(self):
        return self.over and not self.queue

    def status(self) -> str:
        return self.status_text

    def summary(self) -> dict:
        """The stopping rule on every stored sample: max SE, the fitted states that did not meet the target."""
        counts = self.counts()
        a = allocate(counts, 0, self.config, self.seed)
        fitted = a.kind == FITTED
        open_ = a.open_states
        return {
            "target_se": self.config.target_se, "round_size": self.round_size, "rounds": max(self.records, default=-1) + 1,
            "fitted_states": int(fitted.sum()), "within_target": int((fitted & a.met).sum()),
            "open_states": open_[:OPEN_LISTED], "n_open": len(open_),
            "max_se": None if not np.isfinite(a.max_se) else round(float(a.max_se), 4),
            "target_met": bool(a.done), "calls_saved_vs_per_state": self._saved(counts, a),
        }
