#!/usr/bin/env bash
# The generation campaign: one passage per level 3/2/1/0 for
#   (a) the 809 SciFact training claims   -> data/synthetic/scifact-train-qwen15b/
#   (b) MS MARCO dev-small queries        -> data/synthetic/msmarco-dev-qwen15b/   (first $MSMARCO_TARGET)
# with the best offline model of the prompt study. Idempotent and resumable: run it again (in any
# later session) and it fetches the model (sha256-verified), rebuilds each SQLite store from the
# committed generations.jsonl when the store is missing, generates only what is missing or failed,
# and re-exports. Work advances in rounds (+STEP queries per set); the export is rewritten every
# 5 minutes while generating and at the end of each round, so a session that ends (and kills the
# campaign) loses at most ~5 minutes of work once the export is committed.
#
#   usage: scripts/campaign.sh            # foreground
#          nohup scripts/campaign.sh >> data/synthetic/campaign.log 2>&1 &
# Environment: PYTHON (default: python3 on PATH), SHARED (default ../shared), MODEL, PROMPT,
# THREADS (llama.cpp threads, default 1: leaves a core for other work), MSMARCO_TARGET (1000),
# SCIFACT_TARGET (809), STEP_SCIFACT (20), STEP_MSMARCO (30), FIDELITY_EVERY (1).
# A second core: a second generator on a later slice of the same store (docs/generate.md, campaign).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
SHARED=${SHARED:-../shared}
MODEL=${MODEL:-qwen-coder-1.5b}
PROMPT=${PROMPT:-per-level-example}
THREADS=${THREADS:-1}
SCIFACT_TARGET=${SCIFACT_TARGET:-809}
MSMARCO_TARGET=${MSMARCO_TARGET:-1000}
STEP_SCIFACT=${STEP_SCIFACT:-20}
STEP_MSMARCO=${STEP_MSMARCO:-30}
FIDELITY_EVERY=${FIDELITY_EVERY:-1}  # rounds between diagnose runs (~1 min of CPU each)
OUT=data/synthetic
mkdir -p "$OUT"

exec 9>"$OUT/.campaign.lock"
if ! flock -n 9; then echo "$(date -Is) another campaign is running; exiting"; exit 0; fi
echo $$ > "$OUT/campaign.pid"

log() { echo "$(date -Is) $*"; }
gen() {  # gen NAME QUERIES LIMIT
  local name=$1 queries=$2 limit=$3 dir=$OUT/$1
  mkdir -p "$dir"
  local seed=()  # rebuild a missing store from the committed export; a new set has none yet
  [[ -f $dir/generations.jsonl ]] && seed=(--seed-from "$dir")
  "$PYTHON" -m synthrank.cli generate --queries "$queries" --store "$dir/store.sqlite" ${seed[@]+"${seed[@]}"} \
    --model "$MODEL" --prompt "$PROMPT" --threads "$THREADS" --n-parallel 2 --concurrency 2 \
    --limit "$limit" --no-progress --export "$dir" --export-every 300
}
fidelity() {  # fidelity NAME QUERIES: judge the set, then re-export so the card carries the figures
  local dir=$OUT/$1
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 "$PYTHON" -m synthrank.cli generate diagnose --export "$dir" --queries "$2" > /dev/null
  "$PYTHON" -m synthrank.cli generate export --store "$dir/store.sqlite" --queries "$2" --out "$dir" > /dev/null
}

SCIFACT_Q=$SHARED/data/scifact/queries_train.jsonl
MSMARCO_Q=$SHARED/data/msmarco-dev-small-nocorpus/queries.jsonl
for f in "$SCIFACT_Q" "$MSMARCO_Q"; do [[ -f $f ]] || { log "missing $f (set SHARED)"; exit 2; }; done

log "campaign start: model $MODEL prompt $PROMPT threads $THREADS"
"$PYTHON" -m synthrank.cli generate models --fetch "$MODEL"
held() {  # held NAME: how many queries the committed export already holds (rounds start there)
  local f=$OUT/$1/generations.jsonl
  [[ -f $f ]] || { echo 0; return; }
  "$PYTHON" -c 'import json,sys; print(len({json.loads(l)["query_id"] for l in open(sys.argv[1]) if l.strip()}))' "$f"
}
s=$(held scifact-train-qwen15b); m=$(held msmarco-dev-qwen15b); round=0
log "already held: scifact $s, msmarco $m"
while (( s < SCIFACT_TARGET || m < MSMARCO_TARGET )); do
  s=$(( s + STEP_SCIFACT > SCIFACT_TARGET ? SCIFACT_TARGET : s + STEP_SCIFACT ))
  m=$(( m + STEP_MSMARCO > MSMARCO_TARGET ? MSMARCO_TARGET : m + STEP_MSMARCO ))
  round=$(( round + 1 ))
  log "round $round: scifact up to $s, msmarco up to $m"
  gen scifact-train-qwen15b "$SCIFACT_Q" "$s" || { log "scifact round failed; retrying later"; sleep 30; }
  gen msmarco-dev-qwen15b "$MSMARCO_Q" "$m" || { log "msmarco round failed; retrying later"; sleep 30; }
  if (( round % FIDELITY_EVERY == 0 )); then
    fidelity scifact-train-qwen15b "$SCIFACT_Q"
    fidelity msmarco-dev-qwen15b "$MSMARCO_Q"
    log "round $round: fidelity updated"
  fi
done
fidelity scifact-train-qwen15b "$SCIFACT_Q"
fidelity msmarco-dev-qwen15b "$MSMARCO_Q"
log "campaign complete"
