#!/usr/bin/env bash
# Regenerate every number of docs/results.md from the committed configs and synthetic data.
# Each grid cell is an ordinary `synthrank run` folder under runs/grids/: a killed run resumes
# where it stopped and finished cells are skipped, so running this again is cheap.
#
#   usage: scripts/results.sh [GRID ...]      # default: every grid below, in this order
#
# CPU time on 2 cores (measured, see each grid's wall-time table in docs/results.md):
#   scifact-static ~30 min, general-static ~20 min, sweep-static-dev ~5 min, scifact-minilm ~9 h,
#   sweep-minilm-dev ~65 min, general-minilm ~80 min per seed.
# Needs ../shared/data (or SHARED pointing at it) and the generators' passages in data/synthetic/.
set -euo pipefail
cd "$(dirname "$0")/.."
SYNTHRANK=${SYNTHRANK:-synthrank}
GRIDS=("$@")
(( ${#GRIDS[@]} )) || GRIDS=(scifact-static general-static sweep-static-dev scifact-minilm sweep-minilm-dev general-minilm)
[[ -f models/minilm-static-256/config_sentence_transformers.json || -f models/minilm-static-256/modules.json ]] \
  || "$SYNTHRANK" distill -o models/minilm-static-256
status=0
for grid in "${GRIDS[@]}"; do
  echo "$(date -Is) grid $grid"
  "$SYNTHRANK" grid "configs/grids/$grid.yaml" --report docs/results.md --quiet || status=1
done
exit $status
