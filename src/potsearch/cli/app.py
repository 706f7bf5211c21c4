"""Thin command-line front end.

Each sub-command lives in ``potsearch.cli.commands.<name>`` and exposes
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only
when their command runs, so ``potsearch fit`` never pays for ray, litellm,
deap or matplotlib.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import os
import sys

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
    """argparse that reports usage errors as one line with exit status 2."""

    def error(self, message: str):  # pragma: no cover - exercised via CLI tests
        sys.stderr.write(printable(f"error: {self.prog}: {message}") + "\n")
        sys.exit(2)


def _available() -> dict[str, tuple[str, str]]:
    return {k: v for k, v in COMMANDS.items() if importlib.util.find_spec(v[0]) is not None}


def build_parser(load_all: bool = False, only: str | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="potsearch", description="Find the potential function that drives an LLM agent.")
    from potsearch import __version__

    parser.add_argument("--version", action="version", version=f"potsearch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (modname, help_) in _available().items():
        p = sub.add_parser(name, help=help_, description=help_)
        if load_all or name == only:
            importlib.import_module(modname).add_arguments(p)
            _run_both_ways(p)
    return parser


def _run_both_ways(p: argparse.ArgumentParser) -> None:
    """One grammar for every command: the run is accepted as a plain argument and as ``--run``.

    A command declared with a positional ``run``/``input`` gains ``--run``; one declared with
    ``--run`` gains an optional positional. ``_settle_run`` merges the two after parsing."""
    opts = {s: a for a in p._actions for s in a.option_strings}
    positionals = [a for a in p._actions if not a.option_strings]
    if "--run" not in opts and positionals and positionals[0].dest in ("run", "input"):
        pos = positionals[0]
        pos.nargs, pos.required, pos.default = "?", False, None
        p.add_argument("--run", dest="_run_flag", metavar="RUN", default=None,
                       help=f"the run, as an option (same as the plain {pos.dest.upper()} argument)")
        p.set_defaults(_run_fix=("flag", pos.dest))
    elif "--run" in opts and not positionals:
        flag = opts["--run"]
        flag.required = False
        p.add_argument("_run_pos", nargs="?", metavar="RUN", default=None,
                       help="the run directory, as a plain argument (same as --run)")
        p.set_defaults(_run_fix=("pos", flag.dest))


def _settle_run(args: argparse.Namespace, sub: argparse.ArgumentParser) -> None:
    fix = getattr(args, "_run_fix", None)
    if not fix:
        return
    kind, dest = fix
    extra = "_run_flag" if kind == "flag" else "_run_pos"
    a, b = getattr(args, dest), getattr(args, extra)
    if a is not None and b is not None and a != b:
        sub.error(f"the run is given twice ({a} and {b}); give it once, as RUN or --run RUN")
    if a is None and b is None:
        name = dest.upper() if kind == "flag" else "RUN"
        sub.error(f"the following arguments are required: {name} (as a plain argument or --run {name})")
    setattr(args, dest, a if a is not None else b)
    delattr(args, extra)
    delattr(args, "_run_fix")


def _unknown_options(parser: argparse.ArgumentParser, cmd: str | None, extras: list[str]) -> str:
    """One line naming the sub-command and the closest valid option for each unknown one."""
    target = parser
    if cmd:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        target = sub.choices.get(cmd, parser)
    valid = sorted({s for a in target._actions for s in a.option_strings if s.startswith("--")})
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
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            _settle_run(args, sub.choices[args.command])
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
