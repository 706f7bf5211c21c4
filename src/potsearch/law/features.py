"""Feature library: numbers computed from a state's text, one array per feature.

A candidate potential is ``potential(x, p)`` where ``x`` maps a feature name to a
numpy array with one value per state (see docs/dev/contracts.md). This module
computes that table, vectorised over states, for each agent kind:

* ``word`` — the constrained word agent (letters A=1 ... Z=26; valid words sum to 100);
* ``fitter`` — the expression-fitting agent (states are expressions with free parameters).

``feature_table(agent_kind, texts, meta)`` returns ``dict[str, np.ndarray]``;
``FEATURES[kind]`` documents every feature (name -> one-line meaning).

The code between the ``# >>> embed`` / ``# <<< embed`` markers is copied verbatim into
``runs/NAME/best_potential.py`` (see ``embedded_source``), so the exported potential computes
exactly the features the search saw, without importing potsearch. Keep those sections
self-contained: only ``math``, ``re`` and ``numpy`` (plus ``wordfreq``, imported lazily).
"""
from __future__ import annotations

import inspect
import re

import numpy as np

AGENT_KINDS = ("word", "fitter")

# >>> embed common
import math  # noqa: E402  (embedded sections import what they use)
import re  # noqa: E402,F811

import numpy as np  # noqa: E402,F811
# <<< embed common

# >>> embed word
# ---- word agent features -------------------------------------------------------------------
# Letters are valued A=1 ... Z=26 (the agent's rule: a valid word's letters sum to 100).
# Non-letters are ignored. Every feature is a float array with one value per word.
WORD_FEATURES = {
    "length": "number of letters",
    "letter_sum": "sum of letter values (A=1 ... Z=26); 100 for a valid state",
    "sum_dev": "|letter_sum - 100|: distance from the agent's constraint",
    "vowels": "number of vowels (A, E, I, O, U)",
    "consonants": "number of consonants (letters that are not A, E, I, O, U; Y counts as a consonant)",
    "vowel_frac": "vowels / length",
    "distinct": "number of distinct letters",
    "repeats": "length - distinct: letters used more than once",
    "doubles": "adjacent equal letters (the LL in EXCELLENT)",
    "mean_letter": "mean letter value",
    "max_letter": "largest letter value",
    "min_letter": "smallest letter value",
    "var_letter": "variance of the letter values",
    "first_letter": "value of the first letter",
    "last_letter": "value of the last letter",
    "rarity": "sum of Scrabble tile scores (a rarity proxy: Q, Z = 10; E, A = 1)",
    "rare_letters": "letters with a Scrabble score >= 4 (F H V W Y K J X Q Z)",
    "zipf": "word frequency, Zipf scale (log10 per billion words + 3; 0 = unknown) from the wordfreq package",
}

_SCRABBLE = {
    **dict.fromkeys("AEILNORSTU", 1), **dict.fromkeys("DG", 2), **dict.fromkeys("BCMP", 3),
    **dict.fromkeys("FHVWY", 4), "K": 5, **dict.fromkeys("JX", 8), **dict.fromkeys("QZ", 10),
}
_SCRABBLE_BY_VALUE = np.array([0] + [_SCRABBLE[chr(64 + i)] for i in range(1, 27)], dtype=float)
_VOWEL_BY_VALUE = np.array([0] + [1.0 if chr(64 + i) in "AEIOU" else 0.0 for i in range(1, 27)])


def _letter_matrix(words):
    """(n, L) int matrix of letter values, 0 = padding; and the letter counts per word."""
    cleaned = [re.sub(r"[^A-Z]", "", str(w).upper()) for w in words]
    n = len(cleaned)
    width = max((len(c) for c in cleaned), default=0) or 1
    m = np.zeros((n, width), dtype=np.int64)
    for i, c in enumerate(cleaned):
        if c:
            m[i, : len(c)] = np.frombuffer(c.encode("ascii"), dtype=np.uint8) - 64
    return m, np.array([len(c) for c in cleaned], dtype=float), cleaned


def _zipf(cleaned):
    try:
        from wordfreq import zipf_frequency
    except ImportError as exc:  # pragma: no cover - wordfreq is a dependency
        raise ImportError("the 'zipf' feature needs the wordfreq package (pip install wordfreq)") from exc
    return np.array([zipf_frequency(c.lower(), "en") if c else 0.0 for c in cleaned], dtype=float)


def word_features(words, meta=None, zipf=None):
    """All WORD_FEATURES for a list of words, vectorised over a padded letter matrix. ``zipf``: the
    words' Zipf frequencies when known (e.g. from the agent's word list); else looked up."""
    m, length, cleaned = _letter_matrix(words)
    present = m > 0
    safe_len = np.maximum(length, 1.0)
    letter_sum = m.sum(axis=1).astype(float)
    vowels = _VOWEL_BY_VALUE[m].sum(axis=1)
    onehot = np.zeros((m.shape[0], 27), dtype=bool)
    onehot[np.repeat(np.arange(m.shape[0]), m.shape[1]), m.ravel()] = True
    distinct = onehot[:, 1:].sum(axis=1).astype(float)
    mean = letter_sum / safe_len
    var = np.where(present, (m - mean[:, None]) ** 2, 0.0).sum(axis=1) / safe_len
    big = np.where(present, m, 99)
    last_idx = np.maximum(length.astype(np.int64) - 1, 0)
    doubles = ((m[:, 1:] == m[:, :-1]) & present[:, 1:]).sum(axis=1).astype(float) if m.shape[1] > 1 \
        else np.zeros(m.shape[0])
    scr = _SCRABBLE_BY_VALUE[m]
    return {
        "length": length,
        "letter_sum": letter_sum,
        "sum_dev": np.abs(letter_sum - 100.0),
        "vowels": vowels,
        "consonants": length - vowels,
        "vowel_frac": vowels / safe_len,
        "distinct": distinct,
        "repeats": length - distinct,
        "doubles": doubles,
        "mean_letter": mean,
        "max_letter": m.max(axis=1).astype(float),
        "min_letter": np.where(length > 0, big.min(axis=1), 0).astype(float),
        "var_letter": var,
        "first_letter": m[:, 0].astype(float),
        "last_letter": m[np.arange(m.shape[0]), last_idx].astype(float),
        "rarity": scr.sum(axis=1),
        "rare_letters": (scr >= 4).sum(axis=1).astype(float),
        "zipf": _zipf(cleaned) if zipf is None else np.asarray(zipf, dtype=float).reshape(len(cleaned)),
    }
# <<< embed word

# >>> embed fitter
# ---- fitter agent features -----------------------------------------------------------------
# States are expressions such as "param1 * log(log_v_k_nu) + param2". They are tokenised with
# one regular expression whose identifier rule takes the longest run of [A-Za-z0-9_], so
# "log_v_k_nu" is one token (never "log" + rest) and "tanh" never counts as "tan" (the pitfall
# of the paper's reference tokenizer, design notes section 3). Function names are matched against
# whole identifier tokens, longest names first.
FITTER_FUNCTIONS = ("arcsinh", "arccosh", "arctanh", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
                    "sin", "cos", "tan", "exp", "log10", "log2", "log1p", "log", "sqrt", "abs", "pow",
                    "sign", "erf", "sigmoid")
FITTER_FEATURES = {
    "chars": "length of the expression text (spaces removed)",
    "nodes": "complexity: number of tokens that are operands, operators or function calls",
    "depth": "maximum parenthesis nesting depth",
    "n_params": "distinct free parameters (param1, param2, ... or p1, p2, ..., or p[0], p[1], ...)",
    "n_vars": "occurrences of the input variable (any identifier that is not a function or a parameter)",
    "n_numbers": "numeric literals",
    "n_add": "'+' operators", "n_sub": "'-' operators (binary or unary)", "n_mul": "'*' operators",
    "n_div": "'/' operators", "n_pow": "'**' or '^' operators",
    "n_funcs": "function calls of any kind",
    "terms": "additive terms at the top level (split at binary '+'/'-' outside parentheses; an intercept counts)",
    **{f"fn_{f}": f"calls of {f}" for f in FITTER_FUNCTIONS},
    "valid": "1 if the expression parses as a Python/numexpr expression with balanced parentheses, else 0",
    "score": "the state's score from the run's state metadata (0 where absent)",
    "has_score": "1 if the state has a score in the metadata",
}

_TOKEN = re.compile(r"\s*(?:(\*\*)|(\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)"
                    r"|(\S))")
_PARAM = re.compile(r"^(?:param\d+|p\d+|p|a\d*|b\d*|c\d*|k\d*)$")
_FUNC_SET = set(FITTER_FUNCTIONS)


def tokenize_expression(text):
    """Tokens of an expression: ('op', '**'), ('num', '1.5'), ('id', 'log_v_k_nu'), ('op', '(') ...
    Identifiers are maximal, so a function name inside a longer identifier never matches."""
    out = []
    for m in _TOKEN.finditer(str(text)):
        if m.group(1):
            out.append(("op", "**"))
        elif m.group(2):
            out.append(("num", m.group(2)))
        elif m.group(3):
            out.append(("id", m.group(3)))
        elif m.group(4):
            out.append(("op", m.group(4)))
    return out


def _expression_row(text):
    toks = tokenize_expression(text)
    row = dict.fromkeys(("nodes", "depth", "n_params", "n_vars", "n_numbers", "n_add", "n_sub", "n_mul",
                         "n_div", "n_pow", "n_funcs", "terms"), 0.0)
    fn = dict.fromkeys(FITTER_FUNCTIONS, 0.0)
    params = set()
    depth = level = 0
    balanced = True
    terms = 1.0 if toks else 0.0
    for i, (kind, tok) in enumerate(toks):
        prev = toks[i - 1] if i else None
        if level == 0 and tok in ("+", "-") and kind == "op" and prev is not None and \
                (prev[0] in ("num", "id") or prev[1] == ")"):
            terms += 1
        nxt = toks[i + 1][1] if i + 1 < len(toks) else None
        if kind == "num":
            row["n_numbers"] += 1
            row["nodes"] += 1
        elif kind == "id":
            row["nodes"] += 1
            if tok in _FUNC_SET and nxt == "(":
                fn[tok] += 1
                row["n_funcs"] += 1
            elif tok.startswith("np") and nxt == ".":
                row["nodes"] -= 1  # the "np." prefix of np.exp(...)
            elif _PARAM.match(tok):
                if nxt == "[" and i + 2 < len(toks) and toks[i + 2][0] == "num":
                    params.add(tok + "[" + toks[i + 2][1] + "]")
                else:
                    params.add(tok)
            elif nxt == "(":
                row["n_funcs"] += 1
            else:
                row["n_vars"] += 1
        else:
            if tok == "(":
                level += 1
                depth = max(depth, level)
            elif tok == ")":
                level -= 1
                balanced = balanced and level >= 0
            elif tok == "+":
                row["n_add"] += 1
                row["nodes"] += 1
            elif tok == "-":
                row["n_sub"] += 1
                row["nodes"] += 1
            elif tok == "*":
                row["n_mul"] += 1
                row["nodes"] += 1
            elif tok == "/":
                row["n_div"] += 1
                row["nodes"] += 1
            elif tok in ("**", "^"):
                row["n_pow"] += 1
                row["nodes"] += 1
    row["depth"] = float(depth)
    row["terms"] = terms
    row["n_params"] = float(len(params))
    valid = balanced and level == 0 and bool(toks)
    if valid:
        try:
            compile(str(text).replace("^", "**"), "<expr>", "eval")
        except (SyntaxError, ValueError):
            valid = False
    row["valid"] = 1.0 if valid else 0.0
    row["chars"] = float(len(re.sub(r"\s+", "", str(text))))
    for f, v in fn.items():
        row["fn_" + f] = v
    return row


def fitter_features(exprs, meta=None):
    """All FITTER_FEATURES for a list of expressions; ``meta`` maps text -> {"score": ...}."""
    meta = meta or {}
    rows = [_expression_row(e) for e in exprs]
    names = [k for k in FITTER_FEATURES if k not in ("score", "has_score")]
    out = {k: np.array([r[k] for r in rows], dtype=float) for k in names}
    scores = []
    for e in exprs:
        s = (meta.get(e) or {}).get("score")
        try:
            s = float(s)
        except (TypeError, ValueError):
            s = math.nan
        scores.append(s)
    sc = np.array(scores, dtype=float)
    out["has_score"] = np.isfinite(sc).astype(float)
    out["score"] = np.where(np.isfinite(sc), sc, 0.0)
    return out
# <<< embed fitter

FEATURES = {"word": WORD_FEATURES, "fitter": FITTER_FEATURES}
_BUILDERS = {"word": word_features, "fitter": fitter_features}


def feature_table(agent_kind: str, texts, meta: dict | None = None) -> dict[str, np.ndarray]:
    """Feature name -> float array (one value per text) for ``agent_kind`` ('word' or 'fitter')."""
    if agent_kind not in _BUILDERS:
        raise ValueError(f"unknown agent kind {agent_kind!r} (choose from {', '.join(AGENT_KINDS)})")
    table = _BUILDERS[agent_kind](list(texts), meta)
    return {k: np.asarray(table[k], dtype=float) for k in FEATURES[agent_kind]}


def guess_agent_kind(texts) -> str:
    """'word' when every state is a single run of letters; 'fitter' when at least half of them read as
    fitter expressions (numbers, identifiers, operators and parentheses, with a free parameter such as
    param1 or a function call); else 'automatic' (features read from the text: potsearch.law.autofeatures)."""
    texts = list(texts)
    if texts and all(re.fullmatch(r"[A-Za-z]+", t.strip() or "-") for t in texts):
        return "word"
    if texts and 2 * sum(map(_looks_like_expression, texts)) >= len(texts):
        return "fitter"
    return "automatic"


_EXPRESSION_OPS = frozenset("+-*/^()[].,") | {"**"}


def _looks_like_expression(text) -> bool:
    toks = tokenize_expression(text)
    if not toks or any(kind == "op" and tok not in _EXPRESSION_OPS for kind, tok in toks):
        return False
    return any(kind == "id" and (re.fullmatch(r"param\d+|p\d+", tok) or
                                 (tok in _FUNC_SET and i + 1 < len(toks) and toks[i + 1][1] == "("))
               for i, (kind, tok) in enumerate(toks))


def embedded_source(agent_kind: str) -> str:
    """The verbatim feature code for ``agent_kind`` (common imports + its section) for best_potential.py."""
    if agent_kind not in _BUILDERS:
        raise ValueError(f"unknown agent kind {agent_kind!r}")
    text = inspect.getsource(inspect.getmodule(embedded_source))
    parts = []
    for section in ("common", agent_kind):
        m = re.search(rf"^# >>> embed {section}\n(.*?)^# <<< embed {section}\n", text, re.S | re.M)
        if m is None:  # pragma: no cover - guarded by tests
            raise RuntimeError(f"embed section {section!r} missing from features.py")
        parts.append(m.group(1))
    builder = "word_features" if agent_kind == "word" else "fitter_features"
    names = "WORD_FEATURES" if agent_kind == "word" else "FITTER_FEATURES"
    parts.append(
        f"\n\ndef feature_table(texts, meta=None):\n"
        f"    table = {builder}(list(texts), meta)\n"
        f"    return {{k: np.asarray(table[k], dtype=float) for k in {names}}}\n"
    )
    return "".join(parts)
