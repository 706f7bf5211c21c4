"""Run untrusted candidate potentials (e.g. written by an LLM) safely.

Why: earlier tools ran candidate code with ``exec`` and a blacklist (trivially bypassed) and used
thread timeouts that cannot stop a runaway candidate (design.md §3). Here untrusted source passes
four independent layers, each of which is meant to hold on its own:

1. ``allowlist.py``: ``check_source``, an AST *allowlist* (scope-aware names, calls only of the
   program's own functions / allowed builtins / np.<name> / math.<name>, an argument policy per
   numpy function, bounded size). It runs in the worker before anything is compiled (callers may
   also call it directly, e.g. to count LLM rejections); rejected code never executes.
2. ``namespace.py``: what a candidate sees: only ``np``/``math`` *proxies* holding the allowlisted
   functions and a small dict of safe builtins (no ``__import__``, ``open``, ``getattr``, ``eval``,
   ``type``, ...).
3. ``pool.py`` + ``potsearch.sandbox.worker``: a separate, persistent worker process
   (``subprocess.Popen``, never ``fork`` of the caller, never a Ray actor) with rlimits (CPU seconds
   per call, address space, no new processes, no file writes, no new file descriptors, no core
   files), a minimal environment (no API keys), an empty read-only working directory, privileges
   dropped to ``nobody`` when run as root, ``PR_SET_NO_NEW_PRIVS`` and a seccomp filter denying
   process creation, exec, signals to other processes, file creation/modification and sockets.
4. ``pool.py``: the parent enforces a wall-clock timeout and SIGKILLs the worker's whole process
   group; a dead worker is replaced, so whatever a candidate does, the pool keeps serving.

Results travel back as length-prefixed JSON only (never pickle; ``wire.py``) and are validated again
in the parent (plain types, finite numbers, bounded size; ``results.py``). ``tasks.py`` holds the
trusted example tasks. See docs/sandbox.md.

Contract (used by evolve/scoring)::

    from potsearch.sandbox import check_source, SandboxPool, SandboxResult
    check_source(src) -> list[str]          # [] = OK
    with SandboxPool(workers=2, cpu_seconds=10, memory_mb=1024, wall_timeout=20) as pool:
        res = pool.run(src, task="potsearch.law.scoring:score_program", payload={...})
        results = pool.map([(src, payload), ...], task=...)
"""
from __future__ import annotations

from potsearch.sandbox.allowlist import (
    ALLOWED_BUILTINS, ALLOWED_MATH, ALLOWED_NUMPY, MAX_SOURCE_CHARS, check_source
)
from potsearch.sandbox.namespace import Rejected, compile_candidate, make_namespace
from potsearch.sandbox.pool import SandboxPool
from potsearch.law.values import InvalidResult, check_finite, potential_values
from potsearch.sandbox.results import CATEGORIES, SandboxError, SandboxResult
# the trusted tasks, named "potsearch.sandbox:<name>" by callers
from potsearch.sandbox.tasks import call_potential, call_potential_exact, call_terms, noop, return_raw  # noqa: F401
from potsearch.sandbox.wire import MAX_RESULT_BYTES

__all__ = [
    "check_source",
    "SandboxPool",
    "SandboxResult",
    "SandboxError",
    "InvalidResult",
    "potential_values",
    "ALLOWED_NUMPY",
    "ALLOWED_MATH",
    "ALLOWED_BUILTINS",
    "CATEGORIES",
    "MAX_SOURCE_CHARS",
    "MAX_RESULT_BYTES",
    "Rejected",
    "check_finite",
    "compile_candidate",
    "make_namespace",
]
