"""Search configuration: frozen dataclasses validated from YAML (search_configs/*.yaml).

Every problem is one line naming the file and line: ``error: FILE:LINE: message`` (InputError,
exit status 2). Unknown keys are errors (a typo must not silently fall back to a default).
The reference of every key is docs/evolve.md; ``search_configs/default.yaml`` shows them all.
"""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from potsearch.core.configload import Where, load, option, parse
from potsearch.core.errors import InputError
from potsearch.law.scoring import FitSettings


@dataclass(frozen=True)
class GPConfig:
    primitives: tuple[str, ...] = ("add", "sub", "mul", "div", "neg", "square", "sqrt", "log", "exp", "tanh")
    features: tuple[str, ...] = ()  # empty: every feature that varies across the run's states
    max_height: int = option(6, gt=0)    # static limit on tree height (bloat control)
    max_size: int = option(30, gt=0)     # static limit on tree size (nodes)
    init_min_depth: int = option(1, ge=0)
    init_max_depth: int = option(3, ge=0)
    cx_prob: float = option(0.5, ge=0, le=1)  # crossover probability; otherwise one mutation, chosen uniformly
    parsimony: float = option(1e-5, ge=0)     # selection score = train action + parsimony * complexity


@dataclass(frozen=True)
class LLMConfig:
    models: tuple[str, ...] = ()   # litellm model strings, one per island (cycled); "local" = SmolLM2
    mix: tuple[float, ...] = option((0.0,), ge=0, le=1)  # P(offspring from the LLM): one value or one per island
    temperature: float = option(0.8, ge=0)
    max_tokens: int = option(400, gt=0)
    parents: int = 3           # parents shown in the prompt (2-4)
    samples_in_prompt: int = 12  # states shown with their target potentials
    timeout: float = 120.0     # seconds per LLM call
    max_cost: Optional[float] = option(None, ge=0)  # stop calling LLMs once this many dollars are spent
    concurrency: int = option(0, ge=0)  # model calls in flight at most (async loop); 0 = 64 remote, sandbox.workers local
    when_busy: str = option("wait", choices=("wait", "gp"))  # an island at its cap of outstanding calls: wait | gp
    grammar: bool = False      # constrain replies by a GBNF grammar of the potential language (local / llama.cpp servers)
    api_base: str = ""         # base URL of an OpenAI-compatible server (passed to litellm); "" = provider default
    rpm: Optional[float] = option(None, gt=0)   # model requests per minute at most, spread evenly (None: no limit)
    tpm: Optional[float] = option(None, gt=0)   # model tokens (in + out) per minute at most (None: no limit)
    prices: Optional[dict] = None  # {MODEL: {input: $/Mtok, output: $/Mtok}}; else litellm's price map
    allow_unpriced: bool = False   # accept max_cost on a model without a price (the cap then counts nothing)


#: The most any sandbox limit may be: the config loader refuses more (``le=``), and polish, attribute and
#: show clamp limits read from a run's evolve/summary.json to these (a run folder is data, not a
#: trusted config: ``polish.read_sandbox_limits``). One candidate evaluation never needs more.
SANDBOX_MAX = {"workers": 64, "cpu_seconds": 600, "memory_mb": 32768, "wall_timeout": 1200.0}


@dataclass(frozen=True)
class SandboxConfig:
    workers: int = option(2, gt=0, le=SANDBOX_MAX["workers"])
    cpu_seconds: int = option(20, gt=0, le=SANDBOX_MAX["cpu_seconds"])
    memory_mb: int = option(2048, gt=0, le=SANDBOX_MAX["memory_mb"])
    wall_timeout: float = option(30.0, gt=0, le=SANDBOX_MAX["wall_timeout"])


@dataclass(frozen=True)
class SearchConfig:
    seed: int = option(0, ge=0)
    rounds: int = option(4000, gt=0)
    islands: int = option(16, gt=0)
    population: int = option(16, gt=0)  # programs kept per island
    offspring: int = option(2, gt=0)    # new programs per island per round
    tournament: int = option(3, gt=0)   # tournament size for parent selection
    migrate_every: int = option(50, ge=0)  # rounds between ring migrations (0 = never)
    migrants: int = option(1, ge=0)     # programs sent to the next island at each migration
    reset_every: int = option(500, ge=0)  # rounds between resets of the weakest islands (0 = never)
    reset_fraction: float = option(0.5, ge=0, le=1)
    checkpoint_every: int = option(100, gt=0)
    workers: int = option(1, gt=0)      # processes evaluating GP candidates (1 = in this process)
    heldout_fraction: float = 0.2
    agent: str = option("auto", choices=("auto", "word", "fitter"))  # feature library
    loop: str = option("async", choices=("async", "lockstep"))  # async: steady state, no round barrier;
    #                                                             lockstep: rounds wait for every reply
    hall_of_fame: int = option(20, gt=0)
    terms_mix: float = option(0.1, ge=0, le=1)  # share of non-LLM offspring from the term-structured operator
    terms_max: int = option(4, gt=0)            # most terms in a term-structured law
    patience: int = option(0, ge=0)             # stop after this many rounds without improvement (0 = never)
    patience_tol: float = option(1e-4, ge=0)    # an improvement: lower by more than this share (search/patience.py)
    fit: FitSettings = field(default_factory=FitSettings)
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


def parse_config(text: str, source: str = "<config>") -> SearchConfig:
    cfg, where = parse(SearchConfig, text, source, empty=lambda: SearchConfig(source=source))
    return check(cfg, where)


def check(cfg: SearchConfig, where: Where | None = None) -> SearchConfig:
    """Cross-field checks (also run after command-line overrides)."""
    w = where or Where(cfg.source or "<config>")
    if len(cfg.llm.mix) > 1 and len(cfg.llm.mix) != cfg.islands:
        w.err(f"llm.mix has {len(cfg.llm.mix)} values but there are {cfg.islands} islands "
              f"(give one value, or one per island)", "llm.mix")
    if any(m > 0 for m in cfg.llm.mix) and not cfg.llm.models:
        w.err("llm.mix > 0 needs llm.models (a litellm model per island, or 'local')", "llm.mix")
    _check_prices(cfg, w)
    if not 2 <= cfg.llm.parents <= 4:
        w.err(f"llm.parents must be 2..4, got {cfg.llm.parents}", "llm.parents")
    if cfg.gp.init_min_depth > cfg.gp.init_max_depth:
        w.err("gp.init_min_depth must be <= gp.init_max_depth", "gp.init_min_depth")
    if cfg.tournament > cfg.population:
        w.err(f"tournament ({cfg.tournament}) must not exceed population ({cfg.population})", "tournament")
    if cfg.migrants >= cfg.population:
        w.err("migrants must be smaller than population", "migrants")
    if not 0.0 <= cfg.heldout_fraction < 1.0:
        w.err(f"heldout_fraction must be in [0, 1), got {cfg.heldout_fraction}", "heldout_fraction")
    from potsearch.search.gp import PRIMITIVES

    bad = [p for p in cfg.gp.primitives if p not in PRIMITIVES]
    if bad:
        w.err(f"gp.primitives: unknown primitive {bad[0]!r} (choose from {', '.join(PRIMITIVES)})", "gp.primitives")
    return cfg


def load_config(path) -> SearchConfig:
    cfg, where = load(SearchConfig, path, "config", empty=lambda: SearchConfig(source=str(path)))
    return check(cfg, where)


def default_config_path() -> Path:
    """search_configs/default.yaml (the source tree's, or the installed copy: potsearch.core.resources)."""
    from potsearch.core.resources import shipped_dir

    return shipped_dir("search_configs") / "default.yaml"


def with_overrides(cfg: SearchConfig, **kw) -> SearchConfig:
    kw = {k: v for k, v in kw.items() if v is not None}
    for k, v in kw.items():
        if k in ("rounds", "islands", "workers") and v <= 0:
            raise InputError(f"--{k} must be > 0, got {v}")
        if k == "patience" and v < 0:
            raise InputError(f"--patience must be >= 0 (0 = no early stop), got {v}")
        if k == "seed" and v < 0:
            raise InputError(f"--seed must be >= 0, got {v}")
    return check(dataclasses.replace(cfg, **kw)) if kw else cfg


def unpriced_models(cfg: SearchConfig) -> list[str]:
    """The models whose spend llm.max_cost cannot count (no price in llm.prices or litellm's map)."""
    if cfg.llm.max_cost is None or not cfg.uses_llm:
        return []
    from potsearch.llm.limits import price

    return [m for m in dict.fromkeys(cfg.llm.models) if price(m, cfg.llm.prices) is None]


def _check_prices(cfg: SearchConfig, w) -> None:
    """llm.prices is a valid table, and llm.max_cost can be enforced on every model (or allow_unpriced)."""
    from potsearch.core.errors import InputError
    from potsearch.llm.limits import check_priced, check_prices

    try:
        if cfg.llm.prices is not None:
            check_prices(cfg.llm.prices, "llm.prices")
        if cfg.llm.max_cost is not None and cfg.uses_llm:
            for m in dict.fromkeys(cfg.llm.models):
                check_priced(m, cfg.llm.max_cost, cfg.llm.prices, cfg.llm.allow_unpriced)
    except InputError as exc:
        w.err(str(exc.args[0] if exc.args else exc).replace("--max-cost", "llm.max_cost")
              .replace("--allow-unpriced", "llm.allow_unpriced: true"), "llm.prices")
