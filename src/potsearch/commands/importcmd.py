"""`potsearch import FILE --run runs/NAME`: add transitions to a run store (idempotent)."""
from __future__ import annotations

from ..io import detect_format, import_file, read_rows
from ..store import RunStore


def add_arguments(p):
    p.add_argument("file", help="transitions: .csv/.tsv (source,target[,count]), .jsonl, or the paper's .json")
    p.add_argument("--run", required=True, help="run directory, e.g. runs/NAME (created if missing)")


def run(args) -> int:
    from pathlib import Path

    detect_format(Path(args.file))
    read_rows(args.file)  # validate completely before creating or touching the store
    store = RunStore.create(args.run)
    info = import_file(args.file, store)
    total = store.n_samples()
    print(f"imported {info['added']} samples from {args.file} into {store.path} "
          f"({info['duplicates']} already there; store now holds {total} samples)")
    print(f"next: potsearch fit {args.run}")
    return 0
