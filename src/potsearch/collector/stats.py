"""What a collection did: the paper's Table 3 row of a run, usage, and the summary text."""
from __future__ import annotations

from potsearch.store import RunStore


def stored_samples(store: RunStore) -> list[tuple]:
    return store.sample_records()


def stored_usage(store: RunStore) -> tuple[int, int, float]:
    return store.usage()


def table3(store: RunStore) -> dict:
    """The paper's Table 3 row for this run, plus pairs seen both ways and the escape rate."""
    counts = store.counts()
    src, dst, cnt = counts.src, counts.dst, counts.count
    visits = counts.visits()
    valid = dst >= 0
    edge = valid & (dst != src)
    edges = set(zip(src[edge].tolist(), dst[edge].tolist()))
    both = sum(1 for (a, b) in edges if a < b and (b, a) in edges)
    used = set(src.tolist()) | set(dst[valid].tolist())
    total = int(cnt.sum())
    escapes = int(cnt[~valid].sum())
    selfl = int(cnt[valid & (dst == src)].sum())
    reasons = store.escape_reasons(limit=8)
    usage = store.usage_stats()
    return {
        "samples": total,
        "unique_states": len(used),
        "unique_transitions": len(edges),
        "states_sampled_gt1": int((visits > 1).sum()),
        "escape_rate": escapes / total if total else 0.0,
        "self_loop_rate": selfl / total if total else 0.0,
        "pairs_both_ways": both,
        "escape_reasons": reasons,
        **usage,
    }


def format_summary(summary: dict, run: str) -> str:
    s = summary
    head = f"{'Agent':<32}{'Transition samples':>20}{'Unique states':>15}{'Unique transitions':>20}{'States sampled >1':>19}{'Escape rate':>13}"
    who = f"{s['agent']} (SURROGATE)" if s["provider"] == "surrogate" else f"{s['agent']} ({s['provider']}, {s['mode']})"
    row = (f"{who[:31]:<32}{s['samples']:>20,}{s['unique_states']:>15,}{s['unique_transitions']:>20,}"
           f"{s['states_sampled_gt1']:>19,}{s['escape_rate']:>12.1%}")
    lines = [head, row,
             f"pairs seen both ways: {s['pairs_both_ways']}   self-loops: {s['self_loop_rate']:.1%}   "
             f"new samples: {s['new_samples']} in {s['seconds']:.1f}s ({s['samples_per_second'] or 0:.1f}/s)   "
             f"tokens: {s['tokens_in'] + s['tokens_out']:,}   cost: ${s['cost']:.4f}   failed calls: {s['failed_calls']}"
             + (f"   rate-limited (429): {s['rate_limited']}" if s.get("rate_limited") else ""),
             f"stopped: {s['stop']}"]
    if s.get("escape_reasons"):
        lines.append("escapes: " + ", ".join(f"{k} {v}" for k, v in s["escape_reasons"].items()))
    if s.get("adaptive"):
        lines.append(adaptive_line(s["adaptive"]))
    if s.get("note"):
        lines.append(s["note"])
    lines.append(next_step(s, run))
    return "\n".join(lines)


def adaptive_line(a: dict) -> str:
    """The adaptive protocol's verdict: fitted states within the target SE, the max SE, the open states."""
    se = "-" if a["max_se"] is None else f"{a['max_se']:.3f}"
    saved = a.get("calls_saved_vs_per_state")
    line = (f"adaptive: {a['within_target']} of {a['fitted_states']} fitted states within SE {a['target_se']:g} "
            f"after {a['rounds']} rounds; max SE {se}; calls saved vs per_state for as many within (estimate): "
            f"{'-' if saved is None else saved}")
    if a["n_open"]:
        line += (f"\nopen states (not within the target, {a['n_open']}): {', '.join(a['open_states'][:12])}"
                 + (" …" if a["n_open"] > 12 else ""))
    return line


def next_step(s: dict, run: str) -> str:
    """What to run next, or why nothing can be fitted yet: a run whose samples are all escapes, or that
    never left one state, has no transition between states to fit."""
    if not s["samples"] or not s["unique_transitions"]:
        why = ("every sample is an escape" if s["samples"] and s["escape_rate"] >= 1.0 else
               "no sample yet" if not s["samples"] else "no move between two different states yet")
        return (f"nothing to fit yet: {why} (the agent's replies are not valid states: check the prompt and the "
                f"escape reasons above, or --resume with a larger --max-samples)")
    # with no state sampled twice the default --min-visits 1 would leave nothing to fit
    return f"next: potsearch fit {run}" + ("" if s["states_sampled_gt1"] else " --min-visits 0")
