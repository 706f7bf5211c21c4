"""evolve on Ray: evaluator actors score in their own sandbox pools; a killed actor's candidates are
re-queued and scored; a GP-only search on Ray makes the same candidates as on this machine alone."""
import time

import pytest

from potsearch.search.config import SearchConfig
from potsearch.search.run import evolve

from evolve_helpers import candidate_tuples, run_events, small_run

SLOW = """N_PARAMS = 2
def potential(x, p):
    s = 0.0
    for i in range(10000):
        s = s + 1.0
    return p[0] * x["vowels"] + p[1] * x["zipf"] + 0.0 * s
"""


def test_killed_evaluator_actor_loses_no_candidate(ray_session, tmp_path_factory):
    ray = ray_session
    from potsearch.search.evaluators import RayEvaluator
    from potsearch.law.scoring import score_source
    from potsearch.search.problem import load_problem

    from potsearch.law.scoring import FitSettings

    run = small_run(tmp_path_factory, "ray_kill")
    prob = load_problem(run, seed=0)
    # the slow candidate's fit must not meet the wall-clock cap (the evaluator steps through its loop
    # far slower than compiled Python): both sides then take the same, iteration-capped fit
    prob.data.fit = FitSettings(max_seconds=600.0)
    ev = RayEvaluator({"gp": prob.data.payload()}, actors=2, workers=1, cpu_seconds=20, memory_mb=1024,
                      wall_timeout=60.0, batch=2)
    try:
        victim = ev.actors[0]
        pids = ray.get([a.ready.remote() for a in ev.actors])
        futs = [ev.submit(SLOW, {"source": SLOW, "p0": [1.0, 1.0], "seed": k}, base="gp") for k in range(8)]
        deadline = time.monotonic() + 30
        while not any(h is victim for _, h, _ in list(ev._out.values())) and time.monotonic() < deadline:
            time.sleep(0.01)
        ray.kill(victim, no_restart=True)
        results = [f.result(timeout=300) for f in futs]
    finally:
        ev.close()
    assert ev.stats["requeued"] >= 1 and ev.stats["replaced"] == 1
    assert all(r.ok and r.value["error"] is None for r in results)
    # the evaluator actor ran nothing itself: candidates ran in its sandbox subprocesses
    assert all(isinstance(p, int) for p in pids)
    for k in (0, 5):  # same numbers as scoring in this process
        ref = score_source(SLOW, [1.0, 1.0], k, data=prob.data)
        assert results[k].value["train_action"] == pytest.approx(ref["train_action"], rel=1e-9)


def _rows(run):
    cols = ("uid", "source", "params", "train_action", "heldout_action", "operator", "island", "round", "error")
    return [(r[0].split(":", 1)[1],) + r[1:] for r in candidate_tuples(run, cols)]


def test_gp_search_on_ray_repeats_and_matches_local(ray_session, tmp_path_factory):
    """Seeded GP-only searches on Ray repeat exactly. Against this machine alone: the sandbox's
    numbers agree to ~1e-11 (not bit for bit), so the initial populations' scores are compared."""
    cfg = SearchConfig(seed=3, rounds=6, islands=2, population=8, offspring=2, checkpoint_every=3, migrate_every=2)
    a, b, c = (small_run(tmp_path_factory, n) for n in ("ray_a", "ray_b", "ray_local"))
    s = evolve(a, cfg, address="local")
    evolve(b, cfg, address="local")
    evolve(c, cfg)
    assert s["candidates"] == 2 * 8 + 6 * 2 * 2
    ra, rb, rc = _rows(a), _rows(b), _rows(c)
    assert ra == rb
    init = [(r, q) for r, q in zip(ra, rc) if r[5] == "gp:init"]
    assert len(init) == 16
    for r, q in init:
        assert r[1] == q[1] and (r[8] is None) == (q[8] is None)
        if r[3] is not None:
            assert r[3] == pytest.approx(q[3], rel=1e-9)
    kinds = [e["kind"] for e in run_events(a, stage="evolve")]
    assert "ray" in kinds
