"""`potsearch import FILE RUN` (or `--run RUN`): add transitions to a run store (idempotent); with
`--split-by COLUMN`, one run per value of COLUMN under RUN.

The stage is ``potsearch.stages.importing``; this module parses arguments and prints its result.
"""
from __future__ import annotations

from potsearch.cli.runarg import add_run
from potsearch.core.textsafe import printable
from potsearch.stages.importing import ImportOptions

_D = ImportOptions()
PRINTING = ()   # every flag is an option of the stage (tests/test_cli_api_parity.py)


def add_arguments(p):
    p.add_argument("path", metavar="FILE",
                   help="transitions: .csv/.tsv (source,target[,count]), .jsonl, or the paper's .json")
    add_run(p, "run directory, e.g. runs/NAME (created if missing)")
    p.add_argument("--count-column", default=_D.count_column, metavar="NAME",
                   help="CSV/TSV column holding the counts when it is not called 'count'")
    p.add_argument("--agent", default=_D.agent, metavar="AGENT",
                   help="check every state against an agent (word, fitter or an agent YAML): a fitter state "
                        "must parse as an expression")
    p.add_argument("--skip-invalid", action="store_true", default=_D.skip_invalid,
                   help="with --agent: drop rows with an invalid state (counted in the summary) instead of refusing")
    p.add_argument("--features", default=_D.features, metavar="FILE|MODULE:FUNCTION",
                   help="a features table (CSV: a 'state' column and numeric columns; descriptions in FILE's .yaml "
                        "beside it), or a features function of your own code (module:function, given the list of "
                        "states), stored with the run; docs/own-agent.md")
    p.add_argument("--split-by", default=_D.split_by, metavar="COLUMN",
                   help="the file holds several runs (e.g. a 'model' column): write one run per value of COLUMN, "
                        "RUN/<value> (characters other than letters, digits and . _ + - become _; two values that "
                        "would share a folder are refused)")
    p.epilog = ("CSV/TSV: a state cell that starts with an apostrophe followed by = + - @ | # <, tab, CR or "
                "another apostrophe loses that one apostrophe (the spreadsheet guard `potsearch export` "
                "writes); write ''=x for a state named '=x. Names are stripped of surrounding whitespace.")


def run(args) -> int:
    from potsearch.stages.importing import run as import_transitions

    res = import_transitions(args.path, args.run, ImportOptions(count_column=args.count_column, agent=args.agent,
                                                                 skip_invalid=args.skip_invalid,
                                                                 features=args.features, split_by=args.split_by))
    if args.split_by is not None:
        for value, r in res.runs.items():
            print(printable(f"{args.split_by} {value}: imported {r['added']} samples into {res.folders[value]} "
                            f"({r['duplicates']} already there; store now holds {r.total} samples)"))
        if res["skipped_rows"]:
            print(printable(f"skipped {res['skipped_rows']} row(s) with {res['invalid_states']} state(s) invalid "
                            f"for agent {args.agent!r}"))
        if args.features:
            print("stored the features table in each run")
        print(printable(f"next: potsearch fit {next(iter(res.folders.values()))} (and the other runs), then "
                        f"potsearch compare {' '.join(str(f) for f in list(res.folders.values())[:2])}"))
        return 0
    skipped = (f"; skipped {res.skipped_rows} row(s) with {len(res.invalid_states)} state(s) invalid for agent "
               f"{args.agent!r}" if res.invalid_states else "")
    print(printable(f"imported {res['added']} samples from {args.path} into {res.store} "
                    f"({res['duplicates']} already there; store now holds {res.total} samples{skipped})"))
    if res.features:
        print(printable(f"stored the {res.features}"))
    print(printable(f"next: potsearch fit {args.run}"))
    return 0
