"""The surrogate for your own agent end to end: collect -> fit -> evolve (seeded; our own GP and term operators,
no model) recovers the hidden law chosen in the agent file — the shipped board example (V = 0.8 r - 0.5 c over
the automatic features of r<row>c<col>) and JSON points under another law (V = x^2/10 - y)."""
from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import sympy as sp

ROOT = Path(__file__).resolve().parents[1]
GP_ONLY = "seed: 0\nrounds: {rounds}\nislands: 2\nloop: lockstep\nterms_mix: 0.1\ncheckpoint_every: 1000\n" \
          "sandbox: {{workers: 1}}\n"


def pipeline(cli, tmp_path, agent, run, samples_per_state, rounds=200):
    code, out, err = cli("collect", "--agent", agent, "--provider", "surrogate", "--run", run,
                         "--samples-per-state", samples_per_state, "--workers", 1, "--no-progress")
    assert code == 0, err
    assert "SURROGATE" in out
    assert cli("fit", run)[0] == 0
    gp = tmp_path / "gp.yaml"
    gp.write_text(GP_ONLY.format(rounds=rounds))
    code, out, err = cli("evolve", "--run", run, "--config", gp, "--quiet")
    assert code == 0, err
    return json.loads((run / "evolve" / "summary.json").read_text())


def law_values(run, states):
    spec = importlib.util.spec_from_file_location(f"bp_{run.name}", run / "best_potential.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.potentials(states)


def test_the_board_example_surrogate_recovers_its_hidden_law(cli, tmp_path, ray_session):
    from potsearch.store import RunStore

    run = tmp_path / "runs" / "board-sur"
    summary = pipeline(cli, tmp_path, ROOT / "examples" / "board" / "agent.yaml", run, 400)
    with RunStore.open(run, readonly=True) as st:
        sur = st.run_info()["config"]["surrogate"]
    assert sur["hidden_potential"] == "0.8*r - 0.5*c" and sur["states"] == 36 and sur["proposal"] == "step"
    assert summary["config"]["features"]["library"] == "automatic"
    law = sp.sympify(summary["selection"]["selected"]["text"])
    r, c = sp.Symbol("r"), sp.Symbol("c")
    assert law.free_symbols <= {r, c}
    poly = sp.Poly(law, r, c)
    assert poly.total_degree() == 1
    a, b = float(poly.coeff_monomial(r)), float(poly.coeff_monomial(c))
    assert abs(a - 0.8) <= 0.08 and abs(b + 0.5) <= 0.05, (a, b)
    code, shown, _ = cli("show", run)
    assert code == 0 and "features: automatic features of the state text: r, c" in shown


def test_json_states_under_another_law(cli, tmp_path, ray_session):
    points = [json.dumps({"x": x, "y": y}) for x in range(-6, 7) for y in range(4)]
    agent = tmp_path / "points.yaml"
    agent.write_text(f"""name: points
kind: text
prompt: "You are at {{state}}. Answer with the next point as JSON."
decoding: free
initial: [{json.dumps(points[0])}]
initial_random: {len(points)}
text:
  extract: line
  states: {json.dumps(points)}
surrogate:
  hidden_potential: "x**2/10 - y"
""")
    run = tmp_path / "runs" / "points"
    summary = pipeline(cli, tmp_path, agent, run, 1000, rounds=300)
    law = sp.sympify(summary["selection"]["selected"]["text"])
    x, y = sp.Symbol("x"), sp.Symbol("y")
    assert law.free_symbols <= {x, y}, law
    poly = sp.Poly(law, x, y)
    a, b = float(poly.coeff_monomial(x ** 2)), float(poly.coeff_monomial(y))
    assert abs(a - 0.1) <= 0.01 and abs(b + 1) <= 0.1, law
    with open(run / "fit" / "potentials.csv", newline="") as fh:
        states = [row["state"] for row in csv.DictReader(fh)]
    assert len(states) == len(points)
    hidden = [json.loads(s)["x"] ** 2 / 10 - json.loads(s)["y"] for s in states]
    assert np.corrcoef(law_values(run, states), hidden)[0, 1] >= 0.999, law


def test_numbered_items_with_the_edit_rule(cli, tmp_path, ray_session):
    """item-0 .. item-29, neighbours one edit apart (item-3 -> item-13, item-8, item-30 is not a state ...)."""
    items = [f"item-{i}" for i in range(30)]
    agent = tmp_path / "items.yaml"
    agent.write_text(f"""name: items
kind: text
prompt: "You hold {{state}}. Name the next item."
decoding: free
initial: [item-0]
initial_random: 30
text:
  states: {json.dumps(items)}
surrogate:
  hidden_potential: "0.15*item"
  proposal: edit
""")
    run = tmp_path / "runs" / "items"
    summary = pipeline(cli, tmp_path, agent, run, 1000)
    law = sp.sympify(summary["selection"]["selected"]["text"])
    item = sp.Symbol("item")
    assert law.free_symbols == {item} and sp.Poly(law, item).total_degree() == 1, law
    assert abs(float(sp.Poly(law, item).coeff_monomial(item)) - 0.15) <= 0.015, law
