"""Import and export of transitions.

Formats (chosen by file extension):

* ``.csv`` / ``.tsv``: header with columns ``source,target[,count]`` (any other
  column is an error naming it; ``count_column`` names a differently called count
  column; ``split_by`` names a column whose value says which run a row belongs to,
  :func:`read_split`). An empty target or ``<escape>`` is an escape; target == source is a
  self-loop; count defaults to 1 and must be a non-negative integer. Lines
  starting with ``#`` are comments (used for provenance). Large files are read by
  pandas' C parser; on any problem the careful line-by-line reader re-reads the
  file to name the offending line. A state cell that starts with an apostrophe
  followed by ``= + - @ | # <``, tab, CR or further apostrophes (and is not a
  number behind it) loses that one apostrophe: it is the spreadsheet guard export
  writes (``textsafe.csv_cell``), so an exported CSV/TSV reads back exactly.
* ``.jsonl``: one object per line, ``{"source": ..., "target": ... or null, "count": n}``.
* ``.json``: the paper's public dataset — a list of records
  ``{"target_expression", "target_score", "source_expressions": [{"expression", "score"}, ...]}``.
  Rule: every (source expression, target expression) pair in a record is ONE
  sample source -> target (a source listed twice counts twice). Scores are kept
  as state metadata. On export, escapes are written as records whose
  ``target_expression`` is null (an extension of the format), so a round trip
  keeps every count.

Every problem is reported as one line naming the file and line (``InputError``).
"""
from __future__ import annotations

import csv
import hashlib
import io as _io
import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from potsearch.core.errors import InputError
from potsearch.store import ESCAPE, Counts, RunStore
from potsearch.core.textsafe import EXPORT_START, csv_cell, csv_value

ESCAPE_TOKEN = "<escape>"
FORMATS = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".json": "paper-json"}


@dataclass
class Row:
    source: str
    target: str | None
    count: int
    line: int
    group: str | None = None      # the row's value in the split_by column (read_split)


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(
            f"unknown file type {path.suffix or '(none)'!r}: expected .csv, .tsv, .jsonl or .json (paper dataset)",
            str(path),
        )
    return fmt


def _count(value, where: str, line: int) -> int:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return 1
    if isinstance(value, bool):
        raise InputError(f"count must be a non-negative integer, got {value!r}", where, line)
    if isinstance(value, (int, np.integer)):
        n = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise InputError(f"count must be a non-negative integer, got {value!r}", where, line)
        n = int(value)
    else:
        s = str(value).strip()
        try:
            n = int(s)
        except ValueError:
            raise InputError(f"count must be a non-negative integer, got {s!r}", where, line) from None
    if n < 0:
        raise InputError(f"count must be a non-negative integer, got {n}", where, line)
    return n


def _state(value, what: str, where: str, line: int, allow_escape: bool, guarded: bool = False) -> str | None:
    """A state cell: stripped; empty or ``<escape>`` is an escape where allowed. ``guarded`` (CSV/TSV):
    a cell that starts with export's spreadsheet guard loses it (``textsafe.csv_value``)."""
    if value is None:
        if allow_escape:
            return None
        raise InputError(f"{what} is missing", where, line)
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got {type(value).__name__}", where, line)
    s = value.strip()
    if allow_escape and (s == "" or s == ESCAPE_TOKEN):
        return None
    if s == "" or s == ESCAPE_TOKEN:
        raise InputError(f"{what} is empty", where, line)
    if guarded and value.startswith("'"):
        s = csv_value(s, EXPORT_START)
    return s


def header_columns(header: list[str], where: str, line: int, count_column: str | None = None,
                   split_by: str | None = None) -> tuple[int, int, int | None, int | None]:
    """Positions of source, target, count and the ``split_by`` column in a CSV/TSV header. Imports never
    guess: a column that is not expected is an error naming it (a misspelt count column would otherwise make
    every count 1; a model column would merge several models into one run)."""
    count_name = (count_column or "count").strip().lower()
    split_name = split_by.strip().lower() if split_by is not None else None
    expected = ("source", "target", count_name) + ((split_name,) if split_name else ())
    for col in ("source", "target"):
        if col not in header:
            raise InputError(f"missing column {col!r} (header: {','.join(header)})", where, line)
    if split_name in ("source", "target", count_name):
        raise InputError(f"--split-by {split_name} names the {split_name} column; split by another column", where, line)
    if count_column is not None and count_name not in header:
        raise InputError(f"no column {count_name!r} for --count-column (header: {','.join(header)})", where, line)
    if split_name is not None and split_name not in header:
        raise InputError(f"no column {split_name!r} for --split-by (header: {','.join(header)})", where, line)
    for col in header:
        if col not in expected:
            hint = "" if count_column else f"; if {col!r} holds the counts, pass --count-column {col}"
            hint += "" if split_by else f"; to write one run per value of {col!r}, pass --split-by {col}"
            raise InputError(f"unknown column {col!r} (expected source, target and optionally {count_name}{hint})",
                             where, line)
    dup = [c for c in expected if header.count(c) > 1]
    if dup:
        raise InputError(f"column {dup[0]!r} appears twice", where, line)
    return (header.index("source"), header.index("target"), header.index(count_name) if count_name in header
            else None, header.index(split_name) if split_name else None)


def _group(value, what: str, where: str, line) -> str:
    """A row's value in the split_by column or field: non-empty text (a JSON number is written as text)."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or (
            isinstance(value, float) and not math.isfinite(value)):
        raise InputError(f"{what} must be text or a number, got {json.dumps(value)[:40]}", where, line)
    s = str(value).strip()
    if not s:
        raise InputError(f"{what} is empty: every row needs a value", where, line)
    return s


def read_rows(path: str | Path, count_column: str | None = None,
              split_by: str | None = None) -> tuple[list[Row], dict[str, dict]]:
    """Parse a transitions file. Returns rows and per-state metadata (scores from the paper JSON).
    ``split_by``: a CSV/TSV column, a JSONL field or a paper-JSON record field giving each row's ``group``."""
    path = Path(path)
    where = str(path)
    fmt = detect_format(path)
    try:
        with open(path, encoding="utf-8", newline="") as fh:   # a carriage return in a quoted cell is kept
            text = fh.read()
    except FileNotFoundError:
        raise InputError("file not found", where) from None
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", where) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", where) from None
    if not text.strip():
        raise InputError("file is empty", where)
    meta: dict[str, dict] = {}
    rows: list[Row] = []
    if fmt in ("csv", "tsv"):
        # lines starting with '#' are comments (provenance lines); blank them to keep line numbers
        parts = re.split(r"(\r\n|\r|\n)", text)        # lines (even places) and their line ends
        text = "".join("" if k % 2 == 0 and part.startswith("#") else part for k, part in enumerate(parts))
        reader = csv.reader(_io.StringIO(text, newline=""), delimiter="," if fmt == "csv" else "\t")
        try:
            header = []
            while not any(h.strip() for h in header):
                header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise InputError("file has no header line", where) from None
        except csv.Error as exc:
            raise InputError(f"malformed {fmt.upper()}: {exc}", where, 1) from None
        si, ti, ci, gi = header_columns(header, where, reader.line_num, count_column, split_by)
        gwhat = f"the --split-by column {split_by!r}"
        try:
            for rec in reader:
                line = reader.line_num
                if not rec or all(not c.strip() for c in rec):
                    continue
                if len(rec) != len(header):
                    raise InputError(f"expected {len(header)} fields, found {len(rec)}", where, line)
                src = _state(rec[si], "source", where, line, allow_escape=False, guarded=True)
                tgt = _state(rec[ti], "target", where, line, allow_escape=True, guarded=True)
                rows.append(Row(src, tgt, _count(rec[ci] if ci is not None else None, where, line), line,
                                None if gi is None else _group(rec[gi], gwhat, where, line)))
        except csv.Error as exc:
            raise InputError(f"malformed {fmt.upper()}: {exc}", where, reader.line_num) from None
    elif fmt == "jsonl":
        for line, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InputError(f"broken JSON: {exc.msg} (column {exc.colno})", where, line) from None
            if not isinstance(obj, dict):
                raise InputError("each line must be a JSON object", where, line)
            if "source" not in obj:
                raise InputError("missing field 'source'", where, line)
            if "target" not in obj:
                raise InputError("missing field 'target' (null for an escape)", where, line)
            if split_by is not None and split_by not in obj:
                raise InputError(f"missing field {split_by!r} for --split-by", where, line)
            rows.append(
                Row(
                    _state(obj["source"], "source", where, line, False),
                    _state(obj["target"], "target", where, line, True),
                    _count(obj.get("count"), where, line),
                    line,
                    None if split_by is None else _group(obj[split_by], f"field {split_by!r}", where, line),
                )
            )
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"broken JSON: {exc.msg} (column {exc.colno})", where, exc.lineno) from None
        if not isinstance(data, list):
            raise InputError("expected a JSON list of records (the paper dataset format)", where, 1)
        for i, rec in enumerate(data):
            loc = f"{where} record {i}"
            if not isinstance(rec, dict):
                raise InputError("record is not an object", loc)
            for key in ("target_expression", "source_expressions"):
                if key not in rec:
                    raise InputError(f"missing field {key!r}", loc)
            tgt = _state(rec["target_expression"], "target_expression", loc, None, allow_escape=True)
            if tgt is not None and rec.get("target_score") is not None:
                meta.setdefault(tgt, {})["score"] = rec["target_score"]
            if split_by is not None and split_by not in rec:
                raise InputError(f"missing field {split_by!r} for --split-by", loc)
            group = None if split_by is None else _group(rec[split_by], f"field {split_by!r}", loc, None)
            srcs = rec["source_expressions"]
            if not isinstance(srcs, list):
                raise InputError("source_expressions must be a list", loc)
            for j, s in enumerate(srcs):
                if not isinstance(s, dict) or "expression" not in s:
                    raise InputError(f"source_expressions[{j}] needs an 'expression'", loc)
                src = _state(s["expression"], f"source_expressions[{j}].expression", loc, None, False)
                if s.get("score") is not None:
                    meta.setdefault(src, {})["score"] = s["score"]
                rows.append(Row(src, tgt, 1, i, group))
    if not rows:
        raise InputError("no transitions in file", where)
    return rows, meta


def rows_to_counts(rows: list[Row], meta: dict | None = None) -> Counts:
    agg: Counter = Counter()
    index: dict[str, int] = {}
    for r in rows:
        s = index.setdefault(r.source, len(index))
        t = ESCAPE if r.target is None else index.setdefault(r.target, len(index))
        agg[(s, t)] += r.count
    keys = [k for k, v in agg.items() if v > 0]
    src = np.array([k[0] for k in keys], dtype=np.int64)
    dst = np.array([k[1] for k in keys], dtype=np.int64)
    cnt = np.array([agg[k] for k in keys], dtype=np.int64)
    return Counts(list(index), src, dst, cnt, meta={"state_meta": meta or {}})


FAST_MIN_BYTES = 1 << 22     # smaller files: the careful reader is faster than importing pandas


def _fast_csv(path: Path, fmt: str, count_column: str | None, split_by: str | None = None):
    """Read a CSV/TSV with pandas' C parser. Returns (state names in order of first appearance, source code,
    target code (ESCAPE for an escape), count, the split_by column's value or None) per data row, or None when anything is unusual (quotes the C
    parser reads differently, a '#' line after the header, a bad field): the careful reader then reads the
    file and names the line."""
    import pandas as pd

    sep = "," if fmt == "csv" else "\t"
    with open(path, "rb") as fh:
        head = fh.read(1 << 20)
    lines = head.split(b"\n")
    skip = 0
    while skip < len(lines) - 1 and (lines[skip].startswith(b"#") or not lines[skip].strip()):
        skip += 1
    if b'"' in lines[skip]:
        return None
    try:
        header = [h.strip().lower() for h in lines[skip].decode("utf-8").rstrip("\r").split(sep)]
    except UnicodeDecodeError:
        return None
    si, ti, ci, gi = header_columns(header, str(path), skip + 1, count_column, split_by)
    try:
        dtype = {name: "category" for name in header}    # hashed in the parser: no object per field
        if ci is not None:
            dtype[header[ci]] = np.int64                 # an empty or non-integer count raises: careful reader
        df = pd.read_csv(path, sep=sep, skiprows=skip, header=0, names=header, dtype=dtype, keep_default_na=False,
                         na_filter=False, engine="c", encoding="utf-8", quoting=0, skip_blank_lines=True,
                         comment=None, on_bad_lines="error", low_memory=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return None
    if len(df.columns) != len(header):
        return None
    groups = None
    if gi is not None:
        g = df.iloc[:, gi].cat
        values = pd.Index(g.categories).str.strip()
        if (values == "").any() or (g.codes < 0).any():
            return None                                  # an empty value: the careful reader names the line
        groups = np.asarray(values, dtype=object)[g.codes]
    src, tgt = df.iloc[:, si].cat, df.iloc[:, ti].cat
    if ci is None:
        cnt = np.ones(len(df), dtype=np.int64)
    else:
        cnt = df.iloc[:, ci].to_numpy(dtype=np.int64)
        if len(cnt) and cnt.min() < 0:
            return None
    # one numbering for both columns' categories, then states in order of first appearance (source before
    # target within a row), as the careful reader numbers them
    cat_codes, cat_names = pd.factorize(np.concatenate([np.asarray(src.categories, dtype=object),
                                                        np.asarray(tgt.categories, dtype=object)]))
    n_sc = len(src.categories)
    both = np.empty(2 * len(df), dtype=np.int64)
    both[0::2], both[1::2] = cat_codes[:n_sc][src.codes], cat_codes[n_sc:][tgt.codes]
    codes, first = pd.factorize(both)
    uniques = np.asarray(cat_names, dtype=object)[first]
    stripped = pd.Index(uniques).str.strip()
    if (stripped != uniques).any() or stripped.str.startswith("#").any():
        return None                                      # padded or comment-like names: careful reader
    esc = np.flatnonzero((uniques == "") | (uniques == ESCAPE_TOKEN))
    s_codes, t_codes = codes[0::2], codes[1::2]
    if len(esc) and np.isin(s_codes, esc).any():
        return None                                      # an empty source: the careful reader names the line
    if len(df) == 0:
        return None
    keep = np.ones(len(uniques), dtype=bool)
    keep[esc] = False
    remap = np.full(len(uniques), ESCAPE, dtype=np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    names = [str(u) for u in np.asarray(uniques, dtype=object)[keep]]
    for i in np.flatnonzero(pd.Index(names).str.startswith("'")):   # export's spreadsheet guard undone
        names[i] = csv_value(names[i], EXPORT_START)
    return names, remap[s_codes], remap[t_codes], cnt, groups


def _aggregate(names, s, t, c, meta) -> Counts:
    """Sum counts per (source, target) pair, pairs in order of first appearance, zero totals dropped."""
    key = s.astype(np.int64) * (len(names) + 1) + (t + 1)          # ESCAPE = -1 -> 0
    uniq, first, inv = np.unique(key, return_index=True, return_inverse=True)
    total = np.bincount(inv.ravel(), weights=c, minlength=len(uniq)).astype(np.int64)
    order = np.argsort(first, kind="stable")
    uniq, total = uniq[order], total[order]
    ok = total > 0
    uniq, total = uniq[ok], total[ok]
    return Counts(list(names), uniq // (len(names) + 1), uniq % (len(names) + 1) - 1, total,
                  meta={"state_meta": meta or {}})


def read_table(path: str | Path, count_column: str | None = None):
    """Rows of a transitions file as arrays: (state names, source code, target code or ESCAPE, count, meta).
    CSV/TSV files above FAST_MIN_BYTES go through pandas; everything else through :func:`read_rows`."""
    return _read(path, count_column, None)[0]


def read_split(path: str | Path, count_column: str | None, split_by: str):
    """(:func:`read_table`'s table, each row's value in the ``split_by`` column or field as an object array)."""
    return _read(path, count_column, split_by)


def _read(path, count_column, split_by):
    path = Path(path)
    fmt = detect_format(path)
    if fmt in ("csv", "tsv"):
        try:
            big = path.stat().st_size >= FAST_MIN_BYTES
        except OSError:
            big = False
        fast = _fast_csv(path, fmt, count_column, split_by) if big else None
        if fast is not None:
            return (*fast[:4], {}), fast[4]
    rows, meta = read_rows(path, count_column, split_by)
    index: dict[str, int] = {}
    s = np.empty(len(rows), dtype=np.int64)
    t = np.empty(len(rows), dtype=np.int64)
    c = np.empty(len(rows), dtype=np.int64)
    for i, r in enumerate(rows):
        s[i] = index.setdefault(r.source, len(index))
        t[i] = ESCAPE if r.target is None else index.setdefault(r.target, len(index))
        c[i] = r.count
    groups = np.array([r.group for r in rows], dtype=object) if split_by is not None else None
    return (list(index), s, t, c, meta), groups


def read_counts(path: str | Path, count_column: str | None = None) -> Counts:
    names, s, t, c, meta = read_table(path, count_column)
    counts = _aggregate(names, s, t, c, meta)
    counts.meta["file"] = str(path)
    return counts


def file_digest(path: str | Path) -> str:
    """The first 16 hex digits of the file's SHA-256 (read in 1 MB pieces)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for piece in iter(lambda: fh.read(1 << 20), b""):
            h.update(piece)
    return h.hexdigest()[:16]


def import_file(path: str | Path, store: RunStore, chunk: int = 50_000, count_column: str | None = None,
                table=None, rows=None) -> dict:
    """Import a file into a store: data row i with count n stands for the samples with uids
    import:<file hash>:i:0..n-1, so importing the same file twice adds nothing. All-or-nothing: parse first,
    then one transaction (the rows are stored in bulk, see potsearch.store.imports). ``table``: the file
    already read by :func:`read_table` (not read again); ``rows``: the row numbers of its rows in the file's
    table when some were dropped (:func:`drop_states`), so a later import of the whole file adds exactly the
    rows left out. Records the ``import`` stage for ``status``."""
    path = Path(path)
    names, src, tgt, cnt, meta = table if table is not None else read_table(path, count_column)
    digest = file_digest(path)
    n_in_file = int(np.asarray(cnt).sum())
    added = store.add_import(digest, list(names), src, tgt, cnt, meta, rows=rows)
    info = {"file": str(path), "samples_in_file": n_in_file, "added": added, "duplicates": n_in_file - added}
    store.log_event("import", "import", {"file": str(path), "samples": n_in_file, "added": added})
    store.set_stage_result("import", {"file": path.name, "rows": int(len(cnt)), "samples_in_file": n_in_file,
                                      "added": added, "store_samples": store.n_samples()})
    return info


def _csv_line(cells: list[str], sep: str) -> str:
    """One CSV/TSV line as ``csv.writer`` writes it (quotes only where needed, "\\n" line ends), except
    that a cell holding a carriage return is quoted too (``csv.writer`` leaves it bare when the line
    terminator is "\\n", and a reader then ends the row there)."""
    def cell(c: str) -> str:
        return f'"{c.replace(chr(34), chr(34) * 2)}"' if any(x in c for x in (sep, '"', "\n", "\r")) else c

    return sep.join(cell(c) for c in cells) + "\n"


def export_counts(counts: Counts, path: str | Path, state_meta: dict | None = None) -> int:
    """Write ``counts`` as CSV/TSV, JSONL or the paper's JSON (by extension); returns the samples written.
    CSV/TSV state cells carry the spreadsheet guard (``textsafe.csv_cell``: a name starting with
    ``= + - @ |``, tab or CR gets a leading apostrophe, so a spreadsheet shows it as text; so does one
    starting with ``#`` or ``<``, which import would read as a comment or an escape) and import removes
    it, so the file reads back exactly; JSONL and JSON hold the names exactly as they are."""
    path = Path(path)
    fmt = detect_format(path)
    state_meta = state_meta or {}
    names = counts.states
    rows = [
        (names[s], None if d == ESCAPE else names[d], int(c))
        for s, d, c in zip(counts.src, counts.dst, counts.count)
        if c > 0
    ]
    rows.sort(key=lambda r: (r[0], r[1] or ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("csv", "tsv"):
        sep = "," if fmt == "csv" else "\t"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            fh.write(_csv_line(["source", "target", "count"], sep))
            for s, t, c in rows:
                fh.write(_csv_line([csv_cell(s, EXPORT_START), ESCAPE_TOKEN if t is None else csv_cell(t, EXPORT_START),
                                    str(c)], sep))
    elif fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as fh:
            for s, t, c in rows:
                fh.write(json.dumps({"source": s, "target": t, "count": c}) + "\n")
    else:
        by_target: dict = {}
        for s, t, c in rows:
            by_target.setdefault(t, []).extend([s] * c)
        out = []
        for t, srcs in by_target.items():
            out.append(
                {
                    "target_expression": t,
                    "target_score": (state_meta.get(t) or {}).get("score") if t else None,
                    "source_expressions": [
                        {"expression": s, "score": (state_meta.get(s) or {}).get("score")} for s in srcs
                    ],
                }
            )
        path.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return sum(r[2] for r in rows)


def invalid_states(names: list[str], agent: str) -> dict[str, str]:
    """States an agent could never produce, with the reason: for a fitter agent ("fitter" or a YAML of kind
    fitter) every state must parse as an expression under the agent's limits; other agents accept any text."""
    from potsearch.agents.registry import builtin_agent_path
    from potsearch.agents.config import load_config

    path = builtin_agent_path(agent) if agent in ("word", "fitter") else Path(agent)
    config = load_config(path)
    if config.kind != "fitter":
        return {}
    from potsearch.agents.fitter import ExpressionError, parse_expression

    bad: dict[str, str] = {}
    for name in names:
        try:
            parse_expression(name, config.fitter)
        except ExpressionError as exc:
            bad[name] = str(exc)
    return bad


def drop_states(table, bad: set[str]):
    """The table without rows whose source or target is in ``bad``; also the number of rows dropped and the
    positions of the rows kept (their row numbers in the file's table, for :func:`import_file`)."""
    names, s, t, c, meta = table
    flag = np.array([n in bad for n in names] + [False], dtype=bool)     # index -1 (ESCAPE) -> False
    drop = flag[s] | flag[t]
    return (names, s[~drop], t[~drop], c[~drop], meta), int(drop.sum()), np.flatnonzero(~drop)
