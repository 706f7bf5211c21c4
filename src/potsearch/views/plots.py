"""Figures for the diagnostics (matplotlib, Agg backend, imported lazily).

State names (model or file text) are drawn with ``parse_math=False``: a name such as ``$x^{$`` is
shown as written, never parsed as mathtext. Each ``plot_*`` function takes the dict a ``potsearch.science.diagnostics`` test returned (plus what it needs)
and writes ``<out>/<name>.png`` and ``<out>/<name>.svg``; it returns the PNG path. Nothing here
computes statistics, so the figures always show what diagnostics.json says.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from potsearch.core.textsafe import PLAIN   # state names are drawn as plain text, never as mathtext

INK, ACCENT, GOOD, BAD, MUTED = "#1f2937", "#2563eb", "#059669", "#dc2626", "#9ca3af"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.grid": True, "grid.alpha": 0.25, "font.size": 10, "svg.hashsalt": "potsearch",
                         "axes.titleweight": "bold"})
    return plt


def _save(fig, out: Path, name: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    png = out / f"{name}.png"
    fig.savefig(png)
    fig.savefig(out / f"{name}.svg", metadata={"Date": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return png


def _diag(ax, lo, hi, label="y = x"):
    ax.plot([lo, hi], [lo, hi], color=MUTED, lw=1, ls="--", label=label, zorder=0)


def _empty(ax, text):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=MUTED)


def plot_pairs(pair: dict, out: Path) -> Path:
    """Paper Figs 3/7: V_f - V_g against log(T(f->g)/T(g->f)), error bars sigma, line y = x."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    t = pair["table"]
    x = np.array(t.get("log_ratio", []), float)
    y = np.array([np.nan if v is None else v for v in t.get("dV", [])], float)
    ok = np.isfinite(y)
    if ok.any():
        ax.errorbar(x[ok], y[ok], xerr=np.array(t["sigma"])[ok], fmt="o", ms=4, color=ACCENT, ecolor=MUTED,
                    elinewidth=0.8, alpha=0.85, label=f"{int(ok.sum())} pairs")
        lo, hi = float(min(x[ok].min(), y[ok].min())), float(max(x[ok].max(), y[ok].max()))
        pad = 0.05 * (hi - lo or 1)
        _diag(ax, lo - pad, hi + pad)
        if len(x) <= 12:
            for xi, yi, a, b in zip(x[ok], y[ok], np.array(t["f"])[ok], np.array(t["g"])[ok]):
                ax.annotate(f"{a}–{b}", (xi, yi), xytext=(5, -10), textcoords="offset points", fontsize=8, **PLAIN)
        ax.legend(loc="upper left", frameon=False)
    else:
        _empty(ax, "no pair observed in both directions")
    ax.set_xlabel("log T(f→g) / T(g→f)   (observed)")
    ax.set_ylabel("V(f) − V(g)   (least-action fit)")
    r = pair.get("pearson_r")
    ax.set_title("Pair test" + (f"  (r = {r:.3f})" if r is not None else ""))
    return _save(fig, out, "pairs")


def plot_loops(loop: dict, out: Path) -> Path:
    """Paper Fig 8: sum log T forward against backward for every 3-cycle; equal under detailed balance."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    t = loop.get("triangles") or {}
    fwd, bwd = np.array(t.get("sum_log_T_forward", [])), np.array(t.get("sum_log_T_backward", []))
    if len(fwd):
        z = np.abs(np.array(t["z"]))
        col = np.where(z > 3, BAD, ACCENT)
        ax.errorbar(fwd, bwd, yerr=np.array(t["sigma"]), fmt="none", ecolor=MUTED, elinewidth=0.6, alpha=0.6)
        ax.scatter(fwd, bwd, s=14, c=col, zorder=3, label=f"{len(fwd)} three-cycles")
        lo, hi = float(min(fwd.min(), bwd.min())), float(max(fwd.max(), bwd.max()))
        _diag(ax, lo, hi)
        ax.legend(loc="upper left", frameon=False)
    else:
        _empty(ax, "no three-cycle observed in both directions")
    ax.set_xlabel("Σ log T, forward loop")
    ax.set_ylabel("Σ log T, backward loop")
    p = loop.get("p_value")
    ax.set_title("Loop test" + (f"  (χ² p = {p:.3g})" if p is not None else ""))
    return _save(fig, out, "loops")


def plot_exclusion(ex: dict, out: Path) -> Path:
    """Paper Fig 10: one-way pairs, V_f - V_g against the bound log(N(g) T(f->g)); should lie above y = x.
    Pairs whose exact difference is +inf (between SCCs) are drawn as up-triangles at their lower bound."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    t = ex["table"]
    b = np.array(t.get("bound", []), float)
    d = np.array([np.nan if v is None else v for v in t.get("dV", [])], float)
    inf = np.array(t.get("infinite", []), bool)
    cons = np.array(t.get("consistent", []), bool)
    ok = np.isfinite(d)
    if ok.any():
        for sel, mk, lab in ((ok & ~inf & cons, "o", "consistent"), (ok & ~inf & ~cons, "o", "inconsistent"),
                             (ok & inf, "^", "+∞ in the exact fit (shown at lower bound)")):
            if sel.any():
                ax.scatter(b[sel], d[sel], marker=mk, s=22, label=f"{lab} ({int(sel.sum())})",
                           c=BAD if lab == "inconsistent" else (GOOD if mk == "^" else ACCENT), zorder=3)
        lo, hi = float(min(b[ok].min(), d[ok].min())), float(max(b[ok].max(), d[ok].max()))
        _diag(ax, lo, hi, "bound (Eq 25)")
        if len(b) <= 12:
            for xi, yi, f, g in zip(b[ok], d[ok], np.array(t["f"])[ok], np.array(t["g"])[ok]):
                ax.annotate(f"{f}→{g}", (xi, yi), xytext=(5, -10), textcoords="offset points", fontsize=8,
                            **PLAIN)
        ax.legend(loc="lower right", frameon=True, framealpha=0.9, fontsize=8)
    else:
        _empty(ax, "no one-way pair")
    ax.set_xlabel("log N(g)·T(f→g)   (g→f never seen)")
    ax.set_ylabel("V(f) − V(g)")
    ax.set_title("Exclusion test (Eq 25)")
    return _save(fig, out, "exclusion")


def plot_distribution(dist: dict, out: Path) -> Path:
    """Paper Fig 11: histogram of the potentials of states visited >= 2 times, with the Gaussian fit."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    v = np.array(dist.get("values", []), float)
    if len(v):
        bins = max(5, min(60, int(np.sqrt(len(v)) * 2)))
        ax.hist(v, bins=bins, density=True, color=ACCENT, alpha=0.55, edgecolor="white", label=f"{len(v)} states")
        mu, sd = dist.get("mu"), dist.get("sigma")
        if mu is not None and sd:
            xs = np.linspace(v.min() - sd, v.max() + sd, 300)
            ax.plot(xs, np.exp(-0.5 * ((xs - mu) / sd) ** 2) / (sd * np.sqrt(2 * np.pi)), color=INK, lw=1.6,
                    label=f"N(μ={mu:.2f}, σ={sd:.2f})")
        ax.legend(frameon=False)
    else:
        _empty(ax, "no state with a finite potential")
    ax.set_xlabel("potential V")
    ax.set_ylabel("density")
    ax.set_title("Potential distribution")
    return _save(fig, out, "distribution")


def diagram_layout(names: list[str], V: np.ndarray, visits: np.ndarray, top: int = 12) -> list[int]:
    """The states the transition diagram shows, left to right: highest potential first, so the agent's
    preferred (downhill) direction reads left to right. Every state with a finite potential when there
    are at most ``top``, else the ``top`` most visited. Ties by name."""
    V = np.asarray(V, float)
    idx = np.flatnonzero(np.isfinite(V))
    if len(idx) > top:
        idx = idx[np.lexsort((idx, -np.asarray(visits)[idx]))][:top]
    return sorted(idx.tolist(), key=lambda i: (-V[i], names[i]))


def plot_transitions(names, V, visits, src, dst, n, out: Path, top: int = 12,
                     unbounded: np.ndarray | None = None) -> Path:
    """Table-2-style arc diagram: states on a line by potential (high on the left), one arc per observed
    transition with its count at the apex. Downhill moves (green) arc above the line, uphill moves (red)
    below, so the two directions of a pair never overlap. Unbounded states are marked '≥'."""
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.path import Path as MPath

    plt = _plt()
    order = diagram_layout(names, V, visits, top)
    x = {i: float(r) for r, i in enumerate(order)}
    k = len(order)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.2 * k + 1.5), 3.2 + 0.25 * k))
    ax.grid(False)
    ax.axis("off")
    nmax = max([int(c) for s, d, c in zip(src, dst, n) if int(s) in x and int(d) in x] or [1])
    hmax = 0.0
    for s, d, c in sorted(zip(src, dst, n), key=lambda t: -t[2]):
        s, d = int(s), int(d)
        if s not in x or d not in x:
            continue
        x0, x1 = x[s], x[d]
        down = V[d] < V[s]
        h = (0.35 + 0.32 * abs(x1 - x0)) * (1 if down else -1)
        hmax = max(hmax, abs(h))
        e = 0.2 * np.sign(h)  # start and end on the node boxes' edges, so arrowheads stay visible
        path = MPath([(x0, e), ((x0 + x1) / 2, 2 * h - e), (x1, e)], [MPath.MOVETO, MPath.CURVE3, MPath.CURVE3])
        lw = 0.7 + 2.3 * np.log1p(c) / np.log1p(nmax)
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>,head_length=6,head_width=3.5", lw=lw,
                                     color=GOOD if down else BAD, alpha=0.85, shrinkA=0, shrinkB=0))
        ax.text((x0 + x1) / 2, h, str(int(c)), ha="center", va="center", fontsize=8, color=INK,
                bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.9))
    for i in order:
        ge = "≥ " if unbounded is not None and unbounded[i] else ""
        ax.text(x[i], 0, f"{names[i]}\nV {ge}{V[i]:.2f}", ha="center", va="center", fontsize=9, zorder=5,
                bbox=dict(boxstyle="round,pad=0.35", fc="#eff6ff", ec=ACCENT), **PLAIN)
    ax.set_xlim(-0.7, k - 0.3)
    ax.set_ylim(-hmax - 0.4, hmax + 0.4)
    total = int(np.isfinite(np.asarray(V, float)).sum())
    ax.set_title("Transitions by potential (high → low, left to right)"
                 + ("" if k == total else f", top {k} of {total} states by visits"))
    ax.text(0.5, 0.01, "green: downhill (above)   red: uphill (below)   label: count", transform=ax.transAxes,
            ha="center", fontsize=8, color=MUTED)
    return _save(fig, out, "transitions")


def plot_convergence(history: list, out: Path) -> Path:
    """Fit convergence from fit.json's history: (iteration, action, max |gradient|)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    h = np.array(history, float).reshape(-1, 3) if history else np.zeros((0, 3))
    if len(h):
        ax.semilogy(h[:, 0], np.maximum(h[:, 2], 1e-16), "o-", color=ACCENT, ms=3, label="max |∇S|")
        ax.set_ylabel("max |gradient|")
        ax2 = ax.twinx()
        ax2.plot(h[:, 0], h[:, 1], "s--", color=INK, ms=3, label="action S")
        ax2.set_ylabel("action S")
        ax2.grid(False)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper right", frameon=True, framealpha=0.9)
    else:
        _empty(ax, "no optimiser history")
    ax.set_xlabel("iteration")
    ax.set_title("Fit convergence")
    return _save(fig, out, "convergence")


def plot_majority(m: int, k: int, out: Path, check: dict | None = None) -> Path:
    """Paper Fig 12: T' = I_T(k, m-k+1) against T, with the small-T law C(m,k) T^k (log-log)."""
    from potsearch.science.diagnostics import majority_vote, majority_vote_small_t

    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.6, 4.2))
    T = np.logspace(-4, 0, 200)
    for kk in sorted({1, k, min(m, k + 1)}):
        line, = ax.loglog(T, majority_vote(T, m, kk), lw=1.8, label=f"k = {kk}: I_T(k, m−k+1)")
        ax.loglog(T, np.minimum(majority_vote_small_t(T, m, kk), 1.5), ls=":", color=line.get_color(),
                  label="C(m,k)·T^k")
    ax.set_ylim(1e-10, 2)
    ax.set_xlabel("T (one candidate)")
    ax.set_ylabel("T′ (majority of m candidates)")
    title = f"Majority voting, m = {m}"
    if check and check.get("slope") is not None:
        title += f"  (V′/V slope {check['slope']:.2f} vs k = {k})"
    ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    return _save(fig, out, "majority")


def compare_scatter(label_a: str, label_b: str, states: list[str], va, vb, se_a, se_b, flagged, scale: float,
                    offset: float, scale_ci, max_labels: int = 15) -> bytes:
    """The compare page's figure (PNG bytes): aligned potentials V_A against V_B with bootstrap error bars,
    the fitted line V_A = s·V_B + c, the states that differ after the scale in red and named (the largest
    |residual| first, at most ``max_labels``). Run labels and state names are drawn as plain text."""
    import io

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    va, vb = np.asarray(va, float), np.asarray(vb, float)
    se_a = np.broadcast_to(np.asarray(se_a, float), va.shape)
    se_b = np.broadcast_to(np.asarray(se_b, float), vb.shape)
    flagged = np.asarray(flagged, bool)
    ok = np.isfinite(va) & np.isfinite(vb)
    if ok.any():
        for sel, col, lab in ((ok & ~flagged, ACCENT, f"{int((ok & ~flagged).sum())} aligned states"),
                              (ok & flagged, BAD, f"{int((ok & flagged).sum())} differ after the scale")):
            if sel.any():
                ax.errorbar(vb[sel], va[sel], xerr=np.where(np.isfinite(se_b[sel]), se_b[sel], 0),
                            yerr=np.where(np.isfinite(se_a[sel]), se_a[sel], 0), fmt="o", ms=4, color=col,
                            ecolor=MUTED, elinewidth=0.7, alpha=0.85, label=lab, zorder=3 if col == BAD else 2)
        if np.isfinite(scale):
            xs = np.linspace(vb[ok].min(), vb[ok].max(), 50)
            ci = "" if not all(np.isfinite(scale_ci)) else f" [{scale_ci[0]:.3g}, {scale_ci[1]:.3g}]"
            ax.plot(xs, scale * xs + offset, color=INK, lw=1.4, label=f"fitted scale s = {scale:.3g}{ci}")
        resid = np.abs(va - (scale * vb + offset)) if np.isfinite(scale) else np.zeros_like(va)
        named = [i for i in np.argsort(-np.nan_to_num(resid)) if flagged[i] and ok[i]][:max_labels]
        for i in named:
            ax.annotate(str(states[i])[:40], (vb[i], va[i]), xytext=(5, 4), textcoords="offset points", fontsize=8,
                        color=BAD, **PLAIN)
        leg = ax.legend(loc="upper left", frameon=True, framealpha=0.9, fontsize=8)
        for t in leg.get_texts():
            t.set_parse_math(False)
    else:
        _empty(ax, "no aligned state")
    ax.set_xlabel(f"V {label_b}   (centred on the aligned states)", **PLAIN)
    ax.set_ylabel(f"V {label_a}", **PLAIN)
    ax.set_title(f"{label_a} against {label_b}", **PLAIN)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
