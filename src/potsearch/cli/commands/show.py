"""`potsearch show RUN`: the law evolve selected — its simplified formula (pretty and LaTeX) first,
then the source, the parameters with their bootstrap standard errors, the scores, the selection rule
and why, what it dropped against the lowest-action candidate, lineage, attribution, directionality.
``--candidate ID`` shows one stored candidate instead; ``--top K`` lists K Pareto-front candidates
with their formulas. The stage (potsearch.stages.show) computes; this module parses and prints.

On a terminal the source is highlighted with rich; piped (stdout not a tty) the output is plain
text without escape codes, one fact per line, so it can be grepped and diffed.
"""
from __future__ import annotations

import sys

from potsearch.cli.runarg import add_run
from potsearch.stages.show import FORMATS, ShowOptions

_D = ShowOptions()
PRINTING = ()   # every flag is an option of the stage (tests/test_cli_api_parity.py)


def add_arguments(p):
    add_run(p, "run directory (needs fit and evolve)")
    p.add_argument("--top", type=int, default=_D.top, metavar="K",
                   help="list only the K Pareto-front candidates with the lowest action, with their formulas")
    p.add_argument("--candidate", default=_D.candidate, metavar="ID",
                   help="show this candidate (id or uid) instead of the selected law")
    p.add_argument("--no-simplify", dest="simplify", action="store_false", default=_D.simplify,
                   help="with --candidate: do not simplify a candidate no selection simplified (faster)")
    p.add_argument("--format", choices=list(FORMATS), default=_D.format,
                   help="the code section as Python source (default), a sympy formula or LaTeX")
    p.add_argument("--symbolic", action="store_true", default=_D.symbolic,
                   help="formula formats: keep parameters as p_i symbols")
    p.add_argument("--min-ratio", type=float, default=_D.min_ratio,
                   help="directionality: transitions with T = n/N(f) >= this (default 0.05, as the paper)")


def run(args) -> int:
    from potsearch.stages.show import run as show

    res = show(args.run, ShowOptions(candidate=args.candidate, simplify=args.simplify, top=args.top,
                                     format=args.format, symbolic=args.symbolic, min_ratio=args.min_ratio))
    out = _Out(sys.stdout.isatty())
    for kind, text in res.lines():
        getattr(out, kind)(text)
    return 0


def _printable(text: str) -> str:
    from potsearch.core.textsafe import printable

    return printable(text)


class _Out:
    """Plain print when piped; rich (bold heading, highlighted source) on a terminal. Every text is
    printed with rich markup off and control characters escaped (it may hold model-written code)."""

    def __init__(self, tty: bool):
        self.tty = tty
        self.con = None
        if tty:
            from rich.console import Console

            self.con = Console(highlight=False)

    def head(self, text: str) -> None:
        text = _printable(text)
        if self.con:
            self.con.print(text, markup=False, style="bold")
        else:
            print(text)

    def line(self, text: str) -> None:
        text = _printable(text)
        if self.con:
            self.con.print(text, markup=False)
        else:
            print(text)

    def source(self, src: str) -> None:
        src = _printable(src)
        if self.con:
            from rich.syntax import Syntax

            self.con.print(Syntax(src.rstrip("\n"), "python", line_numbers=False))
        else:
            for ln in src.rstrip("\n").splitlines():
                print("  " + ln)
