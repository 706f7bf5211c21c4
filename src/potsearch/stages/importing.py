"""The import stage (``potsearch import``, ``ps.import_transitions``; ``import`` is a Python keyword, hence
this module's name): add a transitions file to a run store, idempotently.

``run(path, run_dir, ImportOptions(...)) -> ImportResult``. The file is read and checked completely
before the store is created or touched (``collector.io``: formats, the spreadsheet guard, duplicates by
row uid); with ``agent``, every state is checked against the agent (a fitter state must parse as an
expression) and the import is refused, or with ``skip_invalid`` the rows with an invalid state are left
out. The store is written under the run's writer lock; ``import_file`` records the stage.

With ``split_by`` (a column, or a JSONL / paper-JSON field) the file holds several runs' transitions, for
instance several models': RUN becomes a parent folder and each value of the column its own run
RUN/<value> (``collector.split``: how a value becomes a folder name, never merging two values). The whole
file, every value and every folder is checked before any run is created; each run's import is idempotent
like a plain import (row i of the file is the same samples in whichever run it lands).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from potsearch.core.errors import InputError
from potsearch.core.stageopts import SummaryView


@dataclass(frozen=True)
class ImportOptions:
    """Options of the import stage (the CLI's and the API's defaults). ``count_column``: the CSV/TSV
    column holding the counts when it is not called 'count'; ``agent``: word, fitter or an agent YAML to
    check every state against; ``skip_invalid``: with ``agent``, drop the rows with an invalid state
    instead of refusing the file; ``features``: a features table (CSV: a ``state`` column and numeric
    columns; descriptions in a YAML beside it) or ``module:function`` (a features function of your own code,
    agents/featurefunc.py), stored with the run (store/features.py); ``split_by``: the
    column (or JSON field) naming each row's run: one run per value, RUN/<value> (module doc)."""

    count_column: str | None = None
    agent: str | None = None
    skip_invalid: bool = False
    features: str | None = None
    split_by: str | None = None


@dataclass
class ImportResult(SummaryView):
    """``summary``: what was imported (file, samples_in_file, added, duplicates); ``store``: the store
    file; ``total``: the samples it holds now; ``skipped_rows`` / ``invalid_states`` (state -> why): what
    ``skip_invalid`` left out."""

    summary: dict
    store: Path
    total: int
    skipped_rows: int = 0
    invalid_states: dict = field(default_factory=dict)
    features: str | None = None      # the features table stored, described (None: none given)

    def __repr__(self) -> str:
        s = self.summary
        return (f"ImportResult(added={s['added']}, duplicates={s['duplicates']}, total={self.total}, "
                f"skipped_rows={self.skipped_rows})")


@dataclass
class SplitImportResult(SummaryView):
    """What ``split_by`` did: ``runs`` (value -> that run's :class:`ImportResult`), ``folders`` (value -> its
    run folder), ``summary`` (file, split_by, and per value its folder, added, duplicates, total)."""

    summary: dict
    runs: dict
    folders: dict

    @property
    def total(self) -> int:
        return sum(r.total for r in self.runs.values())

    def __repr__(self) -> str:
        return f"SplitImportResult({len(self.runs)} runs: {', '.join(map(repr, self.runs))})"


def run(path, run_dir, options: ImportOptions = ImportOptions()):
    """Import the transitions file ``path`` into the run (or store file) ``run_dir``, created if needed.
    Returns an :class:`ImportResult`, or with ``split_by`` a :class:`SplitImportResult`."""
    from potsearch.collector.io import detect_format, drop_states, import_file, invalid_states, read_split, read_table
    from potsearch.store import RunStore

    detect_format(Path(path))
    groups = None          # validate completely before creating or touching any store
    if options.split_by is not None:
        table, groups = read_split(path, options.count_column, options.split_by)
    else:
        table = read_table(path, options.count_column)
    feats = None
    if options.features:
        from potsearch.agents.featurefunc import read_features

        feats = read_features(options.features, list(table[0]))   # checked completely before anything is written
        have = set(feats.states)
        miss = [n for n in table[0] if n not in have]
        if miss:
            shown = ", ".join(repr(s)[:40] for s in miss[:5]) + (", ..." if len(miss) > 5 else "")
            raise InputError(f"{len(miss)} of the {len(table[0])} states in {Path(path).name} have no row in the "
                             f"features table: {shown}", str(options.features))
    bad, skipped, kept = {}, 0, None
    if options.agent:
        bad = invalid_states(table[0], options.agent)
        if bad and not options.skip_invalid:
            first, why = next(iter(bad.items()))
            raise InputError(f"{len(bad)} of {len(table[0])} states are not valid for agent {options.agent!r}, "
                             f"first {first!r}: {why} (fix them, or pass --skip-invalid to drop their rows)",
                             str(path))
        if bad:
            table, skipped, kept = drop_states(table, set(bad))
    if groups is not None:
        return _run_split(path, Path(run_dir), options, table, groups if kept is None else groups[kept], kept,
                          feats, skipped, bad)
    with RunStore.create(run_dir) as store, store.exclusive("import"):
        info = import_file(path, store, table=table, rows=kept)
        if feats is not None:
            from potsearch.store.features import save

            save(store, feats)
        return ImportResult(info, store.path, store.n_samples(), skipped, bad,
                            feats.describe() if feats is not None else None)


def _run_split(path, parent: Path, options: ImportOptions, table, groups, kept, feats, skipped: int,
               bad: dict) -> SplitImportResult:
    """One run per value of ``options.split_by``, each RUN/<folder>; every folder checked before any is made."""
    from potsearch.collector.io import import_file
    from potsearch.collector.split import folder_names, split_table
    from potsearch.store import RunStore
    from potsearch.store.rundir import RunDir

    if parent.suffix in (".sqlite", ".db") or RunDir(parent).store.exists():
        raise InputError(f"with --split-by, RUN is the parent folder of one run per value of "
                         f"{options.split_by!r}, but it is a run itself: give a new or parent folder", str(parent))
    if parent.exists() and not parent.is_dir():
        raise InputError("with --split-by, RUN must be a folder", str(parent))
    parts = split_table(table, groups, kept)
    if not parts:
        raise InputError(f"no rows left to split by {options.split_by!r}", str(path))
    folders = {v: parent / name for v, name in folder_names(list(parts), options.split_by, str(path)).items()}
    for folder in folders.values():
        if folder.exists() and not (folder.is_dir() and (RunDir(folder).store.exists() or not any(folder.iterdir()))):
            raise InputError("is in the way of a run of --split-by (not a run folder, not empty)", str(folder))
    runs, summary = {}, {"file": str(path), "split_by": options.split_by, "runs": {}}
    for value, (sub, rows) in parts.items():
        with RunStore.create(folders[value], name=value) as store, store.exclusive("import"):
            info = import_file(path, store, table=sub, rows=rows)
            if feats is not None:
                from potsearch.store.features import save

                save(store, feats)
            res = ImportResult(info, store.path, store.n_samples(), 0, {},
                               feats.describe() if feats is not None else None)
        runs[value] = res
        summary["runs"][value] = {"run": str(folders[value]), "added": info["added"],
                                  "duplicates": info["duplicates"], "total": res.total}
    summary["skipped_rows"], summary["invalid_states"] = skipped, len(bad)
    return SplitImportResult(summary, runs, folders)
