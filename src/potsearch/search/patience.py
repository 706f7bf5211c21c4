"""When a search stops improving: the early stop of ``evolve --patience N`` (config key ``patience``).

The law a reader is shown is chosen from the Pareto front of the search (training action x
complexity; ``law.selection``), and the lowest training action is the front's last point. So a
search has *improved* in a round when a candidate registered in that round lowers the front: its
training action ``a`` is below ``ref - patience_tol x |ref|``, where ``ref`` is the lowest training
action of every earlier candidate of equal or lower complexity (``+inf`` when there is none). A
drop within the tolerance (default 1e-4: 0.01 % of the action) still moves the front but does not
count: a front that only creeps by rounding-sized steps has converged. When ``patience`` rounds in a
row have had no improvement, the search stops (``exhausted``); the rounds are counted on the
search's global clock (controller.py), so the lockstep and async loops stop after the same number
of rounds without improvement.

The tracker is kept in every checkpoint (``state``), so ``--resume`` counts on from where the
search stood: after a patience stop, a resume with the same ``--patience`` stops again at once (it
has converged; the summary says so), a larger ``--patience`` searches until that many rounds have
passed since the last improvement, and ``--patience 0`` searches until ``--rounds``. A checkpoint
written before this existed has its front rebuilt from the restored populations and its last
improvement read from the logbook (the last round that lowered the lowest training action).
"""
from __future__ import annotations

import bisect
import math


class Convergence:
    def __init__(self, patience: int = 0, tol: float = 1e-4):
        self.patience = int(patience)
        self.tol = float(tol)
        self.front: list[tuple[int, float]] = []   # (complexity ascending, training action strictly descending)
        self.last = 0                              # the last round with an improvement
        self.pending = False                       # an improvement since the last round was recorded
        self.stopped = False                       # the search loop stopped (or did not go on) for patience

    # ------------------------------------------------------------------ what the database calls
    def offer(self, cands) -> None:
        """Registered candidates: each scored one may lower the front."""
        for p in cands:
            a = p.train_action
            if p.ok and a is not None and math.isfinite(a):
                self._add(int(p.complexity), float(a))

    def end_round(self, rnd: int) -> None:
        if self.pending:
            self.last = rnd
            self.pending = False

    def exhausted(self, rnd: int) -> bool:
        """True when early stopping is on and ``patience`` rounds have passed without an improvement."""
        return self.patience > 0 and rnd - self.last >= self.patience

    def reason(self, rnd: int) -> dict:
        """What evolve/summary.json says about the stop (``rnd``: the last round searched): patience when
        the loop stopped for it (``stopped``), else the rounds were done."""
        if self.stopped:
            return {"reason": "patience", "round": rnd, "last_improvement": self.last, "patience": self.patience,
                    "text": f"patience (no improvement for {rnd - self.last} rounds)"}
        return {"reason": "rounds", "round": rnd, "last_improvement": self.last, "patience": self.patience,
                "text": "rounds done"}

    # ------------------------------------------------------------------ the front
    def _add(self, c: int, a: float) -> None:
        cs = [x[0] for x in self.front]
        i = bisect.bisect_right(cs, c)            # front[:i]: the points of complexity <= c
        ref = self.front[i - 1][1] if i else math.inf
        if a >= ref:
            return
        if not math.isfinite(ref) or a < ref - self.tol * abs(ref):
            self.pending = True
        if i and self.front[i - 1][0] == c:
            i -= 1
            del self.front[i]
        j = i
        while j < len(self.front) and self.front[j][1] >= a:
            j += 1
        self.front[i:j] = [(c, a)]

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return {"front": [[c, a] for c, a in self.front], "last": self.last}

    def restore(self, state: dict | None, rnd: int, cands=(), logbook=()) -> None:
        """From a checkpoint's ``patience`` entry. None (a checkpoint written before the tracker existed):
        the front of ``cands`` (the restored candidates), and as the last improvement the last round of
        ``logbook`` whose lowest training action fell by more than the tolerance (the logbook keeps no
        front: the lowest action is what it can tell)."""
        self.front, self.pending = [], False
        if state is None:
            self.offer(cands)
            self.pending, self.last = False, 0
            low = math.inf
            for rec in logbook:
                vals = [v for v in (rec.get("best") or ()) if v is not None]
                b = min(vals) if vals else math.inf
                if b < low - self.tol * abs(low) or (not math.isfinite(low) and math.isfinite(b)):
                    self.last = int(rec.get("round", 0))
                low = min(low, b)
            return
        self.front = [(int(c), float(a)) for c, a in state["front"]]
        self.last = int(state["last"])
