"""The embedding cache: reused only for the same weights, settings and texts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from synthrank.evaluate.encode import EmbeddingCache, encode_texts, encode_with_cache, model_fingerprint
from synthrank.evaluate.encoders import load_encoder


@pytest.fixture(scope="module")
def minilm():
    return load_encoder("all-MiniLM-L6-v2", device="cpu")


TEXTS = ["a short text", "a considerably longer text about cats, dogs and other animals", "mid length text here"]
IDS = ["a", "b", "c"]


def test_length_sorted_encoding_keeps_input_order(minilm) -> None:
    ours = encode_texts(minilm, TEXTS, batch_size=2, progress=False)
    raw = minilm.encode(TEXTS, batch_size=2, convert_to_numpy=True)
    assert ours.shape == raw.shape and np.allclose(ours, raw, atol=1e-5)


def test_cache_hit_then_miss_on_changed_text_weight_or_setting(minilm, tmp_path) -> None:
    cache = EmbeddingCache(tmp_path)
    first = encode_with_cache(minilm, IDS, TEXTS, cache=cache, progress=False)
    second = encode_with_cache(minilm, IDS, TEXTS, cache=cache, progress=False)
    assert not first.cache_hit and second.cache_hit
    assert np.array_equal(first.embeddings, second.embeddings)

    changed_text = encode_with_cache(minilm, IDS, TEXTS[:2] + ["mid length text here!"], cache=cache, progress=False)
    assert not changed_text.cache_hit

    old_fp = model_fingerprint(minilm)
    old_len = minilm.max_seq_length
    minilm.max_seq_length = 64
    try:
        assert model_fingerprint(minilm) != old_fp
    finally:
        minilm.max_seq_length = old_len
    param = next(minilm.parameters())
    with torch.no_grad():
        param.view(-1)[0] += 1e-3
    try:
        assert model_fingerprint(minilm) != old_fp
        assert not encode_with_cache(minilm, IDS, TEXTS, cache=cache, progress=False).cache_hit
    finally:
        with torch.no_grad():
            param.view(-1)[0] -= 1e-3


def test_damaged_cache_entry_is_recomputed(minilm, tmp_path) -> None:
    cache = EmbeddingCache(tmp_path)
    first = encode_with_cache(minilm, IDS, TEXTS, cache=cache, progress=False)
    first.cache_path.write_bytes(b"not a numpy file")
    again = encode_with_cache(minilm, IDS, TEXTS, cache=cache, progress=False)
    assert not again.cache_hit and np.allclose(again.embeddings, first.embeddings)


def test_bf16_encoding_is_close_to_fp32_and_cached_under_its_own_key(minilm, tmp_path) -> None:
    cache = EmbeddingCache(tmp_path)
    fp32 = encode_with_cache(minilm, IDS, TEXTS, cache=cache, progress=False)
    bf16 = encode_with_cache(minilm, IDS, TEXTS, cache=cache, progress=False, precision="bf16")
    assert not bf16.cache_hit and bf16.cache_path != fp32.cache_path  # never served the other precision's vectors
    assert bf16.embeddings.dtype == np.float32 and bf16.embeddings.shape == fp32.embeddings.shape
    assert not np.array_equal(bf16.embeddings, fp32.embeddings)  # autocast really ran
    cosine = np.sum(bf16.embeddings * fp32.embeddings, 1) / (
        np.linalg.norm(bf16.embeddings, axis=1) * np.linalg.norm(fp32.embeddings, axis=1))
    assert cosine.min() > 0.999
    assert encode_with_cache(minilm, IDS, TEXTS, cache=cache, progress=False, precision="bf16").cache_hit
    with pytest.raises(ValueError, match="precision must be one of"):
        encode_texts(minilm, TEXTS, precision="fp16", progress=False)
