"""User-facing errors: one clear line, exit status 2, never a traceback."""
from __future__ import annotations


class InputError(Exception):
    """Bad input from the user. ``where`` names the file (and line) at fault."""

    exit_code = 2

    def __init__(self, message: str, where: str | None = None, line: int | None = None):
        self.message = message
        self.where = where
        self.line = line
        super().__init__(self.format())

    def format(self) -> str:
        loc = ""
        if self.where:
            loc = f"{self.where}"
            if self.line is not None:
                loc += f":{self.line}"
            loc += ": "
        return f"error: {loc}{self.message}"


class StageMissing(InputError):
    """A command needs an earlier stage (fit, evolve...) that this run has not done yet."""
