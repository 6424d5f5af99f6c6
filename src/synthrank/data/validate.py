"""Whole-folder validation: every file of a BEIR folder, every split, every cross-reference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from synthrank.data.beir import empty_document_counts, load_corpus, load_qrels_tsv, load_queries_jsonl, qrels_splits, queries_file_for_split
from synthrank.data.errors import DataFormatError
from synthrank.data.query_refs import QUERIES_REF, load_queries_ref


@dataclass
class ValidationReport:
    """Counts of what was checked in a folder that passed validation."""

    path: Path
    documents: int
    queries: dict[str, int]
    judgments: dict[str, int]
    without_text: dict | None = None  # {"title_only": n, "empty": m}: accepted, as BEIR does


def validate_beir_folder(folder: Path, allow_unknown_docs: bool = False, splits: list[str] | None = None) -> ValidationReport:
    """Check a BEIR folder completely; raise DataFormatError at the first problem.

    Checks: every JSONL line parses to an object with non-empty ``_id`` and ``text``, ids are
    unique, files are non-empty UTF-8, every qrels row has 3 columns and an integer level
    >= 0, and references a known query and (unless ``allow_unknown_docs``, for judged subsets
    such as TREC DL's full NIST qrels) a known document. Nothing is written.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, 0, "-", "not a folder")
    corpus_path = folder / "corpus.jsonl"
    corpus = load_corpus(corpus_path) if (corpus_path.exists() or corpus_path.is_symlink()) else None
    query_files: dict[Path, set[str]] = {}
    names = splits or qrels_splits(folder)
    if not names and not (folder / "queries.jsonl").exists():
        raise DataFormatError(folder / "qrels", 0, "-", "no qrels/<split>.tsv and no queries.jsonl: not a BEIR folder")
    judgments: dict[str, int] = {}
    query_counts: dict[str, int] = {}
    for split in names or [None]:
        qfile = queries_file_for_split(folder, split)
        if not qfile.is_file() and (folder / QUERIES_REF).is_file():
            qfile = folder / QUERIES_REF  # a synthetic set names its queries by source file and ids
        if qfile not in query_files:
            query_files[qfile] = set(load_queries_ref(qfile, split) if qfile.name == QUERIES_REF else load_queries_jsonl(qfile))
        query_counts[split or "all"] = len(query_files[qfile])
        if split is None:
            continue
        doc_ids = set(corpus) if corpus is not None and not allow_unknown_docs else None
        try:
            qrels = load_qrels_tsv(folder / "qrels" / f"{split}.tsv", query_ids=query_files[qfile], doc_ids=doc_ids)
        except DataFormatError as err:
            if "unknown document id" in err.message:
                err.args = (f"{err} (if the qrels judge documents outside this corpus on purpose, pass --allow-unknown-docs)",)
            raise
        judgments[split] = sum(len(d) for d in qrels.values())
    without_text = empty_document_counts(corpus.values()) if corpus is not None else None
    return ValidationReport(folder, len(corpus) if corpus is not None else 0, query_counts, judgments, without_text)
