"""Hard-negative mining: retrieve for each query, drop known positives, sample from a rank range.

The output is a BEIR qrels TSV (``query-id  corpus-id  score``) whose score is one chosen
level (default 0), so mined negatives enter the ranking contexts of
:mod:`synthrank.train.contexts` as one more source (a qrels file plus the corpus it names).

Rules, per query:

- Retrieve the top ``hi`` documents of ``rank_range = (lo, hi)`` with BM25 (``bm25s``) or a
  dense sentence-transformers model. Ranks are 1-based positions in that retrieval list,
  **counting** the known positives (so ``10:100`` means "BM25 ranks 10 to 100"); both ends
  are inclusive.
- A document judged at level >= ``positive_threshold`` for that query (in ``known``) is
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
from typing import Optional

import numpy as np
import typer

from synthrank.data import Document, Qrels, Query, load_corpus, load_qrels_tsv, write_qrels_tsv

MINING_METHODS = ("bm25", "dense")
SAMPLE_MODES = ("random", "top")


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


def check_mining_settings(method: str, sample: str, rank_range: tuple[int, int], count: int, level: int) -> None:
    """ValueError naming the first bad setting."""
    if method not in MINING_METHODS:
        raise ValueError(f"unknown mining method {method!r}; choose from {', '.join(MINING_METHODS)}")
    if sample not in SAMPLE_MODES:
        raise ValueError(f"unknown sample mode {sample!r}; choose from {', '.join(SAMPLE_MODES)}")
    _check_rank_range(rank_range)
    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")


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
    *,
    method: str = "bm25",
    model="all-MiniLM-L6-v2",
    rank_range: tuple[int, int] = (10, 100),
    count: int = 10,
    sample: str = "random",
    seed: int = 0,
    level: int = 0,
    positive_threshold: int = 1,
    bm25_fields: str = "multifield",
    batch_size: int = 64,
    cache=None,
    progress: bool = False,
    similarity: str | None = None,
) -> MiningResult:
    """Mine ``count`` hard negatives per query from ranks ``rank_range`` of a BM25 or dense ranking.

    ``known[qid][doc_id] = level`` are the judgments whose documents at level >=
    ``positive_threshold`` are never mined. ``model`` (dense only) is a name/path or a
    loaded SentenceTransformer; ``cache`` an ``EmbeddingCache`` for the corpus vectors;
    ``similarity`` (cosine or dot) overrides the model's own.
    Returns pairs labelled ``level``; see the module docstring for the exact rules.
    Raises ValueError for bad settings or an empty corpus.
    """
    check_mining_settings(method, sample, rank_range, count, level)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not corpus:
        raise ValueError("the corpus is empty: nothing to mine from")
    known = known or {}
    lo, hi = rank_range
    query_ids = list(queries)
    query_texts = [queries[q].text for q in query_ids]
    docs = list(corpus.values())
    doc_ids = [d.id for d in docs]
    if not query_ids:
        ranked, scores = [], np.zeros((0, 0), dtype=np.float32)
    elif method == "bm25":
        ranked, scores = rank_bm25(query_texts, doc_ids, [d.title for d in docs], [d.text for d in docs], hi, bm25_fields, progress)
    else:
        ranked, scores = rank_dense(query_texts, doc_ids, [d.full_text for d in docs], hi, model, batch_size, cache, progress,
                                    similarity)

    qrels: Qrels = {}
    stats = {"queries": len(query_ids), "pairs": 0, "queries_short": 0, "queries_without_negatives": 0,
             "positives_skipped": 0, "zero_score_skipped": 0}
    for row, qid in enumerate(query_ids):
        positives = {d for d, lvl in known.get(qid, {}).items() if lvl >= positive_threshold}
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
    stats["settings"] = {"method": method, "model": str(model) if method == "dense" and isinstance(model, (str, Path)) else None,
                         "rank_range": f"{lo}:{hi}", "count": count, "sample": sample, "seed": seed, "level": level,
                         "positive_threshold": positive_threshold, "bm25_fields": bm25_fields if method == "bm25" else None}
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


def mine_command(
    queries: Path = typer.Option(..., "--queries", help="BEIR folder (with --split), a queries .jsonl/.tsv, or a queries.ref.json."),
    out: Path = typer.Option(..., "--out", "-o", help="Qrels TSV to write (query-id, corpus-id, score = --level)."),
    corpus: Optional[Path] = typer.Option(None, "--corpus", "-c", help="corpus.jsonl or BEIR folder to mine from. Default: the --queries folder's corpus."),
    split: str = typer.Option("train", help="BEIR folder: queries_SPLIT.jsonl (else queries.jsonl) and qrels/SPLIT.tsv (its judged queries are mined, its positives excluded)."),
    known: Optional[list[Path]] = typer.Option(None, "--qrels", help="More judgments whose positives are never mined (repeatable)."),
    positive_level: int = typer.Option(1, "--positive-level", help="Known judgments at level >= this are positives and never mined."),
    method: str = typer.Option("bm25", help="bm25 (bm25s, Lucene scoring) or dense (a sentence-transformers model)."),
    model: str = typer.Option("all-MiniLM-L6-v2", "--model", "-m", help="Dense only: sentence-transformers folder or hub id."),
    rank_range: str = typer.Option("10:100", "--rank-range", help="1-based inclusive ranks LO:HI to mine from (positives count as ranks)."),
    count: int = typer.Option(10, "--count", "-n", help="Negatives per query."),
    sample: str = typer.Option("random", help="random (uniform over the range, seeded) or top (best-ranked first)."),
    seed: int = typer.Option(0, help="Seed of the random sample (per query: seed and query id)."),
    level: int = typer.Option(0, help="Label written for the mined pairs."),
    bm25_fields: str = typer.Option("multifield", help="BM25: multifield (title and text scored separately) or flat."),
    batch_size: int = typer.Option(64, help="Dense: encoding batch size."),
    cache_dir: Optional[Path] = typer.Option(None, help="Dense: embedding cache root (default $SYNTHRANK_CACHE or ~/.cache/synthrank)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Dense: do not read or write the embedding cache."),
    similarity: Optional[str] = typer.Option(None, help="Dense: cosine or dot, overriding the model's own (saved by synthrank train)."),
    offset: int = typer.Option(0, min=0, help="Skip the first N queries (file order)."),
    limit: Optional[int] = typer.Option(None, min=1, help="Mine for the first N queries only (after --offset), e.g. those a synthetic set covers; the rest stay held out."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Mine hard negatives from a BM25 or dense ranking, skipping known positives; write them as qrels.

    Each query gets `--count` documents from ranks `--rank-range` of the ranking, none of them a
    known positive (level >= `--positive-level`). The qrels file becomes a source of the
    ranking contexts (`data: negatives.tsv`, `corpus: <the corpus>`). Deterministic for a seed.

    **Examples**

    ```
    synthrank mine --queries ../shared/data/scifact --split train --out runs/scifact-bm25-neg.tsv
    synthrank mine --queries ../shared/data/scifact --rank-range 1:1000 --count 2 --seed 13 -o neg.tsv
    synthrank mine --queries data/scifact --method dense -m all-MiniLM-L6-v2 --rank-range 30:200 --sample top -o dense-neg.tsv
    synthrank mine --queries queries.tsv --corpus data/corpus.jsonl --qrels data/qrels/train.tsv --level 1 -o neg.tsv
    ```
    """
    lo_hi = parse_rank_range(rank_range)
    check_mining_settings(method, sample, lo_hi, count, level)
    loaded, docs, judged = load_mining_inputs(queries, split, corpus, known)
    items = list(loaded.items())[offset:]
    loaded = dict(items[:limit] if limit else items)
    cache = None
    if method == "dense" and not no_cache:
        from synthrank.evaluate.encode import EmbeddingCache

        cache = EmbeddingCache(cache_dir)
    result = mine_hard_negatives(loaded, docs, judged, method=method, model=model, rank_range=lo_hi, count=count,
                                 sample=sample, seed=seed, level=level, positive_threshold=positive_level,
                                 bm25_fields=bm25_fields, batch_size=batch_size, cache=cache, progress=not quiet,
                                 similarity=similarity)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_qrels_tsv(out, result.qrels)
    s = result.stats
    print(f"wrote {s['pairs']} negatives (level {level}) for {s['queries'] - s['queries_without_negatives']} of "
          f"{s['queries']} queries to {out}")
    if s["queries_short"]:
        print(f"{s['queries_short']} queries had fewer than {count} eligible documents in ranks {rank_range} "
              f"({s['queries_without_negatives']} had none)")
    print(f"skipped in range: {s['positives_skipped']} known positives, {s['zero_score_skipped']} zero-score BM25 documents")


__all__ = ["MINING_METHODS", "MiningResult", "check_mining_settings", "load_mining_inputs", "mine_command", "mine_hard_negatives",
           "parse_rank_range", "rank_bm25", "rank_dense"]
