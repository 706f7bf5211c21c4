"""The candidate allowlists, the numpy argument policy, and a small evaluator of candidate programs.

A candidate program is model-written text. The search runs it only inside the sandbox
(``potsearch.sandbox``). Files written for the user (``best_potential.py``) must not run it
as Python at all: they keep the program as a *string* and evaluate it with :class:`Program`, a
tree-walking interpreter over the same AST subset the sandbox's allowlist admits. It never calls
``exec``/``eval``/``compile`` and never looks an attribute up on anything but the ``numpy`` and
``math`` modules, by names from the lists below; anything else is refused with
:class:`ProgramRefused`.

The evaluator is four modules, in the order best_potential.py embeds them (``SECTIONS``): ``policy``
(allowlists, bounds, the work of a numpy call, the state of one call), ``pybuiltins`` (the builtins a
program may call), ``compiler`` (statements and expressions to closures) and ``program``
(:class:`Program`). The parts of each module between the ``embed`` markers are copied verbatim into
best_potential.py, one after the other, where they share one namespace: they need only ``ast``,
``math`` and ``numpy`` (the imports between the modules stay outside the markers).
"""
from potsearch.law.interp.policy import (
    ALLOWED_BUILTINS, ALLOWED_MATH, ALLOWED_NUMPY, REFUSED_KEYWORDS, VALUE_ATTRIBUTES, ProgramRefused,
    numpy_max_positional
)
from potsearch.law.interp.program import Program, read_only_features

__all__ = ["ALLOWED_BUILTINS", "ALLOWED_MATH", "ALLOWED_NUMPY", "REFUSED_KEYWORDS", "VALUE_ATTRIBUTES",
           "Program", "ProgramRefused", "numpy_max_positional", "read_only_features", "SECTIONS",
           "embedded_sections"]

#: the evaluator's modules, in the order their embedded parts are written into best_potential.py
SECTIONS = ("policy", "pybuiltins", "compiler", "program")


def embedded_sections() -> list[tuple[str, str]]:
    """(module path, code) of each part of the evaluator best_potential.py embeds, in order: the
    text between the ``embed`` markers of each module of ``SECTIONS``."""
    import importlib
    import inspect
    import re

    out = []
    for name in SECTIONS:
        mod = importlib.import_module(f"potsearch.law.interp.{name}")
        parts = re.findall(r"^# >>> embed interp\n(.*?)^# <<< embed interp\n", inspect.getsource(mod), re.S | re.M)
        if not parts:  # pragma: no cover - guarded by tests
            raise RuntimeError(f"embed section missing from potsearch/law/interp/{name}.py")
        out.append((f"potsearch/law/interp/{name}.py", "\n".join(parts)))
    return out
