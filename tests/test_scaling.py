"""Evaluation that scales, on a tiny static model: float16 corpus vectors, the faiss index cached
next to the embeddings, several encoding processes giving the same vectors as one."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "train"))
from training_fixtures import write_tiny_static_model  # noqa: E402

from conftest import write_beir  # noqa: E402
from synthrank.evaluate.pipeline import evaluate  # noqa: E402

WORDS = "cat dog fish bird tree river star cloud stone leaf rain snow wind fire lake hill".split()


@pytest.fixture(scope="module")
def corpus_folder(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("scale")
    docs = [{"_id": f"d{i}", "title": "", "text": " ".join(rng.choice(WORDS, 6))} for i in range(600)]
    queries = [{"_id": f"q{i}", "text": " ".join(rng.choice(WORDS, 3))} for i in range(20)]
    qrels = "query-id\tcorpus-id\tscore\n" + "".join(f"q{i}\td{3 * i}\t1\n" for i in range(20))
    return write_beir(folder / "data", docs, queries, {"test": qrels})


@pytest.fixture(scope="module")
def static_model(tmp_path_factory) -> Path:
    return write_tiny_static_model(tmp_path_factory.mktemp("m") / "static", dim=32)


def test_float16_vectors_give_the_float32_ranking(corpus_folder: Path, static_model: Path, tmp_path: Path) -> None:
    common = dict(model=str(static_model), data=corpus_folder, progress=False, cache_dir=tmp_path)
    full = evaluate(**common)
    half = evaluate(**common, embedding_dtype="float16")
    assert half.settings["embedding_dtype"] == "float16" and half.cache["corpus"] == "miss"
    assert abs(full.metrics["ndcg@10"] - half.metrics["ndcg@10"]) < 0.02
    cached = list((tmp_path / "embeddings").glob("*-f16.npy"))
    assert len(cached) == 1 and np.load(cached[0]).dtype == np.float16  # half the disk too
    assert evaluate(**common, embedding_dtype="float16").cache["corpus"] == "hit"


def test_a_faiss_index_is_built_once_and_reused(corpus_folder: Path, static_model: Path, tmp_path: Path) -> None:
    common = dict(model=str(static_model), data=corpus_folder, progress=False, cache_dir=tmp_path, index="faiss-ivf", nlist=8, nprobe=8)
    first = evaluate(**common)
    again = evaluate(**common)
    assert (first.cache["index"], again.cache["index"]) == ("miss", "hit")
    assert len(list((tmp_path / "indexes").glob("*.faiss"))) == 1
    assert again.metrics == first.metrics
    exact = evaluate(model=str(static_model), data=corpus_folder, progress=False, cache_dir=tmp_path)
    assert abs(exact.metrics["ndcg@10"] - first.metrics["ndcg@10"]) < 1e-6  # nprobe = nlist: every cell searched


def test_two_encoding_processes_give_the_vectors_of_one(static_model: Path) -> None:
    from sentence_transformers import SentenceTransformer

    from synthrank.evaluate.encode import encode_texts

    model = SentenceTransformer(str(static_model), device="cpu")
    texts = [f"{WORDS[i % len(WORDS)]} number {i}" for i in range(300)]
    one = encode_texts(model, texts, progress=False)
    two = encode_texts(model, texts, progress=False, processes=2, batch_size=16)
    assert one.shape == two.shape and np.allclose(one, two, atol=1e-5)


def test_cpu_encoding_workers_get_their_share_of_the_cores_and_the_parent_keeps_its_settings(monkeypatch) -> None:
    """Spawned workers read the thread variables at start; without a share each starts one thread per core."""
    import os

    from synthrank.evaluate import encode

    assert encode.worker_environment(2, cores=2)["OMP_NUM_THREADS"] == "1"
    assert encode.worker_environment(2, cores=16)["OMP_NUM_THREADS"] == "8"
    assert encode.worker_environment(4, cores=2)["OMP_NUM_THREADS"] == "1"
    seen = {}

    class Model:
        def start_multi_process_pool(self, target_devices):
            seen.update(devices=target_devices, threads=os.environ.get("OMP_NUM_THREADS"),
                        tokenizers=os.environ.get("TOKENIZERS_PARALLELISM"))
            return "pool"

    monkeypatch.setattr(encode.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(encode.os, "cpu_count", lambda: 2)
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    assert encode._start_pool(Model(), 2) == "pool"
    assert seen == {"devices": ["cpu", "cpu"], "threads": "1", "tokenizers": "false"}
    assert os.environ["OMP_NUM_THREADS"] == "7" and "TOKENIZERS_PARALLELISM" not in os.environ
