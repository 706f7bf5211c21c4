"""The LLM operator: prompt a model with the task, the features, sample states and 2-4 parents;
extract the function from the reply; check it (AST allowlist); score it in the sandbox.

Any litellm model string works (one per island, from the config); ``local`` is the offline
SmolLM2-135M provider of ``potsearch.agents.local``. Calls go through ``potsearch.llm.client``. Tokens and dollar cost are counted per call
(cost from litellm's bundled price map, 0 for local models). Code written by a model never runs in
this process: ``check_source`` first, then ``SandboxPool`` (rlimited, killable subprocesses) runs
``potsearch.law.scoring:score_program``.

Outcomes recorded in the candidates table (``error`` column): ``llm: ...`` (the call failed),
``no code: ...`` (no function found in the reply), ``rejected: ...`` (allowlist), sandbox errors
(``timeout``, ``killed: ...``, exceptions) and the scorer's own errors; otherwise the scores.
"""
from __future__ import annotations

import math
import re

import numpy as np

from potsearch.search.config import SearchConfig
from potsearch.search.problem import Problem

TASK = "potsearch.law.scoring:score_program"

SYSTEM = ("You are a scientist writing small, readable numpy functions. You answer with one Python code block "
          "and nothing else.")

PROMPT = """We study an agent that moves between states (here: {agent} states). It moves from state f to
state g more often when g has a LOWER potential V than f. Find a formula for V from the features below.
A formula is scored by the least-action principle after its parameters p are fitted: lower is better.
The best possible score (one free number per state) is {s_min:.4f}.

Write Python in exactly this form (numpy is available as np, math as math; nothing else, no imports):

```python
N_PARAMS = 3
def potential(x, p):
    # x["name"] is a numpy array with one value per state, p is a numpy array of N_PARAMS numbers
    return p[0] * x["vowels"] + p[1] * np.log1p(x["length"]) + p[2]
```

Features (x["name"]):
{features}

Some states with their fitted potential (lower = the agent prefers it):
{samples}

Previous formulas and their scores (lower is better):
{parents}

Write a new, better formula. Reply with one ```python code block only."""

_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)
_START = re.compile(r"^(?:N_PARAMS\s*=|def potential\s*\()", re.M)
_P_INDEX = re.compile(r"\bp\[(\d{1,4})\]")

MAX_REPLY_CHARS = 40_000   # a reply longer than this is refused before any parsing
MAX_REPLY_LINES = 1_500
MAX_PARSES = 8             # parse attempts per reply (each on a strictly shorter text)
STORED_REPLY_CHARS = 4_000  # a reply stored for the record (no code found) is cut to this


class ReplyRejected(ValueError):
    """The reply cannot be used (too big, unparsable, nested too deeply...); the message says why."""


PROMPT_COMPACT = """An agent moves between {agent} states, more often towards states with a LOWER potential V.
Find a formula V(x, p) from the features x["name"] below; its parameters p are fitted, and the score is
the least action (lower is better; the best possible is {s_min:.4f}).
Features:
{features}
Previous formulas and their scores:
{parents}
Write one new, better formula as a python block defining N_PARAMS and potential(x, p)."""


def extract_source(reply: str) -> str | None:
    """The candidate program in a reply, or None when the reply holds no function ``potential``.

    Takes the first code block that defines ``potential`` (else the text from ``N_PARAMS`` or
    ``def potential`` on), drops trailing lines from the first syntax error on (small models ramble
    after the function), then keeps only the function definitions and ``N_PARAMS`` — imports of
    numpy/math (np and math are provided), prints and example calls are dropped. ``N_PARAMS`` is set
    when missing or raised to cover the largest ``p[i]`` used. Whatever remains still goes through
    ``check_source``.

    Bounded: replies over MAX_REPLY_CHARS characters or MAX_REPLY_LINES lines are refused unread;
    at most MAX_PARSES parses, each of a strictly shorter text (linear in the reply); the kept
    statements are cut out of the text by their line numbers (no unparse, no recursion). Raises
    :class:`ReplyRejected` with the reason for anything it cannot handle (too big, nested too
    deeply for the parser, out of memory) — never another exception."""
    try:
        return _extract(reply)
    except ReplyRejected:
        raise
    except RecursionError:
        raise ReplyRejected("reply nested too deeply to parse (RecursionError)") from None
    except MemoryError:
        raise ReplyRejected("reply too large to parse (MemoryError)") from None
    except Exception as exc:  # noqa: BLE001 - whatever a reply does, it is one rejection
        raise ReplyRejected(f"reply could not be parsed ({type(exc).__name__})") from None


def _extract(reply: str) -> str | None:
    import ast

    if not reply:
        return None
    if len(reply) > MAX_REPLY_CHARS:
        raise ReplyRejected(f"reply too long ({len(reply)} characters > {MAX_REPLY_CHARS})")
    n_lines = reply.count("\n") + 1
    if n_lines > MAX_REPLY_LINES:
        raise ReplyRejected(f"reply too long ({n_lines} lines > {MAX_REPLY_LINES})")
    blocks = [b for b in _BLOCK.findall(reply) if "def potential" in b]
    if blocks:
        src = blocks[0]
    else:
        m = _START.search(reply)
        if not m:
            return None
        src = reply[m.start():].split("```")[0]
    if "def potential" not in src:
        return None
    lines = src.strip("\n").split("\n")
    tree = None
    cut = len(lines)
    for _ in range(MAX_PARSES):
        if cut <= 0:
            break
        try:
            tree = ast.parse("\n".join(lines[:cut]) + "\n")
        except SyntaxError as e:
            tree = None
            bad = e.lineno if isinstance(e.lineno, int) else cut
            # keep what precedes the offending line (a line past the end means an unclosed block)
            cut = min(cut - 1, max(bad - 1, 0))
            continue
        except ValueError:
            return "\n".join(lines) + "\n"  # e.g. NUL bytes: check_source will say why
        if any(isinstance(n, ast.FunctionDef) and n.name == "potential" for n in tree.body):
            break
        tree = None
        break
    if tree is None:
        return "\n".join(lines) + "\n"  # unparsable: check_source will say why
    keep = [n for n in tree.body if isinstance(n, ast.FunctionDef) or (
        isinstance(n, ast.Assign) and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)
        and n.targets[0].id == "N_PARAMS")]
    funcs = [n for n in keep if isinstance(n, ast.FunctionDef)]
    assigns = [n for n in keep if isinstance(n, ast.Assign)]
    chunks = []
    for f in funcs:  # the definitions' own text (decorators included: check_source refuses them)
        first = min([f.lineno] + [d.lineno for d in f.decorator_list])
        chunks.append("\n".join(lines[first - 1:f.end_lineno]))
    body = "\n\n".join(chunks)
    idx = [int(i) for i in _P_INDEX.findall(body)]
    need = max(idx) + 1 if idx else 0
    declared = assigns[-1].value.value if assigns and isinstance(assigns[-1].value, ast.Constant) else None
    n_params = declared if isinstance(declared, int) and not isinstance(declared, bool) and declared >= need \
        else need
    return f"N_PARAMS = {n_params}\n\n" + body + "\n"


def stored_reply(text: str) -> str:
    """What the store keeps of a reply without usable code: at most STORED_REPLY_CHARS characters."""
    if len(text) <= STORED_REPLY_CHARS:
        return text
    return text[:STORED_REPLY_CHARS] + f"\n[... reply cut: {len(text)} characters in all]"


def messages(prompt: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}]


def model_client(llm, name: str):
    """The client of one configured model (``llm``: the search's LLMConfig). No retries: a failed
    call is one failed candidate, recorded, and the search goes on."""
    from potsearch.llm.client import LLMClient

    entry = (llm.prices or {}).get(name)
    price = (float(entry["input"]) / 1e6, float(entry["output"]) / 1e6) if entry else None
    return LLMClient(name, timeout=llm.timeout, retries=0, temperature=llm.temperature, max_tokens=llm.max_tokens,
                     api_base=llm.api_base or None, price=price)


def reply_record(reply) -> dict:
    """A model call (``llmclient.Reply``) as the search records it."""
    return {"text": reply.text if reply.error is None else None, "tokens": reply.tokens, "cost": reply.cost,
            "error": f"llm: {reply.error}"[:500] if reply.error else None, "seconds": reply.latency,
            "kind": reply.kind, "throttled": reply.throttled}


def screen_reply(text: str | None, check_source) -> tuple[str, str, str | None]:
    """One model reply, screened: ``(source to store, canonical form,
    rejection)``. The rejection is None when the program may go to the sandbox, else the reason stored
    on the candidate ("rejected: ..." for a refused reply or program, "no code: ..." for none). Never
    raises: any failure to parse is a rejection."""
    from potsearch.search.candidate import canonical_source

    text = text or ""
    try:
        src = extract_source(text)
    except ReplyRejected as exc:
        return stored_reply(text), "", "rejected: " + str(exc)
    if src is None:
        return stored_reply(text), "", "no code: the reply defines no function potential(x, p)"
    try:
        canonical = canonical_source(src)
    except (RecursionError, MemoryError, SyntaxError, ValueError) as exc:
        return stored_reply(src), src, f"rejected: program could not be normalised ({type(exc).__name__})"
    reasons = check_source(src)
    if reasons:
        return stored_reply(src), canonical, "rejected: " + "; ".join(reasons)[:400]
    return src, canonical, None


class LLMOperator:
    def __init__(self, cfg: SearchConfig, problem: Problem, pool=None):
        from potsearch.core.errors import InputError

        try:
            from potsearch.sandbox import SandboxPool, check_source
        except ImportError as exc:  # pragma: no cover - the sandbox ships with potsearch
            raise InputError(f"the LLM operator needs the sandbox (potsearch.sandbox): {exc}",
                             cfg.source or None) from None
        if "local" in cfg.llm.models:
            from potsearch.agents.local import llama_available

            why = llama_available()
            if why:
                raise InputError(f"llm.models lists 'local' but the local model cannot run here: {why}",
                                 cfg.source or None)

        from potsearch.llm.client import get_litellm

        get_litellm()  # imported now: litellm's import draws from the global random state the search seeds
        self.cfg = cfg
        self.problem = problem
        self.check_source = check_source
        sb = cfg.sandbox
        self.pool = pool or SandboxPool(workers=sb.workers, cpu_seconds=sb.cpu_seconds, memory_mb=sb.memory_mb,
                                        wall_timeout=sb.wall_timeout, tasks=(TASK,))
        self._own_pool = pool is None
        self.payload = problem.data.payload()
        self.payload["fit"] = dict(self.payload["fit"], starts=max(3, cfg.fit.starts))
        self.spent = 0.0
        rng = np.random.default_rng(cfg.seed)
        n = problem.n_states
        self.sample_idx = np.sort(rng.choice(n, min(n, cfg.llm.samples_in_prompt), replace=False))
        self.feature_doc = problem.library.docs

    def close(self) -> None:
        if self._own_pool:
            self.pool.close()

    def budget_left(self) -> bool:
        return self.cfg.llm.max_cost is None or self.spent < self.cfg.llm.max_cost

    # ------------------------------------------------------------------ prompt
    def prompt(self, parents) -> str:
        if self.cfg.llm.grammar:  # the grammar fixes the form: a short prompt fits a small model's context
            return self.prompt_compact(parents)
        pr = self.problem
        feats = "\n".join(f"- {k}: {self.feature_doc.get(k, '')}" for k in pr.usable)
        show = pr.usable[:6]
        lines = []
        for i in self.sample_idx:
            vals = ", ".join(f"{k}={pr.features[k][i]:.3g}" for k in show)
            t = pr.target[i]
            lines.append(f"- {pr.names[i]}: V = {t:.3f} ({vals})" if math.isfinite(t) else f"- {pr.names[i]} ({vals})")
        par = []
        for p in sorted(parents, key=lambda q: q.fitness.values[0]):
            score = f"score {p.train_action:.4f}" if p.ok else f"failed: {(p.error or '')[:80]}"
            par.append(f"# {score}\n{p.source.strip()}")
        return PROMPT.format(agent=pr.agent, s_min=pr.s_min_train, features=feats, samples="\n".join(lines),
                             parents="\n\n".join(par) or "(none yet)")

    def prompt_compact(self, parents) -> str:
        pr = self.problem
        feats = "\n".join(f"- {k}: {self.feature_doc.get(k, '')}"[:90] for k in pr.usable)
        par = []
        for p in sorted(parents, key=lambda q: q.fitness.values[0]):
            score = f"score {p.train_action:.4f}" if p.ok else "failed"
            body = p.source.strip().splitlines()[-1].strip()
            par.append(f"{body}   # {score}")
        return PROMPT_COMPACT.format(agent=pr.agent, s_min=pr.s_min_train, features=feats,
                                     parents="\n".join(par) or "(none yet)")

    def grammar(self) -> str | None:
        """The GBNF grammar of the potential language over this search's features (llm.grammar)."""
        if not self.cfg.llm.grammar:
            return None
        if getattr(self, "_grammar", None) is None:
            from potsearch.law.potential_grammar import potential_grammar

            self._grammar = potential_grammar(self.problem.usable)
        return self._grammar
