"""Drive one search: load the problem, build the operators, run the rounds with progress shown,
write the outputs. Used by ``potsearch evolve`` and by tests/benchmarks."""
from __future__ import annotations

import time
from pathlib import Path

from potsearch.core.errors import InputError
from potsearch.core.progress import round_progress
from potsearch.store import RunStore
from potsearch.search.config import SearchConfig


def evolve(run_dir, cfg: SearchConfig, resume: bool = False, quiet: bool = True, log=None,
           address: str | None = None, ray_timeout: float | None = None) -> dict:
    """Run (or resume) the search on ``run_dir``; returns the summary written to evolve/summary.json.
    ``log(message)`` receives the search's one-line notes (e.g. a resume without a checkpoint).
    ``address``: Ray actors score candidates and call models ('local' = an embedded Ray), joined within
    ``ray_timeout`` seconds (core/raycluster.py)."""
    from potsearch.search.controller import SearchLoop
    from potsearch.search.islands import Search
    from potsearch.search.outputs import write_outputs
    from potsearch.search.problem import load_problem

    run_dir = Path(run_dir)
    if address is not None and cfg.loop != "async":
        raise InputError("--address needs the async loop (loop: async in the config)", cfg.source or None)
    problem = load_problem(run_dir, seed=cfg.seed, heldout_fraction=cfg.heldout_fraction, agent=cfg.agent,
                           fit=cfg.fit)
    for n in problem.notes:  # e.g. states without a row in the run's features table
        log and log(n)
    if not problem.usable:
        raise InputError("no feature varies across this run's states: nothing to search", str(run_dir))
    if problem.train.n_edges == 0:
        raise InputError("the training split has no transition between kept states: nothing to score",
                         str(run_dir))
    store = RunStore.open(run_dir)
    llm = None
    if cfg.uses_llm:
        from potsearch.search.llm_op import LLMOperator

        llm = LLMOperator(cfg, problem)
    search = Search(cfg, problem, store, llm=llm, log=log)
    progress = round_progress(cfg.rounds, quiet=quiet)  # bar or plain lines with an ETA (progress.py)
    t0 = time.perf_counter()
    try:
        loop = SearchLoop(search, log=log, ray_address=address, ray_timeout=ray_timeout)   # loop: lockstep is its ordered mode
        loop.run(resume=resume, on_round=progress)
        search.loop_stats = loop.stats()
    finally:
        progress.close()
        search.close()
    seconds = time.perf_counter() - t0
    summary = write_outputs(search, seconds)
    store.log_event("evolve", "done", {"rounds": search.round, "seconds": seconds,
                                       "best": summary.get("best", {}).get("train_action")})
    store.close()
    return summary
