"""Training sources: judged passages for queries, read from BEIR folders or qrels files.

A *source* is one set of ``(query, passage, level)`` triples that feeds the ranking contexts
of :mod:`synthrank.train.contexts`: real labels (``qrels/train.tsv`` of a BEIR folder), a
synthetic export of ``synthrank generate export``, or hard negatives written by
``synthrank mine`` (a bare qrels file plus the corpus it was mined from).

What a source reads, given ``data`` (relative paths are resolved against ``base_dir``):

- ``data`` is a **folder**: judgments from ``data/qrels/<split>.tsv``; passages from
  ``corpus`` or else ``data/corpus.jsonl``; query text from ``queries`` or else
  ``data/queries_<split>.jsonl``, ``data/queries.jsonl``, or ``data/queries.ref.json``
  (a synthetic export that points at its queries instead of copying them);
- ``data`` is a **file**: it is the qrels TSV itself; ``corpus`` is required (a
  ``corpus.jsonl`` or a BEIR folder holding one); query text only from ``queries`` (else
  the query text must come from another source of the same context).

Bad input raises :class:`~synthrank.data.DataFormatError` (``file:line: field: what``):
a missing path, a qrels row naming a query outside the queries file, or a document missing
from the corpus (the error points at the first such qrels line). Documents are streamed
from ``corpus.jsonl`` once per distinct corpus and only the judged ones are kept in memory.
"""

from __future__ import annotations

from synthrank.data.named import missing_hint

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from synthrank.data import DataFormatError, Qrels, Query, iter_corpus, load_qrels_tsv
from synthrank.data.beir import qrels_splits, queries_file_for_split

from synthrank.data.query_refs import QUERIES_REF, load_any_queries, load_queries_ref  # noqa: F401 - re-exported


class SourceConfig(BaseModel):
    """One source of a ranking context (a list entry of ``sources:`` in the training YAML).

    Levels: ``keep_levels`` filters the source's *original* labels, then ``relabel`` maps
    them (unmapped levels keep their value). ``max_per_query`` / ``max_per_level`` cap how
    many of this source's passages a query's group may draw from per epoch (a fresh random
    draw every epoch); in binary contexts the caps apply to this source's negatives only.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, description="Short name, used in statistics and by `fill_source`.")
    data: Path = Field(description="BEIR folder (qrels/<split>.tsv) or a qrels TSV file.")
    split: str = Field("train", description="qrels split of a BEIR folder.")
    corpus: Path | None = Field(None, description="corpus.jsonl or a BEIR folder; default: data/corpus.jsonl.")
    queries: Path | None = Field(None, description="Queries (.jsonl, .tsv, BEIR folder or queries.ref.json).")
    relabel: dict[int, int] = Field(default_factory=dict, description="Map original level -> training level.")
    keep_levels: list[int] | None = Field(None, description="Original levels kept (default: all).")
    max_per_query: int | None = Field(None, ge=1, description="At most this many passages per query per epoch.")
    max_per_level: int | None = Field(None, ge=1, description="At most this many passages per level per query per epoch.")
    allow_unknown_docs: bool = Field(False, description="Skip (and count) judgments of documents missing from the corpus instead of failing.")
    scores: Literal["levels", "ranks"] = Field("levels", description="What the qrels scores are: relevance levels, or "
                                               "retrieval ranks (1 = best; the SyCL release's BM25 top-1000 file), in "
                                               "which case every pair gets `rank_level`.")
    rank_level: int = Field(0, ge=0, description="scores: ranks: the level every pair gets (0 for negatives).")
    max_rank: int | None = Field(None, ge=1, description="scores: ranks: only pairs ranked at most this.")

    @field_validator("relabel")
    @classmethod
    def _non_negative_targets(cls, value: dict[int, int]) -> dict[int, int]:
        bad = {k: v for k, v in value.items() if v < 0 or k < 0}
        if bad:
            raise ValueError(f"levels must be >= 0, got {bad}")
        return value


@dataclass(frozen=True, slots=True)
class Candidate:
    """One judged passage of a query: ``level`` is the training level (after relabel)."""

    text: str
    level: int
    source: str
    doc_id: str
    original_level: int


@dataclass
class LoadedSource:
    """A source read from disk: candidates per query and the query texts it knows."""

    config: SourceConfig
    qrels_path: Path
    corpus_path: Path
    queries: dict[str, str]
    candidates: dict[str, list[Candidate]]
    stats: dict = field(default_factory=dict)


def _resolve(path: Path, base_dir: Path | None) -> Path:
    from synthrank.config_io import resolve_path

    return resolve_path(path, base_dir) if base_dir is not None else Path(path).expanduser()


def _source_paths(config: SourceConfig, base_dir: Path | None) -> tuple[Path, Path, Path | None]:
    """``(qrels file, corpus.jsonl, queries path or None)`` of a source."""
    data = _resolve(config.data, base_dir)
    if not data.exists():
        raise DataFormatError(data, 0, "-", f"source {config.name!r}: no such file or folder" + missing_hint(data))
    queries = _resolve(config.queries, base_dir) if config.queries else None
    if data.is_dir():
        qrels = data / "qrels" / f"{config.split}.tsv"
        if not qrels.is_file():
            available = ", ".join(qrels_splits(data)) or "none"
            raise DataFormatError(qrels, 0, "-", f"source {config.name!r}: no qrels for split {config.split!r} (available: {available})")
        corpus = _resolve(config.corpus, base_dir) if config.corpus else data / "corpus.jsonl"
        if queries is None and (queries_file_for_split(data, config.split).is_file() or (data / QUERIES_REF).is_file()):
            queries = data
    else:
        qrels = data
        if config.corpus is None:
            raise ValueError(f"source {config.name!r}: {data} is a qrels file, so `corpus` is required "
                             "(the corpus.jsonl or BEIR folder its document ids refer to)")
        corpus = _resolve(config.corpus, base_dir)
    if corpus.is_dir():
        corpus = corpus / "corpus.jsonl"
    if not corpus.is_file():
        raise DataFormatError(corpus, 0, "-", f"source {config.name!r}: corpus file not found")
    return qrels, corpus, queries


def _read_texts(corpus: Path, wanted: set[str]) -> dict[str, str]:
    """Stream ``corpus.jsonl`` once; keep ``full_text`` of the wanted ids."""
    texts: dict[str, str] = {}
    for doc in iter_corpus(corpus):
        if doc.id in wanted and doc.id not in texts:
            texts[doc.id] = doc.full_text
    return texts


def load_sources(configs: Iterable[SourceConfig], base_dir: Path | None = None) -> list[LoadedSource]:
    """Read every source (each distinct corpus file is streamed once), in config order."""
    configs = list(configs)
    names = Counter(c.name for c in configs)
    if duplicated := [n for n, k in names.items() if k > 1]:
        raise ValueError(f"source names must be unique; repeated: {', '.join(duplicated)}")
    staged = []
    wanted: dict[Path, set[str]] = {}
    for config in configs:
        qrels_path, corpus_path, queries_path = _source_paths(config, base_dir)
        queries = load_any_queries(queries_path, config.split) if queries_path else {}
        qrels = read_source_qrels(config, qrels_path, set(queries) if queries else None)
        staged.append((config, qrels_path, corpus_path, queries, qrels))
        wanted.setdefault(corpus_path.resolve(), set()).update(d for judged in qrels.values() for d in judged)
    texts_by_corpus = {path: _read_texts(path, ids) for path, ids in wanted.items()}
    return [_build_source(*item, texts_by_corpus[item[2].resolve()]) for item in staged]


def read_source_qrels(config: SourceConfig, path: Path, query_ids: set[str] | None) -> Qrels:
    """A source's judgments: a BEIR qrels TSV, or grouped JSONL (``{"qid", "docid": [...], "score": [...]}``
    per line, Trove's format); with ``scores: ranks`` the scores are ranks, filtered by ``max_rank``
    and replaced by ``rank_level``."""
    from synthrank.data.beir import load_grouped_qrels_jsonl

    qrels = load_grouped_qrels_jsonl(path, query_ids) if path.suffix == ".jsonl" else load_qrels_tsv(path, query_ids=query_ids)
    if config.scores == "ranks":
        qrels = {q: {d: config.rank_level for d, rank in docs.items() if config.max_rank is None or rank <= config.max_rank}
                 for q, docs in qrels.items()}
        qrels = {q: docs for q, docs in qrels.items() if docs}
    return qrels


def _build_source(config: SourceConfig, qrels_path: Path, corpus_path: Path, queries: dict[str, Query],
                  qrels: Qrels, texts: dict[str, str]) -> LoadedSource:
    unknown = sum(1 for judged in qrels.values() for d in judged if d not in texts)
    if unknown and not config.allow_unknown_docs:
        known = {d for judged in qrels.values() for d in judged if d in texts}
        load_qrels_tsv(qrels_path, doc_ids=known)  # raises at the first qrels line naming a missing document
    keep = set(config.keep_levels) if config.keep_levels is not None else None
    candidates: dict[str, list[Candidate]] = {}
    filtered = 0
    for qid, judged in qrels.items():
        for did, level in judged.items():
            if did not in texts:
                continue
            if keep is not None and level not in keep:
                filtered += 1
                continue
            candidates.setdefault(qid, []).append(
                Candidate(text=texts[did], level=config.relabel.get(level, level), source=config.name, doc_id=did, original_level=level))
    stats = {
        "qrels": str(qrels_path), "corpus": str(corpus_path),
        "judgments": sum(len(j) for j in qrels.values()), "queries_judged": len(qrels),
        "unknown_docs_skipped": unknown, "filtered_by_keep_levels": filtered,
        "candidates": sum(len(c) for c in candidates.values()), "queries_with_candidates": len(candidates),
        "levels": dict(sorted(Counter(c.level for cs in candidates.values() for c in cs).items(), reverse=True)),
    }
    return LoadedSource(config=config, qrels_path=qrels_path, corpus_path=corpus_path,
                        queries={qid: q.text for qid, q in queries.items()}, candidates=candidates, stats=stats)
