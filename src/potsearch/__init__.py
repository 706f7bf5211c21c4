"""potsearch: find the potential function that drives an LLM agent.

The science core (``graph``, ``action``) is pure numpy/scipy; stages talk to each
other only through the run directory (``runs/NAME/store.sqlite`` and its folders).
"""
__version__ = "0.1.0"

from potsearch.api import (
    attribute, collect, compare, diagnose, evolve_potential, fit, import_transitions, load, polish_potential, show,
    status, write_report
)

__all__ = ["load", "import_transitions", "fit", "diagnose", "compare", "collect", "evolve_potential", "polish_potential",
           "attribute", "show", "write_report", "status", "__version__"]
