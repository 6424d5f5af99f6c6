"""Descriptive statistics of a BEIR folder (``synthrank data stats``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from synthrank.data.errors import DataFormatError

from synthrank.data.beir import (
    empty_document_counts,
    iter_corpus,
    load_qrels_tsv,
    qrels_splits,
)
from synthrank.data.query_refs import load_any_queries


def _length_summary(lengths: list[int]) -> dict[str, float]:
    if not lengths:
        return {}
    arr = np.asarray(lengths)
    return {"mean": round(float(arr.mean()), 1), "median": float(np.median(arr)), "p95": float(np.percentile(arr, 95)), "max": int(arr.max())}


def beir_folder_stats(folder: Path) -> dict:
    """Counts, judged pairs per query, level distribution and text lengths (in words).

    Returns a JSON-serialisable dict: ``{"documents", "doc_words", "splits": {split: {...}}}``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, 0, "-", "not a folder" if folder.exists() else "no such folder")
    stats: dict = {"path": str(folder), "documents": 0, "doc_words": {}, "splits": {}}
    corpus_path = folder / "corpus.jsonl"
    if corpus_path.exists() or corpus_path.is_symlink():
        docs = list(iter_corpus(corpus_path))
        lengths = [len(doc.full_text.split()) for doc in docs]
        stats["documents"] = len(lengths)
        stats.update(empty_document_counts(docs))
        stats["doc_words"] = _length_summary(lengths)
    for split in qrels_splits(folder):
        queries = load_any_queries(folder, split)  # queries_<split>.jsonl, queries.jsonl or a synthetic set's queries.ref.json
        qrels = load_qrels_tsv(folder / "qrels" / f"{split}.tsv")
        per_query = [len(d) for d in qrels.values()]
        levels = Counter(level for d in qrels.values() for level in d.values())
        judged_queries = [q for qid, q in queries.items() if qid in qrels]
        stats["splits"][split] = {
            "queries": len(judged_queries),
            "judged_pairs": sum(per_query),
            "judged_per_query": _length_summary(per_query),
            "levels": {str(k): levels[k] for k in sorted(levels)},
            "query_words": _length_summary([len(q.text.split()) for q in judged_queries]),
        }
    return stats


def render_stats_markdown(stats: dict) -> str:
    """A short markdown rendering of :func:`beir_folder_stats`."""
    lines = [f"# {stats['path']}", "", f"- documents: {stats['documents']}"
             + (f" ({stats['title_only']} title-only, {stats['empty']} empty)" if stats.get("title_only") or stats.get("empty") else "")]
    if stats["doc_words"]:
        w = stats["doc_words"]
        lines.append(f"- document length (words): mean {w['mean']}, median {w['median']}, p95 {w['p95']}, max {w['max']}")
    lines += ["", "| split | queries | judged pairs | judged/query (mean, max) | levels | query words (mean) |", "|---|---|---|---|---|---|"]
    for split, s in stats["splits"].items():
        jpq = s["judged_per_query"]
        levels = ", ".join(f"{k}: {v}" for k, v in s["levels"].items())
        qw = s["query_words"].get("mean", "-")
        lines.append(f"| {split} | {s['queries']} | {s['judged_pairs']} | {jpq.get('mean', '-')}, {jpq.get('max', '-')} | {levels} | {qw} |")
    return "\n".join(lines)
