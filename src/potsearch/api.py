"""Python API for notebooks: the same code paths as the command line.

Each function builds the arguments of its CLI command from that command's own parser (so defaults live
in one place), runs the same stage function, and returns data instead of exit codes. Bad input raises
``potsearch.errors.InputError`` (the CLI turns it into one line and exit status 2).

    import potsearch as ps
    ps.import_transitions("data/table2_claude4_word.csv", "runs/claude4")
    res = ps.fit("runs/claude4")                  # FitResult: names, potential, lower_bound, scc, ...
    diag = ps.diagnose("runs/claude4")            # the diagnostics.json dict
"""
from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
from pathlib import Path

# evolve / polish / report are also subpackage or module names of potsearch, so their API functions carry
# a longer name (a submodule import would otherwise replace the package attribute).
__all__ = ["load", "import_transitions", "fit", "diagnose", "collect", "evolve_potential", "polish_potential",
           "attribute", "show", "write_report", "status"]


def _args(command: str, positional: list, **options) -> argparse.Namespace:
    """The command's argparse Namespace: its parser's defaults, then ``options`` (Python names)."""
    from .cli import COMMANDS, build_parser

    parser = build_parser(only=command)
    required = ["--run", str(options.pop("run"))] if "run" in options else []  # a required option
    try:
        args = parser.parse_args([command, *map(str, positional), *required])
    except SystemExit:  # argparse already said what is wrong on stderr
        from .errors import InputError

        raise InputError(f"invalid arguments for {command}") from None
    for key, value in options.items():
        if not hasattr(args, key):
            raise TypeError(f"{command}() got an unknown option {key!r}")
        setattr(args, key, value)
    args._module = COMMANDS[command][0]
    return args


def _run(command: str, positional: list, quiet: bool = True, **options) -> str:
    """Run a command's ``run(args)``; returns what it printed (also shown when quiet=False)."""
    args = _args(command, positional, **options)
    module = importlib.import_module(args._module)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf) if quiet else contextlib.nullcontext():
        module.run(args)
    return buf.getvalue()


def _json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def load(path):
    """Transitions as ``Counts`` from a run directory, a store file or a transitions file."""
    from .fitstage import load_input

    return load_input(path).counts


def import_transitions(path, run) -> dict:
    """Import a CSV/TSV/JSONL/paper-JSON file into ``run`` (created if needed); idempotent."""
    from .io import import_file, read_rows
    from .store import RunStore

    read_rows(path)
    with RunStore.create(run) as store:
        return import_file(path, store)


def fit(source, *, weight: str = "low_reject", n0: float | None = None, min_visits: int = 1,
        kernel: str = "softplus", beta: float = 1.0, bootstrap: int = 0, whole_graph: bool = False,
        seed: int = 0, out=None, write: bool = True):
    """The least-action fit (what `potsearch fit` runs). Writes fit/ for a run unless write=False."""
    from .fitstage import FitOptions, default_out, load_input, record, run_fit, write_fit

    opts = FitOptions(weight=weight, n0=n0, min_visits=min_visits, kernel=kernel, beta=beta,
                      bootstrap=bootstrap, whole_graph=whole_graph, seed=seed).validate()
    inp = load_input(source)
    g, res = run_fit(inp.counts, opts)
    if write:
        summary = write_fit(Path(out) if out else default_out(inp), g, res)
        record(inp, summary)
    return res


def diagnose(source, *, out=None, plots: bool = True, **options) -> dict:
    """Detailed-balance tests (`potsearch diagnose`); returns the diagnostics.json dict."""
    from .commands.diagnose import _check, default_out, run_diagnose
    from .fitstage import load_input

    args = _args("diagnose", [source], no_plots=not plots, **options)
    _check(args)
    inp = load_input(source)
    return run_diagnose(inp, args, Path(out) if out else default_out(inp))


def collect(*, agent: str, provider: str, run, **options):
    """Run an agent (`potsearch collect`); returns the collector's result (``.summary``)."""
    from .agents.runner import CollectConfig, collect as _collect
    from .store import run_lock

    cfg = CollectConfig(agent=agent, provider=provider, run=str(run), **options)
    with run_lock(run, "collect"):
        return _collect(cfg)


def evolve_potential(run, *, config=None, rounds=None, islands=None, seed=None, workers=None, resume: bool = False,
           quiet: bool = True) -> dict:
    """Island search (`potsearch evolve`); returns evolve/summary.json as a dict."""
    _run("evolve", [], quiet=quiet, run=str(run), config=config, rounds=rounds, islands=islands, seed=seed,
         workers=workers, resume=resume)
    return _json(Path(run) / "evolve" / "summary.json")


def polish_potential(run, *, quiet: bool = True, **options) -> dict:
    """Polish the best potential's parameters (`potsearch polish`); returns polish/summary.json."""
    _run("polish", [], quiet=quiet, run=str(run), **options)
    return _json(Path(run) / "polish" / "summary.json")


def attribute(run, *, quiet: bool = True, **options) -> dict:
    """Feature attribution (`potsearch attribute`); returns attribution/summary.json."""
    _run("attribute", [], quiet=quiet, run=str(run), **options)
    return _json(Path(run) / "attribution" / "summary.json")


def show(run, **options) -> str:
    """The text `potsearch show` prints (source, parameters, actions, lineage, ...)."""
    return _run("show", [run], quiet=True, **options)


def write_report(run) -> Path:
    """Write runs/NAME/report.html (`potsearch report`); returns its path."""
    _run("report", [run], quiet=True)
    return Path(run) / "report.html"


def status(run) -> dict:
    """Stages done and their key numbers (`potsearch status --json`)."""
    return json.loads(_run("status", [run], quiet=True, json=True))
