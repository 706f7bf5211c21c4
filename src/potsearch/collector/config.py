"""Collect options (``CollectConfig``), the result (``CollectResult``) and the budget."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class CollectConfig:
    agent: str | None = None             # word | fitter | PATH.yaml (on --resume: the stored one)
    provider: str | None = None          # surrogate | local | any litellm model string
    run: str = "runs/collect"
    mode: str | None = None              # free | constrained (default: the agent's)
    protocol: str | None = None          # per_state | chain | population | adaptive (default: the agent's)
    samples_per_state: int | None = None
    chains: int | None = None
    sources_per_prompt: int | None = None
    target_se: float | None = None       # adaptive: the stopping rule's standard error (None: allocation's default)
    round_size: int | None = None        # adaptive: samples a round (None: adaptive.ROUND_SIZE)
    seed: int | None = None
    max_samples: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    workers: int = 2
    address: str | None = None
    ray_timeout: float | None = None     # seconds to join --address (None: POTSEARCH_RAY_TIMEOUT or 30)
    resume: bool = False
    timeout: float | None = None         # call settings: None = the stored one on --resume, else the default
    retries: int | None = None           # (callsettings.PACE_DEFAULTS: 60 s, 4, 0.5 s)
    backoff: float | None = None
    temperature: float | None = None
    max_tokens_per_call: int | None = None
    api_base: str | None = None
    prices: str | None = None            # a YAML/JSON prices table {MODEL: {input: $/Mtok, output: $/Mtok}}
    allow_unpriced: bool = False         # accept --max-cost on a model without a price (the cap counts nothing)
    rpm: float | None = None             # requests per minute at most (None: no limit)
    tpm: float | None = None             # tokens per minute at most (None: no limit)
    batch_size: int | None = None        # tasks per actor call
    inflight: int | None = None          # batches in flight per worker
    setup: list[str] = field(default_factory=list)   # provider hooks loaded in every worker
    progress: bool | None = None         # None: when stderr is a terminal
    max_failures_per_position: int = 3
    max_consecutive_failures: int = 200


PLAN_KEYS = ("agent", "provider", "mode", "protocol", "samples_per_state", "chains", "sources_per_prompt", "seed",
             "target_se", "round_size")


@dataclass
class CollectResult:
    run_dir: Path
    summary: dict
    new_samples: int
    seconds: float
    failures: int
    stop_reason: str


class Budget:
    def __init__(self, cfg: CollectConfig, samples: int, tokens: int, cost: float):
        self.cfg = cfg
        self.samples, self.tokens, self.cost = samples, tokens, cost

    def room(self, inflight: int) -> int:
        """How many more positions may be planned now."""
        c = self.cfg
        if c.max_tokens is not None and self.tokens >= c.max_tokens:
            return 0
        if c.max_cost is not None and self.cost >= c.max_cost:
            return 0
        if c.max_samples is None:
            return 1 << 30
        return max(0, c.max_samples - self.samples - inflight)

    def reason(self) -> str:
        c = self.cfg
        if c.max_tokens is not None and self.tokens >= c.max_tokens:
            return f"token budget reached ({self.tokens} >= {c.max_tokens})"
        if c.max_cost is not None and self.cost >= c.max_cost:
            return f"cost budget reached (${self.cost:.4f} >= ${c.max_cost})"
        if c.max_samples is not None and self.samples >= c.max_samples:
            return f"sample budget reached ({self.samples})"
        return "plan complete"


