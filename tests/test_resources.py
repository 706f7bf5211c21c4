"""The shipped folders resolve from the source tree, or from an installed prefix when there is none."""
import shutil
from pathlib import Path

import pytest

import potsearch.core.resources as res
from potsearch.agents.registry import load_agent

ROOT = Path(__file__).resolve().parents[1]


def test_source_tree_first():
    for name in res.SHIPPED:
        assert res.shipped_dir(name) == ROOT / name


def test_installed_copy_when_there_is_no_source_tree(tmp_path, monkeypatch):
    """A wheel puts agents/, data/, search_configs/ under <prefix>/share/potsearch/: the agents load
    from there with their relative paths (../data/...) intact."""
    share = tmp_path / "prefix" / "share" / "potsearch"
    for name in res.SHIPPED:
        shutil.copytree(ROOT / name, share / name)
    monkeypatch.setattr(res, "_candidates", lambda name: [tmp_path / "no-source" / name, share / name])
    assert res.shipped_dir("agents") == share / "agents"
    word = load_agent("word")
    assert len(word.words) > 700 and str(word.config.source).startswith(str(share))
    fitter = load_agent("fitter")
    assert fitter is not None
    from potsearch.search.config import default_config_path
    from potsearch.testing.surrogate_run import word_list_path

    assert default_config_path() == share / "search_configs" / "default.yaml"
    assert word_list_path() == share / "data" / "words_sum100.tsv"


def test_unknown_folder_is_refused():
    with pytest.raises(ValueError):
        res.shipped_dir("secrets")


def test_wheel_ships_the_folders():
    """pyproject.toml lists every shipped file pattern as data-files."""
    import tomllib

    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    for name in res.SHIPPED:
        pats = conf[f"share/potsearch/{name}"]
        tracked = [p for p in (ROOT / name).iterdir() if p.is_file() and not p.name.startswith(".")]
        assert tracked and all(any(p.match(pat.split("/", 1)[1]) for pat in pats) for p in tracked), name
