"""One grammar for the run argument: every command that takes a run accepts it as a plain argument
and as ``--run`` (``potsearch evolve runs/x`` = ``potsearch evolve --run runs/x``).

``add_run(p, help)`` declares both on a command's parser; ``resolve(args, error)`` (called by ``app.main``
after parsing) merges them into ``args.<dest>`` or reports, in one line, a run given twice differently or
not at all.
"""
from __future__ import annotations

import argparse

#: the ``--run`` option's dest; ``resolve`` folds it into the plain argument's dest and removes it
OPTION_DEST = "run_option"
_MARK = "run_argument"   # set_defaults key naming the plain argument's dest (removed by ``resolve``)


def add_run(p: argparse.ArgumentParser, help: str, dest: str = "run", metavar: str = "RUN") -> None:
    """The plain ``METAVAR`` argument (optional to argparse) and ``--run METAVAR``; ``resolve`` requires one."""
    p.add_argument(dest, nargs="?", default=None, metavar=metavar, help=f"{help} (or --run {metavar})")
    p.add_argument("--run", dest=OPTION_DEST, default=None, metavar=metavar,
                   help=f"the same as the plain {metavar} argument")
    p.set_defaults(**{_MARK: (dest, metavar)})


def resolve(args: argparse.Namespace, error) -> None:
    """Merge ``--run`` into the plain argument; ``error(message)`` (the sub-parser's) when it is given
    twice differently or missing."""
    mark = getattr(args, _MARK, None)
    if mark is None:
        return
    dest, metavar = mark
    plain, option = getattr(args, dest), getattr(args, OPTION_DEST)
    if plain is not None and option is not None and plain != option:
        error(f"the run is given twice ({plain} and {option}); give it once, as RUN or --run RUN")
    if plain is None and option is None:
        error(f"the following arguments are required: {metavar} (as a plain argument or --run {metavar})")
    setattr(args, dest, plain if plain is not None else option)
    delattr(args, OPTION_DEST)
    delattr(args, _MARK)


def run_dest(p: argparse.ArgumentParser) -> str | None:
    """The dest of the run argument ``add_run`` declared on ``p`` (None: the command takes no run)."""
    mark = p.get_default(_MARK)
    return mark[0] if mark else None
