"""configs/paper/: the SyCL paper's four configurations, trained a few steps on a fixture written in
the SyCL release's layout (MS MARCO in the BEIR layout, one folder per generator, the BM25 top-1000
file as grouped JSONL whose score is a rank), with a tiny BERT in place of Contriever."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
from training_fixtures import one_intra_op_thread, write_tiny_bert_model  # noqa: E402,F401

from synthrank.run import load_run_config, run_pipeline  # noqa: E402
from synthrank.run.stages.train import train_config  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PAPER = sorted((REPO / "configs" / "paper").glob("*.yaml"))
WORDS = ["cats", "dogs", "fish", "birds", "trees", "rivers", "stars", "clouds"]


def write_release_fixture(root: Path) -> Path:
    """``root/msmarco`` (BEIR layout) and ``root/sycl`` (``llama33_70b/``, ``real_data/bm25_top_docs/``)."""
    marco, synthetic, bm25 = root / "msmarco", root / "sycl" / "llama33_70b", root / "sycl" / "real_data" / "bm25_top_docs"
    for folder in (marco / "qrels", synthetic / "qrels", bm25):
        folder.mkdir(parents=True, exist_ok=True)
    queries = [{"_id": f"q{i}", "text": f"what about {w}"} for i, w in enumerate(WORDS)]
    docs = [{"_id": f"m{i}-{j}", "title": "", "text": f"{w} text number {j}"} for i, w in enumerate(WORDS) for j in range(6)]
    (marco / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (marco / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (marco / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\tm{i}-0\t1\n" for i in range(len(WORDS))))
    (bm25 / "train_qrels.jsonl").write_text("".join(json.dumps({"qid": f"q{i}", "docid": [f"m{i}-{j}" for j in range(1, 6)],
                                                                "score": list(range(1, 6))}) + "\n" for i in range(len(WORDS))))
    passages = [{"_id": f"s{i}-{level}", "title": "", "text": f"{'a' * level} passage about {w}"}
                for i, w in enumerate(WORDS) for level in range(4)]
    (synthetic / "corpus.jsonl").write_text("".join(json.dumps(p) + "\n" for p in passages))
    (synthetic / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"q{i}\ts{i}-{level}\t{level}\n" for i in range(len(WORDS)) for level in range(4)))
    return root


def test_the_four_paper_configurations_exist() -> None:
    assert [p.stem for p in PAPER] == ["real-binary", "synthetic-binary", "synthetic-multilevel", "synthetic-real"]


@pytest.mark.parametrize("path", PAPER, ids=lambda p: p.stem)
def test_paper_configuration_trains_on_the_release_layout(path: Path, tmp_path: Path, monkeypatch, one_intra_op_thread) -> None:  # noqa: F811
    root = write_release_fixture(tmp_path / "data")
    model = write_tiny_bert_model(tmp_path / "tiny-bert")
    monkeypatch.setenv("SYNTHRANK_DATA", str(root))
    monkeypatch.chdir(tmp_path)
    overrides = [f"train.base_model={json.dumps(str(model))}", "train.training.max_steps=2", "train.training.batch_size=4",
                 "train.loss.mini_batch_size=2", "train.training.bf16=false", "train.training.max_seq_length=32",
                 f"run_dir={json.dumps(str(tmp_path / 'run'))}", "evaluate.suites=[]", "evaluate.datasets=[{data: embedded}]"]  # no download
    config, base_dir = load_run_config(path, overrides)
    paper = load_run_config(path)[0].train  # the paper's own settings, as committed
    assert (paper.base_model, paper.training.batch_size, paper.training.learning_rate, paper.loss.similarity,
            paper.loss.cached, paper.training.epochs) == ("facebook/contriever", 256, 1e-5, "dot", True, 1)
    assert load_run_config(path)[0].evaluate.suites == ["beir-14"]
    outcome = run_pipeline(config, base_dir, stages=["train"], progress=False)
    summary = outcome.stages[0].manifest["summary"]
    assert summary["steps"] == 2 and (tmp_path / "run" / "train" / "model" / "modules.json").is_file()
    stats = summary["context_stats"]
    assert stats["queries_kept"] == len(WORDS), stats  # every query has a ranking context
    resolved = train_config(config, base_dir)
    if any(s.scores == "ranks" for s in resolved.sources):  # the BM25 file: ranks read as one level, 2 per query
        bm25 = next(s for s in resolved.sources if s.scores == "ranks")
        assert bm25.max_per_query == 2 and bm25.rank_level in (0, 1)
