import os
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parents[1]
TABLE2 = ROOT / "data" / "table2_claude4_word.csv"

#: the unit tier (`make test-fast`, about a minute on 2 cores): test files of pure functions and small
#: in-process runs, no subprocess pipeline, no Ray, no sandbox pool; every other file is the full suite's.
FAST_FILES = frozenset("""
    test_action test_diagnostics test_docs test_evolve_gp_config test_evolve_scoring test_fit_families
    test_fit_table2 test_graph test_io test_llm_limits test_own_features_unit test_resources test_rundir_owner
    test_search_database test_selection test_simplify test_store test_terms test_yamlio test_agents_text
    test_allocation test_module_map test_private_access test_own_agent_surrogate_unit test_example_board
    test_import_split test_patience_unit test_adaptive_protocol test_adaptive_bench
""".split())


#: files whose tests measure time or rates against real clocks (a 0.5 s call timeout, calls per minute,
#: kills at chosen moments): `make test` runs them alone, after the parallel part, so that another
#: test's load on the two cores cannot make them fail
SERIAL_FILES = frozenset({"test_collect_faults", "test_kill_resume", "test_evolve_async", "test_collect_budgets",
                          "test_adaptive_collect"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        stem = Path(str(item.fspath)).stem
        if stem in FAST_FILES:
            item.add_marker(pytest.mark.fast)
        if stem in SERIAL_FILES:
            item.add_marker(pytest.mark.serial)


@pytest.fixture
def table2():
    return TABLE2


@pytest.fixture
def cli(capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from potsearch.cli.app import main

    def run(*args):
        code = main([str(a) for a in args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray for a test module (collect tests)."""
    ray = pytest.importorskip("ray")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def word_yaml(tmp_path):
    """Write a copy of agents/word.yaml (word list at its absolute path) with text replacements;
    returns the copy's path."""

    def write(*replace: tuple[str, str], name: str = "word.yaml") -> Path:
        text = (ROOT / "agents" / "word.yaml").read_text().replace("word_list: ../data", f"word_list: {ROOT / 'data'}")
        for old, new in replace:
            assert old in text, old
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
