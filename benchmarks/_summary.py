"""Shared by the benchmarks: append result rows for benchmarks/run_all.py.

A row: benchmark, metric, ours, baseline (measured in the same run, or None), ratio, goal, met.
Rows go to the JSON-lines file named by POTSEARCH_BENCH_SUMMARY (run_all.py sets it); otherwise nothing.
"""
from __future__ import annotations

import json
import os


def emit(benchmark: str, metric: str, ours, baseline=None, ratio=None, goal: str = "", met=None,
         unit: str = "") -> None:
    path = os.environ.get("POTSEARCH_BENCH_SUMMARY")
    if not path:
        return
    row = {"benchmark": benchmark, "metric": metric, "ours": ours, "baseline": baseline, "ratio": ratio,
           "goal": goal, "met": met, "unit": unit}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=float) + "\n")
