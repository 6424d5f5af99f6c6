"""Metrics against hand-computed values and against an independent implementation."""

from __future__ import annotations

import math
import random

import pytest

from synthrank.evaluate.metrics import evaluate_run, parse_metric


def test_hand_computed_values() -> None:
    # Ranking d1 (label 1), d2 (2), d3 (3), d4 (0); qrels also judge d5 (1), never retrieved.
    qrels = {"q": {"d1": 1, "d2": 2, "d3": 3, "d4": 0, "d5": 1}}
    run = {"q": {"d1": 4.0, "d2": 3.0, "d3": 2.0, "d4": 1.0}}
    dcg = 1 / math.log2(2) + 2 / math.log2(3) + 3 / math.log2(4)
    ideal = 3 / math.log2(2) + 2 / math.log2(3) + 1 / math.log2(4) + 1 / math.log2(5)
    means, per_query = evaluate_run(qrels, run, ["ndcg@10", "map", "recall@2", "p@2", "mrr@10"], relevance_level=1)
    assert means["ndcg@10"] == pytest.approx(dcg / ideal)
    assert means["map"] == pytest.approx((1 / 1 + 2 / 2 + 3 / 3) / 4)  # 4 relevant, 3 retrieved at ranks 1-3
    assert means["recall@2"] == pytest.approx(2 / 4)
    assert means["p@2"] == pytest.approx(1.0)
    assert means["mrr@10"] == pytest.approx(1.0)
    # With relevance level 2 (TREC DL), d1 and d5 stop counting; nDCG keeps graded gains.
    means2, _ = evaluate_run(qrels, run, ["ndcg@10", "map", "mrr@10", "recall@2"], relevance_level=2)
    assert means2["ndcg@10"] == pytest.approx(dcg / ideal)
    assert means2["map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert means2["mrr@10"] == pytest.approx(1 / 2)
    assert means2["recall@2"] == pytest.approx(1 / 2)


def test_mrr_is_cut_at_k() -> None:
    qrels = {"q": {"rel": 1}}
    run = {"q": {f"d{i}": 100.0 - i for i in range(12)} | {"rel": 100.0 - 11.5}}  # rel at rank 13
    means, _ = evaluate_run(qrels, run, ["mrr@10", "mrr@20"])
    assert means["mrr@10"] == 0.0
    assert means["mrr@20"] == pytest.approx(1 / 13)


def test_queries_missing_from_run_score_zero() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}}
    means, per_query = evaluate_run(qrels, {"q1": {"a": 1.0}}, ["ndcg@10"])
    assert per_query["q2"]["ndcg@10"] == 0.0
    assert means["ndcg@10"] == pytest.approx(0.5)


def test_unknown_metric_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        parse_metric("bleu")
    with pytest.raises(ValueError, match="needs a cutoff"):
        parse_metric("ndcg")


# An independent implementation, written from the textbook definitions.
def _ranked(docs: dict[str, float]) -> list[str]:
    return [d for d, _ in sorted(docs.items(), key=lambda kv: (-kv[1], kv[0]))]


def reference_metrics(qrels: dict, run: dict, level: int) -> dict[str, float]:
    out = {"ndcg@10": 0.0, "map": 0.0, "recall@5": 0.0, "p@5": 0.0, "mrr@10": 0.0}
    for qid, judged in qrels.items():
        ranking = _ranked(run.get(qid, {}))
        relevant = {d for d, lab in judged.items() if lab >= level}
        gains = [judged.get(d, 0) for d in ranking[:10]]
        dcg = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
        ideal = sorted(judged.values(), reverse=True)[:10]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        out["ndcg@10"] += dcg / idcg if idcg else 0.0
        hits, precisions = 0, []
        for i, d in enumerate(ranking):
            if d in relevant:
                hits += 1
                precisions.append(hits / (i + 1))
        out["map"] += sum(precisions) / len(relevant) if relevant else 0.0
        out["recall@5"] += len(relevant & set(ranking[:5])) / len(relevant) if relevant else 0.0
        out["p@5"] += len(relevant & set(ranking[:5])) / 5
        first = next((i for i, d in enumerate(ranking[:10]) if d in relevant), None)
        out["mrr@10"] += 1 / (first + 1) if first is not None else 0.0
    return {k: v / len(qrels) for k, v in out.items()}


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("level", [1, 2])
def test_matches_independent_implementation_on_random_runs(seed: int, level: int) -> None:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(25):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 15))
        qrels[qid] = {d: rng.choice([0, 1, 2, 3]) for d in judged}
        retrieved = rng.sample(docs, rng.randint(0, 40))
        scores = rng.sample(range(10_000), len(retrieved))  # distinct scores: no tie-breaking ambiguity
        run[qid] = {d: float(s) for d, s in zip(retrieved, scores)}
    ours, _ = evaluate_run(qrels, run, ["ndcg@10", "map", "recall@5", "p@5", "mrr@10"], relevance_level=level)
    theirs = reference_metrics(qrels, run, level)
    for name in theirs:
        assert ours[name] == pytest.approx(theirs[name], abs=1e-9), name
