"""GBNF grammars for constrained decoding (llama.cpp).

- ``word_grammar(words)``: a radix trie of the word list as nested
  alternations, so the model can only emit a word of the list (one valid
  state per reply). About 2 characters of grammar per letter of the list.
- ``expression_grammar(functions, ...)``: parametric expressions (every term
  starts with a parameter; bounded nesting, single-digit numbers, small
  exponents), a sub-language of the fitter's parser, so every completed reply
  passes its limits.

With a grammar the agent is "the model restricted to valid states" (say so in
run metadata: ``decoding_note(mode)``).
"""
from __future__ import annotations

from typing import Iterable


def constrained(mode: str) -> bool:
    """Whether decoding ``mode`` asks for a grammar: True for "constrained", False for "free", ValueError
    for anything else (every agent's ``grammar(mode)`` starts here)."""
    if mode not in ("free", "constrained"):
        raise ValueError(f"unknown decoding mode {mode!r}")
    return mode == "constrained"


def decoding_note(mode: str) -> str:
    if mode == "constrained":
        return "constrained decoding (GBNF): the model restricted to valid states"
    return "free decoding: whatever the model writes; invalid replies are escapes"


# ---------------------------------------------------------------- word trie
def _trie(words: Iterable[str]) -> dict:
    root: dict = {}
    for w in words:
        node = root
        for c in w:
            node = node.setdefault(c, {})
        node[""] = {}  # end marker
    return root


def _alts(node: dict) -> str:
    """GBNF alternation for the children of ``node`` (compressing single-child chains)."""
    items = []
    for c in sorted(k for k in node if k):
        label = c
        child = node[c]
        # follow chains of a single child that is not a word end
        while len(child) == 1 and "" not in child:
            (c2, nxt), = child.items()
            label += c2
            child = nxt
        kids = [k for k in child if k]
        if not kids:  # a leaf: the word ends here
            items.append(f'"{label}"')
        else:
            opt = "?" if "" in child else ""
            items.append(f'"{label}" ({_alts(child)}){opt}')
    return " | ".join(items)


def word_grammar(words: Iterable[str]) -> str:
    """GBNF accepting exactly the given words (letters A-Z)."""
    words = sorted({w.strip().upper() for w in words if w.strip()})
    if not words:
        raise ValueError("empty word list")
    for w in words:
        if not (w.isascii() and w.isalpha()):
            raise ValueError(f"not a word of letters: {w!r}")
    return f"root ::= {_alts(_trie(words))}\n"


# ---------------------------------------------------------------- expressions
def expression_grammar(
    functions: Iterable[str] = ("exp", "log", "sqrt", "sin", "cos", "tanh", "abs"),
    max_params: int = 8,
    max_power: int = 4,
    max_terms: int = 4,
) -> str:
    """GBNF for parametric expressions in x (a sub-language of the fitter's parser).

    A reply is a sum of at most ``max_terms`` terms; every term starts with a
    parameter, optionally times/divided by up to two factors (``x``, ``x**k``, a
    function of an inner sum, or a parenthesised inner sum). Inner sums have at
    most three terms (a parameter, a power of x, or a parameter times a power of
    x or a function of a linear argument such as ``param2*x + 1``; a digit only
    after the first term, so no purely numeric call like ``log(1)``).
    Nesting is therefore at most two calls deep, numbers are single digits and
    exponents are 2..max_power or a parameter. Examples it accepts:
    ``param1*tanh(param2*x + param3) + param4``, ``param1 - param2/(x + param3)``,
    ``param1*exp(-param2*x) + param3``, ``param1*x/(1 + param2*log(x + 1))``.
    """
    funcs = sorted(set(functions))
    max_params = max(1, min(9, int(max_params)))
    max_power = max(2, min(9, int(max_power)))
    fn = " | ".join(f'"{f}"' for f in funcs)
    lines = [
        f"root ::= term (add term){{0,{max(0, max_terms - 1)}}}",
        'add ::= " + " | " - "',
        f'param ::= "param" [1-{max_params}]',
        f'xpow ::= "x" ("**" ([2-{max_power}] | param))?',
        f"fn ::= {fn}",
        'term ::= param (("*" | "/") factor){0,2}',
        'factor ::= xpow | fn "(" inner ")" | "(" inner ")"',
        "inner ::= iterm0 (add iterm){0,2}",
        'iterm0 ::= "-"? (xpow | param | param "*" ifactor)',
        "iterm ::= iterm0 | [1-9]",
        'ifactor ::= xpow | fn "(" arg ")"',
        'arg ::= "-"? (param "*")? xpow (add (param | [1-9]))?',
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- any finite list of states
def _gbnf_literal(s: str) -> str:
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable() and ch.isascii():
            out.append(ch)
        else:
            cp = ord(ch)
            out.append(f"\\x{cp:02X}" if cp < 0x80 else f"\\u{cp:04X}" if cp < 0x10000 else f"\\U{cp:08X}")
    return '"' + "".join(out) + '"'


def choice_grammar(states: Iterable[str]) -> str:
    """GBNF accepting exactly one of ``states`` (any text; quotes, backslashes and non-ASCII escaped)."""
    items = sorted({s for s in states if s})
    if not items:
        raise ValueError("empty state list")
    return "root ::= " + " | ".join(_gbnf_literal(s) for s in items) + "\n"
