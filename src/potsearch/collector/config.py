"""Collect options (``CollectOptions``, the collect stage's, checked once; ``CollectConfig``, what the
driver runs), the result (``CollectResult``) and the budget."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from potsearch.core.errors import InputError


@dataclass(frozen=True)
class CollectOptions:
    """Options of the collect stage (the CLI's and the API's defaults come from here).

    ``agent``: word, fitter or PATH.yaml; ``provider``: surrogate, local or a litellm model string (on
    ``resume`` both default to the stored plan's). ``mode`` / ``protocol`` / ``samples_per_state`` /
    ``chains`` / ``sources_per_prompt`` / ``seed`` / ``temperature`` / ``max_tokens_per_call``: the
    agent's unless given; ``target_se`` / ``round_size``: the adaptive protocol's stopping SE and samples a
    round (None: its defaults, collector/adaptive.py). Budgets: ``max_samples``, ``max_tokens``, ``max_cost``. ``workers``:
    concurrency slots (None: one per core); ``address`` / ``ray_timeout``: join a Ray cluster.
    ``timeout`` / ``retries`` / ``backoff``: per model call (None: the stored ones on ``resume``, else 60 s,
    4, 0.5 s). How the model is reached (``provider``, ``api_base``, ``temperature``,
    ``max_tokens_per_call``, the model's price) is stored and kept on ``resume`` (a different value is
    refused); pace settings (``timeout``, ``retries``, ``backoff``, ``rpm``, ``tpm``) are stored and may be
    changed on resume. ``prices``: a YAML/JSON table {MODEL: {input: $/Mtok, output: $/Mtok}} (else
    litellm's price map); ``max_cost`` on a model without a price is refused unless ``allow_unpriced``;
    ``rpm`` / ``tpm``: requests / tokens per minute at most. ``batch_size`` / ``inflight``: tasks per
    actor call and batches in flight per worker (None: the driver's choice); ``setup``: FILE.py:FUNC hooks
    called in every worker; ``progress``: a progress bar (None: when stderr is a terminal).
    """

    agent: str | None = None
    provider: str | None = None
    mode: str | None = None
    protocol: str | None = None
    samples_per_state: int | None = None
    chains: int | None = None
    sources_per_prompt: int | None = None
    target_se: float | None = None
    round_size: int | None = None
    seed: int | None = None
    max_samples: int | None = None
    max_tokens: int | None = None
    max_cost: float | None = None
    workers: int | None = None
    address: str | None = None
    ray_timeout: float | None = None
    resume: bool = False
    timeout: float | None = None
    retries: int | None = None
    backoff: float | None = None
    temperature: float | None = None
    max_tokens_per_call: int | None = None
    api_base: str | None = None
    prices: str | None = None
    allow_unpriced: bool = False
    rpm: float | None = None
    tpm: float | None = None
    batch_size: int | None = None
    inflight: int | None = None
    setup: tuple[str, ...] | None = None
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise InputError(f"--workers must be >= 1, got {self.workers}")
        for name in ("max_samples", "max_tokens"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise InputError(f"--{name.replace('_', '-')} must be >= 0, got {v}")
        if self.max_cost is not None and not self.max_cost >= 0:
            raise InputError(f"--max-cost must be >= 0, got {self.max_cost}")
        if self.target_se is not None and not self.target_se > 0:
            raise InputError(f"--target-se must be > 0, got {self.target_se}")
        if self.round_size is not None and self.round_size < 1:
            raise InputError(f"--round-size must be >= 1, got {self.round_size}")
        if self.timeout is not None and not self.timeout > 0:
            raise InputError(f"--timeout must be > 0, got {self.timeout}")
        for name in ("rpm", "tpm"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise InputError(f"--{name} must be > 0, got {v}")



@dataclass(frozen=True)
class CollectConfig(CollectOptions):
    """What the driver runs: the stage's options, the run folder, the resolved worker count, and the
    driver's own limits on failed calls (not options: a position is retried at most
    ``max_failures_per_position`` times an invocation; ``max_consecutive_failures`` in a row stop it)."""

    run: str = "runs/collect"
    workers: int = 2                     # resolved (the stage's default: one per core)
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


