#!/usr/bin/env bash
# synthrank run of a paper configuration, SIGKILLed in the middle of training, then resumed.
cd "$(dirname "$0")/.."
CMD=(synthrank run configs/scifact-synthetic-multilevel.yaml --set run_dir=runs/demo-kill-resume
     --set generate.limit=60 --set train.training.epochs=4 --set train.training.save_steps=1)
echo "\$ ${CMD[*]}"
mkdir -p runs/demo-kill-resume-logs
start=$(date +%s)
"${CMD[@]}" > runs/demo-kill-resume-logs/first.log 2>&1 &
pid=$!
until ls runs/demo-kill-resume/train/checkpoints/checkpoint-2/trainer_state.json >/dev/null 2>&1 || ! kill -0 $pid 2>/dev/null; do sleep 2; done
kill -9 $pid; wait $pid; echo "first attempt: SIGKILL after checkpoint-2 (exit $?), $(( $(date +%s) - start )) s"
grep -E '^\[' runs/demo-kill-resume-logs/first.log
echo "--- manifest after the kill:"; python3 -c "import json; m=json.load(open('runs/demo-kill-resume/train/manifest.json')); print({k: m[k] for k in ('status','attempts','started')})"
echo "\$ ${CMD[*]}   # again"
"${CMD[@]}" > runs/demo-kill-resume-logs/second.log 2>&1; echo "second attempt exit $?, total $(( $(date +%s) - start )) s"
grep -E '^\[|^(generate|train|evaluate|report):' runs/demo-kill-resume-logs/second.log
python3 -c "import json; m=json.load(open('runs/demo-kill-resume/train/manifest.json')); print({k: m[k] for k in ('status','attempts')}, m['summary']['resumed_from'], m['summary']['steps'])"
