"""End-to-end evaluation on tiny folders, and the published figures on real data (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import write_beir
from synthrank.cli import app
from synthrank.data import load_trec_run
from synthrank.evaluate import evaluate


def test_bm25_cli_writes_run_results_and_summary(tiny_beir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "--model", "bm25", "--data", str(tiny_beir), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert set(results) >= {"metrics", "per_query", "model", "data", "timings"}
    assert set(results["metrics"]) == {"ndcg@10", "map", "recall@100", "mrr@10"}  # the one default, as in run configs
    assert set(results["per_query"]) == {"q1", "q2"}
    run = load_trec_run(out / "run.trec")
    assert next(iter(sorted(run["q1"], key=run["q1"].get, reverse=True))) == "d1"  # the cat document wins
    assert results["metrics"]["mrr@10"] == 1.0
    assert "bm25 on tiny" in (out / "summary.md").read_text()


def test_json_flag_prints_results(tiny_beir: Path) -> None:
    result = CliRunner().invoke(app, ["evaluate", "--model", "bm25", "--data", str(tiny_beir), "--json", "-q"])
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["model"] == "bm25" and payload["dataset"] == "tiny"


def test_dense_evaluation_reuses_cache_and_notices_a_changed_document(tiny_beir: Path, tmp_path: Path) -> None:
    args = ["evaluate", "--data", str(tiny_beir), "--cache-dir", str(tmp_path / "cache"), "-q"]
    first = CliRunner().invoke(app, args)
    second = CliRunner().invoke(app, args)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "no entry for this model and corpus" in first.stderr and "reused corpus vectors" in second.stderr
    corpus = tiny_beir / "corpus.jsonl"
    corpus.write_text(corpus.read_text().replace("tomato soup", "tomato broth"))
    third = CliRunner().invoke(app, args)
    assert "no entry for this model and corpus" in third.stderr


def test_drop_own_id_removes_the_query_itself(tmp_path: Path) -> None:
    corpus = [{"_id": "x1", "text": "argument about taxes"}, {"_id": "x2", "text": "counter argument about taxes"}, {"_id": "x3", "text": "weather"}]
    queries = [{"_id": "x1", "text": "argument about taxes"}]
    folder = write_beir(tmp_path / "argu", corpus, queries, {"test": "x1\tx2\t1\n"})
    kept = evaluate("bm25", folder, progress=False)
    dropped = evaluate("bm25", folder, progress=False, drop_own_id=True)
    assert "x1" in kept.run["x1"] and "x1" not in dropped.run["x1"]
    assert dropped.metrics["mrr@10"] == 1.0 and kept.metrics["mrr@10"] == 0.5


def test_bad_metric_and_missing_folder_exit_2(tiny_beir: Path, tmp_path: Path) -> None:
    bad_metric = CliRunner().invoke(app, ["evaluate", "-m", "bm25", "-d", str(tiny_beir), "--metrics", "ndcg@10,bleu"])
    assert bad_metric.exit_code == 2 and "unknown metric 'bleu'" in bad_metric.stderr
    missing = CliRunner().invoke(app, ["evaluate", "-m", "bm25", "-d", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "nope:0: -: no such folder" in missing.stderr


@pytest.mark.slow
def test_bm25_reproduces_published_scifact(shared_data: Path) -> None:
    result = evaluate("bm25", shared_data / "scifact", progress=False)
    assert abs(result.metrics["ndcg@10"] - 0.665) <= 0.01


@pytest.mark.slow
def test_minilm_reproduces_published_scifact(shared_data: Path) -> None:
    result = evaluate("all-MiniLM-L6-v2", shared_data / "scifact", progress=False)
    assert abs(result.metrics["ndcg@10"] - 0.645) <= 0.01


def test_bm25_never_retrieves_non_matching_documents(tmp_path: Path) -> None:
    from synthrank.evaluate.bm25 import BM25Retriever

    retriever = BM25Retriever()
    retriever.index(["a", "b", "c"], ["", "", ""], ["the cat sat", "dog barks loudly", "cat and dog"], progress=False)
    ids, _ = retriever.retrieve(["zebra unicorn", "the of", "cat"], k=3, progress=False)
    assert ids[0] == [None, None, None] and ids[1] == [None, None, None]  # no term matches; stop words only
    assert [d for d in ids[2] if d] == ["a", "c"] or [d for d in ids[2] if d] == ["c", "a"]


class _FakeSentenceTransformer:
    """The two things model_fingerprint reads from a SentenceTransformer: its modules and state_dict."""

    def __init__(self, module):
        self.module = module

    def __iter__(self):
        return iter([self.module])

    def state_dict(self):
        return self.module.state_dict()


def test_fingerprint_handles_scalar_parameters() -> None:
    import torch

    from synthrank.evaluate.encode import model_fingerprint

    def with_scale(value: float) -> torch.nn.Module:
        module = torch.nn.Module()
        module.scale = torch.nn.Parameter(torch.tensor(value))  # a 0-dim parameter (e.g. a learned temperature)
        return module

    assert model_fingerprint(_FakeSentenceTransformer(with_scale(20.0))) == model_fingerprint(_FakeSentenceTransformer(with_scale(20.0)))
    assert model_fingerprint(_FakeSentenceTransformer(with_scale(20.0))) != model_fingerprint(_FakeSentenceTransformer(with_scale(21.0)))


def test_several_data_sets_give_one_table_with_the_mean_and_a_run_file_is_scored(tiny_beir: Path, tmp_path: Path) -> None:
    out = tmp_path / "many"
    result = CliRunner().invoke(app, ["evaluate", "-m", "bm25", "-d", str(tiny_beir), "-d", "embedded", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "on 2 data sets" in result.output and "| **mean** |" in result.output
    tiny = json.loads((out / tiny_beir.name / "results.json").read_text())
    medline = json.loads((out / "embedded" / "results.json").read_text())
    mean_row = next(line for line in result.output.splitlines() if line.startswith("| **mean**"))
    assert f"**{(tiny['metrics']['ndcg@10'] + medline['metrics']['ndcg@10']) / 2:.4f}**" in mean_row
    # the run file bm25 wrote, scored as an external run, gives the same numbers
    scored = CliRunner().invoke(app, ["evaluate", "-m", "external", "--run", str(out / tiny_beir.name / "run.trec"),
                                      "-d", str(tiny_beir), "--json"])
    assert scored.exit_code == 0, scored.output
    assert json.loads(scored.output[scored.output.index("{"):])["metrics"] == tiny["metrics"]
    bad = CliRunner().invoke(app, ["evaluate", "-m", "bm25", "--suite", "beir-99"])
    assert bad.exit_code == 2 and "unknown suite 'beir-99'" in bad.output


def test_compare_json_carries_the_p_values(tiny_beir: Path, tmp_path: Path) -> None:
    for model in ("bm25", "all-MiniLM-L6-v2"):
        assert CliRunner().invoke(app, ["evaluate", "-m", model, "-d", str(tiny_beir), "-o", str(tmp_path / model), "-q"]).exit_code == 0
    result = CliRunner().invoke(app, ["compare", str(tmp_path / "bm25"), str(tmp_path / "all-MiniLM-L6-v2"), "--json"])
    assert result.exit_code == 0, result.output
    table = json.loads(result.output)
    cell = next(c for c in table["cells"] if c["system"] != table["baseline"])
    assert {"p_t", "p_randomization", "mean_difference", "verdict"} <= set(cell)


def test_bf16_encoding_falls_back_to_fp32_where_the_cpu_has_no_native_bf16(tiny_beir: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    """Emulated bf16 autocast encoded ~20x slower than fp32 on an AVX2-only CPU: evaluation, like training,
    uses fp32 there, says so, and records the precision it used."""
    from synthrank.evaluate import encode

    monkeypatch.setattr(encode, "cpu_has_native_bf16", lambda cpuinfo=None: False)
    result = evaluate(data=str(tiny_beir), precision="bf16", cache_dir=tmp_path, progress=False)
    assert (result.settings["precision"], result.settings["precision_requested"]) == ("fp32", "bf16")
    assert "no native bfloat16; encoding in fp32" in capsys.readouterr().err
    monkeypatch.setattr(encode, "cpu_has_native_bf16", lambda cpuinfo=None: True)
    native = evaluate(data=str(tiny_beir), precision="bf16", cache_dir=tmp_path, progress=False)
    assert native.settings["precision"] == "bf16" and "precision_requested" not in native.settings
