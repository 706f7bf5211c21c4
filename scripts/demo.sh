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
echo "== collect: SmolLM2 (local, constrained word agent), $SAMPLES samples"
$P collect --agent word --provider local --mode constrained --run "$RUN" --max-samples "$SAMPLES" --seed 0 $resume
echo "== fit"
$P fit "$RUN"
echo "== diagnose"
$P diagnose "$RUN"
echo "== evolve"
$P evolve --run "$RUN" --rounds "$ROUNDS" --islands 4 --seed 0 --resume
echo "== polish"
$P polish --run "$RUN"
echo "== attribute"
$P attribute --run "$RUN"
echo "== report"
$P report "$RUN"
echo "== best potential"
$P show "$RUN"
echo
echo "report: $RUN/report.html"
