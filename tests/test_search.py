"""Search against brute force numpy and faiss."""

from __future__ import annotations

import numpy as np
import pytest

from synthrank.evaluate.search import exact_top_k, faiss_top_k


def _random(seed: int, n: int, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


@pytest.mark.parametrize("doc_chunk", [7, 100, 65536])
def test_exact_top_k_matches_brute_force(doc_chunk: int) -> None:
    queries, docs = _random(0, 13), _random(1, 250)
    scores, indices = exact_top_k(queries, docs, k=20, doc_chunk=doc_chunk, query_chunk=5)
    full = queries @ docs.T
    expected = np.argsort(-full, axis=1)[:, :20]
    assert np.array_equal(indices, expected)
    assert np.allclose(scores, np.take_along_axis(full, expected, axis=1), atol=1e-5)


def test_k_larger_than_corpus_is_clipped() -> None:
    scores, indices = exact_top_k(_random(0, 2), _random(1, 5), k=100)
    assert indices.shape == (2, 5) and sorted(indices[0]) == [0, 1, 2, 3, 4]


def test_faiss_flat_equals_exact_and_hnsw_recall_is_high() -> None:
    queries, docs = _random(2, 50, 32), _random(3, 3000, 32)
    _, exact = exact_top_k(queries, docs, k=10)
    _, flat = faiss_top_k(queries, docs, k=10, kind="faiss-flat")
    assert np.array_equal(exact, flat)
    _, hnsw = faiss_top_k(queries, docs, k=10, kind="faiss-hnsw")
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, hnsw)])
    assert overlap > 0.9
