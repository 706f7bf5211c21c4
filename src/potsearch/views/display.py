"""State names in terminal tables: one line each, control characters escaped, cut with … at a width;
the CSV files keep them whole."""
from __future__ import annotations

from potsearch.core.textsafe import one_line

STATE_WIDTH = 40


def state_line(name: str) -> str:
    """``name`` on one line: line breaks shown as ⏎, other control characters as ``\\xNN`` escapes
    (``textsafe.one_line``)."""
    one = " ⏎ ".join(part.strip() for part in str(name).split("\n")) if "\n" in str(name) else str(name)
    return one_line(one)


def short_state(name: str, width: int = STATE_WIDTH) -> str:
    """:func:`state_line` of ``name``, at most ``width`` characters, cut with …"""
    one = state_line(name)
    return one if len(one) <= width else one[: max(1, width - 1)] + "…"


def state_width(console_width: int, other_columns: int) -> int:
    """The state column's width: what the other columns leave of the console, between 12 and 60."""
    return max(12, min(60, console_width - other_columns))
