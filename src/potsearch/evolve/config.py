"""Search configuration: frozen dataclasses validated from YAML (search_configs/*.yaml).

Every problem is one line naming the file and line: ``error: FILE:LINE: message`` (InputError,
exit status 2). Unknown keys are errors (a typo must not silently fall back to a default).
The reference of every key is docs/evolve.md; ``search_configs/default.yaml`` shows them all.
"""
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..errors import InputError
from ..yamlio import SafeLoader


@dataclass(frozen=True)
class FitConfig:
    starts: int = 1            # parameter starts per candidate (the inherited values, then random)
    max_iter: int = 40         # Gauss-Newton iterations per start (bounds the time; keeps runs repeatable)
    max_seconds: float = 2.0   # wall-clock safety net per candidate
    tol: float = 1e-7          # relative improvement at which a start stops


@dataclass(frozen=True)
class GPConfig:
    primitives: tuple = ("add", "sub", "mul", "div", "neg", "square", "sqrt", "log", "exp", "tanh")
    features: tuple = ()       # empty: every feature that varies across the run's states
    max_height: int = 6        # static limit on tree height (bloat control)
    max_size: int = 30         # static limit on tree size (nodes)
    init_min_depth: int = 1
    init_max_depth: int = 3
    cx_prob: float = 0.5       # crossover probability; otherwise one mutation, chosen uniformly
    parsimony: float = 1e-5    # selection score = train action + parsimony * complexity


@dataclass(frozen=True)
class LLMConfig:
    models: tuple = ()         # litellm model strings, one per island (cycled); "local" = SmolLM2
    mix: tuple = (0.0,)        # probability that an offspring comes from the LLM: one value or one per island
    temperature: float = 0.8
    max_tokens: int = 400
    parents: int = 3           # parents shown in the prompt (2-4)
    samples_in_prompt: int = 12  # states shown with their target potentials
    timeout: float = 120.0     # seconds per LLM call
    max_cost: Optional[float] = None  # stop calling LLMs once this many dollars are spent
    concurrency: int = 0       # model calls in flight at most (async loop); 0 = 64 remote, sandbox.workers local
    when_busy: str = "wait"    # an island at its cap of outstanding model calls: wait (mix holds) | gp (a GP child instead)
    grammar: bool = False      # constrain replies by a GBNF grammar of the potential language (local / llama.cpp servers)
    api_base: str = ""         # base URL of an OpenAI-compatible server (passed to litellm); "" = provider default


@dataclass(frozen=True)
class SandboxConfig:
    workers: int = 2
    cpu_seconds: int = 20
    memory_mb: int = 2048
    wall_timeout: float = 30.0


@dataclass(frozen=True)
class SearchConfig:
    seed: int = 0
    rounds: int = 4000
    islands: int = 16
    population: int = 16       # programs kept per island
    offspring: int = 2         # new programs per island per round
    tournament: int = 3        # tournament size for parent selection
    migrate_every: int = 50    # rounds between ring migrations (0 = never)
    migrants: int = 1          # programs sent to the next island at each migration
    reset_every: int = 500     # rounds between resets of the weakest islands (0 = never)
    reset_fraction: float = 0.5
    checkpoint_every: int = 100
    workers: int = 1           # processes evaluating GP candidates (1 = in this process)
    heldout_fraction: float = 0.2
    agent: str = "auto"        # feature library: auto | word | fitter
    loop: str = "async"        # async: steady state, no round barrier; lockstep: rounds wait for every reply
    hall_of_fame: int = 20
    terms_mix: float = 0.1     # share of non-LLM offspring from the term-structured operator (0 = GP only)
    terms_max: int = 4         # most terms in a term-structured law
    fit: FitConfig = field(default_factory=FitConfig)
    gp: GPConfig = field(default_factory=GPConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    source: str = ""           # the file this config came from (set by load_config)

    def mix_for(self, island: int) -> float:
        m = self.llm.mix
        return float(m[island] if len(m) > 1 else m[0]) if m else 0.0

    def model_for(self, island: int) -> str | None:
        ms = self.llm.models
        return ms[island % len(ms)] if ms else None

    @property
    def llm_concurrency(self) -> int:
        """Model calls in flight at most: llm.concurrency, else 64 for remote models and one per
        sandbox worker when every model is the local one (it runs in this process's CPU)."""
        if self.llm.concurrency:
            return self.llm.concurrency
        if self.llm.models and all(m == "local" for m in self.llm.models):
            return max(1, self.sandbox.workers)
        return 64

    @property
    def uses_llm(self) -> bool:
        return any(self.mix_for(i) > 0 for i in range(self.islands)) and bool(self.llm.models)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_SECTIONS = {"fit": FitConfig, "gp": GPConfig, "llm": LLMConfig, "sandbox": SandboxConfig}
_POSITIVE = {"rounds", "islands", "population", "offspring", "tournament", "hall_of_fame", "starts", "max_iter",
             "max_height", "max_size", "max_tokens", "workers", "cpu_seconds", "memory_mb", "checkpoint_every",
             "terms_max"}
_NONNEG = {"migrate_every", "migrants", "reset_every", "seed", "init_min_depth", "init_max_depth", "parsimony",
           "temperature", "max_cost"}
_PROB = {"cx_prob", "reset_fraction", "terms_mix"}


class _Where:
    def __init__(self, source: str):
        self.source = source

    def err(self, msg: str, node=None):
        line = node.start_mark.line + 1 if node is not None and getattr(node, "start_mark", None) else None
        raise InputError(msg, self.source, line)


def _scalar(node, loader):
    return loader.construct_object(node, deep=True)


def _convert(name: str, typ, node, loader, w: _Where):
    import yaml

    value = _scalar(node, loader)
    origin = typing.get_origin(typ)
    if typ is bool:
        if not isinstance(value, bool):
            w.err(f"{name}: expected true or false, got {value!r}", node)
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            w.err(f"{name}: expected an integer, got {value!r}", node)
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            w.err(f"{name}: expected a number, got {value!r}", node)
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            w.err(f"{name}: expected a string, got {value!r}", node)
        return value
    if origin is typing.Union:  # Optional[float]
        if value is None:
            return None
        return _convert(name, float, node, loader, w)
    if typ is tuple:
        if name.split(".")[-1] == "mix":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = [value]
            if not isinstance(node, (yaml.SequenceNode, yaml.ScalarNode)) or not isinstance(value, list) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                w.err(f"{name}: expected a number or a list of numbers (one per island)", node)
            if not value or not all(0.0 <= v <= 1.0 for v in value):
                w.err(f"{name}: mix ratios must be in [0, 1]", node)
            return tuple(float(v) for v in value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            w.err(f"{name}: expected a list of strings", node)
        return tuple(value)
    raise AssertionError(typ)  # pragma: no cover


def _build(cls, node, loader, w: _Where, section: str = ""):
    import yaml

    if not isinstance(node, yaml.MappingNode):
        w.err(f"{section or 'the config'}: expected a mapping of keys to values", node)
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)} - {"source"}
    kwargs = {}
    for knode, vnode in node.value:
        key = _scalar(knode, loader)
        full = f"{section}.{key}" if section else str(key)
        if key not in known:
            w.err(f"unknown key {full!r} (known: {', '.join(sorted(known))})", knode)
        if key in kwargs:
            w.err(f"duplicate key {full!r}", knode)
        if key in _SECTIONS and not section:
            kwargs[key] = _build(_SECTIONS[key], vnode, loader, w, key)[0]
            continue
        val = _convert(full, hints[key], vnode, loader, w)
        if key in _POSITIVE and val is not None and val <= 0:
            w.err(f"{full} must be > 0, got {val}", vnode)
        if key in _NONNEG and val is not None and val < 0:
            w.err(f"{full} must be >= 0, got {val}", vnode)
        if key in _PROB and not 0.0 <= val <= 1.0:
            w.err(f"{full} must be in [0, 1], got {val}", vnode)
        kwargs[key] = val
    return cls(**kwargs), {(_scalar(k, loader)): v for k, v in node.value}


def parse_config(text: str, source: str = "<config>") -> SearchConfig:
    import yaml

    w = _Where(source)
    try:
        root = yaml.compose(text, Loader=SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}", source,
                         mark.line + 1 if mark else None) from None
    if root is None:
        return SearchConfig(source=source)
    loader = SafeLoader("")
    cfg, nodes = _build_root(root, loader, w)
    return check(dataclasses.replace(cfg, source=source), nodes, w)


def _build_root(root, loader, w):
    return _build(SearchConfig, root, loader, w)


def check(cfg: SearchConfig, nodes: dict | None = None, w: _Where | None = None) -> SearchConfig:
    """Cross-field checks (also run after command-line overrides)."""
    w = w or _Where(cfg.source or "<config>")
    nodes = nodes or {}

    def node_of(section, key=None):
        n = nodes.get(section)
        if key is None or n is None:
            return n
        for k, v in getattr(n, "value", []):
            if k.value == key:
                return v
        return n

    if len(cfg.llm.mix) > 1 and len(cfg.llm.mix) != cfg.islands:
        w.err(f"llm.mix has {len(cfg.llm.mix)} values but there are {cfg.islands} islands "
              f"(give one value, or one per island)", node_of("llm", "mix"))
    if any(m > 0 for m in cfg.llm.mix) and not cfg.llm.models:
        w.err("llm.mix > 0 needs llm.models (a litellm model per island, or 'local')", node_of("llm", "mix"))
    if not 2 <= cfg.llm.parents <= 4:
        w.err(f"llm.parents must be 2..4, got {cfg.llm.parents}", node_of("llm", "parents"))
    if cfg.gp.init_min_depth > cfg.gp.init_max_depth:
        w.err("gp.init_min_depth must be <= gp.init_max_depth", node_of("gp", "init_min_depth"))
    if cfg.tournament > cfg.population:
        w.err(f"tournament ({cfg.tournament}) must not exceed population ({cfg.population})", node_of("tournament"))
    if cfg.migrants >= cfg.population:
        w.err("migrants must be smaller than population", node_of("migrants"))
    if not 0.0 <= cfg.heldout_fraction < 1.0:
        w.err(f"heldout_fraction must be in [0, 1), got {cfg.heldout_fraction}", node_of("heldout_fraction"))
    if cfg.loop not in ("async", "lockstep"):
        w.err(f"loop must be async or lockstep, got {cfg.loop!r}", node_of("loop"))
    if cfg.llm.when_busy not in ("wait", "gp"):
        w.err(f"llm.when_busy must be wait or gp, got {cfg.llm.when_busy!r}", node_of("llm", "when_busy"))
    if cfg.llm.concurrency < 0:
        w.err(f"llm.concurrency must be >= 0 (0 = automatic), got {cfg.llm.concurrency}", node_of("llm", "concurrency"))
    if cfg.agent not in ("auto", "word", "fitter"):
        w.err(f"agent must be auto, word or fitter, got {cfg.agent!r}", node_of("agent"))
    from .gp import PRIMITIVES

    bad = [p for p in cfg.gp.primitives if p not in PRIMITIVES]
    if bad:
        w.err(f"gp.primitives: unknown primitive {bad[0]!r} (choose from {', '.join(PRIMITIVES)})",
              node_of("gp", "primitives"))
    return cfg


def load_config(path) -> SearchConfig:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("config file not found", str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read config: {exc}", str(p)) from None
    return parse_config(text, str(p))


def default_config_path() -> Path:
    """search_configs/default.yaml (the source tree's, or the installed copy: potsearch.resources)."""
    from ..resources import shipped_dir

    return shipped_dir("search_configs") / "default.yaml"


def with_overrides(cfg: SearchConfig, **kw) -> SearchConfig:
    kw = {k: v for k, v in kw.items() if v is not None}
    for k, v in kw.items():
        if k in ("rounds", "islands", "workers") and v <= 0:
            raise InputError(f"--{k} must be > 0, got {v}")
        if k == "seed" and v < 0:
            raise InputError(f"--seed must be >= 0, got {v}")
    return check(dataclasses.replace(cfg, **kw)) if kw else cfg
