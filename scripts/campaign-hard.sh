#!/usr/bin/env bash
# Issue 18: the hard-level SciFact campaign (prompt per-level-hard: every level on the claim's subject,
# level 0 a near miss, written as "abstracts of biomedical research papers"), resumable.
# Run it from a git worktree at a fixed commit so that edits never change a running job:
#   git worktree add ../campaign HEAD && cd ../campaign && nohup scripts/campaign-hard.sh > /tmp/campaign-hard.log 2>&1 &
# It seeds the store from the committed set in the main checkout (MAIN, default ../main) when it exists,
# generates only what is missing for the first LIMIT claims (default 400), and exports every 5 minutes
# to data/synthetic/scifact-train-qwen15b-hard in this worktree (copy it to the main checkout to commit).
# Environment: PYTHON (default python3), MAIN, LIMIT, THREADS (llama.cpp threads, default 1).
# The MS MARCO set (the general recipe's queries): SET=msmarco (session 17); OFFSET=N plus EXPORT=0 run a second
# process on a disjoint slice of the same store (docs/generate.md), exported by the first.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MAIN=${MAIN:-../main}
case ${SET:-scifact} in scifact|msmarco) ;; *) echo "campaign-hard.sh: SET must be scifact or msmarco, not '$SET'" >&2; exit 2;; esac
if [[ ${SET:-scifact} == msmarco ]]; then
  set=data/synthetic/msmarco-dev-qwen15b-hard
  source=(--queries ../shared/data/msmarco-dev-small-nocorpus/queries.jsonl --collection "passages of web pages")
else
  set=data/synthetic/scifact-train-qwen15b-hard
  source=(--queries ../shared/data/scifact --split train --collection "abstracts of biomedical research papers")
fi
export_args=(--export "$set" --export-every 300); [[ ${EXPORT:-1} == 0 ]] && export_args=()
mkdir -p "$set"
seed=(); [[ -f $MAIN/$set/generations.jsonl && ! -f $set/store.sqlite ]] && seed=(--seed-from "$MAIN/$set")
export PYTHONPATH=$PWD/src OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
"$PYTHON" -m synthrank.cli generate "${source[@]}" --store "$set/store.sqlite" ${seed[@]+"${seed[@]}"} \
  --model qwen-coder-1.5b --prompt per-level-hard \
  --threads "${THREADS:-1}" --n-parallel 2 --concurrency 2 --max-tokens 220 --offset "${OFFSET:-0}" --limit "${LIMIT:-400}" \
  ${export_args[@]+"${export_args[@]}"} --no-progress
