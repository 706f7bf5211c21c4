"""Agent definitions (``agents/*.yaml``) validated into frozen dataclasses.

Every problem is reported as ``InputError`` naming the file and, where YAML
gives it, the line: unknown keys, wrong types, out-of-range values, missing
data files. Relative paths in a file are relative to that file's folder.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from potsearch.core.configload import load, option

KINDS = ("word", "fitter", "text", "python")
EXTRACTS = ("line", "regex", "json", "choice")
CASES = ("keep", "upper", "lower")
DECODING_MODES = ("free", "constrained")
PROTOCOLS = ("per_state", "chain", "population")
FITTER_FUNCTIONS = ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "abs", "sinh", "cosh", "atan")
SCORE_MAPPINGS = ("log", "linear")


# ---------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = option(1.0, ge=0.0, le=5.0)
    top_p: float = option(1.0, ge=0.0, le=1.0)
    max_tokens: int = option(16, ge=1, le=4096)  # for "constrained"; free decoding uses free_max_tokens
    free_max_tokens: int = option(48, ge=1, le=4096)
    samples_per_state: int = option(20, ge=1, le=10**7)  # K of the per-state protocol (the paper's N0)
    seed: int = 0


@dataclass(frozen=True)
class WordOptions:
    word_list: str = option(path=True)  # resolved path
    target_sum: int = option(100, ge=1, le=10000)


@dataclass(frozen=True)
class FitterOptions:
    dataset: str = option(path=True)  # resolved path
    target: str = "target"
    feature: str | None = None
    functions: tuple[str, ...] = option(FITTER_FUNCTIONS, choices=FITTER_FUNCTIONS)
    max_chars: int = option(300, ge=10, le=10000)
    max_depth: int = option(20, ge=2, le=50)
    max_nodes: int = option(200, ge=3, le=1000)
    max_params: int = option(8, ge=0, le=20)
    max_power: float = option(10.0, ge=1.0, le=100.0)
    max_constant: float = option(1e6, ge=1.0, le=1e300)
    n_starts: int = option(8, ge=1, le=200)
    max_seconds: float = option(2.0, ge=0.01, le=600.0)
    max_nfev: int = option(400, ge=1, le=10**6)
    score: str = option("log", choices=SCORE_MAPPINGS)  # "log": 20 points a decade of NMSE; "linear": 100*(1-NMSE)
    population: int = option(4, ge=1, le=50)  # sources shown in one prompt (population protocol)
    seed: int = 0


@dataclass(frozen=True)
class TextOptions:
    """A task described without Python (``kind: text``): how a reply becomes a state and what a valid
    state is (docs/agents.md, "Your own agent")."""
    extract: str = option("line", choices=EXTRACTS)   # line | regex (pattern) | json (field) | choice (states)
    pattern: str = ""             # extract: regex — a regular expression with one capture group
    field: str = ""               # extract: json — a field of the reply's JSON object (dotted: a.b)
    states: tuple[str, ...] = ()  # the valid states (choice needs them; otherwise optional)
    states_file: str | None = option(None, path=True)   # or one state a line
    valid: str = ""               # a regular expression every state must match in full
    min_length: int = option(1, ge=0, le=10**6)
    max_length: int = option(200, ge=1, le=10**6)
    case: str = option("keep", choices=CASES)


@dataclass(frozen=True)
class SurrogateOptions:
    hidden_potential: str = "1.6*length - 2.4*zipf"
    neighbours: int = option(6, ge=2, le=64)  # degree of the symmetric neighbour graph (even)
    # word graph: cycles follow V + jitter of locality*std(V); null = random
    locality: float | None = option(0.2, ge=1e-6, le=1e6)
    graph_seed: int = 12345
    drift: float = option(0.0, ge=-20.0, le=20.0)  # cyclic bias along neighbour cycle 0 (breaks detailed balance)
    escape_prob: float = option(0.0, ge=0.0, le=0.99)
    # fitter surrogate: states are sums of basis terms
    basis: tuple[str, ...] = ()
    max_terms: int = option(4, ge=1, le=8)
    # your own agent's surrogate (kind: text, or python with states; agents/statesurrogate.py)
    proposal: str = option("step", choices=("step", "edit", "moves"))  # the neighbour rule over the states
    step: float = option(1.0, gt=0.0, le=1e12)       # proposal step: the one feature's difference
    step_features: tuple[str, ...] = ()             # proposal step: the features compared (default all)
    moves_from: str | None = option(None, path=True)   # proposal moves: a CSV of transitions or a run directory
    features: str | None = option(None, path=True)     # a features table (default: the automatic features)


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    name: str
    kind: str = option(choices=KINDS)
    description: str = ""
    system: str = ""
    prompt: str
    decoding: str = option("constrained", choices=DECODING_MODES)
    protocol: str = option("", choices=PROTOCOLS)  # "" = by kind: per_state (word), population (fitter)
    initial: tuple[str, ...] = ()
    initial_random: int = option(0, ge=0, le=10**6)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    word: WordOptions | None = None
    fitter: FitterOptions | None = None
    text: TextOptions | None = None
    features: str = ""   # "module:function": a features function of the user's code (agents/featurefunc.py)
    agent_class: str = option("", key="class")   # kind: python — "module:Class", the user's own (trusted) code
    surrogate: SurrogateOptions = field(default_factory=SurrogateOptions)
    source: str = ""

    def __post_init__(self):
        if not self.protocol:
            object.__setattr__(self, "protocol", "population" if self.kind == "fitter" else "per_state")

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for run metadata)."""
        return asdict(self)


def _compile(expr: str, key: str, w, groups: int | None = None):
    try:
        rx = re.compile(expr)
    except re.error as exc:
        w.err(f"text.{key}: not a valid regular expression ({exc})", f"text.{key}")
    if groups is not None and rx.groups != groups:
        w.err(f"text.{key}: needs exactly {groups} capture group (...), has {rx.groups}", f"text.{key}")
    return rx


def check_text_options(opts: TextOptions | None, w) -> None:
    """Cross-field checks of a text agent's section (called by the config loader)."""
    opts = opts or TextOptions()
    if opts.extract == "regex":
        if not opts.pattern:
            w.err("text.extract: regex needs text.pattern (a regular expression with one capture group)", "text")
        _compile(opts.pattern, "pattern", w, groups=1)
    if opts.extract == "json" and not opts.field:
        w.err("text.extract: json needs text.field (the reply's JSON field holding the state)", "text")
    if opts.valid:
        _compile(opts.valid, "valid", w)
    if opts.extract == "choice" and not (opts.states or opts.states_file):
        w.err("text.extract: choice needs text.states (or text.states_file)", "text")
    if opts.min_length > opts.max_length:
        w.err("text.min_length is above text.max_length", "text.min_length")


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate one agent YAML file (``potsearch.core.configload``: one line naming file and line)."""
    cfg, w = load(AgentConfig, path, "agent")
    if cfg.surrogate.neighbours % 2:
        w.err("surrogate.neighbours must be even (the graph is a union of k/2 random cycles)", "surrogate.neighbours")
    sections = {"word": cfg.word, "fitter": cfg.fitter, "text": cfg.text}
    for name, present in sections.items():
        if present is not None and name != cfg.kind:
            w.err(f"a {cfg.kind} agent has no `{name}:` section", name)
    if cfg.kind == "word" and cfg.word is None:
        w.err("a word agent needs a `word:` section with `word_list:`")
    if cfg.kind == "fitter" and cfg.fitter is None:
        w.err("a fitter agent needs a `fitter:` section with `dataset:`")
    if cfg.kind == "text":
        check_text_options(cfg.text, w)
    if cfg.features:
        from potsearch.agents.featurefunc import is_function

        if not is_function(cfg.features):
            w.err(f"features: expected module:function (a features function of your code), got {cfg.features!r}",
                  "features")
    if (cfg.kind == "python") != bool(cfg.agent_class):
        w.err("`class: module:Class` goes with kind: python (and kind: python needs it)", "class")
    if not cfg.initial and not cfg.initial_random:
        w.err("give `initial:` states or `initial_random: N`")
    return cfg
