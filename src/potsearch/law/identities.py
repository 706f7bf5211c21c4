"""Exact identities among a data set's features, found numerically (nothing hard-coded): linear
relations (the centred feature table's null space) and power relations between two positive
features (a = C * b**k). The simplifier rewrites a law on fewer features with them
(potsearch.law.simplify)."""
from __future__ import annotations

import itertools
import math

import numpy as np


def feature_identities(features: dict, tol: float = 1e-9) -> list[dict[str, float]]:
    """Exact linear relations among the (non-constant) features, up to a constant: null-space vectors
    of the centred, scaled feature table (SVD), as {feature: coefficient} with small entries cleared."""
    names = [k for k, v in features.items() if np.ptp(v) > 0]
    if len(names) < 2:
        return []
    F = np.column_stack([features[k] for k in names]).astype(float)
    F = F - F.mean(axis=0)
    sc = F.std(axis=0)
    F = F / sc
    _, s, vt = np.linalg.svd(F, full_matrices=False)
    null = vt[s < tol * s.max()]
    out = []
    for v in null:
        v = v / sc
        v = v / np.abs(v).max()
        out.append({n: float(c) for n, c in zip(names, v) if abs(c) > 1e-8})
    return out


_POWERS = (1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0)


def power_identities(features: dict, tol: float = 1e-9) -> list[tuple[str, float, str, float]]:
    """Exact power relations between two positive, non-constant features of the data, a = C * b**k
    with k in ``_POWERS`` (log a against log b: a straight line with residual < ``tol``), as
    (a, C, b, k). On the word agent's shipped words (letter values summing to 100) mean_letter =
    100 / length is one; nothing is hard-coded."""
    logs = {k: np.log(v.astype(float)) for k, v in features.items()
            if np.ptp(v) > 0 and np.all(np.isfinite(v)) and float(np.min(v)) > 0}
    out = []
    for a, b in itertools.permutations(sorted(logs), 2):
        la, lb = logs[a], logs[b]
        k, c = np.polyfit(lb, la, 1)
        kk = min(_POWERS, key=lambda q: abs(q - k))
        if abs(kk - k) > 1e-6:
            continue
        c = float(np.mean(la - kk * lb))
        if float(np.max(np.abs(la - kk * lb - c))) < tol * max(1.0, float(np.max(np.abs(la)))):
            out.append((a, float(f"{math.exp(c):.12g}"), b, kk))
    return out


def identity_closure(feats: set[str], identities: list[dict]) -> set[str]:
    out = set(feats)
    changed = True
    while changed:
        changed = False
        for ident in identities:
            if out & set(ident) and not set(ident) <= out:
                out |= set(ident)
                changed = True
    return out
