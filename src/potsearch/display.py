"""State names in terminal tables: one line each, cut with … at a width; the CSV files keep them whole."""
from __future__ import annotations

STATE_WIDTH = 40


def short_state(name: str, width: int = STATE_WIDTH) -> str:
    """``name`` on one line (line breaks shown as ⏎), at most ``width`` characters, cut with …"""
    one = " ⏎ ".join(part.strip() for part in str(name).splitlines()) if "\n" in str(name) else str(name)
    return one if len(one) <= width else one[: max(1, width - 1)] + "…"


def state_width(console_width: int, other_columns: int) -> int:
    """The state column's width: what the other columns leave of the console, between 12 and 60."""
    return max(12, min(60, console_width - other_columns))
