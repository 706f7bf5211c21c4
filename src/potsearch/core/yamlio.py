"""The YAML loader of every potsearch config: PyYAML's SafeLoader, reading YAML 1.2 floats.

PyYAML follows YAML 1.1, where ``1e-3`` and ``1E6`` (no dot) are *strings*; researchers write them
as numbers (``max_cost: 1e-3``), so exponent floats without a dot resolve as floats here too.
"""
from __future__ import annotations

import re

import yaml

_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)


class SafeLoader(yaml.SafeLoader):
    pass


SafeLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
