"""What comes back from a sandbox call: :class:`SandboxResult` and its error categories, and the pool's
own failure :class:`SandboxError`. (The checks of a candidate's output live in ``potsearch.law.values``.)"""
from __future__ import annotations

import dataclasses

__all__ = ["SandboxError", "SandboxResult", "CATEGORIES"]


class SandboxError(RuntimeError):
    """The pool itself failed (e.g. a worker cannot start). Never raised for a bad candidate."""


@dataclasses.dataclass(frozen=True)
class SandboxResult:
    ok: bool
    value: dict | None
    error: str | None
    seconds: float

    @property
    def category(self) -> str:
        """``ok``, ``rejected``, ``timeout``, ``killed``, ``exception`` or ``invalid result``."""
        if self.ok:
            return "ok"
        head = (self.error or "").split(":", 1)[0]
        return "timeout" if head.startswith("timeout") else head


CATEGORIES = ("ok", "rejected", "timeout", "killed", "exception", "invalid result")


