"""`potsearch data path [NAME]`: where the shipped data, agents and search configs are installed.

Works from any folder, in a checkout and in an installed copy, e.g.::

    potsearch import "$(potsearch data path table2_claude4_word.csv)" --run runs/claude4
"""
from __future__ import annotations

from potsearch.core.errors import InputError
from potsearch.core.resources import SHIPPED, shipped_dir


def add_arguments(p) -> None:
    p.add_argument("action", choices=["path", "list"],
                   help="path: print the folder (or NAME's path); list: the files shipped")
    p.add_argument("name", nargs="?", default=None,
                   help="a shipped file, e.g. table2_claude4_word.csv, or a folder: data, agents, search_configs")
    p.add_argument("--folder", choices=list(SHIPPED), default=None,
                   help="the shipped folder to look in (default: data, then agents, then search_configs)")


def _resolve(name: str | None, folder: str | None):
    if name in SHIPPED and folder is None:
        return shipped_dir(name)
    folders = [folder] if folder else ["data", "agents", "search_configs"]
    if name is None:
        return shipped_dir(folders[0])
    for f in folders:
        path = shipped_dir(f) / name
        if path.exists():
            return path
    known = sorted(p.name for f in folders if shipped_dir(f).is_dir() for p in shipped_dir(f).iterdir()
                   if not p.name.startswith("."))
    raise InputError(f"no shipped file {name!r} (in {', '.join(folders)}); shipped: {', '.join(known) or 'none'}")


def run(args) -> int:
    path = _resolve(args.name, args.folder)
    if not path.exists():
        raise InputError("the shipped folder is not installed here (reinstall potsearch)", str(path))
    if args.action == "path":
        print(path)
        return 0
    folders = [path] if path.is_dir() else [path.parent]
    for d in folders:
        for p in sorted(d.iterdir()):
            if not p.name.startswith("."):
                print(p)
    return 0
