"""`potsearch status RUN`: which stages are done, with their key numbers."""
from __future__ import annotations

import datetime
import json

from potsearch.cli.runarg import add_run
from potsearch.store import RunStore
from potsearch.core.textsafe import printable

STAGES = ["collect", "import", "fit", "diagnose", "evolve", "polish", "attribute", "report"]
#: flags that only change what is printed (tests/test_cli_api_parity.py); ``ps.status`` returns the --json dict
PRINTING = ("json",)


def add_arguments(p):
    add_run(p, "run directory")
    p.add_argument("--json", action="store_true")


def run(args) -> int:
    store = RunStore.open(args.run, readonly=True)
    results = store.stage_results()
    created = store.stage_times()
    info = store.run_info()
    n = store.n_samples()
    if args.json:
        print(json.dumps({"run": info, "samples": n, "stages": results}, indent=1, default=str))
        return 0
    print(printable(f"run {info['name']} ({info['kind']}): {n} samples in {store.path}"))
    for st in STAGES + sorted(set(results) - set(STAGES)):
        r = results.get(st)
        if r is None:
            print(printable(f"  {st:<10} -", keep=""))
            continue
        at = r.pop("at", None) or created.get(st)
        when = datetime.datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M") if at else ""
        keys = ", ".join(f"{k}={_short(v)}" for k, v in r.items())
        print(printable(f"  {st:<10} done {when}  {keys}", keep=""))   # a stage's law, a file name: escaped
    return 0


def _short(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, dict)):
        return "…"
    return str(v)
