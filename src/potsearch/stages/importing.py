"""The import stage (``potsearch import``, ``ps.import_transitions``; ``import`` is a Python keyword, hence
this module's name): add a transitions file to a run store, idempotently.

``run(path, run_dir, ImportOptions(...)) -> ImportResult``. The file is read and checked completely
before the store is created or touched (``collector.io``: formats, the spreadsheet guard, duplicates by
row uid); with ``agent``, every state is checked against the agent (a fitter state must parse as an
expression) and the import is refused, or with ``skip_invalid`` the rows with an invalid state are left
out. The store is written under the run's writer lock; ``import_file`` records the stage.
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
    columns; descriptions in a YAML beside it) stored with the run (store/features.py)."""

    count_column: str | None = None
    agent: str | None = None
    skip_invalid: bool = False
    features: str | None = None


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


def run(path, run_dir, options: ImportOptions = ImportOptions()) -> ImportResult:
    """Import the transitions file ``path`` into the run (or store file) ``run_dir``, created if needed."""
    from potsearch.collector.io import detect_format, drop_states, import_file, invalid_states, read_table
    from potsearch.store import RunStore

    detect_format(Path(path))
    table = read_table(path, options.count_column)  # validate completely before creating or touching the store
    feats = None
    if options.features:
        from potsearch.store.features import read_features_file

        feats = read_features_file(options.features)   # checked completely before anything is written
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
    with RunStore.create(run_dir) as store, store.exclusive("import"):
        info = import_file(path, store, table=table, rows=kept)
        if feats is not None:
            from potsearch.store.features import save

            save(store, feats)
        return ImportResult(info, store.path, store.n_samples(), skipped, bad,
                            feats.describe() if feats is not None else None)
