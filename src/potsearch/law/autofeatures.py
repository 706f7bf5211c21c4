"""Automatic features for states that are neither words nor fitter expressions (and have no features table).

Three families, all computed from the state text:

* **numbers embedded in the text**: the k-th number of a state is feature k. ``r3c1`` gives two features,
  named after the letters before each number (``r`` = 3, ``c`` = 1); ``item-17`` gives ``item`` = 17. A
  number's name is those letters when every state that has a k-th number has the same letters before it
  (and they make a fresh identifier), else ``num0``, ``num1``, ... A ``-`` right before a number is its
  sign unless a letter or digit precedes it (``x=-3`` is -3, ``item-17`` is 17). A state with fewer numbers
  has 0 for the missing ones. At most ``MAX_NUMBERS`` numbers per state are read.
* **numeric fields of JSON states**: a state that is a JSON object gives one feature per numeric field,
  named by its key (nested objects: keys joined with ``_``; true = 1, false = 0; 0 where absent). The
  numbers of a JSON state's text are not read again as embedded numbers.
* **length and character classes** (``AUTO_FEATURES`` below) of states that are not JSON objects (a JSON
  state's text is its encoding: its length and punctuation say nothing about it; they are 0).

``auto_schema(texts)`` learns which features the run's states have (names, positions, JSON keys) and
keeps only those that vary across them; ``auto_features(texts, schema)`` computes that table for any
states (new ones included), and ``auto_docs(schema)`` gives a one-line description per feature. The
schema is plain JSON data: evolve records it in its summary, and best_potential.py embeds it with the
code between the ``# >>> embed auto`` / ``# <<< embed auto`` markers (copied verbatim: only ``json``,
``re`` and ``numpy``).
"""
from __future__ import annotations

import inspect
import keyword

# >>> embed auto
import json  # noqa: E402  (the embedded section imports what it uses)
import re  # noqa: E402

import numpy as np  # noqa: E402

AUTO_FEATURES = {
    "length": "number of characters of the state text",
    "n_letters": "letters in the state text",
    "n_digits": "digits in the state text",
    "n_upper": "upper-case letters in the state text",
    "n_punct": "punctuation and symbols in the state text (characters that are not letters, digits or spaces)",
    "n_spaces": "whitespace characters in the state text",
}
MAX_NUMBERS = 8
_NUMBER = re.compile(r"([A-Za-z]*)([^A-Za-z0-9]*?)(\d+(?:\.\d+)?)")  # letters, separators, the number


def _numbers(text):
    """[(letters before it, value)] of the numbers embedded in ``text`` (at most MAX_NUMBERS)."""
    out = []
    for m in _NUMBER.finditer(text):
        letters, sep, num = m.groups()
        after_digit = not letters and m.start() and text[m.start() - 1].isdigit()
        if sep == "." and after_digit:
            continue  # the tail of "1.2.3" is not a number of its own
        sign = sep.endswith("-") and (len(sep) > 1 or not (letters or after_digit))
        out.append((letters, -float(num) if sign else float(num)))
        if len(out) == MAX_NUMBERS:
            break
    return out


def _json_fields(text):
    """{key path: float} of the numeric fields of a JSON-object state; None when it is not one."""
    if not text.lstrip().startswith("{"):
        return None
    out = {}
    try:
        obj = json.loads(text)
        if not isinstance(obj, dict):
            return None
        _flatten(obj, "", out)
    except (ValueError, RecursionError):
        return None
    return out


def _flatten(d, prefix, out):
    for k, v in d.items():
        key = f"{prefix}_{k}" if prefix else str(k)
        if isinstance(v, dict):
            _flatten(v, key, out)
        elif isinstance(v, (bool, int, float)) and abs(v) < 1e300:  # finite (a huge int is left out)
            out[key] = float(v)


def _char_counts(texts):
    cols = {k: np.zeros(len(texts)) for k in AUTO_FEATURES}
    for i, t in enumerate(texts):
        n, letters, digits, spaces = len(t), sum(map(str.isalpha, t)), sum(map(str.isdigit, t)), sum(map(str.isspace, t))
        cols["length"][i], cols["n_letters"][i], cols["n_digits"][i] = n, letters, digits
        cols["n_upper"][i], cols["n_spaces"][i] = sum(map(str.isupper, t)), spaces
        cols["n_punct"][i] = n - sum(map(str.isalnum, t)) - spaces
    return cols


def auto_features(texts, schema):
    """Feature name -> float array (one value per text) for the features ``schema`` names."""
    texts = [str(t) for t in texts]
    out = {}
    numbers = {name: np.zeros(len(texts)) for name in schema["numbers"] if name}
    fields = {name: np.zeros(len(texts)) for name, _ in schema["json"]}
    is_json = np.zeros(len(texts), dtype=bool)
    for i, t in enumerate(texts):
        js = _json_fields(t)
        is_json[i] = js is not None
        if js is not None:
            for name, key in schema["json"]:
                fields[name][i] = js.get(key, 0.0)
        elif numbers:
            for k, (_, v) in enumerate(_numbers(t)[:len(schema["numbers"])]):
                if schema["numbers"][k]:
                    numbers[schema["numbers"][k]][i] = v
    if schema["fixed"]:
        counts = _char_counts(texts)
        out.update({k: np.where(is_json, 0.0, counts[k]) for k in schema["fixed"]})
    out.update(numbers)
    out.update(fields)
    return {k: out[k] for k in schema["order"]}
# <<< embed auto



def _identifier(name, taken):
    name = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not name.isidentifier() or keyword.iskeyword(name):
        name = "f_" + name
    base, k = name, 1
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name



def auto_schema(texts) -> dict:
    """Which automatic features ``texts`` have and what they are called; only features that vary
    across ``texts`` are kept. Plain JSON data (see the module doc)."""
    texts = [str(t) for t in texts]
    keys: dict[str, None] = {}
    letters: list[set] = []
    for t in texts:
        js = _json_fields(t)
        if js is not None:
            keys.update(dict.fromkeys(js))
            continue
        for k, (before, _) in enumerate(_numbers(t)):
            if k == len(letters):
                letters.append(set())
            letters[k].add(before)
    taken = set(AUTO_FEATURES)
    json_names = []
    for key in keys:
        json_names.append([_identifier(key, taken), key])
        taken.add(json_names[-1][0])
    numbers = []
    for k, seen in enumerate(letters):
        (only,) = seen if len(seen) == 1 else ("",)
        name = only if only.isidentifier() and not keyword.iskeyword(only) and only not in taken else f"num{k}"
        numbers.append(_identifier(name, taken))
        taken.add(numbers[-1])
    full = {"fixed": list(AUTO_FEATURES), "numbers": numbers, "json": json_names,
            "order": list(AUTO_FEATURES) + [n for n, _ in json_names] + numbers}
    table = auto_features(texts, full)
    varies = {k for k, v in table.items() if len(v) and np.ptp(v) > 0}
    return {"fixed": [k for k in AUTO_FEATURES if k in varies],
            "numbers": [n if n in varies else "" for n in numbers],
            "json": [[n, key] for n, key in json_names if n in varies],
            "order": [k for k in full["order"] if k in varies]}


def auto_docs(schema: dict) -> dict[str, str]:
    """Feature name -> one-line description, for the features ``schema`` names."""
    docs = {k: AUTO_FEATURES[k] for k in schema["fixed"]}
    for k, name in enumerate(schema["numbers"]):
        if name:
            after = "" if name == f"num{k}" else f", after '{name}'"
            docs[name] = f"number {k + 1} embedded in the state text{after} (0 when the state has fewer numbers)"
    for name, key in schema["json"]:
        docs[name] = f"numeric field {key!r} of the JSON state (true = 1, false = 0; 0 where absent)"
    return {k: docs[k] for k in schema["order"]}


def embedded_source(schema: dict) -> str:
    """Code for best_potential.py: the embedded section, the schema (JSON text read by json.loads) and
    ``feature_table(texts, meta=None)``."""
    text = inspect.getsource(inspect.getmodule(embedded_source))
    section = text.split("# >>> embed auto\n", 1)[1].split("# <<< embed auto\n", 1)[0]
    return (f"\n# ---- automatic features (the code of potsearch/law/autofeatures.py) ----\n{section}\n"
            f"AUTO_SCHEMA = json.loads({json.dumps(schema, separators=(',', ':'))!r})\n\n\n"
            f"def feature_table(texts, meta=None):\n"
            f"    return auto_features(list(texts), AUTO_SCHEMA)\n")
