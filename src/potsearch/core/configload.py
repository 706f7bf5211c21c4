"""YAML -> frozen dataclasses: the one loader of potsearch's config files (agents/*.yaml,
search_configs/*.yaml).

A config is a frozen dataclass; its fields say what a file may hold. Types come from the
annotations (``bool``, ``int``, ``float``, ``str``, ``Optional[...]``, ``tuple[T, ...]``, nested
dataclasses); limits from the field's metadata, written with :func:`option`
(``gt``/``ge``/``le`` bounds, ``choices``, ``path``: a file relative to the YAML file's folder that
must exist). A field named ``source`` is not read from the file: it receives the file's name.

Every problem is one line naming the file and line (``InputError``, exit status 2): YAML syntax,
duplicate keys, unknown keys (with the valid keys and the closest one: "did you mean"), wrong
types (the key and the expected type), values out of range, missing required keys. A scalar where
a list is expected is read as a list of one. Exponent floats without a dot (``1e-3``) are numbers
(``potsearch.core.yamlio``).

:func:`parse` / :func:`load` return the object and a :class:`Where` that cross-field checks use to
report a key's line: ``where.err("llm.mix has 2 values ...", "llm.mix")``.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from pathlib import Path

from potsearch.core.errors import InputError
from potsearch.core.yamlio import SafeLoader


def option(default=dataclasses.MISSING, *, gt=None, ge=None, le=None, choices=None, path=False, key=None):
    """A dataclass field with the limits the loader checks (for a tuple: on each item). ``key``: the
    file's name for the field when it cannot be a Python name (``class``)."""
    limits = (("gt", gt), ("ge", ge), ("le", le), ("choices", choices), ("path", path or None), ("key", key))
    meta = {k: v for k, v in limits if v is not None}
    return dataclasses.field(default=default, metadata=meta)


class Where:
    """The file a config came from and the line of each key (dotted: ``llm.mix``)."""

    def __init__(self, source: str, lines: dict | None = None):
        self.source = source
        self.lines = lines or {}

    def line(self, key: str | None = None) -> int | None:
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key.rpartition(".")[0]
        return self.lines.get("")

    def err(self, msg: str, key: str | None = None):
        raise InputError(msg, self.source, self.line(key))


_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _describe(typ) -> str:
    if dataclasses.is_dataclass(typ):
        return "a mapping of keys to values"
    if typing.get_origin(typ) is tuple:
        item = (typing.get_args(typ) or (str,))[0]
        return "a list of " + {bool: "booleans", int: "integers", float: "numbers", str: "strings"}[item]
    return _NAMES[typ]


def _optional(typ):
    """(the type, whether null is allowed) for ``T | None`` / ``Optional[T]``."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(typ) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return typ, False


class _Reader:
    def __init__(self, source: str, base_dir: Path | None):
        self.where = Where(source)
        self.base_dir = base_dir
        self.loader = SafeLoader("")

    def fail(self, msg: str, node=None):
        line = node.start_mark.line + 1 if node is not None and getattr(node, "start_mark", None) else None
        raise InputError(msg, self.where.source, line)

    def value(self, node):
        return self.loader.construct_object(node, deep=True)

    # ---------------------------------------------------------------- one mapping -> one dataclass
    def build(self, cls, node, prefix: str):
        import yaml

        label = prefix or "the file"
        if not isinstance(node, yaml.MappingNode):
            self.fail(f"{label}: expected a mapping of keys to values, got {self.value(node)!r}", node)
        self.where.lines.setdefault(prefix, node.start_mark.line + 1)
        hints = typing.get_type_hints(cls)
        fields = {f.metadata.get("key", f.name): f for f in dataclasses.fields(cls) if f.name != "source"}
        kwargs, seen = {}, set()
        for knode, vnode in node.value:
            key = self.value(knode)
            full = f"{prefix}.{key}" if prefix else str(key)
            if key in seen:
                self.fail(f"duplicate key {full!r}", knode)
            seen.add(key)
            if key not in fields:
                near = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                self.fail(f"unknown key {full!r} (valid keys: {', '.join(sorted(fields))}{hint})", knode)
            self.where.lines[full] = knode.start_mark.line + 1
            f = fields[key]
            kwargs[f.name] = self.convert(full, hints[f.name], f.metadata, vnode)
        for name, f in fields.items():
            if f.name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                self.fail(f"missing required key {(prefix + '.' if prefix else '') + name!r}", node)
        if "source" in {f.name for f in dataclasses.fields(cls)}:
            kwargs["source"] = self.where.source
        return cls(**kwargs)

    # ---------------------------------------------------------------- one value
    def convert(self, key: str, typ, meta, node):
        import yaml

        typ, nullable = _optional(typ)
        if dataclasses.is_dataclass(typ):
            if nullable and isinstance(node, yaml.ScalarNode) and self.value(node) is None:
                return None
            return self.build(typ, node, key)
        value = self.value(node)
        if value is None and nullable:
            return None
        if typ is dict or typing.get_origin(typ) is dict:   # a free-form table, checked by the config's own check
            if not isinstance(value, dict):
                self.fail(f"{key}: expected a mapping, got {value!r}", node)
            return value
        if typing.get_origin(typ) is tuple:
            item = (typing.get_args(typ) or (str,))[0]
            items = value if isinstance(value, list) else [value]
            if isinstance(value, dict):
                self.fail(f"{key}: expected {_describe(typ)}, got a mapping", node)
            return tuple(self.scalar(key, item, meta, v, node, _describe(typ)) for v in items)
        return self.scalar(key, typ, meta, value, node, _describe(typ))

    def scalar(self, key: str, typ, meta, v, node, expected: str):
        number = isinstance(v, (int, float)) and not isinstance(v, bool)
        ok = (isinstance(v, bool) if typ is bool else
              isinstance(v, int) and not isinstance(v, bool) if typ is int else
              number if typ is float else isinstance(v, str))
        if not ok:
            self.fail(f"{key}: expected {expected}, got {v!r}", node)
        if typ is float:
            v = float(v)
            if math.isnan(v):
                self.fail(f"{key}: expected {expected}, got nan", node)
        if "gt" in meta and not v > meta["gt"]:
            self.fail(f"{key} must be > {meta['gt']:g}, got {v!r}", node)
        if "ge" in meta and not v >= meta["ge"]:
            self.fail(f"{key} must be >= {meta['ge']:g}, got {v!r}", node)
        if "le" in meta and not v <= meta["le"]:
            self.fail(f"{key} must be <= {meta['le']:g}, got {v!r}", node)
        if "choices" in meta and v not in meta["choices"]:
            self.fail(f"{key} must be one of {', '.join(map(str, meta['choices']))}, got {v!r}", node)
        if meta.get("path"):
            v = self.path(key, v, node)
        return v

    def path(self, key: str, v: str, node) -> str:
        p = Path(v)
        if not p.is_absolute():
            p = ((self.base_dir or Path.cwd()) / p).resolve()
        if not p.exists():
            where = f" (relative paths start at the YAML file's folder: {p})" if not Path(v).is_absolute() else ""
            self.fail(f"{key}: no such file {v!r}{where}", node)
        return str(p)


def parse(cls, text: str, source: str = "<config>", base_dir=None, empty=None):
    """Validate YAML ``text`` into ``cls``: ``(object, Where)``. An empty document gives ``empty()``
    when a factory is given (``cls()`` of the defaults, say), else the error "empty file"."""
    import yaml

    try:
        root = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"not valid YAML: {problem}", source, mark.line + 1 if mark else None) from None
    if root is None:
        if empty is None:
            raise InputError("empty file", source)
        return empty(), Where(source)
    reader = _Reader(source, Path(base_dir) if base_dir is not None else None)
    return reader.build(cls, root, ""), reader.where


def load(cls, path, what: str = "config", empty=None):
    """Read and validate one YAML file into ``cls`` (relative paths in it start at its folder)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"cannot read {what} file: not found", str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {what} file: {getattr(exc, 'strerror', None) or exc}", str(p)) from None
    return parse(cls, text, str(p), base_dir=p.resolve().parent, empty=empty)
