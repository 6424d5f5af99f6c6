"""Hard-negative mining: retrieve for each query, drop known positives, sample from a rank range.

The output is a BEIR qrels TSV (``query-id  corpus-id  score``) whose score is one chosen
level (default 0), so mined negatives enter the ranking contexts of
:mod:`synthrank.train.contexts` as one more source (a qrels file plus the corpus it names).

Rules, per query:

- Retrieve the top ``hi`` documents of ``rank_range = (lo, hi)`` with BM25 (``bm25s``) or a
  dense sentence-transformers model. Ranks are 1-based positions in that retrieval list,
  **counting** the known positives (so ``10:100`` means "BM25 ranks 10 to 100"); both ends
  are inclusive.
- A document judged at level >= ``positive_level`` for that query (in ``known``) is
  never mined. Documents judged below the threshold (judged non-relevant) may be mined.
- BM25 only: documents scoring 0 (no query term in common) are not hard negatives and are
  never mined, even inside the rank range.
- From the remaining documents in range, take ``count``: ``sample="top"`` takes the
  best-ranked, ``sample="random"`` a uniform sample drawn with a generator seeded by
  ``(seed, query id)`` - so the result is deterministic and a query's negatives do not
  depend on which other queries are mined. Fewer eligible documents than ``count``: all
  are taken and the query is counted in ``stats["queries_short"]``.

Nothing is silent: :class:`MiningResult` ``.stats`` counts queries, pairs written, queries
with fewer than ``count`` or no negatives, positives and zero-score documents skipped.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from synthrank.data import Document, Qrels, Query, load_corpus, load_qrels_tsv



@dataclass
class MiningResult:
    """Mined pairs ``qrels[query_id][doc_id] = level`` (ordered by rank) and counts."""

    qrels: Qrels
    stats: dict = field(default_factory=dict)


def parse_rank_range(text: str) -> tuple[int, int]:
    """``"10:100"`` -> ``(10, 100)``; 1-based, inclusive, ``1 <= lo <= hi``. ValueError otherwise."""
    parts = str(text).split(":")
    try:
        lo, hi = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"rank range {text!r} must look like LO:HI, e.g. 10:100") from None
    _check_rank_range((lo, hi))
    return lo, hi


def _check_rank_range(rank_range: tuple[int, int]) -> None:
    lo, hi = rank_range
    if lo < 1 or hi < lo:
        raise ValueError(f"rank range {lo}:{hi} is invalid: need 1 <= LO <= HI (1-based, inclusive)")


class MiningSettings(BaseModel):
    """How negatives are mined from a ranking (the arguments of :func:`mine_hard_negatives`)."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["bm25", "dense"] = Field("bm25", description="bm25 (bm25s, Lucene scoring) or dense (a sentence-transformers model).")
    model: str = Field("all-MiniLM-L6-v2", description="Dense only: sentence-transformers folder or hub id.")
    rank_range: str = Field("10:100", description="1-based inclusive ranks LO:HI to mine from (positives count as ranks).")
    count: int = Field(10, ge=1, description="Negatives per query.")
    sample: Literal["random", "top"] = Field("random", description="random (uniform over the range, seeded) or top (best-ranked first).")
    seed: int = Field(0, description="Seed of the random sample (per query: seed and query id).")
    level: int = Field(0, ge=0, description="Label written for the mined pairs.")
    positive_level: int = Field(1, description="Known judgments at level >= this are positives and never mined.")
    bm25_fields: Literal["multifield", "flat"] = Field("multifield", description="BM25: multifield (title and text scored "
                                                                                 "separately) or flat.")
    batch_size: int = Field(64, ge=1, description="Dense: encoding batch size.")
    similarity: Literal["cosine", "dot"] | None = Field(None, description="Dense: cosine or dot, overriding the model's own "
                                                                          "(saved by synthrank train).")

    @field_validator("rank_range", mode="before")
    @classmethod
    def _rank_range(cls, value: Any) -> str:
        if isinstance(value, (tuple, list)) and len(value) == 2:
            value = f"{value[0]}:{value[1]}"
        parse_rank_range(value)  # checked when the config is read, not after an hour of generation
        return str(value)

    @property
    def ranks(self) -> tuple[int, int]:
        """``rank_range`` as ``(lo, hi)``."""
        return parse_rank_range(self.rank_range)


class MineOptions(MiningSettings):
    """One ``synthrank mine`` job: which queries, which corpus, which judgments, and how to mine.
    This one model is the CLI's options, a run config's ``mine:`` section and the Python API's argument."""

    queries: Path = Field(description="BEIR folder (with --split), a queries .jsonl/.tsv, or a queries.ref.json.")
    split: str = Field("train", description="BEIR folder: queries_SPLIT.jsonl (else queries.jsonl) and qrels/SPLIT.tsv "
                                            "(its judged queries are mined, its positives excluded).")
    offset: int = Field(0, ge=0, description="Skip the first N queries (file order) first.")
    limit: int | None = Field(None, ge=1, description="Mine for the first N queries only (after --offset): e.g. the claims a "
                                                      "synthetic set was generated for, keeping the rest held out.")
    corpus: Path | None = Field(None, description="corpus.jsonl or BEIR folder to mine from. Default: the --queries folder's corpus.")
    known: list[Path] = Field(default_factory=list, description="More qrels whose positives are never mined.")
    cache_dir: Path | None = Field(None, description="Dense: embedding cache root (default $SYNTHRANK_CACHE or ~/.cache/synthrank).")
    use_cache: bool = Field(True, description="Dense: read and write the embedding cache.")

    def select(self, queries: dict) -> dict:
        """The ``limit`` queries from ``offset`` on, in file order."""
        items = list(queries.items())[self.offset:]
        return dict(items[: self.limit] if self.limit else items)

    def settings(self) -> MiningSettings:
        return MiningSettings.model_validate(self.model_dump(include=set(MiningSettings.model_fields)))

    def embedding_cache(self):
        """The embedding cache dense mining uses (None for BM25 or ``use_cache: false``)."""
        if self.method != "dense" or not self.use_cache:
            return None
        from synthrank.evaluate.encode import EmbeddingCache

        return EmbeddingCache(self.cache_dir)


def rank_bm25(queries: list[str], doc_ids: list[str], titles: list[str], texts: list[str], depth: int,
              fields: str = "multifield", progress: bool = False) -> tuple[list[list[str]], np.ndarray]:
    """BM25 top-``depth`` ids ``[Q][k]`` and scores ``[Q, k]`` (k = min(depth, N))."""
    from synthrank.evaluate.bm25 import BM25Retriever

    retriever = BM25Retriever(fields=fields)
    retriever.index(doc_ids, titles, texts, progress=progress)
    return retriever.retrieve(queries, depth, progress=progress)


def rank_dense(queries: list[str], doc_ids: list[str], doc_texts: list[str], depth: int, model="all-MiniLM-L6-v2",
               batch_size: int = 64, cache=None, progress: bool = False,
               similarity: str | None = None) -> tuple[list[list[str]], np.ndarray]:
    """Dense top-``depth`` ids and scores; ``model`` is a name/path or a loaded SentenceTransformer.

    Cosine models (``similarity_fn_name == "cosine"``) are searched on normalised vectors,
    dot-product models as they are; ``similarity`` overrides the model's; anything else is a ValueError.
    """
    from synthrank.evaluate.pipeline import model_similarity, normalise_rows
    from synthrank.evaluate.encode import encode_texts, encode_with_cache
    from synthrank.evaluate.encoders import load_encoder
    from synthrank.evaluate.search import top_k

    encoder = load_encoder(model) if isinstance(model, (str, Path)) else model
    docs = encode_with_cache(encoder, doc_ids, doc_texts, "document", batch_size, cache, progress).embeddings
    query_vectors = encode_texts(encoder, queries, "query", batch_size, progress=False)
    if model_similarity(encoder, similarity) == "cosine":
        docs, query_vectors = normalise_rows(docs), normalise_rows(query_vectors)
    scores, indices = top_k(query_vectors, docs, depth)
    return [[doc_ids[i] for i in row if i >= 0] for row in indices], scores


def mine_hard_negatives(
    queries: Mapping[str, Query],
    corpus: Mapping[str, Document],
    known: Qrels | None = None,
    settings: MiningSettings | None = None,
    *,
    encoder=None,
    cache=None,
    progress: bool = False,
    **options,
) -> MiningResult:
    """Mine ``count`` hard negatives per query from ranks ``rank_range`` of a BM25 or dense ranking.

    ``settings`` (or the same fields as keyword ``options``: ``method="dense", count=5``) say how;
    ``known[qid][doc_id] = level`` are the judgments whose documents at level >= ``positive_level``
    are never mined. ``encoder`` may pass a loaded SentenceTransformer instead of ``settings.model``;
    ``cache`` an ``EmbeddingCache`` for the corpus vectors.
    Returns pairs labelled ``level``; see the module docstring for the exact rules.
    Raises ValueError for bad settings or an empty corpus.
    """
    settings = settings or MiningSettings(**options)
    method, count, sample, seed, level = settings.method, settings.count, settings.sample, settings.seed, settings.level
    if not corpus:
        raise ValueError("the corpus is empty: nothing to mine from")
    known = known or {}
    lo, hi = settings.ranks
    query_ids = list(queries)
    query_texts = [queries[q].text for q in query_ids]
    docs = list(corpus.values())
    doc_ids = [d.id for d in docs]
    if not query_ids:
        ranked, scores = [], np.zeros((0, 0), dtype=np.float32)
    elif method == "bm25":
        ranked, scores = rank_bm25(query_texts, doc_ids, [d.title for d in docs], [d.text for d in docs], hi,
                                   settings.bm25_fields, progress)
    else:
        ranked, scores = rank_dense(query_texts, doc_ids, [d.full_text for d in docs], hi, encoder or settings.model,
                                    settings.batch_size, cache, progress, settings.similarity)

    qrels: Qrels = {}
    stats = {"queries": len(query_ids), "pairs": 0, "queries_short": 0, "queries_without_negatives": 0,
             "positives_skipped": 0, "zero_score_skipped": 0}
    for row, qid in enumerate(query_ids):
        positives = {d for d, lvl in known.get(qid, {}).items() if lvl >= settings.positive_level}
        eligible = []
        for rank, did in enumerate(ranked[row][lo - 1 : hi], start=lo):
            if did in positives:
                stats["positives_skipped"] += 1
            elif method == "bm25" and scores[row][rank - 1] <= 0:
                stats["zero_score_skipped"] += 1
            else:
                eligible.append(did)
        if len(eligible) < count:
            stats["queries_short"] += 1
            chosen = eligible
        elif sample == "top":
            chosen = eligible[:count]
        else:
            rng = random.Random(f"{seed}|{qid}")
            picked = set(rng.sample(range(len(eligible)), count))
            chosen = [did for i, did in enumerate(eligible) if i in picked]  # keep rank order
        if not chosen:
            stats["queries_without_negatives"] += 1
            continue
        qrels[qid] = {did: level for did in chosen}
        stats["pairs"] += len(chosen)
    stats["settings"] = {"method": method, "model": settings.model if method == "dense" and encoder is None else None,
                         "rank_range": f"{lo}:{hi}", "count": count, "sample": sample, "seed": seed, "level": level,
                         "positive_level": settings.positive_level,
                         "bm25_fields": settings.bm25_fields if method == "bm25" else None}
    return MiningResult(qrels=qrels, stats=stats)


def load_mining_inputs(queries: Path, split: str = "train", corpus: Path | None = None,
                       known: list[Path] | None = None) -> tuple[dict[str, Query], dict[str, Document], Qrels]:
    """Queries, corpus and known judgments for ``synthrank mine`` (see its help).

    ``queries`` is a BEIR folder (its ``queries_<split>.jsonl`` or ``queries.jsonl``, or a
    ``queries.ref.json``), a ``.jsonl``/``.tsv`` file, or a ``queries.ref.json``. When it is
    a folder with ``qrels/<split>.tsv``, those judgments are known and only the queries they
    judge are mined (BEIR's rule). Extra ``known`` qrels files are added. Known judgments
    naming a query outside the queries are an error; documents outside the corpus are
    allowed (judged subsets). Raises DataFormatError / ValueError.
    """
    from synthrank.data.query_refs import load_any_queries

    queries = Path(queries)
    loaded = load_any_queries(queries, split)
    judged: Qrels = {}
    split_qrels = queries / "qrels" / f"{split}.tsv" if queries.is_dir() else None
    if split_qrels is not None and split_qrels.is_file():
        split_judged = load_qrels_tsv(split_qrels, query_ids=set(loaded))
        loaded = {qid: q for qid, q in loaded.items() if qid in split_judged}
        judged = {qid: dict(docs) for qid, docs in split_judged.items()}
    for path in known or []:  # may judge other queries too (e.g. every split); those are ignored
        for qid, docs in load_qrels_tsv(path).items():
            judged.setdefault(qid, {}).update(docs)
    if corpus is None:
        if not (queries.is_dir() and (queries / "corpus.jsonl").is_file()):
            raise ValueError("--corpus is required when --queries is not a BEIR folder with a corpus.jsonl")
        corpus = queries
    corpus = Path(corpus)
    docs = load_corpus(corpus / "corpus.jsonl" if corpus.is_dir() else corpus)
    return loaded, docs, judged


__all__ = ["MineOptions", "MiningResult", "MiningSettings", "load_mining_inputs", "mine_hard_negatives", "parse_rank_range",
           "rank_bm25", "rank_dense"]
