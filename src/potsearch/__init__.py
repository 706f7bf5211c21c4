"""potsearch: find the potential function that drives an LLM agent.

The science core (``graph``, ``action``) is pure numpy/scipy; stages talk to each
other only through the run directory (``runs/NAME/store.sqlite`` and its folders).
"""
__version__ = "0.1.0"

from potsearch.api import (
    attribute, collect, compare, diagnose, evolve, fit, import_transitions, load, polish, report, show, status
)

__all__ = ["load", "import_transitions", "collect", "fit", "diagnose", "compare", "evolve", "polish", "attribute",
           "show", "report", "status", "__version__"]
