#!/usr/bin/env bash
# The README's first command on a fresh clone, fresh venv, empty HOME (no pip/HF/model/embedding
# caches), no ../shared next to the clone. Stop other CPU work first for a fair wall time.
set -uo pipefail
T=/tmp/fresh; rm -rf $T; mkdir -p $T/home
export HOME=$T/home XDG_CACHE_HOME=$T/home/.cache
unset SYNTHRANK_CACHE SYNTHRANK_MODEL_CACHE
git clone -q "$(cd "$(dirname "$0")/.." && pwd)" $T/synthrank && cd $T/synthrank
ls ../shared 2>/dev/null && echo "UNEXPECTED ../shared" 
command=$(awk '/^## Setup on a fresh machine/{f=1} f && /^```$/{getline; print; exit}' README.md)
echo "\$ $command"
start=$(date +%s)
bash -c "$command"
echo "exit $?; README first command (install + quickstart) wall time: $(( $(date +%s) - start )) s"
