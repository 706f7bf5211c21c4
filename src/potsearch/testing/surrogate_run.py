"""Surrogate runs for tests and benchmarks: real words, a hidden potential that is a formula of
our features, transitions from ``potsearch.science.synthetic.metropolis_chain`` (detailed balance by
construction), written to a run store and fitted like any run. No LLM involved.

This is a test instrument: the run is marked ``surrogate`` in its config.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from potsearch.law.features import feature_table

DEFAULT_FORMULA = "0.8 * vowels - 0.6 * zipf"


def word_list_path() -> Path:
    from potsearch.core.resources import shipped_dir

    return shipped_dir("data") / "words_sum100.tsv"


def load_words(path: Path | None = None) -> list[str]:
    """The shipped word list (first column of data/words_sum100.tsv; '#' lines are provenance)."""
    path = path or word_list_path()
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        w = line.split("\t")[0].strip()
        if w and w.lower() != "word":
            out.append(w.upper())
    return out


def hidden_potential(words: list[str], formula: str = DEFAULT_FORMULA) -> np.ndarray:
    """Evaluate ``formula`` (numpy expression over feature names) on the words' feature table."""
    x = feature_table("word", words)
    return np.asarray(eval(formula, {"np": np, "__builtins__": {}}, dict(x)), dtype=float)  # our own formula


def make_surrogate_run(run_dir, n_samples: int = 20_000, n_words: int | None = None,
                       formula: str = DEFAULT_FORMULA, degree: int = 8, escape: float = 0.02,
                       seed: int = 0) -> dict:
    """Create ``run_dir`` with a store of ~``n_samples`` surrogate samples and its saved fit."""
    from potsearch.stages.fit import FitOptions, Input, record, run_fit, write_fit
    from potsearch.store import ESCAPE, RunStore, Sample
    from potsearch.science.synthetic import metropolis_chain

    words = load_words()
    rng = np.random.default_rng(seed)
    if n_words is not None and n_words < len(words):
        words = sorted(rng.choice(words, n_words, replace=False).tolist())
    V = hidden_potential(words, formula)
    per_state = max(2, n_samples // len(words))
    chain = metropolis_chain(n_states=len(words), degree=degree, samples_per_state=per_state, V=V,
                             names=words, escape=escape, seed=seed)
    # metropolis_chain accepts with min(1, exp(V_f - V_g)): the agent moves down V, as the
    # action assumes (a downhill move is cheap).
    c = chain.counts
    samples = []
    k = 0
    for s, d, n in zip(c.src.tolist(), c.dst.tolist(), c.count.tolist()):
        for _ in range(n):
            samples.append(Sample(uid=f"surrogate:{seed}:{k}", source=c.states[s],
                                  target=None if d == ESCAPE else c.states[d], agent="surrogate",
                                  model="surrogate", reason="surrogate escape" if d == ESCAPE else None))
            k += 1
    run_dir = Path(run_dir)
    store = RunStore.create(run_dir, kind="word")
    store.set_run_config({"surrogate": True, "formula": formula, "n_words": len(words),
                          "samples_per_state": per_state, "degree": degree, "escape": escape, "seed": seed,
                          "agent": "word"}, kind="word")
    store.add_samples(samples)
    counts = store.counts()
    g, res = run_fit(counts, FitOptions())
    from potsearch.store.rundir import RunDir

    summary = write_fit(RunDir(run_dir).fit_dir, g, res)
    record(Input(counts, run_dir, store), summary)
    store.close()
    return {"run_dir": str(run_dir), "samples": len(samples), "words": len(words), "s_min": summary["action"],
            "edges": summary["edges"], "formula": formula}
