"""`potsearch import FILE --run runs/NAME`: add transitions to a run store (idempotent)."""
from __future__ import annotations

from potsearch.core.errors import InputError
from potsearch.collector.io import detect_format, drop_states, import_file, invalid_states, read_table
from potsearch.store import RunStore
from potsearch.store.features import read_features_file, save as save_features
from potsearch.core.textsafe import printable


def add_arguments(p):
    p.add_argument("file", help="transitions: .csv/.tsv (source,target[,count]), .jsonl, or the paper's .json")
    p.add_argument("--run", required=True, help="run directory, e.g. runs/NAME (created if missing)")
    p.add_argument("--count-column", default=None, metavar="NAME",
                   help="CSV/TSV column holding the counts when it is not called 'count'")
    p.add_argument("--agent", default=None, metavar="AGENT",
                   help="check every state against an agent (word, fitter or an agent YAML): a fitter state "
                        "must parse as an expression")
    p.add_argument("--skip-invalid", action="store_true",
                   help="with --agent: drop rows with an invalid state (counted in the summary) instead of refusing")
    p.add_argument("--features", metavar="FILE", help="a features table (CSV: a 'state' column and numeric "
                   "columns, descriptions in FILE's .yaml beside it) stored with the run; docs/own-agent.md")
    p.epilog = ("CSV/TSV: a state cell that starts with an apostrophe followed by = + - @ | # <, tab, CR or "
                "another apostrophe loses that one apostrophe (the spreadsheet guard `potsearch export` "
                "writes); write ''=x for a state named '=x. Names are stripped of surrounding whitespace.")


def run(args) -> int:
    from pathlib import Path

    detect_format(Path(args.file))
    table = read_table(args.file, args.count_column)  # validate completely before creating or touching the store
    skipped, kept = "", None
    feats = read_features_file(args.features) if args.features else None  # checked before anything is written
    if args.agent:
        bad = invalid_states(table[0], args.agent)
        if bad and not args.skip_invalid:
            first, why = next(iter(bad.items()))
            raise InputError(f"{len(bad)} of {len(table[0])} states are not valid for agent {args.agent!r}, "
                             f"first {first!r}: {why} (fix them, or pass --skip-invalid to drop their rows)",
                             args.file)
        if bad:
            table, n_rows, kept = drop_states(table, set(bad))
            skipped = f"; skipped {n_rows} row(s) with {len(bad)} state(s) invalid for agent {args.agent!r}"
    store = RunStore.create(args.run)
    info = import_file(args.file, store, table=table, rows=kept)
    total = store.n_samples()
    print(printable(f"imported {info['added']} samples from {args.file} into {store.path} "
                    f"({info['duplicates']} already there; store now holds {total} samples{skipped})"))
    if feats is not None:
        save_features(store, feats)
        print(printable(f"stored the {feats.describe()}"))
    print(printable(f"next: potsearch fit {args.run}"))
    return 0
