"""Drive one search: load the problem, build the operators, run the rounds with a progress bar,
write the outputs. Used by ``potsearch evolve`` and by tests/benchmarks."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..errors import InputError
from ..store import RunStore
from .config import SearchConfig
from .scoring import FitSettings


class _Progress:
    """A rich progress bar on a terminal; a plain line every ~10% of the rounds otherwise."""

    def __init__(self, total: int, quiet: bool = False):
        self.total, self.quiet = total, quiet
        self.bar = None
        self.last_line = -1
        if quiet:
            return
        from rich.console import Console

        console = Console(stderr=True)
        if console.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("round {task.completed}/{task.total}"), BarColumn(bar_width=20),
                TextColumn("best {task.fields[best]} gap {task.fields[gap]} · {task.fields[rate]} evals/s · "
                           "tokens {task.fields[tokens]} · ${task.fields[cost]}"),
                TimeElapsedColumn(), console=console)
            self.task = self.bar.add_task("evolve", total=total, best="-", gap="-", rate="0", tokens=0, cost="0")
            self.bar.start()

    def __call__(self, search) -> None:
        if self.quiet:
            return
        st = search.status()
        fields = {"best": f"{st['best']:.5f}" if st["best"] is not None else "-",
                  "gap": f"{st['gap']:.5f}" if st["gap"] is not None else "-",
                  "rate": f"{st['evals_per_s']:.0f}", "tokens": st["tokens"], "cost": f"{st['cost']:.4f}"}
        if self.bar is not None:
            self.bar.update(self.task, completed=st["round"], **fields)
            return
        step = max(1, self.total // 10)
        if st["round"] // step != self.last_line or st["round"] == self.total:
            self.last_line = st["round"] // step
            sys.stderr.write(f"round {st['round']}/{self.total}  best {fields['best']}  gap {fields['gap']}  "
                             f"{fields['rate']} evals/s  tokens {fields['tokens']}  ${fields['cost']}\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def evolve(run_dir, cfg: SearchConfig, resume: bool = False, quiet: bool = True, log=None,
           address: str | None = None) -> dict:
    """Run (or resume) the search on ``run_dir``; returns the summary written to evolve/summary.json.
    ``log(message)`` receives the search's one-line notes (e.g. a resume without a checkpoint).
    ``address``: Ray actors score candidates and call models ('local' = an embedded Ray)."""
    from .islands import Search
    from .outputs import write_outputs
    from .problem import load_problem

    run_dir = Path(run_dir)
    if address is not None and cfg.loop != "async":
        raise InputError("--address needs the async loop (loop: async in the config)", cfg.source or None)
    fit = FitSettings(starts=cfg.fit.starts, max_iter=cfg.fit.max_iter, max_seconds=cfg.fit.max_seconds,
                      tol=cfg.fit.tol)
    problem = load_problem(run_dir, seed=cfg.seed, heldout_fraction=cfg.heldout_fraction, agent=cfg.agent, fit=fit)
    if not problem.usable:
        raise InputError("no feature varies across this run's states: nothing to search", str(run_dir))
    if problem.train.n_edges == 0:
        raise InputError("the training split has no transition between kept states: nothing to score",
                         str(run_dir))
    store = RunStore.open(run_dir)
    llm = None
    if cfg.uses_llm:
        from .llm_op import LLMOperator

        llm = LLMOperator(cfg, problem)
    search = Search(cfg, problem, store, llm=llm, log=log)
    progress = _Progress(cfg.rounds, quiet=quiet)
    t0 = time.perf_counter()
    try:
        if cfg.loop == "async":  # steady state, no round barrier (controller.py); else Search.run's rounds
            from .controller import AsyncController

            ctl = AsyncController(search, log=log, ray_address=address)
            ctl.run(resume=resume, on_round=progress)
            search.loop_stats = ctl.stats()
        else:
            search.run(resume=resume, on_round=progress)
            search.loop_stats = {"loop": "lockstep"}
    finally:
        progress.close()
        search.close()
    seconds = time.perf_counter() - t0
    summary = write_outputs(search, seconds)
    store.log_event("evolve", "done", {"rounds": search.round, "seconds": seconds,
                                       "best": summary.get("best", {}).get("train_action")})
    store.close()
    return summary
