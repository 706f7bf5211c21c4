"""Shared by the benchmarks: append result rows for benchmarks/run_all.py; run the CLI.

A row: benchmark, metric, ours, baseline (measured in the same run, or None), ratio, goal, met.
Rows go to the JSON-lines file named by POTSEARCH_BENCH_SUMMARY (run_all.py sets it); otherwise nothing.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys


def emit(benchmark: str, metric: str, ours, baseline=None, ratio=None, goal: str = "", met=None,
         unit: str = "") -> None:
    path = os.environ.get("POTSEARCH_BENCH_SUMMARY")
    if not path:
        return
    row = {"benchmark": benchmark, "metric": metric, "ours": ours, "baseline": baseline, "ratio": ratio,
           "goal": goal, "met": met, "unit": unit}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(row, default=float) + "\n")


def cli(*args) -> str:
    """Run ``potsearch ARGS`` in a fresh interpreter; its stdout, or exit with the end of its stderr."""
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    out = subprocess.run([sys.executable, "-m", "potsearch", *map(str, args)], capture_output=True, text=True,
                         env=env)
    if out.returncode:
        raise SystemExit(f"potsearch {' '.join(map(str, args))} failed:\n{out.stderr[-3000:]}")
    return out.stdout
