"""Python API for notebooks: the stage functions the command line calls, returning their result objects.

One function per command, with the command's name — ``collect``, ``fit``, ``diagnose``, ``evolve``,
``polish``, ``attribute``, ``show``, ``report``, ``status`` — except ``import_transitions`` for
`potsearch import` (``import`` is a Python keyword). Each builds the stage's frozen options dataclass from
explicit keywords (the CLI's option names with underscores, the same defaults: the dataclass holds them)
and calls the same ``potsearch.stages.<stage>.run`` as the command; tests/test_cli_api_parity.py checks
that names and defaults agree. An unknown option or a bad value raises
``potsearch.core.errors.InputError`` in one line (the CLI turns it into exit status 2). ``quiet``
(evolve, polish) is on by default here: a notebook call prints nothing unless asked.

    import potsearch as ps
    ps.import_transitions("data/table2_claude4_word.csv", "runs/claude4")
    res = ps.fit("runs/claude4")                  # names, potential, lower_bound, scc, ..., summary
    diag = ps.diagnose("runs/claude4")            # DiagnoseResult: .verdict, .to_frame(), diag["pair"]
"""
from __future__ import annotations

from potsearch.core.stageopts import checked_options

__all__ = ["load", "import_transitions", "collect", "fit", "diagnose", "compare", "evolve", "polish", "attribute",
           "show", "report", "status"]


def load(path):
    """Transitions as ``Counts`` from a run directory, a store file or a transitions file."""
    from potsearch.stages.fit import load_input

    return load_input(path).counts


@checked_options
def import_transitions(path, run, *, count_column: str | None = None, agent: str | None = None,
                       skip_invalid: bool = False, features=None, split_by: str | None = None):
    """Import a CSV/TSV/JSONL/paper-JSON file into ``run`` (created if needed; `potsearch import`);
    idempotent. ``agent``: check every state against it (refused unless ``skip_invalid``, which drops
    the rows with an invalid state). Returns an ``ImportResult`` (``["added"]``, ``["duplicates"]``,
    ``.total``, ``.skipped_rows``). ``split_by``: a column naming each row's run: one run per value,
    ``run``/<value>; returns a ``SplitImportResult`` (``.runs``: value -> ImportResult, ``.folders``)."""
    from potsearch.stages.importing import ImportOptions, run as _run

    return _run(path, run, ImportOptions(count_column=count_column, agent=agent, skip_invalid=skip_invalid,
                                         features=None if features is None else str(features), split_by=split_by))


@checked_options
def collect(run, *, agent: str | None = None, provider: str | None = None, mode: str | None = None,
            protocol: str | None = None, samples_per_state: int | None = None, chains: int | None = None,
            sources_per_prompt: int | None = None, target_se: float | None = None, round_size: int | None = None,
            seed: int | None = None, max_samples: int | None = None,
            max_tokens: int | None = None, max_cost: float | None = None, workers: int | None = None,
            address: str | None = None, ray_timeout: float | None = None, resume: bool = False,
            timeout: float | None = None, retries: int | None = None, backoff: float | None = None,
            temperature: float | None = None, max_tokens_per_call: int | None = None, api_base: str | None = None,
            prices=None, allow_unpriced: bool = False, rpm: float | None = None, tpm: float | None = None,
            batch_size: int | None = None, inflight: int | None = None, setup=None, progress: bool | None = None):
    """Run an agent (`potsearch collect`) into ``run``; options as the CLI's (see `potsearch collect -h`;
    ``workers=None``: one per core).

    Returns the collector's ``CollectResult`` (``.summary``, ``.new_samples``, ``.stop_reason``)."""
    from potsearch.stages.collect import CollectOptions, run as _run

    return _run(run, CollectOptions(
        agent=agent, provider=provider, mode=mode, protocol=protocol, samples_per_state=samples_per_state,
        chains=chains, sources_per_prompt=sources_per_prompt, target_se=target_se, round_size=round_size, seed=seed, max_samples=max_samples,
        max_tokens=max_tokens, max_cost=max_cost, workers=workers, address=address, ray_timeout=ray_timeout,
        resume=resume, timeout=timeout, retries=retries, backoff=backoff, temperature=temperature,
        max_tokens_per_call=max_tokens_per_call, api_base=api_base,
        prices=None if prices is None else str(prices), allow_unpriced=allow_unpriced, rpm=rpm, tpm=tpm,
        batch_size=batch_size, inflight=inflight, setup=None if setup is None else tuple(setup), progress=progress))


@checked_options
def fit(source, *, weight: str = "low_reject", n0: float | None = None, min_visits: int = 1,
        kernel: str = "softplus", beta: float = 1.0, bootstrap: int = 0, whole_graph: bool = False,
        seed: int = 0, reference: str | None = None, escapes: str = "count", out=None, write: bool = True):
    """The least-action fit (`potsearch fit`) of a run, a store file or a transitions file. Writes fit/
    (with what was dropped) and records the stage unless write=False.

    Returns a ``FitStageResult``: the fit (names, potential, lower_bound, unbounded, scc, stderr, action,
    ``.to_frame()``) with ``.summary`` (fit.json) and ``.out``."""
    from potsearch.stages.fit import FitOptions, run as _run

    return _run(source, FitOptions(weight=weight, n0=n0, min_visits=min_visits, kernel=kernel, beta=beta,
                                   bootstrap=bootstrap, whole_graph=whole_graph, seed=seed, reference=reference,
                                   escapes=escapes, out=None if out is None else str(out), write=write))


@checked_options
def diagnose(source, *, weight: str | None = None, n0: float | None = None, min_visits: int | None = None,
             alpha: float = 0.05, min_kernel: float = 0.0, vote: str = "5,3", top: int = 12, plots: bool = True,
             out=None, write: bool = True):
    """Detailed-balance tests (`potsearch diagnose`) of a run, a store file or a transitions file.

    weight / n0 / min_visits: None = the saved fit's. alpha: significance level. min_kernel:
    directionality threshold on the edge weight. vote: majority voting "m,k". top: states in the
    transition diagram. plots: write the figures. out: output folder. write=False: compute only.
    Returns a ``DiagnoseResult`` (``.verdict``, ``.data`` = diagnostics.json, ``.to_frame()``)."""
    from potsearch.stages.diagnose import DiagnoseOptions, run as _run

    return _run(source, DiagnoseOptions(weight=weight, n0=n0, min_visits=min_visits, alpha=alpha,
                                        min_kernel=min_kernel, vote=vote, top=top, plots=plots,
                                        out=None if out is None else str(out), write=write))


@checked_options
def compare(*runs, bootstrap: int = 200, seed: int = 0, alpha: float = 0.05, correction: str = "holm",
            force: bool = False, transfer: bool = True, transfer_bootstrap: int = 20, html=None):
    """Compare fitted runs of one agent (`potsearch compare`): shared states and SCCs, the scale s in
    V_A = s V_B + c, Spearman / Kendall with intervals, the states that differ after the scale, transition-row
    homogeneity, law transfer; ``html``: also write the compare page there. Returns a ``CompareResult`` (``.pairs[(a, b)]`` with DataFrames ``states``,
    ``aligned``, ``homogeneity`` and ``.summary``; ``.runs``, ``.transfer``)."""
    from potsearch.stages.compare import CompareOptions, run as _run

    return _run(list(runs), CompareOptions(bootstrap=bootstrap, seed=seed, alpha=alpha, correction=correction,
                                           force=force, transfer=transfer, transfer_bootstrap=transfer_bootstrap,
                                           html=None if html is None else str(html)))


@checked_options
def evolve(run, *, config=None, rounds: int | None = None, islands: int | None = None, seed: int | None = None,
           workers: int | None = None, resume: bool = False, address: str | None = None, force: bool = False,
           features=None, quiet: bool = True, ray_timeout: float | None = None, patience: int | None = None):
    """Island search (`potsearch evolve`) on a fitted run. config: a search config YAML (default
    search_configs/default.yaml); rounds / islands / seed / workers override it; resume: continue
    from the last checkpoint (none: a new search). address: run the evaluators and model callers on Ray
    actors ('local': an embedded Ray; async loop only); ray_timeout: seconds to join it. patience: stop
    after that many rounds without improvement (overrides the config; 0 = every round). force: search a fit below the floor of states
    (refused otherwise, as the CLI does). quiet=True (the default here) prints nothing.

    Returns an ``EvolveResult`` (``.summary`` = evolve/summary.json, ``.best``, ``.law``, ``.pareto()``)."""
    from potsearch.stages.evolve import EvolveOptions, run as _run

    return _run(run, EvolveOptions(config=None if config is None else str(config), rounds=rounds, islands=islands,
                                   seed=seed, workers=workers, resume=resume, quiet=quiet, address=address,
                                   force=force, features=None if features is None else str(features),
                                   ray_timeout=ray_timeout, patience=patience))


@checked_options
def polish(run, *, method: str = "random-descent", iterations: int = 100, samples: int = 20, keep: int = 5,
           scale: float = 0.1, seed: int = 0, max_evals: int | None = None, candidate=None, compare: bool = False,
           quiet: bool = True):
    """Polish a candidate's parameters (`potsearch polish`; default: the run's best candidate).
    quiet=True (the default here) prints no progress.

    Returns a ``PolishResult`` (``.summary``, ``.train_before`` / ``.train_after``, ``.promoted``)."""
    from potsearch.stages.polish import PolishOptions, run as _run

    return _run(run, PolishOptions(method=method, iterations=iterations, samples=samples, keep=keep, scale=scale,
                                   seed=seed, max_evals=max_evals, candidate=candidate, compare=compare,
                                   quiet=quiet))


@checked_options
def attribute(run, *, candidate=None, repeats: int = 10, seed: int = 0, refit_evals: int = 1500):
    """Feature attribution (`potsearch attribute`; default: the run's best candidate).

    Returns an ``AttributeResult`` (``.top_feature``, ``.ranking``, ``.to_frame()``)."""
    from potsearch.stages.attribute import AttributeOptions, run as _run

    return _run(run, AttributeOptions(candidate=candidate, repeats=repeats, seed=seed, refit_evals=refit_evals))


@checked_options
def show(run, *, candidate=None, simplify: bool = True, top: int = 0, format: str = "python",
         symbolic: bool = False, min_ratio: float = 0.05):
    """What `potsearch show` prints, as an object: the law evolve selected (or ``candidate``), its
    formula, source, parameters with standard errors, scores, selection, lineage, directionality
    (transitions with T = n/N(f) >= ``min_ratio``); ``top=K``: the K Pareto-front candidates with their
    formulas; ``simplify=False``: a candidate no selection simplified is shown with its canonical form only.

    Returns a ``ShowResult`` (``.formula``, ``.law``, ``.selection``, ``.params`` / ``.lineage`` /
    ``.top`` DataFrames; ``str(result)`` is the printed text)."""
    from potsearch.stages.show import ShowOptions, run as _run

    return _run(run, ShowOptions(candidate=None if candidate is None else str(candidate), simplify=simplify,
                                 top=top, format=format, symbolic=symbolic, min_ratio=min_ratio))


@checked_options
def report(run, *, out=None, refresh: bool = False, compare=None):
    """Write runs/NAME/report.html (`potsearch report`), running the diagnostics first when the run has
    none (or refresh=True); ``compare``: other runs compared with this one in a section; returns its path."""
    from potsearch.stages.report import ReportOptions, run as _run

    return _run(run, ReportOptions(out=None if out is None else str(out), refresh=refresh,
                                   compare=None if compare is None else tuple(str(c) for c in compare)))


def status(run) -> dict:
    """Stages done and their key numbers (what `potsearch status --json` prints)."""
    from potsearch.store import RunStore

    with RunStore.open(run, readonly=True) as store:
        return {"run": store.run_info(), "samples": store.n_samples(), "stages": store.stage_results()}
