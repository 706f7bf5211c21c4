"""Agents: what a state is, how it is prompted, how a reply becomes a transition.

- ``base``: ``Outcome``, the ``Agent`` protocol
- ``registry``: agent kind -> class, ``load_agent("word"|"fitter"|path.yaml)``
- ``config``: agent YAML files validated into frozen dataclasses
- ``word``: the paper's letter-sum-100 word task
- ``fitter``: 1-D symbolic regression with safe parsing and least-squares fits
- ``grammar``: GBNF grammars for constrained decoding
- ``surrogate``: a test instrument with a known hidden potential (not a model)
- ``statesurrogate``: the surrogate for your own agent (its states, its features, a neighbour rule)
- ``hidden``: what the surrogates share (labels, the hidden potential's safe formula)
- ``data``: the shipped word list and regression data sets (with provenance)

The collector (Ray actors) lives in ``collect/``; the local model in ``local`` (the model client
is ``potsearch.llm.client``).
Nothing here imports ray, litellm or llama_cpp.
"""
from potsearch.agents.base import Agent, Outcome
from potsearch.agents.registry import load_agent

__all__ = ["Agent", "Outcome", "load_agent"]
