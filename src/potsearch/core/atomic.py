"""One way to write a JSON file a reader never sees half-written: a temporary file, then a rename."""
from __future__ import annotations

import json
import os
from pathlib import Path


def write_json(path: str | os.PathLike, data, indent: int | None = 1, default=float) -> Path:
    """Write ``data`` as JSON to ``path`` atomically (``path.tmp`` renamed over it); returns the path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=indent, default=default), encoding="utf-8")
    tmp.replace(path)
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (``path.tmp`` renamed over it); returns the path."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
