"""Shared by test_polish / test_attribution / test_show: a surrogate run with a hidden formula and
evolve-like candidates written straight into the store's candidates table."""
from __future__ import annotations

import json
import time

HIDDEN = "0.8 * vowels - 0.6 * zipf"

# the hidden V's features (vowels, zipf) plus three decoys the surrogate agent ignores
CANDIDATE = '''N_PARAMS = 6
def potential(x, p):
    return (p[0] * x["vowels"] + p[1] * x["zipf"] + p[2] * x["length"]
            + p[3] * np.log1p(x["rarity"]) + p[4] * x["first_letter"] + p[5])
'''


def add_candidate(store, uid, source, params, parents=(), operator="seed", model=None, island=0, rnd=0,
                  train=1.0, heldout=1.0, gap=0.5, complexity=20):
    return store.candidates.add(uid, source, run_id=None, params=list(params), parents=list(parents),
                                operator=operator, model=model, island=island, round=rnd, train_action=train,
                                heldout_action=heldout, gap=gap, complexity=complexity, n_params=len(params),
                                created=time.time())


def make_run(path, n_words=300, n_samples=6000, with_candidates=True, seed=0):
    """A surrogate word run (hidden V = HIDDEN) with its fit; optionally two candidates (a lineage)."""
    from potsearch.testing.surrogate_run import make_surrogate_run
    from potsearch.store import RunStore

    make_surrogate_run(path, n_samples=n_samples, n_words=n_words, formula=HIDDEN, seed=seed)
    if with_candidates:
        # as evolve would store it: parameters fitted by evolve's own fit (a short one: polish has work left)
        from potsearch.search.problem import load_problem
        from potsearch.law.scoring import FitSettings, score_function
        from potsearch.search.polish import compile_source

        prob = load_problem(path, seed=0)
        prob.data.fit = FitSettings(starts=1, max_iter=3)
        fn = compile_source(CANDIDATE)["potential"]
        sc = score_function(fn, 6, prob.data, source=CANDIDATE, p0=[0.5, -0.3, 0.1, 0.2, 0.1, 0.0])
        assert sc["error"] is None, sc
        store = RunStore.open(path)
        a = add_candidate(store, "seed-0", CANDIDATE, [0.5, -0.3, 0.1, 0.2, 0.1, 0.0], train=1.0)
        add_candidate(store, "child-1", CANDIDATE, sc["params"], parents=[a], operator="llm:mutate",
                      model="local", rnd=1, train=sc["train_action"], heldout=sc["heldout_action"], gap=sc["gap"],
                      complexity=sc["complexity"])
        store.close()
    return path
