"""`potsearch collect`: run an agent through a model (or the surrogate) and store every transition.

Examples::

    potsearch collect --agent word --provider local --mode constrained --run runs/demo --max-samples 400
    potsearch collect --agent word --provider surrogate --run runs/sur --max-samples 20000
    potsearch collect --agent fitter --provider openai/gpt-4o-mini --mode free --run runs/fit --max-cost 0.50
    potsearch collect --run runs/demo --resume --max-samples 800      # continue the same plan
    potsearch collect --agent word --provider local --mode constrained --protocol adaptive --target-se 0.3 \
        --run runs/adaptive --max-samples 600
"""
from __future__ import annotations

import sys

from potsearch.cli.runarg import add_run
from potsearch.stages.collect import CollectOptions

_D = CollectOptions()
PRINTING = ()   # every flag is an option of the stage (tests/test_cli_api_parity.py)


def add_arguments(p) -> None:
    p.add_argument("--agent", default=_D.agent, help="word, fitter or PATH.yaml (on --resume: the stored one)")
    p.add_argument("--provider", default=_D.provider,
                   help="surrogate (test instrument), local (SmolLM2 via llama.cpp) or a litellm model string, "
                        "e.g. openai/gpt-4o-mini; keys come from the environment")
    add_run(p, "run directory, e.g. runs/NAME")
    p.add_argument("--mode", choices=["free", "constrained"], default=_D.mode,
                   help="decoding mode (default: the agent's)")
    p.add_argument("--protocol", choices=["per-state", "chain", "population", "adaptive"], default=_D.protocol,
                   help="sampling protocol (default: the agent's); adaptive: rounds allocated by the fit's standard "
                        "errors, stopping when every fitted state meets --target-se")
    p.add_argument("--samples-per-state", type=int, default=_D.samples_per_state, metavar="K",
                   help="per-state protocol: samples of each state")
    p.add_argument("--chains", type=int, default=_D.chains, help="chain protocol: number of parallel walks")
    p.add_argument("--sources-per-prompt", type=int, default=_D.sources_per_prompt,
                   help="population protocol: states shown in one prompt")
    p.add_argument("--target-se", type=float, default=_D.target_se, metavar="SE",
                   help="adaptive protocol: stop sampling a state once its potential's standard error is below SE "
                        "(default 0.1)")
    p.add_argument("--round-size", type=int, default=_D.round_size, metavar="N",
                   help="adaptive protocol: samples a round, allocated after a refit (default 100)")
    p.add_argument("--max-samples", type=int, default=_D.max_samples, metavar="N",
                   help="stop when the run holds N samples (adaptive protocol: also the budget its rounds are "
                        "planned for: when it cannot bring every state within --target-se, the most states it can)")
    p.add_argument("--max-tokens", type=int, default=_D.max_tokens, metavar="T",
                   help="stop planning after T tokens (in + out)")
    p.add_argument("--max-cost", type=float, default=_D.max_cost, metavar="C",
                   help="spend at most $C: a call starts only if the spend plus every call in flight at its worst "
                        "case stays within $C (prices: --prices, else litellm's map; local = 0)")
    p.add_argument("--prices", default=_D.prices, metavar="FILE",
                   help="YAML/JSON prices table {MODEL: {input: $/Mtok, output: $/Mtok}} (stored with the run)")
    p.add_argument("--allow-unpriced", action="store_true", default=_D.allow_unpriced,
                   help="accept --max-cost on a model without a price (the cap then counts nothing)")
    p.add_argument("--rpm", type=float, default=_D.rpm, help="model requests per minute at most (spread evenly)")
    p.add_argument("--tpm", type=float, default=_D.tpm, help="model tokens (in + out) per minute at most")
    p.add_argument("--workers", type=int, default=_D.workers,
                   help="concurrency slots = Ray actors (default: one per core; for local, one single-threaded "
                        "llama.cpp worker per core)")
    p.add_argument("--address", default=_D.address,
                   help="join an existing Ray cluster (e.g. 127.0.0.1:6379) instead of a local one")
    p.add_argument("--ray-timeout", type=float, default=_D.ray_timeout, metavar="SECONDS",
                   help="seconds to join the --address cluster before giving up (default: $POTSEARCH_RAY_TIMEOUT or 30)")
    p.add_argument("--seed", type=int, default=_D.seed, help="plan seed (default: the agent's)")
    p.add_argument("--resume", action="store_true", default=_D.resume,
                   help="continue the run's plan after a stop or a crash")
    p.add_argument("--timeout", type=float, default=_D.timeout, help="seconds per model call (default 60, or the run's on --resume)")
    p.add_argument("--retries", type=int, default=_D.retries,
                   help="retries per call on time-outs, rate limits, server errors (default 4, or the run's)")
    p.add_argument("--backoff", type=float, default=_D.backoff, metavar="SECONDS",
                   help="a retry waits up to SECONDS (random), doubled for each further retry (default 0.5, or the run's)")
    p.add_argument("--temperature", type=float, default=_D.temperature,
                   help="sampling temperature (default: the agent's)")
    p.add_argument("--max-tokens-per-call", type=int, default=_D.max_tokens_per_call,
                   help="completion tokens per call (default: the agent's)")
    p.add_argument("--api-base", default=_D.api_base, help="OpenAI-compatible endpoint for the litellm model (stored; --resume keeps it)")
    p.add_argument("--batch-size", type=int, default=_D.batch_size, metavar="N",
                   help="tasks per worker call, a batch (default: 2000 for the surrogate, 4 for a remote model, 1 for local)")
    p.add_argument("--inflight", type=int, default=_D.inflight, metavar="N",
                   help="batches of tasks in flight per worker (default 2)")
    p.add_argument("--setup", action="append", default=_D.setup, metavar="FILE.py:FUNC",
                   help="call FUNC of FILE.py in every worker first (e.g. to register a litellm custom provider)")
    p.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=_D.progress,
                   help="no progress bar")


def run(args) -> int:
    from potsearch.collector import format_summary
    from potsearch.core.textsafe import printable
    from potsearch.stages.collect import run as collect

    res = collect(args.run, CollectOptions(
        agent=args.agent, provider=args.provider, mode=args.mode, protocol=args.protocol,
        samples_per_state=args.samples_per_state, chains=args.chains, sources_per_prompt=args.sources_per_prompt,
        target_se=args.target_se, round_size=args.round_size, seed=args.seed, max_samples=args.max_samples, max_tokens=args.max_tokens, max_cost=args.max_cost,
        workers=args.workers, address=args.address, ray_timeout=args.ray_timeout, resume=args.resume,
        timeout=args.timeout, retries=args.retries, backoff=args.backoff, temperature=args.temperature,
        max_tokens_per_call=args.max_tokens_per_call, api_base=args.api_base, prices=args.prices,
        allow_unpriced=args.allow_unpriced, rpm=args.rpm, tpm=args.tpm, batch_size=args.batch_size,
        inflight=args.inflight, setup=None if args.setup is None else tuple(args.setup), progress=args.progress))
    print(printable(format_summary(res.summary, args.run)))   # agent names, stop reasons: escaped
    sys.stdout.flush()
    return 0
