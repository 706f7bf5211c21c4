"""The collect stage: run an agent through a model (or the surrogate) and store every transition.

``run(run_dir, CollectOptions(...)) -> CollectResult``. The collector (``potsearch.collector``: protocols,
Ray workers, the driver) does the sampling; this module checks an ``address`` answers before a run
directory exists, holds the run's writer lock, and removes what a failed start created when the run holds
no sample (``store.runstart.discard_if_empty``), so the corrected command works as a first start.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from potsearch.collector.config import CollectResult
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


def run(run_dir, options: CollectOptions = CollectOptions()) -> CollectResult:
    """Collect (or, with ``options.resume``, continue collecting) into the run at ``run_dir``."""
    from potsearch.collector import CollectConfig, collect
    from potsearch.core.raycluster import probe
    from potsearch.store import run_lock
    from potsearch.store.runstart import discard_if_empty

    same = {f.name: getattr(options, f.name) for f in fields(options) if f.name not in ("workers", "setup")}
    cfg = CollectConfig(run=str(run_dir), workers=options.workers or os.cpu_count() or 2,
                        setup=list(options.setup or ()), **same)
    if options.address:  # a wrong address fails here, before a run directory exists
        probe(options.address, options.ray_timeout)
    with discard_if_empty(run_dir), run_lock(Path(run_dir), "collect"):
        return collect(cfg, after_write=_test_pause())


def _test_pause():
    """The fault tests' hook (environment POTSEARCH_TEST_PAUSE_AFTER_WRITE=seconds): pause after each
    write so a SIGKILL lands mid-run even for the surrogate; never set in normal use."""
    import time

    pause = float(os.environ.get("POTSEARCH_TEST_PAUSE_AFTER_WRITE", "0") or 0)
    return (lambda: time.sleep(pause)) if pause > 0 else None
