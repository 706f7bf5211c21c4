"""Shared by the stage modules and the API: frozen options built from keywords, with one clear error."""
from __future__ import annotations

import dataclasses
import functools
import inspect

from potsearch.core.errors import InputError


class UnknownOption(InputError, TypeError):
    """An option name the function or stage does not have (an InputError; also a TypeError, as
    Python raises for an unexpected keyword)."""


class SummaryView:
    """Read access to a result's main dict (``result["key"]``, ``"key" in result``, ``set(result)``),
    so code written against the summary dicts keeps working. Subclasses name the dict in ``_view``."""

    _view = "summary"

    def __getitem__(self, key):
        return getattr(self, self._view)[key]

    def __iter__(self):
        return iter(getattr(self, self._view))

    def __contains__(self, key) -> bool:
        return key in getattr(self, self._view)

    def keys(self):
        return getattr(self, self._view).keys()

    def get(self, key, default=None):
        return getattr(self, self._view).get(key, default)


def options_from(cls, where: str, **values):
    """``cls(**values)`` for a frozen options dataclass; an unknown name is an InputError naming it and
    the valid ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise UnknownOption(f"{where}: unknown option {unknown[0]!r}; valid options: {', '.join(names)}")
    return cls(**values)


def checked_options(fn):
    """Decorator for API functions with explicit keyword signatures: a call with an unknown keyword
    raises InputError naming it and the valid ones (instead of Python's TypeError)."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        valid = [p.name for p in sig.parameters.values() if p.kind is not p.VAR_KEYWORD]
        unknown = sorted(set(kwargs) - set(valid))
        if unknown:
            raise UnknownOption(f"{fn.__name__}(): unknown option {unknown[0]!r}; valid options: {', '.join(valid)}")
        return fn(*args, **kwargs)

    return wrapper
