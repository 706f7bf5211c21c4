"""Honest warnings on thin data, shared by diagnose and evolve.

* diagnose: what a verdict is missing (pairs seen both ways, cycles among them) and how to get it;
* evolve: a formula may have up to ``gp.max_size`` nodes; with fewer kept states than that it can
  follow the per-state fit instead of a law, so evolve warns; below ``EVOLVE_FLOOR`` states it
  refuses unless ``--force`` (docs/evolve.md, "Thin data").
"""
from __future__ import annotations

from potsearch.core.errors import InputError

EVOLVE_FLOOR = 5          # kept states below which evolve refuses without --force

GET_MORE = ("collect more samples per state so that moves are seen both ways: the per-state protocol with a "
            "larger --samples-per-state, or --resume with a larger --max-samples on a run its budget stopped")


def verdict_advice(loop: dict, pair: dict) -> str | None:
    """What a diagnose verdict lacks, and what to run to get it; None when the loop test ran."""
    if loop.get("p_value") is not None:
        return None
    n_pairs = int(pair.get("n_pairs") or 0)
    if n_pairs == 0:
        return ("missing for a verdict: pairs of states seen in both directions (none here) that close cycles; "
                + GET_MORE)
    return (f"missing for a verdict: a cycle, i.e. three or more states joined pairwise in both directions "
            f"(here {n_pairs} pair(s) both ways, {int(loop.get('ndf') or 0)} independent cycles); " + GET_MORE)


def evolve_check(n_states: int, max_size: int, force: bool = False, where: str | None = None) -> list[str]:
    """Warnings for a search on ``n_states`` kept states; InputError below the floor unless forced."""
    if n_states < EVOLVE_FLOOR and not force:
        raise InputError(f"only {n_states} states in the fit (fewer than {EVOLVE_FLOOR}): any formula with a "
                         f"parameter or two reproduces them, so a search says nothing; collect more states, "
                         f"or add --force to search anyway", where)
    out = []
    if n_states < EVOLVE_FLOOR:
        out.append(f"only {n_states} states (below the floor of {EVOLVE_FLOOR}, searched because of --force): "
                   "the gap and the held-out action say nothing about a law")
    elif n_states < max_size:
        out.append(f"only {n_states} states for formulas of up to {max_size} nodes (gp.max_size): a formula can "
                   "follow the per-state fit instead of a law; treat the gap and the held-out action with care, "
                   "or lower gp.max_size / collect more states")
    return out
