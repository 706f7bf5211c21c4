"""Agent definitions (``agents/*.yaml``) validated into frozen dataclasses.

Every problem is reported as ``InputError`` naming the file and, where YAML
gives it, the line: unknown keys, wrong types, out-of-range values, missing
data files. Relative paths in a file are relative to that file's folder.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import InputError
from ..yamlio import SafeLoader

KINDS = ("word", "fitter")
DECODING_MODES = ("free", "constrained")
PROTOCOLS = ("per_state", "chain", "population")
FITTER_FUNCTIONS = ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "abs", "sinh", "cosh", "atan")
SCORE_MAPPINGS = ("log", "linear")


class _LineDict(dict):
    """A mapping that remembers the line of each key (``lines[key]``, 1-based)."""

    lines: dict
    line: int | None = None


class _Loader(SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    out = _LineDict()
    out.lines = {}
    out.line = node.start_mark.line + 1
    for knode, vnode in node.value:
        key = loader.construct_object(knode, deep=True)
        if key in out:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", knode.start_mark
            )
        out[key] = loader.construct_object(vnode, deep=True)
        out.lines[key] = knode.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


# ---------------------------------------------------------------- dataclasses
@dataclass(frozen=True)
class SamplingConfig:
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16  # for "constrained"; free decoding uses free_max_tokens
    free_max_tokens: int = 48
    samples_per_state: int = 20  # K of the per-state protocol (the paper's N0)
    seed: int = 0


@dataclass(frozen=True)
class WordOptions:
    word_list: str  # resolved path
    target_sum: int = 100


@dataclass(frozen=True)
class FitterOptions:
    dataset: str  # resolved path
    target: str = "target"
    feature: str | None = None
    functions: tuple[str, ...] = FITTER_FUNCTIONS
    max_chars: int = 300
    max_depth: int = 20
    max_nodes: int = 200
    max_params: int = 8
    max_power: float = 10.0
    max_constant: float = 1e6
    n_starts: int = 8
    max_seconds: float = 2.0
    max_nfev: int = 400
    score: str = "log"  # "log": 20 points a decade of NMSE; "linear": 100*(1-NMSE)
    population: int = 4  # sources shown in one prompt (population protocol)
    seed: int = 0


@dataclass(frozen=True)
class SurrogateOptions:
    hidden_potential: str = "1.6*length - 2.4*zipf"
    neighbours: int = 6  # degree of the symmetric neighbour graph (even)
    locality: float | None = 0.2  # word graph: cycles follow V + jitter of locality*std(V); null = random
    graph_seed: int = 12345
    drift: float = 0.0  # cyclic bias along neighbour cycle 0 (breaks detailed balance)
    escape_prob: float = 0.0
    # fitter surrogate: states are sums of basis terms
    basis: tuple[str, ...] = ()
    max_terms: int = 4


@dataclass(frozen=True)
class AgentConfig:
    name: str
    kind: str
    description: str
    system: str
    prompt: str
    decoding: str = "constrained"
    protocol: str = "per_state"
    initial: tuple[str, ...] = ()
    initial_random: int = 0
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    word: WordOptions | None = None
    fitter: FitterOptions | None = None
    surrogate: SurrogateOptions = field(default_factory=SurrogateOptions)
    source: str = ""

    def to_dict(self) -> dict:
        """Plain JSON-able dict (for run metadata)."""
        return asdict(self)


# ---------------------------------------------------------------- validation helpers
class _Ctx:
    def __init__(self, path: str):
        self.file = path

    def err(self, msg: str, mapping: Any = None, key: Any = None):
        line = None
        if isinstance(mapping, _LineDict):
            line = mapping.lines.get(key, mapping.line) if key is not None else mapping.line
        raise InputError(msg, self.file, line)

    def mapping(self, d: Any, what: str, parent=None, key=None) -> _LineDict:
        if not isinstance(d, dict):
            self.err(f"{what} must be a mapping", parent, key)
        return d  # type: ignore[return-value]

    def check_keys(self, d: _LineDict, allowed: set[str], what: str):
        for k in d:
            if k not in allowed:
                self.err(f"unknown key {k!r} in {what} (allowed: {', '.join(sorted(allowed))})", d, k)

    def get(self, d: _LineDict, key: str, typ, default, what: str, lo=None, hi=None, choices=None):
        if key not in d:
            return default
        v = d[key]
        if typ is float and isinstance(v, int) and not isinstance(v, bool):
            v = float(v)
        if typ is str and v is None:
            self.err(f"{what}.{key} must be a string", d, key)
        if not isinstance(v, typ) or (typ in (int, float) and isinstance(v, bool)):
            self.err(f"{what}.{key} must be {typ.__name__}, got {type(v).__name__} {v!r}", d, key)
        if typ is float and v != v:
            self.err(f"{what}.{key} must be a number, got nan", d, key)
        if lo is not None and v < lo:
            self.err(f"{what}.{key} = {v!r} is below {lo}", d, key)
        if hi is not None and v > hi:
            self.err(f"{what}.{key} = {v!r} is above {hi}", d, key)
        if choices is not None and v not in choices:
            self.err(f"{what}.{key} = {v!r} is not one of {', '.join(map(str, choices))}", d, key)
        return v

    def strlist(self, d: _LineDict, key: str, default, what: str) -> tuple[str, ...]:
        if key not in d:
            return tuple(default)
        v = d[key]
        if isinstance(v, str):
            v = [v]
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            self.err(f"{what}.{key} must be a list of strings", d, key)
        return tuple(v)

    def path(self, d: _LineDict, key: str, base: Path, what: str) -> str:
        v = self.get(d, key, str, None, what)
        if v is None:
            self.err(f"{what}.{key} is required", d)
        p = Path(v)
        if not p.is_absolute():
            p = (base / p).resolve()
        if not p.exists():
            where = f" (relative paths start at the YAML file's folder: {p})" if not Path(v).is_absolute() else ""
            self.err(f"{what}.{key}: no such file {v!r}{where}", d, key)
        return str(p)


def _sampling(ctx: _Ctx, d, kind: str) -> SamplingConfig:
    if d is None:
        return SamplingConfig()
    ctx.check_keys(d, set(SamplingConfig.__dataclass_fields__), "sampling")
    base = SamplingConfig()
    return SamplingConfig(
        temperature=ctx.get(d, "temperature", float, base.temperature, "sampling", 0.0, 5.0),
        top_p=ctx.get(d, "top_p", float, base.top_p, "sampling", 0.0, 1.0),
        max_tokens=ctx.get(d, "max_tokens", int, base.max_tokens, "sampling", 1, 4096),
        free_max_tokens=ctx.get(d, "free_max_tokens", int, base.free_max_tokens, "sampling", 1, 4096),
        samples_per_state=ctx.get(d, "samples_per_state", int, base.samples_per_state, "sampling", 1, 10**7),
        seed=ctx.get(d, "seed", int, base.seed, "sampling"),
    )


def _surrogate(ctx: _Ctx, d) -> SurrogateOptions:
    base = SurrogateOptions()
    if d is None:
        return base
    ctx.check_keys(d, set(SurrogateOptions.__dataclass_fields__), "surrogate")
    k = ctx.get(d, "neighbours", int, base.neighbours, "surrogate", 2, 64)
    if k % 2:
        ctx.err("surrogate.neighbours must be even (the graph is a union of k/2 random cycles)", d, "neighbours")
    return SurrogateOptions(
        hidden_potential=ctx.get(d, "hidden_potential", str, base.hidden_potential, "surrogate"),
        neighbours=k,
        locality=(None if "locality" in d and d["locality"] is None else   # null: random neighbours
                  ctx.get(d, "locality", float, base.locality, "surrogate", 1e-6, 1e6)),
        graph_seed=ctx.get(d, "graph_seed", int, base.graph_seed, "surrogate"),
        drift=ctx.get(d, "drift", float, base.drift, "surrogate", -20.0, 20.0),
        escape_prob=ctx.get(d, "escape_prob", float, base.escape_prob, "surrogate", 0.0, 0.99),
        basis=ctx.strlist(d, "basis", base.basis, "surrogate"),
        max_terms=ctx.get(d, "max_terms", int, base.max_terms, "surrogate", 1, 8),
    )


def _fitter(ctx: _Ctx, d, base_dir: Path) -> FitterOptions:
    allowed = set(FitterOptions.__dataclass_fields__)
    ctx.check_keys(d, allowed, "fitter")
    b = FitterOptions(dataset="")
    funcs = ctx.strlist(d, "functions", b.functions, "fitter")
    for f in funcs:
        if f not in FITTER_FUNCTIONS:
            ctx.err(f"fitter.functions: {f!r} is not supported (supported: {', '.join(FITTER_FUNCTIONS)})", d, "functions")
    feature = d.get("feature")
    if feature is not None and not isinstance(feature, str):
        ctx.err("fitter.feature must be a string", d, "feature")
    return FitterOptions(
        dataset=ctx.path(d, "dataset", base_dir, "fitter"),
        target=ctx.get(d, "target", str, b.target, "fitter"),
        feature=feature,
        functions=funcs,
        max_chars=ctx.get(d, "max_chars", int, b.max_chars, "fitter", 10, 10000),
        max_depth=ctx.get(d, "max_depth", int, b.max_depth, "fitter", 2, 50),
        max_nodes=ctx.get(d, "max_nodes", int, b.max_nodes, "fitter", 3, 1000),
        max_params=ctx.get(d, "max_params", int, b.max_params, "fitter", 0, 20),
        max_power=ctx.get(d, "max_power", float, b.max_power, "fitter", 1.0, 100.0),
        max_constant=ctx.get(d, "max_constant", float, b.max_constant, "fitter", 1.0, 1e300),
        n_starts=ctx.get(d, "n_starts", int, b.n_starts, "fitter", 1, 200),
        max_seconds=ctx.get(d, "max_seconds", float, b.max_seconds, "fitter", 0.01, 600.0),
        max_nfev=ctx.get(d, "max_nfev", int, b.max_nfev, "fitter", 1, 10**6),
        score=ctx.get(d, "score", str, b.score, "fitter", choices=SCORE_MAPPINGS),
        population=ctx.get(d, "population", int, b.population, "fitter", 1, 50),
        seed=ctx.get(d, "seed", int, b.seed, "fitter"),
    )


TOP_KEYS = {
    "name", "kind", "description", "system", "prompt", "decoding", "protocol", "initial",
    "initial_random", "sampling", "word", "fitter", "surrogate",
}


def load_config(path: str | Path) -> AgentConfig:
    """Read and validate one agent YAML file."""
    path = Path(path)
    ctx = _Ctx(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read agent file: {exc.strerror or exc}", str(path)) from None
    try:
        d = yaml.load(text, Loader=_Loader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"invalid YAML: {problem}", str(path), mark.line + 1 if mark else None) from None
    if d is None:
        raise InputError("empty agent file", str(path))
    d = ctx.mapping(d, "the agent file")
    ctx.check_keys(d, TOP_KEYS, "the agent file")
    for req in ("name", "kind", "prompt"):
        if req not in d:
            ctx.err(f"missing required key {req!r}", d)
    kind = ctx.get(d, "kind", str, None, "agent", choices=KINDS)
    base_dir = path.resolve().parent
    word = fitter = None
    if kind == "word":
        wd = ctx.mapping(d.get("word", _LineDict(lines={})), "word", d, "word") if "word" in d else None
        if wd is None:
            ctx.err("a word agent needs a `word:` section with `word_list:`", d)
        ctx.check_keys(wd, {"word_list", "target_sum"}, "word")
        word = WordOptions(
            word_list=ctx.path(wd, "word_list", base_dir, "word"),
            target_sum=ctx.get(wd, "target_sum", int, 100, "word", 1, 10000),
        )
        if "fitter" in d:
            ctx.err("a word agent has no `fitter:` section", d, "fitter")
    else:
        if "fitter" not in d:
            ctx.err("a fitter agent needs a `fitter:` section with `dataset:`", d)
        fitter = _fitter(ctx, ctx.mapping(d["fitter"], "fitter", d, "fitter"), base_dir)
        if "word" in d:
            ctx.err("a fitter agent has no `word:` section", d, "word")
    samp = d.get("sampling")
    if samp is not None:
        samp = ctx.mapping(samp, "sampling", d, "sampling")
    sur = d.get("surrogate")
    if sur is not None:
        sur = ctx.mapping(sur, "surrogate", d, "surrogate")
    cfg = AgentConfig(
        name=ctx.get(d, "name", str, None, "agent"),
        kind=kind,
        description=ctx.get(d, "description", str, "", "agent"),
        system=ctx.get(d, "system", str, "", "agent"),
        prompt=ctx.get(d, "prompt", str, None, "agent"),
        decoding=ctx.get(d, "decoding", str, "constrained", "agent", choices=DECODING_MODES),
        protocol=ctx.get(d, "protocol", str, "per_state" if kind == "word" else "population", "agent",
                         choices=PROTOCOLS),
        initial=ctx.strlist(d, "initial", (), "agent"),
        initial_random=ctx.get(d, "initial_random", int, 0, "agent", 0, 10**6),
        sampling=_sampling(ctx, samp, kind),
        word=word,
        fitter=fitter,
        surrogate=_surrogate(ctx, sur),
        source=str(path),
    )
    if not cfg.initial and not cfg.initial_random:
        ctx.err("give `initial:` states or `initial_random: N`", d)
    return cfg
