"""A features function of the user's own code: ``--features mypkg.feats:features`` (import, evolve) or
``features: mypkg.feats:features`` in an agent file (collect stores its table when the run is collected).

The function takes the list of state texts and returns their features: a mapping ``name -> sequence of
numbers`` (one per state, in order) or a pandas DataFrame with one row per state. Its result becomes the
run's features table (store/features.py: the same checks as a table file, stored with the run), so
everything after (the search, show, best_potential.py) reads data, never the function. The function is
the user's code, trusted like any package they install, and runs only when they name it on the command
line or in their agent file: a module named inside a run store is never imported.
"""
from __future__ import annotations

import re
from pathlib import Path

from potsearch.core.errors import InputError

_SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_function(spec) -> bool:
    """``module:function`` (and no such file): a features function rather than a table file."""
    return bool(spec) and bool(_SPEC.match(str(spec))) and not Path(str(spec)).exists()


def table_from_function(spec: str, states: list[str]):
    """The features table the function ``spec`` computes for ``states`` (one line, exit 2, when it cannot
    be imported, raises, or returns something that is not one finite number per state and feature)."""
    import pandas as pd

    from potsearch.store.features import table_from_frame

    from potsearch.agents.usercode import load_object

    fn = load_object(spec, "the features function")
    if not callable(fn):
        raise InputError("the features function is not callable", spec)
    states = list(states)
    try:
        got = fn(list(states))
    except Exception as exc:
        raise InputError(f"the features function raised {type(exc).__name__}: {str(exc)[:200]}", spec) from None
    try:
        df = got.reset_index(drop=True) if isinstance(got, pd.DataFrame) else pd.DataFrame(dict(got))
    except Exception as exc:
        raise InputError(f"the features function must return name -> values (one per state) or a DataFrame: "
                         f"{type(exc).__name__}: {str(exc)[:120]}", spec) from None
    if len(df) != len(states):
        raise InputError(f"the features function returned {len(df)} rows for {len(states)} states", spec)
    if "state" in df.columns:
        raise InputError("the features function returned a column named 'state' (it is given the states)", spec)
    df.insert(0, "state", states)
    return table_from_frame(df, spec, spec)


def read_features(spec: str, states: list[str]):
    """The features table ``spec`` names: a file (read_features_file) or a features function computed
    for ``states``."""
    from potsearch.store.features import read_features_file

    return table_from_function(spec, states) if is_function(spec) else read_features_file(spec)
