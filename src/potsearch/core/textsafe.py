"""Text that came from a model or a data file, made safe for where it goes.

State names come from a model's replies or from a user's transitions file; candidate code, formulas
and operator names from a model. Any of them may be hostile. One place for each guard:

* a terminal: :func:`printable` shows control characters (ANSI/OSC escapes, carriage returns, C1
  controls, bidi overrides, ...) as ``\\xNN``/``\\uNNNN`` escapes; :func:`one_line` does the same for
  a table cell (newlines and tabs escaped too). rich markup is a separate matter: print data with
  ``markup=False`` or as ``rich.text.Text``.
* a CSV cell: :func:`csv_cell` makes a cell a spreadsheet shows as text, never runs as a formula;
  :func:`csv_value` reads such a cell back exactly (the guard is applied only when a CSV file is
  written, and removed when potsearch reads one, so nothing else ever sees it).
* a plot: draw data with ``parse_math=False`` (see :data:`PLAIN`), never as mathtext.

Imports nothing from potsearch, so every layer can use it.
"""
from __future__ import annotations

#: keyword arguments for a matplotlib text artist drawing data (a state name, a feature, a term):
#: plain text, never parsed as mathtext (a state named ``$x^{$`` would otherwise stop the figure)
PLAIN = {"parse_math": False}


def _escape(c: str) -> str:
    return repr(c)[1:-1]


def printable(text, keep: str = "\n\t") -> str:
    """``text`` for a terminal: every character that is not printable (C0 and C1 controls, DEL, format
    characters such as the bidi overrides U+202A-U+202E and U+2066-U+2069, line and paragraph
    separators, unassigned code points) shown as a ``\\xNN``/``\\uNNNN`` escape, so model text cannot
    rewrite the screen or the terminal's state. The characters in ``keep`` (newline and tab by
    default) are kept as they are."""
    text = str(text)
    if text.isprintable() and not any(c in text for c in keep):
        return text
    return "".join(c if c in keep or c.isprintable() else _escape(c) for c in text)


def one_line(text) -> str:
    """:func:`printable` for one cell or one name: newlines and tabs escaped too."""
    return printable(text, keep="")


#: first characters that make a spreadsheet read a cell as a formula (or split it: tab, CR)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|")
#: what ``potsearch export`` guards in addition: ``#`` (a line starting with it is a comment to
#: ``potsearch import``) and ``<`` (so a state named ``<escape>`` is not read back as an escape)
EXPORT_START = FORMULA_START + ("#", "<")


def _guarded(s: str, start: tuple) -> bool:
    """Does ``s`` need the guard: after any leading apostrophes it starts with a character of
    ``start`` and is not a number. The apostrophes count so that the guard can be undone exactly: a
    cell that only looks guarded (``'=x``) gets one more apostrophe."""
    rest = s.lstrip("'")
    if not rest.startswith(start):
        return False
    try:
        float(rest)
        return False
    except ValueError:
        return True


def csv_cell(v, start: tuple = FORMULA_START):
    """A CSV cell that a spreadsheet shows as text, never runs as a formula: a string that starts with
    = + - @ (or tab, CR, |) and is not a number gets a leading apostrophe (the spreadsheet convention
    for "text"); so does one that is such a string behind apostrophes (``'=x`` becomes ``''=x``), so
    that :func:`csv_value` reads every cell back exactly. Numbers and other strings are unchanged."""
    if isinstance(v, str) and _guarded(v, start):
        return "'" + v
    return v


def csv_value(cell, start: tuple = FORMULA_START):
    """The value :func:`csv_cell` guarded: one leading apostrophe removed from a guarded cell
    (``csv_value(csv_cell(x)) == x`` for every x); any other cell unchanged."""
    if isinstance(cell, str) and cell.startswith("'") and _guarded(cell[1:], start):
        return cell[1:]
    return cell
