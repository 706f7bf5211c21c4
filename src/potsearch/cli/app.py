"""Thin command-line front end.

Each sub-command lives in ``potsearch.cli.commands.<name>`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``: it builds its stage's options from the arguments,
calls the stage's ``run`` and prints the result. A command that takes a run declares it with
``runarg.add_run`` (plain ``RUN`` or ``--run RUN``). Modules are imported only when their command
runs, so ``potsearch fit`` never pays for ray, litellm, deap or matplotlib.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import os
import sys

from potsearch.cli.runarg import resolve
from potsearch.core.errors import InputError
from potsearch.core.textsafe import printable

# name -> (module, one-line help). Order is the pipeline order.
COMMANDS: dict[str, tuple[str, str]] = {
    "collect": ("potsearch.cli.commands.collect", "run an agent through an LLM and store every transition"),
    "import": ("potsearch.cli.commands.importcmd", "import transitions (CSV/TSV/JSONL/paper JSON) into a run store"),
    "export": ("potsearch.cli.commands.export", "export a run's transitions as CSV/TSV, JSONL or paper JSON"),
    "fit": ("potsearch.cli.commands.fit", "least-action fit: potentials, exact infimum, unbounded states"),
    "compare": ("potsearch.cli.commands.compare", "compare fitted runs: shared states, scale, differing states, law transfer"),
    "diagnose": ("potsearch.cli.commands.diagnose", "detailed-balance tests: pairs, loops, exclusion, distribution"),
    "evolve": ("potsearch.cli.commands.evolve", "island search for an interpretable potential function"),
    "polish": ("potsearch.cli.commands.polish", "polish the best potential's parameters"),
    "attribute": ("potsearch.cli.commands.attribute", "feature attribution for the best potential"),
    "show": ("potsearch.cli.commands.show", "show the selected law: formula, source, parameters, selection, lineage"),
    "report": ("potsearch.cli.commands.report", "write a self-contained HTML report for a run"),
    "status": ("potsearch.cli.commands.status", "which stages of a run are done, with key numbers"),
    "data": ("potsearch.cli.commands.data", "where the shipped data, agents and search configs are (from any folder)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line with exit status 2. ``commands``: the
    sub-commands' parsers by name (set by ``build_parser`` on the top-level parser)."""

    commands: dict[str, argparse.ArgumentParser]

    def error(self, message: str):  # pragma: no cover - exercised via CLI tests
        sys.stderr.write(printable(f"error: {self.prog}: {message}") + "\n")
        sys.exit(2)


def _available() -> dict[str, tuple[str, str]]:
    return {k: v for k, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def build_parser(load_all: bool = False, only: str | None = None) -> _Parser:
    parser = _Parser(prog="potsearch", description="Find the potential function that drives an LLM agent.")
    from potsearch import __version__

    parser.add_argument("--version", action="version", version=f"potsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    parser.commands = {}
    for name, (modname, help_) in _available().items():
        p = sub.add_parser(name, help=help_, description=help_)
        parser.commands[name] = p
        if load_all or name == only:
            importlib.import_module(modname).add_arguments(p)
    return parser


def actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's arguments. argparse has no public way to list them, so this reads its private
    ``_actions`` list (the one private read: the unknown-option hint, docgen and the parity test use it)."""
    return list(parser._actions)


def _unknown_options(parser: _Parser, cmd: str | None, extras: list[str]) -> str:
    """One line naming the sub-command and the closest valid option for each unknown one."""
    target = parser.commands.get(cmd, parser) if cmd else parser
    valid = sorted({s for a in actions(target) for s in a.option_strings if s.startswith("--")})
    parts = []
    for x in extras:
        if not x.startswith("-"):
            parts.append(f"unexpected argument {x!r}")
            continue
        name = x.split("=", 1)[0]
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.6)
        parts.append(f"unknown option {name}" + (f" (did you mean {close[0]}?)" if close else ""))
    where = f"potsearch {cmd}" if cmd else "potsearch"
    extra_hint = "" if any("did you mean" in x for x in parts) else f"; see `{where} --help`"
    return f"error: {where}: " + "; ".join(parts) + extra_hint


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd = next((a for a in argv if not a.startswith("-")), None)
    if cmd not in COMMANDS:
        cmd = None
    parser = build_parser(only=cmd)
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            # an option's value follows the unknown option: report the option, not its value
            flagged = [x for x in extras if x.startswith("-")] or extras
            sys.stderr.write(_unknown_options(parser, args.command, flagged) + "\n")
            return 2
        if args.command:
            resolve(args, parser.commands[args.command].error)
    except SystemExit as exc:  # usage errors (exit 2) and --help/--version (exit 0)
        return int(exc.code or 0)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    try:
        return int(module.run(args) or 0)
    except InputError as exc:
        sys.stderr.write(printable(exc.format()) + "\n")   # may quote a state name or model text
        return exc.exit_code
    except BrokenPipeError:  # `potsearch show ... | head`: the reader left; not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as exc:  # disk full, read-only run directory, permissions: one line, data kept
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        sys.stderr.write(printable(f"error: {where}{exc.strerror or exc}") + "\n")
        return 2
    except Exception as exc:
        import sqlite3

        if isinstance(exc, sqlite3.OperationalError):
            sys.stderr.write(f"error: run store: {printable(str(exc))} (nothing was lost; what was committed is kept)\n")
            return 2
        raise
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: what was stored so far is kept; rerun with --resume to continue\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
