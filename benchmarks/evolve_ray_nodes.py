"""Benchmark: evaluations/s of a GP-only `potsearch evolve` on a Ray cluster of one node, then of two
nodes, on this machine (ray.cluster_utils.Cluster starts the same head and worker processes as
`ray start --head` and `ray start --address`; each node offers --cpus-per-node CPUs, one evaluator
actor per CPU, each scoring in its own sandbox subprocess). Baseline in the same run: the async
loop without Ray (in-process scoring).

    python benchmarks/evolve_ray_nodes.py [--rounds 40] [--cpus-per-node 1]
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _summary import emit  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--islands", type=int, default=16)
    ap.add_argument("--cpus-per-node", type=int, default=1)
    ap.add_argument("--words", type=int, default=200)
    args = ap.parse_args()
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")

    from ray.cluster_utils import Cluster

    from potsearch.search.config import SearchConfig
    from potsearch.search.run import evolve
    from potsearch.testing.surrogate_run import make_surrogate_run

    tmp = Path(tempfile.mkdtemp(prefix="evolve_ray_"))
    base = tmp / "base"
    info = make_surrogate_run(base, n_samples=20_000, n_words=args.words, seed=0)
    cfg = SearchConfig(seed=0, rounds=args.rounds, islands=args.islands, population=16, offspring=2,
                       checkpoint_every=20)
    print(f"surrogate run: {info['samples']} samples, {info['words']} words; GP only, {args.rounds} rounds x "
          f"{args.islands} islands; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    rates = {}

    def one(name, address):
        d = tmp / name
        shutil.copytree(base, d)
        t = time.perf_counter()
        s = evolve(d, cfg, address=address)
        wall = time.perf_counter() - t
        rates[name] = s["evaluations"] / wall
        print(f"  {name:22s} {s['evaluations']:6d} evaluations in {wall:6.1f} s: {rates[name]:7.1f} evaluations/s")

    cluster = None
    try:
        one("no Ray (in-process)", None)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": args.cpus_per_node})
        one("Ray, 1 node", cluster.address)
        cluster.add_node(num_cpus=args.cpus_per_node)
        cluster.wait_for_nodes()
        one("Ray, 2 nodes", cluster.address)
    finally:
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    r1, r2 = rates["Ray, 1 node"], rates["Ray, 2 nodes"]
    print(f"second node: {r2 / r1:.2f} x evaluations/s (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    emit("evolve_ray", "evaluations/s, 2 Ray nodes vs 1", r2, r1, r2 / r1, "> 1", r2 > r1, "/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
