"""store/rundir.py owns the run folder: no other module builds a path from a literal file or folder name
(an AST scan of src/potsearch), and the run's selected law, best candidate and evolve settings have one
definition each (their fallbacks, unit-tested here on stand-in stores)."""
from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
OWNERS = {"potsearch/store/rundir.py"}

#: literal path parts outside the owner that are not under a run, with the reason
ALLOWED = {
    ("potsearch/core/resources.py", "pyproject.toml"): "the source tree's root (finding shipped data), not a run",
    ("potsearch/core/resources.py", "share"): "an installation prefix's share/potsearch, not a run",
    ("potsearch/core/resources.py", "potsearch"): "an installation prefix's share/potsearch, not a run",
    ("potsearch/search/config.py", "default.yaml"): "the shipped search_configs folder, not a run",
    ("potsearch/testing/surrogate_run.py", "words_sum100.tsv"): "the shipped data folder, not a run",
}

def _text(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _literal_parts(tree: ast.AST):
    """(line, literal) of every string literal a path is built from: either side of ``/``, an argument
    of os.path.join / .joinpath, a second or later argument of Path(...) / PurePath(...)."""
    for node in ast.walk(tree):
        cands = []
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            cands = [node.left, node.right]
        elif isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
            if name in ("join", "joinpath") and not (isinstance(f, ast.Attribute) and _text(f.value) is not None):
                cands = node.args                       # os.path.join / p.joinpath; never "sep".join(...)
            elif name in ("Path", "PurePath", "PosixPath"):
                cands = node.args[1:]
        for c in cands:
            t = _text(c)
            if t is not None:
                yield node.lineno, t


def _scan() -> dict[tuple[str, str], list[int]]:
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted((SRC / "potsearch").rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if rel in OWNERS:
            continue
        for line, lit in _literal_parts(ast.parse(path.read_text(), str(path))):
            found.setdefault((rel, lit), []).append(line)
    return found


def test_no_module_but_rundir_joins_a_literal_name():
    found = _scan()
    bad = {k: v for k, v in found.items() if k not in ALLOWED}
    assert not bad, "paths built from literal names outside store/rundir.py (use RunDir): " + "; ".join(
        f"{mod}:{lines} {lit!r}" for (mod, lit), lines in sorted(bad.items()))
    stale = sorted(set(ALLOWED) - set(found))
    assert not stale, f"exceptions no longer needed (remove them): {stale}"


def test_the_scan_sees_every_kind_of_join():
    src = ('p = run / "evolve" / "summary.json"\nq = os.path.join(run, "fit.json")\nr = Path(run, "store.sqlite")\n'
           's = run.joinpath("report.html")\nt = ", ".join(["a", "b"])\nu = f"{run / \'pareto.csv\'}"\n')
    got = sorted(lit for _, lit in _literal_parts(ast.parse(src)))
    assert got == ["evolve", "fit.json", "pareto.csv", "report.html", "store.sqlite", "summary.json"]


# ----------------------------------------------------------------------------- one definition each
def _summary(run: Path, data) -> None:
    (run / "evolve").mkdir(parents=True, exist_ok=True)
    (run / "evolve" / "summary.json").write_text(json.dumps(data))


LAW = {"uid": "s:7", "source": "def potential(x, p):\n    return p[0] * x['a']\n", "params": [1.0]}


@pytest.mark.parametrize("summary, want", [
    ({"selection": {"selected": LAW}}, LAW),
    ({"selection": {"rule": None, "selected": {}}}, None),            # a search where no selection ran
    ({"selection": {"selected": {"uid": "s:7", "source": 5}}}, None),  # no usable source: no law
    ({"selection": {"selected": [1, 2]}}, None),                       # not an object: read as missing
    ({"best": LAW}, None),                                             # evolve's own best is not the law
    ("not an object", None),
])
def test_selected_law_from_the_summary(tmp_path, summary, want):
    from potsearch.store.rundir import evolve_summary, selected_law

    _summary(tmp_path, summary)
    assert selected_law(evolve_summary(tmp_path)) == want


def test_selected_law_from_the_store_is_of_the_summarys_search_else_the_newest():
    from potsearch.store.rundir import selected_law

    asked = []
    store = SimpleNamespace(candidates=SimpleNamespace(selected_law=lambda sid=None: asked.append(sid) or LAW))
    assert selected_law({"search_id": "s"}, store) == LAW and selected_law({}, store) == LAW
    assert asked == ["s", None]


class _Store:
    """A stand-in store: candidates by id and uid, the ``best_candidate`` meta."""

    def __init__(self, rows, meta=None):
        self.rows, self.meta = rows, meta
        by = {r.id: r for r in rows} | {r.uid: r for r in rows}
        valid = [r for r in rows if r.train_action is not None]
        self.candidates = SimpleNamespace(
            get=lambda ref: by.get(int(ref) if str(ref).isdigit() else ref),
            best=lambda: min(valid, key=lambda r: (r.train_action, r.complexity or 0, r.id)) if valid else None)

    def get_meta(self, key):
        return self.meta if key == "best_candidate" else None


def _row(i, train, complexity=3, params=(1.0,), n_params=1):
    return SimpleNamespace(id=i, uid=f"s:{i}", train_action=train, complexity=complexity, params=list(params),
                           n_params=n_params)


def test_best_candidate_one_rule(tmp_path):
    from potsearch.core.errors import InputError, StageMissing
    from potsearch.store.rundir import best_candidate

    rows = [_row(1, 0.50), _row(2, 0.40, complexity=9), _row(3, 0.40, complexity=5), _row(4, 0.45)]
    # nothing designated: the lowest training action, then the simplest, then the oldest
    assert best_candidate(_Store(rows), tmp_path).id == 3
    # evolve's best (summary.json) alone is designated: it wins over a lower undesignated row
    _summary(tmp_path, {"best": {"uid": "s:4"}})
    assert best_candidate(_Store(rows), tmp_path).id == 4
    # polish's meta and evolve's best: the lower training action of the two
    assert best_candidate(_Store(rows, meta=1), tmp_path).id == 4
    assert best_candidate(_Store(rows + [_row(5, 0.30)], meta=5), tmp_path).id == 5
    # a designated uid that is not in the store is skipped
    _summary(tmp_path, {"best": {"uid": "gone"}})
    assert best_candidate(_Store(rows), tmp_path).id == 3
    # by reference; an unknown or unscored one is refused in one line
    assert best_candidate(_Store(rows), tmp_path, "s:1").id == 1
    with pytest.raises(InputError, match="no candidate"):
        best_candidate(_Store(rows), tmp_path, 99)
    with pytest.raises(InputError, match="no fitted parameters"):
        best_candidate(_Store([_row(1, 0.5, params=(), n_params=2)]), tmp_path, 1)
    with pytest.raises(StageMissing, match="run `potsearch evolve"):
        best_candidate(_Store([_row(1, None)]), tmp_path)


def test_evolve_settings_and_the_problem_keywords(tmp_path):
    from potsearch.law.scoring import FitSettings
    from potsearch.search.problem import problem_settings
    from potsearch.store.rundir import evolve_settings

    assert evolve_settings(tmp_path) == {} and problem_settings(tmp_path) == {}    # no evolve yet: defaults
    _summary(tmp_path, {"config": {"seed": 5, "heldout_fraction": 0.3, "agent": "word",
                                   "fit": {"starts": 3, "max_iter": -1, "tol": True, "max_seconds": 0.5}}})
    s = evolve_settings(tmp_path)
    assert s == {"seed": 5, "heldout_fraction": 0.3, "agent": "word",
                 "fit": {"starts": 3, "max_iter": -1, "tol": True, "max_seconds": 0.5}}
    kw = problem_settings(tmp_path)
    assert kw["agent"] == "word" and (kw["seed"], kw["heldout_fraction"]) == (5, 0.3)
    assert kw["fit"] == FitSettings(starts=3, max_seconds=0.5)   # out-of-range and non-numbers: defaults
    # the recorded split wins over the store's stage result; an agent that is no feature library is not kept
    store = SimpleNamespace(stage_results=lambda: {"evolve": {"seed": 9, "heldout_fraction": 0.1}})
    _summary(tmp_path, {"problem": {"split": {"seed": 2}}, "config": {"agent": "auto", "fit": "x"}})
    assert evolve_settings(tmp_path, store) == {"seed": 2, "heldout_fraction": 0.1, "agent": "auto"}
    assert problem_settings(tmp_path, store) == {"seed": 2, "heldout_fraction": 0.1}
