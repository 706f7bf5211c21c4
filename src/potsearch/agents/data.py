"""Data files the agents read: the sum-100 word list and the fitter's data set.

Everything an agent needs at run time is a file in ``data/`` whose first line is
a ``# provenance:`` comment, so runs never depend on the internals of the
packages the files were derived from. ``build_word_list`` regenerates the word
list from those packages (only needed to rebuild or audit the shipped file).
"""
from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from potsearch.core.errors import InputError

WORD_LIST_FILE = "words_sum100.tsv"
TARGET_SUM = 100
ZIPF_MIN = 1.5
MIN_LENGTH = 3
_INFLECTIONS = ("s", "es", "ed", "d", "ing", "er", "est", "ly", "ers")


def data_dir() -> Path:
    """The shipped data/ folder (source tree, or the installed copy: potsearch.core.resources)."""
    from potsearch.core.resources import shipped_dir

    return shipped_dir("data")


def letter_values(word: str) -> list[int]:
    """A=1 ... Z=26 (case-insensitive); the caller guarantees ASCII letters."""
    return [ord(c) - 64 for c in word.upper()]


def letter_sum(word: str) -> int:
    return sum(letter_values(word))


# ---------------------------------------------------------------- word list
@dataclass(frozen=True)
class WordList:
    words: tuple[str, ...]  # upper case, sorted
    zipf: np.ndarray  # wordfreq Zipf frequency of each word (log10 per billion words)
    provenance: str
    path: str

    def index(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}


def load_word_list(path: str | Path | None = None) -> WordList:
    """Read a word list: ``# provenance`` line, header ``word<TAB>zipf``, one word a line."""
    path = Path(path) if path else data_dir() / WORD_LIST_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read word list: {exc.strerror}", str(path)) from None
    prov = ""
    words: list[str] = []
    zipf: list[float] = []
    for no, line in enumerate(lines, 1):
        if line.startswith("# provenance:"):
            prov = line[len("# provenance:") :].strip()
            continue
        if not line.strip() or line.startswith("#") or line.startswith("word\t"):
            continue
        parts = line.split("\t")
        w = parts[0].strip().upper()
        if not (w.isascii() and w.isalpha()):
            raise InputError(f"not a word of ASCII letters: {parts[0]!r}", str(path), no)
        words.append(w)
        try:
            zipf.append(float(parts[1]) if len(parts) > 1 else 0.0)
        except ValueError:
            raise InputError(f"bad zipf value {parts[1]!r}", str(path), no) from None
    if not words:
        raise InputError("the word list is empty", str(path))
    order = np.argsort(np.array(words))
    return WordList(
        tuple(words[i] for i in order), np.array(zipf, dtype=float)[order], prov, str(path)
    )


def build_word_list(zipf_min: float = ZIPF_MIN, min_length: int = MIN_LENGTH, target: int = TARGET_SUM):
    """Rebuild the shipped list from the installed packages. Returns (rows, provenance).

    A word is kept when it is lower-case ASCII letters, at least ``min_length``
    long, its letters sum to ``target``, wordfreq's English Zipf frequency is
    >= ``zipf_min`` (it is attested in running text) and it is a common (not
    capitalised) word of the web2 dictionary shipped by english-words, or a
    regular inflection of one (-s, -es, -ed, -d, -ing, -er, -est, -ly, -ers,
    with a dropped e, y->i or doubled consonant). The dictionary test drops the
    names, brands and web tokens of wordfreq's list; the frequency test drops
    web2's obsolete words but keeps plurals and verb forms (PROBLEMS, WIZARDS).
    """
    import importlib.metadata as md

    import wordfreq
    from english_words import get_english_words_set

    web2 = get_english_words_set(["web2"], alpha=True)
    common = {w for w in web2 if w.islower()}

    def in_dictionary(w: str) -> bool:
        if w in common:
            return True
        for suf in _INFLECTIONS:
            if w.endswith(suf) and len(w) - len(suf) >= 3:
                b = w[: -len(suf)]
                cands = [b, b + "e"]
                if len(b) >= 2 and b[-1] == b[-2]:
                    cands.append(b[:-1])
                if b.endswith("i"):
                    cands.append(b[:-1] + "y")
                if any(c in common for c in cands):
                    return True
        return False

    freq = wordfreq.get_frequency_dict("en", "large")
    rows = []
    for w in freq:
        if not (w.isascii() and w.isalpha() and w.islower() and len(w) >= min_length):
            continue
        if letter_sum(w) != target:
            continue
        z = wordfreq.zipf_frequency(w, "en", "large")
        if z >= zipf_min and in_dictionary(w):
            rows.append((w.upper(), z))
    rows.sort()
    prov = (
        f"words whose letters sum to {target} (A=1..Z=26), at least {min_length} letters, from the packages "
        f"wordfreq {md.version('wordfreq')} (English 'large' list, Zipf frequency >= {zipf_min}; frequency data "
        f"CC BY-SA 4.0) and english-words {md.version('english-words')} (web2 = Webster's 2nd International, "
        "public domain: a word must be a lower-case web2 entry or a regular inflection of one); "
        "zipf column = wordfreq.zipf_frequency(word, 'en'). This derived list is CC BY-SA 4.0. "
        f"{len(rows)} words. Rebuild: potsearch.agents.data.build_word_list()"
    )
    return rows, prov


def write_word_list(path: Path, rows, provenance: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(f"# provenance: {provenance}\n")
        fh.write("word\tzipf\n")
        for w, z in rows:
            fh.write(f"{w}\t{z:.2f}\n")


# ---------------------------------------------------------------- regression data
@dataclass(frozen=True)
class Dataset:
    x: np.ndarray
    y: np.ndarray
    name: str
    feature: str
    provenance: str
    path: str

    def describe(self) -> dict:
        return {
            "name": self.name,
            "n": int(self.x.size),
            "feature": self.feature,
            "x_min": float(self.x.min()),
            "x_max": float(self.x.max()),
            "y_min": float(self.y.min()),
            "y_max": float(self.y.max()),
            "provenance": self.provenance,
        }


def load_dataset(path: str | Path, target: str = "target", feature: str | None = None) -> Dataset:
    """Read a 1-D regression set: CSV/TSV, optionally .gz (PMLB's format is a
    tab-separated .tsv.gz with a ``target`` column). ``#`` lines are comments
    (a ``# provenance:`` line is kept). One feature column besides the target,
    or name it with ``feature``."""
    import pandas as pd

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read data set: {exc.strerror}", str(path)) from None
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(f"not a readable gzip file ({exc})", str(path)) from None
    text = raw.decode("utf-8", "replace")
    prov = ""
    for line in text.splitlines():
        if line.startswith("# provenance:"):
            prov = line[len("# provenance:") :].strip()
            break
    stem = path.name.split(".")[0]
    sep = "\t" if (".tsv" in path.name or "\t" in text.split("\n", 3)[-1][:2000]) else ","
    try:
        df = pd.read_csv(io.StringIO(text), sep=sep, comment="#")
    except Exception as exc:  # pandas raises many types
        raise InputError(f"cannot parse data set ({type(exc).__name__}: {exc})", str(path)) from None
    if target not in df.columns:
        raise InputError(f"no {target!r} column (columns: {', '.join(map(str, df.columns))})", str(path))
    others = [c for c in df.columns if c != target]
    if feature is None:
        if len(others) != 1:
            raise InputError(
                f"expected one feature column besides {target!r}, found {len(others)}: name it with `feature:`",
                str(path),
            )
        feature = str(others[0])
    elif feature not in df.columns:
        raise InputError(f"no feature column {feature!r}", str(path))
    try:
        x = df[feature].to_numpy(dtype=float)
        y = df[target].to_numpy(dtype=float)
    except (ValueError, TypeError):
        raise InputError("non-numeric values in the feature or target column", str(path)) from None
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 3:
        raise InputError("fewer than 3 finite rows", str(path))
    return Dataset(x[ok], y[ok], stem, feature, prov, str(path))
