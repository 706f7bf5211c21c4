#!/usr/bin/env bash
# The main job on embedded defaults: local Ray, SQLite, the offline SmolLM2 model (constrained word agent).
# collect -> fit -> diagnose -> evolve -> polish -> attribute -> report -> show.
# Re-running continues the same run (collect and evolve resume; the other stages are recomputed).
set -euo pipefail
PY="${PY:-.venv/bin/python}"
RUN="${RUN:-runs/demo}"
SAMPLES="${SAMPLES:-600}"
ROUNDS="${ROUNDS:-300}"
P="$PY -m potsearch"
resume=""
[ -f "$RUN/store.sqlite" ] && resume="--resume"
# each stage's printed output is kept in $RUN/outputs/STAGE.txt (scripts/readme_outputs.py copies
# it into the README)
OUT="$RUN/outputs"
keep() { mkdir -p "$OUT"; tee "$OUT/$1.txt"; }
echo "== collect: SmolLM2 (local, constrained word agent), $SAMPLES samples"
$P collect --agent word --provider local --mode constrained --run "$RUN" --max-samples "$SAMPLES" --seed 0 $resume | keep collect
echo "== fit"
$P fit "$RUN" | keep fit
echo "== diagnose"
$P diagnose "$RUN" | keep diagnose
echo "== evolve"
$P evolve --run "$RUN" --config search_configs/demo.yaml --rounds "$ROUNDS" --islands 4 --seed 0 --resume | keep evolve
echo "== polish"
$P polish --run "$RUN" | keep polish
echo "== attribute"
$P attribute --run "$RUN" | keep attribute
echo "== report"
$P report "$RUN" | keep report
echo "== best potential"
$P show "$RUN" | keep show
echo
echo "report: $RUN/report.html"
