"""`potsearch fit FILE.csv` on large transition files against pandas.read_csv of the same file, in one run.

Three families of 10^6-row files (one sample per line, ``source,target``), each timed in a fresh process:
  * ring: sources uniform on a ring of rows/10 states, targets a few states away, 1 % escapes
    (import_bench.py's file);
  * zipf: sources Zipf-distributed over rows/5 states (a long tail seen once), targets anywhere;
  * hubs: a few hundred hub states most moves go through, 5 % escapes, long state names.
For each: `potsearch fit FILE --out DIR` (start-up, read, fit, writing fit/potentials.csv and fit.json)
and `pandas.read_csv(FILE, dtype=str)` (the floor). Goal: fit < 8x the read. The fit's files are checked
(one row per state in potentials.csv, fit.json's state count).

Usage: python benchmarks/fit_file_bench.py [--rows 1000000] [--families ring,zipf,hubs]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402
from import_bench import PANDAS_READ, run_measured, write_csv  # noqa: E402

GOAL = 8.0


def write_family(path: Path, family: str, n_rows: int, seed: int = 0) -> None:
    if family == "ring":
        write_csv(path, n_rows, seed)
        return
    rng = np.random.default_rng(seed)
    if family == "zipf":
        n = max(10, n_rows // 5)
        s = np.minimum(rng.zipf(1.3, n_rows), n) - 1
        t = rng.integers(0, n, n_rows)
        esc = rng.random(n_rows) < 0.01
        fmt = "z{}"
    else:  # hubs
        n = max(10, n_rows // 20)
        hubs = rng.integers(0, n, 300)
        s = np.where(rng.random(n_rows) < 0.7, rng.choice(hubs, n_rows), rng.integers(0, n, n_rows))
        t = np.where(rng.random(n_rows) < 0.7, rng.choice(hubs, n_rows), rng.integers(0, n, n_rows))
        esc = rng.random(n_rows) < 0.05
        fmt = "a state with a rather long descriptive name number {}"
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("source,target\n")
        fh.write("\n".join(f"{fmt.format(a)},{'<escape>' if e else fmt.format(b)}"
                           for a, b, e in zip(s.tolist(), t.tolist(), esc.tolist())) + "\n")


def bench(family: str, n_rows: int, d: Path) -> dict:
    csv = d / f"{family}.csv"
    write_family(csv, family, n_rows)
    out = d / f"fit_{family}"
    py = sys.executable
    fit = run_measured([py, "-m", "potsearch", "fit", str(csv), "--out", str(out)])
    rd = run_measured([py, "-c", PANDAS_READ, str(csv)])
    summary = json.loads((out / "fit.json").read_text())
    rows = sum(1 for _ in open(out / "potentials.csv", encoding="utf-8")) - 1
    return {"family": family, "rows": n_rows, "file_mb": csv.stat().st_size / 2**20, "fit_s": fit[0],
            "fit_peak_gb": fit[2], "pandas_read_s": rd[0], "ratio": fit[0] / rd[0], "states": summary["states"],
            "csv_rows": rows, "consistent": rows == summary["states"], "load": os.getloadavg()[0]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--families", default="ring,zipf,hubs")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for fam in a.families.split(","):
            r = bench(fam, a.rows, Path(d))
            ok = r["ratio"] < GOAL and r["consistent"]
            print(f"{fam}: {r['rows']} rows ({r['file_mb']:.0f} MB), {r['states']} states: potsearch fit "
                  f"{r['fit_s']:.2f} s (peak {r['fit_peak_gb']:.2f} GB), pandas.read_csv {r['pandas_read_s']:.2f} s, "
                  f"ratio {r['ratio']:.2f} (goal < {GOAL:g}) {'OK' if ok else 'MISSED'}; load {r['load']:.1f}")
            emit("fit-file", f"`potsearch fit` of {r['rows']} CSV rows ({fam}) vs pandas.read_csv", r["fit_s"],
                 r["pandas_read_s"], r["ratio"], f"< {GOAL:g}x", ok, "s")


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    main()
