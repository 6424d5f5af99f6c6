"""Top-k search over embeddings: exact (chunked matrix products) or faiss (flat, HNSW).

All functions take ``queries [Q, D]`` and ``docs [N, D]`` float32 arrays, score by inner
product (normalise beforehand for cosine) and return ``(scores [Q, k], indices [Q, k])`` with
``k = min(k, N)``, each row sorted by descending score.
"""

from __future__ import annotations

import numpy as np
import torch

INDEX_KINDS = ("exact", "faiss-flat", "faiss-hnsw")


def exact_top_k(queries: np.ndarray, docs: np.ndarray, k: int, doc_chunk: int = 65536, query_chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k; memory is bounded by ``query_chunk x (doc_chunk + k)`` scores."""
    k = min(k, docs.shape[0])
    doc_tensor = torch.from_numpy(np.ascontiguousarray(docs, dtype=np.float32))
    all_scores, all_indices = [], []
    for q_start in range(0, queries.shape[0], query_chunk):
        q = torch.from_numpy(np.ascontiguousarray(queries[q_start : q_start + query_chunk], dtype=np.float32))
        best_scores = torch.full((q.shape[0], 0), float("-inf"))
        best_indices = torch.zeros((q.shape[0], 0), dtype=torch.long)
        for d_start in range(0, doc_tensor.shape[0], doc_chunk):
            scores = q @ doc_tensor[d_start : d_start + doc_chunk].T
            chunk_k = min(k, scores.shape[1])
            top_scores, top_idx = torch.topk(scores, chunk_k, dim=1)
            merged_scores = torch.cat([best_scores, top_scores], dim=1)
            merged_indices = torch.cat([best_indices, top_idx + d_start], dim=1)
            keep_scores, keep_pos = torch.topk(merged_scores, min(k, merged_scores.shape[1]), dim=1)
            best_scores, best_indices = keep_scores, torch.gather(merged_indices, 1, keep_pos)
        all_scores.append(best_scores.numpy())
        all_indices.append(best_indices.numpy())
    return np.concatenate(all_scores), np.concatenate(all_indices)


def faiss_top_k(queries: np.ndarray, docs: np.ndarray, k: int, kind: str = "faiss-flat", hnsw_m: int = 32, ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Top-k with a faiss inner-product index (``faiss-flat`` exact, ``faiss-hnsw`` approximate)."""
    import faiss

    k = min(k, docs.shape[0])
    docs = np.ascontiguousarray(docs, dtype=np.float32)
    if kind == "faiss-flat":
        index = faiss.IndexFlatIP(docs.shape[1])
    elif kind == "faiss-hnsw":
        index = faiss.IndexHNSWFlat(docs.shape[1], hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, 2 * hnsw_m)
        index.hnsw.efSearch = ef_search or max(128, k)
    else:
        raise ValueError(f"unknown faiss index {kind!r}; choose from {', '.join(INDEX_KINDS)}")
    index.add(docs)
    scores, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, indices


def top_k(queries: np.ndarray, docs: np.ndarray, k: int, index: str = "exact") -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on ``index`` (one of :data:`INDEX_KINDS`)."""
    if index == "exact":
        return exact_top_k(queries, docs, k)
    return faiss_top_k(queries, docs, k, kind=index)
