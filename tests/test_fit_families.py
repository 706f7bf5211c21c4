"""The adaptive Newton solver on every graph family, and the reference-SCC convention."""
from __future__ import annotations

import numpy as np
import pytest

from potsearch.science import action
from potsearch.science.action import NewtonSolver, fit_exact, newton_fit
from potsearch.science.graph import build_graph
from potsearch.store import Counts
from potsearch.science.synthetic import FAMILIES, family_counts


class _OldSolver:
    """The solver before the adaptive rule: Jacobi-CG, sparse LU as the fallback (action._solve)."""
    mode, fill, log = "old", None, []

    def solve(self, H, rhs, rtol=1e-13):
        return action._solve(H, rhs, rtol=rtol)


def _fit_V(g, solver, tol=1e-15):
    n_comp, labels = g.sccs()
    order = np.lexsort((np.arange(g.n_states), -g.visits, labels))
    first = np.ones(len(order), dtype=bool)
    first[1:] = labels[order][1:] != labels[order][:-1]
    V, stats = newton_fit(g, labels, order[first], tol=tol, solver=solver)
    return V, stats


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("seed", [1, 2])
def test_new_solvers_agree_with_old(family, seed):
    counts, _ = family_counts(family, n_states=600, n_samples=12_000, seed=seed)
    g = build_graph(counts)
    V_old, s_old = _fit_V(g, _OldSolver())
    assert s_old["converged"]
    solvers = {"adaptive": NewtonSolver(), "cg": NewtonSolver(force="cg"), "lu": NewtonSolver(force="lu"),
               "amg": NewtonSolver(force="amg"),
               # the adaptive rule's later branches on a small graph: tiny CG budget, probe, then LU or AMG
               "probe-lu": NewtonSolver(small=0, cg_budget=1, probe=50),
               "probe-amg": NewtonSolver(small=0, cg_budget=1, probe=50, max_fill=0.5),
               # a factor refreshed at the step after every reuse that needed more than 0 iterations
               "lu-refresh": NewtonSolver(small=10**9, refresh=0)}
    for name, solver in solvers.items():
        V, stats = _fit_V(g, solver)
        assert stats["converged"] and stats["grad_norm"] <= 1e-8, (name, stats["grad_norm"])
        assert np.abs(V - V_old).max() <= 1e-8, (name, np.abs(V - V_old).max())
    assert solvers["probe-lu"].mode in ("lu", "amg") and solvers["probe-lu"].probe_fill is not None
    assert solvers["probe-amg"].mode == "amg"
    assert any(m == "amg" for m, _ in solvers["probe-amg"].log)
    log = [m for m, _ in solvers["lu-refresh"].log]
    assert log[0] == "lu" and all(b == "lu" for a, b in zip(log, log[1:]) if a == "lu-reuse"), log


def test_families_are_distinct_shapes():
    degs = {}
    for fam in FAMILIES:
        counts, _ = family_counts(fam, n_states=2000, n_samples=20_000, seed=0)
        deg = np.bincount(counts.src[counts.src != counts.dst], minlength=2000)
        degs[fam] = deg
    assert degs["hub"].max() > 10 * np.median(degs["hub"])          # hubs
    assert np.median(degs["chain_tree"]) <= 3                          # chains and leaves
    with pytest.raises(ValueError, match="unknown graph family"):
        family_counts("lattice")


@pytest.mark.parametrize("case", ["table2", "metropolis"])
def test_gradient_on_shipped_cases(case):
    from pathlib import Path

    from potsearch.collector.io import read_counts
    from potsearch.science.synthetic import metropolis_chain

    if case == "table2":
        counts = read_counts(Path(__file__).resolve().parents[1] / "data" / "table2_claude4_word.csv")
    else:
        counts = metropolis_chain(n_states=300, samples_per_state=50, seed=4).counts
    for mv in (0, 1):
        r = fit_exact(build_graph(counts, min_visits=mv))
        assert r.converged and r.grad_norm <= 1e-8


def _hand_graph():
    # SCC {A,B,C} (the largest: reference); U -> A, U2 -> U upstream; A -> D downstream; {X,Y} incomparable
    names = ["A", "B", "C", "U", "D", "X", "Y", "U2"]
    E = [("A", "B", 5), ("B", "A", 3), ("B", "C", 4), ("C", "A", 2), ("A", "C", 1), ("U", "A", 2), ("A", "D", 1),
         ("X", "Y", 2), ("Y", "X", 2), ("U2", "U", 1)]
    idx = {n: i for i, n in enumerate(names)}
    src = [idx[a] for a, _, _ in E] + list(range(8))
    dst = [idx[b] for _, b, _ in E] + list(range(8))
    cnt = [c for *_, c in E] + [3] * 8                                 # 3 self-loops per state
    return build_graph(Counts(names, np.array(src), np.array(dst), np.array(cnt)))


def test_reference_convention_hand_made():
    g = _hand_graph()
    r = fit_exact(g)
    v = r.reference
    rel = dict(zip(g.names, v.relation_names()))
    assert rel == {"A": "reference", "B": "reference", "C": "reference", "U": "upstream", "U2": "upstream",
                   "D": "downstream", "X": "incomparable", "Y": "incomparable"}
    i = {n: k for k, n in enumerate(g.names)}
    VA = r.scc_potential[i["A"]]
    assert np.isfinite(v.potential[[i["A"], i["B"], i["C"]]]).all()
    assert min(v.potential[[i["A"], i["B"], i["C"]]]) == 0.0
    # N(A) = 5 + 1 + 1 + 3 = 10, N(U) = 2 + 3 = 5, N(U2) = 1 + 3 = 4, N(D) = 3 (low_reject: unit 1/N)
    lb_U = VA + np.log((2 / 5) / (1 / 10))                              # V_U - V_A >= log(w / (1/N(A)))
    lb_U2 = lb_U + np.log((1 / 4) / (1 / 5))
    ub_D = VA - np.log((1 / 10) / (1 / 3))                              # V_A - V_D >= log(w / (1/N(D)))
    assert v.potential[i["U"]] == np.inf and v.bound[i["U"]] == pytest.approx(lb_U, abs=1e-12)
    assert v.potential[i["U2"]] == np.inf and v.bound[i["U2"]] == pytest.approx(lb_U2, abs=1e-12)
    assert v.potential[i["D"]] == -np.inf and v.bound[i["D"]] == pytest.approx(ub_D, abs=1e-12)
    assert np.isnan(v.potential[i["X"]]) and np.isnan(v.bound[i["X"]])


def test_reference_state_choice_and_outputs(tmp_path, cli):
    g = _hand_graph()
    r = fit_exact(g, reference="X")
    rel = dict(zip(g.names, r.reference.relation_names()))
    assert rel["X"] == rel["Y"] == "reference" and rel["A"] == "incomparable" and rel["U2"] == "incomparable"
    with pytest.raises(ValueError, match="not among"):
        fit_exact(g, reference="nope")
    from potsearch.collector.io import export_counts

    # the same graph as a CSV, through the CLI: columns, summary, --reference errors
    names = g.names
    counts = Counts(names, g.src, g.dst, g.n)
    counts = Counts(names, np.concatenate([g.src, np.arange(8)]), np.concatenate([g.dst, np.arange(8)]),
                    np.concatenate([g.n, np.full(8, 3)]))
    f = tmp_path / "hand.csv"
    export_counts(counts, f)
    code, out, err = cli("fit", f, "--out", tmp_path / "fit", "--min-visits", "0")
    assert code == 0, err
    assert "3 finite, 2 upstream" in out and "1 downstream" in out and "2 incomparable" in out
    assert "-inf <=" in out and "incomparable" in out
    from potsearch.store.rundir import load_fit

    saved = load_fit(tmp_path)
    assert saved.ref_relation.count("upstream") == 2 and np.isinf(saved.ref_potential).sum() == 3
    code, out, err = cli("fit", f, "--out", tmp_path / "fit2", "--min-visits", "0", "--reference", "nope")
    assert code == 2 and "--reference 'nope'" in err
