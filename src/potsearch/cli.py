"""Thin command-line front end.

Each sub-command lives in ``potsearch.commands.<name>`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their command runs, so ``potsearch fit`` never pays for ray, litellm,
deap or matplotlib.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from .errors import InputError

# name -> (module, one-line help). Order is the pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("potsearch.commands.collect", "run an agent through an LLM and store every transition"),
    "import": ("potsearch.commands.importcmd", "import transitions (CSV/TSV/JSONL/paper JSON) into a run store"),
    "export": ("potsearch.commands.export", "export a run's transitions as CSV/TSV, JSONL or paper JSON"),
    "fit": ("potsearch.commands.fit", "least-action fit: potentials, exact infimum, unbounded states"),
    "diagnose": ("potsearch.commands.diagnose", "detailed-balance tests: pairs, loops, exclusion, distribution"),
    "evolve": ("potsearch.commands.evolve", "island search for an interpretable potential function"),
    "polish": ("potsearch.commands.polish", "polish the best potential's parameters"),
    "attribute": ("potsearch.commands.attribute", "feature attribution for the best potential"),
    "show": ("potsearch.commands.show", "show the best potential: source, formula, scores, lineage"),
    "report": ("potsearch.commands.report", "write a self-contained HTML report for a run"),
    "status": ("potsearch.commands.status", "which stages of a run are done, with key numbers"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit status 2."""

    def error(self, message: str):  # pragma: no cover - exercised via CLI tests
        sys.stderr.write(f"error: {self.prog}: {message}\n")
        sys.exit(2)


def _available() -> dict[str, tuple[str, str]]:
    return {k: v for k, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def build_parser(load_all: bool = False, only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="potsearch", description="Find the potential function that drives an LLM agent.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"potsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (modname, help_) in _available().items():
        p = sub.add_parser(name, help=help_, description=help_)
        if load_all or name == only:
            importlib.import_module(modname).add_arguments(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = next((a for a in argv if not a.startswith("-")), None)
    if cmd not in COMMANDS:
        cmd = None
    parser = build_parser(only=cmd)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # usage errors (exit 2) and --help/--version (exit 0)
        return int(exc.code or 0)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except InputError as exc:
        sys.stderr.write(exc.format() + "\n")
        return exc.exit_code
    except BrokenPipeError:  # `potsearch show ... | head`: the reader left; not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as exc:  # disk full, read-only run directory, permissions: one line, data kept
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        sys.stderr.write(f"error: {where}{exc.strerror or exc}\n")
        return 2
    except Exception as exc:
        import sqlite3

        if isinstance(exc, sqlite3.OperationalError):
            sys.stderr.write(f"error: run store: {exc} (nothing was lost; what was committed is kept)\n")
            return 2
        raise
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: what was stored so far is kept; rerun with --resume to continue\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
