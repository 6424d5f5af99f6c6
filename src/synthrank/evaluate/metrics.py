"""Retrieval metrics through pytrec_eval (trec_eval's own code): the fixed core of evaluation.

Metric names are lowercase: ``ndcg@k`` (graded, linear gain = label, as trec_eval),
``map``, ``map@k``, ``recall@k``, ``p@k``, ``mrr@k`` (reciprocal rank of the first relevant
document within the top k; trec_eval's ``recip_rank`` on the run cut at k).

Binary metrics (everything except nDCG) count a document relevant when its label is
``>= relevance_level`` (trec_eval ``-l``; default 1, TREC DL uses 2). nDCG ignores
``relevance_level`` and uses the labels as gains, as trec_eval does.

Every query of ``qrels`` is scored: a judged query missing from the run, or with an empty
result list, scores 0 (trec_eval ``-c``), so systems that retrieve nothing are not flattered.
"""

from __future__ import annotations

import re

import pytrec_eval

from synthrank.data.records import Qrels, Run

DEFAULT_METRICS = ("ndcg@10", "map", "recall@100", "mrr@10")
_METRIC = re.compile(r"^(ndcg|map|recall|p|mrr)(?:@(\d+))?$")


def parse_metric(name: str) -> tuple[str, int | None]:
    """``"ndcg@10" -> ("ndcg", 10)``; raises ValueError naming the accepted forms."""
    match = _METRIC.match(name.strip().lower())
    if not match:
        raise ValueError(f"unknown metric {name!r}; use ndcg@k, map, map@k, recall@k, p@k or mrr@k")
    kind, k = match.group(1), match.group(2)
    if kind in ("ndcg", "recall", "p", "mrr") and k is None:
        raise ValueError(f"metric {name!r} needs a cutoff, e.g. {kind}@10")
    if k is not None and not 1 <= int(k) <= 100_000:  # pytrec_eval aborts the whole process on a cutoff of 0
        raise ValueError(f"metric {name!r}: the cutoff must be between 1 and 100000")
    return kind, int(k) if k else None


def _trec_measure(kind: str, k: int | None) -> tuple[str, str]:
    """pytrec_eval measure to request, and the key it reports under."""
    if kind == "ndcg":
        return f"ndcg_cut.{k}", f"ndcg_cut_{k}"
    if kind == "map":
        return ("map", "map") if k is None else (f"map_cut.{k}", f"map_cut_{k}")
    if kind == "recall":
        return f"recall.{k}", f"recall_{k}"
    if kind == "p":
        return f"P.{k}", f"P_{k}"
    return "recip_rank", "recip_rank"


def truncate_run(run: Run, k: int) -> Run:
    """Keep each query's top ``k`` documents (descending score, ties broken by doc id desc as trec_eval)."""
    cut: Run = {}
    for qid, docs in run.items():
        ranked = sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)[:k]
        cut[qid] = dict(ranked)
    return cut


def evaluate_run(
    qrels: Qrels, run: Run, metrics: tuple[str, ...] | list[str] = DEFAULT_METRICS, relevance_level: int = 1
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Score ``run`` against ``qrels``.

    Returns ``(mean_over_queries, per_query)`` where ``per_query[qid][metric]`` covers every
    query in ``qrels`` and the mean is the plain average over those queries.
    """
    parsed = {name: parse_metric(name) for name in metrics}
    per_query: dict[str, dict[str, float]] = {qid: {} for qid in qrels}
    # Group measures by the run they need (full run, or run cut at k for mrr@k) and by whether
    # the relevance level applies; one pytrec_eval pass per group.
    groups: dict[tuple[int | None, int], dict[str, tuple[str, str]]] = {}
    for name, (kind, k) in parsed.items():
        cutoff = k if kind == "mrr" else None
        level = 1 if kind == "ndcg" else relevance_level
        measure, key = _trec_measure(kind, k)
        groups.setdefault((cutoff, level), {})[name] = (measure, key)
    for (cutoff, level), names in groups.items():
        measures = {measure for measure, _ in names.values()}
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, measures, relevance_level=level)
        scored = evaluator.evaluate(truncate_run(run, cutoff) if cutoff else run)
        for qid in per_query:
            values = scored.get(qid, {})
            for name, (_, key) in names.items():
                per_query[qid][name] = float(values.get(key, 0.0))
    count = max(len(per_query), 1)
    means = {name: sum(q[name] for q in per_query.values()) / count for name in metrics}
    return means, per_query
