"""`potsearch collect`: run an agent through a model (or the surrogate) and store every transition.

Examples::

    potsearch collect --agent word --provider local --mode constrained --run runs/demo --max-samples 400
    potsearch collect --agent word --provider surrogate --run runs/sur --max-samples 20000
    potsearch collect --agent fitter --provider openai/gpt-4o-mini --mode free --run runs/fit --max-cost 0.50
    potsearch collect --run runs/demo --resume --max-samples 800      # continue the same plan
"""
from __future__ import annotations

import os
import sys


def add_arguments(p) -> None:
    p.add_argument("--agent", help="word, fitter or PATH.yaml (on --resume: the stored one)")
    p.add_argument("--provider", help="surrogate (test instrument), local (SmolLM2 via llama.cpp) or a litellm "
                                      "model string, e.g. openai/gpt-4o-mini; keys come from the environment")
    p.add_argument("--run", required=True, help="run directory, e.g. runs/NAME")
    p.add_argument("--mode", choices=["free", "constrained"], help="decoding mode (default: the agent's)")
    p.add_argument("--protocol", choices=["per-state", "chain", "population"],
                   help="sampling protocol (default: the agent's)")
    p.add_argument("--samples-per-state", type=int, metavar="K", help="per-state protocol: samples of each state")
    p.add_argument("--chains", type=int, help="chain protocol: number of parallel walks")
    p.add_argument("--sources-per-prompt", type=int, help="population protocol: states shown in one prompt")
    p.add_argument("--max-samples", type=int, metavar="N", help="stop when the run holds N samples")
    p.add_argument("--max-tokens", type=int, metavar="T", help="stop planning after T tokens (in + out)")
    p.add_argument("--max-cost", type=float, metavar="C", help="stop planning after $C (litellm prices; local = 0)")
    p.add_argument("--workers", type=int, help="concurrency slots = Ray actors (default: one per core; for "
                                               "local, one single-threaded llama.cpp worker per core)")
    p.add_argument("--address", help="join an existing Ray cluster (e.g. 127.0.0.1:6379) instead of a local one")
    p.add_argument("--ray-timeout", type=float, metavar="SECONDS",
                   help="seconds to join the --address cluster before giving up (default: $POTSEARCH_RAY_TIMEOUT or 30)")
    p.add_argument("--seed", type=int, help="plan seed (default: the agent's)")
    p.add_argument("--resume", action="store_true", help="continue the run's plan after a stop or a crash")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per model call (default 60)")
    p.add_argument("--retries", type=int, default=4, help="retries per call on time-outs, rate limits, server errors")
    p.add_argument("--temperature", type=float, help="sampling temperature (default: the agent's)")
    p.add_argument("--max-tokens-per-call", type=int, help="completion tokens per call (default: the agent's)")
    p.add_argument("--api-base", help="OpenAI-compatible endpoint for the litellm model")
    p.add_argument("--setup", action="append", default=[], metavar="FILE.py:FUNC",
                   help="call FUNC of FILE.py in every worker first (e.g. to register a litellm custom provider)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    from potsearch.collector import CollectConfig, collect, format_summary

    cfg = CollectConfig(
        agent=args.agent, provider=args.provider, run=args.run, mode=args.mode, protocol=args.protocol,
        samples_per_state=args.samples_per_state, chains=args.chains, sources_per_prompt=args.sources_per_prompt,
        seed=args.seed, max_samples=args.max_samples, max_tokens=args.max_tokens, max_cost=args.max_cost,
        workers=args.workers if args.workers is not None else (os.cpu_count() or 2), address=args.address,
        ray_timeout=args.ray_timeout, resume=args.resume, timeout=args.timeout, retries=args.retries,
        temperature=args.temperature, max_tokens_per_call=args.max_tokens_per_call, api_base=args.api_base,
        setup=list(args.setup), progress=False if args.no_progress else None,
    )
    from potsearch.core.raycluster import probe
    from potsearch.store.runstart import discard_if_empty
    from potsearch.store import run_lock

    if args.address:  # a wrong address fails here, before a run directory exists
        probe(args.address, args.ray_timeout)
    with discard_if_empty(args.run), run_lock(args.run, "collect"):
        res = collect(cfg, after_write=_test_pause())
    from potsearch.core.textsafe import printable

    print(printable(format_summary(res.summary, args.run)))   # agent names, stop reasons: escaped
    sys.stdout.flush()
    return 0


def _test_pause():
    """The fault tests' hook (environment POTSEARCH_TEST_PAUSE_AFTER_WRITE=seconds): pause after each
    write so a SIGKILL lands mid-run even for the surrogate; never set in normal use."""
    import os
    import time

    pause = float(os.environ.get("POTSEARCH_TEST_PAUSE_AFTER_WRITE", "0") or 0)
    return (lambda: time.sleep(pause)) if pause > 0 else None
