"""potsearch: find the potential function that drives an LLM agent.

The science core (``graph``, ``action``) is pure numpy/scipy; stages talk to each
other only through the run directory (``runs/NAME/store.sqlite`` and its folders).
"""
__version__ = "0.1.0"
