"""`potsearch export RUN OUT`: write a run's transitions as CSV/TSV, JSONL or the paper's JSON."""
from __future__ import annotations

from pathlib import Path

from ..io import detect_format, export_counts
from ..store import RunStore


def add_arguments(p):
    p.add_argument("run", help="run directory or store file")
    p.add_argument("out", help="output file; the format follows the extension (.csv .tsv .jsonl .json)")


def run(args) -> int:
    detect_format(Path(args.out))
    store = RunStore.open(args.run, readonly=True)
    n = export_counts(store.counts(), args.out, store.state_meta())
    print(f"exported {n} samples to {args.out}")
    return 0
