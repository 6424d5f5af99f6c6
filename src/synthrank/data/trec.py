"""TREC formats: qrels (``qid 0 docid level``) and runs (``qid Q0 docid rank score tag``)."""

from __future__ import annotations

from pathlib import Path

from synthrank.data.beir import add_judgment
from synthrank.data.errors import DataFormatError
from synthrank.data.jsonl import atomic_write, iter_text_lines
from synthrank.data.records import Qrels, Run


def load_trec_qrels(path: Path, query_ids: set[str] | None = None, doc_ids: set[str] | None = None) -> Qrels:
    """Read whitespace-separated TREC qrels: ``query_id iteration doc_id level``."""
    path = Path(path)
    qrels: Qrels = {}
    for number, line in iter_text_lines(path):
        parts = line.split()
        if len(parts) != 4:
            raise DataFormatError(path, number, "-", f"expected 4 columns (query_id iteration doc_id level), found {len(parts)}")
        add_judgment(qrels, path, number, parts[0], parts[2], parts[3], query_ids, doc_ids, ("query_id", "doc_id", "level"))
    return qrels


def load_trec_run(path: Path) -> Run:
    """Read a TREC run file into ``{query_id: {doc_id: score}}``."""
    path = Path(path)
    run: Run = {}
    for number, line in iter_text_lines(path):
        parts = line.split()
        if len(parts) != 6:
            raise DataFormatError(path, number, "-", f"expected 6 columns (qid Q0 docid rank score tag), found {len(parts)}")
        qid, _, did, rank, score, _ = parts
        try:
            int(rank)
        except ValueError:
            raise DataFormatError(path, number, "rank", f"{rank!r} is not an integer") from None
        try:
            value = float(score)
        except ValueError:
            raise DataFormatError(path, number, "score", f"{score!r} is not a number") from None
        docs = run.setdefault(qid, {})
        if did in docs:
            raise DataFormatError(path, number, "doc_id", f"document {did!r} appears twice for query {qid!r}")
        docs[did] = value
    return run


def write_trec_run(path: Path, run: Run, tag: str = "synthrank") -> None:
    """Write a run, each query's documents by descending score (ties by doc id descending, as
    trec_eval orders them), scores at full precision, atomically."""
    tag = "".join(tag.split()) or "synthrank"
    with atomic_write(Path(path)) as handle:
        for qid, docs in run.items():
            ranked = sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)  # trec_eval's order
            for rank, (did, score) in enumerate(ranked, start=1):
                handle.write(f"{qid} Q0 {did} {rank} {float(score)!r} {tag}\n")


def write_trec_qrels(path: Path, qrels: Qrels) -> None:
    """Write TREC qrels (iteration column 0), atomically."""
    with atomic_write(Path(path)) as handle:
        for qid, judged in qrels.items():
            for did, level in judged.items():
                handle.write(f"{qid} 0 {did} {int(level)}\n")
