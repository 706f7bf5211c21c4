"""CLI = API: every command's options are its stage's options dataclass fields and its API function's
keywords, with the same defaults, and both front ends hand the stage the same options.

Left out of the comparison, per command and documented where they are declared:
* ``PRINTING`` (each command module): flags that only change what the command prints (``--json``) or that
  the API defaults differently because a notebook call prints nothing unless asked (``quiet``);
* ``API_ONLY`` (below): options a command line has no use for.
"""
import dataclasses
import importlib
import inspect
import json

import pytest

import potsearch as ps
from potsearch.cli.app import COMMANDS, actions, build_parser, main
from potsearch.cli.runarg import OPTION_DEST, run_dest
from potsearch.core.errors import InputError

#: command -> (stage module, its options class name, API function); status has no options
STAGES = {
    "import": ("potsearch.stages.importing", "ImportOptions", ps.import_transitions),
    "collect": ("potsearch.stages.collect", "CollectOptions", ps.collect),
    "fit": ("potsearch.stages.fit", "FitOptions", ps.fit),
    "diagnose": ("potsearch.stages.diagnose", "DiagnoseOptions", ps.diagnose),
    "evolve": ("potsearch.stages.evolve", "EvolveOptions", ps.evolve),
    "polish": ("potsearch.stages.polish", "PolishOptions", ps.polish),
    "attribute": ("potsearch.stages.attribute", "AttributeOptions", ps.attribute),
    "show": ("potsearch.stages.show", "ShowOptions", ps.show),
    "report": ("potsearch.stages.report", "ReportOptions", ps.report),
    "status": (None, None, ps.status),
}
#: options of the stage and the API without a CLI flag: write=False computes without writing anything
API_ONLY = {"fit": {"write"}, "diagnose": {"write"}}

#: positional arguments of each command (placeholders) and non-default values for every option, in sets
#: that validate together (show: --top does not combine with --candidate)
POSITIONALS = {"import": ["t.csv", "r"]}
VALUES = {
    "import": [dict(count_column="n", agent="fitter", skip_invalid=True, features="f.csv", split_by="model")],
    "collect": [dict(agent="word", provider="surrogate", mode="free", protocol="chain", samples_per_state=3, chains=2,
                     sources_per_prompt=4, target_se=0.2, round_size=50, seed=7, max_samples=10, max_tokens=100, max_cost=1.5, workers=3,
                     address="127.0.0.1:1", ray_timeout=2.0, resume=True, timeout=5.0, retries=1, backoff=0.1,
                     temperature=0.7, max_tokens_per_call=9, api_base="http://x", prices="p.yaml",
                     allow_unpriced=True, rpm=30.0, tpm=9000.0, batch_size=8, inflight=3,
                     setup=("a.py:f", "b.py:g"), progress=False)],
    "fit": [dict(weight="high_reject", n0=2.0, min_visits=0, kernel="exp", beta=2.0, bootstrap=3, whole_graph=True,
                 seed=5, reference="A", escapes="condition", out="o")],
    "diagnose": [dict(weight="high_reject", n0=2.0, min_visits=0, alpha=0.1, min_kernel=0.2, vote="3,2", top=5,
                      plots=False, out="o")],
    "evolve": [dict(config="c.yaml", rounds=2, islands=3, seed=4, workers=2, resume=True, address="local",
                    force=True, features="f.csv", quiet=True, ray_timeout=2.0, patience=5)],
    "polish": [dict(method="lbfgs", iterations=3, samples=4, keep=2, scale=0.2, seed=1, max_evals=9, candidate="7",
                    compare=True, quiet=True)],
    "attribute": [dict(candidate="7", repeats=2, seed=1, refit_evals=9)],
    "show": [dict(candidate="7", simplify=False, format="latex", symbolic=True, min_ratio=0.1), dict(top=3)],
    "report": [dict(out="x.html", refresh=True, compare=("b", "c"))],
}


def _parsers():
    return build_parser(load_all=True).commands


def _printing(cmd) -> set:
    return set(importlib.import_module(COMMANDS[cmd][0]).PRINTING)


def _cli(cmd, parser) -> tuple[list, dict]:
    """(positional dests, {option dest: default}) of a command, the run option and --help left out."""
    acts = [a for a in actions(parser) if a.dest not in ("help", OPTION_DEST)]
    return [a.dest for a in acts if not a.option_strings], {a.dest: a.default for a in acts if a.option_strings}


def _api(fn) -> tuple[list, dict]:
    params = inspect.signature(fn).parameters.values()
    return ([p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD],
            {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY})


def _options_class(cmd):
    mod, cls, _ = STAGES[cmd]
    return getattr(importlib.import_module(mod), cls) if mod else None


def test_every_command_with_a_run_is_covered():
    parsers = _parsers()
    assert set(STAGES) == {c for c, p in parsers.items() if run_dest(p)} - {"export"}   # export: no API
    assert run_dest(parsers["data"]) is None


@pytest.mark.parametrize("cmd", sorted(STAGES))
def test_cli_options_are_the_stage_options_are_the_api_keywords(cmd):
    parser = _parsers()[cmd]
    printing, api_only = _printing(cmd), API_ONLY.get(cmd, set())
    positionals, cli = _cli(cmd, parser)
    api_pos, api = _api(STAGES[cmd][2])
    assert run_dest(parser) in positionals and positionals == api_pos     # same plain arguments, same order
    assert printing <= set(cli), "a printing flag the command does not have"
    cls = _options_class(cmd)
    fields = {f.name: f.default for f in dataclasses.fields(cls)} if cls else {}
    assert api_only <= set(fields) and api_only <= set(api)
    cli = {k: v for k, v in cli.items() if k not in printing}
    fields = {k: v for k, v in fields.items() if k not in printing | api_only}
    api = {k: v for k, v in api.items() if k not in printing | api_only}
    assert set(cli) == set(fields) == set(api)
    assert cli == fields == api                                          # the defaults, too


def _argv(cmd, parser, values: dict, run_flag: bool) -> list[str]:
    by_dest = {a.dest: a for a in actions(parser) if a.option_strings}
    pos = POSITIONALS.get(cmd, ["r"])
    argv = [cmd, *pos[:-1], "--run", pos[-1]] if run_flag else [cmd, *pos]
    for name, value in values.items():
        a = by_dest[name]
        if a.nargs == 0:                                  # store_true / store_false / store_const
            argv.append(a.option_strings[0])
        elif isinstance(value, tuple):                    # append
            for v in value:
                argv += [a.option_strings[0], str(v)]
        else:
            argv += [a.option_strings[0], str(value)]
    return argv


class _Stop(Exception):
    pass


@pytest.mark.parametrize("cmd", sorted(VALUES))
def test_cli_and_api_hand_the_stage_the_same_options(cmd, monkeypatch):
    """Every option set to a non-default value: the command line (RUN and --run RUN) and the API call
    the stage's run with equal options, those values."""
    cls = _options_class(cmd)
    assert set().union(*VALUES[cmd]) | API_ONLY.get(cmd, set()) == {f.name for f in dataclasses.fields(cls)}
    seen = []

    def spy(*args, **kw):
        seen.append((args[:-1], args[-1]))
        raise _Stop

    monkeypatch.setattr(importlib.import_module(STAGES[cmd][0]), "run", spy)
    parser = _parsers()[cmd]
    pos = POSITIONALS.get(cmd, ["r"])
    for values in VALUES[cmd]:
        seen.clear()
        for run_flag in (False, True):
            with pytest.raises(_Stop):
                main(_argv(cmd, parser, values, run_flag))
        with pytest.raises(_Stop):
            STAGES[cmd][2](*pos, **values)
        want = cls(**values)
        assert [s[1] for s in seen] == [want] * 3, cmd
        assert all(tuple(map(str, s[0])) == tuple(pos) for s in seen)


def test_no_submodule_shadows_an_api_function():
    import pkgutil

    names = {m.name for m in pkgutil.iter_modules(ps.__path__)} - {"__main__"}
    assert not names & set(ps.__all__)
    for name in names:
        importlib.import_module(f"potsearch.{name}")
    for name in ps.__all__:
        if name != "__version__":
            assert getattr(ps, name) is getattr(ps.api, name), name


# ---------------------------------------------------------------- the same outcome both ways
def _without_times(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in ("seconds", "history")}


def test_fit_writes_the_same_files_both_ways(tmp_path, table2, capsys):
    cli_run, api_run = tmp_path / "cli", tmp_path / "api"
    assert main(["import", str(table2), str(cli_run)]) == 0
    ps.import_transitions(table2, api_run)
    assert main(["fit", str(cli_run), "--bootstrap", "5"]) == 0
    res = ps.fit(api_run, bootstrap=5)
    cli_json = json.loads((cli_run / "fit" / "fit.json").read_text())
    api_json = json.loads((api_run / "fit" / "fit.json").read_text())
    assert "dropped" in cli_json and _without_times(cli_json) == _without_times(api_json)
    assert (cli_run / "fit" / "potentials.csv").read_text() == (api_run / "fit" / "potentials.csv").read_text()
    assert res.out == api_run / "fit" and _without_times(res.summary) == _without_times(api_json)
    assert ps.status(api_run)["stages"]["fit"]["states"] == ps.status(cli_run)["stages"]["fit"]["states"] == 5


def test_fit_reference_both_ways(tmp_path, table2, capsys):
    run = tmp_path / "r"
    ps.import_transitions(table2, run)
    res = ps.fit(run, reference="TURKEY", write=False)
    assert res.out is None and res.summary["reference"]["chosen_by"] == "--reference TURKEY"
    capsys.readouterr()
    assert main(["fit", str(run), "--reference", "TURKEY", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["reference"] == res.summary["reference"] and printed["dropped"] == res.summary["dropped"]
    with pytest.raises(InputError, match="--reference 'NOPE' is not among the 5 fitted states"):
        ps.fit(run, reference="NOPE")


def test_evolve_floor_both_ways(tmp_path, table2, capsys):
    run = tmp_path / "r"
    ps.import_transitions(table2, run)
    ps.fit(run, min_visits=4000)          # keeps TURKEY and BUZZY only: below the floor of 5 states
    capsys.readouterr()
    assert main(["evolve", str(run), "--rounds", "1", "--islands", "1", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    with pytest.raises(InputError) as exc:
        ps.evolve(run, rounds=1, islands=1)
    assert err == exc.value.format() and "only 2 states in the fit (fewer than 5)" in err
    assert not (run / "evolve").exists()
    res = ps.evolve(run, rounds=1, islands=1, force=True)
    assert res["rounds"] == 1 and "below the floor of 5, searched because of --force" in res.warnings[0]


def test_import_agent_checks_both_ways(tmp_path, capsys):
    f = tmp_path / "fit.csv"
    f.write_text("source,target,count\nparam1*x,x+param1,3\nx+param1,x+++,2\nx+param1,param1*x,1\n")
    assert main(["import", str(f), str(tmp_path / "cli"), "--agent", "fitter"]) == 2
    err = capsys.readouterr().err.strip()
    with pytest.raises(InputError) as exc:
        ps.import_transitions(f, tmp_path / "api", agent="fitter")
    assert err == exc.value.format() and "1 of 3 states" in err
    assert not (tmp_path / "cli").exists() and not (tmp_path / "api").exists()
    assert main(["import", str(f), "--run", str(tmp_path / "cli"), "--agent", "fitter", "--skip-invalid"]) == 0
    assert "imported 4 samples" in capsys.readouterr().out
    res = ps.import_transitions(f, tmp_path / "api", agent="fitter", skip_invalid=True)
    assert (res["added"], res.total, res.skipped_rows, list(res.invalid_states)) == (4, 4, 1, ["x+++"])
    assert ps.load(tmp_path / "api").total == ps.load(tmp_path / "cli").total == 4


def test_compare_options_are_the_stage_options_are_the_api_keywords(monkeypatch):
    """compare takes its runs as a list (RUN_A RUN_B ...), so it is checked here: same names, same defaults,
    and the CLI and the API hand the stage equal options."""
    from potsearch.stages import compare as stage

    parser = _parsers()["compare"]
    _, cli = _cli("compare", parser)
    cli = {k: v for k, v in cli.items() if k not in _printing("compare")}
    fields = {f.name: f.default for f in dataclasses.fields(stage.CompareOptions)}
    api = {p.name: p.default for p in inspect.signature(ps.compare).parameters.values() if p.kind is p.KEYWORD_ONLY}
    assert cli == fields == api
    seen = []

    def spy(runs, options):
        seen.append((list(map(str, runs)), options))
        raise _Stop

    monkeypatch.setattr(stage, "run", spy)
    values = dict(bootstrap=7, seed=3, alpha=0.1, correction="bh", force=True, transfer=False, transfer_bootstrap=2,
                  html="c.html")
    assert set(values) == set(fields)
    with pytest.raises(_Stop):
        main(["compare", "a", "b", "--bootstrap", "7", "--seed", "3", "--alpha", "0.1", "--correction", "bh",
              "--force", "--no-transfer", "--transfer-bootstrap", "2", "--html", "c.html"])
    with pytest.raises(_Stop):
        ps.compare("a", "b", **values)
    assert seen == [(["a", "b"], stage.CompareOptions(**values))] * 2
