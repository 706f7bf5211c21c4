"""`potsearch compare RUN_A RUN_B [RUN_C ...]`: do fitted runs of one agent share a potential, at what
scale, where do they differ, does one's law explain the other? The stage (potsearch.stages.compare)
computes; this module parses and prints."""
from __future__ import annotations

import json
import math
import sys


from potsearch.stages.compare import CompareOptions

_D = CompareOptions()
#: flags that only change what is printed (tests/test_cli_api_parity.py)
PRINTING = ("json",)


def add_arguments(p):
    p.add_argument("runs", nargs="+", metavar="RUN", help="two or more fitted run directories of one agent")
    p.add_argument("--bootstrap", type=int, default=_D.bootstrap, metavar="B",
                   help=f"bootstrap replicates per run for the intervals and z-scores (default {_D.bootstrap})")
    p.add_argument("--seed", type=int, default=_D.seed, help="seed of the bootstrap")
    p.add_argument("--alpha", type=float, default=_D.alpha, help="level of the intervals and corrected tests")
    p.add_argument("--correction", choices=["holm", "bh"], default=_D.correction,
                   help="multiple-testing correction: Holm (family-wise error, default) or Benjamini-Hochberg "
                        "(bh, false discovery rate)")
    p.add_argument("--force", action="store_true", default=_D.force,
                   help="compare runs of different agents or escape conventions (with a warning)")
    p.add_argument("--no-transfer", dest="transfer", action="store_false", default=_D.transfer,
                   help="skip law transfer (refitting the selected laws)")
    p.add_argument("--transfer-bootstrap", type=int, default=_D.transfer_bootstrap, metavar="B",
                   help=f"replicates for the transferred gaps' standard errors (default {_D.transfer_bootstrap})")
    p.add_argument("--html", default=_D.html, metavar="OUT.html",
                   help="also write the compare page there: one self-contained HTML file with the scatter of aligned "
                        "potentials, the differing states, the SCC and homogeneity summaries, the verdicts side by "
                        "side and the law-transfer table")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")


def _f(x, nd=3) -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{nd}f}"


def _ci(v) -> str:
    return f"[{_f(v[0])}, {_f(v[1])}]"


def run(args) -> int:
    from potsearch.core.textsafe import printable
    from potsearch.stages.compare import run as _run

    res = _run(args.runs, CompareOptions(bootstrap=args.bootstrap, seed=args.seed, alpha=args.alpha,
                                         correction=args.correction, force=args.force, transfer=args.transfer,
                                         transfer_bootstrap=args.transfer_bootstrap, html=args.html))
    if args.json:
        json.dump(res.to_json(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    out = []
    for w in res.warnings:
        out.append(f"warning: {w}" if "needs" not in w else f"note: {w}")
    out.append("runs:")
    for r in res.runs.to_dict("records"):
        out.append(f"  {r['run']}: agent {r['agent']}, escapes {r['escapes']}, {r['states']} fitted states, "
                   f"S_min {_f(r['s_min'], 6)}, {r['samples']} samples, escape rate {_f(r['escape_rate'])}, "
                   f"detailed balance {r['detailed_balance'] or 'not diagnosed'}"
                   + (f", law {r['law']}" if r.get("law") else ""))
    level = f"{100 * (1 - args.alpha):g}%"
    for p in res.pairs.values():
        s = p.summary
        out.append(f"{p.a} vs {p.b}:")
        out.append(f"  states: {s['shared']} shared, {s['only_a']} only in {p.a}, {s['only_b']} only in {p.b}; "
                   f"{s['scc_match']} shared states whose SCCs line up; {s['aligned']} aligned "
                   f"(one SCC in both)")
        if "note" in s:
            out.append(f"  {s['note']}")
        else:
            out.append(f"  scale: V_{p.a} = {_f(s['scale'])} x V_{p.b} + c, {level} interval {_ci(s['scale_ci'])}")
            out.append(f"  rank agreement: Spearman {_f(s['spearman'])} {_ci(s['spearman_ci'])}, "
                       f"Kendall {_f(s['kendall'])} {_ci(s['kendall_ci'])} ({s.get('replicates_used', 0)} replicates)")
            flagged = p.aligned[p.aligned["flagged"]].sort_values("q")
            out.append(f"  states that differ after the scale ({s['correction']}, q < {args.alpha:g}): {len(flagged)}")
            for r in flagged.head(15).to_dict("records"):
                out.append(f"    {r['state']}: residual {_f(r['residual'])} (z {_f(r['z'], 2)}, q {r['q']:.2g}), "
                           f"{r['prefers']} prefers it more")
        h = s["homogeneity"]
        out.append(f"  transition rows: {h['states_tested']} shared sources tested, chi2 {_f(h['chi2'], 1)} on "
                   f"{h['df']} df (p {_f(h['p'], 4)}), {h['states_differing']} differ (q < {args.alpha:g})")
    if len(res.transfer):
        out.append("law transfer (gap to S_min after refitting the parameters, +- bootstrap SE):")
        for r in res.transfer.to_dict("records"):
            out.append(f"  law of {r['law_of']} on {r['on']}: {_f(r['gap'], 5)} +- {_f(r['gap_se'], 5)}; "
                       f"{r['on']}'s own law: {_f(r['native_gap'], 5)} +- {_f(r['native_gap_se'], 5)}")
    if res.html is not None:
        out.append(f"wrote {res.html} ({res.html.stat().st_size / 1024:.0f} KB, self-contained)")
    print(printable("\n".join(out)))
    return 0
