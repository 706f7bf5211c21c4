"""Paper Table 2 (Claude-4 word agent): the exact infimum and the exclusion bounds."""
import json
import math

import numpy as np

from potsearch.science.action import fit_exact, make_kernel
from potsearch.science.graph import build_graph
from potsearch.collector.io import read_counts


def _fit(path, kernel="softplus"):
    g = build_graph(read_counts(path))
    return g, fit_exact(g, make_kernel(kernel))


def test_potentials_and_bounds(table2):
    g, r = _fit(table2)
    pot = dict(zip(r.names, r.potential))
    lb = dict(zip(r.names, r.lower_bound))
    unb = dict(zip(r.names, r.unbounded))
    assert abs(pot["ATTITUDE"]) < 1e-12
    assert abs(pot["PERSONAL"] - math.log(3879 / 66)) < 1e-8          # 4.074
    assert abs(pot["PROBLEMS"] - math.log(3558 / 20)) < 1e-8          # 5.181
    assert abs(pot["PERSONAL"] - 4.074) < 0.01 and abs(pot["PROBLEMS"] - 5.181) < 0.01
    assert unb["TURKEY"] and unb["BUZZY"] and not unb["ATTITUDE"]
    assert math.isnan(pot["TURKEY"]) and math.isnan(pot["BUZZY"])
    assert abs(lb["TURKEY"] - math.log(4000)) < 1e-9                   # 8.29
    assert abs(lb["BUZZY"] - (math.log(4000) + math.log(4122 * 238 / 4097))) < 1e-9   # 13.77
    assert abs(lb["BUZZY"] - 13.8) < 0.05
    assert r.converged and r.grad_norm <= 1e-8


def test_scc_order_is_topological(table2):
    _, r = _fit(table2)
    label = dict(zip(r.names, r.scc))
    order = [int(c) for c in r.scc_order]
    # BUZZY -> TURKEY -> ATTITUDE's SCC: upstream first
    assert order.index(label["BUZZY"]) < order.index(label["TURKEY"]) < order.index(label["ATTITUDE"])
    assert label["PERSONAL"] == label["PROBLEMS"] == label["ATTITUDE"]


def test_exponential_kernel_same_potentials(table2):
    _, r1 = _fit(table2)
    _, r2 = _fit(table2, "exp")
    fin = ~r1.unbounded
    assert np.allclose(r1.potential[fin], r2.potential[fin], atol=1e-7)


def test_whole_graph_mode_reports_artefacts(table2, cli, tmp_path):
    code, out, err = cli("fit", table2, "--whole-graph", "--out", tmp_path, "--json")
    assert code == 0
    data = json.loads(out)
    assert data["mode"] == "whole-graph"
    assert any("stopping artefacts" in n for n in data["notes"])
    rows = {ln.split(",")[0]: ln.split(",") for ln in (tmp_path / "potentials.csv").read_text().splitlines()[1:]}
    # inside the bottom SCC the paper's procedure agrees with the exact fit
    assert abs(float(rows["PERSONAL"][1]) - float(rows["ATTITUDE"][1]) - 4.074) < 0.01


def test_cli_fit_writes_outputs(table2, cli, tmp_path):
    code, out, err = cli("fit", table2, "--out", tmp_path, "--bootstrap", "30", "--seed", "3")
    assert code == 0, err
    assert "PERSONAL" in out and "+inf" in out
    lines = (tmp_path / "potentials.csv").read_text().splitlines()
    assert lines[0].startswith("state,potential,lower_bound,scc,unbounded,visits,stderr")
    rows = {ln.split(",")[0]: ln.split(",") for ln in lines[1:]}
    assert rows["TURKEY"][1] == "" and rows["TURKEY"][4] == "true"
    se = float(rows["PERSONAL"][6])
    # delta-method error of log(n1/n2): sqrt(1/66 + 1/3879 - 2/4000) ~ 0.124
    assert 0.08 < se < 0.17
    fit = json.loads((tmp_path / "fit.json").read_text())
    for key in ("action", "states", "edges", "sccs", "converged", "iterations", "grad_norm", "seconds", "options"):
        assert key in fit
    assert fit["states"] == 5 and fit["edges"] == 7 and fit["sccs"] == 3
