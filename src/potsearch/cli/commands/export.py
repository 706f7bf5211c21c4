"""`potsearch export RUN OUT`: write a run's transitions as CSV/TSV, JSONL or the paper's JSON."""
from __future__ import annotations

from pathlib import Path

from potsearch.cli.runarg import add_run
from potsearch.collector.io import detect_format, export_counts
from potsearch.store import RunStore
from potsearch.core.textsafe import printable


def add_arguments(p):
    add_run(p, "run directory or store file")
    p.add_argument("out", help="output file; the format follows the extension (.csv .tsv .jsonl .json)")
    p.epilog = ("CSV/TSV: a state name that starts with = + - @ | # <, tab or CR (or apostrophes before one) "
                "is written with a leading apostrophe, so a spreadsheet shows it as text, never as a formula; "
                "`potsearch import` removes that apostrophe, so the file reads back exactly. JSONL and JSON "
                "hold every name as it is (for other programs, and for names no spreadsheet opens).")


def run(args) -> int:
    detect_format(Path(args.out))
    store = RunStore.open(args.run, readonly=True)
    n = export_counts(store.counts(), args.out, store.state_meta())
    print(printable(f"exported {n} samples to {args.out}"))
    return 0
