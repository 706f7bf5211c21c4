"""Import benchmark: `potsearch import` of a large CSV against pandas.read_csv of the same file, in one run.

For each size (default 10^6 and 10^7 rows) it writes a transitions CSV (one sample per line, ``source,target``,
local moves on size/10 states, 1 % escapes), then times, each in a fresh process with its peak memory:
  * ``potsearch import FILE --run DIR`` (start-up included; goal for 10^7 rows: <= 30 s);
  * ``pandas.read_csv(FILE)`` with string columns (the floor: reading the file and nothing else);
and prints their ratio, then checks the run (``potsearch status --json``: samples stored = rows, the import
stage recorded) and that a second import of the same file adds nothing.

Usage: python benchmarks/import_bench.py [--sizes 1000000,10000000] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402

PANDAS_READ = ("import sys, pandas as pd; df = pd.read_csv(sys.argv[1], dtype=str, keep_default_na=False); "
               "print(len(df))")


def write_csv(path: Path, n_rows: int, seed: int = 0) -> None:
    """n_rows samples: a source on a ring of n_rows/10 states, a target a few states away, 1 % escapes."""
    rng = np.random.default_rng(seed)
    n_states = max(10, n_rows // 10)
    s = rng.integers(0, n_states, n_rows)
    t = (s + rng.integers(-3, 4, n_rows)) % n_states
    esc = rng.random(n_rows) < 0.01
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("source,target\n")
        step = 1_000_000
        for i in range(0, n_rows, step):
            lines = [f"w{a},{'<escape>' if e else f'w{b}'}" for a, b, e in
                     zip(s[i:i + step].tolist(), t[i:i + step].tolist(), esc[i:i + step].tolist())]
            fh.write("\n".join(lines) + "\n")


def run_measured(cmd: list[str]) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds, peak resident GB, stdout) of a command in a fresh process (wait4)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out_chunks = p.stdout.read()
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}): {err.decode()[-3000:]}")
    return wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024 / 1024, out_chunks.decode()


def bench(n_rows: int, d: Path) -> dict:
    csv = d / f"rows_{n_rows}.csv"
    t = time.perf_counter()
    write_csv(csv, n_rows)
    t_write = time.perf_counter() - t
    run = d / f"run_{n_rows}"
    py = sys.executable
    imp = run_measured([py, "-m", "potsearch", "import", str(csv), "--run", str(run)])
    rd = run_measured([py, "-c", PANDAS_READ, str(csv)])
    again = run_measured([py, "-m", "potsearch", "import", str(csv), "--run", str(run)])
    status = json.loads(run_measured([py, "-m", "potsearch", "status", str(run), "--json"])[3])
    return {"rows": n_rows, "file_mb": csv.stat().st_size / 2**20, "write_csv_s": t_write,
            "import_s": imp[0], "import_cpu_s": imp[1], "import_peak_gb": imp[2],
            "pandas_read_s": rd[0], "pandas_read_cpu_s": rd[1], "pandas_peak_gb": rd[2],
            "ratio": imp[0] / rd[0], "cpu_ratio": imp[1] / rd[1], "reimport_s": again[0],
            "reimport_added_nothing": "imported 0 samples" in again[3],
            "stored_samples": status["samples"], "import_stage": status["stages"].get("import"),
            "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    res = {}
    with tempfile.TemporaryDirectory() as d:
        for n in [int(x) for x in a.sizes.split(",") if x]:
            print(f"  {n} rows ...", file=sys.stderr, flush=True)
            r = res[n] = bench(n, Path(d))
            ok = r["stored_samples"] == n and r["reimport_added_nothing"] and r["import_stage"] is not None
            print(f"{n} rows ({r['file_mb']:.0f} MB): potsearch import {r['import_s']:.1f} s wall, "
                  f"{r['import_cpu_s']:.1f} s CPU, peak {r['import_peak_gb']:.2f} GB; pandas.read_csv "
                  f"{r['pandas_read_s']:.1f} s wall, {r['pandas_read_cpu_s']:.1f} s CPU, "
                  f"peak {r['pandas_peak_gb']:.2f} GB; "
                  f"ratio {r['ratio']:.2f} (CPU {r['cpu_ratio']:.2f}); second import {r['reimport_s']:.1f} s "
                  f"adds nothing: {r['reimport_added_nothing']}; stored {r['stored_samples']} samples, import stage "
                  f"recorded: {r['import_stage'] is not None}; load {r['load']:.1f}"
                  + ("" if ok else "  INCONSISTENT"))
            emit("import", f"`potsearch import` of {n} CSV rows vs pandas.read_csv", r["import_s"],
                 r["pandas_read_s"], r["ratio"], "<= 30 s at 10^7 rows",
                 r["import_s"] <= 30 and ok if n >= 10_000_000 else ok, "s")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    main()
