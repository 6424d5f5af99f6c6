"""Hard-negative mining: positives never mined, ranks and counts respected, deterministic, BM25 and dense."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from synthrank.data import DataFormatError, Document, Query, load_qrels_tsv
from synthrank.mine import (
    load_mining_inputs,
    mine_hard_negatives,
    parse_rank_range,
    rank_bm25,
    rank_dense,
)

TOPICS = ["cat", "dog", "bird", "fish", "horse"]


def tiny_corpus() -> dict[str, Document]:
    """30 documents; document i mentions 'cat' a decreasing number of times, so BM25 ranks them."""
    docs = {}
    for i in range(30):
        cats = " ".join(["cat"] * max(1, 12 - i // 3))
        other = TOPICS[i % len(TOPICS)]
        docs[f"d{i:02d}"] = Document(_id=f"d{i:02d}", title="", text=f"{cats} and the {other} number {i} lived in house {i}.")
    docs["x1"] = Document(_id="x1", title="", text="A recipe for tomato soup with basil.")
    docs["x2"] = Document(_id="x2", title="", text="Government bonds rallied on Monday.")
    return docs


QUERIES = {"q1": Query(_id="q1", text="cat"), "q2": Query(_id="q2", text="dog cat house")}


def full_bm25_ranking(corpus, query: str) -> tuple[list[str], list[float]]:
    docs = list(corpus.values())
    ids, scores = rank_bm25([query], [d.id for d in docs], [d.title for d in docs], [d.text for d in docs], len(docs))
    return ids[0], list(scores[0])


def test_positives_are_never_mined_but_judged_negatives_may_be() -> None:
    corpus = tiny_corpus()
    ranking, _ = full_bm25_ranking(corpus, "cat")
    known = {"q1": {ranking[0]: 2, ranking[1]: 1, ranking[2]: 0}}
    result = mine_hard_negatives({"q1": QUERIES["q1"]}, corpus, known, rank_range=(1, 30), count=28, sample="top")
    mined = result.qrels["q1"]
    assert ranking[0] not in mined and ranking[1] not in mined
    assert ranking[2] in mined  # judged non-relevant (level 0 < threshold 1): a fine negative
    assert result.stats["positives_skipped"] == 2
    stricter = mine_hard_negatives({"q1": QUERIES["q1"]}, corpus, known, rank_range=(1, 30), count=28, positive_level=2)
    assert ranking[0] not in stricter.qrels["q1"] and ranking[1] in stricter.qrels["q1"]


def test_ranks_are_one_based_inclusive_and_counted_with_positives() -> None:
    corpus = tiny_corpus()
    ranking, _ = full_bm25_ranking(corpus, "cat")
    known = {"q1": {ranking[11]: 1}}  # rank 12, inside the range: skipped but still counts as a rank
    result = mine_hard_negatives({"q1": QUERIES["q1"]}, corpus, known, rank_range=(10, 14), count=10, sample="top")
    assert list(result.qrels["q1"]) == [ranking[9], ranking[10], ranking[12], ranking[13]]
    for seed in range(5):
        sampled = mine_hard_negatives({"q1": QUERIES["q1"]}, corpus, None, rank_range=(5, 20), count=4, seed=seed)
        ranks = [ranking.index(d) + 1 for d in sampled.qrels["q1"]]
        assert all(5 <= r <= 20 for r in ranks) and ranks == sorted(ranks)


def test_counts_level_and_short_queries() -> None:
    corpus = tiny_corpus()
    result = mine_hard_negatives(QUERIES, corpus, None, rank_range=(2, 25), count=5, level=1)
    assert {q: len(d) for q, d in result.qrels.items()} == {"q1": 5, "q2": 5}
    assert {lvl for d in result.qrels.values() for lvl in d.values()} == {1}
    assert result.stats["pairs"] == 10 and result.stats["queries_short"] == 0
    short = mine_hard_negatives(QUERIES, corpus, None, rank_range=(29, 40), count=5)
    # the corpus has 32 documents, 30 of them mention "cat": ranks 29-30 are eligible, 31-32 score 0 for q1
    assert len(short.qrels["q1"]) == 2
    assert short.stats["queries_short"] == 2 and short.stats["zero_score_skipped"] >= 2


def test_zero_score_documents_are_never_mined() -> None:
    corpus = tiny_corpus()
    result = mine_hard_negatives({"q1": QUERIES["q1"]}, corpus, None, rank_range=(1, 1000), count=1000)
    assert "x1" not in result.qrels["q1"] and "x2" not in result.qrels["q1"]
    assert len(result.qrels["q1"]) == 30


def test_random_sampling_is_deterministic_per_seed_and_per_query() -> None:
    corpus = tiny_corpus()
    args = dict(rank_range=(1, 30), count=5, sample="random")
    first = mine_hard_negatives(QUERIES, corpus, None, seed=7, **args).qrels
    assert first == mine_hard_negatives(QUERIES, corpus, None, seed=7, **args).qrels
    assert first != mine_hard_negatives(QUERIES, corpus, None, seed=8, **args).qrels
    alone = mine_hard_negatives({"q2": QUERIES["q2"]}, corpus, None, seed=7, **args).qrels
    assert alone["q2"] == first["q2"]  # a query's negatives do not depend on the other queries


def test_bad_settings_raise_value_error() -> None:
    corpus = tiny_corpus()
    for bad in [dict(method="splade"), dict(sample="best"), dict(rank_range=(0, 5)), dict(rank_range=(9, 3)), dict(count=0), dict(level=-1)]:
        with pytest.raises(ValueError):
            mine_hard_negatives(QUERIES, corpus, None, **bad)
    with pytest.raises(ValueError, match="empty"):
        mine_hard_negatives(QUERIES, {}, None)
    assert parse_rank_range("10:100") == (10, 100)
    for text in ["10-100", "a:b", "0:3", "5:1", "7"]:
        with pytest.raises(ValueError):
            parse_rank_range(text)


@pytest.fixture(scope="module")
def minilm():
    from synthrank.evaluate.encoders import load_encoder

    return load_encoder("all-MiniLM-L6-v2", device="cpu")


def test_dense_mining_respects_positives_ranks_and_seed(minilm, tmp_path: Path) -> None:
    from synthrank.evaluate.encode import EmbeddingCache

    corpus = tiny_corpus()
    docs = list(corpus.values())
    cache = EmbeddingCache(tmp_path)  # the corpus is encoded once, then every call reuses its vectors
    ids, _ = rank_dense(["cat"], [d.id for d in docs], [d.full_text for d in docs], len(docs), model=minilm, cache=cache)
    ranking = ids[0]
    known = {"q1": {ranking[3]: 1}}
    args = dict(method="dense", encoder=minilm, cache=cache)
    top = mine_hard_negatives({"q1": QUERIES["q1"]}, corpus, known, rank_range=(2, 8), count=10, sample="top", **args)
    assert list(top.qrels["q1"]) == [ranking[i] for i in (1, 2, 4, 5, 6, 7)]
    assert top.stats["zero_score_skipped"] == 0 and top.stats["positives_skipped"] == 1
    first = mine_hard_negatives(QUERIES, corpus, known, rank_range=(1, 32), count=6, seed=3, **args).qrels
    assert first == mine_hard_negatives(QUERIES, corpus, known, rank_range=(1, 32), count=6, seed=3, **args).qrels
    assert ranking[3] not in first["q1"] and all(len(v) == 6 for v in first.values())


def write_folder(folder: Path, corpus: dict[str, Document], queries: dict[str, Query], qrels: str, split: str = "train") -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": d.id, "title": d.title, "text": d.text}) + "\n" for d in corpus.values()))
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": q.id, "text": q.text}) + "\n" for q in queries.values()))
    (folder / "qrels" / f"{split}.tsv").write_text(qrels)
    return folder


def test_loading_inputs_from_a_folder_restricts_to_judged_queries(tmp_path: Path) -> None:
    queries = {**QUERIES, "q3": Query(_id="q3", text="horse")}
    folder = write_folder(tmp_path / "data", tiny_corpus(), queries, "query-id\tcorpus-id\tscore\nq1\td00\t1\nq2\td05\t0\n")
    loaded, docs, known = load_mining_inputs(folder, "train")
    assert set(loaded) == {"q1", "q2"} and len(docs) == 32 and known == {"q1": {"d00": 1}, "q2": {"d05": 0}}
    extra = tmp_path / "extra.tsv"
    extra.write_text("q1\td01\t2\nq9\td02\t1\n")  # other queries in extra files are allowed and ignored
    _, _, known = load_mining_inputs(folder, "train", known=[extra])
    assert known["q1"] == {"d00": 1, "d01": 2}
    with pytest.raises(ValueError, match="--corpus is required"):
        load_mining_inputs(folder / "queries.jsonl", "train")
    with pytest.raises(DataFormatError, match="no such file"):
        load_mining_inputs(tmp_path / "nowhere", "train")


def test_queries_ref_json_is_resolved_next_to_the_ref_file(tmp_path: Path) -> None:
    real = write_folder(tmp_path / "real", tiny_corpus(), QUERIES, "q1\td00\t1\n", split="test")
    export = tmp_path / "export"
    export.mkdir()
    (export / "queries.ref.json").write_text(json.dumps({"source": "../real", "ids": ["q2"]}))
    loaded, _, known = load_mining_inputs(export / "queries.ref.json", "train", corpus=real)
    assert list(loaded) == ["q2"] and known == {}
    (export / "queries.ref.json").write_text(json.dumps({"source": "../gone/queries.jsonl", "ids": ["q2"]}))
    with pytest.raises(DataFormatError) as err:
        load_mining_inputs(export, "train", corpus=real)
    assert "queries.ref.json:0: source:" in str(err.value) and "not found" in str(err.value)


def mine_app() -> typer.Typer:
    from synthrank.cli import app

    return app


def test_mine_command_writes_qrels_and_reports_bad_input(tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", tiny_corpus(), QUERIES, "q1\td00\t1\nq2\td01\t1\n")
    out = tmp_path / "runs" / "neg.tsv"
    args = ["mine", "--queries", str(folder), "--out", str(out), "--rank-range", "1:20", "--count", "3", "--level", "1", "--quiet"]
    result = CliRunner().invoke(mine_app(), args)
    assert result.exit_code == 0, result.output
    assert "wrote 6 negatives (level 1) for 2 of 2 queries" in result.output
    mined = load_qrels_tsv(out)
    assert {q: len(d) for q, d in mined.items()} == {"q1": 3, "q2": 3}
    assert "d00" not in mined["q1"] and "d01" not in mined["q2"]
    first = out.read_text()
    assert CliRunner().invoke(mine_app(), args).exit_code == 0 and out.read_text() == first
    limited = CliRunner().invoke(mine_app(), [*args[:4], str(tmp_path / "one.tsv"), *args[5:], "--limit", "1"])
    assert limited.exit_code == 0 and set(load_qrels_tsv(tmp_path / "one.tsv")) == {"q1"}  # the first query only
    bad = CliRunner().invoke(mine_app(), [*args[:5], "--rank-range", "0:5"])
    assert bad.exit_code == 2 and "rank range" in bad.output
    (folder / "qrels" / "train.tsv").write_text("q1\td00\t1\nq7\td01\t1\n")
    bad = CliRunner().invoke(mine_app(), args)
    assert bad.exit_code == 2 and "train.tsv:2: query-id: unknown query id 'q7'" in bad.output


def test_scifact_train_positives_are_never_mined(shared_data: Path) -> None:
    scifact = shared_data / "scifact"
    queries, corpus, known = load_mining_inputs(scifact, "train")
    assert len(queries) == 809
    result = mine_hard_negatives(queries, corpus, known, rank_range=(1, 50), count=5, seed=1)
    assert all(did not in known[qid] for qid, docs in result.qrels.items() for did in docs)
    assert result.stats["positives_skipped"] > 0 and result.stats["pairs"] >= 5 * 800
