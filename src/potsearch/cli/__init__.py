"""The command line: `potsearch` (``app.main``), its sub-commands (``commands/``) and the generated reference
(``docgen``)."""
from potsearch.cli.app import main

__all__ = ["main"]
