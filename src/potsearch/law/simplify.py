"""Canonical simplified form of a candidate potential (sympy), for the reader and for selection.

``canonical_form(source, params)`` (no data needed) translates ``potential(x, p)`` — expression
bodies, simple assignments and calls of helper functions defined in the same program, inlined — into
a sympy expression (the law language's one translator, ``potsearch.law.formula.translate``) over the
feature symbols with the fitted parameters substituted, then:

* folds constants and merges parameters: every number is substituted, so ``p0*p1`` is one number;
* expands the law into additive terms ``V = sum_i c_i * term_i`` (the additive constant is
  dropped: the action depends on potential differences only). The expansion is kept only when it
  does not add parameters (``p0*(x + p1*y)`` -> ``c1*x + c2*y`` is exact; ``p0*(x + p1)**2`` is
  not expanded, it would turn 2 parameters into 3);
* re-parametrises: every distinct floating number becomes a parameter ``p[i]`` again, every outer
  coefficient is free. The new family contains the old one, so a refit never raises the action.

``simplify(source, params, data)`` also uses the data (a ``scoring.ScoringData``):

* near-identity wrappers: each function node f(u) is tried as u, as a constant (dropped) and,
  where u has one sign on every state, ``|u|`` as ``±u`` (exact on the data);
* pruning: each additive term is tried without it; a linear feature term may also be swapped for
  features tied to it by an exact linear identity of the feature table (see below).
  Every proposal is refitted (the GP compile and scoring path, ``scoring.score_source``, on source
  written here from the sympy form: a candidate's own code never runs outside the sandbox) and accepted when its training action
  is at most ``S_original + tol``, ``tol = max(rel_floor * S, min(z * SE, rel_cap * S))`` with S the
  original's training action and SE the standard error of the action difference against the
  *original* candidate, from the per-pair differences over the training edges (pairs taken as
  independent; z = 2, rel_floor = 1e-5, rel_cap = 1e-3). The cap keeps a large, heterogeneous change
  (whose per-pair spread is itself large) from hiding behind its own spread: no simplification costs
  more than 0.1 % of the action. Comparing every step with the original bounds the cumulative rise.

Linear identities among features: the centred feature table's null space (SVD, relative singular
value < 1e-9) gives the exact linear relations of the data, e.g. length = vowels + consonants and
length = distinct + repeats on the word agent; power identities between two positive features
(a = C * b**k, log-linear fit exact to 1e-9, k in +-1, +-2, +-1/2, +-3) are found the same way
(mean_letter = 100 / length on the shipped words); nothing is hard-coded. The RULE: among forms of
equal action (within tolerance), the one with fewer additive terms wins; when a term count ties,
the one that reads fewer distinct features, then the lower complexity, then the one with fewer
divisions by a feature (length * zipf rather than zipf / mean_letter), then the one on the features
listed first in the agent's feature table (log(length) rather than its twin log(mean_letter)); only a
strictly simpler form replaces the current one. Among linear rewrites, the one that keeps more of the found features.

Every step is kept: ``Simplified.path`` holds the refitted form before each accepted step, so that
selection can weigh a step the tolerance allowed against the evidence (potsearch.law.selection).

Support: a term carried by fewer than ``min_support(n)`` states (max(3, 3 % of them); participation
ratio of its centred values, ``support``) is a lookup of those states, not a law, and flags the law
``ill_conditioned`` like a cancellation does.

Ill-conditioning: for every sum node of the fitted law, the cancellation ratio
kappa = sum_i rms(arg_i) / std(sum) (at the root: std instead of rms, constants being free) measures
how much of the sum's terms cancel on the data (``(log1p(r) - 24000)`` has kappa ~ 5e4). A law whose
largest kappa exceeds ``MAX_CANCELLATION`` (30) is flagged ``ill_conditioned``; selection rejects
such a law whenever a well-conditioned one is on the front (potsearch.law.selection).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from potsearch.law.conditioning import MAX_CANCELLATION, cancellation, expr_values, min_support, support
from potsearch.law.formula import (
    FormulaError, additive_terms, feature_symbol, latex_text, pretty_text, to_source, translate
)
from potsearch.law.identities import feature_identities, identity_closure, power_identities


# ----------------------------------------------------------------------------- structure
def _n_floats(expr: sp.Expr) -> int:
    return len({float(a) for a in expr.atoms(sp.Float)})


def parametrise(expr: sp.Expr) -> tuple[sp.Expr, list[float]]:
    """Every outer coefficient free, every distinct inner float a parameter: (expr over P_i, values)."""
    vals: list[float] = []
    syms: list[sp.Symbol] = []

    def new(v):
        s = sp.Symbol(f"P_{len(vals)}")
        vals.append(float(v))
        syms.append(s)
        return s

    out = 0
    for c, b in additive_terms(expr):
        inner = {}
        for f in sorted(b.atoms(sp.Float), key=lambda a: float(a)):
            inner[f] = new(f)
        out = out + new(c) * b.xreplace(inner)
    return sp.sympify(out), vals


# ----------------------------------------------------------------------------- canonical form
def _canon(num: sp.Expr, n_before: int) -> tuple[sp.Expr, list[float]]:
    """Expanded and re-parametrised when that adds no parameter (and does not blow up), else factored."""
    ops = sp.count_ops(num)
    if ops > 150:  # expanding a large tree can take sympy minutes: keep it factored
        return parametrise(num)
    expanded = sp.expand(num)
    if sp.count_ops(expanded) <= 4 * ops + 20:
        pe, vals = parametrise(expanded)
        if len(vals) <= n_before:
            return pe, vals
    return parametrise(num)


def _drop_constant_terms(pexpr: sp.Expr):
    keep = [t for t in sp.Add.make_args(pexpr) if _reads_features(t)]
    return sp.Add(*keep) if keep else None


@dataclass
class Canonical:
    ok: bool                        # False: translation gave up, the fields describe the original
    source: str                     # potential(x, p) source of the form
    params: list                    # its parameters (values)
    expr: sp.Expr | None = None     # numeric sympy expression (parameters substituted)
    text: str = ""
    latex: str = ""
    reason: str = ""


def canonical_form(source: str, params) -> Canonical:
    """Constants folded, parameters merged, the law expanded into terms where that adds no parameter.
    Never raises for a candidate's fault: ``ok=False`` returns the original."""
    try:
        num = translate(source, params).expr
        if not num.free_symbols:
            raise FormulaError("constant potential")
        n_before = max(len(params or []), _n_floats(num))
        pe, vals = _canon(num, n_before)
        numeric = pe.xreplace({sp.Symbol(f"P_{i}"): sp.Float(v, 17) for i, v in enumerate(vals)})
        src = to_source(pe, len(vals))
        return Canonical(True, src, vals, numeric, pretty_text(numeric), latex_text(numeric))
    except (FormulaError, TypeError, ValueError, ZeroDivisionError, RecursionError, AttributeError,
            OverflowError, MemoryError) as exc:
        return Canonical(False, source, list(params or []), reason=str(exc)[:200] or type(exc).__name__)


# ----------------------------------------------------------------------------- data-driven steps
def n_features(expr: sp.Expr) -> int:
    """How many distinct features a (parametrised) law reads."""
    return sum(1 for s in expr.free_symbols if not s.name.startswith("P_"))


def _reads_features(e: sp.Expr) -> bool:
    """Whether a (parametrised) expression reads a feature (a symbol other than a parameter P_i)."""
    return any(not s.name.startswith("P_") for s in e.free_symbols)


def n_nonlinear(expr: sp.Expr) -> int:
    """How many nonlinear operations on features a law has: each function of a feature-dependent
    argument (log, exp, tanh, |.|), each power of one (a square, a square root, a reciprocal), and each
    product of two feature-dependent factors (x*y counts 1, x*y*z 2; x/y counts 2: a product and a
    reciprocal). A plain linear law has none. Parameters and numbers are free."""
    n = 0
    for a in sp.preorder_traversal(expr):
        if isinstance(a, sp.Pow):
            n += _reads_features(a.base) and a.exp != 1
        elif isinstance(a, sp.Mul):
            n += max(0, sum(1 for f in a.args if _reads_features(f)) - 1)
        elif isinstance(a, sp.Function) and any(_reads_features(g) for g in a.args):
            n += 1
    return n


def n_divisions(expr: sp.Expr) -> int:
    """How many divisions by a feature-dependent expression a law has (negative powers)."""
    return sum(1 for a in sp.preorder_traversal(expr) if isinstance(a, sp.Pow) and a.exp.is_negative
               and _reads_features(a.base))


def _size(res: dict, order: dict | None = None) -> tuple:
    """How complex a refitted form is, compared in this order (module doc, the RULE); last, the
    positions of its features in the feature table (``order``), so that of two forms equal in every
    other respect (twins under a power identity: log(mean_letter) and log(length)) the one on the
    features listed first wins."""
    pos = tuple(sorted(order.get(s.name, len(order)) for s in res["pexpr"].free_symbols
                       if not s.name.startswith("P_"))) if order else ()
    return (res["n_terms"], n_features(res["pexpr"]), res["complexity"], n_divisions(res["pexpr"]), pos)


@dataclass
class Simplified:
    ok: bool
    source: str
    params: list
    train_action: float | None
    heldout_action: float | None
    original_train_action: float | None
    tolerance: float
    text: str = ""
    latex: str = ""
    n_terms: int = 0
    complexity: int = 0
    cancellation: float = 1.0
    support: float = math.inf                     # states carrying the least supported term (``support``)
    ill_conditioned: bool = False
    steps: list = field(default_factory=list)     # what was changed, in order
    reason: str = ""
    path: list = field(default_factory=list)      # the refitted form before each step (dicts, see _form_of)


def _pair_contrib(V: np.ndarray, data) -> np.ndarray:
    from potsearch.law.scoring import pair_terms

    lo, hi, a, b = data.train.pairs()
    with np.errstate(all="ignore"):
        val, _, _ = pair_terms(V[lo] - V[hi], a, b, data.kernel, data.beta, 0)
    return val / data.train.n_states


class Refitter:
    def __init__(self, data, seed: int):
        self.data, self.seed = data, seed
        self.n = data.n_states

    def fit(self, pexpr: sp.Expr, p0: list[float], again: bool = True) -> dict | None:
        """Refit a parametrised expression through the GP scoring path; None if it fails."""
        from potsearch.law.scoring import score_source  # the compile path of our own generated candidates

        used = sorted(int(s.name[2:]) for s in pexpr.free_symbols if s.name.startswith("P_"))
        remap = {sp.Symbol(f"P_{i}"): sp.Symbol(f"P_{k}") for k, i in enumerate(used)}
        pe = pexpr.xreplace(remap)
        try:
            src = to_source(pe, len(used))
        except FormulaError:
            return None
        res = score_source(src, [p0[i] for i in used], self.seed, data=self.data)
        if res.get("error") or res.get("train_action") is None:
            return None
        params = res["params"]
        numeric = pe.xreplace({sp.Symbol(f"P_{i}"): sp.Float(v, 17) for i, v in enumerate(params)})
        try:
            V = expr_values(numeric, self.data.features, self.n)
        except (KeyError, TypeError, ValueError, NameError):
            return None
        if not np.all(np.isfinite(V)):
            return None
        out = {"pexpr": pe, "params": list(params), "source": src, "S": float(res["train_action"]),
               "Sh": res.get("heldout_action"), "numeric": numeric, "V": V, "complexity": res.get("complexity", 0),
               "n_terms": len(additive_terms(sp.expand(numeric)))}
        if again:
            pe2, vals2 = _canon(numeric, len(params))
            if pe2 != pe:
                res2 = self.fit(pe2, vals2, again=False)
                if res2 is not None and res2["S"] <= out["S"] + 1e-9 * abs(out["S"]):
                    return res2
        return out


def _num(e: sp.Expr, vals: list[float]) -> sp.Expr:
    return e.xreplace({sp.Symbol(f"P_{i}"): sp.Float(v, 17) for i, v in enumerate(vals)})


def _proposals(pexpr: sp.Expr, vals: list[float], features: dict, identities: list, n: int,
               max_rewrites: int = 6, powers: list = ()):
    """Simpler forms of a parametrised law: (description, new pexpr, n_terms)."""
    numeric = pexpr.xreplace({sp.Symbol(f"P_{i}"): sp.Float(v, 17) for i, v in enumerate(vals)})
    terms = list(sp.Add.make_args(pexpr))
    # 1. drop one additive term (of the law, or of any inner sum)
    for i, t in enumerate(terms):
        if len(terms) > 1:
            yield f"dropped term {pretty_text(_num(t, vals))}", sp.Add(*(terms[:i] + terms[i + 1:]))
    for node in sorted({a for a in sp.preorder_traversal(pexpr) if isinstance(a, sp.Add)} - {pexpr},
                       key=sp.default_sort_key):
        for i, t in enumerate(node.args):
            rest = node.args[:i] + node.args[i + 1:]
            yield f"dropped {pretty_text(_num(t, vals))} from an inner sum", pexpr.xreplace({node: sp.Add(*rest)})
    # 2. linear feature terms: smaller subsets of their identity closure
    lin = {}
    for t in terms:
        c, b = t.as_independent(*[s for s in t.free_symbols if not s.name.startswith("P_")])
        if isinstance(b, sp.Symbol) and not b.name.startswith("P_"):
            lin[b.name] = t
    if lin and identities:
        closure = identity_closure(set(lin), identities)
        if closure != set(lin):
            rest = [t for t in terms if t not in lin.values()]
            k = len(lin)
            # pre-screen by how well each subset spans the linear part on the feature table (cheap
            # least squares), refit only the best few: the closure can hold many features
            L = np.zeros(n)
            for f, t in lin.items():
                L = L + float(_num(t, vals).as_coeff_Mul()[0]) * features[f]
            L = L - L.mean()
            if math.comb(len(closure), max(k - 1, 0)) <= 5000 and np.ptp(L) > 0:
                scored = []
                for sub in itertools.combinations(sorted(closure), k - 1):
                    if set(sub) <= set(lin):
                        continue  # plain drops are proposed above
                    A = np.column_stack([features[f] - features[f].mean() for f in sub]) if sub else np.zeros((n, 0))
                    resid = L - A @ np.linalg.lstsq(A, L, rcond=None)[0] if sub else L
                    scored.append((float(np.linalg.norm(resid)), -len(set(sub) & set(lin)), sub))
                scored.sort()
                base = len(vals)
                for _, _, sub in scored[:max_rewrites]:
                    new = [sp.Symbol(f"P_{base + j}") * feature_symbol(f) for j, f in enumerate(sub)]
                    yield f"rewrote {'+'.join(sorted(lin))} as {'+'.join(sub) or 'nothing'} (feature identity)", \
                        sp.Add(*(rest + new))
    # 3. power identities of the data (a = C * b**k): the law on fewer features
    names = {s.name for s in pexpr.free_symbols}
    for a, c, b, k in powers:
        if a in names:
            new = pexpr.xreplace({feature_symbol(a): sp.Float(c, 15) * feature_symbol(b) ** sp.nsimplify(k)})
            new = sp.expand_log(new, force=True)   # log(C/b) -> log(C) - log(b): the constant then drops
            yield f"rewrote {a} as {c:g}*{b}**{k:g} (feature identity)", new
    # 4. near-identity wrappers
    for node in sorted(set(sp.preorder_traversal(pexpr)), key=sp.default_sort_key):
        if isinstance(node, (sp.exp, sp.log, sp.tanh, sp.Abs, sp.sin, sp.cos, sp.atan, sp.sinh, sp.cosh, sp.tan)) \
                or (isinstance(node, sp.Pow) and not (node.exp.is_Integer)):
            u = node.args[0] if not isinstance(node, sp.Pow) else node.base
            yield f"replaced {pretty_text(_num(node, vals))} by its argument", pexpr.xreplace({node: u})
            if isinstance(node, sp.Abs):
                try:
                    uv = expr_values(u.xreplace({sp.Symbol(f"P_{i}"): sp.Float(v, 17) for i, v in enumerate(vals)}),
                                 features, n)
                    if np.all(uv <= 0):
                        yield "abs of a non-positive argument", pexpr.xreplace({node: -u})
                except (KeyError, TypeError, ValueError, NameError):
                    pass
            yield f"replaced {pretty_text(_num(node, vals))} by a constant", pexpr.xreplace({node: sp.Integer(1)})
    _ = numeric


def simplify(source: str, params, data, seed: int = 0, z: float = 2.0, rel_floor: float = 1e-5,
             rel_cap: float = 1e-3, max_steps: int = 12, max_seconds: float = 20.0) -> Simplified:
    """Canonical form, then wrappers removed and terms pruned with a refit (module doc). ``data`` is a
    ``ScoringData``. Never raises for a candidate's fault: ``ok=False`` keeps the original. After
    ``max_seconds`` no new proposal is tried (the best form so far is returned, ``steps`` says so)."""
    import time

    from potsearch.law.scoring import complexity_of

    t_end = time.perf_counter() + max_seconds

    can = canonical_form(source, params)
    refit = Refitter(data, seed)
    feats, n = data.features, data.n_states
    if not can.ok:
        return Simplified(False, source, list(params or []), None, None, None, 0.0, reason=can.reason,
                          complexity=complexity_of(source))
    pe, vals = parametrise(can.expr)
    base = refit.fit(pe, vals)
    orig = None
    try:   # the candidate's own law at its own parameters, from its translation: its code never runs here
        V0 = expr_values(translate(source, params).expr, feats, n)
        if np.all(np.isfinite(V0)):
            orig = {"S": float(_pair_contrib(V0, data).sum()), "V": V0}
    except (FormulaError, KeyError, TypeError, ValueError, NameError, ZeroDivisionError, OverflowError):
        orig = None
    if base is None:
        return Simplified(False, source, list(params or []), None, None, orig and orig["S"], 0.0,
                          reason="the canonical form could not be refitted", complexity=complexity_of(source))
    if orig is None or base["S"] < orig["S"]:
        orig = {"S": base["S"], "V": base["V"]}
    S0, c0 = orig["S"], _pair_contrib(orig["V"], data)

    def tolerance(V):
        d = _pair_contrib(V, data) - c0
        se = math.sqrt(len(d)) * float(np.std(d)) if len(d) > 1 else 0.0
        return max(rel_floor * abs(S0), min(z * se, rel_cap * abs(S0)))

    identities = feature_identities(feats)
    powers = power_identities(feats)
    order = {name: i for i, name in enumerate(feats)}
    cur, steps, path = base, [], []
    for _ in range(max_steps):
        best = None
        for desc, cand in _proposals(cur["pexpr"], cur["params"], feats, identities, n, powers=powers):
            if time.perf_counter() > t_end:
                break
            cand = _drop_constant_terms(cand)
            if cand is None:
                continue
            p0 = list(cur["params"]) + [0.1 * (j + 1) + 0.0123 for j in range(8)]
            res = refit.fit(cand, p0)
            if res is None:
                continue
            if res["S"] - S0 > tolerance(res["V"]):
                continue
            key = _size(res, order) + (res["S"],)
            if key[:-1] >= _size(cur, order):
                continue  # only a strictly simpler form is taken (a rewrite of equal size would cycle)
            if best is None or key < best[0]:
                best = (key, desc, res)
        if best is None:
            break
        # an exact identity rewrite keeps the law's values: that form is not another law to select
        dv = np.asarray(best[2]["V"], float) - np.asarray(cur["V"], float)
        same = bool(np.all(np.isfinite(dv)) and np.ptp(dv) <= 1e-6 * max(float(np.ptp(cur["V"])), 1e-12))
        path.append({**_form_of(cur, feats, n, steps), "next_step": best[1], "same_values_as_next": same})
        cur = best[2]
        if time.perf_counter() > t_end:
            steps.append(best[1])
            steps.append(f"stopped after {max_seconds:g} s")
            break
        steps.append(best[1])
    kappa = cancellation(cur["numeric"], feats, n)
    sup = support(cur["numeric"], feats, n)
    return Simplified(True, cur["source"], cur["params"], cur["S"], cur["Sh"], S0, tolerance(cur["V"]),
                      text=pretty_text(cur["numeric"]), latex=latex_text(cur["numeric"]),
                      n_terms=cur["n_terms"], complexity=int(cur["complexity"]), cancellation=kappa,
                      support=sup, ill_conditioned=kappa > MAX_CANCELLATION or sup < min_support(n), steps=steps,
                      path=path)


def _form_of(res: dict, feats: dict, n: int, steps: list) -> dict:
    """One intermediate form of a simplification (a refitted law the search may also select: the
    simplifier's tolerance decides what is "the same action", selection weighs held-out action)."""
    kappa = cancellation(res["numeric"], feats, n)
    sup = support(res["numeric"], feats, n)
    return {"source": res["source"], "params": list(res["params"]), "train_action": res["S"],
            "heldout_action": res["Sh"], "complexity": int(res["complexity"]), "n_terms": res["n_terms"],
            "text": pretty_text(res["numeric"]), "latex": latex_text(res["numeric"]), "cancellation": kappa,
            "support": sup, "ill_conditioned": kappa > MAX_CANCELLATION or sup < min_support(n),
            "steps": "; ".join(steps)}


