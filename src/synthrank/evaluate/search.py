"""Top-k search over embeddings: exact (faiss brute force over document chunks) or a faiss index (flat, HNSW, IVF, IVF-PQ).

All functions take ``queries [Q, D]`` and ``docs [N, D]`` float32 arrays, score by inner
product (normalise beforehand for cosine) and return ``(scores [Q, k], indices [Q, k])`` with
``k = min(k, N)``, each row sorted by descending score.
"""

from __future__ import annotations

import numpy as np

INDEX_KINDS = ("exact", "faiss-flat", "faiss-hnsw", "faiss-ivf", "faiss-ivfpq")


def exact_top_k(queries: np.ndarray, docs: np.ndarray, k: int, doc_chunk: int = 262144, query_chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by inner product: faiss' brute-force ``knn`` (BLAS + heaps) over one document chunk at a
    time, merged. Memory is bounded by one float32 chunk of ``doc_chunk`` documents (a float16 corpus is
    converted chunk by chunk, never whole) plus ``query_chunk x 2k`` candidates."""
    import faiss

    k = min(k, docs.shape[0])
    all_scores, all_indices = [], []
    for q_start in range(0, queries.shape[0], query_chunk):
        q = np.ascontiguousarray(queries[q_start : q_start + query_chunk], dtype=np.float32)
        best_scores = np.full((q.shape[0], 0), -np.inf, dtype=np.float32)
        best_indices = np.zeros((q.shape[0], 0), dtype=np.int64)
        for d_start in range(0, docs.shape[0], doc_chunk):
            chunk = np.ascontiguousarray(docs[d_start : d_start + doc_chunk], dtype=np.float32)
            scores, indices = faiss.knn(q, chunk, min(k, chunk.shape[0]), metric=faiss.METRIC_INNER_PRODUCT)
            scores = np.concatenate([best_scores, scores], axis=1)
            indices = np.concatenate([best_indices, indices + d_start], axis=1)
            if scores.shape[1] > k:
                keep = np.argpartition(-scores, k - 1, axis=1)[:, :k]
                scores, indices = np.take_along_axis(scores, keep, 1), np.take_along_axis(indices, keep, 1)
            best_scores, best_indices = scores, indices
        order = np.argsort(-best_scores, axis=1, kind="stable")
        all_scores.append(np.take_along_axis(best_scores, order, 1))
        all_indices.append(np.take_along_axis(best_indices, order, 1))
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
