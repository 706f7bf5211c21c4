"""The one way potsearch reaches the user's own code: an object named ``module:Name`` (an agent class,
a features function). That code is the user's, trusted like a package they install; it is named on the
command line or in their agent file, never by what a run store holds."""
from __future__ import annotations

from potsearch.core.errors import InputError


def load_object(spec: str, what: str, where: str | None = None):
    """The object ``module:Name`` (``Name`` may be dotted) names, or one line saying why not (``what``:
    what it should be, as the message names it)."""
    import importlib

    mod, _, name = str(spec).partition(":")
    if not mod or not name:
        raise InputError(f"{what}: expected module:Name, got {spec!r}", where or spec)
    try:
        obj = importlib.import_module(mod)
        for part in name.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise InputError(f"cannot load {what}: {type(exc).__name__}: {exc}", where or spec) from None
    return obj
