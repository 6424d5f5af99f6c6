"""BEIR folders: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Conventions we accept (all seen in the wild):
- ``qrels/<split>.tsv`` with or without the header ``query-id corpus-id score``;
- a split-specific query file ``queries_<split>.jsonl`` next to ``queries.jsonl`` (SciFact
  keeps its training claims there); when it exists, that split's qrels use it;
- a folder with queries and qrels but no corpus (a query pool for generation).

Every reader validates as it goes and raises :class:`DataFormatError` at the first problem.
"""

from __future__ import annotations

import json

import logging

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from synthrank.data.errors import DataFormatError
from synthrank.data.named import missing_hint
from synthrank.data.jsonl import atomic_write, iter_jsonl_records, iter_text_lines
from synthrank.data.records import Document, Qrels, Query

#: Larger labels are refused: a label of 2**31 once drove nDCG's ideal gain computation to 7.6 GB.
MAX_RELEVANCE_LEVEL = 1000
QUERIES_TSV_HEADER = ({"id", "_id", "qid", "query-id", "query_id"}, {"text", "query", "query_text", "question"})
QRELS_HEADER_WORDS = {"query-id", "query_id", "qid", "corpus-id", "corpus_id", "doc-id", "docid", "score", "label", "relevance"}


def iter_corpus(path: Path) -> Iterator[Document]:
    """Stream documents of a ``corpus.jsonl`` (does not check duplicate ids)."""
    for _, doc in iter_jsonl_records(Path(path), Document):
        yield doc


def load_corpus(path: Path) -> dict[str, Document]:
    """Read a ``corpus.jsonl`` into ``{doc_id: Document}``, refusing duplicate ids; warns once per
    file about title-only and empty documents (they are kept and encoded as they are)."""
    corpus = _load_unique(Path(path), Document)
    warn_about_empty_documents(Path(path), corpus.values())
    return corpus


_WARNED: set[str] = set()


def empty_document_counts(documents) -> dict[str, int]:
    """``{"title_only": n, "empty": m}``: documents without text but with a title, and without either."""
    counts = {"title_only": 0, "empty": 0}
    for doc in documents:
        if not doc.text.strip():
            counts["empty" if not doc.title.strip() else "title_only"] += 1
    return counts


def warn_about_empty_documents(path: Path, documents) -> None:
    counts = empty_document_counts(documents)
    key = str(Path(path).resolve())
    if (counts["title_only"] or counts["empty"]) and key not in _WARNED:
        _WARNED.add(key)
        logging.getLogger("synthrank.data").warning(
            "%s: %d title-only and %d empty documents (no text); kept and encoded as they are, as BEIR does",
            path, counts["title_only"], counts["empty"])


def load_queries_jsonl(path: Path) -> dict[str, Query]:
    """Read a ``queries.jsonl`` into ``{query_id: Query}``, refusing duplicate ids."""
    return _load_unique(Path(path), Query)


def _load_unique(path: Path, model):
    records: dict = {}
    first_line: dict[str, int] = {}
    for number, record in iter_jsonl_records(path, model):
        if record.id in records:
            raise DataFormatError(path, number, "_id", f"duplicate id {record.id!r} (first on line {first_line[record.id]})")
        records[record.id] = record
        first_line[record.id] = number
    return records


def load_grouped_qrels_jsonl(path: Path, query_ids: set[str] | None = None) -> Qrels:
    """Grouped judgments, one query per line: ``{"qid": "q1", "docid": ["d1", "d2"], "score": [3, 1]}`` (Trove's
    qrel format; the SyCL release's BM25 file, where the score is a rank). Repeated lines of a query are merged."""
    path = Path(path)
    qrels: Qrels = {}
    for number, line in iter_text_lines(path):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, number, "-", f"malformed JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise DataFormatError(path, number, "-", "expected a JSON object")
        for key in ("qid", "docid", "score"):
            if key not in row:
                raise DataFormatError(path, number, key, "missing")
        docs, scores = row["docid"], row["score"]
        if not isinstance(docs, list) or not isinstance(scores, list) or len(docs) != len(scores):
            raise DataFormatError(path, number, "docid", "docid and score must be lists of the same length")
        qid = str(row["qid"])
        if query_ids is not None and qid not in query_ids:
            raise DataFormatError(path, number, "qid", f"unknown query id {qid!r}")
        for did, score in zip(docs, scores):
            if isinstance(score, bool) or not isinstance(score, (int, float)) or int(score) != score or score < 0:
                raise DataFormatError(path, number, "score", f"{score!r} is not a non-negative integer")
            qrels.setdefault(qid, {})[str(did)] = int(score)
    if not qrels:
        raise DataFormatError(path, 0, "-", "no judgments in the file")
    return qrels


def load_queries_tsv(path: Path) -> dict[str, Query]:
    """Read ``id<TAB>text`` lines (MS MARCO style) into ``{query_id: Query}``."""
    path = Path(path)
    queries: dict[str, Query] = {}
    for number, line in iter_text_lines(path):
        parts = line.split("\t")
        if not queries and len(parts) == 2 and parts[0].strip().lower() in QUERIES_TSV_HEADER[0] \
                and parts[1].strip().lower() in QUERIES_TSV_HEADER[1]:
            continue  # a header line such as "id<TAB>text", not a query named "id"
        if len(parts) != 2:
            raise DataFormatError(path, number, "-", f"expected 2 tab-separated columns (id, text), found {len(parts)}")
        qid, text = parts[0].strip(), parts[1]
        if not qid:
            raise DataFormatError(path, number, "id", "must not be empty")
        if not text.strip():
            raise DataFormatError(path, number, "text", "must not be empty")
        if qid in queries:
            raise DataFormatError(path, number, "id", f"duplicate id {qid!r}")
        queries[qid] = Query(_id=qid, text=text)
    return queries


def load_queries(path: Path, split: str | None = None) -> dict[str, Query]:
    """Queries from a BEIR folder (optionally a split's own file), a ``.jsonl`` or a ``.tsv``."""
    path = Path(path)
    if path.is_dir():
        return load_queries_jsonl(queries_file_for_split(path, split))
    if path.suffix == ".tsv":
        return load_queries_tsv(path)
    return load_queries_jsonl(path)


def queries_file_for_split(folder: Path, split: str | None) -> Path:
    """``queries_<split>.jsonl`` when it exists, else ``queries.jsonl``."""
    if split:
        specific = Path(folder) / f"queries_{split}.jsonl"
        if specific.is_file():
            return specific
    return Path(folder) / "queries.jsonl"


def load_qrels_tsv(
    path: Path,
    query_ids: set[str] | None = None,
    doc_ids: set[str] | None = None,
) -> Qrels:
    """Read BEIR qrels (``query-id<TAB>corpus-id<TAB>score``, header optional).

    When ``query_ids`` / ``doc_ids`` are given, a judgment naming an id outside them is an
    error. A pair judged twice is an error too (the two labels could disagree).
    """
    path = Path(path)
    qrels: Qrels = {}
    first = True
    for number, line in iter_text_lines(path):
        parts = line.split("\t")
        if first:
            first = False
            if {p.strip().lower() for p in parts} & QRELS_HEADER_WORDS and not _is_int(parts[-1]):
                continue
        if len(parts) != 3:
            raise DataFormatError(path, number, "-", f"expected 3 tab-separated columns (query-id, corpus-id, score), found {len(parts)}")
        qid, did, level_text = (p.strip() for p in parts)
        add_judgment(qrels, path, number, qid, did, level_text, query_ids, doc_ids, ("query-id", "corpus-id", "score"))
    if not qrels:
        raise DataFormatError(path, 0, "-", "no judgments (the file holds only a header)")
    return qrels


def _is_int(text: str) -> bool:
    try:
        int(text.strip())
    except ValueError:
        return False
    return True


def add_judgment(qrels, path, number, qid, did, level_text, query_ids, doc_ids, names) -> None:
    q_name, d_name, level_name = names
    if not qid:
        raise DataFormatError(path, number, q_name, "must not be empty")
    if not did:
        raise DataFormatError(path, number, d_name, "must not be empty")
    try:
        level = int(level_text)
    except ValueError:
        raise DataFormatError(path, number, level_name, f"relevance level {level_text!r} is not an integer") from None
    if level < 0:
        raise DataFormatError(path, number, level_name, f"relevance level {level} is negative")
    if level > MAX_RELEVANCE_LEVEL:
        raise DataFormatError(path, number, level_name, f"relevance level {level} is out of range (0 to {MAX_RELEVANCE_LEVEL})")
    if query_ids is not None and qid not in query_ids:
        raise DataFormatError(path, number, q_name, f"unknown query id {qid!r} (not in the queries file)")
    if doc_ids is not None and did not in doc_ids:
        raise DataFormatError(path, number, d_name, f"unknown document id {did!r} (not in corpus.jsonl)")
    judged = qrels.setdefault(qid, {})
    if did in judged:
        raise DataFormatError(path, number, d_name, f"pair ({qid}, {did}) is judged twice")
    judged[did] = level


def qrels_splits(folder: Path) -> list[str]:
    """Split names that have a ``qrels/<split>.tsv`` file, sorted."""
    qrels_dir = Path(folder) / "qrels"
    return sorted(p.stem for p in qrels_dir.glob("*.tsv")) if qrels_dir.is_dir() else []


@dataclass
class BeirDataset:
    """A loaded BEIR folder: ``corpus`` may be empty for a query-only folder."""

    path: Path
    corpus: dict[str, Document]
    queries: dict[str, Query]
    qrels: Qrels
    split: str
    meta: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name


def load_beir_folder(
    folder: Path, split: str = "test", require_corpus: bool = True, allow_unknown_docs: bool = False
) -> BeirDataset:
    """Load one split of a BEIR folder with all cross-file checks.

    Only queries that have at least one judgment in the split are kept (BEIR's rule), so a
    shared ``queries.jsonl`` holding several splits' queries evaluates the right set.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, 0, "-", "not a folder" if folder.exists() else "no such folder" + missing_hint(folder))
    corpus_path = folder / "corpus.jsonl"
    corpus: dict[str, Document] = {}
    if corpus_path.exists() or require_corpus:
        corpus = load_corpus(corpus_path)
    queries = load_queries_jsonl(queries_file_for_split(folder, split))
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        available = ", ".join(qrels_splits(folder)) or "none"
        raise DataFormatError(qrels_path, 0, "-", f"no qrels for split {split!r} (available: {available})")
    doc_ids = set(corpus) if corpus and not allow_unknown_docs else None
    qrels = load_qrels_tsv(qrels_path, query_ids=set(queries), doc_ids=doc_ids)
    judged_queries = {qid: queries[qid] for qid in queries if qid in qrels}
    return BeirDataset(path=folder, corpus=corpus, queries=judged_queries, qrels=qrels, split=split)


def write_qrels_tsv(path: Path, qrels: Qrels) -> None:
    """Write BEIR qrels with header, atomically."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(["query-id", "corpus-id", "score"])
    for qid, judged in qrels.items():
        for did, level in judged.items():
            writer.writerow([qid, did, int(level)])
    with atomic_write(Path(path)) as handle:
        handle.write(buffer.getvalue())
