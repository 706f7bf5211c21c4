"""benchmarks/adaptive_bench.py runs on small cases: the landscapes are in detailed balance with their hidden
potential, the saving bound is >= 1 (Cauchy-Schwarz), and a fixed budget is spent alike by both methods."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "adaptive_bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("adaptive_bench", PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("family", ["uniform", "escape", "mobility", "rare", "smollm2"])
def test_landscapes_obey_detailed_balance(bench, family):
    land = bench.Landscape(family, 40, 0)
    P = land.P
    assert np.allclose(P.sum(axis=1), 1.0) and (P >= 0).all()
    T = P[:, : land.n].copy()
    np.fill_diagonal(T, 0.0)
    f, g = np.nonzero(T)
    assert len(f) and np.allclose(T[f, g] / T[g, f], np.exp(land.V[f] - land.V[g]))


def test_the_table_and_the_bound(bench, capsys):
    bench.main(["--n", "30", "--seeds", "1", "--families", "uniform,smollm2", "--max-per-state", "400"])
    out = capsys.readouterr().out
    bounds = [float(x) for x in re.findall(r"bound x([0-9.]+)\.\.", out)]
    assert len(bounds) == 2 and all(b >= 1.0 for b in bounds)


def test_a_fixed_budget_is_spent_by_both(bench, capsys):
    bench.main(["--n", "30", "--seeds", "1", "--budget", "20", "--k0", "5", "--k", "5", "--families", "rare"])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("rare"))
    assert int(row.split("|")[1]) == 600
    assert "total within: per_state" in out
