"""``evaluate``: retrieve for a BEIR split with a dense model or BM25, score, write outputs.

Outputs written to ``out_dir`` (each file atomically):
- ``run.trec``: the TREC run (top ``top_k`` per query);
- ``results.json``: ``{"metrics", "per_query", "model", "model_path", "data", "dataset",
  "split", "relevance_level", "timings", "cache", "settings"}``;
- ``summary.md``: a short markdown table.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from synthrank import __version__
from synthrank.data.beir import BeirDataset
from synthrank.data.jsonl import atomic_write
from synthrank.data.records import Run
from synthrank.data.trec import write_trec_run
from synthrank.evaluate.bm25 import BM25Retriever
from synthrank.evaluate.encode import EmbeddingCache, encode_precision, encode_texts, encode_with_cache, model_fingerprint
from synthrank.evaluate.encoders import encoder_display_name, load_encoder, resolve_encoder_path, set_max_seq_length
from synthrank.evaluate.metrics import evaluate_run
from synthrank.evaluate.options import EvaluateOptions, RetrievalOptions
from synthrank.evaluate.search import build_faiss_index, search_faiss_index, top_k


@dataclass
class EvaluationResult:
    """What one evaluation produced; ``to_dict()`` is the ``results.json`` object."""

    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]]
    model: str
    model_path: str
    data: str
    dataset: str
    split: str
    relevance_level: int
    timings: dict[str, float]
    cache: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    run: Run = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        result = asdict(self)
        result.pop("run")
        return result


def normalise_rows(array: np.ndarray, in_place: bool = False, chunk: int = 65536) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero). ``in_place`` reuses ``array`` (one corpus
    matrix in memory, not two), chunk by chunk, in its own dtype."""
    out = array if in_place else np.empty_like(array)
    for start in range(0, array.shape[0], chunk):
        rows = array[start : start + chunk].astype(np.float32, copy=False)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        out[start : start + chunk] = rows / np.clip(norms, 1e-12, None)
    return out


def model_similarity(model, override: str | None = None) -> str:
    """The similarity retrieval uses: ``override``, else the model's ``similarity_fn_name`` (saved by
    ``synthrank train`` from ``loss.similarity``), else cosine. Anything but cosine or dot is a ValueError."""
    similarity = override or getattr(model, "similarity_fn_name", None) or "cosine"
    if similarity not in ("cosine", "dot"):
        raise ValueError(f"similarity {similarity!r} is not supported for search; use cosine or dot")
    return similarity


def _collect_run(query_ids: list[str], ranked_ids: list[list[str | None]], scores: np.ndarray, drop_own_id: bool, k: int) -> Run:
    """Build ``{qid: {doc_id: score}}`` keeping ``k`` documents per query; ``None`` ids are padding."""
    run: Run = {}
    for row, qid in enumerate(query_ids):
        docs: dict[str, float] = {}
        for did, score in zip(ranked_ids[row], scores[row]):
            if did is None or (drop_own_id and did == qid) or len(docs) >= k:
                continue
            docs[did] = float(score)
        run[qid] = docs
    return run


def retrieve_dense(model, dataset: BeirDataset, k: int, options: RetrievalOptions, cache: EmbeddingCache | None,
                   drop_own_id: bool, progress: bool):
    """Dense retrieval; returns ``(run, timings, cache_info)``.

    The corpus is encoded (or read from the cache) as ``options`` say: precision (fp32, or bf16
    autocast), ``embedding_dtype`` (float16 halves the corpus matrix), ``processes``; searched with
    ``options.similarity`` (else the model's own) through ``options.index``: exact chunked products, or
    a faiss index built once per corpus vectors and kept in the cache (``<cache>/indexes``)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    doc_ids = list(dataset.corpus)
    doc_texts = [doc.full_text for doc in dataset.corpus.values()]
    fingerprint = model_fingerprint(model) if cache is not None else None
    timings["fingerprint_s"] = time.perf_counter() - started
    corpus = encode_with_cache(model, doc_ids, doc_texts, "document", options.batch_size, cache, progress, fingerprint,
                               options.precision, options.embedding_dtype, options.processes)
    doc_texts = None  # the texts are no longer needed: free them before search
    timings["encode_corpus_s"] = corpus.seconds
    query_ids = list(dataset.queries)
    started = time.perf_counter()
    query_vectors = encode_texts(model, [dataset.queries[q].text for q in query_ids], "query", options.batch_size, progress=False,
                                 precision=options.precision)
    timings["encode_queries_s"] = time.perf_counter() - started
    started = time.perf_counter()
    doc_vectors = corpus.embeddings
    similarity = model_similarity(model, options.similarity)
    if similarity == "cosine":  # the corpus matrix is this call's own copy: normalised in place, not copied
        doc_vectors, query_vectors = normalise_rows(doc_vectors, in_place=True), normalise_rows(query_vectors)
    timings["normalise_s"] = time.perf_counter() - started
    cache_info = {"corpus": "hit" if corpus.cache_hit else ("miss" if cache is not None else "off"),
                  "path": str(corpus.cache_path) if corpus.cache_path else None}
    started = time.perf_counter()
    if options.index == "exact":
        scores, indices = top_k(query_vectors, doc_vectors, k + int(drop_own_id), index="exact")
    else:
        faiss_index, cache_info["index"] = cached_faiss_index(cache, corpus.cache_path, doc_vectors, options, similarity)
        scores, indices = search_faiss_index(faiss_index, query_vectors, k + int(drop_own_id), nprobe=options.nprobe)
    timings["search_s"] = time.perf_counter() - started
    started = time.perf_counter()
    ranked_ids = [[doc_ids[i] if i >= 0 else None for i in row] for row in indices]  # faiss pads with -1
    run = _collect_run(query_ids, ranked_ids, scores, drop_own_id, k)
    timings["collect_run_s"] = time.perf_counter() - started
    return run, timings, cache_info


def cached_faiss_index(cache: EmbeddingCache | None, vectors_path: Path | None, doc_vectors: np.ndarray,
                       options: RetrievalOptions, similarity: str):
    """``(index, "hit" | "miss" | "off")``: the faiss index of these corpus vectors, read from
    ``<cache>/indexes/<embedding key>-<kind>-<params>.faiss`` when built before, else built (and saved)."""
    import faiss

    params = f"{options.index}-{similarity}-nlist{options.nlist or 'auto'}"
    path = None if cache is None or vectors_path is None else cache.root.parent / "indexes" / f"{Path(vectors_path).stem}-{params}.faiss"
    if path is not None and path.is_file():
        try:
            index = faiss.read_index(str(path))
            if index.ntotal == doc_vectors.shape[0] and index.d == doc_vectors.shape[1]:
                return index, "hit"
        except RuntimeError:  # unreadable: rebuilt below
            pass
    index = build_faiss_index(doc_vectors, options.index, nlist=options.nlist)
    if path is None:
        return index, "off"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.partial")
    faiss.write_index(index, str(partial))
    os.replace(partial, path)
    return index, "miss"


def retrieve_bm25(dataset: BeirDataset, k: int, drop_own_id: bool, progress: bool, **bm25_options):
    """BM25 retrieval; returns ``(run, timings, settings)``."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    retriever = BM25Retriever(**bm25_options)
    docs = list(dataset.corpus.values())
    retriever.index([d.id for d in docs], [d.title for d in docs], [d.text for d in docs], progress=progress)
    timings["index_s"] = time.perf_counter() - started
    started = time.perf_counter()
    query_ids = list(dataset.queries)
    ids, scores = retriever.retrieve([dataset.queries[q].text for q in query_ids], k + int(drop_own_id), progress=progress)
    run = _collect_run(query_ids, ids, scores, drop_own_id, k)
    timings["search_s"] = time.perf_counter() - started
    return run, timings, retriever.settings


def evaluate(
    model: str = "all-MiniLM-L6-v2",
    data: str | Path | None = None,
    *,
    options: EvaluateOptions | None = None,
    dataset: BeirDataset | None = None,
    encoder=None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    **fields,
) -> EvaluationResult:
    """Evaluate ``model`` (a sentence-transformers folder or hub id, or ``"bm25"``) on ``data``.

    The options are :class:`~synthrank.evaluate.options.EvaluateOptions`: pass ``options``, or its
    fields as keywords (``split="train", top_k=100, precision="bf16"``); a bad value is a ValueError.
    ``data`` defaults to the embedded MEDLINE collection; ``dataset`` may pass an already loaded
    split instead. ``encoder`` may pass an already loaded SentenceTransformer (then ``model``
    is only its display name). ``precision="bf16"`` encodes under bfloat16 autocast (recorded in the
    result's settings); ``similarity`` (cosine or dot) overrides the model's own similarity function.
    """
    from synthrank.data.embedded import embedded_dataset_path

    o = options or EvaluateOptions(model=model, data=data, **fields)
    model, split, top_k_docs, batch_size, drop_own_id = o.model, o.split, o.top_k, o.batch_size, o.drop_own_id
    if out_dir is not None and Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise ValueError(f"--out {out_dir}: exists and is not a folder")
    total_start = time.perf_counter()
    from synthrank.config_io import resolve_path

    data_path = resolve_path(o.data, Path.cwd()) if o.data else (dataset.path if dataset is not None else embedded_dataset_path())
    started = time.perf_counter()
    if dataset is None:
        dataset = o.dataset().load(data_path)
    timings = {"load_data_s": time.perf_counter() - started}
    if not dataset.queries:
        raise ValueError(f"{data_path}: split {split!r} has no judged query to evaluate")
    cache = EmbeddingCache(o.cache_dir) if o.use_cache else None
    settings: dict = {"top_k": top_k_docs, "drop_own_id": drop_own_id, "synthrank": __version__, "python": platform.python_version()}
    cache_info: dict = {}
    if model.lower() == "bm25" and encoder is None:
        run, retrieval_timings, bm25_settings = retrieve_bm25(dataset, top_k_docs, drop_own_id, progress, fields=o.bm25_fields)
        settings["bm25"] = bm25_settings
        model_path, display = "bm25", "bm25"
    else:
        started = time.perf_counter()
        if encoder is None:
            encoder = load_encoder(model, max_seq_length=o.max_seq_length)
        elif o.max_seq_length:
            set_max_seq_length(encoder, o.max_seq_length)
        timings["load_model_s"] = time.perf_counter() - started
        precision, warning = encode_precision(o.precision, encoder)
        if warning:
            print(f"warning: {warning}", file=sys.stderr)
            settings["precision_requested"] = o.precision
            o = o.model_copy(update={"precision": precision})
        run, retrieval_timings, cache_info = retrieve_dense(encoder, dataset, top_k_docs, o, cache, drop_own_id, progress)
        settings.update({"index": o.index, "batch_size": batch_size, "precision": o.precision, "embedding_dtype": o.embedding_dtype,
                         "max_seq_length": encoder.max_seq_length if encoder.max_seq_length != float("inf") else None,
                         "similarity": model_similarity(encoder, o.similarity)})
        model_path, display = resolve_encoder_path(model), encoder_display_name(model)
    timings.update(retrieval_timings)
    started = time.perf_counter()
    means, per_query = evaluate_run(dataset.qrels, run, o.metrics, o.relevance_level)
    timings["metrics_s"] = time.perf_counter() - started
    timings["total_s"] = time.perf_counter() - total_start
    result = EvaluationResult(
        metrics=means, per_query=per_query, model=display, model_path=model_path, data=str(data_path.resolve()),
        dataset=data_path.resolve().name, split=split, relevance_level=o.relevance_level,
        timings={k: round(v, 4) for k, v in timings.items()}, cache=cache_info, settings=settings, run=run,
    )
    if out_dir:
        write_evaluation_outputs(result, Path(out_dir))
    return result


def score_run_file(run_path: str | Path, *, options: EvaluateOptions, out_dir: str | Path | None = None) -> EvaluationResult:
    """Score an external TREC run file against ``options``' data set qrels (no retrieval; ``options.model``
    names the system). Queries of the split missing from the run score 0, as trec_eval with ``-c``."""
    from synthrank.config_io import resolve_path
    from synthrank.data.embedded import embedded_dataset_path
    from synthrank.data.trec import load_trec_run

    started = time.perf_counter()
    data_path = resolve_path(options.data, Path.cwd()) if options.data else embedded_dataset_path()
    dataset = options.dataset().load(data_path)
    run = load_trec_run(Path(run_path))
    run = {q: dict(sorted(run.get(q, {}).items(), key=lambda kv: -kv[1])[: options.top_k]) for q in dataset.queries}
    means, per_query = evaluate_run(dataset.qrels, run, options.metrics, options.relevance_level)
    result = EvaluationResult(
        metrics=means, per_query=per_query, model=options.model, model_path=str(Path(run_path).resolve()),
        data=str(data_path.resolve()), dataset=data_path.resolve().name, split=options.split,
        relevance_level=options.relevance_level, timings={"total_s": round(time.perf_counter() - started, 4)},
        settings={"run_file": str(run_path), "top_k": options.top_k, "synthrank": __version__}, run=run)
    if out_dir:
        write_evaluation_outputs(result, Path(out_dir))
    return result


def write_evaluation_outputs(result: EvaluationResult, out_dir: Path) -> None:
    """Write ``run.trec``, ``results.json`` and ``summary.md`` into ``out_dir``."""
    from synthrank.evaluate.report import render_summary_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    write_trec_run(out_dir / "run.trec", result.run, tag=result.model)
    with atomic_write(out_dir / "results.json") as handle:
        json.dump(result.to_dict(), handle, indent=1)
    with atomic_write(out_dir / "summary.md") as handle:
        handle.write(render_summary_markdown(result.to_dict()) + "\n")
