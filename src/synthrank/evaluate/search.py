"""Top-k search over embeddings: exact (chunked matrix products) or faiss (flat, HNSW).

All functions take ``queries [Q, D]`` and ``docs [N, D]`` float32 arrays, score by inner
product (normalise beforehand for cosine) and return ``(scores [Q, k], indices [Q, k])`` with
``k = min(k, N)``, each row sorted by descending score.
"""

from __future__ import annotations

import numpy as np
import torch

INDEX_KINDS = ("exact", "faiss-flat", "faiss-hnsw", "faiss-ivf", "faiss-ivfpq")


def exact_top_k(queries: np.ndarray, docs: np.ndarray, k: int, doc_chunk: int = 65536, query_chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k; memory is bounded by ``query_chunk x (doc_chunk + k)`` scores."""
    k = min(k, docs.shape[0])
    all_scores, all_indices = [], []
    for q_start in range(0, queries.shape[0], query_chunk):
        q = torch.from_numpy(np.ascontiguousarray(queries[q_start : q_start + query_chunk], dtype=np.float32))
        best_scores = torch.full((q.shape[0], 0), float("-inf"))
        best_indices = torch.zeros((q.shape[0], 0), dtype=torch.long)
        for d_start in range(0, docs.shape[0], doc_chunk):
            # one chunk at a time in float32: a float16 corpus matrix is never copied whole
            chunk = torch.from_numpy(np.ascontiguousarray(docs[d_start : d_start + doc_chunk], dtype=np.float32))
            scores = q @ chunk.T
            chunk_k = min(k, scores.shape[1])
            top_scores, top_idx = torch.topk(scores, chunk_k, dim=1)
            merged_scores = torch.cat([best_scores, top_scores], dim=1)
            merged_indices = torch.cat([best_indices, top_idx + d_start], dim=1)
            keep_scores, keep_pos = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
            best_scores, best_indices = keep_scores, torch.gather(merged_indices, 1, keep_pos)
        all_scores.append(best_scores.numpy())
        all_indices.append(best_indices.numpy())
    return np.concatenate(all_scores), np.concatenate(all_indices)


def build_faiss_index(docs: np.ndarray, kind: str = "faiss-flat", hnsw_m: int = 32, nlist: int | None = None,
                      pq_m: int = 16, add_chunk: int = 100_000):
    """An inner-product faiss index over ``docs [N, D]`` (added in float32 chunks: memory stays bounded).

    ``faiss-flat``: exact; ``faiss-hnsw``: graph (approximate, no training); ``faiss-ivf``: inverted lists
    over ``nlist`` k-means cells (default ``4 * sqrt(N)``), trained on up to 256 vectors per cell;
    ``faiss-ivfpq``: the same with product-quantised vectors (``pq_m`` sub-vectors of 8 bits: ``pq_m``
    bytes per document instead of ``4 D``), for corpora of millions."""
    import faiss

    dim = docs.shape[1]
    if kind == "faiss-flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "faiss-hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, 2 * hnsw_m)
    elif kind in ("faiss-ivf", "faiss-ivfpq"):
        nlist = nlist or max(1, min(docs.shape[0] // 39, int(4 * np.sqrt(docs.shape[0]))))
        spec = f"IVF{nlist},Flat" if kind == "faiss-ivf" else f"IVF{nlist},PQ{pq_m}x8"  # the factory owns the quantizer
        index = faiss.index_factory(dim, spec, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        sample = docs[np.sort(rng.choice(docs.shape[0], size=min(docs.shape[0], 256 * nlist), replace=False))]
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
    else:
        raise ValueError(f"unknown faiss index {kind!r}; choose from {', '.join(INDEX_KINDS)}")
    for start in range(0, docs.shape[0], add_chunk):
        index.add(np.ascontiguousarray(docs[start : start + add_chunk], dtype=np.float32))
    return index


def search_faiss_index(index, queries: np.ndarray, k: int, nprobe: int | None = None, ef_search: int | None = None):
    """``(scores [Q, k], indices [Q, k])`` from a built index (``-1`` pads rows with fewer hits)."""
    import faiss

    k = min(k, index.ntotal)
    ivf = faiss.extract_index_ivf(index) if "IVF" in type(index).__name__ else None
    if ivf is not None:
        ivf.nprobe = nprobe or min(ivf.nlist, 32)
    if isinstance(index, faiss.IndexHNSWFlat):
        index.hnsw.efSearch = ef_search or max(128, k)
    return index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def faiss_top_k(queries: np.ndarray, docs: np.ndarray, k: int, kind: str = "faiss-flat", hnsw_m: int = 32,
                ef_search: int | None = None, nlist: int | None = None, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k with a faiss inner-product index built on the fly (see :func:`build_faiss_index`)."""
    index = build_faiss_index(docs, kind, hnsw_m=hnsw_m, nlist=nlist)
    return search_faiss_index(index, queries, k, nprobe=nprobe, ef_search=ef_search)


def top_k(queries: np.ndarray, docs: np.ndarray, k: int, index: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on ``index`` (one of :data:`INDEX_KINDS`)."""
    if index == "exact":
        return exact_top_k(queries, docs, k)
    return faiss_top_k(queries, docs, k, kind=index)
