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


@pytest.mark.parametrize("kind, floor", [("faiss-ivf", 0.8), ("faiss-ivfpq", 0.5)])
def test_ivf_indexes_find_most_of_the_exact_neighbours(kind: str, floor: float) -> None:
    """IVF (and IVF-PQ, 16 bytes per vector here instead of 128) for corpora of millions: approximate, measured."""
    queries, docs = _random(4, 40, 32), _random(5, 4000, 32)
    _, exact = exact_top_k(queries, docs, k=10)
    _, approx = faiss_top_k(queries, docs, k=10, kind=kind, nlist=16, nprobe=8)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    assert overlap > floor, overlap


def test_exact_search_on_float16_vectors_matches_float32() -> None:
    queries, docs = _random(6, 9), _random(7, 300)
    _, full = exact_top_k(queries, docs, k=5)
    _, half = exact_top_k(queries, docs.astype(np.float16), k=5, doc_chunk=64)
    assert np.mean(full == half) > 0.95  # half precision may swap near ties, nothing else


def test_in_place_normalisation_keeps_one_matrix_and_the_values() -> None:
    from synthrank.evaluate.pipeline import normalise_rows

    docs = _random(8, 1000)
    expected = docs / np.linalg.norm(docs, axis=1, keepdims=True)
    same = normalise_rows(docs, in_place=True, chunk=128)
    assert same is docs and np.allclose(same, expected, atol=1e-6)
    half = _random(9, 50).astype(np.float16)
    assert normalise_rows(half).dtype == np.float16 and np.allclose(np.linalg.norm(normalise_rows(half).astype(np.float32), axis=1), 1, atol=2e-3)
