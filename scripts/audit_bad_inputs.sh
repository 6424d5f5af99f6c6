#!/usr/bin/env bash
# Bad-input audit: runs synthrank on broken inputs and prints, per case, the exit code and the last
# line of output. Goal: every case exits 2 (or 1 for a command that ran and found a problem) with a
# one-line message; "TRACEBACK" marks a case that printed a Python traceback.
#   usage: scripts/audit_bad_inputs.sh [WORKDIR]    (needs synthrank on PATH; no network, no ../shared)
set -u
W=${1:-$(mktemp -d)}
mkdir -p "$W"; cd "$W" || exit 1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 SYNTHRANK_CACHE="$W/cache"
n=0
probe() {  # probe NAME -- command...
  local name=$1; shift; shift
  n=$((n + 1))
  local out rc
  out=$(timeout 300 "$@" 2>&1); rc=$?
  local tb=""; grep -q "Traceback" <<<"$out" && tb=" TRACEBACK"
  printf '%2d | %-34s | rc=%-3s%s | %s\n' "$n" "$name" "$rc" "$tb" "$(grep -v '^\s*$' <<<"$out" | grep -v WARNING | tail -1 | cut -c1-170)"
}
# --- fixtures -------------------------------------------------------------------------------
mk() { mkdir -p "$1/qrels"; printf '%s\n' '{"_id": "d1", "title": "t", "text": "alpha beta"}' '{"_id": "d2", "title": "", "text": "gamma"}' > "$1/corpus.jsonl"
       printf '%s\n' '{"_id": "q1", "text": "alpha"}' > "$1/queries.jsonl"; printf 'query-id\tcorpus-id\tscore\nq1\td1\t1\n' > "$1/qrels/test.tsv"; }
mk ok
mk hdr; printf 'query-id\tcorpus-id\tscore\n' > hdr/qrels/test.tsv
mk dangling; rm dangling/corpus.jsonl; ln -s /nonexistent/corpus.jsonl dangling/corpus.jsonl
mk huge; printf 'query-id\tcorpus-id\tscore\nq1\td1\t2147483648\n' > huge/qrels/test.tsv
mk nested; python3 -c "print('{\"_id\": \"d3\", \"title\": \"t\", \"text\": ' + '['*100000 + ']'*100000 + '}')" >> nested/corpus.jsonl
mk badjson; echo '{"_id": "d9", "text": ' >> badjson/corpus.jsonl
mk dupdoc; echo '{"_id": "d1", "title": "t", "text": "again"}' >> dupdoc/corpus.jsonl
mk neg; printf 'query-id\tcorpus-id\tscore\nq1\td1\t-1\n' > neg/qrels/test.tsv
mk emptytext; echo '{"_id": "d4", "title": "only a title", "text": ""}' >> emptytext/corpus.jsonl
mk binary; head -c 300 /dev/urandom > binary/corpus.jsonl
mk nocorpus; rm nocorpus/corpus.jsonl
mk dirascorpus; rm dirascorpus/corpus.jsonl; mkdir dirascorpus/corpus.jsonl
printf 'id\ttext\nq1\thello there\n' > header.tsv
printf 'q1\thello\nq1\tagain\n' > dup.tsv
printf 'q1 hello\n' > nocols.tsv
: > empty.jsonl
echo 'not yaml: [' > bad.yaml
printf 'base_model: x\nsources: []\n  bad indent: 1\n' > badindent.yaml
printf 'output_dir: o\nsources: [{name: s, data: ok}]\ncontext: {group_size: 4}\nloss: {name: nosuchloss}\n' > badloss.yaml
printf 'name: ../../escape\ntrain: {sources: [{name: s, data: ok}], context: {group_size: 4}}\n' > escape.yaml
printf 'name: r\ngenerate: {queries: header.tsv}\ntrain: {sources: [{name: s, data: "@generate"}], context: {group_size: 4}, loss: {name: nosuch}}\n' > runbadloss.yaml
echo "just a file" > afile
mkdir -p notamodel; echo '{}' > notamodel/config.json
printf 'not sqlite at all' > foreign.sqlite
python3 -c "import sqlite3; c=sqlite3.connect('other.sqlite'); c.execute('create table t(x)'); c.commit()"
mkdir -p refexp; echo '{"source": "/etc/passwd", "ids": ["root"]}' > refexp/queries.ref.json
# --- cases ----------------------------------------------------------------------------------
probe "validate header-only qrels" -- synthrank data validate hdr
probe "evaluate header-only qrels" -- synthrank evaluate -m bm25 -d hdr -q
probe "validate dangling corpus symlink" -- synthrank data validate dangling
probe "evaluate dangling symlink" -- synthrank evaluate -m bm25 -d dangling -q
probe "evaluate label 2^31" -- synthrank evaluate -m bm25 -d huge -q
probe "validate deeply nested JSON" -- synthrank data validate nested
probe "validate truncated JSON line" -- synthrank data validate badjson
probe "validate duplicate doc id" -- synthrank data validate dupdoc
probe "validate negative label" -- synthrank data validate neg
probe "validate title-only document" -- synthrank data validate emptytext
probe "validate binary corpus" -- synthrank data validate binary
probe "validate no corpus" -- synthrank data validate nocorpus
probe "validate corpus is a folder" -- synthrank data validate dirascorpus
probe "validate not a folder" -- synthrank data validate afile
probe "stats missing folder" -- synthrank data stats nosuch
probe "evaluate ndcg@0" -- synthrank evaluate -m bm25 -d ok --metrics ndcg@0 -q
probe "evaluate unknown metric" -- synthrank evaluate -m bm25 -d ok --metrics foo@3 -q
probe "evaluate batch-size 0" -- synthrank evaluate -d ok --batch-size 0 -q
probe "evaluate top-k 0" -- synthrank evaluate -m bm25 -d ok --top-k 0 -q
probe "evaluate unknown split" -- synthrank evaluate -m bm25 -d ok --split dev -q
probe "evaluate unknown hub id" -- synthrank evaluate -m no-such-org/no-such-model -d ok -q
probe "evaluate non-model folder" -- synthrank evaluate -m notamodel -d ok -q
probe "evaluate --out is a file" -- synthrank evaluate -m bm25 -d ok -o afile -q
probe "evaluate bad index" -- synthrank evaluate -d ok --index nope -q
probe "evaluate bad precision" -- synthrank evaluate -d ok --precision fp8 -q
probe "evaluate bad similarity" -- synthrank evaluate -d ok --similarity manhattan -q
probe "evaluate bad relevance level" -- synthrank evaluate -m bm25 -d ok -l -3 -q
probe "generate TSV with header" -- synthrank generate --queries header.tsv --store g.sqlite --backend openai --model m --base-url http://127.0.0.1:9/v1 --max-retries 0 --limit 1 --no-progress
probe "generate duplicate TSV ids" -- synthrank generate --queries dup.tsv --store g2.sqlite
probe "generate TSV one column" -- synthrank generate --queries nocols.tsv --store g2.sqlite
probe "generate empty queries" -- synthrank generate --queries empty.jsonl --store g3.sqlite
probe "generate foreign sqlite" -- synthrank generate --queries header.tsv --store foreign.sqlite
probe "generate other app's sqlite" -- synthrank generate --queries header.tsv --store other.sqlite
probe "generate store is a folder" -- synthrank generate --queries header.tsv --store ok
probe "generate --seed-from no export" -- synthrank generate --queries header.tsv --store g4.sqlite --seed-from ok
probe "generate levels 9" -- synthrank generate --queries header.tsv --store g5.sqlite --levels 9
probe "generate per-level 0" -- synthrank generate --queries header.tsv --store g5.sqlite --per-level 0
probe "generate unknown backend" -- synthrank generate --queries header.tsv --store g5.sqlite --backend nope
probe "generate unknown model" -- synthrank generate --queries header.tsv --store g5.sqlite --model no-such-model
probe "generate prompt file missing" -- synthrank generate --queries header.tsv --store g5.sqlite --prompt nofile.txt
probe "generate status foreign store" -- synthrank generate status --store foreign.sqlite
probe "generate export ref escape" -- synthrank generate diagnose --export refexp --queries refexp
probe "train bad YAML" -- synthrank train bad.yaml
probe "train YAML bad indent" -- synthrank train badindent.yaml
probe "train unknown loss" -- synthrank train badloss.yaml
probe "train --set YAML error" -- synthrank train badloss.yaml --set 'loss={'
probe "train --set no equals" -- synthrank train badloss.yaml --set loss
probe "train missing config" -- synthrank train nosuch.yaml
probe "run name escapes runs/" -- synthrank run escape.yaml
probe "run unknown loss (validated first)" -- synthrank run runbadloss.yaml
probe "run unknown stage" -- synthrank run runbadloss.yaml --stages nope
probe "mine bad rank range" -- synthrank mine --queries ok --split test -o neg.tsv --rank-range 5:2
probe "mine count 0" -- synthrank mine --queries ok --split test -o neg.tsv --count 0
probe "mine -o is a folder" -- synthrank mine --queries ok --split test -o ok
probe "compare missing file" -- synthrank compare nosuch.json
probe "compare not json" -- synthrank compare afile
probe "grid missing" -- synthrank grid nosuch.yaml
echo "cases: $n  (workdir $W)"
