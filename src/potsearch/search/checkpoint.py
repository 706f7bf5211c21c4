"""Evolve checkpoints as declared data: one JSON document with a schema version, never pickle.

A run folder or store may come from someone else, so nothing in it may load code. A checkpoint is
written with ``json.dumps`` (no NaN or infinity: every number is finite) and read with
``json.loads`` followed by an explicit check of every key, type and shape (``decode``). Anything
else is refused with one line (``InputError``, exit status 2) that says what was refused and what
to do: an old pickle checkpoint (earlier potsearch versions; it does not start with ``{``) is
recognised and never unpickled.

The document (``VERSION`` 2; 1 was the pickle)::

    {"format": "potsearch-evolve-checkpoint", "version": 2, "sid": "ev1234abcd", "round": 40,
     "random": {"version": 3, "internal": [625 integers], "gauss_next": null},
     "pops": [[program, ...], ...], "hof": [program, ...],
     "logbook": [{"round": 0, "best": [..], "median": [..], "children": 0, "evaluations": 64,
                  "cache_hits": 0}, ...],
     "counters": {"evaluations": 64, ...}, "features": ["vowels", ...],
     "terms": null | {"1": [{"terms": [law], "uid": "..", "train": 0.41}, ...], "_seeds": [law, ...]},
     "patience": {"front": [[complexity, train action], ...], "last": 12}   (optional: patience.py),
     "extra": null | {"loop": "async", "made": [..], "applied": 9, "clock": 4, "seq": 3,
                      "pending_llm": [false, ..],
                      "jobs": [{"seq": 2, "uid": "..", "island": 0, "rnd": 5, "model": "..",
                                "parents": [program, ...]}]}}

A program is ``{"uid", "source", "canonical", "island", "round", "operator", "parents", "model",
"p0", "params", "score_p0", "train_action", "heldout_action", "gap", "complexity", "n_params",
"error", "tokens", "cost", "tree", "law"}``: ``tree`` is a GP tree in prefix order (``[["f",
primitive], ["x", feature], ["c", number], ...]``, ``gp.dump_tree``), ``law`` a term-structured law
(``[[kind, feature, feature or "", theta0], ...]``), ``score_p0`` the start parameters its scores
were fitted from. Fitness is not stored: it is derived from the numbers. What the checks here cannot
know (primitive and feature names, the island count, whether the numbers are true) is checked by
``Search.restore``, which re-scores every restored program (``resume.py``).
"""
from __future__ import annotations

import json
import math

from potsearch.core.errors import InputError

FORMAT = "potsearch-evolve-checkpoint"
VERSION = 2
MAX_BYTES = 256 * 2**20          # far above a real checkpoint (a 4,000-round logbook is ~2 MB)
MAX_SOURCE = 40_000              # the reply parser's cap on a model's reply
MAX_LIST = 10_000_000
MAX_PARAMS = 1_000

PROGRAM_KEYS = ("uid", "source", "canonical", "island", "round", "operator", "parents", "model", "p0", "params",
                "score_p0", "train_action", "heldout_action", "gap", "complexity", "n_params", "error", "tokens",
                "cost", "tree", "law")
LOGBOOK_KEYS = ("round", "best", "median", "children", "evaluations", "cache_hits")
TERM_KINDS = ("lin", "log", "sqrt", "prod", "ratio", "exp")

_REDO = "run without --resume to start a new search"


class Malformed(Exception):
    """A checkpoint that is not the declared document: ``path`` names the part, the message what is wrong."""

    def __init__(self, path: str, what: str):
        self.path, self.what = path, what
        super().__init__(f"{path}: {what}")


def refused(exc: Malformed, where: str | None) -> InputError:
    """The one line for a checkpoint that does not pass the checks."""
    return InputError(f"the run's evolve checkpoint is malformed at {exc.path} ({exc.what}); it was refused, nothing "
                      f"of it was used: {_REDO}", where)


# ----------------------------------------------------------------------------- writing
def encode(doc: dict) -> bytes:
    """The checkpoint document as UTF-8 JSON (a non-finite number is a bug: ``allow_nan=False``)."""
    return json.dumps({"format": FORMAT, "version": VERSION, **doc}, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


def random_state(state: tuple) -> dict:
    """``random.getstate()`` (version, tuple of 625 ints, gauss_next) as JSON data."""
    version, internal, gauss = state
    return {"version": int(version), "internal": [int(v) for v in internal], "gauss_next": gauss}


# ----------------------------------------------------------------------------- reading
def decode(blob: bytes, where: str | None = None) -> dict:
    """The checked document of a stored checkpoint; ``InputError`` (one line) for anything else.

    Returns the document with ``random`` as the tuple ``random.setstate`` takes; programs, the
    logbook, counters, terms and extra are checked for types and shapes here, the rest by the search."""
    data = bytes(blob)
    head = data[:1]
    if head != b"{":
        what = ("a Python pickle (the format of earlier potsearch versions, which could run code when loaded)"
                if head == b"\x80" else "not a JSON document")
        raise InputError(f"the run's evolve checkpoint is {what}; it was refused and never loaded: {_REDO}", where)
    if len(data) > MAX_BYTES:
        raise InputError(f"the run's evolve checkpoint is {len(data)} bytes, more than the {MAX_BYTES} a checkpoint "
                         f"may have; it was refused: {_REDO}", where)
    try:
        doc = json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InputError(f"the run's evolve checkpoint is not valid JSON ({type(exc).__name__}: {str(exc)[:120]}); "
                         f"it was refused: {_REDO}", where) from None
    try:
        return _document(doc)
    except Malformed as exc:
        raise refused(exc, where) from None


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number of the checkpoint format")


def _document(doc) -> dict:
    _dict(doc, "the document")
    if doc.get("format") != FORMAT:
        raise Malformed("format", f"expected {FORMAT!r}, got {_show(doc.get('format'))}")
    version = doc.get("version")
    if version != VERSION:
        newer = isinstance(version, int) and not isinstance(version, bool) and version > VERSION
        raise Malformed("version", f"schema version {_show(version)}, this potsearch reads version {VERSION}"
                        + ("; it was written by a newer potsearch" if newer else ""))
    _keys(doc, "the document", required=("format", "version", "sid", "round", "random", "pops", "hof", "logbook",
                                         "counters", "features"), optional=("terms", "extra", "patience"))
    out = {"sid": _str(doc["sid"], "sid", 64), "round": _int(doc["round"], "round", lo=0),
           "random": _random(doc["random"], "random"),
           "pops": [[program(p, f"pops[{i}][{j}]") for j, p in enumerate(_list(pop, f"pops[{i}]"))]
                    for i, pop in enumerate(_list(doc["pops"], "pops"))],
           "hof": [program(p, f"hof[{i}]") for i, p in enumerate(_list(doc["hof"], "hof"))],
           "logbook": [_record(r, f"logbook[{i}]") for i, r in enumerate(_list(doc["logbook"], "logbook"))],
           "counters": _counters(doc["counters"], "counters"),
           "features": [_str(f, f"features[{i}]", 200) for i, f in enumerate(_list(doc["features"], "features"))],
           "terms": _terms_state(doc.get("terms"), "terms"),
           "extra": _extra(doc.get("extra"), "extra"),
           "patience": patience_state(doc.get("patience"), "patience")}
    return out


def patience_state(v, path: str):
    """The early stop's tracker (search/patience.py): the front as [complexity, action] pairs, the last
    round that improved it."""
    if v is None:
        return None
    _dict(v, path)
    _keys(v, path, required=("front", "last"))
    front = []
    for i, pt in enumerate(_list(v["front"], f"{path}.front", 100_000)):
        pt = _list(pt, f"{path}.front[{i}]", 2)
        if len(pt) != 2:
            raise Malformed(f"{path}.front[{i}]", f"a point is [complexity, action], got {len(pt)} items")
        front.append([_int(pt[0], f"{path}.front[{i}][0]", lo=0), _number(pt[1], f"{path}.front[{i}][1]")])
    return {"front": front, "last": _int(v["last"], f"{path}.last", lo=0)}


def program(d, path: str) -> dict:
    """One program's state, its types and shapes checked (a new dict with exactly ``PROGRAM_KEYS``)."""
    _dict(d, path)
    _keys(d, path, required=PROGRAM_KEYS)
    out = {"uid": _str(d["uid"], f"{path}.uid", 500), "source": _str(d["source"], f"{path}.source", MAX_SOURCE),
           "canonical": _str(d["canonical"], f"{path}.canonical", MAX_SOURCE),
           "island": _int(d["island"], f"{path}.island", lo=0), "round": _int(d["round"], f"{path}.round", lo=0),
           "operator": _str(d["operator"], f"{path}.operator", 200),
           "parents": [_str(u, f"{path}.parents[{i}]", 500) for i, u in enumerate(_list(d["parents"], f"{path}.parents",
                                                                                       100))],
           "model": _opt(d["model"], lambda v, p: _str(v, p, 500), f"{path}.model")}
    for k in ("p0", "params", "score_p0"):
        out[k] = _opt(d[k], lambda v, p: _numbers(v, p, MAX_PARAMS), f"{path}.{k}")
    for k in ("train_action", "heldout_action", "gap"):
        out[k] = _opt(d[k], _number, f"{path}.{k}")
    out["complexity"] = _int(d["complexity"], f"{path}.complexity", lo=0)
    out["n_params"] = _int(d["n_params"], f"{path}.n_params", lo=0)
    out["error"] = _opt(d["error"], lambda v, p: _str(v, p, 20_000), f"{path}.error")
    out["tokens"] = _int(d["tokens"], f"{path}.tokens", lo=0)
    out["cost"] = _number(d["cost"], f"{path}.cost", lo=0.0)
    out["tree"] = _opt(d["tree"], _tree, f"{path}.tree")
    out["law"] = _opt(d["law"], law, f"{path}.law")
    if out["tree"] is not None and out["law"] is not None:
        raise Malformed(path, "a program has a GP tree or a term law, not both")
    return out


def law(v, path: str) -> list:
    """A term-structured law: ``[[kind, a, b, theta0], ...]`` (feature names are checked by the search)."""
    out = []
    for i, t in enumerate(_list(v, path, 64)):
        p = f"{path}[{i}]"
        t = _list(t, p, 4)
        if len(t) != 4:
            raise Malformed(p, f"a term is [kind, feature, feature or \"\", theta0], got {len(t)} items")
        kind = _str(t[0], f"{p}[0]", 10)
        if kind not in TERM_KINDS:
            raise Malformed(f"{p}[0]", f"unknown term kind {kind!r} (one of {', '.join(TERM_KINDS)})")
        out.append([kind, _str(t[1], f"{p}[1]", 200), _str(t[2], f"{p}[2]", 200), _number(t[3], f"{p}[3]")])
    return out


def _tree(v, path: str) -> list:
    out = []
    for i, node in enumerate(_list(v, path, 10_000)):
        p = f"{path}[{i}]"
        node = _list(node, p, 2)
        if len(node) != 2:
            raise Malformed(p, f"a tree node is [kind, value], got {len(node)} items")
        kind = node[0]
        if kind in ("f", "x"):
            out.append([kind, _str(node[1], f"{p}[1]", 200)])
        elif kind == "c":
            out.append([kind, _number(node[1], f"{p}[1]")])
        else:
            raise Malformed(f"{p}[0]", f"a tree node's kind is \"f\", \"x\" or \"c\", got {_show(kind)}")
    if not out:
        raise Malformed(path, "an empty GP tree")
    return out


def _random(v, path: str) -> tuple:
    _dict(v, path)
    _keys(v, path, required=("version", "internal", "gauss_next"))
    version = _int(v["version"], f"{path}.version")
    if version != 3:
        raise Malformed(f"{path}.version", f"random state version 3 expected, got {version}")
    internal = _list(v["internal"], f"{path}.internal", 625)
    if len(internal) != 625:
        raise Malformed(f"{path}.internal", f"625 integers expected, got {len(internal)} items")
    words = tuple(_int(w, f"{path}.internal[{i}]", lo=0, hi=2**32 - 1) for i, w in enumerate(internal))
    if words[-1] > 624:
        raise Malformed(f"{path}.internal[624]", f"the position is at most 624, got {words[-1]}")
    return (3, words, _opt(v["gauss_next"], _number, f"{path}.gauss_next"))


def _record(v, path: str) -> dict:
    _dict(v, path)
    _keys(v, path, optional=LOGBOOK_KEYS)
    out = {}
    for k, x in v.items():
        if k in ("best", "median"):
            out[k] = [_opt(y, _number, f"{path}.{k}[{i}]") for i, y in enumerate(_list(x, f"{path}.{k}", 100_000))]
        else:
            out[k] = _int(x, f"{path}.{k}", lo=0)
    return out


def _counters(v, path: str) -> dict:
    _dict(v, path)
    return {_str(k, path, 100): _number(x, f"{path}.{k}", lo=0.0, keep_int=True) for k, x in v.items()}


def _terms_state(v, path: str):
    if v is None:
        return None
    _dict(v, path)
    out: dict = {}
    for k, entries in v.items():
        p = f"{path}.{k}"
        if k == "_seeds":
            out[k] = [law(x, f"{p}[{i}]") for i, x in enumerate(_list(entries, p, 10_000))]
            continue
        if len(k) > 20:
            raise Malformed(p, "an archive key is a law size such as \"2\" or \"2-plain\"")
        rows = []
        for i, e in enumerate(_list(entries, p, 10_000)):
            q = f"{p}[{i}]"
            _dict(e, q)
            _keys(e, q, required=("terms", "uid", "train"))
            rows.append({"terms": law(e["terms"], f"{q}.terms"), "uid": _str(e["uid"], f"{q}.uid", 500),
                         "train": _number(e["train"], f"{q}.train")})
        out[k] = rows
    return out


def _extra(v, path: str):
    """The async loop's state (controller.py ``_extra``); a lockstep checkpoint has none."""
    if v is None:
        return None
    _dict(v, path)
    _keys(v, path, required=("loop",), optional=("made", "applied", "clock", "seq", "pending_llm", "jobs"))
    loop = _str(v["loop"], f"{path}.loop", 20)
    if loop != "async":
        return {"loop": loop}
    _keys(v, path, required=("loop", "made", "applied", "clock", "seq", "pending_llm", "jobs"))
    out = {"loop": loop, "made": [_int(x, f"{path}.made[{i}]", lo=0) for i, x in enumerate(_list(v["made"],
                                                                                                   f"{path}.made"))],
           "applied": _int(v["applied"], f"{path}.applied", lo=0), "clock": _int(v["clock"], f"{path}.clock", lo=0),
           "seq": _int(v["seq"], f"{path}.seq", lo=0),
           "pending_llm": [_bool(x, f"{path}.pending_llm[{i}]") for i, x in enumerate(_list(v["pending_llm"],
                                                                                            f"{path}.pending_llm"))],
           "jobs": []}
    seen = set()
    for i, j in enumerate(_list(v["jobs"], f"{path}.jobs", 100_000)):
        p = f"{path}.jobs[{i}]"
        _dict(j, p)
        _keys(j, p, required=("seq", "uid", "island", "rnd", "model", "parents"))
        seq = _int(j["seq"], f"{p}.seq", lo=0)
        if seq in seen or seq >= out["seq"]:
            raise Malformed(f"{p}.seq", f"job {seq} is repeated or not below the next sequence number {out['seq']}")
        seen.add(seq)
        out["jobs"].append({"seq": seq, "uid": _str(j["uid"], f"{p}.uid", 500),
                            "island": _int(j["island"], f"{p}.island", lo=0), "rnd": _int(j["rnd"], f"{p}.rnd", lo=0),
                            "model": _opt(j["model"], lambda x, q: _str(x, q, 500), f"{p}.model"),
                            "parents": [program(x, f"{p}.parents[{k}]")
                                        for k, x in enumerate(_list(j["parents"], f"{p}.parents", 16))]})
    return out


# ----------------------------------------------------------------------------- the type checks
def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _what(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(v), type(v).__name__)


def _dict(v, path: str) -> dict:
    if not isinstance(v, dict):
        raise Malformed(path, f"expected an object, got {_what(v)}")
    return v


def _keys(d: dict, path: str, required=(), optional=()) -> None:
    missing = [k for k in required if k not in d]
    if missing:
        raise Malformed(path, f"missing key {missing[0]!r}")
    extra = [k for k in d if k not in required and k not in optional]
    if extra:
        raise Malformed(path, f"unknown key {_show(extra[0])}")


def _list(v, path: str, max_len: int = MAX_LIST) -> list:
    if not isinstance(v, list):
        raise Malformed(path, f"expected a list, got {_what(v)}")
    if len(v) > max_len:
        raise Malformed(path, f"at most {max_len} items, got {len(v)}")
    return v


def _str(v, path: str, max_len: int) -> str:
    if not isinstance(v, str):
        raise Malformed(path, f"expected a string, got {_what(v)}")
    if len(v) > max_len:
        raise Malformed(path, f"a string of at most {max_len} characters, got {len(v)}")
    return v


def _bool(v, path: str) -> bool:
    if not isinstance(v, bool):
        raise Malformed(path, f"expected true or false, got {_what(v)}")
    return v


def _int(v, path: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise Malformed(path, f"expected an integer, got {_what(v)}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise Malformed(path, f"{v} is out of range")
    return v


def _number(v, path: str, lo: float | None = None, keep_int: bool = False):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Malformed(path, f"expected a number, got {_what(v)}")
    if isinstance(v, int) and keep_int:
        x = v
    else:
        try:
            x = float(v)
        except OverflowError:
            raise Malformed(path, "a number out of range") from None
    if not math.isfinite(x) or (lo is not None and x < lo):
        raise Malformed(path, f"{_show(v)} is out of range")
    return x


def _numbers(v, path: str, max_len: int) -> list:
    return [_number(x, f"{path}[{i}]") for i, x in enumerate(_list(v, path, max_len))]


def _opt(v, check, path: str):
    return None if v is None else check(v, path)
