"""GP trees -> source, tree (de)serialisation, config validation and the CLI's one-line errors."""
import random

import numpy as np
import pytest

from potsearch.core.errors import InputError
from potsearch.search import gp as G
from potsearch.search.config import load_config, parse_config, with_overrides
from evolve_helpers import small_run


def test_tree_source_is_readable_and_runs():
    random.seed(0)
    feats = ["vowels", "length", "zipf"]
    pset = G.make_pset(feats)
    tb = G.make_toolbox(pset)
    x = {f: np.arange(1.0, 6.0) for f in feats}
    for _ in range(200):
        tree = tb.tree()
        src, p0 = G.tree_source(tree)
        ns = {"np": np}
        exec(src, ns)
        assert ns["N_PARAMS"] == len(p0) and src.startswith("N_PARAMS = ")
        with np.errstate(all="ignore"):
            v = np.broadcast_to(ns["potential"](x, np.array(p0)), (5,))
            ref = p0[0] * np.broadcast_to(G.gp.compile(tree, pset)(*[x[f] for f in feats]), (5,))
        np.testing.assert_allclose(v, ref, equal_nan=True)
        again = G.load_tree(G.dump_tree(tree), pset)
        assert G.tree_source(again) == (src, p0)


def test_constants_are_written_back_without_touching_the_rng():
    random.seed(1)
    pset = G.make_pset(["a", "b"])
    tb = G.make_toolbox(pset)
    tree = next(t for t in (tb.tree() for _ in range(100)) if len(G.tree_source(t)[1]) >= 3)
    k = len(G.tree_source(tree)[1]) - 1
    state = random.getstate()
    G.set_constants(tree, [0.5 + i for i in range(k)])
    assert random.getstate() == state
    assert G.tree_source(tree)[1][1:] == [0.5 + i for i in range(k)]


def test_static_limits_hold():
    random.seed(2)
    pset = G.make_pset(["a", "b", "c"])
    tb = G.make_toolbox(pset, max_height=4, max_size=12, init_max=2)
    pop = [tb.tree() for _ in range(30)]
    for _ in range(500):
        a, b = random.sample(pop, 2)
        child, _ = G.vary(tb, a, b, 0.5)
        assert child.height <= 4 and len(child) <= 12
        pop[random.randrange(len(pop))] = child


@pytest.mark.parametrize("text,line,needle", [
    ("rounds: 0\n", 1, "rounds must be > 0"),
    ("islands: 4\ngp:\n  max_heigth: 5\n", 3, "unknown key 'gp.max_heigth'"),
    ("islands: 4\nllm:\n  models: [local]\n  mix: [0.1, 0.2]\n", 4, "llm.mix has 2 values"),
    ("seed: zero\n", 1, "seed: expected an integer"),
    ("llm:\n  mix: 0.3\n", 2, "needs llm.models"),
    ("gp:\n  primitives: [add, cube]\n", 2, "unknown primitive 'cube'"),
    ("rounds: [1\n", 2, "not valid YAML"),  # the parser reports where it gave up
    ("fit: 3\n", 1, "expected a mapping"),
])
def test_config_errors_name_file_and_line(text, line, needle):
    with pytest.raises(InputError) as ei:
        parse_config(text, "conf.yaml")
    assert ei.value.where == "conf.yaml" and ei.value.line == line
    assert needle in ei.value.message
    assert "\n" not in ei.value.format()


def test_shipped_configs_validate():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "search_configs"
    d = load_config(root / "default.yaml")
    assert not d.uses_llm and d.rounds == 4000 and d.islands == 16
    import dataclasses

    from potsearch.search.config import SearchConfig

    assert dataclasses.replace(d, source="") == SearchConfig()   # built-in defaults = default.yaml
    p = load_config(root / "paper.yaml")
    assert p.islands == 16 and p.rounds == 4000 and len(p.llm.models) == 16 and p.uses_llm
    assert len({p.model_for(i) for i in range(16)}) == 16
    assert load_config(root / "local.yaml").model_for(3) == "local"
    assert d.patience == 0 and p.patience == 0          # early stopping off for the default and the paper
    demo = load_config(root / "demo.yaml")              # the demo's (scripts/demo.sh): default.yaml + patience
    assert demo.patience > 0 and dataclasses.replace(demo, source="", patience=0) == SearchConfig()
    assert "--config search_configs/demo.yaml" in (root.parent / "scripts" / "demo.sh").read_text()
    assert with_overrides(d, rounds=7, islands=2).rounds == 7
    with pytest.raises(InputError):
        with_overrides(d, rounds=0)


def test_cli_errors_exit_2(cli, tmp_path, tmp_path_factory):
    bad = tmp_path / "bad.yaml"
    bad.write_text("islands: 2\npopulation: 8\ntournament: 9\n")
    run = small_run(tmp_path_factory, "cli")
    code, out, err = cli("evolve", "--run", run, "--config", bad)
    assert code == 2 and err.count("\n") == 1 and "bad.yaml:3" in err and "tournament" in err
    code, out, err = cli("evolve", "--run", run, "--rounds", "0")
    assert code == 2 and "--rounds must be > 0" in err
    # a run without a fit: one line, exit 2
    import shutil

    shutil.rmtree(run / "fit")
    code, out, err = cli("evolve", "--run", run, "--rounds", "1")
    assert code == 2 and err.count("\n") == 1 and "potsearch fit" in err
    code, out, err = cli("evolve", "--run", tmp_path / "nowhere")
    assert code == 2 and "not a run directory" in err

