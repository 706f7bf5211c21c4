"""Run every benchmark of the project and print one table: ours, the baseline measured in the same
run, the ratio and the goal.

    python benchmarks/run_all.py [--quick] [--out benchmarks/results/latest.md]

--quick skips the slow parts (the 10^7-sample fit and 10^7-row import, the 4000x16 evolve run, the
local-model collect, the full recovery suite: --quick runs 3 of its 16 laws at a smaller evolve budget).
Each benchmark's own output is kept in the results file below the table.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def plan(quick: bool) -> list[tuple[str, list[str]]]:
    return [
        ("fit", ["fit_bench.py"] + (["--quick"] if quick else [])),
        ("import", ["import_bench.py"] + (["--sizes", "1000000"] if quick else [])),
        ("fit-file", ["fit_file_bench.py"]),
        ("peer-msm", ["peer_msm_bench.py"]),
        ("diagnose", ["loop_calibration.py", "--reps", "200" if quick else "1000", "--drifts", "0.6"]),
        ("evolve", ["evolve_bench.py"] + ([] if quick else ["--full"])),
        ("evolve_async", ["evolve_async.py", "--seconds", "60" if quick else "90"]),
        ("evolve_ray", ["evolve_ray_nodes.py", "--rounds", "40" if quick else "200"]),
        ("evolve_local", ["evolve_local_llm.py", "--seconds", "60" if quick else "120"]),
        ("polish", ["polish_bench.py", "--words", "300" if quick else "600"]),
        ("collect", ["collect_bench.py"] + (["--skip-local"] if quick else [])),
        ("surrogate", ["surrogate_recovery.py"] + (["--seeds", "0"] if quick else [])),
        ("recovery", ["recovery.py"] + (["--quick"] if quick else [])),
    ]


def fmt(x, unit=""):
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, (int, float)):
        ax = abs(x)
        s = f"{x:.3g}" if (ax >= 1e-3 and ax < 1e5) or x == 0 else f"{x:.2e}"
        return s + (f" {unit}" if unit else "")
    return str(x)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "latest.md"))
    ap.add_argument("--only", default=None, help="comma list of benchmarks to run")
    a = ap.parse_args()
    only = set(a.only.split(",")) if a.only else None
    logs = []
    with tempfile.TemporaryDirectory() as d:
        summary = Path(d) / "rows.jsonl"
        env = dict(os.environ, POTSEARCH_BENCH_SUMMARY=str(summary), LITELLM_LOCAL_MODEL_COST_MAP="True")
        for name, args in plan(a.quick):
            if only and name not in only:
                continue
            t = time.perf_counter()
            r = subprocess.run([sys.executable, str(HERE / args[0]), *args[1:]], capture_output=True, text=True,
                               env=env)
            dt = time.perf_counter() - t
            status = "ok" if r.returncode == 0 else f"FAILED (exit {r.returncode})"
            print(f"[{name}] {' '.join(args)}: {status} in {dt:.0f} s", flush=True)
            logs.append(f"### {name}: `python benchmarks/{' '.join(args)}` ({status}, {dt:.0f} s)\n\n```\n"
                        f"{r.stdout.rstrip()}\n{r.stderr.rstrip()[-3000:] if r.returncode else ''}```\n")
        rows = [json.loads(x) for x in summary.read_text().splitlines()] if summary.exists() else []
    head = ["benchmark", "metric", "ours", "baseline (same run)", "ratio", "goal", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["benchmark"], r["metric"], fmt(r["ours"], r.get("unit", "")),
                                          fmt(r["baseline"], r.get("unit", "")), fmt(r["ratio"]), r["goal"],
                                          fmt(r["met"])]) + " |")
    table = "\n".join(lines)
    print(table)
    load = os.getloadavg()[0]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# Benchmarks ({datetime.date.today()}, {os.cpu_count()} cores, 1-min load {load:.1f}"
                   f"{', quick' if a.quick else ''})\n\n{table}\n\n## Outputs\n\n" + "\n".join(logs))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
